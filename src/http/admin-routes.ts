/**
 * The admin API, /admin/v1: tenants, clients, tokens and the audit trail, as JSON with
 * schema-validated bodies. The node operator (an admin of the default tenant) may manage every
 * tenant; a tenant's own admin only its own clients, tokens and audit trail. Errors use the SCIM
 * error body so clients parse one shape.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GatewayService } from '../devices/gateway.ts';
import { adminGuards, strictAdminBodies, type AdminGuardDeps } from './admin-guards.ts';
import { RATE_LIMIT_SCHEMA, TENANT_SETTINGS_SCHEMA, type TenantSettings } from '../tenancy/settings.ts';
import type { NewClient } from '../admin/service.ts';

export interface AdminRouteDeps extends AdminGuardDeps {
  gateway: GatewayService;
}

const tenantBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 63 },
    name: { type: 'string', minLength: 1, maxLength: 200 },
    settings: TENANT_SETTINGS_SCHEMA,
  },
} as const;

const tenantPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, settings: TENANT_SETTINGS_SCHEMA },
} as const;

const clientBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'scopes'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128 },
    name: { type: 'string', minLength: 1, maxLength: 200 },
    scopes: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
    userId: { type: 'string', minLength: 1 },
    endpointAppId: { type: 'string', minLength: 1 },
    jwtSubject: { type: 'string', minLength: 1 },
    certSubject: { type: 'string', minLength: 1 },
    certFingerprint: { type: 'string', pattern: '^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$' },
    rateLimit: RATE_LIMIT_SCHEMA,
  },
} as const;

const tokenBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    expiresInSeconds: { type: 'integer', minimum: 1 },
    description: { type: 'string', maxLength: 200 },
  },
} as const;

const auditQuery = {
  type: 'object',
  properties: {
    client: { type: 'string' },
    operation: { type: 'string', enum: ['create', 'replace', 'patch', 'delete'] },
    resourceType: { type: 'string' },
    resourceId: { type: 'string' },
    since: { type: 'string', format: 'date-time' },
    until: { type: 'string', format: 'date-time' },
    startIndex: { type: 'integer', minimum: 1, default: 1 },
    count: { type: 'integer', minimum: 0, maximum: 1000, default: 100 },
  },
} as const;

type TenantParams = { Params: { tenant: string } };

const gatewayBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    clientToken: { type: 'string', minLength: 1, maxLength: 500 },
    subjectName: { type: 'string', minLength: 1, maxLength: 1000 },
  },
} as const;

const pageQuery = {
  type: 'object',
  properties: {
    startIndex: { type: 'integer', minimum: 1, default: 1 },
    count: { type: 'integer', minimum: 0, maximum: 1000, default: 100 },
  },
} as const;

export function adminRoutes(deps: AdminRouteDeps) {
  const { admin } = deps;
  const { asOperator, asTenantAdmin, asGateway } = adminGuards(deps);

  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);

  return async function routes(api: FastifyInstance): Promise<void> {
    strictAdminBodies(api);
    api.post<
      TenantParams & {
        Body: { clientToken?: string; subjectName?: string };
        Querystring: { startIndex: number; count: number };
      }
    >(
      '/tenants/:tenant/gateway/verify',
      { ...asGateway, schema: { body: gatewayBody, querystring: pageQuery } },
      async (request, reply) => {
        const q = request.query;
        return json(
          reply,
          200,
          await deps.gateway.verify(request.params.tenant, {
            ...request.body,
            startIndex: q.startIndex,
            count: q.count,
          }),
        );
      },
    );

    api.get('/tenants', asOperator, async (_request, reply) => {
      return json(reply, 200, { tenants: await admin.listTenants() });
    });
    api.post<{ Body: { id: string; name?: string; settings?: TenantSettings } }>(
      '/tenants',
      { ...asOperator, schema: { body: tenantBody } },
      async (request, reply) => {
        const t = await admin.createTenant(request.body);
        return json(reply.header('location', `/admin/v1/tenants/${t.id}`), 201, t);
      },
    );
    api.get<TenantParams>('/tenants/:tenant', asTenantAdmin, async (request, reply) => {
      return json(reply, 200, await admin.getTenant(request.params.tenant));
    });
    api.patch<TenantParams & { Body: { name?: string; settings?: TenantSettings } }>(
      '/tenants/:tenant',
      // Settings include limits and authentication trust: only the operator changes them.
      { ...asOperator, schema: { body: tenantPatchBody } },
      async (request, reply) => {
        return json(reply, 200, await admin.updateTenant(request.params.tenant, request.body));
      },
    );
    api.delete<TenantParams>('/tenants/:tenant', asOperator, async (request, reply) => {
      await admin.deleteTenant(request.params.tenant);
      return reply.code(204).send();
    });

    api.get<TenantParams>('/tenants/:tenant/clients', asTenantAdmin, async (request, reply) => {
      return json(reply, 200, { clients: await admin.listClients(request.params.tenant) });
    });
    api.post<TenantParams & { Body: NewClient }>(
      '/tenants/:tenant/clients',
      { ...asTenantAdmin, schema: { body: clientBody } },
      async (request, reply) => {
        const c = await admin.createClient(request.params.tenant, request.body);
        return json(reply.header('location', `/admin/v1/tenants/${c.tenant}/clients/${c.id}`), 201, c);
      },
    );
    api.get<{ Params: { tenant: string; client: string } }>(
      '/tenants/:tenant/clients/:client',
      asTenantAdmin,
      async (request, reply) => {
        return json(reply, 200, await admin.getClient(request.params.tenant, request.params.client));
      },
    );
    api.delete<{ Params: { tenant: string; client: string } }>(
      '/tenants/:tenant/clients/:client',
      asTenantAdmin,
      async (request, reply) => {
        await admin.deleteClient(request.params.tenant, request.params.client);
        return reply.code(204).send();
      },
    );

    api.post<{
      Params: { tenant: string; client: string };
      Body: { expiresInSeconds?: number; description?: string };
    }>(
      '/tenants/:tenant/clients/:client/tokens',
      { ...asTenantAdmin, schema: { body: tokenBody } },
      async (request, reply) => {
        const t = await admin.issueToken(request.params.tenant, request.params.client, request.body ?? {});
        reply.header('cache-control', 'no-store');
        return json(reply, 201, t);
      },
    );
    api.get<{ Params: { tenant: string; client: string } }>(
      '/tenants/:tenant/clients/:client/tokens',
      asTenantAdmin,
      async (request, reply) => {
        await admin.getClient(request.params.tenant, request.params.client);
        return json(reply, 200, {
          tokens: await admin.listTokens(request.params.tenant, request.params.client),
        });
      },
    );
    api.get<TenantParams>('/tenants/:tenant/tokens', asTenantAdmin, async (request, reply) => {
      return json(reply, 200, { tokens: await admin.listTokens(request.params.tenant) });
    });
    api.delete<{ Params: { tenant: string; token: string } }>(
      '/tenants/:tenant/tokens/:token',
      asTenantAdmin,
      async (request, reply) => {
        return json(reply, 200, await admin.revokeToken(request.params.tenant, request.params.token));
      },
    );

    api.get<
      TenantParams & {
        Querystring: {
          client?: string;
          operation?: string;
          resourceType?: string;
          resourceId?: string;
          since?: string;
          until?: string;
          startIndex: number;
          count: number;
        };
      }
    >(
      '/tenants/:tenant/audit',
      { ...asTenantAdmin, schema: { querystring: auditQuery } },
      async (request, reply) => {
        const q = request.query;
        return json(
          reply,
          200,
          await admin.audit(request.params.tenant, {
            client: q.client,
            operation: q.operation,
            resourceType: q.resourceType,
            resourceId: q.resourceId,
            since: q.since ? new Date(q.since) : undefined,
            until: q.until ? new Date(q.until) : undefined,
            startIndex: q.startIndex,
            count: q.count,
          }),
        );
      },
    );
  };
}
