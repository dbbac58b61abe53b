/**
 * Tables of asynchronous SCIM requests (Prefer: respond-async, RFC 9967 §2.5). Appended to the
 * base schema by src/store/open.ts; idempotent like it.
 */
export const ASYNC_REQUESTS_SCHEMA: string[] = [
  // One row per request answered with 202: what to run, for whom, and its completion SET(s).
  `CREATE TABLE IF NOT EXISTS async_requests (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     -- The Set-Txn header of the 202, and the txn of the completion SET (Bulk: <txn>:<index>).
     txn text NOT NULL,
     client_id text NOT NULL,
     -- The rights the request was accepted with: {scopes, userId?, endpointAppId?, method}.
     principal jsonb NOT NULL,
     method text NOT NULL CHECK (method IN ('POST', 'PUT', 'PATCH', 'DELETE')),
     -- Relative to the tenant's SCIM base: /Users, /Users/{id}, /Bulk.
     path text NOT NULL,
     -- The tenant's SCIM base URL the request came to (iss of the SET, locations).
     base_url text NOT NULL,
     if_match text,
     -- The JSON body as text: jsonb would refuse a \\u0000 that the synchronous path answers with 400.
     body text,
     state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
     attempts integer NOT NULL DEFAULT 0,
     claimed_by text,
     claimed_at timestamptz,
     -- Claims of the misc:asyncresp SET(s), in the order of the operations.
     result jsonb,
     -- The same SETs signed (compact JWS), filled right after the completion commits.
     sets jsonb,
     created timestamptz NOT NULL DEFAULT now(),
     finished timestamptz,
     PRIMARY KEY (tenant_id, txn)
   )`,
  `CREATE INDEX IF NOT EXISTS async_requests_pending ON async_requests (created)
     WHERE state IN ('queued', 'running')`,
  `CREATE INDEX IF NOT EXISTS async_requests_finished ON async_requests (finished)
     WHERE state IN ('done', 'failed')`,
  `CREATE INDEX IF NOT EXISTS async_requests_unsigned ON async_requests (finished)
     WHERE sets IS NULL AND state IN ('done', 'failed')`,
];
