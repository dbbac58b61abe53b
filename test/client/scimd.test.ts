/**
 * The client against a real scimd on loopback: discovery, CRUD, errors, ETags, diff-based PATCH,
 * index and cursor paging, /.search and Bulk splitting, with the exact requests it sends.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { ScimClient, ScimClientError, type ScimGroup, type ScimUser } from '../../src/client/index.ts';
import { startTestApp, TOKEN, type TestApp } from '../helpers/app.ts';
import { recordingTransport, type Recorded } from './helpers.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

let t: TestApp;
let client: ScimClient;
let rec: ReturnType<typeof recordingTransport>;
let log: Recorded[];

before(async () => {
  t = await startTestApp({
    bulkMaxOperations: 3,
    bulkMaxPayloadSize: 4000,
    maxPageSize: 5,
    defaultPageSize: 3,
    filterMaxResults: 5,
  });
  await t.app.server.listen({ port: 0, host: '127.0.0.1' });
  const { port } = t.app.server.server.address() as AddressInfo;
  rec = recordingTransport();
  log = rec.log;
  client = new ScimClient({
    baseUrl: `http://127.0.0.1:${port}/scim/v2/`,
    auth: { type: 'bearer', token: TOKEN },
    transport: rec.transport,
    userAgent: 'client-test/1',
    headers: { 'x-correlation': 'c1' },
  });
  await client.discover();
});
after(async () => {
  rec.close();
  await t.close();
});
beforeEach(() => {
  log.length = 0;
});

/** The requests sent since the test began, as method + path. */
const sent = () => log.map((r) => `${r.method} ${r.url}`);

describe('client against scimd', () => {
  test('discovery is read once and says what scimd supports', async () => {
    const d = await client.discover();
    assert.deepEqual(sent(), []); // cached
    assert.equal(d.capabilities.patch, true);
    assert.deepEqual(d.capabilities.bulk, { supported: true, maxOperations: 3, maxPayloadSize: 4000 });
    assert.equal(d.capabilities.pagination.cursor, true);
    assert.equal(d.capabilities.pagination.maxPageSize, 5);
    assert.equal(d.capabilities.etag, true);
    assert.deepEqual(
      d.resourceTypes.map((r) => r.endpoint).filter((e) => e === '/Users' || e === '/Groups'),
      ['/Users', '/Groups'],
    );
    assert.ok(d.schemas.has(USER.toLowerCase()));
    await client.discover({ refresh: true });
    assert.deepEqual(sent().sort(), [
      'GET /scim/v2/ResourceTypes',
      'GET /scim/v2/Schemas',
      'GET /scim/v2/ServiceProviderConfig',
    ]);
  });

  test('create, get, replace with If-Match, delete; SCIM errors as ScimClientError', async () => {
    const users = client.resources<ScimUser>('User');
    const created = await users.create({ schemas: [USER], userName: 'crud-1', displayName: 'One' });
    assert.equal(created.userName, 'crud-1');
    assert.ok(created.id && created.meta?.version);
    const r = log[0];
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/scim/v2/Users');
    assert.deepEqual(r.body, { schemas: [USER], userName: 'crud-1', displayName: 'One' });
    assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(r.headers['content-type'], 'application/scim+json');
    assert.equal(r.headers.accept, 'application/scim+json, application/json');
    assert.equal(r.headers['user-agent'], 'client-test/1');
    assert.equal(r.headers['x-correlation'], 'c1');

    const got = await users.get(created.id!, { attributes: ['userName'] });
    assert.equal(log[1].url, `/scim/v2/Users/${created.id}?attributes=userName`);
    assert.equal(got.displayName, undefined);

    // Conditional GET: 304 while the version is current.
    assert.equal(await users.getIfChanged(created.id!, created.meta!.version!), undefined);
    assert.equal(log.at(-1)!.headers['if-none-match'], created.meta!.version);
    assert.equal(log.at(-1)!.status, 304);
    log.splice(2);

    const replaced = await users.replace(created.id!, { ...created, displayName: 'Uno' });
    assert.equal(log[2].method, 'PUT');
    assert.equal(log[2].headers['if-match'], created.meta!.version);
    assert.equal((log[2].body as Record<string, unknown>).meta, undefined);
    assert.equal(replaced.displayName, 'Uno');

    // The old version is stale now: 412 with the server's headers.
    await assert.rejects(users.replace(created.id!, { ...created, displayName: 'Stale' }), (e) => {
      assert.ok(e instanceof ScimClientError);
      assert.equal(e.status, 412);
      assert.equal(e.headers['content-type']?.startsWith('application/scim+json'), true);
      return true;
    });
    await assert.rejects(users.create({ schemas: [USER], userName: 'CRUD-1' }), (e) => {
      assert.ok(e instanceof ScimClientError);
      assert.equal(e.status, 409);
      assert.equal(e.scimType, 'uniqueness');
      assert.match(e.detail ?? '', /userName/);
      return true;
    });
    const changed = await users.getIfChanged(created.id!, created.meta!.version!);
    assert.equal(changed?.displayName, 'Uno');
    await users.delete(created.id!, { ifMatch: replaced.meta!.version });
    assert.equal(log.at(-1)!.headers['if-match'], replaced.meta!.version);
    await assert.rejects(users.get(created.id!), (e) => e instanceof ScimClientError && e.status === 404);
    const stored = await t.request('GET', `/scim/v2/Users/${created.id}`);
    assert.equal(stored.status, 404);
  });

  test('update: minimal PATCH from two states, stored state equals the new state', async () => {
    const users = client.resources<ScimUser>('User');
    const before = await users.create({
      schemas: [USER, ENT],
      userName: 'diff-1',
      name: { givenName: 'Ann', familyName: 'Lee' },
      emails: [{ value: 'ann@example.com', type: 'work', primary: true }],
      [ENT]: { department: 'Sales' },
    });
    log.length = 0;
    const desired = {
      ...before,
      name: { givenName: 'Anna', familyName: 'Lee' },
      emails: [{ value: 'ann@example.com', type: 'work', primary: true }, { value: 'a2@example.com' }],
      [ENT]: { department: 'Support', employeeNumber: '7' },
    };
    const r = await users.update(before, desired);
    assert.equal(r.changed, true);
    assert.equal(r.method, 'PATCH');
    assert.equal(r.requests, 1);
    assert.deepEqual(sent(), [`PATCH /scim/v2/Users/${before.id}`]);
    assert.equal(log[0].headers['if-match'], before.meta!.version);
    assert.deepEqual(log[0].body, {
      schemas: [PATCH],
      Operations: [
        { op: 'replace', path: 'name.givenName', value: 'Anna' },
        { op: 'add', path: 'emails', value: [{ value: 'a2@example.com' }] },
        { op: 'replace', path: `${ENT}:department`, value: 'Support' },
        { op: 'add', path: `${ENT}:employeeNumber`, value: '7' },
      ],
    });
    const stored = (await t.request('GET', `/scim/v2/Users/${before.id}`)).body;
    assert.equal(stored.name.givenName, 'Anna');
    assert.deepEqual(stored[ENT], { department: 'Support', employeeNumber: '7' });
    assert.deepEqual(stored.emails.map((e: { value: string }) => e.value).sort(), [
      'a2@example.com',
      'ann@example.com',
    ]);
    assert.equal(r.version, stored.meta.version);

    // The same state again: no request at all.
    log.length = 0;
    assert.deepEqual(await users.update(r.resource!, desired), { changed: false, requests: 0 });
    assert.deepEqual(sent(), []);
  });

  test('group members by diff: remove by value filter, add in one op (scimd answers 204)', async () => {
    const users = client.resources<ScimUser>('User');
    const ids: string[] = [];
    for (let i = 0; i < 4; i++)
      ids.push((await users.create({ schemas: [USER], userName: `member-${i}` })).id!);
    const groups = client.resources<ScimGroup>('Group');
    const g = await groups.create({
      schemas: [GROUP],
      displayName: 'G1',
      members: [{ value: ids[0] }, { value: ids[1] }],
    });
    log.length = 0;
    const r = await groups.update(g, {
      ...g,
      members: [{ value: ids[1] }, { value: ids[2] }, { value: ids[3] }],
    });
    assert.deepEqual(log[0].body, {
      schemas: [PATCH],
      Operations: [
        { op: 'remove', path: `members[value eq "${ids[0]}"]` },
        { op: 'add', path: 'members', value: [{ value: ids[2] }, { value: ids[3] }] },
      ],
    });
    assert.equal(log[0].status, 204);
    assert.equal(r.resource, undefined);
    assert.ok(r.version);
    const stored = (await t.request('GET', `/scim/v2/Groups/${g.id}`)).body;
    assert.deepEqual(
      stored.members.map((m: { value: string }) => m.value).sort(),
      [ids[1], ids[2], ids[3]].sort(),
    );
  });

  test('iterate: cursor paging (advertised) and index paging, page size capped at maxPageSize', async () => {
    const users = client.resources<ScimUser>('User');
    for (let i = 0; i < 7; i++) await users.create({ schemas: [USER], userName: `page-${i}` });
    log.length = 0;
    const filter = 'userName sw "page-"';
    const viaCursor: string[] = [];
    for await (const u of users.iterate({ filter, pageSize: 50 })) viaCursor.push(u.userName);
    assert.deepEqual(
      viaCursor.sort(),
      [0, 1, 2, 3, 4, 5, 6].map((i) => `page-${i}`),
    );
    const q = `filter=${encodeURIComponent(filter)}&count=5`;
    assert.equal(log[0].url, `/scim/v2/Users?${q}&cursor=`);
    assert.equal(log.length, 2);
    assert.match(
      log[1].url,
      new RegExp(`^/scim/v2/Users\\?${q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}&cursor=[A-Za-z0-9._~-]+$`),
    );

    log.length = 0;
    const viaIndex: string[] = [];
    for await (const u of users.iterate({ filter, pageSize: 3, paging: 'index', sortBy: 'userName' })) {
      viaIndex.push(u.userName);
    }
    assert.deepEqual(
      viaIndex,
      [0, 1, 2, 3, 4, 5, 6].map((i) => `page-${i}`),
    );
    const iq = `filter=${encodeURIComponent(filter)}&sortBy=userName`;
    assert.deepEqual(sent(), [
      `GET /scim/v2/Users?${iq}&startIndex=1&count=3`,
      `GET /scim/v2/Users?${iq}&startIndex=4&count=3`,
      `GET /scim/v2/Users?${iq}&startIndex=7&count=3`,
    ]);

    log.length = 0;
    const viaSearch: string[] = [];
    for await (const u of users.iterate({ filter, pageSize: 4, paging: 'index', via: 'search' })) {
      viaSearch.push(u.userName);
    }
    assert.equal(viaSearch.length, 7);
    assert.deepEqual(log[0].body, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      filter,
      count: 4,
      startIndex: 1,
    });
    assert.equal(log[0].url, '/scim/v2/Users/.search');

    // Cursor paging through /.search: "cursor" in the SearchRequest body (RFC 9865 §2.2).
    log.length = 0;
    const viaCursorSearch: string[] = [];
    for await (const u of users.iterate({ filter, pageSize: 4, via: 'search' }))
      viaCursorSearch.push(u.userName);
    assert.deepEqual(
      viaCursorSearch.sort(),
      [0, 1, 2, 3, 4, 5, 6].map((i) => `page-${i}`),
    );
    assert.equal(log.length, 2);
    assert.deepEqual(log[0].body, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      filter,
      count: 4,
      cursor: '',
    });
    assert.equal(typeof (log[1].body as { cursor: unknown }).cursor, 'string');
    assert.notEqual((log[1].body as { cursor: string }).cursor, '');

    log.length = 0;
    assert.deepEqual(
      (await users.findBy('userName', 'page-3')).map((u) => u.userName),
      ['page-3'],
    );
  });

  test('patch with PATCH switched off: GET, scimd PATCH engine on the client, PUT with If-Match', async () => {
    const noPatch = new ScimClient({
      baseUrl: client.baseUrl,
      auth: { type: 'bearer', token: TOKEN },
      transport: rec.transport,
      compat: { disable: ['patch'] },
    });
    const users = noPatch.resources<ScimUser>('User');
    const created = await client.resources<ScimUser>('User').create({
      schemas: [USER],
      userName: 'fallback-1',
      emails: [
        { value: 'f@work.example', type: 'work' },
        { value: 'f@home.example', type: 'home' },
      ],
    });
    await noPatch.discover();
    log.length = 0;
    const res = await users.patch(created.id!, [
      { op: 'remove', path: 'emails[type eq "home"]' },
      { op: 'add', path: `${ENT}:department`, value: 'Ops' },
    ]);
    assert.deepEqual(
      log.map((r) => `${r.method} ${r.url} ${r.headers['if-match'] ?? '-'} ${r.status}`),
      [
        `GET /scim/v2/Users/${created.id} - 200`,
        `PUT /scim/v2/Users/${created.id} ${created.meta!.version} 200`,
      ],
    );
    assert.deepEqual(log[1].body, {
      schemas: [USER, ENT],
      id: created.id,
      userName: 'fallback-1',
      emails: [{ value: 'f@work.example', type: 'work' }],
      [ENT]: { department: 'Ops' },
    });
    const stored = (await t.request('GET', `/scim/v2/Users/${created.id}`)).body;
    assert.deepEqual(stored.emails, [{ value: 'f@work.example', type: 'work' }]);
    assert.deepEqual(stored[ENT], { department: 'Ops' });
    assert.equal(res?.meta?.version, stored.meta.version);
    assert.notEqual(stored.meta.version, created.meta!.version);
  });

  test('bulk: split within maxOperations, bulkId references resolved across requests', async () => {
    const ops = [0, 1, 2, 3].map((i) => ({
      method: 'POST' as const,
      path: '/Users',
      bulkId: `u${i}`,
      data: { schemas: [USER], userName: `bulk-${i}` },
    }));
    const results = await client.bulk([
      ...ops,
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'g',
        data: {
          schemas: [GROUP],
          displayName: 'BG',
          members: [{ value: 'bulkId:u0' }, { value: 'bulkId:u3' }],
        },
      },
    ]);
    assert.deepEqual(sent(), ['POST /scim/v2/Bulk', 'POST /scim/v2/Bulk']);
    assert.equal((log[0].body as { Operations: unknown[] }).Operations.length, 3);
    const second = (log[1].body as { Operations: Array<{ data: { members?: Array<{ value: string }> } }> })
      .Operations;
    assert.equal(second.length, 2);
    const u0 = results[0].location!.split('/').pop()!;
    // u0 was created by the first request: its id is substituted; u3 is in the same request.
    assert.deepEqual(second[1].data.members, [{ value: u0 }, { value: 'bulkId:u3' }]);
    assert.deepEqual(
      results.map((r) => [r.bulkId, r.status]),
      [
        ['u0', '201'],
        ['u1', '201'],
        ['u2', '201'],
        ['u3', '201'],
        ['g', '201'],
      ],
    );
    const gid = results[4].location!.split('/').pop()!;
    const stored = (await t.request('GET', `/scim/v2/Groups/${gid}`)).body;
    assert.deepEqual(
      stored.members.map((m: { value: string }) => m.value).sort(),
      [u0, results[3].location!.split('/').pop()!].sort(),
    );
  });

  test('bulk: a forward reference is sent after its create; one to a failed create is not sent', async () => {
    await client.resources<ScimUser>('User').create({ schemas: [USER], userName: 'bulk-taken' });
    log.length = 0;
    const results = await client.bulk([
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'fg',
        data: {
          schemas: [GROUP],
          displayName: 'FG',
          members: [{ value: 'bulkId:f1' }, { value: 'bulkId:f2' }],
        },
      },
      { method: 'POST', path: '/Users', bulkId: 'f0', data: { schemas: [USER], userName: 'bulk-taken' } },
      { method: 'POST', path: '/Users', bulkId: 'f1', data: { schemas: [USER], userName: 'bulk-f1' } },
      { method: 'POST', path: '/Users', bulkId: 'f2', data: { schemas: [USER], userName: 'bulk-f2' } },
      {
        method: 'PATCH',
        path: '/Users/bulkId:f0',
        data: { Operations: [{ op: 'replace', path: 'displayName', value: 'never' }] },
      },
    ]);
    assert.deepEqual(sent(), ['POST /scim/v2/Bulk', 'POST /scim/v2/Bulk']);
    const ops = (i: number) =>
      (log[i].body as { Operations: Array<{ bulkId?: string; data?: unknown }> }).Operations;
    assert.deepEqual(
      ops(0).map((o) => o.bulkId),
      ['f0', 'f1', 'f2'],
    );
    const id = (i: number) => results[i].location!.split('/').pop()!;
    assert.deepEqual(ops(1), [
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'fg',
        data: { schemas: [GROUP], displayName: 'FG', members: [{ value: id(2) }, { value: id(3) }] },
      },
    ]);
    assert.deepEqual(
      results.map((r) => [r.bulkId, r.status]),
      [
        ['fg', '201'],
        ['f0', '409'],
        ['f1', '201'],
        ['f2', '201'],
        [undefined, '409'],
      ],
    );
    assert.deepEqual(results[4].response, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '409',
      detail: 'bulkId "f0" refers to an operation that failed (POST /Users: it failed with 409); not sent',
    });
    const stored = (await t.request('GET', `/scim/v2/Groups/${id(0)}`)).body;
    assert.deepEqual(stored.members.map((m: { value: string }) => m.value).sort(), [id(2), id(3)].sort());
  });
});
