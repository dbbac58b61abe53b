/**
 * The SCIM operations on resources: each one is a single transaction that validates with the
 * SCIM core (src/scim), reads and writes through the repository (src/store) and returns the
 * resource as a client sees it. The HTTP layer only maps requests and responses onto these.
 */
import { createHash, randomUUID } from 'node:crypto';
import { ScimError } from '../scim/errors.ts';
import type { BoundFilter } from '../scim/filter/ast.ts';
import { bindFilter } from '../scim/filter/bind.ts';
import { matches } from '../scim/filter/evaluate.ts';
import { parseFilter } from '../scim/filter/parser.ts';
import { isJsonObject, type JsonObject, type JsonValue } from '../scim/json.ts';
import { deepEqual } from '../scim/patch/json-util.ts';
import { applyPatch, parsePatchRequest, type MemberChange } from '../scim/patch/patch.ts';
import { projectVisible } from '../scim/resource/project.ts';
import { checkRules } from '../scim/resource/rules.ts';
import { prepareWrite } from '../scim/resource/validate.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../scim/schema/registry.ts';
import type { Database, Queryable } from '../store/db.ts';
import type { GroupRefRow, KeysetPosition, ListQuery, MemberRow, ResourceRow } from '../store/resources.ts';
import { ResourceRepository, storeSecretDigest, type Visibility } from '../store/resources.ts';
import type { StoreHookResult } from '../scim/schema/hooks.ts';
import { TenancyRepository } from '../store/tenancy.ts';
import { compileSort } from '../store/sql/sort-sql.ts';
import { uniqueIndexes, type UniqueIndex } from '../store/sql/filter-sql.ts';
import type { SortExpression } from '../store/sql/sort-sql.ts';
import type { LimitsConfig } from '../config.ts';
import { CursorCodec, queryHash } from './cursor.ts';

export const LIST_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

/** Who is asking, and where: every operation is scoped to one tenant. */
export interface RequestContext {
  tenant: string;
  /** Base URL of the tenant's SCIM endpoint, e.g. http://host/scim/v2 (no trailing slash). */
  baseUrl: string;
  clientId?: string;
  /** The tenant's effective limits (its settings over the node's). */
  limits: LimitsConfig;
  /** The tenant's settings, for resource type hooks (see src/scim/schema/hooks.ts). */
  settings?: Record<string, unknown>;
  /**
   * Set for a client limited to what it manages: resources of types with `managedBy` are visible
   * when it created them or when they name one of these applications.
   */
  managed?: { clientId: string; appIds: string[] };
  /** Leave out attributes marked `sensitive` (onboarding secrets) from every response. */
  hideSensitive?: boolean;
  /** An open transaction the operation joins (in a savepoint): Bulk runs its operations in one. */
  transaction?: Queryable;
}

export interface Projection {
  attributes?: string[];
  excludedAttributes?: string[];
}

/** A single resource as returned to the client, with its ETag. */
export interface ResourceResult {
  resource: JsonObject;
  etag: string;
  location: string;
}

export interface ListParams extends Projection {
  filter?: string;
  sortBy?: string;
  sortOrder?: string;
  startIndex?: number;
  count?: number;
  /** Present (possibly '') = cursor paging requested (RFC 9865). */
  cursor?: string;
}

export interface ListResult {
  schemas: [typeof LIST_RESPONSE_SCHEMA];
  totalResults: number;
  itemsPerPage?: number;
  startIndex?: number;
  nextCursor?: string;
  previousCursor?: string;
  Resources?: JsonObject[];
}

/** A write reported by ResourceService.onChange: where, what type, and which client wrote it. */
export interface ResourceChange {
  tenant: string;
  resourceType: string;
  /** The writing client (a token's client, `upstream:<id>`, `sync:<flowId>`, `jit:oidc`). */
  clientId?: string;
}

/** One row of ResourceService.createBatch: the new resource's id, or why the row was not stored. */
export type BatchCreateResult = { ok: true; id: string } | { ok: false; error: ScimError };

type PreparedRow = { doc: JsonObject; members?: JsonObject[] } | ScimError;

/** A batch validated by ResourceService.prepareBatch, to be stored by storeBatch. */
export interface PreparedBatch {
  rt: ResourceTypeConfig;
  bodies: unknown[];
  rows: PreparedRow[];
}

export function etagOf(version: number): string {
  return `W/"${version}"`;
}

/** If-Match: `*`, or a list of (weak or strong) tags one of which must equal the current version. */
export function ifMatchSatisfied(header: string | undefined, version: number): boolean {
  if (header === undefined) return true;
  const tags = header.split(',').map((t) => t.trim());
  if (tags.includes('*')) return true;
  return tags.some((t) => t.replace(/^W\//, '') === `"${version}"`);
}

const UNIQUE_VIOLATION = '23505';

function dbErrorCode(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/**
 * SQLSTATE class 22 (data exception) means a client value the database cannot hold or compare,
 * e.g. a NUL character, which jsonb and text refuse: that is the client's 400, not our 500.
 */
function asClientDataError(err: unknown): ScimError | undefined {
  const code = dbErrorCode(err);
  if (code?.startsWith('22')) {
    const message = err instanceof Error ? err.message : 'invalid value';
    return ScimError.badRequest('invalidValue', `A value cannot be stored or compared: ${message}`);
  }
  return undefined;
}

export class ResourceService {
  private readonly repo = new ResourceRepository();
  private readonly changes = new TenancyRepository();
  /** Unique index name → the attribute it guards, to name it in a 409. */
  private readonly uniqueIndexNames: Map<string, UniqueIndex>;

  /**
   * Called when a write appends to the change log (before its commit; listeners that read the
   * log must allow for that, e.g. by acting a few milliseconds later). The event publisher uses
   * it to publish within milliseconds instead of at its next polling round; the sync engine's
   * local-change trigger (src/sync/triggers/local-change.ts) uses the tenant, type and writing
   * client it reports.
   */
  onChange?: (change: ResourceChange) => void;

  constructor(
    readonly db: Database,
    readonly registry: SchemaRegistry,
    private readonly cursors: CursorCodec,
  ) {
    this.uniqueIndexNames = new Map(uniqueIndexes(registry).map((i) => [i.name, i]));
  }

  // ---- reads -------------------------------------------------------------------------------

  async get(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    id: string,
    projection: Projection = {},
  ): Promise<ResourceResult> {
    // One statement (the row with its derived groups), so no transaction: BEGIN and COMMIT would
    // triple the round trips of the most frequent request. A Group's members are a second
    // statement a moment later, which a reader cannot tell from a change landing just after.
    const withGroups = rt.groupsAttribute !== undefined && this.relationsWanted([rt], projection).groups;
    return this.read(async (q) => {
      const row = await this.repo.get(q, ctx.tenant, id, rt.name, false, visibilityOf(ctx, rt), withGroups);
      if (!row) throw notFound(rt, id);
      return this.result(q, ctx, rt, row, projection);
    }, false);
  }

  /** Current version of a resource (for If-None-Match), without building the representation. */
  async version(ctx: RequestContext, rt: ResourceTypeConfig, id: string): Promise<number | undefined> {
    const row = await this.read(
      (q) => this.repo.get(q, ctx.tenant, id, rt.name, false, visibilityOf(ctx, rt)),
      false,
    );
    return row?.version;
  }

  async list(ctx: RequestContext, types: ResourceTypeConfig[], params: ListParams): Promise<ListResult> {
    const lenient = types.length > 1;
    const parsed = params.filter !== undefined ? this.parseFilter(params.filter) : undefined;
    const bound = types.map((rt) => ({
      rt,
      filter: parsed ? (bindFilter(this.registry, rt, parsed, { lenient }) as BoundFilter) : undefined,
      visibility: visibilityOf(ctx, rt),
    }));
    if (lenient && parsed && bound.every((b) => b.filter?.op === 'const' && !b.filter.value)) {
      // Root query on an attribute no type has: a typo, not an empty result.
      bindFilter(this.registry, types[0], parsed);
    }
    if (ctx.hideSensitive) for (const b of bound) if (b.filter) refuseSensitive(b.filter);
    const sort = this.sortOf(types, params);
    if (ctx.hideSensitive && sort?.sensitive) {
      throw ScimError.badRequest(
        'invalidValue',
        'This client may not sort by onboarding secrets (scope devices:secrets)',
      );
    }
    const maxPage = Math.min(ctx.limits.maxPageSize, ctx.limits.filterMaxResults);
    let count = params.count ?? Math.min(ctx.limits.defaultPageSize, maxPage);
    if (!Number.isFinite(count) || count < 0) count = 0;
    count = Math.min(Math.trunc(count), maxPage);

    const useCursor = params.cursor !== undefined;
    const qhash = queryHash([
      types.map((t) => t.name),
      params.filter ?? null,
      params.sortBy ?? null,
      sort?.descending ?? false,
    ]);
    let position: KeysetPosition | undefined;
    if (useCursor && params.cursor !== '') {
      position = this.cursors.decode(params.cursor!, ctx.tenant, qhash, count, ctx.limits.cursorTimeout);
    }
    const startIndex = Math.max(1, Math.trunc(params.startIndex ?? 1) || 1);
    const wants = this.relationsWanted(types, params);
    const query: ListQuery = {
      types: bound,
      sort,
      page: useCursor
        ? { kind: 'keyset', limit: count === 0 ? 0 : count + 1, position }
        : { kind: 'index', offset: startIndex - 1, limit: count },
      withGroups: wants.groups && types.some((rt) => rt.groupsAttribute !== undefined),
    };
    // The count, the page and the groups are one statement; only a Group page's members are a
    // second one, which then must see the same snapshot (a transaction).
    const needsTransaction = wants.members && types.some((rt) => rt.membersAttribute !== undefined);

    return this.read(async (tx) => {
      const { rows, total } = await this.repo.list(tx, ctx.tenant, query);
      const out: ListResult = { schemas: [LIST_RESPONSE_SCHEMA], totalResults: total };
      let page = rows;
      if (useCursor) {
        // One extra row was read to learn whether another page follows (RFC 9865: nextCursor is the end signal).
        const backwards = position?.before ?? false;
        const hasMore = rows.length > count;
        if (hasMore) page = backwards ? rows.slice(rows.length - count) : rows.slice(0, count);
        const moreAfter = backwards ? true : hasMore;
        const moreBefore = backwards ? hasMore : position !== undefined;
        if (count > 0 && page.length > 0) {
          const last = page[page.length - 1];
          const first = page[0];
          if (moreAfter) out.nextCursor = this.cursors.encode(ctx.tenant, qhash, count, keyOf(last, false));
          if (moreBefore)
            out.previousCursor = this.cursors.encode(ctx.tenant, qhash, count, keyOf(first, true));
        }
      } else {
        out.startIndex = startIndex;
      }
      out.itemsPerPage = page.length;
      if (page.length > 0) {
        out.Resources = await this.represent(tx, ctx, page, params);
      }
      return out;
    }, needsTransaction);
  }

  // ---- writes ------------------------------------------------------------------------------

  async create(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    body: unknown,
    projection: Projection = {},
  ): Promise<ResourceResult> {
    const canonical = prepareWrite(this.registry, rt, body, { mode: 'create' });
    const { doc, members } = this.splitMembers(rt, canonical);
    return this.write(ctx, rt, async (tx) => {
      const { row, secrets } = await this.createIn(tx, ctx, rt, doc, members);
      const res = await this.result(tx, ctx, rt, row, projection, requested(body));
      // One-time secrets appear in this response only; the store keeps their digests.
      if (secrets) {
        const { meta, ...rest } = res.resource;
        res.resource = meta === undefined ? { ...rest, ...secrets } : { ...rest, ...secrets, meta };
      }
      return res;
    });
  }

  /**
   * Creates many resources in one transaction; a row is stored whole or not at all, and a bad row
   * (invalid, 409 uniqueness, unknown reference) does not lose the others. Per-row transactions
   * would cost a commit (a WAL flush) each, which bulk imports cannot afford.
   *
   * The happy path is multi-row (createRows): one statement stores the batch's resources and their
   * change-log rows, skipping rows that hit a unique index (ON CONFLICT DO NOTHING); only those
   * rows are then tried alone, under a savepoint, to name the conflict in their 409. When that
   * statement fails (a value the database refuses), or for types whose rows carry membership rows,
   * the batch is rolled back and run row by row: without savepoints until a row fails, then from
   * that row on each under a savepoint of its own (ROLLBACK TO SAVEPOINT undoes just that row).
   * With dryRun everything is validated, uniqueness included, and the transaction is rolled back.
   * Errors other than the client's (a lost connection) abort the batch.
   */
  async createBatch(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    bodies: unknown[],
    opts: { dryRun: boolean },
  ): Promise<BatchCreateResult[]> {
    return this.storeBatch(ctx, this.prepareBatch(rt, bodies), opts);
  }

  /**
   * The part of createBatch that needs no database (validation and canonicalisation), so that a
   * caller can prepare the next batch while the previous one is being stored.
   */
  prepareBatch(rt: ResourceTypeConfig, bodies: unknown[]): PreparedBatch {
    return { rt, bodies, rows: this.prepareRows(rt, bodies) };
  }

  private prepareRows(rt: ResourceTypeConfig, bodies: unknown[]): PreparedRow[] {
    return bodies.map((body) => {
      try {
        return this.splitMembers(rt, prepareWrite(this.registry, rt, body, { mode: 'create' }));
      } catch (err) {
        if (err instanceof ScimError) return err;
        throw err;
      }
    });
  }

  /** Stores a prepared batch (see createBatch); a batch is stored once. */
  async storeBatch(
    ctx: RequestContext,
    batch: PreparedBatch,
    opts: { dryRun: boolean },
  ): Promise<BatchCreateResult[]> {
    const { rt } = batch;
    let prepared = batch.rows;
    const dryRun = new Error('dry run');
    const multiRow = !prepared.some((p) => !(p instanceof ScimError) && p.members !== undefined);
    if (multiRow) {
      let results: BatchCreateResult[] = [];
      try {
        await this.db.transaction(async (tx) => {
          results = await this.createRows(tx, ctx, rt, prepared);
          if (opts.dryRun) throw dryRun;
        });
        this.onChange?.({ tenant: ctx.tenant, resourceType: rt.name, clientId: ctx.clientId });
        return results;
      } catch (err) {
        if (err === dryRun) return results;
        if (!(this.writeError(rt, err) instanceof ScimError)) throw err;
      }
      // beforeStore hooks completed the documents in place: the rerun starts from fresh ones.
      prepared = this.prepareRows(rt, batch.bodies);
    }
    class Retry {
      constructor(readonly index: number) {}
    }
    // After a failed multi-row statement every row gets a savepoint (the failing one is unknown).
    let savepointsFrom = multiRow ? 0 : prepared.length;
    for (let attempt = 0; ; attempt++) {
      const results: BatchCreateResult[] = [];
      const run = async (tx: Queryable): Promise<void> => {
        for (let i = 0; i < prepared.length; i++) {
          const p = prepared[i];
          if (p instanceof ScimError) {
            results.push({ ok: false, error: p });
            continue;
          }
          // beforeStore hooks complete documents in place: a rerun starts from copies.
          const { doc, members } = attempt === 0 ? p : structuredClone(p);
          if (i < savepointsFrom) {
            try {
              const { row } = await this.createIn(tx, ctx, rt, doc, members);
              results.push({ ok: true, id: row.id });
            } catch {
              throw new Retry(i);
            }
            continue;
          }
          const res = await this.inSavepoint(tx, rt, () => this.createIn(tx, ctx, rt, doc, members));
          results.push(res instanceof ScimError ? { ok: false, error: res } : { ok: true, id: res.row.id });
        }
        if (opts.dryRun) throw dryRun;
      };
      try {
        await this.db.transaction(run);
      } catch (err) {
        if (err instanceof Retry) {
          // A row before the first failure failing on the rerun (a concurrent writer): all under savepoints.
          savepointsFrom = attempt === 0 ? err.index : 0;
          continue;
        }
        if (err !== dryRun) throw err;
      }
      return results;
    }
  }

  /**
   * The multi-row happy path of createBatch, in its transaction: hooks run per row (in memory), the
   * references of the whole batch are checked with one query, and one statement inserts every
   * remaining row with its change-log row. A row skipped on a unique index is run alone under a
   * savepoint, which fails with the violation of the index it hit (or stores the row, if the
   * value was freed meanwhile). Throws, leaving the transaction aborted, when the statement fails.
   */
  private async createRows(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    prepared: PreparedRow[],
  ): Promise<BatchCreateResult[]> {
    const results: BatchCreateResult[] = new Array(prepared.length);
    const rows: { index: number; doc: JsonObject; hook?: StoreHookResult; id: string }[] = [];
    prepared.forEach((p, index) => {
      if (p instanceof ScimError) {
        results[index] = { ok: false, error: p };
        return;
      }
      try {
        rows.push({ index, doc: p.doc, hook: this.storeHook(ctx, rt, p.doc, 'create'), id: randomUUID() });
      } catch (err) {
        if (!(err instanceof ScimError)) throw err;
        results[index] = { ok: false, error: err };
      }
    });
    const refIds = [...new Set(rows.flatMap((r) => r.hook?.references?.flatMap((ref) => ref.ids) ?? []))];
    const found = await this.repo.existing(tx, ctx.tenant, refIds);
    const kept = rows.filter((r) => {
      const error = referenceError(r.hook, found);
      if (error) results[r.index] = { ok: false, error };
      return !error;
    });
    const now = new Date();
    const inserted = await this.repo.insertMany(tx, ctx.tenant, {
      resourceType: rt.name,
      now,
      owner: ctx.clientId,
      rows: kept.map((r) => ({ id: r.id, externalId: externalIdOf(r.doc), doc: r.doc })),
    });
    for (const r of kept) {
      if (inserted.has(r.id)) {
        await this.storeSecrets(tx, ctx, r.id, r.hook?.oneTimeSecrets);
        results[r.index] = { ok: true, id: r.id };
        continue;
      }
      const res = await this.inSavepoint(tx, rt, () => this.storeNew(tx, ctx, rt, r.doc, undefined, r.hook));
      results[r.index] = res instanceof ScimError ? { ok: false, error: res } : { ok: true, id: res.row.id };
    }
    return results;
  }

  /** Runs fn under a savepoint of tx: a client error undoes just fn and is returned, not thrown. */
  private async inSavepoint<T>(
    tx: Queryable,
    rt: ResourceTypeConfig,
    fn: () => Promise<T>,
  ): Promise<T | ScimError> {
    await tx.query('SAVEPOINT batch_row');
    try {
      const out = await fn();
      await tx.query('RELEASE SAVEPOINT batch_row');
      return out;
    } catch (err) {
      await tx.query('ROLLBACK TO SAVEPOINT batch_row');
      const mapped = this.writeError(rt, err);
      if (!(mapped instanceof ScimError)) throw mapped;
      return mapped;
    }
  }

  async replace(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    id: string,
    body: unknown,
    ifMatch: string | undefined,
    projection: Projection = {},
  ): Promise<ResourceResult> {
    return this.write(ctx, rt, async (tx) => {
      const current = await this.lockForWrite(tx, ctx, rt, id, ifMatch);
      const existing = await this.fullResource(tx, ctx, rt, current);
      const canonical = prepareWrite(this.registry, rt, body, { mode: 'replace', existing });
      const { doc, members } = this.splitMembers(rt, canonical);
      await this.beforeStore(tx, ctx, rt, doc, 'replace');
      let row = current;
      let changed = !deepEqual(doc, current.doc);
      if (rt.membersAttribute) {
        const removed = await this.repo.removeMembers(tx, ctx.tenant, id);
        const added = members ? await this.addMembers(tx, ctx, rt, id, members) : 0;
        changed ||= removed !== added || (await this.membersDiffer(existing, rt, members));
      }
      const now = new Date();
      if (changed) {
        row = await this.repo.update(tx, ctx.tenant, id, doc, externalIdOf(doc), now);
        await this.record(tx, ctx, 'replace', rt, row);
      }
      return this.result(tx, ctx, rt, row, projection, requested(body));
    });
  }

  async patch(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    id: string,
    body: unknown,
    ifMatch: string | undefined,
    projection: Projection = {},
  ): Promise<ResourceResult & { membersChanged: boolean }> {
    const ops = parsePatchRequest(body);
    return this.write(ctx, rt, async (tx) => {
      const current = await this.lockForWrite(tx, ctx, rt, id, ifMatch);
      const before = await this.representation(tx, ctx, rt, current, { withMembers: false });
      const result = applyPatch(this.registry, rt, before, ops);
      checkRules(this.registry, rt, result.resource);
      const doc = this.docOf(rt, result.resource);
      await this.beforeStore(tx, ctx, rt, doc, 'patch');
      let rowsChanged = 0;
      for (const change of result.memberChanges)
        rowsChanged += await this.applyMemberChange(tx, ctx, rt, id, change);
      const docChanged = !deepEqual(doc, current.doc);
      const now = new Date();
      let row = current;
      if (docChanged) row = await this.repo.update(tx, ctx.tenant, id, doc, externalIdOf(doc), now);
      else if (rowsChanged > 0) row = await this.repo.touch(tx, ctx.tenant, id, now);
      if (row !== current) await this.record(tx, ctx, 'patch', rt, row);
      if (result.memberChanges.length > 0 && !projection.attributes && !projection.excludedAttributes) {
        // The HTTP layer answers a member change with 204 (a group may hold 500,000 members):
        // building the representation would cost O(members), so it is not built.
        return {
          resource: {},
          etag: etagOf(row.version),
          location: locationOf(ctx, rt, row.id),
          membersChanged: true,
        };
      }
      const res = await this.result(tx, ctx, rt, row, projection, requestedFromOps(ops));
      return { ...res, membersChanged: result.memberChanges.length > 0 };
    });
  }

  async delete(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    id: string,
    ifMatch: string | undefined,
  ): Promise<void> {
    await this.write(ctx, rt, async (tx) => {
      const row = await this.lockForWrite(tx, ctx, rt, id, ifMatch);
      const now = new Date();
      const groups = await this.repo.delete(tx, ctx.tenant, id, now);
      await this.record(tx, ctx, 'delete', rt, { ...row, version: row.version + 1, last_modified: now });
      // Groups that listed the deleted resource changed too (their members).
      for (const g of groups)
        await this.record(tx, ctx, 'patch', this.registry.resourceType(g.resource_type)!, g);
    });
  }

  /**
   * A replica write: what an event received from an upstream publisher says about one resource
   * (src/events/inbound/applier.ts), stored under the SOURCE's id so that references between
   * replicated resources stay valid. `upsert` creates the resource or replaces it wholly with the
   * given representation (readOnly parts such as meta and groups are ignored); `patch` applies a
   * PatchOp message to the local copy; `delete` removes it. Members naming resources this tenant
   * does not have (yet) are left out of this write and reported in `droppedMembers`: the upstream
   * sends the group again (or a member add) after those resources, and a replica must not refuse
   * a whole group for a member that arrives later. One transaction (or a savepoint of
   * ctx.transaction), recorded in the change log under ctx.clientId so the replica can publish
   * onward.
   */
  async applyReplica(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    id: string,
    change:
      { kind: 'upsert'; resource: JsonObject } | { kind: 'patch'; patch: JsonObject } | { kind: 'delete' },
  ): Promise<{
    outcome: 'created' | 'replaced' | 'patched' | 'deleted' | 'unchanged' | 'absent';
    droppedMembers: string[];
  }> {
    const droppedMembers: string[] = [];
    const present = async (tx: Queryable, values: JsonObject[]): Promise<JsonObject[]> => {
      const ids = values.map((v) => v.value).filter((v): v is string => typeof v === 'string');
      const found = await this.repo.existing(tx, ctx.tenant, ids);
      return values.filter((v) => {
        const keep = typeof v.value === 'string' && v.value !== id && found.has(v.value);
        if (!keep && typeof v.value === 'string') droppedMembers.push(v.value);
        return keep;
      });
    };
    const outcome = await this.write(ctx, rt, async (tx) => {
      const current = await this.repo.get(tx, ctx.tenant, id, undefined, true);
      if (current && current.resource_type !== rt.name) {
        throw ScimError.conflict(`${id} is a ${current.resource_type} in this tenant, not a ${rt.name}`);
      }
      const now = new Date();
      if (change.kind === 'delete') {
        if (!current) return 'absent' as const;
        const groups = await this.repo.delete(tx, ctx.tenant, id, now);
        await this.record(tx, ctx, 'delete', rt, {
          ...current,
          version: current.version + 1,
          last_modified: now,
        });
        for (const g of groups)
          await this.record(tx, ctx, 'patch', this.registry.resourceType(g.resource_type)!, g);
        return 'deleted' as const;
      }
      if (change.kind === 'patch') {
        if (!current) throw notFound(rt, id);
        const ops = parsePatchRequest(change.patch);
        const before = await this.representation(tx, ctx, rt, current, { withMembers: false });
        const result = applyPatch(this.registry, rt, before, ops);
        const doc = this.docOf(rt, result.resource);
        await this.beforeStore(tx, ctx, rt, doc, 'patch');
        let rowsChanged = 0;
        for (const mc of result.memberChanges) {
          const kept = mc.kind === 'remove' ? mc : { ...mc, values: await present(tx, mc.values) };
          rowsChanged += await this.applyMemberChange(tx, ctx, rt, id, kept);
        }
        let row = current;
        if (!deepEqual(doc, current.doc))
          row = await this.repo.update(tx, ctx.tenant, id, doc, externalIdOf(doc), now);
        else if (rowsChanged > 0) row = await this.repo.touch(tx, ctx.tenant, id, now);
        if (row === current) return 'unchanged' as const;
        await this.record(tx, ctx, 'patch', rt, row);
        return 'patched' as const;
      }
      const canonical = prepareWrite(this.registry, rt, change.resource, { mode: 'create' });
      const { doc, members } = this.splitMembers(rt, canonical);
      const kept = members ? await present(tx, members) : undefined;
      if (!current) {
        const hook = await this.beforeStore(tx, ctx, rt, doc, 'create');
        const row = await this.repo.insert(tx, ctx.tenant, {
          id,
          resourceType: rt.name,
          externalId: externalIdOf(doc),
          doc,
          now,
          owner: ctx.clientId,
        });
        if (kept) await this.addMembers(tx, ctx, rt, id, kept);
        await this.storeSecrets(tx, ctx, id, hook?.oneTimeSecrets);
        await this.record(tx, ctx, 'create', rt, row);
        return 'created' as const;
      }
      await this.beforeStore(tx, ctx, rt, doc, 'replace');
      let changed = !deepEqual(doc, current.doc);
      if (rt.membersAttribute) {
        const existing = await this.fullResource(tx, ctx, rt, current);
        const removed = await this.repo.removeMembers(tx, ctx.tenant, id);
        const added = kept ? await this.addMembers(tx, ctx, rt, id, kept) : 0;
        changed ||= removed !== added || (await this.membersDiffer(existing, rt, kept));
      }
      if (!changed) return 'unchanged' as const;
      const row = await this.repo.update(tx, ctx.tenant, id, doc, externalIdOf(doc), now);
      await this.record(tx, ctx, 'replace', rt, row);
      return 'replaced' as const;
    });
    return { outcome, droppedMembers: [...new Set(droppedMembers)] };
  }

  // ---- helpers -----------------------------------------------------------------------------

  /**
   * Runs the resource type's beforeStore hook (server-owned values) and checks that the resources
   * it says this one refers to exist in the tenant.
   */
  private async beforeStore(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    doc: JsonObject,
    mode: 'create' | 'replace' | 'patch',
  ): Promise<StoreHookResult | undefined> {
    const result = this.storeHook(ctx, rt, doc, mode);
    const ids = [...new Set(result?.references?.flatMap((ref) => ref.ids) ?? [])];
    const error = referenceError(
      result,
      ids.length ? await this.repo.existing(tx, ctx.tenant, ids) : new Map(),
    );
    if (error) throw error;
    return result;
  }

  /** The resource type's beforeStore hook (server-owned values), without the reference check. */
  private storeHook(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    doc: JsonObject,
    mode: 'create' | 'replace' | 'patch',
  ): StoreHookResult | undefined {
    return (
      rt.hooks?.beforeStore?.(doc, { mode, settings: ctx.settings ?? {}, baseUrl: ctx.baseUrl }) ?? undefined
    );
  }

  private async storeSecrets(
    tx: Queryable,
    ctx: RequestContext,
    resourceId: string,
    secrets: Record<string, string> | undefined,
  ): Promise<Record<string, string> | undefined> {
    if (!secrets) return undefined;
    for (const [name, value] of Object.entries(secrets)) {
      await storeSecretDigest(tx, ctx.tenant, resourceId, name, secretDigest(value));
    }
    return secrets;
  }

  /** The steps of a create inside its transaction: server-set values, the row, members, secrets, audit. */
  private async createIn(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    doc: JsonObject,
    members: JsonObject[] | undefined,
  ): Promise<{ row: ResourceRow; secrets?: Record<string, string> }> {
    const hook = await this.beforeStore(tx, ctx, rt, doc, 'create');
    return this.storeNew(tx, ctx, rt, doc, members, hook);
  }

  /** A create after its hook ran: the row, members, secrets, audit. */
  private async storeNew(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    doc: JsonObject,
    members: JsonObject[] | undefined,
    hook: StoreHookResult | undefined,
  ): Promise<{ row: ResourceRow; secrets?: Record<string, string> }> {
    const now = new Date();
    const row = await this.repo.insert(tx, ctx.tenant, {
      id: randomUUID(),
      resourceType: rt.name,
      externalId: externalIdOf(doc),
      doc,
      now,
      owner: ctx.clientId,
    });
    if (members) await this.addMembers(tx, ctx, rt, row.id, members);
    const secrets = await this.storeSecrets(tx, ctx, row.id, hook?.oneTimeSecrets);
    await this.record(tx, ctx, 'create', rt, row);
    return { row, secrets };
  }

  /** The audit trail / change log entry of a write, in the write's transaction. */
  private async record(
    tx: Queryable,
    ctx: RequestContext,
    operation: 'create' | 'replace' | 'patch' | 'delete',
    rt: ResourceTypeConfig,
    row: ResourceRow,
  ): Promise<void> {
    await this.changes.recordChange(tx, {
      tenant: ctx.tenant,
      at: row.last_modified,
      client: ctx.clientId,
      operation,
      resourceType: rt.name,
      resourceId: row.id,
      version: row.version,
    });
    this.onChange?.({ tenant: ctx.tenant, resourceType: rt.name, clientId: ctx.clientId });
  }

  parseFilter(text: string) {
    return parseFilter(text, { schemaUris: this.registry.schemaUris() });
  }

  /** Runs a write transaction; a unique-index violation becomes 409 uniqueness (RFC 7644 §3.3). */
  /**
   * Runs a write in its own transaction — or, when the context carries one (a Bulk request), in a
   * savepoint of it, so a failing operation is undone alone and the others commit together.
   */
  private async write<T>(
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    fn: (tx: Queryable) => Promise<T>,
  ): Promise<T> {
    const outer = ctx.transaction;
    if (!outer) {
      try {
        return await this.db.transaction(fn);
      } catch (err) {
        throw this.writeError(rt, err);
      }
    }
    await outer.query('SAVEPOINT scim_operation');
    try {
      const result = await fn(outer);
      await outer.query('RELEASE SAVEPOINT scim_operation');
      return result;
    } catch (err) {
      await outer.query('ROLLBACK TO SAVEPOINT scim_operation');
      throw this.writeError(rt, err);
    }
  }

  /** Runs several operations in one transaction: pass `{ ...ctx, transaction }` to each (see write). */
  async inTransaction<T>(fn: (transaction: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  /** The error a failed write answers with: unique-index violation → 409, data exception → 400. */
  private writeError(rt: ResourceTypeConfig, err: unknown): unknown {
    if (dbErrorCode(err) === UNIQUE_VIOLATION) {
      const constraint = (err as { constraint?: string }).constraint;
      const index = constraint ? this.uniqueIndexNames.get(constraint) : undefined;
      return ScimError.conflict(
        index
          ? `Another ${index.resourceType} already has this ${index.attribute}`
          : `Another ${rt.name} already has this value of a unique attribute`,
      );
    }
    return asClientDataError(err) ?? err;
  }

  /** Runs a read (in a transaction unless told otherwise), mapping data exceptions caused by request values to 400. */
  private async read<T>(fn: (tx: Queryable) => Promise<T>, transaction = true): Promise<T> {
    try {
      return await (transaction ? this.db.transaction(fn) : fn(this.db));
    } catch (err) {
      throw asClientDataError(err) ?? err;
    }
  }

  private async lockForWrite(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    id: string,
    ifMatch: string | undefined,
  ): Promise<ResourceRow> {
    const row = await this.repo.get(tx, ctx.tenant, id, rt.name, true, visibilityOf(ctx, rt));
    if (!row) throw notFound(rt, id);
    if (!ifMatchSatisfied(ifMatch, row.version)) {
      throw ScimError.preconditionFailed(
        `If-Match ${ifMatch} does not match the current version ${etagOf(row.version)} of ${rt.name} ${id}`,
      );
    }
    return row;
  }

  private sortOf(
    types: ResourceTypeConfig[],
    params: ListParams,
  ): (ListQuery['sort'] & { sensitive: boolean }) | undefined {
    const order = params.sortOrder?.toLowerCase();
    if (order !== undefined && order !== 'ascending' && order !== 'descending') {
      throw ScimError.badRequest(
        'invalidValue',
        `sortOrder must be "ascending" or "descending", got "${params.sortOrder}"`,
      );
    }
    if (!params.sortBy) return undefined;
    const path = this.parseFilter(`${params.sortBy} pr`);
    if (path.op !== 'pr') throw ScimError.badRequest('invalidValue', `sortBy must be an attribute path`);
    const perType = new Map<string, SortExpression>();
    let sensitive = false;
    for (const rt of types) {
      const attr = this.registry.findAttribute(rt, path.path);
      if (!attr) {
        if (types.length === 1)
          throw ScimError.badRequest('invalidValue', `Unknown sortBy attribute "${params.sortBy}"`);
        continue;
      }
      perType.set(rt.name, compileSort(attr, rt, 'r'));
      if (attr.attribute.sensitive || attr.sub?.sensitive) sensitive = true;
    }
    if (perType.size === 0)
      throw ScimError.badRequest('invalidValue', `Unknown sortBy attribute "${params.sortBy}"`);
    return { perType, descending: order === 'descending', sensitive };
  }

  /** Splits the relation attribute (Group.members) off a canonical resource: it is stored as rows. */
  private splitMembers(
    rt: ResourceTypeConfig,
    canonical: JsonObject,
  ): { doc: JsonObject; members?: JsonObject[] } {
    const doc = this.docOf(rt, canonical);
    const members = rt.membersAttribute ? canonical[rt.membersAttribute] : undefined;
    return { doc, members: Array.isArray(members) ? members.filter(isJsonObject) : undefined };
  }

  /** The stored document: the resource without id, meta and relation attributes. */
  private docOf(rt: ResourceTypeConfig, resource: JsonObject): JsonObject {
    const doc: JsonObject = {};
    for (const [k, v] of Object.entries(resource)) {
      if (k === 'id' || k === 'meta' || k === rt.membersAttribute || k === rt.groupsAttribute) continue;
      doc[k] = v;
    }
    return doc;
  }

  /** Adds members given as SCIM values; each must name an existing resource of the tenant. */
  private async addMembers(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    groupId: string,
    values: JsonObject[],
  ): Promise<number> {
    const ids = values.map((v) => v.value).filter((v): v is string => typeof v === 'string');
    if (ids.length !== values.length)
      throw ScimError.badRequest('invalidValue', 'Every member needs a "value" (the member id)');
    const found = await this.repo.existing(tx, ctx.tenant, ids);
    const rows: { id: string; type: string; display?: string }[] = [];
    for (const v of values) {
      const id = v.value as string;
      const actual = found.get(id);
      if (!actual) throw ScimError.badRequest('invalidValue', `Member "${id}" does not exist`);
      if (typeof v.type === 'string' && v.type.toLowerCase() !== actual.toLowerCase()) {
        throw ScimError.badRequest('invalidValue', `Member "${id}" is a ${actual}, not a ${v.type}`);
      }
      if (id === groupId) throw ScimError.badRequest('invalidValue', 'A group cannot be a member of itself');
      const allowed = this.memberTypes(rt);
      if (allowed && !allowed.includes(actual.toLowerCase())) {
        throw ScimError.badRequest('invalidValue', `Member "${id}" is a ${actual}, which cannot be a member`);
      }
      rows.push({ id, type: actual, ...(typeof v.display === 'string' ? { display: v.display } : {}) });
    }
    return this.repo.addMembers(tx, ctx.tenant, groupId, rows);
  }

  /** The resource types a members attribute admits (its `type` sub-attribute's canonical values), lower-cased. */
  private memberTypes(rt: ResourceTypeConfig): string[] | undefined {
    if (!rt.membersAttribute) return undefined;
    const attr = this.registry.findAttribute(rt, { attr: rt.membersAttribute, subAttr: 'type' });
    return attr?.sub?.canonicalValues?.map((v) => v.toLowerCase());
  }

  private async applyMemberChange(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    groupId: string,
    change: MemberChange,
  ): Promise<number> {
    switch (change.kind) {
      case 'add':
        return this.addMembers(tx, ctx, rt, groupId, change.values);
      case 'replace': {
        const removed = await this.repo.removeMembers(tx, ctx.tenant, groupId);
        const added = await this.addMembers(tx, ctx, rt, groupId, change.values);
        return removed + added;
      }
      case 'remove': {
        if (change.values) return this.repo.removeMembers(tx, ctx.tenant, groupId, change.values);
        if (!change.filter) return this.repo.removeMembers(tx, ctx.tenant, groupId);
        const ids =
          memberIdsOf(change.filter) ?? (await this.membersMatching(tx, ctx, rt, groupId, change.filter));
        return this.repo.removeMembers(tx, ctx.tenant, groupId, ids);
      }
    }
  }

  /** General member filters (other than `value eq`) are evaluated over the group's member rows. */
  private async membersMatching(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    groupId: string,
    filter: BoundFilter,
  ): Promise<string[]> {
    const membersAttr = this.registry.findAttribute(rt, { attr: rt.membersAttribute! })!;
    const rows = (await this.repo.membersOf(tx, ctx.tenant, [groupId])).get(groupId) ?? [];
    return rows
      .filter((m) =>
        matches(
          { [membersAttr.attribute.name]: [memberValue(m, ctx, this.registry)] },
          { op: 'valuePath', attr: membersAttr, filter },
        ),
      )
      .map((m) => m.member_id);
  }

  private async membersDiffer(
    existing: JsonObject,
    rt: ResourceTypeConfig,
    members: JsonObject[] | undefined,
  ): Promise<boolean> {
    const before = (existing[rt.membersAttribute!] as JsonObject[] | undefined) ?? [];
    const a = before.map((m) => m.value).sort();
    const b = (members ?? []).map((m) => m.value).sort();
    return !deepEqual(a as JsonValue[], b as JsonValue[]);
  }

  private async fullResource(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    row: ResourceRow,
  ): Promise<JsonObject> {
    return this.representation(tx, ctx, rt, row, { withMembers: true });
  }

  /** The full representation of one row (before projection). */
  private async representation(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    row: ResourceRow,
    opts: { withMembers: boolean },
  ): Promise<JsonObject> {
    const [res] = await this.representRows(tx, ctx, [row], { members: opts.withMembers, groups: true });
    return res;
  }

  private async result(
    tx: Queryable,
    ctx: RequestContext,
    rt: ResourceTypeConfig,
    row: ResourceRow,
    projection: Projection,
    requestedOnWrite?: Set<string>,
  ): Promise<ResourceResult> {
    const wants = this.relationsWanted([rt], projection);
    const [full] = await this.representRows(tx, ctx, [row], wants);
    return {
      resource: projectVisible(
        this.registry,
        rt,
        full,
        { ...projection, requestedOnWrite },
        ctx.hideSensitive ?? false,
      ),
      etag: etagOf(row.version),
      location: locationOf(ctx, rt, row.id),
    };
  }

  private async represent(
    tx: Queryable,
    ctx: RequestContext,
    rows: ResourceRow[],
    projection: Projection,
  ): Promise<JsonObject[]> {
    const types = [...new Set(rows.map((r) => r.resource_type))].map((n) => this.registry.resourceType(n)!);
    const full = await this.representRows(tx, ctx, rows, this.relationsWanted(types, projection));
    return full.map((res, i) => {
      const rt = this.registry.resourceType(rows[i].resource_type)!;
      return projectVisible(this.registry, rt, res, projection, ctx.hideSensitive ?? false);
    });
  }

  /** Whether the projection can include members / groups: they cost a query, so skip when excluded. */
  private relationsWanted(
    types: ResourceTypeConfig[],
    projection: Projection,
  ): { members: boolean; groups: boolean } {
    const named = (name: string | undefined, list: string[] | undefined) =>
      !!name &&
      !!list?.some((a) => {
        const l = a.toLowerCase();
        const n = name.toLowerCase();
        return l === n || l.startsWith(`${n}.`) || l.endsWith(`:${n}`) || l.includes(`:${n}.`);
      });
    const wanted = (name: string | undefined) =>
      !!name &&
      (projection.attributes
        ? named(name, projection.attributes)
        : !named(name, projection.excludedAttributes));
    return {
      members: types.some((rt) => wanted(rt.membersAttribute)),
      groups: types.some((rt) => wanted(rt.groupsAttribute)),
    };
  }

  private readonly keyOrders = new Map<string, string[]>();

  /** Top-level keys of a resource type's stored documents, in schema order (externalId first). */
  private keyOrder(rt: ResourceTypeConfig): string[] {
    let order = this.keyOrders.get(rt.name);
    if (!order) {
      order = ['externalId'];
      for (const { schema, extension } of this.registry.schemasOf(rt)) {
        if (extension) order.push(schema.id);
        else order.push(...schema.attributes.map((a) => a.name));
      }
      this.keyOrders.set(rt.name, order);
    }
    return order;
  }

  /** Rows → full resources, loading membership rows for the whole page in one query each. */
  private async representRows(
    tx: Queryable,
    ctx: RequestContext,
    rows: ResourceRow[],
    wants: { members: boolean; groups: boolean },
  ): Promise<JsonObject[]> {
    const groupIds = rows
      .filter((r) => this.registry.resourceType(r.resource_type)?.membersAttribute)
      .map((r) => r.id);
    // Rows read with their groups (repo `withGroups`) need no second statement.
    const memberIds = rows
      .filter((r) => r.groups === undefined && this.registry.resourceType(r.resource_type)?.groupsAttribute)
      .map((r) => r.id);
    const members = wants.members
      ? await this.repo.membersOf(tx, ctx.tenant, groupIds)
      : new Map<string, MemberRow[]>();
    const groups =
      wants.groups && memberIds.length > 0
        ? await this.repo.groupsOf(tx, ctx.tenant, memberIds)
        : new Map<string, GroupRefRow[]>();
    if (wants.groups) for (const r of rows) if (r.groups && r.groups.length > 0) groups.set(r.id, r.groups);
    const groupsRt = this.registry.resourceTypes().find((t) => t.membersAttribute);
    // A page is mostly of one type: look each type and its key order up once.
    const typeOf = new Map<string, { rt: ResourceTypeConfig; order: string[] }>();
    return rows.map((row) => {
      let t = typeOf.get(row.resource_type);
      if (!t) {
        const found = this.registry.resourceType(row.resource_type)!;
        typeOf.set(row.resource_type, (t = { rt: found, order: this.keyOrder(found) }));
      }
      const { rt, order } = t;
      const doc = row.doc;
      const out: JsonObject = { schemas: doc.schemas, id: row.id };
      // jsonb does not keep key order: emit attributes in schema order, as clients and people expect.
      for (const key of order) {
        const v = doc[key];
        if (v !== undefined) out[key] = v;
      }
      for (const key of Object.keys(doc)) if (!(key in out)) out[key] = doc[key];
      if (rt.membersAttribute && members.has(row.id)) {
        out[rt.membersAttribute] = members.get(row.id)!.map((m) => memberValue(m, ctx, this.registry));
      }
      if (rt.groupsAttribute && groups.has(row.id)) {
        out[rt.groupsAttribute] = groups
          .get(row.id)!
          .map((g: { group_id: string; display: string | null }) => {
            const v: JsonObject = { value: g.group_id };
            if (groupsRt) v.$ref = locationOf(ctx, groupsRt, g.group_id);
            if (g.display !== null) v.display = g.display;
            v.type = 'direct';
            return v;
          });
      }
      out.meta = {
        resourceType: rt.name,
        created: row.created.toISOString(),
        lastModified: row.last_modified.toISOString(),
        location: locationOf(ctx, rt, row.id),
        version: etagOf(row.version),
      };
      return out;
    });
  }
}

function memberValue(m: MemberRow, ctx: RequestContext, registry: SchemaRegistry): JsonObject {
  const v: JsonObject = { value: m.member_id };
  const memberRt = registry.resourceType(m.member_type);
  if (memberRt) v.$ref = locationOf(ctx, memberRt, m.member_id);
  v.type = m.member_type;
  if (m.display !== null) v.display = m.display;
  return v;
}

export function locationOf(ctx: RequestContext, rt: ResourceTypeConfig, id: string): string {
  return `${ctx.baseUrl}${rt.endpoint}/${encodeURIComponent(id)}`;
}

/** A client that may not read secrets may not search by them either (that would reveal them). */
function refuseSensitive(f: BoundFilter): void {
  switch (f.op) {
    case 'and':
    case 'or':
      refuseSensitive(f.left);
      refuseSensitive(f.right);
      return;
    case 'not':
      refuseSensitive(f.filter);
      return;
    case 'const':
      return;
    case 'valuePath':
      refuseSensitive(f.filter);
      if (f.attr.attribute.sensitive) break;
      return;
    default:
      if (!f.attr.attribute.sensitive && !f.attr.sub?.sensitive) return;
  }
  throw ScimError.badRequest(
    'invalidFilter',
    'This client may not filter on onboarding secrets (scope devices:secrets)',
  );
}

/** The SHA-256 digest a generated secret is kept as (hex). */
export function secretDigest(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** The rows a managed-only client may reach, for types that declare how (`managedBy`). */
function visibilityOf(ctx: RequestContext, rt: ResourceTypeConfig): Visibility | undefined {
  if (!ctx.managed || !rt.managedBy) return undefined;
  const { schema, attribute } = rt.managedBy;
  const core = schema.toLowerCase() === rt.schema.toLowerCase();
  return {
    ownerClient: ctx.managed.clientId,
    refs: ctx.managed.appIds,
    containing: ctx.managed.appIds.map((value) =>
      core ? { [attribute]: [{ value }] } : { [schema]: { [attribute]: [{ value }] } },
    ),
  };
}

/** The 400 for references a hook named that are not resources of the right type in the tenant. */
function referenceError(
  hook: StoreHookResult | undefined,
  found: Map<string, string>,
): ScimError | undefined {
  for (const ref of hook?.references ?? []) {
    const missing = ref.ids.filter((id) => found.get(id) !== ref.resourceType);
    if (missing.length) {
      return ScimError.badRequest(
        'invalidValue',
        `${ref.attribute}: no ${ref.resourceType} ${missing.map((m) => `"${m}"`).join(', ')} in this tenant`,
      );
    }
  }
  return undefined;
}

function notFound(rt: ResourceTypeConfig, id: string): ScimError {
  return ScimError.notFound(`${rt.name} ${id} not found`);
}

function externalIdOf(doc: JsonObject): string | undefined {
  return typeof doc.externalId === 'string' ? doc.externalId : undefined;
}

function keyOf(row: ResourceRow, before: boolean): KeysetPosition {
  return { key: row.sort_key ?? null, id: row.id, before };
}

/** `value eq "a" or value eq "b"` → ["a", "b"]: the common member filter, run as a keyed delete. */
function memberIdsOf(f: BoundFilter): string[] | undefined {
  if (f.op === 'or') {
    const l = memberIdsOf(f.left);
    const r = memberIdsOf(f.right);
    return l && r ? [...l, ...r] : undefined;
  }
  if (f.op === 'eq' && f.attr.sub?.name === 'value' && typeof f.value === 'string') return [f.value];
  return undefined;
}

/** The attribute names a client sent on a write: `returned: request` ones come back in the response. */
function requested(body: unknown): Set<string> {
  return new Set(isJsonObject(body) ? Object.keys(body) : []);
}

function requestedFromOps(ops: { path?: string; value?: JsonValue }[]): Set<string> {
  const out = new Set<string>();
  for (const op of ops) {
    if (op.path) out.add(op.path.split(/[[.]/)[0]);
    else if (isJsonObject(op.value)) for (const k of Object.keys(op.value)) out.add(k);
  }
  return out;
}
