/**
 * Helpers of the CLI tests: run `node bin/scimd.js` as a user would, with an environment that
 * holds only what each test gives it (no SCIMD_* or DATABASE_URL leaking in from the shell).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import pg from 'pg';
import { SCIMD_ENTRY } from '../helpers/cli-entry.ts';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** process.env without the variables scimd reads. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('SCIMD_') || k === 'DATABASE_URL' || k === 'PORT' || k === 'HOST') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export function scimd(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCIMD_ENTRY, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A successful run's stdout as JSON. */
export function parsed<T>(r: Run): T {
  assert.equal(r.code, 0, `exit code 0 expected; stderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export function ok(r: Run): string {
  assert.equal(r.code, 0, `exit code 0 expected; stderr: ${r.stderr}`);
  return r.stdout;
}

/** A failed run: non-zero exit, nothing on stdout, exactly the one line `scimd: <message>` on stderr. */
export function failed(r: Run, message: string): void {
  assert.notEqual(r.code, 0, `failure expected; stdout: ${r.stdout}`);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `scimd: ${message}\n`);
}

/** A scratch database on the DATABASE_URL server, or undefined when DATABASE_URL is unset. */
export async function scratchDatabase(): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const base = process.env.DATABASE_URL;
  if (!base) return undefined;
  const name = `scimd_cli_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: base });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

/** `scimd serve --json` on a free port; resolves with the listening address once it prints it. */
export async function serve(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ address: string; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [SCIMD_ENTRY, 'serve', '--json', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', ...args],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { address: string }).address);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
  return {
    address,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
