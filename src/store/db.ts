/**
 * The database seam: both engines (PGlite embedded, pg for PostgreSQL servers) speak the same SQL
 * through this small interface. Everything above it writes parameterized SQL ($1, $2, ...) only.
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
}

export interface Database extends Queryable {
  /** Runs fn in one transaction: committed if fn resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** 'pglite' or 'postgres', for logs and benchmarks. */
  readonly kind: 'pglite' | 'postgres';
}
