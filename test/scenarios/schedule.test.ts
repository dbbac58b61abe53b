/**
 * Periodic trigger (use-case behaviour 13) end to end, with two scimd processes:
 *   hr    the source: tenant `hr` holds the users;
 *   apps  three tenants, each kept up to date by a flow with a cron schedule and nothing else:
 *         `pushed` receives hr's push (mode changes, a flow on hr), `pulled` full-pulls from hr,
 *         `delta` delta-pulls from hr (flows on apps).
 * The flows are added through the admin API after the nodes started; the nodes read schedules
 * every second (SCIMD_SYNC_SCHEDULE_RELOAD_SECONDS=1, default 30) and the schedules fire every
 * two seconds (a leading seconds field). No run is requested by hand, and the push flow does not
 * follow local changes: every run in the history has trigger `schedule`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  addClient,
  addConnection,
  addFlow,
  createTenant,
  eventually,
  getFlow,
  listAll,
  ok,
  PATCH_OP,
  runs,
  sorted,
  startNode,
  startNodes,
  USER,
  type Json,
  type Node,
} from './lib.ts';

const EVERY_2S = '*/2 * * * * *';
const RELOAD = { SCIMD_SYNC_SCHEDULE_RELOAD_SECONDS: '1' };

let hr: Node;
let apps: Node;

before(async () => {
  [hr, apps] = await startNodes(startNode('hr', RELOAD), startNode('apps', RELOAD));
});
after(async () => {
  await Promise.all([hr?.close(), apps?.close()]);
});

const user = (n: string, title: string): Json => ({
  schemas: [USER],
  userName: n,
  externalId: `hr-${n}`,
  title,
  name: { givenName: n, familyName: 'Staff' },
});

describe('use case 13: cron schedules start a push, a full pull and a delta pull in running nodes', () => {
  test('use case 13: scheduled push, pull and delta pull move users between two nodes with no other input', async () => {
    await createTenant(hr, 'hr');
    const hrAdmin = await addClient(hr, 'hr', 'hr-admin', ['scim:read', 'scim:write']);
    const reader = await addClient(hr, 'hr', 'apps', ['scim:read']);
    for (const n of ['ada', 'bob', 'cy'])
      await ok('POST', `${hr.scim('hr')}/Users`, hrAdmin, user(n, 'Engineer'));

    const readers: Record<string, string> = {};
    for (const t of ['pushed', 'pulled', 'delta']) {
      await createTenant(apps, t);
      readers[t] = await addClient(apps, t, 'viewer', ['scim:read']);
    }
    const writer = await addClient(apps, 'pushed', 'hr', ['scim:read', 'scim:write']);
    await addConnection(hr, 'hr', 'apps', apps.scim('pushed'), writer);
    const push = await addFlow(hr, 'hr', {
      id: 'to-apps',
      connectionId: 'apps',
      direction: 'push',
      mode: 'changes',
      resourceTypes: ['User'],
      schedule: EVERY_2S,
    });
    assert.equal(push.onLocalChange, false);
    for (const [t, mode] of [
      ['pulled', 'full'],
      ['delta', 'delta'],
    ]) {
      await addConnection(apps, t, 'hr', hr.scim('hr'), reader);
      const f = await addFlow(apps, t, {
        id: 'from-hr',
        connectionId: 'hr',
        direction: 'pull',
        mode,
        resourceTypes: ['User'],
        schedule: EVERY_2S,
      });
      assert.equal(f.schedule, EVERY_2S);
      // The next tick is at most two seconds away.
      const next = Date.parse(f.nextRun as string) - Date.now();
      assert.ok(next > -1000 && next <= 2000, `nextRun ${f.nextRun}`);
    }

    const targets: [Node, string, string][] = [
      [hr, 'hr', 'to-apps'],
      [apps, 'pulled', 'from-hr'],
      [apps, 'delta', 'from-hr'],
    ];
    const holds = async (expected: Record<string, string>) => {
      for (const t of ['pushed', 'pulled', 'delta']) {
        const got = await listAll(apps.scim(t), readers[t], 'Users');
        assert.deepEqual(Object.fromEntries(got.map((u) => [u.userName, u.title])), expected, `tenant ${t}`);
      }
    };
    const started = Date.now();
    await eventually(() => holds({ ada: 'Engineer', bob: 'Engineer', cy: 'Engineer' }), 15_000);
    assert.ok(Date.now() - started < 15_000);

    // Changes at the source arrive by the following ticks: a new user, a changed title.
    const ada = (await listAll(hr.scim('hr'), hrAdmin, 'Users', 'userName eq "ada"'))[0];
    await ok('PATCH', `${hr.scim('hr')}/Users/${ada.id}`, hrAdmin, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'title', value: 'Lead' }],
    });
    await ok('POST', `${hr.scim('hr')}/Users`, hrAdmin, user('dee', 'Designer'));
    await eventually(() => holds({ ada: 'Lead', bob: 'Engineer', cy: 'Engineer', dee: 'Designer' }), 15_000);

    // Every run of the three flows was started by the schedule, and none failed.
    // (Read again until the run that delivered the last change has recorded its counts.)
    await eventually(async () => {
      for (const [node, tenant, flow] of targets) {
        const history = await runs(node, tenant, flow);
        assert.ok(history.length >= 2, `${tenant}/${flow}: ${history.length} runs`);
        assert.deepEqual(
          sorted(new Set(history.map((r) => r.trigger as string))),
          ['schedule'],
          `${tenant}/${flow}`,
        );
        assert.deepEqual(
          history.filter((r) => r.state !== 'succeeded' && r.state !== 'running'),
          [],
          `${tenant}/${flow}`,
        );
        const created = history.reduce((n, r) => n + ((r.counts?.created as number) ?? 0), 0);
        assert.equal(created, 4, `${tenant}/${flow}: users created over all runs`);
      }
    }, 10_000);
    // The delta pull kept a token between runs.
    const delta = await getFlow(apps, 'delta', 'from-hr');
    assert.equal(delta.state.deltaMethod, 'token', JSON.stringify(delta.state));
    assert.equal(typeof delta.state.deltaTokens.User, 'string', JSON.stringify(delta.state));
  });
});
