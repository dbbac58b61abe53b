/**
 * Create, read, delete (RFC 7644 §3.3, §3.4.1, §3.6; RFC 7643 §3.1 common attributes).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  BASE,
  ENTERPRISE,
  GROUP,
  ORIGIN,
  USER,
  assertError,
  assertEtag,
  assertList,
  assertScim,
  createGroup,
  createUser,
  enc,
  header,
  ids,
  patchBody,
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

const XSD_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

describe('create (RFC 7644 §3.3)', () => {
  test('POST /Users → 201; Location = meta.location; ETag = meta.version; created = lastModified', async () => {
    const userName = uniq('create');
    const res = await t.request('POST', `${BASE}/Users`, {
      body: {
        schemas: [USER],
        userName,
        name: { givenName: 'Barbara', familyName: 'Jensen' },
        emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }],
        externalId: 'ext-1',
        password: 't1meMa$heen',
      },
    });
    assertScim(res, 201);
    const u = res.body;
    assert.deepEqual(u.schemas, [USER]);
    assert.equal(typeof u.id, 'string');
    assert.ok(u.id.length > 0);
    assert.equal(u.userName, userName);
    assert.deepEqual(u.name, { givenName: 'Barbara', familyName: 'Jensen' });
    assert.deepEqual(u.emails, [{ value: 'bjensen@example.com', type: 'work', primary: true }]);
    assert.equal(u.externalId, 'ext-1');
    assert.equal(u.password, undefined, 'password is returned never');
    assert.equal(u.meta.resourceType, 'User');
    assert.equal(u.meta.location, `${ORIGIN}${BASE}/Users/${u.id}`);
    assert.equal(header(res, 'location'), u.meta.location);
    assertEtag(res);
    assert.match(u.meta.created, XSD_DATETIME);
    assert.equal(u.meta.created, u.meta.lastModified);
    assert.ok(Math.abs(Date.parse(u.meta.created) - Date.now()) < 60_000);
    assert.equal(u.groups, undefined, 'no groups: unassigned attributes are absent');
  });

  test('GET /Users/{id} returns exactly the representation POST returned, with the same ETag', async () => {
    const res = await t.request('POST', `${BASE}/Users`, {
      body: { schemas: [USER], userName: uniq('read'), displayName: 'Read Me', active: true },
    });
    assertScim(res, 201);
    const got = await t.request('GET', `${BASE}/Users/${res.body.id}`);
    assertScim(got, 200);
    assert.deepEqual(got.body, res.body);
    assert.equal(assertEtag(got), assertEtag(res));
  });

  test('id and meta in the POST body are ignored (readOnly, RFC 7643 §3.1)', async () => {
    const res = await t.request('POST', `${BASE}/Users`, {
      body: {
        schemas: [USER],
        id: 'client-chosen-id',
        userName: uniq('ro'),
        meta: {
          created: '2001-01-01T00:00:00Z',
          lastModified: '2001-01-01T00:00:00Z',
          version: 'W/"99"',
          resourceType: 'Group',
        },
      },
    });
    assertScim(res, 201);
    assert.notEqual(res.body.id, 'client-chosen-id');
    assert.notEqual(res.body.meta.created, '2001-01-01T00:00:00Z');
    assert.equal(res.body.meta.resourceType, 'User');
    assert.notEqual(res.body.meta.version, 'W/"99"');
    assertError(await t.request('GET', `${BASE}/Users/client-chosen-id`), 404);
  });

  test('null and [] in the POST body leave the attribute unassigned (absent)', async () => {
    const u = await createUser(t, { userName: uniq('nulls'), nickName: null, emails: [] });
    assert.equal('nickName' in u, false);
    assert.equal('emails' in u, false);
  });

  test('enterprise extension data is stored under its URN and the URN is listed in schemas', async () => {
    const u = await createUser(t, {
      schemas: [USER, ENTERPRISE],
      userName: uniq('ent'),
      [ENTERPRISE]: { employeeNumber: '701984', department: 'Tour Operations' },
    });
    assert.deepEqual([...u.schemas].sort(), [ENTERPRISE, USER].sort());
    assert.deepEqual(u[ENTERPRISE], { employeeNumber: '701984', department: 'Tour Operations' });
  });

  test('POST /Groups → 201 with meta.resourceType Group and Location /Groups/{id}', async () => {
    const res = await t.request('POST', `${BASE}/Groups`, {
      body: { schemas: [GROUP], displayName: uniq('g') },
    });
    assertScim(res, 201);
    assert.deepEqual(res.body.schemas, [GROUP]);
    assert.equal(res.body.meta.resourceType, 'Group');
    assert.equal(header(res, 'location'), `${ORIGIN}${BASE}/Groups/${res.body.id}`);
    assert.equal(res.body.meta.location, header(res, 'location'));
    assertEtag(res);
    assert.equal(res.body.members, undefined);
  });

  test('POST /Users without the required userName → 400 invalidValue, nothing stored', async () => {
    const before = await total(t, '/Users');
    assertError(
      await t.request('POST', `${BASE}/Users`, { body: { schemas: [USER], displayName: 'x' } }),
      400,
      'invalidValue',
    );
    assert.equal(await total(t, '/Users'), before);
  });
});

describe('uniqueness (RFC 7644 §3.3, RFC 7643 §7)', () => {
  test('userName differing only in case → 409 uniqueness; the store is unchanged', async () => {
    const name = uniq('Case');
    await createUser(t, { userName: name.toLowerCase() });
    const before = await total(t, '/Users');
    const res = await t.request('POST', `${BASE}/Users`, {
      body: { schemas: [USER], userName: name.toUpperCase() },
    });
    assertError(res, 409, 'uniqueness');
    assert.equal(await total(t, '/Users'), before);
  });

  test('the exact same userName → 409 uniqueness', async () => {
    const name = uniq('same');
    await createUser(t, { userName: name });
    assertError(
      await t.request('POST', `${BASE}/Users`, { body: { schemas: [USER], userName: name } }),
      409,
      'uniqueness',
    );
  });

  test('externalId values differing only in case may coexist; eq on externalId is case-exact', async () => {
    const ext = uniq('ExtId');
    const a = await createUser(t, { userName: uniq('ea'), externalId: ext });
    const b = await createUser(t, { userName: uniq('eb'), externalId: ext.toLowerCase() });
    assert.notEqual(a.id, b.id);
    const res = await t.request('GET', `${BASE}/Users?filter=${enc(`externalId eq "${ext}"`)}`);
    assertList(res);
    assert.deepEqual(ids(res), [a.id]);
    assert.equal(res.body.totalResults, 1);
  });

  test('the same externalId twice is allowed (the server does not enforce its uniqueness)', async () => {
    const ext = uniq('dupext');
    await createUser(t, { userName: uniq('d1'), externalId: ext });
    await createUser(t, { userName: uniq('d2'), externalId: ext });
  });
});

describe('read (RFC 7644 §3.4.1)', () => {
  test('GET /Users/{unknown} → 404 with a SCIM error body', async () => {
    const res = await t.request('GET', `${BASE}/Users/00000000-0000-0000-0000-000000000000`);
    assertError(res, 404);
  });

  test('GET /Users/{not-a-uuid-shaped-id} → 404 (not 400 or 500)', async () => {
    assertError(await t.request('GET', `${BASE}/Users/not%20an%20id`), 404);
  });

  test('ids are unique across resource types; a User id is not a Group', async () => {
    const u = await createUser(t, { userName: uniq('x') });
    const g = await createGroup(t, { displayName: uniq('x') });
    assert.notEqual(u.id, g.id);
    assertError(await t.request('GET', `${BASE}/Groups/${u.id}`), 404);
    assertError(await t.request('GET', `${BASE}/Users/${g.id}`), 404);
    assertError(await t.request('DELETE', `${BASE}/Groups/${u.id}`), 404);
    await t.request('GET', `${BASE}/Users/${u.id}`).then((r) => assertScim(r, 200));
  });

  test('id is case-exact: the upper-cased id of an existing user is not found', async () => {
    const u = await createUser(t, { userName: uniq('idcase') });
    const upper = u.id.toUpperCase();
    if (upper !== u.id) assertError(await t.request('GET', `${BASE}/Users/${upper}`), 404);
  });
});

describe('delete (RFC 7644 §3.6)', () => {
  test('DELETE → 204 with an empty body; afterwards GET, PUT, PATCH, DELETE → 404', async () => {
    const u = await createUser(t, { userName: uniq('del') });
    const del = await t.request('DELETE', `${BASE}/Users/${u.id}`);
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assertError(await t.request('GET', `${BASE}/Users/${u.id}`), 404);
    assertError(
      await t.request('PUT', `${BASE}/Users/${u.id}`, { body: { schemas: [USER], userName: u.userName } }),
      404,
    );
    assertError(
      await t.request('PATCH', `${BASE}/Users/${u.id}`, {
        body: patchBody({ op: 'replace', path: 'displayName', value: 'x' }),
      }),
      404,
    );
    assertError(await t.request('DELETE', `${BASE}/Users/${u.id}`), 404);
  });

  test('a deleted user is gone from /Users and root queries', async () => {
    const u = await createUser(t, { userName: uniq('gone') });
    assert.equal((await t.request('DELETE', `${BASE}/Users/${u.id}`)).status, 204);
    const f = enc(`userName eq "${u.userName}"`);
    const list = await t.request('GET', `${BASE}/Users?filter=${f}`);
    assertList(list);
    assert.equal(list.body.totalResults, 0);
    const root = await t.request('GET', `${BASE}/?filter=${f}`);
    assertList(root);
    assert.equal(root.body.totalResults, 0);
    const byId = await t.request('GET', `${BASE}/Users?filter=${enc(`id eq "${u.id}"`)}`);
    assertList(byId);
    assert.equal(byId.body.totalResults, 0);
  });

  test("a deleted user's userName can be reused; the new user gets a new id", async () => {
    const name = uniq('reuse');
    const u = await createUser(t, { userName: name });
    assert.equal((await t.request('DELETE', `${BASE}/Users/${u.id}`)).status, 204);
    const again = await createUser(t, { userName: name.toUpperCase() });
    assert.notEqual(again.id, u.id);
    assertError(await t.request('GET', `${BASE}/Users/${u.id}`), 404);
  });

  test('DELETE /Groups/{id} → 204, then 404', async () => {
    const g = await createGroup(t, { displayName: uniq('dg') });
    const del = await t.request('DELETE', `${BASE}/Groups/${g.id}`);
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assertError(await t.request('GET', `${BASE}/Groups/${g.id}`), 404);
  });
});
