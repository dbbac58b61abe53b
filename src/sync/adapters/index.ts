/**
 * Last-mile adapters: connections whose target is not a SCIM server but an application's own
 * store. `adapterClient` gives the sync engine an ordinary ScimClient whose transport answers SCIM
 * from the store (src/sync/adapters/facade.ts), so push and pull work unchanged. docs/adapters.md.
 */
import { ScimClient, type ScimClientOptions } from '../../client/client.ts';
import { createServerRegistry } from '../../registry.ts';
import type { SchemaRegistry } from '../../scim/schema/registry.ts';
import type { AttributeDefinition } from '../../scim/schema/types.ts';
import type { Database } from '../../store/db.ts';
import { PostgresDatabase } from '../../store/pg-engine.ts';
import { PGliteDatabase } from '../../store/pglite-engine.ts';
import type { Connection } from '../types.ts';
import { adapterTransport, type AdapterStore } from './facade.ts';
import { sqlStore } from './sql.ts';

/** The base URL the SCIM client is given for an adapter (only its transport sees it). */
export const ADAPTER_BASE_URL = 'sql://adapter';

let relaxed: SchemaRegistry | undefined;

/**
 * The server's registry with no attribute required: an application table is not a SCIM server,
 * and a flow may well keep a required attribute (userName) from it.
 */
export function adapterRegistry(): SchemaRegistry {
  if (!relaxed) {
    const r = createServerRegistry();
    const relax = (a: AttributeDefinition) => {
      a.required = false;
      a.subAttributes?.forEach(relax);
    };
    for (const s of r.schemas()) s.attributes.forEach(relax);
    for (const rt of r.resourceTypes())
      rt.schemaExtensions = rt.schemaExtensions.map((e) => ({ ...e, required: false }));
    relaxed = r;
  }
  return relaxed;
}

/** A ScimClient that also closes its adapter's store. */
class AdapterClient extends ScimClient {
  constructor(
    options: ScimClientOptions,
    private readonly store: AdapterStore,
  ) {
    super(options);
  }
  override close(): void {
    super.close();
    void this.store.close().catch(() => undefined);
  }
}

export interface AdapterOptions {
  /** Use this database instead of opening `sql.databaseUrl` (tests; it is not closed). */
  database?: Database;
}

/** Opens the database a `sql` connection names: a PostgreSQL server, or a PGlite folder. */
export async function openSqlDatabase(databaseUrl: string): Promise<Database> {
  if (databaseUrl.startsWith('pglite:')) return PGliteDatabase.open(databaseUrl.slice('pglite:'.length));
  return PostgresDatabase.open(databaseUrl, 4);
}

/** The SCIM client of an adapter connection (kind `sql`). */
export function adapterClient(
  connection: Connection,
  overrides: Partial<ScimClientOptions> = {},
  opts: AdapterOptions = {},
): ScimClient {
  const sql = connection.sql;
  if (connection.kind !== 'sql' || !sql) throw new TypeError(`connection ${connection.id} is not an adapter`);
  const registry = adapterRegistry();
  const given = opts.database;
  const store = sqlStore(
    registry,
    sql,
    () => (given ? Promise.resolve(given) : openSqlDatabase(sql.databaseUrl)),
    async (db: Database) => {
      if (!given) await db.close();
    },
  );
  const options: ScimClientOptions = {
    baseUrl: ADAPTER_BASE_URL,
    auth: { type: 'none' },
    userAgent: 'scimd-sync/0.1',
    ...overrides,
    transport: adapterTransport(registry, store, ADAPTER_BASE_URL),
  };
  if (connection.timeoutMs !== undefined && overrides.timeoutMs === undefined)
    options.timeoutMs = connection.timeoutMs;
  return new AdapterClient(options, store);
}
