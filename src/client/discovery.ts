/**
 * What a server says it supports (RFC 7644 §4, RFC 9865 §6), read from its ServiceProviderConfig,
 * ResourceTypes and Schemas, and turned into the few facts the client acts on. Missing members are
 * read conservatively: a feature not advertised is not used.
 */
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../scim/json.ts';

export interface Capabilities {
  patch: boolean;
  bulk: { supported: boolean; maxOperations?: number; maxPayloadSize?: number };
  filter: { supported: boolean; maxResults?: number };
  sort: boolean;
  etag: boolean;
  changePassword: boolean;
  /** RFC 9865; a server without the member pages by index only. */
  pagination: {
    cursor: boolean;
    index: boolean;
    defaultPaginationMethod?: 'cursor' | 'index';
    defaultPageSize?: number;
    maxPageSize?: number;
    cursorTimeout?: number;
  };
}

export interface ResourceTypeInfo {
  id: string;
  name: string;
  /** As served, e.g. `/Users`. */
  endpoint: string;
  schema: string;
  schemaExtensions: Array<{ schema: string; required: boolean }>;
}

export interface AttributeInfo {
  name: string;
  type: string;
  multiValued: boolean;
  mutability: string;
  caseExact: boolean;
  required: boolean;
  subAttributes?: AttributeInfo[];
}

export interface SchemaInfo {
  id: string;
  attributes: AttributeInfo[];
}

export interface Discovery {
  serviceProviderConfig: JsonObject;
  capabilities: Capabilities;
  resourceTypes: ResourceTypeInfo[];
  /** By lower-cased schema URN. Empty when the server does not serve /Schemas. */
  schemas: Map<string, SchemaInfo>;
}

function get(obj: JsonValue | undefined, name: string): JsonValue | undefined {
  if (!isJsonObject(obj)) return undefined;
  const k = findKey(obj, name);
  return k === undefined ? undefined : obj[k];
}
const bool = (v: JsonValue | undefined) => v === true;
const posInt = (v: JsonValue | undefined) =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
const str = (v: JsonValue | undefined) => (typeof v === 'string' ? v : undefined);

export function parseCapabilities(spc: JsonObject): Capabilities {
  const pagination = get(spc, 'pagination');
  const method = str(get(pagination, 'defaultPaginationMethod'));
  return {
    patch: bool(get(get(spc, 'patch'), 'supported')),
    bulk: {
      supported: bool(get(get(spc, 'bulk'), 'supported')),
      maxOperations: posInt(get(get(spc, 'bulk'), 'maxOperations')),
      maxPayloadSize: posInt(get(get(spc, 'bulk'), 'maxPayloadSize')),
    },
    filter: {
      supported: bool(get(get(spc, 'filter'), 'supported')),
      maxResults: posInt(get(get(spc, 'filter'), 'maxResults')),
    },
    sort: bool(get(get(spc, 'sort'), 'supported')),
    etag: bool(get(get(spc, 'etag'), 'supported')),
    changePassword: bool(get(get(spc, 'changePassword'), 'supported')),
    pagination: {
      cursor: bool(get(pagination, 'cursor')),
      // RFC 7644 index paging is the baseline: only an explicit `index: false` turns it off.
      index: get(pagination, 'index') !== false,
      defaultPaginationMethod: method === 'cursor' || method === 'index' ? method : undefined,
      defaultPageSize: posInt(get(pagination, 'defaultPageSize')),
      maxPageSize: posInt(get(pagination, 'maxPageSize')),
      cursorTimeout: posInt(get(pagination, 'cursorTimeout')),
    },
  };
}

export function parseResourceType(doc: JsonValue): ResourceTypeInfo | undefined {
  const name = str(get(doc, 'name'));
  const endpoint = str(get(doc, 'endpoint'));
  const schema = str(get(doc, 'schema'));
  if (!name || !endpoint || !schema) return undefined;
  const ext = get(doc, 'schemaExtensions');
  return {
    id: str(get(doc, 'id')) ?? name,
    name,
    endpoint: endpoint.startsWith('/') ? endpoint : `/${endpoint}`,
    schema,
    schemaExtensions: Array.isArray(ext)
      ? ext.flatMap((e) => {
          const s = str(get(e, 'schema'));
          return s ? [{ schema: s, required: bool(get(e, 'required')) }] : [];
        })
      : [],
  };
}

function parseAttribute(doc: JsonValue): AttributeInfo | undefined {
  const name = str(get(doc, 'name'));
  if (!name) return undefined;
  const subs = get(doc, 'subAttributes');
  return {
    name,
    type: str(get(doc, 'type')) ?? 'string',
    multiValued: bool(get(doc, 'multiValued')),
    mutability: str(get(doc, 'mutability')) ?? 'readWrite',
    caseExact: bool(get(doc, 'caseExact')),
    required: bool(get(doc, 'required')),
    subAttributes: Array.isArray(subs)
      ? subs.map(parseAttribute).filter((a): a is AttributeInfo => !!a)
      : undefined,
  };
}

export function parseSchema(doc: JsonValue): SchemaInfo | undefined {
  const id = str(get(doc, 'id'));
  const attrs = get(doc, 'attributes');
  if (!id || !Array.isArray(attrs)) return undefined;
  return { id, attributes: attrs.map(parseAttribute).filter((a): a is AttributeInfo => !!a) };
}

/** RFC 7643 §2.2 mutability by lower-cased path (`name.givenname`, `urn:…:user:manager.displayname`). */
export function mutabilityMap(rt: ResourceTypeInfo, schemas: Map<string, SchemaInfo>): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (prefix: string, attrs: AttributeInfo[]) => {
    for (const a of attrs) {
      const path = `${prefix}${a.name}`.toLowerCase();
      out.set(path, a.mutability);
      if (a.subAttributes) walk(`${path}.`, a.subAttributes);
    }
  };
  const core = schemas.get(rt.schema.toLowerCase());
  if (core) walk('', core.attributes);
  for (const e of rt.schemaExtensions) {
    const s = schemas.get(e.schema.toLowerCase());
    if (s) walk(`${s.id}:`, s.attributes);
  }
  return out;
}

/** When /ResourceTypes cannot be read: the two RFC 7643 core types at their usual endpoints. */
export const FALLBACK_RESOURCE_TYPES: ResourceTypeInfo[] = [
  {
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    schema: 'urn:ietf:params:scim:schemas:core:2.0:User',
    schemaExtensions: [],
  },
  {
    id: 'Group',
    name: 'Group',
    endpoint: '/Groups',
    schema: 'urn:ietf:params:scim:schemas:core:2.0:Group',
    schemaExtensions: [],
  },
];
