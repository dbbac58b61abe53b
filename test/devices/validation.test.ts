/**
 * What the server refuses or rewrites in device model writes, over HTTP: address formats and
 * their uniqueness across spellings, pass keys, the enterprise endpoints (server-set from the
 * tenant's settings), application references, EndpointApp immutability, and discovery telling
 * the truth about all of it.
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
  MAB,
  PAIRING_JUST_WORKS,
  PAIRING_NULL,
  PAIRING_OOB,
  PAIRING_PASS_KEY,
  PATCH_OP,
  SCIM_JSON,
  Scim,
  TELEMETRY_ENDPOINT,
  ZIGBEE,
  assertScimError,
  baseUrl,
  bleDevice,
  deviceTenant,
  endpointApp,
  ids,
  listOk,
  managedDevice,
  type Json,
} from './helpers.ts';

const TENANT = 'validation';
let t: TestApp;
let admin: Scim;
let appId: string;

before(async () => {
  t = await startTestApp();
  admin = new Scim(t, TENANT, await deviceTenant(t, TENANT));
  appId = (await admin.create('/EndpointApps', endpointApp('Validation app'))).body.id;
});
after(async () => {
  await t.close();
});

const mabDevice = (mac: string): Json => ({
  schemas: [DEVICE, MAB],
  displayName: `MAB ${mac}`,
  active: true,
  [MAB]: { deviceMacAddress: mac },
});

const INVALID_VALUE = 'invalidValue';

describe('MAC addresses (eui48)', () => {
  test('a malformed MAC is 400 invalidValue naming the attribute, in every extension', async () => {
    for (const mac of [
      '2C:54:91:88:C9',
      '2C:54:91:88:C9:E2:01',
      '2C:54:91:88:C9:G2',
      '2C-54:91-88:C9-E2',
      '',
      'not a mac',
    ]) {
      assertScimError(
        await admin.request('POST', '/Devices', bleDevice(mac)),
        400,
        new RegExp(`"${BLE}:deviceMacAddress": ".*" is not a valid eui48 value`),
        INVALID_VALUE,
      );
      assertScimError(
        await admin.request('POST', '/Devices', mabDevice(mac)),
        400,
        new RegExp(`"${MAB}:deviceMacAddress": ".*" is not a valid eui48 value`),
        INVALID_VALUE,
      );
    }
    const dpp = {
      schemas: [DEVICE, DPP],
      active: true,
      [DPP]: { dppVersion: 2, bootstrapKey: 'MDkw', deviceMacAddress: '2C:54:91:88:C9' },
    };
    assertScimError(await admin.request('POST', '/Devices', dpp), 400, /deviceMacAddress/, INVALID_VALUE);
    const broadcast = bleDevice('02:00:00:00:01:01');
    broadcast[BLE].separateBroadcastAddress = ['AA:BB:88:77:22:11', 'AA:BB:88:77:22'];
    assertScimError(
      await admin.request('POST', '/Devices', broadcast),
      400,
      /separateBroadcastAddress/,
      INVALID_VALUE,
    );
    const none = await admin.filter('/Devices', 'displayName pr');
    assert.equal(none.body.totalResults, 0, 'nothing was stored');
  });

  test('one BLE MAC in two spellings: the second device is 409 uniqueness (POST, PUT and PATCH)', async () => {
    const first = await admin.create('/Devices', bleDevice('2C:54:91:88:C9:E2'));
    assert.equal(first.body[BLE].deviceMacAddress, '2c:54:91:88:c9:e2');
    for (const spelling of ['2c-54-91-88-c9-e2', '2C549188C9E2', '2c54.9188.c9e2', '2C:54:91:88:C9:E2']) {
      assertScimError(
        await admin.request('POST', '/Devices', bleDevice(spelling, `dup ${spelling}`)),
        409,
        /deviceMacAddress/,
        'uniqueness',
      );
    }
    const second = await admin.create('/Devices', bleDevice('2C:54:91:88:C9:E3'));
    const { id: _id, meta: _meta, ...body } = second.body;
    assertScimError(
      await admin.request('PUT', `/Devices/${second.body.id}`, {
        ...body,
        [BLE]: { ...body[BLE], deviceMacAddress: '2C-54-91-88-C9-E2' },
      }),
      409,
      /deviceMacAddress/,
      'uniqueness',
    );
    assertScimError(
      await admin.request('PATCH', `/Devices/${second.body.id}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'replace', path: `${BLE}:deviceMacAddress`, value: '2c549188c9e2' }],
      }),
      409,
      /deviceMacAddress/,
      'uniqueness',
    );
    const after = await admin.request('GET', `/Devices/${second.body.id}`);
    assert.equal(after.headers.etag, second.headers.etag);
    assert.equal(after.body[BLE].deviceMacAddress, '2c:54:91:88:c9:e3');
    const found = await admin.filter('/Devices', `${BLE}:deviceMacAddress eq "2C549188C9E2"`);
    assert.deepEqual(ids(found), [first.body.id]);
  });

  test('one MAB MAC in two spellings: 409 uniqueness; the same MAC under another extension is another attribute', async () => {
    const mab = await admin.create('/Devices', mabDevice('2c:54:91:88:c9:e2'));
    assert.equal(mab.body[MAB].deviceMacAddress, '2c:54:91:88:c9:e2');
    assertScimError(
      await admin.request('POST', '/Devices', mabDevice('2C-54-91-88-C9-E2')),
      409,
      /deviceMacAddress/,
      'uniqueness',
    );
    const found = await admin.filter('/Devices', `${MAB}:deviceMacAddress eq "2C-54-91-88-C9-E2"`);
    assert.deepEqual(ids(found), [mab.body.id]);
  });
});

describe('Zigbee EUI-64', () => {
  test('normalized to lower-case colon form and found in any spelling', async () => {
    const body = {
      schemas: [DEVICE, ZIGBEE],
      displayName: 'Zigbee bulb',
      active: true,
      [ZIGBEE]: { versionSupport: ['3.0'], deviceEui64Address: '00-12-4B-00-14-B5-C3-7E' },
    };
    const created = await admin.create('/Devices', body);
    assert.equal(created.body[ZIGBEE].deviceEui64Address, '00:12:4b:00:14:b5:c3:7e');
    for (const spelling of ['00124B0014B5C37E', '0012.4b00.14b5.c37e', '00:12:4B:00:14:B5:C3:7E']) {
      const found = await admin.filter('/Devices', `${ZIGBEE}:deviceEui64Address eq "${spelling}"`);
      listOk(found);
      assert.deepEqual(ids(found), [created.body.id], spelling);
    }
    assertScimError(
      await admin.request('POST', '/Devices', {
        ...body,
        [ZIGBEE]: { versionSupport: ['3.0'], deviceEui64Address: '00:12:4B:00:14:B5' },
      }),
      400,
      new RegExp(`"${ZIGBEE}:deviceEui64Address": ".*" is not a valid eui64 value`),
      INVALID_VALUE,
    );
  });
});

describe('BLE pass key', () => {
  test('more than six digits, negative, fractional or a string: 400 invalidValue; six digits (and fewer, a lost leading zero) pass', async () => {
    for (const key of [1234567, -1, 12345.5, '123456', 1e7]) {
      const body = bleDevice('02:00:00:00:02:01');
      body[BLE][PAIRING_PASS_KEY] = { key };
      assertScimError(
        await admin.request('POST', '/Devices', body),
        400,
        new RegExp(`pairingPassKey:2.0:Device.key`),
        INVALID_VALUE,
      );
    }
    // {} (like the draft's {"key": null}) is an unassigned pass key object, not one without a key.
    const empty = bleDevice('02:00:00:00:02:01');
    empty[BLE][PAIRING_PASS_KEY] = {};
    const res = await admin.create('/Devices', empty);
    assert.equal(res.body[BLE][PAIRING_PASS_KEY], undefined);
    assert.equal((await admin.request('DELETE', `/Devices/${res.body.id}`)).status, 204);
    for (const [i, key] of [999999, 12345, 0].entries()) {
      const body = bleDevice(`02:00:00:00:02:1${i}`);
      body[BLE][PAIRING_PASS_KEY] = { key };
      const res = await admin.create('/Devices', body);
      assert.deepEqual(res.body[BLE][PAIRING_PASS_KEY], { key });
    }
  });

  test('pairingMethods must name pairing schemas; any case is stored canonically', async () => {
    const bad = bleDevice('02:00:00:00:03:01');
    bad[BLE].pairingMethods = ['urn:ietf:params:scim:schemas:extension:pairingMagic:2.0:Device'];
    assertScimError(await admin.request('POST', '/Devices', bad), 400, /pairingMethods/, INVALID_VALUE);
    const ok = bleDevice('02:00:00:00:03:02');
    ok[BLE].pairingMethods = [PAIRING_PASS_KEY.toUpperCase(), PAIRING_NULL.toLowerCase()];
    const res = await admin.create('/Devices', ok);
    assert.deepEqual(res.body[BLE].pairingMethods, [PAIRING_PASS_KEY, PAIRING_NULL]);
  });
});

describe('endpointAppsExt: server-set endpoints, application references', () => {
  test('on a tenant without configured endpoints: 400 invalidValue naming the setting', async () => {
    const other = new Scim(t, 'no-gateway', await deviceTenant(t, 'no-gateway', {}));
    const app = await other.create('/EndpointApps', endpointApp('Other app'));
    assertScimError(
      await other.request('POST', '/Devices', managedDevice('02:00:00:00:04:01', [app.body.id])),
      400,
      /settings\.devices\.deviceControlEnterpriseEndpoint/,
      INVALID_VALUE,
    );
    // Without the extension the device is fine there.
    await other.create('/Devices', bleDevice('02:00:00:00:04:01'));
  });

  test("applications naming no resource, a Device, or another tenant's EndpointApp: 400 invalidValue", async () => {
    const device = await admin.create('/Devices', bleDevice('02:00:00:00:05:01'));
    const foreign = new Scim(t, 'foreign', await deviceTenant(t, 'foreign'));
    const foreignApp = await foreign.create('/EndpointApps', endpointApp('Foreign app'));
    for (const bad of ['no-such-app', device.body.id, foreignApp.body.id]) {
      assertScimError(
        await admin.request('POST', '/Devices', managedDevice('02:00:00:00:05:02', [appId, bad])),
        400,
        new RegExp(`applications: no EndpointApp "${bad}" in this tenant`),
        INVALID_VALUE,
      );
    }
    const created = await admin.create('/Devices', managedDevice('02:00:00:00:05:02', [appId]));
    assertScimError(
      await admin.request('PATCH', `/Devices/${created.body.id}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'add', path: `${APPS_EXT}:applications`, value: [{ value: device.body.id }] }],
      }),
      400,
      /applications: no EndpointApp/,
      INVALID_VALUE,
    );
    const unchanged = await admin.request('GET', `/Devices/${created.body.id}`);
    assert.equal(unchanged.headers.etag, created.headers.etag);
  });

  test("readOnly values sent by the client are ignored and replaced by the tenant's", async () => {
    const body = managedDevice('02:00:00:00:06:01', [appId]);
    body.id = 'client-chosen-id';
    body.groups = [{ value: 'g1', display: 'Forged' }];
    body[APPS_EXT].applications[0].$ref = 'https://evil.example/EndpointApps/x';
    body[APPS_EXT].deviceControlEnterpriseEndpoint = 'https://evil.example/control/';
    body[APPS_EXT].telemetryEnterpriseEndpoint = 'https://evil.example/telemetry/';
    const created = await admin.create('/Devices', body);
    assert.notEqual(created.body.id, 'client-chosen-id');
    assert.equal(created.body.groups, undefined);
    const expectedExt = {
      applications: [{ value: appId, $ref: `${baseUrl(TENANT)}/EndpointApps/${appId}` }],
      deviceControlEnterpriseEndpoint: CONTROL_ENDPOINT,
      telemetryEnterpriseEndpoint: TELEMETRY_ENDPOINT,
    };
    assert.deepEqual(created.body[APPS_EXT], expectedExt);
    assert.deepEqual((await admin.request('GET', `/Devices/${created.body.id}`)).body, created.body);

    // PUT: the same, readOnly values sent are ignored.
    const { meta: _meta, ...rest } = created.body;
    const put = await admin.request('PUT', `/Devices/${created.body.id}`, {
      ...rest,
      displayName: 'put',
      [APPS_EXT]: { ...rest[APPS_EXT], deviceControlEnterpriseEndpoint: 'https://evil.example/put/' },
    });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body[APPS_EXT], expectedExt);
    assert.equal(put.body.displayName, 'put');

    // PATCH targeting a readOnly attribute: 400 mutability (RFC 7644 §3.5.2), nothing changes.
    const res = await admin.request('PATCH', `/Devices/${created.body.id}`, {
      schemas: [PATCH_OP],
      Operations: [
        {
          op: 'replace',
          path: `${APPS_EXT}:deviceControlEnterpriseEndpoint`,
          value: 'https://evil.example/patch/',
        },
      ],
    });
    assertScimError(res, 400, /deviceControlEnterpriseEndpoint/, 'mutability');
    const after = await admin.request('GET', `/Devices/${created.body.id}`);
    assert.equal(after.headers.etag, put.headers.etag);
    assert.deepEqual(after.body[APPS_EXT], expectedExt);

    // Many devices share the tenant's endpoints: that is no uniqueness conflict.
    await admin.create('/Devices', managedDevice('02:00:00:00:06:02', [appId]));
  });

  test('a tenant with only the device control endpoint: a telemetry endpoint sent is dropped', async () => {
    const only = new Scim(
      t,
      'control-only',
      await deviceTenant(t, 'control-only', {
        devices: { deviceControlEnterpriseEndpoint: CONTROL_ENDPOINT },
      }),
    );
    const app = await only.create('/EndpointApps', endpointApp('Control only'));
    const body = managedDevice('02:00:00:00:07:01', [app.body.id]);
    body[APPS_EXT].telemetryEnterpriseEndpoint = TELEMETRY_ENDPOINT;
    const created = await only.create('/Devices', body);
    assert.deepEqual(created.body[APPS_EXT], {
      applications: [{ value: app.body.id, $ref: `${baseUrl('control-only')}/EndpointApps/${app.body.id}` }],
      deviceControlEnterpriseEndpoint: CONTROL_ENDPOINT,
    });
  });

  test("after the operator changes the tenant's endpoints, the next write stores the new ones", async () => {
    const moving = new Scim(t, 'moving', await deviceTenant(t, 'moving'));
    const app = await moving.create('/EndpointApps', endpointApp('Moving'));
    const created = await moving.create('/Devices', managedDevice('02:00:00:00:08:01', [app.body.id]));
    assert.equal(created.body[APPS_EXT].deviceControlEnterpriseEndpoint, CONTROL_ENDPOINT);
    await t.app.admin.updateTenant('moving', {
      settings: { devices: { deviceControlEnterpriseEndpoint: 'https://gw2.example.org/control/' } } as never,
    });
    const patched = await moving.request('PATCH', `/Devices/${created.body.id}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'displayName', value: 'moved' }],
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body[APPS_EXT].deviceControlEnterpriseEndpoint, 'https://gw2.example.org/control/');
    assert.equal(patched.body[APPS_EXT].telemetryEnterpriseEndpoint, undefined);
  });
});

describe('EndpointApp', () => {
  test('applicationType is immutable: PUT or PATCH changing it is 400 mutability; the same value passes', async () => {
    const app = await admin.create(
      '/EndpointApps',
      endpointApp('Immutable', 'deviceControl', 'imm.example.org'),
    );
    const { id, meta: _meta, ...body } = app.body;
    assertScimError(
      await admin.request('PUT', `/EndpointApps/${id}`, { ...body, applicationType: 'telemetry' }),
      400,
      /applicationType/,
      'mutability',
    );
    assertScimError(
      await admin.request('PATCH', `/EndpointApps/${id}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'replace', path: 'applicationType', value: 'telemetry' }],
      }),
      400,
      /applicationType/,
      'mutability',
    );
    const same = await admin.request('PUT', `/EndpointApps/${id}`, { ...body, applicationName: 'Renamed' });
    assert.equal(same.status, 200, same.text);
    assert.equal(same.body.applicationType, 'deviceControl');
    assert.equal(same.body.applicationName, 'Renamed');
    const read = await admin.request('GET', `/EndpointApps/${id}`);
    assert.equal(read.body.applicationType, 'deviceControl');
  });

  test('applicationType outside deviceControl/telemetry and a missing applicationName: 400', async () => {
    assertScimError(
      await admin.request('POST', '/EndpointApps', { ...endpointApp('x'), applicationType: 'other' }),
      400,
      /applicationType/,
      INVALID_VALUE,
    );
    assertScimError(
      await admin.request('POST', '/EndpointApps', { schemas: [ENDPOINT_APP], applicationType: 'telemetry' }),
      400,
      /applicationName/,
      INVALID_VALUE,
    );
  });

  test('a clientToken sent by the client is ignored: the server generates its own, or none with certificateInfo', async () => {
    const generated = await admin.create('/EndpointApps', {
      ...endpointApp('Sent token'),
      clientToken: 'mine',
    });
    assert.notEqual(generated.body.clientToken, 'mine');
    assert.match(generated.body.clientToken, /^[A-Za-z0-9_-]{43}$/);
    const cert = await admin.create('/EndpointApps', {
      ...endpointApp('Sent token cert', 'telemetry', 'cert.example.org'),
      clientToken: 'mine',
    });
    assert.equal(cert.body.clientToken, undefined);
    assert.equal((await admin.request('GET', `/EndpointApps/${cert.body.id}`)).body.clientToken, undefined);
  });
});

describe('discovery', () => {
  test('/ResourceTypes/Device: every extension, none required; /ResourceTypes/EndpointApp: none', async () => {
    const device = await admin.request('GET', '/ResourceTypes/Device');
    assert.equal(device.status, 200);
    assert.equal(device.headers['content-type'], SCIM_JSON);
    assert.deepEqual(device.body, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
      id: 'Device',
      name: 'Device',
      endpoint: '/Devices',
      description: 'Device',
      schema: DEVICE,
      schemaExtensions: [BLE, DPP, MAB, FDO, ZIGBEE, APPS_EXT].map((schema) => ({ schema, required: false })),
      meta: { resourceType: 'ResourceType', location: `${baseUrl(TENANT)}/ResourceTypes/Device` },
    });
    const app = await admin.request('GET', '/ResourceTypes/EndpointApp');
    assert.equal(app.status, 200);
    assert.deepEqual(app.body, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
      id: 'EndpointApp',
      name: 'EndpointApp',
      endpoint: '/EndpointApps',
      description: 'Endpoint application',
      schema: ENDPOINT_APP,
      schemaExtensions: [],
      meta: { resourceType: 'ResourceType', location: `${baseUrl(TENANT)}/ResourceTypes/EndpointApp` },
    });
    const all = await admin.request('GET', '/ResourceTypes');
    listOk(all);
    const names = (all.body.Resources as Json[]).map((r) => r.id);
    assert.ok(names.includes('Device') && names.includes('EndpointApp'), names.join());
  });

  test('/Schemas: the device schemas, with the characteristics the server enforces', async () => {
    const all = await admin.request('GET', '/Schemas');
    listOk(all);
    const listed = (all.body.Resources as Json[]).map((s) => s.id);
    for (const urn of [
      DEVICE,
      ENDPOINT_APP,
      BLE,
      DPP,
      MAB,
      FDO,
      ZIGBEE,
      APPS_EXT,
      PAIRING_NULL,
      PAIRING_JUST_WORKS,
      PAIRING_PASS_KEY,
      PAIRING_OOB,
    ]) {
      assert.ok(listed.includes(urn), `${urn} not in /Schemas`);
      const one = await admin.request('GET', `/Schemas/${urn}`);
      assert.equal(one.status, 200, `${urn}: ${one.text.slice(0, 200)}`);
      assert.equal(one.body.id, urn);
      assert.equal(one.body.meta.location, `${baseUrl(TENANT)}/Schemas/${urn}`);
    }
    const attr = (schema: Json, name: string): Json => {
      const a = (schema.attributes as Json[]).find((x) => x.name === name);
      assert.ok(a, `${schema.id} has no ${name}`);
      return a;
    };
    const ble = (await admin.request('GET', `/Schemas/${BLE}`)).body;
    assert.deepEqual(
      [
        attr(ble, 'deviceMacAddress').uniqueness,
        attr(ble, 'deviceMacAddress').required,
        attr(ble, 'deviceMacAddress').type,
      ],
      ['server', true, 'string'],
    );
    assert.deepEqual([attr(ble, 'irk').mutability, attr(ble, 'irk').returned], ['writeOnly', 'never']);
    const app = (await admin.request('GET', `/Schemas/${ENDPOINT_APP}`)).body;
    const type = attr(app, 'applicationType');
    assert.deepEqual(
      [type.mutability, type.required, type.canonicalValues],
      ['immutable', true, ['deviceControl', 'telemetry']],
    );
    assert.equal(attr(app, 'clientToken').mutability, 'readOnly');
    const ext = (await admin.request('GET', `/Schemas/${APPS_EXT}`)).body;
    assert.equal(attr(ext, 'deviceControlEnterpriseEndpoint').mutability, 'readOnly');
    assert.equal(attr(ext, 'telemetryEnterpriseEndpoint').mutability, 'readOnly');
    const apps = attr(ext, 'applications');
    assert.equal(apps.multiValued, true);
    const ref = (apps.subAttributes as Json[]).find((s) => s.name === '$ref');
    assert.deepEqual([ref.mutability, ref.referenceTypes], ['readOnly', ['EndpointApp']]);
    const device = (await admin.request('GET', `/Schemas/${DEVICE}`)).body;
    assert.deepEqual(
      [attr(device, 'groups').mutability, attr(device, 'active').required],
      ['readOnly', true],
    );
  });

  test('the enterprise endpoints, shared by every managed device of a tenant, are not advertised as unique', async () => {
    // The server gives every device of a tenant the same endpoints (two devices share them in the
    // readOnly test above), so "server" uniqueness (RFC 7643 §2.1: the value is unique within the
    // service provider's endpoint) would be false.
    const ext = (await admin.request('GET', `/Schemas/${APPS_EXT}`)).body;
    const uniqueness = (name: string) => (ext.attributes as Json[]).find((a) => a.name === name).uniqueness;
    assert.equal(uniqueness('deviceControlEnterpriseEndpoint'), 'none');
    assert.equal(uniqueness('telemetryEnterpriseEndpoint'), 'none');
  });
});
