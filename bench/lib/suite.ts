/**
 * One store's benchmark: load the data set, start scimd in a child process, measure (a) to (d),
 * stop it, then profile the measured operations in-process on the same data.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { createApp, type App } from '../../src/app.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { createCoreRegistry } from '../../src/scim/schema/registry.ts';
import type { RequestContext } from '../../src/service/resources.ts';
import { openDatabase } from '../../src/store/open.ts';
import { startServer } from './children.ts';
import { loadData, OWNER, TENANT, userBody, workEmail, type LoadedData } from './data.ts';
import { Client } from './http.ts';
import { loadTest, type LoadResult } from './load-test.ts';
import { instrument, profile, type Profile, type Recorder } from './profile.ts';
import { fmtInt, summarize, type Summary } from './stats.ts';

export type StoreKind = 'pglite' | 'postgres';

export interface Settings {
  users: number;
  groups: number;
  connections: number;
  warmupSeconds: number;
  seconds: number;
  /** Sequential samples of the userName eq lookup. */
  lookupSamples: number;
  /** Sequential samples of each emails[...] filter (they scan, so fewer). */
  emailSamples: number;
  patchSamples: number;
  bulkUsers: number;
  bulkBatch: number;
}

export interface StoreTarget {
  kind: StoreKind;
  /** PGlite folder, or PostgreSQL connection string of the scratch database. */
  dataDir?: string;
  databaseUrl?: string;
}

export interface CursorWalk {
  pages: number;
  seconds: number;
  usersPerSecond: number;
  visited: number;
  distinct: number;
  expected: number;
}

export interface BulkImport {
  users: number;
  requests: number;
  seconds: number;
  perSecond: number;
  failed: number;
  /** Seconds of the fastest and slowest request. */
  fastest: number;
  slowest: number;
}

export interface StoreResult {
  kind: StoreKind;
  engineVersion: string;
  data: Omit<LoadedData, 'userIds' | 'groupIds'> & { users: number; groups: number };
  hello: LoadResult;
  getById: LoadResult;
  filterList: LoadResult;
  userNameEq: Summary;
  emailValue: Summary;
  emailType: Summary;
  cursorWalk: CursorWalk;
  bulk: BulkImport;
  patchSmall: Summary;
  patchBig: Summary;
  smallMembers: number;
  bigMembers: number;
  profiles: Profile[];
  micro: Micro;
  /** 1-minute load average when the measurements started and ended (the machine may be shared). */
  loadAverage: [number, number];
}

/** Per-transaction costs, in-process (no HTTP): the floor under every request and Bulk operation. */
export interface Micro {
  /** p50 of an empty transaction (BEGIN; COMMIT). */
  emptyTransactionMs: number;
  /** p50 of a transaction updating one row (the commit flushes the WAL). */
  writeTransactionMs: number;
  /** p50 of ResourceService.create of one User, as a Bulk POST operation runs it. */
  createMs: number;
  /** synchronous_commit and fsync of the store. */
  durability: string;
}

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const BULK_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';

const q = (filter: string) => encodeURIComponent(filter);
const randInt = (n: number) => Math.floor(Math.random() * n);

async function sequential(n: number, warm: number, fn: (i: number) => Promise<number>): Promise<Summary> {
  for (let i = 0; i < warm; i++) await fn(i);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await fn(i));
  return summarize(samples);
}

function json(body: string): JsonObject {
  return JSON.parse(body) as JsonObject;
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

export async function runStore(
  target: StoreTarget,
  s: Settings,
  log: (msg: string) => void,
): Promise<StoreResult> {
  const registry = createCoreRegistry();
  const storeOpts = { databaseUrl: target.databaseUrl, dataDir: target.dataDir };

  // ---- data ----
  log(`[${target.kind}] loading ${s.users} users and ${s.groups} groups`);
  const db = await openDatabase(storeOpts, registry);
  const engineVersion = (await db.query<{ v: string }>('SELECT version() AS v')).rows[0].v;
  const loaded = await loadData(db, registry, s.users, s.groups, log);
  await db.close();
  log(
    `[${target.kind}] loaded in ${loaded.loadSeconds.toFixed(1)} s, VACUUM ANALYZE ${loaded.analyzeSeconds.toFixed(1)} s`,
  );
  const { userIds } = loaded;

  const token = randomBytes(24).toString('base64url');
  const measure = { connections: s.connections, warmupSeconds: s.warmupSeconds, seconds: s.seconds };

  // ---- (a) throughput next to hello-world ----
  const loadBefore = os.loadavg()[0];
  log(`[${target.kind}] (a) hello-world baseline`);
  const hello = await startServer({ kind: 'hello' });
  let helloResult: LoadResult;
  try {
    helloResult = await loadTest({
      label: 'fastify hello-world',
      port: hello.port,
      pid: hello.pid,
      paths: ['/'],
      ...measure,
    });
  } finally {
    await hello.stop();
  }

  const server = await startServer({ kind: 'scimd', adminToken: token, ...storeOpts });
  const client = new Client(server.port, token);
  let result: Omit<StoreResult, 'profiles' | 'micro' | 'loadAverage'>;
  try {
    // A wrong answer must not pass for a fast one: check each kind of request once before loading it.
    const probe = json((await client.expect('GET', `/scim/v2/Users/${userIds[0]}`, 200)).body);
    check(probe.id === userIds[0], 'GET by id returns the user');
    const byIdPaths = userIds.slice(0, 1000).map((id) => `/scim/v2/Users/${id}`);
    const filterPath = `/scim/v2/Users?filter=${q('userName eq "user42"')}`;
    check(json((await client.expect('GET', filterPath, 200)).body).totalResults === 1, 'user42 found');

    log(`[${target.kind}] (a) GET /Users/{id}`);
    const getById = await loadTest({
      label: 'GET /Users/{id}',
      port: server.port,
      pid: server.pid,
      paths: byIdPaths,
      token,
      ...measure,
    });
    log(`[${target.kind}] (a) GET /Users?filter=userName eq "user42"`);
    const filterList = await loadTest({
      label: 'GET /Users?filter=userName eq',
      port: server.port,
      pid: server.pid,
      paths: [filterPath],
      token,
      ...measure,
    });

    // ---- (b) lookups at scale ----
    log(`[${target.kind}] (b) userName eq x${s.lookupSamples}`);
    const userNameEq = await sequential(s.lookupSamples, 20, async () => {
      const i = randInt(s.users);
      const res = await client.expect('GET', `/scim/v2/Users?filter=${q(`userName eq "user${i}"`)}`, 200);
      check(json(res.body).totalResults === 1, `userName eq "user${i}" finds one user`);
      return res.ms;
    });
    log(`[${target.kind}] (b) emails[type eq "work" and value eq ...] x${s.emailSamples}`);
    const emailValue = await sequential(s.emailSamples, 3, async () => {
      const i = randInt(s.users);
      const filter = `emails[type eq "work" and value eq "${workEmail(i)}"]`;
      const res = await client.expect('GET', `/scim/v2/Users?filter=${q(filter)}`, 200);
      check(json(res.body).totalResults === 1, `${filter} finds one user`);
      return res.ms;
    });
    log(`[${target.kind}] (b) emails[type eq "work"]&count=100 x${s.emailSamples}`);
    const emailType = await sequential(s.emailSamples, 3, async () => {
      const res = await client.expect(
        'GET',
        `/scim/v2/Users?filter=${q('emails[type eq "work"]')}&count=100`,
        200,
      );
      check(json(res.body).itemsPerPage === 100, 'emails[type eq "work"] returns a full page');
      return res.ms;
    });

    log(`[${target.kind}] (b) cursor walk`);
    const seen = new Set<string>();
    let visited = 0;
    let pages = 0;
    const w0 = performance.now();
    let path: string | undefined = '/scim/v2/Users?cursor&count=1000';
    while (path) {
      const page = json((await client.expect('GET', path, 200)).body);
      pages++;
      for (const r of (page.Resources as JsonObject[] | undefined) ?? []) {
        visited++;
        seen.add(r.id as string);
      }
      path =
        typeof page.nextCursor === 'string'
          ? `/scim/v2/Users?cursor=${encodeURIComponent(page.nextCursor)}&count=1000`
          : undefined;
      check(pages <= s.users / 1000 + 2, 'cursor walk ends');
    }
    const walkSeconds = (performance.now() - w0) / 1000;
    const cursorWalk: CursorWalk = {
      pages,
      seconds: walkSeconds,
      usersPerSecond: visited / walkSeconds,
      visited,
      distinct: seen.size,
      expected: s.users,
    };
    check(
      visited === s.users && seen.size === s.users,
      `cursor walk visits ${s.users} distinct users (${visited}/${seen.size})`,
    );

    // ---- (d) Bulk import (before (c): the new users are the members added there) ----
    log(`[${target.kind}] (d) Bulk import of ${s.bulkUsers} users`);
    const created: string[] = [];
    let failed = 0;
    let requests = 0;
    const perRequest: number[] = [];
    const b0 = performance.now();
    for (let from = 0; from < s.bulkUsers; from += s.bulkBatch) {
      const Operations = [];
      for (let i = from; i < Math.min(s.bulkUsers, from + s.bulkBatch); i++)
        Operations.push({ method: 'POST', path: '/Users', bulkId: `u${i}`, data: userBody(i, 'bulk') });
      const res = await client.expect('POST', '/scim/v2/Bulk', 200, { schemas: [BULK_REQUEST], Operations });
      requests++;
      perRequest.push(res.ms / 1000);
      for (const op of json(res.body).Operations as JsonObject[]) {
        if (op.status === '201' && typeof op.location === 'string')
          created.push(op.location.split('/').pop()!);
        else {
          if (failed === 0) log(`  first failed bulk operation: ${JSON.stringify(op).slice(0, 1000)}`);
          failed++;
        }
      }
    }
    const bulkSeconds = (performance.now() - b0) / 1000;
    const bulk: BulkImport = {
      users: created.length,
      requests,
      seconds: bulkSeconds,
      perSecond: created.length / bulkSeconds,
      failed,
      fastest: Math.min(...perRequest),
      slowest: Math.max(...perRequest),
    };
    check(failed === 0, `every bulk operation succeeded (${failed} failed)`);

    // ---- (c) one member added to a small and to a big group ----
    log(`[${target.kind}] (c) PATCH add member x${s.patchSamples} per group`);
    const fresh = created.slice();
    // Each measured add is undone by an (unmeasured) remove, so the groups keep exactly their sizes.
    const addMember = async (groupId: string) => {
      const member = fresh.pop()!;
      const res = await client.expect('PATCH', `/scim/v2/Groups/${groupId}`, 204, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'add', path: 'members', value: [{ value: member }] }],
      });
      await client.expect('PATCH', `/scim/v2/Groups/${groupId}`, 204, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'remove', path: `members[value eq "${member}"]` }],
      });
      return res.ms;
    };
    check(fresh.length >= 2 * (s.patchSamples + 5) + 4, 'enough new users for the member adds');
    // Interleaved, so that drift over the run affects both groups alike.
    const small: number[] = [];
    const big: number[] = [];
    for (let i = 0; i < 5; i++) {
      await addMember(loaded.smallGroupId);
      await addMember(loaded.bigGroupId);
    }
    for (let i = 0; i < s.patchSamples; i++) {
      small.push(await addMember(loaded.smallGroupId));
      big.push(await addMember(loaded.bigGroupId));
    }
    const members = async (groupId: string) =>
      json((await client.expect('GET', `/scim/v2/Groups/${groupId}?attributes=members`, 200)).body)
        .members as unknown[];
    const smallMembers = (await members(loaded.smallGroupId)).length;
    const bigMembers = (await members(loaded.bigGroupId)).length;
    check(smallMembers === 100, `small group has ${smallMembers} members`);
    check(bigMembers === s.users, `big group has ${bigMembers} members`);

    result = {
      kind: target.kind,
      engineVersion,
      data: {
        users: s.users,
        groups: s.groups,
        smallGroupId: loaded.smallGroupId,
        bigGroupId: loaded.bigGroupId,
        memberships: loaded.memberships,
        loadSeconds: loaded.loadSeconds,
        analyzeSeconds: loaded.analyzeSeconds,
      },
      hello: helloResult,
      getById,
      filterList,
      userNameEq,
      emailValue,
      emailType,
      cursorWalk,
      bulk,
      patchSmall: summarize(small),
      patchBig: summarize(big),
      smallMembers,
      bigMembers,
    };
    const loadAverage: [number, number] = [loadBefore, os.loadavg()[0]];
    log(`[${target.kind}] stopping the server`);
    client.close();
    await server.stop();

    // ---- where the time goes ----
    // The service as createApp wires it (not listening), its Database instrumented in place.
    log(`[${target.kind}] profiling in-process`);
    const app = await createApp({
      ...storeOpts,
      port: 0,
      host: '127.0.0.1',
      adminToken: token,
      logLevel: 'silent',
    });
    try {
      const recorder = instrument(app.db);
      const ctx = {
        tenant: TENANT,
        baseUrl: 'http://127.0.0.1/scim/v2',
        clientId: OWNER,
        limits: app.config,
      } as RequestContext;
      const profiles = await profileAll(app, ctx, recorder, loaded, fresh, s, {
        small: smallMembers,
        big: bigMembers,
      });
      const micro = await microBenchmarks(app, ctx, recorder);
      return { ...result, profiles, micro, loadAverage };
    } finally {
      await app.close();
    }
  } finally {
    client.close();
    await server.stop();
  }
}

async function microBenchmarks(app: App, ctx: RequestContext, recorder: Recorder): Promise<Micro> {
  const p50 = async (n: number, fn: () => Promise<unknown>) =>
    (
      await sequential(n, 10, async () => {
        const t = performance.now();
        await fn();
        recorder.take();
        return performance.now() - t;
      })
    ).p50;
  const users = app.registry.resourceType('User')!;
  let k = 0;
  const setting = async (name: string) =>
    (await recorder.plain.query<Record<string, string>>(`SHOW ${name}`)).rows.map(
      (r) => Object.values(r)[0],
    )[0];
  return {
    emptyTransactionMs: await p50(200, () => app.db.transaction(async () => undefined)),
    writeTransactionMs: await p50(200, () =>
      app.db.transaction((tx) => tx.query("UPDATE server_secrets SET secret = secret WHERE name = 'cursor'")),
    ),
    createMs: await p50(200, () =>
      app.service.create(ctx, users, userBody(k++, 'micro'), { attributes: ['id'] }),
    ),
    durability: `synchronous_commit=${await setting('synchronous_commit')}, fsync=${await setting('fsync')}`,
  };
}

async function profileAll(
  app: App,
  ctx: RequestContext,
  recorder: Recorder,
  loaded: LoadedData,
  fresh: string[],
  s: Settings,
  members: { small: number; big: number },
): Promise<Profile[]> {
  const { service, registry } = app;
  const users = registry.resourceType('User')!;
  const groups = registry.resourceType('Group')!;
  const id = loaded.userIds[Math.floor(s.users / 2)];
  const i = Math.floor(s.users / 3);
  const patch = (groupId: string) => () =>
    service.patch(
      ctx,
      groups,
      groupId,
      {
        schemas: [PATCH_OP],
        Operations: [{ op: 'add', path: 'members', value: [{ value: fresh.pop()! }] }],
      },
      undefined,
    );
  let k = 0;
  return [
    await profile(recorder, 'POST /Users as one Bulk operation (create, response attributes=id)', () =>
      service.create(ctx, users, userBody(k++, 'profile'), { attributes: ['id'] }),
    ),
    await profile(recorder, 'GET /Users/{id}', () => service.get(ctx, users, id)),
    await profile(recorder, `GET /Users?filter=userName eq "user${i}"`, () =>
      service.list(ctx, [users], { filter: `userName eq "user${i}"` }),
    ),
    await profile(recorder, `GET /Users?filter=emails[type eq "work" and value eq "${workEmail(i)}"]`, () =>
      service.list(ctx, [users], { filter: `emails[type eq "work" and value eq "${workEmail(i)}"]` }),
    ),
    await profile(recorder, 'GET /Users?filter=emails[type eq "work"]&count=100', () =>
      service.list(ctx, [users], { filter: 'emails[type eq "work"]', count: 100 }),
    ),
    await profile(recorder, 'GET /Users?cursor&count=1000 (first page)', () =>
      service.list(ctx, [users], { cursor: '', count: 1000 }),
    ),
    await profile(
      recorder,
      `PATCH /Groups/{id} add 1 member (group of ${fmtInt(members.big)} members)`,
      patch(loaded.bigGroupId),
    ),
    await profile(
      recorder,
      `PATCH /Groups/{id} add 1 member (group of ${fmtInt(members.small)} members)`,
      patch(loaded.smallGroupId),
    ),
  ];
}
