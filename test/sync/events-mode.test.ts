/**
 * A pull flow of mode `events` (domain replication fed by an upstream's SETs) keeps the upstream's
 * ids: its full pull creates copies under the remote ids and takes a copy the replica applier
 * already wrote as the counterpart, so SETs applied after the pull replace that copy instead of
 * failing on a userName taken by a copy under another id.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RequestContext } from '../../src/service/resources.ts';
import { addFlow, create, links, listAll, runnerFor, startPair, USER, type Pair } from './engine-helpers.ts';

let pair: Pair;
let replica: RequestContext;

before(async () => {
  pair = await startPair();
  replica = {
    tenant: 'default',
    baseUrl: 'http://scimd.test/scim/v2',
    clientId: 'upstream:idm',
    limits: pair.local.app.config,
  };
});
after(async () => {
  await pair.close();
});

describe('events flows', () => {
  test('the full pull of an events flow writes under the remote ids; SETs applied before and after it land on the same copies', async () => {
    const remote = [];
    for (let i = 1; i <= 4; i++)
      remote.push(
        await create(pair.remote, 'Users', { schemas: [USER], userName: `ev-${i}`, title: `v1 ${i}` }),
      );
    const rt = pair.local.app.registry.resourceType('User')!;
    // The SET of ev-1 was applied before the pull (as the replica applier does: the source's id).
    const early = await pair.local.app.service.applyReplica(replica, rt, remote[0].id, {
      kind: 'upsert',
      resource: { schemas: [USER], userName: 'ev-1', title: 'v1 1' },
    });
    assert.deepEqual(early, { outcome: 'created', droppedMembers: [] });

    await addFlow(pair, { id: 'rep', direction: 'pull', mode: 'events', filter: 'userName sw "ev-"' });
    const r = await runnerFor(pair).runFlow('default', 'rep');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.counts, { created: 3, updated: 0, deleted: 0, skipped: 1, failed: 0 });
    const local = (await listAll(pair.local, 'Users')).filter((u) => String(u.userName).startsWith('ev-'));
    assert.deepEqual(
      local.map((u) => [u.id, u.userName, u.title]),
      remote.map((u, i) => [u.id, `ev-${i + 1}`, `v1 ${i + 1}`]),
    );
    assert.deepEqual(
      (await links(pair, 'rep')).map((l) => l.local_id === l.remote_id),
      [true, true, true, true],
    );

    // The SETs of ev-2..4 arrive after the pull: the same copies are replaced, nothing is refused.
    for (let i = 1; i < 4; i++) {
      const late = await pair.local.app.service.applyReplica(replica, rt, remote[i].id, {
        kind: 'upsert',
        resource: { schemas: [USER], userName: `ev-${i + 1}`, title: `v2 ${i + 1}` },
      });
      assert.equal(late.outcome, 'replaced');
    }
    const after2 = (await listAll(pair.local, 'Users')).filter((u) => String(u.userName).startsWith('ev-'));
    assert.deepEqual(
      after2.map((u) => [u.id, u.title]),
      remote.map((u, i) => [u.id, i === 0 ? 'v1 1' : `v2 ${i + 1}`]),
    );
  });
});
