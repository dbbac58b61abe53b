/**
 * Every command's --help, and the failures caught before any store is opened: missing or malformed
 * options. SCIMD_DATA_DIR names a folder that must still be empty afterwards.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cleanEnv, failed, ok, scimd } from './run.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'scimd-cli-help-'));
const env = cleanEnv({ SCIMD_DATA_DIR: dataDir });
after(() => rmSync(dataDir, { recursive: true, force: true }));

const COMMANDS = [
  [],
  ['serve'],
  ['tenant'],
  ['tenant', 'create'],
  ['tenant', 'list'],
  ['tenant', 'show'],
  ['tenant', 'delete'],
  ['client'],
  ['client', 'create'],
  ['client', 'list'],
  ['client', 'delete'],
  ['token'],
  ['token', 'issue'],
  ['token', 'list'],
  ['token', 'revoke'],
  ['import'],
  ['import', 'devices'],
  ['upstream'],
  ['upstream', 'add'],
  ['upstream', 'list'],
  ['upstream', 'show'],
  ['upstream', 'update'],
  ['upstream', 'remove'],
  ['upstream', 'events'],
  ['feed'],
  ['feed', 'add'],
  ['feed', 'list'],
  ['feed', 'show'],
  ['feed', 'update'],
  ['feed', 'remove'],
  ['feed', 'members'],
  ['feed', 'add-member'],
  ['feed', 'remove-member'],
  ['receiver'],
  ['receiver', 'add'],
  ['receiver', 'list'],
  ['receiver', 'show'],
  ['receiver', 'update'],
  ['receiver', 'remove'],
  ['receiver', 'events'],
  ['receiver', 'retry'],
  ['jit'],
  ['jit', 'oidc'],
  ['connection'],
  ['connection', 'add'],
  ['connection', 'list'],
  ['connection', 'show'],
  ['connection', 'update'],
  ['connection', 'remove'],
  ['connection', 'test'],
  ['flow'],
  ['flow', 'add'],
  ['flow', 'list'],
  ['flow', 'show'],
  ['flow', 'update'],
  ['flow', 'remove'],
  ['flow', 'run'],
  ['flow', 'plan'],
  ['flow', 'history'],
  ['push'],
  ['pull'],
];

test('--help of every command exits 0 and shows its usage', { timeout: 120_000 }, async () => {
  const runs = await Promise.all(COMMANDS.map((c) => scimd([...c, '--help'], env)));
  runs.forEach((r, i) => {
    const out = ok(r);
    assert.ok(out.startsWith(`Usage: ${['scimd', ...COMMANDS[i]].join(' ')} `), out);
    assert.equal(r.stderr, '');
  });
  const [top, serve] = runs.map((r) => r.stdout);
  const groups = new Set(COMMANDS.filter((c) => c.length > 0).map((c) => c[0]));
  for (const c of groups) assert.match(top, new RegExp(`^  ${c} `, 'm'));
  for (const o of [
    '--port',
    '--host',
    '--data-dir',
    '--database-url',
    '--base-url',
    '--log-level',
    '--tls-cert',
    '--tls-key',
    '--tls-client-ca',
    '--rate-limit',
  ]) {
    assert.match(serve, new RegExp(`\\s${o} `));
  }
  const tokenIssue = runs[COMMANDS.findIndex((c) => c.join(' ') === 'token issue')].stdout;
  for (const o of ['--tenant', '--client', '--expires-in', '--description', '--json', '--url', '--token']) {
    assert.match(tokenIssue, new RegExp(`\\s${o} `));
  }
  assert.match(runs[COMMANDS.findIndex((c) => c.join(' ') === 'tenant delete')].stdout, /--yes is required/);
});

test(
  'usage errors exit non-zero with one line on stderr, before opening a store',
  { timeout: 120_000 },
  async () => {
    const settingsFile = join(tmpdir(), `scimd-cli-settings-${process.pid}.json`);
    writeFileSync(settingsFile, '{"limits": {"maxPageSize": "many"}}');
    try {
      const cases: [string[], string][] = [
        [['client', 'create', '--scope', 'admin'], "required option '--name <name>' not specified"],
        [['client', 'create', '--name', 'x'], "required option '--scope <scope>' not specified"],
        [['token', 'issue'], "required option '--client <id>' not specified"],
        [['tenant', 'create'], "missing required argument 'id'"],
        [['tenant', 'list', '--bogus'], "unknown option '--bogus'"],
        [
          ['tenant', 'delete', 'acme'],
          'refusing to delete tenant acme without --yes (this deletes its resources, clients and tokens)',
        ],
        [
          ['token', 'issue', '--client', 'c', '--expires-in', '2w'],
          '--expires-in must be a positive number of seconds or e.g. 15m, 12h, 30d; got "2w"',
        ],
        [
          ['client', 'create', '--name', 'x', '--scope', 'admin', '--rate-limit', '100'],
          '--rate-limit must be <max>/<seconds> with positive integers, e.g. 100/60; got "100"',
        ],
        [
          ['client', 'create', '--name', 'x', '--scope', 'admin', '--cert-fingerprint', 'abc'],
          '--cert-fingerprint must be a SHA-256 fingerprint: 32 hex bytes, colons optional',
        ],
        [
          ['tenant', 'create', 't', '--settings', '{"limits":'],
          '--settings is not valid JSON: Unexpected end of JSON input',
        ],
        [
          ['tenant', 'create', 't', '--settings', '{"color":"red"}'],
          '--settings: settings has unknown property color',
        ],
        [
          ['tenant', 'create', 't', '--settings-file', settingsFile],
          `--settings-file ${settingsFile}: settings/limits/maxPageSize must be an integer`,
        ],
        [
          ['tenant', 'create', 't', '--settings', '{}', '--settings-file', settingsFile],
          "option '--settings <json>' cannot be used with option '--settings-file <path>'",
        ],
        [['serve', '--port', 'http'], '--port must be an integer between 0 and 65535; got "http"'],
        [['serve', '--tls-cert', 'server.crt'], 'TLS needs both a certificate and a key'],
        [['serve', '--tls-client-ca', 'ca.crt'], 'A client CA needs TLS (a certificate and a key)'],
        [
          ['serve', '--rate-limit', '0/60'],
          '--rate-limit must be <max>/<seconds> with positive integers, e.g. 100/60; got "0/60"',
        ],
      ];
      const runs = await Promise.all(cases.map(([args]) => scimd(args, env)));
      runs.forEach((r, i) => failed(r, cases[i][1]));
      assert.deepEqual(readdirSync(dataDir), [], 'no store was opened');
    } finally {
      rmSync(settingsFile, { force: true });
    }

    // An embedded store that another live process (a running server) holds is not opened again;
    // the lock file names that process (here: this test process, which is alive).
    const busy = mkdtempSync(join(tmpdir(), 'scimd-cli-busy-'));
    try {
      writeFileSync(join(busy, 'scimd.lock'), `${process.pid}\n`);
      failed(
        await scimd(['tenant', 'list', '--data-dir', busy], env),
        `the embedded store in ${busy} is in use by process ${process.pid} (one process at a time): ` +
          'while scimd serve runs, use --url and --token',
      );
      assert.deepEqual(readdirSync(busy), ['scimd.lock']);
    } finally {
      rmSync(busy, { recursive: true, force: true });
    }
  },
);
