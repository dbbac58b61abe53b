/**
 * Error handling (RFC 7644 §3.12): every bad request gets a SCIM error with the right status and
 * scimType, no internals leak, and the store is unchanged afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import {
  BASE,
  BULK_REQ,
  ENTERPRISE,
  PATCH_OP,
  SEARCH,
  USER,
  assertError,
  assertNoInternals,
  createUser,
  total,
  uniq,
  type Json,
} from './lib.ts';

let t: TestApp;
let existing: Json;
before(async () => {
  t = await startTestApp();
  existing = await createUser(t, { userName: 'existing' });
});
after(async () => {
  await t.close();
});

/** Runs a bad request and checks the error and that neither the user count nor `existing` changed. */
async function rejects(
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string },
  status: number,
  scimType?: string,
): Promise<TestResponse> {
  const before = await total(t, '/Users');
  const res = await t.request(method, `${BASE}${path}`, opts);
  assertError(res, status, scimType);
  assert.equal(await total(t, '/Users'), before, 'user count unchanged');
  const got = await t.request('GET', `${BASE}/Users/${existing.id}`);
  assert.deepEqual(got.body, existing, 'existing user unchanged');
  return res;
}

describe('malformed requests (RFC 7644 §3.12)', () => {
  test('malformed JSON → 400 invalidSyntax on POST, PUT, PATCH, /.search and /Bulk', async () => {
    const raw = '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": ';
    await rejects('POST', '/Users', { raw }, 400, 'invalidSyntax');
    await rejects('PUT', `/Users/${existing.id}`, { raw }, 400, 'invalidSyntax');
    await rejects('PATCH', `/Users/${existing.id}`, { raw }, 400, 'invalidSyntax');
    await rejects('POST', '/Users/.search', { raw }, 400, 'invalidSyntax');
    await rejects('POST', '/Bulk', { raw }, 400, 'invalidSyntax');
  });

  test('an empty body on POST → 400 invalidSyntax', async () => {
    await rejects('POST', '/Users', { raw: '' }, 400, 'invalidSyntax');
  });

  test('a JSON array or string instead of an object → 400 invalidSyntax', async () => {
    await rejects('POST', '/Users', { body: [{ schemas: [USER], userName: 'x' }] }, 400, 'invalidSyntax');
    await rejects('POST', '/Users', { raw: '"just a string"' }, 400, 'invalidSyntax');
  });

  test('wrong attribute types → 400 invalidValue', async () => {
    await rejects('POST', '/Users', { body: { schemas: [USER], userName: 123 } }, 400, 'invalidValue');
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER], userName: uniq('t'), active: 'maybe' } },
      400,
      'invalidValue',
    );
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER], userName: uniq('t'), name: 'Barbara' } },
      400,
      'invalidValue',
    );
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER], userName: uniq('t'), emails: [{ value: 5 }] } },
      400,
      'invalidValue',
    );
    await rejects(
      'PUT',
      `/Users/${existing.id}`,
      { body: { schemas: [USER], userName: 'existing', displayName: { a: 1 } } },
      400,
      'invalidValue',
    );
  });

  test('unknown attributes → 400 invalidSyntax', async () => {
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER], userName: uniq('u'), favouriteColour: 'blue' } },
      400,
      'invalidSyntax',
    );
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER], userName: uniq('u'), name: { nickname: 'x' } } },
      400,
      'invalidSyntax',
    );
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER, ENTERPRISE], userName: uniq('u'), [ENTERPRISE]: { shoeSize: 44 } } },
      400,
      'invalidSyntax',
    );
  });

  test('an unknown schema URN in schemas or as a key → 400 invalidSyntax', async () => {
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER, 'urn:example:custom'], userName: uniq('u') } },
      400,
      'invalidSyntax',
    );
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER], userName: uniq('u'), 'urn:example:custom': { a: 1 } } },
      400,
      'invalidSyntax',
    );
  });

  test('a body larger than the limit → 413', async () => {
    const big = 'x'.repeat(1024 * 1024 + 100);
    await rejects(
      'POST',
      '/Users',
      { body: { schemas: [USER], userName: uniq('big'), displayName: big } },
      413,
    );
  });

  test('10,000 nested arrays → 400 (never a crash or a 500)', async () => {
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    const raw = `{"schemas":["${USER}"],"userName":"deep","nickName":${deep}}`;
    const res = await rejects('POST', '/Users', { raw }, 400);
    assert.ok(['invalidSyntax', 'invalidValue'].includes(res.body.scimType), res.body.scimType);
    const patchRaw = `{"schemas":["${PATCH_OP}"],"Operations":[{"op":"add","path":"nickName","value":${deep}}]}`;
    const p = await rejects('PATCH', `/Users/${existing.id}`, { raw: patchRaw }, 400);
    assert.ok(['invalidSyntax', 'invalidValue'].includes(p.body.scimType), p.body.scimType);
  });

  test('100,000 nested objects → 400', async () => {
    const deep = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    await rejects('POST', '/Users/.search', { raw: `{"schemas":["${SEARCH}"],"x":${deep}}` }, 400);
  });

  test('an unknown endpoint → 404 SCIM error', async () => {
    assertError(await t.request('GET', `${BASE}/Nope`), 404);
    assertError(await t.request('GET', `${BASE}/Users/${existing.id}/extra`), 404);
  });

  test('error bodies never carry a stack trace, even for invalid bulk messages', async () => {
    await rejects('POST', '/Bulk', { body: { schemas: [BULK_REQ], Operations: 'nope' } }, 400);
    // An unknown method may fail the whole request or only its operation; either way no 5xx, no internals.
    const res = await t.request('POST', `${BASE}/Bulk`, {
      body: { schemas: [BULK_REQ], Operations: [{ method: 'FROB', path: '/Users', bulkId: 'b' }] },
    });
    if (res.status === 400) assertError(res, 400);
    else {
      assert.equal(res.status, 200);
      assertNoInternals(res);
      assert.equal(res.body.Operations[0].status, '400');
    }
  });

  test('a string with a NUL character (\\u0000) → 201 or 400, never 500', async () => {
    const res = await t.request('POST', `${BASE}/Users`, {
      raw: `{"schemas":["${USER}"],"userName":"nul\\u0000byte"}`,
    });
    if (res.status === 201) assert.equal(res.body.userName, 'nul\u0000byte');
    else assertError(res, 400);
  });

  test('a string with a lone surrogate (\\ud800) → 201 or 400, never 500', async () => {
    const res = await t.request('POST', `${BASE}/Users`, {
      raw: `{"schemas":["${USER}"],"userName":"lone\\ud800"}`,
    });
    if (res.status === 201) assert.equal(res.body.userName, 'lone\ud800');
    else assertError(res, 400);
  });
});
