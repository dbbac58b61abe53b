/**
 * Pull flows from a second scimd on loopback: full pulls with deletes, authority on merge, matching
 * of existing local resources, groups, delta with the remote's token, and delta by watermark
 * against a remote whose delta endpoints answer 404. Both sides' final states asserted exactly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FlowRunner } from '../../src/sync/engine/runner.ts';
import {
  addFlow,
  create,
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
let noDelta: FlowRunner;

before(async () => {
  pair = await startPair();
  runner = runnerFor(pair);
  noDelta = runnerFor(pair, { block: /\/\.delta(Token)?$/ });
});
after(async () => {
  await pair.close();
});

const view = (users: Record<string, unknown>[]) =>
  users.map((u) => ({
    userName: u.userName,
    displayName: u.displayName,
    title: u.title,
    active: u.active,
    externalId: u.externalId,
  }));

const state = async (flowId: string) =>
  (
    await pair.local.app.db.query<{ state: Record<string, unknown> }>(
      "SELECT state FROM sync_flows WHERE tenant_id = 'default' AND id = $1",
      [flowId],
    )
  ).rows[0].state;

describe('pull', () => {
  test('use case 6: a full pull copies the remote scope, groups with local member ids, then deletes what left', async () => {
    const a = await create(pair.remote, 'Users', {
      schemas: [USER],
      userName: 'f-a',
      externalId: 'xa',
      title: 'T',
    });
    const b = await create(pair.remote, 'Users', { schemas: [USER], userName: 'f-b', displayName: 'B' });
    await create(pair.remote, 'Users', { schemas: [USER], userName: 'other' });
    await create(pair.remote, 'Groups', {
      schemas: [GROUP],
      displayName: 'f-g',
      members: [{ value: a.id }, { value: b.id }],
    });
    await addFlow(pair, { id: 'pull-full', direction: 'pull', mode: 'full', filter: 'userName sw "f-"' });
    const r = await runner.runFlow('default', 'pull-full');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.counts, { created: 2, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    assert.equal(r.total, 2);
    let local = await listAll(pair.local, 'Users');
    assert.deepEqual(view(local), [
      { userName: 'f-a', displayName: undefined, title: 'T', active: undefined, externalId: 'xa' },
      { userName: 'f-b', displayName: 'B', title: undefined, active: undefined, externalId: undefined },
    ]);
    assert.notEqual(local[0].id, a.id); // new local ids, linked
    assert.deepEqual((await links(pair, 'pull-full')).map((l) => l.remote_id).sort(), [a.id, b.id].sort());
    // Groups too: the group's members are the linked local users.
    await pair.local.app.db.query(
      `UPDATE sync_flows SET resource_types = ARRAY['User', 'Group'], filter = NULL WHERE id = 'pull-full'`,
    );
    const r2 = await runner.runFlow('default', 'pull-full');
    assert.deepEqual(r2.counts, { created: 2, updated: 0, deleted: 0, skipped: 2, failed: 0 }); // created: 'other' and the group; f-a and f-b unchanged
    local = await listAll(pair.local, 'Users');
    assert.deepEqual(
      local.map((u) => u.userName),
      ['f-a', 'f-b', 'other'],
    );
    const [g] = await listAll(pair.local, 'Groups', 'displayName');
    assert.deepEqual(
      (g.members as { value: string }[]).map((m) => m.value).sort(),
      [local[0].id, local[1].id].sort(),
    );
    // The remote deletes b and changes a: the next full pull deletes b locally and updates a.
    assert.equal((await pair.remote.request('DELETE', `/scim/v2/Users/${b.id}`)).status, 204);
    await patch(pair.remote, `Users/${a.id}`, [{ op: 'replace', path: 'title', value: 'T2' }]);
    const r3 = await runner.runFlow('default', 'pull-full');
    assert.equal(r3.state, 'succeeded');
    // f-a updated, f-b deleted (which removes it from the local group too), 'other' and the group unchanged.
    assert.deepEqual(r3.counts, { created: 0, updated: 1, deleted: 1, skipped: 2, failed: 0 });
    assert.deepEqual(view(await listAll(pair.local, 'Users')), [
      { userName: 'f-a', displayName: undefined, title: 'T2', active: undefined, externalId: 'xa' },
      {
        userName: 'other',
        displayName: undefined,
        title: undefined,
        active: undefined,
        externalId: undefined,
      },
    ]);
    const [g2] = await listAll(pair.local, 'Groups', 'displayName');
    assert.deepEqual(
      (g2.members as { value: string }[]).map((m) => m.value),
      [local[0].id],
    );
    // Local writes of the pull carry the flow's client id (push flows skip them).
    const res = await pair.local.app.db.query<{ client_id: string }>(
      "SELECT DISTINCT client_id FROM changes WHERE tenant_id = 'default'",
    );
    assert.deepEqual(
      res.rows.map((x) => x.client_id),
      ['sync:pull-full'],
    );
  });

  test('use case 42: a pull merges remote-owned attributes and never overwrites a local-owned one; matching by userName links an existing local user', async () => {
    const mine = await create(pair.local, 'Users', {
      schemas: [USER],
      userName: 'auth-x',
      displayName: 'Local Name',
      title: 'local',
    });
    const theirs = await create(pair.remote, 'Users', {
      schemas: [USER],
      userName: 'auth-x',
      displayName: 'Remote Name',
      title: 'remote',
      nickName: 'nick',
    });
    await addFlow(pair, {
      id: 'pull-auth',
      direction: 'pull',
      mode: 'full',
      filter: 'userName eq "auth-x"',
      authority: { default: 'local', remote: ['title', 'nickName'] },
    });
    const r = await runner.runFlow('default', 'pull-auth');
    assert.deepEqual(r.counts, { created: 0, updated: 1, deleted: 0, skipped: 0, failed: 0 });
    const items = await runner.runItems('default', 'pull-auth', r.id);
    assert.deepEqual(
      items.map((i) => [i.action, i.localId, i.remoteId, i.attributes]),
      [['update', mine.id, theirs.id, ['nickName', 'title']]],
    );
    const got = (await pair.local.request('GET', `/scim/v2/Users/${mine.id}`)).body;
    assert.equal(got.displayName, 'Local Name');
    assert.equal(got.title, 'remote');
    assert.equal(got.nickName, 'nick');
    assert.deepEqual(await links(pair, 'pull-auth'), [{ local_id: mine.id, remote_id: theirs.id }]);
    // The remote renames the displayName (not its attribute) and drops nickName (its attribute).
    await patch(pair.remote, `Users/${theirs.id}`, [
      { op: 'replace', path: 'displayName', value: 'Other' },
      { op: 'remove', path: 'nickName' },
    ]);
    const r2 = await runner.runFlow('default', 'pull-auth');
    assert.deepEqual(r2.counts, { created: 0, updated: 1, deleted: 0, skipped: 0, failed: 0 });
    const got2 = (await pair.local.request('GET', `/scim/v2/Users/${mine.id}`)).body;
    assert.equal(got2.displayName, 'Local Name');
    assert.equal(got2.nickName, undefined);
    assert.equal(got2.title, 'remote');
  });

  test('use case 9: delta pull with the remote token applies creates, updates and deletes', async () => {
    const d1 = await create(pair.remote, 'Users', { schemas: [USER], userName: 'd-1', displayName: 'one' });
    const d2 = await create(pair.remote, 'Users', { schemas: [USER], userName: 'd-2' });
    await addFlow(pair, { id: 'pull-delta', direction: 'pull', mode: 'delta', filter: 'userName sw "d-"' });
    // The token the first run takes is above these creates (else the next delta brings them again:
    // at least once, counted as skipped), whatever another test keeps open on the cluster.
    await settleChangeLog(pair.remote.app);
    const r = await runner.runFlow('default', 'pull-delta');
    assert.deepEqual(r.counts, { created: 2, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    const st = await state('pull-delta');
    assert.equal(st.deltaMethod, 'token');
    assert.equal(typeof (st.deltaTokens as Record<string, string>).User, 'string');
    await patch(pair.remote, `Users/${d1.id}`, [{ op: 'replace', path: 'displayName', value: 'uno' }]);
    assert.equal((await pair.remote.request('DELETE', `/scim/v2/Users/${d2.id}`)).status, 204);
    await create(pair.remote, 'Users', { schemas: [USER], userName: 'd-3' });
    pair.sent.length = 0;
    await settleChangeLog(pair.remote.app); // the remote's writes are inside its delta window
    const r2 = await runner.runFlow('default', 'pull-delta');
    assert.equal(r2.state, 'succeeded');
    assert.deepEqual(r2.counts, { created: 1, updated: 1, deleted: 1, skipped: 0, failed: 0 });
    assert.deepEqual(pair.sent, ['POST /Users/.delta']);
    const local = (await listAll(pair.local, 'Users')).filter((u) => String(u.userName).startsWith('d-'));
    assert.deepEqual(
      local.map((u) => [u.userName, u.displayName]),
      [
        ['d-1', 'uno'],
        ['d-3', undefined],
      ],
    );
    // Nothing new: one delta request, nothing written, the next token kept.
    pair.sent.length = 0;
    await settleChangeLog(pair.remote.app); // the remote's writes are inside its delta window
    const r3 = await runner.runFlow('default', 'pull-delta');
    assert.deepEqual(r3.counts, { created: 0, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    assert.deepEqual(pair.sent, ['POST /Users/.delta']);
  });

  test('use case 9: delta by meta.lastModified watermark when the remote has no delta query, with a full pull every fullEverySeconds to catch deletes', async () => {
    const w1 = await create(pair.remote, 'Users', { schemas: [USER], userName: 'w-1' });
    const w2 = await create(pair.remote, 'Users', { schemas: [USER], userName: 'w-2' });
    await addFlow(pair, {
      id: 'pull-wm',
      direction: 'pull',
      mode: 'delta',
      filter: 'userName sw "w-"',
      fullEverySeconds: 3600,
    });
    const r = await noDelta.runFlow('default', 'pull-wm');
    assert.deepEqual(r.counts, { created: 2, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    const st = await state('pull-wm');
    assert.equal(st.deltaMethod, 'watermark');
    assert.equal(
      (st.watermarks as Record<string, string>).User,
      (await pair.remote.request('GET', `/scim/v2/Users/${w2.id}`)).body.meta.lastModified,
    );
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await patch(pair.remote, `Users/${w1.id}`, [{ op: 'replace', path: 'title', value: 'changed' }]);
    assert.equal((await pair.remote.request('DELETE', `/scim/v2/Users/${w2.id}`)).status, 204);
    pair.sent.length = 0;
    const r2 = await noDelta.runFlow('default', 'pull-wm');
    assert.deepEqual(r2.counts, { created: 0, updated: 1, deleted: 0, skipped: 0, failed: 0 });
    assert.equal(pair.sent.length, 1);
    assert.match(pair.sent[0], /^GET \/Users$/);
    // The delete is invisible to a watermark: the periodic full pull (due now) catches it.
    await pair.local.app.db.query(
      `UPDATE sync_flows SET state = jsonb_set(state, '{lastFullAt}', '"2000-01-01T00:00:00.000Z"') WHERE id = 'pull-wm'`,
    );
    const r3 = await noDelta.runFlow('default', 'pull-wm');
    assert.deepEqual(r3.counts, { created: 0, updated: 0, deleted: 1, skipped: 1, failed: 0 });
    const local = (await listAll(pair.local, 'Users')).filter((u) => String(u.userName).startsWith('w-'));
    assert.deepEqual(
      local.map((u) => [u.userName, u.title]),
      [['w-1', 'changed']],
    );
  });

  test('onDelete deactivate on pull sets the local user inactive and keeps it', async () => {
    const v = await create(pair.remote, 'Users', { schemas: [USER], userName: 'v-1', active: true });
    await addFlow(pair, {
      id: 'pull-deact',
      direction: 'pull',
      mode: 'full',
      filter: 'userName eq "v-1"',
      onDelete: 'deactivate',
    });
    assert.equal((await runner.runFlow('default', 'pull-deact')).counts.created, 1);
    assert.equal((await pair.remote.request('DELETE', `/scim/v2/Users/${v.id}`)).status, 204);
    const r = await runner.runFlow('default', 'pull-deact');
    assert.deepEqual(r.counts, { created: 0, updated: 0, deleted: 1, skipped: 0, failed: 0 });
    const local = (await listAll(pair.local, 'Users')).filter((u) => u.userName === 'v-1');
    assert.deepEqual(view(local), [
      { userName: 'v-1', displayName: undefined, title: undefined, active: false, externalId: undefined },
    ]);
    const r2 = await runner.runFlow('default', 'pull-deact');
    assert.deepEqual(r2.counts, { created: 0, updated: 0, deleted: 0, skipped: 1, failed: 0 });
  });
});
