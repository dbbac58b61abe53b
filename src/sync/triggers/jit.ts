/**
 * SSO just-in-time provisioning (use-case behaviours 16 and 38): the login front-end of an
 * application hands this node the OIDC ID token of a user who just signed in. The token is
 * verified against the tenant's settings (`settings.jit.oidc`: signature with the identity
 * provider's JWKS, iss, aud, exp, nbf, iat no older than maxAgeSeconds); then the User is found
 * by externalId (the `sub` claim by default), then by userName, and
 * - created from the claims when there is none (a partial User: what the token says), after which
 *   the enabled pull flows covering Users are requested (trigger 'jit') so that the next pull
 *   fills in the rest — a pull matches the User by externalId/userName, so no duplicate arises;
 * - or updated with the claims that differ (nothing is written when none differ). An externalId
 *   already set (by a pull, with another source's id) is kept.
 * Writes go through ResourceService with client `jit:oidc`, so push flows with onLocalChange
 * covering Users are requested by the local-change trigger. The token itself is never logged nor
 * stored.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { LimitsConfig } from '../../config.ts';
import { ScimError } from '../../scim/errors.ts';
import { isJsonObject, type JsonObject, type JsonValue } from '../../scim/json.ts';
import type { SchemaRegistry } from '../../scim/schema/registry.ts';
import type { RequestContext, ResourceResult, ResourceService } from '../../service/resources.ts';
import type { Queryable } from '../../store/db.ts';
import type { TenantDirectory } from '../../tenancy/directory.ts';
import { effectiveLimits } from '../../tenancy/settings.ts';
import type { RunTrigger } from '../types.ts';
import { DEFAULT_JIT_CLAIMS, type JitOidcSettings, type JitSettings } from './jit-settings.ts';

export const JIT_OIDC_CLIENT = 'jit:oidc';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const DEFAULT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];

export interface JitResult {
  created: boolean;
  /** The User as a client sees it, with its ETag and location. */
  user: ResourceResult;
  /** Pull flows requested (trigger 'jit'), after a creation. */
  requested: string[];
}

export interface JitServiceDeps {
  db: Queryable;
  service: ResourceService;
  registry: SchemaRegistry;
  tenants: TenantDirectory;
  limits: LimitsConfig;
  /** Stores requests (RunRequests.requestRuns: also wakes the runner). */
  request: (tenant: string, flowIds: string[], trigger: RunTrigger) => Promise<string[]>;
}

/** One attribute the token fills: its SCIM path and the claim's value. */
interface Mapped {
  path: string;
  value: string;
}

export class JitService {
  /** Key sets per JWKS URI or inline JWKS (jose caches fetched keys and refetches on a new kid). */
  private readonly keySets = new Map<string, JWTVerifyGetKey>();

  constructor(private readonly deps: JitServiceDeps) {}

  /**
   * Signs in the holder of an OIDC ID token on `tenant`. `baseUrl` is the tenant's SCIM base URL
   * (for meta.location). Throws ScimErrors: 404 no such tenant or JIT not configured, 400 a
   * malformed token or a claim that cannot fill its attribute, 401 a token that does not verify.
   */
  async oidc(tenant: string, idToken: string, baseUrl: string): Promise<JitResult> {
    const t = await this.deps.tenants.get(tenant);
    if (!t) throw ScimError.notFound(`No tenant ${tenant}`);
    const settings = (t.settings as { jit?: JitSettings }).jit?.oidc;
    if (!settings)
      throw ScimError.notFound(
        `OIDC just-in-time provisioning is not configured for tenant ${tenant} (settings.jit.oidc)`,
      );
    const rt = this.deps.registry.resourceType(settings.resourceType ?? 'User');
    const served = t.settings.resourceTypes?.map((n) => n.toLowerCase());
    if (!rt || (served && !served.includes(rt.name.toLowerCase())))
      throw ScimError.notFound(
        `Tenant ${tenant} does not serve ${settings.resourceType ?? 'User'} resources`,
      );
    const claims = await this.verify(idToken, settings);
    const mapped = mappedClaims(claims, settings.claims ?? DEFAULT_JIT_CLAIMS);
    const ctx: RequestContext = {
      tenant,
      baseUrl,
      clientId: JIT_OIDC_CLIENT,
      limits: effectiveLimits(this.deps.limits, t.settings),
      settings: t.settings as Record<string, unknown>,
    };
    const externalId = mapped.find((m) => m.path === 'externalId')?.value;
    const userName = mapped.find((m) => m.path === 'userName')?.value;
    const existing = await this.find(ctx, externalId, userName);
    if (existing) return { created: false, user: await this.update(ctx, existing, mapped), requested: [] };
    if (userName === undefined) {
      const claim = (settings.claims ?? DEFAULT_JIT_CLAIMS).userName;
      throw ScimError.badRequest(
        'invalidValue',
        `The ID token has no "${claim}" claim, which settings.jit.oidc.claims maps to userName; ` +
          'a User cannot be created without it',
      );
    }
    let user: ResourceResult;
    try {
      user = await this.deps.service.create(ctx, rt, resourceOf(mapped));
    } catch (err) {
      // The same user signing in twice at once: the other request created it.
      if (!(err instanceof ScimError && err.status === 409)) throw err;
      const raced = await this.find(ctx, externalId, userName);
      if (!raced) throw err;
      return { created: false, user: await this.update(ctx, raced, mapped), requested: [] };
    }
    return { created: true, user, requested: await this.requestPulls(tenant) };
  }

  /** The enabled pull flows covering Users are requested: the next pull fills in the rest. */
  private async requestPulls(tenant: string): Promise<string[]> {
    const res = await this.deps.db.query<{ id: string }>(
      `SELECT id FROM sync_flows
        WHERE tenant_id = $1 AND enabled AND direction = 'pull'
          AND EXISTS (SELECT 1 FROM unnest(resource_types) t WHERE lower(t) = 'user')`,
      [tenant],
    );
    const ids = res.rows.map((r) => r.id);
    return ids.length > 0 ? this.deps.request(tenant, ids, 'jit') : [];
  }

  /** The User with this externalId, else with this userName. */
  private async find(
    ctx: RequestContext,
    externalId: string | undefined,
    userName: string | undefined,
  ): Promise<JsonObject | undefined> {
    const rt = this.deps.registry.resourceType('User')!;
    for (const [attr, value] of [
      ['externalId', externalId],
      ['userName', userName],
    ] as const) {
      if (value === undefined) continue;
      // A SCIM filter string is a JSON string: JSON.stringify quotes and escapes the value.
      const res = await this.deps.service.list(ctx, [rt], {
        filter: `${attr} eq ${JSON.stringify(value)}`,
        count: 2,
      });
      const found = res.Resources ?? [];
      if (found.length > 1)
        throw ScimError.conflict(
          `Several Users have ${attr} ${JSON.stringify(value)}; sign-in cannot tell which`,
        );
      if (found.length === 1) return found[0];
    }
    return undefined;
  }

  /** Replaces the mapped attributes that differ (one PATCH); the current User when none differ. */
  private async update(ctx: RequestContext, current: JsonObject, mapped: Mapped[]): Promise<ResourceResult> {
    const rt = this.deps.registry.resourceType('User')!;
    const id = current.id as string;
    const ops = patchOps(current, mapped);
    if (ops.length === 0) return this.deps.service.get(ctx, rt, id);
    const { membersChanged: _, ...res } = await this.deps.service.patch(
      ctx,
      rt,
      id,
      { schemas: [PATCH_OP], Operations: ops },
      undefined,
    );
    return res;
  }

  private keySet(s: JitOidcSettings): JWTVerifyGetKey {
    const cacheKey = s.jwksUri ?? JSON.stringify(s.jwks ?? {});
    let ks = this.keySets.get(cacheKey);
    if (!ks) {
      if (s.jwksUri)
        ks = createRemoteJWKSet(new URL(s.jwksUri), { cooldownDuration: 30_000, timeoutDuration: 5_000 });
      else if (s.jwks) {
        try {
          ks = createLocalJWKSet(s.jwks as Parameters<typeof createLocalJWKSet>[0]);
        } catch {
          throw new ScimError(503, undefined, 'settings.jit.oidc.jwks is not a valid JWKS');
        }
      } else throw ScimError.notFound('settings.jit.oidc has neither jwksUri nor jwks');
      if (this.keySets.size > 1000) this.keySets.clear();
      this.keySets.set(cacheKey, ks);
    }
    return ks;
  }

  private async verify(token: string, s: JitOidcSettings): Promise<JWTPayload> {
    const keySet = this.keySet(s);
    try {
      const { payload } = await jwtVerify(token, keySet, {
        issuer: s.issuer,
        audience: s.audience,
        algorithms: s.algorithms ?? DEFAULT_ALGORITHMS,
        maxTokenAge: s.maxAgeSeconds ?? 600,
        clockTolerance: s.clockToleranceSeconds ?? 30,
        requiredClaims: ['exp', 'iat', 'sub'],
      });
      return payload;
    } catch (err) {
      throw tokenError(err, s);
    }
  }
}

/** A jose failure as the SCIM error the caller gets (never the token, never a 500). */
function tokenError(err: unknown, s: JitOidcSettings): ScimError {
  if (err instanceof ScimError) return err;
  const rejected = (why: string) => new ScimError(401, undefined, `The ID token is rejected: ${why}`);
  if (err instanceof joseErrors.JWTExpired) {
    if (err.claim === 'iat')
      return rejected(`it was issued more than ${s.maxAgeSeconds ?? 600} seconds ago (iat)`);
    return rejected('it has expired (exp)');
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return rejected(`it has no "${err.claim}" claim`);
    switch (err.claim) {
      case 'iss':
        return rejected(`it was not issued by ${s.issuer} (iss)`);
      case 'aud':
        return rejected(`it is not meant for ${[s.audience].flat().join(' or ')} (aud)`);
      case 'nbf':
        return rejected('it is not valid yet (nbf)');
      case 'iat':
        return rejected('it was issued in the future (iat)');
      default:
        return rejected(`its "${err.claim}" claim is invalid`);
    }
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return rejected("its signature does not verify with the identity provider's keys");
  if (err instanceof joseErrors.JWKSNoMatchingKey)
    return rejected("no key of the identity provider's JWKS matches its header (kid, alg)");
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return rejected(
      `its signing algorithm is not accepted (${(s.algorithms ?? DEFAULT_ALGORITHMS).join(', ')})`,
    );
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid)
    return ScimError.badRequest('invalidValue', `The ID token is not a valid signed JWT: ${err.message}`);
  if (err instanceof joseErrors.JOSENotSupported)
    return rejected(`it uses an unsupported algorithm or key type: ${err.message}`);
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || s.jwksUri)
    return new ScimError(
      503,
      undefined,
      `The identity provider's keys could not be read from ${s.jwksUri ?? 'settings'}`,
    );
  return rejected('it does not verify');
}

/** The attributes the token fills, in the order of the mapping. */
function mappedClaims(claims: JWTPayload, mapping: Partial<Record<string, string>>): Mapped[] {
  const out: Mapped[] = [];
  for (const [path, claim] of Object.entries(mapping)) {
    if (claim === undefined) continue;
    const v = claims[claim];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string')
      throw ScimError.badRequest(
        'invalidValue',
        `The ID token's "${claim}" claim (for ${path}) is not a string`,
      );
    out.push({ path, value: v });
  }
  return out;
}

/** `urn:...:User:attr` → [urn, attr]; `a.b` → [undefined, 'a.b']. */
function splitUrn(path: string): [string | undefined, string] {
  if (!path.startsWith('urn:')) return [undefined, path];
  const i = path.lastIndexOf(':');
  return [path.slice(0, i), path.slice(i + 1)];
}

/** A new User from the mapped claims. */
function resourceOf(mapped: Mapped[]): JsonObject {
  const doc: JsonObject = { schemas: [USER_SCHEMA] };
  for (const { path, value } of mapped) {
    const [urn, rest] = splitUrn(path);
    let target = doc;
    if (urn) {
      if (!(doc.schemas as string[]).includes(urn)) (doc.schemas as string[]).push(urn);
      target = isJsonObject(doc[urn]) ? (doc[urn] as JsonObject) : (doc[urn] = {});
    }
    const multi = /^(\w+)\[0\]\.(\w+)$/.exec(rest);
    if (multi) target[multi[1]] = [{ [multi[2]]: value }];
    else if (rest.includes('.')) {
      const [a, b] = rest.split('.');
      const sub = isJsonObject(target[a]) ? (target[a] as JsonObject) : (target[a] = {});
      sub[b] = value;
    } else target[rest] = value;
  }
  return doc;
}

/** PATCH operations setting the mapped attributes that differ from `current`. */
function patchOps(current: JsonObject, mapped: Mapped[]): JsonObject[] {
  const ops: JsonObject[] = [];
  const lower = (o: JsonObject | undefined, k: string): JsonValue | undefined => {
    if (!o) return undefined;
    const key = Object.keys(o).find((x) => x.toLowerCase() === k.toLowerCase());
    return key === undefined ? undefined : o[key];
  };
  for (const { path, value } of mapped) {
    const [urn, rest] = splitUrn(path);
    const base = urn ? lower(current, urn) : current;
    const holder = isJsonObject(base) ? base : undefined;
    const multi = /^(\w+)\[0\]\.(\w+)$/.exec(rest);
    if (multi) {
      const arr = lower(holder, multi[1]);
      const list = Array.isArray(arr) ? arr.filter(isJsonObject) : [];
      if (list[0]?.[multi[2]] === value) continue;
      const first = { ...(list[0] ?? {}), [multi[2]]: value };
      ops.push({
        op: 'replace',
        path: urn ? `${urn}:${multi[1]}` : multi[1],
        value: [first, ...list.slice(1)],
      });
      continue;
    }
    let now: JsonValue | undefined;
    if (rest.includes('.')) {
      const [a, b] = rest.split('.');
      const sub = lower(holder, a);
      now = isJsonObject(sub) ? lower(sub, b) : undefined;
    } else now = lower(holder, rest);
    if (now === value) continue;
    // An externalId set by someone else (a pull's source) is theirs to keep.
    if (!urn && rest === 'externalId' && typeof now === 'string' && now !== '') continue;
    ops.push({ op: 'replace', path, value });
  }
  return ops;
}
