/**
 * The durable queue of asynchronous SCIM requests (Prefer: respond-async, RFC 9967 §2.5): a
 * request accepted with 202 is a row of async_requests until the worker (worker.ts) has run it and
 * stored its completion SET(s); the completion resource (routes.ts) reads them from here.
 */
import { EventEmitter } from 'node:events';
import { newTxn, type SetClaims } from '../events/set.ts';
import type { SigningKeys } from '../events/keys.ts';
import type { Database, Queryable } from '../store/db.ts';
import type { InlineOptions, InlineOutcome } from './worker.ts';

/** Runs one accepted request at once (the worker of this node). */
export interface InlineRunner {
  runNow(tenant: string, txn: string, inline: InlineOptions): Promise<InlineOutcome | undefined>;
}

export type AsyncMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type AsyncState = 'queued' | 'running' | 'done' | 'failed';

/** The rights a request was accepted with (re-checked against the client when it runs). */
export interface StoredPrincipal {
  clientId: string;
  scopes: string[];
  userId?: string;
  endpointAppId?: string;
  method: 'bootstrap' | 'token' | 'jwt' | 'mtls';
}

export interface NewAsyncRequest {
  tenant: string;
  principal: StoredPrincipal;
  method: AsyncMethod;
  /** Relative to the tenant's SCIM base: /Users, /Users/{id}, /Bulk. */
  path: string;
  baseUrl: string;
  ifMatch?: string;
  body?: unknown;
}

export interface AsyncRequestRow {
  tenant_id: string;
  txn: string;
  client_id: string;
  principal: StoredPrincipal;
  method: AsyncMethod;
  path: string;
  base_url: string;
  if_match: string | null;
  body: string | null;
  state: AsyncState;
  attempts: number;
  claimed_by: string | null;
  result: SetClaims[] | null;
  sets: string[] | null;
  created: Date;
  finished: Date | null;
}

const COLUMNS = `tenant_id, txn, client_id, principal, method, path, base_url, if_match, body, state,
  attempts, claimed_by, result, sets, created, finished`;

/** The URL of a request's completion resource (the Location of its 202). */
export function completionLocation(baseUrl: string, txn: string): string {
  return `${baseUrl}/.async/${encodeURIComponent(txn)}`;
}

export class AsyncRequests {
  private readonly wake = new EventEmitter();
  private runner?: InlineRunner;

  constructor(
    readonly db: Database,
    private readonly keys: SigningKeys,
  ) {
    this.wake.setMaxListeners(0);
  }

  /** The worker that runs a request inline when the client is willing to wait (Prefer: wait=N); the first one stays. */
  attachRunner(runner: InlineRunner): void {
    this.runner ??= runner;
  }

  /**
   * Runs an accepted request now, for at most `waitMs`: its outcome when it finished in time;
   * undefined when it did not (it goes on and completes as an async request), when no worker is
   * attached, or when it failed unexpectedly (the worker retries it).
   */
  async runWithin(
    tenant: string,
    txn: string,
    waitMs: number,
    inline: InlineOptions,
    onError: (err: unknown) => void,
  ): Promise<InlineOutcome | undefined> {
    if (!this.runner || waitMs <= 0) return undefined;
    const running = this.runner.runNow(tenant, txn, inline).catch((err: unknown) => {
      onError(err);
      this.wake.emit('queued'); // queued again: the worker loop takes it
      return undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), waitMs);
    });
    try {
      return await Promise.race([running, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stores a request to run later; returns its Set-Txn. Committed before the 202 is sent. */
  async accept(req: NewAsyncRequest, opts: { wake?: boolean } = {}): Promise<string> {
    const txn = newTxn();
    await this.db.query(
      `INSERT INTO async_requests (tenant_id, txn, client_id, principal, method, path, base_url, if_match, body)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        req.tenant,
        txn,
        req.principal.clientId,
        JSON.stringify(req.principal),
        req.method,
        req.path,
        req.baseUrl,
        req.ifMatch ?? null,
        req.body === undefined ? null : JSON.stringify(req.body),
      ],
    );
    // A request about to run inline does not wake the worker loop (it would race for it).
    if (opts.wake !== false) this.wake.emit('queued');
    return txn;
  }

  async find(tenant: string, txn: string, q: Queryable = this.db): Promise<AsyncRequestRow | undefined> {
    const res = await q.query<AsyncRequestRow>(
      `SELECT ${COLUMNS} FROM async_requests WHERE tenant_id = $1 AND txn = $2`,
      [tenant, txn],
    );
    return res.rows[0];
  }

  /**
   * The signed completion SETs of a finished request, signing them first if that has not happened
   * yet (the completion commits with the write; signing needs the key store, so it follows).
   */
  async completionSets(row: AsyncRequestRow): Promise<string[] | undefined> {
    if (row.state !== 'done' && row.state !== 'failed') return undefined;
    if (row.sets) return row.sets;
    return this.sign(row.tenant_id, row.txn);
  }

  /** Signs the stored claims of a finished request (idempotent: the first stored signature wins). */
  async sign(tenant: string, txn: string): Promise<string[] | undefined> {
    const row = await this.find(tenant, txn);
    if (!row?.result) return undefined;
    if (row.sets) return row.sets;
    const sets: string[] = [];
    for (const claims of row.result) sets.push(await this.keys.sign(tenant, claims));
    await this.db.query(
      `UPDATE async_requests SET sets = $3 WHERE tenant_id = $1 AND txn = $2 AND sets IS NULL`,
      [tenant, txn, JSON.stringify(sets)],
    );
    return (await this.find(tenant, txn))?.sets ?? sets;
  }

  /** Finished requests whose SETs are not signed yet (a process stopped between commit and signing). */
  async unsigned(limit: number): Promise<{ tenant_id: string; txn: string }[]> {
    const res = await this.db.query<{ tenant_id: string; txn: string }>(
      `SELECT tenant_id, txn FROM async_requests
        WHERE sets IS NULL AND state IN ('done', 'failed') ORDER BY finished LIMIT $1`,
      [limit],
    );
    return res.rows;
  }

  /** Resolves when a request is accepted on this node, or after timeoutMs. */
  waitForWork(timeoutMs: number, abort?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake.off('queued', done);
        abort?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.wake.once('queued', done);
      abort?.addEventListener('abort', done, { once: true });
    });
  }
}
