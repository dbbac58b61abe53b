/**
 * `scimd secrets`: the secrets scimd stores sealed (docs/secrets.md).
 *   status   per table, how many values are in clear and how many are sealed with each key;
 *   rotate   (alias reencrypt) reseals every stored secret with the current key
 *            (SCIMD_SECRET_KEY), opening older values with SCIMD_SECRET_KEY_PREVIOUS; one
 *            transaction per table;
 *   new-key  prints a fresh random key (base64 of 32 bytes) for SCIMD_SECRET_KEY.
 * Direct mode only: the command opens the store with the key configuration of this process (the
 * embedded store must not be held by a running server).
 */
import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import { secretBoxFor } from '../security/secret-box.ts';
import { resealStoredSecrets, secretStatus } from '../security/stored-secrets.ts';
import type { Database } from '../store/db.ts';
import { openStore } from './context.ts';
import { emit, table } from './output.ts';

interface StoreFlags {
  dataDir?: string;
  databaseUrl?: string;
  json?: boolean;
}

function storeOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print JSON instead of text')
    .addOption(
      new Option('--data-dir <dir>', 'folder of the embedded store (default ./data)').env('SCIMD_DATA_DIR'),
    )
    .addOption(new Option('--database-url <url>', 'PostgreSQL connection string').env('DATABASE_URL'));
}

async function withStore<T>(opts: StoreFlags, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openStore({ databaseUrl: opts.databaseUrl, dataDir: opts.dataDir ?? './data' });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export function registerSecrets(program: Command): void {
  const secrets = program
    .command('secrets')
    .description(
      'stored secrets (connection credentials, event authorizations, signing keys): encryption at rest',
    );

  storeOptions(
    secrets
      .command('status')
      .description('count the stored secrets per table: in clear, and sealed per key id'),
  ).action(async (opts: StoreFlags) => {
    const out = await withStore(opts, async (db) => {
      const box = secretBoxFor(db);
      return { currentKeyId: box.keyId, keyIds: box.keyIds, tables: await secretStatus(db) };
    });
    emit(opts.json, out, () =>
      [
        `current key ${out.currentKeyId}${out.keyIds.length > 1 ? ` (also opens ${out.keyIds.slice(1).join(', ')})` : ''}`,
        table(
          ['TABLE', 'PLAINTEXT', 'SEALED'],
          out.tables.map((t) => [
            t.table,
            String(t.plaintext),
            Object.entries(t.sealed)
              .map(([k, n]) => `${k}${k === out.currentKeyId ? ' (current)' : ''}: ${n}`)
              .join(', ') || '-',
          ]),
        ),
      ].join('\n'),
    );
  });

  storeOptions(
    secrets
      .command('rotate')
      .alias('reencrypt')
      .description(
        'reseal every stored secret with the current key (SCIMD_SECRET_KEY); older values open with SCIMD_SECRET_KEY_PREVIOUS',
      ),
  ).action(async (opts: StoreFlags) => {
    const out = await withStore(opts, async (db) => {
      const box = secretBoxFor(db);
      return { keyId: box.keyId, tables: await resealStoredSecrets(db, box, 'rotate') };
    });
    emit(opts.json, out, () =>
      [
        `resealed with key ${out.keyId}`,
        table(
          ['TABLE', 'ROWS', 'VALUES'],
          out.tables.map((t) => [t.table, String(t.rows), String(t.values)]),
        ),
      ].join('\n'),
    );
  });

  secrets
    .command('new-key')
    .description('print a new random key (base64 of 32 bytes) for SCIMD_SECRET_KEY')
    .option('--json', 'print JSON instead of text')
    .action((opts: { json?: boolean }) => {
      const key = randomBytes(32).toString('base64');
      emit(opts.json, { key }, () => key);
    });
}
