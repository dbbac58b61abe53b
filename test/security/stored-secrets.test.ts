/**
 * Secrets at rest, per store: each secret given through the admin API (sync connection bearer
 * token, OAuth client secret, TLS key and passphrase, SQL adapter URL, a registered customer's
 * token, a push receiver's authorization, an upstream's callback and poll authorization, a
 * manufacturer's registration token) and each event signing key is absent from its raw row, and
 * the feature still works with the opened value (connection test against a second scimd, push
 * delivery, poll and registration against a recording HTTP server, a SET verified by the JWKS).
 * Plaintext rows of an older database are read and sealed; a value moved to another row does not
 * open; rotation reseals every value with the new key. PGlite, and PostgreSQL when DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compactVerify, createLocalJWKSet } from 'jose';
import {
  SecretBox,
  SecretDecryptError,
  keyIdOf,
  registerSecretBox,
  secretBoxFor,
} from '../../src/security/secret-box.ts';
import { resealStoredSecrets, secretStatus } from '../../src/security/stored-secrets.ts';
import { createServerRegistry } from '../../src/registry.ts';
import { openDatabase } from '../../src/store/open.ts';
import { ConnectionService } from '../../src/sync/connections.ts';
import { scratchDatabase, startTestApp, type TestApp } from '../helpers/app.ts';
import { insertFeed, insertOutbox, outboxRows } from '../events/receivers-fixtures.ts';
import { openTarget } from '../sync/adapter-helpers.ts';

const JSON_HEADERS = { 'content-type': 'application/json' };
const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');
const CERT = fixture('client-a.crt');
const KEY = fixture('client-a.key');
const KEY_LINE = KEY.split('\n')[1];

const KEY1 = randomBytes(32);
const KEY2 = randomBytes(32);

const S = {
  oauth: 'oauth-client-secret-4711',
  pass: 'tls-passphrase-4711',
  customer: 'customer-token-4711',
  push: 'Bearer push-authorization-4711',
  callback: 'Bearer callback-authorization-4711',
  poll: 'Bearer poll-authorization-4711',
  mfr: 'manufacturer-token-4711',
  dbPassword: 'adapter-db-password-4711',
};

interface Seen {
  path: string;
  authorization: string | undefined;
}

describe('secrets at rest', () => {
  let t: TestApp;
  let remote: TestApp;
  let remoteUrl: string;
  let remoteToken: string;
  let fake: Server;
  let fakeUrl: string;
  const seen: Seen[] = [];
  const saved = process.env.SCIMD_SECRET_KEY;

  before(async () => {
    // The app's store is opened with KEY1 (src/store/open.ts reads the environment).
    process.env.SCIMD_SECRET_KEY = KEY1.toString('base64');
    t = await startTestApp({ backgroundWorkers: false });
    delete process.env.SCIMD_SECRET_KEY;
    remote = await startTestApp({ backgroundWorkers: false });
    await remote.app.server.listen({ port: 0, host: '127.0.0.1' });
    remoteUrl = `http://127.0.0.1:${(remote.app.server.server.address() as AddressInfo).port}/scim/v2`;
    const client = await remote.app.admin.createClient('default', { name: 'sync', scopes: ['scim:read'] });
    remoteToken = (await remote.app.admin.issueToken('default', client.id)).token;
    fake = createServer((req: IncomingMessage, res) => {
      req.resume();
      req.on('end', () => {
        seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
        if (req.url === '/push') res.writeHead(202).end();
        else if (req.url === '/poll')
          res.writeHead(200, JSON_HEADERS).end(JSON.stringify({ sets: {}, moreAvailable: false }));
        else if (req.url === '/register') res.writeHead(201, JSON_HEADERS).end('{}');
        else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  });
  after(async () => {
    if (saved === undefined) delete process.env.SCIMD_SECRET_KEY;
    else process.env.SCIMD_SECRET_KEY = saved;
    await t?.close();
    await remote?.close();
    await new Promise((resolve) => fake?.close(resolve));
  });

  const admin = (method: string, url: string, body?: unknown) =>
    t.request(method, `/admin/v1${url}`, { body, headers: body === undefined ? {} : JSON_HEADERS });

  /** Every row of the table, as the JSON text a database dump would show. */
  const raw = async (table: string): Promise<string> =>
    (await t.app.db.query<{ j: string }>(`SELECT row_to_json(x)::text AS j FROM ${table} x`)).rows
      .map((r) => r.j)
      .join('\n');

  const assertAbsent = (text: string, secrets: string[]) => {
    for (const s of secrets) assert.ok(!text.includes(s), `${s} stored in clear: ${text}`);
  };

  test('sync connections: bearer token, OAuth client secret, TLS key and passphrase are sealed; the connection test uses the token', async () => {
    const crm = await admin('POST', '/tenants/default/connections', {
      id: 'crm',
      baseUrl: remoteUrl,
      auth: { type: 'bearer', token: remoteToken },
    });
    assert.equal(crm.status, 201, crm.text);
    assert.deepEqual(crm.body.auth, { type: 'bearer', tokenSet: true });
    const idp = await admin('POST', '/tenants/default/connections', {
      id: 'idp',
      baseUrl: 'https://idp.example/scim/v2',
      auth: {
        type: 'oauth2',
        tokenUrl: 'https://idp.example/token',
        clientId: 'scimd',
        clientSecret: S.oauth,
      },
      tls: { cert: CERT, key: KEY },
    });
    assert.equal(idp.status, 201, idp.text);
    const patched = await admin('PATCH', '/tenants/default/connections/idp', {
      tls: { passphrase: null, servername: 'idp.internal' },
    });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.body.tls, {
      certSet: true,
      keySet: true,
      caSet: false,
      passphraseSet: false,
      servername: 'idp.internal',
    });

    const text = await raw('sync_connections');
    assertAbsent(text, [remoteToken, S.oauth, KEY_LINE]);
    const row = (
      await t.app.db.query<{ id: string; auth: Record<string, string>; tls: Record<string, string> | null }>(
        'SELECT id, auth, tls FROM sync_connections ORDER BY id',
      )
    ).rows;
    const keyId = keyIdOf(KEY1);
    assert.match(row[0].auth.token, new RegExp(`^enc:v1:${keyId}:`));
    assert.match(row[1].auth.clientSecret, new RegExp(`^enc:v1:${keyId}:`));
    assert.match(row[1].tls!.key, new RegExp(`^enc:v1:${keyId}:`));
    assert.equal(row[1].tls!.cert, CERT, 'a certificate is not secret');
    assert.equal(row[1].auth.clientId, 'scimd');

    // The engine's reader opens them.
    const c = (await t.app.connections.find('default', 'crm'))!;
    assert.deepEqual(c.auth, { type: 'bearer', token: remoteToken });
    const i = (await t.app.connections.find('default', 'idp'))!;
    assert.equal(i.auth.type === 'oauth2' && i.auth.clientSecret, S.oauth);
    assert.equal(i.tls?.key, KEY);

    // The remote accepts the opened token: the test lists one resource with it.
    const tested = await admin('POST', '/tenants/default/connections/crm/test');
    assert.equal(tested.status, 200, tested.text);
    assert.equal(tested.body.ok, true, tested.text);
    assert.deepEqual(tested.body.access, { endpoint: '/Users', totalResults: 0 });
    assertAbsent(tested.text, [remoteToken]);
    const view = await admin('GET', '/tenants/default/connections/crm');
    assert.deepEqual(view.body.auth, { type: 'bearer', tokenSet: true });
  });

  test('a TLS key passphrase is sealed', async () => {
    // The fixture key is not encrypted; a passphrase on an unencrypted PEM key is accepted by Node.
    const res = await admin('POST', '/tenants/default/connections', {
      id: 'mtls',
      baseUrl: 'https://mtls.example/scim/v2',
      tls: { cert: CERT, key: KEY, passphrase: S.pass },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.tls.passphraseSet, true);
    assertAbsent(await raw('sync_connections'), [S.pass, KEY_LINE]);
    assert.equal((await t.app.connections.find('default', 'mtls'))!.tls?.passphrase, S.pass);
  });

  test('a sql connection: the database URL with its password is sealed; the connection test opens it', async () => {
    const kind = process.env.DATABASE_URL ? 'postgres' : 'pglite';
    const target = await openTarget(kind);
    try {
      await target.query('CREATE TABLE app_users (id text PRIMARY KEY, login text)');
      // On PostgreSQL the URL holds a password (the test server trusts local connections and
      // ignores it); an embedded folder's URL holds none, and its path is also the base URL.
      let url = target.url;
      if (kind === 'postgres') {
        const u = new URL(target.url);
        u.password = S.dbPassword;
        url = u.toString();
      }
      const res = await admin('POST', '/tenants/default/connections', {
        id: 'app-db',
        kind: 'sql',
        sql: {
          databaseUrl: url,
          tables: [
            { resourceType: 'User', table: 'app_users', keyColumn: 'id', columns: { login: 'userName' } },
          ],
        },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.sql.databaseUrlSet, true);
      const stored = (
        await t.app.db.query<{ adapter: { databaseUrl: string } }>(
          `SELECT adapter FROM sync_connections WHERE id = 'app-db'`,
        )
      ).rows[0];
      assert.match(stored.adapter.databaseUrl, /^enc:v1:/);
      assertAbsent(await raw('sync_connections'), [S.dbPassword]);
      assert.equal((await t.app.connections.find('default', 'app-db'))!.sql?.databaseUrl, url);
      const tested = await admin('POST', '/tenants/default/connections/app-db/test');
      assert.equal(tested.status, 200, tested.text);
      assert.equal(tested.body.ok, true, tested.text);
      assert.deepEqual(tested.body.access, { endpoint: '/Users', totalResults: 0 });
      assertAbsent(tested.text, [S.dbPassword]);
    } finally {
      await target.close();
    }
  });

  test("a registered customer's token is sealed in its connection", async () => {
    const put = await admin('PUT', '/tenants/default/registration', {
      flow: { resourceTypes: ['Device'], filter: 'externalId sw "{customer}:"', mode: 'changes' },
    });
    assert.equal(put.status, 201, put.text);
    const reg = await admin('POST', '/tenants/default/registrations', {
      customer: 'acme',
      baseUrl: remoteUrl,
      token: S.customer,
    });
    assert.equal(reg.status, 201, reg.text);
    assertAbsent(await raw('sync_connections'), [S.customer]);
    assert.deepEqual((await t.app.connections.find('default', 'reg-acme'))!.auth, {
      type: 'bearer',
      token: S.customer,
    });
  });

  test("a push receiver's authorization is sealed; delivery sends it", async () => {
    await insertFeed(t.app, 'default', 'f1');
    const res = await admin('POST', '/tenants/default/receivers', {
      id: 'hook',
      name: 'Hook',
      feedId: 'f1',
      delivery: 'push',
      endpointUrl: `${fakeUrl}/push`,
      authorization: S.push,
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.authorization, 'set');
    // A PATCH of another field keeps the value, sealed again.
    const patched = await admin('PATCH', '/tenants/default/receivers/hook', { name: 'Hook 2' });
    assert.equal(patched.status, 200, patched.text);
    assertAbsent(await raw('event_receivers'), [S.push, 'push-authorization']);
    await insertOutbox(t.app, 'default', 'hook', [{ jti: 'j1' }]);
    seen.length = 0;
    const pass = await t.app.pushWorker.deliverOnce();
    assert.equal(pass.delivered, 1);
    assert.deepEqual(seen, [{ path: '/push', authorization: S.push }]);
    assert.equal((await outboxRows(t.app, 'default', 'hook'))[0].state, 'delivered');
  });

  test("an upstream's callback and poll authorization are sealed; the poll sends it", async () => {
    const res = await admin('POST', '/tenants/default/upstreams', {
      id: 'idm',
      name: 'IdM',
      issuer: 'https://idm.example',
      acceptUnsigned: true,
      scimBaseUrl: 'https://idm.example/scim/v2',
      callbackAuthorization: S.callback,
      poll: { url: `${fakeUrl}/poll`, authorization: S.poll },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.callbackAuthorization, true);
    assert.deepEqual(res.body.poll, { url: `${fakeUrl}/poll`, authorization: true });
    // A poll patch without authorization keeps the stored one.
    const patched = await admin('PATCH', '/tenants/default/upstreams/idm', {
      poll: { url: `${fakeUrl}/poll`, maxEvents: 5 },
    });
    assert.equal(patched.status, 200, patched.text);
    assertAbsent(await raw('upstreams'), [S.callback, S.poll, 'authorization-4711']);
    const u = await t.app.upstreams.get('default', 'idm');
    assert.equal(u.callbackAuthorization, S.callback);
    assert.equal(u.poll?.authorization, S.poll);
    seen.length = 0;
    await t.app.pollClient.pollOnce(u);
    assert.deepEqual(seen, [{ path: '/poll', authorization: S.poll }]);
  });

  test("a manufacturer's registration token is sealed; registering sends it", async () => {
    const res = await admin('PUT', '/tenants/default/manufacturers/mfr', {
      mudUrlPrefix: 'https://mfr.example/mud/',
      registrationUrl: `${fakeUrl}/register`,
      token: S.mfr,
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.tokenSet, true);
    // Changed without a token: the stored one stays.
    const again = await admin('PUT', '/tenants/default/manufacturers/mfr', {
      mudUrlPrefix: 'https://mfr.example/mud/v2/',
      registrationUrl: `${fakeUrl}/register`,
    });
    assert.equal(again.status, 200, again.text);
    assertAbsent(await raw('device_manufacturers'), [S.mfr]);
    seen.length = 0;
    const reg = await admin('POST', '/tenants/default/manufacturers/mfr/register');
    assert.equal(reg.status, 200, reg.text);
    assert.equal(reg.body.status, 'registered');
    assert.deepEqual(seen, [{ path: '/register', authorization: `Bearer ${S.mfr}` }]);
  });

  test('event signing keys: the private JWK is sealed; SETs verify with the JWKS', async () => {
    const jwt = await t.app.signingKeys.sign('default', { jti: 'x1', iss: 'https://scimd.test' });
    const rows = (
      await t.app.db.query<{ kid: string; private_jwk: unknown; public_jwk: { x: string } }>(
        `SELECT kid, private_jwk, public_jwk FROM signing_keys WHERE tenant_id = 'default'`,
      )
    ).rows;
    assert.equal(rows.length, 1);
    assert.equal(typeof rows[0].private_jwk, 'string');
    assert.match(rows[0].private_jwk as string, new RegExp(`^enc:v1:${keyIdOf(KEY1)}:`));
    assert.doesNotMatch(await raw('signing_keys'), /"d":/);
    const jwks = createLocalJWKSet(await t.app.signingKeys.jwks('default'));
    const verified = await compactVerify(jwt, jwks);
    assert.equal(verified.protectedHeader.kid, rows[0].kid);
    // A fresh instance (no cache) opens the stored key to sign.
    const { SigningKeys } = await import('../../src/events/keys.ts');
    const jwt2 = await new SigningKeys(t.app.db).sign('default', { jti: 'x2' });
    assert.equal((await compactVerify(jwt2, jwks)).protectedHeader.kid, rows[0].kid);
  });

  test('server secrets: the key of paging cursors is sealed; cursors work', async () => {
    const row = (
      await t.app.db.query<{ secret: string }>(`SELECT secret FROM server_secrets WHERE name = 'cursor'`)
    ).rows[0];
    assert.match(row.secret, new RegExp(`^enc:v1:${keyIdOf(KEY1)}:`));
    for (const userName of ['ann', 'bob']) {
      const res = await t.request('POST', '/scim/v2/Users', {
        body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName },
      });
      assert.equal(res.status, 201, res.text);
    }
    const first = await t.request('GET', '/scim/v2/Users?cursor&count=1&sortBy=userName');
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.Resources[0].userName, 'ann');
    const next = await t.request(
      'GET',
      `/scim/v2/Users?cursor=${encodeURIComponent(first.body.nextCursor)}&count=1&sortBy=userName`,
    );
    assert.equal(next.status, 200, next.text);
    assert.equal(next.body.Resources[0].userName, 'bob');
  });

  test('plaintext rows of an older version are read, then sealed; a value moved to another row does not open', async () => {
    // As a database written before encryption holds them.
    await t.app.db.query(
      `INSERT INTO sync_connections (tenant_id, id, name, base_url, auth) VALUES ('default', 'legacy', 'legacy', $1, $2)`,
      [remoteUrl, JSON.stringify({ type: 'bearer', token: remoteToken })],
    );
    await t.app.db.query(
      `UPDATE event_receivers SET authorization_header = $1 WHERE tenant_id = 'default' AND id = 'hook'`,
      [S.push],
    );
    const legacy = await admin('POST', '/tenants/default/connections/legacy/test');
    assert.equal(legacy.body.ok, true, legacy.text);
    assert.deepEqual((await t.app.connections.find('default', 'legacy'))!.auth, {
      type: 'bearer',
      token: remoteToken,
    });
    const before = await secretStatus(t.app.db);
    assert.deepEqual(
      before.map((s) => [s.table, s.plaintext]),
      [
        ['sync_connections', 1],
        ['event_receivers', 1],
        ['upstreams', 0],
        ['device_manufacturers', 0],
        ['signing_keys', 0],
        ['server_secrets', 0],
      ],
    );

    const box = secretBoxFor(t.app.db);
    const sealed = await resealStoredSecrets(t.app.db, box, 'plaintext');
    assert.deepEqual(sealed, [
      { table: 'sync_connections', rows: 1, values: 1 },
      { table: 'event_receivers', rows: 1, values: 1 },
      { table: 'upstreams', rows: 0, values: 0 },
      { table: 'device_manufacturers', rows: 0, values: 0 },
      { table: 'signing_keys', rows: 0, values: 0 },
      { table: 'server_secrets', rows: 0, values: 0 },
    ]);
    assertAbsent(await raw('sync_connections'), [remoteToken]);
    assertAbsent(await raw('event_receivers'), [S.push]);
    assert.ok((await secretStatus(t.app.db)).every((s) => s.plaintext === 0));
    assert.equal((await admin('POST', '/tenants/default/connections/legacy/test')).body.ok, true);
    // Nothing left to seal.
    assert.ok(
      (await resealStoredSecrets(t.app.db, box, 'plaintext')).every((r) => r.rows === 0 && r.values === 0),
    );

    // crm's sealed token copied into legacy's row: bound to crm, it does not open there.
    await t.app.db.query(
      `UPDATE sync_connections SET auth = (SELECT auth FROM sync_connections WHERE tenant_id = 'default' AND id = 'crm')
        WHERE tenant_id = 'default' AND id = 'legacy'`,
    );
    await assert.rejects(
      () => t.app.connections.find('default', 'legacy'),
      (err: unknown) =>
        err instanceof SecretDecryptError &&
        err.message ===
          `sync_connections.auth.token of tenant default row legacy does not open with key ${keyIdOf(KEY1)}: the value was altered or belongs to another row`,
    );
    // The view does not need the secret.
    const view = await admin('GET', '/tenants/default/connections/legacy');
    assert.equal(view.status, 200, view.text);
    assert.deepEqual(view.body.auth, { type: 'bearer', tokenSet: true });
    await admin('DELETE', '/tenants/default/connections/legacy');
  });

  test('rotation: with the new key current and the old one previous, every value is resealed with the new key', async () => {
    const counts = (s: Awaited<ReturnType<typeof secretStatus>>) =>
      Object.fromEntries(s.map((x) => [x.table, { plaintext: x.plaintext, sealed: x.sealed }]));
    const k1 = keyIdOf(KEY1);
    const k2 = keyIdOf(KEY2);
    assert.deepEqual(counts(await secretStatus(t.app.db)), {
      // crm token, idp client secret + TLS key, mtls TLS key + passphrase, app-db URL, reg-acme token
      sync_connections: { plaintext: 0, sealed: { [k1]: 7 } },
      event_receivers: { plaintext: 0, sealed: { [k1]: 1 } },
      upstreams: { plaintext: 0, sealed: { [k1]: 2 } },
      device_manufacturers: { plaintext: 0, sealed: { [k1]: 1 } },
      signing_keys: { plaintext: 0, sealed: { [k1]: 1 } },
      // The key of paging cursors (app.ts serverSecret).
      server_secrets: { plaintext: 0, sealed: { [k1]: 1 } },
    });
    const rotated = new SecretBox(KEY2, [KEY1]);
    registerSecretBox(t.app.db, rotated);
    const result = await resealStoredSecrets(t.app.db, rotated, 'rotate');
    assert.deepEqual(result, [
      { table: 'sync_connections', rows: 5, values: 7 },
      { table: 'event_receivers', rows: 1, values: 1 },
      { table: 'upstreams', rows: 1, values: 2 },
      { table: 'device_manufacturers', rows: 1, values: 1 },
      { table: 'signing_keys', rows: 1, values: 1 },
      { table: 'server_secrets', rows: 1, values: 1 },
    ]);
    assert.deepEqual(counts(await secretStatus(t.app.db)), {
      sync_connections: { plaintext: 0, sealed: { [k2]: 7 } },
      event_receivers: { plaintext: 0, sealed: { [k2]: 1 } },
      upstreams: { plaintext: 0, sealed: { [k2]: 2 } },
      device_manufacturers: { plaintext: 0, sealed: { [k2]: 1 } },
      signing_keys: { plaintext: 0, sealed: { [k2]: 1 } },
      server_secrets: { plaintext: 0, sealed: { [k2]: 1 } },
    });
    // Again: nothing to do.
    assert.ok((await resealStoredSecrets(t.app.db, rotated, 'rotate')).every((r) => r.values === 0));

    // The new key alone now serves everything.
    registerSecretBox(t.app.db, new SecretBox(KEY2));
    assert.equal((await admin('POST', '/tenants/default/connections/crm/test')).body.ok, true);
    assert.equal((await t.app.upstreams.get('default', 'idm')).poll?.authorization, S.poll);
    const { SigningKeys } = await import('../../src/events/keys.ts');
    const jwks = createLocalJWKSet(await t.app.signingKeys.jwks('default'));
    await compactVerify(await new SigningKeys(t.app.db).sign('default', { jti: 'x3' }), jwks);
    // The old key alone opens nothing any more.
    registerSecretBox(t.app.db, new SecretBox(KEY1));
    await assert.rejects(() => t.app.connections.find('default', 'crm'), {
      name: 'SecretKeyMissing',
      message: `The stored credential of connection crm cannot be decrypted with this node's keys (key id ${k2} is not configured: set SCIMD_SECRET_KEY / SCIMD_SECRET_KEY_PREVIOUS, see docs/secrets.md)`,
    });
    // A rotation that cannot open a value changes nothing in that table.
    await assert.rejects(() => resealStoredSecrets(t.app.db, new SecretBox(randomBytes(32)), 'rotate'), {
      name: 'SecretKeyMissing',
    });
    assert.deepEqual(counts(await secretStatus(t.app.db)).sync_connections, {
      plaintext: 0,
      sealed: { [k2]: 7 },
    });
    registerSecretBox(t.app.db, new SecretBox(KEY2));
  });
});

describe('a database written before encryption', () => {
  test('its plaintext secrets are read, and sealed when the store is opened again', async () => {
    const scratch = await scratchDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'scimd-legacy-'));
    const opts = scratch ? { databaseUrl: scratch.url, dataDir: dir } : { dataDir: dir };
    const saved = process.env.SCIMD_SECRET_KEY;
    process.env.SCIMD_SECRET_KEY = KEY1.toString('hex');
    const registry = createServerRegistry();
    const jwk = { kty: 'EC', crv: 'P-256', x: 'eA', y: 'eQ', d: 'private-d-4711', kid: 'k1', alg: 'ES256' };
    try {
      let db = await openDatabase(opts, registry);
      try {
        // What an older version wrote.
        await db.query(
          `INSERT INTO sync_connections (tenant_id, id, name, base_url, auth) VALUES ('default', 'old', 'old', 'https://old.example/scim/v2', $1)`,
          [
            JSON.stringify({
              type: 'oauth2',
              tokenUrl: 'https://old.example/t',
              clientId: 'c',
              clientSecret: S.oauth,
            }),
          ],
        );
        await db.query(
          `INSERT INTO event_feeds (tenant_id, id, name, resource_types, form, position)
           VALUES ('default', 'f', 'f', ARRAY['User'], 'full', pg_current_xact_id())`,
        );
        await db.query(
          `INSERT INTO event_receivers (tenant_id, id, feed_id, name, delivery, endpoint_url, authorization_header)
           VALUES ('default', 'r', 'f', 'r', 'push', 'https://r.example/events', $1)`,
          [S.push],
        );
        await db.query(
          `INSERT INTO upstreams (tenant_id, id, name, issuer, scim_base_url, callback_authorization, poll_url, poll_authorization)
           VALUES ('default', 'u', 'u', 'https://u.example', 'https://u.example/scim/v2', $1, 'https://u.example/poll', $2)`,
          [S.callback, S.poll],
        );
        await db.query(
          `INSERT INTO device_manufacturers (tenant_id, id, mud_url_prefix, registration_url, token, client_id)
           VALUES ('default', 'm', 'https://m.example/mud/', 'https://m.example/reg', $1, 'manufacturer-m')`,
          [S.mfr],
        );
        await db.query(
          `INSERT INTO signing_keys (tenant_id, kid, alg, private_jwk, public_jwk) VALUES ('default', 'k1', 'ES256', $1, $2)`,
          [JSON.stringify(jwk), JSON.stringify({ ...jwk, d: undefined })],
        );
        await db.query(
          `INSERT INTO server_secrets (name, secret) VALUES ('legacy', 'plain-server-secret-4711')`,
        );
        // Read as they are.
        const c = (await new ConnectionService(db).find('default', 'old'))!;
        assert.equal(c.auth.type === 'oauth2' && c.auth.clientSecret, S.oauth);
      } finally {
        await db.close();
      }

      db = await openDatabase(opts, registry);
      try {
        const k1 = keyIdOf(KEY1);
        assert.deepEqual(
          (await secretStatus(db)).map((s) => [s.table, s.plaintext, s.sealed]),
          [
            ['sync_connections', 0, { [k1]: 1 }],
            ['event_receivers', 0, { [k1]: 1 }],
            ['upstreams', 0, { [k1]: 2 }],
            ['device_manufacturers', 0, { [k1]: 1 }],
            ['signing_keys', 0, { [k1]: 1 }],
            ['server_secrets', 0, { [k1]: 1 }],
          ],
        );
        const dump = (
          await db.query<{ j: string }>(
            `SELECT string_agg(j, ' ') AS j FROM (
               SELECT row_to_json(x)::text AS j FROM sync_connections x UNION ALL
               SELECT row_to_json(x)::text FROM event_receivers x UNION ALL
               SELECT row_to_json(x)::text FROM upstreams x UNION ALL
               SELECT row_to_json(x)::text FROM device_manufacturers x UNION ALL
               SELECT row_to_json(x)::text FROM signing_keys x UNION ALL
               SELECT row_to_json(x)::text FROM server_secrets x) all_rows`,
          )
        ).rows[0].j;
        for (const secret of [
          S.oauth,
          S.push,
          S.callback,
          S.poll,
          S.mfr,
          'private-d-4711',
          'plain-server-secret-4711',
        ])
          assert.ok(!dump.includes(secret), secret);
        // And read as before.
        const c = (await new ConnectionService(db).find('default', 'old'))!;
        assert.equal(c.auth.type === 'oauth2' && c.auth.clientSecret, S.oauth);
        const box = secretBoxFor(db);
        const sealed = (await db.query<{ private_jwk: string }>(`SELECT private_jwk FROM signing_keys`))
          .rows[0];
        assert.deepEqual(
          JSON.parse(
            box.open(sealed.private_jwk, {
              table: 'signing_keys',
              tenant: 'default',
              row: 'k1',
              field: 'private_jwk',
            }),
          ),
          jwk,
        );
      } finally {
        await db.close();
      }
    } finally {
      if (saved === undefined) delete process.env.SCIMD_SECRET_KEY;
      else process.env.SCIMD_SECRET_KEY = saved;
      rmSync(dir, { recursive: true, force: true });
      await scratch?.drop();
    }
  });
});
