/**
 * SCIMD_SYNC_REQUIRE_TLS on the events' outbound URLs (use-case behaviour 47): a push receiver's
 * endpointUrl, an upstream's scimBaseUrl (notice callbacks), jwksUri and poll.url. Given through
 * the admin API, a plain-http URL to a non-loopback host is 400 invalidValue; one stored before the
 * switch is never called: the push delivery, the callback, the JWKS fetch and the poll fail with
 * the reason. The "remote" is a real HTTP server on this machine's non-loopback address, which
 * counts every request that reaches it. PGlite, and PostgreSQL when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { buildScimEvent, newTxn } from '../../src/events/set.ts';
import { ReceiverService } from '../../src/events/outbound/receivers.ts';
import { UpstreamService } from '../../src/events/inbound/upstreams.ts';
import { SetError } from '../../src/events/inbound/intake.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { insertFeed, insertOutbox, outboxRows } from './receivers-fixtures.ts';

const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const JSON_HEADERS = { 'content-type': 'application/json' };
const refused = (field: string) =>
  `${field} must be an https URL: this node requires TLS for sync connections (SCIMD_SYNC_REQUIRE_TLS); plain http is allowed to loopback hosts only`;

/** This machine's first non-loopback IPv4 address: plain http to it is not loopback. */
function outsideAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('this test needs a non-loopback IPv4 address on the machine');
}

function assertError(res: { status: number; body: unknown }, detail: string): void {
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.deepEqual(res.body, { schemas: [ERROR], status: '400', scimType: 'invalidValue', detail });
}

describe('SCIMD_SYNC_REQUIRE_TLS: event receivers and upstreams', () => {
  let t: TestApp;
  let trap: Server;
  const hits: string[] = [];
  let remote = '';

  before(async () => {
    t = await startTestApp({ backgroundWorkers: false, syncRequireTls: true, eventPushTimeoutMs: 2000 });
    await insertFeed(t.app, 'default', 'f1');
    trap = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((r) => trap.listen(0, '0.0.0.0', r));
    remote = `http://${outsideAddress()}:${(trap.address() as AddressInfo).port}`;
    // The trap answers on that address: a request that was sent would be counted.
    const probe = await fetch(`${remote}/probe`);
    assert.equal(probe.status, 200);
    assert.deepEqual(hits.splice(0), ['GET /probe']);
  });
  after(async () => {
    await t?.close();
    trap?.closeAllConnections();
    await new Promise<void>((r) => trap?.close(() => r()) ?? r());
  });

  const api = (method: string, path: string, body?: unknown) =>
    t.request(method, `/admin/v1/tenants/default${path}`, { body, headers: JSON_HEADERS });

  test('receivers: a plain-http endpointUrl is refused on create and PATCH; https and loopback are accepted', async () => {
    const push = { name: 'R', feedId: 'f1', delivery: 'push' };
    assertError(
      await api('POST', '/receivers', { ...push, id: 'plain', endpointUrl: `${remote}/hook` }),
      refused('endpointUrl'),
    );
    assert.equal((await api('GET', '/receivers/plain')).status, 404);
    const ok = await api('POST', '/receivers', {
      ...push,
      id: 'tls',
      endpointUrl: 'https://rx.example/hook',
    });
    assert.equal(ok.status, 201, ok.text);
    const local = await api('POST', '/receivers', {
      ...push,
      id: 'local',
      endpointUrl: 'http://127.0.0.1:9/hook',
    });
    assert.equal(local.status, 201, local.text);
    assertError(
      await api('PATCH', '/receivers/tls', { endpointUrl: 'http://rx.example/hook' }),
      refused('endpointUrl'),
    );
    assert.equal((await api('GET', '/receivers/tls')).body.endpointUrl, 'https://rx.example/hook');
    // A PATCH that does not give the URL is not refused for it.
    const renamed = await api('PATCH', '/receivers/local', { name: 'Local' });
    assert.equal(renamed.status, 200, renamed.text);
    assert.deepEqual(hits, []);
  });

  test('upstreams: plain-http scimBaseUrl, jwksUri and poll.url are refused on create and PATCH', async () => {
    const valid = {
      name: 'U',
      issuer: 'https://up.example/scim/v2',
      jwksUri: 'https://up.example/jwks',
      scimBaseUrl: 'https://up.example/scim/v2',
      poll: { url: 'https://up.example/poll' },
    };
    assertError(
      await api('POST', '/upstreams', { ...valid, id: 'u1', scimBaseUrl: `${remote}/scim/v2` }),
      refused('scimBaseUrl'),
    );
    assertError(
      await api('POST', '/upstreams', { ...valid, id: 'u1', jwksUri: `${remote}/jwks` }),
      refused('jwksUri'),
    );
    assertError(
      await api('POST', '/upstreams', { ...valid, id: 'u1', poll: { url: `${remote}/poll` } }),
      refused('poll.url'),
    );
    assert.equal((await api('GET', '/upstreams/u1')).status, 404);
    const ok = await api('POST', '/upstreams', { ...valid, id: 'u1' });
    assert.equal(ok.status, 201, ok.text);
    assertError(
      await api('PATCH', '/upstreams/u1', { scimBaseUrl: 'http://up.example/scim/v2' }),
      refused('scimBaseUrl'),
    );
    assertError(
      await api('PATCH', '/upstreams/u1', { jwksUri: 'http://up.example/jwks' }),
      refused('jwksUri'),
    );
    assertError(
      await api('PATCH', '/upstreams/u1', { poll: { url: 'http://up.example/poll' } }),
      refused('poll.url'),
    );
    const after = (await api('GET', '/upstreams/u1')).body;
    assert.deepEqual(
      [after.scimBaseUrl, after.jwksUri, after.poll.url],
      ['https://up.example/scim/v2', 'https://up.example/jwks', 'https://up.example/poll'],
    );
    const local = await api('POST', '/upstreams', {
      name: 'L',
      issuer: 'http://localhost:9/scim/v2',
      jwksUri: 'http://localhost:9/jwks',
      scimBaseUrl: 'http://[::1]:9/scim/v2',
      poll: { url: 'http://127.0.0.1:9/poll' },
      id: 'local',
    });
    assert.equal(local.status, 201, local.text);
    assert.deepEqual(hits, []);
  });

  test('a push receiver stored before the switch is never called: its SETs fail with the reason', async () => {
    // Stored without the policy, as a node without SCIMD_SYNC_REQUIRE_TLS did.
    await new ReceiverService(t.app.db).create('default', {
      id: 'old',
      name: 'Old',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: `${remote}/old`,
      authorization: 'Bearer must-not-leave',
    });
    await insertOutbox(t.app, 'default', 'old', [{ jti: 'j1' }, { jti: 'j2' }]);
    const pass = await t.app.pushWorker.deliverOnce();
    assert.equal(pass.delivered, 0);
    assert.equal(pass.failed, 2);
    const error = `not sent: ${refused('endpointUrl')}`;
    assert.deepEqual(
      (await outboxRows(t.app, 'default', 'old')).map((r) => [r.jti, r.state, r.attempts, r.last_error]),
      [
        ['j1', 'failed', 1, error],
        ['j2', 'failed', 1, error],
      ],
    );
    const view = (await api('GET', '/receivers/old')).body;
    assert.equal(view.state.lastError, error);
    assert.equal(view.state.failed, 2);
    assert.deepEqual(hits, []);
  });

  test('an upstream stored before the switch: no callback, no JWKS fetch, no poll', async () => {
    const unchecked = new UpstreamService(t.app.db, t.app.registry);
    const signed = await unchecked.create('default', {
      id: 'old-signed',
      name: 'Old signed',
      issuer: 'https://old.example/scim/v2',
      jwksUri: `${remote}/jwks`,
      scimBaseUrl: `${remote}/scim/v2`,
      poll: { url: `${remote}/poll`, authorization: 'Bearer must-not-leave' },
    });
    const unsigned = await unchecked.create('default', {
      id: 'old-unsigned',
      name: 'Old unsigned',
      issuer: 'https://old.example/scim/v2',
      acceptUnsigned: true,
      scimBaseUrl: `${remote}/scim/v2`,
      callbackAuthorization: 'Bearer must-not-leave',
    });
    const claims = () =>
      buildScimEvent(
        {
          type: 'create',
          endpoint: '/Users',
          resource: { id: 'u1', userName: 'alice', meta: { version: 'W/"1"' } },
          form: 'notice',
        },
        { issuer: 'https://old.example/scim/v2', audience: 'https://me.example', txn: newTxn() },
      );

    // The poll: refused before the request.
    await assert.rejects(t.app.pollClient.pollOnce(signed), {
      message: `poll ${remote}/poll not sent: ${refused('poll.url')}`,
    });

    // A signed SET: its keys are not fetched; temporary (the push endpoint answers 503, the poll does not ack).
    const token = await t.app.signingKeys.sign('default', claims());
    await assert.rejects(
      t.app.setIntake.receive(signed, token, 'push'),
      (err: unknown) =>
        err instanceof SetError &&
        err.err === 'invalid_key' &&
        err.temporary &&
        err.description === `The issuer's keys were not fetched: ${refused('jwksUri')}`,
    );
    const push = await t.request('POST', `/tenants/default/events/push/old-signed`, {
      raw: token,
      headers: { 'content-type': 'application/secevent+jwt' },
    });
    assert.equal(push.status, 503, push.text);
    assert.deepEqual(push.body, {
      err: 'invalid_key',
      description: `The issuer's keys were not fetched: ${refused('jwksUri')}`,
    });

    // A notice SET needs a callback GET: not sent; the event is retried with the reason recorded.
    const notice = await t.app.signingKeys.sign('default', claims(), { unsigned: true });
    assert.equal((await t.app.setIntake.receive(unsigned, notice, 'push')).duplicate, false);
    assert.deepEqual(await t.app.applier.applyOnce(), {
      applied: 0,
      skipped: 0,
      failed: 0,
      retrying: 1,
      deferred: 0,
    });
    const events = await t.app.upstreams.events('default', 'old-unsigned');
    assert.equal(events.totalResults, 1);
    assert.equal(events.events[0].state, 'pending');
    assert.equal(
      events.events[0].error,
      `callback GET ${remote}/scim/v2/Users/u1 not sent: ${refused('scimBaseUrl')}`,
    );
    assert.deepEqual(hits, []);
  });
});
