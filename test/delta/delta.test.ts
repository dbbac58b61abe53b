/**
 * Delta query (draft-sehgal-scim-delta-query-02): tokens, pages, net change per resource, a
 * replica kept by deltas equal to the source, filters and projection on data, and the token's
 * binding to tenant and endpoint. Runs on PGlite, and on PostgreSQL when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertScimError, scimBase, tenantWithAdmin } from '../auth/helpers.ts';
import {
  DELTA_REQUEST,
  DELTA_RESPONSE,
  DELTA_TOKEN,
  GROUP,
  UNRESERVED,
  apply,
  createUser,
  deltaToken,
  fullPull,
  ok,
  patch,
  pullDelta,
  settle,
  summary,
  user,
  type Json,
} from './helpers.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t?.close();
});

/** A fresh tenant per test: its log holds only that test's changes. */
async function tenant(id: string): Promise<{ base: string; token: string }> {
  const token = await tenantWithAdmin(t, id);
  return { base: scimBase(id), token };
}

/**
 * User.groups is derived from Group.members: a membership change is a change of the Group (its
 * log row and its version), not of the User, so a replica derives it as the server does.
 */
function deriveGroups(replica: Map<string, Json>): Map<string, Json> {
  const out = new Map<string, Json>();
  const groups = [...replica.values()].filter((r) => r.meta.resourceType === 'Group');
  for (const [id, r] of replica) {
    if (r.meta.resourceType !== 'User') {
      out.set(id, r);
      continue;
    }
    const { groups: _derived, ...rest } = r;
    const mine = groups
      .filter((g) => (g.members ?? []).some((m: Json) => m.value === id))
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((g) => ({ value: g.id, $ref: g.meta.location, display: g.displayName, type: 'direct' }));
    out.set(id, mine.length ? { ...rest, groups: mine } : rest);
  }
  return out;
}

describe('delta query: discovery and tokens', () => {
  test('ServiceProviderConfig advertises DeltaQuery with the retention as deltaTokenExpiry', async () => {
    const types = await t.request('GET', '/scim/v2/ResourceTypes');
    ok(types);
    const names = (types.body.Resources as Json[]).map((r) => r.name);
    const res = await t.request('GET', '/scim/v2/ServiceProviderConfig');
    ok(res);
    assert.deepEqual(res.body.DeltaQuery, {
      supported: true,
      deltaTokenExpiry: 30 * 86_400,
      supportedResources: ['ServerRoot', ...names],
    });
  });

  test('GET /Users/.deltaToken and GET /.deltaToken answer the delta:token schema', async () => {
    const { base, token } = await tenant('tok');
    for (const prefix of [`${base}/Users`, base]) {
      const before = Date.now();
      const res = await t.request('GET', `${prefix}/.deltaToken`, { token });
      ok(res);
      assert.equal(res.headers['content-type'], 'application/scim+json; charset=utf-8');
      assert.deepEqual(Object.keys(res.body).sort(), ['expiry', 'schemas', 'value']);
      assert.deepEqual(res.body.schemas, [DELTA_TOKEN]);
      assert.match(res.body.value, UNRESERVED);
      const expiry = Date.parse(res.body.expiry);
      assert.equal(new Date(expiry).toISOString(), res.body.expiry);
      assert.ok(expiry >= Math.floor(before / 1000) * 1000 + 30 * 86_400_000 - 1000);
      assert.ok(expiry <= Date.now() + 30 * 86_400_000);
    }
  });

  test('a delta with no changes: no items, itemsPerPage 0, and nextDeltaToken', async () => {
    const { base, token } = await tenant('quiet');
    const dt = await deltaToken(t, `${base}/Users`, token);
    const res = await t.request('POST', `${base}/Users/.delta`, {
      token,
      body: { schemas: [DELTA_REQUEST], deltaToken: dt },
    });
    ok(res);
    assert.deepEqual(Object.keys(res.body).sort(), [
      'Resources',
      'itemsPerPage',
      'nextDeltaToken',
      'schemas',
    ]);
    assert.deepEqual(res.body.Resources, []);
    assert.equal(res.body.itemsPerPage, 0);
    assert.deepEqual(Object.keys(res.body.nextDeltaToken).sort(), ['expiry', 'value']);
  });
});

describe('delta query: changes', () => {
  test('creates, updates and deletes across pages: each resource once, at its latest change, with its net change type', async () => {
    const { base, token } = await tenant('pages');
    const o1 = await createUser(t, base, 'old-1', token);
    const o2 = await createUser(t, base, 'old-2', token);
    const o3 = await createUser(t, base, 'old-3', token);
    const dt = await deltaToken(t, `${base}/Users`, token);

    const a = await createUser(t, base, 'a', token);
    const b = await createUser(t, base, 'b', token);
    ok(
      await t.request('PATCH', `${base}/Users/${o1.id}`, {
        token,
        body: patch([{ op: 'replace', path: 'displayName', value: 'One' }]),
      }),
    );
    ok(await t.request('DELETE', `${base}/Users/${o2.id}`, { token }), 204);
    const d = await createUser(t, base, 'd', token);
    ok(
      await t.request('PATCH', `${base}/Users/${d.id}`, {
        token,
        body: patch([{ op: 'add', path: 'title', value: 'Dee' }]),
      }),
    );
    const e = await createUser(t, base, 'e', token);
    ok(await t.request('DELETE', `${base}/Users/${e.id}`, { token }), 204);
    ok(
      await t.request('PUT', `${base}/Users/${o3.id}`, { token, body: user('old-3', { nickName: 'three' }) }),
    );
    // One Bulk request: one transaction, two log rows.
    const bulk = await t.request('POST', `${base}/Bulk`, {
      token,
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'],
        Operations: [
          { method: 'POST', path: '/Users', bulkId: 'f', data: user('f') },
          {
            method: 'PATCH',
            path: `/Users/${a.id}`,
            data: patch([{ op: 'replace', path: 'active', value: false }]),
          },
        ],
      },
    });
    ok(bulk);
    const f = bulk.body.Operations[0].location.split('/').pop();

    const pulled = await pullDelta(t, `${base}/Users`, dt, { count: 2 }, token);
    assert.deepEqual(
      pulled.pages.map((p) => p.Resources.length),
      [2, 2, 2, 2],
    );
    assert.deepEqual(
      pulled.pages.map((p) => [p.nextCursor !== undefined, p.nextDeltaToken !== undefined]),
      [
        [true, false],
        [true, false],
        [true, false],
        [false, true],
      ],
    );
    assert.deepEqual(summary(pulled.items), [
      `create:${b.id}`,
      `update:${o1.id}`,
      `delete:${o2.id}`,
      `create:${d.id}`,
      `delete:${e.id}`,
      `update:${o3.id}`,
      `create:${f}`,
      `create:${a.id}`,
    ]);
    for (const item of pulled.items) {
      assert.deepEqual(item.schemas, [DELTA_RESPONSE]);
      assert.equal(item.resourceType, 'User');
      if (item.changeType === 'delete') {
        assert.deepEqual(Object.keys(item).sort(), [
          'changeType',
          'changedResourceId',
          'resourceType',
          'schemas',
        ]);
        continue;
      }
      assert.deepEqual(Object.keys(item).sort(), [
        'changeType',
        'changedResourceId',
        'data',
        'resourceType',
        'schemas',
      ]);
      const current = await t.request('GET', `${base}/Users/${item.changedResourceId}`, { token });
      ok(current);
      assert.deepEqual(item.data, current.body);
    }
    const aItem = pulled.items.find((i) => i.changedResourceId === a.id);
    assert.equal(aItem.data.active, false);

    // The next token: nothing new, then exactly the newer change.
    const quiet = await pullDelta(t, `${base}/Users`, pulled.next, { count: 2 }, token);
    assert.deepEqual(quiet.items, []);
    ok(
      await t.request('PATCH', `${base}/Users/${b.id}`, {
        token,
        body: patch([{ op: 'replace', path: 'displayName', value: 'Bee' }]),
      }),
    );
    const later = await pullDelta(t, `${base}/Users`, quiet.next, {}, token);
    assert.deepEqual(summary(later.items), [`update:${b.id}`]);
    assert.equal(later.items[0].data.displayName, 'Bee');
  });

  test('a replica kept by root deltas equals a full pull of the source (members and derived groups included)', async () => {
    const { base, token } = await tenant('replica');
    const users: Json[] = [];
    for (let i = 0; i < 6; i++) users.push(await createUser(t, base, `u${i}`, token));
    const g1 = await t.request('POST', `${base}/Groups`, {
      token,
      body: {
        schemas: [GROUP],
        displayName: 'g1',
        members: [{ value: users[0].id }, { value: users[1].id }],
      },
    });
    ok(g1, 201);
    const dt = await deltaToken(t, base, token);
    // The replica starts from a full pull taken after the token.
    const replica = new Map([
      ...(await fullPull(t, base, '/Users', token)),
      ...(await fullPull(t, base, '/Groups', token)),
    ]);

    const g2 = await t.request('POST', `${base}/Groups`, {
      token,
      body: { schemas: [GROUP], displayName: 'g2', members: [{ value: users[2].id }] },
    });
    ok(g2, 201);
    ok(
      await t.request('PATCH', `${base}/Groups/${g1.body.id}`, {
        token,
        body: patch([{ op: 'add', path: 'members', value: [{ value: users[3].id }] }]),
      }),
      204,
    );
    ok(await t.request('DELETE', `${base}/Users/${users[0].id}`, { token }), 204);
    ok(
      await t.request('PATCH', `${base}/Users/${users[4].id}`, {
        token,
        body: patch([{ op: 'replace', path: 'userName', value: 'u4-renamed' }]),
      }),
    );
    users.push(await createUser(t, base, 'u6', token));
    ok(await t.request('DELETE', `${base}/Users/${users[5].id}`, { token }), 204);

    const first = await pullDelta(t, base, dt, { count: 3 }, token);
    apply(replica, first.items);
    const source = async () =>
      new Map([
        ...(await fullPull(t, base, '/Users', token)),
        ...(await fullPull(t, base, '/Groups', token)),
      ]);
    assert.deepEqual(deriveGroups(replica), await source());

    // A second round from nextDeltaToken.
    ok(await t.request('DELETE', `${base}/Groups/${g2.body.id}`, { token }), 204);
    ok(
      await t.request('PATCH', `${base}/Users/${users[1].id}`, {
        token,
        body: patch([{ op: 'add', path: 'title', value: 'T' }]),
      }),
    );
    const second = await pullDelta(t, base, first.next, { count: 3 }, token);
    assert.deepEqual(summary(second.items).sort(), [`delete:${g2.body.id}`, `update:${users[1].id}`].sort());
    apply(replica, second.items);
    assert.deepEqual(deriveGroups(replica), await source());
  });

  test('filter and attributes apply to data as for GET; deletes are reported whatever the filter', async () => {
    const { base, token } = await tenant('filtered');
    const f1 = await createUser(t, base, 'f-1', token);
    const f2 = await createUser(t, base, 'f-2', token);
    const f3 = await createUser(t, base, 'f-3', token);
    const g1 = await createUser(t, base, 'g-1', token);
    const dt = await deltaToken(t, `${base}/Users`, token);
    for (const u of [f1, f2, g1]) {
      ok(
        await t.request('PATCH', `${base}/Users/${u.id}`, {
          token,
          body: patch([{ op: 'add', path: 'title', value: 'x' }]),
        }),
      );
    }
    ok(await t.request('DELETE', `${base}/Users/${f3.id}`, { token }), 204);
    const pulled = await pullDelta(
      t,
      `${base}/Users`,
      dt,
      { filter: 'userName sw "f-"', attributes: ['userName'] },
      token,
    );
    assert.deepEqual(summary(pulled.items), [`update:${f1.id}`, `update:${f2.id}`, `delete:${f3.id}`]);
    for (const item of pulled.items.slice(0, 2)) {
      const get = await t.request('GET', `${base}/Users/${item.changedResourceId}?attributes=userName`, {
        token,
      });
      ok(get);
      assert.deepEqual(item.data, get.body);
      assert.equal(item.data.title, undefined);
    }
    const excluded = await pullDelta(
      t,
      `${base}/Users`,
      dt,
      { excludedAttributes: ['title', 'meta'] },
      token,
    );
    assert.equal(excluded.items.length, 4);
    for (const item of excluded.items.filter((i: Json) => i.data)) {
      const get = await t.request(
        'GET',
        `${base}/Users/${item.changedResourceId}?excludedAttributes=title,meta`,
        { token },
      );
      assert.deepEqual(item.data, get.body);
    }
    // A bad filter is a 400 even over an empty window.
    const quiet = await deltaToken(t, `${base}/Users`, token);
    for (const filter of ['userName eq', 'userName sw "f-") or (userName pr', 'noSuchAttribute eq "x"']) {
      const res = await t.request('POST', `${base}/Users/.delta`, {
        token,
        body: { schemas: [DELTA_REQUEST], deltaToken: quiet, filter },
      });
      assert.equal(res.status, 400, `${filter}: ${res.text}`);
      assert.equal(res.body.scimType, 'invalidFilter', filter);
    }
  });

  test('a root token covers every type; at an endpoint it yields that type only; the next token keeps the endpoint', async () => {
    const { base, token } = await tenant('rooted');
    const dt = await deltaToken(t, base, token);
    const u = await createUser(t, base, 'r-user', token);
    const g = await t.request('POST', `${base}/Groups`, {
      token,
      body: { schemas: [GROUP], displayName: 'r-group' },
    });
    ok(g, 201);
    const root = await pullDelta(t, base, dt, {}, token);
    assert.deepEqual(summary(root.items), [`create:${u.id}`, `create:${g.body.id}`]);
    assert.deepEqual(
      root.items.map((i) => i.resourceType),
      ['User', 'Group'],
    );
    const users = await pullDelta(t, `${base}/Users`, dt, {}, token);
    assert.deepEqual(summary(users.items), [`create:${u.id}`]);
    const groups = await pullDelta(t, `${base}/Groups`, dt, {}, token);
    assert.deepEqual(summary(groups.items), [`create:${g.body.id}`]);
    // A Users token is not a root token.
    const res = await t.request('POST', `${base}/.delta`, {
      token,
      body: { schemas: [DELTA_REQUEST], deltaToken: users.next },
    });
    assertScimError(
      res,
      400,
      /deltaToken is malformed, forged, or was not issued for this tenant and endpoint/,
      'invalidValue',
    );
    const other = await t.request('POST', `${base}/Groups/.delta`, {
      token,
      body: { schemas: [DELTA_REQUEST], deltaToken: users.next },
    });
    assertScimError(other, 400, /not issued for this tenant and endpoint/, 'invalidValue');
  });
});

describe('delta query: tokens and cursors are tamper-evident and tenant-bound', () => {
  test("another tenant's token → 400, and a tenant's delta never shows another tenant's changes", async () => {
    const a = await tenant('iso-a');
    const b = await tenant('iso-b');
    const dtA = await deltaToken(t, a.base, a.token);
    const dtB = await deltaToken(t, b.base, b.token);
    const ua = await createUser(t, a.base, 'same-name', a.token);
    const ub = await createUser(t, b.base, 'same-name', b.token);
    const res = await t.request('POST', `${b.base}/.delta`, {
      token: b.token,
      body: { schemas: [DELTA_REQUEST], deltaToken: dtA },
    });
    assertScimError(res, 400, /not issued for this tenant/, 'invalidValue');
    assert.deepEqual(summary((await pullDelta(t, a.base, dtA, {}, a.token)).items), [`create:${ua.id}`]);
    assert.deepEqual(summary((await pullDelta(t, b.base, dtB, {}, b.token)).items), [`create:${ub.id}`]);
  });

  test('a tampered, truncated or made-up token → 400 invalidValue; a missing one → 400', async () => {
    const { base, token } = await tenant('tamper');
    const dt = await deltaToken(t, `${base}/Users`, token);
    const [data, mac] = dt.split('.');
    const payload = JSON.parse(Buffer.from(data, 'base64url').toString('utf8'));
    const forged = Buffer.from(JSON.stringify({ ...payload, x: '1' })).toString('base64url');
    const flip = (s: string) => s.slice(0, -2) + (s.at(-2) === 'A' ? 'B' : 'A') + s.at(-1);
    for (const bad of [`${forged}.${mac}`, `${data}.${flip(mac)}`, data, 'nonsense', `${data}.`]) {
      const res = await t.request('POST', `${base}/Users/.delta`, {
        token,
        body: { schemas: [DELTA_REQUEST], deltaToken: bad },
      });
      assertScimError(res, 400, /deltaToken is malformed, forged/, 'invalidValue');
    }
    const missing = await t.request('POST', `${base}/Users/.delta`, {
      token,
      body: { schemas: [DELTA_REQUEST] },
    });
    assertScimError(missing, 400, 'deltaToken is required (draft-sehgal §5.1)', 'invalidValue');
    const noSchema = await t.request('POST', `${base}/Users/.delta`, { token, body: { deltaToken: dt } });
    assertScimError(noSchema, 400, `schemas must contain "${DELTA_REQUEST}"`, 'invalidSyntax');
  });

  test('page cursors: tampered → invalidCursor, another filter → invalidCursor, another count → invalidCount', async () => {
    const { base, token } = await tenant('cursors');
    const dt = await deltaToken(t, `${base}/Users`, token);
    for (let i = 0; i < 3; i++) await createUser(t, base, `c${i}`, token);
    await settle(t);
    const first = await t.request('POST', `${base}/Users/.delta`, {
      token,
      body: { schemas: [DELTA_REQUEST], deltaToken: dt, count: 1 },
    });
    ok(first);
    const cursor = first.body.nextCursor;
    assert.equal(typeof cursor, 'string');
    const next = (extra: Json) =>
      t.request('POST', `${base}/Users/.delta`, {
        token,
        body: { schemas: [DELTA_REQUEST], deltaToken: dt, count: 1, cursor, ...extra },
      });
    assertScimError(
      await next({ cursor: `${cursor.slice(0, -1)}${cursor.endsWith('A') ? 'B' : 'A'}` }),
      400,
      /cursor/,
      'invalidCursor',
    );
    assertScimError(await next({ filter: 'userName pr' }), 400, /cursor/, 'invalidCursor');
    assertScimError(await next({ count: 2 }), 400, /count must stay 1/, 'invalidCount');
    const fine = await next({});
    ok(fine);
    assert.equal(fine.body.Resources.length, 1);
  });

  test('changeType is written lower-case; both spellings read back (parseChangeType)', async () => {
    const { parseChangeType } = await import('../../src/service/delta.ts');
    assert.equal(parseChangeType('Create'), 'create');
    assert.equal(parseChangeType('create'), 'create');
    assert.equal(parseChangeType('UPDATE'), 'update');
    assert.equal(parseChangeType('Delete'), 'delete');
    assert.equal(parseChangeType('Remove'), undefined);
    assert.equal(parseChangeType(1), undefined);
  });
});
