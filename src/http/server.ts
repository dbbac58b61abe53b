/**
 * The HTTP layer: fastify routes for the SCIM protocol (RFC 7644), operations endpoints
 * (/health, /metrics), content negotiation, authentication and SCIM error mapping. Handlers only
 * translate HTTP to service calls; the SCIM rules live in src/scim and src/service.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import type { AppConfig } from '../config.ts';
import { ScimError } from '../scim/errors.ts';
import { isJsonObject, type JsonObject } from '../scim/json.ts';
import { parseAttributeList } from '../scim/resource/project.ts';
import type { ResourceTypeConfig } from '../scim/schema/registry.ts';
import { parseBulkRequest, runBulk } from '../service/bulk.ts';
import type {
  ListParams,
  Projection,
  RequestContext,
  ResourceResult,
  ResourceService,
} from '../service/resources.ts';
import { Authenticator, type Principal } from './auth.ts';
import {
  listOf,
  resourceTypeDocument,
  schemaDocument,
  schemasInUse,
  serviceProviderConfig,
} from './discovery.ts';
import { sendError, SCIM_MEDIA_TYPE, toScimError } from './errors.ts';
import { parseJsonBody } from './json-body.ts';

export const SEARCH_REQUEST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
const SCIM_PREFIX = '/scim/v2';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export interface ServerDeps {
  config: AppConfig;
  service: ResourceService;
  /** Readiness probe: resolves when the store answers. */
  ping: () => Promise<void>;
}

type Query = Record<string, string | string[] | undefined>;

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function intParam(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^[+-]?\d+$/.test(v.trim()))
    throw ScimError.badRequest('invalidValue', `${name} must be an integer, got "${v}"`);
  return Number(v);
}

function projectionFrom(attributes: unknown, excluded: unknown): Projection {
  const attrs = parseAttributeList(attributes as string | string[] | undefined);
  const excl = parseAttributeList(excluded as string | string[] | undefined);
  if (attrs && excl) {
    throw ScimError.badRequest(
      'invalidSyntax',
      'attributes and excludedAttributes are mutually exclusive (RFC 7644 §3.4.2.5)',
    );
  }
  return { attributes: attrs, excludedAttributes: excl };
}

function listParamsFromQuery(q: Query): ListParams {
  const cursor = q.cursor === undefined ? undefined : (first(q.cursor) ?? '');
  return {
    ...projectionFrom(q.attributes, q.excludedAttributes),
    filter: first(q.filter),
    sortBy: first(q.sortBy),
    sortOrder: first(q.sortOrder),
    startIndex: intParam('startIndex', first(q.startIndex)),
    count: intParam('count', first(q.count)),
    cursor,
  };
}

/** RFC 7644 §3.4.3 SearchRequest body → list parameters. */
function listParamsFromSearch(body: unknown): ListParams {
  if (!isJsonObject(body))
    throw ScimError.badRequest('invalidSyntax', 'The request body must be a SearchRequest object');
  const get = (name: string) => {
    const k = Object.keys(body).find((x) => x.toLowerCase() === name.toLowerCase());
    return k === undefined ? undefined : body[k];
  };
  const schemas = get('schemas');
  if (
    !Array.isArray(schemas) ||
    !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === SEARCH_REQUEST_SCHEMA.toLowerCase())
  ) {
    throw ScimError.badRequest('invalidSyntax', `schemas must contain "${SEARCH_REQUEST_SCHEMA}"`);
  }
  const str = (name: string) => {
    const v = get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw ScimError.badRequest('invalidValue', `${name} must be a string`);
    return v;
  };
  const int = (name: string) => {
    const v = get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v))
      throw ScimError.badRequest('invalidValue', `${name} must be an integer`);
    return v;
  };
  const list = (name: string) => {
    const v = get(name);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw ScimError.badRequest('invalidValue', `${name} must be an array of strings`);
    }
    return v as string[];
  };
  return {
    ...projectionFrom(list('attributes'), list('excludedAttributes')),
    filter: str('filter'),
    sortBy: str('sortBy'),
    sortOrder: str('sortOrder'),
    startIndex: int('startIndex'),
    count: int('count'),
    cursor: str('cursor'),
  };
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config, service } = deps;
  const registry = service.registry;
  const auth = new Authenticator(config.adminToken);
  const bodyLimit = Math.max(config.maxBodySize, config.bulkMaxPayloadSize);

  const app = Fastify({
    logger:
      config.logLevel === 'silent'
        ? false
        : { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie'] },
    bodyLimit,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    routerOptions: { ignoreTrailingSlash: true, caseSensitive: false },
  });

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
    (_req, body, done) => {
      try {
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

  // ---- operations endpoints (no credentials) ----
  app.get('/health', async (_req, reply) => {
    await deps.ping();
    return reply.send({ status: 'ok' });
  });
  app.get('/metrics', async (_req, reply) => {
    return reply.type(metrics.contentType).send(await metrics.metrics());
  });

  // ---- SCIM ----
  const baseUrlOf = (request: FastifyRequest) =>
    `${config.baseUrl ?? `${request.protocol}://${request.host}`}${SCIM_PREFIX}`;
  const context = (request: FastifyRequest): RequestContext => {
    const principal = request.principal!;
    return { tenant: principal.tenant, baseUrl: baseUrlOf(request), clientId: principal.clientId };
  };
  const sendScim = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type(SCIM_MEDIA_TYPE).send(body);
  const sendResource = (reply: FastifyReply, status: number, res: ResourceResult) => {
    reply.header('etag', res.etag);
    if (status === 201) reply.header('location', res.location);
    return sendScim(reply, status, res.resource);
  };
  const resourceType = (endpoint: string): ResourceTypeConfig => {
    const rt = registry.resourceTypeByEndpoint(endpoint);
    if (!rt) throw ScimError.notFound(`No resource endpoint /${endpoint}`);
    return rt;
  };

  await app.register(
    async (scim) => {
      scim.addHook('onRequest', async (request) => {
        // RFC 7644 §4: authenticationSchemes SHOULD be readable without authentication.
        if (/\/ServiceProviderConfig\/?$/i.test(request.url.split('?')[0]) && request.method === 'GET')
          return;
        request.principal = auth.authenticate(request.headers.authorization);
      });

      // Discovery (RFC 7644 §4): query parameters are ignored, a filter is refused with 403.
      const noFilter = (request: FastifyRequest) => {
        if ((request.query as Query).filter !== undefined) {
          throw new ScimError(
            403,
            undefined,
            'Filtering is not supported on discovery endpoints (RFC 7644 §4)',
          );
        }
      };
      scim.get('/ServiceProviderConfig', async (request, reply) => {
        noFilter(request);
        return sendScim(reply, 200, serviceProviderConfig(config, baseUrlOf(request)));
      });
      scim.get('/ResourceTypes', async (request, reply) => {
        noFilter(request);
        const base = baseUrlOf(request);
        return sendScim(
          reply,
          200,
          listOf(registry.resourceTypes().map((rt) => resourceTypeDocument(rt, base))),
        );
      });
      scim.get<{ Params: { id: string } }>('/ResourceTypes/:id', async (request, reply) => {
        noFilter(request);
        const rt = registry.resourceType(request.params.id);
        if (!rt) throw ScimError.notFound(`No resource type ${request.params.id}`);
        return sendScim(reply, 200, resourceTypeDocument(rt, baseUrlOf(request)));
      });
      scim.get('/Schemas', async (request, reply) => {
        noFilter(request);
        const base = baseUrlOf(request);
        return sendScim(reply, 200, listOf(schemasInUse(registry).map((s) => schemaDocument(s, base))));
      });
      scim.get<{ Params: { id: string } }>('/Schemas/:id', async (request, reply) => {
        noFilter(request);
        const s = schemasInUse(registry).find((x) => x.id.toLowerCase() === request.params.id.toLowerCase());
        if (!s) throw ScimError.notFound(`No schema ${request.params.id}`);
        return sendScim(reply, 200, schemaDocument(s, baseUrlOf(request)));
      });

      // /Me (RFC 7644 §3.11): credentials do not belong to Users yet.
      scim.all('/Me', async () => {
        throw new ScimError(
          501,
          undefined,
          '/Me is not supported: this credential is not associated with a User',
        );
      });
      scim.all('/Me/*', async () => {
        throw new ScimError(
          501,
          undefined,
          '/Me is not supported: this credential is not associated with a User',
        );
      });

      scim.post('/Bulk', { bodyLimit: config.bulkMaxPayloadSize }, async (request, reply) => {
        const { ops, failOnErrors } = parseBulkRequest(request.body, config.bulkMaxOperations);
        return sendScim(reply, 200, await runBulk(service, context(request), ops, failOnErrors));
      });

      // Root queries (RFC 7644 §3.4.2.1 / §3.4.3): every resource type.
      scim.get('/', async (request, reply) => {
        return sendScim(
          reply,
          200,
          await service.list(
            context(request),
            registry.resourceTypes(),
            listParamsFromQuery(request.query as Query),
          ),
        );
      });
      scim.post('/.search', async (request, reply) => {
        return sendScim(
          reply,
          200,
          await service.list(context(request), registry.resourceTypes(), listParamsFromSearch(request.body)),
        );
      });

      scim.get<{ Params: { endpoint: string } }>('/:endpoint', async (request, reply) => {
        const rt = resourceType(request.params.endpoint);
        return sendScim(
          reply,
          200,
          await service.list(context(request), [rt], listParamsFromQuery(request.query as Query)),
        );
      });
      scim.post<{ Params: { endpoint: string } }>('/:endpoint/.search', async (request, reply) => {
        const rt = resourceType(request.params.endpoint);
        return sendScim(
          reply,
          200,
          await service.list(context(request), [rt], listParamsFromSearch(request.body)),
        );
      });
      scim.post<{ Params: { endpoint: string } }>(
        '/:endpoint',
        { bodyLimit: config.maxBodySize },
        async (request, reply) => {
          const rt = resourceType(request.params.endpoint);
          const q = request.query as Query;
          const res = await service.create(
            context(request),
            rt,
            request.body,
            projectionFrom(q.attributes, q.excludedAttributes),
          );
          return sendResource(reply, 201, res);
        },
      );
      scim.get<{ Params: { endpoint: string; id: string } }>('/:endpoint/:id', async (request, reply) => {
        const rt = resourceType(request.params.endpoint);
        const q = request.query as Query;
        const projection = projectionFrom(q.attributes, q.excludedAttributes);
        const ifNoneMatch = request.headers['if-none-match'];
        if (ifNoneMatch) {
          const version = await service.version(context(request), rt, request.params.id);
          if (
            version !== undefined &&
            ifNoneMatch
              .split(',')
              .some((t) => t.trim().replace(/^W\//, '') === `"${version}"` || t.trim() === '*')
          ) {
            return reply.code(304).header('etag', `W/"${version}"`).send();
          }
        }
        return sendResource(
          reply,
          200,
          await service.get(context(request), rt, request.params.id, projection),
        );
      });
      scim.put<{ Params: { endpoint: string; id: string } }>(
        '/:endpoint/:id',
        { bodyLimit: config.maxBodySize },
        async (request, reply) => {
          const rt = resourceType(request.params.endpoint);
          const q = request.query as Query;
          const res = await service.replace(
            context(request),
            rt,
            request.params.id,
            request.body,
            request.headers['if-match'],
            projectionFrom(q.attributes, q.excludedAttributes),
          );
          return sendResource(reply, 200, res);
        },
      );
      scim.patch<{ Params: { endpoint: string; id: string } }>(
        '/:endpoint/:id',
        { bodyLimit: config.maxBodySize },
        async (request, reply) => {
          const rt = resourceType(request.params.endpoint);
          const q = request.query as Query;
          const projection = projectionFrom(q.attributes, q.excludedAttributes);
          const res = await service.patch(
            context(request),
            rt,
            request.params.id,
            request.body,
            request.headers['if-match'],
            projection,
          );
          // A group may hold 500,000 members: after a member change, answer 204 unless the client
          // asked for attributes (RFC 7644 §3.5.2 allows 204; it MUST be 200 when attributes is given).
          if (res.membersChanged && !projection.attributes && !projection.excludedAttributes) {
            return reply.code(204).header('etag', res.etag).send();
          }
          return sendResource(reply, 200, res);
        },
      );
      scim.delete<{ Params: { endpoint: string; id: string } }>('/:endpoint/:id', async (request, reply) => {
        const rt = resourceType(request.params.endpoint);
        await service.delete(context(request), rt, request.params.id, request.headers['if-match']);
        return reply.code(204).send();
      });
    },
    { prefix: SCIM_PREFIX },
  );

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

export type { JsonObject };
