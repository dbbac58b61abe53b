/** The RFC 4180 reader of `scimd import`: quoting edge cases, line numbers, chunk boundaries. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CsvReader, parseCsv, type CsvRecord } from '../../src/import/csv.ts';

/** Feeds the text in pieces of `size` characters. */
function chunked(text: string, size: number): CsvRecord[] {
  const r = new CsvReader();
  const out: CsvRecord[] = [];
  for (let i = 0; i < text.length; i += size) out.push(...r.push(text.slice(i, i + size)));
  return [...out, ...r.end()];
}

describe('CSV reader', () => {
  test('plain fields, LF line ends, no final line end', () => {
    assert.deepEqual(parseCsv('a,b,c\n1,2,3'), [
      { fields: ['a', 'b', 'c'], line: 1 },
      { fields: ['1', '2', '3'], line: 2 },
    ]);
  });

  test('quoted fields: commas, doubled quotes, empty quoted and unquoted fields', () => {
    assert.deepEqual(parseCsv('"a,b","say ""hi""",,""\n'), [
      { fields: ['a,b', 'say "hi"', '', ''], line: 1 },
    ]);
  });

  test('line ends inside quotes are content (CRLF kept as is); records keep the line they start on', () => {
    const text = 'h1,h2\r\n"two\r\nlines",x\r\n"three\nline\ns",y\r\nlast,z\r\n';
    assert.deepEqual(parseCsv(text), [
      { fields: ['h1', 'h2'], line: 1 },
      { fields: ['two\r\nlines', 'x'], line: 2 },
      { fields: ['three\nline\ns', 'y'], line: 4 },
      { fields: ['last', 'z'], line: 7 },
    ]);
  });

  test('empty lines are no records; a line of separators is (the caller skips blank rows)', () => {
    assert.deepEqual(parseCsv('a\n\n\r\nb\n,\n'), [
      { fields: ['a'], line: 1 },
      { fields: ['b'], line: 4 },
      { fields: ['', ''], line: 5 },
    ]);
  });

  test('a quote inside an unquoted field is a character', () => {
    assert.deepEqual(parseCsv('5" screen,x\n'), [{ fields: ['5" screen', 'x'], line: 1 }]);
  });

  test('text after a closing quote makes that record an error; the next record is read', () => {
    assert.deepEqual(parseCsv('"ab"c,d\nok,1\n'), [
      { fields: ['ab', 'd'], line: 1, error: 'unexpected character "c" after a closing quote (line 1)' },
      { fields: ['ok', '1'], line: 2 },
    ]);
  });

  test('a quote left open at the end of the file is an error of its record', () => {
    assert.deepEqual(parseCsv('a,b\n"open,\nmore'), [
      { fields: ['a', 'b'], line: 1 },
      {
        fields: ['open,\nmore'],
        line: 2,
        error: 'a quoted field opened on line 2 is not closed at the end of the file',
      },
    ]);
  });

  test('any chunk size gives the same records (quotes, doubled quotes and CRLF cut anywhere)', () => {
    const text = 'h1,"h,2"\r\n"a ""b""\r\nc",d\r\n,"""",\r\n"x"\r\nend';
    const whole = parseCsv(text);
    assert.deepEqual(whole, [
      { fields: ['h1', 'h,2'], line: 1 },
      { fields: ['a "b"\r\nc', 'd'], line: 2 },
      { fields: ['', '"', ''], line: 4 },
      { fields: ['x'], line: 5 },
      { fields: ['end'], line: 6 },
    ]);
    for (let size = 1; size <= text.length; size++)
      assert.deepEqual(chunked(text, size), whole, `size ${size}`);
  });
});
