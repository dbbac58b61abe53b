/**
 * The RFC 8936 poll endpoint (scimd as transmitter): a poll receiver POSTs
 * {maxEvents?, returnImmediately?, ack?, setErrs?} to /tenants/{t}/events/poll/{receiverId} (or
 * /events/poll/{receiverId} for the default tenant) as its client (pollClientId, scope events:poll,
 * or an admin of the tenant). Acks and setErrs apply to this receiver's SETs only; then pending SETs
 * are answered in publishing order, and with none pending and returnImmediately false the request
 * is held (long poll) until one is published or config.eventPollTimeoutSeconds pass.
 * An unacknowledged SET is returned again by later polls; after the receiver's maxAttempts returns
 * without an ack it is marked failed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator, PeerCertificate } from '../../auth/authenticator.ts';
import { DEFAULT_TENANT, isAdmin, type Principal } from '../../auth/scopes.ts';
import type { AppConfig } from '../../config.ts';
import { ScimError } from '../../scim/errors.ts';
import type { Database } from '../../store/db.ts';
import { printable, type ReceiverService } from './receivers.ts';
import type { OutboxSignal } from './signal.ts';

/** Most SETs in one answer when maxEvents is omitted ("no limit" would be an unbounded response). */
export const POLL_MAX_EVENTS = 1000;

export interface PollRouteDeps {
  config: Pick<AppConfig, 'eventPollTimeoutSeconds'>;
  db: Database;
  receivers: ReceiverService;
  signal: OutboxSignal;
  authenticator: Authenticator;
  peerCertificate: (request: FastifyRequest) => PeerCertificate | undefined;
}

export interface PollRequest {
  maxEvents?: number;
  returnImmediately?: boolean;
  ack?: string[];
  setErrs?: Record<string, { err: string; description?: string }>;
}

export interface PollResponse {
  sets: Record<string, string>;
  moreAvailable?: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function malformed(detail: string): ScimError {
  return ScimError.badRequest('invalidSyntax', `Malformed poll request: ${detail}`);
}

const clean = (s: string) => printable(s);

/** Validates the members RFC 8936 §2.4 defines; other members are ignored as the RFC asks. */
export function parsePollRequest(body: unknown): PollRequest {
  if (body === undefined || body === null) return {};
  if (!isObject(body)) throw malformed('the body must be a JSON object');
  const out: PollRequest = {};
  if (body.maxEvents !== undefined) {
    if (!Number.isInteger(body.maxEvents) || (body.maxEvents as number) < 0)
      throw malformed('maxEvents must be a non-negative integer');
    out.maxEvents = body.maxEvents as number;
  }
  if (body.returnImmediately !== undefined) {
    if (typeof body.returnImmediately !== 'boolean') throw malformed('returnImmediately must be a boolean');
    out.returnImmediately = body.returnImmediately;
  }
  if (body.ack !== undefined) {
    if (!Array.isArray(body.ack) || !body.ack.every((j) => typeof j === 'string' && j.length > 0))
      throw malformed('ack must be an array of jti strings');
    if (body.ack.length > 10_000) throw malformed('ack holds more than 10000 jti');
    out.ack = body.ack as string[];
  }
  if (body.setErrs !== undefined) {
    if (!isObject(body.setErrs)) throw malformed('setErrs must be an object keyed by jti');
    const entries = Object.entries(body.setErrs);
    if (entries.length > 10_000) throw malformed('setErrs holds more than 10000 jti');
    out.setErrs = {};
    for (const [jti, e] of entries) {
      if (!isObject(e) || typeof e.err !== 'string' || e.err.length === 0)
        throw malformed(`setErrs["${clean(jti)}"] must be an object with a string err`);
      if (e.description !== undefined && typeof e.description !== 'string')
        throw malformed(`setErrs["${clean(jti)}"].description must be a string`);
      out.setErrs[jti] = {
        err: e.err,
        ...(e.description !== undefined ? { description: e.description } : {}),
      };
    }
  }
  return out;
}

interface PendingRow {
  seq: string | number;
  jti: string;
  set_jwt: string;
  attempts: number;
}

export function pollRoutes(deps: PollRouteDeps) {
  const { db, receivers, signal, authenticator } = deps;
  // Long polls end when the server closes, rather than holding shutdown for the poll timeout.
  const closing = new AbortController();

  async function authorize(request: FastifyRequest, tenant: string, receiverId: string) {
    const principal: Principal = await authenticator.authenticate(tenant, {
      authorization: request.headers.authorization,
      peerCertificate: deps.peerCertificate(request),
    });
    const admin = principal.tenant === tenant && isAdmin(principal);
    const receiver = await receivers.find(tenant, receiverId);
    if (!receiver || receiver.delivery !== 'poll') {
      // Only an admin learns whether a receiver exists; a poll client is refused either way.
      if (admin) throw ScimError.notFound(`No poll receiver ${receiverId} in tenant ${tenant}`);
      throw forbidden(receiverId);
    }
    const own = receiver.poll_client_id === principal.clientId && principal.scopes.has('events:poll');
    if (!own && !admin) throw forbidden(receiverId);
    return receiver;
  }

  function forbidden(receiverId: string): ScimError {
    return new ScimError(
      403,
      undefined,
      `This client may not poll receiver ${receiverId} (it must be the receiver's pollClientId with scope events:poll, or an admin)`,
    );
  }

  /** Acks and setErrs, then up to `limit` pending SETs (attempts counted), in one transaction. */
  async function exchange(
    tenant: string,
    receiverId: string,
    maxAttempts: number,
    paused: boolean,
    req: PollRequest,
    limit: number,
  ): Promise<PollResponse> {
    return db.transaction(async (tx) => {
      const now = new Date();
      if (req.ack?.length) {
        // Also a SET given up on (failed): the receiver says it has it after all.
        const res = await tx.query(
          `UPDATE event_outbox SET state = 'delivered', delivered_at = $4, last_error = NULL
            WHERE tenant_id = $1 AND receiver_id = $2 AND jti = ANY($3::text[]) AND state <> 'delivered'`,
          [tenant, receiverId, req.ack, now],
        );
        if (res.rowCount > 0)
          await tx.query(
            'UPDATE event_receivers SET last_delivery_at = $3 WHERE tenant_id = $1 AND id = $2',
            [tenant, receiverId, now],
          );
      }
      const errs = Object.entries(req.setErrs ?? {});
      if (errs.length) {
        const messages = errs.map(([, e]) => clean(e.description ? `${e.err}: ${e.description}` : e.err));
        const res = await tx.query(
          `UPDATE event_outbox o SET state = 'failed', last_error = e.msg
             FROM unnest($3::text[], $4::text[]) AS e(jti, msg)
            WHERE o.tenant_id = $1 AND o.receiver_id = $2 AND o.jti = e.jti AND o.state = 'pending'`,
          [tenant, receiverId, errs.map(([jti]) => jti), messages],
        );
        if (res.rowCount > 0)
          await tx.query(
            'UPDATE event_receivers SET last_error = $3, last_error_at = $4 WHERE tenant_id = $1 AND id = $2',
            [tenant, receiverId, messages[messages.length - 1], now],
          );
      }
      if (limit === 0 || paused) return { sets: {} };
      const sets: Record<string, string> = {};
      for (;;) {
        const rows = await tx.query<PendingRow>(
          `SELECT seq, jti, set_jwt, attempts FROM event_outbox
            WHERE tenant_id = $1 AND receiver_id = $2 AND state = 'pending'
            ORDER BY seq LIMIT $3`,
          [tenant, receiverId, limit + 1],
        );
        const more = rows.rows.length > limit;
        const batch = rows.rows.slice(0, limit);
        // Returned maxAttempts times without an ack: given up (an admin can retry it).
        const exhausted = batch.filter((r) => r.attempts >= maxAttempts);
        const sending = batch.filter((r) => r.attempts < maxAttempts);
        if (exhausted.length) {
          const error = `not acknowledged after ${maxAttempts} polls`;
          await tx.query(
            `UPDATE event_outbox SET state = 'failed', last_error = $4
              WHERE tenant_id = $1 AND receiver_id = $2 AND seq = ANY($3::bigint[])`,
            [tenant, receiverId, exhausted.map((r) => String(r.seq)), error],
          );
          await tx.query(
            'UPDATE event_receivers SET last_error = $3, last_error_at = $4 WHERE tenant_id = $1 AND id = $2',
            [tenant, receiverId, error, now],
          );
          // Only given-up SETs in this batch: look past them.
          if (sending.length === 0 && more) continue;
        }
        if (sending.length) {
          await tx.query(
            `UPDATE event_outbox SET attempts = attempts + 1, next_attempt = $4
              WHERE tenant_id = $1 AND receiver_id = $2 AND seq = ANY($3::bigint[])`,
            [tenant, receiverId, sending.map((r) => String(r.seq)), now],
          );
        }
        for (const r of sending) sets[r.jti] = r.set_jwt;
        return { sets, moreAvailable: more };
      }
    });
  }

  async function handle(request: FastifyRequest, reply: FastifyReply, tenant: string, receiverId: string) {
    const receiver = await authorize(request, tenant, receiverId);
    const req = parsePollRequest(request.body);
    const limit = Math.min(req.maxEvents ?? POLL_MAX_EVENTS, POLL_MAX_EVENTS);
    const longPoll = !req.returnImmediately && limit > 0;
    const deadline = Date.now() + deps.config.eventPollTimeoutSeconds * 1000;
    const done = new AbortController();
    // The response closing before it is sent: the poller went away.
    const onClose = () => done.abort();
    reply.raw.once('close', onClose);
    const abort = AbortSignal.any([done.signal, closing.signal]);
    // Listening starts before each look at the outbox: a notify in between is not missed. The wait
    // also ends every 5 s: SETs published by another node are not signalled here.
    const listen = () =>
      signal.wait(Math.max(0, Math.min(deadline - Date.now(), 5_000)), tenant, receiverId, abort);
    try {
      let woken = longPoll ? listen() : undefined;
      let answer = await exchange(tenant, receiverId, receiver.max_attempts, receiver.paused, req, limit);
      // Ack and setErrs are applied once; the long poll only looks for SETs again.
      while (woken && Object.keys(answer.sets).length === 0 && !answer.moreAvailable) {
        await woken;
        if (abort.aborted || Date.now() >= deadline) break;
        woken = listen();
        const current = await receivers.find(tenant, receiverId);
        if (!current || current.delivery !== 'poll') break;
        answer = await exchange(tenant, receiverId, current.max_attempts, current.paused, {}, limit);
      }
      // RFC 8936: moreAvailable omitted means false.
      const body: PollResponse = answer.moreAvailable ? answer : { sets: answer.sets };
      return reply.code(200).type('application/json').header('cache-control', 'no-store').send(body);
    } finally {
      reply.raw.off('close', onClose);
      done.abort();
    }
  }

  return async function routes(app: FastifyInstance): Promise<void> {
    app.addHook('preClose', async () => closing.abort());
    app.post<{ Params: { tenant: string; receiverId: string } }>(
      '/tenants/:tenant/events/poll/:receiverId',
      async (request, reply) => handle(request, reply, request.params.tenant, request.params.receiverId),
    );
    app.post<{ Params: { receiverId: string } }>('/events/poll/:receiverId', async (request, reply) =>
      handle(request, reply, DEFAULT_TENANT, request.params.receiverId),
    );
  };
}
