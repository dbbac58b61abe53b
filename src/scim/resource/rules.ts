/**
 * Cross-attribute rules of schemas (SchemaDefinition.rules, see src/scim/schema/types.ts): checked
 * on a resource as it would be stored, after its values are canonical. Generic: the rules are
 * schema data, and nothing here knows a resource type.
 */
import { ScimError } from '../errors.ts';
import { isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../schema/registry.ts';
import type { RuleCondition, SchemaDefinition } from '../schema/types.ts';
import { isUnassigned } from './values.ts';

function valueOf(holder: JsonObject, name: string): JsonValue | undefined {
  if (name in holder) return holder[name];
  const lower = name.toLowerCase();
  const key = Object.keys(holder).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : holder[key];
}

/** "Has a value" as RFC 7643 §2.5 (null, "", [] and {} are no value). */
function present(v: JsonValue | undefined): boolean {
  return !isUnassigned(v) && v !== '';
}

function holds(c: RuleCondition, holder: JsonObject, schema: SchemaDefinition): boolean {
  if ('present' in c) return present(valueOf(holder, c.present));
  if ('equals' in c) {
    const v = valueOf(holder, c.equals);
    if (typeof v === 'string' && typeof c.value === 'string') {
      const attr = schema.attributes.find((a) => a.name.toLowerCase() === c.equals.toLowerCase());
      return attr?.caseExact ? v === c.value : v.toLowerCase() === c.value.toLowerCase();
    }
    return v === c.value;
  }
  if ('not' in c) return !holds(c.not, holder, schema);
  if ('all' in c) return c.all.every((x) => holds(x, holder, schema));
  return c.any.some((x) => holds(x, holder, schema));
}

/**
 * Throws 400 invalidValue for the first rule a schema of the resource type breaks. A schema whose
 * object is absent (an extension the resource does not have) has nothing to check.
 */
export function checkRules(registry: SchemaRegistry, rt: ResourceTypeConfig, resource: JsonObject): void {
  for (const { schema, extension } of registry.schemasOf(rt)) {
    if (!schema.rules) continue;
    const holder = extension ? valueOf(resource, schema.id) : resource;
    if (!isJsonObject(holder)) continue;
    for (const rule of schema.rules) {
      if (holds(rule.if, holder, schema) && !holds(rule.then, holder, schema)) {
        throw ScimError.badRequest(
          'invalidValue',
          extension ? `Extension "${schema.id}": ${rule.detail}` : rule.detail,
        );
      }
    }
  }
}
