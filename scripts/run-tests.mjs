// Runs every test file with node's built-in test runner through tsx.
// Node 20 does not expand globs and finds no .ts tests by itself, so the file list is built here
// and an empty list is an error (a run that tests nothing must not pass).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const filter = process.argv.slice(2);
let files = collect('test').sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// The CLI tests start `scimd` many times; through tsx each start spends about a second compiling
// the sources. They run one esbuild bundle of the same sources instead (test/helpers/cli-entry.ts),
// built here once per run; test/e2e/start.test.ts still starts bin/scimd.js, the entry users run.
const bundle = join('node_modules', '.cache', 'scimd-test', 'scimd.mjs');
// esbuild's API (the one tsx itself uses), not its bin: the bin may be a native binary.
try {
  await build({
    entryPoints: [join('src', 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    target: 'node20',
    logLevel: 'warning',
    outfile: bundle,
  });
} catch (err) {
  console.error('could not bundle src/cli/main.ts for the CLI tests', err);
  process.exit(1);
}
process.env.SCIMD_TEST_ENTRY = bundle;

const res = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    '--test-concurrency=2',
    '--test-timeout=600000',
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
