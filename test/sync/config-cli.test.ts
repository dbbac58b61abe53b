/**
 * `scimd connection` and `scimd flow` (CLI): remote mode (--url against a running server) for the
 * whole life cycle, direct mode (embedded store) for add with files and the failures the CLI
 * itself reports. Every output is checked for the secrets given in files: they never appear.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, TOKEN } from '../helpers/app.ts';
import { cleanEnv, failed, ok, parsed, scimd, type Run } from '../cli/run.ts';

const SECRET = 'cli-bearer-secret-42';
const OAUTH_SECRET = 'cli-oauth-secret-17';

function noSecrets(runs: Run[], extra: string[] = []): void {
  for (const r of runs) {
    for (const s of [SECRET, OAUTH_SECRET, ...extra]) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `secret in output: ${r.stdout}${r.stderr}`);
    }
  }
}

describe('scimd connection / flow (CLI)', { concurrency: true }, () => {
  test('remote mode: connections and flows from add to remove', { timeout: 300_000 }, async () => {
    const t = await startTestApp({ backgroundWorkers: false });
    const dir = mkdtempSync(join(tmpdir(), 'scimd-sync-cli-'));
    const runs: Run[] = [];
    const run = async (args: string[]) => {
      const r = await scimd(args, env);
      runs.push(r);
      return r;
    };
    let env: NodeJS.ProcessEnv = {};
    try {
      await t.app.server.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`;
      env = cleanEnv({ SCIMD_URL: url, SCIMD_TOKEN: TOKEN });
      // The connection points at this same server's SCIM API, with a token of a reading client.
      const reader = await t.app.admin.createClient('default', { name: 'reader', scopes: ['scim:read'] });
      const readerToken = (await t.app.admin.issueToken('default', reader.id)).token;
      writeFileSync(join(dir, 'token'), `${readerToken}\n`);
      writeFileSync(join(dir, 'wrong'), `${SECRET}\n`);
      writeFileSync(join(dir, 'oauth'), OAUTH_SECRET);
      writeFileSync(
        join(dir, 'map.json'),
        JSON.stringify({ only: ['userName', 'name'], rules: [{ from: 'userName', to: 'externalId' }] }),
      );

      const added = parsed<Record<string, unknown>>(
        await run([
          'connection',
          'add',
          '--id',
          'self',
          '--name',
          'Self',
          '--base-url',
          `${url}/scim/v2/`,
          '--bearer-token-file',
          join(dir, 'token'),
          '--compat',
          'disable=bulk',
          '--compat',
          'maxMembersPerPatch=100',
          '--timeout-ms',
          '5000',
          '--json',
        ]),
      );
      const { created: _c, updated: _u, ...rest } = added;
      assert.deepEqual(rest, {
        tenant: 'default',
        id: 'self',
        name: 'Self',
        baseUrl: `${url}/scim/v2`,
        auth: { type: 'bearer', tokenSet: true },
        compat: { disable: ['bulk'], maxMembersPerPatch: 100 },
        timeoutMs: 5000,
      });
      assert.deepEqual((await t.app.connections.get('default', 'self')).auth, {
        type: 'bearer',
        token: readerToken,
      });

      const tested = ok(await run(['connection', 'test', 'self']));
      assert.match(tested, /^result\s+ok in \d+ ms$/m);
      assert.match(tested, /^bulk\s+no$/m);
      assert.match(
        tested,
        /^resource types\s+User \/Users, Group \/Groups, Device \/Devices, EndpointApp \/EndpointApps$/m,
      );
      assert.match(tested, /^access\s+\/Users readable \(0 resources\)$/m);

      // OAuth: the secret comes from a file, is kept when the scope changes, and is never printed.
      const oauth = ok(
        await run([
          'connection',
          'update',
          'self',
          '--oauth-token-url',
          `${url}/oauth/token`,
          '--oauth-client-id',
          'sync',
          '--oauth-client-secret-file',
          join(dir, 'oauth'),
          '--clear',
          'compat',
        ]),
      );
      assert.match(
        oauth,
        new RegExp(`^auth\\s+oauth2 client sync at ${url}/oauth/token \\(secret set\\)$`, 'm'),
      );
      assert.doesNotMatch(oauth, /^compat/m);
      assert.deepEqual((await t.app.connections.get('default', 'self')).auth, {
        type: 'oauth2',
        tokenUrl: `${url}/oauth/token`,
        clientId: 'sync',
        clientSecret: OAUTH_SECRET,
      });
      // A refused token: exit 1, the reason on stderr, the secret nowhere.
      ok(await run(['connection', 'update', 'self', '--bearer-token-file', join(dir, 'wrong')]));
      const refused = await run(['connection', 'test', 'self']);
      failed(
        refused,
        `connection self: GET ${url}/scim/v2/Users?count=1&attributes=id failed with 401: Invalid or expired bearer token`,
      );

      const flow = parsed<Record<string, unknown>>(
        await run([
          'flow',
          'add',
          '--id',
          'devices',
          '--connection',
          'self',
          '--direction',
          'push',
          '--types',
          'Device',
          '--filter',
          'displayName sw "acme-"',
          '--rename',
          'displayName=externalId',
          '--transform',
          'externalId=lowercase',
          '--drop',
          'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter',
          '--set',
          'active=true',
          '--initial',
          'displayName,active',
          '--default-owner',
          'local',
          '--match',
          'externalId',
          '--on-delete',
          'deactivate',
          '--use-put',
          '--schedule',
          '0 3 * * *',
          '--on-local-change',
          '--json',
        ]),
      );
      assert.deepEqual(flow.mapping, {
        rules: [
          { from: 'displayName', to: 'externalId' },
          { attribute: 'externalId', transform: 'lowercase' },
          { drop: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter' },
          { set: 'active', value: true },
        ],
      });
      assert.deepEqual(flow.authority, { default: 'local', initial: ['displayName', 'active'] });
      assert.deepEqual(
        [flow.matching, flow.onDelete, flow.usePut, flow.schedule, flow.onLocalChange, flow.resourceTypes],
        [{ attributes: ['externalId'] }, 'deactivate', true, '0 3 * * *', true, ['Device']],
      );
      assert.match(String(flow.nextRun), /^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/);

      const hr = ok(
        await run([
          'flow',
          'add',
          '--id',
          'hr',
          '--connection',
          'self',
          '--direction',
          'pull',
          '--mode',
          'delta',
          '--types',
          'User',
          '--map-file',
          join(dir, 'map.json'),
          '--owned-by-remote',
          'name,title',
          '--owned-by-local',
          'emails',
          '--full-every',
          '3600',
          '--disabled',
        ]),
      );
      assert.match(hr, /^mapping\s+userName → externalId$/m);
      assert.match(hr, /^only\s+userName, name$/m);
      assert.match(hr, /^owned by remote\s+name, title$/m);
      assert.match(hr, /^full every\s+3600s$/m);
      assert.match(hr, /^enabled\s+no$/m);

      assert.match(
        ok(await run(['flow', 'list', '--connection', 'self'])),
        /^ID\s+NAME\s+CONNECTION\s+DIRECTION\s+MODE\s+TYPES\s+ENABLED\s+NEXT RUN\ndevices\s+devices\s+self\s+push\s+changes\s+Device\s+yes\s+\d{4}-\S+\nhr\s+hr\s+self\s+pull\s+delta\s+User\s+no\s+-$/m,
      );
      const updated = parsed<Record<string, unknown>>(
        await run([
          'flow',
          'update',
          'devices',
          '--no-use-put',
          '--no-on-local-change',
          '--mode',
          'full',
          '--clear',
          'schedule',
          '--disabled',
          '--json',
        ]),
      );
      assert.deepEqual(
        [updated.usePut, updated.onLocalChange, updated.mode, updated.schedule, updated.enabled],
        [false, false, 'full', undefined, false],
      );
      failed(
        await run(['connection', 'remove', 'self']),
        'Connection self is used by flow(s) devices, hr: remove them first',
      );
      assert.match(
        ok(await run(['flow', 'remove', 'devices'])),
        /^Removed flow devices of tenant default\n$/,
      );
      assert.match(ok(await run(['flow', 'remove', 'hr'])), /^Removed flow hr of tenant default\n$/);
      assert.match(
        ok(await run(['connection', 'list'])),
        new RegExp(
          `^ID\\s+NAME\\s+BASE URL\\s+AUTH\\s+CREATED\\nself\\s+Self\\s+${url}/scim/v2\\s+bearer\\s+\\d{4}-`,
        ),
      );
      assert.match(
        ok(await run(['connection', 'remove', 'self'])),
        /^Removed connection self of tenant default\n$/,
      );
      noSecrets(runs, [readerToken]);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('direct mode: add with files; what the CLI refuses itself', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scimd-sync-direct-'));
    const env = cleanEnv({ SCIMD_DATA_DIR: join(dir, 'data') });
    const runs: Run[] = [];
    try {
      writeFileSync(join(dir, 'token'), `${SECRET}\n`);
      const added = await scimd(
        [
          'connection',
          'add',
          '--id',
          'c',
          '--base-url',
          'https://c.example/scim/v2',
          '--bearer-token-file',
          join(dir, 'token'),
        ],
        env,
      );
      runs.push(added);
      assert.match(ok(added), /^auth\s+bearer token \(set\)$/m);
      // Refused before the store is opened: quick.
      const both = await scimd(
        [
          'connection',
          'add',
          '--base-url',
          'https://c.example',
          '--bearer-token-file',
          join(dir, 'token'),
          '--no-auth',
        ],
        env,
      );
      failed(both, 'give one of --no-auth, --bearer-token-file or the --oauth-* options');
      failed(
        await scimd(
          [
            'flow',
            'add',
            '--connection',
            'c',
            '--direction',
            'pull',
            '--types',
            'User',
            '--rename',
            'userName',
          ],
          env,
        ),
        '--rename must be a=b; got "userName"',
      );
      // The service's checks in direct mode are the API's.
      failed(
        await scimd(
          ['flow', 'add', '--connection', 'c', '--direction', 'push', '--mode', 'delta', '--types', 'User'],
          env,
        ),
        'mode "delta" is not for push flows (push: changes, full)',
      );
      noSecrets(runs);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
