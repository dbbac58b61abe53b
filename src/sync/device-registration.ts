/**
 * Automatic registration of a customer's endpoint (use-case behaviour 31), customer side. A tenant
 * of a device manager names the manufacturers it buys from: the MUD URL prefix their devices
 * announce (RFC 8520: a device emits the URL of its manufacturer's MUD file), the manufacturer's
 * registration URL (`POST …/admin/v1/tenants/{t}/registrations` of a scimd manufacturer) and the
 * credential the manufacturer gave this customer for it (a client with scope `register`).
 *
 * When a device contacts the device manager — its Device record is written to the tenant, by an
 * onboarding app, a gateway or an import — with a `mudUrl` under a manufacturer's prefix, and that
 * manufacturer is not registered yet, the node registers:
 *   1. a client of the tenant for the manufacturer (`manufacturer-<id>` unless configured), with
 *      scopes Device:read, Device:write and devices:secrets, and a fresh token of it;
 *   2. POST to the registration URL: `{"baseUrl": <this tenant's SCIM URL>, "token": <that token>}`;
 *   3. on success the manufacturer creates the connection and push flow for this customer and runs
 *      it: its devices of this customer arrive. The previous token of an earlier registration is
 *      revoked; on failure the new token is revoked and the error is kept (`lastError`), and the next
 *      device write retries (at most every 30 s).
 * `POST …/manufacturers/{id}/register` registers at once (again: a fresh token, the old one revoked).
 */
import type { AdminService } from '../admin/service.ts';
import type { LimitsConfig } from '../config.ts';
import { ScimError } from '../scim/errors.ts';
import type { SchemaRegistry } from '../scim/schema/registry.ts';
import type { ResourceChange, ResourceService } from '../service/resources.ts';
import { secretBoxFor } from '../security/secret-box.ts';
import type { Database, Queryable } from '../store/db.ts';
import { bad, httpUrl, nonEmptyString, object } from './config-check.ts';
import { plainHttpReason } from './tls-policy.ts';

export const MANUFACTURER_SCOPES = ['Device:read', 'Device:write', 'devices:secrets'];
const ID = /^[A-Za-z0-9._-]{1,64}$/;
const RETRY_MS = 30_000;

export interface ManufacturerInput {
  /** Devices whose mudUrl starts with this belong to the manufacturer. */
  mudUrlPrefix: string;
  /** The manufacturer's registration endpoint. */
  registrationUrl: string;
  /** The manufacturer's credential for it (write-only). Required on creation. */
  token?: string;
  /** This tenant's SCIM base URL as the manufacturer reaches it (default: SCIMD_BASE_URL's). */
  scimBaseUrl?: string | null;
  /** The client the manufacturer pushes as (default manufacturer-<id>). */
  clientId?: string;
}

export type ManufacturerStatus = 'pending' | 'registered' | 'failed';

export interface ManufacturerView {
  tenant: string;
  id: string;
  mudUrlPrefix: string;
  registrationUrl: string;
  tokenSet: boolean;
  scimBaseUrl?: string;
  clientId: string;
  status: ManufacturerStatus;
  registeredAt?: string;
  lastError?: string;
  created: string;
  updated: string;
}

interface Row {
  tenant_id: string;
  id: string;
  mud_url_prefix: string;
  registration_url: string;
  token: string;
  scim_base_url: string | null;
  client_id: string;
  status: ManufacturerStatus;
  registered_at: Date | null;
  token_id: string | null;
  last_error: string | null;
  created: Date;
  updated: Date;
}

function view(r: Row): ManufacturerView {
  const v: ManufacturerView = {
    tenant: r.tenant_id,
    id: r.id,
    mudUrlPrefix: r.mud_url_prefix,
    registrationUrl: r.registration_url,
    tokenSet: r.token !== '',
    clientId: r.client_id,
    status: r.status,
    created: new Date(r.created).toISOString(),
    updated: new Date(r.updated).toISOString(),
  };
  if (r.scim_base_url !== null) v.scimBaseUrl = r.scim_base_url;
  if (r.registered_at !== null) v.registeredAt = new Date(r.registered_at).toISOString();
  if (r.last_error !== null) v.lastError = r.last_error;
  return v;
}

const tokenPlace = (tenant: string, id: string) => ({
  table: 'device_manufacturers',
  tenant,
  row: id,
  field: 'token',
});

export interface DeviceRegistrationDeps {
  db: Database;
  admin: AdminService;
  service: ResourceService;
  registry: SchemaRegistry;
  limits: LimitsConfig;
  /** SCIMD_BASE_URL: the tenant's SCIM URL is derived from it when a manufacturer has no scimBaseUrl. */
  baseUrl?: string;
  requireTls: boolean;
  log?: { error(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  /** Milliseconds device writes are gathered before the check (default 200). */
  debounceMs?: number;
}

export class DeviceRegistration {
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /**
   * Tenants found with no manufacturer waiting, and when (rechecked after 30 s: another node may
   * have added one; a change on this node clears the entry at once).
   */
  private readonly idle = new Map<string, number>();
  private stopped = false;

  constructor(private readonly deps: DeviceRegistrationDeps) {}

  /** The manufacturer credential as stored: sealed (src/security/secret-box.ts). */
  private sealToken(tenant: string, id: string, token: string): string {
    return secretBoxFor(this.deps.db).seal(token, tokenPlace(tenant, id));
  }

  private async requireTenant(q: Queryable, tenant: string): Promise<void> {
    const res = await q.query('SELECT 1 FROM tenants WHERE id = $1', [tenant]);
    if (res.rows.length === 0) throw ScimError.notFound(`No tenant ${tenant}`);
  }

  private async row(q: Queryable, tenant: string, id: string, lock = false): Promise<Row | undefined> {
    const res = await q.query<Row>(
      `SELECT * FROM device_manufacturers WHERE tenant_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`,
      [tenant, id],
    );
    return res.rows[0];
  }

  async list(tenant: string): Promise<ManufacturerView[]> {
    await this.requireTenant(this.deps.db, tenant);
    const res = await this.deps.db.query<Row>(
      'SELECT * FROM device_manufacturers WHERE tenant_id = $1 ORDER BY id',
      [tenant],
    );
    return res.rows.map(view);
  }

  async get(tenant: string, id: string): Promise<ManufacturerView> {
    await this.requireTenant(this.deps.db, tenant);
    const r = await this.row(this.deps.db, tenant, id);
    if (!r) throw ScimError.notFound(`No manufacturer ${id} in tenant ${tenant}`);
    return view(r);
  }

  /** Creates or changes a manufacturer (PUT). A token not given keeps the stored one. */
  async put(
    tenant: string,
    id: string,
    input: unknown,
  ): Promise<{ view: ManufacturerView; created: boolean }> {
    if (typeof id !== 'string' || !ID.test(id)) throw bad('id must be 1-64 characters of A-Z a-z 0-9 . _ -');
    const b = object(input, 'manufacturer', [
      'mudUrlPrefix',
      'registrationUrl',
      'token',
      'scimBaseUrl',
      'clientId',
    ]);
    const prefix = nonEmptyString(b.mudUrlPrefix, 'mudUrlPrefix', 2000);
    if (/["\\]/.test(prefix) || !/^https?:\/\/[^/\s]+/i.test(prefix))
      throw bad('mudUrlPrefix must be the start of an http(s) URL, e.g. https://mfr.example/mud/');
    const registrationUrl = httpUrl(b.registrationUrl, 'registrationUrl');
    const scimBaseUrl = b.scimBaseUrl == null ? null : httpUrl(b.scimBaseUrl, 'scimBaseUrl');
    const clientId =
      b.clientId === undefined ? `manufacturer-${id}` : nonEmptyString(b.clientId, 'clientId', 64);
    if (!ID.test(clientId)) throw bad('clientId must be 1-64 characters of A-Z a-z 0-9 . _ -');
    let token: string | undefined;
    if (b.token !== undefined) {
      token = nonEmptyString(b.token, 'token', 8000);
      // eslint-disable-next-line no-control-regex -- control characters are what it looks for
      if (/[\s\x00-\x1f\x7f]/.test(token)) throw bad('token must not contain blanks or control characters');
    }
    if (this.deps.requireTls) {
      for (const [url, what] of [
        [registrationUrl, 'registrationUrl'],
        [scimBaseUrl, 'scimBaseUrl'],
      ] as const) {
        const reason = url ? plainHttpReason(url, what) : undefined;
        if (reason)
          throw bad(reason.replace('for sync connections', 'for sync connections and registrations'));
      }
    }
    const out = await this.deps.db.transaction(async (tx) => {
      await this.requireTenant(tx, tenant);
      const old = await this.row(tx, tenant, id, true);
      if (!old) {
        if (token === undefined) throw bad('token is required');
        await tx.query(
          `INSERT INTO device_manufacturers (tenant_id, id, mud_url_prefix, registration_url, token, scim_base_url, client_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [tenant, id, prefix, registrationUrl, this.sealToken(tenant, id, token), scimBaseUrl, clientId],
        );
      } else {
        // Another manufacturer endpoint or client: register again at the next device.
        const moved = old.registration_url !== registrationUrl || old.client_id !== clientId;
        await tx.query(
          `UPDATE device_manufacturers SET mud_url_prefix = $3, registration_url = $4, token = $5, scim_base_url = $6,
             client_id = $7, status = $8, updated = clock_timestamp() WHERE tenant_id = $1 AND id = $2`,
          [
            tenant,
            id,
            prefix,
            registrationUrl,
            token === undefined ? old.token : this.sealToken(tenant, id, token),
            scimBaseUrl,
            clientId,
            moved ? 'pending' : old.status,
          ],
        );
      }
      return { view: view((await this.row(tx, tenant, id))!), created: !old };
    });
    this.idle.delete(tenant);
    return out;
  }

  async delete(tenant: string, id: string): Promise<void> {
    await this.requireTenant(this.deps.db, tenant);
    const res = await this.deps.db.query(
      'DELETE FROM device_manufacturers WHERE tenant_id = $1 AND id = $2',
      [tenant, id],
    );
    if (res.rowCount === 0) throw ScimError.notFound(`No manufacturer ${id} in tenant ${tenant}`);
  }

  /** This tenant's SCIM base URL for a manufacturer. */
  private scimBase(r: Row): string {
    if (r.scim_base_url) return r.scim_base_url;
    if (!this.deps.baseUrl)
      throw bad(
        `manufacturer ${r.id}: scimBaseUrl is not set and the node has no SCIMD_BASE_URL to derive this tenant's SCIM URL from`,
      );
    const base = this.deps.baseUrl.replace(/\/+$/, '');
    return r.tenant_id === 'default'
      ? `${base}/scim/v2`
      : `${base}/tenants/${encodeURIComponent(r.tenant_id)}/scim/v2`;
  }

  /**
   * Registers this tenant with a manufacturer now: a fresh token for the manufacturer's client,
   * sent with this tenant's SCIM URL. Throws 502 with the manufacturer's answer when it refuses.
   */
  async register(tenant: string, id: string): Promise<ManufacturerView> {
    await this.requireTenant(this.deps.db, tenant);
    const r = await this.row(this.deps.db, tenant, id);
    if (!r) throw ScimError.notFound(`No manufacturer ${id} in tenant ${tenant}`);
    const scimBaseUrl = this.scimBase(r);
    const { admin } = this.deps;
    try {
      const client = await admin.getClient(tenant, r.client_id);
      const missing = MANUFACTURER_SCOPES.filter(
        (s) => !client.scopes.map((x) => x.toLowerCase()).includes(s.toLowerCase()),
      );
      if (missing.length > 0)
        throw new ScimError(
          409,
          'mutability',
          `Client ${r.client_id} exists without scope(s) ${missing.join(', ')}: give them or name another clientId`,
        );
    } catch (err) {
      if (!(err instanceof ScimError) || err.status !== 404) throw err;
      await admin.createClient(tenant, {
        id: r.client_id,
        name: `manufacturer ${id} (registry push)`,
        scopes: MANUFACTURER_SCOPES,
      });
    }
    const issued = await admin.issueToken(tenant, r.client_id, {
      description: `registry push of manufacturer ${id}`,
    });
    let failure: string | undefined;
    try {
      const res = await fetch(r.registration_url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${secretBoxFor(this.deps.db).open(r.token, tokenPlace(tenant, id))}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify({ baseUrl: scimBaseUrl, token: issued.token }),
        signal: AbortSignal.timeout(15_000),
      });
      if (res.status !== 200 && res.status !== 201) {
        const text = await res.text();
        let detail = text.slice(0, 500);
        try {
          const body = JSON.parse(text) as { detail?: unknown };
          if (typeof body.detail === 'string') detail = body.detail;
        } catch {
          // not JSON
        }
        failure = `the manufacturer answered ${res.status}: ${detail}`;
      } else {
        await res.body?.cancel();
      }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      failure = `the manufacturer cannot be reached: ${e.cause?.code ?? e.cause?.message ?? e.message}`;
    }
    if (failure) {
      await admin.revokeToken(tenant, issued.id).catch(() => undefined);
      await this.deps.db.query(
        `UPDATE device_manufacturers SET status = CASE WHEN status = 'registered' THEN status ELSE 'failed' END,
           last_error = $3, updated = clock_timestamp() WHERE tenant_id = $1 AND id = $2`,
        [tenant, id, failure],
      );
      throw new ScimError(502, undefined, `Registration with manufacturer ${id} failed: ${failure}`);
    }
    const before = await this.deps.db.query<{ token_id: string | null }>(
      `UPDATE device_manufacturers m SET status = 'registered', registered_at = clock_timestamp(), token_id = $3,
         last_error = NULL, updated = clock_timestamp()
        FROM device_manufacturers o WHERE m.tenant_id = $1 AND m.id = $2 AND o.tenant_id = m.tenant_id AND o.id = m.id
        RETURNING o.token_id`,
      [tenant, id, issued.id],
    );
    const previous = before.rows[0]?.token_id;
    if (previous && previous !== issued.id) await admin.revokeToken(tenant, previous).catch(() => undefined);
    this.deps.log?.info?.({ tenant, manufacturer: id }, 'registered with the manufacturer');
    return this.get(tenant, id);
  }

  /** A write (ResourceService.onChange): a Device write may be a device contacting this tenant. */
  notify(change: ResourceChange): void {
    if (this.stopped || change.resourceType !== 'Device') return;
    const idleSince = this.idle.get(change.tenant);
    if (idleSince !== undefined && Date.now() - idleSince < RETRY_MS) return;
    if (change.clientId?.startsWith('sync:')) return; // what the sync engine wrote
    if (this.pending.has(change.tenant)) return;
    const timer = setTimeout(() => {
      this.pending.delete(change.tenant);
      const p = this.check(change.tenant).catch((err: unknown) =>
        this.deps.log?.error({ err, tenant: change.tenant }, 'device registration check failed'),
      );
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    }, this.deps.debounceMs ?? 200);
    timer.unref();
    this.pending.set(change.tenant, timer);
  }

  /**
   * Registers with each manufacturer of the tenant that is not registered yet and one of whose
   * devices (by MUD URL prefix) the tenant holds. Returns the manufacturers it registered with.
   */
  async check(tenant: string): Promise<string[]> {
    const res = await this.deps.db.query<Row>(
      `SELECT * FROM device_manufacturers WHERE tenant_id = $1 AND status <> 'registered' ORDER BY id`,
      [tenant],
    );
    if (res.rows.length === 0) {
      this.idle.set(tenant, Date.now());
      return [];
    }
    const rt = this.deps.registry.resourceType('Device');
    if (!rt) return [];
    const done: string[] = [];
    for (const r of res.rows) {
      if (r.status === 'failed' && Date.now() - new Date(r.updated).getTime() < RETRY_MS) continue;
      const found = await this.deps.service.list(
        { tenant, baseUrl: 'http://local/scim/v2', limits: this.deps.limits, hideSensitive: true },
        [rt],
        { filter: `mudUrl sw "${r.mud_url_prefix}"`, count: 1, attributes: ['id'] },
      );
      if (found.totalResults === 0) continue;
      try {
        await this.register(tenant, r.id);
        done.push(r.id);
      } catch (err) {
        this.deps.log?.error(
          { err, tenant, manufacturer: r.id },
          'registration with the manufacturer failed',
        );
      }
    }
    return done;
  }

  /** Stops taking device writes and waits for checks in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Resolves when the checks started so far have finished (tests). */
  async idleNow(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}
