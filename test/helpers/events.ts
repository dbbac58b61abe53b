/**
 * Publishing in tests without racing the change log's position. On PostgreSQL the position is
 * the oldest transaction running anywhere in the cluster, so another test file's open
 * transaction can hold it back for a moment: the publisher rightly leaves changes above it to a
 * later round, which a test asserting exact deliveries cannot allow for. These helpers wait
 * until every committed change is below the position before publishing.
 */
import pg from 'pg';
import type { App } from '../../src/app.ts';
import type { PublishResult } from '../../src/events/outbound/publisher.ts';

/** Waits (up to 10 s) until every committed change is below the log's current position. */
export async function settleChangeLog(app: App): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const res = await app.db.query<{ done: boolean | null }>(
      'SELECT (SELECT max(txid) FROM changes) < pg_snapshot_xmin(pg_current_snapshot()) AS done',
    );
    if (res.rows[0].done !== false) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the change log did not settle within 10 s');
}

/** settleChangeLog, then one publishing round. */
export async function publishSettled(app: App): Promise<PublishResult> {
  await settleChangeLog(app);
  return app.publisher.publishOnce();
}

/**
 * For tests with several processes on one PostgreSQL cluster (DATABASE_URL; nothing to do on the
 * embedded store): waits until every transaction that began before the call has ended, anywhere
 * in the cluster. The writes a test made before it are then inside the change-log windows (delta
 * tokens, changes pushes) of every node, whatever other test files keep open meanwhile.
 */
export async function settleCluster(timeoutMs = 30_000): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const mark = (await client.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0].x;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await client.query<{ done: boolean }>(
        'SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 AS done',
        [mark],
      );
      if (res.rows[0].done) return;
      if (Date.now() > deadline) throw new Error(`the cluster kept a transaction older than ${mark} open`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    await client.end();
  }
}
