/** Columns → SCIM Device bodies: every documented column, conversions, the header map, unknown columns. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ColumnResolver,
  COLUMNS,
  csvRowBody,
  InputError,
  jsonLineBody,
  parseHeaderMap,
} from '../../src/import/mapping.ts';
import { ScimError } from '../../src/scim/errors.ts';
import {
  APPS_EXT,
  BLE,
  DEVICE,
  DPP,
  FDO,
  MAB,
  PAIRING_JUST_WORKS,
  PAIRING_NULL,
  PAIRING_OOB,
  PAIRING_PASS_KEY,
  ZIGBEE,
} from '../devices/helpers.ts';

const ALL = COLUMNS.map((c) => c.name);

function row(resolver: ColumnResolver, header: string[], fields: string[]) {
  return csvRowBody(resolver.header(header), fields);
}

function rowError(fn: () => unknown): { status: number; scimType?: string; detail: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ScimError, String(err));
    return { status: err.status, scimType: err.scimType, detail: err.detail };
  }
  assert.fail('expected a row error');
}

describe('import columns', () => {
  test('the documented columns, in order', () => {
    assert.deepEqual(ALL, [
      'displayName',
      'active',
      'mudUrl',
      'externalId',
      'ble.deviceMacAddress',
      'ble.isRandom',
      'ble.versionSupport',
      'ble.pairingMethods',
      'ble.passKey',
      'dpp.bootstrapKey',
      'dpp.deviceMacAddress',
      'dpp.serialNumber',
      'dpp.bootstrappingMethod',
      'dpp.dppVersion',
      'mab.deviceMacAddress',
      'fdo.fdoVoucher',
      'zigbee.deviceEui64Address',
      'zigbee.versionSupport',
      'applications',
    ]);
  });

  test('a row with every column → the Device body, extensions in schema order', () => {
    const body = row(new ColumnResolver(), ALL, [
      ' Door lock ',
      'Yes',
      'https://example.com/mud/lock',
      'SN-1',
      'AA:BB:CC:DD:EE:01',
      '0',
      '5.3; 4.2;',
      'passKey;OOB;justWorks;null;' + PAIRING_PASS_KEY.toUpperCase(),
      '012345',
      'MDkwEwYHKoZIzj0CAQ==',
      'aa:bb:cc:dd:ee:02',
      'S/N 77',
      'QR;NFC',
      '2',
      'aa:bb:cc:dd:ee:03',
      'voucher-text',
      '00:11:22:33:44:55:66:77',
      '3.0',
      'app-1;app-2',
    ]);
    assert.deepEqual(body, {
      schemas: [DEVICE, BLE, DPP, MAB, FDO, ZIGBEE, APPS_EXT],
      displayName: 'Door lock',
      active: true,
      mudUrl: 'https://example.com/mud/lock',
      externalId: 'SN-1',
      [BLE]: {
        deviceMacAddress: 'AA:BB:CC:DD:EE:01',
        isRandom: false,
        versionSupport: ['5.3', '4.2'],
        pairingMethods: [
          PAIRING_PASS_KEY,
          PAIRING_OOB,
          PAIRING_JUST_WORKS,
          PAIRING_NULL,
          PAIRING_PASS_KEY.toUpperCase(),
        ],
        [PAIRING_PASS_KEY]: { key: 12345 },
      },
      [DPP]: {
        bootstrapKey: 'MDkwEwYHKoZIzj0CAQ==',
        deviceMacAddress: 'aa:bb:cc:dd:ee:02',
        serialNumber: 'S/N 77',
        bootstrappingMethod: ['QR', 'NFC'],
        dppVersion: 2,
      },
      [MAB]: { deviceMacAddress: 'aa:bb:cc:dd:ee:03' },
      [FDO]: { fdoVoucher: 'voucher-text' },
      [ZIGBEE]: { deviceEui64Address: '00:11:22:33:44:55:66:77', versionSupport: ['3.0'] },
      [APPS_EXT]: { applications: [{ value: 'app-1' }, { value: 'app-2' }] },
    });
  });

  test('empty (or blank) cells are absent, and so is an extension with no cell', () => {
    assert.deepEqual(
      row(new ColumnResolver(), ['displayName', 'active', 'ble.deviceMacAddress'], ['', 'no', '  ']),
      {
        schemas: [DEVICE],
        active: false,
      },
    );
  });

  test('booleans: true/false, 1/0, yes/no in any case; anything else is the row 400', () => {
    const r = new ColumnResolver();
    for (const [text, value] of [
      ['TRUE', true],
      ['1', true],
      ['yes', true],
      ['False', false],
      ['0', false],
      ['NO', false],
    ] as const) {
      assert.deepEqual(row(r, ['active'], [text]), { schemas: [DEVICE], active: value }, text);
    }
    assert.deepEqual(
      rowError(() => row(r, ['active'], ['maybe'])),
      {
        status: 400,
        scimType: 'invalidValue',
        detail: 'active: "maybe" is not a boolean (true/false, 1/0, yes/no)',
      },
    );
  });

  test('integers: a non-integer cell is the row 400', () => {
    assert.deepEqual(
      rowError(() => row(new ColumnResolver(), ['dpp.dppVersion'], ['2.5'])),
      {
        status: 400,
        scimType: 'invalidValue',
        detail: 'dpp.dppVersion: "2.5" is not an integer',
      },
    );
    assert.deepEqual(
      rowError(() => row(new ColumnResolver(), ['ble.passKey'], ['12ab'])),
      {
        status: 400,
        scimType: 'invalidValue',
        detail: 'ble.passKey: "12ab" is not an integer',
      },
    );
  });

  test('a row with another number of fields than the header is the row 400', () => {
    assert.deepEqual(
      rowError(() => row(new ColumnResolver(), ['displayName', 'active'], ['x'])),
      {
        status: 400,
        scimType: 'invalidSyntax',
        detail: 'the row has 1 field, the header 2',
      },
    );
  });

  test('header names match case-insensitively, blanks and a UTF-8 BOM around them ignored', () => {
    const h = new ColumnResolver().header(['\uFEFFDisplayName', ' BLE.DEVICEMACADDRESS ']);
    assert.deepEqual(
      h.map((c) => c?.name),
      ['displayName', 'ble.deviceMacAddress'],
    );
  });

  test('unknown columns are fatal, all named; --ignore-unknown-columns skips them', () => {
    assert.throws(
      () => new ColumnResolver().header(['displayName', 'Color', 'Weight']),
      new InputError(
        'unknown columns "Color", "Weight" (see docs/import.md for the columns; --map renames headers, ' +
          '--ignore-unknown-columns skips them)',
      ),
    );
    const h = new ColumnResolver({}, true);
    assert.deepEqual(row(h, ['displayName', 'Color', 'active'], ['x', 'red', '1']), {
      schemas: [DEVICE],
      displayName: 'x',
      active: true,
    });
  });

  test('two headers naming one column are fatal', () => {
    assert.throws(
      () => new ColumnResolver({ MAC: 'ble.deviceMacAddress' }).header(['MAC', 'ble.deviceMacAddress']),
      new InputError('columns "MAC" and "ble.deviceMacAddress" both name ble.deviceMacAddress'),
    );
  });

  test('the header map renames a manufacturer header; null drops one; targets must be columns', () => {
    const map = parseHeaderMap(
      { 'Device Name': 'displayName', MAC: 'BLE.deviceMacAddress', Notes: null },
      'm',
    );
    assert.deepEqual(map, { 'Device Name': 'displayName', MAC: 'ble.deviceMacAddress', Notes: null });
    const r = new ColumnResolver(map);
    assert.deepEqual(
      row(r, ['Device Name', 'Notes', 'MAC', 'active'], ['Lamp', 'whatever', 'aa:bb:cc:dd:ee:ff', 'true']),
      {
        schemas: [DEVICE, BLE],
        displayName: 'Lamp',
        active: true,
        [BLE]: { deviceMacAddress: 'aa:bb:cc:dd:ee:ff' },
      },
    );
    assert.throws(
      () => parseHeaderMap({ MAC: 'ble.mac' }, 'map.json'),
      new InputError('map.json: "MAC" maps to "ble.mac", which is not a column'),
    );
    assert.throws(
      () => parseHeaderMap(['displayName'], 'map.json'),
      new InputError('map.json: a JSON object of header → column name expected'),
    );
    assert.throws(
      () => parseHeaderMap({ MAC: 3 }, 'map.json'),
      new InputError('map.json: "MAC" must map to a column name (a string) or null'),
    );
  });

  test('JSON lines: a SCIM resource is taken as it is; a flat object uses the column names', () => {
    const r = new ColumnResolver({ Name: 'displayName' });
    const scim = { schemas: [DEVICE], active: true, Name: 'kept as is' };
    assert.equal(jsonLineBody(scim, r), scim);
    assert.deepEqual(
      jsonLineBody(
        {
          Name: 'Lamp',
          active: 'yes',
          'ble.deviceMacAddress': 'aa:bb:cc:dd:ee:ff',
          'ble.isRandom': true,
          'ble.versionSupport': ['5.3'],
          'ble.pairingMethods': 'passKey',
          'ble.passKey': 123456,
          mudUrl: null,
          applications: ['a1'],
        },
        r,
      ),
      {
        schemas: [DEVICE, BLE, APPS_EXT],
        displayName: 'Lamp',
        active: true,
        [BLE]: {
          deviceMacAddress: 'aa:bb:cc:dd:ee:ff',
          isRandom: true,
          versionSupport: ['5.3'],
          pairingMethods: [PAIRING_PASS_KEY],
          [PAIRING_PASS_KEY]: { key: 123456 },
        },
        [APPS_EXT]: { applications: [{ value: 'a1' }] },
      },
    );
    assert.deepEqual(
      rowError(() => jsonLineBody({ active: true, color: 'red' }, r)),
      {
        status: 400,
        scimType: 'invalidSyntax',
        detail: 'unknown column "color"',
      },
    );
    assert.deepEqual(
      rowError(() => jsonLineBody([1], r)),
      {
        status: 400,
        scimType: 'invalidSyntax',
        detail: 'each line must be a JSON object',
      },
    );
  });
});
