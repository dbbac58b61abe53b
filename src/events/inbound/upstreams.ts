/**
 * Upstreams: the publishers a tenant accepts SCIM events (RFC 9967 SETs) from, and the SETs
 * received from them. An upstream names the issuer (`iss`) its SETs must carry, the keys they are
 * signed with (a JWKS URL or an inline JWKS; unsigned SETs only when accepted explicitly), the
 * audience they must name, the publisher's SCIM base URL for notice callbacks (RFC 9967
 * co-ordinated provisioning), and optionally an RFC 8936 poll endpoint.
 *
 * The callback and poll Authorization values are write-only: views say whether one is set, never
 * what it is.
 */
import { randomUUID } from 'node:crypto';
import type { JsonObject } from '../../scim/json.ts';
import { ScimError } from '../../scim/errors.ts';
import type { SchemaRegistry } from '../../scim/schema/registry.ts';
import { secretBoxFor, type SecretBox } from '../../security/secret-box.ts';
import type { Database, Queryable } from '../../store/db.ts';
import { plainHttpReason } from '../../sync/tls-policy.ts';

export type OnFeedRemove = 'delete' | 'keep';

export interface PollSettings {
  url: string;
  authorization?: string;
  maxEvents?: number;
  intervalSeconds?: number;
}

/** What a caller gives to create an upstream (PATCH: any subset; null clears an optional field). */
export interface UpstreamInput {
  id?: string;
  name: string;
  issuer: string;
  jwksUri?: string | null;
  jwks?: { keys: JsonObject[] } | null;
  acceptUnsigned?: boolean;
  audience?: string | null;
  scimBaseUrl: string;
  callbackAuthorization?: string | null;
  poll?: PollSettings | null;
  resourceTypes?: string[] | null;
  onFeedRemove?: OnFeedRemove;
}

export type UpstreamPatch = { [K in keyof Omit<UpstreamInput, 'id'>]?: UpstreamInput[K] };

/** An upstream with its secrets, for the receiver, the applier and the poll client. */
export interface Upstream {
  tenant: string;
  id: string;
  name: string;
  issuer: string;
  jwksUri?: string;
  jwks?: { keys: JsonObject[] };
  acceptUnsigned: boolean;
  audience?: string;
  scimBaseUrl: string;
  callbackAuthorization?: string;
  poll?: PollSettings;
  resourceTypes?: string[];
  onFeedRemove: OnFeedRemove;
  created: Date;
  updated: Date;
}

/** An upstream as the admin API and CLI show it: no secret values. */
export interface UpstreamView {
  tenant: string;
  id: string;
  name: string;
  issuer: string;
  jwksUri?: string;
  jwks?: { keys: JsonObject[] };
  acceptUnsigned: boolean;
  audience?: string;
  scimBaseUrl: string;
  /** Whether callback GETs send an Authorization header (its value is never shown). */
  callbackAuthorization: boolean;
  poll?: { url: string; authorization: boolean; maxEvents?: number; intervalSeconds?: number };
  resourceTypes?: string[];
  onFeedRemove: OnFeedRemove;
  /** Where the publisher pushes (RFC 8935), relative to this server's base URL. */
  pushPath: string;
  created: string;
  updated: string;
}

export type ReceivedState = 'pending' | 'applied' | 'skipped' | 'failed';
export const RECEIVED_STATES: readonly ReceivedState[] = ['pending', 'applied', 'skipped', 'failed'];

/** One received SET, as the admin API shows it. */
export interface ReceivedEventView {
  seq: number;
  jti: string;
  txn?: string;
  subject?: string;
  eventUris: string[];
  via: 'push' | 'poll';
  state: ReceivedState;
  attempts: number;
  error?: string;
  received: string;
  processed?: string;
}

interface UpstreamRow {
  tenant_id: string;
  id: string;
  name: string;
  issuer: string;
  jwks_uri: string | null;
  jwks: { keys: JsonObject[] } | null;
  accept_unsigned: boolean;
  audience: string | null;
  scim_base_url: string;
  callback_authorization: string | null;
  poll_url: string | null;
  poll_authorization: string | null;
  poll_max_events: number | null;
  poll_interval_seconds: number | null;
  resource_types: string[] | null;
  on_feed_remove: OnFeedRemove;
  created: Date;
  updated: Date;
}

const ID = /^[A-Za-z0-9._~-]{1,128}$/;

function bad(detail: string): ScimError {
  return ScimError.badRequest('invalidValue', detail);
}

function httpUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad(`${what} must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw bad(`${what} must be an absolute http(s) URL`);
  return value;
}

/** Where an upstream's authorization values are sealed (src/security/secret-box.ts). */
const place = (tenant: string, id: string, field: 'callback_authorization' | 'poll_authorization') => ({
  table: 'upstreams',
  tenant,
  row: id,
  field,
});

/** The upstream of a row, its authorization values opened. */
function toUpstream(stored: UpstreamRow, box: SecretBox): Upstream {
  const r: UpstreamRow = {
    ...stored,
    callback_authorization: box.openOptional(
      stored.callback_authorization,
      place(stored.tenant_id, stored.id, 'callback_authorization'),
    ),
    poll_authorization: box.openOptional(
      stored.poll_authorization,
      place(stored.tenant_id, stored.id, 'poll_authorization'),
    ),
  };
  const u: Upstream = {
    tenant: r.tenant_id,
    id: r.id,
    name: r.name,
    issuer: r.issuer,
    acceptUnsigned: r.accept_unsigned,
    scimBaseUrl: r.scim_base_url,
    onFeedRemove: r.on_feed_remove,
    created: r.created,
    updated: r.updated,
  };
  if (r.jwks_uri !== null) u.jwksUri = r.jwks_uri;
  if (r.jwks !== null) u.jwks = r.jwks;
  if (r.audience !== null) u.audience = r.audience;
  if (r.callback_authorization !== null) u.callbackAuthorization = r.callback_authorization;
  if (r.poll_url !== null) {
    u.poll = { url: r.poll_url };
    if (r.poll_authorization !== null) u.poll.authorization = r.poll_authorization;
    if (r.poll_max_events !== null) u.poll.maxEvents = r.poll_max_events;
    if (r.poll_interval_seconds !== null) u.poll.intervalSeconds = r.poll_interval_seconds;
  }
  if (r.resource_types !== null) u.resourceTypes = r.resource_types;
  return u;
}

/** The push endpoint path of an upstream (the default tenant also has the short form). */
export function pushPath(tenant: string, id: string): string {
  return `/tenants/${encodeURIComponent(tenant)}/events/push/${encodeURIComponent(id)}`;
}

export function viewOf(u: Upstream): UpstreamView {
  const v: UpstreamView = {
    tenant: u.tenant,
    id: u.id,
    name: u.name,
    issuer: u.issuer,
    acceptUnsigned: u.acceptUnsigned,
    scimBaseUrl: u.scimBaseUrl,
    callbackAuthorization: u.callbackAuthorization !== undefined,
    onFeedRemove: u.onFeedRemove,
    pushPath: pushPath(u.tenant, u.id),
    created: u.created.toISOString(),
    updated: u.updated.toISOString(),
  };
  if (u.jwksUri !== undefined) v.jwksUri = u.jwksUri;
  if (u.jwks !== undefined) v.jwks = u.jwks;
  if (u.audience !== undefined) v.audience = u.audience;
  if (u.poll) {
    v.poll = { url: u.poll.url, authorization: u.poll.authorization !== undefined };
    if (u.poll.maxEvents !== undefined) v.poll.maxEvents = u.poll.maxEvents;
    if (u.poll.intervalSeconds !== undefined) v.poll.intervalSeconds = u.poll.intervalSeconds;
  }
  if (u.resourceTypes !== undefined) v.resourceTypes = u.resourceTypes;
  return v;
}

const COLUMNS = `tenant_id, id, name, issuer, jwks_uri, jwks, accept_unsigned, audience, scim_base_url,
  callback_authorization, poll_url, poll_authorization, poll_max_events, poll_interval_seconds,
  resource_types, on_feed_remove, created, updated`;

export class UpstreamService {
  /** Called after an upstream changed or went (the verifier drops its cached keys). */
  private readonly listeners: ((tenant: string, id: string) => void)[] = [];

  constructor(
    private readonly db: Database,
    private readonly registry: SchemaRegistry,
    /**
     * SCIMD_SYNC_REQUIRE_TLS: plain-http scimBaseUrl, jwksUri and poll.url (but to loopback) are
     * refused when given, and stored ones are never called (applier, intake, poll client).
     */
    readonly requireTls = false,
  ) {}

  /** Why the policy forbids calling this URL of an upstream, or undefined. */
  tlsViolation(url: string, field: 'scimBaseUrl' | 'jwksUri' | 'poll.url'): string | undefined {
    return this.requireTls ? plainHttpReason(url, field) : undefined;
  }

  /** The policy on the URLs a create or PATCH gives (fields it does not give keep their stored value). */
  private checkTls(input: UpstreamPatch): void {
    const given: [unknown, 'scimBaseUrl' | 'jwksUri' | 'poll.url'][] = [
      [input.scimBaseUrl, 'scimBaseUrl'],
      [input.jwksUri, 'jwksUri'],
      [input.poll?.url, 'poll.url'],
    ];
    for (const [url, field] of given) {
      const reason = typeof url === 'string' ? this.tlsViolation(url, field) : undefined;
      if (reason) throw bad(reason);
    }
  }

  onChange(listener: (tenant: string, id: string) => void): void {
    this.listeners.push(listener);
  }

  private changed(tenant: string, id: string): void {
    for (const l of this.listeners) l(tenant, id);
  }

  private async requireTenant(q: Queryable, tenant: string): Promise<void> {
    const res = await q.query('SELECT 1 FROM tenants WHERE id = $1', [tenant]);
    if (res.rows.length === 0) throw ScimError.notFound(`No tenant ${tenant}`);
  }

  /** The upstream with its secrets, or undefined. */
  async find(tenant: string, id: string, q: Queryable = this.db): Promise<Upstream | undefined> {
    const res = await q.query<UpstreamRow>(
      `SELECT ${COLUMNS} FROM upstreams WHERE tenant_id = $1 AND id = $2`,
      [tenant, id],
    );
    return res.rows[0] ? toUpstream(res.rows[0], this.box) : undefined;
  }

  async get(tenant: string, id: string): Promise<Upstream> {
    await this.requireTenant(this.db, tenant);
    const u = await this.find(tenant, id);
    if (!u) throw ScimError.notFound(`No upstream ${id} in tenant ${tenant}`);
    return u;
  }

  async list(tenant: string): Promise<Upstream[]> {
    await this.requireTenant(this.db, tenant);
    const res = await this.db.query<UpstreamRow>(
      `SELECT ${COLUMNS} FROM upstreams WHERE tenant_id = $1 ORDER BY created, id`,
      [tenant],
    );
    return res.rows.map((r) => toUpstream(r, this.box));
  }

  /** Every upstream with a poll endpoint, of every tenant (the poll client's work list). */
  async pollers(): Promise<Upstream[]> {
    const res = await this.db.query<UpstreamRow>(
      `SELECT ${COLUMNS} FROM upstreams WHERE poll_url IS NOT NULL ORDER BY tenant_id, id`,
    );
    return res.rows.map((r) => toUpstream(r, this.box));
  }

  async create(tenant: string, input: UpstreamInput): Promise<Upstream> {
    const id = input.id ?? randomUUID();
    if (!ID.test(id)) throw bad('id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -');
    const u = this.validate({
      tenant,
      id,
      name: input.name,
      issuer: input.issuer,
      acceptUnsigned: input.acceptUnsigned ?? false,
      scimBaseUrl: input.scimBaseUrl,
      onFeedRemove: input.onFeedRemove ?? 'keep',
      created: new Date(),
      updated: new Date(),
      ...definedOf(input),
    });
    this.checkTls(input);
    return this.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      const res = await tx.query(
        `INSERT INTO upstreams (tenant_id, id, name, issuer, jwks_uri, jwks, accept_unsigned, audience,
           scim_base_url, callback_authorization, poll_url, poll_authorization, poll_max_events,
           poll_interval_seconds, resource_types, on_feed_remove)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (tenant_id, id) DO NOTHING`,
        [tenant, id, ...this.values(u, tenant, id)],
      );
      if (res.rowCount === 0) throw ScimError.conflict(`Tenant ${tenant} already has an upstream ${id}`);
      return (await this.find(tenant, id, tx))!;
    });
  }

  async update(tenant: string, id: string, patch: UpstreamPatch): Promise<Upstream> {
    const updated = await this.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      const res = await tx.query<UpstreamRow>(
        `SELECT ${COLUMNS} FROM upstreams WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
        [tenant, id],
      );
      if (!res.rows[0]) throw ScimError.notFound(`No upstream ${id} in tenant ${tenant}`);
      const merged: Upstream = { ...toUpstream(res.rows[0], this.box) };
      for (const [k, v] of Object.entries(patch) as [keyof UpstreamPatch, unknown][]) {
        if (v === undefined) continue;
        if (v === null) delete (merged as Partial<Upstream>)[k];
        else (merged as unknown as Record<string, unknown>)[k] = v;
      }
      // A poll patch without authorization keeps the stored one (it is never shown, so never sent back).
      const oldPoll = toUpstream(res.rows[0], this.box).poll;
      if (patch.poll && patch.poll.authorization === undefined && oldPoll?.authorization !== undefined) {
        merged.poll = { ...patch.poll, authorization: oldPoll.authorization };
      }
      const u = this.validate(merged);
      this.checkTls(patch);
      await tx.query(
        `UPDATE upstreams SET name = $3, issuer = $4, jwks_uri = $5, jwks = $6, accept_unsigned = $7,
           audience = $8, scim_base_url = $9, callback_authorization = $10, poll_url = $11,
           poll_authorization = $12, poll_max_events = $13, poll_interval_seconds = $14,
           resource_types = $15, on_feed_remove = $16, updated = clock_timestamp()
         WHERE tenant_id = $1 AND id = $2`,
        [tenant, id, ...this.values(u, tenant, id)],
      );
      return (await this.find(tenant, id, tx))!;
    });
    this.changed(tenant, id);
    return updated;
  }

  /** Removes the upstream with its received events and replica versions (the replicated resources stay). */
  async remove(tenant: string, id: string): Promise<void> {
    await this.requireTenant(this.db, tenant);
    const res = await this.db.query('DELETE FROM upstreams WHERE tenant_id = $1 AND id = $2', [tenant, id]);
    if (res.rowCount === 0) throw ScimError.notFound(`No upstream ${id} in tenant ${tenant}`);
    this.changed(tenant, id);
  }

  /** Received SETs, newest first, optionally of one state. */
  async events(
    tenant: string,
    id: string,
    opts: { state?: ReceivedState; count?: number; startIndex?: number } = {},
  ): Promise<{ totalResults: number; events: ReceivedEventView[] }> {
    await this.get(tenant, id);
    const where = `tenant_id = $1 AND upstream_id = $2${opts.state ? ' AND state = $3' : ''}`;
    const params: unknown[] = [tenant, id];
    if (opts.state) params.push(opts.state);
    const total = await this.db.query<{ n: number | string }>(
      `SELECT count(*) AS n FROM received_events WHERE ${where}`,
      params,
    );
    const count = opts.count ?? 100;
    const offset = (opts.startIndex ?? 1) - 1;
    const res = await this.db.query<{
      seq: number | string;
      jti: string;
      txn: string | null;
      subject: string | null;
      event_uris: string[];
      via: 'push' | 'poll';
      state: ReceivedState;
      attempts: number;
      error: string | null;
      received: Date;
      processed: Date | null;
    }>(
      `SELECT seq, jti, txn, subject, event_uris, via, state, attempts, error, received, processed
         FROM received_events WHERE ${where}
        ORDER BY seq DESC LIMIT ${Number(count)} OFFSET ${Number(offset)}`,
      params,
    );
    return {
      totalResults: Number(total.rows[0].n),
      events: res.rows.map((r) => {
        const e: ReceivedEventView = {
          seq: Number(r.seq),
          jti: r.jti,
          eventUris: r.event_uris,
          via: r.via,
          state: r.state,
          attempts: r.attempts,
          received: r.received.toISOString(),
        };
        if (r.txn !== null) e.txn = r.txn;
        if (r.subject !== null) e.subject = r.subject;
        if (r.error !== null) e.error = r.error;
        if (r.processed !== null) e.processed = r.processed.toISOString();
        return e;
      }),
    };
  }

  /** Seals and opens the authorization values. */
  private get box(): SecretBox {
    return secretBoxFor(this.db);
  }

  /** The row's values, the authorization values sealed. */
  private values(u: Upstream, tenant: string, id: string): unknown[] {
    const box = this.box;
    return [
      u.name,
      u.issuer,
      u.jwksUri ?? null,
      u.jwks ? JSON.stringify(u.jwks) : null,
      u.acceptUnsigned,
      u.audience ?? null,
      u.scimBaseUrl,
      box.sealOptional(u.callbackAuthorization ?? null, place(tenant, id, 'callback_authorization')),
      u.poll?.url ?? null,
      box.sealOptional(u.poll?.authorization ?? null, place(tenant, id, 'poll_authorization')),
      u.poll?.maxEvents ?? null,
      u.poll?.intervalSeconds ?? null,
      u.resourceTypes ?? null,
      u.onFeedRemove,
    ];
  }

  /** The rules a JSON schema cannot say (the admin API's schema checks types; the CLI's direct mode relies on this). */
  private validate(u: Upstream): Upstream {
    const nonEmpty = (v: unknown, what: string) => {
      if (typeof v !== 'string' || v.trim() === '') throw bad(`${what} is required`);
    };
    nonEmpty(u.name, 'name');
    nonEmpty(u.issuer, 'issuer');
    nonEmpty(u.scimBaseUrl, 'scimBaseUrl');
    httpUrl(u.scimBaseUrl, 'scimBaseUrl');
    u.scimBaseUrl = u.scimBaseUrl.replace(/\/+$/, '');
    if (u.jwksUri !== undefined) httpUrl(u.jwksUri, 'jwksUri');
    if (u.jwksUri !== undefined && u.jwks !== undefined) throw bad('Give jwksUri or jwks, not both');
    if (u.jwksUri === undefined && u.jwks === undefined && !u.acceptUnsigned) {
      throw bad('An upstream needs keys to verify its SETs: jwksUri or jwks (or acceptUnsigned: true)');
    }
    if (u.jwks !== undefined) {
      const keys: unknown = (u.jwks as { keys?: unknown }).keys;
      const ok =
        Array.isArray(keys) &&
        keys.length > 0 &&
        keys.every((k) => typeof k === 'object' && k !== null && typeof (k as JsonObject).kty === 'string');
      if (!ok) throw bad('jwks must be a JWK Set: {"keys": [JWK, ...]} with at least one key');
      if (keys.some((k) => (k as JsonObject).d !== undefined)) throw bad('jwks must hold public keys only');
    }
    if (u.audience !== undefined) nonEmpty(u.audience, 'audience');
    if (u.callbackAuthorization !== undefined) nonEmpty(u.callbackAuthorization, 'callbackAuthorization');
    if (u.poll) {
      httpUrl(u.poll.url, 'poll.url');
      if (u.poll.authorization !== undefined) nonEmpty(u.poll.authorization, 'poll.authorization');
      const m = u.poll.maxEvents;
      if (m !== undefined && !(Number.isInteger(m) && m >= 1 && m <= 1000))
        throw bad('poll.maxEvents must be an integer from 1 to 1000');
      const i = u.poll.intervalSeconds;
      if (i !== undefined && !(Number.isInteger(i) && i >= 0 && i <= 3600))
        throw bad('poll.intervalSeconds must be an integer from 0 to 3600');
    }
    if (u.resourceTypes !== undefined) {
      u.resourceTypes = u.resourceTypes.map((n) => {
        const rt = this.registry.resourceType(n);
        if (!rt) throw bad(`Unknown resource type "${n}" in resourceTypes`);
        return rt.name;
      });
      u.resourceTypes = [...new Set(u.resourceTypes)];
    }
    if (u.onFeedRemove !== 'delete' && u.onFeedRemove !== 'keep')
      throw bad('onFeedRemove must be "delete" or "keep"');
    return u;
  }
}

function definedOf(input: UpstreamInput): Partial<Upstream> {
  const out: Partial<Upstream> = {};
  if (input.jwksUri != null) out.jwksUri = input.jwksUri;
  if (input.jwks != null) out.jwks = input.jwks;
  if (input.audience != null) out.audience = input.audience;
  if (input.callbackAuthorization != null) out.callbackAuthorization = input.callbackAuthorization;
  if (input.poll != null) out.poll = input.poll;
  if (input.resourceTypes != null) out.resourceTypes = input.resourceTypes;
  return out;
}
