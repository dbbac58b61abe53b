/**
 * The SQL table adapter (src/sync/adapters): the SCIM client talks to it as to a SCIM server and
 * it reads and writes rows of an application table. On embedded PGlite, and on the PostgreSQL
 * server of DATABASE_URL when it is set (a scratch database, the table created in it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ScimClient } from '../../src/client/client.ts';
import { ScimClientError } from '../../src/client/errors.ts';
import { adapterClient, adapterRegistry } from '../../src/sync/adapters/index.ts';
import { checkSqlConfig, type SqlAdapterConfig } from '../../src/sync/adapters/sql.ts';
import type { Connection } from '../../src/sync/types.ts';
import type { Database } from '../../src/store/db.ts';
import { PostgresDatabase } from '../../src/store/pg-engine.ts';
import { PGliteDatabase } from '../../src/store/pglite-engine.ts';
import { scratchDatabase } from '../helpers/app.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

const TABLES = [
  `CREATE TABLE app_users (
     ext_id text PRIMARY KEY,
     login text NOT NULL UNIQUE,
     given text, family text, active boolean, dept text, emails jsonb,
     doc jsonb)`,
  `CREATE TABLE app_groups (id serial PRIMARY KEY, name text NOT NULL, members jsonb)`,
];

const CONFIG: Omit<SqlAdapterConfig, 'databaseUrl'> = {
  tables: [
    {
      resourceType: 'User',
      table: 'app_users',
      keyColumn: 'ext_id',
      keyAttribute: 'externalId',
      columns: {
        login: 'userName',
        given: 'name.givenName',
        family: 'name.familyName',
        active: 'active',
        dept: `${ENT}:department`,
        emails: 'emails',
      },
      documentColumn: 'doc',
    },
    {
      resourceType: 'Group',
      table: 'app_groups',
      keyColumn: 'id',
      columns: { name: 'displayName', members: 'members' },
    },
  ],
};

const KINDS = process.env.DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

for (const kind of KINDS) {
  describe(`behaviour 37: the SQL table adapter on ${kind}`, () => {
    let db: Database;
    let client: ScimClient;
    let drop: (() => Promise<void>) | undefined;

    const connection = (url: string, sql = CONFIG): Connection => ({
      tenant: 'default',
      id: 'app',
      name: 'app',
      baseUrl: 'x',
      auth: { type: 'none' },
      kind: 'sql',
      sql: { databaseUrl: url, ...sql },
      created: new Date(),
      updated: new Date(),
    });
    const rows = async (table: string, key: string) =>
      (await db.query(`SELECT * FROM ${table} ORDER BY ${key}`)).rows;

    before(async () => {
      if (kind === 'postgres') {
        const scratch = (await scratchDatabase('scimd_target'))!;
        drop = scratch.drop;
        db = await PostgresDatabase.open(scratch.url, 2);
        for (const t of TABLES) await db.query(t);
        // Through the URL, as a connection names it.
        client = adapterClient(connection(scratch.url), { retry: { maxAttempts: 1 } });
      } else {
        db = await PGliteDatabase.open();
        for (const t of TABLES) await db.query(t);
        client = adapterClient(connection('pglite:/unused'), { retry: { maxAttempts: 1 } }, { database: db });
      }
    });
    after(async () => {
      client.close();
      await db.close();
      await drop?.();
    });

    test('discovery: patch and filter, index paging, no ETags, one resource type per table', async () => {
      const d = await client.discover();
      assert.deepEqual(
        d.resourceTypes.map((r) => [r.name, r.endpoint, r.schema]),
        [
          ['User', '/Users', USER],
          ['Group', '/Groups', GROUP],
        ],
      );
      const caps = await client.capabilities();
      assert.equal(caps.patch, true);
      assert.deepEqual(caps.filter, { supported: true, maxResults: 1000 });
      assert.equal(caps.etag, false);
      assert.equal(caps.bulk.supported, false);
      assert.deepEqual(caps.pagination, {
        cursor: false,
        index: true,
        defaultPaginationMethod: undefined,
        defaultPageSize: 100,
        maxPageSize: 1000,
        cursorTimeout: undefined,
      });
      assert.deepEqual([...d.schemas.keys()].sort(), [
        GROUP.toLowerCase(),
        USER.toLowerCase(),
        ENT.toLowerCase(),
      ]);
    });

    test('create: columns and document written, key from externalId; a second create of that key updates the row', async () => {
      const users = client.resources('User');
      const created = await users.create({
        schemas: [USER, ENT],
        externalId: 'e-1',
        userName: 'Alice',
        name: { givenName: 'Alice', familyName: 'Smith' },
        active: true,
        emails: [{ value: 'alice@example.com', type: 'work', primary: true }],
        title: 'Engineer',
        [ENT]: { department: 'R&D' },
      });
      assert.deepEqual(created, {
        schemas: [USER, ENT],
        id: 'e-1',
        externalId: 'e-1',
        userName: 'Alice',
        name: { givenName: 'Alice', familyName: 'Smith' },
        active: true,
        emails: [{ value: 'alice@example.com', type: 'work', primary: true }],
        title: 'Engineer',
        [ENT]: { department: 'R&D' },
        meta: { resourceType: 'User', location: 'sql://adapter/Users/e-1' },
      });
      assert.deepEqual(await rows('app_users', 'ext_id'), [
        {
          ext_id: 'e-1',
          login: 'Alice',
          given: 'Alice',
          family: 'Smith',
          active: true,
          dept: 'R&D',
          emails: [{ value: 'alice@example.com', type: 'work', primary: true }],
          doc: {
            schemas: [USER, ENT],
            externalId: 'e-1',
            userName: 'Alice',
            name: { givenName: 'Alice', familyName: 'Smith' },
            active: true,
            emails: [{ value: 'alice@example.com', type: 'work', primary: true }],
            title: 'Engineer',
            [ENT]: { department: 'R&D' },
          },
        },
      ]);
      // Upsert: the same key again replaces the row, no second one, no 409.
      await users.create({ schemas: [USER], externalId: 'e-1', userName: 'alice', active: false });
      assert.deepEqual(await rows('app_users', 'ext_id'), [
        {
          ext_id: 'e-1',
          login: 'alice',
          given: null,
          family: null,
          active: false,
          dept: null,
          emails: null,
          doc: { schemas: [USER], externalId: 'e-1', userName: 'alice', active: false },
        },
      ]);
    });

    test('values are parameters: quotes and SQL text are stored as they are', async () => {
      const evil = `O'Brien"; DROP TABLE app_users; --`;
      await client.resources('User').create({ schemas: [USER], externalId: 'e-2', userName: evil });
      const r = (await db.query<{ login: string }>(`SELECT login FROM app_users WHERE ext_id = 'e-2'`)).rows;
      assert.deepEqual(r, [{ login: evil }]);
      assert.deepEqual(
        (await client.resources('User').findBy('userName', evil)).map((u) => u.id),
        ['e-2'],
      );
    });

    test('get, findBy (case-insensitive userName, exact externalId) and any filter, evaluated like scimd', async () => {
      const users = client.resources('User');
      await users.create({
        schemas: [USER],
        externalId: 'e-3',
        userName: 'bob',
        active: true,
        title: 'Boss',
      });
      assert.deepEqual(await users.get('e-3'), {
        schemas: [USER],
        id: 'e-3',
        externalId: 'e-3',
        userName: 'bob',
        active: true,
        title: 'Boss',
        meta: { resourceType: 'User', location: 'sql://adapter/Users/e-3' },
      });
      assert.deepEqual(
        (await users.findBy('userName', 'BOB')).map((u) => u.id),
        ['e-3'],
      );
      assert.deepEqual(
        (await users.findBy('externalId', 'E-3')).map((u) => u.id),
        [],
      );
      assert.deepEqual(
        (await users.findBy('externalId', 'e-3')).map((u) => u.id),
        ['e-3'],
      );
      // title is in the document only; the filter is evaluated on the resources.
      const page = await users.list({ filter: 'title eq "boss" and active eq true' });
      assert.deepEqual(
        page.Resources.map((u) => u.id),
        ['e-3'],
      );
      assert.equal(page.totalResults, 1);
      await assert.rejects(
        users.get('nope'),
        (e: unknown) => e instanceof ScimClientError && e.status === 404,
      );
      await assert.rejects(
        users.list({ filter: 'nosuch eq "x"' }),
        (e: unknown) => e instanceof ScimClientError && e.status === 400 && e.scimType === 'invalidFilter',
      );
    });

    test('paging by index over every row, ordered by key', async () => {
      const users = client.resources('User');
      const seen: string[] = [];
      let pages = 0;
      for await (const p of users.pages({ pageSize: 2 })) {
        pages++;
        seen.push(...p.Resources.map((u) => u.id!));
        assert.equal(p.totalResults, 3);
      }
      assert.deepEqual(seen, ['e-1', 'e-2', 'e-3']);
      assert.equal(pages, 2);
    });

    test('PUT replaces (key kept), PATCH applies operations with the PATCH engine, a column edited by the application wins over the document', async () => {
      const users = client.resources('User');
      await users.replace('e-3', {
        schemas: [USER],
        externalId: 'e-3',
        userName: 'bobby',
        name: { givenName: 'Bob' },
      });
      assert.deepEqual(
        (await db.query(`SELECT ext_id, login, given, active, doc FROM app_users WHERE ext_id = 'e-3'`)).rows,
        [
          {
            ext_id: 'e-3',
            login: 'bobby',
            given: 'Bob',
            active: null,
            doc: { schemas: [USER], externalId: 'e-3', userName: 'bobby', name: { givenName: 'Bob' } },
          },
        ],
      );
      const patched = await users.patch('e-3', [
        { op: 'replace', path: 'active', value: false },
        { op: 'add', path: 'emails', value: [{ value: 'bob@example.com', type: 'work' }] },
        { op: 'remove', path: 'name.givenName' },
        { op: 'add', path: `${ENT}:department`, value: 'Ops' },
      ]);
      assert.deepEqual(patched, {
        schemas: [USER, ENT],
        id: 'e-3',
        externalId: 'e-3',
        userName: 'bobby',
        active: false,
        emails: [{ value: 'bob@example.com', type: 'work' }],
        [ENT]: { department: 'Ops' },
        meta: { resourceType: 'User', location: 'sql://adapter/Users/e-3' },
      });
      assert.deepEqual(
        (await db.query(`SELECT login, given, active, dept, emails FROM app_users WHERE ext_id = 'e-3'`))
          .rows,
        [
          {
            login: 'bobby',
            given: null,
            active: false,
            dept: 'Ops',
            emails: [{ value: 'bob@example.com', type: 'work' }],
          },
        ],
      );
      await db.query(`UPDATE app_users SET login = 'robert' WHERE ext_id = 'e-3'`);
      assert.equal((await users.get('e-3')).userName, 'robert');
      await assert.rejects(
        users.patch('nope', [{ op: 'replace', path: 'active', value: true }]),
        (e: unknown) => e instanceof ScimClientError && e.status === 404,
      );
      await assert.rejects(
        users.patch('e-3', [{ op: 'replace', path: 'nosuch', value: true }]),
        (e: unknown) => e instanceof ScimClientError && e.status === 400 && e.scimType === 'invalidPath',
      );
    });

    test('groups: a serial key made by the database, members in a jsonb column', async () => {
      const groups = client.resources('Group');
      const g = await groups.create({ schemas: [GROUP], displayName: 'Staff', members: [{ value: 'e-1' }] });
      assert.match(g.id!, /^\d+$/);
      await groups.patch(g.id!, [{ op: 'add', path: 'members', value: [{ value: 'e-3' }] }]);
      assert.deepEqual(await rows('app_groups', 'id'), [
        { id: Number(g.id), name: 'Staff', members: [{ value: 'e-1' }, { value: 'e-3' }] },
      ]);
      await groups.patch(g.id!, [{ op: 'remove', path: 'members[value eq "e-1"]' }]);
      assert.deepEqual((await groups.get(g.id!)).members, [{ value: 'e-3' }]);
    });

    test('refusals of the table are SCIM errors: unique 409, not null 400, missing table 500 naming it', async () => {
      const users = client.resources('User');
      await assert.rejects(
        users.create({ schemas: [USER], externalId: 'e-9', userName: 'alice' }),
        (e: unknown) => e instanceof ScimClientError && e.status === 409 && e.scimType === 'uniqueness',
      );
      await assert.rejects(
        users.create({ schemas: [USER], externalId: 'e-9' }),
        (e: unknown) =>
          e instanceof ScimClientError &&
          e.status === 400 &&
          e.scimType === 'invalidValue' &&
          /login/.test(e.detail ?? ''),
      );
      await assert.rejects(
        users.create({ schemas: [USER], userName: 'nokey' }),
        (e: unknown) =>
          e instanceof ScimClientError &&
          e.status === 400 &&
          e.detail === 'app_users: the key attribute externalId has no value',
      );
      const missing = adapterClient(
        connection(kind === 'postgres' ? 'postgres://unused/x' : 'pglite:/unused', {
          tables: [
            { resourceType: 'User', table: 'no_such_table', keyColumn: 'id', columns: { u: 'userName' } },
          ],
        }),
        { retry: { maxAttempts: 1 } },
        { database: db },
      );
      await assert.rejects(
        missing.resources('User').list({ count: 1 }),
        (e: unknown) =>
          e instanceof ScimClientError && e.status === 500 && /no_such_table/.test(e.detail ?? ''),
      );
      missing.close();
      assert.deepEqual(
        (await db.query(`SELECT ext_id FROM app_users ORDER BY ext_id`)).rows.map((r) => r.ext_id),
        ['e-1', 'e-2', 'e-3'],
      );
    });

    test('DELETE removes the row; a second DELETE is 404', async () => {
      const users = client.resources('User');
      await users.delete('e-2');
      await assert.rejects(
        users.delete('e-2'),
        (e: unknown) => e instanceof ScimClientError && e.status === 404,
      );
      assert.deepEqual(
        (await db.query(`SELECT ext_id FROM app_users ORDER BY ext_id`)).rows.map((r) => r.ext_id),
        ['e-1', 'e-3'],
      );
    });
  });
}

describe('behaviour 37: SQL adapter settings are checked', () => {
  const registry = adapterRegistry();
  const base = { databaseUrl: 'postgres://u:p@db.example/app' };
  const table = { resourceType: 'User', table: 'users', keyColumn: 'id', columns: { login: 'userName' } };
  const refused = (sql: unknown, detail: string) =>
    assert.throws(
      () => checkSqlConfig(registry, sql),
      (e: unknown) =>
        (e as { status: number; detail: string }).status === 400 &&
        (e as { detail: string }).detail === detail,
    );

  test('identifiers: letters, digits and _ only; schema.table allowed', () => {
    assert.deepEqual(
      checkSqlConfig(registry, { ...base, tables: [{ ...table, table: 'app.users' }] }).tables[0].table,
      'app.users',
    );
    refused(
      { ...base, tables: [{ ...table, table: 'users; DROP TABLE x' }] },
      'sql.tables[0].table must be a table name or schema.table, each of letters, digits and _ (not starting with a digit, at most 63); got "users; DROP TABLE x"',
    );
    refused(
      { ...base, tables: [{ ...table, keyColumn: 'id"' }] },
      'sql.tables[0].keyColumn must be a column name of letters, digits and _ (not starting with a digit, at most 63); got "id""',
    );
    refused(
      { ...base, tables: [{ ...table, columns: { 'a b': 'userName' } }] },
      'sql.tables[0].columns key "a b" must be a column name of letters, digits and _ (not starting with a digit, at most 63); got "a b"',
    );
  });

  test('attribute paths resolved on the resource type, canonical spelling kept', () => {
    const c = checkSqlConfig(registry, {
      ...base,
      tables: [
        { ...table, keyAttribute: 'EXTERNALID', columns: { g: 'NAME.givenname', d: `${ENT}:Department` } },
      ],
    });
    assert.deepEqual(c.tables[0], {
      resourceType: 'User',
      table: 'users',
      keyColumn: 'id',
      keyAttribute: 'externalId',
      columns: { g: 'name.givenName', d: `${ENT}:department` },
    });
    refused(
      { ...base, tables: [{ ...table, columns: { x: 'nosuch' } }] },
      'sql.tables[0].columns.x: User has no attribute "nosuch"',
    );
    refused(
      { ...base, tables: [{ ...table, columns: { x: 'emails.value' } }] },
      'sql.tables[0].columns.x: "emails.value" is a sub-attribute of the multi-valued emails; map the whole attribute (a json column)',
    );
    refused(
      { ...base, tables: [{ ...table, columns: { x: 'emails[type eq "work"].value' } }] },
      'sql.tables[0].columns.x must be an attribute path without a value filter; got "emails[type eq "work"].value"',
    );
    refused(
      { ...base, tables: [{ ...table, columns: { id: 'userName' } }] },
      'sql.tables[0].columns: "id" is used twice (the key column is filled from keyAttribute, not from columns)',
    );
    refused(
      { ...base, tables: [{ ...table, resourceType: 'Widget' }] },
      'sql.tables[0].resourceType: no resource type Widget',
    );
    refused(
      { ...base, tables: [table, table] },
      'sql.tables[1].resourceType: User has another table already',
    );
    refused(
      { ...base, tables: [{ ...table, columns: {} }] },
      'sql.tables[0] needs columns or a documentColumn (nothing would be stored)',
    );
  });

  test('database URLs: postgres or an absolute pglite folder', () => {
    refused(
      { databaseUrl: 'mysql://db/app', tables: [table] },
      'sql.databaseUrl must be a postgres:// (or postgresql://) URL or pglite:/absolute/folder',
    );
    refused(
      { databaseUrl: 'pglite:relative', tables: [table] },
      'sql.databaseUrl: a pglite URL names an absolute folder, e.g. pglite:/var/lib/app/db',
    );
    refused({ tables: [table] }, 'sql.databaseUrl is required');
    refused({ ...base, tables: [] }, 'sql.tables must be an array of 1 to 20 tables');
    refused(
      { ...base, tables: [table], extra: 1 },
      'sql.extra is not an allowed property (allowed: databaseUrl, tables)',
    );
  });
});
