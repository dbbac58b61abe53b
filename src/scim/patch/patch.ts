/**
 * The SCIM PATCH engine (RFC 7644 §3.5.2): validates a PatchOp message and applies its operations,
 * in order and atomically, to a copy of a resource.
 *
 * The members of a Group (`rt.membersAttribute`) are stored as rows, and a group may have hundreds
 * of thousands of them, so operations on that attribute are never applied here: they come back as
 * `memberChanges` for the store to run as row operations, and the engine never needs the member list.
 *
 * Decisions where the RFC is silent or ambiguous (protocol digest §11):
 *  - `remove` with a filter that matches nothing succeeds without change; `replace` → 400 noTarget.
 *  - `remove` with a `value` array and no filter (Entra ID on `members`) removes only the listed
 *    values, for any multi-valued attribute; it never removes everything.
 *  - `replace attr[filter]` merges the value object into each matching element (sub-attributes
 *    given are replaced, the others kept), like a replace on a complex attribute.
 *  - `add attr[filter]` / `add attr[filter].sub` with no match appends a new element built from the
 *    filter's `eq` terms plus the value (Entra ID adds `emails[type eq "work"].value` this way).
 *  - Removing a required attribute → 400 mutability (RFC text); replacing it with null → 400
 *    invalidValue (it is a bad value, not a mutability breach).
 *  - readOnly attributes named by a path → 400 mutability. In a path-less value object they are
 *    ignored when equal to the current value (Okta resends `id`) and rejected otherwise; readOnly
 *    sub-attributes inside a value are dropped, as on POST/PUT.
 *  - Adding a value equal (per caseExact, see valueKey) to an existing element is no change.
 *  - `add members` with null or [] is no change (a member wipe must be explicit: remove or replace).
 */
import { ScimError, type ScimType } from '../errors.ts';
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import type { BoundAttr, BoundFilter, FilterValue } from '../filter/ast.ts';
import { bindPatchPath } from '../filter/bind.ts';
import { matches } from '../filter/evaluate.ts';
import { parsePath } from '../filter/parser.ts';
import { canonicalizeElement, canonicalizeValue, normalizePrimary } from '../resource/validate.ts';
import { isUnassigned, valueKey } from '../resource/values.ts';
import { findSubAttribute, type ResourceTypeConfig, type SchemaRegistry } from '../schema/registry.ts';
import type { AttributeDefinition } from '../schema/types.ts';
import { deepEqual } from './json-util.ts';

export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export type PatchOpName = 'add' | 'remove' | 'replace';

export interface PatchOperation {
  op: PatchOpName;
  path?: string;
  value?: JsonValue;
}

export type MemberChange =
  /** Members to add ({value, type?, display?, $ref?}); the store ignores ones already present. */
  | { kind: 'add'; values: JsonObject[] }
  /**
   * `filter` is relative to one member: its BoundAttrs have `attribute` = the members attribute
   * and `sub` = the sub-attribute compared. `values` are member ids. Neither set = remove all.
   */
  | { kind: 'remove'; filter?: BoundFilter; values?: string[] }
  /** Replace the whole set (possibly with the empty set). */
  | { kind: 'replace'; values: JsonObject[] };

export interface PatchResult {
  resource: JsonObject;
  /** False when the resource is unchanged and there are no member changes (keep meta and version). */
  changed: boolean;
  memberChanges: MemberChange[];
}

export interface ApplyPatchOptions {
  /** Entra ID compatibility: "True"/"False" strings for booleans, a bare id for a complex value. Default true. */
  lenient?: boolean;
}

function bad(scimType: ScimType, detail: string): never {
  throw ScimError.badRequest(scimType, detail);
}

/** Validates a PatchOp message (RFC 7644 §3.5.2) and returns its operations, op names lower-cased. */
export function parsePatchRequest(body: unknown): PatchOperation[] {
  if (!isJsonObject(body)) bad('invalidSyntax', 'The PATCH body must be a JSON object');
  const schemasKey = findKey(body, 'schemas');
  const schemas = schemasKey === undefined ? undefined : body[schemasKey];
  if (
    !Array.isArray(schemas) ||
    !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === PATCH_OP_SCHEMA.toLowerCase())
  ) {
    bad('invalidSyntax', `The PATCH body must have "schemas": ["${PATCH_OP_SCHEMA}"]`);
  }
  const opsKey = findKey(body, 'Operations');
  const ops = opsKey === undefined ? undefined : body[opsKey];
  if (!Array.isArray(ops) || ops.length === 0) {
    bad('invalidSyntax', 'The PATCH body must have a non-empty "Operations" array');
  }
  return ops.map((raw, i): PatchOperation => {
    const where = `Operations[${i}]`;
    if (!isJsonObject(raw)) bad('invalidSyntax', `${where} must be a JSON object`);
    const opKey = findKey(raw, 'op');
    const opRaw = opKey === undefined ? undefined : raw[opKey];
    const op = typeof opRaw === 'string' ? opRaw.toLowerCase() : undefined;
    if (op !== 'add' && op !== 'remove' && op !== 'replace') {
      bad(
        'invalidSyntax',
        `${where}.op must be "add", "remove" or "replace", got ${JSON.stringify(opRaw ?? null)}`,
      );
    }
    const out: PatchOperation = { op };
    const pathKey = findKey(raw, 'path');
    const path = pathKey === undefined ? undefined : raw[pathKey];
    if (path !== undefined && path !== null) {
      if (typeof path !== 'string') bad('invalidSyntax', `${where}.path must be a string`);
      out.path = path;
    }
    const valueKeyName = findKey(raw, 'value');
    if (valueKeyName !== undefined) out.value = raw[valueKeyName];
    else if (op !== 'remove') bad('invalidSyntax', `${where}: "${op}" requires a "value"`);
    return out;
  });
}

/** What one operation's path designates, after binding to the resource type. */
type Target =
  | { kind: 'extension'; schema: string; text: string }
  | {
      kind: 'attr';
      text: string;
      /** The top-level attribute (no `sub`). */
      bound: BoundAttr;
      attr: AttributeDefinition;
      /** `a.b` or `a[filter].b`. */
      sub?: AttributeDefinition;
      /** The filter of `a[filter]`, relative to one element. */
      filter?: BoundFilter;
    };

type AttrTarget = Extract<Target, { kind: 'attr' }>;

/** One element of a multi-valued attribute as a single-valued definition (for element validation). */
function elementDef(attr: AttributeDefinition): AttributeDefinition {
  return { ...attr, multiValued: false };
}

function asArray(v: JsonValue | undefined): JsonValue[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** The `eq` terms of an `and`-only filter, as sub-attribute values; undefined if it has other terms. */
function eqTerms(f: BoundFilter): Map<string, FilterValue> | undefined {
  if (f.op === 'eq' && f.attr.sub) return new Map([[f.attr.sub.name, f.value]]);
  if (f.op === 'and') {
    const l = eqTerms(f.left);
    const r = eqTerms(f.right);
    if (!l || !r) return undefined;
    for (const [k, v] of r) l.set(k, v);
    return l;
  }
  return undefined;
}

class PatchEngine {
  readonly memberChanges: MemberChange[] = [];
  private readonly schemaUris: string[];

  constructor(
    private readonly registry: SchemaRegistry,
    private readonly rt: ResourceTypeConfig,
    readonly doc: JsonObject,
    private readonly lenient: boolean,
  ) {
    this.schemaUris = registry.schemaUris();
  }

  apply(op: PatchOperation): void {
    if (op.path === undefined) {
      if (op.op === 'remove') bad('noTarget', 'A "remove" operation requires a "path"');
      this.applyPathless(op.op, op.value ?? null);
      return;
    }
    if (op.op !== 'remove' && op.value === undefined) bad('invalidSyntax', `"${op.op}" requires a "value"`);
    const target = this.resolve(op.path);
    if (op.op === 'remove') this.remove(target, op.value);
    else this.set(op.op, target, op.value ?? null, false);
  }

  // ---- paths -------------------------------------------------------------------------------------

  private resolve(text: string): Target {
    const parsed = parsePath(text, { schemaUris: this.schemaUris });
    const bound = bindPatchPath(this.registry, this.rt, parsed);
    if (bound.wholeExtension !== undefined) return { kind: 'extension', schema: bound.wholeExtension, text };
    let filter = bound.valueFilter;
    if (filter?.op === 'valuePath') filter = filter.filter;
    const top: BoundAttr = {
      location: bound.attr.location,
      schema: bound.attr.schema,
      attribute: bound.attr.attribute,
    };
    return {
      kind: 'attr',
      text,
      bound: top,
      attr: top.attribute,
      sub: bound.subAttr ?? bound.attr.sub,
      filter,
    };
  }

  private isMembers(t: AttrTarget): boolean {
    const m = this.rt.membersAttribute;
    return m !== undefined && t.bound.location === 'core' && t.attr.name.toLowerCase() === m.toLowerCase();
  }

  // ---- storage slots -----------------------------------------------------------------------------

  /** The object holding `b`'s attribute: the resource, or its extension object. */
  private container(b: BoundAttr, create: boolean): JsonObject | undefined {
    if (b.location !== 'extension') return this.doc;
    const key = findKey(this.doc, b.schema);
    if (key !== undefined && isJsonObject(this.doc[key])) {
      const obj = this.doc[key] as JsonObject;
      if (key !== b.schema) {
        delete this.doc[key];
        this.doc[b.schema] = obj;
      }
      return obj;
    }
    if (!create) return undefined;
    const obj: JsonObject = {};
    this.doc[b.schema] = obj;
    return obj;
  }

  private read(t: AttrTarget): JsonValue | undefined {
    const c = this.container(t.bound, false);
    if (!c) return undefined;
    const key = findKey(c, t.attr.name);
    return key === undefined ? undefined : c[key];
  }

  private write(t: AttrTarget, value: JsonValue | undefined): void {
    const c = this.container(t.bound, !isUnassigned(value));
    if (!c) return;
    const key = findKey(c, t.attr.name);
    if (key !== undefined && key !== t.attr.name) delete c[key];
    if (isUnassigned(value)) delete c[t.attr.name];
    else c[t.attr.name] = value as JsonValue;
  }

  // ---- validation --------------------------------------------------------------------------------

  private canonical(attr: AttributeDefinition, value: JsonValue, path: string): JsonValue | undefined {
    return canonicalizeValue(attr, this.coerce(attr, value), path, { lenientBooleans: this.lenient });
  }

  private canonicalElement(attr: AttributeDefinition, value: JsonValue, path: string): JsonValue | undefined {
    return canonicalizeElement(elementDef(attr), this.coerce(elementDef(attr), value), path, {
      lenientBooleans: this.lenient,
    });
  }

  /** Lenient mode: a bare string for a complex attribute with a `value` sub-attribute (Entra's manager). */
  private coerce(attr: AttributeDefinition, value: JsonValue): JsonValue {
    if (!this.lenient || attr.type !== 'complex' || !findSubAttribute(attr, 'value')) return value;
    const wrap = (v: JsonValue): JsonValue => (typeof v === 'string' ? { value: v } : v);
    if (attr.multiValued && Array.isArray(value)) return value.map(wrap);
    return wrap(value);
  }

  private mutability(detail: string): never {
    bad('mutability', detail);
  }

  private checkNotReadOnly(t: AttrTarget): void {
    if (t.attr.mutability === 'readOnly') this.mutability(`Attribute "${t.text}" is readOnly`);
    if (t.sub?.mutability === 'readOnly') this.mutability(`Attribute "${t.text}" is readOnly`);
  }

  // ---- path-less add / replace -------------------------------------------------------------------

  private applyPathless(op: 'add' | 'replace', value: JsonValue): void {
    if (!isJsonObject(value)) {
      bad('invalidSyntax', `An "${op}" operation without "path" needs an object of attributes as "value"`);
    }
    for (const [key, v] of Object.entries(value)) {
      if (key.toLowerCase() === 'schemas') continue;
      if (key.toLowerCase() === this.rt.schema.toLowerCase()) {
        // The core schema URN as a key: its object holds core attributes (some clients nest them).
        if (!isJsonObject(v)) bad('invalidValue', `"${key}" must be an object of attributes`);
        for (const [k2, v2] of Object.entries(v)) this.pathlessAttribute(op, `${this.rt.schema}:${k2}`, v2);
        continue;
      }
      this.pathlessAttribute(op, key, v);
    }
  }

  private pathlessAttribute(op: 'add' | 'replace', key: string, v: JsonValue): void {
    const t = this.resolve(key);
    if (t.kind === 'attr' && t.filter)
      bad('invalidPath', `"${key}": attribute names in a value cannot have filters`);
    this.set(op, t, v, true);
  }

  // ---- add / replace -----------------------------------------------------------------------------

  /** add or replace `value` at `t`. `pathless`: the attribute came from a path-less value object. */
  private set(op: 'add' | 'replace', t: Target, value: JsonValue, pathless: boolean): void {
    if (t.kind === 'extension') {
      this.setExtension(op, t, value);
      return;
    }
    if (pathless && (t.attr.mutability === 'readOnly' || t.sub?.mutability === 'readOnly')) {
      // Clients echo id/meta in path-less values; only a real change is an error.
      const current = this.read(t);
      const cur = t.sub && isJsonObject(current) ? current[t.sub.name] : current;
      if (deepEqual(cur, value)) return;
    }
    this.checkNotReadOnly(t);
    if (this.isMembers(t)) {
      this.setMembers(op, t, value);
      return;
    }
    if (t.filter) this.setFiltered(op, t, t.filter, value);
    else if (t.sub) this.setSub(t, t.sub, value);
    else if (value === null || (op === 'replace' && Array.isArray(value) && value.length === 0)) {
      // null (and, for replace, []) unassigns (RFC 7643 §2.5); adding [] or {} adds nothing.
      this.unassign(t, 'invalidValue');
    } else if (isUnassigned(value)) return;
    else if (t.attr.multiValued) this.setMulti(op, t, value);
    else if (t.attr.type === 'complex') this.mergeComplex(t, value);
    else this.setSimple(t, value);
  }

  private setExtension(
    op: 'add' | 'replace',
    t: Extract<Target, { kind: 'extension' }>,
    value: JsonValue,
  ): void {
    if (value === null) {
      this.removeExtension(t, 'invalidValue');
      return;
    }
    if (!isJsonObject(value))
      bad('invalidValue', `"${t.text}": an extension value must be an object of attributes`);
    for (const [k, v] of Object.entries(value)) this.pathlessAttribute(op, `${t.schema}:${k}`, v);
  }

  private setSimple(t: AttrTarget, value: JsonValue): void {
    const c = this.canonical(t.attr, value, t.text);
    const current = this.read(t);
    if (deepEqual(current, c)) return;
    if (t.attr.mutability === 'immutable' && !isUnassigned(current)) {
      this.mutability(`Attribute "${t.text}" is immutable and already has a value`);
    }
    this.write(t, c);
  }

  /** Complex single-valued target: sub-attributes given replace, the others are kept (§3.5.2.3). */
  private mergeComplex(t: AttrTarget, value: JsonValue): void {
    const current = this.read(t);
    const merged = this.merge(
      t.attr,
      isJsonObject(current) ? current : {},
      this.coerce(t.attr, value),
      t.text,
    );
    if (deepEqual(current, merged)) return;
    if (t.attr.mutability === 'immutable' && !isUnassigned(current)) {
      this.mutability(`Attribute "${t.text}" is immutable and already has a value`);
    }
    this.write(t, merged);
  }

  /**
   * `base` with the sub-attributes of `value` replacing its own (null → unassigned). Immutable
   * sub-attributes that already have a value may not change. Result in canonical (schema) order.
   */
  private merge(
    attr: AttributeDefinition,
    base: JsonObject,
    value: JsonValue,
    path: string,
  ): JsonObject | undefined {
    if (!isJsonObject(value)) {
      bad('invalidValue', `Attribute "${path}": expected a complex value (JSON object)`);
    }
    const given = (this.canonicalElement(attr, value, path) ?? {}) as JsonObject;
    const out: JsonObject = { ...base };
    for (const [k, v] of Object.entries(value)) {
      const sub = findSubAttribute(attr, k);
      if (sub && v === null && sub.mutability !== 'readOnly')
        this.assignSub(out, sub, undefined, `${path}.${sub.name}`);
    }
    for (const sub of attr.subAttributes ?? []) {
      if (given[sub.name] !== undefined) this.assignSub(out, sub, given[sub.name], `${path}.${sub.name}`);
    }
    return this.ordered(attr, out);
  }

  /** Sets (or with undefined, unassigns) one sub-attribute, honouring its mutability. */
  private assignSub(
    obj: JsonObject,
    sub: AttributeDefinition,
    value: JsonValue | undefined,
    path: string,
  ): void {
    const current = obj[sub.name];
    if (deepEqual(current, value)) return;
    if (sub.mutability === 'readOnly') this.mutability(`Attribute "${path}" is readOnly`);
    if (sub.mutability === 'immutable' && !isUnassigned(current)) {
      this.mutability(`Attribute "${path}" is immutable and already has a value`);
    }
    if (value === undefined || isUnassigned(value)) delete obj[sub.name];
    else obj[sub.name] = value;
  }

  private ordered(attr: AttributeDefinition, obj: JsonObject): JsonObject | undefined {
    const out: JsonObject = {};
    for (const sub of attr.subAttributes ?? [])
      if (obj[sub.name] !== undefined) out[sub.name] = obj[sub.name];
    return Object.keys(out).length === 0 ? undefined : out;
  }

  private setMulti(op: 'add' | 'replace', t: AttrTarget, value: JsonValue): void {
    const current = asArray(this.read(t));
    const given = asArray(value);
    if (op === 'replace') {
      const c = asArray(this.canonical(t.attr, this.coerce(t.attr, given), t.text));
      if (deepEqual(current, c) || (current.length === 0 && c.length === 0)) return;
      if (t.attr.mutability === 'immutable' && current.length > 0) {
        this.mutability(`Attribute "${t.text}" is immutable and already has a value`);
      }
      this.write(t, c);
      return;
    }
    const def = elementDef(t.attr);
    const out = [...current];
    const keys = new Set(out.map((el) => valueKey(def, el)));
    const touched: number[] = [];
    for (const raw of given) {
      const el = this.canonicalElement(t.attr, raw, t.text);
      if (el === undefined) continue;
      const key = valueKey(def, el);
      if (keys.has(key)) continue;
      // Same (value, type) as an existing element: update that one rather than list the pair twice
      // (RFC 7643 §2.4); this is how `add emails [{value, primary: true}]` moves primary.
      const same = this.identity(t.attr, el);
      const j = same === undefined ? -1 : out.findIndex((x) => this.identity(t.attr, x) === same);
      if (j >= 0) {
        const merged = this.merge(def, out[j] as JsonObject, el, t.text) ?? {};
        if (deepEqual(merged, out[j])) continue;
        keys.delete(valueKey(def, out[j]));
        out[j] = merged;
        touched.push(j);
      } else {
        touched.push(out.length);
        out.push(el);
      }
      keys.add(valueKey(def, out[touched[touched.length - 1]]));
    }
    if (touched.length === 0) return;
    if (t.attr.mutability === 'immutable' && current.length > 0) {
      this.mutability(`Attribute "${t.text}" is immutable and already has a value`);
    }
    this.write(t, this.primary(t, out, touched));
  }

  /** The (value, type) identity of a complex element, when it has a value. */
  private identity(attr: AttributeDefinition, el: JsonValue): string | undefined {
    if (attr.type !== 'complex' || !isJsonObject(el) || el.value === undefined) return undefined;
    const valueSub = findSubAttribute(attr, 'value');
    const typeSub = findSubAttribute(attr, 'type');
    if (!valueSub) return undefined;
    return JSON.stringify([
      valueKey(valueSub, el.value),
      typeSub && el.type !== undefined ? valueKey(typeSub, el.type) : null,
    ]);
  }

  /**
   * RFC 7644 §3.5.2: a value set primary in this operation clears `primary` on the others. Among
   * several values this operation touched that are marked primary, the last one wins (whole-set
   * replaces with two primaries never get here: the validator rejects them).
   */
  private primary(t: AttrTarget, values: JsonValue[], touched: number[]): JsonValue[] {
    if (t.attr.type !== 'complex' || !findSubAttribute(t.attr, 'primary')) return values;
    const winners = touched.filter((i) => isJsonObject(values[i]) && values[i].primary === true);
    if (winners.length === 0) return values;
    return normalizePrimary(values as JsonObject[], winners[winners.length - 1]);
  }

  /** `a.b` without a filter. */
  private setSub(t: AttrTarget, sub: AttributeDefinition, value: JsonValue): void {
    const path = `${t.attr.name}.${sub.name}`;
    const c = value === null ? undefined : this.canonical(sub, value, path);
    const current = this.read(t);
    if (!t.attr.multiValued) {
      const obj: JsonObject = isJsonObject(current) ? { ...current } : {};
      if (t.attr.mutability === 'immutable' && !isUnassigned(current) && !deepEqual(obj[sub.name], c)) {
        this.mutability(`Attribute "${t.text}" is immutable and already has a value`);
      }
      this.assignSub(obj, sub, c, path);
      if (c === undefined && sub.required) bad('invalidValue', `Attribute "${path}" is required`);
      this.write(t, this.ordered(t.attr, obj));
      return;
    }
    // `emails.type` with no filter: every element (RFC 7644 gives no other reading).
    const elements = asArray(current);
    if (elements.length === 0) bad('noTarget', `"${t.text}": "${t.attr.name}" has no values`);
    this.updateElements(
      t,
      elements,
      elements.map((_, i) => i),
      (el) => {
        this.assignSub(el, sub, c, path);
      },
    );
  }

  /** `a[filter]` and `a[filter].sub` for add and replace. */
  private setFiltered(op: 'add' | 'replace', t: AttrTarget, filter: BoundFilter, value: JsonValue): void {
    const elements = asArray(this.read(t));
    const hits = this.matching(t, filter, elements);
    const sub = t.sub;
    if (hits.length === 0) {
      const terms = eqTerms(filter);
      if (op === 'replace' || !terms) bad('noTarget', `No value of "${t.attr.name}" matches "${t.text}"`);
      // add: a new element made of the filter's eq terms and the value.
      const seed: JsonObject = {};
      for (const [k, v] of terms) seed[k] = v;
      let raw: JsonValue;
      if (sub) raw = { ...seed, [sub.name]: value };
      else {
        const v = this.coerce(elementDef(t.attr), value);
        if (!isJsonObject(v))
          bad('invalidValue', `Attribute "${t.text}": expected a complex value (JSON object)`);
        raw = { ...seed, ...v };
      }
      if (t.attr.mutability === 'immutable' && elements.length > 0) {
        this.mutability(`Attribute "${t.text}" is immutable and already has a value`);
      }
      const el = this.canonicalElement(t.attr, raw, t.attr.name);
      if (el === undefined) return;
      const out = [...elements, el];
      this.writeElements(t, this.primary(t, out, [out.length - 1]));
      return;
    }
    if (sub) {
      const path = `${t.attr.name}.${sub.name}`;
      const c = value === null ? undefined : this.canonical(sub, value, path);
      this.updateElements(t, elements, hits, (el) => this.assignSub(el, sub, c, path));
    } else {
      this.updateElements(t, elements, hits, (el) => {
        const merged =
          this.merge(elementDef(t.attr), el, this.coerce(elementDef(t.attr), value), t.attr.name) ?? {};
        for (const k of Object.keys(el)) delete el[k];
        Object.assign(el, merged);
      });
    }
  }

  /**
   * Writes back values a value filter selected from: the elements, or for a single-valued complex
   * attribute (`name[givenName eq "x"]`) its one object, which asArray wrapped.
   */
  private writeElements(t: AttrTarget, values: JsonValue[]): void {
    if (t.attr.multiValued) this.write(t, values);
    else if (values.length > 1)
      bad('noTarget', `"${t.text}": the value of "${t.attr.name}" does not match the filter`);
    else this.write(t, values[0]);
  }

  /** Applies `edit` to copies of the elements at `indexes`; empty elements are dropped. */
  private updateElements(
    t: AttrTarget,
    elements: JsonValue[],
    indexes: number[],
    edit: (el: JsonObject) => void,
  ): void {
    const out = elements.map((el) => (isJsonObject(el) ? { ...el } : el));
    for (const i of indexes) {
      const el = out[i];
      if (!isJsonObject(el)) continue;
      edit(el);
      out[i] = this.ordered(t.attr, el) ?? {};
    }
    if (t.attr.mutability === 'immutable' && !deepEqual(out, elements)) {
      this.mutability(`Attribute "${t.text}" is immutable and already has a value`);
    }
    const kept = out.filter((el) => !isUnassigned(el));
    const touched = indexes.filter((i) => !isUnassigned(out[i])).map((i) => kept.indexOf(out[i]));
    this.writeElements(t, this.primary(t, kept, touched));
  }

  private matching(t: AttrTarget, filter: BoundFilter, elements: JsonValue[]): number[] {
    const hits: number[] = [];
    elements.forEach((el, i) => {
      if (this.elementMatches(t, filter, el)) hits.push(i);
    });
    return hits;
  }

  private elementMatches(t: AttrTarget, filter: BoundFilter, el: JsonValue): boolean {
    // The evaluator works on resources: wrap the one element as the attribute's only value.
    const holder: JsonObject = { [t.attr.name]: [el] };
    const resource: JsonObject = t.bound.location === 'extension' ? { [t.bound.schema]: holder } : holder;
    return matches(resource, { op: 'valuePath', attr: t.bound, filter });
  }

  // ---- remove ------------------------------------------------------------------------------------

  private remove(t: Target, value: JsonValue | undefined): void {
    if (t.kind === 'extension') {
      this.removeExtension(t, 'mutability');
      return;
    }
    this.checkNotReadOnly(t);
    if (this.isMembers(t)) {
      this.removeMembers(t, value);
      return;
    }
    const current = this.read(t);
    if (t.filter) {
      const elements = asArray(current);
      const hits = this.matching(t, t.filter, elements);
      if (hits.length === 0) return;
      if (t.sub) {
        const sub = t.sub;
        this.checkSubRemovable(t, sub);
        this.updateElements(t, elements, hits, (el) =>
          this.assignSub(el, sub, undefined, `${t.attr.name}.${sub.name}`),
        );
        return;
      }
      if (t.attr.mutability === 'immutable') this.mutability(`Attribute "${t.text}" is immutable`);
      const left = elements.filter((_, i) => !hits.includes(i));
      if (left.length === 0 && t.attr.required) this.mutability(`Attribute "${t.text}" is required`);
      this.writeElements(t, left);
      return;
    }
    if (t.sub) {
      const sub = t.sub;
      if (isUnassigned(current)) return;
      this.checkSubRemovable(t, sub);
      if (t.attr.multiValued) {
        const elements = asArray(current);
        this.updateElements(
          t,
          elements,
          elements.map((_, i) => i),
          (el) => {
            this.assignSub(el, sub, undefined, `${t.attr.name}.${sub.name}`);
          },
        );
      } else if (isJsonObject(current)) {
        const obj = { ...current };
        this.assignSub(obj, sub, undefined, `${t.attr.name}.${sub.name}`);
        const left = this.ordered(t.attr, obj);
        if (left === undefined && t.attr.required) this.mutability(`Attribute "${t.attr.name}" is required`);
        this.write(t, left);
      }
      return;
    }
    if (t.attr.multiValued && value !== undefined && value !== null) {
      this.removeValues(t, asArray(current), asArray(value));
      return;
    }
    this.unassign(t, 'mutability');
  }

  private checkSubRemovable(t: AttrTarget, sub: AttributeDefinition): void {
    if (sub.required) this.mutability(`Attribute "${t.attr.name}.${sub.name}" is required`);
    if (t.attr.mutability === 'immutable') this.mutability(`Attribute "${t.text}" is immutable`);
  }

  /**
   * Makes an attribute unassigned. `requiredError`: remove of a required attribute is a mutability
   * error (RFC 7644 §3.5.2.2), setting it to null a bad value.
   */
  private unassign(t: AttrTarget, requiredError: ScimType): void {
    const current = this.read(t);
    if (t.attr.required) bad(requiredError, `Attribute "${t.text}" is required and cannot be removed`);
    if (isUnassigned(current)) {
      this.write(t, undefined);
      return;
    }
    if (t.attr.mutability === 'immutable') this.mutability(`Attribute "${t.text}" is immutable`);
    this.write(t, undefined);
  }

  /** `remove` with a value array and no filter: remove just those values (Entra ID's form). */
  private removeValues(t: AttrTarget, elements: JsonValue[], given: JsonValue[]): void {
    const def = elementDef(t.attr);
    const valueSub = t.attr.type === 'complex' ? findSubAttribute(t.attr, 'value') : undefined;
    const byValue = new Set<string>();
    const whole = new Set<string>();
    for (const raw of given) {
      if (valueSub) {
        const v = isJsonObject(raw) ? raw[findKey(raw, 'value') ?? 'value'] : raw;
        if (v !== undefined && v !== null) {
          byValue.add(valueKey(valueSub, this.canonical(valueSub, v, `${t.attr.name}.value`) ?? null));
          continue;
        }
      }
      const c = this.canonicalElement(t.attr, raw, t.attr.name);
      if (c !== undefined) whole.add(valueKey(def, c));
    }
    const left = elements.filter((el) => {
      if (whole.has(valueKey(def, el))) return false;
      if (valueSub && isJsonObject(el) && el.value !== undefined)
        return !byValue.has(valueKey(valueSub, el.value));
      return true;
    });
    if (left.length === elements.length) return;
    if (t.attr.mutability === 'immutable') this.mutability(`Attribute "${t.text}" is immutable`);
    if (left.length === 0 && t.attr.required) this.mutability(`Attribute "${t.text}" is required`);
    this.write(t, left);
  }

  private removeExtension(t: Extract<Target, { kind: 'extension' }>, requiredError: ScimType): void {
    const ext = this.rt.schemaExtensions.find((e) => e.schema.toLowerCase() === t.schema.toLowerCase());
    const key = findKey(this.doc, t.schema);
    if (key === undefined) return;
    if (ext?.required) bad(requiredError, `Extension "${t.schema}" is required and cannot be removed`);
    const current = this.doc[key];
    const schema = this.registry.schema(t.schema);
    if (isJsonObject(current) && schema) {
      for (const attr of schema.attributes) {
        if (isUnassigned(current[findKey(current, attr.name) ?? attr.name])) continue;
        const label = `${schema.id}:${attr.name}`;
        if (attr.mutability === 'readOnly') this.mutability(`Attribute "${label}" is readOnly`);
        if (attr.required) bad(requiredError, `Attribute "${label}" is required and cannot be removed`);
        if (attr.mutability === 'immutable') this.mutability(`Attribute "${label}" is immutable`);
      }
    }
    delete this.doc[key];
  }

  // ---- members (stored as rows: returned, never applied) -----------------------------------------

  private memberValues(t: AttrTarget, value: JsonValue): JsonObject[] {
    const out: JsonObject[] = [];
    const seen = new Set<string>();
    for (const raw of asArray(value)) {
      const el = this.canonicalElement(t.attr, raw, t.attr.name);
      if (el === undefined) continue;
      if (!isJsonObject(el) || typeof el.value !== 'string') {
        bad('invalidValue', `Each value of "${t.attr.name}" needs a "value" (the member's id)`);
      }
      if (seen.has(el.value)) continue;
      seen.add(el.value);
      out.push(el);
    }
    return out;
  }

  private setMembers(op: 'add' | 'replace', t: AttrTarget, value: JsonValue): void {
    if (t.filter || t.sub) {
      this.mutability(
        `"${t.text}": the values of "${t.attr.name}" are immutable; add or remove members instead`,
      );
    }
    const values = this.memberValues(t, value);
    if (op === 'replace') this.memberChanges.push({ kind: 'replace', values });
    else if (values.length > 0) this.memberChanges.push({ kind: 'add', values });
  }

  private removeMembers(t: AttrTarget, value: JsonValue | undefined): void {
    if (t.sub) this.mutability(`"${t.text}": the values of "${t.attr.name}" are immutable`);
    if (t.filter) {
      this.memberChanges.push({ kind: 'remove', filter: t.filter });
      return;
    }
    if (value === undefined || value === null) {
      this.memberChanges.push({ kind: 'remove' });
      return;
    }
    const ids = this.memberValues(t, value).map((m) => m.value as string);
    // An empty list names no member: nothing to do (never read as "remove all").
    if (ids.length > 0) this.memberChanges.push({ kind: 'remove', values: ids });
  }

  // ---- end of request ----------------------------------------------------------------------------

  /** Drops empty extension objects, lists the extensions with data in `schemas`, checks required attributes. */
  finish(original: JsonObject): void {
    const extensions = this.rt.schemaExtensions.map((e) => this.registry.schema(e.schema)?.id ?? e.schema);
    const hasData = (doc: JsonObject, urn: string): boolean => !isUnassigned(doc[findKey(doc, urn) ?? urn]);
    const same = (a: JsonValue, b: string): boolean =>
      typeof a === 'string' && a.toLowerCase() === b.toLowerCase();
    let schemas = Array.isArray(this.doc.schemas) ? [...this.doc.schemas] : [this.rt.schema];
    for (const urn of extensions) {
      const key = findKey(this.doc, urn);
      if (hasData(this.doc, urn)) {
        if (!schemas.some((s) => same(s, urn))) schemas.push(urn);
      } else {
        if (key !== undefined) delete this.doc[key];
        // Only an extension this request emptied leaves `schemas` (a stored resource may list one without data).
        if (hasData(original, urn)) schemas = schemas.filter((s) => !same(s, urn));
      }
    }
    this.doc.schemas = schemas;

    for (const { schema, extension } of this.registry.schemasOf(this.rt)) {
      const holderNow = extension ? this.doc[findKey(this.doc, schema.id) ?? schema.id] : this.doc;
      const holderBefore = extension ? original[findKey(original, schema.id) ?? schema.id] : original;
      for (const attr of schema.attributes) {
        if (!attr.required) continue;
        const had =
          isJsonObject(holderBefore) &&
          !isUnassigned(holderBefore[findKey(holderBefore, attr.name) ?? attr.name]);
        const has =
          isJsonObject(holderNow) && !isUnassigned(holderNow[findKey(holderNow, attr.name) ?? attr.name]);
        if (had && !has) bad('invalidValue', `Attribute "${attr.name}" is required`);
      }
    }
  }
}

/**
 * Applies PATCH operations to a copy of `resource` (canonical form, without the members attribute).
 * Throws a ScimError on the first failing operation; `resource` itself is never modified, so the
 * caller still holds the original (RFC 7644 §3.5.2: the request is atomic).
 */
export function applyPatch(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  resource: JsonObject,
  ops: PatchOperation[],
  opts: ApplyPatchOptions = {},
): PatchResult {
  const engine = new PatchEngine(registry, rt, structuredClone(resource), opts.lenient ?? true);
  ops.forEach((op, i) => {
    try {
      engine.apply(op);
    } catch (e) {
      if (e instanceof ScimError) {
        const where = `Operations[${i}] (${op.op}${op.path !== undefined ? ` ${op.path}` : ''})`;
        throw new ScimError(e.status, e.scimType, `${where}: ${e.message}`);
      }
      throw e;
    }
  });
  engine.finish(resource);
  const changed = engine.memberChanges.length > 0 || !deepEqual(engine.doc, resource);
  return { resource: engine.doc, changed, memberChanges: engine.memberChanges };
}
