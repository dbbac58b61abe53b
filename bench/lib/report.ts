/** The console table and docs/benchmarks.md, both from the same results. */
import { oneLine, type Profile } from './profile.ts';
import type { Settings, StoreKind, StoreResult } from './suite.ts';
import { fmt, fmtInt } from './stats.ts';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  postgres?: string;
  pglite: string;
  os: string;
  date: string;
  /** The scimd commit measured. */
  code: string;
}

/** The machine in one line, for sections after the core one (which has the full table). */
export function machineLine(m: Machine): string {
  return (
    `Machine: ${m.cpu}, ${m.cores} cores, ${fmt(m.memoryGiB, 1)} GiB, ${m.os}, Node.js ${m.node}` +
    `${m.postgres ? `, ${m.postgres.split(' on ')[0]}` : ''}, ${m.pglite}; scimd code ${m.code}.`
  );
}

export function loadAverageLine(l: [number, number], cores: number): string {
  return (
    `1-minute load average when the measurements began and ended: ${fmt(l[0])} and ${fmt(l[1])}` +
    (Math.max(...l) > cores
      ? ` (**more than the ${cores} cores: other work competed with this run; treat its figures as pessimistic**).`
      : '.')
  );
}

export interface Target {
  id: 'getById' | 'userNameEq' | 'memberAdd' | 'bulk';
  name: string;
  goal: string;
  figure: string;
  met: boolean;
}

export function targetsOf(r: StoreResult): Target[] {
  const ratio = r.getById.rps / r.hello.rps;
  const memberRatio = r.patchBig.p50 / r.patchSmall.p50;
  return [
    {
      id: 'getById',
      name: 'GET /Users/{id} throughput',
      goal: '≥ 40% of hello-world',
      figure: `${fmt(ratio * 100, 1)}% (${fmtInt(r.getById.rps)} vs ${fmtInt(r.hello.rps)} req/s)`,
      met: ratio >= 0.4,
    },
    {
      id: 'userNameEq',
      name: `userName eq p50 at ${fmtInt(r.data.users)} users`,
      goal: '< 5 ms',
      figure: `${fmt(r.userNameEq.p50, 3)} ms (p99 ${fmt(r.userNameEq.p99)} ms)`,
      met: r.userNameEq.p50 < 5,
    },
    {
      id: 'memberAdd',
      name: `Member add, group of ${fmtInt(r.bigMembers)} vs ${fmtInt(r.smallMembers)}`,
      goal: '< 2×',
      figure: `${fmt(memberRatio, 1)}× (${fmt(r.patchBig.p50)} vs ${fmt(r.patchSmall.p50)} ms p50)`,
      met: memberRatio < 2,
    },
    {
      id: 'bulk',
      name: 'Bulk import',
      goal: '≥ 5,000 Users/s',
      figure: `${fmtInt(r.bulk.perSecond)} Users/s`,
      met: r.bulk.perSecond >= 5000,
    },
  ];
}

export const STORE_NAME: Record<StoreKind, string> = { pglite: 'Embedded (PGlite)', postgres: 'PostgreSQL' };

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function resultRows(r: StoreResult): string[][] {
  const ratio = (x: number) => `${fmt((x / r.hello.rps) * 100, 1)}%`;
  const rows: string[][] = [];
  for (const l of [r.hello, r.getById, r.filterList]) {
    const bad = l.non2xx + l.errors + l.timeouts;
    rows.push([
      `(a) ${l.label}`,
      `${fmtInt(l.rps)} req/s${bad ? ` (${bad} non-2xx/errors)` : ''}`,
      `${fmt(l.p50, 0)} ms`,
      `${fmt(l.p99, 0)} ms`,
      l === r.hello ? '100%' : ratio(l.rps),
      `${fmt(l.cpu.server, 2)} / ${r.kind === 'postgres' ? fmt(l.cpu.postgres, 2) : '–'} / ${fmt(l.cpu.loadGenerator, 2)}`,
    ]);
  }
  const seq = (label: string, s: StoreResult['userNameEq']) => [
    label,
    `${s.n} sequential requests`,
    `${fmt(s.p50)} ms`,
    `${fmt(s.p99)} ms`,
    '',
    '',
  ];
  rows.push(seq('(b) userName eq (random user)', r.userNameEq));
  rows.push(seq('(b) emails[type eq "work" and value eq …]', r.emailValue));
  rows.push(seq('(b) emails[type eq "work"], count=100', r.emailType));
  const w = r.cursorWalk;
  rows.push([
    '(b) cursor walk, count=1000',
    `${fmt(w.seconds, 1)} s for ${fmtInt(w.visited)} users (${fmtInt(w.distinct)} distinct, ${w.pages} pages): ${fmtInt(w.usersPerSecond)} users/s`,
    '',
    '',
    '',
    '',
  ]);
  rows.push(seq(`(c) PATCH add member, group of ${fmtInt(r.smallMembers)}`, r.patchSmall));
  rows.push(seq(`(c) PATCH add member, group of ${fmtInt(r.bigMembers)}`, r.patchBig));
  rows.push(['(c) ratio big / small (p50)', `${fmt(r.patchBig.p50 / r.patchSmall.p50, 2)}×`, '', '', '']);
  rows.push([
    `(d) POST /Bulk, ${fmtInt(r.bulk.users)} Users in ${r.bulk.requests} requests`,
    `${fmt(r.bulk.seconds, 1)} s: ${fmtInt(r.bulk.perSecond)} Users/s (a request: ${fmt(r.bulk.fastest, 2)}–${fmt(r.bulk.slowest, 2)} s)`,
    '',
    '',
    '',
    '',
  ]);
  return rows.map((row) => [...row, ...Array<string>(6 - row.length).fill('')]);
}

export function consoleReport(results: StoreResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`\n== ${STORE_NAME[r.kind]} ==`);
    const rows = resultRows(r);
    const header = ['measurement', 'result', 'p50', 'p99', 'vs hello', 'cores: server/pg/loadgen'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
    out.push(line(header), ...rows.map(line));
    out.push('targets:');
    for (const t of targetsOf(r))
      out.push(`  ${t.met ? 'MET   ' : 'MISSED'} ${t.name} ${t.goal}: ${t.figure}`);
  }
  return out.join('\n');
}

export function profileSection(p: Profile, level = 5): string {
  const sqlMs = p.statements.reduce((a, s) => a + s.ms, 0);
  const out = [
    `${'#'.repeat(level)} ${p.label.replace(/\|/g, '\\|')}`,
    '',
    `${fmt(p.totalMs)} ms in-process, of which ${fmt(sqlMs)} ms in ${p.statements.length} SQL statements:`,
    '',
    table(
      ['ms', 'rows', 'statement'],
      p.statements.map((s) => [fmt(s.ms), String(s.rows), `\`${oneLine(s.sql).replace(/\|/g, '\\|')}\``]),
    ),
  ];
  if (p.plans) {
    for (const x of p.plans) out.push('', `EXPLAIN ANALYZE of ${x.of}:`, '', '```', x.plan, '```');
  } else if (p.plan) {
    out.push('', 'EXPLAIN ANALYZE of the slowest SELECT:', '', '```', p.plan, '```');
  }
  return out.join('\n');
}

export interface DocInput {
  machine: Machine;
  settings: Settings;
  results: StoreResult[];
  failures: { kind: StoreKind; error: string }[];
  notes: Record<Target['id'], (rs: StoreResult[]) => string>;
  observations: (rs: StoreResult[]) => string;
  command: string;
}

/** The core section of docs/benchmarks.md (Users and Groups), headings under the file's title. */
export function coreMarkdown(d: DocInput): string {
  const { machine: m, settings: s } = d;
  const out: string[] = [];
  out.push(
    '## Users and Groups: throughput, lookups, member changes, Bulk',
    '',
    `Generated by \`${d.command}\` on ${m.date}. Every figure in this section comes from that one run.`,
    '',
    '### Machine',
    '',
    table(
      ['', ''],
      [
        ['scimd code', m.code],
        ['CPU', m.cpu],
        ['Cores', String(m.cores)],
        ['Memory', `${fmt(m.memoryGiB, 1)} GiB`],
        ['OS', m.os],
        ['Node.js', m.node],
        ['PostgreSQL server', m.postgres ?? 'not measured'],
        ['PGlite', m.pglite],
      ],
    ),
    '',
    'The load generator (autocannon, in the benchmark process), the server under test (a child',
    'process) and the PostgreSQL server share these cores; on a 2-core machine they compete, which',
    'lowers the throughput figures of scimd more than those of hello-world (which needs no database).',
    'The machine may also be shared with other work (the load averages under each store tell), so',
    'figures vary between runs, the disk-bound ones (commits: Bulk, PATCH) most.',
    '',
    '### Method',
    '',
    `- **Data.** ${fmtInt(s.users)} Users and ${fmtInt(s.groups)} Groups are written straight into the store, not over HTTP`,
    '  (that would take longer than the benchmark): each document goes through `prepareWrite`, the validation and',
    '  canonicalisation `ResourceService.create` applies, and is stored without id/meta as the service stores it; rows',
    '  go in with multi-row `INSERT … SELECT FROM unnest($ids, $externalIds, $docs)` statements of 1,000 rows,',
    '  ids from `crypto.randomUUID()`, then `VACUUM ANALYZE` and `CHECKPOINT`. A User has `userName` `user<i>`, `externalId`, `name`',
    '  (given, family, formatted), `displayName`, `active`, a work and a home email, and the enterprise extension',
    '  (`employeeNumber`, `department`). Memberships are bulk-inserted into `group_members`: every user is in the',
    `  group "All staff" (${fmtInt(s.users)} members), the first 100 in "Small team", and each user in one of the other`,
    `  ${fmtInt(s.groups - 2)} teams.`,
    '- **Servers.** scimd runs in a child process through `createApp` (`bench/server-process.ts`), listening on',
    '  127.0.0.1 with logging off, authenticated with a random admin bearer token. The baseline is a fastify',
    '  hello-world (`GET /` → `{"hello":"world"}`) in a child process too, measured in the same run just before',
    '  scimd on each store.',
    `- **(a) Throughput.** autocannon, ${s.connections} connections, ${s.warmupSeconds} s warm-up (discarded) then ${s.seconds} s measured.`,
    '  `GET /Users/{id}` cycles through 1,000 existing users; the filtered list is always',
    "  `GET /Users?filter=userName%20eq%20%22user42%22`. req/s is autocannon's per-second average; p50/p99 its latency.",
    `- **(b) Lookups.** One keep-alive connection, one request at a time (latency, not queueing). \`userName eq\`:`,
    `  ${s.lookupSamples} requests for random existing users after 20 warm-up requests. The two \`emails\` filters: ${s.emailSamples} requests each`,
    '  after 3 warm-up requests. Every answer is checked (one match / a full page). The cursor walk follows',
    '  `nextCursor` from `GET /Users?cursor&count=1000` until it is absent and checks that it saw every user exactly once.',
    `- **(d) Bulk.** ${fmtInt(s.bulkUsers)} new Users in \`POST /Bulk\` requests of ${fmtInt(s.bulkBatch)} POST operations, sent one after the`,
    '  other; the time is from the first request to the last response; every operation must answer 201.',
    `- **(c) Member add.** \`PATCH /Groups/{id}\` with \`{"op":"add","path":"members","value":[{"value":<user id>}]}\`,`,
    `  ${s.patchSamples} times on each group, alternating between the groups, after 5 warm-up adds each; the users are new`,
    '  (from the Bulk import). Each add is undone by an unmeasured `remove` so the groups keep their size.',
    '- **Profiles.** After the load runs the server is stopped and each measured operation is run again',
    '  in-process through `ResourceService` over a wrapper that times every SQL statement: twice to warm up, then',
    '  5 times; the run of median total time is shown, and its slowest SELECT is run again under',
    "  `EXPLAIN ANALYZE` (so the plan's timings are a second execution). Profiled member adds are not undone (the",
    '  groups grow by up to 7). These are in the appendix.',
    '',
    '### Results',
  );
  for (const r of d.results) {
    out.push(
      '',
      `#### ${STORE_NAME[r.kind]}`,
      '',
      `Engine: ${r.engineVersion.split(',')[0]}. Data loaded in ${fmt(r.data.loadSeconds, 1)} s (${fmtInt(r.data.users)} users,`,
      `${fmtInt(r.data.groups)} groups, ${fmtInt(r.data.memberships)} memberships), VACUUM ANALYZE and CHECKPOINT ${fmt(r.data.analyzeSeconds, 1)} s.`,
      loadAverageLine(r.loadAverage, m.cores),
      '',
      table(
        [
          'measurement',
          'result',
          'p50',
          'p99',
          'vs hello-world',
          'cores busy: server / PostgreSQL / autocannon',
        ],
        resultRows(r),
      ),
      '',
      `Per-transaction floor, in-process without HTTP (p50 of 200; ${r.micro.durability}): empty transaction`,
      `${fmt(r.micro.emptyTransactionMs)} ms, one-row write transaction ${fmt(r.micro.writeTransactionMs)} ms,`,
      `\`ResourceService.create\` of one User as a Bulk operation runs it ${fmt(r.micro.createMs)} ms`,
      `(at most ${fmtInt(1000 / r.micro.createMs)} creates/s one after the other).`,
    );
  }
  for (const f of d.failures) {
    out.push('', `#### ${STORE_NAME[f.kind]}: failed`, '', '```', f.error, '```');
  }

  out.push(
    '',
    '### Targets',
    '',
    'The targets of the issue apply to PostgreSQL; the embedded store is shown for comparison.',
    '',
  );
  const rows: string[][] = [];
  for (const r of d.results) {
    for (const t of targetsOf(r))
      rows.push([STORE_NAME[r.kind], t.name, t.goal, t.figure, t.met ? '**met**' : '**missed**']);
  }
  out.push(table(['store', 'target', 'goal', 'measured', ''], rows));

  const missed = new Map<Target['id'], { t: Target; stores: StoreKind[] }>();
  for (const r of d.results)
    for (const t of targetsOf(r))
      if (!t.met) {
        const e = missed.get(t.id) ?? { t, stores: [] };
        e.stores.push(r.kind);
        missed.set(t.id, e);
      }
  if (missed.size > 0) {
    out.push('', '#### Missed targets: why', '');
    for (const { t, stores } of missed.values()) {
      const figures = d.results
        .filter((r) => stores.includes(r.kind))
        .map((r) => `${STORE_NAME[r.kind]}: ${targetsOf(r).find((x) => x.id === t.id)!.figure}`)
        .join('; ');
      const rs = d.results.filter((r) => stores.includes(r.kind));
      out.push(`**${t.name} (${t.goal})**: ${figures}.`, '', d.notes[t.id](rs), '');
    }
  }
  if (d.results.length > 0) out.push('', '### Other findings', '', d.observations(d.results));

  out.push('', '### Appendix: statement profiles', '');
  for (const r of d.results) {
    out.push(`#### ${STORE_NAME[r.kind]}`, '');
    for (const p of r.profiles) out.push(profileSection(p), '');
  }
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
