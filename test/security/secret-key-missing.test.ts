/**
 * A stored secret sealed with a key this node does not have (another node's generated key file, a
 * rotated-away key): the admin API answers 503 naming the connection and the key id (never the
 * value), a sync run fails with the same message, views keep working, and startup warns once per
 * unknown key id with the count and the tables. PGlite, and PostgreSQL when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  SecretBox,
  SecretDecryptError,
  SecretKeyMissing,
  secretBoxFor,
} from '../../src/security/secret-box.ts';
import { unopenableSecrets, warnUnopenableSecrets } from '../../src/security/stored-secrets.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const JSON_HEADERS = { 'content-type': 'application/json' };
const TOKEN = 'foreign-token-4711';
/** The key of another node: this node never has it. */
const OTHER = new SecretBox(randomBytes(32));

const detail = (id: string) =>
  `The stored credential of connection ${id} cannot be decrypted with this node's keys (key id ${OTHER.keyId} is not configured: set SCIMD_SECRET_KEY / SCIMD_SECRET_KEY_PREVIOUS, see docs/secrets.md)`;

describe('a stored secret sealed with a key this node does not have', () => {
  let t: TestApp;
  const admin = (method: string, url: string, body?: unknown) =>
    t.request(method, `/admin/v1${url}`, { body, headers: body === undefined ? {} : JSON_HEADERS });

  before(async () => {
    t = await startTestApp({ backgroundWorkers: false });
    const created = await admin('POST', '/tenants/default/connections', {
      id: 'crm',
      baseUrl: 'http://127.0.0.1:9/scim/v2',
      auth: { type: 'bearer', token: 'local-token' },
    });
    assert.equal(created.status, 201, created.text);
    // What another node (with its own key) wrote into the shared database.
    const sealed = OTHER.seal(TOKEN, {
      table: 'sync_connections',
      tenant: 'default',
      row: 'crm',
      field: 'auth.token',
    });
    await t.app.db.query(`UPDATE sync_connections SET auth = $1 WHERE tenant_id = 'default' AND id = 'crm'`, [
      JSON.stringify({ type: 'bearer', token: sealed }),
    ]);
    await t.app.db.query(
      `INSERT INTO sync_flows (tenant_id, id, name, connection_id, direction, mode, resource_types)
       VALUES ('default', 'f', 'f', 'crm', 'push', 'full', ARRAY['User'])`,
    );
  });
  after(async () => {
    await t?.close();
  });

  test('the error is typed, names the key id and the connection, not the value', () => {
    const err = new SecretKeyMissing(OTHER.keyId, {
      table: 'sync_connections',
      tenant: 'default',
      row: 'crm',
      field: 'auth.token',
    });
    assert.ok(err instanceof SecretDecryptError);
    assert.equal(err.name, 'SecretKeyMissing');
    assert.equal(err.keyId, OTHER.keyId);
    assert.equal(err.message, detail('crm'));
  });

  test('the view works; the connection test answers 503 with the clear detail', async () => {
    const view = await admin('GET', '/tenants/default/connections/crm');
    assert.equal(view.status, 200, view.text);
    assert.deepEqual(view.body.auth, { type: 'bearer', tokenSet: true });

    const res = await admin('POST', '/tenants/default/connections/crm/test');
    assert.equal(res.status, 503, res.text);
    assert.equal(res.headers['content-type'], 'application/scim+json; charset=utf-8');
    assert.deepEqual(res.body, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '503',
      detail: detail('crm'),
    });
    assert.ok(!res.text.includes(TOKEN));
    assert.ok(!res.text.includes('enc:v1:'));
  });

  test('a sync run of a flow on that connection answers 503 with the same detail, and no run starts', async () => {
    const run = await admin('POST', '/tenants/default/flows/f/runs', { wait: true });
    assert.equal(run.status, 503, run.text);
    assert.deepEqual(run.body, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '503',
      detail: detail('crm'),
    });
    // The connection is opened before the run takes the flow's lease: nothing is left behind.
    const runs = await t.app.db.query(
      `SELECT id FROM sync_runs WHERE tenant_id = 'default' AND flow_id = 'f'`,
    );
    assert.deepEqual(runs.rows, []);
    const lease = await t.app.db.query(
      `SELECT lease_owner FROM sync_flows WHERE tenant_id = 'default' AND id = 'f'`,
    );
    assert.deepEqual(lease.rows, [{ lease_owner: null }]);
    // The runner itself (CLI `scimd flow run`, scheduled runs) fails with the typed error and its message.
    await assert.rejects(() => t.app.syncRunner.runFlow('default', 'f'), {
      name: 'SecretKeyMissing',
      message: detail('crm'),
    });
  });

  test('the startup check counts the values per unknown key id and warns once per key id', async () => {
    const box = secretBoxFor(t.app.db);
    // A second foreign value, in another table, under the same key; and one under a third key.
    const third = new SecretBox(randomBytes(32));
    await t.app.db.query(
      `INSERT INTO server_secrets (name, secret) VALUES ('foreign-a', $1), ('foreign-b', $2)`,
      [
        OTHER.seal('s1', { table: 'server_secrets', tenant: '', row: 'foreign-a', field: 'secret' }),
        third.seal('s2', { table: 'server_secrets', tenant: '', row: 'foreign-b', field: 'secret' }),
      ],
    );
    try {
      const expected = [
        { keyId: OTHER.keyId, count: 2, tables: { sync_connections: 1, server_secrets: 1 } },
        { keyId: third.keyId, count: 1, tables: { server_secrets: 1 } },
      ].sort((a, b) => a.keyId.localeCompare(b.keyId));
      assert.deepEqual(await unopenableSecrets(t.app.db, box), expected);

      const warnings: { obj: object; msg: string }[] = [];
      const found = await warnUnopenableSecrets(t.app.db, box, {
        warn: (obj, msg) => warnings.push({ obj, msg }),
      });
      assert.deepEqual(found, expected);
      const message = (u: (typeof expected)[number]) =>
        u.count === 2
          ? `2 stored secret values (sync_connections 1, server_secrets 1) are sealed with key id ${u.keyId}, which this node does not have: operations that need them fail until SCIMD_SECRET_KEY / SCIMD_SECRET_KEY_PREVIOUS include that key (see docs/secrets.md)`
          : `1 stored secret value (server_secrets 1) is sealed with key id ${u.keyId}, which this node does not have: operations that need them fail until SCIMD_SECRET_KEY / SCIMD_SECRET_KEY_PREVIOUS include that key (see docs/secrets.md)`;
      assert.deepEqual(
        warnings,
        expected.map((u) => ({ obj: { keyId: u.keyId, count: u.count, tables: u.tables }, msg: message(u) })),
      );
      for (const w of warnings) assert.ok(!JSON.stringify(w).includes('enc:v1:'));
    } finally {
      await t.app.db.query(`DELETE FROM server_secrets WHERE name IN ('foreign-a', 'foreign-b')`);
    }
  });

  test('a node whose keys open every stored value reports nothing', async () => {
    await t.app.db.query(`DELETE FROM sync_flows WHERE tenant_id = 'default' AND id = 'f'`);
    await admin('DELETE', '/tenants/default/connections/crm');
    const warnings: string[] = [];
    assert.deepEqual(
      await warnUnopenableSecrets(t.app.db, secretBoxFor(t.app.db), {
        warn: (_o, msg) => warnings.push(msg),
      }),
      [],
    );
    assert.deepEqual(warnings, []);
  });
});
