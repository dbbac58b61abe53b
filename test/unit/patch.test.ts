import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ScimError, type ScimType } from '../../src/scim/errors.ts';
import type { JsonObject, JsonValue } from '../../src/scim/json.ts';
import {
  applyPatch,
  parsePatchRequest,
  PATCH_OP_SCHEMA,
  type PatchOperation,
  type PatchResult,
} from '../../src/scim/patch/patch.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import { createCoreRegistry, findSubAttribute } from '../../src/scim/schema/registry.ts';

const registry = createCoreRegistry();
const USER = registry.resourceType('User')!;
const GROUP = registry.resourceType('Group')!;

// A resource type with an immutable attribute (the core schemas have none at the top level).
const DEVICE_SCHEMA = 'urn:example:scim:schemas:Device';
const deviceRegistry = createCoreRegistry();
deviceRegistry.addSchema({
  id: DEVICE_SCHEMA,
  name: 'Device',
  attributes: [
    { name: 'displayName', required: true },
    { name: 'serialNumber', mutability: 'immutable' },
    { name: 'tags', multiValued: true },
    {
      name: 'firmware',
      type: 'complex',
      subAttributes: [{ name: 'version' }, { name: 'vendor', mutability: 'immutable' }],
    },
  ],
});
deviceRegistry.addResourceType({
  id: 'Device',
  name: 'Device',
  endpoint: '/Devices',
  description: 'Device',
  schema: DEVICE_SCHEMA,
  schemaExtensions: [],
});
const DEVICE = deviceRegistry.resourceType('Device')!;

const META = {
  resourceType: 'User',
  created: '2024-01-01T00:00:00.000Z',
  lastModified: '2024-01-01T00:00:00.000Z',
  location: 'https://example.com/v2/Users/2819c223',
  version: 'W/"1"',
};

function user(extra: JsonObject = {}): JsonObject {
  return {
    schemas: [USER_SCHEMA],
    id: '2819c223',
    userName: 'bjensen',
    name: { familyName: 'Jensen', givenName: 'Barbara' },
    emails: [
      { value: 'bjensen@example.com', type: 'work', primary: true },
      { value: 'babs@jensen.org', type: 'home' },
    ],
    addresses: [
      { streetAddress: '100 Universal City Plaza', locality: 'Hollywood', type: 'work' },
      { streetAddress: '456 Hollywood Blvd', locality: 'Hollywood', type: 'home' },
    ],
    active: true,
    meta: META,
    ...extra,
  };
}

function group(extra: JsonObject = {}): JsonObject {
  return {
    schemas: [GROUP_SCHEMA],
    id: 'g1',
    displayName: 'Tour Guides',
    meta: { ...META, resourceType: 'Group', location: 'https://example.com/v2/Groups/g1' },
    ...extra,
  };
}

function body(...ops: JsonValue[]): JsonObject {
  return { schemas: [PATCH_OP_SCHEMA], Operations: ops };
}

/** Parses a PatchOp body and applies it to a User (or `rt`), checking the input is never modified. */
function patch(
  resource: JsonObject,
  ops: JsonValue[],
  rt = USER,
  opts?: { lenient?: boolean },
  reg = registry,
): PatchResult {
  const before = JSON.stringify(resource);
  try {
    return applyPatch(reg, rt, resource, parsePatchRequest(body(...ops)), opts);
  } finally {
    assert.equal(JSON.stringify(resource), before, 'the input resource must never be modified');
  }
}

function rejects(fn: () => unknown, status: number, scimType: ScimType | ScimType[]): ScimError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ScimError, `expected a ScimError, got ${String(caught)}`);
  assert.equal(caught.status, status, caught.message);
  const allowed = Array.isArray(scimType) ? scimType : [scimType];
  assert.ok(
    allowed.includes(caught.scimType!),
    `scimType ${caught.scimType} not in ${allowed.join(',')}: ${caught.message}`,
  );
  return caught;
}

function without(obj: JsonObject, ...keys: string[]): JsonObject {
  const out = { ...obj };
  for (const k of keys) delete out[k];
  return out;
}

const membersAttr = registry.schema(GROUP_SCHEMA)!.attributes.find((a) => a.name === 'members')!;

describe('parsePatchRequest', () => {
  test('returns the operations with op names lower-cased', () => {
    assert.deepEqual(
      parsePatchRequest(
        body(
          { op: 'Replace', path: 'displayName', value: 'X' },
          { op: 'ADD', value: { nickName: 'B' } },
          { op: 'remove', path: 'title' },
        ),
      ),
      [
        { op: 'replace', path: 'displayName', value: 'X' },
        { op: 'add', value: { nickName: 'B' } },
        { op: 'remove', path: 'title' },
      ],
    );
  });

  test('keeps a value given to remove (Entra sends one on members) and a null value on replace', () => {
    assert.deepEqual(
      parsePatchRequest(
        body(
          { op: 'Remove', path: 'members', value: [{ value: 'u1' }] },
          { op: 'replace', path: 'title', value: null },
        ),
      ),
      [
        { op: 'remove', path: 'members', value: [{ value: 'u1' }] },
        { op: 'replace', path: 'title', value: null },
      ],
    );
  });

  test('accepts "operations" / "Op" / "Path" / "Value" keys in any case', () => {
    assert.deepEqual(
      parsePatchRequest({
        schemas: [PATCH_OP_SCHEMA],
        operations: [{ Op: 'add', Path: 'title', Value: 'Boss' }],
      }),
      [{ op: 'add', path: 'title', value: 'Boss' }],
    );
  });

  test('without schemas [PatchOp] → 400 invalidSyntax', () => {
    rejects(
      () => parsePatchRequest({ Operations: [{ op: 'add', path: 'title', value: 'x' }] }),
      400,
      'invalidSyntax',
    );
    rejects(
      () =>
        parsePatchRequest({ schemas: [USER_SCHEMA], Operations: [{ op: 'add', path: 'title', value: 'x' }] }),
      400,
      'invalidSyntax',
    );
    rejects(
      () =>
        parsePatchRequest({
          schemas: PATCH_OP_SCHEMA,
          Operations: [{ op: 'add', path: 'title', value: 'x' }],
        }),
      400,
      'invalidSyntax',
    );
  });

  test('empty or missing Operations → 400 invalidSyntax', () => {
    rejects(() => parsePatchRequest(body()), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest({ schemas: [PATCH_OP_SCHEMA] }), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest({ schemas: [PATCH_OP_SCHEMA], Operations: {} }), 400, 'invalidSyntax');
  });

  test('a body that is not an object → 400 invalidSyntax', () => {
    rejects(() => parsePatchRequest([]), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest('x'), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest(null), 400, 'invalidSyntax');
  });

  test('unknown, missing or non-string op → 400 invalidSyntax', () => {
    rejects(() => parsePatchRequest(body({ op: 'move', path: 'title', value: 'x' })), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest(body({ op: 'test', path: 'title', value: 'x' })), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest(body({ path: 'title', value: 'x' })), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest(body({ op: 1, path: 'title', value: 'x' })), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest(body('add')), 400, 'invalidSyntax');
  });

  test('add/replace without value → 400 invalidSyntax; non-string path → 400 invalidSyntax', () => {
    rejects(() => parsePatchRequest(body({ op: 'add', path: 'title' })), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest(body({ op: 'Replace', path: 'title' })), 400, 'invalidSyntax');
    rejects(() => parsePatchRequest(body({ op: 'add', path: 5, value: 'x' })), 400, 'invalidSyntax');
  });
});

describe('PATCH remove (RFC 7644 §3.5.2.2)', () => {
  test('without path → 400 noTarget', () => {
    rejects(() => patch(user(), [{ op: 'remove' }]), 400, 'noTarget');
  });

  test('single-valued attribute becomes unassigned', () => {
    const r = patch(user({ title: 'Tour Guide' }), [{ op: 'remove', path: 'title' }]);
    assert.deepEqual(r.resource, user());
    assert.equal(r.changed, true);
  });

  test('multi-valued attribute without filter: all values removed', () => {
    const r = patch(user(), [{ op: 'remove', path: 'emails' }]);
    assert.deepEqual(r.resource, without(user(), 'emails'));
  });

  test('emails[type eq "work"] removes only the work email', () => {
    const r = patch(user(), [{ op: 'remove', path: 'emails[type eq "work"]' }]);
    assert.deepEqual(r.resource, user({ emails: [{ value: 'babs@jensen.org', type: 'home' }] }));
  });

  test('removing the last email via filter leaves emails absent (not [])', () => {
    const r = patch(user({ emails: [{ value: 'w@example.com', type: 'work' }] }), [
      { op: 'remove', path: 'emails[type eq "work"]' },
    ]);
    assert.deepEqual(r.resource, without(user(), 'emails'));
    assert.equal('emails' in r.resource, false);
  });

  test('the RFC example filter emails[type eq "work" and value ew "example.com"]', () => {
    const r = patch(user(), [{ op: 'remove', path: 'emails[type eq "work" and value ew "example.com"]' }]);
    assert.deepEqual(r.resource, user({ emails: [{ value: 'babs@jensen.org', type: 'home' }] }));
  });

  test('a filter matching nothing succeeds with no change', () => {
    const r = patch(user(), [{ op: 'remove', path: 'emails[type eq "other"]' }]);
    assert.deepEqual(r, { resource: user(), changed: false, memberChanges: [] });
  });

  test('addresses[type eq "work"].streetAddress removes only that sub-attribute', () => {
    const r = patch(user(), [{ op: 'remove', path: 'addresses[type eq "work"].streetAddress' }]);
    assert.deepEqual(
      r.resource,
      user({
        addresses: [
          { locality: 'Hollywood', type: 'work' },
          { streetAddress: '456 Hollywood Blvd', locality: 'Hollywood', type: 'home' },
        ],
      }),
    );
  });

  test('name.givenName removes the sub-attribute and keeps the rest; the last one removes name', () => {
    assert.deepEqual(
      patch(user(), [{ op: 'remove', path: 'name.givenName' }]).resource,
      user({ name: { familyName: 'Jensen' } }),
    );
    assert.deepEqual(
      patch(user(), [
        { op: 'remove', path: 'name.givenName' },
        { op: 'remove', path: 'NAME.familyName' },
      ]).resource,
      without(user(), 'name'),
    );
  });

  test('removing an attribute that has no value is no change', () => {
    assert.deepEqual(patch(user(), [{ op: 'remove', path: 'nickName' }]), {
      resource: user(),
      changed: false,
      memberChanges: [],
    });
  });

  test('userName (required) → 400 mutability, input unchanged', () => {
    const u = user();
    rejects(() => patch(u, [{ op: 'remove', path: 'userName' }]), 400, 'mutability');
    assert.deepEqual(u, user());
  });

  test('readOnly targets → 400 mutability (id, meta.created, meta, groups)', () => {
    for (const path of ['id', 'meta.created', 'meta', 'groups']) {
      rejects(() => patch(user(), [{ op: 'remove', path }]), 400, 'mutability');
    }
  });

  test('with a value array and no filter removes only those values (Entra reading, any multi-valued attribute)', () => {
    const r = patch(user(), [{ op: 'remove', path: 'emails', value: [{ value: 'BABS@jensen.org' }] }]);
    assert.deepEqual(
      r.resource,
      user({ emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }] }),
    );
    const none = patch(user(), [{ op: 'remove', path: 'emails', value: [{ value: 'nobody@example.com' }] }]);
    assert.deepEqual(none, { resource: user(), changed: false, memberChanges: [] });
  });

  test('removing an extension attribute that empties the extension drops it from schemas', () => {
    const u = user({
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      [ENTERPRISE_USER_SCHEMA]: { employeeNumber: '701984' },
    });
    const r = patch(u, [{ op: 'remove', path: `${ENTERPRISE_USER_SCHEMA}:employeeNumber` }]);
    assert.deepEqual(r.resource, user());
  });

  test('removing a whole extension by its URN', () => {
    const u = user({
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      [ENTERPRISE_USER_SCHEMA]: { employeeNumber: '701984', department: 'Tour Operations' },
    });
    assert.deepEqual(patch(u, [{ op: 'remove', path: ENTERPRISE_USER_SCHEMA }]).resource, user());
  });
});

describe('PATCH add (RFC 7644 §3.5.2.1)', () => {
  test('without path: emails appended and nickName set (RFC example, "nickname" in other case)', () => {
    const r = patch(user(), [
      { op: 'add', value: { emails: [{ value: 'babs@example.org', type: 'other' }], nickname: 'Babs' } },
    ]);
    assert.deepEqual(
      r.resource,
      user({
        emails: [
          { value: 'bjensen@example.com', type: 'work', primary: true },
          { value: 'babs@jensen.org', type: 'home' },
          { value: 'babs@example.org', type: 'other' },
        ],
        nickName: 'Babs',
      }),
    );
    assert.equal(r.changed, true);
  });

  test('path to multi-valued appends; a single object is accepted as one element', () => {
    const r = patch(user(), [
      { op: 'add', path: 'phoneNumbers', value: { value: '555-555-8377', type: 'work' } },
    ]);
    assert.deepEqual(r.resource, user({ phoneNumbers: [{ value: '555-555-8377', type: 'work' }] }));
  });

  test('adding a value that already exists is no change (also up to case when not caseExact)', () => {
    for (const value of [
      [{ value: 'babs@jensen.org', type: 'home' }],
      [{ value: 'Babs@Jensen.org', type: 'HOME' }],
    ]) {
      assert.deepEqual(patch(user(), [{ op: 'add', path: 'emails', value }]), {
        resource: user(),
        changed: false,
        memberChanges: [],
      });
    }
  });

  test('duplicates inside one value are added once', () => {
    const r = patch(user(), [
      {
        op: 'add',
        path: 'phoneNumbers',
        value: [
          { value: '1', type: 'work' },
          { value: '1', type: 'work' },
        ],
      },
    ]);
    assert.deepEqual(r.resource, user({ phoneNumbers: [{ value: '1', type: 'work' }] }));
  });

  test('path to single-valued replaces; to a missing attribute creates it', () => {
    assert.deepEqual(
      patch(user({ title: 'Guide' }), [{ op: 'add', path: 'title', value: 'Chief' }]).resource,
      user({ title: 'Chief' }),
    );
    assert.deepEqual(
      patch(user(), [{ op: 'add', path: 'nickName', value: 'Babs' }]).resource,
      user({ nickName: 'Babs' }),
    );
  });

  test('path to a complex attribute merges the sub-attributes', () => {
    const r = patch(user(), [{ op: 'add', path: 'name', value: { middleName: 'Jane', givenName: 'Babs' } }]);
    assert.deepEqual(
      r.resource,
      user({ name: { familyName: 'Jensen', givenName: 'Babs', middleName: 'Jane' } }),
    );
  });

  test('adding an enterprise attribute by URN adds the extension URN to schemas', () => {
    const r = patch(user(), [
      { op: 'add', path: `${ENTERPRISE_USER_SCHEMA}:employeeNumber`, value: '701984' },
    ]);
    assert.deepEqual(
      r.resource,
      user({
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        [ENTERPRISE_USER_SCHEMA]: { employeeNumber: '701984' },
      }),
    );
  });

  test('path-less value with an extension URN key holding an object', () => {
    const r = patch(user(), [
      {
        op: 'add',
        value: { [ENTERPRISE_USER_SCHEMA]: { department: 'Tour Operations', costCenter: '4130' } },
      },
    ]);
    assert.deepEqual(
      r.resource,
      user({
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        [ENTERPRISE_USER_SCHEMA]: { department: 'Tour Operations', costCenter: '4130' },
      }),
    );
  });

  test('path naming the whole extension adds its attributes', () => {
    const r = patch(user(), [{ op: 'add', path: ENTERPRISE_USER_SCHEMA, value: { division: 'Theme Park' } }]);
    assert.deepEqual(
      r.resource,
      user({
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        [ENTERPRISE_USER_SCHEMA]: { division: 'Theme Park' },
      }),
    );
  });

  test('filter with no match appends an element made of the eq terms and the value', () => {
    const r = patch(user(), [
      { op: 'add', path: 'phoneNumbers[type eq "work"].value', value: '555-555-5555' },
    ]);
    assert.deepEqual(r.resource, user({ phoneNumbers: [{ value: '555-555-5555', type: 'work' }] }));
  });

  test('filter with a match sets the sub-attribute on it', () => {
    const r = patch(user(), [{ op: 'add', path: 'emails[type eq "home"].display', value: 'Home' }]);
    assert.deepEqual(
      r.resource,
      user({
        emails: [
          { value: 'bjensen@example.com', type: 'work', primary: true },
          { value: 'babs@jensen.org', display: 'Home', type: 'home' },
        ],
      }),
    );
  });

  test('add then remove of the same value ends with the value absent (ops in order)', () => {
    const r = patch(user(), [
      { op: 'add', path: 'emails', value: [{ value: 'temp@example.com', type: 'other' }] },
      { op: 'remove', path: 'emails[value eq "temp@example.com"]' },
    ]);
    assert.deepEqual(r, { resource: user(), changed: false, memberChanges: [] });
    const r2 = patch(user(), [
      { op: 'add', path: 'title', value: 'Boss' },
      { op: 'remove', path: 'title' },
    ]);
    assert.deepEqual(r2, { resource: user(), changed: false, memberChanges: [] });
  });

  test('adding an element with the (value, type) of an existing one updates it instead of listing the pair twice', () => {
    const r = patch(user(), [
      { op: 'add', path: 'emails', value: [{ value: 'babs@jensen.org', type: 'home', primary: true }] },
    ]);
    assert.deepEqual(
      r.resource,
      user({
        emails: [
          { value: 'bjensen@example.com', type: 'work' },
          { value: 'babs@jensen.org', type: 'home', primary: true },
        ],
      }),
    );
    const d = patch(user(), [
      { op: 'add', path: 'emails', value: { value: 'babs@jensen.org', type: 'home', display: 'Babs' } },
    ]);
    assert.deepEqual(
      d.resource,
      user({
        emails: [
          { value: 'bjensen@example.com', type: 'work', primary: true },
          { value: 'babs@jensen.org', display: 'Babs', type: 'home' },
        ],
      }),
    );
    // Same value, other type: a different element.
    const o = patch(user(), [
      { op: 'add', path: 'emails', value: { value: 'babs@jensen.org', type: 'other' } },
    ]);
    assert.equal((o.resource.emails as JsonValue[]).length, 3);
  });

  test('filter with no match that is not made of eq terms → 400 noTarget', () => {
    rejects(
      () => patch(user(), [{ op: 'add', path: 'phoneNumbers[type sw "w"].value', value: '1' }]),
      400,
      'noTarget',
    );
  });

  test('a value filter on a single-valued complex attribute', () => {
    assert.deepEqual(
      patch(user(), [{ op: 'replace', path: 'name[givenName eq "Barbara"].familyName', value: 'J' }])
        .resource,
      user({ name: { familyName: 'J', givenName: 'Barbara' } }),
    );
    assert.deepEqual(
      patch(user(), [{ op: 'remove', path: 'name[givenName eq "Barbara"]' }]).resource,
      without(user(), 'name'),
    );
    assert.equal(patch(user(), [{ op: 'remove', path: 'name[givenName eq "Other"]' }]).changed, false);
    rejects(
      () => patch(user(), [{ op: 'replace', path: 'name[givenName eq "Other"].familyName', value: 'J' }]),
      400,
      'noTarget',
    );
  });

  test('adding [] or {} adds nothing; null unassigns', () => {
    assert.deepEqual(patch(user(), [{ op: 'add', path: 'emails', value: [] }]).resource, user());
    assert.deepEqual(patch(user(), [{ op: 'add', path: 'name', value: {} }]).resource, user());
    assert.deepEqual(
      patch(user(), [{ op: 'add', path: 'name', value: null }]).resource,
      without(user(), 'name'),
    );
  });

  test('wrong types → 400 invalidValue', () => {
    rejects(() => patch(user(), [{ op: 'add', path: 'active', value: 5 }]), 400, 'invalidValue');
    rejects(() => patch(user(), [{ op: 'add', path: 'title', value: ['a'] }]), 400, 'invalidValue');
    rejects(() => patch(user(), [{ op: 'add', path: 'emails', value: [5] }]), 400, 'invalidValue');
    rejects(() => patch(user(), [{ op: 'add', path: 'name', value: 'Babs' }]), 400, 'invalidValue');
  });

  test('unknown attribute in a path → 400 invalidPath', () => {
    rejects(() => patch(user(), [{ op: 'add', path: 'favouriteColour', value: 'red' }]), 400, 'invalidPath');
    rejects(() => patch(user(), [{ op: 'add', value: { favouriteColour: 'red' } }]), 400, 'invalidPath');
  });

  test('path-less value that is not an object → 400 invalidSyntax', () => {
    rejects(() => patch(user(), [{ op: 'add', value: 'x' }]), 400, 'invalidSyntax');
    rejects(() => patch(user(), [{ op: 'replace', value: [{ title: 'x' }] }]), 400, 'invalidSyntax');
  });
});

describe('PATCH replace (RFC 7644 §3.5.2.3)', () => {
  test('emails[type eq "work"].value changes only the work email value', () => {
    const r = patch(user(), [
      { op: 'replace', path: 'emails[type eq "work"].value', value: 'babs@work.example.com' },
    ]);
    assert.deepEqual(
      r.resource,
      user({
        emails: [
          { value: 'babs@work.example.com', type: 'work', primary: true },
          { value: 'babs@jensen.org', type: 'home' },
        ],
      }),
    );
  });

  test('emails[type eq "none"] (no match) → 400 noTarget', () => {
    rejects(
      () => patch(user(), [{ op: 'replace', path: 'emails[type eq "none"]', value: { value: 'x@y' } }]),
      400,
      'noTarget',
    );
    rejects(
      () => patch(user(), [{ op: 'replace', path: 'emails[type eq "none"].value', value: 'x@y' }]),
      400,
      'noTarget',
    );
    rejects(
      () => patch(user(), [{ op: 'replace', path: 'phoneNumbers[type eq "work"]', value: { value: '1' } }]),
      400,
      'noTarget',
    );
  });

  test('name with {"givenName":"X"} updates givenName and keeps familyName', () => {
    const r = patch(user(), [{ op: 'replace', path: 'name', value: { givenName: 'X' } }]);
    assert.deepEqual(r.resource, user({ name: { familyName: 'Jensen', givenName: 'X' } }));
  });

  test('on a missing single-valued attribute adds it', () => {
    const r = patch(user(), [{ op: 'replace', path: 'title', value: 'Tour Guide' }]);
    assert.deepEqual(r.resource, user({ title: 'Tour Guide' }));
  });

  test('multi-valued without filter replaces the whole set', () => {
    const r = patch(user(), [
      { op: 'replace', path: 'emails', value: [{ value: 'only@example.com', type: 'work' }] },
    ]);
    assert.deepEqual(r.resource, user({ emails: [{ value: 'only@example.com', type: 'work' }] }));
  });

  test('multi-valued replaced with [] or null is unassigned', () => {
    assert.deepEqual(
      patch(user(), [{ op: 'replace', path: 'emails', value: [] }]).resource,
      without(user(), 'emails'),
    );
    assert.deepEqual(
      patch(user(), [{ op: 'replace', path: 'emails', value: null }]).resource,
      without(user(), 'emails'),
    );
  });

  test('path-less: multi-valued replaced wholesale, single-valued set (RFC example)', () => {
    const r = patch(user({ nickName: 'B' }), [
      {
        op: 'replace',
        value: {
          emails: [
            { value: 'bjensen@example.com', type: 'work', primary: true },
            { value: 'babs@jensen.org', type: 'home' },
          ],
          nickname: 'Babs',
        },
      },
    ]);
    assert.deepEqual(r.resource, user({ nickName: 'Babs' }));
  });

  test('attr[filter] merges the value into every matching element (given sub-attributes replaced, others kept)', () => {
    const u = user({
      addresses: [
        {
          streetAddress: '100 Universal City Plaza',
          locality: 'Hollywood',
          postalCode: '91608',
          type: 'work',
        },
        { streetAddress: '456 Hollywood Blvd', locality: 'Hollywood', type: 'home', primary: true },
      ],
    });
    const r = patch(u, [
      {
        op: 'replace',
        path: 'addresses[type eq "work"]',
        value: {
          type: 'work',
          streetAddress: '911 Universal City Plaza',
          locality: 'Hollywood',
          region: 'CA',
          country: 'US',
          primary: true,
        },
      },
    ]);
    assert.deepEqual(
      r.resource,
      user({
        addresses: [
          {
            streetAddress: '911 Universal City Plaza',
            locality: 'Hollywood',
            region: 'CA',
            postalCode: '91608',
            country: 'US',
            type: 'work',
            primary: true,
          },
          { streetAddress: '456 Hollywood Blvd', locality: 'Hollywood', type: 'home' },
        ],
      }),
    );
  });

  test('attr[filter].sub sets the sub-attribute on every match', () => {
    const u = user({
      phoneNumbers: [
        { value: '1', type: 'work' },
        { value: '2', type: 'work' },
        { value: '3', type: 'home' },
      ],
    });
    const r = patch(u, [{ op: 'replace', path: 'phoneNumbers[type eq "work"].display', value: 'Office' }]);
    assert.deepEqual(
      r.resource,
      user({
        phoneNumbers: [
          { value: '1', display: 'Office', type: 'work' },
          { value: '2', display: 'Office', type: 'work' },
          { value: '3', type: 'home' },
        ],
      }),
    );
  });

  test('URN path with dots resolves to the enterprise manager attribute', () => {
    const r = patch(user(), [
      {
        op: 'replace',
        path: `${ENTERPRISE_USER_SCHEMA}:manager`,
        value: { value: '26118915-6090-4610-87e4-49d8ca9f808d' },
      },
    ]);
    assert.deepEqual(
      r.resource,
      user({
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        [ENTERPRISE_USER_SCHEMA]: { manager: { value: '26118915-6090-4610-87e4-49d8ca9f808d' } },
      }),
    );
    const sub = patch(r.resource, [
      { op: 'replace', path: `${ENTERPRISE_USER_SCHEMA}:manager.value`, value: 'm2' },
    ]);
    assert.deepEqual(
      sub.resource,
      user({
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        [ENTERPRISE_USER_SCHEMA]: { manager: { value: 'm2' } },
      }),
    );
  });

  test('setting the same value is no change', () => {
    assert.deepEqual(patch(user(), [{ op: 'replace', path: 'userName', value: 'bjensen' }]), {
      resource: user(),
      changed: false,
      memberChanges: [],
    });
    assert.deepEqual(
      patch(user(), [{ op: 'replace', path: 'name', value: { givenName: 'Barbara' } }]).changed,
      false,
    );
  });

  test('null unassigns; userName (required) replaced with null → 400 invalidValue', () => {
    assert.deepEqual(
      patch(user({ title: 'x' }), [{ op: 'replace', path: 'title', value: null }]).resource,
      user(),
    );
    rejects(() => patch(user(), [{ op: 'replace', path: 'userName', value: null }]), 400, 'invalidValue');
    rejects(() => patch(user(), [{ op: 'replace', value: { userName: null } }]), 400, 'invalidValue');
  });

  test('null for a sub-attribute in a complex value unassigns it', () => {
    const r = patch(user(), [
      { op: 'replace', path: 'name', value: { givenName: null, formatted: 'Ms. Jensen' } },
    ]);
    assert.deepEqual(r.resource, user({ name: { formatted: 'Ms. Jensen', familyName: 'Jensen' } }));
  });

  test('id, meta.created, meta, groups → 400 mutability', () => {
    rejects(() => patch(user(), [{ op: 'replace', path: 'id', value: 'x' }]), 400, 'mutability');
    rejects(
      () => patch(user(), [{ op: 'replace', path: 'meta.created', value: '2020-01-01T00:00:00Z' }]),
      400,
      'mutability',
    );
    rejects(
      () => patch(user(), [{ op: 'add', path: 'meta.created', value: '2020-01-01T00:00:00Z' }]),
      400,
      'mutability',
    );
    rejects(
      () => patch(user(), [{ op: 'add', path: 'groups', value: [{ value: 'g1' }] }]),
      400,
      'mutability',
    );
    rejects(() => patch(user(), [{ op: 'replace', value: { id: 'other' } }]), 400, 'mutability');
  });

  test('a readOnly sub-attribute by path → 400 mutability (manager.displayName)', () => {
    rejects(
      () =>
        patch(user(), [
          { op: 'replace', path: `${ENTERPRISE_USER_SCHEMA}:manager.displayName`, value: 'Boss' },
        ]),
      400,
      'mutability',
    );
  });

  test('primary true on one email clears primary on the others', () => {
    const r = patch(user(), [{ op: 'replace', path: 'emails[type eq "home"].primary', value: true }]);
    assert.deepEqual(
      r.resource,
      user({
        emails: [
          { value: 'bjensen@example.com', type: 'work' },
          { value: 'babs@jensen.org', type: 'home', primary: true },
        ],
      }),
    );
    const added = patch(user(), [
      { op: 'add', path: 'emails', value: [{ value: 'new@example.com', primary: true }] },
    ]);
    assert.deepEqual(
      added.resource,
      user({
        emails: [
          { value: 'bjensen@example.com', type: 'work' },
          { value: 'babs@jensen.org', type: 'home' },
          { value: 'new@example.com', primary: true },
        ],
      }),
    );
  });

  test('two primaries in one replaced set → 400 invalidValue', () => {
    rejects(
      () =>
        patch(user(), [
          {
            op: 'replace',
            path: 'emails',
            value: [
              { value: 'a@example.com', primary: true },
              { value: 'b@example.com', primary: true },
            ],
          },
        ]),
      400,
      'invalidValue',
    );
  });

  test('invalid path syntax → 400 invalidPath (or invalidFilter for the filter part)', () => {
    rejects(() => patch(user(), [{ op: 'replace', path: 'emails[type eq', value: 'x' }]), 400, [
      'invalidPath',
      'invalidFilter',
    ]);
    rejects(() => patch(user(), [{ op: 'replace', path: 'emails..value', value: 'x' }]), 400, 'invalidPath');
    rejects(() => patch(user(), [{ op: 'remove', path: 'emails[type zz "work"]' }]), 400, [
      'invalidPath',
      'invalidFilter',
    ]);
  });

  test('booleans: "False" accepted in lenient mode (the default), 400 invalidValue when strict', () => {
    const r = patch(user(), [{ op: 'replace', path: 'active', value: 'False' }]);
    assert.deepEqual(r.resource, user({ active: false }));
    assert.deepEqual(
      patch(user({ active: false }), [{ op: 'replace', path: 'active', value: 'TRUE' }], USER, {
        lenient: true,
      }).resource,
      user(),
    );
    rejects(
      () => patch(user(), [{ op: 'replace', path: 'active', value: 'False' }], USER, { lenient: false }),
      400,
      'invalidValue',
    );
  });
});

describe('PATCH on group members (returned as memberChanges, never applied)', () => {
  const valueSub = findSubAttribute(membersAttr, 'value')!;

  test('add path members appends: memberChanges add, resource untouched', () => {
    const r = patch(
      group(),
      [
        {
          op: 'add',
          path: 'members',
          value: [
            {
              display: 'Babs Jensen',
              $ref: 'https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646',
              value: '2819c223-7f76-453a-919d-413861904646',
            },
          ],
        },
      ],
      GROUP,
    );
    assert.deepEqual(r, {
      resource: group(),
      changed: true,
      memberChanges: [
        {
          kind: 'add',
          values: [
            {
              value: '2819c223-7f76-453a-919d-413861904646',
              $ref: 'https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646',
              display: 'Babs Jensen',
            },
          ],
        },
      ],
    });
  });

  test('duplicate member values within one add are sent once (the store skips existing members)', () => {
    const r = patch(
      group(),
      [
        { op: 'add', path: 'members', value: [{ value: 'u1', type: 'User' }, { value: 'u1' }] },
        { op: 'add', path: 'members', value: { value: 'u2' } },
      ],
      GROUP,
    );
    assert.deepEqual(r.memberChanges, [
      { kind: 'add', values: [{ value: 'u1', type: 'User' }] },
      { kind: 'add', values: [{ value: 'u2' }] },
    ]);
  });

  test('remove members[value eq "x"] → a remove with the bound filter, relative to one member', () => {
    const r = patch(group(), [{ op: 'remove', path: 'members[value eq "2819c223"]' }], GROUP);
    assert.deepEqual(r, {
      resource: group(),
      changed: true,
      memberChanges: [
        {
          kind: 'remove',
          filter: {
            op: 'eq',
            attr: { location: 'core', schema: GROUP_SCHEMA, attribute: membersAttr, sub: valueSub },
            value: '2819c223',
          },
        },
      ],
    });
  });

  test('remove members (no filter, no value) removes all', () => {
    assert.deepEqual(patch(group(), [{ op: 'remove', path: 'members' }], GROUP).memberChanges, [
      { kind: 'remove' },
    ]);
  });

  test('replace members replaces the entire list', () => {
    const r = patch(
      group(),
      [
        {
          op: 'replace',
          path: 'members',
          value: [
            { display: 'Babs Jensen', value: '2819c223' },
            { display: 'James Smith', value: '08e1d05d' },
          ],
        },
      ],
      GROUP,
    );
    assert.deepEqual(r.memberChanges, [
      {
        kind: 'replace',
        values: [
          { value: '2819c223', display: 'Babs Jensen' },
          { value: '08e1d05d', display: 'James Smith' },
        ],
      },
    ]);
  });

  test('path-less add/replace with a "Members" key (any case) is a member change; other keys are applied', () => {
    const r = patch(
      group(),
      [
        { op: 'add', value: { Members: [{ value: 'u1' }], displayName: 'Guides' } },
        { op: 'replace', value: { members: [{ value: 'u2' }] } },
      ],
      GROUP,
    );
    assert.deepEqual(r, {
      resource: group({ displayName: 'Guides' }),
      changed: true,
      memberChanges: [
        { kind: 'add', values: [{ value: 'u1' }] },
        { kind: 'replace', values: [{ value: 'u2' }] },
      ],
    });
  });

  test('member changes keep their order among other operations', () => {
    const r = patch(
      group(),
      [
        { op: 'remove', path: 'members[value eq "u1"]' },
        { op: 'add', path: 'members', value: [{ value: 'u3' }] },
        { op: 'remove', path: 'members' },
      ],
      GROUP,
    );
    assert.deepEqual(
      r.memberChanges.map((c) => c.kind),
      ['remove', 'add', 'remove'],
    );
  });

  test('member sub-attributes are immutable: paths into members → 400 mutability', () => {
    rejects(
      () => patch(group(), [{ op: 'replace', path: 'members[value eq "u1"].display', value: 'X' }], GROUP),
      400,
      'mutability',
    );
    rejects(
      () => patch(group(), [{ op: 'remove', path: 'members[value eq "u1"].display' }], GROUP),
      400,
      'mutability',
    );
    rejects(
      () =>
        patch(group(), [{ op: 'replace', path: 'members[value eq "u1"]', value: { value: 'u2' } }], GROUP),
      400,
      'mutability',
    );
  });

  test('a member without value → 400 invalidValue; add [] or null is no change', () => {
    rejects(
      () => patch(group(), [{ op: 'add', path: 'members', value: [{ display: 'x' }] }], GROUP),
      400,
      'invalidValue',
    );
    assert.deepEqual(patch(group(), [{ op: 'add', path: 'members', value: [] }], GROUP), {
      resource: group(),
      changed: false,
      memberChanges: [],
    });
    assert.deepEqual(patch(group(), [{ op: 'add', path: 'members', value: null }], GROUP).memberChanges, []);
  });

  test('displayName (required on Group) cannot be removed', () => {
    rejects(() => patch(group(), [{ op: 'remove', path: 'displayName' }], GROUP), 400, 'mutability');
  });
});

describe('Entra ID request bodies', () => {
  test('user update: Replace emails[type eq "work"].value and name.familyName', () => {
    const ops = parsePatchRequest({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
        { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
      ],
    });
    const r = applyPatch(registry, USER, user(), ops);
    assert.deepEqual(
      r.resource,
      user({
        name: { familyName: 'updatedFamilyName', givenName: 'Barbara' },
        emails: [
          { value: 'updatedEmail@microsoft.com', type: 'work', primary: true },
          { value: 'babs@jensen.org', type: 'home' },
        ],
      }),
    );
  });

  test('disable user: Replace active "False"', () => {
    const ops = parsePatchRequest({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
    });
    assert.deepEqual(applyPatch(registry, USER, user(), ops).resource, user({ active: false }));
    rejects(() => applyPatch(registry, USER, user(), ops, { lenient: false }), 400, 'invalidValue');
  });

  test('path-less Replace with dotted and URN-prefixed keys and "True"/"False" strings', () => {
    const ops = parsePatchRequest({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        {
          op: 'Replace',
          value: {
            displayName: 'Babs Jensen',
            'name.givenName': 'Babs',
            'name.familyName': 'Jensen-Smith',
            active: 'False',
            'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber': '701984',
            'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department': 'Tour Operations',
          },
        },
      ],
    });
    const r = applyPatch(registry, USER, user(), ops);
    assert.deepEqual(r.resource, {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: '2819c223',
      userName: 'bjensen',
      name: { familyName: 'Jensen-Smith', givenName: 'Babs' },
      displayName: 'Babs Jensen',
      emails: [
        { value: 'bjensen@example.com', type: 'work', primary: true },
        { value: 'babs@jensen.org', type: 'home' },
      ],
      addresses: user().addresses,
      active: false,
      meta: META,
      [ENTERPRISE_USER_SCHEMA]: { employeeNumber: '701984', department: 'Tour Operations' },
    });
  });

  test('manager: Add with a bare id (lenient) or an object', () => {
    for (const value of ['26118915', { value: '26118915' }]) {
      const r = patch(user(), [
        { op: 'Add', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager', value },
      ]);
      assert.deepEqual(
        r.resource,
        user({
          schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
          [ENTERPRISE_USER_SCHEMA]: { manager: { value: '26118915' } },
        }),
      );
    }
    rejects(
      () =>
        patch(user(), [{ op: 'Add', path: `${ENTERPRISE_USER_SCHEMA}:manager`, value: '26118915' }], USER, {
          lenient: false,
        }),
      400,
      'invalidValue',
    );
  });

  test('app role assignment: Add roles with primary "True"', () => {
    const ops = parsePatchRequest({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        {
          op: 'Add',
          path: 'roles',
          value: [{ primary: 'True', type: 'WindowsAzureActiveDirectoryRole', value: 'Admin' }],
        },
      ],
    });
    assert.deepEqual(
      applyPatch(registry, USER, user(), ops).resource,
      user({ roles: [{ value: 'Admin', type: 'WindowsAzureActiveDirectoryRole', primary: true }] }),
    );
  });

  test('manager removal: Remove path manager', () => {
    const u = user({
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      [ENTERPRISE_USER_SCHEMA]: { manager: { value: '26118915' } },
    });
    const r = patch(u, [
      { op: 'Remove', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager' },
    ]);
    assert.deepEqual(r.resource, user());
  });

  test('group: Add members', () => {
    const ops = parsePatchRequest({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'Add', path: 'members', value: [{ value: 'f648f8d5ea4e4cd38e9c' }] }],
    });
    assert.deepEqual(applyPatch(registry, GROUP, group(), ops), {
      resource: group(),
      changed: true,
      memberChanges: [{ kind: 'add', values: [{ value: 'f648f8d5ea4e4cd38e9c' }] }],
    });
  });

  test('group: Remove members with a value array removes only those members, never all', () => {
    const ops = parsePatchRequest({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        { op: 'Remove', path: 'members', value: [{ value: 'f648f8d5ea4e4cd38e9c' }, { value: 'a1b2' }] },
      ],
    });
    for (const lenient of [true, false]) {
      assert.deepEqual(applyPatch(registry, GROUP, group(), ops, { lenient }), {
        resource: group(),
        changed: true,
        memberChanges: [{ kind: 'remove', values: ['f648f8d5ea4e4cd38e9c', 'a1b2'] }],
      });
    }
    // An empty list names nobody: no change, and certainly not "remove all".
    assert.deepEqual(patch(group(), [{ op: 'Remove', path: 'members', value: [] }], GROUP), {
      resource: group(),
      changed: false,
      memberChanges: [],
    });
  });

  test('group: Replace displayName', () => {
    const ops = parsePatchRequest({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        {
          op: 'Replace',
          path: 'displayName',
          value: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName',
        },
      ],
    });
    assert.deepEqual(
      applyPatch(registry, GROUP, group(), ops).resource,
      group({ displayName: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName' }),
    );
  });

  test('group: replace members [] empties the group', () => {
    const r = patch(group(), [{ op: 'replace', path: 'members', value: [] }], GROUP);
    assert.deepEqual(r, {
      resource: group(),
      changed: true,
      memberChanges: [{ kind: 'replace', values: [] }],
    });
  });

  test('Okta-style path-less replace echoing the id: the id is ignored, displayName set', () => {
    const r = patch(group(), [{ op: 'replace', value: { id: 'g1', displayName: 'Test SCIMv2' } }], GROUP);
    assert.deepEqual(r.resource, group({ displayName: 'Test SCIMv2' }));
  });
});

describe('atomicity and change detection', () => {
  test('a failing second operation throws and leaves the input byte-identical', () => {
    const u = user();
    const before = JSON.stringify(u);
    const ops: PatchOperation[] = [
      { op: 'replace', path: 'displayName', value: 'Changed' },
      { op: 'add', path: 'emails', value: [{ value: 'new@example.com' }] },
      { op: 'remove', path: 'userName' },
    ];
    const err = rejects(() => applyPatch(registry, USER, u, ops), 400, 'mutability');
    assert.match(err.message, /^Operations\[2\] \(remove userName\): /);
    assert.equal(JSON.stringify(u), before);
  });

  test('a failing member operation after a member change still throws (no partial memberChanges escape)', () => {
    rejects(
      () =>
        patch(
          group(),
          [
            { op: 'add', path: 'members', value: [{ value: 'u1' }] },
            { op: 'replace', path: 'displayName', value: 5 },
          ],
          GROUP,
        ),
      400,
      'invalidValue',
    );
  });

  test('changed is false when nothing changes', () => {
    const r = patch(user(), [
      { op: 'replace', path: 'active', value: true },
      { op: 'add', path: 'emails', value: [{ value: 'bjensen@example.com', type: 'work', primary: true }] },
      { op: 'remove', path: 'phoneNumbers' },
    ]);
    assert.deepEqual(r, { resource: user(), changed: false, memberChanges: [] });
  });

  test('the result is a copy: mutating it does not touch the input', () => {
    const u = user();
    const r = patch(u, [{ op: 'replace', path: 'title', value: 'x' }]);
    (r.resource.name as JsonObject).givenName = 'Mutated';
    assert.deepEqual(u, user());
  });
});

describe('immutable attributes', () => {
  const device = (extra: JsonObject = {}): JsonObject => ({
    schemas: [DEVICE_SCHEMA],
    id: 'd1',
    displayName: 'Laptop',
    ...extra,
  });
  const run = (resource: JsonObject, ops: JsonValue[]) =>
    patch(resource, ops, DEVICE, undefined, deviceRegistry);

  test('add is allowed while the attribute has no value', () => {
    assert.deepEqual(
      run(device(), [{ op: 'add', path: 'serialNumber', value: 'SN1' }]).resource,
      device({ serialNumber: 'SN1' }),
    );
    assert.deepEqual(
      run(device(), [{ op: 'replace', path: 'serialNumber', value: 'SN1' }]).resource,
      device({ serialNumber: 'SN1' }),
    );
  });

  test('with a value: changing add/replace and remove → 400 mutability; the same value is no change', () => {
    const d = device({ serialNumber: 'SN1' });
    rejects(() => run(d, [{ op: 'add', path: 'serialNumber', value: 'SN2' }]), 400, 'mutability');
    rejects(() => run(d, [{ op: 'replace', path: 'serialNumber', value: 'SN2' }]), 400, 'mutability');
    rejects(() => run(d, [{ op: 'remove', path: 'serialNumber' }]), 400, 'mutability');
    rejects(() => run(d, [{ op: 'replace', path: 'serialNumber', value: null }]), 400, 'mutability');
    assert.deepEqual(run(d, [{ op: 'replace', path: 'serialNumber', value: 'SN1' }]).changed, false);
  });

  test('an immutable sub-attribute may be set once, then not changed', () => {
    const r = run(device({ firmware: { version: '1.0' } }), [
      { op: 'add', path: 'firmware', value: { vendor: 'Acme' } },
    ]);
    assert.deepEqual(r.resource, device({ firmware: { version: '1.0', vendor: 'Acme' } }));
    rejects(
      () => run(r.resource, [{ op: 'replace', path: 'firmware.vendor', value: 'Other' }]),
      400,
      'mutability',
    );
    assert.deepEqual(
      run(r.resource, [{ op: 'replace', path: 'firmware', value: { version: '2.0' } }]).resource,
      device({ firmware: { version: '2.0', vendor: 'Acme' } }),
    );
  });

  test('simple multi-valued attribute: add appends, remove with value removes those', () => {
    const r = run(device({ tags: ['a'] }), [
      { op: 'add', path: 'tags', value: ['b', 'A'] },
      { op: 'remove', path: 'tags', value: ['a'] },
    ]);
    assert.deepEqual(r.resource, device({ tags: ['b'] }));
  });
});
