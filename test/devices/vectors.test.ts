/**
 * The draft's examples (draft-ietf-scim-device-model) as HTTP vectors: each one is created, read
 * back, found by a filter on its identifying attribute (URN-prefixed, in another spelling where the
 * value is a MAC or EUI-64), patched with a URN path and without a path, and deleted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  APPS_EXT,
  BLE,
  CONTROL_ENDPOINT,
  DEVICE,
  DPP,
  ENDPOINT_APP,
  FDO,
  FDO_ALIAS,
  DEVICE_ALIAS,
  MAB,
  PAIRING_JUST_WORKS,
  PAIRING_NULL,
  PATCH_OP,
  Scim,
  TELEMETRY_ENDPOINT,
  ZIGBEE,
  assertResource,
  assertScimError,
  baseUrl,
  deviceTenant,
  example,
  listOk,
  type Json,
} from './helpers.ts';

const TENANT = 'vectors';
let t: TestApp;
let admin: Scim;

before(async () => {
  t = await startTestApp();
  admin = new Scim(t, TENANT, await deviceTenant(t, TENANT));
});
after(async () => {
  await t.close();
});

interface Vector {
  file: string;
  endpoint: '/Devices' | '/EndpointApps';
  /** The body to send (default: the example without id and meta). */
  body?: () => Json;
  /** What the server must answer with, without id and meta. */
  expected: (sent: Json) => Json;
  /** Filters that must find exactly this resource. */
  filters: string[];
  /** A PATCH with a URN-prefixed path, and what it changes in the representation. */
  urnPatch: { path: string; value: unknown; apply: (r: Json) => void };
  /** A path-less PATCH (value is an object of attributes), and what it changes. */
  pathless: { value: Json; apply: (r: Json) => void };
}

const clone = (x: Json): Json => structuredClone(x);
const withoutServerFields = (r: Json): Json => {
  const { id: _id, meta: _meta, ...rest } = r;
  return rest;
};

async function lifecycle(v: Vector): Promise<void> {
  const sent = v.body ? v.body() : example(v.file);
  const kind = v.endpoint === '/Devices' ? 'Device' : 'EndpointApp';

  // Create: 201 with Location and ETag, the stored representation as the body.
  const created = await admin.request('POST', v.endpoint, sent);
  assertResource(created, 201, v.endpoint);
  const id = created.body.id as string;
  const location = `${baseUrl(TENANT)}${v.endpoint}/${id}`;
  assert.equal(created.headers.location, location);
  assert.deepEqual(withoutServerFields(created.body), v.expected(clone(sent)));
  assert.deepEqual(Object.keys(created.body.meta).sort(), [
    'created',
    'lastModified',
    'location',
    'resourceType',
    'version',
  ]);
  assert.equal(created.body.meta.resourceType, kind);
  assert.equal(created.body.meta.location, location);
  assert.equal(created.body.meta.created, created.body.meta.lastModified);

  // Read back: exactly the 201 body.
  const read = await admin.request('GET', `${v.endpoint}/${id}`);
  assertResource(read, 200);
  assert.deepEqual(read.body, created.body);
  assert.equal(read.headers.etag, created.headers.etag);

  // Found by its identifying attribute.
  for (const filter of v.filters) {
    const found = await admin.filter(v.endpoint, filter);
    listOk(found);
    assert.equal(found.body.totalResults, 1, `${filter}: ${found.text.slice(0, 500)}`);
    assert.deepEqual(found.body.Resources, [created.body], filter);
  }

  // PATCH with a URN path.
  const expected = clone(created.body);
  const urn = await admin.request('PATCH', `${v.endpoint}/${id}`, {
    schemas: [PATCH_OP],
    Operations: [{ op: 'replace', path: v.urnPatch.path, value: v.urnPatch.value }],
  });
  assertResource(urn, 200);
  v.urnPatch.apply(expected);
  assert.deepEqual(withoutServerFields(urn.body), withoutServerFields(expected));
  assert.notEqual(urn.headers.etag, created.headers.etag);
  assert.equal(urn.body.meta.created, created.body.meta.created);
  assert.deepEqual((await admin.request('GET', `${v.endpoint}/${id}`)).body, urn.body);

  // Path-less PATCH: the value's attributes replace the resource's.
  const pathless = await admin.request('PATCH', `${v.endpoint}/${id}`, {
    schemas: [PATCH_OP],
    Operations: [{ op: 'replace', value: v.pathless.value }],
  });
  assertResource(pathless, 200);
  v.pathless.apply(expected);
  assert.deepEqual(withoutServerFields(pathless.body), withoutServerFields(expected));
  assert.notEqual(pathless.headers.etag, urn.headers.etag);
  const reread = await admin.request('GET', `${v.endpoint}/${id}`);
  assert.deepEqual(reread.body, pathless.body);
  assert.equal(reread.headers.etag, pathless.headers.etag);

  // Delete: 204 without a body, then 404.
  const deleted = await admin.request('DELETE', `${v.endpoint}/${id}`);
  assert.equal(deleted.status, 204, deleted.text);
  assert.equal(deleted.text, '');
  assertScimError(await admin.request('GET', `${v.endpoint}/${id}`), 404, /./);
  for (const filter of v.filters) {
    const gone = await admin.filter(v.endpoint, filter);
    listOk(gone);
    assert.equal(gone.body.totalResults, 0, filter);
  }
}

/** The BLE examples as the server stores them: MACs lower-case, null (unassigned) pairing methods absent. */
function bleStored(sent: Json): Json {
  const ble = sent[BLE];
  ble.deviceMacAddress = ble.deviceMacAddress.toLowerCase();
  ble.separateBroadcastAddress = ble.separateBroadcastAddress.map((m: string) => m.toLowerCase());
  // pairingNull is null and pairingJustWorks is {"key": null}: both unassigned (RFC 7643 §2.5).
  delete ble[PAIRING_NULL];
  delete ble[PAIRING_JUST_WORKS];
  return sent;
}

const bleVector = (file: string): Vector => ({
  file,
  endpoint: '/Devices',
  expected: bleStored,
  filters: [
    `${BLE}:deviceMacAddress eq "2C-54-91-88-C9-E2"`,
    `${BLE}:deviceMacAddress eq "2c:54:91:88:c9:e2" and displayName eq "BLE Heart Monitor"`,
    `${BLE}:separateBroadcastAddress eq "aa-bb-88-77-22-12"`,
  ],
  urnPatch: {
    path: `${BLE}:mobility`,
    value: false,
    apply: (r) => {
      r[BLE].mobility = false;
    },
  },
  pathless: {
    value: { displayName: 'Heart Monitor 2', [BLE]: { deviceMacAddress: '2C-54-91-88-C9-E7' } },
    apply: (r) => {
      r.displayName = 'Heart Monitor 2';
      r[BLE].deviceMacAddress = '2c:54:91:88:c9:e7';
    },
  },
});

describe('the draft examples over HTTP: create, read, filter, patch, delete', () => {
  for (const file of [
    'SCIM_device_ble_object.json',
    'SCIM_device_ble_object_v1.json',
    'SCIM_device_ble_object_v2.json',
    'SCIM_device_ble_object_v3.json',
  ]) {
    test(file, () => lifecycle(bleVector(file)));
  }

  test('SCIM_device_core_schema_object.json', () =>
    lifecycle({
      file: 'SCIM_device_core_schema_object.json',
      endpoint: '/Devices',
      expected: (sent) => sent,
      filters: ['displayName eq "BLE Heart Monitor"', `${DEVICE}:displayName eq "ble heart monitor"`],
      urnPatch: {
        path: `${DEVICE}:active`,
        value: false,
        apply: (r) => {
          r.active = false;
        },
      },
      pathless: {
        value: { displayName: 'Renamed', active: true },
        apply: (r) => {
          r.displayName = 'Renamed';
          r.active = true;
        },
      },
    }));

  test('SCIM_device_dpp_object.json', () =>
    lifecycle({
      file: 'SCIM_device_dpp_object.json',
      endpoint: '/Devices',
      expected: (sent) => {
        sent[DPP].deviceMacAddress = '2c:54:91:88:c9:f2';
        return sent;
      },
      filters: [
        `${DPP}:deviceMacAddress eq "2C-54-91-88-C9-F2"`,
        `${DPP}:deviceMacAddress eq "2c54.9188.c9f2"`,
        `${DPP}:serialNumber eq "4774LH2b4044"`,
      ],
      urnPatch: {
        path: `${DPP}:serialNumber`,
        value: 'SN-0002',
        apply: (r) => {
          r[DPP].serialNumber = 'SN-0002';
        },
      },
      pathless: {
        value: { [DPP]: { classChannel: ['81/6'], deviceMacAddress: '2C549188C9F3' } },
        apply: (r) => {
          r[DPP].classChannel = ['81/6'];
          r[DPP].deviceMacAddress = '2c:54:91:88:c9:f3';
        },
      },
    }));

  test('SCIM_device_endpoints_with_ble_object.json: the EndpointApps it names are created first', async () => {
    const app1 = await admin.create('/EndpointApps', {
      ...example('SCIM_endpointapp_schema_object.json'),
      applicationName: 'Vector control app',
      certificateInfo: { rootCA: 'MIIBIjAN...', subjectName: 'control.example.org' },
    });
    const app2 = await admin.create('/EndpointApps', {
      schemas: [ENDPOINT_APP],
      applicationType: 'telemetry',
      applicationName: 'Vector telemetry app',
    });
    const [a1, a2] = [app1.body.id as string, app2.body.id as string];
    const ref = (id: string) => `${baseUrl(TENANT)}/EndpointApps/${id}`;
    const body = () => {
      const doc = example('SCIM_device_endpoints_with_ble_object.json');
      const apps = doc[APPS_EXT].applications;
      // The example's ids and $refs are another server's; ours are substituted.
      apps[0] = { value: a1, $ref: apps[0].$ref.replace('e9e30dba-f08f-4109-8486-d5c6a3316212', a1) };
      apps[1] = { value: a2, $ref: apps[1].$ref.replace('e9e30dba-f08f-4109-8486-d5c6a3316333', a2) };
      return doc;
    };
    await lifecycle({
      file: 'SCIM_device_endpoints_with_ble_object.json',
      endpoint: '/Devices',
      body,
      expected: (sent) => {
        const ble = sent[BLE];
        ble.deviceMacAddress = '2c:54:91:88:c9:e2';
        ble.separateBroadcastAddress = ['aa:bb:88:77:22:11', 'aa:bb:88:77:22:12'];
        // $ref and the enterprise endpoints are the server's (readOnly).
        sent[APPS_EXT] = {
          applications: [
            { value: a1, $ref: ref(a1) },
            { value: a2, $ref: ref(a2) },
          ],
          deviceControlEnterpriseEndpoint: CONTROL_ENDPOINT,
          telemetryEnterpriseEndpoint: TELEMETRY_ENDPOINT,
        };
        return sent;
      },
      filters: [
        `${BLE}:deviceMacAddress eq "2C-54-91-88-C9-E2"`,
        `${APPS_EXT}:applications[value eq "${a2}"]`,
        `${APPS_EXT}:applications.value eq "${a1}" and ${APPS_EXT}:deviceControlEnterpriseEndpoint eq "${CONTROL_ENDPOINT}"`,
      ],
      urnPatch: {
        path: `${APPS_EXT}:applications`,
        value: [{ value: a2 }],
        apply: (r) => {
          r[APPS_EXT].applications = [{ value: a2, $ref: ref(a2) }];
        },
      },
      pathless: {
        value: { active: false, [APPS_EXT]: { applications: [{ value: a1 }, { value: a2 }] } },
        apply: (r) => {
          r.active = false;
          r[APPS_EXT].applications = [
            { value: a1, $ref: ref(a1) },
            { value: a2, $ref: ref(a2) },
          ];
        },
      },
    });
  });

  test('SCIM_device_fdo_object.json: the draft\'s ":2.0:Devices" spelling is accepted, answered canonically', async () => {
    const sent = example('SCIM_device_fdo_object.json');
    assert.deepEqual(sent.schemas, [DEVICE_ALIAS, FDO_ALIAS]);
    await lifecycle({
      file: 'SCIM_device_fdo_object.json',
      endpoint: '/Devices',
      expected: (s) => ({
        schemas: [DEVICE, FDO],
        displayName: s.displayName,
        active: true,
        [FDO]: { fdoVoucher: '{... voucher ...}' },
      }),
      filters: ['displayName eq "Some random Ethernet Device"', `${FDO}:fdoVoucher eq "{... voucher ...}"`],
      urnPatch: {
        path: `${FDO}:fdoVoucher`,
        value: '{... voucher 2 ...}',
        apply: (r) => {
          r[FDO].fdoVoucher = '{... voucher 2 ...}';
        },
      },
      pathless: {
        value: { displayName: 'FDO Device', [FDO_ALIAS]: { fdoVoucher: '{... voucher 3 ...}' } },
        apply: (r) => {
          r.displayName = 'FDO Device';
          r[FDO].fdoVoucher = '{... voucher 3 ...}';
        },
      },
    });
  });

  test('SCIM_device_mab_object.json', () =>
    lifecycle({
      file: 'SCIM_device_mab_object.json',
      endpoint: '/Devices',
      expected: (sent) => {
        sent[MAB].deviceMacAddress = '2c:54:91:88:c9:e2';
        return sent;
      },
      filters: [
        `${MAB}:deviceMacAddress eq "2C-54-91-88-C9-E2"`,
        `${MAB}:deviceMacAddress eq "2c549188c9e2"`,
      ],
      urnPatch: {
        path: `${MAB}:deviceMacAddress`,
        value: '2C-54-91-88-C9-E3',
        apply: (r) => {
          r[MAB].deviceMacAddress = '2c:54:91:88:c9:e3';
        },
      },
      pathless: {
        value: { displayName: 'Printer', active: false },
        apply: (r) => {
          r.displayName = 'Printer';
          r.active = false;
        },
      },
    }));

  test('SCIM_device_zigbee_object.json', () =>
    lifecycle({
      file: 'SCIM_device_zigbee_object.json',
      endpoint: '/Devices',
      expected: (sent) => {
        sent[ZIGBEE].deviceEui64Address = '50:32:5f:ff:fe:e7:67:28';
        return sent;
      },
      filters: [
        `${ZIGBEE}:deviceEui64Address eq "50-32-5F-FF-FE-E7-67-28"`,
        `${ZIGBEE}:deviceEui64Address eq "5032.5fff.fee7.6728"`,
      ],
      urnPatch: {
        path: `${ZIGBEE}:versionSupport`,
        value: ['3.0', 'PRO'],
        apply: (r) => {
          r[ZIGBEE].versionSupport = ['3.0', 'PRO'];
        },
      },
      pathless: {
        value: { [ZIGBEE]: { deviceEui64Address: '50325FFFFEE76729' } },
        apply: (r) => {
          r[ZIGBEE].deviceEui64Address = '50:32:5f:ff:fe:e7:67:29';
        },
      },
    }));

  test('SCIM_endpointapp_schema_object.json', () =>
    lifecycle({
      file: 'SCIM_endpointapp_schema_object.json',
      endpoint: '/EndpointApps',
      // With certificateInfo there is no generated clientToken.
      expected: (sent) => sent,
      filters: [
        'applicationName eq "Device Control App 1"',
        `${ENDPOINT_APP}:certificateInfo.subjectName eq "www.example.com"`,
      ],
      urnPatch: {
        path: `${ENDPOINT_APP}:applicationName`,
        value: 'Device Control App 1b',
        apply: (r) => {
          r.applicationName = 'Device Control App 1b';
        },
      },
      pathless: {
        value: { certificateInfo: { rootCA: 'MIIBCgKC...', subjectName: 'gw.example.com' } },
        apply: (r) => {
          r.certificateInfo = { rootCA: 'MIIBCgKC...', subjectName: 'gw.example.com' };
        },
      },
    }));
});
