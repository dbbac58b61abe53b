/**
 * Where the time of one operation goes: the app's own Database object is instrumented in place
 * (so the service, wired by createApp, runs unchanged) to time every statement, and the slowest
 * SELECT is then run again under EXPLAIN ANALYZE.
 */
import type { Database, QueryResult, Queryable } from '../../src/store/db.ts';

export interface Statement {
  sql: string;
  params: unknown[];
  ms: number;
  rows: number;
}

export interface Profile {
  label: string;
  /** The median of the recorded runs. */
  totalMs: number;
  statements: Statement[];
  slowest?: Statement;
  plan?: string;
  /** Plans of named statements, shown instead of the slowest SELECT's when set. */
  plans?: { of: string; plan: string }[];
}

export interface Recorder {
  /** Statements run since the last take(). */
  take(): Statement[];
  /** The database without instrumentation. */
  plain: Queryable;
}

function timed(q: Queryable, out: () => Statement[]): Queryable {
  return {
    async query<R>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
      const start = performance.now();
      const res = await q.query<R>(sql, params);
      // PGlite reports no rowCount for a SELECT: the rows returned are the count that matters there.
      out().push({ sql, params, ms: performance.now() - start, rows: res.rows.length || res.rowCount });
      return res;
    },
  };
}

/** Replaces db.query and db.transaction on the instance with timing versions. */
export function instrument(db: Database): Recorder {
  let current: Statement[] = [];
  const query = db.query.bind(db);
  const transaction = db.transaction.bind(db);
  const plain: Queryable = { query: (sql, params) => query(sql, params) };
  const direct = timed(plain, () => current);
  Object.assign(db, {
    query: (sql: string, params?: unknown[]) => direct.query(sql, params),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => transaction((tx) => fn(timed(tx, () => current))),
  });
  return {
    take() {
      const out = current;
      current = [];
      return out;
    },
    plain,
  };
}

export async function explain(q: Queryable, stmt: Statement): Promise<string> {
  const res = await q.query<Record<string, string>>(`EXPLAIN ANALYZE ${stmt.sql}`, stmt.params);
  // Plans inline the parameters: a 1,000-id array would fill pages.
  return res.rows.map((r) => oneLine(String(Object.values(r)[0]), 300, false)).join('\n');
}

/**
 * Runs op twice to warm caches, then `runs` times while recording, and keeps the run of median total
 * time (single runs jitter by milliseconds). The slowest SELECT of that run is explained (only
 * SELECTs: EXPLAIN ANALYZE of a write would perform it again).
 */
export async function profile(
  recorder: Recorder,
  label: string,
  op: () => Promise<unknown>,
  runs = 5,
): Promise<Profile> {
  const samples: { totalMs: number; statements: Statement[] }[] = [];
  for (let i = 0; i < runs + 2; i++) {
    recorder.take();
    const start = performance.now();
    await op();
    const totalMs = performance.now() - start;
    const statements = recorder.take();
    if (i >= 2) samples.push({ totalMs, statements });
  }
  samples.sort((a, b) => a.totalMs - b.totalMs);
  const { totalMs, statements } = samples[Math.floor(samples.length / 2)];
  const slowest = statements.filter((s) => /^\s*SELECT/i.test(s.sql)).sort((a, b) => b.ms - a.ms)[0];
  const plan = slowest ? await explain(recorder.plain, slowest) : undefined;
  return { label, totalMs, statements, slowest, plan };
}

/** One line of SQL for a table cell: whitespace collapsed, long statements cut. */
export function oneLine(sql: string, max = 220, collapse = true): string {
  const s = collapse ? sql.replace(/\s+/g, ' ').trim() : sql.trimEnd();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
