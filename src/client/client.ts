/**
 * ScimClient: a SCIM 2.0 client for any server (RFC 7643/7644, RFC 9865 cursors). It reads the
 * server's discovery documents once and uses only what they advertise; see docs/client.md.
 */
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../scim/json.ts';
import { createAuth, type AuthConfig, type AuthProvider } from './auth.ts';
import {
  expandPathless,
  splitMemberChanges,
  substituteBulkIds,
  valueArrayRemoves,
  type CompatOptions,
  type Feature,
} from './compat.ts';
import { planBulk } from './bulk-plan.ts';
import { diffResources } from './diff.ts';
import { localPatcher } from './local-patch.ts';
import {
  FALLBACK_RESOURCE_TYPES,
  mutabilityMap,
  parseCapabilities,
  parseResourceType,
  parseSchema,
  type Capabilities,
  type Discovery,
  type ResourceTypeInfo,
  type SchemaInfo,
} from './discovery.ts';
import {
  ScimClientError,
  ScimNetworkError,
  ScimPatchApplyError,
  ScimUnsupportedError,
  type ResponseHeaders,
} from './errors.ts';
import { backoffDelay, defaultSleep, parseRetryAfter, RETRY_STATUSES, type RetryOptions } from './retry.ts';
import { NodeTransport, type HttpResponse, type TlsOptions, type Transport } from './transport.ts';
import {
  BULK_REQUEST_SCHEMA,
  ERROR_SCHEMA,
  PATCH_OP_SCHEMA,
  SCIM_MEDIA_TYPE,
  SEARCH_REQUEST_SCHEMA,
  type BulkOperation,
  type BulkOperationResult,
  type ListResponse,
  type PatchOperation,
  type QueryOptions,
  type ScimResource,
} from './types.ts';

export interface ScimClientOptions {
  /** The SCIM base URL, e.g. `https://idp.example.com/scim/v2` (endpoints are appended to it). */
  baseUrl: string;
  auth?: AuthConfig;
  /** Client certificate, key and CA for mutual TLS (https base URLs). */
  tls?: TlsOptions;
  /** Per request (each attempt), in ms. Default 30,000. */
  timeoutMs?: number;
  userAgent?: string;
  /** Sent with every request (after the client's own, so they can override Accept, say). */
  headers?: Record<string, string>;
  retry?: RetryOptions;
  compat?: CompatOptions;
  /** Replaces the node:http(s) transport (tests, proxies). `tls` is then ignored. */
  transport?: Transport;
  now?: () => number;
}

export interface CallOptions {
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface WriteOptions extends CallOptions {
  /** ETag for If-Match; default the resource's `meta.version` when known. `false` sends none. */
  ifMatch?: string | false;
}

export interface ReadOptions extends CallOptions {
  attributes?: string[];
  excludedAttributes?: string[];
}

export interface IterateOptions extends Omit<QueryOptions, 'startIndex' | 'cursor' | 'count'> {
  /** Resources per page; default the server's defaultPageSize (else 100), capped by maxPageSize. */
  pageSize?: number;
  /** `auto` (default): cursor when the server advertises RFC 9865 cursors, else index. */
  paging?: 'auto' | 'cursor' | 'index';
  /** `get` (default) or `search` (POST /.search, keeps filters with personal data out of URLs). */
  via?: 'get' | 'search';
  /** Stop after this many pages (e.g. a bounded sample). */
  maxPages?: number;
}

export interface UpdateResult<T> {
  /** False when the two states did not differ in anything the client may write: no request sent. */
  changed: boolean;
  /** How the change went out. */
  method?: 'PATCH' | 'PUT';
  /** Number of HTTP requests sent. */
  requests: number;
  /** The server's representation after the change, when it returned one (PATCH may answer 204). */
  resource?: T;
  /** The new ETag when the server sent one. */
  version?: string;
}

export interface RawResponse {
  status: number;
  headers: ResponseHeaders;
  body: JsonValue | undefined;
}

export interface RequestOptions extends CallOptions {
  query?: Record<string, string | number | undefined>;
  body?: JsonValue;
  /** Safe to repeat after a network failure (GET, PUT, DELETE, POST /.search). */
  idempotent: boolean;
  ifMatch?: string;
}

const DEFAULT_PAGE_SIZE = 100;
/** GET + PUT rounds of a PATCH emulated on a server without PATCH when others keep writing (412). */
export const PATCH_FALLBACK_ATTEMPTS = 3;
/** RFC 7644 gives no default for missing bulk limits; these keep a request modest. */
const DEFAULT_BULK_MAX_OPERATIONS = 100;
const DEFAULT_BULK_MAX_PAYLOAD = 1_048_576;

function encodeQuery(q: Record<string, string | number | undefined>): string {
  const parts = Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

function versionOf(resource: JsonValue | undefined): string | undefined {
  if (!isJsonObject(resource)) return undefined;
  const meta = resource[findKey(resource, 'meta') ?? 'meta'];
  if (!isJsonObject(meta)) return undefined;
  const v = meta[findKey(meta, 'version') ?? 'version'];
  return typeof v === 'string' ? v : undefined;
}

/** `meta` is server-owned (RFC 7643 §3.1); some servers refuse it in request bodies. */
function withoutMeta(resource: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(resource)) if (k.toLowerCase() !== 'meta') out[k] = v;
  return out;
}

export class ScimClient {
  readonly baseUrl: string;
  private readonly transport: Transport;
  private readonly ownTransport: NodeTransport | undefined;
  private readonly auth: AuthProvider;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly retry: RetryOptions;
  readonly compat: CompatOptions;
  private readonly now: () => number;
  private discovery: Promise<Discovery> | undefined;

  constructor(private readonly options: ScimClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    if (options.transport) this.transport = options.transport;
    else {
      this.ownTransport = new NodeTransport(options.tls);
      this.transport = this.ownTransport.send;
    }
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'scimd-client/0.1';
    this.retry = options.retry ?? {};
    this.compat = options.compat ?? {};
    this.now = options.now ?? Date.now;
    this.auth = createAuth(
      options.auth,
      this.transport,
      this.timeoutMs,
      this.userAgent,
      this.now,
      this.retry,
    );
  }

  /** Closes pooled connections. */
  close(): void {
    this.ownTransport?.close();
  }

  // ---------------------------------------------------------------- transport with retries

  /** One SCIM call with retries and auth; SCIM errors (status >= 400) are thrown. */
  async request(method: string, path: string, opts: RequestOptions): Promise<RawResponse> {
    const url = new URL(`${this.baseUrl}${path}${encodeQuery(opts.query ?? {})}`);
    const maxAttempts = Math.max(1, this.retry.maxAttempts ?? 4);
    const sleep = this.retry.sleep ?? defaultSleep;
    let authRetried = false;
    let res: HttpResponse | undefined;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = {
        accept: `${SCIM_MEDIA_TYPE}, application/json`,
        'user-agent': this.userAgent,
      };
      const authorization = await this.auth.header(opts.timeoutMs ?? this.timeoutMs);
      if (authorization) headers.authorization = authorization;
      if (opts.body !== undefined) headers['content-type'] = this.compat.contentType ?? SCIM_MEDIA_TYPE;
      if (opts.ifMatch !== undefined) headers['if-match'] = opts.ifMatch;
      Object.assign(headers, this.options.headers, opts.headers);
      try {
        res = await this.transport({
          method,
          url,
          headers,
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          timeoutMs: opts.timeoutMs ?? this.timeoutMs,
        });
      } catch (e) {
        const retryable =
          e instanceof ScimNetworkError &&
          attempt < maxAttempts &&
          (opts.idempotent || !e.sent || this.retry.retryNonIdempotent === true);
        if (!retryable) throw e;
        await sleep(backoffDelay(attempt, this.retry));
        continue;
      }
      // A refused OAuth token may have been revoked before its expiry: one fresh token, once.
      if (res.status === 401 && !authRetried && this.auth.invalidate()) {
        authRetried = true;
        attempt--;
        continue;
      }
      if (RETRY_STATUSES.has(res.status) && attempt < maxAttempts) {
        const after = parseRetryAfter(res.headers['retry-after'], this.now());
        const delay = after ?? backoffDelay(attempt, this.retry);
        // A server asking for a longer pause than the client will wait: give its answer to the caller.
        if (delay <= (this.retry.maxDelayMs ?? 30_000)) {
          await sleep(delay);
          continue;
        }
      }
      break;
    }
    let body: JsonValue | undefined;
    if (res.body.length > 0) {
      try {
        body = JSON.parse(res.body) as JsonValue;
      } catch {
        body = res.body;
      }
    }
    if (res.status >= 400) {
      const field = (name: string) => {
        if (!isJsonObject(body)) return undefined;
        const v = body[findKey(body, name) ?? name];
        return typeof v === 'string' ? v : undefined;
      };
      throw new ScimClientError(
        res.status,
        field('scimType'),
        field('detail') ?? (typeof body === 'string' ? body : undefined),
        res.headers,
        body,
        method,
        url.toString(),
      );
    }
    return { status: res.status, headers: res.headers, body };
  }

  // ---------------------------------------------------------------- discovery

  /** The server's discovery documents, fetched once; `refresh` fetches them again. */
  discover(opts: { refresh?: boolean } = {}): Promise<Discovery> {
    if (opts.refresh || !this.discovery) {
      const p = this.fetchDiscovery();
      // A failed discovery is not cached: the next call tries again.
      p.catch(() => {
        if (this.discovery === p) this.discovery = undefined;
      });
      this.discovery = p;
    }
    return this.discovery;
  }

  private async fetchDiscovery(): Promise<Discovery> {
    const spc = await this.request('GET', '/ServiceProviderConfig', { idempotent: true });
    const spcDoc = isJsonObject(spc.body) ? spc.body : {};
    const list = async (path: string): Promise<JsonValue[] | undefined> => {
      try {
        const res = await this.request('GET', path, { idempotent: true });
        const b = res.body;
        if (Array.isArray(b)) return b; // some servers answer a bare array
        const r = isJsonObject(b) ? b[findKey(b, 'Resources') ?? 'Resources'] : undefined;
        return Array.isArray(r) ? r : [];
      } catch (e) {
        // Optional documents: a server without them is still usable with RFC defaults.
        if (e instanceof ScimClientError && e.status >= 400 && e.status < 500) return undefined;
        throw e;
      }
    };
    const [rts, schemas] = await Promise.all([list('/ResourceTypes'), list('/Schemas')]);
    const resourceTypes = rts
      ? rts.map(parseResourceType).filter((r): r is ResourceTypeInfo => !!r)
      : FALLBACK_RESOURCE_TYPES;
    const schemaMap = new Map<string, SchemaInfo>();
    for (const s of (schemas ?? []).map(parseSchema)) if (s) schemaMap.set(s.id.toLowerCase(), s);
    return {
      serviceProviderConfig: spcDoc,
      capabilities: parseCapabilities(spcDoc),
      resourceTypes,
      schemas: schemaMap,
    };
  }

  /** What the client will use: the advertised capabilities minus `compat.disable`. */
  async capabilities(): Promise<Capabilities> {
    const caps = structuredClone((await this.discover()).capabilities);
    const off = new Set<Feature>(this.compat.disable ?? []);
    if (off.has('patch')) caps.patch = false;
    if (off.has('bulk')) caps.bulk.supported = false;
    if (off.has('filter')) caps.filter.supported = false;
    if (off.has('sort')) caps.sort = false;
    if (off.has('etag')) caps.etag = false;
    if (off.has('cursor')) caps.pagination.cursor = false;
    return caps;
  }

  /** Operations on one resource type, by name, id or endpoint (`User`, `/Users`). */
  resources<T extends ScimResource = ScimResource>(type: string): ResourceClient<T> {
    return new ResourceClient<T>(this, type);
  }

  /** Resolves a resource type from discovery. */
  async resourceType(type: string): Promise<ResourceTypeInfo> {
    const d = await this.discover();
    const t = type.toLowerCase();
    const rt = d.resourceTypes.find(
      (r) => r.name.toLowerCase() === t || r.id.toLowerCase() === t || r.endpoint.toLowerCase() === t,
    );
    if (!rt) throw new ScimUnsupportedError('resourceType', `The server has no resource type "${type}"`);
    return rt;
  }

  // ---------------------------------------------------------------- bulk

  /**
   * Runs operations through /Bulk (RFC 7644 §3.7), split into requests within the server's
   * maxOperations and maxPayloadSize, or one by one when the server has no Bulk. A POST declaring a
   * bulkId is sent before the operations referring to it (bulk-plan.ts); a `bulkId:` reference to a
   * resource an earlier request created is replaced by its id, one to a creation that failed (or to
   * no POST of `ops`) fails locally and is not sent. Results come back in the order of `ops`
   * (operations not run after `failOnErrors` was reached are left out); `failOnErrors` counts errors
   * across all the requests, local failures included.
   */
  async bulk(ops: BulkOperation[], opts: { failOnErrors?: number } = {}): Promise<BulkOperationResult[]> {
    const caps = await this.capabilities();
    const plan = planBulk(ops);
    const ids = new Map<string, string>();
    /** bulkId → why its creation gave no id. */
    const failed = new Map<string, string>();
    const results = new Map<number, BulkOperationResult>();
    let errors = 0;
    const stop = () => opts.failOnErrors !== undefined && errors >= opts.failOnErrors;
    const note = (i: number, r: BulkOperationResult) => {
      results.set(i, r);
      const bulkId = ops[i].method === 'POST' ? ops[i].bulkId : undefined;
      if (Number(r.status) >= 400 || !/^\d+$/.test(r.status)) {
        errors++;
        if (bulkId !== undefined) failed.set(bulkId, `it failed with ${r.status || 'no status'}`);
      } else if (bulkId !== undefined) {
        const id = r.location
          ? decodeURIComponent(r.location.replace(/\/+$/, '').split('/').pop() ?? '')
          : '';
        if (id) ids.set(bulkId, id);
        else failed.set(bulkId, `its result (${r.status}) has no location`);
      }
    };
    const localFailure = (i: number, status: number, scimType: string | undefined, detail: string) => {
      const r: BulkOperationResult = { method: ops[i].method, status: String(status) };
      if (ops[i].bulkId !== undefined) r.bulkId = ops[i].bulkId;
      r.response = errorBody(status, scimType, detail);
      note(i, r);
    };
    const substitute = (op: BulkOperation): BulkOperation => {
      const out: BulkOperation = {
        ...op,
        path: op.path
          .split('/')
          .map((seg) => (seg.startsWith('bulkId:') ? encodeURIComponent(ids.get(seg.slice(7)) ?? seg) : seg))
          .join('/'),
      };
      if (op.data) out.data = substituteBulkIds(op.data, ids);
      return out;
    };
    /**
     * Operation i with the references it can have resolved, or a local failure when one cannot be:
     * `together` are the operations going in the same request (whose bulkIds the server resolves).
     */
    const prepare = (i: number, together: Set<number>): BulkOperation | undefined => {
      for (const ref of plan.refs[i]) {
        if (ids.has(ref)) continue;
        const creator = plan.creators.get(ref);
        const why = failed.get(ref);
        if (creator === undefined) {
          localFailure(
            i,
            400,
            'invalidValue',
            `bulkId "${ref}" is not defined by a POST in this request; not sent`,
          );
        } else if (why !== undefined) {
          localFailure(
            i,
            409,
            undefined,
            `bulkId "${ref}" refers to an operation that failed (${ops[creator].method} ${ops[creator].path}: ${why}); not sent`,
          );
        } else if (together.has(creator)) {
          continue;
        } else {
          localFailure(
            i,
            409,
            undefined,
            `Circular bulkId references could not be resolved (${ref} is created by operation ${creator}, not sent before or with this one); not sent`,
          );
        }
        return undefined;
      }
      return substitute(ops[i]);
    };

    if (!caps.bulk.supported) {
      for (const group of plan.groups) {
        for (const i of group) {
          if (stop()) return ordered(results);
          const op = prepare(i, new Set());
          if (op) note(i, await this.singleOperation(op));
        }
      }
      return ordered(results);
    }
    const maxOps = caps.bulk.maxOperations ?? DEFAULT_BULK_MAX_OPERATIONS;
    const maxBytes = caps.bulk.maxPayloadSize ?? DEFAULT_BULK_MAX_PAYLOAD;
    const envelope = (chunk: BulkOperation[]): JsonObject => {
      const body: JsonObject = {
        schemas: [BULK_REQUEST_SCHEMA],
        Operations: chunk as unknown as JsonValue[],
      };
      if (opts.failOnErrors !== undefined) body.failOnErrors = Math.max(1, opts.failOnErrors - errors);
      return body;
    };
    const size = (chunk: BulkOperation[]) => Buffer.byteLength(JSON.stringify(envelope(chunk)));
    // Operations still to send, in plan order, each with the group it belongs to.
    const queue = plan.groups.flatMap((g) => g.map((i) => ({ i, group: g })));
    let q = 0;
    while (q < queue.length && !stop()) {
      // Requests are built one at a time so that references to earlier ones can be resolved.
      const chunk: BulkOperation[] = [];
      const members: number[] = [];
      const inChunk = new Set<number>();
      while (q < queue.length && chunk.length < maxOps && !stop()) {
        const { i, group } = queue[q];
        // A group (a reference cycle) starts a fresh request when it does not fit in this one.
        if (group.length > 1 && group[0] === i && chunk.length > 0 && group.length > maxOps - chunk.length)
          break;
        // The group goes whole into the request when it fits: the server resolves its references.
        const together = new Set(inChunk);
        if (group.length > 1 && group.length <= maxOps - chunk.length)
          for (const j of group) if (!results.has(j)) together.add(j);
        together.add(i);
        const next = prepare(i, together);
        if (!next) {
          q++;
          continue;
        }
        if (size([...chunk, next]) > maxBytes) {
          if (chunk.length === 0) {
            throw new ScimUnsupportedError(
              'bulk',
              `Bulk operation ${i} alone exceeds the server's bulk.maxPayloadSize (${maxBytes} bytes)`,
            );
          }
          break;
        }
        chunk.push(next);
        members.push(i);
        inChunk.add(i);
        q++;
      }
      if (chunk.length === 0) break;
      const res = await this.request('POST', '/Bulk', { body: envelope(chunk), idempotent: false });
      const b = res.body;
      const list = isJsonObject(b) ? b[findKey(b, 'Operations') ?? 'Operations'] : undefined;
      const unmatched = [...members];
      for (const r of Array.isArray(list) ? list : []) {
        if (!isJsonObject(r)) continue;
        const s = (k: string) => {
          const v = r[findKey(r, k) ?? k];
          return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
        };
        const out: BulkOperationResult = { method: s('method') ?? '', status: s('status') ?? '' };
        for (const k of ['bulkId', 'version', 'location'] as const) {
          const v = s(k);
          if (v !== undefined) out[k] = v;
        }
        const response = r[findKey(r, 'response') ?? 'response'];
        if (response !== undefined) out.response = response;
        // A result names its operation by bulkId (POST), else it is the next one in request order.
        let at = out.bulkId === undefined ? -1 : unmatched.findIndex((i) => ops[i].bulkId === out.bulkId);
        if (at < 0) at = unmatched.findIndex((i) => ops[i].method.toUpperCase() === out.method.toUpperCase());
        if (at < 0) continue;
        note(unmatched[at], out);
        unmatched.splice(at, 1);
      }
      // Operations the server did not report on (it stopped at failOnErrors) did not run.
      for (const i of unmatched) {
        const bulkId = ops[i].method === 'POST' ? ops[i].bulkId : undefined;
        if (bulkId !== undefined) failed.set(bulkId, 'the server did not run it');
      }
    }
    return ordered(results);
  }

  /** One bulk operation as a plain request (servers without Bulk), reported like a Bulk result. */
  private async singleOperation(op: BulkOperation): Promise<BulkOperationResult> {
    const base: BulkOperationResult = { method: op.method, status: '' };
    if (op.bulkId) base.bulkId = op.bulkId;
    const caps = await this.capabilities();
    const ifMatch = caps.etag && op.version ? op.version : undefined;
    if (op.method === 'PATCH' && !caps.patch) return this.singlePatchByReplace(op, base);
    try {
      const body =
        op.method === 'PATCH' ? { schemas: [PATCH_OP_SCHEMA], ...op.data } : op.data && withoutMeta(op.data);
      const res = await this.request(op.method, op.path, {
        body,
        ifMatch,
        idempotent: op.method === 'PUT' || op.method === 'DELETE',
      });
      base.status = String(res.status);
      const location = res.headers.location ?? (isJsonObject(res.body) ? locationOf(res.body) : undefined);
      if (location) base.location = location;
      else if (op.method !== 'POST') base.location = `${this.baseUrl}${op.path}`;
      const version = res.headers.etag ?? versionOf(res.body);
      if (version) base.version = version;
      return base;
    } catch (e) {
      if (!(e instanceof ScimClientError)) throw e;
      base.status = String(e.status);
      if (e.body !== undefined) base.response = e.body;
      return base;
    }
  }
  /** A PATCH bulk operation on a server with neither Bulk nor PATCH: GET, apply locally, PUT. */
  private async singlePatchByReplace(
    op: BulkOperation,
    base: BulkOperationResult,
  ): Promise<BulkOperationResult> {
    const m = /^(\/[^/]+)\/([^/]+)$/.exec(op.path);
    const d = await this.discover();
    const rt = m ? d.resourceTypes.find((r) => r.endpoint.toLowerCase() === m[1].toLowerCase()) : undefined;
    if (!m || !rt) {
      throw new ScimUnsupportedError(
        'patch',
        `Bulk PATCH ${op.path}: not a resource of a known resource type`,
      );
    }
    const data = op.data ?? {};
    const list = data[findKey(data, 'Operations') ?? 'Operations'];
    const ops = (Array.isArray(list) ? list : []) as unknown as PatchOperation[];
    try {
      const r = await this.resources(rt.name).patchByReplace(decodeURIComponent(m[2]), ops, {
        ifMatch: op.version,
      });
      base.status = r.resource ? '200' : '204';
      base.location = `${this.baseUrl}${op.path}`;
      if (r.version) base.version = r.version;
      return base;
    } catch (e) {
      if (e instanceof ScimPatchApplyError) {
        base.status = String(e.status);
        base.response = errorBody(e.status, e.scimType, e.detail);
        return base;
      }
      if (!(e instanceof ScimClientError)) throw e;
      base.status = String(e.status);
      if (e.body !== undefined) base.response = e.body;
      return base;
    }
  }
}

/** A SCIM Error message (RFC 7644 §3.12) for results the client reports itself. */
function errorBody(status: number, scimType: string | undefined, detail: string): JsonObject {
  const out: JsonObject = { schemas: [ERROR_SCHEMA], status: String(status) };
  if (scimType) out.scimType = scimType;
  out.detail = detail;
  return out;
}

/** Results by operation index, in the order of the operations. */
function ordered(results: Map<number, BulkOperationResult>): BulkOperationResult[] {
  return [...results.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}

function locationOf(resource: JsonObject): string | undefined {
  const meta = resource[findKey(resource, 'meta') ?? 'meta'];
  if (!isJsonObject(meta)) return undefined;
  const l = meta[findKey(meta, 'location') ?? 'location'];
  return typeof l === 'string' ? l : undefined;
}

/** CRUD, query and paging on one resource type. */
export class ResourceClient<T extends ScimResource = ScimResource> {
  constructor(
    private readonly client: ScimClient,
    readonly type: string,
  ) {}

  private async endpoint(): Promise<string> {
    return (await this.client.resourceType(this.type)).endpoint;
  }
  private async itemPath(id: string): Promise<string> {
    return `${await this.endpoint()}/${encodeURIComponent(id)}`;
  }
  /** If-Match only when the server does ETags and a version is known (RFC 7644 §3.14). */
  private async ifMatch(
    opt: string | false | undefined,
    known: string | undefined,
  ): Promise<string | undefined> {
    if (opt === false) return undefined;
    const v = opt ?? known;
    if (v === undefined) return undefined;
    return (await this.client.capabilities()).etag ? v : undefined;
  }
  private static projection(o: ReadOptions | QueryOptions): Record<string, string | undefined> {
    return {
      attributes: o.attributes?.length ? o.attributes.join(',') : undefined,
      excludedAttributes: o.excludedAttributes?.length ? o.excludedAttributes.join(',') : undefined,
    };
  }
  private static resource<T>(res: RawResponse): T | undefined {
    return isJsonObject(res.body) ? (res.body as unknown as T) : undefined;
  }

  async create(resource: Omit<T, 'id' | 'meta'> | T, opts: CallOptions = {}): Promise<T> {
    const res = await this.client.request('POST', await this.endpoint(), {
      ...opts,
      body: withoutMeta(resource as unknown as JsonObject),
      idempotent: false,
    });
    const created = ResourceClient.resource<T>(res);
    if (created) return created;
    // RFC 7644 §3.3 says SHOULD return the resource; a server answering 201 without a body still
    // names it in Location, so it is read from there.
    const location = res.headers.location;
    const id = location ? decodeURIComponent(location.replace(/\/+$/, '').split('/').pop() ?? '') : '';
    if (!id)
      throw new TypeError(
        `POST ${await this.endpoint()} answered ${res.status} without a resource or Location`,
      );
    return this.get(id, opts);
  }

  async get(id: string, opts: ReadOptions = {}): Promise<T> {
    const res = await this.client.request('GET', await this.itemPath(id), {
      ...opts,
      query: ResourceClient.projection(opts),
      idempotent: true,
    });
    return ResourceClient.resource<T>(res) as T;
  }

  /**
   * Conditional GET (RFC 7644 §3.14): undefined when the resource still has `version` (304 Not
   * Modified), else its current representation. Without ETag support it is a plain GET.
   */
  async getIfChanged(id: string, version: string, opts: ReadOptions = {}): Promise<T | undefined> {
    const etag = (await this.client.capabilities()).etag;
    const res = await this.client.request('GET', await this.itemPath(id), {
      ...opts,
      headers: { ...(etag ? { 'if-none-match': version } : {}), ...opts.headers },
      query: ResourceClient.projection(opts),
      idempotent: true,
    });
    return res.status === 304 ? undefined : ResourceClient.resource<T>(res);
  }

  async replace(id: string, resource: T | Omit<T, 'id' | 'meta'>, opts: WriteOptions = {}): Promise<T> {
    const body = withoutMeta(resource as unknown as JsonObject);
    const res = await this.client.request('PUT', await this.itemPath(id), {
      ...opts,
      body,
      ifMatch: await this.ifMatch(opts.ifMatch, versionOf(resource as unknown as JsonObject)),
      idempotent: true,
    });
    return ResourceClient.resource<T>(res) as T;
  }

  /**
   * Sends PATCH operations (split per the compatibility switches). Returns the resource when the
   * server answered with it (it may answer 204), undefined otherwise. On a server without PATCH the
   * resource is read, the operations are applied locally by scimd's PATCH engine and the result is
   * sent with PUT, conditional on the version read (see `patchByReplace`).
   */
  async patch(id: string, ops: PatchOperation[], opts: WriteOptions = {}): Promise<T | undefined> {
    if (!(await this.client.capabilities()).patch) return (await this.patchByReplace(id, ops, opts)).resource;
    return (await this.sendPatch(id, ops, opts)).resource;
  }

  /**
   * PATCH emulated with GET + PUT. The PUT carries `If-Match`: the caller's `ifMatch` when given
   * (a 412 then goes to the caller), else the version the GET returned; a 412 on the latter means
   * someone wrote in between, so the resource is read and patched again, at most
   * PATCH_FALLBACK_ATTEMPTS times. Without ETag support there is no precondition (a write between
   * the GET and the PUT is overwritten). Operations the engine refuses throw ScimPatchApplyError
   * and nothing is written; no PUT is sent when they change nothing.
   */
  async patchByReplace(
    id: string,
    ops: PatchOperation[],
    opts: WriteOptions = {},
  ): Promise<{ resource?: T; version?: string; requests: number }> {
    const patcher = localPatcher(await this.client.discover(), await this.client.resourceType(this.type));
    const etag = (await this.client.capabilities()).etag;
    const path = await this.itemPath(id);
    const given = typeof opts.ifMatch === 'string' ? opts.ifMatch : undefined;
    const call = { timeoutMs: opts.timeoutMs, headers: opts.headers };
    let requests = 0;
    for (let attempt = 1; ; attempt++) {
      const got = await this.client.request('GET', path, { ...call, idempotent: true });
      requests++;
      const current = isJsonObject(got.body) ? got.body : undefined;
      if (!current) throw new TypeError(`GET ${path} answered ${got.status} without a resource`);
      const read = got.headers.etag ?? versionOf(current);
      const next = patcher.apply(current, ops);
      if (!next.changed) return { resource: current as unknown as T, version: read, requests };
      const ifMatch = etag ? (given ?? read) : undefined;
      try {
        const res = await this.client.request('PUT', path, {
          ...call,
          body: patcher.putBody(next.resource),
          ifMatch,
          idempotent: true,
        });
        requests++;
        return {
          resource: ResourceClient.resource<T>(res),
          version: res.headers.etag ?? versionOf(res.body),
          requests,
        };
      } catch (e) {
        const raced = e instanceof ScimClientError && e.status === 412 && given === undefined;
        if (!raced || ifMatch === undefined || attempt >= PATCH_FALLBACK_ATTEMPTS) throw e;
      }
    }
  }

  private async sendPatch(
    id: string,
    ops: PatchOperation[],
    opts: WriteOptions,
  ): Promise<{ resource?: T; version?: string; requests: number }> {
    if (!(await this.client.capabilities()).patch) {
      throw new ScimUnsupportedError('patch', 'The server does not support PATCH (ServiceProviderConfig)');
    }
    const c = this.client.compat;
    let prepared = c.patchRequiresPath ? expandPathless(ops) : ops;
    if (c.multiValueRemove === 'valueArray') prepared = valueArrayRemoves(prepared);
    const requests = c.maxMembersPerPatch
      ? splitMemberChanges(prepared, c.maxMembersPerPatch, c.membersAttribute)
      : [prepared];
    const path = await this.itemPath(id);
    let version = await this.ifMatch(opts.ifMatch, undefined);
    let out: { resource?: T; version?: string; requests: number } = { requests: 0 };
    for (const Operations of requests) {
      const res = await this.client.request('PATCH', path, {
        ...opts,
        body: { schemas: [PATCH_OP_SCHEMA], Operations: Operations as unknown as JsonValue[] },
        ifMatch: version,
        idempotent: false,
      });
      const next = res.headers.etag ?? versionOf(res.body);
      // The next part of a split change is conditional on the version the previous part made.
      if (version !== undefined) version = next;
      out = { resource: ResourceClient.resource<T>(res), version: next, requests: out.requests + 1 };
    }
    return out;
  }

  /**
   * Brings the remote resource from `before` (its current state, as last read) to `after`:
   * PATCH with the minimal operations when the server supports it, else PUT of `after`. Nothing is
   * sent when they do not differ. `before.meta.version` is the If-Match precondition.
   */
  async update(
    before: T,
    after: T | Omit<T, 'id' | 'meta'>,
    opts: WriteOptions = {},
  ): Promise<UpdateResult<T>> {
    const id = before.id;
    if (!id) throw new TypeError('update: the current state has no id');
    const rt = await this.client.resourceType(this.type);
    const d = await this.client.discover();
    const mutability = d.schemas.size ? mutabilityMap(rt, d.schemas) : undefined;
    const ops = diffResources(before as unknown as JsonObject, after as unknown as JsonObject, {
      mutability,
    });
    if (ops.length === 0) return { changed: false, requests: 0 };
    const version = opts.ifMatch === undefined ? versionOf(before as unknown as JsonObject) : opts.ifMatch;
    if ((await this.client.capabilities()).patch) {
      const r = await this.sendPatch(id, ops, { ...opts, ifMatch: version ?? false });
      return { changed: true, method: 'PATCH', ...r };
    }
    const resource = await this.replace(id, { ...(after as JsonObject), id } as unknown as T, {
      ...opts,
      ifMatch: version ?? false,
    });
    return {
      changed: true,
      method: 'PUT',
      requests: 1,
      resource,
      version: versionOf(resource as unknown as JsonObject),
    };
  }

  async delete(id: string, opts: WriteOptions = {}): Promise<void> {
    await this.client.request('DELETE', await this.itemPath(id), {
      ...opts,
      ifMatch: await this.ifMatch(opts.ifMatch, undefined),
      idempotent: true,
    });
  }

  /** Refuses query features the server does not advertise rather than have them ignored. */
  private async checkQuery(q: QueryOptions): Promise<void> {
    const caps = await this.client.capabilities();
    if (q.filter !== undefined && !caps.filter.supported) {
      throw new ScimUnsupportedError(
        'filter',
        'The server does not support filtering (ServiceProviderConfig)',
      );
    }
    if (q.sortBy !== undefined && !caps.sort) {
      throw new ScimUnsupportedError('sort', 'The server does not support sorting (ServiceProviderConfig)');
    }
    if (q.cursor !== undefined && !caps.pagination.cursor) {
      throw new ScimUnsupportedError('cursor', 'The server does not advertise RFC 9865 cursor paging');
    }
  }

  /** GET /{endpoint} with query parameters (RFC 7644 §3.4.2). */
  async list(q: QueryOptions = {}, opts: CallOptions = {}): Promise<ListResponse<T>> {
    await this.checkQuery(q);
    const res = await this.client.request('GET', await this.endpoint(), {
      ...opts,
      query: {
        filter: q.filter,
        sortBy: q.sortBy,
        sortOrder: q.sortOrder,
        startIndex: q.startIndex,
        count: q.count,
        cursor: q.cursor,
        ...ResourceClient.projection(q),
      },
      idempotent: true,
    });
    return asList<T>(res.body);
  }

  /** POST /{endpoint}/.search (RFC 7644 §3.4.3). */
  async search(q: QueryOptions = {}, opts: CallOptions = {}): Promise<ListResponse<T>> {
    await this.checkQuery(q);
    const body: JsonObject = { schemas: [SEARCH_REQUEST_SCHEMA] };
    for (const [k, v] of Object.entries(q)) if (v !== undefined) body[k] = v as JsonValue;
    const res = await this.client.request('POST', `${await this.endpoint()}/.search`, {
      ...opts,
      body,
      idempotent: true,
    });
    return asList<T>(res.body);
  }

  /**
   * Every page of a query: cursor paging until `nextCursor` is absent (RFC 9865), or index paging
   * until a page is empty or startIndex passes totalResults (which may change between pages).
   */
  async *pages(o: IterateOptions = {}): AsyncGenerator<ListResponse<T>> {
    const caps = await this.client.capabilities();
    const paging = o.paging ?? 'auto';
    if (paging === 'cursor' && !caps.pagination.cursor) {
      throw new ScimUnsupportedError('cursor', 'The server does not advertise RFC 9865 cursor paging');
    }
    if (paging === 'index' && !caps.pagination.index) {
      throw new ScimUnsupportedError('index', 'The server does not offer index paging');
    }
    const cursor = paging === 'cursor' || (paging === 'auto' && caps.pagination.cursor);
    const caps_ = [caps.pagination.maxPageSize, this.client.compat.maxPageSize].filter(
      (n): n is number => n !== undefined,
    );
    const size = Math.min(o.pageSize ?? caps.pagination.defaultPageSize ?? DEFAULT_PAGE_SIZE, ...caps_);
    const query: QueryOptions = {
      filter: o.filter,
      sortBy: o.sortBy,
      sortOrder: o.sortOrder,
      attributes: o.attributes,
      excludedAttributes: o.excludedAttributes,
      count: size,
    };
    const fetchPage = (q: QueryOptions) => (o.via === 'search' ? this.search(q) : this.list(q));
    let pages = 0;
    if (cursor) {
      let next = '';
      for (;;) {
        const page = await fetchPage({ ...query, cursor: next });
        yield page;
        if (++pages === o.maxPages || !page.nextCursor) return;
        // A server handing back the cursor it was given would make this loop forever.
        if (page.nextCursor === next) {
          throw new ScimUnsupportedError('cursor', `The server returned the same nextCursor twice (${next})`);
        }
        next = page.nextCursor;
      }
    }
    let start = 1;
    for (;;) {
      const page = await fetchPage({ ...query, startIndex: start });
      yield page;
      const n = page.Resources.length;
      start += n;
      if (++pages === o.maxPages || n === 0) return;
      if (page.totalResults !== undefined && start > page.totalResults) return;
    }
  }

  /** Every matching resource, page by page: `for await (const u of client.resources('User').iterate())`. */
  async *iterate(o: IterateOptions = {}): AsyncGenerator<T> {
    for await (const page of this.pages(o)) yield* page.Resources;
  }

  /**
   * Resources whose `attribute` equals `value`: a filter when the server can filter on it, else
   * (no filtering, or a `compat` switch) every resource is read and compared locally.
   */
  async findBy(attribute: string, value: string): Promise<T[]> {
    const caps = await this.client.capabilities();
    const c = this.client.compat;
    const unfilterable = new Set((c.unfilterableAttributes ?? []).map((a) => a.toLowerCase()));
    if (c.noFilterOnExternalId) unfilterable.add('externalid');
    if (caps.filter.supported && !unfilterable.has(attribute.toLowerCase())) {
      const out: T[] = [];
      for await (const r of this.iterate({ filter: `${attribute} eq ${JSON.stringify(value)}` })) out.push(r);
      return out;
    }
    const out: T[] = [];
    for await (const r of this.iterate()) {
      const k = findKey(r as unknown as JsonObject, attribute);
      if (k !== undefined && (r as unknown as JsonObject)[k] === value) out.push(r);
    }
    return out;
  }
}

function asList<T extends ScimResource>(body: JsonValue | undefined): ListResponse<T> {
  const b = isJsonObject(body) ? body : {};
  const get = (k: string) => b[findKey(b, k) ?? k];
  const num = (k: string) => {
    const v = get(k);
    return typeof v === 'number' ? v : undefined;
  };
  const str = (k: string) => {
    const v = get(k);
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const resources = get('Resources');
  const out: ListResponse<T> = {
    schemas: Array.isArray(get('schemas')) ? (get('schemas') as string[]) : [],
    Resources: (Array.isArray(resources) ? resources.filter(isJsonObject) : []) as unknown as T[],
  };
  const total = num('totalResults');
  if (total !== undefined) out.totalResults = total;
  const start = num('startIndex');
  if (start !== undefined) out.startIndex = start;
  const per = num('itemsPerPage');
  if (per !== undefined) out.itemsPerPage = per;
  const next = str('nextCursor');
  if (next !== undefined) out.nextCursor = next;
  const prev = str('previousCursor');
  if (prev !== undefined) out.previousCursor = prev;
  return out;
}
