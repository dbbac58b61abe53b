/**
 * Schedule trigger (use-case behaviour 13) and run requests: which flows are due when (computed,
 * no waiting), reloads after a change, idempotent requests (the first one is kept), the runner's
 * wake-up, and a started trigger whose Cron fires for real. PGlite, and PostgreSQL when
 * DATABASE_URL is set.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { requestRun, requestRuns } from '../../src/sync/triggers/requests.ts';
import { nextScheduledRun, parseSchedule, ScheduleTrigger } from '../../src/sync/triggers/schedules.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { addConnection, addFlow, clearRequests, requestedTriggers, requests } from './triggers-fixtures.ts';

let t: TestApp;
const at = (iso: string) => new Date(iso);

before(async () => {
  t = await startTestApp({ backgroundWorkers: false });
  await t.app.admin.createTenant({ id: 'acme' });
  const db = t.app.db;
  for (const tenant of ['default', 'acme']) await addConnection(db, tenant, 'c1');
  const base = { connection: 'c1', direction: 'pull', mode: 'full', types: ['User'] } as const;
  await addFlow(db, 'default', { ...base, id: 'every-minute', schedule: '* * * * *' });
  await addFlow(db, 'default', { ...base, id: 'nightly', direction: 'push', schedule: '0 2 * * *' });
  await addFlow(db, 'default', { ...base, id: 'paris', schedule: 'TZ=Europe/Paris 0 2 * * *' });
  await addFlow(db, 'default', { ...base, id: 'disabled', schedule: '* * * * *', enabled: false });
  await addFlow(db, 'default', { ...base, id: 'unscheduled' });
  await addFlow(db, 'default', { ...base, id: 'broken', schedule: '61 * * * *' });
  await addFlow(db, 'acme', { ...base, id: 'acme-minute', schedule: '* * * * *' });
});
after(async () => {
  await t?.close();
});
beforeEach(() => clearRequests(t.app.db));

describe('behaviour 13: schedule trigger', () => {
  test('every enabled flow with a valid schedule, of every tenant, has a Cron; others none', async () => {
    const s = t.app.syncTriggers.schedules;
    await s.reload();
    assert.deepEqual(s.scheduled(), [
      { tenant: 'acme', flowId: 'acme-minute', schedule: '* * * * *' },
      { tenant: 'default', flowId: 'every-minute', schedule: '* * * * *' },
      { tenant: 'default', flowId: 'nightly', schedule: '0 2 * * *' },
      { tenant: 'default', flowId: 'paris', schedule: 'TZ=Europe/Paris 0 2 * * *' },
    ]);
  });

  test('due flows are computed from the schedules (UTC, or the zone the schedule names)', async () => {
    const s = t.app.syncTriggers.schedules;
    await s.reload();
    const ids = (now: string, since: string) =>
      s.due(at(now), at(since)).map((r) => `${r.tenant}/${r.flowId}`);
    // Within one minute, before the next minute: nothing.
    assert.deepEqual(ids('2030-01-15T01:30:50Z', '2030-01-15T01:30:10Z'), []);
    // Crossing a minute: the every-minute flows of both tenants.
    assert.deepEqual(ids('2030-01-15T01:31:05Z', '2030-01-15T01:30:10Z'), [
      'acme/acme-minute',
      'default/every-minute',
    ]);
    // 02:00 UTC: the nightly flow too.
    assert.deepEqual(ids('2030-01-15T02:00:00Z', '2030-01-15T01:59:30Z'), [
      'acme/acme-minute',
      'default/every-minute',
      'default/nightly',
    ]);
    // 02:00 in Paris is 01:00 UTC in January (CET) and 00:00 UTC in July (CEST).
    assert.deepEqual(ids('2030-01-15T01:00:01Z', '2030-01-15T00:59:59Z'), [
      'acme/acme-minute',
      'default/every-minute',
      'default/paris',
    ]);
    assert.deepEqual(ids('2030-07-15T00:00:01Z', '2030-07-14T23:59:59Z'), [
      'acme/acme-minute',
      'default/every-minute',
      'default/paris',
    ]);
    // A whole day: each flow once, however many times it was due.
    assert.equal(ids('2030-01-16T00:00:00Z', '2030-01-15T00:00:00Z').length, 4);
  });

  test('tick requests the due flows with trigger schedule; the disabled flow never', async () => {
    const s = t.app.syncTriggers.schedules;
    await s.reload();
    const requested = await s.tick(at('2030-01-15T02:00:10Z'), at('2030-01-15T01:59:50Z'));
    assert.deepEqual(requested, [
      { tenant: 'acme', flowId: 'acme-minute' },
      { tenant: 'default', flowId: 'every-minute' },
      { tenant: 'default', flowId: 'nightly' },
    ]);
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {
      'every-minute': 'schedule',
      nightly: 'schedule',
    });
    assert.deepEqual(await requestedTriggers(t.app.db, 'acme'), { 'acme-minute': 'schedule' });
    // The next tick goes on from the previous one: 02:00:10 → 02:00:40 names no time.
    assert.deepEqual(await s.tick(at('2030-01-15T02:00:40Z')), []);
    assert.deepEqual(
      (await s.tick(at('2030-01-15T02:01:00Z'))).map((r) => r.flowId),
      ['acme-minute', 'every-minute'],
    );
  });

  test('a changed schedule is reloaded; a disabled or deleted flow loses its Cron', async () => {
    const db = t.app.db;
    const s = t.app.syncTriggers.schedules;
    await addFlow(db, 'default', {
      id: 'changing',
      connection: 'c1',
      direction: 'pull',
      mode: 'delta',
      types: ['Group'],
      schedule: '0 2 * * *',
    });
    await s.reload();
    const dueAt = (iso: string) =>
      s.due(at(iso), new Date(at(iso).getTime() - 30_000)).some((r) => r.flowId === 'changing');
    assert.equal(dueAt('2030-01-15T02:00:00Z'), true);
    assert.equal(dueAt('2030-01-15T03:00:00Z'), false);
    await db.query(
      `UPDATE sync_flows SET schedule = '0 3 * * *', updated = clock_timestamp() WHERE tenant_id = 'default' AND id = 'changing'`,
    );
    await s.reload();
    assert.equal(dueAt('2030-01-15T02:00:00Z'), false);
    assert.equal(dueAt('2030-01-15T03:00:00Z'), true);
    await db.query(
      `UPDATE sync_flows SET enabled = false, updated = clock_timestamp() WHERE id = 'changing'`,
    );
    await s.reload();
    assert.equal(
      s.scheduled().some((f) => f.flowId === 'changing'),
      false,
    );
    await db.query(`UPDATE sync_flows SET enabled = true, updated = clock_timestamp() WHERE id = 'changing'`);
    await s.reload();
    assert.equal(
      s.scheduled().some((f) => f.flowId === 'changing'),
      true,
    );
    await db.query(`DELETE FROM sync_flows WHERE id = 'changing'`);
    await s.reload();
    assert.equal(
      s.scheduled().some((f) => f.flowId === 'changing'),
      false,
    );
  });

  test('schedules are checked: five to seven fields, a known time zone; the next run', () => {
    assert.deepEqual(parseSchedule('*/15 * * * *'), { pattern: '*/15 * * * *', timezone: 'UTC' });
    assert.deepEqual(parseSchedule('CRON_TZ=America/New_York 30 6 * * 1-5'), {
      pattern: '30 6 * * 1-5',
      timezone: 'America/New_York',
    });
    assert.deepEqual(parseSchedule('*/10 * * * * *'), { pattern: '*/10 * * * * *', timezone: 'UTC' });
    assert.throws(() => parseSchedule('61 * * * *'), /Invalid value for minute: 61/);
    assert.throws(() => parseSchedule('TZ=Mars/Olympus 0 2 * * *'), /unknown time zone Mars\/Olympus/);
    assert.throws(() => parseSchedule('every day'), /exactly five, six, or seven space separated parts/);
    assert.equal(
      nextScheduledRun('0 2 * * *', at('2030-01-15T02:00:00Z'))?.toISOString(),
      '2030-01-16T02:00:00.000Z',
    );
    assert.equal(
      nextScheduledRun('TZ=Asia/Tokyo 0 9 * * *', at('2030-01-15T00:00:00Z'))?.toISOString(),
      '2030-01-16T00:00:00.000Z',
    );
    assert.equal(
      nextScheduledRun('0 30 6 1 1 * 2040', at('2030-01-15T00:00:00Z'))?.toISOString(),
      '2040-01-01T06:30:00.000Z',
    );
    assert.throws(() => parseSchedule('0 0 0 1 1 * 2020'), /names no future time/);
  });

  test('a started trigger: its Cron fires for real, and the table is polled for changes', async () => {
    const db = t.app.db;
    await addFlow(db, 'acme', {
      id: 'every-second',
      connection: 'c1',
      direction: 'pull',
      mode: 'full',
      types: ['User'],
    });
    let wakes = 0;
    const s = new ScheduleTrigger({
      db,
      request: async (tenant, id, trigger) => {
        const ok = await requestRun(db, tenant, id, trigger);
        if (ok) wakes++;
        return ok;
      },
      pollMs: 50,
    });
    s.start();
    try {
      // The first load is done (the other scheduled flows are there) before the change is made.
      while (s.scheduled().length === 0) await new Promise((r) => setTimeout(r, 10));
      assert.equal(
        s.scheduled().some((f) => f.flowId === 'every-second'),
        false,
      );
      // Scheduled by the poll, not by a reload call.
      await db.query(
        `UPDATE sync_flows SET schedule = '* * * * * *', updated = clock_timestamp() WHERE id = 'every-second'`,
      );
      const deadline = Date.now() + 5_000;
      while (!(await requests(db, 'acme'))['every-second'] && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const r = await requestedTriggers(db, 'acme');
      assert.equal(r['every-second'], 'schedule');
      assert.ok(wakes >= 1);
    } finally {
      await s.stop();
      await db.query(`DELETE FROM sync_flows WHERE id = 'every-second'`);
    }
    assert.deepEqual(s.scheduled(), []);
  });
});

describe('run requests', () => {
  test('idempotent: a pending request keeps its time and trigger; enabled flows only', async () => {
    const db = t.app.db;
    assert.equal(await requestRun(db, 'default', 'nightly', 'manual'), true);
    const first = (await requests(db, 'default')).nightly;
    assert.equal(first.trigger, 'manual');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await requestRun(db, 'default', 'nightly', 'schedule'), true);
    assert.deepEqual((await requests(db, 'default')).nightly, first);
    // Taken by the runner (cleared): the next request is new.
    await clearRequests(db);
    assert.equal(await requestRun(db, 'default', 'nightly', 'api'), true);
    const second = (await requests(db, 'default')).nightly;
    assert.equal(second.trigger, 'api');
    assert.ok(second.at.getTime() > first.at.getTime());

    assert.equal(await requestRun(db, 'default', 'disabled', 'manual'), false);
    assert.equal(await requestRun(db, 'default', 'no-such-flow', 'manual'), false);
    // Tenant scoped: acme's flow is not default's.
    assert.equal(await requestRun(db, 'default', 'acme-minute', 'manual'), false);
    assert.deepEqual(
      await requestRuns(db, 'default', ['every-minute', 'disabled', 'paris', 'every-minute', 'x'], 'event'),
      ['every-minute', 'paris'],
    );
    assert.deepEqual(await requestedTriggers(db, 'default'), {
      'every-minute': 'event',
      nightly: 'api',
      paris: 'event',
    });
    assert.deepEqual(await requestedTriggers(db, 'acme'), {});
  });

  test('the runner registers a wake-up: called per stored request, not for a refused one', async () => {
    const triggers = t.app.syncTriggers;
    let wakes = 0;
    const off = triggers.onRequest(() => wakes++);
    assert.equal(await triggers.requestRun('default', 'nightly', 'api'), true);
    assert.equal(wakes, 1);
    assert.equal(await triggers.requestRun('default', 'disabled', 'api'), false);
    assert.equal(wakes, 1);
    assert.deepEqual(await triggers.requestRuns('default', ['paris', 'every-minute'], 'manual'), [
      'every-minute',
      'paris',
    ]);
    assert.equal(wakes, 2);
    off();
    assert.equal(await triggers.requestRun('default', 'nightly', 'api'), true);
    assert.equal(wakes, 2);
  });
});
