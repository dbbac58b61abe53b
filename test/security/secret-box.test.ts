/**
 * The secret box (src/security/secret-box.ts): round trip, the envelope's form, wrong key,
 * tampered ciphertext, another place (associated data), previous keys, plaintext read as is, key
 * parsing and loading (environment, key files, the generated data-dir key with mode 0600).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KEY_FILE_NAME,
  SecretBox,
  SecretDecryptError,
  SecretKeyError,
  keyIdOf,
  loadSecretBox,
  parseKey,
  type SecretPlace,
} from '../../src/security/secret-box.ts';

const PLACE: SecretPlace = { table: 'sync_connections', tenant: 'acme', row: 'crm', field: 'auth.token' };
const SECRET = 'bearer-token-ü-1234567890';

describe('SecretBox', () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);

  test('round trip; the envelope names version and key, never the plaintext', () => {
    const sealed = box.seal(SECRET, PLACE);
    assert.match(sealed, /^enc:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+$/);
    assert.equal(sealed.split(':')[2], keyIdOf(key));
    assert.equal(box.keyId, keyIdOf(key));
    assert.ok(!sealed.includes(SECRET));
    assert.ok(!sealed.includes(Buffer.from(SECRET).toString('base64url')));
    // nonce (12) + ciphertext (bytes of the UTF-8 text) + tag (16)
    const body = Buffer.from(sealed.split(':')[3], 'base64url');
    assert.equal(body.length, 12 + Buffer.byteLength(SECRET) + 16);
    assert.equal(box.open(sealed, PLACE), SECRET);
    assert.equal(box.open(box.seal('', PLACE), PLACE), '');
  });

  test('a random nonce per value: the same secret seals differently each time', () => {
    const a = box.seal(SECRET, PLACE);
    const b = box.seal(SECRET, PLACE);
    assert.notEqual(a, b);
    assert.notEqual(a.split(':')[3].slice(0, 16), b.split(':')[3].slice(0, 16));
    assert.equal(box.open(b, PLACE), SECRET);
  });

  test('another key does not open it (unknown key id named)', () => {
    const sealed = box.seal(SECRET, PLACE);
    const other = new SecretBox(randomBytes(32));
    assert.throws(
      () => other.open(sealed, PLACE),
      (err: unknown) =>
        err instanceof SecretDecryptError &&
        err.name === 'SecretKeyMissing' &&
        err.message ===
          `The stored credential of connection crm cannot be decrypted with this node's keys (key id ${box.keyId} is not configured: set SCIMD_SECRET_KEY / SCIMD_SECRET_KEY_PREVIOUS, see docs/secrets.md)`,
    );
  });

  test('a header relabelled to another configured key does not open', () => {
    const other = randomBytes(32);
    const both = new SecretBox(key, [other]);
    const sealed = both.seal(SECRET, PLACE);
    const relabelled = sealed.replace(`:${both.keyId}:`, `:${keyIdOf(other)}:`);
    assert.throws(() => both.open(relabelled, PLACE), SecretDecryptError);
  });

  test('a tampered ciphertext, tag or nonce does not open', () => {
    const sealed = box.seal(SECRET, PLACE);
    const [head, body] = [sealed.slice(0, sealed.lastIndexOf(':') + 1), sealed.split(':')[3]];
    const bytes = Buffer.from(body, 'base64url');
    for (const at of [0, 12, bytes.length - 1]) {
      const t = Buffer.from(bytes);
      t[at] ^= 0x01;
      assert.throws(
        () => box.open(head + t.toString('base64url'), PLACE),
        (err: unknown) =>
          err instanceof SecretDecryptError &&
          err.message ===
            `sync_connections.auth.token of tenant acme row crm does not open with key ${box.keyId}: the value was altered or belongs to another row`,
      );
    }
    // Truncated below nonce + tag, and not an envelope at all.
    assert.throws(() => box.open(`${head}${bytes.subarray(0, 20).toString('base64url')}`, PLACE), {
      message: 'sync_connections.auth.token of tenant acme row crm is not a readable sealed value',
    });
    assert.throws(() => box.open('enc:v9:abcd:xyz', PLACE), SecretDecryptError);
    assert.throws(() => box.open('enc:v1:abcd', PLACE), SecretDecryptError);
  });

  test('the value is bound to its place: another table, tenant, row or field does not open it', () => {
    const sealed = box.seal(SECRET, PLACE);
    for (const moved of [
      { ...PLACE, table: 'upstreams' },
      { ...PLACE, tenant: 'other' },
      { ...PLACE, row: 'crm2' },
      { ...PLACE, field: 'auth.clientSecret' },
      // No ambiguity from separators inside the parts.
      { ...PLACE, tenant: 'acme:crm', row: '' },
    ]) {
      assert.throws(() => box.open(sealed, moved), SecretDecryptError, JSON.stringify(moved));
    }
    assert.equal(box.open(sealed, { ...PLACE }), SECRET);
  });

  test('previous keys open; new values are sealed with the current key; reseal moves to it', () => {
    const old = new SecretBox(key);
    const sealedOld = old.seal(SECRET, PLACE);
    const rotated = new SecretBox(randomBytes(32), [key]);
    assert.deepEqual(rotated.keyIds, [rotated.keyId, keyIdOf(key)]);
    assert.equal(rotated.open(sealedOld, PLACE), SECRET);
    assert.equal(rotated.isCurrent(sealedOld), false);
    const fresh = rotated.seal(SECRET, PLACE);
    assert.equal(fresh.split(':')[2], rotated.keyId);
    assert.equal(rotated.isCurrent(fresh), true);
    const resealed = rotated.reseal(sealedOld, PLACE);
    assert.equal(resealed.split(':')[2], rotated.keyId);
    assert.equal(rotated.reseal(fresh, PLACE), fresh, 'already current: unchanged');
    // The old key alone no longer opens the resealed value.
    assert.throws(() => old.open(resealed, PLACE), SecretDecryptError);
  });

  test('plaintext (no enc: prefix) is read as is and sealed by reseal', () => {
    assert.equal(box.open('legacy-token', PLACE), 'legacy-token');
    assert.equal(box.open('', PLACE), '');
    assert.equal(box.openOptional(null, PLACE), null);
    assert.equal(box.openOptional(undefined, PLACE), undefined);
    assert.equal(box.sealOptional(null, PLACE), null);
    const sealed = box.reseal('legacy-token', PLACE);
    assert.match(sealed, /^enc:v1:/);
    assert.equal(box.open(sealed, PLACE), 'legacy-token');
  });
});

describe('secret keys', () => {
  const key = randomBytes(32);

  test('parseKey: hex, base64 and base64url of 32 bytes; anything else is refused', () => {
    assert.deepEqual(parseKey(key.toString('hex'), 'K'), key);
    assert.deepEqual(parseKey(key.toString('hex').toUpperCase(), 'K'), key);
    assert.deepEqual(parseKey(` ${key.toString('base64')}\n`, 'K'), key);
    assert.deepEqual(parseKey(key.toString('base64url'), 'K'), key);
    for (const bad of ['', 'abc', randomBytes(16).toString('hex'), randomBytes(31).toString('base64')]) {
      assert.throws(() => parseKey(bad, 'SCIMD_SECRET_KEY'), {
        name: 'SecretKeyError',
        message:
          'SCIMD_SECRET_KEY must be 32 bytes written as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)',
      });
    }
  });

  test('SCIMD_SECRET_KEY, SCIMD_SECRET_KEY_FILE and the previous keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scimd-key-'));
    try {
      const prev1 = randomBytes(32);
      const prev2 = randomBytes(32);
      const box = loadSecretBox({
        env: {
          SCIMD_SECRET_KEY: key.toString('base64'),
          SCIMD_SECRET_KEY_PREVIOUS: `${prev1.toString('hex')}, ${prev2.toString('base64')}`,
        },
        dataDir: dir,
      });
      assert.deepEqual(box.keyIds, [keyIdOf(key), keyIdOf(prev1), keyIdOf(prev2)]);
      // A configured key generates no key file.
      assert.throws(() => statSync(join(dir, KEY_FILE_NAME)), { code: 'ENOENT' });

      const file = join(dir, 'k');
      writeFileSync(file, `${key.toString('hex')}\n`);
      const prevFile = join(dir, 'p');
      writeFileSync(prevFile, `# old keys\n${prev1.toString('base64')}\n\n`);
      const fromFile = loadSecretBox({
        env: { SCIMD_SECRET_KEY_FILE: file, SCIMD_SECRET_KEY_PREVIOUS_FILE: prevFile },
        dataDir: dir,
      });
      assert.deepEqual(fromFile.keyIds, [keyIdOf(key), keyIdOf(prev1)]);
      writeFileSync(file, key); // 32 raw bytes
      assert.equal(loadSecretBox({ env: { SCIMD_SECRET_KEY_FILE: file }, dataDir: dir }).keyId, keyIdOf(key));

      assert.throws(
        () =>
          loadSecretBox({
            env: { SCIMD_SECRET_KEY: key.toString('hex'), SCIMD_SECRET_KEY_FILE: file },
            dataDir: dir,
          }),
        { message: 'set SCIMD_SECRET_KEY or SCIMD_SECRET_KEY_FILE, not both' },
      );
      assert.throws(
        () => loadSecretBox({ env: { SCIMD_SECRET_KEY_FILE: join(dir, 'none') }, dataDir: dir }),
        {
          name: 'SecretKeyError',
        },
      );
      assert.throws(
        () => loadSecretBox({ env: { SCIMD_SECRET_KEY: 'short' }, dataDir: dir }),
        SecretKeyError,
      );
      assert.throws(
        () =>
          loadSecretBox({ env: { SCIMD_SECRET_KEY: key.toString('hex'), SCIMD_SECRET_KEY_PREVIOUS: 'x' } }),
        { message: /^SCIMD_SECRET_KEY_PREVIOUS must be 32 bytes/ },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no key configured: one generated into the data dir (0600), the same on every load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scimd-key-'));
    try {
      const a = loadSecretBox({ env: {}, dataDir: join(dir, 'data') });
      const file = join(dir, 'data', KEY_FILE_NAME);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const stored = parseKey(readFileSync(file, 'utf8'), 'file');
      assert.equal(a.keyId, keyIdOf(stored));
      const b = loadSecretBox({ env: {}, dataDir: join(dir, 'data') });
      assert.equal(b.keyId, a.keyId);
      assert.equal(b.open(a.seal(SECRET, PLACE), PLACE), SECRET);
      // Then an environment key: it seals, and the generated key still opens older values.
      const c = loadSecretBox({ env: { SCIMD_SECRET_KEY: key.toString('hex') }, dataDir: join(dir, 'data') });
      assert.deepEqual(c.keyIds, [keyIdOf(key), a.keyId]);
      assert.equal(c.open(a.seal(SECRET, PLACE), PLACE), SECRET);
      // In memory, with nothing configured: a key of this process, no file.
      const m1 = loadSecretBox({ env: {}, dataDir: join(dir, 'mem'), memory: true });
      const m2 = loadSecretBox({ env: {}, memory: true });
      assert.equal(m1.keyId, m2.keyId);
      assert.notEqual(m1.keyId, a.keyId);
      assert.throws(() => statSync(join(dir, 'mem')), { code: 'ENOENT' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
