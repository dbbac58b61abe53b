/**
 * Taking in a SET from an upstream, the same way whether it was pushed (RFC 8935) or polled
 * (RFC 8936): check it (parseable, issuer, signature against the upstream's keys, audience, SCIM
 * events, sub_id), then persist it as a pending received event. Persisting comes before the
 * acknowledgement (202 / poll ack), so a crash after acknowledging loses nothing; the jti is
 * unique per tenant and upstream, so a SET delivered again is answered the same and stored once.
 * Applying is the applier's job (applier.ts).
 */
import {
  compactVerify,
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JWTVerifyGetKey,
} from 'jose';
import { isJsonObject, type JsonObject } from '../../scim/json.ts';
import type { Database } from '../../store/db.ts';
import type { Upstream } from './upstreams.ts';
import { plainHttpReason } from '../../sync/tls-policy.ts';

/** RFC 8935 §2.4 error codes ("Security Event Token Delivery Error Codes" registry). */
export type SetErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'authentication_failed'
  | 'access_denied';

/**
 * A SET that is refused. `temporary` marks a failure on our side (the issuer's JWKS could not be
 * fetched): the push endpoint answers 503 so the transmitter retries, the poll client neither acks
 * nor reports it, so it is delivered again.
 */
export class SetError extends Error {
  constructor(
    readonly err: SetErrorCode,
    readonly description: string,
    readonly temporary = false,
  ) {
    super(description);
    this.name = 'SetError';
  }
}

/** The claims of a verified SCIM SET (the parts the applier reads; the rest is kept as received). */
export interface ReceivedClaims extends JsonObject {
  iss: string;
  jti: string;
  sub_id: { format: 'scim'; uri: string; externalId?: string };
  events: Record<string, JsonObject>;
}

export const SCIM_EVENT_PREFIX = 'urn:ietf:params:scim:event:';

/** Asymmetric algorithms only: an HMAC "key" from a JWKS would let anyone who knows it sign. */
const ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];

export interface IntakeResult {
  claims: ReceivedClaims;
  /** The jti was already received from this upstream: nothing was stored. */
  duplicate: boolean;
}

export class SetIntake {
  /** Remote JWKS per upstream: jose caches the keys and refetches on an unknown kid. */
  private readonly remote = new Map<string, { uri: string; getKey: JWTVerifyGetKey }>();
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly db: Database,
    private readonly opts: {
      jwksTimeoutMs?: number;
      jwksCacheMaxAgeMs?: number;
      jwksCooldownMs?: number;
      /** SCIMD_SYNC_REQUIRE_TLS: a plain-http jwksUri (but to loopback) is never fetched. */
      requireTls?: boolean;
    } = {},
  ) {}

  /** Called after a new SET was stored (wakes the applier). */
  onReceived(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Drops the cached keys of an upstream (after it changed or went). */
  forget(tenant: string, id: string): void {
    this.remote.delete(`${tenant}\0${id}`);
  }

  /** Verifies a compact SET from the upstream; throws SetError. */
  async verify(upstream: Upstream, token: string): Promise<ReceivedClaims> {
    const compact = token.trim();
    const parts = compact.split('.');
    if (parts.length === 5) throw new SetError('invalid_request', 'Encrypted (JWE) SETs are not accepted');
    if (parts.length !== 3) throw new SetError('invalid_request', 'The body is not a compact JWT');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: JsonObject;
    try {
      header = decodeProtectedHeader(compact);
      claims = decodeJwt(compact) as JsonObject;
    } catch {
      throw new SetError('invalid_request', 'The body is not a parseable JWT');
    }
    if (typeof header.typ === 'string' && !/^(application\/)?secevent\+jwt$/i.test(header.typ)) {
      throw new SetError('invalid_request', `JOSE header typ "${header.typ}" is not secevent+jwt`);
    }
    // The issuer first: a SET from someone else is invalid_issuer whatever its signature.
    if (claims.iss !== upstream.issuer) {
      throw new SetError(
        'invalid_issuer',
        `The SET's issuer ${JSON.stringify(claims.iss ?? null)} is not this upstream's issuer`,
      );
    }
    if (header.alg === 'none') {
      if (!upstream.acceptUnsigned)
        throw new SetError('invalid_key', 'Unsigned SETs are not accepted from this issuer');
      if (parts[2] !== '')
        throw new SetError('invalid_request', 'An unsecured JWT must have an empty signature');
    } else {
      await this.checkSignature(upstream, compact);
    }
    if (upstream.audience !== undefined) {
      const aud = claims.aud;
      const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!list.includes(upstream.audience)) {
        throw new SetError('invalid_audience', `The SET's audience does not include ${upstream.audience}`);
      }
    }
    if (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > 256) {
      throw new SetError('invalid_request', 'The SET has no jti (or one longer than 256 characters)');
    }
    if (typeof claims.iat !== 'number') throw new SetError('invalid_request', 'The SET has no iat');
    const events = claims.events;
    if (!isJsonObject(events) || Object.keys(events).length === 0) {
      throw new SetError('invalid_request', 'The SET has no events claim');
    }
    if (!Object.values(events).every(isJsonObject)) {
      throw new SetError('invalid_request', 'Every member of events must be a JSON object');
    }
    if (!Object.keys(events).some((u) => u.toLowerCase().startsWith(SCIM_EVENT_PREFIX))) {
      throw new SetError('invalid_request', `The SET carries no SCIM event (${SCIM_EVENT_PREFIX}...)`);
    }
    const sub = claims.sub_id;
    if (
      !isJsonObject(sub) ||
      sub.format !== 'scim' ||
      typeof sub.uri !== 'string' ||
      !sub.uri.startsWith('/')
    ) {
      throw new SetError('invalid_request', 'sub_id must be {"format": "scim", "uri": "/<Endpoint>/<id>"}');
    }
    return claims as ReceivedClaims;
  }

  /** Verifies and stores a SET; throws SetError for a SET that is refused. */
  async receive(upstream: Upstream, token: string, via: 'push' | 'poll'): Promise<IntakeResult> {
    const claims = await this.verify(upstream, token);
    const res = await this.db.query(
      `INSERT INTO received_events (tenant_id, upstream_id, jti, txn, subject, event_uris, claims, via)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (tenant_id, upstream_id, jti) DO NOTHING`,
      [
        upstream.tenant,
        upstream.id,
        claims.jti,
        typeof claims.txn === 'string' ? claims.txn : null,
        claims.sub_id.uri,
        Object.keys(claims.events),
        JSON.stringify(claims),
        via,
      ],
    );
    const duplicate = res.rowCount === 0;
    if (!duplicate) for (const l of this.listeners) l();
    return { claims, duplicate };
  }

  private keysOf(upstream: Upstream): JWTVerifyGetKey | undefined {
    if (upstream.jwks) return createLocalJWKSet(upstream.jwks as Parameters<typeof createLocalJWKSet>[0]);
    if (!upstream.jwksUri) return undefined;
    const key = `${upstream.tenant}\0${upstream.id}`;
    const hit = this.remote.get(key);
    if (hit && hit.uri === upstream.jwksUri) return hit.getKey;
    const getKey = createRemoteJWKSet(new URL(upstream.jwksUri), {
      timeoutDuration: this.opts.jwksTimeoutMs ?? 5_000,
      cacheMaxAge: this.opts.jwksCacheMaxAgeMs ?? 300_000,
      cooldownDuration: this.opts.jwksCooldownMs ?? 30_000,
    });
    if (this.remote.size > 10_000) this.remote.clear();
    this.remote.set(key, { uri: upstream.jwksUri, getKey });
    return getKey;
  }

  private async checkSignature(upstream: Upstream, compact: string): Promise<void> {
    // A stored plain-http jwksUri under SCIMD_SYNC_REQUIRE_TLS: not fetched; temporary, as for a
    // JWKS that cannot be fetched (the SET is fine; the upstream's configuration is to be fixed).
    const refused =
      this.opts.requireTls && upstream.jwksUri && !upstream.jwks
        ? plainHttpReason(upstream.jwksUri, 'jwksUri')
        : undefined;
    if (refused) throw new SetError('invalid_key', `The issuer's keys were not fetched: ${refused}`, true);
    const getKey = this.keysOf(upstream);
    if (!getKey)
      throw new SetError(
        'invalid_key',
        'No keys are configured for this issuer; only unsigned SETs are accepted',
      );
    try {
      await compactVerify(compact, getKey, { algorithms: ALGORITHMS });
    } catch (err) {
      if (
        err instanceof errors.JWSSignatureVerificationFailed ||
        err instanceof errors.JWKSNoMatchingKey ||
        err instanceof errors.JWKSMultipleMatchingKeys ||
        err instanceof errors.JOSEAlgNotAllowed ||
        err instanceof errors.JOSENotSupported ||
        err instanceof errors.JWSInvalid
      ) {
        throw new SetError(
          'invalid_key',
          `The signature does not verify with the issuer's keys (${err.code})`,
        );
      }
      // The JWKS endpoint failed (timeout, network, not a JWKS): our problem, not the SET's.
      const why = err instanceof Error ? err.message : String(err);
      throw new SetError('invalid_key', `The issuer's keys could not be fetched: ${why}; retry later`, true);
    }
  }
}
