/**
 * Event feeds through the admin API (/admin/v1/tenants/{t}/feeds): exact views, validation errors
 * as SCIM errors (400 invalidFilter, unknown resource type, 404 unknown feed), who may call, and
 * member management. The CLI is test/events/feeds-cli.test.ts; what the feeds publish is
 * test/events/publisher.test.ts. Runs on PGlite, and on PostgreSQL with DATABASE_URL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { currentPosition } from '../../src/store/changes.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishSettled, settleChangeLog } from '../helpers/events.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const JSON_HEADERS = { 'content-type': 'application/json' };

let t: TestApp;
let acmeAdmin: string;
let betaAdmin: string;

before(async () => {
  t = await startTestApp({ backgroundWorkers: false });
  await t.app.admin.createTenant({ id: 'acme' });
  await t.app.admin.createTenant({ id: 'beta', settings: { resourceTypes: ['User'] } });
  await t.app.admin.createClient('acme', { id: 'acme-admin', name: 'acme admin', scopes: ['admin'] });
  acmeAdmin = (await t.app.admin.issueToken('acme', 'acme-admin')).token;
  await t.app.admin.createClient('beta', { id: 'beta-admin', name: 'beta admin', scopes: ['admin'] });
  betaAdmin = (await t.app.admin.issueToken('beta', 'beta-admin')).token;
});
after(async () => {
  await t?.close();
});

function publish() {
  return publishSettled(t.app);
}

function post(url: string, body: unknown, token?: string) {
  return t.request('POST', url, { body, headers: JSON_HEADERS, token });
}

function assertError(
  res: { status: number; body: unknown },
  status: number,
  scimType: string | undefined,
  detail: string | RegExp,
) {
  const body = res.body as { schemas: string[]; status: string; scimType?: string; detail: string };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.deepEqual(body.schemas, [ERROR]);
  assert.equal(body.status, String(status));
  assert.equal(body.scimType, scimType);
  if (typeof detail === 'string') assert.equal(body.detail, detail);
  else assert.match(body.detail, detail);
}

describe('feeds admin API', () => {
  test('create: 201, Location, the exact view; GET, list', async () => {
    const before = await currentPosition(t.app.db);
    const res = await post('/admin/v1/tenants/acme/feeds', {
      id: 'eng',
      name: 'Engineers',
      resourceTypes: ['user', 'Group'],
      filter: 'displayName sw "E"',
      form: 'notice',
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers.location, '/admin/v1/tenants/acme/feeds/eng');
    const { created, position, ...rest } = res.body;
    assert.deepEqual(rest, {
      id: 'eng',
      tenant: 'acme',
      name: 'Engineers',
      resourceTypes: ['User', 'Group'],
      filter: 'displayName sw "E"',
      explicitMembers: false,
      form: 'notice',
      uri: 'http://scimd.test/tenants/acme/scim/v2/Feeds/eng',
      memberCount: 0,
      receiverCount: 0,
    });
    assert.ok(BigInt(position) >= BigInt(before));
    assert.ok(Math.abs(Date.parse(created) - Date.now()) < 60_000);
    const got = await t.request('GET', '/admin/v1/tenants/acme/feeds/eng', { token: acmeAdmin });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, res.body);
    const list = await t.request('GET', '/admin/v1/tenants/acme/feeds', { token: acmeAdmin });
    assert.deepEqual(list.body, { feeds: [res.body] });
  });

  test('from: beginning starts at position 0; a random id when none is given; default tenant URI', async () => {
    const res = await post('/admin/v1/tenants/default/feeds', {
      name: 'replay',
      resourceTypes: ['User'],
      form: 'full',
      from: 'beginning',
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.position, '0');
    assert.match(res.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(res.body.uri, `http://scimd.test/scim/v2/Feeds/${res.body.id}`);
  });

  test('a filter feed over several types starting now records the resources that match now, with their types', async () => {
    const u = await t.request('POST', '/tenants/acme/scim/v2/Users', {
      body: {
        schemas: [USER],
        userName: 'seed-user',
        displayName: 'Seeded user',
        externalId: 'su',
        active: true,
      },
      token: acmeAdmin,
    });
    assert.equal(u.status, 201, u.text);
    const g = await t.request('POST', '/tenants/acme/scim/v2/Groups', {
      body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Seeded group' },
      token: acmeAdmin,
    });
    assert.equal(g.status, 201, g.text);
    await t.request('POST', '/tenants/acme/scim/v2/Users', {
      body: { schemas: [USER], userName: 'other-user', displayName: 'Other' },
      token: acmeAdmin,
    });
    // userName exists on User only: over two types the filter binds leniently.
    const res = await post('/admin/v1/tenants/acme/feeds', {
      id: 'seeded',
      name: 's',
      resourceTypes: ['User', 'Group'],
      filter: 'displayName sw "Seeded" or userName eq "nobody"',
      form: 'full',
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.memberCount, 2);
    const members = await t.request('GET', '/admin/v1/tenants/acme/feeds/seeded/members');
    const got = members.body.members
      .map((m: Record<string, unknown>) => [m.resourceId, m.resourceType, m.externalId, m.active])
      .sort((a: string[], b: string[]) => a[1].localeCompare(b[1]));
    assert.deepEqual(got, [
      [g.body.id, 'Group', undefined, undefined],
      [u.body.id, 'User', 'su', true],
    ]);
    assert.equal((await t.request('DELETE', '/admin/v1/tenants/acme/feeds/seeded')).status, 204);
  });

  test('validation: invalidFilter, unknown type, type the tenant does not serve, filter with explicit members, duplicate id, bad id, strict bodies', async () => {
    assertError(
      await post('/admin/v1/tenants/acme/feeds', {
        name: 'x',
        resourceTypes: ['User'],
        filter: 'userName eq',
        form: 'full',
      }),
      400,
      'invalidFilter',
      /.+/,
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds', {
        name: 'x',
        resourceTypes: ['User'],
        filter: 'nosuch eq "a"',
        form: 'full',
      }),
      400,
      'invalidFilter',
      'Unknown attribute "nosuch" for resource type User',
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds', { name: 'x', resourceTypes: ['Robot'], form: 'full' }),
      400,
      'invalidValue',
      'Unknown resource type "Robot" (tenant acme does not serve it)',
    );
    assertError(
      await post(
        '/admin/v1/tenants/beta/feeds',
        { name: 'x', resourceTypes: ['Group'], form: 'full' },
        betaAdmin,
      ),
      400,
      'invalidValue',
      'Unknown resource type "Group" (tenant beta does not serve it)',
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds', {
        name: 'x',
        resourceTypes: ['User'],
        filter: 'userName sw "a"',
        explicitMembers: true,
        form: 'full',
      }),
      400,
      'invalidValue',
      'A feed has either a filter or explicit members, not both',
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds', {
        id: 'eng',
        name: 'x',
        resourceTypes: ['User'],
        form: 'full',
      }),
      409,
      'uniqueness',
      'Feed eng already exists in tenant acme',
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds', {
        id: 'a b',
        name: 'x',
        resourceTypes: ['User'],
        form: 'full',
      }),
      400,
      'invalidValue',
      'id must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ -',
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds', { name: 'x', resourceTypes: ['User'], form: 'compact' }),
      400,
      'invalidValue',
      /^body\/form must be equal to one of the allowed values/,
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds', { name: 'x', resourceTypes: [], form: 'full' }),
      400,
      'invalidValue',
      /^body\/resourceTypes must NOT have fewer than 1 items/,
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds', {
        name: 'x',
        resourceTypes: ['User'],
        form: 'full',
        extra: 1,
      }),
      400,
      'invalidValue',
      /extra/,
    );
    const feeds = await t.request('GET', '/admin/v1/tenants/acme/feeds');
    assert.deepEqual(
      feeds.body.feeds.map((f: { id: string }) => f.id),
      ['eng'],
    );
  });

  test('404s: unknown feed (GET, PATCH, DELETE, members), unknown tenant', async () => {
    const msg = 'No feed nope in tenant acme';
    assertError(await t.request('GET', '/admin/v1/tenants/acme/feeds/nope'), 404, undefined, msg);
    assertError(
      await t.request('PATCH', '/admin/v1/tenants/acme/feeds/nope', {
        body: { name: 'y' },
        headers: JSON_HEADERS,
      }),
      404,
      undefined,
      msg,
    );
    assertError(await t.request('DELETE', '/admin/v1/tenants/acme/feeds/nope'), 404, undefined, msg);
    assertError(await t.request('GET', '/admin/v1/tenants/acme/feeds/nope/members'), 404, undefined, msg);
    assertError(
      await post('/admin/v1/tenants/acme/feeds/nope/members', { resourceId: 'x' }),
      404,
      undefined,
      msg,
    );
    assertError(await t.request('GET', '/admin/v1/tenants/ghost/feeds'), 404, undefined, 'No tenant ghost');
  });

  test('who may call: the tenant admin and the operator; another tenant admin gets 403, no token 401', async () => {
    assert.equal((await t.request('GET', '/admin/v1/tenants/acme/feeds', { token: betaAdmin })).status, 403);
    assert.equal((await t.request('GET', '/admin/v1/tenants/acme/feeds', { token: false })).status, 401);
    assert.equal((await t.request('GET', '/admin/v1/tenants/beta/feeds', { token: betaAdmin })).status, 200);
  });

  test('PATCH: name, filter, form, types; filter null removes it; errors', async () => {
    const created = await post('/admin/v1/tenants/acme/feeds', {
      id: 'chg',
      name: 'c',
      resourceTypes: ['User'],
      filter: 'userName sw "a"',
      form: 'full',
    });
    assert.equal(created.status, 201);
    const patch = (body: unknown) =>
      t.request('PATCH', '/admin/v1/tenants/acme/feeds/chg', { body, headers: JSON_HEADERS });
    let res = await patch({ name: 'changed', form: 'notice', filter: 'title eq "x"' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.name, 'changed');
    assert.equal(res.body.form, 'notice');
    assert.equal(res.body.filter, 'title eq "x"');
    res = await patch({ filter: null, resourceTypes: ['User', 'Group'] });
    assert.equal(res.status, 200, res.text);
    assert.equal('filter' in res.body, false);
    assert.deepEqual(res.body.resourceTypes, ['User', 'Group']);
    assertError(await patch({ filter: 'bad eq' }), 400, 'invalidFilter', /.+/);
    assertError(await patch({}), 400, 'invalidValue', /^body must NOT have fewer than 1 properties/);
    assertError(await patch({ explicitMembers: true }), 400, 'invalidValue', /explicitMembers/);
    const explicit = await post('/admin/v1/tenants/acme/feeds', {
      id: 'exp',
      name: 'e',
      resourceTypes: ['User'],
      explicitMembers: true,
      form: 'full',
    });
    assert.equal(explicit.status, 201);
    assertError(
      await t.request('PATCH', '/admin/v1/tenants/acme/feeds/exp', {
        body: { filter: 'userName sw "a"' },
        headers: JSON_HEADERS,
      }),
      400,
      'invalidValue',
      'A feed with explicit members has no filter',
    );
  });

  test('members: add (201, Location, view), duplicate 409, unknown resource 404, list with count, remove 204, again 404; filter feeds take no members', async () => {
    const feed = await post('/admin/v1/tenants/acme/feeds', {
      id: 'picked',
      name: 'p',
      resourceTypes: ['User'],
      explicitMembers: true,
      form: 'notice',
    });
    assert.equal(feed.status, 201);
    const u = await t.request('POST', '/tenants/acme/scim/v2/Users', {
      body: { schemas: [USER], userName: 'member1', externalId: 'm-1', active: false },
      token: acmeAdmin,
    });
    assert.equal(u.status, 201, u.text);
    const add = await post('/admin/v1/tenants/acme/feeds/picked/members', { resourceId: u.body.id });
    assert.equal(add.status, 201, add.text);
    assert.equal(add.headers.location, `/admin/v1/tenants/acme/feeds/picked/members/${u.body.id}`);
    const { added, ...member } = add.body;
    assert.deepEqual(member, {
      resourceId: u.body.id,
      resourceType: 'User',
      externalId: 'm-1',
      active: false,
    });
    assert.ok(Math.abs(Date.parse(added) - Date.now()) < 60_000);
    assertError(
      await post('/admin/v1/tenants/acme/feeds/picked/members', { resourceId: u.body.id }),
      409,
      'uniqueness',
      `${u.body.id} is already a member of feed picked`,
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds/picked/members', { resourceId: 'no-such' }),
      404,
      undefined,
      'No User no-such',
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds/picked/members', {
        resourceId: u.body.id,
        resourceType: 'Group',
      }),
      400,
      'invalidValue',
      'Feed picked carries User, not Group',
    );
    // Another tenant's resource is not found in this one.
    const other = await t.request('POST', '/scim/v2/Users', {
      body: { schemas: [USER], userName: 'dflt-member' },
    });
    assertError(
      await post('/admin/v1/tenants/acme/feeds/picked/members', { resourceId: other.body.id }),
      404,
      undefined,
      `No User ${other.body.id}`,
    );
    const list = await t.request('GET', '/admin/v1/tenants/acme/feeds/picked/members?count=10');
    assert.deepEqual(list.body, { totalResults: 1, startIndex: 1, members: [add.body] });
    const shown = await t.request('GET', '/admin/v1/tenants/acme/feeds/picked');
    assert.equal(shown.body.memberCount, 1);
    const empty = await t.request('GET', '/admin/v1/tenants/acme/feeds/picked/members?startIndex=2');
    assert.deepEqual(empty.body, { totalResults: 1, startIndex: 2, members: [] });
    const del = await t.request('DELETE', `/admin/v1/tenants/acme/feeds/picked/members/${u.body.id}`);
    assert.equal(del.status, 204);
    assertError(
      await t.request('DELETE', `/admin/v1/tenants/acme/feeds/picked/members/${u.body.id}`),
      404,
      undefined,
      `${u.body.id} is not a member of feed picked`,
    );
    assertError(
      await post('/admin/v1/tenants/acme/feeds/eng/members', { resourceId: u.body.id }),
      400,
      'invalidValue',
      'Feed eng selects its members by its filter; only a feed with explicitMembers takes members by hand',
    );
  });

  test('DELETE removes the feed with its members and receivers (and their outbox rows)', async () => {
    // The feed starts at the log's position; settled first, that is above every earlier write of
    // this file (another file's open transaction could hold it below them: more than one row).
    await settleChangeLog(t.app);
    await post('/admin/v1/tenants/acme/feeds', {
      id: 'gone',
      name: 'g',
      resourceTypes: ['User'],
      form: 'full',
    });
    await t.app.db.query(
      `INSERT INTO event_receivers (tenant_id, id, feed_id, name, delivery, poll_client_id) VALUES ('acme', 'r-gone', 'gone', 'r', 'poll', 'c')`,
    );
    await t.request('POST', '/tenants/acme/scim/v2/Users', {
      body: { schemas: [USER], userName: 'goner' },
      token: acmeAdmin,
    });
    await publish();
    const rows = await t.app.db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM event_outbox WHERE tenant_id = 'acme' AND receiver_id = 'r-gone'`,
    );
    assert.equal(rows.rows[0].n, '1');
    assert.equal((await t.request('DELETE', '/admin/v1/tenants/acme/feeds/gone')).status, 204);
    assertError(
      await t.request('GET', '/admin/v1/tenants/acme/feeds/gone'),
      404,
      undefined,
      'No feed gone in tenant acme',
    );
    const left = await t.app.db.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM event_receivers WHERE tenant_id = 'acme' AND id = 'r-gone')
            + (SELECT count(*) FROM event_outbox WHERE tenant_id = 'acme' AND receiver_id = 'r-gone') AS n`,
    );
    assert.equal(Number(left.rows[0].n), 0);
  });
});
