/**
 * The benchmark data set, written straight into the store: 100,000 realistic Users over HTTP would
 * take longer than the benchmark itself. Documents go through prepareWrite, the same validation and
 * canonicalisation ResourceService.create applies, so the rows are what the service would write.
 */
import { randomUUID } from 'node:crypto';
import { prepareWrite } from '../../src/scim/resource/validate.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../../src/scim/schema/registry.ts';
import type { Database } from '../../src/store/db.ts';

export const TENANT = 'default';
export const OWNER = 'admin';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';

const GIVEN = ['Ada', 'Grace', 'Alan', 'Linus', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances', 'Edsger'];
const FAMILY = ['Lovelace', 'Hopper', 'Turing', 'Torvalds', 'Liskov', 'Thompson', 'Hamilton', 'Ritchie'];
const DEPARTMENTS = ['Engineering', 'Sales', 'Marketing', 'Finance', 'Support', 'Legal', 'Operations', 'HR'];

/** A User as a provisioning client would POST it; i makes userName `user<i>` and the emails unique. */
export function userBody(i: number, prefix = 'user'): JsonObject {
  const given = GIVEN[i % GIVEN.length];
  const family = FAMILY[Math.floor(i / GIVEN.length) % FAMILY.length];
  return {
    schemas: [USER_SCHEMA, ENTERPRISE],
    externalId: `ext-${prefix}-${i}`,
    userName: `${prefix}${i}`,
    name: { givenName: given, familyName: family, formatted: `${given} ${family}` },
    displayName: `${given} ${family}`,
    active: true,
    emails: [
      { value: workEmail(i, prefix), type: 'work', primary: true },
      { value: `${prefix}${i}@home.example.net`, type: 'home' },
    ],
    [ENTERPRISE]: { employeeNumber: String(100000 + i), department: DEPARTMENTS[i % DEPARTMENTS.length] },
  };
}

export function workEmail(i: number, prefix = 'user'): string {
  return `${prefix}${i}@example.com`;
}

export interface LoadedData {
  userIds: string[];
  groupIds: string[];
  /** A group holding the first 100 users. */
  smallGroupId: string;
  /** A group holding every loaded user. */
  bigGroupId: string;
  memberships: number;
  loadSeconds: number;
  analyzeSeconds: number;
}

/** The canonical document stored for a resource: prepareWrite output without id, meta and relations. */
export function storedDoc(registry: SchemaRegistry, rt: ResourceTypeConfig, body: JsonObject): JsonObject {
  const canonical = prepareWrite(registry, rt, body, { mode: 'create' });
  const doc: JsonObject = {};
  for (const [k, v] of Object.entries(canonical)) {
    if (k === 'id' || k === 'meta' || k === rt.membersAttribute || k === rt.groupsAttribute) continue;
    doc[k] = v;
  }
  return doc;
}

export async function insertResources(
  db: Database,
  type: string,
  rows: { id: string; externalId: string | null; doc: JsonObject }[],
  tenant = TENANT,
  owner = OWNER,
): Promise<void> {
  // One multi-row INSERT per batch; arrays keep it to a handful of parameters whatever the batch size.
  await db.query(
    `INSERT INTO resources (tenant_id, id, resource_type, external_id, version, created, last_modified, doc, owner_client)
     SELECT $1, u.id, $2, u.ext, 1, $3, $3, u.doc::jsonb, $4
     FROM unnest($5::text[], $6::text[], $7::text[]) AS u(id, ext, doc)`,
    [
      tenant,
      type,
      new Date(),
      owner,
      rows.map((r) => r.id),
      rows.map((r) => r.externalId),
      rows.map((r) => JSON.stringify(r.doc)),
    ],
  );
}

async function insertMembers(db: Database, groupIds: string[], memberIds: string[]): Promise<void> {
  await db.query(
    `INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display)
     SELECT $1, m.g, m.u, 'User', NULL FROM unnest($2::text[], $3::text[]) AS m(g, u)`,
    [TENANT, groupIds, memberIds],
  );
}

export async function loadData(
  db: Database,
  registry: SchemaRegistry,
  users: number,
  groups: number,
  log: (msg: string) => void,
): Promise<LoadedData> {
  const userRt = registry.resourceType('User')!;
  const groupRt = registry.resourceType('Group')!;
  const start = performance.now();
  const BATCH = 1000;
  const userIds: string[] = [];
  for (let from = 0; from < users; from += BATCH) {
    const rows = [];
    for (let i = from; i < Math.min(users, from + BATCH); i++) {
      const doc = storedDoc(registry, userRt, userBody(i));
      rows.push({ id: randomUUID(), externalId: doc.externalId as string, doc });
    }
    await insertResources(db, 'User', rows);
    userIds.push(...rows.map((r) => r.id));
    if ((from / BATCH) % 20 === 0) log(`  users ${from + rows.length}/${users}`);
  }

  const groupRows = [];
  for (let g = 0; g < groups; g++) {
    const doc = storedDoc(registry, groupRt, {
      schemas: [GROUP_SCHEMA],
      externalId: `ext-group-${g}`,
      displayName: g === 0 ? 'All staff' : g === 1 ? 'Small team' : `Team ${g}`,
    });
    groupRows.push({ id: randomUUID(), externalId: doc.externalId as string, doc });
  }
  for (let from = 0; from < groupRows.length; from += BATCH)
    await insertResources(db, 'Group', groupRows.slice(from, from + BATCH));
  const groupIds = groupRows.map((r) => r.id);
  const [bigGroupId, smallGroupId] = groupIds;

  // Memberships: everyone in the big group, the first 100 users in the small one, and every user
  // in one of the other teams (so a User read has a few groups to resolve, as in real directories).
  log('  memberships');
  let memberships = 0;
  const teams = groupIds.slice(2);
  const MEMBER_BATCH = 10_000;
  for (let from = 0; from < users; from += MEMBER_BATCH) {
    const ids = userIds.slice(from, from + MEMBER_BATCH);
    await insertMembers(
      db,
      ids.map(() => bigGroupId),
      ids,
    );
    if (teams.length > 0)
      await insertMembers(
        db,
        ids.map((_, k) => teams[(from + k) % teams.length]),
        ids,
      );
    memberships += ids.length * (teams.length > 0 ? 2 : 1);
  }
  const small = userIds.slice(0, 100);
  await insertMembers(
    db,
    small.map(() => smallGroupId),
    small,
  );
  memberships += small.length;
  const loadSeconds = (performance.now() - start) / 1000;

  log('  VACUUM ANALYZE, CHECKPOINT');
  const a0 = performance.now();
  await db.query('VACUUM ANALYZE');
  // Flush the load's dirty pages now, not during the measurements (a checkpoint slows every commit).
  await db.query('CHECKPOINT').catch((err: unknown) => log(`  CHECKPOINT failed: ${String(err)}`));
  const analyzeSeconds = (performance.now() - a0) / 1000;
  return { userIds, groupIds, smallGroupId, bigGroupId, memberships, loadSeconds, analyzeSeconds };
}

/** Users only (no groups), for benchmarks that need readable Users in several tenants. */
export async function loadUsers(
  db: Database,
  registry: SchemaRegistry,
  tenant: string,
  users: number,
): Promise<string[]> {
  const userRt = registry.resourceType('User')!;
  const ids: string[] = [];
  const BATCH = 1000;
  for (let from = 0; from < users; from += BATCH) {
    const rows = [];
    for (let i = from; i < Math.min(users, from + BATCH); i++) {
      const doc = storedDoc(registry, userRt, userBody(i));
      rows.push({ id: randomUUID(), externalId: doc.externalId as string, doc });
    }
    await insertResources(db, 'User', rows, tenant);
    ids.push(...rows.map((r) => r.id));
  }
  return ids;
}
