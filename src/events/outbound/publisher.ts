/**
 * The publisher: turns the change log into signed SETs in the outbox, feed by feed.
 *
 * A feed's position is a log position (src/store/changes.ts): every change of a transaction below
 * it has been published. One step publishes the next batch of the window [position, end), end
 * being the log position when the window was opened:
 *   1. read (no transaction): the feed, the batch of change rows in seq order, the current
 *      representation of each changed resource, the feed's member rows of those resources and the
 *      receivers; decide the events of each row; sign one copy per receiver;
 *   2. one transaction: lock the feed row (FOR UPDATE SKIP LOCKED: one node publishes a feed at a
 *      time) and check its rev is the one read in 1 (no other step, membership change or feed
 *      update came between), then write the member rows, the outbox rows and the new position
 *      (or, inside a large window, the seq reached) together;
 *   3. signal the receivers' delivery.
 * Reads and signing come before the transaction because the embedded store has one connection.
 * A step whose transaction fails leaves nothing behind and is done again: same rows, same txn.
 *
 * Every change row becomes its own SET (no coalescing): each carries the resource's current
 * representation, so a Group is never announced before the Users it references, and a receiver
 * skips a version it already has.
 */
import type { AppConfig } from '../../config.ts';
import type { BoundFilter } from '../../scim/filter/ast.ts';
import { matches } from '../../scim/filter/evaluate.ts';
import type { JsonObject } from '../../scim/json.ts';
import type { ResourceTypeConfig } from '../../scim/schema/registry.ts';
import type { ResourceService } from '../../service/resources.ts';
import { currentPosition, windowBounds } from '../../store/changes.ts';
import type { TenantDirectory } from '../../tenancy/directory.ts';
import type { SigningKeys } from '../keys.ts';
import { buildScimEvent, EVENT, secretTest, subjectOf, type SecretTest } from '../set.ts';
import {
  changeTxn,
  feedReceivers,
  feedUri,
  insertOutbox,
  scimBase,
  signCopies,
  type PendingSet,
} from './emit.ts';
import {
  bindFeedFilter,
  currentResources,
  FeedRepository,
  memberOf,
  publisherContext,
  type FeedRow,
  type MemberRow,
} from './feeds.ts';
import type { OutboxSignal } from './signal.ts';

export interface PublisherDeps {
  config: AppConfig;
  service: ResourceService;
  tenants: TenantDirectory;
  signingKeys: SigningKeys;
  signal: OutboxSignal;
  /** Change rows per step (one transaction). */
  batchSize?: number;
}

/** What one publishOnce round did. */
export interface PublishResult {
  /** Steps committed. */
  steps: number;
  /** SETs decided (before copies per receiver). */
  sets: number;
  /** Outbox rows written. */
  rows: number;
}

interface ChangeRow {
  seq: number;
  operation: 'create' | 'replace' | 'patch' | 'delete';
  resource_type: string;
  resource_id: string;
}

type FeedKind = 'all' | 'filter' | 'explicit';

/** An empty window is left open until it spans this many transaction ids. */
const IDLE_ADVANCE_XIDS = 10_000n;

/** Steps per feed in one round, so one feed's huge backlog does not starve the others for long. */
const MAX_STEPS_PER_FEED = 50;

export class Publisher {
  private readonly repo = new FeedRepository();
  private readonly batchSize: number;
  private readonly secrets = new Map<string, SecretTest>();

  constructor(private readonly deps: PublisherDeps) {
    this.batchSize = deps.batchSize ?? 200;
  }

  private get db() {
    return this.deps.service.db;
  }

  /** Publishes every feed up to the current log position. Throws (after trying all feeds) if one failed. */
  async publishOnce(): Promise<PublishResult> {
    const total: PublishResult = { steps: 0, sets: 0, rows: 0 };
    const errors: unknown[] = [];
    for (const f of await this.repo.all(this.db)) {
      try {
        for (let i = 0; i < MAX_STEPS_PER_FEED; i++) {
          const r = await this.step(f.tenant_id, f.id);
          total.steps += r.committed ? 1 : 0;
          total.sets += r.sets;
          total.rows += r.rows;
          if (r.done) break;
        }
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'publishing failed for several feeds');
    return total;
  }

  private secretsOf(rt: ResourceTypeConfig): SecretTest {
    let test = this.secrets.get(rt.name);
    if (!test) {
      test = secretTest(this.deps.service.registry, rt);
      this.secrets.set(rt.name, test);
    }
    return test;
  }

  /** One step of one feed; done = nothing left below the current position (or another node has it). */
  async step(
    tenant: string,
    feedId: string,
  ): Promise<{ done: boolean; committed: boolean; sets: number; rows: number }> {
    const idle = { done: true, committed: false, sets: 0, rows: 0 };
    const feed = await this.repo.get(this.db, tenant, feedId);
    if (!feed) return idle;
    const ctx = await publisherContext(this.deps.config, this.deps.tenants, tenant);
    if (!ctx) return idle;
    const registry = this.deps.service.registry;
    const types = feed.resource_types
      .map((n) => registry.resourceType(n))
      .filter((t): t is ResourceTypeConfig => t !== undefined);

    // The window and where this step starts in it.
    let to: string;
    let hi: number;
    let after: number;
    if (feed.pub_window_end !== null) {
      to = feed.pub_window_end;
      hi = Number(feed.pub_window_hi);
      after = Number(feed.pub_after);
    } else {
      to = await currentPosition(this.db);
      if (BigInt(to) <= BigInt(feed.position)) return idle;
      const bounds = await windowBounds(
        this.db,
        tenant,
        feed.position,
        to,
        types.map((t) => t.name),
      );
      if (!bounds) {
        // Nothing of this feed's types: moving the position would be a write transaction per
        // feed per round for nothing (and would itself advance the log position). It moves once
        // the window spans enough transactions to be worth keeping short.
        if (BigInt(to) - BigInt(feed.position) < IDLE_ADVANCE_XIDS) return idle;
        const moved = await this.commit(feed, { to, last: true, hi: 0, after: 0 }, [], [], [], []);
        return { ...idle, committed: moved };
      }
      hi = bounds.hi;
      after = bounds.lo - 1;
    }

    // The next batch of the window's rows, in seq order (walks changes_tenant_seq from `after`).
    const res = await this.db.query<ChangeRow>(
      `SELECT seq, operation, resource_type, resource_id FROM changes
        WHERE tenant_id = $1 AND seq > $2 AND seq <= $3
          AND txid >= $4::xid8 AND txid < $5::xid8 AND resource_type = ANY($6::text[])
        ORDER BY seq LIMIT $7`,
      [tenant, after, hi, feed.position, to, types.map((t) => t.name), this.batchSize + 1],
    );
    const rows = res.rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    const last = rows.length <= this.batchSize;
    const batch = rows.slice(0, this.batchSize);
    const reached = batch.length > 0 ? batch[batch.length - 1].seq : after;

    // Current representations, by type.
    const reps = new Map<string, JsonObject>();
    for (const rt of types) {
      const ids = batch
        .filter((r) => r.resource_type === rt.name && r.operation !== 'delete')
        .map((r) => r.resource_id);
      if (ids.length > 0)
        for (const [id, rep] of await currentResources(this.deps.service, ctx, rt, ids)) reps.set(id, rep);
    }
    const ids = [...new Set(batch.map((r) => r.resource_id))];
    const members =
      ids.length > 0 ? await this.repo.members(this.db, tenant, feed.id, ids) : new Map<string, MemberRow>();
    const initial = new Map(members);
    const filters = feed.filter !== null ? bindFeedFilter(this.deps.service, types, feed.filter) : undefined;
    const kind: FeedKind = feed.explicit_members ? 'explicit' : filters ? 'filter' : 'all';

    const sets: PendingSet[] = [];
    for (const row of batch) {
      const rt = types.find((t) => t.name === row.resource_type)!;
      const set = this.decide(feed, kind, rt, row, reps.get(row.resource_id), members, filters?.get(rt.name));
      if (set) sets.push({ ...set, txn: changeTxn(tenant, row.seq) });
    }

    // Member rows to write: the final state of each resource the batch touched.
    const upserts: MemberRow[] = [];
    const removals: string[] = [];
    for (const id of ids) {
      const now = members.get(id);
      if (now) {
        if (now !== initial.get(id)) upserts.push(now);
      } else if (initial.has(id)) {
        removals.push(id);
      }
    }

    const receivers = await feedReceivers(this.db, tenant, feed.id);
    const outbox = await signCopies(
      this.deps.signingKeys,
      tenant,
      scimBase(this.deps.config, tenant),
      feedUri(this.deps.config, tenant, feed.id),
      receivers,
      sets,
    );
    const committed = await this.commit(
      feed,
      { to, last, hi, after: reached },
      upserts,
      removals,
      outbox,
      receivers.map((r) => r.id),
    );
    if (!committed) return idle;
    return { done: last, committed: true, sets: sets.length, rows: outbox.length };
  }

  /**
   * The events of one change row for this feed, updating `members` (the feed's view of who is in
   * it) as the row moves a resource in or out.
   */
  private decide(
    feed: FeedRow,
    kind: FeedKind,
    rt: ResourceTypeConfig,
    row: ChangeRow,
    rep: JsonObject | undefined,
    members: Map<string, MemberRow>,
    filter: BoundFilter | undefined,
  ): Omit<PendingSet, 'txn'> | undefined {
    const member = members.get(row.resource_id);
    const base = { resourceType: rt.name, resourceId: row.resource_id };
    const envelope = { issuer: '', audience: '', txn: '' };

    if (row.operation === 'delete') {
      // A filter or explicit feed announces deletes of its members only; an unfiltered feed holds
      // every resource of its types, seen or not.
      if (!member && kind !== 'all') return undefined;
      members.delete(row.resource_id);
      const subject: JsonObject = { id: row.resource_id };
      if (member?.external_id) subject.externalId = member.external_id;
      return { ...base, sub: subjectOf(rt.endpoint, subject), events: { [EVENT.delete]: {} } };
    }
    // Gone since this change: its delete row follows in this window or a later one.
    if (!rep) return undefined;

    const inScope = kind === 'all' || (kind === 'explicit' ? member !== undefined : matches(rep, filter!));
    if (!inScope) {
      if (!member) return undefined;
      // Left the filter: feed:remove, never prov:delete (the resource still exists).
      members.delete(row.resource_id);
      return { ...base, sub: subjectOf(rt.endpoint, rep), events: { [EVENT.feedRemove]: {} } };
    }

    const type = row.operation === 'create' ? 'create' : 'put';
    const entering = member === undefined && row.operation !== 'create';
    // prov:patch carries the representation like prov:put (the log keeps no PatchOp message).
    const set = buildScimEvent(
      type === 'create'
        ? { type, endpoint: rt.endpoint, resource: rep, form: feed.form, secrets: this.secretsOf(rt) }
        : {
            type,
            endpoint: rt.endpoint,
            resource: rep,
            form: feed.form,
            secrets: this.secretsOf(rt),
            // A resource this feed has not published before: no transition can be claimed.
            wasActive: member ? member.active === true : undefined,
          },
      envelope,
    );
    let events = set.events;
    if (row.operation === 'patch')
      events = renameKeys(events, { [EVENT.putFull]: EVENT.patchFull, [EVENT.putNotice]: EVENT.patchNotice });
    if (entering && kind === 'filter') events = { [EVENT.feedAdd]: {}, ...events };
    members.set(row.resource_id, memberOf(rt.name, rep));
    return { ...base, sub: set.sub_id, events };
  }

  /**
   * The transaction of a step: lock the feed if no other node holds it and nothing moved it since
   * it was read, then members, outbox rows and position together. False = not committed.
   */
  private async commit(
    feed: FeedRow,
    at: { to: string; last: boolean; hi: number; after: number },
    upserts: MemberRow[],
    removals: string[],
    outbox: Awaited<ReturnType<typeof signCopies>>,
    receiverIds: string[],
  ): Promise<boolean> {
    const tenant = feed.tenant_id;
    const committed = await this.db.transaction(async (tx) => {
      const locked = await this.repo.lock(tx, tenant, feed.id, { rev: String(feed.rev), skipLocked: true });
      if (!locked) return false;
      await this.repo.deleteMembers(tx, tenant, feed.id, removals);
      await this.repo.upsertMembers(tx, tenant, feed.id, upserts);
      await insertOutbox(tx, tenant, outbox);
      if (at.last) {
        await tx.query(
          `UPDATE event_feeds SET position = $3::xid8, pub_window_end = NULL, pub_window_hi = NULL,
                  pub_after = NULL, rev = rev + 1
            WHERE tenant_id = $1 AND id = $2`,
          [tenant, feed.id, at.to],
        );
      } else {
        await tx.query(
          `UPDATE event_feeds SET pub_window_end = $3::xid8, pub_window_hi = $4, pub_after = $5, rev = rev + 1
            WHERE tenant_id = $1 AND id = $2`,
          [tenant, feed.id, at.to, at.hi, at.after],
        );
      }
      return true;
    });
    if (committed && outbox.length > 0) this.deps.signal.notify(tenant, receiverIds);
    return committed;
  }
}

function renameKeys<T>(o: Record<string, T>, names: Record<string, string>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [names[k] ?? k, v]));
}

/** Runs the publisher every interval (no overlap); a failed round is logged and retried next time. */
/** Delay between a write's wake-up call and the round it asks for (lets the write commit). */
const WAKE_DELAY_MS = 10;
/** The round after a woken one, for a write that had not committed when it ran. */
const CATCH_UP_MS = 250;

export class PublisherWorker {
  readonly name = 'event-publisher';
  private timer?: NodeJS.Timeout;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = true;

  constructor(
    private readonly publisher: Publisher,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** One round now, outside the timer (tests; an operator's "publish now"). */
  publishOnce(): Promise<PublishResult> {
    return this.publisher.publishOnce();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setTimeout(this.tick, this.intervalMs);
  }

  /**
   * A write appended to the change log: publish in a few milliseconds rather than at the next
   * round (the delay lets its transaction commit; a round that comes too early leaves the change
   * to the following one). Many writes in a burst make one round.
   */
  wake(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    if (this.woken) return;
    this.woken = true;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.tick, WAKE_DELAY_MS);
  }

  private busy = false;
  private again = false;
  private woken = false;

  private readonly tick = () => {
    if (this.stopped) return;
    this.busy = true;
    const wasWoken = this.woken;
    this.woken = false;
    this.running = this.publisher
      .publishOnce()
      .catch(this.onError)
      .finally(() => {
        this.busy = false;
        if (this.stopped) return;
        // After a woken round, one more soon: the write that woke it may not have committed yet.
        const delay = this.again
          ? WAKE_DELAY_MS
          : wasWoken
            ? Math.min(CATCH_UP_MS, this.intervalMs)
            : this.intervalMs;
        this.woken = this.again;
        this.again = false;
        this.timer = setTimeout(this.tick, delay);
      });
  };

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
