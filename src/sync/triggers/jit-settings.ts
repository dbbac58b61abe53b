/**
 * Tenant settings of SSO just-in-time provisioning (`settings.jit`, see jit.ts and
 * docs/sync-triggers.md). Declared here and included in the tenant settings schema
 * (src/tenancy/settings.ts), which the admin API and the CLI validate against.
 */

export const ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/**
 * The User attributes an ID token claim can fill (SCIM paths). `emails[0].value` and
 * `phoneNumbers[0].value` are the first value of the multi-valued attribute.
 */
export const JIT_ATTRIBUTE_PATHS = [
  'userName',
  'externalId',
  'displayName',
  'nickName',
  'title',
  'userType',
  'locale',
  'preferredLanguage',
  'timezone',
  'profileUrl',
  'name.formatted',
  'name.givenName',
  'name.familyName',
  'name.middleName',
  'name.honorificPrefix',
  'name.honorificSuffix',
  'emails[0].value',
  'phoneNumbers[0].value',
  `${ENTERPRISE_USER}:employeeNumber`,
  `${ENTERPRISE_USER}:costCenter`,
  `${ENTERPRISE_USER}:organization`,
  `${ENTERPRISE_USER}:division`,
  `${ENTERPRISE_USER}:department`,
] as const;

export type JitAttributePath = (typeof JIT_ATTRIBUTE_PATHS)[number];

export interface JitOidcSettings {
  /** Expected `iss` of the ID tokens. */
  issuer: string;
  /** Expected `aud`: the client id the login front-end has at the identity provider (one of). */
  audience: string | string[];
  /** Where the identity provider publishes its keys... */
  jwksUri?: string;
  /** ...or the keys themselves (a JWKS). */
  jwks?: { keys: Record<string, unknown>[] };
  /** Accepted signing algorithms. Default: RS256, RS384, RS512, PS256, ES256, ES384, EdDSA. */
  algorithms?: string[];
  /** User attribute (SCIM path) → ID token claim. Default: DEFAULT_JIT_CLAIMS. userName is required. */
  claims?: Partial<Record<JitAttributePath, string>>;
  /** The resource type created (only User). */
  resourceType?: 'User';
  /** Oldest `iat` accepted, in seconds (default 600): an ID token is exchanged right after sign-in. */
  maxAgeSeconds?: number;
  /** Clock skew allowed on exp, nbf and iat, in seconds (default 30). */
  clockToleranceSeconds?: number;
}

export interface JitSettings {
  oidc?: JitOidcSettings;
}

export const DEFAULT_JIT_CLAIMS: Partial<Record<JitAttributePath, string>> = {
  userName: 'preferred_username',
  externalId: 'sub',
  displayName: 'name',
  'name.givenName': 'given_name',
  'name.familyName': 'family_name',
  'emails[0].value': 'email',
};

const claimName = { type: 'string', minLength: 1, maxLength: 200 } as const;

export const JIT_SETTINGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    oidc: {
      type: 'object',
      additionalProperties: false,
      required: ['issuer', 'audience'],
      anyOf: [
        { type: 'object', required: ['jwksUri'] },
        { type: 'object', required: ['jwks'] },
      ],
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
        algorithms: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
        claims: {
          type: 'object',
          additionalProperties: false,
          required: ['userName'],
          properties: Object.fromEntries(JIT_ATTRIBUTE_PATHS.map((p) => [p, claimName])),
        },
        resourceType: { type: 'string', enum: ['User'] },
        maxAgeSeconds: { type: 'integer', minimum: 1 },
        clockToleranceSeconds: { type: 'integer', minimum: 0 },
      },
    },
  },
} as const;
