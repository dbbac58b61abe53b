/**
 * Turns a request's credential into a Principal of the tenant named by the URL. Credentials:
 *  - SCIMD_ADMIN_TOKEN: bootstrap, admin of the default tenant;
 *  - an opaque token issued by scimd (digest lookup; expiry and revocation checked);
 *  - a JWT access token of the tenant's authorization server (tenant settings `jwt`);
 *  - a verified TLS client certificate mapped to a client by SHA-256 fingerprint or subject.
 * A credential of another tenant is refused exactly like an unknown one (401), so tenants cannot
 * probe each other.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ScimError } from '../scim/errors.ts';
import type { Database } from '../store/db.ts';
import { TenancyRepository, type ClientRow } from '../store/tenancy.ts';
import type { TenantDirectory } from '../tenancy/directory.ts';
import { JwtVerifier } from './jwt.ts';
import { DEFAULT_TENANT, normalizeScopes, type Principal } from './scopes.ts';
import { looksLikeJwt, tokenDigest } from './tokens.ts';

export interface PeerCertificate {
  /** SHA-256 fingerprint, colon-separated upper-case hex as node prints it. */
  fingerprint256: string;
  /** Subject distinguished name, e.g. "CN=device-manager,O=Example". */
  subject: string;
}

export interface Credentials {
  authorization?: string;
  /** Set only when the TLS layer verified the certificate against the configured client CA. */
  peerCertificate?: PeerCertificate;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function normalizeFingerprint(fp: string): string {
  return fp.replace(/[^0-9a-f]/gi, '').toLowerCase();
}

export class Authenticator {
  private readonly bootstrapDigest?: Buffer;
  private readonly repo = new TenancyRepository();
  private readonly jwt = new JwtVerifier();
  private readonly lastUseWritten = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly tenants: TenantDirectory,
    bootstrapToken: string | undefined,
  ) {
    if (bootstrapToken) this.bootstrapDigest = sha256(bootstrapToken);
  }

  async authenticate(tenantId: string, creds: Credentials): Promise<Principal> {
    const auth = creds.authorization;
    if (auth) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m) throw new ScimError(401, undefined, 'Unsupported authorization scheme; use Bearer');
      return this.bearer(tenantId, m[1]);
    }
    if (creds.peerCertificate) return this.certificate(tenantId, creds.peerCertificate);
    throw new ScimError(401, undefined, 'Authentication required: send Authorization: Bearer <token>');
  }

  private async bearer(tenantId: string, token: string): Promise<Principal> {
    if (this.bootstrapDigest && timingSafeEqual(sha256(token), this.bootstrapDigest)) {
      if (tenantId !== DEFAULT_TENANT) throw invalid();
      return {
        tenant: DEFAULT_TENANT,
        clientId: 'bootstrap',
        scopes: new Set(['admin']),
        method: 'bootstrap',
      };
    }
    if (looksLikeJwt(token)) return this.jwtToken(tenantId, token);
    const row = await this.repo.tokenByHash(this.db, tokenDigest(token));
    if (!row || row.tenant_id !== tenantId || row.revoked_at) throw invalid();
    if (row.expires_at && new Date(row.expires_at).getTime() <= Date.now()) throw invalid();
    this.noteUse(row.id);
    return principalOf(row.client, 'token');
  }

  /** Records when a token was last used, at most once a minute per token and node (not on every request). */
  private noteUse(tokenId: string): void {
    const now = Date.now();
    const last = this.lastUseWritten.get(tokenId) ?? 0;
    if (now - last < 60_000) return;
    if (this.lastUseWritten.size > 100_000) this.lastUseWritten.clear();
    this.lastUseWritten.set(tokenId, now);
    this.repo.touchToken(this.db, tokenId, new Date(now)).catch(() => this.lastUseWritten.delete(tokenId));
  }

  private async jwtToken(tenantId: string, token: string): Promise<Principal> {
    const tenant = await this.tenants.get(tenantId);
    if (!tenant?.settings.jwt) throw invalid();
    const verified = await this.jwt.verify(token, tenant.settings.jwt);
    const client = await this.repo.clientBy(this.db, tenantId, 'jwt_subject', verified.subject);
    if (!client)
      throw new ScimError(401, undefined, 'Invalid access token: no client of this tenant matches it');
    const principal = principalOf(client, 'jwt');
    // A token grants at most what its client holds, and no more than its own scope claim.
    if (verified.scopes) {
      const granted = normalizeScopes(verified.scopes);
      principal.scopes = new Set([...principal.scopes].filter((s) => granted.has(s)));
    }
    return principal;
  }

  private async certificate(tenantId: string, cert: PeerCertificate): Promise<Principal> {
    const client =
      (await this.repo.clientBy(
        this.db,
        tenantId,
        'cert_fingerprint',
        normalizeFingerprint(cert.fingerprint256),
      )) ?? (await this.repo.clientBy(this.db, tenantId, 'cert_subject', cert.subject));
    if (!client)
      throw new ScimError(401, undefined, 'The client certificate is not mapped to a client of this tenant');
    return principalOf(client, 'mtls');
  }
}

function invalid(): ScimError {
  return new ScimError(401, undefined, 'Invalid or expired bearer token');
}

function principalOf(client: ClientRow, method: Principal['method']): Principal {
  const p: Principal = {
    tenant: client.tenant_id,
    clientId: client.id,
    scopes: normalizeScopes(client.scopes),
    method,
  };
  if (client.user_id) p.userId = client.user_id;
  if (client.endpoint_app_id) p.endpointAppId = client.endpoint_app_id;
  if (client.rate_limit) p.rateLimit = client.rate_limit as unknown as Principal['rateLimit'];
  return p;
}
