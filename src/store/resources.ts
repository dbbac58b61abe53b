/**
 * Resource persistence: rows of `resources` and `group_members`, always scoped by tenant. All
 * statements are parameterized; filter and sort SQL comes from src/store/sql (compiled from
 * bound SCIM filters, values as parameters). Callers pass the transaction to run in.
 */
import type { BoundFilter } from '../scim/filter/ast.ts';
import type { JsonObject } from '../scim/json.ts';
import type { ResourceTypeConfig } from '../scim/schema/registry.ts';
import type { Queryable } from './db.ts';
import { compileFilter, SqlParams } from './sql/filter-sql.ts';
import type { SortExpression } from './sql/sort-sql.ts';
import { sqlLiteral } from './sql/params.ts';

export interface ResourceRow {
  id: string;
  resource_type: string;
  external_id: string | null;
  version: number;
  created: Date;
  last_modified: Date;
  doc: JsonObject;
  owner_client: string | null;
  /** The sort key of a list query, as text (for cursors). */
  sort_key?: string | null;
  /** The groups it is a member of, when read with the row (`withGroups`). */
  groups?: GroupRefRow[];
}

export interface MemberRow {
  group_id: string;
  member_id: string;
  member_type: string;
  display: string | null;
}

export interface GroupRefRow {
  member_id: string;
  group_id: string;
  display: string | null;
}

/** A position in a keyset walk: the sort key and id of the last (or first) row of a page. */
export interface KeysetPosition {
  key: string | null;
  id: string;
  /** true: fetch the page before the position (previousCursor). */
  before: boolean;
}

/**
 * Rows a restricted client may reach: those it created, or whose document contains one of the
 * given JSON values (containment, `@>`, served by the GIN index).
 */
export interface Visibility {
  ownerClient: string;
  containing: JsonObject[];
  /**
   * The same references as kept in `managed_refs` (types with `managedBy`): a list without filter
   * and sort is then counted and paged from that table (see src/store/sql/managed-sql.ts).
   */
  refs?: string[];
}

export interface ListQuery {
  /** The types searched, each with its bound filter (undefined = no filter) and row visibility. */
  types: { rt: ResourceTypeConfig; filter?: BoundFilter; visibility?: Visibility }[];
  sort?: { perType: Map<string, SortExpression>; descending: boolean };
  page:
    | { kind: 'index'; offset: number; limit: number }
    | { kind: 'keyset'; limit: number; position?: KeysetPosition };
  /** Read each row's groups with it (types with a derived `groups` attribute). */
  withGroups?: boolean;
}

const COLUMNS =
  'r.id, r.resource_type, r.external_id, r.version, r.created, r.last_modified, r.doc, r.owner_client';

/**
 * The groups a row is a member of, as one JSON array column of the row's own statement: reading
 * them with the row saves a round trip per GET and per list page (`r` is the row's alias).
 */
function groupsColumn(r: string): string {
  return (
    `(SELECT coalesce(json_agg(json_build_object('member_id', gm.member_id, 'group_id', gm.group_id, ` +
    `'display', g.doc ->> 'displayName') ORDER BY gm.group_id), '[]'::json) ` +
    `FROM group_members gm JOIN resources g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id ` +
    `WHERE gm.tenant_id = ${r}.tenant_id AND gm.member_id = ${r}.id) AS groups`
  );
}

function toRow(r: ResourceRow & { groups?: GroupRefRow[] | null }): ResourceRow {
  // Both engines return bigint as number here (pg via a type parser); Number() keeps that true for strings too.
  const row: ResourceRow = { ...r, version: Number(r.version) };
  if (r.groups === null) delete row.groups;
  return row;
}

export class ResourceRepository {
  async insert(
    tx: Queryable,
    tenant: string,
    r: { id: string; resourceType: string; externalId?: string; doc: JsonObject; now: Date; owner?: string },
  ): Promise<ResourceRow> {
    const res = await tx.query<ResourceRow>(
      `INSERT INTO resources AS r (tenant_id, id, resource_type, external_id, version, created, last_modified, doc, owner_client)
       VALUES ($1, $2, $3, $4, 1, $5, $5, $6, $7) RETURNING ${COLUMNS}`,
      [tenant, r.id, r.resourceType, r.externalId ?? null, r.now, JSON.stringify(r.doc), r.owner ?? null],
    );
    return toRow(res.rows[0]);
  }

  /**
   * Inserts new resources of one type and, in the same statement, their change-log rows (the
   * multi-row counterpart of insert + TenancyRepository.recordChange, in the rows' order). A row
   * that would violate a unique index is skipped, not an error: answers the ids stored.
   */
  async insertMany(
    tx: Queryable,
    tenant: string,
    b: {
      resourceType: string;
      now: Date;
      owner?: string;
      rows: { id: string; externalId?: string; doc: JsonObject }[];
    },
  ): Promise<Set<string>> {
    if (b.rows.length === 0) return new Set();
    const res = await tx.query<{ id: string }>(
      `WITH input AS (
         SELECT * FROM unnest($5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS i(id, external_id, doc, ord)
       ), ins AS (
         INSERT INTO resources AS r (tenant_id, id, resource_type, external_id, version, created, last_modified, doc, owner_client)
         SELECT $1, i.id, $2, i.external_id, 1, $3, $3, i.doc::jsonb, $4 FROM input i ORDER BY i.ord
         ON CONFLICT DO NOTHING RETURNING r.id
       ), log AS (
         INSERT INTO changes (tenant_id, at, client_id, operation, resource_type, resource_id, version)
         SELECT $1, $3, $4, 'create', $2, i.id, 1 FROM input i JOIN ins ON ins.id = i.id ORDER BY i.ord
       )
       SELECT id FROM ins`,
      [
        tenant,
        b.resourceType,
        b.now,
        b.owner ?? null,
        b.rows.map((r) => r.id),
        b.rows.map((r) => r.externalId ?? null),
        b.rows.map((r) => JSON.stringify(r.doc)),
      ],
    );
    return new Set(res.rows.map((r) => r.id));
  }

  async get(
    tx: Queryable,
    tenant: string,
    id: string,
    resourceType?: string,
    lock = false,
    visibility?: Visibility,
    withGroups = false,
  ): Promise<ResourceRow | undefined> {
    const p = new SqlParams();
    const columns = withGroups && !lock ? `${COLUMNS}, ${groupsColumn('r')}` : COLUMNS;
    let sql = `SELECT ${columns} FROM resources r WHERE r.tenant_id = ${p.add(tenant)} AND r.id = ${p.add(id)}`;
    if (resourceType) sql += ` AND r.resource_type = ${p.add(resourceType)}`;
    if (visibility) sql += ` AND ${visibilityCondition(visibility, p)}`;
    if (lock) sql += ' FOR UPDATE';
    const res = await tx.query<ResourceRow>(sql, p.values);
    return res.rows[0] ? toRow(res.rows[0]) : undefined;
  }

  /** Writes a new document and bumps the version; returns the stored row. */
  async update(
    tx: Queryable,
    tenant: string,
    id: string,
    doc: JsonObject,
    externalId: string | undefined,
    now: Date,
  ): Promise<ResourceRow> {
    const res = await tx.query<ResourceRow>(
      `UPDATE resources r SET doc = $3, external_id = $4, version = r.version + 1, last_modified = $5
       WHERE r.tenant_id = $1 AND r.id = $2 RETURNING ${COLUMNS}`,
      [tenant, id, JSON.stringify(doc), externalId ?? null, now],
    );
    return toRow(res.rows[0]);
  }

  /** A change that is not in the document (membership rows) still makes a new version. */
  async touch(tx: Queryable, tenant: string, id: string, now: Date): Promise<ResourceRow> {
    const res = await tx.query<ResourceRow>(
      `UPDATE resources r SET version = r.version + 1, last_modified = $3
       WHERE r.tenant_id = $1 AND r.id = $2 RETURNING ${COLUMNS}`,
      [tenant, id, now],
    );
    return toRow(res.rows[0]);
  }

  /**
   * Deletes a resource. Membership rows go with it (foreign keys cascade); the groups that listed
   * it as a member change, so they get a new version first. Returns those groups.
   */
  async delete(tx: Queryable, tenant: string, id: string, now: Date): Promise<ResourceRow[]> {
    const groups = await tx.query<ResourceRow>(
      `UPDATE resources r SET version = r.version + 1, last_modified = $3
       WHERE r.tenant_id = $1 AND r.id IN (SELECT gm.group_id FROM group_members gm WHERE gm.tenant_id = $1 AND gm.member_id = $2)
       RETURNING ${COLUMNS}`,
      [tenant, id, now],
    );
    await tx.query('DELETE FROM resources WHERE tenant_id = $1 AND id = $2', [tenant, id]);
    return groups.rows.map(toRow);
  }

  /** Which of the given ids exist in the tenant, with their resource type. */
  async existing(tx: Queryable, tenant: string, ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const res = await tx.query<{ id: string; resource_type: string }>(
      'SELECT id, resource_type FROM resources WHERE tenant_id = $1 AND id = ANY($2::text[])',
      [tenant, ids],
    );
    return new Map(res.rows.map((r) => [r.id, r.resource_type]));
  }

  /** Adds membership rows; existing ones are kept as they are. Returns how many rows were added. */
  async addMembers(
    tx: Queryable,
    tenant: string,
    groupId: string,
    members: { id: string; type: string; display?: string }[],
  ): Promise<number> {
    if (members.length === 0) return 0;
    const res = await tx.query(
      `INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display)
       SELECT $1, $2, m.id, m.type, m.display FROM jsonb_to_recordset($3::jsonb) AS m(id text, type text, display text)
       ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING`,
      [tenant, groupId, JSON.stringify(members)],
    );
    return res.rowCount;
  }

  /** Removes the given members (all members when ids is undefined). Returns how many rows went. */
  async removeMembers(tx: Queryable, tenant: string, groupId: string, ids?: string[]): Promise<number> {
    if (ids && ids.length === 0) return 0;
    const res = ids
      ? await tx.query(
          'DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_id = ANY($3::text[])',
          [tenant, groupId, ids],
        )
      : await tx.query('DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2', [tenant, groupId]);
    return res.rowCount;
  }

  async membersOf(tx: Queryable, tenant: string, groupIds: string[]): Promise<Map<string, MemberRow[]>> {
    const out = new Map<string, MemberRow[]>();
    if (groupIds.length === 0) return out;
    const res = await tx.query<MemberRow>(
      `SELECT group_id, member_id, member_type, display FROM group_members
       WHERE tenant_id = $1 AND group_id = ANY($2::text[]) ORDER BY group_id, member_id`,
      [tenant, groupIds],
    );
    for (const row of res.rows) {
      const list = out.get(row.group_id) ?? [];
      list.push(row);
      out.set(row.group_id, list);
    }
    return out;
  }

  async groupsOf(tx: Queryable, tenant: string, memberIds: string[]): Promise<Map<string, GroupRefRow[]>> {
    const out = new Map<string, GroupRefRow[]>();
    if (memberIds.length === 0) return out;
    const res = await tx.query<GroupRefRow>(
      `SELECT gm.member_id, gm.group_id, g.doc ->> 'displayName' AS display
       FROM group_members gm JOIN resources g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
       WHERE gm.tenant_id = $1 AND gm.member_id = ANY($2::text[]) ORDER BY gm.member_id, gm.group_id`,
      [tenant, memberIds],
    );
    for (const row of res.rows) {
      const list = out.get(row.member_id) ?? [];
      list.push(row);
      out.set(row.member_id, list);
    }
    return out;
  }

  /**
   * Runs a list query: the page of rows, and the total number of matches (unless skipped), in ONE
   * statement (a consistent snapshot without a transaction, and one round trip instead of
   * BEGIN, count, page, groups, COMMIT).
   */
  async list(
    tx: Queryable,
    tenant: string,
    q: ListQuery,
    withTotal = true,
  ): Promise<{ rows: ResourceRow[]; total: number }> {
    const only = q.types.length === 1 ? q.types[0] : undefined;
    if (only?.visibility?.refs && !only.filter && !q.sort && q.page.kind === 'index') {
      return this.listManaged(tx, tenant, only.rt.name, only.visibility, q.page, withTotal, q.withGroups);
    }
    const p = new SqlParams();
    const baseWhere = [`r.tenant_id = ${p.add(tenant)}`, this.typeCondition(q, p)].join(' AND ');
    const countSql = withTotal ? `SELECT count(*) AS n FROM resources r WHERE ${baseWhere}` : undefined;
    if (q.page.limit === 0) return { rows: [], total: countSql ? await this.count(tx, countSql, p) : 0 };

    const sortExpr = q.sort ? this.sortExpression(q) : undefined;
    const descending = q.sort?.descending ?? false;
    const pos = q.page.kind === 'keyset' ? q.page.position : undefined;
    // A backwards page is the forward page of the reversed order, read then reversed.
    const reverse = pos?.before ?? false;
    const desc = descending !== reverse;
    const idDesc = reverse;
    const pageWhere = pos
      ? ` AND ${keysetCondition(sortExpr, q.sort ? sortKindOf(q) : 'text', desc, idDesc, pos, p)}`
      : '';
    const order = sortExpr
      ? `${sortExpr} ${desc ? 'DESC NULLS FIRST' : 'ASC NULLS LAST'}, r.id ${idDesc ? 'DESC' : 'ASC'}`
      : `r.id ${idDesc ? 'DESC' : 'ASC'}`;
    const offset = q.page.kind === 'index' ? ` OFFSET ${p.add(q.page.offset)}` : '';
    const pageSql =
      `SELECT ${COLUMNS}, r.tenant_id${sortExpr ? `, (${sortExpr})::text AS sort_key` : ''} FROM resources r ` +
      `WHERE ${baseWhere}${pageWhere} ORDER BY ${order} LIMIT ${p.add(q.page.limit)}${offset}`;
    const { rows, total } = await this.pageWithTotal(tx, pageSql, countSql, p, q.withGroups ?? false);
    if (reverse) rows.reverse();
    return { rows, total };
  }

  private async count(tx: Queryable, countSql: string, p: SqlParams): Promise<number> {
    const res = await tx.query<{ n: number | string }>(countSql, p.values);
    return Number(res.rows[0].n);
  }

  /**
   * The page (in its order) and the count as one statement. The count is the left side of a
   * LEFT JOIN so an empty page still answers it (one row with the page's columns NULL); the
   * page keeps its order through row_number() over its ordered, limited subquery. `withClause`
   * (`WITH name AS (…) `) defines what the count and the page both read.
   */
  private async pageWithTotal(
    tx: Queryable,
    pageSql: string,
    countSql: string | undefined,
    p: SqlParams,
    withGroups: boolean,
    withClause = '',
  ): Promise<{ rows: ResourceRow[]; total: number }> {
    const columns = `pg.*${withGroups ? `, ${groupsColumn('pg')}` : ''}`;
    const numbered = `SELECT page.*, row_number() OVER () AS ord FROM (${pageSql}) page`;
    let sql = countSql
      ? `SELECT t.n AS total_results, ${columns} FROM (${countSql}) t LEFT JOIN (${numbered}) pg ON true ORDER BY pg.ord`
      : `SELECT ${columns} FROM (${numbered}) pg ORDER BY pg.ord`;
    // A WITH clause goes inside, so that the statement still reads as the SELECT it is.
    if (withClause) sql = `SELECT q.* FROM (${withClause}${sql}) q ORDER BY q.ord`;
    const res = await tx.query<
      ResourceRow & { total_results?: number | string; ord?: unknown; tenant_id?: unknown }
    >(sql, p.values);
    const total = countSql ? Number(res.rows[0].total_results) : 0;
    const rows = res.rows
      .filter((r) => r.id !== null)
      .map(({ total_results: _t, ord: _o, tenant_id: _tenant, ...r }) => toRow(r));
    return { rows, total };
  }

  /**
   * A managed-only client's unfiltered list in id order: the visible ids are those it owns and those
   * in managed_refs under its references, read from indexes (managed_refs' primary key), so the
   * count visits no resource row and the page only the rows it returns.
   */
  private async listManaged(
    tx: Queryable,
    tenant: string,
    resourceType: string,
    v: Visibility,
    page: { offset: number; limit: number },
    withTotal: boolean,
    withGroups = false,
  ): Promise<{ rows: ResourceRow[]; total: number }> {
    const p = new SqlParams();
    const t = p.add(tenant);
    const type = p.add(resourceType);
    const visible =
      `SELECT r.id FROM resources r WHERE r.tenant_id = ${t} AND r.resource_type = ${type} AND r.owner_client = ${p.add(v.ownerClient)} ` +
      `UNION SELECT m.resource_id FROM managed_refs m WHERE m.tenant_id = ${t} AND m.resource_type = ${type} AND m.ref = ANY(${p.add(v.refs ?? [])}::text[])`;
    if (page.limit === 0) {
      const countOnly = `SELECT count(*) AS n FROM (${visible}) v`;
      return { rows: [], total: withTotal ? await this.count(tx, countOnly, p) : 0 };
    }
    // The visible ids once, for both the count and the page (the UNION is not evaluated twice).
    const withClause = `WITH v AS MATERIALIZED (${visible}) `;
    const countSql = withTotal ? 'SELECT count(*) AS n FROM v' : undefined;
    const pageSql =
      `SELECT ${COLUMNS}, r.tenant_id FROM resources r WHERE r.tenant_id = ${t} AND r.id IN ` +
      `(SELECT v.id FROM v ORDER BY v.id LIMIT ${p.add(page.limit)} OFFSET ${p.add(page.offset)}) ORDER BY r.id`;
    return this.pageWithTotal(tx, pageSql, countSql, p, withGroups, withClause);
  }

  private typeCondition(q: ListQuery, p: SqlParams): string {
    const parts = q.types.map(({ rt, filter, visibility }) => {
      const conds = [`r.resource_type = ${sqlLiteral(rt.name)}`];
      if (visibility) conds.push(visibilityCondition(visibility, p));
      if (filter) conds.push(compileFilter(filter, rt, p, 'r'));
      return `(${conds.join(' AND ')})`;
    });
    return parts.length === 1 ? parts[0] : `(${parts.join(' OR ')})`;
  }

  private sortExpression(q: ListQuery): string {
    const sort = q.sort!;
    if (q.types.length === 1) return sort.perType.get(q.types[0].rt.name)?.expr ?? 'NULL::text';
    // Root queries: each type's expression in one CASE; mixed kinds fall back to text.
    const kinds = new Set([...sort.perType.values()].map((s) => s.kind));
    const asText = kinds.size > 1;
    const branches = q.types
      .map(({ rt }) => {
        const s = sort.perType.get(rt.name);
        return s
          ? `WHEN ${sqlLiteral(rt.name)} THEN ${asText ? `(${s.expr})::text COLLATE "C"` : s.expr}`
          : '';
      })
      .join(' ');
    return `(CASE r.resource_type ${branches} END)`;
  }
}

function visibilityCondition(v: Visibility, p: SqlParams): string {
  const alternatives = [`r.owner_client = ${p.add(v.ownerClient)}`];
  for (const c of v.containing) alternatives.push(`r.doc @> ${p.add(JSON.stringify(c))}::jsonb`);
  return `(${alternatives.join(' OR ')})`;
}

/** Stores the digest of a secret generated for a resource. */
export async function storeSecretDigest(
  tx: Queryable,
  tenant: string,
  resourceId: string,
  name: string,
  digest: string,
): Promise<void> {
  await tx.query(
    `INSERT INTO resource_secrets (tenant_id, resource_id, name, digest) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant_id, resource_id, name) DO UPDATE SET digest = EXCLUDED.digest`,
    [tenant, resourceId, name, digest],
  );
}

function sortKindOf(q: ListQuery): string {
  const kinds = new Set([...q.sort!.perType.values()].map((s) => s.kind));
  return kinds.size === 1 ? [...kinds][0] : 'text';
}

const CASTS: Record<string, string> = {
  text: 'text COLLATE "C"',
  number: 'numeric',
  timestamp: 'timestamptz',
  boolean: 'boolean',
};

/**
 * Rows strictly after `pos` in the order (sortExpr desc?, id idDesc?), with NULL keys last when
 * ascending and first when descending (the RFC 7644 §3.4.2.3 placement).
 */
function keysetCondition(
  sortExpr: string | undefined,
  kind: string,
  desc: boolean,
  idDesc: boolean,
  pos: KeysetPosition,
  p: SqlParams,
): string {
  const idCmp = `r.id ${idDesc ? '<' : '>'} ${p.add(pos.id)}`;
  if (!sortExpr) return idCmp;
  if (pos.key === null) {
    // Among NULL keys, continue by id; NULLs are last ascending (nothing after them) and first descending.
    return desc
      ? `((${sortExpr} IS NULL AND ${idCmp}) OR ${sortExpr} IS NOT NULL)`
      : `(${sortExpr} IS NULL AND ${idCmp})`;
  }
  const key = `${p.add(pos.key)}::${CASTS[kind] ?? 'text'}`;
  const after = `(${sortExpr} ${desc ? '<' : '>'} ${key} OR (${sortExpr} = ${key} AND ${idCmp}))`;
  return desc ? after : `(${after} OR ${sortExpr} IS NULL)`;
}
