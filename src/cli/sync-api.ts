/**
 * How `scimd connection` and `scimd flow` reach the sync configuration: the store directly
 * (DATABASE_URL or the embedded store), or with --url a running server's admin API
 * (/admin/v1/tenants/{tenant}/connections and /flows). Both answer the same view objects.
 */
import { createServerRegistry } from '../registry.ts';
import type { Database } from '../store/db.ts';
import {
  ConnectionService,
  type ConnectionInput,
  type ConnectionPatch,
  type ConnectionTestResult,
  type ConnectionView,
} from '../sync/connections.ts';
import { PolicyConnectionService, requireTlsFromEnv } from '../sync/tls-policy.ts';
import { FlowService, type FlowInput, type FlowPatch, type FlowView } from '../sync/flows.ts';
import { adminHttp, type AdminCall } from './admin-http.ts';
import { openStore, remoteToken, type ConnectionOptions } from './context.ts';

export interface SyncApi {
  listConnections(tenant: string): Promise<ConnectionView[]>;
  getConnection(tenant: string, id: string): Promise<ConnectionView>;
  createConnection(tenant: string, input: ConnectionInput): Promise<ConnectionView>;
  updateConnection(tenant: string, id: string, patch: ConnectionPatch): Promise<ConnectionView>;
  removeConnection(tenant: string, id: string): Promise<void>;
  testConnection(tenant: string, id: string): Promise<ConnectionTestResult>;
  listFlows(tenant: string, connectionId?: string): Promise<FlowView[]>;
  getFlow(tenant: string, id: string): Promise<FlowView>;
  createFlow(tenant: string, input: FlowInput): Promise<FlowView>;
  updateFlow(tenant: string, id: string, patch: FlowPatch): Promise<FlowView>;
  removeFlow(tenant: string, id: string): Promise<void>;
  close(): Promise<void>;
}

class DirectSync implements SyncApi {
  private readonly connections: ConnectionService;
  private readonly flows: FlowService;
  constructor(private readonly db: Database) {
    this.connections = new PolicyConnectionService(db, requireTlsFromEnv());
    this.flows = new FlowService(db, createServerRegistry());
  }
  listConnections(tenant: string) {
    return this.connections.list(tenant);
  }
  getConnection(tenant: string, id: string) {
    return this.connections.view(tenant, id);
  }
  createConnection(tenant: string, input: ConnectionInput) {
    return this.connections.create(tenant, input);
  }
  updateConnection(tenant: string, id: string, patch: ConnectionPatch) {
    return this.connections.patch(tenant, id, patch);
  }
  removeConnection(tenant: string, id: string) {
    return this.connections.delete(tenant, id);
  }
  testConnection(tenant: string, id: string) {
    return this.connections.test(tenant, id);
  }
  listFlows(tenant: string, connectionId?: string) {
    return this.flows.list(tenant, { connectionId });
  }
  getFlow(tenant: string, id: string) {
    return this.flows.view(tenant, id);
  }
  createFlow(tenant: string, input: FlowInput) {
    return this.flows.create(tenant, input);
  }
  updateFlow(tenant: string, id: string, patch: FlowPatch) {
    return this.flows.patch(tenant, id, patch);
  }
  removeFlow(tenant: string, id: string) {
    return this.flows.delete(tenant, id);
  }
  close() {
    return this.db.close();
  }
}

class RemoteSync implements SyncApi {
  private readonly call: AdminCall;
  constructor(base: string, token: string) {
    this.call = adminHttp(base, token);
  }
  private static path(tenant: string, kind: 'connections' | 'flows', id?: string): string {
    const t = `/tenants/${encodeURIComponent(tenant)}/${kind}`;
    return id === undefined ? t : `${t}/${encodeURIComponent(id)}`;
  }
  async listConnections(tenant: string) {
    return (await this.call<{ connections: ConnectionView[] }>('GET', RemoteSync.path(tenant, 'connections')))
      .connections;
  }
  getConnection(tenant: string, id: string) {
    return this.call<ConnectionView>('GET', RemoteSync.path(tenant, 'connections', id));
  }
  createConnection(tenant: string, input: ConnectionInput) {
    return this.call<ConnectionView>('POST', RemoteSync.path(tenant, 'connections'), input);
  }
  updateConnection(tenant: string, id: string, patch: ConnectionPatch) {
    return this.call<ConnectionView>('PATCH', RemoteSync.path(tenant, 'connections', id), patch);
  }
  async removeConnection(tenant: string, id: string) {
    await this.call<undefined>('DELETE', RemoteSync.path(tenant, 'connections', id));
  }
  testConnection(tenant: string, id: string) {
    return this.call<ConnectionTestResult>('POST', `${RemoteSync.path(tenant, 'connections', id)}/test`);
  }
  async listFlows(tenant: string, connectionId?: string) {
    const qs = connectionId === undefined ? '' : `?connection=${encodeURIComponent(connectionId)}`;
    return (await this.call<{ flows: FlowView[] }>('GET', `${RemoteSync.path(tenant, 'flows')}${qs}`)).flows;
  }
  getFlow(tenant: string, id: string) {
    return this.call<FlowView>('GET', RemoteSync.path(tenant, 'flows', id));
  }
  createFlow(tenant: string, input: FlowInput) {
    return this.call<FlowView>('POST', RemoteSync.path(tenant, 'flows'), input);
  }
  updateFlow(tenant: string, id: string, patch: FlowPatch) {
    return this.call<FlowView>('PATCH', RemoteSync.path(tenant, 'flows', id), patch);
  }
  async removeFlow(tenant: string, id: string) {
    await this.call<undefined>('DELETE', RemoteSync.path(tenant, 'flows', id));
  }
  async close() {}
}

/** Runs one action against the store or the server, and always releases the store. */
export async function withSync<T>(opts: ConnectionOptions, action: (api: SyncApi) => Promise<T>): Promise<T> {
  let api: SyncApi;
  if (opts.url) {
    api = new RemoteSync(opts.url, remoteToken(opts));
  } else {
    api = new DirectSync(
      await openStore({ databaseUrl: opts.databaseUrl, dataDir: opts.dataDir ?? './data' }),
    );
  }
  try {
    return await action(api);
  } finally {
    await api.close();
  }
}
