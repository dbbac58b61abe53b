/**
 * SCIM events at load (issue 5): how fast the publisher turns the change log into signed SETs,
 * how fast the push worker delivers them, the lag from a write to its SET's arrival at a receiver,
 * and (delta-cost.ts) what a delta pull costs in a small vs a big tenant.
 *
 * Throughput is measured in-process with the background workers off, each stage stepped by the
 * benchmark alone, so a figure is that stage's own rate: N Users and their create rows are in the
 * log, a full feed from the beginning with one push receiver is created, then publishOnce() runs
 * until N SETs are in the outbox, then deliverOnce() until a local HTTP sink (202, no work) has all
 * N. The lag is measured against a scimd server process with its workers running as in
 * production: Users are created one at a time at a steady rate, and each write's lag is the time
 * from sending the POST to its SET reaching the sink (so it includes the write itself, the
 * publisher's polling interval and the push).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { loadUsers, userBody } from './data.ts';
import { runDeltaCost, type DeltaCostResult, type DeltaCostSettings } from './delta-cost.ts';
import { startServer } from './children.ts';
import { summarize, type Summary } from './stats.ts';
import type { StoreTarget } from './suite.ts';

export interface EventsSettings {
  /** SETs published and delivered in the throughput stages. */
  events: number;
  /** Writes timed for the lag, and their rate per second. */
  lagWrites: number;
  lagRate: number;
  delta: DeltaCostSettings;
}

export interface Rate {
  events: number;
  seconds: number;
  perSecond: number;
}

export interface EventsResult {
  store: StoreTarget['kind'];
  settings: EventsSettings;
  published: Rate;
  delivered: Rate;
  lag: Summary;
  /** Publisher interval of the server measured for the lag. */
  publishIntervalMs: number;
  delta: DeltaCostResult;
}

const ADMIN = 'bench-admin-token';

/** A push receiver that accepts everything: counts SETs and notes when each subject arrived. */
interface Sink {
  url: string;
  received: number;
  /** sub_id.uri → first arrival time (performance.now()). */
  arrivals: Map<string, number>;
  /** Resolves when `n` SETs have arrived. */
  waitFor(n: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  const waiters: { n: number; resolve: () => void }[] = [];
  const sink: Sink = {
    url: '',
    received: 0,
    arrivals: new Map(),
    waitFor: (n, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        if (sink.received >= n) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`sink got ${sink.received} of ${n} SETs in ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const now = performance.now();
      res.writeHead(202).end();
      sink.received++;
      try {
        const claims = JSON.parse(Buffer.from(body.split('.')[1], 'base64url').toString()) as {
          sub_id?: { uri?: string };
        };
        const uri = claims.sub_id?.uri;
        if (uri && !sink.arrivals.has(uri)) sink.arrivals.set(uri, now);
      } catch {
        // not a JWT: counted, not timed
      }
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (sink.received >= waiters[i].n) {
          waiters[i].resolve();
          waiters.splice(i, 1);
        }
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('sink has no port');
  sink.url = `http://127.0.0.1:${addr.port}/events`;
  return sink;
}

const rate = (events: number, ms: number): Rate => ({
  events,
  seconds: ms / 1000,
  perSecond: events / (ms / 1000),
});

/** Publisher and push worker rates, each stepped alone. */
async function throughput(
  target: StoreTarget,
  s: EventsSettings,
  log: (msg: string) => void,
): Promise<{ published: Rate; delivered: Rate }> {
  const app = await createApp({
    port: 0,
    adminToken: ADMIN,
    logLevel: 'silent',
    dataDir: target.dataDir,
    databaseUrl: target.databaseUrl,
    backgroundWorkers: false,
  });
  const sink = await startSink();
  try {
    log(`  events: ${s.events} Users and their create rows`);
    await loadUsers(app.db, app.registry, 'default', s.events);
    await app.db.query(
      `INSERT INTO changes (tenant_id, at, client_id, operation, resource_type, resource_id, version)
       SELECT tenant_id, created, owner_client, 'create', resource_type, id, version FROM resources
       WHERE tenant_id = 'default' AND resource_type = 'User'`,
    );
    await app.db.query('VACUUM ANALYZE');
    await app.feeds.create('default', {
      id: 'bench',
      name: 'bench',
      resourceTypes: ['User'],
      form: 'full',
      from: 'beginning',
    });
    await app.receivers.create('default', {
      id: 'sink',
      name: 'sink',
      feedId: 'bench',
      delivery: 'push',
      endpointUrl: sink.url,
    });
    log('  events: publishing');
    let sets = 0;
    const p0 = performance.now();
    while (sets < s.events) {
      const r = await app.publisher.publishOnce();
      if (r.sets === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      sets += r.sets;
    }
    const published = rate(sets, performance.now() - p0);
    log(`  events: delivering to ${sink.url}`);
    const d0 = performance.now();
    while (sink.received < s.events) await app.pushWorker.deliverOnce();
    const delivered = rate(sink.received, performance.now() - d0);
    return { published, delivered };
  } finally {
    await sink.close();
    await app.close();
  }
}

/** Write → receipt lag against a server process with its workers on. */
async function lag(target: StoreTarget, s: EventsSettings, log: (msg: string) => void): Promise<Summary> {
  const sink = await startSink();
  const server = await startServer({
    kind: 'scimd',
    adminToken: ADMIN,
    dataDir: target.dataDir,
    databaseUrl: target.databaseUrl,
  });
  const base = `http://127.0.0.1:${server.port}`;
  const call = async (method: string, path: string, body: unknown): Promise<{ id?: string }> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status}: ${await res.text()}`);
    return res.status === 204 ? {} : ((await res.json()) as { id?: string });
  };
  try {
    await call('DELETE', '/admin/v1/tenants/default/feeds/bench', undefined).catch(() => undefined);
    await call('POST', '/admin/v1/tenants/default/feeds', {
      id: 'lag',
      name: 'lag',
      resourceTypes: ['User'],
      form: 'full',
      from: 'now',
    });
    await call('POST', '/admin/v1/tenants/default/receivers', {
      id: 'lag-sink',
      name: 'lag sink',
      feedId: 'lag',
      delivery: 'push',
      endpointUrl: sink.url,
    });
    log(`  events: lag of ${s.lagWrites} writes at ${s.lagRate}/s`);
    const sent = new Map<string, number>();
    const gap = 1000 / s.lagRate;
    const t0 = performance.now();
    for (let i = 0; i < s.lagWrites; i++) {
      const due = t0 + i * gap;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const at = performance.now();
      const created = await call('POST', '/scim/v2/Users', userBody(1_000_000 + i, 'lag'));
      sent.set(`/Users/${created.id}`, at);
    }
    await sink.waitFor(s.lagWrites, 60_000);
    const lags = [...sent].map(([uri, at]) => {
      const got = sink.arrivals.get(uri);
      if (got === undefined) throw new Error(`no SET arrived for ${uri}`);
      return got - at;
    });
    return summarize(lags);
  } finally {
    await server.stop();
    await sink.close();
  }
}

export async function runEvents(
  target: StoreTarget,
  s: EventsSettings,
  log: (msg: string) => void,
): Promise<EventsResult> {
  const { published, delivered } = await throughput(target, s, log);
  const lagSummary = await lag(target, s, log);
  const delta = await runDeltaCost(target, s.delta, log);
  return {
    store: target.kind,
    settings: s,
    published,
    delivered,
    lag: lagSummary,
    publishIntervalMs: loadConfig().eventPublishIntervalMs,
    delta,
  };
}
