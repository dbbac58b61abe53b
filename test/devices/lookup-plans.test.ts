/**
 * Device lookups the store keeps indexes for, on the engine under test (PGlite, or PostgreSQL when
 * DATABASE_URL is set): `displayName` is `indexed: 'prefix'`, so `displayName sw` (and eq) are
 * served by its text_pattern_ops index, with the exact meaning of SCIM `sw` (case-insensitive,
 * LIKE wildcards in the operand taken literally).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bindFilter } from '../../src/scim/filter/bind.ts';
import type { BoundFilter } from '../../src/scim/filter/ast.ts';
import type { Queryable } from '../../src/store/db.ts';
import { ResourceRepository } from '../../src/store/resources.ts';
import { uniqueIndexes } from '../../src/store/sql/filter-sql.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DEVICE, deviceTenant, type Json, Scim } from './helpers.ts';

const TENANT = 'plans';

describe('device lookups served by indexes', () => {
  let t: TestApp;
  let scim: Scim;

  before(async () => {
    t = await startTestApp();
    scim = new Scim(t, TENANT, await deviceTenant(t, TENANT));
    for (const displayName of ['Pump 100%', 'Pump 1000', 'Pump_A', 'PumpXA', 'Back\\slash', 'BACKslash']) {
      await scim.create('/Devices', { schemas: [DEVICE], displayName, active: true });
    }
    // Enough rows for the planner to prefer an index when one serves the predicate.
    await t.app.db.query(
      `INSERT INTO resources (tenant_id, id, resource_type, version, created, last_modified, doc)
       SELECT $1, 'bulk-' || i, 'Device', 1, now(), now(),
              jsonb_build_object('schemas', jsonb_build_array($2::text), 'active', true,
                                 'displayName', 'Sensor ' || lpad(i::text, 5, '0'))
       FROM generate_series(1, 3000) AS i`,
      [TENANT, DEVICE],
    );
    await t.app.db.query('ANALYZE resources');
  });
  after(async () => {
    await t.close();
  });

  async function names(filter: string): Promise<{ total: number; names: string[] }> {
    const res = await scim.request('GET', `/Devices?filter=${encodeURIComponent(filter)}&count=1000`);
    assert.equal(res.status, 200, res.text);
    return {
      total: res.body.totalResults,
      names: ((res.body.Resources ?? []) as Json[]).map((d) => d.displayName as string).sort(),
    };
  }

  test('sw is case-insensitive and takes %, _ and \\ in the operand literally', async () => {
    assert.deepEqual(await names('displayName sw "pump 100%"'), { total: 1, names: ['Pump 100%'] });
    assert.deepEqual(await names('displayName sw "PUMP 100"'), {
      total: 2,
      names: ['Pump 100%', 'Pump 1000'],
    });
    assert.deepEqual(await names('displayName sw "pump_"'), { total: 1, names: ['Pump_A'] });
    assert.deepEqual(await names('displayName sw "back\\\\"'), { total: 1, names: ['Back\\slash'] });
    assert.deepEqual(await names('displayName sw "%"'), { total: 0, names: [] });
    assert.deepEqual(await names('displayName sw "sensor 0012"'), {
      total: 10,
      names: Array.from({ length: 10 }, (_, k) => `Sensor 0012${k}`),
    });
    assert.deepEqual(await names('displayName eq "sensor 00007"'), { total: 1, names: ['Sensor 00007'] });
  });

  test('the count and the page of `displayName sw` and `eq` (one statement) both use the prefix index', async () => {
    const index = uniqueIndexes(t.app.registry).find(
      (i) => i.prefix && i.resourceType === 'Device' && i.attribute === 'displayName',
    );
    assert.ok(index, 'a prefix index for Device.displayName');
    assert.match(index.statement, /text_pattern_ops/);
    const rt = t.app.registry.resourceType('Device')!;
    for (const text of ['displayName sw "Sensor 0012"', 'displayName eq "Sensor 00007"']) {
      const filter = bindFilter(t.app.registry, rt, t.app.service.parseFilter(text)) as BoundFilter;
      const seen: { sql: string; params: unknown[] }[] = [];
      const recorder: Queryable = {
        query: (sql, params) => {
          seen.push({ sql, params: params ?? [] });
          return t.app.db.query(sql, params);
        },
      };
      await new ResourceRepository().list(recorder, TENANT, {
        types: [{ rt, filter }],
        page: { kind: 'index', offset: 0, limit: 100 },
      });
      assert.equal(seen.length, 1, 'the count and the page are one statement');
      const plan = await t.app.db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${seen[0].sql}`, seen[0].params);
      const planText = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
      // Both sides of the statement (the count and the page) scan the prefix index.
      assert.equal(planText.split(index.name).length - 1, 2, `${seen[0].sql}\n${planText}`);
    }
  });
});
