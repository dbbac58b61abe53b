/**
 * Discovery documents (RFC 7644 §4, RFC 7643 §5-7), generated from the schema registry and the
 * configured limits so that they always say what the server really does.
 */
import type { LimitsConfig } from '../config.ts';
import { SCIM_EVENT_URIS } from '../events/set.ts';
import type { JsonObject } from '../scim/json.ts';
import { isUrnNamed, type ResourceTypeConfig, type SchemaRegistry } from '../scim/schema/registry.ts';
import type { AttributeDefinition, SchemaDefinition } from '../scim/schema/types.ts';

export const SPC_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
export const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
export const SCHEMA_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';
export const DOCS_URL = 'https://github.com/scimd/scimd#readme';

export function serviceProviderConfig(
  limits: LimitsConfig,
  baseUrl: string,
  /** Resource types served (they all support delta query); unset = not advertised by name. */
  types?: string[],
  /** RFC 9967 §3 securityEvents.asyncRequest: the tenant's `asyncRequests` setting. */
  asyncRequest: 'request' | 'none' = 'request',
): JsonObject {
  return {
    schemas: [SPC_SCHEMA],
    documentationUri: DOCS_URL,
    patch: { supported: true },
    bulk: {
      supported: true,
      maxOperations: limits.bulkMaxOperations,
      maxPayloadSize: limits.bulkMaxPayloadSize,
    },
    filter: { supported: true, maxResults: limits.filterMaxResults },
    changePassword: { supported: false },
    sort: { supported: true },
    etag: { supported: true },
    // RFC 9865: both methods; index stays the default, as the RFC asks of servers that had it first.
    pagination: {
      cursor: true,
      index: true,
      defaultPaginationMethod: 'index',
      defaultPageSize: limits.defaultPageSize,
      maxPageSize: Math.min(limits.maxPageSize, limits.filterMaxResults),
      cursorTimeout: limits.cursorTimeout,
    },
    // draft-sehgal-scim-delta-query-02 §4.4 (member name capitalised as written there).
    DeltaQuery: {
      supported: true,
      deltaTokenExpiry: Math.max(1, Math.floor(limits.changeRetentionDays * 86_400)),
      ...(types ? { supportedResources: ['ServerRoot', ...types] } : {}),
    },
    // RFC 9967 §3: whether Prefer: respond-async is honoured, and every event URI scimd can emit.
    securityEvents: { asyncRequest, eventUris: [...SCIM_EVENT_URIS] },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description: 'Authentication with a bearer token in the Authorization header (RFC 6750).',
        specUri: 'https://www.rfc-editor.org/rfc/rfc6750',
        documentationUri: DOCS_URL,
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
  };
}

export function resourceTypeDocument(rt: ResourceTypeConfig, baseUrl: string): JsonObject {
  const doc: JsonObject = {
    schemas: [RESOURCE_TYPE_SCHEMA],
    id: rt.id,
    name: rt.name,
    endpoint: rt.endpoint,
    description: rt.description,
    schema: rt.schema,
    schemaExtensions: rt.schemaExtensions.map((e) => ({ schema: e.schema, required: e.required })),
    meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/${rt.id}` },
  };
  return doc;
}

/**
 * RFC 7643 §7 keys only: the server-side extensions of AttributeDefinition (pattern, format,
 * strictCanonical, sensitive) are not advertised; docs/schemas.md says why.
 */
function attributeDocument(a: AttributeDefinition): JsonObject {
  const doc: JsonObject = {
    name: a.name,
    type: a.type,
    multiValued: a.multiValued,
    description: a.description,
    required: a.required,
    caseExact: a.caseExact,
    mutability: a.mutability,
    returned: a.returned,
    uniqueness: a.uniqueness,
  };
  if (a.canonicalValues) doc.canonicalValues = a.canonicalValues;
  if (a.referenceTypes) doc.referenceTypes = a.referenceTypes;
  if (a.subAttributes) doc.subAttributes = a.subAttributes.map(attributeDocument);
  return doc;
}

export function schemaDocument(s: SchemaDefinition, baseUrl: string): JsonObject {
  return {
    schemas: [SCHEMA_SCHEMA],
    id: s.id,
    name: s.name,
    description: s.description,
    attributes: s.attributes.map(attributeDocument),
    meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${s.id}` },
  };
}

export function listOf(resources: JsonObject[]): JsonObject {
  return {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
    totalResults: resources.length,
    itemsPerPage: resources.length,
    startIndex: 1,
    Resources: resources,
  };
}

/**
 * The schemas served for a set of resource types: their core schemas and extensions, plus the
 * schemas embedded in those as URN-named attributes (the BLE pairing methods), which are schemas
 * with URNs of their own that clients may look up.
 */
export function schemasServedFor(
  registry: SchemaRegistry,
  types: Iterable<ResourceTypeConfig>,
): SchemaDefinition[] {
  const ids = new Set<string>();
  for (const rt of types) {
    for (const { schema } of registry.schemasOf(rt)) {
      ids.add(schema.id.toLowerCase());
      for (const a of schema.attributes) {
        if (isUrnNamed(a) && registry.schema(a.name)) ids.add(a.name.toLowerCase());
      }
    }
  }
  return registry.schemas().filter((s) => ids.has(s.id.toLowerCase()));
}

/** Used by registries' consumers to list the schemas actually reachable through resource types. */
export function schemasInUse(registry: SchemaRegistry): SchemaDefinition[] {
  return schemasServedFor(registry, registry.resourceTypes());
}
