/**
 * Group membership (RFC 7643 §4.1.2 groups, §4.2 members): members are stored as rows and
 * User.groups is derived from them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  BASE,
  GROUP,
  ORIGIN,
  assertError,
  assertList,
  assertScim,
  createGroup,
  createUser,
  enc,
  ids,
  patchBody,
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

const memberIds = (g: Json): string[] =>
  ((g.members ?? []) as { value: string }[]).map((m) => m.value).sort();

async function getBody(path: string): Promise<Json> {
  const res = await t.request('GET', `${BASE}/${path}`);
  assertScim(res, 200);
  return res.body;
}

describe('members and derived groups', () => {
  test('a member is returned with value, type "User" and its $ref; User.groups is derived (type "direct")', async () => {
    const u = await createUser(t, { userName: uniq('m') });
    const g = await createGroup(t, { displayName: 'Derived Group', members: [{ value: u.id }] });
    assert.equal(g.members.length, 1);
    const [m] = g.members as Json[];
    assert.equal(m.value, u.id);
    assert.equal(m.type, 'User');
    if (m.$ref !== undefined) assert.equal(m.$ref, `${ORIGIN}${BASE}/Users/${u.id}`);
    const user = await getBody(`Users/${u.id}`);
    assert.deepEqual(user.groups, [
      { value: g.id, display: 'Derived Group', $ref: `${ORIGIN}${BASE}/Groups/${g.id}`, type: 'direct' },
    ]);
  });

  test('User.groups follows a group rename', async () => {
    const u = await createUser(t, { userName: uniq('m') });
    const g = await createGroup(t, { displayName: 'Old Name', members: [{ value: u.id }] });
    const res = await t.request('PATCH', `${BASE}/Groups/${g.id}`, {
      body: patchBody({ op: 'replace', path: 'displayName', value: 'New Name' }),
    });
    assertScim(res, 200);
    const user = await getBody(`Users/${u.id}`);
    assert.equal(user.groups[0].display, 'New Name');
  });

  test('a group can be a member of a group (type "Group")', async () => {
    const inner = await createGroup(t, { displayName: uniq('inner') });
    const outer = await createGroup(t, {
      displayName: uniq('outer'),
      members: [{ value: inner.id, type: 'Group' }],
    });
    const [m] = outer.members as Json[];
    assert.equal(m.value, inner.id);
    assert.equal(m.type, 'Group');
    if (m.$ref !== undefined) assert.equal(m.$ref, `${ORIGIN}${BASE}/Groups/${inner.id}`);
  });

  test('a member that does not exist → 400 invalidValue on POST; nothing stored', async () => {
    const before = await total(t, '/Groups');
    const res = await t.request('POST', `${BASE}/Groups`, {
      body: {
        schemas: [GROUP],
        displayName: uniq('bad'),
        members: [{ value: '00000000-0000-0000-0000-00000000dead' }],
      },
    });
    assertError(res, 400, 'invalidValue');
    assert.equal(await total(t, '/Groups'), before);
  });

  test('a member that does not exist → 400 invalidValue on PATCH add; group unchanged', async () => {
    const u = await createUser(t, { userName: uniq('m') });
    const g = await createGroup(t, { displayName: uniq('g'), members: [{ value: u.id }] });
    const before = await t.request('GET', `${BASE}/Groups/${g.id}`);
    const res = await t.request('PATCH', `${BASE}/Groups/${g.id}`, {
      body: patchBody({ op: 'add', path: 'members', value: [{ value: 'no-such-member' }] }),
    });
    assertError(res, 400, 'invalidValue');
    assert.equal((await t.request('GET', `${BASE}/Groups/${g.id}`)).text, before.text);
  });

  test('a member that does not exist → 400 invalidValue on PUT', async () => {
    const g = await createGroup(t, { displayName: uniq('g') });
    const res = await t.request('PUT', `${BASE}/Groups/${g.id}`, {
      body: { schemas: [GROUP], displayName: g.displayName, members: [{ value: 'no-such-member' }] },
    });
    assertError(res, 400, 'invalidValue');
  });

  test('deleting a User removes it from its groups', async () => {
    const a = await createUser(t, { userName: uniq('a') });
    const b = await createUser(t, { userName: uniq('b') });
    const g = await createGroup(t, { displayName: uniq('g'), members: [{ value: a.id }, { value: b.id }] });
    assert.equal((await t.request('DELETE', `${BASE}/Users/${a.id}`)).status, 204);
    assert.deepEqual(memberIds(await getBody(`Groups/${g.id}`)), [b.id]);
    const f = await t.request('GET', `${BASE}/Groups?filter=${enc(`members.value eq "${a.id}"`)}`);
    assertList(f);
    assert.equal(f.body.totalResults, 0);
  });

  test('deleting a Group removes it from User.groups', async () => {
    const u = await createUser(t, { userName: uniq('m') });
    const g = await createGroup(t, { displayName: uniq('g'), members: [{ value: u.id }] });
    assert.equal((await t.request('DELETE', `${BASE}/Groups/${g.id}`)).status, 204);
    assert.equal((await getBody(`Users/${u.id}`)).groups, undefined);
  });

  test('the same member listed twice is stored once', async () => {
    const u = await createUser(t, { userName: uniq('m') });
    const g = await createGroup(t, { displayName: uniq('g'), members: [{ value: u.id }, { value: u.id }] });
    assert.deepEqual(memberIds(g), [u.id]);
  });

  test('twenty concurrent PATCHes adding different members to one group: all 20 present', async () => {
    const users: Json[] = [];
    for (let i = 0; i < 20; i++) users.push(await createUser(t, { userName: uniq('conc') }));
    const g = await createGroup(t, { displayName: uniq('concurrent') });
    const results = await Promise.all(
      users.map((u) =>
        t.request('PATCH', `${BASE}/Groups/${g.id}`, {
          body: patchBody({ op: 'add', path: 'members', value: [{ value: u.id }] }),
        }),
      ),
    );
    // RFC 7644 §3.5.2: 200 with the resource or 204 without a body.
    for (const r of results) assert.ok(r.status === 200 || r.status === 204, `status ${r.status}: ${r.text}`);
    assert.deepEqual(memberIds(await getBody(`Groups/${g.id}`)), users.map((u) => u.id).sort());
    for (const u of users)
      assert.deepEqual(
        (await getBody(`Users/${u.id}`)).groups.map((x: Json) => x.value),
        [g.id],
      );
  });

  test('filter members.value eq "<id>" on /Groups and groups.value eq "<gid>" on /Users', async () => {
    const u = await createUser(t, { userName: uniq('f') });
    const other = await createUser(t, { userName: uniq('f') });
    const g1 = await createGroup(t, { displayName: uniq('f1'), members: [{ value: u.id }] });
    const g2 = await createGroup(t, {
      displayName: uniq('f2'),
      members: [{ value: u.id }, { value: other.id }],
    });
    await createGroup(t, { displayName: uniq('f3'), members: [{ value: other.id }] });
    const groups = await t.request('GET', `${BASE}/Groups?filter=${enc(`members.value eq "${u.id}"`)}`);
    assertList(groups);
    assert.deepEqual(ids(groups).sort(), [g1.id, g2.id].sort());
    assert.equal(groups.body.totalResults, 2);
    const users = await t.request('GET', `${BASE}/Users?filter=${enc(`groups.value eq "${g2.id}"`)}`);
    assertList(users);
    assert.deepEqual(ids(users).sort(), [u.id, other.id].sort());
    const none = await t.request(
      'GET',
      `${BASE}/Users?filter=${enc(`groups.value eq "${g1.id}" and userName eq "${other.userName}"`)}`,
    );
    assertList(none);
    assert.equal(none.body.totalResults, 0);
  });

  test('excludedAttributes=members on a group omits members', async () => {
    const u = await createUser(t, { userName: uniq('x') });
    const g = await createGroup(t, { displayName: uniq('x'), members: [{ value: u.id }] });
    const res = await t.request('GET', `${BASE}/Groups/${g.id}?excludedAttributes=members`);
    assertScim(res, 200);
    assert.equal(res.body.members, undefined);
    assert.equal(res.body.displayName, g.displayName);
  });

  test('POST /Groups without displayName (REQUIRED, RFC 7643 §4.2) → 400 invalidValue', async () => {
    assertError(
      await t.request('POST', `${BASE}/Groups`, { body: { schemas: [GROUP] } }),
      400,
      'invalidValue',
    );
  });
});
