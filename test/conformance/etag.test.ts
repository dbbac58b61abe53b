/**
 * Versioning with ETags (RFC 7644 §3.14; RFC 7232 conditional requests).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  BASE,
  GROUP,
  USER,
  assertError,
  assertEtag,
  assertScim,
  createGroup,
  createUser,
  header,
  patchBody,
  uniq,
} from './lib.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t.close();
});

const renamePatch = (v: string) => patchBody({ op: 'replace', path: 'displayName', value: v });

describe('ETag (RFC 7644 §3.14)', () => {
  test('every single-resource response carries an ETag equal to meta.version', async () => {
    const post = await t.request('POST', `${BASE}/Users`, { body: { schemas: [USER], userName: uniq('e') } });
    assertScim(post, 201);
    const e1 = assertEtag(post);
    const id = post.body.id as string;
    const get = await t.request('GET', `${BASE}/Users/${id}`);
    assertScim(get, 200);
    assert.equal(assertEtag(get), e1);
    const put = await t.request('PUT', `${BASE}/Users/${id}`, {
      body: { schemas: [USER], userName: post.body.userName, displayName: 'P' },
    });
    assertScim(put, 200);
    const e2 = assertEtag(put);
    assert.notEqual(e2, e1);
    const patch = await t.request('PATCH', `${BASE}/Users/${id}`, { body: renamePatch('Q') });
    assertScim(patch, 200);
    const e3 = assertEtag(patch);
    assert.notEqual(e3, e2);
    const grp = await t.request('POST', `${BASE}/Groups`, {
      body: { schemas: [GROUP], displayName: uniq('g') },
    });
    assertScim(grp, 201);
    assertEtag(grp);
  });

  test('a projected GET (?attributes=userName) still carries the ETag', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const res = await t.request('GET', `${BASE}/Users/${u.id}?attributes=userName`);
    assertScim(res, 200);
    assert.equal(header(res, 'etag'), u.meta.version);
  });

  test('GET with If-None-Match equal to the ETag → 304 with an empty body; a stale one → 200', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const res = await t.request('GET', `${BASE}/Users/${u.id}`, {
      headers: { 'if-none-match': u.meta.version },
    });
    assert.equal(res.status, 304);
    assert.equal(res.text, '');
    const stale = await t.request('GET', `${BASE}/Users/${u.id}`, {
      headers: { 'if-none-match': 'W/"stale-0"' },
    });
    assertScim(stale, 200);
    assert.equal(stale.body.id, u.id);
  });

  test('If-None-Match: * on an existing resource → 304', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const res = await t.request('GET', `${BASE}/Users/${u.id}`, { headers: { 'if-none-match': '*' } });
    assert.equal(res.status, 304);
    assert.equal(res.text, '');
  });

  test('stale If-Match on PUT → 412 and no change', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const stale = u.meta.version;
    await t
      .request('PATCH', `${BASE}/Users/${u.id}`, { body: renamePatch('moved on') })
      .then((r) => assertScim(r, 200));
    const before = await t.request('GET', `${BASE}/Users/${u.id}`);
    const res = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER], userName: u.userName, displayName: 'lost update' },
      headers: { 'if-match': stale },
    });
    assertError(res, 412);
    assert.equal((await t.request('GET', `${BASE}/Users/${u.id}`)).text, before.text);
  });

  test('stale If-Match on PATCH → 412 and no change', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const res = await t.request('PATCH', `${BASE}/Users/${u.id}`, {
      body: renamePatch('x'),
      headers: { 'if-match': 'W/"999999"' },
    });
    assertError(res, 412);
    const got = await t.request('GET', `${BASE}/Users/${u.id}`);
    assert.deepEqual(got.body, u);
  });

  test('stale If-Match on DELETE → 412 and the resource still exists', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const res = await t.request('DELETE', `${BASE}/Users/${u.id}`, { headers: { 'if-match': 'W/"999999"' } });
    assertError(res, 412);
    const got = await t.request('GET', `${BASE}/Users/${u.id}`);
    assert.deepEqual(got.body, u);
  });

  test('current If-Match on PUT and PATCH → success with a new, different ETag', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const put = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER], userName: u.userName, displayName: 'one' },
      headers: { 'if-match': u.meta.version },
    });
    assertScim(put, 200);
    const e2 = assertEtag(put);
    assert.notEqual(e2, u.meta.version);
    const patch = await t.request('PATCH', `${BASE}/Users/${u.id}`, {
      body: renamePatch('two'),
      headers: { 'if-match': e2 },
    });
    assertScim(patch, 200);
    const e3 = assertEtag(patch);
    assert.notEqual(e3, e2);
    assert.equal(patch.body.displayName, 'two');
  });

  test('current If-Match on DELETE → 204', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const res = await t.request('DELETE', `${BASE}/Users/${u.id}`, {
      headers: { 'if-match': u.meta.version },
    });
    assert.equal(res.status, 204);
    assertError(await t.request('GET', `${BASE}/Users/${u.id}`), 404);
  });

  test('If-Match: * matches any current version', async () => {
    const u = await createUser(t, { userName: uniq('e') });
    const res = await t.request('PATCH', `${BASE}/Users/${u.id}`, {
      body: renamePatch('star'),
      headers: { 'if-match': '*' },
    });
    assertScim(res, 200);
  });

  test('If-Match on a resource that does not exist → 404 (not 412)', async () => {
    const res = await t.request('PATCH', `${BASE}/Users/00000000-0000-0000-0000-0000000000ee`, {
      body: renamePatch('x'),
      headers: { 'if-match': 'W/"1"' },
    });
    assertError(res, 404);
  });

  test('two PATCHes with the same If-Match concurrently → exactly one 412', async () => {
    const u = await createUser(t, { userName: uniq('race') });
    const [a, b] = await Promise.all(
      ['A', 'B'].map((v) =>
        t.request('PATCH', `${BASE}/Users/${u.id}`, {
          body: renamePatch(v),
          headers: { 'if-match': u.meta.version },
        }),
      ),
    );
    const statuses = [a!.status, b!.status].sort();
    assert.deepEqual(statuses, [200, 412]);
    const winner = a!.status === 200 ? a! : b!;
    const loser = a!.status === 200 ? b! : a!;
    assertError(loser, 412);
    const got = await t.request('GET', `${BASE}/Users/${u.id}`);
    assert.equal(got.body.displayName, winner.body.displayName);
    assert.equal(header(got, 'etag'), header(winner, 'etag'));
  });

  test("adding a member changes the group's ETag", async () => {
    const u = await createUser(t, { userName: uniq('m') });
    const g = await createGroup(t, { displayName: uniq('g') });
    const res = await t.request('PATCH', `${BASE}/Groups/${g.id}`, {
      body: patchBody({ op: 'add', path: 'members', value: [{ value: u.id }] }),
    });
    // 200 with the resource or 204 without a body (RFC 7644 §3.5.2); the ETag header is sent either way.
    assert.ok(res.status === 200 || res.status === 204, `status ${res.status}`);
    assert.notEqual(assertEtag(res), g.meta.version);
    const again = await t.request('GET', `${BASE}/Groups/${g.id}`, {
      headers: { 'if-none-match': g.meta.version },
    });
    assertScim(again, 200);
  });
});
