/** The Prefer header parser (RFC 7240 §2): lists, case, values, quoting, parameters, repeats. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrefer } from '../../src/async/prefer.ts';

describe('parsePrefer', () => {
  test('respond-async alone, in any case, with spaces', () => {
    assert.equal(parsePrefer('respond-async').respondAsync, true);
    assert.equal(parsePrefer('  Respond-Async ').respondAsync, true);
    assert.equal(parsePrefer('RESPOND-ASYNC').respondAsync, true);
  });

  test('absent, empty, or other preferences only', () => {
    assert.equal(parsePrefer(undefined).respondAsync, false);
    assert.equal(parsePrefer('').respondAsync, false);
    assert.equal(parsePrefer('return=minimal').respondAsync, false);
    assert.equal(parsePrefer('respond-asynchronously').respondAsync, false);
  });

  test('several preferences in one field and across fields; wait as seconds', () => {
    const one = parsePrefer('return=representation, respond-async, wait=10');
    assert.equal(one.respondAsync, true);
    assert.equal(one.wait, 10);
    assert.equal(one.all.get('return'), 'representation');
    const many = parsePrefer(['wait=3', 'respond-async']);
    assert.equal(many.respondAsync, true);
    assert.equal(many.wait, 3);
  });

  test('parameters after ";" qualify a preference without hiding it; quoted values may hold commas', () => {
    assert.equal(parsePrefer('respond-async; foo=bar').respondAsync, true);
    const quoted = parsePrefer('x="a, respond-async", wait="5"');
    assert.equal(quoted.respondAsync, false);
    assert.equal(quoted.all.get('x'), 'a, respond-async');
    assert.equal(quoted.wait, 5);
    assert.equal(parsePrefer('x="say \\"hi\\"", respond-async').all.get('x'), 'say "hi"');
  });

  test('the first of a repeated preference counts; a malformed wait is ignored', () => {
    assert.equal(parsePrefer('wait=2, wait=9').wait, 2);
    assert.equal(parsePrefer('wait=soon, respond-async').wait, undefined);
    assert.equal(parsePrefer('wait=-1').wait, undefined);
  });
});
