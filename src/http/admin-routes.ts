/**
 * The admin API, /admin/v1: tenants, clients, tokens and the audit trail, as JSON with
 * schema-validated bodies. The node operator (an admin of the default tenant) may manage every
 * tenant; a tenant's own admin only its own clients, tokens and audit trail. Errors use the SCIM
 * error body so clients parse one shape.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AdminService } from '../admin/service.ts';
import type { GatewayService } from '../devices/gateway.ts';
import type { Authenticator, Credentials, PeerCertificate } from '../auth/authenticator.ts';
import { DEFAULT_TENANT, isOperator, requireAdmin, type Principal } from '../auth/scopes.ts';
import { ScimError } from '../scim/errors.ts';
import { RATE_LIMIT_SCHEMA, TENANT_SETTINGS_SCHEMA, type TenantSettings } from '../tenancy/settings.ts';
import type { NewClient } from '../admin/service.ts';

export interface AdminRouteDeps {
  admin: AdminService;
  gateway: GatewayService;
  authenticator: Authenticator;
  peerCertificate: (request: FastifyRequest) => PeerCertificate | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    adminPrincipal?: Principal;
    /** The admin body as sent, before schema validation. */
    adminBodySent?: unknown;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Where schema validation altered a body. Fastify's validator removes properties a schema does
 * not allow and coerces values to the schema's types (removeAdditional, coerceTypes) instead of
 * failing: a settings typo would silently replace a tenant's settings with {}, `"scopes": "admin"`
 * would become ["admin"]. Admin bodies must be exactly what their schema describes.
 */
function alteration(sent: unknown, validated: unknown, path: string): string | undefined {
  if (isObject(sent)) {
    if (!isObject(validated)) return `${path} has the wrong type`;
    for (const [k, v] of Object.entries(sent)) {
      if (!Object.hasOwn(validated, k)) return `${path}/${k} is not an allowed property`;
      const found = alteration(v, validated[k], `${path}/${k}`);
      if (found) return found;
    }
    return undefined;
  }
  if (Array.isArray(sent)) {
    if (!Array.isArray(validated) || validated.length !== sent.length) return `${path} has the wrong type`;
    for (let i = 0; i < sent.length; i++) {
      const found = alteration(sent[i], validated[i], `${path}/${i}`);
      if (found) return found;
    }
    return undefined;
  }
  return Object.is(sent, validated) ? undefined : `${path} has the wrong type`;
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
  const { admin, authenticator } = deps;

  /**
   * Authenticates a credential where it is valid: the tenant of the URL, then the default tenant
   * (the operator), then the tenant(s) the credential itself names. A valid credential that may not
   * do what it asks is then refused with 403; only an unknown, expired or revoked one gets 401.
   */
  async function authenticate(request: FastifyRequest, preferred: string): Promise<Principal> {
    const creds: Credentials = {
      authorization: request.headers.authorization,
      peerCertificate: deps.peerCertificate(request),
    };
    const tried = new Set<string>();
    let firstError: unknown;
    const attempt = async (tenant: string): Promise<Principal | undefined> => {
      tried.add(tenant);
      try {
        return await authenticator.authenticate(tenant, creds);
      } catch (err) {
        if (!(err instanceof ScimError) || err.status !== 401) throw err;
        firstError ??= err;
        return undefined;
      }
    };
    const direct =
      (await attempt(preferred)) ?? (tried.has(DEFAULT_TENANT) ? undefined : await attempt(DEFAULT_TENANT));
    if (direct) return direct;
    for (const tenant of await admin.credentialTenants(creds)) {
      if (tried.has(tenant)) continue;
      const p = await attempt(tenant);
      if (p) return p;
    }
    throw firstError;
  }

  /** An admin action on `tenant`: its own admin, or the node operator. */
  async function authorize(request: FastifyRequest, tenant: string): Promise<void> {
    const principal = await authenticate(request, tenant);
    request.adminPrincipal = principal;
    requireAdmin(principal, tenant);
  }

  async function operator(request: FastifyRequest): Promise<void> {
    const p = await authenticate(request, DEFAULT_TENANT);
    request.adminPrincipal = p;
    if (!isOperator(p))
      throw new ScimError(403, undefined, 'Only the node operator (admin of the default tenant) may do this');
  }

  // Authorization runs on request, before the body is parsed or validated: a caller without
  // rights learns nothing from a body's validation errors.
  const asOperator = { onRequest: (request: FastifyRequest) => operator(request) };
  const asTenantAdmin = {
    onRequest: (request: FastifyRequest) => authorize(request, (request.params as { tenant: string }).tenant),
  };

  /** The enterprise gateway: a client of the tenant with scope gateway (or admin), or the operator. */
  const asGateway = {
    onRequest: async (request: FastifyRequest) => {
      const tenant = (request.params as { tenant: string }).tenant;
      const p = await authenticate(request, tenant);
      request.adminPrincipal = p;
      const own = p.tenant === tenant && (p.scopes.has('gateway') || p.scopes.has('admin'));
      if (!own && !isOperator(p)) {
        throw new ScimError(
          403,
          undefined,
          `This credential may not query tenant ${tenant}'s gateway (needs scope gateway)`,
        );
      }
    },
  };

  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);

  return async function routes(api: FastifyInstance): Promise<void> {
    // Validation errors from the JSON schemas become SCIM-shaped 400s.
    api.setSchemaErrorFormatter((errors, dataVar) => {
      const e = errors[0];
      const where = e?.instancePath ? `${dataVar}${e.instancePath}` : dataVar;
      return ScimError.badRequest('invalidValue', `${where} ${e?.message ?? 'is invalid'}`);
    });
    api.addHook('preValidation', async (request) => {
      if (request.body !== undefined) request.adminBodySent = structuredClone(request.body);
    });
    api.addHook('preHandler', async (request) => {
      if (request.adminBodySent === undefined) return;
      const found = alteration(request.adminBodySent, request.body, 'body');
      if (found) throw ScimError.badRequest('invalidValue', found);
    });

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
