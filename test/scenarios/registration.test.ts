/**
 * Automatic registration of the customer endpoint for the registry push (use-case behaviour 31),
 * with two scimd processes:
 *   mfr   the manufacturer: tenant `mfr` holds every device it made, the buyer in the serial
 *         (`externalId` "acme:SN-1"); it publishes a registration template and gives each customer
 *         a client with scope `register` (its id is the customer's);
 *   cust  the customers' device managers: tenants acme and globex, each naming the manufacturer
 *         (MUD URL prefix, registration URL, the register credential).
 * A device contacting acme's device manager (its record written there by the onboarding app)
 * makes acme register its SCIM endpoint with the manufacturer, which then pushes acme's devices,
 * and nothing of globex's. Configured through the admin API over HTTP and SCIM only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  addClient,
  createTenant,
  DEVICE,
  eventually,
  http,
  listAll,
  ok,
  sorted,
  startNode,
  startNodes,
  type Json,
  type Node,
} from './lib.ts';

let mfr: Node;
let cust: Node;

before(async () => {
  [mfr, cust] = await startNodes(startNode('mfr'), startNode('cust'));
});
after(async () => {
  await Promise.all([mfr?.close(), cust?.close()]);
});

const MUD = 'https://mfr.example/mud/monitor-v1';
const device = (serial: string, name = `Monitor ${serial}`): Json => ({
  schemas: [DEVICE],
  externalId: serial,
  displayName: name,
  active: true,
  mudUrl: MUD,
});
const TEMPLATE = {
  flow: {
    resourceTypes: ['Device'],
    filter: 'externalId sw "{customer}:"',
    mode: 'changes',
    onLocalChange: true,
    authority: { initial: ['displayName', 'active'] },
  },
  connection: { timeoutMs: 20_000 },
};

describe('use case 31: the customer endpoint is registered automatically when a device contacts the device manager', () => {
  const reg: Record<string, string> = {};
  const dm: Record<string, string> = {};
  let factory = '';

  test('use case 31: a device contacting acme registers acme with the manufacturer, which pushes acme’s devices only', async () => {
    await createTenant(mfr, 'mfr');
    factory = await addClient(mfr, 'mfr', 'factory', ['scim:read', 'scim:write', 'devices:secrets']);
    for (const s of ['acme:SN-1', 'acme:SN-2', 'acme:SN-3', 'globex:SN-1', 'globex:SN-2'])
      await ok('POST', `${mfr.scim('mfr')}/Devices`, factory, device(s));

    const put = await http('PUT', `${mfr.admin('mfr')}/registration`, mfr.adminToken, TEMPLATE);
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(
      { flow: put.body.flow, connection: put.body.connection, enabled: put.body.enabled },
      { ...TEMPLATE, enabled: true },
    );
    for (const c of ['acme', 'globex']) reg[c] = await addClient(mfr, 'mfr', c, ['register']);

    for (const c of ['acme', 'globex']) {
      await createTenant(cust, c);
      dm[c] = await addClient(cust, c, 'device-manager', ['scim:read', 'scim:write', 'devices:secrets']);
      const m = await http('PUT', `${cust.admin(c)}/manufacturers/mfr`, cust.adminToken, {
        mudUrlPrefix: 'https://mfr.example/mud/',
        registrationUrl: `${mfr.admin('mfr')}/registrations`,
        token: reg[c],
      });
      assert.equal(m.status, 201, m.text);
      assert.equal(m.body.tokenSet, true);
      assert.equal(m.body.token, undefined);
      assert.equal(m.body.status, 'pending');
      assert.equal(m.body.clientId, 'manufacturer-mfr');
    }
    // Nothing is registered before a device contacts a customer.
    assert.deepEqual(
      (await ok('GET', `${mfr.admin('mfr')}/registrations`, mfr.adminToken)).registrations,
      [],
    );

    // Monitor acme:SN-1 is switched on at acme: the onboarding app records it with its MUD URL.
    const onboarding = await addClient(cust, 'acme', 'onboarding', ['Device:read', 'Device:write']);
    await ok('POST', `${cust.scim('acme')}/Devices`, onboarding, device('acme:SN-1', 'Monitor at the door'));

    const acme = await eventually(async () => {
      const got = await listAll(cust.scim('acme'), dm.acme, 'Devices');
      assert.deepEqual(sorted(got.map((d) => d.externalId as string)), [
        'acme:SN-1',
        'acme:SN-2',
        'acme:SN-3',
      ]);
      return got;
    }, 20_000);
    // The device that made contact was matched by its serial, not duplicated; its local name stays.
    assert.equal(acme.find((d) => d.externalId === 'acme:SN-1')!.displayName, 'Monitor at the door');
    assert.equal(acme.find((d) => d.externalId === 'acme:SN-2')!.displayName, 'Monitor acme:SN-2');

    const m = await ok('GET', `${cust.admin('acme')}/manufacturers/mfr`, cust.adminToken);
    assert.equal(m.status, 'registered');
    assert.equal(typeof m.registeredAt, 'string');
    assert.equal(m.lastError, undefined);
    const g = await ok('GET', `${cust.admin('globex')}/manufacturers/mfr`, cust.adminToken);
    assert.equal(g.status, 'pending');

    // The manufacturer holds one registration, its connection (token write-only) and its flow.
    const regs = (await ok('GET', `${mfr.admin('mfr')}/registrations`, mfr.adminToken))
      .registrations as Json[];
    assert.deepEqual(
      regs.map(({ created: _c, updated: _u, ...r }) => r),
      [
        {
          tenant: 'mfr',
          customer: 'acme',
          connectionId: 'reg-acme',
          flowId: 'reg-acme',
          baseUrl: cust.scim('acme'),
          registeredBy: 'acme',
        },
      ],
    );
    const conn = await ok('GET', `${mfr.admin('mfr')}/connections/reg-acme`, mfr.adminToken);
    assert.deepEqual(conn.auth, { type: 'bearer', tokenSet: true });
    assert.equal(conn.timeoutMs, 20_000);
    const flow = await ok('GET', `${mfr.admin('mfr')}/flows/reg-acme`, mfr.adminToken);
    assert.equal(flow.filter, 'externalId sw "acme:"');
    assert.equal(flow.direction, 'push');
    assert.equal(flow.onLocalChange, true);
    // Nothing of globex reached any customer, and globex (no device contact) is not registered.
    assert.deepEqual(await listAll(cust.scim('globex'), dm.globex, 'Devices'), []);
    // The client the manufacturer pushes as: made by acme's node, with device rights only.
    const clients = (await ok('GET', `${cust.admin('acme')}/clients`, cust.adminToken)) as Json;
    const pushClient = ((clients.clients ?? clients) as Json[]).find((c) => c.id === 'manufacturer-mfr')!;
    assert.deepEqual(
      sorted(pushClient.scopes as string[]),
      sorted(['Device:read', 'Device:write', 'devices:secrets']),
    );
  });

  test('use case 31: registering again updates the registration (new token, old one revoked), it does not add one', async () => {
    const again = await http('POST', `${cust.admin('acme')}/manufacturers/mfr/register`, cust.adminToken);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.status, 'registered');
    const regs = (await ok('GET', `${mfr.admin('mfr')}/registrations`, mfr.adminToken))
      .registrations as Json[];
    assert.deepEqual(
      regs.map((r) => r.customer),
      ['acme'],
    );
    assert.deepEqual(
      ((await ok('GET', `${mfr.admin('mfr')}/connections`, mfr.adminToken)).connections as Json[]).map(
        (c) => c.id,
      ),
      ['reg-acme'],
    );
    assert.deepEqual(
      ((await ok('GET', `${mfr.admin('mfr')}/flows`, mfr.adminToken)).flows as Json[]).map((f) => f.id),
      ['reg-acme'],
    );
    const tokens = (await ok('GET', `${cust.admin('acme')}/clients/manufacturer-mfr/tokens`, cust.adminToken))
      .tokens as Json[];
    assert.equal(tokens.length, 2);
    assert.equal(tokens.filter((t) => t.revokedAt === undefined).length, 1, JSON.stringify(tokens));

    // The manufacturer's later device for acme goes out with the new token (the local-change push).
    await ok('POST', `${mfr.scim('mfr')}/Devices`, factory, device('acme:SN-4'));
    await eventually(async () => {
      const got = await listAll(cust.scim('acme'), dm.acme, 'Devices');
      assert.deepEqual(sorted(got.map((d) => d.externalId as string)), [
        'acme:SN-1',
        'acme:SN-2',
        'acme:SN-3',
        'acme:SN-4',
      ]);
    }, 20_000);
  });

  test('use case 31: registrations are authenticated and checked; errors are SCIM errors', async () => {
    const url = `${mfr.admin('mfr')}/registrations`;
    const body = { baseUrl: 'https://globex.example/scim/v2', token: 't0k3n' };
    const none = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(none.status, 401);
    const noScope = await http('POST', url, factory, body);
    assert.equal(noScope.status, 403, noScope.text);
    assert.equal(
      noScope.body.detail,
      'This credential may not register with tenant mfr (needs scope register)',
    );
    const other = await http('POST', url, reg.globex, { ...body, customer: 'acme' });
    assert.equal(other.status, 403, other.text);
    assert.equal(other.body.detail, 'Client globex may register itself only, not customer acme');
    const badUrl = await http('POST', url, reg.globex, { baseUrl: 'ftp://globex.example', token: 't' });
    assert.equal(badUrl.status, 400, badUrl.text);
    assert.equal(badUrl.body.scimType, 'invalidValue');
    assert.equal(badUrl.body.detail, 'baseUrl must be an absolute http(s) URL; got "ftp://globex.example"');
    const adminNoCustomer = await http('POST', url, mfr.adminToken, body);
    assert.equal(adminNoCustomer.status, 400, adminNoCustomer.text);
    assert.equal(adminNoCustomer.body.detail, 'customer is required when an admin registers a customer');
    // A tenant without a template.
    await createTenant(mfr, 'other');
    const noTemplate = await http('POST', `${mfr.admin('other')}/registrations`, mfr.adminToken, {
      ...body,
      customer: 'globex',
    });
    assert.equal(noTemplate.status, 404, noTemplate.text);
    assert.equal(noTemplate.body.detail, 'Tenant other publishes no registration template');
    // A template whose filter does not name the customer would give every customer every device.
    const open = await http('PUT', `${mfr.admin('other')}/registration`, mfr.adminToken, {
      flow: { filter: 'active eq true' },
    });
    assert.equal(open.status, 400, open.text);
    assert.equal(
      open.body.detail,
      'flow.filter must name the customer with {customer} (each customer gets only its devices)',
    );
    const typo = await http('PUT', `${mfr.admin('other')}/registration`, mfr.adminToken, {
      flow: { filter: 'serial sw "{customer}:"' },
    });
    assert.equal(typo.status, 400, typo.text);
    assert.equal(typo.body.scimType, 'invalidFilter');
    // None of these registered anything.
    assert.deepEqual(
      ((await ok('GET', `${mfr.admin('mfr')}/registrations`, mfr.adminToken)).registrations as Json[]).map(
        (r) => r.customer,
      ),
      ['acme'],
    );

    // Customer side: a wrong register credential is reported (502) and kept as lastError.
    const wrong = await http('PUT', `${cust.admin('globex')}/manufacturers/mfr`, cust.adminToken, {
      mudUrlPrefix: 'https://mfr.example/mud/',
      registrationUrl: url,
      token: 'not-a-token',
    });
    assert.equal(wrong.status, 200, wrong.text);
    const failed = await http('POST', `${cust.admin('globex')}/manufacturers/mfr/register`, cust.adminToken);
    assert.equal(failed.status, 502, failed.text);
    assert.equal(
      failed.body.detail,
      'Registration with manufacturer mfr failed: the manufacturer answered 401: Invalid or expired bearer token',
    );
    const g = await ok('GET', `${cust.admin('globex')}/manufacturers/mfr`, cust.adminToken);
    assert.equal(g.status, 'failed');
    assert.equal(g.lastError, 'the manufacturer answered 401: Invalid or expired bearer token');
    // The token made for that attempt was revoked.
    const tokens = (
      await ok('GET', `${cust.admin('globex')}/clients/manufacturer-mfr/tokens`, cust.adminToken)
    ).tokens as Json[];
    assert.equal(tokens.length, 1);
    assert.equal(typeof tokens[0].revokedAt, 'string', JSON.stringify(tokens));
    const noToken = await http('PUT', `${cust.admin('globex')}/manufacturers/other`, cust.adminToken, {
      mudUrlPrefix: 'https://other.example/',
      registrationUrl: url,
    });
    assert.equal(noToken.status, 400, noToken.text);
    assert.equal(noToken.body.detail, 'token is required');
  });
});
