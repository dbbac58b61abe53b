/**
 * The embedded engine: PostgreSQL compiled to WASM (PGlite), stored in a folder. It has a single
 * connection, so transactions are serialised through a queue; a statement outside a transaction
 * waits for the running transaction too (PGlite would otherwise run it inside that transaction).
 *
 * PGlite has no autovacuum, so nothing would ever gather table statistics: the planner would keep
 * estimating every table at a row or two and pick, for a lookup by a second index's column, an
 * index scan over the whole tenant or flow (a sync run of 100,000 Users slowed down quadratically
 * that way). The engine runs ANALYZE itself, queued between statements, after every
 * ANALYZE_EVERY statements and transactions.
 */
import { PGlite } from '@electric-sql/pglite';
import type { Database, QueryResult, Queryable } from './db.ts';

/** Statements and transactions between two ANALYZE runs of the embedded store. */
export const ANALYZE_EVERY = 5_000;

export class PGliteDatabase implements Database {
  readonly kind = 'pglite' as const;
  private tail: Promise<unknown> = Promise.resolve();
  private sinceAnalyze = 0;

  private constructor(private readonly db: PGlite) {}

  /** dataDir undefined = in memory (tests). */
  static async open(dataDir?: string): Promise<PGliteDatabase> {
    const db = dataDir ? await PGlite.create(dataDir) : await PGlite.create();
    return new PGliteDatabase(db);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    if (++this.sinceAnalyze >= ANALYZE_EVERY) {
      this.sinceAnalyze = 0;
      // Queued like a statement; nobody waits for it, and a failure only leaves the old statistics.
      const analyze = () => this.db.query('ANALYZE');
      this.tail = this.tail.then(analyze, analyze).catch(() => undefined);
    }
    return run;
  }

  private static wrap(db: Pick<PGlite, 'query'>): Queryable {
    return {
      async query<R>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
        const res = await db.query<R>(sql, params);
        return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
      },
    };
  }

  query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    return this.exclusive(() => PGliteDatabase.wrap(this.db).query<R>(sql, params));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.exclusive(() => this.db.transaction((tx) => fn(PGliteDatabase.wrap(tx))));
  }

  async close(): Promise<void> {
    await this.exclusive(() => this.db.close());
  }
}
