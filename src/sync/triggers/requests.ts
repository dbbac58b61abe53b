/**
 * Run requests: the only thing a trigger does. A trigger (schedule, local change, received
 * event, JIT sign-in, API, CLI) never runs a flow itself; it marks the flow's row
 * (`sync_flows.run_requested`, `run_requested_trigger`) and wakes the runner of this node. The
 * runner (src/sync/engine/runner.ts) takes requested flows on any node that gets the flow's
 * lease, so a request survives the node that made it, and several nodes requesting the same flow
 * (every node's cron fires) make one run.
 *
 * Idempotent: a request while one is pending keeps the pending one (its time and its trigger):
 * `run_requested = COALESCE(run_requested, statement_timestamp())`. Only enabled flows are requested.
 * The flows of one request get one time (statement_timestamp(); clock_timestamp() is read again for
 * each row, so flows requested together could differ by a moment).
 */
import type { Queryable } from '../../store/db.ts';
import type { RunTrigger } from '../types.ts';

/** Called after a request was stored, so the local runner looks at once (registered by the runner). */
export type RunWake = () => void;

/** A flow named by tenant and id. */
export interface FlowRef {
  tenant: string;
  flowId: string;
}

const REQUEST_SQL = `UPDATE sync_flows
    SET run_requested_trigger = CASE WHEN run_requested IS NULL THEN $3 ELSE run_requested_trigger END,
        run_requested = COALESCE(run_requested, statement_timestamp())
  WHERE tenant_id = $1 AND id = ANY($2::text[]) AND enabled
  RETURNING id`;

/**
 * Requests a run of one flow. True when the flow exists, is enabled and now has a pending
 * request (this one, or an earlier one that is kept); false for an unknown or disabled flow.
 */
export async function requestRun(
  db: Queryable,
  tenant: string,
  flowId: string,
  trigger: RunTrigger,
): Promise<boolean> {
  return (await requestRuns(db, tenant, [flowId], trigger)).length === 1;
}

/** Requests runs of several flows of one tenant in one statement; returns the ids requested. */
export async function requestRuns(
  db: Queryable,
  tenant: string,
  flowIds: readonly string[],
  trigger: RunTrigger,
): Promise<string[]> {
  if (flowIds.length === 0) return [];
  const res = await db.query<{ id: string }>(REQUEST_SQL, [tenant, [...new Set(flowIds)], trigger]);
  return res.rows.map((r) => r.id).sort();
}

/**
 * The requests of one node with its wake-up listeners: triggers call `request`, the runner
 * registers with `onRequest`. Listeners are called after a request was stored (never for a
 * request that found no enabled flow); a throwing listener does not stop the others.
 */
export class RunRequests {
  private readonly listeners = new Set<RunWake>();

  constructor(
    private readonly db: Queryable,
    private readonly log?: { error(obj: object, msg: string): void },
  ) {}

  /** Registers a wake-up callback; returns a function that removes it. */
  onRequest(cb: RunWake): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** requestRun, then wakes the listeners when the flow was requested. */
  async requestRun(tenant: string, flowId: string, trigger: RunTrigger): Promise<boolean> {
    const done = await requestRun(this.db, tenant, flowId, trigger);
    if (done) this.wake();
    return done;
  }

  /** requestRuns, then wakes the listeners when any flow was requested. */
  async requestRuns(tenant: string, flowIds: readonly string[], trigger: RunTrigger): Promise<string[]> {
    const done = await requestRuns(this.db, tenant, flowIds, trigger);
    if (done.length > 0) this.wake();
    return done;
  }

  private wake(): void {
    for (const cb of this.listeners) {
      try {
        cb();
      } catch (err) {
        this.log?.error({ err }, 'sync run wake-up listener failed');
      }
    }
  }
}
