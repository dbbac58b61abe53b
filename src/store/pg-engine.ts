/** The production engine: a pool of connections to a PostgreSQL server (node-postgres). */
import pg from 'pg';
import type { Database, QueryResult, Queryable } from './db.ts';
import { parseUtcTimestamp } from './timestamp.ts';

// Return bigint columns (versions, sequences) as JS numbers rather than strings: they stay far below 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));
// timestamptz: the UTC form read without regular expressions, anything else by the driver's parser.
const driverTimestamptz = pg.types.getTypeParser(1184) as (v: string) => Date | number | null;
pg.types.setTypeParser(1184, (v: string) => parseUtcTimestamp(v) ?? driverTimestamptz(v));

export class PostgresDatabase implements Database {
  readonly kind = 'postgres' as const;

  private constructor(private readonly pool: pg.Pool) {}

  static async open(connectionString: string, max = 20): Promise<PostgresDatabase> {
    const pool = new pg.Pool({ connectionString, max });
    // An idle connection can fail (server restart, admin termination): the pool drops it and opens
    // a new one when needed. Without a listener that 'error' event would crash the process.
    pool.on('error', () => undefined);
    // Fail fast with a clear message when the server is not there.
    const client = await pool.connect();
    client.release();
    return new PostgresDatabase(pool);
  }

  async query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    const res = await this.pool.query(sql, params);
    return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const tx: Queryable = {
        async query<R>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
          const res = await client.query(sql, params);
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        },
      };
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
