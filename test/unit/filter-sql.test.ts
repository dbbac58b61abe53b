/**
 * The SQL filter/sort compiler run on a real embedded PostgreSQL (PGlite): exact result sets for
 * every operator, type, case rule, value path, extension path and membership relation, checked
 * against the in-memory evaluator on the same resources as well.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import { ScimError } from '../../src/scim/errors.ts';
import type { BoundFilter } from '../../src/scim/filter/ast.ts';
import { bindFilter } from '../../src/scim/filter/bind.ts';
import { matches } from '../../src/scim/filter/evaluate.ts';
import { parseFilter, parsePath } from '../../src/scim/filter/parser.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { ENTERPRISE_USER_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import { createCoreRegistry, type ResourceTypeConfig } from '../../src/scim/schema/registry.ts';
import { BASE_SCHEMA } from '../../src/store/schema.sql.ts';
import {
  compileFilter,
  equalityExpression,
  SqlParams,
  uniqueIndexStatements,
} from '../../src/store/sql/filter-sql.ts';
import { compileSort } from '../../src/store/sql/sort-sql.ts';

const TEST_SCHEMA = 'urn:example:params:scim:schemas:extension:test:2.0:User';
const ENT = ENTERPRISE_USER_SCHEMA;

function testRegistry() {
  const registry = createCoreRegistry();
  registry.addSchema({
    id: TEST_SCHEMA,
    name: 'Test',
    attributes: [
      { name: 'level', type: 'integer' },
      { name: 'score', type: 'decimal' },
      { name: 'hired', type: 'dateTime' },
      { name: 'tags', type: 'string', multiValued: true },
      { name: 'badge', type: 'string', caseExact: true, uniqueness: 'global' },
    ],
  });
  const user = registry.resourceType('User')!;
  registry.addResourceType({
    ...user,
    schemaExtensions: [...user.schemaExtensions, { schema: TEST_SCHEMA, required: false }],
  });
  return registry;
}

const registry = testRegistry();
const USER = registry.resourceType('User')!;
const GROUP = registry.resourceType('Group')!;

interface Fixture {
  id: string;
  type: 'User' | 'Group';
  externalId?: string;
  created: string;
  lastModified?: string;
  version: number;
  doc: JsonObject;
  members?: { value: string; type: 'User' | 'Group'; display?: string }[];
}

const users: Fixture[] = [
  {
    id: 'u1',
    type: 'User',
    externalId: 'EXT-1',
    created: '2011-05-13T04:42:34Z',
    version: 1,
    doc: {
      schemas: [USER_SCHEMA, ENT],
      externalId: 'EXT-1',
      userName: 'bjensen',
      name: { givenName: 'Barbara', familyName: 'Jensen' },
      displayName: 'Babs Jensen',
      title: 'Tour Guide',
      active: true,
      emails: [
        { value: 'bjensen@example.com', type: 'work', primary: true },
        { value: 'babs@jensen.org', type: 'home' },
      ],
      x509Certificates: [{ value: 'QUJD' }],
      [ENT]: { employeeNumber: '701984', manager: { value: 'u3', displayName: 'Alice' } },
      [TEST_SCHEMA]: { level: 3, score: 2.5, hired: '2020-01-01T00:00:00Z', tags: ['Alpha', 'beta'] },
    },
  },
  {
    id: 'u2',
    type: 'User',
    externalId: 'ext-1',
    created: '2012-01-01T10:00:00+02:00',
    lastModified: '2013-06-01T00:00:00.500Z',
    version: 12,
    doc: {
      schemas: [USER_SCHEMA, ENT],
      externalId: 'ext-1',
      userName: 'JSmith',
      name: { givenName: 'john' },
      displayName: '100% real_name',
      title: '',
      active: false,
      emails: [{ value: 'JOHN@EXAMPLE.ORG', type: 'work' }],
      [ENT]: { employeeNumber: '42' },
      [TEST_SCHEMA]: { level: 10, score: -1, hired: '2019-12-31T23:00:00-02:00', tags: [] },
    },
  },
  {
    id: 'u3',
    type: 'User',
    created: '2015-03-01T00:00:00Z',
    version: 3,
    doc: {
      schemas: [USER_SCHEMA, ENT],
      userName: 'alice',
      nickName: null,
      title: 'Engineer',
      emails: [
        { value: 'alice@x.com', type: 'home', primary: false },
        { value: 'a2@example.com', type: 'work', primary: true },
      ],
      [ENT]: { employeeNumber: '1', department: '' },
      // A stored value of the wrong JSON type (never written by the store) must never match.
      [TEST_SCHEMA]: { level: '7', hired: '2020-01-01T00:00:00' },
    },
  },
  {
    id: 'u4',
    type: 'User',
    created: '2016-01-01T00:00:00Z',
    version: 4,
    doc: {
      schemas: [USER_SCHEMA],
      userName: 'Zed_user',
      displayName: 'under_score',
      name: {},
      emails: [],
      nickName: '',
      phoneNumbers: [{ value: '' }],
      [TEST_SCHEMA]: { score: 1e2 },
    },
  },
  {
    id: 'u5',
    type: 'User',
    created: '2017-01-01T00:00:00Z',
    version: 5,
    doc: {
      schemas: [USER_SCHEMA],
      userName: 'back\\slash',
      displayName: 'a\\b',
      active: true,
      emails: [{ value: 'x@y.com' }, { value: 'p@q.com', primary: true, display: 'P' }],
    },
  },
];

const groups: Fixture[] = [
  {
    id: 'g1',
    type: 'Group',
    created: '2018-01-01T00:00:00Z',
    version: 1,
    doc: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Admins' },
    members: [
      { value: 'u1', type: 'User', display: 'Babs Jensen' },
      { value: 'u2', type: 'User' },
    ],
  },
  {
    id: 'g2',
    type: 'Group',
    created: '2018-01-02T00:00:00Z',
    version: 1,
    doc: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'staff' },
    members: [
      { value: 'u3', type: 'User', display: 'alice' },
      { value: 'g1', type: 'Group', display: 'Admins' },
    ],
  },
  {
    id: 'g3',
    type: 'Group',
    created: '2018-01-03T00:00:00Z',
    version: 1,
    doc: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Empty' },
  },
];

const all = [...users, ...groups];

/** The full representation a client (and the in-memory evaluator) sees. */
function representation(f: Fixture): JsonObject {
  const rep: JsonObject = {
    ...f.doc,
    id: f.id,
    meta: {
      resourceType: f.type,
      created: f.created,
      lastModified: f.lastModified ?? f.created,
      version: `W/"${f.version}"`,
      location: `https://example.com/v2/${f.type}s/${f.id}`,
    },
  };
  if (f.externalId !== undefined) rep.externalId = f.externalId;
  if (f.members?.length) {
    rep.members = f.members.map((m) => ({
      ...m,
      $ref: `https://example.com/v2/${m.type}s/${m.value}`,
    }));
  }
  if (f.type === 'User') {
    const mine = groups.filter((g) => g.members?.some((m) => m.value === f.id));
    if (mine.length) {
      rep.groups = mine.map((g) => ({
        value: g.id,
        display: g.doc.displayName as string,
        type: 'direct',
        $ref: `https://example.com/v2/Groups/${g.id}`,
      }));
    }
  }
  return rep;
}

let db: PGlite;

before(async () => {
  db = await PGlite.create();
  for (const s of BASE_SCHEMA) await db.query(s);
  for (const f of all) {
    await db.query(
      `INSERT INTO resources (tenant_id, id, resource_type, external_id, version, created, last_modified, doc)
       VALUES ('default', $1, $2, $3, $4, $5, $6, $7)`,
      [
        f.id,
        f.type,
        f.externalId ?? null,
        f.version,
        f.created,
        f.lastModified ?? f.created,
        JSON.stringify(f.doc),
      ],
    );
  }
  for (const g of groups) {
    for (const m of g.members ?? []) {
      await db.query(
        `INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display) VALUES ('default', $1, $2, $3, $4)`,
        [g.id, m.value, m.type, m.display ?? null],
      );
    }
  }
});

after(async () => {
  await db.close();
});

function bind(rt: ResourceTypeConfig, filter: string, lenient = false): BoundFilter {
  return bindFilter(registry, rt, parseFilter(filter, { schemaUris: registry.schemaUris() }), { lenient });
}

async function sqlIds(rt: ResourceTypeConfig, bound: BoundFilter): Promise<string[]> {
  const p = new SqlParams();
  const type = p.add(rt.name);
  const where = compileFilter(bound, rt, p);
  const res = await db.query<{ id: string }>(
    `SELECT r.id FROM resources r WHERE r.tenant_id = 'default' AND r.resource_type = ${type} AND ${where} ORDER BY r.id`,
    p.values,
  );
  return res.rows.map((r) => r.id);
}

/** Ids the filter selects in SQL; asserts the in-memory evaluator selects the same. */
async function ids(filter: string, rt: ResourceTypeConfig = USER, lenient = false): Promise<string[]> {
  const bound = bind(rt, filter, lenient);
  const got = await sqlIds(rt, bound);
  const expected = all
    .filter((f) => f.type === rt.name && matches(representation(f), bound))
    .map((f) => f.id)
    .sort();
  assert.deepEqual(got, expected, `SQL and evaluator disagree on ${filter}`);
  return got;
}

function rejects(fn: () => unknown, scimType: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ScimError, `expected a ScimError, got ${String(e)}`);
    assert.equal(e.status, 400);
    assert.equal(e.scimType, scimType);
    assert.match(e.detail, message);
    return true;
  });
}

describe('compileFilter: strings and case rules', () => {
  test('eq / ne on a caseExact=false attribute ignore case; attribute names are case-insensitive', async () => {
    assert.deepEqual(await ids('userName eq "BJENSEN"'), ['u1']);
    assert.deepEqual(await ids('Username Eq "bjensen"'), ['u1']);
    assert.deepEqual(await ids(`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`), ['u2']);
    assert.deepEqual(await ids('userName ne "bjensen"'), ['u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('userName eq "nobody"'), []);
  });

  test('caseExact=true attributes (id, externalId, meta.resourceType) compare exactly', async () => {
    assert.deepEqual(await ids('externalId eq "EXT-1"'), ['u1']);
    assert.deepEqual(await ids('externalId eq "ext-1"'), ['u2']);
    assert.deepEqual(await ids('externalId ne "EXT-1"'), ['u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('id eq "u3"'), ['u3']);
    assert.deepEqual(await ids('id eq "U3"'), []);
    assert.deepEqual(await ids('meta.resourceType eq "User"'), ['u1', 'u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('meta.resourceType eq "user"'), []);
    assert.deepEqual(await ids('meta.version eq "W/\\"12\\""'), ['u2']);
  });

  test('co / sw / ew, case-insensitively', async () => {
    assert.deepEqual(await ids('userName co "SMI"'), ['u2']);
    assert.deepEqual(await ids('userName sw "j"'), ['u2']);
    assert.deepEqual(await ids('userName ew "USER"'), ['u4']);
    assert.deepEqual(await ids('userName co ""'), ['u1', 'u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('externalId co "xt"'), ['u2']);
  });

  test('LIKE metacharacters and backslashes in the value are literal', async () => {
    assert.deepEqual(await ids('displayName co "%"'), ['u2']);
    assert.deepEqual(await ids('displayName co "_"'), ['u2', 'u4']);
    assert.deepEqual(await ids('displayName co "\\\\"'), ['u5']);
    assert.deepEqual(await ids('userName sw "back\\\\"'), ['u5']);
    assert.deepEqual(await ids('displayName sw "100%"'), ['u2']);
    assert.deepEqual(await ids('displayName ew "_name"'), ['u2']);
    assert.deepEqual(await ids('displayName sw "%"'), []);
    assert.deepEqual(await ids('userName co "%"'), []);
    assert.deepEqual(await ids('userName ew "_"'), []);
  });

  test('gt / ge / lt / le order by code point, after lower-casing when caseExact=false', async () => {
    assert.deepEqual(await ids('userName gt "b"'), ['u1', 'u2', 'u4', 'u5']);
    assert.deepEqual(await ids('userName lt "BJ"'), ['u3', 'u5']);
    assert.deepEqual(await ids('userName le "bjensen"'), ['u1', 'u3', 'u5']);
    assert.deepEqual(await ids('userName ge "ZED_USER"'), ['u4']);
    // Lower case sorts after upper case in code point order (in en_US it would not).
    assert.deepEqual(await ids('externalId gt "Z"'), ['u2']);
    assert.deepEqual(await ids('externalId lt "Z"'), ['u1']);
  });

  test('binary is case-exact', async () => {
    assert.deepEqual(await ids('x509Certificates.value eq "QUJD"'), ['u1']);
    assert.deepEqual(await ids('x509Certificates.value eq "qujd"'), []);
    assert.deepEqual(await ids('x509Certificates.value sw "QU"'), ['u1']);
  });

  test('user values never reach the SQL text', () => {
    const p = new SqlParams();
    const sql = compileFilter(bind(USER, `userName eq "x'); DROP TABLE resources; --"`), USER, p);
    assert.equal(sql.includes('DROP'), false);
    assert.deepEqual(p.values, [`x'); DROP TABLE resources; --`]);
    assert.equal(
      sql,
      `(jsonb_typeof((r.doc -> 'userName')) = 'string' AND (lower((r.doc ->> 'userName')) = lower($1::text)))`,
    );
  });
});

describe('compileFilter: presence', () => {
  test('pr: null, "", [], {} and objects/arrays of no values are not present', async () => {
    assert.deepEqual(await ids('title pr'), ['u1', 'u3']);
    assert.deepEqual(await ids('nickName pr'), []);
    assert.deepEqual(await ids('name pr'), ['u1', 'u2']);
    assert.deepEqual(await ids('emails pr'), ['u1', 'u2', 'u3', 'u5']);
    assert.deepEqual(await ids('phoneNumbers pr'), []);
    assert.deepEqual(await ids('phoneNumbers.value pr'), []);
    assert.deepEqual(await ids('emails.display pr'), ['u5']);
    assert.deepEqual(await ids('name.givenName pr'), ['u1', 'u2']);
    assert.deepEqual(await ids('externalId pr'), ['u1', 'u2']);
    assert.deepEqual(await ids('id pr'), ['u1', 'u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('meta.lastModified pr'), ['u1', 'u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids(`${ENT}:department pr`), []);
    assert.deepEqual(await ids(`${ENT}:manager pr`), ['u1']);
    assert.deepEqual(await ids(`${TEST_SCHEMA}:tags pr`), ['u1']);
  });

  test('eq null is "not present", ne null is "present"', async () => {
    assert.deepEqual(await ids('title eq null'), ['u2', 'u4', 'u5']);
    assert.deepEqual(await ids('title ne null'), ['u1', 'u3']);
    // The compiler handles null itself too, for trees not normalised by the binder.
    const title = registry.findAttribute(USER, { attr: 'title' })!;
    assert.deepEqual(await sqlIds(USER, { op: 'eq', attr: title, value: null }), ['u2', 'u4', 'u5']);
    assert.deepEqual(await sqlIds(USER, { op: 'ne', attr: title, value: null }), ['u1', 'u3']);
  });
});

describe('compileFilter: multi-valued attributes and value paths', () => {
  test('a multi-valued attribute matches when any value does; a bare complex one means .value', async () => {
    assert.deepEqual(await ids('emails.value co "example.org"'), ['u2']);
    assert.deepEqual(await ids('emails co "EXAMPLE.COM"'), ['u1', 'u3']);
    assert.deepEqual(await ids('emails.type eq "home" and emails.value co "example.com"'), ['u1', 'u3']);
    assert.deepEqual(await ids(`${TEST_SCHEMA}:tags eq "ALPHA"`), ['u1']);
    assert.deepEqual(await ids(`${TEST_SCHEMA}:tags co "ET"`), ['u1']);
  });

  test('ne is not-eq: false when any value equals, true when there is none', async () => {
    assert.deepEqual(await ids('emails.value ne "x@y.com"'), ['u1', 'u2', 'u3', 'u4']);
    assert.deepEqual(await ids('not (emails co "Y.")'), ['u1', 'u2', 'u3', 'u4']);
  });

  test('value paths test each element as a whole', async () => {
    assert.deepEqual(await ids('emails[type eq "work" and value co "@example.com"]'), ['u1', 'u3']);
    assert.deepEqual(await ids('emails[type eq "home" and value co "example.com"]'), []);
    assert.deepEqual(await ids('emails[primary eq true]'), ['u1', 'u3', 'u5']);
    assert.deepEqual(await ids('emails[not (primary eq true)]'), ['u1', 'u2', 'u3', 'u5']);
    assert.deepEqual(await ids('emails[display pr or type eq "WORK"]'), ['u1', 'u2', 'u3', 'u5']);
  });

  test('single-valued complex: sub-attribute paths and value paths on the object itself', async () => {
    assert.deepEqual(await ids('name.givenName eq "JOHN"'), ['u2']);
    assert.deepEqual(await ids('name[givenName sw "b"]'), ['u1']);
    assert.deepEqual(await ids('name[not (givenName pr)]'), ['u4']);
    assert.deepEqual(await ids('meta[created lt "2012-01-01T00:00:00Z"]'), ['u1']);
  });
});

describe('compileFilter: extensions, booleans, numbers, dateTimes', () => {
  test('extension attributes under their URN, qualified or not', async () => {
    assert.deepEqual(await ids(`${ENT}:employeeNumber eq "701984"`), ['u1']);
    assert.deepEqual(await ids('employeeNumber gt "5"'), ['u1']);
    assert.deepEqual(await ids(`${ENT}:manager.value eq "U3"`), ['u1']);
    assert.deepEqual(await ids(`${ENT}:manager eq "u3"`), ['u1']);
  });

  test('boolean eq / ne', async () => {
    assert.deepEqual(await ids('active eq true'), ['u1', 'u5']);
    assert.deepEqual(await ids('active eq false'), ['u2']);
    assert.deepEqual(await ids('active ne true'), ['u2', 'u3', 'u4']);
    assert.deepEqual(await ids('active pr'), ['u1', 'u2', 'u5']);
  });

  test('integer / decimal compare numerically; a stored string never matches', async () => {
    assert.deepEqual(await ids('level gt 5'), ['u2']);
    assert.deepEqual(await ids('level ge 3'), ['u1', 'u2']);
    assert.deepEqual(await ids('level eq 7'), []);
    assert.deepEqual(await ids('level ne 3'), ['u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('score le 2.5'), ['u1', 'u2']);
    assert.deepEqual(await ids('score gt 99.5'), ['u4']);
    assert.deepEqual(await ids('score eq 100'), ['u4']);
    assert.deepEqual(await ids('score lt -0.5'), ['u2']);
    assert.deepEqual(await ids('score gt 1e1'), ['u4']);
  });

  test('dateTime compares chronologically, zone-aware; no zone means UTC', async () => {
    assert.deepEqual(await ids('meta.created gt "2011-05-13T04:42:34Z"'), ['u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('meta.created eq "2012-01-01T08:00:00Z"'), ['u2']);
    assert.deepEqual(await ids('meta.created lt "2012-01-01T09:00:00+02:00"'), ['u1']);
    assert.deepEqual(await ids('meta.lastModified ge "2013-06-01T00:00:00.5Z"'), ['u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('meta.lastModified eq "2013-06-01T00:00:00.500Z"'), ['u2']);
    assert.deepEqual(await ids('hired gt "2020-01-01T00:30:00Z"'), ['u2']);
    assert.deepEqual(await ids('hired eq "2020-01-01T00:00:00Z"'), ['u1', 'u3']);
    assert.deepEqual(await ids('hired eq "2020-01-01T02:00:00+02:00"'), ['u1', 'u3']);
    assert.deepEqual(await ids('hired le "2020-01-01T00:00:00"'), ['u1', 'u3']);
  });
});

describe('compileFilter: membership relations', () => {
  test('User.groups from group_members rows', async () => {
    assert.deepEqual(await ids('groups.value eq "g1"'), ['u1', 'u2']);
    assert.deepEqual(await ids('groups eq "G1"'), ['u1', 'u2']);
    assert.deepEqual(await ids('groups.display eq "STAFF"'), ['u3']);
    assert.deepEqual(await ids('groups[value eq "g2" and type eq "direct"]'), ['u3']);
    assert.deepEqual(await ids('groups.type eq "indirect"'), []);
    assert.deepEqual(await ids('groups pr'), ['u1', 'u2', 'u3']);
    assert.deepEqual(await ids('not (groups pr)'), ['u4', 'u5']);
    assert.deepEqual(await ids('groups.value ne "g1"'), ['u3', 'u4', 'u5']);
    assert.deepEqual(await ids('groups[display sw "adm"] and groups[value eq "g1"]'), ['u1', 'u2']);
    // The group's own row is joined only when its displayName is read.
    assert.equal(compileFilter(bind(USER, 'groups pr'), USER, new SqlParams()).includes('JOIN'), false);
    assert.equal(
      compileFilter(bind(USER, 'groups.display pr'), USER, new SqlParams()).includes('JOIN'),
      true,
    );
  });

  test('Group.members from group_members rows', async () => {
    assert.deepEqual(await ids('members.value eq "u1"', GROUP), ['g1']);
    assert.deepEqual(await ids('members[type eq "Group"]', GROUP), ['g2']);
    assert.deepEqual(await ids('members[type eq "User" and display pr]', GROUP), ['g1', 'g2']);
    assert.deepEqual(await ids('members.display co "ALI"', GROUP), ['g2']);
    assert.deepEqual(await ids('members pr', GROUP), ['g1', 'g2']);
    assert.deepEqual(await ids('members.display pr', GROUP), ['g1', 'g2']);
    assert.deepEqual(await ids('members ne "u1"', GROUP), ['g2', 'g3']);
    assert.deepEqual(await ids('displayName eq "STAFF"', GROUP), ['g2']);
    assert.deepEqual(await ids('members.value eq "u1" or members.value eq "u3"', GROUP), ['g1', 'g2']);
  });

  test('$ref and meta.location are not filterable in SQL (invalidFilter)', () => {
    const p = new SqlParams();
    rejects(() => compileFilter(bind(GROUP, 'members.$ref pr'), GROUP, p), 'invalidFilter', /\$ref/);
    rejects(() => compileFilter(bind(USER, 'groups.$ref co "x"'), USER, p), 'invalidFilter', /\$ref/);
    rejects(() => compileFilter(bind(USER, 'meta.location pr'), USER, p), 'invalidFilter', /location/);
    rejects(() => compileFilter(bind(USER, 'meta.location eq "x"'), USER, p), 'invalidFilter', /location/);
  });
});

describe('compileFilter: logic', () => {
  test('and binds tighter than or; not; grouping', async () => {
    assert.deepEqual(await ids('userName eq "alice" or userName eq "JSmith" and active eq true'), ['u3']);
    assert.deepEqual(await ids('(userName eq "alice" or userName eq "JSmith") and active eq false'), ['u2']);
    assert.deepEqual(await ids('not (userName eq "alice")'), ['u1', 'u2', 'u4', 'u5']);
    assert.deepEqual(await ids('not (title co "e")'), ['u2', 'u4', 'u5']);
    assert.deepEqual(await ids('not (not (title co "e"))'), ['u1', 'u3']);
  });

  test('const: attributes the type lacks, in lenient (root) mode', async () => {
    assert.deepEqual(await ids('foo eq "x"', USER, true), []);
    assert.deepEqual(await ids('foo ne "x"', USER, true), ['u1', 'u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await ids('userName pr and foo pr', USER, true), []);
    assert.deepEqual(await ids('members pr', USER, true), []);
    assert.deepEqual(await ids('userName pr', GROUP, true), []);
  });
});

describe('compileSort', () => {
  async function sorted(
    path: string,
    order: 'ASC' | 'DESC',
    rt: ResourceTypeConfig = USER,
  ): Promise<string[]> {
    const attr = registry.requireAttribute(
      rt,
      parsePath(path, { schemaUris: registry.schemaUris() }).path,
      'invalidPath',
    );
    const { expr } = compileSort(attr, rt);
    const nulls = order === 'ASC' ? 'NULLS LAST' : 'NULLS FIRST';
    const res = await db.query<{ id: string }>(
      `SELECT r.id FROM resources r WHERE r.tenant_id = 'default' AND r.resource_type = $1 ORDER BY ${expr} ${order} ${nulls}, r.id`,
      [rt.name],
    );
    return res.rows.map((r) => r.id);
  }

  test('strings: case-insensitive when caseExact=false, absent and "" last ascending / first descending', async () => {
    assert.deepEqual(await sorted('userName', 'ASC'), ['u3', 'u5', 'u1', 'u2', 'u4']);
    assert.deepEqual(await sorted('userName', 'DESC'), ['u4', 'u2', 'u1', 'u5', 'u3']);
    assert.deepEqual(await sorted('title', 'ASC'), ['u3', 'u1', 'u2', 'u4', 'u5']);
    assert.deepEqual(await sorted('title', 'DESC'), ['u2', 'u4', 'u5', 'u1', 'u3']);
    assert.deepEqual(await sorted('name.givenName', 'DESC'), ['u3', 'u4', 'u5', 'u2', 'u1']);
    assert.deepEqual(await sorted('externalId', 'ASC'), ['u1', 'u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await sorted(`${ENT}:employeeNumber`, 'ASC'), ['u3', 'u2', 'u1', 'u4', 'u5']);
    assert.deepEqual(await sorted('displayName', 'ASC', GROUP), ['g1', 'g3', 'g2']);
  });

  test('multi-valued: the primary value, else the first', async () => {
    assert.deepEqual(await sorted('emails.value', 'ASC'), ['u3', 'u1', 'u2', 'u5', 'u4']);
    assert.deepEqual(await sorted('emails', 'DESC'), ['u4', 'u5', 'u2', 'u1', 'u3']);
    assert.deepEqual(await sorted('emails.type', 'ASC'), ['u1', 'u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await sorted(`${TEST_SCHEMA}:tags`, 'DESC'), ['u2', 'u3', 'u4', 'u5', 'u1']);
  });

  test('numbers, booleans and dateTimes by value', async () => {
    assert.deepEqual(await sorted('score', 'DESC'), ['u3', 'u5', 'u4', 'u1', 'u2']);
    assert.deepEqual(await sorted('level', 'ASC'), ['u1', 'u2', 'u3', 'u4', 'u5']);
    assert.deepEqual(await sorted('active', 'ASC'), ['u2', 'u1', 'u5', 'u3', 'u4']);
    assert.deepEqual(await sorted('meta.created', 'DESC'), ['u5', 'u4', 'u3', 'u2', 'u1']);
    assert.deepEqual(await sorted('hired', 'ASC'), ['u1', 'u3', 'u2', 'u4', 'u5']);
  });

  test('kinds, and attributes that cannot be sorted', () => {
    const kind = (path: string, rt: ResourceTypeConfig = USER) =>
      compileSort(registry.requireAttribute(rt, parsePath(path).path, 'invalidPath'), rt).kind;
    assert.equal(kind('userName'), 'text');
    assert.equal(kind('meta.created'), 'timestamp');
    assert.equal(kind('meta.version'), 'text');
    assert.equal(kind('id'), 'text');
    assert.equal(kind('active'), 'boolean');
    assert.equal(kind('level'), 'number');
    assert.equal(kind('emails.primary'), 'boolean');
    const attr = (path: string, rt: ResourceTypeConfig = USER) =>
      registry.requireAttribute(rt, parsePath(path).path, 'invalidPath');
    rejects(() => compileSort(attr('members', GROUP), GROUP), 'invalidValue', /members/);
    rejects(() => compileSort(attr('groups.display'), USER), 'invalidValue', /groups/);
    rejects(() => compileSort(attr('meta.location'), USER), 'invalidValue', /location/);
    rejects(() => compileSort(attr('name'), USER), 'invalidValue', /name/);
  });
});

describe('uniqueIndexStatements / equalityExpression', () => {
  test('one partial unique index per unique single-valued string attribute', () => {
    assert.deepEqual(uniqueIndexStatements(createCoreRegistry()), [
      `CREATE UNIQUE INDEX IF NOT EXISTS "resources_uq_user_username_f714f7c7" ON resources (tenant_id, lower((doc ->> 'userName'))) WHERE resource_type = 'User'`,
    ]);
    const stmts = uniqueIndexStatements(registry);
    assert.equal(stmts.length, 3);
    assert.equal(stmts[0], uniqueIndexStatements(createCoreRegistry())[0]);
    // global: across tenants; caseExact: no lower(); an extension attribute (a User may lack it):
    // only resources with a value are in the index.
    const badge = `((doc -> 'urn:example:params:scim:schemas:extension:test:2.0:User') ->> 'badge')`;
    const created =
      /^CREATE UNIQUE INDEX IF NOT EXISTS "(resources_uq_user_badge_[0-9a-f]{8})" ON resources \((.*)\) WHERE resource_type = 'User' AND (.*) IS NOT NULL$/.exec(
        stmts[1],
      );
    assert.ok(created, stmts[1]);
    assert.deepEqual(created.slice(2), [badge, badge]);
    // It replaces the full index of earlier releases, dropped once the new one exists.
    const dropped = /^DROP INDEX IF EXISTS "(resources_uq_user_badge_[0-9a-f]{8})"$/.exec(stmts[2]);
    assert.ok(dropped, stmts[2]);
    assert.notEqual(dropped[1], created[1]);
  });

  test('equalityExpression is what eq compiles to', () => {
    const userName = registry.findAttribute(USER, { attr: 'userName' })!;
    assert.equal(equalityExpression(userName), `lower((doc ->> 'userName'))`);
    assert.equal(equalityExpression(userName, 'r'), `lower((r.doc ->> 'userName'))`);
    const p = new SqlParams();
    assert.ok(
      compileFilter(bind(USER, 'userName eq "x"'), USER, p).includes(
        `${equalityExpression(userName, 'r')} = `,
      ),
    );
    const ext = registry.findAttribute(USER, { attr: 'externalId' })!;
    assert.equal(equalityExpression(ext, 'r'), 'r.external_id');
  });

  test('the indexes enforce uniqueness and the userName eq plan uses the index', async () => {
    for (const s of uniqueIndexStatements(registry)) await db.query(s);
    // Idempotent, like every schema statement.
    for (const s of uniqueIndexStatements(registry)) await db.query(s);
    await db.query(`INSERT INTO tenants (id, name) VALUES ('bulk', 'Bulk') ON CONFLICT DO NOTHING`);
    await db.query(
      `INSERT INTO resources (tenant_id, id, resource_type, version, created, last_modified, doc)
       SELECT 'bulk', 'b' || i, 'User', 1, now(), now(), jsonb_build_object('userName', 'User' || i)
       FROM generate_series(1, 3000) AS i`,
    );
    await db.query('ANALYZE resources');
    const insertDuplicate = (tenant: string, userName: string) =>
      db.query(
        `INSERT INTO resources (tenant_id, id, resource_type, version, created, last_modified, doc)
         VALUES ($1, 'dup', 'User', 1, now(), now(), $2)`,
        [tenant, JSON.stringify({ userName })],
      );
    await assert.rejects(insertDuplicate('default', 'BJensen'), /duplicate key/);
    await assert.rejects(insertDuplicate('bulk', 'user42'), /duplicate key/);

    const p = new SqlParams();
    const tenant = p.add('bulk');
    const where = compileFilter(bind(USER, 'userName eq "USER42"'), USER, p);
    const sql = `SELECT r.id FROM resources r WHERE r.tenant_id = ${tenant} AND r.resource_type = 'User' AND ${where}`;
    const plan = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, p.values);
    const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
    assert.match(text, /Index Scan using resources_uq_user_username_f714f7c7/);
    assert.deepEqual((await db.query<{ id: string }>(sql, p.values)).rows, [{ id: 'b42' }]);
  });
});
