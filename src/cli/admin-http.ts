/**
 * The CLI's remote mode (--url): one call to a running server's admin API, /admin/v1, with the
 * bearer token; network failures and SCIM error bodies become one-line CliErrors.
 */
import { CliError } from './output.ts';

/** `path` is below /admin/v1 (e.g. `/tenants/acme/feeds`); the JSON answer, or undefined for none. */
export type AdminCall = <T>(method: string, path: string, body?: unknown) => Promise<T>;

export function adminHttp(base: string, token: string): AdminCall {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new CliError(`--url must be an absolute http(s) URL; got "${base}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`--url must be an absolute http(s) URL; got "${base}"`);
  }
  const root = `${url.toString().replace(/\/+$/, '')}/admin/v1`;
  return async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const target = `${root}${path}`;
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(target, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach ${target}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const detail = (parsed as { detail?: unknown } | undefined)?.detail;
      throw new CliError(typeof detail === 'string' ? detail : `${method} ${target}: HTTP ${res.status}`);
    }
    return parsed as T;
  };
}
