/**
 * Pull: the connection's resources → this node, written through ResourceService with client id
 * `sync:<flowId>` (so a push flow of the same connection does not echo them back).
 *
 * - mode `full`: every remote resource in scope (flow.filter, evaluated by the remote), paged; each
 *   is created or merged locally; afterwards links whose remote record was not listed (deleted, or
 *   out of scope) are handled per onDelete. A listing that fails stops the run before any delete.
 * - mode `delta`: the remote's delta query (`{endpoint}/.deltaToken`, `POST {endpoint}/.delta`)
 *   when it answers one — found by trying once, remembered in the flow's state — else a
 *   `meta.lastModified ge "<watermark - 1 s>"` filter (the overlap re-reads resources written in
 *   the same second; unchanged ones cost no write). A full pull runs first, again every
 *   fullEverySeconds (catches deletes a watermark cannot see), and when the remote refuses a token
 *   (expired).
 * - mode `events`: the upstream's SETs are applied by the events work (src/events/inbound); a run of
 *   such a flow is a full pull, which repairs whatever the events missed (matching links the
 *   replicated resources, so nothing is duplicated).
 *
 * One resource: mapped (remote names → local names), found locally (link, else matching
 * attributes), then created with the attributes the remote owns plus `initial` ones, or patched on
 * the attributes the remote owns only: local-owned attributes are never touched. New local
 * resources get new local ids; externalId comes from the remote's externalId unless the mapping
 * says otherwise (e.g. `{from: 'id', to: 'externalId'}`).
 */
import { diffResources, ScimClientError, type ScimResource } from '../../client/index.ts';
import { isJsonObject, type JsonObject, type JsonValue } from '../../scim/json.ts';
import type { ResourceTypeConfig } from '../../scim/schema/registry.ts';
import { ScimError } from '../../scim/errors.ts';
import type { BatchCreateResult } from '../../service/resources.ts';
import { content, differences, digestOf, getPath, leafPaths, setPath } from './attributes.ts';
import {
  flowTypes,
  forEachInFlight,
  isNotFound,
  finishBatchedCreates,
  itemFailed,
  itemsInFlight,
  type BatchedCreate,
  itemKey,
  localGet,
  localMutability,
  memberIds,
  pendingRetries,
  runItem,
  type Job,
  type PlanAttribute,
} from './job.ts';
import { DEACTIVATED, ItemError, matchingAttributes, type Link } from './links.ts';
import { applyMapping } from './mapping.ts';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const DELTA_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:delta:request';
const PAGE = 100;

interface PullScope {
  /** Remote ids being pulled right now (member cycles). */
  active: Set<string>;
  /** Highest meta.lastModified seen per type (watermarks). */
  lastModified: Map<string, string>;
  /** Set while a page's local creates are collected to be stored in one batch (see pullPage). */
  creates?: PendingLocalCreate[];
}

/** A local create decided while a page was worked through, stored with the page's others at once. */
interface PendingLocalCreate {
  key: string;
  remoteId: string;
  body: JsonObject;
  digest: string;
  remoteVersion: string | undefined;
}

export async function runPull(job: Job): Promise<void> {
  const scope: PullScope = { active: new Set(), lastModified: new Map() };
  await pullRetries(job, scope);
  if (job.full || job.flow.mode !== 'delta') {
    await pullFull(job, scope);
    return;
  }
  await pullDelta(job, scope);
}

async function pullRetries(job: Job, scope: PullScope): Promise<void> {
  for (const r of await pendingRetries(job)) {
    const rt = job.deps.registry.resourceType(r.resourceType);
    if (!rt) continue;
    await runItem(job, r.key, { resourceType: rt.name, remoteId: r.id }, async () => {
      let remote: ScimResource | undefined;
      try {
        remote = await job.client.resources(rt.name).get(r.id);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      if (remote) await pullResource(job, scope, rt, remote);
      else {
        const link = await job.links.byRemote(r.id);
        if (link) await pullGone(job, rt, link);
      }
    });
  }
}

function observe(scope: PullScope, rt: ResourceTypeConfig, r: ScimResource): void {
  const lm = r.meta?.lastModified;
  if (typeof lm !== 'string' || Number.isNaN(Date.parse(lm))) return;
  const cur = scope.lastModified.get(rt.name);
  if (!cur || Date.parse(lm) > Date.parse(cur)) scope.lastModified.set(rt.name, lm);
}

async function pullFull(job: Job, scope: PullScope): Promise<void> {
  for (const rt of flowTypes(job)) {
    const seen = new Set<string>();
    let first = true;
    // A listing error goes up: the run fails before deletes are decided from a partial list.
    for await (const page of job.client
      .resources(rt.name)
      .pages({ filter: job.flow.filter, pageSize: PAGE })) {
      if (first) job.recorder.addTotal(page.totalResults ?? page.Resources.length);
      first = false;
      for (const r of page.Resources) if (r.id) seen.add(r.id);
      await pullPage(job, scope, rt, page.Resources);
    }
    const gone = (await job.links.all(rt.name)).filter(
      (link) => !seen.has(link.remoteId) && !job.handled.has(itemKey(rt, link.remoteId)),
    );
    await forEachInFlight(gone, itemsInFlight(job, rt), (link) =>
      runItem(
        job,
        itemKey(rt, link.remoteId),
        { resourceType: rt.name, localId: link.localId, remoteId: link.remoteId },
        () => pullGone(job, rt, link),
      ),
    );
  }
  if (!job.dryRun) {
    job.state.lastFullAt = new Date().toISOString();
    if (scope.lastModified.size > 0) {
      job.state.watermarks = { ...job.state.watermarks, ...Object.fromEntries(scope.lastModified) };
    }
    await job.saveState();
  }
}

/**
 * One listed page: its resources pulled with several in flight (one at a time for types with
 * members), its new local resources stored together.
 */
async function pullPage(
  job: Job,
  scope: PullScope,
  rt: ResourceTypeConfig,
  resources: ScimResource[],
): Promise<void> {
  const todo: ScimResource[] = [];
  for (const r of resources) {
    if (!r.id) continue;
    observe(scope, rt, r);
    if (!job.handled.has(itemKey(rt, r.id))) todo.push(r);
  }
  // Creates are stored together (ResourceService.createBatch: one multi-row statement) except for
  // types with members and events flows (those write under the remote ids, one replica at a time).
  const batch = !job.dryRun && todo.length > 1 && !rt.membersAttribute && job.flow.mode !== 'events';
  const pageScope: PullScope = {
    ...scope,
    creates: batch ? [] : undefined,
  };
  await forEachInFlight(todo, itemsInFlight(job, rt), (r) =>
    runItem(job, itemKey(rt, r.id!), { resourceType: rt.name, remoteId: r.id }, () =>
      pullResource(job, pageScope, rt, r),
    ),
  );
  if (pageScope.creates && pageScope.creates.length > 0) await storeCreates(job, rt, pageScope.creates);
}

/**
 * A page's local creates in one batch: each stored one is linked and recorded like a single
 * create, each refused one recorded failed (kept for a retry); a batch that fails as a whole
 * fails each of its creates.
 */
async function storeCreates(job: Job, rt: ResourceTypeConfig, creates: PendingLocalCreate[]): Promise<void> {
  await job.recorder.checkpoint();
  const what = (c: PendingLocalCreate) => ({ resourceType: rt.name, remoteId: c.remoteId });
  let results: BatchCreateResult[];
  try {
    results = await job.deps.service.createBatch(
      job.ctx,
      rt,
      creates.map((c) => c.body),
      { dryRun: false },
    );
  } catch (e) {
    for (const c of creates) await itemFailed(job, c.key, what(c), e);
    return;
  }
  await finishBatchedCreates(
    job,
    creates.map((c, i): BatchedCreate => {
      const r = results[i];
      if (!r.ok) return { key: c.key, failed: what(c), error: r.error };
      const link = { resourceType: rt.name, localId: r.id, remoteId: c.remoteId, localVersion: 1 };
      return { key: c.key, link: { ...link, remoteVersion: c.remoteVersion, digest: c.digest } };
    }),
  );
}

// ---- delta --------------------------------------------------------------------------------------

async function endpointOf(job: Job, rt: ResourceTypeConfig): Promise<string> {
  return (await job.client.resourceType(rt.name)).endpoint;
}

async function deltaToken(job: Job, rt: ResourceTypeConfig): Promise<string> {
  const res = await job.client.request('GET', `${await endpointOf(job, rt)}/.deltaToken`, {
    idempotent: true,
  });
  const value = isJsonObject(res.body) ? res.body.value : undefined;
  if (typeof value !== 'string' || value === '')
    throw new Error('the remote answered .deltaToken without a value');
  return value;
}

/** Tokens of every type first, then a full pull: changes made during the pull come with the next delta. */
async function fullWithTokens(job: Job, scope: PullScope): Promise<void> {
  const tokens: Record<string, string> = {};
  for (const rt of flowTypes(job)) tokens[rt.name] = await deltaToken(job, rt);
  await pullFull(job, scope);
  if (!job.dryRun) {
    job.state.deltaTokens = tokens;
    await job.saveState();
  }
}

function fullDue(job: Job): boolean {
  if (!job.state.lastFullAt) return true;
  const every = job.flow.fullEverySeconds;
  return every !== undefined && every > 0 && Date.now() - Date.parse(job.state.lastFullAt) >= every * 1000;
}

async function pullDelta(job: Job, scope: PullScope): Promise<void> {
  const types = flowTypes(job);
  if (job.state.deltaMethod === undefined) {
    let method: 'token' | 'watermark' = 'token';
    try {
      await deltaToken(job, types[0]);
    } catch (e) {
      if (!(e instanceof ScimClientError) && !(e instanceof Error && e.message.includes('.deltaToken')))
        throw e;
      method = 'watermark';
    }
    job.state.deltaMethod = method;
    if (!job.dryRun) await job.saveState();
  }
  if (job.state.deltaMethod === 'token') {
    const tokens = job.state.deltaTokens ?? {};
    if (fullDue(job) || types.some((t) => !tokens[t.name])) {
      await fullWithTokens(job, scope);
      return;
    }
    for (const rt of types) {
      try {
        await deltaOfType(job, scope, rt, tokens[rt.name]);
      } catch (e) {
        // An expired or refused token: the remote asks for a full pull and a new token.
        if (e instanceof ScimClientError && e.status === 400) {
          await fullWithTokens(job, scope);
          return;
        }
        throw e;
      }
    }
    return;
  }
  if (fullDue(job)) {
    await pullFull(job, scope);
    return;
  }
  for (const rt of types) {
    const mark = job.state.watermarks?.[rt.name];
    if (!mark) {
      await pullFull(job, scope);
      return;
    }
    const since = new Date(Date.parse(mark) - 1000).toISOString();
    const filter = `meta.lastModified ge ${JSON.stringify(since)}${job.flow.filter ? ` and (${job.flow.filter})` : ''}`;
    for await (const page of job.client.resources(rt.name).pages({ filter, pageSize: PAGE })) {
      job.recorder.addTotal(page.Resources.length);
      await pullPage(job, scope, rt, page.Resources);
    }
    const seen = scope.lastModified.get(rt.name);
    if (!job.dryRun && seen && Date.parse(seen) > Date.parse(mark)) {
      job.state.watermarks = { ...job.state.watermarks, [rt.name]: seen };
      await job.saveState();
    }
  }
}

/** One type's delta from `token`, page by page (cursor), then its next token. */
async function deltaOfType(job: Job, scope: PullScope, rt: ResourceTypeConfig, token: string): Promise<void> {
  const path = `${await endpointOf(job, rt)}/.delta`;
  let cursor = '';
  let next: string | undefined;
  for (;;) {
    const body: JsonObject = { schemas: [DELTA_REQUEST], deltaToken: token, count: PAGE, cursor };
    if (job.flow.filter) body.filter = job.flow.filter;
    const res = await job.client.request('POST', path, { body, idempotent: true });
    const page = isJsonObject(res.body) ? res.body : {};
    const items = Array.isArray(page.Resources) ? page.Resources.filter(isJsonObject) : [];
    job.recorder.addTotal(items.length);
    const todo = items.filter((item) => {
      const id = typeof item.changedResourceId === 'string' ? item.changedResourceId : undefined;
      return id !== undefined && !job.handled.has(itemKey(rt, id));
    });
    await forEachInFlight(todo, itemsInFlight(job, rt), (item) => {
      const id = item.changedResourceId as string;
      const type = typeof item.changeType === 'string' ? item.changeType.toLowerCase() : '';
      return runItem(job, itemKey(rt, id), { resourceType: rt.name, remoteId: id }, async () => {
        if (type === 'delete') {
          const link = await job.links.byRemote(id);
          if (link) await pullGone(job, rt, link);
          else job.recorder.skipped();
          return;
        }
        const data = isJsonObject(item.data) ? (item.data as unknown as ScimResource) : undefined;
        const remote = data?.id ? data : await job.client.resources(rt.name).get(id);
        await pullResource(job, scope, rt, remote);
      });
    });
    const nt = page.nextDeltaToken;
    if (isJsonObject(nt) && typeof nt.value === 'string') next = nt.value;
    else if (typeof nt === 'string') next = nt;
    if (typeof page.nextCursor !== 'string' || page.nextCursor === '') break;
    cursor = page.nextCursor;
  }
  if (!job.dryRun && next) {
    job.state.deltaTokens = { ...job.state.deltaTokens, [rt.name]: next };
    await job.saveState();
  }
}

// ---- one resource -------------------------------------------------------------------------------

export async function pullResource(
  job: Job,
  scope: PullScope,
  rt: ResourceTypeConfig,
  remote: ScimResource,
): Promise<void> {
  const remoteId = remote.id!;
  if (scope.active.has(remoteId)) return;
  scope.active.add(remoteId);
  try {
    await pullPresent(job, scope, rt, remote);
  } finally {
    scope.active.delete(remoteId);
  }
}

async function pullPresent(
  job: Job,
  scope: PullScope,
  rt: ResourceTypeConfig,
  remote: ScimResource,
): Promise<void> {
  const { authority, links, deps, ctx } = job;
  const remoteId = remote.id!;
  if (job.flow.mode === 'events' && (await replicaIsAhead(job, rt, remote))) return;
  const mapped = await translateMembersForPull(
    job,
    scope,
    rt,
    applyMapping(remote as unknown as JsonObject, job.flow.mapping),
  );
  const digest = digestOf(authority.pick(mapped, 'update'));
  let link = await links.byRemote(remoteId);
  let local = link ? await localGet(job, rt, link.localId) : undefined;
  if (link && !local) {
    if (!job.dryRun) await links.dropLocal(link.localId);
    link = undefined;
  }
  const linked = !!link;
  // An events flow keeps the upstream's ids (domain replication): a copy the replica applier
  // already wrote under the remote id is this resource's counterpart.
  if (!local && job.flow.mode === 'events') local = await localGet(job, rt, remoteId);
  if (!local) local = await matchLocal(job, rt, remoteId, mapped);
  if (!local) {
    const body = authority.pick(mapped, 'create');
    if (job.dryRun) {
      await job.recorder.record({
        resourceType: rt.name,
        remoteId,
        action: 'create',
        outcome: 'planned',
        attributes: leafPaths(body).map((path) => ({
          path,
          remote: getPath(body, path),
          owner: authority.owner(path),
        })),
      });
      return;
    }
    if (scope.creates) {
      scope.creates.push({
        key: itemKey(rt, remoteId),
        remoteId,
        body,
        digest,
        remoteVersion: remote.meta?.version,
      });
      return;
    }
    const created = await createLocal(job, rt, remoteId, body, remote.meta?.version);
    const localId = created.id as string;
    await links.save({
      resourceType: rt.name,
      localId,
      remoteId,
      localVersion: versionNumber(created),
      remoteVersion: remote.meta?.version,
      digest,
    });
    await job.recorder.record({
      resourceType: rt.name,
      localId,
      remoteId,
      action: 'create',
      outcome: 'done',
    });
    return;
  }
  const localId = local.id as string;
  const current = content(local);
  const wanted = authority.mergeOwned(current, mapped, 'update');
  const diffs = differences(local, wanted, (p) => authority.writes(p, 'update'), rt.membersAttribute);
  const attrs: PlanAttribute[] = diffs.map((d) => ({
    path: d.path,
    local: d.current,
    remote: d.wanted,
    owner: authority.owner(d.path),
  }));
  if (diffs.length === 0) {
    if (!linked) {
      if (!job.dryRun) {
        await links.save({
          resourceType: rt.name,
          localId,
          remoteId,
          localVersion: versionNumber(local),
          remoteVersion: remote.meta?.version,
          digest,
        });
      }
      await job.recorder.record({
        resourceType: rt.name,
        localId,
        remoteId,
        action: 'link',
        outcome: job.dryRun ? 'planned' : 'done',
      });
      return;
    }
    if (!job.dryRun && link?.digest !== digest) {
      await links.save({ ...link!, remoteVersion: remote.meta?.version, digest });
    }
    job.recorder.skipped();
    return;
  }
  if (job.dryRun) {
    await job.recorder.record({
      resourceType: rt.name,
      localId,
      remoteId,
      action: 'update',
      outcome: 'planned',
      attributes: attrs,
    });
    return;
  }
  const ops = diffResources(current, wanted, { mutability: localMutability(deps.registry, rt) });
  let version = versionNumber(local);
  if (ops.length > 0) {
    const res = await deps.service.patch(
      ctx,
      rt,
      localId,
      { schemas: [PATCH_OP], Operations: ops as unknown as JsonValue[] },
      undefined,
    );
    version = Number(res.etag.match(/(\d+)/)?.[1] ?? version);
    await noteReplicaVersion(job, rt, remote);
  }
  await links.save({
    resourceType: rt.name,
    localId,
    remoteId,
    localVersion: version,
    remoteVersion: remote.meta?.version,
    digest,
  });
  await job.recorder.record({
    resourceType: rt.name,
    localId,
    remoteId,
    action: 'update',
    outcome: 'done',
    attributes: attrs,
  });
}

/**
 * For an events flow: whether the replica applier has already applied this resource's delete or a
 * version at least as new as the one listed (SETs arrive while the pull pages through the
 * upstream, so a listed representation can be older than the local copy). Then the pull writes
 * nothing: a deleted resource is not brought back, a newer copy is not overwritten with older
 * values; an existing copy is only linked (ids are the upstream's) so later pulls see it.
 */
async function replicaIsAhead(job: Job, rt: ResourceTypeConfig, remote: ScimResource): Promise<boolean> {
  // The flow's upstream (flows of mode events name one); any upstream of the tenant otherwise.
  const res = await job.deps.db.query<{ version: string | null; deleted: boolean }>(
    `SELECT version, deleted FROM replica_versions
      WHERE tenant_id = $1 AND resource_id = $2 AND ($3::text IS NULL OR upstream_id = $3)`,
    [job.flow.tenant, remote.id, job.flow.upstreamId ?? null],
  );
  const listed = versionOf(remote.meta?.version);
  const ahead = res.rows.some((r) => {
    if (r.deleted) return true;
    const applied = versionOf(r.version ?? undefined);
    return applied !== undefined && listed !== undefined && applied >= listed;
  });
  if (!ahead) return false;
  if (res.rows.some((r) => r.deleted)) {
    job.recorder.skipped();
    return true;
  }
  const local = await localGet(job, rt, remote.id!);
  if (local && !job.dryRun && !(await job.links.byRemote(remote.id!))) {
    await job.links.save({
      resourceType: rt.name,
      localId: remote.id!,
      remoteId: remote.id!,
      localVersion: versionNumber(local),
      remoteVersion: remote.meta?.version,
    });
  }
  job.recorder.skipped();
  return true;
}

/**
 * For an events flow fed by an upstream: the version the pull wrote becomes the upstream's applied
 * version (replica_versions), so a SET of an older version arriving later is skipped by the
 * applier instead of writing older values over the pulled ones.
 */
async function noteReplicaVersion(job: Job, rt: ResourceTypeConfig, remote: ScimResource): Promise<void> {
  if (job.flow.mode !== 'events' || !job.flow.upstreamId || versionOf(remote.meta?.version) === undefined)
    return;
  await job.deps.db.query(
    `INSERT INTO replica_versions (tenant_id, upstream_id, resource_id, resource_type, version)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (tenant_id, upstream_id, resource_id) DO UPDATE
       SET version = EXCLUDED.version, updated = clock_timestamp()
       WHERE NOT replica_versions.deleted`,
    [job.flow.tenant, job.flow.upstreamId, remote.id, rt.name, remote.meta!.version],
  );
}

/** The number of a `W/"n"` version (scimd's and most servers' form); other versions are not ordered. */
function versionOf(v: string | undefined): number | undefined {
  const m = v?.match(/^(?:W\/)?"(\d+)"$/);
  return m ? Number(m[1]) : undefined;
}

/**
 * Creates the local copy of a remote resource. An `events` flow writes it under the remote's id,
 * as the replica applier (src/events/inbound/applier.ts) does for the same upstream: the flow's
 * full pull and the SETs arriving meanwhile then write one resource, not two (a copy under a new
 * id made the SET's own create fail on the taken userName), and references between replicated
 * resources stay valid. Other modes give new local ids.
 */
async function createLocal(
  job: Job,
  rt: ResourceTypeConfig,
  remoteId: string,
  body: JsonObject,
  remoteVersion: string | undefined,
): Promise<JsonObject> {
  if (job.flow.mode !== 'events') return (await job.deps.service.create(job.ctx, rt, body)).resource;
  await job.deps.service.applyReplica(job.ctx, rt, remoteId, { kind: 'upsert', resource: body });
  await noteReplicaVersion(job, rt, { id: remoteId, meta: { version: remoteVersion } } as ScimResource);
  const created = await localGet(job, rt, remoteId);
  if (!created) throw new ItemError(`${rt.name} ${remoteId} was deleted while it was being pulled`);
  return created;
}

/** A linked remote record gone or out of scope: the local resource per onDelete. */
async function pullGone(job: Job, rt: ResourceTypeConfig, link: Link): Promise<void> {
  const action = job.flow.onDelete;
  if (action === 'ignore' || (action === 'deactivate' && link.digest === DEACTIVATED)) {
    if (action === 'ignore' && !job.dryRun) await job.links.dropLocal(link.localId);
    job.recorder.skipped();
    return;
  }
  const item = { resourceType: rt.name, localId: link.localId, remoteId: link.remoteId };
  const local = await localGet(job, rt, link.localId);
  if (!local) {
    if (!job.dryRun) await job.links.dropLocal(link.localId);
    job.recorder.skipped();
    return;
  }
  if (job.dryRun) {
    await job.recorder.record({ ...item, action, outcome: 'planned' });
    return;
  }
  if (action === 'delete') {
    try {
      await job.deps.service.delete(job.ctx, rt, link.localId, undefined);
    } catch (e) {
      if (!(e instanceof ScimError && e.status === 404)) throw e;
    }
    await job.links.dropLocal(link.localId);
  } else {
    await job.deps.service.patch(
      job.ctx,
      rt,
      link.localId,
      { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] },
      undefined,
    );
    await job.links.save({ ...link, digest: DEACTIVATED });
  }
  await job.recorder.record({ ...item, action, outcome: 'done' });
}

/** The local resource matching a remote one by the flow's matching attributes (never one linked elsewhere). */
async function matchLocal(
  job: Job,
  rt: ResourceTypeConfig,
  remoteId: string,
  mapped: JsonObject,
): Promise<JsonObject | undefined> {
  for (const attr of matchingAttributes(job.flow.matching, rt.name)) {
    const v = getPath(mapped, attr);
    if (typeof v !== 'string' || v === '') continue;
    const res = await job.deps.service.list(job.ctx, [rt], {
      filter: `${attr} eq ${JSON.stringify(v)}`,
      count: 10,
    });
    const candidates = res.Resources ?? [];
    const found: JsonObject[] = [];
    for (const r of candidates) {
      const other = await job.links.byLocal(r.id as string);
      if (!other || other.remoteId === remoteId) found.push(r);
    }
    if (found.length > 1)
      throw new ItemError(`${found.length} local ${rt.name} resources have ${attr} "${v}": not matched`);
    if (found.length === 1) return found[0];
  }
  return undefined;
}

/**
 * Group members as this node knows them: each remote member id replaced by its linked local id. A
 * remote member of a type the flow pulls and not linked yet is pulled first; members the flow does
 * not pull are left out. A member that cannot be linked fails the group (retried next run).
 */
async function translateMembersForPull(
  job: Job,
  scope: PullScope,
  rt: ResourceTypeConfig,
  mapped: JsonObject,
): Promise<JsonObject> {
  const attr = rt.membersAttribute;
  if (!attr) return mapped;
  const ids = memberIds(mapped, attr);
  if (ids.length === 0) return mapped;
  const out: { value: string }[] = [];
  const missing: string[] = [];
  for (const id of ids) {
    let link = await job.links.byRemote(id);
    if (!link && !job.dryRun && !scope.active.has(id)) {
      for (const t of flowTypes(job)) {
        let r: ScimResource | undefined;
        try {
          r = await job.client.resources(t.name).get(id);
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
        if (r) {
          await pullResource(job, scope, t, r);
          link = await job.links.byRemote(id);
          if (!link) missing.push(id);
          break;
        }
      }
    }
    if (link) out.push({ value: link.localId });
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
