/**
 * A SCIM service provider in front of a store that is not SCIM (the last mile: an application's
 * database table or API). It is a `Transport` of the SCIM client (src/client/transport.ts): the
 * sync engine talks SCIM to it exactly as to a remote server, and it answers the requests the
 * engine makes from the store, so the engine needs no change:
 *
 *   GET    /ServiceProviderConfig, /ResourceTypes, /Schemas   discovery (patch and filter, index paging)
 *   GET    /{endpoint}?filter=&startIndex=&count=            list (any filter; `attr eq "v"` is handed
 *                                                            to the store as a candidate query)
 *   POST   /{endpoint}/.search                               the same, filter in the body
 *   GET    /{endpoint}/{id}                                  one
 *   POST   /{endpoint}                                       create (the store upserts by its key)
 *   PUT    /{endpoint}/{id}                                  replace (upsert)
 *   PATCH  /{endpoint}/{id}                                  read, apply the operations with scimd's own
 *                                                            PATCH engine (src/scim/patch), write back
 *   DELETE /{endpoint}/{id}                                  delete
 *
 * Bodies are validated with the registry's schema (src/scim/resource/validate.ts prepareWrite), so
 * what reaches the store is a canonical SCIM resource. Filters are evaluated with scimd's own
 * evaluator on the resources the store gives back. A store error becomes a SCIM error answer
 * (`AdapterError`), an unreachable store a `ScimNetworkError` (the client retries it).
 */
import { ScimNetworkError } from '../../client/errors.ts';
import type { HttpRequest, HttpResponse, Transport } from '../../client/transport.ts';
import { ScimError, type ScimErrorBody, type ScimType } from '../../scim/errors.ts';
import { bindFilter } from '../../scim/filter/bind.ts';
import { matches } from '../../scim/filter/evaluate.ts';
import { parseFilter } from '../../scim/filter/parser.ts';
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../../scim/json.ts';
import { applyPatch, parsePatchRequest } from '../../scim/patch/patch.ts';
import { prepareWrite } from '../../scim/resource/validate.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../../scim/schema/registry.ts';
import type { AttributeDefinition } from '../../scim/schema/types.ts';

const SCIM = 'application/scim+json';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const SEARCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** Errors of a store that cannot be reached (plus SQLSTATE class 08 and 57P01 admin shutdown). */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

/** A candidate query the store can run itself: resources whose attribute equals a string value. */
export interface Equals {
  /** The canonical attribute path, e.g. `userName`, `name.givenName`, `<urn>:employeeNumber`. */
  path: string;
  value: string;
  caseExact: boolean;
}

/** One resource type's records in the store, as canonical SCIM resources (`id` = the store's key). */
export interface AdapterTable {
  readonly resourceType: ResourceTypeConfig;
  /** A page of every record, ordered by key, and the total. */
  page(offset: number, limit: number): Promise<{ resources: JsonObject[]; total: number }>;
  /** Every record (`where` undefined), or the records that may match `where` (a superset is fine). */
  candidates(where: Equals | undefined): Promise<JsonObject[]>;
  get(id: string): Promise<JsonObject | undefined>;
  /** Creates (or, when the key is already there, replaces) a record; the resource with its id. */
  create(resource: JsonObject): Promise<JsonObject>;
  /** Replaces the record `id` (creating it when missing). */
  replace(id: string, resource: JsonObject): Promise<JsonObject>;
  /**
   * Reads the record `id`, computes the new state with `change` and writes it, in one transaction
   * (the record locked meanwhile); undefined when there is no such record.
   */
  modify(id: string, change: (current: JsonObject) => JsonObject): Promise<JsonObject | undefined>;
  /** False when there was no such record. */
  delete(id: string): Promise<boolean>;
}

/** A store of several resource types, closed when the SCIM client is. */
export interface AdapterStore {
  readonly tables: readonly AdapterTable[];
  close(): Promise<void>;
}

/** A store refusal with its SCIM status: `AdapterError(409, 'uniqueness', '…')`. */
export class AdapterError extends ScimError {
  constructor(status: number, scimType: ScimType | undefined, detail: string) {
    super(status, scimType, detail);
    this.name = 'AdapterError';
  }
}

function answer(
  status: number,
  body?: JsonValue | ScimErrorBody,
  headers: Record<string, string> = {},
): HttpResponse {
  return {
    status,
    headers: body === undefined ? headers : { 'content-type': SCIM, ...headers },
    body: body === undefined ? '' : JSON.stringify(body),
  };
}

function schemasOf(rt: ResourceTypeConfig, r: JsonObject): string[] {
  const schemas = [rt.schema];
  for (const e of rt.schemaExtensions) if (findKey(r, e.schema) !== undefined) schemas.push(e.schema);
  return schemas;
}

/** The store's answers as SCIM: a resource gets `schemas` and `meta` (no version: no ETags). */
function present(rt: ResourceTypeConfig, base: string, r: JsonObject): JsonObject {
  const { id, ...rest } = r;
  return {
    schemas: schemasOf(rt, r),
    id: id as string,
    ...rest,
    meta: { resourceType: rt.name, location: `${base}${rt.endpoint}/${encodeURIComponent(String(id))}` },
  };
}

/** The resource type without its membership storage hint: members stay in the document. */
function plain(rt: ResourceTypeConfig): ResourceTypeConfig {
  return { ...rt, membersAttribute: undefined, groupsAttribute: undefined, hooks: undefined };
}

function attributeDocument(a: AttributeDefinition): JsonObject {
  const out: JsonObject = {
    name: a.name,
    type: a.type,
    multiValued: a.multiValued,
    required: a.required,
    caseExact: a.caseExact,
    mutability: a.mutability,
    returned: a.returned,
    uniqueness: a.uniqueness,
  };
  if (a.subAttributes) out.subAttributes = a.subAttributes.map(attributeDocument);
  return out;
}

/**
 * The Transport that answers SCIM from `store`. `base` is the URL the SCIM client was given (only
 * its path is compared), e.g. `sql://adapter`.
 */
export function adapterTransport(registry: SchemaRegistry, store: AdapterStore, base: string): Transport {
  const byEndpoint = new Map(store.tables.map((t) => [t.resourceType.endpoint.toLowerCase(), t]));
  const basePath = new URL(base).pathname.replace(/\/+$/, '');

  const discovery = (what: string): HttpResponse | undefined => {
    if (what === 'serviceproviderconfig')
      return answer(200, {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
        patch: { supported: true },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: MAX_PAGE_SIZE },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
        pagination: {
          cursor: false,
          index: true,
          defaultPageSize: DEFAULT_PAGE_SIZE,
          maxPageSize: MAX_PAGE_SIZE,
        },
        authenticationSchemes: [],
      });
    if (what === 'resourcetypes') {
      const Resources = store.tables.map(({ resourceType: rt }) => ({
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
        id: rt.id,
        name: rt.name,
        endpoint: rt.endpoint,
        schema: rt.schema,
        schemaExtensions: rt.schemaExtensions.map((e) => ({ schema: e.schema, required: e.required })),
      }));
      return answer(200, { schemas: [LIST_SCHEMA], totalResults: Resources.length, Resources });
    }
    if (what === 'schemas') {
      const seen = new Map<string, JsonObject>();
      for (const { resourceType: rt } of store.tables) {
        for (const { schema } of registry.schemasOf(rt)) {
          seen.set(schema.id, {
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
            id: schema.id,
            name: schema.name ?? schema.id,
            attributes: schema.attributes.map(attributeDocument),
          });
        }
      }
      const Resources = [...seen.values()];
      return answer(200, { schemas: [LIST_SCHEMA], totalResults: Resources.length, Resources });
    }
    return undefined;
  };

  const list = async (
    table: AdapterTable,
    q: { filter?: string; startIndex?: number; count?: number },
  ): Promise<HttpResponse> => {
    const rt = table.resourceType;
    const start = Math.max(1, q.startIndex ?? 1);
    const count = Math.min(Math.max(0, q.count ?? DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE);
    let resources: JsonObject[];
    let total: number;
    if (q.filter === undefined || q.filter.trim() === '') {
      ({ resources, total } = await table.page(start - 1, count));
    } else {
      const bound = bindFilter(registry, rt, parseFilter(q.filter));
      let where: Equals | undefined;
      if (bound.op === 'eq' && typeof bound.value === 'string') {
        const def = bound.attr.sub ?? bound.attr.attribute;
        const multi = bound.attr.attribute.multiValued;
        if (!multi) {
          const prefix = bound.attr.location === 'extension' ? `${bound.attr.schema}:` : '';
          const path = `${prefix}${bound.attr.attribute.name}${bound.attr.sub ? `.${bound.attr.sub.name}` : ''}`;
          where = { path, value: bound.value, caseExact: def.caseExact };
        }
      }
      const all = (await table.candidates(where)).filter((r) => matches(r, bound));
      all.sort((a, b) => (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0));
      total = all.length;
      resources = all.slice(start - 1, start - 1 + count);
    }
    return answer(200, {
      schemas: [LIST_SCHEMA],
      totalResults: total,
      startIndex: start,
      itemsPerPage: resources.length,
      Resources: resources.map((r) => present(rt, base, r)),
    });
  };

  const intParam = (v: string | null | undefined | JsonValue): number | undefined => {
    if (v === null || v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw ScimError.badRequest('invalidValue', `not an integer: ${String(v)}`);
    return n;
  };

  const handle = async (req: HttpRequest): Promise<HttpResponse> => {
    let path = req.url.pathname;
    if (basePath && path.startsWith(basePath)) path = path.slice(basePath.length);
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method.toUpperCase();
    if (parts.length === 1 && method === 'GET') {
      const d = discovery(parts[0].toLowerCase());
      if (d) return d;
    }
    const table = parts[0] === undefined ? undefined : byEndpoint.get(`/${parts[0].toLowerCase()}`);
    if (!table) return answer(404, new ScimError(404, undefined, `No endpoint ${path}`).toBody());
    const rt = table.resourceType;
    const body = (): unknown => {
      try {
        return req.body === undefined || req.body === '' ? undefined : JSON.parse(req.body);
      } catch {
        throw ScimError.badRequest('invalidSyntax', 'The request body is not JSON');
      }
    };
    const write = (input: unknown) => {
      // The store keeps no `schemas`: a resource read back from it (PATCH) gets them here.
      const given =
        isJsonObject(input) && findKey(input, 'schemas') === undefined
          ? { ...input, schemas: schemasOf(rt, input) }
          : input;
      return prepareWrite(registry, plain(rt), given, { mode: 'create' });
    };

    if (parts.length === 1) {
      if (method === 'GET') {
        const s = req.url.searchParams;
        return list(table, {
          filter: s.get('filter') ?? undefined,
          startIndex: intParam(s.get('startIndex')),
          count: intParam(s.get('count')),
        });
      }
      if (method === 'POST') {
        const created = await table.create(write(body()));
        const r = present(rt, base, created);
        return answer(201, r, { location: (r.meta as JsonObject).location as string });
      }
    } else if (parts.length === 2 && parts[1] === '.search' && method === 'POST') {
      const b = body();
      if (!isJsonObject(b)) throw ScimError.badRequest('invalidSyntax', 'The search body must be an object');
      const schemas = b[findKey(b, 'schemas') ?? 'schemas'];
      if (!Array.isArray(schemas) || !schemas.includes(SEARCH_SCHEMA))
        throw ScimError.badRequest(
          'invalidSyntax',
          `The search body must have "schemas": ["${SEARCH_SCHEMA}"]`,
        );
      const filter = b[findKey(b, 'filter') ?? 'filter'];
      return list(table, {
        filter: typeof filter === 'string' ? filter : undefined,
        startIndex: intParam(b[findKey(b, 'startIndex') ?? 'startIndex']),
        count: intParam(b[findKey(b, 'count') ?? 'count']),
      });
    } else if (parts.length === 2 && !parts[1].startsWith('.')) {
      const id = parts[1];
      const notFound = () => answer(404, ScimError.notFound(`${rt.name} ${id} not found`).toBody());
      if (method === 'GET') {
        const r = await table.get(id);
        return r ? answer(200, present(rt, base, r)) : notFound();
      }
      if (method === 'PUT') return answer(200, present(rt, base, await table.replace(id, write(body()))));
      if (method === 'PATCH') {
        const ops = parsePatchRequest(body());
        const after = await table.modify(id, (current) => {
          const { id: _id, ...doc } = current;
          const r = applyPatch(registry, plain(rt), doc, ops);
          // The PATCH engine works on the canonical form; the result is checked like a replace.
          return write(r.resource);
        });
        return after ? answer(200, present(rt, base, after)) : notFound();
      }
      if (method === 'DELETE') return (await table.delete(id)) ? answer(204) : notFound();
    } else if (parts.length === 2 && method === 'GET') {
      // /.deltaToken and other extensions: not offered (a delta pull falls back to a full one).
      return answer(404, ScimError.notFound(`No endpoint ${path}`).toBody());
    }
    return answer(405, new ScimError(405, undefined, `${method} ${path} is not supported`).toBody());
  };

  return async (req) => {
    try {
      return await handle(req);
    } catch (err) {
      if (err instanceof ScimError) return answer(err.status, err.toBody());
      if (err instanceof ScimNetworkError) throw err;
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('08') || code === '57P01'))
        throw storeUnreachable(
          req,
          err as Error & { code: string },
          code !== 'ECONNREFUSED' && code !== 'ENOTFOUND',
        );
      // Anything else is a fault of the adapter or the store: an answer, not a crash of the run.
      const detail = err instanceof Error ? err.message : String(err);
      return answer(
        500,
        new ScimError(500, undefined, `${req.method} ${req.url.pathname}: ${detail}`).toBody(),
      );
    }
  };
}

/** A network failure of the store (connect refused, connection lost): the client's retry policy applies. */
export function storeUnreachable(
  req: HttpRequest,
  err: Error & { code?: string },
  sent: boolean,
): ScimNetworkError {
  return new ScimNetworkError(
    `${req.method} ${req.url.toString()}: ${err.message}`,
    req.method,
    req.url.toString(),
    sent,
    false,
    err.code,
  );
}
