/**
 * Shared vocabulary of the conformance suite: wire constants and assertions every file repeats.
 * The suite drives the HTTP API only, exactly as a client would, so nothing here reaches into src/.
 */
import assert from 'node:assert/strict';
import type { TestApp, TestResponse } from '../helpers/app.ts';

export const BASE = '/scim/v2';
export const ORIGIN = 'http://scimd.test';

export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
export const BULK_REQ = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
export const BULK_RES = 'urn:ietf:params:scim:api:messages:2.0:BulkResponse';
export const SPC = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
export const RESOURCE_TYPE = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
export const SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';

/** Any JSON a server sends back; tests read it field by field. */
export type Json = TestResponse['body'];

export function mediaType(res: TestResponse): string | undefined {
  const ct = res.headers['content-type'];
  if (typeof ct !== 'string') return undefined;
  return ct.split(';')[0]!.trim().toLowerCase();
}

export function header(res: TestResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Stack traces or internal paths must never reach a client (RFC 7644 §7 does not want internals exposed). */
export function assertNoInternals(res: TestResponse): void {
  assert.doesNotMatch(
    res.text,
    /\n\s+at .+\(|at [\w.<>]+ \(file:|node_modules|\.ts:\d+:\d+/,
    'body leaks a stack trace',
  );
}

/** A SCIM response: the status, the media type application/scim+json, and no internals. */
export function assertScim(res: TestResponse, status: number): void {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  assert.equal(
    mediaType(res),
    'application/scim+json',
    `content-type ${String(res.headers['content-type'])}`,
  );
  assertNoInternals(res);
}

/**
 * A SCIM error (RFC 7644 §3.12): schemas [Error], status as a JSON string equal to the HTTP status,
 * scimType exactly as given (or absent when undefined is passed and absent is required).
 */
export function assertError(res: TestResponse, status: number, scimType?: string): void {
  assertScim(res, status);
  assert.deepEqual(res.body.schemas, [ERROR]);
  assert.equal(res.body.status, String(status));
  if (scimType !== undefined)
    assert.equal(res.body.scimType, scimType, `scimType; detail: ${res.body.detail}`);
  if (res.body.detail !== undefined) assert.equal(typeof res.body.detail, 'string');
}

/** An ETag is weak, W/"<n>" (the server's convention), and equals meta.version when a body is given. */
export function assertEtag(res: TestResponse): string {
  const etag = header(res, 'etag');
  assert.ok(etag, 'ETag header missing');
  assert.match(etag, /^W\/"[^"]+"$/);
  if (res.body?.meta) assert.equal(res.body.meta.version, etag, 'meta.version must equal the ETag header');
  return etag;
}

export function assertList(res: TestResponse): void {
  assertScim(res, 200);
  assert.deepEqual(res.body.schemas, [LIST]);
  assert.equal(typeof res.body.totalResults, 'number');
  if (res.body.Resources !== undefined) assert.ok(Array.isArray(res.body.Resources));
  assert.equal(res.body.resources, undefined, '"Resources" is spelled with a capital R');
}

export const enc = encodeURIComponent;

let seq = 0;
/** A name unique within the process, so files never collide with each other's data. */
export function uniq(prefix: string): string {
  seq += 1;
  return `${prefix}-${process.pid}-${seq}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function createUser(t: TestApp, body: Record<string, unknown>): Promise<Json> {
  const res = await t.request('POST', `${BASE}/Users`, { body: { schemas: [USER], ...body } });
  assertScim(res, 201);
  return res.body;
}

export async function createGroup(t: TestApp, body: Record<string, unknown>): Promise<Json> {
  const res = await t.request('POST', `${BASE}/Groups`, { body: { schemas: [GROUP], ...body } });
  assertScim(res, 201);
  return res.body;
}

export async function getOk(t: TestApp, path: string): Promise<TestResponse> {
  const res = await t.request('GET', path.startsWith('/') ? path : `${BASE}/${path}`);
  assertScim(res, 200);
  return res;
}

export function patchBody(...ops: Record<string, unknown>[]): Record<string, unknown> {
  return { schemas: [PATCH_OP], Operations: ops };
}

/** Total of a list query, via count=0 (RFC 7644 §3.4.2.4: only totalResults). */
export async function total(t: TestApp, path: string): Promise<number> {
  const sep = path.includes('?') ? '&' : '?';
  const res = await t.request('GET', `${BASE}${path}${sep}count=0`);
  assertList(res);
  return res.body.totalResults;
}

export function ids(res: TestResponse): string[] {
  return ((res.body.Resources ?? []) as { id: string }[]).map((r) => r.id);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
