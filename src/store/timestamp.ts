/**
 * A faster reading of PostgreSQL `timestamptz` text for the form a UTC session sends,
 * `2026-11-27 10:01:36.123456+00`: the driver's parser (postgres-date) runs several regular
 * expressions per value, and a page of 100 resources has 200 timestamps. Anything else (other
 * offsets, BC, infinity, years before 1000 or after 9999) returns undefined, for that parser to read.
 * The Date is computed exactly as postgres-date computes it (fraction as 1000 × parseFloat), so
 * both readings agree to the millisecond (test/unit/timestamp.test.ts).
 */
function digitsAt(v: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

export function parseUtcTimestamp(v: string): Date | undefined {
  const n = v.length;
  // YYYY-MM-DD HH:MM:SS+00 is 22 characters; a fraction (.f to .ffffff) comes before the offset.
  if (n < 22 || n > 29) return undefined;
  if (v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || v.charCodeAt(10) !== 32) return undefined;
  if (v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58) return undefined;
  if (v.charCodeAt(n - 3) !== 43 || v.charCodeAt(n - 2) !== 48 || v.charCodeAt(n - 1) !== 48)
    return undefined;
  const year = digitsAt(v, 0, 4);
  const month = digitsAt(v, 5, 2);
  const day = digitsAt(v, 8, 2);
  const hour = digitsAt(v, 11, 2);
  const minute = digitsAt(v, 14, 2);
  const second = digitsAt(v, 17, 2);
  if (year < 1000 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined;
  let ms = 0;
  if (n > 22) {
    if (n === 23 || v.charCodeAt(19) !== 46 || digitsAt(v, 20, n - 23) < 0) return undefined;
    ms = 1000 * parseFloat(v.slice(19, n - 3));
  }
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
}
