/**
 * `scimd connection add|list|show|update|remove|test`: the remote SCIM endpoints the sync engine
 * pushes to and pulls from (src/sync/connections.ts). Credentials are read from files (never
 * given on the command line, where `ps` would show them) and never printed.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { CompatOptions } from '../client/compat.ts';
import type {
  AuthInput,
  ConnectionInput,
  ConnectionPatch,
  ConnectionTestResult,
  ConnectionView,
  SqlInput,
  TlsInput,
} from '../sync/connections.ts';
import type { SqlTableConfig } from '../sync/adapters/sql.ts';
import { tenantOption } from './client.ts';
import { addConnectionOptions, type ConnectionOptions } from './context.ts';
import { CliError, details, emit, table } from './output.ts';
import { withSync } from './sync-api.ts';

/** A file's content, for secrets and PEM files; `trim` drops the trailing newline of a token file. */
export function readFileOption(flag: string, path: string, trim = false): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return trim ? text.trim() : text;
}

const LIST_COMPAT = new Set(['disable', 'unfilterableAttributes']);

/** `--compat key=value`, repeatable: the value as JSON when it parses, else text (lists by commas). */
function collectCompat(value: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new CliError(`--compat must be key=value, e.g. maxMembersPerPatch=100; got "${value}"`);
  const key = value.slice(0, eq);
  const raw = value.slice(eq + 1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = LIST_COMPAT.has(key) ? raw.split(',').filter(Boolean) : raw;
  }
  if (LIST_COMPAT.has(key) && typeof parsed === 'string') parsed = [parsed];
  return { ...previous, [key]: parsed };
}

const intOption = (flag: string, min: number, max: number) => (value: string) => {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max))
    throw new CliError(`${flag} must be an integer from ${min} to ${max}; got "${value}"`);
  return n;
};

type FieldOptions = {
  name?: string;
  baseUrl?: string;
  /** false with --no-auth (commander's negated option). */
  auth?: boolean;
  bearerTokenFile?: string;
  oauthTokenUrl?: string;
  oauthClientId?: string;
  oauthClientSecretFile?: string;
  oauthScope?: string;
  oauthClientAuth?: 'basic' | 'body';
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  tlsPassphraseFile?: string;
  tlsServername?: string;
  tlsInsecure?: boolean;
  compat?: Record<string, unknown>;
  timeoutMs?: number;
  databaseUrlFile?: string;
  tablesFile?: string;
  resourceType?: string;
  table?: string;
  keyColumn?: string;
  keyAttribute?: string;
  column?: Record<string, string>;
  documentColumn?: string;
};

/** `--column name=attribute.path`, repeatable. */
function collectColumn(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0)
    throw new CliError(`--column must be column=attribute, e.g. given_name=name.givenName; got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function fieldOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'display name (default: the id)')
    .option('--base-url <url>', "the remote's SCIM base URL, e.g. https://customer.example/scim/v2")
    .option('--no-auth', 'send no credentials')
    .option('--bearer-token-file <path>', 'a file holding the bearer token')
    .option('--oauth-token-url <url>', 'OAuth 2.0 token endpoint (client credentials grant)')
    .option('--oauth-client-id <id>', 'OAuth client id')
    .option('--oauth-client-secret-file <path>', 'a file holding the OAuth client secret')
    .option('--oauth-scope <scope>', 'scope to ask for')
    .addOption(
      new Option('--oauth-client-auth <how>', 'client authentication at the token endpoint').choices([
        'basic',
        'body',
      ]),
    )
    .option('--tls-cert-file <path>', 'PEM client certificate (mutual TLS)')
    .option('--tls-key-file <path>', 'PEM private key of the client certificate')
    .option('--tls-passphrase-file <path>', 'a file holding the private key passphrase')
    .option('--tls-ca-file <path>', 'PEM CA certificate(s) to trust for the remote')
    .option('--tls-servername <name>', 'TLS server name when it differs from the URL host')
    .option('--tls-insecure', 'do not verify the remote certificate (tests only)')
    .option('--compat <key=value>', 'a compatibility switch (docs/client.md), repeatable', collectCompat)
    .option('--timeout-ms <ms>', 'per-request timeout (1-600000)', intOption('--timeout-ms', 1, 600_000))
    .option(
      '--database-url-file <path>',
      'sql: a file holding the database URL (postgres://… or pglite:/folder)',
    )
    .option('--tables-file <path>', 'sql: a JSON file with the tables (docs/adapters.md)')
    .option('--resource-type <type>', 'sql, one table: the resource type it holds (default User)')
    .option('--table <name>', 'sql, one table: table or schema.table')
    .option('--key-column <column>', 'sql, one table: the key column (the resource id there)')
    .option('--key-attribute <path>', "sql, one table: the attribute that makes a new row's key")
    .option(
      '--column <column=path>',
      'sql, one table: column ← SCIM attribute path, repeatable',
      collectColumn,
    )
    .option('--document-column <column>', 'sql, one table: a jsonb column for the whole resource');
}

/** The `sql` settings given by options, or undefined when none is given. */
function sqlOf(o: FieldOptions): SqlInput | undefined {
  const one =
    o.table !== undefined ||
    o.keyColumn !== undefined ||
    o.keyAttribute !== undefined ||
    o.column !== undefined ||
    o.documentColumn !== undefined ||
    o.resourceType !== undefined;
  if (one && o.tablesFile !== undefined)
    throw new CliError('give --tables-file or the one-table options, not both');
  const sql: SqlInput = {};
  if (o.databaseUrlFile !== undefined)
    sql.databaseUrl = readFileOption('--database-url-file', o.databaseUrlFile, true);
  if (o.tablesFile !== undefined) {
    try {
      sql.tables = JSON.parse(readFileOption('--tables-file', o.tablesFile)) as SqlTableConfig[];
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`--tables-file: ${o.tablesFile} is not JSON`);
    }
  } else if (one) {
    if (o.table === undefined || o.keyColumn === undefined)
      throw new CliError('one table needs --table and --key-column');
    const t: SqlTableConfig = {
      resourceType: o.resourceType ?? 'User',
      table: o.table,
      keyColumn: o.keyColumn,
      columns: o.column ?? {},
    };
    if (o.keyAttribute !== undefined) t.keyAttribute = o.keyAttribute;
    if (o.documentColumn !== undefined) t.documentColumn = o.documentColumn;
    sql.tables = [t];
  }
  return Object.keys(sql).length > 0 ? sql : undefined;
}

function authOf(o: FieldOptions): AuthInput | undefined {
  const oauth =
    o.oauthTokenUrl !== undefined ||
    o.oauthClientId !== undefined ||
    o.oauthClientSecretFile !== undefined ||
    o.oauthScope !== undefined ||
    o.oauthClientAuth !== undefined;
  const chosen = [o.auth === false, o.bearerTokenFile !== undefined, oauth].filter(Boolean).length;
  if (chosen > 1) throw new CliError('give one of --no-auth, --bearer-token-file or the --oauth-* options');
  if (o.auth === false) return { type: 'none' };
  if (o.bearerTokenFile !== undefined)
    return { type: 'bearer', token: readFileOption('--bearer-token-file', o.bearerTokenFile, true) };
  if (!oauth) return undefined;
  if (o.oauthTokenUrl === undefined || o.oauthClientId === undefined)
    throw new CliError('OAuth needs --oauth-token-url and --oauth-client-id');
  const auth: AuthInput = { type: 'oauth2', tokenUrl: o.oauthTokenUrl, clientId: o.oauthClientId };
  if (o.oauthClientSecretFile !== undefined)
    auth.clientSecret = readFileOption('--oauth-client-secret-file', o.oauthClientSecretFile, true);
  if (o.oauthScope !== undefined) auth.scope = o.oauthScope;
  if (o.oauthClientAuth !== undefined) auth.clientAuth = o.oauthClientAuth;
  return auth;
}

function tlsOf(o: FieldOptions): TlsInput | undefined {
  const tls: TlsInput = {};
  if (o.tlsCertFile !== undefined) tls.cert = readFileOption('--tls-cert-file', o.tlsCertFile);
  if (o.tlsKeyFile !== undefined) tls.key = readFileOption('--tls-key-file', o.tlsKeyFile);
  if (o.tlsPassphraseFile !== undefined)
    tls.passphrase = readFileOption('--tls-passphrase-file', o.tlsPassphraseFile, true);
  if (o.tlsCaFile !== undefined) tls.ca = readFileOption('--tls-ca-file', o.tlsCaFile);
  if (o.tlsServername !== undefined) tls.servername = o.tlsServername;
  if (o.tlsInsecure) tls.rejectUnauthorized = false;
  return Object.keys(tls).length > 0 ? tls : undefined;
}

function fieldsOf(o: FieldOptions): ConnectionPatch {
  const out: ConnectionPatch = {};
  if (o.name !== undefined) out.name = o.name;
  if (o.baseUrl !== undefined) out.baseUrl = o.baseUrl;
  const auth = authOf(o);
  if (auth) out.auth = auth;
  const tls = tlsOf(o);
  if (tls) out.tls = tls;
  if (o.compat !== undefined) out.compat = o.compat as CompatOptions;
  if (o.timeoutMs !== undefined) out.timeoutMs = o.timeoutMs;
  const sql = sqlOf(o);
  if (sql) out.sql = sql;
  return out;
}

function authText(v: ConnectionView['auth']): string {
  if (v.type === 'bearer') return `bearer token (${v.tokenSet ? 'set' : 'not set'})`;
  if (v.type === 'oauth2') {
    const scope = v.scope ? ` scope ${v.scope}` : '';
    return `oauth2 client ${v.clientId} at ${v.tokenUrl}${scope} (secret ${v.clientSecretSet ? 'set' : 'not set'})`;
  }
  return 'none';
}

export function connectionDetails(c: ConnectionView): string {
  const tls = c.tls
    ? [
        c.tls.certSet ? 'client certificate' : undefined,
        c.tls.keySet ? 'key' : undefined,
        c.tls.passphraseSet ? 'passphrase' : undefined,
        c.tls.caSet ? 'own CA' : undefined,
        c.tls.servername ? `servername ${c.tls.servername}` : undefined,
        c.tls.rejectUnauthorized === false ? 'NOT VERIFIED' : undefined,
      ]
        .filter(Boolean)
        .join(', ')
    : undefined;
  return details([
    ['id', c.id],
    ['tenant', c.tenant],
    ['name', c.name],
    ['kind', c.kind],
    [c.kind === 'sql' ? 'database' : 'base url', c.baseUrl],
    ['database url', c.sql ? (c.sql.databaseUrlSet ? 'set' : 'not set') : undefined],
    [
      'tables',
      c.sql?.tables
        .map(
          (t) =>
            `${t.resourceType} → ${t.table} (key ${t.keyColumn}${t.keyAttribute ? ` ← ${t.keyAttribute}` : ''}; ${[
              ...Object.entries(t.columns).map(([col, path]) => `${col} ← ${path}`),
              ...(t.documentColumn ? [`${t.documentColumn} ← the resource`] : []),
            ].join(', ')})`,
        )
        .join('; '),
    ],
    ['auth', c.kind === 'sql' ? undefined : authText(c.auth)],
    ['tls', tls],
    ['compat', c.compat ? JSON.stringify(c.compat) : undefined],
    ['timeout', c.timeoutMs !== undefined ? `${c.timeoutMs} ms` : undefined],
    ['created', c.created],
    ['updated', c.updated],
  ]);
}

export function testDetails(id: string, r: ConnectionTestResult): string {
  const c = r.capabilities;
  const yes = (b: boolean | undefined) => (b ? 'yes' : 'no');
  const limits = (pairs: [string, number | undefined][]) => {
    const set = pairs.filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`);
    return set.length ? ` (${set.join(', ')})` : '';
  };
  return details([
    ['connection', id],
    ['result', r.ok ? `ok in ${r.elapsedMs} ms` : `FAILED after ${r.elapsedMs} ms`],
    ['status', r.status?.toString()],
    ['error', r.error],
    [
      'filter',
      c ? (c.filter.supported ? `yes${limits([['maxResults', c.filter.maxResults]])}` : 'no') : undefined,
    ],
    ['patch', c ? yes(c.patch) : undefined],
    [
      'bulk',
      c
        ? c.bulk.supported
          ? `yes${limits([
              ['maxOperations', c.bulk.maxOperations],
              ['maxPayloadSize', c.bulk.maxPayloadSize],
            ])}`
          : 'no'
        : undefined,
    ],
    ['sort', c ? yes(c.sort) : undefined],
    ['etag', c ? yes(c.etag) : undefined],
    ['cursor paging', c ? yes(c.cursor) : undefined],
    ['max page size', c?.maxPageSize?.toString()],
    ['change password', c ? yes(c.changePassword) : undefined],
    ['resource types', r.resourceTypes?.map((t) => `${t.name} ${t.endpoint}`).join(', ')],
    [
      'access',
      r.access
        ? `${r.access.endpoint} readable${r.access.totalResults !== undefined ? ` (${r.access.totalResults} resources)` : ''}`
        : undefined,
    ],
  ]);
}

const CLEARABLE = ['tls', 'compat', 'timeoutMs'] as const;
type Base = ConnectionOptions & { tenant: string };

export function registerConnection(program: Command): void {
  const connection = program
    .command('connection')
    .description('Manage the remote SCIM endpoints the sync engine pushes to and pulls from');

  addConnectionOptions(
    fieldOptions(
      connection
        .command('add')
        .description('Add a connection (credentials are read from files and never shown again)')
        .addOption(tenantOption())
        .option('--id <id>', 'connection id (default: a random UUID)')
        .addOption(
          new Option('--kind <kind>', 'scim (a SCIM server) or sql (an application table)')
            .choices(['scim', 'sql'])
            .default('scim'),
        ),
    ),
  ).action(async (opts: Base & FieldOptions & { id?: string; kind: 'scim' | 'sql' }) => {
    if (opts.kind === 'sql') {
      if (opts.databaseUrlFile === undefined)
        throw new CliError("required option '--database-url-file <path>' not specified (kind sql)");
    } else if (opts.baseUrl === undefined)
      throw new CliError("required option '--base-url <url>' not specified");
    const input: ConnectionInput = { ...fieldsOf(opts) };
    if (opts.kind === 'sql') input.kind = 'sql';
    if (opts.id !== undefined) input.id = opts.id;
    const c = await withSync(opts, (api) => api.createConnection(opts.tenant, input));
    emit(opts.json, c, () => connectionDetails(c));
  });

  addConnectionOptions(
    connection.command('list').description("List a tenant's connections").addOption(tenantOption()),
  ).action(async (opts: Base) => {
    const list = await withSync(opts, (api) => api.listConnections(opts.tenant));
    emit(opts.json, list, () =>
      table(
        ['ID', 'NAME', 'BASE URL', 'AUTH', 'CREATED'],
        list.map((c) => [c.id, c.name, c.baseUrl, c.auth.type, c.created]),
      ),
    );
  });

  addConnectionOptions(
    connection.command('show <id>').description('Show one connection').addOption(tenantOption()),
  ).action(async (id: string, opts: Base) => {
    const c = await withSync(opts, (api) => api.getConnection(opts.tenant, id));
    emit(opts.json, c, () => connectionDetails(c));
  });

  addConnectionOptions(
    fieldOptions(
      connection
        .command('update <id>')
        .description(
          'Change some fields of a connection (TLS files replace one part each; an OAuth change without --oauth-client-secret-file keeps the secret)',
        )
        .addOption(tenantOption())
        .addOption(
          new Option('--clear <field>', 'unset an optional field, repeatable')
            .choices([...CLEARABLE])
            .argParser((v: string, prev: string[] | undefined) => {
              if (!(CLEARABLE as readonly string[]).includes(v))
                throw new CliError(`--clear must be one of ${CLEARABLE.join(', ')}; got "${v}"`);
              return [...(prev ?? []), v];
            }),
        ),
    ),
  ).action(async (id: string, opts: Base & FieldOptions & { clear?: (typeof CLEARABLE)[number][] }) => {
    const patch = fieldsOf(opts);
    for (const f of opts.clear ?? []) {
      if (patch[f] !== undefined) throw new CliError(`--clear ${f} conflicts with a new value for it`);
      patch[f] = null;
    }
    if (Object.keys(patch).length === 0) throw new CliError('nothing to update: give at least one option');
    const c = await withSync(opts, (api) => api.updateConnection(opts.tenant, id, patch));
    emit(opts.json, c, () => connectionDetails(c));
  });

  addConnectionOptions(
    connection
      .command('remove <id>')
      .description('Remove a connection (refused while a flow uses it)')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: Base) => {
    await withSync(opts, (api) => api.removeConnection(opts.tenant, id));
    emit(
      opts.json,
      { tenant: opts.tenant, id, removed: true },
      () => `Removed connection ${id} of tenant ${opts.tenant}`,
    );
  });

  addConnectionOptions(
    connection
      .command('test <id>')
      .description("Call the remote's discovery endpoints and list one resource; exits 1 when that fails")
      .addOption(tenantOption()),
  ).action(async (id: string, opts: Base) => {
    const r = await withSync(opts, (api) => api.testConnection(opts.tenant, id));
    if (!r.ok && !opts.json) throw new CliError(`connection ${id}: ${r.error ?? 'test failed'}`);
    emit(opts.json, r, () => testDetails(id, r));
    if (!r.ok) process.exitCode = 1;
  });
}
