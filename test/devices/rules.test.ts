/**
 * The draft's cross-attribute rules for BLE, declared as schema rules (no device code in the core):
 * an `irk` only when `isRandom` is true, and no `separateBroadcastAddress` together with an `irk`.
 * Every write path checks them on the resource as it would be stored: POST, PUT, PATCH, Bulk.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  assertScimError,
  BLE,
  bleDevice,
  BULK_REQUEST,
  deviceTenant,
  type Json,
  PATCH_OP,
  Scim,
} from './helpers.ts';

const TENANT = 'rules';
const IRK_NEEDS_RANDOM = `Extension "${BLE}": irk (identity resolving key) is allowed only when isRandom is true`;
const NO_BROADCAST_WITH_IRK = `Extension "${BLE}": separateBroadcastAddress must not be given together with an irk`;
const IRK = '0123456789abcdef0123456789abcdef';

function ble(mac: string, more: Json): Json {
  const d = bleDevice(mac);
  Object.assign(d[BLE], more);
  return d;
}

describe('BLE cross-attribute rules', () => {
  let t: TestApp;
  let scim: Scim;

  before(async () => {
    t = await startTestApp();
    scim = new Scim(t, TENANT, await deviceTenant(t, TENANT));
  });
  after(async () => {
    await t.close();
  });

  async function count(): Promise<number> {
    return (await scim.request('GET', '/Devices?count=0')).body.totalResults as number;
  }

  test('POST: irk needs isRandom true; never with separateBroadcastAddress', async () => {
    const before = await count();
    assertScimError(
      await scim.request('POST', '/Devices', ble('02:00:00:00:00:01', { irk: IRK })),
      400,
      IRK_NEEDS_RANDOM,
      'invalidValue',
    );
    assertScimError(
      await scim.request('POST', '/Devices', ble('02:00:00:00:00:01', { irk: IRK, isRandom: false })),
      400,
      IRK_NEEDS_RANDOM,
      'invalidValue',
    );
    assertScimError(
      await scim.request(
        'POST',
        '/Devices',
        ble('02:00:00:00:00:01', {
          irk: IRK,
          isRandom: true,
          separateBroadcastAddress: ['02:00:00:00:00:99'],
        }),
      ),
      400,
      NO_BROADCAST_WITH_IRK,
      'invalidValue',
    );
    assert.equal(await count(), before);
    // Allowed: irk with isRandom; broadcast addresses without an irk; an empty list is no value.
    await scim.create('/Devices', ble('02:00:00:00:00:01', { irk: IRK, isRandom: true }));
    await scim.create(
      '/Devices',
      ble('02:00:00:00:00:02', { separateBroadcastAddress: ['02:00:00:00:00:98'] }),
    );
    await scim.create(
      '/Devices',
      ble('02:00:00:00:00:03', { irk: `${IRK}03`, isRandom: true, separateBroadcastAddress: [] }),
    );
    assert.equal(await count(), before + 3);
  });

  test('PATCH and PUT: the rules hold for the resource as it would be stored (the stored irk counts)', async () => {
    const random = (
      await scim.create('/Devices', ble('02:00:00:00:01:01', { irk: `${IRK}11`, isRandom: true }))
    ).body;
    const plain = (await scim.create('/Devices', ble('02:00:00:00:01:02', {}))).body;
    const patch = (id: string, Operations: Json[]) =>
      scim.request('PATCH', `/Devices/${id}`, { schemas: [PATCH_OP], Operations });

    assertScimError(
      await patch(random.id, [{ op: 'replace', path: `${BLE}:isRandom`, value: false }]),
      400,
      IRK_NEEDS_RANDOM,
      'invalidValue',
    );
    assertScimError(
      await patch(random.id, [
        { op: 'add', path: `${BLE}:separateBroadcastAddress`, value: ['02:00:00:00:01:99'] },
      ]),
      400,
      NO_BROADCAST_WITH_IRK,
      'invalidValue',
    );
    assertScimError(
      await patch(plain.id, [{ op: 'add', path: `${BLE}:irk`, value: `${IRK}12` }]),
      400,
      IRK_NEEDS_RANDOM,
      'invalidValue',
    );
    // Both in one request: the result is what counts.
    const both = await patch(plain.id, [
      { op: 'add', path: `${BLE}:isRandom`, value: true },
      { op: 'add', path: `${BLE}:irk`, value: `${IRK}12` },
    ]);
    assert.equal(both.status, 200, both.text);

    const got = await scim.request('GET', `/Devices/${random.id}`);
    assert.equal(got.body[BLE].isRandom, true);
    assertScimError(
      await scim.request(
        'PUT',
        `/Devices/${random.id}`,
        ble('02:00:00:00:01:01', { irk: `${IRK}11`, isRandom: false }),
      ),
      400,
      IRK_NEEDS_RANDOM,
      'invalidValue',
    );
    assert.equal(
      (await scim.request('GET', `/Devices/${random.id}`)).body.meta.version,
      got.body.meta.version,
    );
  });

  test('Bulk: a breaking operation is a 400 of its own; the others are stored', async () => {
    const res = await scim.request('POST', '/Bulk', {
      schemas: [BULK_REQUEST],
      Operations: [
        {
          method: 'POST',
          path: '/Devices',
          bulkId: 'bad',
          data: ble('02:00:00:00:02:01', { irk: `${IRK}21` }),
        },
        { method: 'POST', path: '/Devices', bulkId: 'good', data: ble('02:00:00:00:02:02', {}) },
      ],
    });
    assert.equal(res.status, 200, res.text);
    const [bad, good] = res.body.Operations as Json[];
    assert.equal(bad.status, '400');
    assert.equal(bad.response.detail, IRK_NEEDS_RANDOM);
    assert.equal(bad.response.scimType, 'invalidValue');
    assert.equal(good.status, '201');
  });
});
