/**
 * Opens the configured database and brings its schema up to date. Migrations run at every start
 * and are idempotent; on a PostgreSQL server an advisory lock keeps nodes starting together from
 * running them at the same time.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SchemaRegistry } from '../scim/schema/registry.ts';
import type { Database } from './db.ts';
import { PostgresDatabase } from './pg-engine.ts';
import { PGliteDatabase } from './pglite-engine.ts';
import { ASYNC_REQUESTS_SCHEMA } from '../async/schema.sql.ts';
import { INBOUND_EVENTS_SCHEMA } from '../events/inbound/schema.sql.ts';
import { OUTBOUND_EVENTS_SCHEMA } from '../events/outbound/schema.sql.ts';
import { SYNC_SCHEMA } from '../sync/schema.sql.ts';
import { REGISTRATION_SCHEMA } from '../sync/registration-schema.sql.ts';
import { BASE_SCHEMA } from './schema.sql.ts';
import { uniqueIndexStatements } from './sql/filter-sql.ts';
import { loadSecretBox, registerSecretBox } from '../security/secret-box.ts';
import { resealStoredSecrets } from '../security/stored-secrets.ts';

export interface StoreOptions {
  databaseUrl?: string;
  dataDir?: string;
  memory?: boolean;
}

const MIGRATION_LOCK = 7_211_991; // arbitrary, constant: the advisory lock id of scimd migrations

export async function openDatabase(opts: StoreOptions, registry: SchemaRegistry): Promise<Database> {
  let db: Database;
  if (opts.databaseUrl) {
    db = await PostgresDatabase.open(opts.databaseUrl);
  } else if (opts.memory) {
    db = await PGliteDatabase.open();
  } else {
    const dir = opts.dataDir ?? './data';
    mkdirSync(dir, { recursive: true });
    const release = lockDataDir(dir);
    try {
      db = withRelease(await PGliteDatabase.open(dir), release);
    } catch (err) {
      release();
      throw err;
    }
  }
  try {
    // The key that seals stored secrets (docs/secrets.md): read, or generated into the data dir,
    // once the store is ours (an embedded store held by another process gets no key file).
    const box = loadSecretBox({ dataDir: opts.dataDir, memory: !opts.databaseUrl && opts.memory === true });
    await migrate(db, registry);
    registerSecretBox(db, box);
    // Secrets stored in clear by a version without encryption are sealed now.
    await resealStoredSecrets(db, box, 'plaintext');
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}

export async function migrate(db: Database, registry: SchemaRegistry): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    const statements = [
      ...BASE_SCHEMA,
      ...OUTBOUND_EVENTS_SCHEMA,
      ...INBOUND_EVENTS_SCHEMA,
      ...ASYNC_REQUESTS_SCHEMA,
      ...SYNC_SCHEMA,
      ...REGISTRATION_SCHEMA,
      ...uniqueIndexStatements(registry),
    ];
    for (const sql of statements) await tx.query(sql);
  });
}

/** Thrown when another live process holds the embedded store. */
export class StoreBusyError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`the embedded store in ${dataDir} is in use by process ${pid} (one process at a time)`);
    this.name = 'StoreBusyError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The embedded store's files must have one writer: PGlite has no lock of its own. A lock file
 * holds the owner's pid; one left by a process that died is taken over.
 */
function lockDataDir(dir: string): () => void {
  const file = join(dir, 'scimd.lock');
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid))
      throw new StoreBusyError(dir, pid);
  } catch (err) {
    if (err instanceof StoreBusyError) throw err;
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => rmSync(file, { force: true });
}

function withRelease(db: Database, release: () => void): Database {
  const close = db.close.bind(db);
  db.close = async () => {
    try {
      await close();
    } finally {
      release();
    }
  };
  return db;
}
