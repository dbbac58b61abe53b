/**
 * Per-tenant SET signing keys and the JWKS, through a whole app: signatures verify with `jose`
 * against the JWKS the server publishes; rotation keeps old SETs verifiable until the old key is
 * retired; one tenant's JWKS never holds another's keys. Runs on PGlite, and on PostgreSQL when
 * DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compactVerify,
  createLocalJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JSONWebKeySet,
  type JWK,
} from 'jose';
import { buildScimEvent, newTxn, type SetClaims } from '../../src/events/set.ts';
import { SET_TYP } from '../../src/events/keys.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

function claims(audience = 'https://receiver.example/feed'): SetClaims {
  return buildScimEvent(
    { type: 'delete', endpoint: '/Users', resource: { id: 'u1', externalId: 'jdoe' } },
    { issuer: 'http://scimd.test/scim/v2', audience, txn: newTxn() },
  );
}

describe('SET signing keys and JWKS', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    await t.app.admin.createTenant({ id: 'acme' });
    await t.app.admin.createTenant({ id: 'beta' });
  });
  after(async () => {
    await t?.close();
  });

  async function jwks(path = '/.well-known/jwks.json'): Promise<JSONWebKeySet> {
    const res = await t.request('GET', path, { token: false });
    assert.equal(res.status, 200, res.text);
    return JSON.parse(res.text) as JSONWebKeySet;
  }

  async function verify(token: string, path = '/.well-known/jwks.json') {
    return jwtVerify(token, createLocalJWKSet(await jwks(path)), { typ: SET_TYP });
  }

  test('a tenant with no key yet publishes an empty set, without credentials, cacheable', async () => {
    const res = await t.request('GET', '/tenants/beta/.well-known/jwks.json', { token: false });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { keys: [] });
    assert.equal(res.headers['cache-control'], 'public, max-age=300');
    assert.match(res.headers['content-type'] ?? '', /^application\/jwk-set\+json/);
  });

  test('signed SET: header typ secevent+jwt, alg ES256, kid; verifies against the served JWKS', async () => {
    const set = claims();
    const token = await t.app.signingKeys.sign('default', set);
    const header = decodeProtectedHeader(token);
    const active = await t.app.signingKeys.activeKey('default');
    assert.deepEqual(header, { alg: 'ES256', kid: active.kid, typ: 'secevent+jwt' });
    const { payload, protectedHeader } = await verify(token);
    assert.deepEqual(payload, set);
    assert.equal(protectedHeader.kid, active.kid);
  });

  test('the JWKS holds public keys only, with kid, alg and use', async () => {
    const { keys } = await jwks();
    assert.equal(keys.length, 1);
    const [key] = keys as JWK[];
    assert.deepEqual(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    assert.equal(key.alg, 'ES256');
    assert.equal(key.crv, 'P-256');
    assert.equal(key.use, 'sig');
    assert.equal('d' in key, false);
  });

  test('the same key signs until rotation', async () => {
    const a = decodeProtectedHeader(await t.app.signingKeys.sign('default', claims()));
    const b = decodeProtectedHeader(await t.app.signingKeys.sign('default', claims()));
    assert.equal(a.kid, b.kid);
  });

  test('rotation: new SETs use the new key; old SETs verify until the old key is retired, then its kid is gone', async () => {
    const keys = t.app.signingKeys;
    const oldToken = await keys.sign('acme', claims());
    const oldKid = decodeProtectedHeader(oldToken).kid!;
    const path = '/tenants/acme/.well-known/jwks.json';

    const rotated = await keys.rotate('acme');
    assert.notEqual(rotated.kid, oldKid);
    const newToken = await keys.sign('acme', claims());
    assert.equal(decodeProtectedHeader(newToken).kid, rotated.kid);

    // Both published, newest first; both tokens verify.
    assert.deepEqual(
      (await jwks(path)).keys.map((k) => k.kid),
      [rotated.kid, oldKid],
    );
    await verify(oldToken, path);
    await verify(newToken, path);
    const listed = await keys.list('acme');
    assert.equal(listed.find((k) => k.kid === oldKid)?.notAfter instanceof Date, true);
    assert.equal(listed.find((k) => k.kid === rotated.kid)?.notAfter, null);

    assert.equal(await keys.retire('acme', oldKid), true);
    assert.deepEqual(
      (await jwks(path)).keys.map((k) => k.kid),
      [rotated.kid],
    );
    await assert.rejects(verify(oldToken, path), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
    await verify(newToken, path);
    assert.equal(await keys.retire('acme', oldKid), false);
  });

  test('retireRotatedBefore retires only keys rotated out longer ago than the grace period', async () => {
    const keys = t.app.signingKeys;
    const first = await keys.activeKey('acme');
    await keys.rotate('acme');
    assert.deepEqual(await keys.retireRotatedBefore('acme', 3600), []);
    assert.deepEqual(await keys.retireRotatedBefore('acme', 0), [first.kid]);
    assert.equal(
      (await jwks('/tenants/acme/.well-known/jwks.json')).keys.some((k) => k.kid === first.kid),
      false,
    );
  });

  test("a tenant's JWKS never contains another tenant's keys; its SETs do not verify with another's JWKS", async () => {
    const betaToken = await t.app.signingKeys.sign('beta', claims());
    const betaKid = decodeProtectedHeader(betaToken).kid!;
    const acme = await jwks('/tenants/acme/.well-known/jwks.json');
    const dflt = await jwks('/.well-known/jwks.json');
    const beta = await jwks('/tenants/beta/.well-known/jwks.json');
    assert.deepEqual(
      beta.keys.map((k) => k.kid),
      [betaKid],
    );
    const betaKids = new Set(beta.keys.map((k) => k.kid));
    for (const k of [...acme.keys, ...dflt.keys]) assert.equal(betaKids.has(k.kid), false);
    const acmeKids = new Set(acme.keys.map((k) => k.kid));
    for (const k of dflt.keys) assert.equal(acmeKids.has(k.kid), false);
    await verify(betaToken, '/tenants/beta/.well-known/jwks.json');
    await assert.rejects(verify(betaToken, '/tenants/acme/.well-known/jwks.json'));
    await assert.rejects(verify(betaToken, '/.well-known/jwks.json'));
  });

  test('/tenants/default/.well-known/jwks.json is the default tenant set; an unknown tenant is 404', async () => {
    assert.deepEqual(await jwks('/tenants/default/.well-known/jwks.json'), await jwks());
    const res = await t.request('GET', '/tenants/nope/.well-known/jwks.json', { token: false });
    assert.equal(res.status, 404);
  });

  test('unsigned on request: alg none, typ secevent+jwt, empty signature, same claims', async () => {
    const set = claims();
    const token = await t.app.signingKeys.sign('default', set, { unsigned: true });
    const [header, payload, signature] = token.split('.');
    assert.equal(signature, '');
    assert.deepEqual(JSON.parse(Buffer.from(header, 'base64url').toString()), {
      alg: 'none',
      typ: 'secevent+jwt',
    });
    assert.deepEqual(JSON.parse(Buffer.from(payload, 'base64url').toString()), set);
    // A verifier expecting signed SETs refuses it.
    await assert.rejects(verify(token));
  });

  test('another algorithm can be chosen at rotation (RS256) and verifies the same way', async () => {
    const key = await t.app.signingKeys.rotate('beta', 'RS256');
    const token = await t.app.signingKeys.sign('beta', claims());
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'RS256', kid: key.kid, typ: 'secevent+jwt' });
    const set = await jwks('/tenants/beta/.well-known/jwks.json');
    const rsa = set.keys.find((k) => k.kid === key.kid)!;
    assert.equal(rsa.kty, 'RSA');
    assert.equal('d' in rsa || 'p' in rsa || 'q' in rsa, false);
    await compactVerify(token, createLocalJWKSet(set));
  });

  test('keys go with their tenant', async () => {
    await t.app.signingKeys.sign('acme', claims());
    await t.app.admin.deleteTenant('acme');
    const res = await t.app.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM signing_keys WHERE tenant_id = 'acme'",
    );
    assert.equal(res.rows[0].n, 0);
  });

  test('two nodes creating the first key at once end with one active key', async () => {
    await t.app.admin.createTenant({ id: 'race' });
    const { SigningKeys } = await import('../../src/events/keys.ts');
    const nodes = [new SigningKeys(t.app.db), new SigningKeys(t.app.db), new SigningKeys(t.app.db)];
    const kids = await Promise.all(
      nodes.map(async (n) => decodeProtectedHeader(await n.sign('race', claims())).kid),
    );
    assert.equal(new Set(kids).size, 1);
    assert.equal((await jwks('/tenants/race/.well-known/jwks.json')).keys.length, 1);
  });
});
