/**
 * Publishing in tests without racing the change log's position. On PostgreSQL the position is
 * the oldest transaction running anywhere in the cluster, so another test file's open
 * transaction can hold it back for a moment: the publisher rightly leaves changes above it to a
 * later round, which a test asserting exact deliveries cannot allow for. These helpers wait
 * until every committed change is below the position before publishing.
 */
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
