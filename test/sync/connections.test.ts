/**
 * Sync connections through the admin API (/admin/v1/tenants/{tenant}/connections): exact views,
 * write-only credentials and TLS keys, every validation error, PATCH with null, delete refused
 * while a flow uses the connection, tenant isolation, and the discovery test against a second
 * scimd listening on a port and against an unreachable one. PGlite, and PostgreSQL when
 * DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { freePort } from '../helpers/process.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const BASE = '/admin/v1/tenants/default/connections';
const JSON_HEADERS = { 'content-type': 'application/json' };
const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');
const CERT = fixture('client-a.crt');
const KEY = fixture('client-a.key');
const OTHER_KEY = fixture('client-b.key');
const CA = fixture('ca.crt');
const SECRETS = ['bearer-secret-value', 'oauth-secret-value', 'new-bearer-value'];

describe('sync connections admin API', () => {
  let t: TestApp;
  let remote: TestApp;
  let remoteUrl: string;
  let remoteToken: string;
  const texts: string[] = [];

  before(async () => {
    t = await startTestApp({ backgroundWorkers: false });
    await t.app.admin.createTenant({ id: 'acme' });
    remote = await startTestApp({ backgroundWorkers: false });
    await remote.app.server.listen({ port: 0, host: '127.0.0.1' });
    remoteUrl = `http://127.0.0.1:${(remote.app.server.server.address() as AddressInfo).port}/scim/v2`;
    const client = await remote.app.admin.createClient('default', { name: 'sync', scopes: ['scim:read'] });
    remoteToken = (await remote.app.admin.issueToken('default', client.id)).token;
  });
  after(async () => {
    // Every answer of this file: no secret value, no private key, ever.
    for (const text of texts) {
      for (const s of [...SECRETS, remoteToken]) assert.ok(!text.includes(s), `secret in ${text}`);
      // Nor the PEM contents (the first base64 line of each).
      for (const pem of [KEY, CERT, CA]) assert.ok(!text.includes(pem.split('\n')[1]), text);
    }
    await t?.close();
    await remote?.close();
  });

  const call = async (method: string, url: string, body?: unknown, token?: string) => {
    const res = await t.request(method, url, {
      body,
      headers: body === undefined ? {} : JSON_HEADERS,
      token,
    });
    texts.push(res.text);
    return res;
  };
  const dates = (v: { created: string; updated: string }) => {
    assert.match(v.created, /^\d{4}-\d\d-\d\dT.*Z$/);
    assert.match(v.updated, /^\d{4}-\d\d-\d\dT.*Z$/);
    const { created: _c, updated: _u, ...rest } = v;
    return rest;
  };

  test('create, get, list: views show which secrets are set, never their values', async () => {
    const res = await call('POST', BASE, {
      id: 'hr',
      name: 'HR system',
      baseUrl: 'https://hr.example/scim/v2/',
      auth: { type: 'bearer', token: 'bearer-secret-value' },
      compat: { patchRequiresPath: true, maxMembersPerPatch: 100, disable: ['bulk', 'bulk'] },
      timeoutMs: 20000,
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.created, res.body.updated);
    assert.deepEqual(dates(res.body), {
      tenant: 'default',
      id: 'hr',
      name: 'HR system',
      baseUrl: 'https://hr.example/scim/v2',
      auth: { type: 'bearer', tokenSet: true },
      compat: { patchRequiresPath: true, maxMembersPerPatch: 100, disable: ['bulk'] },
      timeoutMs: 20000,
    });
    const stored = await t.app.connections.get('default', 'hr');
    assert.deepEqual(stored.auth, { type: 'bearer', token: 'bearer-secret-value' });
    assert.equal(stored.baseUrl, 'https://hr.example/scim/v2');

    const oauth = await call('POST', BASE, {
      id: 'idp',
      baseUrl: 'https://idp.example/scim/v2',
      auth: {
        type: 'oauth2',
        tokenUrl: 'https://idp.example/oauth/token?tenant=1',
        clientId: 'scimd',
        clientSecret: 'oauth-secret-value',
        scope: 'scim.write',
        clientAuth: 'body',
      },
      tls: { cert: CERT, key: KEY, ca: CA, servername: 'idp.internal' },
    });
    assert.equal(oauth.status, 201, oauth.text);
    assert.deepEqual(dates(oauth.body), {
      tenant: 'default',
      id: 'idp',
      name: 'idp',
      baseUrl: 'https://idp.example/scim/v2',
      auth: {
        type: 'oauth2',
        tokenUrl: 'https://idp.example/oauth/token?tenant=1',
        clientId: 'scimd',
        scope: 'scim.write',
        clientAuth: 'body',
        clientSecretSet: true,
      },
      tls: { certSet: true, keySet: true, caSet: true, passphraseSet: false, servername: 'idp.internal' },
    });

    const generated = await call('POST', BASE, { baseUrl: 'http://plain.example' });
    assert.equal(generated.status, 201, generated.text);
    assert.match(generated.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(generated.body.name, generated.body.id);
    assert.deepEqual(generated.body.auth, { type: 'none' });
    assert.equal(generated.body.baseUrl, 'http://plain.example');

    const one = await call('GET', `${BASE}/hr`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, res.body);
    const list = await call('GET', BASE);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { connections: [res.body, oauth.body, generated.body] });
    assert.equal((await call('DELETE', `${BASE}/${generated.body.id}`)).status, 204);

    const dup = await call('POST', BASE, { id: 'hr', baseUrl: 'https://x.example' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.scimType, 'uniqueness');
    assert.equal(dup.body.detail, 'Tenant default already has a connection hr');
    const missing = await call('GET', `${BASE}/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, 'No connection nope in tenant default');
  });

  test('invalid bodies are 400 invalidValue naming the field', async () => {
    const ok = { baseUrl: 'https://r.example/scim/v2' };
    const cases: [unknown, string][] = [
      [{ ...ok, id: 'bad id' }, 'id must be 1-64 characters of A-Z a-z 0-9 . _ -'],
      [{ ...ok, id: 'x'.repeat(65) }, 'body/id must NOT have more than 64 characters'],
      [{ baseUrl: 'ftp://r.example' }, 'baseUrl must be an absolute http(s) URL; got "ftp://r.example"'],
      [{ baseUrl: 'r.example/scim' }, 'baseUrl must be an absolute http(s) URL; got "r.example/scim"'],
      [
        { baseUrl: 'https://u:p@r.example/scim' },
        'baseUrl must not hold credentials (user:password@); give them in auth',
      ],
      [{ baseUrl: 'https://r.example/scim?x=1' }, 'baseUrl must not have a query or a fragment'],
      [{ baseUrl: 'https://r.example/scim#top' }, 'baseUrl must not have a query or a fragment'],
      [{ name: 'n' }, "body must have required property 'baseUrl'"],
      [{ ...ok, extra: 1 }, 'body/extra is not an allowed property'],
      [{ ...ok, auth: { type: 'basic' } }, 'auth.type must be one of "none", "bearer", "oauth2"'],
      [{ ...ok, auth: {} }, "body/auth must have required property 'type'"],
      [{ ...ok, auth: { type: 'bearer' } }, 'auth.token is required for bearer auth'],
      [
        { ...ok, auth: { type: 'bearer', token: 'a b' } },
        'auth.token must not contain blanks or control characters',
      ],
      [
        { ...ok, auth: { type: 'none', token: 't' } },
        'auth.token is not an allowed property (allowed: type)',
      ],
      [
        { ...ok, auth: { type: 'oauth2', tokenUrl: 'https://t', clientId: 'c' } },
        'auth.clientSecret is required for oauth2 auth',
      ],
      [
        { ...ok, auth: { type: 'oauth2', tokenUrl: 'nope', clientId: 'c', clientSecret: 's' } },
        'auth.tokenUrl must be an absolute http(s) URL; got "nope"',
      ],
      [
        { ...ok, auth: { type: 'oauth2', tokenUrl: 'https://t', clientSecret: 's' } },
        'auth.clientId must be a non-empty string',
      ],
      [
        {
          ...ok,
          auth: {
            type: 'oauth2',
            tokenUrl: 'https://t',
            clientId: 'c',
            clientSecret: 's',
            clientAuth: 'jwt',
          },
        },
        'auth.clientAuth must be one of "basic", "body"',
      ],
      [{ ...ok, timeoutMs: 0 }, 'timeoutMs must be an integer from 1 to 600000'],
      [{ ...ok, timeoutMs: 600001 }, 'timeoutMs must be an integer from 1 to 600000'],
      [{ ...ok, timeoutMs: '5' }, 'body/timeoutMs has the wrong type'],
      [
        { ...ok, compat: { patchRequiresPaths: true } },
        'compat.patchRequiresPaths is not an allowed property (allowed: patchRequiresPath, maxMembersPerPatch, membersAttribute, multiValueRemove, unfilterableAttributes, noFilterOnExternalId, disable, contentType, maxPageSize, maxConcurrentRequests)',
      ],
      [{ ...ok, compat: { maxPageSize: 0 } }, 'compat.maxPageSize must be an integer from 1 to 1000000'],
      [
        { ...ok, compat: { maxConcurrentRequests: 65 } },
        'compat.maxConcurrentRequests must be an integer from 1 to 64',
      ],
      [
        { ...ok, compat: { disable: ['paging'] } },
        'compat.disable[] must be one of "patch", "bulk", "filter", "sort", "etag", "cursor"',
      ],
      [{ ...ok, compat: { patchRequiresPath: 'yes' } }, 'compat.patchRequiresPath must be true or false'],
      [
        { ...ok, compat: { multiValueRemove: 'all' } },
        'compat.multiValueRemove must be one of "filter", "valueArray"',
      ],
      [
        { baseUrl: 'http://r.example', tls: { cert: CERT, key: KEY } },
        'tls certificates need an https baseUrl',
      ],
      [
        { baseUrl: 'https://r.example', tls: { cert: 'not pem' } },
        'tls.cert must be PEM: one or more -----BEGIN CERTIFICATE----- blocks',
      ],
      [
        { baseUrl: 'https://r.example', tls: { cert: CERT } },
        'tls.cert and tls.key go together (a client certificate needs its private key)',
      ],
      [
        { baseUrl: 'https://r.example', tls: { cert: CERT, key: 'not a key' } },
        'tls.key must be a PEM private key (-----BEGIN ... PRIVATE KEY-----)',
      ],
      [
        { baseUrl: 'https://r.example', tls: { cert: CERT, key: OTHER_KEY } },
        'tls.key is not the private key of tls.cert',
      ],
      [
        {
          baseUrl: 'https://r.example',
          tls: { cert: CERT, key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' },
        },
        'tls.key cannot be read (an encrypted key needs tls.passphrase)',
      ],
      [
        {
          baseUrl: 'https://r.example',
          tls: { ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' },
        },
        'tls.ca holds a certificate that cannot be read',
      ],
      [
        { baseUrl: 'https://r.example', tls: { pem: 'x' } },
        'tls.pem is not an allowed property (allowed: cert, key, ca, passphrase, servername, rejectUnauthorized)',
      ],
    ];
    for (const [body, detail] of cases) {
      const res = await call('POST', BASE, body);
      assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 200)}: ${res.text}`);
      assert.equal(res.body.scimType, 'invalidValue');
      assert.equal(res.body.detail, detail);
    }
    assert.deepEqual(
      (await t.app.connections.list('default')).map((c) => c.id),
      ['hr', 'idp'],
    );
  });

  test('PATCH: any subset, null clears, secrets kept unless replaced, TLS fields merged', async () => {
    const res = await call('PATCH', `${BASE}/idp`, {
      name: 'IdP',
      auth: { type: 'oauth2', tokenUrl: 'https://idp.example/token', clientId: 'scimd', scope: 'scim' },
      tls: { servername: null, rejectUnauthorized: false },
      timeoutMs: 5000,
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(dates(res.body), {
      tenant: 'default',
      id: 'idp',
      name: 'IdP',
      baseUrl: 'https://idp.example/scim/v2',
      auth: {
        type: 'oauth2',
        tokenUrl: 'https://idp.example/token',
        clientId: 'scimd',
        scope: 'scim',
        clientSecretSet: true,
      },
      tls: { certSet: true, keySet: true, caSet: true, passphraseSet: false, rejectUnauthorized: false },
      timeoutMs: 5000,
    });
    const stored = await t.app.connections.get('default', 'idp');
    assert.deepEqual(stored.auth, {
      type: 'oauth2',
      tokenUrl: 'https://idp.example/token',
      clientId: 'scimd',
      clientSecret: 'oauth-secret-value',
      scope: 'scim',
    });
    assert.deepEqual(stored.tls, { cert: CERT, key: KEY, ca: CA, rejectUnauthorized: false });
    const halfTls = await call('PATCH', `${BASE}/idp`, { tls: { key: null } });
    assert.equal(halfTls.status, 400);
    assert.equal(
      halfTls.body.detail,
      'tls.cert and tls.key go together (a client certificate needs its private key)',
    );

    const cleared = await call('PATCH', `${BASE}/idp`, {
      tls: null,
      timeoutMs: null,
      baseUrl: 'http://idp.example/v2',
    });
    assert.equal(cleared.status, 200, cleared.text);
    assert.equal(cleared.body.tls, undefined);
    assert.equal(cleared.body.timeoutMs, undefined);
    assert.equal(cleared.body.baseUrl, 'http://idp.example/v2');
    assert.ok(cleared.body.updated > res.body.updated);

    const bearer = await call('PATCH', `${BASE}/hr`, {
      auth: { type: 'bearer', token: 'new-bearer-value' },
      compat: null,
    });
    assert.equal(bearer.status, 200, bearer.text);
    assert.equal(bearer.body.compat, undefined);
    assert.equal((await t.app.connections.get('default', 'hr')).auth.type, 'bearer');
    assert.deepEqual((await t.app.connections.get('default', 'hr')).auth, {
      type: 'bearer',
      token: 'new-bearer-value',
    });
    // Switching to oauth2 needs the secret: there is no stored one to keep.
    const noSecret = await call('PATCH', `${BASE}/hr`, {
      auth: { type: 'oauth2', tokenUrl: 'https://t', clientId: 'c' },
    });
    assert.equal(noSecret.status, 400);
    assert.equal(noSecret.body.detail, 'auth.clientSecret is required for oauth2 auth');

    const errors: [unknown, number, string][] = [
      [{}, 400, 'body must NOT have fewer than 1 properties'],
      [{ baseUrl: null }, 400, 'baseUrl cannot be cleared'],
      [{ auth: null }, 400, 'auth cannot be cleared'],
      [{ id: 'other' }, 400, 'body/id is not an allowed property'],
      [{ tls: { passphrase: 'p' } }, 400, 'tls.passphrase needs tls.key'],
    ];
    for (const [body, status, detail] of errors) {
      const r = await call('PATCH', `${BASE}/idp`, body);
      assert.equal(r.status, status, r.text);
      assert.equal(r.body.detail, detail);
    }
    const missing = await call('PATCH', `${BASE}/nope`, { name: 'x' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, 'No connection nope in tenant default');
    // Direct calls (the CLI's direct mode) get the same checks as the API's schema.
    await assert.rejects(t.app.connections.patch('default', 'idp', { name: null } as never), {
      status: 400,
      message: 'name cannot be cleared',
    });
  });

  test('DELETE is refused while a flow uses the connection, naming the flows', async () => {
    for (const id of ['f2', 'f1']) {
      const f = await call('POST', '/admin/v1/tenants/default/flows', {
        id,
        connectionId: 'hr',
        direction: 'pull',
        resourceTypes: ['User'],
      });
      assert.equal(f.status, 201, f.text);
    }
    const refused = await call('DELETE', `${BASE}/hr`);
    assert.equal(refused.status, 409);
    assert.deepEqual(refused.body, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '409',
      scimType: 'mutability',
      detail: 'Connection hr is used by flow(s) f1, f2: remove them first',
    });
    assert.equal((await call('DELETE', '/admin/v1/tenants/default/flows/f1')).status, 204);
    assert.equal((await call('DELETE', '/admin/v1/tenants/default/flows/f2')).status, 204);
    assert.equal((await call('DELETE', `${BASE}/hr`)).status, 204);
    assert.equal((await call('GET', `${BASE}/hr`)).status, 404);
    const again = await call('DELETE', `${BASE}/hr`);
    assert.equal(again.status, 404);
    assert.equal(again.body.detail, 'No connection hr in tenant default');
  });

  test("tenant isolation: a tenant's admin sees and uses its own connections only", async () => {
    const admin = await t.app.admin.createClient('acme', { name: 'acme-admin', scopes: ['admin'] });
    const token = (await t.app.admin.issueToken('acme', admin.id)).token;
    const own = await call(
      'POST',
      '/admin/v1/tenants/acme/connections',
      { id: 'idp', baseUrl: 'https://a.example' },
      token,
    );
    assert.equal(own.status, 201, own.text);
    assert.equal(own.body.tenant, 'acme');
    assert.deepEqual(
      (await call('GET', '/admin/v1/tenants/acme/connections', undefined, token)).body.connections.map(
        (c: { tenant: string; id: string }) => `${c.tenant}/${c.id}`,
      ),
      ['acme/idp'],
    );
    for (const [method, url] of [
      ['GET', BASE],
      ['GET', `${BASE}/idp`],
      ['POST', `${BASE}/idp/test`],
      ['DELETE', `${BASE}/idp`],
    ]) {
      const r = await call(method, url, undefined, token);
      assert.equal(r.status, 403, `${method} ${url}: ${r.text}`);
    }
    const reader = await t.app.admin.createClient('acme', { name: 'reader', scopes: ['scim:read'] });
    const readerToken = (await t.app.admin.issueToken('acme', reader.id)).token;
    assert.equal(
      (await call('GET', '/admin/v1/tenants/acme/connections', undefined, readerToken)).status,
      403,
    );
    assert.equal(
      (await t.request('GET', '/admin/v1/tenants/acme/connections', { token: false })).status,
      401,
    );
    assert.equal((await call('GET', '/admin/v1/tenants/nowhere/connections')).status, 404);
    // The default tenant's idp is another connection than acme's.
    assert.equal((await t.app.connections.get('default', 'idp')).name, 'IdP');
    assert.equal((await t.app.connections.get('acme', 'idp')).name, 'idp');
  });

  test('deleting a tenant removes its connections and flows', async () => {
    await t.app.admin.createTenant({ id: 'gone' });
    await t.app.connections.create('gone', { id: 'c', baseUrl: 'https://c.example' });
    await t.app.flows.create('gone', {
      id: 'f',
      connectionId: 'c',
      direction: 'push',
      resourceTypes: ['User'],
    });
    assert.equal((await call('DELETE', '/admin/v1/tenants/gone')).status, 204);
    for (const table of ['sync_connections', 'sync_flows']) {
      const rows = await t.app.db.query(`SELECT 1 FROM ${table} WHERE tenant_id = 'gone'`);
      assert.equal(rows.rows.length, 0, table);
    }
  });

  test('test: discovery of a real scimd; refused credentials and an unreachable URL are answers, not 500s', async () => {
    for (const userName of ['a', 'b']) {
      const u = await remote.request('POST', '/scim/v2/Users', {
        body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName },
      });
      assert.equal(u.status, 201, u.text);
    }
    const created = await call('POST', BASE, {
      id: 'remote',
      baseUrl: remoteUrl,
      auth: { type: 'bearer', token: remoteToken },
    });
    assert.equal(created.status, 201, created.text);
    const res = await call('POST', `${BASE}/remote/test`);
    assert.equal(res.status, 200, res.text);
    assert.equal(typeof res.body.elapsedMs, 'number');
    const { elapsedMs: _e, ...rest } = res.body;
    assert.deepEqual(rest, {
      ok: true,
      capabilities: {
        filter: { supported: true, maxResults: 1000 },
        patch: true,
        bulk: { supported: true, maxOperations: 1000, maxPayloadSize: 4194304 },
        sort: true,
        etag: true,
        cursor: true,
        changePassword: false,
        maxPageSize: 1000,
      },
      resourceTypes: [
        { name: 'User', endpoint: '/Users' },
        { name: 'Group', endpoint: '/Groups' },
        { name: 'Device', endpoint: '/Devices' },
        { name: 'EndpointApp', endpoint: '/EndpointApps' },
      ],
      access: { endpoint: '/Users', totalResults: 2 },
    });

    // compat.disable is what the engine will use: the test reports the same.
    const off = await call('PATCH', `${BASE}/remote`, { compat: { disable: ['bulk', 'cursor'] } });
    assert.equal(off.status, 200, off.text);
    const disabled = await call('POST', `${BASE}/remote/test`);
    assert.deepEqual(
      [disabled.body.capabilities.bulk.supported, disabled.body.capabilities.cursor],
      [false, false],
    );

    const wrong = await call('PATCH', `${BASE}/remote`, {
      auth: { type: 'bearer', token: 'bearer-secret-value' },
    });
    assert.equal(wrong.status, 200, wrong.text);
    const refused = await call('POST', `${BASE}/remote/test`);
    assert.equal(refused.status, 200, refused.text);
    assert.equal(refused.body.ok, false);
    assert.equal(refused.body.status, 401);
    assert.match(
      refused.body.error,
      /^GET http:\/\/127\.0\.0\.1:\d+\/scim\/v2\/Users\?count=1&attributes=id failed with 401: Invalid or expired bearer token$/,
    );
    // Discovery answered without credentials; the listing is what refused.
    assert.equal(refused.body.capabilities.patch, true);
    assert.equal(refused.body.access, undefined);

    const port = await freePort();
    await call('POST', BASE, { id: 'down', baseUrl: `http://127.0.0.1:${port}/scim/v2`, timeoutMs: 2000 });
    const down = await call('POST', `${BASE}/down/test`);
    assert.equal(down.status, 200, down.text);
    assert.equal(down.body.ok, false);
    assert.equal(down.body.status, undefined);
    assert.match(down.body.error, /ECONNREFUSED/);

    const unknown = await call('POST', `${BASE}/nope/test`);
    assert.equal(unknown.status, 404);
  });
});
