/**
 * The admin operations behind /admin/v1 and the CLI: tenants, clients, tokens and the audit
 * trail. Authorization is the caller's (the HTTP layer checks the principal; the CLI has direct
 * access to the store). Bodies arrive validated against the JSON schemas in ./schemas.ts.
 */
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { normalizeFingerprint, type Credentials } from '../auth/authenticator.ts';
import { DEFAULT_TENANT, KNOWN_SCOPE } from '../auth/scopes.ts';
import { looksLikeJwt, newTokenSecret, tokenDigest } from '../auth/tokens.ts';
import { ScimError } from '../scim/errors.ts';
import type { SchemaRegistry } from '../scim/schema/registry.ts';
import type { Database } from '../store/db.ts';
import { TenancyRepository, type ChangeRow, type ClientRow, type TokenRow } from '../store/tenancy.ts';
import { toTenant, type Tenant, type TenantDirectory } from '../tenancy/directory.ts';
import type { RateLimitSettings, TenantSettings } from '../tenancy/settings.ts';

export const TENANT_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface ClientView {
  id: string;
  tenant: string;
  name: string;
  scopes: string[];
  userId?: string;
  endpointAppId?: string;
  jwtSubject?: string;
  certSubject?: string;
  certFingerprint?: string;
  rateLimit?: RateLimitSettings;
  created: string;
}

export interface TokenView {
  id: string;
  tenant: string;
  client: string;
  description?: string;
  created: string;
  expiresAt?: string;
  revokedAt?: string;
  lastUsed?: string;
}

export interface TenantView {
  id: string;
  name: string;
  settings: TenantSettings;
  created: string;
}

export interface NewClient {
  id?: string;
  name: string;
  scopes: string[];
  userId?: string;
  /** The EndpointApp this client acts for: with devices:managed it reaches the devices naming that app. */
  endpointAppId?: string;
  jwtSubject?: string;
  certSubject?: string;
  certFingerprint?: string;
  rateLimit?: RateLimitSettings;
}

export interface AuditView {
  seq: number;
  at: string;
  client?: string;
  operation: string;
  resourceType: string;
  resourceId: string;
  version?: string;
}

function tenantView(t: Tenant): TenantView {
  return { id: t.id, name: t.name, settings: t.settings, created: new Date(t.created).toISOString() };
}

function clientView(c: ClientRow): ClientView {
  const v: ClientView = {
    id: c.id,
    tenant: c.tenant_id,
    name: c.name,
    scopes: c.scopes,
    created: new Date(c.created).toISOString(),
  };
  if (c.user_id) v.userId = c.user_id;
  if (c.endpoint_app_id) v.endpointAppId = c.endpoint_app_id;
  if (c.jwt_subject) v.jwtSubject = c.jwt_subject;
  if (c.cert_subject) v.certSubject = c.cert_subject;
  if (c.cert_fingerprint) v.certFingerprint = c.cert_fingerprint;
  if (c.rate_limit) v.rateLimit = c.rate_limit as unknown as RateLimitSettings;
  return v;
}

function tokenView(t: TokenRow): TokenView {
  const v: TokenView = {
    id: t.id,
    tenant: t.tenant_id,
    client: t.client_id,
    created: new Date(t.created).toISOString(),
  };
  if (t.description) v.description = t.description;
  if (t.expires_at) v.expiresAt = new Date(t.expires_at).toISOString();
  if (t.revoked_at) v.revokedAt = new Date(t.revoked_at).toISOString();
  if (t.last_used) v.lastUsed = new Date(t.last_used).toISOString();
  return v;
}

function auditView(c: ChangeRow): AuditView {
  const v: AuditView = {
    seq: c.seq,
    at: new Date(c.at).toISOString(),
    operation: c.operation,
    resourceType: c.resource_type,
    resourceId: c.resource_id,
  };
  if (c.client_id) v.client = c.client_id;
  if (c.version !== null) v.version = `W/"${c.version}"`;
  return v;
}

const isUniqueViolation = (err: unknown) => (err as { code?: string } | null)?.code === '23505';

export class AdminService {
  private readonly repo = new TenancyRepository();

  constructor(
    private readonly db: Database,
    private readonly registry: SchemaRegistry,
    private readonly directory: TenantDirectory,
  ) {}

  // ---- tenants ----

  async listTenants(): Promise<TenantView[]> {
    return (await this.repo.tenants(this.db)).map((r) => tenantView(toTenant(r)));
  }

  async getTenant(id: string): Promise<TenantView> {
    const row = await this.repo.tenant(this.db, id);
    if (!row) throw ScimError.notFound(`Tenant ${id} not found`);
    return tenantView(toTenant(row));
  }

  async createTenant(input: { id: string; name?: string; settings?: TenantSettings }): Promise<TenantView> {
    if (!TENANT_ID.test(input.id)) {
      throw ScimError.badRequest(
        'invalidValue',
        'Tenant id: 1-63 lower-case letters, digits and dashes, not starting or ending with a dash',
      );
    }
    const settings = input.settings ?? {};
    this.checkSettings(settings);
    try {
      const row = await this.repo.insertTenant(this.db, input.id, input.name ?? input.id, settings);
      this.directory.invalidate(input.id);
      return tenantView(toTenant(row));
    } catch (err) {
      if (isUniqueViolation(err)) throw ScimError.conflict(`Tenant ${input.id} already exists`);
      throw err;
    }
  }

  /** Changes the name and/or replaces the settings of a tenant. */
  async updateTenant(id: string, input: { name?: string; settings?: TenantSettings }): Promise<TenantView> {
    const current = await this.getTenant(id);
    const settings = input.settings ?? current.settings;
    this.checkSettings(settings);
    const row = await this.repo.updateTenant(this.db, id, input.name ?? current.name, settings);
    this.directory.invalidate(id);
    if (!row) throw ScimError.notFound(`Tenant ${id} not found`);
    return tenantView(toTenant(row));
  }

  async deleteTenant(id: string): Promise<void> {
    if (id === DEFAULT_TENANT) throw new ScimError(409, undefined, 'The default tenant cannot be deleted');
    const deleted = await this.db.transaction((tx) => this.repo.deleteTenant(tx, id));
    this.directory.invalidate(id);
    if (!deleted) throw ScimError.notFound(`Tenant ${id} not found`);
  }

  private checkSettings(settings: TenantSettings): void {
    for (const name of settings.resourceTypes ?? []) {
      if (!this.registry.resourceType(name)) {
        throw ScimError.badRequest(
          'invalidValue',
          `Unknown resource type "${name}" in settings.resourceTypes`,
        );
      }
    }
    const l = settings.limits;
    if (l?.defaultPageSize && l.maxPageSize && l.defaultPageSize > l.maxPageSize) {
      throw ScimError.badRequest('invalidValue', 'settings.limits.defaultPageSize cannot exceed maxPageSize');
    }
    const t = settings.tokens;
    if (
      t?.defaultLifetimeSeconds &&
      t.maxLifetimeSeconds &&
      t.defaultLifetimeSeconds > t.maxLifetimeSeconds
    ) {
      throw ScimError.badRequest(
        'invalidValue',
        'settings.tokens.defaultLifetimeSeconds cannot exceed maxLifetimeSeconds',
      );
    }
    if (settings.jwt && !settings.jwt.jwksUri && !settings.jwt.jwks) {
      throw ScimError.badRequest('invalidValue', 'settings.jwt needs jwksUri or jwks');
    }
  }

  // ---- credentials ----

  /**
   * The tenants a credential claims to belong to, unverified: its token row, the tenants trusting
   * its JWT issuer, or the tenants mapping its certificate. The caller authenticates it in each,
   * so that a valid credential of another tenant can be told 403 rather than 401 on the admin API.
   */
  async credentialTenants(creds: Credentials): Promise<string[]> {
    const bearer = creds.authorization ? /^Bearer\s+(\S+)\s*$/i.exec(creds.authorization)?.[1] : undefined;
    if (bearer && looksLikeJwt(bearer)) {
      let issuer: unknown;
      try {
        issuer = decodeJwt(bearer).iss;
      } catch {
        return [];
      }
      return typeof issuer === 'string' ? this.repo.tenantsByJwtIssuer(this.db, issuer) : [];
    }
    if (bearer) {
      const row = await this.repo.tokenByHash(this.db, tokenDigest(bearer));
      return row ? [row.tenant_id] : [];
    }
    if (creds.authorization || !creds.peerCertificate) return [];
    return this.repo.tenantsByCertificate(
      this.db,
      normalizeFingerprint(creds.peerCertificate.fingerprint256),
      creds.peerCertificate.subject,
    );
  }

  // ---- clients ----

  async listClients(tenant: string): Promise<ClientView[]> {
    await this.getTenant(tenant);
    return (await this.repo.clients(this.db, tenant)).map(clientView);
  }

  async getClient(tenant: string, id: string): Promise<ClientView> {
    const row = await this.repo.client(this.db, tenant, id);
    if (!row) throw ScimError.notFound(`Client ${id} not found in tenant ${tenant}`);
    return clientView(row);
  }

  async createClient(tenant: string, input: NewClient): Promise<ClientView> {
    await this.getTenant(tenant);
    const id = input.id ?? randomUUID();
    if (!CLIENT_ID.test(id))
      throw ScimError.badRequest('invalidValue', 'Client id: 1-128 letters, digits, ".", "_" or "-"');
    const bad = input.scopes.filter((s) => !KNOWN_SCOPE.test(s));
    if (bad.length) throw ScimError.badRequest('invalidValue', `Unknown scope(s): ${bad.join(', ')}`);
    if (input.userId) await this.requireResource(tenant, input.userId, 'User', 'userId');
    if (input.endpointAppId)
      await this.requireResource(tenant, input.endpointAppId, 'EndpointApp', 'endpointAppId');
    try {
      const row = await this.repo.insertClient(this.db, {
        tenant_id: tenant,
        id,
        name: input.name,
        scopes: [...new Set(input.scopes)],
        user_id: input.userId ?? null,
        jwt_subject: input.jwtSubject ?? null,
        cert_subject: input.certSubject ?? null,
        cert_fingerprint: input.certFingerprint ? normalizeFingerprint(input.certFingerprint) : null,
        rate_limit: (input.rateLimit as unknown as Record<string, unknown>) ?? null,
        endpoint_app_id: input.endpointAppId ?? null,
      });
      return clientView(row);
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw ScimError.conflict(
          `A client with this id, jwtSubject or certificate fingerprint already exists in tenant ${tenant}`,
        );
      }
      throw err;
    }
  }

  private async requireResource(
    tenant: string,
    id: string,
    resourceType: string,
    field: string,
  ): Promise<void> {
    const found = await this.db.query(
      'SELECT 1 FROM resources WHERE tenant_id = $1 AND id = $2 AND resource_type = $3',
      [tenant, id, resourceType],
    );
    if (found.rows.length === 0) {
      throw ScimError.badRequest(
        'invalidValue',
        `${field} ${id} is not a ${resourceType} of tenant ${tenant}`,
      );
    }
  }

  async deleteClient(tenant: string, id: string): Promise<void> {
    if (!(await this.repo.deleteClient(this.db, tenant, id)))
      throw ScimError.notFound(`Client ${id} not found in tenant ${tenant}`);
  }

  // ---- tokens ----

  /** Issues an opaque token; the secret is in this answer only. */
  async issueToken(
    tenant: string,
    client: string,
    input: { expiresInSeconds?: number; description?: string } = {},
  ): Promise<TokenView & { token: string }> {
    const t = await this.getTenant(tenant);
    await this.getClient(tenant, client);
    const policy = t.settings.tokens ?? {};
    const lifetime = input.expiresInSeconds ?? policy.defaultLifetimeSeconds;
    if (
      lifetime !== undefined &&
      policy.maxLifetimeSeconds !== undefined &&
      lifetime > policy.maxLifetimeSeconds
    ) {
      throw ScimError.badRequest(
        'invalidValue',
        `expiresInSeconds exceeds this tenant's maximum of ${policy.maxLifetimeSeconds}`,
      );
    }
    if (lifetime === undefined && policy.maxLifetimeSeconds !== undefined) {
      throw ScimError.badRequest(
        'invalidValue',
        `Tokens of this tenant must expire (at most ${policy.maxLifetimeSeconds} s)`,
      );
    }
    const secret = newTokenSecret();
    // One clock for both: expiresAt - created is exactly the lifetime asked for.
    const created = new Date();
    const row = await this.repo.insertToken(this.db, {
      id: randomUUID(),
      tenant,
      client,
      hash: tokenDigest(secret),
      description: input.description,
      created,
      expiresAt: lifetime !== undefined ? new Date(created.getTime() + lifetime * 1000) : undefined,
    });
    return { ...tokenView(row), token: secret };
  }

  async listTokens(tenant: string, client?: string): Promise<TokenView[]> {
    await this.getTenant(tenant);
    return (await this.repo.tokens(this.db, tenant, client)).map(tokenView);
  }

  async revokeToken(tenant: string, id: string): Promise<TokenView> {
    const row = await this.repo.revokeToken(this.db, tenant, id, new Date());
    if (!row) throw ScimError.notFound(`Token ${id} not found in tenant ${tenant}`);
    return tokenView(row);
  }

  // ---- audit ----

  async audit(
    tenant: string,
    f: {
      client?: string;
      operation?: string;
      resourceType?: string;
      resourceId?: string;
      since?: Date;
      until?: Date;
      startIndex: number;
      count: number;
    },
  ): Promise<{ totalResults: number; startIndex: number; itemsPerPage: number; entries: AuditView[] }> {
    await this.getTenant(tenant);
    const { rows, total } = await this.repo.changes(this.db, tenant, {
      clientId: f.client,
      operation: f.operation,
      resourceType: f.resourceType,
      resourceId: f.resourceId,
      since: f.since,
      until: f.until,
      limit: f.count,
      offset: f.startIndex - 1,
    });
    return {
      totalResults: total,
      startIndex: f.startIndex,
      itemsPerPage: rows.length,
      entries: rows.map(auditView),
    };
  }
}
