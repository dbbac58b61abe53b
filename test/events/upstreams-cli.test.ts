/**
 * `scimd upstream` (CLI) in direct mode (embedded store) and remote mode (--url against a running
 * server), side by side to keep the file within the runner's time limit.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, TOKEN } from '../helpers/app.ts';
import { cleanEnv, failed, ok, parsed, scimd } from '../cli/run.ts';

const EC_JWK = {
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
  kid: 'k1',
};

describe('scimd upstream (CLI)', { concurrency: true }, () => {
  test('direct mode: add, remove', { timeout: 300_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scimd-upstream-'));
    const env = cleanEnv({ SCIMD_DATA_DIR: dataDir });
    try {
      const jwksFile = join(dataDir, 'jwks.json');
      writeFileSync(jwksFile, JSON.stringify({ keys: [EC_JWK] }));
      const added = parsed<Record<string, unknown>>(
        await scimd(
          [
            'upstream',
            'add',
            '--id',
            'a',
            '--name',
            'A',
            '--issuer',
            'https://a.example',
            '--jwks-file',
            jwksFile,
            '--scim-base-url',
            'https://a.example/scim/v2',
            '--callback-authorization',
            'Bearer cli-secret',
            '--resource-type',
            'User',
            '--json',
          ],
          env,
        ),
      );
      assert.equal(added.id, 'a');
      assert.deepEqual(added.jwks, { keys: [EC_JWK] });
      assert.equal(added.callbackAuthorization, true);
      assert.deepEqual(added.resourceTypes, ['User']);

      // Each direct-mode run opens the embedded store (slow under load): list, show, update and
      // events are covered in remote mode, which runs the same commands against the admin API.
      failed(await scimd(['upstream', 'update', 'a'], env), 'nothing to update: give at least one option');
      assert.match(
        ok(await scimd(['upstream', 'remove', 'a'], env)),
        /^Removed upstream a of tenant default\n$/,
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('remote mode (--url, --token) against a running server', { timeout: 300_000 }, async () => {
    const t = await startTestApp({ backgroundWorkers: false });
    try {
      await t.app.server.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`;
      const env = cleanEnv({ SCIMD_URL: url, SCIMD_TOKEN: TOKEN });
      const added = parsed<Record<string, unknown>>(
        await scimd(
          [
            'upstream',
            'add',
            '--id',
            'r',
            '--name',
            'R',
            '--issuer',
            'https://r.example',
            '--accept-unsigned',
            '--scim-base-url',
            'https://r.example/scim/v2',
            '--poll-url',
            'https://r.example/poll',
            '--poll-authorization',
            'Bearer p',
            '--poll-interval',
            '5',
            '--json',
          ],
          env,
        ),
      );
      assert.deepEqual(added.poll, {
        url: 'https://r.example/poll',
        authorization: true,
        intervalSeconds: 5,
      });
      assert.equal((await t.app.upstreams.get('default', 'r')).poll?.authorization, 'Bearer p');
      assert.match(
        ok(await scimd(['upstream', 'list'], env)),
        /^ID\s+NAME\s+ISSUER\s+DELIVERY\s+CREATED\nr\s+R\s+https:\/\/r\.example\s+poll\s+\d{4}-/,
      );
      const shown = ok(await scimd(['upstream', 'show', 'r'], env));
      assert.match(shown, /^poll auth\s+set$/m);
      assert.match(shown, /^push path\s+\/tenants\/default\/events\/push\/r$/m);
      assert.ok(!shown.includes('Bearer p'));
      // An update that does not name acceptUnsigned leaves it as it is.
      const cleared = parsed<Record<string, unknown>>(
        await scimd(['upstream', 'update', 'r', '--audience', 'urn:b', '--clear', 'poll', '--json'], env),
      );
      assert.deepEqual([cleared.audience, cleared.poll, cleared.acceptUnsigned], ['urn:b', undefined, true]);
      const signedOnly = parsed<Record<string, unknown>>(
        await scimd(
          [
            'upstream',
            'update',
            'r',
            '--no-accept-unsigned',
            '--jwks-uri',
            'https://r.example/jwks',
            '--json',
          ],
          env,
        ),
      );
      assert.equal(signedOnly.acceptUnsigned, false);
      assert.deepEqual(parsed(await scimd(['upstream', 'events', 'r', '--state', 'failed', '--json'], env)), {
        totalResults: 0,
        events: [],
      });
      failed(await scimd(['upstream', 'show', 'zz'], env), 'No upstream zz in tenant default');
      assert.match(
        ok(await scimd(['upstream', 'remove', 'r'], env)),
        /^Removed upstream r of tenant default\n$/,
      );
    } finally {
      await t.close();
    }
  });
});
