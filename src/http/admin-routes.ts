/**
 * The admin API, /admin/v1: tenants, clients, tokens and the audit trail, as JSON with
 * schema-validated bodies. The node operator (an admin of the default tenant) may manage every
 * tenant; a tenant's own admin only its own clients, tokens and audit trail. Errors use the SCIM
 * error body so clients parse one shape.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AdminService } from '../admin/service.ts';
import type { Authenticator, PeerCertificate } from '../auth/authenticator.ts';
import { DEFAULT_TENANT, isOperator, requireAdmin, type Principal } from '../auth/scopes.ts';
import { ScimError } from '../scim/errors.ts';
import { RATE_LIMIT_SCHEMA, TENANT_SETTINGS_SCHEMA, type TenantSettings } from '../tenancy/settings.ts';
import type { NewClient } from '../admin/service.ts';

export interface AdminRouteDeps {
  admin: AdminService;
  authenticator: Authenticator;
  peerCertificate: (request: FastifyRequest) => PeerCertificate | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    adminPrincipal?: Principal;
  }
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

export function adminRoutes(deps: AdminRouteDeps) {
  const { admin, authenticator } = deps;

  /** Authenticates for an admin action on `tenant`: its own admin, or the node operator. */
  async function authorize(request: FastifyRequest, tenant: string): Promise<Principal> {
    const creds = {
      authorization: request.headers.authorization,
      peerCertificate: deps.peerCertificate(request),
    };
    let principal: Principal;
    try {
      principal = await authenticator.authenticate(tenant, creds);
    } catch (err) {
      if (tenant === DEFAULT_TENANT) throw err;
      // Not a credential of that tenant: it may still be the operator's.
      principal = await authenticator.authenticate(DEFAULT_TENANT, creds);
    }
    requireAdmin(principal, tenant);
    request.adminPrincipal = principal;
    return principal;
  }

  async function operator(request: FastifyRequest): Promise<Principal> {
    const p = await authenticator.authenticate(DEFAULT_TENANT, {
      authorization: request.headers.authorization,
      peerCertificate: deps.peerCertificate(request),
    });
    if (!isOperator(p))
      throw new ScimError(403, undefined, 'Only the node operator (admin of the default tenant) may do this');
    request.adminPrincipal = p;
    return p;
  }

  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);

  return async function routes(api: FastifyInstance): Promise<void> {
    // Validation errors from the JSON schemas become SCIM-shaped 400s.
    api.setSchemaErrorFormatter((errors, dataVar) => {
      const e = errors[0];
      const where = e?.instancePath ? `${dataVar}${e.instancePath}` : dataVar;
      return ScimError.badRequest('invalidValue', `${where} ${e?.message ?? 'is invalid'}`);
    });

    api.get('/tenants', async (request, reply) => {
      await operator(request);
      return json(reply, 200, { tenants: await admin.listTenants() });
    });
    api.post<{ Body: { id: string; name?: string; settings?: TenantSettings } }>(
      '/tenants',
      { schema: { body: tenantBody } },
      async (request, reply) => {
        await operator(request);
        const t = await admin.createTenant(request.body);
        return json(reply.header('location', `/admin/v1/tenants/${t.id}`), 201, t);
      },
    );
    api.get<TenantParams>('/tenants/:tenant', async (request, reply) => {
      await authorize(request, request.params.tenant);
      return json(reply, 200, await admin.getTenant(request.params.tenant));
    });
    api.patch<TenantParams & { Body: { name?: string; settings?: TenantSettings } }>(
      '/tenants/:tenant',
      { schema: { body: tenantPatchBody } },
      async (request, reply) => {
        // Settings include limits and authentication trust: only the operator changes them.
        await operator(request);
        return json(reply, 200, await admin.updateTenant(request.params.tenant, request.body));
      },
    );
    api.delete<TenantParams>('/tenants/:tenant', async (request, reply) => {
      await operator(request);
      await admin.deleteTenant(request.params.tenant);
      return reply.code(204).send();
    });

    api.get<TenantParams>('/tenants/:tenant/clients', async (request, reply) => {
      await authorize(request, request.params.tenant);
      return json(reply, 200, { clients: await admin.listClients(request.params.tenant) });
    });
    api.post<TenantParams & { Body: NewClient }>(
      '/tenants/:tenant/clients',
      { schema: { body: clientBody } },
      async (request, reply) => {
        await authorize(request, request.params.tenant);
        const c = await admin.createClient(request.params.tenant, request.body);
        return json(reply.header('location', `/admin/v1/tenants/${c.tenant}/clients/${c.id}`), 201, c);
      },
    );
    api.get<{ Params: { tenant: string; client: string } }>(
      '/tenants/:tenant/clients/:client',
      async (request, reply) => {
        await authorize(request, request.params.tenant);
        return json(reply, 200, await admin.getClient(request.params.tenant, request.params.client));
      },
    );
    api.delete<{ Params: { tenant: string; client: string } }>(
      '/tenants/:tenant/clients/:client',
      async (request, reply) => {
        await authorize(request, request.params.tenant);
        await admin.deleteClient(request.params.tenant, request.params.client);
        return reply.code(204).send();
      },
    );

    api.post<{
      Params: { tenant: string; client: string };
      Body: { expiresInSeconds?: number; description?: string };
    }>('/tenants/:tenant/clients/:client/tokens', { schema: { body: tokenBody } }, async (request, reply) => {
      await authorize(request, request.params.tenant);
      const t = await admin.issueToken(request.params.tenant, request.params.client, request.body ?? {});
      reply.header('cache-control', 'no-store');
      return json(reply, 201, t);
    });
    api.get<{ Params: { tenant: string; client: string } }>(
      '/tenants/:tenant/clients/:client/tokens',
      async (request, reply) => {
        await authorize(request, request.params.tenant);
        await admin.getClient(request.params.tenant, request.params.client);
        return json(reply, 200, {
          tokens: await admin.listTokens(request.params.tenant, request.params.client),
        });
      },
    );
    api.get<TenantParams>('/tenants/:tenant/tokens', async (request, reply) => {
      await authorize(request, request.params.tenant);
      return json(reply, 200, { tokens: await admin.listTokens(request.params.tenant) });
    });
    api.delete<{ Params: { tenant: string; token: string } }>(
      '/tenants/:tenant/tokens/:token',
      async (request, reply) => {
        await authorize(request, request.params.tenant);
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
    >('/tenants/:tenant/audit', { schema: { querystring: auditQuery } }, async (request, reply) => {
      await authorize(request, request.params.tenant);
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
    });
  };
}
