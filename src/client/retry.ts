/**
 * Retry policy: 429 and 503 are retried for every method (the server says it did not do the work),
 * network failures only for idempotent requests or when nothing reached the server — a POST whose
 * bytes went out may have created the resource, so retrying it could create a duplicate.
 */
export interface RetryOptions {
  /** Total attempts including the first. Default 4. */
  maxAttempts?: number;
  /** First backoff step in ms; doubles each attempt. Default 200. */
  baseDelayMs?: number;
  /** Cap of one backoff step (and of a Retry-After the client is willing to wait). Default 30,000. */
  maxDelayMs?: number;
  /** Retry POST/PATCH after a network failure even when the request may have been sent. Default false. */
  retryNonIdempotent?: boolean;
  /** Test hooks: the wait and the jitter source. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export const RETRY_STATUSES = new Set([429, 503]);

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Exponential backoff with jitter: a delay between half and all of base·2^(attempt-1), capped. */
export function backoffDelay(attempt: number, opts: RetryOptions): number {
  const base = opts.baseDelayMs ?? 200;
  const cap = opts.maxDelayMs ?? 30_000;
  const step = Math.min(cap, base * 2 ** (attempt - 1));
  const random = opts.random ?? Math.random;
  return Math.round(step / 2 + (random() * step) / 2);
}

export const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
