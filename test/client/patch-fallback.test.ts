/**
 * Raw `patch(id, ops)` against servers whose ServiceProviderConfig says patch.supported=false: the
 * resource is read, the operations applied by scimd's PATCH engine on the client, and the result
 * sent with PUT (If-Match the version read; on 412 read and apply again, bounded). Every request is
 * asserted.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PATCH_FALLBACK_ATTEMPTS,
  ScimClient,
  ScimClientError,
  ScimPatchApplyError,
  ScimUnsupportedError,
  type CompatOptions,
  type ScimUser,
} from '../../src/client/index.ts';
import { schemaDocument, schemasInUse } from '../../src/http/discovery.ts';
import { createCoreRegistry } from '../../src/scim/schema/registry.ts';
import { calls, fakeServer, GROUP_RT, spc, USER_RT, type FakeHandler, type FakeServer } from './helpers.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const servers: FakeServer[] = [];
const clients: ScimClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

const registry = createCoreRegistry();
const SCHEMAS = schemasInUse(registry).map((s) => schemaDocument(s, 'http://x/scim'));
const USER_RT_ENT = { ...USER_RT, schemaExtensions: [{ schema: ENT, required: false }] };
const NO_PATCH_ETAG = spc({ etag: { supported: true } });

async function setup(
  handler: FakeHandler,
  opts: {
    spc?: Record<string, unknown>;
    schemas?: unknown[];
    resourceTypes?: unknown[];
    compat?: CompatOptions;
  } = {},
) {
  const server = await fakeServer(handler, {
    spc: opts.spc ?? NO_PATCH_ETAG,
    schemas: opts.schemas ?? SCHEMAS,
    resourceTypes: opts.resourceTypes ?? [USER_RT_ENT, GROUP_RT],
  });
  servers.push(server);
  const client = new ScimClient({
    baseUrl: server.url,
    auth: { type: 'bearer', token: 't' },
    compat: opts.compat,
    retry: { sleep: async () => {} },
  });
  clients.push(client);
  await client.discover();
  return { server, client };
}

const json = (body: string) => (body ? JSON.parse(body) : undefined);
const line = (r: { method: string; url: string; headers: Record<string, unknown> }) =>
  `${r.method} ${r.url}${r.headers['if-match'] ? ` if-match ${String(r.headers['if-match'])}` : ''}`;

/** A server holding one User that answers GET and PUT with versions; `conflicts` PUTs answer 412 first. */
function userServer(state: { doc: Record<string, unknown>; v: number; conflicts: number }): FakeHandler {
  return (r) => {
    if (r.url !== '/scim/Users/u1') return undefined;
    const current = () => ({
      ...state.doc,
      id: 'u1',
      meta: { resourceType: 'User', version: `W/"${state.v}"` },
    });
    if (r.method === 'GET') return { status: 200, headers: { etag: `W/"${state.v}"` }, body: current() };
    if (r.method === 'PUT') {
      if (state.conflicts > 0) {
        state.conflicts--;
        state.v++; // someone else wrote in between
        return { status: 412, body: { status: '412', detail: 'version mismatch' } };
      }
      if (r.headers['if-match'] !== undefined && r.headers['if-match'] !== `W/"${state.v}"`)
        return { status: 412, body: { status: '412', detail: 'version mismatch' } };
      const { id: _id, ...body } = json(r.body) as Record<string, unknown>;
      state.doc = body;
      state.v++;
      return { status: 200, headers: { etag: `W/"${state.v}"` }, body: current() };
    }
    return undefined;
  };
}

const alice = (): Record<string, unknown> => ({
  schemas: [USER, ENT],
  userName: 'alice',
  displayName: 'Alice',
  emails: [
    { value: 'a@x.example', type: 'work', primary: true },
    { value: 'a@home.example', type: 'home' },
  ],
  groups: [{ value: 'g1', display: 'G' }],
  [ENT]: { department: 'R&D', manager: { value: 'm1', displayName: 'Boss' } },
});

describe('patch on a server without PATCH', () => {
  test('GET, operations applied locally, PUT with If-Match of the version read', async () => {
    const state = { doc: alice(), v: 1, conflicts: 0 };
    const { server, client } = await setup(userServer(state));
    const res = await client.resources<ScimUser>('User').patch('u1', [
      { op: 'replace', path: 'displayName', value: 'Alice L.' },
      { op: 'remove', path: 'emails[type eq "home"]' },
      { op: 'add', path: `${ENT}:costCenter`, value: 'C7' },
      { op: 'replace', value: { active: true } },
    ]);
    const c = calls(server);
    assert.deepEqual(c.map(line), ['GET /scim/Users/u1', 'PUT /scim/Users/u1 if-match W/"1"']);
    // readOnly attributes (groups, manager.displayName is a sub-attribute and stays) and meta left out.
    assert.deepEqual(json(c[1].body), {
      schemas: [USER, ENT],
      userName: 'alice',
      displayName: 'Alice L.',
      emails: [{ value: 'a@x.example', type: 'work', primary: true }],
      [ENT]: { department: 'R&D', manager: { value: 'm1', displayName: 'Boss' }, costCenter: 'C7' },
      id: 'u1',
      active: true,
    });
    assert.equal(c[1].headers['content-type'], 'application/scim+json');
    assert.equal(res?.displayName, 'Alice L.');
    assert.equal(res?.meta?.version, 'W/"2"');
  });

  test('412 between GET and PUT: read and apply again, bounded by PATCH_FALLBACK_ATTEMPTS', async () => {
    const state = { doc: alice(), v: 1, conflicts: 1 };
    const { server, client } = await setup(userServer(state));
    const users = client.resources<ScimUser>('User');
    await users.patch('u1', [{ op: 'replace', path: 'displayName', value: 'Two' }]);
    assert.deepEqual(calls(server).map(line), [
      'GET /scim/Users/u1',
      'PUT /scim/Users/u1 if-match W/"1"',
      'GET /scim/Users/u1',
      'PUT /scim/Users/u1 if-match W/"2"',
    ]);
    assert.equal(state.doc.displayName, 'Two');

    assert.equal(PATCH_FALLBACK_ATTEMPTS, 3);
    server.requests.length = 0;
    state.conflicts = 5;
    await assert.rejects(
      users.patch('u1', [{ op: 'replace', path: 'displayName', value: 'Three' }]),
      (e) => e instanceof ScimClientError && e.status === 412 && e.method === 'PUT',
    );
    assert.deepEqual(calls(server).map(line), [
      'GET /scim/Users/u1',
      'PUT /scim/Users/u1 if-match W/"3"',
      'GET /scim/Users/u1',
      'PUT /scim/Users/u1 if-match W/"4"',
      'GET /scim/Users/u1',
      'PUT /scim/Users/u1 if-match W/"5"',
    ]);
    assert.equal(state.doc.displayName, 'Two');
  });

  test("the caller's ifMatch is the precondition: its 412 is not retried", async () => {
    const state = { doc: alice(), v: 4, conflicts: 0 };
    const { server, client } = await setup(userServer(state));
    await assert.rejects(
      client
        .resources<ScimUser>('User')
        .patch('u1', [{ op: 'replace', path: 'displayName', value: 'X' }], { ifMatch: 'W/"3"' }),
      (e) => e instanceof ScimClientError && e.status === 412,
    );
    assert.deepEqual(calls(server).map(line), ['GET /scim/Users/u1', 'PUT /scim/Users/u1 if-match W/"3"']);
    assert.equal(state.doc.displayName, 'Alice');
  });

  test('operations the engine refuses: ScimPatchApplyError, nothing written; no-op: no PUT', async () => {
    const state = { doc: alice(), v: 1, conflicts: 0 };
    const { server, client } = await setup(userServer(state));
    const users = client.resources<ScimUser>('User');
    await assert.rejects(users.patch('u1', [{ op: 'remove', path: 'userName' }]), (e) => {
      assert.ok(e instanceof ScimPatchApplyError);
      assert.equal(e.status, 400);
      assert.equal(e.scimType, 'mutability');
      assert.match(e.detail, /^Operations\[0\] \(remove userName\)/);
      return true;
    });
    await assert.rejects(
      users.patch('u1', [{ op: 'replace', path: 'emails[type eq "other"].value', value: 'z@x' }]),
      (e) => e instanceof ScimPatchApplyError && e.status === 400 && e.scimType === 'noTarget',
    );
    await assert.rejects(
      users.patch('u1', [{ op: 'replace', path: 'nickName.x', value: 'n' }]),
      (e) => e instanceof ScimPatchApplyError && e.status === 400,
    );
    // Already so: nothing to write.
    const same = await users.patch('u1', [{ op: 'replace', path: 'displayName', value: 'Alice' }]);
    assert.equal(same?.displayName, 'Alice');
    assert.deepEqual(calls(server).map(line), [
      'GET /scim/Users/u1',
      'GET /scim/Users/u1',
      'GET /scim/Users/u1',
      'GET /scim/Users/u1',
    ]);
    assert.equal(state.v, 1);
  });

  test('no ETag support: PUT without If-Match; Group members patched as an attribute', async () => {
    let stored: Record<string, unknown> = {
      schemas: [GROUP],
      id: 'g1',
      displayName: 'G',
      members: [{ value: 'u1' }, { value: 'u2' }, { value: 'u3' }],
    };
    const { server, client } = await setup(
      (r) => {
        if (r.url !== '/scim/Groups/g1') return undefined;
        if (r.method === 'GET') return { status: 200, body: stored };
        if (r.method === 'PUT') {
          stored = json(r.body);
          return { status: 200, body: stored };
        }
        return undefined;
      },
      { spc: spc() },
    );
    await client.resources('Group').patch('g1', [
      { op: 'remove', path: 'members[value eq "u2"]' },
      { op: 'add', path: 'members', value: [{ value: 'u4' }] },
    ]);
    const c = calls(server);
    assert.deepEqual(c.map(line), ['GET /scim/Groups/g1', 'PUT /scim/Groups/g1']);
    assert.deepEqual(json(c[1].body), {
      schemas: [GROUP],
      id: 'g1',
      displayName: 'G',
      members: [{ value: 'u1' }, { value: 'u3' }, { value: 'u4' }],
    });
  });

  test('no /Schemas: core schemas from RFC 7643; another type cannot be patched and nothing is sent', async () => {
    const DEVICE_RT = {
      ...USER_RT,
      id: 'Device',
      name: 'Device',
      endpoint: '/Devices',
      schema: 'urn:ietf:params:scim:schemas:core:2.0:Device',
    };
    const state = { doc: alice(), v: 1, conflicts: 0 };
    const { server, client } = await setup(userServer(state), {
      schemas: [],
      resourceTypes: [USER_RT_ENT, DEVICE_RT],
    });
    await client.resources('User').patch('u1', [{ op: 'add', path: 'nickName', value: 'Al' }]);
    assert.equal(state.doc.nickName, 'Al');
    server.requests.length = 0;
    await assert.rejects(
      client.resources('Device').patch('d1', [{ op: 'replace', path: 'displayName', value: 'x' }]),
      (e) =>
        e instanceof ScimUnsupportedError &&
        e.feature === 'patch' &&
        /serves no schema urn:ietf:params:scim:schemas:core:2\.0:Device/.test(e.message),
    );
    assert.deepEqual(server.requests, []);
  });

  test('compat.disable patch uses the fallback; bulk without Bulk and PATCH does too', async () => {
    const state = { doc: alice(), v: 1, conflicts: 0 };
    const { server, client } = await setup(userServer(state), {
      spc: spc({ patch: { supported: true }, etag: { supported: true } }),
      compat: { disable: ['patch'] },
    });
    const results = await client.bulk([
      {
        method: 'PATCH',
        path: '/Users/u1',
        version: 'W/"1"',
        data: { Operations: [{ op: 'replace', path: 'title', value: 'Dr' }] },
      },
      {
        method: 'PATCH',
        path: '/Users/u1',
        data: { Operations: [{ op: 'remove', path: 'userName' }] },
      },
    ]);
    assert.deepEqual(calls(server).map(line), [
      'GET /scim/Users/u1',
      'PUT /scim/Users/u1 if-match W/"1"',
      'GET /scim/Users/u1',
    ]);
    assert.equal(state.doc.title, 'Dr');
    assert.deepEqual(results, [
      { method: 'PATCH', status: '200', location: `${server.url}/Users/u1`, version: 'W/"2"' },
      {
        method: 'PATCH',
        status: '400',
        response: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
          status: '400',
          scimType: 'mutability',
          detail: 'Operations[0] (remove userName): Attribute "userName" is required and cannot be removed',
        },
      },
    ]);
  });
});
