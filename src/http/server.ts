/**
 * The HTTP server: fastify with SCIM content types, request ids, metrics, SCIM error mapping,
 * throttling, optional TLS with client certificates, and the route plugins: SCIM per tenant
 * (scim-routes.ts) and the admin API (admin-routes.ts). The SCIM rules live in src/scim and
 * src/service; handlers only translate HTTP.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import type { AdminService } from '../admin/service.ts';
import type { AsyncRequests } from '../async/requests.ts';
import { Authenticator, type PeerCertificate } from '../auth/authenticator.ts';
import type { AppConfig } from '../config.ts';
import { ScimError } from '../scim/errors.ts';
import type { ResourceService } from '../service/resources.ts';
import type { TenantDirectory } from '../tenancy/directory.ts';
import { adminFeedRoutes } from './admin-feed-routes.ts';
import { adminReceiverRoutes } from './admin-receiver-routes.ts';
import { adminRoutes } from './admin-routes.ts';
import { pollRoutes } from '../events/outbound/poll-routes.ts';
import type { ReceiverService } from '../events/outbound/receivers.ts';
import type { OutboxSignal } from '../events/outbound/signal.ts';
import type { FeedService } from '../events/outbound/feeds.ts';
import { GatewayService } from '../devices/gateway.ts';
import { jwksRoutes } from '../events/jwks-routes.ts';
import type { SetIntake } from '../events/inbound/intake.ts';
import { pushRoutes } from '../events/inbound/push-routes.ts';
import type { UpstreamService } from '../events/inbound/upstreams.ts';
import { adminGuards } from './admin-guards.ts';
import { adminUpstreamRoutes } from './admin-upstream-routes.ts';
import { adminSyncRoutes } from './admin-sync-routes.ts';
import { adminRegistrationRoutes, type AdminRegistrationRouteDeps } from './admin-registration-routes.ts';
import { adminSyncRunRoutes } from './admin-sync-run-routes.ts';
import type { FlowRunner } from '../sync/engine/runner.ts';
import type { ConnectionService } from '../sync/connections.ts';
import type { FlowService } from '../sync/flows.ts';
import type { SigningKeys } from '../events/keys.ts';
import { sendError, toScimError } from './errors.ts';
import { parseJsonBody } from './json-body.ts';
import { scimRoutes } from './scim-routes.ts';
import type { JitService } from '../sync/triggers/jit.ts';
import { jitRoutes } from '../sync/triggers/jit-routes.ts';

export interface ServerDeps {
  config: AppConfig;
  service: ResourceService;
  admin: AdminService;
  tenants: TenantDirectory;
  /** The tenants' SET signing keys (the JWKS routes publish their public parts). */
  signingKeys: SigningKeys;
  /** Receiving events from upstreams: their admin API and the RFC 8935 receiver endpoint. */
  inbound?: { upstreams: UpstreamService; intake: SetIntake };
  /** Readiness probe: resolves when the store answers. */
  ping: () => Promise<void>;
  /** Event receivers (admin API .../receivers, RFC 8936 poll endpoint) and the outbox wake-up; absent = no routes. */
  receivers?: ReceiverService;
  outboxSignal?: OutboxSignal;
  /** Event feeds (admin API /admin/v1/tenants/:tenant/feeds); absent = no feed routes. */
  feeds?: FeedService;
  /** Queue of `Prefer: respond-async` requests (src/async). */
  asyncRequests?: AsyncRequests;
  /** SSO just-in-time provisioning (POST /admin/v1/tenants/:tenant/jit/oidc); absent = no route. */
  jit?: JitService;
  /** Sync engine configuration (admin API .../connections, .../flows); absent = no routes. */
  sync?: { connections: ConnectionService; flows: FlowService };
  /** Automatic customer registration (admin API .../registration(s), .../manufacturers); absent = no routes. */
  registration?: Pick<AdminRegistrationRouteDeps, 'registrations' | 'manufacturers'>;
  /** Sync runs (admin API .../flows/{id}/runs, .../plan); needs `sync` too. */
  syncRunner?: FlowRunner;
}

/**
 * An attribute value escaped as RFC 4514 §2.4 requires, so that a value holding "," or "+" (e.g.
 * O="Example,CN=admin") cannot render as the subject of another certificate.
 */
function escapeDnValue(v: string): string {
  return v
    .replace(/[\\"+,;<>]/g, (c) => `\\${c}`)
    .replace(/\0/g, '\\00')
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}

/** The verified client certificate of a TLS request, if any. */
function peerCertificate(request: FastifyRequest): PeerCertificate | undefined {
  const socket = request.raw.socket as TLSSocket;
  if (!socket.encrypted || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.fingerprint256) return undefined;
  const subject = Object.entries(cert.subject ?? {})
    .map(([k, v]) => `${k}=${(Array.isArray(v) ? v : [v]).map((x) => escapeDnValue(x ?? '')).join('+')}`)
    .join(',');
  return { fingerprint256: cert.fingerprint256, subject };
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const bodyLimit = Math.max(config.maxBodySize, config.bulkMaxPayloadSize);
  const https =
    config.tlsCert && config.tlsKey
      ? {
          cert: readFileSync(config.tlsCert),
          key: readFileSync(config.tlsKey),
          ...(config.tlsClientCa
            ? { ca: readFileSync(config.tlsClientCa), requestCert: true, rejectUnauthorized: false }
            : {}),
        }
      : null;

  const app = Fastify({
    logger:
      config.logLevel === 'silent'
        ? false
        : {
            level: config.logLevel,
            redact: ['req.headers.authorization', 'req.headers.cookie'],
            // Query strings can carry personal data (filter=userName eq "…") or a misplaced token: log paths only.
            serializers: {
              req: (req: { method: string; url: string; ip?: string }) => ({
                method: req.method,
                url: req.url.split('?')[0],
                remoteAddress: req.ip,
              }),
            },
          },
    bodyLimit,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    routerOptions: { ignoreTrailingSlash: true, caseSensitive: false },
    ...(https ? { https } : {}),
  }) as unknown as FastifyInstance;

  // ---- metrics ----
  const metrics = new Registry();
  const requests = new Counter({
    name: 'scimd_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [metrics],
  });
  const latency = new Histogram({
    name: 'scimd_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics],
  });
  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    };
    requests.inc(labels);
    latency.observe(labels, reply.elapsedTime / 1000);
  });

  // ---- bodies ----
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['application/scim+json', 'application/json'],
    { parseAs: 'string', bodyLimit },
    (req, body, done) => {
      try {
        req.bodyBytes = Buffer.byteLength(body as string);
        done(null, parseJsonBody(body as string));
      } catch (err) {
        done(err as Error, undefined);
      }
    },
  );

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-request-id', request.id);
    return payload;
  });

  const bodyLimitDetail = (url: string) =>
    /\/Bulk(\?|$)/i.test(url)
      ? `The request body exceeds bulk.maxPayloadSize (${config.bulkMaxPayloadSize} bytes)`
      : `The request body exceeds the limit of ${config.maxBodySize} bytes`;
  app.setErrorHandler((err, request, reply) => sendError(reply, toScimError(err, request, bodyLimitDetail)));
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, ScimError.notFound(`No endpoint ${request.method} ${request.url.split('?')[0]}`)),
  );

  // ---- throttling: per client, after authentication (preHandler) ----
  const limitOf = (request: FastifyRequest) => {
    const p = request.scim?.principal ?? request.adminPrincipal;
    return p?.rateLimit ?? request.scim?.tenantRateLimit ?? config.rateLimit;
  };
  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    keyGenerator: (request) => {
      const p = request.scim?.principal ?? request.adminPrincipal;
      return p ? `client:${p.tenant}:${p.clientId}` : `ip:${request.ip}`;
    },
    allowList: (request) => limitOf(request) === undefined,
    max: async (request) => limitOf(request)?.max ?? Number.MAX_SAFE_INTEGER,
    timeWindow: async (request) => (limitOf(request)?.windowSeconds ?? 60) * 1000,
    errorResponseBuilder: (_request, context) => {
      const err = new ScimError(
        429,
        undefined,
        `Too many requests: at most ${context.max} per ${context.after}; retry later`,
      );
      return Object.assign(err, { statusCode: 429 });
    },
  });

  // ---- operations endpoints (no credentials) ----
  app.get('/health', { config: { rateLimit: false } }, async (_req, reply) => {
    await deps.ping();
    return reply.send({ status: 'ok' });
  });
  app.get('/metrics', { config: { rateLimit: false } }, async (_req, reply) => {
    return reply.type(metrics.contentType).send(await metrics.metrics());
  });

  const authenticator = new Authenticator(deps.service.db, deps.tenants, config.adminToken);
  const scim = scimRoutes({
    config,
    service: deps.service,
    authenticator,
    tenants: deps.tenants,
    peerCertificate,
    asyncRequests: deps.asyncRequests,
  });
  await app.register(scim, { prefix: '/scim/v2' });
  await app.register(scim, { prefix: '/tenants/:tenant/scim/v2' });
  await app.register(
    adminRoutes({
      admin: deps.admin,
      gateway: new GatewayService(deps.service.db),
      authenticator,
      peerCertificate,
    }),
    {
      prefix: '/admin/v1',
    },
  );

  if (deps.feeds) {
    await app.register(
      adminFeedRoutes({ admin: deps.admin, feeds: deps.feeds, authenticator, peerCertificate }),
      { prefix: '/admin/v1' },
    );
  }

  if (deps.receivers && deps.outboxSignal) {
    await app.register(
      adminReceiverRoutes({ admin: deps.admin, receivers: deps.receivers, authenticator, peerCertificate }),
      { prefix: '/admin/v1' },
    );
    // RFC 8936 transmitter endpoint: beside /scim/v2, not under it (it is not a SCIM endpoint).
    await app.register(
      pollRoutes({
        config,
        db: deps.service.db,
        receivers: deps.receivers,
        signal: deps.outboxSignal,
        authenticator,
        peerCertificate,
      }),
    );
  }

  await app.register(jwksRoutes({ keys: deps.signingKeys, tenants: deps.tenants }));
  if (deps.inbound) {
    const guardDeps = { admin: deps.admin, authenticator, peerCertificate };
    await app.register(adminUpstreamRoutes({ ...guardDeps, upstreams: deps.inbound.upstreams }), {
      prefix: '/admin/v1',
    });
    await app.register(pushRoutes({ ...deps.inbound, guards: adminGuards(guardDeps) }));
  }

  if (deps.sync) {
    await app.register(adminSyncRoutes({ admin: deps.admin, authenticator, peerCertificate, ...deps.sync }), {
      prefix: '/admin/v1',
    });
  }

  if (deps.sync && deps.syncRunner) {
    await app.register(
      adminSyncRunRoutes({
        admin: deps.admin,
        authenticator,
        peerCertificate,
        runner: deps.syncRunner,
        flows: deps.sync.flows,
      }),
      { prefix: '/admin/v1' },
    );
  }

  if (deps.registration) {
    await app.register(
      adminRegistrationRoutes({ admin: deps.admin, authenticator, peerCertificate, ...deps.registration }),
      { prefix: '/admin/v1' },
    );
  }

  if (deps.jit) {
    await app.register(
      jitRoutes({
        admin: deps.admin,
        authenticator,
        peerCertificate,
        jit: deps.jit,
        baseUrl: config.baseUrl,
      }),
      { prefix: '/admin/v1' },
    );
  }

  // Another protocol version in the path is refused, never served as v2 (RFC 7644 §3.13).
  app.all('/scim/:version/*', async (request) => {
    const { version } = request.params as { version: string };
    if (version.toLowerCase() === 'v2')
      throw ScimError.notFound(`No endpoint ${request.method} ${request.url.split('?')[0]}`);
    throw ScimError.badRequest(
      'invalidVers',
      `SCIM protocol version "${version}" is not supported; use /scim/v2`,
    );
  });

  return app;
}
