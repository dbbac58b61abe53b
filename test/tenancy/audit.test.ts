/**
 * The audit trail: every successful write records one row per changed resource (tenant, client,
 * operation, resource type and id, version = the resource's ETag, time); writes that change
 * nothing or fail record nothing; the admin API lists the rows with filters and paging.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const BULK_REQ = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';

const T = 'audited';
const OTHER = 'other';
const AUDIT = `/admin/v1/tenants/${T}/audit`;

interface Entry {
  seq: number;
  at: string;
  client?: string;
  operation: string;
  resourceType: string;
  resourceId: string;
  version?: string;
}
type Expected = Pick<Entry, 'client' | 'operation' | 'resourceType' | 'resourceId' | 'version'>;

let t: TestApp;
const tokens: Record<string, string> = {};
let lastSeq = 0;

function expectStatus(res: TestResponse, status: number, what: string): void {
  assert.equal(res.status, status, `${what}: expected ${status}, got ${res.status}: ${res.text}`);
}

function req(client: string, method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  return t.request(method, `/tenants/${T}/scim/v2${path}`, { token: tokens[client], body, headers });
}

const patch = (...ops: unknown[]) => ({ schemas: [PATCH_OP], Operations: ops });

async function allEntries(): Promise<Entry[]> {
  const res = await t.request('GET', `${AUDIT}?count=1000`);
  expectStatus(res, 200, 'audit list');
  return res.body.entries;
}

/**
 * Runs a write (or several) and asserts the audit rows it added, in order: exactly `expected`,
 * each of tenant T and timed within the call.
 */
async function expectAudit(what: string, expected: Expected[] | (() => Expected[]), fn: () => Promise<void>) {
  const start = Date.now();
  await fn();
  const end = Date.now();
  const added = (await allEntries()).filter((e) => e.seq > lastSeq);
  const want = typeof expected === 'function' ? expected() : expected;
  assert.deepEqual(
    added.map(({ client, operation, resourceType, resourceId, version }) => ({
      client,
      operation,
      resourceType,
      resourceId,
      version,
    })),
    want.map(({ client, operation, resourceType, resourceId, version }) => ({
      client,
      operation,
      resourceType,
      resourceId,
      version,
    })),
    `${what}: audit rows`,
  );
  for (const e of added) {
    const at = Date.parse(e.at);
    assert.ok(
      at >= start && at <= end,
      `${what}: at ${e.at} outside [${new Date(start).toISOString()}, ${new Date(end).toISOString()}]`,
    );
    const row = await t.app.db.query<{ tenant_id: string }>('SELECT tenant_id FROM changes WHERE seq = $1', [
      e.seq,
    ]);
    assert.equal(row.rows[0].tenant_id, T, `${what}: tenant of row ${e.seq}`);
  }
  if (added.length) lastSeq = added[added.length - 1].seq;
}

/** Skips the rows written so far (by fixtures of the next check). */
async function checkpoint(): Promise<void> {
  lastSeq = (await allEntries()).at(-1)?.seq ?? 0;
}

const etag = (res: TestResponse) => {
  const v = res.headers.etag;
  assert.ok(v, `ETag missing: ${res.status} ${res.text}`);
  return v;
};
const nextVersion = (tag: string) => `W/"${Number(/^W\/"(\d+)"$/.exec(tag)![1]) + 1}"`;

before(async () => {
  t = await startTestApp();
  for (const tenant of [T, OTHER]) await t.app.admin.createTenant({ id: tenant });
  await t.app.admin.createClient(T, { id: 'writer-1', name: 'w1', scopes: ['scim:read', 'scim:write'] });
  await t.app.admin.createClient(T, { id: 'writer-2', name: 'w2', scopes: ['admin'] });
  await t.app.admin.createClient(T, { id: 'reader', name: 'r', scopes: ['scim:read'] });
  await t.app.admin.createClient(OTHER, { id: 'writer-1', name: 'other w1', scopes: ['admin'] });
  for (const c of ['writer-1', 'writer-2', 'reader']) tokens[c] = (await t.app.admin.issueToken(T, c)).token;
  tokens.other = (await t.app.admin.issueToken(OTHER, 'writer-1')).token;
});

after(async () => {
  await t.close();
});

const ids: Record<string, string> = {};
const tags: Record<string, string> = {};

describe('writes are recorded', () => {
  test('POST, PUT, PATCH and DELETE of a User', async () => {
    let res!: TestResponse;
    await expectAudit(
      'POST',
      () => [
        {
          client: 'writer-1',
          operation: 'create',
          resourceType: 'User',
          resourceId: ids.alice,
          version: tags.alice,
        },
      ],
      async () => {
        res = await req('writer-1', 'POST', '/Users', { schemas: [USER], userName: 'alice' });
        expectStatus(res, 201, 'POST');
        ids.alice = res.body.id;
        tags.alice = etag(res);
        assert.equal(res.body.meta.version, tags.alice);
      },
    );
    const created = (await allEntries()).find((e) => e.resourceId === ids.alice)!;
    assert.equal(Date.parse(created.at), Date.parse(res.body.meta.lastModified), 'at = meta.lastModified');

    await expectAudit(
      'PUT',
      () => [
        {
          client: 'writer-2',
          operation: 'replace',
          resourceType: 'User',
          resourceId: ids.alice,
          version: tags.alice,
        },
      ],
      async () => {
        res = await req('writer-2', 'PUT', `/Users/${ids.alice}`, {
          schemas: [USER],
          userName: 'alice',
          displayName: 'Alice',
        });
        expectStatus(res, 200, 'PUT');
        tags.alice = etag(res);
      },
    );
    await expectAudit(
      'PATCH',
      () => [
        {
          client: 'writer-1',
          operation: 'patch',
          resourceType: 'User',
          resourceId: ids.alice,
          version: tags.alice,
        },
      ],
      async () => {
        res = await req(
          'writer-1',
          'PATCH',
          `/Users/${ids.alice}`,
          patch({ op: 'replace', path: 'title', value: 'CEO' }),
        );
        expectStatus(res, 200, 'PATCH');
        tags.alice = etag(res);
      },
    );

    const bob = await req('writer-1', 'POST', '/Users', { schemas: [USER], userName: 'bob' });
    expectStatus(bob, 201, 'bob');
    await checkpoint();
    await expectAudit(
      'DELETE',
      [
        {
          client: 'writer-2',
          operation: 'delete',
          resourceType: 'User',
          resourceId: bob.body.id,
          version: nextVersion(etag(bob)),
        },
      ],
      async () => {
        expectStatus(await req('writer-2', 'DELETE', `/Users/${bob.body.id}`), 204, 'DELETE');
      },
    );
  });

  test('a PATCH or PUT that changes nothing records nothing and keeps the ETag', async () => {
    await expectAudit('no-op writes', [], async () => {
      const p = await req(
        'writer-1',
        'PATCH',
        `/Users/${ids.alice}`,
        patch({ op: 'replace', path: 'title', value: 'CEO' }),
      );
      expectStatus(p, 200, 'no-op PATCH');
      assert.equal(etag(p), tags.alice);
      const add = await req(
        'writer-1',
        'PATCH',
        `/Users/${ids.alice}`,
        patch({ op: 'add', value: { displayName: 'Alice' } }),
      );
      expectStatus(add, 200, 'no-op PATCH add');
      assert.equal(etag(add), tags.alice);
      const current = await req('writer-1', 'GET', `/Users/${ids.alice}`);
      const put = await req('writer-1', 'PUT', `/Users/${ids.alice}`, {
        schemas: [USER],
        userName: 'alice',
        displayName: 'Alice',
        title: 'CEO',
      });
      expectStatus(put, 200, 'no-op PUT');
      assert.equal(etag(put), etag(current));
    });
  });

  test('group membership changes and a deleted member', async () => {
    const carol = await req('writer-1', 'POST', '/Users', { schemas: [USER], userName: 'carol' });
    expectStatus(carol, 201, 'carol');
    ids.carol = carol.body.id;
    await checkpoint();
    let g!: TestResponse;
    await expectAudit(
      'POST group with a member',
      () => [
        {
          client: 'writer-1',
          operation: 'create',
          resourceType: 'Group',
          resourceId: ids.staff,
          version: tags.staff,
        },
      ],
      async () => {
        g = await req('writer-1', 'POST', '/Groups', {
          schemas: [GROUP],
          displayName: 'staff',
          members: [{ value: ids.alice }],
        });
        expectStatus(g, 201, 'group');
        ids.staff = g.body.id;
        tags.staff = etag(g);
      },
    );
    await expectAudit(
      'add a member',
      () => [
        {
          client: 'writer-2',
          operation: 'patch',
          resourceType: 'Group',
          resourceId: ids.staff,
          version: tags.staff,
        },
      ],
      async () => {
        const r = await req(
          'writer-2',
          'PATCH',
          `/Groups/${ids.staff}`,
          patch({ op: 'add', path: 'members', value: [{ value: ids.carol }] }),
        );
        assert.ok(r.status === 204 || r.status === 200, `add member: ${r.status} ${r.text}`);
        tags.staff = etag(r);
      },
    );
    await expectAudit('add the same member again (no change)', [], async () => {
      const r = await req(
        'writer-2',
        'PATCH',
        `/Groups/${ids.staff}`,
        patch({ op: 'add', path: 'members', value: [{ value: ids.carol }] }),
      );
      assert.ok(r.status === 204 || r.status === 200, `re-add member: ${r.status} ${r.text}`);
      assert.equal(etag(r), tags.staff);
    });
    await expectAudit(
      'remove a member',
      () => [
        {
          client: 'writer-1',
          operation: 'patch',
          resourceType: 'Group',
          resourceId: ids.staff,
          version: tags.staff,
        },
      ],
      async () => {
        const r = await req(
          'writer-1',
          'PATCH',
          `/Groups/${ids.staff}`,
          patch({ op: 'remove', path: `members[value eq "${ids.alice}"]` }),
        );
        assert.ok(r.status === 204 || r.status === 200, `remove member: ${r.status} ${r.text}`);
        tags.staff = etag(r);
      },
    );
    await expectAudit(
      'delete a User who is a member: the group changes too',
      () => [
        {
          client: 'writer-2',
          operation: 'delete',
          resourceType: 'User',
          resourceId: ids.carol,
          version: nextVersion(etag(carol)),
        },
        {
          client: 'writer-2',
          operation: 'patch',
          resourceType: 'Group',
          resourceId: ids.staff,
          version: tags.staff,
        },
      ],
      async () => {
        expectStatus(await req('writer-2', 'DELETE', `/Users/${ids.carol}`), 204, 'delete carol');
        const after = await req('writer-2', 'GET', `/Groups/${ids.staff}`);
        expectStatus(after, 200, 'group after');
        assert.equal(after.body.members, undefined, 'no members left');
        assert.notEqual(etag(after), tags.staff, 'the group’s version moved');
        tags.staff = etag(after);
      },
    );
  });

  test('each Bulk operation is recorded with the version it returned', async () => {
    let ops: { status: string; version?: string; location?: string }[] = [];
    const victim = await req('writer-1', 'POST', '/Users', { schemas: [USER], userName: 'victim' });
    expectStatus(victim, 201, 'victim');
    await checkpoint();
    const idOf = (loc?: string) => loc!.slice(loc!.lastIndexOf('/') + 1);
    await expectAudit(
      'bulk',
      () => [
        {
          client: 'writer-1',
          operation: 'create',
          resourceType: 'User',
          resourceId: idOf(ops[0].location),
          version: ops[0].version,
        },
        {
          client: 'writer-1',
          operation: 'create',
          resourceType: 'Group',
          resourceId: idOf(ops[1].location),
          version: ops[1].version,
        },
        {
          client: 'writer-1',
          operation: 'replace',
          resourceType: 'User',
          resourceId: ids.alice,
          version: ops[2].version,
        },
        {
          client: 'writer-1',
          operation: 'patch',
          resourceType: 'Group',
          resourceId: ids.staff,
          version: ops[3].version,
        },
        {
          client: 'writer-1',
          operation: 'delete',
          resourceType: 'User',
          resourceId: victim.body.id,
          version: nextVersion(etag(victim)),
        },
      ],
      async () => {
        const res = await req('writer-1', 'POST', '/Bulk', {
          schemas: [BULK_REQ],
          Operations: [
            { method: 'POST', path: '/Users', bulkId: 'd', data: { schemas: [USER], userName: 'dave' } },
            {
              method: 'POST',
              path: '/Groups',
              bulkId: 'g',
              data: { schemas: [GROUP], displayName: 'bulk-group', members: [{ value: 'bulkId:d' }] },
            },
            {
              method: 'PUT',
              path: `/Users/${ids.alice}`,
              data: { schemas: [USER], userName: 'alice', title: 'CTO' },
            },
            {
              method: 'PATCH',
              path: `/Groups/${ids.staff}`,
              data: patch({ op: 'replace', path: 'displayName', value: 'Staff' }),
            },
            { method: 'DELETE', path: `/Users/${victim.body.id}` },
            // Failures and no-ops in the same request record nothing.
            { method: 'DELETE', path: '/Users/no-such-user' },
            { method: 'POST', path: '/Users', bulkId: 'dup', data: { schemas: [USER], userName: 'dave' } },
            {
              method: 'PATCH',
              path: `/Groups/${ids.staff}`,
              data: patch({ op: 'replace', path: 'displayName', value: 'Staff' }),
            },
          ],
        });
        expectStatus(res, 200, 'bulk');
        ops = res.body.Operations;
        assert.deepEqual(
          ops.map((o) => o.status),
          ['201', '201', '200', '200', '204', '404', '409', '200'],
        );
      },
    );
    const alice = await req('writer-1', 'GET', `/Users/${ids.alice}`);
    assert.equal(etag(alice), ops[2].version, 'the recorded version is the resource’s ETag');
    tags.alice = etag(alice);
    const staff = await req('writer-1', 'GET', `/Groups/${ids.staff}`);
    assert.equal(etag(staff), ops[3].version);
    tags.staff = etag(staff);
  });

  test('failed and refused writes record nothing', async () => {
    await expectAudit('failures', [], async () => {
      const cases: [string, string, string, unknown, number, Record<string, string>?][] = [
        ['writer-1', 'POST', '/Users', { schemas: [USER], userName: 'alice' }, 409],
        ['writer-1', 'POST', '/Users', { schemas: [USER] }, 400],
        [
          'writer-1',
          'POST',
          '/Groups',
          { schemas: [GROUP], displayName: 'x', members: [{ value: 'nobody' }] },
          400,
        ],
        [
          'writer-1',
          'PUT',
          `/Users/${ids.alice}`,
          { schemas: [USER], userName: 'alice', title: 'X' },
          412,
          { 'if-match': 'W/"999"' },
        ],
        ['writer-1', 'PATCH', `/Users/${ids.alice}`, patch({ op: 'replace', path: 'nosuch', value: 1 }), 400],
        [
          'writer-1',
          'PATCH',
          `/Users/${ids.alice}`,
          patch({ op: 'replace', path: 'title', value: 'X' }),
          412,
          { 'if-match': 'W/"999"' },
        ],
        ['writer-1', 'DELETE', '/Users/no-such-user', undefined, 404],
        ['writer-1', 'DELETE', `/Users/${ids.alice}`, undefined, 412, { 'if-match': 'W/"999"' }],
        ['reader', 'POST', '/Users', { schemas: [USER], userName: 'reader-made' }, 403],
        ['reader', 'DELETE', `/Users/${ids.alice}`, undefined, 403],
      ];
      for (const [client, method, path, body, status, headers] of cases) {
        expectStatus(await req(client, method, path, body, headers), status, `${client} ${method} ${path}`);
      }
      const bulk = await req('reader', 'POST', '/Bulk', {
        schemas: [BULK_REQ],
        Operations: [
          { method: 'POST', path: '/Users', bulkId: 'r', data: { schemas: [USER], userName: 'via-bulk' } },
        ],
      });
      expectStatus(bulk, 200, 'reader bulk');
      assert.equal(bulk.body.Operations[0].status, '403');
    });
  });

  test('another tenant’s writes are not in this tenant’s trail', async () => {
    const before = await allEntries();
    const res = await t.request('POST', `/tenants/${OTHER}/scim/v2/Users`, {
      token: tokens.other,
      body: { schemas: [USER], userName: 'alice' },
    });
    expectStatus(res, 201, 'other tenant write');
    assert.deepEqual(await allEntries(), before);
    const other = await t.request('GET', `/admin/v1/tenants/${OTHER}/audit`);
    expectStatus(other, 200, 'other audit');
    assert.deepEqual(
      (other.body.entries as Entry[]).map((e) => [e.client, e.operation, e.resourceId]),
      [['writer-1', 'create', res.body.id]],
    );
  });
});

describe('the admin API lists the trail', () => {
  test('filters: client, operation, resourceType, resourceId, since/until', async () => {
    const all = await allEntries();
    assert.ok(all.length >= 15, `enough rows: ${all.length}`);
    const list = async (query: string) => {
      const res = await t.request('GET', `${AUDIT}?count=1000&${query}`);
      expectStatus(res, 200, query);
      assert.equal(res.body.totalResults, res.body.entries.length, `${query}: totalResults`);
      return res.body.entries as Entry[];
    };
    const cases: [string, (e: Entry) => boolean][] = [
      ['client=writer-2', (e) => e.client === 'writer-2'],
      ['operation=delete', (e) => e.operation === 'delete'],
      ['operation=patch', (e) => e.operation === 'patch'],
      ['resourceType=Group', (e) => e.resourceType === 'Group'],
      [`resourceId=${ids.alice}`, (e) => e.resourceId === ids.alice],
      [
        `client=writer-1&resourceType=User&operation=create`,
        (e) => e.client === 'writer-1' && e.resourceType === 'User' && e.operation === 'create',
      ],
    ];
    for (const [query, pred] of cases) {
      const expected = all.filter(pred);
      assert.ok(expected.length > 0, `${query} selects something`);
      assert.deepEqual(await list(query), expected, query);
    }
    assert.deepEqual(
      (await list(`resourceId=${ids.alice}`)).map((e) => e.operation),
      ['create', 'replace', 'patch', 'replace'],
      'alice’s history',
    );
    assert.deepEqual(await list('client=nobody'), []);

    // since is inclusive, until exclusive; pick a time between two rows.
    const mid = all[Math.floor(all.length / 2)];
    const since = encodeURIComponent(mid.at);
    assert.deepEqual(
      await list(`since=${since}`),
      all.filter((e) => Date.parse(e.at) >= Date.parse(mid.at)),
    );
    assert.deepEqual(
      await list(`until=${since}`),
      all.filter((e) => Date.parse(e.at) < Date.parse(mid.at)),
    );
    const first = all[0];
    const last = all[all.length - 1];
    assert.deepEqual(
      await list(
        `since=${encodeURIComponent(first.at)}&until=${encodeURIComponent(new Date(Date.parse(last.at) + 1).toISOString())}`,
      ),
      all,
    );
    assert.deepEqual(
      await list(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`),
      [],
    );
    const bad = await t.request('GET', `${AUDIT}?since=yesterday`);
    expectStatus(bad, 400, 'since=yesterday');
    const badOp = await t.request('GET', `${AUDIT}?operation=read`);
    expectStatus(badOp, 400, 'operation=read');
  });

  test('paging: startIndex and count, totalResults', async () => {
    const all = await allEntries();
    const page = await t.request('GET', `${AUDIT}?startIndex=2&count=3`);
    expectStatus(page, 200, 'page');
    assert.equal(page.body.totalResults, all.length);
    assert.equal(page.body.startIndex, 2);
    assert.equal(page.body.itemsPerPage, 3);
    assert.deepEqual(page.body.entries, all.slice(1, 4));

    const walked: Entry[] = [];
    for (let start = 1; start <= all.length; start += 4) {
      const res = await t.request('GET', `${AUDIT}?startIndex=${start}&count=4`);
      expectStatus(res, 200, `page ${start}`);
      assert.equal(res.body.totalResults, all.length);
      walked.push(...res.body.entries);
    }
    assert.deepEqual(walked, all);
    assert.deepEqual(
      walked.map((e) => e.seq),
      [...walked.map((e) => e.seq)].sort((a, b) => a - b),
      'in write order',
    );

    const none = await t.request('GET', `${AUDIT}?count=0`);
    expectStatus(none, 200, 'count=0');
    assert.equal(none.body.totalResults, all.length);
    assert.deepEqual(none.body.entries, []);
    const beyond = await t.request('GET', `${AUDIT}?startIndex=${all.length + 5}`);
    expectStatus(beyond, 200, 'beyond');
    assert.equal(beyond.body.totalResults, all.length);
    assert.deepEqual(beyond.body.entries, []);
    const filtered = await t.request('GET', `${AUDIT}?resourceType=User&count=2`);
    assert.equal(filtered.body.totalResults, all.filter((e) => e.resourceType === 'User').length);
    assert.equal(filtered.body.entries.length, 2);
    expectStatus(await t.request('GET', `${AUDIT}?startIndex=0`), 400, 'startIndex=0');
    expectStatus(await t.request('GET', `${AUDIT}?count=1001`), 400, 'count=1001');
  });
});
