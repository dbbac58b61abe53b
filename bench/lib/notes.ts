/**
 * Why a target is missed. The causes were found by reading the code paths the statement profiles
 * point at; the figures are filled in from the run so the text cannot drift from the tables.
 */
import type { Target } from './report.ts';
import { oneLine, type Profile } from './profile.ts';
import { fmt, fmtInt } from './stats.ts';
import type { StoreResult } from './suite.ts';

const STORE: Record<StoreResult['kind'], string> = { pglite: 'PGlite', postgres: 'PostgreSQL' };

function findProfile(r: StoreResult, prefix: string): Profile | undefined {
  return r.profiles.find((p) => p.label.startsWith(prefix));
}

function us(cores: number, rps: number): string {
  return `${fmtInt((cores / rps) * 1e6)} µs`;
}

function getById(rs: StoreResult[]): string {
  const lines = rs.map((r) => {
    const a = r.getById;
    const h = r.hello;
    const pg = r.kind === 'postgres' ? `, PostgreSQL ${us(a.cpu.postgres, a.rps)}` : '';
    return (
      `- ${STORE[r.kind]}: CPU per request, scimd ${us(a.cpu.server, a.rps)}${pg}, against ${us(h.cpu.server, h.rps)} ` +
      `for hello-world; one GET in-process (no HTTP) takes ${fmt(findProfile(r, 'GET /Users/{id}')?.totalMs ?? NaN)} ms.`
    );
  });
  return [
    'Each `GET /Users/{id}` is one statement on a pooled connection, outside an explicit transaction: the',
    "row by primary key with the user's groups as a subquery (`group_members` joined to the group rows for",
    'their displayName) (`ResourceService.get` → `repo.get(…, withGroups)`). Its index scans execute in a',
    'fraction of a millisecond (appendix), so the cost is fixed per request rather than data-dependent:',
    'request parsing, authentication (one more statement for an opaque token), the statement through',
    'node-postgres, building and projecting the representation. From the "cores busy" column:',
    '',
    ...lines,
    '',
    'With the load generator, scimd and PostgreSQL on the same few cores, those per-request CPU costs bound',
    'the throughput well below 40% of a handler that does none of this. On PGlite every statement also goes',
    'through one serialised WASM connection, so requests queue behind each other (see the p50/p99 under load).',
    'What would help next (not done yet): a cheaper representation path (projection and serialisation are a',
    'third of the CPU).',
  ].join('\n');
}

function memberAdd(rs: StoreResult[]): string {
  const lines = rs.map((r) => {
    const big = r.profiles.find((p) => p.label.startsWith('PATCH') && p.label.includes(fmtInt(r.bigMembers)));
    const read = big?.statements.find(
      (s) => /FROM group_members\s+WHERE/i.test(s.sql) && /^\s*SELECT/i.test(s.sql),
    );
    const sqlMs = big?.statements.reduce((a, s) => a + s.ms, 0) ?? NaN;
    return (
      `- ${STORE[r.kind]}: in-process, one add to the ${fmtInt(r.bigMembers)}-member group took ${fmt(big?.totalMs ?? NaN)} ms; ` +
      `the member read returned ${fmtInt(read?.rows ?? NaN)} rows in ${fmt(read?.ms ?? NaN)} ms, and ` +
      `${fmt((big?.totalMs ?? NaN) - sqlMs)} ms went outside SQL (mostly turning those rows into member values)` +
      (big?.plan?.includes('external merge')
        ? '; the ORDER BY of that read spills to disk (`Sort Method: external merge`, work_mem exceeded).'
        : '.')
    );
  });
  return [
    'The write itself is constant-time: one `INSERT … ON CONFLICT DO NOTHING` into `group_members` and a',
    'version bump (the PATCH profiles in the appendix). But `ResourceService.patch` then builds the response',
    'representation, `this.result(…)`, and since the request has no `attributes` parameter, `relationsWanted`',
    'asks for members, so `representRows` calls `repo.membersOf`, which reads **every** member row of the group',
    '(`SELECT group_id, member_id, member_type, display FROM group_members WHERE … ORDER BY group_id, member_id`)',
    'and makes a JSON value for each. `src/http/server.ts` then answers 204 for a member change and discards it.',
    'So every member add (and remove) costs O(group size):',
    '',
    ...lines,
    '',
    'Fix (server change, not made here): when the answer will be 204, do not build the representation, or',
    'build it without members; only `?attributes=`/`excludedAttributes` requests need it.',
  ].join('\n');
}

function bulk(rs: StoreResult[]): string {
  const lines = rs.map(
    (r) =>
      `- ${STORE[r.kind]} (${r.micro.durability}): a one-row write transaction takes ${fmt(r.micro.writeTransactionMs)} ms and ` +
      `\`ResourceService.create\` of one User ${fmt(r.micro.createMs)} ms in-process (p50, measured after the load runs; ` +
      `commit latency on this disk varies between and within runs), against ${fmt(1000 / r.bulk.perSecond)} ms per User ` +
      `end to end in the Bulk import (${fmtInt(r.bulk.perSecond)} Users/s).`,
  );
  return [
    '`runBulk` (`src/service/bulk.ts`) runs the operations of a request one after another in ONE transaction,',
    'each in its own savepoint (so a failed operation is undone alone): one commit per request, but four',
    'statements per created User (SAVEPOINT, INSERT resource, INSERT change-log row, RELEASE), each a round',
    'trip through node-postgres. For comparison, per-User transactions:',
    '',
    ...lines,
    '',
    '5,000 Users/s needs at most 0.2 ms per User, about two statement round trips here. What would reach it',
    '(not done yet): writing each run of consecutive independent POSTs as one multi-row INSERT of resources and',
    'one of change-log rows, falling back to savepoints only when that batch fails (the device importer already',
    'runs its batches optimistically without savepoints: `ResourceService.createBatch`).',
  ].join('\n');
}

function userNameEq(rs: StoreResult[]): string {
  const lines = rs.map((r) => {
    const p = findProfile(r, 'GET /Users?filter=userName');
    return `- ${STORE[r.kind]}: in-process ${fmt(p?.totalMs ?? NaN)} ms; slowest statement ${fmt(p?.slowest?.ms ?? NaN)} ms: \`${oneLine(p?.slowest?.sql ?? '', 160)}\``;
  });
  return [
    "The lookup is served by the unique expression index on `lower(doc ->> 'userName')` (the plan in the",
    'appendix); the time goes to the fixed per-request work (count query, page query, groups query):',
    '',
    ...lines,
  ].join('\n');
}

export const NOTES: Record<Target['id'], (rs: StoreResult[]) => string> = {
  getById,
  userNameEq,
  memberAdd,
  bulk,
};

/** Findings that are not targets but matter at this scale. */
export function observations(rs: StoreResult[]): string {
  const figures = rs
    .map(
      (r) =>
        `${STORE[r.kind]}: \`emails[type eq "work" and value eq …]\` p50 ${fmt(r.emailValue.p50)} ms, ` +
        `\`emails[type eq "work"]\` (count=100) p50 ${fmt(r.emailType.p50)} ms`,
    )
    .join('; ');
  return [
    `Filters on a multi-valued attribute scan every User (${figures}). They compile to`,
    "`EXISTS (SELECT 1 FROM jsonb_array_elements(doc -> 'emails') … WHERE lower(e.v ->> 'value') = lower($n))`,",
    'which no index can serve (the GIN index on `doc` is `jsonb_path_ops`, usable for containment `@>` only,',
    'and the comparison is case-insensitive), and each list request also runs `SELECT count(*)` over all',
    'matches for `totalResults`, which for `emails[type eq "work"]` evaluates the filter on every User even',
    'though only 100 rows are returned. The plans are in the appendix. An expression index over lowercased',
    'email values (or a side table of emails), and skipping or capping the count, would make these index lookups.',
    '',
    'The cursor walk also runs that `count(*)` on every page (once per 1,000 Users, over all Users).',
    ...rs
      .filter((r) => findProfile(r, 'GET /Users?cursor')?.plan?.includes('Seq Scan on group_members'))
      .map(
        (r) =>
          `On ${STORE[r.kind]} the groups of a 1,000-user page (\`repo.groupsOf\`, \`member_id = ANY($2)\` with 1,000 ids) ` +
          'is planned as a sequential scan of `group_members` rather than 1,000 probes of `group_members_member` ' +
          `(${fmt(findProfile(r, 'GET /Users?cursor')!.slowest!.ms)} ms of the page; plan in the appendix).`,
      ),
  ].join('\n');
}
