/**
 * Real scimd processes for end-to-end tests: `bin/scimd.js serve` on a loopback port chosen up
 * front (so SCIMD_BASE_URL, which signs into events and locations, is known before the start),
 * on its own embedded store folder or its own scratch PostgreSQL database when DATABASE_URL is set.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scratchDatabase } from './app.ts';
import { SCIMD_ENTRY } from './cli-entry.ts';

/** A port free right now on 127.0.0.1 (the kernel's choice, released at once). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Where one node keeps its data: a folder of the embedded store, or a scratch database. */
export interface NodeStore {
  env: NodeJS.ProcessEnv;
  drop(): Promise<void>;
}

export async function nodeStore(): Promise<NodeStore> {
  const scratch = await scratchDatabase('scimd_e2e');
  if (scratch) return { env: { DATABASE_URL: scratch.url }, drop: scratch.drop };
  const dir = mkdtempSync(join(tmpdir(), 'scimd-node-'));
  return {
    env: { SCIMD_DATA_DIR: dir },
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface ScimdProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** Everything the process wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** SIGTERM and wait for the exit (graceful: workers stop, store closes). */
  stop(): Promise<void>;
  /** SIGKILL and wait: a crash, nothing flushed. */
  kill(): Promise<void>;
}

/**
 * Starts `scimd serve` on `port` with the store's environment plus `env`, and resolves when it
 * listens. DATABASE_URL is removed unless the store sets it, so an embedded node stays embedded.
 */
export async function startScimd(
  store: NodeStore,
  port: number,
  env: NodeJS.ProcessEnv = {},
): Promise<ScimdProcess> {
  const origin = `http://127.0.0.1:${port}`;
  const full: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    SCIMD_BASE_URL: origin,
    SCIMD_LOG_LEVEL: 'warn',
    ...env,
  };
  delete full.DATABASE_URL;
  Object.assign(full, store.env);
  const child = spawn(process.execPath, [SCIMD_ENTRY, 'serve', '--json'], {
    env: full,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave it behind: a process that starts after the test gave up would run on.
      child.kill('SIGKILL');
      reject(new Error(`scimd did not start within 180 s: ${out}`));
    }, 180_000);
    const onData = () => {
      if (out.split('\n').some((l) => l.startsWith('{'))) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`scimd exited with ${code}: ${out}`));
    };
    child.stdout!.on('data', onData);
    child.on('exit', onExit);
  });
  const exit = (signal: NodeJS.Signals) => async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  };
  return { child, origin, output: () => out, stop: exit('SIGTERM'), kill: exit('SIGKILL') };
}
