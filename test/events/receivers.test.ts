/**
 * Event receivers through the admin API (/admin/v1/tenants/{t}/receivers): create, read, update,
 * delete with validation; the write-only push authorization; delivery state; outbox listing with
 * state filter and paging; retry of failed SETs; who may do what. Outbox rows are written with SQL.
 * Runs on PGlite, and on PostgreSQL when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { secretBoxFor } from '../../src/security/secret-box.ts';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import { fakeSet, insertFeed, insertOutbox, outboxRows } from './receivers-fixtures.ts';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SECRET = 'Bearer push-secret-value-0123';

describe('event receivers admin API', () => {
  let t: TestApp;
  let acmeAdmin: string;
  let acmeReader: string;

  const api = (method: string, url: string, body?: unknown, token?: string | false): Promise<TestResponse> =>
    t.request(method, `/admin/v1${url}`, {
      ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
      ...(token !== undefined ? { token } : {}),
    });

  before(async () => {
    t = await startTestApp({ backgroundWorkers: false });
    await t.app.admin.createTenant({ id: 'acme' });
    await insertFeed(t.app, 'default', 'f1');
    await insertFeed(t.app, 'default', 'f2');
    await insertFeed(t.app, 'acme', 'f1');
    await t.app.admin.createClient('default', { id: 'poller', name: 'poller', scopes: ['events:poll'] });
    await t.app.admin.createClient('default', { id: 'reader', name: 'reader', scopes: ['scim:read'] });
    await t.app.admin.createClient('acme', { id: 'boss', name: 'boss', scopes: ['admin'] });
    await t.app.admin.createClient('acme', { id: 'reader', name: 'reader', scopes: ['scim:read'] });
    acmeAdmin = (await t.app.admin.issueToken('acme', 'boss')).token;
    acmeReader = (await t.app.admin.issueToken('acme', 'reader')).token;
  });
  after(async () => {
    await t?.close();
  });

  test('POST a push receiver: 201, Location, the view without the authorization value', async () => {
    const res = await api('POST', '/tenants/default/receivers', {
      id: 'hook',
      name: 'Webhook',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: 'https://receiver.example/events',
      authorization: SECRET,
      audience: 'https://receiver.example',
      maxAttempts: 5,
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers.location, '/admin/v1/tenants/default/receivers/hook');
    assert.match(res.body.created, ISO);
    assert.deepEqual(res.body, {
      id: 'hook',
      tenant: 'default',
      name: 'Webhook',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: 'https://receiver.example/events',
      authorization: 'set',
      audience: 'https://receiver.example',
      unsigned: false,
      maxAttempts: 5,
      paused: false,
      created: res.body.created,
      state: { pending: 0, delivered: 0, failed: 0 },
    });
    assert.ok(!res.text.includes('push-secret'));
    const stored = await t.app.db.query<{ authorization_header: string }>(
      `SELECT authorization_header FROM event_receivers WHERE tenant_id = 'default' AND id = 'hook'`,
    );
    // Sealed at rest (src/security/secret-box.ts), bound to this row.
    assert.match(stored.rows[0].authorization_header, /^enc:v1:[0-9a-f]{8}:/);
    assert.ok(!stored.rows[0].authorization_header.includes('push-secret'));
    assert.equal(
      secretBoxFor(t.app.db).open(stored.rows[0].authorization_header, {
        table: 'event_receivers',
        tenant: 'default',
        row: 'hook',
        field: 'authorization_header',
      }),
      SECRET,
    );
    const got = await api('GET', '/tenants/default/receivers/hook');
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, res.body);
    const list = await api('GET', '/tenants/default/receivers');
    assert.ok(!list.text.includes('push-secret'));
  });

  test('POST a poll receiver: pollClientId and the poll path; defaults', async () => {
    const res = await api('POST', '/tenants/default/receivers', {
      id: 'puller',
      name: 'Puller',
      feedId: 'f1',
      delivery: 'poll',
      pollClientId: 'poller',
      unsigned: true,
    });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(res.body, {
      id: 'puller',
      tenant: 'default',
      name: 'Puller',
      feedId: 'f1',
      delivery: 'poll',
      pollClientId: 'poller',
      pollPath: '/tenants/default/events/poll/puller',
      unsigned: true,
      maxAttempts: 10,
      paused: false,
      created: res.body.created,
      state: { pending: 0, delivered: 0, failed: 0 },
    });
    // Without an id: a UUID.
    const anon = await api('POST', '/tenants/default/receivers', {
      name: 'anon',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: 'http://127.0.0.1:9/x',
    });
    assert.equal(anon.status, 201);
    assert.match(anon.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(anon.body.authorization, 'unset');
    assert.equal((await api('DELETE', `/tenants/default/receivers/${anon.body.id}`)).status, 204);
  });

  test('invalid receivers → 400 invalidValue with the reason; a duplicate id → 409', async () => {
    const push = { name: 'x', feedId: 'f1', delivery: 'push', endpointUrl: 'https://r.example/e' };
    const poll = { name: 'x', feedId: 'f1', delivery: 'poll', pollClientId: 'poller' };
    const cases: [unknown, RegExp][] = [
      [{ feedId: 'f1', delivery: 'push' }, /name/],
      [{ ...push, feedId: 'nope' }, /feedId nope is not a feed of tenant default/],
      [{ ...push, delivery: 'email' }, /delivery/],
      [{ name: 'x', feedId: 'f1', delivery: 'push' }, /A push receiver needs endpointUrl/],
      [{ ...push, endpointUrl: 'ftp://r.example/e' }, /endpointUrl must be an absolute http or https URL/],
      [{ ...push, endpointUrl: 'not a url' }, /endpointUrl must be an absolute http or https URL/],
      [{ ...push, endpointUrl: 'https://u:p@r.example/e' }, /must not hold credentials/],
      [{ ...push, pollClientId: 'poller' }, /pollClientId is for poll receivers/],
      [{ ...push, authorization: 'Bearer a\r\nX-Evil: 1' }, /authorization must be 1-4096 printable/],
      [{ ...push, maxAttempts: 0 }, /maxAttempts/],
      [{ ...push, maxAttempts: 2.5 }, /maxAttempts/],
      [{ ...push, unsigned: 'yes' }, /unsigned/],
      [{ ...push, color: 'red' }, /color/],
      [{ ...push, id: 'bad id!' }, /Receiver id/],
      [{ name: 'x', feedId: 'f1', delivery: 'poll' }, /A poll receiver needs pollClientId/],
      [{ ...poll, pollClientId: 'ghost' }, /pollClientId ghost is not a client of tenant default/],
      [{ ...poll, pollClientId: 'reader' }, /Client reader needs scope events:poll/],
      [{ ...poll, endpointUrl: 'https://r.example/e' }, /endpointUrl is for push receivers/],
      [{ ...poll, authorization: 'Bearer x' }, /authorization is for push receivers/],
    ];
    for (const [body, detail] of cases) {
      const res = await api('POST', '/tenants/default/receivers', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.scimType, 'invalidValue', JSON.stringify(body));
      assert.match(res.body.detail, detail, JSON.stringify(body));
    }
    const dup = await api('POST', '/tenants/default/receivers', { ...push, id: 'hook' });
    assert.equal(dup.status, 409);
    assert.equal((await api('POST', '/tenants/nowhere/receivers', push)).status, 404);
  });

  test('PATCH changes only what it names; null clears; the result is validated as a whole', async () => {
    let res = await api('PATCH', '/tenants/default/receivers/hook', {
      endpointUrl: 'https://other.example/in',
      paused: true,
      feedId: 'f2',
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.endpointUrl, 'https://other.example/in');
    assert.equal(res.body.paused, true);
    assert.equal(res.body.feedId, 'f2');
    assert.equal(res.body.authorization, 'set');
    assert.equal(res.body.maxAttempts, 5);
    res = await api('PATCH', '/tenants/default/receivers/hook', { authorization: null, audience: null });
    assert.equal(res.status, 200);
    assert.equal(res.body.authorization, 'unset');
    assert.equal(res.body.audience, undefined);
    // Turning it into a poll receiver needs a poll client and no endpoint.
    res = await api('PATCH', '/tenants/default/receivers/hook', { delivery: 'poll' });
    assert.equal(res.status, 400);
    assert.match(res.body.detail, /endpointUrl is for push receivers/);
    res = await api('PATCH', '/tenants/default/receivers/hook', {
      delivery: 'poll',
      endpointUrl: null,
      pollClientId: 'poller',
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.pollPath, '/tenants/default/events/poll/hook');
    assert.equal(res.body.endpointUrl, undefined);
    assert.equal((await api('PATCH', '/tenants/default/receivers/hook', {})).status, 400);
    assert.equal((await api('PATCH', '/tenants/default/receivers/hook', { id: 'x' })).status, 400);
    assert.equal((await api('PATCH', '/tenants/default/receivers/ghost', { paused: true })).status, 404);
  });

  test('delivery state, outbox entries by state with paging, the SET only when asked, retry of failed ones', async () => {
    await api('POST', '/tenants/default/receivers', {
      id: 'state',
      name: 'state',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: 'https://r.example/e',
    });
    await insertOutbox(
      t.app,
      'default',
      'state',
      ['s1', 's2', 's3', 's4', 's5'].map((jti) => ({ jti, resourceId: `u-${jti}` })),
    );
    await t.app.db.query(
      `UPDATE event_outbox SET state = 'delivered', attempts = 1, delivered_at = clock_timestamp()
        WHERE tenant_id = 'default' AND receiver_id = 'state' AND jti IN ('s1', 's2')`,
    );
    await t.app.db.query(
      `UPDATE event_outbox SET state = 'failed', attempts = 3, last_error = 'invalid_key: nope'
        WHERE tenant_id = 'default' AND receiver_id = 'state' AND jti IN ('s3', 's5')`,
    );
    await t.app.db.query(
      `UPDATE event_outbox SET created = clock_timestamp() - interval '90 seconds'
        WHERE tenant_id = 'default' AND receiver_id = 'state' AND jti = 's4'`,
    );
    await t.app.db.query(
      `UPDATE event_receivers SET last_error = 'invalid_key: nope', last_error_at = clock_timestamp()
        WHERE tenant_id = 'default' AND id = 'state'`,
    );
    const view = await api('GET', '/tenants/default/receivers/state');
    assert.equal(view.body.state.pending, 1);
    assert.equal(view.body.state.delivered, 2);
    assert.equal(view.body.state.failed, 2);
    assert.ok(view.body.state.oldestPendingAgeSeconds >= 89 && view.body.state.oldestPendingAgeSeconds <= 95);
    assert.equal(view.body.state.lastError, 'invalid_key: nope');
    assert.match(view.body.state.lastErrorAt, ISO);

    const all = await api('GET', '/tenants/default/receivers/state/events');
    assert.equal(all.status, 200);
    assert.equal(all.headers['cache-control'], 'no-store');
    assert.equal(all.body.totalResults, 5);
    assert.deepEqual(
      all.body.entries.map((e: { jti: string; state: string }) => [e.jti, e.state]),
      [
        ['s1', 'delivered'],
        ['s2', 'delivered'],
        ['s3', 'failed'],
        ['s4', 'pending'],
        ['s5', 'failed'],
      ],
    );
    const s3 = all.body.entries[2];
    assert.deepEqual(Object.keys(s3).sort(), [
      'attempts',
      'created',
      'eventUris',
      'jti',
      'lastError',
      'resourceId',
      'resourceType',
      'seq',
      'state',
      'txn',
    ]);
    assert.deepEqual(
      { ...s3, seq: 0, created: '' },
      {
        seq: 0,
        jti: 's3',
        txn: 'txn-s3',
        resourceType: 'User',
        resourceId: 'u-s3',
        eventUris: ['urn:ietf:params:scim:event:prov:create:full'],
        state: 'failed',
        attempts: 3,
        lastError: 'invalid_key: nope',
        created: '',
      },
    );
    assert.match(all.body.entries[0].deliveredAt, ISO);
    assert.match(all.body.entries[3].nextAttempt, ISO);
    assert.ok(!all.text.includes(fakeSet('s1')));

    const failed = await api(
      'GET',
      '/tenants/default/receivers/state/events?state=failed&startIndex=2&count=1',
    );
    assert.deepEqual(
      { ...failed.body, entries: failed.body.entries.map((e: { jti: string }) => e.jti) },
      { totalResults: 2, startIndex: 2, itemsPerPage: 1, entries: ['s5'] },
    );
    const withSet = await api('GET', '/tenants/default/receivers/state/events?state=pending&includeSet=true');
    assert.equal(withSet.body.entries[0].set, fakeSet('s4'));
    assert.equal((await api('GET', '/tenants/default/receivers/state/events?state=lost')).status, 400);
    assert.equal((await api('GET', '/tenants/default/receivers/state/events?count=5000')).status, 400);
    assert.equal((await api('GET', '/tenants/default/receivers/ghost/events')).status, 404);

    let retry = await api('POST', '/tenants/default/receivers/state/retry', { jti: ['s5'] });
    assert.equal(retry.status, 200);
    assert.deepEqual(retry.body, { retried: 1 });
    retry = await api('POST', '/tenants/default/receivers/state/retry', {});
    assert.deepEqual(retry.body, { retried: 1 });
    const rows = await outboxRows(t.app, 'default', 'state');
    assert.deepEqual(
      rows.map((r) => [r.jti, r.state, r.attempts]),
      [
        ['s1', 'delivered', 1],
        ['s2', 'delivered', 1],
        ['s3', 'pending', 0],
        ['s4', 'pending', 0],
        ['s5', 'pending', 0],
      ],
    );
    const none = await t.request('POST', '/admin/v1/tenants/default/receivers/state/retry');
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.body, { retried: 0 });
    for (const bad of [{ jti: 's1' }, { jti: [1] }, { jtis: ['s1'] }, ['s1']]) {
      const res = await api('POST', '/tenants/default/receivers/state/retry', bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
    }
  });

  test('pruning removes delivered SETs delivered before the cutoff, in every tenant; pending and failed stay', async () => {
    for (const tenant of ['default', 'acme']) {
      await t.app.receivers.create(tenant, {
        id: 'old',
        name: 'old',
        feedId: 'f1',
        delivery: 'push',
        endpointUrl: 'https://r.example/e',
      });
      await insertOutbox(t.app, tenant, 'old', [{ jti: 'p1' }, { jti: 'p2' }, { jti: 'p3' }, { jti: 'p4' }]);
      await t.app.db.query(
        `UPDATE event_outbox SET state = 'delivered', delivered_at = clock_timestamp() - interval '10 days'
          WHERE tenant_id = $1 AND receiver_id = 'old' AND jti = 'p1'`,
        [tenant],
      );
      await t.app.db.query(
        `UPDATE event_outbox SET state = 'delivered', delivered_at = clock_timestamp()
          WHERE tenant_id = $1 AND receiver_id = 'old' AND jti = 'p2'`,
        [tenant],
      );
      await t.app.db.query(
        `UPDATE event_outbox SET state = 'failed', created = clock_timestamp() - interval '10 days'
          WHERE tenant_id = $1 AND receiver_id = 'old' AND jti = 'p3'`,
        [tenant],
      );
    }
    const removed = await t.app.receivers.pruneDelivered(new Date(Date.now() - 7 * 86_400_000));
    assert.equal(removed, 2);
    for (const tenant of ['default', 'acme']) {
      assert.deepEqual(
        (await outboxRows(t.app, tenant, 'old')).map((r) => [r.jti, r.state]),
        [
          ['p2', 'delivered'],
          ['p3', 'failed'],
          ['p4', 'pending'],
        ],
      );
      await t.app.receivers.remove(tenant, 'old');
    }
  });

  test('DELETE removes the receiver and its outbox; then 404', async () => {
    assert.equal((await api('DELETE', '/tenants/default/receivers/state')).status, 204);
    assert.equal((await api('GET', '/tenants/default/receivers/state')).status, 404);
    assert.equal((await api('DELETE', '/tenants/default/receivers/state')).status, 404);
    assert.deepEqual(await outboxRows(t.app, 'default', 'state'), []);
  });

  test("a tenant's admin manages its own receivers only; other clients may not", async () => {
    const body = {
      id: 'mine',
      name: 'mine',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: 'https://a.example/e',
    };
    const created = await api('POST', '/tenants/acme/receivers', body, acmeAdmin);
    assert.equal(created.status, 201, created.text);
    const listed = await api('GET', '/tenants/acme/receivers', undefined, acmeAdmin);
    assert.deepEqual(
      listed.body.receivers.map((r: { id: string }) => r.id),
      ['mine'],
    );
    // The operator sees it too; default's list does not hold it.
    assert.equal((await api('GET', '/tenants/acme/receivers/mine')).status, 200);
    const defaults = await api('GET', '/tenants/default/receivers');
    assert.ok(!defaults.body.receivers.some((r: { tenant: string }) => r.tenant === 'acme'));
    assert.equal((await api('GET', '/tenants/default/receivers', undefined, acmeAdmin)).status, 403);
    assert.equal((await api('GET', '/tenants/acme/receivers', undefined, acmeReader)).status, 403);
    assert.equal(
      (await api('POST', '/tenants/acme/receivers', { ...body, id: 'x' }, acmeReader)).status,
      403,
    );
    assert.equal((await api('GET', '/tenants/acme/receivers', undefined, false)).status, 401);
    // acme's feed f1 is not default's feed f1's receivers' business: ids are per tenant.
    const same = await api('POST', '/tenants/default/receivers', body);
    assert.equal(same.status, 201);
  });
});
