/**
 * Behaviour 37 in process: push flows of a scimd app into an application table through a `sql`
 * connection (src/sync/adapters), configured through the admin API like any connection. The
 * engine is unchanged: it talks SCIM to the adapter. Target tables on an embedded PGlite folder,
 * and on the PostgreSQL server of DATABASE_URL when it is set.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { settleChangeLog } from '../helpers/events.ts';
import { openTarget, TARGET_KINDS, type Target } from './adapter-helpers.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ADMIN = '/admin/v1/tenants/default';

const USERS_TABLE = {
  resourceType: 'User',
  table: 'app_users',
  keyColumn: 'ext_id',
  keyAttribute: 'externalId',
  columns: {
    login: 'userName',
    given: 'name.givenName',
    family: 'name.familyName',
    title: 'title',
    active: 'active',
  },
  documentColumn: 'doc',
};

for (const kind of TARGET_KINDS) {
  describe(`behaviour 37: push flows into a ${kind} table`, () => {
    let t: TestApp;
    let target: Target;
    const ids: Record<string, string> = {};

    const ok = async (method: string, url: string, body?: unknown, status = [200, 201, 204]) => {
      const res = await t.request(method, url, body === undefined ? {} : { body });
      assert.ok(status.includes(res.status), `${method} ${url}: ${res.status} ${res.text}`);
      return res.body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON
    };
    const run = async (flow: string, counts: Record<string, number>) => {
      const r = await t.app.syncRunner.runFlow('default', flow, { trigger: 'manual' });
      assert.equal(r.state, 'succeeded', JSON.stringify(r));
      assert.deepEqual(
        r.counts,
        { created: 0, updated: 0, deleted: 0, skipped: 0, failed: 0, ...counts },
        flow,
      );
    };
    const user = async (userName: string, externalId: string, extra: Record<string, unknown> = {}) => {
      const u = await ok('POST', '/scim/v2/Users', {
        schemas: [USER],
        userName,
        externalId,
        name: { givenName: userName, familyName: `${userName}-family` },
        phoneNumbers: [{ value: '+1 555 0100', type: 'work' }],
        title: 'Staff',
        active: true,
        ...extra,
      });
      ids[userName] = u.id as string;
    };

    before(async () => {
      t = await startTestApp({ backgroundWorkers: false });
      target = await openTarget(kind);
      await target.query(`CREATE TABLE app_users (
        ext_id text PRIMARY KEY, login text NOT NULL, given text, family text, title text, active boolean, doc jsonb)`);
      await target.query(
        `CREATE TABLE app_accounts (id text PRIMARY KEY, login text NOT NULL DEFAULT 'n/a', doc jsonb)`,
      );
    });
    after(async () => {
      await t.close();
      await target.close();
    });

    test('a sql connection through the admin API: the URL is never shown; connection test reads the table', async () => {
      const view = await ok('POST', `${ADMIN}/connections`, {
        id: 'app',
        kind: 'sql',
        sql: { databaseUrl: target.url, tables: [USERS_TABLE] },
      });
      const shown =
        kind === 'pglite' ? target.url : target.url.replace(/^postgres:\/\/[^@]*@/, 'postgres://');
      assert.deepEqual(
        { ...view, created: undefined, updated: undefined },
        {
          tenant: 'default',
          id: 'app',
          name: 'app',
          baseUrl: shown,
          kind: 'sql',
          sql: {
            databaseUrlSet: true,
            tables: [USERS_TABLE],
          },
          auth: { type: 'none' },
          created: undefined,
          updated: undefined,
        },
      );
      const tested = await ok('POST', `${ADMIN}/connections/app/test`);
      assert.equal(typeof tested.elapsedMs, 'number');
      assert.deepEqual(
        { ...tested, elapsedMs: 0 },
        {
          ok: true,
          elapsedMs: 0,
          capabilities: {
            filter: { supported: true, maxResults: 1000 },
            patch: true,
            bulk: { supported: false },
            sort: false,
            etag: false,
            cursor: false,
            changePassword: false,
            maxPageSize: 1000,
          },
          resourceTypes: [{ name: 'User', endpoint: '/Users' }],
          access: { endpoint: '/Users', totalResults: 0 },
        },
      );
      // A second connection naming a table that is not there: the test says so, 200 and ok false.
      await ok('POST', `${ADMIN}/connections`, {
        id: 'broken',
        kind: 'sql',
        sql: { databaseUrl: target.url, tables: [{ ...USERS_TABLE, table: 'no_table' }] },
      });
      const broken = await ok('POST', `${ADMIN}/connections/broken/test`);
      assert.equal(broken.ok, false);
      assert.equal(broken.status, 500);
      assert.match(broken.error as string, /relation "no_table" does not exist/);
      // Refusals name the field.
      const bad = await t.request('POST', `${ADMIN}/connections`, {
        body: {
          id: 'x',
          kind: 'sql',
          baseUrl: 'https://a.example',
          sql: { databaseUrl: target.url, tables: [USERS_TABLE] },
        },
      });
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.body, {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '400',
        scimType: 'invalidValue',
        detail:
          'baseUrl is not for sql connections (the database URL with its credentials goes in sql.databaseUrl)',
      });
      const kindChange = await t.request('PATCH', `${ADMIN}/connections/app`, { body: { kind: 'scim' } });
      assert.equal(kindChange.status, 400);
      assert.equal(kindChange.body && (kindChange.body as { scimType: string }).scimType, 'mutability');
      // A change without databaseUrl keeps the stored one.
      const renamed = await ok('PATCH', `${ADMIN}/connections/broken`, {
        name: 'Broken',
        sql: { tables: [USERS_TABLE] },
      });
      assert.equal(renamed.baseUrl, shown);
      assert.equal((await ok('POST', `${ADMIN}/connections/broken/test`)).ok, true);
      await ok('DELETE', `${ADMIN}/connections/broken`);
    });

    test('full push: creates rows with the mapped attributes only; personal data dropped by the mapping never reaches the table', async () => {
      await user('alice', 'e-1');
      await user('bob', 'e-2');
      await user('carol', 'e-3', { active: false });
      await ok('POST', `${ADMIN}/flows`, {
        id: 'to-app',
        connectionId: 'app',
        direction: 'push',
        mode: 'full',
        resourceTypes: ['User'],
        mapping: { rules: [{ drop: 'phoneNumbers' }, { drop: 'name.familyName' }] },
        authority: { default: 'local', remote: ['title'] },
        matching: { attributes: ['externalId'] },
        onDelete: 'deactivate',
      });
      await run('to-app', { created: 3 });
      const rows = await target.query('SELECT * FROM app_users ORDER BY ext_id');
      const doc = (name: string, active: boolean) => ({
        schemas: [USER],
        externalId: `e-${{ alice: 1, bob: 2, carol: 3 }[name]}`,
        userName: name,
        name: { givenName: name },
        active,
      });
      assert.deepEqual(rows, [
        {
          ext_id: 'e-1',
          login: 'alice',
          given: 'alice',
          family: null,
          title: null,
          active: true,
          doc: doc('alice', true),
        },
        {
          ext_id: 'e-2',
          login: 'bob',
          given: 'bob',
          family: null,
          title: null,
          active: true,
          doc: doc('bob', true),
        },
        {
          ext_id: 'e-3',
          login: 'carol',
          given: 'carol',
          family: null,
          title: null,
          active: false,
          doc: doc('carol', false),
        },
      ]);
      // Unchanged: a second full run compares and writes nothing.
      await run('to-app', { skipped: 3 });
    });

    test('full push: updates only the attributes this node owns (the application keeps its title), onDelete deactivate', async () => {
      await target.query(`UPDATE app_users SET title = 'Chief' WHERE ext_id = 'e-1'`);
      await ok('PATCH', `/scim/v2/Users/${ids.alice}`, {
        schemas: [PATCH],
        Operations: [
          { op: 'replace', path: 'name.givenName', value: 'Alicia' },
          { op: 'replace', path: 'title', value: 'Local title' },
          { op: 'replace', path: 'phoneNumbers', value: [{ value: '+1 555 0199', type: 'home' }] },
        ],
      });
      await ok('DELETE', `/scim/v2/Users/${ids.bob}`);
      await run('to-app', { updated: 1, deleted: 1, skipped: 1 });
      const rows = await target.query<Record<string, unknown>>(
        'SELECT ext_id, login, given, family, title, active FROM app_users ORDER BY ext_id',
      );
      assert.deepEqual(rows, [
        { ext_id: 'e-1', login: 'alice', given: 'Alicia', family: null, title: 'Chief', active: true },
        { ext_id: 'e-2', login: 'bob', given: 'bob', family: null, title: null, active: false },
        { ext_id: 'e-3', login: 'carol', given: 'carol', family: null, title: null, active: false },
      ]);
      const docs = await target.query<{ doc: Record<string, unknown> }>(
        `SELECT doc FROM app_users WHERE ext_id = 'e-1'`,
      );
      assert.deepEqual(docs[0].doc, {
        schemas: [USER],
        externalId: 'e-1',
        userName: 'alice',
        name: { givenName: 'Alicia' },
        active: true,
        title: 'Chief',
      });
    });

    test('changes push into a document-only table with onDelete delete: first run loads, then each change, then the delete', async () => {
      await ok('POST', `${ADMIN}/connections`, {
        id: 'accounts',
        kind: 'sql',
        sql: {
          databaseUrl: target.url,
          tables: [
            {
              resourceType: 'User',
              table: 'app_accounts',
              keyColumn: 'id',
              keyAttribute: 'userName',
              columns: {},
              documentColumn: 'doc',
            },
          ],
        },
      });
      await ok('POST', `${ADMIN}/flows`, {
        id: 'accounts',
        connectionId: 'accounts',
        direction: 'push',
        mode: 'changes',
        resourceTypes: ['User'],
        filter: 'active eq true',
        mapping: { only: ['userName', 'active', 'title'], rules: [] },
        matching: { attributes: ['userName'] },
        onDelete: 'delete',
      });
      await settleChangeLog(t.app);
      await run('accounts', { created: 1 });
      // The key attribute fills the key column only; the unmapped login keeps the table's default.
      assert.deepEqual(await target.query('SELECT id, doc FROM app_accounts ORDER BY id'), [
        { id: 'alice', doc: { schemas: [USER], userName: 'alice', active: true, title: 'Local title' } },
      ]);
      await user('dave', 'e-4');
      await ok('PATCH', `/scim/v2/Users/${ids.alice}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'title', value: 'Lead' }],
      });
      await settleChangeLog(t.app);
      await run('accounts', { created: 1, updated: 1 });
      assert.deepEqual(await target.query('SELECT id, doc FROM app_accounts ORDER BY id'), [
        { id: 'alice', doc: { schemas: [USER], userName: 'alice', active: true, title: 'Lead' } },
        { id: 'dave', doc: { schemas: [USER], userName: 'dave', active: true, title: 'Staff' } },
      ]);
      await ok('DELETE', `/scim/v2/Users/${ids.dave}`);
      await settleChangeLog(t.app);
      await run('accounts', { deleted: 1 });
      assert.deepEqual(await target.query('SELECT id, login FROM app_accounts ORDER BY id'), [
        { id: 'alice', login: 'n/a' },
      ]);
    });
  });
}
