/**
 * parseUtcTimestamp reads what the driver's own timestamptz parser (postgres-date, through
 * pg.types) reads, to the same Date, and declines (undefined) every other form.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pg from 'pg';
import { parseUtcTimestamp } from '../../src/store/timestamp.ts';
import '../../src/store/pg-engine.ts';

// The driver's parser: pg-types registers postgres-date for date (1082) as it did for timestamptz
// (1184), whose entry pg-engine.ts replaces.
const driver = pg.types.getTypeParser(1082) as (v: string) => Date;

const pad = (n: number, w: number) => String(n).padStart(w, '0');

test('the UTC form PostgreSQL sends: same Date as the driver parser, to the millisecond', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1000, max: 9999 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 31 }),
      fc.integer({ min: 0, max: 23 }),
      fc.integer({ min: 0, max: 59 }),
      fc.integer({ min: 0, max: 59 }),
      fc.option(fc.stringMatching(/^[0-9]{1,6}$/)),
      (y, mo, d, h, mi, s, frac) => {
        const text = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)} ${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${frac === null ? '' : `.${frac}`}+00`;
        const fast = parseUtcTimestamp(text);
        assert.ok(fast instanceof Date, text);
        assert.equal(fast.getTime(), (driver(text) as Date).getTime(), text);
      },
    ),
    { numRuns: 5000 },
  );
  // Microseconds are truncated to milliseconds, not rounded.
  for (const f of ['579', '579000', '001', '999999', '5', '29', '057']) {
    const text = `2026-11-27 10:01:36.${f}+00`;
    assert.equal(parseUtcTimestamp(text)!.getTime(), (driver(text) as Date).getTime(), text);
  }
});

test('every other form is left to the driver parser', () => {
  for (const text of [
    '2026-11-27 10:01:36+01',
    '2026-11-27 10:01:36.5+05:30',
    '2026-11-27 10:01:36-00',
    '0099-01-01 00:00:00+00',
    '0999-01-01 00:00:00+00',
    '12026-11-27 10:01:36+00',
    '2026-11-27 10:01:36+00 BC',
    '2026-11-27 10:01:36.+00',
    '2026-11-27 10:01:36.1234567+00',
    '2026-11-27T10:01:36+00',
    '2026-1a-27 10:01:36+00',
    'infinity',
    '-infinity',
    '2026-11-27',
  ]) {
    assert.equal(parseUtcTimestamp(text), undefined, text);
  }
});

test('pg-engine reads timestamptz through it, and other forms as the driver does', () => {
  const parser = pg.types.getTypeParser(1184) as (v: string) => Date | number;
  const utc = '2026-11-27 10:01:36.123456+00';
  assert.equal((parser(utc) as Date).toISOString(), '2026-11-27T10:01:36.123Z');
  const offset = '2026-11-27 10:01:36.5+05:30';
  assert.equal((parser(offset) as Date).toISOString(), '2026-11-27T04:31:36.500Z');
  assert.equal((parser(offset) as Date).getTime(), (driver(offset) as Date).getTime());
  assert.equal(parser('infinity'), Infinity);
});
