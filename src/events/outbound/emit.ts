/**
 * Writing SETs to the outbox: the issuer and feed URIs of a tenant, the receivers of a feed, one
 * signed copy per receiver, and the outbox insert. Shared by the publisher (changes from the log)
 * and the feed service (feed:add / feed:remove of explicit members).
 *
 * Signing happens before the transaction that inserts the rows: the embedded store has a single
 * connection, and signing may read or create the tenant's key. A transaction that then rolls back
 * only wastes the signatures; the next attempt signs again with fresh `jti` values and the same
 * `txn`.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_TENANT } from '../../auth/scopes.ts';
import type { AppConfig } from '../../config.ts';
import type { JsonObject } from '../../scim/json.ts';
import type { Queryable } from '../../store/db.ts';
import type { SigningKeys } from '../keys.ts';
import { newJti, type ScimSubjectId, type SetClaims } from '../set.ts';

/**
 * The node's public base URL. Without SCIMD_BASE_URL there is no request to take a Host header
 * from, so the listening address is used (localhost for a wildcard bind): set SCIMD_BASE_URL on
 * every node that publishes events, so that `iss` and `aud` are the same on all nodes and
 * reachable by receivers.
 */
export function publicBase(config: Pick<AppConfig, 'baseUrl' | 'host' | 'port'>): string {
  if (config.baseUrl) return config.baseUrl.replace(/\/+$/, '');
  const host = config.host === '0.0.0.0' || config.host === '::' || !config.host ? 'localhost' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}

/** The tenant's SCIM base URL, the `iss` of its SETs (the same URL its SCIM API answers on). */
export function scimBase(config: Pick<AppConfig, 'baseUrl' | 'host' | 'port'>, tenant: string): string {
  const prefix = tenant === DEFAULT_TENANT ? '/scim/v2' : `/tenants/${encodeURIComponent(tenant)}/scim/v2`;
  return `${publicBase(config)}${prefix}`;
}

/** A feed's URI: the default `aud` of its SETs (RFC 9967 examples name feeds `<base>/Feeds/<id>`). */
export function feedUri(
  config: Pick<AppConfig, 'baseUrl' | 'host' | 'port'>,
  tenant: string,
  feedId: string,
): string {
  return `${scimBase(config, tenant)}/Feeds/${encodeURIComponent(feedId)}`;
}

/** `txn` of the SETs of one change row: the same on every copy and on a re-run after a rollback. */
export function changeTxn(tenant: string, seq: number): string {
  return createHash('sha256').update(`scimd-change\u0000${tenant}\u0000${seq}`).digest('hex').slice(0, 32);
}

/** A receiver that gets copies: its audience override and whether it asked for unsigned SETs. */
export interface ReceiverTarget {
  id: string;
  audience: string | null;
  unsigned: boolean;
}

/**
 * Every receiver of a feed, paused ones included: pausing holds delivery back, it does not
 * unsubscribe, so a paused receiver's SETs queue up and go out in order when it resumes.
 */
export async function feedReceivers(q: Queryable, tenant: string, feedId: string): Promise<ReceiverTarget[]> {
  const res = await q.query<ReceiverTarget>(
    `SELECT id, audience, unsigned FROM event_receivers
      WHERE tenant_id = $1 AND feed_id = $2 ORDER BY id`,
    [tenant, feedId],
  );
  return res.rows;
}

/** One event about one subject, before it is addressed to receivers. */
export interface PendingSet {
  resourceType: string;
  resourceId: string;
  txn: string;
  sub: ScimSubjectId;
  events: Record<string, JsonObject>;
}

/** One row of event_outbox. */
export interface OutboxRow {
  receiverId: string;
  jti: string;
  txn: string;
  resourceType: string;
  resourceId: string;
  eventUris: string[];
  setJwt: string;
}

/** One signed copy of each SET per receiver, in SET order: aud = receiver audience ?? feed URI, fresh jti. */
export async function signCopies(
  keys: SigningKeys,
  tenant: string,
  issuer: string,
  defaultAudience: string,
  receivers: ReceiverTarget[],
  sets: PendingSet[],
): Promise<OutboxRow[]> {
  const rows: OutboxRow[] = [];
  const iat = Math.floor(Date.now() / 1000);
  for (const set of sets) {
    for (const r of receivers) {
      const claims: SetClaims = {
        iss: issuer,
        iat,
        jti: newJti(),
        aud: r.audience ?? defaultAudience,
        txn: set.txn,
        sub_id: set.sub,
        events: set.events,
      };
      rows.push({
        receiverId: r.id,
        jti: claims.jti,
        txn: set.txn,
        resourceType: set.resourceType,
        resourceId: set.resourceId,
        eventUris: Object.keys(set.events),
        setJwt: await keys.sign(tenant, claims, { unsigned: r.unsigned }),
      });
    }
  }
  return rows;
}

const OUTBOX_CHUNK = 500;

/** Inserts outbox rows in their order (seq follows the VALUES order). */
export async function insertOutbox(q: Queryable, tenant: string, rows: OutboxRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += OUTBOX_CHUNK) {
    const chunk = rows.slice(i, i + OUTBOX_CHUNK);
    const params: unknown[] = [tenant];
    const values = chunk.map((r) => {
      params.push(r.receiverId, r.jti, r.txn, r.resourceType, r.resourceId, r.eventUris, r.setJwt);
      const n = params.length;
      return `($1, $${n - 6}, $${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}::text[], $${n})`;
    });
    await q.query(
      `INSERT INTO event_outbox (tenant_id, receiver_id, jti, txn, resource_type, resource_id, event_uris, set_jwt)
       VALUES ${values.join(', ')}`,
      params,
    );
  }
}
