/**
 * Push flows against a second scimd on loopback: full and change-log pushes, creates, updates,
 * renames, deletes per onDelete, groups with translated members, re-created remote records,
 * authority, mapping and echo suppression. Both sides' final states are asserted exactly.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FlowRunner } from '../../src/sync/engine/runner.ts';
import {
  addFlow,
  create,
  ENT,
  GROUP,
  links,
  listAll,
  patch,
  runnerFor,
  settleChangeLog,
  startPair,
  USER,
  type Pair,
} from './engine-helpers.ts';

let pair: Pair;
let runner: FlowRunner;

before(async () => {
  pair = await startPair();
  runner = runnerFor(pair);
});
after(async () => {
  await pair.close();
});

const summary = (users: Record<string, unknown>[]) =>
  users.map((u) => ({
    userName: u.userName,
    displayName: u.displayName,
    active: u.active,
    externalId: u.externalId,
  }));

async function run(flowId: string) {
  await settleChangeLog(pair.local.app);
  return runner.runFlow('default', flowId, { trigger: 'manual' });
}

describe('push', () => {
  test('use case 5: a full push creates users and a group with translated member ids, then links them', async () => {
    const a = await create(pair.local, 'Users', {
      schemas: [USER],
      userName: 'p-alice',
      displayName: 'Alice',
      externalId: 'ea',
    });
    const b = await create(pair.local, 'Users', { schemas: [USER], userName: 'p-bob', displayName: 'Bob' });
    const g = await create(pair.local, 'Groups', {
      schemas: [GROUP],
      displayName: 'p-team',
      members: [{ value: a.id }, { value: b.id }],
    });
    await addFlow(pair, {
      id: 'push1',
      direction: 'push',
      mode: 'changes',
      resourceTypes: ['User', 'Group'],
      filter: undefined,
    });
    const r = await run('push1');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.counts, { created: 3, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    const users = await listAll(pair.remote, 'Users');
    assert.deepEqual(summary(users), [
      { userName: 'p-alice', displayName: 'Alice', active: undefined, externalId: 'ea' },
      { userName: 'p-bob', displayName: 'Bob', active: undefined, externalId: undefined },
    ]);
    const groups = await listAll(pair.remote, 'Groups', 'displayName');
    assert.equal(groups.length, 1);
    const ra = users[0].id as string;
    const rb = users[1].id as string;
    assert.deepEqual((groups[0].members as { value: string }[]).map((m) => m.value).sort(), [ra, rb].sort());
    assert.notEqual(ra, a.id); // the remote assigns its own ids
    assert.deepEqual(
      (await links(pair, 'push1')).map((l) => [l.local_id, l.remote_id]).sort(),
      [
        [a.id, ra],
        [b.id, rb],
        [g.id, groups[0].id],
      ].sort(),
    );
    // Nothing changed: the next run sends nothing.
    pair.sent.length = 0;
    const again = await run('push1');
    assert.equal(again.state, 'succeeded');
    assert.deepEqual(again.counts, { created: 0, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    assert.deepEqual(
      pair.sent.filter((s) => !s.startsWith('GET')),
      [],
    );
  });

  test('use case 5: changes are pushed as PATCH; a renamed user is updated, not duplicated; deletes follow', async () => {
    const [alice, bob] = await listAll(pair.local, 'Users');
    await patch(pair.local, `Users/${alice.id}`, [{ op: 'replace', path: 'userName', value: 'p-alice2' }]);
    await patch(pair.local, `Users/${bob.id}`, [{ op: 'replace', path: 'displayName', value: 'Robert' }]);
    pair.sent.length = 0;
    const r = await run('push1');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.counts, { created: 0, updated: 2, deleted: 0, skipped: 0, failed: 0 });
    assert.deepEqual(
      pair.sent.filter((s) => !s.startsWith('GET')).sort(),
      [
        'PATCH /Users/' + (await links(pair, 'push1')).find((l) => l.local_id === alice.id)!.remote_id,
        'PATCH /Users/' + (await links(pair, 'push1')).find((l) => l.local_id === bob.id)!.remote_id,
      ].sort(),
    );
    assert.deepEqual(summary(await listAll(pair.remote, 'Users')), [
      { userName: 'p-alice2', displayName: 'Alice', active: undefined, externalId: 'ea' },
      { userName: 'p-bob', displayName: 'Robert', active: undefined, externalId: undefined },
    ]);
    // A member removed locally leaves the remote group.
    const [group] = await listAll(pair.local, 'Groups', 'displayName');
    await patch(pair.local, `Groups/${group.id}`, [{ op: 'remove', path: `members[value eq "${bob.id}"]` }]);
    const r2 = await run('push1');
    assert.deepEqual(r2.counts, { created: 0, updated: 1, deleted: 0, skipped: 0, failed: 0 });
    let users = await listAll(pair.remote, 'Users');
    let [rg] = await listAll(pair.remote, 'Groups', 'displayName');
    assert.deepEqual(
      (rg.members as { value: string }[]).map((m) => m.value),
      [users[0].id],
    );
    // A deleted user is deleted remotely (onDelete delete); back in the group and deleted: the
    // remote group loses it with the delete, so the group needs no request of its own.
    await patch(pair.local, `Groups/${group.id}`, [
      { op: 'add', path: 'members', value: [{ value: bob.id }] },
    ]);
    assert.deepEqual((await run('push1')).counts, {
      created: 0,
      updated: 1,
      deleted: 0,
      skipped: 0,
      failed: 0,
    });
    assert.equal((await pair.local.request('DELETE', `/scim/v2/Users/${bob.id}`)).status, 204);
    const r3 = await run('push1');
    assert.equal(r3.state, 'succeeded');
    assert.deepEqual(r3.counts, { created: 0, updated: 0, deleted: 1, skipped: 1, failed: 0 });
    users = await listAll(pair.remote, 'Users');
    assert.deepEqual(summary(users), [
      { userName: 'p-alice2', displayName: 'Alice', active: undefined, externalId: 'ea' },
    ]);
    [rg] = await listAll(pair.remote, 'Groups', 'displayName');
    assert.deepEqual(
      (rg.members as { value: string }[]).map((m) => m.value),
      [users[0].id],
    );
    assert.equal((await links(pair, 'push1')).length, 2);
  });

  test('a remote record deleted and re-created with a new id is re-linked and updated, not duplicated', async () => {
    const [alice] = await listAll(pair.local, 'Users');
    const [remoteAlice] = await listAll(pair.remote, 'Users');
    assert.equal((await pair.remote.request('DELETE', `/scim/v2/Users/${remoteAlice.id}`)).status, 204);
    const recreated = await create(pair.remote, 'Users', {
      schemas: [USER],
      userName: 'p-alice2',
      externalId: 'ea',
      title: 'remote',
    });
    await patch(pair.local, `Users/${alice.id}`, [{ op: 'replace', path: 'displayName', value: 'Alice B' }]);
    const r = await run('push1');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.counts, { created: 0, updated: 1, deleted: 0, skipped: 0, failed: 0 });
    const users = await listAll(pair.remote, 'Users');
    assert.equal(users.length, 1);
    assert.equal(users[0].id, recreated.id);
    assert.equal(users[0].displayName, 'Alice B');
    assert.equal(users[0].title, undefined); // local owns every attribute by default: the remote's title goes
    assert.equal((await links(pair, 'push1')).find((l) => l.local_id === alice.id)!.remote_id, recreated.id);
  });

  test('changes written by the flow engine itself (client sync:<flow>) are not pushed back', async () => {
    const echo = await pair.local.app.service.create(
      {
        tenant: 'default',
        baseUrl: 'http://scimd.test/scim/v2',
        clientId: 'sync:push1',
        limits: pair.local.app.config,
      },
      pair.local.app.registry.resourceType('User')!,
      { schemas: [USER], userName: 'p-echo' },
    );
    const r = await run('push1');
    assert.deepEqual(r.counts, { created: 0, updated: 0, deleted: 0, skipped: 1, failed: 0 });
    assert.equal(
      (await listAll(pair.remote, 'Users')).some((u) => u.userName === 'p-echo'),
      false,
    );
    assert.equal((await pair.local.request('DELETE', `/scim/v2/Users/${echo.resource.id}`)).status, 204);
  });

  test('use case 40: a push never writes an attribute the remote owns; initial attributes go on create only', async () => {
    const u = await create(pair.local, 'Users', {
      schemas: [USER, ENT],
      userName: 'auth-1',
      title: 'Local title',
      nickName: 'nick-local',
      [ENT]: { department: 'Sales', employeeNumber: 'E1' },
    });
    await addFlow(pair, {
      id: 'push-auth',
      direction: 'push',
      mode: 'full',
      filter: 'userName sw "auth-"',
      authority: { remote: ['title'], initial: [`${ENT}:department`] },
    });
    const r = await run('push-auth');
    assert.deepEqual(r.counts, { created: 1, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    let [ru] = (await listAll(pair.remote, 'Users')).filter((x) => x.userName === 'auth-1');
    assert.equal(ru.title, undefined); // remote-owned: not sent even on create
    assert.deepEqual(ru[ENT], { department: 'Sales', employeeNumber: 'E1' }); // initial: sent on create
    // The remote sets its own values; the local side changes all three.
    await patch(pair.remote, `Users/${ru.id}`, [
      { op: 'replace', path: 'title', value: 'Remote title' },
      { op: 'replace', path: `${ENT}:department`, value: 'Remote dept' },
    ]);
    await patch(pair.local, `Users/${u.id}`, [
      { op: 'replace', path: 'title', value: 'Local 2' },
      { op: 'replace', path: `${ENT}:department`, value: 'Local dept' },
      { op: 'replace', path: 'nickName', value: 'nick-2' },
    ]);
    const r2 = await run('push-auth');
    assert.deepEqual(r2.counts, { created: 0, updated: 1, deleted: 0, skipped: 0, failed: 0 });
    [ru] = (await listAll(pair.remote, 'Users')).filter((x) => x.userName === 'auth-1');
    assert.equal(ru.title, 'Remote title');
    assert.equal(ru.nickName, 'nick-2');
    assert.deepEqual(ru[ENT], { department: 'Remote dept', employeeNumber: 'E1' });
    const items = await runner.runItems('default', 'push-auth', r2.id);
    assert.deepEqual(
      items.map((i) => [i.action, i.outcome, i.attributes]),
      [['update', 'done', ['nickName']]],
    );
  });

  test('use case 48: mapping drops, renames and masks attributes; a dropped one never reaches the target', async () => {
    await create(pair.local, 'Users', {
      schemas: [USER],
      userName: 'MAP-1',
      displayName: 'Secret Name',
      nickName: 'nick',
      phoneNumbers: [{ value: '+1 555', type: 'work' }],
      externalId: 'map-ext',
    });
    await addFlow(pair, {
      id: 'push-map',
      direction: 'push',
      mode: 'full',
      filter: 'userName sw "MAP-"',
      mapping: {
        rules: [
          { drop: 'phoneNumbers' },
          { from: 'nickName', to: 'title' },
          { attribute: 'userName', transform: 'lowercase' },
          { attribute: 'displayName', transform: 'sha256' },
          { set: 'userType', value: 'Partner' },
        ],
      },
      matching: { attributes: ['externalId'] },
    });
    const r = await run('push-map');
    assert.deepEqual(r.counts, { created: 1, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    const [ru] = (await listAll(pair.remote, 'Users')).filter((x) => x.externalId === 'map-ext');
    const { id, meta, ...rest } = ru as Record<string, unknown>;
    assert.ok(id && meta);
    assert.deepEqual(rest, {
      schemas: [USER],
      userName: 'map-1',
      displayName: createHash('sha256').update('Secret Name').digest('hex'),
      title: 'nick',
      userType: 'Partner',
      externalId: 'map-ext',
    });
    assert.equal('phoneNumbers' in rest, false);
    assert.equal('nickName' in rest, false);
  });

  test('onDelete deactivate sets active false remotely; ignore leaves the remote record', async () => {
    const d = await create(pair.local, 'Users', { schemas: [USER], userName: 'del-d', active: true });
    const i = await create(pair.local, 'Users', { schemas: [USER], userName: 'del-i', active: true });
    await addFlow(pair, {
      id: 'push-deact',
      direction: 'push',
      mode: 'changes',
      filter: 'userName eq "del-d"',
      onDelete: 'deactivate',
    });
    await addFlow(pair, {
      id: 'push-ign',
      direction: 'push',
      mode: 'changes',
      filter: 'userName eq "del-i"',
      onDelete: 'ignore',
    });
    assert.equal((await run('push-deact')).counts.created, 1);
    assert.equal((await run('push-ign')).counts.created, 1);
    assert.equal((await pair.local.request('DELETE', `/scim/v2/Users/${d.id}`)).status, 204);
    assert.equal((await pair.local.request('DELETE', `/scim/v2/Users/${i.id}`)).status, 204);
    // The other flow's user is out of this flow's scope: skipped.
    const rd = await run('push-deact');
    assert.deepEqual(rd.counts, { created: 0, updated: 0, deleted: 1, skipped: 1, failed: 0 });
    assert.deepEqual(
      (await runner.runItems('default', 'push-deact', rd.id)).map((x) => x.action),
      ['deactivate'],
    );
    const ri = await run('push-ign');
    assert.deepEqual(ri.counts, { created: 0, updated: 0, deleted: 0, skipped: 2, failed: 0 });
    const remote = (await listAll(pair.remote, 'Users')).filter((u) => String(u.userName).startsWith('del-'));
    assert.deepEqual(summary(remote), [
      { userName: 'del-d', displayName: undefined, active: false, externalId: undefined },
      { userName: 'del-i', displayName: undefined, active: true, externalId: undefined },
    ]);
    assert.equal((await links(pair, 'push-ign')).length, 0);
    // Deactivated once: the next run does not send it again.
    pair.sent.length = 0;
    const again = await run('push-deact');
    assert.deepEqual(again.counts, { created: 0, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    assert.deepEqual(
      pair.sent.filter((s) => !s.startsWith('GET')),
      [],
    );
  });

  test('usePut replaces the remote resource with PUT', async () => {
    const u = await create(pair.local, 'Users', { schemas: [USER], userName: 'put-1', displayName: 'P' });
    await addFlow(pair, {
      id: 'push-put',
      direction: 'push',
      mode: 'changes',
      filter: 'userName eq "put-1"',
      usePut: true,
    });
    await run('push-put');
    await patch(pair.local, `Users/${u.id}`, [{ op: 'replace', path: 'displayName', value: 'Q' }]);
    pair.sent.length = 0;
    const r = await run('push-put');
    assert.deepEqual(r.counts, { created: 0, updated: 1, deleted: 0, skipped: 0, failed: 0 });
    const remoteId = (await links(pair, 'push-put'))[0].remote_id;
    assert.deepEqual(
      pair.sent.filter((s) => !s.startsWith('GET')),
      [`PUT /Users/${remoteId}`],
    );
    const res = await pair.remote.request('GET', `/scim/v2/Users/${remoteId}`);
    assert.equal(res.body.displayName, 'Q');
  });
});
