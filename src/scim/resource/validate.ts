/**
 * Turns a client's POST/PUT body into the canonical stored form, enforcing the RFC 7643 §2 / §7
 * attribute characteristics (type, multiValued, required, mutability, uniqueness of values within
 * an attribute) from the schema registry alone, so resource types registered later (Devices,
 * custom schemas) are validated without code changes.
 */
import { checkRules } from './rules.ts';
import { ScimError } from '../errors.ts';
import { isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import { findSubAttribute, type ResourceTypeConfig, type SchemaRegistry } from '../schema/registry.ts';
import { getFormat } from '../schema/formats.ts';
import type { AttributeDefinition, SchemaDefinition } from '../schema/types.ts';
import { isBase64, isDateTime, isUnassigned, valueKey, valuesEqual } from './values.ts';

export interface CanonicalizeOptions {
  /** Accept "true"/"false" strings (any case) as booleans: Entra ID sends them. */
  lenientBooleans?: boolean;
  /**
   * Keep readOnly sub-attributes instead of dropping them. Client input never wants this; it exists
   * for server-side callers re-validating stored data.
   */
  keepReadOnly?: boolean;
}

export interface PrepareWriteOptions {
  mode: 'create' | 'replace';
  /** The stored resource (canonical form) a 'replace' overwrites: needed for immutable checks. */
  existing?: JsonObject;
  lenientBooleans?: boolean;
}

const EXPECTED: Record<AttributeDefinition['type'], string> = {
  string: 'string',
  boolean: 'boolean',
  decimal: 'decimal (JSON number)',
  integer: 'integer (JSON number without fraction)',
  dateTime: 'dateTime (xsd:dateTime with date and time, e.g. 2024-01-02T03:04:05Z)',
  reference: 'reference (non-empty string)',
  binary: 'binary (base64 string)',
  complex: 'complex (JSON object)',
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function wrongType(attr: AttributeDefinition, path: string, v: unknown): ScimError {
  return ScimError.badRequest(
    'invalidValue',
    `Attribute "${path}": expected ${EXPECTED[attr.type]}, got ${describe(v)}${
      typeof v === 'string' || typeof v === 'number' ? ` ${JSON.stringify(v)}` : ''
    }`,
  );
}

const patternCache = new Map<string, RegExp>();

function compiledPattern(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'u');
    patternCache.set(pattern, re);
  }
  return re;
}

/**
 * The generic per-attribute value rules beyond the RFC 7643 type: `format` (normalise or reject),
 * `strictCanonical` (restrict to canonicalValues, canonical spelling), then `pattern` on the
 * result. Order matters: a pattern describes the stored (normalised) form.
 */
function applyValueRules<T extends string | number>(
  attr: AttributeDefinition,
  v: T,
  path: string,
): string | T {
  let out: string | T = v;
  if (attr.format !== undefined && typeof v === 'string') {
    const format = getFormat(attr.format);
    const normalized = format?.normalize(v);
    if (normalized === undefined) {
      throw ScimError.badRequest(
        'invalidValue',
        `Attribute "${path}": ${JSON.stringify(v)} is not a valid ${attr.format} value${
          format ? ` (${format.description})` : ''
        }`,
      );
    }
    out = normalized;
  }
  if (attr.strictCanonical && typeof out === 'string') out = strictCanonicalValue(attr, out, path);
  if (attr.pattern !== undefined && !compiledPattern(attr.pattern).test(String(out))) {
    throw ScimError.badRequest(
      'invalidValue',
      `Attribute "${path}": ${JSON.stringify(v)} does not match the pattern ${attr.pattern}`,
    );
  }
  return out;
}

function strictCanonicalValue(attr: AttributeDefinition, v: string, path: string): string {
  const allowed = attr.canonicalValues ?? [];
  const hit = attr.caseExact
    ? allowed.find((a) => a === v)
    : allowed.find((a) => a.toLowerCase() === v.toLowerCase());
  if (hit === undefined) {
    throw ScimError.badRequest(
      'invalidValue',
      `Attribute "${path}": "${v}" is not one of the canonical values ${allowed.map((a) => `"${a}"`).join(', ')}`,
    );
  }
  return hit;
}

function canonicalizeSimple(
  attr: AttributeDefinition,
  v: unknown,
  path: string,
  opts: CanonicalizeOptions,
): JsonValue {
  switch (attr.type) {
    case 'string':
      if (typeof v === 'string') return applyValueRules(attr, v, path);
      break;
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (opts.lenientBooleans && typeof v === 'string') {
        const l = v.toLowerCase();
        if (l === 'true') return true;
        if (l === 'false') return false;
      }
      break;
    case 'decimal':
      if (typeof v === 'number' && Number.isFinite(v)) return applyValueRules(attr, v, path);
      break;
    case 'integer':
      // Beyond 2^53 the JSON parser has already rounded the number: storing it would silently change it.
      if (typeof v === 'number' && Number.isSafeInteger(v)) return applyValueRules(attr, v, path);
      break;
    case 'dateTime':
      if (typeof v === 'string' && isDateTime(v)) return v;
      break;
    case 'reference':
      if (typeof v === 'string' && v.length > 0) return applyValueRules(attr, v, path);
      break;
    case 'binary':
      if (typeof v === 'string' && isBase64(v)) return v;
      break;
    case 'complex':
      break;
  }
  throw wrongType(attr, path, v);
}

function canonicalizeComplex(
  attr: AttributeDefinition,
  v: unknown,
  path: string,
  opts: CanonicalizeOptions,
  depth: number,
): JsonObject | undefined {
  if (depth > 0) {
    // RFC 7643 §2.3.8: a sub-attribute cannot itself have sub-attributes.
    throw ScimError.badRequest('invalidValue', `Attribute "${path}": complex values cannot be nested here`);
  }
  if (!isJsonObject(v)) throw wrongType(attr, path, v);
  const found = new Map<string, JsonValue>();
  const seen = new Set<string>();
  for (const [k, raw] of Object.entries(v)) {
    const lower = k.toLowerCase();
    if (seen.has(lower)) {
      throw ScimError.badRequest(
        'invalidSyntax',
        `Attribute "${path}" has "${k}" more than once (names are case-insensitive)`,
      );
    }
    seen.add(lower);
    const sub = findSubAttribute(attr, k);
    if (!sub) throw ScimError.badRequest('invalidSyntax', `Unknown attribute "${path}.${k}"`);
    if (sub.mutability === 'readOnly' && !opts.keepReadOnly) continue;
    const c = canonicalizeAt(sub, raw, `${path}.${sub.name}`, opts, depth + 1);
    if (c !== undefined) found.set(sub.name, c);
  }
  if (found.size === 0) return undefined;
  const out: JsonObject = {};
  // Schema order, so equal values serialise identically (stable ETags and duplicate detection).
  for (const sub of attr.subAttributes ?? []) {
    const c = found.get(sub.name);
    if (c !== undefined) out[sub.name] = c;
    else if (sub.required && sub.mutability !== 'readOnly') {
      throw ScimError.badRequest('invalidValue', `Attribute "${path}.${sub.name}" is required`);
    }
  }
  return out;
}

function canonicalizeOne(
  attr: AttributeDefinition,
  v: unknown,
  path: string,
  opts: CanonicalizeOptions,
  depth: number,
): JsonValue | undefined {
  if (v === null || v === undefined) return undefined;
  if (attr.type === 'complex') return canonicalizeComplex(attr, v, path, opts, depth);
  return canonicalizeSimple(attr, v, path, opts);
}

function canonicalizeAt(
  attr: AttributeDefinition,
  value: unknown,
  path: string,
  opts: CanonicalizeOptions,
  depth: number,
): JsonValue | undefined {
  if (value === null || value === undefined) return undefined;
  if (!attr.multiValued) {
    if (Array.isArray(value)) {
      throw ScimError.badRequest(
        'invalidValue',
        `Attribute "${path}" is single-valued: an array is not allowed`,
      );
    }
    return canonicalizeOne(attr, value, path, opts, depth);
  }
  if (!Array.isArray(value)) {
    throw ScimError.badRequest('invalidValue', `Attribute "${path}" is multi-valued: expected an array`);
  }
  const out: JsonValue[] = [];
  const keys = new Set<string>();
  for (const el of value) {
    if (Array.isArray(el)) {
      throw ScimError.badRequest('invalidValue', `Attribute "${path}": nested arrays are not allowed`);
    }
    const c = canonicalizeOne(attr, el, path, opts, depth);
    if (c === undefined) continue;
    const key = valueKey(attr, c);
    if (keys.has(key)) continue;
    keys.add(key);
    out.push(c);
  }
  if (out.length === 0) return undefined;
  if (attr.type === 'complex') {
    let primaries = 0;
    for (const el of out) if ((el as JsonObject).primary === true) primaries++;
    if (primaries > 1) {
      throw ScimError.badRequest(
        'invalidValue',
        `Attribute "${path}": at most one value may have "primary": true`,
      );
    }
  }
  return out;
}

/**
 * Validates one attribute value (a whole multi-valued array, or a single value) and returns it in
 * canonical form, or undefined when it is unassigned. The attribute's own mutability is the
 * caller's business; readOnly sub-attributes are dropped.
 */
export function canonicalizeValue(
  attr: AttributeDefinition,
  value: unknown,
  path: string,
  opts: CanonicalizeOptions = {},
): JsonValue | undefined {
  return canonicalizeAt(attr, value, path, opts, 0);
}

/**
 * Validates one element of a multi-valued attribute (or the value of a single-valued one): what a
 * PATCH operation targeting `emails[type eq "work"]` supplies.
 */
export function canonicalizeElement(
  attr: AttributeDefinition,
  value: unknown,
  path: string,
  opts: CanonicalizeOptions = {},
): JsonValue | undefined {
  if (Array.isArray(value)) {
    throw ScimError.badRequest('invalidValue', `Attribute "${path}": expected a single value, got an array`);
  }
  return canonicalizeOne(attr, value, path, opts, 0);
}

/**
 * RFC 7643 §2.4: setting one value primary clears the others. "Absent" is false, so the key is
 * removed from every other element. Returns new element objects; the input is not modified.
 */
export function normalizePrimary(values: JsonObject[], winnerIndex: number): JsonObject[] {
  return values.map((v, i) => {
    if (i === winnerIndex || !('primary' in v)) return v;
    const copy = { ...v };
    delete copy.primary;
    return copy;
  });
}

/**
 * Enforces `canonicalValues` (RFC 7643 §7 lets a server restrict to them). Not applied by default:
 * IdPs send custom `type` values; a resource type that wants strictness calls this.
 */
export function checkCanonical(
  attr: AttributeDefinition,
  value: JsonValue | undefined,
  path: string = attr.name,
): void {
  const allowed = attr.canonicalValues;
  if (!allowed || value === undefined || value === null) return;
  const values = Array.isArray(value) ? value : [value];
  for (const v of values) {
    if (typeof v !== 'string') continue;
    const ok = attr.caseExact
      ? allowed.includes(v)
      : allowed.some((a) => a.toLowerCase() === v.toLowerCase());
    if (!ok) {
      throw ScimError.badRequest(
        'invalidValue',
        `Attribute "${path}": "${v}" is not one of the canonical values ${allowed.map((a) => `"${a}"`).join(', ')}`,
      );
    }
  }
}

const attrIndexCache = new WeakMap<SchemaDefinition, Map<string, AttributeDefinition>>();

function attrIndex(schema: SchemaDefinition): Map<string, AttributeDefinition> {
  let m = attrIndexCache.get(schema);
  if (!m) {
    m = new Map(schema.attributes.map((a) => [a.name.toLowerCase(), a]));
    attrIndexCache.set(schema, m);
  }
  return m;
}

interface SchemaSlot {
  schema: SchemaDefinition;
  extension: boolean;
  required: boolean;
  /** Canonical attribute values found in the input, by canonical name. */
  values: Map<string, JsonValue>;
  /** The body held an object for this extension (even one whose values are all unassigned). */
  given?: boolean;
}

function readAttributes(
  slot: SchemaSlot,
  obj: JsonObject,
  prefix: string,
  opts: CanonicalizeOptions,
  seen: Set<string>,
  onOther: (key: string, value: JsonValue) => void,
): void {
  const index = attrIndex(slot.schema);
  for (const [k, raw] of Object.entries(obj)) {
    const lower = k.toLowerCase();
    if (seen.has(lower)) {
      throw ScimError.badRequest(
        'invalidSyntax',
        `Attribute "${prefix}${k}" given more than once (names are case-insensitive)`,
      );
    }
    seen.add(lower);
    const attr = index.get(lower);
    if (!attr) {
      onOther(k, raw);
      continue;
    }
    if (attr.mutability === 'readOnly') continue;
    const c = canonicalizeAt(attr, raw, `${prefix}${attr.name}`, opts, 0);
    if (c !== undefined) slot.values.set(attr.name, c);
  }
}

/** Immutable rule for PUT (RFC 7644 §3.5.1): a value once set must be resent unchanged or left out. */
function keepImmutable(
  attr: AttributeDefinition,
  input: JsonValue | undefined,
  existing: JsonValue | undefined,
  path: string,
): JsonValue | undefined {
  if (isUnassigned(existing)) return input;
  if (attr.mutability === 'immutable') {
    if (input === undefined) return existing;
    if (!valuesEqual(attr, input, existing)) {
      throw ScimError.badRequest('mutability', `Attribute "${path}" is immutable and cannot be changed`);
    }
    return input;
  }
  if (attr.type !== 'complex' || attr.multiValued || !isJsonObject(existing)) return input;
  const subs = (attr.subAttributes ?? []).filter(
    (s) => s.mutability === 'immutable' && !isUnassigned(existing[s.name]),
  );
  if (subs.length === 0) return input;
  const merged: JsonObject = {};
  for (const sub of attr.subAttributes ?? []) {
    const inV = isJsonObject(input) ? input[sub.name] : undefined;
    const exV = existing[sub.name];
    if (subs.includes(sub)) {
      if (inV === undefined) merged[sub.name] = exV;
      else if (!valuesEqual(sub, inV, exV)) {
        throw ScimError.badRequest(
          'mutability',
          `Attribute "${path}.${sub.name}" is immutable and cannot be changed`,
        );
      } else merged[sub.name] = inV;
    } else if (inV !== undefined) merged[sub.name] = inV;
  }
  return merged;
}

/**
 * Validates a POST (create) or PUT (replace) body and returns the resource in canonical form:
 * schema spelling of names, extension data under the canonical URN, multi-valued as arrays,
 * unassigned and readOnly attributes (id, meta, groups, ...) removed. `id` and `meta` are the
 * caller's to add.
 */
export function prepareWrite(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  input: unknown,
  opts: PrepareWriteOptions,
): JsonObject {
  if (!isJsonObject(input))
    throw ScimError.badRequest('invalidSyntax', 'The request body must be a JSON object');
  const copts: CanonicalizeOptions = { lenientBooleans: opts.lenientBooleans };
  const slots: SchemaSlot[] = registry.schemasOf(rt).map((s) => ({ ...s, values: new Map() }));
  const core = slots[0];
  const byUrn = new Map(slots.map((s) => [s.schema.id.toLowerCase(), s]));
  // Aliases (registry.addSchemaAlias) name the same slot: accepted on input, canonical on output.
  for (const [alias, canonical] of registry.schemaAliases()) {
    const slot = byUrn.get(canonical.toLowerCase());
    if (slot) byUrn.set(alias, slot);
  }
  const externalIdDef = registry.common.find((a) => a.name === 'externalId')!;

  const extensionsRead = new Set<SchemaSlot>();
  let schemasRaw: JsonValue | undefined;
  let externalId: JsonValue | undefined;
  const seen = new Set<string>();
  readAttributes(core, input, '', copts, seen, (k, raw) => {
    const lower = k.toLowerCase();
    if (lower === 'schemas') schemasRaw = raw;
    else if (lower === 'id' || lower === 'meta') return;
    else if (lower === 'externalid') externalId = canonicalizeAt(externalIdDef, raw, 'externalId', copts, 0);
    else {
      const ext = byUrn.get(lower);
      if (ext && ext.extension) {
        if (extensionsRead.has(ext)) {
          throw ScimError.badRequest(
            'invalidSyntax',
            `Extension "${ext.schema.id}" given more than once (under "${k}" and another spelling)`,
          );
        }
        extensionsRead.add(ext);
        if (raw === null) return;
        ext.given = true;
        if (!isJsonObject(raw)) {
          throw ScimError.badRequest(
            'invalidValue',
            `Extension "${ext.schema.id}": expected a JSON object, got ${describe(raw)}`,
          );
        }
        readAttributes(ext, raw, `${ext.schema.id}:`, copts, new Set(), (ek) => {
          throw ScimError.badRequest(
            'invalidSyntax',
            `Unknown attribute "${ext.schema.id}:${ek}" for resource type ${rt.name}`,
          );
        });
      } else if (registry.schema(k)) {
        throw ScimError.badRequest(
          'invalidSyntax',
          `Schema "${k}" is not allowed for resource type ${rt.name}`,
        );
      } else {
        throw ScimError.badRequest('invalidSyntax', `Unknown attribute "${k}" for resource type ${rt.name}`);
      }
    }
  });

  checkSchemas(registry, rt, schemasRaw, byUrn);

  if (opts.mode === 'replace' && opts.existing) {
    const existing = opts.existing;
    for (const slot of slots) {
      const exObj = slot.extension ? existing[slot.schema.id] : existing;
      if (!isJsonObject(exObj)) continue;
      const prefix = slot.extension ? `${slot.schema.id}:` : '';
      for (const attr of slot.schema.attributes) {
        if (attr.mutability === 'readOnly') continue;
        const kept = keepImmutable(
          attr,
          slot.values.get(attr.name),
          exObj[attr.name],
          `${prefix}${attr.name}`,
        );
        if (kept === undefined) slot.values.delete(attr.name);
        else slot.values.set(attr.name, kept);
      }
    }
  }

  for (const slot of slots) {
    if (slot.extension && slot.values.size === 0) {
      if (slot.required) {
        throw ScimError.badRequest(
          'invalidValue',
          `Extension "${slot.schema.id}" is required for resource type ${rt.name}`,
        );
      }
      // An extension object sent without its required attributes (an Ethernet MAB device without
      // its MAC) is an error, not an absent extension; null or no object at all is absent.
      if (!slot.given) continue;
    }
    const prefix = slot.extension ? `${slot.schema.id}:` : '';
    for (const attr of slot.schema.attributes) {
      if (attr.required && attr.mutability !== 'readOnly' && !slot.values.has(attr.name)) {
        throw ScimError.badRequest('invalidValue', `Attribute "${prefix}${attr.name}" is required`);
      }
    }
  }

  const out: JsonObject = {
    schemas: [
      core.schema.id,
      ...slots.filter((s) => s.extension && s.values.size > 0).map((s) => s.schema.id),
    ],
  };
  if (externalId !== undefined) out.externalId = externalId;
  for (const slot of slots) {
    if (slot.values.size === 0) continue;
    const target: JsonObject = slot.extension ? {} : out;
    for (const attr of slot.schema.attributes) {
      const v = slot.values.get(attr.name);
      if (v !== undefined) target[attr.name] = v;
    }
    if (slot.extension) out[slot.schema.id] = target;
  }
  checkRules(registry, rt, out);
  return out;
}

function checkSchemas(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  raw: JsonValue | undefined,
  byUrn: Map<string, SchemaSlot>,
): void {
  if (raw === undefined || raw === null) {
    throw ScimError.badRequest('invalidSyntax', `"schemas" is required and must include "${rt.schema}"`);
  }
  if (!Array.isArray(raw) || raw.some((s) => typeof s !== 'string')) {
    throw ScimError.badRequest('invalidSyntax', '"schemas" must be an array of schema URNs (strings)');
  }
  let hasCore = false;
  for (const urn of raw as string[]) {
    const slot = byUrn.get(urn.toLowerCase());
    if (!slot) {
      throw ScimError.badRequest(
        'invalidSyntax',
        registry.schema(urn)
          ? `Schema "${urn}" is not allowed for resource type ${rt.name}`
          : `Unknown schema "${urn}" in "schemas"`,
      );
    }
    if (!slot.extension) hasCore = true;
  }
  if (!hasCore) throw ScimError.badRequest('invalidSyntax', `"schemas" must include "${rt.schema}"`);
}
