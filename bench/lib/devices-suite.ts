/**
 * Devices at scale: a million Devices of five kinds in one tenant, then the lookups a network
 * access controller makes (by BLE MAC, by Zigbee EUI-64), a name search, and the list an
 * EndpointApp's managed-only client sees. Lookups that miss the target are profiled in-process
 * (statements and EXPLAIN ANALYZE), and the index that would serve them is created in the scratch
 * database only (never by the server) and the lookup measured again, to show the fix works.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { createApp, type App } from '../../src/app.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import type { SchemaRegistry } from '../../src/scim/schema/registry.ts';
import type { RequestContext } from '../../src/service/resources.ts';
import { startServer } from './children.ts';
import {
  displayNameOf,
  eui64Of,
  kindOf,
  loadDevices,
  macOf,
  managedCount,
  namePrefix,
  otherEui64Spelling,
  otherMacSpelling,
  prefixCount,
  type DeviceKind,
  type DeviceLoad,
} from './device-data.ts';
import { Client } from './http.ts';
import { explain, instrument, profile, type Profile, type Recorder } from './profile.ts';
import { summarize, type Summary } from './stats.ts';
import type { StoreKind, StoreTarget } from './suite.ts';

export interface DevicesSettings {
  devices: number;
  /** Sequential requests measured per lookup, after `warmup` unmeasured ones. */
  samples: number;
  warmup: number;
  batch: number;
  /** maintenance_work_mem for the GIN build (PGlite runs in a 32-bit WASM heap: keep it small there). */
  buildMemory: string;
}

export type LookupId = 'mac' | 'eui64' | 'displayName' | 'managed';

export const LOOKUP_TARGET_MS = 5;

export interface WhatIf {
  /** The index statement, run by the benchmark in its scratch database only. */
  index: string;
  buildSeconds: number;
  summary: Summary;
  profile: Profile;
}

export interface Lookup {
  id: LookupId;
  label: string;
  /** What each answer was checked against. */
  checked: string;
  summary: Summary;
  profile: Profile;
  whatIf?: WhatIf;
}

export interface DevicesResult {
  kind: StoreKind;
  engineVersion: string;
  tenant: string;
  load: DeviceLoad;
  /** Size of the resources table with its indexes, as the engine reports it. */
  tableSize: string;
  managed: number;
  lookups: Lookup[];
  loadAverage: [number, number];
}

const TENANT = 'bench-devices';
export const GATEWAY = {
  deviceControlEnterpriseEndpoint: 'https://gateway.bench.invalid/device-control',
  telemetryEnterpriseEndpoint: 'https://gateway.bench.invalid/telemetry',
};

const q = (filter: string) => encodeURIComponent(filter);
const randInt = (n: number) => Math.floor(Math.random() * n);

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** A random i < n of the given kind. */
function randomOf(n: number, kind: DeviceKind): number {
  for (;;) {
    const i = randInt(n);
    if (kindOf(i) === kind) return i;
  }
}

interface LookupSpec {
  id: LookupId;
  label: string;
  checked: string;
  /** Builds one random request: its path, its in-process equivalent and the check of its answer. */
  next(): { path: string; filter?: string; count?: number; verify(page: JsonObject): void };
  managed: boolean;
  /** The index that would serve it, when there is none (created only after a missed target). */
  whatIf?: (registry: SchemaRegistry) => string;
}

function specs(n: number): LookupSpec[] {
  const prefixBlocks = Math.max(1, Math.floor(n / 1000));
  const one = (expected: string) => (page: JsonObject) => {
    const found = (page.Resources as JsonObject[] | undefined) ?? [];
    check(
      page.totalResults === 1 && found[0]?.displayName === expected,
      `one device "${expected}", got ${String(page.totalResults)}`,
    );
  };
  return [
    {
      id: 'mac',
      label: 'BLE deviceMacAddress eq (other spelling)',
      checked: 'exactly one device, the expected one',
      managed: false,
      next() {
        const i = randomOf(n, 'BLE');
        const filter = `urn:ietf:params:scim:schemas:extension:ble:2.0:Device:deviceMacAddress eq "${otherMacSpelling(macOf(i))}"`;
        return { path: `/Devices?filter=${q(filter)}`, filter, verify: one(displayNameOf(i)) };
      },
    },
    {
      id: 'eui64',
      label: 'Zigbee deviceEui64Address eq (other spelling)',
      checked: 'exactly one device, the expected one',
      managed: false,
      next() {
        const i = randomOf(n, 'Zigbee');
        const filter = `urn:ietf:params:scim:schemas:extension:zigbee:2.0:Device:deviceEui64Address eq "${otherEui64Spelling(eui64Of(i))}"`;
        return { path: `/Devices?filter=${q(filter)}`, filter, verify: one(displayNameOf(i)) };
      },
      // No what-if index: deviceEui64Address is `indexed` (the migrations keep its index).
    },
    {
      id: 'displayName',
      label: 'displayName sw "<name prefix>", count=100',
      checked: 'totalResults = the devices with that prefix; a full page',
      managed: false,
      next() {
        const kind = kindOf(randInt(10));
        const block = randInt(prefixBlocks);
        const prefix = namePrefix(kind, block);
        const expected = prefixCount(n, kind, block);
        const filter = `displayName sw "${prefix}"`;
        return {
          path: `/Devices?filter=${q(filter)}&count=100`,
          filter,
          count: 100,
          verify(page) {
            check(
              page.totalResults === expected && page.itemsPerPage === Math.min(100, expected),
              `${filter}: ${expected} devices, a page of ${Math.min(100, expected)}; got ${String(page.totalResults)}/${String(page.itemsPerPage)}`,
            );
          },
        };
      },
      // No what-if index: Device.displayName is `indexed: 'prefix'` (the migrations keep its index).
    },
    {
      id: 'managed',
      label: 'GET /Devices?count=100, managed-only client',
      checked: `totalResults = ${managedCount(n).toLocaleString('en-US')} (the devices naming its app); a full page`,
      managed: true,
      next() {
        const expected = managedCount(n);
        return {
          path: '/Devices?count=100',
          count: 100,
          verify(page) {
            check(
              page.totalResults === expected && page.itemsPerPage === Math.min(100, expected),
              `managed list: ${expected} devices; got ${String(page.totalResults)}/${String(page.itemsPerPage)}`,
            );
          },
        };
      },
    },
  ];
}

/**
 * The plans that tell how a list is served: its count (totalResults) and its page, which the
 * store reads in one statement (ResourceRepository.list), with each row's groups as a subquery.
 * (A separate groups statement says nothing about the filter and is left out.)
 */
async function explainList(recorder: Recorder, p: Profile): Promise<void> {
  p.plans = [];
  for (const st of p.statements) {
    if (!/^\s*SELECT/i.test(st.sql) || /^\s*SELECT gm\./i.test(st.sql)) continue;
    const of = /^\s*SELECT count\(\*\)/i.test(st.sql)
      ? 'the count (totalResults)'
      : /\btotal_results\b/.test(st.sql)
        ? 'the count and the page (one statement)'
        : 'the page';
    p.plans.push({ of, plan: await explain(recorder.plain, st) });
  }
}

async function series(
  client: Client,
  prefix: string,
  spec: LookupSpec,
  samples: number,
  warmup: number,
): Promise<Summary> {
  const out: number[] = [];
  for (let k = 0; k < warmup + samples; k++) {
    const r = spec.next();
    const res = await client.expect('GET', `${prefix}${r.path}`, 200);
    r.verify(JSON.parse(res.body) as JsonObject);
    if (k >= warmup) out.push(res.ms);
  }
  return summarize(out);
}

export async function runDevices(
  target: StoreTarget,
  s: DevicesSettings,
  log: (msg: string) => void,
): Promise<DevicesResult> {
  const storeOpts = { databaseUrl: target.databaseUrl, dataDir: target.dataDir };
  const tag = `[${target.kind} devices]`;
  const adminToken = randomBytes(24).toString('base64url');
  const appConfig = { ...storeOpts, port: 0, host: '127.0.0.1', adminToken, logLevel: 'silent' };
  const baseUrl = `http://127.0.0.1/tenants/${TENANT}/scim/v2`;
  const inProcess = (app: App, managed?: { clientId: string; appId: string }): RequestContext => ({
    tenant: TENANT,
    baseUrl,
    clientId: managed?.clientId ?? 'bench-reader',
    limits: app.config,
    settings: { devices: GATEWAY },
    managed: managed ? { clientId: managed.clientId, appIds: [managed.appId] } : undefined,
    hideSensitive: true,
  });

  // ---- data: the tenant, two EndpointApps, then the devices straight into the store ----
  let app = await createApp(appConfig);
  let apps: { a: string; b: string };
  let load: DeviceLoad;
  let engineVersion: string;
  let tableSize: string;
  try {
    await app.admin.createTenant({ id: TENANT, settings: { devices: GATEWAY } });
    const appRt = app.registry.resourceType('EndpointApp')!;
    const endpointApp = async (name: string) =>
      (
        await app.service.create({ ...inProcess(app), clientId: 'bench-loader' }, appRt, {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:EndpointApp'],
          applicationType: 'deviceControl',
          applicationName: name,
        })
      ).resource.id as string;
    apps = { a: await endpointApp('Building automation'), b: await endpointApp('Lighting control') };
    log(`${tag} loading ${s.devices.toLocaleString('en-US')} devices`);
    load = await loadDevices(
      app.db,
      app.registry,
      TENANT,
      { devices: GATEWAY },
      baseUrl,
      s.devices,
      apps,
      log,
      { batch: s.batch, buildMemory: s.buildMemory },
    );
    log(
      `${tag} rows ${load.rowsSeconds.toFixed(1)} s, GIN ${load.ginSeconds.toFixed(1)} s, VACUUM ANALYZE ${load.analyzeSeconds.toFixed(1)} s`,
    );
    engineVersion = (await app.db.query<{ v: string }>('SELECT version() AS v')).rows[0].v;
    tableSize = (
      await app.db.query<{ s: string }>("SELECT pg_size_pretty(pg_total_relation_size('resources')) AS s")
    ).rows[0].s;
  } finally {
    await app.close();
  }

  const lookups = specs(s.devices);
  const prefix = `/tenants/${TENANT}/scim/v2`;
  const loadBefore = os.loadavg()[0];

  // ---- lookups over HTTP ----
  const measureAll = async (which: LookupSpec[], samples: number) => {
    const server = await startServer({ kind: 'scimd', adminToken, ...storeOpts });
    const admin = new Client(server.port, adminToken);
    const clients: Client[] = [];
    try {
      const tokenFor = async (body: JsonObject) => {
        const id = body.id as string;
        const existing = await admin.request('GET', `/admin/v1/tenants/${TENANT}/clients/${id}`);
        if (existing.status === 404)
          await admin.expect('POST', `/admin/v1/tenants/${TENANT}/clients`, 201, body);
        const res = await admin.expect('POST', `/admin/v1/tenants/${TENANT}/clients/${id}/tokens`, 201, {});
        return (JSON.parse(res.body) as { token: string }).token;
      };
      const reader = new Client(
        server.port,
        await tokenFor({ id: 'bench-reader', name: 'reader', scopes: ['Device:read'] }),
      );
      const manager = new Client(
        server.port,
        await tokenFor({
          id: 'bench-app-a',
          name: 'Building automation',
          scopes: ['Device:read', 'devices:managed'],
          endpointAppId: apps.a,
        }),
      );
      clients.push(reader, manager);
      const out = new Map<LookupId, Summary>();
      for (const spec of which) {
        log(`${tag} ${spec.label} x${samples}`);
        out.set(spec.id, await series(spec.managed ? manager : reader, prefix, spec, samples, s.warmup));
      }
      return out;
    } finally {
      for (const c of clients) c.close();
      admin.close();
      await server.stop();
    }
  };
  const measured = await measureAll(lookups, s.samples);
  const loadAfter = os.loadavg()[0];

  // ---- where the time goes, and the index that would fix a miss ----
  log(`${tag} profiling in-process`);
  const results: Lookup[] = [];
  const missed: LookupSpec[] = [];
  app = await createApp(appConfig);
  try {
    const recorder = instrument(app.db);
    const rt = app.registry.resourceType('Device')!;
    const run = (spec: LookupSpec) => {
      const ctx = spec.managed ? inProcess(app, { clientId: 'bench-app-a', appId: apps.a }) : inProcess(app);
      return () => {
        const r = spec.next();
        return app.service.list(ctx, [rt], { filter: r.filter, count: r.count });
      };
    };
    for (const spec of lookups) {
      const p = await profile(recorder, `${spec.label}`, run(spec));
      await explainList(recorder, p);
      const summary = measured.get(spec.id)!;
      results.push({ id: spec.id, label: spec.label, checked: spec.checked, summary, profile: p });
      if (summary.p50 >= LOOKUP_TARGET_MS && spec.whatIf) missed.push(spec);
    }
    for (const spec of missed) {
      const index = spec.whatIf!(app.registry);
      log(`${tag} what-if: ${index}`);
      const t0 = performance.now();
      await app.db.query(index);
      await app.db.query('ANALYZE resources');
      const buildSeconds = (performance.now() - t0) / 1000;
      const p = await profile(recorder, `${spec.label}, with the index`, run(spec));
      await explainList(recorder, p);
      results.find((r) => r.id === spec.id)!.whatIf = {
        index,
        buildSeconds,
        profile: p,
        summary: summarize([]),
      };
    }
  } finally {
    await app.close();
  }
  if (missed.length > 0) {
    const again = await measureAll(missed, s.samples);
    for (const [id, summary] of again) results.find((r) => r.id === id)!.whatIf!.summary = summary;
  }

  return {
    kind: target.kind,
    engineVersion,
    tenant: TENANT,
    load,
    tableSize,
    managed: managedCount(s.devices),
    lookups: results,
    loadAverage: [loadBefore, loadAfter],
  };
}
