/**
 * The RFC 8935 receiver endpoint: an upstream's publisher POSTs one SET
 * (`Content-Type: application/secevent+jwt`) to
 *   POST /tenants/{tenant}/events/push/{upstreamId}    (any tenant)
 *   POST /events/push/{upstreamId}                     (the default tenant)
 * as a client of the tenant with scope events:push (or admin; or the node operator).
 *
 * 202 with an empty body once the SET is stored (also for a SET received before: idempotent);
 * a refused SET is 400 `application/json` `{"err", "description"}` with `Content-Language: en`
 * (RFC 8935 §2.3). Other failures use the same body shape with their status: 401
 * authentication_failed, 403 access_denied, 404 / 415 invalid_request, 503 when the issuer's keys
 * cannot be fetched (the transmitter retries).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_TENANT, isAdmin, isOperator } from '../../auth/scopes.ts';
import { ScimError } from '../../scim/errors.ts';
import type { AdminGuards } from '../../http/admin-guards.ts';
import { SetError, type SetErrorCode, type SetIntake } from './intake.ts';
import type { UpstreamService } from './upstreams.ts';

export interface PushRouteDeps {
  intake: SetIntake;
  upstreams: UpstreamService;
  guards: AdminGuards;
}

export const SET_MEDIA_TYPE = 'application/secevent+jwt';

/** Largest SET accepted, in bytes. */
export const SET_BODY_LIMIT = 16 * 1024 * 1024;

type PushParams = { tenant?: string; upstreamId: string };

function sendSetError(
  reply: FastifyReply,
  status: number,
  err: SetErrorCode,
  description: string,
): FastifyReply {
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="scimd"');
  return (
    reply
      .code(status)
      .header('content-language', 'en')
      .type('application/json')
      // A Buffer, so that the media type stays exactly application/json (RFC 8935 §2.3).
      .send(Buffer.from(JSON.stringify({ err, description })))
  );
}

export function pushRoutes(deps: PushRouteDeps) {
  return async function routes(app: FastifyInstance): Promise<void> {
    // The body is the compact JWT as text, whatever the declared type: the handler checks the
    // type itself so that a wrong one gets an RFC 8935 error body, not a SCIM one.
    // A `full` SET of a large group carries its whole representation: allow more than a SCIM body
    // (the caller is authenticated before the body is read).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: SET_BODY_LIMIT }, (_req, body, done) =>
      done(null, body),
    );
    app.setErrorHandler((err, _request, reply) => {
      const status =
        err instanceof ScimError
          ? err.status
          : typeof (err as { statusCode?: unknown }).statusCode === 'number'
            ? (err as { statusCode: number }).statusCode
            : 500;
      if (status >= 500) {
        reply.log.error({ err }, 'SET receiver failed');
        return sendSetError(reply, 500, 'invalid_request', 'The SET could not be stored; retry later');
      }
      const code: SetErrorCode =
        status === 401 ? 'authentication_failed' : status === 403 ? 'access_denied' : 'invalid_request';
      return sendSetError(reply, status, code, err instanceof Error ? err.message : 'Bad request');
    });

    const authorize = async (request: FastifyRequest) => {
      const tenant = (request.params as PushParams).tenant ?? DEFAULT_TENANT;
      const p = await deps.guards.authenticate(request, tenant);
      // Throttled per client like the admin API (the rate limiter keys on adminPrincipal).
      request.adminPrincipal = p;
      const own = p.tenant === tenant && (p.scopes.has('events:push') || isAdmin(p));
      if (!own && !isOperator(p)) {
        throw new ScimError(
          403,
          undefined,
          `This credential may not push events to tenant ${tenant} (needs scope events:push)`,
        );
      }
    };

    const receive = async (request: FastifyRequest, reply: FastifyReply) => {
      const { upstreamId } = request.params as PushParams;
      const tenant = (request.params as PushParams).tenant ?? DEFAULT_TENANT;
      const upstream = await deps.upstreams.find(tenant, upstreamId);
      if (!upstream)
        return sendSetError(reply, 404, 'invalid_request', `No upstream ${upstreamId} in tenant ${tenant}`);
      const type = String(request.headers['content-type'] ?? '')
        .split(';')[0]
        .trim()
        .toLowerCase();
      if (type !== SET_MEDIA_TYPE) {
        return sendSetError(reply, 415, 'invalid_request', `Content-Type must be ${SET_MEDIA_TYPE}`);
      }
      const body = typeof request.body === 'string' ? request.body : '';
      try {
        await deps.intake.receive(upstream, body, 'push');
      } catch (err) {
        if (!(err instanceof SetError)) throw err;
        return sendSetError(reply, err.temporary ? 503 : 400, err.err, err.description);
      }
      return reply.code(202).send();
    };

    app.post('/tenants/:tenant/events/push/:upstreamId', { onRequest: authorize }, receive);
    app.post('/events/push/:upstreamId', { onRequest: authorize }, receive);
  };
}
