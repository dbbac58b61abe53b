/**
 * Event trigger (use-case behaviour 14, and the upstream → downstream chain of use case 26): SETs
 * received from an upstream and applied by the events applier request the events flows fed by
 * that upstream and the push flows covering the changed type (trigger 'event'), never a push back
 * to the upstream's own connection. Uses the receiving fixtures of test/events (A publishes, B
 * receives). PGlite, and PostgreSQL when DATABASE_URL is set.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addUpstream, push, setOf, startPair, userOnA, type Pair } from '../events/receive-fixtures.ts';
import { addConnection, addFlow, clearRequests, requestedTriggers } from './triggers-fixtures.ts';

let p: Pair;
let upId: string;

before(async () => {
  p = await startPair();
  upId = (await addUpstream(p, { id: 'a' })).id as string;
  await addUpstream(p, { id: 'other', name: 'other' });
  const db = p.b.app.db;
  for (const c of ['a-conn', 'crm']) await addConnection(db, 'default', c);
  const events = { direction: 'pull', mode: 'events', types: ['User', 'Group'] } as const;
  await addFlow(db, 'default', { ...events, id: 'from-a', connection: 'a-conn', upstreamId: 'a' });
  await addFlow(db, 'default', { ...events, id: 'from-other', connection: 'crm', upstreamId: 'other' });
  await addFlow(db, 'default', {
    ...events,
    id: 'from-a-off',
    connection: 'a-conn',
    upstreamId: 'a',
    enabled: false,
  });
  const pushes = { direction: 'push', mode: 'changes', onLocalChange: true } as const;
  await addFlow(db, 'default', { ...pushes, id: 'users-to-crm', connection: 'crm', types: ['User'] });
  await addFlow(db, 'default', { ...pushes, id: 'groups-to-crm', connection: 'crm', types: ['Group'] });
  await addFlow(db, 'default', { ...pushes, id: 'users-back-to-a', connection: 'a-conn', types: ['User'] });
});
after(async () => {
  await p?.close();
});
beforeEach(async () => {
  await p.b.app.syncTriggers.idle();
  await clearRequests(p.b.app.db);
});

describe('behaviour 14: event trigger', () => {
  test('an applied SET requests the events flow of its upstream and the downstream push of its type', async () => {
    const u = await userOnA(p, 'alice');
    const set = await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' });
    assert.equal((await push(p, upId, set.token)).status, 202);
    await p.b.app.syncTriggers.idle();
    // Stored, not applied yet: nothing requested.
    assert.deepEqual(await requestedTriggers(p.b.app.db, 'default'), {});
    assert.deepEqual(await p.b.app.applier.applyOnce(), {
      applied: 1,
      skipped: 0,
      failed: 0,
      retrying: 0,
      deferred: 0,
    });
    await p.b.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(p.b.app.db, 'default'), {
      'from-a': 'event',
      'users-to-crm': 'event',
    });
    // The local copy was written by the applier (client upstream:a).
    const changes = await p.b.app.db.query<{ client_id: string }>(
      `SELECT client_id FROM changes WHERE tenant_id = 'default' AND resource_id = $1`,
      [u.id],
    );
    assert.deepEqual(
      changes.rows.map((r) => r.client_id),
      ['upstream:a'],
    );
  });

  test('a SET skipped as stale requests the events flow only (nothing changed for the pushes)', async () => {
    const u = await userOnA(p, 'bob');
    const first = await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' });
    assert.equal((await push(p, upId, first.token)).status, 202);
    await p.b.app.applier.applyOnce();
    await p.b.app.syncTriggers.idle();
    await clearRequests(p.b.app.db);
    const again = await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' });
    assert.equal((await push(p, upId, again.token)).status, 202);
    assert.deepEqual(await p.b.app.applier.applyOnce(), {
      applied: 0,
      skipped: 1,
      failed: 0,
      retrying: 0,
      deferred: 0,
    });
    await p.b.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(p.b.app.db, 'default'), { 'from-a': 'event' });
  });

  test('a Group SET requests the push flows of Groups, not of Users', async () => {
    const g = await p.a.request('POST', '/scim/v2/Groups', {
      body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'sales' },
    });
    assert.equal(g.status, 201, g.text);
    const set = await setOf(p, { type: 'create', endpoint: '/Groups', resource: g.body, form: 'full' });
    assert.equal((await push(p, upId, set.token)).status, 202);
    assert.equal((await p.b.app.applier.applyOnce()).applied, 1);
    await p.b.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(p.b.app.db, 'default'), {
      'from-a': 'event',
      'groups-to-crm': 'event',
    });
  });

  test('the trigger alone: another upstream requests its own events flow, no push to its connection', async () => {
    // from-other feeds from the crm connection: the pushes to crm would echo back.
    assert.deepEqual(
      await p.b.app.syncTriggers.events.requestFor({
        tenant: 'default',
        upstreamId: 'other',
        resourceTypes: ['User'],
      }),
      ['from-other', 'users-back-to-a'],
    );
    // Tenant scoped: the same upstream id in another tenant names none of these flows.
    assert.deepEqual(
      await p.b.app.syncTriggers.events.requestFor({
        tenant: 'nobody',
        upstreamId: 'a',
        resourceTypes: ['User'],
      }),
      [],
    );
  });
});
