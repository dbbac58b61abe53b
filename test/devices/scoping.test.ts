/**
 * devices:managed, the "must be shown": a client acting for EndpointApp X reaches the
 * devices naming X (and those it created), and nothing else — not by id, not in lists, counts,
 * filters, sorted or cursor pages, searches, or Bulk operations. Every refusal is a 404 (the device
 * "does not exist" for that client), and the other app's devices are left exactly as they were.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import {
  APPS_EXT,
  BLE,
  BULK_REQUEST,
  BULK_RESPONSE,
  PATCH_OP,
  SEARCH,
  Scim,
  assertScimError,
  bleDevice,
  clientToken,
  deviceTenant,
  endpointApp,
  ids,
  listOk,
  managedDevice,
  sorted,
  type Json,
} from './helpers.ts';

const TENANT = 'scoping';
const MANAGED = ['Device:read', 'Device:write', 'devices:managed'];

let t: TestApp;
let admin: Scim;
let cx: Scim;
let cy: Scim;
let appX: string;
let appY: string;
/** Device ids: two of X, two of Y, one of both, one of none. */
const d: Record<'x1' | 'x2' | 'y1' | 'y2' | 'xy' | 'none', string> = {
  x1: '',
  x2: '',
  y1: '',
  y2: '',
  xy: '',
  none: '',
};
const MAC = {
  x1: '02:00:00:00:0a:01',
  x2: '02:00:00:00:0a:02',
  y1: '02:00:00:00:0b:01',
  y2: '02:00:00:00:0b:02',
  xy: '02:00:00:00:0c:01',
  none: '02:00:00:00:0d:01',
};

before(async () => {
  t = await startTestApp();
  admin = new Scim(t, TENANT, await deviceTenant(t, TENANT));
  appX = (await admin.create('/EndpointApps', endpointApp('App X'))).body.id;
  appY = (await admin.create('/EndpointApps', endpointApp('App Y', 'telemetry'))).body.id;
  // Display names sort X's devices between Y's, so a sorted page of everything would mix them.
  d.x1 = (await admin.create('/Devices', managedDevice(MAC.x1, [appX], 'b x1'))).body.id;
  d.y1 = (await admin.create('/Devices', managedDevice(MAC.y1, [appY], 'a y1'))).body.id;
  d.x2 = (await admin.create('/Devices', managedDevice(MAC.x2, [appX], 'd x2'))).body.id;
  d.y2 = (await admin.create('/Devices', managedDevice(MAC.y2, [appY], 'c y2'))).body.id;
  d.xy = (await admin.create('/Devices', managedDevice(MAC.xy, [appY, appX], 'e xy'))).body.id;
  d.none = (await admin.create('/Devices', bleDevice(MAC.none, 'f none'))).body.id;
  cx = new Scim(
    t,
    TENANT,
    await clientToken(t, TENANT, { id: 'cx', name: 'app X', scopes: MANAGED, endpointAppId: appX }),
  );
  cy = new Scim(
    t,
    TENANT,
    await clientToken(t, TENANT, { id: 'cy', name: 'app Y', scopes: MANAGED, endpointAppId: appY }),
  );
});
after(async () => {
  await t.close();
});

const xVisible = () => sorted([d.x1, d.x2, d.xy]);
const yVisible = () => sorted([d.y1, d.y2, d.xy]);
/** Y's devices cx must not reach: Y's own, and the device of no app. */
const hiddenFromX = () => [d.y1, d.y2, d.none];

/** The admin's view of the devices cx must not reach: full bodies with their ETags. */
async function snapshot(): Promise<Map<string, { etag: string | undefined; body: Json }>> {
  const out = new Map<string, { etag: string | undefined; body: Json }>();
  for (const id of hiddenFromX()) {
    const res = await admin.request('GET', `/Devices/${id}`);
    assert.equal(res.status, 200, res.text);
    out.set(id, { etag: res.headers.etag, body: res.body });
  }
  return out;
}

async function assertUnchanged(before: Map<string, { etag: string | undefined; body: Json }>) {
  const now = await snapshot();
  for (const [id, was] of before) {
    assert.equal(now.get(id)!.etag, was.etag, `device ${id} changed`);
    assert.deepEqual(now.get(id)!.body, was.body, `device ${id} changed`);
  }
}

function notFound(res: TestResponse, id: string): void {
  assertScimError(res, 404, new RegExp(id));
}

/** Every page of a cursor walk (RFC 9865) of cx's device list. */
async function cursorWalk(client: Scim, count: number): Promise<{ ids: string[]; totals: number[] }> {
  const seen: string[] = [];
  const totals: number[] = [];
  let res = await client.request('GET', `/Devices?cursor&count=${count}`);
  for (let i = 0; ; i++) {
    assert.ok(i < 20, 'runaway cursor walk');
    listOk(res);
    totals.push(res.body.totalResults);
    seen.push(...(res.body.Resources ?? []).map((r: Json) => r.id));
    if (res.body.nextCursor === undefined) break;
    res = await client.request(
      'GET',
      `/Devices?cursor=${encodeURIComponent(res.body.nextCursor)}&count=${count}`,
    );
  }
  return { ids: seen, totals };
}

describe("devices:managed: cx (EndpointApp X) cannot reach Y's devices", () => {
  test("GET by id: 404 for Y's devices and the device of no app; 200 for X's (and the shared one)", async () => {
    const before = await snapshot();
    for (const id of hiddenFromX()) notFound(await cx.request('GET', `/Devices/${id}`), id);
    for (const id of xVisible()) {
      const res = await cx.request('GET', `/Devices/${id}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.id, id);
    }
    // A conditional GET must not reveal the device either (304 would confirm it exists with that version).
    for (const [id, { etag }] of before) {
      notFound(await cx.request('GET', `/Devices/${id}`, undefined, { 'if-none-match': etag! }), id);
    }
    await assertUnchanged(before);
  });

  test("PUT, PATCH, DELETE of Y's devices: 404, with or without If-Match, and nothing changes", async () => {
    const before = await snapshot();
    for (const [id, { etag, body }] of before) {
      const replacement = { ...body, displayName: 'taken over' };
      delete replacement.meta;
      notFound(await cx.request('PUT', `/Devices/${id}`, replacement), id);
      notFound(await cx.request('PUT', `/Devices/${id}`, replacement, { 'if-match': etag! }), id);
      const patch = {
        schemas: [PATCH_OP],
        Operations: [
          { op: 'replace', path: 'displayName', value: 'taken over' },
          { op: 'add', path: `${APPS_EXT}:applications`, value: [{ value: appX }] },
        ],
      };
      notFound(await cx.request('PATCH', `/Devices/${id}`, patch), id);
      notFound(await cx.request('PATCH', `/Devices/${id}`, patch, { 'if-match': etag! }), id);
      notFound(await cx.request('DELETE', `/Devices/${id}`), id);
      notFound(await cx.request('DELETE', `/Devices/${id}`, undefined, { 'if-match': etag! }), id);
    }
    await assertUnchanged(before);
  });

  test("list: only X's devices, and totalResults counts only them", async () => {
    const res = await cx.request('GET', '/Devices');
    listOk(res);
    assert.equal(res.body.totalResults, 3);
    assert.deepEqual(ids(res), xVisible());
    const counted = await cx.request('GET', '/Devices?count=0');
    listOk(counted);
    assert.equal(counted.body.totalResults, 3);
    assert.equal(counted.body.Resources, undefined);
  });

  test("filters: Y's MAC, Y's app, Y's id find nothing; a filter matching everything finds only X's", async () => {
    for (const filter of [
      `${BLE}:deviceMacAddress eq "${MAC.y1.toUpperCase().replaceAll(':', '-')}"`,
      `${BLE}:deviceMacAddress eq "${MAC.none}"`,
      `${APPS_EXT}:applications.value eq "${appY}" and not (${APPS_EXT}:applications.value eq "${appX}")`,
      `id eq "${d.y1}" or id eq "${d.none}"`,
    ]) {
      const res = await cx.filter('/Devices', filter);
      listOk(res);
      assert.equal(res.body.totalResults, 0, `${filter}: ${res.text.slice(0, 300)}`);
      assert.equal(res.body.Resources, undefined);
    }
    const all = await cx.filter('/Devices', 'active eq true or active eq false');
    listOk(all);
    assert.equal(all.body.totalResults, 3);
    assert.deepEqual(ids(all), xVisible());
    const shared = await cx.filter('/Devices', `${APPS_EXT}:applications.value eq "${appY}"`);
    listOk(shared);
    assert.deepEqual(ids(shared), [d.xy]);
  });

  test("sortBy with index paging: the pages hold X's devices only, in order", async () => {
    const pages: Json[] = [];
    for (const startIndex of [1, 2, 3, 4]) {
      const res = await cx.request('GET', `/Devices?sortBy=displayName&startIndex=${startIndex}&count=1`);
      listOk(res);
      assert.equal(res.body.totalResults, 3);
      assert.equal(res.body.startIndex, startIndex);
      pages.push(...(res.body.Resources ?? []));
    }
    assert.deepEqual(
      pages.map((r) => r.displayName),
      ['b x1', 'd x2', 'e xy'],
    );
    const desc = await cx.request('GET', '/Devices?sortBy=displayName&sortOrder=descending&count=2');
    listOk(desc);
    assert.deepEqual(
      desc.body.Resources.map((r: Json) => r.displayName),
      ['e xy', 'd x2'],
    );
  });

  test("cursor paging: walking every page yields only X's devices", async () => {
    for (const count of [1, 2]) {
      const walk = await cursorWalk(cx, count);
      assert.deepEqual(sorted(walk.ids), xVisible());
      assert.equal(walk.ids.length, 3);
      for (const total of walk.totals) assert.equal(total, 3);
    }
  });

  test("POST /Devices/.search: only X's devices; Y's MAC finds nothing", async () => {
    const all = await cx.request('POST', '/Devices/.search', {
      schemas: [SEARCH],
      filter: 'displayName pr',
      sortBy: 'displayName',
    });
    listOk(all);
    assert.equal(all.body.totalResults, 3);
    assert.deepEqual(
      all.body.Resources.map((r: Json) => r.id),
      [d.x1, d.x2, d.xy],
    );
    const y = await cx.request('POST', '/Devices/.search', {
      schemas: [SEARCH],
      filter: `${BLE}:deviceMacAddress eq "${MAC.y2}"`,
    });
    listOk(y);
    assert.equal(y.body.totalResults, 0);
  });

  test("root queries (POST /.search, GET /): only X's devices", async () => {
    const search = await cx.request('POST', '/.search', { schemas: [SEARCH], filter: 'displayName pr' });
    listOk(search);
    assert.equal(search.body.totalResults, 3);
    assert.deepEqual(ids(search), xVisible());
    const y = await cx.request('POST', '/.search', {
      schemas: [SEARCH],
      filter: `${BLE}:deviceMacAddress eq "${MAC.y1}"`,
    });
    listOk(y);
    assert.equal(y.body.totalResults, 0);
    const get = await cx.request('GET', `/?filter=${encodeURIComponent('displayName pr')}`);
    listOk(get);
    assert.equal(get.body.totalResults, 3);
    assert.deepEqual(ids(get), xVisible());
  });

  test("POST /Bulk: PATCH and DELETE of Y's device fail with 404 each; X's device is patched", async () => {
    const before = await snapshot();
    const res = await cx.request('POST', '/Bulk', {
      schemas: [BULK_REQUEST],
      Operations: [
        {
          method: 'PATCH',
          path: `/Devices/${d.y1}`,
          data: { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] },
        },
        { method: 'DELETE', path: `/Devices/${d.y2}` },
        { method: 'DELETE', path: `/Devices/${d.none}` },
        {
          method: 'PATCH',
          path: `/Devices/${d.x1}`,
          data: {
            schemas: [PATCH_OP],
            Operations: [{ op: 'replace', path: 'mudUrl', value: 'https://mud.example.org/x1' }],
          },
        },
      ],
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.schemas, [BULK_RESPONSE]);
    const ops = res.body.Operations as Json[];
    assert.deepEqual(
      ops.map((o) => [o.method, o.status]),
      [
        ['PATCH', '404'],
        ['DELETE', '404'],
        ['DELETE', '404'],
        ['PATCH', '200'],
      ],
    );
    for (const o of ops.slice(0, 3)) {
      assert.equal(o.response.status, '404');
      assert.equal(o.response.version, undefined);
      assert.equal(o.location, undefined, 'a refused operation must not tell where the device is');
    }
    assert.equal((await admin.request('GET', `/Devices/${d.x1}`)).body.mudUrl, 'https://mud.example.org/x1');
    await assertUnchanged(before);
  });

  test("cy, symmetrically, sees Y's devices and the shared one only", async () => {
    const res = await cy.request('GET', '/Devices');
    listOk(res);
    assert.equal(res.body.totalResults, 3);
    assert.deepEqual(ids(res), yVisible());
    notFound(await cy.request('GET', `/Devices/${d.x1}`), d.x1);
    assert.equal((await cy.request('GET', `/Devices/${d.y1}`)).status, 200);
  });
});

describe('owner and admin', () => {
  test("a device cx creates without applications is cx's (owner): visible to cx, not to cy", async () => {
    const created = await cx.create('/Devices', bleDevice('02:00:00:00:0e:01', 'g owned by cx'));
    const id = created.body.id as string;
    const got = await cx.request('GET', `/Devices/${id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, created.body);
    const list = await cx.request('GET', '/Devices');
    assert.equal(list.body.totalResults, 4);
    assert.ok(ids(list).includes(id));
    const patched = await cx.request('PATCH', `/Devices/${id}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.active, false);
    notFound(await cy.request('GET', `/Devices/${id}`), id);
    const cyList = await cy.request('GET', '/Devices');
    assert.equal(cyList.body.totalResults, 3);
    const deleted = await cx.request('DELETE', `/Devices/${id}`);
    assert.equal(deleted.status, 204);
    notFound(await admin.request('GET', `/Devices/${id}`), id);
  });

  test('a managed client without an EndpointApp reaches only what it created', async () => {
    const lone = new Scim(
      t,
      TENANT,
      await clientToken(t, TENANT, { id: 'lone', name: 'lone', scopes: MANAGED }),
    );
    const empty = await lone.request('GET', '/Devices');
    listOk(empty);
    assert.equal(empty.body.totalResults, 0);
    const own = await lone.create('/Devices', bleDevice('02:00:00:00:0f:01', 'h lone'));
    const list = await lone.request('GET', '/Devices');
    assert.deepEqual(ids(list), [own.body.id]);
    notFound(await lone.request('GET', `/Devices/${d.x1}`), d.x1);
    notFound(await cx.request('GET', `/Devices/${own.body.id}`), own.body.id);
    assert.equal((await admin.request('DELETE', `/Devices/${own.body.id}`)).status, 204);
  });

  test('an admin client sees every device', async () => {
    const res = await admin.request('GET', '/Devices');
    listOk(res);
    assert.equal(res.body.totalResults, 6);
    assert.deepEqual(ids(res), sorted(Object.values(d)));
    const filtered = await admin.filter('/Devices', `${BLE}:deviceMacAddress eq "${MAC.y1}"`);
    assert.deepEqual(ids(filtered), [d.y1]);
  });
});
