/**
 * Tenant lookups on the request path. Settings change rarely and are read on every request, so
 * each node keeps them for a few seconds; a change made through this node is seen at once, one
 * made through another node within `ttlMs`.
 */
import type { Database } from '../store/db.ts';
import { TenancyRepository, type TenantRow } from '../store/tenancy.ts';
import type { TenantSettings } from './settings.ts';

export interface Tenant {
  id: string;
  name: string;
  settings: TenantSettings;
  created: Date;
}

export function toTenant(row: TenantRow): Tenant {
  return { id: row.id, name: row.name, settings: row.settings as TenantSettings, created: row.created };
}

export class TenantDirectory {
  private readonly cache = new Map<string, { tenant: Tenant | undefined; until: number }>();
  private readonly repo = new TenancyRepository();

  constructor(
    private readonly db: Database,
    private readonly ttlMs = 5_000,
  ) {}

  async get(id: string): Promise<Tenant | undefined> {
    const hit = this.cache.get(id);
    if (hit && hit.until > Date.now()) return hit.tenant;
    const row = await this.repo.tenant(this.db, id);
    const tenant = row ? toTenant(row) : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(id, { tenant, until: Date.now() + this.ttlMs });
    return tenant;
  }

  invalidate(id: string): void {
    this.cache.delete(id);
  }
}
