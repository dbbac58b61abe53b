/**
 * Bearer-token authentication. For now the one credential is SCIMD_ADMIN_TOKEN (full rights on
 * the default tenant); it is compared by SHA-256 digest in constant time, so neither its length
 * nor a matching prefix leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ScimError } from '../scim/errors.ts';

export interface Principal {
  tenant: string;
  clientId: string;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class Authenticator {
  private readonly adminDigest?: Buffer;

  constructor(adminToken: string | undefined) {
    if (adminToken) this.adminDigest = digest(adminToken);
  }

  authenticate(authorization: string | undefined): Principal {
    if (!authorization)
      throw new ScimError(401, undefined, 'Authentication required: send Authorization: Bearer <token>');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) throw new ScimError(401, undefined, 'Unsupported authorization scheme; use Bearer');
    if (this.adminDigest && timingSafeEqual(digest(m[1]), this.adminDigest)) {
      return { tenant: 'default', clientId: 'admin' };
    }
    throw new ScimError(401, undefined, 'Invalid or expired bearer token');
  }
}
