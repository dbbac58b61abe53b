/**
 * The `scimd receiver ...` scenario run by receivers-cli-direct.test.ts and
 * receivers-cli-remote.test.ts (two files: each CLI run is a process of its own, and each file has
 * the runner's time budget). Feeds, clients and outbox rows are written with SQL.
 */
import assert from 'node:assert/strict';
import type { Queryable } from '../../src/store/db.ts';
import { failed, ok, parsed, scimd } from '../cli/run.ts';
import { fakeSet } from './receivers-fixtures.ts';

const SECRET = 'Bearer cli-secret-7f3a';

interface ReceiverJson {
  id: string;
  delivery: string;
  authorization?: string;
  paused: boolean;
  pollClientId?: string;
  pollPath?: string;
  state: { pending: number; delivered: number; failed: number; lastError?: string };
}

async function seed(q: Queryable): Promise<void> {
  await q.query(
    `INSERT INTO event_feeds (tenant_id, id, name, resource_types, form, position)
     VALUES ('default', 'f1', 'f1', ARRAY['User'], 'full', pg_current_xact_id())`,
  );
  await q.query(
    `INSERT INTO clients (tenant_id, id, name, scopes) VALUES ('default', 'poller', 'poller', ARRAY['events:poll'])`,
  );
}

async function seedOutbox(q: Queryable): Promise<void> {
  for (const [jti, state] of [
    ['j1', 'delivered'],
    ['j2', 'failed'],
    ['j3', 'pending'],
  ]) {
    await q.query(
      `INSERT INTO event_outbox (tenant_id, receiver_id, jti, txn, resource_type, resource_id, event_uris, set_jwt, state, last_error)
       VALUES ('default', 'hook', $1, 'txn', 'User', 'u1', ARRAY['urn:ietf:params:scim:event:prov:delete'], $2, $3, $4)`,
      [jti, fakeSet(jti), state, state === 'failed' ? 'invalid_key: unknown kid' : null],
    );
  }
}

/** Runs the scenario; `sql` runs statements on the store between commands (direct: own connection). */
export async function scenario(
  env: NodeJS.ProcessEnv,
  extra: string[],
  sql: (fn: (q: Queryable) => Promise<void>) => Promise<void>,
): Promise<void> {
  const run = (args: string[]) => scimd(['receiver', ...args, ...extra], { ...env, HOOK_AUTH: SECRET });
  await sql(seed);

  const hookRun = await run([
    'add',
    '--id',
    'hook',
    '--name',
    'Hook',
    '--feed',
    'f1',
    '--delivery',
    'push',
    '--endpoint-url',
    'https://r.example/events',
    '--authorization-env',
    'HOOK_AUTH',
    '--max-attempts',
    '3',
    '--json',
  ]);
  const hook = parsed<ReceiverJson>(hookRun);
  assert.equal(hook.id, 'hook');
  assert.equal(hook.authorization, 'set');
  assert.ok(!hookRun.stdout.includes('cli-secret'));

  const pull = parsed<ReceiverJson>(
    await run([
      'add',
      '--id',
      'pull',
      '--name',
      'Pull',
      '--feed',
      'f1',
      '--delivery',
      'poll',
      '--poll-client',
      'poller',
      '--json',
    ]),
  );
  assert.equal(pull.pollClientId, 'poller');
  assert.equal(pull.pollPath, '/tenants/default/events/poll/pull');

  failed(
    await run([
      'add',
      '--name',
      'x',
      '--feed',
      'nope',
      '--delivery',
      'push',
      '--endpoint-url',
      'https://r.example',
    ]),
    'feedId nope is not a feed of tenant default',
  );
  const list = ok(await run(['list'])).split('\n');
  assert.match(list[0], /^ID +NAME +FEED +DELIVERY +TARGET +PENDING +DELIVERED +FAILED +PAUSED +LAST ERROR$/);
  assert.deepEqual(
    list.slice(1, 3).map((l) => l.split(/ {2,}/).slice(0, 5)),
    [
      ['hook', 'Hook', 'f1', 'push', 'https://r.example/events'],
      ['pull', 'Pull', 'f1', 'poll', 'poller'],
    ],
  );

  await sql(seedOutbox);
  const shown = ok(await run(['show', 'hook']));
  assert.match(shown, /^authorization +set$/m);
  assert.match(shown, /^pending +1$/m);
  assert.match(shown, /^failed +1$/m);
  assert.ok(!shown.includes('cli-secret'));

  const events = parsed<{ totalResults: number; entries: { jti: string; state: string; set?: string }[] }>(
    await run(['events', 'hook', '--state', 'failed', '--include-set', '--json']),
  );
  assert.equal(events.totalResults, 1);
  assert.deepEqual(
    events.entries.map((e) => [e.jti, e.state, e.set]),
    [['j2', 'failed', fakeSet('j2')]],
  );
  const table = ok(await run(['events', 'hook'])).split('\n');
  assert.match(table[0], /^SEQ +JTI +STATE +ATTEMPTS +RESOURCE +EVENTS +NEXT ATTEMPT +LAST ERROR$/);
  assert.match(table[2], /j2 +failed +0 +User\/u1 +prov:delete +- +invalid_key: unknown kid$/);
  assert.equal(table[4], '3 of 3 from 1');

  assert.deepEqual(parsed(await run(['retry', 'hook', '--json'])), { retried: 1 });
  const updated = parsed<ReceiverJson>(
    await run(['update', 'hook', '--pause', '--clear-authorization', '--json']),
  );
  assert.equal(updated.paused, true);
  assert.equal(updated.authorization, 'unset');
  assert.equal(updated.state.pending, 2);
  assert.deepEqual(parsed(await run(['remove', 'hook', '--json'])), {
    tenant: 'default',
    id: 'hook',
    deleted: true,
  });
}
