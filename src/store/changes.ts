/**
 * The change log read side: delta windows and retention. Rows are written by
 * TenancyRepository.recordChange in each write's transaction; `txid` (the writing transaction's
 * id, xid8) is filled in by the column default.
 *
 * A position in the log is a snapshot boundary X = pg_snapshot_xmin(pg_current_snapshot()):
 * every transaction with an id below X has finished (committed or rolled back). A window
 * [from, to) of two such positions therefore holds only finished transactions, and a row that
 * commits late (its seq lower than rows committed before it) still lands in exactly one window —
 * the one whose range holds its transaction id. Sequence numbers order rows inside a window only.
 *
 * Positions travel as decimal text and are cast to xid8 in SQL: xid8 is 64 bits wide, and both
 * engines return it as a string.
 */
import type { Queryable } from './db.ts';

/** The latest change of one resource inside a window, with what the window says about it. */
export interface DeltaCandidate {
  seq: number;
  resource_type: string;
  resource_id: string;
  /** Operation of the resource's latest change in the window: create | replace | patch | delete. */
  operation: string;
  /** Client that made that change. */
  client_id: string | null;
  /** The resource's first retained change is its create, and it lies in the window. */
  created_in_window: boolean;
  /** Client of the resource's first retained change when that is its create (the creator). */
  creator: string | null;
}

/** The current log position: every transaction with a lower id has finished. */
export async function currentPosition(q: Queryable): Promise<string> {
  const res = await q.query<{ x: string }>('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x');
  return res.rows[0].x;
}

// count(*) keeps the planner from answering min/max by walking the seq index from one end (that
// walk passes every row before the window: O(log), not O(window)).
export const BOUNDS_SQL = `SELECT min(seq) AS lo, max(seq) AS hi, count(*) AS n FROM changes
  WHERE tenant_id = $1 AND txid >= $2::xid8 AND txid < $3::xid8 AND resource_type = ANY($4::text[])`;

/**
 * Lowest and highest seq of the window's rows of these types. Served by changes_tenant_txid
 * (tenant_id, txid, seq): a range scan over the window's rows only.
 */
export async function windowBounds(
  q: Queryable,
  tenant: string,
  from: string,
  to: string,
  types: string[],
): Promise<{ lo: number; hi: number } | undefined> {
  const res = await q.query<{ lo: number | string | null; hi: number | string | null }>(BOUNDS_SQL, [
    tenant,
    from,
    to,
    types,
  ]);
  const { lo, hi } = res.rows[0];
  return lo === null || hi === null ? undefined : { lo: Number(lo), hi: Number(hi) };
}

export const CANDIDATES_SQL = `SELECT c.seq, c.resource_type, c.resource_id, c.operation, c.client_id,
       COALESCE(f.operation = 'create' AND f.txid >= $2::xid8 AND f.txid < $3::xid8, false) AS created_in_window,
       CASE WHEN f.operation = 'create' THEN f.client_id END AS creator
  FROM changes c
  LEFT JOIN LATERAL (
    SELECT f.operation, f.txid, f.client_id FROM changes f
    WHERE f.tenant_id = c.tenant_id AND f.resource_id = c.resource_id ORDER BY f.seq LIMIT 1
  ) f ON true
  WHERE c.tenant_id = $1 AND c.seq > $5 AND c.seq <= $6
    AND c.txid >= $2::xid8 AND c.txid < $3::xid8 AND c.resource_type = ANY($4::text[])
    AND NOT EXISTS (
      SELECT 1 FROM changes l
      WHERE l.tenant_id = c.tenant_id AND l.resource_id = c.resource_id AND l.seq > c.seq
        AND l.txid >= $2::xid8 AND l.txid < $3::xid8
    )
  ORDER BY c.seq LIMIT $7`;

/**
 * The next changed resources of a window after seq `after` (and at most `hi`), in seq order:
 * each resource once, at its latest change in the window. Walks changes_tenant_seq from `after`;
 * the look-ups per row (later change of the same resource, its first change) are index probes of
 * changes_tenant_resource_seq, so a page costs the rows it passes, not the tenant's log.
 */
export async function windowCandidates(
  q: Queryable,
  tenant: string,
  from: string,
  to: string,
  types: string[],
  after: number,
  hi: number,
  limit: number,
): Promise<DeltaCandidate[]> {
  const res = await q.query<DeltaCandidate>(CANDIDATES_SQL, [tenant, from, to, types, after, hi, limit]);
  return res.rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** The highest transaction id whose changes retention removed from the tenant's log, if any. */
export async function prunedThrough(q: Queryable, tenant: string): Promise<string | undefined> {
  const res = await q.query<{ x: string | null }>(
    'SELECT changes_pruned_through::text AS x FROM tenants WHERE id = $1',
    [tenant],
  );
  return res.rows[0]?.x ?? undefined;
}

/** Whether position `a` is above position `b` (compared as xid8 by the database: 64-bit safe). */
export function positionAbove(a: string, b: string): boolean {
  return BigInt(a) > BigInt(b);
}

/**
 * Deletes the tenant's changes older than `before` and remembers the highest transaction id
 * removed, so that a delta token from before that point is refused instead of silently missing
 * rows (a long transaction's rows can be older than the token that follows them).
 */
export async function pruneTenant(q: Queryable, tenant: string, before: Date): Promise<number> {
  const res = await q.query<{ n: number | string }>(
    `WITH gone AS (
       DELETE FROM changes WHERE tenant_id = $1 AND at < $2 RETURNING txid
     ), mark AS (
       UPDATE tenants SET changes_pruned_through =
         GREATEST(changes_pruned_through, (SELECT max(txid) FROM gone))
       WHERE id = $1 AND EXISTS (SELECT 1 FROM gone)
     )
     SELECT count(*) AS n FROM gone`,
    [tenant, before],
  );
  return Number(res.rows[0].n);
}

/** Tenants with their settings, for pruning each by its own retention. */
export async function tenantSettings(
  q: Queryable,
): Promise<{ id: string; settings: Record<string, unknown> }[]> {
  return (
    await q.query<{ id: string; settings: Record<string, unknown> }>(
      'SELECT id, settings FROM tenants ORDER BY id',
    )
  ).rows;
}
