/**
 * What a delta pull costs as a tenant grows (issue 5: "a delta after N changes costs O(N), not
 * O(size of tenant)"). Two tenants in one store, a small and a big one, each with its Users and
 * their create rows in the change log; in each, a delta token is taken, 100 Users are changed,
 * and the same delta (every page) is then timed many times. The ratio big/small should stay
 * near 1.
 */
import { createApp, type App } from '../../src/app.ts';
import type { StoreTarget } from './suite.ts';
import { loadUsers } from './data.ts';
import { summarize, type Summary } from './stats.ts';

export interface DeltaCostSettings {
  small: number;
  big: number;
  changes: number;
  samples: number;
}

export interface DeltaCostTenant {
  tenant: string;
  users: number;
  changeRows: number;
  /** Items the timed delta returned (must equal the changes made). */
  items: number;
  pages: number;
  latency: Summary;
}

export interface DeltaCostResult {
  settings: DeltaCostSettings;
  store: StoreTarget['kind'];
  small: DeltaCostTenant;
  big: DeltaCostTenant;
  /** big p50 / small p50 */
  ratio: number;
  loadSeconds: number;
}

const ADMIN = 'bench-admin-token';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const DELTA_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:delta:request';

type Json = Record<string, unknown>;

/** Bearer token of each tenant's admin client. */
const tokens = new Map<string, string>();

async function call(app: App, method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown): Promise<Json> {
  const tenant = /^\/tenants\/([^/]+)\//.exec(url)![1];
  const res = await app.server.inject({
    method,
    url,
    headers: { authorization: `Bearer ${tokens.get(tenant)}`, 'content-type': 'application/scim+json' },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  if (res.statusCode >= 300)
    throw new Error(`${method} ${url} → ${res.statusCode}: ${res.body.slice(0, 300)}`);
  return res.body ? (JSON.parse(res.body) as Json) : {};
}

/** Every page of one delta; returns item and page counts. */
async function pullDelta(
  app: App,
  tenant: string,
  token: string,
  count: number,
): Promise<{ items: number; pages: number }> {
  let items = 0;
  let pages = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await call(app, 'POST', `/tenants/${tenant}/scim/v2/Users/.delta`, {
      schemas: [DELTA_REQUEST],
      deltaToken: token,
      count,
      ...(cursor ? { cursor } : {}),
    });
    pages++;
    items += (page.Resources as unknown[] | undefined)?.length ?? 0;
    cursor = page.nextCursor as string | undefined;
    if (!cursor) return { items, pages };
  }
}

async function waitSettled(app: App): Promise<void> {
  // The token must be above the changes just made (see test/delta/helpers.ts settle).
  for (let i = 0; i < 400; i++) {
    const res = await app.db.query<{ done: boolean | null }>(
      'SELECT (SELECT max(txid) FROM changes) < pg_snapshot_xmin(pg_current_snapshot()) AS done',
    );
    if (res.rows[0].done !== false) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function measureTenant(
  app: App,
  tenant: string,
  ids: string[],
  s: DeltaCostSettings,
): Promise<DeltaCostTenant> {
  await waitSettled(app);
  const tokenDoc = await call(app, 'GET', `/tenants/${tenant}/scim/v2/Users/.deltaToken`);
  const token = tokenDoc.value as string;
  // Spread the changed users over the whole tenant, not its first rows.
  const step = Math.max(1, Math.floor(ids.length / s.changes));
  for (let k = 0; k < s.changes; k++) {
    await call(app, 'PATCH', `/tenants/${tenant}/scim/v2/Users/${ids[k * step]}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'title', value: `changed ${k}` }],
    });
  }
  await waitSettled(app);
  const first = await pullDelta(app, tenant, token, 100);
  const samples: number[] = [];
  for (let i = 0; i < s.samples; i++) {
    const t0 = performance.now();
    await pullDelta(app, tenant, token, 100);
    samples.push(performance.now() - t0);
  }
  const rows = await app.db.query<{ n: string }>(
    'SELECT count(*)::text AS n FROM changes WHERE tenant_id = $1',
    [tenant],
  );
  return {
    tenant,
    users: ids.length,
    changeRows: Number(rows.rows[0].n),
    items: first.items,
    pages: first.pages,
    latency: summarize(samples),
  };
}

/** Loads Users and, for each, the create row the service would have logged. */
async function loadTenant(app: App, tenant: string, users: number): Promise<string[]> {
  await app.admin.createTenant({ id: tenant });
  await app.admin.createClient(tenant, { id: 'bench', name: 'bench', scopes: ['admin'] });
  tokens.set(tenant, (await app.admin.issueToken(tenant, 'bench', {})).token);
  const ids = await loadUsers(app.db, app.registry, tenant, users);
  await app.db.query(
    `INSERT INTO changes (tenant_id, at, client_id, operation, resource_type, resource_id, version)
     SELECT tenant_id, created, owner_client, 'create', resource_type, id, version FROM resources WHERE tenant_id = $1`,
    [tenant],
  );
  return ids;
}

export async function runDeltaCost(
  target: StoreTarget,
  s: DeltaCostSettings,
  log: (msg: string) => void,
): Promise<DeltaCostResult> {
  const app = await createApp({
    port: 0,
    adminToken: ADMIN,
    logLevel: 'silent',
    dataDir: target.dataDir,
    databaseUrl: target.databaseUrl,
    backgroundWorkers: false,
  });
  try {
    const t0 = performance.now();
    log(`  delta cost: loading ${s.small} users into tenant small`);
    const smallIds = await loadTenant(app, 'small', s.small);
    log(`  delta cost: loading ${s.big} users into tenant big`);
    const bigIds = await loadTenant(app, 'big', s.big);
    await app.db.query('VACUUM ANALYZE');
    const loadSeconds = (performance.now() - t0) / 1000;
    log(`  delta cost: measuring (${s.changes} changes, ${s.samples} samples per tenant)`);
    const small = await measureTenant(app, 'small', smallIds, s);
    const big = await measureTenant(app, 'big', bigIds, s);
    return {
      settings: s,
      store: target.kind,
      small,
      big,
      ratio: big.latency.p50 / small.latency.p50,
      loadSeconds,
    };
  } finally {
    await app.close();
  }
}
