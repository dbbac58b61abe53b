/**
 * Wire types of the SCIM client (RFC 7643/7644 messages as the client sees them). Resources are
 * plain JSON documents; the generic parameters only name the attributes a caller expects.
 */
import type { JsonObject, JsonValue } from '../scim/json.ts';

export type { JsonObject, JsonValue };

export const SCIM_MEDIA_TYPE = 'application/scim+json';
export const LIST_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SEARCH_REQUEST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const BULK_REQUEST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

export interface ScimMeta {
  resourceType?: string;
  created?: string;
  lastModified?: string;
  location?: string;
  version?: string;
}

/** Any SCIM resource: `schemas` plus attributes; `id` and `meta` are set by the server. */
export interface ScimResource {
  schemas: string[];
  id?: string;
  externalId?: string;
  meta?: ScimMeta;
  [attribute: string]: unknown;
}

export interface ScimMultiValue {
  value?: string;
  display?: string;
  type?: string;
  primary?: boolean;
  $ref?: string;
  [sub: string]: unknown;
}

export interface ScimUser extends ScimResource {
  userName: string;
  name?: {
    formatted?: string;
    familyName?: string;
    givenName?: string;
    middleName?: string;
    honorificPrefix?: string;
    honorificSuffix?: string;
  };
  displayName?: string;
  active?: boolean;
  emails?: ScimMultiValue[];
  phoneNumbers?: ScimMultiValue[];
  groups?: ScimMultiValue[];
}

export interface ScimGroup extends ScimResource {
  displayName: string;
  members?: ScimMultiValue[];
}

export type PatchOpName = 'add' | 'remove' | 'replace';

export interface PatchOperation {
  op: PatchOpName;
  path?: string;
  value?: JsonValue;
}

export interface ListResponse<T extends ScimResource = ScimResource> {
  schemas: string[];
  totalResults?: number;
  startIndex?: number;
  itemsPerPage?: number;
  /** RFC 9865: present on every page but the last when cursor paging. */
  nextCursor?: string;
  previousCursor?: string;
  Resources: T[];
}

/** Query parameters of GET /{endpoint} and POST /{endpoint}/.search (RFC 7644 §3.4.2, RFC 9865). */
export interface QueryOptions {
  filter?: string;
  sortBy?: string;
  sortOrder?: 'ascending' | 'descending';
  startIndex?: number;
  count?: number;
  /** RFC 9865 cursor; '' asks for the first page of a cursor-paged result. */
  cursor?: string;
  attributes?: string[];
  excludedAttributes?: string[];
}

export interface BulkOperation {
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** `/Users` for POST, `/Users/{id}` otherwise; `bulkId:x` references are allowed in the path. */
  path: string;
  /** Required for POST (RFC 7644 §3.7); other operations may reference it as `bulkId:<id>`. */
  bulkId?: string;
  /** ETag precondition for PUT/PATCH/DELETE. */
  version?: string;
  data?: JsonObject;
}

export interface BulkOperationResult {
  method: string;
  bulkId?: string;
  version?: string;
  location?: string;
  /** HTTP status of this operation as a string (RFC 7644 §3.7.3), e.g. "201". */
  status: string;
  response?: JsonValue;
}
