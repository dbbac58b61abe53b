/**
 * `scimd feed ...` as a user runs it: direct mode on the store (the embedded one, or a scratch
 * PostgreSQL database with DATABASE_URL) and remote mode (--url) against a server started here.
 * Each direct command opens the whole store (seconds each), so the direct scenario is three
 * commands; the rest runs in remote mode, where the same FeedService answers through the admin API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { cleanEnv, failed, ok, parsed, scimd, scratchDatabase } from '../cli/run.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';

describe('scimd feed, direct mode', () => {
  test('add, show, remove (each command opens the store: kept to three)', { timeout: 600_000 }, async () => {
    const scratch = await scratchDatabase();
    const dataDir = scratch ? undefined : mkdtempSync(join(tmpdir(), 'scimd-feed-cli-'));
    const env = cleanEnv(scratch ? { DATABASE_URL: scratch.url } : { SCIMD_DATA_DIR: dataDir });
    try {
      const created = parsed<Record<string, unknown>>(
        await scimd(
          [
            'feed',
            'add',
            '--json',
            '--id',
            'cli',
            '--name',
            'CLI feed',
            '--type',
            'User',
            '--filter',
            'title eq "Eng"',
            '--form',
            'notice',
          ],
          env,
        ),
      );
      assert.equal(created.id, 'cli');
      assert.equal(created.filter, 'title eq "Eng"');
      assert.equal(created.form, 'notice');
      assert.deepEqual(created.resourceTypes, ['User']);
      assert.equal(created.memberCount, 0);
      assert.equal(created.uri, 'http://localhost:8080/scim/v2/Feeds/cli');
      const text = ok(await scimd(['feed', 'show', 'cli'], env));
      assert.match(text, /^id +cli$/m);
      assert.match(text, /^filter +title eq "Eng"$/m);
      assert.match(text, /^members +by filter$/m);
      assert.match(text, /^member count +0$/m);
      assert.deepEqual(parsed(await scimd(['feed', 'remove', 'cli', '--json'], env)), {
        tenant: 'default',
        id: 'cli',
        deleted: true,
      });
    } finally {
      await scratch?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('scimd feed, remote mode (--url)', () => {
  let t: TestApp;
  let base: string;
  let env: NodeJS.ProcessEnv;
  let userId: string;

  before(async () => {
    t = await startTestApp({ backgroundWorkers: false });
    await t.app.admin.createTenant({ id: 'acme' });
    await t.app.admin.createClient('acme', { id: 'acme-admin', name: 'acme admin', scopes: ['admin'] });
    const token = (await t.app.admin.issueToken('acme', 'acme-admin')).token;
    base = await t.app.server.listen({ port: 0, host: '127.0.0.1' });
    // SCIMD_DATA_DIR points at a folder that must stay untouched: remote mode never opens a store.
    env = cleanEnv({ SCIMD_URL: base, SCIMD_TOKEN: token, SCIMD_DATA_DIR: '/nonexistent/scimd-cli' });
    const u = await t.request('POST', '/tenants/acme/scim/v2/Users', {
      body: { schemas: [USER], userName: 'cli-member', externalId: 'cm', active: true },
      token,
    });
    assert.equal(u.status, 201, u.text);
    userId = u.body.id;
  });
  after(async () => {
    await t?.close();
  });

  test(
    'add, list, members of an explicit feed (add, table, remove), errors, another tenant refused',
    { timeout: 300_000 },
    async () => {
      const f = parsed<Record<string, unknown>>(
        await scimd(
          [
            'feed',
            'add',
            '--tenant',
            'acme',
            '--json',
            '--id',
            'hand',
            '--name',
            'h',
            '--type',
            'User',
            '--explicit-members',
          ],
          env,
        ),
      );
      assert.equal(f.tenant, 'acme');
      assert.equal(f.explicitMembers, true);
      const listed = ok(await scimd(['feed', 'list', '--tenant', 'acme'], env));
      assert.match(listed, /^ID +NAME +TYPES +FORM +MEMBERS +FILTER +POSITION$/m);
      assert.match(listed, /^hand +h +User +full +0 explicit +- +\d+$/m);
      const m = parsed<Record<string, unknown>>(
        await scimd(['feed', 'add-member', 'hand', userId, '--tenant', 'acme', '--json'], env),
      );
      assert.equal(m.resourceId, userId);
      assert.equal(m.resourceType, 'User');
      assert.equal(m.externalId, 'cm');
      assert.equal(m.active, true);
      failed(
        await scimd(['feed', 'add-member', 'hand', userId, '--tenant', 'acme'], env),
        `${userId} is already a member of feed hand`,
      );
      const table = ok(await scimd(['feed', 'members', 'hand', '--tenant', 'acme'], env));
      assert.match(table, new RegExp(`^${userId} +User +cm +true +\\S+$`, 'm'));
      assert.deepEqual(
        parsed(await scimd(['feed', 'remove-member', 'hand', userId, '--tenant', 'acme', '--json'], env)),
        {
          tenant: 'acme',
          id: 'hand',
          resourceId: userId,
          removed: true,
        },
      );
      const members = parsed(await scimd(['feed', 'members', 'hand', '--tenant', 'acme', '--json'], env));
      assert.deepEqual(members, { totalResults: 0, startIndex: 1, members: [] });
      failed(
        await scimd(['feed', 'add', '--tenant', 'acme', '--name', 'x', '--type', 'Robot'], env),
        'Unknown resource type "Robot" (tenant acme does not serve it)',
      );
      failed(
        await scimd(['feed', 'add', '--tenant', 'acme', '--name', 'x'], env),
        "required option '--type <type>' not specified",
      );
      failed(
        await scimd(
          ['feed', 'add', '--tenant', 'acme', '--name', 'x', '--type', 'User', '--filter', 'nosuch eq 1'],
          env,
        ),
        'Unknown attribute "nosuch" for resource type User',
      );
      parsed(
        await scimd(
          [
            'feed',
            'add',
            '--tenant',
            'acme',
            '--json',
            '--id',
            'flt',
            '--name',
            'f',
            '--type',
            'User',
            '--filter',
            'title eq "Eng"',
            '--form',
            'notice',
            '--from',
            'beginning',
          ],
          env,
        ),
      );
      const shown = ok(await scimd(['feed', 'show', 'flt', '--tenant', 'acme'], env));
      assert.match(shown, /^filter +title eq "Eng"$/m);
      assert.match(shown, /^form +notice$/m);
      assert.match(shown, /^position +0$/m);
      assert.match(shown, /^uri +http:\/\/scimd\.test\/tenants\/acme\/scim\/v2\/Feeds\/flt$/m);
      const updated = parsed<Record<string, unknown>>(
        await scimd(
          [
            'feed',
            'update',
            'flt',
            '--tenant',
            'acme',
            '--no-filter',
            '--form',
            'full',
            '--name',
            'all',
            '--json',
          ],
          env,
        ),
      );
      assert.equal('filter' in updated, false);
      assert.equal(updated.form, 'full');
      assert.equal(updated.name, 'all');
      assert.deepEqual(parsed(await scimd(['feed', 'remove', 'flt', '--tenant', 'acme', '--json'], env)), {
        tenant: 'acme',
        id: 'flt',
        deleted: true,
      });
      failed(await scimd(['feed', 'show', 'flt', '--tenant', 'acme'], env), 'No feed flt in tenant acme');
      failed(
        await scimd(['feed', 'update', 'hand', '--tenant', 'acme'], env),
        'nothing to change: give --name, --type, --filter, --no-filter or --form',
      );
      // The acme admin's token does not administer the default tenant.
      const other = await scimd(['feed', 'list'], env);
      assert.notEqual(other.code, 0);
      assert.equal(other.stdout, '');
    },
  );
});
