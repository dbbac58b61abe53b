/**
 * Event trigger (use-case behaviour 14): when the events applier (src/events/inbound/applier.ts)
 * has processed SETs received from an upstream (applied, skipped as stale, or given up), it reports
 * the upstream and the resource types it changed. This trigger then requests, with trigger
 * 'event':
 * - the enabled flows with `mode: 'events'` fed by that upstream (`upstreamId`);
 * - the enabled push flows with `mode: 'changes'` and `onLocalChange` covering a changed type: a
 *   change received from upstream is a local change for the downstream targets (an identity
 *   manager chaining upstream → this node → downstream, use case 26). Push flows on the
 *   connection of an events flow of that upstream are left out (no echo back to the source).
 * The applier's own writes (client `upstream:<id>`) are skipped by the local-change trigger, so
 * each such change is requested once, here.
 */
import type { Queryable } from '../../store/db.ts';
import type { RunTrigger } from '../types.ts';

/** What the applier reports after a pass, per tenant and upstream. */
export interface ProcessedEvents {
  tenant: string;
  upstreamId: string;
  /** Resource types written by applied events (empty when every event was skipped or failed). */
  resourceTypes: string[];
}

export interface EventTriggerDeps {
  db: Queryable;
  /** Stores requests (RunRequests.requestRuns: also wakes the runner). */
  request: (tenant: string, flowIds: string[], trigger: RunTrigger) => Promise<string[]>;
  log?: { error(obj: object, msg: string): void };
}

export class EventTrigger {
  private working: Promise<void> = Promise.resolve();

  constructor(private readonly deps: EventTriggerDeps) {}

  /** The applier's callback: requests in the background (one report after another). */
  notify(batch: ProcessedEvents[]): void {
    this.working = this.working
      .then(async () => {
        for (const p of batch) await this.requestFor(p);
      })
      .catch((err: unknown) =>
        this.deps.log?.error({ err }, 'requesting sync runs after received events failed'),
      );
  }

  /** Resolves when the reports so far have been handled (tests, shutdown). */
  async idle(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.working;
      await current;
    } while (current !== this.working);
  }

  /** Requests the flows one report concerns; returns their ids. */
  async requestFor(p: ProcessedEvents): Promise<string[]> {
    const res = await this.deps.db.query<{ id: string }>(
      `SELECT id FROM sync_flows f
        WHERE tenant_id = $1 AND enabled AND (
              (mode = 'events' AND upstream_id = $2)
           OR (direction = 'push' AND mode = 'changes' AND on_local_change
               AND EXISTS (SELECT 1 FROM unnest(f.resource_types) t WHERE lower(t) = ANY($3::text[]))
               AND connection_id NOT IN (SELECT e.connection_id FROM sync_flows e
                                          WHERE e.tenant_id = $1 AND e.mode = 'events' AND e.upstream_id = $2)))`,
      [p.tenant, p.upstreamId, p.resourceTypes.map((t) => t.toLowerCase())],
    );
    const ids = res.rows.map((r) => r.id);
    return ids.length > 0 ? this.deps.request(p.tenant, ids, 'event') : [];
  }
}
