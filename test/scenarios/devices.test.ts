/**
 * Device use cases of the SCIM use-cases draft (figures 18-24), with three scimd processes:
 *   mfr   the manufacturer, multi-tenant: one tenant per customer account (acme, globex, initech
 *         get their devices pushed; hooli and umbrella pull theirs);
 *   cust  the customers' device managers: one tenant per customer, each its own SCIM endpoint;
 *   app   a client app (a heart-monitor app) with a SCIM server of its own: tenant `heart` pulls
 *         the devices it manages from acme's device manager, tenant `creds` receives their
 *         credentials pushed by that device manager.
 * Configured through the admin API over HTTP and SCIM only, as docs/use-cases/ shows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  addClient,
  addConnection,
  addFlow,
  APPS_EXT,
  BLE,
  BULK,
  by,
  content,
  createTenant,
  DEVICE,
  ENDPOINT_APP,
  convergesByTriggers,
  getFlow,
  http,
  listAll,
  ok,
  PASSKEY,
  PATCH_OP,
  runFlow,
  runOk,
  sorted,
  startNode,
  startNodes,
  type Json,
  type Node,
} from './lib.ts';

let mfr: Node;
let cust: Node;
let app: Node;

before(async () => {
  [mfr, cust, app] = await startNodes(startNode('mfr'), startNode('cust'), startNode('app'));
});
after(async () => {
  await Promise.all([mfr?.close(), cust?.close(), app?.close()]);
});

const PUSHED = ['acme', 'globex', 'initech'];
const PULLED = ['hooli', 'umbrella'];
const SOLD: Record<string, number> = { acme: 3, globex: 2, initech: 1, hooli: 2, umbrella: 1 };
const MUD1 = 'https://mfr.example/mud/monitor-v1';
const MUD2 = 'https://mfr.example/mud/monitor-v2';
const MAC = 'urn:ietf:params:scim:schemas:extension:ble:2.0:Device:deviceMacAddress';
const devicesSettings = (c: string) => ({
  devices: {
    deviceControlEnterpriseEndpoint: `https://gw.${c}.example/control`,
    telemetryEnterpriseEndpoint: `https://gw.${c}.example/telemetry`,
  },
});
/** The gateway part of a device: each customer's own (ids of its EndpointApps, its gateway). */
const NOT_COPIED = [
  { drop: `${APPS_EXT}:applications` },
  { drop: `${APPS_EXT}:deviceControlEnterpriseEndpoint` },
  { drop: `${APPS_EXT}:telemetryEnterpriseEndpoint` },
];

function device(customer: string, i: number, active = true): Json {
  const c = Object.keys(SOLD).indexOf(customer);
  return {
    schemas: [DEVICE, BLE],
    externalId: `SN-${customer}-${i}`,
    displayName: `Monitor ${customer} ${i}`,
    active,
    mudUrl: MUD1,
    [BLE]: {
      deviceMacAddress: `02:00:00:00:0${c}:0${i}`,
      isRandom: false,
      versionSupport: ['5.3'],
      pairingMethods: [PASSKEY],
      [PASSKEY]: { key: 100000 + c * 100 + i },
    },
  };
}

const macs = (list: Json[]) => sorted(list.map((d) => d[BLE].deviceMacAddress as string));
const noExt = (d: Json): Json => {
  const c = content(d);
  delete c[APPS_EXT];
  delete c.groups;
  c.schemas = (c.schemas as string[]).filter((s) => s !== APPS_EXT);
  return c;
};

describe('device use cases (figures 18-24)', () => {
  const factory: Record<string, string> = {};
  const dm: Record<string, string> = {};
  let appId = '';

  test('use case 30: the multi-tenant manufacturer pushes each device, with its pairing data, only to the customer that bought it', async () => {
    for (const c of Object.keys(SOLD)) {
      await createTenant(mfr, c);
      factory[c] = await addClient(mfr, c, 'factory', ['scim:read', 'scim:write', 'devices:secrets']);
      const ops = [];
      for (let i = 1; i <= SOLD[c]; i++)
        ops.push({ method: 'POST', path: '/Devices', bulkId: `d${i}`, data: device(c, i) });
      // One device of acme's order is not shipped yet: out of the flow's scope.
      if (c === 'acme')
        ops.push({ method: 'POST', path: '/Devices', bulkId: 'd9', data: device(c, 9, false) });
      const res = await ok('POST', `${mfr.scim(c)}/Bulk`, factory[c], { schemas: [BULK], Operations: ops });
      assert.ok(
        (res.Operations as Json[]).every((o) => o.status === '201'),
        JSON.stringify(res),
      );
      await createTenant(cust, c, devicesSettings(c));
      dm[c] = await addClient(cust, c, 'device-manager', ['scim:read', 'scim:write', 'devices:secrets']);
    }
    for (const c of PUSHED) {
      const token = await addClient(cust, c, 'manufacturer', [
        'Device:read',
        'Device:write',
        'devices:secrets',
      ]);
      await addConnection(mfr, c, 'customer', cust.scim(c), token);
      await addFlow(mfr, c, {
        id: 'registry',
        connectionId: 'customer',
        direction: 'push',
        mode: 'changes',
        resourceTypes: ['Device'],
        filter: 'active eq true',
        // 32: name and state are the customer's after the first push; the gateway part is theirs.
        authority: {
          initial: ['displayName', 'active'],
          remote: [`${APPS_EXT}:applications`, `${BLE}:mobility`],
        },
        mapping: { rules: NOT_COPIED },
      });
      await runOk(mfr, c, 'registry', { created: SOLD[c] });
      await ok('PATCH', `${mfr.admin(c)}/flows/registry`, mfr.adminToken, { onLocalChange: true });
    }
    for (const c of PUSHED) {
      const src = (await listAll(mfr.scim(c), factory[c], 'Devices')).filter((d) => d.active);
      const got = await listAll(cust.scim(c), dm[c], 'Devices');
      assert.deepEqual(macs(got), macs(src), `${c} holds exactly its devices`);
      const s = by(src, 'externalId');
      for (const d of got) assert.deepEqual(noExt(d), noExt(s.get(d.externalId)!), d.externalId);
    }
    for (const c of PULLED) assert.equal((await listAll(cust.scim(c), dm[c], 'Devices')).length, 0);
  });

  test('use cases 34, 32: a commissioning app PATCHes installation attributes; later manufacturer pushes leave what the customer owns', async () => {
    // acme's device manager registers the heart-monitor app (its EndpointApp) ...
    const endpointApp = await ok('POST', `${cust.scim('acme')}/EndpointApps`, dm.acme, {
      schemas: [ENDPOINT_APP],
      applicationType: 'deviceControl',
      applicationName: 'Heart monitor app',
    });
    appId = endpointApp.id as string;
    assert.equal(typeof endpointApp.clientToken, 'string');
    // ... and the commissioning app, a SCIM client with Device rights only, installs two monitors.
    const commissioning = await addClient(cust, 'acme', 'commissioning', ['Device:read', 'Device:write']);
    const acme = by(await listAll(cust.scim('acme'), dm.acme, 'Devices'), 'externalId');
    for (const [i, place] of [
      [1, 'ICU bed 4'],
      [2, 'ICU bed 5'],
    ] as const) {
      const res = await http(
        'PATCH',
        `${cust.scim('acme')}/Devices/${acme.get(`SN-acme-${i}`)!.id}`,
        commissioning,
        {
          schemas: [PATCH_OP],
          Operations: [
            { op: 'replace', path: 'displayName', value: `${place} monitor` },
            { op: 'replace', path: `${BLE}:mobility`, value: false },
            { op: 'add', path: `${APPS_EXT}:applications`, value: [{ value: appId }] },
          ],
        },
      );
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.displayName, `${place} monitor`);
      assert.deepEqual(
        res.body[APPS_EXT].applications.map((a: Json) => a.value),
        [appId],
      );
      assert.equal(res.body[APPS_EXT].deviceControlEnterpriseEndpoint, 'https://gw.acme.example/control');
    }
    // The customer takes monitor 3 out of service.
    await ok('PATCH', `${cust.scim('acme')}/Devices/${acme.get('SN-acme-3')!.id}`, dm.acme, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });

    // The manufacturer renames its records and publishes a new MUD file for monitors 1 and 3.
    const m = by(await listAll(mfr.scim('acme'), factory.acme, 'Devices'), 'externalId');
    for (const i of [1, 3]) {
      await ok('PATCH', `${mfr.scim('acme')}/Devices/${m.get(`SN-acme-${i}`)!.id}`, factory.acme, {
        schemas: [PATCH_OP],
        Operations: [
          { op: 'replace', path: 'displayName', value: `Monitor rev B ${i}` },
          { op: 'replace', path: 'mudUrl', value: MUD2 },
        ],
      });
    }
    // Pushed by the local-change trigger: the MUD URL (the manufacturer's) arrives; the customer's
    // names, state, mobility and app assignment stay.
    await convergesByTriggers(
      async () => {
        const now = by(await listAll(cust.scim('acme'), dm.acme, 'Devices'), 'externalId');
        assert.equal(now.get('SN-acme-1')!.mudUrl, MUD2);
        assert.equal(now.get('SN-acme-3')!.mudUrl, MUD2);
      },
      async () => {
        await runFlow(mfr, 'acme', 'registry');
      },
    );
    const now = by(await listAll(cust.scim('acme'), dm.acme, 'Devices'), 'externalId');
    assert.deepEqual(sorted(now.keys()), ['SN-acme-1', 'SN-acme-2', 'SN-acme-3']);
    const d1 = now.get('SN-acme-1')!;
    assert.equal(d1.displayName, 'ICU bed 4 monitor');
    assert.equal(d1[BLE].mobility, false);
    assert.deepEqual(
      d1[APPS_EXT].applications.map((a: Json) => a.value),
      [appId],
    );
    assert.equal(now.get('SN-acme-2')!.mudUrl, MUD1);
    assert.equal(now.get('SN-acme-3')!.displayName, 'Monitor acme 3');
    assert.equal(now.get('SN-acme-3')!.active, false);
  });

  test('use case 33: customers behind a firewall pull from the manufacturer; each sees only the devices it bought', async () => {
    const readers: Record<string, string> = {};
    for (const c of PULLED) {
      readers[c] = await addClient(mfr, c, 'customer', ['Device:read', 'devices:secrets']);
      await addConnection(cust, c, 'manufacturer', mfr.scim(c), readers[c]);
      await addFlow(cust, c, {
        id: 'from-mfr',
        connectionId: 'manufacturer',
        direction: 'pull',
        mode: 'delta',
        resourceTypes: ['Device'],
      });
      await runOk(cust, c, 'from-mfr', { created: SOLD[c] });
      // The manufacturer has no way in: no connection to the customer.
      assert.deepEqual((await ok('GET', `${mfr.admin(c)}/connections`, mfr.adminToken)).connections, []);
    }
    for (const c of PULLED) {
      const src = await listAll(mfr.scim(c), factory[c], 'Devices');
      const got = await listAll(cust.scim(c), dm[c], 'Devices');
      assert.deepEqual(macs(got), macs(src));
      const s = by(src, 'externalId');
      for (const d of got) assert.deepEqual(content(d), content(s.get(d.externalId)!), d.externalId);
    }
    // hooli's credential does not open umbrella's account.
    assert.equal((await http('GET', `${mfr.scim('umbrella')}/Devices`, readers.hooli)).status, 401);
  });

  test('use case 35: the client app pulls only the devices it manages, nightly and on demand; another device never arrives', async () => {
    const appToken = await addClient(cust, 'acme', 'heart-app', ['Device:read', 'devices:managed'], {
      endpointAppId: appId,
    });
    await createTenant(app, 'heart', devicesSettings('heart'));
    const appReader = await addClient(app, 'heart', 'reader', ['Device:read']);
    await addConnection(app, 'heart', 'device-manager', cust.scim('acme'), appToken);
    const flow = await addFlow(app, 'heart', {
      id: 'my-devices',
      connectionId: 'device-manager',
      direction: 'pull',
      mode: 'full',
      resourceTypes: ['Device'],
      schedule: '0 2 * * *',
      mapping: { rules: NOT_COPIED },
    });
    const next = new Date(flow.nextRun as string);
    assert.equal(next.getUTCHours(), 2);
    assert.equal(next.getUTCMinutes(), 0);
    assert.ok(next.getTime() > Date.now() && next.getTime() <= Date.now() + 86_400_000);
    await runOk(app, 'heart', 'my-devices', { created: 2 }); // on demand
    const acme = by(await listAll(cust.scim('acme'), dm.acme, 'Devices'), 'externalId');
    const mine = await listAll(app.scim('heart'), appReader, 'Devices');
    assert.deepEqual(sorted(mine.map((d) => d.externalId)), ['SN-acme-1', 'SN-acme-2']);
    for (const d of mine) {
      const src = noExt(acme.get(d.externalId)!);
      delete src[BLE][PASSKEY]; // the app may not read pairing secrets
      assert.deepEqual(noExt(d), src);
    }
    // Monitor 3 is not the app's: not by list, filter or id.
    const d3 = acme.get('SN-acme-3')!;
    assert.equal((await http('GET', `${cust.scim('acme')}/Devices/${d3.id}`, appToken)).status, 404);
    const byMac = await ok(
      'GET',
      `${cust.scim('acme')}/Devices?filter=${encodeURIComponent(`${MAC} eq "${d3[BLE].deviceMacAddress}"`)}`,
      appToken,
    );
    assert.equal(byMac.totalResults, 0);
    // Monitor 2 moves to another app: the next pull removes it; nothing else comes.
    const other = await ok('POST', `${cust.scim('acme')}/EndpointApps`, dm.acme, {
      schemas: [ENDPOINT_APP],
      applicationType: 'telemetry',
      applicationName: 'Ward dashboard',
    });
    await ok('PATCH', `${cust.scim('acme')}/Devices/${acme.get('SN-acme-2')!.id}`, dm.acme, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: `${APPS_EXT}:applications`, value: [{ value: other.id }] }],
    });
    await runOk(app, 'heart', 'my-devices', { deleted: 1 });
    const after = await listAll(app.scim('heart'), appReader, 'Devices');
    assert.deepEqual(
      after.map((d) => d.externalId),
      ['SN-acme-1'],
    );
    assert.equal((await getFlow(app, 'heart', 'my-devices')).schedule, '0 2 * * *');
  });

  test('use case 36: the device manager pushes the credentials of the app’s devices to the app’s SCIM server', async () => {
    await createTenant(app, 'creds');
    const dmAtApp = await addClient(app, 'creds', 'device-manager', [
      'Device:read',
      'Device:write',
      'devices:secrets',
    ]);
    await addConnection(cust, 'acme', 'heart-app', app.scim('creds'), dmAtApp);
    await addFlow(cust, 'acme', {
      id: 'heart-credentials',
      connectionId: 'heart-app',
      direction: 'push',
      mode: 'full',
      resourceTypes: ['Device'],
      filter: `${APPS_EXT}:applications.value eq "${appId}"`,
      mapping: { rules: NOT_COPIED },
    });
    await runOk(cust, 'acme', 'heart-credentials', { created: 1 });
    const acme = by(await listAll(cust.scim('acme'), dm.acme, 'Devices'), 'externalId');
    const got = await listAll(app.scim('creds'), dmAtApp, 'Devices');
    assert.deepEqual(
      got.map((d) => d.externalId),
      ['SN-acme-1'],
    );
    const src = acme.get('SN-acme-1')!;
    assert.deepEqual(got[0][BLE][PASSKEY], src[BLE][PASSKEY]);
    assert.equal(got[0][BLE][PASSKEY].key, 100001);
    assert.equal(got[0][BLE].deviceMacAddress, src[BLE].deviceMacAddress);
  });
});
