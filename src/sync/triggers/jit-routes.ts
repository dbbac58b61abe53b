/**
 * SSO just-in-time provisioning endpoint, under /admin/v1:
 *   POST /tenants/:tenant/jit/oidc   body { "idToken": "<OIDC ID token>" }
 * 201 with the User when it was created, 200 when it existed (updated from the claims or
 * unchanged); SCIM errors otherwise (jit.ts). For a client of the tenant with scope `jit` (a login
 * service given only that right), its admin, or the node operator. The body is never logged.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isOperator } from '../../auth/scopes.ts';
import { adminGuards, strictAdminBodies, type AdminGuardDeps } from '../../http/admin-guards.ts';
import { SCIM_MEDIA_TYPE } from '../../http/errors.ts';
import { ScimError } from '../../scim/errors.ts';
import type { JitService } from './jit.ts';

export interface JitRouteDeps extends AdminGuardDeps {
  jit: JitService;
  /** The node's public base URL (config.baseUrl); unset = the request's host. */
  baseUrl?: string;
}

const body = {
  type: 'object',
  additionalProperties: false,
  required: ['idToken'],
  properties: { idToken: { type: 'string', minLength: 1, maxLength: 16_000 } },
} as const;

export function jitRoutes(deps: JitRouteDeps) {
  const guards = adminGuards(deps);
  const asJit = {
    onRequest: async (request: FastifyRequest) => {
      const tenant = (request.params as { tenant: string }).tenant;
      const p = await guards.authenticate(request, tenant);
      request.adminPrincipal = p;
      const own = p.tenant === tenant && (p.scopes.has('jit') || p.scopes.has('admin'));
      if (!own && !isOperator(p))
        throw new ScimError(
          403,
          undefined,
          `This credential may not sign users in to tenant ${tenant} (needs scope jit)`,
        );
    },
  };

  return async function routes(api: FastifyInstance): Promise<void> {
    strictAdminBodies(api);
    api.post<{ Params: { tenant: string }; Body: { idToken: string } }>(
      '/tenants/:tenant/jit/oidc',
      { ...asJit, schema: { body } },
      async (request, reply) => {
        const { tenant } = request.params;
        const prefix = tenant === 'default' ? '/scim/v2' : `/tenants/${encodeURIComponent(tenant)}/scim/v2`;
        const baseUrl = `${deps.baseUrl ?? `${request.protocol}://${request.host}`}${prefix}`;
        const r = await deps.jit.oidc(tenant, request.body.idToken, baseUrl);
        request.log.info(
          { tenant, user: r.user.resource.id, created: r.created, requested: r.requested },
          'JIT sign-in (OIDC)',
        );
        reply.header('etag', r.user.etag);
        if (r.created) reply.header('location', r.user.location);
        return reply
          .code(r.created ? 201 : 200)
          .type(SCIM_MEDIA_TYPE)
          .send(r.user.resource);
      },
    );
  };
}
