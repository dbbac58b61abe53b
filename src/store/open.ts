/**
 * Opens the configured database and brings its schema up to date. Migrations run at every start
 * and are idempotent; on a PostgreSQL server an advisory lock keeps nodes starting together from
 * running them at the same time.
 */
import { mkdirSync } from 'node:fs';
import type { SchemaRegistry } from '../scim/schema/registry.ts';
import type { Database } from './db.ts';
import { PostgresDatabase } from './pg-engine.ts';
import { PGliteDatabase } from './pglite-engine.ts';
import { BASE_SCHEMA } from './schema.sql.ts';
import { uniqueIndexStatements } from './sql/filter-sql.ts';

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
    db = await PGliteDatabase.open(dir);
  }
  try {
    await migrate(db, registry);
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}

export async function migrate(db: Database, registry: SchemaRegistry): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    for (const sql of [...BASE_SCHEMA, ...uniqueIndexStatements(registry)]) await tx.query(sql);
  });
}
