/**
 * Seq order is not commit order: a transaction that took its seq first may commit last. These
 * tests hold such a transaction open on a second PostgreSQL connection and show that no delta
 * misses its change. They need several connections, so they always run on PostgreSQL: the
 * server of DATABASE_URL, or the local one (postgres://postgres@127.0.0.1:5432/postgres).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { TestApp } from '../helpers/app.ts';
import { createUser, deltaToken, pullDelta, settle, summary } from './helpers.ts';

process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const { startTestApp } = await import('../helpers/app.ts');

const BASE = '/scim/v2';
let t: TestApp;
let late: pg.Client;

before(async () => {
  t = await startTestApp();
  assert.equal(t.app.db.kind, 'postgres');
  late = new pg.Client({ connectionString: t.app.config.databaseUrl });
  await late.connect();
});
after(async () => {
  await late?.end();
  await t?.close();
});

/** Starts a transaction on the second connection that changes a user and logs it, and leaves it open. */
async function beginLateChange(id: string, displayName: string): Promise<void> {
  await late.query('BEGIN');
  await late.query(
    `UPDATE resources SET doc = jsonb_set(doc, '{displayName}', to_jsonb($2::text)), version = version + 1,
       last_modified = now() WHERE tenant_id = 'default' AND id = $1`,
    [id, displayName],
  );
  await late.query(
    `INSERT INTO changes (tenant_id, at, operation, resource_type, resource_id, version)
     SELECT tenant_id, last_modified, 'patch', resource_type, id, version FROM resources WHERE tenant_id = 'default' AND id = $1`,
    [id],
  );
}

describe('delta query: transactions committing out of seq order (PostgreSQL)', () => {
  test('a change whose transaction commits after later-seq changes is delivered, once, after it commits', async () => {
    const slow = await createUser(t, BASE, 'slow');
    const t0 = await deltaToken(t, BASE);

    await beginLateChange(slow.id, 'late');
    const lateSeq = Number((await late.query('SELECT max(seq) AS s FROM changes')).rows[0].s);
    // Committed while the first is open: a higher seq, committed first.
    const quick = await createUser(t, BASE, 'quick');
    const quickSeq = Number(
      (await t.app.db.query<{ s: string }>('SELECT seq AS s FROM changes WHERE resource_id = $1', [quick.id]))
        .rows[0].s,
    );
    assert.ok(quickSeq > lateSeq, 'the open transaction took the lower seq');

    // The window ends below the open transaction: nothing after it is handed out yet either, so a
    // "seq > last seen" watermark cannot skip past the open one.
    const during = await pullDelta(t, BASE, t0, {}, undefined, { settle: false });
    assert.deepEqual(summary(during.items), []);

    await late.query('COMMIT');
    const afterCommit = await pullDelta(t, BASE, during.next);
    assert.deepEqual(summary(afterCommit.items), [`update:${slow.id}`, `create:${quick.id}`]);
    assert.equal(afterCommit.items[0].data.displayName, 'late');
    assert.equal(afterCommit.items[0].data.meta.version, 'W/"2"');

    const quiet = await pullDelta(t, BASE, afterCommit.next);
    assert.deepEqual(quiet.items, []);
  });

  test('a token taken while a transaction is open still covers that transaction when it commits', async () => {
    const held = await createUser(t, BASE, 'held');
    await settle(t);
    await beginLateChange(held.id, 'held-late');
    // Another change commits after the open one's seq: the token is taken after both.
    const other = await createUser(t, BASE, 'other');
    const token = await deltaToken(t, BASE, undefined, { settle: false });
    await late.query('COMMIT');

    const pulled = await pullDelta(t, BASE, token);
    // `other` committed before the token but its transaction id is not below the token's
    // boundary (the open transaction held it down): delivered again, which is harmless; the late
    // change is not lost. Items come in seq order: the late change took its seq first.
    assert.deepEqual(summary(pulled.items), [`update:${held.id}`, `create:${other.id}`]);
    assert.equal(pulled.items[0].data.displayName, 'held-late');
  });

  test('a rolled-back transaction leaves nothing in any window', async () => {
    const u = await createUser(t, BASE, 'rolled');
    const token = await deltaToken(t, BASE);
    await beginLateChange(u.id, 'never');
    await late.query('ROLLBACK');
    const pulled = await pullDelta(t, BASE, token);
    assert.deepEqual(pulled.items, []);
  });
});
