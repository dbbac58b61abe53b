/**
 * Small checks shared by the connection and flow configuration (src/sync/connections.ts,
 * src/sync/flows.ts). They take `unknown` (a body from the admin API, or what the CLI built in
 * direct mode) and throw 400 invalidValue errors whose detail names the field.
 */
import { parsePath } from '../scim/filter/parser.ts';
import { ScimError } from '../scim/errors.ts';

export function bad(detail: string): ScimError {
  return ScimError.badRequest('invalidValue', detail);
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** An object with only the allowed keys. */
export function object(v: unknown, what: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(v)) throw bad(`${what} must be an object`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k))
      throw bad(`${what}.${k} is not an allowed property (allowed: ${allowed.join(', ')})`);
  }
  return v;
}

export function nonEmptyString(v: unknown, what: string, max = 2000): string {
  if (typeof v !== 'string' || v.trim() === '') throw bad(`${what} must be a non-empty string`);
  if (v.length > max) throw bad(`${what} must be at most ${max} characters`);
  return v;
}

export function boolean(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw bad(`${what} must be true or false`);
  return v;
}

export function integer(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw bad(`${what} must be an integer from ${min} to ${max}`);
  return v;
}

export function oneOf<T extends string>(v: unknown, what: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
    throw bad(`${what} must be one of ${values.map((x) => `"${x}"`).join(', ')}`);
  return v as T;
}

export function stringArray(v: unknown, what: string, opts: { nonEmpty?: boolean } = {}): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.trim() === ''))
    throw bad(`${what} must be an array of non-empty strings`);
  if (opts.nonEmpty && v.length === 0) throw bad(`${what} must not be empty`);
  return v as string[];
}

/**
 * An absolute http(s) URL without credentials, query or fragment; trailing slashes removed.
 * `what` names the field in errors.
 */
export function httpUrl(v: unknown, what: string, opts: { bare?: boolean } = {}): string {
  const text = nonEmptyString(v, what);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(`${what} must be an absolute http(s) URL; got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw bad(`${what} must be an absolute http(s) URL; got "${text}"`);
  if (url.username !== '' || url.password !== '')
    throw bad(`${what} must not hold credentials (user:password@); give them in auth`);
  if (opts.bare !== false && (text.includes('?') || text.includes('#')))
    throw bad(`${what} must not have a query or a fragment`);
  return text.replace(/\/+$/, '');
}

/**
 * A SCIM attribute path as mapping rules and authority lists name attributes: `[urn:]attr[.sub]`,
 * no value filter. Throws 400 invalidValue naming the field, with the parser's reason.
 */
export function attributePath(v: unknown, what: string, schemaUris: readonly string[]): string {
  const text = nonEmptyString(v, what, 500);
  let parsed;
  try {
    parsed = parsePath(text, { schemaUris });
  } catch (err) {
    if (err instanceof ScimError) throw bad(`${what}: ${err.detail}`);
    throw err;
  }
  if (parsed.valueFilter !== undefined || parsed.subAttr !== undefined)
    throw bad(`${what} must be an attribute path without a value filter; got "${text}"`);
  if (parsed.path.attr === '')
    throw bad(`${what} must name an attribute, not a whole extension; got "${text}"`);
  return text;
}
