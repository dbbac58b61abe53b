/**
 * SET claim sets for every SCIM event type (RFC 9967 §2, RFC 8417 §2): exact payloads, the claims
 * present and absent as the conformance checklist says ("Events — SET content").
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EVENT,
  SCIM_EVENT_URIS,
  buildScimEvent,
  bulkTxn,
  changedAttributes,
  newTxn,
  patchAttributes,
  redactPatchOp,
  secretTest,
  type SetClaims,
  type SetEnvelope,
} from '../../src/events/set.ts';
import { createServerRegistry } from '../../src/registry.ts';
import type { JsonObject } from '../../src/scim/json.ts';

const ENV: SetEnvelope = {
  issuer: 'https://scim.example.com',
  audience: 'https://receiver.example.com/feed/1',
  txn: 'txn-1',
  iat: 1458496404,
  jti: 'jti-1',
};

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

function user(extra: JsonObject = {}, version = 'W/"1"'): JsonObject {
  return {
    schemas: [USER_SCHEMA],
    id: 'u1',
    externalId: 'jdoe',
    userName: 'jdoe',
    name: { givenName: 'John', familyName: 'Doe' },
    emails: [{ value: 'jdoe@example.com', type: 'work' }],
    active: true,
    meta: {
      resourceType: 'User',
      created: '2026-01-01T00:00:00Z',
      lastModified: '2026-01-01T00:00:00Z',
      location: 'https://scim.example.com/scim/v2/Users/u1',
      version,
    },
    ...extra,
  };
}

const COMMON = {
  iss: 'https://scim.example.com',
  iat: 1458496404,
  jti: 'jti-1',
  aud: 'https://receiver.example.com/feed/1',
  txn: 'txn-1',
  sub_id: { format: 'scim', uri: '/Users/u1', externalId: 'jdoe' },
};

/** Every SET: exactly these top-level claims, never sub or exp (RFC 9967 §2.1, RFC 8417 §2.2). */
function assertEnvelope(set: SetClaims): void {
  assert.deepEqual(Object.keys(set).sort(), ['aud', 'events', 'iat', 'iss', 'jti', 'sub_id', 'txn']);
  assert.equal('sub' in set, false);
  assert.equal('exp' in set, false);
}

describe('SCIM event SETs', () => {
  test('the event URI catalogue is exactly the RFC 9967 registry, all lower case', () => {
    assert.deepEqual([...SCIM_EVENT_URIS].sort(), [
      'urn:ietf:params:scim:event:feed:add',
      'urn:ietf:params:scim:event:feed:remove',
      'urn:ietf:params:scim:event:misc:asyncresp',
      'urn:ietf:params:scim:event:prov:activate',
      'urn:ietf:params:scim:event:prov:create:full',
      'urn:ietf:params:scim:event:prov:create:notice',
      'urn:ietf:params:scim:event:prov:deactivate',
      'urn:ietf:params:scim:event:prov:delete',
      'urn:ietf:params:scim:event:prov:patch:full',
      'urn:ietf:params:scim:event:prov:patch:notice',
      'urn:ietf:params:scim:event:prov:put:full',
      'urn:ietf:params:scim:event:prov:put:notice',
    ]);
  });

  test('create:full carries the representation with its id, and version; an active user is also activated', () => {
    const resource = user();
    const set = buildScimEvent({ type: 'create', endpoint: '/Users', resource, form: 'full' }, ENV);
    assertEnvelope(set);
    assert.deepEqual(set, {
      ...COMMON,
      events: {
        'urn:ietf:params:scim:event:prov:create:full': { data: resource, version: 'W/"1"' },
        'urn:ietf:params:scim:event:prov:activate': {},
      },
    });
  });

  test('create:notice lists the attributes set, never data', () => {
    const resource = user({
      [ENTERPRISE]: { employeeNumber: '42', manager: { value: 'm1' } },
    });
    const set = buildScimEvent(
      { type: 'create', endpoint: 'Users', resource, form: 'notice', activation: false },
      ENV,
    );
    assertEnvelope(set);
    assert.deepEqual(set, {
      ...COMMON,
      events: {
        'urn:ietf:params:scim:event:prov:create:notice': {
          attributes: [
            'externalId',
            'userName',
            'name',
            'emails',
            'active',
            `${ENTERPRISE}:employeeNumber`,
            `${ENTERPRISE}:manager`,
          ],
          version: 'W/"1"',
        },
      },
    });
  });

  test('create of an inactive resource emits no activation event', () => {
    const set = buildScimEvent(
      { type: 'create', endpoint: '/Users', resource: user({ active: false }), form: 'notice' },
      ENV,
    );
    assert.deepEqual(Object.keys(set.events), [EVENT.createNotice]);
  });

  test('externalId is left out of sub_id when the resource has none', () => {
    const { externalId: _drop, ...resource } = user();
    const set = buildScimEvent({ type: 'delete', endpoint: '/Users', resource }, ENV);
    assert.deepEqual(set.sub_id, { format: 'scim', uri: '/Users/u1' });
  });

  test('patch:full carries the PatchOp message and the new version (Figure 6)', () => {
    const patch = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'add', path: 'members', value: [{ value: 'u1', display: 'Babs Jensen' }] }],
    };
    const group = {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      id: 'g1',
      externalId: 'crmUsers',
      displayName: 'CRM',
      meta: { resourceType: 'Group', version: 'W/"7"' },
    };
    const set = buildScimEvent(
      { type: 'patch', endpoint: '/Groups', resource: group, patch, form: 'full' },
      ENV,
    );
    assertEnvelope(set);
    assert.deepEqual(set, {
      ...COMMON,
      sub_id: { format: 'scim', uri: '/Groups/g1', externalId: 'crmUsers' },
      events: { 'urn:ietf:params:scim:event:prov:patch:full': { data: patch, version: 'W/"7"' } },
    });
  });

  test('patch:notice lists the changed paths (Figure 7: ["members"]) with the new version', () => {
    const patch: JsonObject = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        { op: 'add', path: 'members', value: [{ value: 'u1' }] },
        { op: 'remove', path: 'members[value eq "u2"]' },
      ],
    };
    const group = { id: 'g1', displayName: 'CRM', meta: { version: 'W/"8"' } };
    const set = buildScimEvent(
      { type: 'patch', endpoint: '/Groups', resource: group, patch, form: 'notice' },
      ENV,
    );
    assert.deepEqual(set.events, {
      'urn:ietf:params:scim:event:prov:patch:notice': { attributes: ['members'], version: 'W/"8"' },
    });
    assert.deepEqual(set.sub_id, { format: 'scim', uri: '/Groups/g1' });
  });

  test('patch setting active false emits prov:deactivate in the same SET', () => {
    const before = user();
    const after = user({ active: false }, 'W/"2"');
    const patch = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    };
    const set = buildScimEvent(
      { type: 'patch', endpoint: '/Users', resource: after, before, patch, form: 'notice' },
      ENV,
    );
    assertEnvelope(set);
    assert.deepEqual(set.events, {
      'urn:ietf:params:scim:event:prov:patch:notice': { attributes: ['active'], version: 'W/"2"' },
      'urn:ietf:params:scim:event:prov:deactivate': {},
    });
  });

  test('patch setting active true again emits prov:activate; wasActive stands in for before', () => {
    const patch = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { active: true } }],
    };
    const set = buildScimEvent(
      { type: 'patch', endpoint: '/Users', resource: user(), wasActive: false, patch, form: 'notice' },
      ENV,
    );
    assert.deepEqual(set.events, {
      'urn:ietf:params:scim:event:prov:patch:notice': { attributes: ['active'], version: 'W/"1"' },
      'urn:ietf:params:scim:event:prov:activate': {},
    });
  });

  test('without a state before, no activation change is claimed', () => {
    const patch = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [] };
    const set = buildScimEvent(
      { type: 'patch', endpoint: '/Users', resource: user(), patch, form: 'full' },
      ENV,
    );
    assert.deepEqual(Object.keys(set.events), [EVENT.patchFull]);
  });

  test('put:full carries the representation after the PUT; put:notice the attributes that differ', () => {
    const before = user();
    const after = user(
      {
        name: { givenName: 'Jon', familyName: 'Doe' },
        emails: [{ value: 'jon@example.com' }],
        title: 'Boss',
      },
      'W/"3"',
    );
    delete after.externalId;
    const full = buildScimEvent(
      { type: 'put', endpoint: '/Users', resource: after, before, form: 'full' },
      ENV,
    );
    assertEnvelope(full);
    assert.deepEqual(full, {
      ...COMMON,
      sub_id: { format: 'scim', uri: '/Users/u1' },
      events: { 'urn:ietf:params:scim:event:prov:put:full': { data: after, version: 'W/"3"' } },
    });
    const notice = buildScimEvent(
      { type: 'put', endpoint: '/Users', resource: after, before, form: 'notice' },
      ENV,
    );
    assert.deepEqual(notice.events, {
      'urn:ietf:params:scim:event:prov:put:notice': {
        attributes: ['name.givenName', 'emails', 'title', 'externalId'],
        version: 'W/"3"',
      },
    });
  });

  test('delete is {} with no full/notice suffix, no version, and no feed:remove', () => {
    const set = buildScimEvent({ type: 'delete', endpoint: '/Users', resource: user() }, ENV);
    assertEnvelope(set);
    assert.deepEqual(set, { ...COMMON, events: { 'urn:ietf:params:scim:event:prov:delete': {} } });
  });

  test('activate, deactivate, feed:add and feed:remove are {} payloads', () => {
    for (const [type, uri] of [
      ['activate', 'urn:ietf:params:scim:event:prov:activate'],
      ['deactivate', 'urn:ietf:params:scim:event:prov:deactivate'],
      ['feed:add', 'urn:ietf:params:scim:event:feed:add'],
      ['feed:remove', 'urn:ietf:params:scim:event:feed:remove'],
    ] as const) {
      const set = buildScimEvent({ type, endpoint: '/Users', resource: user() }, ENV);
      assertEnvelope(set);
      assert.deepEqual(set, { ...COMMON, events: { [uri]: {} } }, type);
    }
  });

  test('misc:asyncresp: method, status as a string, version (Figure 14)', () => {
    const set = buildScimEvent(
      { type: 'asyncresp', uri: '/Users/u1', method: 'PUT', status: 200, version: 'W/"huJj29dMNgu3WXPD"' },
      { ...ENV, txn: '734f0614e3274f288f93ac74119dcf78' },
    );
    assertEnvelope(set);
    assert.deepEqual(set, {
      ...COMMON,
      txn: '734f0614e3274f288f93ac74119dcf78',
      sub_id: { format: 'scim', uri: '/Users/u1' },
      events: {
        'urn:ietf:params:scim:event:misc:asyncresp': {
          method: 'PUT',
          version: 'W/"huJj29dMNgu3WXPD"',
          status: '200',
        },
      },
    });
  });

  test('misc:asyncresp of a failure carries the SCIM Error as response (Figure 15)', () => {
    const response = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      scimType: 'invalidSyntax',
      detail: 'Request is unparsable',
      status: '400',
    };
    const set = buildScimEvent(
      { type: 'asyncresp', uri: '/Users', method: 'POST', status: '400', response },
      ENV,
    );
    assert.deepEqual(set.events, {
      'urn:ietf:params:scim:event:misc:asyncresp': { method: 'POST', status: '400', response },
    });
  });

  test('misc:asyncresp of a Bulk operation: bulkId kept, txn "<Set-Txn>:<zero-based index>"', () => {
    const set = buildScimEvent(
      {
        type: 'asyncresp',
        uri: '/Users/92b7',
        method: 'POST',
        bulkId: 'qwerty',
        status: '201',
        version: 'W/"1"',
      },
      { ...ENV, txn: bulkTxn('2d80e537', 0) },
    );
    assert.equal(set.txn, '2d80e537:0');
    assert.deepEqual(set.events, {
      'urn:ietf:params:scim:event:misc:asyncresp': {
        method: 'POST',
        bulkId: 'qwerty',
        version: 'W/"1"',
        status: '201',
      },
    });
  });

  test('two copies of one change to two audiences share txn and differ in jti', () => {
    const txn = newTxn();
    const change = { type: 'create', endpoint: '/Users', resource: user(), form: 'full' } as const;
    const a = buildScimEvent(change, {
      issuer: 'https://scim.example.com',
      audience: 'https://a.example/feed',
      txn,
    });
    const b = buildScimEvent(change, {
      issuer: 'https://scim.example.com',
      audience: 'https://b.example/feed',
      txn,
    });
    assert.equal(a.txn, txn);
    assert.equal(b.txn, txn);
    assert.notEqual(a.jti, b.jti);
    assert.match(a.jti, /^[0-9a-f]{32}$/);
    assert.equal(a.aud, 'https://a.example/feed');
    assert.equal(b.aud, 'https://b.example/feed');
    assert.deepEqual(a.events, b.events);
    assert.ok(Math.abs(a.iat - Date.now() / 1000) < 5);
  });

  test('exactly one of data and attributes in every create/patch/put payload', () => {
    const patch = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [] };
    for (const type of ['create', 'put', 'patch'] as const) {
      for (const form of ['full', 'notice'] as const) {
        const set = buildScimEvent(
          { type, endpoint: '/Users', resource: user(), patch, form, activation: false },
          ENV,
        );
        const [payload] = Object.values(set.events);
        assert.equal('data' in payload, form === 'full', `${type}:${form}`);
        assert.equal('attributes' in payload, form === 'notice', `${type}:${form}`);
      }
    }
  });

  test('a resource without an id cannot be a subject', () => {
    assert.throws(() => buildScimEvent({ type: 'delete', endpoint: '/Users', resource: {} }, ENV), TypeError);
  });
});

describe('changed attribute paths', () => {
  test('sub-attributes of complex single-valued attributes, multi-valued as a whole, extension with its URN', () => {
    const before = user({ [ENTERPRISE]: { employeeNumber: '1', department: 'R&D' } });
    const after = user(
      {
        name: { givenName: 'John', familyName: 'Smith' },
        emails: [{ value: 'jdoe@example.com', type: 'home' }],
        [ENTERPRISE]: { employeeNumber: '2' },
      },
      'W/"9"',
    );
    assert.deepEqual(changedAttributes(before, after), [
      'name.familyName',
      'emails',
      `${ENTERPRISE}:employeeNumber`,
      `${ENTERPRISE}:department`,
    ]);
  });

  test('an unchanged resource lists nothing; meta changes are not listed', () => {
    assert.deepEqual(changedAttributes(user(), user({}, 'W/"2"')), []);
  });

  test('PatchOp paths: value filters dropped, sub-attributes kept, path-less values expanded', () => {
    assert.deepEqual(
      patchAttributes({
        Operations: [
          { op: 'replace', path: 'name.familyName', value: 'X' },
          { op: 'replace', path: 'emails[type eq "work"].value', value: 'x@example.com' },
          { op: 'add', path: `${ENTERPRISE}:manager.value`, value: 'm1' },
          {
            op: 'replace',
            value: { userName: 'x', name: { givenName: 'Y' }, [ENTERPRISE]: { department: 'D' } },
          },
          { op: 'remove', path: 'name.familyName' },
        ],
      }),
      [
        'name.familyName',
        'emails',
        `${ENTERPRISE}:manager.value`,
        'userName',
        'name.givenName',
        `${ENTERPRISE}:department`,
      ],
    );
  });
});

describe('secrets stay out of data', () => {
  const registry = createServerRegistry();
  const rt = registry.resourceType('User')!;
  const secrets = secretTest(registry, rt);

  test('password (writeOnly, never returned) is a secret in every spelling', () => {
    assert.equal(secrets('password'), true);
    assert.equal(secrets(`${USER_SCHEMA}:password`), true);
    assert.equal(secrets('PASSWORD'), true);
    assert.equal(secrets('userName'), false);
  });

  test('patch:full drops operations that set a secret and secret keys of path-less values', () => {
    const patch: JsonObject = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        { op: 'replace', path: 'password', value: 'hunter2' },
        { op: 'replace', path: `${USER_SCHEMA}:password`, value: 'hunter2' },
        { op: 'replace', value: { password: 'hunter2', displayName: 'J' } },
        { op: 'remove', path: 'password' },
        { op: 'replace', path: 'displayName', value: 'K' },
      ],
    };
    assert.deepEqual(redactPatchOp(patch, secrets), {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        { op: 'replace', value: { displayName: 'J' } },
        { op: 'remove', path: 'password' },
        { op: 'replace', path: 'displayName', value: 'K' },
      ],
    });
    const set = buildScimEvent(
      { type: 'patch', endpoint: '/Users', resource: user(), patch, form: 'full', secrets },
      ENV,
    );
    assert.equal(JSON.stringify(set).includes('hunter2'), false);
  });

  test('create:full with secrets leaves a password out of data', () => {
    const set = buildScimEvent(
      { type: 'create', endpoint: '/Users', resource: user({ password: 'hunter2' }), form: 'full', secrets },
      ENV,
    );
    assert.deepEqual(set.events[EVENT.createFull].data, user());
  });
});
