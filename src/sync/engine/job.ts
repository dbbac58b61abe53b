/**
 * One run of one flow as the push and pull steps see it: the flow, its connection's client, the
 * local request context (client id `sync:<flowId>`, so the change log knows the engine's own
 * writes), the identity links, the authority, the flow's state between runs, and where outcomes
 * go (the runner's recorder). Shared helpers of push and pull live here too: reading a local
 * resource, the flow's scope, the two views of the remote side (live, or loaded once for a full
 * comparison), and running one item so that its failure is recorded and retried next run
 * without stopping the rest.
 */
import type { AppConfig } from '../../config.ts';
import { ScimClientError, type ScimClient, type ScimResource } from '../../client/index.ts';
import type { BoundFilter } from '../../scim/filter/ast.ts';
import { matches } from '../../scim/filter/evaluate.ts';
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../../scim/json.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../../scim/schema/registry.ts';
import type { AttributeDefinition } from '../../scim/schema/types.ts';
import { ScimError } from '../../scim/errors.ts';
import type { RequestContext, ResourceService } from '../../service/resources.ts';
import type { Database } from '../../store/db.ts';
import type { TenantDirectory } from '../../tenancy/directory.ts';
import type { Connection, Flow, FlowState, ItemAction } from '../types.ts';
import type { Authority } from './authority.ts';
import { getPath } from './attributes.ts';
import type { Link, LinkStore } from './links.ts';
import { bindFeedFilter } from '../../events/outbound/feeds.ts';

/** What the engine needs from the app. */
export interface EngineDeps {
  db: Database;
  service: ResourceService;
  registry: SchemaRegistry;
  config: AppConfig;
  tenants: TenantDirectory;
  /** A SCIM client for a connection (src/sync/connections.ts clientFor, or a test's). */
  clientFor(connection: Connection): ScimClient;
}

/** The flow's state as the engine keeps it (FlowState plus the engine's own bookkeeping). */
export interface EngineState extends FlowState {
  /** push changes: the change-log window being worked through ([position, to), seq reached). */
  window?: { to: string; after: number; hi: number };
  /** pull delta: the remote's next delta token per resource type. */
  deltaTokens?: Record<string, string>;
  /** pull delta: what the remote offers, found by trying `.deltaToken` once. */
  deltaMethod?: 'token' | 'watermark';
  /** pull delta by watermark: the highest remote meta.lastModified seen, per resource type. */
  watermarks?: Record<string, string>;
}

/** One attribute of a planned or applied update. */
export interface PlanAttribute {
  path: string;
  /** The local side's value (mapped to the remote's names for a push). */
  local?: JsonValue;
  remote?: JsonValue;
  owner: 'local' | 'remote' | 'initial';
}

/** One per-resource outcome of a run. */
export interface ItemRecord {
  resourceType: string;
  localId?: string;
  remoteId?: string;
  action: ItemAction;
  outcome: 'done' | 'failed' | 'planned';
  attributes?: PlanAttribute[];
  error?: string;
}

/** Where a run's outcomes go (sync_runs / sync_run_items, see runner.ts). */
export interface Recorder {
  record(item: ItemRecord): Promise<void>;
  skipped(n?: number): void;
  addTotal(n: number): void;
  /**
   * Called before each item: renews the lease when half of it is gone and saves progress; throws
   * RunAborted when the lease was lost (the item must not be written).
   */
  checkpoint(): Promise<void>;
}

export interface Job {
  deps: EngineDeps;
  flow: Flow;
  connection: Connection;
  client: ScimClient;
  ctx: RequestContext;
  links: LinkStore;
  authority: Authority;
  /** Plan only: decide every item, write nothing (no remote or local write, no link, no state). */
  dryRun: boolean;
  /** Compare every resource of the scope (full push/pull), whatever the flow's mode. */
  full: boolean;
  state: EngineState;
  saveState(): Promise<void>;
  recorder: Recorder;
  /** Retry keys handled in this run (so a retried item is not done twice). */
  handled: Set<string>;
  /**
   * The flow's retry keys, once pendingRetries has read them: a succeeding item then deletes its
   * retry row only when it has one (not one DELETE per item of a 100,000-resource run).
   */
  retryKeys?: Set<string>;
  /**
   * Set by a `changes` push that ended with committed changes of its types at or above its new
   * position (the window ends at the oldest transaction still open anywhere in the cluster): that
   * position. The runner requests the flow again once the log position has moved past it, so a
   * write is not left waiting for the next trigger.
   */
  catchUp?: string;
}

/** Items in flight at once when the connection sets no compat.maxConcurrentRequests. */
export const DEFAULT_ITEMS_IN_FLIGHT = 8;

export const syncClientId = (flowId: string): string => `sync:${flowId}`;

/** The flow's resource types, known to the registry, member-less types first (members get linked first). */
export function flowTypes(job: Pick<Job, 'flow' | 'deps'>): ResourceTypeConfig[] {
  const out: ResourceTypeConfig[] = [];
  for (const name of job.flow.resourceTypes) {
    const rt = job.deps.registry.resourceType(name);
    if (!rt) throw ScimError.badRequest('invalidValue', `Unknown resource type ${name}`);
    out.push(rt);
  }
  return out.sort((a, b) => Number(!!a.membersAttribute) - Number(!!b.membersAttribute));
}

/** The local resource, or undefined when it does not exist. */
export async function localGet(
  job: Job,
  rt: ResourceTypeConfig,
  id: string,
): Promise<JsonObject | undefined> {
  try {
    return (await job.deps.service.get(job.ctx, rt, id)).resource;
  } catch (e) {
    if (e instanceof ScimError && e.status === 404) return undefined;
    throw e;
  }
}

/** A bound scope filter per type (undefined: every resource is in scope). */
export function scopeFilters(job: Job): Map<string, BoundFilter> | undefined {
  if (job.flow.filter === undefined) return undefined;
  return bindFeedFilter(job.deps.service, flowTypes(job), job.flow.filter);
}

export function inScope(
  filters: Map<string, BoundFilter> | undefined,
  rt: ResourceTypeConfig,
  rep: JsonObject,
) {
  const f = filters?.get(rt.name);
  return f === undefined || matches(rep, f);
}

/** Mutability of the local registry's attributes, keyed like the client's mutabilityMap. */
export function localMutability(registry: SchemaRegistry, rt: ResourceTypeConfig): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (prefix: string, attrs: AttributeDefinition[]) => {
    for (const a of attrs) {
      const path = `${prefix}${a.name}`.toLowerCase();
      out.set(path, a.mutability);
      if (a.subAttributes) walk(`${path}.`, a.subAttributes);
    }
  };
  const core = registry.schema(rt.schema);
  if (core) walk('', core.attributes);
  for (const e of rt.schemaExtensions) {
    const s = registry.schema(e.schema);
    if (s) walk(`${s.id}:`, s.attributes);
  }
  return out;
}

// ---- the remote side ----------------------------------------------------------------------------

/** How push steps see the remote: read live, or loaded once for a full comparison. */
export interface RemoteSide {
  get(rt: ResourceTypeConfig, id: string): Promise<ScimResource | undefined>;
  find(rt: ResourceTypeConfig, attribute: string, value: string): Promise<ScimResource[]>;
  /** A resource the run just wrote (a loaded view keeps it current). */
  remember(rt: ResourceTypeConfig, resource: ScimResource): void;
  forget(rt: ResourceTypeConfig, id: string): void;
}

export function isNotFound(e: unknown): boolean {
  return e instanceof ScimClientError && e.status === 404;
}

function sameMatchValue(attribute: string, a: unknown, b: string): boolean {
  if (typeof a !== 'string') return false;
  // externalId is caseExact (RFC 7643 §3.1); the keys matched by default (userName, displayName) are not.
  return attribute.toLowerCase() === 'externalid' ? a === b : a.toLowerCase() === b.toLowerCase();
}

export class LiveRemote implements RemoteSide {
  constructor(private readonly client: ScimClient) {}
  async get(rt: ResourceTypeConfig, id: string): Promise<ScimResource | undefined> {
    try {
      return await this.client.resources(rt.name).get(id);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }
  async find(rt: ResourceTypeConfig, attribute: string, value: string): Promise<ScimResource[]> {
    const found = await this.client.resources(rt.name).findBy(attribute, value);
    return found.filter((r) =>
      sameMatchValue(attribute, getPath(r as unknown as JsonObject, attribute), value),
    );
  }
  remember(): void {}
  forget(): void {}
}

/** The key a matching value is compared by: externalId exactly, the other keys case-insensitively. */
function matchKey(attribute: string, value: string): string {
  return attribute.toLowerCase() === 'externalid' ? value : value.toLowerCase();
}

/**
 * Every remote resource of the flow's types, read once (cursor or index paging). Matching looks
 * values up in an index per type and attribute, built on the first lookup and kept current by
 * remember/forget: a full push into an empty remote matches each of N resources, and a scan of
 * everything remembered so far made that O(N²) (about 5·10⁹ comparisons for 100,000 Users).
 */
export class LoadedRemote implements RemoteSide {
  private readonly byType = new Map<string, Map<string, ScimResource>>();
  /** type → attribute (lower case) → match key → ids. */
  private readonly indexes = new Map<
    string,
    Map<string, { attribute: string; ids: Map<string, Set<string>> }>
  >();

  static async load(client: ScimClient, types: ResourceTypeConfig[]): Promise<LoadedRemote> {
    const out = new LoadedRemote();
    for (const rt of types) {
      const m = new Map<string, ScimResource>();
      for await (const r of client.resources(rt.name).iterate()) if (r.id) m.set(r.id, r);
      out.byType.set(rt.name, m);
    }
    return out;
  }
  all(rt: ResourceTypeConfig): ScimResource[] {
    return [...(this.byType.get(rt.name)?.values() ?? [])];
  }
  async get(rt: ResourceTypeConfig, id: string): Promise<ScimResource | undefined> {
    return this.byType.get(rt.name)?.get(id);
  }
  async find(rt: ResourceTypeConfig, attribute: string, value: string): Promise<ScimResource[]> {
    const ids = this.index(rt, attribute).get(matchKey(attribute, value));
    if (!ids) return [];
    const m = this.byType.get(rt.name);
    const out: ScimResource[] = [];
    for (const id of ids) {
      const r = m?.get(id);
      if (r && sameMatchValue(attribute, getPath(r as unknown as JsonObject, attribute), value)) out.push(r);
    }
    return out;
  }
  remember(rt: ResourceTypeConfig, resource: ScimResource): void {
    if (!resource.id) return;
    let m = this.byType.get(rt.name);
    if (!m) this.byType.set(rt.name, (m = new Map()));
    const old = m.get(resource.id);
    if (old) this.unindex(rt, old);
    m.set(resource.id, resource);
    for (const idx of this.indexes.get(rt.name)?.values() ?? []) addToIndex(idx, resource);
  }
  forget(rt: ResourceTypeConfig, id: string): void {
    const old = this.byType.get(rt.name)?.get(id);
    if (old) this.unindex(rt, old);
    this.byType.get(rt.name)?.delete(id);
  }

  private index(rt: ResourceTypeConfig, attribute: string): Map<string, Set<string>> {
    let perType = this.indexes.get(rt.name);
    if (!perType) this.indexes.set(rt.name, (perType = new Map()));
    let idx = perType.get(attribute.toLowerCase());
    if (!idx) {
      idx = { attribute, ids: new Map() };
      for (const r of this.byType.get(rt.name)?.values() ?? []) addToIndex(idx, r);
      perType.set(attribute.toLowerCase(), idx);
    }
    return idx.ids;
  }
  private unindex(rt: ResourceTypeConfig, resource: ScimResource): void {
    for (const idx of this.indexes.get(rt.name)?.values() ?? []) {
      const v = getPath(resource as unknown as JsonObject, idx.attribute);
      if (typeof v === 'string') idx.ids.get(matchKey(idx.attribute, v))?.delete(resource.id!);
    }
  }
}

function addToIndex(idx: { attribute: string; ids: Map<string, Set<string>> }, resource: ScimResource): void {
  const v = getPath(resource as unknown as JsonObject, idx.attribute);
  if (typeof v !== 'string' || !resource.id) return;
  const key = matchKey(idx.attribute, v);
  let ids = idx.ids.get(key);
  if (!ids) idx.ids.set(key, (ids = new Set()));
  ids.add(resource.id);
}

// ---- items --------------------------------------------------------------------------------------

export function errorText(e: unknown): string {
  if (e instanceof ScimClientError) {
    return `remote ${e.method} answered ${e.status}${e.scimType ? ` ${e.scimType}` : ''}${e.detail ? `: ${e.detail}` : ''}`;
  }
  if (e instanceof ScimError) return `local ${e.status}${e.scimType ? ` ${e.scimType}` : ''}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/** Thrown by Recorder.checkpoint when the run must stop at once (lease lost, stop requested). */
export class RunAborted extends Error {}

/**
 * Thrown by Recorder.checkpoint when the caller stopped the run (RunOptions.signal, e.g. Ctrl-C in
 * `scimd flow run`): unlike a lost lease, this node still holds the flow, so the run is finished
 * (state failed, this error) and the lease released at once.
 */
export class RunInterrupted extends RunAborted {}

/**
 * Runs one item. A failure is recorded (outcome failed) and kept in sync_retries so the next run
 * tries it first; success clears its retry. Aborts (RunAborted) go through.
 */
export async function runItem(
  job: Job,
  key: string,
  what: { resourceType: string; localId?: string; remoteId?: string },
  fn: () => Promise<void>,
): Promise<boolean> {
  job.handled.add(key);
  // Before the item: a node that stalled past its lease learns it here, before writing anything.
  await job.recorder.checkpoint();
  try {
    await fn();
    await itemSucceeded(job, key);
    return true;
  } catch (e) {
    if (e instanceof RunAborted) throw e;
    await itemFailed(job, key, what, e);
    return false;
  }
}

/** An item's failure: recorded (outcome failed) and kept in sync_retries for the next run. */
export async function itemFailed(
  job: Job,
  key: string,
  what: { resourceType: string; localId?: string; remoteId?: string },
  e: unknown,
): Promise<void> {
  const error = errorText(e);
  await job.recorder.record({ ...what, action: 'skip', outcome: 'failed', error });
  if (!job.dryRun) await noteRetry(job, key, what.resourceType, error);
}

/** One create sent with others (a Bulk request, a multi-row insert): its link, or why it failed. */
export type BatchedCreate =
  | { key: string; link: Link }
  | { key: string; failed: { resourceType: string; localId?: string; remoteId?: string }; error: unknown };

/**
 * Finishes the creates of one batch like single ones: the failed recorded and kept for a retry,
 * the others linked (one statement: their new ids are linked to nothing yet), their retries
 * cleared and recorded as creates.
 */
export async function finishBatchedCreates(job: Job, outcomes: BatchedCreate[]): Promise<void> {
  const done: { key: string; link: Link }[] = [];
  for (const o of outcomes) {
    if ('link' in o) done.push(o);
    else await itemFailed(job, o.key, o.failed, o.error);
  }
  await job.links.saveNew(done.map((o) => o.link));
  for (const { key, link } of done) {
    await itemSucceeded(job, key);
    await job.recorder.record({
      resourceType: link.resourceType,
      localId: link.localId,
      remoteId: link.remoteId,
      action: 'create',
      outcome: 'done',
    });
  }
}

/** An item done outside runItem (a create sent in a batch): its retry, if any, is cleared. */
export async function itemSucceeded(job: Job, key: string): Promise<void> {
  if (!job.dryRun && (job.retryKeys === undefined || job.retryKeys.has(key))) await clearRetry(job, key);
}

async function clearRetry(job: Job, key: string): Promise<void> {
  job.retryKeys?.delete(key);
  await job.deps.db.query('DELETE FROM sync_retries WHERE tenant_id = $1 AND flow_id = $2 AND key = $3', [
    job.flow.tenant,
    job.flow.id,
    key,
  ]);
}

async function noteRetry(job: Job, key: string, resourceType: string, error: string): Promise<void> {
  job.retryKeys?.add(key);
  await job.deps.db.query(
    `INSERT INTO sync_retries (tenant_id, flow_id, resource_type, key, attempts, last_error, updated)
     VALUES ($1, $2, $3, $4, 1, $5, clock_timestamp())
     ON CONFLICT (tenant_id, flow_id, key) DO UPDATE SET
       attempts = sync_retries.attempts + 1, last_error = EXCLUDED.last_error, updated = EXCLUDED.updated`,
    [job.flow.tenant, job.flow.id, resourceType, key, error.slice(0, 2000)],
  );
}

/** The flow's pending retries (oldest first). Keys are `<type>/<id>`: local ids for push, remote ids for pull. */
export async function pendingRetries(job: Job): Promise<{ resourceType: string; id: string; key: string }[]> {
  const res = await job.deps.db.query<{ resource_type: string; key: string }>(
    'SELECT resource_type, key FROM sync_retries WHERE tenant_id = $1 AND flow_id = $2 ORDER BY updated, key',
    [job.flow.tenant, job.flow.id],
  );
  job.retryKeys = new Set(res.rows.map((r) => r.key));
  return res.rows.map((r) => ({
    resourceType: r.resource_type,
    key: r.key,
    id: r.key.slice(r.key.indexOf('/') + 1),
  }));
}

/**
 * Runs `fn` over the items with up to `limit` in flight (each item's own failure is recorded by
 * runItem and does not stop the others). A RunAborted stops new items from starting; the ones in
 * flight finish, then it is thrown. Resources of one page are independent (member-less types:
 * a Group's members are resolved one group at a time by the callers).
 */
export async function forEachInFlight<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  if (limit <= 1 || items.length <= 1) {
    for (const item of items) await fn(item);
    return;
  }
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/**
 * How many items of one type a run keeps in flight: 1 for types with members (a group may push or
 * pull its members first) and for plans (shown in the order of the source).
 */
export function itemsInFlight(job: Pick<Job, 'connection' | 'dryRun'>, rt: ResourceTypeConfig): number {
  if (rt.membersAttribute || job.dryRun) return 1;
  return job.connection.compat?.maxConcurrentRequests ?? DEFAULT_ITEMS_IN_FLIGHT;
}

export const itemKey = (rt: ResourceTypeConfig, id: string): string => `${rt.name}/${id}`;

/** The value of a member-like multi-valued attribute as a list of ids (`value` sub-attribute). */
export function memberIds(doc: JsonObject, attribute: string): string[] {
  const k = findKey(doc, attribute);
  const v = k === undefined ? undefined : doc[k];
  if (!Array.isArray(v)) return [];
  return v.flatMap((m) => (isJsonObject(m) && typeof m.value === 'string' ? [m.value] : []));
}
