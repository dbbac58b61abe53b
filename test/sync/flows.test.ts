/**
 * Sync flows through the admin API (/admin/v1/tenants/{tenant}/flows): exact views (with the
 * engine's state read-only and the schedule's next run), defaults, every validation rule
 * (direction/mode, resource types and the tenant's enabled types, filter, mapping rules, authority,
 * matching, schedule, events upstream), PATCH with null and the immutable fields, delete, tenant
 * isolation, and the typed getters the engine and the triggers use. PGlite, and PostgreSQL when
 * DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cron } from 'croner';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const BASE = '/admin/v1/tenants/default/flows';
const JSON_HEADERS = { 'content-type': 'application/json' };
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** Schedules are UTC unless they start with TZ=<zone> (as the schedule trigger reads them). */
const nextRun = (expr: string, timezone = 'UTC') =>
  new Cron(expr, { paused: true, timezone }).nextRun()!.toISOString();

describe('sync flows admin API', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ backgroundWorkers: false });
    await t.app.admin.createTenant({ id: 'acme' });
    await t.app.admin.createTenant({ id: 'narrow', settings: { resourceTypes: ['User'] } });
    for (const [tenant, id] of [
      ['default', 'customer'],
      ['default', 'hr'],
      ['acme', 'own'],
      ['narrow', 'c'],
    ]) {
      await t.app.connections.create(tenant, { id, baseUrl: `https://${id}.example/scim/v2` });
    }
    await t.app.upstreams.create('default', {
      id: 'hr-events',
      name: 'HR events',
      issuer: 'https://hr.example',
      acceptUnsigned: true,
      scimBaseUrl: 'https://hr.example/scim/v2',
    });
  });
  after(async () => {
    await t?.close();
  });

  const call = (method: string, url: string, body?: unknown, token?: string) =>
    t.request(method, url, { body, headers: body === undefined ? {} : JSON_HEADERS, token });
  const dates = (v: { created: string; updated: string }) => {
    assert.match(v.created, /^\d{4}-\d\d-\d\dT.*Z$/);
    assert.match(v.updated, /^\d{4}-\d\d-\d\dT.*Z$/);
    const { created: _c, updated: _u, ...rest } = v;
    return rest;
  };

  // A manufacturer pushes devices to a customer: serial numbers and model sent once, then owned
  // by the customer's device manager; the manufacturer's internal notes never leave.
  const devicePush = {
    id: 'devices',
    name: 'Devices to customer',
    connectionId: 'customer',
    direction: 'push',
    mode: 'changes',
    resourceTypes: ['device'],
    filter: 'displayName sw "acme-"',
    mapping: {
      rules: [
        { drop: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter' },
        { from: 'displayName', to: 'externalId', transform: 'lowercase' },
        { set: 'active', value: true },
        { attribute: 'displayName', transform: 'trim' },
      ],
    },
    authority: { default: 'local', initial: ['displayName', 'active'] },
    matching: { attributes: ['externalId'] },
    onDelete: 'deactivate',
    usePut: true,
    schedule: '0 3 * * *',
    onLocalChange: true,
  };

  test('create, get, list: exact views; the typed Flow for the engine', async () => {
    const res = await call('POST', BASE, devicePush);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.created, res.body.updated);
    assert.deepEqual(dates(res.body), {
      ...devicePush,
      tenant: 'default',
      resourceTypes: ['Device'],
      enabled: true,
      nextRun: nextRun('0 3 * * *'),
      state: {},
    });
    const flow = await t.app.flows.get('default', 'devices');
    assert.ok(flow);
    assert.ok(flow.created instanceof Date);
    const { created: _c, updated: _u, ...typed } = flow;
    assert.deepEqual(typed, {
      ...devicePush,
      tenant: 'default',
      resourceTypes: ['Device'],
      enabled: true,
    });
    assert.equal(await t.app.flows.get('default', 'nope'), undefined);
    assert.equal(await t.app.flows.get('acme', 'devices'), undefined);

    // An HR system owns names and titles; this node owns emails. Defaults fill the rest.
    const hr = await call('POST', BASE, {
      id: 'hr-pull',
      connectionId: 'hr',
      direction: 'pull',
      mode: 'delta',
      resourceTypes: ['User'],
      filter: 'active eq true and nickName pr',
      authority: {
        default: 'local',
        remote: ['name', 'title', `${ENTERPRISE}:department`],
        local: ['emails'],
      },
      fullEverySeconds: 86400,
    });
    assert.equal(hr.status, 201, hr.text);
    assert.deepEqual(dates(hr.body), {
      tenant: 'default',
      id: 'hr-pull',
      name: 'hr-pull',
      connectionId: 'hr',
      direction: 'pull',
      mode: 'delta',
      resourceTypes: ['User'],
      filter: 'active eq true and nickName pr',
      authority: {
        default: 'local',
        local: ['emails'],
        remote: ['name', 'title', `${ENTERPRISE}:department`],
      },
      onDelete: 'delete',
      usePut: false,
      fullEverySeconds: 86400,
      onLocalChange: false,
      enabled: true,
      state: {},
    });
    const minimal = await call('POST', BASE, {
      connectionId: 'hr',
      direction: 'push',
      resourceTypes: ['Group', 'User'],
    });
    assert.equal(minimal.status, 201, minimal.text);
    assert.match(minimal.body.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      [minimal.body.name, minimal.body.mode, minimal.body.resourceTypes, minimal.body.onDelete],
      [minimal.body.id, 'changes', ['Group', 'User'], 'delete'],
    );

    const list = await call('GET', BASE);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { flows: [res.body, hr.body, minimal.body] });
    const ofHr = await call('GET', `${BASE}?connection=hr`);
    assert.deepEqual(ofHr.body, { flows: [hr.body, minimal.body] });
    assert.deepEqual((await call('GET', `${BASE}?connection=zz`)).body, { flows: [] });
    assert.deepEqual((await call('GET', `${BASE}/devices`)).body, res.body);
    assert.equal((await call('DELETE', `${BASE}/${minimal.body.id}`)).status, 204);

    const dup = await call('POST', BASE, devicePush);
    assert.equal(dup.status, 409);
    assert.equal(dup.body.detail, 'Tenant default already has a flow devices');
    const missing = await call('GET', `${BASE}/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, 'No flow nope in tenant default');
  });

  test('every validation rule: 400 naming the field', async () => {
    const push = { connectionId: 'customer', direction: 'push', resourceTypes: ['User'] };
    const pull = { connectionId: 'hr', direction: 'pull', resourceTypes: ['User'] };
    const cases: [unknown, string, string?][] = [
      [{ ...push, id: 'a b' }, 'id must be 1-64 characters of A-Z a-z 0-9 . _ -'],
      [{ direction: 'push', resourceTypes: ['User'] }, "body must have required property 'connectionId'"],
      [{ ...push, connectionId: 'nope' }, 'connectionId: no connection nope in tenant default'],
      [{ ...push, direction: 'both' }, 'body/direction must be equal to one of the allowed values'],
      [{ ...push, mode: 'delta' }, 'mode "delta" is not for push flows (push: changes, full)'],
      [{ ...push, mode: 'events' }, 'mode "events" is not for push flows (push: changes, full)'],
      [{ ...pull, mode: 'changes' }, 'mode "changes" is not for pull flows (pull: full, delta, events)'],
      [{ ...push, resourceTypes: [] }, 'body/resourceTypes must NOT have fewer than 1 items'],
      [{ ...push, resourceTypes: ['Printer'] }, 'resourceTypes: unknown resource type "Printer"'],
      [
        { ...push, filter: 'userName eq' },
        'filter: Expected a value after "eq" at position 11, found end of input (values are "quoted strings", numbers, true, false or null) in filter: userName eq',
        'invalidFilter',
      ],
      [
        { ...push, filter: 'nosuch eq 1' },
        'filter: Unknown attribute "nosuch" for resource type User',
        'invalidFilter',
      ],
      [{ ...push, mapping: { rules: [{ from: 'userName' }] } }, 'mapping.rules[0] needs both from and to'],
      [
        { ...push, mapping: { rules: [{ drop: 'x', set: 'y', value: 1 }] } },
        'mapping.rules[0] must have exactly one of the forms {from, to, transform?}, {attribute, transform}, {drop} or {set, value}',
      ],
      [
        { ...push, mapping: { rules: [{}] } },
        'mapping.rules[0] must have exactly one of the forms {from, to, transform?}, {attribute, transform}, {drop} or {set, value}',
      ],
      [
        { ...push, mapping: { rules: [{ drop: 'a', transform: 'trim' }] } },
        'mapping.rules[0].transform is not an allowed property (allowed: drop)',
      ],
      [{ ...push, mapping: { rules: [{ attribute: 'userName' }] } }, 'mapping.rules[0] needs a transform'],
      [
        { ...push, mapping: { rules: [{ attribute: 'userName', transform: 'rot13' }] } },
        'mapping.rules[0].transform must be one of "lowercase", "uppercase", "trim", "sha256"',
      ],
      [{ ...push, mapping: { rules: [{ set: 'active' }] } }, 'mapping.rules[0] needs a value'],
      [
        { ...push, mapping: { rules: [{ drop: 'name.givenName.x' }] } },
        'mapping.rules[0].drop: Invalid attribute path "name.givenName.x" at position 0 in path: name.givenName.x',
      ],
      [
        { ...push, mapping: { rules: [{ drop: 'emails[type eq "work"].value' }] } },
        'mapping.rules[0].drop must be an attribute path without a value filter; got "emails[type eq "work"].value"',
      ],
      [{ ...push, mapping: { rules: 'drop all' } }, 'mapping.rules must be an array of rules'],
      [
        { ...push, mapping: { only: ['a b'], rules: [] } },
        'mapping.only[0]: Unexpected "b" at position 2 after end of path: a b',
      ],
      [{ ...push, mapping: { rule: [] } }, 'mapping.rule is not an allowed property (allowed: only, rules)'],
      [{ ...push, authority: { default: 'both' } }, 'authority.default must be one of "local", "remote"'],
      [{ ...push, authority: { remote: 'name' } }, 'authority.remote must be an array of attribute paths'],
      [
        { ...push, authority: { local: ['emails'], remote: ['Emails'] } },
        'authority: "Emails" is listed in both local and remote',
      ],
      [
        { ...push, authority: { owners: [] } },
        'authority.owners is not an allowed property (allowed: default, local, remote, initial)',
      ],
      [{ ...push, matching: { attributes: [] } }, 'matching.attributes must not be empty'],
      [{ ...push, matching: {} }, 'matching.attributes must be an array of attribute paths'],
      [{ ...push, onDelete: 'purge' }, 'body/onDelete must be equal to one of the allowed values'],
      [
        { ...push, schedule: 'every day' },
        "schedule is invalid: invalid configuration format ('every day'), exactly five, six, or seven space separated parts are required.",
      ],
      [{ ...push, schedule: '61 * * * *' }, 'schedule is invalid: Invalid value for minute: 61'],
      [
        { ...push, schedule: '0 0 31 2 *' },
        'schedule is invalid: the schedule "0 0 31 2 *" names no future time',
      ],
      [
        { ...push, schedule: 'TZ=Mars/Olympus 0 2 * * *' },
        'schedule is invalid: unknown time zone Mars/Olympus',
      ],
      [
        { ...pull, mode: 'delta', fullEverySeconds: 59 },
        'fullEverySeconds must be an integer from 60 to 31536000',
      ],
      [{ ...pull, fullEverySeconds: 3600 }, 'fullEverySeconds applies to pull flows of mode delta only'],
      [{ ...pull, usePut: true }, 'usePut applies to push flows only'],
      [
        { ...push, mode: 'full', onLocalChange: true },
        'onLocalChange applies to push flows of mode changes only',
      ],
      [{ ...pull, mode: 'events' }, 'upstreamId is required for pull flows of mode events'],
      [{ ...pull, mode: 'events', upstreamId: 'nope' }, 'upstreamId: no upstream nope in tenant default'],
      [{ ...pull, upstreamId: 'hr-events' }, 'upstreamId applies to pull flows of mode events only'],
      [{ ...push, extra: true }, 'body/extra is not an allowed property'],
    ];
    for (const [body, detail, scimType = 'invalidValue'] of cases) {
      const res = await call('POST', BASE, body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.body.detail, detail);
      assert.equal(res.body.scimType, scimType, detail);
    }
    // A tenant that serves Users only cannot sync Groups.
    const narrow = await call('POST', '/admin/v1/tenants/narrow/flows', {
      connectionId: 'c',
      direction: 'pull',
      resourceTypes: ['User', 'Group'],
    });
    assert.equal(narrow.status, 400);
    assert.equal(narrow.body.detail, 'resourceTypes: Group is not enabled for tenant narrow');
    // A pull flow's filter runs remotely: it must parse, but may name attributes unknown here.
    const remoteAttr = await call('POST', BASE, {
      ...pull,
      id: 'remote-filter',
      filter: 'costCentre eq "x"',
    });
    assert.equal(remoteAttr.status, 201, remoteAttr.text);
    const events = await call('POST', BASE, {
      ...pull,
      id: 'events',
      mode: 'events',
      upstreamId: 'hr-events',
    });
    assert.equal(events.status, 201, events.text);
    assert.equal(events.body.upstreamId, 'hr-events');
    assert.deepEqual(
      (await t.app.flows.list('default')).map((f) => f.id),
      ['devices', 'hr-pull', 'remote-filter', 'events'],
    );
  });

  test('PATCH: any subset, null clears, connection and direction cannot change, engine columns untouched', async () => {
    // The engine's columns, as the engine would have left them.
    await t.app.db.query(
      `UPDATE sync_flows SET state = '{"position":"42"}', lease_owner = 'node-1',
         lease_until = now() + interval '1 minute' WHERE tenant_id = 'default' AND id = 'devices'`,
    );
    const res = await call('PATCH', `${BASE}/devices`, {
      name: 'Devices',
      mode: 'full',
      onLocalChange: false,
      filter: null,
      mapping: null,
      schedule: 'TZ=Europe/Paris 0 2 * * 1-5',
      resourceTypes: ['Device', 'EndpointApp'],
    });
    assert.equal(res.status, 200, res.text);
    const { mapping: _m, filter: _f, ...kept } = devicePush;
    assert.deepEqual(dates(res.body), {
      ...kept,
      tenant: 'default',
      name: 'Devices',
      mode: 'full',
      onLocalChange: false,
      schedule: 'TZ=Europe/Paris 0 2 * * 1-5',
      nextRun: nextRun('0 2 * * 1-5', 'Europe/Paris'),
      resourceTypes: ['Device', 'EndpointApp'],
      enabled: true,
      state: { position: '42' },
    });
    assert.ok(res.body.updated > res.body.created);
    const lease = await t.app.db.query<{ lease_owner: string }>(
      `SELECT lease_owner FROM sync_flows WHERE tenant_id = 'default' AND id = 'devices'`,
    );
    assert.equal(lease.rows[0].lease_owner, 'node-1');

    const disabled = await call('PATCH', `${BASE}/devices`, { enabled: false });
    assert.equal(disabled.status, 200, disabled.text);
    assert.equal(disabled.body.enabled, false);
    assert.equal(disabled.body.schedule, 'TZ=Europe/Paris 0 2 * * 1-5');
    assert.equal(disabled.body.nextRun, undefined);

    const errors: [unknown, string, string?][] = [
      [{}, 'body must NOT have fewer than 1 properties'],
      [
        { connectionId: 'hr' },
        "connectionId cannot change (the flow's links and position belong to its connection and direction): create another flow",
        'mutability',
      ],
      [
        { direction: 'pull' },
        "direction cannot change (the flow's links and position belong to its connection and direction): create another flow",
        'mutability',
      ],
      [{ mode: null }, 'mode cannot be cleared'],
      [{ resourceTypes: null }, 'resourceTypes cannot be cleared'],
      [{ id: 'x' }, 'body/id is not an allowed property'],
      [{ mode: 'delta' }, 'mode "delta" is not for push flows (push: changes, full)'],
      [{ onLocalChange: true }, 'onLocalChange applies to push flows of mode changes only'],
    ];
    for (const [body, detail, scimType = 'invalidValue'] of errors) {
      const r = await call('PATCH', `${BASE}/devices`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.detail, detail);
      assert.equal(r.body.scimType, scimType);
    }
    // The same connection and direction are not a change.
    const same = await call('PATCH', `${BASE}/devices`, {
      connectionId: 'customer',
      direction: 'push',
      enabled: true,
    });
    assert.equal(same.status, 200, same.text);
    // Leaving events mode needs the upstream cleared with it.
    const stillUpstream = await call('PATCH', `${BASE}/events`, { mode: 'full' });
    assert.equal(stillUpstream.body.detail, 'upstreamId applies to pull flows of mode events only');
    const full = await call('PATCH', `${BASE}/events`, { mode: 'full', upstreamId: null });
    assert.equal(full.status, 200, full.text);
    assert.equal(full.body.upstreamId, undefined);
    const missing = await call('PATCH', `${BASE}/nope`, { name: 'x' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, 'No flow nope in tenant default');
  });

  test('typed getters for the engine and the triggers', async () => {
    await t.app.flows.create('acme', {
      id: 'a1',
      connectionId: 'own',
      direction: 'push',
      resourceTypes: ['Group'],
    });
    assert.deepEqual(
      (await t.app.flows.listEnabled()).map((f) => `${f.tenant}/${f.id}`),
      ['acme/a1', 'default/devices', 'default/events', 'default/hr-pull', 'default/remote-filter'],
    );
    assert.deepEqual(
      (await t.app.flows.listByType('default', 'user')).map((f) => f.id),
      ['events', 'hr-pull', 'remote-filter'],
    );
    assert.deepEqual(
      (await t.app.flows.listByType('default', 'Device', 'push')).map((f) => f.id),
      ['devices'],
    );
    assert.deepEqual(
      (await t.app.flows.listByType('default', 'User', 'push')).map((f) => f.id),
      [],
    );
    await t.app.flows.patch('default', 'events', { mode: 'events', upstreamId: 'hr-events' });
    assert.deepEqual(
      (await t.app.flows.listByUpstream('default', 'hr-events')).map((f) => f.id),
      ['events'],
    );
    await t.app.flows.patch('default', 'events', { enabled: false });
    assert.deepEqual(await t.app.flows.listByUpstream('default', 'hr-events'), []);
  });

  test("tenant isolation: flows name their own tenant's connections and upstreams only", async () => {
    const admin = await t.app.admin.createClient('acme', { name: 'acme-admin', scopes: ['admin'] });
    const token = (await t.app.admin.issueToken('acme', admin.id)).token;
    const crossConn = await call(
      'POST',
      '/admin/v1/tenants/acme/flows',
      { connectionId: 'hr', direction: 'pull', resourceTypes: ['User'] },
      token,
    );
    assert.equal(crossConn.status, 400);
    assert.equal(crossConn.body.detail, 'connectionId: no connection hr in tenant acme');
    const crossUpstream = await call(
      'POST',
      '/admin/v1/tenants/acme/flows',
      {
        connectionId: 'own',
        direction: 'pull',
        mode: 'events',
        upstreamId: 'hr-events',
        resourceTypes: ['User'],
      },
      token,
    );
    assert.equal(crossUpstream.body.detail, 'upstreamId: no upstream hr-events in tenant acme');
    assert.deepEqual(
      (await call('GET', '/admin/v1/tenants/acme/flows', undefined, token)).body.flows.map(
        (f: { id: string }) => f.id,
      ),
      ['a1'],
    );
    for (const [method, url, body] of [
      ['GET', BASE, undefined],
      ['GET', `${BASE}/devices`, undefined],
      ['PATCH', `${BASE}/devices`, { enabled: false }],
      ['DELETE', `${BASE}/devices`, undefined],
      ['POST', BASE, { connectionId: 'hr', direction: 'pull', resourceTypes: ['User'] }],
    ] as const) {
      const r = await call(method, url, body, token);
      assert.equal(r.status, 403, `${method} ${url}: ${r.text}`);
    }
    assert.equal((await call('GET', '/admin/v1/tenants/acme/flows/devices', undefined, token)).status, 404);
    assert.equal((await t.request('GET', BASE, { token: false })).status, 401);
    assert.equal((await call('GET', '/admin/v1/tenants/nowhere/flows')).status, 404);
    assert.equal((await t.app.flows.get('default', 'devices'))?.enabled, true);
  });

  test('DELETE removes the flow with its engine rows; the connection can go after its last flow', async () => {
    await t.app.db.query(
      `INSERT INTO sync_links (tenant_id, flow_id, resource_type, local_id, remote_id)
       VALUES ('default', 'devices', 'Device', 'l1', 'r1')`,
    );
    assert.equal((await call('DELETE', `${BASE}/devices`)).status, 204);
    assert.equal((await call('GET', `${BASE}/devices`)).status, 404);
    const links = await t.app.db.query(
      `SELECT 1 FROM sync_links WHERE tenant_id = 'default' AND flow_id = 'devices'`,
    );
    assert.equal(links.rows.length, 0);
    const again = await call('DELETE', `${BASE}/devices`);
    assert.equal(again.status, 404);
    assert.equal(again.body.detail, 'No flow devices in tenant default');
    assert.equal((await call('DELETE', '/admin/v1/tenants/default/connections/customer')).status, 204);
  });
});
