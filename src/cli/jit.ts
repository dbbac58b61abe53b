/**
 * `scimd jit oidc --tenant t --id-token-file f`: signs a user in by just-in-time provisioning
 * (src/sync/triggers/jit.ts) from an OIDC ID token in a file ("-" = stdin), to try a tenant's
 * `jit.oidc` settings or to provision by hand. Direct mode (the store; the pull flows are requested
 * in the table, and a running server's runner finds them) or, with --url, a running server's
 * POST /admin/v1/tenants/{tenant}/jit/oidc. The token is never printed.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { createServerRegistry } from '../registry.ts';
import type { JsonObject } from '../scim/json.ts';
import { CursorCodec } from '../service/cursor.ts';
import { ResourceService } from '../service/resources.ts';
import { JitService } from '../sync/triggers/jit.ts';
import { requestRuns } from '../sync/triggers/requests.ts';
import { TenantDirectory } from '../tenancy/directory.ts';
import { tenantOption } from './client.ts';
import { addConnectionOptions, openStore, remoteToken, type ConnectionOptions } from './context.ts';
import { CliError, details, emit } from './output.ts';

interface JitOutcome {
  created: boolean;
  user: JsonObject;
}

function readToken(path: string): string {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new CliError(`--id-token-file: cannot read ${path}: ${(err as Error).message}`);
  }
  const token = text.trim();
  if (!token) throw new CliError(`--id-token-file: ${path} is empty`);
  return token;
}

async function direct(opts: ConnectionOptions, tenant: string, token: string): Promise<JitOutcome> {
  const config = loadConfig({ dataDir: opts.dataDir ?? './data', databaseUrl: opts.databaseUrl });
  const registry = createServerRegistry();
  const db = await openStore(config, registry);
  try {
    // List cursors are not used beyond this process.
    const service = new ResourceService(db, registry, new CursorCodec(randomBytes(32).toString('base64url')));
    const jit = new JitService({
      db,
      service,
      registry,
      tenants: new TenantDirectory(db),
      limits: config,
      request: (t, ids, trigger) => requestRuns(db, t, ids, trigger),
    });
    const prefix = tenant === 'default' ? '/scim/v2' : `/tenants/${encodeURIComponent(tenant)}/scim/v2`;
    const r = await jit.oidc(tenant, token, `${config.baseUrl ?? 'http://localhost'}${prefix}`);
    return { created: r.created, user: r.user.resource };
  } finally {
    await db.close();
  }
}

async function remote(base: string, bearer: string, tenant: string, token: string): Promise<JitOutcome> {
  let url: URL;
  try {
    url = new URL(`${base.replace(/\/+$/, '')}/admin/v1/tenants/${encodeURIComponent(tenant)}/jit/oidc`);
  } catch {
    throw new CliError(`--url must be an absolute http(s) URL; got "${base}"`);
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bearer}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify({ idToken: token }),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(
      `cannot reach ${url.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    );
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (res.status !== 200 && res.status !== 201) {
    const detail = (body as { detail?: unknown } | undefined)?.detail;
    throw new CliError(typeof detail === 'string' ? detail : `POST ${url.pathname}: HTTP ${res.status}`);
  }
  return { created: res.status === 201, user: body as JsonObject };
}

export function registerJit(program: Command): void {
  const jit = program.command('jit').description('SSO just-in-time provisioning (docs/sync-triggers.md)');
  addConnectionOptions(
    jit
      .command('oidc')
      .description(
        "Sign a user in from an OIDC ID token: create or update the User from its claims (tenant's jit.oidc settings)",
      )
      .addOption(tenantOption())
      .requiredOption('--id-token-file <file>', 'file holding the ID token (a JWT); - reads stdin'),
  ).action(async (opts: ConnectionOptions & { tenant: string; idTokenFile: string; json?: boolean }) => {
    const token = readToken(opts.idTokenFile);
    let out: JitOutcome;
    if (opts.url) {
      out = await remote(opts.url, remoteToken(opts), opts.tenant, token);
    } else out = await direct(opts, opts.tenant, token);
    emit(opts.json, out, () =>
      details([
        ['outcome', out.created ? 'created' : 'existing user (updated from the claims where they differ)'],
        ['tenant', opts.tenant],
        ['id', String(out.user.id)],
        ['userName', String(out.user.userName)],
        ['externalId', out.user.externalId === undefined ? undefined : String(out.user.externalId)],
      ]),
    );
  });
}
