/**
 * Errors the client throws. A SCIM error answer becomes a ScimClientError carrying everything the
 * server said (status, scimType, detail, headers) so callers can branch on it; transport failures
 * and refusals made locally (a capability the server does not advertise) have their own classes.
 */
import type { JsonValue } from '../scim/json.ts';

export type ResponseHeaders = Record<string, string>;

export class ScimClientError extends Error {
  constructor(
    readonly status: number,
    readonly scimType: string | undefined,
    readonly detail: string | undefined,
    readonly headers: ResponseHeaders,
    /** The parsed response body (a SCIM Error when the server follows RFC 7644 §3.12). */
    readonly body: JsonValue | undefined,
    readonly method: string,
    readonly url: string,
  ) {
    super(
      `${method} ${url} failed with ${status}${scimType ? ` ${scimType}` : ''}${detail ? `: ${detail}` : ''}`,
    );
    this.name = 'ScimClientError';
  }
}

/** The request never got an HTTP answer: connection refused/reset, TLS failure or timeout. */
export class ScimNetworkError extends Error {
  constructor(
    message: string,
    readonly method: string,
    readonly url: string,
    /** Whether the request may have reached the server (decides if a POST can be retried). */
    readonly sent: boolean,
    readonly timedOut: boolean,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'ScimNetworkError';
  }
}

/** The caller asked for something the server does not advertise (filter, sort, PATCH...). */
export class ScimUnsupportedError extends Error {
  constructor(
    readonly feature: string,
    message: string,
  ) {
    super(message);
    this.name = 'ScimUnsupportedError';
  }
}

/**
 * PATCH operations could not be applied on the client (server without PATCH, see
 * ResourceClient.patch): the status and scimType the server would have answered, nothing written.
 */
export class ScimPatchApplyError extends Error {
  constructor(
    readonly status: number,
    readonly scimType: string | undefined,
    readonly detail: string,
  ) {
    super(`PATCH operations cannot be applied: ${status}${scimType ? ` ${scimType}` : ''}: ${detail}`);
    this.name = 'ScimPatchApplyError';
  }
}

/** The OAuth 2.0 token endpoint refused or failed (RFC 6749 §5.2 error body when given). */
export class ScimAuthError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly error: string | undefined,
  ) {
    super(message);
    this.name = 'ScimAuthError';
  }
}
