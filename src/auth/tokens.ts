/**
 * Opaque bearer tokens: 256 random bits, shown to the caller once, stored only as a SHA-256
 * digest. A lookup by digest needs no secret comparison in JavaScript; the digest of the presented
 * token is what the index is searched for.
 */
import { createHash, randomBytes } from 'node:crypto';

export const TOKEN_PREFIX = 'scimd_';

export function newTokenSecret(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function tokenDigest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A JWS compact serialisation has three base64url parts; an opaque token has none of its dots. */
export function looksLikeJwt(token: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);
}
