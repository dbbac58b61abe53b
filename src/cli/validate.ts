/**
 * A small JSON Schema checker for the subset the admin API's schemas use (type, properties,
 * required, additionalProperties, items, minItems, uniqueItems, minimum, minLength, pattern,
 * anyOf). The direct mode has no HTTP layer to validate bodies, and the CLI should refuse the same
 * settings the server refuses rather than store them.
 */
export interface JsonSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  properties?: Record<string, JsonSchema>;
  required?: readonly string[];
  additionalProperties?: boolean;
  items?: JsonSchema;
  minItems?: number;
  uniqueItems?: boolean;
  minimum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  anyOf?: readonly JsonSchema[];
}

function typeOk(value: unknown, type: JsonSchema['type']): boolean {
  switch (type) {
    case undefined:
      return true;
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'integer':
      return Number.isInteger(value);
    default:
      return typeof value === type;
  }
}

/** The first problem found, as `<path> <what is wrong>`, or undefined when the value fits. */
export function validate(value: unknown, schema: JsonSchema, path: string): string | undefined {
  if (schema.anyOf) {
    if (!schema.anyOf.some((s) => validate(value, s, path) === undefined)) {
      return `${path} does not match any allowed form`;
    }
  }
  if (!typeOk(value, schema.type))
    return `${path} must be ${schema.type === 'integer' ? 'an' : 'a'} ${schema.type}`;
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) return `${path} must not be empty`;
    if (schema.maxLength !== undefined && value.length > schema.maxLength)
      return `${path} must have at most ${schema.maxLength} characters`;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value))
      return `${path} must match ${schema.pattern}`;
  }
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum) {
    return `${path} must be >= ${schema.minimum}`;
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      return `${path} must have at least ${schema.minItems} item(s)`;
    if (schema.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length)
      return `${path} must not have duplicate items`;
    if (schema.items) {
      for (let i = 0; i < value.length; i++) {
        const problem = validate(value[i], schema.items, `${path}/${i}`);
        if (problem) return problem;
      }
    }
  }
  if (typeOk(value, 'object') && schema.type === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!(key in obj)) return `${path} must have property ${key}`;
    }
    for (const [key, v] of Object.entries(obj)) {
      const sub = schema.properties?.[key];
      if (sub) {
        const problem = validate(v, sub, `${path}/${key}`);
        if (problem) return problem;
      } else if (schema.additionalProperties === false) {
        return `${path} has unknown property ${key}`;
      }
    }
  }
  return undefined;
}
