/**
 * The JWKS receivers verify a tenant's Security Event Tokens with: public, without credentials,
 * cacheable, public keys only (active and rotated-out keys; retired ones are gone).
 * `/.well-known/jwks.json` is the default tenant's, `/tenants/{tenant}/.well-known/jwks.json` any other's.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ScimError } from '../scim/errors.ts';
import type { TenantDirectory } from '../tenancy/directory.ts';
import type { SigningKeys } from './keys.ts';

export interface JwksRouteDeps {
  keys: SigningKeys;
  tenants: TenantDirectory;
}

/** RFC 7517 §8.5 media type. */
export const JWKS_MEDIA_TYPE = 'application/jwk-set+json';

/**
 * Receivers may cache this long. A rotated-out key stays published far longer than this, so a
 * receiver holding a stale set only misses a brand-new key, and jose-style clients refetch on an
 * unknown kid.
 */
export const JWKS_MAX_AGE_SECONDS = 300;

export function jwksRoutes(deps: JwksRouteDeps) {
  return async function routes(app: FastifyInstance): Promise<void> {
    const serve = async (tenantId: string, reply: FastifyReply) => {
      const tenant = await deps.tenants.get(tenantId);
      if (!tenant) throw ScimError.notFound(`No tenant ${tenantId}`);
      const jwks = await deps.keys.jwks(tenant.id);
      return reply
        .header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
        .type(JWKS_MEDIA_TYPE)
        .send(JSON.stringify(jwks));
    };
    app.get('/.well-known/jwks.json', async (_request, reply) => serve('default', reply));
    app.get<{ Params: { tenant: string } }>(
      '/tenants/:tenant/.well-known/jwks.json',
      async (request, reply) => serve(request.params.tenant, reply),
    );
  };
}
