/**
 * The flow runner: runs flows, one runner per flow across nodes, and keeps their run history.
 *
 * - Lease: a run takes the flow's lease (`sync_flows.lease_owner`, `lease_until`: a plain UPDATE
 *   that succeeds only when the lease is free or expired, so it works the same on PGlite and
 *   PostgreSQL and holds no lock during HTTP calls). The lease is renewed between items while the
 *   run goes on and released at its end. Every write of the flow's state is conditional on still
 *   holding it: a node that lost its lease (it stalled past the expiry) stops at its next item.
 * - Runs: `sync_runs` (trigger, state, progress done/total, counts per action), `sync_run_items`
 *   (each created, updated, deleted, deactivated, linked, failed or planned resource, with the
 *   attributes and error), `sync_retries` (failed items, tried first by the next run; a failed item
 *   never blocks the rest). State: succeeded, partial (some items failed), failed (the run stopped:
 *   the remote could not be listed, the lease was lost...), abandoned (its node died).
 * - Requests: triggers set `run_requested` (src/sync/triggers); the background loop takes requested
 *   flows whose lease is free, clearing the request as it takes the lease. A run left `running`
 *   whose lease expired (its node died) is marked abandoned and its flow requested again, so the
 *   next run continues from the stored position and links with no duplicates.
 * - Dry runs (`dryRun`, the plan) compare every resource of the scope and write nothing but the
 *   run and its items (outcome `planned`).
 */
import { randomUUID } from 'node:crypto';
import type { BackgroundWorker } from '../../app.ts';
import { ScimError } from '../../scim/errors.ts';
import { scimBase } from '../../events/outbound/emit.ts';
import { effectiveLimits } from '../../tenancy/settings.ts';
import type { Connection, Flow, ItemAction, RunState, RunTrigger } from '../types.ts';
import { Authority } from './authority.ts';
import {
  errorText,
  RunAborted,
  RunInterrupted,
  syncClientId,
  type EngineDeps,
  type EngineState,
  type ItemRecord,
  type Job,
  type Recorder,
} from './job.ts';
import { LinkStore } from './links.ts';
import { runPull } from './pull.ts';
import { runPush } from './push.ts';
import { toPlan, type Plan } from './reconcile.ts';
import { requestRun } from '../triggers/requests.ts';
import { currentPosition } from '../../store/changes.ts';

/** Run items written per statement (see writeItems in FlowRunner.start). */
const ITEM_BATCH = 100;

/** Where the runner finds flows and connections (FlowService / ConnectionService, or a test's). */
export interface FlowSource {
  flow(tenant: string, id: string): Promise<Flow | undefined>;
  connection(tenant: string, id: string): Promise<Connection | undefined>;
}

export interface RunnerOptions extends EngineDeps {
  source: FlowSource;
  log?: { error(obj: object, msg: string): void };
  /** Lease length (default 60 s); renewed when less than half is left. */
  leaseMs?: number;
  /** How often the background loop looks for requested flows without a wake-up (default 2 s). */
  intervalMs?: number;
  /** Called at every item's end (tests: throw to stop a run there, or hang to play a dead node). */
  onCheckpoint?: (done: number) => void | Promise<void>;
  /** This node's name in leases and runs (default a random id). */
  node?: string;
}

export interface RunOptions {
  trigger?: RunTrigger;
  /** Plan only: write nothing but the run and its planned items. */
  dryRun?: boolean;
  /** Compare every resource in scope whatever the flow's mode (reconciliation apply). */
  full?: boolean;
  /**
   * Called in this process whenever the run's progress moves (an item recorded or skipped, the
   * total grown), with the counts so far: the CLI's progress bar in direct mode. Must not throw;
   * it is not persisted (the run row is, every 500 ms, for other processes).
   */
  onProgress?: (done: number, total: number | undefined) => void;
  /**
   * Stops the run before its next item when aborted (the items in flight finish): the run ends
   * `failed` with the signal's reason and the flow's lease is released (`scimd flow run` on Ctrl-C).
   */
  signal?: AbortSignal;
}

export interface RunCounts {
  created: number;
  updated: number;
  deleted: number;
  skipped: number;
  failed: number;
}

/** A run as the admin API and CLI show it. */
export interface RunView {
  tenant: string;
  flowId: string;
  id: string;
  trigger: string;
  mode: string;
  dryRun: boolean;
  state: RunState;
  node?: string;
  done: number;
  total?: number;
  /** Items per second so far (or over the whole run once finished). */
  rate: number;
  counts: RunCounts;
  error?: string;
  started: string;
  heartbeat: string;
  finished?: string;
}

export interface RunItemView {
  seq: number;
  resourceType: string;
  localId?: string;
  remoteId?: string;
  action: ItemAction;
  outcome: 'done' | 'failed' | 'planned';
  attributes?: string[];
  error?: string;
  at: string;
}

export interface StartedRun {
  run: RunView;
  /** Resolves with the finished run (never rejects: a failure is the run's state). */
  done: Promise<RunView>;
  /** The items recorded in memory (with per-attribute values), e.g. for the plan. */
  items: ItemRecord[];
}

interface RunRow {
  tenant_id: string;
  flow_id: string;
  id: string;
  trigger: string;
  mode: string;
  dry_run: boolean;
  state: RunState;
  node: string | null;
  done: number;
  total: number | null;
  created_count: number;
  updated_count: number;
  deleted_count: number;
  skipped_count: number;
  failed_count: number;
  error: string | null;
  started: Date;
  heartbeat: Date;
  finished: Date | null;
}

const RUN_COLUMNS = `tenant_id, flow_id, id, trigger, mode, dry_run, state, node, done, total, created_count,
  updated_count, deleted_count, skipped_count, failed_count, error, started, heartbeat, finished`;

export function runView(r: RunRow): RunView {
  const end = r.finished ? new Date(r.finished) : new Date(r.heartbeat);
  const secs = Math.max(0.001, (end.getTime() - new Date(r.started).getTime()) / 1000);
  const v: RunView = {
    tenant: r.tenant_id,
    flowId: r.flow_id,
    id: r.id,
    trigger: r.trigger,
    mode: r.mode,
    dryRun: r.dry_run,
    state: r.state,
    done: r.done,
    rate: Math.round((r.done / secs) * 10) / 10,
    counts: {
      created: r.created_count,
      updated: r.updated_count,
      deleted: r.deleted_count,
      skipped: r.skipped_count,
      failed: r.failed_count,
    },
    started: new Date(r.started).toISOString(),
    heartbeat: new Date(r.heartbeat).toISOString(),
  };
  if (r.node !== null) v.node = r.node;
  if (r.total !== null) v.total = r.total;
  if (r.error !== null) v.error = r.error;
  if (r.finished !== null) v.finished = new Date(r.finished).toISOString();
  return v;
}

/** Marks runs left running by a node whose lease expired as abandoned, and requests their flows again. */
const SWEEP_SQL = `WITH dead AS (
    UPDATE sync_runs r SET state = 'abandoned', finished = clock_timestamp(),
           error = COALESCE(r.error, 'its node stopped before the end (lease expired)')
      FROM sync_flows f
     WHERE r.state = 'running' AND f.tenant_id = r.tenant_id AND f.id = r.flow_id
       AND (f.lease_owner IS NULL OR f.lease_until < clock_timestamp())
    RETURNING r.tenant_id, r.flow_id, r.trigger, r.dry_run
  )
  UPDATE sync_flows f SET run_requested = COALESCE(f.run_requested, clock_timestamp()),
         run_requested_trigger = COALESCE(f.run_requested_trigger, d.trigger)
    FROM dead d
   WHERE f.tenant_id = d.tenant_id AND f.id = d.flow_id AND NOT d.dry_run AND f.enabled
  RETURNING f.id`;

/** How often a flow waiting to catch up checks whether the log position has moved on (catchUpLater). */
const CATCH_UP_MS = 500;

export class FlowRunner implements BackgroundWorker {
  readonly name = 'sync-runner';
  readonly node: string;
  private readonly leaseMs: number;
  private readonly intervalMs: number;
  private readonly running = new Map<string, Promise<RunView>>();
  /** Pending catch-up requests (catchUpLater), cleared by stop(). */
  private readonly catchUps = new Set<NodeJS.Timeout>();
  private stopping = new AbortController();
  private loop?: Promise<void>;
  private wakeUp?: () => void;

  constructor(private readonly opts: RunnerOptions) {
    this.node = opts.node ?? randomUUID();
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.intervalMs = opts.intervalMs ?? 2_000;
  }

  private get db() {
    return this.opts.db;
  }

  // ---- background loop ------------------------------------------------------------------------

  start(): void {
    if (this.loop) return;
    this.stopping = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const t of this.catchUps) clearTimeout(t);
    this.catchUps.clear();
    this.wakeUp?.();
    await this.loop;
    this.loop = undefined;
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * A `changes` push that left committed changes above its position (job.catchUp) is requested
   * again once the log position has moved past that position (checked every CATCH_UP_MS): then the
   * next window holds those changes. While a long transaction holds the position back, only this
   * cheap check repeats, no run.
   */
  private catchUpLater(tenant: string, flowId: string, position: string): void {
    if (this.stopping.signal.aborted) return;
    const timer = setTimeout(() => {
      this.catchUps.delete(timer);
      currentPosition(this.db)
        .then(async (now) => {
          if (BigInt(now) <= BigInt(position)) return this.catchUpLater(tenant, flowId, position);
          if (await requestRun(this.db, tenant, flowId, 'change')) this.wake();
        })
        .catch((err: unknown) =>
          this.opts.log?.error({ tenant, flow: flowId, err: errorText(err) }, 'sync catch-up request failed'),
        );
    }, CATCH_UP_MS);
    timer.unref();
    this.catchUps.add(timer);
  }

  /** Looks for requested flows now (triggers of this node call it after storing a request). */
  wake(): void {
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    const abort = this.stopping.signal;
    while (!abort.aborted) {
      try {
        await this.runRequestedOnce();
      } catch (err) {
        this.opts.log?.error({ err: errorText(err) }, 'sync runner pass failed');
      }
      if (abort.aborted) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.intervalMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  /** One pass: abandoned runs swept, then each requested flow with a free lease run (one after the other). */
  async runRequestedOnce(): Promise<RunView[]> {
    await this.db.query(SWEEP_SQL);
    const res = await this.db.query<{ tenant_id: string; id: string; trigger: string | null }>(
      `SELECT tenant_id, id, run_requested_trigger AS trigger FROM sync_flows
        WHERE run_requested IS NOT NULL AND enabled
          AND (lease_owner IS NULL OR lease_until < clock_timestamp())
        ORDER BY run_requested LIMIT 20`,
    );
    const out: RunView[] = [];
    for (const r of res.rows) {
      if (this.stopping.signal.aborted) break;
      try {
        const started = await this.startRun(r.tenant_id, r.id, {
          trigger: (r.trigger ?? 'schedule') as RunTrigger,
        });
        out.push(await started.done);
      } catch (err) {
        if (err instanceof ScimError && err.status === 409) continue; // another node took it
        this.opts.log?.error(
          { tenant: r.tenant_id, flow: r.id, err: errorText(err) },
          'sync run failed to start',
        );
      }
    }
    return out;
  }

  // ---- runs -----------------------------------------------------------------------------------

  /** Runs a flow to its end. 404 unknown flow, 409 when a run of it is going on (here or on another node). */
  async runFlow(tenant: string, flowId: string, opts: RunOptions = {}): Promise<RunView> {
    return (await this.startRun(tenant, flowId, opts)).done;
  }

  /** The plan (reconcile.ts): a dry run, with the per-attribute differences of each planned item. */
  async plan(tenant: string, flowId: string, trigger: RunTrigger = 'manual'): Promise<Plan> {
    const flow = await this.opts.source.flow(tenant, flowId);
    if (!flow) throw ScimError.notFound(`No flow ${flowId} in tenant ${tenant}`);
    const started = await this.startRun(tenant, flowId, { trigger, dryRun: true });
    const run = await started.done;
    return toPlan(flow.direction, run, started.items);
  }

  /** Takes the lease and starts the run; `done` resolves at its end. */
  async startRun(tenant: string, flowId: string, opts: RunOptions = {}): Promise<StartedRun> {
    const flow = await this.opts.source.flow(tenant, flowId);
    if (!flow) throw ScimError.notFound(`No flow ${flowId} in tenant ${tenant}`);
    const connection = await this.opts.source.connection(tenant, flow.connectionId);
    if (!connection) throw ScimError.notFound(`No connection ${flow.connectionId} in tenant ${tenant}`);
    const key = `${tenant}\u0000${flowId}`;
    if (this.running.has(key)) throw ScimError.conflict(`Flow ${flowId} is running on this node`);
    const dryRun = opts.dryRun ?? false;
    const lease = await this.db.query<{ state: EngineState }>(
      `UPDATE sync_flows SET lease_owner = $3, lease_until = clock_timestamp() + $4 * interval '1 millisecond',
              run_requested = CASE WHEN $5 THEN NULL ELSE run_requested END,
              run_requested_trigger = CASE WHEN $5 THEN NULL ELSE run_requested_trigger END
        WHERE tenant_id = $1 AND id = $2 AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < clock_timestamp())
        RETURNING state`,
      [tenant, flowId, this.node, this.leaseMs, !dryRun],
    );
    if (lease.rows.length === 0)
      throw ScimError.conflict(`Flow ${flowId} is running (another runner holds its lease)`);
    let leaseUntil = Date.now() + this.leaseMs;
    const trigger = opts.trigger ?? 'manual';
    const runId = randomUUID();
    let row: RunRow;
    try {
      // This node holds the lease now: a run still marked running is one whose node died.
      await this.db.query(
        `UPDATE sync_runs SET state = 'abandoned', finished = clock_timestamp(),
                error = COALESCE(error, 'its node stopped before the end (lease expired)')
          WHERE tenant_id = $1 AND flow_id = $2 AND state = 'running'`,
        [tenant, flowId],
      );
      const ins = await this.db.query<RunRow>(
        `INSERT INTO sync_runs (tenant_id, flow_id, id, trigger, mode, dry_run, state, node)
         VALUES ($1, $2, $3, $4, $5, $6, 'running', $7) RETURNING ${RUN_COLUMNS}`,
        [tenant, flowId, runId, trigger, opts.full ? 'full' : flow.mode, dryRun, this.node],
      );
      row = ins.rows[0];
    } catch (e) {
      await this.release(tenant, flowId);
      throw e;
    }

    const counts: RunCounts = { created: 0, updated: 0, deleted: 0, skipped: 0, failed: 0 };
    const items: ItemRecord[] = [];
    let done = 0;
    let total: number | undefined;
    let seq = 0;
    let flushedAt = Date.now();
    const db = this.db;
    const node = this.node;
    const leaseMs = this.leaseMs;
    const flush = async () => {
      await writeItems();
      await db.query(
        `UPDATE sync_runs SET done = $4, total = $5, created_count = $6, updated_count = $7, deleted_count = $8,
                skipped_count = $9, failed_count = $10, heartbeat = clock_timestamp()
          WHERE tenant_id = $1 AND flow_id = $2 AND id = $3 AND state = 'running'`,
        [
          tenant,
          flowId,
          runId,
          done,
          total ?? null,
          counts.created,
          counts.updated,
          counts.deleted,
          counts.skipped,
          counts.failed,
        ],
      );
      flushedAt = Date.now();
    };
    // Run items are written ITEM_BATCH at a time (and at each flush and the run's end): one
    // statement per item was a third of a run's local writes. A node dying mid-run loses at most
    // the unwritten items of a run that is then marked abandoned; links and retries are per item.
    type ItemRow = [
      number,
      string,
      string | null,
      string | null,
      string,
      string,
      string[] | null,
      string | null,
    ];
    let pendingItems: ItemRow[] = [];
    const writeItems = async () => {
      if (pendingItems.length === 0) return;
      const rows = pendingItems;
      pendingItems = [];
      const col = (i: number) => rows.map((r) => r[i]);
      await db.query(
        `INSERT INTO sync_run_items (tenant_id, flow_id, run_id, seq, resource_type, local_id, remote_id, action,
                                     outcome, attributes, error)
         SELECT $1, $2, $3, u.seq, u.resource_type, u.local_id, u.remote_id, u.action, u.outcome,
                CASE WHEN u.attributes IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(u.attributes)) END,
                u.error
           FROM unnest($4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::text[])
             AS u(seq, resource_type, local_id, remote_id, action, outcome, attributes, error)`,
        [
          tenant,
          flowId,
          runId,
          col(0),
          col(1),
          col(2),
          col(3),
          col(4),
          col(5),
          rows.map((r) => (r[6] === null ? null : JSON.stringify(r[6]))),
          col(7),
        ],
      );
    };
    const recorder: Recorder = {
      async record(item) {
        items.push(item);
        if (item.outcome === 'failed') counts.failed++;
        else if (item.action === 'create') counts.created++;
        else if (item.action === 'update') counts.updated++;
        else if (item.action === 'delete' || item.action === 'deactivate') counts.deleted++;
        else counts.skipped++;
        done++;
        opts.onProgress?.(done, total);
        pendingItems.push([
          ++seq,
          item.resourceType,
          item.localId ?? null,
          item.remoteId ?? null,
          item.action,
          item.outcome,
          item.attributes ? item.attributes.map((a) => a.path) : null,
          item.error ?? null,
        ]);
        if (pendingItems.length >= ITEM_BATCH) await writeItems();
      },
      skipped(n = 1) {
        counts.skipped += n;
        done += n;
        opts.onProgress?.(done, total);
      },
      addTotal(n) {
        total = (total ?? 0) + n;
        opts.onProgress?.(done, total);
      },
      checkpoint: async () => {
        if (opts.signal?.aborted) {
          const reason: unknown = opts.signal.reason;
          throw new RunInterrupted(
            `the run was stopped: ${reason instanceof Error ? reason.message : String(reason ?? 'aborted')}`,
          );
        }
        await this.opts.onCheckpoint?.(done);
        if (leaseUntil - Date.now() < leaseMs / 2) {
          const r = await db.query(
            `UPDATE sync_flows SET lease_until = clock_timestamp() + $4 * interval '1 millisecond'
              WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 RETURNING id`,
            [tenant, flowId, node, leaseMs],
          );
          if (r.rows.length === 0)
            throw new RunAborted('the flow lease was lost (another node took the flow over)');
          leaseUntil = Date.now() + leaseMs;
        }
        if (Date.now() - flushedAt >= 500) await flush();
      },
    };
    const deps: EngineDeps = this.opts;
    const tenantRow = await deps.tenants.get(tenant);
    const job: Job = {
      deps,
      flow,
      connection,
      client: deps.clientFor(connection),
      ctx: {
        tenant,
        baseUrl: scimBase(deps.config, tenant),
        clientId: syncClientId(flowId),
        limits: effectiveLimits(deps.config, tenantRow?.settings ?? {}),
        settings: (tenantRow?.settings ?? {}) as Record<string, unknown>,
        hideSensitive: false,
      },
      links: new LinkStore(db, tenant, flowId),
      authority: new Authority(flow.authority, flow.direction),
      dryRun,
      full: dryRun || (opts.full ?? false),
      state: lease.rows[0].state ?? {},
      saveState: async () => {
        if (dryRun) return;
        const r = await db.query(
          'UPDATE sync_flows SET state = $4 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 RETURNING id',
          [tenant, flowId, node, JSON.stringify(job.state)],
        );
        if (r.rows.length === 0)
          throw new RunAborted('the flow lease was lost (another node took the flow over)');
      },
      recorder,
      handled: new Set(),
    };

    const execute = async (): Promise<RunView> => {
      let state: RunState = 'succeeded';
      let error: string | undefined;
      let aborted = false;
      try {
        if (flow.direction === 'push') await runPush(job);
        else await runPull(job);
        if (counts.failed > 0) state = 'partial';
      } catch (e) {
        // A lost lease belongs to another node now; an interrupted run is still this node's to end.
        aborted = e instanceof RunAborted && !(e instanceof RunInterrupted);
        state = 'failed';
        error = errorText(e);
      } finally {
        job.client.close();
      }
      try {
        await writeItems();
        if (!aborted) {
          await db.query(
            `UPDATE sync_runs SET state = $4, error = $5, done = $6, total = $7, created_count = $8, updated_count = $9,
                    deleted_count = $10, skipped_count = $11, failed_count = $12, heartbeat = clock_timestamp(),
                    finished = clock_timestamp()
              WHERE tenant_id = $1 AND flow_id = $2 AND id = $3 AND state = 'running'`,
            [
              tenant,
              flowId,
              runId,
              state,
              error ?? null,
              done,
              Math.max(total ?? 0, done),
              counts.created,
              counts.updated,
              counts.deleted,
              counts.skipped,
              counts.failed,
            ],
          );
          await this.release(tenant, flowId);
          if (job.catchUp !== undefined && !dryRun) this.catchUpLater(tenant, flowId, job.catchUp);
        }
      } catch (e) {
        this.opts.log?.error({ tenant, flow: flowId, err: errorText(e) }, 'sync run could not be finished');
      }
      const finished = await this.getRun(tenant, flowId, runId);
      return finished ?? runView(row);
    };
    const donePromise = execute().finally(() => this.running.delete(key));
    this.running.set(key, donePromise);
    return { run: runView(row), done: donePromise, items };
  }

  private async release(tenant: string, flowId: string): Promise<void> {
    await this.db.query(
      `UPDATE sync_flows SET lease_owner = NULL, lease_until = NULL
        WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`,
      [tenant, flowId, this.node],
    );
  }

  // ---- history --------------------------------------------------------------------------------

  async getRun(tenant: string, flowId: string, runId: string): Promise<RunView | undefined> {
    const res = await this.db.query<RunRow>(
      `SELECT ${RUN_COLUMNS} FROM sync_runs WHERE tenant_id = $1 AND flow_id = $2 AND id = $3`,
      [tenant, flowId, runId],
    );
    return res.rows[0] ? runView(res.rows[0]) : undefined;
  }

  /** The flow's runs, newest first. */
  async listRuns(
    tenant: string,
    flowId: string,
    opts: { limit?: number; offset?: number } = {},
  ): Promise<RunView[]> {
    const res = await this.db.query<RunRow>(
      `SELECT ${RUN_COLUMNS} FROM sync_runs WHERE tenant_id = $1 AND flow_id = $2
        ORDER BY started DESC, id LIMIT $3 OFFSET $4`,
      [tenant, flowId, Math.min(Math.max(opts.limit ?? 50, 1), 1000), Math.max(opts.offset ?? 0, 0)],
    );
    return res.rows.map(runView);
  }

  /** A run's items in order, paged by seq. */
  async runItems(
    tenant: string,
    flowId: string,
    runId: string,
    opts: { after?: number; limit?: number } = {},
  ): Promise<RunItemView[]> {
    const res = await this.db.query<{
      seq: number;
      resource_type: string;
      local_id: string | null;
      remote_id: string | null;
      action: ItemAction;
      outcome: 'done' | 'failed' | 'planned';
      attributes: string[] | null;
      error: string | null;
      at: Date;
    }>(
      `SELECT seq, resource_type, local_id, remote_id, action, outcome, attributes, error, at FROM sync_run_items
        WHERE tenant_id = $1 AND flow_id = $2 AND run_id = $3 AND seq > $4 ORDER BY seq LIMIT $5`,
      [tenant, flowId, runId, Math.max(opts.after ?? 0, 0), Math.min(Math.max(opts.limit ?? 100, 1), 1000)],
    );
    return res.rows.map((r) => {
      const v: RunItemView = {
        seq: r.seq,
        resourceType: r.resource_type,
        action: r.action,
        outcome: r.outcome,
        at: new Date(r.at).toISOString(),
      };
      if (r.local_id !== null) v.localId = r.local_id;
      if (r.remote_id !== null) v.remoteId = r.remote_id;
      if (r.attributes !== null) v.attributes = r.attributes;
      if (r.error !== null) v.error = r.error;
      return v;
    });
  }
}
