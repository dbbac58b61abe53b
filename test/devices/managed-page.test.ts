/**
 * The managed-only client's unfiltered list (counted and paged from managed_refs in one statement,
 * the visible ids read once for both) answers exactly what the document path answers (a filter
 * matching every device), page by page: the same totals, the same resources in the same order,
 * byte for byte, with and without attributes, past the end and with count=0; devices the client
 * created and devices naming its app both count, once each.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  bleDevice,
  clientToken,
  deviceTenant,
  endpointApp,
  type Json,
  LIST,
  managedDevice,
  Scim,
} from './helpers.ts';

const TENANT = 'mpage';
const MANAGED = ['Device:read', 'Device:write', 'devices:managed'];
const mac = (i: number) => `02:00:00:00:2b:${i.toString(16).padStart(2, '0')}`;

describe('managed-only list pages', () => {
  let t: TestApp;
  let cx: Scim;
  let expectedIds: string[];

  before(async () => {
    t = await startTestApp();
    const admin = new Scim(t, TENANT, await deviceTenant(t, TENANT));
    const appX = (await admin.create('/EndpointApps', endpointApp('App X'))).body.id as string;
    const appY = (await admin.create('/EndpointApps', endpointApp('App Y', 'telemetry'))).body.id as string;
    cx = new Scim(
      t,
      TENANT,
      await clientToken(t, TENANT, { id: 'cx', name: 'app X', scopes: MANAGED, endpointAppId: appX }),
    );
    const ids: string[] = [];
    // Naming X (some X and Y), naming only Y (not visible), created by cx (one of them naming X too).
    for (let i = 0; i < 7; i++) {
      const apps = i % 3 === 0 ? [appX, appY] : [appX];
      ids.push((await admin.create('/Devices', managedDevice(mac(i), apps))).body.id as string);
    }
    for (let i = 7; i < 10; i++) await admin.create('/Devices', managedDevice(mac(i), [appY]));
    ids.push((await cx.create('/Devices', bleDevice(mac(10)))).body.id as string);
    ids.push((await cx.create('/Devices', managedDevice(mac(11), [appX]))).body.id as string);
    expectedIds = ids.sort();
  });
  after(async () => {
    await t.close();
  });

  async function both(query: string): Promise<[Json, Json]> {
    const plain = await cx.request('GET', `/Devices?${query}`);
    const filtered = await cx.request('GET', `/Devices?${query}&filter=${encodeURIComponent('id pr')}`);
    assert.equal(plain.status, 200, plain.text);
    assert.equal(filtered.status, 200, filtered.text);
    return [plain, filtered];
  }

  test('every page, with and without attributes, equals the document path', async () => {
    for (const attrs of ['', '&attributes=displayName', '&excludedAttributes=meta']) {
      for (const count of [1, 3, 5, 100]) {
        const seen: string[] = [];
        for (let start = 1; start <= expectedIds.length + 1; start += count) {
          const [plain, filtered] = await both(`count=${count}&startIndex=${start}${attrs}`);
          assert.equal(plain.text, filtered.text, `count=${count} startIndex=${start}${attrs}`);
          assert.equal(plain.body.totalResults, expectedIds.length);
          for (const r of (plain.body.Resources ?? []) as Json[]) seen.push(r.id as string);
        }
        assert.deepEqual(seen, expectedIds, `count=${count}${attrs}: each visible device once, in id order`);
      }
    }
  });

  test('past the end and count=0: the total, no Resources', async () => {
    for (const query of [`count=10&startIndex=${expectedIds.length + 5}`, 'count=0']) {
      const [plain, filtered] = await both(query);
      assert.equal(plain.text, filtered.text, query);
      assert.deepEqual(plain.body, {
        schemas: [LIST],
        totalResults: expectedIds.length,
        startIndex: query === 'count=0' ? 1 : expectedIds.length + 5,
        itemsPerPage: 0,
      });
    }
  });
});
