/**
 * Attributes marked `sensitive` in a schema (onboarding secrets such as pairing keys, bootstrap
 * keys, ownership vouchers) are left out of responses to clients not entitled to them. The walk
 * follows the schemas, so it knows nothing about particular resource types.
 */
import { isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../schema/registry.ts';
import type { AttributeDefinition } from '../schema/types.ts';

function stripValue(attr: AttributeDefinition, value: JsonValue): JsonValue | undefined {
  if (attr.sensitive) return undefined;
  if (attr.type !== 'complex' || !attr.subAttributes?.some(hasSensitive)) return value;
  const strip = (v: JsonValue): JsonValue => (isJsonObject(v) ? stripObject(attr.subAttributes!, v) : v);
  // A value left with nothing but secrets is left out, not shown as {}.
  const nonEmpty = (v: JsonValue) => !isJsonObject(v) || Object.keys(v).length > 0;
  if (Array.isArray(value)) return value.map(strip).filter(nonEmpty);
  const kept = strip(value);
  return nonEmpty(kept) ? kept : undefined;
}

function hasSensitive(attr: AttributeDefinition): boolean {
  return !!attr.sensitive || !!attr.subAttributes?.some(hasSensitive);
}

function stripObject(attrs: AttributeDefinition[], obj: JsonObject): JsonObject {
  const byName = new Map(attrs.map((a) => [a.name.toLowerCase(), a]));
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(obj)) {
    const attr = byName.get(key.toLowerCase());
    const kept = attr ? stripValue(attr, value) : value;
    if (kept !== undefined) out[key] = kept;
  }
  return out;
}

/** A copy of the resource without its sensitive attributes (the input is not changed). */
export function stripSensitive(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  resource: JsonObject,
): JsonObject {
  const schemas = registry.schemasOf(rt);
  if (!schemas.some(({ schema }) => schema.attributes.some(hasSensitive))) return resource;
  let out: JsonObject = resource;
  for (const { schema, extension } of schemas) {
    if (!schema.attributes.some(hasSensitive)) continue;
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
