/**
 * JWT access tokens of a tenant's authorization server: signature against the tenant's JWKS
 * (fetched from jwksUri, or configured inline), issuer, audience and expiry checked, the client
 * found by its jwtSubject, and the scope claim narrowing (never widening) the client's scopes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { base64url, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertForbidden, assertUnauthorized, listOk, USER } from './helpers.ts';

const ISSUER_A = 'https://idp-a.example';
const ISSUER_B = 'https://idp-b.example';
const AUDIENCE = 'https://scimd.example';

interface Signer {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function signer(kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return { privateKey, publicKey, jwk };
}

let t: TestApp;
let jwks: Server;
let jwksHits = 0;
let keyA: Signer; // published at the JWKS URI (kid a1)
let keyB: Signer; // configured inline for tenant beta (kid b1)
let rogueSameKid: Signer; // not published, but claims kid a1
let rogueOtherKid: Signer; // not published, kid x9

before(async () => {
  [keyA, keyB, rogueSameKid, rogueOtherKid] = await Promise.all([
    signer('a1'),
    signer('b1'),
    signer('a1'),
    signer('x9'),
  ]);
  jwks = createServer((req, res) => {
    jwksHits++;
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [keyA.jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  const jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;

  t = await startTestApp();
  const admin = t.app.admin;
  await admin.createTenant({
    id: 'alpha',
    settings: { jwt: { issuer: ISSUER_A, audience: AUDIENCE, jwksUri } },
  });
  await admin.createTenant({
    id: 'beta',
    settings: { jwt: { issuer: ISSUER_B, audience: [AUDIENCE, 'other'], jwks: { keys: [keyB.jwk] } } },
  });
  // Same keys and audience as alpha, another issuer: a valid alpha token must still fail here.
  await admin.createTenant({
    id: 'gamma',
    settings: { jwt: { issuer: ISSUER_B, audience: AUDIENCE, jwksUri } },
  });
  for (const tenant of ['alpha', 'beta', 'gamma']) {
    await admin.createClient(tenant, {
      id: 'sync',
      name: 'Sync',
      scopes: ['scim:read', 'scim:write'],
      jwtSubject: 'sync-app',
    });
  }
  await admin.createClient('alpha', {
    id: 'reader',
    name: 'Reader',
    scopes: ['scim:read'],
    jwtSubject: 'reader-app',
  });
});
after(async () => {
  await t?.close();
  jwks?.closeAllConnections();
  await new Promise((r) => jwks?.close(r));
});

interface TokenOptions {
  key?: CryptoKey;
  kid?: string;
  alg?: string;
  issuer?: string;
  audience?: string | string[];
  subject?: string;
  /** Seconds from now; null = no exp claim. */
  expiresIn?: number | null;
  notBefore?: number;
  claims?: Record<string, unknown>;
}

async function token(o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ client_id: o.subject ?? 'sync-app', ...o.claims })
    .setProtectedHeader({ alg: o.alg ?? 'ES256', kid: o.kid ?? 'a1', typ: 'at+jwt' })
    .setIssuer(o.issuer ?? ISSUER_A)
    .setAudience(o.audience ?? AUDIENCE)
    .setSubject(o.subject ?? 'sync-app')
    .setIssuedAt(now - 5)
    .setJti(crypto.randomUUID());
  if (o.expiresIn !== null) jwt.setExpirationTime(now + (o.expiresIn ?? 300));
  if (o.notBefore !== undefined) jwt.setNotBefore(now + o.notBefore);
  return jwt.sign(o.key ?? keyA.privateKey);
}

const list = (tenant: string, tok: string) =>
  t.request('GET', `/tenants/${tenant}/scim/v2/Users`, { token: tok });
const invalid = (code: string) => `Invalid access token (${code})`;

describe('JWT access tokens', () => {
  test('a valid token from the JWKS URI → 200, and writes with scim:write', async () => {
    const tok = await token();
    listOk(await list('alpha', tok));
    const created = await t.request('POST', '/tenants/alpha/scim/v2/Users', {
      token: tok,
      body: { schemas: [USER], userName: 'via-jwt' },
    });
    assert.equal(created.status, 201, created.text);
    assert.ok(jwksHits >= 1);
  });

  test('a valid token checked against inline jwks → 200 (audience one of several)', async () => {
    listOk(await list('beta', await token({ key: keyB.privateKey, kid: 'b1', issuer: ISSUER_B })));
    listOk(
      await list(
        'beta',
        await token({ key: keyB.privateKey, kid: 'b1', issuer: ISSUER_B, audience: 'other' }),
      ),
    );
  });

  test('the scope claim narrows the client scopes: scope "scim:read" → read 200, write 403', async () => {
    const tok = await token({ claims: { scope: 'scim:read' } });
    listOk(await list('alpha', tok));
    assertForbidden(
      await t.request('POST', '/tenants/alpha/scim/v2/Users', {
        token: tok,
        body: { schemas: [USER], userName: 'narrowed' },
      }),
      'This client may not write User resources (needs scope User:write or scim:write)',
    );
    // scp as an array works the same way.
    const scp = await token({ claims: { scp: ['scim:read'] } });
    assertForbidden(
      await t.request('DELETE', '/tenants/alpha/scim/v2/Users/00000000-0000-0000-0000-000000000000', {
        token: scp,
      }),
      'This client may not write User resources (needs scope User:write or scim:write)',
    );
  });

  test('the scope claim cannot widen the client scopes', async () => {
    const tok = await token({ subject: 'reader-app', claims: { scope: 'scim:read scim:write admin' } });
    listOk(await list('alpha', tok));
    assertForbidden(
      await t.request('POST', '/tenants/alpha/scim/v2/Users', {
        token: tok,
        body: { schemas: [USER], userName: 'widened' },
      }),
      'This client may not write User resources (needs scope User:write or scim:write)',
    );
    assertForbidden(
      await t.request('GET', '/admin/v1/tenants/alpha/clients', { token: tok }),
      'This credential may not administer tenant alpha (needs scope admin)',
    );
  });

  test('wrong audience → 401', async () => {
    assertUnauthorized(
      await list('alpha', await token({ audience: 'https://elsewhere.example' })),
      invalid('ERR_JWT_CLAIM_VALIDATION_FAILED'),
    );
  });

  test('wrong issuer → 401', async () => {
    assertUnauthorized(
      await list('alpha', await token({ issuer: 'https://evil.example' })),
      invalid('ERR_JWT_CLAIM_VALIDATION_FAILED'),
    );
  });

  test('expired → 401; no exp → 401; not yet valid → 401', async () => {
    assertUnauthorized(await list('alpha', await token({ expiresIn: -120 })), invalid('ERR_JWT_EXPIRED'));
    assertUnauthorized(
      await list('alpha', await token({ expiresIn: null })),
      invalid('ERR_JWT_CLAIM_VALIDATION_FAILED'),
    );
    assertUnauthorized(
      await list('alpha', await token({ notBefore: 600 })),
      invalid('ERR_JWT_CLAIM_VALIDATION_FAILED'),
    );
  });

  test('signed by an unknown key claiming a published kid → 401', async () => {
    assertUnauthorized(
      await list('alpha', await token({ key: rogueSameKid.privateKey, kid: 'a1' })),
      invalid('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'),
    );
    assertUnauthorized(
      await list('beta', await token({ key: rogueSameKid.privateKey, kid: 'b1', issuer: ISSUER_B })),
      invalid('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'),
    );
  });

  test('signed by an unknown key with another kid → 401', async () => {
    assertUnauthorized(
      await list('alpha', await token({ key: rogueOtherKid.privateKey, kid: 'x9' })),
      invalid('ERR_JWKS_NO_MATCHING_KEY'),
    );
    assertUnauthorized(
      await list('beta', await token({ key: rogueOtherKid.privateKey, kid: 'x9', issuer: ISSUER_B })),
      invalid('ERR_JWKS_NO_MATCHING_KEY'),
    );
  });

  test('alg "none" → 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid: 'a1' }));
    const payload = base64url.encode(
      JSON.stringify({
        iss: ISSUER_A,
        aud: AUDIENCE,
        sub: 'sync-app',
        client_id: 'sync-app',
        exp: now + 300,
      }),
    );
    assertUnauthorized(await list('alpha', `${header}.${payload}.`), invalid('ERR_JOSE_ALG_NOT_ALLOWED'));
    // A signature part on an alg none token changes nothing.
    assertUnauthorized(await list('alpha', `${header}.${payload}.AAAA`), invalid('ERR_JOSE_ALG_NOT_ALLOWED'));
  });

  test('HS256 with the public key as the HMAC secret → 401', async () => {
    const spki = new TextEncoder().encode(await exportSPKI(keyA.publicKey));
    assertUnauthorized(
      await list('alpha', await token({ alg: 'HS256', key: spki as unknown as CryptoKey })),
      invalid('ERR_JOSE_ALG_NOT_ALLOWED'),
    );
    const jwkSecret = new TextEncoder().encode(JSON.stringify(keyA.jwk));
    assertUnauthorized(
      await list('alpha', await token({ alg: 'HS256', key: jwkSecret as unknown as CryptoKey })),
      invalid('ERR_JOSE_ALG_NOT_ALLOWED'),
    );
  });

  test('a token for a client subject that does not exist → 401', async () => {
    assertUnauthorized(
      await list('alpha', await token({ subject: 'ghost-app' })),
      'Invalid access token: no client of this tenant matches it',
    );
  });

  test("tenant A's token presented to tenant B → 401", async () => {
    const tok = await token();
    listOk(await list('alpha', tok));
    // beta: other keys (and another issuer).
    assertUnauthorized(await list('beta', tok), invalid('ERR_JWKS_NO_MATCHING_KEY'));
    // gamma: the same keys and audience, another issuer.
    assertUnauthorized(await list('gamma', tok), invalid('ERR_JWT_CLAIM_VALIDATION_FAILED'));
    // The default tenant has no JWT settings at all.
    assertUnauthorized(await t.request('GET', '/scim/v2/Users', { token: tok }));
    // And B's token on A.
    const b = await token({ key: keyB.privateKey, kid: 'b1', issuer: ISSUER_B });
    listOk(await list('beta', b));
    assertUnauthorized(await list('alpha', b), invalid('ERR_JWKS_NO_MATCHING_KEY'));
  });

  test('a garbled JWT → 401', async () => {
    const tok = await token();
    const [h, p, s] = tok.split('.');
    const tampered = base64url.encode(
      JSON.stringify({
        ...JSON.parse(new TextDecoder().decode(base64url.decode(p))),
        client_id: 'reader-app',
      }),
    );
    assertUnauthorized(
      await list('alpha', `${h}.${tampered}.${s}`),
      invalid('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'),
    );
    assertUnauthorized(await list('alpha', `${h}.${p}.`), /^Invalid access token \(ERR_/);
  });
});
