/**
 * Onboarding secrets (pairing keys, the DPP bootstrap key, the FDO voucher, an EndpointApp's
 * clientToken): shown only to clients with devices:secrets (or admin), never searchable without
 * it; the BLE irk is never shown at all; a generated clientToken is shown once and stored as a
 * SHA-256 digest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  BLE,
  DEVICE,
  DPP,
  FDO,
  PAIRING_JUST_WORKS,
  PAIRING_OOB,
  PAIRING_PASS_KEY,
  SEARCH,
  Scim,
  assertScimError,
  bleDevice,
  clientToken,
  deviceTenant,
  endpointApp,
  ids,
  listOk,
  type Json,
} from './helpers.ts';

const TENANT = 'secrets';
let t: TestApp;
let admin: Scim;
/** scim:read, no devices:secrets. */
let reader: Scim;
/** scim:read and scim:write, no devices:secrets. */
let writer: Scim;
/** scim:read and devices:secrets. */
let keeper: Scim;

const IRK = '0123456789abcdef0123456789abcdef';
const VOUCHER = '{"ov-header": "...", "ov-entries": ["..."]}';
const BOOTSTRAP_KEY = 'MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgADURzxmttZoIRIPWGoQMV00XHWCAQIhXruVWOz0NjlkIA=';

const bleWithSecrets = (): Json => {
  const body = bleDevice('02:00:00:00:10:01', 'ble secrets');
  body[BLE].isRandom = true;
  body[BLE].irk = IRK;
  body[BLE].pairingMethods = [PAIRING_PASS_KEY, PAIRING_OOB, PAIRING_JUST_WORKS];
  body[BLE][PAIRING_PASS_KEY] = { key: 654321 };
  body[BLE][PAIRING_OOB] = { key: 'OOBkey', randomNumber: 238796813516896, confirmationNumber: 42 };
  return body;
};
const dppWithSecrets = (): Json => ({
  schemas: [DEVICE, DPP],
  displayName: 'dpp secrets',
  active: true,
  [DPP]: { dppVersion: 2, bootstrappingMethod: ['QR'], bootstrapKey: BOOTSTRAP_KEY, serialNumber: 'SN-1' },
});
const fdoWithSecrets = (): Json => ({
  schemas: [DEVICE, FDO],
  displayName: 'fdo secrets',
  active: true,
  [FDO]: { fdoVoucher: VOUCHER },
});

let ble: Json;
let dpp: Json;
let fdo: Json;

before(async () => {
  t = await startTestApp();
  admin = new Scim(t, TENANT, await deviceTenant(t, TENANT));
  reader = new Scim(
    t,
    TENANT,
    await clientToken(t, TENANT, { id: 'reader', name: 'r', scopes: ['scim:read'] }),
  );
  writer = new Scim(
    t,
    TENANT,
    await clientToken(t, TENANT, { id: 'writer', name: 'w', scopes: ['scim:read', 'scim:write'] }),
  );
  keeper = new Scim(
    t,
    TENANT,
    await clientToken(t, TENANT, { id: 'keeper', name: 'k', scopes: ['scim:read', 'devices:secrets'] }),
  );
  ble = (await admin.create('/Devices', bleWithSecrets())).body;
  dpp = (await admin.create('/Devices', dppWithSecrets())).body;
  fdo = (await admin.create('/Devices', fdoWithSecrets())).body;
});
after(async () => {
  await t.close();
});

/** The representation without the onboarding secrets (and without the irk, which nobody sees). */
function withoutSecrets(r: Json): Json {
  const out = structuredClone(r);
  if (out[BLE]) {
    delete out[BLE][PAIRING_PASS_KEY];
    delete out[BLE][PAIRING_OOB];
    delete out[BLE].irk;
  }
  if (out[DPP]) delete out[DPP].bootstrapKey;
  // The FDO extension holds only the voucher: with it gone the extension is unassigned.
  if (out[FDO]) delete out[FDO];
  return out;
}

describe('device secrets by scope', () => {
  test("the admin's 201 shows the secrets it sent, but never the irk", () => {
    assert.deepEqual(ble[BLE][PAIRING_PASS_KEY], { key: 654321 });
    assert.deepEqual(ble[BLE][PAIRING_OOB], {
      key: 'OOBkey',
      randomNumber: 238796813516896,
      confirmationNumber: 42,
    });
    assert.equal(ble[BLE].irk, undefined);
    assert.equal(ble[BLE].isRandom, true);
    assert.equal(dpp[DPP].bootstrapKey, BOOTSTRAP_KEY);
    assert.deepEqual(fdo[FDO], { fdoVoucher: VOUCHER });
  });

  test('scim:read without devices:secrets: GET, list, filter and .search leave the secrets out', async () => {
    for (const device of [ble, dpp, fdo]) {
      const res = await reader.request('GET', `/Devices/${device.id}`);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, withoutSecrets(device));
      // Asking for them by name does not help.
      const asked = await reader.request(
        'GET',
        `/Devices/${device.id}?attributes=${encodeURIComponent(
          `${BLE}:irk,${BLE}:${PAIRING_PASS_KEY}:key,${BLE}:${PAIRING_OOB},${DPP}:bootstrapKey,${FDO}:fdoVoucher,displayName`,
        )}`,
      );
      assert.equal(asked.status, 200, asked.text);
      assert.equal(JSON.stringify(asked.body).includes('654321'), false);
      assert.equal(asked.body[FDO], undefined);
      assert.equal(asked.body[DPP]?.bootstrapKey, undefined);
      assert.equal(asked.body[BLE]?.[PAIRING_OOB], undefined);
      assert.equal(asked.body[BLE]?.[PAIRING_PASS_KEY], undefined);
    }
    const list = await reader.request('GET', '/Devices?sortBy=displayName');
    listOk(list);
    assert.deepEqual(list.body.Resources, [ble, dpp, fdo].map(withoutSecrets));
    const search = await reader.request('POST', '/Devices/.search', {
      schemas: [SEARCH],
      filter: 'displayName pr',
      sortBy: 'displayName',
    });
    listOk(search);
    assert.deepEqual(search.body.Resources, [ble, dpp, fdo].map(withoutSecrets));
    const root = await reader.request('POST', '/.search', {
      schemas: [SEARCH],
      filter: 'displayName sw "fdo"',
    });
    listOk(root);
    assert.deepEqual(root.body.Resources, [withoutSecrets(fdo)]);
    for (const secret of [IRK, VOUCHER, BOOTSTRAP_KEY, 'OOBkey', '654321', '238796813516896']) {
      for (const text of [list.text, search.text, root.text])
        assert.equal(text.includes(secret), false, secret);
    }
  });

  test('devices:secrets: the keys, bootstrap key and voucher are shown; the irk (writeOnly) still not', async () => {
    for (const device of [ble, dpp, fdo]) {
      const res = await keeper.request('GET', `/Devices/${device.id}`);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, device);
    }
    const asked = await keeper.request(
      'GET',
      `/Devices/${ble.id}?attributes=${encodeURIComponent(`${BLE}:irk`)}`,
    );
    assert.equal(asked.status, 200);
    assert.equal(asked.text.includes(IRK), false);
    const list = await keeper.request('GET', '/Devices?sortBy=displayName');
    assert.deepEqual(list.body.Resources, [ble, dpp, fdo]);
  });

  test('a writer without devices:secrets does not get the secrets it sent echoed back', async () => {
    const body = bleWithSecrets();
    body[BLE].deviceMacAddress = '02:00:00:00:10:02';
    body[BLE].irk = 'fedcba9876543210fedcba9876543210';
    body.displayName = 'written';
    const created = await writer.create('/Devices', body);
    assert.equal(created.body[BLE][PAIRING_PASS_KEY], undefined);
    assert.equal(created.body[BLE][PAIRING_OOB], undefined);
    assert.equal(created.body[BLE].irk, undefined);
    // ...but it stored them.
    const stored = await keeper.request('GET', `/Devices/${created.body.id}`);
    assert.deepEqual(stored.body[BLE][PAIRING_PASS_KEY], { key: 654321 });
    const patched = await writer.request('PATCH', `/Devices/${created.body.id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: `${BLE}:${PAIRING_PASS_KEY}:key`, value: 111111 }],
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body[BLE][PAIRING_PASS_KEY], undefined);
    assert.deepEqual(
      (await keeper.request('GET', `/Devices/${created.body.id}`)).body[BLE][PAIRING_PASS_KEY],
      { key: 111111 },
    );
    assert.equal((await admin.request('DELETE', `/Devices/${created.body.id}`)).status, 204);
  });

  test('filtering on a secret without devices:secrets: 400 invalidFilter (a filter would reveal it)', async () => {
    for (const filter of [
      `${FDO}:fdoVoucher eq "${VOUCHER.replaceAll('"', '\\"')}"`,
      `${FDO}:fdoVoucher pr`,
      `${DPP}:bootstrapKey sw "MDkw"`,
      `${BLE}:${PAIRING_PASS_KEY}:key eq 654321`,
      `${BLE}:irk eq "${IRK}"`,
      `displayName pr and ${BLE}:${PAIRING_OOB}:randomNumber gt 0`,
      `not (${FDO}:fdoVoucher co "ov")`,
    ]) {
      assertScimError(
        await reader.filter('/Devices', filter),
        400,
        'This client may not filter on onboarding secrets (scope devices:secrets)',
        'invalidFilter',
      );
      assertScimError(
        await reader.request('POST', '/Devices/.search', { schemas: [SEARCH], filter }),
        400,
        'This client may not filter on onboarding secrets (scope devices:secrets)',
        'invalidFilter',
      );
    }
    const withScope = await keeper.filter('/Devices', `${FDO}:fdoVoucher co "ov-header"`);
    listOk(withScope);
    assert.deepEqual(ids(withScope), [fdo.id]);
    const key = await keeper.filter('/Devices', `${BLE}:${PAIRING_PASS_KEY}:key eq 654321`);
    assert.deepEqual(ids(key), [ble.id]);
  });

  test('sorting by a secret without devices:secrets: 400 (the order would reveal it)', async () => {
    for (const sortBy of [`${DPP}:bootstrapKey`, `${FDO}:fdoVoucher`, `${BLE}:irk`]) {
      assertScimError(
        await reader.request('GET', `/Devices?sortBy=${encodeURIComponent(sortBy)}`),
        400,
        /secret|devices:secrets/,
        'invalidValue',
      );
    }
  });
});

describe('EndpointApp clientToken', () => {
  test('generated without certificateInfo: in the 201 only (43 base64url characters), stored as its SHA-256 hex digest', async () => {
    const created = await admin.create('/EndpointApps', endpointApp('Token app', 'telemetry'));
    const token = created.body.clientToken as string;
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token, 'base64url').length, 32);
    const id = created.body.id as string;

    for (const client of [admin, keeper, reader]) {
      const got = await client.request('GET', `/EndpointApps/${id}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.clientToken, undefined);
      const { clientToken: _token, ...rest } = created.body;
      assert.deepEqual(got.body, rest);
      const asked = await client.request('GET', `/EndpointApps/${id}?attributes=clientToken`);
      assert.equal(asked.text.includes(token), false);
      const list = await client.request('GET', '/EndpointApps');
      assert.equal(list.text.includes(token), false);
    }
    // Not even the admin finds it by value: the store does not have it.
    const found = await admin.filter('/EndpointApps', `clientToken eq "${token}"`);
    listOk(found);
    assert.equal(found.body.totalResults, 0);

    const rows = await t.app.db.query<{ name: string; digest: string }>(
      'SELECT name, digest FROM resource_secrets WHERE tenant_id = $1 AND resource_id = $2',
      [TENANT, id],
    );
    assert.deepEqual(rows.rows, [
      { name: 'clientToken', digest: createHash('sha256').update(token).digest('hex') },
    ]);
    const leaks = await t.app.db.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM resources WHERE doc::text LIKE $1`,
      [`%${token}%`],
    );
    assert.equal(Number(leaks.rows[0].n), 0);

    // A replace keeps the token (and the digest): it is the server's, not the client's.
    const { meta: _m, clientToken: _c, ...body } = created.body;
    const put = await admin.request('PUT', `/EndpointApps/${id}`, {
      ...body,
      applicationName: 'Token app 2',
    });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.clientToken, undefined);
    const again = await t.app.db.query(
      'SELECT digest FROM resource_secrets WHERE tenant_id = $1 AND resource_id = $2',
      [TENANT, id],
    );
    assert.deepEqual(again.rows, [{ digest: rows.rows[0].digest }]);
  });

  test('with certificateInfo: no clientToken, no stored secret', async () => {
    const created = await admin.create(
      '/EndpointApps',
      endpointApp('Cert app', 'deviceControl', 'app.example.org'),
    );
    assert.equal(created.body.clientToken, undefined);
    assert.deepEqual(created.body.certificateInfo, { rootCA: 'MIIBIjAN...', subjectName: 'app.example.org' });
    const rows = await t.app.db.query(
      'SELECT 1 FROM resource_secrets WHERE tenant_id = $1 AND resource_id = $2',
      [TENANT, created.body.id],
    );
    assert.equal(rows.rows.length, 0);
  });

  test('a writer without devices:secrets still receives the generated token once: nobody could ever see it otherwise', async () => {
    const created = await writer.create('/EndpointApps', endpointApp('Writer app', 'telemetry'));
    // The 201 is the only moment the token exists in the clear: whoever creates the app receives it.
    assert.match(created.body.clientToken, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(
      (await writer.request('GET', `/EndpointApps/${created.body.id}`)).body.clientToken,
      undefined,
    );
  });
});
