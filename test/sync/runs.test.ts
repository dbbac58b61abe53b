/**
 * Runs: one runner per flow across nodes (the lease), failed items recorded and retried next run
 * without blocking the others, a run stopped mid-way and a node that dies mid-run, each followed by
 * a run that converges with no duplicates; requested runs taken by the background pass.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ScimError } from '../../src/scim/errors.ts';
import {
  addFlow,
  create,
  links,
  listAll,
  runnerFor,
  settleChangeLog,
  startPair,
  USER,
  type Pair,
} from './engine-helpers.ts';

let pair: Pair;

before(async () => {
  pair = await startPair();
  // These tests stop or stall a run at a checkpoint (before the n-th item), which needs the items
  // to pass their checkpoints one at a time, each create its own POST (not Bulk); runs with several
  // items in flight and Bulk creates are in-flight.test.ts.
  await pair.local.app.db.query(
    `UPDATE sync_connections SET compat = '{"maxConcurrentRequests": 1, "disable": ["bulk"]}' WHERE tenant_id = 'default' AND id = 'remote'`,
  );
});
after(async () => {
  await pair.close();
});

async function localUsers(prefix: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++)
    await create(pair.local, 'Users', { schemas: [USER], userName: `${prefix}${i}` });
}

const remoteNames = async (prefix: string) =>
  (await listAll(pair.remote, 'Users')).map((u) => String(u.userName)).filter((n) => n.startsWith(prefix));

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

const retries = async (flowId: string) =>
  (
    await pair.local.app.db.query<{ key: string; attempts: number; last_error: string }>(
      "SELECT key, attempts, last_error FROM sync_retries WHERE tenant_id = 'default' AND flow_id = $1",
      [flowId],
    )
  ).rows;

describe('runs', () => {
  test('one runner per flow: a second runner (another node) is refused while the first holds the lease', async () => {
    await localUsers('l-', 3);
    await addFlow(pair, { id: 'lease', direction: 'push', mode: 'full', filter: 'userName sw "l-"' });
    const g = gate();
    const reached = gate();
    const a = runnerFor(pair, {
      node: 'node-a',
      onCheckpoint: async (done) => {
        if (done === 1) {
          reached.open();
          await g.wait;
        }
      },
    });
    const b = runnerFor(pair, { node: 'node-b' });
    const started = await a.startRun('default', 'lease', { trigger: 'manual' });
    assert.equal(started.run.state, 'running');
    await reached.wait;
    await assert.rejects(
      b.runFlow('default', 'lease'),
      (e: unknown) => e instanceof ScimError && e.status === 409,
    );
    await assert.rejects(
      a.runFlow('default', 'lease'),
      (e: unknown) => e instanceof ScimError && e.status === 409,
    );
    // A requested run is not taken by the other node while the lease is held.
    await pair.local.app.db.query(
      "UPDATE sync_flows SET run_requested = clock_timestamp(), run_requested_trigger = 'schedule' WHERE id = 'lease'",
    );
    assert.deepEqual(await b.runRequestedOnce(), []);
    const during = await a.getRun('default', 'lease', started.run.id);
    assert.equal(during?.state, 'running');
    assert.equal(during?.node, 'node-a');
    g.open();
    const done = await started.done;
    assert.equal(done.state, 'succeeded');
    assert.deepEqual(done.counts, { created: 3, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    assert.equal(done.done, 3);
    assert.equal(done.total, 3);
    assert.deepEqual(await remoteNames('l-'), ['l-1', 'l-2', 'l-3']);
    // The lease is free again; the request made during the run is still there, and node b takes it.
    const taken = await b.runRequestedOnce();
    assert.deepEqual(
      taken.map((r) => [r.flowId, r.trigger, r.state, r.node]),
      [['lease', 'schedule', 'succeeded', 'node-b']],
    );
    const flow = (
      await pair.local.app.db.query<{ lease_owner: string | null; run_requested: Date | null }>(
        "SELECT lease_owner, run_requested FROM sync_flows WHERE id = 'lease'",
      )
    ).rows[0];
    assert.deepEqual(flow, { lease_owner: null, run_requested: null });
  });

  test('failed items are recorded with their error and retried first by the next run; the others are not blocked', async () => {
    await localUsers('f-', 3);
    // The remote already has f-2 under another externalId: matching by externalId only, so the create conflicts.
    const blocker = await create(pair.remote, 'Users', {
      schemas: [USER],
      userName: 'f-2',
      externalId: 'someone-else',
    });
    await addFlow(pair, {
      id: 'fail',
      direction: 'push',
      mode: 'changes',
      filter: 'userName sw "f-"',
      matching: { attributes: ['externalId'] },
    });
    const runner = runnerFor(pair);
    // A changes flow reads the log up to the cluster's oldest open transaction (PostgreSQL): settle
    // first, or changes of earlier tests may fall in this run's window and count as skipped.
    await settleChangeLog(pair.local.app);
    const r = await runner.runFlow('default', 'fail');
    assert.equal(r.state, 'partial');
    assert.deepEqual(r.counts, { created: 2, updated: 0, deleted: 0, skipped: 0, failed: 1 });
    const items = await runner.runItems('default', 'fail', r.id);
    assert.deepEqual(items.map((i) => [i.action, i.outcome]).sort(), [
      ['create', 'done'],
      ['create', 'done'],
      ['skip', 'failed'],
    ]);
    const failed = items.find((i) => i.outcome === 'failed')!;
    assert.match(failed.error!, /^remote POST answered 409 uniqueness/);
    const f2 = (await listAll(pair.local, 'Users')).find((u) => u.userName === 'f-2')!;
    assert.equal(failed.localId, f2.id);
    let rows = await retries('fail');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].key, `User/${f2.id}`);
    assert.equal(rows[0].attempts, 1);
    // Still failing: attempts counted.
    await settleChangeLog(pair.local.app);
    const r2 = await runner.runFlow('default', 'fail');
    assert.deepEqual(r2.counts, { created: 0, updated: 0, deleted: 0, skipped: 0, failed: 1 });
    assert.equal((await retries('fail'))[0].attempts, 2);
    // The conflict goes away: the retry succeeds although f-2 did not change again.
    assert.equal((await pair.remote.request('DELETE', `/scim/v2/Users/${blocker.id}`)).status, 204);
    await settleChangeLog(pair.local.app);
    const r3 = await runner.runFlow('default', 'fail');
    assert.equal(r3.state, 'succeeded');
    assert.deepEqual(r3.counts, { created: 1, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    rows = await retries('fail');
    assert.deepEqual(rows, []);
    assert.deepEqual(await remoteNames('f-'), ['f-1', 'f-2', 'f-3']);
    const history = await runner.listRuns('default', 'fail');
    assert.deepEqual(
      history.map((h) => h.state),
      ['succeeded', 'partial', 'partial'],
    );
  });

  test('a run stopped after 2 items fails; the next run converges with no duplicates', async () => {
    await localUsers('k-', 5);
    await addFlow(pair, { id: 'kill', direction: 'push', mode: 'full', filter: 'userName sw "k-"' });
    const crashing = runnerFor(pair, {
      onCheckpoint: (done) => {
        if (done === 2) throw new Error('simulated crash');
      },
    });
    const r = await crashing.runFlow('default', 'kill');
    assert.equal(r.state, 'failed');
    assert.equal(r.error, 'simulated crash');
    assert.deepEqual(r.counts, { created: 2, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    assert.equal((await remoteNames('k-')).length, 2); // two of the five (local list order)
    const r2 = await runnerFor(pair).runFlow('default', 'kill');
    assert.equal(r2.state, 'succeeded');
    assert.deepEqual(r2.counts, { created: 3, updated: 0, deleted: 0, skipped: 2, failed: 0 });
    assert.deepEqual(await remoteNames('k-'), ['k-1', 'k-2', 'k-3', 'k-4', 'k-5']);
    assert.equal((await links(pair, 'kill')).length, 5);
  });

  test('a run stopped by its caller (signal, as Ctrl-C in scimd flow run) ends failed and frees the lease at once', async () => {
    await localUsers('i-', 5);
    await addFlow(pair, { id: 'intr', direction: 'push', mode: 'full', filter: 'userName sw "i-"' });
    const stop = new AbortController();
    const runner = runnerFor(pair, { leaseMs: 600_000 });
    const r = await runner.runFlow('default', 'intr', {
      signal: stop.signal,
      onProgress: (done) => {
        if (done === 2) stop.abort(new Error('interrupted (Ctrl-C)'));
      },
    });
    assert.equal(r.state, 'failed');
    assert.equal(r.error, 'the run was stopped: interrupted (Ctrl-C)');
    assert.deepEqual(r.counts, { created: 2, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    const lease = (
      await pair.local.app.db.query<{ lease_owner: string | null }>(
        "SELECT lease_owner FROM sync_flows WHERE tenant_id = 'default' AND id = 'intr'",
      )
    ).rows[0];
    assert.deepEqual(lease, { lease_owner: null });
    // Not 409 while a 10-minute lease runs out: the next run starts now and finishes the rest.
    const r2 = await runnerFor(pair).runFlow('default', 'intr');
    assert.equal(r2.state, 'succeeded');
    assert.deepEqual(r2.counts, { created: 3, updated: 0, deleted: 0, skipped: 2, failed: 0 });
    assert.deepEqual(await remoteNames('i-'), ['i-1', 'i-2', 'i-3', 'i-4', 'i-5']);
  });

  test('a node that dies mid-run: its run is abandoned when the lease expires, another node finishes, nothing duplicated', async () => {
    await localUsers('n-', 5);
    await addFlow(pair, { id: 'dead', direction: 'push', mode: 'full', filter: 'userName sw "n-"' });
    const hang = gate();
    const reached = gate();
    const dying = runnerFor(pair, {
      node: 'dying',
      leaseMs: 400,
      onCheckpoint: async (done) => {
        if (done === 2) {
          reached.open();
          await hang.wait;
        }
      },
    });
    const started = await dying.startRun('default', 'dead', { trigger: 'schedule' });
    await reached.wait;
    const other = runnerFor(pair, { node: 'other', leaseMs: 400 });
    await assert.rejects(
      other.runFlow('default', 'dead'),
      (e: unknown) => e instanceof ScimError && e.status === 409,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The background pass sweeps the dead run (abandoned, flow requested again) and runs the flow.
    const taken = await other.runRequestedOnce();
    assert.deepEqual(
      taken.map((r) => [r.flowId, r.trigger, r.state, r.counts.created]),
      [['dead', 'schedule', 'succeeded', 3]],
    );
    assert.deepEqual(await remoteNames('n-'), ['n-1', 'n-2', 'n-3', 'n-4', 'n-5']);
    // The stalled node wakes up: it has lost the lease and stops before writing anything.
    hang.open();
    const end = await started.done;
    assert.equal(end.state, 'abandoned');
    assert.equal(end.error, 'its node stopped before the end (lease expired)');
    assert.deepEqual(await remoteNames('n-'), ['n-1', 'n-2', 'n-3', 'n-4', 'n-5']);
    const history = await other.listRuns('default', 'dead');
    assert.deepEqual(
      history.map((h) => [h.node, h.state]),
      [
        ['other', 'succeeded'],
        ['dying', 'abandoned'],
      ],
    );
  });
});
