/**
 * The SQL table adapter: a connection of kind `sql` writes resources into rows of an application's
 * own table (PostgreSQL, or an embedded PGlite folder) instead of a SCIM server. Each configured
 * table holds one resource type: a key column (the resource's id on this side), columns filled from
 * SCIM attribute paths, and optionally a jsonb column with the whole resource. The SCIM side of
 * it is src/sync/adapters/facade.ts; docs/adapters.md explains the configuration.
 *
 * Table and column names are checked against a strict identifier pattern and always quoted; every
 * value is a query parameter. Each write is one statement or one transaction.
 */
import type { JsonObject, JsonValue } from '../../scim/json.ts';
import { isJsonObject } from '../../scim/json.ts';
import { parsePath } from '../../scim/filter/parser.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../../scim/schema/registry.ts';
import type { AttributeDefinition } from '../../scim/schema/types.ts';
import type { Database, Queryable } from '../../store/db.ts';
import { bad, isObject, nonEmptyString, object } from '../config-check.ts';
import { AdapterError, type AdapterStore, type AdapterTable, type Equals } from './facade.ts';

/** One table: which resource type it holds and where each attribute goes. */
export interface SqlTableConfig {
  /** A resource type of this server, e.g. `User`, `Group`, `Device`. One table per type. */
  resourceType: string;
  /** `table` or `schema.table`. */
  table: string;
  /** The table's key (primary key or unique): the resource id on this side. */
  keyColumn: string;
  /**
   * The attribute whose value becomes the key of a new row (e.g. `externalId`, `userName`); without
   * it the database's default for the key column makes the key (serial, identity, a uuid default).
   */
  keyAttribute?: string;
  /** Column ← SCIM attribute path (`userName`, `name.givenName`, `emails`, `<urn>:department`). */
  columns: Record<string, string>;
  /** A json/jsonb column that receives the whole resource (what the flow's mapping let through). */
  documentColumn?: string;
}

/** A `sql` connection's settings; `databaseUrl` is a secret like the other credentials. */
export interface SqlAdapterConfig {
  /** `postgres://user:password@host:5432/db` (or `postgresql://`), or `pglite:/absolute/folder`. */
  databaseUrl: string;
  tables: SqlTableConfig[];
}

/** The configuration as views show it: the URL is never shown, only whether it is set. */
export type SqlAdapterView = Omit<SqlAdapterConfig, 'databaseUrl'> & { databaseUrlSet: boolean };

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const MAX_TABLES = 20;
const MAX_COLUMNS = 200;

function identifier(v: unknown, what: string, qualified = false): string {
  const s = nonEmptyString(v, what, 200);
  const parts = qualified ? s.split('.') : [s];
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p)))
    throw bad(
      `${what} must be ${qualified ? 'a table name or schema.table, each' : 'a column name'} of letters, digits and _ (not starting with a digit, at most 63); got "${s}"`,
    );
  return s;
}

/** `name` or `schema.name`, quoted (names were checked by `identifier`, so they hold no quote). */
export function quoteIdent(name: string): string {
  return name
    .split('.')
    .map((p) => `"${p}"`)
    .join('.');
}

/** Where an attribute path points in a canonical resource, with the definition of its leaf. */
export interface ResolvedPath {
  /** Canonical spelling: `name.givenName`, `<urn>:employeeNumber`. */
  text: string;
  /** Keys from the resource's top: `['name', 'givenName']`, `['<urn>', 'employeeNumber']`. */
  keys: string[];
  def: AttributeDefinition;
}

/** Resolves an attribute path on a resource type (`id` is the key); 400 naming `what` when it cannot. */
export function resolvePath(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  v: unknown,
  what: string,
): ResolvedPath {
  const text = nonEmptyString(v, what, 500);
  const schemaUris = registry.schemasOf(rt).map((s) => s.schema.id);
  let parsed;
  try {
    parsed = parsePath(text, { schemaUris });
  } catch (err) {
    throw bad(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (parsed.valueFilter !== undefined || parsed.subAttr !== undefined || parsed.path.attr === '')
    throw bad(`${what} must be an attribute path without a value filter; got "${text}"`);
  const bound = registry.findAttribute(rt, parsed.path);
  if (!bound) throw bad(`${what}: ${rt.name} has no attribute "${text}"`);
  if (bound.location === 'common' && bound.attribute.name === 'meta')
    throw bad(`${what}: meta is the adapter's, not a column's`);
  if (bound.sub && bound.attribute.multiValued)
    throw bad(
      `${what}: "${text}" is a sub-attribute of the multi-valued ${bound.attribute.name}; map the whole attribute (a json column)`,
    );
  const keys = bound.location === 'extension' ? [bound.schema, bound.attribute.name] : [bound.attribute.name];
  if (bound.sub) keys.push(bound.sub.name);
  const textOut =
    bound.location === 'extension' ? `${bound.schema}:${keys.slice(1).join('.')}` : keys.join('.');
  return { text: textOut, keys, def: bound.sub ?? bound.attribute };
}

/** Checks a `sql` connection's settings; `previous` keeps a stored URL when a change gives none. */
export function checkSqlConfig(
  registry: SchemaRegistry,
  v: unknown,
  previous?: SqlAdapterConfig,
): SqlAdapterConfig {
  const c = object(v, 'sql', ['databaseUrl', 'tables']);
  let databaseUrl: string;
  if (c.databaseUrl !== undefined) databaseUrl = checkDatabaseUrl(c.databaseUrl);
  else if (previous) databaseUrl = previous.databaseUrl;
  else throw bad('sql.databaseUrl is required');
  const tablesIn = c.tables !== undefined ? c.tables : previous?.tables;
  if (!Array.isArray(tablesIn) || tablesIn.length === 0 || tablesIn.length > MAX_TABLES)
    throw bad(`sql.tables must be an array of 1 to ${MAX_TABLES} tables`);
  const types = new Set<string>();
  const tables = tablesIn.map((t, i) => {
    const w = `sql.tables[${i}]`;
    const o = object(t, w, [
      'resourceType',
      'table',
      'keyColumn',
      'keyAttribute',
      'columns',
      'documentColumn',
    ]);
    const typeName = nonEmptyString(o.resourceType, `${w}.resourceType`, 200);
    const rt = registry.resourceType(typeName);
    if (!rt) throw bad(`${w}.resourceType: no resource type ${typeName}`);
    if (types.has(rt.name)) throw bad(`${w}.resourceType: ${rt.name} has another table already`);
    types.add(rt.name);
    const out: SqlTableConfig = {
      resourceType: rt.name,
      table: identifier(o.table, `${w}.table`, true),
      keyColumn: identifier(o.keyColumn, `${w}.keyColumn`),
      columns: {},
    };
    const used = new Set([out.keyColumn.toLowerCase()]);
    if (o.keyAttribute !== undefined) {
      const p = resolvePath(registry, rt, o.keyAttribute, `${w}.keyAttribute`);
      if (p.def.multiValued || p.def.type === 'complex')
        throw bad(`${w}.keyAttribute must be a single-valued simple attribute; got "${p.text}"`);
      if (p.text === 'id') throw bad(`${w}.keyAttribute cannot be id (the key is the id)`);
      out.keyAttribute = p.text;
    }
    if (o.documentColumn !== undefined) {
      out.documentColumn = identifier(o.documentColumn, `${w}.documentColumn`);
      if (used.has(out.documentColumn.toLowerCase()))
        throw bad(`${w}.documentColumn must differ from the key column`);
      used.add(out.documentColumn.toLowerCase());
    }
    if (!isObject(o.columns)) throw bad(`${w}.columns must be an object of column: attribute path`);
    const entries = Object.entries(o.columns);
    if (entries.length > MAX_COLUMNS) throw bad(`${w}.columns: at most ${MAX_COLUMNS} columns`);
    if (entries.length === 0 && out.documentColumn === undefined)
      throw bad(`${w} needs columns or a documentColumn (nothing would be stored)`);
    const paths = new Set<string>();
    for (const [col, path] of entries) {
      identifier(col, `${w}.columns key "${col}"`);
      if (used.has(col.toLowerCase()))
        throw bad(
          `${w}.columns: "${col}" is used twice (the key column is filled from keyAttribute, not from columns)`,
        );
      used.add(col.toLowerCase());
      const p = resolvePath(registry, rt, path, `${w}.columns.${col}`);
      if (p.text === 'id') throw bad(`${w}.columns.${col}: id is the key column's`);
      if (paths.has(p.text.toLowerCase())) throw bad(`${w}.columns: "${p.text}" is mapped to two columns`);
      paths.add(p.text.toLowerCase());
      out.columns[col] = p.text;
    }
    return out;
  });
  return { databaseUrl, tables };
}

export function checkDatabaseUrl(v: unknown): string {
  const s = nonEmptyString(v, 'sql.databaseUrl', 2000);
  if (/^pglite:/.test(s)) {
    if (!/^pglite:\/[^\0]*$/.test(s) || s.length < 9)
      throw bad('sql.databaseUrl: a pglite URL names an absolute folder, e.g. pglite:/var/lib/app/db');
    return s;
  }
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw bad('sql.databaseUrl must be a postgres:// (or postgresql://) URL or pglite:/absolute/folder');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw bad('sql.databaseUrl must be a postgres:// (or postgresql://) URL or pglite:/absolute/folder');
  if (!url.hostname) throw bad('sql.databaseUrl must name a host');
  return s;
}

/** What a view shows of the URL: scheme, host, port and database; never the user's password or options. */
export function describeDatabaseUrl(databaseUrl: string): string {
  if (databaseUrl.startsWith('pglite:')) return databaseUrl;
  const u = new URL(databaseUrl);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

export function sqlView(c: SqlAdapterConfig): SqlAdapterView {
  return { databaseUrlSet: c.databaseUrl !== '', tables: c.tables };
}

// ------------------------------------------------------------------------------ the store

function getAt(r: JsonObject, keys: string[]): JsonValue | undefined {
  let cur: JsonValue | undefined = r;
  for (const k of keys) {
    if (!isJsonObject(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

function setAt(r: JsonObject, keys: string[], v: JsonValue | undefined): void {
  let cur: JsonObject = r;
  for (const k of keys.slice(0, -1)) {
    if (!isJsonObject(cur[k])) {
      if (v === undefined) return;
      cur[k] = {};
    }
    cur = cur[k] as JsonObject;
  }
  const last = keys[keys.length - 1];
  if (v === undefined) delete cur[last];
  else cur[last] = v;
}

/** A SCIM value as a query parameter: objects and arrays as JSON text (json, jsonb or text columns). */
function param(v: JsonValue | undefined): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'object') return JSON.stringify(v);
  return v;
}

/** A column's value as the attribute's SCIM value. */
function fromColumn(v: unknown, def: AttributeDefinition): JsonValue | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'bigint') v = Number(v);
  if (v instanceof Date) return v.toISOString();
  if (def.multiValued || def.type === 'complex') {
    if (typeof v === 'string') {
      try {
        return JSON.parse(v) as JsonValue;
      } catch {
        return def.multiValued ? [v] : v;
      }
    }
    return v as JsonValue;
  }
  if (def.type === 'boolean' && typeof v === 'string') {
    const l = v.toLowerCase();
    return l === 'true' || l === 't' || l === '1'
      ? true
      : l === 'false' || l === 'f' || l === '0'
        ? false
        : v;
  }
  if (
    (def.type === 'integer' || def.type === 'decimal') &&
    typeof v === 'string' &&
    v.trim() !== '' &&
    !isNaN(Number(v))
  )
    return Number(v);
  if ((def.type === 'string' || def.type === 'reference' || def.type === 'binary') && typeof v !== 'string')
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  return v as JsonValue;
}

interface Column {
  name: string;
  path: ResolvedPath;
}

/** PostgreSQL error codes (SQLSTATE) as SCIM answers. */
function refusal(err: unknown, table: string): never {
  const e = err as { code?: string; message?: string; detail?: string };
  const code = typeof e.code === 'string' ? e.code : '';
  const why = `${table}: ${e.message ?? String(err)}${e.detail ? ` (${e.detail})` : ''}`;
  if (code === '23505') throw new AdapterError(409, 'uniqueness', why);
  if (code.startsWith('22') || code.startsWith('23')) throw new AdapterError(400, 'invalidValue', why);
  if (code === '28P01' || code === '28000') throw new AdapterError(401, undefined, why);
  if (code === '42501') throw new AdapterError(403, undefined, why);
  throw err;
}

class SqlTable implements AdapterTable {
  private readonly key: string;
  private readonly table: string;
  private readonly columns: Column[];
  private readonly doc: string | undefined;
  private readonly keyPath: ResolvedPath | undefined;
  private readonly select: string;

  constructor(
    private readonly db: () => Promise<Database>,
    readonly resourceType: ResourceTypeConfig,
    private readonly config: SqlTableConfig,
    registry: SchemaRegistry,
  ) {
    this.key = quoteIdent(config.keyColumn);
    this.table = quoteIdent(config.table);
    this.columns = Object.entries(config.columns).map(([name, path]) => ({
      name: quoteIdent(name),
      path: resolvePath(registry, resourceType, path, name),
    }));
    this.doc = config.documentColumn ? quoteIdent(config.documentColumn) : undefined;
    this.keyPath = config.keyAttribute
      ? resolvePath(registry, resourceType, config.keyAttribute, 'key')
      : undefined;
    const cols = [`${this.key}::text AS k`, ...this.columns.map((c, i) => `${c.name} AS c${i}`)];
    if (this.doc) cols.push(`${this.doc} AS d`);
    this.select = `SELECT ${cols.join(', ')} FROM ${this.table}`;
  }

  private async run<R>(fn: (q: Queryable) => Promise<R>, tx = false): Promise<R> {
    const db = await this.db();
    try {
      return tx ? await db.transaction(fn) : await fn(db);
    } catch (err) {
      refusal(err, this.config.table);
    }
  }

  /** A row as a canonical resource: the document (when kept), then each column over it. */
  private resource(row: Record<string, unknown>): JsonObject {
    let r: JsonObject = {};
    if (this.doc !== undefined) {
      const d = typeof row.d === 'string' ? (JSON.parse(row.d) as JsonValue) : (row.d as JsonValue);
      if (isJsonObject(d)) r = structuredClone(d);
    }
    this.columns.forEach((c, i) => setAt(r, c.path.keys, fromColumn(row[`c${i}`], c.path.def)));
    if (this.keyPath) setAt(r, this.keyPath.keys, row.k as string);
    for (const k of Object.keys(r))
      if (isJsonObject(r[k]) && Object.keys(r[k] as JsonObject).length === 0) delete r[k];
    return { id: row.k as string, ...r };
  }

  /** Column values (in `this.columns` order, then the document) of a resource. */
  private values(r: JsonObject): unknown[] {
    const out = this.columns.map((c) => param(getAt(r, c.path.keys)));
    if (this.doc !== undefined) {
      const { id: _id, ...doc } = r;
      out.push(JSON.stringify(doc));
    }
    return out;
  }

  private assignments(offset: number): string {
    const names = [...this.columns.map((c) => c.name), ...(this.doc ? [this.doc] : [])];
    return names.map((n, i) => `${n} = $${i + offset}`).join(', ');
  }

  private written(r: Record<string, unknown> | undefined, what: string): JsonObject {
    if (!r) throw new AdapterError(500, undefined, `${this.config.table}: ${what} returned no row`);
    return this.resource(r);
  }

  async page(offset: number, limit: number) {
    return this.run(async (q) => {
      const total = await q.query<{ n: number | string }>(`SELECT count(*) AS n FROM ${this.table}`);
      const rows =
        limit === 0
          ? []
          : (
              await q.query<Record<string, unknown>>(
                `${this.select} ORDER BY ${this.key} LIMIT $1 OFFSET $2`,
                [limit, offset],
              )
            ).rows;
      return { resources: rows.map((r) => this.resource(r)), total: Number(total.rows[0]?.n ?? 0) };
    });
  }

  async candidates(where: Equals | undefined): Promise<JsonObject[]> {
    let sql = this.select;
    const params: unknown[] = [];
    if (where) {
      const lower = where.path.toLowerCase();
      const col =
        lower === 'id' || (this.keyPath && this.keyPath.text.toLowerCase() === lower)
          ? this.key
          : this.columns.find((c) => c.path.text.toLowerCase() === lower)?.name;
      const cmp = (expr: string) => (where.caseExact ? `${expr} = $1` : `lower(${expr}) = lower($1)`);
      if (col !== undefined) {
        sql += ` WHERE ${cmp(`${col}::text`)}`;
        params.push(where.value);
      }
    }
    return this.run(async (q) =>
      (await q.query<Record<string, unknown>>(sql, params)).rows.map((r) => this.resource(r)),
    );
  }

  private async find(q: Queryable, id: string, lock = false): Promise<Record<string, unknown> | undefined> {
    return (
      await q.query<Record<string, unknown>>(
        `${this.select} WHERE ${this.key}::text = $1${lock ? ' FOR UPDATE' : ''}`,
        [id],
      )
    ).rows[0];
  }

  async get(id: string): Promise<JsonObject | undefined> {
    const row = await this.run((q) => this.find(q, id));
    return row ? this.resource(row) : undefined;
  }

  private insertSql(withKey: boolean, upsert: boolean): string {
    const names = [
      ...(withKey ? [this.key] : []),
      ...this.columns.map((c) => c.name),
      ...(this.doc ? [this.doc] : []),
    ];
    const values = names.map((_, i) => `$${i + 1}`);
    const cols = names.length ? `(${names.join(', ')}) VALUES (${values.join(', ')})` : 'DEFAULT VALUES';
    const rest = names.filter((n) => n !== this.key);
    const conflict =
      upsert && withKey
        ? rest.length
          ? ` ON CONFLICT (${this.key}) DO UPDATE SET ${rest.map((n) => `${n} = EXCLUDED.${n}`).join(', ')}`
          : ` ON CONFLICT (${this.key}) DO NOTHING`
        : '';
    return `INSERT INTO ${this.table} ${cols}${conflict} RETURNING ${this.key}::text AS k`;
  }

  async create(resource: JsonObject): Promise<JsonObject> {
    let key: string | undefined;
    if (this.keyPath) {
      const v = getAt(resource, this.keyPath.keys);
      if (v === undefined || v === null || v === '')
        throw new AdapterError(
          400,
          'invalidValue',
          `${this.config.table}: the key attribute ${this.keyPath.text} has no value`,
        );
      key = String(v);
    }
    return this.run(async (q) => {
      const params = [...(key !== undefined ? [key] : []), ...this.values(resource)];
      const res = await q.query<{ k: string }>(this.insertSql(key !== undefined, true), params);
      const k = res.rows[0]?.k ?? key!;
      return this.written(await this.find(q, k), 'INSERT');
    }, true);
  }

  async replace(id: string, resource: JsonObject): Promise<JsonObject> {
    return this.run(async (q) => {
      const values = this.values(resource);
      const set = this.assignments(2);
      const updated = set
        ? await q.query(`UPDATE ${this.table} SET ${set} WHERE ${this.key}::text = $1`, [id, ...values])
        : { rowCount: (await this.find(q, id)) ? 1 : 0 };
      if (updated.rowCount === 0) await q.query(this.insertSql(true, true), [id, ...values]);
      return this.written(await this.find(q, id), 'UPDATE');
    }, true);
  }

  async modify(id: string, change: (current: JsonObject) => JsonObject): Promise<JsonObject | undefined> {
    return this.run(async (q) => {
      const row = await this.find(q, id, true);
      if (!row) return undefined;
      const next = change(this.resource(row));
      const set = this.assignments(2);
      if (set)
        await q.query(`UPDATE ${this.table} SET ${set} WHERE ${this.key}::text = $1`, [
          id,
          ...this.values(next),
        ]);
      return this.written(await this.find(q, id), 'UPDATE');
    }, true);
  }

  async delete(id: string): Promise<boolean> {
    return this.run(async (q) => {
      const res = await q.query(`DELETE FROM ${this.table} WHERE ${this.key}::text = $1`, [id]);
      return res.rowCount > 0;
    });
  }
}

/**
 * The store over `config`'s tables. `open` gives the database (opened on first use); `close`
 * is called when the SCIM client is closed.
 */
export function sqlStore(
  registry: SchemaRegistry,
  config: SqlAdapterConfig,
  open: () => Promise<Database>,
  close: (db: Database) => Promise<void>,
): AdapterStore {
  let db: Promise<Database> | undefined;
  const database = () => {
    if (!db) {
      const p = open();
      p.catch(() => {
        if (db === p) db = undefined;
      });
      db = p;
    }
    return db;
  };
  return {
    tables: config.tables.map((t) => {
      const rt = registry.resourceType(t.resourceType);
      if (!rt) throw new AdapterError(500, undefined, `sql adapter: no resource type ${t.resourceType}`);
      return new SqlTable(database, rt, t, registry);
    }),
    async close() {
      const opened = db;
      db = undefined;
      if (opened) await opened.then(close, () => undefined);
    },
  };
}
