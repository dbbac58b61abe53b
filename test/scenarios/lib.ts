/**
 * Helpers of the use-case scenarios (test/scenarios/*.test.ts): real scimd processes on loopback,
 * configured only through their public interfaces (the admin API over HTTP, SCIM, and the CLI
 * with --url), exactly as docs/use-cases/ shows them with curl.
 */
import assert from 'node:assert/strict';
import { settleCluster } from '../helpers/events.ts';
import { freePort, nodeStore, startScimd, type NodeStore, type ScimdProcess } from '../helpers/process.ts';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON

export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const DEVICE = 'urn:ietf:params:scim:schemas:core:2.0:Device';
export const BLE = 'urn:ietf:params:scim:schemas:extension:ble:2.0:Device';
export const APPS_EXT = 'urn:ietf:params:scim:schemas:extension:endpointAppsExt:2.0:Device';
export const ENDPOINT_APP = 'urn:ietf:params:scim:schemas:core:2.0:EndpointApp';
export const PASSKEY = 'urn:ietf:params:scim:schemas:extension:pairingPassKey:2.0:Device';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const BULK = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';

/** Faster background loops than the defaults, so a scenario does not wait on them. */
export const FAST_ENV: NodeJS.ProcessEnv = {
  SCIMD_EVENT_PUBLISH_INTERVAL_MS: '50',
  SCIMD_EVENT_PUSH_BACKOFF_BASE_MS: '100',
  SCIMD_EVENT_PUSH_BACKOFF_CAP_MS: '1000',
  SCIMD_EVENT_POLL_TIMEOUT_SECONDS: '2',
  SCIMD_INBOUND_APPLY_INTERVAL_MS: '100',
  SCIMD_INBOUND_RETRY_BASE_MS: '100',
  SCIMD_INBOUND_POLL_REFRESH_SECONDS: '1',
};

export interface HttpResult {
  status: number;
  body: Json;
  text: string;
  headers: Headers;
}

export async function http(method: string, url: string, token: string, body?: unknown): Promise<HttpResult> {
  const admin = url.includes('/admin/v1/');
  const res = await fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': admin ? 'application/json' : 'application/scim+json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Json = {};
  try {
    parsed = text ? (JSON.parse(text) as Json) : {};
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

/** A request that must answer one of `expect`; its body. */
export async function ok(
  method: string,
  url: string,
  token: string,
  body?: unknown,
  expect: number[] = [200, 201, 204],
): Promise<Json> {
  const res = await http(method, url, token, body);
  assert.ok(expect.includes(res.status), `${method} ${url} → ${res.status}: ${res.text.slice(0, 800)}`);
  return res.body;
}

/** One scimd process (a "node") and its store; restartable on the same store and port. */
export class Node {
  constructor(
    readonly name: string,
    readonly store: NodeStore,
    readonly port: number,
    readonly adminToken: string,
    private readonly env: NodeJS.ProcessEnv,
    public proc: ScimdProcess,
  ) {}

  get origin(): string {
    return this.proc.origin;
  }

  /** The SCIM base URL of a tenant. */
  scim(tenant: string): string {
    return tenant === 'default' ? `${this.origin}/scim/v2` : `${this.origin}/tenants/${tenant}/scim/v2`;
  }

  /** The admin API base of a tenant. */
  admin(tenant: string): string {
    return `${this.origin}/admin/v1/tenants/${tenant}`;
  }

  async restart(): Promise<void> {
    this.proc = await startScimd(this.store, this.port, { ...this.env, SCIMD_ADMIN_TOKEN: this.adminToken });
  }

  async close(): Promise<void> {
    await this.proc?.stop();
    await this.store.drop();
  }
}

/** Starts a node on a free port with its own store (embedded, or a scratch database with DATABASE_URL). */
export async function startNode(
  name: string,
  env: NodeJS.ProcessEnv = {},
  prepare?: (store: NodeStore) => Promise<void>,
): Promise<Node> {
  const store = await nodeStore();
  if (prepare) await prepare(store);
  const port = await freePort();
  const adminToken = `${name}-operator-token`;
  const full = { ...FAST_ENV, ...env };
  const proc = await startScimd(store, port, { ...full, SCIMD_ADMIN_TOKEN: adminToken });
  return new Node(name, store, port, adminToken, full, proc);
}

/** Creates a tenant (operator token). */
export async function createTenant(node: Node, id: string, settings?: Json): Promise<void> {
  await ok('POST', `${node.origin}/admin/v1/tenants`, node.adminToken, settings ? { id, settings } : { id });
}

/** Creates a client of a tenant and returns a fresh bearer token of it. */
export async function addClient(
  node: Node,
  tenant: string,
  id: string,
  scopes: string[],
  extra: Json = {},
): Promise<string> {
  await ok('POST', `${node.admin(tenant)}/clients`, node.adminToken, { id, name: id, scopes, ...extra });
  return (await ok('POST', `${node.admin(tenant)}/clients/${id}/tokens`, node.adminToken, {}))
    .token as string;
}

/** Creates a connection of a tenant to a remote SCIM base URL with a bearer token. */
export async function addConnection(
  node: Node,
  tenant: string,
  id: string,
  baseUrl: string,
  token: string,
  extra: Json = {},
): Promise<Json> {
  return ok('POST', `${node.admin(tenant)}/connections`, node.adminToken, {
    id,
    baseUrl,
    auth: { type: 'bearer', token },
    ...extra,
  });
}

export async function addFlow(node: Node, tenant: string, flow: Json): Promise<Json> {
  return ok('POST', `${node.admin(tenant)}/flows`, node.adminToken, flow);
}

export async function getFlow(node: Node, tenant: string, id: string): Promise<Json> {
  return ok('GET', `${node.admin(tenant)}/flows/${id}`, node.adminToken);
}

/**
 * Runs a flow now (POST …/runs with wait) and returns the finished run. A run started meanwhile by
 * a trigger (409) is waited for, then the flow is run again.
 */
export async function runFlow(
  node: Node,
  tenant: string,
  flowId: string,
  opts: { full?: boolean; dryRun?: boolean } = {},
): Promise<Json> {
  // The writes made before this run are inside its change-log windows (see settleCluster).
  await settleCluster();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await http('POST', `${node.admin(tenant)}/flows/${flowId}/runs`, node.adminToken, {
      ...opts,
      wait: true,
    });
    if (res.status === 200) return res.body;
    assert.equal(res.status, 409, `run ${tenant}/${flowId}: ${res.status} ${res.text}`);
    assert.ok(Date.now() < deadline, `flow ${tenant}/${flowId} stayed busy`);
    await sleep(100);
  }
}

/** Runs a flow and asserts it succeeded with exactly these counts (omitted counts must be 0). */
export async function runOk(
  node: Node,
  tenant: string,
  flowId: string,
  counts: Partial<Record<'created' | 'updated' | 'deleted' | 'skipped' | 'failed', number>> | undefined,
  opts: { full?: boolean } = {},
): Promise<Json> {
  const run = await runFlow(node, tenant, flowId, opts);
  assert.equal(run.state, 'succeeded', `run of ${tenant}/${flowId}: ${JSON.stringify(run)}`);
  if (counts) {
    const keys = [
      'created',
      'updated',
      'deleted',
      'failed',
      ...(counts.skipped === undefined ? [] : ['skipped']),
    ];
    const pick = (c: Json) => Object.fromEntries(keys.map((k) => [k, c[k] ?? 0]));
    assert.deepEqual(pick(run.counts), pick(counts), `counts of the run of ${tenant}/${flowId}`);
  }
  return run;
}

export async function runs(node: Node, tenant: string, flowId: string): Promise<Json[]> {
  return (await ok('GET', `${node.admin(tenant)}/flows/${flowId}/runs`, node.adminToken)).runs as Json[];
}

export async function runItems(node: Node, tenant: string, flowId: string, runId: string): Promise<Json[]> {
  const out: Json[] = [];
  let after = 0;
  for (;;) {
    const page = await ok(
      'GET',
      `${node.admin(tenant)}/flows/${flowId}/runs/${runId}?count=1000&after=${after}`,
      node.adminToken,
    );
    out.push(...(page.items as Json[]));
    if (page.nextAfter === undefined) return out;
    after = page.nextAfter as number;
  }
}

/** Every resource of an endpoint (index paging, 1,000 a page). */
export async function listAll(
  scimBase: string,
  token: string,
  endpoint: string,
  filter?: string,
): Promise<Json[]> {
  const out: Json[] = [];
  for (let start = 1; ; start += 1000) {
    const q = new URLSearchParams({ count: '1000', startIndex: String(start), sortBy: 'id' });
    if (filter) q.set('filter', filter);
    const page = await ok('GET', `${scimBase}/${endpoint}?${q}`, token);
    const rs = (page.Resources ?? []) as Json[];
    out.push(...rs);
    if (rs.length < 1000) return out;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns without throwing (the last error is rethrown at the deadline). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(150);
    }
  }
}

/** A resource without id, meta, $ref (each node's own) and schemas order; members sorted. */
export function content(r: Json): Json {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      const out: Json = {};
      for (const [k, x] of Object.entries(v as Json)) {
        if (k === 'meta' || k === '$ref' || k === 'id') continue;
        out[k] = strip(x);
      }
      return out;
    }
    return v;
  };
  const out = strip(r) as Json;
  if (Array.isArray(out.schemas)) out.schemas = [...out.schemas].sort();
  return out;
}

/** `by(list, 'userName')`: a map from the key to the resource, asserting the key is unique. */
export function by(list: Json[], key: string | ((r: Json) => string)): Map<string, Json> {
  const m = new Map<string, Json>();
  for (const r of list) {
    const k =
      typeof key === 'function'
        ? key(r)
        : String(key.split('.').reduce<unknown>((o, p) => (o as Json)?.[p], r));
    assert.ok(!m.has(k), `duplicate ${key} ${k}`);
    m.set(k, r);
  }
  return m;
}

export function sorted(values: Iterable<string>): string[] {
  return [...values].sort();
}

/**
 * Starts several nodes at once. When one fails to start, the others are stopped before the error
 * is thrown (a process left running would keep the test file from ending).
 */
export async function startNodes(...starts: Promise<Node>[]): Promise<Node[]> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.close() : undefined)));
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<Node>).value);
}

/**
 * `check` must pass within `timeoutMs` through the triggers alone; if it does not, `nudge` runs
 * the flows by hand once and `check` must pass then. The fallback is for a known engine issue
 * (docs/use-cases.md, "A run requested by a write can miss it"); the return value says whether
 * it was needed, and the caller's test name keeps what the triggers must show.
 */
export async function convergesByTriggers(
  check: () => Promise<void>,
  nudge: () => Promise<void>,
  timeoutMs = 15_000,
): Promise<boolean> {
  try {
    await eventually(check, timeoutMs);
    return false;
  } catch {
    await nudge();
    await check();
    return true;
  }
}
