/**
 * Authentication (RFC 7644 §2, RFC 6750 §3): every SCIM endpoint but /ServiceProviderConfig needs
 * a valid bearer token; failures are 401 with a SCIM error and a WWW-Authenticate challenge.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import {
  BASE,
  BULK_REQ,
  SEARCH,
  SPC,
  USER,
  assertError,
  assertScim,
  createUser,
  header,
  patchBody,
  total,
  type Json,
} from './lib.ts';

let t: TestApp;
let user: Json;
before(async () => {
  t = await startTestApp();
  user = await createUser(t, { userName: 'auth-target' });
});
after(async () => {
  await t.close();
});

function endpoints(): { method: string; path: string; body?: unknown }[] {
  return [
    { method: 'GET', path: '/Users' },
    { method: 'GET', path: `/Users/${user.id}` },
    { method: 'GET', path: '/Users/00000000-0000-0000-0000-000000000000' },
    { method: 'POST', path: '/Users', body: { schemas: [USER], userName: 'intruder' } },
    { method: 'PUT', path: `/Users/${user.id}`, body: { schemas: [USER], userName: 'hijacked' } },
    {
      method: 'PATCH',
      path: `/Users/${user.id}`,
      body: patchBody({ op: 'replace', path: 'userName', value: 'hijacked' }),
    },
    { method: 'DELETE', path: `/Users/${user.id}` },
    { method: 'GET', path: '/Groups' },
    { method: 'POST', path: '/Users/.search', body: { schemas: [SEARCH] } },
    { method: 'POST', path: '/.search', body: { schemas: [SEARCH] } },
    { method: 'POST', path: '/Bulk', body: { schemas: [BULK_REQ], Operations: [] } },
    { method: 'GET', path: '/ResourceTypes' },
    { method: 'GET', path: '/ResourceTypes/User' },
    { method: 'GET', path: '/Schemas' },
    { method: 'GET', path: `/Schemas/${USER}` },
    { method: 'GET', path: '/Me' },
  ];
}

function assertUnauthorized(res: TestResponse, what: string): void {
  assertError(res, 401);
  const challenge = header(res, 'www-authenticate');
  assert.ok(challenge, `${what}: WWW-Authenticate missing`);
  assert.match(challenge, /^Bearer\b/, `${what}: ${challenge}`);
}

describe('authentication', () => {
  test('no credentials → 401 with a SCIM error and WWW-Authenticate: Bearer on every endpoint', async () => {
    for (const e of endpoints()) {
      const res = await t.request(e.method, `${BASE}${e.path}`, { body: e.body, token: false });
      assertUnauthorized(res, `${e.method} ${e.path}`);
    }
  });

  test('a wrong token → 401 on every endpoint', async () => {
    for (const e of endpoints()) {
      const res = await t.request(e.method, `${BASE}${e.path}`, { body: e.body, token: 'not-the-token' });
      assertUnauthorized(res, `${e.method} ${e.path}`);
    }
  });

  test('a non-Bearer scheme (Basic) → 401', async () => {
    const res = await t.request('GET', `${BASE}/Users`, {
      headers: { authorization: 'Basic YWRtaW46YWRtaW4=' },
    });
    assertUnauthorized(res, 'Basic');
  });

  test('the admin token with a different case is not accepted', async () => {
    const res = await t.request('GET', `${BASE}/Users`, { token: 'TEST-ADMIN-TOKEN' });
    assertUnauthorized(res, 'case');
  });

  test('unauthenticated writes change nothing', async () => {
    const count = await total(t, '/Users');
    const got = await t.request('GET', `${BASE}/Users/${user.id}`);
    assertScim(got, 200);
    assert.deepEqual(got.body, user);
    assert.equal(count, 1);
  });

  test('/ServiceProviderConfig is readable without credentials', async () => {
    const res = await t.request('GET', `${BASE}/ServiceProviderConfig`, { token: false });
    assertScim(res, 200);
    assert.deepEqual(res.body.schemas, [SPC]);
  });

  test('/Me with a valid token → 501 SCIM error (no user-bound credentials yet; RFC 7644 §3.11)', async () => {
    for (const method of ['GET', 'PUT', 'PATCH', 'DELETE']) {
      const res = await t.request(method, `${BASE}/Me`, {
        body: method === 'GET' || method === 'DELETE' ? undefined : { schemas: [USER], userName: 'me' },
      });
      assertError(res, 501);
    }
  });
});
