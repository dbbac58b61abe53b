/**
 * SSO just-in-time provisioning (use-case behaviours 16 and 38): POST
 * /admin/v1/tenants/{t}/jit/oidc with an OIDC ID token signed by a test identity provider (a jose
 * key pair made here; its JWKS inline in the tenant settings, or served on a loopback URL).
 * Created 201 from the claims, updated 200 without duplicates, a User pulled earlier is matched,
 * every rejected token gets an exact SCIM error, tenants are isolated, the pull flow covering
 * Users is requested with trigger 'jit'. PGlite, and PostgreSQL when DATABASE_URL is set.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { RequestContext } from '../../src/service/resources.ts';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import { addConnection, addFlow, clearRequests, requestedTriggers } from './triggers-fixtures.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const ISS = 'https://idp.example';
const AUD = 'login-app';
const ACME_ISS = 'https://acme-idp.example';
const JSON_HEADERS = { 'content-type': 'application/json' };

let t: TestApp;
let jwksServer: Server;
let key: CryptoKey;
let otherKey: CryptoKey;
let acmeKey: CryptoKey;
let jitToken: string;
let acmeJitToken: string;
let acmeReader: string;

interface TokenOptions {
  iss?: string;
  aud?: string;
  kid?: string;
  key?: CryptoKey;
  /** Seconds relative to now. */
  iat?: number;
  exp?: number;
  nbf?: number;
}

async function idToken(claims: Record<string, unknown>, o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? 'k1', typ: 'JWT' })
    .setIssuer(o.iss ?? ISS)
    .setAudience(o.aud ?? AUD)
    .setIssuedAt(now + (o.iat ?? 0))
    .setExpirationTime(now + (o.exp ?? 300));
  if (o.nbf !== undefined) jwt.setNotBefore(now + o.nbf);
  return jwt.sign(o.key ?? key);
}

const alice = {
  sub: 'sub-alice',
  preferred_username: 'alice@example.com',
  name: 'Alice Liddell',
  given_name: 'Alice',
  family_name: 'Liddell',
  email: 'alice@example.com',
};

function signIn(token: string, tenant = 'default', bearer?: string): Promise<TestResponse> {
  return t.request('POST', `/admin/v1/tenants/${tenant}/jit/oidc`, {
    body: { idToken: token },
    headers: JSON_HEADERS,
    token: bearer,
  });
}

/** The SCIM error body of a response, exactly. */
function assertError(res: TestResponse, status: number, detail: string | RegExp, scimType?: string): void {
  assert.equal(res.status, status, res.text);
  const { detail: got, ...rest } = res.body as { detail: string };
  assert.deepEqual(rest, { schemas: [ERROR], status: String(status), ...(scimType ? { scimType } : {}) });
  if (typeof detail === 'string') assert.equal(got, detail);
  else assert.match(got, detail);
}

async function usersOf(tenant = 'default'): Promise<{ id: string; userName: string; externalId?: string }[]> {
  const res = await t.app.db.query<{ id: string; doc: { userName: string; externalId?: string } }>(
    `SELECT id, doc FROM resources WHERE tenant_id = $1 AND resource_type = 'User' ORDER BY doc->>'userName'`,
    [tenant],
  );
  return res.rows.map((r) => ({ id: r.id, userName: r.doc.userName, externalId: r.doc.externalId }));
}

before(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const acmePair = await generateKeyPair('ES256', { extractable: true });
  acmeKey = acmePair.privateKey;
  const acmeJwk = { ...(await exportJWK(acmePair.publicKey)), kid: 'acme-1', alg: 'ES256' };
  jwksServer = createServer((req, res) => {
    if (req.url === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [acmeJwk] }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;

  t = await startTestApp({ backgroundWorkers: false });
  const set = await t.request('PATCH', '/admin/v1/tenants/default', {
    headers: JSON_HEADERS,
    body: { settings: { jit: { oidc: { issuer: ISS, audience: AUD, jwks: { keys: [jwk] } } } } },
  });
  assert.equal(set.status, 200, set.text);
  await t.app.admin.createTenant({
    id: 'acme',
    settings: {
      jit: {
        oidc: {
          issuer: ACME_ISS,
          audience: ['acme-login', 'acme-portal'],
          jwksUri,
          claims: { userName: 'email', externalId: 'sub', 'name.familyName': 'family_name' },
        },
      },
    },
  });
  await t.app.admin.createTenant({ id: 'plain' });
  await t.app.admin.createClient('default', { id: 'login', name: 'login service', scopes: ['jit'] });
  jitToken = (await t.app.admin.issueToken('default', 'login')).token;
  await t.app.admin.createClient('acme', { id: 'acme-login', name: 'acme login', scopes: ['jit'] });
  acmeJitToken = (await t.app.admin.issueToken('acme', 'acme-login')).token;
  await t.app.admin.createClient('acme', { id: 'reader', name: 'reader', scopes: ['scim:read'] });
  acmeReader = (await t.app.admin.issueToken('acme', 'reader')).token;

  const db = t.app.db;
  await addConnection(db, 'default', 'hr');
  await addConnection(db, 'default', 'crm');
  await addConnection(db, 'acme', 'hr');
  await addFlow(db, 'default', {
    id: 'pull-users',
    connection: 'hr',
    direction: 'pull',
    mode: 'delta',
    types: ['User'],
  });
  await addFlow(db, 'default', {
    id: 'pull-groups',
    connection: 'hr',
    direction: 'pull',
    mode: 'full',
    types: ['Group'],
  });
  await addFlow(db, 'default', {
    id: 'pull-off',
    connection: 'hr',
    direction: 'pull',
    mode: 'full',
    types: ['User'],
    enabled: false,
  });
  await addFlow(db, 'default', {
    id: 'push-users',
    connection: 'crm',
    direction: 'push',
    mode: 'changes',
    types: ['User'],
    onLocalChange: true,
  });
  await addFlow(db, 'acme', {
    id: 'acme-pull',
    connection: 'hr',
    direction: 'pull',
    mode: 'full',
    types: ['User'],
  });
});
after(async () => {
  await t?.close();
  await new Promise((r) => jwksServer?.close(r));
});
beforeEach(async () => {
  await t.app.syncTriggers.idle();
  await clearRequests(t.app.db);
});

describe('behaviours 16 and 38: OIDC just-in-time provisioning', () => {
  test('behaviour 16: an unknown user is created from the claims (201); the pull of Users is requested', async () => {
    const res = await signIn(await idToken(alice), 'default', jitToken);
    assert.equal(res.status, 201, res.text);
    const { id, meta, ...attrs } = res.body;
    assert.deepEqual(attrs, {
      schemas: [USER],
      externalId: 'sub-alice',
      userName: 'alice@example.com',
      displayName: 'Alice Liddell',
      name: { givenName: 'Alice', familyName: 'Liddell' },
      emails: [{ value: 'alice@example.com' }],
    });
    assert.equal(res.headers.location, `http://scimd.test/scim/v2/Users/${id}`);
    assert.equal(meta.location, res.headers.location);
    assert.equal(res.headers.etag, meta.version);
    assert.equal(res.headers['content-type'], 'application/scim+json; charset=utf-8');
    // Written by client jit:oidc.
    const changes = await t.app.db.query<{ client_id: string; operation: string }>(
      `SELECT client_id, operation FROM changes WHERE tenant_id = 'default' AND resource_id = $1`,
      [id],
    );
    assert.deepEqual(changes.rows, [{ client_id: 'jit:oidc', operation: 'create' }]);
    await t.app.syncTriggers.idle();
    // The enabled pull of Users with 'jit'; the push of Users by the local-change trigger.
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {
      'pull-users': 'jit',
      'push-users': 'change',
    });
  });

  test('behaviour 38: the next sign-in updates the same User (200), no duplicate; unchanged claims write nothing', async () => {
    const before = (await usersOf()).filter((u) => u.externalId === 'sub-alice');
    assert.equal(before.length, 1);
    const res = await signIn(
      await idToken({ ...alice, family_name: 'Pleasance', email: 'alice@wonder.example' }),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, before[0].id);
    assert.deepEqual(res.body.name, { givenName: 'Alice', familyName: 'Pleasance' });
    assert.deepEqual(res.body.emails, [{ value: 'alice@wonder.example' }]);
    assert.equal(res.headers.location, undefined);
    const version = res.body.meta.version;
    await t.app.syncTriggers.idle();
    // An update: the push follows the change; no pull is requested for a known user.
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), { 'push-users': 'change' });
    await clearRequests(t.app.db);

    const same = await signIn(
      await idToken({ ...alice, family_name: 'Pleasance', email: 'alice@wonder.example' }),
    );
    assert.equal(same.status, 200, same.text);
    assert.equal(same.body.meta.version, version);
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {});
    assert.equal((await usersOf()).filter((u) => u.userName === 'alice@example.com').length, 1);
  });

  test('behaviour 38: a User created earlier by a pull is matched by externalId, then by userName', async () => {
    const ctx: RequestContext = {
      tenant: 'default',
      baseUrl: 'http://scimd.test/scim/v2',
      clientId: 'sync:pull-users',
      limits: t.app.config,
    };
    const rt = t.app.registry.resourceType('User')!;
    const bob = await t.app.service.create(ctx, rt, {
      schemas: [USER],
      userName: 'bob',
      externalId: 'sub-bob',
      title: 'Engineer',
    });
    const res = await signIn(await idToken({ sub: 'sub-bob', preferred_username: 'bob', given_name: 'Bob' }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, bob.resource.id);
    assert.equal(res.body.title, 'Engineer');
    assert.deepEqual(res.body.name, { givenName: 'Bob' });

    // Pulled with the HR system's own externalId: matched by userName, and that externalId is kept.
    const carol = await t.app.service.create(ctx, rt, {
      schemas: [USER],
      userName: 'carol',
      externalId: 'hr-77',
    });
    const res2 = await signIn(
      await idToken({ sub: 'sub-carol', preferred_username: 'CAROL', name: 'Carol' }),
    );
    assert.equal(res2.status, 200, res2.text);
    assert.equal(res2.body.id, carol.resource.id);
    assert.equal(res2.body.externalId, 'hr-77');
    assert.equal(res2.body.displayName, 'Carol');
    assert.equal((await usersOf()).filter((u) => u.userName.toLowerCase() === 'carol').length, 1);
  });

  test('rejected ID tokens: exact SCIM errors (401, or 400 when not a JWT), nothing written', async () => {
    const users = await usersOf();
    const dave = { sub: 'sub-dave', preferred_username: 'dave' };
    const rejected = (why: string) => `The ID token is rejected: ${why}`;
    assertError(
      await signIn(await idToken(dave, { iat: -400, exp: -100 })),
      401,
      rejected('it has expired (exp)'),
    );
    assertError(
      await signIn(await idToken(dave, { aud: 'another-app' })),
      401,
      rejected('it is not meant for login-app (aud)'),
    );
    assertError(
      await signIn(await idToken(dave, { iss: 'https://evil.example' })),
      401,
      rejected('it was not issued by https://idp.example (iss)'),
    );
    assertError(
      await signIn(await idToken(dave, { key: otherKey })),
      401,
      rejected("its signature does not verify with the identity provider's keys"),
    );
    assertError(
      await signIn(await idToken(dave, { kid: 'unknown' })),
      401,
      rejected("no key of the identity provider's JWKS matches its header (kid, alg)"),
    );
    assertError(
      await signIn(await idToken(dave, { iat: -7200, exp: 3600 })),
      401,
      rejected('it was issued more than 600 seconds ago (iat)'),
    );
    assertError(await signIn(await idToken(dave, { nbf: 600 })), 401, rejected('it is not valid yet (nbf)'));
    assertError(
      await signIn(await idToken({ preferred_username: 'dave' })),
      401,
      rejected('it has no "sub" claim'),
    );
    assertError(await signIn('not-a-jwt'), 400, /^The ID token is not a valid signed JWT: /, 'invalidValue');
    // A valid token without the claim userName comes from: 400, nothing created.
    assertError(
      await signIn(await idToken({ sub: 'sub-erin' })),
      400,
      'The ID token has no "preferred_username" claim, which settings.jit.oidc.claims maps to userName; ' +
        'a User cannot be created without it',
      'invalidValue',
    );
    assertError(
      await signIn(await idToken({ sub: 'sub-erin', preferred_username: 42 })),
      400,
      'The ID token\'s "preferred_username" claim (for userName) is not a string',
      'invalidValue',
    );
    const noBody = await t.request('POST', '/admin/v1/tenants/default/jit/oidc', {
      body: {},
      headers: JSON_HEADERS,
    });
    assertError(noBody, 400, "body must have required property 'idToken'", 'invalidValue');
    assert.deepEqual(await usersOf(), users);
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {});
  });

  test('JWKS from a URL; tenants are isolated (same sub, separate Users; tokens not accepted across)', async () => {
    const token = await idToken(
      { sub: 'sub-alice', email: 'alice@acme.example', family_name: 'A' },
      { iss: ACME_ISS, aud: 'acme-portal', kid: 'acme-1', key: acmeKey },
    );
    const res = await signIn(token, 'acme', acmeJitToken);
    assert.equal(res.status, 201, res.text);
    const { id, meta, ...attrs } = res.body;
    assert.deepEqual(attrs, {
      schemas: [USER],
      userName: 'alice@acme.example',
      externalId: 'sub-alice',
      name: { familyName: 'A' },
    });
    assert.equal(meta.location, `http://scimd.test/tenants/acme/scim/v2/Users/${id}`);
    const defaultAlice = (await usersOf()).find((u) => u.externalId === 'sub-alice');
    assert.notEqual(defaultAlice?.id, id);
    assert.equal(defaultAlice?.userName, 'alice@example.com');
    assert.deepEqual(await requestedTriggers(t.app.db, 'acme'), { 'acme-pull': 'jit' });
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {});
    // acme's token on default: signed by a key default's identity provider does not have.
    assertError(
      await signIn(token),
      401,
      "The ID token is rejected: no key of the identity provider's JWKS matches its header (kid, alg)",
    );
    // A tenant without JIT settings.
    const plain = await signIn(await idToken(alice), 'plain');
    assertError(
      plain,
      404,
      'OIDC just-in-time provisioning is not configured for tenant plain (settings.jit.oidc)',
    );
  });

  test('scope jit: a login service may sign users in, and nothing else; others may not sign in', async () => {
    const token = await idToken(
      { sub: 'sub-frank', email: 'frank@acme.example' },
      { iss: ACME_ISS, aud: 'acme-login', kid: 'acme-1', key: acmeKey },
    );
    assertError(
      await signIn(token, 'acme', acmeReader),
      403,
      'This credential may not sign users in to tenant acme (needs scope jit)',
    );
    assertError(
      await signIn(token, 'default', acmeJitToken),
      403,
      'This credential may not sign users in to tenant default (needs scope jit)',
    );
    const read = await t.request('GET', '/tenants/acme/scim/v2/Users', { token: acmeJitToken });
    assert.equal(read.status, 403, read.text);
    assert.equal((await signIn(token, 'acme', acmeJitToken)).status, 201);
  });

  test('settings are validated: a JWKS source is required, claims name known attributes', async () => {
    const patch = (oidc: unknown) =>
      t.request('PATCH', '/admin/v1/tenants/plain', {
        headers: JSON_HEADERS,
        body: { settings: { jit: { oidc } } },
      });
    const noKeys = await patch({ issuer: ISS, audience: AUD });
    assert.equal(noKeys.status, 400, noKeys.text);
    const badClaim = await patch({
      issuer: ISS,
      audience: AUD,
      jwksUri: 'https://idp.example/jwks',
      claims: { userName: 'email', password: 'pw' },
    });
    assertError(
      badClaim,
      400,
      'body/settings/jit/oidc/claims/password is not an allowed property',
      'invalidValue',
    );
    const noUserName = await patch({
      issuer: ISS,
      audience: AUD,
      jwksUri: 'https://idp.example/jwks',
      claims: { externalId: 'sub' },
    });
    assertError(
      noUserName,
      400,
      "body/settings/jit/oidc/claims must have required property 'userName'",
      'invalidValue',
    );
    const ok = await patch({ issuer: ISS, audience: AUD, jwksUri: 'https://idp.example/jwks' });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.settings.jit, {
      oidc: { issuer: ISS, audience: AUD, jwksUri: 'https://idp.example/jwks' },
    });
  });
});
