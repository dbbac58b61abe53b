/**
 * The RFC 8936 poll endpoint (src/events/outbound/poll-routes.ts): one test per line of the
 * "Event delivery — poll" checklist, plus authorization, attempts and paths. Outbox rows are written
 * with SQL (no publisher). Runs on PGlite, and on PostgreSQL when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import { publishSettled } from '../helpers/events.ts';
import { fakeSet, insertFeed, insertOutbox, outboxRows } from './receivers-fixtures.ts';

const TIMEOUT_S = 3;

describe('event poll endpoint (RFC 8936)', () => {
  let t: TestApp;
  let poller: string; // token of default's client "poller" (events:poll), named by the receivers below
  let other: string; // token of default's client "other" (events:poll), named by none
  let acmePoller: string; // token of acme's client "poller"
  let acmeAdmin: string;

  async function client(tenant: string, id: string, scopes: string[]): Promise<string> {
    await t.app.admin.createClient(tenant, { id, name: id, scopes });
    return (await t.app.admin.issueToken(tenant, id)).token;
  }

  async function pollReceiver(
    tenant: string,
    id: string,
    extra: { maxAttempts?: number; paused?: boolean } = {},
  ) {
    await t.app.receivers.create(tenant, {
      id,
      name: id,
      feedId: 'f1',
      delivery: 'poll',
      pollClientId: 'poller',
      ...extra,
    });
  }

  const poll = (
    path: string,
    body: unknown,
    token: string | false = poller,
    raw?: string,
  ): Promise<TestResponse> =>
    t.request('POST', path, {
      token,
      headers: { 'content-type': 'application/json' },
      ...(raw !== undefined ? { raw } : { body }),
    });

  before(async () => {
    t = await startTestApp({ backgroundWorkers: false, eventPollTimeoutSeconds: TIMEOUT_S });
    await t.app.admin.createTenant({ id: 'acme' });
    await insertFeed(t.app, 'default', 'f1');
    await insertFeed(t.app, 'acme', 'f1');
    poller = await client('default', 'poller', ['events:poll']);
    other = await client('default', 'other', ['events:poll']);
    acmePoller = await client('acme', 'poller', ['events:poll']);
    acmeAdmin = await client('acme', 'boss', ['admin']);
  });
  after(async () => {
    await t?.close();
  });

  test('POST {} with nothing pending long-polls until the timeout, then 200 {"sets":{}}', async () => {
    await pollReceiver('default', 'empty');
    const start = Date.now();
    const res = await poll('/events/poll/empty', {});
    const took = Date.now() - start;
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.deepEqual(JSON.parse(res.text), { sets: {} });
    assert.ok(took >= TIMEOUT_S * 1000 - 100, `answered after ${took} ms`);
    assert.ok(took < TIMEOUT_S * 1000 + 1500, `answered after ${took} ms`);
  });

  test('a long poll answers as soon as a SET is published for its receiver', async () => {
    await pollReceiver('default', 'wake');
    const start = Date.now();
    const pending = poll('/events/poll/wake', {});
    await new Promise((r) => setTimeout(r, 300));
    await insertOutbox(t.app, 'default', 'wake', [{ jti: 'w1' }]);
    t.app.outboxSignal.notify('default', ['wake']);
    const res = await pending;
    const took = Date.now() - start;
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { sets: { w1: fakeSet('w1') } });
    assert.ok(took < TIMEOUT_S * 1000 - 200, `answered after ${took} ms`);
  });

  test('POST {"returnImmediately":true} with nothing pending returns 200 {"sets":{}} at once', async () => {
    await pollReceiver('default', 'now');
    const start = Date.now();
    const res = await poll('/events/poll/now', { returnImmediately: true });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { sets: {} });
    assert.ok(Date.now() - start < 1000);
  });

  test('POST {"maxEvents":2,"returnImmediately":true} with 5 pending returns the first 2 and moreAvailable true', async () => {
    await pollReceiver('default', 'five');
    await insertOutbox(
      t.app,
      'default',
      'five',
      ['a', 'b', 'c', 'd', 'e'].map((jti) => ({ jti })),
    );
    const res = await poll('/events/poll/five', { maxEvents: 2, returnImmediately: true });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), {
      sets: { a: fakeSet('a'), b: fakeSet('b') },
      moreAvailable: true,
    });
    // The last page: moreAvailable omitted (false).
    const rest = await poll('/events/poll/five', { ack: ['a', 'b'], maxEvents: 3, returnImmediately: true });
    assert.deepEqual(JSON.parse(rest.text), { sets: { c: fakeSet('c'), d: fakeSet('d'), e: fakeSet('e') } });
  });

  test('unacknowledged SETs are returned again on a later poll; acknowledged ones never are', async () => {
    await pollReceiver('default', 'again');
    await insertOutbox(t.app, 'default', 'again', [{ jti: 'g1' }, { jti: 'g2' }, { jti: 'g3' }]);
    const first = await poll('/events/poll/again', { maxEvents: 2, returnImmediately: true });
    assert.deepEqual(Object.keys(JSON.parse(first.text).sets), ['g1', 'g2']);
    const second = await poll('/events/poll/again', { maxEvents: 2, returnImmediately: true });
    assert.deepEqual(Object.keys(JSON.parse(second.text).sets), ['g1', 'g2']);
    const third = await poll('/events/poll/again', { ack: ['g1'], returnImmediately: true });
    assert.deepEqual(JSON.parse(third.text), { sets: { g2: fakeSet('g2'), g3: fakeSet('g3') } });
    const fourth = await poll('/events/poll/again', { ack: ['g2', 'g3'], returnImmediately: true });
    assert.deepEqual(JSON.parse(fourth.text), { sets: {} });
    const rows = await outboxRows(t.app, 'default', 'again');
    assert.deepEqual(
      rows.map((r) => [r.jti, r.state, r.attempts]),
      [
        ['g1', 'delivered', 2],
        ['g2', 'delivered', 3],
        ['g3', 'delivered', 1],
      ],
    );
    assert.ok(rows.every((r) => r.delivered_at !== null));
  });

  test('POST {"ack":[jti1],"maxEvents":0,"returnImmediately":true} acknowledges without returning SETs', async () => {
    await pollReceiver('default', 'ackonly');
    await insertOutbox(t.app, 'default', 'ackonly', [{ jti: 'k1' }, { jti: 'k2' }]);
    const res = await poll('/events/poll/ackonly', { ack: ['k1'], maxEvents: 0, returnImmediately: true });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { sets: {} });
    const rows = await outboxRows(t.app, 'default', 'ackonly');
    assert.deepEqual(
      rows.map((r) => [r.jti, r.state, r.attempts]),
      [
        ['k1', 'delivered', 0],
        ['k2', 'pending', 0],
      ],
    );
    const view = await t.app.receivers.get('default', 'ackonly');
    assert.equal(view.state.delivered, 1);
    assert.equal(view.state.lastDeliveryAt, rows[0].delivered_at!.toISOString());
  });

  test('setErrs entries stop redelivery of those jti and are recorded with err/description', async () => {
    await pollReceiver('default', 'errs');
    await insertOutbox(t.app, 'default', 'errs', [{ jti: 'e1' }, { jti: 'e2' }, { jti: 'e3' }]);
    const res = await t.request('POST', '/events/poll/errs', {
      token: poller,
      headers: { 'content-type': 'application/json', 'content-language': 'en' },
      body: {
        setErrs: { e1: { err: 'invalid_key', description: 'Unknown kid' }, e2: { err: 'invalid_audience' } },
        returnImmediately: true,
      },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { sets: { e3: fakeSet('e3') } });
    const rows = await outboxRows(t.app, 'default', 'errs');
    assert.deepEqual(
      rows.map((r) => [r.jti, r.state, r.last_error]),
      [
        ['e1', 'failed', 'invalid_key: Unknown kid'],
        ['e2', 'failed', 'invalid_audience'],
        ['e3', 'pending', null],
      ],
    );
    const again = await poll('/events/poll/errs', { returnImmediately: true });
    assert.deepEqual(Object.keys(JSON.parse(again.text).sets), ['e3']);
    const view = await t.app.receivers.get('default', 'errs');
    assert.equal(view.state.failed, 2);
    assert.equal(view.state.lastError, 'invalid_audience');
  });

  test('a malformed poll body → 400; unknown members are ignored', async () => {
    await pollReceiver('default', 'malformed');
    for (const raw of [
      'not json',
      '[]',
      '"x"',
      '{"maxEvents":-1}',
      '{"maxEvents":1.5}',
      '{"maxEvents":"2"}',
      '{"returnImmediately":"yes"}',
      '{"ack":"j1"}',
      '{"ack":[1]}',
      '{"setErrs":[]}',
      '{"setErrs":{"j1":{"description":"no err"}}}',
      '{"setErrs":{"j1":"invalid_key"}}',
    ]) {
      const res = await poll('/events/poll/malformed', undefined, poller, raw);
      assert.equal(res.status, 400, raw);
    }
    // No body, or an empty one, is a default poll ({}): it long-polls, then answers.
    const empty = await t.request('POST', '/events/poll/malformed', { token: poller });
    assert.equal(empty.status, 200);
    assert.deepEqual(JSON.parse(empty.text), { sets: {} });
    const ok = await poll('/events/poll/malformed', { returnImmediately: true, futureMember: { x: 1 } });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.text), { sets: {} });
  });

  test("the poll endpoint of tenant A never returns tenant B's SETs; another receiver's jti in ack is ignored", async () => {
    // Same receiver id in both tenants.
    await pollReceiver('default', 'shared');
    await pollReceiver('acme', 'shared');
    await pollReceiver('default', 'neighbour');
    await insertOutbox(t.app, 'default', 'shared', [{ jti: 'd1' }]);
    await insertOutbox(t.app, 'acme', 'shared', [{ jti: 'a1' }, { jti: 'a2' }]);
    await insertOutbox(t.app, 'default', 'neighbour', [{ jti: 'n1' }]);

    const mine = await poll('/events/poll/shared', { ack: ['a1', 'n1'], returnImmediately: true });
    assert.deepEqual(JSON.parse(mine.text), { sets: { d1: fakeSet('d1') } });
    const theirs = await poll('/tenants/acme/events/poll/shared', { returnImmediately: true }, acmePoller);
    assert.deepEqual(JSON.parse(theirs.text), { sets: { a1: fakeSet('a1'), a2: fakeSet('a2') } });
    assert.deepEqual(
      (await outboxRows(t.app, 'acme', 'shared')).map((r) => r.state),
      ['pending', 'pending'],
    );
    assert.equal((await outboxRows(t.app, 'default', 'neighbour'))[0].state, 'pending');
    // A credential of tenant A is not one of tenant B (401, as for an unknown credential).
    const cross = await poll('/tenants/acme/events/poll/shared', { returnImmediately: true }, poller);
    assert.equal(cross.status, 401);
    const cross2 = await poll('/events/poll/shared', { returnImmediately: true }, acmePoller);
    assert.equal(cross2.status, 401);
    // /tenants/default/... is the same endpoint as /events/poll/...
    const explicit = await poll('/tenants/default/events/poll/shared', { returnImmediately: true });
    assert.deepEqual(JSON.parse(explicit.text), { sets: { d1: fakeSet('d1') } });
  });

  test('only the receiver’s poll client (scope events:poll) or an admin of the tenant may poll', async () => {
    await pollReceiver('acme', 'guarded');
    await insertOutbox(t.app, 'acme', 'guarded', [{ jti: 'x1' }]);
    const path = '/tenants/acme/events/poll/guarded';
    const body = { returnImmediately: true };
    assert.equal((await poll(path, body, false)).status, 401);
    assert.equal((await poll(path, body, 'not-a-token')).status, 401);
    // Another client of acme with events:poll, not the one the receiver names.
    const otherAcme = await client('acme', 'other', ['events:poll']);
    const wrong = await poll(path, body, otherAcme);
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.status, '403');
    // A client of default is not even a credential of acme.
    assert.equal((await poll(path, body, other)).status, 401);
    // The wrong client was refused before its acks were looked at.
    await poll(path, { ack: ['x1'], returnImmediately: true }, otherAcme);
    assert.equal((await outboxRows(t.app, 'acme', 'guarded'))[0].state, 'pending');
    // The receiver's client, and the tenant's admin, may.
    assert.deepEqual(JSON.parse((await poll(path, body, acmePoller)).text), { sets: { x1: fakeSet('x1') } });
    assert.deepEqual(JSON.parse((await poll(path, body, acmeAdmin)).text), { sets: { x1: fakeSet('x1') } });
    // Unknown receivers: 404 for the admin, 403 for a client (it learns nothing).
    assert.equal((await poll('/tenants/acme/events/poll/nope', body, acmeAdmin)).status, 404);
    assert.equal((await poll('/tenants/acme/events/poll/nope', body, acmePoller)).status, 403);
  });

  test('a push receiver has no poll endpoint', async () => {
    await t.app.receivers.create('default', {
      id: 'pushy',
      name: 'pushy',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: 'http://127.0.0.1:9/x',
    });
    assert.equal((await poll('/events/poll/pushy', { returnImmediately: true })).status, 403);
    assert.equal(
      (await poll('/events/poll/pushy', { returnImmediately: true }, 'test-admin-token')).status,
      404,
    );
  });

  test('a SET returned maxAttempts times without an ack is marked failed and not returned again', async () => {
    await pollReceiver('default', 'capped', { maxAttempts: 2 });
    await insertOutbox(t.app, 'default', 'capped', [{ jti: 'm1' }, { jti: 'm2' }]);
    const once = await poll('/events/poll/capped', { maxEvents: 1, returnImmediately: true });
    assert.deepEqual(Object.keys(JSON.parse(once.text).sets), ['m1']);
    await poll('/events/poll/capped', { maxEvents: 1, returnImmediately: true });
    const third = await poll('/events/poll/capped', { maxEvents: 1, returnImmediately: true });
    assert.deepEqual(JSON.parse(third.text), { sets: { m2: fakeSet('m2') } });
    const rows = await outboxRows(t.app, 'default', 'capped');
    assert.deepEqual(
      rows.map((r) => [r.jti, r.state, r.last_error]),
      [
        ['m1', 'failed', 'not acknowledged after 2 polls'],
        ['m2', 'pending', null],
      ],
    );
    // An ack that comes late still counts.
    await poll('/events/poll/capped', { ack: ['m1', 'm2'], maxEvents: 0, returnImmediately: true });
    assert.deepEqual(
      (await outboxRows(t.app, 'default', 'capped')).map((r) => r.state),
      ['delivered', 'delivered'],
    );
  });

  test('end to end: a SCIM write, published by the publisher, is returned by a poll and acked', async () => {
    await t.app.feeds.create('default', {
      id: 'live',
      name: 'live',
      resourceTypes: ['User'],
      form: 'notice',
    });
    await t.app.receivers.create('default', {
      id: 'e2e',
      name: 'e2e',
      feedId: 'live',
      delivery: 'poll',
      pollClientId: 'poller',
    });
    const pending = poll('/events/poll/e2e', {});
    const created = await t.request('POST', '/scim/v2/Users', {
      body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'e2e.poll' },
    });
    assert.equal(created.status, 201, created.text);
    await publishSettled(t.app);
    const res = await pending;
    const sets = JSON.parse(res.text).sets as Record<string, string>;
    const [jti] = Object.keys(sets);
    const claims = JSON.parse(Buffer.from(sets[jti].split('.')[1], 'base64url').toString()) as {
      jti: string;
      events: Record<string, unknown>;
    };
    assert.equal(claims.jti, jti);
    assert.ok(claims.events['urn:ietf:params:scim:event:prov:create:notice']);
    const acked = await poll('/events/poll/e2e', { ack: [jti], returnImmediately: true });
    assert.deepEqual(JSON.parse(acked.text), { sets: {} });
    assert.deepEqual(
      (await outboxRows(t.app, 'default', 'e2e')).map((r) => r.state),
      ['delivered'],
    );
  });

  test('a paused poll receiver gets no SETs (acks still count)', async () => {
    await pollReceiver('default', 'resting', { paused: true });
    await insertOutbox(t.app, 'default', 'resting', [{ jti: 'z1' }, { jti: 'z2' }]);
    const res = await poll('/events/poll/resting', { ack: ['z1'], returnImmediately: true });
    assert.deepEqual(JSON.parse(res.text), { sets: {} });
    assert.deepEqual(
      (await outboxRows(t.app, 'default', 'resting')).map((r) => r.state),
      ['delivered', 'pending'],
    );
    await t.app.receivers.update('default', 'resting', { paused: false });
    const resumed = await poll('/events/poll/resting', { returnImmediately: true });
    assert.deepEqual(JSON.parse(resumed.text), { sets: { z2: fakeSet('z2') } });
  });
});
