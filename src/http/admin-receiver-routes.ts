/**
 * Admin API of event receivers, /admin/v1/tenants/{t}/receivers: create, read, update, delete, their
 * outbox entries (delivery state per SET) and retry of failed ones. Admin of the tenant or the
 * operator. The push authorization value is write-only (views say "set" or "unset").
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type {
  NewReceiver,
  OutboxState,
  ReceiverService,
  ReceiverUpdate,
} from '../events/outbound/receivers.ts';
import { ScimError } from '../scim/errors.ts';
import { adminGuards, strictAdminBodies, type AdminGuardDeps } from './admin-guards.ts';

export interface AdminReceiverRouteDeps extends AdminGuardDeps {
  receivers: ReceiverService;
}

const ID = { type: 'string', minLength: 1, maxLength: 128 } as const;
const fields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  feedId: ID,
  delivery: { type: 'string', enum: ['push', 'poll'] },
  endpointUrl: { type: 'string', minLength: 1, maxLength: 2000 },
  authorization: { type: 'string', minLength: 1, maxLength: 4096 },
  pollClientId: ID,
  audience: { type: 'string', minLength: 1, maxLength: 2000 },
  unsigned: { type: 'boolean' },
  maxAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
  paused: { type: 'boolean' },
} as const;

const createBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'feedId', 'delivery'],
  properties: { id: ID, ...fields },
} as const;

const nullable = <T extends object>(s: T) => ({ anyOf: [s, { type: 'null' }] });

const patchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...fields,
    endpointUrl: nullable(fields.endpointUrl),
    authorization: nullable(fields.authorization),
    pollClientId: nullable(fields.pollClientId),
    audience: nullable(fields.audience),
  },
} as const;

const eventsQuery = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    startIndex: { type: 'integer', minimum: 1, default: 1 },
    count: { type: 'integer', minimum: 0, maximum: 1000, default: 100 },
    includeSet: { type: 'boolean', default: false },
  },
} as const;

/** The retry body is optional (no body = every failed SET), so it is checked here, not by a schema. */
function retryJtis(body: unknown): string[] | undefined {
  if (body === undefined || body === null) return undefined;
  const invalid = () =>
    ScimError.badRequest('invalidValue', 'The retry body is optional: {"jti": ["<jti>", ...]}');
  if (typeof body !== 'object' || Array.isArray(body)) throw invalid();
  const { jti, ...rest } = body as { jti?: unknown };
  if (Object.keys(rest).length > 0) throw invalid();
  if (jti === undefined) return undefined;
  if (!Array.isArray(jti) || jti.length > 10_000 || !jti.every((j) => typeof j === 'string' && j.length > 0))
    throw invalid();
  return jti as string[];
}

type Params = { Params: { tenant: string; id: string } };

export function adminReceiverRoutes(deps: AdminReceiverRouteDeps) {
  const { receivers } = deps;
  const { asTenantAdmin } = adminGuards(deps);
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);

  return async function routes(api: FastifyInstance): Promise<void> {
    strictAdminBodies(api);

    api.get<{ Params: { tenant: string } }>(
      '/tenants/:tenant/receivers',
      asTenantAdmin,
      async (request, reply) => json(reply, 200, { receivers: await receivers.list(request.params.tenant) }),
    );
    api.post<{ Params: { tenant: string }; Body: NewReceiver }>(
      '/tenants/:tenant/receivers',
      { ...asTenantAdmin, schema: { body: createBody } },
      async (request, reply) => {
        const r = await receivers.create(request.params.tenant, request.body);
        const location = `/admin/v1/tenants/${encodeURIComponent(r.tenant)}/receivers/${encodeURIComponent(r.id)}`;
        return json(reply.header('location', location), 201, r);
      },
    );
    api.get<Params>('/tenants/:tenant/receivers/:id', asTenantAdmin, async (request, reply) =>
      json(reply, 200, await receivers.get(request.params.tenant, request.params.id)),
    );
    api.patch<Params & { Body: ReceiverUpdate }>(
      '/tenants/:tenant/receivers/:id',
      { ...asTenantAdmin, schema: { body: patchBody } },
      async (request, reply) =>
        json(reply, 200, await receivers.update(request.params.tenant, request.params.id, request.body)),
    );
    api.delete<Params>('/tenants/:tenant/receivers/:id', asTenantAdmin, async (request, reply) => {
      await receivers.remove(request.params.tenant, request.params.id);
      return reply.code(204).send();
    });
    api.get<
      Params & {
        Querystring: { state?: OutboxState; startIndex: number; count: number; includeSet: boolean };
      }
    >(
      '/tenants/:tenant/receivers/:id/events',
      { ...asTenantAdmin, schema: { querystring: eventsQuery } },
      async (request, reply) => {
        const q = request.query;
        reply.header('cache-control', 'no-store');
        return json(
          reply,
          200,
          await receivers.events(request.params.tenant, request.params.id, {
            state: q.state,
            startIndex: q.startIndex,
            count: q.count,
            includeSet: q.includeSet,
          }),
        );
      },
    );
    api.post<Params>('/tenants/:tenant/receivers/:id/retry', asTenantAdmin, async (request, reply) =>
      json(
        reply,
        200,
        await receivers.retry(request.params.tenant, request.params.id, retryJtis(request.body)),
      ),
    );
  };
}
