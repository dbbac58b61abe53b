/**
 * Applies received SETs to the local store: domain replication (`full` events carry the data) and
 * co-ordinated provisioning (`notice` events: call the publisher back with a SCIM GET and apply
 * what it answers). RFC 9967 §2 / Appendix A.
 *
 * Rules:
 * - Pending events in arrival order (seq). Each is applied in one transaction with its
 *   bookkeeping: the resource write (ResourceService.applyReplica, under the source's id, change
 *   log client `upstream:<id>`), the replica version and the event's state.
 * - Ordered by version: per (tenant, upstream, resource) the source version last applied is kept,
 *   and a tombstone after a delete. An event whose version is not newer is skipped (state
 *   `skipped`); `W/"n"` versions compare numerically, other opaque versions only by equality. A
 *   deleted resource comes back only with a numerically newer version (ids are not reused).
 * - Idempotent by jti: the intake stores a jti once; an event leaves `pending` exactly once.
 * - A failure (callback unreachable, a 409 here) is recorded and retried with backoff up to
 *   maxAttempts; later events of the SAME resource wait behind it (order), others go on.
 * - `full` PATCH: a PatchOp message is applied to the local copy; a resource representation (what
 *   scimd's own publisher may send for a membership-only change) is upserted. A PatchOp that would
 *   skip a version (W/"n" numbering shows a gap) or finds no local copy is replaced by a callback
 *   GET, so operations are never applied to the wrong base.
 */
import { ScimError } from '../../scim/errors.ts';
import { isJsonObject, type JsonObject } from '../../scim/json.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../../scim/schema/registry.ts';
import type { RequestContext, ResourceService } from '../../service/resources.ts';
import type { Database, Queryable } from '../../store/db.ts';
import type { LimitsConfig } from '../../config.ts';
import { effectiveLimits } from '../../tenancy/settings.ts';
import type { TenantDirectory } from '../../tenancy/directory.ts';
import { PATCH_OP_SCHEMA } from '../set.ts';
import type { ReceivedClaims } from './intake.ts';
import type { Upstream, UpstreamService } from './upstreams.ts';

export interface ApplierOptions {
  /** Milliseconds between passes when nothing wakes the applier. */
  intervalMs: number;
  /** Attempts before an event is given up (state failed). */
  maxAttempts: number;
  /** First retry delay; doubled per attempt, at most 5 minutes. */
  retryBaseMs: number;
  /** Events read per pass. */
  batchSize: number;
  /** Timeout of a callback GET. */
  callbackTimeoutMs: number;
  /**
   * Called after a pass with, per tenant and upstream, the resource types its applied events
   * wrote (empty when events were only skipped or given up). The sync engine's event trigger
   * (src/sync/triggers/events.ts) requests the flows fed by the upstream and the push flows of
   * those types.
   */
  onProcessed?: (processed: { tenant: string; upstreamId: string; resourceTypes: string[] }[]) => void;
}

export const DEFAULT_APPLIER_OPTIONS: ApplierOptions = {
  intervalMs: 1_000,
  maxAttempts: 5,
  retryBaseMs: 1_000,
  batchSize: 100,
  callbackTimeoutMs: 10_000,
};

export interface ApplyPassResult {
  applied: number;
  skipped: number;
  failed: number;
  /** Failed this pass, to be retried. */
  retrying: number;
  /** Left for a later pass (behind a failed event of the same resource). */
  deferred: number;
}

interface PendingRow {
  seq: number | string;
  tenant_id: string;
  upstream_id: string;
  subject: string | null;
  claims: ReceivedClaims;
  attempts: number;
  due: boolean;
}

interface VersionRow {
  version: string | null;
  deleted: boolean;
  /**
   * The last apply left members out (not present here then). The same version may then be
   * applied again: a publisher that sends current representations (scimd's) can send a group at a
   * version whose members are created by SETs that come after it, and the group's next SET, after
   * those members, may carry that same version. Skipping it as "already applied" would lose them.
   */
  incomplete?: boolean;
}

/** What one event asks for, once its URIs are read. */
type Plan =
  | { kind: 'upsert'; resource: JsonObject; version?: string; allowEqual?: boolean }
  | { kind: 'patch'; patch: JsonObject; version?: string }
  | { kind: 'delete'; feedRemove: boolean }
  | { kind: 'fetch'; version?: string; readd: boolean }
  | { kind: 'none'; state: 'applied' | 'skipped'; note: string };

/** Outcome of one event: its final state and a note (why skipped, members left out). */
interface Outcome {
  state: 'applied' | 'skipped';
  note?: string;
}

const E = 'urn:ietf:params:scim:event:';

/** `W/"12"` or `"12"` → 12; other (opaque) versions → undefined. */
export function numericVersion(v: string | null | undefined): number | undefined {
  const m = typeof v === 'string' ? /^(?:W\/)?"(\d{1,15})"$/.exec(v) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * Why an event with version `incoming` must not be applied over `last`, or undefined when it may.
 * `allowEqual`: the same version may be applied again (a feed:add after a feed:remove deleted the
 * local copy).
 */
export function staleReason(
  incoming: string | undefined,
  last: VersionRow | undefined,
  allowEqual = false,
): string | undefined {
  if (!last) return undefined;
  const a = numericVersion(incoming);
  const b = numericVersion(last.version);
  if (last.deleted) {
    if (a !== undefined && b !== undefined && a > b) return undefined;
    return `the resource was deleted at the source (after version ${last.version ?? 'unknown'})`;
  }
  if (incoming === undefined || last.version === null) return undefined;
  if (last.incomplete) allowEqual = true;
  if (a !== undefined && b !== undefined) {
    if (a < b || (a === b && !allowEqual)) {
      return `version ${incoming} is not newer than the applied version ${last.version}`;
    }
    return undefined;
  }
  if (incoming === last.version && !allowEqual) return `version ${incoming} was already applied`;
  return undefined;
}

class CallbackError extends Error {}

export class EventApplier {
  readonly name = 'event-applier';
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;

  constructor(
    private readonly deps: {
      db: Database;
      service: ResourceService;
      registry: SchemaRegistry;
      tenants: TenantDirectory;
      upstreams: UpstreamService;
      limits: LimitsConfig;
      baseUrl?: string;
      log?: { error(obj: object, msg: string): void };
    },
    private readonly opts: ApplierOptions = DEFAULT_APPLIER_OPTIONS,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        let busy = false;
        try {
          const r = await this.applyOnce();
          busy = r.applied + r.skipped + r.failed + r.retrying >= this.opts.batchSize;
        } catch (err) {
          this.deps.log?.error({ err }, 'applying received events failed');
        }
        if (!busy) await this.sleep(this.opts.intervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  /** A new event was stored: apply it now rather than at the next interval. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        this.woken = false;
        done();
      };
    });
  }

  /** One pass over the pending events (tests call this directly). */
  async applyOnce(): Promise<ApplyPassResult> {
    const result: ApplyPassResult = { applied: 0, skipped: 0, failed: 0, retrying: 0, deferred: 0 };
    // Every tenant's queue: one worker serves the node. due = its retry time has come.
    const rows = await this.deps.db.query<PendingRow>(
      `SELECT seq, tenant_id, upstream_id, subject, claims, attempts, next_attempt <= clock_timestamp() AS due
         FROM received_events WHERE state = 'pending' ORDER BY seq LIMIT $1`,
      [this.opts.batchSize],
    );
    const blocked = new Set<string>();
    const upstreams = new Map<string, Upstream | undefined>();
    // For opts.onProcessed: tenant\0upstream → resource types written by applied events.
    const processed = new Map<string, { tenant: string; upstreamId: string; types: Set<string> }>();
    for (const row of rows.rows) {
      const key = `${row.tenant_id}\0${row.upstream_id}\0${row.subject ?? ''}`;
      if (blocked.has(key) || !row.due) {
        // Per-resource order: nothing of this resource passes an event waiting for its retry.
        blocked.add(key);
        result.deferred++;
        continue;
      }
      const ukey = `${row.tenant_id}\0${row.upstream_id}`;
      if (!upstreams.has(ukey))
        upstreams.set(ukey, await this.deps.upstreams.find(row.tenant_id, row.upstream_id));
      const upstream = upstreams.get(ukey);
      if (!upstream) continue; // removed meanwhile (its events go with it)
      const seen = processed.get(ukey) ?? {
        tenant: row.tenant_id,
        upstreamId: row.upstream_id,
        types: new Set(),
      };
      try {
        const outcome = await this.applyEvent(row, upstream);
        if (outcome) {
          result[outcome.state]++;
          processed.set(ukey, seen);
          // subject is the sub_id.uri, /<Endpoint>/<id>.
          const endpoint = /^\/[^/]+/.exec(row.subject ?? '')?.[0];
          const type = endpoint ? this.deps.registry.resourceTypeByEndpoint(endpoint) : undefined;
          if (outcome.state === 'applied' && type) seen.types.add(type.name);
        }
      } catch (err) {
        blocked.add(key);
        const attempts = row.attempts + 1;
        const message = errorText(err);
        if (attempts >= this.opts.maxAttempts) {
          result.failed++;
          processed.set(ukey, seen);
          await this.deps.db.query(
            `UPDATE received_events SET state = 'failed', attempts = $3, error = $4, processed = clock_timestamp()
              WHERE tenant_id = $1 AND seq = $2 AND state = 'pending'`,
            [row.tenant_id, row.seq, attempts, message],
          );
        } else {
          result.retrying++;
          const delay = Math.min(this.opts.retryBaseMs * 2 ** (attempts - 1), 300_000);
          await this.deps.db.query(
            `UPDATE received_events SET attempts = $3, error = $4,
                    next_attempt = clock_timestamp() + make_interval(secs => $5::double precision)
              WHERE tenant_id = $1 AND seq = $2 AND state = 'pending'`,
            [row.tenant_id, row.seq, attempts, message, delay / 1000],
          );
        }
      }
    }
    if (processed.size > 0 && this.opts.onProcessed) {
      try {
        this.opts.onProcessed(
          [...processed.values()].map((p) => ({
            tenant: p.tenant,
            upstreamId: p.upstreamId,
            resourceTypes: [...p.types],
          })),
        );
      } catch (err) {
        this.deps.log?.error({ err }, 'the onProcessed listener of the events applier failed');
      }
    }
    return result;
  }

  /** Applies one event; undefined when another node took it first. Throws to retry. */
  private async applyEvent(row: PendingRow, upstream: Upstream): Promise<Outcome | undefined> {
    const claims = row.claims;
    const target = this.targetOf(claims.sub_id.uri, upstream);
    if ('skip' in target)
      return this.finish(row, upstream, undefined, { state: 'skipped', note: target.skip });
    const { rt, id } = target;
    let plan = this.planOf(claims, upstream);
    if (plan.kind === 'none')
      return this.finish(row, upstream, undefined, { state: plan.state, note: plan.note });

    const last = await this.lastVersion(this.deps.db, upstream, id);
    // Early checks without the network: a stale notice needs no callback.
    if (plan.kind === 'fetch' || plan.kind === 'upsert' || plan.kind === 'patch') {
      const stale = staleReason(plan.version, last, plan.kind === 'fetch' && plan.readd);
      if (stale) return this.finish(row, upstream, undefined, { state: 'skipped', note: stale });
    }
    if (plan.kind === 'patch') {
      const a = numericVersion(plan.version);
      const b = numericVersion(last?.version);
      // A PatchOp is relative to the version before it: with one missing, fetch the resource instead.
      if (a !== undefined && b !== undefined && a > b + 1)
        plan = { kind: 'fetch', version: plan.version, readd: false };
    }
    if (plan.kind === 'fetch') {
      const fetched = await this.callback(upstream, claims.sub_id.uri, id);
      if (fetched === 'gone') plan = { kind: 'delete', feedRemove: false };
      else {
        const version = versionOf(fetched);
        const stale = staleReason(version, last, plan.readd);
        if (stale)
          return this.finish(row, upstream, undefined, { state: 'skipped', note: `fetched ${stale}` });
        plan = { kind: 'upsert', resource: fetched, version, allowEqual: plan.readd };
      }
    }
    const ctx = await this.contextOf(upstream);
    try {
      return await this.deps.db.transaction((tx) => this.write(tx, ctx, row, upstream, rt, id, plan));
    } catch (err) {
      // A PatchOp with no local copy to apply it to: the callback brings the whole resource.
      if (plan.kind === 'patch' && err instanceof ScimError && err.status === 404) {
        const fetched = await this.callback(upstream, claims.sub_id.uri, id);
        const next: Plan =
          fetched === 'gone'
            ? { kind: 'delete', feedRemove: false }
            : { kind: 'upsert', resource: fetched, version: versionOf(fetched) };
        return this.deps.db.transaction((tx) => this.write(tx, ctx, row, upstream, rt, id, next));
      }
      throw err;
    }
  }

  /** The write and its bookkeeping, in one transaction; re-checks state and version under locks. */
  private async write(
    tx: Queryable,
    ctx: RequestContext,
    row: PendingRow,
    upstream: Upstream,
    rt: ResourceTypeConfig,
    id: string,
    plan: Plan,
  ): Promise<Outcome | undefined> {
    const claimed = await tx.query<{ state: string }>(
      `SELECT state FROM received_events WHERE tenant_id = $1 AND seq = $2 FOR UPDATE`,
      [row.tenant_id, row.seq],
    );
    if (claimed.rows[0]?.state !== 'pending') return undefined;
    const last = await this.lastVersion(tx, upstream, id, true);
    if (plan.kind === 'upsert' || plan.kind === 'patch') {
      // Again under the lock: another node may have applied a newer (or this) version meanwhile.
      const stale = staleReason(plan.version, last, plan.kind === 'upsert' && plan.allowEqual === true);
      if (stale) return this.finish(row, upstream, tx, { state: 'skipped', note: stale });
    }
    let outcome: Outcome;
    let newVersion: string | null = last?.version ?? null;
    let deleted: boolean;
    let incomplete = false;
    if (plan.kind === 'delete') {
      if (last?.deleted) return this.finish(row, upstream, tx, { state: 'skipped', note: 'already deleted' });
      const r = await this.deps.service.applyReplica({ ...ctx, transaction: tx }, rt, id, { kind: 'delete' });
      outcome = { state: 'applied', note: r.outcome === 'absent' ? 'no local copy to delete' : undefined };
      // Removed from the feed is not deleted at the source: a later feed:add brings it back.
      deleted = !plan.feedRemove;
    } else if (plan.kind === 'upsert' || plan.kind === 'patch') {
      const change =
        plan.kind === 'upsert'
          ? { kind: 'upsert' as const, resource: plan.resource }
          : { kind: 'patch' as const, patch: plan.patch };
      const r = await this.deps.service.applyReplica({ ...ctx, transaction: tx }, rt, id, change);
      // Members not here yet are left out of this write: the upstream sends the group again (or
      // a member add) when it changes, and under co-ordinated provisioning the feed may simply not
      // hold them. Refusing the whole group for them would block every later event of it.
      outcome = {
        state: 'applied',
        note: r.droppedMembers.length
          ? `members not present here were left out: ${r.droppedMembers.join(', ')}`
          : undefined,
      };
      if (plan.version !== undefined) newVersion = plan.version;
      deleted = false;
      incomplete = r.droppedMembers.length > 0;
    } else {
      throw new Error(`unexpected plan ${plan.kind}`);
    }
    await tx.query(
      `INSERT INTO replica_versions (tenant_id, upstream_id, resource_id, resource_type, version, deleted, incomplete)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (tenant_id, upstream_id, resource_id)
       DO UPDATE SET version = EXCLUDED.version, deleted = EXCLUDED.deleted, resource_type = EXCLUDED.resource_type,
                     incomplete = EXCLUDED.incomplete, updated = clock_timestamp()`,
      [upstream.tenant, upstream.id, id, rt.name, newVersion, deleted, incomplete],
    );
    return this.finish(row, upstream, tx, outcome);
  }

  private async finish(
    row: PendingRow,
    upstream: Upstream,
    q: Queryable | undefined,
    outcome: Outcome,
  ): Promise<Outcome | undefined> {
    const res = await (q ?? this.deps.db).query(
      `UPDATE received_events SET state = $3, error = $4, processed = clock_timestamp()
        WHERE tenant_id = $1 AND seq = $2 AND state = 'pending'`,
      [upstream.tenant, row.seq, outcome.state, outcome.note ?? null],
    );
    return res.rowCount > 0 ? outcome : undefined;
  }

  private async lastVersion(
    q: Queryable,
    upstream: Upstream,
    id: string,
    lock = false,
  ): Promise<VersionRow | undefined> {
    const res = await q.query<VersionRow>(
      `SELECT version, deleted, incomplete FROM replica_versions WHERE tenant_id = $1 AND upstream_id = $2 AND resource_id = $3${
        lock ? ' FOR UPDATE' : ''
      }`,
      [upstream.tenant, upstream.id, id],
    );
    return res.rows[0];
  }

  /** The resource type and id a sub_id.uri names (`/Users/<id>`), or why the event is skipped. */
  private targetOf(
    uri: string,
    upstream: Upstream,
  ): { rt: ResourceTypeConfig; id: string } | { skip: string } {
    const m = /^(\/[^/?#]+)\/([^/?#]+)$/.exec(uri);
    if (!m) return { skip: `sub_id.uri ${uri} does not name a resource (/<Endpoint>/<id>)` };
    const rt = this.deps.registry.resourceTypeByEndpoint(m[1]);
    if (!rt) return { skip: `no resource type is served at ${m[1]}` };
    if (upstream.resourceTypes && !upstream.resourceTypes.includes(rt.name)) {
      return { skip: `${rt.name} is not among this upstream's resourceTypes` };
    }
    let id: string;
    try {
      id = decodeURIComponent(m[2]);
    } catch {
      return { skip: `sub_id.uri ${uri} has a malformed id` };
    }
    return { rt, id };
  }

  /** What the event's URIs ask for. */
  private planOf(claims: ReceivedClaims, upstream: Upstream): Plan {
    const events = new Map(Object.entries(claims.events).map(([u, p]) => [u.toLowerCase(), p]));
    const has = (name: string) => events.has(`${E}${name}`);
    const payload = (name: string) => events.get(`${E}${name}`) ?? {};
    if (has('prov:delete')) return { kind: 'delete', feedRemove: false };
    for (const name of ['prov:create:full', 'prov:put:full', 'prov:patch:full']) {
      if (!has(name)) continue;
      const p = payload(name);
      const data = p.data;
      const version = typeof p.version === 'string' ? p.version : undefined;
      if (!isJsonObject(data)) return { kind: 'fetch', version, readd: false };
      const schemas = Array.isArray(data.schemas) ? data.schemas : [];
      if (schemas.some((s) => typeof s === 'string' && s.toLowerCase() === PATCH_OP_SCHEMA.toLowerCase())) {
        return { kind: 'patch', patch: data, version };
      }
      return { kind: 'upsert', resource: data, version: version ?? versionOf(data) };
    }
    for (const name of ['prov:create:notice', 'prov:put:notice', 'prov:patch:notice']) {
      if (!has(name)) continue;
      const v = payload(name).version;
      return { kind: 'fetch', version: typeof v === 'string' ? v : undefined, readd: false };
    }
    if (has('feed:add')) {
      const data = payload('feed:add').data;
      if (isJsonObject(data)) return { kind: 'upsert', resource: data, version: versionOf(data) };
      return { kind: 'fetch', readd: true };
    }
    if (has('feed:remove')) {
      if (upstream.onFeedRemove === 'delete') return { kind: 'delete', feedRemove: true };
      return { kind: 'none', state: 'applied', note: 'left the feed; kept (onFeedRemove keep)' };
    }
    // activate / deactivate on their own: what changed is not in the event, so read it.
    if (has('prov:activate') || has('prov:deactivate')) return { kind: 'fetch', readd: false };
    return { kind: 'none', state: 'skipped', note: 'no resource change this receiver applies' };
  }

  /**
   * GET <scimBaseUrl><sub_id.uri> with the upstream's callback Authorization (never logged):
   * the representation, or 'gone' on 404. Anything else throws (the event is retried).
   */
  private async callback(upstream: Upstream, uri: string, id: string): Promise<JsonObject | 'gone'> {
    const url = `${upstream.scimBaseUrl}${uri}`;
    // SCIMD_SYNC_REQUIRE_TLS: a plain-http scimBaseUrl stored before the switch is never called.
    const refused = this.deps.upstreams.tlsViolation(upstream.scimBaseUrl, 'scimBaseUrl');
    if (refused) throw new CallbackError(`callback GET ${url} not sent: ${refused}`);
    const headers: Record<string, string> = { accept: 'application/scim+json, application/json' };
    if (upstream.callbackAuthorization) headers.authorization = upstream.callbackAuthorization;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(this.opts.callbackTimeoutMs) });
    } catch (err) {
      throw new CallbackError(`callback GET ${url} failed: ${errorText(err)}`);
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return 'gone';
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new CallbackError(`callback GET ${url} answered ${res.status}`);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new CallbackError(`callback GET ${url} did not answer JSON`);
    }
    if (!isJsonObject(body) || body.id !== id) {
      throw new CallbackError(`callback GET ${url} did not answer the resource ${id}`);
    }
    return body;
  }

  private async contextOf(upstream: Upstream): Promise<RequestContext> {
    const tenant = await this.deps.tenants.get(upstream.tenant);
    if (!tenant) throw new Error(`no tenant ${upstream.tenant}`);
    const prefix = tenant.id === 'default' ? '/scim/v2' : `/tenants/${encodeURIComponent(tenant.id)}/scim/v2`;
    return {
      tenant: tenant.id,
      baseUrl: `${this.deps.baseUrl ?? 'http://localhost'}${prefix}`,
      clientId: `upstream:${upstream.id}`,
      limits: effectiveLimits(this.deps.limits, tenant.settings),
      settings: tenant.settings as Record<string, unknown>,
    };
  }
}

function versionOf(resource: JsonObject): string | undefined {
  const meta = resource.meta;
  return isJsonObject(meta) && typeof meta.version === 'string' ? meta.version : undefined;
}

function errorText(err: unknown): string {
  if (err instanceof ScimError)
    return `${err.status}${err.scimType ? ` ${err.scimType}` : ''}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
