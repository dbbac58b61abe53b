/**
 * PATCH from the difference of two states: exact operations for typical changes, and the property
 * that scimd's own PATCH engine, applying the generated operations to the old state, yields the
 * new state (multi-valued attributes compared as sets, as SCIM defines them).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { diffResources, sameValue } from '../../src/client/diff.ts';
import {
  mutabilityMap,
  parseResourceType,
  parseSchema,
  type SchemaInfo,
} from '../../src/client/discovery.ts';
import { expandPathless, splitMemberChanges, valueArrayRemoves } from '../../src/client/compat.ts';
import { resourceTypeDocument, schemaDocument, schemasInUse } from '../../src/http/discovery.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { applyPatch } from '../../src/scim/patch/patch.ts';
import { ENTERPRISE_USER_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import { createCoreRegistry } from '../../src/scim/schema/registry.ts';

const ENT = ENTERPRISE_USER_SCHEMA;
const registry = createCoreRegistry();
const USER = registry.resourceType('User')!;

// The mutability map the client builds from a server's /ResourceTypes and /Schemas documents.
const schemas = new Map<string, SchemaInfo>();
for (const s of schemasInUse(registry)) {
  const info = parseSchema(schemaDocument(s, 'http://x'))!;
  schemas.set(info.id.toLowerCase(), info);
}
const userMutability = mutabilityMap(parseResourceType(resourceTypeDocument(USER, 'http://x'))!, schemas);
const groupMutability = mutabilityMap(
  parseResourceType(resourceTypeDocument(registry.resourceType('Group')!, 'http://x'))!,
  schemas,
);

const META = { resourceType: 'User', location: 'http://x/Users/1', version: 'W/"1"' };

describe('diffResources', () => {
  test('no difference: no operations (readOnly id/meta/schemas and groups ignored)', () => {
    const a = { schemas: [USER_SCHEMA], id: '1', userName: 'a', meta: META, groups: [{ value: 'g1' }] };
    const b = { schemas: [USER_SCHEMA, ENT], id: '2', userName: 'a', meta: { version: 'W/"9"' } };
    assert.deepEqual(diffResources(a, b, { mutability: userMutability }), []);
  });

  test('simple, complex sub-attributes, extension attributes by URN', () => {
    const a: JsonObject = {
      schemas: [USER_SCHEMA, ENT],
      userName: 'bjensen',
      displayName: 'Babs',
      nickName: 'B',
      name: { givenName: 'Barbara', familyName: 'Jensen', formatted: 'Ms. Barbara Jensen' },
      [ENT]: { department: 'Sales', manager: { value: 'm1', displayName: 'Boss' } },
    };
    const b: JsonObject = {
      schemas: [USER_SCHEMA, ENT],
      userName: 'bjensen',
      displayName: 'Barbara',
      title: 'Dr',
      name: { givenName: 'Barbra', familyName: 'Jensen', middleName: 'J' },
      [ENT]: { department: 'Sales', employeeNumber: '42', manager: { value: 'm2' } },
    };
    assert.deepEqual(diffResources(a, b, { mutability: userMutability }), [
      { op: 'replace', path: 'displayName', value: 'Barbara' },
      { op: 'remove', path: 'nickName' },
      { op: 'replace', path: 'name.givenName', value: 'Barbra' },
      { op: 'remove', path: 'name.formatted' },
      { op: 'add', path: 'name.middleName', value: 'J' },
      // manager.displayName is readOnly: never touched although absent from the new state
      { op: 'replace', path: `${ENT}:manager.value`, value: 'm2' },
      { op: 'add', path: `${ENT}:employeeNumber`, value: '42' },
      { op: 'add', path: 'title', value: 'Dr' },
    ]);
  });

  test('members: removals by value filter, additions in one add; derived display/$ref ignored', () => {
    const a: JsonObject = {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: 'G',
      members: [
        { value: 'u1', display: 'One', $ref: 'http://x/Users/u1', type: 'User' },
        { value: 'u2', display: 'Two', $ref: 'http://x/Users/u2', type: 'User' },
        { value: 'u"3', display: 'Three' },
      ],
    };
    const b = {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: 'G',
      members: [{ value: 'u1' }, { value: 'u4' }, { value: 'u5', type: 'User' }],
    };
    const ops = diffResources(a, b, { mutability: groupMutability });
    assert.deepEqual(ops, [
      { op: 'remove', path: 'members[value eq "u2"]' },
      { op: 'remove', path: 'members[value eq "u\\"3"]' },
      { op: 'add', path: 'members', value: [{ value: 'u4' }, { value: 'u5', type: 'User' }] },
    ]);
    // Without server schemas, $ref and display are still treated as server-derived (type is not).
    const b2 = {
      ...b,
      members: [{ value: 'u1', type: 'User' }, { value: 'u4' }, { value: 'u5', type: 'User' }],
    };
    assert.deepEqual(diffResources(a, b2), ops);
    // Entra-style removal for servers without value filters in paths.
    assert.deepEqual(valueArrayRemoves(ops), [
      { op: 'remove', path: 'members', value: [{ value: 'u2' }, { value: 'u"3' }] },
      { op: 'add', path: 'members', value: [{ value: 'u4' }, { value: 'u5', type: 'User' }] },
    ]);
  });

  test('a value whose sub-attributes changed is removed and added again; arrays without value are replaced', () => {
    const a: JsonObject = {
      schemas: [USER_SCHEMA],
      userName: 'a',
      emails: [{ value: 'a@x', type: 'work', primary: true }, { value: 'b@x' }],
      addresses: [{ locality: 'Oslo' }],
    };
    const b = {
      schemas: [USER_SCHEMA],
      userName: 'a',
      emails: [{ value: 'b@x' }, { value: 'a@x', type: 'home' }],
      addresses: [{ locality: 'Bergen' }],
    };
    assert.deepEqual(diffResources(a, b, { mutability: userMutability }), [
      { op: 'remove', path: 'emails[value eq "a@x"]' },
      { op: 'add', path: 'emails', value: [{ value: 'a@x', type: 'home' }] },
      { op: 'replace', path: 'addresses', value: [{ locality: 'Bergen' }] },
    ]);
  });

  test('whole attributes added and removed; attribute names compare case-insensitively', () => {
    const a = {
      schemas: [USER_SCHEMA],
      username: 'a',
      emails: [{ value: 'a@x' }],
      [ENT]: { department: 'D' },
    };
    const b = { schemas: [USER_SCHEMA], userName: 'a', phoneNumbers: [{ value: '+1' }] };
    assert.deepEqual(diffResources(a, b, { mutability: userMutability }), [
      { op: 'remove', path: 'emails' },
      { op: 'remove', path: `${ENT}:department` },
      { op: 'add', path: 'phoneNumbers', value: [{ value: '+1' }] },
    ]);
  });
});

describe('compatibility transforms', () => {
  test('expandPathless: one operation per attribute, extension attributes by URN', () => {
    assert.deepEqual(
      expandPathless([
        { op: 'replace', value: { active: false, name: { givenName: 'X' }, [ENT]: { department: 'D' } } },
        { op: 'remove', path: 'title' },
      ]),
      [
        { op: 'replace', path: 'active', value: false },
        { op: 'replace', path: 'name', value: { givenName: 'X' } },
        { op: 'replace', path: `${ENT}:department`, value: 'D' },
        { op: 'remove', path: 'title' },
      ],
    );
  });

  test('splitMemberChanges: at most N member changes per request, other operations first', () => {
    const add = {
      op: 'add' as const,
      path: 'members',
      value: [1, 2, 3, 4, 5].map((n) => ({ value: `u${n}` })),
    };
    const reqs = splitMemberChanges(
      [
        { op: 'replace', path: 'displayName', value: 'G' },
        { op: 'remove', path: 'members[value eq "r1"]' },
        { op: 'remove', path: 'members[value eq "r2"]' },
        add,
      ],
      2,
    );
    assert.deepEqual(reqs, [
      [
        { op: 'replace', path: 'displayName', value: 'G' },
        { op: 'remove', path: 'members[value eq "r1"]' },
        { op: 'remove', path: 'members[value eq "r2"]' },
      ],
      [{ op: 'add', path: 'members', value: [{ value: 'u1' }, { value: 'u2' }] }],
      [{ op: 'add', path: 'members', value: [{ value: 'u3' }, { value: 'u4' }] }],
      [{ op: 'add', path: 'members', value: [{ value: 'u5' }] }],
    ]);
    // A whole-set replace too big for one request: replace with the first part, then adds.
    assert.deepEqual(splitMemberChanges([{ ...add, op: 'replace' }], 3), [
      [{ op: 'replace', path: 'members', value: [{ value: 'u1' }, { value: 'u2' }, { value: 'u3' }] }],
      [{ op: 'add', path: 'members', value: [{ value: 'u4' }, { value: 'u5' }] }],
    ]);
  });
});

// ---- property ---------------------------------------------------------------------------------

const word = fc.constantFrom('alpha', 'Beta', 'gamma', 'delta', 'x y');
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/** Distinct values from a pool, each with optional type and at most one primary. */
function multi(pool: string[], types: string[]) {
  return fc
    .tuple(
      fc.subarray(pool),
      fc.array(fc.record({ type: opt(fc.constantFrom(...types)) }), {
        minLength: pool.length,
        maxLength: pool.length,
      }),
      fc.integer({ min: -1, max: pool.length - 1 }),
    )
    .map(([values, extras, primary]) =>
      values.map((value, i) => {
        const el: JsonObject = { value };
        if (extras[i].type) el.type = extras[i].type;
        if (i === primary) el.primary = true;
        return el;
      }),
    );
}

const userState = fc
  .record({
    userName: fc.constantFrom('bjensen', 'jsmith'),
    displayName: opt(word),
    nickName: opt(word),
    title: opt(word),
    active: opt(fc.boolean()),
    name: opt(fc.record({ givenName: opt(word), familyName: opt(word), formatted: opt(word) })),
    emails: opt(multi(['a@example.com', 'b@example.com', 'c@example.com'], ['work', 'home'])),
    phoneNumbers: opt(multi(['+1 555 0100', '+1 555 0101'], ['work', 'mobile'])),
    addresses: opt(
      // SCIM multi-valued attributes are sets: no two equal values in a valid state.
      fc.uniqueArray(fc.record({ locality: opt(word), country: opt(fc.constantFrom('NO', 'SE')) }), {
        maxLength: 2,
        selector: (a) => JSON.stringify(a),
      }),
    ),
    ent: opt(
      fc.record({
        employeeNumber: opt(fc.constantFrom('1', '2')),
        department: opt(word),
        manager: opt(fc.record({ value: opt(fc.constantFrom('m1', 'm2')) })),
      }),
    ),
  })
  .map((r) => {
    const u: JsonObject = { schemas: [USER_SCHEMA], id: 'u-1', meta: { ...META } };
    for (const [k, v] of Object.entries(r)) {
      if (v === undefined || k === 'ent') continue;
      u[k] = JSON.parse(JSON.stringify(v)); // drops undefined members
    }
    if (r.ent) {
      u[ENT] = JSON.parse(JSON.stringify(r.ent));
      (u.schemas as string[]).push(ENT);
    }
    return u;
  });

/** What SCIM compares: no server-owned attributes, no unassigned values. */
function comparable(u: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(u)) if (!['id', 'meta', 'schemas'].includes(k)) out[k] = v;
  return out;
}

test('property: scimd PATCH engine(old, diff(old, new)) equals new, for random Users', () => {
  let nonEmpty = 0;
  fc.assert(
    fc.property(userState, userState, (before, after) => {
      const ops = diffResources(before, after, { mutability: userMutability });
      for (const op of ops) assert.ok(op.path, 'every operation has a path');
      if (ops.length === 0) {
        assert.ok(sameValue(comparable(before), comparable(after)), 'no operations only when equal');
        return;
      }
      nonEmpty++;
      // Canonicalise the old state the way the server stores it, then patch.
      const stored = applyPatch(registry, USER, before, [
        { op: 'add', path: 'userName', value: before.userName! },
      ]).resource;
      const result = applyPatch(registry, USER, stored, ops).resource;
      assert.ok(
        sameValue(comparable(result), comparable(after)),
        `ops ${JSON.stringify(ops)}\nresult ${JSON.stringify(comparable(result))}\nwanted ${JSON.stringify(comparable(after))}`,
      );
    }),
    { numRuns: 500 },
  );
  assert.ok(nonEmpty > 100, `only ${nonEmpty} runs had a difference`);
});
