/**
 * Discovery (RFC 7644 §4, RFC 7643 §5-7, RFC 9865 §4 pagination) and transport rules (RFC 7644 §3.1, §3.13).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  BASE,
  ENTERPRISE,
  GROUP,
  LIST,
  RESOURCE_TYPE,
  SCHEMA,
  SPC,
  USER,
  assertError,
  assertList,
  assertScim,
  enc,
  mediaType,
  type Json,
} from './lib.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t.close();
});

function attr(schema: Json, name: string): Json {
  const a = (schema.attributes as Json[]).find((x) => x.name === name);
  assert.ok(a, `attribute ${name} not in schema ${schema.id}`);
  return a;
}

const CHARACTERISTICS = ['name', 'type', 'multiValued', 'description', 'required', 'mutability', 'returned'];

describe('ServiceProviderConfig (RFC 7643 §5)', () => {
  test('GET /ServiceProviderConfig: 200, the SPC schema, every capability object present and truthful', async () => {
    const res = await t.request('GET', `${BASE}/ServiceProviderConfig`);
    assertScim(res, 200);
    const spc = res.body;
    assert.deepEqual(spc.schemas, [SPC]);
    assert.deepEqual(spc.patch, { supported: true });
    assert.equal(spc.bulk.supported, true);
    assert.equal(spc.bulk.maxOperations, 1000);
    assert.equal(spc.bulk.maxPayloadSize, 4 * 1024 * 1024);
    assert.equal(spc.filter.supported, true);
    assert.equal(spc.filter.maxResults, 1000);
    assert.equal(typeof spc.changePassword.supported, 'boolean');
    assert.deepEqual(spc.sort, { supported: true });
    assert.deepEqual(spc.etag, { supported: true });
    assert.ok(Array.isArray(spc.authenticationSchemes) && spc.authenticationSchemes.length >= 1);
    const bearer = (spc.authenticationSchemes as Json[]).find((s) => s.type === 'oauthbearertoken');
    assert.ok(bearer, 'a bearer-token scheme (type "oauthbearertoken") is advertised');
    assert.equal(typeof bearer.name, 'string');
    assert.equal(typeof bearer.description, 'string');
  });

  test('SPC pagination object (RFC 9865 §4) reflects the configured limits', async () => {
    const res = await t.request('GET', `${BASE}/ServiceProviderConfig`);
    assertScim(res, 200);
    const p = res.body.pagination;
    assert.equal(p.cursor, true);
    assert.equal(p.index, true);
    assert.ok(p.defaultPaginationMethod === 'index' || p.defaultPaginationMethod === 'cursor');
    assert.equal(p.defaultPageSize, 100);
    assert.equal(p.maxPageSize, 1000);
    assert.equal(p.cursorTimeout, 3600);
  });

  test('SPC is readable without credentials (RFC 7644 §4: authenticationSchemes SHOULD be public)', async () => {
    const res = await t.request('GET', `${BASE}/ServiceProviderConfig`, { token: false });
    assertScim(res, 200);
    assert.deepEqual(res.body.schemas, [SPC]);
  });

  test('unknown query parameters on SPC are ignored', async () => {
    const a = await t.request('GET', `${BASE}/ServiceProviderConfig`);
    const b = await t.request('GET', `${BASE}/ServiceProviderConfig?foo=bar`);
    assertScim(b, 200);
    assert.deepEqual(b.body, a.body);
  });
});

describe('ResourceTypes (RFC 7643 §6)', () => {
  test('GET /ResourceTypes is a ListResponse holding User and Group, each complete', async () => {
    const res = await t.request('GET', `${BASE}/ResourceTypes`);
    assertList(res);
    const rts = res.body.Resources as Json[];
    assert.equal(res.body.totalResults, rts.length);
    for (const rt of rts) {
      assert.deepEqual(rt.schemas, [RESOURCE_TYPE]);
      for (const k of ['id', 'name', 'endpoint', 'schema'])
        assert.equal(typeof rt[k], 'string', `${k} of ${rt.name}`);
      assert.ok(rt.endpoint.startsWith('/'));
    }
    const user = rts.find((r) => r.name === 'User');
    assert.ok(user);
    assert.equal(user.id, 'User');
    assert.equal(user.endpoint, '/Users');
    assert.equal(user.schema, USER);
    assert.deepEqual(user.schemaExtensions, [{ schema: ENTERPRISE, required: false }]);
    const group = rts.find((r) => r.name === 'Group');
    assert.ok(group);
    assert.equal(group.id, 'Group');
    assert.equal(group.endpoint, '/Groups');
    assert.equal(group.schema, GROUP);
  });

  test('GET /ResourceTypes/User returns that single object, not a ListResponse', async () => {
    const res = await t.request('GET', `${BASE}/ResourceTypes/User`);
    assertScim(res, 200);
    assert.deepEqual(res.body.schemas, [RESOURCE_TYPE]);
    assert.equal(res.body.name, 'User');
    assert.equal(res.body.endpoint, '/Users');
    assert.equal(res.body.Resources, undefined);
  });

  test('GET /ResourceTypes/Nope → 404 SCIM error', async () => {
    assertError(await t.request('GET', `${BASE}/ResourceTypes/Nope`), 404);
  });

  test('filter on /ResourceTypes → 403 (RFC 7644 §4)', async () => {
    assertError(await t.request('GET', `${BASE}/ResourceTypes?filter=${enc('name eq "User"')}`), 403);
  });

  test('every schema referenced by a ResourceType is served by /Schemas', async () => {
    const res = await t.request('GET', `${BASE}/ResourceTypes`);
    assertList(res);
    const referenced = new Set<string>();
    for (const rt of res.body.Resources as Json[]) {
      referenced.add(rt.schema);
      for (const ext of (rt.schemaExtensions ?? []) as Json[]) referenced.add(ext.schema);
    }
    assert.ok(referenced.size >= 3);
    for (const id of referenced) {
      const s = await t.request('GET', `${BASE}/Schemas/${id}`);
      assertScim(s, 200);
      assert.equal(s.body.id, id);
    }
  });
});

describe('Schemas (RFC 7643 §7)', () => {
  test('GET /Schemas is a ListResponse of Schema objects; no message schemas listed (RFC 7644 §4)', async () => {
    const res = await t.request('GET', `${BASE}/Schemas`);
    assertList(res);
    assert.deepEqual(res.body.schemas, [LIST]);
    const list = res.body.Resources as Json[];
    assert.equal(res.body.totalResults, list.length);
    const idsServed = list.map((s) => s.id as string);
    for (const id of [USER, ENTERPRISE, GROUP]) assert.ok(idsServed.includes(id), `${id} listed`);
    for (const id of idsServed)
      assert.ok(!id.startsWith('urn:ietf:params:scim:api:messages:'), `${id} must not be listed`);
    for (const s of list) {
      assert.deepEqual(s.schemas, [SCHEMA]);
      assert.equal(typeof s.name, 'string');
      // attributes is required (RFC 7643 §7); the BLE null pairing method schema has none.
      assert.ok(Array.isArray(s.attributes), `${s.id}: attributes`);
      if (!String(s.id).includes(':pairingNull:')) assert.ok(s.attributes.length > 0, `${s.id}: attributes`);
    }
  });

  test('every attribute and sub-attribute has its characteristics filled in', async () => {
    const res = await t.request('GET', `${BASE}/Schemas`);
    assertList(res);
    const check = (a: Json, where: string): void => {
      for (const k of CHARACTERISTICS) assert.notEqual(a[k], undefined, `${where}.${a.name}: ${k}`);
      if (a.type === 'string' || a.type === 'reference' || a.type === 'binary') {
        assert.equal(typeof a.caseExact, 'boolean', `${where}.${a.name}: caseExact`);
        assert.equal(typeof a.uniqueness, 'string', `${where}.${a.name}: uniqueness`);
      }
      if (a.type === 'complex') {
        // RFC 7643 §7: subAttributes is required for complex attributes; it may be empty (the BLE
        // null pairing method's object has no sub-attributes).
        assert.ok(Array.isArray(a.subAttributes), `${where}.${a.name}: subAttributes`);
        for (const sub of a.subAttributes as Json[]) check(sub, `${where}.${a.name}`);
      }
      if (a.type === 'reference')
        assert.ok(Array.isArray(a.referenceTypes), `${where}.${a.name}: referenceTypes`);
    };
    for (const s of res.body.Resources as Json[]) for (const a of s.attributes as Json[]) check(a, s.id);
  });

  test('GET /Schemas/<User URN> is the single Schema, generated truthfully', async () => {
    const res = await t.request('GET', `${BASE}/Schemas/${USER}`);
    assertScim(res, 200);
    const s = res.body;
    assert.deepEqual(s.schemas, [SCHEMA]);
    assert.equal(s.id, USER);
    assert.equal(s.name, 'User');
    assert.equal(s.Resources, undefined);
    const userName = attr(s, 'userName');
    assert.equal(userName.type, 'string');
    assert.equal(userName.required, true);
    assert.equal(userName.caseExact, false);
    assert.equal(userName.uniqueness, 'server');
    assert.equal(userName.mutability, 'readWrite');
    assert.equal(userName.returned, 'default');
    assert.equal(userName.multiValued, false);
    const password = attr(s, 'password');
    assert.equal(password.returned, 'never');
    assert.equal(password.mutability, 'writeOnly');
    const groups = attr(s, 'groups');
    assert.equal(groups.mutability, 'readOnly');
    assert.equal(groups.multiValued, true);
    assert.equal(groups.type, 'complex');
    const active = attr(s, 'active');
    assert.equal(active.type, 'boolean');
    const emails = attr(s, 'emails');
    assert.equal(emails.multiValued, true);
    const primary = (emails.subAttributes as Json[]).find((x) => x.name === 'primary');
    assert.equal(primary.type, 'boolean');
  });

  test('Group schema: members sub-attributes value/type/$ref are immutable (RFC 7643 §8.7.1)', async () => {
    const res = await t.request('GET', `${BASE}/Schemas/${GROUP}`);
    assertScim(res, 200);
    const members = attr(res.body, 'members');
    assert.equal(members.multiValued, true);
    const subs = Object.fromEntries((members.subAttributes as Json[]).map((x) => [x.name, x]));
    assert.equal(subs.value.mutability, 'immutable');
    assert.equal(subs.type.mutability, 'immutable');
    assert.equal(subs.$ref.mutability, 'immutable');
    assert.equal(subs.$ref.type, 'reference');
    // Devices and EndpointApps can be Group members too (draft-ietf-scim-device-model).
    assert.deepEqual([...subs.$ref.referenceTypes].sort(), ['Device', 'EndpointApp', 'Group', 'User']);
  });

  test('Enterprise extension schema: manager is complex with value, $ref and displayName (readOnly)', async () => {
    const res = await t.request('GET', `${BASE}/Schemas/${ENTERPRISE}`);
    assertScim(res, 200);
    const manager = attr(res.body, 'manager');
    assert.equal(manager.type, 'complex');
    const subs = Object.fromEntries((manager.subAttributes as Json[]).map((x) => [x.name, x]));
    assert.ok(subs.value);
    assert.equal(subs.$ref.type, 'reference');
    assert.equal(subs.displayName.mutability, 'readOnly');
  });

  test('GET /Schemas/<unknown URN> → 404 SCIM error', async () => {
    assertError(await t.request('GET', `${BASE}/Schemas/urn:example:nope`), 404);
  });

  test('filter on /Schemas → 403 (RFC 7644 §4)', async () => {
    assertError(await t.request('GET', `${BASE}/Schemas?filter=${enc('id eq "x"')}`), 403);
  });

  test('unknown query parameters on /Schemas are ignored', async () => {
    const a = await t.request('GET', `${BASE}/Schemas`);
    const b = await t.request('GET', `${BASE}/Schemas?foo=1&bar=baz`);
    assertList(b);
    assert.deepEqual(b.body, a.body);
  });
});

describe('transport (RFC 7644 §3.1, §3.8, §3.13)', () => {
  test('unknown query parameter on GET /Users is ignored', async () => {
    const a = await t.request('GET', `${BASE}/Users`);
    const b = await t.request('GET', `${BASE}/Users?foo=1`);
    assertList(b);
    assert.deepEqual(b.body, a.body);
  });

  test('an unsupported version segment (/scim/v3/Users) is never served as v2', async () => {
    const res = await t.request('GET', '/scim/v3/Users');
    if (res.status === 400) assertError(res, 400, 'invalidVers');
    else assertError(res, 404);
  });

  test('Accept: application/json is served (RFC 7644 §3.8 SHOULD)', async () => {
    const res = await t.request('GET', `${BASE}/Users`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 200);
    // Answering in either media type honours the Accept header; both are JSON.
    assert.ok(
      ['application/scim+json', 'application/json'].includes(mediaType(res) ?? ''),
      String(res.headers['content-type']),
    );
    assert.deepEqual(res.body.schemas, [LIST]);
  });

  test('Accept: application/scim+json is served with application/scim+json', async () => {
    const res = await t.request('GET', `${BASE}/ResourceTypes`, {
      headers: { accept: 'application/scim+json' },
    });
    assertList(res);
  });

  test('a request body sent as application/json is accepted', async () => {
    const res = await t.request('POST', `${BASE}/Users`, {
      body: { schemas: [USER], userName: 'json-content-type' },
      headers: { 'content-type': 'application/json' },
    });
    assertScim(res, 201);
    assert.equal(res.body.userName, 'json-content-type');
  });
});
