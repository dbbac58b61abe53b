/**
 * The sync engine between two scimd nodes (issue 6): push and pull of N Users, runs with nothing
 * changed, runs after some changes, and what a delta pull costs when the source grows.
 *
 * Every node is a scimd server process (bench/server-process.ts, background workers on) with its
 * own store of the kind measured. Connections, flows and runs go through the admin API of the
 * node that runs the flow, as an operator would; a run is started (202) and polled until it
 * ends, and its time is the run's own `started` → `finished` (server clock, both on this
 * machine). After each run the target is checked: its User count, a cursor walk over every
 * userName, a sample compared attribute by attribute, and the run's counts.
 *
 * - Push: node A holds N Users (loaded straight into its store, data.ts) and pushes them to an
 *   empty node B (flow mode `full`); then the same run with nothing changed; then the flow is
 *   switched to mode `changes`, K Users are changed on A and pushed.
 * - Pull: an empty node C pulls A's Users (flow mode `full`); then the flow is switched to mode
 *   `delta` (its first run is a full pull that takes the delta tokens first: the unchanged
 *   figure), then M Users are changed on A and a delta run brings them (POST /Users/.delta).
 * - Delta at scale: a source node with two tenants (10,000 and 1,000,000 Users, create rows in
 *   the change log) and a target node where both are already synced (the same Users, linked one
 *   to one in sync_links, the flow's delta token taken from the source): rounds of M changes on
 *   the source, then one delta run of the target's flow, timed, alternating small and big.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { createApp, type App } from '../../src/app.ts';
import { cpuSince, snapshot, type CpuSnapshot } from './cpu.ts';
import { startServer, type ServerChild } from './children.ts';
import { insertResources, storedDoc, userBody, workEmail } from './data.ts';
import { summarize, type Summary } from './stats.ts';
import type { StoreKind, StoreTarget } from './suite.ts';

export interface SyncSettings {
  /** Users pushed and pulled. */
  users: number;
  /** Users changed on the source before the `changes` push. */
  pushChanges: number;
  /** Users changed on the source before the delta pull. */
  pullChanges: number;
  delta: DeltaScaleSettings;
  /** How many users of the target are compared attribute by attribute after a run. */
  sample: number;
}

export interface DeltaScaleSettings {
  small: number;
  big: number;
  changes: number;
  /** Delta runs timed per tenant. */
  rounds: number;
}

export interface RunCounts {
  created: number;
  updated: number;
  deleted: number;
  skipped: number;
  failed: number;
}

/** One measured run. */
export interface RunFigure {
  label: string;
  /** Users the run was about (N, or the changes made). */
  users: number;
  /** The run's own time (started → finished). */
  seconds: number;
  /** users / seconds */
  perSecond: number;
  /** From sending the start request to seeing the run finished (polling every 200 ms). */
  wallSeconds: number;
  mode: string;
  state: string;
  counts: RunCounts;
  /** Cores busy on average during the run: the node running the flow, the other node, PostgreSQL. */
  cpu: { runner: number; other: number; postgres: number };
  /** The slowest answer of the flow node's admin API to a poll during the run, and polls that failed. */
  slowestPollMs?: number;
  failedPolls?: number;
  /** The target's checks after the run (each "ok: ..." or the failure). */
  checks: string[];
}

export interface SyncStoreResult {
  store: StoreKind;
  settings: SyncSettings;
  loadSeconds: number;
  push: RunFigure[];
  pull: RunFigure[];
  /** 1-minute load average when the measurements began and ended. */
  loadAverage: [number, number];
}

export interface DeltaScaleTenant {
  tenant: string;
  users: number;
  changeRows: number;
  /** Milliseconds of the timed delta runs (run started → finished), and each of them in order. */
  runs: Summary;
  runTimes?: number[];
  /** Client-side wall time of each run (POST … wait → answer). */
  wall: Summary;
  /** Items each run updated (must be `changes` every time). */
  updated: number[];
  failed: number;
}

export interface DeltaScaleResult {
  store: StoreKind;
  settings: DeltaScaleSettings;
  loadSeconds: number;
  small: DeltaScaleTenant;
  big: DeltaScaleTenant;
  /** big p50 / small p50 (run time). */
  ratio: number;
  loadAverage: [number, number];
}

const ADMIN = 'bench-admin-token';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

type Json = Record<string, unknown>;

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** A scimd node (server child process) and JSON calls to it. */
class Node {
  readonly base: string;
  constructor(
    readonly name: string,
    readonly child: ServerChild,
  ) {
    this.base = `http://127.0.0.1:${child.port}`;
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    opts: { token?: string; ok?: number[] } = {},
  ): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${opts.token ?? ADMIN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        accept: 'application/scim+json, application/json',
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!(opts.ok ?? [200, 201, 202, 204]).includes(res.status))
      throw new Error(`${this.name}: ${method} ${path} → ${res.status}: ${text.slice(0, 400)}`);
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
  }
}

async function startNode(name: string, target: StoreTarget): Promise<Node> {
  const child = await startServer({
    kind: 'scimd',
    adminToken: ADMIN,
    dataDir: target.dataDir,
    databaseUrl: target.databaseUrl,
  });
  return new Node(name, child);
}

function openApp(target: StoreTarget): Promise<App> {
  return createApp({
    port: 0,
    adminToken: ADMIN,
    logLevel: 'silent',
    dataDir: target.dataDir,
    databaseUrl: target.databaseUrl,
    backgroundWorkers: false,
  });
}

/**
 * Users `user<from>`…`user<to-1>` (data.ts userBody) written straight into a tenant, with ids
 * given or random, and (logChanges) the create row the service would have logged for each.
 */
async function loadRange(
  app: App,
  tenant: string,
  users: number,
  opts: { ids?: string[]; logChanges: boolean; log?: (msg: string) => void },
): Promise<string[]> {
  const rt = app.registry.resourceType('User')!;
  const ids: string[] = [];
  const BATCH = 1000;
  for (let from = 0; from < users; from += BATCH) {
    const rows = [];
    for (let i = from; i < Math.min(users, from + BATCH); i++) {
      const doc = storedDoc(app.registry, rt, userBody(i));
      rows.push({ id: opts.ids?.[i] ?? randomUUID(), externalId: doc.externalId as string, doc });
    }
    await insertResources(app.db, 'User', rows, tenant);
    ids.push(...rows.map((r) => r.id));
    if (opts.log && from > 0 && from % 100_000 === 0) opts.log(`    ${tenant}: ${from}/${users} users`);
  }
  if (opts.logChanges)
    await app.db.query(
      `INSERT INTO changes (tenant_id, at, client_id, operation, resource_type, resource_id, version)
       SELECT tenant_id, created, owner_client, 'create', resource_type, id, version FROM resources
       WHERE tenant_id = $1 AND resource_type = 'User'`,
      [tenant],
    );
  return ids;
}

async function vacuum(app: App): Promise<void> {
  await app.db.query('VACUUM ANALYZE');
  await app.db.query('CHECKPOINT').catch(() => undefined);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a run through the admin API and polls it to its end. */
async function runFlow(
  runner: Node,
  other: Node,
  tenant: string,
  flowId: string,
  label: string,
  users: number,
  log: (msg: string) => void,
): Promise<Omit<RunFigure, 'checks'>> {
  const base = `/admin/v1/tenants/${tenant}/flows/${flowId}/runs`;
  const cpuRunner: CpuSnapshot = snapshot(runner.child.pid);
  const cpuOther: CpuSnapshot = snapshot(other.child.pid);
  const t0 = performance.now();
  const started = await runner.call('POST', base, {});
  const id = started.body.id as string;
  let run: Json = started.body;
  let lastLog = performance.now();
  let slowestPoll = 0;
  let failedPolls = 0;
  while (run.state === 'running') {
    await sleep(200);
    const p0 = performance.now();
    try {
      run = (await runner.call('GET', `${base}/${id}?count=1`)).body;
    } catch (err) {
      // A node too busy to answer (the client gives up after 300 s): noted, and asked again.
      if (++failedPolls > 5) throw err;
      log(`    ${label}: poll failed after ${fmtSeconds(performance.now() - p0)}: ${String(err)}`);
    }
    slowestPoll = Math.max(slowestPoll, performance.now() - p0);
    if (performance.now() - lastLog > 15_000) {
      lastLog = performance.now();
      log(`    ${label}: ${String(run.done)}/${String(run.total ?? '?')} at ${String(run.rate)}/s`);
    }
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const a = cpuSince(cpuRunner, runner.child.pid);
  const b = cpuSince(cpuOther, other.child.pid);
  const seconds = (Date.parse(run.finished as string) - Date.parse(run.started as string)) / 1000;
  if (run.error) log(`    ${label}: run error ${String(run.error)}`);
  return {
    label,
    users,
    seconds,
    perSecond: users / seconds,
    wallSeconds,
    mode: run.mode as string,
    state: run.state as string,
    counts: run.counts as RunCounts,
    cpu: { runner: a.server, other: b.server, postgres: a.postgres },
    slowestPollMs: slowestPoll,
    failedPolls,
  };
}

const fmtSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function expectRun(r: Omit<RunFigure, 'checks'>, counts: Partial<RunCounts>): string {
  check(r.state === 'succeeded', `${r.label}: run state ${r.state} (succeeded)`);
  for (const [k, v] of Object.entries(counts))
    check(
      r.counts[k as keyof RunCounts] === v,
      `${r.label}: ${k} ${r.counts[k as keyof RunCounts]} (expected ${v})`,
    );
  return `ok: run ${r.state}, counts ${JSON.stringify(r.counts)}`;
}

/** Every userName of a node (cursor walk), compared with user0…user<n-1>. */
async function checkUserNames(node: Node, n: number, tenant = 'default'): Promise<string> {
  const prefix = tenant === 'default' ? '' : `/tenants/${tenant}`;
  const seen = new Set<string>();
  let visited = 0;
  let path: string | undefined = `${prefix}/scim/v2/Users?cursor&count=1000&attributes=userName`;
  while (path) {
    const page: Json = (await node.call('GET', path)).body;
    for (const r of (page.Resources as Json[] | undefined) ?? []) {
      visited++;
      seen.add(r.userName as string);
    }
    path =
      typeof page.nextCursor === 'string'
        ? `${prefix}/scim/v2/Users?cursor=${encodeURIComponent(page.nextCursor)}&count=1000&attributes=userName`
        : undefined;
  }
  check(visited === n, `${node.name} holds ${visited} Users (expected ${n})`);
  for (let i = 0; i < n; i++) check(seen.has(`user${i}`), `${node.name} has user${i}`);
  return `ok: ${node.name} holds exactly ${n} Users, userNames user0…user${n - 1} (cursor walk)`;
}

/** A sample of the target's Users compared with what the source holds (userBody, plus titles changed). */
async function checkSample(
  node: Node,
  n: number,
  sample: number,
  titles: Map<number, string>,
): Promise<string> {
  const picks = new Set<number>([0, n - 1, ...[...titles.keys()].slice(0, Math.ceil(sample / 2))]);
  while (picks.size < Math.min(n, sample)) picks.add(Math.floor(Math.random() * n));
  for (const i of picks) {
    const filter = encodeURIComponent(`userName eq "user${i}"`);
    const res = (await node.call('GET', `/scim/v2/Users?filter=${filter}`)).body;
    check(res.totalResults === 1, `${node.name}: one user${i} (${String(res.totalResults)})`);
    const u = (res.Resources as Json[])[0];
    const want = userBody(i);
    check(u.externalId === want.externalId, `${node.name}: user${i} externalId ${String(u.externalId)}`);
    check(u.displayName === want.displayName, `${node.name}: user${i} displayName`);
    const name = u.name as Json | undefined;
    for (const [k, v] of Object.entries(want.name as Json))
      check(name?.[k] === v, `${node.name}: user${i} name.${k} ${String(name?.[k])}`);
    const emails = (u.emails as Json[]).map((e) => e.value).sort();
    check(
      JSON.stringify(emails) === JSON.stringify([workEmail(i), `user${i}@home.example.net`].sort()),
      `${node.name}: user${i} emails ${JSON.stringify(emails)}`,
    );
    const ent = u['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'] as Json | undefined;
    check(ent?.employeeNumber === String(100000 + i), `${node.name}: user${i} employeeNumber`);
    check(u.title === titles.get(i), `${node.name}: user${i} title ${String(u.title)} (${titles.get(i)})`);
  }
  return `ok: ${picks.size} Users of ${node.name} compared attribute by attribute with the source`;
}

/** `count` Users of the source changed (title), spread over it; returns index → new title. */
async function changeUsers(
  node: Node,
  ids: string[],
  count: number,
  tag: string,
  titles: Map<number, string>,
  tenant = 'default',
  token?: string,
  offset = 0,
): Promise<number[]> {
  const prefix = tenant === 'default' ? '' : `/tenants/${tenant}`;
  const step = Math.max(1, Math.floor(ids.length / count));
  const picked = Array.from({ length: count }, (_, k) => (k * step + offset) % ids.length);
  let next = 0;
  const worker = async () => {
    while (next < picked.length) {
      const i = picked[next++];
      const title = `${tag} ${i}`;
      await node.call(
        'PATCH',
        `${prefix}/scim/v2/Users/${ids[i]}`,
        { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: title }] },
        { token },
      );
      titles.set(i, title);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return picked;
}

// ---- push and pull on one store kind ----------------------------------------------------------

export async function runSync(
  targets: { a: StoreTarget; b: StoreTarget; c: StoreTarget },
  s: SyncSettings,
  log: (msg: string) => void,
): Promise<SyncStoreResult> {
  const kind = targets.a.kind;
  log(`[${kind} sync] loading ${s.users} Users into node A`);
  const l0 = performance.now();
  let ids: string[];
  {
    const app = await openApp(targets.a);
    try {
      ids = await loadRange(app, 'default', s.users, { logChanges: true });
      await vacuum(app);
    } finally {
      await app.close();
    }
  }
  const loadSeconds = (performance.now() - l0) / 1000;
  const a = await startNode('A', targets.a);
  const b = await startNode('B', targets.b);
  const titles = new Map<number, string>();
  const loadBefore = os.loadavg()[0];
  const push: RunFigure[] = [];
  const pull: RunFigure[] = [];

  // Push A → B.
  await a.call('POST', '/admin/v1/tenants/default/connections', {
    id: 'b',
    baseUrl: `${b.base}/scim/v2`,
    auth: { type: 'bearer', token: ADMIN },
  });
  await a.call('POST', '/admin/v1/tenants/default/flows', {
    id: 'push-b',
    connectionId: 'b',
    direction: 'push',
    mode: 'full',
    resourceTypes: ['User'],
  });
  log(`[${kind} sync] push: full, ${s.users} Users A → B`);
  {
    const r = await runFlow(a, b, 'default', 'push-b', 'push, full, B empty', s.users, log);
    const checks = [expectRun(r, { created: s.users, updated: 0, deleted: 0, failed: 0 })];
    checks.push(await checkUserNames(b, s.users), await checkSample(b, s.users, s.sample, titles));
    push.push({ ...r, checks });
  }
  log(`[${kind} sync] push: full again, nothing changed`);
  {
    const r = await runFlow(a, b, 'default', 'push-b', 'push, full, nothing changed', s.users, log);
    const checks = [expectRun(r, { created: 0, updated: 0, deleted: 0, skipped: s.users, failed: 0 })];
    checks.push(await checkUserNames(b, s.users));
    push.push({ ...r, checks });
  }
  log(`[${kind} sync] push: ${s.pushChanges} Users changed on A, flow mode changes`);
  {
    await a.call('PATCH', '/admin/v1/tenants/default/flows/push-b', { mode: 'changes' });
    await changeUsers(a, ids, s.pushChanges, 'push', titles);
    await sleep(500);
    const r = await runFlow(
      a,
      b,
      'default',
      'push-b',
      `push, changes (${s.pushChanges} changed)`,
      s.pushChanges,
      log,
    );
    const checks = [expectRun(r, { created: 0, updated: s.pushChanges, deleted: 0, failed: 0 })];
    checks.push(await checkUserNames(b, s.users), await checkSample(b, s.users, s.sample, titles));
    push.push({ ...r, checks });
  }
  await b.child.stop();

  // Pull A → C (the flow runs on C).
  const c = await startNode('C', targets.c);
  await c.call('POST', '/admin/v1/tenants/default/connections', {
    id: 'a',
    baseUrl: `${a.base}/scim/v2`,
    auth: { type: 'bearer', token: ADMIN },
  });
  await c.call('POST', '/admin/v1/tenants/default/flows', {
    id: 'pull-a',
    connectionId: 'a',
    direction: 'pull',
    mode: 'full',
    resourceTypes: ['User'],
  });
  log(`[${kind} sync] pull: full, ${s.users} Users A → C`);
  {
    const r = await runFlow(c, a, 'default', 'pull-a', 'pull, full, C empty', s.users, log);
    const checks = [expectRun(r, { created: s.users, updated: 0, deleted: 0, failed: 0 })];
    checks.push(await checkUserNames(c, s.users), await checkSample(c, s.users, s.sample, titles));
    pull.push({ ...r, checks });
  }
  log(`[${kind} sync] pull: flow mode delta, first run (full, takes the tokens), nothing changed`);
  {
    await c.call('PATCH', '/admin/v1/tenants/default/flows/pull-a', { mode: 'delta' });
    const r = await runFlow(
      c,
      a,
      'default',
      'pull-a',
      'pull, delta: first run = full with tokens, nothing changed',
      s.users,
      log,
    );
    const checks = [expectRun(r, { created: 0, updated: 0, deleted: 0, skipped: s.users, failed: 0 })];
    pull.push({ ...r, checks });
  }
  log(`[${kind} sync] pull: ${s.pullChanges} Users changed on A, delta run`);
  {
    await changeUsers(a, ids, s.pullChanges, 'pull', titles, 'default', undefined, 1);
    await sleep(1000);
    const r = await runFlow(
      c,
      a,
      'default',
      'pull-a',
      `pull, delta (${s.pullChanges} changed)`,
      s.pullChanges,
      log,
    );
    const checks = [expectRun(r, { created: 0, updated: s.pullChanges, deleted: 0, failed: 0 })];
    checks.push(await checkUserNames(c, s.users), await checkSample(c, s.users, s.sample, titles));
    pull.push({ ...r, checks });
  }
  const loadAfter = os.loadavg()[0];
  await c.child.stop();
  await a.child.stop();
  return { store: kind, settings: s, loadSeconds, push, pull, loadAverage: [loadBefore, loadAfter] };
}

// ---- delta at scale -----------------------------------------------------------------------------

interface SourceTenant {
  tenant: string;
  users: number;
  ids: string[];
  token: string;
}

async function waitSettled(databaseUrl: string | undefined): Promise<void> {
  if (!databaseUrl) {
    await sleep(1000);
    return;
  }
  // The delta sees a change once its transaction is below every running one (test/delta/helpers.ts).
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (let i = 0; i < 400; i++) {
      const res = await client.query<{ done: boolean | null }>(
        'SELECT (SELECT max(txid) FROM changes) < pg_snapshot_xmin(pg_current_snapshot()) AS done',
      );
      if (res.rows[0].done !== false) return;
      await sleep(25);
    }
  } finally {
    await client.end();
  }
}

export async function runDeltaScale(
  targets: { source: StoreTarget; target: StoreTarget },
  s: DeltaScaleSettings,
  log: (msg: string) => void,
): Promise<DeltaScaleResult> {
  const kind = targets.source.kind;
  const l0 = performance.now();
  const sources: SourceTenant[] = [];
  {
    const app = await openApp(targets.source);
    try {
      for (const [tenant, users] of [
        ['small', s.small],
        ['big', s.big],
      ] as const) {
        log(`[${kind} delta] source: ${users} Users into tenant ${tenant}`);
        await app.admin.createTenant({ id: tenant });
        await app.admin.createClient(tenant, { id: 'sync', name: 'sync', scopes: ['admin'] });
        const token = (await app.admin.issueToken(tenant, 'sync', {})).token;
        const ids = await loadRange(app, tenant, users, { logChanges: true, log });
        sources.push({ tenant, users, ids, token });
      }
      await vacuum(app);
    } finally {
      await app.close();
    }
  }
  const source = await startNode('source', targets.source);
  const tokens = new Map<string, string>();
  const targetTokens = new Map<string, string>();
  for (const t of sources) {
    await waitSettled(targets.source.databaseUrl);
    const res = await source.call('GET', `/tenants/${t.tenant}/scim/v2/Users/.deltaToken`, undefined, {
      token: t.token,
    });
    tokens.set(t.tenant, res.body.value as string);
  }
  {
    // The target, already synced: the same Users with their own ids, linked one to one, and the
    // flow's state as a delta run leaves it (token method, the source's current token).
    const app = await openApp(targets.target);
    try {
      for (const t of sources) {
        log(`[${kind} delta] target: ${t.users} Users into tenant ${t.tenant}, linked`);
        await app.admin.createTenant({ id: t.tenant });
        await app.admin.createClient(t.tenant, { id: 'bench', name: 'bench', scopes: ['admin'] });
        targetTokens.set(t.tenant, (await app.admin.issueToken(t.tenant, 'bench', {})).token);
        const local = await loadRange(app, t.tenant, t.users, { logChanges: true, log });
        await app.connections.create(t.tenant, {
          id: 'source',
          baseUrl: `${source.base}/tenants/${t.tenant}/scim/v2`,
          auth: { type: 'bearer', token: t.token },
        });
        await app.flows.create(t.tenant, {
          id: 'delta',
          connectionId: 'source',
          direction: 'pull',
          mode: 'delta',
          resourceTypes: ['User'],
        });
        const BATCH = 10_000;
        for (let from = 0; from < t.users; from += BATCH) {
          await app.db.query(
            `INSERT INTO sync_links (tenant_id, flow_id, resource_type, local_id, remote_id, local_version)
             SELECT $1, 'delta', 'User', l.local, l.remote, 1 FROM unnest($2::text[], $3::text[]) AS l(local, remote)`,
            [t.tenant, local.slice(from, from + BATCH), t.ids.slice(from, from + BATCH)],
          );
        }
        await app.db.query(`UPDATE sync_flows SET state = $2 WHERE tenant_id = $1 AND id = 'delta'`, [
          t.tenant,
          JSON.stringify({
            deltaMethod: 'token',
            deltaTokens: { User: tokens.get(t.tenant) },
            lastFullAt: new Date().toISOString(),
          }),
        ]);
      }
      await vacuum(app);
    } finally {
      await app.close();
    }
  }
  const loadSeconds = (performance.now() - l0) / 1000;
  const target = await startNode('target', targets.target);
  const loadBefore = os.loadavg()[0];
  const per = new Map<string, { runs: number[]; wall: number[]; updated: number[]; failed: number }>();
  log(`[${kind} delta] ${s.rounds} rounds of ${s.changes} changes and a delta run per tenant`);
  // One untimed round per tenant first (connections warm, discovery done), then the timed ones.
  for (let round = 0; round <= s.rounds; round++) {
    for (const t of sources) {
      await changeUsers(
        source,
        t.ids,
        s.changes,
        `delta round ${round}`,
        new Map(),
        t.tenant,
        t.token,
        round + 1,
      );
      await waitSettled(targets.source.databaseUrl);
      const t0 = performance.now();
      const res = await target.call('POST', `/admin/v1/tenants/${t.tenant}/flows/delta/runs`, { wait: true });
      const wall = (performance.now() - t0) / 1000;
      const run = res.body;
      const counts = run.counts as RunCounts;
      check(
        run.state === 'succeeded',
        `delta ${t.tenant}: run ${String(run.state)} ${String(run.error ?? '')}`,
      );
      check(run.mode === 'delta', `delta ${t.tenant}: mode ${String(run.mode)}`);
      check(
        counts.updated === s.changes && counts.failed === 0,
        `delta ${t.tenant}: run counts ${JSON.stringify(counts)} (expected ${s.changes} updated)`,
      );
      if (round === 0) continue;
      const e = per.get(t.tenant) ?? { runs: [], wall: [], updated: [], failed: 0 };
      e.runs.push((Date.parse(run.finished as string) - Date.parse(run.started as string)) / 1000);
      e.wall.push(wall);
      e.updated.push(counts.updated);
      e.failed += counts.failed;
      per.set(t.tenant, e);
    }
  }
  const loadAfter = os.loadavg()[0];
  // The last round's changes are on the target: each changed User's title, read back.
  for (const t of sources) {
    const step = Math.max(1, Math.floor(t.users / s.changes));
    for (const k of [0, s.changes - 1]) {
      const i = (k * step + s.rounds + 1) % t.users;
      const filter = encodeURIComponent(`userName eq "user${i}"`);
      const res = await target.call('GET', `/tenants/${t.tenant}/scim/v2/Users?filter=${filter}`, undefined, {
        token: targetTokens.get(t.tenant),
      });
      const u = (res.body.Resources as Json[])[0];
      check(
        u?.title === `delta round ${s.rounds} ${i}`,
        `delta ${t.tenant}: target user${i} title ${String(u?.title)}`,
      );
    }
  }
  const changeRows = async (tenant: string): Promise<number> => {
    if (!targets.source.databaseUrl) return NaN;
    const client = new pg.Client({ connectionString: targets.source.databaseUrl });
    await client.connect();
    try {
      const r = await client.query<{ n: string }>(
        'SELECT count(*)::text AS n FROM changes WHERE tenant_id = $1',
        [tenant],
      );
      return Number(r.rows[0].n);
    } finally {
      await client.end();
    }
  };
  const result = async (t: SourceTenant): Promise<DeltaScaleTenant> => {
    const e = per.get(t.tenant)!;
    return {
      tenant: t.tenant,
      users: t.users,
      changeRows: await changeRows(t.tenant),
      runs: summarize(e.runs.map((x) => x * 1000)),
      runTimes: e.runs.map((x) => x * 1000),
      wall: summarize(e.wall.map((x) => x * 1000)),
      updated: e.updated,
      failed: e.failed,
    };
  };
  const small = await result(sources[0]);
  const big = await result(sources[1]);
  await target.child.stop();
  await source.child.stop();
  return {
    store: kind,
    settings: s,
    loadSeconds,
    small,
    big,
    ratio: big.runs.p50 / small.runs.p50,
    loadAverage: [loadBefore, loadAfter],
  };
}
