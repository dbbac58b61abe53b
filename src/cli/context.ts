/**
 * How an admin command reaches the tenancy data. Two modes behind one interface, answering the same
 * view objects (the admin API returns AdminService views as JSON):
 *   direct  opens the store itself (DATABASE_URL, or the embedded store in --data-dir), so an
 *           operator can create tenants, clients and tokens before the first start;
 *   remote  (--url) calls a running server's /admin/v1 with a bearer token, because the embedded
 *           store cannot be opened by two processes at once.
 */
import { Command, Option } from 'commander';
import {
  AdminService,
  type ClientView,
  type NewClient,
  type TenantView,
  type TokenView,
} from '../admin/service.ts';
import { createServerRegistry } from '../registry.ts';
import type { Database } from '../store/db.ts';
import { openDatabase, StoreBusyError, type StoreOptions } from '../store/open.ts';
import type { SchemaRegistry } from '../scim/schema/registry.ts';
import { TenantDirectory } from '../tenancy/directory.ts';
import type { TenantSettings } from '../tenancy/settings.ts';
import { adminHttp, type AdminCall } from './admin-http.ts';
import { CliError } from './output.ts';

export type IssuedToken = TokenView & { token: string };

export interface AdminApi {
  listTenants(): Promise<TenantView[]>;
  getTenant(id: string): Promise<TenantView>;
  createTenant(input: { id: string; name?: string; settings?: TenantSettings }): Promise<TenantView>;
  deleteTenant(id: string): Promise<void>;
  listClients(tenant: string): Promise<ClientView[]>;
  createClient(tenant: string, input: NewClient): Promise<ClientView>;
  deleteClient(tenant: string, id: string): Promise<void>;
  issueToken(
    tenant: string,
    client: string,
    input: { expiresInSeconds?: number; description?: string },
  ): Promise<IssuedToken>;
  /** With a client: that client's tokens (the client must exist). */
  listTokens(tenant: string, client?: string): Promise<TokenView[]>;
  revokeToken(tenant: string, id: string): Promise<TokenView>;
  close(): Promise<void>;
}

/** Options every admin command accepts (see addConnectionOptions). */
export interface ConnectionOptions {
  url?: string;
  token?: string;
  dataDir?: string;
  databaseUrl?: string;
  json?: boolean;
}

export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print JSON instead of text')
    .addOption(
      new Option('--url <base>', "call a running server's admin API at this base URL (remote mode)").env(
        'SCIMD_URL',
      ),
    )
    .addOption(
      new Option(
        '--token <token>',
        'bearer token of an admin, remote mode (falls back to SCIMD_ADMIN_TOKEN)',
      ).env('SCIMD_TOKEN'),
    )
    .addOption(
      new Option('--data-dir <dir>', 'folder of the embedded store (direct mode; default ./data)').env(
        'SCIMD_DATA_DIR',
      ),
    )
    .addOption(
      new Option('--database-url <url>', 'PostgreSQL connection string (direct mode)').env('DATABASE_URL'),
    );
}

class DirectAdmin implements AdminApi {
  constructor(
    private readonly db: Database,
    private readonly admin: AdminService,
  ) {}

  listTenants() {
    return this.admin.listTenants();
  }
  getTenant(id: string) {
    return this.admin.getTenant(id);
  }
  createTenant(input: { id: string; name?: string; settings?: TenantSettings }) {
    return this.admin.createTenant(input);
  }
  deleteTenant(id: string) {
    return this.admin.deleteTenant(id);
  }
  listClients(tenant: string) {
    return this.admin.listClients(tenant);
  }
  createClient(tenant: string, input: NewClient) {
    return this.admin.createClient(tenant, input);
  }
  deleteClient(tenant: string, id: string) {
    return this.admin.deleteClient(tenant, id);
  }
  issueToken(tenant: string, client: string, input: { expiresInSeconds?: number; description?: string }) {
    return this.admin.issueToken(tenant, client, input);
  }
  async listTokens(tenant: string, client?: string) {
    // The admin API answers 404 for an unknown client; so does this mode.
    if (client !== undefined) await this.admin.getClient(tenant, client);
    return this.admin.listTokens(tenant, client);
  }
  revokeToken(tenant: string, id: string) {
    return this.admin.revokeToken(tenant, id);
  }
  close() {
    return this.db.close();
  }
}

class RemoteAdmin implements AdminApi {
  private readonly call: AdminCall;

  constructor(base: string, token: string) {
    this.call = adminHttp(base, token);
  }

  private static seg(s: string): string {
    return encodeURIComponent(s);
  }

  async listTenants() {
    return (await this.call<{ tenants: TenantView[] }>('GET', '/tenants')).tenants;
  }
  getTenant(id: string) {
    return this.call<TenantView>('GET', `/tenants/${RemoteAdmin.seg(id)}`);
  }
  createTenant(input: { id: string; name?: string; settings?: TenantSettings }) {
    return this.call<TenantView>('POST', '/tenants', input);
  }
  async deleteTenant(id: string) {
    await this.call<undefined>('DELETE', `/tenants/${RemoteAdmin.seg(id)}`);
  }
  async listClients(tenant: string) {
    return (await this.call<{ clients: ClientView[] }>('GET', `/tenants/${RemoteAdmin.seg(tenant)}/clients`))
      .clients;
  }
  createClient(tenant: string, input: NewClient) {
    // The API's schema wants unique scopes; the direct mode removes duplicates too.
    return this.call<ClientView>('POST', `/tenants/${RemoteAdmin.seg(tenant)}/clients`, {
      ...input,
      scopes: [...new Set(input.scopes)],
    });
  }
  async deleteClient(tenant: string, id: string) {
    await this.call<undefined>(
      'DELETE',
      `/tenants/${RemoteAdmin.seg(tenant)}/clients/${RemoteAdmin.seg(id)}`,
    );
  }
  issueToken(tenant: string, client: string, input: { expiresInSeconds?: number; description?: string }) {
    return this.call<IssuedToken>(
      'POST',
      `/tenants/${RemoteAdmin.seg(tenant)}/clients/${RemoteAdmin.seg(client)}/tokens`,
      input,
    );
  }
  async listTokens(tenant: string, client?: string) {
    const path =
      client === undefined
        ? `/tenants/${RemoteAdmin.seg(tenant)}/tokens`
        : `/tenants/${RemoteAdmin.seg(tenant)}/clients/${RemoteAdmin.seg(client)}/tokens`;
    return (await this.call<{ tokens: TokenView[] }>('GET', path)).tokens;
  }
  revokeToken(tenant: string, id: string) {
    return this.call<TokenView>(
      'DELETE',
      `/tenants/${RemoteAdmin.seg(tenant)}/tokens/${RemoteAdmin.seg(id)}`,
    );
  }
  async close() {}
}

/** The admin bearer token of remote mode (--url): --token (SCIMD_TOKEN), else SCIMD_ADMIN_TOKEN. */
export function remoteToken(opts: ConnectionOptions): string {
  const token = opts.token ?? process.env.SCIMD_ADMIN_TOKEN;
  if (!token) throw new CliError('remote mode (--url) needs --token, SCIMD_TOKEN or SCIMD_ADMIN_TOKEN');
  return token;
}

/**
 * Opens the store for a direct-mode command (the admin commands, feed, receiver, upstream,
 * connection, flow, jit). An embedded store held by a running server is a CLI error pointing to
 * remote mode.
 */
export async function openStore(
  store: StoreOptions,
  registry: SchemaRegistry = createServerRegistry(),
): Promise<Database> {
  try {
    return await openDatabase(store, registry);
  } catch (err) {
    if (err instanceof StoreBusyError) {
      throw new CliError(`${err.message}: while scimd serve runs, use --url and --token`);
    }
    throw err;
  }
}

export async function openAdmin(opts: ConnectionOptions): Promise<AdminApi> {
  if (opts.url) return new RemoteAdmin(opts.url, remoteToken(opts));
  const registry = createServerRegistry();
  const db = await openStore({ databaseUrl: opts.databaseUrl, dataDir: opts.dataDir ?? './data' }, registry);
  return new DirectAdmin(db, new AdminService(db, registry, new TenantDirectory(db)));
}

/** Runs one admin action and always releases the store (the embedded one must be closed cleanly). */
export async function withAdmin<T>(
  opts: ConnectionOptions,
  action: (api: AdminApi) => Promise<T>,
): Promise<T> {
  const api = await openAdmin(opts);
  try {
    return await action(api);
  } finally {
    await api.close();
  }
}
