/**
 * The relational layout (design.md "Data model"). Every table leads with tenant_id and every
 * query filters on it. The statements are idempotent: they run at every start, on both engines,
 * and must stay within PostgreSQL 15 SQL (the embedded engine is newer).
 */
export const BASE_SCHEMA: string[] = [
  `CREATE TABLE IF NOT EXISTS tenants (
     id text PRIMARY KEY,
     name text NOT NULL,
     settings jsonb NOT NULL DEFAULT '{}'::jsonb,
     created timestamptz NOT NULL DEFAULT now()
   )`,
  `INSERT INTO tenants (id, name) VALUES ('default', 'Default tenant') ON CONFLICT (id) DO NOTHING`,
  // A resource: attributes other than id, meta and relation attributes live in doc, under their
  // canonical (schema-cased) names; extension attributes under their schema URN key.
  `CREATE TABLE IF NOT EXISTS resources (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id text NOT NULL,
     resource_type text NOT NULL,
     external_id text,
     version bigint NOT NULL,
     created timestamptz NOT NULL,
     last_modified timestamptz NOT NULL,
     doc jsonb NOT NULL,
     owner_client text,
     PRIMARY KEY (tenant_id, id)
   )`,
  `CREATE INDEX IF NOT EXISTS resources_type_id ON resources (tenant_id, resource_type, id)`,
  `CREATE INDEX IF NOT EXISTS resources_external_id ON resources (tenant_id, resource_type, external_id)`,
  `CREATE INDEX IF NOT EXISTS resources_doc_gin ON resources USING GIN (doc jsonb_path_ops)`,
  // Group membership as rows: adding one member to a huge group is one insert.
  `CREATE TABLE IF NOT EXISTS group_members (
     tenant_id text NOT NULL,
     group_id text NOT NULL,
     member_id text NOT NULL,
     member_type text NOT NULL,
     display text,
     PRIMARY KEY (tenant_id, group_id, member_id),
     FOREIGN KEY (tenant_id, group_id) REFERENCES resources (tenant_id, id) ON DELETE CASCADE,
     FOREIGN KEY (tenant_id, member_id) REFERENCES resources (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX IF NOT EXISTS group_members_member ON group_members (tenant_id, member_id)`,
  // The SCIM clients of a tenant (an identity manager, a manufacturer's service, an app...).
  `CREATE TABLE IF NOT EXISTS clients (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id text NOT NULL,
     name text NOT NULL,
     scopes text[] NOT NULL DEFAULT '{}',
     user_id text,
     jwt_subject text,
     cert_subject text,
     cert_fingerprint text,
     rate_limit jsonb,
     created timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant_id, id)
   )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS clients_jwt_subject ON clients (tenant_id, jwt_subject) WHERE jwt_subject IS NOT NULL`,
  `CREATE UNIQUE INDEX IF NOT EXISTS clients_cert_fingerprint ON clients (tenant_id, cert_fingerprint) WHERE cert_fingerprint IS NOT NULL`,
  // Opaque bearer tokens: only a SHA-256 digest of the secret is kept; the secret is shown once.
  `CREATE TABLE IF NOT EXISTS tokens (
     id text PRIMARY KEY,
     tenant_id text NOT NULL,
     client_id text NOT NULL,
     token_hash text NOT NULL UNIQUE,
     description text,
     created timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz,
     revoked_at timestamptz,
     last_used timestamptz,
     FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX IF NOT EXISTS tokens_client ON tokens (tenant_id, client_id)`,
  // Every successful write, in the write's own transaction: the audit trail (and, later, the change log).
  `CREATE TABLE IF NOT EXISTS changes (
     seq bigserial PRIMARY KEY,
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     at timestamptz NOT NULL,
     client_id text,
     operation text NOT NULL,
     resource_type text NOT NULL,
     resource_id text NOT NULL,
     version bigint
   )`,
  `CREATE INDEX IF NOT EXISTS changes_tenant_seq ON changes (tenant_id, seq)`,
  // Secrets generated for a resource (an EndpointApp's clientToken): only their SHA-256 digest.
  `CREATE TABLE IF NOT EXISTS resource_secrets (
     tenant_id text NOT NULL,
     resource_id text NOT NULL,
     name text NOT NULL,
     digest text NOT NULL,
     PRIMARY KEY (tenant_id, resource_id, name),
     FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX IF NOT EXISTS resource_secrets_digest ON resource_secrets (tenant_id, name, digest)`,
  // A client may act for an EndpointApp (it then reaches the devices that name that app).
  `ALTER TABLE clients ADD COLUMN IF NOT EXISTS endpoint_app_id text`,
  `CREATE INDEX IF NOT EXISTS resources_owner ON resources (tenant_id, resource_type, owner_client)`,
  // Change log positions for delta queries (src/store/changes.ts): the writing transaction's id,
  // so that a row committing after rows with higher seq is still found (seq order is not commit order).
  `ALTER TABLE changes ADD COLUMN IF NOT EXISTS txid xid8 NOT NULL DEFAULT pg_current_xact_id()`,
  `CREATE INDEX IF NOT EXISTS changes_tenant_txid ON changes (tenant_id, txid, seq)`,
  `CREATE INDEX IF NOT EXISTS changes_tenant_resource_seq ON changes (tenant_id, resource_id, seq)`,
  // (tenant_id, resource_id) alone was a prefix of the index above: one index less per write.
  `DROP INDEX IF EXISTS changes_tenant_resource`,
  `CREATE INDEX IF NOT EXISTS changes_tenant_at ON changes (tenant_id, at)`,
  // Retention: the highest transaction id whose changes were pruned (older delta tokens are refused).
  `ALTER TABLE tenants ADD COLUMN IF NOT EXISTS changes_pruned_through xid8`,
  // Node-wide secrets (e.g. the key that signs paging cursors), shared by every node of a cluster.
  `CREATE TABLE IF NOT EXISTS server_secrets (
     name text PRIMARY KEY,
     secret text NOT NULL
   )`,
  // Keys that sign a tenant's Security Event Tokens (src/events/keys.ts). The private JWK is stored
  // sealed (src/security/secret-box.ts). One active key per tenant (not_after and retired unset).
  `CREATE TABLE IF NOT EXISTS signing_keys (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     kid text NOT NULL,
     alg text NOT NULL,
     private_jwk jsonb NOT NULL,
     public_jwk jsonb NOT NULL,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     not_after timestamptz,
     retired timestamptz,
     PRIMARY KEY (tenant_id, kid)
   )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_active ON signing_keys (tenant_id) WHERE not_after IS NULL AND retired IS NULL`,
];
