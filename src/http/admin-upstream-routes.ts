/**
 * Admin API of upstreams (publishers this tenant receives SCIM events from), under /admin/v1:
 *   GET    /tenants/:tenant/upstreams                 list
 *   POST   /tenants/:tenant/upstreams                 create (201)
 *   GET    /tenants/:tenant/upstreams/:id             one
 *   PATCH  /tenants/:tenant/upstreams/:id             change some fields (null clears an optional one)
 *   DELETE /tenants/:tenant/upstreams/:id             remove (204), with its received events
 *   GET    /tenants/:tenant/upstreams/:id/events      received SETs (?state=&startIndex=&count=)
 * For the tenant's admin or the operator. callbackAuthorization and poll.authorization are
 * write-only: responses say whether one is set.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  RECEIVED_STATES,
  viewOf,
  type ReceivedState,
  type UpstreamInput,
  type UpstreamPatch,
  type UpstreamService,
} from '../events/inbound/upstreams.ts';
import { adminGuards, strictAdminBodies, type AdminGuardDeps } from './admin-guards.ts';

export interface AdminUpstreamRouteDeps extends AdminGuardDeps {
  upstreams: UpstreamService;
}

const url = { type: 'string', minLength: 1, maxLength: 2000 } as const;
const text = { type: 'string', minLength: 1, maxLength: 2000 } as const;
const secret = { type: 'string', minLength: 1, maxLength: 8000 } as const;

const pollSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url,
    authorization: secret,
    maxEvents: { type: 'integer', minimum: 1, maximum: 1000 },
    intervalSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
  },
} as const;

const jwksSchema = {
  type: 'object',
  required: ['keys'],
  properties: { keys: { type: 'array', minItems: 1, items: { type: 'object', required: ['kty'] } } },
} as const;

const fields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  issuer: text,
  jwksUri: url,
  jwks: jwksSchema,
  acceptUnsigned: { type: 'boolean' },
  audience: text,
  scimBaseUrl: url,
  callbackAuthorization: secret,
  poll: pollSchema,
  resourceTypes: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
  onFeedRemove: { type: 'string', enum: ['delete', 'keep'] },
} as const;

const nullable = <T extends object>(s: T) => ({ anyOf: [s, { type: 'null' }] });

const createBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'issuer', 'scimBaseUrl'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 }, ...fields },
} as const;

const patchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...fields,
    jwksUri: nullable(url),
    jwks: nullable(jwksSchema),
    audience: nullable(text),
    callbackAuthorization: nullable(secret),
    poll: nullable(pollSchema),
    resourceTypes: nullable(fields.resourceTypes),
  },
} as const;

const eventsQuery = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: [...RECEIVED_STATES] },
    startIndex: { type: 'integer', minimum: 1, default: 1 },
    count: { type: 'integer', minimum: 0, maximum: 1000, default: 100 },
  },
} as const;

type Params = { Params: { tenant: string; id: string } };

export function adminUpstreamRoutes(deps: AdminUpstreamRouteDeps) {
  const { upstreams } = deps;
  const { asTenantAdmin } = adminGuards(deps);
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);

  return async function routes(api: FastifyInstance): Promise<void> {
    strictAdminBodies(api);

    api.get<{ Params: { tenant: string } }>(
      '/tenants/:tenant/upstreams',
      asTenantAdmin,
      async (request, reply) =>
        json(reply, 200, { upstreams: (await upstreams.list(request.params.tenant)).map(viewOf) }),
    );

    api.post<{ Params: { tenant: string }; Body: UpstreamInput }>(
      '/tenants/:tenant/upstreams',
      { ...asTenantAdmin, schema: { body: createBody } },
      async (request, reply) => {
        const u = await upstreams.create(request.params.tenant, request.body);
        return json(reply, 201, viewOf(u));
      },
    );

    api.get<Params>('/tenants/:tenant/upstreams/:id', asTenantAdmin, async (request, reply) =>
      json(reply, 200, viewOf(await upstreams.get(request.params.tenant, request.params.id))),
    );

    api.patch<Params & { Body: UpstreamPatch }>(
      '/tenants/:tenant/upstreams/:id',
      { ...asTenantAdmin, schema: { body: patchBody } },
      async (request, reply) =>
        json(
          reply,
          200,
          viewOf(await upstreams.update(request.params.tenant, request.params.id, request.body)),
        ),
    );

    api.delete<Params>('/tenants/:tenant/upstreams/:id', asTenantAdmin, async (request, reply) => {
      await upstreams.remove(request.params.tenant, request.params.id);
      return reply.code(204).send();
    });

    api.get<Params & { Querystring: { state?: ReceivedState; startIndex: number; count: number } }>(
      '/tenants/:tenant/upstreams/:id/events',
      { ...asTenantAdmin, schema: { querystring: eventsQuery } },
      async (request, reply) =>
        json(reply, 200, await upstreams.events(request.params.tenant, request.params.id, request.query)),
    );
  };
}
