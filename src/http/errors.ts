/**
 * Every failure leaves as a SCIM error body (RFC 7644 §3.12), whatever raised it: the SCIM core,
 * fastify (body too large, bad media type), a stored secret sealed with a key this node does not
 * have (503: a configuration problem of the node, the message names the row and key id, never the
 * value), or a bug (500, details only in the log).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ScimError } from '../scim/errors.ts';
import { SecretKeyMissing } from '../security/secret-box.ts';

export const SCIM_MEDIA_TYPE = 'application/scim+json';

export function sendError(reply: FastifyReply, err: ScimError): FastifyReply {
  if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="scimd"');
  return reply.code(err.status).type(SCIM_MEDIA_TYPE).send(err.toBody());
}

/** Maps anything thrown to a ScimError. */
export function toScimError(
  err: unknown,
  request: FastifyRequest,
  bodyLimitDetail: (url: string) => string,
): ScimError {
  if (err instanceof ScimError) return err;
  if (err instanceof SecretKeyMissing) {
    request.log.warn({ table: err.place.table, row: err.place.row, keyId: err.keyId }, err.message);
    return new ScimError(503, undefined, err.message);
  }
  const fe = err as Partial<FastifyError> & { code?: string };
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ScimError(413, undefined, bodyLimitDetail(request.url));
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ScimError(
        415,
        undefined,
        `Unsupported Content-Type "${String(request.headers['content-type'])}"; use application/scim+json or application/json`,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return ScimError.badRequest('invalidSyntax', 'The request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return ScimError.badRequest('invalidSyntax', 'Content-Length does not match the body');
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ScimError(fe.statusCode, undefined, fe.message ?? 'Bad request');
  }
  request.log.error({ err }, 'unhandled error');
  return new ScimError(
    500,
    undefined,
    'Internal server error; the request was not applied. See the server log.',
  );
}
