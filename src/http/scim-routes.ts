/**
 * The SCIM protocol routes (RFC 7644), mounted once per tenant prefix: `/scim/v2` (the default
 * tenant) and `/tenants/:tenant/scim/v2`. Every request is authenticated against the tenant of its
 * URL, then checked against the client's scopes; resource types a tenant has not enabled do not
 * exist for it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AsyncRequests } from '../async/requests.ts';
import { acceptAsync, asyncRequestSetting, completionRoutes, wantsAsync } from '../async/routes.ts';
import type { Authenticator, PeerCertificate } from '../auth/authenticator.ts';
import {
  canRead,
  DEFAULT_TENANT,
  isManagedOnly,
  mayReadSecrets,
  requireRead,
  requireWrite,
  type Principal,
} from '../auth/scopes.ts';
import type { AppConfig, LimitsConfig } from '../config.ts';
import { ScimError } from '../scim/errors.ts';
import type { ResourceTypeConfig } from '../scim/schema/registry.ts';
import { parseBulkRequest, runBulk } from '../service/bulk.ts';
import { DeltaService, parseDeltaRequest, type DeltaScope } from '../service/delta.ts';
import type { Projection, RequestContext, ResourceResult, ResourceService } from '../service/resources.ts';
import type { TenantDirectory } from '../tenancy/directory.ts';
import { effectiveLimits } from '../tenancy/settings.ts';
import {
  listOf,
  resourceTypeDocument,
  schemaDocument,
  schemasServedFor,
  serviceProviderConfig,
} from './discovery.ts';
import { SCIM_MEDIA_TYPE } from './errors.ts';
import {
  listParamsFromQuery,
  listParamsFromSearch,
  projectionFromQuery,
  type Query,
} from './request-params.ts';

/** What the SCIM hook established about a request. */
export interface ScimRequestState {
  tenant: string;
  principal?: Principal;
  limits: LimitsConfig;
  /** Resource types enabled for the tenant. */
  types: ResourceTypeConfig[];
  baseUrl: string;
  /** The tenant's settings (for resource type hooks). */
  settings: Record<string, unknown>;
  /** The tenant's default per-client rate limit. */
  tenantRateLimit?: { max: number; windowSeconds: number };
}

declare module 'fastify' {
  interface FastifyRequest {
    scim?: ScimRequestState;
    /** Bytes of the request body as received (for per-tenant size limits). */
    bodyBytes?: number;
  }
}

export interface ScimRouteDeps {
  config: AppConfig;
  service: ResourceService;
  authenticator: Authenticator;
  tenants: TenantDirectory;
  peerCertificate: (request: FastifyRequest) => PeerCertificate | undefined;
  /** Queue of `Prefer: respond-async` requests; unset = every request is answered synchronously. */
  asyncRequests?: AsyncRequests;
}

export function scimRoutes(deps: ScimRouteDeps) {
  const { config, service, authenticator, tenants, asyncRequests } = deps;
  const registry = service.registry;
  const delta = new DeltaService(service, config);

  return async function routes(scim: FastifyInstance): Promise<void> {
    scim.addHook('onRequest', async (request) => {
      const tenantId = (request.params as { tenant?: string }).tenant ?? DEFAULT_TENANT;
      const prefix =
        tenantId === DEFAULT_TENANT && !request.url.startsWith('/tenants/')
          ? '/scim/v2'
          : `/tenants/${tenantId}/scim/v2`;
      const baseUrl = `${config.baseUrl ?? `${request.protocol}://${request.host}`}${prefix}`;
      const path = request.url.split('?')[0];
      const open = request.method === 'GET' && /\/ServiceProviderConfig\/?$/i.test(path);
      // RFC 7644 §4: authenticationSchemes SHOULD be readable without authentication.
      const principal = open
        ? undefined
        : await authenticator.authenticate(tenantId, {
            authorization: request.headers.authorization,
            peerCertificate: deps.peerCertificate(request),
          });
      const tenant = await tenants.get(tenantId);
      if (!tenant) throw ScimError.notFound(`No tenant ${tenantId}`);
      const enabled = tenant.settings.resourceTypes?.map((n) => n.toLowerCase());
      request.scim = {
        tenant: tenantId,
        principal,
        limits: effectiveLimits(config, tenant.settings),
        types: registry.resourceTypes().filter((rt) => !enabled || enabled.includes(rt.name.toLowerCase())),
        baseUrl,
        tenantRateLimit: tenant.settings.rateLimit,
        settings: tenant.settings as Record<string, unknown>,
      };
    });

    const state = (request: FastifyRequest): ScimRequestState => request.scim!;
    const principal = (request: FastifyRequest): Principal => request.scim!.principal!;
    const context = (request: FastifyRequest): RequestContext => {
      const s = state(request);
      const p = s.principal;
      return {
        tenant: s.tenant,
        baseUrl: s.baseUrl,
        clientId: p?.clientId,
        limits: s.limits,
        settings: s.settings,
        managed:
          p && isManagedOnly(p)
            ? { clientId: p.clientId, appIds: p.endpointAppId ? [p.endpointAppId] : [] }
            : undefined,
        hideSensitive: !p || !mayReadSecrets(p),
      };
    };
    const sendScim = (reply: FastifyReply, status: number, body: unknown) =>
      reply.code(status).type(SCIM_MEDIA_TYPE).send(body);
    /**
     * What a write answers with: the resource, projected as asked — but a client that may write a
     * type without reading it gets only its id and meta (a write must not become a way to read).
     */
    const writeProjection = (request: FastifyRequest, rt: ResourceTypeConfig): Projection =>
      canRead(principal(request), rt.name)
        ? projectionFromQuery(request.query as Query)
        : { attributes: ['id', 'meta'] };
    const sendResource = (reply: FastifyReply, status: number, res: ResourceResult) => {
      reply.header('etag', res.etag);
      if (status === 201) reply.header('location', res.location);
      return sendScim(reply, status, res.resource);
    };
    const resourceType = (request: FastifyRequest, endpoint: string): ResourceTypeConfig => {
      const e = `/${endpoint}`.toLowerCase();
      const rt = state(request).types.find((t) => t.endpoint.toLowerCase() === e);
      if (!rt) throw ScimError.notFound(`No resource endpoint /${endpoint}`);
      return rt;
    };
    /** RFC 9967 §2.5: after the cheap checks (credentials, scopes, body), queue the write and answer 202. */
    const asyncTarget = (request: FastifyRequest) =>
      asyncRequests && wantsAsync(request) ? asyncRequests : undefined;
    const checkBodySize = (request: FastifyRequest, limit: number, what: string) => {
      if ((request.bodyBytes ?? 0) > limit) {
        throw new ScimError(413, undefined, `The request body exceeds ${what} (${limit} bytes)`);
      }
    };
    /** Types a root query covers: those the tenant serves and the client may read. */
    const readableTypes = (request: FastifyRequest) => {
      const types = state(request).types.filter((rt) => canRead(principal(request), rt.name));
      if (types.length === 0)
        throw new ScimError(403, undefined, 'This client may not read any resource type');
      return types;
    };

    // ---- one resource, by id or as /Me (RFC 7644 §3.11: /Me answers with the real resource's URI) ----
    async function readOne(
      request: FastifyRequest,
      reply: FastifyReply,
      rt: ResourceTypeConfig,
      id: string,
      me: boolean,
    ) {
      requireRead(principal(request), rt.name);
      const ifNoneMatch = request.headers['if-none-match'];
      if (ifNoneMatch) {
        const version = await service.version(context(request), rt, id);
        const tags = ifNoneMatch.split(',').map((t) => t.trim());
        if (
          version !== undefined &&
          tags.some((t) => t === '*' || t.replace(/^W\//, '') === `"${version}"`)
        ) {
          return reply.code(304).header('etag', `W/"${version}"`).send();
        }
      }
      const res = await service.get(context(request), rt, id, projectionFromQuery(request.query as Query));
      if (me) reply.header('content-location', res.location);
      return sendResource(reply, 200, res);
    }

    async function writeOne(
      method: 'PUT' | 'PATCH',
      request: FastifyRequest,
      reply: FastifyReply,
      rt: ResourceTypeConfig,
      id: string,
      me: boolean,
    ) {
      requireWrite(principal(request), rt.name);
      checkBodySize(request, state(request).limits.maxBodySize, 'the body size limit');
      const projection = writeProjection(request, rt);
      const ifMatch = request.headers['if-match'];
      const queue = asyncTarget(request);
      if (queue) {
        const path = `${rt.endpoint}/${encodeURIComponent(id)}`;
        return acceptAsync(queue, request, reply, {
          method,
          path,
          ifMatch,
          body: request.body,
          projection,
          me,
        });
      }
      const ctx = context(request);
      if (method === 'PUT') {
        const res = await service.replace(ctx, rt, id, request.body, ifMatch, projection);
        if (me) reply.header('content-location', res.location);
        return sendResource(reply, 200, res);
      }
      const res = await service.patch(ctx, rt, id, request.body, ifMatch, projection);
      if (me) reply.header('content-location', res.location);
      // A group may hold 500,000 members: after a member change, answer 204 unless the client
      // asked for attributes (RFC 7644 §3.5.2 allows 204; it MUST be 200 when attributes is given).
      if (res.membersChanged && !projection.attributes && !projection.excludedAttributes) {
        return reply.code(204).header('etag', res.etag).send();
      }
      return sendResource(reply, 200, res);
    }

    async function deleteOne(
      request: FastifyRequest,
      reply: FastifyReply,
      rt: ResourceTypeConfig,
      id: string,
    ) {
      requireWrite(principal(request), rt.name);
      const queue = asyncTarget(request);
      if (queue) {
        const path = `${rt.endpoint}/${encodeURIComponent(id)}`;
        return acceptAsync(queue, request, reply, {
          method: 'DELETE',
          path,
          ifMatch: request.headers['if-match'],
        });
      }
      await service.delete(context(request), rt, id, request.headers['if-match']);
      return reply.code(204).send();
    }

    // ---- discovery (RFC 7644 §4): query parameters ignored, a filter refused with 403 ----
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
      const { limits, baseUrl, types, settings } = state(request);
      const names = types.map((t) => t.name);
      const asyncRequest = asyncRequests ? asyncRequestSetting(settings) : 'none';
      return sendScim(reply, 200, serviceProviderConfig(limits, baseUrl, names, asyncRequest));
    });
    scim.get('/ResourceTypes', async (request, reply) => {
      noFilter(request);
      const { types, baseUrl } = state(request);
      return sendScim(reply, 200, listOf(types.map((rt) => resourceTypeDocument(rt, baseUrl))));
    });
    scim.get<{ Params: { id: string } }>('/ResourceTypes/:id', async (request, reply) => {
      noFilter(request);
      const rt = state(request).types.find((t) => t.id.toLowerCase() === request.params.id.toLowerCase());
      if (!rt) throw ScimError.notFound(`No resource type ${request.params.id}`);
      return sendScim(reply, 200, resourceTypeDocument(rt, state(request).baseUrl));
    });
    const schemasServed = (request: FastifyRequest) => schemasServedFor(registry, state(request).types);
    scim.get('/Schemas', async (request, reply) => {
      noFilter(request);
      const base = state(request).baseUrl;
      return sendScim(reply, 200, listOf(schemasServed(request).map((s) => schemaDocument(s, base))));
    });
    scim.get<{ Params: { id: string } }>('/Schemas/:id', async (request, reply) => {
      noFilter(request);
      const s = schemasServed(request).find((x) => x.id.toLowerCase() === request.params.id.toLowerCase());
      if (!s) throw ScimError.notFound(`No schema ${request.params.id}`);
      return sendScim(reply, 200, schemaDocument(s, state(request).baseUrl));
    });

    // ---- /Me (RFC 7644 §3.11): the User a credential belongs to ----
    const meTarget = (request: FastifyRequest) => {
      const p = principal(request);
      const users = state(request).types.find((t) => t.name === 'User');
      if (!p.userId || !users) {
        throw new ScimError(
          501,
          undefined,
          '/Me is not available: this credential is not associated with a User',
        );
      }
      return { rt: users, id: p.userId };
    };
    scim.get('/Me', async (request, reply) => {
      const { rt, id } = meTarget(request);
      return readOne(request, reply, rt, id, true);
    });
    scim.put('/Me', async (request, reply) => {
      const { rt, id } = meTarget(request);
      return writeOne('PUT', request, reply, rt, id, true);
    });
    scim.patch('/Me', async (request, reply) => {
      const { rt, id } = meTarget(request);
      return writeOne('PATCH', request, reply, rt, id, true);
    });
    scim.delete('/Me', async (request, reply) => {
      const { rt, id } = meTarget(request);
      return deleteOne(request, reply, rt, id);
    });
    scim.post('/Me', async (request) => {
      meTarget(request);
      throw new ScimError(409, undefined, 'This credential already has a User; use PUT or PATCH on /Me');
    });

    // ---- Bulk (RFC 7644 §3.7) ----
    scim.post('/Bulk', { bodyLimit: config.bulkMaxPayloadSize }, async (request, reply) => {
      const limits = state(request).limits;
      checkBodySize(request, limits.bulkMaxPayloadSize, 'bulk.maxPayloadSize');
      const { ops, failOnErrors } = parseBulkRequest(request.body, limits.bulkMaxOperations);
      const queue = asyncTarget(request);
      if (queue)
        return acceptAsync(queue, request, reply, { method: 'POST', path: '/Bulk', body: request.body });
      const p = principal(request);
      const types = state(request).types;
      const result = await runBulk(service, context(request), ops, failOnErrors, {
        resourceType: (endpoint) =>
          types.find((t) => t.endpoint.toLowerCase() === `/${endpoint}`.toLowerCase()),
        authorize: (rt) => requireWrite(p, rt.name),
        onError: (err) => request.log.error({ err }, 'bulk operation failed'),
      });
      return sendScim(reply, 200, result);
    });

    // ---- delta query (draft-sehgal-scim-delta-query-02); static segments win over /:endpoint/:id ----
    const rootScope = (request: FastifyRequest): DeltaScope => ({
      root: true,
      types: readableTypes(request),
    });
    const endpointScope = (request: FastifyRequest, endpoint: string): DeltaScope => {
      const rt = resourceType(request, endpoint);
      requireRead(principal(request), rt.name);
      return { root: false, types: [rt] };
    };
    scim.get('/.deltaToken', async (request, reply) =>
      sendScim(reply, 200, await delta.token(context(request), rootScope(request))),
    );
    scim.post('/.delta', async (request, reply) => {
      const scope = rootScope(request);
      return sendScim(
        reply,
        200,
        await delta.delta(context(request), scope, parseDeltaRequest(request.body)),
      );
    });
    scim.get<{ Params: { endpoint: string } }>('/:endpoint/.deltaToken', async (request, reply) => {
      const scope = endpointScope(request, request.params.endpoint);
      return sendScim(reply, 200, await delta.token(context(request), scope));
    });
    scim.post<{ Params: { endpoint: string } }>('/:endpoint/.delta', async (request, reply) => {
      const scope = endpointScope(request, request.params.endpoint);
      return sendScim(
        reply,
        200,
        await delta.delta(context(request), scope, parseDeltaRequest(request.body)),
      );
    });

    // ---- queries ----
    scim.get('/', async (request, reply) => {
      const types = readableTypes(request);
      return sendScim(
        reply,
        200,
        await service.list(context(request), types, listParamsFromQuery(request.query as Query)),
      );
    });
    scim.post('/.search', async (request, reply) => {
      const types = readableTypes(request);
      return sendScim(
        reply,
        200,
        await service.list(context(request), types, listParamsFromSearch(request.body)),
      );
    });
    scim.get<{ Params: { endpoint: string } }>('/:endpoint', async (request, reply) => {
      const rt = resourceType(request, request.params.endpoint);
      requireRead(principal(request), rt.name);
      return sendScim(
        reply,
        200,
        await service.list(context(request), [rt], listParamsFromQuery(request.query as Query)),
      );
    });
    scim.post<{ Params: { endpoint: string } }>('/:endpoint/.search', async (request, reply) => {
      const rt = resourceType(request, request.params.endpoint);
      requireRead(principal(request), rt.name);
      return sendScim(
        reply,
        200,
        await service.list(context(request), [rt], listParamsFromSearch(request.body)),
      );
    });

    // ---- completion resources of asynchronous requests (RFC 9967 §2.5) ----
    if (asyncRequests) completionRoutes(asyncRequests)(scim);

    // ---- resources ----
    scim.post<{ Params: { endpoint: string } }>('/:endpoint', async (request, reply) => {
      const rt = resourceType(request, request.params.endpoint);
      requireWrite(principal(request), rt.name);
      checkBodySize(request, state(request).limits.maxBodySize, 'the body size limit');
      const queue = asyncTarget(request);
      if (queue) {
        const projection = writeProjection(request, rt);
        return acceptAsync(queue, request, reply, {
          method: 'POST',
          path: rt.endpoint,
          body: request.body,
          projection,
        });
      }
      const res = await service.create(context(request), rt, request.body, writeProjection(request, rt));
      return sendResource(reply, 201, res);
    });
    type ById = { Params: { endpoint: string; id: string } };
    scim.get<ById>('/:endpoint/:id', async (request, reply) =>
      readOne(request, reply, resourceType(request, request.params.endpoint), request.params.id, false),
    );
    scim.put<ById>('/:endpoint/:id', async (request, reply) =>
      writeOne(
        'PUT',
        request,
        reply,
        resourceType(request, request.params.endpoint),
        request.params.id,
        false,
      ),
    );
    scim.patch<ById>('/:endpoint/:id', async (request, reply) =>
      writeOne(
        'PATCH',
        request,
        reply,
        resourceType(request, request.params.endpoint),
        request.params.id,
        false,
      ),
    );
    scim.delete<ById>('/:endpoint/:id', async (request, reply) =>
      deleteOne(request, reply, resourceType(request, request.params.endpoint), request.params.id),
    );
  };
}
