/**
 * Runs the queued asynchronous SCIM requests through the same ResourceService code as synchronous
 * ones, with the rights the request was accepted with, and stores their misc:asyncresp SETs.
 *
 * Exactly once: a request is claimed (state running, attempts + 1, committed), then run in ONE
 * transaction that locks its row, performs the write(s) (the service joins the transaction in a
 * savepoint per operation) and stores the completion claims with state done/failed. A crash rolls
 * back the write and the completion together; the row stays `running` and is claimed again when
 * its lease has run out (by this node after a restart, or by another node). Two nodes cannot both
 * run it: the run transaction re-checks, under the row lock, that the claim is still its own.
 * Signing (which reads the key table outside the transaction) follows the commit; a finished row
 * left unsigned is signed by the next pass or by the first GET of its completion resource.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { BackgroundWorker } from '../app.ts';
import {
  isManagedOnly,
  mayReadSecrets,
  normalizeScopes,
  requireWrite,
  type Principal,
} from '../auth/scopes.ts';
import type { AppConfig } from '../config.ts';
import { buildScimEvent, bulkTxn, type SetClaims } from '../events/set.ts';
import { ScimError } from '../scim/errors.ts';
import type { JsonObject } from '../scim/json.ts';
import type { ResourceTypeConfig } from '../scim/schema/registry.ts';
import { parseBulkRequest, runBulk, type BulkOperationResult, type BulkResponse } from '../service/bulk.ts';
import type { Projection, RequestContext, ResourceResult, ResourceService } from '../service/resources.ts';
import type { Queryable } from '../store/db.ts';
import type { TenantDirectory } from '../tenancy/directory.ts';
import { effectiveLimits, type TenantSettings } from '../tenancy/settings.ts';
import type { AsyncMethod, AsyncRequestRow, AsyncRequests, AsyncState } from './requests.ts';

export interface AsyncWorkerOptions {
  /** Seconds after which a `running` row is considered abandoned and claimed again. Default 30. */
  leaseSeconds?: number;
  /** Runs of one request (crashes, lost connections) before it fails with 500. Default 5. */
  maxAttempts?: number;
  /** Poll interval when no request was accepted on this node (other nodes, expired leases). Default 1000. */
  pollMs?: number;
  /** Days a finished request (and its completion resource) is kept. Default 7. */
  keepDays?: number;
  log?: FastifyBaseLogger;
}

interface Completion {
  state: AsyncState;
  claims: SetClaims[];
}

/**
 * What a request run inline (Prefer: wait=N) answers when it finishes in time: what the
 * synchronous path would have sent. Only held in memory; the stored completion is the SET.
 */
export type InlineOutcome =
  | { kind: 'resource'; status: 200 | 201; result: ResourceResult; membersChanged?: boolean }
  | { kind: 'deleted' }
  | { kind: 'bulk'; response: BulkResponse }
  | { kind: 'error'; error: ScimError };

/** How an inline run projects the resource it answers with (the client's attributes parameters). */
export interface InlineOptions {
  projection: Projection;
}

interface Executed {
  completion: Completion;
  outcome: InlineOutcome;
}

/** A non-SCIM error while running: the transaction is rolled back and the request tried again. */
class Retry extends Error {}

export class AsyncWorker implements BackgroundWorker {
  readonly name = 'async-requests';
  /** This process's claims: a restarted process has a new id, so it never mistakes a dead run for its own. */
  private readonly node = randomBytes(8).toString('hex');
  private readonly leaseSeconds: number;
  private readonly maxAttempts: number;
  private readonly pollMs: number;
  private readonly keepDays: number;
  /** When this worker last deleted expired requests: at most once a minute, not on every poll. */
  private lastPrune = 0;
  private loop?: Promise<void>;
  private abort?: AbortController;

  constructor(
    private readonly requests: AsyncRequests,
    private readonly service: ResourceService,
    private readonly tenants: TenantDirectory,
    private readonly config: AppConfig,
    private readonly options: AsyncWorkerOptions = {},
  ) {
    this.leaseSeconds = options.leaseSeconds ?? 30;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.pollMs = options.pollMs ?? 1000;
    this.keepDays = options.keepDays ?? 7;
    requests.attachRunner(this);
  }

  start(): void {
    if (this.loop) return;
    const abort = new AbortController();
    this.abort = abort;
    this.loop = (async () => {
      while (!abort.signal.aborted) {
        let ran = 0;
        try {
          ran = await this.runOnce();
        } catch (err) {
          this.options.log?.error({ err }, 'async request pass failed; the request will be retried');
        }
        if (ran === 0 && !abort.signal.aborted) await this.requests.waitForWork(this.pollMs, abort.signal);
      }
    })();
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    await this.loop;
    this.loop = undefined;
  }

  /**
   * One pass: forgets requests finished more than keepDays ago (at most once a minute), signs finished requests left
   * unsigned, then claims and runs queued (or abandoned) requests until none is left. Returns how
   * many requests it ran.
   */
  async runOnce(): Promise<number> {
    if (Date.now() - this.lastPrune >= 60_000) {
      await this.requests.db.query(
        `DELETE FROM async_requests WHERE state IN ('done', 'failed')
            AND finished < now() - make_interval(secs => $1::double precision)`,
        [this.keepDays * 86_400],
      );
      this.lastPrune = Date.now();
    }
    for (const r of await this.requests.unsigned(100)) await this.requests.sign(r.tenant_id, r.txn);
    let ran = 0;
    for (;;) {
      const claimed = await this.claim();
      if (!claimed) return ran;
      await this.run(claimed.tenant_id, claimed.txn, claimed.attempts);
      ran += 1;
    }
  }

  /**
   * Runs one just-accepted request now, in the caller's process (Prefer: wait=N): the same claim,
   * transaction and completion as a worker pass. Undefined when another worker got it first.
   */
  async runNow(tenant: string, txn: string, inline: InlineOptions): Promise<InlineOutcome | undefined> {
    const res = await this.requests.db.query<{ attempts: number }>(
      `UPDATE async_requests SET state = 'running', attempts = attempts + 1, claimed_by = $3, claimed_at = now()
        WHERE tenant_id = $1 AND txn = $2 AND state = 'queued' RETURNING attempts`,
      [tenant, txn, this.node],
    );
    if (!res.rows[0]) return undefined;
    return this.run(tenant, txn, res.rows[0].attempts, inline);
  }

  private async claim(): Promise<{ tenant_id: string; txn: string; attempts: number } | undefined> {
    const res = await this.requests.db.query<{ tenant_id: string; txn: string; attempts: number }>(
      `UPDATE async_requests SET state = 'running', attempts = attempts + 1, claimed_by = $1, claimed_at = now()
        WHERE (tenant_id, txn) IN (
          SELECT tenant_id, txn FROM async_requests
           WHERE state = 'queued'
              OR (state = 'running' AND claimed_at <= now() - make_interval(secs => $2::double precision))
           ORDER BY created, txn LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING tenant_id, txn, attempts`,
      [this.node, this.leaseSeconds],
    );
    return res.rows[0];
  }

  private async run(
    tenant: string,
    txn: string,
    attempts: number,
    inline?: InlineOptions,
  ): Promise<InlineOutcome | undefined> {
    try {
      // Read before the transaction: the embedded store has one connection, held by the transaction.
      const settings = (await this.tenants.get(tenant))?.settings;
      const finished = await this.service.inTransaction(async (tx) => {
        const res = await tx.query<AsyncRequestRow>(
          `SELECT tenant_id, txn, client_id, principal, method, path, base_url, if_match, body
             FROM async_requests
            WHERE tenant_id = $1 AND txn = $2 AND state = 'running' AND claimed_by = $3 FOR UPDATE`,
          [tenant, txn, this.node],
        );
        const row = res.rows[0];
        if (!row) return undefined; // claimed again by another node after our lease ran out
        const { completion, outcome } =
          attempts > this.maxAttempts ? this.gaveUp(row) : await this.execute(tx, row, settings, inline);
        await tx.query(
          `UPDATE async_requests SET state = $3, result = $4, finished = now(), claimed_by = NULL
            WHERE tenant_id = $1 AND txn = $2`,
          [tenant, txn, completion.state, JSON.stringify(completion.claims)],
        );
        return outcome;
      });
      if (finished) await this.requests.sign(tenant, txn);
      return finished;
    } catch (err) {
      // Rolled back: nothing of the request was applied. Queued again; the pass ends here, so a
      // failing store is not hammered (the loop waits before the next pass).
      await this.requests.db.query(
        `UPDATE async_requests SET state = 'queued', claimed_by = NULL
          WHERE tenant_id = $1 AND txn = $2 AND state = 'running' AND claimed_by = $3`,
        [tenant, txn, this.node],
      );
      throw err;
    }
  }

  private gaveUp(row: AsyncRequestRow): Executed {
    return this.failed(
      row,
      new ScimError(500, undefined, 'Internal server error; the request could not be run'),
    );
  }

  /** A request that ended with a SCIM error: one completion with `response` = the SCIM Error. */
  private failed(row: AsyncRequestRow, err: ScimError): Executed {
    const result: BulkOperationResult = {
      method: row.method,
      status: String(err.status),
      response: err.toBody() as unknown as JsonObject,
    };
    return {
      completion: this.completion(row, [{ index: undefined, result }]),
      outcome: { kind: 'error', error: err },
    };
  }

  /** Runs the request in `tx`; SCIM errors become its completion, anything else a Retry. */
  private async execute(
    tx: Queryable,
    row: AsyncRequestRow,
    settings: TenantSettings | undefined,
    inline?: InlineOptions,
  ): Promise<Executed> {
    const fail = (err: ScimError): Executed => this.failed(row, err);
    let principal: Principal;
    let ctx: RequestContext;
    let types: ResourceTypeConfig[];
    try {
      ({ principal, ctx, types } = await this.contextOf(tx, row, settings));
    } catch (err) {
      if (err instanceof ScimError) return fail(err);
      throw err;
    }
    const body: unknown = row.body === null ? undefined : JSON.parse(row.body);
    const typeOf = (endpoint: string) =>
      types.find((t) => t.endpoint.toLowerCase() === `/${endpoint}`.toLowerCase());

    if (row.path === '/Bulk') {
      let parsed: ReturnType<typeof parseBulkRequest>;
      try {
        parsed = parseBulkRequest(body, ctx.limits.bulkMaxOperations);
      } catch (err) {
        if (err instanceof ScimError) return fail(err);
        throw err;
      }
      const results: { index: number; result: BulkOperationResult }[] = [];
      let unexpected: unknown;
      const response = await runBulk(this.service, ctx, parsed.ops, parsed.failOnErrors, {
        resourceType: typeOf,
        authorize: (rt) => requireWrite(principal, rt.name),
        onError: (err) => {
          unexpected = err;
        },
        onResult: (index, result) => results.push({ index, result }),
      });
      // A 500 inside Bulk is retried like any other unexpected error rather than reported.
      if (unexpected !== undefined) throw new Retry(String(unexpected));
      results.sort((a, b) => a.index - b.index);
      const paths = parsed.ops.map((o) => o.path);
      const completion = this.completion(
        row,
        results.map((r) => ({ ...r, path: paths[r.index] })),
        'done',
      );
      return { completion, outcome: { kind: 'bulk', response } };
    }

    const segments = row.path.split('/').filter(Boolean);
    const method = row.method;
    try {
      const rt = typeOf(segments[0] ?? '');
      if (!rt) throw ScimError.notFound(`No resource endpoint /${segments[0] ?? ''}`);
      requireWrite(principal, rt.name);
      // A worker pass answers nobody: the stored completion needs only id and version.
      const projection = inline?.projection ?? { attributes: ['id'] };
      const ifMatch = row.if_match ?? undefined;
      let result: BulkOperationResult;
      let outcome: InlineOutcome;
      if (method === 'POST') {
        const res = await this.service.create(ctx, rt, body, projection);
        result = { method, status: '201', version: res.etag, location: res.location };
        outcome = { kind: 'resource', status: 201, result: res };
      } else {
        const id = decodeURIComponent(segments[1] ?? '');
        if (method === 'DELETE') {
          await this.service.delete(ctx, rt, id, ifMatch);
          result = { method, status: '204' };
          outcome = { kind: 'deleted' };
        } else if (method === 'PUT') {
          const res = await this.service.replace(ctx, rt, id, body, ifMatch, projection);
          result = { method, status: '200', version: res.etag, location: res.location };
          outcome = { kind: 'resource', status: 200, result: res };
        } else {
          const res = await this.service.patch(ctx, rt, id, body, ifMatch, projection);
          result = { method, status: '200', version: res.etag, location: res.location };
          outcome = { kind: 'resource', status: 200, result: res, membersChanged: res.membersChanged };
        }
      }
      return { completion: this.completion(row, [{ index: undefined, result }]), outcome };
    } catch (err) {
      if (err instanceof ScimError) return fail(err);
      throw err;
    }
  }

  /**
   * The request as its client would have run it: the tenant's current settings and types, and the
   * rights it was accepted with, narrowed to what the client still holds (a deleted client's
   * queued requests fail with 401; a bootstrap principal has no client row).
   */
  private async contextOf(
    tx: Queryable,
    row: AsyncRequestRow,
    settings: TenantSettings | undefined,
  ): Promise<{ principal: Principal; ctx: RequestContext; types: ResourceTypeConfig[] }> {
    if (!settings) throw ScimError.notFound(`No tenant ${row.tenant_id}`);
    const tenant = { settings };
    const stored = row.principal;
    let scopes = normalizeScopes(stored.scopes);
    if (stored.method !== 'bootstrap') {
      const res = await tx.query<{ scopes: string[] }>(
        'SELECT scopes FROM clients WHERE tenant_id = $1 AND id = $2',
        [row.tenant_id, stored.clientId],
      );
      if (!res.rows[0])
        throw new ScimError(401, undefined, 'The client that sent this request no longer exists');
      const now = normalizeScopes(res.rows[0].scopes);
      scopes = new Set([...scopes].filter((s) => now.has(s)));
    }
    const principal: Principal = {
      tenant: row.tenant_id,
      clientId: stored.clientId,
      scopes,
      method: stored.method,
    };
    if (stored.userId) principal.userId = stored.userId;
    if (stored.endpointAppId) principal.endpointAppId = stored.endpointAppId;
    const enabled = tenant.settings.resourceTypes?.map((n) => n.toLowerCase());
    const types = this.service.registry
      .resourceTypes()
      .filter((rt) => !enabled || enabled.includes(rt.name.toLowerCase()));
    const ctx: RequestContext = {
      tenant: row.tenant_id,
      baseUrl: row.base_url,
      clientId: principal.clientId,
      limits: effectiveLimits(this.config, tenant.settings),
      settings: tenant.settings as Record<string, unknown>,
      managed: isManagedOnly(principal)
        ? { clientId: principal.clientId, appIds: principal.endpointAppId ? [principal.endpointAppId] : [] }
        : undefined,
      hideSensitive: !mayReadSecrets(principal),
      transaction: tx,
    };
    return { principal, ctx, types };
  }

  /**
   * The misc:asyncresp claims: one for a single request (txn = Set-Txn), one per operation for
   * Bulk (txn = <Set-Txn>:<index>, zero-based in the original order; RFC 9967 §2.5.1.2).
   * sub_id.uri is the resource written, or the path the request named when it failed.
   */
  private completion(
    row: AsyncRequestRow,
    results: { index: number | undefined; result: BulkOperationResult; path?: string }[],
    state?: AsyncState,
  ): Completion {
    const claims = results.map(({ index, result, path }) => {
      const location = result.location;
      const uri =
        location && location.startsWith(row.base_url)
          ? location.slice(row.base_url.length)
          : (path ?? row.path);
      return buildScimEvent(
        {
          type: 'asyncresp',
          uri: uri.startsWith('/') ? uri : `/${uri}`,
          method: result.method as AsyncMethod,
          status: result.status,
          ...(result.version !== undefined ? { version: result.version } : {}),
          ...(result.bulkId !== undefined ? { bulkId: result.bulkId } : {}),
          ...(result.response !== undefined ? { response: result.response as JsonObject } : {}),
        },
        {
          issuer: row.base_url,
          audience: row.client_id,
          txn: index === undefined ? row.txn : bulkTxn(row.txn, index),
        },
      );
    });
    const failed =
      results.length === 1 && results[0].index === undefined && Number(results[0].result.status) >= 400;
    return { state: state ?? (failed ? 'failed' : 'done'), claims };
  }
}
