/**
 * Tables of the sync engine. Appended to the base schema by src/store/open.ts; idempotent like it.
 *
 * - `sync_connections`: a remote SCIM endpoint and its credentials. The credentials must be
 *   usable to call the remote, so they are stored sealed (src/security/secret-box.ts; like
 *   event_receivers' authorization): views never show them.
 * - `sync_flows`: what moves between this node and a connection (src/sync/types.ts Flow), with
 *   the engine's position between runs (`state`) and the lease that keeps one runner per flow
 *   across nodes (`lease_owner`, `lease_until`: a node that dies mid-run loses the lease when it
 *   expires, and the next run goes on from the stored position and links). Triggers (schedules,
 *   local changes, events, JIT sign-ins, the API) only set `run_requested`: the runner on any
 *   node picks requested flows up, so a request survives the node that made it.
 * - `sync_links`: per flow, which remote id a local resource is linked to, and what was last
 *   written on each side (versions and a digest of the mapped content), so a renamed user or a
 *   re-created remote record is updated, not duplicated, and an unchanged one is not re-sent.
 * - `sync_runs`: the run history (trigger, state, progress, counts, error).
 * - `sync_run_items`: per-resource outcomes of a run (kept for failures and changes, not skips).
 * - `sync_retries`: items that failed, retried by the next run without blocking the rest.
 */
export const SYNC_SCHEMA: string[] = [
  `CREATE TABLE IF NOT EXISTS sync_connections (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id text NOT NULL,
     name text NOT NULL,
     base_url text NOT NULL,
     auth jsonb NOT NULL,
     tls jsonb,
     compat jsonb,
     timeout_ms integer,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     updated timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, id)
   )`,
  // kind 'sql': a last-mile adapter (src/sync/adapters); `adapter` holds its settings and secret.
  `ALTER TABLE sync_connections ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'scim'`,
  `ALTER TABLE sync_connections ADD COLUMN IF NOT EXISTS adapter jsonb`,
  `CREATE TABLE IF NOT EXISTS sync_flows (
     tenant_id text NOT NULL,
     id text NOT NULL,
     name text NOT NULL,
     connection_id text NOT NULL,
     direction text NOT NULL CHECK (direction IN ('push', 'pull')),
     mode text NOT NULL CHECK (mode IN ('changes', 'full', 'delta', 'events')),
     resource_types text[] NOT NULL,
     filter text,
     mapping jsonb,
     authority jsonb,
     matching jsonb,
     on_delete text NOT NULL DEFAULT 'delete' CHECK (on_delete IN ('delete', 'deactivate', 'ignore')),
     use_put boolean NOT NULL DEFAULT false,
     full_every_seconds integer,
     upstream_id text,
     schedule text,
     on_local_change boolean NOT NULL DEFAULT false,
     enabled boolean NOT NULL DEFAULT true,
     state jsonb NOT NULL DEFAULT '{}'::jsonb,
     lease_owner text,
     lease_until timestamptz,
     run_requested timestamptz,
     run_requested_trigger text,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     updated timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, id),
     FOREIGN KEY (tenant_id, connection_id) REFERENCES sync_connections (tenant_id, id)
   )`,
  `CREATE TABLE IF NOT EXISTS sync_links (
     tenant_id text NOT NULL,
     flow_id text NOT NULL,
     resource_type text NOT NULL,
     local_id text NOT NULL,
     remote_id text NOT NULL,
     local_version bigint,
     remote_version text,
     digest text,
     updated timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, flow_id, local_id),
     FOREIGN KEY (tenant_id, flow_id) REFERENCES sync_flows (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS sync_links_remote ON sync_links (tenant_id, flow_id, remote_id)`,
  `CREATE TABLE IF NOT EXISTS sync_runs (
     tenant_id text NOT NULL,
     flow_id text NOT NULL,
     id text NOT NULL,
     trigger text NOT NULL,
     mode text NOT NULL,
     dry_run boolean NOT NULL DEFAULT false,
     state text NOT NULL CHECK (state IN ('running', 'succeeded', 'partial', 'failed', 'abandoned')),
     node text,
     done integer NOT NULL DEFAULT 0,
     total integer,
     created_count integer NOT NULL DEFAULT 0,
     updated_count integer NOT NULL DEFAULT 0,
     deleted_count integer NOT NULL DEFAULT 0,
     skipped_count integer NOT NULL DEFAULT 0,
     failed_count integer NOT NULL DEFAULT 0,
     error text,
     started timestamptz NOT NULL DEFAULT clock_timestamp(),
     heartbeat timestamptz NOT NULL DEFAULT clock_timestamp(),
     finished timestamptz,
     PRIMARY KEY (tenant_id, flow_id, id),
     FOREIGN KEY (tenant_id, flow_id) REFERENCES sync_flows (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX IF NOT EXISTS sync_runs_started ON sync_runs (tenant_id, flow_id, started DESC)`,
  `CREATE TABLE IF NOT EXISTS sync_run_items (
     tenant_id text NOT NULL,
     flow_id text NOT NULL,
     run_id text NOT NULL,
     seq integer NOT NULL,
     resource_type text NOT NULL,
     local_id text,
     remote_id text,
     action text NOT NULL,
     outcome text NOT NULL CHECK (outcome IN ('done', 'failed', 'planned')),
     attributes text[],
     error text,
     at timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, flow_id, run_id, seq),
     FOREIGN KEY (tenant_id, flow_id, run_id) REFERENCES sync_runs (tenant_id, flow_id, id) ON DELETE CASCADE
   )`,
  `CREATE TABLE IF NOT EXISTS sync_retries (
     tenant_id text NOT NULL,
     flow_id text NOT NULL,
     resource_type text NOT NULL,
     key text NOT NULL,
     attempts integer NOT NULL DEFAULT 1,
     last_error text,
     updated timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, flow_id, key),
     FOREIGN KEY (tenant_id, flow_id) REFERENCES sync_flows (tenant_id, id) ON DELETE CASCADE
   )`,
];
