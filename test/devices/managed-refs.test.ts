/**
 * managed_refs: the rows a trigger keeps for each device's `applications`, from which a managed-only
 * client's unfiltered list is counted and paged. They must follow every write (create, import,
 * PATCH, PUT, DELETE) in the write's transaction, be rebuilt for rows stored before the trigger,
 * and give the same answers as the document-based path that filtered lists take.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { migrate } from '../../src/store/open.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  APPS_EXT,
  clientToken,
  deviceTenant,
  endpointApp,
  type Json,
  managedDevice,
  PATCH_OP,
  Scim,
} from './helpers.ts';

const TENANT = 'refs';
const MANAGED = ['Device:read', 'Device:write', 'devices:managed'];

describe('managed_refs follow the devices’ applications', () => {
  let t: TestApp;
  let admin: Scim;
  let cx: Scim;
  let appX: string;
  let appY: string;

  before(async () => {
    t = await startTestApp();
    admin = new Scim(t, TENANT, await deviceTenant(t, TENANT));
    appX = (await admin.create('/EndpointApps', endpointApp('App X'))).body.id;
    appY = (await admin.create('/EndpointApps', endpointApp('App Y', 'telemetry'))).body.id;
    cx = new Scim(
      t,
      TENANT,
      await clientToken(t, TENANT, { id: 'cx', name: 'app X', scopes: MANAGED, endpointAppId: appX }),
    );
  });
  after(async () => {
    await t.close();
  });

  async function refRows(): Promise<string[]> {
    const res = await t.app.db.query<{ ref: string; resource_id: string; resource_type: string }>(
      `SELECT ref, resource_id, resource_type FROM managed_refs WHERE tenant_id = $1 ORDER BY 1, 2`,
      [TENANT],
    );
    return res.rows
      .map(
        (r) => `${r.resource_type} ${r.ref === appX ? 'X' : r.ref === appY ? 'Y' : r.ref} ${r.resource_id}`,
      )
      .sort();
  }

  /** The unfiltered list (from managed_refs) and a filtered one matching everything (from the documents). */
  async function visible(): Promise<string[]> {
    const plain = await cx.request('GET', '/Devices?count=100');
    const filtered = await cx.request('GET', `/Devices?count=100&filter=${encodeURIComponent('id pr')}`);
    assert.equal(plain.status, 200, plain.text);
    assert.equal(filtered.status, 200, filtered.text);
    const idsOf = (body: Json) => ((body.Resources ?? []) as Json[]).map((d) => d.id as string).sort();
    assert.deepEqual(idsOf(plain.body), idsOf(filtered.body));
    assert.equal(plain.body.totalResults, filtered.body.totalResults);
    assert.equal(plain.body.totalResults, idsOf(plain.body).length);
    return idsOf(plain.body);
  }

  test('create, PATCH, PUT and DELETE keep the rows; lists agree with the document path', async () => {
    const d1 = (await admin.create('/Devices', managedDevice('02:00:00:00:1a:01', [appX]))).body;
    const d2 = (await admin.create('/Devices', managedDevice('02:00:00:00:1a:02', [appX, appY]))).body;
    const d3 = (await admin.create('/Devices', managedDevice('02:00:00:00:1a:03', [appY]))).body;
    assert.deepEqual(
      await refRows(),
      [`Device X ${d1.id}`, `Device X ${d2.id}`, `Device Y ${d2.id}`, `Device Y ${d3.id}`].sort(),
    );
    assert.deepEqual(await visible(), [d1.id, d2.id].sort());

    // Paging from managed_refs: exact totals, pages in id order.
    const [first, second] = [d1.id, d2.id].sort();
    const page2 = await cx.request('GET', '/Devices?count=1&startIndex=2');
    assert.equal(page2.status, 200);
    assert.deepEqual(
      [page2.body.totalResults, page2.body.itemsPerPage, page2.body.Resources.map((r: Json) => r.id)],
      [2, 1, [second]],
    );
    const page1 = await cx.request('GET', '/Devices?count=1');
    assert.deepEqual(
      page1.body.Resources.map((r: Json) => r.id),
      [first],
    );
    const none = await cx.request('GET', '/Devices?count=0');
    assert.deepEqual([none.body.totalResults, none.body.Resources], [2, undefined]);

    const patch = (id: string, value: Json) =>
      admin.request('PATCH', `/Devices/${id}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'replace', path: `${APPS_EXT}:applications`, value }],
      });
    assert.equal((await patch(d3.id, [{ value: appY }, { value: appX }])).status, 200);
    assert.equal((await patch(d1.id, [{ value: appY }])).status, 200);
    assert.deepEqual(await visible(), [d2.id, d3.id].sort());

    const put = await admin.request('PUT', `/Devices/${d2.id}`, managedDevice('02:00:00:00:1a:02', [appY]));
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(await visible(), [d3.id]);

    assert.equal((await admin.request('DELETE', `/Devices/${d3.id}`)).status, 204);
    assert.deepEqual(await visible(), []);
    assert.deepEqual(await refRows(), [`Device Y ${d1.id}`, `Device Y ${d2.id}`].sort());
  });

  test('rows of devices stored before the trigger existed are rebuilt by the migrations', async () => {
    const before = await refRows();
    assert.ok(before.length > 0);
    await t.app.db.query('DROP TRIGGER resources_managed_refs ON resources');
    await t.app.db.query('DELETE FROM managed_refs');
    await migrate(t.app.db, t.app.registry);
    assert.deepEqual(await refRows(), before);
    // Idempotent: a second start adds nothing.
    await migrate(t.app.db, t.app.registry);
    assert.deepEqual(await refRows(), before);
  });
});
