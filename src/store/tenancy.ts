/**
 * Rows of tenants, clients, tokens and the change log. Every statement is parameterized and every
 * query names its tenant.
 */
import type { Queryable } from './db.ts';

export interface TenantRow {
  id: string;
  name: string;
  settings: Record<string, unknown>;
  created: Date;
}

export interface ClientRow {
  tenant_id: string;
  id: string;
  name: string;
  scopes: string[];
  user_id: string | null;
  jwt_subject: string | null;
  cert_subject: string | null;
  cert_fingerprint: string | null;
  rate_limit: Record<string, unknown> | null;
  endpoint_app_id: string | null;
  created: Date;
}

export interface TokenRow {
  id: string;
  tenant_id: string;
  client_id: string;
  description: string | null;
  created: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used: Date | null;
}

export interface ChangeRow {
  seq: number;
  tenant_id: string;
  at: Date;
  client_id: string | null;
  operation: string;
  resource_type: string;
  resource_id: string;
  version: number | null;
}

const CLIENT_COLUMNS =
  'tenant_id, id, name, scopes, user_id, jwt_subject, cert_subject, cert_fingerprint, rate_limit, endpoint_app_id, created';
const TOKEN_COLUMNS = 'id, tenant_id, client_id, description, created, expires_at, revoked_at, last_used';

export class TenancyRepository {
  async tenant(q: Queryable, id: string): Promise<TenantRow | undefined> {
    const res = await q.query<TenantRow>('SELECT id, name, settings, created FROM tenants WHERE id = $1', [
      id,
    ]);
    return res.rows[0];
  }

  async tenants(q: Queryable): Promise<TenantRow[]> {
    return (await q.query<TenantRow>('SELECT id, name, settings, created FROM tenants ORDER BY id')).rows;
  }

  async insertTenant(q: Queryable, id: string, name: string, settings: object): Promise<TenantRow> {
    const res = await q.query<TenantRow>(
      'INSERT INTO tenants (id, name, settings) VALUES ($1, $2, $3) RETURNING id, name, settings, created',
      [id, name, JSON.stringify(settings)],
    );
    return res.rows[0];
  }

  async updateTenant(
    q: Queryable,
    id: string,
    name: string,
    settings: object,
  ): Promise<TenantRow | undefined> {
    const res = await q.query<TenantRow>(
      'UPDATE tenants SET name = $2, settings = $3 WHERE id = $1 RETURNING id, name, settings, created',
      [id, name, JSON.stringify(settings)],
    );
    return res.rows[0];
  }

  /** Deletes the tenant; every table's rows of it go with it (foreign keys cascade). */
  async deleteTenant(q: Queryable, id: string): Promise<boolean> {
    // Membership rows reference resources; delete them first so the cascade has no ordering trap.
    await q.query('DELETE FROM group_members WHERE tenant_id = $1', [id]);
    await q.query('DELETE FROM resources WHERE tenant_id = $1', [id]);
    await q.query('DELETE FROM tokens WHERE tenant_id = $1', [id]);
    // Sync flows reference their connection without a cascade (a connection in use cannot be
    // removed); their links, runs and retries go with them.
    await q.query('DELETE FROM sync_flows WHERE tenant_id = $1', [id]);
    return (await q.query('DELETE FROM tenants WHERE id = $1', [id])).rowCount > 0;
  }

  async client(q: Queryable, tenant: string, id: string): Promise<ClientRow | undefined> {
    const res = await q.query<ClientRow>(
      `SELECT ${CLIENT_COLUMNS} FROM clients WHERE tenant_id = $1 AND id = $2`,
      [tenant, id],
    );
    return res.rows[0];
  }

  async clients(q: Queryable, tenant: string): Promise<ClientRow[]> {
    return (
      await q.query<ClientRow>(
        `SELECT ${CLIENT_COLUMNS} FROM clients WHERE tenant_id = $1 ORDER BY created, id`,
        [tenant],
      )
    ).rows;
  }

  async clientBy(
    q: Queryable,
    tenant: string,
    column: 'jwt_subject' | 'cert_fingerprint' | 'cert_subject',
    value: string,
  ): Promise<ClientRow | undefined> {
    const res = await q.query<ClientRow>(
      `SELECT ${CLIENT_COLUMNS} FROM clients WHERE tenant_id = $1 AND ${column} = $2 ORDER BY id LIMIT 1`,
      [tenant, value],
    );
    return res.rows[0];
  }

  async insertClient(q: Queryable, c: Omit<ClientRow, 'created'>): Promise<ClientRow> {
    const res = await q.query<ClientRow>(
      `INSERT INTO clients (tenant_id, id, name, scopes, user_id, jwt_subject, cert_subject, cert_fingerprint, rate_limit, endpoint_app_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${CLIENT_COLUMNS}`,
      [
        c.tenant_id,
        c.id,
        c.name,
        c.scopes,
        c.user_id,
        c.jwt_subject,
        c.cert_subject,
        c.cert_fingerprint,
        c.rate_limit ? JSON.stringify(c.rate_limit) : null,
        c.endpoint_app_id,
      ],
    );
    return res.rows[0];
  }

  async deleteClient(q: Queryable, tenant: string, id: string): Promise<boolean> {
    return (await q.query('DELETE FROM clients WHERE tenant_id = $1 AND id = $2', [tenant, id])).rowCount > 0;
  }

  async insertToken(
    q: Queryable,
    t: {
      id: string;
      tenant: string;
      client: string;
      hash: string;
      description?: string;
      created: Date;
      expiresAt?: Date;
    },
  ): Promise<TokenRow> {
    const res = await q.query<TokenRow>(
      `INSERT INTO tokens (id, tenant_id, client_id, token_hash, description, created, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${TOKEN_COLUMNS}`,
      [t.id, t.tenant, t.client, t.hash, t.description ?? null, t.created, t.expiresAt ?? null],
    );
    return res.rows[0];
  }

  /** The token with this digest, with its client, whatever its tenant (the caller checks the tenant). */
  async tokenByHash(q: Queryable, hash: string): Promise<(TokenRow & { client: ClientRow }) | undefined> {
    const res = await q.query<TokenRow & { client: ClientRow }>(
      `SELECT t.id, t.tenant_id, t.client_id, t.description, t.created, t.expires_at, t.revoked_at, t.last_used,
              to_jsonb(c) AS client
       FROM tokens t JOIN clients c ON c.tenant_id = t.tenant_id AND c.id = t.client_id
       WHERE t.token_hash = $1`,
      [hash],
    );
    return res.rows[0];
  }

  /** Tenants whose JWT settings name this issuer (where a JWT claiming it can be verified). */
  async tenantsByJwtIssuer(q: Queryable, issuer: string): Promise<string[]> {
    const res = await q.query<{ id: string }>(
      `SELECT id FROM tenants WHERE settings->'jwt'->>'issuer' = $1 ORDER BY id LIMIT 20`,
      [issuer],
    );
    return res.rows.map((r) => r.id);
  }

  /** Tenants with a client mapped to this certificate fingerprint or subject. */
  async tenantsByCertificate(q: Queryable, fingerprint: string, subject: string): Promise<string[]> {
    const res = await q.query<{ tenant_id: string }>(
      `SELECT DISTINCT tenant_id FROM clients WHERE cert_fingerprint = $1 OR cert_subject = $2 ORDER BY tenant_id LIMIT 20`,
      [fingerprint, subject],
    );
    return res.rows.map((r) => r.tenant_id);
  }

  async tokens(q: Queryable, tenant: string, client?: string): Promise<TokenRow[]> {
    const res = client
      ? await q.query<TokenRow>(
          `SELECT ${TOKEN_COLUMNS} FROM tokens WHERE tenant_id = $1 AND client_id = $2 ORDER BY created, id`,
          [tenant, client],
        )
      : await q.query<TokenRow>(
          `SELECT ${TOKEN_COLUMNS} FROM tokens WHERE tenant_id = $1 ORDER BY created, id`,
          [tenant],
        );
    return res.rows;
  }

  async revokeToken(q: Queryable, tenant: string, id: string, at: Date): Promise<TokenRow | undefined> {
    const res = await q.query<TokenRow>(
      `UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2 RETURNING ${TOKEN_COLUMNS}`,
      [tenant, id, at],
    );
    return res.rows[0];
  }

  async touchToken(q: Queryable, id: string, at: Date): Promise<void> {
    await q.query('UPDATE tokens SET last_used = $2 WHERE id = $1', [id, at]);
  }

  async recordChange(
    q: Queryable,
    c: {
      tenant: string;
      at: Date;
      client?: string;
      operation: string;
      resourceType: string;
      resourceId: string;
      version?: number;
    },
  ): Promise<void> {
    await q.query(
      `INSERT INTO changes (tenant_id, at, client_id, operation, resource_type, resource_id, version)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [c.tenant, c.at, c.client ?? null, c.operation, c.resourceType, c.resourceId, c.version ?? null],
    );
  }

  async changes(
    q: Queryable,
    tenant: string,
    f: {
      clientId?: string;
      operation?: string;
      resourceType?: string;
      resourceId?: string;
      since?: Date;
      until?: Date;
      afterSeq?: number;
      limit: number;
      offset: number;
    },
  ): Promise<{ rows: ChangeRow[]; total: number }> {
    const where = ['tenant_id = $1'];
    const params: unknown[] = [tenant];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (f.clientId) add('client_id = ?', f.clientId);
    if (f.operation) add('operation = ?', f.operation);
    if (f.resourceType) add('resource_type = ?', f.resourceType);
    if (f.resourceId) add('resource_id = ?', f.resourceId);
    if (f.since) add('at >= ?', f.since);
    if (f.until) add('at < ?', f.until);
    if (f.afterSeq !== undefined) add('seq > ?', f.afterSeq);
    const cond = where.join(' AND ');
    const total = Number(
      (await q.query<{ n: string | number }>(`SELECT count(*) AS n FROM changes WHERE ${cond}`, params))
        .rows[0].n,
    );
    params.push(f.limit, f.offset);
    const rows = (
      await q.query<ChangeRow>(
        `SELECT seq, tenant_id, at, client_id, operation, resource_type, resource_id, version FROM changes
         WHERE ${cond} ORDER BY seq LIMIT $${params.length - 1} OFFSET $${params.length}`,
        params,
      )
    ).rows.map((r) => ({ ...r, seq: Number(r.seq), version: r.version === null ? null : Number(r.version) }));
    return { rows, total };
  }
}
