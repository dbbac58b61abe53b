/**
 * Flows of the sync engine: what moves between this node and a connection, how, and who owns which
 * attribute (src/sync/types.ts Flow), stored in the configuration columns of sync_flows. This
 * module never writes the engine's columns (state, lease_*, run_requested*); views show `state`
 * read-only, and `nextRun` for a scheduled flow.
 */
import { randomUUID } from 'node:crypto';
import { bindFilter } from '../scim/filter/bind.ts';
import { parseFilter } from '../scim/filter/parser.ts';
import { ScimError } from '../scim/errors.ts';
import type { JsonValue } from '../scim/json.ts';
import type { SchemaRegistry } from '../scim/schema/registry.ts';
import type { Database, Queryable } from '../store/db.ts';
import type { TenantSettings } from '../tenancy/settings.ts';
import { nextScheduledRun, parseSchedule } from './triggers/schedules.ts';
import {
  attributePath,
  bad,
  boolean,
  integer,
  isObject,
  nonEmptyString,
  object,
  oneOf,
} from './config-check.ts';
import type {
  DeleteAction,
  Flow,
  FlowAuthority,
  FlowDirection,
  FlowMapping,
  FlowMatching,
  FlowMode,
  FlowState,
  MappingRule,
  Transform,
} from './types.ts';

export const DIRECTIONS: readonly FlowDirection[] = ['push', 'pull'];
export const MODES: readonly FlowMode[] = ['changes', 'full', 'delta', 'events'];
/** The modes each direction allows; the first is the default. */
export const MODES_BY_DIRECTION: Record<FlowDirection, readonly FlowMode[]> = {
  push: ['changes', 'full'],
  pull: ['full', 'delta', 'events'],
};
export const DELETE_ACTIONS: readonly DeleteAction[] = ['delete', 'deactivate', 'ignore'];
export const TRANSFORMS: readonly Transform[] = ['lowercase', 'uppercase', 'trim', 'sha256'];
export const MIN_FULL_EVERY_SECONDS = 60;

/** What a caller gives to create a flow. */
export interface FlowInput {
  /** Default: a random UUID. 1-64 of A-Z a-z 0-9 . _ - */
  id?: string;
  /** Default: the id. */
  name?: string;
  connectionId: string;
  direction: FlowDirection;
  /** Default: push `changes`, pull `full`. */
  mode?: FlowMode;
  resourceTypes: string[];
  filter?: string | null;
  mapping?: FlowMapping | null;
  authority?: FlowAuthority | null;
  matching?: FlowMatching | null;
  /** Default `delete`. */
  onDelete?: DeleteAction;
  usePut?: boolean;
  fullEverySeconds?: number | null;
  upstreamId?: string | null;
  schedule?: string | null;
  onLocalChange?: boolean;
  /** Default true. */
  enabled?: boolean;
}

/** PATCH: any subset; null clears an optional field. connectionId and direction cannot change. */
export type FlowPatch = { [K in keyof Omit<FlowInput, 'id'>]?: FlowInput[K] };

/** A flow as the admin API and the CLI show it. */
export interface FlowView {
  tenant: string;
  id: string;
  name: string;
  connectionId: string;
  direction: FlowDirection;
  mode: FlowMode;
  resourceTypes: string[];
  filter?: string;
  mapping?: FlowMapping;
  authority?: FlowAuthority;
  matching?: FlowMatching;
  onDelete: DeleteAction;
  usePut: boolean;
  fullEverySeconds?: number;
  upstreamId?: string;
  schedule?: string;
  /** When the schedule next fires (enabled flows only). */
  nextRun?: string;
  onLocalChange: boolean;
  enabled: boolean;
  /** The engine's position between runs (read-only). */
  state: FlowState;
  created: string;
  updated: string;
}

interface FlowRow {
  tenant_id: string;
  id: string;
  name: string;
  connection_id: string;
  direction: FlowDirection;
  mode: FlowMode;
  resource_types: string[];
  filter: string | null;
  mapping: FlowMapping | null;
  authority: FlowAuthority | null;
  matching: FlowMatching | null;
  on_delete: DeleteAction;
  use_put: boolean;
  full_every_seconds: number | null;
  upstream_id: string | null;
  schedule: string | null;
  on_local_change: boolean;
  enabled: boolean;
  state: FlowState;
  created: Date;
  updated: Date;
}

const CONFIG_COLUMNS = `tenant_id, id, name, connection_id, direction, mode, resource_types, filter, mapping,
  authority, matching, on_delete, use_put, full_every_seconds, upstream_id, schedule, on_local_change,
  enabled, created, updated`;
const COLUMNS = `${CONFIG_COLUMNS}, state`;
const ID = /^[A-Za-z0-9._-]{1,64}$/;
const INPUT_KEYS = [
  'id',
  'name',
  'connectionId',
  'direction',
  'mode',
  'resourceTypes',
  'filter',
  'mapping',
  'authority',
  'matching',
  'onDelete',
  'usePut',
  'fullEverySeconds',
  'upstreamId',
  'schedule',
  'onLocalChange',
  'enabled',
] as const;
/** Optional fields a PATCH may clear with null. */
const CLEARABLE = [
  'filter',
  'mapping',
  'authority',
  'matching',
  'fullEverySeconds',
  'upstreamId',
  'schedule',
];

function toFlow(r: FlowRow): Flow {
  const f: Flow = {
    tenant: r.tenant_id,
    id: r.id,
    name: r.name,
    connectionId: r.connection_id,
    direction: r.direction,
    mode: r.mode,
    resourceTypes: r.resource_types,
    onDelete: r.on_delete,
    usePut: r.use_put,
    onLocalChange: r.on_local_change,
    enabled: r.enabled,
    created: r.created,
    updated: r.updated,
  };
  if (r.filter !== null) f.filter = r.filter;
  if (r.mapping !== null) f.mapping = r.mapping;
  if (r.authority !== null) f.authority = r.authority;
  if (r.matching !== null) f.matching = r.matching;
  if (r.full_every_seconds !== null) f.fullEverySeconds = r.full_every_seconds;
  if (r.upstream_id !== null) f.upstreamId = r.upstream_id;
  if (r.schedule !== null) f.schedule = r.schedule;
  return f;
}

/**
 * When a schedule (`[TZ=<zone> ]<cron>`, UTC by default) next fires after `from`, or undefined when
 * it never does: as the schedule trigger (src/sync/triggers/schedules.ts) reads it.
 */
export function nextRunOf(schedule: string, from = new Date()): Date | undefined {
  return nextScheduledRun(schedule, from);
}

export function flowView(f: Flow, state: FlowState = {}): FlowView {
  const v: FlowView = {
    tenant: f.tenant,
    id: f.id,
    name: f.name,
    connectionId: f.connectionId,
    direction: f.direction,
    mode: f.mode,
    resourceTypes: f.resourceTypes,
    onDelete: f.onDelete,
    usePut: f.usePut ?? false,
    onLocalChange: f.onLocalChange ?? false,
    enabled: f.enabled,
    state,
    created: f.created.toISOString(),
    updated: f.updated.toISOString(),
  };
  if (f.filter !== undefined) v.filter = f.filter;
  if (f.mapping !== undefined) v.mapping = f.mapping;
  if (f.authority !== undefined) v.authority = f.authority;
  if (f.matching !== undefined) v.matching = f.matching;
  if (f.fullEverySeconds !== undefined) v.fullEverySeconds = f.fullEverySeconds;
  if (f.upstreamId !== undefined) v.upstreamId = f.upstreamId;
  if (f.schedule !== undefined) {
    v.schedule = f.schedule;
    const next = f.enabled ? nextRunOf(f.schedule) : undefined;
    if (next) v.nextRun = next.toISOString();
  }
  return v;
}

// ------------------------------------------------------------------------------ validation

type Checked = Omit<Flow, 'tenant' | 'id' | 'created' | 'updated'>;

function checkSchedule(v: unknown): string {
  const text = nonEmptyString(v, 'schedule', 200).trim();
  try {
    parseSchedule(text);
  } catch (err) {
    throw bad(`schedule is invalid: ${(err as Error).message.replace(/^CronPattern: /, '')}`);
  }
  return text;
}

function pathList(v: unknown, what: string, uris: readonly string[], nonEmpty = false): string[] {
  if (!Array.isArray(v)) throw bad(`${what} must be an array of attribute paths`);
  if (nonEmpty && v.length === 0) throw bad(`${what} must not be empty`);
  return v.map((p, i) => attributePath(p, `${what}[${i}]`, uris));
}

const RULE_FORMS = '{from, to, transform?}, {attribute, transform}, {drop} or {set, value}';

function checkRule(v: unknown, what: string, uris: readonly string[]): MappingRule {
  if (!isObject(v)) throw bad(`${what} must be an object: one of ${RULE_FORMS}`);
  const forms = ['from', 'attribute', 'drop', 'set'].filter((k) => k in v || (k === 'from' && 'to' in v));
  if (forms.length !== 1) throw bad(`${what} must have exactly one of the forms ${RULE_FORMS}`);
  const transform = (t: unknown) => oneOf(t, `${what}.transform`, TRANSFORMS);
  switch (forms[0]) {
    case 'from': {
      object(v, what, ['from', 'to', 'transform']);
      if (v.from === undefined || v.to === undefined) throw bad(`${what} needs both from and to`);
      const rule: MappingRule = {
        from: attributePath(v.from, `${what}.from`, uris),
        to: attributePath(v.to, `${what}.to`, uris),
      };
      if (v.transform !== undefined) rule.transform = transform(v.transform);
      return rule;
    }
    case 'attribute':
      object(v, what, ['attribute', 'transform']);
      if (v.transform === undefined) throw bad(`${what} needs a transform`);
      return {
        attribute: attributePath(v.attribute, `${what}.attribute`, uris),
        transform: transform(v.transform),
      };
    case 'drop':
      object(v, what, ['drop']);
      return { drop: attributePath(v.drop, `${what}.drop`, uris) };
    default:
      object(v, what, ['set', 'value']);
      if (!('value' in v) || v.value === undefined) throw bad(`${what} needs a value`);
      return { set: attributePath(v.set, `${what}.set`, uris), value: v.value as JsonValue };
  }
}

export function checkMapping(v: unknown, uris: readonly string[]): FlowMapping {
  const m = object(v, 'mapping', ['only', 'rules']);
  if (!Array.isArray(m.rules)) throw bad('mapping.rules must be an array of rules');
  const out: FlowMapping = { rules: m.rules.map((r, i) => checkRule(r, `mapping.rules[${i}]`, uris)) };
  if (m.only !== undefined) out.only = pathList(m.only, 'mapping.only', uris);
  return out;
}

export function checkAuthority(v: unknown, uris: readonly string[]): FlowAuthority {
  const a = object(v, 'authority', ['default', 'local', 'remote', 'initial']);
  const out: FlowAuthority = {};
  if (a.default !== undefined)
    out.default = oneOf(a.default, 'authority.default', ['local', 'remote'] as const);
  const owners = new Map<string, string>();
  for (const list of ['local', 'remote', 'initial'] as const) {
    if (a[list] === undefined) continue;
    out[list] = pathList(a[list], `authority.${list}`, uris);
    for (const p of out[list]) {
      const other = owners.get(p.toLowerCase());
      if (other !== undefined && other !== list)
        throw bad(`authority: "${p}" is listed in both ${other} and ${list}`);
      owners.set(p.toLowerCase(), list);
    }
  }
  return out;
}

export function checkMatching(v: unknown, uris: readonly string[]): FlowMatching {
  const m = object(v, 'matching', ['attributes']);
  return { attributes: pathList(m.attributes, 'matching.attributes', uris, true) };
}

export class FlowService {
  constructor(
    private readonly db: Database,
    private readonly registry: SchemaRegistry,
  ) {}

  /** The tenant's settings; 404 for an unknown tenant. */
  private async tenantSettings(q: Queryable, tenant: string): Promise<TenantSettings> {
    const res = await q.query<{ settings: TenantSettings }>('SELECT settings FROM tenants WHERE id = $1', [
      tenant,
    ]);
    if (res.rows.length === 0) throw ScimError.notFound(`No tenant ${tenant}`);
    return res.rows[0].settings ?? {};
  }

  private async row(q: Queryable, tenant: string, id: string, lock = false): Promise<FlowRow | undefined> {
    const res = await q.query<FlowRow>(
      `SELECT ${COLUMNS} FROM sync_flows WHERE tenant_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`,
      [tenant, id],
    );
    return res.rows[0];
  }

  /** The flow (the engine's typed configuration), or undefined. */
  async get(tenant: string, id: string): Promise<Flow | undefined> {
    const r = await this.row(this.db, tenant, id);
    return r ? toFlow(r) : undefined;
  }

  /** The flow; 404 when the tenant or the flow is unknown. */
  async require(tenant: string, id: string): Promise<Flow> {
    await this.tenantSettings(this.db, tenant);
    const f = await this.get(tenant, id);
    if (!f) throw ScimError.notFound(`No flow ${id} in tenant ${tenant}`);
    return f;
  }

  /** The flow as the admin API shows it (404 when unknown). */
  async view(tenant: string, id: string): Promise<FlowView> {
    await this.tenantSettings(this.db, tenant);
    const r = await this.row(this.db, tenant, id);
    if (!r) throw ScimError.notFound(`No flow ${id} in tenant ${tenant}`);
    return flowView(toFlow(r), r.state);
  }

  /** The tenant's flows as views, optionally of one connection. */
  async list(tenant: string, opts: { connectionId?: string } = {}): Promise<FlowView[]> {
    await this.tenantSettings(this.db, tenant);
    const params: unknown[] = [tenant];
    let where = 'tenant_id = $1';
    if (opts.connectionId !== undefined) {
      params.push(opts.connectionId);
      where += ' AND connection_id = $2';
    }
    const res = await this.db.query<FlowRow>(
      `SELECT ${COLUMNS} FROM sync_flows WHERE ${where} ORDER BY created, id`,
      params,
    );
    return res.rows.map((r) => flowView(toFlow(r), r.state));
  }

  /** Every enabled flow of every tenant (schedulers, the runner). */
  async listEnabled(): Promise<Flow[]> {
    const res = await this.db.query<FlowRow>(
      `SELECT ${COLUMNS} FROM sync_flows WHERE enabled ORDER BY tenant_id, id`,
    );
    return res.rows.map(toFlow);
  }

  /** The tenant's enabled flows that move `resourceType` (its registry name), optionally of one direction. */
  async listByType(tenant: string, resourceType: string, direction?: FlowDirection): Promise<Flow[]> {
    const params: unknown[] = [tenant, this.registry.resourceType(resourceType)?.name ?? resourceType];
    if (direction) params.push(direction);
    const res = await this.db.query<FlowRow>(
      `SELECT ${COLUMNS} FROM sync_flows
        WHERE tenant_id = $1 AND enabled AND $2 = ANY (resource_types)${direction ? ' AND direction = $3' : ''}
        ORDER BY id`,
      params,
    );
    return res.rows.map(toFlow);
  }

  /** The tenant's enabled pull `events` flows fed by an upstream. */
  async listByUpstream(tenant: string, upstreamId: string): Promise<Flow[]> {
    const res = await this.db.query<FlowRow>(
      `SELECT ${COLUMNS} FROM sync_flows
        WHERE tenant_id = $1 AND enabled AND mode = 'events' AND upstream_id = $2 ORDER BY id`,
      [tenant, upstreamId],
    );
    return res.rows.map(toFlow);
  }

  async create(tenant: string, input: FlowInput): Promise<FlowView> {
    if (!isObject(input)) throw bad('The body must be an object');
    object(input, 'flow', INPUT_KEYS);
    const id = input.id === undefined ? randomUUID() : input.id;
    if (typeof id !== 'string' || !ID.test(id)) throw bad('id must be 1-64 characters of A-Z a-z 0-9 . _ -');
    for (const k of ['connectionId', 'direction', 'resourceTypes'] as const) {
      if (input[k] === undefined || input[k] === null) throw bad(`${k} is required`);
    }
    return this.db.transaction(async (tx) => {
      const settings = await this.tenantSettings(tx, tenant);
      const checked = await this.check(tx, tenant, settings, { ...input, name: input.name ?? id });
      try {
        await tx.query(
          `INSERT INTO sync_flows (tenant_id, id, connection_id, direction, name, mode, resource_types,
             filter, mapping, authority, matching, on_delete, use_put, full_every_seconds, upstream_id,
             schedule, on_local_change, enabled)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
          [tenant, id, checked.connectionId, checked.direction, ...values(checked)],
        );
      } catch (err) {
        if ((err as { code?: string }).code === '23505')
          throw ScimError.conflict(`Tenant ${tenant} already has a flow ${id}`);
        throw err;
      }
      const r = (await this.row(tx, tenant, id))!;
      return flowView(toFlow(r), r.state);
    });
  }

  async patch(tenant: string, id: string, patch: FlowPatch): Promise<FlowView> {
    if (!isObject(patch)) throw bad('The body must be an object');
    object(
      patch,
      'flow',
      INPUT_KEYS.filter((k) => k !== 'id'),
    );
    const given = Object.entries(patch).filter(([, v]) => v !== undefined);
    if (given.length === 0) throw bad('Nothing to change: give at least one field');
    for (const [k, v] of given) {
      if (v === null && !CLEARABLE.includes(k)) throw bad(`${k} cannot be cleared`);
    }
    return this.db.transaction(async (tx) => {
      const settings = await this.tenantSettings(tx, tenant);
      const r = await this.row(tx, tenant, id, true);
      if (!r) throw ScimError.notFound(`No flow ${id} in tenant ${tenant}`);
      const stored = toFlow(r);
      for (const k of ['connectionId', 'direction'] as const) {
        if (patch[k] !== undefined && patch[k] !== stored[k]) {
          throw new ScimError(
            400,
            'mutability',
            `${k} cannot change (the flow's links and position belong to its connection and direction): create another flow`,
          );
        }
      }
      const merged: Record<string, unknown> = { ...stored };
      for (const [k, v] of given) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      const checked = await this.check(tx, tenant, settings, merged as unknown as FlowInput);
      await tx.query(
        `UPDATE sync_flows SET name = $3, mode = $4, resource_types = $5, filter = $6, mapping = $7,
           authority = $8, matching = $9, on_delete = $10, use_put = $11, full_every_seconds = $12,
           upstream_id = $13, schedule = $14, on_local_change = $15, enabled = $16, updated = clock_timestamp()
         WHERE tenant_id = $1 AND id = $2`,
        [tenant, id, ...values(checked)],
      );
      const after = (await this.row(tx, tenant, id))!;
      return flowView(toFlow(after), after.state);
    });
  }

  /** Removes the flow with its links, runs and retries (the resources on both sides stay). */
  async delete(tenant: string, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.tenantSettings(tx, tenant);
      const res = await tx.query('DELETE FROM sync_flows WHERE tenant_id = $1 AND id = $2', [tenant, id]);
      if (res.rowCount === 0) throw ScimError.notFound(`No flow ${id} in tenant ${tenant}`);
    });
  }

  /** Every rule of a flow; `f` is the whole flow as it would be stored. */
  private async check(
    q: Queryable,
    tenant: string,
    settings: TenantSettings,
    f: FlowInput,
  ): Promise<Checked> {
    const uris = this.registry.schemaUris();
    const connectionId = nonEmptyString(f.connectionId, 'connectionId', 64);
    const conn = await q.query(
      'SELECT 1 FROM sync_connections WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE',
      [tenant, connectionId],
    );
    if (conn.rows.length === 0) throw bad(`connectionId: no connection ${connectionId} in tenant ${tenant}`);
    const direction = oneOf(f.direction, 'direction', DIRECTIONS);
    const allowed = MODES_BY_DIRECTION[direction];
    const mode = f.mode === undefined ? allowed[0] : oneOf(f.mode, 'mode', MODES);
    if (!allowed.includes(mode))
      throw bad(`mode "${mode}" is not for ${direction} flows (${direction}: ${allowed.join(', ')})`);

    if (!Array.isArray(f.resourceTypes) || f.resourceTypes.length === 0)
      throw bad('resourceTypes must be a non-empty array of resource type names');
    const enabled = settings.resourceTypes?.map((n) => n.toLowerCase());
    const resourceTypes = [
      ...new Set(
        f.resourceTypes.map((n, i) => {
          if (typeof n !== 'string') throw bad(`resourceTypes[${i}] must be a string`);
          const rt = this.registry.resourceType(n);
          if (!rt) throw bad(`resourceTypes: unknown resource type "${n}"`);
          if (enabled && !enabled.includes(rt.name.toLowerCase()))
            throw bad(`resourceTypes: ${rt.name} is not enabled for tenant ${tenant}`);
          return rt.name;
        }),
      ),
    ];

    const out: Checked = {
      name: nonEmptyString(f.name, 'name', 200),
      connectionId,
      direction,
      mode,
      resourceTypes,
      onDelete: f.onDelete === undefined ? 'delete' : oneOf(f.onDelete, 'onDelete', DELETE_ACTIONS),
      usePut: f.usePut === undefined ? false : boolean(f.usePut, 'usePut'),
      onLocalChange: f.onLocalChange === undefined ? false : boolean(f.onLocalChange, 'onLocalChange'),
      enabled: f.enabled === undefined ? true : boolean(f.enabled, 'enabled'),
    };
    if (f.filter !== undefined && f.filter !== null) {
      out.filter = this.checkFilter(nonEmptyString(f.filter, 'filter', 10_000), direction, resourceTypes);
    }
    if (f.mapping != null) out.mapping = checkMapping(f.mapping, uris);
    if (f.authority != null) out.authority = checkAuthority(f.authority, uris);
    if (f.matching != null) out.matching = checkMatching(f.matching, uris);
    if (f.schedule != null) out.schedule = checkSchedule(f.schedule);
    if (f.fullEverySeconds != null) {
      out.fullEverySeconds = integer(
        f.fullEverySeconds,
        'fullEverySeconds',
        MIN_FULL_EVERY_SECONDS,
        31_536_000,
      );
      if (!(direction === 'pull' && mode === 'delta'))
        throw bad('fullEverySeconds applies to pull flows of mode delta only');
    }
    if (out.usePut && direction !== 'push') throw bad('usePut applies to push flows only');
    if (out.onLocalChange && !(direction === 'push' && mode === 'changes'))
      throw bad('onLocalChange applies to push flows of mode changes only');
    if (mode === 'events') {
      if (f.upstreamId == null) throw bad('upstreamId is required for pull flows of mode events');
      const upstreamId = nonEmptyString(f.upstreamId, 'upstreamId', 128);
      const up = await q.query('SELECT 1 FROM upstreams WHERE tenant_id = $1 AND id = $2', [
        tenant,
        upstreamId,
      ]);
      if (up.rows.length === 0) throw bad(`upstreamId: no upstream ${upstreamId} in tenant ${tenant}`);
      out.upstreamId = upstreamId;
    } else if (f.upstreamId != null) {
      throw bad('upstreamId applies to pull flows of mode events only');
    }
    return out;
  }

  /**
   * The filter must parse. A push flow's filter runs here, so it must also bind to at least one
   * of the flow's resource types (an attribute no type has is a typo).
   */
  private checkFilter(text: string, direction: FlowDirection, types: string[]): string {
    let parsed;
    try {
      parsed = parseFilter(text, { schemaUris: this.registry.schemaUris() });
    } catch (err) {
      if (err instanceof ScimError) throw ScimError.badRequest('invalidFilter', `filter: ${err.detail}`);
      throw err;
    }
    if (direction === 'push') {
      let first: ScimError | undefined;
      for (const name of types) {
        try {
          bindFilter(this.registry, this.registry.resourceType(name)!, parsed);
          return text;
        } catch (err) {
          if (!(err instanceof ScimError)) throw err;
          first ??= err;
        }
      }
      if (first) throw ScimError.badRequest('invalidFilter', `filter: ${first.detail}`);
    }
    return text;
  }
}

function values(f: Checked): unknown[] {
  return [
    f.name,
    f.mode,
    f.resourceTypes,
    f.filter ?? null,
    f.mapping ? JSON.stringify(f.mapping) : null,
    f.authority ? JSON.stringify(f.authority) : null,
    f.matching ? JSON.stringify(f.matching) : null,
    f.onDelete,
    f.usePut ?? false,
    f.fullEverySeconds ?? null,
    f.upstreamId ?? null,
    f.schedule ?? null,
    f.onLocalChange ?? false,
    f.enabled,
  ];
}
