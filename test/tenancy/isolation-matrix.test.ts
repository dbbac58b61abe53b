/**
 * The isolation matrix: every SCIM and admin endpoint, aimed at tenant A's resources, with every
 * kind of credential. The expected status of each cell is data (the tables below); a cell's
 * request is built from fresh fixtures where it destroys something, so cells do not depend on
 * each other's order. Rules: an unknown, foreign, expired or revoked credential is 401; a missing
 * scope is 403; another tenant's resource is 404; /ServiceProviderConfig is open.
 *
 * Columns name the credential and, after "@", the tenant whose URLs it uses when that is not A:
 * "B-admin@B" asks B's endpoints for A's resource ids, "operator@default" the default tenant's.
 * A Bulk cell "b<n>" means HTTP 200 whose one operation has status <n>.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { startTestApp, TOKEN, type TestApp, type TestResponse } from '../helpers/app.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
const BULK_REQ = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';

const A = 'tenant-a';
const B = 'tenant-b';
const ISSUER = 'https://idp.tenant-a.test';
const AUDIENCE = 'scimd-tenant-a';

const COLUMNS = [
  'A-admin',
  'B-admin',
  'B-admin@B',
  'A-read',
  'A-write',
  'A-expired',
  'A-revoked',
  'jwt-bad-aud',
  'jwt-bad-key',
  'none',
  'operator',
  'operator@default',
  'A-jwt',
] as const;
type Column = (typeof COLUMNS)[number];

// prettier-ignore
const SCIM_TABLE = `
                              A-admin B-admin B-admin@B A-read A-write A-expired A-revoked jwt-bad-aud jwt-bad-key none operator operator@default A-jwt
GET /ServiceProviderConfig      200     200     200      200    200     200       200       200         200       200    200      200            200
GET /ResourceTypes              200     401     200      200    200     401       401       401         401       401    401      200            200
GET /ResourceTypes/User         200     401     200      200    200     401       401       401         401       401    401      200            200
GET /Schemas                    200     401     200      200    200     401       401       401         401       401    401      200            200
GET /Schemas/User               200     401     200      200    200     401       401       401         401       401    401      200            200
GET /Users                      200     401     200      200    403     401       401       401         401       401    401      200            200
POST /Users                     201     401     201      403    201     401       401       401         401       401    401      201            201
GET /Users/{id}                 200     401     404      200    403     401       401       401         401       401    401      404            200
PUT /Users/{id}                 200     401     404      403    200     401       401       401         401       401    401      404            200
PATCH /Users/{id}               200     401     404      403    200     401       401       401         401       401    401      404            200
DELETE /Users/{id}              204     401     404      403    204     401       401       401         401       401    401      404            204
GET /Groups                     200     401     200      200    403     401       401       401         401       401    401      200            200
POST /Groups                    201     401     201      403    201     401       401       401         401       401    401      201            201
GET /Groups/{id}                200     401     404      200    403     401       401       401         401       401    401      404            200
PUT /Groups/{id}                200     401     404      403    200     401       401       401         401       401    401      404            200
PATCH /Groups/{id}              200     401     404      403    200     401       401       401         401       401    401      404            200
DELETE /Groups/{id}             204     401     404      403    204     401       401       401         401       401    401      404            204
POST /Users/.search             200     401     200      200    403     401       401       401         401       401    401      200            200
GET /                           200     401     200      200    403     401       401       401         401       401    401      200            200
POST /.search                   200     401     200      200    403     401       401       401         401       401    401      200            200
POST /Bulk                      b200    401     b404     b403   b200    401       401       401         401       401    401      b404           b200
GET /Me                         200     401     200      200    403     401       401       401         401       401    401      501            200
`;

// prettier-ignore
const ADMIN_TABLE = `
                              A-admin B-admin B-admin@B A-read A-write A-expired A-revoked jwt-bad-aud jwt-bad-key none operator operator@default A-jwt
GET /tenants                    403     403     403      403    403     401       401       401         401       401    200      200            403
POST /tenants                   403     403     403      403    403     401       401       401         401       401    201      201            403
GET /tenants/{t}                200     403     200      403    403     401       401       401         401       401    200      200            200
PATCH /tenants/{t}              403     403     403      403    403     401       401       401         401       401    200      200            403
DELETE /tenants/{fresh}         403     403     403      403    403     401       401       401         401       401    204      204            403
GET /clients                    200     403     200      403    403     401       401       401         401       401    200      200            200
POST /clients                   201     403     201      403    403     401       401       401         401       401    201      201            201
GET /clients/{c}                200     403     404      403    403     401       401       401         401       401    200      404            200
DELETE /clients/{c}             204     403     404      403    403     401       401       401         401       401    204      404            204
GET /clients/{c}/tokens         200     403     404      403    403     401       401       401         401       401    200      404            200
POST /clients/{c}/tokens        201     403     404      403    403     401       401       401         401       401    201      404            201
GET /tokens                     200     403     200      403    403     401       401       401         401       401    200      200            200
DELETE /tokens/{id}             200     403     404      403    403     401       401       401         401       401    200      404            200
GET /audit                      200     403     200      403    403     401       401       401         401       401    200      200            200
`;

type Expected = { http: number; bulkOp?: number };

function parseTable(text: string): Map<string, Map<Column, Expected>> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0].trim().split(/\s+/);
  assert.deepEqual(header, [...COLUMNS], 'table header must list the columns in order');
  const out = new Map<string, Map<Column, Expected>>();
  for (const line of lines.slice(1)) {
    const parts = line.trim().split(/\s+/);
    const cells = parts.slice(parts.length - COLUMNS.length);
    const name = parts.slice(0, parts.length - COLUMNS.length).join(' ');
    const row = new Map<Column, Expected>();
    cells.forEach((c, i) => {
      const m = /^(b?)(\d{3})$/.exec(c);
      assert.ok(m, `bad cell "${c}" in row ${name}`);
      row.set(COLUMNS[i], m[1] ? { http: 200, bulkOp: Number(m[2]) } : { http: Number(m[2]) });
    });
    out.set(name, row);
  }
  return out;
}

interface Call {
  method: string;
  url: string;
  body?: unknown;
  /** For refused destructive cells: proves the target is still there afterwards. */
  stillThere?: () => Promise<void>;
}

interface Cell {
  /** Tenant whose URLs the credential uses. */
  tenant: string;
  scim: string;
  admin: string;
}

let t: TestApp;
const tokens = new Map<Column, string | false>();
const fx = {
  aUser: '',
  aUserName: 'matrix-user',
  aGroup: '',
  aGroupName: 'matrix-group',
  aTargetClient: 'a-target',
  aAdminToken: '',
};
let seq = 0;
const uniq = (p: string) => `${p}-${++seq}`;

const scimPrefix = (tenant: string) => (tenant === 'default' ? '/scim/v2' : `/tenants/${tenant}/scim/v2`);

async function ok(res: TestResponse, status: number, what: string): Promise<TestResponse> {
  assert.equal(res.status, status, `fixture ${what}: ${res.status} ${res.text}`);
  return res;
}

/** A fresh User of tenant A (for destructive cells). */
async function freshUser(): Promise<string> {
  const res = await t.request('POST', `${scimPrefix(A)}/Users`, {
    token: fx.aAdminToken,
    body: { schemas: [USER], userName: uniq('fresh-user') },
  });
  return (await ok(res, 201, 'fresh user')).body.id;
}

async function freshGroup(): Promise<string> {
  const res = await t.request('POST', `${scimPrefix(A)}/Groups`, {
    token: fx.aAdminToken,
    body: { schemas: [GROUP], displayName: uniq('fresh-group'), members: [{ value: fx.aUser }] },
  });
  return (await ok(res, 201, 'fresh group')).body.id;
}

async function assertResource(path: string): Promise<void> {
  const res = await t.request('GET', `${scimPrefix(A)}${path}`, { token: fx.aAdminToken });
  assert.equal(res.status, 200, `${path} must still exist: ${res.text}`);
}

const SCIM_CALLS: Record<string, (c: Cell) => Promise<Call> | Call> = {
  'GET /ServiceProviderConfig': (c) => ({ method: 'GET', url: `${c.scim}/ServiceProviderConfig` }),
  'GET /ResourceTypes': (c) => ({ method: 'GET', url: `${c.scim}/ResourceTypes` }),
  'GET /ResourceTypes/User': (c) => ({ method: 'GET', url: `${c.scim}/ResourceTypes/User` }),
  'GET /Schemas': (c) => ({ method: 'GET', url: `${c.scim}/Schemas` }),
  'GET /Schemas/User': (c) => ({ method: 'GET', url: `${c.scim}/Schemas/${USER}` }),
  'GET /Users': (c) => ({ method: 'GET', url: `${c.scim}/Users` }),
  'POST /Users': (c) => ({
    method: 'POST',
    url: `${c.scim}/Users`,
    body: { schemas: [USER], userName: uniq('created') },
  }),
  'GET /Users/{id}': (c) => ({ method: 'GET', url: `${c.scim}/Users/${fx.aUser}` }),
  'PUT /Users/{id}': (c) => ({
    method: 'PUT',
    url: `${c.scim}/Users/${fx.aUser}`,
    body: { schemas: [USER], userName: fx.aUserName },
  }),
  'PATCH /Users/{id}': (c) => ({
    method: 'PATCH',
    url: `${c.scim}/Users/${fx.aUser}`,
    body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'Matrix' }] },
  }),
  'DELETE /Users/{id}': async (c) => {
    const id = await freshUser();
    return {
      method: 'DELETE',
      url: `${c.scim}/Users/${id}`,
      stillThere: () => assertResource(`/Users/${id}`),
    };
  },
  'GET /Groups': (c) => ({ method: 'GET', url: `${c.scim}/Groups` }),
  'POST /Groups': (c) => ({
    method: 'POST',
    url: `${c.scim}/Groups`,
    body: { schemas: [GROUP], displayName: uniq('created-group') },
  }),
  'GET /Groups/{id}': (c) => ({ method: 'GET', url: `${c.scim}/Groups/${fx.aGroup}` }),
  'PUT /Groups/{id}': (c) => ({
    method: 'PUT',
    url: `${c.scim}/Groups/${fx.aGroup}`,
    body: { schemas: [GROUP], displayName: fx.aGroupName, members: [{ value: fx.aUser }] },
  }),
  'PATCH /Groups/{id}': (c) => ({
    method: 'PATCH',
    url: `${c.scim}/Groups/${fx.aGroup}`,
    body: {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'displayName', value: fx.aGroupName }],
    },
  }),
  'DELETE /Groups/{id}': async (c) => {
    const id = await freshGroup();
    return {
      method: 'DELETE',
      url: `${c.scim}/Groups/${id}`,
      stillThere: () => assertResource(`/Groups/${id}`),
    };
  },
  'POST /Users/.search': (c) => ({
    method: 'POST',
    url: `${c.scim}/Users/.search`,
    body: { schemas: [SEARCH], filter: `userName eq "${fx.aUserName}"` },
  }),
  'GET /': (c) => ({ method: 'GET', url: `${c.scim}/` }),
  'POST /.search': (c) => ({ method: 'POST', url: `${c.scim}/.search`, body: { schemas: [SEARCH] } }),
  'POST /Bulk': (c) => ({
    method: 'POST',
    url: `${c.scim}/Bulk`,
    body: {
      schemas: [BULK_REQ],
      Operations: [
        {
          method: 'PATCH',
          path: `/Users/${fx.aUser}`,
          data: {
            schemas: [PATCH_OP],
            Operations: [{ op: 'replace', path: 'nickName', value: 'bulk' }],
          },
        },
      ],
    },
  }),
  'GET /Me': (c) => ({ method: 'GET', url: `${c.scim}/Me` }),
};

/** A fresh client of tenant A with one token; its token id for revocation cells. */
async function freshClient(): Promise<string> {
  const c = await t.app.admin.createClient(A, {
    id: uniq('fresh-client'),
    name: 'fresh',
    scopes: ['scim:read'],
  });
  return c.id;
}

async function freshTokenId(): Promise<string> {
  return (await t.app.admin.issueToken(A, fx.aTargetClient, { description: 'fresh' })).id;
}

const ADMIN_CALLS: Record<string, (c: Cell) => Promise<Call> | Call> = {
  'GET /tenants': () => ({ method: 'GET', url: '/admin/v1/tenants' }),
  'POST /tenants': () => ({ method: 'POST', url: '/admin/v1/tenants', body: { id: uniq('created-tenant') } }),
  'GET /tenants/{t}': (c) => ({ method: 'GET', url: c.admin }),
  'PATCH /tenants/{t}': (c) => ({ method: 'PATCH', url: c.admin, body: { name: `Tenant ${c.tenant}` } }),
  'DELETE /tenants/{fresh}': async () => {
    const id = uniq('doomed-tenant');
    await t.app.admin.createTenant({ id });
    return {
      method: 'DELETE',
      url: `/admin/v1/tenants/${id}`,
      stillThere: async () => {
        assert.equal((await t.app.admin.getTenant(id)).id, id);
      },
    };
  },
  'GET /clients': (c) => ({ method: 'GET', url: `${c.admin}/clients` }),
  'POST /clients': (c) => ({
    method: 'POST',
    url: `${c.admin}/clients`,
    body: { id: uniq('created-client'), name: 'created', scopes: ['scim:read'] },
  }),
  'GET /clients/{c}': (c) => ({ method: 'GET', url: `${c.admin}/clients/${fx.aTargetClient}` }),
  'DELETE /clients/{c}': async (c) => {
    const id = await freshClient();
    return {
      method: 'DELETE',
      url: `${c.admin}/clients/${id}`,
      stillThere: async () => {
        assert.equal((await t.app.admin.getClient(A, id)).id, id);
      },
    };
  },
  'GET /clients/{c}/tokens': (c) => ({ method: 'GET', url: `${c.admin}/clients/${fx.aTargetClient}/tokens` }),
  'POST /clients/{c}/tokens': (c) => ({
    method: 'POST',
    url: `${c.admin}/clients/${fx.aTargetClient}/tokens`,
    body: { description: 'matrix' },
  }),
  'GET /tokens': (c) => ({ method: 'GET', url: `${c.admin}/tokens` }),
  'DELETE /tokens/{id}': async (c) => {
    const id = await freshTokenId();
    return {
      method: 'DELETE',
      url: `${c.admin}/tokens/${id}`,
      stillThere: async () => {
        const listed = await t.app.admin.listTokens(A, fx.aTargetClient);
        const tok = listed.find((x) => x.id === id);
        assert.ok(tok, `token ${id} must still exist`);
        assert.equal(tok.revokedAt, undefined, `token ${id} must not be revoked`);
      },
    };
  },
  'GET /audit': (c) => ({ method: 'GET', url: `${c.admin}/audit` }),
};

function cellOf(column: Column): Cell {
  const tenant = column.endsWith('@B') ? B : column.endsWith('@default') ? 'default' : A;
  return { tenant, scim: scimPrefix(tenant), admin: `/admin/v1/tenants/${tenant}` };
}

async function signJwt(key: CryptoKey, audience: string): Promise<string> {
  return new SignJWT({ client_id: 'a-jwt-subject' })
    .setProtectedHeader({ alg: 'ES256', kid: 'a-key' })
    .setIssuer(ISSUER)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(key);
}

before(async () => {
  t = await startTestApp();
  const admin = t.app.admin;
  const good = await generateKeyPair('ES256', { extractable: true });
  const stranger = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(good.publicKey)), kid: 'a-key', alg: 'ES256', use: 'sig' };
  await admin.createTenant({
    id: A,
    settings: { jwt: { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [jwk] } } },
  });
  await admin.createTenant({ id: B });

  // Tenant A: its admin first (to create resources over HTTP), then the resources and the others.
  await admin.createClient(A, { id: 'a-admin', name: 'A admin', scopes: ['admin'] });
  fx.aAdminToken = (await admin.issueToken(A, 'a-admin')).token;
  const aUrl = scimPrefix(A);
  const me = await ok(
    await t.request('POST', `${aUrl}/Users`, {
      token: fx.aAdminToken,
      body: { schemas: [USER], userName: 'a-me' },
    }),
    201,
    'A me user',
  );
  const user = await ok(
    await t.request('POST', `${aUrl}/Users`, {
      token: fx.aAdminToken,
      body: { schemas: [USER], userName: fx.aUserName },
    }),
    201,
    'A user',
  );
  fx.aUser = user.body.id;
  const group = await ok(
    await t.request('POST', `${aUrl}/Groups`, {
      token: fx.aAdminToken,
      body: { schemas: [GROUP], displayName: fx.aGroupName, members: [{ value: fx.aUser }] },
    }),
    201,
    'A group',
  );
  fx.aGroup = group.body.id;
  const meId = me.body.id as string;
  // The admin client of A acts as a User, so /Me answers for it.
  await t.app.db.query('UPDATE clients SET user_id = $3 WHERE tenant_id = $1 AND id = $2', [
    A,
    'a-admin',
    meId,
  ]);
  await admin.createClient(A, { id: 'a-read', name: 'A read', scopes: ['scim:read'], userId: meId });
  await admin.createClient(A, { id: 'a-write', name: 'A write', scopes: ['scim:write'], userId: meId });
  await admin.createClient(A, {
    id: 'a-jwt',
    name: 'A jwt',
    scopes: ['admin'],
    userId: meId,
    jwtSubject: 'a-jwt-subject',
  });
  await admin.createClient(A, { id: fx.aTargetClient, name: 'target', scopes: ['scim:read'] });
  await admin.issueToken(A, fx.aTargetClient);

  const expired = await admin.issueToken(A, 'a-admin', { expiresInSeconds: 3600 });
  await t.app.db.query(`UPDATE tokens SET expires_at = now() - interval '1 minute' WHERE id = $1`, [
    expired.id,
  ]);
  const revoked = await admin.issueToken(A, 'a-admin');
  await admin.revokeToken(A, revoked.id);

  // Tenant B: an admin acting as one of B's Users.
  await admin.createClient(B, { id: 'b-admin', name: 'B admin', scopes: ['admin'] });
  const bAdminToken = (await admin.issueToken(B, 'b-admin')).token;
  const bMe = await ok(
    await t.request('POST', `${scimPrefix(B)}/Users`, {
      token: bAdminToken,
      body: { schemas: [USER], userName: fx.aUserName },
    }),
    201,
    'B me user',
  );
  await t.app.db.query('UPDATE clients SET user_id = $3 WHERE tenant_id = $1 AND id = $2', [
    B,
    'b-admin',
    bMe.body.id,
  ]);

  tokens.set('A-admin', fx.aAdminToken);
  tokens.set('B-admin', bAdminToken);
  tokens.set('B-admin@B', bAdminToken);
  tokens.set('A-read', (await admin.issueToken(A, 'a-read')).token);
  tokens.set('A-write', (await admin.issueToken(A, 'a-write')).token);
  tokens.set('A-expired', expired.token);
  tokens.set('A-revoked', revoked.token);
  tokens.set('jwt-bad-aud', await signJwt(good.privateKey, 'someone-else'));
  tokens.set('jwt-bad-key', await signJwt(stranger.privateKey, AUDIENCE));
  tokens.set('none', false);
  tokens.set('operator', TOKEN);
  tokens.set('operator@default', TOKEN);
  tokens.set('A-jwt', await signJwt(good.privateKey, AUDIENCE));
});

after(async () => {
  await t.close();
});

async function runCell(
  prefix: string,
  name: string,
  column: Column,
  expected: Expected,
  build: (c: Cell) => Promise<Call> | Call,
): Promise<void> {
  const call = await build(cellOf(column));
  const res = await t.request(call.method, call.url, { body: call.body, token: tokens.get(column) });
  const where = `${prefix} ${name} × ${column}`;
  assert.equal(
    res.status,
    expected.http,
    `${where}: expected ${expected.http}, got ${res.status}: ${res.text}`,
  );
  if (expected.http >= 400) {
    assert.equal(res.body?.status, String(expected.http), `${where}: SCIM error body: ${res.text}`);
  }
  if (expected.http === 401) {
    assert.match(res.headers['www-authenticate'] ?? '', /^Bearer\b/, `${where}: WWW-Authenticate`);
  }
  if (expected.bulkOp !== undefined) {
    const ops = res.body?.Operations as { status: string }[] | undefined;
    assert.equal(ops?.length, 1, `${where}: one bulk result: ${res.text}`);
    assert.equal(ops[0].status, String(expected.bulkOp), `${where}: bulk op status: ${res.text}`);
  }
  if (expected.http >= 400 || (expected.bulkOp ?? 0) >= 400) {
    await call.stillThere?.();
  }
}

function suite(prefix: string, table: string, calls: Record<string, (c: Cell) => Promise<Call> | Call>) {
  const expectations = parseTable(table);
  test(`${prefix}: the table covers exactly the endpoints exercised`, () => {
    assert.deepEqual([...expectations.keys()].sort(), Object.keys(calls).sort());
  });
  for (const [name, row] of expectations) {
    test(`${prefix} ${name}`, async () => {
      for (const column of COLUMNS) await runCell(prefix, name, column, row.get(column)!, calls[name]);
    });
  }
}

suite('SCIM', SCIM_TABLE, SCIM_CALLS);
suite('admin', ADMIN_TABLE, ADMIN_CALLS);
