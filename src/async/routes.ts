/**
 * HTTP side of asynchronous SCIM requests (RFC 9967 §2.5): the 202 answer to a write that asked
 * for `Prefer: respond-async`, and the completion resource its Location names. Registered inside
 * the SCIM route plugin, so the tenant and the client are established (401 without credentials)
 * before these run.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAdmin } from '../auth/scopes.ts';
import { SET_TYP } from '../events/keys.ts';
import { ScimError } from '../scim/errors.ts';
import type { TenantSettings } from '../tenancy/settings.ts';
import { parsePrefer } from './prefer.ts';
import { completionLocation, type AsyncMethod, type AsyncRequests } from './requests.ts';

/** The tenant's `asyncRequests` setting: "request" (default) or "none". */
export function asyncRequestSetting(settings: Record<string, unknown> | TenantSettings): 'request' | 'none' {
  const v = (settings as { asyncRequests?: unknown }).asyncRequests;
  return typeof v === 'string' && v.toLowerCase() === 'none' ? 'none' : 'request';
}

/**
 * Whether to answer this request with 202: the client asked for respond-async and the tenant
 * allows it. `wait=N` is parsed but not applied: the request is queued and answered at once.
 */
export function wantsAsync(request: FastifyRequest): boolean {
  const scim = request.scim;
  if (!scim?.principal || asyncRequestSetting(scim.settings) === 'none') return false;
  return parsePrefer(request.headers.prefer).respondAsync;
}

/**
 * Queues the request (durably: the row is committed before the answer) and answers
 * 202 Accepted with no body, Set-Txn, Preference-Applied and Location.
 */
export async function acceptAsync(
  requests: AsyncRequests,
  request: FastifyRequest,
  reply: FastifyReply,
  input: { method: AsyncMethod; path: string; ifMatch?: string; body?: unknown },
): Promise<FastifyReply> {
  const scim = request.scim!;
  const p = scim.principal!;
  const txn = await requests.accept({
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
  });
  return reply
    .code(202)
    .header('set-txn', txn)
    .header('preference-applied', 'respond-async')
    .header('location', completionLocation(scim.baseUrl, txn))
    .send();
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
