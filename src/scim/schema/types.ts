/**
 * The SCIM schema model of RFC 7643 §7, as plain data. Schemas are served verbatim from /Schemas,
 * so these shapes follow the wire format; `normalizeAttribute` fills in the §2.2 defaults.
 */
export type AttributeType =
  'string' | 'boolean' | 'decimal' | 'integer' | 'dateTime' | 'reference' | 'binary' | 'complex';
export type Mutability = 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
export type Returned = 'always' | 'never' | 'default' | 'request';
export type Uniqueness = 'none' | 'server' | 'global';

export interface AttributeDefinition {
  name: string;
  type: AttributeType;
  multiValued: boolean;
  description: string;
  required: boolean;
  caseExact: boolean;
  mutability: Mutability;
  returned: Returned;
  uniqueness: Uniqueness;
  canonicalValues?: string[];
  referenceTypes?: string[];
  subAttributes?: AttributeDefinition[];
  /*
   * Server-side extensions of the RFC 7643 attribute model. None of them is served in /Schemas
   * (RFC 7643 §7 defines the schema representation; clients would not know these keys), see
   * docs/schemas.md.
   */
  /**
   * A regular expression (JavaScript syntax, `u` flag, not implicitly anchored: write ^...$) that
   * every value must match; for integer and decimal attributes it is matched against the JSON
   * number text. Checked after `format` normalisation. A mismatch is 400 invalidValue.
   */
  pattern?: string;
  /**
   * The name of a value format (src/scim/schema/formats.ts) for string attributes: values are
   * stored in the format's canonical spelling, and filter operands are normalised the same way.
   * An invalid value is 400 invalidValue.
   */
  format?: string;
  /**
   * Restrict values to `canonicalValues` (RFC 7643 §7 lets a server do so). Off by default because
   * identity providers send their own `type` labels; for values a specification fixes. A matching
   * value is stored in its canonical spelling when the attribute is not caseExact.
   */
  strictCanonical?: boolean;
  /**
   * The value is a secret (keys, vouchers): consumers hide it from clients without the secrets
   * scope and keep it out of logs. Validation and storage treat it like any other value.
   */
  sensitive?: boolean;
  /**
   * Clients look resources up by this (single-valued string) attribute: the store keeps an
   * expression index for it, as it does a unique one for `uniqueness` server/global. `true` serves
   * `eq`; `'prefix'` serves `eq` and `sw` (a text_pattern_ops btree over the compared text, i.e.
   * lower-cased unless caseExact), e.g. type-ahead search by name.
   */
  indexed?: boolean | 'prefix';
}

/** An attribute as written in a schema file: everything but the name may fall back to RFC defaults. */
export type AttributeInput = Partial<Omit<AttributeDefinition, 'subAttributes'>> & {
  name: string;
  subAttributes?: AttributeInput[];
};

/**
 * A condition on the object a schema describes (the resource for a core schema, the extension
 * object for an extension). Attribute names are those of the schema's top-level attributes.
 */
export type RuleCondition =
  /** The attribute has a value (RFC 7643 §2.5: not null, "", [] or {}). */
  | { present: string }
  /** The attribute's value equals this one (strings compared as the attribute's caseExact says). */
  | { equals: string; value: string | number | boolean }
  | { not: RuleCondition }
  | { all: RuleCondition[] }
  | { any: RuleCondition[] };

/**
 * A cross-attribute constraint of a schema, checked on every write (create, replace, PATCH,
 * Bulk, import) against the resource as it would be stored: when `if` holds, `then` must hold
 * too, else the write is 400 invalidValue with `detail`. Not served in /Schemas (RFC 7643 §7 has
 * no place for it); docs/schemas.md lists the rules.
 */
export interface SchemaRule {
  if: RuleCondition;
  then: RuleCondition;
  /** Why the write is refused, as the client reads it. */
  detail: string;
}

export interface SchemaDefinition {
  id: string;
  name: string;
  description: string;
  attributes: AttributeDefinition[];
  rules?: SchemaRule[];
}

export interface SchemaInput {
  id: string;
  name: string;
  description?: string;
  attributes: AttributeInput[];
  rules?: SchemaRule[];
}

export interface SchemaExtensionRef {
  schema: string;
  required: boolean;
}

export interface ResourceTypeDefinition {
  id: string;
  name: string;
  endpoint: string;
  description: string;
  schema: string;
  schemaExtensions: SchemaExtensionRef[];
}

export function normalizeAttribute(input: AttributeInput): AttributeDefinition {
  const type = input.type ?? 'string';
  const attr: AttributeDefinition = {
    name: input.name,
    type,
    multiValued: input.multiValued ?? false,
    description: input.description ?? '',
    required: input.required ?? false,
    caseExact: input.caseExact ?? false,
    mutability: input.mutability ?? 'readWrite',
    returned: input.returned ?? 'default',
    uniqueness: input.uniqueness ?? 'none',
  };
  // Copies: registries may extend canonicalValues (addCanonicalValues) without touching the input.
  if (input.canonicalValues) attr.canonicalValues = [...input.canonicalValues];
  if (input.referenceTypes) attr.referenceTypes = [...input.referenceTypes];
  if (input.pattern !== undefined) attr.pattern = input.pattern;
  if (input.format !== undefined) attr.format = input.format;
  if (input.strictCanonical) attr.strictCanonical = true;
  if (input.sensitive) attr.sensitive = true;
  if (input.indexed) attr.indexed = input.indexed;
  if (type === 'complex') attr.subAttributes = (input.subAttributes ?? []).map(normalizeAttribute);
  return attr;
}

export function normalizeSchema(input: SchemaInput): SchemaDefinition {
  const schema: SchemaDefinition = {
    id: input.id,
    name: input.name,
    description: input.description ?? '',
    attributes: input.attributes.map(normalizeAttribute),
  };
  if (input.rules?.length) schema.rules = input.rules.map((r) => structuredClone(r));
  return schema;
}
