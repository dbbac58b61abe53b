/**
 * `scimd import devices` as a user runs it: exit codes, summary, error report, dry run, --map,
 * unknown columns. The embedded store always; a scratch PostgreSQL database too when DATABASE_URL
 * is set. The store is prepared and inspected through createApp, before and after each CLI run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AdminService } from '../../src/admin/service.ts';
import { DEFAULT_LIMITS } from '../../src/config.ts';
import { createServerRegistry } from '../../src/registry.ts';
import { CursorCodec } from '../../src/service/cursor.ts';
import { ResourceService } from '../../src/service/resources.ts';
import { openDatabase } from '../../src/store/open.ts';
import { TenantDirectory } from '../../src/tenancy/directory.ts';
import { BLE, DEVICE_SETTINGS, type Json } from '../devices/helpers.ts';
import { cleanEnv, scimd, scratchDatabase, type Run } from '../cli/run.ts';

const TENANT = 'factory';
const ORIGIN = 'http://scimd.test';

type Store = { dataDir: string } | { databaseUrl: string };

interface Opened {
  registry: ReturnType<typeof createServerRegistry>;
  service: ResourceService;
  admin: AdminService;
}

/** The store opened in this process (not createApp: its configuration would read DATABASE_URL from the environment). */
async function withApp<T>(store: Store, fn: (app: Opened) => Promise<T>): Promise<T> {
  const registry = createServerRegistry();
  const db = await openDatabase(store, registry);
  try {
    const service = new ResourceService(db, registry, new CursorCodec('test-cursor-secret'));
    return await fn({ registry, service, admin: new AdminService(db, registry, new TenantDirectory(db)) });
  } finally {
    await db.close();
  }
}

const ctx = { tenant: TENANT, baseUrl: `${ORIGIN}/tenants/${TENANT}/scim/v2`, limits: DEFAULT_LIMITS };

async function macs(store: Store): Promise<string[]> {
  return withApp(store, async (app) => {
    const list = await app.service.list(ctx, [app.registry.resourceType('Device')!], { count: 1000 });
    return (list.Resources ?? []).map((d: Json) => d[BLE]?.deviceMacAddress as string).sort();
  });
}

async function scenario(store: Store, env: NodeJS.ProcessEnv, dir: string): Promise<void> {
  let appId = '';
  await withApp(store, async (app) => {
    await app.admin.createTenant({ id: TENANT, settings: DEVICE_SETTINGS as never });
    const rt = app.registry.resourceType('EndpointApp')!;
    const created = await app.service.create(ctx, rt, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:EndpointApp'],
      applicationType: 'deviceControl',
      applicationName: 'Control',
    });
    appId = created.resource.id as string;
  });
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const run = (args: string[]): Promise<Run> =>
    scimd(['import', 'devices', ...args, '--tenant', TENANT, '--base-url', ORIGIN], env);

  // Unknown column: exit 1, one line, nothing imported.
  const unknown = await run([
    file('unknown.csv', 'displayName,active,ble.deviceMacAddress,Colour\nx,true,aa:bb:cc:00:00:01,red\n'),
  ]);
  assert.equal(unknown.code, 1, unknown.stderr);
  assert.equal(unknown.stdout, '');
  assert.equal(
    unknown.stderr,
    'scimd: unknown column "Colour" (see docs/import.md for the columns; --map renames headers, ' +
      '--ignore-unknown-columns skips them)\n',
  );

  const header =
    'displayName,active,ble.deviceMacAddress,ble.versionSupport,ble.pairingMethods,applications\n';
  const good = `${header}One,true,aa:bb:cc:00:00:01,5.3,justWorks,${appId}\nTwo,yes,aa:bb:cc:00:00:02,5.3,passKey;justWorks,\n`;
  const goodFile = file('good.csv', good.replace('passKey;', ''));

  // Dry run: exit 0, the summary, nothing imported.
  const dry = await run([goodFile, '--dry-run', '--json']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.stderr, '');
  const drySummary = JSON.parse(dry.stdout);
  assert.deepEqual(
    { ...drySummary, seconds: 0, rate: 0 },
    {
      file: goodFile,
      format: 'csv',
      tenant: TENANT,
      dryRun: true,
      rows: 2,
      valid: 2,
      imported: 0,
      failed: 0,
      seconds: 0,
      rate: 0,
    },
  );
  assert.deepEqual(await macs(store), []);

  // Everything imported: exit 0, the summary line.
  const ok = await run([goodFile]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr, '');
  assert.match(ok.stdout, /^Imported 2 of 2 rows into tenant factory in \d+\.\d\d s \(\d+ devices\/s\)\n$/);
  assert.deepEqual(await macs(store), ['aa:bb:cc:00:00:01', 'aa:bb:cc:00:00:02']);

  // Some rows failed: exit 2; the good rows are imported; the failures in the --errors file (CSV).
  const mixed = file(
    'mixed.csv',
    `${header}Three,true,aa:bb:cc:00:00:03,5.3,justWorks,\n` +
      'Dup,true,AA:BB:CC:00:00:01,5.3,justWorks,\n' +
      '"Bad, MAC",true,zz,5.3,justWorks,\n' +
      'Four,no,aa:bb:cc:00:00:04,5.3,justWorks,\n',
  );
  const errorsCsv = join(dir, 'errors.csv');
  const partial = await run([mixed, '--errors', errorsCsv]);
  assert.equal(partial.code, 2, partial.stderr);
  assert.equal(partial.stderr, '');
  assert.match(partial.stdout, /^Imported 2 of 4 rows into tenant factory, 2 failed in /);
  const errorLines = readFileSync(errorsCsv, 'utf8').split('\n');
  assert.equal(errorLines[0], 'row,line,status,scimType,detail');
  assert.equal(errorLines[1], `2,3,409,uniqueness,Another Device already has this ${BLE}:deviceMacAddress`);
  assert.match(
    errorLines[2],
    /^3,4,400,invalidValue,"Attribute ""urn:.*:deviceMacAddress"": ""zz"" is not a valid eui48/,
  );
  assert.equal(errorLines[3], '');
  assert.equal(errorLines.length, 4);
  assert.deepEqual(await macs(store), [
    'aa:bb:cc:00:00:01',
    'aa:bb:cc:00:00:02',
    'aa:bb:cc:00:00:03',
    'aa:bb:cc:00:00:04',
  ]);

  // Without --errors the failed rows go to stderr; JSON lines input; --map for a flat JSON object.
  const map = file('map.json', JSON.stringify({ MAC: 'ble.deviceMacAddress', Enabled: 'active' }));
  const jsonl = file(
    'devices.jsonl',
    `${JSON.stringify({ displayName: 'Five', Enabled: 1, MAC: 'aa:bb:cc:00:00:05', 'ble.versionSupport': '5.3', 'ble.pairingMethods': 'null' })}\n` +
      `${JSON.stringify({ displayName: 'Dup again', Enabled: true, MAC: 'aa:bb:cc:00:00:05', 'ble.versionSupport': '5.3', 'ble.pairingMethods': 'null' })}\n`,
  );
  const withMap = await run([jsonl, '--map', map, '--json']);
  assert.equal(withMap.code, 2, withMap.stderr);
  assert.equal(
    withMap.stderr,
    `scimd: row 2 (line 2): 409 uniqueness: Another Device already has this ${BLE}:deviceMacAddress\n`,
  );
  const summary = JSON.parse(withMap.stdout);
  assert.deepEqual([summary.format, summary.rows, summary.imported, summary.failed], ['jsonl', 2, 1, 1]);
  assert.deepEqual((await macs(store)).at(-1), 'aa:bb:cc:00:00:05');

  // Fatal errors: unknown tenant, missing file, no format.
  const noTenant = await scimd(['import', 'devices', goodFile, '--tenant', 'nope'], env);
  assert.deepEqual([noTenant.code, noTenant.stdout, noTenant.stderr], [1, '', 'scimd: no tenant nope\n']);
  const missing = await run([join(dir, 'missing.csv')]);
  assert.deepEqual(
    [missing.code, missing.stderr],
    [1, `scimd: cannot read ${join(dir, 'missing.csv')}: ENOENT\n`],
  );
  const noFormat = await run([file('list.txt', 'x')]);
  assert.deepEqual(
    [noFormat.code, noFormat.stderr],
    [1, `scimd: cannot tell the format of ${join(dir, 'list.txt')} from its name: use --format csv|jsonl\n`],
  );
}

describe('scimd import devices', { concurrency: true }, () => {
  test('embedded store', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scimd-import-cli-'));
    const dataDir = join(dir, 'data');
    try {
      await scenario({ dataDir }, cleanEnv({ SCIMD_DATA_DIR: dataDir }), dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  if (process.env.DATABASE_URL) {
    test('PostgreSQL: a scratch database on the DATABASE_URL server', { timeout: 300_000 }, async () => {
      const db = (await scratchDatabase())!;
      const dir = mkdtempSync(join(tmpdir(), 'scimd-import-cli-'));
      try {
        await scenario({ databaseUrl: db.url }, cleanEnv({ DATABASE_URL: db.url }), dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await db.drop();
      }
    });
  }
});
