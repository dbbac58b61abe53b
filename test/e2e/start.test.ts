/**
 * What a user sees: `npm start` (through the real CLI entry point) serves SCIM on PORT with the
 * embedded store in SCIMD_DATA_DIR, SCIMD_ADMIN_TOKEN works as a bearer token, data survives a
 * restart, and a missing token gets a SCIM 401.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

const dataDir = mkdtempSync(join(tmpdir(), 'scimd-e2e-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

async function start(): Promise<{ child: ChildProcess; base: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    SCIMD_DATA_DIR: dataDir,
    SCIMD_ADMIN_TOKEN: 'e2e-secret',
    SCIMD_LOG_LEVEL: 'warn',
  };
  // With DATABASE_URL unset the embedded store must be used; keep the test about the embedded store.
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, ['bin/scimd.js', 'serve', '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { scim: string }).scim);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return { child, base };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

test(
  'scimd serve: embedded store in SCIMD_DATA_DIR, bearer token, 401 without it, data kept across restarts',
  { timeout: 120_000 },
  async () => {
    let { child, base } = await start();
    let userId: string;
    try {
      const noAuth = await fetch(`${base}/Users`);
      assert.equal(noAuth.status, 401);
      assert.match(noAuth.headers.get('content-type') ?? '', /^application\/scim\+json/);
      assert.deepEqual(await noAuth.json(), {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '401',
        detail: 'Authentication required: send Authorization: Bearer <token>',
      });

      const created = await fetch(`${base}/Users`, {
        method: 'POST',
        headers: { authorization: 'Bearer e2e-secret', 'content-type': 'application/scim+json' },
        body: JSON.stringify({
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          userName: 'e2e-user',
        }),
      });
      assert.equal(created.status, 201);
      const body = (await created.json()) as { id: string; meta: { location: string } };
      userId = body.id;
      assert.equal(created.headers.get('location'), body.meta.location);
      assert.ok(body.meta.location.startsWith(`${base}/Users/`));
      assert.ok(existsSync(join(dataDir, 'PG_VERSION')), 'the embedded store writes into SCIMD_DATA_DIR');

      // A second process on the same embedded store is refused: PGlite's files have one writer.
      const second = await new Promise<{ code: number | null; err: string }>((resolve) => {
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          PORT: '0',
          SCIMD_DATA_DIR: dataDir,
          SCIMD_LOG_LEVEL: 'warn',
        };
        delete env.DATABASE_URL;
        const c = spawn(process.execPath, ['bin/scimd.js', 'serve'], {
          env,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let err = '';
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('exit', (code) => resolve({ code, err }));
      });
      assert.equal(second.code, 1);
      assert.equal(
        second.err.trim(),
        `scimd: the embedded store in ${dataDir} is in use by process ${child.pid} (one process at a time)`,
      );
    } finally {
      await stop(child);
    }

    ({ child, base } = await start());
    try {
      const res = await fetch(`${base}/Users/${userId}`, { headers: { authorization: 'Bearer e2e-secret' } });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { userName: string }).userName, 'e2e-user');
      const health = await fetch(base.replace('/scim/v2', '/health'));
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
    } finally {
      await stop(child);
    }
  },
);

test('scimd --help lists the commands; an unknown command exits non-zero', async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn(process.execPath, ['bin/scimd.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (out += d.toString()));
      c.on('exit', (code) => resolve({ code, out }));
    });
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /serve \[options\]/);
  const bad = await run(['no-such-command']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /unknown command/);
});
