/**
 * Every place in the database that holds a sealed secret (src/security/secret-box.ts), and the two
 * walks over them: sealing values still stored in clear (every start, after the migrations: a
 * database written before encryption existed), and resealing every value with the current key
 * (`scimd secrets rotate`, after SCIMD_SECRET_KEY changed). One transaction per table; rows are
 * locked while they are rewritten, and a value another node already rewrote is left alone.
 *
 * The services seal and open the same places with the same associated data: keep this list and
 * their row writers and readers in step (test/security/stored-secrets.test.ts checks each one).
 */
import type { Database, Queryable } from '../store/db.ts';
import { isSealed, type SecretBox, type SecretPlace } from './secret-box.ts';

/** A column holding secrets: the column itself (text), fields of a jsonb object, or a whole jsonb value. */
export type SecretColumn =
  | { column: string; kind: 'text' }
  | { column: string; kind: 'json-fields'; fields: string[] }
  | { column: string; kind: 'json-value' };

export interface SecretTable {
  table: string;
  /** The tenant column (absent for node-wide tables). */
  tenantColumn?: string;
  /** The column naming the row within its tenant. */
  idColumn: string;
  columns: SecretColumn[];
}

export const SECRET_TABLES: readonly SecretTable[] = [
  {
    table: 'sync_connections',
    tenantColumn: 'tenant_id',
    idColumn: 'id',
    columns: [
      { column: 'auth', kind: 'json-fields', fields: ['token', 'clientSecret'] },
      { column: 'tls', kind: 'json-fields', fields: ['key', 'passphrase'] },
      { column: 'adapter', kind: 'json-fields', fields: ['databaseUrl'] },
    ],
  },
  {
    table: 'event_receivers',
    tenantColumn: 'tenant_id',
    idColumn: 'id',
    columns: [{ column: 'authorization_header', kind: 'text' }],
  },
  {
    table: 'upstreams',
    tenantColumn: 'tenant_id',
    idColumn: 'id',
    columns: [
      { column: 'callback_authorization', kind: 'text' },
      { column: 'poll_authorization', kind: 'text' },
    ],
  },
  {
    table: 'device_manufacturers',
    tenantColumn: 'tenant_id',
    idColumn: 'id',
    columns: [{ column: 'token', kind: 'text' }],
  },
  {
    table: 'signing_keys',
    tenantColumn: 'tenant_id',
    idColumn: 'kid',
    columns: [{ column: 'private_jwk', kind: 'json-value' }],
  },
  {
    // Node-wide: the keys that sign paging cursors and delta tokens (app.ts, service/delta.ts).
    table: 'server_secrets',
    idColumn: 'name',
    columns: [{ column: 'secret', kind: 'text' }],
  },
];

/** The place of a secret: what its associated data names. */
export function placeOf(table: string, tenant: string, row: string, field: string): SecretPlace {
  return { table, tenant, row, field };
}

/** SQL text of each secret value of a column (all names are constants above). */
function valueExpressions(c: SecretColumn): { field: string; sql: string }[] {
  if (c.kind === 'text') return [{ field: c.column, sql: c.column }];
  if (c.kind === 'json-value') return [{ field: c.column, sql: `(${c.column} #>> '{}')` }];
  return c.fields.map((f) => ({ field: `${c.column}.${f}`, sql: `(${c.column} ->> '${f}')` }));
}

/** Rows with a value not starting with $1 (a JSON object of a json-value column never does). */
function wherePending(t: SecretTable): string {
  return t.columns
    .flatMap(valueExpressions)
    .map((e) => `(${e.sql} IS NOT NULL AND ${e.sql} <> '' AND NOT starts_with(${e.sql}, $1))`)
    .join(' OR ');
}

type Row = Record<string, unknown>;

export interface ResealResult {
  table: string;
  /** Rows rewritten. */
  rows: number;
  /** Values sealed again (or for the first time). */
  values: number;
}

/**
 * `plaintext`: seals the values stored in clear (values sealed with any key stay). `rotate`: also
 * reseals values sealed with another key than the current one (they must open: the old key is in
 * SCIMD_SECRET_KEY_PREVIOUS), so afterwards every value opens with the current key alone.
 */
export async function resealStoredSecrets(
  db: Database,
  box: SecretBox,
  mode: 'plaintext' | 'rotate',
): Promise<ResealResult[]> {
  const prefix = mode === 'plaintext' ? 'enc:' : `enc:v1:${box.keyId}:`;
  const pending = (v: string) => v !== '' && (mode === 'plaintext' ? !isSealed(v) : !box.isCurrent(v));
  const out: ResealResult[] = [];
  for (const t of SECRET_TABLES) {
    const result = await db.transaction(async (tx) => {
      const r: ResealResult = { table: t.table, rows: 0, values: 0 };
      const cols = [t.tenantColumn, t.idColumn, ...t.columns.map((c) => c.column)].filter(Boolean);
      const res = await tx.query<Row>(
        `SELECT ${cols.join(', ')} FROM ${t.table} WHERE ${wherePending(t)} FOR UPDATE`,
        [prefix],
      );
      for (const row of res.rows) {
        const tenant = t.tenantColumn ? String(row[t.tenantColumn]) : '';
        const id = String(row[t.idColumn]);
        const sets: string[] = [];
        const params: unknown[] = [];
        for (const c of t.columns) {
          const [value, count] = resealColumn(
            box,
            c,
            row[c.column],
            (field) => placeOf(t.table, tenant, id, field),
            pending,
          );
          if (count === 0) continue;
          r.values += count;
          params.push(value);
          sets.push(`${c.column} = $${params.length}`);
        }
        if (sets.length === 0) continue;
        params.push(id);
        let where = `${t.idColumn} = $${params.length}`;
        if (t.tenantColumn) {
          params.push(tenant);
          where += ` AND ${t.tenantColumn} = $${params.length}`;
        }
        await tx.query(`UPDATE ${t.table} SET ${sets.join(', ')} WHERE ${where}`, params);
        r.rows++;
      }
      return r;
    });
    out.push(result);
  }
  return out;
}

/** The column's new stored value (as a query parameter) and how many values in it were resealed. */
function resealColumn(
  box: SecretBox,
  c: SecretColumn,
  stored: unknown,
  place: (field: string) => SecretPlace,
  pending: (v: string) => boolean,
): [unknown, number] {
  if (stored === null || stored === undefined) return [stored, 0];
  if (c.kind === 'text') {
    const v = String(stored);
    return pending(v) ? [box.reseal(v, place(c.column)), 1] : [v, 0];
  }
  if (c.kind === 'json-value') {
    // In clear: the JSON value itself (e.g. a JWK object); sealed: a JSON string of the envelope.
    const text = typeof stored === 'string' ? stored : JSON.stringify(stored);
    return pending(text) ? [JSON.stringify(box.reseal(text, place(c.column))), 1] : [stored, 0];
  }
  const obj = { ...(stored as Record<string, unknown>) };
  let n = 0;
  for (const f of c.fields) {
    const v = obj[f];
    if (typeof v !== 'string' || !pending(v)) continue;
    obj[f] = box.reseal(v, place(`${c.column}.${f}`));
    n++;
  }
  return [JSON.stringify(obj), n];
}

export interface SecretStatus {
  table: string;
  /** Values stored in clear. */
  plaintext: number;
  /** Values sealed, by key id. */
  sealed: Record<string, number>;
}

/** How the stored secrets are kept: per table, values in clear and sealed values per key id. */
export async function secretStatus(q: Queryable): Promise<SecretStatus[]> {
  const out: SecretStatus[] = [];
  for (const t of SECRET_TABLES) {
    const s: SecretStatus = { table: t.table, plaintext: 0, sealed: {} };
    const exprs = t.columns.flatMap(valueExpressions);
    const res = await q.query<{ v: string | null }>(
      exprs.map((e) => `SELECT ${e.sql} AS v FROM ${t.table}`).join(' UNION ALL '),
    );
    for (const { v } of res.rows) {
      if (v === null || v === '') continue;
      const m = /^enc:[^:]+:([^:]+):/.exec(v);
      if (m) s.sealed[m[1]] = (s.sealed[m[1]] ?? 0) + 1;
      else s.plaintext++;
    }
    out.push(s);
  }
  return out;
}

export interface UnopenableSecrets {
  /** A key id that sealed stored values and that this node does not have. */
  keyId: string;
  /** Values sealed with it, in all tables. */
  count: number;
  /** Values sealed with it, per table (tables without any left out). */
  tables: Record<string, number>;
}

/**
 * The stored values sealed with a key id `box` does not have, per key id (none: every value
 * opens, or is in clear). Counts only: no value is read beyond its envelope's key id.
 */
export async function unopenableSecrets(q: Queryable, box: SecretBox): Promise<UnopenableSecrets[]> {
  const known = new Set(box.keyIds);
  const byKey = new Map<string, UnopenableSecrets>();
  for (const s of await secretStatus(q)) {
    for (const [keyId, n] of Object.entries(s.sealed)) {
      if (known.has(keyId)) continue;
      let u = byKey.get(keyId);
      if (!u) byKey.set(keyId, (u = { keyId, count: 0, tables: {} }));
      u.count += n;
      u.tables[s.table] = n;
    }
  }
  return [...byKey.values()].sort((a, b) => a.keyId.localeCompare(b.keyId));
}

/**
 * At startup (app.ts, after the store is opened and the key loaded): one warning per key id whose
 * stored values this node cannot open, naming the count and the tables. Startup goes on: every
 * operation that needs such a value fails with SecretKeyMissing. Returns what it warned about.
 */
export async function warnUnopenableSecrets(
  q: Queryable,
  box: SecretBox,
  log: { warn(obj: object, msg: string): void },
): Promise<UnopenableSecrets[]> {
  const found = await unopenableSecrets(q, box);
  for (const u of found) {
    const tables = Object.entries(u.tables)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ');
    log.warn(
      { keyId: u.keyId, count: u.count, tables: u.tables },
      `${u.count} stored secret value${u.count === 1 ? '' : 's'} (${tables}) ${u.count === 1 ? 'is' : 'are'} sealed with key id ${u.keyId}, which this node does not have: operations that need them fail until SCIMD_SECRET_KEY / SCIMD_SECRET_KEY_PREVIOUS include that key (see docs/secrets.md)`,
    );
  }
  return found;
}
