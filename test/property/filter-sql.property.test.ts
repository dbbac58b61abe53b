/**
 * Property: for random Users and random filters, the rows PostgreSQL (PGlite) selects with the
 * compiled SQL are exactly the resources the in-memory evaluator matches.
 *
 * Strings are drawn from a small ASCII alphabet with both cases and the LIKE metacharacters, so
 * case rules, substring operators and ordering are exercised where both sides are defined to
 * agree. Outside ASCII they may not: lower() follows the database's ctype while JavaScript's
 * toLowerCase() is full Unicode, and COLLATE "C" orders by code point while JavaScript's < orders
 * by UTF-16 code unit (they differ between astral characters and U+E000..U+FFFF).
 * dateTimes carry at most millisecond precision, the precision of JavaScript dates.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PGlite } from '@electric-sql/pglite';
import type { AttrPath, CompareOp, Filter, FilterValue } from '../../src/scim/filter/ast.ts';
import { bindFilter } from '../../src/scim/filter/bind.ts';
import { matches } from '../../src/scim/filter/evaluate.ts';
import { formatFilter } from '../../src/scim/filter/parser.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { ENTERPRISE_USER_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import { createCoreRegistry } from '../../src/scim/schema/registry.ts';
import { BASE_SCHEMA } from '../../src/store/schema.sql.ts';
import { compileFilter, SqlParams } from '../../src/store/sql/filter-sql.ts';

const TEST_SCHEMA = 'urn:example:params:scim:schemas:extension:test:2.0:User';
const ENT = ENTERPRISE_USER_SCHEMA;

const registry = createCoreRegistry();
registry.addSchema({
  id: TEST_SCHEMA,
  name: 'Test',
  attributes: [
    { name: 'level', type: 'integer' },
    { name: 'score', type: 'decimal' },
    { name: 'hired', type: 'dateTime' },
    { name: 'tags', type: 'string', multiValued: true },
  ],
});
const coreUser = registry.resourceType('User')!;
registry.addResourceType({
  ...coreUser,
  schemaExtensions: [...coreUser.schemaExtensions, { schema: TEST_SCHEMA, required: false }],
});
const USER = registry.resourceType('User')!;

// ---- values ---------------------------------------------------------------------------------

const str = fc.string({ unit: fc.constantFrom('a', 'A', 'b', 'B', '%', '_', '\\'), maxLength: 3 });
const emailType = fc.constantFrom('work', 'Work', 'home', 'other');
const int = fc.integer({ min: -3, max: 3 });
const decimal = fc.oneof(int, fc.constantFrom(-1.5, 0.1, 0.5, 2.25, 1e-7, 100));
/** The same few instants written in several ways, so eq and the ordering operators both hit. */
const dateTime = fc.constantFrom(
  '2020-01-01T00:00:00Z',
  '2020-01-01T00:00:00.000Z',
  '2020-01-01T01:00:00+01:00',
  '2019-12-31T19:00:00-05:00',
  '2020-01-01T00:00:00',
  '2020-01-01T00:00:00.5Z',
  '2020-01-01T00:00:00.500+00:00',
  '2019-12-31T23:59:59.999Z',
  '2020-01-01T00:00:00.001Z',
  '2021-06-15T12:30:00Z',
);
/** Zoned only: created/lastModified are columns rendered back as instants. */
const zonedDateTime = dateTime.filter((s) => /(Z|[+-]\d\d:\d\d)$/.test(s));

// ---- resources ------------------------------------------------------------------------------

interface Row {
  id: string;
  externalId?: string;
  created: string;
  lastModified: string;
  doc: JsonObject;
}

const docArb = fc.record(
  {
    externalId: str,
    userName: str,
    name: fc.record({ givenName: str, familyName: str }, { requiredKeys: [], noNullPrototype: true }),
    displayName: str,
    active: fc.boolean(),
    emails: fc.array(
      fc.record(
        { value: str, type: emailType, primary: fc.boolean(), display: str },
        { requiredKeys: [], noNullPrototype: true },
      ),
      { maxLength: 3 },
    ),
    [ENT]: fc.record({ employeeNumber: str }, { requiredKeys: [], noNullPrototype: true }),
    [TEST_SCHEMA]: fc.record(
      { level: int, score: decimal, hired: dateTime, tags: fc.array(str, { maxLength: 2 }) },
      { requiredKeys: [], noNullPrototype: true },
    ),
  },
  { requiredKeys: [], noNullPrototype: true },
);

const rowsArb: fc.Arbitrary<Row[]> = fc
  .array(fc.record({ doc: docArb, created: zonedDateTime, lastModified: zonedDateTime }), { maxLength: 6 })
  .map((items) =>
    items.map((item, i) => {
      const doc = JSON.parse(JSON.stringify(item.doc)) as JsonObject;
      const row: Row = { id: `u${i}`, created: item.created, lastModified: item.lastModified, doc };
      if (typeof doc.externalId === 'string') row.externalId = doc.externalId;
      return row;
    }),
  );

function representation(row: Row): JsonObject {
  const rep: JsonObject = {
    schemas: [USER_SCHEMA],
    ...row.doc,
    id: row.id,
    meta: {
      resourceType: 'User',
      created: row.created,
      lastModified: row.lastModified,
      version: 'W/"1"',
      location: `https://example.com/v2/Users/${row.id}`,
    },
  };
  if (row.externalId !== undefined) rep.externalId = row.externalId;
  return rep;
}

// ---- filters --------------------------------------------------------------------------------

const STRING_OPS: CompareOp[] = ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le'];
const ORDER_OPS: CompareOp[] = ['eq', 'ne', 'gt', 'ge', 'lt', 'le'];
const BOOLEAN_OPS: CompareOp[] = ['eq', 'ne'];

interface Leaf {
  path: AttrPath;
  ops: CompareOp[];
  value: fc.Arbitrary<FilterValue>;
}

const TOP_LEAVES: Leaf[] = [
  { path: { attr: 'userName' }, ops: STRING_OPS, value: str },
  { path: { uri: USER_SCHEMA, attr: 'USERNAME' }, ops: STRING_OPS, value: str },
  { path: { attr: 'displayName' }, ops: STRING_OPS, value: str },
  { path: { attr: 'name', subAttr: 'givenName' }, ops: STRING_OPS, value: str },
  { path: { attr: 'emails', subAttr: 'value' }, ops: STRING_OPS, value: str },
  { path: { attr: 'emails' }, ops: STRING_OPS, value: str },
  { path: { attr: 'emails', subAttr: 'type' }, ops: STRING_OPS, value: emailType },
  { path: { attr: 'emails', subAttr: 'primary' }, ops: BOOLEAN_OPS, value: fc.boolean() },
  { path: { attr: 'active' }, ops: BOOLEAN_OPS, value: fc.boolean() },
  { path: { attr: 'externalId' }, ops: STRING_OPS, value: str },
  { path: { attr: 'id' }, ops: STRING_OPS, value: fc.constantFrom('u0', 'U1', 'u2', 'u') },
  { path: { uri: ENT, attr: 'employeeNumber' }, ops: STRING_OPS, value: str },
  { path: { attr: 'employeeNumber' }, ops: STRING_OPS, value: str },
  { path: { attr: 'level' }, ops: ORDER_OPS, value: int },
  { path: { uri: TEST_SCHEMA, attr: 'score' }, ops: ORDER_OPS, value: decimal },
  { path: { attr: 'hired' }, ops: ORDER_OPS, value: dateTime },
  { path: { attr: 'tags' }, ops: STRING_OPS, value: str },
  { path: { attr: 'meta', subAttr: 'created' }, ops: ORDER_OPS, value: dateTime },
  { path: { attr: 'meta', subAttr: 'lastModified' }, ops: ORDER_OPS, value: dateTime },
  {
    path: { attr: 'meta', subAttr: 'resourceType' },
    ops: STRING_OPS,
    value: fc.constantFrom('User', 'user'),
  },
];
const PRESENCE_ONLY: AttrPath[] = [
  { attr: 'name' },
  { attr: 'emails', subAttr: 'display' },
  { attr: 'title' },
  { uri: TEST_SCHEMA, attr: 'tags' },
];
const EMAIL_LEAVES: Leaf[] = [
  { path: { attr: 'value' }, ops: STRING_OPS, value: str },
  { path: { attr: 'type' }, ops: STRING_OPS, value: emailType },
  { path: { attr: 'display' }, ops: STRING_OPS, value: str },
  { path: { attr: 'primary' }, ops: BOOLEAN_OPS, value: fc.boolean() },
];
const NAME_LEAVES: Leaf[] = [
  { path: { attr: 'givenName' }, ops: STRING_OPS, value: str },
  { path: { attr: 'familyName' }, ops: STRING_OPS, value: str },
];

function leafArb(leaves: Leaf[]): fc.Arbitrary<Filter> {
  const compare = fc
    .constantFrom(...leaves)
    .chain((l) =>
      fc
        .record({ op: fc.constantFrom(...l.ops), value: l.value })
        .map(({ op, value }): Filter => ({ op, path: l.path, value })),
    );
  const paths = leaves.map((l) => l.path);
  const presence = fc.constantFrom(...paths).map((path): Filter => ({ op: 'pr', path }));
  const nullCompare = fc
    .record({ op: fc.constantFrom<CompareOp>('eq', 'ne'), path: fc.constantFrom(...paths) })
    .map(({ op, path }): Filter => ({ op, path, value: null }));
  return fc.oneof(
    { weight: 6, arbitrary: compare },
    { weight: 2, arbitrary: presence },
    { weight: 1, arbitrary: nullCompare },
  );
}

function tree(leaf: fc.Arbitrary<Filter>, extra: fc.Arbitrary<Filter>[]): fc.Arbitrary<Filter> {
  return fc.letrec<{ f: Filter }>((tie) => ({
    f: fc.oneof(
      { depthSize: 'small', maxDepth: 3, withCrossShrink: true },
      leaf,
      ...extra,
      fc.record({ op: fc.constantFrom('and' as const, 'or' as const), left: tie('f'), right: tie('f') }),
      fc.record({ op: fc.constant('not' as const), filter: tie('f') }),
    ),
  })).f;
}

const valuePathArb: fc.Arbitrary<Filter> = fc.oneof(
  tree(leafArb(EMAIL_LEAVES), []).map((filter): Filter => ({
    op: 'valuePath',
    path: { attr: 'emails' },
    filter,
  })),
  tree(leafArb(NAME_LEAVES), []).map((filter): Filter => ({
    op: 'valuePath',
    path: { attr: 'name' },
    filter,
  })),
);
const topLeaf = fc.oneof(
  { weight: 8, arbitrary: leafArb(TOP_LEAVES) },
  { weight: 1, arbitrary: fc.constantFrom(...PRESENCE_ONLY).map((path): Filter => ({ op: 'pr', path })) },
);
const filterArb = tree(topLeaf, [valuePathArb]);

// ---- the property ---------------------------------------------------------------------------

let db: PGlite;

before(async () => {
  db = await PGlite.create();
  for (const s of BASE_SCHEMA) await db.query(s);
});

after(async () => {
  await db.close();
});

async function load(rows: Row[]): Promise<void> {
  await db.query(`DELETE FROM resources WHERE tenant_id = 'default'`);
  for (const r of rows) {
    await db.query(
      `INSERT INTO resources (tenant_id, id, resource_type, external_id, version, created, last_modified, doc)
       VALUES ('default', $1, 'User', $2, 1, $3, $4, $5)`,
      [r.id, r.externalId ?? null, r.created, r.lastModified, JSON.stringify(r.doc)],
    );
  }
}

test('property: compiled SQL selects exactly what the in-memory evaluator matches', async () => {
  await fc.assert(
    fc.asyncProperty(rowsArb, fc.array(filterArb, { minLength: 1, maxLength: 4 }), async (rows, filters) => {
      await load(rows);
      for (const filter of filters) {
        const bound = bindFilter(registry, USER, filter);
        const p = new SqlParams();
        const sql = compileFilter(bound, USER, p);
        const res = await db.query<{ id: string }>(
          `SELECT r.id FROM resources r WHERE r.tenant_id = 'default' AND r.resource_type = 'User' AND ${sql} ORDER BY r.id`,
          p.values,
        );
        const got = res.rows.map((r) => r.id);
        const expected = rows
          .filter((r) => matches(representation(r), bound))
          .map((r) => r.id)
          .sort();
        assert.deepEqual(
          got,
          expected,
          `filter: ${formatFilter(filter)}\nSQL: ${sql}\nparams: ${JSON.stringify(p.values)}`,
        );
      }
    }),
    { numRuns: 200 },
  );
});
