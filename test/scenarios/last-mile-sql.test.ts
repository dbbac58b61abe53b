/**
 * Behaviour 37, last mile into a non-SCIM store: a connector node pulls from P (on demand, and on
 * a schedule) and pushes into an application's SQL table through a `sql` connection
 * (src/sync/adapters). Two real scimd processes; the table is a PGlite folder, or a scratch
 * database on the PostgreSQL server of DATABASE_URL. Configured only through the admin API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openTarget, type Target } from '../sync/adapter-helpers.ts';
import { addClient, addConnection, addFlow, getFlow, ok, runOk, startNode, USER, type Node } from './lib.ts';

describe('last mile into a SQL table', () => {
  let p: Node;
  let connector: Node;
  let target: Target;
  const ids: Record<string, string> = {};

  before(async () => {
    [p, connector] = await Promise.all([startNode('p'), startNode('connector')]);
    target = await openTarget(process.env.DATABASE_URL ? 'postgres' : 'pglite');
    await target.query(`CREATE TABLE app_users (
      ext_id text PRIMARY KEY, login text NOT NULL, display text, title text, active boolean, phone text)`);
  });
  after(async () => {
    await Promise.all([p?.close(), connector?.close()]);
    await target?.close();
  });

  const person = async (userName: string, externalId: string, title: string) => {
    const u = await ok('POST', `${p.scim('default')}/Users`, p.adminToken, {
      schemas: [USER],
      userName,
      externalId,
      displayName: userName.toUpperCase(),
      title,
      active: true,
      phoneNumbers: [{ value: '+1 555 0100', type: 'work' }],
    });
    ids[userName] = u.id as string;
  };
  const rows = () => target.query('SELECT * FROM app_users ORDER BY ext_id');
  const row = (ext: string, login: string, title: string) => ({
    ext_id: ext,
    login,
    display: login.toUpperCase(),
    title,
    active: true,
    phone: null,
  });

  test('behaviour 37: the connector pulls from P (scheduled daily, run here on demand) and writes the application table; updates and deletes follow; the phone never reaches it', async () => {
    const token = await addClient(p, 'default', 'connector', ['scim:read']);
    await person('ann', 'hr-1', 'Engineer');
    await person('ben', 'hr-2', 'Manager');
    await person('cho', 'hr-3', 'Analyst');

    await addConnection(connector, 'default', 'p', p.scim('default'), token);
    await addFlow(connector, 'default', {
      id: 'from-p',
      connectionId: 'p',
      direction: 'pull',
      mode: 'full',
      resourceTypes: ['User'],
      schedule: '0 2 * * *',
    });
    await ok('POST', `${connector.admin('default')}/connections`, connector.adminToken, {
      id: 'app-db',
      kind: 'sql',
      sql: {
        databaseUrl: target.url,
        tables: [
          {
            resourceType: 'User',
            table: 'app_users',
            keyColumn: 'ext_id',
            keyAttribute: 'externalId',
            columns: {
              login: 'userName',
              display: 'displayName',
              title: 'title',
              active: 'active',
              phone: 'phoneNumbers',
            },
          },
        ],
      },
    });
    const tested = await ok(
      'POST',
      `${connector.admin('default')}/connections/app-db/test`,
      connector.adminToken,
    );
    assert.deepEqual(tested.access, { endpoint: '/Users', totalResults: 0 });
    await addFlow(connector, 'default', {
      id: 'to-db',
      connectionId: 'app-db',
      direction: 'push',
      mode: 'full',
      resourceTypes: ['User'],
      mapping: { rules: [{ drop: 'phoneNumbers' }] },
      matching: { attributes: ['externalId'] },
      onDelete: 'delete',
      schedule: '0 2 * * *',
    });
    for (const id of ['from-p', 'to-db']) {
      const f = await getFlow(connector, 'default', id);
      assert.equal(f.schedule, '0 2 * * *');
      assert.match(f.nextRun as string, /T02:00:00\.000Z$/);
    }

    await runOk(connector, 'default', 'from-p', { created: 3 });
    await runOk(connector, 'default', 'to-db', { created: 3 });
    assert.deepEqual(await rows(), [
      row('hr-1', 'ann', 'Engineer'),
      row('hr-2', 'ben', 'Manager'),
      row('hr-3', 'cho', 'Analyst'),
    ]);

    // At P: a title changes, a user leaves, one joins. The next pull and push carry them.
    await ok('PATCH', `${p.scim('default')}/Users/${ids.ann}`, p.adminToken, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'title', value: 'Lead Engineer' }],
    });
    await ok('DELETE', `${p.scim('default')}/Users/${ids.ben}`, p.adminToken);
    await person('dee', 'hr-4', 'Intern');
    await runOk(connector, 'default', 'from-p', { created: 1, updated: 1, deleted: 1 });
    await runOk(connector, 'default', 'to-db', { created: 1, updated: 1, deleted: 1, skipped: 1 });
    assert.deepEqual(await rows(), [
      row('hr-1', 'ann', 'Lead Engineer'),
      row('hr-3', 'cho', 'Analyst'),
      row('hr-4', 'dee', 'Intern'),
    ]);
    // Nothing changed: both runs find nothing to do.
    await runOk(connector, 'default', 'from-p', { skipped: 3 });
    await runOk(connector, 'default', 'to-db', { skipped: 3 });
  });
});
