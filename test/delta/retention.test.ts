/**
 * Change log retention and what it does to delta tokens: a token older than the retention, or
 * whose window pruning has cut into, is refused with a detail telling the client to do a full
 * pull; per-tenant retention; and the delta queries' plans (index scans on changes: a delta costs
 * the changes it reports, not the size of the log). Runs on PGlite, and on PostgreSQL when
 * DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertScimError, scimBase, tenantWithAdmin } from '../auth/helpers.ts';
import { DeltaService } from '../../src/service/delta.ts';
import { BOUNDS_SQL, CANDIDATES_SQL, currentPosition } from '../../src/store/changes.ts';
import { DELTA_REQUEST, createUser, deltaToken, ok, pullDelta, summary, type Json } from './helpers.ts';

const FULL_PULL =
  /^The delta token is older than the retained change log \([\d.e-]+ days\): do a full pull \(GET \/Users with paging\) and take a new token from GET \/Users\/\.deltaToken first$/;

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t?.close();
});

async function delta(base: string, token: string, dt: string) {
  return t.request('POST', `${base}/Users/.delta`, {
    token,
    body: { schemas: [DELTA_REQUEST], deltaToken: dt },
  });
}

describe('delta query: retention', () => {
  test('a token older than the retention → 400 invalidValue telling the client to do a full pull', async () => {
    const short = await startTestApp({ changeRetentionDays: 1.5 / 86_400 });
    try {
      const spc = await short.request('GET', '/scim/v2/ServiceProviderConfig');
      assert.equal(spc.body.DeltaQuery.deltaTokenExpiry, 1);
      const res = await short.request('GET', '/scim/v2/Users/.deltaToken');
      ok(res);
      const issued = Date.now();
      const expiry = Date.parse(res.body.expiry);
      assert.ok(expiry > issued - 1000 && expiry <= issued + 1500, res.body.expiry);
      const fresh = await short.request('POST', '/scim/v2/Users/.delta', {
        body: { schemas: [DELTA_REQUEST], deltaToken: res.body.value },
      });
      ok(fresh);
      await sleep(2600);
      const stale = await short.request('POST', '/scim/v2/Users/.delta', {
        body: { schemas: [DELTA_REQUEST], deltaToken: res.body.value },
      });
      assertScimError(stale, 400, FULL_PULL, 'invalidValue');
      const root = await short.request('GET', '/scim/v2/.deltaToken');
      await sleep(2600);
      const staleRoot = await short.request('POST', '/scim/v2/.delta', {
        body: { schemas: [DELTA_REQUEST], deltaToken: root.body.value },
      });
      assertScimError(
        staleRoot,
        400,
        /do a full pull \(GET \/ with paging\) and take a new token from GET \/\.deltaToken first$/,
        'invalidValue',
      );
    } finally {
      await short.close();
    }
  });

  test('pruning removes changes past each tenant’s retention; tokens whose window it cut into are refused', async () => {
    const longToken = await tenantWithAdmin(t, 'keep-long');
    await t.app.admin.createTenant({ id: 'keep-short', settings: { limits: { changeRetentionDays: 1 } } });
    await t.app.admin.createClient('keep-short', { id: 'ks-admin', name: 'admin', scopes: ['admin'] });
    const shortToken = (await t.app.admin.issueToken('keep-short', 'ks-admin')).token;
    const long = scimBase('keep-long');
    const short = scimBase('keep-short');
    const spc = await t.request('GET', `${short}/ServiceProviderConfig`, { token: shortToken });
    assert.equal(spc.body.DeltaQuery.deltaTokenExpiry, 86_400);

    const dtLong = await deltaToken(t, `${long}/Users`, longToken);
    const dtShort = await deltaToken(t, `${short}/Users`, shortToken);
    const ul = await createUser(t, long, 'l1', longToken);
    const us = await createUser(t, short, 's1', shortToken);
    const count = async (tenant: string) =>
      Number(
        (
          await t.app.db.query<{ n: string }>('SELECT count(*) AS n FROM changes WHERE tenant_id = $1', [
            tenant,
          ])
        ).rows[0].n,
      );
    assert.equal(await count('keep-short'), 1);

    // Two days from now: past keep-short's 1 day, within keep-long's 30.
    const service = new DeltaService(t.app.service, t.app.config);
    const removed = await service.prune(new Date(Date.now() + 2 * 86_400_000));
    assert.ok(removed >= 1);
    assert.equal(await count('keep-short'), 0);
    assert.equal(await count('keep-long'), 1);

    assertScimError(await delta(short, shortToken, dtShort), 400, FULL_PULL, 'invalidValue');
    const kept = await pullDelta(t, `${long}/Users`, dtLong, {}, longToken);
    assert.deepEqual(summary(kept.items), [`create:${ul.id}`]);

    // After the full pull a new token works again.
    const again = await deltaToken(t, `${short}/Users`, shortToken);
    ok(
      await t.request('PATCH', `${short}/Users/${us.id}`, {
        token: shortToken,
        body: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'add', path: 'title', value: 'x' }],
        },
      }),
    );
    assert.deepEqual(summary((await pullDelta(t, `${short}/Users`, again, {}, shortToken)).items), [
      `update:${us.id}`,
    ]);

    // A token issued after the cut but before pruning ran again is still whole.
    await service.prune(new Date());
    assert.deepEqual(summary((await pullDelta(t, `${short}/Users`, again, {}, shortToken)).items), [
      `update:${us.id}`,
    ]);
  });

  test('retention is a tenant setting of the admin API (a positive number of days)', async () => {
    const bad = await t.request('POST', '/admin/v1/tenants', {
      body: { id: 'ret-bad', settings: { limits: { changeRetentionDays: 0 } } },
    });
    assert.equal(bad.status, 400, bad.text);
    const good = await t.request('POST', '/admin/v1/tenants', {
      body: { id: 'ret-good', settings: { limits: { changeRetentionDays: 7 } } },
    });
    assert.equal(good.status, 201, good.text);
    assert.equal(good.body.settings.limits.changeRetentionDays, 7);
  });
});

describe('delta query: cost', () => {
  const plan = async (sql: string, params: unknown[]) => {
    const res = await t.app.db.query<Json>(`EXPLAIN (FORMAT JSON) ${sql}`, params);
    const raw = res.rows[0]['QUERY PLAN'];
    return JSON.stringify(typeof raw === 'string' ? JSON.parse(raw) : raw);
  };
  /** The plans of a window's bounds and first page: index scans only, the window through changes_tenant_txid. */
  async function assertIndexPlans(from: string, to: string): Promise<void> {
    const bounds = await t.app.db.query<{ lo: string; hi: string }>(BOUNDS_SQL, [
      'big-log',
      from,
      to,
      ['User'],
    ]);
    const boundsPlan = await plan(BOUNDS_SQL, ['big-log', from, to, ['User']]);
    const pagePlan = await plan(CANDIDATES_SQL, [
      'big-log',
      from,
      to,
      ['User'],
      Number(bounds.rows[0].lo) - 1,
      Number(bounds.rows[0].hi),
      101,
    ]);
    for (const p of [boundsPlan, pagePlan]) {
      assert.doesNotMatch(p, /"Node Type":"Seq Scan"/, p);
      assert.match(p, /"Node Type":"(Bitmap )?Index (Only )?Scan"/, p);
      assert.match(p, /"Relation Name":"changes"/, p);
    }
    assert.match(boundsPlan, /"Index Name":"changes_tenant_txid"/, boundsPlan);
  }

  test('the window and page queries are index scans on changes (O(changes in the window), not O(log))', async () => {
    const token = await tenantWithAdmin(t, 'big-log');
    const base = scimBase('big-log');
    // 20,000 old log rows in one transaction, then a token, then 10 changes (deletes carry no data).
    await t.app.db.query(
      `INSERT INTO changes (tenant_id, at, operation, resource_type, resource_id, version)
       SELECT 'big-log', now(), 'create', 'User', 'old-' || g, 1 FROM generate_series(1, 20000) g`,
    );
    const dt = await deltaToken(t, `${base}/Users`, token);
    const from = await currentPosition(t.app.db);
    for (let i = 0; i < 10; i++) {
      await t.app.db.query(
        `INSERT INTO changes (tenant_id, at, operation, resource_type, resource_id, version)
         VALUES ('big-log', now(), 'delete', 'User', $1, 2)`,
        [`old-${i + 1}`],
      );
    }
    await t.app.db.query('ANALYZE changes');
    await assertIndexPlans(from, await currentPosition(t.app.db));
    const small = await pullDelta(t, `${base}/Users`, dt, {}, token);
    assert.deepEqual(
      summary(small.items),
      Array.from({ length: 10 }, (_, i) => `delete:old-${i + 1}`),
    );

    // A large window (5,000 changes in one transaction) after the 20,010 rows: still index scans.
    const from2 = await currentPosition(t.app.db);
    await t.app.db.query(
      `INSERT INTO changes (tenant_id, at, operation, resource_type, resource_id, version)
       SELECT 'big-log', now(), 'delete', 'User', 'win-' || g, 2 FROM generate_series(1, 5000) g`,
    );
    await t.app.db.query('ANALYZE changes');
    await assertIndexPlans(from2, await currentPosition(t.app.db));
    const large = await pullDelta(t, `${base}/Users`, small.next, { count: 1000 }, token);
    assert.deepEqual(
      large.pages.map((p) => p.Resources.length),
      [1000, 1000, 1000, 1000, 1000],
    );
    assert.deepEqual(
      summary(large.items),
      Array.from({ length: 5000 }, (_, i) => `delete:win-${i + 1}`),
    );
  });
});
