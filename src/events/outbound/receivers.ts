/**
 * Event receivers of a tenant (who gets a feed's SETs, by push or poll) and their delivery state:
 * the repository and rules behind the admin API and `scimd receiver`. The push authorization value
 * is write-only: views say whether it is set, never what it is.
 */
import { randomUUID } from 'node:crypto';
import { ScimError } from '../../scim/errors.ts';
import { secretBoxFor, type SecretBox } from '../../security/secret-box.ts';
import type { Database, Queryable } from '../../store/db.ts';
import type { OutboxSignal } from './signal.ts';
import { plainHttpReason } from '../../sync/tls-policy.ts';

export const RECEIVER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const OUTBOX_STATES = ['pending', 'delivered', 'failed'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];
export const DELIVERY_ERRORS = [
  'invalid_request',
  'invalid_key',
  'invalid_issuer',
  'invalid_audience',
  'authentication_failed',
  'access_denied',
] as const;

export interface NewReceiver {
  id?: string;
  name: string;
  feedId: string;
  delivery: 'push' | 'poll';
  endpointUrl?: string;
  authorization?: string;
  pollClientId?: string;
  audience?: string;
  unsigned?: boolean;
  maxAttempts?: number;
  paused?: boolean;
}

/** A PATCH: null clears an optional value. */
export interface ReceiverUpdate {
  name?: string;
  feedId?: string;
  delivery?: 'push' | 'poll';
  endpointUrl?: string | null;
  authorization?: string | null;
  pollClientId?: string | null;
  audience?: string | null;
  unsigned?: boolean;
  maxAttempts?: number;
  paused?: boolean;
}

export interface DeliveryState {
  pending: number;
  delivered: number;
  failed: number;
  /** Seconds since the oldest pending SET was written, when one is pending. */
  oldestPendingAgeSeconds?: number;
  lastError?: string;
  lastErrorAt?: string;
  lastDeliveryAt?: string;
}

export interface ReceiverView {
  id: string;
  tenant: string;
  name: string;
  feedId: string;
  delivery: 'push' | 'poll';
  endpointUrl?: string;
  /** Push only: whether scimd sends an Authorization header (the value is never shown). */
  authorization?: 'set' | 'unset';
  pollClientId?: string;
  /** Poll only: the RFC 8936 endpoint path the receiver POSTs to. */
  pollPath?: string;
  audience?: string;
  unsigned: boolean;
  maxAttempts: number;
  paused: boolean;
  created: string;
  state: DeliveryState;
}

export interface OutboxEntryView {
  seq: number;
  jti: string;
  txn: string;
  resourceType: string;
  resourceId: string;
  eventUris: string[];
  state: OutboxState;
  attempts: number;
  nextAttempt?: string;
  lastError?: string;
  created: string;
  deliveredAt?: string;
  /** The SET itself, only when asked for. */
  set?: string;
}

export interface OutboxPage {
  totalResults: number;
  startIndex: number;
  itemsPerPage: number;
  entries: OutboxEntryView[];
}

export interface ReceiverRow {
  tenant_id: string;
  id: string;
  feed_id: string;
  name: string;
  delivery: 'push' | 'poll';
  endpoint_url: string | null;
  authorization_header: string | null;
  poll_client_id: string | null;
  audience: string | null;
  unsigned: boolean;
  max_attempts: number;
  paused: boolean;
  created: Date | string;
  last_error: string | null;
  last_error_at: Date | string | null;
  last_delivery_at: Date | string | null;
}

interface OutboxRow {
  seq: string | number;
  jti: string;
  txn: string;
  resource_type: string;
  resource_id: string;
  event_uris: string[];
  state: OutboxState;
  attempts: number;
  next_attempt: Date | string;
  last_error: string | null;
  created: Date | string;
  delivered_at: Date | string | null;
  set_jwt?: string;
}

interface CountRow {
  receiver_id: string;
  pending: string | number;
  delivered: string | number;
  failed: string | number;
  oldest_pending: Date | string | null;
}

const RECEIVER_COLUMNS = `tenant_id, id, feed_id, name, delivery, endpoint_url, authorization_header,
  poll_client_id, audience, unsigned, max_attempts, paused, created, last_error, last_error_at, last_delivery_at`;

const iso = (d: Date | string) => new Date(d).toISOString();

/** The RFC 8936 poll path of a receiver (the default tenant also answers outside /tenants). */
export function pollPath(tenant: string, id: string): string {
  return `/tenants/${encodeURIComponent(tenant)}/events/poll/${encodeURIComponent(id)}`;
}

/** Text from a receiver kept for display: one line, bounded. */
export function printable(s: string, max = 500): string {
  // eslint-disable-next-line no-control-regex -- removing control characters is the point
  return s.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, max);
}

function bad(detail: string): ScimError {
  return ScimError.badRequest('invalidValue', detail);
}

/** The merged receiver a create or update would store, checked as a whole. */
interface Settings {
  name: string;
  feedId: string;
  delivery: 'push' | 'poll';
  endpointUrl: string | null;
  authorization: string | null;
  pollClientId: string | null;
  audience: string | null;
  unsigned: boolean;
  maxAttempts: number;
  paused: boolean;
}

/** $1…$12 of the INSERT and the UPDATE of a receiver: one order for both statements. */
/** Where a push receiver's authorization value is sealed (src/security/secret-box.ts). */
export const authorizationPlace = (tenant: string, id: string) => ({
  table: 'event_receivers',
  tenant,
  row: id,
  field: 'authorization_header',
});

/** The row's values, the authorization sealed. */
function settingsParams(tenant: string, id: string, s: Settings, box: SecretBox): unknown[] {
  return [
    tenant,
    id,
    s.feedId,
    s.name,
    s.delivery,
    s.endpointUrl,
    box.sealOptional(s.authorization, authorizationPlace(tenant, id)),
    s.pollClientId,
    s.audience,
    s.unsigned,
    s.maxAttempts,
    s.paused,
  ];
}

export class ReceiverService {
  constructor(
    private readonly db: Database,
    /** Wakes push workers and long polls of this node after a retry; absent in the CLI's direct mode. */
    private readonly signal?: OutboxSignal,
    /** SCIMD_SYNC_REQUIRE_TLS: a plain-http endpointUrl (but to loopback) is refused when given. */
    private readonly requireTls = false,
  ) {}

  /** The TLS policy on an endpointUrl given by a create or update (a stored one is checked at delivery). */
  private checkTls(endpointUrl: string | null | undefined): void {
    if (!this.requireTls || typeof endpointUrl !== 'string') return;
    const reason = plainHttpReason(endpointUrl, 'endpointUrl');
    if (reason) throw bad(reason);
  }

  private async requireTenant(q: Queryable, tenant: string): Promise<void> {
    const found = await q.query('SELECT 1 FROM tenants WHERE id = $1', [tenant]);
    if (found.rows.length === 0) throw ScimError.notFound(`Tenant ${tenant} not found`);
  }

  private async row(q: Queryable, tenant: string, id: string): Promise<ReceiverRow> {
    const res = await q.query<ReceiverRow>(
      `SELECT ${RECEIVER_COLUMNS} FROM event_receivers WHERE tenant_id = $1 AND id = $2`,
      [tenant, id],
    );
    if (res.rows.length === 0) throw ScimError.notFound(`Receiver ${id} not found in tenant ${tenant}`);
    return res.rows[0];
  }

  /** The stored receiver, for the delivery code (push worker, poll endpoint); undefined when unknown. */
  async find(tenant: string, id: string): Promise<ReceiverRow | undefined> {
    const res = await this.db.query<ReceiverRow>(
      `SELECT ${RECEIVER_COLUMNS} FROM event_receivers WHERE tenant_id = $1 AND id = $2`,
      [tenant, id],
    );
    return res.rows[0];
  }

  private async validate(q: Queryable, tenant: string, s: Settings): Promise<void> {
    if (typeof s.name !== 'string' || s.name.length < 1 || s.name.length > 200)
      throw bad('name: 1-200 characters');
    if (s.delivery !== 'push' && s.delivery !== 'poll') throw bad('delivery must be "push" or "poll"');
    const feed = await q.query('SELECT 1 FROM event_feeds WHERE tenant_id = $1 AND id = $2', [
      tenant,
      s.feedId,
    ]);
    if (feed.rows.length === 0) throw bad(`feedId ${s.feedId} is not a feed of tenant ${tenant}`);
    if (!Number.isInteger(s.maxAttempts) || s.maxAttempts < 1 || s.maxAttempts > 1000)
      throw bad('maxAttempts must be an integer from 1 to 1000');
    if (s.audience !== null && (s.audience.length < 1 || s.audience.length > 2000))
      throw bad('audience: 1-2000 characters');
    if (s.delivery === 'push') {
      if (s.pollClientId !== null) throw bad('pollClientId is for poll receivers; a push receiver has none');
      if (s.endpointUrl === null) throw bad('A push receiver needs endpointUrl');
      let url: URL;
      try {
        url = new URL(s.endpointUrl);
      } catch {
        throw bad(`endpointUrl must be an absolute http or https URL; got "${s.endpointUrl}"`);
      }
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || s.endpointUrl.length > 2000)
        throw bad(`endpointUrl must be an absolute http or https URL; got "${s.endpointUrl}"`);
      if (url.username || url.password) throw bad('endpointUrl must not hold credentials; use authorization');
      // A header value: no line breaks (header injection), printable, bounded.
      if (s.authorization !== null && !/^[\x20-\x7e]{1,4096}$/.test(s.authorization))
        throw bad('authorization must be 1-4096 printable ASCII characters (the Authorization header value)');
    } else {
      if (s.endpointUrl !== null) throw bad('endpointUrl is for push receivers; a poll receiver has none');
      if (s.authorization !== null)
        throw bad('authorization is for push receivers; a poll receiver authenticates as pollClientId');
      if (s.pollClientId === null) throw bad('A poll receiver needs pollClientId');
      const client = await q.query<{ scopes: string[] }>(
        'SELECT scopes FROM clients WHERE tenant_id = $1 AND id = $2',
        [tenant, s.pollClientId],
      );
      if (client.rows.length === 0)
        throw bad(`pollClientId ${s.pollClientId} is not a client of tenant ${tenant}`);
      const scopes = client.rows[0].scopes.map((x) => x.toLowerCase());
      if (!scopes.includes('events:poll') && !scopes.includes('admin'))
        throw bad(`Client ${s.pollClientId} needs scope events:poll (or admin) to poll`);
    }
  }

  async create(tenant: string, input: NewReceiver): Promise<ReceiverView> {
    const id = input.id ?? randomUUID();
    if (!RECEIVER_ID.test(id)) throw bad('Receiver id: 1-128 letters, digits, ".", "_" or "-"');
    const s: Settings = {
      name: input.name,
      feedId: input.feedId,
      delivery: input.delivery,
      endpointUrl: input.endpointUrl ?? null,
      authorization: input.authorization ?? null,
      pollClientId: input.pollClientId ?? null,
      audience: input.audience ?? null,
      unsigned: input.unsigned ?? false,
      maxAttempts: input.maxAttempts ?? 10,
      paused: input.paused ?? false,
    };
    const row = await this.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      await this.validate(tx, tenant, s);
      this.checkTls(s.endpointUrl);
      const exists = await tx.query('SELECT 1 FROM event_receivers WHERE tenant_id = $1 AND id = $2', [
        tenant,
        id,
      ]);
      if (exists.rows.length > 0)
        throw ScimError.conflict(`Receiver ${id} already exists in tenant ${tenant}`);
      const res = await tx.query<ReceiverRow>(
        `INSERT INTO event_receivers (tenant_id, id, feed_id, name, delivery, endpoint_url,
           authorization_header, poll_client_id, audience, unsigned, max_attempts, paused)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING ${RECEIVER_COLUMNS}`,
        settingsParams(tenant, id, s, secretBoxFor(this.db)),
      );
      return res.rows[0];
    });
    return (await this.views(tenant, [row]))[0];
  }

  async update(tenant: string, id: string, input: ReceiverUpdate): Promise<ReceiverView> {
    const row = await this.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      // FOR UPDATE: two concurrent PATCHes are validated against each other's result, not the same old row.
      const cur = await tx.query<ReceiverRow>(
        `SELECT ${RECEIVER_COLUMNS} FROM event_receivers WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
        [tenant, id],
      );
      if (cur.rows.length === 0) throw ScimError.notFound(`Receiver ${id} not found in tenant ${tenant}`);
      const c = cur.rows[0];
      const pick = <T>(v: T | undefined, old: T): T => (v === undefined ? old : v);
      const s: Settings = {
        name: pick(input.name, c.name),
        feedId: pick(input.feedId, c.feed_id),
        delivery: pick(input.delivery, c.delivery),
        endpointUrl: pick(input.endpointUrl, c.endpoint_url),
        authorization: pick(
          input.authorization,
          secretBoxFor(this.db).openOptional(c.authorization_header, authorizationPlace(tenant, id)),
        ),
        pollClientId: pick(input.pollClientId, c.poll_client_id),
        audience: pick(input.audience, c.audience),
        unsigned: pick(input.unsigned, c.unsigned),
        maxAttempts: pick(input.maxAttempts, c.max_attempts),
        paused: pick(input.paused, c.paused),
      };
      await this.validate(tx, tenant, s);
      this.checkTls(input.endpointUrl);
      const res = await tx.query<ReceiverRow>(
        `UPDATE event_receivers SET feed_id = $3, name = $4, delivery = $5, endpoint_url = $6,
           authorization_header = $7, poll_client_id = $8, audience = $9, unsigned = $10,
           max_attempts = $11, paused = $12
         WHERE tenant_id = $1 AND id = $2
         RETURNING ${RECEIVER_COLUMNS}`,
        settingsParams(tenant, id, s, secretBoxFor(this.db)),
      );
      return res.rows[0];
    });
    // Resumed: deliver now rather than at the next timer tick.
    if (input.paused === false) this.signal?.notify(tenant, [id]);
    return (await this.views(tenant, [row]))[0];
  }

  async remove(tenant: string, id: string): Promise<void> {
    await this.requireTenant(this.db, tenant);
    // The outbox rows go with it (ON DELETE CASCADE).
    const res = await this.db.query('DELETE FROM event_receivers WHERE tenant_id = $1 AND id = $2', [
      tenant,
      id,
    ]);
    if (res.rowCount === 0) throw ScimError.notFound(`Receiver ${id} not found in tenant ${tenant}`);
  }

  async get(tenant: string, id: string): Promise<ReceiverView> {
    await this.requireTenant(this.db, tenant);
    return (await this.views(tenant, [await this.row(this.db, tenant, id)]))[0];
  }

  async list(tenant: string): Promise<ReceiverView[]> {
    await this.requireTenant(this.db, tenant);
    const res = await this.db.query<ReceiverRow>(
      `SELECT ${RECEIVER_COLUMNS} FROM event_receivers WHERE tenant_id = $1 ORDER BY created, id`,
      [tenant],
    );
    return this.views(tenant, res.rows);
  }

  private async views(tenant: string, rows: ReceiverRow[]): Promise<ReceiverView[]> {
    if (rows.length === 0) return [];
    const counts = await this.db.query<CountRow>(
      `SELECT receiver_id,
              count(*) FILTER (WHERE state = 'pending') AS pending,
              count(*) FILTER (WHERE state = 'delivered') AS delivered,
              count(*) FILTER (WHERE state = 'failed') AS failed,
              min(created) FILTER (WHERE state = 'pending') AS oldest_pending
         FROM event_outbox WHERE tenant_id = $1 AND receiver_id = ANY($2::text[])
        GROUP BY receiver_id`,
      [tenant, rows.map((r) => r.id)],
    );
    const byId = new Map(counts.rows.map((c) => [c.receiver_id, c]));
    const now = Date.now();
    return rows.map((r) => {
      const c = byId.get(r.id);
      const state: DeliveryState = {
        pending: Number(c?.pending ?? 0),
        delivered: Number(c?.delivered ?? 0),
        failed: Number(c?.failed ?? 0),
      };
      if (c?.oldest_pending)
        state.oldestPendingAgeSeconds = Math.max(
          0,
          Math.floor((now - new Date(c.oldest_pending).getTime()) / 1000),
        );
      if (r.last_error) state.lastError = r.last_error;
      if (r.last_error_at) state.lastErrorAt = iso(r.last_error_at);
      if (r.last_delivery_at) state.lastDeliveryAt = iso(r.last_delivery_at);
      const v: ReceiverView = {
        id: r.id,
        tenant: r.tenant_id,
        name: r.name,
        feedId: r.feed_id,
        delivery: r.delivery,
        unsigned: r.unsigned,
        maxAttempts: r.max_attempts,
        paused: r.paused,
        created: iso(r.created),
        state,
      };
      if (r.delivery === 'push') {
        if (r.endpoint_url) v.endpointUrl = r.endpoint_url;
        v.authorization = r.authorization_header ? 'set' : 'unset';
      } else {
        if (r.poll_client_id) v.pollClientId = r.poll_client_id;
        v.pollPath = pollPath(r.tenant_id, r.id);
      }
      if (r.audience) v.audience = r.audience;
      return v;
    });
  }

  /** A receiver's outbox entries in publishing order, optionally of one state; the SETs only when asked. */
  async events(
    tenant: string,
    id: string,
    f: { state?: OutboxState; startIndex: number; count: number; includeSet?: boolean },
  ): Promise<OutboxPage> {
    await this.requireTenant(this.db, tenant);
    await this.row(this.db, tenant, id);
    if (f.state !== undefined && !OUTBOX_STATES.includes(f.state))
      throw bad('state must be pending, delivered or failed');
    const where = `tenant_id = $1 AND receiver_id = $2${f.state ? ' AND state = $3' : ''}`;
    const params: unknown[] = f.state ? [tenant, id, f.state] : [tenant, id];
    const total = await this.db.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM event_outbox WHERE ${where}`,
      params,
    );
    const n = params.length;
    const res = await this.db.query<OutboxRow>(
      `SELECT seq, jti, txn, resource_type, resource_id, event_uris, state, attempts, next_attempt,
              last_error, created, delivered_at${f.includeSet ? ', set_jwt' : ''}
         FROM event_outbox WHERE ${where} ORDER BY seq LIMIT $${n + 1} OFFSET $${n + 2}`,
      [...params, f.count, f.startIndex - 1],
    );
    return {
      totalResults: Number(total.rows[0].n),
      startIndex: f.startIndex,
      itemsPerPage: res.rows.length,
      entries: res.rows.map((r) => {
        const e: OutboxEntryView = {
          seq: Number(r.seq),
          jti: r.jti,
          txn: r.txn,
          resourceType: r.resource_type,
          resourceId: r.resource_id,
          eventUris: r.event_uris,
          state: r.state,
          attempts: r.attempts,
          created: iso(r.created),
        };
        // A retry time means something only while the entry waits.
        if (r.state === 'pending') e.nextAttempt = iso(r.next_attempt);
        if (r.last_error) e.lastError = r.last_error;
        if (r.delivered_at) e.deliveredAt = iso(r.delivered_at);
        if (f.includeSet && r.set_jwt !== undefined) e.set = r.set_jwt;
        return e;
      }),
    };
  }

  /**
   * Removes delivered entries delivered before `before`, tenant by tenant and in bounded batches
   * (no long lock on the outbox); failed ones stay until retried or their receiver is deleted.
   */
  async pruneDelivered(before: Date): Promise<number> {
    const tenants = await this.db.query<{ id: string }>('SELECT id FROM tenants ORDER BY id');
    let removed = 0;
    for (const { id } of tenants.rows) {
      for (;;) {
        const res = await this.db.query(
          `DELETE FROM event_outbox WHERE seq IN (
             SELECT seq FROM event_outbox
              WHERE tenant_id = $1 AND state = 'delivered' AND delivered_at < $2
              LIMIT 5000)`,
          [id, before],
        );
        removed += res.rowCount;
        if (res.rowCount < 5000) break;
      }
    }
    return removed;
  }

  /**
   * Failed entries back to pending (all of the receiver's, or those jti), due now with their
   * attempts reset. They keep their place in publishing order, so they go before newer pending ones.
   */
  async retry(tenant: string, id: string, jtis?: string[]): Promise<{ retried: number }> {
    await this.requireTenant(this.db, tenant);
    await this.row(this.db, tenant, id);
    const res = await this.db.query(
      `UPDATE event_outbox SET state = 'pending', attempts = 0, next_attempt = clock_timestamp()
        WHERE tenant_id = $1 AND receiver_id = $2 AND state = 'failed'
          AND ($3::text[] IS NULL OR jti = ANY($3::text[]))`,
      [tenant, id, jtis ?? null],
    );
    if (res.rowCount > 0) this.signal?.notify(tenant, [id]);
    return { retried: res.rowCount };
  }
}
