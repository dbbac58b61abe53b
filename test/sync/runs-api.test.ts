/**
 * Admin API of sync runs: start (202 running, or 200 finished with wait), 409 while running,
 * history, one run with its items paged, the plan; exact statuses and bodies, 404s and 400s.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addFlow, create, listAll, startPair, USER, type Pair } from './engine-helpers.ts';

let pair: Pair;
const base = '/admin/v1/tenants/default/flows';

before(async () => {
  pair = await startPair();
  for (let i = 1; i <= 3; i++) await create(pair.local, 'Users', { schemas: [USER], userName: `api-${i}` });
  await addFlow(pair, { id: 'api', direction: 'push', mode: 'full', filter: 'userName sw "api-"' });
});
after(async () => {
  await pair.close();
});

describe('admin API: runs', () => {
  test('plan, run with wait, history, one run with paged items', async () => {
    const plan = await pair.local.request('POST', `${base}/api/plan`);
    assert.equal(plan.status, 200);
    assert.equal(plan.body.flowId, 'api');
    assert.equal(plan.body.direction, 'push');
    assert.equal(plan.body.run.dryRun, true);
    assert.equal(plan.body.run.state, 'succeeded');
    assert.deepEqual(
      plan.body.creates
        .map((c: { attributes: { path: string; local: string }[] }) => c.attributes[0].local)
        .sort(),
      ['api-1', 'api-2', 'api-3'],
    );
    assert.deepEqual(
      [plan.body.updates, plan.body.deletes, plan.body.links, plan.body.failed],
      [[], [], [], []],
    );
    assert.equal((await listAll(pair.remote, 'Users')).length, 0);

    const run = await pair.local.request('POST', `${base}/api/runs`, { body: { wait: true } });
    assert.equal(run.status, 200);
    assert.equal(run.body.state, 'succeeded');
    assert.equal(run.body.trigger, 'api');
    assert.equal(run.body.mode, 'full');
    assert.equal(run.body.dryRun, false);
    assert.deepEqual(run.body.counts, { created: 3, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    assert.equal(run.body.done, 3);
    assert.equal(run.body.total, 3);
    assert.equal(typeof run.body.rate, 'number');
    assert.equal((await listAll(pair.remote, 'Users')).length, 3);

    const history = await pair.local.request('GET', `${base}/api/runs`);
    assert.equal(history.status, 200);
    assert.deepEqual(
      history.body.runs.map((r: { id: string; dryRun: boolean }) => [r.id, r.dryRun]),
      [
        [run.body.id, false],
        [plan.body.run.id, true],
      ],
    );
    const page1 = await pair.local.request('GET', `${base}/api/runs/${run.body.id}?count=2`);
    assert.equal(page1.status, 200);
    assert.equal(page1.body.id, run.body.id);
    assert.deepEqual(
      page1.body.items.map((i: { seq: number; action: string; outcome: string }) => [
        i.seq,
        i.action,
        i.outcome,
      ]),
      [
        [1, 'create', 'done'],
        [2, 'create', 'done'],
      ],
    );
    assert.equal(page1.body.nextAfter, 2);
    const page2 = await pair.local.request('GET', `${base}/api/runs/${run.body.id}?count=2&after=2`);
    assert.deepEqual(
      page2.body.items.map((i: { seq: number }) => i.seq),
      [3],
    );
    assert.equal(page2.body.nextAfter, undefined);
  });

  test('202 with the running run; 409 while it runs; errors are SCIM errors', async () => {
    const started = await pair.local.request('POST', `${base}/api/runs`, { body: {} });
    assert.equal(started.status, 202);
    assert.equal(started.body.state, 'running');
    const busy = await pair.local.request('POST', `${base}/api/runs`, { body: { wait: true } });
    assert.equal(busy.status, 409);
    assert.equal(busy.body.status, '409');
    // Wait for the background run to end.
    for (let i = 0; i < 200; i++) {
      const r = await pair.local.request('GET', `${base}/api/runs/${started.body.id}`);
      if (r.body.state !== 'running') {
        assert.equal(r.body.state, 'succeeded');
        assert.deepEqual(r.body.counts, { created: 0, updated: 0, deleted: 0, skipped: 3, failed: 0 });
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.equal((await pair.local.request('POST', `${base}/nope/runs`, { body: {} })).status, 404);
    assert.equal((await pair.local.request('GET', `${base}/nope/runs`)).status, 404);
    assert.equal((await pair.local.request('GET', `${base}/api/runs/no-such-run`)).status, 404);
    const bad = await pair.local.request('POST', `${base}/api/runs`, { body: { dryrun: true } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.scimType, 'invalidValue');
    assert.equal((await pair.local.request('POST', `${base}/api/plan`, { token: false })).status, 401);
  });
});
