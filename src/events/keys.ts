/**
 * Per-tenant keys that sign Security Event Tokens, and the JWKS receivers verify them with.
 *
 * A tenant has at most one active key (not_after and retired unset; a partial unique index keeps
 * two nodes from creating two). Rotation gives the tenant a new active key and sets the old one's
 * not_after: it signs nothing more but stays in the JWKS, so SETs it signed still verify, until it
 * is retired. The private JWK is stored sealed (src/security/secret-box.ts: a JSON string of the
 * envelope, bound to the tenant and kid); a key stored in clear before that is still read as is.
 */
import {
  CompactSign,
  base64url,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose';
import { secretBoxFor } from '../security/secret-box.ts';
import type { Database } from '../store/db.ts';

export type SigningAlg = 'ES256' | 'ES384' | 'RS256';
export const DEFAULT_SIGNING_ALG: SigningAlg = 'ES256';
const ALGS: readonly SigningAlg[] = ['ES256', 'ES384', 'RS256'];

/** JOSE `typ` of a SET (RFC 8417 §2.3). */
export const SET_TYP = 'secevent+jwt';

/** A signing key without its private part. */
export interface SigningKeyInfo {
  kid: string;
  alg: SigningAlg;
  created: Date;
  /** Since when it signs nothing (it was rotated out); null while active. */
  notAfter: Date | null;
  /** Since when it is out of the JWKS; null while published. */
  retired: Date | null;
  publicJwk: JWK;
}

export interface SignOptions {
  /** An unsecured SET (`alg: none`, empty signature), for a receiver that asked for one. */
  unsigned?: boolean;
}

interface KeyRow {
  kid: string;
  alg: string;
  /** Sealed: a string; stored in clear by an older version: the JWK. */
  private_jwk: JWK | string;
  public_jwk: JWK;
  created: Date;
  not_after: Date | null;
  retired: Date | null;
}

const ACTIVE = 'not_after IS NULL AND retired IS NULL';

type SigningKey = Parameters<CompactSign['sign']>[0];

function info(row: KeyRow): SigningKeyInfo {
  return {
    kid: row.kid,
    alg: row.alg as SigningAlg,
    created: row.created,
    notAfter: row.not_after,
    retired: row.retired,
    publicJwk: row.public_jwk,
  };
}

async function newKeyPair(alg: SigningAlg): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  if (!ALGS.includes(alg)) throw new TypeError(`unsupported signing algorithm ${String(alg)}`);
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const pub = await exportJWK(publicKey);
  // The RFC 7638 thumbprint: unique per key, and the same on every node.
  const kid = await calculateJwkThumbprint(pub);
  const meta = { kid, alg, use: 'sig' };
  return { kid, privateJwk: { ...(await exportJWK(privateKey)), ...meta }, publicJwk: { ...pub, ...meta } };
}

const keyPlace = (tenant: string, kid: string) => ({
  table: 'signing_keys',
  tenant,
  row: kid,
  field: 'private_jwk',
});

export class SigningKeys {
  /** Active key per tenant: importing a JWK per SET would cost more than signing. */
  private readonly cache = new Map<
    string,
    { kid: string; alg: SigningAlg; key: SigningKey; until: number }
  >();

  /**
   * @param ttlMs how long a node keeps using the active key it read: a rotation or retirement made
   *   through another node is seen within that time (retire keys well after rotating them).
   */
  constructor(
    private readonly db: Database,
    private readonly ttlMs = 5_000,
  ) {}

  /** The tenant's keys, newest first, retired ones included. */
  async list(tenant: string): Promise<SigningKeyInfo[]> {
    const res = await this.db.query<KeyRow>(
      `SELECT kid, alg, private_jwk, public_jwk, created, not_after, retired FROM signing_keys
        WHERE tenant_id = $1 ORDER BY created DESC, kid`,
      [tenant],
    );
    return res.rows.map(info);
  }

  /** The active key, created when the tenant has none. */
  async activeKey(tenant: string, alg: SigningAlg = DEFAULT_SIGNING_ALG): Promise<SigningKeyInfo> {
    const row = await this.activeRow(tenant);
    if (row) return info(row);
    const pair = await newKeyPair(alg);
    await this.db.query(
      `INSERT INTO signing_keys (tenant_id, kid, alg, private_jwk, public_jwk)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) WHERE ${ACTIVE} DO NOTHING`,
      [tenant, pair.kid, alg, this.sealedJwk(tenant, pair), JSON.stringify(pair.publicJwk)],
    );
    // Another node may have won the race: its key is the one to use.
    const created = await this.activeRow(tenant);
    if (!created) throw new Error(`no active signing key for tenant ${tenant}`);
    return info(created);
  }

  /** A new active key; the previous one stops signing and stays published until retired. */
  async rotate(tenant: string, alg: SigningAlg = DEFAULT_SIGNING_ALG): Promise<SigningKeyInfo> {
    const pair = await newKeyPair(alg);
    await this.db.transaction(async (tx) => {
      await tx.query(`UPDATE signing_keys SET not_after = now() WHERE tenant_id = $1 AND ${ACTIVE}`, [
        tenant,
      ]);
      await tx.query(
        `INSERT INTO signing_keys (tenant_id, kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4, $5)`,
        [tenant, pair.kid, alg, this.sealedJwk(tenant, pair), JSON.stringify(pair.publicJwk)],
      );
    });
    this.cache.delete(tenant);
    return info((await this.activeRow(tenant))!);
  }

  /** Takes a key out of the JWKS (SETs it signed no longer verify). False when the tenant has no such key. */
  async retire(tenant: string, kid: string): Promise<boolean> {
    const res = await this.db.query(
      `UPDATE signing_keys SET retired = now(), not_after = COALESCE(not_after, now())
        WHERE tenant_id = $1 AND kid = $2 AND retired IS NULL`,
      [tenant, kid],
    );
    this.cache.delete(tenant);
    return res.rowCount > 0;
  }

  /** Retires the keys rotated out more than `seconds` ago; returns their kids. */
  async retireRotatedBefore(tenant: string, seconds: number): Promise<string[]> {
    const res = await this.db.query<{ kid: string }>(
      `UPDATE signing_keys SET retired = now()
        WHERE tenant_id = $1 AND retired IS NULL AND not_after IS NOT NULL
          AND not_after <= now() - make_interval(secs => $2::double precision)
        RETURNING kid`,
      [tenant, seconds],
    );
    return res.rows.map((r) => r.kid).sort();
  }

  /** The public keys receivers verify the tenant's SETs with: active and rotated-out, never retired. */
  async jwks(tenant: string): Promise<{ keys: JWK[] }> {
    const res = await this.db.query<{ public_jwk: JWK }>(
      `SELECT public_jwk FROM signing_keys WHERE tenant_id = $1 AND retired IS NULL ORDER BY created DESC, kid`,
      [tenant],
    );
    return { keys: res.rows.map((r) => r.public_jwk) };
  }

  /**
   * A compact JWS of the claims, header `{alg, kid, typ: "secevent+jwt"}`, signed with the tenant's
   * active key (created on first use); with `unsigned`, an unsecured JWS (`alg: none`).
   */
  async sign(tenant: string, claims: object, opts: SignOptions = {}): Promise<string> {
    const payload = new TextEncoder().encode(JSON.stringify(claims));
    if (opts.unsigned) {
      const header = base64url.encode(JSON.stringify({ alg: 'none', typ: SET_TYP }));
      return `${header}.${base64url.encode(payload)}.`;
    }
    const { kid, alg, key } = await this.signingKey(tenant);
    return new CompactSign(payload).setProtectedHeader({ alg, kid, typ: SET_TYP }).sign(key);
  }

  private async signingKey(tenant: string): Promise<{ kid: string; alg: SigningAlg; key: SigningKey }> {
    const hit = this.cache.get(tenant);
    if (hit && hit.until > Date.now()) return hit;
    let row = await this.activeRow(tenant);
    if (!row) {
      await this.activeKey(tenant);
      row = (await this.activeRow(tenant))!;
    }
    const alg = row.alg as SigningAlg;
    const key = (await importJWK(this.privateJwk(tenant, row), alg)) as SigningKey;
    const entry = { kid: row.kid, alg, key, until: Date.now() + this.ttlMs };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tenant, entry);
    return entry;
  }

  /** The private_jwk column's value: the JWK sealed, as a JSON string. */
  private sealedJwk(tenant: string, pair: { kid: string; privateJwk: JWK }): string {
    const sealed = secretBoxFor(this.db).seal(JSON.stringify(pair.privateJwk), keyPlace(tenant, pair.kid));
    return JSON.stringify(sealed);
  }

  /** The private JWK of a row: opened, or as stored in clear. */
  private privateJwk(tenant: string, row: KeyRow): JWK {
    if (typeof row.private_jwk !== 'string') return row.private_jwk;
    return JSON.parse(secretBoxFor(this.db).open(row.private_jwk, keyPlace(tenant, row.kid))) as JWK;
  }

  private async activeRow(tenant: string): Promise<KeyRow | undefined> {
    const res = await this.db.query<KeyRow>(
      `SELECT kid, alg, private_jwk, public_jwk, created, not_after, retired FROM signing_keys
        WHERE tenant_id = $1 AND ${ACTIVE}`,
      [tenant],
    );
    return res.rows[0];
  }
}
