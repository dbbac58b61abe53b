/**
 * Building blocks for parameterized SQL. Every value that comes from a request goes through
 * SqlParams; only names from the schema registry (trusted, but still quoted) are written inline.
 */
export class SqlParams {
  readonly values: unknown[] = [];
  private aliasCount = 0;

  /** Adds a bind value and returns its placeholder (`$1`, `$2`, ...). */
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }

  /**
   * A table alias not used elsewhere in the statement: nested EXISTS subqueries each need their
   * own, and they all share the statement this object builds.
   */
  alias(prefix: string): string {
    this.aliasCount += 1;
    return `${prefix}${this.aliasCount}`;
  }
}

/** A SQL string literal. Standard-conforming strings (the default since 9.1) make `\` ordinary. */
export function sqlLiteral(s: string): string {
  if (s.includes('\0')) throw new Error('NUL character in SQL literal');
  return `'${s.replace(/'/g, "''")}'`;
}

/** A quoted SQL identifier. */
export function sqlIdent(s: string): string {
  if (s.includes('\0')) throw new Error('NUL character in SQL identifier');
  return `"${s.replace(/"/g, '""')}"`;
}
