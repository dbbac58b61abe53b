/**
 * Local-change trigger (use-case behaviour 15, and the push–push chain of use case 26): a write
 * through this node's SCIM API (an admin, a self-service edit, an upstream client, a JIT sign-in,
 * a pull flow storing what it fetched) requests, within a fraction of a second, every enabled
 * push flow with `mode: 'changes'` and `onLocalChange: true` whose resourceTypes include the
 * written type. The flow's filter is not looked at here: the engine applies it when it runs.
 *
 * - Fed by ResourceService.onChange (tenant, resource type, writing client), called per write.
 * - Debounced: the first write opens a window of `debounceMs` (200 ms); every write in it joins
 *   the same request (one UPDATE per tenant), so a burst of writes makes one request.
 * - No echo: a write by the sync engine (client `sync:<flowId>`) never requests that flow, nor any
 *   flow of the same connection (a pull from C must not push back to C); it does request push
 *   flows to other connections (upstream → this node → downstream).
 * - Writes by the events applier (client `upstream:<id>`) are left to the event trigger
 *   (events.ts), which requests the same push flows with trigger 'event'.
 * - onChange is called before the write commits: a write that is then rolled back (a failed Bulk
 *   operation) may still cause a request, after which the run finds nothing new. Harmless.
 */
import type { Queryable } from '../../store/db.ts';
import type { RunTrigger } from '../types.ts';

/** What ResourceService.onChange reports of one write. */
export interface LocalChange {
  tenant: string;
  resourceType: string;
  clientId?: string;
}

export interface LocalChangeTriggerDeps {
  db: Queryable;
  /** Stores requests (RunRequests.requestRuns: also wakes the runner). */
  request: (tenant: string, flowIds: string[], trigger: RunTrigger) => Promise<string[]>;
  log?: { error(obj: object, msg: string): void };
  /** Milliseconds a burst of writes is gathered before requesting (default 200). */
  debounceMs?: number;
}

/** Writer key of a write that no sync flow made. */
const ANYONE = '';

export class LocalChangeTrigger {
  readonly name = 'sync-local-change';
  /** tenant → lower-cased resource type → writer flows (ANYONE for other clients). */
  private pending = new Map<string, Map<string, Set<string>>>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly deps: LocalChangeTriggerDeps) {}

  /** Active from creation (writes happen whether or not background workers run). */
  start(): void {}

  /** Stores what is pending, then ignores further writes. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.schedule(0);
    }
    await this.idle();
  }

  /** A local write (ResourceService.onChange). Synchronous and cheap: called for every write. */
  notify(change: LocalChange): void {
    if (this.stopped && this.timer === undefined) return;
    const client = change.clientId ?? '';
    if (client.startsWith('upstream:')) return;
    const writer = client.startsWith('sync:') ? client.slice('sync:'.length) : ANYONE;
    let types = this.pending.get(change.tenant);
    if (!types) this.pending.set(change.tenant, (types = new Map()));
    const type = change.resourceType.toLowerCase();
    let writers = types.get(type);
    if (!writers) types.set(type, (writers = new Set()));
    writers.add(writer);
    if (!this.timer) this.schedule(this.deps.debounceMs ?? 200);
  }

  /** Resolves when nothing is pending or being requested (tests). */
  async idle(): Promise<void> {
    for (;;) {
      const current = this.flushing;
      await current;
      if (this.timer === undefined && current === this.flushing) return;
      if (this.timer !== undefined) await new Promise((r) => setTimeout(r, 10));
    }
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const batch = this.pending;
      this.pending = new Map();
      this.flushing = this.flushing
        .then(() => this.flush(batch))
        .catch((err: unknown) =>
          this.deps.log?.error({ err }, 'requesting sync runs after local changes failed'),
        );
    }, ms);
  }

  private async flush(batch: Map<string, Map<string, Set<string>>>): Promise<void> {
    for (const [tenant, types] of batch) {
      const ids = await this.covering(tenant, types);
      if (ids.length > 0) await this.deps.request(tenant, ids, 'change');
    }
  }

  /** The push flows of a tenant to request for these writes. */
  private async covering(tenant: string, types: Map<string, Set<string>>): Promise<string[]> {
    const candidates = await this.deps.db.query<{
      id: string;
      connection_id: string;
      resource_types: string[];
    }>(
      `SELECT id, connection_id, resource_types FROM sync_flows
        WHERE tenant_id = $1 AND enabled AND direction = 'push' AND mode = 'changes' AND on_local_change
          AND EXISTS (SELECT 1 FROM unnest(resource_types) t WHERE lower(t) = ANY($2::text[]))`,
      [tenant, [...types.keys()]],
    );
    if (candidates.rows.length === 0) return [];
    const writers = [...new Set([...types.values()].flatMap((w) => [...w]))].filter((w) => w !== ANYONE);
    const connectionOf = new Map<string, string>();
    if (writers.length > 0) {
      const res = await this.deps.db.query<{ id: string; connection_id: string }>(
        `SELECT id, connection_id FROM sync_flows WHERE tenant_id = $1 AND id = ANY($2::text[])`,
        [tenant, writers],
      );
      for (const r of res.rows) connectionOf.set(r.id, r.connection_id);
    }
    const out: string[] = [];
    for (const flow of candidates.rows) {
      const triggered = flow.resource_types.some((t) =>
        [...(types.get(t.toLowerCase()) ?? [])].some(
          (w) => w === ANYONE || (w !== flow.id && connectionOf.get(w) !== flow.connection_id),
        ),
      );
      if (triggered) out.push(flow.id);
    }
    return out;
  }
}
