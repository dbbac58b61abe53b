/**
 * PATCH (RFC 7644 §3.5.2), every line of the protocol digest's §12 PATCH checklist through HTTP,
 * plus request bodies real clients send (Microsoft Entra ID, Okta).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import {
  BASE,
  ENTERPRISE,
  PATCH_OP,
  USER,
  assertError,
  assertEtag,
  assertScim,
  createGroup,
  createUser,
  header,
  patchBody,
  sleep,
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

async function patch(path: string, ...ops: Record<string, unknown>[]): Promise<TestResponse> {
  return t.request('PATCH', `${BASE}/${path}`, { body: patchBody(...ops) });
}

/**
 * PATCH that must succeed: 200 with the full resource, or 204 with an empty body (RFC 7644 §3.5.2
 * allows either; the server answers 204 after member changes so it never lists a huge group).
 * Either way the ETag header is sent and a follow-up GET agrees. Returns the stored resource.
 */
async function patchOk(path: string, ...ops: Record<string, unknown>[]): Promise<Json> {
  const res = await patch(path, ...ops);
  const got = await t.request('GET', `${BASE}/${path}`);
  assertScim(got, 200);
  if (res.status === 204) {
    assert.equal(res.text, '', '204 has no body');
    assert.equal(header(res, 'etag'), header(got, 'etag'), '204 carries the new ETag');
    return got.body;
  }
  assertScim(res, 200);
  assertEtag(res);
  assert.deepEqual(got.body, res.body, 'PATCH response is the stored resource');
  assert.equal(header(got, 'etag'), header(res, 'etag'));
  return res.body;
}

/** GET before, a failing PATCH, GET after: the resource must be byte-identical, ETag included. */
async function patchFails(
  path: string,
  status: number,
  scimType: string | undefined,
  ...ops: Record<string, unknown>[]
) {
  const before = await t.request('GET', `${BASE}/${path}`);
  assertScim(before, 200);
  const res = await patch(path, ...ops);
  assertError(res, status, scimType);
  const afterRes = await t.request('GET', `${BASE}/${path}`);
  assert.equal(afterRes.text, before.text, 'resource unchanged');
  assert.equal(header(afterRes, 'etag'), header(before, 'etag'));
  return res;
}

const memberIds = (g: Json): string[] =>
  ((g.members ?? []) as { value: string }[]).map((m) => m.value).sort();

async function threeUsersAndGroup(): Promise<{ u: Json[]; g: Json }> {
  const u = [];
  for (let i = 0; i < 3; i++) u.push(await createUser(t, { userName: uniq('member') }));
  const g = await createGroup(t, { displayName: uniq('grp'), members: u.map((x) => ({ value: x.id })) });
  return { u, g };
}

describe('PatchOp message validation', () => {
  test('without the PatchOp schema → 400 invalidSyntax', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    const res = await t.request('PATCH', `${BASE}/Users/${u.id}`, {
      body: { Operations: [{ op: 'replace', path: 'displayName', value: 'x' }] },
    });
    assertError(res, 400, 'invalidSyntax');
  });

  test('with an empty Operations array → 400 invalidSyntax', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    const res = await t.request('PATCH', `${BASE}/Users/${u.id}`, {
      body: { schemas: [PATCH_OP], Operations: [] },
    });
    assertError(res, 400, 'invalidSyntax');
  });

  test('an unknown op ("move") → 400 invalidSyntax', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    await patchFails(`Users/${u.id}`, 400, 'invalidSyntax', { op: 'move', path: 'displayName', value: 'x' });
  });

  test('remove without path → 400 noTarget', async () => {
    const u = await createUser(t, { userName: uniq('p'), displayName: 'd' });
    await patchFails(`Users/${u.id}`, 400, 'noTarget', { op: 'remove' });
  });

  test('an invalid path "emails[type eq" → 400 invalidPath (or invalidFilter for the filter part)', async () => {
    const u = await createUser(t, { userName: uniq('p'), emails: [{ value: 'a@b.c', type: 'work' }] });
    const res = await patchFails(`Users/${u.id}`, 400, undefined, {
      op: 'replace',
      path: 'emails[type eq',
      value: 'x',
    });
    assert.ok(['invalidPath', 'invalidFilter'].includes(res.body.scimType), res.body.scimType);
  });

  test('a path naming an unknown attribute → 400 invalidPath', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    await patchFails(`Users/${u.id}`, 400, 'invalidPath', {
      op: 'replace',
      path: 'noSuchAttribute',
      value: 'x',
    });
  });

  test('PATCH /Users/{unknown} → 404', async () => {
    assertError(
      await patch('Users/00000000-0000-0000-0000-000000000009', {
        op: 'replace',
        path: 'displayName',
        value: 'x',
      }),
      404,
    );
  });
});

describe('remove (RFC 7644 §3.5.2.2)', () => {
  test('members[value eq "x"] removes only member x', async () => {
    const { u, g } = await threeUsersAndGroup();
    const res = await patchOk(`Groups/${g.id}`, { op: 'remove', path: `members[value eq "${u[1].id}"]` });
    assert.deepEqual(memberIds(res), [u[0].id, u[2].id].sort());
  });

  test('members[value eq "not-a-member"] succeeds with no change (ETag unchanged)', async () => {
    const { u, g } = await threeUsersAndGroup();
    const before = await t.request('GET', `${BASE}/Groups/${g.id}`);
    const res = await patchOk(`Groups/${g.id}`, { op: 'remove', path: 'members[value eq "not-a-member"]' });
    assert.deepEqual(memberIds(res), u.map((x) => x.id).sort());
    assert.equal(res.meta.version, before.body.meta.version);
    assert.equal(res.meta.lastModified, before.body.meta.lastModified);
  });

  test('members (no filter) removes all members', async () => {
    const { g } = await threeUsersAndGroup();
    const res = await patchOk(`Groups/${g.id}`, { op: 'remove', path: 'members' });
    assert.equal('members' in res, false);
  });

  test('emails[type eq "work"] on the last email leaves emails absent, not []', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      emails: [{ value: 'w@example.com', type: 'work' }],
    });
    const res = await patchOk(`Users/${u.id}`, { op: 'remove', path: 'emails[type eq "work"]' });
    assert.equal('emails' in res, false);
  });

  test('addresses[type eq "work"].streetAddress removes only that sub-attribute', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      addresses: [
        { type: 'work', streetAddress: '100 Universal City Plaza', locality: 'Hollywood' },
        { type: 'home', streetAddress: '456 Hollywood Blvd', locality: 'Hollywood' },
      ],
    });
    const res = await patchOk(`Users/${u.id}`, {
      op: 'remove',
      path: 'addresses[type eq "work"].streetAddress',
    });
    assert.deepEqual(res.addresses, [
      { type: 'work', locality: 'Hollywood' },
      { type: 'home', streetAddress: '456 Hollywood Blvd', locality: 'Hollywood' },
    ]);
  });

  test('remove of userName (required) → 400 mutability; unchanged', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    await patchFails(`Users/${u.id}`, 400, 'mutability', { op: 'remove', path: 'userName' });
  });

  test('remove of a single-valued attribute unassigns it', async () => {
    const u = await createUser(t, { userName: uniq('p'), nickName: 'nick', title: 'T' });
    const res = await patchOk(`Users/${u.id}`, { op: 'remove', path: 'nickName' });
    assert.equal('nickName' in res, false);
    assert.equal(res.title, 'T');
  });
});

describe('add (RFC 7644 §3.5.2.1)', () => {
  test('add members appends; existing members retained', async () => {
    const { u, g } = await threeUsersAndGroup();
    const extra = await createUser(t, { userName: uniq('extra') });
    const res = await patchOk(`Groups/${g.id}`, { op: 'add', path: 'members', value: [{ value: extra.id }] });
    assert.deepEqual(memberIds(res), [...u.map((x) => x.id), extra.id].sort());
  });

  test('add of a member already present: 200, no duplicate, ETag and lastModified unchanged', async () => {
    const { u, g } = await threeUsersAndGroup();
    const before = await t.request('GET', `${BASE}/Groups/${g.id}`);
    await sleep(5);
    const res = await patchOk(`Groups/${g.id}`, { op: 'add', path: 'members', value: [{ value: u[0].id }] });
    assert.deepEqual(memberIds(res), u.map((x) => x.id).sort());
    assert.equal(res.meta.version, before.body.meta.version);
    assert.equal(res.meta.lastModified, before.body.meta.lastModified);
  });

  test('add of an identical email is no change (lastModified and ETag unchanged)', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      emails: [{ value: 'same@example.com', type: 'work' }],
    });
    await sleep(5);
    const res = await patchOk(`Users/${u.id}`, {
      op: 'add',
      path: 'emails',
      value: [{ value: 'same@example.com', type: 'work' }],
    });
    assert.deepEqual(res.emails, [{ value: 'same@example.com', type: 'work' }]);
    assert.equal(res.meta.version, u.meta.version);
    assert.equal(res.meta.lastModified, u.meta.lastModified);
  });

  test('add without path {"emails":[…],"nickName":"Babs"} appends the email and sets nickName', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      nickName: 'Old',
      emails: [{ value: 'a@example.com', type: 'work' }],
    });
    const res = await patchOk(`Users/${u.id}`, {
      op: 'add',
      value: { emails: [{ value: 'babs@jensen.org', type: 'home' }], nickName: 'Babs' },
    });
    assert.deepEqual(res.emails, [
      { value: 'a@example.com', type: 'work' },
      { value: 'babs@jensen.org', type: 'home' },
    ]);
    assert.equal(res.nickName, 'Babs');
  });

  test('add of <enterprise URN>:employeeNumber adds the extension URN to schemas', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    assert.deepEqual(u.schemas, [USER]);
    const res = await patchOk(`Users/${u.id}`, {
      op: 'add',
      path: `${ENTERPRISE}:employeeNumber`,
      value: '701984',
    });
    assert.deepEqual([...res.schemas].sort(), [ENTERPRISE, USER].sort());
    assert.deepEqual(res[ENTERPRISE], { employeeNumber: '701984' });
  });

  test('path <enterprise URN>:manager (URN with dots) resolves to the manager attribute', async () => {
    const boss = await createUser(t, { userName: uniq('boss') });
    const u = await createUser(t, { userName: uniq('p') });
    const res = await patchOk(`Users/${u.id}`, {
      op: 'add',
      path: `${ENTERPRISE}:manager`,
      value: { value: boss.id },
    });
    assert.equal(res[ENTERPRISE].manager.value, boss.id);
  });

  test('ops apply in order: add then remove of the same value ends with the value absent', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      emails: [{ value: 'keep@example.com', type: 'work' }],
    });
    const res = await patchOk(
      `Users/${u.id}`,
      { op: 'add', path: 'emails', value: [{ value: 'tmp@example.com', type: 'home' }] },
      { op: 'remove', path: 'emails[value eq "tmp@example.com"]' },
    );
    assert.deepEqual(res.emails, [{ value: 'keep@example.com', type: 'work' }]);
  });

  test('setting primary true on one email sets primary false on the others', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      emails: [
        { value: 'one@example.com', type: 'work', primary: true },
        { value: 'two@example.com', type: 'home' },
      ],
    });
    const res = await patchOk(`Users/${u.id}`, {
      op: 'replace',
      path: 'emails[type eq "home"].primary',
      value: true,
    });
    const byValue = Object.fromEntries((res.emails as Json[]).map((e) => [e.value, e.primary === true]));
    assert.deepEqual(byValue, { 'one@example.com': false, 'two@example.com': true });
  });
});

describe('replace (RFC 7644 §3.5.2.3)', () => {
  test('replace members replaces the entire member list', async () => {
    const { g } = await threeUsersAndGroup();
    const n = await createUser(t, { userName: uniq('new') });
    const res = await patchOk(`Groups/${g.id}`, { op: 'replace', path: 'members', value: [{ value: n.id }] });
    assert.deepEqual(memberIds(res), [n.id]);
  });

  test('replace emails[type eq "work"].value changes only the work email value', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      emails: [
        { value: 'w@example.com', type: 'work', primary: true },
        { value: 'h@example.com', type: 'home' },
      ],
    });
    const res = await patchOk(`Users/${u.id}`, {
      op: 'replace',
      path: 'emails[type eq "work"].value',
      value: 'w2@example.com',
    });
    assert.deepEqual(res.emails, [
      { value: 'w2@example.com', type: 'work', primary: true },
      { value: 'h@example.com', type: 'home' },
    ]);
  });

  test('replace emails[type eq "none"] (no match) → 400 noTarget', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      emails: [{ value: 'w@example.com', type: 'work' }],
    });
    await patchFails(`Users/${u.id}`, 400, 'noTarget', {
      op: 'replace',
      path: 'emails[type eq "none"]',
      value: { value: 'x@example.com' },
    });
  });

  test('replace name with {"givenName":"X"} updates givenName and keeps familyName', async () => {
    const u = await createUser(t, {
      userName: uniq('p'),
      name: { givenName: 'Barbara', familyName: 'Jensen' },
    });
    const res = await patchOk(`Users/${u.id}`, { op: 'replace', path: 'name', value: { givenName: 'X' } });
    assert.deepEqual(res.name, { givenName: 'X', familyName: 'Jensen' });
  });

  test('replace on a missing single-valued attribute adds it', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    const res = await patchOk(`Users/${u.id}`, { op: 'replace', path: 'title', value: 'Chief' });
    assert.equal(res.title, 'Chief');
  });

  test('"Replace" (capitalised op) is accepted', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    const res = await patchOk(`Users/${u.id}`, { op: 'Replace', path: 'displayName', value: 'Cap' });
    assert.equal(res.displayName, 'Cap');
  });

  test('PATCH on id → 400 mutability; on meta.created → 400 mutability', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    await patchFails(`Users/${u.id}`, 400, 'mutability', { op: 'replace', path: 'id', value: 'other' });
    await patchFails(`Users/${u.id}`, 400, 'mutability', {
      op: 'replace',
      path: 'meta.created',
      value: '2000-01-01T00:00:00Z',
    });
  });

  test('replace of groups (readOnly) → 400 mutability', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    await patchFails(`Users/${u.id}`, 400, 'mutability', {
      op: 'add',
      path: 'groups',
      value: [{ value: 'g' }],
    });
  });

  test('a value of the wrong type → 400 invalidValue', async () => {
    const u = await createUser(t, { userName: uniq('p') });
    await patchFails(`Users/${u.id}`, 400, 'invalidValue', { op: 'replace', path: 'active', value: 42 });
  });

  test('replace userName with one another user holds (different case) → 409 uniqueness', async () => {
    const a = await createUser(t, { userName: uniq('holder') });
    const b = await createUser(t, { userName: uniq('p') });
    await patchFails(`Users/${b.id}`, 409, 'uniqueness', {
      op: 'replace',
      path: 'userName',
      value: a.userName.toUpperCase(),
    });
  });
});

describe('atomicity and responses', () => {
  test('a PATCH whose 2nd op fails leaves the resource byte-identical (GET before/after incl. ETag)', async () => {
    const u = await createUser(t, {
      userName: uniq('atomic'),
      displayName: 'Before',
      emails: [{ value: 'a@example.com', type: 'work' }],
    });
    await patchFails(
      `Users/${u.id}`,
      400,
      'noTarget',
      { op: 'replace', path: 'displayName', value: 'After' },
      { op: 'replace', path: 'emails[type eq "none"].value', value: 'x@example.com' },
    );
  });

  test('a group PATCH whose 2nd op fails leaves members unchanged', async () => {
    const { g } = await threeUsersAndGroup();
    const n = await createUser(t, { userName: uniq('n') });
    await patchFails(
      `Groups/${g.id}`,
      400,
      'mutability',
      { op: 'add', path: 'members', value: [{ value: n.id }] },
      { op: 'remove', path: 'displayName' },
    );
  });

  test("User PATCH response is 200 with the full resource (the server's choice for non-member changes); ETag changes; lastModified moves; created stays", async () => {
    const u = await createUser(t, { userName: uniq('resp') });
    await sleep(5);
    const res = await patch(`Users/${u.id}`, { op: 'add', path: 'nickName', value: 'N' });
    assertScim(res, 200);
    assert.equal(res.body.userName, u.userName);
    assert.equal(res.body.nickName, 'N');
    assert.equal(res.body.id, u.id);
    assert.notEqual(assertEtag(res), u.meta.version);
    assert.equal(res.body.meta.created, u.meta.created);
    assert.ok(Date.parse(res.body.meta.lastModified) > Date.parse(u.meta.lastModified));
  });

  test('PATCH with ?attributes=userName → 200 with only schemas, id, userName', async () => {
    const u = await createUser(t, { userName: uniq('proj') });
    const res = await t.request('PATCH', `${BASE}/Users/${u.id}?attributes=userName`, {
      body: patchBody({ op: 'replace', path: 'displayName', value: 'D' }),
    });
    assertScim(res, 200);
    assert.deepEqual(res.body, { schemas: [USER], id: u.id, userName: u.userName });
    assert.equal((await t.request('GET', `${BASE}/Users/${u.id}`)).body.displayName, 'D');
  });

  test('a member PATCH with ?attributes=displayName → 200 (not 204) with only those attributes', async () => {
    const { g } = await threeUsersAndGroup();
    const n = await createUser(t, { userName: uniq('n') });
    const res = await t.request('PATCH', `${BASE}/Groups/${g.id}?attributes=displayName`, {
      body: patchBody({ op: 'add', path: 'members', value: [{ value: n.id }] }),
    });
    assertScim(res, 200);
    assert.deepEqual(res.body, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      id: g.id,
      displayName: g.displayName,
    });
    assertEtag(res);
  });

  test('password set by PATCH is never returned', async () => {
    const u = await createUser(t, { userName: uniq('pw') });
    const res = await patchOk(`Users/${u.id}`, { op: 'replace', path: 'password', value: 'N3w-secret' });
    assert.equal(res.password, undefined);
  });
});

describe('real client bodies', () => {
  test('Entra ID: Replace active with "False" (string) → active false (boolean)', async () => {
    const u = await createUser(t, { userName: uniq('entra'), active: true });
    const res = await patchOk(`Users/${u.id}`, { op: 'Replace', path: 'active', value: 'False' });
    assert.equal(res.active, false);
  });

  test('Entra ID: Add members with a value array, then Remove members with a value array removes only those', async () => {
    const { u, g } = await threeUsersAndGroup();
    const extra = await createUser(t, { userName: uniq('extra') });
    let res = await patchOk(`Groups/${g.id}`, { op: 'Add', path: 'members', value: [{ value: extra.id }] });
    assert.equal(memberIds(res).length, 4);
    res = await patchOk(`Groups/${g.id}`, {
      op: 'Remove',
      path: 'members',
      value: [{ value: u[0].id }, { value: extra.id }],
    });
    assert.deepEqual(memberIds(res), [u[1].id, u[2].id].sort());
  });

  test('Entra ID: path-less Replace with dotted and URN keys', async () => {
    const u = await createUser(t, {
      userName: uniq('entra'),
      name: { givenName: 'A', familyName: 'B' },
      active: true,
    });
    const res = await patchOk(`Users/${u.id}`, {
      op: 'Replace',
      value: {
        'name.givenName': 'Grace',
        displayName: 'Grace B',
        active: 'False',
        [`${ENTERPRISE}:department`]: 'Engineering',
      },
    });
    assert.deepEqual(res.name, { givenName: 'Grace', familyName: 'B' });
    assert.equal(res.displayName, 'Grace B');
    assert.equal(res.active, false);
    assert.deepEqual(res[ENTERPRISE], { department: 'Engineering' });
    assert.deepEqual([...res.schemas].sort(), [ENTERPRISE, USER].sort());
  });

  test('Entra ID: Add emails[type eq "work"].value on a user without emails creates the work email', async () => {
    const u = await createUser(t, { userName: uniq('entra') });
    const res = await patchOk(`Users/${u.id}`, {
      op: 'Add',
      path: 'emails[type eq "work"].value',
      value: 'w@example.com',
    });
    assert.deepEqual(res.emails, [{ type: 'work', value: 'w@example.com' }]);
  });

  test('Entra ID: Add manager as a bare id string', async () => {
    const boss = await createUser(t, { userName: uniq('boss') });
    const u = await createUser(t, { userName: uniq('entra') });
    const res = await patchOk(`Users/${u.id}`, { op: 'Add', path: `${ENTERPRISE}:manager`, value: boss.id });
    assert.equal(res[ENTERPRISE].manager.value, boss.id);
  });

  test('Entra ID: Replace members [] empties the group', async () => {
    const { g } = await threeUsersAndGroup();
    const res = await patchOk(`Groups/${g.id}`, { op: 'Replace', path: 'members', value: [] });
    assert.equal('members' in res, false);
  });

  test('Okta: path-less replace echoing id with active false', async () => {
    const u = await createUser(t, { userName: uniq('okta'), active: true });
    const res = await patchOk(`Users/${u.id}`, { op: 'replace', value: { id: u.id, active: false } });
    assert.equal(res.active, false);
    assert.equal(res.id, u.id);
  });

  test('Okta: group rename echoing id, then remove members[value eq …]', async () => {
    const { u, g } = await threeUsersAndGroup();
    let res = await patchOk(`Groups/${g.id}`, {
      op: 'replace',
      value: { id: g.id, displayName: 'Okta Renamed' },
    });
    assert.equal(res.displayName, 'Okta Renamed');
    res = await patchOk(`Groups/${g.id}`, { op: 'remove', path: `members[value eq "${u[2].id}"]` });
    assert.deepEqual(memberIds(res), [u[0].id, u[1].id].sort());
  });

  test('path-less replace changing id to another value → 400 mutability', async () => {
    const u = await createUser(t, { userName: uniq('okta') });
    await patchFails(`Users/${u.id}`, 400, 'mutability', {
      op: 'replace',
      value: { id: 'different', active: false },
    });
  });
});
