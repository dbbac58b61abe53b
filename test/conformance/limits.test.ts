/**
 * Configured limits, with a deliberately small configuration: bulk limits (RFC 7644 §3.7.4), page
 * size caps (RFC 7644 §3.4.2.4, RFC 9865 maxPageSize), body size, cursor expiry (RFC 9865).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  BASE,
  BULK_REQ,
  SEARCH,
  USER,
  assertError,
  assertList,
  assertScim,
  createUser,
  enc,
  ids,
  sleep,
  total,
  uniq,
} from './lib.ts';

let t: TestApp;
const LIMITS = {
  bulkMaxOperations: 3,
  bulkMaxPayloadSize: 4000,
  maxBodySize: 8000,
  maxPageSize: 5,
  defaultPageSize: 3,
  filterMaxResults: 5,
  cursorTimeout: 1,
};
before(async () => {
  t = await startTestApp(LIMITS);
  for (let i = 0; i < 8; i++) await createUser(t, { userName: `limit-${i}` });
});
after(async () => {
  await t.close();
});

const postOp = (i: number) => ({
  method: 'POST',
  path: '/Users',
  bulkId: `b${i}`,
  data: { schemas: [USER], userName: uniq(`bulk-limit-${i}`) },
});

describe('limits', () => {
  test('SPC advertises the configured limits', async () => {
    const res = await t.request('GET', `${BASE}/ServiceProviderConfig`);
    assertScim(res, 200);
    assert.equal(res.body.bulk.maxOperations, 3);
    assert.equal(res.body.bulk.maxPayloadSize, 4000);
    assert.equal(res.body.filter.maxResults, 5);
    assert.equal(res.body.pagination.maxPageSize, 5);
    assert.equal(res.body.pagination.defaultPageSize, 3);
    assert.equal(res.body.pagination.cursorTimeout, 1);
  });

  test('more operations than bulk.maxOperations → 413 naming the limit; nothing applied', async () => {
    const before = await total(t, '/Users');
    const res = await t.request('POST', `${BASE}/Bulk`, {
      body: { schemas: [BULK_REQ], Operations: [0, 1, 2, 3].map(postOp) },
    });
    assertError(res, 413);
    assert.match(res.body.detail, /maxOperations/);
    assert.equal(await total(t, '/Users'), before);
  });

  test('exactly bulk.maxOperations operations are accepted', async () => {
    const res = await t.request('POST', `${BASE}/Bulk`, {
      body: { schemas: [BULK_REQ], Operations: [0, 1, 2].map(postOp) },
    });
    assertScim(res, 200);
    assert.deepEqual(
      (res.body.Operations as { status: string }[]).map((o) => o.status),
      ['201', '201', '201'],
    );
    for (const o of res.body.Operations as { location: string }[]) {
      assert.equal((await t.request('DELETE', o.location.replace('http://scimd.test', ''))).status, 204);
    }
  });

  test('a bulk body larger than bulk.maxPayloadSize → 413 naming the limit', async () => {
    const before = await total(t, '/Users');
    const op = {
      ...postOp(9),
      data: { schemas: [USER], userName: uniq('fat'), displayName: 'x'.repeat(4500) },
    };
    const res = await t.request('POST', `${BASE}/Bulk`, { body: { schemas: [BULK_REQ], Operations: [op] } });
    assertError(res, 413);
    assert.match(res.body.detail, /maxPayloadSize/);
    assert.equal(await total(t, '/Users'), before);
  });

  test('a non-bulk body larger than the body limit → 413', async () => {
    const res = await t.request('POST', `${BASE}/Users`, {
      body: { schemas: [USER], userName: uniq('fat'), displayName: 'x'.repeat(9000) },
    });
    assertError(res, 413);
  });

  test('no count → defaultPageSize resources', async () => {
    const res = await t.request('GET', `${BASE}/Users`);
    assertList(res);
    assert.equal(res.body.totalResults, 8);
    assert.equal(res.body.Resources.length, 3);
    assert.equal(res.body.itemsPerPage, 3);
  });

  test('count above maxPageSize/filter.maxResults → at most 5 per page; index paging still reaches everything', async () => {
    const seen: string[] = [];
    let start = 1;
    for (let guard = 0; guard < 10 && start <= 8; guard++) {
      const res = await t.request('GET', `${BASE}/Users?sortBy=userName&count=100&startIndex=${start}`);
      assertList(res);
      const page = ids(res);
      assert.ok(page.length >= 1 && page.length <= 5, `page of ${page.length}`);
      assert.equal(res.body.itemsPerPage, page.length);
      assert.equal(res.body.totalResults, 8);
      seen.push(...page);
      start += page.length;
    }
    assert.equal(new Set(seen).size, 8);
  });

  test('/.search with count above maxPageSize → at most 5', async () => {
    const res = await t.request('POST', `${BASE}/Users/.search`, {
      body: { schemas: [SEARCH], count: 1000 },
    });
    assertList(res);
    assert.ok(res.body.Resources.length <= 5);
    assert.equal(res.body.itemsPerPage, res.body.Resources.length);
  });

  test('cursor paging with count above maxPageSize → at most 5 per page, and the walk completes', async () => {
    const first = await t.request('GET', `${BASE}/Users?cursor&count=100`);
    assertList(first);
    assert.ok(first.body.Resources.length <= 5 && first.body.Resources.length >= 1);
    assert.equal(typeof first.body.nextCursor, 'string');
    const second = await t.request('GET', `${BASE}/Users?cursor=${enc(first.body.nextCursor)}&count=100`);
    assertList(second);
    assert.ok(second.body.Resources.length <= 5);
    const all = [...ids(first), ...ids(second)];
    if (second.body.nextCursor === undefined) assert.equal(new Set(all).size, 8);
  });

  test('a cursor older than cursorTimeout → 400 expiredCursor', async () => {
    const first = await t.request('GET', `${BASE}/Users?cursor&count=2`);
    assertList(first);
    await sleep(2100);
    const res = await t.request('GET', `${BASE}/Users?cursor=${enc(first.body.nextCursor)}&count=2`);
    assertError(res, 400, 'expiredCursor');
  });
});
