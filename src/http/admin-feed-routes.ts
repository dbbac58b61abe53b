/**
 * Admin API of event feeds, under /admin/v1/tenants/:tenant/feeds: create, list, show, change and
 * delete a tenant's feeds, and list, add and remove the members of a feed with explicit members.
 * A tenant's admin or the operator; bodies are strict (admin-guards.ts). Receivers have their own
 * routes (delivery).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { FeedService, FeedUpdate, NewFeed } from '../events/outbound/feeds.ts';
import { adminGuards, strictAdminBodies, type AdminGuardDeps } from './admin-guards.ts';

export interface AdminFeedRouteDeps extends AdminGuardDeps {
  feeds: FeedService;
}

const typeList = {
  type: 'array',
  minItems: 1,
  uniqueItems: true,
  items: { type: 'string', minLength: 1, maxLength: 200 },
} as const;

const feedBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'resourceTypes', 'form'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128 },
    name: { type: 'string', minLength: 1, maxLength: 200 },
    resourceTypes: typeList,
    filter: { type: 'string', minLength: 1, maxLength: 10_000 },
    explicitMembers: { type: 'boolean' },
    form: { type: 'string', enum: ['full', 'notice'] },
    from: { type: 'string', enum: ['now', 'beginning'] },
  },
} as const;

const feedPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    resourceTypes: typeList,
    filter: { type: ['string', 'null'], minLength: 1, maxLength: 10_000 },
    form: { type: 'string', enum: ['full', 'notice'] },
  },
} as const;

const memberBody = {
  type: 'object',
  additionalProperties: false,
  required: ['resourceId'],
  properties: {
    resourceId: { type: 'string', minLength: 1, maxLength: 200 },
    resourceType: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

const pageQuery = {
  type: 'object',
  properties: {
    startIndex: { type: 'integer', minimum: 1, default: 1 },
    count: { type: 'integer', minimum: 0, maximum: 1000, default: 100 },
  },
} as const;

type FeedParams = { Params: { tenant: string; id: string } };

export function adminFeedRoutes(deps: AdminFeedRouteDeps) {
  const { feeds } = deps;
  const { asTenantAdmin } = adminGuards(deps);
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);
  const seg = encodeURIComponent;

  return async function routes(api: FastifyInstance): Promise<void> {
    strictAdminBodies(api);

    api.get<{ Params: { tenant: string } }>(
      '/tenants/:tenant/feeds',
      asTenantAdmin,
      async (request, reply) => {
        return json(reply, 200, { feeds: await feeds.list(request.params.tenant) });
      },
    );
    api.post<{ Params: { tenant: string }; Body: NewFeed }>(
      '/tenants/:tenant/feeds',
      { ...asTenantAdmin, schema: { body: feedBody } },
      async (request, reply) => {
        const f = await feeds.create(request.params.tenant, request.body);
        reply.header('location', `/admin/v1/tenants/${seg(f.tenant)}/feeds/${seg(f.id)}`);
        return json(reply, 201, f);
      },
    );
    api.get<FeedParams>('/tenants/:tenant/feeds/:id', asTenantAdmin, async (request, reply) => {
      return json(reply, 200, await feeds.get(request.params.tenant, request.params.id));
    });
    api.patch<FeedParams & { Body: FeedUpdate }>(
      '/tenants/:tenant/feeds/:id',
      { ...asTenantAdmin, schema: { body: feedPatchBody } },
      async (request, reply) => {
        return json(reply, 200, await feeds.update(request.params.tenant, request.params.id, request.body));
      },
    );
    api.delete<FeedParams>('/tenants/:tenant/feeds/:id', asTenantAdmin, async (request, reply) => {
      await feeds.delete(request.params.tenant, request.params.id);
      return reply.code(204).send();
    });

    api.get<FeedParams & { Querystring: { startIndex: number; count: number } }>(
      '/tenants/:tenant/feeds/:id/members',
      { ...asTenantAdmin, schema: { querystring: pageQuery } },
      async (request, reply) => {
        const { startIndex, count } = request.query;
        return json(
          reply,
          200,
          await feeds.members(request.params.tenant, request.params.id, { startIndex, count }),
        );
      },
    );
    api.post<FeedParams & { Body: { resourceId: string; resourceType?: string } }>(
      '/tenants/:tenant/feeds/:id/members',
      { ...asTenantAdmin, schema: { body: memberBody } },
      async (request, reply) => {
        const { tenant, id } = request.params;
        const m = await feeds.addMember(tenant, id, request.body);
        reply.header(
          'location',
          `/admin/v1/tenants/${seg(tenant)}/feeds/${seg(id)}/members/${seg(m.resourceId)}`,
        );
        return json(reply, 201, m);
      },
    );
    api.delete<{ Params: { tenant: string; id: string; resourceId: string } }>(
      '/tenants/:tenant/feeds/:id/members/:resourceId',
      asTenantAdmin,
      async (request, reply) => {
        const { tenant, id, resourceId } = request.params;
        await feeds.removeMember(tenant, id, resourceId);
        return reply.code(204).send();
      },
    );
  };
}
