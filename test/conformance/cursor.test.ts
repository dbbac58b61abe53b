/**
 * Cursor-based pagination (RFC 9865). Expiry and maxPageSize capping need small limits and live in
 * limits.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import { BASE, SEARCH, assertError, assertList, createUser, enc, ids, type Json } from './lib.ts';

let t: TestApp;
const base: Json[] = [];
before(async () => {
  t = await startTestApp();
  for (const n of ['carol', 'Alan', 'dave', 'Eve', 'bert', 'frank', 'Gina'])
    base.push(await createUser(t, { userName: n }));
});
after(async () => {
  await t.close();
});

const UNRESERVED = /^[A-Za-z0-9\-._~]+$/;

async function page(query: string): Promise<TestResponse> {
  const res = await t.request('GET', `${BASE}/Users?${query}`);
  assertList(res);
  return res;
}

/** Follows nextCursor from a first query, repeating the other parameters unchanged; returns every page. */
async function walk(params: string, between?: (i: number) => Promise<void>): Promise<TestResponse[]> {
  const pages = [await page(`cursor&${params}`)];
  for (let i = 0; pages.at(-1)!.body.nextCursor !== undefined; i++) {
    assert.ok(i < 100, 'runaway cursor walk');
    if (between) await between(i);
    const c = pages.at(-1)!.body.nextCursor as string;
    pages.push(await page(`cursor=${enc(c)}&${params}`));
  }
  return pages;
}

function tamper(c: string): string {
  const i = Math.floor(c.length / 2);
  return c.slice(0, i) + (c[i] === 'A' ? 'B' : 'A') + c.slice(i + 1);
}

describe('cursor pagination (RFC 9865 §3)', () => {
  test('GET /Users?cursor&count=2: first page has nextCursor and no previousCursor', async () => {
    const res = await page('cursor&count=2');
    assert.equal(res.body.Resources.length, 2);
    assert.equal(res.body.itemsPerPage, 2);
    assert.equal(res.body.totalResults, 7);
    assert.equal(typeof res.body.nextCursor, 'string');
    assert.ok(res.body.nextCursor.length > 0);
    assert.equal(res.body.previousCursor, undefined);
  });

  test('"cursor=" (explicitly empty) also starts cursor paging', async () => {
    const res = await page('cursor=&count=2');
    assert.equal(typeof res.body.nextCursor, 'string');
    assert.equal(res.body.Resources.length, 2);
  });

  test('a full walk visits every resource exactly once; only the last page lacks nextCursor', async () => {
    const pages = await walk('count=2');
    assert.equal(pages.length, 4);
    const seen = pages.flatMap(ids);
    assert.equal(new Set(seen).size, seen.length, 'no duplicates');
    assert.deepEqual([...seen].sort(), base.map((u) => u.id).sort());
    for (const p of pages.slice(0, -1)) {
      assert.equal(typeof p.body.nextCursor, 'string');
      assert.equal(p.body.Resources.length, 2);
    }
    assert.equal(pages.at(-1)!.body.nextCursor, undefined);
    assert.equal(pages.at(-1)!.body.Resources.length, 1);
  });

  test('cursor values use only unreserved URL characters (RFC 3986 §2.3)', async () => {
    const pages = await walk('count=2');
    for (const p of pages) {
      for (const c of [p.body.nextCursor, p.body.previousCursor])
        if (c !== undefined) assert.match(c, UNRESERVED);
    }
  });

  test('cursor pages honour sortBy across pages (RFC 9865 §3: pages SHOULD be sorted)', async () => {
    const pages = await walk('count=3&sortBy=userName&sortOrder=descending');
    const names = pages.flatMap((p) => (p.body.Resources as Json[]).map((r) => r.userName as string));
    assert.deepEqual(names, ['Gina', 'frank', 'Eve', 'dave', 'carol', 'bert', 'Alan']);
  });

  test('cursor paging with a filter walks only the matches', async () => {
    const filter = enc('userName lt "e"');
    const pages = await walk(`count=2&filter=${filter}`);
    const seen = pages.flatMap(ids).sort();
    const want = base
      .filter((u) => u.userName.toLowerCase() < 'e')
      .map((u) => u.id)
      .sort();
    assert.deepEqual(seen, want);
    assert.equal(pages[0]!.body.totalResults, 4);
  });

  test('previousCursor is absent on the first page, present later, and leads back to the previous page', async () => {
    const p1 = await page('cursor&count=2');
    const p2 = await page(`cursor=${enc(p1.body.nextCursor)}&count=2`);
    const p3 = await page(`cursor=${enc(p2.body.nextCursor)}&count=2`);
    assert.equal(typeof p2.body.previousCursor, 'string');
    assert.equal(typeof p3.body.previousCursor, 'string');
    const back2 = await page(`cursor=${enc(p3.body.previousCursor)}&count=2`);
    assert.deepEqual(ids(back2), ids(p2));
    const back1 = await page(`cursor=${enc(p2.body.previousCursor)}&count=2`);
    assert.deepEqual(ids(back1), ids(p1));
  });

  test('the walk stays correct while resources are inserted and deleted between pages', async () => {
    const stable: string[] = [];
    for (let i = 0; i < 6; i++) stable.push((await createUser(t, { userName: `walk-stable-${i}` })).id);
    const doomed: string[] = [];
    for (let i = 0; i < 4; i++) doomed.push((await createUser(t, { userName: `walk-doomed-${i}` })).id);
    const filter = enc('userName sw "walk-"');
    const pages = await walk(`count=3&filter=${filter}`, async (i) => {
      await createUser(t, { userName: `walk-new-${i}` });
      const d = doomed[i];
      if (d !== undefined) assert.equal((await t.request('DELETE', `${BASE}/Users/${d}`)).status, 204);
    });
    const seen = pages.flatMap(ids);
    assert.equal(new Set(seen).size, seen.length, `duplicates in ${seen.join(',')}`);
    for (const id of stable) assert.ok(seen.includes(id), `stable resource ${id} missed`);
  });

  test('a tampered cursor → 400 invalidCursor', async () => {
    const p1 = await page('cursor&count=2');
    assertError(
      await t.request('GET', `${BASE}/Users?cursor=${enc(tamper(p1.body.nextCursor))}&count=2`),
      400,
      'invalidCursor',
    );
    assertError(
      await t.request('GET', `${BASE}/Users?cursor=not-a-real-cursor&count=2`),
      400,
      'invalidCursor',
    );
  });

  test('a cursor reused with a different filter → 400 invalidCursor', async () => {
    const p1 = await page(`cursor&count=2&filter=${enc('userName pr')}`);
    const res = await t.request(
      'GET',
      `${BASE}/Users?cursor=${enc(p1.body.nextCursor)}&count=2&filter=${enc('userName sw "a"')}`,
    );
    assertError(res, 400, 'invalidCursor');
  });

  test('a cursor reused with a different count → 400 invalidCount', async () => {
    const p1 = await page('cursor&count=2');
    assertError(
      await t.request('GET', `${BASE}/Users?cursor=${enc(p1.body.nextCursor)}&count=3`),
      400,
      'invalidCount',
    );
  });

  test('a Users cursor is not valid on /Groups', async () => {
    const p1 = await page('cursor&count=2');
    assertError(
      await t.request('GET', `${BASE}/Groups?cursor=${enc(p1.body.nextCursor)}&count=2`),
      400,
      'invalidCursor',
    );
  });

  test('POST /Users/.search with "cursor": "" pages the same way as GET', async () => {
    const get = await walk('count=2');
    const first = await t.request('POST', `${BASE}/Users/.search`, {
      body: { schemas: [SEARCH], cursor: '', count: 2 },
    });
    assertList(first);
    const pages = [first];
    while (pages.at(-1)!.body.nextCursor !== undefined) {
      assert.ok(pages.length < 20);
      const res = await t.request('POST', `${BASE}/Users/.search`, {
        body: { schemas: [SEARCH], cursor: pages.at(-1)!.body.nextCursor, count: 2 },
      });
      assertList(res);
      pages.push(res);
    }
    assert.equal(pages[0]!.body.previousCursor, undefined);
    assert.deepEqual(pages.map(ids), get.map(ids));
  });

  test('SPC pagination: cursor and index both work; the default method is the one advertised', async () => {
    const spc = await t.request('GET', `${BASE}/ServiceProviderConfig`);
    const p = spc.body.pagination;
    assert.equal(p.cursor, true);
    assert.equal(p.index, true);
    const plain = await page('count=2');
    if (p.defaultPaginationMethod === 'index') {
      assert.equal(plain.body.nextCursor, undefined);
      assert.equal(plain.body.startIndex, 1);
    } else {
      assert.equal(p.defaultPaginationMethod, 'cursor');
      assert.equal(typeof plain.body.nextCursor, 'string');
    }
    const idx = await page('startIndex=3&count=2');
    assert.equal(idx.body.startIndex, 3);
    assert.equal(idx.body.nextCursor, undefined);
  });
});
