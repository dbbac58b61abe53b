/**
 * `scimd flow run|plan|history` and `scimd push|pull` (CLI) against a real remote scimd (an
 * in-process app listening on loopback): direct mode on a scratch store (embedded, or a scratch
 * PostgreSQL database with DATABASE_URL) and remote mode (--url against a running node). Runs
 * create the remote resources, the history counts them, the plan shows a remote drift attribute by
 * attribute, a one-off twice does not duplicate, unknown flows fail with one line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.ts';
import type { Plan } from '../../src/sync/engine/reconcile.ts';
import type { RunItemView, RunView } from '../../src/sync/engine/runner.ts';
import { startTestApp, TOKEN, type TestApp } from '../helpers/app.ts';
import { cleanEnv, failed, ok, parsed, scimd, scratchDatabase, type Run } from '../cli/run.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

interface Stored {
  id: string;
  userName: string;
  displayName?: string;
}

async function listen(t: TestApp): Promise<string> {
  await t.app.server.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`;
}

async function users(app: App): Promise<Stored[]> {
  const res = await app.server.inject({
    method: 'GET',
    url: '/scim/v2/Users?count=1000',
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.statusCode, 200);
  const list = (JSON.parse(res.body) as { Resources?: Stored[] }).Resources ?? [];
  return list.sort((a, b) => a.userName.localeCompare(b.userName));
}

async function createUser(app: App, userName: string, displayName: string): Promise<string> {
  const res = await app.server.inject({
    method: 'POST',
    url: '/scim/v2/Users',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/scim+json' },
    payload: JSON.stringify({ schemas: [USER], userName, displayName }),
  });
  assert.equal(res.statusCode, 201, res.body);
  return (JSON.parse(res.body) as { id: string }).id;
}

async function replace(app: App, id: string, path: string, value: string): Promise<void> {
  const res = await app.server.inject({
    method: 'PATCH',
    url: `/scim/v2/Users/${id}`,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/scim+json' },
    payload: JSON.stringify({
      schemas: [PATCH],
      Operations: [{ op: 'replace', path, value }],
    }),
  });
  assert.equal(res.statusCode, 200, res.body);
}

/** Local users, a connection to the remote, and a full push flow of the `cli-` users. */
async function seed(app: App, remoteBase: string): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const [u, d] of [
    ['cli-1', 'One'],
    ['cli-2', 'Two'],
    ['cli-3', 'Three'],
    ['one-1', 'Off One'],
    ['one-2', 'Off Two'],
  ])
    ids[u] = await createUser(app, u, d);
  await app.connections.create('default', {
    id: 'remote',
    baseUrl: `${remoteBase}/scim/v2`,
    auth: { type: 'bearer', token: TOKEN },
  });
  await app.flows.create('default', {
    id: 'push',
    connectionId: 'remote',
    direction: 'push',
    mode: 'full',
    resourceTypes: ['User'],
    filter: 'userName sw "cli-"',
    matching: { attributes: ['userName'] },
  });
  return ids;
}

const strip = (r: RunView) => {
  const { id: _i, started: _s, heartbeat: _h, finished: _f, rate: _r, node: _n, ...rest } = r;
  return rest;
};

/**
 * The scenario on either mode: `run(args)` runs the CLI, `localUsers()` reads the local side.
 * `whole`: every command (remote mode, about 0.5 s a start); without it the ones with their own
 * direct-mode code (each direct start opens the store: about 3 s on the embedded one).
 */
async function scenario(
  run: (args: string[]) => Promise<Run>,
  remote: TestApp,
  ids: Record<string, string>,
  localUsers: () => Promise<Stored[]>,
  trigger: 'manual' | 'api',
  /** Remote mode: the local node, in this process (the whole scenario runs). */
  local?: App,
): Promise<void> {
  const whole = local !== undefined;
  // The run: the three users on the remote.
  const first = parsed<RunView>(await run(['flow', 'run', 'push', '--json']));
  assert.deepEqual(strip(first), {
    tenant: 'default',
    flowId: 'push',
    trigger,
    mode: 'full',
    dryRun: false,
    state: 'succeeded',
    done: 3,
    total: 3,
    counts: { created: 3, updated: 0, deleted: 0, skipped: 0, failed: 0 },
  });
  const onRemote = await users(remote.app);
  assert.deepEqual(
    onRemote.map((u) => [u.userName, u.displayName]),
    [
      ['cli-1', 'One'],
      ['cli-2', 'Two'],
      ['cli-3', 'Three'],
    ],
  );

  // Drift on the remote: the plan shows the one attribute to put back, exactly.
  await replace(remote.app, onRemote[0].id, 'displayName', 'Drifted');
  const plan = parsed<Plan>(
    await run(whole ? ['flow', 'plan', 'push', '--json'] : ['flow', 'run', 'push', '--dry-run', '--json']),
  );
  assert.equal(plan.flowId, 'push');
  assert.equal(plan.direction, 'push');
  assert.deepEqual(plan.updates, [
    {
      resourceType: 'User',
      localId: ids['cli-1'],
      remoteId: onRemote[0].id,
      attributes: [{ path: 'displayName', local: 'One', remote: 'Drifted', owner: 'local' }],
    },
  ]);
  assert.deepEqual([plan.creates, plan.deletes, plan.failed], [[], [], []]);
  if (whole) {
    // The same plan for people: one row per updated attribute.
    const text = ok(await run(['flow', 'plan', 'push']));
    assert.match(text, /^plan +0 to create, 1 to update, 0 to delete, 0 to link, 0 failed$/m);
    assert.match(
      text,
      new RegExp(
        `^update +User +${ids['cli-1']} +${onRemote[0].id} +displayName +"One" +"Drifted" +local$`,
        'm',
      ),
    );
    assert.match(text, /^ACTION +TYPE +LOCAL ID +REMOTE ID +ATTRIBUTE +LOCAL +REMOTE +OWNER$/m);
  }

  // History, newest first, with exact counts; one run with its items.
  const history = parsed<RunView[]>(await run(['flow', 'history', 'push', '--json']));
  const drift = [true, 'succeeded', trigger, 0, 1, 2, 3];
  assert.deepEqual(
    history.map((r) => [
      r.dryRun,
      r.state,
      r.trigger,
      r.counts.created,
      r.counts.updated,
      r.counts.skipped,
      r.done,
    ]),
    whole
      ? [drift, drift, [false, 'succeeded', trigger, 3, 0, 0, 3]]
      : [drift, [false, 'succeeded', trigger, 3, 0, 0, 3]],
  );
  assert.equal(history[whole ? 2 : 1].id, first.id);
  assert.equal(history[whole ? 1 : 0].id, plan.run.id);
  if (whole) await shownRun(run, first, ids, onRemote);
  if (whole) {
    // For people, with --limit: the two newest runs only.
    const table = ok(await run(['flow', 'history', 'push', '--limit', '2']));
    assert.equal(table.trimEnd().split('\n').length, 3);
    assert.match(
      table,
      new RegExp(`^${history[1].id} +\\S+ +${trigger} +full \\(dry\\) +succeeded +3/3 +0 +1 +0 +2 +0$`, 'm'),
    );
    assert.match(
      table,
      /^RUN +STARTED +TRIGGER +MODE +STATE +DONE +CREATED +UPDATED +DELETED +SKIPPED +FAILED$/m,
    );
  }
  await oneOffs(run, remote, ids, local);

  // Errors: one line on stderr, exit non-zero.
  failed(await run(['flow', 'run', 'nope']), 'No flow nope in tenant default');

  // The local side of the pull, read last (direct mode: the CLI has released the store).
  assert.deepEqual(
    (await localUsers()).map((u) => [u.userName, u.displayName]),
    [
      ['cli-1', 'One'],
      ['cli-2', 'Two'],
      ['cli-3', 'Three'],
      [local ? 'one-1b' : 'one-1', 'Off One'],
      ['one-2', 'Off Two'],
      ['rem-1', 'Remote One'],
    ],
  );
}

async function shownRun(
  run: (args: string[]) => Promise<Run>,
  first: RunView,
  ids: Record<string, string>,
  onRemote: Stored[],
): Promise<void> {
  const shown = parsed<RunView & { items: RunItemView[] }>(
    await run(['flow', 'history', 'push', '--run', first.id, '--json']),
  );
  assert.deepEqual(strip(shown), { ...strip(first), items: shown.items });
  assert.deepEqual(
    shown.items.map((i) => [i.seq, i.resourceType, i.action, i.outcome]),
    [
      [1, 'User', 'create', 'done'],
      [2, 'User', 'create', 'done'],
      [3, 'User', 'create', 'done'],
    ],
  );
  // Each item names the local user and the remote one it created.
  const remoteOf = new Map(shown.items.map((i) => [i.localId, i.remoteId]));
  assert.deepEqual(
    ['cli-1', 'cli-2', 'cli-3'].map((u) => remoteOf.get(ids[u])),
    onRemote.map((u) => u.id),
  );
}

/** One-off push (twice with the local app: no duplicate) and pull. */
async function oneOffs(
  run: (args: string[]) => Promise<Run>,
  remote: TestApp,
  ids: Record<string, string>,
  local?: App,
): Promise<void> {
  // One-off push twice: created, then nothing more (the kept flow's links).
  const push1 = parsed<RunView>(
    await run(['push', 'remote', '--types', 'User', '--filter', 'userName sw "one-"', '--json']),
  );
  assert.equal(push1.flowId, 'oneoff-push-remote');
  assert.equal(push1.state, 'succeeded');
  assert.deepEqual(push1.counts, { created: 2, updated: 0, deleted: 0, skipped: 0, failed: 0 });
  if (local) {
    // A rename no matching attribute would follow: the kept flow's link does (update, no duplicate).
    await replace(local, ids['one-1'], 'userName', 'one-1b');
    const push2 = parsed<RunView>(
      await run(['push', 'remote', '--types', 'User', '--filter', 'userName sw "one-"', '--json']),
    );
    assert.deepEqual(push2.counts, { created: 0, updated: 1, deleted: 0, skipped: 1, failed: 0 });
  }
  assert.deepEqual(
    (await users(remote.app)).map((u) => u.userName),
    ['cli-1', 'cli-2', 'cli-3', local ? 'one-1b' : 'one-1', 'one-2'],
  );

  // One-off pull of a remote-only user.
  await createUser(remote.app, 'rem-1', 'Remote One');
  const pull1 = parsed<RunView>(
    await run(['pull', 'remote', '--types', 'User', '--filter', 'userName sw "rem-"', '--json']),
  );
  assert.equal(pull1.flowId, 'oneoff-pull-remote');
  assert.deepEqual(pull1.counts, { created: 1, updated: 0, deleted: 0, skipped: 0, failed: 0 });
}

/** A flow the remote refuses for its one user (a mapping sets a non-boolean active). */
async function seedBad(app: App): Promise<string> {
  const id = await createUser(app, 'bad-1', 'Bad');
  await app.flows.create('default', {
    id: 'bad',
    connectionId: 'remote',
    direction: 'push',
    mode: 'full',
    resourceTypes: ['User'],
    filter: 'userName eq "bad-1"',
    mapping: { rules: [{ set: 'active', value: 'yes' }] },
  });
  return id;
}

/** The partial run: exit code 2, the run on stdout, the failed item on stderr. */
async function partialRun(run: (args: string[]) => Promise<Run>, badId: string): Promise<void> {
  const partial = await run(['flow', 'run', 'bad', '--json']);
  assert.equal(partial.code, 2, partial.stderr);
  const view = JSON.parse(partial.stdout) as RunView;
  assert.equal(view.state, 'partial');
  assert.deepEqual(view.counts, { created: 0, updated: 0, deleted: 0, skipped: 0, failed: 1 });
  assert.equal(
    partial.stderr,
    `scimd: User ${badId} / -: remote POST answered 400 invalidValue: Attribute "active": expected boolean, got string "yes"\n`,
  );
}

describe('scimd flow run|plan|history, push|pull (CLI)', { concurrency: true }, () => {
  test('direct mode on a scratch store', { timeout: 120_000 }, async () => {
    const remote = await startTestApp({ backgroundWorkers: false });
    const dir = mkdtempSync(join(tmpdir(), 'scimd-runs-cli-'));
    const scratch = await scratchDatabase();
    const store = scratch ? { databaseUrl: scratch.url } : { dataDir: dir };
    const open = () =>
      createApp({ ...store, adminToken: TOKEN, logLevel: 'silent', backgroundWorkers: false });
    try {
      const remoteBase = await listen(remote);
      const local = await open();
      const ids = await seed(local, remoteBase);
      const badId = await seedBad(local);
      await local.close();
      const env = cleanEnv(scratch ? { DATABASE_URL: scratch.url } : { SCIMD_DATA_DIR: dir });
      await scenario(
        (args) => scimd(args, env),
        remote,
        ids,
        async () => {
          const app = await open();
          try {
            return (await users(app)).filter((u) => u.userName !== 'bad-1');
          } finally {
            await app.close();
          }
        },
        'manual',
      );
      // Direct mode lists a partial run's failures from the store.
      await partialRun((args) => scimd(args, env), badId);
    } finally {
      await remote.close();
      await scratch?.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('remote mode against a running node', { timeout: 120_000 }, async () => {
    const remote = await startTestApp({ backgroundWorkers: false });
    const local = await startTestApp({ backgroundWorkers: false });
    try {
      const remoteBase = await listen(remote);
      const url = await listen(local);
      const ids = await seed(local.app, remoteBase);
      const env = cleanEnv({ SCIMD_URL: url, SCIMD_TOKEN: TOKEN });
      await scenario(
        (args) => scimd(args, env),
        remote,
        ids,
        () => users(local.app),
        'api',
        local.app,
      );
      // The one-off flows stay, disabled, full, with the options of the last transfer.
      assert.deepEqual(
        (await local.app.flows.list('default')).map((f) => [f.id, f.enabled, f.mode, f.onDelete, f.filter]),
        [
          ['push', true, 'full', 'delete', 'userName sw "cli-"'],
          ['oneoff-push-remote', false, 'full', 'ignore', 'userName sw "one-"'],
          ['oneoff-pull-remote', false, 'full', 'ignore', 'userName sw "rem-"'],
        ],
      );
      const run = (args: string[]) => scimd(args, env);
      failed(
        await run(['flow', 'history', 'push', '--run', 'no-such-run']),
        'No run no-such-run of flow push',
      );
      failed(await run(['push', 'remote']), "required option '--types <types>' not specified");
      failed(
        await run(['pull', 'nowhere', '--types', 'User']),
        'connectionId: no connection nowhere in tenant default',
      );
    } finally {
      await local.close();
      await remote.close();
    }
  });
});
