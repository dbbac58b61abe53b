/**
 * Authorization: what a principal may do. Scopes are strings held by a client:
 *   admin              everything in its tenant, including the tenant's admin API; on the default
 *                      tenant also the node operator (create and delete tenants)
 *   scim:read          read every resource type       scim:write   write every resource type
 *   <Type>:read        read one type (e.g. User:read)  <Type>:write write one type (e.g. Device:write)
 *   devices:managed    only the devices the client manages (the device work applies it)
 *   devices:secrets    may read onboarding secrets of devices (the device work applies it)
 * Names compare case-insensitively.
 */
import { ScimError } from '../scim/errors.ts';

export const DEFAULT_TENANT = 'default';

export interface Principal {
  tenant: string;
  clientId: string;
  scopes: Set<string>;
  /** The User resource this credential acts as (for /Me). */
  userId?: string;
  /** How the principal authenticated: for logs and the audit trail. */
  method: 'bootstrap' | 'token' | 'jwt' | 'mtls';
  /** The client's own request rate limit, if it has one. */
  rateLimit?: { max: number; windowSeconds: number };
}

export function normalizeScopes(scopes: Iterable<string>): Set<string> {
  return new Set([...scopes].map((s) => s.trim().toLowerCase()).filter(Boolean));
}

export const KNOWN_SCOPE =
  /^(admin|scim:(read|write)|[A-Za-z][\w-]*:(read|write)|devices:(managed|secrets))$/i;

export function isAdmin(p: Principal): boolean {
  return p.scopes.has('admin');
}

/** The node operator: an admin of the default tenant. */
export function isOperator(p: Principal): boolean {
  return p.tenant === DEFAULT_TENANT && isAdmin(p);
}

export function canRead(p: Principal, resourceType: string): boolean {
  return isAdmin(p) || p.scopes.has('scim:read') || p.scopes.has(`${resourceType.toLowerCase()}:read`);
}

export function canWrite(p: Principal, resourceType: string): boolean {
  return isAdmin(p) || p.scopes.has('scim:write') || p.scopes.has(`${resourceType.toLowerCase()}:write`);
}

export function requireRead(p: Principal, resourceType: string): void {
  if (!canRead(p, resourceType)) {
    throw new ScimError(
      403,
      undefined,
      `This client may not read ${resourceType} resources (needs scope ${resourceType}:read or scim:read)`,
    );
  }
}

export function requireWrite(p: Principal, resourceType: string): void {
  if (!canWrite(p, resourceType)) {
    throw new ScimError(
      403,
      undefined,
      `This client may not write ${resourceType} resources (needs scope ${resourceType}:write or scim:write)`,
    );
  }
}

export function requireAdmin(p: Principal, tenant: string): void {
  if (isOperator(p)) return;
  if (p.tenant === tenant && isAdmin(p)) return;
  throw new ScimError(
    403,
    undefined,
    `This credential may not administer tenant ${tenant} (needs scope admin)`,
  );
}
