/**
 * RFC 8935 push delivery: POSTs the pending SETs of push receivers to their endpoints.
 *
 * Order: a receiver's SETs go strictly in publishing order (outbox seq); a SET that must be retried
 * holds back the ones after it until it is delivered or given up, so per-resource order is kept.
 * Receivers are delivered in parallel (config.eventPushConcurrency at a time).
 * Outcomes: any 2xx → delivered; 400 (the RFC 8935 error status, body {"err","description"}) →
 * failed, not retried, the next SET goes; anything else (network error, timeout, 3xx, 401/403/404,
 * 408, 429, 5xx) → retried with exponential backoff and jitter (Retry-After honoured), up to the
 * receiver's maxAttempts, then failed — except while the receiver is unreachable (no connection,
 * timeout, 408, 429, 502, 503, 504): that is an outage, not this SET's fault, so it is retried
 * until the receiver is back, however long (an outage must not turn a replica's events into
 * failed ones; the backlog shows in the receiver's state).
 * Nodes: a receiver is delivered by one node at a time, the holder of an unexpired lease on its row
 * (plain UPDATEs, so it works the same on PGlite and PostgreSQL and holds no lock during HTTP).
 * Secrets: authorization values and SETs are never logged nor stored in errors.
 */
import { randomUUID } from 'node:crypto';
import type { BackgroundWorker } from '../../app.ts';
import type { AppConfig } from '../../config.ts';
import { secretBoxFor } from '../../security/secret-box.ts';
import type { Database } from '../../store/db.ts';
import { authorizationPlace, DELIVERY_ERRORS, printable } from './receivers.ts';
import type { OutboxSignal } from './signal.ts';
import { plainHttpReason } from '../../sync/tls-policy.ts';

export const SET_MEDIA_TYPE = 'application/secevent+jwt';

/** How long a node idles before it looks at the database again without a signal (other nodes' rows). */
const IDLE_MS = 5_000;
/** Outbox rows read per round trip; the lease is renewed while they are delivered. */
const BATCH = 50;
/** Time one pass spends on one receiver before it yields (checked between batches). */
/** Deliveries recorded per statement at most. */
const FLUSH_EVERY = 50;
const SLICE_MS = 2_000;
/** Longest Retry-After honoured: a receiver cannot park a SET for longer than a day. */
const MAX_RETRY_AFTER_MS = 86_400_000;

export interface PushLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PushOptions {
  db: Database;
  signal: OutboxSignal;
  config: Pick<
    AppConfig,
    'eventPushBackoffBaseMs' | 'eventPushBackoffCapMs' | 'eventPushTimeoutMs' | 'eventPushConcurrency'
  > &
    Partial<Pick<AppConfig, 'syncRequireTls'>>;
  log?: PushLog;
  /** Random source of the jitter, in [0, 1) (tests pin it). */
  random?: () => number;
}

/** What one pass did. */
export interface PushPass {
  delivered: number;
  failed: number;
  retried: number;
  /** The earliest time a held-back SET is due again, if any. */
  nextDue?: Date;
}

interface Head {
  tenant_id: string;
  id: string;
  next_attempt: Date | string;
}

interface Claimed {
  endpoint_url: string | null;
  authorization_header: string | null;
  max_attempts: number;
}

interface Row {
  seq: string | number;
  jti: string;
  set_jwt: string;
  attempts: number;
  next_attempt: Date | string;
}

type Outcome =
  | { kind: 'delivered' }
  | { kind: 'failed'; error: string }
  /**
   * unreachable: the receiver is down or overloaded (no connection, timeout, 408, 429, 502-504),
   * nothing this SET did; such tries never exhaust maxAttempts, so an outage of any length loses
   * nothing: the stream waits (backoff up to the cap) and resumes in order.
   */
  | { kind: 'retry'; error: string; retryAfterMs?: number; unreachable: boolean }
  | { kind: 'stopped' };

/** Seconds or an HTTP-date (RFC 9110 §10.2.3) → milliseconds from now; undefined when unusable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}

/** Delay before attempt n+1 after n failed ones: base·2^(n-1), capped, with half of it random. */
export function backoffMs(failedAttempts: number, base: number, cap: number, random: () => number): number {
  const full = Math.min(cap, base * 2 ** Math.min(failedAttempts - 1, 40));
  return Math.round(full / 2 + (full / 2) * random());
}

export class PushWorker implements BackgroundWorker {
  readonly name = 'event-push';
  private readonly node = randomUUID();
  private readonly random: () => number;
  private readonly leaseMs: number;
  private stopping = new AbortController();
  private loop?: Promise<void>;
  private pass: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: PushOptions) {
    this.random = opts.random ?? Math.random;
    this.leaseMs = Math.max(60_000, 3 * opts.config.eventPushTimeoutMs);
  }

  start(): void {
    if (this.loop) return;
    this.stopping = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    this.loop = undefined;
    await this.pass.catch(() => undefined);
    // Let another node take over at once rather than after the lease expires.
    await this.opts.db
      .query('UPDATE event_receivers SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [
        this.node,
      ])
      .catch(() => undefined);
  }

  private async run(): Promise<void> {
    const abort = this.stopping.signal;
    while (!abort.aborted) {
      // Listen before the pass: a notify that arrives during it starts the next pass at once.
      const woken = this.opts.signal.wait(IDLE_MS, undefined, undefined, abort);
      let nextDue: Date | undefined;
      try {
        nextDue = (await this.deliverOnce()).nextDue;
      } catch (err) {
        this.opts.log?.error({ err: (err as Error).message }, 'event push pass failed');
      }
      if (abort.aborted) break;
      const untilDue = nextDue ? Math.max(0, nextDue.getTime() - Date.now()) : IDLE_MS;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        woken,
        new Promise<void>((r) => (timer = setTimeout(r, Math.min(untilDue, IDLE_MS)))),
      ]);
      clearTimeout(timer);
    }
  }

  /** Delivers everything due now, once; passes never overlap on one node. */
  deliverOnce(): Promise<PushPass> {
    const next = this.pass.catch(() => undefined).then(() => this.passOnce());
    this.pass = next;
    return next;
  }

  private async passOnce(): Promise<PushPass> {
    const { db, config } = this.opts;
    const now = new Date();
    // Each push receiver's first pending SET: its due time says whether the receiver can go now.
    const heads = await db.query<Head>(
      `SELECT r.tenant_id, r.id, h.next_attempt
         FROM event_receivers r
         CROSS JOIN LATERAL (
           SELECT o.next_attempt FROM event_outbox o
            WHERE o.tenant_id = r.tenant_id AND o.receiver_id = r.id AND o.state = 'pending'
            ORDER BY o.seq LIMIT 1) h
        WHERE r.delivery = 'push' AND NOT r.paused
          AND (r.lease_until IS NULL OR r.lease_until < $1 OR r.lease_owner = $2)
        ORDER BY h.next_attempt`,
      [now, this.node],
    );
    const result: PushPass = { delivered: 0, failed: 0, retried: 0 };
    const later = (d: Date) => {
      if (!result.nextDue || d < result.nextDue) result.nextDue = d;
    };
    const due: Head[] = [];
    for (const h of heads.rows) {
      const at = new Date(h.next_attempt);
      if (at <= now) due.push(h);
      else later(at);
    }
    let i = 0;
    const lane = async () => {
      while (i < due.length && !this.stopping.signal.aborted) {
        const h = due[i++];
        try {
          await this.deliverReceiver(h.tenant_id, h.id, result, later);
        } catch (err) {
          this.opts.log?.error(
            { tenant: h.tenant_id, receiver: h.id, err: (err as Error).message },
            'event push to a receiver failed',
          );
        } finally {
          await this.release(h.tenant_id, h.id).catch(() => undefined);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.eventPushConcurrency, due.length) }, lane));
    return result;
  }

  /** Takes or renews the lease; answers the receiver's current settings, or undefined when it must not go. */
  private async claim(tenant: string, id: string): Promise<Claimed | undefined> {
    const now = Date.now();
    const res = await this.opts.db.query<Claimed>(
      `UPDATE event_receivers SET lease_owner = $3, lease_until = $4
        WHERE tenant_id = $1 AND id = $2 AND delivery = 'push' AND NOT paused
          AND (lease_until IS NULL OR lease_until < $5 OR lease_owner = $3)
        RETURNING endpoint_url, authorization_header, max_attempts`,
      [tenant, id, this.node, new Date(now + this.leaseMs), new Date(now)],
    );
    const row = res.rows[0];
    // Stored sealed (receivers.ts authorizationPlace).
    if (row?.authorization_header)
      row.authorization_header = secretBoxFor(this.opts.db).open(
        row.authorization_header,
        authorizationPlace(tenant, id),
      );
    return row;
  }

  private async release(tenant: string, id: string): Promise<void> {
    await this.opts.db.query(
      `UPDATE event_receivers SET lease_owner = NULL, lease_until = NULL
        WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`,
      [tenant, id, this.node],
    );
  }

  private async deliverReceiver(
    tenant: string,
    id: string,
    result: PushPass,
    later: (d: Date) => void,
  ): Promise<void> {
    const started = Date.now();
    // Deliveries are recorded in groups (one statement each) instead of one per SET: a crash
    // between a 202 and its record re-sends at most FLUSH_EVERY SETs, which receivers answer
    // alike (RFC 8935 §2.3: re-delivery is idempotent; they dedupe by jti).
    let delivered: string[] = [];
    const flush = async () => {
      if (delivered.length === 0) return;
      const seqs = delivered;
      delivered = [];
      await this.recordDelivered(tenant, id, seqs, new Date());
    };
    try {
      await this.deliverBatches(
        tenant,
        id,
        result,
        later,
        started,
        (seq) => {
          delivered.push(seq);
          return delivered.length >= FLUSH_EVERY ? flush() : undefined;
        },
        flush,
      );
    } finally {
      await flush();
    }
  }

  private async deliverBatches(
    tenant: string,
    id: string,
    result: PushPass,
    later: (d: Date) => void,
    started: number,
    delivered: (seq: string) => Promise<void> | undefined,
    flush: () => Promise<void>,
  ): Promise<void> {
    const { db } = this.opts;
    for (;;) {
      // A busy receiver yields after a while: the next pass starts at once and serves the SETs that
      // other receivers got meanwhile, instead of waiting until this one's backlog is drained.
      if (Date.now() - started > SLICE_MS) {
        later(new Date());
        return;
      }
      // Claimed again per batch: picks up a pause, an endpoint change or a deletion between batches.
      const receiver = await this.claim(tenant, id);
      if (!receiver?.endpoint_url) return;
      let leaseUntil = Date.now() + this.leaseMs;
      // The previous batch's deliveries are recorded before its rows are read again as pending.
      await flush();
      const rows = await db.query<Row>(
        `SELECT seq, jti, set_jwt, attempts, next_attempt FROM event_outbox
          WHERE tenant_id = $1 AND receiver_id = $2 AND state = 'pending'
          ORDER BY seq LIMIT ${BATCH}`,
        [tenant, id],
      );
      if (rows.rows.length === 0) return;
      for (const row of rows.rows) {
        if (this.stopping.signal.aborted) return;
        const at = new Date(row.next_attempt);
        if (at.getTime() > Date.now()) {
          later(at);
          return;
        }
        if (leaseUntil - Date.now() < this.opts.config.eventPushTimeoutMs + 5_000) {
          if (!(await this.claim(tenant, id))) return;
          leaseUntil = Date.now() + this.leaseMs;
        }
        const outcome = await this.post(receiver, row.set_jwt);
        if (outcome.kind === 'stopped') return;
        const seq = String(row.seq);
        const now = new Date();
        if (outcome.kind === 'delivered') {
          await delivered(seq);
          result.delivered++;
          continue;
        }
        await flush();
        const attempts = row.attempts + 1;
        if (outcome.kind === 'failed' || (attempts >= receiver.max_attempts && !outcome.unreachable)) {
          const error =
            outcome.kind === 'failed'
              ? outcome.error
              : `gave up after ${attempts} attempts: ${outcome.error}`;
          await this.record(tenant, id, seq, 'failed', error, now, now);
          this.opts.log?.warn({ tenant, receiver: id, jti: row.jti, error }, 'event push failed');
          result.failed++;
          continue;
        }
        const delay =
          outcome.retryAfterMs ??
          backoffMs(
            attempts,
            this.opts.config.eventPushBackoffBaseMs,
            this.opts.config.eventPushBackoffCapMs,
            this.random,
          );
        const next = new Date(now.getTime() + delay);
        await this.record(tenant, id, seq, 'pending', outcome.error, now, next);
        result.retried++;
        later(next);
        // Held back: the SETs after this one wait for it (order kept).
        return;
      }
    }
  }

  /** Outbox rows delivered, and the receiver's last delivery, in one statement. */
  private async recordDelivered(tenant: string, id: string, seqs: string[], now: Date): Promise<void> {
    await this.opts.db.query(
      `WITH o AS (
         UPDATE event_outbox SET state = 'delivered', attempts = attempts + 1, last_error = NULL,
                next_attempt = $4, delivered_at = $4
          WHERE tenant_id = $1 AND receiver_id = $2 AND seq = ANY($3::bigint[]) AND state = 'pending'
          RETURNING 1)
       UPDATE event_receivers SET last_delivery_at = $4
        WHERE tenant_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM o)`,
      [tenant, id, seqs, now],
    );
  }

  /** One outbox row's new state, and the receiver's last error / last delivery, in one statement. */
  private async record(
    tenant: string,
    id: string,
    seq: string,
    state: 'delivered' | 'failed' | 'pending',
    error: string | null,
    now: Date,
    nextAttempt: Date,
  ): Promise<void> {
    await this.opts.db.query(
      `WITH o AS (
         UPDATE event_outbox SET state = $4, attempts = attempts + 1, last_error = $5, next_attempt = $7,
                delivered_at = CASE WHEN $4 = 'delivered' THEN $6::timestamptz END
          WHERE tenant_id = $1 AND receiver_id = $2 AND seq = $3 AND state = 'pending'
          RETURNING 1)
       UPDATE event_receivers SET
              last_delivery_at = CASE WHEN $4 = 'delivered' THEN $6::timestamptz ELSE last_delivery_at END,
              last_error = COALESCE($5, last_error),
              last_error_at = CASE WHEN $5::text IS NULL THEN last_error_at ELSE $6::timestamptz END
        WHERE tenant_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM o)`,
      [tenant, id, seq, state, error, now, nextAttempt],
    );
  }

  private async post(receiver: Claimed, jwt: string): Promise<Outcome> {
    // SCIMD_SYNC_REQUIRE_TLS: a plain-http endpoint stored before the switch is never called.
    const refused = this.opts.config.syncRequireTls
      ? plainHttpReason(receiver.endpoint_url!, 'endpointUrl')
      : undefined;
    if (refused) return { kind: 'failed', error: `not sent: ${refused}` };
    const headers: Record<string, string> = { 'content-type': SET_MEDIA_TYPE, accept: 'application/json' };
    if (receiver.authorization_header) headers.authorization = receiver.authorization_header;
    const timeout = this.opts.config.eventPushTimeoutMs;
    const signal = AbortSignal.any([AbortSignal.timeout(timeout), this.stopping.signal]);
    let res: Response;
    let text = '';
    try {
      // redirect: manual — a redirect is the receiver's misconfiguration; following it would send
      // the SET (and maybe the authorization) somewhere nobody configured.
      res = await fetch(receiver.endpoint_url!, {
        method: 'POST',
        headers,
        body: jwt,
        redirect: 'manual',
        signal,
      });
      if (res.status === 400) text = (await res.text()).slice(0, 4096);
      else await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      if (this.stopping.signal.aborted) return { kind: 'stopped' };
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError')
        return { kind: 'retry', error: `timeout after ${timeout} ms`, unreachable: true };
      return {
        kind: 'retry',
        error: `network error: ${e.cause?.code ?? e.cause?.message ?? e.message}`,
        unreachable: true,
      };
    }
    if (res.status >= 200 && res.status < 300) return { kind: 'delivered' };
    if (res.status === 400) return { kind: 'failed', error: setError(text) };
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    return {
      kind: 'retry',
      error: `HTTP ${res.status}`,
      unreachable: UNREACHABLE_STATUS.has(res.status),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
}

/** Answers that say the receiver cannot take anything now, whatever the SET. */
const UNREACHABLE_STATUS = new Set([408, 429, 502, 503, 504]);

/** The RFC 8935 error of a 400 body as "err: description" (bounded, control characters removed). */
function setError(text: string): string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const clean = (s: string) => printable(s);
  if (typeof body === 'object' && body !== null) {
    const { err, description } = body as { err?: unknown; description?: unknown };
    if (typeof err === 'string') {
      const code = (DELIVERY_ERRORS as readonly string[]).includes(err)
        ? err
        : `unknown error code ${clean(err)}`;
      return typeof description === 'string' && description ? `${code}: ${clean(description)}` : code;
    }
  }
  return 'HTTP 400 without an RFC 8935 error body';
}
