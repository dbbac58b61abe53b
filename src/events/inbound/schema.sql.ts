/**
 * Tables of incoming events (SETs received from an upstream publisher). Appended to the base
 * schema by src/store/open.ts; idempotent like it.
 *
 * - `upstreams`: a publisher this tenant accepts SETs from (issuer, keys, callback, poll).
 * - `received_events`: every SET accepted (pushed or polled), persisted before it is acknowledged
 *   (RFC 9967 §5: persist before acknowledging); the applier moves it from pending to applied,
 *   skipped or failed. The jti is unique per tenant and upstream: a repeated SET changes nothing.
 * - `replica_versions`: per (tenant, upstream, resource) the source version last applied and a
 *   tombstone after a delete, so a stale or repeated event never overwrites newer data.
 */
export const INBOUND_EVENTS_SCHEMA: string[] = [
  // The callback and poll authorization header values must be usable, so they are stored sealed
  // (src/security/secret-box.ts, docs/secrets.md), like event_receivers.authorization_header.
  `CREATE TABLE IF NOT EXISTS upstreams (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id text NOT NULL,
     name text NOT NULL,
     issuer text NOT NULL,
     jwks_uri text,
     jwks jsonb,
     accept_unsigned boolean NOT NULL DEFAULT false,
     audience text,
     scim_base_url text NOT NULL,
     callback_authorization text,
     poll_url text,
     poll_authorization text,
     poll_max_events integer,
     poll_interval_seconds integer,
     resource_types text[],
     on_feed_remove text NOT NULL DEFAULT 'keep' CHECK (on_feed_remove IN ('delete', 'keep')),
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     updated timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, id)
   )`,
  `CREATE TABLE IF NOT EXISTS received_events (
     seq bigserial PRIMARY KEY,
     tenant_id text NOT NULL,
     upstream_id text NOT NULL,
     jti text NOT NULL,
     txn text,
     subject text,
     event_uris text[] NOT NULL,
     claims jsonb NOT NULL,
     via text NOT NULL CHECK (via IN ('push', 'poll')),
     state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'skipped', 'failed')),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt timestamptz NOT NULL DEFAULT clock_timestamp(),
     error text,
     received timestamptz NOT NULL DEFAULT clock_timestamp(),
     processed timestamptz,
     FOREIGN KEY (tenant_id, upstream_id) REFERENCES upstreams (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS received_events_jti ON received_events (tenant_id, upstream_id, jti)`,
  `CREATE INDEX IF NOT EXISTS received_events_pending ON received_events (seq) WHERE state = 'pending'`,
  `CREATE INDEX IF NOT EXISTS received_events_upstream ON received_events (tenant_id, upstream_id, seq)`,
  `CREATE TABLE IF NOT EXISTS replica_versions (
     tenant_id text NOT NULL,
     upstream_id text NOT NULL,
     resource_id text NOT NULL,
     resource_type text NOT NULL,
     version text,
     deleted boolean NOT NULL DEFAULT false,
     updated timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, upstream_id, resource_id),
     FOREIGN KEY (tenant_id, upstream_id) REFERENCES upstreams (tenant_id, id) ON DELETE CASCADE
   )`,
  // The last apply left members out: the same version may be applied again (applier.ts VersionRow).
  `ALTER TABLE replica_versions ADD COLUMN IF NOT EXISTS incomplete boolean NOT NULL DEFAULT false`,
];
