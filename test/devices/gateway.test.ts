/**
 * POST /admin/v1/tenants/{t}/gateway/verify: the enterprise gateway asks which EndpointApp a
 * presented clientToken or certificate subject belongs to, and which devices that app may reach.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, TOKEN, type TestApp, type TestResponse } from '../helpers/app.ts';
import {
  APPS_EXT,
  PATCH_OP,
  Scim,
  assertForbidden,
  assertScimError,
  assertUnauthorized,
  bleDevice,
  clientToken,
  deviceTenant,
  endpointApp,
  managedDevice,
  type Json,
} from './helpers.ts';

const TENANT = 'gw';
const OTHER = 'gw-other';
let t: TestApp;
let admin: Scim;
let gatewayToken: string;
let tokenApp: Json;
let certApp: Json;
/** The devices naming tokenApp / certApp, as the gateway describes them, ordered by id. */
let tokenDevices: Json[];
let certDevices: Json[];
let otherAppToken: string;
let otherGatewayToken: string;

const verifyUrl = (tenant: string, query = '') => `/admin/v1/tenants/${tenant}/gateway/verify${query}`;

function verify(
  body: unknown,
  opts: { tenant?: string; token?: string; query?: string } = {},
): Promise<TestResponse> {
  return t.request('POST', verifyUrl(opts.tenant ?? TENANT, opts.query), {
    body,
    token: opts.token ?? gatewayToken,
    headers: { 'content-type': 'application/json' },
  });
}

const summary = (d: Json) => ({ id: d.id, displayName: d.displayName, active: d.active });
const byId = (a: Json, b: Json) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

before(async () => {
  t = await startTestApp();
  admin = new Scim(t, TENANT, await deviceTenant(t, TENANT));
  gatewayToken = await clientToken(t, TENANT, { id: 'gateway', name: 'gateway', scopes: ['gateway'] });
  tokenApp = (await admin.create('/EndpointApps', endpointApp('Telemetry collector', 'telemetry'))).body;
  certApp = (
    await admin.create('/EndpointApps', endpointApp('Door control', 'deviceControl', 'doors.example.org'))
  ).body;
  const created: Json[] = [];
  for (let i = 0; i < 5; i++) {
    const body = managedDevice(`02:00:00:00:20:0${i}`, [tokenApp.id], `sensor ${i}`);
    if (i === 3) body.active = false;
    created.push((await admin.create('/Devices', body)).body);
  }
  const doors: Json[] = [];
  for (let i = 0; i < 2; i++) {
    doors.push(
      (await admin.create('/Devices', managedDevice(`02:00:00:00:21:0${i}`, [certApp.id], `door ${i}`))).body,
    );
  }
  const both = (
    await admin.create('/Devices', managedDevice('02:00:00:00:22:00', [certApp.id, tokenApp.id], 'hub'))
  ).body;
  await admin.create('/Devices', bleDevice('02:00:00:00:23:00', 'unmanaged'));
  tokenDevices = [...created, both].map(summary).sort(byId);
  certDevices = [...doors, both].map(summary).sort(byId);

  const other = new Scim(t, OTHER, await deviceTenant(t, OTHER));
  otherAppToken = (await other.create('/EndpointApps', endpointApp('Other tenant app', 'telemetry'))).body
    .clientToken;
  await other.create(
    '/Devices',
    managedDevice('02:00:00:00:24:00', [(await other.request('GET', '/EndpointApps')).body.Resources[0].id]),
  );
  otherGatewayToken = await clientToken(t, OTHER, { id: 'gateway', name: 'gateway', scopes: ['gateway'] });
});
after(async () => {
  await t.close();
});

function ok(res: TestResponse): void {
  assert.equal(res.status, 200, res.text.slice(0, 500));
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
}

describe('gateway verify', () => {
  test('a clientToken: its app and exactly its devices (ordered by id)', async () => {
    const res = await verify({ clientToken: tokenApp.clientToken });
    ok(res);
    assert.deepEqual(res.body, {
      endpointApp: { id: tokenApp.id, applicationName: 'Telemetry collector', applicationType: 'telemetry' },
      totalDevices: 6,
      startIndex: 1,
      devices: tokenDevices,
    });
    assert.equal(res.body.devices.find((d: Json) => d.displayName === 'sensor 3').active, false);
  });

  test('paging with startIndex and count', async () => {
    const page = await verify({ clientToken: tokenApp.clientToken }, { query: '?startIndex=2&count=2' });
    ok(page);
    assert.equal(page.body.totalDevices, 6);
    assert.equal(page.body.startIndex, 2);
    assert.deepEqual(page.body.devices, tokenDevices.slice(1, 3));
    const walked: Json[] = [];
    for (const startIndex of [1, 3, 5]) {
      const res = await verify(
        { clientToken: tokenApp.clientToken },
        { query: `?startIndex=${startIndex}&count=2` },
      );
      ok(res);
      walked.push(...res.body.devices);
    }
    assert.deepEqual(walked, tokenDevices);
    const beyond = await verify({ clientToken: tokenApp.clientToken }, { query: '?startIndex=7&count=2' });
    ok(beyond);
    assert.deepEqual([beyond.body.totalDevices, beyond.body.startIndex, beyond.body.devices], [6, 7, []]);
    const none = await verify({ clientToken: tokenApp.clientToken }, { query: '?count=0' });
    ok(none);
    assert.deepEqual([none.body.totalDevices, none.body.devices], [6, []]);
    for (const bad of ['?startIndex=0', '?count=-1', '?count=1001', '?startIndex=x']) {
      assertScimError(
        await verify({ clientToken: tokenApp.clientToken }, { query: bad }),
        400,
        /querystring/,
        'invalidValue',
      );
    }
  });

  test('a certificate subjectName: the certificate app and its devices', async () => {
    const res = await verify({ subjectName: 'doors.example.org' });
    ok(res);
    assert.deepEqual(res.body, {
      endpointApp: { id: certApp.id, applicationName: 'Door control', applicationType: 'deviceControl' },
      totalDevices: 3,
      startIndex: 1,
      devices: certDevices,
    });
  });

  test('devices follow the store: a device leaving the app or deleted is gone from the answer', async () => {
    const door = certDevices.find((d) => d.displayName === 'door 0');
    const patched = await admin.request('PATCH', `/Devices/${door.id}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: `${APPS_EXT}:applications`, value: [{ value: tokenApp.id }] }],
    });
    assert.equal(patched.status, 200, patched.text);
    const moved = await verify({ subjectName: 'doors.example.org' });
    assert.deepEqual(
      moved.body.devices,
      certDevices.filter((d) => d.id !== door.id),
    );
    const gained = await verify({ clientToken: tokenApp.clientToken });
    assert.equal(gained.body.totalDevices, 7);
    assert.equal((await admin.request('DELETE', `/Devices/${door.id}`)).status, 204);
    const after = await verify({ clientToken: tokenApp.clientToken });
    assert.deepEqual(after.body.devices, tokenDevices);
    assert.equal(after.body.totalDevices, 6);
  });

  test('unknown token or subject: 404', async () => {
    for (const body of [
      { clientToken: 'x'.repeat(43) },
      { clientToken: tokenApp.clientToken.toLowerCase() + 'Z' },
      { subjectName: 'unknown.example.org' },
    ]) {
      assertScimError(await verify(body), 404, 'No EndpointApp of this tenant has this token or certificate');
    }
    // The subject name is matched exactly (caseExact).
    assertScimError(await verify({ subjectName: 'DOORS.example.org' }), 404, /No EndpointApp/);
  });

  test('both fields, neither, or another property: 400 invalidValue', async () => {
    for (const body of [
      { clientToken: tokenApp.clientToken, subjectName: 'doors.example.org' },
      {},
      { clientToken: '' },
      { token: tokenApp.clientToken },
      { clientToken: 42 },
    ]) {
      assertScimError(await verify(body), 400, /./, 'invalidValue');
    }
  });

  test('a client of the tenant without the gateway scope: 403; its admin and the operator may ask', async () => {
    const reader = await clientToken(t, TENANT, {
      id: 'reader',
      name: 'reader',
      scopes: ['scim:read', 'Device:read'],
    });
    assertForbidden(
      await verify({ clientToken: tokenApp.clientToken }, { token: reader }),
      `This credential may not query tenant ${TENANT}'s gateway (needs scope gateway)`,
    );
    ok(await verify({ clientToken: tokenApp.clientToken }, { token: admin.token }));
    ok(await verify({ clientToken: tokenApp.clientToken }, { token: TOKEN }));
  });

  test('no credential or an unknown one: 401', async () => {
    assertUnauthorized(
      await t.request('POST', verifyUrl(TENANT), {
        body: { clientToken: tokenApp.clientToken },
        token: false,
      }),
      /Authentication required/,
    );
    // The app's clientToken is no credential of the SCIM or admin API.
    assertUnauthorized(await verify({ clientToken: tokenApp.clientToken }, { token: tokenApp.clientToken }));
  });

  test("another tenant's gateway client: 403 (a valid credential that may not do this); its own tenant answers", async () => {
    assertForbidden(
      await verify({ clientToken: tokenApp.clientToken }, { token: otherGatewayToken }),
      `This credential may not query tenant ${TENANT}'s gateway (needs scope gateway)`,
    );
    const own = await verify({ clientToken: otherAppToken }, { tenant: OTHER, token: otherGatewayToken });
    ok(own);
    assert.equal(own.body.endpointApp.applicationName, 'Other tenant app');
    assert.equal(own.body.totalDevices, 1);
  });

  test("a token of one tenant's app asked on another tenant: 404, even for the operator", async () => {
    assertScimError(await verify({ clientToken: otherAppToken }), 404, /No EndpointApp/);
    assertScimError(
      await verify({ clientToken: tokenApp.clientToken }, { tenant: OTHER, token: otherGatewayToken }),
      404,
      /No EndpointApp/,
    );
    assertScimError(await verify({ clientToken: otherAppToken }, { token: TOKEN }), 404, /No EndpointApp/);
    assertScimError(
      await verify({ subjectName: 'doors.example.org' }, { tenant: OTHER, token: otherGatewayToken }),
      404,
      /No EndpointApp/,
    );
  });

  test('the token survives a replace of its app', async () => {
    const { meta: _m, clientToken: _c, ...body } = tokenApp;
    const put = await admin.request('PUT', `/EndpointApps/${tokenApp.id}`, {
      ...body,
      applicationName: 'Collector 2',
    });
    assert.equal(put.status, 200, put.text);
    const res = await verify({ clientToken: tokenApp.clientToken });
    ok(res);
    assert.equal(res.body.endpointApp.applicationName, 'Collector 2');
    assert.equal(res.body.totalDevices, 6);
  });
});
