/**
 * HTTP side of asynchronous SCIM requests (RFC 9967 §2.5): the 202 answer to a write that asked
 * for `Prefer: respond-async`, and the completion resource its Location names. Registered inside
 * the SCIM route plugin, so the tenant and the client are established (401 without credentials)
 * before these run.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAdmin } from '../auth/scopes.ts';
import { SET_TYP } from '../events/keys.ts';
import { SCIM_MEDIA_TYPE } from '../http/errors.ts';
import { ScimError } from '../scim/errors.ts';
import type { Projection } from '../service/resources.ts';
import type { TenantSettings } from '../tenancy/settings.ts';
import { parsePrefer } from './prefer.ts';
import { completionLocation, type AsyncMethod, type AsyncRequests } from './requests.ts';
import type { InlineOutcome } from './worker.ts';

export interface AsyncInput {
  method: AsyncMethod;
  /** Relative to the tenant's SCIM base: /Users, /Users/{id}, /Bulk. */
  path: string;
  ifMatch?: string;
  body?: unknown;
  /** How the resource is projected when the request finishes within `wait` and is answered normally. */
  projection?: Projection;
  /** Sent to /Me: a normal answer carries Content-Location (RFC 7644 §3.11). */
  me?: boolean;
}

/** The tenant's `asyncRequests` setting: "request" (default) or "none". */
export function asyncRequestSetting(settings: Record<string, unknown> | TenantSettings): 'request' | 'none' {
  const v = (settings as { asyncRequests?: unknown }).asyncRequests;
  return typeof v === 'string' && v.toLowerCase() === 'none' ? 'none' : 'request';
}

/** Longest `wait` honoured, in seconds: a request is not held open longer than this. */
export const MAX_WAIT_SECONDS = 60;

/** Whether the request goes the async way: the client asked for respond-async and the tenant allows it. */
export function wantsAsync(request: FastifyRequest): boolean {
  const scim = request.scim;
  if (!scim?.principal || asyncRequestSetting(scim.settings) === 'none') return false;
  return parsePrefer(request.headers.prefer).respondAsync;
}

/**
 * Queues the request (durably: the row is committed before the answer) and answers
 * 202 Accepted with no body, Set-Txn, Preference-Applied and Location. With `wait=N` (RFC 7240
 * §4.3) the request is run at once and, if it finishes within N seconds (at most
 * MAX_WAIT_SECONDS), answered as a synchronous request would be, without Preference-Applied.
 */
export async function acceptAsync(
  requests: AsyncRequests,
  request: FastifyRequest,
  reply: FastifyReply,
  input: AsyncInput,
): Promise<FastifyReply> {
  const scim = request.scim!;
  const p = scim.principal!;
  const wait = parsePrefer(request.headers.prefer).wait ?? 0;
  const waitMs = Math.min(wait, MAX_WAIT_SECONDS) * 1000;
  const txn = await requests.accept(
    {
      tenant: scim.tenant,
      principal: {
        clientId: p.clientId,
        scopes: [...p.scopes],
        method: p.method,
        ...(p.userId ? { userId: p.userId } : {}),
        ...(p.endpointAppId ? { endpointAppId: p.endpointAppId } : {}),
      },
      method: input.method,
      path: input.path,
      baseUrl: scim.baseUrl,
      ifMatch: input.ifMatch,
      body: input.body,
    },
    { wake: waitMs === 0 },
  );
  if (waitMs > 0) {
    const outcome = await requests.runWithin(
      scim.tenant,
      txn,
      waitMs,
      { projection: input.projection ?? {} },
      (err) => request.log.error({ err, txn }, 'async request failed to run inline; the worker retries it'),
    );
    if (outcome) return sendOutcome(reply, outcome, input);
  }
  return reply
    .code(202)
    .header('set-txn', txn)
    .header('preference-applied', 'respond-async')
    .header('location', completionLocation(scim.baseUrl, txn))
    .send();
}

/** The synchronous answer of a request that finished within its `wait` (as scim-routes.ts sends it). */
function sendOutcome(reply: FastifyReply, outcome: InlineOutcome, input: AsyncInput): FastifyReply {
  switch (outcome.kind) {
    case 'error':
      throw outcome.error;
    case 'deleted':
      return reply.code(204).send();
    case 'bulk':
      return reply.code(200).type(SCIM_MEDIA_TYPE).send(outcome.response);
    case 'resource': {
      const { result } = outcome;
      reply.header('etag', result.etag);
      if (outcome.status === 201) reply.header('location', result.location);
      if (input.me) reply.header('content-location', result.location);
      // As the synchronous PATCH: a member change without attributes asked for answers 204.
      const projection = input.projection ?? {};
      if (outcome.membersChanged && !projection.attributes && !projection.excludedAttributes) {
        return reply.code(204).send();
      }
      return reply.code(outcome.status).type(SCIM_MEDIA_TYPE).send(result.resource);
    }
  }
}

/**
 * GET /.async/{txn}: 202 with a small JSON status while queued or running; when finished, 200 with
 * the completion SET (`application/secevent+jwt`), or for Bulk `{"sets": {jti: SET}}` in
 * operation order (the RFC 8936 poll response shape). Only the client that sent the request or an
 * admin of the tenant may read it; to anyone else, as for an unknown txn, it does not exist (404).
 */
export function completionRoutes(requests: AsyncRequests) {
  return (scim: FastifyInstance): void => {
    scim.get<{ Params: { txn: string } }>('/.async/:txn', async (request, reply) => {
      const scim = request.scim!;
      const p = scim.principal!;
      const row = await requests.find(scim.tenant, request.params.txn);
      if (!row || (row.client_id !== p.clientId && !isAdmin(p))) {
        throw ScimError.notFound(`No asynchronous request ${request.params.txn}`);
      }
      reply.header('set-txn', row.txn).header('cache-control', 'no-store');
      const sets = await requests.completionSets(row);
      if (!sets) {
        return reply
          .code(202)
          .header('retry-after', '1')
          .type('application/json')
          .send({ txn: row.txn, state: row.state, created: row.created.toISOString() });
      }
      if (row.path !== '/Bulk' || !row.result) {
        return reply.code(200).type(`application/${SET_TYP}`).send(sets[0]);
      }
      const byJti: Record<string, string> = {};
      row.result.forEach((claims, i) => {
        byJti[claims.jti] = sets[i];
      });
      return reply.code(200).type('application/json').send({ sets: byJti });
    });
  };
}
