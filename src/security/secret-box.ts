/**
 * Encryption at rest of the secrets scimd must use later (connection credentials, event
 * authorization headers, registration tokens, event signing keys): they cannot be hashed, so they
 * are sealed with AES-256-GCM before they reach the database and opened when a row is read.
 *
 * A sealed value is the text `enc:v1:<keyId>:<base64url(nonce ‖ ciphertext ‖ tag)>`:
 * - a random 96-bit nonce per value;
 * - `keyId`: 8 hex digits of SHA-256 of the key, so the key a value was sealed with is known
 *   (rotation: SCIMD_SECRET_KEY_PREVIOUS keys still open values, `scimd secrets rotate` reseals);
 * - associated data binding the value to its place (table, tenant, row id, field) and to the
 *   envelope's header: a value copied to another row or field does not open.
 * A stored value without the `enc:` prefix is plaintext written before encryption existed: it is
 * read as is (and sealed by the next start or `scimd secrets rotate`).
 *
 * The key (docs/secrets.md): SCIMD_SECRET_KEY (32 bytes, base64 or hex) or SCIMD_SECRET_KEY_FILE;
 * without either, a key generated once into `<data dir>/secret.key` (mode 0600). A key file left in
 * the data dir stays usable for opening values once an environment key is set.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a sealed value lives: it opens only there. */
export interface SecretPlace {
  table: string;
  /** The row's tenant ('' for node-wide rows). */
  tenant: string;
  /** The row's id within the tenant. */
  row: string;
  /** The column, or column.path for a field inside a jsonb column (e.g. `auth.token`). */
  field: string;
}

export const SEALED_PREFIX = 'enc:';
const VERSION = 'v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** File name of the generated key in the data dir. */
export const KEY_FILE_NAME = 'secret.key';

/** A value cannot be opened (unknown key, wrong key, tampered or moved value, malformed envelope). */
export class SecretDecryptError extends Error {
  constructor(
    message: string,
    readonly place: SecretPlace,
  ) {
    super(message);
    this.name = 'SecretDecryptError';
  }
}

/** What a place's secret is, for messages (never its value). */
const SUBJECTS: Record<string, string> = {
  sync_connections: 'connection',
  event_receivers: 'event receiver',
  upstreams: 'upstream',
  device_manufacturers: 'device manufacturer',
  signing_keys: 'signing key',
  server_secrets: 'server secret',
};

/**
 * A sealed value names a key id this node does not have (another node's generated key file, a
 * rotated-away key): a configuration problem, not a bad value. The admin API answers 503 with this
 * message (src/http/errors.ts), and a sync run fails with it. It names the key id and the row, never
 * the value.
 */
export class SecretKeyMissing extends SecretDecryptError {
  constructor(
    readonly keyId: string,
    place: SecretPlace,
  ) {
    const subject = SUBJECTS[place.table] ?? place.table;
    super(
      `The stored credential of ${subject} ${place.row} cannot be decrypted with this node's keys (key id ${keyId} is not configured: set SCIMD_SECRET_KEY / SCIMD_SECRET_KEY_PREVIOUS, see docs/secrets.md)`,
      place,
    );
    this.name = 'SecretKeyMissing';
  }
}

/** The key configuration is wrong (not 32 bytes, unreadable file). */
export class SecretKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretKeyError';
  }
}

/** 8 hex digits of SHA-256 of the key: names the key in envelopes without revealing it. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** A 32-byte key from its text form: 64 hex digits or base64 / base64url of 32 bytes. */
export function parseKey(text: string, what: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === 32) return b;
  }
  throw new SecretKeyError(
    `${what} must be 32 bytes written as 64 hex digits or base64 (e.g. \`openssl rand -base64 32\`)`,
  );
}

function describe(p: SecretPlace): string {
  return `${p.table}.${p.field} of ${p.tenant ? `tenant ${p.tenant} ` : ''}row ${p.row}`;
}

export class SecretBox {
  /** The id of the key new values are sealed with. */
  readonly keyId: string;
  private readonly keys = new Map<string, Buffer>();

  /** `current` seals and opens; `previous` keys only open (rotation). */
  constructor(current: Buffer, previous: Buffer[] = []) {
    if (current.length !== 32) throw new SecretKeyError('the secret key must be 32 bytes');
    this.keyId = keyIdOf(current);
    this.keys.set(this.keyId, current);
    for (const k of previous) {
      if (k.length !== 32) throw new SecretKeyError('a previous secret key must be 32 bytes');
      const id = keyIdOf(k);
      if (!this.keys.has(id)) this.keys.set(id, k);
    }
  }

  /** The ids of every key that opens values (current first). */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  /** The sealed form of `plain` for `place`. */
  seal(plain: string, place: SecretPlace): string {
    const header = `${SEALED_PREFIX}${VERSION}:${this.keyId}:`;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.keyId)!, nonce);
    cipher.setAAD(aad(header, place));
    const body = Buffer.concat([nonce, cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return header + body.toString('base64url');
  }

  /** The plaintext of a stored value: opened when sealed, as is when it was stored in clear. */
  open(stored: string, place: SecretPlace): string {
    if (!isSealed(stored)) return stored;
    const m = /^enc:([^:]+):([^:]+):([A-Za-z0-9_-]+)$/.exec(stored);
    if (!m || m[1] !== VERSION)
      throw new SecretDecryptError(`${describe(place)} is not a readable sealed value`, place);
    const key = this.keys.get(m[2]);
    if (!key) throw new SecretKeyMissing(m[2], place);
    const body = Buffer.from(m[3], 'base64url');
    if (body.length < NONCE_BYTES + TAG_BYTES)
      throw new SecretDecryptError(`${describe(place)} is not a readable sealed value`, place);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, NONCE_BYTES));
      decipher.setAAD(aad(`enc:${m[1]}:${m[2]}:`, place));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new SecretDecryptError(
        `${describe(place)} does not open with key ${m[2]}: the value was altered or belongs to another row`,
        place,
      );
    }
  }

  /** seal/open of an optional value: null and undefined pass through. */
  sealOptional<T extends null | undefined>(v: string | T, place: SecretPlace): string | T {
    return typeof v === 'string' ? this.seal(v, place) : v;
  }
  openOptional<T extends null | undefined>(v: string | T, place: SecretPlace): string | T {
    return typeof v === 'string' ? this.open(v, place) : v;
  }

  /** Sealed with the current key (nothing to do for rotation or migration). */
  isCurrent(stored: string): boolean {
    return stored.startsWith(`${SEALED_PREFIX}${VERSION}:${this.keyId}:`);
  }

  /** The value sealed with the current key: opened with whichever key sealed it (or read in clear), sealed again. */
  reseal(stored: string, place: SecretPlace): string {
    return this.isCurrent(stored) ? stored : this.seal(this.open(stored, place), place);
  }
}

export function isSealed(v: string): boolean {
  return v.startsWith(SEALED_PREFIX);
}

/** Header and place, unambiguously (JSON of an array of strings). */
function aad(header: string, p: SecretPlace): Buffer {
  return Buffer.from(JSON.stringify(['scimd-secret', header, p.table, p.tenant, p.row, p.field]), 'utf8');
}

// ------------------------------------------------------------------------------ key loading

export interface SecretKeySource {
  env?: NodeJS.ProcessEnv;
  /** The embedded store's folder (also where a PostgreSQL node keeps a generated key). Default ./data. */
  dataDir?: string;
  /** An in-memory store: with no key configured, a key for this process only (nothing outlives it). */
  memory?: boolean;
}

let processKey: Buffer | undefined;

function keyFromBytes(raw: Buffer, what: string): Buffer {
  try {
    return parseKey(raw.toString('utf8'), what);
  } catch (err) {
    if (raw.length === 32) return raw; // 32 raw bytes
    throw err;
  }
}

function readKeyFile(path: string, what: string): Buffer {
  try {
    return keyFromBytes(readFileSync(path), `${what} ${path}`);
  } catch (err) {
    if (err instanceof SecretKeyError) throw err;
    throw new SecretKeyError(`${what} ${path} cannot be read: ${(err as Error).message}`);
  }
}

/** The file's bytes, or undefined when there is no such file. */
function readIfPresent(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SecretKeyError(`the key file ${path} cannot be read: ${(err as Error).message}`);
  }
}

/**
 * The key in `<dir>/secret.key`, generated on first use (mode 0600). Several processes may start
 * together: the file is written aside and linked into place, so none reads a half-written key and
 * all end up with the one that won.
 */
export function dataDirKey(dir: string): Buffer {
  const file = join(dir, KEY_FILE_NAME);
  const found = readIfPresent(file);
  if (found) return keyFromBytes(found, `the key file ${file}`);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${KEY_FILE_NAME}.${process.pid}.${randomBytes(4).toString('hex')}`);
  writeFileSync(tmp, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  try {
    chmodSync(tmp, 0o600);
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  return readKeyFile(file, 'the key file');
}

/**
 * The box for a store: SCIMD_SECRET_KEY or SCIMD_SECRET_KEY_FILE (then a key file in the data dir,
 * if one is there, is kept for opening), else the data dir's key (generated once), or a key of this
 * process for an in-memory store. SCIMD_SECRET_KEY_PREVIOUS (keys separated by commas or blanks)
 * and SCIMD_SECRET_KEY_PREVIOUS_FILE (one key a line) open values sealed before a rotation.
 */
export function loadSecretBox(source: SecretKeySource = {}): SecretBox {
  const env = source.env ?? process.env;
  const dir = source.dataDir || './data';
  const previous: Buffer[] = [];
  if (env.SCIMD_SECRET_KEY_PREVIOUS) {
    for (const part of env.SCIMD_SECRET_KEY_PREVIOUS.split(/[\s,]+/).filter(Boolean))
      previous.push(parseKey(part, 'SCIMD_SECRET_KEY_PREVIOUS'));
  }
  if (env.SCIMD_SECRET_KEY_PREVIOUS_FILE) {
    let text: string;
    try {
      text = readFileSync(env.SCIMD_SECRET_KEY_PREVIOUS_FILE, 'utf8');
    } catch (err) {
      throw new SecretKeyError(`SCIMD_SECRET_KEY_PREVIOUS_FILE cannot be read: ${(err as Error).message}`);
    }
    for (const line of text.split(/\r?\n/).filter((l) => l.trim() && !l.trim().startsWith('#')))
      previous.push(parseKey(line, 'SCIMD_SECRET_KEY_PREVIOUS_FILE'));
  }
  let current: Buffer;
  if (env.SCIMD_SECRET_KEY && env.SCIMD_SECRET_KEY_FILE)
    throw new SecretKeyError('set SCIMD_SECRET_KEY or SCIMD_SECRET_KEY_FILE, not both');
  if (env.SCIMD_SECRET_KEY) current = parseKey(env.SCIMD_SECRET_KEY, 'SCIMD_SECRET_KEY');
  else if (env.SCIMD_SECRET_KEY_FILE)
    current = readKeyFile(env.SCIMD_SECRET_KEY_FILE, 'SCIMD_SECRET_KEY_FILE');
  else if (source.memory) current = processKey ??= randomBytes(32);
  else current = dataDirKey(dir);
  if ((env.SCIMD_SECRET_KEY || env.SCIMD_SECRET_KEY_FILE) && !source.memory) {
    // Moving from the generated key to a configured one: values sealed before still open.
    const file = join(dir, KEY_FILE_NAME);
    const found = readIfPresent(file);
    if (found) previous.push(keyFromBytes(found, `the key file ${file}`));
  }
  return new SecretBox(current, previous);
}

// ------------------------------------------------------------------------------ per database

const boxes = new WeakMap<object, SecretBox>();
let fallback: SecretBox | undefined;

/** Makes `box` the one the services of `db` seal and open with (src/store/open.ts does it). */
export function registerSecretBox(db: object, box: SecretBox): void {
  boxes.set(db, box);
}

/**
 * The box of a database opened by openDatabase; for one opened otherwise (unit tests), the
 * environment's key or a key of this process.
 */
export function secretBoxFor(db: object): SecretBox {
  const box = boxes.get(db);
  if (box) return box;
  return (fallback ??= loadSecretBox({ memory: true }));
}
