/**
 * `scimd flow run|plan|history`: the sync engine's runs from the command line (src/sync/engine).
 *
 *   flow run <id> [--dry-run] [--full]   run the flow now and wait for its end, with a progress
 *                                        bar on a terminal (never with --json); --dry-run prints
 *                                        the plan instead (nothing written but the dry run)
 *   flow plan <id>                       the reconciliation plan: creates, updates per attribute
 *                                        (path, local, remote, owner), deletes, links
 *   flow history <id> [--limit n]        the run history, newest first
 *   flow history <id> --run <runId>      one run with every item (per-resource outcome)
 *
 * Direct mode runs the flow in this process with its own FlowRunner on the store (trigger
 * `manual`; the flow's lease keeps a server's runner from running it at the same time). Remote
 * mode (--url) asks the server: POST .../runs with wait:false (trigger `api`), then polls
 * GET .../runs/{runId} for the progress until the run ends; the plan is POST .../plan.
 *
 * Exit codes of a run: 0 succeeded; 2 partial (some items failed, the others are done; the failed
 * items are listed on stderr); 1 failed or abandoned (the run stopped; its error on stderr), or the
 * run could not start (unknown flow, flow already running...). The run is printed on stdout
 * whenever it started.
 */
import { randomBytes } from 'node:crypto';
import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { createServerRegistry } from '../registry.ts';
import { ScimError } from '../scim/errors.ts';
import type { JsonValue } from '../scim/json.ts';
import { CursorCodec } from '../service/cursor.ts';
import { ResourceService } from '../service/resources.ts';
import type { Database } from '../store/db.ts';
import { ConnectionService } from '../sync/connections.ts';
import { policyClientFor } from '../sync/tls-policy.ts';
import { toPlan, type Plan } from '../sync/engine/reconcile.ts';
import { FlowRunner, type RunItemView, type RunView } from '../sync/engine/runner.ts';
import { FlowService, type FlowInput, type FlowPatch, type FlowView } from '../sync/flows.ts';
import { TenantDirectory } from '../tenancy/directory.ts';
import { adminHttp, type AdminCall } from './admin-http.ts';
import { tenantOption } from './client.ts';
import { addConnectionOptions, openStore, remoteToken, type ConnectionOptions } from './context.ts';
import { CliError, details, emit, table } from './output.ts';

export type Progress = (done: number, total: number | undefined) => void;
export type RunWithItems = RunView & { items: RunItemView[] };

/** What the run commands need, on the store (direct) or a server's admin API (remote). */
export interface RunsApi {
  listFlows(tenant: string, connectionId?: string): Promise<FlowView[]>;
  createFlow(tenant: string, input: FlowInput): Promise<FlowView>;
  updateFlow(tenant: string, id: string, patch: FlowPatch): Promise<FlowView>;
  /** Runs the flow (not dry) to its end, reporting progress. */
  run(tenant: string, flowId: string, opts: { full?: boolean }, progress?: Progress): Promise<RunView>;
  plan(tenant: string, flowId: string, progress?: Progress): Promise<Plan>;
  listRuns(tenant: string, flowId: string, opts: { limit?: number; offset?: number }): Promise<RunView[]>;
  /** One run with all its items (every page). */
  getRun(tenant: string, flowId: string, runId: string): Promise<RunWithItems>;
  close(): Promise<void>;
}

class DirectRuns implements RunsApi {
  private readonly flows: FlowService;
  private readonly connections: ConnectionService;
  private readonly runner: FlowRunner;

  constructor(
    private readonly db: Database,
    config: ReturnType<typeof loadConfig>,
  ) {
    const registry = createServerRegistry();
    this.flows = new FlowService(db, registry);
    this.connections = new ConnectionService(db);
    // List cursors are not used beyond this process.
    const service = new ResourceService(db, registry, new CursorCodec(randomBytes(32).toString('base64url')));
    this.runner = new FlowRunner({
      db,
      service,
      registry,
      config,
      tenants: new TenantDirectory(db),
      clientFor: policyClientFor(config.syncRequireTls),
      source: {
        flow: (t, id) => this.flows.get(t, id),
        connection: (t, id) => this.connections.find(t, id),
      },
      log: {
        error: (obj, msg) => process.stderr.write(`scimd: ${msg} ${JSON.stringify(obj)}\n`),
      },
    });
  }
  listFlows(tenant: string, connectionId?: string) {
    return this.flows.list(tenant, { connectionId });
  }
  createFlow(tenant: string, input: FlowInput) {
    return this.flows.create(tenant, input);
  }
  updateFlow(tenant: string, id: string, patch: FlowPatch) {
    return this.flows.patch(tenant, id, patch);
  }
  async run(tenant: string, flowId: string, opts: { full?: boolean }, progress?: Progress) {
    await this.flows.require(tenant, flowId);
    return untilInterrupted((signal) =>
      this.runner.runFlow(tenant, flowId, {
        trigger: 'manual',
        full: opts.full ?? false,
        onProgress: progress,
        signal,
      }),
    );
  }
  async plan(tenant: string, flowId: string, progress?: Progress) {
    const flow = await this.flows.require(tenant, flowId);
    return untilInterrupted(async (signal) => {
      const started = await this.runner.startRun(tenant, flowId, {
        trigger: 'manual',
        dryRun: true,
        onProgress: progress,
        signal,
      });
      return toPlan(flow.direction, await started.done, started.items);
    });
  }
  async listRuns(tenant: string, flowId: string, opts: { limit?: number; offset?: number }) {
    await this.flows.require(tenant, flowId);
    return this.runner.listRuns(tenant, flowId, opts);
  }
  async getRun(tenant: string, flowId: string, runId: string) {
    await this.flows.require(tenant, flowId);
    const run = await this.runner.getRun(tenant, flowId, runId);
    if (!run) throw ScimError.notFound(`No run ${runId} of flow ${flowId}`);
    const items: RunItemView[] = [];
    for (;;) {
      const page = await this.runner.runItems(tenant, flowId, runId, {
        after: items.at(-1)?.seq ?? 0,
        limit: 1000,
      });
      items.push(...page);
      if (page.length < 1000) break;
    }
    return { ...run, items };
  }
  close() {
    return this.db.close();
  }
}

const POLL_MS = 250;

class RemoteRuns implements RunsApi {
  private readonly call: AdminCall;
  constructor(base: string, token: string) {
    this.call = adminHttp(base, token);
  }
  private static flows(tenant: string, id?: string): string {
    const t = `/tenants/${encodeURIComponent(tenant)}/flows`;
    return id === undefined ? t : `${t}/${encodeURIComponent(id)}`;
  }
  async listFlows(tenant: string, connectionId?: string) {
    const qs = connectionId === undefined ? '' : `?connection=${encodeURIComponent(connectionId)}`;
    return (await this.call<{ flows: FlowView[] }>('GET', `${RemoteRuns.flows(tenant)}${qs}`)).flows;
  }
  createFlow(tenant: string, input: FlowInput) {
    return this.call<FlowView>('POST', RemoteRuns.flows(tenant), input);
  }
  updateFlow(tenant: string, id: string, patch: FlowPatch) {
    return this.call<FlowView>('PATCH', RemoteRuns.flows(tenant, id), patch);
  }
  async run(tenant: string, flowId: string, opts: { full?: boolean }, progress?: Progress) {
    const path = `${RemoteRuns.flows(tenant, flowId)}/runs`;
    let run = await this.call<RunView>('POST', path, { full: opts.full ?? false, wait: false });
    const one = `${path}/${encodeURIComponent(run.id)}?count=1`;
    while (run.state === 'running') {
      progress?.(run.done, run.total);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const {
        items: _items,
        nextAfter: _next,
        ...view
      } = await this.call<RunView & { items: unknown; nextAfter?: number }>('GET', one);
      run = view;
    }
    progress?.(run.done, run.total);
    return run;
  }
  plan(tenant: string, flowId: string) {
    return this.call<Plan>('POST', `${RemoteRuns.flows(tenant, flowId)}/plan`);
  }
  async listRuns(tenant: string, flowId: string, opts: { limit?: number; offset?: number }) {
    const qs = new URLSearchParams();
    if (opts.limit !== undefined) qs.set('limit', String(opts.limit));
    if (opts.offset !== undefined) qs.set('offset', String(opts.offset));
    const q = qs.size > 0 ? `?${qs.toString()}` : '';
    return (await this.call<{ runs: RunView[] }>('GET', `${RemoteRuns.flows(tenant, flowId)}/runs${q}`)).runs;
  }
  async getRun(tenant: string, flowId: string, runId: string) {
    const path = `${RemoteRuns.flows(tenant, flowId)}/runs/${encodeURIComponent(runId)}`;
    const items: RunItemView[] = [];
    let after = 0;
    for (;;) {
      const page = await this.call<RunView & { items: RunItemView[]; nextAfter?: number }>(
        'GET',
        `${path}?count=1000&after=${after}`,
      );
      items.push(...page.items);
      if (page.nextAfter === undefined) {
        const { items: _items, nextAfter: _next, ...run } = page;
        return { ...run, items };
      }
      after = page.nextAfter;
    }
  }
  async close() {}
}

/** Runs one action against the store or the server, and always releases the store. */
export async function withRuns<T>(opts: ConnectionOptions, action: (api: RunsApi) => Promise<T>): Promise<T> {
  let api: RunsApi;
  if (opts.url) {
    api = new RemoteRuns(opts.url, remoteToken(opts));
  } else {
    const config = loadConfig({ dataDir: opts.dataDir ?? './data', databaseUrl: opts.databaseUrl });
    api = new DirectRuns(await openStore(config), config);
  }
  try {
    return await action(api);
  } finally {
    await api.close();
  }
}

// ---- progress and output ------------------------------------------------------------------------

/** A progress bar on stderr when it is a terminal and the output is not JSON; else nothing. */
export function progressBar(label: string, json: boolean | undefined): { update: Progress; stop(): void } {
  if (json || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label} |{bar}| {value}/{total}`,
    hideCursor: true,
    clearOnComplete: true,
  });
  let started = false;
  return {
    update(done, total) {
      // Not before the engine knows something: a bar of 0/0 is drawn full.
      if (!started && !total && done === 0) return;
      if (!started) {
        bar.start(total ?? 0, done);
        started = true;
      } else {
        bar.setTotal(Math.max(total ?? 0, done));
        bar.update(done);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

const countsText = (r: RunView) =>
  `${r.counts.created} created, ${r.counts.updated} updated, ${r.counts.deleted} deleted, ` +
  `${r.counts.skipped} skipped, ${r.counts.failed} failed`;

export function runDetails(r: RunView): string {
  return details([
    ['run', r.id],
    ['flow', r.flowId],
    ['tenant', r.tenant],
    ['state', r.state],
    ['trigger', r.trigger],
    ['mode', r.mode],
    ['dry run', r.dryRun ? 'yes' : undefined],
    ['progress', `${r.done}/${r.total ?? '?'}`],
    ['counts', countsText(r)],
    ['rate', `${r.rate}/s`],
    ['error', r.error],
    ['node', r.node],
    ['started', r.started],
    ['finished', r.finished],
  ]);
}

const MAX_VALUE = 40;
function valueText(v: JsonValue | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = JSON.stringify(v);
  return s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE - 1)}…` : s;
}

/** The plan for people: a summary, then one row per create, per updated attribute, per delete. */
export function planText(p: Plan): string {
  const head = details([
    ['flow', `${p.flowId} (${p.direction})`],
    ['dry run', `${p.run.id} (${p.run.state})`],
    [
      'plan',
      `${p.creates.length} to create, ${p.updates.length} to update, ${p.deletes.length} to delete, ` +
        `${p.links.length} to link, ${p.failed.length} failed`,
    ],
    ['error', p.run.error],
  ]);
  const rows: (string | undefined)[][] = [];
  for (const c of p.creates)
    rows.push(['create', c.resourceType, c.localId, c.remoteId, c.attributes.map((a) => a.path).join(',')]);
  for (const u of p.updates)
    for (const a of u.attributes)
      rows.push([
        'update',
        u.resourceType,
        u.localId,
        u.remoteId,
        a.path,
        valueText(a.local),
        valueText(a.remote),
        a.owner,
      ]);
  for (const d of p.deletes) rows.push([d.action, d.resourceType, d.localId, d.remoteId]);
  for (const l of p.links) rows.push(['link', l.resourceType, l.localId, l.remoteId]);
  const parts = [head];
  if (rows.length === 0 && p.failed.length === 0) parts.push('', 'Nothing to do: both sides agree.');
  if (rows.length > 0)
    parts.push(
      '',
      table(
        ['ACTION', 'TYPE', 'LOCAL ID', 'REMOTE ID', 'ATTRIBUTE', 'LOCAL', 'REMOTE', 'OWNER'],
        rows.map((r) => [...r, ...Array<undefined>(8 - r.length).fill(undefined)]),
      ),
    );
  for (const f of p.failed)
    parts.push(`failed: ${f.resourceType} ${f.localId ?? '-'} / ${f.remoteId ?? '-'}: ${f.error}`);
  return parts.join('\n');
}

const FAILURES_ON_STDERR = 20;

/**
 * Prints a finished run and returns the exit code (0 succeeded, 2 partial with the failed items on
 * stderr, 1 failed or abandoned with the error on stderr).
 */
export async function reportRun(api: RunsApi, run: RunView, json: boolean | undefined): Promise<number> {
  emit(json, run, () => runDetails(run));
  if (run.state === 'succeeded') return 0;
  if (run.state === 'partial') {
    const { items } = await api.getRun(run.tenant, run.flowId, run.id);
    const failures = items.filter((i) => i.outcome === 'failed');
    for (const i of failures.slice(0, FAILURES_ON_STDERR))
      process.stderr.write(
        `scimd: ${i.resourceType} ${i.localId ?? '-'} / ${i.remoteId ?? '-'}: ${i.error ?? 'failed'}\n`,
      );
    if (failures.length > FAILURES_ON_STDERR)
      process.stderr.write(
        `scimd: ... and ${failures.length - FAILURES_ON_STDERR} more (scimd flow history ${run.flowId} --run ${run.id})\n`,
      );
    return 2;
  }
  process.stderr.write(`scimd: run ${run.id} ${run.state}: ${run.error ?? 'no error recorded'}\n`);
  return 1;
}

/** Prints a plan; exit code 1 when its dry run failed, else 0. */
export function reportPlan(plan: Plan, json: boolean | undefined): number {
  emit(json, plan, () => planText(plan));
  if (plan.run.state === 'failed' || plan.run.state === 'abandoned') {
    process.stderr.write(`scimd: dry run ${plan.run.id} ${plan.run.state}: ${plan.run.error ?? ''}\n`);
    return 1;
  }
  return 0;
}

/**
 * A direct-mode run with Ctrl-C handled: the first SIGINT stops the run after the items in flight
 * (it ends failed, its lease released at once, so the next run need not wait for the lease to
 * expire); a second one quits at once (Node's default, the handler being gone).
 */
async function untilInterrupted<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nscimd: stopping after the items in flight (Ctrl-C again to quit at once)\n');
    stop.abort(new Error('interrupted (Ctrl-C)'));
  };
  process.once('SIGINT', onSigint);
  try {
    return await fn(stop.signal);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** Runs (or, dry, plans) a flow with a progress bar and prints the outcome; the exit code. */
export async function runAndReport(
  api: RunsApi,
  tenant: string,
  flowId: string,
  opts: { dryRun?: boolean; full?: boolean; json?: boolean },
): Promise<number> {
  const bar = progressBar(opts.dryRun ? `planning ${flowId}` : flowId, opts.json);
  let outcome: RunView | Plan;
  try {
    outcome = opts.dryRun
      ? await api.plan(tenant, flowId, bar.update)
      : await api.run(tenant, flowId, { full: opts.full }, bar.update);
  } finally {
    bar.stop();
  }
  return 'creates' in outcome ? reportPlan(outcome, opts.json) : reportRun(api, outcome, opts.json);
}

// ---- commands -------------------------------------------------------------------------------------

type Base = ConnectionOptions & { tenant: string };

const intOption = (flag: string, min: number, max: number) => (value: string) => {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max))
    throw new CliError(`${flag} must be an integer from ${min} to ${max}; got "${value}"`);
  return n;
};

export function registerFlowRuns(flow: Command): void {
  addConnectionOptions(
    flow
      .command('run <id>')
      .description(
        'Run a flow now and wait for its end (progress bar on a terminal). Exit code 0: succeeded; ' +
          '2: partial (failed items on stderr); 1: failed',
      )
      .addOption(tenantOption())
      .option('--dry-run', 'print the plan instead: what the run would do (nothing is written)')
      .option('--full', 'compare every resource in scope whatever the mode (reconciliation apply)'),
  ).action(async (id: string, opts: Base & { dryRun?: boolean; full?: boolean }) => {
    if (opts.dryRun && opts.full) throw new CliError('--dry-run compares everything already: drop --full');
    process.exitCode = await withRuns(opts, (api) =>
      runAndReport(api, opts.tenant, id, { dryRun: opts.dryRun, full: opts.full, json: opts.json }),
    );
  });

  addConnectionOptions(
    flow
      .command('plan <id>')
      .description(
        'The reconciliation plan: creates, updates per attribute (local and remote values, owner), deletes, links',
      )
      .addOption(tenantOption()),
  ).action(async (id: string, opts: Base) => {
    process.exitCode = await withRuns(opts, (api) =>
      runAndReport(api, opts.tenant, id, { dryRun: true, json: opts.json }),
    );
  });

  addConnectionOptions(
    flow
      .command('history <id>')
      .description("A flow's runs, newest first; with --run, one run and every resource it touched")
      .addOption(tenantOption())
      .option('--limit <n>', 'at most this many runs (default 20)', intOption('--limit', 1, 1000))
      .option('--offset <n>', 'skip this many runs', intOption('--offset', 0, Number.MAX_SAFE_INTEGER))
      .option('--run <runId>', 'show this run with its items'),
  ).action(async (id: string, opts: Base & { limit?: number; offset?: number; run?: string }) => {
    const runId = opts.run;
    if (runId !== undefined) {
      if (opts.limit !== undefined || opts.offset !== undefined)
        throw new CliError('--run shows every item of one run: drop --limit and --offset');
      const run = await withRuns(opts, (api) => api.getRun(opts.tenant, id, runId));
      emit(opts.json, run, () => {
        const { items, ...view } = run;
        const itemTable = table(
          ['SEQ', 'TYPE', 'ACTION', 'OUTCOME', 'LOCAL ID', 'REMOTE ID', 'ATTRIBUTES', 'ERROR'],
          items.map((i) => [
            String(i.seq),
            i.resourceType,
            i.action,
            i.outcome,
            i.localId,
            i.remoteId,
            i.attributes?.join(','),
            i.error,
          ]),
        );
        return `${runDetails(view)}\n\n${items.length > 0 ? itemTable : 'No items.'}`;
      });
      return;
    }
    const runs = await withRuns(opts, (api) =>
      api.listRuns(opts.tenant, id, { limit: opts.limit ?? 20, offset: opts.offset }),
    );
    emit(opts.json, runs, () =>
      table(
        [
          'RUN',
          'STARTED',
          'TRIGGER',
          'MODE',
          'STATE',
          'DONE',
          'CREATED',
          'UPDATED',
          'DELETED',
          'SKIPPED',
          'FAILED',
        ],
        runs.map((r) => [
          r.id,
          r.started,
          r.trigger,
          r.dryRun ? `${r.mode} (dry)` : r.mode,
          r.state,
          `${r.done}/${r.total ?? '?'}`,
          String(r.counts.created),
          String(r.counts.updated),
          String(r.counts.deleted),
          String(r.counts.skipped),
          String(r.counts.failed),
        ]),
      ),
    );
  });
}
