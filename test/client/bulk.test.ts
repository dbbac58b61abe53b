/**
 * Bulk split over several requests: creates go before the operations referring to them, a
 * `bulkId:` reference to an earlier request's creation is sent as the real id, and one to a
 * creation that failed (or to no POST at all) fails locally without being sent. Fake servers record
 * every request.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ScimClient, type BulkOperation } from '../../src/client/index.ts';
import { planBulk } from '../../src/client/bulk-plan.ts';
import { calls, fakeServer, spc, type FakeHandler, type FakeServer } from './helpers.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const servers: FakeServer[] = [];
const clients: ScimClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

const json = (body: string) => (body ? JSON.parse(body) : undefined);

interface SentOp {
  method: string;
  path: string;
  bulkId?: string;
  data?: Record<string, unknown>;
}

/**
 * A Bulk server: POSTs get id `id-<bulkId>` unless `fail` names their bulkId (409) or `noLocation`
 * does (201 without location); other operations 200/204.
 */
function bulkServer(opts: { fail?: string[]; noLocation?: string[] } = {}): FakeHandler {
  return (r) => {
    if (r.url !== '/scim/Bulk') return undefined;
    const ops = json(r.body).Operations as SentOp[];
    return {
      status: 200,
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkResponse'],
        Operations: ops.map((o) => {
          if (o.method !== 'POST') return { method: o.method, status: o.method === 'DELETE' ? '204' : '200' };
          if (opts.fail?.includes(o.bulkId!))
            return {
              method: 'POST',
              bulkId: o.bulkId,
              status: '409',
              response: { schemas: [ERROR], status: '409', scimType: 'uniqueness', detail: 'taken' },
            };
          const out: Record<string, unknown> = { method: 'POST', bulkId: o.bulkId, status: '201' };
          if (!opts.noLocation?.includes(o.bulkId!)) out.location = `http://x/scim${o.path}/id-${o.bulkId}`;
          return out;
        }),
      },
    };
  };
}

async function setup(handler: FakeHandler, maxOperations: number) {
  const server = await fakeServer(handler, {
    spc: spc({ bulk: { supported: true, maxOperations, maxPayloadSize: 100_000 } }),
  });
  servers.push(server);
  const client = new ScimClient({ baseUrl: server.url, auth: { type: 'bearer', token: 't' } });
  clients.push(client);
  await client.discover();
  return { server, client };
}

/** The operations of each /Bulk request, as `METHOD path [bulkId]` plus the data's member values. */
function requests(server: FakeServer): string[][] {
  return calls(server).map((r) =>
    (json(r.body).Operations as SentOp[]).map((o) => {
      const members = (o.data?.members as Array<{ value: string }> | undefined)?.map((m) => m.value);
      return `${o.method} ${o.path}${o.bulkId ? ` ${o.bulkId}` : ''}${members ? ` [${members.join(',')}]` : ''}`;
    }),
  );
}

const user = (bulkId: string): BulkOperation => ({
  method: 'POST',
  path: '/Users',
  bulkId,
  data: { schemas: [USER], userName: bulkId },
});
const group = (bulkId: string, ...members: string[]): BulkOperation => ({
  method: 'POST',
  path: '/Groups',
  bulkId,
  data: { schemas: [GROUP], displayName: bulkId, members: members.map((m) => ({ value: `bulkId:${m}` })) },
});

describe('bulk split with bulkId references', () => {
  test('plan: referenced creates first, otherwise the given order; cycles last, together', () => {
    assert.deepEqual(planBulk([user('a'), user('b'), group('g', 'a')]).groups, [[0], [1], [2]]);
    // The group refers forward to u1 and u2: they move before it, the PATCH after u1.
    const fwd = planBulk([
      group('g', 'u1', 'u2'),
      { method: 'DELETE', path: '/Users/x' },
      user('u1'),
      { method: 'PATCH', path: '/Users/bulkId:u1', data: { Operations: [] } },
      user('u2'),
    ]);
    assert.deepEqual(fwd.groups, [[1], [2], [3], [4], [0]]);
    // x and y refer to each other; z depends on the cycle.
    const cyc = planBulk([group('x', 'y'), user('a'), group('y', 'x'), group('z', 'x')]);
    assert.deepEqual(cyc.groups, [[1], [0, 2, 3]]);
  });

  test('forward references reordered; ids of earlier requests substituted; results in the given order', async () => {
    const { server, client } = await setup(bulkServer(), 2);
    const results = await client.bulk([
      group('g', 'u1', 'u2'),
      user('u1'),
      user('u2'),
      {
        method: 'PATCH',
        path: '/Users/bulkId:u1',
        data: { Operations: [{ op: 'add', path: 'title', value: 'x' }] },
      },
    ]);
    assert.deepEqual(requests(server), [
      ['POST /Users u1', 'POST /Users u2'],
      ['POST /Groups g [id-u1,id-u2]', 'PATCH /Users/id-u1'],
    ]);
    assert.deepEqual(results, [
      { method: 'POST', bulkId: 'g', status: '201', location: 'http://x/scim/Groups/id-g' },
      { method: 'POST', bulkId: 'u1', status: '201', location: 'http://x/scim/Users/id-u1' },
      { method: 'POST', bulkId: 'u2', status: '201', location: 'http://x/scim/Users/id-u2' },
      { method: 'PATCH', status: '200' },
    ]);
  });

  test('a reference to a failed creation fails locally, transitively, and is not sent', async () => {
    const { server, client } = await setup(bulkServer({ fail: ['u1'], noLocation: ['u2'] }), 2);
    const results = await client.bulk([
      user('u1'),
      user('u2'),
      group('g', 'u1'),
      { method: 'DELETE', path: '/Users/bulkId:u1' },
      group('h', 'g'),
      group('k', 'u2'),
      user('u3'),
      group('m', 'nope'),
    ]);
    assert.deepEqual(requests(server), [['POST /Users u1', 'POST /Users u2'], ['POST /Users u3']]);
    const failure = (
      bulkId: string | undefined,
      method: string,
      status: number,
      detail: string,
      scimType?: string,
    ) => ({
      method,
      ...(bulkId ? { bulkId } : {}),
      status: String(status),
      response: { schemas: [ERROR], status: String(status), ...(scimType ? { scimType } : {}), detail },
    });
    assert.deepEqual(results, [
      {
        method: 'POST',
        bulkId: 'u1',
        status: '409',
        response: { schemas: [ERROR], status: '409', scimType: 'uniqueness', detail: 'taken' },
      },
      { method: 'POST', bulkId: 'u2', status: '201' },
      failure(
        'g',
        'POST',
        409,
        'bulkId "u1" refers to an operation that failed (POST /Users: it failed with 409); not sent',
      ),
      failure(
        undefined,
        'DELETE',
        409,
        'bulkId "u1" refers to an operation that failed (POST /Users: it failed with 409); not sent',
      ),
      failure(
        'h',
        'POST',
        409,
        'bulkId "g" refers to an operation that failed (POST /Groups: it failed with 409); not sent',
      ),
      failure(
        'k',
        'POST',
        409,
        'bulkId "u2" refers to an operation that failed (POST /Users: its result (201) has no location); not sent',
      ),
      { method: 'POST', bulkId: 'u3', status: '201', location: 'http://x/scim/Users/id-u3' },
      failure(
        'm',
        'POST',
        400,
        'bulkId "nope" is not defined by a POST in this request; not sent',
        'invalidValue',
      ),
    ]);
  });

  test('local failures count for failOnErrors; references within one request are left to the server', async () => {
    const { server, client } = await setup(bulkServer({ fail: ['u1'] }), 3);
    const results = await client.bulk(
      [user('u1'), user('u2'), group('g', 'u2'), group('h', 'u1'), user('u3')],
      {
        failOnErrors: 2,
      },
    );
    // u2 and g share the first request: the server resolves bulkId:u2 itself.
    assert.deepEqual(requests(server), [['POST /Users u1', 'POST /Users u2', 'POST /Groups g [bulkId:u2]']]);
    assert.deepEqual(
      results.map((r) => `${r.bulkId} ${r.status}`),
      ['u1 409', 'u2 201', 'g 201', 'h 409'],
    );
    assert.equal(json(calls(server)[0].body).failOnErrors, 2);
  });

  test('a reference cycle goes into one request, started afresh when the current one is too full', async () => {
    const { server, client } = await setup(bulkServer(), 2);
    await client.bulk([user('a'), group('x', 'y'), group('y', 'x')]);
    assert.deepEqual(requests(server), [
      ['POST /Users a'],
      ['POST /Groups x [bulkId:y]', 'POST /Groups y [bulkId:x]'],
    ]);
  });

  test('without Bulk: one request each, references to failed or cyclic creations not sent', async () => {
    const server = await fakeServer(
      (r) => {
        if (r.method !== 'POST') return undefined;
        const body = json(r.body);
        const name = (body.userName ?? body.displayName) as string;
        if (name === 'u1') return { status: 409, body: { schemas: [ERROR], status: '409', detail: 'taken' } };
        return {
          status: 201,
          headers: { location: `http://x/scim${r.url}/id-${name}` },
          body: { id: `id-${name}` },
        };
      },
      { spc: spc() },
    );
    servers.push(server);
    const client = new ScimClient({ baseUrl: server.url });
    clients.push(client);
    const results = await client.bulk([
      group('g', 'u2'),
      user('u1'),
      user('u2'),
      group('h', 'u1'),
      group('x', 'y'),
      group('y', 'x'),
    ]);
    assert.deepEqual(
      calls(server).map((r) => `${r.method} ${r.url} ${JSON.stringify(json(r.body).members ?? null)}`),
      ['POST /scim/Users null', 'POST /scim/Users null', 'POST /scim/Groups [{"value":"id-u2"}]'],
    );
    assert.deepEqual(
      results.map(
        (r) => `${r.bulkId} ${r.status} ${(r.response as { detail?: string } | undefined)?.detail ?? ''}`,
      ),
      [
        'g 201 ',
        'u1 409 taken',
        'u2 201 ',
        'h 409 bulkId "u1" refers to an operation that failed (POST /Users: it failed with 409); not sent',
        'x 409 Circular bulkId references could not be resolved (y is created by operation 5, not sent before or with this one); not sent',
        'y 409 bulkId "x" refers to an operation that failed (POST /Groups: it failed with 409); not sent',
      ],
    );
  });
});
