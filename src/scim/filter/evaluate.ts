/**
 * In-memory filter evaluation: the reference semantics of a BoundFilter on a resource's full JSON
 * representation. The SQL compiler implements the same rules; tests compare the two. Rules:
 *
 *  - Lookup: 'core' and 'common' attributes at the top level, 'extension' attributes inside the
 *    object under the extension URN key; keys are matched case-insensitively.
 *  - Values of an attribute: a multi-valued attribute contributes each element; `a.sub` contributes
 *    the sub-value of `a` (single-valued complex) or of every element of `a` (multi-valued).
 *    A comparison holds when ANY contributed value satisfies it; no values → false.
 *  - `ne` is `not eq`: true when no value equals the operand, including when there is no value.
 *    (Not "some value differs": `emails ne "a"` is false for a user with emails a and b.)
 *  - Presence (`pr`): some value is present, where null, "", [] and {} are not present, an array
 *    is present when an element is, and an object when one of its members is.
 *  - string and reference: compared as strings; when the attribute is not caseExact both sides are
 *    lower-cased with toLowerCase(). binary is always case-exact. co/sw/ew are substring tests;
 *    gt/ge/lt/le order by UTF-16 code units (JavaScript `<`).
 *  - dateTime: chronological, by parseDateTime (a value without zone offset is UTC).
 *  - integer/decimal: numeric. boolean: eq/ne by identity.
 *  - A stored value of the wrong JSON type never matches (so `ne` is true for it).
 *  - valuePath `a[f]`: some element of `a` (or the object `a` when single-valued) satisfies `f`,
 *    with `f`'s sub-attributes read from that element.
 *  - const: its value.
 */
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import type { AttributeDefinition } from '../schema/types.ts';
import type { BoundAttr, BoundFilter, CompareOp, FilterValue } from './ast.ts';
import { parseDateTime } from './bind.ts';

function member(obj: JsonObject, name: string): JsonValue | undefined {
  const key = findKey(obj, name);
  return key === undefined ? undefined : obj[key];
}

/** The object holding `attr` at the top of a resource. */
function containerOf(resource: JsonObject, attr: BoundAttr): JsonObject | undefined {
  if (attr.location !== 'extension') return resource;
  const ext = member(resource, attr.schema);
  return isJsonObject(ext) ? ext : undefined;
}

function pushAll(out: JsonValue[], v: JsonValue | undefined): void {
  if (v === undefined) return;
  if (Array.isArray(v)) out.push(...v);
  else out.push(v);
}

/** Every value `attr` contributes. `element` is the value-path element the attr is relative to. */
function valuesOf(resource: JsonObject, attr: BoundAttr, element?: JsonObject): JsonValue[] {
  const out: JsonValue[] = [];
  if (element) {
    pushAll(out, attr.sub ? member(element, attr.sub.name) : undefined);
    return out;
  }
  const container = containerOf(resource, attr);
  if (!container) return out;
  const top = member(container, attr.attribute.name);
  if (!attr.sub) {
    pushAll(out, top);
    return out;
  }
  const parents: JsonValue[] = [];
  pushAll(parents, top);
  for (const p of parents) if (isJsonObject(p)) pushAll(out, member(p, attr.sub.name));
  return out;
}

export function isPresent(v: JsonValue | undefined): boolean {
  if (v === undefined || v === null || v === '') return false;
  if (Array.isArray(v)) return v.some(isPresent);
  if (isJsonObject(v)) return Object.values(v).some(isPresent);
  return true;
}

function compareOne(
  op: CompareOp,
  def: AttributeDefinition,
  actual: JsonValue,
  expected: FilterValue,
): boolean {
  switch (def.type) {
    case 'boolean':
      return typeof actual === 'boolean' && op === 'eq' && actual === expected;
    case 'integer':
    case 'decimal':
      return typeof actual === 'number' && typeof expected === 'number' && order(op, actual, expected);
    case 'dateTime': {
      if (typeof actual !== 'string' || typeof expected !== 'string') return false;
      const a = parseDateTime(actual);
      const b = parseDateTime(expected);
      return !Number.isNaN(a) && !Number.isNaN(b) && order(op, a, b);
    }
    case 'complex':
      return false;
    default: {
      if (typeof actual !== 'string' || typeof expected !== 'string') return false;
      const exact = def.caseExact || def.type === 'binary';
      const a = exact ? actual : actual.toLowerCase();
      const b = exact ? expected : expected.toLowerCase();
      switch (op) {
        case 'co':
          return a.includes(b);
        case 'sw':
          return a.startsWith(b);
        case 'ew':
          return a.endsWith(b);
        default:
          return order(op, a, b);
      }
    }
  }
}

function order<T extends number | string>(op: CompareOp, a: T, b: T): boolean {
  switch (op) {
    case 'eq':
      return a === b;
    case 'gt':
      return a > b;
    case 'ge':
      return a >= b;
    case 'lt':
      return a < b;
    case 'le':
      return a <= b;
    default:
      return false;
  }
}

function evaluate(resource: JsonObject, f: BoundFilter, element?: JsonObject): boolean {
  switch (f.op) {
    case 'const':
      return f.value;
    case 'and':
      return evaluate(resource, f.left, element) && evaluate(resource, f.right, element);
    case 'or':
      return evaluate(resource, f.left, element) || evaluate(resource, f.right, element);
    case 'not':
      return !evaluate(resource, f.filter, element);
    case 'pr':
      return valuesOf(resource, f.attr, element).some(isPresent);
    case 'valuePath': {
      const container = containerOf(resource, f.attr);
      const items: JsonValue[] = [];
      pushAll(items, container ? member(container, f.attr.attribute.name) : undefined);
      return items.some((item) => isJsonObject(item) && evaluate(resource, f.filter, item));
    }
    default: {
      const def = f.attr.sub ?? f.attr.attribute;
      const values = valuesOf(resource, f.attr, element);
      if (f.op === 'ne') return !values.some((v) => v !== null && compareOne('eq', def, v, f.value));
      return values.some((v) => v !== null && compareOne(f.op, def, v, f.value));
    }
  }
}

/** Whether a resource (full JSON representation) satisfies a bound filter. */
export function matches(resource: JsonObject, filter: BoundFilter): boolean {
  return evaluate(resource, filter);
}
