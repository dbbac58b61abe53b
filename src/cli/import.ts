/**
 * `scimd import devices <file>`: a manufacturer's device list (CSV or JSON lines, docs/import.md)
 * into a tenant, through the same validation and server behaviour as POST /Devices. Direct mode
 * only: it opens the store itself, like the admin commands without --url.
 *
 * Exit codes: 0 every row imported (or valid, with --dry-run), 2 some rows failed (the others are
 * imported), 1 nothing could be done (unreadable file, unknown tenant or column, store error).
 */
import { createWriteStream, readFileSync, statSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { importDevices } from '../import/devices.ts';
import { ColumnResolver, InputError, parseHeaderMap } from '../import/mapping.ts';
import {
  DEFAULT_BATCH_SIZE,
  formatOf,
  type ImportFormat,
  type ImportSummary,
  type RowError,
} from '../import/runner.ts';
import { createServerRegistry } from '../registry.ts';
import { openDatabase, StoreBusyError } from '../store/open.ts';
import { CliError } from './output.ts';

interface ImportOptions {
  tenant: string;
  format?: string;
  map?: string;
  ignoreUnknownColumns?: boolean;
  dryRun?: boolean;
  errors?: string;
  json?: boolean;
  batchSize: number;
  concurrency?: number;
  baseUrl?: string;
  dataDir?: string;
  databaseUrl?: string;
}

const ERRORS_ON_STDERR = 20;

function parseConcurrency(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 16))
    throw new CliError(`--concurrency must be an integer from 1 to 16; got "${value}"`);
  return n;
}

function parseBatchSize(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 10_000))
    throw new CliError(`--batch-size must be an integer from 1 to 10000; got "${value}"`);
  return n;
}

function readJsonFile(file: string, option: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(
      `cannot read ${option} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${option} ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The error report: CSV when the file name ends in .csv, JSON lines otherwise. */
class ErrorReport {
  private readonly out: WriteStream;
  private readonly csv: boolean;

  constructor(file: string) {
    this.csv = file.toLowerCase().endsWith('.csv');
    this.out = createWriteStream(file);
    if (this.csv) this.out.write('row,line,status,scimType,detail\n');
  }

  async write(e: RowError): Promise<void> {
    const line = this.csv
      ? `${[e.row, e.line, e.status, e.scimType ?? '', e.detail].map(csvCell).join(',')}\n`
      : `${JSON.stringify(e)}\n`;
    if (!this.out.write(line)) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
  }
}

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function describeError(e: RowError): string {
  return `row ${e.row} (line ${e.line}): ${e.status}${e.scimType ? ` ${e.scimType}` : ''}: ${e.detail}`;
}

function humanSummary(s: ImportSummary & { tenant: string; dryRun: boolean }): string {
  const failed = s.failed ? `, ${s.failed} failed` : '';
  const timing = `in ${s.seconds.toFixed(2)} s (${s.rate} devices/s)`;
  return s.dryRun
    ? `Dry run: ${s.valid} of ${s.rows} rows valid${failed}; nothing imported ${timing}`
    : `Imported ${s.imported} of ${s.rows} rows into tenant ${s.tenant}${failed} ${timing}`;
}

export function registerImport(program: Command): void {
  const cmd = program
    .command('import')
    .description('Import resources from a non-SCIM source (direct mode: opens the store itself)');

  cmd
    .command('devices <file>')
    .description(
      "Import a manufacturer's device list (CSV with a header row, or JSON lines) into a tenant; " +
        'see docs/import.md for the columns. Exit code 0: every row imported; 2: some rows failed ' +
        '(the others are imported); 1: nothing imported (bad file, unknown tenant or column)',
    )
    .addOption(new Option('--tenant <id>', 'the tenant to import into').default('default'))
    .addOption(
      new Option('--format <format>', 'input format (default: from the file extension)').choices([
        'csv',
        'jsonl',
      ]),
    )
    .option(
      '--map <file.json>',
      'JSON object renaming the file\'s headers to columns ({"MAC": "ble.deviceMacAddress"}; null skips one)',
    )
    .option('--ignore-unknown-columns', 'skip columns that are not documented instead of refusing the file')
    .option('--dry-run', 'validate every row (uniqueness included) and report; import nothing')
    .option(
      '--errors <file>',
      'write every failed row to this file (CSV if it ends in .csv, else JSON lines)',
    )
    .option('--json', 'print the summary as JSON')
    .addOption(
      new Option('--batch-size <n>', `rows per transaction (default ${DEFAULT_BATCH_SIZE})`)
        .argParser(parseBatchSize)
        .default(DEFAULT_BATCH_SIZE, String(DEFAULT_BATCH_SIZE)),
    )
    .addOption(
      new Option(
        '--concurrency <n>',
        'batches stored at the same time, PostgreSQL only (default 1: of two rows with the same unique value the earlier one wins)',
      ).argParser(parseConcurrency),
    )
    .addOption(
      new Option('--base-url <url>', 'public base URL of the server, for the $ref of applications').env(
        'SCIMD_BASE_URL',
      ),
    )
    .addOption(
      new Option('--data-dir <dir>', 'folder of the embedded store (default ./data)').env('SCIMD_DATA_DIR'),
    )
    .addOption(new Option('--database-url <url>', 'PostgreSQL connection string').env('DATABASE_URL'))
    .action(async (file: string, opts: ImportOptions) => {
      process.exitCode = await importDevicesCommand(file, opts);
    });
}

async function importDevicesCommand(file: string, opts: ImportOptions): Promise<number> {
  try {
    if (!statSync(file).isFile()) throw new CliError(`${file} is not a file`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const format = (opts.format as ImportFormat | undefined) ?? formatOf(file);
  if (!format) throw new CliError(`cannot tell the format of ${file} from its name: use --format csv|jsonl`);
  let resolver: ColumnResolver;
  try {
    const map = opts.map ? parseHeaderMap(readJsonFile(opts.map, '--map'), `--map ${opts.map}`) : {};
    resolver = new ColumnResolver(map, opts.ignoreUnknownColumns ?? false);
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message);
    throw err;
  }

  const registry = createServerRegistry();
  let db;
  try {
    db = await openDatabase({ databaseUrl: opts.databaseUrl, dataDir: opts.dataDir ?? './data' }, registry);
  } catch (err) {
    if (err instanceof StoreBusyError) {
      throw new CliError(`${err.message}: stop scimd serve first, or import over PostgreSQL (DATABASE_URL)`);
    }
    throw err;
  }
  let report: ErrorReport | undefined;
  let bar: SingleBar | undefined;
  try {
    if (opts.errors) report = new ErrorReport(opts.errors);
    const shown: RowError[] = [];
    let unshown = 0;
    if (process.stderr.isTTY) {
      bar = new SingleBar({
        stream: process.stderr,
        format: 'importing |{bar}| {percentage}% | {rows} rows, {failed} failed',
        hideCursor: true,
        clearOnComplete: true,
      });
      bar.start(statSync(file).size, 0, { rows: 0, failed: 0 });
    }
    const dryRun = opts.dryRun ?? false;
    const summary = await importDevices({
      db,
      registry,
      tenant: opts.tenant,
      origin: opts.baseUrl ?? `http://localhost:${process.env.PORT ?? 8080}`,
      file,
      format,
      resolver,
      dryRun,
      batchSize: opts.batchSize,
      // The embedded store has one connection: batches would only queue.
      concurrency: db.kind === 'postgres' ? (opts.concurrency ?? 1) : 1,
      onError: async (e) => {
        if (report) await report.write(e);
        else if (shown.length < ERRORS_ON_STDERR) shown.push(e);
        else unshown++;
      },
      onProgress: (p) => bar?.update(p.bytes, { rows: p.rows, failed: p.failed }),
    });
    bar?.stop();
    bar = undefined;
    await report?.close();
    report = undefined;

    for (const e of shown) process.stderr.write(`scimd: ${describeError(e)}\n`);
    if (unshown)
      process.stderr.write(`scimd: ... and ${unshown} more failed rows (--errors <file> lists them all)\n`);
    const out = { file, format, tenant: opts.tenant, dryRun, ...summary };
    process.stdout.write(opts.json ? `${JSON.stringify(out, null, 2)}\n` : `${humanSummary(out)}\n`);
    return summary.failed ? 2 : 0;
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message);
    throw err;
  } finally {
    bar?.stop();
    await report?.close().catch(() => undefined);
    await db.close();
  }
}
