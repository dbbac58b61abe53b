/**
 * Push: local resources → the connection.
 *
 * - mode `changes`: the change log from the flow's position (src/store/changes.ts windows, as the
 *   event publisher walks them), each changed resource once at its latest change. Changes written
 *   by this flow's engine or by another sync flow of the same connection (client id
 *   `sync:<flowId>`) are skipped: they came from the remote and would echo back. The first run,
 *   with no position yet, is a full push that starts the position.
 * - mode `full` (and any run asked to compare everything): every remote resource of the flow's
 *   types is read once, every local resource in scope is compared with its counterpart, and links
 *   whose local resource left are handled per onDelete.
 *
 * One resource: mapped (mapping.ts), found on the remote (link, else matching attributes, see
 * links.ts), then created (POST, the attributes the local side owns plus `initial` ones) or
 * brought to the wanted state on the attributes the local side owns only (PATCH from the
 * difference, or PUT when flow.usePut). Group members are sent as the remote ids of their links;
 * a member not yet linked is pushed first when it is in the flow.
 */
import type { BulkOperation, BulkOperationResult, ScimResource } from '../../client/index.ts';
import type { JsonObject } from '../../scim/json.ts';
import type { ResourceTypeConfig } from '../../scim/schema/registry.ts';
import { currentPosition, windowBounds, windowCandidates } from '../../store/changes.ts';
import { content, differences, digestOf, getPath, leafPaths, setPath } from './attributes.ts';
import {
  flowTypes,
  forEachInFlight,
  inScope,
  isNotFound,
  finishBatchedCreates,
  itemFailed,
  itemKey,
  itemsInFlight,
  type BatchedCreate,
  LiveRemote,
  LoadedRemote,
  localGet,
  memberIds,
  pendingRetries,
  runItem,
  scopeFilters,
  syncClientId,
  type Job,
  type PlanAttribute,
  type RemoteSide,
} from './job.ts';
import { DEACTIVATED, ItemError, matchingAttributes, type Link } from './links.ts';
import { applyMapping } from './mapping.ts';
import type { BoundFilter } from '../../scim/filter/ast.ts';

const PAGE = 100;

interface PushScope {
  remote: RemoteSide;
  filters: Map<string, BoundFilter> | undefined;
  /** Whether an unchanged digest may skip the comparison (not when comparing everything). */
  useDigest: boolean;
  /** Local ids being pushed right now (a member cycle must not recurse forever). */
  active: Set<string>;
  /** Set while a page's creates are collected for one Bulk request (see pushPage). */
  creates?: PendingCreate[];
}

/** A create decided while a page was worked through, sent with the page's others in one Bulk request. */
interface PendingCreate {
  key: string;
  localId: string;
  body: JsonObject;
  digest: string;
  localVersion: number | undefined;
}

/** Runs a push flow's step for its mode (or a full comparison when job.full). */
export async function runPush(job: Job): Promise<void> {
  if (job.full || job.flow.mode === 'full' || job.state.position === undefined) {
    await pushFull(job);
    return;
  }
  await pushChanges(job);
}

/** Retries of earlier runs first: each one is the local resource's current state pushed again. */
async function pushRetries(job: Job, scope: PushScope): Promise<void> {
  for (const r of await pendingRetries(job)) {
    const rt = job.deps.registry.resourceType(r.resourceType);
    if (!rt) continue;
    await runItem(job, r.key, { resourceType: rt.name, localId: r.id }, async () => {
      const local = await localGet(job, rt, r.id);
      await pushResource(job, scope, rt, r.id, local);
    });
  }
}

async function pushFull(job: Job): Promise<void> {
  const start = await currentPosition(job.deps.db);
  const types = flowTypes(job);
  const remote = await LoadedRemote.load(job.client, types);
  const scope: PushScope = { remote, filters: scopeFilters(job), useDigest: false, active: new Set() };
  await pushRetries(job, scope);
  for (const rt of types) {
    const seen = new Set<string>();
    let cursor = '';
    let first = true;
    for (;;) {
      const page = await job.deps.service.list(job.ctx, [rt], {
        filter: job.flow.resourceTypes.length === 1 ? job.flow.filter : undefined,
        cursor,
        count: PAGE,
      });
      if (first) job.recorder.addTotal(page.totalResults);
      first = false;
      const todo: JsonObject[] = [];
      for (const rep of page.Resources ?? []) {
        const id = rep.id as string;
        if (!inScope(scope.filters, rt, rep)) continue;
        seen.add(id);
        if (!job.handled.has(itemKey(rt, id))) todo.push(rep);
      }
      await pushPage(
        job,
        scope,
        rt,
        todo,
        (rep) => rep.id as string,
        (rep) => rep,
      );
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    // Links whose local resource is gone or left the scope.
    const gone = (await job.links.all(rt.name)).filter(
      (link) => !seen.has(link.localId) && !job.handled.has(itemKey(rt, link.localId)),
    );
    await forEachInFlight(gone, itemsInFlight(job, rt), (link) =>
      runItem(
        job,
        itemKey(rt, link.localId),
        { resourceType: rt.name, localId: link.localId, remoteId: link.remoteId },
        () => pushGone(job, scope, rt, link),
      ),
    );
  }
  if (!job.dryRun) {
    job.state.position = start;
    job.state.window = undefined;
    job.state.lastFullAt = new Date().toISOString();
    await job.saveState();
  }
}

/** The sync client ids whose changes are not pushed: this flow's and every flow of the same connection. */
async function echoClients(job: Job): Promise<Set<string>> {
  const res = await job.deps.db.query<{ id: string }>(
    'SELECT id FROM sync_flows WHERE tenant_id = $1 AND connection_id = $2',
    [job.flow.tenant, job.flow.connectionId],
  );
  return new Set([syncClientId(job.flow.id), ...res.rows.map((r) => syncClientId(r.id))]);
}

async function pushChanges(job: Job): Promise<void> {
  const db = job.deps.db;
  const types = flowTypes(job);
  const names = types.map((t) => t.name);
  const scope: PushScope = {
    remote: new LiveRemote(job.client),
    filters: scopeFilters(job),
    useDigest: true,
    active: new Set(),
  };
  await pushRetries(job, scope);
  const position = job.state.position!;
  if (!job.state.window) {
    const to = await currentPosition(db);
    if (BigInt(to) <= BigInt(position)) return noteCatchUp(job, position, names);
    const bounds = await windowBounds(db, job.flow.tenant, position, to, names);
    if (!bounds) {
      job.state.position = to;
      await job.saveState();
      return noteCatchUp(job, to, names);
    }
    job.state.window = { to, after: bounds.lo - 1, hi: bounds.hi };
    await job.saveState();
  }
  const echo = await echoClients(job);
  const w = job.state.window;
  for (;;) {
    const batch = await windowCandidates(db, job.flow.tenant, position, w.to, names, w.after, w.hi, PAGE);
    if (batch.length === 0) break;
    job.recorder.addTotal(batch.length);
    // Types in the flow's order: a group's members are pushed before it.
    const ordered = [...batch].sort(
      (a, b) => names.indexOf(a.resource_type) - names.indexOf(b.resource_type) || a.seq - b.seq,
    );
    const todo: typeof ordered = [];
    for (const c of ordered) {
      const echoed = c.client_id !== null && echo.has(c.client_id);
      if (echoed || job.handled.has(`${c.resource_type}/${c.resource_id}`)) job.recorder.skipped();
      else todo.push(c);
    }
    // One type at a time, in the flow's order (members before groups).
    for (const rt of types) {
      const ofType = todo.filter((c) => c.resource_type === rt.name);
      await pushPage(
        job,
        scope,
        rt,
        ofType,
        (c) => c.resource_id,
        (c) => (c.operation === 'delete' ? undefined : localGet(job, rt, c.resource_id)),
      );
    }
    w.after = batch[batch.length - 1].seq;
    await job.saveState();
  }
  job.state.position = w.to;
  job.state.window = undefined;
  await job.saveState();
  await noteCatchUp(job, w.to, names);
}

/**
 * One page of one type: its items in flight together (itemsInFlight),
 * and — when the remote has Bulk and the type has no members — the creates the items decide sent
 * together in one Bulk request (split by the client to the server's limits) instead of one POST
 * each. `localOf` gives an item's local representation (undefined: gone).
 */
async function pushPage<T>(
  job: Job,
  scope: PushScope,
  rt: ResourceTypeConfig,
  items: T[],
  idOf: (item: T) => string,
  localOf: (item: T) => JsonObject | undefined | Promise<JsonObject | undefined>,
): Promise<void> {
  if (items.length === 0) return;
  const bulk =
    !job.dryRun &&
    items.length > 1 &&
    !rt.membersAttribute &&
    (await job.client.capabilities()).bulk.supported;
  const pageScope: PushScope = bulk ? { ...scope, creates: [] } : scope;
  await forEachInFlight(items, itemsInFlight(job, rt), (item) => {
    const id = idOf(item);
    return runItem(job, itemKey(rt, id), { resourceType: rt.name, localId: id }, async () =>
      pushResource(job, pageScope, rt, id, await localOf(item)),
    );
  });
  if (pageScope.creates && pageScope.creates.length > 0)
    await sendCreates(job, pageScope, rt, pageScope.creates);
}

/**
 * The page's creates in one Bulk request: each result is linked and recorded like a single create
 * (or recorded failed and kept for a retry); a request that fails as a whole fails each create.
 */
async function sendCreates(job: Job, scope: PushScope, rt: ResourceTypeConfig, creates: PendingCreate[]) {
  await job.recorder.checkpoint();
  const endpoint = (await job.client.resourceType(rt.name)).endpoint;
  const ops: BulkOperation[] = creates.map((c, i) => ({
    method: 'POST',
    path: endpoint,
    bulkId: `c${i}`,
    data: c.body,
  }));
  let results: BulkOperationResult[];
  try {
    results = await job.client.bulk(ops);
  } catch (e) {
    for (const c of creates) await itemFailed(job, c.key, { resourceType: rt.name, localId: c.localId }, e);
    return;
  }
  const outcomes = creates.map((c, i): BatchedCreate => {
    const r = results[i];
    const remoteId = r?.status === '201' ? idOfLocation(r.location) : undefined;
    const item = { resourceType: rt.name, localId: c.localId };
    if (!remoteId) return { key: c.key, failed: item, error: new Error(bulkError(r)) };
    scope.remote.remember(rt, { ...(c.body as ScimResource), id: remoteId, meta: { version: r.version } });
    const link = { ...item, remoteId, localVersion: c.localVersion, remoteVersion: r.version };
    return { key: c.key, link: { ...link, digest: c.digest } };
  });
  await finishBatchedCreates(job, outcomes);
}

function idOfLocation(location: string | undefined): string | undefined {
  const id = location ? decodeURIComponent(location.replace(/\/+$/, '').split('/').pop() ?? '') : '';
  return id === '' ? undefined : id;
}

/** A failed Bulk operation as errorText words a failed request. */
function bulkError(r: BulkOperationResult | undefined): string {
  if (!r) return 'remote Bulk answered no result for this operation';
  const body = r.response && typeof r.response === 'object' && !Array.isArray(r.response) ? r.response : {};
  const scimType = typeof body.scimType === 'string' ? ` ${body.scimType}` : '';
  const detail = typeof body.detail === 'string' ? `: ${body.detail}` : '';
  return `remote POST answered ${r.status}${scimType}${detail}`;
}

/**
 * Changes committed at or above the position a run ends at (a transaction open anywhere when the
 * window was taken held the position back) are the next window's: job.catchUp has the runner
 * come back for them once the position has moved on.
 */
async function noteCatchUp(job: Job, position: string, names: string[]): Promise<void> {
  const pending = await job.deps.db.query<{ pending: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM changes WHERE tenant_id = $1 AND txid >= $2::xid8
       AND resource_type = ANY($3::text[])) AS pending`,
    [job.flow.tenant, position, names],
  );
  if (pending.rows[0].pending) job.catchUp = position;
}

/** Pushes one local resource (undefined = gone): create, update, onDelete, or nothing. */
export async function pushResource(
  job: Job,
  scope: PushScope,
  rt: ResourceTypeConfig,
  localId: string,
  local: JsonObject | undefined,
): Promise<void> {
  if (!local || !inScope(scope.filters, rt, local)) {
    const link = await job.links.byLocal(localId);
    if (link) await pushGone(job, scope, rt, link);
    else job.recorder.skipped();
    return;
  }
  if (scope.active.has(localId)) return;
  scope.active.add(localId);
  try {
    await pushPresent(job, scope, rt, localId, local);
  } finally {
    scope.active.delete(localId);
  }
}

async function pushPresent(
  job: Job,
  scope: PushScope,
  rt: ResourceTypeConfig,
  localId: string,
  local: JsonObject,
): Promise<void> {
  const { authority, links } = job;
  const mapped = await translateMembersForPush(job, scope, rt, applyMapping(local, job.flow.mapping));
  const owned = authority.pick(mapped, 'update');
  const digest = digestOf(owned);
  const localVersion = versionNumber(local);
  let link = await links.byLocal(localId);
  if (link && scope.useDigest && link.digest === digest) {
    job.recorder.skipped();
    return;
  }
  let target = link ? await scope.remote.get(rt, link.remoteId) : undefined;
  if (link && !target) {
    // The remote record is gone (404): match again rather than trust the stale link.
    if (!job.dryRun) await links.dropLocal(localId);
    link = undefined;
  }
  let linked = !!link;
  if (!target) {
    target = await matchRemote(job, scope.remote, rt, localId, mapped);
    linked = false;
  }
  const resources = job.client.resources(rt.name);
  if (!target) {
    const body = authority.pick(mapped, 'create');
    if (job.dryRun) {
      await job.recorder.record({
        resourceType: rt.name,
        localId,
        action: 'create',
        outcome: 'planned',
        attributes: leafPaths(body).map((path) => ({
          path,
          local: getPath(body, path),
          owner: authority.owner(path),
        })),
      });
      return;
    }
    if (scope.creates) {
      scope.creates.push({ key: itemKey(rt, localId), localId, body, digest, localVersion });
      return;
    }
    const created = await resources.create(body as ScimResource);
    scope.remote.remember(rt, created);
    await links.save({
      resourceType: rt.name,
      localId,
      remoteId: created.id!,
      localVersion,
      remoteVersion: created.meta?.version,
      digest,
    });
    await job.recorder.record({
      resourceType: rt.name,
      localId,
      remoteId: created.id,
      action: 'create',
      outcome: 'done',
    });
    return;
  }
  const current = target as unknown as JsonObject;
  const wanted = authority.mergeOwned(content(current), mapped, 'update');
  const diffs = differences(current, wanted, (p) => authority.writes(p, 'update'), rt.membersAttribute);
  const attrs: PlanAttribute[] = diffs.map((d) => ({
    path: d.path,
    local: d.wanted,
    remote: d.current,
    owner: authority.owner(d.path),
  }));
  if (diffs.length === 0) {
    if (!job.dryRun && (!linked || link?.digest !== digest)) {
      await links.save({
        resourceType: rt.name,
        localId,
        remoteId: target.id!,
        localVersion,
        remoteVersion: target.meta?.version,
        digest,
      });
      if (!linked) {
        await job.recorder.record({
          resourceType: rt.name,
          localId,
          remoteId: target.id,
          action: 'link',
          outcome: 'done',
        });
        return;
      }
    }
    if (!linked && job.dryRun) {
      await job.recorder.record({
        resourceType: rt.name,
        localId,
        remoteId: target.id,
        action: 'link',
        outcome: 'planned',
      });
      return;
    }
    job.recorder.skipped();
    return;
  }
  if (job.dryRun) {
    await job.recorder.record({
      resourceType: rt.name,
      localId,
      remoteId: target.id,
      action: 'update',
      outcome: 'planned',
      attributes: attrs,
    });
    return;
  }
  let after: ScimResource | undefined;
  let version: string | undefined;
  if (job.flow.usePut) {
    after = await resources.replace(
      target.id!,
      { ...(wanted as ScimResource), id: target.id },
      {
        ifMatch: target.meta?.version ?? false,
      },
    );
    version = after.meta?.version;
  } else {
    const r = await resources.update(target, wanted as ScimResource);
    after = r.resource;
    version = r.version;
  }
  scope.remote.remember(rt, after ?? ({ ...(wanted as ScimResource), id: target.id } as ScimResource));
  await links.save({
    resourceType: rt.name,
    localId,
    remoteId: target.id!,
    localVersion,
    remoteVersion: version,
    digest,
  });
  await job.recorder.record({
    resourceType: rt.name,
    localId,
    remoteId: target.id,
    action: 'update',
    outcome: 'done',
    attributes: attrs,
  });
}

/** A local resource gone or out of scope: its linked remote record per onDelete. */
async function pushGone(job: Job, scope: PushScope, rt: ResourceTypeConfig, link: Link): Promise<void> {
  const action = job.flow.onDelete;
  if (action === 'ignore' || (action === 'deactivate' && link.digest === DEACTIVATED)) {
    if (action === 'ignore' && !job.dryRun) await job.links.dropLocal(link.localId);
    job.recorder.skipped();
    return;
  }
  const item = { resourceType: rt.name, localId: link.localId, remoteId: link.remoteId };
  const remote = await scope.remote.get(rt, link.remoteId);
  if (!remote) {
    if (!job.dryRun) await job.links.dropLocal(link.localId);
    job.recorder.skipped();
    return;
  }
  if (job.dryRun) {
    await job.recorder.record({ ...item, action, outcome: 'planned' });
    return;
  }
  const resources = job.client.resources(rt.name);
  if (action === 'delete') {
    try {
      await resources.delete(link.remoteId);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    scope.remote.forget(rt, link.remoteId);
    await job.links.dropLocal(link.localId);
  } else {
    await resources.patch(link.remoteId, [{ op: 'replace', path: 'active', value: false }], {
      ifMatch: false,
    });
    scope.remote.remember(rt, { ...remote, active: false });
    await job.links.save({ ...link, digest: DEACTIVATED });
  }
  await job.recorder.record({ ...item, action, outcome: 'done' });
}

/** The remote record matching a local resource by the flow's matching attributes (never one linked elsewhere). */
async function matchRemote(
  job: Job,
  remote: RemoteSide,
  rt: ResourceTypeConfig,
  localId: string,
  mapped: JsonObject,
): Promise<ScimResource | undefined> {
  for (const attr of matchingAttributes(job.flow.matching, rt.name)) {
    const v = getPath(mapped, attr);
    if (typeof v !== 'string' || v === '') continue;
    const found: ScimResource[] = [];
    for (const r of await remote.find(rt, attr, v)) {
      const other = await job.links.byRemote(r.id!);
      if (!other || other.localId === localId) found.push(r);
    }
    if (found.length > 1) {
      throw new ItemError(`${found.length} remote ${rt.name} resources have ${attr} "${v}": not matched`);
    }
    if (found.length === 1) return found[0];
  }
  return undefined;
}

/**
 * Group members as the remote knows them: each local member id replaced by its linked remote id.
 * A member of a type the flow pushes and not linked yet is pushed first; members outside the
 * flow (other types, out of scope) are left out. A member that cannot be linked fails the group
 * (retried next run).
 */
async function translateMembersForPush(
  job: Job,
  scope: PushScope,
  rt: ResourceTypeConfig,
  mapped: JsonObject,
): Promise<JsonObject> {
  const attr = rt.membersAttribute;
  if (!attr) return mapped;
  const ids = memberIds(mapped, attr);
  if (ids.length === 0) return mapped;
  const out: { value: string }[] = [];
  const missing: string[] = [];
  const types = flowTypes(job);
  for (const id of ids) {
    let link = await job.links.byLocal(id);
    if (!link) {
      let member: { rt: ResourceTypeConfig; rep: JsonObject } | undefined;
      for (const t of types) {
        const rep = await localGet(job, t, id);
        if (rep) {
          member = { rt: t, rep };
          break;
        }
      }
      if (!member || !inScope(scope.filters, member.rt, member.rep)) continue;
      if (!job.dryRun && !scope.active.has(id)) {
        await pushResource(job, scope, member.rt, id, member.rep);
        link = await job.links.byLocal(id);
      }
      if (!link) {
        if (!job.dryRun) missing.push(id);
        continue;
      }
    }
    out.push({ value: link.remoteId });
  }
  if (missing.length > 0) throw new ItemError(`members not linked yet: ${missing.join(', ')}`);
  const copy = structuredClone(mapped);
  setPath(copy, attr, out);
  return copy;
}

function versionNumber(rep: JsonObject): number | undefined {
  const meta = rep.meta as { version?: string } | undefined;
  const m = meta?.version?.match(/(\d+)/);
  return m ? Number(m[1]) : undefined;
}
