/**
 * Reconciliation: the plan of a push flow and of a pull flow is exact per attribute (with owners),
 * writes nothing, is stored as a dry run with planned items; applying it converges, after which
 * the plan is empty. Drift on an attribute the local side owns is repaired; drift on one the
 * remote owns is adopted, not reverted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FlowRunner } from '../../src/sync/engine/runner.ts';
import { planIsEmpty } from '../../src/sync/engine/reconcile.ts';
import {
  addFlow,
  create,
  links,
  listAll,
  patch,
  runnerFor,
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

const snapshot = async (prefix: string) =>
  (await listAll(pair.remote, 'Users'))
    .filter((u) => String(u.userName).startsWith(prefix))
    .map((u) => ({ userName: u.userName, displayName: u.displayName, title: u.title, nickName: u.nickName }));

describe('reconcile', () => {
  test('use cases 43, 44, 45: a push plan shows creates, updates per attribute and deletes; apply repairs drift; the next plan is empty', async () => {
    const r1 = await create(pair.local, 'Users', {
      schemas: [USER],
      userName: 'r-1',
      displayName: 'L1',
      title: 't1',
    });
    const r2 = await create(pair.local, 'Users', { schemas: [USER], userName: 'r-2', nickName: 'n2' });
    const r4 = await create(pair.local, 'Users', { schemas: [USER], userName: 'r-4' });
    await addFlow(pair, {
      id: 'rec',
      direction: 'push',
      mode: 'changes',
      filter: 'userName sw "r-"',
      authority: { remote: ['title'], initial: ['title'] },
    });
    assert.equal((await runner.runFlow('default', 'rec')).counts.created, 3);
    const link = async (localId: string) =>
      (await links(pair, 'rec')).find((l) => l.local_id === localId)!.remote_id;
    const rr1 = await link(r1.id);
    const rr2 = await link(r2.id);
    const rr4 = await link(r4.id);
    // Drift behind this node's back, a local change, a new local user and a local delete.
    await patch(pair.remote, `Users/${rr1}`, [
      { op: 'replace', path: 'displayName', value: 'drifted' },
      { op: 'replace', path: 'title', value: 'remote title' },
    ]);
    await patch(pair.local, `Users/${r2.id}`, [{ op: 'replace', path: 'nickName', value: 'n2b' }]);
    const r3 = await create(pair.local, 'Users', { schemas: [USER], userName: 'r-3', displayName: 'L3' });
    assert.equal((await pair.local.request('DELETE', `/scim/v2/Users/${r4.id}`)).status, 204);
    const before = await snapshot('r-');

    const plan = await runner.plan('default', 'rec');
    assert.equal(plan.run.state, 'succeeded');
    assert.equal(plan.run.dryRun, true);
    assert.deepEqual(plan.creates, [
      {
        resourceType: 'User',
        localId: r3.id,
        attributes: [
          { path: 'displayName', local: 'L3', owner: 'local' },
          { path: 'userName', local: 'r-3', owner: 'local' },
        ],
      },
    ]);
    assert.deepEqual(
      plan.updates.sort((a, b) => (a.localId < b.localId ? -1 : 1)),
      [
        {
          resourceType: 'User',
          localId: r1.id,
          remoteId: rr1,
          attributes: [{ path: 'displayName', local: 'L1', remote: 'drifted', owner: 'local' }],
        },
        {
          resourceType: 'User',
          localId: r2.id,
          remoteId: rr2,
          attributes: [{ path: 'nickName', local: 'n2b', remote: 'n2', owner: 'local' }],
        },
      ].sort((a, b) => (a.localId < b.localId ? -1 : 1)),
    );
    assert.deepEqual(plan.deletes, [
      { resourceType: 'User', localId: r4.id, remoteId: rr4, action: 'delete' },
    ]);
    assert.deepEqual(plan.links, []);
    assert.deepEqual(plan.failed, []);
    // A dry run writes nothing but itself.
    assert.deepEqual(await snapshot('r-'), before);
    const items = await runner.runItems('default', 'rec', plan.run.id);
    assert.deepEqual(
      items.map((i) => i.outcome),
      ['planned', 'planned', 'planned', 'planned'],
    );
    assert.deepEqual(items.map((i) => i.action).sort(), ['create', 'delete', 'update', 'update']);
    assert.equal((await links(pair, 'rec')).length, 3);

    // Apply: a full comparison run. Then the plan is empty.
    const applied = await runner.runFlow('default', 'rec', { full: true });
    assert.equal(applied.state, 'succeeded');
    assert.deepEqual(applied.counts, { created: 1, updated: 2, deleted: 1, skipped: 0, failed: 0 });
    assert.deepEqual(await snapshot('r-'), [
      { userName: 'r-1', displayName: 'L1', title: 'remote title', nickName: undefined },
      { userName: 'r-2', displayName: undefined, title: undefined, nickName: 'n2b' },
      { userName: 'r-3', displayName: 'L3', title: undefined, nickName: undefined },
    ]);
    const again = await runner.plan('default', 'rec');
    assert.equal(planIsEmpty(again), true);
    // Applying again changes nothing (idempotent).
    const twice = await runner.runFlow('default', 'rec', { full: true });
    assert.deepEqual(twice.counts, { created: 0, updated: 0, deleted: 0, skipped: 3, failed: 0 });
  });

  test('a pull plan compares remote records with local resources; apply, then the plan is empty', async () => {
    const a = await create(pair.remote, 'Users', {
      schemas: [USER],
      userName: 'q-a',
      displayName: 'A',
      title: 'ta',
    });
    await create(pair.local, 'Users', {
      schemas: [USER],
      userName: 'q-a',
      displayName: 'local A',
      title: 'ta',
    });
    const b = await create(pair.remote, 'Users', { schemas: [USER], userName: 'q-b' });
    await addFlow(pair, {
      id: 'rec-pull',
      direction: 'pull',
      mode: 'delta',
      filter: 'userName sw "q-"',
      authority: { local: ['title'] },
    });
    const plan = await runner.plan('default', 'rec-pull');
    const localA = (await listAll(pair.local, 'Users')).find((u) => u.userName === 'q-a')!;
    assert.deepEqual(plan.creates, [
      {
        resourceType: 'User',
        remoteId: b.id,
        attributes: [{ path: 'userName', remote: 'q-b', owner: 'remote' }],
      },
    ]);
    assert.deepEqual(plan.updates, [
      {
        resourceType: 'User',
        localId: localA.id,
        remoteId: a.id,
        attributes: [{ path: 'displayName', local: 'local A', remote: 'A', owner: 'remote' }],
      },
    ]);
    assert.deepEqual(plan.deletes, []);
    const applied = await runner.runFlow('default', 'rec-pull', { full: true });
    assert.deepEqual(applied.counts, { created: 1, updated: 1, deleted: 0, skipped: 0, failed: 0 });
    assert.equal(planIsEmpty(await runner.plan('default', 'rec-pull')), true);
  });
});
