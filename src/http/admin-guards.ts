/**
 * What every admin API route module shares: who may call (the operator, a tenant's admin, a
 * tenant's gateway) and strict bodies (schema errors as SCIM 400s, no silent coercion). Route
 * modules (admin-routes.ts, and those of events, feeds, receivers...) register under /admin/v1
 * and call strictAdminBodies on their plugin instance.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AdminService } from '../admin/service.ts';
import type { Authenticator, Credentials, PeerCertificate } from '../auth/authenticator.ts';
import { DEFAULT_TENANT, isOperator, requireAdmin, type Principal } from '../auth/scopes.ts';
import { ScimError } from '../scim/errors.ts';

export interface AdminGuardDeps {
  admin: AdminService;
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

/** Route options (onRequest hooks) that authorize a caller, and the authentication they use. */
export interface AdminGuards {
  authenticate(request: FastifyRequest, preferred: string): Promise<Principal>;
  /** The node operator (an admin of the default tenant). */
  asOperator: { onRequest: (request: FastifyRequest) => Promise<void> };
  /** An admin of the URL's :tenant, or the operator. */
  asTenantAdmin: { onRequest: (request: FastifyRequest) => Promise<void> };
  /** A client of the URL's :tenant with scope gateway (or admin), or the operator. */
  asGateway: { onRequest: (request: FastifyRequest) => Promise<void> };
}

export function adminGuards(deps: AdminGuardDeps): AdminGuards {
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

  return { authenticate, asOperator, asTenantAdmin, asGateway };
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

/** Installs schema-error formatting and the no-alteration check on an admin route plugin. */
export function strictAdminBodies(api: FastifyInstance): void {
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
}
