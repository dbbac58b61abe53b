/**
 * Replacing with PUT (RFC 7644 §3.5.1; RFC 7643 §2.2 mutability).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  BASE,
  ENTERPRISE,
  GROUP,
  USER,
  assertError,
  assertEtag,
  assertScim,
  createGroup,
  createUser,
  header,
  sleep,
  total,
  uniq,
} from './lib.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t.close();
});

describe('PUT (RFC 7644 §3.5.1)', () => {
  test('PUT /Users/{unknown} → 404; PUT never creates', async () => {
    const before = await total(t, '/Users');
    const res = await t.request('PUT', `${BASE}/Users/00000000-0000-0000-0000-000000000001`, {
      body: { schemas: [USER], userName: uniq('upsert') },
    });
    assertError(res, 404);
    assert.equal(await total(t, '/Users'), before);
  });

  test('PUT with a new userName and no If-Match → 200 with the full resource, new ETag, same id and created', async () => {
    const u = await createUser(t, {
      userName: uniq('put'),
      displayName: 'Before',
      emails: [{ value: 'a@example.com' }],
    });
    await sleep(5);
    const newName = uniq('put-renamed');
    const res = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: {
        schemas: [USER],
        userName: newName,
        displayName: 'After',
        emails: [{ value: 'b@example.com', type: 'work' }],
      },
    });
    assertScim(res, 200);
    const etag = assertEtag(res);
    assert.notEqual(etag, u.meta.version);
    assert.equal(res.body.id, u.id);
    assert.equal(res.body.userName, newName);
    assert.equal(res.body.displayName, 'After');
    assert.deepEqual(res.body.emails, [{ value: 'b@example.com', type: 'work' }]);
    assert.deepEqual(res.body.schemas, [USER]);
    assert.equal(res.body.meta.created, u.meta.created);
    assert.equal(res.body.meta.location, u.meta.location);
    assert.equal(res.body.meta.resourceType, 'User');
    assert.ok(Date.parse(res.body.meta.lastModified) > Date.parse(u.meta.lastModified), 'lastModified moves');
    const got = await t.request('GET', `${BASE}/Users/${u.id}`);
    assertScim(got, 200);
    assert.deepEqual(got.body, res.body);
    assert.equal(header(got, 'etag'), etag);
  });

  test('PUT omitting the required userName → 400 invalidValue; resource unchanged', async () => {
    const u = await createUser(t, { userName: uniq('req') });
    const res = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER], displayName: 'x' },
    });
    assertError(res, 400, 'invalidValue');
    const got = await t.request('GET', `${BASE}/Users/${u.id}`);
    assert.deepEqual(got.body, u);
  });

  test('PUT with readOnly id, meta, groups ignores them and succeeds', async () => {
    const u = await createUser(t, { userName: uniq('ro') });
    const res = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: {
        schemas: [USER],
        id: 'something-else',
        userName: u.userName,
        nickName: 'nick',
        meta: { created: '2000-01-01T00:00:00Z', resourceType: 'Group', version: 'W/"77"' },
        groups: [{ value: 'fake-group', display: 'Fake' }],
      },
    });
    assertScim(res, 200);
    assert.equal(res.body.id, u.id);
    assert.equal(res.body.nickName, 'nick');
    assert.equal(res.body.meta.created, u.meta.created);
    assert.equal(res.body.meta.resourceType, 'User');
    assert.notEqual(res.body.meta.version, 'W/"77"');
    assert.equal(res.body.groups, undefined);
  });

  test('PUT with "emails": [] clears emails; with "nickName": null clears nickName', async () => {
    const u = await createUser(t, {
      userName: uniq('clr'),
      nickName: 'n',
      emails: [{ value: 'c@example.com' }],
    });
    const res = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER], userName: u.userName, nickName: null, emails: [] },
    });
    assertScim(res, 200);
    assert.equal('emails' in res.body, false);
    assert.equal('nickName' in res.body, false);
    const got = await t.request('GET', `${BASE}/Users/${u.id}`);
    assert.equal('emails' in got.body, false);
    assert.equal('nickName' in got.body, false);
  });

  test('PUT to a userName another user holds (different case) → 409 uniqueness; unchanged', async () => {
    const a = await createUser(t, { userName: uniq('holder') });
    const b = await createUser(t, { userName: uniq('mover') });
    const res = await t.request('PUT', `${BASE}/Users/${b.id}`, {
      body: { schemas: [USER], userName: a.userName.toUpperCase() },
    });
    assertError(res, 409, 'uniqueness');
    assert.deepEqual((await t.request('GET', `${BASE}/Users/${b.id}`)).body, b);
  });

  test('PUT keeping the own userName with a case change succeeds (no self-conflict)', async () => {
    const u = await createUser(t, { userName: uniq('self') });
    const res = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER], userName: u.userName.toUpperCase() },
    });
    assertScim(res, 200);
    assert.equal(res.body.userName, u.userName.toUpperCase());
  });

  test('PUT password is accepted and never returned', async () => {
    const u = await createUser(t, { userName: uniq('pw') });
    const res = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER], userName: u.userName, password: 'n3w-Passw0rd' },
    });
    assertScim(res, 200);
    assert.equal(res.body.password, undefined);
    assert.equal((await t.request('GET', `${BASE}/Users/${u.id}`)).body.password, undefined);
  });

  test('PUT adds and removes the enterprise extension with its schemas entry', async () => {
    const u = await createUser(t, { userName: uniq('ext') });
    const withExt = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER, ENTERPRISE], userName: u.userName, [ENTERPRISE]: { costCenter: '4130' } },
    });
    assertScim(withExt, 200);
    assert.deepEqual([...withExt.body.schemas].sort(), [ENTERPRISE, USER].sort());
    assert.deepEqual(withExt.body[ENTERPRISE], { costCenter: '4130' });
    const without = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER], userName: u.userName },
    });
    assertScim(without, 200);
    assert.deepEqual(without.body.schemas, [USER]);
    assert.equal(without.body[ENTERPRISE], undefined);
  });

  test('PUT /Users/{groupId} → 404 (ids are per type)', async () => {
    const g = await createGroup(t, { displayName: uniq('g') });
    assertError(
      await t.request('PUT', `${BASE}/Users/${g.id}`, { body: { schemas: [USER], userName: uniq('x') } }),
      404,
    );
  });

  test('PUT /Groups/{id} replaces displayName and the member list', async () => {
    const u1 = await createUser(t, { userName: uniq('m1') });
    const u2 = await createUser(t, { userName: uniq('m2') });
    const g = await createGroup(t, { displayName: uniq('pg'), members: [{ value: u1.id }] });
    const res = await t.request('PUT', `${BASE}/Groups/${g.id}`, {
      body: { schemas: [GROUP], displayName: 'Renamed', members: [{ value: u2.id }] },
    });
    assertScim(res, 200);
    assert.equal(res.body.displayName, 'Renamed');
    assert.deepEqual(
      (res.body.members as { value: string }[]).map((m) => m.value),
      [u2.id],
    );
    const u1now = await t.request('GET', `${BASE}/Users/${u1.id}`);
    assert.equal(u1now.body.groups, undefined);
    const u2now = await t.request('GET', `${BASE}/Users/${u2.id}`);
    assert.deepEqual(
      (u2now.body.groups as { value: string }[]).map((x) => x.value),
      [g.id],
    );
  });

  test('PUT with an attribute of the wrong type → 400 invalidValue; unchanged', async () => {
    const u = await createUser(t, { userName: uniq('type') });
    const res = await t.request('PUT', `${BASE}/Users/${u.id}`, {
      body: { schemas: [USER], userName: u.userName, active: 'yes' },
    });
    assertError(res, 400, 'invalidValue');
    assert.deepEqual((await t.request('GET', `${BASE}/Users/${u.id}`)).body, u);
  });
});
