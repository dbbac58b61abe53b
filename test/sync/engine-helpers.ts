/**
 * Two scimd apps for the sync engine tests: a local one (driven through inject, workers off) and a
 * remote one listening on loopback, which the engine calls with the real SCIM client. Flows and
 * connections are rows inserted with SQL; the runner reads them through a small source.
 */
import type { AddressInfo } from 'node:net';
import { ScimClient, type Transport } from '../../src/client/index.ts';
import { NodeTransport } from '../../src/client/transport.ts';
import { FlowRunner, type FlowSource, type RunnerOptions } from '../../src/sync/engine/runner.ts';
import type { Connection, Flow } from '../../src/sync/types.ts';
import { TenantDirectory } from '../../src/tenancy/directory.ts';
import { startTestApp, TOKEN, type TestApp } from '../helpers/app.ts';
import { settleChangeLog } from '../helpers/events.ts';

export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export interface Pair {
  local: TestApp;
  remote: TestApp;
  remoteBase: string;
  /** Requests the engine sent to the remote (method and path), in order. */
  sent: string[];
  close(): Promise<void>;
}

export async function startPair(remoteOverrides: Parameters<typeof startTestApp>[0] = {}): Promise<Pair> {
  const local = await startTestApp({ backgroundWorkers: false });
  const remote = await startTestApp({ backgroundWorkers: false, ...remoteOverrides });
  await remote.app.server.listen({ port: 0, host: '127.0.0.1' });
  const { port } = remote.app.server.server.address() as AddressInfo;
  const remoteBase = `http://127.0.0.1:${port}/scim/v2`;
  await local.app.db.query(
    `INSERT INTO sync_connections (tenant_id, id, name, base_url, auth) VALUES ('default', 'remote', 'remote', $1, $2)`,
    [remoteBase, JSON.stringify({ type: 'bearer', token: TOKEN })],
  );
  return {
    local,
    remote,
    remoteBase,
    sent: [],
    async close() {
      await local.close();
      await remote.close();
    },
  };
}

export interface FlowRowInput {
  id: string;
  direction: 'push' | 'pull';
  mode: 'changes' | 'full' | 'delta' | 'events';
  resourceTypes?: string[];
  filter?: string;
  mapping?: unknown;
  authority?: unknown;
  matching?: unknown;
  onDelete?: 'delete' | 'deactivate' | 'ignore';
  usePut?: boolean;
  fullEverySeconds?: number;
}

export async function addFlow(pair: Pair, f: FlowRowInput): Promise<void> {
  await pair.local.app.db.query(
    `INSERT INTO sync_flows (tenant_id, id, name, connection_id, direction, mode, resource_types, filter, mapping,
                             authority, matching, on_delete, use_put, full_every_seconds)
     VALUES ('default', $1, $1, 'remote', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      f.id,
      f.direction,
      f.mode,
      f.resourceTypes ?? ['User'],
      f.filter ?? null,
      f.mapping === undefined ? null : JSON.stringify(f.mapping),
      f.authority === undefined ? null : JSON.stringify(f.authority),
      f.matching === undefined ? null : JSON.stringify(f.matching),
      f.onDelete ?? 'delete',
      f.usePut ?? false,
      f.fullEverySeconds ?? null,
    ],
  );
}

interface Row {
  tenant_id: string;
  id: string;
  name: string;
  connection_id: string;
  direction: Flow['direction'];
  mode: Flow['mode'];
  resource_types: string[];
  filter: string | null;
  mapping: Flow['mapping'] | null;
  authority: Flow['authority'] | null;
  matching: Flow['matching'] | null;
  on_delete: Flow['onDelete'];
  use_put: boolean;
  full_every_seconds: number | null;
  upstream_id: string | null;
  enabled: boolean;
  created: Date;
  updated: Date;
}

/** Flows and connections read straight from their rows. */
export function sqlSource(pair: Pair): FlowSource {
  const db = pair.local.app.db;
  return {
    async flow(tenant, id) {
      const r = (
        await db.query<Row>('SELECT * FROM sync_flows WHERE tenant_id = $1 AND id = $2', [tenant, id])
      ).rows[0];
      if (!r) return undefined;
      const f: Flow = {
        tenant: r.tenant_id,
        id: r.id,
        name: r.name,
        connectionId: r.connection_id,
        direction: r.direction,
        mode: r.mode,
        resourceTypes: r.resource_types,
        onDelete: r.on_delete,
        usePut: r.use_put,
        enabled: r.enabled,
        created: r.created,
        updated: r.updated,
      };
      if (r.filter !== null) f.filter = r.filter;
      if (r.mapping !== null) f.mapping = r.mapping;
      if (r.authority !== null) f.authority = r.authority;
      if (r.matching !== null) f.matching = r.matching;
      if (r.full_every_seconds !== null) f.fullEverySeconds = r.full_every_seconds;
      if (r.upstream_id !== null) f.upstreamId = r.upstream_id;
      return f;
    },
    async connection(tenant, id) {
      const r = (
        await db.query<{
          base_url: string;
          auth: Connection['auth'];
          created: Date;
          updated: Date;
          compat: Connection['compat'] | null;
        }>('SELECT * FROM sync_connections WHERE tenant_id = $1 AND id = $2', [tenant, id])
      ).rows[0];
      if (!r) return undefined;
      const c: Connection = {
        tenant,
        id,
        name: id,
        baseUrl: r.base_url,
        auth: r.auth,
        created: r.created,
        updated: r.updated,
      };
      if (r.compat) c.compat = r.compat;
      return c;
    },
  };
}

/**
 * A runner of the local app calling the remote through a recording transport; `block` answers
 * 404 to requests whose path matches (e.g. a remote without delta query).
 */
export function runnerFor(pair: Pair, opts: Partial<RunnerOptions> & { block?: RegExp } = {}): FlowRunner {
  const app = pair.local.app;
  const inner = new NodeTransport();
  const transport: Transport = async (req) => {
    const path = req.url.pathname.replace(/^\/scim\/v2/, '');
    if (!/^\/(ServiceProviderConfig|ResourceTypes|Schemas)$/.test(path))
      pair.sent.push(`${req.method} ${path}`);
    if (opts.block?.test(req.url.pathname)) {
      return { status: 404, headers: {}, body: JSON.stringify({ status: '404', detail: 'blocked by test' }) };
    }
    return inner.send(req);
  };
  return new FlowRunner({
    db: app.db,
    service: app.service,
    registry: app.registry,
    config: app.config,
    tenants: new TenantDirectory(app.db),
    clientFor: (c) =>
      new ScimClient({
        baseUrl: c.baseUrl,
        auth: c.auth,
        transport,
        retry: { maxAttempts: 1 },
        ...(c.compat ? { compat: c.compat } : {}),
      }),
    source: sqlSource(pair),
    ...opts,
  });
}

/** Every resource of a type on one side, sorted by the given attribute, without meta and id. */
export async function listAll(
  t: TestApp,
  endpoint: string,
  sortBy = 'userName',
): Promise<Record<string, unknown>[]> {
  const res = await t.request('GET', `/scim/v2/${endpoint}?count=1000&sortBy=${sortBy}`);
  if (res.status !== 200) throw new Error(`list ${endpoint}: ${res.status} ${res.text}`);
  return (res.body.Resources ?? []) as Record<string, unknown>[];
}

export async function create(
  t: TestApp,
  endpoint: string,
  body: Record<string, unknown>,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
): Promise<Record<string, any>> {
  const res = await t.request('POST', `/scim/v2/${endpoint}`, { body });
  if (res.status !== 201) throw new Error(`create ${endpoint}: ${res.status} ${res.text}`);
  return res.body;
}

export async function patch(t: TestApp, path: string, ops: unknown[]): Promise<void> {
  const res = await t.request('PATCH', `/scim/v2/${path}`, { body: { schemas: [PATCH], Operations: ops } });
  if (res.status !== 200 && res.status !== 204) throw new Error(`patch ${path}: ${res.status} ${res.text}`);
}

export async function links(pair: Pair, flowId: string): Promise<{ local_id: string; remote_id: string }[]> {
  return (
    await pair.local.app.db.query<{ local_id: string; remote_id: string }>(
      'SELECT local_id, remote_id FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 ORDER BY local_id',
      ['default', flowId],
    )
  ).rows;
}

export { settleChangeLog };
