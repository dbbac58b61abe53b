/**
 * Opaque bearer tokens issued by scimd: bound to one tenant, stored only as a SHA-256 digest,
 * refused once expired, revoked or orphaned by their client's deletion, and issued only within the
 * tenant's token policy.
 */
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertScimError, assertUnauthorized, listOk, scimBase, tenantWithAdmin } from './helpers.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
  await tenantWithAdmin(t, 'acme');
  await tenantWithAdmin(t, 'globex');
  await t.app.admin.createClient('acme', { id: 'sync', name: 'Sync', scopes: ['scim:read', 'scim:write'] });
});
after(async () => {
  await t.close();
});

const get = (tenant: string, token: string) => t.request('GET', `${scimBase(tenant)}/Users`, { token });

describe('opaque tokens', () => {
  test('a token works on its own tenant prefix only', async () => {
    const issued = await t.app.admin.issueToken('acme', 'sync');
    assert.match(issued.token, /^scimd_[\w-]{43}$/);
    assert.equal(issued.tenant, 'acme');
    assert.equal(issued.client, 'sync');
    assert.equal(issued.expiresAt, undefined);
    listOk(await get('acme', issued.token));
    // Another tenant, and the default tenant's /scim/v2: refused as if the token were unknown.
    assertUnauthorized(await get('globex', issued.token));
    assertUnauthorized(await get('default', issued.token));
    assertUnauthorized(await get('acme', `${issued.token}x`));
    assertUnauthorized(await get('acme', issued.token.slice(0, -1)));
  });

  test('the tokens table holds the SHA-256 digest, never the secret', async () => {
    const issued = await t.app.admin.issueToken('acme', 'sync', { description: 'digest check' });
    const rows = (await t.app.db.query('SELECT * FROM tokens WHERE id = $1', [issued.id])).rows;
    assert.equal(rows.length, 1);
    const row = rows[0];
    assert.equal(row.token_hash, createHash('sha256').update(issued.token).digest('hex'));
    const secretBody = issued.token.slice('scimd_'.length);
    for (const [column, value] of Object.entries(row)) {
      const text = value instanceof Date ? value.toISOString() : JSON.stringify(value);
      assert.ok(!text.includes(secretBody), `column ${column} contains the secret`);
    }
    // Nor anywhere else in the table.
    const all = JSON.stringify((await t.app.db.query('SELECT * FROM tokens')).rows);
    assert.ok(!all.includes(secretBody));
  });

  test('an expired token is refused', async () => {
    const issued = await t.app.admin.issueToken('acme', 'sync', { expiresInSeconds: 3600 });
    assert.ok(issued.expiresAt);
    listOk(await get('acme', issued.token));
    await t.app.db.query(`UPDATE tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      issued.id,
    ]);
    assertUnauthorized(await get('acme', issued.token));
  });

  test('a token expires by the clock too (expiresInSeconds: 2)', async () => {
    const issued = await t.app.admin.issueToken('acme', 'sync', { expiresInSeconds: 2 });
    const expiresAt = new Date(issued.expiresAt!).getTime();
    assert.ok(Math.abs(expiresAt - (Date.now() + 2000)) < 1000, issued.expiresAt);
    listOk(await get('acme', issued.token));
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 50));
    assertUnauthorized(await get('acme', issued.token));
  });

  test('a revoked token is refused at once; other tokens of the client keep working', async () => {
    const a = await t.app.admin.issueToken('acme', 'sync');
    const b = await t.app.admin.issueToken('acme', 'sync');
    listOk(await get('acme', a.token));
    const revoked = await t.app.admin.revokeToken('acme', a.id);
    assert.ok(revoked.revokedAt);
    assertUnauthorized(await get('acme', a.token));
    listOk(await get('acme', b.token));
    // Another tenant cannot revoke it (the token is not found there).
    await assert.rejects(t.app.admin.revokeToken('globex', b.id), { status: 404 });
    listOk(await get('acme', b.token));
  });

  test("a deleted client's tokens are refused", async () => {
    await t.app.admin.createClient('acme', { id: 'doomed', name: 'Doomed', scopes: ['scim:read'] });
    const issued = await t.app.admin.issueToken('acme', 'doomed');
    listOk(await get('acme', issued.token));
    await t.app.admin.deleteClient('acme', 'doomed');
    assertUnauthorized(await get('acme', issued.token));
    // Recreating a client with the same id does not revive the old token.
    await t.app.admin.createClient('acme', { id: 'doomed', name: 'Doomed again', scopes: ['scim:read'] });
    assertUnauthorized(await get('acme', issued.token));
  });

  test('a token with only scim:read cannot write (403, not 401)', async () => {
    await t.app.admin.createClient('acme', { id: 'reader', name: 'Reader', scopes: ['scim:read'] });
    const issued = await t.app.admin.issueToken('acme', 'reader');
    const res = await t.request('POST', '/tenants/acme/scim/v2/Users', {
      token: issued.token,
      body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'nope' },
    });
    assertScimError(
      res,
      403,
      'This client may not write User resources (needs scope User:write or scim:write)',
    );
  });
});

describe('tenant token policy', () => {
  let operator: string;
  before(async () => {
    await t.app.admin.createTenant({
      id: 'strict',
      settings: { tokens: { maxLifetimeSeconds: 3600 } },
    });
    await t.app.admin.createClient('strict', { id: 'c', name: 'C', scopes: ['scim:read'] });
    await t.app.admin.createTenant({
      id: 'defaults',
      settings: { tokens: { defaultLifetimeSeconds: 600, maxLifetimeSeconds: 3600 } },
    });
    await t.app.admin.createClient('defaults', { id: 'c', name: 'C', scopes: ['scim:read'] });
    await t.app.admin.createTenant({
      id: 'onlydefault',
      settings: { tokens: { defaultLifetimeSeconds: 60 } },
    });
    await t.app.admin.createClient('onlydefault', { id: 'c', name: 'C', scopes: ['scim:read'] });
    operator = 'test-admin-token';
  });

  const issue = (tenant: string, body: unknown) =>
    t.request('POST', `/admin/v1/tenants/${tenant}/clients/c/tokens`, { token: operator, body });

  test('maxLifetimeSeconds refuses a longer token', async () => {
    assertScimError(
      await issue('strict', { expiresInSeconds: 3601 }),
      400,
      "expiresInSeconds exceeds this tenant's maximum of 3600",
      'invalidValue',
    );
  });

  test('maxLifetimeSeconds refuses a token without expiry', async () => {
    assertScimError(
      await issue('strict', {}),
      400,
      'Tokens of this tenant must expire (at most 3600 s)',
      'invalidValue',
    );
  });

  test('maxLifetimeSeconds allows a token up to the maximum', async () => {
    const before = Date.now();
    const res = await issue('strict', { expiresInSeconds: 3600 });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers['cache-control'], 'no-store');
    const expires = new Date(res.body.expiresAt).getTime();
    assert.ok(expires >= before + 3600_000 - 1000 && expires <= Date.now() + 3600_000 + 1000);
    listOk(await get('strict', res.body.token));
  });

  test('defaultLifetimeSeconds applies when no lifetime is requested', async () => {
    const before = Date.now();
    const res = await issue('defaults', {});
    assert.equal(res.status, 201, res.text);
    const expires = new Date(res.body.expiresAt).getTime();
    assert.ok(
      expires >= before + 600_000 - 1000 && expires <= Date.now() + 600_000 + 1000,
      res.body.expiresAt,
    );
    const row = (
      await t.app.db.query<{ expires_at: Date }>('SELECT expires_at FROM tokens WHERE id = $1', [res.body.id])
    ).rows[0];
    assert.equal(new Date(row.expires_at).toISOString(), res.body.expiresAt);

    const onlyDefault = await t.app.admin.issueToken('onlydefault', 'c');
    const e2 = new Date(onlyDefault.expiresAt!).getTime();
    assert.ok(Math.abs(e2 - (Date.now() + 60_000)) < 2000);
    // A requested lifetime beats the default, within the maximum.
    const explicit = await issue('defaults', { expiresInSeconds: 1200 });
    assert.equal(explicit.status, 201);
    assert.ok(Math.abs(new Date(explicit.body.expiresAt).getTime() - (Date.now() + 1_200_000)) < 2000);
    assertScimError(
      await issue('defaults', { expiresInSeconds: 7200 }),
      400,
      "expiresInSeconds exceeds this tenant's maximum of 3600",
      'invalidValue',
    );
  });

  test('without a policy a token has no expiry', async () => {
    const issued = await t.app.admin.issueToken('acme', 'sync');
    assert.equal(issued.expiresAt, undefined);
    const row = (
      await t.app.db.query<{ expires_at: Date | null }>('SELECT expires_at FROM tokens WHERE id = $1', [
        issued.id,
      ])
    ).rows[0];
    assert.equal(row.expires_at, null);
  });
});
