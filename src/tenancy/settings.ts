/**
 * Per-tenant settings, stored as JSON on the tenant row and validated by the admin API's JSON
 * schema (TENANT_SETTINGS_SCHEMA). Anything unset falls back to the node's configuration.
 */
import type { LimitsConfig } from '../config.ts';
import { DEVICE_SETTINGS_SCHEMA, type DeviceSettings } from '../devices/behaviour.ts';
import { JIT_SETTINGS_SCHEMA, type JitSettings } from '../sync/triggers/jit-settings.ts';

export interface RateLimitSettings {
  /** Requests allowed per client in each window. */
  max: number;
  windowSeconds: number;
}

export interface JwtSettings {
  /** Expected `iss`. */
  issuer: string;
  /** Expected `aud` (one of). */
  audience: string | string[];
  /** Where the authorization server publishes its keys... */
  jwksUri?: string;
  /** ...or the keys themselves (a JWKS). */
  jwks?: { keys: Record<string, unknown>[] };
  /** Claim naming the client (matched against a client's jwtSubject). Default: client_id, then azp, then sub. */
  clientClaim?: string;
  /** Claim with the granted scopes (space-separated string or array). Default: scope, then scp. */
  scopeClaim?: string;
  /** Accepted signing algorithms. Default: RS256, ES256, PS256, EdDSA. */
  algorithms?: string[];
}

export interface TenantSettings {
  /** Resource types served; unset = every registered type. */
  resourceTypes?: string[];
  limits?: Partial<LimitsConfig>;
  tokens?: {
    /** Lifetime of issued opaque tokens when the request names none; unset = no expiry. */
    defaultLifetimeSeconds?: number;
    /** Longest lifetime a token may be issued with. */
    maxLifetimeSeconds?: number;
  };
  /** Default request rate limit of the tenant's clients (a client may have its own). */
  rateLimit?: RateLimitSettings;
  jwt?: JwtSettings;
  /** Device model: the enterprise gateway's endpoints, set by the server on devices that use it. */
  devices?: DeviceSettings;
  /**
   * `Prefer: respond-async` (RFC 9967 §2.5): "request" (default) queues the write and answers 202;
   * "none" answers every request synchronously. Advertised as securityEvents.asyncRequest.
   */
  asyncRequests?: 'request' | 'none';
  /** SSO just-in-time provisioning (src/sync/triggers/jit.ts, docs/sync-triggers.md). */
  jit?: JitSettings;
}

const positiveInt = { type: 'integer', minimum: 1 } as const;

export const RATE_LIMIT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['max', 'windowSeconds'],
  properties: { max: positiveInt, windowSeconds: positiveInt },
} as const;

export const TENANT_SETTINGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    resourceTypes: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        bulkMaxOperations: positiveInt,
        bulkMaxPayloadSize: positiveInt,
        maxBodySize: positiveInt,
        filterMaxResults: positiveInt,
        defaultPageSize: positiveInt,
        maxPageSize: positiveInt,
        cursorTimeout: positiveInt,
        changeRetentionDays: { type: 'number', exclusiveMinimum: 0 },
      },
    },
    tokens: {
      type: 'object',
      additionalProperties: false,
      properties: { defaultLifetimeSeconds: positiveInt, maxLifetimeSeconds: positiveInt },
    },
    rateLimit: RATE_LIMIT_SCHEMA,
    devices: DEVICE_SETTINGS_SCHEMA,
    asyncRequests: { type: 'string', enum: ['request', 'none'] },
    jit: JIT_SETTINGS_SCHEMA,
    jwt: {
      type: 'object',
      additionalProperties: false,
      required: ['issuer', 'audience'],
      properties: {
        issuer: { type: 'string', minLength: 1 },
        audience: {
          anyOf: [
            { type: 'string', minLength: 1 },
            { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
          ],
        },
        jwksUri: { type: 'string', pattern: '^https?://' },
        jwks: {
          type: 'object',
          required: ['keys'],
          properties: { keys: { type: 'array', items: { type: 'object' } } },
        },
        clientClaim: { type: 'string', minLength: 1 },
        scopeClaim: { type: 'string', minLength: 1 },
        algorithms: { type: 'array', items: { type: 'string' }, minItems: 1 },
      },
    },
  },
} as const;

/** The effective limits of a tenant: its own settings over the node's. */
export function effectiveLimits(node: LimitsConfig, settings: TenantSettings): LimitsConfig {
  const own = settings.limits ?? {};
  const merged: LimitsConfig = { ...node };
  for (const key of Object.keys(node) as (keyof LimitsConfig)[]) {
    const v = own[key];
    if (typeof v === 'number') merged[key] = v;
  }
  // The node refuses larger bodies before it knows the tenant: a tenant can only lower these.
  merged.maxBodySize = Math.min(merged.maxBodySize, node.maxBodySize);
  merged.bulkMaxPayloadSize = Math.min(merged.bulkMaxPayloadSize, node.bulkMaxPayloadSize);
  // A tenant's maxPageSize may be below the node's defaultPageSize: the default page must fit
  // (both are advertised in /ServiceProviderConfig).
  merged.defaultPageSize = Math.min(merged.defaultPageSize, merged.maxPageSize, merged.filterMaxResults);
  return merged;
}
