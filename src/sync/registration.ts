/**
 * Automatic registration of a customer's endpoint for the registry push (use-case behaviour 31),
 * manufacturer side. A tenant publishes a **registration template**: the push flow each registering
 * customer gets (its filter names the customer with `{customer}`, e.g.
 * `externalId sw "{customer}:"`) and connection defaults. A customer registers its SCIM endpoint
 * and a bearer token for it (POST /admin/v1/tenants/{t}/registrations); the tenant then holds a
 * connection and a push flow, both with id `reg-<customer>`, and a run of the flow is requested,
 * so the customer's devices arrive without anyone configuring the connection by hand.
 *
 * - The customer is the registering client's id (a client with scope `register`); the tenant's
 *   admin or the operator may register any customer by naming it.
 * - Idempotent: registering again updates the connection (URL, token) and the flow (from the
 *   current template) instead of adding new ones. When the base URL changes, the flow is made
 *   anew (its links and position belonged to the old endpoint).
 * - One transaction per registration; the token is stored like other connection secrets
 *   (write-only, never shown). SCIMD_SYNC_REQUIRE_TLS applies to the base URL.
 */
import { bindFilter } from '../scim/filter/bind.ts';
import { parseFilter } from '../scim/filter/parser.ts';
import { ScimError } from '../scim/errors.ts';
import type { SchemaRegistry } from '../scim/schema/registry.ts';
import { secretBoxFor } from '../security/secret-box.ts';
import type { Database, Queryable } from '../store/db.ts';
import { checkCompat, MAX_TIMEOUT_MS } from './connections.ts';
import { bad, boolean, httpUrl, integer, isObject, nonEmptyString, object, oneOf } from './config-check.ts';
import { checkAuthority, checkMapping, checkMatching, DELETE_ACTIONS } from './flows.ts';
import { plainHttpReason } from './tls-policy.ts';
import { parseSchedule } from './triggers/schedules.ts';
import type { DeleteAction, FlowAuthority, FlowMapping, FlowMatching } from './types.ts';

/** The push flow a registering customer gets; `filter` may hold `{customer}`. */
export interface FlowTemplate {
  resourceTypes: string[];
  mode: 'changes' | 'full';
  filter?: string;
  mapping?: FlowMapping;
  authority?: FlowAuthority;
  matching?: FlowMatching;
  onDelete?: DeleteAction;
  usePut?: boolean;
  schedule?: string;
  onLocalChange?: boolean;
}

export interface RegistrationTemplate {
  flow: FlowTemplate;
  connection: { compat?: Record<string, unknown>; timeoutMs?: number };
  enabled: boolean;
}

export interface TemplateView extends RegistrationTemplate {
  tenant: string;
  created: string;
  updated: string;
}

export interface RegistrationInput {
  /** The customer's SCIM base URL (its tenant on its device manager). */
  baseUrl: string;
  /** A bearer token of the customer's endpoint, for the manufacturer's pushes. */
  token: string;
  /** Only for the tenant's admin or the operator: the customer to register. */
  customer?: string;
}

export interface RegistrationView {
  tenant: string;
  customer: string;
  connectionId: string;
  flowId: string;
  baseUrl: string;
  registeredBy: string;
  created: string;
  updated: string;
}

export interface RegistrationResult extends RegistrationView {
  /** True when this call registered the customer for the first time. */
  new: boolean;
}

const CUSTOMER = /^[A-Za-z0-9._-]{1,60}$/;
const FLOW_KEYS = [
  'resourceTypes',
  'mode',
  'filter',
  'mapping',
  'authority',
  'matching',
  'onDelete',
  'usePut',
  'schedule',
  'onLocalChange',
] as const;

export function checkCustomer(v: unknown): string {
  if (typeof v !== 'string' || !CUSTOMER.test(v))
    throw bad('customer must be 1-60 characters of A-Z a-z 0-9 . _ -');
  return v;
}

/** The template's filter for one customer (its id has no quote or backslash: safe in a string literal). */
export function filterFor(filter: string, customer: string): string {
  return filter.split('{customer}').join(customer);
}

/** Checks a template as given to PUT; throws 400 errors naming the field. */
export function checkTemplate(v: unknown, registry: SchemaRegistry): RegistrationTemplate {
  const t = object(v, 'template', ['flow', 'connection', 'enabled']);
  if (t.flow === undefined) throw bad('flow is required');
  const f = object(t.flow, 'flow', FLOW_KEYS);
  const uris = registry.schemaUris();
  const types = f.resourceTypes === undefined ? ['Device'] : f.resourceTypes;
  if (!Array.isArray(types) || types.length === 0)
    throw bad('flow.resourceTypes must be a non-empty array of resource type names');
  const flow: FlowTemplate = {
    resourceTypes: [
      ...new Set(
        types.map((n, i) => {
          const rt = typeof n === 'string' ? registry.resourceType(n) : undefined;
          if (!rt) throw bad(`flow.resourceTypes[${i}]: unknown resource type "${String(n)}"`);
          return rt.name;
        }),
      ),
    ],
    mode: f.mode === undefined ? 'changes' : oneOf(f.mode, 'flow.mode', ['changes', 'full'] as const),
  };
  if (f.filter !== undefined) {
    const text = nonEmptyString(f.filter, 'flow.filter', 10_000);
    if (!text.includes('{customer}'))
      throw bad('flow.filter must name the customer with {customer} (each customer gets only its devices)');
    let parsed;
    try {
      parsed = parseFilter(filterFor(text, 'customer'), { schemaUris: uris });
    } catch (err) {
      if (err instanceof ScimError) throw ScimError.badRequest('invalidFilter', `flow.filter: ${err.detail}`);
      throw err;
    }
    let bound = false;
    let first: ScimError | undefined;
    for (const name of flow.resourceTypes) {
      try {
        bindFilter(registry, registry.resourceType(name)!, parsed);
        bound = true;
        break;
      } catch (err) {
        if (!(err instanceof ScimError)) throw err;
        first ??= err;
      }
    }
    if (!bound && first) throw ScimError.badRequest('invalidFilter', `flow.filter: ${first.detail}`);
    flow.filter = text;
  } else {
    throw bad('flow.filter is required: it must name the customer with {customer}');
  }
  if (f.mapping !== undefined) flow.mapping = checkMapping(f.mapping, uris);
  if (f.authority !== undefined) flow.authority = checkAuthority(f.authority, uris);
  if (f.matching !== undefined) flow.matching = checkMatching(f.matching, uris);
  if (f.onDelete !== undefined) flow.onDelete = oneOf(f.onDelete, 'flow.onDelete', DELETE_ACTIONS);
  if (f.usePut !== undefined) flow.usePut = boolean(f.usePut, 'flow.usePut');
  if (f.schedule !== undefined) {
    const text = nonEmptyString(f.schedule, 'flow.schedule', 200).trim();
    try {
      parseSchedule(text);
    } catch (err) {
      throw bad(`flow.schedule is invalid: ${(err as Error).message.replace(/^CronPattern: /, '')}`);
    }
    flow.schedule = text;
  }
  if (f.onLocalChange !== undefined) {
    flow.onLocalChange = boolean(f.onLocalChange, 'flow.onLocalChange');
    if (flow.onLocalChange && flow.mode !== 'changes')
      throw bad('flow.onLocalChange applies to mode changes only');
  }
  const connection: RegistrationTemplate['connection'] = {};
  if (t.connection !== undefined) {
    const c = object(t.connection, 'connection', ['compat', 'timeoutMs']);
    if (c.compat !== undefined) connection.compat = checkCompat(c.compat) as Record<string, unknown>;
    if (c.timeoutMs !== undefined)
      connection.timeoutMs = integer(c.timeoutMs, 'connection.timeoutMs', 1, MAX_TIMEOUT_MS);
  }
  return { flow, connection, enabled: t.enabled === undefined ? true : boolean(t.enabled, 'enabled') };
}

interface TemplateRow {
  tenant_id: string;
  flow: FlowTemplate;
  connection: RegistrationTemplate['connection'];
  enabled: boolean;
  created: Date;
  updated: Date;
}

interface RegistrationRow {
  tenant_id: string;
  customer: string;
  connection_id: string;
  flow_id: string;
  registered_by: string;
  base_url: string;
  created: Date;
  updated: Date;
}

const templateView = (r: TemplateRow): TemplateView => ({
  tenant: r.tenant_id,
  flow: r.flow,
  connection: r.connection,
  enabled: r.enabled,
  created: new Date(r.created).toISOString(),
  updated: new Date(r.updated).toISOString(),
});

const registrationView = (r: RegistrationRow): RegistrationView => ({
  tenant: r.tenant_id,
  customer: r.customer,
  connectionId: r.connection_id,
  flowId: r.flow_id,
  baseUrl: r.base_url,
  registeredBy: r.registered_by,
  created: new Date(r.created).toISOString(),
  updated: new Date(r.updated).toISOString(),
});

const REG_SELECT = `SELECT r.tenant_id, r.customer, r.connection_id, r.flow_id, r.registered_by, r.created, r.updated,
    c.base_url FROM sync_registrations r
    JOIN sync_connections c ON c.tenant_id = r.tenant_id AND c.id = r.connection_id`;

/** The id of the connection and the flow made for a customer. */
export const registrationId = (customer: string) => `reg-${customer}`;

export interface RegistrationDeps {
  db: Database;
  registry: SchemaRegistry;
  /** SCIMD_SYNC_REQUIRE_TLS */
  requireTls: boolean;
  /** Requests a run of the customer's flow after it was registered (syncTriggers.requestRun). */
  requestRun: (tenant: string, flowId: string) => Promise<boolean>;
}

export class RegistrationService {
  constructor(private readonly deps: RegistrationDeps) {}

  private async requireTenant(q: Queryable, tenant: string): Promise<void> {
    const res = await q.query('SELECT 1 FROM tenants WHERE id = $1', [tenant]);
    if (res.rows.length === 0) throw ScimError.notFound(`No tenant ${tenant}`);
  }

  async getTemplate(tenant: string): Promise<TemplateView> {
    await this.requireTenant(this.deps.db, tenant);
    const res = await this.deps.db.query<TemplateRow>(
      'SELECT * FROM sync_registration_templates WHERE tenant_id = $1',
      [tenant],
    );
    if (!res.rows[0]) throw ScimError.notFound(`Tenant ${tenant} publishes no registration template`);
    return templateView(res.rows[0]);
  }

  /** Creates or replaces the template (registered customers get it at their next registration). */
  async putTemplate(tenant: string, input: unknown): Promise<{ view: TemplateView; created: boolean }> {
    if (!isObject(input)) throw bad('The body must be an object');
    const t = checkTemplate(input, this.deps.registry);
    return this.deps.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      const res = await tx.query<TemplateRow & { inserted: boolean }>(
        `INSERT INTO sync_registration_templates (tenant_id, flow, connection, enabled) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO UPDATE SET flow = excluded.flow, connection = excluded.connection,
           enabled = excluded.enabled, updated = clock_timestamp()
         RETURNING *, (xmax = 0) AS inserted`,
        [tenant, JSON.stringify(t.flow), JSON.stringify(t.connection), t.enabled],
      );
      const row = res.rows[0];
      return { view: templateView(row), created: row.inserted };
    });
  }

  /** Removes the template (registered customers keep their connection and flow). */
  async deleteTemplate(tenant: string): Promise<void> {
    await this.requireTenant(this.deps.db, tenant);
    const res = await this.deps.db.query('DELETE FROM sync_registration_templates WHERE tenant_id = $1', [
      tenant,
    ]);
    if (res.rowCount === 0) throw ScimError.notFound(`Tenant ${tenant} publishes no registration template`);
  }

  async list(tenant: string): Promise<RegistrationView[]> {
    await this.requireTenant(this.deps.db, tenant);
    const res = await this.deps.db.query<RegistrationRow>(
      `${REG_SELECT} WHERE r.tenant_id = $1 ORDER BY r.customer`,
      [tenant],
    );
    return res.rows.map(registrationView);
  }

  async get(tenant: string, customer: string): Promise<RegistrationView> {
    await this.requireTenant(this.deps.db, tenant);
    const res = await this.deps.db.query<RegistrationRow>(
      `${REG_SELECT} WHERE r.tenant_id = $1 AND r.customer = $2`,
      [tenant, customer],
    );
    if (!res.rows[0])
      throw ScimError.notFound(`Customer ${customer} is not registered with tenant ${tenant}`);
    return registrationView(res.rows[0]);
  }

  /**
   * Registers (or registers again) `customer`'s endpoint: the connection and the push flow
   * `reg-<customer>` from the template, in one transaction; then requests a run of the flow.
   * `by` is the registering client (for the record).
   */
  async register(tenant: string, customer: string, input: unknown, by: string): Promise<RegistrationResult> {
    checkCustomer(customer);
    const b = object(input, 'registration', ['baseUrl', 'token', 'customer']);
    if (b.baseUrl === undefined) throw bad('baseUrl is required');
    if (b.token === undefined) throw bad('token is required');
    const baseUrl = httpUrl(b.baseUrl, 'baseUrl');
    const token = nonEmptyString(b.token, 'token', 8000);
    // eslint-disable-next-line no-control-regex -- control characters are what it looks for
    if (/[\s\x00-\x1f\x7f]/.test(token)) throw bad('token must not contain blanks or control characters');
    if (this.deps.requireTls) {
      const reason = plainHttpReason(baseUrl, 'baseUrl');
      if (reason) throw bad(reason);
    }
    const id = registrationId(customer);
    const result = await this.deps.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      const tpl = await tx.query<TemplateRow>(
        'SELECT * FROM sync_registration_templates WHERE tenant_id = $1 FOR SHARE',
        [tenant],
      );
      const template = tpl.rows[0];
      if (!template) throw ScimError.notFound(`Tenant ${tenant} publishes no registration template`);
      if (!template.enabled)
        throw new ScimError(403, undefined, `Tenant ${tenant} does not accept registrations now`);
      const known = await tx.query<{ connection_id: string }>(
        'SELECT connection_id FROM sync_registrations WHERE tenant_id = $1 AND customer = $2 FOR UPDATE',
        [tenant, customer],
      );
      const isNew = known.rows.length === 0;
      const existing = await tx.query<{ base_url: string }>(
        'SELECT base_url FROM sync_connections WHERE tenant_id = $1 AND id = $2 FOR UPDATE',
        [tenant, id],
      );
      if (isNew && existing.rows.length > 0)
        throw ScimError.conflict(
          `Tenant ${tenant} already has a connection ${id} made by hand: remove or rename it first`,
        );
      const flowTaken = await tx.query<{ connection_id: string }>(
        'SELECT connection_id FROM sync_flows WHERE tenant_id = $1 AND id = $2',
        [tenant, id],
      );
      if (isNew && flowTaken.rows.length > 0)
        throw ScimError.conflict(
          `Tenant ${tenant} already has a flow ${id} made by hand: remove or rename it first`,
        );
      // Sealed like every connection secret (connections.ts mapSecrets).
      const sealed = secretBoxFor(this.deps.db).seal(token, {
        table: 'sync_connections',
        tenant,
        row: id,
        field: 'auth.token',
      });
      const auth = JSON.stringify({ type: 'bearer', token: sealed });
      const compat = template.connection.compat ? JSON.stringify(template.connection.compat) : null;
      const timeout = template.connection.timeoutMs ?? null;
      const moved = existing.rows[0] !== undefined && existing.rows[0].base_url !== baseUrl;
      if (moved) {
        // A new endpoint: the flow's links and position belonged to the old one.
        await tx.query('DELETE FROM sync_flows WHERE tenant_id = $1 AND id = $2', [tenant, id]);
      }
      await tx.query(
        `INSERT INTO sync_connections (tenant_id, id, name, base_url, auth, compat, timeout_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, id) DO UPDATE SET base_url = excluded.base_url, auth = excluded.auth,
           compat = excluded.compat, timeout_ms = excluded.timeout_ms, updated = clock_timestamp()`,
        [tenant, id, `customer ${customer} (registered)`, baseUrl, auth, compat, timeout],
      );
      const f = template.flow;
      await tx.query(
        `INSERT INTO sync_flows (tenant_id, id, connection_id, direction, name, mode, resource_types, filter,
           mapping, authority, matching, on_delete, use_put, schedule, on_local_change, enabled)
         VALUES ($1, $2, $2, 'push', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, true)
         ON CONFLICT (tenant_id, id) DO UPDATE SET mode = excluded.mode, resource_types = excluded.resource_types,
           filter = excluded.filter, mapping = excluded.mapping, authority = excluded.authority,
           matching = excluded.matching, on_delete = excluded.on_delete, use_put = excluded.use_put,
           schedule = excluded.schedule, on_local_change = excluded.on_local_change, enabled = true,
           updated = clock_timestamp()`,
        [
          tenant,
          id,
          `registry push to customer ${customer}`,
          f.mode,
          f.resourceTypes,
          f.filter ? filterFor(f.filter, customer) : null,
          f.mapping ? JSON.stringify(f.mapping) : null,
          f.authority ? JSON.stringify(f.authority) : null,
          f.matching ? JSON.stringify(f.matching) : null,
          f.onDelete ?? 'delete',
          f.usePut ?? false,
          f.schedule ?? null,
          f.onLocalChange ?? false,
        ],
      );
      await tx.query(
        `INSERT INTO sync_registrations (tenant_id, customer, connection_id, flow_id, registered_by)
         VALUES ($1, $2, $3, $3, $4)
         ON CONFLICT (tenant_id, customer) DO UPDATE SET registered_by = excluded.registered_by,
           updated = clock_timestamp()`,
        [tenant, customer, id, by],
      );
      const row = await tx.query<RegistrationRow>(
        `${REG_SELECT} WHERE r.tenant_id = $1 AND r.customer = $2`,
        [tenant, customer],
      );
      return { ...registrationView(row.rows[0]), new: isNew };
    });
    await this.deps.requestRun(tenant, id);
    return result;
  }

  /** Removes a customer's registration with its flow and connection (the customer's data stays). */
  async unregister(tenant: string, customer: string): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      const res = await tx.query<{ connection_id: string; flow_id: string }>(
        'DELETE FROM sync_registrations WHERE tenant_id = $1 AND customer = $2 RETURNING connection_id, flow_id',
        [tenant, customer],
      );
      if (!res.rows[0])
        throw ScimError.notFound(`Customer ${customer} is not registered with tenant ${tenant}`);
      await tx.query('DELETE FROM sync_flows WHERE tenant_id = $1 AND id = $2', [
        tenant,
        res.rows[0].flow_id,
      ]);
      const others = await tx.query<{ id: string }>(
        'SELECT id FROM sync_flows WHERE tenant_id = $1 AND connection_id = $2 ORDER BY id',
        [tenant, res.rows[0].connection_id],
      );
      if (others.rows.length > 0)
        throw new ScimError(
          409,
          'mutability',
          `Connection ${res.rows[0].connection_id} is also used by flow(s) ${others.rows.map((r) => r.id).join(', ')}: remove them first`,
        );
      await tx.query('DELETE FROM sync_connections WHERE tenant_id = $1 AND id = $2', [
        tenant,
        res.rows[0].connection_id,
      ]);
    });
  }
}
