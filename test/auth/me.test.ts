/**
 * /Me (RFC 7644 §3.11): a credential whose client names a User acts on that User; the answer's
 * Content-Location is the User's own URI. A credential without a User gets 501.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertForbidden,
  assertScimError,
  createUser,
  ORIGIN,
  PATCH_OP,
  tenantWithAdmin,
} from './helpers.ts';

const NO_USER = '/Me is not available: this credential is not associated with a User';

let t: TestApp;
let adminToken: string;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- SCIM JSON
let alice: any;
let aliceToken: string;
let readOnlyToken: string;
let noUserToken: string;

before(async () => {
  t = await startTestApp();
  adminToken = await tenantWithAdmin(t, 'acme');
  alice = await createUser(t, 'acme', adminToken, 'alice');
  const admin = t.app.admin;
  await admin.createClient('acme', {
    id: 'alice-app',
    name: "Alice's app",
    scopes: ['scim:read', 'scim:write'],
    userId: alice.id,
  });
  aliceToken = (await admin.issueToken('acme', 'alice-app')).token;
  await admin.createClient('acme', {
    id: 'alice-ro',
    name: 'Read only',
    scopes: ['User:read'],
    userId: alice.id,
  });
  readOnlyToken = (await admin.issueToken('acme', 'alice-ro')).token;
  await admin.createClient('acme', { id: 'service', name: 'Service', scopes: ['scim:read', 'scim:write'] });
  noUserToken = (await admin.issueToken('acme', 'service')).token;
});
after(async () => {
  await t.close();
});

const ME = '/tenants/acme/scim/v2/Me';

describe('/Me', () => {
  test('GET /Me returns the client’s User with Content-Location = its /Users URI and an ETag', async () => {
    const res = await t.request('GET', ME, { token: aliceToken });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-type'], 'application/scim+json; charset=utf-8');
    const location = `${ORIGIN}/tenants/acme/scim/v2/Users/${alice.id}`;
    assert.equal(res.headers['content-location'], location);
    assert.equal(res.headers.etag, 'W/"1"');
    assert.deepEqual(res.body, alice);
    assert.equal(res.body.meta.location, location);
    assert.equal(res.body.meta.version, 'W/"1"');
    assert.equal(res.headers.location, undefined);
  });

  test('GET /Me honours attributes', async () => {
    const res = await t.request('GET', `${ME}?attributes=userName`, { token: aliceToken });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['id', 'schemas', 'userName']);
  });

  test('PATCH /Me changes the User', async () => {
    const res = await t.request('PATCH', ME, {
      token: aliceToken,
      body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'Alice A.' }] },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-location'], `${ORIGIN}/tenants/acme/scim/v2/Users/${alice.id}`);
    assert.equal(res.headers.etag, 'W/"2"');
    assert.equal(res.body.id, alice.id);
    assert.equal(res.body.displayName, 'Alice A.');
    const fetched = await t.request('GET', `/tenants/acme/scim/v2/Users/${alice.id}`, { token: adminToken });
    assert.equal(fetched.body.displayName, 'Alice A.');
    assert.equal(fetched.headers.etag, 'W/"2"');
    // With If-Match of a stale version: 412.
    const stale = await t.request('PATCH', ME, {
      token: aliceToken,
      headers: { 'if-match': 'W/"1"' },
      body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'x' }] },
    });
    assertScimError(stale, 412, /.+/);
  });

  test('PATCH /Me needs write scope', async () => {
    const got = await t.request('GET', ME, { token: readOnlyToken });
    assert.equal(got.status, 200, got.text);
    assertForbidden(
      await t.request('PATCH', ME, {
        token: readOnlyToken,
        body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'ro' }] },
      }),
      'This client may not write User resources (needs scope User:write or scim:write)',
    );
  });

  test('a client without a userId → 501', async () => {
    assertScimError(await t.request('GET', ME, { token: noUserToken }), 501, NO_USER);
    assertScimError(
      await t.request('PATCH', ME, {
        token: noUserToken,
        body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'x' }] },
      }),
      501,
      NO_USER,
    );
    assertScimError(await t.request('DELETE', ME, { token: noUserToken }), 501, NO_USER);
    // The bootstrap admin token of the default tenant is no User either.
    assertScimError(await t.request('GET', '/scim/v2/Me'), 501, NO_USER);
  });

  test('a client cannot be bound to a User of another tenant', async () => {
    await tenantWithAdmin(t, 'globex');
    await assert.rejects(
      t.app.admin.createClient('globex', { id: 'x', name: 'X', scopes: ['scim:read'], userId: alice.id }),
      { status: 400, scimType: 'invalidValue', message: `userId ${alice.id} is not a User of tenant globex` },
    );
  });
});
