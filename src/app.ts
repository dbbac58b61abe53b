/**
 * The composition root: configuration → store → services → HTTP server. Tests, the CLI and
 * benchmarks all start scimd through createApp so they run the same wiring.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { AsyncRequests } from './async/requests.ts';
import { AsyncWorker } from './async/worker.ts';
import { loadConfig, type AppConfig } from './config.ts';
import { SigningKeys } from './events/keys.ts';
import { DEFAULT_APPLIER_OPTIONS, EventApplier } from './events/inbound/applier.ts';
import { SetIntake } from './events/inbound/intake.ts';
import { DEFAULT_POLL_CLIENT_OPTIONS, PollClient } from './events/inbound/poll-client.ts';
import { UpstreamService } from './events/inbound/upstreams.ts';
import { FeedService } from './events/outbound/feeds.ts';
import { Publisher, PublisherWorker } from './events/outbound/publisher.ts';
import { PushWorker } from './events/outbound/push.ts';
import { ReceiverService } from './events/outbound/receivers.ts';
import { OutboxSignal } from './events/outbound/signal.ts';
import { buildServer } from './http/server.ts';
import { createServerRegistry } from './registry.ts';
import type { ConnectionService } from './sync/connections.ts';
import { PolicyConnectionService, policyClientFor } from './sync/tls-policy.ts';
import { DeviceRegistration } from './sync/device-registration.ts';
import { RegistrationService } from './sync/registration.ts';
import { FlowRunner } from './sync/engine/runner.ts';
import { FlowService } from './sync/flows.ts';
import type { SchemaRegistry } from './scim/schema/registry.ts';
import { CursorCodec } from './service/cursor.ts';
import { DeltaService } from './service/delta.ts';
import { ResourceService } from './service/resources.ts';
import type { Database } from './store/db.ts';
import { openDatabase } from './store/open.ts';
import { secretBoxFor } from './security/secret-box.ts';
import { warnUnopenableSecrets } from './security/stored-secrets.ts';
import { AdminService } from './admin/service.ts';
import { SyncTriggers } from './sync/triggers/index.ts';
import { TenantDirectory } from './tenancy/directory.ts';

/**
 * Work that runs beside the HTTP server (event publishing, delivery, receiving). Started after the
 * server is ready, stopped before it closes; `config.backgroundWorkers: false` leaves them stopped
 * (tests then drive them step by step).
 */
export interface BackgroundWorker {
  readonly name: string;
  start(): void;
  /** Stops taking new work and waits for work in progress. */
  stop(): Promise<void>;
}

export interface App {
  config: AppConfig;
  registry: SchemaRegistry;
  db: Database;
  service: ResourceService;
  admin: AdminService;
  /** Per-tenant keys that sign Security Event Tokens (the JWKS route reads the same table). */
  signingKeys: SigningKeys;
  /** Upstreams this node receives SCIM events from (admin API, CLI). */
  upstreams: UpstreamService;
  /** Checks and stores received SETs (push endpoint and poll client). */
  setIntake: SetIntake;
  /** Applies received events; `applyOnce()` is one pass (tests call it with workers off). */
  applier: EventApplier;
  /** RFC 8936 poll client of the upstreams with a poll endpoint; `pollOnce(upstream)` for tests. */
  pollClient: PollClient;
  /** Wake-up between the publisher and delivery (push workers, long polls) on this node. */
  outboxSignal: OutboxSignal;
  /** Event feeds of the tenants (admin API, CLI). */
  feeds: FeedService;
  /** Change log → outbox SETs; `publishOnce()` is one round (tests call it with workers off). */
  publisher: Publisher;
  /** Event receivers of the tenants and their delivery state (admin API, CLI). */
  receivers: ReceiverService;
  /** RFC 8935 push delivery; `deliverOnce()` is one pass (tests call it with workers off). */
  pushWorker: PushWorker;
  server: FastifyInstance;
  /** Queue of `Prefer: respond-async` requests, and the worker that runs them (runOnce in tests). */
  asyncRequests: AsyncRequests;
  asyncWorker: AsyncWorker;
  /** Sync engine configuration: connections (remote SCIM endpoints) and flows (admin API, CLI, engine). */
  connections: ConnectionService;
  flows: FlowService;
  /**
   * Sync engine triggers: `requestRun(tenant, flowId, trigger)`, `onRequest(wake)` for the runner,
   * `schedules` (a background worker; `reload()`, `tick(now, since)` in tests), `jit`.
   */
  syncTriggers: SyncTriggers;
  /** The sync engine's runner: `runFlow`, `plan`, run history; `runRequestedOnce()` in tests. */
  syncRunner: FlowRunner;
  /** Background workers, in start order (stopped in reverse). */
  workers: BackgroundWorker[];
  close(): Promise<void>;
}

/** A secret shared by every node on one database, created by the first node that needs it (stored sealed). */
async function serverSecret(db: Database, name: string): Promise<string> {
  const box = secretBoxFor(db);
  const place = { table: 'server_secrets', tenant: '', row: name, field: 'secret' };
  await db.query('INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
    name,
    box.seal(randomBytes(32).toString('base64url'), place),
  ]);
  const res = await db.query<{ secret: string }>('SELECT secret FROM server_secrets WHERE name = $1', [name]);
  return box.open(res.rows[0].secret, place);
}

export async function createApp(overrides: Partial<AppConfig> = {}): Promise<App> {
  const config = loadConfig(overrides);
  const registry = createServerRegistry();
  const db = await openDatabase(config, registry);
  const cursors = new CursorCodec(await serverSecret(db, 'cursor'));
  const service = new ResourceService(db, registry, cursors);
  const tenants = new TenantDirectory(db);
  const admin = new AdminService(db, registry, tenants);
  // One instance: it caches each tenant's active key, which signing and the JWKS must agree on.
  const signingKeys = new SigningKeys(db);
  const outboxSignal = new OutboxSignal();
  // SCIMD_SYNC_REQUIRE_TLS covers the events' outbound URLs too (receivers, upstreams).
  const receivers = new ReceiverService(db, outboxSignal, config.syncRequireTls);
  const feeds = new FeedService({ config, service, tenants, signingKeys, signal: outboxSignal });
  const publisher = new Publisher({ config, service, tenants, signingKeys, signal: outboxSignal });
  const asyncRequests = new AsyncRequests(db, signingKeys);
  const upstreams = new UpstreamService(db, registry, config.syncRequireTls);
  const setIntake = new SetIntake(db, { requireTls: config.syncRequireTls });
  upstreams.onChange((tenant, id) => setIntake.forget(tenant, id));
  // Triggers only request runs; `server` is assigned below, before anything can log.
  const syncTriggers = new SyncTriggers({
    db,
    service,
    registry,
    tenants,
    limits: config,
    log: { error: (obj, msg) => server.log.error(obj, msg) },
    schedulePollMs: config.syncScheduleReloadSeconds * 1000,
  });
  // SCIMD_SYNC_REQUIRE_TLS: plain-http connections (but to loopback) are refused and never called.
  const connections: ConnectionService = new PolicyConnectionService(db, config.syncRequireTls);
  const flows = new FlowService(db, registry);
  // The sync engine: runs requested flows, one runner per flow across nodes (lease).
  const syncRunner = new FlowRunner({
    db,
    service,
    registry,
    config,
    tenants,
    clientFor: policyClientFor(config.syncRequireTls),
    source: { flow: (t, id) => flows.get(t, id), connection: (t, id) => connections.find(t, id) },
    log: { error: (obj, msg) => server.log.error(obj, msg) },
  });
  syncTriggers.onRequest(() => syncRunner.wake());
  // Automatic customer registration (behaviour 31): the manufacturer's and the customer's side.
  const registrations = new RegistrationService({
    db,
    registry,
    requireTls: config.syncRequireTls,
    requestRun: (tenant, flowId) => syncTriggers.requestRun(tenant, flowId, 'api'),
  });
  const manufacturers = new DeviceRegistration({
    db,
    admin,
    service,
    registry,
    limits: config,
    baseUrl: config.baseUrl,
    requireTls: config.syncRequireTls,
    log: { error: (obj, msg) => server.log.error(obj, msg), info: (obj, msg) => server.log.info(obj, msg) },
  });
  const server = await buildServer({
    config,
    service,
    admin,
    tenants,
    signingKeys,
    receivers,
    outboxSignal,
    asyncRequests,
    feeds,
    inbound: { upstreams, intake: setIntake },
    jit: syncTriggers.jit,
    sync: { connections, flows },
    registration: { registrations, manufacturers },
    syncRunner,
    ping: async () => {
      await db.query('SELECT 1');
    },
  });
  await server.ready();
  // Stored secrets sealed with a key this node does not have: one warning per key id (docs/secrets.md).
  await warnUnopenableSecrets(db, secretBoxFor(db), server.log);
  // Change log retention: hourly, off the event loop's keep-alive; close() waits for a running pass.
  const retention = new DeltaService(service, config);
  let pruning: Promise<unknown> = Promise.resolve();
  const pruner = setInterval(() => {
    pruning = retention
      .prune()
      .catch((err: unknown) => server.log.error({ err }, 'change log pruning failed'))
      // Delivered SETs: kept for the listing and the counts, then removed (failed ones stay for a retry).
      .then(() =>
        receivers.pruneDelivered(new Date(Date.now() - config.eventOutboxRetentionDays * 86_400_000)),
      )
      .catch((err: unknown) => server.log.error({ err }, 'event outbox pruning failed'));
  }, 3_600_000);
  pruner.unref();
  const asyncWorker = new AsyncWorker(asyncRequests, service, tenants, config, { log: server.log });
  const workers: BackgroundWorker[] = [asyncWorker];
  const publisherWorker = new PublisherWorker(publisher, config.eventPublishIntervalMs, (err) =>
    server.log.error({ err }, 'event publishing failed'),
  );
  workers.push(publisherWorker);
  // Writes wake the publisher (events leave within milliseconds, not at its next round) and
  // request the push flows that follow local changes.
  service.onChange = (change) => {
    publisherWorker.wake();
    syncTriggers.localChange.notify(change);
    manufacturers.notify(change);
  };
  const pushWorker = new PushWorker({ db, signal: outboxSignal, config, log: server.log });
  workers.push(pushWorker);
  const applier = new EventApplier(
    { db, service, registry, tenants, upstreams, limits: config, baseUrl: config.baseUrl, log: server.log },
    {
      ...DEFAULT_APPLIER_OPTIONS,
      intervalMs: config.inboundApplyIntervalMs,
      maxAttempts: config.inboundMaxAttempts,
      retryBaseMs: config.inboundRetryBaseMs,
      // Applied events request the sync flows they feed (events flows, downstream pushes).
      onProcessed: (processed) => syncTriggers.events.notify(processed),
    },
  );
  setIntake.onReceived(() => applier.wake());
  const pollClient = new PollClient(
    { upstreams, intake: setIntake, log: server.log },
    { ...DEFAULT_POLL_CLIENT_OPTIONS, refreshMs: config.inboundPollRefreshSeconds * 1000 },
  );
  workers.push(applier, pollClient);
  workers.push(syncTriggers.schedules);
  workers.push(syncRunner);
  if (config.backgroundWorkers) for (const w of workers) w.start();
  return {
    config,
    registry,
    db,
    service,
    admin,
    signingKeys,
    outboxSignal,
    receivers,
    pushWorker,
    feeds,
    publisher,
    upstreams,
    setIntake,
    applier,
    pollClient,
    server,
    asyncRequests,
    asyncWorker,
    connections,
    flows,
    syncTriggers,
    syncRunner,
    workers,
    async close() {
      for (const w of [...workers].reverse()) await w.stop();
      await syncTriggers.close();
      await manufacturers.stop();
      clearInterval(pruner);
      await pruning;
      await server.close();
      await db.close();
    },
  };
}
