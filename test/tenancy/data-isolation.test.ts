/**
 * Data isolation between tenants that hold look-alike data: A and B have Users with the same
 * userNames and Groups with the same displayNames (B has more of them). Every query, paging mode,
 * Bulk operation and write through A's endpoints must see and touch A's data only; B's rows
 * (resources, memberships, audit trail) are compared before and after. Runs on PGlite, and on
 * PostgreSQL when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
const BULK_REQ = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';

const A = 'tenant-a';
const B = 'tenant-b';
const A_USERS = ['alice', 'bob', 'carol', 'dave'];
const B_USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'aaron'];

let t: TestApp;
const token: Record<string, string> = {};
/** userName / displayName → id, per tenant. */
const ids: Record<string, Record<string, string>> = { [A]: {}, [B]: {} };

const enc = encodeURIComponent;

function req(tenant: string, method: string, path: string, body?: unknown): Promise<TestResponse> {
  return t.request(method, `/tenants/${tenant}/scim/v2${path}`, { token: token[tenant], body });
}

function expectStatus(res: TestResponse, status: number, what: string): void {
  assert.equal(res.status, status, `${what}: expected ${status}, got ${res.status}: ${res.text}`);
}

function expectError(res: TestResponse, status: number, scimType: string | undefined, what: string): void {
  expectStatus(res, status, what);
  assert.equal(res.body.status, String(status), `${what}: error body`);
  assert.equal(res.body.scimType, scimType, `${what}: scimType; ${res.body.detail}`);
}

const idsOf = (res: TestResponse): string[] =>
  ((res.body.Resources ?? []) as { id: string }[]).map((r) => r.id);
const aIds = (...names: string[]) => names.map((n) => ids[A][n]);

/** Everything tenant B has in the store: its resources, memberships and audit trail. */
async function snapshot(tenant: string): Promise<string> {
  const db = t.app.db;
  const resources = await db.query(
    'SELECT id, resource_type, external_id, version, created, last_modified, doc FROM resources WHERE tenant_id = $1 ORDER BY id',
    [tenant],
  );
  const members = await db.query(
    'SELECT group_id, member_id, member_type, display FROM group_members WHERE tenant_id = $1 ORDER BY group_id, member_id',
    [tenant],
  );
  const changes = await db.query('SELECT seq FROM changes WHERE tenant_id = $1 ORDER BY seq', [tenant]);
  return JSON.stringify({ resources: resources.rows, members: members.rows, changes: changes.rows });
}

/** Runs `fn` and asserts tenant B's data is exactly as before. */
async function bUnchanged(what: string, fn: () => Promise<void>): Promise<void> {
  const before = await snapshot(B);
  await fn();
  assert.equal(await snapshot(B), before, `${what}: tenant B's data changed`);
}

async function aResourceIds(): Promise<string[]> {
  const res = await t.app.db.query<{ id: string }>(
    'SELECT id FROM resources WHERE tenant_id = $1 ORDER BY id',
    [A],
  );
  return res.rows.map((r) => r.id);
}

before(async () => {
  t = await startTestApp();
  for (const tenant of [A, B]) {
    await t.app.admin.createTenant({ id: tenant });
    await t.app.admin.createClient(tenant, { id: 'admin', name: 'admin', scopes: ['admin'] });
    token[tenant] = (await t.app.admin.issueToken(tenant, 'admin')).token;
  }
  // B first, so A's rows are not simply the first ones in the table.
  for (const [tenant, names] of [
    [B, B_USERS],
    [A, A_USERS],
  ] as const) {
    for (const userName of names) {
      const res = await req(tenant, 'POST', '/Users', {
        schemas: [USER],
        userName,
        externalId: `ext-${userName}`,
      });
      expectStatus(res, 201, `create ${tenant} ${userName}`);
      ids[tenant][userName] = res.body.id;
    }
  }
  const groups: [string, string, string[]][] = [
    [B, 'staff', ['alice', 'erin']],
    [B, 'admins', ['bob', 'aaron']],
    [B, 'auditors', ['frank']],
    [A, 'staff', ['alice', 'bob']],
    [A, 'admins', ['carol']],
  ];
  for (const [tenant, displayName, members] of groups) {
    const res = await req(tenant, 'POST', '/Groups', {
      schemas: [GROUP],
      displayName,
      members: members.map((m) => ({ value: ids[tenant][m] })),
    });
    expectStatus(res, 201, `create ${tenant} group ${displayName}`);
    ids[tenant][displayName] = res.body.id;
  }
});

after(async () => {
  await t.close();
});

describe('reads through tenant A see only A', () => {
  test('filter userName eq', async () => {
    const res = await req(A, 'GET', `/Users?filter=${enc('userName eq "alice"')}`);
    expectStatus(res, 200, 'filter eq');
    assert.equal(res.body.totalResults, 1);
    assert.deepEqual(idsOf(res), aIds('alice'));
  });

  test('filter userName sw', async () => {
    const res = await req(A, 'GET', `/Users?filter=${enc('userName sw "a"')}`);
    expectStatus(res, 200, 'filter sw');
    assert.equal(res.body.totalResults, 1);
    assert.deepEqual(idsOf(res), aIds('alice'));
  });

  test('filter on Group displayName and on membership attributes', async () => {
    const staff = await req(A, 'GET', `/Groups?filter=${enc('displayName eq "staff"')}`);
    expectStatus(staff, 200, 'group filter');
    assert.deepEqual(idsOf(staff), aIds('staff'));

    const byMember = await req(A, 'GET', `/Groups?filter=${enc(`members.value eq "${ids[B].alice}"`)}`);
    expectStatus(byMember, 200, 'members.value of a B user');
    assert.equal(byMember.body.totalResults, 0);

    const byGroupName = await req(
      A,
      'GET',
      `/Users?filter=${enc('groups.display eq "staff"')}&sortBy=userName`,
    );
    expectStatus(byGroupName, 200, 'groups.display');
    assert.deepEqual(idsOf(byGroupName), aIds('alice', 'bob'));

    const byGroupId = await req(A, 'GET', `/Users?filter=${enc(`groups.value eq "${ids[B].staff}"`)}`);
    expectStatus(byGroupId, 200, 'groups.value of a B group');
    assert.equal(byGroupId.body.totalResults, 0);
  });

  test('sortBy userName', async () => {
    for (const order of ['ascending', 'descending']) {
      const res = await req(A, 'GET', `/Users?sortBy=userName&sortOrder=${order}`);
      expectStatus(res, 200, `sort ${order}`);
      assert.equal(res.body.totalResults, A_USERS.length);
      const expected = aIds(...A_USERS);
      assert.deepEqual(idsOf(res), order === 'ascending' ? expected : expected.reverse());
    }
  });

  test('index paging: totalResults is A’s, a startIndex beyond the end is empty', async () => {
    const seen: string[] = [];
    for (const startIndex of [1, 3]) {
      const res = await req(A, 'GET', `/Users?sortBy=userName&count=2&startIndex=${startIndex}`);
      expectStatus(res, 200, `page ${startIndex}`);
      assert.equal(res.body.totalResults, A_USERS.length, `totalResults at ${startIndex}`);
      assert.equal(res.body.startIndex, startIndex);
      assert.equal(res.body.itemsPerPage, 2);
      seen.push(...idsOf(res));
    }
    assert.deepEqual(seen, aIds(...A_USERS));
    for (const startIndex of [5, 8, 100]) {
      const res = await req(A, 'GET', `/Users?sortBy=userName&count=2&startIndex=${startIndex}`);
      expectStatus(res, 200, `beyond ${startIndex}`);
      assert.equal(res.body.totalResults, A_USERS.length);
      assert.equal(res.body.itemsPerPage, 0);
      assert.equal(res.body.Resources, undefined);
    }
  });

  test('cursor paging walks A’s Users only', async () => {
    const seen: string[] = [];
    let next: string | undefined = '';
    let pages = 0;
    while (next !== undefined) {
      const res = await req(A, 'GET', `/Users?sortBy=userName&count=2&cursor=${enc(next)}`);
      expectStatus(res, 200, `cursor page ${pages}`);
      assert.equal(res.body.totalResults, A_USERS.length);
      seen.push(...idsOf(res));
      next = res.body.nextCursor;
      pages += 1;
      assert.ok(pages <= 3, 'too many pages');
    }
    assert.deepEqual(seen, aIds(...A_USERS));
  });

  test('a cursor obtained on A and replayed on B → 400 invalidCursor', async () => {
    const first = await req(A, 'GET', `/Users?sortBy=userName&count=2&cursor=`);
    expectStatus(first, 200, 'first page');
    const cursor = first.body.nextCursor as string;
    assert.ok(cursor, 'a next cursor');
    const replay = await req(B, 'GET', `/Users?sortBy=userName&count=2&cursor=${enc(cursor)}`);
    expectError(replay, 400, 'invalidCursor', 'replay on B');
    const search = await req(B, 'POST', '/Users/.search', {
      schemas: [SEARCH],
      sortBy: 'userName',
      count: 2,
      cursor,
    });
    expectError(search, 400, 'invalidCursor', 'replay on B via .search');
  });

  test('/.search at the type and at the root', async () => {
    const typed = await req(A, 'POST', '/Users/.search', {
      schemas: [SEARCH],
      filter: 'userName sw "a" or userName eq "bob"',
      sortBy: 'userName',
    });
    expectStatus(typed, 200, 'type search');
    assert.deepEqual(idsOf(typed), aIds('alice', 'bob'));

    const root = await req(A, 'POST', '/.search', {
      schemas: [SEARCH],
      filter: 'displayName eq "staff" or userName eq "alice"',
    });
    expectStatus(root, 200, 'root search');
    assert.deepEqual(idsOf(root).sort(), aIds('alice', 'staff').sort());
    assert.equal(root.body.totalResults, 2);

    const all = await req(A, 'POST', '/.search', { schemas: [SEARCH], count: 1000 });
    expectStatus(all, 200, 'root search, everything');
    const expected = await aResourceIds();
    assert.equal(all.body.totalResults, expected.length);
    assert.deepEqual(idsOf(all).sort(), expected);
  });

  test('root GET', async () => {
    const res = await req(A, 'GET', '/?count=1000');
    expectStatus(res, 200, 'root GET');
    const expected = await aResourceIds();
    assert.equal(res.body.totalResults, expected.length);
    assert.deepEqual(idsOf(res).sort(), expected);

    const filtered = await req(A, 'GET', `/?filter=${enc('userName eq "erin"')}`);
    expectStatus(filtered, 200, 'root GET for a B-only userName');
    assert.equal(filtered.body.totalResults, 0);
  });

  test('members and groups of A’s resources are A’s', async () => {
    const staff = await req(A, 'GET', `/Groups/${ids[A].staff}`);
    expectStatus(staff, 200, 'A staff');
    assert.deepEqual(
      (staff.body.members as { value: string }[]).map((m) => m.value).sort(),
      aIds('alice', 'bob').sort(),
    );
    const alice = await req(A, 'GET', `/Users/${ids[A].alice}`);
    expectStatus(alice, 200, 'A alice');
    assert.deepEqual(
      (alice.body.groups as { value: string }[]).map((g) => g.value),
      aIds('staff'),
    );
  });
});

describe('writes through tenant A never touch B', () => {
  test('GET/PUT/PATCH/DELETE of B’s Users and Groups through A → 404, B unchanged', async () => {
    await bUnchanged('by-id requests', async () => {
      for (const [endpoint, name, body, patch] of [
        [
          'Users',
          'alice',
          { schemas: [USER], userName: 'alice', displayName: 'Hijacked' },
          { op: 'replace', path: 'displayName', value: 'Hijacked' },
        ],
        ['Groups', 'staff', { schemas: [GROUP], displayName: 'staff' }, { op: 'remove', path: 'members' }],
      ] as const) {
        const path = `/${endpoint}/${ids[B][name]}`;
        expectError(await req(A, 'GET', path), 404, undefined, `GET ${path}`);
        expectError(await req(A, 'PUT', path, body), 404, undefined, `PUT ${path}`);
        expectError(
          await req(A, 'PATCH', path, { schemas: [PATCH_OP], Operations: [patch] }),
          404,
          undefined,
          `PATCH ${path}`,
        );
        expectError(await req(A, 'DELETE', path), 404, undefined, `DELETE ${path}`);
      }
    });
  });

  test('group membership naming B’s User → 400 invalidValue, nothing changes', async () => {
    const aBefore = await snapshot(A);
    await bUnchanged('membership', async () => {
      const member = [{ value: ids[B].erin }];
      expectError(
        await req(A, 'POST', '/Groups', { schemas: [GROUP], displayName: 'with-b', members: member }),
        400,
        'invalidValue',
        'POST group with B member',
      );
      expectError(
        await req(A, 'PATCH', `/Groups/${ids[A].staff}`, {
          schemas: [PATCH_OP],
          Operations: [{ op: 'add', path: 'members', value: member }],
        }),
        400,
        'invalidValue',
        'PATCH add B member',
      );
      expectError(
        await req(A, 'PUT', `/Groups/${ids[A].staff}`, {
          schemas: [GROUP],
          displayName: 'staff',
          members: [{ value: ids[A].alice }, ...member],
        }),
        400,
        'invalidValue',
        'PUT with B member',
      );
    });
    assert.equal(await snapshot(A), aBefore, 'tenant A changed by refused writes');
  });

  test('Bulk: bulkId references resolve in A; PATCH/DELETE of B’s ids fail 404 per operation', async () => {
    let res: TestResponse | undefined;
    await bUnchanged('bulk', async () => {
      res = await req(A, 'POST', '/Bulk', {
        schemas: [BULK_REQ],
        Operations: [
          // userName "erin" exists only in B: uniqueness is per tenant.
          { method: 'POST', path: '/Users', bulkId: 'u1', data: { schemas: [USER], userName: 'erin' } },
          {
            method: 'POST',
            path: '/Groups',
            bulkId: 'g1',
            data: { schemas: [GROUP], displayName: 'auditors', members: [{ value: 'bulkId:u1' }] },
          },
          {
            method: 'PATCH',
            path: `/Users/${ids[B].alice}`,
            data: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'x' }] },
          },
          { method: 'PUT', path: `/Groups/${ids[B].staff}`, data: { schemas: [GROUP], displayName: 'x' } },
          { method: 'DELETE', path: `/Users/${ids[B].bob}` },
          { method: 'DELETE', path: `/Groups/${ids[B].admins}` },
          {
            method: 'PATCH',
            path: `/Groups/${ids[A].admins}`,
            data: {
              schemas: [PATCH_OP],
              Operations: [{ op: 'add', path: 'members', value: [{ value: ids[B].frank }] }],
            },
          },
        ],
      });
    });
    assert.ok(res);
    expectStatus(res, 200, 'bulk');
    const ops = res.body.Operations as {
      status: string;
      location?: string;
      response?: { scimType?: string };
    }[];
    assert.deepEqual(
      ops.map((o) => o.status),
      ['201', '201', '404', '404', '404', '404', '400'],
    );
    assert.equal(ops[6].response?.scimType, 'invalidValue');
    const erin = ops[0].location!;
    const erinId = erin.slice(erin.lastIndexOf('/') + 1);
    assert.ok(erin.startsWith(`http://scimd.test/tenants/${A}/scim/v2/Users/`), erin);
    const groupLoc = ops[1].location!;
    const group = await req(A, 'GET', `/Groups/${groupLoc.slice(groupLoc.lastIndexOf('/') + 1)}`);
    expectStatus(group, 200, 'bulk group');
    assert.deepEqual(
      (group.body.members as { value: string }[]).map((m) => m.value),
      [erinId],
    );
    assert.notEqual(erinId, ids[B].erin);
    const admins = await req(A, 'GET', `/Groups/${ids[A].admins}`);
    assert.deepEqual(
      (admins.body.members as { value: string }[]).map((m) => m.value),
      aIds('carol'),
    );
  });

  test('B still sees exactly its own data', async () => {
    const res = await req(B, 'GET', '/Users?sortBy=userName&count=100');
    expectStatus(res, 200, 'B users');
    assert.deepEqual(
      idsOf(res),
      [...B_USERS].sort().map((n) => ids[B][n]),
    );
    const groups = await req(B, 'GET', '/Groups?sortBy=displayName');
    assert.deepEqual(idsOf(groups), [ids[B].admins, ids[B].auditors, ids[B].staff]);
  });
});
