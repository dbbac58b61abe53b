/**
 * Target databases of the SQL adapter tests: an embedded PGlite folder (always), and a scratch
 * database on the PostgreSQL server of DATABASE_URL (when it is set). Each gives the URL a `sql`
 * connection names and a way to read the table directly, as the application would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../src/store/db.ts';
import { PostgresDatabase } from '../../src/store/pg-engine.ts';
import { PGliteDatabase } from '../../src/store/pglite-engine.ts';
import { scratchDatabase } from '../helpers/app.ts';

export interface Target {
  kind: 'pglite' | 'postgres';
  /** What `sql.databaseUrl` names. */
  url: string;
  /** Runs statements on the target database (a PGlite folder is opened for the call and closed). */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

export const TARGET_KINDS: Target['kind'][] = process.env.DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

export async function openTarget(kind: Target['kind']): Promise<Target> {
  if (kind === 'postgres') {
    const scratch = (await scratchDatabase('scimd_target'))!;
    const db = await PostgresDatabase.open(scratch.url, 2);
    return {
      kind,
      url: scratch.url,
      query: async <R>(sql: string, params?: unknown[]) => (await db.query<R>(sql, params)).rows,
      async close() {
        await db.close();
        await scratch.drop();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'scimd-target-'));
  return {
    kind,
    url: `pglite:${dir}`,
    async query<R>(sql: string, params?: unknown[]) {
      const db: Database = await PGliteDatabase.open(dir);
      try {
        return (await db.query<R>(sql, params)).rows;
      } finally {
        await db.close();
      }
    },
    async close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
