/**
 * Tables of outgoing events (RFC 9967 SETs): feeds, their receivers, and the delivery outbox.
 * Appended to the base schema by src/store/open.ts; idempotent like it.
 *
 * A feed selects resources (resource types plus a SCIM filter, or explicit members) and a form
 * (full or notice). The publisher (publisher.ts) reads the change log with the same txid windows as
 * the delta pull and, in one transaction per window, writes one outbox row per receiver and change
 * and moves the feed's position. Push workers and the poll endpoint drain the outbox.
 */
export const OUTBOUND_EVENTS_SCHEMA: string[] = [
  `CREATE TABLE IF NOT EXISTS event_feeds (
     tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id text NOT NULL,
     name text NOT NULL,
     resource_types text[] NOT NULL,
     filter text,
     explicit_members boolean NOT NULL DEFAULT false,
     form text NOT NULL CHECK (form IN ('full', 'notice')),
     -- Publisher progress: every change with txid below position has been published.
     position xid8 NOT NULL,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, id)
   )`,
  // Which resources are in a feed now (explicit members, and filter matches seen by the
  // publisher): leaving the set emits feed:remove, entering it feed:add.
  `CREATE TABLE IF NOT EXISTS event_feed_members (
     tenant_id text NOT NULL,
     feed_id text NOT NULL,
     resource_id text NOT NULL,
     PRIMARY KEY (tenant_id, feed_id, resource_id),
     FOREIGN KEY (tenant_id, feed_id) REFERENCES event_feeds (tenant_id, id) ON DELETE CASCADE
   )`,
  // A receiver subscribed to a feed: push (RFC 8935, scimd POSTs to endpoint_url) or poll
  // (RFC 8936, the receiver POSTs to scimd as client poll_client_id). The push authorization
  // header value must be usable, so it is stored sealed (src/security/secret-box.ts, docs/secrets.md).
  `CREATE TABLE IF NOT EXISTS event_receivers (
     tenant_id text NOT NULL,
     id text NOT NULL,
     feed_id text NOT NULL,
     name text NOT NULL,
     delivery text NOT NULL CHECK (delivery IN ('push', 'poll')),
     endpoint_url text,
     authorization_header text,
     poll_client_id text,
     audience text,
     unsigned boolean NOT NULL DEFAULT false,
     max_attempts integer NOT NULL DEFAULT 10,
     paused boolean NOT NULL DEFAULT false,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (tenant_id, id),
     FOREIGN KEY (tenant_id, feed_id) REFERENCES event_feeds (tenant_id, id) ON DELETE CASCADE
   )`,
  // The outbox: one signed SET per receiver and change, in publishing order (seq).
  // state: pending → delivered (push 202 / poll ack) or failed (permanent error, setErrs, or
  // max_attempts reached). A pending row with attempts > 0 waits until next_attempt.
  `CREATE TABLE IF NOT EXISTS event_outbox (
     seq bigserial PRIMARY KEY,
     tenant_id text NOT NULL,
     receiver_id text NOT NULL,
     jti text NOT NULL,
     txn text NOT NULL,
     resource_type text NOT NULL,
     resource_id text NOT NULL,
     event_uris text[] NOT NULL,
     set_jwt text NOT NULL,
     state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt timestamptz NOT NULL DEFAULT clock_timestamp(),
     last_error text,
     created timestamptz NOT NULL DEFAULT clock_timestamp(),
     delivered_at timestamptz,
     FOREIGN KEY (tenant_id, receiver_id) REFERENCES event_receivers (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS event_outbox_jti ON event_outbox (tenant_id, receiver_id, jti)`,
  `CREATE INDEX IF NOT EXISTS event_outbox_pending ON event_outbox (tenant_id, receiver_id, seq) WHERE state = 'pending'`,
  // Delivery (receivers.ts, push.ts, poll-routes.ts): a push receiver is delivered by one node at a
  // time, the one holding an unexpired lease; the last error and delivery time are kept on the
  // receiver so its state is one row read, not a search of the outbox.
  `ALTER TABLE event_receivers ADD COLUMN IF NOT EXISTS lease_owner text`,
  `ALTER TABLE event_receivers ADD COLUMN IF NOT EXISTS lease_until timestamptz`,
  `ALTER TABLE event_receivers ADD COLUMN IF NOT EXISTS last_error text`,
  `ALTER TABLE event_receivers ADD COLUMN IF NOT EXISTS last_error_at timestamptz`,
  `ALTER TABLE event_receivers ADD COLUMN IF NOT EXISTS last_delivery_at timestamptz`,
  // Listing a receiver's events by state (admin API) and counting them.
  `CREATE INDEX IF NOT EXISTS event_outbox_receiver_state ON event_outbox (tenant_id, receiver_id, state, seq)`,
  // Publishing (publisher.ts, feeds.ts). A window [position, pub_window_end) larger than one batch
  // is published in several transactions: pub_after is the seq of the last change row done, and
  // pub_window_hi the window's highest seq (fixed when the window is opened). rev changes with
  // every commit that moves the feed (publish step, membership change, feed update): a publisher
  // that read the feed before such a commit discards its work instead of writing stale events.
  `ALTER TABLE event_feeds ADD COLUMN IF NOT EXISTS pub_window_end xid8`,
  `ALTER TABLE event_feeds ADD COLUMN IF NOT EXISTS pub_window_hi bigint`,
  `ALTER TABLE event_feeds ADD COLUMN IF NOT EXISTS pub_after bigint`,
  `ALTER TABLE event_feeds ADD COLUMN IF NOT EXISTS rev bigint NOT NULL DEFAULT 0`,
  // Member rows keep what the log cannot tell afterwards: the type (sub_id of a feed:remove or
  // prov:delete once the resource is gone), its externalId, and the last published `active`
  // (prov:activate / prov:deactivate are transitions; the log has no before-state).
  `ALTER TABLE event_feed_members ADD COLUMN IF NOT EXISTS resource_type text`,
  `ALTER TABLE event_feed_members ADD COLUMN IF NOT EXISTS external_id text`,
  `ALTER TABLE event_feed_members ADD COLUMN IF NOT EXISTS active boolean`,
  `ALTER TABLE event_feed_members ADD COLUMN IF NOT EXISTS added timestamptz NOT NULL DEFAULT clock_timestamp()`,
];
