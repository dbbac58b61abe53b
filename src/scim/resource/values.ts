/**
 * Value helpers shared by validation, PATCH and projection: lexical checks for the RFC 7643 §2.3
 * types and value identity that honours `caseExact` (two emails differing only in case are the
 * same value, two externalIds are not).
 */
import type { JsonObject, JsonValue } from '../json.ts';
import { getFormat } from '../schema/formats.ts';
import type { AttributeDefinition } from '../schema/types.ts';

/** RFC 7643 §2.5: null, [] and (for complex) {} all mean "unassigned". */
export function isUnassigned(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

const DATE_TIME = /^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))?$/;

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/**
 * xsd:dateTime (RFC 7643 §2.3.5): date AND time, optional fraction and zone. The regex alone
 * would accept 2024-02-30T25:61:00Z, which databases then reject or silently shift, so the
 * field ranges are checked too.
 */
export function isDateTime(s: string): boolean {
  const m = DATE_TIME.exec(s);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (year === 0 || month < 1 || month > 12 || day < 1) return false;
  const days = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (day > days) return false;
  if (minute > 59 || second > 59) return false;
  // xsd allows 24:00:00 (end of day) but nothing later.
  if (hour > 24 || (hour === 24 && (minute !== 0 || second !== 0 || (m[7] && /[1-9]/.test(m[7])))))
    return false;
  if (m[9] !== undefined) {
    const tzh = Number(m[9]);
    const tzm = Number(m[10]);
    if (tzm > 59 || tzh > 14 || (tzh === 14 && tzm !== 0)) return false;
  }
  return true;
}

/** Standard base64 with padding (RFC 4648 §4), as RFC 7643 §2.3.6 requires. */
export function isBase64(s: string): boolean {
  return s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}

function foldsCase(attr: AttributeDefinition): boolean {
  return !attr.caseExact && (attr.type === 'string' || attr.type === 'reference');
}

function simpleKey(attr: AttributeDefinition, v: JsonValue): JsonValue {
  if (typeof v !== 'string') return v;
  // Formatted values are one value in any accepted spelling (a MAC with dashes or colons).
  const formatted = attr.format !== undefined ? (getFormat(attr.format)?.normalize(v) ?? v) : v;
  return foldsCase(attr) ? formatted.toLowerCase() : formatted;
}

/**
 * A string identifying one value (one element, for multi-valued attributes) up to case where the
 * schema says case does not matter. Values must be canonical (sub-attributes named as in the schema).
 */
export function valueKey(attr: AttributeDefinition, value: JsonValue): string {
  if (attr.type !== 'complex' || !attr.subAttributes) return JSON.stringify(simpleKey(attr, value));
  const obj = value as JsonObject;
  const parts: JsonValue[] = [];
  for (const sub of attr.subAttributes) {
    const v = obj[sub.name];
    if (v === undefined || v === null) continue;
    parts.push(sub.name, Array.isArray(v) ? v.map((x) => simpleKey(sub, x)) : simpleKey(sub, v));
  }
  return JSON.stringify(parts);
}

/**
 * Whether two values of `attr` are the same SCIM value. For multi-valued attributes the order of
 * elements does not matter (RFC 7643 §2.4 gives them no order).
 */
export function valuesEqual(
  attr: AttributeDefinition,
  a: JsonValue | undefined,
  b: JsonValue | undefined,
): boolean {
  const ua = isUnassigned(a);
  const ub = isUnassigned(b);
  if (ua || ub) return ua && ub;
  if (attr.multiValued && Array.isArray(a) && Array.isArray(b)) {
    const ka = new Set(a.map((x) => valueKey(attr, x)));
    const kb = new Set(b.map((x) => valueKey(attr, x)));
    if (ka.size !== kb.size) return false;
    for (const k of ka) if (!kb.has(k)) return false;
    return true;
  }
  return valueKey(attr, a as JsonValue) === valueKey(attr, b as JsonValue);
}
