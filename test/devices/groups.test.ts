/**
 * Devices as Group members (the device draft lets Groups hold Devices): members of type "Device"
 * with their $ref, filterable by type, and Device.groups derived like User.groups (RFC 7643 §4.1.2).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import {
  GROUP,
  PATCH_OP,
  Scim,
  assertScimError,
  baseUrl,
  bleDevice,
  deviceTenant,
  endpointApp,
  ids,
  listOk,
  type Json,
} from './helpers.ts';

const TENANT = 'device-groups';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
let t: TestApp;
let admin: Scim;
let d1: Json;
let d2: Json;
let user: Json;

before(async () => {
  t = await startTestApp();
  admin = new Scim(t, TENANT, await deviceTenant(t, TENANT));
  d1 = (await admin.create('/Devices', bleDevice('02:00:00:00:30:01', 'Thermostat'))).body;
  d2 = (await admin.create('/Devices', bleDevice('02:00:00:00:30:02', 'Door lock'))).body;
  user = (await admin.create('/Users', { schemas: [USER], userName: 'alice' })).body;
});
after(async () => {
  await t.close();
});

const ref = (endpoint: string, id: string) => `${baseUrl(TENANT)}/${endpoint}/${id}`;
const memberIds = (g: Json): string[] => ((g.members ?? []) as Json[]).map((m) => m.value).sort();

describe('Devices in Groups', () => {
  let group: Json;

  test('POST a Group with a Device member: type "Device", $ref to /Devices', async () => {
    const res = await admin.request('POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Building A',
      members: [
        { value: d1.id, type: 'Device' },
        { value: user.id, type: 'User' },
      ],
    });
    assert.equal(res.status, 201, res.text);
    group = res.body;
    const members = [...(group.members as Json[])].sort((a, b) => a.type.localeCompare(b.type));
    assert.deepEqual(
      members.map((m) => [m.value, m.type, m.$ref]),
      [
        [d1.id, 'Device', ref('Devices', d1.id)],
        [user.id, 'User', ref('Users', user.id)],
      ],
    );
    const read = await admin.request('GET', `/Groups/${group.id}`);
    assert.deepEqual(read.body, group);
  });

  test('a Device member sent without type is typed by the server', async () => {
    const res = await admin.request('POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Untyped',
      members: [{ value: d2.id }],
    });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(
      res.body.members.map((m: Json) => [m.value, m.type, m.$ref]),
      [[d2.id, 'Device', ref('Devices', d2.id)]],
    );
    assert.equal((await admin.request('DELETE', `/Groups/${res.body.id}`)).status, 204);
    assert.equal((await admin.request('GET', `/Devices/${d2.id}`)).body.groups, undefined);
  });

  test('a member whose type contradicts the resource, or a member that does not exist: 400 invalidValue', async () => {
    for (const members of [
      [{ value: d1.id, type: 'User' }],
      [{ value: user.id, type: 'Device' }],
      [{ value: 'no-such-device', type: 'Device' }],
      [{ value: d1.id, type: 'Printer' }],
    ]) {
      const res = await admin.request('POST', '/Groups', { schemas: [GROUP], displayName: 'Bad', members });
      assertScimError(res, 400, /./, 'invalidValue');
    }
    const groups = await admin.filter('/Groups', 'displayName eq "Bad"');
    assert.equal(groups.body.totalResults, 0);
  });

  test('filter members[type eq "Device"] and members.value', async () => {
    const usersOnly = await admin.create('/Groups', {
      schemas: [GROUP],
      displayName: 'People',
      members: [{ value: user.id, type: 'User' }],
    });
    const withDevices = await admin.filter('/Groups', 'members[type eq "Device"]');
    listOk(withDevices);
    assert.deepEqual(ids(withDevices), [group.id]);
    const byValue = await admin.filter('/Groups', `members[type eq "Device" and value eq "${d1.id}"]`);
    assert.deepEqual(ids(byValue), [group.id]);
    const withUsers = await admin.filter('/Groups', 'members[type eq "User"]');
    assert.deepEqual(ids(withUsers), [group.id, usersOnly.body.id].sort());
    const none = await admin.filter('/Groups', `members[type eq "Device" and value eq "${d2.id}"]`);
    assert.equal(none.body.totalResults, 0);
  });

  test('Device.groups is derived: value, display, $ref to /Groups, type direct; filterable', async () => {
    const res = await admin.request('GET', `/Devices/${d1.id}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.groups, [
      { value: group.id, display: 'Building A', $ref: ref('Groups', group.id), type: 'direct' },
    ]);
    assert.equal((await admin.request('GET', `/Devices/${d2.id}`)).body.groups, undefined);
    const byGroup = await admin.filter('/Devices', `groups.value eq "${group.id}"`);
    listOk(byGroup);
    assert.deepEqual(ids(byGroup), [d1.id]);
    const list = await admin.filter('/Devices', `id eq "${d1.id}"`);
    assert.deepEqual(list.body.Resources[0].groups, res.body.groups);
  });

  test('Device.groups is readOnly: sent on PUT it is ignored, PATCH of it is 400 mutability', async () => {
    const { meta: _meta, groups: _groups, ...body } = d2;
    const put = await admin.request('PUT', `/Devices/${d2.id}`, {
      ...body,
      groups: [{ value: group.id, display: 'Forged' }],
    });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.groups, undefined);
    assertScimError(
      await admin.request('PATCH', `/Devices/${d2.id}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'add', path: 'groups', value: [{ value: group.id }] }],
      }),
      400,
      /groups/,
      'mutability',
    );
    assert.deepEqual(
      memberIds((await admin.request('GET', `/Groups/${group.id}`)).body),
      [d1.id, user.id].sort(),
    );
  });

  test('PATCH the Group: add a Device member, rename (Device.groups follows), remove it by filter', async () => {
    // A member change is answered 204 unless attributes are asked for (RFC 7644 §3.5.2).
    const added = await admin.request('PATCH', `/Groups/${group.id}?attributes=members,displayName`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'add', path: 'members', value: [{ value: d2.id, type: 'Device' }] },
        { op: 'replace', path: 'displayName', value: 'Building B' },
      ],
    });
    assert.equal(added.status, 200, added.text);
    assert.deepEqual(memberIds(added.body), [d1.id, d2.id, user.id].sort());
    for (const d of [d1, d2]) {
      assert.deepEqual((await admin.request('GET', `/Devices/${d.id}`)).body.groups, [
        { value: group.id, display: 'Building B', $ref: ref('Groups', group.id), type: 'direct' },
      ]);
    }
    const removed = await admin.request('PATCH', `/Groups/${group.id}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'remove', path: `members[value eq "${d2.id}"]` }],
    });
    assert.equal(removed.status, 204, removed.text);
    assert.equal(removed.text, '');
    const current = await admin.request('GET', `/Groups/${group.id}`);
    assert.equal(removed.headers.etag, current.headers.etag);
    assert.deepEqual(memberIds(current.body), [d1.id, user.id].sort());
    assert.equal((await admin.request('GET', `/Devices/${d2.id}`)).body.groups, undefined);
  });

  test('deleting a Device removes its membership', async () => {
    const before = await admin.request('GET', `/Groups/${group.id}`);
    assert.equal((await admin.request('DELETE', `/Devices/${d1.id}`)).status, 204);
    const after = await admin.request('GET', `/Groups/${group.id}`);
    assert.equal(after.status, 200);
    assert.deepEqual(memberIds(after.body), [user.id]);
    assert.notEqual(after.headers.etag, before.headers.etag, 'the group changed, so must its version');
    const byMember = await admin.filter('/Groups', `members.value eq "${d1.id}"`);
    assert.equal(byMember.body.totalResults, 0);
    const devices = await admin.filter('/Groups', 'members[type eq "Device"]');
    assert.equal(devices.body.totalResults, 0);
  });

  test('deleting a Group removes it from Device.groups', async () => {
    const g = await admin.create('/Groups', {
      schemas: [GROUP],
      displayName: 'Temp',
      members: [{ value: d2.id, type: 'Device' }],
    });
    assert.equal((await admin.request('GET', `/Devices/${d2.id}`)).body.groups.length, 1);
    assert.equal((await admin.request('DELETE', `/Groups/${g.body.id}`)).status, 204);
    assert.equal((await admin.request('GET', `/Devices/${d2.id}`)).body.groups, undefined);
  });

  test('an EndpointApp accepted as a member is consistent: its type is advertised and EndpointApp.groups shows the group', async () => {
    // The draft gives EndpointApp a derived `groups` attribute (so does our /Schemas), and the
    // server accepts an EndpointApp in Group.members; then the member's type must be one /Schemas
    // lists for members.type, and the EndpointApp's groups must show the membership.
    const app = await admin.create(
      '/EndpointApps',
      endpointApp('Member app', 'telemetry', 'member.example.org'),
    );
    const res = await admin.request('POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Apps',
      members: [{ value: app.body.id }],
    });
    assert.equal(res.status, 201, res.text);
    const [member] = res.body.members as Json[];
    const groupSchema = (await admin.request('GET', `/Schemas/${GROUP}`)).body;
    const type = (groupSchema.attributes as Json[])
      .find((a) => a.name === 'members')
      .subAttributes.find((s: Json) => s.name === 'type');
    assert.ok(
      type.canonicalValues.includes(member.type),
      `member type ${member.type} not in ${JSON.stringify(type.canonicalValues)}`,
    );
    assert.deepEqual((await admin.request('GET', `/EndpointApps/${app.body.id}`)).body.groups, [
      { value: res.body.id, display: 'Apps', $ref: ref('Groups', res.body.id), type: 'direct' },
    ]);
  });
});
