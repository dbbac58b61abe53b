/**
 * RFC 7644 §3.7 Bulk: operations run one by one, each in its own transaction (Bulk is not
 * atomic), in an order that resolves `bulkId:` references to resources created earlier in the same
 * request, forward references included. A reference cycle that cannot be ordered fails with 409.
 */
import { ScimError } from '../scim/errors.ts';
import { isJsonObject, type JsonObject, type JsonValue } from '../scim/json.ts';
import type { ResourceTypeConfig } from '../scim/schema/registry.ts';
import type { RequestContext, ResourceService } from './resources.ts';

export const BULK_REQUEST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
export const BULK_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:BulkResponse';

interface BulkOperation {
  index: number;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  bulkId?: string;
  version?: string;
  path: string;
  data?: JsonValue;
  /** bulkIds this operation refers to (in path or data). */
  refs: Set<string>;
}

export interface BulkOperationResult {
  method: string;
  bulkId?: string;
  version?: string;
  location?: string;
  status: string;
  response?: JsonValue;
}

export interface BulkResponse {
  schemas: [typeof BULK_RESPONSE_SCHEMA];
  Operations: BulkOperationResult[];
}

const BULK_REF = /^bulkId:(.+)$/;

function collectRefs(v: JsonValue | undefined, out: Set<string>): void {
  if (typeof v === 'string') {
    const m = BULK_REF.exec(v);
    if (m) out.add(m[1]);
  } else if (Array.isArray(v)) v.forEach((x) => collectRefs(x, out));
  else if (isJsonObject(v)) Object.values(v).forEach((x) => collectRefs(x, out));
}

function substitute(v: JsonValue | undefined, ids: Map<string, string>): JsonValue | undefined {
  if (typeof v === 'string') {
    const m = BULK_REF.exec(v);
    return m && ids.has(m[1]) ? ids.get(m[1])! : v;
  }
  if (Array.isArray(v)) return v.map((x) => substitute(x, ids) as JsonValue);
  if (isJsonObject(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) out[k] = substitute(x, ids) as JsonValue;
    return out;
  }
  return v;
}

function findKeyInsensitive(o: JsonObject, name: string): JsonValue | undefined {
  const k = Object.keys(o).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : o[k];
}

/** Validates the BulkRequest message and returns its operations (limits are checked by the caller). */
export function parseBulkRequest(
  body: unknown,
  maxOperations: number,
): { ops: BulkOperation[]; failOnErrors?: number } {
  if (!isJsonObject(body))
    throw ScimError.badRequest('invalidSyntax', 'The request body must be a JSON object');
  const schemas = body.schemas;
  if (
    !Array.isArray(schemas) ||
    !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === BULK_REQUEST_SCHEMA.toLowerCase())
  ) {
    throw ScimError.badRequest('invalidSyntax', `schemas must contain "${BULK_REQUEST_SCHEMA}"`);
  }
  const rawOps = findKeyInsensitive(body, 'Operations');
  if (!Array.isArray(rawOps)) throw ScimError.badRequest('invalidSyntax', '"Operations" must be an array');
  if (rawOps.length > maxOperations) {
    throw new ScimError(
      413,
      undefined,
      `The request has ${rawOps.length} operations; bulk.maxOperations is ${maxOperations}`,
    );
  }
  const foe = findKeyInsensitive(body, 'failOnErrors');
  if (foe !== undefined && (typeof foe !== 'number' || !Number.isInteger(foe) || foe < 1)) {
    throw ScimError.badRequest('invalidValue', 'failOnErrors must be a positive integer');
  }
  const ops = rawOps.map((raw, index): BulkOperation => {
    if (!isJsonObject(raw))
      throw ScimError.badRequest('invalidSyntax', `Operations[${index}] must be an object`);
    const method = findKeyInsensitive(raw, 'method');
    const path = findKeyInsensitive(raw, 'path');
    const bulkId = findKeyInsensitive(raw, 'bulkId');
    const version = findKeyInsensitive(raw, 'version');
    const data = findKeyInsensitive(raw, 'data');
    const m = typeof method === 'string' ? method.toUpperCase() : '';
    const op: BulkOperation = {
      index,
      method: (['POST', 'PUT', 'PATCH', 'DELETE'].includes(m) ? m : 'INVALID') as BulkOperation['method'],
      path: typeof path === 'string' ? path : '',
      refs: new Set(),
    };
    if (typeof bulkId === 'string') op.bulkId = bulkId;
    if (typeof version === 'string') op.version = version;
    if (data !== undefined) op.data = data;
    collectRefs(op.data, op.refs);
    collectRefs(op.path.split('/').pop(), op.refs);
    return op;
  });
  return { ops, failOnErrors: typeof foe === 'number' ? foe : undefined };
}

/** What the caller may reach: the tenant's resource types, and a scope check per operation. */
export interface BulkAccess {
  resourceType(endpoint: string): ResourceTypeConfig | undefined;
  /** Throws a ScimError (403) when the caller may not write this type. */
  authorize(rt: ResourceTypeConfig): void;
  /** Told of unexpected (non-SCIM) errors, for the log. */
  onError?(err: unknown): void;
  /** Told of each operation's result with its zero-based index in the request (async Bulk). */
  onResult?(index: number, result: BulkOperationResult): void;
}

export async function runBulk(
  service: ResourceService,
  ctx: RequestContext,
  ops: BulkOperation[],
  failOnErrors: number | undefined,
  access: BulkAccess,
): Promise<BulkResponse> {
  const results = new Map<number, BulkOperationResult>();
  const created = new Map<string, string>(); // bulkId → id
  const failedBulkIds = new Set<string>();
  const declared = new Set(ops.filter((o) => o.method === 'POST' && o.bulkId).map((o) => o.bulkId!));
  let errors = 0;
  let pending = ops.slice();

  const record = (op: BulkOperation, r: BulkOperationResult) => {
    results.set(op.index, r);
    access.onResult?.(op.index, r);
    if (r.status.startsWith('4') || r.status.startsWith('5')) {
      errors += 1;
      if (op.method === 'POST' && op.bulkId) failedBulkIds.add(op.bulkId);
    }
  };

  // One transaction for the whole request, a savepoint per operation: a failed operation is undone
  // alone (Bulk is not atomic, RFC 7644 §3.7), and the request pays for one commit, not one per operation.
  // A caller's open transaction is joined (an async Bulk commits its completion with the operations).
  if (ctx.transaction) await runAll(ctx);
  else
    await service.inTransaction(async (transaction) => {
      const opCtx: RequestContext = { ...ctx, transaction };
      await runAll(opCtx);
    });
  return {
    schemas: [BULK_RESPONSE_SCHEMA],
    Operations: [...results.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r),
  };

  async function runAll(opCtx: RequestContext): Promise<void> {
    while (pending.length > 0 && (failOnErrors === undefined || errors < failOnErrors)) {
      // The first operation (in request order) whose references are all settled runs next.
      const next = pending.find((op) =>
        [...op.refs].every((r) => created.has(r) || failedBulkIds.has(r) || !declared.has(r)),
      );
      if (!next) {
        for (const op of pending) {
          record(
            op,
            failure(
              op,
              new ScimError(
                409,
                undefined,
                `Circular bulkId references could not be resolved (${[...op.refs].join(', ')})`,
              ),
            ),
          );
          if (failOnErrors !== undefined && errors >= failOnErrors) break;
        }
        break;
      }
      pending = pending.filter((op) => op !== next);
      record(next, await runOne(service, opCtx, access, next, created, failedBulkIds, declared));
    }
  }
}

function failure(op: BulkOperation, err: ScimError): BulkOperationResult {
  const r: BulkOperationResult = {
    method: op.method,
    status: String(err.status),
    response: err.toBody() as unknown as JsonObject,
  };
  if (op.bulkId) r.bulkId = op.bulkId;
  return r;
}

async function runOne(
  service: ResourceService,
  ctx: RequestContext,
  access: BulkAccess,
  op: BulkOperation,
  created: Map<string, string>,
  failedBulkIds: Set<string>,
  declared: Set<string>,
): Promise<BulkOperationResult> {
  try {
    for (const ref of op.refs) {
      if (failedBulkIds.has(ref))
        throw new ScimError(409, undefined, `bulkId "${ref}" refers to an operation that failed`);
      if (!declared.has(ref))
        throw ScimError.badRequest(
          'invalidValue',
          `bulkId "${ref}" is not defined by a POST in this request`,
        );
    }
    if ((op.method as string) === 'INVALID')
      throw ScimError.badRequest('invalidSyntax', 'method must be POST, PUT, PATCH or DELETE');
    const segments = op.path.split('/').filter(Boolean);
    const rt = segments.length ? access.resourceType(segments[0]) : undefined;
    if (!rt) throw ScimError.badRequest('invalidPath', `Unknown resource path "${op.path}"`);
    access.authorize(rt);
    const data = substitute(op.data, created);
    if (op.method === 'POST') {
      if (segments.length !== 1)
        throw ScimError.badRequest(
          'invalidPath',
          `POST path must be a resource endpoint such as /Users, got "${op.path}"`,
        );
      if (!op.bulkId) throw ScimError.badRequest('invalidSyntax', 'bulkId is required for POST operations');
      const res = await service.create(ctx, rt, data, { attributes: ['id'] });
      created.set(op.bulkId, res.resource.id as string);
      return {
        method: op.method,
        bulkId: op.bulkId,
        version: res.etag,
        location: res.location,
        status: '201',
      };
    }
    if (segments.length !== 2)
      throw ScimError.badRequest('invalidPath', `${op.method} path must name a resource such as /Users/{id}`);
    const idRef = BULK_REF.exec(segments[1]);
    const id = idRef ? created.get(idRef[1])! : decodeURIComponent(segments[1]);
    const base: BulkOperationResult = { method: op.method, status: '200' };
    if (op.bulkId) base.bulkId = op.bulkId;
    if (op.method === 'DELETE') {
      await service.delete(ctx, rt, id, op.version);
      return { ...base, status: '204' };
    }
    const res =
      op.method === 'PUT'
        ? await service.replace(ctx, rt, id, data, op.version, { attributes: ['id'] })
        : await service.patch(ctx, rt, id, data, op.version, { attributes: ['id'] });
    return { ...base, version: res.etag, location: res.location };
  } catch (err) {
    if (err instanceof ScimError) return failure(op, err);
    // One broken operation must not lose the others' results (Bulk is not atomic).
    access.onError?.(err);
    return failure(
      op,
      new ScimError(500, undefined, 'Internal server error; this operation was not applied'),
    );
  }
}
