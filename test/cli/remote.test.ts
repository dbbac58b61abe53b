/**
 * Remote mode: the CLI calls a running server's /admin/v1 (--url/--token or SCIMD_URL/SCIMD_TOKEN,
 * falling back to SCIMD_ADMIN_TOKEN) and prints the same views as the direct mode. Also `scimd
 * serve` with its TLS and rate-limit flags, administered remotely over HTTPS.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.ts';
import { cleanEnv, failed, ok, parsed, scimd, scratchDatabase, serve } from './run.ts';

const ADMIN = 'remote-admin-secret';

describe('remote mode against a server started in the test process', () => {
  let app: App;
  let base: string;
  let env: NodeJS.ProcessEnv;
  let dataDir: string | undefined;
  let scratch: Awaited<ReturnType<typeof scratchDatabase>>;

  before(async () => {
    scratch = await scratchDatabase();
    if (!scratch) dataDir = mkdtempSync(join(tmpdir(), 'scimd-cli-remote-'));
    app = await createApp({
      ...(scratch ? { databaseUrl: scratch.url } : { dataDir }),
      adminToken: ADMIN,
      logLevel: 'silent',
    });
    base = await app.server.listen({ port: 0, host: '127.0.0.1' });
    // SCIMD_DATA_DIR points at a folder that must stay untouched: remote mode never opens a store.
    env = cleanEnv({ SCIMD_URL: base, SCIMD_ADMIN_TOKEN: ADMIN, SCIMD_DATA_DIR: '/nonexistent/scimd-cli' });
  });

  after(async () => {
    await app?.close();
    await scratch?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test(
    'tenants: create (flags), duplicate, invalid id, list, show, delete',
    { timeout: 120_000 },
    async () => {
      const bare = cleanEnv();
      const created = parsed(
        await scimd(
          ['tenant', 'create', 'globex', '--name', 'Globex', '--json', '--url', base, '--token', ADMIN],
          bare,
        ),
      );
      assert.deepEqual(created, await app.admin.getTenant('globex'));

      const [dup, bad, list, show] = await Promise.all([
        scimd(['tenant', 'create', 'globex'], env),
        scimd(['tenant', 'create', 'Bad_Id'], env),
        scimd(['tenant', 'list'], env),
        scimd(['tenant', 'show', 'globex', '--json'], env),
      ]);
      failed(dup, 'Tenant globex already exists');
      failed(
        bad,
        'Tenant id: 1-63 lower-case letters, digits and dashes, not starting or ending with a dash',
      );
      const lines = ok(list).trimEnd().split('\n');
      assert.equal(lines.length, 3);
      assert.match(lines[0], /^ID +NAME +CREATED$/);
      assert.match(lines[1], /^default +Default tenant +\d{4}-/);
      assert.match(lines[2], /^globex +Globex +\d{4}-/);
      assert.deepEqual(parsed(show), created);

      assert.equal(ok(await scimd(['tenant', 'delete', 'globex', '--yes'], env)), 'Deleted tenant globex\n');
      await assert.rejects(app.admin.getTenant('globex'), /Tenant globex not found/);
    },
  );

  test(
    'clients and tokens: same views as AdminService; token works, then is revoked',
    { timeout: 120_000 },
    async () => {
      await app.admin.createTenant({ id: 'initech' });
      const client = parsed(
        await scimd(
          [
            'client',
            'create',
            '--tenant',
            'initech',
            '--name',
            'sync',
            '--scope',
            'scim:read,scim:write',
            '--id',
            'sync',
            '--json',
          ],
          env,
        ),
      );
      assert.deepEqual(client, await app.admin.getClient('initech', 'sync'));

      const [badScope, noTenant, list] = await Promise.all([
        scimd(['client', 'create', '--tenant', 'initech', '--name', 'x', '--scope', 'root'], env),
        scimd(['client', 'create', '--tenant', 'nope', '--name', 'x', '--scope', 'admin'], env),
        scimd(['client', 'list', '--tenant', 'initech'], env),
      ]);
      failed(badScope, 'Unknown scope(s): root');
      failed(noTenant, 'Tenant nope not found');
      const rows = ok(list).trimEnd().split('\n');
      assert.equal(rows.length, 2);
      assert.match(rows[0], /^ID +NAME +SCOPES +USER +RATE LIMIT +CREATED$/);
      assert.match(rows[1], /^sync +sync +scim:read scim:write +- +- +\d{4}-/);

      const issued = await scimd(
        ['token', 'issue', '--tenant', 'initech', '--client', 'sync', '--expires-in', '15m'],
        env,
      );
      const secret = ok(issued).trim();
      assert.match(secret, /^scimd_/);
      const id = /^Token ([0-9a-f-]{36}) for client sync of tenant initech, expires \S+Z\. /.exec(
        issued.stderr,
      )?.[1];
      assert.ok(id, issued.stderr);

      const users = (token: string) =>
        fetch(`${base}/tenants/initech/scim/v2/Users`, { headers: { authorization: `Bearer ${token}` } });
      const res = await users(secret);
      assert.equal(res.status, 200);
      await res.body?.cancel();

      const [table, json, unknownClient] = await Promise.all([
        scimd(['token', 'list', '--tenant', 'initech'], env),
        scimd(['token', 'list', '--tenant', 'initech', '--client', 'sync', '--json'], env),
        scimd(['token', 'list', '--tenant', 'initech', '--client', 'nope'], env),
      ]);
      const tableLines = ok(table).trimEnd().split('\n');
      assert.match(tableLines[0], /^ID +CLIENT +DESCRIPTION +CREATED +EXPIRES +REVOKED +LAST USED$/);
      assert.equal(tableLines.length, 2);
      assert.ok(tableLines[1].startsWith(`${id}  sync  `), tableLines[1]);
      assert.ok(!table.stdout.includes(secret) && !json.stdout.includes(secret));
      assert.deepEqual(parsed(json), await app.admin.listTokens('initech', 'sync'));
      failed(unknownClient, 'Client nope not found in tenant initech');

      const revoked = parsed<{ id: string; revokedAt: string }>(
        await scimd(['token', 'revoke', '--tenant', 'initech', id, '--json'], env),
      );
      assert.equal(revoked.id, id);
      assert.match(revoked.revokedAt, /Z$/);
      const gone = await users(secret);
      assert.equal(gone.status, 401);
      await gone.body?.cancel();

      assert.equal(
        ok(await scimd(['client', 'delete', '--tenant', 'initech', 'sync'], env)),
        'Deleted client sync of tenant initech\n',
      );
      assert.deepEqual(await app.admin.listClients('initech'), []);
    },
  );

  test('credentials and connection failures', { timeout: 120_000 }, async () => {
    // A port nobody listens on: one just released.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const [wrongToken, noToken, unreachable, badUrl, tenantAdmin] = await Promise.all([
      scimd(['tenant', 'list', '--token', 'wrong'], env),
      scimd(['tenant', 'list'], cleanEnv({ SCIMD_URL: base })),
      scimd(['tenant', 'list', '--url', `http://127.0.0.1:${closedPort}`], env),
      scimd(['tenant', 'list', '--url', 'ftp://example.test'], env),
      (async () => {
        await app.admin.createTenant({ id: 'hooli' });
        await app.admin.createClient('hooli', { id: 'hooli-admin', name: 'a', scopes: ['admin'] });
        const t = await app.admin.issueToken('hooli', 'hooli-admin');
        // SCIMD_TOKEN wins over SCIMD_ADMIN_TOKEN; a tenant's admin is not the node operator.
        return scimd(['tenant', 'list'], { ...env, SCIMD_TOKEN: t.token });
      })(),
    ]);
    failed(wrongToken, 'Invalid or expired bearer token'); // the server's detail, not a bare status
    failed(noToken, 'remote mode (--url) needs --token, SCIMD_TOKEN or SCIMD_ADMIN_TOKEN');
    failed(unreachable, `cannot reach http://127.0.0.1:${closedPort}/admin/v1/tenants: ECONNREFUSED`);
    failed(badUrl, '--url must be an absolute http(s) URL; got "ftp://example.test"');
    failed(tenantAdmin, 'Only the node operator (admin of the default tenant) may do this');
  });
});

const TLS = 'test/fixtures/tls';

/** GET over HTTPS trusting the test CA, authenticated by a client certificate of the fixtures. */
function httpsGet(url: string, cert: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        ca: readFileSync(join(TLS, 'ca.crt')),
        cert: readFileSync(join(TLS, `${cert}.crt`)),
        key: readFileSync(join(TLS, `${cert}.key`)),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test(
  'scimd serve --tls-cert --tls-key --tls-client-ca --rate-limit; a client certificate client created remotely over HTTPS',
  { timeout: 300_000 },
  async () => {
    const scratch = await scratchDatabase();
    const dataDir = scratch ? undefined : mkdtempSync(join(tmpdir(), 'scimd-cli-tls-'));
    const store = scratch ? { DATABASE_URL: scratch.url } : { SCIMD_DATA_DIR: dataDir };
    const server = await serve(
      [
        '--tls-cert',
        join(TLS, 'server.crt'),
        '--tls-key',
        join(TLS, 'server.key'),
        '--tls-client-ca',
        join(TLS, 'ca.crt'),
        '--rate-limit',
        '3/60',
      ],
      cleanEnv({ ...store, SCIMD_ADMIN_TOKEN: ADMIN }),
    );
    try {
      assert.match(server.address, /^https:\/\/127\.0\.0\.1:\d+$/);
      const fingerprint = new X509Certificate(readFileSync(join(TLS, 'client-a.crt'))).fingerprint256;
      const created = parsed<{ certFingerprint: string }>(
        await scimd(
          [
            'client',
            'create',
            '--name',
            'device',
            '--id',
            'device',
            '--scope',
            'scim:read',
            '--cert-fingerprint',
            fingerprint,
            '--json',
          ],
          // The test CA is trusted through Node's own mechanism: remote mode uses plain fetch.
          cleanEnv({
            SCIMD_URL: server.address,
            SCIMD_TOKEN: ADMIN,
            NODE_EXTRA_CA_CERTS: join(TLS, 'ca.crt'),
          }),
        ),
      );
      assert.equal(created.certFingerprint, fingerprint.replace(/:/g, '').toLowerCase());

      const users = `${server.address}/scim/v2/Users`;
      // The certificate's client alone uses its bucket of the node-wide limit (3 a minute).
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push(await httpsGet(users, 'client-a'));
      assert.deepEqual(statuses, [200, 200, 200, 429]);
    } finally {
      await server.stop();
      await scratch?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
