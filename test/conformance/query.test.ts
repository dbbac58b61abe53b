/**
 * Query: filter, sort, index paging, projection and /.search (RFC 7644 §3.4.2, §3.4.3, §3.9).
 *
 * The data set is created once; tests that create more resources sit in the last describe block
 * (node:test runs a file's tests in declaration order), so every count before it is exact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import {
  BASE,
  ENTERPRISE,
  GROUP,
  SEARCH,
  USER,
  assertError,
  assertEtag,
  assertList,
  assertScim,
  createGroup,
  createUser,
  enc,
  ids,
  patchBody,
  type Json,
} from './lib.ts';

let t: TestApp;
let bjensen: Json, jsmith: Json, alice: Json, zed: Json, bob: Json;
let admins: Json, staff: Json;
before(async () => {
  t = await startTestApp();
  bjensen = await createUser(t, {
    schemas: [USER, ENTERPRISE],
    userName: 'bjensen',
    name: { givenName: 'Barbara', familyName: 'Jensen' },
    emails: [
      { value: 'bjensen@example.com', type: 'work' },
      { value: 'babs@jensen.org', type: 'home' },
    ],
    title: 'Tour Guide',
    userType: 'Employee',
    nickName: 'b-nick',
    active: true,
    [ENTERPRISE]: { employeeNumber: '701984', department: 'Tour Operations' },
  });
  jsmith = await createUser(t, {
    userName: 'JSmith',
    emails: [{ value: 'jsmith@example.org', type: 'work' }],
    title: '',
    userType: 'Contractor',
    active: false,
  });
  alice = await createUser(t, {
    userName: 'alice',
    emails: [{ value: 'alice@example.com', type: 'home' }],
    userType: 'Employee',
    active: true,
  });
  zed = await createUser(t, {
    userName: 'Zed',
    emails: [
      { value: 'zed@other.com', type: 'work' },
      { value: 'zed@example.com', type: 'home' },
    ],
    userType: 'Intern',
    nickName: 'a-nick',
  });
  bob = await createUser(t, { userName: 'bob', userType: 'Employee' });
  admins = await createGroup(t, { displayName: 'Admins', members: [{ value: bjensen.id }] });
  staff = await createGroup(t, { displayName: 'Staff' });
});
after(async () => {
  await t.close();
});

const ALL = (): string[] => [bjensen.id, jsmith.id, alice.id, zed.id, bob.id];

async function list(path: string): Promise<TestResponse> {
  const res = await t.request('GET', `${BASE}${path}`);
  assertList(res);
  return res;
}

async function filterUsers(filter: string): Promise<string[]> {
  const res = await list(`/Users?filter=${enc(filter)}`);
  const got = ids(res);
  assert.equal(res.body.totalResults, got.length);
  return got.sort();
}

const sorted = (xs: string[]): string[] => [...xs].sort();

async function badFilter(filter: string, token: RegExp | string): Promise<void> {
  const res = await t.request('GET', `${BASE}/Users?filter=${enc(filter)}`);
  assertError(res, 400, 'invalidFilter');
  if (typeof token === 'string')
    assert.ok(res.body.detail.includes(token), `detail "${res.body.detail}" names ${token}`);
  else assert.match(res.body.detail, token);
}

/** An instant written with a fixed UTC offset, e.g. +05:00, with milliseconds. */
function withOffset(ms: number, offsetMinutes: number): string {
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 23);
  const sign = offsetMinutes >= 0 ? '+' : '-';
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

describe('filter (RFC 7644 §3.4.2.2)', () => {
  test('no match → 200 with totalResults 0, never 404', async () => {
    const res = await list(`/Users?filter=${enc('userName eq "nobody"')}`);
    assert.equal(res.body.totalResults, 0);
    assert.ok(res.body.Resources === undefined || res.body.Resources.length === 0);
  });

  test('operator and value are case-insensitive for a caseExact=false attribute: userName Eq "BJENSEN"', async () => {
    assert.deepEqual(await filterUsers('userName Eq "BJENSEN"'), [bjensen.id]);
  });

  test('attribute names are case-insensitive: Username eq "bjensen"', async () => {
    assert.deepEqual(await filterUsers('Username eq "bjensen"'), [bjensen.id]);
  });

  test('complex value filter emails[type eq "work" and value co "@example.com"] matches within one value', async () => {
    assert.deepEqual(await filterUsers('emails[type eq "work" and value co "@example.com"]'), [bjensen.id]);
  });

  test('emails.value co "example.org" matches if any value matches', async () => {
    assert.deepEqual(await filterUsers('emails.value co "example.org"'), [jsmith.id]);
  });

  test('an or-chain of eq on one attribute (compiled as one IN list): case rules, absent values, negation', async () => {
    // userName is caseExact=false: any spelling matches; an unknown value matches nothing.
    assert.deepEqual(
      await filterUsers('userName eq "BJENSEN" or userName eq "jsmith" or userName eq "nobody"'),
      sorted([bjensen.id, jsmith.id]),
    );
    // id is caseExact: another spelling of an id is another id.
    assert.deepEqual(await filterUsers(`id eq "${alice.id}" or id eq "${String(bob.id).toUpperCase()}"`), [
      alice.id,
    ]);
    // nickName is absent on most users: they match neither the chain nor (NOT NULL) its negation's opposite.
    assert.deepEqual(
      await filterUsers('nickName eq "A-NICK" or nickName eq "b-nick"'),
      sorted([bjensen.id, zed.id]),
    );
    assert.deepEqual(
      await filterUsers('not (nickName eq "a-nick" or nickName eq "b-nick")'),
      sorted([jsmith.id, alice.id, bob.id]),
    );
    // A chain mixing attributes or operators keeps the general form, with the same answers.
    assert.deepEqual(
      await filterUsers('userName eq "alice" or userType eq "Intern" or userName sw "bo"'),
      sorted([alice.id, zed.id, bob.id]),
    );
  });

  test('not (userName eq "bjensen")', async () => {
    assert.deepEqual(
      await filterUsers('not (userName eq "bjensen")'),
      sorted([jsmith.id, alice.id, zed.id, bob.id]),
    );
  });

  test('userType ne "Employee" and not (emails co "example.org")', async () => {
    assert.deepEqual(await filterUsers('userType ne "Employee" and not (emails co "example.org")'), [zed.id]);
  });

  test('"and" binds tighter than "or"', async () => {
    assert.deepEqual(await filterUsers('userName eq "alice" or userName eq "bob" and userType eq "Intern"'), [
      alice.id,
    ]);
    assert.deepEqual(
      await filterUsers('(userName eq "alice" or userName eq "bob") and userType eq "Employee"'),
      sorted([alice.id, bob.id]),
    );
  });

  test('boolean eq: active eq false', async () => {
    assert.deepEqual(await filterUsers('active eq false'), [jsmith.id]);
  });

  test('sw, ew, co on a case-insensitive attribute', async () => {
    assert.deepEqual(await filterUsers('userName sw "j"'), [jsmith.id]);
    assert.deepEqual(await filterUsers('userName ew "ED"'), [zed.id]);
    assert.deepEqual(await filterUsers('userName co "JENS"'), [bjensen.id]);
  });

  test('gt/ge/lt/le on strings compare lexicographically', async () => {
    assert.deepEqual(await filterUsers('userName lt "b"'), [alice.id]);
    assert.deepEqual(await filterUsers('userName ge "x"'), [zed.id]);
  });

  test('meta.lastModified gt "2011-05-13T04:42:34Z" matches every user', async () => {
    assert.deepEqual(await filterUsers('meta.lastModified gt "2011-05-13T04:42:34Z"'), sorted(ALL()));
  });

  test('dateTime comparisons are chronological, honouring UTC offsets', async () => {
    const at = Date.parse(alice.meta.created);
    // One minute earlier, written at +05:00: chronologically earlier, lexicographically later.
    const earlier = withOffset(at - 60_000, 300);
    assert.deepEqual(await filterUsers(`id eq "${alice.id}" and meta.created gt "${earlier}"`), [alice.id]);
    // One minute later, written at -05:00: chronologically later, lexicographically earlier.
    const later = withOffset(at + 60_000, -300);
    assert.deepEqual(await filterUsers(`id eq "${alice.id}" and meta.created gt "${later}"`), []);
    assert.deepEqual(await filterUsers(`id eq "${alice.id}" and meta.created lt "${later}"`), [alice.id]);
  });

  test('title pr excludes "" and absent values', async () => {
    assert.deepEqual(await filterUsers('title pr'), [bjensen.id]);
  });

  test('fully qualified attribute: urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', async () => {
    assert.deepEqual(await filterUsers(`${USER}:userName sw "J"`), [jsmith.id]);
  });

  test('extension attribute: <enterprise URN>:employeeNumber eq "701984"', async () => {
    assert.deepEqual(await filterUsers(`${ENTERPRISE}:employeeNumber eq "701984"`), [bjensen.id]);
  });

  test('id eq is case-exact', async () => {
    assert.deepEqual(await filterUsers(`id eq "${bob.id}"`), [bob.id]);
    if (bob.id.toUpperCase() !== bob.id)
      assert.deepEqual(await filterUsers(`id eq "${bob.id.toUpperCase()}"`), []);
  });

  test('filter on /Groups: displayName eq "admins" (caseExact false)', async () => {
    const res = await list(`/Groups?filter=${enc('displayName eq "admins"')}`);
    assert.deepEqual(ids(res), [admins.id]);
  });

  test('root query ?filter=meta.resourceType eq "Group" returns only groups', async () => {
    const res = await list(`/?filter=${enc('meta.resourceType eq "Group"')}`);
    assert.deepEqual(sorted(ids(res)), sorted([admins.id, staff.id]));
    for (const r of res.body.Resources as Json[]) assert.deepEqual(r.schemas, [GROUP]);
  });

  test('root query: an attribute absent from a type evaluates as no value (userName matches only users)', async () => {
    const res = await list(`/?filter=${enc('userName eq "bjensen" or displayName eq "Staff"')}`);
    assert.deepEqual(sorted(ids(res)), sorted([bjensen.id, staff.id]));
  });
});

describe('bad filters → 400 invalidFilter naming the offending token', () => {
  test('active gt true (ordering on a boolean)', async () => {
    await badFilter('active gt true', /gt|active/i);
  });
  test('userName regex "x" (unknown operator)', async () => {
    await badFilter('userName regex "x"', 'regex');
  });
  test('unknown attribute', async () => {
    await badFilter('nosuchattr eq "x"', 'nosuchattr');
  });
  test('unterminated string', async () => {
    const res = await t.request('GET', `${BASE}/Users?filter=${enc('userName eq "abc')}`);
    assertError(res, 400, 'invalidFilter');
  });
  test('missing comparison value', async () => {
    const res = await t.request('GET', `${BASE}/Users?filter=${enc('userName eq')}`);
    assertError(res, 400, 'invalidFilter');
  });
  test('unbalanced parenthesis', async () => {
    const res = await t.request('GET', `${BASE}/Users?filter=${enc('(userName eq "a"')}`);
    assertError(res, 400, 'invalidFilter');
  });
  test('"not" without parentheses', async () => {
    const res = await t.request('GET', `${BASE}/Users?filter=${enc('not userName eq "a"')}`);
    assertError(res, 400, 'invalidFilter');
  });
  test('single-quoted value', async () => {
    const res = await t.request('GET', `${BASE}/Users?filter=${enc("userName eq 'a'")}`);
    assertError(res, 400, 'invalidFilter');
  });
});

describe('sort (RFC 7644 §3.4.2.3)', () => {
  test('sortBy=userName without sortOrder: ascending, case-insensitive', async () => {
    const res = await list('/Users?sortBy=userName');
    assert.deepEqual(ids(res), [alice.id, bjensen.id, bob.id, jsmith.id, zed.id]);
  });

  test('sortBy=userName&sortOrder=descending', async () => {
    const res = await list('/Users?sortBy=userName&sortOrder=descending');
    assert.deepEqual(ids(res), [zed.id, jsmith.id, bob.id, bjensen.id, alice.id]);
  });

  test('resources without the value sort last ascending and first descending', async () => {
    const asc = ids(await list('/Users?sortBy=nickName&sortOrder=ascending'));
    assert.deepEqual(asc.slice(0, 2), [zed.id, bjensen.id]);
    assert.deepEqual(sorted(asc.slice(2)), sorted([jsmith.id, alice.id, bob.id]));
    const desc = ids(await list('/Users?sortBy=nickName&sortOrder=descending'));
    assert.deepEqual(sorted(desc.slice(0, 3)), sorted([jsmith.id, alice.id, bob.id]));
    assert.deepEqual(desc.slice(3), [bjensen.id, zed.id]);
  });

  test('sortBy attribute name is case-insensitive', async () => {
    const res = await list('/Users?sortBy=USERNAME');
    assert.deepEqual(ids(res), [alice.id, bjensen.id, bob.id, jsmith.id, zed.id]);
  });
});

describe('index paging (RFC 7644 §3.4.2.4)', () => {
  test('a list response carries startIndex and itemsPerPage = Resources length', async () => {
    const res = await list('/Users');
    assert.equal(res.body.totalResults, 5);
    assert.equal(res.body.startIndex, 1);
    assert.equal(res.body.itemsPerPage, 5);
    assert.equal(res.body.Resources.length, 5);
  });

  test('startIndex=2&count=2 returns the 2nd and 3rd resources', async () => {
    const res = await list('/Users?sortBy=userName&startIndex=2&count=2');
    assert.equal(res.body.totalResults, 5);
    assert.equal(res.body.startIndex, 2);
    assert.equal(res.body.itemsPerPage, 2);
    assert.deepEqual(ids(res), [bjensen.id, bob.id]);
  });

  test('startIndex=0 behaves as 1', async () => {
    const a = await list('/Users?sortBy=userName&startIndex=0&count=2');
    const b = await list('/Users?sortBy=userName&startIndex=1&count=2');
    assert.equal(a.body.startIndex, 1);
    assert.deepEqual(a.body, b.body);
  });

  test('count=0 returns only totalResults', async () => {
    const res = await list('/Users?count=0');
    assert.equal(res.body.totalResults, 5);
    assert.ok(res.body.Resources === undefined || res.body.Resources.length === 0);
    assert.equal(res.body.itemsPerPage, 0);
  });

  test('count=-5 behaves as count=0', async () => {
    const a = await list('/Users?count=-5');
    const b = await list('/Users?count=0');
    assert.deepEqual(a.body, b.body);
  });

  test('never more than count resources', async () => {
    for (const count of [1, 3, 4]) {
      const res = await list(`/Users?count=${count}`);
      assert.equal(res.body.Resources.length, count);
      assert.equal(res.body.itemsPerPage, count);
      assert.equal(res.body.totalResults, 5);
    }
  });

  test('a startIndex past the end returns no resources and the right totalResults', async () => {
    const res = await list('/Users?startIndex=50');
    assert.equal(res.body.totalResults, 5);
    assert.ok(res.body.Resources === undefined || res.body.Resources.length === 0);
    assert.equal(res.body.itemsPerPage, 0);
    assert.equal(res.body.startIndex, 50);
  });

  test('paging with a filter: totalResults counts all matches', async () => {
    const res = await list(`/Users?filter=${enc('userType eq "Employee"')}&sortBy=userName&count=2`);
    assert.equal(res.body.totalResults, 3);
    assert.deepEqual(ids(res), [alice.id, bjensen.id]);
  });
});

describe('projection (RFC 7644 §3.4.2.5, §3.9)', () => {
  test('GET /Users/{id}?attributes=userName → exactly schemas, id, userName', async () => {
    const res = await t.request('GET', `${BASE}/Users/${bjensen.id}?attributes=userName`);
    assertScim(res, 200);
    assert.deepEqual(Object.keys(res.body).sort(), ['id', 'schemas', 'userName']);
    assert.equal(res.body.userName, 'bjensen');
    assertEtag(res);
  });

  test('attributes=name.givenName → name with only givenName', async () => {
    const res = await t.request('GET', `${BASE}/Users/${bjensen.id}?attributes=name.givenName`);
    assertScim(res, 200);
    assert.deepEqual(Object.keys(res.body).sort(), ['id', 'name', 'schemas']);
    assert.deepEqual(res.body.name, { givenName: 'Barbara' });
  });

  test('attributes=emails.value → every email with only its value', async () => {
    const res = await t.request('GET', `${BASE}/Users/${bjensen.id}?attributes=emails.value`);
    assertScim(res, 200);
    assert.deepEqual(res.body.emails, [{ value: 'bjensen@example.com' }, { value: 'babs@jensen.org' }]);
  });

  test('attribute names in attributes are case-insensitive', async () => {
    const res = await t.request('GET', `${BASE}/Users/${bjensen.id}?attributes=USERNAME,Name.GivenName`);
    assertScim(res, 200);
    assert.equal(res.body.userName, 'bjensen');
    assert.deepEqual(res.body.name, { givenName: 'Barbara' });
  });

  test('attributes=<extension URN>:employeeNumber returns just that extension attribute', async () => {
    const res = await t.request('GET', `${BASE}/Users/${bjensen.id}?attributes=${ENTERPRISE}:employeeNumber`);
    assertScim(res, 200);
    assert.deepEqual(Object.keys(res.body).sort(), ['id', 'schemas', ENTERPRISE].sort());
    assert.deepEqual(res.body[ENTERPRISE], { employeeNumber: '701984' });
  });

  test('attributes=<extension URN> returns the whole extension', async () => {
    const res = await t.request('GET', `${BASE}/Users/${bjensen.id}?attributes=${ENTERPRISE}`);
    assertScim(res, 200);
    assert.deepEqual(res.body[ENTERPRISE], { employeeNumber: '701984', department: 'Tour Operations' });
    assert.equal(res.body.userName, undefined);
  });

  test('excludedAttributes=id still returns id (returned always); excluded ones are gone', async () => {
    const res = await t.request('GET', `${BASE}/Users/${bjensen.id}?excludedAttributes=id,emails,name`);
    assertScim(res, 200);
    assert.equal(res.body.id, bjensen.id);
    assert.equal(res.body.emails, undefined);
    assert.equal(res.body.name, undefined);
    assert.equal(res.body.userName, 'bjensen');
    assert.equal(res.body.meta.resourceType, 'User');
    assert.equal(res.body.meta.created, bjensen.meta.created);
    assert.deepEqual(res.body[ENTERPRISE], bjensen[ENTERPRISE]);
  });

  test('password is never returned, even when asked for', async () => {
    const u = await t.request('GET', `${BASE}/Users/${bjensen.id}?attributes=password,userName`);
    assertScim(u, 200);
    assert.equal(u.body.password, undefined);
  });

  test('projection on a list applies to every resource', async () => {
    const res = await list(`/Users?attributes=userName&sortBy=userName`);
    assert.equal(res.body.Resources.length, 5);
    for (const r of res.body.Resources as Json[])
      assert.deepEqual(Object.keys(r).sort(), ['id', 'schemas', 'userName']);
    assert.deepEqual(
      (res.body.Resources as Json[]).map((r) => r.userName),
      ['alice', 'bjensen', 'bob', 'JSmith', 'Zed'],
    );
  });

  test('attributes and excludedAttributes together → 400 invalidSyntax', async () => {
    const res = await t.request(
      'GET',
      `${BASE}/Users/${bjensen.id}?attributes=userName&excludedAttributes=emails`,
    );
    assertError(res, 400, 'invalidSyntax');
    const l = await t.request('GET', `${BASE}/Users?attributes=userName&excludedAttributes=emails`);
    assertError(l, 400, 'invalidSyntax');
  });
});

describe('/.search (RFC 7644 §3.4.3)', () => {
  test('POST /Users/.search returns the same ListResponse as the equivalent GET', async () => {
    const filter = 'userType eq "Employee"';
    const get = await list(
      `/Users?filter=${enc(filter)}&attributes=userName,emails&sortBy=userName&startIndex=1&count=2`,
    );
    const res = await t.request('POST', `${BASE}/Users/.search`, {
      body: {
        schemas: [SEARCH],
        filter,
        attributes: ['userName', 'emails'],
        sortBy: 'userName',
        startIndex: 1,
        count: 2,
      },
    });
    assertList(res);
    assert.deepEqual(res.body, get.body);
    assert.deepEqual(ids(res), [alice.id, bjensen.id]);
  });

  test('/.search with excludedAttributes', async () => {
    const res = await t.request('POST', `${BASE}/Users/.search`, {
      body: { schemas: [SEARCH], filter: 'userName eq "bjensen"', excludedAttributes: ['emails', 'name'] },
    });
    assertList(res);
    const [r] = res.body.Resources as Json[];
    assert.equal(r.id, bjensen.id);
    assert.equal(r.emails, undefined);
    assert.equal(r.name, undefined);
    assert.equal(r.userName, 'bjensen');
  });

  test('/.search without the SearchRequest schema → 400 invalidSyntax', async () => {
    const res = await t.request('POST', `${BASE}/Users/.search`, {
      body: { filter: 'userName eq "bjensen"' },
    });
    assertError(res, 400, 'invalidSyntax');
  });

  test('/.search with attributes and excludedAttributes → 400 invalidSyntax', async () => {
    const res = await t.request('POST', `${BASE}/Users/.search`, {
      body: { schemas: [SEARCH], attributes: ['userName'], excludedAttributes: ['emails'] },
    });
    assertError(res, 400, 'invalidSyntax');
  });

  test('/.search with a bad filter → 400 invalidFilter', async () => {
    const res = await t.request('POST', `${BASE}/Users/.search`, {
      body: { schemas: [SEARCH], filter: 'userName xx "a"' },
    });
    assertError(res, 400, 'invalidFilter');
    assert.ok(res.body.detail.includes('xx'), res.body.detail);
  });

  test('root /.search returns Users and Groups, each with its own schemas', async () => {
    const res = await t.request('POST', `${BASE}/.search`, { body: { schemas: [SEARCH] } });
    assertList(res);
    assert.equal(res.body.totalResults, 7);
    const byId = new Map((res.body.Resources as Json[]).map((r) => [r.id, r]));
    assert.deepEqual(sorted([...byId.keys()]), sorted([...ALL(), admins.id, staff.id]));
    assert.deepEqual(byId.get(admins.id).schemas, [GROUP]);
    assert.equal(byId.get(admins.id).meta.resourceType, 'Group');
    assert.deepEqual([...byId.get(bjensen.id).schemas].sort(), [ENTERPRISE, USER].sort());
    assert.deepEqual(byId.get(bob.id).schemas, [USER]);
    assert.equal(byId.get(bob.id).meta.resourceType, 'User');
  });

  test('root /.search with meta.resourceType eq "Group" narrows to groups', async () => {
    const res = await t.request('POST', `${BASE}/.search`, {
      body: { schemas: [SEARCH], filter: 'meta.resourceType eq "Group"' },
    });
    assertList(res);
    assert.equal(res.body.totalResults, 2);
    assert.deepEqual(sorted(ids(res)), sorted([admins.id, staff.id]));
  });

  test('/Groups/.search', async () => {
    const res = await t.request('POST', `${BASE}/Groups/.search`, {
      body: { schemas: [SEARCH], filter: 'displayName sw "Sta"', attributes: ['displayName'] },
    });
    assertList(res);
    assert.deepEqual(res.body.Resources, [{ schemas: [GROUP], id: staff.id, displayName: 'Staff' }]);
  });
});

describe('projection on write responses (RFC 7644 §3.9) — creates resources, so it runs last', () => {
  test('POST /Users?attributes=userName → 201 with only schemas, id, userName; Location still set', async () => {
    const res = await t.request('POST', `${BASE}/Users?attributes=userName`, {
      body: { schemas: [USER], userName: 'proj-post', displayName: 'P', password: 'secret-Pw1' },
    });
    assertScim(res, 201);
    assert.deepEqual(Object.keys(res.body).sort(), ['id', 'schemas', 'userName']);
    assert.ok(
      typeof res.headers.location === 'string' && res.headers.location.endsWith(`/Users/${res.body.id}`),
    );
    const full = await t.request('GET', `${BASE}/Users/${res.body.id}`);
    assert.equal(full.body.displayName, 'P');
  });

  test('POST response never contains password', async () => {
    const res = await t.request('POST', `${BASE}/Users`, {
      body: { schemas: [USER], userName: 'proj-pw', password: 'secret-Pw1' },
    });
    assertScim(res, 201);
    assert.equal(res.body.password, undefined);
  });

  test('PUT ?excludedAttributes=emails → 200 without emails', async () => {
    const u = await createUser(t, { userName: 'proj-put', emails: [{ value: 'a@b.c' }] });
    const res = await t.request('PUT', `${BASE}/Users/${u.id}?excludedAttributes=emails`, {
      body: { schemas: [USER], userName: 'proj-put', emails: [{ value: 'x@y.z' }], password: 'secret-Pw2' },
    });
    assertScim(res, 200);
    assert.equal(res.body.emails, undefined);
    assert.equal(res.body.password, undefined);
    assert.equal(res.body.userName, 'proj-put');
    const full = await t.request('GET', `${BASE}/Users/${u.id}`);
    assert.deepEqual(full.body.emails, [{ value: 'x@y.z' }]);
  });

  test('PATCH ?attributes=displayName → 200 with only schemas, id, displayName', async () => {
    const u = await createUser(t, { userName: 'proj-patch' });
    const res = await t.request('PATCH', `${BASE}/Users/${u.id}?attributes=displayName`, {
      body: patchBody({ op: 'add', path: 'displayName', value: 'Patched' }),
    });
    assertScim(res, 200);
    assert.deepEqual(res.body, { schemas: [USER], id: u.id, displayName: 'Patched' });
  });
});
