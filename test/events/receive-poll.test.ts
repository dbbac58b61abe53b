/**
 * The RFC 8936 poll client against a small fake transmitter (node:http): what it sends (maxEvents,
 * returnImmediately false, the configured Authorization, acks only of stored SETs, setErrs with
 * Content-Language for refused ones), dedupe of redelivered SETs, acks kept across a failed
 * request, and the worker loop with its final ack-only request on stop. PGlite, and PostgreSQL
 * when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonObject } from '../../src/scim/json.ts';
import { AUD, addUpstream, onB, received, setOf, startPair, userOnA, type Pair } from './receive-fixtures.ts';

interface Seen {
  headers: IncomingHttpHeaders;
  body: JsonObject;
}

describe('receiving SCIM events: RFC 8936 poll client', () => {
  let p: Pair;
  let fake: Server;
  let fakeUrl: string;
  const seen: Seen[] = [];
  /** Responses to give, in order: status and sets (default 200, nothing). */
  const script: { status?: number; sets?: Record<string, string>; more?: boolean }[] = [];

  before(async () => {
    p = await startPair();
    fake = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: JSON.parse(text) as JsonObject });
        const next = script.shift() ?? {};
        if (next.status && next.status !== 200) {
          res.writeHead(next.status).end('{"err":"oops"}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ sets: next.sets ?? {}, moreAvailable: next.more ?? false }));
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}/poll`;
  });
  after(async () => {
    await new Promise((r) => fake?.close(r));
    await p?.close();
  });

  test('stores what it receives, acks it in the next request, reports refused SETs in setErrs', async () => {
    const view = await addUpstream(p, {
      id: 'polled',
      poll: { url: fakeUrl, authorization: 'Bearer poll-secret', maxEvents: 10 },
    });
    assert.deepEqual(view.poll, { url: fakeUrl, authorization: true, maxEvents: 10 });
    const upstream = await p.b.app.upstreams.get('default', 'polled');
    const u1 = await userOnA(p, 'polled1');
    const u2 = await userOnA(p, 'polled2');
    const s1 = await setOf(p, { type: 'create', endpoint: '/Users', resource: u1, form: 'full' });
    const s2 = await setOf(p, { type: 'create', endpoint: '/Users', resource: u2, form: 'full' });
    const bad = await setOf(
      p,
      { type: 'create', endpoint: '/Users', resource: u2, form: 'full' },
      { audience: 'https://other' },
    );
    script.push({ sets: { [s1.jti]: s1.token, [s2.jti]: s2.token, [bad.jti]: bad.token } });

    const r1 = await p.b.app.pollClient.pollOnce(upstream);
    assert.deepEqual(r1, { received: 3, stored: 2, acked: [], reported: [], moreAvailable: false });
    assert.deepEqual(seen[0].body, { maxEvents: 10, returnImmediately: false, ack: [] });
    assert.equal(seen[0].headers.authorization, 'Bearer poll-secret');
    assert.equal(seen[0].headers['content-type'], 'application/json');
    assert.equal(seen[0].headers['content-language'], undefined);
    const stored = await received(p, 'polled');
    assert.deepEqual(
      stored.map((e) => [e.jti, e.via, e.state]),
      [
        [s1.jti, 'poll', 'pending'],
        [s2.jti, 'poll', 'pending'],
      ],
    );
    assert.equal((await p.b.app.applier.applyOnce()).applied, 2);
    assert.equal((await onB(p, `/Users/${u1.id as string}`)).body.userName, 'polled1');

    // Next poll: acks of the stored two, setErrs for the refused one; s1 delivered again is not stored twice.
    script.push({ sets: { [s1.jti]: s1.token } });
    const r2 = await p.b.app.pollClient.pollOnce(upstream);
    assert.deepEqual(r2, {
      received: 1,
      stored: 0,
      acked: [s1.jti, s2.jti],
      reported: [bad.jti],
      moreAvailable: false,
    });
    assert.deepEqual(seen[1].body, {
      maxEvents: 10,
      returnImmediately: false,
      ack: [s1.jti, s2.jti],
      setErrs: {
        [bad.jti]: { err: 'invalid_audience', description: `The SET's audience does not include ${AUD}` },
      },
    });
    assert.equal(seen[1].headers['content-language'], 'en');
    assert.equal((await received(p, 'polled')).length, 2);
    assert.equal((await p.b.app.applier.applyOnce()).applied, 0);

    // A failed request keeps its acks for the next one.
    script.push({ status: 500 });
    await assert.rejects(p.b.app.pollClient.pollOnce(upstream), /answered 500/);
    assert.deepEqual(seen[2].body, { maxEvents: 10, returnImmediately: false, ack: [s1.jti] });
    script.push({});
    const r4 = await p.b.app.pollClient.pollOnce(upstream);
    assert.deepEqual(r4.acked, [s1.jti]);
    assert.deepEqual(seen[3].body, { maxEvents: 10, returnImmediately: false, ack: [s1.jti] });
    script.push({});
    await p.b.app.pollClient.pollOnce(upstream);
    assert.deepEqual(seen[4].body, { maxEvents: 10, returnImmediately: false, ack: [] });

    // Ack-only (what stop() sends): nothing new is asked for, nothing waits.
    const u3 = await userOnA(p, 'polled3');
    const s3 = await setOf(p, { type: 'create', endpoint: '/Users', resource: u3, form: 'full' });
    script.push({ sets: { [s3.jti]: s3.token } }, {});
    await p.b.app.pollClient.pollOnce(upstream);
    assert.deepEqual((await p.b.app.pollClient.pollOnce(upstream, { ackOnly: true })).acked, [s3.jti]);
    assert.deepEqual(seen[6].body, { ack: [s3.jti], maxEvents: 0, returnImmediately: true });
    // With nothing to acknowledge, no request at all.
    await p.b.app.pollClient.pollOnce(upstream, { ackOnly: true });
    assert.equal(seen.length, 7);
  });

  test('the worker loop polls every upstream with a poll endpoint and acks in its next request', async () => {
    seen.length = 0;
    script.length = 0;
    const u = await userOnA(p, 'looped');
    const s = await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' });
    assert.equal((await p.b.request('DELETE', '/admin/v1/tenants/default/upstreams/polled')).status, 204);
    await addUpstream(p, { id: 'looped', poll: { url: fakeUrl, intervalSeconds: 1 } });
    script.push({ sets: { [s.jti]: s.token } });
    p.b.app.pollClient.start();
    try {
      for (let i = 0; i < 200 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    } finally {
      await p.b.app.pollClient.stop();
    }
    assert.deepEqual(
      (await received(p, 'looped')).map((e) => e.jti),
      [s.jti],
    );
    // SETs came back, so the next poll followed at once, acknowledging; then a 1 s pause (stopped).
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[0].body, { maxEvents: 100, returnImmediately: false, ack: [] });
    assert.equal(seen[0].headers.authorization, undefined);
    assert.deepEqual(seen[1].body, { maxEvents: 100, returnImmediately: false, ack: [s.jti] });
  });
});
