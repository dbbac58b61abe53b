/**
 * Several items in flight per run: a page's resources go to the remote together (at most
 * compat.maxConcurrentRequests, default 8), a run stopped with items in flight converges on the
 * next run with no duplicates, a pull matches values the remote spells differently (case, MAC
 * address separators), and a page's creates go together (Bulk on a push, one batch on a pull).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ScimClient, type Transport } from '../../src/client/index.ts';
import { NodeTransport } from '../../src/client/transport.ts';
import { DEFAULT_ITEMS_IN_FLIGHT } from '../../src/sync/engine/job.ts';
import { addFlow, create, links, listAll, runnerFor, startPair, USER, type Pair } from './engine-helpers.ts';

const DEVICE = 'urn:ietf:params:scim:schemas:core:2.0:Device';
const BLE = 'urn:ietf:params:scim:schemas:extension:ble:2.0:Device';
const MAC = `${BLE}:deviceMacAddress`;
const JUST_WORKS = 'urn:ietf:params:scim:schemas:extension:pairingJustWorks:2.0:Device';

let pair: Pair;

before(async () => {
  pair = await startPair();
});
after(async () => {
  await pair.close();
});

const setCompat = (compat: Record<string, unknown> | null) =>
  pair.local.app.db.query(
    `UPDATE sync_connections SET compat = $1 WHERE tenant_id = 'default' AND id = 'remote'`,
    [compat === null ? null : JSON.stringify(compat)],
  );

/**
 * A transport that counts the writes in flight. Each write waits (at most 2 s) until `expected`
 * are in flight before it goes on, so the run's parallelism shows whatever the timing.
 */
function countingTransport(expected: number): { transport: Transport; max: () => number } {
  const inner = new NodeTransport();
  let inFlight = 0;
  let max = 0;
  let waiters: (() => void)[] = [];
  const transport: Transport = async (req) => {
    if (req.method !== 'POST') return inner.send(req);
    inFlight++;
    max = Math.max(max, inFlight);
    if (inFlight >= expected) {
      for (const w of waiters) w();
      waiters = [];
    } else {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    try {
      return await inner.send(req);
    } finally {
      inFlight--;
    }
  };
  return { transport, max: () => max };
}

function countingRunner(expected: number) {
  const counting = countingTransport(expected);
  const runner = runnerFor(pair, {
    clientFor: (c) =>
      new ScimClient({
        baseUrl: c.baseUrl,
        auth: c.auth,
        transport: counting.transport,
        retry: { maxAttempts: 1 },
        ...(c.compat ? { compat: c.compat } : {}),
      }),
  });
  return { runner, max: counting.max };
}

async function localUsers(prefix: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++)
    await create(pair.local, 'Users', {
      schemas: [USER],
      userName: `${prefix}${String(i).padStart(2, '0')}`,
    });
}

const remoteNames = async (prefix: string) =>
  (await listAll(pair.remote, 'Users')).map((u) => String(u.userName)).filter((n) => n.startsWith(prefix));

describe('items in flight', () => {
  test(`a full push keeps ${DEFAULT_ITEMS_IN_FLIGHT} creates in flight by default, compat.maxConcurrentRequests caps it`, async () => {
    await localUsers('p-', 24);
    await addFlow(pair, { id: 'par', direction: 'push', mode: 'full', filter: 'userName sw "p-"' });
    // One POST per create (the remote's Bulk left unused; Bulk creates are the next test).
    await setCompat({ disable: ['bulk'] });
    const dflt = countingRunner(DEFAULT_ITEMS_IN_FLIGHT);
    const r = await dflt.runner.runFlow('default', 'par');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.counts, { created: 24, updated: 0, deleted: 0, skipped: 0, failed: 0 });
    assert.equal(dflt.max(), DEFAULT_ITEMS_IN_FLIGHT);
    assert.equal((await remoteNames('p-')).length, 24);
    assert.equal((await links(pair, 'par')).length, 24);
    // Every create is in the run's history once, whatever order they finished in.
    const items = await dflt.runner.runItems('default', 'par', r.id, { limit: 1000 });
    assert.deepEqual(
      items.map((i) => i.seq),
      Array.from({ length: 24 }, (_, i) => i + 1),
    );
    assert.equal(new Set(items.map((i) => i.localId)).size, 24);
    assert.ok(items.every((i) => i.action === 'create' && i.outcome === 'done'));

    await localUsers('q-', 12);
    await addFlow(pair, { id: 'two', direction: 'push', mode: 'full', filter: 'userName sw "q-"' });
    await setCompat({ maxConcurrentRequests: 2, disable: ['bulk'] });
    try {
      const capped = countingRunner(3); // waits for a third write that must never come
      const r2 = await capped.runner.runFlow('default', 'two');
      assert.equal(r2.state, 'succeeded');
      assert.equal(r2.counts.created, 12);
      assert.equal(capped.max(), 2);
    } finally {
      await setCompat(null);
    }
  });

  test("a page's creates go in one Bulk request when the remote has Bulk; a failed operation fails its item only", async () => {
    await localUsers('b-', 10);
    const taken = await create(pair.remote, 'Users', { schemas: [USER], userName: 'b-05' });
    await addFlow(pair, { id: 'bulk', direction: 'push', mode: 'full', filter: 'userName sw "b-"' });
    // The remote b-05 is linked to another local resource of the flow: not matched, so its create
    // collides (409) inside the Bulk request; that link's local resource is gone, so it is deleted after.
    await pair.local.app.db.query(
      `INSERT INTO sync_links (tenant_id, flow_id, resource_type, local_id, remote_id) VALUES ('default', 'bulk', 'User', 'someone-else', $1)`,
      [taken.id],
    );
    pair.sent.length = 0;
    const runner = runnerFor(pair);
    const r = await runner.runFlow('default', 'bulk');
    assert.equal(r.state, 'partial');
    assert.deepEqual(r.counts, { created: 9, updated: 0, deleted: 1, skipped: 0, failed: 1 });
    assert.deepEqual(
      pair.sent.filter((x) => x.startsWith('POST') || x.startsWith('DELETE')),
      ['POST /Bulk', `DELETE /Users/${taken.id}`],
    );
    const items = await runner.runItems('default', 'bulk', r.id, { limit: 1000 });
    const failed = items.filter((i) => i.outcome === 'failed');
    assert.equal(failed.length, 1);
    assert.match(failed[0].error ?? '', /^remote POST answered 409 uniqueness: /);
    assert.equal(items.filter((i) => i.action === 'create' && i.outcome === 'done').length, 9);
    assert.deepEqual(await remoteNames('b-'), [
      'b-01',
      'b-02',
      'b-03',
      'b-04',
      'b-06',
      'b-07',
      'b-08',
      'b-09',
      'b-10',
    ]);
    // The next run retries b-05 alone (no Bulk for one item) and creates it.
    pair.sent.length = 0;
    const r2 = await runner.runFlow('default', 'bulk');
    assert.equal(r2.state, 'succeeded');
    assert.deepEqual(r2.counts, { created: 1, updated: 0, deleted: 0, skipped: 9, failed: 0 });
    assert.deepEqual(
      pair.sent.filter((x) => x.startsWith('POST')),
      ['POST /Users'],
    );
    assert.equal((await remoteNames('b-')).length, 10);
    assert.equal((await links(pair, 'bulk')).length, 10);
  });

  test("a pull page's creates are stored in one batch; a refused row fails its item only", async () => {
    for (let i = 1; i <= 5; i++)
      await create(pair.remote, 'Users', { schemas: [USER], userName: `pb-0${i}` });
    const mine = await create(pair.local, 'Users', { schemas: [USER], userName: 'pb-03' });
    await addFlow(pair, { id: 'pb', direction: 'pull', mode: 'full', filter: 'userName sw "pb-"' });
    // The local pb-03 is linked to another remote record of the flow: not matched, so its create
    // collides (409) inside the batch; that remote record is not listed, so pb-03 is deleted after.
    await pair.local.app.db.query(
      `INSERT INTO sync_links (tenant_id, flow_id, resource_type, local_id, remote_id) VALUES ('default', 'pb', 'User', $1, 'elsewhere')`,
      [mine.id],
    );
    const runner = runnerFor(pair);
    const r = await runner.runFlow('default', 'pb');
    assert.equal(r.state, 'partial');
    assert.deepEqual(r.counts, { created: 4, updated: 0, deleted: 1, skipped: 0, failed: 1 });
    const items = await runner.runItems('default', 'pb', r.id, { limit: 1000 });
    const failed = items.filter((i) => i.outcome === 'failed');
    assert.equal(failed.length, 1);
    assert.match(failed[0].error ?? '', /^local 409 uniqueness: /);
    const localNames = async () =>
      (await listAll(pair.local, 'Users')).map((u) => String(u.userName)).filter((n) => n.startsWith('pb-'));
    assert.deepEqual(await localNames(), ['pb-01', 'pb-02', 'pb-04', 'pb-05']);
    const r2 = await runner.runFlow('default', 'pb');
    assert.equal(r2.state, 'succeeded');
    assert.deepEqual(r2.counts, { created: 1, updated: 0, deleted: 0, skipped: 4, failed: 0 });
    assert.deepEqual(await localNames(), ['pb-01', 'pb-02', 'pb-03', 'pb-04', 'pb-05']);
    assert.equal((await links(pair, 'pb')).length, 5);
  });

  test('a run stopped with items in flight: the next run creates the rest, nothing duplicated', async () => {
    await localUsers('s-', 40);
    await addFlow(pair, { id: 'stop', direction: 'push', mode: 'full', filter: 'userName sw "s-"' });
    await setCompat({ disable: ['bulk'] }); // one POST per item, 8 in flight when the run stops
    const crashing = runnerFor(pair, {
      onCheckpoint: (done) => {
        if (done >= 10) throw new Error('simulated crash');
      },
    });
    const r = await crashing.runFlow('default', 'stop');
    assert.equal(r.state, 'failed');
    assert.equal(r.error, 'simulated crash');
    // The items already past their checkpoint finished; none started after the stop.
    const first = r.counts.created;
    assert.ok(first >= 10 && first < 10 + DEFAULT_ITEMS_IN_FLIGHT, `created ${first}`);
    assert.equal((await remoteNames('s-')).length, first);
    assert.equal((await links(pair, 'stop')).length, first);
    const r2 = await runnerFor(pair).runFlow('default', 'stop');
    assert.equal(r2.state, 'succeeded');
    assert.deepEqual(r2.counts, { created: 40 - first, updated: 0, deleted: 0, skipped: first, failed: 0 });
    await setCompat(null);
    const names = await remoteNames('s-');
    assert.equal(names.length, 40);
    assert.equal(new Set(names).size, 40);
    assert.equal((await links(pair, 'stop')).length, 40);
  });

  test('a pull page matches local resources spelled differently (userName case, MAC separators), creates the rest', async () => {
    for (let i = 1; i <= 10; i++) {
      await create(pair.remote, 'Users', { schemas: [USER], userName: `Match-${i}`, title: `remote ${i}` });
      if (i <= 5) await create(pair.local, 'Users', { schemas: [USER], userName: `match-${i}` });
    }
    await addFlow(pair, { id: 'pm', direction: 'pull', mode: 'full', filter: 'userName sw "match-"' });
    const r = await runnerFor(pair).runFlow('default', 'pm');
    assert.equal(r.state, 'succeeded');
    assert.deepEqual(r.counts, { created: 5, updated: 5, deleted: 0, skipped: 0, failed: 0 });
    const local = (await listAll(pair.local, 'Users')).filter((u) => /^match-/i.test(String(u.userName)));
    assert.deepEqual(
      local.map((u) => [String(u.userName).toLowerCase(), u.title]).sort(),
      Array.from({ length: 10 }, (_, k) => [`match-${k + 1}`, `remote ${k + 1}`]).sort(),
    );
    assert.equal((await links(pair, 'pm')).length, 10);

    // Devices matched by BLE MAC address: the local copies use dashes and lower case.
    for (let i = 1; i <= 6; i++) {
      const mac = `02:00:00:00:00:0${i}`;
      await create(pair.remote, 'Devices', {
        schemas: [DEVICE, BLE],
        displayName: `Sensor ${i}`,
        active: true,
        [BLE]: {
          deviceMacAddress: mac,
          isRandom: false,
          versionSupport: ['5.3'],
          pairingMethods: [JUST_WORKS],
        },
      });
      if (i <= 3) {
        await create(pair.local, 'Devices', {
          schemas: [DEVICE, BLE],
          displayName: `local ${i}`,
          active: true,
          [BLE]: {
            deviceMacAddress: mac.replaceAll(':', '-').toLowerCase(),
            isRandom: false,
            versionSupport: ['5.3'],
            pairingMethods: [JUST_WORKS],
          },
        });
      }
    }
    await addFlow(pair, {
      id: 'dm',
      direction: 'pull',
      mode: 'full',
      resourceTypes: ['Device'],
      matching: { attributes: [MAC] },
    });
    const d = await runnerFor(pair).runFlow('default', 'dm');
    assert.equal(d.state, 'succeeded', JSON.stringify(d));
    assert.deepEqual(d.counts, { created: 3, updated: 3, deleted: 0, skipped: 0, failed: 0 });
    const devices = await listAll(pair.local, 'Devices', 'displayName');
    assert.deepEqual(
      devices.map((x) => x.displayName),
      ['Sensor 1', 'Sensor 2', 'Sensor 3', 'Sensor 4', 'Sensor 5', 'Sensor 6'],
    );
    assert.equal((await links(pair, 'dm')).length, 6);
  });
});
