import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScimError, type ScimType } from '../../src/scim/errors.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { bindFilter, bindPatchPath } from '../../src/scim/filter/bind.ts';
import { matches } from '../../src/scim/filter/evaluate.ts';
import { parseFilter, parsePath } from '../../src/scim/filter/parser.ts';
import { applyPatch, type PatchOperation } from '../../src/scim/patch/patch.ts';
import { project } from '../../src/scim/resource/project.ts';
import { canonicalizeValue, prepareWrite } from '../../src/scim/resource/validate.ts';
import { valuesEqual } from '../../src/scim/resource/values.ts';
import { GROUP_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import {
  BLE_SCHEMA,
  DEVICE_SCHEMA,
  DPP_SCHEMA,
  ENDPOINT_APP_SCHEMA,
  ENDPOINT_APPS_EXT_SCHEMA,
  ETHERNET_MAB_SCHEMA,
  FDO_SCHEMA,
  PAIRING_JUST_WORKS_SCHEMA,
  PAIRING_NULL_SCHEMA,
  PAIRING_OOB_SCHEMA,
  PAIRING_PASS_KEY_SCHEMA,
  ZIGBEE_SCHEMA,
} from '../../src/scim/schema/device-schemas.ts';
import { EUI48, EUI64, getFormat } from '../../src/scim/schema/formats.ts';
import {
  createCoreRegistry,
  createDefaultRegistry,
  findSubAttribute,
  SchemaRegistry,
} from '../../src/scim/schema/registry.ts';
import type { AttributeDefinition } from '../../src/scim/schema/types.ts';
import { schemaDocument, schemasInUse } from '../../src/http/discovery.ts';
import { uniqueIndexStatements } from '../../src/store/sql/filter-sql.ts';

const EXAMPLES = '/work/shared/spec/device-examples';
const FDO_ALIAS = 'urn:ietf:params:scim:schemas:extension:fido-device-onboard:2.0:Devices';
const DEVICE_ALIAS = 'urn:ietf:params:scim:schemas:core:2.0:Devices';

const registry = createDefaultRegistry();
const DEVICE = registry.resourceType('Device')!;
const APP = registry.resourceType('EndpointApp')!;

function example(name: string): JsonObject {
  return JSON.parse(readFileSync(join(EXAMPLES, name), 'utf8')) as JsonObject;
}

function rejects(fn: () => unknown, scimType: ScimType, detail?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ScimError, `expected a ScimError, got ${String(e)}`);
    assert.equal(e.status, 400);
    assert.equal(e.scimType, scimType, e.message);
    if (detail) assert.match(e.message, detail);
    return true;
  });
}

const createDevice = (body: unknown) => prepareWrite(registry, DEVICE, body, { mode: 'create' });
const createApp = (body: unknown) => prepareWrite(registry, APP, body, { mode: 'create' });

function attrOf(schema: string, name: string): AttributeDefinition {
  return registry.schema(schema)!.attributes.find((a) => a.name === name)!;
}

const BLE_CANONICAL_HEAD = {
  versionSupport: ['5.3'],
  deviceMacAddress: '2c:54:91:88:c9:e2',
  isRandom: false,
  separateBroadcastAddress: ['aa:bb:88:77:22:11', 'aa:bb:88:77:22:12'],
};

/** The draft's examples after prepareWrite: MACs lower-case colon form, canonical URNs, no id/meta. */
const expected: Record<string, JsonObject> = {
  'SCIM_device_core_schema_object.json': {
    schemas: [DEVICE_SCHEMA],
    displayName: 'BLE Heart Monitor',
    active: true,
  },
  'SCIM_device_ble_object.json': {
    schemas: [DEVICE_SCHEMA, BLE_SCHEMA],
    displayName: 'BLE Heart Monitor',
    active: true,
    [BLE_SCHEMA]: {
      ...BLE_CANONICAL_HEAD,
      mobility: true,
      pairingMethods: [
        PAIRING_NULL_SCHEMA,
        PAIRING_JUST_WORKS_SCHEMA,
        PAIRING_PASS_KEY_SCHEMA,
        PAIRING_OOB_SCHEMA,
      ],
      // pairingNull: null and pairingJustWorks: {key: null} are unassigned (RFC 7643 §2.5).
      [PAIRING_PASS_KEY_SCHEMA]: { key: 123456 },
      [PAIRING_OOB_SCHEMA]: { key: 'TheKeyvalueRetrievedFromOOB', randomNumber: 238796813516896 },
    },
  },
  'SCIM_device_ble_object_v1.json': {
    schemas: [DEVICE_SCHEMA, BLE_SCHEMA],
    displayName: 'BLE Heart Monitor',
    active: true,
    [BLE_SCHEMA]: {
      ...BLE_CANONICAL_HEAD,
      mobility: true,
      pairingMethods: [PAIRING_PASS_KEY_SCHEMA],
      [PAIRING_PASS_KEY_SCHEMA]: { key: 123456 },
    },
  },
  'SCIM_device_ble_object_v2.json': {
    schemas: [DEVICE_SCHEMA, BLE_SCHEMA],
    displayName: 'BLE Heart Monitor',
    active: true,
    [BLE_SCHEMA]: {
      ...BLE_CANONICAL_HEAD,
      mobility: true,
      pairingMethods: [PAIRING_OOB_SCHEMA],
      [PAIRING_OOB_SCHEMA]: { key: 'TheKeyvalueRetrievedFromOOB', randomNumber: 238796813516896 },
    },
  },
  'SCIM_device_ble_object_v3.json': {
    schemas: [DEVICE_SCHEMA, BLE_SCHEMA],
    displayName: 'BLE Heart Monitor',
    active: true,
    [BLE_SCHEMA]: {
      ...BLE_CANONICAL_HEAD,
      mobility: true,
      pairingMethods: [PAIRING_PASS_KEY_SCHEMA, PAIRING_OOB_SCHEMA],
      [PAIRING_PASS_KEY_SCHEMA]: { key: 123456 },
      [PAIRING_OOB_SCHEMA]: { key: 'TheKeyvalueRetrievedFromOOB', randomNumber: 238796813516896 },
    },
  },
  'SCIM_device_dpp_object.json': {
    schemas: [DEVICE_SCHEMA, DPP_SCHEMA],
    displayName: 'WiFi Heart Monitor',
    active: true,
    [DPP_SCHEMA]: {
      dppVersion: 2,
      bootstrappingMethod: ['QR'],
      bootstrapKey: 'MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgADURzxmttZoIRIPWGoQMV00XHWCAQIhXruVWOz0NjlkIA=',
      deviceMacAddress: '2c:54:91:88:c9:f2',
      classChannel: ['81/1', '115/36'],
      serialNumber: '4774LH2b4044',
    },
  },
  'SCIM_device_endpoints_with_ble_object.json': {
    schemas: [DEVICE_SCHEMA, BLE_SCHEMA, ENDPOINT_APPS_EXT_SCHEMA],
    displayName: 'BLE Heart Monitor',
    active: true,
    [BLE_SCHEMA]: {
      ...BLE_CANONICAL_HEAD,
      mobility: false,
      pairingMethods: [PAIRING_PASS_KEY_SCHEMA],
      [PAIRING_PASS_KEY_SCHEMA]: { key: 123456 },
    },
    // $ref and both enterprise endpoints are readOnly: the server sets them, client input is dropped.
    [ENDPOINT_APPS_EXT_SCHEMA]: {
      applications: [
        { value: 'e9e30dba-f08f-4109-8486-d5c6a3316212' },
        { value: 'e9e30dba-f08f-4109-8486-d5c6a3316333' },
      ],
    },
  },
  'SCIM_device_fdo_object.json': {
    schemas: [DEVICE_SCHEMA, FDO_SCHEMA],
    displayName: 'Some random Ethernet Device',
    active: true,
    [FDO_SCHEMA]: { fdoVoucher: '{... voucher ...}' },
  },
  'SCIM_device_mab_object.json': {
    schemas: [DEVICE_SCHEMA, ETHERNET_MAB_SCHEMA],
    displayName: 'Some random Ethernet Device',
    active: true,
    [ETHERNET_MAB_SCHEMA]: { deviceMacAddress: '2c:54:91:88:c9:e2' },
  },
  'SCIM_device_zigbee_object.json': {
    schemas: [DEVICE_SCHEMA, ZIGBEE_SCHEMA],
    displayName: 'Zigbee Heart Monitor',
    active: true,
    [ZIGBEE_SCHEMA]: { versionSupport: ['3.0'], deviceEui64Address: '50:32:5f:ff:fe:e7:67:28' },
  },
  'SCIM_endpointapp_schema_object.json': {
    schemas: [ENDPOINT_APP_SCHEMA],
    applicationType: 'deviceControl',
    applicationName: 'Device Control App 1',
    certificateInfo: { rootCA: 'MIIBIjAN...', subjectName: 'www.example.com' },
  },
};

describe('value formats', () => {
  test('eui48 accepts the usual MAC spellings and stores lower-case colon form', () => {
    for (const v of [
      'AA:BB:CC:DD:EE:FF',
      'aa-bb-cc-dd-ee-ff',
      'aabb.ccdd.eeff',
      'aabbccddeeff',
      'AaBbCcDdEeFf',
    ]) {
      assert.equal(EUI48.normalize(v), 'aa:bb:cc:dd:ee:ff', v);
    }
  });

  test('eui48 rejects other lengths, mixed separators and non-hex', () => {
    for (const v of [
      '',
      'aa:bb:cc:dd:ee',
      'aa:bb:cc:dd:ee:ff:00',
      'aa:bb-cc:dd:ee:ff',
      'aabb.ccdd.eef',
      'aabbccddeef',
      'gg:bb:cc:dd:ee:ff',
      ' aa:bb:cc:dd:ee:ff',
      'aabb.ccdd.eeff.0011',
      'a:bb:cc:dd:ee:ff0',
    ]) {
      assert.equal(EUI48.normalize(v), undefined, v);
    }
  });

  test('eui64 is the same for eight octets', () => {
    for (const v of [
      '50:32:5F:FF:FE:E7:67:28',
      '50-32-5f-ff-fe-e7-67-28',
      '5032.5fff.fee7.6728',
      '50325FFFFEE76728',
    ]) {
      assert.equal(EUI64.normalize(v), '50:32:5f:ff:fe:e7:67:28', v);
    }
    for (const v of ['2C:54:91:88:C9:E2', '5032.5fff.fee7', '50:32:5f:ff:fe:e7:67:28:00']) {
      assert.equal(EUI64.normalize(v), undefined, v);
    }
  });

  test('formats are found by name, case-insensitively', () => {
    assert.equal(getFormat('EUI48'), EUI48);
    assert.equal(getFormat('eui64'), EUI64);
    assert.equal(getFormat('nope'), undefined);
  });
});

describe('device model: the draft examples', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));

  test('every example has an expected canonical form', () => {
    assert.deepEqual(files.sort(), Object.keys(expected).sort());
  });

  for (const file of files) {
    test(`${file} passes prepareWrite (create) and projects back unchanged`, () => {
      const body = example(file);
      const rt = registry.resourceType(String((body.meta as JsonObject).resourceType))!;
      const out = prepareWrite(registry, rt, body, { mode: 'create' });
      assert.deepEqual(out, expected[file]);
      assert.deepEqual(project(registry, rt, { ...out, id: 'x' }), { ...out, id: 'x' });
    });
  }

  test('FDO: the JSON spelling (core and extension :2.0:Devices) is accepted, output is canonical', () => {
    const body = example('SCIM_device_fdo_object.json');
    assert.deepEqual(body.schemas, [DEVICE_ALIAS, FDO_ALIAS]);
    const out = createDevice(body);
    assert.deepEqual(out.schemas, [DEVICE_SCHEMA, FDO_SCHEMA]);
    assert.equal(out[FDO_ALIAS], undefined);
    assert.deepEqual(out[FDO_SCHEMA], { fdoVoucher: '{... voucher ...}' });
    // The canonical spelling is accepted too, and the alias in another case.
    const canonical = createDevice({
      schemas: [DEVICE_SCHEMA, FDO_ALIAS.toUpperCase()],
      active: true,
      [FDO_SCHEMA]: { fdoVoucher: 'v' },
    });
    assert.deepEqual(canonical, {
      schemas: [DEVICE_SCHEMA, FDO_SCHEMA],
      active: true,
      [FDO_SCHEMA]: { fdoVoucher: 'v' },
    });
  });

  test('FDO: the alias works in attributes / excludedAttributes paths', () => {
    const res: JsonObject = { ...createDevice(example('SCIM_device_fdo_object.json')), id: 'd3' };
    assert.deepEqual(project(registry, DEVICE, res, { attributes: [`${FDO_ALIAS}:fdoVoucher`] }), {
      schemas: res.schemas,
      id: 'd3',
      [FDO_SCHEMA]: { fdoVoucher: '{... voucher ...}' },
    });
    assert.deepEqual(project(registry, DEVICE, res, { excludedAttributes: [`${FDO_ALIAS}:fdoVoucher`] }), {
      schemas: res.schemas,
      id: 'd3',
      displayName: 'Some random Ethernet Device',
      active: true,
    });
  });

  test('FDO: the same extension under both spellings is rejected', () => {
    rejects(
      () =>
        createDevice({
          schemas: [DEVICE_SCHEMA, FDO_SCHEMA],
          active: true,
          [FDO_SCHEMA]: { fdoVoucher: 'a' },
          [FDO_ALIAS]: { fdoVoucher: 'b' },
        }),
      'invalidSyntax',
      /more than once/,
    );
  });

  test('irk is stored (writeOnly) but never returned', () => {
    const out = createDevice({
      schemas: [DEVICE_SCHEMA, BLE_SCHEMA],
      active: true,
      [BLE_SCHEMA]: {
        versionSupport: ['5.3'],
        deviceMacAddress: '2C:54:91:88:C9:E2',
        isRandom: true,
        irk: '0123456789abcdef0123456789abcdef',
        pairingMethods: [PAIRING_NULL_SCHEMA],
      },
    });
    assert.equal((out[BLE_SCHEMA] as JsonObject).irk, '0123456789abcdef0123456789abcdef');
    const shown = project(registry, DEVICE, out);
    assert.deepEqual(shown[BLE_SCHEMA], {
      versionSupport: ['5.3'],
      deviceMacAddress: '2c:54:91:88:c9:e2',
      isRandom: true,
      pairingMethods: [PAIRING_NULL_SCHEMA],
    });
    // Not even when asked for by name.
    const asked = project(registry, DEVICE, out, { attributes: [`${BLE_SCHEMA}:irk`] });
    assert.deepEqual(asked, { schemas: out.schemas });
  });

  test('pairing-method keys and pairingMethods values are matched case-insensitively, stored canonical', () => {
    const out = createDevice({
      schemas: [DEVICE_SCHEMA, BLE_SCHEMA.toUpperCase()],
      active: true,
      [BLE_SCHEMA.toLowerCase()]: {
        versionsupport: ['5.3'],
        DEVICEMACADDRESS: 'aabb.ccdd.eeff',
        pairingMethods: [PAIRING_PASS_KEY_SCHEMA.toLowerCase()],
        [PAIRING_PASS_KEY_SCHEMA.toUpperCase()]: { KEY: 42 },
      },
    });
    assert.deepEqual(out[BLE_SCHEMA], {
      versionSupport: ['5.3'],
      deviceMacAddress: 'aa:bb:cc:dd:ee:ff',
      pairingMethods: [PAIRING_PASS_KEY_SCHEMA],
      [PAIRING_PASS_KEY_SCHEMA]: { key: 42 },
    });
  });

  test('applicationType is stored in its canonical spelling', () => {
    const out = createApp({
      schemas: [ENDPOINT_APP_SCHEMA],
      applicationType: 'TELEMETRY',
      applicationName: 'T',
    });
    assert.equal(out.applicationType, 'telemetry');
  });
});

describe('device model: rejections', () => {
  const ble = (over: JsonObject = {}): JsonObject => ({
    schemas: [DEVICE_SCHEMA, BLE_SCHEMA],
    active: true,
    [BLE_SCHEMA]: {
      versionSupport: ['5.3'],
      deviceMacAddress: '2C:54:91:88:C9:E2',
      pairingMethods: [PAIRING_PASS_KEY_SCHEMA],
      [PAIRING_PASS_KEY_SCHEMA]: { key: 123456 },
      ...over,
    },
  });

  test('bad MAC addresses → invalidValue naming the attribute and the format', () => {
    rejects(
      () => createDevice(ble({ deviceMacAddress: '2C:54:91:88:C9' })),
      'invalidValue',
      /deviceMacAddress.*eui48/,
    );
    rejects(() => createDevice(ble({ deviceMacAddress: 'zz:54:91:88:c9:e2' })), 'invalidValue', /eui48/);
    rejects(
      () => createDevice(ble({ separateBroadcastAddress: ['aa:bb:88:77:22:11', 'nope'] })),
      'invalidValue',
      /separateBroadcastAddress.*eui48/,
    );
    rejects(
      () =>
        createDevice({
          schemas: [DEVICE_SCHEMA, ETHERNET_MAB_SCHEMA],
          active: true,
          [ETHERNET_MAB_SCHEMA]: { deviceMacAddress: '50:32:5F:FF:FE:E7:67:28' },
        }),
      'invalidValue',
      /ethernet-mab:2\.0:Device:deviceMacAddress.*eui48/,
    );
    rejects(
      () =>
        createDevice({
          schemas: [DEVICE_SCHEMA, DPP_SCHEMA],
          active: true,
          [DPP_SCHEMA]: { dppVersion: 2, bootstrapKey: 'k', deviceMacAddress: 'aabbccddeef' },
        }),
      'invalidValue',
      /eui48/,
    );
    rejects(() => createDevice(ble({ deviceMacAddress: 42 })), 'invalidValue', /expected string/);
  });

  test('bad EUI-64 → invalidValue', () => {
    rejects(
      () =>
        createDevice({
          schemas: [DEVICE_SCHEMA, ZIGBEE_SCHEMA],
          active: true,
          [ZIGBEE_SCHEMA]: { versionSupport: ['3.0'], deviceEui64Address: '2C:54:91:88:C9:E2' },
        }),
      'invalidValue',
      /deviceEui64Address.*eui64/,
    );
  });

  test('pass key must be at most six decimal digits (0..999999)', () => {
    rejects(
      () => createDevice(ble({ [PAIRING_PASS_KEY_SCHEMA]: { key: 1234567 } })),
      'invalidValue',
      /pattern/,
    );
    rejects(
      () => createDevice(ble({ [PAIRING_PASS_KEY_SCHEMA]: { key: -12345 } })),
      'invalidValue',
      /pattern/,
    );
    rejects(() => createDevice(ble({ [PAIRING_PASS_KEY_SCHEMA]: { key: 12.5 } })), 'invalidValue', /integer/);
    rejects(
      () => createDevice(ble({ [PAIRING_PASS_KEY_SCHEMA]: { key: '123456' } })),
      'invalidValue',
      /integer/,
    );
    // A JSON integer loses a leading zero: 012345 arrives as 12345 and is valid.
    const out = createDevice(ble({ [PAIRING_PASS_KEY_SCHEMA]: { key: 12345 } }));
    assert.deepEqual((out[BLE_SCHEMA] as JsonObject)[PAIRING_PASS_KEY_SCHEMA], { key: 12345 });
    // {} is unassigned (RFC 7643 §2.5); an object with other sub-attributes lacks the required one.
    rejects(
      () => createDevice(ble({ [PAIRING_OOB_SCHEMA]: { key: 'k' } })),
      'invalidValue',
      /pairingOOB:2\.0:Device\.randomNumber" is required/,
    );
  });

  test('unknown pairing method: in pairingMethods → invalidValue, as a nested object → invalidSyntax', () => {
    const unknown = 'urn:ietf:params:scim:schemas:extension:pairingMagic:2.0:Device';
    rejects(() => createDevice(ble({ pairingMethods: [unknown] })), 'invalidValue', /canonical values/);
    rejects(() => createDevice(ble({ [unknown]: { key: 1 } })), 'invalidSyntax', /Unknown attribute/);
    rejects(
      () => createDevice(ble({ [PAIRING_OOB_SCHEMA]: { key: 'k', randomNumber: 1, extra: 1 } })),
      'invalidSyntax',
      /Unknown attribute/,
    );
  });

  test('missing required active → invalidValue', () => {
    rejects(
      () => createDevice({ schemas: [DEVICE_SCHEMA], displayName: 'x' }),
      'invalidValue',
      /"active" is required/,
    );
  });

  test('missing required extension attributes → invalidValue', () => {
    const cases: [string, JsonObject, RegExp][] = [
      [
        ETHERNET_MAB_SCHEMA,
        { deviceMacAddress: null },
        /ethernet-mab:2\.0:Device:deviceMacAddress" is required/,
      ],
      [FDO_SCHEMA, { fdoVoucher: null }, /fido-device-onboard:2\.0:Device:fdoVoucher" is required/],
      [ETHERNET_MAB_SCHEMA, {}, /ethernet-mab:2\.0:Device:deviceMacAddress" is required/],
      [FDO_SCHEMA, {}, /fido-device-onboard:2\.0:Device:fdoVoucher" is required/],
      [ZIGBEE_SCHEMA, { versionSupport: ['3.0'] }, /deviceEui64Address" is required/],
      [DPP_SCHEMA, { dppVersion: 2, deviceMacAddress: '2c:54:91:88:c9:f2' }, /bootstrapKey" is required/],
      [
        BLE_SCHEMA,
        { versionSupport: ['5.3'], pairingMethods: [PAIRING_NULL_SCHEMA] },
        /deviceMacAddress" is required/,
      ],
      [
        BLE_SCHEMA,
        { deviceMacAddress: '2c:54:91:88:c9:f2', pairingMethods: [PAIRING_NULL_SCHEMA] },
        /versionSupport" is required/,
      ],
    ];
    for (const [schema, ext, detail] of cases) {
      rejects(
        () => createDevice({ schemas: [DEVICE_SCHEMA, schema], active: true, [schema]: ext }),
        'invalidValue',
        detail,
      );
    }
    // An extension object holding only the other attributes, for the single-attribute extensions.
    rejects(
      () =>
        createDevice({
          schemas: [DEVICE_SCHEMA, ZIGBEE_SCHEMA],
          active: true,
          [ZIGBEE_SCHEMA]: { versionSupport: ['3.0'], deviceEui64Address: null },
        }),
      'invalidValue',
      /zigbee:2\.0:Device:deviceEui64Address" is required/,
    );
    // A null extension is an absent one.
    assert.deepEqual(createDevice({ schemas: [DEVICE_SCHEMA], active: true, [ETHERNET_MAB_SCHEMA]: null }), {
      schemas: [DEVICE_SCHEMA],
      active: true,
    });
    rejects(
      () => createApp({ schemas: [ENDPOINT_APP_SCHEMA], applicationName: 'x' }),
      'invalidValue',
      /applicationType" is required/,
    );
  });

  test('applicationType not canonical → invalidValue', () => {
    rejects(
      () => createApp({ schemas: [ENDPOINT_APP_SCHEMA], applicationType: 'firmware', applicationName: 'x' }),
      'invalidValue',
      /"firmware" is not one of the canonical values "deviceControl", "telemetry"/,
    );
  });

  test('applicationType is immutable on replace', () => {
    const existing = { ...createApp(example('SCIM_endpointapp_schema_object.json')), id: 'a1' };
    rejects(
      () =>
        prepareWrite(
          registry,
          APP,
          { schemas: [ENDPOINT_APP_SCHEMA], applicationType: 'telemetry', applicationName: 'x' },
          { mode: 'replace', existing },
        ),
      'mutability',
      /applicationType" is immutable/,
    );
    // Resent unchanged (any case) or left out: kept.
    for (const body of [
      { schemas: [ENDPOINT_APP_SCHEMA], applicationType: 'DEVICECONTROL', applicationName: 'y' },
      { schemas: [ENDPOINT_APP_SCHEMA], applicationName: 'y' },
    ]) {
      const out = prepareWrite(registry, APP, body, { mode: 'replace', existing });
      assert.equal(out.applicationType, 'deviceControl');
      assert.equal(out.applicationName, 'y');
    }
  });

  test('server-set attributes are ignored on input', () => {
    const out = createApp({
      schemas: [ENDPOINT_APP_SCHEMA],
      applicationType: 'telemetry',
      applicationName: 'x',
      clientToken: 'chosen-by-client',
    });
    assert.equal(out.clientToken, undefined);
  });
});

describe('device model: filters on formatted values', () => {
  const bleDevice = { ...createDevice(example('SCIM_device_ble_object.json')), id: 'd1' };
  const zigbee = { ...createDevice(example('SCIM_device_zigbee_object.json')), id: 'd2' };
  const fdo = { ...createDevice(example('SCIM_device_fdo_object.json')), id: 'd3' };
  const mab = { ...createDevice(example('SCIM_device_mab_object.json')), id: 'd4' };
  const schemaUris = registry.schemaUris();
  const bound = (text: string) => bindFilter(registry, DEVICE, parseFilter(text, { schemaUris }));
  const hits = (text: string) => {
    const f = bound(text);
    return [bleDevice, zigbee, fdo, mab].filter((d) => matches(d, f)).map((d) => d.id);
  };

  test('eq / ne normalise the operand', () => {
    assert.deepEqual(hits('deviceMacAddress eq "2C-54-91-88-C9-E2"'), ['d1']);
    assert.deepEqual(hits(`${BLE_SCHEMA}:deviceMacAddress eq "2c54.9188.c9e2"`), ['d1']);
    assert.deepEqual(hits(`${ETHERNET_MAB_SCHEMA}:deviceMacAddress eq "2C549188C9E2"`), ['d4']);
    assert.deepEqual(hits(`${BLE_SCHEMA}:deviceMacAddress ne "2C-54-91-88-C9-E2"`), ['d2', 'd3', 'd4']);
    assert.deepEqual(hits(`${BLE_SCHEMA}:separateBroadcastAddress eq "aabb.8877.2212"`), ['d1']);
    assert.deepEqual(hits(`${ZIGBEE_SCHEMA}:deviceEui64Address eq "50325FFFFEE76728"`), ['d2']);
    const f = bound('deviceMacAddress eq "2C-54-91-88-C9-E2"');
    assert.equal(f.op === 'eq' && f.value, '2c:54:91:88:c9:e2');
  });

  test('an operand the format rejects matches nothing (ne: everything)', () => {
    assert.deepEqual(hits(`${BLE_SCHEMA}:deviceMacAddress eq "not-a-mac"`), []);
    assert.deepEqual(hits(`${BLE_SCHEMA}:deviceMacAddress ne "not-a-mac"`), ['d1', 'd2', 'd3', 'd4']);
  });

  test('co / sw / ew use the fragment form (lower-case, dashes as colons)', () => {
    assert.deepEqual(hits(`${BLE_SCHEMA}:deviceMacAddress sw "2C-54"`), ['d1']);
    assert.deepEqual(hits(`${ETHERNET_MAB_SCHEMA}:deviceMacAddress ew "C9-E2"`), ['d4']);
    assert.deepEqual(hits(`${ZIGBEE_SCHEMA}:deviceEui64Address co "FF:FE"`), ['d2']);
    const f = bound(`${BLE_SCHEMA}:deviceMacAddress sw "2C-54"`);
    assert.equal(f.op === 'sw' && f.value, '2c:54');
  });

  test('the FDO alias works as a filter prefix', () => {
    assert.deepEqual(hits(`${FDO_ALIAS}:fdoVoucher pr`), ['d3']);
    assert.deepEqual(hits(`${FDO_SCHEMA}:fdoVoucher eq "{... voucher ...}"`), ['d3']);
  });

  test('pairing-method attributes are reachable through extUrn:methodUrn[:sub]', () => {
    assert.deepEqual(hits(`${BLE_SCHEMA}:${PAIRING_PASS_KEY_SCHEMA}:key eq 123456`), ['d1']);
    assert.deepEqual(hits(`${PAIRING_OOB_SCHEMA}:randomNumber gt 1`), ['d1']);
    assert.deepEqual(hits(`${BLE_SCHEMA}:${PAIRING_PASS_KEY_SCHEMA}:key eq 1`), []);
  });

  test('values in any spelling are one value (valueKey)', () => {
    const mac = attrOf(BLE_SCHEMA, 'separateBroadcastAddress');
    assert.ok(valuesEqual(mac, ['AA-BB-88-77-22-11'], ['aa:bb:88:77:22:11']));
    assert.deepEqual(canonicalizeValue(mac, ['AA-BB-88-77-22-11', 'aabb.8877.2211'], 'sba'), [
      'aa:bb:88:77:22:11',
    ]);
  });
});

describe('device model: PATCH and PUT of nested pairing methods', () => {
  const existing: JsonObject = { ...createDevice(example('SCIM_device_ble_object_v1.json')), id: 'd1' };
  const patch = (ops: PatchOperation[]) => applyPatch(registry, DEVICE, existing, ops).resource;
  const bleOf = (r: JsonObject) => r[BLE_SCHEMA] as JsonObject;

  test('path-less add of a nested pairing method (any case)', () => {
    const out = patch([
      {
        op: 'add',
        value: {
          [BLE_SCHEMA.toUpperCase()]: {
            pairingMethods: [PAIRING_OOB_SCHEMA],
            [PAIRING_OOB_SCHEMA.toLowerCase()]: { key: 'oob', randomNumber: 7 },
          },
        },
      },
    ]);
    assert.deepEqual(bleOf(out).pairingMethods, [PAIRING_PASS_KEY_SCHEMA, PAIRING_OOB_SCHEMA]);
    assert.deepEqual(bleOf(out)[PAIRING_OOB_SCHEMA], { key: 'oob', randomNumber: 7 });
    assert.deepEqual(bleOf(out)[PAIRING_PASS_KEY_SCHEMA], { key: 123456 });
  });

  test('path-less replace validates the nested object', () => {
    const out = patch([
      { op: 'replace', value: { [BLE_SCHEMA]: { [PAIRING_PASS_KEY_SCHEMA]: { key: 654321 } } } },
    ]);
    assert.deepEqual(bleOf(out)[PAIRING_PASS_KEY_SCHEMA], { key: 654321 });
    assert.throws(
      () =>
        patch([{ op: 'replace', value: { [BLE_SCHEMA]: { [PAIRING_PASS_KEY_SCHEMA]: { key: 1234567 } } } }]),
      (e: unknown) => e instanceof ScimError && e.scimType === 'invalidValue',
    );
  });

  test('paths extUrn:methodUrn and extUrn:methodUrn:sub', () => {
    const a = patch([{ op: 'replace', path: `${BLE_SCHEMA}:${PAIRING_PASS_KEY_SCHEMA}:key`, value: 111111 }]);
    assert.deepEqual(bleOf(a)[PAIRING_PASS_KEY_SCHEMA], { key: 111111 });
    const b = patch([{ op: 'remove', path: `${BLE_SCHEMA}:${PAIRING_PASS_KEY_SCHEMA}` }]);
    assert.equal(bleOf(b)[PAIRING_PASS_KEY_SCHEMA], undefined);
    const c = patch([
      { op: 'add', path: `${BLE_SCHEMA}:${PAIRING_OOB_SCHEMA}`, value: { key: 'k', randomNumber: 2 } },
    ]);
    assert.deepEqual(bleOf(c)[PAIRING_OOB_SCHEMA], { key: 'k', randomNumber: 2 });
    const bound = bindPatchPath(
      registry,
      DEVICE,
      parsePath(`${BLE_SCHEMA}:${PAIRING_OOB_SCHEMA}`, { schemaUris: registry.schemaUris() }),
    );
    assert.equal(bound.attr.attribute.name, PAIRING_OOB_SCHEMA);
    assert.equal(bound.wholeExtension, undefined);
  });

  test('PATCH normalises MACs and rejects bad ones', () => {
    const out = patch([
      { op: 'replace', path: `${BLE_SCHEMA}:deviceMacAddress`, value: '00-11-22-33-44-55' },
    ]);
    assert.equal(bleOf(out).deviceMacAddress, '00:11:22:33:44:55');
    const out2 = patch([
      { op: 'remove', path: `${BLE_SCHEMA}:separateBroadcastAddress`, value: ['AA-BB-88-77-22-11'] },
    ]);
    assert.deepEqual(bleOf(out2).separateBroadcastAddress, ['aa:bb:88:77:22:12']);
    assert.throws(
      () => patch([{ op: 'replace', path: `${BLE_SCHEMA}:deviceMacAddress`, value: '00-11-22' }]),
      (e: unknown) => e instanceof ScimError && e.scimType === 'invalidValue' && /eui48/.test(e.message),
    );
  });

  test('PATCH on the FDO alias path lands under the canonical URN', () => {
    const fdo = { ...createDevice(example('SCIM_device_fdo_object.json')), id: 'd3' };
    const out = applyPatch(registry, DEVICE, fdo, [
      { op: 'replace', path: `${FDO_ALIAS}:fdoVoucher`, value: 'v2' },
    ]).resource;
    assert.deepEqual(out[FDO_SCHEMA], { fdoVoucher: 'v2' });
    assert.equal(out[FDO_ALIAS], undefined);
  });

  test('PUT replaces nested pairing methods', () => {
    const body = example('SCIM_device_ble_object_v2.json');
    const out = prepareWrite(registry, DEVICE, body, { mode: 'replace', existing });
    assert.equal(bleOf(out)[PAIRING_PASS_KEY_SCHEMA], undefined);
    assert.deepEqual(bleOf(out)[PAIRING_OOB_SCHEMA], {
      key: 'TheKeyvalueRetrievedFromOOB',
      randomNumber: 238796813516896,
    });
  });

  test('projection by extUrn:methodUrn:sub', () => {
    const shown = project(registry, DEVICE, existing, {
      attributes: [`${BLE_SCHEMA}:${PAIRING_PASS_KEY_SCHEMA}:key`],
    });
    assert.deepEqual(shown, {
      schemas: existing.schemas,
      id: 'd1',
      [BLE_SCHEMA]: { [PAIRING_PASS_KEY_SCHEMA]: { key: 123456 } },
    });
  });
});

describe('device model: registry and discovery', () => {
  test('resource types', () => {
    assert.equal(registry.resourceTypeByEndpoint('/Devices'), DEVICE);
    assert.equal(registry.resourceTypeByEndpoint('EndpointApps'), APP);
    assert.equal(DEVICE.groupsAttribute, 'groups');
    assert.deepEqual(
      DEVICE.schemaExtensions,
      [BLE_SCHEMA, DPP_SCHEMA, ETHERNET_MAB_SCHEMA, FDO_SCHEMA, ZIGBEE_SCHEMA, ENDPOINT_APPS_EXT_SCHEMA].map(
        (schema) => ({
          schema,
          required: false,
        }),
      ),
    );
    assert.deepEqual(APP.schemaExtensions, []);
    assert.equal(registry.schema(FDO_ALIAS)?.id, FDO_SCHEMA);
    assert.equal(registry.canonicalSchemaId(DEVICE_ALIAS.toUpperCase()), DEVICE_SCHEMA);
  });

  test('Group members may be Devices; the core registry is unchanged', () => {
    const members = registry.schema(GROUP_SCHEMA)!.attributes.find((a) => a.name === 'members')!;
    assert.deepEqual(findSubAttribute(members, 'type')!.canonicalValues, [
      'User',
      'Group',
      'Device',
      'EndpointApp',
    ]);
    assert.deepEqual(findSubAttribute(members, '$ref')!.referenceTypes, [
      'User',
      'Group',
      'Device',
      'EndpointApp',
    ]);
    const core = createCoreRegistry()
      .schema(GROUP_SCHEMA)!
      .attributes.find((a) => a.name === 'members')!;
    assert.deepEqual(findSubAttribute(core, 'type')!.canonicalValues, ['User', 'Group']);
  });

  test('secrets are flagged sensitive', () => {
    const sensitive: string[] = [];
    for (const s of registry.schemas()) {
      const walk = (a: AttributeDefinition, prefix: string) => {
        if (a.sensitive) sensitive.push(`${prefix}${a.name}`);
        for (const sub of a.subAttributes ?? []) walk(sub, `${prefix}${a.name}.`);
      };
      for (const a of s.attributes) walk(a, `${s.id}:`);
    }
    assert.deepEqual(
      sensitive.sort(),
      [
        `${ENDPOINT_APP_SCHEMA}:clientToken`,
        `${BLE_SCHEMA}:${PAIRING_JUST_WORKS_SCHEMA}.key`,
        `${BLE_SCHEMA}:${PAIRING_OOB_SCHEMA}.confirmationNumber`,
        `${BLE_SCHEMA}:${PAIRING_OOB_SCHEMA}.key`,
        `${BLE_SCHEMA}:${PAIRING_OOB_SCHEMA}.randomNumber`,
        `${BLE_SCHEMA}:${PAIRING_PASS_KEY_SCHEMA}.key`,
        `${BLE_SCHEMA}:irk`,
        `${DPP_SCHEMA}:bootstrapKey`,
        `${FDO_SCHEMA}:fdoVoucher`,
        `${PAIRING_JUST_WORKS_SCHEMA}:key`,
        `${PAIRING_OOB_SCHEMA}:confirmationNumber`,
        `${PAIRING_OOB_SCHEMA}:key`,
        `${PAIRING_OOB_SCHEMA}:randomNumber`,
        `${PAIRING_PASS_KEY_SCHEMA}:key`,
      ].sort(),
    );
    const irk = attrOf(BLE_SCHEMA, 'irk');
    assert.equal(irk.mutability, 'writeOnly');
    assert.equal(irk.returned, 'never');
  });

  test('/Schemas stays RFC-shaped: uniqueness server, no server-side keys', () => {
    const doc = schemaDocument(registry.schema(BLE_SCHEMA)!, 'https://x/scim/v2');
    const attrs = doc.attributes as JsonObject[];
    const mac = attrs.find((a) => a.name === 'deviceMacAddress')!;
    assert.deepEqual(Object.keys(mac), [
      'name',
      'type',
      'multiValued',
      'description',
      'required',
      'caseExact',
      'mutability',
      'returned',
      'uniqueness',
    ]);
    assert.equal(mac.uniqueness, 'server');
    const text = JSON.stringify(schemasInUse(registry).map((s) => schemaDocument(s, 'https://x/scim/v2')));
    for (const key of ['"pattern"', '"format"', '"sensitive"', '"strictCanonical"'])
      assert.ok(!text.includes(key), key);
  });

  test('/Schemas lists the pairing-method schemas with the device schemas', () => {
    const ids = schemasInUse(registry).map((s) => s.id);
    for (const id of [
      DEVICE_SCHEMA,
      ENDPOINT_APP_SCHEMA,
      BLE_SCHEMA,
      FDO_SCHEMA,
      PAIRING_NULL_SCHEMA,
      PAIRING_OOB_SCHEMA,
    ]) {
      assert.ok(ids.includes(id), id);
    }
    assert.ok(!ids.includes(FDO_ALIAS));
  });

  test('unique indexes are generated for the server-unique string attributes', () => {
    const statements = uniqueIndexStatements(registry).filter(
      (s) => s.includes("'Device'") && s.startsWith('CREATE UNIQUE INDEX'),
    );
    const keys = statements.map((s) => {
      const m = /\(doc -> '([^']+)'\) ->> '([^']+)'/.exec(s);
      return m ? `${m[1]}:${m[2]}` : s;
    });
    assert.deepEqual(keys.sort(), [
      `${BLE_SCHEMA}:deviceMacAddress`,
      `${BLE_SCHEMA}:irk`,
      `${DPP_SCHEMA}:deviceMacAddress`,
      `${ETHERNET_MAB_SCHEMA}:deviceMacAddress`,
    ]);
    // Zigbee EUI-64s are not unique in the draft but are how devices are found: a plain lookup index;
    // displayName is searched by prefix: a text_pattern_ops index over its lower-cased text.
    const lookups = uniqueIndexStatements(registry)
      .filter((s) => s.startsWith('CREATE INDEX') && s.includes("'Device'"))
      .sort();
    assert.equal(lookups.length, 2);
    assert.match(lookups[0], /zigbee:2\.0:Device'\) ->> 'deviceEui64Address'/);
    assert.doesNotMatch(lookups[0], /text_pattern_ops/);
    assert.match(
      lookups[1],
      /^CREATE INDEX IF NOT EXISTS "resources_px_device_displayname_[0-9a-f]{8}" ON resources \(tenant_id, \(lower\(\(doc ->> 'displayName'\)\)\) text_pattern_ops\) WHERE resource_type = 'Device' AND lower\(\(doc ->> 'displayName'\)\) IS NOT NULL$/,
    );
    // Only devices with a value are in an index (a BLE device adds nothing to the Zigbee one);
    // each such index replaces the full one of earlier releases, which the migration drops.
    for (const s of [...statements, ...lookups]) assert.match(s, /\) IS NOT NULL$/);
    const drops = uniqueIndexStatements(registry).filter((s) => s.startsWith('DROP INDEX'));
    assert.equal(drops.length, statements.length + lookups.length);
    // Each within a tenant (uniqueness "server").
    for (const s of statements) assert.match(s, /ON resources \(tenant_id, lower\(/);
  });

  test('schema data the validators cannot apply is rejected at registration', () => {
    const r = new SchemaRegistry();
    assert.throws(
      () => r.addSchema({ id: 'urn:x:a', name: 'a', attributes: [{ name: 'm', format: 'nope' }] }),
      /unknown format nope/,
    );
    assert.throws(
      () =>
        r.addSchema({
          id: 'urn:x:b',
          name: 'b',
          attributes: [{ name: 'm', type: 'boolean', format: 'eui48' }],
        }),
      /format applies only to string/,
    );
    assert.throws(
      () => r.addSchema({ id: 'urn:x:c', name: 'c', attributes: [{ name: 'm', pattern: '(' }] }),
      /invalid pattern/,
    );
    assert.throws(
      () =>
        r.addSchema({
          id: 'urn:x:i',
          name: 'i',
          attributes: [{ name: 'm', type: 'integer', indexed: 'prefix' }],
        }),
      /indexed applies only to single-valued string attributes/,
    );
    assert.throws(
      () =>
        r.addSchema({
          id: 'urn:x:j',
          name: 'j',
          attributes: [{ name: 'm', multiValued: true, indexed: true }],
        }),
      /indexed applies only to single-valued string attributes/,
    );
    assert.throws(
      () => r.addSchema({ id: 'urn:x:d', name: 'd', attributes: [{ name: 'm', strictCanonical: true }] }),
      /strictCanonical without canonicalValues/,
    );
    r.addSchema({ id: 'urn:x:e', name: 'e', attributes: [] });
    assert.throws(() => r.addSchemaAlias('urn:x:f', 'urn:x:nope'), /unknown schema/);
    assert.throws(() => r.addSchemaAlias('urn:x:e', 'urn:x:e'), /is registered/);
  });

  test('pattern applies to any custom string attribute (generic)', () => {
    const r = createCoreRegistry();
    r.addSchema({ id: 'urn:x:Thing', name: 'Thing', attributes: [{ name: 'code', pattern: '^[A-Z]{3}$' }] });
    r.addResourceType({
      id: 'Thing',
      name: 'Thing',
      endpoint: '/Things',
      description: '',
      schema: 'urn:x:Thing',
      schemaExtensions: [],
    });
    const rt = r.resourceType('Thing')!;
    assert.deepEqual(prepareWrite(r, rt, { schemas: ['urn:x:Thing'], code: 'ABC' }, { mode: 'create' }), {
      schemas: ['urn:x:Thing'],
      code: 'ABC',
    });
    rejects(
      () => prepareWrite(r, rt, { schemas: ['urn:x:Thing'], code: 'abcd' }, { mode: 'create' }),
      'invalidValue',
      /code.*pattern/,
    );
  });
});
