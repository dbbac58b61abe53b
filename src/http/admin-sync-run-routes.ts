/**
 * Admin API of sync runs, under /admin/v1 (src/sync/engine/runner.ts):
 *   POST /tenants/:tenant/flows/:id/runs          start a run: body {dryRun?, full?, wait?} → 202 with
 *                                                  the run (running), or 200 with the finished run when
 *                                                  `wait`; 409 while the flow runs (on any node)
 *   GET  /tenants/:tenant/flows/:id/runs          the run history, newest first (?limit, ?offset)
 *   GET  /tenants/:tenant/flows/:id/runs/:runId   one run with its items (?after=<seq>, ?count), paged
 *                                                  by seq: `nextAfter` when more items follow
 *   POST /tenants/:tenant/flows/:id/plan          the reconciliation plan (a dry run, 200)
 * For the tenant's admin or the operator.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ScimError } from '../scim/errors.ts';
import type { FlowRunner } from '../sync/engine/runner.ts';
import type { FlowService } from '../sync/flows.ts';
import { adminGuards, strictAdminBodies, type AdminGuardDeps } from './admin-guards.ts';

export interface AdminSyncRunRouteDeps extends AdminGuardDeps {
  runner: FlowRunner;
  flows: FlowService;
}

const runBody = {
  type: 'object',
  additionalProperties: false,
  properties: { dryRun: { type: 'boolean' }, full: { type: 'boolean' }, wait: { type: 'boolean' } },
} as const;

const historyQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
    offset: { type: 'integer', minimum: 0 },
  },
} as const;

const itemsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: { type: 'integer', minimum: 0 },
    count: { type: 'integer', minimum: 1, maximum: 1000 },
  },
} as const;

type Params = { Params: { tenant: string; id: string } };

export function adminSyncRunRoutes(deps: AdminSyncRunRouteDeps) {
  const { runner, flows } = deps;
  const { asTenantAdmin } = adminGuards(deps);
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);

  return async function routes(api: FastifyInstance): Promise<void> {
    strictAdminBodies(api);

    api.post<Params & { Body: { dryRun?: boolean; full?: boolean; wait?: boolean } | undefined }>(
      '/tenants/:tenant/flows/:id/runs',
      { ...asTenantAdmin, schema: { body: runBody } },
      async (request, reply) => {
        const { tenant, id } = request.params;
        await flows.require(tenant, id);
        const body = request.body ?? {};
        const started = await runner.startRun(tenant, id, {
          trigger: 'api',
          dryRun: body.dryRun ?? false,
          full: body.full ?? false,
        });
        if (body.wait) return json(reply, 200, await started.done);
        return json(reply, 202, started.run);
      },
    );

    api.get<Params & { Querystring: { limit?: number; offset?: number } }>(
      '/tenants/:tenant/flows/:id/runs',
      { ...asTenantAdmin, schema: { querystring: historyQuery } },
      async (request, reply) => {
        const { tenant, id } = request.params;
        await flows.require(tenant, id);
        return json(reply, 200, { runs: await runner.listRuns(tenant, id, request.query) });
      },
    );

    api.get<{
      Params: { tenant: string; id: string; runId: string };
      Querystring: { after?: number; count?: number };
    }>(
      '/tenants/:tenant/flows/:id/runs/:runId',
      { ...asTenantAdmin, schema: { querystring: itemsQuery } },
      async (request, reply) => {
        const { tenant, id, runId } = request.params;
        await flows.require(tenant, id);
        const run = await runner.getRun(tenant, id, runId);
        if (!run) throw ScimError.notFound(`No run ${runId} of flow ${id}`);
        const count = request.query.count ?? 100;
        const items = await runner.runItems(tenant, id, runId, {
          after: request.query.after,
          limit: count + 1,
        });
        const page = items.slice(0, count);
        const body: Record<string, unknown> = { ...run, items: page };
        if (items.length > count) body.nextAfter = page[page.length - 1].seq;
        return json(reply, 200, body);
      },
    );

    api.post<Params>('/tenants/:tenant/flows/:id/plan', asTenantAdmin, async (request, reply) => {
      const { tenant, id } = request.params;
      await flows.require(tenant, id);
      return json(reply, 200, await runner.plan(tenant, id, 'api'));
    });
  };
}
