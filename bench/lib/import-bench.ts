/**
 * `scimd import devices`: the import rate of a manufacturer's BLE list, measured as a user runs it
 * (`node bin/scimd.js import devices <file> --tenant <t>`, DATABASE_URL set), wall clock from start
 * to exit, into a fresh scratch database that holds only the tenant.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminService } from '../../src/admin/service.ts';
import { createServerRegistry } from '../../src/registry.ts';
import { openDatabase } from '../../src/store/open.ts';
import { TenantDirectory } from '../../src/tenancy/directory.ts';
import { GATEWAY } from './devices-suite.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TENANT = 'bench-import';

/** The header of the generated file (docs/import.md; ble.pairingMethods is required by the BLE schema). */
export const IMPORT_COLUMNS = [
  'displayName',
  'active',
  'ble.deviceMacAddress',
  'ble.isRandom',
  'ble.versionSupport',
  'ble.pairingMethods',
];

export interface ImportResult {
  devices: number;
  command: string;
  /** Wall clock of the command, process start to exit. */
  seconds: number;
  perSecond: number;
  /** The command's own summary (--json), when it printed one. */
  summary?: { rows: number; imported: number; failed: number; seconds: number; rate: number };
  exitCode: number;
  fileBytes: number;
}

/** Whether the importer exists in this checkout (another engineer is writing it). */
export function importerPresent(): string | undefined {
  const missing = ['src/cli/import.ts', 'src/import/devices.ts', 'bin/scimd.js'].filter(
    (f) => !existsSync(path.join(ROOT, f)),
  );
  return missing.length ? `not in this checkout: ${missing.join(', ')}` : undefined;
}

function csv(n: number): string {
  const lines = [IMPORT_COLUMNS.join(',')];
  for (let i = 0; i < n; i++) {
    // A vendor's spelling (upper case, hyphens): the importer must normalise it as POST /Devices does.
    const mac = [
      '0E',
      ...[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x5a].map((b) =>
        b.toString(16).padStart(2, '0').toUpperCase(),
      ),
    ].join('-');
    lines.push(`Asset tag ${String(i).padStart(6, '0')},true,${mac},false,5.3;4.2,justworks`);
  }
  return `${lines.join('\n')}\n`;
}

export async function runImport(
  databaseUrl: string,
  n: number,
  log: (msg: string) => void,
): Promise<ImportResult> {
  const registry = createServerRegistry();
  const db = await openDatabase({ databaseUrl }, registry);
  try {
    await new AdminService(db, registry, new TenantDirectory(db)).createTenant({
      id: TENANT,
      settings: { devices: GATEWAY },
    });
  } finally {
    await db.close();
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scimd-bench-import-'));
  try {
    const file = path.join(dir, 'devices.csv');
    const text = csv(n);
    writeFileSync(file, text);
    const args = ['bin/scimd.js', 'import', 'devices', file, '--tenant', TENANT, '--json'];
    log(`  node ${args.join(' ')}`);
    const t0 = performance.now();
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(
          process.execPath,
          args,
          { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl }, maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) =>
            resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      },
    );
    const seconds = (performance.now() - t0) / 1000;
    let summary: ImportResult['summary'];
    try {
      summary = JSON.parse(stdout) as ImportResult['summary'];
    } catch {
      summary = undefined;
    }
    if (code !== 0) log(`  import exited ${code}: ${stderr.slice(0, 2000)}`);
    const imported = summary?.imported ?? (code === 0 ? n : 0);
    return {
      devices: n,
      command: `node bin/scimd.js import devices devices.csv --tenant ${TENANT} --json`,
      seconds,
      perSecond: imported / seconds,
      summary,
      exitCode: code,
      fileBytes: Buffer.byteLength(text),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
