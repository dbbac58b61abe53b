/**
 * Authorization: what a principal may do. Scopes are strings held by a client:
 *   admin              everything in its tenant, including the tenant's admin API; on the default
 *                      tenant also the node operator (create and delete tenants)
 *   scim:read          read every resource type       scim:write   write every resource type
 *   <Type>:read        read one type (e.g. User:read)  <Type>:write write one type (e.g. Device:write)
 *   devices:managed    only the devices the client created or whose applications name its EndpointApp
 *   devices:secrets    may read onboarding secrets of devices (pairing keys, bootstrap keys, vouchers)
 *   gateway            may ask which EndpointApp a token or certificate belongs to (enterprise gateway)
 *   events:poll        may poll the event receivers (RFC 8936) that name this client
 *   events:push        may push SETs (RFC 8935) to this tenant's event receiver endpoints
 *   jit                may sign users in by just-in-time provisioning (POST /admin/v1/tenants/{t}/jit/oidc):
 *                      a login service's only right
 *   register           may register its own SCIM endpoint for the manufacturer's registry push
 *                      (POST /admin/v1/tenants/{t}/registrations): the customer is the client's id
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
  /** The EndpointApp this client acts for (device scoping). */
  endpointAppId?: string;
  /** The client's own request rate limit, if it has one. */
  rateLimit?: { max: number; windowSeconds: number };
}

export function normalizeScopes(scopes: Iterable<string>): Set<string> {
  return new Set([...scopes].map((s) => s.trim().toLowerCase()).filter(Boolean));
}

export const KNOWN_SCOPE =
  /^(admin|gateway|scim:(read|write)|[A-Za-z][\w-]*:(read|write)|devices:(managed|secrets)|events:(poll|push)|jit|register)$/i;

/** Limited to the devices it manages (scope devices:managed), unless it is an admin. */
export function isManagedOnly(p: Principal): boolean {
  return p.scopes.has('devices:managed') && !isAdmin(p);
}

/** May read onboarding secrets (scope devices:secrets, or admin). */
export function mayReadSecrets(p: Principal): boolean {
  return isAdmin(p) || p.scopes.has('devices:secrets');
}

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
