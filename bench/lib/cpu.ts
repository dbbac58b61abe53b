/**
 * CPU time of the processes in a load test (Linux /proc), to tell "the server is slow" from "the
 * machine is full": a load generator, a server and PostgreSQL share few cores here.
 */
import { readdirSync, readFileSync } from 'node:fs';

// USER_HZ: 100 on every mainstream Linux build; /proc reports utime/stime in these ticks.
const TICKS_PER_SECOND = 100;

function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces): utime is 14th, stime 15th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

function postgresPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'postgres';
        } catch {
          return false;
        }
      })
      .map(Number);
  } catch {
    return [];
  }
}

export interface CpuUse {
  /** Cores busy on average (CPU seconds per wall second). */
  server: number;
  postgres: number;
  loadGenerator: number;
}

export interface CpuSnapshot {
  wall: number;
  server: number;
  postgres: Map<number, number>;
  self: NodeJS.CpuUsage;
}

export function snapshot(serverPid: number): CpuSnapshot {
  const postgres = new Map<number, number>();
  for (const pid of postgresPids()) {
    const s = cpuSecondsOf(pid);
    if (s !== undefined) postgres.set(pid, s);
  }
  return {
    wall: performance.now(),
    server: cpuSecondsOf(serverPid) ?? NaN,
    postgres,
    self: process.cpuUsage(),
  };
}

export function cpuSince(before: CpuSnapshot, serverPid: number): CpuUse {
  const after = snapshot(serverPid);
  const wall = (after.wall - before.wall) / 1000;
  let pg = 0;
  // Backends started during the run count from zero; ones that ended during it are lost (rare: the pool keeps them).
  for (const [pid, s] of after.postgres) pg += s - (before.postgres.get(pid) ?? 0);
  const self = process.cpuUsage(before.self);
  return {
    server: (after.server - before.server) / wall,
    postgres: pg / wall,
    loadGenerator: (self.user + self.system) / 1e6 / wall,
  };
}
