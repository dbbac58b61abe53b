/**
 * The engine's pure parts: mapping rules (unit and property tests: a dropped attribute never
 * reaches the target) and authority (property: a merge never changes an attribute the target owns,
 * and takes every attribute the source owns).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { JsonObject } from '../../src/scim/json.ts';
import { getPath, sameAttribute } from '../../src/sync/engine/attributes.ts';
import { Authority } from '../../src/sync/engine/authority.ts';
import { applyMapping } from '../../src/sync/engine/mapping.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

const text = fc.string({ minLength: 1, maxLength: 8 });
const userDoc: fc.Arbitrary<JsonObject> = fc
  .record(
    {
      userName: text,
      displayName: text,
      title: text,
      nickName: text,
      name: fc.record({ givenName: text, familyName: text }, { requiredKeys: [] }),
      emails: fc.array(fc.record({ value: text, type: fc.constantFrom('work', 'home') }), { maxLength: 2 }),
      [ENT]: fc.record({ department: text, employeeNumber: text }, { requiredKeys: [] }),
    },
    { requiredKeys: ['userName'] },
  )
  .map((d) => ({ schemas: [USER, ENT], id: 'x', meta: { version: 'W/"1"' }, ...d }) as JsonObject);

const PATHS = [
  'displayName',
  'title',
  'nickName',
  'name.givenName',
  'name',
  'emails',
  `${ENT}:department`,
  ENT,
];

describe('mapping', () => {
  test('rules: rename with transform, transform in place, set, only; id and meta never copied', () => {
    const src: JsonObject = {
      schemas: [USER, ENT],
      id: 'i1',
      meta: { version: 'W/"3"' },
      userName: 'BJensen',
      nickName: '  Babs ',
      emails: [{ value: 'B@X.ORG', type: 'work' }],
      [ENT]: { employeeNumber: '7' },
    };
    assert.deepEqual(
      applyMapping(src, {
        rules: [
          { from: 'nickName', to: 'title', transform: 'trim' },
          { attribute: 'emails', transform: 'lowercase' },
          { from: 'id', to: 'externalId' },
          { set: 'userType', value: 'Partner' },
        ],
      }),
      {
        schemas: [USER, ENT],
        userName: 'BJensen',
        emails: [{ value: 'b@x.org', type: 'work' }],
        [ENT]: { employeeNumber: '7' },
        title: 'Babs',
        externalId: 'i1',
        userType: 'Partner',
      },
    );
    assert.deepEqual(applyMapping(src, { only: ['userName', `${ENT}:employeeNumber`], rules: [] }), {
      schemas: [USER, ENT],
      userName: 'BJensen',
      [ENT]: { employeeNumber: '7' },
    });
    // Dropping the only extension attribute removes the extension and its URN from schemas.
    assert.deepEqual(applyMapping(src, { rules: [{ drop: `${ENT}:employeeNumber` }, { drop: 'emails' }] }), {
      schemas: [USER],
      userName: 'BJensen',
      nickName: '  Babs ',
    });
  });

  test('use case 48 (property): a dropped attribute never reaches the target, whatever other rules say', () => {
    fc.assert(
      fc.property(userDoc, fc.constantFrom(...PATHS), fc.constantFrom(...PATHS), (doc, dropped, other) => {
        const out = applyMapping(doc, {
          rules: [
            { from: other, to: dropped },
            { drop: dropped },
            { set: dropped, value: 'x' },
            { attribute: other, transform: 'sha256' },
          ],
        });
        assert.equal(getPath(out, dropped), undefined);
        assert.equal(getPath(out, 'id'), undefined);
        assert.equal(getPath(out, 'meta'), undefined);
      }),
      { numRuns: 300 },
    );
  });
});

describe('authority', () => {
  test('owner: most specific listed path, else default, else the source', () => {
    const a = new Authority(
      { remote: ['name', `${ENT}:department`], local: ['name.familyName'], initial: ['title'] },
      'push',
    );
    assert.equal(a.owner('name.givenName'), 'remote');
    assert.equal(a.owner('name.familyName'), 'local');
    assert.equal(a.owner(`${ENT}:department`), 'remote');
    assert.equal(a.owner(`${ENT}:employeeNumber`), 'local');
    assert.equal(a.owner('title'), 'initial');
    assert.equal(a.owner('displayName'), 'local');
    assert.equal(new Authority({ default: 'remote', local: ['x'] }, 'push').owner('displayName'), 'remote');
    assert.equal(new Authority(undefined, 'pull').owner('displayName'), 'remote');
    assert.equal(a.writes('title', 'create'), true);
    assert.equal(a.writes('title', 'update'), false);
  });

  test('use cases 40 and 42 (property): a merge keeps every attribute the target owns and takes every one the source owns', () => {
    const remoteOwned = ['title', 'name.givenName', `${ENT}:department`];
    for (const direction of ['push', 'pull'] as const) {
      // The flow's target owns these: for a push the remote, for a pull the local side.
      const authority = new Authority(
        direction === 'push' ? { remote: remoteOwned } : { default: 'remote', local: remoteOwned },
        direction,
      );
      fc.assert(
        fc.property(userDoc, userDoc, (target, source) => {
          const merged = authority.mergeOwned(target, source, 'update');
          // Unassigned values (absent, [], {}) are the same value in SCIM.
          for (const p of remoteOwned) assert.ok(sameAttribute(getPath(merged, p), getPath(target, p)), p);
          for (const p of [
            'userName',
            'displayName',
            'nickName',
            'emails',
            'name.familyName',
            `${ENT}:employeeNumber`,
          ]) {
            assert.ok(sameAttribute(getPath(merged, p), getPath(source, p)), p);
          }
          // pick on create: only what the source owns (no initial listed).
          const picked = authority.pick(source, 'create');
          for (const p of remoteOwned) assert.equal(getPath(picked, p), undefined, p);
        }),
        { numRuns: 200 },
      );
    }
  });
});
