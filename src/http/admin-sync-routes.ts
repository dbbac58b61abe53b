/**
 * Admin API of the sync engine's configuration, under /admin/v1:
 *   GET    /tenants/:tenant/connections               list
 *   POST   /tenants/:tenant/connections               create (201)
 *   GET    /tenants/:tenant/connections/:id           one
 *   PATCH  /tenants/:tenant/connections/:id           change some fields (null clears an optional one)
 *   DELETE /tenants/:tenant/connections/:id           remove (204); 409 while a flow uses it
 *   POST   /tenants/:tenant/connections/:id/test      discovery against the remote (200 {ok, ...})
 *   GET    /tenants/:tenant/flows                     list (?connection=<id>)
 *   POST   /tenants/:tenant/flows                     create (201)
 *   GET    /tenants/:tenant/flows/:id                 one
 *   PATCH  /tenants/:tenant/flows/:id                 change some fields (null clears an optional one)
 *   DELETE /tenants/:tenant/flows/:id                 remove (204), with its links and run history
 * For the tenant's admin or the operator. Credentials and TLS keys are write-only: responses say
 * whether one is set. The JSON schemas check the top level; src/sync/connections.ts and
 * src/sync/flows.ts check everything inside (the CLI's direct mode relies on the same checks).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ConnectionInput, ConnectionPatch, ConnectionService } from '../sync/connections.ts';
import {
  DELETE_ACTIONS,
  DIRECTIONS,
  MODES,
  type FlowInput,
  type FlowPatch,
  type FlowService,
} from '../sync/flows.ts';
import { adminGuards, strictAdminBodies, type AdminGuardDeps } from './admin-guards.ts';

export interface AdminSyncRouteDeps extends AdminGuardDeps {
  connections: ConnectionService;
  flows: FlowService;
}

const id = { type: 'string', minLength: 1, maxLength: 64 } as const;
const name = { type: 'string', minLength: 1, maxLength: 200 } as const;
// `type: [t, 'null']`, not anyOf: with the validator's type coercion, anyOf would turn a null
// into 0 or "" by its first branch before trying the null one.
const nullable = <T extends { type: string; enum?: readonly string[] }>(s: T) =>
  s.enum ? { ...s, type: [s.type, 'null'], enum: [...s.enum, null] } : { ...s, type: [s.type, 'null'] };
const object = { type: 'object' } as const;

const connectionFields = {
  name,
  baseUrl: { type: 'string', minLength: 1, maxLength: 2000 },
  auth: { type: 'object', required: ['type'] },
  tls: nullable(object),
  compat: nullable(object),
  timeoutMs: nullable({ type: 'integer' }),
  // kind 'sql': a last-mile table adapter (src/sync/adapters/sql.ts checks `sql`).
  kind: { type: 'string', enum: ['scim', 'sql'] },
  sql: object,
} as const;

const connectionCreate = {
  type: 'object',
  additionalProperties: false,
  properties: { id, ...connectionFields },
  // baseUrl is required unless the connection is an adapter.
  if: { not: { required: ['kind'], properties: { kind: { const: 'sql' } } } },
  then: { required: ['baseUrl'] },
} as const;

/**
 * PATCH bodies: every field may be null in the schema; the services say which ones cannot be
 * cleared (a null given to a non-null type would be coerced, e.g. to "", and misreported).
 */
const connectionPatch = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...connectionFields,
    name: nullable(name),
    baseUrl: nullable(connectionFields.baseUrl),
    auth: nullable(connectionFields.auth),
    kind: nullable(connectionFields.kind),
    sql: nullable(object),
  },
} as const;

const flowFields = {
  name,
  connectionId: id,
  direction: { type: 'string', enum: [...DIRECTIONS] },
  mode: { type: 'string', enum: [...MODES] },
  resourceTypes: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
  filter: nullable({ type: 'string', minLength: 1, maxLength: 10_000 }),
  mapping: nullable(object),
  authority: nullable(object),
  matching: nullable(object),
  onDelete: { type: 'string', enum: [...DELETE_ACTIONS] },
  usePut: { type: 'boolean' },
  fullEverySeconds: nullable({ type: 'integer' }),
  upstreamId: nullable({ type: 'string', minLength: 1, maxLength: 128 }),
  schedule: nullable({ type: 'string', minLength: 1, maxLength: 200 }),
  onLocalChange: { type: 'boolean' },
  enabled: { type: 'boolean' },
} as const;

const flowCreate = {
  type: 'object',
  additionalProperties: false,
  required: ['connectionId', 'direction', 'resourceTypes'],
  properties: { id, ...flowFields },
} as const;

const flowPatch = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...flowFields,
    name: nullable(name),
    connectionId: nullable(id),
    direction: nullable(flowFields.direction),
    mode: nullable(flowFields.mode),
    resourceTypes: nullable(flowFields.resourceTypes),
    onDelete: nullable(flowFields.onDelete),
    usePut: nullable(flowFields.usePut),
    onLocalChange: nullable(flowFields.onLocalChange),
    enabled: nullable(flowFields.enabled),
  },
} as const;

const flowListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { connection: { type: 'string', minLength: 1 } },
} as const;

type Params = { Params: { tenant: string; id: string } };
type TenantParams = { Params: { tenant: string } };

export function adminSyncRoutes(deps: AdminSyncRouteDeps) {
  const { connections, flows } = deps;
  const { asTenantAdmin } = adminGuards(deps);
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);

  return async function routes(api: FastifyInstance): Promise<void> {
    strictAdminBodies(api);

    // ---- connections
    api.get<TenantParams>('/tenants/:tenant/connections', asTenantAdmin, async (request, reply) =>
      json(reply, 200, { connections: await connections.list(request.params.tenant) }),
    );

    api.post<TenantParams & { Body: ConnectionInput }>(
      '/tenants/:tenant/connections',
      { ...asTenantAdmin, schema: { body: connectionCreate } },
      async (request, reply) =>
        json(reply, 201, await connections.create(request.params.tenant, request.body)),
    );

    api.get<Params>('/tenants/:tenant/connections/:id', asTenantAdmin, async (request, reply) =>
      json(reply, 200, await connections.view(request.params.tenant, request.params.id)),
    );

    api.patch<Params & { Body: ConnectionPatch }>(
      '/tenants/:tenant/connections/:id',
      { ...asTenantAdmin, schema: { body: connectionPatch } },
      async (request, reply) =>
        json(reply, 200, await connections.patch(request.params.tenant, request.params.id, request.body)),
    );

    api.delete<Params>('/tenants/:tenant/connections/:id', asTenantAdmin, async (request, reply) => {
      await connections.delete(request.params.tenant, request.params.id);
      return reply.code(204).send();
    });

    api.post<Params>('/tenants/:tenant/connections/:id/test', asTenantAdmin, async (request, reply) =>
      json(reply, 200, await connections.test(request.params.tenant, request.params.id)),
    );

    // ---- flows
    api.get<TenantParams & { Querystring: { connection?: string } }>(
      '/tenants/:tenant/flows',
      { ...asTenantAdmin, schema: { querystring: flowListQuery } },
      async (request, reply) =>
        json(reply, 200, {
          flows: await flows.list(request.params.tenant, { connectionId: request.query.connection }),
        }),
    );

    api.post<TenantParams & { Body: FlowInput }>(
      '/tenants/:tenant/flows',
      { ...asTenantAdmin, schema: { body: flowCreate } },
      async (request, reply) => json(reply, 201, await flows.create(request.params.tenant, request.body)),
    );

    api.get<Params>('/tenants/:tenant/flows/:id', asTenantAdmin, async (request, reply) =>
      json(reply, 200, await flows.view(request.params.tenant, request.params.id)),
    );

    api.patch<Params & { Body: FlowPatch }>(
      '/tenants/:tenant/flows/:id',
      { ...asTenantAdmin, schema: { body: flowPatch } },
      async (request, reply) =>
        json(reply, 200, await flows.patch(request.params.tenant, request.params.id, request.body)),
    );

    api.delete<Params>('/tenants/:tenant/flows/:id', asTenantAdmin, async (request, reply) => {
      await flows.delete(request.params.tenant, request.params.id);
      return reply.code(204).send();
    });
  };
}
