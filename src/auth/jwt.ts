/**
 * OAuth 2.0 JWT access tokens from a tenant's authorization server (RFC 9068 style): signature
 * against the tenant's JWKS (fetched and cached by jose, or configured keys), issuer, audience,
 * expiry and not-before checked by jose; the client and scopes are read from configured claims.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { ScimError } from '../scim/errors.ts';
import type { JwtSettings } from '../tenancy/settings.ts';

export interface VerifiedJwt {
  /** Value of the client claim, matched against a client's jwtSubject. */
  subject: string;
  /** Scopes granted by the token, when it carries a scope claim. */
  scopes?: string[];
}

const DEFAULT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];

export class JwtVerifier {
  /** Key sets per JWKS URI or per configured key set, reused across requests (jose caches fetched keys). */
  private readonly keySets = new Map<string, JWTVerifyGetKey>();

  private keySet(settings: JwtSettings): JWTVerifyGetKey {
    const cacheKey = settings.jwksUri ?? JSON.stringify(settings.jwks ?? {});
    let ks = this.keySets.get(cacheKey);
    if (!ks) {
      if (settings.jwksUri)
        ks = createRemoteJWKSet(new URL(settings.jwksUri), {
          cooldownDuration: 30_000,
          timeoutDuration: 5_000,
        });
      else if (settings.jwks)
        ks = createLocalJWKSet(settings.jwks as Parameters<typeof createLocalJWKSet>[0]);
      else throw new ScimError(401, undefined, 'JWT access tokens are not configured for this tenant');
      this.keySets.set(cacheKey, ks);
    }
    return ks;
  }

  async verify(token: string, settings: JwtSettings): Promise<VerifiedJwt> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keySet(settings), {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: settings.algorithms ?? DEFAULT_ALGORITHMS,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (err instanceof ScimError) throw err;
      // jose's codes name the failed check (ERR_JWT_EXPIRED, ERR_JWT_CLAIM_VALIDATION_FAILED, ...).
      const code = (err as { code?: string }).code ?? 'ERR_JWT_INVALID';
      throw new ScimError(401, undefined, `Invalid access token (${code})`);
    }
    const claimNames = settings.clientClaim ? [settings.clientClaim] : ['client_id', 'azp', 'sub'];
    const subject = claimNames
      .map((c) => payload[c])
      .find((v): v is string => typeof v === 'string' && v.length > 0);
    if (!subject)
      throw new ScimError(401, undefined, `Invalid access token: no ${claimNames.join('/')} claim`);
    const scopeNames = settings.scopeClaim ? [settings.scopeClaim] : ['scope', 'scp'];
    let scopes: string[] | undefined;
    for (const name of scopeNames) {
      const v = payload[name];
      if (typeof v === 'string') scopes = v.split(/\s+/).filter(Boolean);
      else if (Array.isArray(v)) scopes = v.filter((x): x is string => typeof x === 'string');
      if (scopes) break;
    }
    return { subject, scopes };
  }
}
