/**
 * Connections of the sync engine: remote SCIM service providers a tenant pushes to or pulls from
 * (src/sync/types.ts Connection), stored in sync_connections. The credentials (bearer token, OAuth
 * client secret) and the TLS private key and passphrase are write-only: views say whether one is
 * set, never what it is. `get` returns them for the engine; `clientFor` builds the SCIM client the
 * engine calls the remote with; `test` runs the remote's discovery and summarizes it.
 */
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import type { AuthConfig } from '../client/auth.ts';
import { ScimClient, type ScimClientOptions } from '../client/client.ts';
import type { CompatOptions, Feature } from '../client/compat.ts';
import { ScimAuthError, ScimClientError, ScimNetworkError } from '../client/errors.ts';
import { ScimError } from '../scim/errors.ts';
import { secretBoxFor, type SecretBox } from '../security/secret-box.ts';
import type { Database, Queryable } from '../store/db.ts';
import { adapterClient, adapterRegistry } from './adapters/index.ts';
import {
  checkSqlConfig,
  describeDatabaseUrl,
  sqlView,
  type SqlAdapterConfig,
  type SqlAdapterView,
} from './adapters/sql.ts';
import {
  bad,
  boolean,
  httpUrl,
  integer,
  isObject,
  nonEmptyString,
  object,
  oneOf,
  stringArray,
} from './config-check.ts';
import type { Connection, ConnectionTls } from './types.ts';

type OAuth2 = Extract<AuthConfig, { type: 'oauth2' }>;

/**
 * Credentials as a caller gives them. In a PATCH, an oauth2 `auth` without `clientSecret` keeps
 * the stored secret (it is never shown, so it cannot be sent back).
 */
export type AuthInput =
  Exclude<AuthConfig, OAuth2> | (Omit<OAuth2, 'clientSecret'> & { clientSecret?: string });

/** TLS settings as a caller gives them; in a PATCH each field given replaces, null clears, absent keeps. */
export type TlsInput = { [K in keyof ConnectionTls]?: ConnectionTls[K] | null };

/** A `sql` connection's settings as a caller gives them; in a PATCH a missing databaseUrl keeps the stored one. */
export type SqlInput = Omit<SqlAdapterConfig, 'databaseUrl' | 'tables'> & {
  databaseUrl?: string;
  tables?: SqlAdapterConfig['tables'];
};

/** What a caller gives to create a connection. */
export interface ConnectionInput {
  /** Default: a random UUID. 1-64 of A-Z a-z 0-9 . _ - */
  id?: string;
  /** Default: the id. */
  name?: string;
  /** `scim` (default) or `sql` (a last-mile table adapter: give `sql`, not baseUrl/auth/tls). */
  kind?: 'scim' | 'sql';
  /** Required for kind scim; for sql it is derived from sql.databaseUrl (without credentials). */
  baseUrl?: string;
  sql?: SqlInput;
  /** Default: {type: 'none'}. */
  auth?: AuthInput;
  tls?: TlsInput | null;
  compat?: CompatOptions | null;
  timeoutMs?: number | null;
}

/** PATCH: any subset; null clears an optional field. */
export interface ConnectionPatch {
  name?: string;
  /** Cannot change; accepted when it is the stored kind. */
  kind?: 'scim' | 'sql';
  sql?: SqlInput;
  baseUrl?: string;
  auth?: AuthInput;
  tls?: TlsInput | null;
  compat?: CompatOptions | null;
  timeoutMs?: number | null;
}

/** Credentials as views show them: which kind, the non-secret parts, and whether the secret is set. */
export type AuthView =
  | { type: 'none' }
  | { type: 'bearer'; tokenSet: boolean }
  | {
      type: 'oauth2';
      tokenUrl: string;
      clientId: string;
      scope?: string;
      params?: Record<string, string>;
      clientAuth?: 'basic' | 'body';
      expirySkewSeconds?: number;
      clientSecretSet: boolean;
    };

export interface TlsView {
  certSet: boolean;
  keySet: boolean;
  caSet: boolean;
  passphraseSet: boolean;
  servername?: string;
  rejectUnauthorized?: boolean;
}

/** A connection as the admin API and the CLI show it: no secret values. */
export interface ConnectionView {
  tenant: string;
  id: string;
  name: string;
  baseUrl: string;
  /** Only for adapters: `sql` (a SCIM connection's view has no kind). */
  kind?: 'sql';
  /** The adapter's settings without the database URL (`databaseUrlSet`). */
  sql?: SqlAdapterView;
  auth: AuthView;
  tls?: TlsView;
  compat?: CompatOptions;
  timeoutMs?: number;
  created: string;
  updated: string;
}

/** What `test` found out about the remote. */
export interface ConnectionTestResult {
  ok: boolean;
  /** The remote's HTTP status when it refused (or the token endpoint's). */
  status?: number;
  error?: string;
  /** Milliseconds the discovery took. */
  elapsedMs: number;
  capabilities?: {
    filter: { supported: boolean; maxResults?: number };
    patch: boolean;
    bulk: { supported: boolean; maxOperations?: number; maxPayloadSize?: number };
    sort: boolean;
    etag: boolean;
    cursor: boolean;
    changePassword: boolean;
    maxPageSize?: number;
  };
  resourceTypes?: { name: string; endpoint: string }[];
  /**
   * The credentials checked by listing one resource of the first resource type (discovery
   * endpoints often answer without authentication).
   */
  access?: { endpoint: string; totalResults?: number };
}

interface ConnectionRow {
  tenant_id: string;
  id: string;
  name: string;
  base_url: string;
  auth: AuthConfig;
  tls: ConnectionTls | null;
  compat: CompatOptions | null;
  timeout_ms: number | null;
  kind: string;
  adapter: SqlAdapterConfig | null;
  created: Date;
  updated: Date;
}

const COLUMNS =
  'tenant_id, id, name, base_url, auth, tls, compat, timeout_ms, kind, adapter, created, updated';
const ID = /^[A-Za-z0-9._-]{1,64}$/;
export const MAX_TIMEOUT_MS = 600_000;
const FEATURES: readonly Feature[] = ['patch', 'bulk', 'filter', 'sort', 'etag', 'cursor'];

/**
 * The secrets of a connection as stored (sealed, src/security/secret-box.ts) or as used: `box.seal`
 * on write, `box.open` on read. The place is the row (tenant, id) and the field (`auth.token`, ...),
 * as src/security/stored-secrets.ts lists them.
 */
function mapSecrets<T extends Pick<Connection, 'auth' | 'tls' | 'sql'>>(
  c: T,
  tenant: string,
  id: string,
  f: (value: string, place: { table: string; tenant: string; row: string; field: string }) => string,
): T {
  const at = (field: string) => ({ table: 'sync_connections', tenant, row: id, field });
  const out = { ...c };
  if (c.auth.type === 'bearer') out.auth = { ...c.auth, token: f(c.auth.token, at('auth.token')) };
  else if (c.auth.type === 'oauth2')
    out.auth = { ...c.auth, clientSecret: f(c.auth.clientSecret, at('auth.clientSecret')) };
  if (c.tls && (c.tls.key !== undefined || c.tls.passphrase !== undefined)) {
    out.tls = { ...c.tls };
    if (c.tls.key !== undefined) out.tls.key = f(c.tls.key, at('tls.key'));
    if (c.tls.passphrase !== undefined) out.tls.passphrase = f(c.tls.passphrase, at('tls.passphrase'));
  }
  if (c.sql) out.sql = { ...c.sql, databaseUrl: f(c.sql.databaseUrl, at('adapter.databaseUrl')) };
  return out;
}

/** The connection of a row; with `box` its secrets opened (without, only fit for views). */
function toConnection(r: ConnectionRow, box?: SecretBox): Connection {
  const c: Connection = {
    tenant: r.tenant_id,
    id: r.id,
    name: r.name,
    baseUrl: r.base_url,
    auth: r.auth,
    created: r.created,
    updated: r.updated,
  };
  if (r.tls !== null) c.tls = r.tls;
  if (r.compat !== null) c.compat = r.compat;
  if (r.timeout_ms !== null) c.timeoutMs = r.timeout_ms;
  if (r.kind === 'sql' && r.adapter !== null) {
    c.kind = 'sql';
    c.sql = r.adapter;
  }
  return box ? mapSecrets(c, r.tenant_id, r.id, (v, p) => (v === '' ? v : box.open(v, p))) : c;
}

export function authView(auth: AuthConfig): AuthView {
  if (auth.type === 'bearer') return { type: 'bearer', tokenSet: auth.token !== '' };
  if (auth.type === 'oauth2') {
    const v: Extract<AuthView, { type: 'oauth2' }> = {
      type: 'oauth2',
      tokenUrl: auth.tokenUrl,
      clientId: auth.clientId,
      clientSecretSet: auth.clientSecret !== '',
    };
    if (auth.scope !== undefined) v.scope = auth.scope;
    if (auth.params !== undefined) v.params = auth.params;
    if (auth.clientAuth !== undefined) v.clientAuth = auth.clientAuth;
    if (auth.expirySkewSeconds !== undefined) v.expirySkewSeconds = auth.expirySkewSeconds;
    return v;
  }
  return { type: 'none' };
}

export function connectionView(c: Connection): ConnectionView {
  const v: ConnectionView = {
    tenant: c.tenant,
    id: c.id,
    name: c.name,
    baseUrl: c.baseUrl,
    ...(c.kind === 'sql' && c.sql ? { kind: 'sql' as const, sql: sqlView(c.sql) } : {}),
    auth: authView(c.auth),
    created: c.created.toISOString(),
    updated: c.updated.toISOString(),
  };
  if (c.tls) {
    v.tls = {
      certSet: c.tls.cert !== undefined,
      keySet: c.tls.key !== undefined,
      caSet: c.tls.ca !== undefined,
      passphraseSet: c.tls.passphrase !== undefined,
    };
    if (c.tls.servername !== undefined) v.tls.servername = c.tls.servername;
    if (c.tls.rejectUnauthorized !== undefined) v.tls.rejectUnauthorized = c.tls.rejectUnauthorized;
  }
  if (c.compat !== undefined) v.compat = c.compat;
  if (c.timeoutMs !== undefined) v.timeoutMs = c.timeoutMs;
  return v;
}

/** The SCIM client the engine (and `test`) calls a connection's remote with. */
export function clientFor(connection: Connection, overrides: Partial<ScimClientOptions> = {}): ScimClient {
  if (connection.kind === 'sql') return adapterClient(connection, overrides);
  const options: ScimClientOptions = {
    baseUrl: connection.baseUrl,
    auth: connection.auth,
    userAgent: 'scimd-sync/0.1',
  };
  if (connection.tls) options.tls = connection.tls;
  if (connection.compat) options.compat = connection.compat;
  if (connection.timeoutMs !== undefined) options.timeoutMs = connection.timeoutMs;
  return new ScimClient({ ...options, ...overrides });
}

// ------------------------------------------------------------------------------ validation

/** No blanks or control characters: the value goes into an HTTP header. */
function headerSafe(v: unknown, what: string): string {
  const s = nonEmptyString(v, what, 8000);
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  if (/[\s\x00-\x1f\x7f]/.test(s)) throw bad(`${what} must not contain blanks or control characters`);
  return s;
}

/** `previous`: the stored credentials, whose oauth2 client secret a patch without one keeps. */
function checkAuth(v: unknown, previous?: AuthConfig): AuthConfig {
  if (!isObject(v)) throw bad('auth must be an object with a type: "none", "bearer" or "oauth2"');
  const type = oneOf(v.type, 'auth.type', ['none', 'bearer', 'oauth2'] as const);
  if (type === 'none') {
    object(v, 'auth', ['type']);
    return { type };
  }
  if (type === 'bearer') {
    object(v, 'auth', ['type', 'token']);
    if (v.token === undefined) throw bad('auth.token is required for bearer auth');
    return { type, token: headerSafe(v.token, 'auth.token') };
  }
  object(v, 'auth', [
    'type',
    'tokenUrl',
    'clientId',
    'clientSecret',
    'scope',
    'params',
    'clientAuth',
    'expirySkewSeconds',
  ]);
  const out: OAuth2 = {
    type,
    tokenUrl: httpUrl(v.tokenUrl, 'auth.tokenUrl', { bare: false }),
    clientId: nonEmptyString(v.clientId, 'auth.clientId', 1000),
    clientSecret: '',
  };
  if (v.clientSecret !== undefined)
    out.clientSecret = nonEmptyString(v.clientSecret, 'auth.clientSecret', 8000);
  else if (previous?.type === 'oauth2') out.clientSecret = previous.clientSecret;
  else throw bad('auth.clientSecret is required for oauth2 auth');
  if (v.scope !== undefined) out.scope = nonEmptyString(v.scope, 'auth.scope', 2000);
  if (v.params !== undefined) {
    if (!isObject(v.params) || Object.values(v.params).some((x) => typeof x !== 'string'))
      throw bad('auth.params must be an object of string values');
    out.params = v.params as Record<string, string>;
  }
  if (v.clientAuth !== undefined)
    out.clientAuth = oneOf(v.clientAuth, 'auth.clientAuth', ['basic', 'body'] as const);
  if (v.expirySkewSeconds !== undefined)
    out.expirySkewSeconds = integer(v.expirySkewSeconds, 'auth.expirySkewSeconds', 0, 3600);
  return out;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

function certificates(v: unknown, what: string): X509Certificate[] {
  const text = nonEmptyString(v, what, 200_000);
  const blocks = [...text.matchAll(PEM_BLOCK)].filter((m) => m[1] === 'CERTIFICATE');
  if (blocks.length === 0) throw bad(`${what} must be PEM: one or more -----BEGIN CERTIFICATE----- blocks`);
  return blocks.map((m) => {
    try {
      return new X509Certificate(m[0]);
    } catch {
      throw bad(`${what} holds a certificate that cannot be read`);
    }
  });
}

const TLS_KEYS = ['cert', 'key', 'ca', 'passphrase', 'servername', 'rejectUnauthorized'] as const;

/** Merges a TLS patch over the stored settings (null clears a field) and checks the result. */
function checkTls(v: unknown, previous?: ConnectionTls): ConnectionTls | undefined {
  const given = object(v, 'tls', TLS_KEYS);
  const merged: Record<string, unknown> = { ...previous };
  for (const k of TLS_KEYS) {
    if (given[k] === null) delete merged[k];
    else if (given[k] !== undefined) merged[k] = given[k];
  }
  const out: ConnectionTls = {};
  let cert: X509Certificate | undefined;
  if (merged.cert !== undefined) {
    cert = certificates(merged.cert, 'tls.cert')[0];
    out.cert = merged.cert as string;
  }
  if (merged.passphrase !== undefined)
    out.passphrase = nonEmptyString(merged.passphrase, 'tls.passphrase', 1000);
  if (merged.key !== undefined) {
    const key = nonEmptyString(merged.key, 'tls.key', 100_000);
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key))
      throw bad('tls.key must be a PEM private key (-----BEGIN ... PRIVATE KEY-----)');
    let parsed;
    try {
      parsed = createPrivateKey({ key, passphrase: out.passphrase });
    } catch {
      throw bad(
        out.passphrase === undefined
          ? 'tls.key cannot be read (an encrypted key needs tls.passphrase)'
          : 'tls.key cannot be read with tls.passphrase',
      );
    }
    if (cert && !cert.checkPrivateKey(parsed)) throw bad('tls.key is not the private key of tls.cert');
    out.key = key;
  }
  if ((out.cert === undefined) !== (out.key === undefined))
    throw bad('tls.cert and tls.key go together (a client certificate needs its private key)');
  if (out.passphrase !== undefined && out.key === undefined) throw bad('tls.passphrase needs tls.key');
  if (merged.ca !== undefined) {
    certificates(merged.ca, 'tls.ca');
    out.ca = merged.ca as string;
  }
  if (merged.servername !== undefined)
    out.servername = nonEmptyString(merged.servername, 'tls.servername', 255);
  if (merged.rejectUnauthorized !== undefined)
    out.rejectUnauthorized = boolean(merged.rejectUnauthorized, 'tls.rejectUnauthorized');
  return Object.keys(out).length === 0 ? undefined : out;
}

const COMPAT_KEYS = [
  'patchRequiresPath',
  'maxMembersPerPatch',
  'membersAttribute',
  'multiValueRemove',
  'unfilterableAttributes',
  'noFilterOnExternalId',
  'disable',
  'contentType',
  'maxPageSize',
  'maxConcurrentRequests',
] as const satisfies readonly (keyof CompatOptions)[];

/** The known compatibility switches (src/client/compat.ts), each of its type. */
export function checkCompat(v: unknown): CompatOptions {
  const c = object(v, 'compat', COMPAT_KEYS);
  const out: CompatOptions = {};
  if (c.patchRequiresPath !== undefined)
    out.patchRequiresPath = boolean(c.patchRequiresPath, 'compat.patchRequiresPath');
  if (c.maxMembersPerPatch !== undefined)
    out.maxMembersPerPatch = integer(c.maxMembersPerPatch, 'compat.maxMembersPerPatch', 1, 1_000_000);
  if (c.membersAttribute !== undefined)
    out.membersAttribute = nonEmptyString(c.membersAttribute, 'compat.membersAttribute', 200);
  if (c.multiValueRemove !== undefined)
    out.multiValueRemove = oneOf(c.multiValueRemove, 'compat.multiValueRemove', [
      'filter',
      'valueArray',
    ] as const);
  if (c.unfilterableAttributes !== undefined)
    out.unfilterableAttributes = stringArray(c.unfilterableAttributes, 'compat.unfilterableAttributes');
  if (c.noFilterOnExternalId !== undefined)
    out.noFilterOnExternalId = boolean(c.noFilterOnExternalId, 'compat.noFilterOnExternalId');
  if (c.disable !== undefined) {
    if (!Array.isArray(c.disable)) throw bad('compat.disable must be an array');
    out.disable = [...new Set(c.disable.map((f) => oneOf(f, 'compat.disable[]', FEATURES)))];
  }
  if (c.contentType !== undefined) {
    const ct = nonEmptyString(c.contentType, 'compat.contentType', 200);
    if (!/^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/.test(ct)) throw bad('compat.contentType must be a media type');
    out.contentType = ct;
  }
  if (c.maxPageSize !== undefined)
    out.maxPageSize = integer(c.maxPageSize, 'compat.maxPageSize', 1, 1_000_000);
  if (c.maxConcurrentRequests !== undefined)
    out.maxConcurrentRequests = integer(c.maxConcurrentRequests, 'compat.maxConcurrentRequests', 1, 64);
  return out;
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !ID.test(id)) throw bad('id must be 1-64 characters of A-Z a-z 0-9 . _ -');
  return id;
}

/** Fields other than id and dates, checked; `previous` is the stored connection on PATCH. */
function checkFields(
  input: ConnectionPatch,
  previous?: Connection,
): Omit<Connection, 'tenant' | 'id' | 'created' | 'updated'> {
  const name = input.name !== undefined ? nonEmptyString(input.name, 'name', 200) : previous?.name;
  const kind =
    input.kind !== undefined
      ? oneOf(input.kind, 'kind', ['scim', 'sql'] as const)
      : (previous?.kind ?? 'scim');
  if (previous && kind !== (previous.kind ?? 'scim'))
    throw new ScimError(
      400,
      'mutability',
      `kind cannot change (${previous.kind ?? 'scim'}): create another connection`,
    );
  if (kind === 'sql') {
    for (const k of ['baseUrl', 'auth', 'tls', 'timeoutMs'] as const) {
      if (input[k] !== undefined && input[k] !== null)
        throw bad(
          `${k} is not for sql connections (the database URL with its credentials goes in sql.databaseUrl)`,
        );
    }
    if (input.sql === undefined && !previous) throw bad('sql is required for sql connections');
    const sql =
      input.sql !== undefined ? checkSqlConfig(adapterRegistry(), input.sql, previous?.sql) : previous!.sql!;
    if (name === undefined) throw bad('name is required');
    const out: Omit<Connection, 'tenant' | 'id' | 'created' | 'updated'> = {
      name,
      baseUrl: describeDatabaseUrl(sql.databaseUrl),
      auth: { type: 'none' },
      kind: 'sql',
      sql,
    };
    const compat = patchedField(input.compat, previous?.compat, checkCompat);
    if (compat) out.compat = compat;
    return out;
  }
  if (input.sql !== undefined) throw bad('sql is only for connections of kind sql');
  const baseUrl = input.baseUrl !== undefined ? httpUrl(input.baseUrl, 'baseUrl') : previous?.baseUrl;
  if (name === undefined || baseUrl === undefined) throw bad('baseUrl is required');
  const out: Omit<Connection, 'tenant' | 'id' | 'created' | 'updated'> = {
    name,
    baseUrl,
    auth:
      input.auth !== undefined ? checkAuth(input.auth, previous?.auth) : (previous?.auth ?? { type: 'none' }),
  };
  const tls = patchedField(input.tls, previous?.tls, (v) => checkTls(v, previous?.tls));
  if (tls) out.tls = tls;
  const compat = patchedField(input.compat, previous?.compat, checkCompat);
  if (compat) out.compat = compat;
  const timeoutMs = patchedField(input.timeoutMs, previous?.timeoutMs, (v) =>
    integer(v, 'timeoutMs', 1, MAX_TIMEOUT_MS),
  );
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  if (out.tls && !baseUrl.startsWith('https:') && (out.tls.cert || out.tls.ca))
    throw bad('tls certificates need an https baseUrl');
  return out;
}

/** An optional field of a create or PATCH body: null removes it, a value is checked, absent keeps it. */
function patchedField<T>(given: unknown, previous: T | undefined, check: (v: unknown) => T): T | undefined {
  if (given === null) return undefined;
  return given !== undefined ? check(given) : previous;
}

const PATCH_KEYS = ['name', 'kind', 'baseUrl', 'auth', 'tls', 'compat', 'timeoutMs', 'sql'] as const;

// ------------------------------------------------------------------------------ service

export class ConnectionService {
  constructor(private readonly db: Database) {}

  /** Seals and opens the stored credentials. */
  private get box(): SecretBox {
    return secretBoxFor(this.db);
  }

  private async requireTenant(q: Queryable, tenant: string): Promise<void> {
    const res = await q.query('SELECT 1 FROM tenants WHERE id = $1', [tenant]);
    if (res.rows.length === 0) throw ScimError.notFound(`No tenant ${tenant}`);
  }

  /** The connection with its secrets, or undefined. */
  async find(tenant: string, id: string, q: Queryable = this.db): Promise<Connection | undefined> {
    const res = await q.query<ConnectionRow>(
      `SELECT ${COLUMNS} FROM sync_connections WHERE tenant_id = $1 AND id = $2`,
      [tenant, id],
    );
    return res.rows[0] ? toConnection(res.rows[0], this.box) : undefined;
  }

  /** The connection with its secrets (for the engine); 404 when the tenant or the connection is unknown. */
  async get(tenant: string, id: string): Promise<Connection> {
    await this.requireTenant(this.db, tenant);
    const c = await this.find(tenant, id);
    if (!c) throw ScimError.notFound(`No connection ${id} in tenant ${tenant}`);
    return c;
  }

  /** The connection without secrets (admin API, CLI): shown without opening them. */
  async view(tenant: string, id: string): Promise<ConnectionView> {
    await this.requireTenant(this.db, tenant);
    const res = await this.db.query<ConnectionRow>(
      `SELECT ${COLUMNS} FROM sync_connections WHERE tenant_id = $1 AND id = $2`,
      [tenant, id],
    );
    if (!res.rows[0]) throw ScimError.notFound(`No connection ${id} in tenant ${tenant}`);
    return connectionView(toConnection(res.rows[0]));
  }

  async list(tenant: string): Promise<ConnectionView[]> {
    await this.requireTenant(this.db, tenant);
    const res = await this.db.query<ConnectionRow>(
      `SELECT ${COLUMNS} FROM sync_connections WHERE tenant_id = $1 ORDER BY created, id`,
      [tenant],
    );
    return res.rows.map((r) => connectionView(toConnection(r)));
  }

  async create(tenant: string, input: ConnectionInput): Promise<ConnectionView> {
    if (!isObject(input)) throw bad('The body must be an object');
    object(input, 'connection', ['id', ...PATCH_KEYS]);
    const id = input.id === undefined ? randomUUID() : checkId(input.id);
    if (input.baseUrl === undefined && input.kind !== 'sql') throw bad('baseUrl is required');
    const fields = checkFields({ ...input, name: (input as ConnectionInput).name ?? id });
    return this.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      const res = await tx.query(
        `INSERT INTO sync_connections (tenant_id, id, name, base_url, auth, tls, compat, timeout_ms, kind, adapter)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (tenant_id, id) DO NOTHING`,
        [tenant, id, ...values(fields, this.box, tenant, id)],
      );
      if (res.rowCount === 0) throw ScimError.conflict(`Tenant ${tenant} already has a connection ${id}`);
      return connectionView((await this.find(tenant, id, tx))!);
    });
  }

  async patch(tenant: string, id: string, patch: ConnectionPatch): Promise<ConnectionView> {
    if (!isObject(patch)) throw bad('The body must be an object');
    object(patch, 'connection', PATCH_KEYS);
    if (Object.values(patch).every((v) => v === undefined))
      throw bad('Nothing to change: give at least one field');
    for (const k of ['name', 'baseUrl', 'auth', 'kind', 'sql'] as const) {
      if (patch[k] === null) throw bad(`${k} cannot be cleared`);
    }
    return this.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      const res = await tx.query<ConnectionRow>(
        `SELECT ${COLUMNS} FROM sync_connections WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
        [tenant, id],
      );
      if (!res.rows[0]) throw ScimError.notFound(`No connection ${id} in tenant ${tenant}`);
      const fields = checkFields(patch, toConnection(res.rows[0], this.box));
      await tx.query(
        `UPDATE sync_connections SET name = $3, base_url = $4, auth = $5, tls = $6, compat = $7,
           timeout_ms = $8, kind = $9, adapter = $10, updated = clock_timestamp()
         WHERE tenant_id = $1 AND id = $2`,
        [tenant, id, ...values(fields, this.box, tenant, id)],
      );
      return connectionView((await this.find(tenant, id, tx))!);
    });
  }

  /** Removes a connection no flow uses (409 naming the flows that still do). */
  async delete(tenant: string, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      // The row lock makes a concurrent flow insert (FOR KEY SHARE by its foreign key) wait for us.
      const res = await tx.query(
        'SELECT 1 FROM sync_connections WHERE tenant_id = $1 AND id = $2 FOR UPDATE',
        [tenant, id],
      );
      if (res.rows.length === 0) throw ScimError.notFound(`No connection ${id} in tenant ${tenant}`);
      const flows = await tx.query<{ id: string }>(
        'SELECT id FROM sync_flows WHERE tenant_id = $1 AND connection_id = $2 ORDER BY id',
        [tenant, id],
      );
      if (flows.rows.length > 0) {
        throw new ScimError(
          409,
          'mutability',
          `Connection ${id} is used by flow(s) ${flows.rows.map((r) => r.id).join(', ')}: remove them first`,
        );
      }
      await tx.query('DELETE FROM sync_connections WHERE tenant_id = $1 AND id = $2', [tenant, id]);
    });
  }

  /**
   * Calls the remote's discovery endpoints (/ServiceProviderConfig, /ResourceTypes, /Schemas) with
   * the connection's credentials, once, and summarizes what it offers. Failures are answers
   * (ok: false, the reason), not errors; only an unknown connection throws.
   */
  async test(tenant: string, id: string): Promise<ConnectionTestResult> {
    const connection = await this.get(tenant, id);
    return testConnection(connection);
  }
}

/** `ConnectionService.test` on a connection at hand (also for a connection not stored yet). */
export async function testConnection(connection: Connection): Promise<ConnectionTestResult> {
  const client = clientFor(connection, {
    retry: { maxAttempts: 1 },
    timeoutMs: Math.min(connection.timeoutMs ?? 15_000, 30_000),
  });
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let found: Pick<ConnectionTestResult, 'capabilities' | 'resourceTypes'> = {};
  try {
    const discovery = await client.discover({ refresh: true });
    const caps = await client.capabilities();
    found = {
      capabilities: {
        filter: caps.filter,
        patch: caps.patch,
        bulk: caps.bulk,
        sort: caps.sort,
        etag: caps.etag,
        cursor: caps.pagination.cursor,
        changePassword: caps.changePassword,
      },
      resourceTypes: discovery.resourceTypes.map((rt) => ({ name: rt.name, endpoint: rt.endpoint })),
    };
    if (caps.pagination.maxPageSize !== undefined)
      found.capabilities!.maxPageSize = caps.pagination.maxPageSize;
    const result: ConnectionTestResult = { ok: true, elapsedMs: 0, ...found };
    // Discovery endpoints often answer without credentials: one listing checks them.
    const first = discovery.resourceTypes[0];
    if (first) {
      const page = await client.resources(first.name).list({ count: 1, attributes: ['id'] });
      result.access = { endpoint: first.endpoint };
      if (page.totalResults !== undefined) result.access.totalResults = page.totalResults;
    }
    result.elapsedMs = elapsed();
    return result;
  } catch (err) {
    const result: ConnectionTestResult = { ok: false, elapsedMs: elapsed(), error: describeFailure(err) };
    if (err instanceof ScimClientError) result.status = err.status;
    else if (err instanceof ScimAuthError && err.status !== undefined) result.status = err.status;
    return { ...result, ...found };
  } finally {
    client.close();
  }
}

function describeFailure(err: unknown): string {
  if (err instanceof ScimClientError || err instanceof ScimNetworkError) return err.message;
  if (err instanceof ScimAuthError) return `OAuth token request failed: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The row's values of a connection, its secrets sealed. */
function values(
  fields: Omit<Connection, 'tenant' | 'id' | 'created' | 'updated'>,
  box: SecretBox,
  tenant: string,
  id: string,
): unknown[] {
  const c = mapSecrets(fields, tenant, id, (v, p) => (v === '' ? v : box.seal(v, p)));
  return [
    c.name,
    c.baseUrl,
    JSON.stringify(c.auth),
    c.tls ? JSON.stringify(c.tls) : null,
    c.compat ? JSON.stringify(c.compat) : null,
    c.timeoutMs ?? null,
    c.kind ?? 'scim',
    c.sql ? JSON.stringify(c.sql) : null,
  ];
}
