/**
 * Attribute paths on SCIM documents, as the sync engine's mapping, authority and reconciliation
 * use them: `userName`, `name.givenName`, `emails`, and extension attributes named with their
 * schema URN (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`, stored
 * under the URN key). A core schema URN prefix (`urn:…:core:2.0:User:userName`) names a top-level
 * attribute. Names compare case-insensitively (RFC 7643 §2.1). Pure functions, no I/O.
 */
import { createHash } from 'node:crypto';
import { sameValue, isUnassigned } from '../../client/diff.ts';
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../../scim/json.ts';

/** A parsed attribute path: the extension URN (undefined for core attributes), then names. */
export interface AttrPath {
  urn?: string;
  names: string[];
}

const CORE_URN = /^urn:ietf:params:scim:schemas:core:2\.0:[A-Za-z]+$/i;

export function parsePath(path: string): AttrPath {
  if (path.toLowerCase().startsWith('urn:')) {
    const colon = path.lastIndexOf(':');
    const urn = path.slice(0, colon);
    const names = path
      .slice(colon + 1)
      .split('.')
      .filter((n) => n !== '');
    return CORE_URN.test(urn) ? { names } : { urn, names };
  }
  return { names: path.split('.').filter((n) => n !== '') };
}

/** The canonical spelling of a path (lower case), for comparisons. */
export function pathKey(path: string | AttrPath): string {
  const p = typeof path === 'string' ? parsePath(path) : path;
  const tail = p.names.join('.');
  return (p.urn ? `${p.urn}:${tail}` : tail).toLowerCase();
}

/** Whether `ancestor` is `path` or one of its parents (canonical keys). */
export function covers(ancestor: string, path: string): boolean {
  if (ancestor === path) return true;
  if (!path.startsWith(ancestor)) return false;
  const next = path[ancestor.length];
  return next === '.' || next === ':';
}

function container(doc: JsonObject, p: AttrPath, create: boolean): JsonObject | undefined {
  if (!p.urn) return doc;
  const k = findKey(doc, p.urn);
  const v = k !== undefined ? doc[k] : undefined;
  if (isJsonObject(v)) return v;
  if (!create) return undefined;
  const fresh: JsonObject = {};
  doc[k ?? p.urn] = fresh;
  return fresh;
}

export function getPath(doc: JsonObject, path: string | AttrPath): JsonValue | undefined {
  const p = typeof path === 'string' ? parsePath(path) : path;
  let cur: JsonValue | undefined = container(doc, p, false);
  for (const name of p.names) {
    if (!isJsonObject(cur)) return undefined;
    const k = findKey(cur, name);
    cur = k === undefined ? undefined : cur[k];
  }
  return cur;
}

export function setPath(doc: JsonObject, path: string | AttrPath, value: JsonValue): void {
  const p = typeof path === 'string' ? parsePath(path) : path;
  if (p.names.length === 0) return;
  let cur = container(doc, p, true)!;
  for (const name of p.names.slice(0, -1)) {
    const k = findKey(cur, name);
    const next = k === undefined ? undefined : cur[k];
    if (isJsonObject(next)) cur = next;
    else {
      const fresh: JsonObject = {};
      cur[k ?? name] = fresh;
      cur = fresh;
    }
  }
  const last = p.names[p.names.length - 1];
  cur[findKey(cur, last) ?? last] = value;
  if (p.urn) addSchema(doc, p.urn);
}

export function removePath(doc: JsonObject, path: string | AttrPath): void {
  const p = typeof path === 'string' ? parsePath(path) : path;
  if (p.names.length === 0) return;
  const chain: JsonObject[] = [];
  let cur = container(doc, p, false);
  for (const name of p.names.slice(0, -1)) {
    if (!cur) return;
    chain.push(cur);
    const k = findKey(cur, name);
    const next = k === undefined ? undefined : cur[k];
    cur = isJsonObject(next) ? next : undefined;
  }
  if (!cur) return;
  const k = findKey(cur, p.names[p.names.length - 1]);
  if (k !== undefined) delete cur[k];
  pruneEmpty(doc);
}

function addSchema(doc: JsonObject, urn: string): void {
  const k = findKey(doc, 'schemas') ?? 'schemas';
  const list = Array.isArray(doc[k]) ? (doc[k] as JsonValue[]) : [];
  if (!list.some((s) => typeof s === 'string' && s.toLowerCase() === urn.toLowerCase())) {
    doc[k] = [...list, urn];
  }
}

/**
 * Removes unassigned members (empty complex values, empty extension objects) and the URNs of
 * extensions no longer present from `schemas`.
 */
export function pruneEmpty(doc: JsonObject): JsonObject {
  for (const k of Object.keys(doc)) {
    const v = doc[k];
    if (k.toLowerCase() === 'schemas') continue;
    if (isJsonObject(v)) pruneEmpty(v);
    if (v === undefined || isUnassigned(v)) delete doc[k];
  }
  const sk = findKey(doc, 'schemas');
  if (sk !== undefined && Array.isArray(doc[sk])) {
    const schemas = doc[sk] as JsonValue[];
    doc[sk] = schemas.filter(
      (s, i) =>
        typeof s === 'string' &&
        (i === 0 || CORE_URN.test(s) || findKey(doc, s) !== undefined || !s.toLowerCase().startsWith('urn:')),
    );
  }
  return doc;
}

/** The URN keys of extension objects in a document. */
export function extensionKeys(doc: JsonObject): string[] {
  return Object.keys(doc).filter((k) => k.toLowerCase().startsWith('urn:') && isJsonObject(doc[k]));
}

/** JSON with sorted keys (lower-cased names), for digests that ignore key order and case. */
export function canonicalJson(v: JsonValue | undefined): string {
  if (v === undefined) return 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).sort().join(',')}]`;
  if (isJsonObject(v)) {
    const entries = Object.keys(v)
      .filter((k) => v[k] !== undefined && !isUnassigned(v[k]))
      .map((k) => [k.toLowerCase(), canonicalJson(v[k])] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, s]) => `${JSON.stringify(k)}:${s}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function digestOf(doc: JsonObject): string {
  return createHash('sha256').update(canonicalJson(doc)).digest('base64url');
}

/** Sub-attributes the server derives on multi-valued values; never compared. */
const DERIVED_SUBS = new Set(['$ref', 'display']);

/** A value as compared between the two sides: derived sub-attributes of multi-valued values left out. */
export function comparable(v: JsonValue | undefined): JsonValue | undefined {
  if (!Array.isArray(v)) return v;
  return v.map((item) => {
    if (!isJsonObject(item)) return item;
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(item)) if (!DERIVED_SUBS.has(k.toLowerCase())) out[k] = x;
    return out;
  });
}

export function sameAttribute(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return sameValue(comparable(a) ?? null, comparable(b) ?? null);
}

/** Attributes never compared nor written by the engine: server-owned or derived on every side. */
export const ENGINE_IGNORED = new Set(['id', 'meta', 'schemas', 'groups']);

/**
 * The leaf paths of a document at the granularity the engine compares: top-level attributes,
 * the sub-attributes of single-valued complex attributes, and the attributes of extension objects
 * (with their sub-attributes likewise). Multi-valued attributes are one path each. Sorted.
 */
export function leafPaths(doc: JsonObject): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(doc)) {
    if (ENGINE_IGNORED.has(k.toLowerCase())) continue;
    if (k.toLowerCase().startsWith('urn:') && isJsonObject(v)) {
      for (const [ek, ev] of Object.entries(v)) {
        if (isJsonObject(ev)) for (const sk of Object.keys(ev)) out.push(`${k}:${ek}.${sk}`);
        else out.push(`${k}:${ek}`);
      }
    } else if (isJsonObject(v)) {
      for (const sk of Object.keys(v)) out.push(`${k}.${sk}`);
    } else out.push(k);
  }
  return out.sort();
}

/** One attribute that differs between the two sides. */
export interface AttributeDifference {
  path: string;
  /** The value wanted on the target (undefined = to be removed). */
  wanted?: JsonValue;
  /** The target's current value (undefined = absent). */
  current?: JsonValue;
}

/**
 * The attributes of `wanted` (restricted to `include`) whose value differs from `current`'s,
 * at leaf granularity (see leafPaths). Paths are spelled as in `wanted`, else `current`.
 */
export function differences(
  current: JsonObject,
  wanted: JsonObject,
  include: (path: string) => boolean,
  membersAttribute?: string,
): AttributeDifference[] {
  const members = membersAttribute?.toLowerCase();
  const seen = new Set<string>();
  const out: AttributeDifference[] = [];
  for (const path of [...leafPaths(wanted), ...leafPaths(current)]) {
    const key = pathKey(path);
    if (seen.has(key)) continue;
    seen.add(key);
    if (!include(path)) continue;
    const w = getPath(wanted, path);
    const c = getPath(current, path);
    if (key === members ? sameValue(memberSet(w), memberSet(c)) : sameAttribute(w, c)) continue;
    const d: AttributeDifference = { path };
    if (w !== undefined && !isUnassigned(w)) d.wanted = w;
    if (c !== undefined && !isUnassigned(c)) d.current = c;
    out.push(d);
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Members compared by their ids only (`value`): the rest is derived or immutable. */
function memberSet(v: JsonValue | undefined): JsonValue {
  if (!Array.isArray(v)) return [];
  return v.flatMap((m) => (isJsonObject(m) && typeof m.value === 'string' ? [m.value] : []));
}

/** A deep copy without `id`, `meta` and derived `groups`. */
export function content(doc: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(doc)) {
    const l = k.toLowerCase();
    if (l === 'id' || l === 'meta' || l === 'groups') continue;
    out[k] = structuredClone(v);
  }
  return out;
}
