/**
 * Event feeds of a tenant: which resources' changes become SETs, and in which form. A feed names
 * resource types and either a SCIM filter (members are the resources that match, re-evaluated by
 * the publisher at each change) or explicit members (added and removed by hand, each emitting
 * feed:add / feed:remove in the transaction of the membership change). Without either, every
 * resource of the types is in the feed.
 *
 * The repository part is the SQL of event_feeds / event_feed_members; the service validates input
 * (known types the tenant serves, a filter that binds to each type) and answers admin views.
 */
import { randomUUID } from 'node:crypto';
import type { AppConfig } from '../../config.ts';
import { ScimError } from '../../scim/errors.ts';
import { bindFilter } from '../../scim/filter/bind.ts';
import type { BoundFilter } from '../../scim/filter/ast.ts';
import type { JsonObject } from '../../scim/json.ts';
import type { ResourceTypeConfig } from '../../scim/schema/registry.ts';
import type { RequestContext, ResourceService } from '../../service/resources.ts';
import { currentPosition } from '../../store/changes.ts';
import type { Queryable } from '../../store/db.ts';
import type { TenantDirectory } from '../../tenancy/directory.ts';
import { effectiveLimits } from '../../tenancy/settings.ts';
import type { SigningKeys } from '../keys.ts';
import { buildScimEvent, EVENT, newTxn, scimEvents, secretTest, subjectOf } from '../set.ts';
import type { OutboxSignal } from './signal.ts';
import { feedReceivers, feedUri, insertOutbox, scimBase, signCopies, type PendingSet } from './emit.ts';

export type FeedForm = 'full' | 'notice';

/** Body of a feed creation (admin API and CLI). */
export interface NewFeed {
  id?: string;
  name: string;
  resourceTypes: string[];
  filter?: string;
  explicitMembers?: boolean;
  form: FeedForm;
  /** now (default): changes after the creation; beginning: the whole retained change log. */
  from?: 'now' | 'beginning';
}

/** Changeable members of a feed; `filter: null` removes the filter. */
export interface FeedUpdate {
  name?: string;
  resourceTypes?: string[];
  filter?: string | null;
  form?: FeedForm;
}

export interface FeedView {
  id: string;
  tenant: string;
  name: string;
  resourceTypes: string[];
  filter?: string;
  explicitMembers: boolean;
  form: FeedForm;
  /** Default `aud` of the feed's SETs. */
  uri: string;
  /** Log position (xid8, decimal): every change of a transaction below it has been published. */
  position: string;
  /** Set while a window is published in several steps: its end and the last change seq done. */
  publishing?: { windowEnd: string; afterSeq: number };
  memberCount: number;
  receiverCount: number;
  created: string;
}

export interface MemberView {
  resourceId: string;
  resourceType: string;
  externalId?: string;
  /** `active` of the resource as last published (activate/deactivate are transitions from it). */
  active?: boolean;
  added: string;
}

/** A feed row as the publisher and the service read it. */
export interface FeedRow {
  tenant_id: string;
  id: string;
  name: string;
  resource_types: string[];
  filter: string | null;
  explicit_members: boolean;
  form: FeedForm;
  position: string;
  pub_window_end: string | null;
  pub_window_hi: number | string | null;
  pub_after: number | string | null;
  rev: number | string;
  created: Date | string;
  member_count?: number | string;
  receiver_count?: number | string;
}

export interface MemberRow {
  resource_id: string;
  resource_type: string;
  external_id: string | null;
  active: boolean | null;
}

const FEED_COLUMNS = `f.tenant_id, f.id, f.name, f.resource_types, f.filter, f.explicit_members, f.form,
  f.position::text AS position, f.pub_window_end::text AS pub_window_end, f.pub_window_hi, f.pub_after,
  f.rev, f.created`;

const FEED_ID = /^[A-Za-z0-9._~-]{1,128}$/;

// ---- repository ----------------------------------------------------------------------------

export class FeedRepository {
  async get(q: Queryable, tenant: string, id: string, counts = false): Promise<FeedRow | undefined> {
    const res = await q.query<FeedRow>(
      `SELECT ${FEED_COLUMNS}${counts ? COUNTS : ''} FROM event_feeds f WHERE f.tenant_id = $1 AND f.id = $2`,
      [tenant, id],
    );
    return res.rows[0];
  }

  async list(q: Queryable, tenant: string): Promise<FeedRow[]> {
    const res = await q.query<FeedRow>(
      `SELECT ${FEED_COLUMNS}${COUNTS} FROM event_feeds f WHERE f.tenant_id = $1 ORDER BY f.created, f.id`,
      [tenant],
    );
    return res.rows;
  }

  /** Every feed of every tenant (the publisher's round). */
  async all(q: Queryable): Promise<{ tenant_id: string; id: string }[]> {
    return (
      await q.query<{ tenant_id: string; id: string }>(
        'SELECT tenant_id, id FROM event_feeds ORDER BY tenant_id, id',
      )
    ).rows;
  }

  /**
   * Locks the feed for a commit that moves it; undefined when it is gone or when `rev` is given and
   * the feed changed since it was read (or, with skipLocked, another node holds it).
   */
  async lock(
    q: Queryable,
    tenant: string,
    id: string,
    opts: { rev?: string; skipLocked?: boolean } = {},
  ): Promise<{ rev: string } | undefined> {
    const res = await q.query<{ rev: string }>(
      `SELECT rev::text AS rev FROM event_feeds WHERE tenant_id = $1 AND id = $2
        FOR UPDATE${opts.skipLocked ? ' SKIP LOCKED' : ''}`,
      [tenant, id],
    );
    const row = res.rows[0];
    if (!row || (opts.rev !== undefined && row.rev !== opts.rev)) return undefined;
    return row;
  }

  async bumpRev(q: Queryable, tenant: string, id: string): Promise<void> {
    await q.query('UPDATE event_feeds SET rev = rev + 1 WHERE tenant_id = $1 AND id = $2', [tenant, id]);
  }

  async members(q: Queryable, tenant: string, feed: string, ids: string[]): Promise<Map<string, MemberRow>> {
    const res = await q.query<MemberRow>(
      `SELECT resource_id, resource_type, external_id, active FROM event_feed_members
        WHERE tenant_id = $1 AND feed_id = $2 AND resource_id = ANY($3::text[])`,
      [tenant, feed, ids],
    );
    return new Map(res.rows.map((r) => [r.resource_id, r]));
  }

  async upsertMembers(q: Queryable, tenant: string, feed: string, rows: MemberRow[]): Promise<void> {
    if (rows.length === 0) return;
    await q.query(
      `INSERT INTO event_feed_members (tenant_id, feed_id, resource_id, resource_type, external_id, active)
       SELECT $1, $2, u.id, u.type, u.ext, u.active
         FROM unnest($3::text[], $4::text[], $5::text[], $6::boolean[]) AS u(id, type, ext, active)
       ON CONFLICT (tenant_id, feed_id, resource_id) DO UPDATE
         SET resource_type = EXCLUDED.resource_type, external_id = EXCLUDED.external_id, active = EXCLUDED.active`,
      [
        tenant,
        feed,
        rows.map((r) => r.resource_id),
        rows.map((r) => r.resource_type),
        rows.map((r) => r.external_id),
        rows.map((r) => r.active),
      ],
    );
  }

  async deleteMembers(q: Queryable, tenant: string, feed: string, ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const res = await q.query<{ resource_id: string }>(
      `DELETE FROM event_feed_members WHERE tenant_id = $1 AND feed_id = $2 AND resource_id = ANY($3::text[])
       RETURNING resource_id`,
      [tenant, feed, ids],
    );
    return res.rows.map((r) => r.resource_id);
  }
}

const COUNTS = `,
  (SELECT count(*) FROM event_feed_members m WHERE m.tenant_id = f.tenant_id AND m.feed_id = f.id) AS member_count,
  (SELECT count(*) FROM event_receivers r WHERE r.tenant_id = f.tenant_id AND r.feed_id = f.id) AS receiver_count`;

// ---- reading resources ---------------------------------------------------------------------

/** Ids per list call: the id filter becomes nested SQL, kept shallow (as in the delta pull). */
const FETCH_CHUNK = 50;

/** A context that reads everything of the tenant (no managed-only limit, secrets present: SETs redact them). */
export async function publisherContext(
  config: AppConfig,
  tenants: TenantDirectory,
  tenant: string,
): Promise<RequestContext | undefined> {
  const t = await tenants.get(tenant);
  if (!t) return undefined;
  return {
    tenant,
    baseUrl: scimBase(config, tenant),
    limits: effectiveLimits(config, t.settings),
    settings: t.settings as Record<string, unknown>,
    hideSensitive: false,
  };
}

/** Current representations of these ids of one type (missing ids are gone). */
export async function currentResources(
  service: ResourceService,
  ctx: RequestContext,
  rt: ResourceTypeConfig,
  ids: string[],
): Promise<Map<string, JsonObject>> {
  const out = new Map<string, JsonObject>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += FETCH_CHUNK) {
    const chunk = unique.slice(i, i + FETCH_CHUNK);
    const res = await service.list(ctx, [rt], {
      filter: chunk.map((id) => `id eq ${JSON.stringify(id)}`).join(' or '),
      startIndex: 1,
      count: chunk.length,
    });
    for (const r of res.Resources ?? []) out.set(r.id as string, r);
  }
  return out;
}

/** Bound filters per resource type name of a feed (lenient over several types, like a root query). */
export function bindFeedFilter(
  service: ResourceService,
  types: ResourceTypeConfig[],
  filter: string,
): Map<string, BoundFilter> {
  const parsed = service.parseFilter(filter);
  const lenient = types.length > 1;
  const bound = new Map<string, BoundFilter>();
  for (const rt of types) bound.set(rt.name, bindFilter(service.registry, rt, parsed, { lenient }));
  // A filter on an attribute none of the types has is a typo, not a feed that never matches.
  if (lenient && [...bound.values()].every((b) => b.op === 'const' && !b.value)) {
    bindFilter(service.registry, types[0], parsed);
  }
  return bound;
}

// ---- service -------------------------------------------------------------------------------

export interface FeedServiceDeps {
  config: AppConfig;
  service: ResourceService;
  tenants: TenantDirectory;
  signingKeys: SigningKeys;
  signal: OutboxSignal;
}

export class FeedService {
  readonly repo = new FeedRepository();

  constructor(private readonly deps: FeedServiceDeps) {}

  private get db() {
    return this.deps.service.db;
  }

  private async tenant(tenant: string): Promise<RequestContext> {
    const ctx = await publisherContext(this.deps.config, this.deps.tenants, tenant);
    if (!ctx) throw ScimError.notFound(`No tenant ${tenant}`);
    return ctx;
  }

  /** The types by their canonical names; 400 for a type the node does not know or the tenant does not serve. */
  private types(ctx: RequestContext, names: string[]): ResourceTypeConfig[] {
    if (names.length === 0)
      throw ScimError.badRequest('invalidValue', 'resourceTypes must name at least one resource type');
    const enabled = (ctx.settings?.resourceTypes as string[] | undefined)?.map((n) => n.toLowerCase());
    const out: ResourceTypeConfig[] = [];
    for (const name of names) {
      const rt = this.deps.service.registry
        .resourceTypes()
        .find((t) => t.name.toLowerCase() === name.toLowerCase());
      if (!rt || (enabled && !enabled.includes(rt.name.toLowerCase()))) {
        throw ScimError.badRequest(
          'invalidValue',
          `Unknown resource type "${name}" (tenant ${ctx.tenant} does not serve it)`,
        );
      }
      if (!out.includes(rt)) out.push(rt);
    }
    return out;
  }

  private view(row: FeedRow): FeedView {
    const v: FeedView = {
      id: row.id,
      tenant: row.tenant_id,
      name: row.name,
      resourceTypes: row.resource_types,
      explicitMembers: row.explicit_members,
      form: row.form,
      uri: feedUri(this.deps.config, row.tenant_id, row.id),
      position: row.position,
      memberCount: Number(row.member_count ?? 0),
      receiverCount: Number(row.receiver_count ?? 0),
      created: new Date(row.created).toISOString(),
    };
    if (row.filter !== null) v.filter = row.filter;
    if (row.pub_window_end !== null) {
      v.publishing = { windowEnd: row.pub_window_end, afterSeq: Number(row.pub_after ?? 0) };
    }
    // Key order of the admin view: filter after resourceTypes.
    return {
      id: v.id,
      tenant: v.tenant,
      name: v.name,
      resourceTypes: v.resourceTypes,
      ...(v.filter !== undefined ? { filter: v.filter } : {}),
      explicitMembers: v.explicitMembers,
      form: v.form,
      uri: v.uri,
      position: v.position,
      ...(v.publishing ? { publishing: v.publishing } : {}),
      memberCount: v.memberCount,
      receiverCount: v.receiverCount,
      created: v.created,
    };
  }

  private async feed(tenant: string, id: string): Promise<FeedRow> {
    const row = await this.repo.get(this.db, tenant, id, true);
    if (!row) throw ScimError.notFound(`No feed ${id} in tenant ${tenant}`);
    return row;
  }

  async create(tenant: string, input: NewFeed): Promise<FeedView> {
    const ctx = await this.tenant(tenant);
    const id = input.id ?? randomUUID();
    if (!FEED_ID.test(id)) {
      throw ScimError.badRequest('invalidValue', 'id must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ -');
    }
    const types = this.types(ctx, input.resourceTypes);
    const explicit = input.explicitMembers === true;
    if (explicit && input.filter !== undefined) {
      throw ScimError.badRequest('invalidValue', 'A feed has either a filter or explicit members, not both');
    }
    const filters =
      input.filter !== undefined ? bindFeedFilter(this.deps.service, types, input.filter) : undefined;
    const from = input.from ?? 'now';
    // Position 0 is below every transaction id: the whole retained log.
    const position = from === 'beginning' ? '0' : await currentPosition(this.db);
    // A filter feed starting now knows its members at once (a delete of one of them is then
    // published); from the beginning they come from replaying the log.
    const seed = filters && from === 'now' ? await this.matching(ctx, types, input.filter!) : [];
    await this.db.transaction(async (tx) => {
      const dup = await this.repo.get(tx, tenant, id);
      if (dup) throw ScimError.conflict(`Feed ${id} already exists in tenant ${tenant}`);
      await tx.query(
        `INSERT INTO event_feeds (tenant_id, id, name, resource_types, filter, explicit_members, form, position)
         VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8::xid8)`,
        [
          tenant,
          id,
          input.name,
          types.map((t) => t.name),
          input.filter ?? null,
          explicit,
          input.form,
          position,
        ],
      );
      await this.repo.upsertMembers(tx, tenant, id, seed);
    });
    return this.view(await this.feed(tenant, id));
  }

  /**
   * Ids (and what member rows keep) of the resources matching a filter now, paged by cursor. All
   * types in one query: over several types the filter binds leniently, as for the feed itself.
   */
  private async matching(
    ctx: RequestContext,
    types: ResourceTypeConfig[],
    filter: string,
  ): Promise<MemberRow[]> {
    const out: MemberRow[] = [];
    const count = Math.min(ctx.limits.maxPageSize, ctx.limits.filterMaxResults);
    let cursor = '';
    for (;;) {
      // Whole representations: a projection could leave out meta.resourceType.
      const page = await this.deps.service.list(ctx, types, { filter, cursor, count });
      for (const r of page.Resources ?? []) {
        const meta = r.meta as { resourceType?: string } | undefined;
        out.push(memberOf(meta?.resourceType ?? types[0].name, r));
      }
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    return out;
  }

  async list(tenant: string): Promise<FeedView[]> {
    await this.tenant(tenant);
    return (await this.repo.list(this.db, tenant)).map((r) => this.view(r));
  }

  async get(tenant: string, id: string): Promise<FeedView> {
    return this.view(await this.feed(tenant, id));
  }

  /**
   * Changes name, types, filter or form. Members stay: a member the new filter no longer matches
   * leaves (feed:remove) at its next change. A publish step in progress is discarded (rev).
   */
  async update(tenant: string, id: string, input: FeedUpdate): Promise<FeedView> {
    const ctx = await this.tenant(tenant);
    const current = await this.feed(tenant, id);
    const types = this.types(ctx, input.resourceTypes ?? current.resource_types);
    const filter = input.filter === undefined ? current.filter : input.filter;
    if (current.explicit_members && filter !== null) {
      throw ScimError.badRequest('invalidValue', 'A feed with explicit members has no filter');
    }
    if (filter !== null) bindFeedFilter(this.deps.service, types, filter);
    await this.db.transaction(async (tx) => {
      if (!(await this.repo.lock(tx, tenant, id)))
        throw ScimError.notFound(`No feed ${id} in tenant ${tenant}`);
      await tx.query(
        `UPDATE event_feeds SET name = $3, resource_types = $4::text[], filter = $5, form = $6, rev = rev + 1
          WHERE tenant_id = $1 AND id = $2`,
        [
          tenant,
          id,
          input.name ?? current.name,
          types.map((t) => t.name),
          filter,
          input.form ?? current.form,
        ],
      );
    });
    return this.view(await this.feed(tenant, id));
  }

  /** Deletes the feed with its members, receivers and their outbox rows. */
  async delete(tenant: string, id: string): Promise<void> {
    await this.tenant(tenant);
    const res = await this.db.query('DELETE FROM event_feeds WHERE tenant_id = $1 AND id = $2', [tenant, id]);
    if (res.rowCount === 0) throw ScimError.notFound(`No feed ${id} in tenant ${tenant}`);
  }

  async members(
    tenant: string,
    id: string,
    page: { startIndex: number; count: number } = { startIndex: 1, count: 100 },
  ): Promise<{ totalResults: number; startIndex: number; members: MemberView[] }> {
    const feed = await this.feed(tenant, id);
    const res = await this.db.query<MemberRow & { added: Date | string }>(
      `SELECT resource_id, resource_type, external_id, active, added FROM event_feed_members
        WHERE tenant_id = $1 AND feed_id = $2 ORDER BY added, resource_id OFFSET $3 LIMIT $4`,
      [tenant, id, page.startIndex - 1, page.count],
    );
    return {
      totalResults: Number(feed.member_count ?? 0),
      startIndex: page.startIndex,
      members: res.rows.map(memberView),
    };
  }

  private explicitFeed(feed: FeedRow): void {
    if (!feed.explicit_members) {
      throw ScimError.badRequest(
        'invalidValue',
        `Feed ${feed.id} selects its members ${feed.filter !== null ? 'by its filter' : 'as every resource of its types'}; only a feed with explicitMembers takes members by hand`,
      );
    }
  }

  /** Adds a resource to an explicit feed and emits feed:add (with the data in the full form). */
  async addMember(
    tenant: string,
    id: string,
    input: { resourceId: string; resourceType?: string },
  ): Promise<MemberView> {
    const ctx = await this.tenant(tenant);
    const feed = await this.feed(tenant, id);
    this.explicitFeed(feed);
    let types = this.types(ctx, feed.resource_types);
    if (input.resourceType !== undefined) {
      const [wanted] = this.types(ctx, [input.resourceType]);
      if (!types.includes(wanted)) {
        throw ScimError.badRequest(
          'invalidValue',
          `Feed ${id} carries ${feed.resource_types.join(', ')}, not ${wanted.name}`,
        );
      }
      types = [wanted];
    }
    let found: { rt: ResourceTypeConfig; resource: JsonObject } | undefined;
    for (const rt of types) {
      const resource = (await currentResources(this.deps.service, ctx, rt, [input.resourceId])).get(
        input.resourceId,
      );
      if (resource) {
        found = { rt, resource };
        break;
      }
    }
    if (!found) throw ScimError.notFound(`No ${types.map((t) => t.name).join(' or ')} ${input.resourceId}`);
    const { rt, resource } = found;
    if ((await this.repo.members(this.db, tenant, id, [input.resourceId])).size > 0) {
      throw ScimError.conflict(`${input.resourceId} is already a member of feed ${id}`);
    }
    // feed:add alone tells a notice receiver to call back; a full receiver gets the data with it
    // (prov:put:full: "this is the resource now"), as when a resource enters a filter feed.
    let events = scimEvents({ type: 'feed:add', endpoint: rt.endpoint, resource });
    if (feed.form === 'full') {
      const put = buildScimEvent(
        {
          type: 'put',
          endpoint: rt.endpoint,
          resource,
          form: 'full',
          activation: false,
          secrets: secretTest(this.deps.service.registry, rt),
        },
        { issuer: '', audience: '', txn: '' },
      );
      events = { ...events, ...put.events };
    }
    const member = memberOf(rt.name, resource);
    await this.emit(
      tenant,
      feed,
      [
        {
          resourceType: rt.name,
          resourceId: input.resourceId,
          txn: newTxn(),
          sub: subjectOf(rt.endpoint, resource),
          events,
        },
      ],
      async (tx) => {
        const existing = await this.repo.members(tx, tenant, id, [input.resourceId]);
        if (existing.size > 0)
          throw ScimError.conflict(`${input.resourceId} is already a member of feed ${id}`);
        await this.repo.upsertMembers(tx, tenant, id, [member]);
      },
    );
    const rows = await this.db.query<MemberRow & { added: Date | string }>(
      `SELECT resource_id, resource_type, external_id, active, added FROM event_feed_members
        WHERE tenant_id = $1 AND feed_id = $2 AND resource_id = $3`,
      [tenant, id, input.resourceId],
    );
    return memberView(rows.rows[0]);
  }

  /** Removes a member of an explicit feed and emits feed:remove. */
  async removeMember(tenant: string, id: string, resourceId: string): Promise<void> {
    await this.tenant(tenant);
    const feed = await this.feed(tenant, id);
    this.explicitFeed(feed);
    const member = (await this.repo.members(this.db, tenant, id, [resourceId])).get(resourceId);
    if (!member) throw ScimError.notFound(`${resourceId} is not a member of feed ${id}`);
    const rt = this.deps.service.registry.resourceType(member.resource_type);
    const endpoint = rt?.endpoint ?? `/${member.resource_type}`;
    const subject: JsonObject = { id: resourceId };
    if (member.external_id !== null) subject.externalId = member.external_id;
    const set: PendingSet = {
      resourceType: member.resource_type,
      resourceId,
      txn: newTxn(),
      sub: subjectOf(endpoint, subject),
      events: { [EVENT.feedRemove]: {} },
    };
    await this.emit(tenant, feed, [set], async (tx) => {
      const gone = await this.repo.deleteMembers(tx, tenant, id, [resourceId]);
      if (gone.length === 0) throw ScimError.notFound(`${resourceId} is not a member of feed ${id}`);
    });
  }

  /**
   * Signs the SETs for the feed's receivers, then in one transaction: locks the feed (waiting for a
   * publish step), applies the membership change, writes the outbox rows, and moves rev so a
   * publish step computed before this change is redone.
   */
  private async emit(
    tenant: string,
    feed: FeedRow,
    sets: PendingSet[],
    change: (tx: Queryable) => Promise<void>,
  ): Promise<void> {
    const receivers = await feedReceivers(this.db, tenant, feed.id);
    const rows = await signCopies(
      this.deps.signingKeys,
      tenant,
      scimBase(this.deps.config, tenant),
      feedUri(this.deps.config, tenant, feed.id),
      receivers,
      sets,
    );
    await this.db.transaction(async (tx) => {
      if (!(await this.repo.lock(tx, tenant, feed.id)))
        throw ScimError.notFound(`No feed ${feed.id} in tenant ${tenant}`);
      await change(tx);
      await insertOutbox(tx, tenant, rows);
      await this.repo.bumpRev(tx, tenant, feed.id);
    });
    if (rows.length > 0)
      this.deps.signal.notify(
        tenant,
        receivers.map((r) => r.id),
      );
  }
}

/** What a member row keeps of a representation. */
export function memberOf(type: string, resource: JsonObject): MemberRow {
  return {
    resource_id: resource.id as string,
    resource_type: type,
    external_id: typeof resource.externalId === 'string' ? resource.externalId : null,
    active: typeof resource.active === 'boolean' ? resource.active : null,
  };
}

function memberView(r: MemberRow & { added: Date | string }): MemberView {
  return {
    resourceId: r.resource_id,
    resourceType: r.resource_type,
    ...(r.external_id !== null ? { externalId: r.external_id } : {}),
    ...(r.active !== null ? { active: r.active } : {}),
    added: new Date(r.added).toISOString(),
  };
}
