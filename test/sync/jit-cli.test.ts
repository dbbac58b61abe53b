/**
 * `scimd jit oidc` (CLI) for use-case behaviour 16: remote mode (--url against a running server)
 * and direct mode (the embedded store, or a scratch PostgreSQL database when DATABASE_URL is set),
 * with ID tokens signed by a test key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createApp } from '../../src/app.ts';
import { startTestApp, TOKEN, type TestApp } from '../helpers/app.ts';
import { cleanEnv, failed, ok, parsed, scimd, scratchDatabase } from '../cli/run.ts';
import { addConnection, addFlow, requestedTriggers } from './triggers-fixtures.ts';

const ISS = 'https://idp.example';
const AUD = 'login-app';
let key: CryptoKey;
let jwk: JWK;
let dir: string;

async function idToken(claims: Record<string, unknown>, expSeconds = 300): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(ISS)
    .setAudience(AUD)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + expSeconds)
    .sign(key);
}

function tokenFile(name: string, token: string): string {
  const f = join(dir, name);
  writeFileSync(f, `${token}\n`);
  return f;
}

const settings = () => ({ jit: { oidc: { issuer: ISS, audience: AUD, jwks: { keys: [jwk] } } } });

before(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
  dir = mkdtempSync(join(tmpdir(), 'scimd-jit-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('scimd jit oidc (CLI), behaviour 16', { concurrency: true }, () => {
  test(
    'remote mode: created, then the existing user; a rejected token fails with its reason',
    { timeout: 120_000 },
    async () => {
      const t: TestApp = await startTestApp({ backgroundWorkers: false });
      try {
        await t.app.admin.updateTenant('default', { settings: settings() });
        await addConnection(t.app.db, 'default', 'hr');
        await addFlow(t.app.db, 'default', {
          id: 'pull-users',
          connection: 'hr',
          direction: 'pull',
          mode: 'full',
          types: ['User'],
        });
        await t.app.server.listen({ port: 0, host: '127.0.0.1' });
        const url = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`;
        const env = cleanEnv({ SCIMD_URL: url, SCIMD_TOKEN: TOKEN });
        const f = tokenFile(
          'remote.jwt',
          await idToken({ sub: 's-1', preferred_username: 'remote-user', given_name: 'Rem' }),
        );
        const first = parsed<{ created: boolean; user: Record<string, unknown> }>(
          await scimd(['jit', 'oidc', '--id-token-file', f, '--json'], env),
        );
        assert.equal(first.created, true);
        assert.equal(first.user.userName, 'remote-user');
        assert.equal(first.user.externalId, 's-1');
        assert.deepEqual(first.user.name, { givenName: 'Rem' });
        assert.deepEqual(await requestedTriggers(t.app.db, 'default'), { 'pull-users': 'jit' });
        const again = ok(await scimd(['jit', 'oidc', '--id-token-file', f], env));
        assert.equal(
          again,
          `outcome     existing user (updated from the claims where they differ)\ntenant      default\nid          ${first.user.id}\nuserName    remote-user\nexternalId  s-1\n`,
        );
        const expired = tokenFile(
          'expired.jwt',
          await idToken({ sub: 's-1', preferred_username: 'x' }, -120),
        );
        failed(
          await scimd(['jit', 'oidc', '--id-token-file', expired], env),
          'The ID token is rejected: it has expired (exp)',
        );
      } finally {
        await t.close();
      }
    },
  );

  test(
    'direct mode: the store (embedded, or a scratch PostgreSQL database)',
    { timeout: 120_000 },
    async () => {
      const dataDir = join(dir, 'data');
      // Never the DATABASE_URL database itself: a scratch one when it is set.
      const scratch = await scratchDatabase();
      try {
        const store = scratch ? { databaseUrl: scratch.url } : { dataDir, databaseUrl: undefined };
        const env = cleanEnv(scratch ? { DATABASE_URL: scratch.url } : { SCIMD_DATA_DIR: dataDir });
        const app = await createApp({
          ...store,
          logLevel: 'silent',
          backgroundWorkers: false,
          adminToken: TOKEN,
        });
        await app.admin.updateTenant('default', { settings: settings() });
        await app.close();
        const f = tokenFile('direct.jwt', await idToken({ sub: 's-2', preferred_username: 'direct-user' }));
        const out = parsed<{ created: boolean; user: Record<string, unknown> }>(
          await scimd(['jit', 'oidc', '--id-token-file', f, '--json'], env),
        );
        assert.equal(out.created, true);
        assert.equal(out.user.userName, 'direct-user');
        assert.equal(out.user.externalId, 's-2');
        const missing = join(dir, 'nope.jwt');
        failed(
          await scimd(['jit', 'oidc', '--id-token-file', missing], env),
          `--id-token-file: cannot read ${missing}: ENOENT: no such file or directory, open '${missing}'`,
        );
      } finally {
        await scratch?.drop();
      }
    },
  );
});
