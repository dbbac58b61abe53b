/** The devices section: console table and markdown, from the same results. */
import { DEVICE_KINDS } from './device-data.ts';
import { LOOKUP_TARGET_MS, type DevicesResult, type DevicesSettings, type Lookup } from './devices-suite.ts';
import type { ImportResult } from './import-bench.ts';
import { IMPORT_COLUMNS } from './import-bench.ts';
import { loadAverageLine, machineLine, profileSection, STORE_NAME, table, type Machine } from './report.ts';
import { fmt, fmtInt } from './stats.ts';

export const IMPORT_TARGET = 5000;

export type ImportOutcome = { result: ImportResult } | { missing: string } | { error: string };

const met = (ok: boolean) => (ok ? '**met**' : '**missed**');

function lookupRows(r: DevicesResult): string[][] {
  const rows: string[][] = [];
  for (const l of r.lookups) {
    rows.push([
      l.label,
      `${l.summary.n} sequential requests`,
      `${fmt(l.summary.p50, 2)} ms`,
      `${fmt(l.summary.p99, 2)} ms`,
      `${fmt(l.profile.totalMs, 2)} ms`,
      met(l.summary.p50 < LOOKUP_TARGET_MS),
    ]);
    if (l.whatIf)
      rows.push([
        `… with the index below (benchmark-only)`,
        `${l.whatIf.summary.n} sequential requests`,
        `${fmt(l.whatIf.summary.p50, 2)} ms`,
        `${fmt(l.whatIf.summary.p99, 2)} ms`,
        `${fmt(l.whatIf.profile.totalMs, 2)} ms`,
        met(l.whatIf.summary.p50 < LOOKUP_TARGET_MS),
      ]);
  }
  return rows;
}

const LOOKUP_HEADER = [
  'lookup',
  'requests',
  'p50',
  'p99',
  'in-process (median of 5)',
  `target p50 < ${LOOKUP_TARGET_MS} ms`,
];

function loadLine(r: DevicesResult): string {
  const l = r.load;
  const total = l.rowsSeconds + l.ginSeconds + l.analyzeSeconds;
  return (
    `${fmtInt(l.devices)} devices (${DEVICE_KINDS.map((k) => `${fmtInt(l.byKind[k])} ${k}`).join(', ')}; ` +
    `${fmtInt(l.withApps)} with endpointAppsExt) loaded in ${fmt(total, 1)} s: rows ${fmt(l.rowsSeconds, 1)} s ` +
    `(${fmtInt(l.devices / l.rowsSeconds)} rows/s, batches of ${fmtInt(l.batch)}), GIN index ${fmt(l.ginSeconds, 1)} s, ` +
    `VACUUM ANALYZE and CHECKPOINT ${fmt(l.analyzeSeconds, 1)} s. Table with indexes: ${r.tableSize}.`
  );
}

function importLine(o: ImportOutcome | undefined): string {
  if (!o) return 'not run (`--store pglite`: the import is measured against PostgreSQL).';
  if ('missing' in o) return `not measured: the importer is ${o.missing}.`;
  if ('error' in o) return `failed: ${o.error}`;
  const r = o.result;
  const s = r.summary;
  return (
    `${fmtInt(r.devices)} BLE devices in ${fmt(r.seconds, 1)} s wall clock: **${fmtInt(r.perSecond)} devices/s** ` +
    `(exit code ${r.exitCode}${s ? `; its own summary: ${fmtInt(s.imported)} imported, ${fmtInt(s.failed)} failed, ${fmt(s.seconds, 1)} s, ${fmtInt(s.rate)} rows/s` : ''}).`
  );
}

function importWhy(r: ImportResult): string {
  const perRow = (r.seconds / r.devices) * 1000;
  return (
    `${fmt(perRow, 3)} ms per device end to end, against the 0.2 ms that 5,000/s allows. The importer ` +
    '(`importDevices` → `ResourceService.prepareBatch` / `storeBatch`) stores 500 rows per transaction in one multi-row ' +
    'statement (resources and their change-log rows), and validates the next batch while the previous one is stored; ' +
    'what remains per device is `prepareWrite` and the hook in Node.js, the row and its index entries (btree, GIN, ' +
    "change log) in PostgreSQL, and the start of the CLI process, with the machine's other work sharing the cores. " +
    '`--concurrency` above 1 overlaps more where there are cores to spare.'
  );
}

export function devicesConsole(results: DevicesResult[], imp: ImportOutcome | undefined): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`\n== Devices at scale, ${STORE_NAME[r.kind]} ==`, loadLine(r));
    for (const row of lookupRows(r)) out.push(`  ${row.join('  ')}`);
    for (const l of r.lookups) if (l.whatIf) out.push(`  index: ${l.whatIf.index}`);
  }
  out.push(`import: ${importLine(imp)}`);
  return out.join('\n');
}

function why(l: Lookup, r: DevicesResult, cores: number): string {
  const p = l.profile;
  const sqlMs = p.statements.reduce((a, st) => a + st.ms, 0);
  const head =
    `**${l.label}** (p50 ${fmt(l.summary.p50)} ms over HTTP): in-process ${fmt(p.totalMs)} ms, of which ` +
    `${fmt(sqlMs)} ms in ${p.statements.length} SQL statements (slowest ${fmt(p.slowest?.ms ?? NaN)} ms).`;
  const [la, lb] = r.loadAverage;
  const httpOnly =
    l.summary.p50 >= LOOKUP_TARGET_MS && p.totalMs < LOOKUP_TARGET_MS
      ? `It misses the target over HTTP only: in-process it takes ${fmt(p.totalMs)} ms. The rest is the HTTP request ` +
        `(parsing, authentication: one more SELECT for the opaque token, serialisation) and waiting for a core, ` +
        `on a machine whose 1-minute load average was ${fmt(la)}–${fmt(lb)} on ${cores} cores during the run.`
      : '';
  // Every list is one statement (ResourceRepository.list): the count, the page and each row's groups.
  const reason: Record<Lookup['id'], string> = {
    mac:
      'The BLE `deviceMacAddress` is unique (`uniqueness: server`), so the store has a unique expression index on ' +
      "`lower(doc -> <ble URN> ->> 'deviceMacAddress')`, and the `eui48` format turns the other spelling into the " +
      'stored one before the comparison: the count and the page (one statement) are both index scans (plan in the appendix).',
    eui64:
      'The Zigbee `deviceEui64Address` is marked `indexed`, so the migrations keep a (non-unique) expression index for it, ' +
      'and the `eui64` format turns the other spelling into the stored one before the comparison: the count and the ' +
      'page (one statement) are both index scans (plan in the appendix).',
    displayName:
      "`displayName` is `indexed: 'prefix'`: `sw` compiles to `lower(doc ->> 'displayName') LIKE (lower($n) || '%')`, " +
      'which the `text_pattern_ops` index the migrations keep serves as a range scan for both the count and the page ' +
      'of the one list statement (plan in the appendix).',
    managed:
      'An unfiltered managed-only list is counted and paged from `managed_refs` (device → EndpointApp rows a trigger ' +
      "keeps in each write's transaction): the count reads the app's entries of that table's primary key (plus the " +
      'devices the client owns, through `resources_owner`), and the page, in the same statement, takes the first ids ' +
      `in order from the same entries and reads only those rows; then ${fmtInt(Math.min(100, r.managed))} representations are built ` +
      `(${fmt(p.totalMs - sqlMs)} ms outside SQL). Plans in the appendix.`,
  };
  // The texts above describe the code measured when they were written; the plans say what this run did.
  const plans = (p.plans ?? []).map((x) => x.plan).join('\n');
  const scans = /Seq Scan on resources/.test(plans);
  if (scans)
    reason[l.id] = 'The plans (appendix) show a sequential scan of `resources`: no index serves this filter.';
  const fix = l.whatIf
    ? `With \`${l.whatIf.index}\` (built in ${fmt(l.whatIf.buildSeconds, 1)} s, by the benchmark in its scratch database only: ` +
      `src/ is unchanged) the same lookup takes p50 ${fmt(l.whatIf.summary.p50)} ms / p99 ${fmt(l.whatIf.summary.p99)} ms over HTTP ` +
      `and ${fmt(l.whatIf.profile.totalMs)} ms in-process. What would fix it in the server: ` +
      (l.id === 'eui64'
        ? 'a non-unique expression index for `eq` on format-normalised identifiers (or `uniqueness: server` on ' +
          '`deviceEui64Address`, which the migrations would then index like the MACs).'
        : 'an expression index for `sw` on `displayName` (C collation, so that `starts_with` becomes a range scan; ' +
          'PostgreSQL 15+), created by the migrations for attributes a type marks as searched by prefix. ' +
          (l.whatIf.summary.p50 >= LOOKUP_TARGET_MS
            ? `Even then it stays above the target over HTTP here (p50 ${fmt(l.whatIf.summary.p50)} ms): the answer is a page ` +
              `of 100 full Devices, and building those representations takes ` +
              `${fmt(l.whatIf.profile.totalMs - l.whatIf.profile.statements.reduce((a, st) => a + st.ms, 0))} ms of the ` +
              `${fmt(l.whatIf.profile.totalMs)} ms in-process, before serialisation and the HTTP exchange.`
            : ''))
    : '';
  return [head, '', reason[l.id], httpOnly ? `\n${httpOnly}` : '', fix ? `\n${fix}` : ''].join('\n');
}

export function devicesMarkdown(d: {
  machine: Machine;
  settings: DevicesSettings;
  results: DevicesResult[];
  failures: { kind: string; error: string }[];
  importOutcome?: ImportOutcome;
  importDevices: number;
  command: string;
}): string {
  const { machine: m, settings: s } = d;
  const out: string[] = [
    '## Devices at scale',
    '',
    `Generated by \`${d.command}\` on ${m.date}. ${machineLine(m)}`,
    '',
    '### Method',
    '',
    `- **Data.** ${fmtInt(s.devices)} Devices in one tenant, written straight into the store like the Users of the core`,
    '  section: each document goes through `prepareWrite` with the server registry (`createServerRegistry()`) and',
    "  then the Device type's own `beforeStore` hook, which sets the server-owned values (the tenant's",
    '  `settings.devices` enterprise endpoints, created for the run, and the `$ref` of each application), and is',
    `  inserted with multi-row \`INSERT … SELECT FROM unnest(…)\` statements of ${fmtInt(s.batch)} rows. Mix by i mod 10: 40% BLE`,
    '  (a quarter with pass-key pairing), 20% Zigbee, 20% Ethernet MAB, 10% DPP, 10% FDO; MACs and EUI-64s unique.',
    '  The BLE devices with i mod 1000 = 0 (1 in 1,000 devices) name one EndpointApp in the endpointAppsExt extension,',
    '  the Zigbee devices with i mod 1000 = 4 a second one. The GIN index on `doc` is dropped for the load and',
    "  rebuilt after it with the migration's own statement (`maintenance_work_mem` raised for the build only), so",
    '  the store ends with exactly the indexes the migrations leave; then `VACUUM ANALYZE` and `CHECKPOINT`.',
    `- **Lookups.** scimd in a child process on 127.0.0.1; one keep-alive connection, one request at a time; ${s.warmup}`,
    `  unmeasured requests then ${s.samples} measured ones per lookup, each for a random existing device (or name`,
    '  block), every answer checked. The identifiers are sent in another spelling than stored: a MAC as',
    '  `AA-BB-CC-DD-EE-FF` (stored `aa:bb:cc:dd:ee:ff`), an EUI-64 as Cisco dotted quads `0012.4B00.AABB.CCDD`.',
    '  `displayName sw "BLE Tag 123"` matches the devices of that kind numbered 123000–123999 (up to 400).',
    '  The filters run as a client with scope `Device:read`; the managed-only list as a client with',
    '  `Device:read` + `devices:managed` whose `endpointAppId` is the first app.',
    '- **Profiles.** After the HTTP runs the server is stopped and each lookup runs in-process through',
    '  `ResourceService.list` with every SQL statement timed (as in the core section); the slowest SELECT is run',
    `  again under \`EXPLAIN ANALYZE\`. A lookup that misses the ${LOOKUP_TARGET_MS} ms target and that an index would serve gets`,
    '  that index, created by the benchmark in its scratch database only, and is measured again.',
    `- **Import.** A CSV of ${fmtInt(d.importDevices)} BLE devices (header \`${IMPORT_COLUMNS.join(',')}\`; the MACs in a vendor's`,
    '  spelling, `0E-00-00-00-01-5A`; `ble.pairingMethods` because the BLE schema requires it), then',
    '  `node bin/scimd.js import devices <file> --tenant <t> --json` with `DATABASE_URL` pointing to a fresh',
    '  scratch database holding only that tenant, timed from process start to exit.',
    '',
    '### Results',
  ];
  for (const r of d.results) {
    out.push(
      '',
      `#### ${STORE_NAME[r.kind]}`,
      '',
      `Engine: ${r.engineVersion.split(',')[0]}. ${loadLine(r)}`,
      loadAverageLine(r.loadAverage, m.cores),
      '',
      table(LOOKUP_HEADER, lookupRows(r)),
      '',
      `Checked on every answer: ${r.lookups.map((l) => `${l.label.split(',')[0]}: ${l.checked}`).join('; ')}.`,
    );
  }
  for (const f of d.failures) out.push('', `#### ${f.kind}: failed`, '', '```', f.error, '```');
  out.push(
    '',
    '#### Import (`scimd import devices`, PostgreSQL)',
    '',
    importLine(d.importOutcome),
    ...(d.importOutcome && 'result' in d.importOutcome
      ? [
          '',
          `Target ≥ ${fmtInt(IMPORT_TARGET)} devices/s: ${met(d.importOutcome.result.perSecond >= IMPORT_TARGET)}.`,
          ...(d.importOutcome.result.perSecond < IMPORT_TARGET
            ? ['', importWhy(d.importOutcome.result)]
            : []),
        ]
      : []),
  );
  if (d.results.length > 0) {
    out.push('', '### Why each lookup takes what it takes', '');
    for (const r of d.results) {
      if (d.results.length > 1) out.push(`#### ${STORE_NAME[r.kind]}`, '');
      for (const l of r.lookups) out.push(why(l, r, m.cores), '');
    }
    out.push('### Appendix: device lookup profiles', '');
    for (const r of d.results) {
      out.push(`#### ${STORE_NAME[r.kind]}`, '');
      for (const l of r.lookups) {
        out.push(profileSection(l.profile, 5), '');
        if (l.whatIf) out.push(profileSection(l.whatIf.profile, 5), '');
      }
    }
  }
  return out.join('\n');
}
