/**
 * A focused micro-benchmark of one list page of 100 full Devices: where the milliseconds of
 * `GET /Devices?filter=displayName sw "…"&count=100` and of a managed-only client's
 * `GET /Devices?count=100` go, on a small data set (the devices of bench/lib/device-data.ts).
 *
 *   node --import tsx bench/list-page.ts --db postgres://postgres@127.0.0.1:5432/scimd_h1 [--setup]
 *     [--devices 20000] [--iterations 300] [--no-http] [--only displayName|managed]
 *
 * --setup creates the database (dropping it first) and loads the devices; without it the data of an
 * earlier --setup is reused. --drop drops the database and exits. Figures are per page, in ms:
 *   sql      ResourceRepository.list (the one statement, its rows parsed by the driver)
 *   service  ResourceService.list (sql + the 100 representations)
 *   json     JSON.stringify of the ListResult
 *   http     the request over HTTP (keep-alive, one at a time) to a server in a child process
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createApp, type App } from '../src/app.ts';
import type { JsonObject } from '../src/scim/json.ts';
import type { RequestContext } from '../src/service/resources.ts';
import { ResourceRepository, type ListQuery } from '../src/store/resources.ts';
import { bindFilter } from '../src/scim/filter/bind.ts';
import { parseFilter } from '../src/scim/filter/parser.ts';
import type { BoundFilter } from '../src/scim/filter/ast.ts';
import { startServer, stopAllServers } from './lib/children.ts';
import { insertResources, storedDoc } from './lib/data.ts';
import { deviceBody, kindOf, loadDevices, managedCount, namePrefix, prefixCount } from './lib/device-data.ts';
import { GATEWAY } from './lib/devices-suite.ts';
import { Client } from './lib/http.ts';
import { summarize } from './lib/stats.ts';

const TENANT = 'bench-devices';
/** Devices naming the managed client's app, as in the 1M data set. */
const MANAGED = 1000;
const args = process.argv.slice(2);
const opt = (name: string, dflt?: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const flag = (name: string) => args.includes(`--${name}`);
const dbUrl = opt('db', 'postgres://postgres@127.0.0.1:5432/scimd_h1')!;
const n = Number(opt('devices', '20000'));
const iterations = Number(opt('iterations', '300'));
const only = opt('only');
const baseUrl = `http://127.0.0.1/tenants/${TENANT}/scim/v2`;

async function admin(sql: string): Promise<void> {
  const url = new URL(dbUrl);
  url.pathname = '/postgres';
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
const dbName = new URL(dbUrl).pathname.slice(1);
if (!/^scimd_[a-z0-9_]+$/.test(dbName)) throw new Error(`refusing database name ${dbName}`);

async function setup(): Promise<void> {
  await admin(`DROP DATABASE IF EXISTS ${dbName}`);
  await admin(`CREATE DATABASE ${dbName}`);
  const app = await createApp({ databaseUrl: dbUrl, logLevel: 'silent', backgroundWorkers: false });
  try {
    await app.admin.createTenant({ id: TENANT, settings: { devices: GATEWAY } });
    const appRt = app.registry.resourceType('EndpointApp')!;
    const ctx = context(app);
    const mk = async (name: string) =>
      (
        await app.service.create({ ...ctx, clientId: 'bench-loader' }, appRt, {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:EndpointApp'],
          applicationType: 'deviceControl',
          applicationName: name,
        })
      ).resource.id as string;
    const apps = { a: await mk('Building automation'), b: await mk('Lighting control') };
    await loadDevices(app.db, app.registry, TENANT, { devices: GATEWAY }, baseUrl, n, apps, console.log, {
      batch: 10_000,
      buildMemory: '256MB',
    });
    // The managed list of the 1M bench: 1,000 devices naming app a. With fewer devices, add the
    // missing ones as devices numbered from n on (i mod 1000 = 0: BLE devices naming app a), in
    // name blocks the displayName case does not use.
    const rt = app.registry.resourceType('Device')!;
    const rows = [];
    const first = Math.ceil(n / 1000) * 1000;
    for (let k = 0; k < MANAGED - managedCount(n); k++) {
      const doc = storedDoc(app.registry, rt, deviceBody(first + k * 1000, apps));
      rt.hooks?.beforeStore?.(doc, { mode: 'create', settings: { devices: GATEWAY }, baseUrl });
      rows.push({ id: randomUUID(), externalId: doc.externalId as string, doc });
    }
    if (rows.length) await insertResources(app.db, 'Device', rows, TENANT, 'bench-loader');
    await app.db.query('VACUUM ANALYZE');
    await app.db.query(`CREATE TABLE IF NOT EXISTS bench_meta (k text PRIMARY KEY, v text)`);
    await app.db.query(`INSERT INTO bench_meta VALUES ('app_a', $1), ('n', $2)`, [apps.a, String(n)]);
  } finally {
    await app.close();
  }
}

function context(app: App, managed?: { clientId: string; appId: string }): RequestContext {
  return {
    tenant: TENANT,
    baseUrl,
    clientId: managed?.clientId ?? 'bench-reader',
    limits: app.config,
    settings: { devices: GATEWAY },
    managed: managed ? { clientId: managed.clientId, appIds: [managed.appId] } : undefined,
    hideSensitive: true,
  };
}

interface Case {
  id: 'displayName' | 'managed';
  filter(): string | undefined;
  managed: boolean;
}

function cases(total: number): Case[] {
  // Blocks with at least 100 devices of the kind: BLE (40%) gives 400 a block of 1,000.
  const blocks = Math.max(1, Math.floor(total / 1000));
  const all: Case[] = [
    {
      id: 'displayName',
      managed: false,
      filter: () => `displayName sw "${namePrefix(kindOf(0), Math.floor(Math.random() * blocks))}"`,
    },
    { id: 'managed', managed: true, filter: () => undefined },
  ];
  return all.filter((c) => !only || c.id === only);
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

const show = (label: string, xs: number[], cpu: number) => {
  const s = summarize(xs);
  console.log(
    `  ${label.padEnd(8)} p50 ${s.p50.toFixed(3)}  mean ${s.mean.toFixed(3)}  p99 ${s.p99.toFixed(3)} ms; CPU ${cpu.toFixed(3)} ms a page`,
  );
};

/** CPU time (user + system) of a process so far, in ms, from /proc (Linux). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function main(): Promise<void> {
  if (flag('drop')) {
    await admin(`DROP DATABASE IF EXISTS ${dbName}`);
    return;
  }
  if (flag('setup')) await setup();
  const adminToken = randomBytes(24).toString('base64url');
  const app = await createApp({
    databaseUrl: dbUrl,
    logLevel: 'silent',
    backgroundWorkers: false,
    adminToken,
  });
  let appA: string;
  let total: number;
  try {
    const meta = await app.db.query<{ k: string; v: string }>('SELECT k, v FROM bench_meta');
    const m = new Map(meta.rows.map((r) => [r.k, r.v]));
    appA = m.get('app_a')!;
    total = Number(m.get('n'));
    const rt = app.registry.resourceType('Device')!;
    const repo = new ResourceRepository();
    for (const c of cases(total)) {
      const ctx = c.managed ? context(app, { clientId: 'bench-app-a', appId: appA }) : context(app);
      const query = (filter: string | undefined): ListQuery => ({
        types: [
          {
            rt,
            filter: filter ? (bindFilter(app.registry, rt, parseFilter(filter)) as BoundFilter) : undefined,
            visibility: c.managed
              ? {
                  ownerClient: 'bench-app-a',
                  refs: [appA],
                  containing: [{ [rt.managedBy!.schema]: { applications: [{ value: appA }] } }],
                }
              : undefined,
          },
        ],
        page: { kind: 'index', offset: 0, limit: 100 },
        withGroups: true,
      });
      // Each part in a loop of its own, with the process's CPU time per page beside the wall time.
      const loop = async (fn: () => Promise<unknown>) => {
        const xs: number[] = [];
        for (let k = 0; k < 20; k++) await fn();
        const cpu0 = process.cpuUsage();
        for (let k = 0; k < iterations; k++) xs.push((await time(fn))[0]);
        const cpu = process.cpuUsage(cpu0);
        return { xs, cpu: (cpu.user + cpu.system) / 1000 / iterations };
      };
      const sql = await loop(() => repo.list(app.db, TENANT, query(c.filter())));
      const service = await loop(async () => {
        const page = await app.service.list(ctx, [rt], { filter: c.filter(), count: 100 });
        if (page.itemsPerPage !== 100) throw new Error(`${c.id}: a page of ${String(page.itemsPerPage)}`);
      });
      const sample = await app.service.list(ctx, [rt], { filter: c.filter(), count: 100 });
      const json = await loop(async () => JSON.stringify(sample));
      console.log(
        `${c.id} (in-process, ${iterations} pages of 100, ${JSON.stringify(sample).length} bytes a page)`,
      );
      show('sql', sql.xs, sql.cpu);
      show('service', service.xs, service.cpu);
      show('json', json.xs, json.cpu);
    }
  } finally {
    await app.close();
  }

  if (flag('no-http')) return;
  const profDir = opt('profile-server');
  const server = profDir
    ? await profiledServer(adminToken, profDir)
    : await startServer({ kind: 'scimd', adminToken, databaseUrl: dbUrl });
  const adminClient = new Client(server.port, adminToken);
  try {
    const tokenFor = async (body: JsonObject) => {
      const id = body.id as string;
      const existing = await adminClient.request('GET', `/admin/v1/tenants/${TENANT}/clients/${id}`);
      if (existing.status === 404)
        await adminClient.expect('POST', `/admin/v1/tenants/${TENANT}/clients`, 201, body);
      const res = await adminClient.expect(
        'POST',
        `/admin/v1/tenants/${TENANT}/clients/${id}/tokens`,
        201,
        {},
      );
      return (JSON.parse(res.body) as { token: string }).token;
    };
    const reader = new Client(
      server.port,
      await tokenFor({ id: 'bench-reader', name: 'r', scopes: ['Device:read'] }),
    );
    const manager = new Client(
      server.port,
      await tokenFor({
        id: 'bench-app-a',
        name: 'a',
        scopes: ['Device:read', 'devices:managed'],
        endpointAppId: appA,
      }),
    );
    for (const c of cases(total)) {
      const client = c.managed ? manager : reader;
      const xs: number[] = [];
      let cpu0 = 0;
      for (let k = 0; k < iterations + 20; k++) {
        if (k === 20) cpu0 = cpuOf(server.pid);
        const filter = c.filter();
        const path = `/tenants/${TENANT}/scim/v2/Devices?${filter ? `filter=${encodeURIComponent(filter)}&` : ''}count=100`;
        const res = await client.expect('GET', path, 200);
        const page = JSON.parse(res.body) as JsonObject;
        if (page.itemsPerPage !== 100) throw new Error(`${c.id}: a page of ${String(page.itemsPerPage)}`);
        if (c.managed && page.totalResults !== MANAGED) throw new Error('managed count');
        if (filter && page.totalResults !== prefixCount(total, 'BLE', Number(/(\d+)"$/.exec(filter)![1])))
          throw new Error('sw count');
        if (k >= 20) xs.push(res.ms);
      }
      const cpu = (cpuOf(server.pid) - cpu0) / iterations;
      console.log(`${c.id} over HTTP (${iterations} requests; CPU: the server process's)`);
      show('http', xs, cpu);
    }
    reader.close();
    manager.close();
  } finally {
    adminClient.close();
    await server.stop();
    await stopAllServers();
  }
}

/** The server child under --cpu-prof (its profile is written to dir when it stops). */
async function profiledServer(
  adminToken: string,
  dir: string,
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const script = fileURLToPath(new URL('./server-process.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '100', '--import', 'tsx', script],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: {
        ...process.env,
        BENCH_SERVER_SPEC: JSON.stringify({ kind: 'scimd', adminToken, databaseUrl: dbUrl }),
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      const m = /LISTENING (\d+)/.exec((out += d.toString()));
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${String(code)}`)));
  });
  return {
    port,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
