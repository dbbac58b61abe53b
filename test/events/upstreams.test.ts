/**
 * Upstreams through the admin API (/admin/v1/tenants/{tenant}/upstreams: validation, write-only
 * secrets, PATCH with null, authorization per tenant). PGlite, and PostgreSQL when DATABASE_URL is
 * set. The CLI: upstreams-cli.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const BASE = '/admin/v1/tenants/default/upstreams';
const JSON_HEADERS = { 'content-type': 'application/json' };
const EC_JWK = {
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
  kid: 'k1',
};

describe('upstreams admin API', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ backgroundWorkers: false });
    await t.app.admin.createTenant({ id: 'acme' });
    await t.app.admin.createTenant({ id: 'beta' });
  });
  after(async () => {
    await t?.close();
  });

  const post = (body: unknown, url = BASE, token?: string) =>
    t.request('POST', url, { body, headers: JSON_HEADERS, token });
  const valid = {
    id: 'a',
    name: 'A',
    issuer: 'https://a.example/scim/v2',
    jwksUri: 'https://a.example/.well-known/jwks.json',
    audience: 'https://b.example/receiver',
    scimBaseUrl: 'https://a.example/scim/v2/',
    callbackAuthorization: 'Bearer callback-secret',
    poll: { url: 'https://a.example/events/poll', authorization: 'Bearer poll-secret', maxEvents: 50 },
    resourceTypes: ['user', 'Group'],
    onFeedRemove: 'delete',
  };

  test('create, get, list: the view never holds the secrets', async () => {
    const res = await post(valid);
    assert.equal(res.status, 201, res.text);
    const { created, updated, ...rest } = res.body;
    assert.match(created, /^\d{4}-\d\d-\d\dT/);
    assert.equal(updated, created);
    assert.deepEqual(rest, {
      tenant: 'default',
      id: 'a',
      name: 'A',
      issuer: 'https://a.example/scim/v2',
      jwksUri: 'https://a.example/.well-known/jwks.json',
      acceptUnsigned: false,
      audience: 'https://b.example/receiver',
      scimBaseUrl: 'https://a.example/scim/v2',
      callbackAuthorization: true,
      poll: { url: 'https://a.example/events/poll', authorization: true, maxEvents: 50 },
      resourceTypes: ['User', 'Group'],
      onFeedRemove: 'delete',
      pushPath: '/tenants/default/events/push/a',
    });
    const one = await t.request('GET', `${BASE}/a`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, res.body);
    const list = await t.request('GET', BASE);
    assert.deepEqual(list.body, { upstreams: [res.body] });
    for (const r of [res, one, list]) {
      assert.ok(!r.text.includes('callback-secret') && !r.text.includes('poll-secret'));
    }
    const dup = await post(valid);
    assert.equal(dup.status, 409);
    assert.equal(dup.body.detail, 'Tenant default already has an upstream a');
  });

  test('invalid bodies are 400 invalidValue with the reason', async () => {
    const cases: [unknown, string][] = [
      [
        { ...valid, id: 'x1', jwksUri: undefined },
        'An upstream needs keys to verify its SETs: jwksUri or jwks (or acceptUnsigned: true)',
      ],
      [{ ...valid, id: 'x2', jwks: { keys: [EC_JWK] } }, 'Give jwksUri or jwks, not both'],
      [{ ...valid, id: 'x3', jwksUri: 'ftp://a/jwks' }, 'jwksUri must be an absolute http(s) URL'],
      [{ ...valid, id: 'x4', scimBaseUrl: 'not a url' }, 'scimBaseUrl must be an absolute http(s) URL'],
      [
        { ...valid, id: 'x5', resourceTypes: ['Printer'] },
        'Unknown resource type "Printer" in resourceTypes',
      ],
      [
        { ...valid, id: 'x6', jwksUri: undefined, jwks: { keys: [{ ...EC_JWK, d: 'secret' }] } },
        'jwks must hold public keys only',
      ],
      [{ ...valid, id: 'bad id!' }, 'id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -'],
      [{ ...valid, id: 'x7', extra: 1 }, 'body/extra is not an allowed property'],
      [{ ...valid, id: 'x8', poll: { url: 'https://p', maxEvents: 0 } }, 'body/poll/maxEvents must be >= 1'],
      [
        { ...valid, id: 'x9', onFeedRemove: 'drop' },
        'body/onFeedRemove must be equal to one of the allowed values',
      ],
      [{ name: 'n', issuer: 'i' }, "body must have required property 'scimBaseUrl'"],
    ];
    for (const [body, detail] of cases) {
      const res = await post(body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.body.scimType, 'invalidValue');
      assert.equal(res.body.detail, detail);
    }
    const inline = await post({ ...valid, id: 'inline', jwksUri: undefined, jwks: { keys: [EC_JWK] } });
    assert.equal(inline.status, 201, inline.text);
    assert.deepEqual(inline.body.jwks, { keys: [EC_JWK] });
    const unsigned = await post({
      id: 'unsigned',
      name: 'u',
      issuer: 'i',
      acceptUnsigned: true,
      scimBaseUrl: 'http://127.0.0.1:1/scim/v2',
    });
    assert.equal(unsigned.status, 201, unsigned.text);
    assert.equal(unsigned.body.onFeedRemove, 'keep');
  });

  test('PATCH changes some fields; null clears; the poll authorization is kept unless replaced', async () => {
    const res = await t.request('PATCH', `${BASE}/a`, {
      body: {
        audience: null,
        callbackAuthorization: null,
        poll: { url: 'https://a.example/poll2' },
        name: 'A2',
      },
      headers: JSON_HEADERS,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.name, 'A2');
    assert.equal(res.body.audience, undefined);
    assert.equal(res.body.callbackAuthorization, false);
    assert.deepEqual(res.body.poll, { url: 'https://a.example/poll2', authorization: true });
    const stored = await t.app.upstreams.get('default', 'a');
    assert.equal(stored.poll?.authorization, 'Bearer poll-secret');
    assert.equal(stored.callbackAuthorization, undefined);

    const invalid = await t.request('PATCH', `${BASE}/a`, { body: { jwksUri: null }, headers: JSON_HEADERS });
    assert.equal(invalid.status, 400);
    assert.equal(
      invalid.body.detail,
      'An upstream needs keys to verify its SETs: jwksUri or jwks (or acceptUnsigned: true)',
    );
    const empty = await t.request('PATCH', `${BASE}/a`, { body: {}, headers: JSON_HEADERS });
    assert.equal(empty.status, 400);
    const missing = await t.request('PATCH', `${BASE}/nope`, { body: { name: 'x' }, headers: JSON_HEADERS });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, 'No upstream nope in tenant default');
  });

  test('events list: filter by state, 400 for an unknown state', async () => {
    const ev = await t.request('GET', `${BASE}/a/events?state=pending`);
    assert.equal(ev.status, 200);
    assert.deepEqual(ev.body, { totalResults: 0, events: [] });
    const bad = await t.request('GET', `${BASE}/a/events?state=lost`);
    assert.equal(bad.status, 400);
  });

  test("a tenant's admin manages its own upstreams only; unknown tenant 404; no credentials 401", async () => {
    const admin = await t.app.admin.createClient('acme', { name: 'acme-admin', scopes: ['admin'] });
    const token = (await t.app.admin.issueToken('acme', admin.id)).token;
    const own = await post({ ...valid, id: 'mine' }, '/admin/v1/tenants/acme/upstreams', token);
    assert.equal(own.status, 201, own.text);
    assert.equal(own.body.pushPath, '/tenants/acme/events/push/mine');
    const other = await t.request('GET', '/admin/v1/tenants/beta/upstreams', { token });
    assert.equal(other.status, 403);
    const pusher = await t.app.admin.createClient('acme', { name: 'pusher', scopes: ['events:push'] });
    const pusherToken = (await t.app.admin.issueToken('acme', pusher.id)).token;
    assert.equal(
      (await t.request('GET', '/admin/v1/tenants/acme/upstreams', { token: pusherToken })).status,
      403,
    );
    assert.equal((await t.request('GET', '/admin/v1/tenants/acme/upstreams', { token: false })).status, 401);
    assert.equal((await t.request('GET', '/admin/v1/tenants/nowhere/upstreams')).status, 404);
    // The same id in another tenant is another upstream.
    assert.equal((await post({ ...valid, id: 'mine' }, '/admin/v1/tenants/beta/upstreams')).status, 201);
    assert.equal(
      (await t.request('GET', '/admin/v1/tenants/acme/upstreams/mine', { token })).body.tenant,
      'acme',
    );
  });

  test('DELETE removes the upstream and its received events', async () => {
    assert.equal((await t.request('DELETE', `${BASE}/inline`)).status, 204);
    assert.equal((await t.request('GET', `${BASE}/inline`)).status, 404);
    assert.equal((await t.request('GET', `${BASE}/inline/events`)).status, 404);
    assert.equal((await t.request('DELETE', `${BASE}/inline`)).status, 404);
  });
});
