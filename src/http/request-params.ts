/**
 * Query parameters and SearchRequest bodies (RFC 7644 §3.4.2, §3.4.3) → list parameters.
 */
import { ScimError } from '../scim/errors.ts';
import { isJsonObject } from '../scim/json.ts';
import { parseAttributeList } from '../scim/resource/project.ts';
import type { ListParams, Projection } from '../service/resources.ts';

export const SEARCH_REQUEST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';

export type Query = Record<string, string | string[] | undefined>;

export function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function intParam(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^[+-]?\d+$/.test(v.trim()))
    throw ScimError.badRequest('invalidValue', `${name} must be an integer, got "${v}"`);
  return Number(v);
}

export function projectionFrom(attributes: unknown, excluded: unknown): Projection {
  const attrs = parseAttributeList(attributes as string | string[] | undefined);
  const excl = parseAttributeList(excluded as string | string[] | undefined);
  if (attrs && excl) {
    throw ScimError.badRequest(
      'invalidSyntax',
      'attributes and excludedAttributes are mutually exclusive (RFC 7644 §3.4.2.5)',
    );
  }
  return { attributes: attrs, excludedAttributes: excl };
}

export function projectionFromQuery(q: Query): Projection {
  return projectionFrom(q.attributes, q.excludedAttributes);
}

export function listParamsFromQuery(q: Query): ListParams {
  const cursor = q.cursor === undefined ? undefined : (first(q.cursor) ?? '');
  return {
    ...projectionFromQuery(q),
    filter: first(q.filter),
    sortBy: first(q.sortBy),
    sortOrder: first(q.sortOrder),
    startIndex: intParam('startIndex', first(q.startIndex)),
    count: intParam('count', first(q.count)),
    cursor,
  };
}

/** RFC 7644 §3.4.3 SearchRequest body → list parameters. */
export function listParamsFromSearch(body: unknown): ListParams {
  if (!isJsonObject(body))
    throw ScimError.badRequest('invalidSyntax', 'The request body must be a SearchRequest object');
  const get = (name: string) => {
    const k = Object.keys(body).find((x) => x.toLowerCase() === name.toLowerCase());
    return k === undefined ? undefined : body[k];
  };
  const schemas = get('schemas');
  if (
    !Array.isArray(schemas) ||
    !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === SEARCH_REQUEST_SCHEMA.toLowerCase())
  ) {
    throw ScimError.badRequest('invalidSyntax', `schemas must contain "${SEARCH_REQUEST_SCHEMA}"`);
  }
  const str = (name: string) => {
    const v = get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw ScimError.badRequest('invalidValue', `${name} must be a string`);
    return v;
  };
  const int = (name: string) => {
    const v = get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v))
      throw ScimError.badRequest('invalidValue', `${name} must be an integer`);
    return v;
  };
  const list = (name: string) => {
    const v = get(name);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw ScimError.badRequest('invalidValue', `${name} must be an array of strings`);
    }
    return v as string[];
  };
  return {
    ...projectionFrom(list('attributes'), list('excludedAttributes')),
    filter: str('filter'),
    sortBy: str('sortBy'),
    sortOrder: str('sortOrder'),
    startIndex: int('startIndex'),
    count: int('count'),
    cursor: str('cursor'),
  };
}
