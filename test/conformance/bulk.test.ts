/**
 * Bulk (RFC 7644 §3.7). The 413 limits need small limits and live in limits.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import {
  BASE,
  BULK_REQ,
  BULK_RES,
  ENTERPRISE,
  ERROR,
  GROUP,
  ORIGIN,
  USER,
  assertError,
  assertScim,
  createUser,
  enc,
  total,
  uniq,
  type Json,
} from './lib.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t.close();
});

async function bulk(ops: Json[], extra: Record<string, unknown> = {}): Promise<TestResponse> {
  const res = await t.request('POST', `${BASE}/Bulk`, {
    body: { schemas: [BULK_REQ], ...extra, Operations: ops },
  });
  assertScim(res, 200);
  assert.deepEqual(res.body.schemas, [BULK_RES]);
  assert.ok(Array.isArray(res.body.Operations));
  return res;
}

const postUser = (bulkId: string, body: Record<string, unknown> = {}): Json => ({
  method: 'POST',
  path: '/Users',
  bulkId,
  data: { schemas: [USER], userName: uniq(`bulk-${bulkId}`), ...body },
});

function byBulkId(res: TestResponse, bulkId: string): Json {
  const op = (res.body.Operations as Json[]).find((o) => o.bulkId === bulkId);
  assert.ok(op, `no result for bulkId ${bulkId}`);
  return op;
}

function idFromLocation(loc: string): string {
  return loc.slice(loc.lastIndexOf('/') + 1);
}

/** A failed operation: status string, no location for POST, and a full SCIM error in response. */
function assertFailedOp(op: Json, status: number, scimType?: string): void {
  assert.equal(op.status, String(status));
  assert.deepEqual(op.response.schemas, [ERROR]);
  assert.equal(op.response.status, String(status));
  if (scimType !== undefined) assert.equal(op.response.scimType, scimType);
  assert.equal(typeof op.response.detail, 'string');
}

describe('Bulk (RFC 7644 §3.7)', () => {
  test('POST User (bulkId qwerty) and Group with member "bulkId:qwerty": response shape and substitution', async () => {
    const res = await bulk([
      postUser('qwerty'),
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'ytrewq',
        data: {
          schemas: [GROUP],
          displayName: uniq('bulk-group'),
          members: [{ type: 'User', value: 'bulkId:qwerty' }],
        },
      },
    ]);
    assert.equal(res.body.Operations.length, 2);
    const u = byBulkId(res, 'qwerty');
    assert.equal(u.method, 'POST');
    assert.equal(u.status, '201');
    assert.match(u.location, new RegExp(`^${ORIGIN}${BASE}/Users/[^/]+$`));
    assert.match(u.version, /^W\/"[^"]+"$/);
    assert.equal(u.response, undefined);
    const g = byBulkId(res, 'ytrewq');
    assert.equal(g.status, '201');
    assert.match(g.location, new RegExp(`^${ORIGIN}${BASE}/Groups/[^/]+$`));
    const userId = idFromLocation(u.location);
    const group = await t.request('GET', g.location.slice(ORIGIN.length));
    assertScim(group, 200);
    assert.deepEqual(
      (group.body.members as Json[]).map((m) => m.value),
      [userId],
    );
    assert.equal(group.body.meta.version, g.version);
    const user = await t.request('GET', `${BASE}/Users/${userId}`);
    assert.equal(user.body.meta.version, u.version);
  });

  test('a forward reference (group before the user it names) is resolved', async () => {
    const res = await bulk([
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'fwd-g',
        data: { schemas: [GROUP], displayName: uniq('fwd'), members: [{ value: 'bulkId:fwd-u' }] },
      },
      postUser('fwd-u'),
    ]);
    const g = byBulkId(res, 'fwd-g');
    const u = byBulkId(res, 'fwd-u');
    assert.equal(g.status, '201');
    assert.equal(u.status, '201');
    const group = await t.request('GET', g.location.slice(ORIGIN.length));
    assert.deepEqual(
      (group.body.members as Json[]).map((m) => m.value),
      [idFromLocation(u.location)],
    );
  });

  test('bulkId references inside the enterprise extension (manager.value) are substituted', async () => {
    const res = await bulk([
      postUser('emp', {
        schemas: [USER, ENTERPRISE],
        [ENTERPRISE]: { employeeNumber: '1', manager: { value: 'bulkId:boss' } },
      }),
      postUser('boss'),
    ]);
    const emp = byBulkId(res, 'emp');
    const boss = byBulkId(res, 'boss');
    assert.equal(emp.status, '201');
    const got = await t.request('GET', emp.location.slice(ORIGIN.length));
    assert.equal(got.body[ENTERPRISE].manager.value, idFromLocation(boss.location));
  });

  test('a POST without bulkId fails with 400 in its own entry; the other ops succeed', async () => {
    const before = await total(t, '/Users');
    const res = await bulk([
      { method: 'POST', path: '/Users', data: { schemas: [USER], userName: uniq('nobulkid') } },
      postUser('ok-after'),
    ]);
    assert.equal(res.body.Operations.length, 2);
    const failed = (res.body.Operations as Json[]).find((o) => o.bulkId === undefined);
    assert.ok(failed);
    assert.equal(failed.method, 'POST');
    assert.equal(failed.location, undefined);
    assert.ok(['invalidSyntax', 'invalidValue'].includes(failed.response.scimType), failed.response.scimType);
    assertFailedOp(failed, 400);
    assert.equal(byBulkId(res, 'ok-after').status, '201');
    assert.equal(await total(t, '/Users'), before + 1);
  });

  test('PUT, PATCH and DELETE operations: status strings, location and version', async () => {
    const u = await createUser(t, { userName: uniq('target') });
    const d = await createUser(t, { userName: uniq('doomed') });
    const res = await bulk([
      {
        method: 'PUT',
        path: `/Users/${u.id}`,
        data: { schemas: [USER], userName: u.userName, displayName: 'Put' },
      },
      {
        method: 'PATCH',
        path: `/Users/${u.id}`,
        data: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'add', path: 'nickName', value: 'Nick' }],
        },
      },
      { method: 'DELETE', path: `/Users/${d.id}` },
    ]);
    const [put, patch, del] = res.body.Operations as Json[];
    assert.equal(put.method, 'PUT');
    assert.equal(put.status, '200');
    assert.equal(put.location, `${ORIGIN}${BASE}/Users/${u.id}`);
    assert.match(put.version, /^W\/"[^"]+"$/);
    assert.equal(patch.method, 'PATCH');
    assert.equal(patch.status, '200');
    assert.equal(patch.location, `${ORIGIN}${BASE}/Users/${u.id}`);
    assert.notEqual(patch.version, put.version);
    assert.equal(del.method, 'DELETE');
    assert.equal(del.status, '204');
    const got = await t.request('GET', `${BASE}/Users/${u.id}`);
    assert.equal(got.body.displayName, 'Put');
    assert.equal(got.body.nickName, 'Nick');
    assert.equal(got.body.meta.version, patch.version);
    assertError(await t.request('GET', `${BASE}/Users/${d.id}`), 404);
  });

  test('without failOnErrors every operation is attempted, even after failures; HTTP 200', async () => {
    const taken = await createUser(t, { userName: uniq('taken') });
    const res = await bulk([
      { method: 'DELETE', path: '/Users/00000000-0000-0000-0000-00000000f00d' },
      postUser('dup', { userName: taken.userName }),
      postUser('fine-1'),
      {
        method: 'PATCH',
        path: '/Users/00000000-0000-0000-0000-00000000f00d',
        data: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'add', path: 'nickName', value: 'x' }],
        },
      },
      postUser('fine-2'),
    ]);
    const ops = res.body.Operations as Json[];
    assert.equal(ops.length, 5);
    const del = ops.find((o) => o.method === 'DELETE');
    assertFailedOp(del, 404);
    assertFailedOp(byBulkId(res, 'dup'), 409, 'uniqueness');
    assert.equal(byBulkId(res, 'dup').location, undefined);
    assertFailedOp(
      ops.find((o) => o.method === 'PATCH'),
      404,
    );
    assert.equal(byBulkId(res, 'fine-1').status, '201');
    assert.equal(byBulkId(res, 'fine-2').status, '201');
  });

  test('failOnErrors=1 stops after the first failure; later ops are absent and not applied; HTTP 200', async () => {
    const taken = await createUser(t, { userName: uniq('taken') });
    const laterName = uniq('never-created');
    const res = await bulk(
      [
        postUser('first-ok'),
        postUser('dup', { userName: taken.userName }),
        postUser('later', { userName: laterName }),
      ],
      { failOnErrors: 1 },
    );
    const ops = res.body.Operations as Json[];
    assert.equal(ops.length, 2);
    assert.equal(byBulkId(res, 'first-ok').status, '201');
    assertFailedOp(byBulkId(res, 'dup'), 409, 'uniqueness');
    assert.equal(
      ops.find((o) => o.bulkId === 'later'),
      undefined,
    );
    const f = await t.request('GET', `${BASE}/Users?filter=${enc(`userName eq "${laterName}"`)}`);
    assert.equal(f.body.totalResults, 0);
  });

  test('a bulk PUT with a stale version → that op has status "412" and nothing changes', async () => {
    const u = await createUser(t, { userName: uniq('ver') });
    const res = await bulk([
      {
        method: 'PUT',
        path: `/Users/${u.id}`,
        version: 'W/"999999"',
        data: { schemas: [USER], userName: u.userName, displayName: 'stale' },
      },
    ]);
    assertFailedOp(res.body.Operations[0], 412);
    const got = await t.request('GET', `${BASE}/Users/${u.id}`);
    assert.deepEqual(got.body, u);
  });

  test('a bulk PATCH with the current version succeeds', async () => {
    const u = await createUser(t, { userName: uniq('ver') });
    const res = await bulk([
      {
        method: 'PATCH',
        path: `/Users/${u.id}`,
        version: u.meta.version,
        data: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'add', path: 'title', value: 'T' }],
        },
      },
    ]);
    assert.equal(res.body.Operations[0].status, '200');
  });

  test('unresolvable circular bulkId references → 409 for those ops; the job itself is 200', async () => {
    // Two users each naming the other's id as its own id-bearing attribute value cannot be ordered.
    const res = await bulk([
      postUser('circ-a', {
        schemas: [USER, ENTERPRISE],
        [ENTERPRISE]: { manager: { value: 'bulkId:circ-b' } },
      }),
      postUser('circ-b', {
        schemas: [USER, ENTERPRISE],
        [ENTERPRISE]: { manager: { value: 'bulkId:circ-a' } },
      }),
      postUser('independent'),
    ]);
    const a = byBulkId(res, 'circ-a');
    const b = byBulkId(res, 'circ-b');
    // RFC 7644 §3.7.1: the server MUST try to resolve and MAY give up with 409; either outcome is
    // valid only if it is complete and consistent.
    if (a.status === '201') {
      assert.equal(b.status, '201');
      const ga = await t.request('GET', a.location.slice(ORIGIN.length));
      assert.equal(ga.body[ENTERPRISE].manager.value, idFromLocation(b.location));
    } else {
      assertFailedOp(a, 409);
      assertFailedOp(b, 409);
    }
    assert.equal(byBulkId(res, 'independent').status, '201');
  });

  test('a reference to a bulkId that no operation defines fails that op with 400 or 409', async () => {
    const res = await bulk([
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'dangling',
        data: { schemas: [GROUP], displayName: uniq('dangling'), members: [{ value: 'bulkId:nope' }] },
      },
    ]);
    const op = byBulkId(res, 'dangling');
    assert.ok(['400', '409'].includes(op.status), op.status);
    assertFailedOp(op, Number(op.status));
  });

  test('BulkRequest without its schema → 400 invalidSyntax', async () => {
    const res = await t.request('POST', `${BASE}/Bulk`, { body: { Operations: [postUser('x')] } });
    assertError(res, 400, 'invalidSyntax');
  });
});
