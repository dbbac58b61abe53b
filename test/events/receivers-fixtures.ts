/**
 * Fixtures of the delivery tests (push, poll, receivers): feeds and outbox rows written with SQL,
 * so these tests do not depend on the publisher; and a recording HTTP receiver on loopback.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from '../../src/app.ts';

export async function insertFeed(app: App, tenant: string, id: string): Promise<void> {
  await app.db.query(
    `INSERT INTO event_feeds (tenant_id, id, name, resource_types, form, position)
     VALUES ($1, $2, $2, ARRAY['User'], 'full', pg_current_xact_id())`,
    [tenant, id],
  );
}

export interface OutboxInput {
  jti: string;
  setJwt?: string;
  resourceId?: string;
}

/** A JWT-looking string, distinct per jti (delivery never parses it). */
export const fakeSet = (jti: string) =>
  `eyJhbGciOiJub25lIiwidHlwIjoic2VjZXZlbnQrand0In0.${Buffer.from(JSON.stringify({ jti })).toString('base64url')}.`;

/** Outbox rows for a receiver, in the given order (= publishing order). */
export async function insertOutbox(
  app: App,
  tenant: string,
  receiverId: string,
  rows: OutboxInput[],
): Promise<void> {
  for (const r of rows) {
    await app.db.query(
      `INSERT INTO event_outbox (tenant_id, receiver_id, jti, txn, resource_type, resource_id, event_uris, set_jwt)
       VALUES ($1, $2, $3, $4, 'User', $5, ARRAY['urn:ietf:params:scim:event:prov:create:full'], $6)`,
      [tenant, receiverId, r.jti, `txn-${r.jti}`, r.resourceId ?? 'u1', r.setJwt ?? fakeSet(r.jti)],
    );
  }
}

export interface OutboxState {
  jti: string;
  state: string;
  attempts: number;
  next_attempt: Date;
  last_error: string | null;
  delivered_at: Date | null;
}

export async function outboxRows(app: App, tenant: string, receiverId: string): Promise<OutboxState[]> {
  const res = await app.db.query<OutboxState>(
    `SELECT jti, state, attempts, next_attempt, last_error, delivered_at FROM event_outbox
      WHERE tenant_id = $1 AND receiver_id = $2 ORDER BY seq`,
    [tenant, receiverId],
  );
  return res.rows.map((r) => ({
    ...r,
    next_attempt: new Date(r.next_attempt),
    delivered_at: r.delivered_at ? new Date(r.delivered_at) : null,
  }));
}

/** Makes every held-back row of the receiver due now (time passing, without waiting). */
export async function makeDue(app: App, tenant: string, receiverId: string): Promise<void> {
  await app.db.query(
    `UPDATE event_outbox SET next_attempt = clock_timestamp() - interval '1 second'
      WHERE tenant_id = $1 AND receiver_id = $2 AND state = 'pending'`,
    [tenant, receiverId],
  );
}

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer (a hanging receiver). */
  hang?: boolean;
  /** Answer after this many milliseconds. */
  delayMs?: number;
}

/** An RFC 8935 receiver on 127.0.0.1 that records requests and answers from per-path queues (default 202). */
export class RecordingReceiver {
  readonly requests: Recorded[] = [];
  private readonly replies = new Map<string, Reply[]>();
  private server?: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        const reply = this.replies.get(req.url ?? '')?.shift() ?? { status: 202 };
        if (reply.hang) return;
        setTimeout(() => {
          res.writeHead(reply.status, reply.headers ?? {});
          res.end(reply.body ?? '');
        }, reply.delayMs ?? 0);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Queues answers for a path; once used up, the path answers 202. */
  reply(path: string, ...replies: Reply[]): void {
    this.replies.set(path, [...(this.replies.get(path) ?? []), ...replies]);
  }

  to(path: string): Recorded[] {
    return this.requests.filter((r) => r.url === path);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}
