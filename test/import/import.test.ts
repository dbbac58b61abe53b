/**
 * The import into a store (src/import/devices.ts over ResourceService.createBatch), in process: the
 * embedded store in memory, or a scratch PostgreSQL database when DATABASE_URL is set. Rows are
 * checked as a client sees them afterwards (GET through the HTTP layer of the same store).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { importDevices } from '../../src/import/devices.ts';
import { ColumnResolver } from '../../src/import/mapping.ts';
import type { ImportFormat, RowError } from '../../src/import/runner.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  APPS_EXT,
  BLE,
  baseUrl,
  bleDevice,
  CONTROL_ENDPOINT,
  DEVICE,
  deviceTenant,
  DPP,
  endpointApp,
  FDO,
  FDO_ALIAS,
  type Json,
  ORIGIN,
  PAIRING_JUST_WORKS,
  PAIRING_NULL,
  PAIRING_PASS_KEY,
  Scim,
  TELEMETRY_ENDPOINT,
} from '../devices/helpers.ts';

const TENANT = 'acme';

describe('device import into a store', () => {
  let t: TestApp;
  let scim: Scim;
  let dir: string;
  let app1: string;
  let app2: string;
  let existingId: string;

  before(async () => {
    t = await startTestApp();
    scim = new Scim(t, TENANT, await deviceTenant(t, TENANT));
    app1 = (await scim.create('/EndpointApps', endpointApp('Control'))).body.id;
    app2 = (await scim.create('/EndpointApps', endpointApp('Telemetry', 'telemetry'))).body.id;
    existingId = (await scim.create('/Devices', bleDevice('aa:bb:cc:dd:ee:99'))).body.id;
    dir = mkdtempSync(join(tmpdir(), 'scimd-import-'));
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(
    name: string,
    text: string,
    opts: {
      format?: ImportFormat;
      dryRun?: boolean;
      batchSize?: number;
      resolver?: ColumnResolver;
      tenant?: string;
    } = {},
  ) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const errors: RowError[] = [];
    const summary = await importDevices({
      db: t.app.db,
      registry: t.app.registry,
      tenant: opts.tenant ?? TENANT,
      origin: ORIGIN,
      file,
      format: opts.format ?? 'csv',
      resolver: opts.resolver ?? new ColumnResolver(),
      dryRun: opts.dryRun ?? false,
      batchSize: opts.batchSize,
      onError: (e) => {
        errors.push(e);
      },
    });
    const { seconds, rate, ...counts } = summary;
    assert.equal(typeof seconds, 'number');
    assert.equal(typeof rate, 'number');
    return { counts, errors };
  }

  async function devicesByMac(): Promise<Map<string, Json>> {
    const res = await scim.request('GET', '/Devices?count=1000');
    assert.equal(res.status, 200);
    const out = new Map<string, Json>();
    for (const d of res.body.Resources ?? []) {
      const mac = d[BLE]?.deviceMacAddress ?? d[DPP]?.deviceMacAddress ?? `id:${d.id}`;
      out.set(mac, d);
    }
    return out;
  }

  test('a file with bad rows imports exactly the good ones and reports the others by row and line', async () => {
    const csv =
      'displayName,active,ble.deviceMacAddress,ble.versionSupport,ble.pairingMethods,ble.passKey,applications\r\n' +
      `"Lamp, ""kitchen""",yes,AA:BB:CC:DD:EE:01,5.3;4.2,passKey,012345,${app1};${app2}\r\n` +
      'Bad MAC,true,AA:BB:CC:DD:EE,5.3,justWorks,,\r\n' +
      '"Two\r\nlines",1,aa:bb:cc:dd:ee:02,5.3,justWorks,,\r\n' +
      'Dup in file,true,AA:bb:cc:dd:ee:01,5.3,justWorks,,\r\n' +
      'Dup existing,true,aa:bb:cc:dd:ee:99,5.3,justWorks,,\r\n' +
      'No active,,aa:bb:cc:dd:ee:03,5.3,justWorks,,\r\n' +
      'Unknown app,true,aa:bb:cc:dd:ee:04,5.3,justWorks,,nope\r\n' +
      ',,,,,,\r\n' +
      'Last,no,aa:bb:cc:dd:ee:05,5.3,null,,\r\n';
    // Batches of 3: failures first, in the middle and last in a batch, and batches without one.
    const { counts, errors } = await run('mixed.csv', csv, { batchSize: 3 });
    assert.deepEqual(counts, { rows: 8, valid: 3, imported: 3, failed: 5 });
    const uniqueness = `Another Device already has this ${BLE}:deviceMacAddress`;
    assert.deepEqual(errors, [
      {
        row: 2,
        line: 3,
        status: 400,
        scimType: 'invalidValue',
        detail:
          `Attribute "${BLE}:deviceMacAddress": "AA:BB:CC:DD:EE" is not a valid eui48 value ` +
          '(6-octet EUI (e.g. A0:A1:A2:A3:A4:A5))',
      },
      { row: 4, line: 6, status: 409, scimType: 'uniqueness', detail: uniqueness },
      { row: 5, line: 7, status: 409, scimType: 'uniqueness', detail: uniqueness },
      { row: 6, line: 8, status: 400, scimType: 'invalidValue', detail: 'Attribute "active" is required' },
      {
        row: 7,
        line: 9,
        status: 400,
        scimType: 'invalidValue',
        detail: 'applications: no EndpointApp "nope" in this tenant',
      },
    ]);

    const devices = await devicesByMac();
    assert.deepEqual([...devices.keys()].sort(), [
      'aa:bb:cc:dd:ee:01',
      'aa:bb:cc:dd:ee:02',
      'aa:bb:cc:dd:ee:05',
      'aa:bb:cc:dd:ee:99',
    ]);
    assert.equal(devices.get('aa:bb:cc:dd:ee:99')!.id, existingId);

    // Exactly the row's attributes, plus what the server sets (as for POST /Devices).
    const lamp = devices.get('aa:bb:cc:dd:ee:01')!;
    const location = `${baseUrl(TENANT)}/Devices/${lamp.id}`;
    assert.deepEqual(lamp, {
      schemas: [DEVICE, BLE, APPS_EXT],
      id: lamp.id,
      displayName: 'Lamp, "kitchen"',
      active: true,
      [BLE]: {
        versionSupport: ['5.3', '4.2'],
        deviceMacAddress: 'aa:bb:cc:dd:ee:01',
        pairingMethods: [PAIRING_PASS_KEY],
        [PAIRING_PASS_KEY]: { key: 12345 },
      },
      [APPS_EXT]: {
        applications: [
          { value: app1, $ref: `${baseUrl(TENANT)}/EndpointApps/${app1}` },
          { value: app2, $ref: `${baseUrl(TENANT)}/EndpointApps/${app2}` },
        ],
        deviceControlEnterpriseEndpoint: CONTROL_ENDPOINT,
        telemetryEnterpriseEndpoint: TELEMETRY_ENDPOINT,
      },
      meta: {
        resourceType: 'Device',
        created: lamp.meta.created,
        lastModified: lamp.meta.created,
        location,
        version: 'W/"1"',
      },
    });
    const got = await scim.request('GET', `/Devices/${lamp.id}`);
    assert.deepEqual(got.body, lamp);
    assert.deepEqual(devices.get('aa:bb:cc:dd:ee:02')!.displayName, 'Two\r\nlines');
    const last = devices.get('aa:bb:cc:dd:ee:05')!;
    assert.deepEqual(
      { active: last.active, [BLE]: last[BLE], schemas: last.schemas },
      {
        active: false,
        schemas: [DEVICE, BLE],
        [BLE]: {
          versionSupport: ['5.3'],
          deviceMacAddress: 'aa:bb:cc:dd:ee:05',
          pairingMethods: [PAIRING_NULL],
        },
      },
    );

    // The imported devices' applications are in managed_refs (what managed-only lists read).
    const refs = await t.app.db.query<{ ref: string; resource_id: string }>(
      'SELECT ref, resource_id FROM managed_refs WHERE tenant_id = $1 AND resource_id = $2 ORDER BY ref',
      [TENANT, lamp.id],
    );
    assert.deepEqual(
      refs.rows.map((r) => r.ref),
      [app1, app2].sort(),
    );

    // The audit trail names the client `import`, one create per stored device.
    const audit = await t.app.admin.audit(TENANT, { client: 'import', startIndex: 1, count: 100 });
    assert.deepEqual(
      audit.entries.map((e) => [e.operation, e.resourceType, e.resourceId, e.version, e.client]).sort(),
      [lamp.id, devices.get('aa:bb:cc:dd:ee:02')!.id, last.id]
        .map((id) => ['create', 'Device', id, 'W/"1"', 'import'])
        .sort(),
    );
  });

  test('an imported device equals the same body POSTed to /Devices (but for id, meta, MAC)', async () => {
    const csv = `displayName,active,ble.deviceMacAddress,ble.versionSupport,ble.pairingMethods,ble.passKey,applications\nSame,true,aa:bb:cc:00:00:01,5.3,passKey,654321,${app1}\n`;
    const { counts } = await run('same.csv', csv);
    assert.deepEqual(counts, { rows: 1, valid: 1, imported: 1, failed: 0 });
    const posted = await scim.create('/Devices', {
      schemas: [DEVICE, BLE, APPS_EXT],
      displayName: 'Same',
      active: true,
      [BLE]: {
        versionSupport: ['5.3'],
        deviceMacAddress: 'aa:bb:cc:00:00:02',
        pairingMethods: [PAIRING_PASS_KEY],
        [PAIRING_PASS_KEY]: { key: 654321 },
      },
      [APPS_EXT]: { applications: [{ value: app1 }] },
    });
    const imported = (await devicesByMac()).get('aa:bb:cc:00:00:01')!;
    const strip = (d: Json) => {
      const { id: _id, meta: _meta, ...rest } = structuredClone(d);
      delete rest[BLE].deviceMacAddress;
      return rest;
    };
    assert.deepEqual(strip(imported), strip(posted.body));
  });

  test('dry run: validates everything (uniqueness within the file too) and stores nothing', async () => {
    const before = await devicesByMac();
    const csv =
      'displayName,active,ble.deviceMacAddress,ble.versionSupport,ble.pairingMethods\n' +
      'A,true,aa:bb:cc:11:11:01,5.3,justWorks\n' +
      'B,true,aa:bb:cc:11:11:02,5.3,justWorks\n' +
      'A again,true,aa:bb:cc:11:11:01,5.3,justWorks\n' +
      'Existing,true,aa:bb:cc:dd:ee:99,5.3,justWorks\n';
    const { counts, errors } = await run('dry.csv', csv, { dryRun: true });
    assert.deepEqual(counts, { rows: 4, valid: 2, imported: 0, failed: 2 });
    assert.deepEqual(
      errors.map((e) => [e.row, e.line, e.status, e.scimType]),
      [
        [3, 4, 409, 'uniqueness'],
        [4, 5, 409, 'uniqueness'],
      ],
    );
    assert.deepEqual([...(await devicesByMac()).keys()].sort(), [...before.keys()].sort());
    const audit = await t.app.admin.audit(TENANT, { client: 'import', startIndex: 1, count: 100 });
    assert.equal(audit.entries.filter((e) => e.resourceType === 'Device').length, 4);
  });

  test('a batch the multi-row insert cannot store is run row by row: a value the database refuses, duplicates, good rows', async () => {
    const ble = (name: string, mac: string) => ({
      schemas: [DEVICE, BLE],
      displayName: name,
      active: true,
      [BLE]: { versionSupport: ['5.3'], deviceMacAddress: mac, pairingMethods: [PAIRING_JUST_WORKS] },
    });
    const lines = [
      ble('Good 1', 'aa:bb:cc:55:55:01'),
      // jsonb cannot hold U+0000: the whole multi-row statement fails, so the batch is rerun.
      ble('Bad \u0000 name', 'aa:bb:cc:55:55:02'),
      ble('Dup in batch', 'AA-BB-CC-55-55-01'),
      ble('Dup existing', 'aa:bb:cc:dd:ee:99'),
      ble('Good 2', 'aa:bb:cc:55:55:03'),
    ].map((d) => JSON.stringify(d));
    const auditBefore = await t.app.admin.audit(TENANT, { client: 'import', startIndex: 1, count: 1000 });
    const { counts, errors } = await run('refused.jsonl', `${lines.join('\n')}\n`, { format: 'jsonl' });
    assert.deepEqual(counts, { rows: 5, valid: 2, imported: 2, failed: 3 });
    assert.deepEqual(
      errors.map((e) => [e.row, e.status, e.scimType]),
      [
        [2, 400, 'invalidValue'],
        [3, 409, 'uniqueness'],
        [4, 409, 'uniqueness'],
      ],
    );
    assert.match(errors[0].detail, /^A value cannot be stored or compared: /);
    const devices = await devicesByMac();
    const stored = ['aa:bb:cc:55:55:01', 'aa:bb:cc:55:55:03'].map((m) => devices.get(m));
    assert.deepEqual(
      stored.map((d) => d?.displayName),
      ['Good 1', 'Good 2'],
    );
    assert.equal(devices.has('aa:bb:cc:55:55:02'), false);
    // One change-log row per stored device, none for the refused rows (the rerun left nothing behind).
    const audit = await t.app.admin.audit(TENANT, { client: 'import', startIndex: 1, count: 1000 });
    assert.equal(audit.entries.length, auditBefore.entries.length + 2);
    const fresh = audit.entries.filter((e) => !auditBefore.entries.some((b) => b.seq === e.seq));
    assert.deepEqual(fresh.map((e) => e.resourceId).sort(), stored.map((d) => d!.id).sort());
  });

  test('duplicates within one multi-row batch: the first row of the file wins, later ones are 409', async () => {
    const csv =
      'displayName,active,ble.deviceMacAddress,ble.versionSupport,ble.pairingMethods\n' +
      'First,true,aa:bb:cc:66:66:01,5.3,justWorks\n' +
      'Other,true,aa:bb:cc:66:66:02,5.3,justWorks\n' +
      'Second,true,AA:BB:CC:66:66:01,5.3,justWorks\n' +
      'Third,true,aa-bb-cc-66-66-01,5.3,justWorks\n';
    const { counts, errors } = await run('dups.csv', csv);
    assert.deepEqual(counts, { rows: 4, valid: 2, imported: 2, failed: 2 });
    const detail = `Another Device already has this ${BLE}:deviceMacAddress`;
    assert.deepEqual(errors, [
      { row: 3, line: 4, status: 409, scimType: 'uniqueness', detail },
      { row: 4, line: 5, status: 409, scimType: 'uniqueness', detail },
    ]);
    const devices = await devicesByMac();
    assert.equal(devices.get('aa:bb:cc:66:66:01')?.displayName, 'First');
    assert.equal(devices.get('aa:bb:cc:66:66:02')?.displayName, 'Other');
  });

  test('JSON lines: SCIM resources (any extension, URN aliases) and flat objects; bad lines reported', async () => {
    const lines = [
      JSON.stringify({
        schemas: [DEVICE, DPP],
        displayName: 'DPP camera',
        active: true,
        [DPP]: { dppVersion: 2, bootstrapKey: 'MDkwEwYHKoZIzj0CAQ==', deviceMacAddress: 'AA:BB:CC:22:22:01' },
      }),
      '',
      JSON.stringify({ schemas: [DEVICE, FDO_ALIAS], active: true, [FDO_ALIAS]: { fdoVoucher: 'v1' } }),
      '{"displayName": "broken"',
      JSON.stringify({
        displayName: 'Flat',
        active: 'yes',
        'ble.deviceMacAddress': 'aa:bb:cc:22:22:02',
        'ble.versionSupport': '5.3',
        'ble.pairingMethods': 'justWorks',
      }),
      JSON.stringify({ schemas: [DEVICE], displayName: 'no active' }),
      JSON.stringify({ displayName: 'x', active: true, colour: 'red' }),
    ].join('\n');
    const { counts, errors } = await run('devices.jsonl', `${lines}\n`, { format: 'jsonl' });
    assert.deepEqual(counts, { rows: 6, valid: 3, imported: 3, failed: 3 });
    assert.deepEqual(
      errors.map((e) => ({ ...e, detail: e.row === 3 ? e.detail.slice(0, 9) : e.detail })),
      [
        { row: 3, line: 4, status: 400, scimType: 'invalidSyntax', detail: 'not JSON:' },
        { row: 5, line: 6, status: 400, scimType: 'invalidValue', detail: 'Attribute "active" is required' },
        { row: 6, line: 7, status: 400, scimType: 'invalidSyntax', detail: 'unknown column "colour"' },
      ],
    );
    const devices = await devicesByMac();
    assert.deepEqual(devices.get('aa:bb:cc:22:22:01')![DPP], {
      dppVersion: 2,
      bootstrapKey: 'MDkwEwYHKoZIzj0CAQ==',
      deviceMacAddress: 'aa:bb:cc:22:22:01',
    });
    const flat = devices.get('aa:bb:cc:22:22:02')!;
    assert.deepEqual(
      [flat.displayName, flat.active, flat[BLE].pairingMethods],
      ['Flat', true, [PAIRING_JUST_WORKS]],
    );
    const fdo = await scim.filter('/Devices', `${FDO}:fdoVoucher eq "v1"`);
    assert.equal(fdo.body.totalResults, 1);
    assert.deepEqual(fdo.body.Resources[0].schemas, [DEVICE, FDO]);
  });

  test('the header map renames the manufacturer headers', async () => {
    const resolver = new ColumnResolver({
      'Product name': 'displayName',
      'BT MAC': 'ble.deviceMacAddress',
      Enabled: 'active',
      BT: 'ble.versionSupport',
      Pairing: 'ble.pairingMethods',
      Notes: null,
    });
    const csv =
      'Product name,Enabled,BT MAC,BT,Pairing,Notes\nMapped,1,aa:bb:cc:33:33:01,5.0,justWorks,ignored\n';
    const { counts } = await run('mapped.csv', csv, { resolver });
    assert.deepEqual(counts, { rows: 1, valid: 1, imported: 1, failed: 0 });
    const d = (await devicesByMac()).get('aa:bb:cc:33:33:01')!;
    assert.deepEqual([d.displayName, d.active, d[BLE].versionSupport], ['Mapped', true, ['5.0']]);
  });

  test('a tenant without the enterprise gateway: devices with applications are refused, the others stored', async () => {
    await t.app.admin.createTenant({ id: 'plain' });
    const csv = `displayName,active,applications\nwith app,true,${app1}\nwithout,true,\n`;
    const { counts, errors } = await run('plain.csv', csv, { tenant: 'plain' });
    assert.deepEqual(counts, { rows: 2, valid: 1, imported: 1, failed: 1 });
    assert.deepEqual(
      errors.map((e) => [e.row, e.status, e.scimType]),
      [[1, 400, 'invalidValue']],
    );
    assert.match(errors[0].detail, /no enterprise gateway configured/);
  });

  test('an unknown column or tenant is refused before anything is imported', async () => {
    const before = await devicesByMac();
    await assert.rejects(
      run('unknown.csv', 'displayName,active,ble.deviceMacAddress,Colour\nx,true,aa:bb:cc:44:44:01,red\n'),
      { name: 'InputError', message: /^unknown column "Colour"/ },
    );
    await assert.rejects(run('t.csv', 'displayName,active\nx,true\n', { tenant: 'nope' }), {
      name: 'InputError',
      message: 'no tenant nope',
    });
    await assert.rejects(run('empty.csv', ''), {
      name: 'InputError',
      message: 'the file is empty: a header row is required',
    });
    assert.deepEqual([...(await devicesByMac()).keys()].sort(), [...before.keys()].sort());
  });
});
