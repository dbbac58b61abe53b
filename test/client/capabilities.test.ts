/**
 * Discovery-driven behaviour and the compatibility switches, against fake servers whose
 * ServiceProviderConfig the tests choose; every request the client sends is asserted.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ScimClient,
  ScimUnsupportedError,
  type CompatOptions,
  type ScimGroup,
  type ScimUser,
} from '../../src/client/index.ts';
import { calls, fakeServer, list, spc, type FakeHandler, type FakeServer } from './helpers.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const servers: FakeServer[] = [];
const clients: ScimClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

async function setup(
  handler: FakeHandler,
  spcDoc: Record<string, unknown>,
  compat: CompatOptions = {},
  discovery: { resourceTypes?: unknown[] } = {},
) {
  const server = await fakeServer(handler, { spc: spcDoc, ...discovery });
  servers.push(server);
  const client = new ScimClient({ baseUrl: server.url, auth: { type: 'bearer', token: 't' }, compat });
  clients.push(client);
  await client.discover();
  return { server, client };
}

const json = (body: string) => (body ? JSON.parse(body) : undefined);
const FULL = spc({
  patch: { supported: true },
  filter: { supported: true, maxResults: 200 },
  etag: { supported: true },
  sort: { supported: true },
  pagination: { cursor: true, index: true, defaultPaginationMethod: 'index', maxPageSize: 50 },
});

const before: ScimUser = {
  schemas: [USER],
  id: 'u1',
  userName: 'a',
  displayName: 'A',
  meta: { version: 'W/"1"', resourceType: 'User' },
};

describe('a server without PATCH, Bulk, filter, sort, ETags or cursors', () => {
  test('update falls back to PUT of the new state; no If-Match without etag support', async () => {
    const { server, client } = await setup(
      (r) =>
        r.method === 'PUT'
          ? { status: 200, body: { ...json(r.body), meta: { version: 'W/"2"' } } }
          : r.method === 'GET' && r.url === '/scim/Users/u1'
            ? { status: 200, body: before }
            : undefined,
      spc(),
    );
    const users = client.resources<ScimUser>('User');
    const res = await users.update(before, { ...before, displayName: 'B' });
    assert.equal(res.method, 'PUT');
    assert.equal(res.version, 'W/"2"');
    const [put] = calls(server);
    assert.equal(put.method, 'PUT');
    assert.equal(put.url, '/scim/Users/u1');
    assert.equal(put.headers['if-match'], undefined);
    assert.deepEqual(json(put.body), { schemas: [USER], id: 'u1', userName: 'a', displayName: 'B' });
    // Raw PATCH operations: read, applied locally, PUT (patch-fallback.test.ts has the details).
    await users.patch('u1', [{ op: 'replace', path: 'displayName', value: 'C' }]);
    assert.deepEqual(
      calls(server).map((r) => `${r.method} ${r.url} ${r.headers['if-match'] ?? '-'}`),
      ['PUT /scim/Users/u1 -', 'GET /scim/Users/u1 -', 'PUT /scim/Users/u1 -'],
    );
    assert.deepEqual(json(calls(server)[2].body), {
      schemas: [USER],
      id: 'u1',
      userName: 'a',
      displayName: 'C',
    });
    await assert.rejects(users.list({ filter: 'userName eq "a"' }), ScimUnsupportedError);
    await assert.rejects(users.list({ sortBy: 'userName' }), ScimUnsupportedError);
    await assert.rejects(users.iterate({ paging: 'cursor' }).next(), ScimUnsupportedError);
    assert.equal(calls(server).length, 3);
  });

  test('iterate pages by index (default page size 100) until startIndex passes totalResults', async () => {
    const all = ['a', 'b', 'c'].map((n, i) => ({ schemas: [USER], id: `u${i}`, userName: n }));
    const { server, client } = await setup((r) => {
      const m = /^\/scim\/Users\?startIndex=(\d+)&count=100$/.exec(r.url);
      if (!m) return undefined;
      const start = Number(m[1]);
      // The server returns at most 2 per page whatever the count asked.
      return {
        status: 200,
        body: list(all.slice(start - 1, start + 1), { totalResults: 3, startIndex: start }),
      };
    }, spc());
    const names: string[] = [];
    for await (const u of client.resources<ScimUser>('User').iterate()) names.push(u.userName);
    assert.deepEqual(names, ['a', 'b', 'c']);
    assert.deepEqual(
      calls(server).map((r) => r.url),
      ['/scim/Users?startIndex=1&count=100', '/scim/Users?startIndex=3&count=100'],
    );
    // findBy without filtering: every resource read, compared locally.
    const found = await client.resources<ScimUser>('User').findBy('userName', 'b');
    assert.deepEqual(
      found.map((u) => u.id),
      ['u1'],
    );
    assert.ok(calls(server).every((r) => !r.url.includes('filter')));
  });

  test('bulk without Bulk support: one request per operation, bulkId references substituted', async () => {
    const { server, client } = await setup((r) => {
      if (r.method === 'POST' && r.url === '/scim/Users')
        return {
          status: 201,
          headers: { location: 'http://x/scim/Users/new-u', etag: 'W/"1"' },
          body: { id: 'new-u' },
        };
      if (r.method === 'POST' && r.url === '/scim/Groups')
        return {
          status: 201,
          body: { id: 'new-g', meta: { location: 'http://x/scim/Groups/new-g', version: 'W/"9"' } },
        };
      if (r.method === 'DELETE')
        return {
          status: 404,
          body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '404', detail: 'gone' },
        };
      return undefined;
    }, spc());
    const results = await client.bulk([
      { method: 'POST', path: '/Users', bulkId: 'u', data: { schemas: [USER], userName: 'x' } },
      {
        method: 'POST',
        path: '/Groups',
        bulkId: 'g',
        data: { schemas: [GROUP], displayName: 'G', members: [{ value: 'bulkId:u' }] },
      },
      { method: 'DELETE', path: '/Users/bulkId:u', version: 'W/"1"' },
    ]);
    const c = calls(server);
    assert.deepEqual(
      c.map((r) => `${r.method} ${r.url}`),
      ['POST /scim/Users', 'POST /scim/Groups', 'DELETE /scim/Users/new-u'],
    );
    assert.deepEqual(json(c[1].body), { schemas: [GROUP], displayName: 'G', members: [{ value: 'new-u' }] });
    assert.equal(c[2].headers['if-match'], undefined); // no etag support advertised
    assert.deepEqual(results, [
      { method: 'POST', bulkId: 'u', status: '201', location: 'http://x/scim/Users/new-u', version: 'W/"1"' },
      {
        method: 'POST',
        bulkId: 'g',
        status: '201',
        location: 'http://x/scim/Groups/new-g',
        version: 'W/"9"',
      },
      {
        method: 'DELETE',
        status: '404',
        response: { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '404', detail: 'gone' },
      },
    ]);
  });

  test('no /ResourceTypes: the RFC 7643 endpoints are assumed', async () => {
    const { server, client } = await setup((r) => {
      if (r.url === '/scim/ResourceTypes' || r.url === '/scim/Schemas')
        return { status: 404, body: { detail: 'no' } };
      if (r.url === '/scim/Groups/g1')
        return { status: 200, body: { schemas: [GROUP], id: 'g1', displayName: 'G' } };
      return undefined;
    }, spc());
    const g = await client.resources<ScimGroup>('Group').get('g1');
    assert.equal(g.displayName, 'G');
    assert.equal(calls(server).at(-1)!.url, '/scim/Groups/g1');
  });
});

describe('a server with everything', () => {
  test('PATCH with If-Match; cursor paging chosen when advertised; sortBy and filter sent', async () => {
    const { server, client } = await setup((r) => {
      if (r.method === 'PATCH')
        return { status: 200, headers: { etag: 'W/"2"' }, body: { ...before, displayName: 'B' } };
      if (r.url.startsWith('/scim/Users?')) {
        const cursor = new URL(r.url, 'http://x').searchParams.get('cursor');
        return cursor === ''
          ? { status: 200, body: list([{ schemas: [USER], id: '1', userName: 'a' }], { nextCursor: 'c2' }) }
          : { status: 200, body: list([{ schemas: [USER], id: '2', userName: 'b' }]) };
      }
      return undefined;
    }, FULL);
    const users = client.resources<ScimUser>('User');
    const r = await users.update(before, { ...before, displayName: 'B' });
    assert.equal(r.version, 'W/"2"');
    const [patch] = calls(server);
    assert.equal(patch.headers['if-match'], 'W/"1"');
    assert.equal(patch.headers['content-type'], 'application/scim+json');
    assert.deepEqual(json(patch.body), {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'displayName', value: 'B' }],
    });
    const ids: string[] = [];
    for await (const u of users.iterate({ filter: 'active eq true', sortBy: 'userName', pageSize: 500 }))
      ids.push(u.id!);
    assert.deepEqual(ids, ['1', '2']);
    assert.deepEqual(
      calls(server)
        .slice(1)
        .map((x) => x.url),
      [
        '/scim/Users?filter=active%20eq%20true&sortBy=userName&count=50&cursor=',
        '/scim/Users?filter=active%20eq%20true&sortBy=userName&count=50&cursor=c2',
      ],
    );
  });
});

describe('compatibility switches', () => {
  test('patchRequiresPath: path-less operations expanded per attribute', async () => {
    const { server, client } = await setup(
      (r) => (r.method === 'PATCH' ? { status: 204 } : undefined),
      FULL,
      {
        patchRequiresPath: true,
      },
    );
    const res = await client.resources('User').patch('u1', [
      {
        op: 'replace',
        value: {
          active: false,
          'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'D' },
        },
      },
    ]);
    assert.equal(res, undefined);
    assert.deepEqual(json(calls(server)[0].body).Operations, [
      { op: 'replace', path: 'active', value: false },
      {
        op: 'replace',
        path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department',
        value: 'D',
      },
    ]);
  });

  test('maxMembersPerPatch: member changes split over requests, each conditional on the last ETag', async () => {
    let version = 1;
    const { server, client } = await setup(
      (r) => (r.method === 'PATCH' ? { status: 204, headers: { etag: `W/"${++version}"` } } : undefined),
      FULL,
      { maxMembersPerPatch: 2 },
    );
    const g: ScimGroup = {
      schemas: [GROUP],
      id: 'g1',
      displayName: 'G',
      members: [{ value: 'm0' }],
      meta: { version: 'W/"1"' },
    };
    const r = await client
      .resources<ScimGroup>('Group')
      .update(g, { ...g, displayName: 'G2', members: [{ value: 'm1' }, { value: 'm2' }, { value: 'm3' }] });
    assert.equal(r.requests, 3);
    assert.equal(r.version, 'W/"4"');
    assert.deepEqual(
      calls(server).map((x) => [x.headers['if-match'], json(x.body).Operations]),
      [
        [
          'W/"1"',
          [
            { op: 'replace', path: 'displayName', value: 'G2' },
            { op: 'remove', path: 'members[value eq "m0"]' },
          ],
        ],
        ['W/"2"', [{ op: 'add', path: 'members', value: [{ value: 'm1' }, { value: 'm2' }] }]],
        ['W/"3"', [{ op: 'add', path: 'members', value: [{ value: 'm3' }] }]],
      ],
    );
  });

  test('multiValueRemove valueArray: Entra-style removal of listed values', async () => {
    const { server, client } = await setup(
      (r) => (r.method === 'PATCH' ? { status: 204 } : undefined),
      FULL,
      {
        multiValueRemove: 'valueArray',
      },
    );
    const g: ScimGroup = {
      schemas: [GROUP],
      id: 'g1',
      displayName: 'G',
      members: [{ value: 'a' }, { value: 'b' }, { value: 'c' }],
    };
    await client
      .resources<ScimGroup>('Group')
      .update(g, { ...g, members: [{ value: 'b' }] }, { ifMatch: false });
    const [p] = calls(server);
    assert.equal(p.headers['if-match'], undefined);
    assert.deepEqual(json(p.body).Operations, [
      { op: 'remove', path: 'members', value: [{ value: 'a' }, { value: 'c' }] },
    ]);
  });

  test('noFilterOnExternalId: findBy externalId reads and compares locally; other attributes filter', async () => {
    const all = [
      { schemas: [USER], id: '1', userName: 'a', externalId: 'E1' },
      { schemas: [USER], id: '2', userName: 'b', externalId: 'e1' },
    ];
    const { server, client } = await setup(
      (r) =>
        r.url.startsWith('/scim/Users?')
          ? { status: 200, body: list(r.url.includes('filter') ? [all[0]] : all) }
          : undefined,
      FULL,
      { noFilterOnExternalId: true, disable: ['cursor'] },
    );
    const users = client.resources<ScimUser>('User');
    assert.deepEqual(
      (await users.findBy('externalId', 'e1')).map((u) => u.id),
      ['2'],
    );
    assert.deepEqual(
      (await users.findBy('userName', 'a')).map((u) => u.id),
      ['1'],
    );
    // disable: ['cursor'] — index paging although cursors are advertised.
    assert.deepEqual(
      calls(server).map((r) => r.url),
      [
        '/scim/Users?startIndex=1&count=50',
        '/scim/Users?filter=userName%20eq%20%22a%22&startIndex=1&count=50',
      ],
    );
  });

  test('disable etag and contentType application/json', async () => {
    const { server, client } = await setup(
      (r) => (r.method === 'PUT' ? { status: 200, body: before } : undefined),
      FULL,
      {
        disable: ['etag', 'patch'],
        contentType: 'application/json',
      },
    );
    const r = await client.resources<ScimUser>('User').update(before, { ...before, displayName: 'Z' });
    assert.equal(r.method, 'PUT');
    const [put] = calls(server);
    assert.equal(put.headers['if-match'], undefined);
    assert.equal(put.headers['content-type'], 'application/json');
    assert.equal(put.headers.authorization, 'Bearer t');
  });
});

describe('bulk limits', () => {
  test('requests stay within maxPayloadSize and maxOperations; failOnErrors counts across requests', async () => {
    const BULK_SPC = spc({ bulk: { supported: true, maxOperations: 3, maxPayloadSize: 560 } });
    let n = 0;
    const { server, client } = await setup((r) => {
      if (r.url !== '/scim/Bulk') return undefined;
      const ops = json(r.body).Operations as Array<{ bulkId: string }>;
      return {
        status: 200,
        body: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkResponse'],
          Operations: ops.map((o) => ({
            method: 'POST',
            bulkId: o.bulkId,
            // every third operation fails
            status: ++n % 3 === 0 ? '409' : '201',
            ...(n % 3 === 0
              ? { response: { status: '409', scimType: 'uniqueness' } }
              : { location: `http://x/Users/id${n}` }),
          })),
        },
      };
    }, BULK_SPC);
    const op = (i: number) => ({
      method: 'POST' as const,
      path: '/Users',
      bulkId: `b${i}`,
      data: { schemas: [USER], userName: `user-number-${i}-${'x'.repeat(60)}` },
    });
    const results = await client.bulk([0, 1, 2, 3, 4, 5, 6].map(op), { failOnErrors: 2 });
    const sentBodies = calls(server).map((r) => r.body);
    for (const b of sentBodies) assert.ok(Buffer.byteLength(b) <= 560, `${Buffer.byteLength(b)} bytes`);
    // Three operations of ~200 bytes do not fit in 560 bytes: two per request.
    assert.deepEqual(
      sentBodies.map((b) => json(b).Operations.map((o: { bulkId: string }) => o.bulkId)),
      [
        ['b0', 'b1'],
        ['b2', 'b3'],
        ['b4', 'b5'],
      ],
    );
    // failOnErrors is what is left of the allowance; after the second error nothing more is sent (b6).
    assert.deepEqual(
      sentBodies.map((b) => json(b).failOnErrors),
      [2, 2, 1],
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ['201', '201', '409', '201', '201', '409'],
    );
    await assert.rejects(
      client.bulk([{ ...op(9), data: { schemas: [USER], userName: 'y'.repeat(700) } }]),
      (e) => e instanceof ScimUnsupportedError && /maxPayloadSize/.test(e.message),
    );
  });
});

describe('paging safety', () => {
  test('a server that hands back the same nextCursor stops the iteration with an error', async () => {
    const { server, client } = await setup(
      (r) =>
        r.url.startsWith('/scim/Users?')
          ? { status: 200, body: list([{ schemas: [USER], id: '1', userName: 'a' }], { nextCursor: 'same' }) }
          : undefined,
      FULL,
    );
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const u of client.resources<ScimUser>('User').iterate()) seen.push(u.id!);
    }, /same nextCursor twice/);
    assert.deepEqual(seen, ['1', '1']);
    assert.deepEqual(
      calls(server).map((r) => r.url),
      ['/scim/Users?count=50&cursor=', '/scim/Users?count=50&cursor=same'],
    );
  });
});

describe('create', () => {
  test('201 without a body: the resource is read from its Location', async () => {
    const { server, client } = await setup((r) => {
      if (r.method === 'POST') return { status: 201, headers: { location: 'http://x/scim/Users/new%201' } };
      if (r.url === '/scim/Users/new%201')
        return { status: 200, body: { schemas: [USER], id: 'new 1', userName: 'n' } };
      return undefined;
    }, spc());
    const u = await client.resources<ScimUser>('User').create({ schemas: [USER], userName: 'n' });
    assert.equal(u.id, 'new 1');
    assert.deepEqual(
      calls(server).map((r) => `${r.method} ${r.url}`),
      ['POST /scim/Users', 'GET /scim/Users/new%201'],
    );
  });
});
