/**
 * Asynchronous SCIM requests (RFC 9967 §2.5, digest §12 "Events — async requests"): Prefer:
 * respond-async on PUT, POST, PATCH, DELETE and Bulk answers 202 with no body, Set-Txn,
 * Preference-Applied and Location; the worker applies the write and stores a misc:asyncresp SET
 * (verified against the tenant's JWKS) that the Location serves; securityEvents in
 * ServiceProviderConfig. Runs on PGlite, and on PostgreSQL when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose';
import { SCIM_EVENT_URIS } from '../../src/events/set.ts';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const BULK = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
const ASYNCRESP = 'urn:ietf:params:scim:event:misc:asyncresp';
const BASE = 'http://scimd.test/scim/v2';
const ASYNC = { prefer: 'respond-async' };

describe('asynchronous SCIM requests', () => {
  let t: TestApp;
  let writer: string; // User:write only, not admin
  let other: string; // another client of the same tenant
  let acmeAdmin: string;

  before(async () => {
    t = await startTestApp({ backgroundWorkers: false });
    await t.app.admin.createClient('default', {
      id: 'writer',
      name: 'writer',
      scopes: ['User:write', 'User:read'],
    });
    writer = (await t.app.admin.issueToken('default', 'writer')).token;
    await t.app.admin.createClient('default', {
      id: 'other',
      name: 'other',
      scopes: ['scim:write', 'scim:read'],
    });
    other = (await t.app.admin.issueToken('default', 'other')).token;
    await t.app.admin.createTenant({ id: 'acme' });
    await t.app.admin.createClient('acme', { id: 'acme-admin', name: 'acme admin', scopes: ['admin'] });
    acmeAdmin = (await t.app.admin.issueToken('acme', 'acme-admin')).token;
    await t.app.admin.createTenant({ id: 'sync', settings: { asyncRequests: 'none' } });
  });
  after(async () => {
    await t?.close();
  });

  async function createUser(userName: string, token?: string): Promise<{ id: string; etag: string }> {
    const res = await t.request('POST', '/scim/v2/Users', { body: { schemas: [USER], userName }, token });
    assert.equal(res.status, 201, res.text);
    return { id: res.body.id as string, etag: res.headers.etag! };
  }

  async function verify(token: string, jwksPath = '/.well-known/jwks.json'): Promise<JWTPayload> {
    const jwks = await t.request('GET', jwksPath, { token: false });
    assert.equal(jwks.status, 200);
    const { payload } = await jwtVerify(token, createLocalJWKSet(JSON.parse(jwks.text) as JSONWebKeySet), {
      typ: 'secevent+jwt',
    });
    return payload;
  }

  function assertAccepted(res: TestResponse, base = BASE): string {
    assert.equal(res.status, 202, res.text);
    assert.equal(res.text, '');
    assert.equal(res.headers['content-type'], undefined);
    const txn = res.headers['set-txn'];
    assert.match(txn ?? '', /^[0-9a-f]{32}$/);
    assert.equal(res.headers['preference-applied'], 'respond-async');
    assert.equal(res.headers.location, `${base}/.async/${txn}`);
    return txn!;
  }

  /** The completion of a single request: the SET, verified; its claims. */
  async function completion(txn: string, token?: string, prefix = '/scim/v2', jwks?: string) {
    const res = await t.request('GET', `${prefix}/.async/${txn}`, { token });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-type'], 'application/secevent+jwt');
    assert.equal(decodeProtectedHeader(res.text).typ, 'secevent+jwt');
    return verify(res.text, jwks);
  }

  test('PUT with Prefer: respond-async: 202, empty body, Set-Txn, Preference-Applied, Location; applied by the worker', async () => {
    const { id, etag } = await createUser('put.async');
    const res = await t.request('PUT', `/scim/v2/Users/${id}`, {
      body: { schemas: [USER], userName: 'put.async', displayName: 'Put Async' },
      headers: ASYNC,
    });
    const txn = assertAccepted(res);

    // Nothing applied yet; the completion resource says it is queued.
    const before = await t.request('GET', `/scim/v2/Users/${id}`);
    assert.equal(before.headers.etag, etag);
    assert.equal(before.body.displayName, undefined);
    const pending = await t.request('GET', `/scim/v2/.async/${txn}`);
    assert.equal(pending.status, 202);
    assert.equal(pending.headers['retry-after'], '1');
    assert.equal(pending.headers['set-txn'], txn);
    assert.equal(pending.body.txn, txn);
    assert.equal(pending.body.state, 'queued');

    assert.equal(await t.app.asyncWorker.runOnce(), 1);
    assert.equal(await t.app.asyncWorker.runOnce(), 0);

    const after = await t.request('GET', `/scim/v2/Users/${id}`);
    assert.equal(after.body.displayName, 'Put Async');
    assert.notEqual(after.headers.etag, etag);

    const claims = await completion(txn);
    assert.equal(claims.txn, txn);
    assert.equal(claims.iss, BASE);
    assert.equal(claims.aud, 'bootstrap');
    assert.equal(typeof claims.jti, 'string');
    assert.equal(typeof claims.iat, 'number');
    assert.equal(claims.sub, undefined);
    assert.equal(claims.exp, undefined);
    assert.deepEqual(claims.sub_id, { format: 'scim', uri: `/Users/${id}` });
    assert.deepEqual(claims.events, {
      [ASYNCRESP]: { method: 'PUT', version: after.headers.etag, status: '200' },
    });
    // Read again: the same stored SET.
    const again = await t.request('GET', `/scim/v2/.async/${txn}`);
    assert.equal((await verify(again.text)).jti, claims.jti);
  });

  test('POST, PATCH and DELETE asynchronously: status strings, version when there is one, the store changed', async () => {
    const post = await t.request('POST', '/scim/v2/Users', {
      body: { schemas: [USER], userName: 'post.async' },
      headers: { prefer: 'respond-async' },
      token: writer,
    });
    const postTxn = assertAccepted(post);
    assert.equal(await t.app.asyncWorker.runOnce(), 1);
    const list = await t.request('GET', '/scim/v2/Users?filter=userName%20eq%20%22post.async%22');
    assert.equal(list.body.totalResults, 1);
    const id = list.body.Resources[0].id as string;
    const created = await completion(postTxn, writer);
    assert.equal(created.aud, 'writer');
    assert.deepEqual(created.sub_id, { format: 'scim', uri: `/Users/${id}` });
    assert.deepEqual(created.events, {
      [ASYNCRESP]: { method: 'POST', version: list.body.Resources[0].meta.version, status: '201' },
    });

    const patch = await t.request('PATCH', `/scim/v2/Users/${id}`, {
      body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'Patched' }] },
      headers: ASYNC,
      token: writer,
    });
    const patchTxn = assertAccepted(patch);
    assert.equal(await t.app.asyncWorker.runOnce(), 1);
    const patched = await t.request('GET', `/scim/v2/Users/${id}`);
    assert.equal(patched.body.displayName, 'Patched');
    assert.deepEqual((await completion(patchTxn, writer)).events, {
      [ASYNCRESP]: { method: 'PATCH', version: patched.headers.etag, status: '200' },
    });

    const del = await t.request('DELETE', `/scim/v2/Users/${id}`, { headers: ASYNC, token: writer });
    const delTxn = assertAccepted(del);
    assert.equal(await t.app.asyncWorker.runOnce(), 1);
    assert.equal((await t.request('GET', `/scim/v2/Users/${id}`)).status, 404);
    const deleted = await completion(delTxn, writer);
    assert.deepEqual(deleted.sub_id, { format: 'scim', uri: `/Users/${id}` });
    assert.deepEqual(deleted.events, { [ASYNCRESP]: { method: 'DELETE', status: '204' } });
  });

  test("PATCH /Me asynchronously: stored and reported under the User's own path", async () => {
    const { id } = await createUser('me.async');
    await t.app.admin.createClient('default', {
      id: 'me-client',
      name: 'me',
      scopes: ['User:write'],
      userId: id,
    });
    const me = (await t.app.admin.issueToken('default', 'me-client')).token;
    const res = await t.request('PATCH', '/scim/v2/Me', {
      body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'Myself' }] },
      headers: ASYNC,
      token: me,
    });
    const txn = assertAccepted(res);
    assert.equal(await t.app.asyncWorker.runOnce(), 1);
    const claims = await completion(txn, me);
    assert.equal(claims.aud, 'me-client');
    assert.deepEqual(claims.sub_id, { format: 'scim', uri: `/Users/${id}` });
    assert.equal((await t.request('GET', `/scim/v2/Users/${id}`)).body.displayName, 'Myself');
  });

  test('a failing async request: asyncresp status "400" with response = SCIM Error (scimType); nothing written', async () => {
    const { id, etag } = await createUser('fails.async');
    const res = await t.request('PUT', `/scim/v2/Users/${id}`, {
      body: { schemas: [USER], displayName: 'no userName' },
      headers: ASYNC,
    });
    const txn = assertAccepted(res);
    assert.equal(await t.app.asyncWorker.runOnce(), 1);
    const claims = await completion(txn);
    assert.deepEqual(claims.sub_id, { format: 'scim', uri: `/Users/${id}` });
    const payload = (claims.events as Record<string, Record<string, unknown>>)[ASYNCRESP];
    assert.deepEqual(Object.keys(payload), ['method', 'status', 'response']);
    assert.equal(payload.method, 'PUT');
    assert.equal(payload.status, '400');
    const response = payload.response as Record<string, unknown>;
    assert.deepEqual(response, {
      schemas: [ERROR],
      status: '400',
      scimType: 'invalidValue',
      detail: 'Attribute "userName" is required',
    });
    const after = await t.request('GET', `/scim/v2/Users/${id}`);
    assert.equal(after.headers.etag, etag);
    assert.equal(after.body.displayName, undefined);

    // A precondition failure (If-Match) and a failed POST (uri = the endpoint it was sent to).
    const stale = await t.request('PATCH', `/scim/v2/Users/${id}`, {
      body: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'x' }] },
      headers: { ...ASYNC, 'if-match': 'W/"999"' },
    });
    const staleTxn = assertAccepted(stale);
    const dup = await t.request('POST', '/scim/v2/Users', {
      body: { schemas: [USER], userName: 'fails.async' },
      headers: ASYNC,
    });
    const dupTxn = assertAccepted(dup);
    assert.equal(await t.app.asyncWorker.runOnce(), 2);
    const s412 = (await completion(staleTxn)).events as Record<string, Record<string, unknown>>;
    assert.equal(s412[ASYNCRESP].status, '412');
    assert.equal((s412[ASYNCRESP].response as Record<string, unknown>).status, '412');
    const conflict = await completion(dupTxn);
    assert.deepEqual(conflict.sub_id, { format: 'scim', uri: '/Users' });
    const c409 = (conflict.events as Record<string, Record<string, unknown>>)[ASYNCRESP];
    assert.equal(c409.method, 'POST');
    assert.equal(c409.status, '409');
    assert.equal((c409.response as Record<string, unknown>).scimType, 'uniqueness');
    const rows = await t.app.db.query<{ txn: string; state: string }>(
      `SELECT txn, state FROM async_requests WHERE tenant_id = 'default' AND txn = ANY($1) ORDER BY txn`,
      [[txn, staleTxn, dupTxn]],
    );
    assert.deepEqual(
      rows.rows.map((r) => r.state),
      ['failed', 'failed', 'failed'],
    );
  });

  test('async Bulk with N operations: N asyncresp SETs, txn <Set-Txn>:0..N-1 in the original order, bulkId', async () => {
    const { id: existing } = await createUser('bulk.target');
    const res = await t.request('POST', '/scim/v2/Bulk', {
      body: {
        schemas: [BULK],
        Operations: [
          // Refers forward to op 1: the server runs op 1 first, the index still names the original order.
          {
            method: 'PATCH',
            path: '/Users/bulkId:b1',
            bulkId: 'p0',
            data: {
              schemas: [PATCH_OP],
              Operations: [{ op: 'replace', path: 'displayName', value: 'From bulk' }],
            },
          },
          { method: 'POST', path: '/Users', bulkId: 'b1', data: { schemas: [USER], userName: 'bulk.new' } },
          { method: 'DELETE', path: '/Users/does-not-exist' },
          { method: 'DELETE', path: `/Users/${existing}` },
        ],
      },
      headers: { prefer: 'respond-async' },
    });
    const txn = assertAccepted(res);
    assert.equal(await t.app.asyncWorker.runOnce(), 1);

    const done = await t.request('GET', `/scim/v2/.async/${txn}`);
    assert.equal(done.status, 200, done.text);
    assert.match(done.headers['content-type'] ?? '', /^application\/json/);
    const sets = done.body.sets as Record<string, string>;
    const jtis = Object.keys(sets);
    assert.equal(jtis.length, 4);
    const claims = await Promise.all(jtis.map((j) => verify(sets[j])));
    claims.forEach((c, i) => assert.equal(c.jti, jtis[i]));
    assert.deepEqual(
      claims.map((c) => c.txn),
      [0, 1, 2, 3].map((i) => `${txn}:${i}`),
    );
    const created = await t.request('GET', '/scim/v2/Users?filter=userName%20eq%20%22bulk.new%22');
    const newId = created.body.Resources[0].id as string;
    assert.equal(created.body.Resources[0].displayName, 'From bulk');
    const ev = claims.map((c) => (c.events as Record<string, Record<string, unknown>>)[ASYNCRESP]);
    assert.deepEqual(ev[0], {
      method: 'PATCH',
      bulkId: 'p0',
      version: created.body.Resources[0].meta.version,
      status: '200',
    });
    assert.equal(ev[1].method, 'POST');
    assert.equal(ev[1].bulkId, 'b1');
    assert.equal(ev[1].status, '201');
    assert.equal(typeof ev[1].version, 'string');
    assert.equal(ev[2].method, 'DELETE');
    assert.equal(ev[2].status, '404');
    assert.equal((ev[2].response as Record<string, unknown>).status, '404');
    assert.deepEqual(ev[3], { method: 'DELETE', status: '204' });
    assert.deepEqual(
      claims.map((c) => (c.sub_id as { uri: string }).uri),
      [`/Users/${newId}`, `/Users/${newId}`, '/Users/does-not-exist', `/Users/${existing}`],
    );
    assert.equal((await t.request('GET', `/scim/v2/Users/${existing}`)).status, 404);
  });

  test('the completion Location requires authentication; only the sender or a tenant admin may read it', async () => {
    const { id } = await createUser('auth.async');
    const res = await t.request('DELETE', `/scim/v2/Users/${id}`, { headers: ASYNC, token: writer });
    const txn = assertAccepted(res);
    const anonymous = await t.request('GET', `/scim/v2/.async/${txn}`, { token: false });
    assert.equal(anonymous.status, 401);
    assert.deepEqual(anonymous.body.schemas, [ERROR]);
    assert.equal((await t.request('GET', `/scim/v2/.async/${txn}`, { token: 'nope' })).status, 401);
    // Another client of the tenant: as if it did not exist.
    const stranger = await t.request('GET', `/scim/v2/.async/${txn}`, { token: other });
    assert.equal(stranger.status, 404);
    assert.deepEqual(stranger.body.schemas, [ERROR]);
    // Another tenant's admin, through its own prefix.
    assert.equal(
      (await t.request('GET', `/tenants/acme/scim/v2/.async/${txn}`, { token: acmeAdmin })).status,
      404,
    );
    assert.equal(await t.app.asyncWorker.runOnce(), 1);
    await completion(txn, writer);
    await completion(txn); // the tenant admin (bootstrap)
    const unknown = await t.request('GET', '/scim/v2/.async/0123456789abcdef0123456789abcdef');
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body.schemas, [ERROR]);
    assert.equal(unknown.body.status, '404');
  });

  test('asyncRequests "none": Prefer: respond-async is answered synchronously as usual', async () => {
    await t.app.admin.createClient('sync', { id: 'sync-admin', name: 'sync admin', scopes: ['admin'] });
    const token = (await t.app.admin.issueToken('sync', 'sync-admin')).token;
    const created = await t.request('POST', '/tenants/sync/scim/v2/Users', {
      body: { schemas: [USER], userName: 'sync.user' },
      headers: ASYNC,
      token,
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.userName, 'sync.user');
    assert.equal(created.headers['preference-applied'], undefined);
    assert.equal(created.headers['set-txn'], undefined);
    const put = await t.request('PUT', `/tenants/sync/scim/v2/Users/${created.body.id}`, {
      body: { schemas: [USER], userName: 'sync.user', displayName: 'Now' },
      headers: ASYNC,
      token,
    });
    assert.equal(put.status, 200);
    assert.equal(put.body.displayName, 'Now');
    const bulk = await t.request('POST', '/tenants/sync/scim/v2/Bulk', {
      body: { schemas: [BULK], Operations: [{ method: 'DELETE', path: `/Users/${created.body.id}` }] },
      headers: ASYNC,
      token,
    });
    assert.equal(bulk.status, 200);
    assert.equal(bulk.body.Operations[0].status, '204');
    const rows = await t.app.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM async_requests WHERE tenant_id = 'sync'`,
    );
    assert.equal(rows.rows[0].n, 0);
  });

  test('the asyncRequests setting through the admin API: "request" | "none", anything else refused', async () => {
    const bad = await t.request('PATCH', '/admin/v1/tenants/acme', {
      body: { settings: { asyncRequests: 'always' } },
    });
    assert.equal(bad.status, 400, bad.text);
    const off = await t.request('PATCH', '/admin/v1/tenants/acme', {
      body: { settings: { asyncRequests: 'none' } },
    });
    assert.equal(off.status, 200, off.text);
    const spc = await t.request('GET', '/tenants/acme/scim/v2/ServiceProviderConfig', { token: false });
    assert.equal(spc.body.securityEvents.asyncRequest, 'none');
    const on = await t.request('PATCH', '/admin/v1/tenants/acme', {
      body: { settings: { asyncRequests: 'request' } },
    });
    assert.equal(on.status, 200, on.text);
    const spc2 = await t.request('GET', '/tenants/acme/scim/v2/ServiceProviderConfig', { token: false });
    assert.equal(spc2.body.securityEvents.asyncRequest, 'request');
  });

  test('cheap checks stay synchronous: credentials, scopes, JSON syntax, a malformed Bulk request', async () => {
    const noAuth = await t.request('POST', '/scim/v2/Users', {
      body: { schemas: [USER], userName: 'x1' },
      headers: ASYNC,
      token: false,
    });
    assert.equal(noAuth.status, 401);
    const { id } = await createUser('scope.check');
    const noScope = await t.request('PUT', '/scim/v2/Groups/whatever', {
      body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'g' },
      headers: ASYNC,
      token: writer,
    });
    assert.equal(noScope.status, 403);
    assert.equal(noScope.headers['set-txn'], undefined);
    const badJson = await t.request('PATCH', `/scim/v2/Users/${id}`, {
      raw: '{"schemas": [',
      headers: ASYNC,
    });
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.scimType, 'invalidSyntax');
    const badBulk = await t.request('POST', '/scim/v2/Bulk', { body: { Operations: [] }, headers: ASYNC });
    assert.equal(badBulk.status, 400);
    assert.equal(badBulk.headers['preference-applied'], undefined);
    const queued = await t.app.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM async_requests WHERE tenant_id = 'default' AND state = 'queued'`,
    );
    assert.equal(queued.rows[0].n, 0);
  });

  test('Prefer parsing: several preferences, case, wait, several fields; other preferences stay synchronous', async () => {
    const { id } = await createUser('prefer.parse');
    const body = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'p' }] };
    const mixed = await t.request('PATCH', `/scim/v2/Users/${id}`, {
      body,
      headers: { prefer: 'return=minimal, x-other;p=1, RESPOND-ASYNC' },
    });
    assertAccepted(mixed);
    const minimal = await t.request('PATCH', `/scim/v2/Users/${id}`, {
      body,
      headers: { prefer: 'return=minimal' },
    });
    assert.equal(minimal.status, 200);
    assert.equal(minimal.headers['preference-applied'], undefined);
    const quoted = await t.request('PATCH', `/scim/v2/Users/${id}`, {
      body,
      headers: { prefer: 'foo="a, respond-async"' },
    });
    assert.equal(quoted.status, 200);
    assert.equal(await t.app.asyncWorker.runOnce(), 1);
  });

  test('wait=N: a request that finishes within N seconds is answered normally (no Preference-Applied), and completed', async () => {
    const { id } = await createUser('wait.put');
    const put = await t.request('PUT', `/scim/v2/Users/${id}?attributes=displayName`, {
      body: { schemas: [USER], userName: 'wait.put', displayName: 'Waited' },
      headers: { prefer: 'respond-async, wait=10' },
    });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.headers['preference-applied'], undefined);
    assert.equal(put.headers['set-txn'], undefined);
    assert.match(put.headers['content-type'] ?? '', /^application\/scim\+json/);
    assert.deepEqual(put.body, {
      schemas: [USER],
      id,
      displayName: 'Waited',
    });
    const stored = await t.request('GET', `/scim/v2/Users/${id}`);
    assert.equal(put.headers.etag, stored.headers.etag);
    // Nothing left for the worker: it ran inline, and its completion is stored like any other.
    assert.equal(await t.app.asyncWorker.runOnce(), 0);
    const row = await t.app.db.query<{ state: string; n: number }>(
      `SELECT state, jsonb_array_length(sets) AS n FROM async_requests WHERE tenant_id = 'default' AND path = $1`,
      [`/Users/${id}`],
    );
    assert.deepEqual(
      row.rows.map((r) => ({ ...r })),
      [{ state: 'done', n: 1 }],
    );

    const post = await t.request('POST', '/scim/v2/Users', {
      body: { schemas: [USER], userName: 'wait.post' },
      headers: { prefer: 'wait=5, respond-async' },
    });
    assert.equal(post.status, 201, post.text);
    assert.equal(post.body.userName, 'wait.post');
    assert.equal(post.headers.location, `${BASE}/Users/${post.body.id}`);

    const failing = await t.request('PUT', `/scim/v2/Users/${id}`, {
      body: { schemas: [USER] },
      headers: { prefer: 'respond-async, wait=5' },
    });
    assert.equal(failing.status, 400);
    assert.deepEqual(failing.body, {
      schemas: [ERROR],
      status: '400',
      scimType: 'invalidValue',
      detail: 'Attribute "userName" is required',
    });

    const del = await t.request('DELETE', `/scim/v2/Users/${post.body.id}`, {
      headers: { prefer: 'respond-async, wait=5' },
    });
    assert.equal(del.status, 204);
    assert.equal(del.text, '');

    const bulk = await t.request('POST', '/scim/v2/Bulk', {
      body: { schemas: [BULK], Operations: [{ method: 'DELETE', path: `/Users/${id}` }] },
      headers: { prefer: 'respond-async, wait=5' },
    });
    assert.equal(bulk.status, 200);
    assert.deepEqual(bulk.body, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkResponse'],
      Operations: [{ method: 'DELETE', status: '204' }],
    });
  });

  test('wait=N: a request that takes longer is answered 202 and completes on its own', async () => {
    const { id } = await createUser('wait.slow');
    const service = t.app.service;
    const real = service.replace.bind(service);
    service.replace = async (...args: Parameters<typeof real>) => {
      await new Promise((r) => setTimeout(r, 1500));
      return real(...args);
    };
    try {
      const res = await t.request('PUT', `/scim/v2/Users/${id}`, {
        body: { schemas: [USER], userName: 'wait.slow', displayName: 'Slow' },
        headers: { prefer: 'respond-async, wait=1' },
      });
      const txn = assertAccepted(res);
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await t.request('GET', `/scim/v2/.async/${txn}`)).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 200);
      const claims = await completion(txn);
      assert.equal((claims.events as Record<string, Record<string, unknown>>)[ASYNCRESP].status, '200');
      assert.equal((await t.request('GET', `/scim/v2/Users/${id}`)).body.displayName, 'Slow');
    } finally {
      service.replace = real;
    }
  });

  test('ServiceProviderConfig.securityEvents: asyncRequest from the tenant setting, every event URI', async () => {
    const def = await t.request('GET', '/scim/v2/ServiceProviderConfig', { token: false });
    assert.deepEqual(def.body.securityEvents, {
      asyncRequest: 'request',
      eventUris: [
        'urn:ietf:params:scim:event:feed:add',
        'urn:ietf:params:scim:event:feed:remove',
        'urn:ietf:params:scim:event:prov:create:full',
        'urn:ietf:params:scim:event:prov:create:notice',
        'urn:ietf:params:scim:event:prov:patch:full',
        'urn:ietf:params:scim:event:prov:patch:notice',
        'urn:ietf:params:scim:event:prov:put:full',
        'urn:ietf:params:scim:event:prov:put:notice',
        'urn:ietf:params:scim:event:prov:delete',
        'urn:ietf:params:scim:event:prov:activate',
        'urn:ietf:params:scim:event:prov:deactivate',
        'urn:ietf:params:scim:event:misc:asyncresp',
      ],
    });
    assert.deepEqual(def.body.securityEvents.eventUris, [...SCIM_EVENT_URIS]);
    const none = await t.request('GET', '/tenants/sync/scim/v2/ServiceProviderConfig', { token: false });
    assert.deepEqual(none.body.securityEvents, { asyncRequest: 'none', eventUris: [...SCIM_EVENT_URIS] });
  });
});
