/**
 * RFC 9865 cursors: an opaque, tamper-evident token for a keyset position. The payload names the
 * tenant and a hash of the query, so a cursor replayed by another tenant or with another filter is
 * refused (`invalidCursor`), and carries its issue time for `expiredCursor`. Characters are
 * base64url and '.', all RFC 3986 unreserved.
 */
import { createHash } from 'node:crypto';
import { ScimError } from '../scim/errors.ts';
import type { KeysetPosition } from '../store/resources.ts';
import { SignedTokenCodec } from './signed-token.ts';

interface CursorPayload {
  /** tenant */
  t: string;
  /** hash of the query (types, filter, sort) */
  q: string;
  /** count of the first request */
  c: number;
  /** sort key (text) or null */
  k: string | null;
  /** id at the position */
  i: string;
  /** 1 = page before the position */
  b?: 1;
  /** issued at, epoch seconds */
  e: number;
}

export function queryHash(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);
}

export class CursorCodec {
  private readonly tokens: SignedTokenCodec;

  constructor(secret: string) {
    this.tokens = new SignedTokenCodec(secret);
  }

  encode(tenant: string, query: string, count: number, pos: KeysetPosition): string {
    const payload: CursorPayload = {
      t: tenant,
      q: query,
      c: count,
      k: pos.key,
      i: pos.id,
      e: Math.floor(Date.now() / 1000),
    };
    if (pos.before) payload.b = 1;
    return this.tokens.encode(payload);
  }

  /** Checks a cursor against the current request; returns its position or throws the RFC 9865 error. */
  decode(
    cursor: string,
    tenant: string,
    query: string,
    count: number,
    timeoutSeconds: number,
  ): KeysetPosition {
    const invalid = ScimError.badRequest(
      'invalidCursor',
      'The cursor is malformed, forged or does not belong to this query',
    );
    const payload = this.tokens.decode(cursor) as CursorPayload | undefined;
    if (!payload) throw invalid;
    if (payload.t !== tenant || payload.q !== query) throw invalid;
    if (Date.now() / 1000 - payload.e > timeoutSeconds) {
      throw ScimError.badRequest(
        'expiredCursor',
        `The cursor has expired (cursors are valid for ${timeoutSeconds} s)`,
      );
    }
    if (payload.c !== count) {
      throw ScimError.badRequest(
        'invalidCount',
        `count must stay ${payload.c} while following this cursor (RFC 9865 §3.2), got ${count}`,
      );
    }
    return { key: payload.k, id: payload.i, before: payload.b === 1 };
  }
}
