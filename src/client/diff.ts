/**
 * A PATCH request from the difference of two states of a resource (RFC 7644 §3.5.2), as few
 * operations as keep it exact and widely understood:
 *  - every operation has a path (protocol digest §12: some servers reject path-less operations);
 *  - simple attributes: `replace attr` / `add attr` / `remove attr`;
 *  - complex attributes: one operation per changed sub-attribute (`name.givenName`);
 *  - multi-valued attributes whose values all carry a distinct `value` (members, emails...): each
 *    removed value as `remove attr[value eq "…"]`, all new values in one `add attr`; a value whose
 *    other sub-attributes changed is removed and added again (a `replace attr[filter]` would merge,
 *    leaving removed sub-attributes behind). Other multi-valued attributes are replaced whole;
 *  - extension attributes are named with their schema URN (`urn:…:User:department`);
 *  - readOnly attributes (id, meta, schemas, and whatever the server's schema marks readOnly) are
 *    never touched; readOnly and immutable sub-attributes of a value (`members.display`, `$ref`)
 *    do not make it "changed", since the server derives them.
 * Attribute names compare case-insensitively (RFC 7643 §2.1). Multi-valued attributes are sets:
 * order does not count as a change.
 */
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../scim/json.ts';
import type { PatchOperation } from './types.ts';

export interface DiffOptions {
  /**
   * RFC 7643 mutability by lower-cased path (see discovery `mutabilityMap`). Unknown paths are
   * readWrite. Without it only id, meta and schemas are treated as readOnly, and `$ref`/`display`
   * of multi-valued values as server-derived.
   */
  mutability?: Map<string, string>;
}

const ALWAYS_READ_ONLY = new Set(['id', 'meta', 'schemas']);
const DERIVED_WITHOUT_SCHEMA = new Set(['$ref', 'display']);

export function isUnassigned(v: JsonValue | undefined): boolean {
  if (v === undefined || v === null) return true;
  if (Array.isArray(v)) return v.every(isUnassigned);
  if (isJsonObject(v)) return Object.values(v).every(isUnassigned);
  return false;
}

/** Structural equality; object keys case-insensitive, unassigned members ignored, arrays as sets. */
export function sameValue(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (isUnassigned(a) || isUnassigned(b)) return isUnassigned(a) && isUnassigned(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return false;
    const as = a.filter((x) => !isUnassigned(x));
    const rest = b.filter((x) => !isUnassigned(x));
    if (as.length !== rest.length) return false;
    for (const x of as) {
      const i = rest.findIndex((y) => sameValue(x, y));
      if (i < 0) return false;
      rest.splice(i, 1);
    }
    return true;
  }
  if (isJsonObject(a) || isJsonObject(b)) {
    if (!isJsonObject(a) || !isJsonObject(b)) return false;
    for (const k of unionKeys(a, b)) if (!sameValue(a[k.a ?? ''], b[k.b ?? ''])) return false;
    return true;
  }
  return a === b;
}

interface KeyPair {
  lower: string;
  a?: string;
  b?: string;
}

function unionKeys(a: JsonObject, b: JsonObject): KeyPair[] {
  const out = new Map<string, KeyPair>();
  for (const k of Object.keys(a)) out.set(k.toLowerCase(), { lower: k.toLowerCase(), a: k });
  for (const k of Object.keys(b)) {
    const p = out.get(k.toLowerCase());
    if (p) p.b = k;
    else out.set(k.toLowerCase(), { lower: k.toLowerCase(), b: k });
  }
  return [...out.values()];
}

/** A filter string literal (RFC 7644 §3.4.2.2 compValue is a JSON string). */
export function filterString(v: string): string {
  return JSON.stringify(v);
}

const isUrn = (name: string) => name.toLowerCase().startsWith('urn:');

class Differ {
  readonly ops: PatchOperation[] = [];
  constructor(private readonly mutability: Map<string, string> | undefined) {}

  private mut(path: string): string {
    const p = path.toLowerCase();
    if (ALWAYS_READ_ONLY.has(p)) return 'readOnly';
    return this.mutability?.get(p) ?? 'readWrite';
  }
  private readOnly(path: string): boolean {
    return this.mut(path) === 'readOnly';
  }
  /** Sub-attributes of a multi-valued value that the server derives: not the client's to compare. */
  private derived(attrPath: string, sub: string): boolean {
    if (sub.toLowerCase() === 'value') return false;
    if (!this.mutability) return DERIVED_WITHOUT_SCHEMA.has(sub.toLowerCase());
    const m = this.mut(`${attrPath}.${sub}`);
    return m === 'readOnly' || m === 'immutable';
  }

  /** A value as the client may send it: unassigned and readOnly sub-attributes dropped. */
  private writable(path: string, v: JsonValue): JsonValue {
    if (Array.isArray(v)) return v.filter((x) => !isUnassigned(x)).map((x) => this.writable(path, x));
    if (!isJsonObject(v)) return v;
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) {
      if (isUnassigned(x) || this.readOnly(`${path}.${k}`)) continue;
      out[k] = this.writable(`${path}.${k}`, x);
    }
    return out;
  }

  resource(a: JsonObject, b: JsonObject): void {
    for (const k of unionKeys(a, b)) {
      const name = k.b ?? k.a!;
      const av = k.a === undefined ? undefined : a[k.a];
      const bv = k.b === undefined ? undefined : b[k.b];
      if (isUrn(name) && (isJsonObject(av) || isJsonObject(bv))) {
        this.container(`${name}:`, isJsonObject(av) ? av : {}, isJsonObject(bv) ? bv : {});
      } else if (!this.readOnly(name)) {
        this.attribute(name, av, bv);
      }
    }
  }

  /** The attributes of an extension schema, each named `urn:…:attr`. */
  private container(prefix: string, a: JsonObject, b: JsonObject): void {
    for (const k of unionKeys(a, b)) {
      const path = `${prefix}${k.b ?? k.a!}`;
      if (this.readOnly(path)) continue;
      this.attribute(path, k.a === undefined ? undefined : a[k.a], k.b === undefined ? undefined : b[k.b]);
    }
  }

  private attribute(path: string, a: JsonValue | undefined, b: JsonValue | undefined): void {
    const ua = isUnassigned(a);
    const ub = isUnassigned(b);
    if (ua && ub) return;
    if (ub) {
      this.ops.push({ op: 'remove', path });
      return;
    }
    if (ua) {
      this.ops.push({ op: 'add', path, value: this.writable(path, b!) });
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) return this.multiValued(path, a, b);
    if (isJsonObject(a) && isJsonObject(b)) {
      for (const k of unionKeys(a, b)) {
        const sub = `${path}.${k.b ?? k.a!}`;
        if (this.readOnly(sub)) continue;
        const sa = k.a === undefined ? undefined : a[k.a];
        const sb = k.b === undefined ? undefined : b[k.b];
        if (sameValue(sa, sb)) continue;
        if (isUnassigned(sb)) this.ops.push({ op: 'remove', path: sub });
        else
          this.ops.push({
            op: isUnassigned(sa) ? 'add' : 'replace',
            path: sub,
            value: this.writable(sub, sb!),
          });
      }
      return;
    }
    if (!sameValue(a, b)) this.ops.push({ op: 'replace', path, value: this.writable(path, b!) });
  }

  private identity(values: JsonValue[]): Map<string, JsonObject> | undefined {
    const out = new Map<string, JsonObject>();
    for (const v of values) {
      if (isUnassigned(v)) continue;
      if (!isJsonObject(v)) return undefined;
      const k = findKey(v, 'value');
      const id = k === undefined ? undefined : v[k];
      if (typeof id !== 'string' || out.has(id)) return undefined;
      out.set(id, v);
    }
    return out;
  }

  /** Two values with the same `value`, compared on what the client controls. */
  private sameElement(path: string, a: JsonObject, b: JsonObject): boolean {
    for (const k of unionKeys(a, b)) {
      if (this.derived(path, k.b ?? k.a!)) continue;
      if (!sameValue(k.a === undefined ? undefined : a[k.a], k.b === undefined ? undefined : b[k.b])) {
        return false;
      }
    }
    return true;
  }

  private multiValued(path: string, a: JsonValue[], b: JsonValue[]): void {
    const ia = this.identity(a);
    const ib = this.identity(b);
    if (!ia || !ib) {
      if (!sameValue(a, b)) this.ops.push({ op: 'replace', path, value: this.writable(path, b) });
      return;
    }
    const removed: string[] = [];
    const added: JsonValue[] = [];
    for (const [id, va] of ia) {
      const vb = ib.get(id);
      if (!vb) removed.push(id);
      else if (!this.sameElement(path, va, vb)) {
        removed.push(id);
        added.push(this.writable(path, vb));
      }
    }
    for (const [id, vb] of ib) if (!ia.has(id)) added.push(this.writable(path, vb));
    for (const id of removed) this.ops.push({ op: 'remove', path: `${path}[value eq ${filterString(id)}]` });
    if (added.length > 0) this.ops.push({ op: 'add', path, value: added });
  }
}

/**
 * The PATCH operations that turn `before` into `after`; empty when nothing the client may change
 * differs (then no request should be sent at all).
 */
export function diffResources(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  opts: DiffOptions = {},
): PatchOperation[] {
  const d = new Differ(opts.mutability);
  // JSON documents (undefined members count as absent, which is how JSON.stringify sends them).
  d.resource(before as JsonObject, after as JsonObject);
  return d.ops;
}
