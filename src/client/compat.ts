/**
 * Per-connection compatibility switches for servers that deviate from RFC 7644. Each one is off by
 * default, so a connection behaves by the RFC unless its configuration says otherwise, and each
 * names the real-world behaviour that motivated it.
 */
import { isJsonObject, type JsonObject, type JsonValue } from '../scim/json.ts';
import type { PatchOperation } from './types.ts';

export type Feature = 'patch' | 'bulk' | 'filter' | 'sort' | 'etag' | 'cursor';

export interface CompatOptions {
  /**
   * The server rejects PATCH operations without a `path` (e.g. Metatavu/keycloak-scim-server#95
   * failed on Okta's path-less `{"op":"replace","value":{"active":false}}`): path-less add/replace
   * operations are expanded into one operation per attribute (extension attributes by URN).
   */
  patchRequiresPath?: boolean;
  /**
   * At most this many member changes per PATCH request; bigger changes are sent as several
   * requests (AWS IAM Identity Center PatchGroup: "A maximum of 100 membership changes are allowed
   * in a single request").
   */
  maxMembersPerPatch?: number;
  /** The attribute `maxMembersPerPatch` counts. Default `members`. */
  membersAttribute?: string;
  /**
   * How values of a multi-valued attribute are removed: `filter` (RFC 7644 §3.5.2.2,
   * `members[value eq "id"]`, the default) or `valueArray` (one `{"op":"remove","path":"members",
   * "value":[{"value":"id"},…]}`, the form Entra ID sends, for servers without value filters in paths).
   */
  multiValueRemove?: 'filter' | 'valueArray';
  /**
   * Attributes the server cannot filter on although it advertises filtering (externalId filters
   * answered 400: better-auth/better-auth#10419, OctopusDeploy/Issues#9841). `findBy` on these
   * pages through the resources and compares locally instead.
   */
  unfilterableAttributes?: string[];
  /** Shorthand for `unfilterableAttributes: ['externalId']`. */
  noFilterOnExternalId?: boolean;
  /** Features to leave unused even when the ServiceProviderConfig advertises them. */
  disable?: Feature[];
  /** Request body media type; some servers only accept `application/json`. Default `application/scim+json`. */
  contentType?: string;
  /** Cap on page sizes below the server's advertised maxPageSize. */
  maxPageSize?: number;
  /**
   * At most this many requests in flight from one sync run (default 8): for servers that throttle
   * or fail under parallel writes (set 1 for strictly one request at a time).
   */
  maxConcurrentRequests?: number;
}

const isUrn = (s: string) => s.toLowerCase().startsWith('urn:');

/** `patchRequiresPath`: one operation per attribute of a path-less value object. */
export function expandPathless(ops: PatchOperation[]): PatchOperation[] {
  return ops.flatMap((op): PatchOperation[] => {
    if (op.path !== undefined || op.op === 'remove' || !isJsonObject(op.value)) return [op];
    const out: PatchOperation[] = [];
    for (const [name, value] of Object.entries(op.value)) {
      if (isUrn(name) && isJsonObject(value)) {
        for (const [sub, v] of Object.entries(value))
          out.push({ op: op.op, path: `${name}:${sub}`, value: v });
      } else {
        out.push({ op: op.op, path: name, value });
      }
    }
    return out;
  });
}

const VALUE_FILTER = /^(.+)\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]$/i;

/** `multiValueRemove: 'valueArray'`: consecutive `attr[value eq "x"]` removes become one remove. */
export function valueArrayRemoves(ops: PatchOperation[]): PatchOperation[] {
  const out: PatchOperation[] = [];
  for (const op of ops) {
    const m = op.op === 'remove' && op.path ? VALUE_FILTER.exec(op.path) : null;
    if (!m) {
      out.push(op);
      continue;
    }
    const value = { value: JSON.parse(m[2]) as string };
    const last = out[out.length - 1];
    if (last && last.op === 'remove' && last.path === m[1] && Array.isArray(last.value))
      last.value.push(value);
    else out.push({ op: 'remove', path: m[1], value: [value] });
  }
  return out;
}

function targetsAttr(op: PatchOperation, attr: string): boolean {
  const p = op.path?.toLowerCase();
  return p !== undefined && (p === attr || p.startsWith(`${attr}[`));
}

/** How many member changes one operation makes. */
function units(op: PatchOperation): number {
  return Array.isArray(op.value) ? Math.max(1, op.value.length) : 1;
}

/**
 * `maxMembersPerPatch`: the operations split into requests of at most `max` member changes each.
 * Other operations go in the first request. A whole-set `replace` too large for one request becomes
 * a replace with the first part followed by adds of the rest.
 */
export function splitMemberChanges(
  ops: PatchOperation[],
  max: number,
  attribute = 'members',
): PatchOperation[][] {
  const attr = attribute.toLowerCase();
  const others = ops.filter((op) => !targetsAttr(op, attr));
  const pieces: PatchOperation[] = [];
  for (const op of ops) {
    if (!targetsAttr(op, attr)) continue;
    if (!Array.isArray(op.value) || op.value.length <= max) {
      pieces.push(op);
      continue;
    }
    const values: JsonValue[] = op.value;
    for (let i = 0; i < values.length; i += max) {
      const chunk = values.slice(i, i + max);
      const name: PatchOperation['op'] = op.op === 'replace' && i > 0 ? 'add' : op.op;
      pieces.push({ op: name, path: op.path, value: chunk });
    }
  }
  const requests: PatchOperation[][] = [];
  let current: PatchOperation[] = [...others];
  let used = 0;
  for (const op of pieces) {
    const n = units(op);
    if (used + n > max && used > 0) {
      requests.push(current);
      current = [];
      used = 0;
    }
    current.push(op);
    used += n;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

/** Replaces `bulkId:<id>` strings (RFC 7644 §3.7.2) whose ids are known. */
export function substituteBulkIds<T extends JsonValue>(v: T, ids: Map<string, string>): T {
  if (ids.size === 0) return v;
  if (typeof v === 'string') {
    if (v.startsWith('bulkId:')) {
      const id = ids.get(v.slice(7));
      if (id !== undefined) return id as T;
    }
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => substituteBulkIds(x, ids)) as T;
  if (isJsonObject(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) out[k] = substituteBulkIds(x, ids);
    return out as T;
  }
  return v;
}
