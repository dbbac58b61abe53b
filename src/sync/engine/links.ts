/**
 * Identity links (sync_links): per flow, which remote id a local resource is linked to, with what
 * was last written (versions and the digest of the mapped content).
 *
 * Matching a resource of one side to the other goes: the stored link (its target checked to still
 * exist: a link whose target is gone is dropped), then the flow's matching attributes in order
 * (FlowMatching, default `externalId` then the type's key: userName for User, displayName for
 * Group; Devices and other types match by what is configured), each compared on the mapped
 * document. A candidate already linked to another resource of this flow is not taken; several
 * candidates for one value are an error (ambiguous), never a guess.
 */
import type { Database } from '../../store/db.ts';
import type { FlowMatching } from '../types.ts';

export interface Link {
  resourceType: string;
  localId: string;
  remoteId: string;
  localVersion?: number;
  remoteVersion?: string;
  digest?: string;
}

/** Digest value of a link whose target was deactivated because its source left (onDelete deactivate). */
export const DEACTIVATED = 'deactivated';

interface LinkRow {
  resource_type: string;
  local_id: string;
  remote_id: string;
  local_version: string | number | null;
  remote_version: string | null;
  digest: string | null;
}

function toLink(r: LinkRow): Link {
  const l: Link = { resourceType: r.resource_type, localId: r.local_id, remoteId: r.remote_id };
  if (r.local_version !== null) l.localVersion = Number(r.local_version);
  if (r.remote_version !== null) l.remoteVersion = r.remote_version;
  if (r.digest !== null) l.digest = r.digest;
  return l;
}

const COLUMNS = 'resource_type, local_id, remote_id, local_version, remote_version, digest';
const UPSERT = `resource_type = EXCLUDED.resource_type, remote_id = EXCLUDED.remote_id,
  local_version = EXCLUDED.local_version, remote_version = EXCLUDED.remote_version,
  digest = EXCLUDED.digest, updated = EXCLUDED.updated`;

/**
 * The flow's links, with a per-run cache: only the run holding the flow's lease writes its links,
 * so what this store read or wrote stays true for the run (a resource looked up again, e.g. as a
 * group member, costs no query). Bounded: cleared when it holds 50,000 entries.
 */
export class LinkStore {
  /** localId → link, or null when known to have none. */
  private readonly byLocalId = new Map<string, Link | null>();
  /** remoteId → link, or null when known to have none. */
  private readonly byRemoteId = new Map<string, Link | null>();

  constructor(
    private readonly db: Database,
    readonly tenant: string,
    readonly flowId: string,
  ) {}

  async byLocal(localId: string): Promise<Link | undefined> {
    this.bound();
    const known = this.byLocalId.get(localId);
    if (known !== undefined) return known ?? undefined;
    const res = await this.db.query<LinkRow>(
      `SELECT ${COLUMNS} FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND local_id = $3`,
      [this.tenant, this.flowId, localId],
    );
    const link = res.rows[0] ? toLink(res.rows[0]) : undefined;
    if (link) this.remember(link);
    else this.byLocalId.set(localId, null);
    return link;
  }

  async byRemote(remoteId: string): Promise<Link | undefined> {
    this.bound();
    const known = this.byRemoteId.get(remoteId);
    if (known !== undefined) return known ?? undefined;
    const res = await this.db.query<LinkRow>(
      `SELECT ${COLUMNS} FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND remote_id = $3`,
      [this.tenant, this.flowId, remoteId],
    );
    const link = res.rows[0] ? toLink(res.rows[0]) : undefined;
    if (link) this.remember(link);
    else this.byRemoteId.set(remoteId, null);
    return link;
  }

  private bound(): void {
    if (this.byLocalId.size + this.byRemoteId.size < 50_000) return;
    this.byLocalId.clear();
    this.byRemoteId.clear();
  }

  private remember(link: Link): void {
    this.byLocalId.set(link.localId, link);
    this.byRemoteId.set(link.remoteId, link);
  }

  private forget(localId: string): void {
    const old = this.byLocalId.get(localId);
    if (old) this.byRemoteId.set(old.remoteId, null);
    this.byLocalId.set(localId, null);
  }

  /** Every link of the flow for one resource type. */
  async all(resourceType: string): Promise<Link[]> {
    const res = await this.db.query<LinkRow>(
      `SELECT ${COLUMNS} FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND resource_type = $3
        ORDER BY local_id`,
      [this.tenant, this.flowId, resourceType],
    );
    return res.rows.map(toLink);
  }

  /**
   * Stores a link. A link of either id to another resource is replaced: a local resource has one
   * remote counterpart per flow and the other way round. One statement: the INSERT reads the
   * DELETE's row count, so the DELETE has finished (freeing the remote id) before the row is
   * written. Every condition is an equality on an indexed column: statistics or not (the embedded
   * store has no autovacuum), the planner uses the index.
   */
  async save(link: Link): Promise<void> {
    await this.db.query(
      `WITH gone AS (
         DELETE FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND remote_id = $5 AND local_id <> $4
         RETURNING local_id
       )
       INSERT INTO sync_links (tenant_id, flow_id, resource_type, local_id, remote_id, local_version,
                               remote_version, digest, updated)
       SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::text, $8::text, clock_timestamp()
         FROM (SELECT count(*) FROM gone) AS g
       ON CONFLICT (tenant_id, flow_id, local_id) DO UPDATE SET ${UPSERT}`,
      [
        this.tenant,
        this.flowId,
        link.resourceType,
        link.localId,
        link.remoteId,
        link.localVersion ?? null,
        link.remoteVersion ?? null,
        link.digest ?? null,
      ],
    );
    this.noteSaved(link);
  }

  /**
   * Stores the links of resources just created on one side (a Bulk request's, a batch's) in one
   * statement. Their new ids cannot be linked to anything yet, so unlike save nothing is replaced
   * on the other side: a conflict on a remote id is an error, not a silent relink.
   */
  async saveNew(links: Link[]): Promise<void> {
    if (links.length === 0) return;
    const col = <K extends keyof Link>(k: K) => links.map((l) => l[k] ?? null);
    await this.db.query(
      `INSERT INTO sync_links (tenant_id, flow_id, resource_type, local_id, remote_id, local_version,
                               remote_version, digest, updated)
       SELECT $1, $2, i.resource_type, i.local_id, i.remote_id, i.local_version, i.remote_version, i.digest,
              clock_timestamp()
         FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[])
           AS i(resource_type, local_id, remote_id, local_version, remote_version, digest)
       ON CONFLICT (tenant_id, flow_id, local_id) DO UPDATE SET ${UPSERT}`,
      [
        this.tenant,
        this.flowId,
        col('resourceType'),
        col('localId'),
        col('remoteId'),
        col('localVersion'),
        col('remoteVersion'),
        col('digest'),
      ],
    );
    for (const link of links) this.noteSaved(link);
  }

  private noteSaved(link: Link): void {
    const previous = this.byRemoteId.get(link.remoteId);
    if (previous && previous.localId !== link.localId) this.byLocalId.set(previous.localId, null);
    this.forget(link.localId);
    this.remember({ ...link });
  }

  async dropLocal(localId: string): Promise<void> {
    await this.db.query('DELETE FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND local_id = $3', [
      this.tenant,
      this.flowId,
      localId,
    ]);
    this.forget(localId);
  }
}

/** The attributes tried, in order, after a stored link (see the module comment). */
export function matchingAttributes(matching: FlowMatching | undefined, resourceType: string): string[] {
  if (matching && matching.attributes.length > 0) return matching.attributes;
  const key = resourceType === 'User' ? ['userName'] : resourceType === 'Group' ? ['displayName'] : [];
  return ['externalId', ...key];
}

/** An error that makes one item fail (recorded, retried next run) without stopping the run. */
export class ItemError extends Error {}
