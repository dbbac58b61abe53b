/**
 * Importing devices into a tenant of an open store: the request context a POST /Devices of the
 * tenant would have (its settings, for the enterprise endpoints; no managed restriction), with
 * the client `import` in the audit trail, and the import loop of runner.ts.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_LIMITS } from '../config.ts';
import type { SchemaRegistry } from '../scim/schema/registry.ts';
import { CursorCodec } from '../service/cursor.ts';
import { ResourceService, type RequestContext } from '../service/resources.ts';
import type { Database } from '../store/db.ts';
import { TenantDirectory } from '../tenancy/directory.ts';
import { effectiveLimits } from '../tenancy/settings.ts';
import { InputError } from './mapping.ts';
import { runImport, type ImportOptions, type ImportSummary } from './runner.ts';

/** The client recorded in the audit trail (and as the owner) of imported devices. */
export const IMPORT_CLIENT = 'import';

export interface DeviceImportOptions extends Omit<ImportOptions, 'createBatch'> {
  db: Database;
  registry: SchemaRegistry;
  tenant: string;
  /** Public origin of the server (scheme://host[:port]): applications' $ref are stored under it. */
  origin: string;
}

export async function importDevices(opts: DeviceImportOptions): Promise<ImportSummary> {
  const { db, registry } = opts;
  const tenant = await new TenantDirectory(db).get(opts.tenant);
  if (!tenant) throw new InputError(`no tenant ${opts.tenant}`);
  const rt = registry.resourceType('Device');
  const enabled = tenant.settings.resourceTypes?.map((n) => n.toLowerCase());
  if (!rt || (enabled && !enabled.includes('device')))
    throw new InputError(`tenant ${opts.tenant} does not serve Devices`);
  const origin = opts.origin.replace(/\/+$/, '');
  const ctx: RequestContext = {
    tenant: tenant.id,
    baseUrl: `${origin}${tenant.id === 'default' ? '/scim/v2' : `/tenants/${tenant.id}/scim/v2`}`,
    clientId: IMPORT_CLIENT,
    limits: effectiveLimits(DEFAULT_LIMITS, tenant.settings),
    settings: tenant.settings as Record<string, unknown>,
  };
  // An import never pages, so the cursor secret is never used.
  const service = new ResourceService(db, registry, new CursorCodec(randomBytes(32).toString('base64url')));
  // Validation runs when the runner hands a batch over (it overlaps the previous batch's store);
  // stores take turns in that order, so with concurrency 1 the earlier row of the file still wins.
  const turns = new Turns(opts.concurrency ?? 1);
  return runImport({
    ...opts,
    createBatch: async (bodies) => {
      const batch = service.prepareBatch(rt, bodies);
      const done = await turns.take();
      try {
        return await service.storeBatch(ctx, batch, { dryRun: opts.dryRun });
      } finally {
        done();
      }
    },
  });
}

/** At most `size` holders at a time, served first come, first served. */
class Turns {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async take(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
