/**
 * RFC 8935 push delivery (src/events/outbound/push.ts) against a real HTTP receiver on loopback:
 * exact request, publishing order, retries with backoff and Retry-After, permanent 400 errors,
 * maxAttempts, pause, timeouts, the per-receiver lease and the wake-up by the outbox signal.
 * Outbox rows are written with SQL (no publisher). Runs on PGlite, and on PostgreSQL with DATABASE_URL.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import type { AddressInfo } from 'node:net';
import { buildScimEvent, newTxn } from '../../src/events/set.ts';
import { backoffMs, parseRetryAfter, PushWorker } from '../../src/events/outbound/push.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishSettled } from '../helpers/events.ts';
import {
  fakeSet,
  insertFeed,
  insertOutbox,
  makeDue,
  outboxRows,
  RecordingReceiver,
} from './receivers-fixtures.ts';

const T = 'default';

describe('event push delivery (RFC 8935)', () => {
  let t: TestApp;
  let rx: RecordingReceiver;
  const made: string[] = [];

  before(async () => {
    t = await startTestApp({
      backgroundWorkers: false,
      eventPushBackoffBaseMs: 1000,
      eventPushBackoffCapMs: 8000,
      eventPushTimeoutMs: 500,
    });
    rx = new RecordingReceiver();
    await rx.start();
    await insertFeed(t.app, T, 'f1');
  });
  after(async () => {
    await t?.close();
    await rx?.close();
  });
  // Each test's receiver goes away with its outbox rows: later passes see only their own.
  afterEach(async () => {
    for (const id of made.splice(0)) await t.app.receivers.remove(T, id).catch(() => undefined);
  });

  async function receiver(
    id: string,
    extra: { maxAttempts?: number; paused?: boolean; authorization?: string } = {},
  ) {
    made.push(id);
    return t.app.receivers.create(T, {
      id,
      name: `receiver ${id}`,
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: `${rx.base}/r/${id}`,
      ...extra,
    });
  }

  test('POSTs the SET with Content-Type application/secevent+jwt, Accept application/json and the Authorization; 202 → delivered', async () => {
    const r = await receiver('exact', { authorization: 'Bearer receiver-secret' });
    assert.equal(r.authorization, 'set');
    const claims = buildScimEvent(
      { type: 'delete', endpoint: '/Users', resource: { id: 'u1' } },
      { issuer: 'http://scimd.test/scim/v2', audience: 'https://receiver.example', txn: newTxn() },
    );
    const set = await t.app.signingKeys.sign(T, claims);
    await insertOutbox(t.app, T, 'exact', [{ jti: claims.jti, setJwt: set }]);
    const before = Date.now();
    const pass = await t.app.pushWorker.deliverOnce();
    assert.equal(pass.delivered, 1);
    const got = rx.to('/r/exact');
    assert.equal(got.length, 1);
    assert.equal(got[0].method, 'POST');
    assert.equal(got[0].headers['content-type'], 'application/secevent+jwt');
    assert.equal(got[0].headers.accept, 'application/json');
    assert.equal(got[0].headers.authorization, 'Bearer receiver-secret');
    assert.equal(got[0].body, set);
    const [row] = await outboxRows(t.app, T, 'exact');
    assert.equal(row.state, 'delivered');
    assert.equal(row.attempts, 1);
    assert.equal(row.last_error, null);
    assert.ok(row.delivered_at && row.delivered_at.getTime() >= before - 1000);
    const view = await t.app.receivers.get(T, 'exact');
    assert.deepEqual(
      { ...view.state, lastDeliveryAt: undefined },
      { pending: 0, delivered: 1, failed: 0, lastDeliveryAt: undefined },
    );
    assert.equal(view.state.lastDeliveryAt, row.delivered_at!.toISOString());
    // Delivered once: the next pass sends nothing.
    assert.equal((await t.app.pushWorker.deliverOnce()).delivered, 0);
    assert.equal(rx.to('/r/exact').length, 1);
  });

  test('no Authorization header when the receiver has none; any 2xx counts as delivered', async () => {
    await receiver('noauth');
    rx.reply('/r/noauth', { status: 200, body: '{}' });
    await insertOutbox(t.app, T, 'noauth', [{ jti: 'n1' }]);
    await t.app.pushWorker.deliverOnce();
    const got = rx.to('/r/noauth');
    assert.equal(got.length, 1);
    assert.equal(got[0].headers.authorization, undefined);
    assert.equal((await outboxRows(t.app, T, 'noauth'))[0].state, 'delivered');
  });

  test('SETs of a receiver go in publishing order', async () => {
    await receiver('order');
    const jtis = ['o5', 'o1', 'o4', 'o2', 'o3', 'o9', 'o0'];
    await insertOutbox(
      t.app,
      T,
      'order',
      jtis.map((jti, i) => ({ jti, resourceId: `u${i % 2}` })),
    );
    await t.app.pushWorker.deliverOnce();
    assert.deepEqual(
      rx.to('/r/order').map((r) => r.body),
      jtis.map(fakeSet),
    );
    assert.ok((await outboxRows(t.app, T, 'order')).every((r) => r.state === 'delivered'));
  });

  test('5xx: attempts + 1, next attempt after backoff with jitter, later SETs held back; then delivered in order', async () => {
    await receiver('retry');
    rx.reply('/r/retry', { status: 503 }, { status: 500 });
    await insertOutbox(t.app, T, 'retry', [{ jti: 'r1' }, { jti: 'r2' }]);
    let start = Date.now();
    let pass = await t.app.pushWorker.deliverOnce();
    assert.deepEqual(
      { ...pass, nextDue: undefined },
      { delivered: 0, failed: 0, retried: 1, nextDue: undefined },
    );
    assert.equal(rx.to('/r/retry').length, 1, 'r2 is not sent while r1 waits');
    let [r1, r2] = await outboxRows(t.app, T, 'retry');
    assert.equal(r1.state, 'pending');
    assert.equal(r1.attempts, 1);
    assert.equal(r1.last_error, 'HTTP 503');
    // First retry: base 1000 ms, half of it random → 500..1000 ms from now.
    let wait = r1.next_attempt.getTime() - start;
    assert.ok(wait >= 450 && wait <= 1000 + (Date.now() - start), `first backoff ${wait} ms`);
    assert.equal(pass.nextDue?.getTime(), r1.next_attempt.getTime());
    assert.equal(r2.attempts, 0);
    // Not due yet: nothing is sent.
    await t.app.pushWorker.deliverOnce();
    assert.equal(rx.to('/r/retry').length, 1);

    await makeDue(t.app, T, 'retry');
    start = Date.now();
    pass = await t.app.pushWorker.deliverOnce();
    assert.equal(pass.retried, 1);
    [r1] = await outboxRows(t.app, T, 'retry');
    assert.equal(r1.attempts, 2);
    assert.equal(r1.last_error, 'HTTP 500');
    // Second retry: 2000 ms → 1000..2000 ms.
    wait = r1.next_attempt.getTime() - start;
    assert.ok(wait >= 950 && wait <= 2000 + (Date.now() - start), `second backoff ${wait} ms`);

    await makeDue(t.app, T, 'retry');
    pass = await t.app.pushWorker.deliverOnce();
    assert.equal(pass.delivered, 2);
    assert.deepEqual(
      rx.to('/r/retry').map((r) => r.body),
      [fakeSet('r1'), fakeSet('r1'), fakeSet('r1'), fakeSet('r2')],
    );
    [r1, r2] = await outboxRows(t.app, T, 'retry');
    assert.deepEqual([r1.state, r1.attempts, r1.last_error], ['delivered', 3, null]);
    assert.deepEqual([r2.state, r2.attempts], ['delivered', 1]);
    const view = await t.app.receivers.get(T, 'retry');
    assert.equal(view.state.lastError, 'HTTP 500');
    assert.ok(view.state.lastErrorAt);
  });

  test('backoff doubles up to the cap, half of it random', () => {
    assert.equal(
      backoffMs(1, 1000, 8000, () => 0),
      500,
    );
    assert.equal(
      backoffMs(1, 1000, 8000, () => 0.999999),
      1000,
    );
    assert.equal(
      backoffMs(3, 1000, 8000, () => 0),
      2000,
    );
    assert.equal(
      backoffMs(10, 1000, 8000, () => 0),
      4000,
    );
    assert.equal(
      backoffMs(60, 1000, 8000, () => 0.999999),
      8000,
    );
    assert.equal(parseRetryAfter('120'), 120_000);
    const at = parseRetryAfter(new Date(Date.now() + 30_000).toUTCString())!;
    assert.ok(at > 28_000 && at <= 30_000, `HTTP-date Retry-After ${at} ms`);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(null), undefined);
  });

  test('400 invalid_request → failed with err and description, not retried; the next SET goes at once', async () => {
    await receiver('bad');
    rx.reply('/r/bad', {
      status: 400,
      headers: { 'content-type': 'application/json', 'content-language': 'en' },
      body: JSON.stringify({ err: 'invalid_request', description: 'The SET could not be parsed' }),
    });
    await insertOutbox(t.app, T, 'bad', [{ jti: 'b1' }, { jti: 'b2' }]);
    const pass = await t.app.pushWorker.deliverOnce();
    assert.deepEqual(
      { ...pass, nextDue: undefined },
      { delivered: 1, failed: 1, retried: 0, nextDue: undefined },
    );
    const [b1, b2] = await outboxRows(t.app, T, 'bad');
    assert.deepEqual(
      [b1.state, b1.attempts, b1.last_error],
      ['failed', 1, 'invalid_request: The SET could not be parsed'],
    );
    assert.equal(b2.state, 'delivered');
    await makeDue(t.app, T, 'bad');
    await t.app.pushWorker.deliverOnce();
    assert.deepEqual(
      rx.to('/r/bad').map((r) => r.body),
      [fakeSet('b1'), fakeSet('b2')],
    );
    const view = await t.app.receivers.get(T, 'bad');
    assert.equal(view.state.failed, 1);
    assert.equal(view.state.lastError, 'invalid_request: The SET could not be parsed');
  });

  test('400 with each other RFC 8935 code, or without a body, is permanent too', async () => {
    await receiver('codes');
    rx.reply(
      '/r/codes',
      { status: 400, body: JSON.stringify({ err: 'invalid_audience' }) },
      { status: 400, body: JSON.stringify({ err: 'invalid_key', description: 'kid unknown' }) },
      { status: 400, body: 'nope' },
    );
    await insertOutbox(t.app, T, 'codes', [{ jti: 'c1' }, { jti: 'c2' }, { jti: 'c3' }]);
    await t.app.pushWorker.deliverOnce();
    assert.deepEqual(
      (await outboxRows(t.app, T, 'codes')).map((r) => [r.state, r.last_error]),
      [
        ['failed', 'invalid_audience'],
        ['failed', 'invalid_key: kid unknown'],
        ['failed', 'HTTP 400 without an RFC 8935 error body'],
      ],
    );
  });

  test('Retry-After of a 429 or 503 sets the next attempt', async () => {
    await receiver('later');
    rx.reply('/r/later', { status: 429, headers: { 'retry-after': '120' } });
    await insertOutbox(t.app, T, 'later', [{ jti: 'l1' }]);
    const start = Date.now();
    await t.app.pushWorker.deliverOnce();
    const [l1] = await outboxRows(t.app, T, 'later');
    assert.deepEqual([l1.state, l1.attempts, l1.last_error], ['pending', 1, 'HTTP 429']);
    const wait = l1.next_attempt.getTime() - start;
    assert.ok(wait >= 119_000 && wait <= 120_000 + (Date.now() - start), `Retry-After wait ${wait} ms`);
  });

  test('a paused receiver is not delivered; resumed, it is', async () => {
    await receiver('paused', { paused: true });
    await insertOutbox(t.app, T, 'paused', [{ jti: 'p1' }]);
    await t.app.pushWorker.deliverOnce();
    assert.equal(rx.to('/r/paused').length, 0);
    assert.equal((await outboxRows(t.app, T, 'paused'))[0].state, 'pending');
    await t.app.receivers.update(T, 'paused', { paused: false });
    await t.app.pushWorker.deliverOnce();
    assert.equal(rx.to('/r/paused').length, 1);
    assert.equal((await outboxRows(t.app, T, 'paused'))[0].state, 'delivered');
  });

  test('maxAttempts reached → failed; the next SET goes', async () => {
    await receiver('giveup', { maxAttempts: 2 });
    rx.reply('/r/giveup', { status: 500 }, { status: 401 });
    await insertOutbox(t.app, T, 'giveup', [{ jti: 'g1' }, { jti: 'g2' }]);
    await t.app.pushWorker.deliverOnce();
    await makeDue(t.app, T, 'giveup');
    const pass = await t.app.pushWorker.deliverOnce();
    assert.deepEqual(
      { ...pass, nextDue: undefined },
      { delivered: 1, failed: 1, retried: 0, nextDue: undefined },
    );
    const [g1, g2] = await outboxRows(t.app, T, 'giveup');
    assert.deepEqual(
      [g1.state, g1.attempts, g1.last_error],
      ['failed', 2, 'gave up after 2 attempts: HTTP 401'],
    );
    assert.deepEqual([g2.state, g2.attempts], ['delivered', 1]);
  });

  test('an unreachable receiver (502/503/504, 408, 429, no connection) never exhausts maxAttempts: nothing is lost in an outage', async () => {
    await receiver('outage', { maxAttempts: 2 });
    rx.reply('/r/outage', { status: 502 }, { status: 503 }, { status: 504 }, { status: 429 });
    await insertOutbox(t.app, T, 'outage', [{ jti: 'o1' }, { jti: 'o2' }]);
    for (let i = 0; i < 4; i++) {
      const pass = await t.app.pushWorker.deliverOnce();
      assert.deepEqual([pass.delivered, pass.failed, pass.retried], [0, 0, 1]);
      await makeDue(t.app, T, 'outage');
    }
    const [held, behind] = await outboxRows(t.app, T, 'outage');
    assert.deepEqual([held.state, held.attempts, held.last_error], ['pending', 4, 'HTTP 429']);
    assert.deepEqual([behind.state, behind.attempts], ['pending', 0]);
    const pass = await t.app.pushWorker.deliverOnce();
    assert.deepEqual([pass.delivered, pass.failed, pass.retried], [2, 0, 0]);
    assert.deepEqual(
      rx.to('/r/outage').map((r) => r.body),
      ['o1', 'o1', 'o1', 'o1', 'o1', 'o2'].map((jti) => fakeSet(jti)),
    );
  });

  test('network errors and timeouts are retried', async () => {
    // A port with nothing listening.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    made.push('refused');
    await t.app.receivers.create(T, {
      id: 'refused',
      name: 'refused',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: `http://127.0.0.1:${port}/x`,
    });
    await insertOutbox(t.app, T, 'refused', [{ jti: 'x1' }]);
    await receiver('slow');
    rx.reply('/r/slow', { status: 0, hang: true });
    await insertOutbox(t.app, T, 'slow', [{ jti: 's1' }]);
    const pass = await t.app.pushWorker.deliverOnce();
    assert.equal(pass.retried, 2);
    const [x1] = await outboxRows(t.app, T, 'refused');
    assert.deepEqual([x1.state, x1.attempts, x1.last_error], ['pending', 1, 'network error: ECONNREFUSED']);
    const [s1] = await outboxRows(t.app, T, 'slow');
    assert.deepEqual([s1.state, s1.attempts, s1.last_error], ['pending', 1, 'timeout after 500 ms']);
  });

  test('a receiver leased by another node is left alone until the lease expires', async () => {
    await receiver('leased');
    await insertOutbox(t.app, T, 'leased', [{ jti: 'e1' }]);
    await t.app.db.query(
      `UPDATE event_receivers SET lease_owner = 'other-node', lease_until = clock_timestamp() + interval '1 minute'
        WHERE tenant_id = $1 AND id = 'leased'`,
      [T],
    );
    await t.app.pushWorker.deliverOnce();
    assert.equal(rx.to('/r/leased').length, 0);
    await t.app.db.query(
      `UPDATE event_receivers SET lease_until = clock_timestamp() - interval '1 second' WHERE tenant_id = $1 AND id = 'leased'`,
      [T],
    );
    await t.app.pushWorker.deliverOnce();
    assert.equal(rx.to('/r/leased').length, 1);
    // Released after the pass: no node holds it.
    const lease = await t.app.db.query<{ lease_owner: string | null }>(
      `SELECT lease_owner FROM event_receivers WHERE tenant_id = $1 AND id = 'leased'`,
      [T],
    );
    assert.equal(lease.rows[0].lease_owner, null);
  });

  test('a receiver with a long backlog yields after its time slice; the next pass goes on at once', async () => {
    await receiver('backlog');
    const jtis = Array.from({ length: 120 }, (_, i) => `k${i}`);
    rx.reply('/r/backlog', ...jtis.map(() => ({ status: 202, delayMs: 25 })));
    await insertOutbox(
      t.app,
      T,
      'backlog',
      jtis.map((jti) => ({ jti })),
    );
    const first = await t.app.pushWorker.deliverOnce();
    assert.ok(
      first.delivered > 0 && first.delivered < jtis.length,
      `first pass delivered ${first.delivered}`,
    );
    assert.ok(first.nextDue && first.nextDue.getTime() <= Date.now(), 'due again at once');
    let total = first.delivered;
    for (let pass = 0; pass < 10 && total < jtis.length; pass++)
      total += (await t.app.pushWorker.deliverOnce()).delivered;
    assert.equal(total, jtis.length);
    assert.deepEqual(
      rx.to('/r/backlog').map((r) => r.body),
      jtis.map(fakeSet),
    );
  });

  test('two nodes delivering at the same time: each SET is sent once, in order (the lease)', async () => {
    await receiver('shared');
    const jtis = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
    await insertOutbox(
      t.app,
      T,
      'shared',
      jtis.map((jti) => ({ jti })),
    );
    // A second node on the same database: its own worker with its own node id.
    const other = new PushWorker({ db: t.app.db, signal: t.app.outboxSignal, config: t.app.config });
    const [a, b] = await Promise.all([t.app.pushWorker.deliverOnce(), other.deliverOnce()]);
    assert.equal(a.delivered + b.delivered, jtis.length);
    assert.ok(a.delivered === 0 || b.delivered === 0, 'one node delivered the receiver');
    assert.deepEqual(
      rx.to('/r/shared').map((r) => r.body),
      jtis.map(fakeSet),
    );
    await other.stop();
  });

  test('end to end: a SCIM write, published by the publisher, reaches the receiver as a SET that verifies against the JWKS', async () => {
    await t.app.feeds.create(T, { id: 'live', name: 'live', resourceTypes: ['User'], form: 'full' });
    made.push('e2e');
    await t.app.receivers.create(T, {
      id: 'e2e',
      name: 'e2e',
      feedId: 'live',
      delivery: 'push',
      endpointUrl: `${rx.base}/r/e2e`,
    });
    const created = await t.request('POST', '/scim/v2/Users', {
      body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'e2e.push' },
    });
    assert.equal(created.status, 201, created.text);
    await publishSettled(t.app);
    await t.app.pushWorker.deliverOnce();
    const got = rx.to('/r/e2e');
    assert.equal(got.length, 1);
    const jwks = await t.request('GET', '/.well-known/jwks.json', { token: false });
    const { payload } = await jwtVerify(
      got[0].body,
      createLocalJWKSet(JSON.parse(jwks.text) as JSONWebKeySet),
      {
        typ: 'secevent+jwt',
      },
    );
    const events = payload.events as Record<string, { data?: { userName?: string } }>;
    assert.equal(events['urn:ietf:params:scim:event:prov:create:full']?.data?.userName, 'e2e.push');
    assert.deepEqual(
      (await outboxRows(t.app, T, 'e2e')).map((r) => [r.jti, r.state]),
      [[payload.jti, 'delivered']],
    );
  });

  test('the running worker wakes on the outbox signal (well before its 5 s idle look)', async () => {
    await receiver('wake');
    t.app.pushWorker.start();
    try {
      // Let the first pass run and go idle.
      await new Promise((r) => setTimeout(r, 300));
      await insertOutbox(t.app, T, 'wake', [{ jti: 'w1' }]);
      const start = Date.now();
      t.app.outboxSignal.notify(T, ['wake']);
      while (rx.to('/r/wake').length === 0 && Date.now() - start < 6000)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(rx.to('/r/wake').length, 1);
      // The idle look comes after 5 s: well below that, the signal woke it.
      assert.ok(Date.now() - start < 4000, `woken after ${Date.now() - start} ms`);
    } finally {
      await t.app.pushWorker.stop();
    }
  });
});

describe('event push delivery with the background workers running', () => {
  test('a SCIM write reaches the push receiver without anyone stepping the workers', async () => {
    const rx = new RecordingReceiver();
    await rx.start();
    const t = await startTestApp({ backgroundWorkers: true });
    try {
      await t.app.feeds.create(T, { id: 'auto', name: 'auto', resourceTypes: ['User'], form: 'notice' });
      await t.app.receivers.create(T, {
        id: 'auto',
        name: 'auto',
        feedId: 'auto',
        delivery: 'push',
        endpointUrl: `${rx.base}/r/auto`,
      });
      const start = Date.now();
      for (const userName of ['auto.1', 'auto.2']) {
        const res = await t.request('POST', '/scim/v2/Users', {
          body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName },
        });
        assert.equal(res.status, 201, res.text);
      }
      while (rx.to('/r/auto').length < 2 && Date.now() - start < 20_000) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(rx.to('/r/auto').length, 2);
      assert.deepEqual(
        (await outboxRows(t.app, T, 'auto')).map((r) => r.state),
        ['delivered', 'delivered'],
      );
    } finally {
      await t.close();
      await rx.close();
    }
  });
});
