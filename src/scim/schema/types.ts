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
}

/** An attribute as written in a schema file: everything but the name may fall back to RFC defaults. */
export type AttributeInput = Partial<Omit<AttributeDefinition, 'subAttributes'>> & {
  name: string;
  subAttributes?: AttributeInput[];
};

export interface SchemaDefinition {
  id: string;
  name: string;
  description: string;
  attributes: AttributeDefinition[];
}

export interface SchemaInput {
  id: string;
  name: string;
  description?: string;
  attributes: AttributeInput[];
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
  if (input.canonicalValues) attr.canonicalValues = input.canonicalValues;
  if (input.referenceTypes) attr.referenceTypes = input.referenceTypes;
  if (type === 'complex') attr.subAttributes = (input.subAttributes ?? []).map(normalizeAttribute);
  return attr;
}

export function normalizeSchema(input: SchemaInput): SchemaDefinition {
  return {
    id: input.id,
    name: input.name,
    description: input.description ?? '',
    attributes: input.attributes.map(normalizeAttribute),
  };
}
