/**
 * The direct-mode scenarios, run on the embedded store and (when DATABASE_URL is set) on a scratch
 * PostgreSQL database: every command opens the store itself, in its own process, one after the other.
 */
import assert from 'node:assert/strict';
import { failed, ok, parsed, scimd, serve } from './run.ts';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface TenantJson {
  id: string;
  name: string;
  settings: Record<string, unknown>;
  created: string;
}

export async function tenantScenario(env: NodeJS.ProcessEnv): Promise<void> {
  const created = parsed<TenantJson>(
    await scimd(
      [
        'tenant',
        'create',
        'acme',
        '--name',
        'Acme Corp',
        '--settings',
        '{"tokens":{"maxLifetimeSeconds":86400}}',
        '--json',
      ],
      env,
    ),
  );
  assert.deepEqual(Object.keys(created).sort(), ['created', 'id', 'name', 'settings']);
  assert.equal(created.id, 'acme');
  assert.equal(created.name, 'Acme Corp');
  assert.deepEqual(created.settings, { tokens: { maxLifetimeSeconds: 86400 } });
  assert.match(created.created, ISO);

  failed(await scimd(['tenant', 'create', 'acme'], env), 'Tenant acme already exists');

  const list = ok(await scimd(['tenant', 'list'], env)).split('\n');
  assert.match(list[0], /^ID +NAME +CREATED$/);
  assert.equal(list.length, 4); // header, acme, default, and the final newline
  assert.equal(list[3], '');
  const rows = list.slice(1, 3).map((l) => l.split(/ {2,}/));
  assert.deepEqual(rows.map((r) => r.slice(0, 2)).sort(), [
    ['acme', 'Acme Corp'],
    ['default', 'Default tenant'],
  ]);

  assert.deepEqual(parsed<TenantJson>(await scimd(['tenant', 'show', 'acme', '--json'], env)), created);

  failed(
    await scimd(['tenant', 'delete', 'acme'], env),
    'refusing to delete tenant acme without --yes (this deletes its resources, clients and tokens)',
  );
  assert.deepEqual(parsed(await scimd(['tenant', 'delete', 'acme', '--yes', '--json'], env)), {
    id: 'acme',
    deleted: true,
  });
  failed(await scimd(['tenant', 'show', 'acme'], env), 'Tenant acme not found');
  failed(await scimd(['tenant', 'delete', 'default', '--yes'], env), 'The default tenant cannot be deleted');
}

interface TokenJson {
  id: string;
  tenant: string;
  client: string;
  description?: string;
  created: string;
  expiresAt?: string;
  revokedAt?: string;
  token?: string;
}

/** Clients and tokens of the default tenant; the issued token then works against `scimd serve`. */
export async function credentialScenario(env: NodeJS.ProcessEnv): Promise<void> {
  const client = parsed<Record<string, unknown>>(
    await scimd(
      [
        'client',
        'create',
        '--name',
        'CI bot',
        '--scope',
        'scim:read',
        '--scope',
        'User:write',
        '--id',
        'ci-bot',
        '--rate-limit',
        '100/60',
        '--json',
      ],
      env,
    ),
  );
  assert.match(client.created as string, ISO);
  assert.deepEqual(client, {
    id: 'ci-bot',
    tenant: 'default',
    name: 'CI bot',
    scopes: ['scim:read', 'User:write'],
    rateLimit: { max: 100, windowSeconds: 60 },
    created: client.created,
  });

  // Refusals of the admin service (bad scope, unknown tenant) are covered in remote.test.ts.

  assert.deepEqual(parsed(await scimd(['client', 'list', '--json'], env)), [client]);

  // Plain output: the secret alone on stdout, the warning on stderr.
  const plain = await scimd(['token', 'issue', '--client', 'ci-bot', '--description', 'deploy'], env);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^scimd_[A-Za-z0-9_-]{43}\n$/);
  const secret = plain.stdout.trim();
  const note =
    /^Token ([0-9a-f-]{36}) for client ci-bot of tenant default, does not expire\. Store it now: it will not be shown again\.\n$/.exec(
      plain.stderr,
    );
  assert.ok(note, plain.stderr);
  const plainId = note[1];

  const issued = parsed<TokenJson>(
    await scimd(['token', 'issue', '--client', 'ci-bot', '--expires-in', '30d', '--json'], env),
  );
  assert.deepEqual(Object.keys(issued).sort(), ['client', 'created', 'expiresAt', 'id', 'tenant', 'token']);
  assert.equal(issued.tenant, 'default');
  assert.equal(issued.client, 'ci-bot');
  assert.match(issued.token!, /^scimd_/);
  assert.equal(Date.parse(issued.expiresAt!) - Date.parse(issued.created), 30 * 86400 * 1000);

  const listed = await scimd(['token', 'list', '--client', 'ci-bot', '--json'], env);
  assert.ok(
    !listed.stdout.includes(secret) && !listed.stdout.includes(issued.token!),
    'secrets are never listed',
  );
  const tokens = parsed<TokenJson[]>(listed);
  assert.deepEqual(tokens.map((t) => t.id).sort(), [plainId, issued.id].sort());
  assert.deepEqual(
    tokens.find((t) => t.id === plainId),
    {
      id: plainId,
      tenant: 'default',
      client: 'ci-bot',
      description: 'deploy',
      created: tokens.find((t) => t.id === plainId)!.created,
    },
  );

  const revoked = parsed<TokenJson>(await scimd(['token', 'revoke', issued.id, '--json'], env));
  assert.equal(revoked.id, issued.id);
  assert.match(revoked.revokedAt!, ISO);
  assert.equal(revoked.token, undefined);

  // The CLI has exited and closed the store: a server on the same store accepts the token.
  const server = await serve([], env);
  try {
    const get = (token: string) =>
      fetch(`${server.address}/scim/v2/Users`, { headers: { authorization: `Bearer ${token}` } });
    const res = await get(secret);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal((JSON.parse(text) as { totalResults: number }).totalResults, 0);
    const gone = await get(issued.token!);
    assert.equal(gone.status, 401);
    await gone.body?.cancel();
  } finally {
    await server.stop();
  }

  assert.deepEqual(parsed(await scimd(['client', 'delete', 'ci-bot', '--json'], env)), {
    tenant: 'default',
    id: 'ci-bot',
    deleted: true,
  });
}
