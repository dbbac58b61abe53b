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

export class LinkStore {
  constructor(
    private readonly db: Database,
    readonly tenant: string,
    readonly flowId: string,
  ) {}

  async byLocal(localId: string): Promise<Link | undefined> {
    const res = await this.db.query<LinkRow>(
      `SELECT ${COLUMNS} FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND local_id = $3`,
      [this.tenant, this.flowId, localId],
    );
    return res.rows[0] ? toLink(res.rows[0]) : undefined;
  }

  async byRemote(remoteId: string): Promise<Link | undefined> {
    const res = await this.db.query<LinkRow>(
      `SELECT ${COLUMNS} FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND remote_id = $3`,
      [this.tenant, this.flowId, remoteId],
    );
    return res.rows[0] ? toLink(res.rows[0]) : undefined;
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
   * remote counterpart per flow and the other way round.
   */
  async save(link: Link): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        'DELETE FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND remote_id = $3 AND local_id <> $4',
        [this.tenant, this.flowId, link.remoteId, link.localId],
      );
      await tx.query(
        `INSERT INTO sync_links (tenant_id, flow_id, resource_type, local_id, remote_id, local_version,
                                 remote_version, digest, updated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp())
         ON CONFLICT (tenant_id, flow_id, local_id) DO UPDATE SET
           resource_type = EXCLUDED.resource_type, remote_id = EXCLUDED.remote_id,
           local_version = EXCLUDED.local_version, remote_version = EXCLUDED.remote_version,
           digest = EXCLUDED.digest, updated = EXCLUDED.updated`,
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
    });
  }

  async dropLocal(localId: string): Promise<void> {
    await this.db.query('DELETE FROM sync_links WHERE tenant_id = $1 AND flow_id = $2 AND local_id = $3', [
      this.tenant,
      this.flowId,
      localId,
    ]);
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
