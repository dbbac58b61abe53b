/**
 * Attributes marked `sensitive` in a schema (onboarding secrets such as pairing keys, bootstrap
 * keys, ownership vouchers) are left out of responses to clients not entitled to them. The walk
 * follows the schemas, so it knows nothing about particular resource types.
 */
import { isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../schema/registry.ts';
import type { AttributeDefinition } from '../schema/types.ts';

/**
 * A value of `attr` without its sensitive parts: undefined when the attribute itself is sensitive
 * (or nothing but secrets is left of a single complex value).
 */
export function stripValue(attr: AttributeDefinition, value: JsonValue): JsonValue | undefined {
  if (attr.sensitive) return undefined;
  if (attr.type !== 'complex' || !attr.subAttributes?.some(hasSensitive)) return value;
  const strip = (v: JsonValue): JsonValue => (isJsonObject(v) ? stripObject(attr.subAttributes!, v) : v);
  // A value left with nothing but secrets is left out, not shown as {}.
  const nonEmpty = (v: JsonValue) => !isJsonObject(v) || Object.keys(v).length > 0;
  if (Array.isArray(value)) return value.map(strip).filter(nonEmpty);
  const kept = strip(value);
  return nonEmpty(kept) ? kept : undefined;
}

const sensitiveCache = new WeakMap<AttributeDefinition, boolean>();

/** Whether the attribute or one of its sub-attributes is sensitive (schemas do not change: cached). */
export function hasSensitive(attr: AttributeDefinition): boolean {
  let has = sensitiveCache.get(attr);
  if (has === undefined) {
    has = !!attr.sensitive || !!attr.subAttributes?.some(hasSensitive);
    sensitiveCache.set(attr, has);
  }
  return has;
}

const byNameCache = new WeakMap<AttributeDefinition[], Map<string, AttributeDefinition>>();

/** Attributes by lower-cased name (cached per attribute list). */
function byNameOf(attrs: AttributeDefinition[]): Map<string, AttributeDefinition> {
  let byName = byNameCache.get(attrs);
  if (!byName) byNameCache.set(attrs, (byName = new Map(attrs.map((a) => [a.name.toLowerCase(), a]))));
  return byName;
}

function stripObject(attrs: AttributeDefinition[], obj: JsonObject): JsonObject {
  const byName = byNameOf(attrs);
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(obj)) {
    const attr = byName.get(key.toLowerCase());
    const kept = attr ? stripValue(attr, value) : value;
    if (kept !== undefined) out[key] = kept;
  }
  return out;
}

type SchemaOf = ReturnType<SchemaRegistry['schemasOf']>[number];
const sensitiveSchemas = new WeakMap<SchemaRegistry, WeakMap<ResourceTypeConfig, SchemaOf[]>>();

/**
 * The schemas of a resource type (core first, then extensions) that hold sensitive attributes; the
 * registry's schemas do not change once registered (as for the projection plans), so cached.
 */
export function sensitiveSchemasOf(registry: SchemaRegistry, rt: ResourceTypeConfig): SchemaOf[] {
  let byType = sensitiveSchemas.get(registry);
  if (!byType) sensitiveSchemas.set(registry, (byType = new WeakMap()));
  let out = byType.get(rt);
  if (!out) {
    out = registry.schemasOf(rt).filter(({ schema }) => schema.attributes.some(hasSensitive));
    byType.set(rt, out);
  }
  return out;
}

/** A copy of the resource without its sensitive attributes (the input is not changed). */
export function stripSensitive(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  resource: JsonObject,
): JsonObject {
  const schemas = sensitiveSchemasOf(registry, rt);
  if (schemas.length === 0) return resource;
  let out: JsonObject = resource;
  for (const { schema, extension } of schemas) {
    if (!extension) {
      out = stripObject(schema.attributes, out);
      continue;
    }
    const key = Object.keys(out).find((k) => k.toLowerCase() === schema.id.toLowerCase());
    if (key && isJsonObject(out[key]))
      out = { ...out, [key]: stripObject(schema.attributes, out[key] as JsonObject) };
  }
  return out;
}
