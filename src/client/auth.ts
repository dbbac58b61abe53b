/**
 * Credentials for the SCIM requests: a static bearer token, or OAuth 2.0 client credentials
 * (RFC 6749 §4.4) with the access token cached until shortly before it expires and fetched again
 * when the server answers 401 (the token may have been revoked early).
 *
 * The token request is retried like a SCIM request (retry.ts): 429 and 503 after Retry-After or
 * backoff, network failures and timeouts with backoff. Unlike a SCIM POST it is retried even when it
 * may have reached the server: a client-credentials grant changes nothing but issuing a token, so a
 * repeat costs at most an unused token. Any other answer but 200 with an access_token is a
 * ScimAuthError at once, with the RFC 6749 §5.2 `error` and `error_description` in its message.
 */
import { ScimAuthError, ScimNetworkError } from './errors.ts';
import { backoffDelay, defaultSleep, parseRetryAfter, RETRY_STATUSES, type RetryOptions } from './retry.ts';
import type { HttpResponse, Transport } from './transport.ts';

export type AuthConfig =
  | { type: 'none' }
  | { type: 'bearer'; token: string }
  | {
      type: 'oauth2';
      tokenUrl: string;
      clientId: string;
      clientSecret: string;
      scope?: string;
      /** Extra form parameters some servers need (e.g. `audience`, `resource`). */
      params?: Record<string, string>;
      /** RFC 6749 §2.3.1: HTTP Basic (default) or the credentials in the form body. */
      clientAuth?: 'basic' | 'body';
      /** Fetch a new token this many seconds before `expires_in` runs out. Default 30. */
      expirySkewSeconds?: number;
    };

export interface AuthProvider {
  /**
   * The Authorization header value, or undefined to send none. `timeoutMs` bounds each attempt of
   * a token request this call starts (callers arriving while one is running share it).
   */
  header(timeoutMs?: number): Promise<string | undefined>;
  /** Forget a token the server refused; true when a fresh one can be tried (once per refusal). */
  invalidate(): boolean;
}

export function createAuth(
  config: AuthConfig | undefined,
  transport: Transport,
  timeoutMs: number,
  userAgent: string,
  now: () => number,
  retry: RetryOptions = {},
): AuthProvider {
  if (!config || config.type === 'none') return { header: async () => undefined, invalidate: () => false };
  if (config.type === 'bearer') {
    const value = `Bearer ${config.token}`;
    return { header: async () => value, invalidate: () => false };
  }
  return new ClientCredentials(config, transport, timeoutMs, userAgent, now, retry);
}

type OAuthConfig = Extract<AuthConfig, { type: 'oauth2' }>;

class ClientCredentials implements AuthProvider {
  private token: { value: string; expiresAt: number } | undefined;
  /** One request to the token endpoint at a time: concurrent callers share it. */
  private pending: Promise<string> | undefined;

  constructor(
    private readonly config: OAuthConfig,
    private readonly transport: Transport,
    private readonly timeoutMs: number,
    private readonly userAgent: string,
    private readonly now: () => number,
    private readonly retry: RetryOptions,
  ) {}

  async header(timeoutMs?: number): Promise<string> {
    if (this.token && this.now() < this.token.expiresAt) return `Bearer ${this.token.value}`;
    this.pending ??= this.fetchToken(timeoutMs ?? this.timeoutMs).finally(() => (this.pending = undefined));
    return `Bearer ${await this.pending}`;
  }

  invalidate(): boolean {
    this.token = undefined;
    return true;
  }

  /** POST to the token endpoint with retries on network failures, 429 and 503 (see the file comment). */
  private async post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number) {
    const maxAttempts = Math.max(1, this.retry.maxAttempts ?? 4);
    const sleep = this.retry.sleep ?? defaultSleep;
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.transport({ method: 'POST', url, headers, body, timeoutMs });
      } catch (e) {
        if (!(e instanceof ScimNetworkError) || attempt >= maxAttempts) throw e;
        await sleep(backoffDelay(attempt, this.retry));
        continue;
      }
      if (RETRY_STATUSES.has(res.status) && attempt < maxAttempts) {
        const delay =
          parseRetryAfter(res.headers['retry-after'], this.now()) ?? backoffDelay(attempt, this.retry);
        if (delay <= (this.retry.maxDelayMs ?? 30_000)) {
          await sleep(delay);
          continue;
        }
      }
      return res;
    }
  }

  private async fetchToken(timeoutMs: number): Promise<string> {
    const c = this.config;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (c.scope) form.set('scope', c.scope);
    for (const [k, v] of Object.entries(c.params ?? {})) form.set(k, v);
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
      'user-agent': this.userAgent,
    };
    if ((c.clientAuth ?? 'basic') === 'basic') {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
      const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
      headers.authorization = `Basic ${Buffer.from(`${enc(c.clientId)}:${enc(c.clientSecret)}`).toString('base64')}`;
    } else {
      form.set('client_id', c.clientId);
      form.set('client_secret', c.clientSecret);
    }
    const res = await this.post(new URL(c.tokenUrl), headers, form.toString(), timeoutMs);
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(res.body);
      if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
    } catch {
      // not JSON: reported below by status
    }
    if (res.status !== 200 || typeof body.access_token !== 'string') {
      const error = typeof body.error === 'string' ? body.error : undefined;
      const desc =
        typeof body.error_description === 'string'
          ? `: ${body.error_description}`
          : !error && res.body.trim()
            ? `: ${res.body.trim().slice(0, 200)}`
            : '';
      const what = res.status === 200 ? 'answered 200 without an access_token' : `answered ${res.status}`;
      throw new ScimAuthError(
        `OAuth token endpoint ${c.tokenUrl} ${what}${error ? ` ${error}` : ''}${desc}`,
        res.status,
        error,
      );
    }
    const skew = (c.expirySkewSeconds ?? 30) * 1000;
    // No expires_in: keep it until the SCIM server refuses it (401), then fetch a new one.
    const lifetime = typeof body.expires_in === 'number' ? body.expires_in * 1000 : Infinity;
    this.token = { value: body.access_token, expiresAt: this.now() + Math.max(0, lifetime - skew) };
    return body.access_token;
  }
}
