/**
 * The admin API (/admin/v1): tenants, their settings and what the settings do to the tenant's SCIM
 * endpoint, tenant deletion, clients, tokens, body validation and who may do what.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const BULK_REQ = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const ADMIN = '/admin/v1';

let t: TestApp;
/** Token of tenant "alpha"'s own admin client. */
let alphaAdmin = '';
let betaAdmin = '';

function expectStatus(res: TestResponse, status: number, what: string): void {
  assert.equal(res.status, status, `${what}: expected ${status}, got ${res.status}: ${res.text}`);
}

/** A SCIM error body (the admin API uses the SCIM error shape too). */
function expectError(res: TestResponse, status: number, what: string, scimType?: string): void {
  expectStatus(res, status, what);
  assert.deepEqual(res.body?.schemas, [ERROR], `${what}: error schemas`);
  assert.equal(res.body.status, String(status), `${what}: error status`);
  assert.equal(typeof res.body.detail, 'string', `${what}: error detail`);
  if (scimType !== undefined) assert.equal(res.body.scimType, scimType, `${what}: scimType`);
}

const scim = (tenant: string) => `/tenants/${tenant}/scim/v2`;

async function count(sql: string, params: unknown[]): Promise<number> {
  const res = await t.app.db.query<{ n: number | string }>(sql, params);
  return Number(res.rows[0].n);
}

before(async () => {
  t = await startTestApp();
  await t.app.admin.createTenant({ id: 'alpha' });
  await t.app.admin.createTenant({ id: 'beta' });
  await t.app.admin.createClient('alpha', { id: 'alpha-admin', name: 'alpha admin', scopes: ['admin'] });
  alphaAdmin = (await t.app.admin.issueToken('alpha', 'alpha-admin')).token;
  await t.app.admin.createClient('beta', { id: 'beta-admin', name: 'beta admin', scopes: ['admin'] });
  betaAdmin = (await t.app.admin.issueToken('beta', 'beta-admin')).token;
});

after(async () => {
  await t.close();
});

describe('tenants', () => {
  test('create → 201 with Location and the tenant; duplicate → 409', async () => {
    const res = await t.request('POST', `${ADMIN}/tenants`, {
      body: { id: 'acme', name: 'Acme Corp', settings: { limits: { maxPageSize: 50 } } },
    });
    expectStatus(res, 201, 'create');
    assert.equal(res.headers.location, `${ADMIN}/tenants/acme`);
    assert.equal(res.body.id, 'acme');
    assert.equal(res.body.name, 'Acme Corp');
    assert.deepEqual(res.body.settings, { limits: { maxPageSize: 50 } });
    assert.ok(!Number.isNaN(Date.parse(res.body.created)), 'created is a date');

    const dup = await t.request('POST', `${ADMIN}/tenants`, { body: { id: 'acme' } });
    expectError(dup, 409, 'duplicate', 'uniqueness');
  });

  test('bad tenant ids → 400', async () => {
    for (const id of ['Acme', '-acme', 'acme-', 'ac_me', 'ac me', 'a/b', '', 'x'.repeat(64)]) {
      const res = await t.request('POST', `${ADMIN}/tenants`, { body: { id } });
      expectError(res, 400, `id ${JSON.stringify(id)}`);
    }
  });

  test('list and show', async () => {
    const list = await t.request('GET', `${ADMIN}/tenants`);
    expectStatus(list, 200, 'list');
    const listed = (list.body.tenants as { id: string }[]).map((x) => x.id);
    for (const id of ['default', 'alpha', 'beta', 'acme']) assert.ok(listed.includes(id), `${id} listed`);
    assert.deepEqual(listed, [...listed].sort(), 'listed by id');

    const show = await t.request('GET', `${ADMIN}/tenants/acme`);
    expectStatus(show, 200, 'show');
    assert.equal(show.body.name, 'Acme Corp');
    expectError(await t.request('GET', `${ADMIN}/tenants/nope`), 404, 'show unknown');
  });

  test('PATCH resourceTypes ["User"]: /Groups is gone, discovery shows only User', async () => {
    const res = await t.request('PATCH', `${ADMIN}/tenants/acme`, {
      body: { settings: { resourceTypes: ['User'] } },
    });
    expectStatus(res, 200, 'patch');
    assert.deepEqual(res.body.settings, { resourceTypes: ['User'] });

    expectError(await t.request('GET', `${scim('acme')}/Groups`), 401, 'operator token on acme');
    await t.app.admin.createClient('acme', { id: 'acme-admin', name: 'acme', scopes: ['admin'] });
    const token = (await t.app.admin.issueToken('acme', 'acme-admin')).token;
    const get = (path: string) => t.request('GET', `${scim('acme')}${path}`, { token });

    expectError(await get('/Groups'), 404, 'GET /Groups');
    expectError(
      await t.request('POST', `${scim('acme')}/Groups`, {
        token,
        body: { schemas: [GROUP], displayName: 'g' },
      }),
      404,
      'POST /Groups',
    );
    expectError(await get('/ResourceTypes/Group'), 404, 'ResourceTypes/Group');
    expectError(await get(`/Schemas/${GROUP}`), 404, 'Schemas/Group');
    const types = await get('/ResourceTypes');
    expectStatus(types, 200, 'ResourceTypes');
    assert.deepEqual(
      (types.body.Resources as { id: string }[]).map((r) => r.id),
      ['User'],
    );
    const schemas = await get('/Schemas');
    expectStatus(schemas, 200, 'Schemas');
    assert.deepEqual(
      (schemas.body.Resources as { id: string }[]).map((r) => r.id).sort(),
      [ENTERPRISE, USER].sort(),
    );
    expectStatus(await get('/Users'), 200, 'Users still served');

    // Other tenants keep every type.
    expectStatus(await t.request('GET', `${scim('beta')}/Groups`, { token: betaAdmin }), 200, 'beta /Groups');
  });

  test('PATCH limits: maxPageSize 5 and bulkMaxOperations 2 are advertised and enforced', async () => {
    const res = await t.request('PATCH', `${ADMIN}/tenants/alpha`, {
      body: { settings: { limits: { maxPageSize: 5, bulkMaxOperations: 2 } } },
    });
    expectStatus(res, 200, 'patch');
    const spc = await t.request('GET', `${scim('alpha')}/ServiceProviderConfig`, { token: false });
    expectStatus(spc, 200, 'SPC');
    assert.equal(spc.body.pagination.maxPageSize, 5);
    assert.equal(spc.body.bulk.maxOperations, 2);
    assert.ok(
      spc.body.pagination.defaultPageSize <= spc.body.pagination.maxPageSize,
      `advertised defaultPageSize ${spc.body.pagination.defaultPageSize} exceeds maxPageSize`,
    );
    // The node's own limits are unchanged elsewhere.
    const defaultSpc = await t.request('GET', '/scim/v2/ServiceProviderConfig');
    assert.equal(defaultSpc.body.bulk.maxOperations, 1000);

    for (let i = 0; i < 7; i++) {
      const r = await t.request('POST', `${scim('alpha')}/Users`, {
        token: alphaAdmin,
        body: { schemas: [USER], userName: `limit-${i}` },
      });
      expectStatus(r, 201, `user ${i}`);
    }
    const page = await t.request('GET', `${scim('alpha')}/Users?count=50`, { token: alphaAdmin });
    expectStatus(page, 200, 'count=50');
    assert.equal(page.body.Resources.length, 5);
    assert.equal(page.body.itemsPerPage, 5);
    assert.equal(page.body.totalResults, 7);
    const dflt = await t.request('GET', `${scim('alpha')}/Users`, { token: alphaAdmin });
    assert.equal(dflt.body.Resources.length, 5, 'default page size within maxPageSize');

    const op = (i: number) => ({
      method: 'POST',
      path: '/Users',
      bulkId: `b${i}`,
      data: { schemas: [USER], userName: `bulk-${i}` },
    });
    const three = await t.request('POST', `${scim('alpha')}/Bulk`, {
      token: alphaAdmin,
      body: { schemas: [BULK_REQ], Operations: [op(1), op(2), op(3)] },
    });
    expectError(three, 413, '3 bulk ops');
    const two = await t.request('POST', `${scim('alpha')}/Bulk`, {
      token: alphaAdmin,
      body: { schemas: [BULK_REQ], Operations: [op(1), op(2)] },
    });
    expectStatus(two, 200, '2 bulk ops');
    assert.deepEqual(
      (two.body.Operations as { status: string }[]).map((o) => o.status),
      ['201', '201'],
    );
  });

  test('unknown settings key, unknown resource type, wrong types → 400 with a SCIM error', async () => {
    const bodies: unknown[] = [
      { settings: { colour: 'blue' } },
      { settings: { limits: { pageSize: 5 } } },
      { settings: { resourceTypes: ['Gadget'] } },
      { settings: { limits: { maxPageSize: 0 } } },
      { settings: { limits: { maxPageSize: '5' } } },
      { settings: { limits: { defaultPageSize: 10, maxPageSize: 5 } } },
      { settings: { jwt: { issuer: 'https://idp', audience: 'x' } } },
      { settings: 'none' },
      { name: 42 },
      {},
    ];
    for (const body of bodies) {
      const res = await t.request('PATCH', `${ADMIN}/tenants/beta`, { body });
      expectError(res, 400, `PATCH ${JSON.stringify(body)}`);
    }
    const show = await t.request('GET', `${ADMIN}/tenants/beta`);
    assert.deepEqual(show.body.settings, {}, 'refused patches changed nothing');
    expectError(
      await t.request('POST', `${ADMIN}/tenants`, { body: { id: 7 } }),
      400,
      'tenant id as a number',
    );
    expectError(
      await t.request('POST', `${ADMIN}/tenants`, { body: { id: 'zeta', extra: true } }),
      400,
      'unknown tenant field',
    );
    expectError(await t.request('POST', `${ADMIN}/tenants`, { raw: '{"id":' }), 400, 'malformed JSON');
  });

  test('delete a tenant: its resources, memberships, clients, tokens and audit rows go; others stay', async () => {
    await t.app.admin.createTenant({ id: 'doomed' });
    await t.app.admin.createClient('doomed', { id: 'doomed-admin', name: 'd', scopes: ['admin'] });
    const token = (await t.app.admin.issueToken('doomed', 'doomed-admin')).token;
    const u = await t.request('POST', `${scim('doomed')}/Users`, {
      token,
      body: { schemas: [USER], userName: 'x' },
    });
    expectStatus(u, 201, 'doomed user');
    const g = await t.request('POST', `${scim('doomed')}/Groups`, {
      token,
      body: { schemas: [GROUP], displayName: 'g', members: [{ value: u.body.id }] },
    });
    expectStatus(g, 201, 'doomed group');
    // Beta holds look-alike data that must survive.
    const betaToken = betaAdmin;
    const bu = await t.request('POST', `${scim('beta')}/Users`, {
      token: betaToken,
      body: { schemas: [USER], userName: 'x' },
    });
    expectStatus(bu, 201, 'beta user');
    const bg = await t.request('POST', `${scim('beta')}/Groups`, {
      token: betaToken,
      body: { schemas: [GROUP], displayName: 'g', members: [{ value: bu.body.id }] },
    });
    expectStatus(bg, 201, 'beta group');

    const tables = ['resources', 'group_members', 'clients', 'tokens', 'changes'];
    const counts = async (tenant: string) =>
      Object.fromEntries(
        await Promise.all(
          tables.map(async (tb) => [
            tb,
            await count(`SELECT count(*) AS n FROM ${tb} WHERE tenant_id = $1`, [tenant]),
          ]),
        ),
      );
    assert.deepEqual(await counts('doomed'), {
      resources: 2,
      group_members: 1,
      clients: 1,
      tokens: 1,
      changes: 2,
    });
    const betaBefore = await counts('beta');

    expectStatus(await t.request('DELETE', `${ADMIN}/tenants/doomed`), 204, 'delete');
    assert.deepEqual(await counts('doomed'), {
      resources: 0,
      group_members: 0,
      clients: 0,
      tokens: 0,
      changes: 0,
    });
    assert.equal(await count('SELECT count(*) AS n FROM tenants WHERE id = $1', ['doomed']), 0);
    assert.deepEqual(await counts('beta'), betaBefore);
    expectStatus(
      await t.request('GET', `${scim('beta')}/Groups/${bg.body.id}`, { token: betaToken }),
      200,
      'beta group',
    );

    expectError(await t.request('GET', `${ADMIN}/tenants/doomed`), 404, 'deleted tenant');
    expectError(await t.request('DELETE', `${ADMIN}/tenants/doomed`), 404, 'delete again');
    // Its token died with it, and its SCIM endpoint is gone.
    expectError(
      await t.request('GET', `${scim('doomed')}/Users`, { token }),
      401,
      'token of a deleted tenant',
    );
  });

  test('the default tenant cannot be deleted (409)', async () => {
    expectError(await t.request('DELETE', `${ADMIN}/tenants/default`), 409, 'delete default');
    expectStatus(await t.request('GET', `${ADMIN}/tenants/default`), 200, 'default still there');
  });
});

describe('clients', () => {
  test('create, list, show, delete', async () => {
    const user = await t.request('POST', `${scim('alpha')}/Users`, {
      token: alphaAdmin,
      body: { schemas: [USER], userName: 'client-user' },
    });
    expectStatus(user, 201, 'user');
    const res = await t.request('POST', `${ADMIN}/tenants/alpha/clients`, {
      token: alphaAdmin,
      body: {
        id: 'hr-system',
        name: 'HR system',
        scopes: ['scim:read', 'User:write'],
        userId: user.body.id,
        rateLimit: { max: 100, windowSeconds: 60 },
      },
    });
    expectStatus(res, 201, 'create');
    assert.equal(res.headers.location, `${ADMIN}/tenants/alpha/clients/hr-system`);
    assert.deepEqual(
      { ...res.body, created: undefined },
      {
        id: 'hr-system',
        tenant: 'alpha',
        name: 'HR system',
        scopes: ['scim:read', 'User:write'],
        userId: user.body.id,
        rateLimit: { max: 100, windowSeconds: 60 },
        created: undefined,
      },
    );
    const generated = await t.request('POST', `${ADMIN}/tenants/alpha/clients`, {
      token: alphaAdmin,
      body: { name: 'no id', scopes: [] },
    });
    expectStatus(generated, 201, 'generated id');
    assert.match(generated.body.id, /^[0-9a-f-]{36}$/);

    const dup = await t.request('POST', `${ADMIN}/tenants/alpha/clients`, {
      token: alphaAdmin,
      body: { id: 'hr-system', name: 'again', scopes: [] },
    });
    expectError(dup, 409, 'duplicate client');

    const list = await t.request('GET', `${ADMIN}/tenants/alpha/clients`, { token: alphaAdmin });
    expectStatus(list, 200, 'list');
    const listed = (list.body.clients as { id: string; tenant: string }[]).map((c) => c.id);
    for (const id of ['alpha-admin', 'hr-system', generated.body.id]) assert.ok(listed.includes(id), id);
    assert.ok(
      (list.body.clients as { tenant: string }[]).every((c) => c.tenant === 'alpha'),
      'only alpha clients',
    );

    const show = await t.request('GET', `${ADMIN}/tenants/alpha/clients/hr-system`, { token: alphaAdmin });
    expectStatus(show, 200, 'show');
    assert.equal(show.body.name, 'HR system');

    const hrToken = (await t.app.admin.issueToken('alpha', 'hr-system')).token;
    expectStatus(
      await t.request('GET', `${scim('alpha')}/Users`, { token: hrToken }),
      200,
      'client token works',
    );
    expectStatus(
      await t.request('DELETE', `${ADMIN}/tenants/alpha/clients/hr-system`, { token: alphaAdmin }),
      204,
      'delete',
    );
    // Its tokens go with it.
    expectError(
      await t.request('GET', `${scim('alpha')}/Users`, { token: hrToken }),
      401,
      'token of a deleted client',
    );
    assert.equal(
      await count('SELECT count(*) AS n FROM tokens WHERE tenant_id = $1 AND client_id = $2', [
        'alpha',
        'hr-system',
      ]),
      0,
    );
    expectError(
      await t.request('GET', `${ADMIN}/tenants/alpha/clients/hr-system`, { token: alphaAdmin }),
      404,
      'show deleted',
    );
    expectError(
      await t.request('DELETE', `${ADMIN}/tenants/alpha/clients/hr-system`, { token: alphaAdmin }),
      404,
      'delete again',
    );
  });

  test('unknown scope, a userId that is not a User of the tenant, wrong types → 400', async () => {
    const group = await t.request('POST', `${scim('alpha')}/Groups`, {
      token: alphaAdmin,
      body: { schemas: [GROUP], displayName: 'not-a-user' },
    });
    expectStatus(group, 201, 'group');
    const betaUser = await t.app.service.create(
      { tenant: 'beta', baseUrl: 'http://scimd.test/tenants/beta/scim/v2', limits: t.app.config },
      t.app.registry.resourceType('User')!,
      { schemas: [USER], userName: 'beta-only' },
    );
    const bodies: [string, unknown][] = [
      ['unknown scope', { name: 'c', scopes: ['superuser'] }],
      ['scope with a bad action', { name: 'c', scopes: ['scim:delete'] }],
      ['userId of a Group', { name: 'c', scopes: [], userId: group.body.id }],
      ['userId of another tenant', { name: 'c', scopes: [], userId: betaUser.resource.id }],
      ['userId that does not exist', { name: 'c', scopes: [], userId: 'nobody' }],
      ['scopes as a string', { name: 'c', scopes: 'admin' }],
      ['name missing', { scopes: [] }],
      ['name as a number', { name: 1, scopes: [] }],
      ['bad id', { id: 'a b', name: 'c', scopes: [] }],
      ['bad fingerprint', { name: 'c', scopes: [], certFingerprint: 'zz' }],
      ['rateLimit incomplete', { name: 'c', scopes: [], rateLimit: { max: 1 } }],
      ['unknown field', { name: 'c', scopes: [], role: 'admin' }],
    ];
    const before = await count('SELECT count(*) AS n FROM clients WHERE tenant_id = $1', ['alpha']);
    for (const [what, body] of bodies) {
      const res = await t.request('POST', `${ADMIN}/tenants/alpha/clients`, { token: alphaAdmin, body });
      expectError(res, 400, what);
    }
    assert.equal(await count('SELECT count(*) AS n FROM clients WHERE tenant_id = $1', ['alpha']), before);
  });
});

describe('tokens', () => {
  test('issue (201, secret once, no-store), list without secrets, revoke', async () => {
    await t.app.admin.createClient('alpha', { id: 'reader', name: 'reader', scopes: ['scim:read'] });
    const issued = await t.request('POST', `${ADMIN}/tenants/alpha/clients/reader/tokens`, {
      token: alphaAdmin,
      body: { description: 'nightly sync', expiresInSeconds: 3600 },
    });
    expectStatus(issued, 201, 'issue');
    assert.equal(issued.headers['cache-control'], 'no-store');
    const secret = issued.body.token as string;
    assert.match(secret, /^scimd_[\w-]{43}$/);
    assert.equal(issued.body.client, 'reader');
    assert.equal(issued.body.tenant, 'alpha');
    assert.equal(issued.body.description, 'nightly sync');
    const ttl = Date.parse(issued.body.expiresAt) - Date.parse(issued.body.created);
    assert.ok(Math.abs(ttl - 3_600_000) < 5_000, `expiresAt ${issued.body.expiresAt}`);
    expectStatus(await t.request('GET', `${scim('alpha')}/Users`, { token: secret }), 200, 'token works');

    const digest = (
      await t.app.db.query<{ token_hash: string }>('SELECT token_hash FROM tokens WHERE id = $1', [
        issued.body.id,
      ])
    ).rows[0].token_hash;
    assert.notEqual(digest, secret, 'only a digest is stored');
    for (const url of [`${ADMIN}/tenants/alpha/clients/reader/tokens`, `${ADMIN}/tenants/alpha/tokens`]) {
      const list = await t.request('GET', url, { token: alphaAdmin });
      expectStatus(list, 200, `list ${url}`);
      const mine = (list.body.tokens as Record<string, unknown>[]).find((x) => x.id === issued.body.id);
      assert.ok(mine, `${url} lists the token`);
      assert.equal(mine.token, undefined, 'no secret in the listing');
      assert.ok(!list.text.includes(secret), 'the secret appears nowhere');
      assert.ok(!list.text.includes(digest), 'the digest appears nowhere');
      assert.ok(!list.text.includes('scimd_'), 'no secret-looking string');
    }
    const clientList = await t.request('GET', `${ADMIN}/tenants/alpha/clients/reader/tokens`, {
      token: alphaAdmin,
    });
    assert.ok((clientList.body.tokens as { client: string }[]).every((x) => x.client === 'reader'));

    const revoked = await t.request('DELETE', `${ADMIN}/tenants/alpha/tokens/${issued.body.id}`, {
      token: alphaAdmin,
    });
    expectStatus(revoked, 200, 'revoke');
    assert.ok(!Number.isNaN(Date.parse(revoked.body.revokedAt)), 'revokedAt set');
    assert.equal(revoked.body.token, undefined);
    expectError(await t.request('GET', `${scim('alpha')}/Users`, { token: secret }), 401, 'revoked token');
    expectError(
      await t.request('DELETE', `${ADMIN}/tenants/alpha/tokens/no-such-token`, { token: alphaAdmin }),
      404,
      'revoke unknown',
    );
    expectError(
      await t.request('POST', `${ADMIN}/tenants/alpha/clients/nobody/tokens`, {
        token: alphaAdmin,
        body: {},
      }),
      404,
      'token for an unknown client',
    );
  });

  test('token bodies with wrong types → 400', async () => {
    for (const body of [
      { expiresInSeconds: 'soon' },
      { expiresInSeconds: 0 },
      { expiresInSeconds: 1.5 },
      { description: 5 },
      { scopes: ['admin'] },
    ]) {
      const res = await t.request('POST', `${ADMIN}/tenants/alpha/clients/reader/tokens`, {
        token: alphaAdmin,
        body,
      });
      expectError(res, 400, JSON.stringify(body));
    }
    const audit = await t.request('GET', `${ADMIN}/tenants/alpha/audit?count=many`, { token: alphaAdmin });
    expectError(audit, 400, 'audit count=many');
  });
});

describe('who may administer what', () => {
  test('a tenant admin of alpha cannot manage beta (403) nor tenants (403)', async () => {
    const as = (method: string, url: string, body?: unknown) =>
      t.request(method, url, { token: alphaAdmin, body });
    const refused: [string, string, unknown?][] = [
      ['GET', `${ADMIN}/tenants`],
      ['POST', `${ADMIN}/tenants`, { id: 'alpha-made' }],
      ['GET', `${ADMIN}/tenants/beta`],
      ['PATCH', `${ADMIN}/tenants/beta`, { name: 'mine' }],
      ['DELETE', `${ADMIN}/tenants/beta`],
      ['GET', `${ADMIN}/tenants/beta/clients`],
      ['POST', `${ADMIN}/tenants/beta/clients`, { name: 'spy', scopes: ['admin'] }],
      ['GET', `${ADMIN}/tenants/beta/clients/beta-admin`],
      ['DELETE', `${ADMIN}/tenants/beta/clients/beta-admin`],
      ['POST', `${ADMIN}/tenants/beta/clients/beta-admin/tokens`, {}],
      ['GET', `${ADMIN}/tenants/beta/tokens`],
      ['GET', `${ADMIN}/tenants/beta/audit`],
      // Its own tenant's settings and existence are the operator's.
      ['PATCH', `${ADMIN}/tenants/alpha`, { settings: {} }],
      ['DELETE', `${ADMIN}/tenants/alpha`],
      // A tenant that does not exist is refused the same way: no probing.
      ['GET', `${ADMIN}/tenants/no-such-tenant`],
    ];
    const betaClients = await count('SELECT count(*) AS n FROM clients WHERE tenant_id = $1', ['beta']);
    for (const [method, url, body] of refused)
      expectError(await as(method, url, body), 403, `${method} ${url}`);
    assert.equal(
      await count('SELECT count(*) AS n FROM clients WHERE tenant_id = $1', ['beta']),
      betaClients,
    );
    assert.equal(await count('SELECT count(*) AS n FROM tenants WHERE id = $1', ['alpha-made']), 0);
    expectStatus(await t.request('GET', `${ADMIN}/tenants/beta`), 200, 'beta intact');
    expectStatus(await t.request('GET', `${ADMIN}/tenants/alpha`), 200, 'alpha intact');
  });

  test('a non-admin client of alpha cannot use alpha’s admin API (403)', async () => {
    const token = (await t.app.admin.issueToken('alpha', 'reader')).token;
    expectError(await t.request('GET', `${ADMIN}/tenants/alpha/clients`, { token }), 403, 'reader');
  });

  test('authentication comes before body validation', async () => {
    expectError(
      await t.request('POST', `${ADMIN}/tenants`, { token: false, body: { id: 5 } }),
      401,
      'no credential, bad body',
    );
    expectError(
      await t.request('POST', `${ADMIN}/tenants/alpha/clients`, { token: 'nope', body: { name: 1 } }),
      401,
      'bad credential, bad body',
    );
    expectError(
      await t.request('POST', `${ADMIN}/tenants`, { token: alphaAdmin, body: { id: 5 } }),
      403,
      'tenant admin, bad body',
    );
  });
});
