/**
 * The signed-token codec behind paging cursors and delta tokens: round trip, labels kept apart,
 * and every one-character change of a token refused (including the last character of the
 * signature, whose unused low bits a byte comparison would not see).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignedTokenCodec } from '../../src/service/signed-token.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

test('a token decodes to its payload; another secret or label refuses it', () => {
  const codec = new SignedTokenCodec('secret', 'cursor:');
  const token = codec.encode({ k: 'v', n: 1 });
  assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(codec.decode(token), { k: 'v', n: 1 });
  assert.equal(new SignedTokenCodec('other', 'cursor:').decode(token), undefined);
  assert.equal(new SignedTokenCodec('secret', 'delta:').decode(token), undefined);
  for (const bad of ['', '.', 'abc', '.abc', `${token}x`, token.replace('.', '')])
    assert.equal(codec.decode(bad), undefined, bad);
});

test('every one-character change of the signature is refused, the last character too', () => {
  const codec = new SignedTokenCodec('secret');
  for (let n = 0; n < 20; n++) {
    const token = codec.encode({ n });
    const last = token.length - 1;
    for (const c of ALPHABET) {
      if (c === token[last]) continue;
      assert.equal(codec.decode(token.slice(0, last) + c), undefined, `${token} with last char ${c}`);
    }
  }
});
