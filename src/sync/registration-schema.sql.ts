/**
 * Tables of automatic customer registration (use-case behaviour 31, src/sync/registration.ts and
 * src/sync/device-registration.ts). Appended to the schema by src/store/open.ts; idempotent.
 *
 * Manufacturer side:
 * - `sync_registration_templates`: what a tenant creates for each customer that registers: the
 *   push flow (with `{customer}` in its filter) and connection defaults.
 * - `sync_registrations`: the customers registered, with the connection and flow made for each.
 *
 * Customer side:
 * - `device_manufacturers`: the manufacturers a tenant registers with when a device of theirs
 *   contacts it (matched by MUD URL prefix): the registration URL and the credential for it (stored
 *   sealed, like a connection's, never shown), and the registration's state.
 */
export const REGISTRATION_SCHEMA: string[] = [
  `CREATE TABLE IF NOT EXISTS sync_registration_templates (
     tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
     flow jsonb NOT NULL,
     connection jsonb NOT NULL DEFAULT '{}'::jsonb,
     enabled boolean NOT NULL DEFAULT true,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     updated timestamptz NOT NULL DEFAULT clock_timestamp()
   )`,
  `CREATE TABLE IF NOT EXISTS sync_registrations (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     customer text NOT NULL,
     connection_id text NOT NULL,
     flow_id text NOT NULL,
     registered_by text NOT NULL,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     updated timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, customer)
   )`,
  `CREATE TABLE IF NOT EXISTS device_manufacturers (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id text NOT NULL,
     mud_url_prefix text NOT NULL,
     registration_url text NOT NULL,
     token text NOT NULL,
     scim_base_url text,
     client_id text NOT NULL,
     status text NOT NULL DEFAULT 'pending',
     registered_at timestamptz,
     token_id text,
     last_error text,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     updated timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, id)
   )`,
];
