/**
 * A `changes` push reads the change log up to the oldest transaction still open anywhere in the
 * PostgreSQL cluster. A write committed above that position is the next window's: the runner must
 * come back for it once the position moves on, not wait for another trigger (use case 15: a local
 * change is pushed within seconds). The open transaction needs a second connection, so this file
 * always runs on PostgreSQL: the server of DATABASE_URL, or the local one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { FlowRunner } from '../../src/sync/engine/runner.ts';
import type { Pair } from './engine-helpers.ts';

process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const { addFlow, create, listAll, runnerFor, settleChangeLog, startPair, USER } =
  await import('./engine-helpers.ts');

let pair: Pair;
let runner: FlowRunner;
let late: pg.Client;

before(async () => {
  pair = await startPair();
  assert.equal(pair.local.app.db.kind, 'postgres');
  runner = runnerFor(pair);
  late = new pg.Client({ connectionString: pair.local.app.config.databaseUrl });
  await late.connect();
});
after(async () => {
  await runner?.stop();
  await late?.end();
  await pair?.close();
});

async function requested(): Promise<{ at: Date | null; trigger: string | null }> {
  const res = await pair.local.app.db.query<{ at: Date | null; trigger: string | null }>(
    `SELECT run_requested AS at, run_requested_trigger AS trigger FROM sync_flows WHERE tenant_id = 'default' AND id = 'p'`,
  );
  return res.rows[0];
}

test('use case 15: a write the window could not include yet is pushed by a catch-up run, once the open transaction ends', async () => {
  await addFlow(pair, { id: 'p', direction: 'push', mode: 'changes' });
  await create(pair.local, 'Users', { schemas: [USER], userName: 'cu-first' });
  await settleChangeLog(pair.local.app);
  // The first run has no position yet: a full push, which starts the position.
  assert.equal((await runner.runFlow('default', 'p')).counts.created, 1);

  // Another session's transaction (it holds an xid) stays open while a user is written and the flow runs.
  await late.query('BEGIN');
  await late.query('SELECT pg_current_xact_id()');
  await create(pair.local, 'Users', { schemas: [USER], userName: 'cu-second' });
  const held = await runner.runFlow('default', 'p');
  assert.deepEqual([held.state, held.counts.created], ['succeeded', 0]);
  assert.deepEqual(
    (await listAll(pair.remote, 'Users')).map((u) => u.userName),
    ['cu-first'],
  );
  // While the transaction is open, the runner only watches the position: no request, no run.
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  assert.deepEqual(await requested(), { at: null, trigger: null });

  await late.query('COMMIT');
  let req = await requested();
  for (let i = 0; i < 40 && req.at === null; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    req = await requested();
  }
  assert.equal(req.trigger, 'change', 'the flow is requested again once the position moved on');
  const [caughtUp] = await runner.runRequestedOnce();
  assert.deepEqual([caughtUp.state, caughtUp.trigger, caughtUp.counts.created], ['succeeded', 'change', 1]);
  assert.deepEqual(
    (await listAll(pair.remote, 'Users')).map((u) => u.userName),
    ['cu-first', 'cu-second'],
  );
  // Nothing is left above the position: no further request.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.deepEqual(await requested(), { at: null, trigger: null });
});
