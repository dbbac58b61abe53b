/**
 * Shared pieces of the delta query tests: following a delta across its pages, a full pull, and
 * applying delta items to a local copy the way a sync client would.
 */
import assert from 'node:assert/strict';
import type { TestApp, TestResponse } from '../helpers/app.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
export type Json = any;

export const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const DELTA_TOKEN = 'urn:ietf:params:scim:api:messages:2.0:delta:token';
export const DELTA_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:delta:request';
export const DELTA_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:delta:response';
export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCIM_JSON = 'application/scim+json; charset=utf-8';

/** RFC 3986 §2.3 unreserved characters only. */
export const UNRESERVED = /^[A-Za-z0-9\-._~]+$/;

export function ok(res: TestResponse, status = 200): void {
  assert.equal(res.status, status, res.text.slice(0, 800));
}

/** A token above every change committed so far (see settle), so exact expectations hold. */
export async function deltaToken(
  t: TestApp,
  prefix: string,
  token?: string,
  opts: { settle: boolean } = { settle: true },
): Promise<string> {
  if (opts.settle) await settle(t);
  const res = await t.request('GET', `${prefix}/.deltaToken`, { token });
  ok(res);
  assert.deepEqual(res.body.schemas, [DELTA_TOKEN]);
  return res.body.value as string;
}

export interface Pulled {
  pages: Json[];
  items: Json[];
  next: string;
}

/**
 * Waits until every committed change is below the log's current position. The position is the
 * oldest running transaction of the whole PostgreSQL cluster, so other test files' transactions
 * (in their own databases) can hold it back for a moment; a delta taken then would rightly leave
 * the newest changes to the next window, which exact assertions cannot allow for.
 */
export async function settle(t: TestApp): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const res = await t.app.db.query<{ done: boolean | null }>(
      'SELECT (SELECT max(txid) FROM changes) < pg_snapshot_xmin(pg_current_snapshot()) AS done',
    );
    if (res.rows[0].done !== false) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the change log did not settle within 10 s');
}

/** Follows a delta over its pages (cursor after cursor) until nextDeltaToken. */
export async function pullDelta(
  t: TestApp,
  prefix: string,
  deltaTokenValue: string,
  extra: Json = {},
  token?: string,
  opts: { settle: boolean } = { settle: true },
): Promise<Pulled> {
  if (opts.settle) await settle(t);
  const pages: Json[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const body: Json = { schemas: [DELTA_REQUEST], deltaToken: deltaTokenValue, ...extra };
    if (cursor !== undefined) body.cursor = cursor;
    const res = await t.request('POST', `${prefix}/.delta`, { body, token });
    ok(res);
    assert.equal(res.headers['content-type'], SCIM_JSON);
    assert.deepEqual(res.body.schemas, [LIST]);
    assert.equal(res.body.itemsPerPage, res.body.Resources.length);
    pages.push(res.body);
    if (res.body.nextDeltaToken !== undefined) {
      assert.equal(res.body.nextCursor, undefined, 'the final page has no nextCursor');
      assert.match(res.body.nextDeltaToken.value, UNRESERVED);
      assert.equal(typeof res.body.nextDeltaToken.expiry, 'string');
      return { pages, items: pages.flatMap((p) => p.Resources), next: res.body.nextDeltaToken.value };
    }
    assert.equal(typeof res.body.nextCursor, 'string', 'a page without nextDeltaToken carries nextCursor');
    assert.match(res.body.nextCursor, UNRESERVED);
    cursor = res.body.nextCursor;
  }
  throw new Error('delta did not end');
}

/** Every resource of an endpoint (cursor paging), keyed by id. */
export async function fullPull(
  t: TestApp,
  prefix: string,
  endpoint: string,
  token?: string,
): Promise<Map<string, Json>> {
  const out = new Map<string, Json>();
  let cursor = '';
  for (;;) {
    const res = await t.request('GET', `${prefix}${endpoint}?count=50&cursor=${encodeURIComponent(cursor)}`, {
      token,
    });
    ok(res);
    for (const r of res.body.Resources ?? []) out.set(r.id, r);
    if (res.body.nextCursor === undefined) return out;
    cursor = res.body.nextCursor;
  }
}

/** Applies delta items to a local copy (create/update: upsert the data; delete: remove). */
export function apply(copy: Map<string, Json>, items: Json[]): void {
  for (const item of items) {
    assert.deepEqual(item.schemas, [DELTA_RESPONSE]);
    if (item.changeType === 'delete') {
      assert.equal(item.data, undefined);
      assert.equal(item.operations, undefined);
      copy.delete(item.changedResourceId);
    } else {
      assert.ok(item.changeType === 'create' || item.changeType === 'update', item.changeType);
      assert.equal(item.data.id, item.changedResourceId);
      copy.set(item.changedResourceId, item.data);
    }
  }
}

/** Items as `changeType:id` for exact comparisons. */
export function summary(items: Json[]): string[] {
  return items.map((i) => `${i.changeType}:${i.changedResourceId}`);
}

export function user(userName: string, more: Json = {}): Json {
  return { schemas: [USER], userName, ...more };
}

export async function createUser(
  t: TestApp,
  prefix: string,
  userName: string,
  token?: string,
): Promise<Json> {
  const res = await t.request('POST', `${prefix}/Users`, { body: user(userName), token });
  ok(res, 201);
  return res.body;
}

export function patch(ops: Json[]): Json {
  return { schemas: [PATCH_OP], Operations: ops };
}
