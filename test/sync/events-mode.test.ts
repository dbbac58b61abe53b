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

  test('the pull leaves alone what the applier is ahead on: a resource whose delete was applied, a copy at a newer version', async () => {
    const db = pair.local.app.db;
    await db.query(
      `INSERT INTO upstreams (tenant_id, id, name, issuer, scim_base_url) VALUES ('default', 'idm', 'IdM', 'https://idm.test', $1)`,
      [pair.remoteBase],
    );
    const gone = await create(pair.remote, 'Users', {
      schemas: [USER],
      userName: 'ah-gone',
      title: 'listed',
    });
    const newer = await create(pair.remote, 'Users', {
      schemas: [USER],
      userName: 'ah-newer',
      title: 'listed',
    });
    const rt = pair.local.app.registry.resourceType('User')!;
    // The applier applied newer's version 5 (its copy says "from a SET") and gone's delete.
    await pair.local.app.service.applyReplica(replica, rt, newer.id, {
      kind: 'upsert',
      resource: { schemas: [USER], userName: 'ah-newer', title: 'from a SET' },
    });
    await db.query(
      `INSERT INTO replica_versions (tenant_id, upstream_id, resource_id, resource_type, version, deleted)
       VALUES ('default', 'idm', $1, 'User', 'W/"5"', false), ('default', 'idm', $2, 'User', NULL, true)`,
      [newer.id, gone.id],
    );
    await addFlow(pair, { id: 'ahead', direction: 'pull', mode: 'events', filter: 'userName sw "ah-"' });
    await db.query(`UPDATE sync_flows SET upstream_id = 'idm' WHERE tenant_id = 'default' AND id = 'ahead'`);
    const r = await runnerFor(pair).runFlow('default', 'ahead');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.counts, { created: 0, updated: 0, deleted: 0, skipped: 2, failed: 0 });
    const local = (await listAll(pair.local, 'Users')).filter((u) => String(u.userName).startsWith('ah-'));
    assert.deepEqual(
      local.map((u) => [u.id, u.title]),
      [[newer.id, 'from a SET']],
    );
    // The newer copy is linked (same id), the deleted one is not brought back.
    assert.deepEqual(
      (await links(pair, 'ahead')).map((l) => [l.local_id, l.remote_id]),
      [[newer.id, newer.id]],
    );
    // Once the listed version (W/"1") is newer than the applied one, the pull updates the copy.
    await db.query(`UPDATE replica_versions SET version = 'W/"0"' WHERE resource_id = $1`, [newer.id]);
    const r2 = await runnerFor(pair).runFlow('default', 'ahead');
    assert.deepEqual(r2.counts, { created: 0, updated: 1, deleted: 0, skipped: 1, failed: 0 });
    const after2 = (await listAll(pair.local, 'Users')).filter((u) => String(u.userName).startsWith('ah-'));
    assert.deepEqual(
      after2.map((u) => [u.id, u.title]),
      [[newer.id, 'listed']],
    );
    // The version the pull wrote is now the upstream's applied one: an older SET will be skipped.
    const versions = await db.query<{ resource_id: string; version: string | null; deleted: boolean }>(
      `SELECT resource_id, version, deleted FROM replica_versions WHERE tenant_id = 'default' AND upstream_id = 'idm'
        ORDER BY deleted`,
    );
    assert.deepEqual(versions.rows, [
      { resource_id: newer.id, version: 'W/"1"', deleted: false },
      { resource_id: gone.id, version: null, deleted: true },
    ]);
  });
});
