/** autocannon runs: a warm-up whose figures are discarded, then the measured run. */
import autocannon from 'autocannon';
import { cpuSince, snapshot, type CpuUse } from './cpu.ts';

export interface LoadResult {
  label: string;
  rps: number;
  p50: number;
  p99: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Cores used during the measured run by the server, PostgreSQL and this process. */
  cpu: CpuUse;
}

export interface LoadSpec {
  label: string;
  port: number;
  /** The server process, for its CPU time. */
  pid: number;
  /** Paths requested in turn (one path = the same request every time). */
  paths: string[];
  token?: string;
  /** HTTPS, with these TLS options (a client certificate) for every connection. */
  tls?: { cert?: Buffer; key?: Buffer; ca?: Buffer };
  connections: number;
  warmupSeconds: number;
  seconds: number;
}

async function once(spec: LoadSpec, seconds: number) {
  let k = 0;
  const headers: Record<string, string> = { accept: 'application/scim+json' };
  if (spec.token) headers.authorization = `Bearer ${spec.token}`;
  return autocannon({
    url: `${spec.tls ? 'https' : 'http'}://127.0.0.1:${spec.port}`,
    ...(spec.tls ? { tlsOptions: spec.tls } : {}),
    connections: spec.connections,
    duration: seconds,
    headers,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: spec.paths[k++ % spec.paths.length] }),
      },
    ],
  });
}

export async function loadTest(spec: LoadSpec): Promise<LoadResult> {
  if (spec.warmupSeconds > 0) await once(spec, spec.warmupSeconds);
  const before = snapshot(spec.pid);
  const r = await once(spec, spec.seconds);
  const cpu = cpuSince(before, spec.pid);
  return {
    label: spec.label,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    total: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    cpu,
  };
}
