/**
 * The benchmark suite (docs/benchmarks.md describes the method):
 *   npm run bench [-- --store pglite|postgres|both] [--quick] [--docs|--no-docs]
 * Runs each store in turn, prints a table and (full runs) rewrites docs/benchmarks.md.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { killAllServers, stopAllServers } from './lib/children.ts';
import { NOTES, observations } from './lib/notes.ts';
import { consoleReport, markdown, type Machine } from './lib/report.ts';
import { runStore, type Settings, type StoreKind, type StoreResult } from './lib/suite.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCS = path.join(ROOT, 'docs', 'benchmarks.md');
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const FULL: Settings = {
  users: 100_000,
  groups: 1_000,
  connections: 50,
  warmupSeconds: 2,
  seconds: 10,
  lookupSamples: 200,
  emailSamples: 30,
  patchSamples: 100,
  bulkUsers: 10_000,
  bulkBatch: 1_000,
};
const QUICK: Settings = {
  ...FULL,
  users: 10_000,
  warmupSeconds: 1,
  seconds: 3,
  emailSamples: 20,
  bulkUsers: 2_000,
};

function parseArgs(argv: string[]): { stores: StoreKind[]; quick: boolean; docs: boolean } {
  let store = 'both';
  let quick = false;
  let docs: boolean | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--store') store = argv[++i] ?? '';
    else if (a.startsWith('--store=')) store = a.slice('--store='.length);
    else if (a === '--quick') quick = true;
    else if (a === '--docs') docs = true;
    else if (a === '--no-docs') docs = false;
    else
      throw new Error(`unknown argument ${a} (use --store pglite|postgres|both, --quick, --docs, --no-docs)`);
  }
  const stores: StoreKind[] =
    store === 'both' ? ['pglite', 'postgres'] : store === 'pglite' || store === 'postgres' ? [store] : [];
  if (stores.length === 0) throw new Error(`--store must be pglite, postgres or both, got "${store}"`);
  return { stores, quick, docs: docs ?? !quick };
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux: fall back to what Node reports
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** The code measured: commit, and whether src/ had uncommitted changes. */
function codeVersion(): string {
  if (process.env.BENCH_GIT_COMMIT) return process.env.BENCH_GIT_COMMIT;
  try {
    const git = (args: string[]) => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' }).trim();
    const dirty = git(['status', '--porcelain', '--', 'src']) !== '';
    return `${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ' with uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function pgliteVersion(): string {
  const pkg = JSON.parse(
    readFileSync(path.join(ROOT, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8'),
  ) as { version: string };
  return `@electric-sql/pglite ${pkg.version}`;
}

async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function scratchUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

const t0 = Date.now();
function log(msg: string): void {
  console.log(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s ${msg}`);
}

/** Scratch resources to remove, whatever way the run ends. */
const cleanups: (() => Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  await stopAllServers();
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    await fn().catch((err: unknown) => console.error('cleanup failed:', err));
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const settings = args.quick ? QUICK : FULL;
  const machine: Machine = {
    cpu: cpuModel(),
    cores: os.cpus().length,
    memoryGiB: os.totalmem() / 1024 ** 3,
    node: process.version,
    pglite: pgliteVersion(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    code: codeVersion(),
  };
  if (args.stores.includes('postgres')) {
    machine.postgres = await withAdmin(
      async (c) => (await c.query<{ v: string }>('SELECT version() AS v')).rows[0].v.split(',')[0],
    );
  }
  log(`scimd benchmark, ${args.quick ? 'quick' : 'full'} run on ${args.stores.join(' and ')}`);

  const results: StoreResult[] = [];
  const failures: { kind: StoreKind; error: string }[] = [];
  for (const kind of args.stores) {
    let target;
    if (kind === 'pglite') {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'scimd-bench-'));
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      target = { kind, dataDir: path.join(dir, 'data') };
    } else {
      const name = `scimd_bench_${randomBytes(6).toString('hex')}`;
      await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
      cleanups.push(() =>
        withAdmin(async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
      );
      target = { kind, databaseUrl: scratchUrl(name) };
    }
    try {
      results.push(await runStore(target, settings, log));
    } catch (err) {
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`[${kind}] FAILED: ${error}`);
      failures.push({ kind, error });
    } finally {
      await stopAllServers();
      await cleanups.pop()!();
    }
  }

  console.log(consoleReport(results));
  if (args.docs && results.length > 0) {
    const flags = [
      ...(args.quick ? ['--quick'] : []),
      ...(args.stores.length === 1 ? ['--store', args.stores[0]] : []),
    ];
    const command = `npm run bench${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
    writeFileSync(
      DOCS,
      markdown({ machine, settings, results, failures, notes: NOTES, observations, command }),
    );
    log(`wrote ${path.relative(ROOT, DOCS)}`);
  }
  log('done');
  if (failures.length > 0) process.exitCode = 1;
}

process.on('exit', killAllServers);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
