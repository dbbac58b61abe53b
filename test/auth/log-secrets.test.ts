/**
 * Secrets never reach the log: `scimd serve` runs as a child process at log level info, is sent
 * requests carrying bearer tokens (valid, invalid, of the bootstrap and issued ones), and its whole
 * output is searched for the token strings. The request ids must be there, so the log is the one
 * those requests produced.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { USER } from './helpers.ts';

const ADMIN_TOKEN = `bootstrap-${randomBytes(24).toString('hex')}`;
const dataDir = mkdtempSync(join(tmpdir(), 'scimd-logs-'));
let child: ChildProcess;
let output = '';
let base: string;

before(async () => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    SCIMD_DATA_DIR: dataDir,
    SCIMD_ADMIN_TOKEN: ADMIN_TOKEN,
    SCIMD_LOG_LEVEL: 'info',
  };
  // The embedded store: this test is about the log, not the store.
  delete env.DATABASE_URL;
  delete env.SCIMD_BASE_URL;
  child = spawn(process.execPath, ['bin/scimd.js', 'serve', '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 50_000);
    const check = () => {
      for (const line of output.split('\n')) {
        if (!line.startsWith('{')) continue;
        const parsed = JSON.parse(line) as { scim?: string; address?: string };
        if (parsed.scim && parsed.address) {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve(parsed.address);
          return;
        }
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${output}`));
    });
  });
});
after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(
  method: string,
  path: string,
  token: string | undefined,
  requestId: string,
  body?: unknown,
): Promise<{ status: number; json: unknown; requestId: string | null }> {
  const headers: Record<string, string> = { 'x-request-id': requestId };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text ? JSON.parse(text) : undefined,
    requestId: res.headers.get('x-request-id'),
  };
}

test('bearer tokens never appear in the log; request ids do', { timeout: 60_000 }, async () => {
  const ids: string[] = [];
  const rid = (name: string) => {
    const id = `logcheck-${name}-${randomBytes(4).toString('hex')}`;
    ids.push(id);
    return id;
  };

  // The bootstrap token, on reads and writes.
  const listed = await call('GET', '/scim/v2/Users', ADMIN_TOKEN, rid('list'));
  assert.equal(listed.status, 200);
  assert.equal(listed.requestId, ids[0]);
  assert.equal(
    (
      await call('POST', '/scim/v2/Users', ADMIN_TOKEN, rid('create'), {
        schemas: [USER],
        userName: 'logged',
      })
    ).status,
    201,
  );

  // An issued opaque token: issued through the admin API, then used and misused.
  assert.equal(
    (await call('POST', '/admin/v1/tenants', ADMIN_TOKEN, rid('tenant'), { id: 'acme' })).status,
    201,
  );
  assert.equal(
    (
      await call('POST', '/admin/v1/tenants/acme/clients', ADMIN_TOKEN, rid('client'), {
        id: 'sync',
        name: 'Sync',
        scopes: ['scim:read'],
      })
    ).status,
    201,
  );
  const issued = await call(
    'POST',
    '/admin/v1/tenants/acme/clients/sync/tokens',
    ADMIN_TOKEN,
    rid('issue'),
    {},
  );
  assert.equal(issued.status, 201);
  const token = (issued.json as { token: string }).token;
  assert.match(token, /^scimd_/);
  assert.equal((await call('GET', '/tenants/acme/scim/v2/Users', token, rid('use'))).status, 200);
  // Refused uses: another tenant, a write without scope, a malformed body.
  assert.equal((await call('GET', '/scim/v2/Users', token, rid('wrong-tenant'))).status, 401);
  assert.equal(
    (
      await call('POST', '/tenants/acme/scim/v2/Users', token, rid('no-scope'), {
        schemas: [USER],
        userName: 'x',
      })
    ).status,
    403,
  );
  // Unknown tokens: an opaque one and a JWT-shaped one.
  const wrong = `scimd_${randomBytes(32).toString('base64url')}`;
  assert.equal((await call('GET', '/tenants/acme/scim/v2/Users', wrong, rid('unknown'))).status, 401);
  const fakeJwt = `eyJhbGciOiJFUzI1NiJ9.${randomBytes(30).toString('base64url')}.${randomBytes(30).toString('base64url')}`;
  assert.equal((await call('GET', '/tenants/acme/scim/v2/Users', fakeJwt, rid('jwt'))).status, 401);
  // The token of a scheme scimd does not support.
  const basic = await fetch(`${base}/scim/v2/Users`, {
    headers: {
      authorization: `Basic ${Buffer.from(`u:${ADMIN_TOKEN}`).toString('base64')}`,
      'x-request-id': rid('basic'),
    },
  });
  assert.equal(basic.status, 401);

  // Let the last log lines reach the pipe: stop the server and wait for its exit.
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;

  const secrets: [string, string][] = [
    ['bootstrap token', ADMIN_TOKEN],
    ['issued token', token],
    ['issued token body', token.slice('scimd_'.length)],
    ['unknown token', wrong],
    ['JWT-shaped token', fakeJwt],
    ['Basic credentials', Buffer.from(`u:${ADMIN_TOKEN}`).toString('base64')],
  ];
  for (const [what, secret] of secrets) assert.ok(!output.includes(secret), `the ${what} appears in the log`);
  assert.doesNotMatch(output, /authorization":"(Bearer|Basic) /i);
  // The log is the one of these requests: every request id is in it, on JSON lines.
  for (const id of ids)
    assert.ok(output.includes(`"reqId":"${id}"`), `request id ${id} is not in the log:\n${output}`);
});
