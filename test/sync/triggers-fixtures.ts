/**
 * Flows for the trigger tests, inserted with SQL (the triggers read sync_flows directly): a
 * connection row per (tenant, id) and flow rows with the columns the triggers look at.
 */
import type { Queryable } from '../../src/store/db.ts';
import type { FlowDirection, FlowMode, RunTrigger } from '../../src/sync/types.ts';

export async function addConnection(db: Queryable, tenant: string, id: string): Promise<void> {
  await db.query(
    `INSERT INTO sync_connections (tenant_id, id, name, base_url, auth)
     VALUES ($1, $2, $2, 'https://remote.example/scim/v2', '{"type":"bearer","token":"x"}'::jsonb)`,
    [tenant, id],
  );
}

export interface FlowRow {
  id: string;
  connection: string;
  direction: FlowDirection;
  mode: FlowMode;
  types: readonly string[];
  schedule?: string;
  onLocalChange?: boolean;
  upstreamId?: string;
  enabled?: boolean;
}

export async function addFlow(db: Queryable, tenant: string, f: FlowRow): Promise<void> {
  await db.query(
    `INSERT INTO sync_flows (tenant_id, id, name, connection_id, direction, mode, resource_types, schedule,
                             on_local_change, upstream_id, enabled)
     VALUES ($1, $2, $2, $3, $4, $5, $6::text[], $7, $8, $9, $10)`,
    [
      tenant,
      f.id,
      f.connection,
      f.direction,
      f.mode,
      f.types,
      f.schedule ?? null,
      f.onLocalChange ?? false,
      f.upstreamId ?? null,
      f.enabled ?? true,
    ],
  );
}

export interface Requested {
  at: Date;
  trigger: RunTrigger;
}

/** The pending request of every flow of a tenant: id → { at, trigger } (flows without one are left out). */
export async function requests(db: Queryable, tenant: string): Promise<Record<string, Requested>> {
  const res = await db.query<{ id: string; run_requested: Date; run_requested_trigger: RunTrigger }>(
    `SELECT id, run_requested, run_requested_trigger FROM sync_flows
      WHERE tenant_id = $1 AND run_requested IS NOT NULL ORDER BY id`,
    [tenant],
  );
  return Object.fromEntries(
    res.rows.map((r) => [r.id, { at: new Date(r.run_requested), trigger: r.run_requested_trigger }]),
  );
}

/** Pending flows of a tenant: id → trigger. */
export async function requestedTriggers(db: Queryable, tenant: string): Promise<Record<string, RunTrigger>> {
  const all = await requests(db, tenant);
  return Object.fromEntries(Object.entries(all).map(([id, r]) => [id, r.trigger]));
}

/** What the runner does when it takes a request (clears it), so a test can start over. */
export async function clearRequests(db: Queryable): Promise<void> {
  await db.query('UPDATE sync_flows SET run_requested = NULL, run_requested_trigger = NULL');
}
