/**
 * Schedule trigger (use-case behaviour 13): a flow with `schedule` (a cron expression, croner
 * syntax) is requested with trigger 'schedule' at each time the expression names.
 *
 * - Every enabled flow with a schedule, of every tenant, has one Cron on this node. Times are UTC
 *   unless the schedule starts with a time zone: `TZ=Europe/Paris 0 2 * * *` (or `CRON_TZ=`).
 *   Five fields (minute precision), six (a leading seconds field) or seven (a trailing year).
 * - The table is read again every `pollMs` (30 s) and on `reload()`: a flow whose schedule or
 *   `updated` changed gets a new Cron, a removed, disabled or unscheduled flow loses its Cron.
 * - Several nodes: every node's Cron fires. Requesting is idempotent (a pending request is kept,
 *   see requests.ts) and the runner's lease lets one node run the flow, so a tick makes one run
 *   whatever the number of nodes.
 * - A tick only requests: a run that lasts past the next tick is not doubled (the request waits
 *   for the runner, which takes it after the current run).
 *
 * Tests leave the worker stopped (backgroundWorkers: false) and call `reload()` and
 * `tick(now, since)`, which compute the due flows with croner's `nextRun(from)` instead of waiting
 * real minutes.
 */
import { Cron } from 'croner';
import type { Queryable } from '../../store/db.ts';
import type { RunTrigger } from '../types.ts';
import type { FlowRef } from './requests.ts';

/** A schedule split into its cron pattern and time zone. */
export interface ParsedSchedule {
  pattern: string;
  timezone: string;
}

const TZ_PREFIX = /^\s*(?:CRON_)?TZ=(\S+)\s+(.*)$/;

/**
 * Reads a flow's schedule (`[TZ=<zone> ]<cron>`) and checks it with croner; throws an Error that
 * says what is wrong. The flow configuration can use it to refuse a bad schedule up front.
 */
export function parseSchedule(text: string): ParsedSchedule {
  const m = TZ_PREFIX.exec(text);
  const parsed = m ? { pattern: m[2].trim(), timezone: m[1] } : { pattern: text.trim(), timezone: 'UTC' };
  try {
    // The time zone is checked by formatting a date in it (croner accepts any name at construction).
    new Intl.DateTimeFormat('en', { timeZone: parsed.timezone });
  } catch {
    throw new Error(`unknown time zone ${parsed.timezone}`);
  }
  const cron = scheduleCron(parsed);
  if (cron.nextRun(new Date()) === null) throw new Error(`the schedule "${text}" names no future time`);
  return parsed;
}

/**
 * When a flow's schedule next fires after `from` (undefined: never), the way this trigger reads
 * it (UTC unless `TZ=` says otherwise). Throws like parseSchedule. For views (a flow's nextRun).
 */
export function nextScheduledRun(text: string, from: Date = new Date()): Date | undefined {
  const cron = scheduleCron(parseSchedule(text));
  try {
    return cron.nextRun(from) ?? undefined;
  } finally {
    cron.stop();
  }
}

function scheduleCron(s: ParsedSchedule, fire?: () => void): Cron {
  const opts = { timezone: s.timezone, unref: true };
  return fire ? new Cron(s.pattern, opts, fire) : new Cron(s.pattern, opts);
}

interface Scheduled extends FlowRef {
  schedule: string;
  updated: string;
  parsed: ParsedSchedule;
  cron: Cron;
}

export interface ScheduleTriggerDeps {
  db: Queryable;
  /** Stores a run request (RunRequests.requestRun: also wakes the runner). */
  request: (tenant: string, flowId: string, trigger: RunTrigger) => Promise<boolean>;
  log?: { error(obj: object, msg: string): void; warn?(obj: object, msg: string): void };
  /** Milliseconds between reads of the flow table (default 30 s). */
  pollMs?: number;
}

export class ScheduleTrigger {
  readonly name = 'sync-schedules';
  private readonly flows = new Map<string, Scheduled>();
  private running = false;
  private poller: NodeJS.Timeout | undefined;
  private loading: Promise<void> = Promise.resolve();
  private inFlight = new Set<Promise<unknown>>();
  private lastTick = new Date();

  constructor(private readonly deps: ScheduleTriggerDeps) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    // Crons built before start (tests, an early reload) are rebuilt with their callbacks.
    for (const f of this.flows.values()) f.cron.stop();
    this.flows.clear();
    // Errors are logged by reload(); the next poll tries again.
    const poll = () => void this.reload().catch(() => undefined);
    poll();
    this.poller = setInterval(poll, this.deps.pollMs ?? 30_000);
    this.poller.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    await this.loading;
    for (const f of this.flows.values()) f.cron.stop();
    this.flows.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  /** The flows that have a Cron on this node, with their schedules (sorted). */
  scheduled(): (FlowRef & { schedule: string })[] {
    return [...this.flows.values()]
      .map((f) => ({ tenant: f.tenant, flowId: f.flowId, schedule: f.schedule }))
      .sort((a, b) => a.tenant.localeCompare(b.tenant) || a.flowId.localeCompare(b.flowId));
  }

  /** Reads the scheduled flows again (the flow configuration may call it after a change). */
  reload(): Promise<void> {
    const next = this.loading.then(() => this.load());
    this.loading = next.catch((err: unknown) => {
      this.deps.log?.error({ err }, 'loading sync flow schedules failed');
    });
    return next;
  }

  private async load(): Promise<void> {
    const res = await this.deps.db.query<{ tenant_id: string; id: string; schedule: string; updated: Date }>(
      `SELECT tenant_id, id, schedule, updated FROM sync_flows
        WHERE enabled AND schedule IS NOT NULL AND schedule <> ''`,
    );
    const seen = new Set<string>();
    for (const row of res.rows) {
      const key = `${row.tenant_id}\0${row.id}`;
      seen.add(key);
      const updated = new Date(row.updated).toISOString();
      const old = this.flows.get(key);
      if (old && old.schedule === row.schedule && old.updated === updated) continue;
      old?.cron.stop();
      this.flows.delete(key);
      let parsed: ParsedSchedule;
      try {
        parsed = parseSchedule(row.schedule);
      } catch (err) {
        this.deps.log?.error(
          { err, tenant: row.tenant_id, flow: row.id },
          `sync flow schedule "${row.schedule}" is invalid; the flow is not scheduled`,
        );
        continue;
      }
      const ref = { tenant: row.tenant_id, flowId: row.id };
      const cron = scheduleCron(parsed, this.running ? () => this.fire(ref) : undefined);
      this.flows.set(key, { ...ref, schedule: row.schedule, updated, parsed, cron });
    }
    for (const [key, f] of this.flows) {
      if (seen.has(key)) continue;
      f.cron.stop();
      this.flows.delete(key);
    }
  }

  /**
   * The flows with a scheduled time in (since, now]: what the Crons would have fired between the
   * two instants (computed with nextRun, no waiting).
   */
  due(now: Date, since: Date): FlowRef[] {
    const out: FlowRef[] = [];
    for (const f of this.flows.values()) {
      const next = f.cron.nextRun(since);
      if (next && next.getTime() <= now.getTime()) out.push({ tenant: f.tenant, flowId: f.flowId });
    }
    return out.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.flowId.localeCompare(b.flowId));
  }

  /**
   * Requests the flows due in (since, now] (since defaults to the previous tick, or the creation
   * of this trigger) with trigger 'schedule'; returns those requested (enabled and found).
   */
  async tick(now: Date, since: Date = this.lastTick): Promise<FlowRef[]> {
    this.lastTick = now;
    const requested: FlowRef[] = [];
    for (const ref of this.due(now, since)) {
      if (await this.deps.request(ref.tenant, ref.flowId, 'schedule')) requested.push(ref);
    }
    return requested;
  }

  /** A Cron fired (running worker). */
  private fire(ref: FlowRef): void {
    const p = this.deps.request(ref.tenant, ref.flowId, 'schedule').catch((err: unknown) => {
      this.deps.log?.error(
        { err, tenant: ref.tenant, flow: ref.flowId },
        'scheduled sync run request failed',
      );
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }
}
