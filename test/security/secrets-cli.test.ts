/**
 * `scimd secrets status | rotate | new-key` as an operator runs them (real processes, direct mode)
 * on an embedded store folder, or a scratch PostgreSQL database when DATABASE_URL is set: a
 * connection added with key 1 is sealed with key 1; rotate with key 2 current and key 1 previous
 * reseals it; key 1 alone then opens nothing (the command fails with the reason); bad key settings
 * fail as the store opens.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { keyIdOf, parseKey } from '../../src/security/secret-box.ts';
import { PGliteDatabase } from '../../src/store/pglite-engine.ts';
import { cleanEnv, failed, ok, parsed, scimd, scratchDatabase } from '../cli/run.ts';

const TABLES = [
  'sync_connections',
  'event_receivers',
  'upstreams',
  'device_manufacturers',
  'signing_keys',
  'server_secrets',
];

test('scimd secrets: status, rotate (reencrypt), new-key', { timeout: 300_000 }, async () => {
  const scratch = await scratchDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'scimd-secrets-cli-'));
  const data = join(dir, 'data');
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const [id1, id2] = [keyIdOf(k1), keyIdOf(k2)];
  // The data dir is set for PostgreSQL too: no generated key elsewhere joins in.
  const store = scratch ? { DATABASE_URL: scratch.url, SCIMD_DATA_DIR: data } : { SCIMD_DATA_DIR: data };
  const env = (extra: NodeJS.ProcessEnv) => cleanEnv({ ...store, ...extra });
  const withK1 = env({ SCIMD_SECRET_KEY: k1.toString('base64') });
  const token = `crm-token-${randomBytes(8).toString('hex')}`;
  try {
    writeFileSync(join(dir, 'token'), `${token}\n`);
    parsed(
      await scimd(
        [
          'connection',
          'add',
          '--id',
          'crm',
          '--base-url',
          'https://crm.example/scim/v2',
          '--bearer-token-file',
          join(dir, 'token'),
          '--json',
        ],
        withK1,
      ),
    );

    const status = (counts: Record<string, Record<string, number>>) =>
      TABLES.map((table) => ({ table, plaintext: 0, sealed: counts[table] ?? {} }));
    assert.deepEqual(parsed(await scimd(['secrets', 'status', '--json'], withK1)), {
      currentKeyId: id1,
      keyIds: [id1],
      tables: status({ sync_connections: { [id1]: 1 } }),
    });

    // Key 2 current, key 1 still opening: rotate reseals the token.
    const rotating = env({
      SCIMD_SECRET_KEY: k2.toString('hex'),
      SCIMD_SECRET_KEY_PREVIOUS: k1.toString('hex'),
    });
    assert.deepEqual(parsed(await scimd(['secrets', 'rotate', '--json'], rotating)), {
      keyId: id2,
      tables: TABLES.map((table) => ({
        table,
        rows: table === 'sync_connections' ? 1 : 0,
        values: table === 'sync_connections' ? 1 : 0,
      })),
    });
    // The alias; nothing left to do.
    assert.equal(
      ok(await scimd(['secrets', 'reencrypt'], rotating)),
      [
        `resealed with key ${id2}`,
        'TABLE                 ROWS  VALUES',
        'sync_connections      0     0',
        'event_receivers       0     0',
        'upstreams             0     0',
        'device_manufacturers  0     0',
        'signing_keys          0     0',
        'server_secrets        0     0',
        '',
      ].join('\n'),
    );
    const withK2 = env({ SCIMD_SECRET_KEY: k2.toString('base64url') });
    assert.equal(
      ok(await scimd(['secrets', 'status'], withK2)),
      [
        `current key ${id2}`,
        'TABLE                 PLAINTEXT  SEALED',
        `sync_connections      0          ${id2} (current): 1`,
        'event_receivers       0          -',
        'upstreams             0          -',
        'device_manufacturers  0          -',
        'signing_keys          0          -',
        'server_secrets        0          -',
        '',
      ].join('\n'),
    );
    // Key 1 alone opens nothing any more.
    failed(
      await scimd(['secrets', 'rotate'], withK1),
      `The stored credential of connection crm cannot be decrypted with this node's keys (key id ${id2} is not configured: set SCIMD_SECRET_KEY / SCIMD_SECRET_KEY_PREVIOUS, see docs/secrets.md)`,
    );

    // Bad key settings stop the command as the store opens.
    failed(
      await scimd(['secrets', 'status'], env({ SCIMD_SECRET_KEY: 'too-short' })),
      'SCIMD_SECRET_KEY must be 32 bytes written as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)',
    );
    failed(
      await scimd(['secrets', 'status'], env({ SCIMD_SECRET_KEY_FILE: join(dir, 'missing') })),
      `SCIMD_SECRET_KEY_FILE ${join(dir, 'missing')} cannot be read: ENOENT: no such file or directory, open '${join(dir, 'missing')}'`,
    );

    const fresh = parsed<{ key: string }>(await scimd(['secrets', 'new-key', '--json'], cleanEnv()));
    assert.equal(parseKey(fresh.key, 'key').length, 32);
    assert.equal(Buffer.from(fresh.key, 'base64').length, 32);

    // The stored row holds the token sealed with key 2, never in clear.
    let auth: { type: string; token: string };
    if (scratch) {
      const c = new pg.Client({ connectionString: scratch.url });
      await c.connect();
      auth = (await c.query(`SELECT auth FROM sync_connections WHERE id = 'crm'`)).rows[0].auth;
      await c.end();
    } else {
      const db = await PGliteDatabase.open(data);
      auth = (await db.query<{ auth: typeof auth }>(`SELECT auth FROM sync_connections WHERE id = 'crm'`))
        .rows[0].auth;
      await db.close();
    }
    assert.equal(auth.type, 'bearer');
    assert.match(auth.token, new RegExp(`^enc:v1:${id2}:`));
    assert.ok(!auth.token.includes(token));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await scratch?.drop();
  }
});
