/**
 * Server child processes: started with the same Node and tsx loader as the benchmark, registered
 * so that every one is killed when the benchmark ends, however it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerSpec } from '../server-process.ts';

const SERVER_SCRIPT = fileURLToPath(new URL('../server-process.ts', import.meta.url));
const running = new Set<ChildProcess>();

export interface ServerChild {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startServer(spec: ServerSpec, timeoutMs = 60_000): Promise<ServerChild> {
  // The spec (with the bearer token) goes through the environment, not argv, to stay out of `ps`.
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER_SCRIPT], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_SERVER_SPEC: JSON.stringify(spec) },
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });

  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      reject(new Error(`${spec.kind} server did not start within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${spec.kind} server exited with ${String(code)} before listening\n${stderr}`));
    });
  });

  return {
    port,
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Last-resort cleanup (process exit, signals): kill whatever is still running. */
export function killAllServers(): void {
  for (const child of running) child.kill('SIGKILL');
}

export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((c) => stopChild(c)));
}
