/**
 * `scimd connection add --kind sql` and a one-off `scimd push` into the table (behaviour 37 from
 * the command line), against a running server (--url). The database URL comes from a file and is
 * never printed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startTestApp, TOKEN } from '../helpers/app.ts';
import { cleanEnv, failed, ok, parsed, scimd } from '../cli/run.ts';
import { openTarget } from './adapter-helpers.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';

test(
  'behaviour 37: scimd connection add --kind sql, connection test, and scimd push into the table',
  { timeout: 300_000 },
  async () => {
    const kind = process.env.DATABASE_URL ? 'postgres' : 'pglite';
    const t = await startTestApp({ backgroundWorkers: false });
    const target = await openTarget(kind);
    const dir = mkdtempSync(join(tmpdir(), 'scimd-sql-cli-'));
    try {
      await t.app.server.listen({ port: 0, host: '127.0.0.1' });
      const env = cleanEnv({
        SCIMD_URL: `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`,
        SCIMD_TOKEN: TOKEN,
      });
      await target.query(
        'CREATE TABLE people (id text PRIMARY KEY, login text NOT NULL, given text, doc jsonb)',
      );
      // A password in the URL (ignored by the test server's trust authentication) must never be shown.
      const url =
        kind === 'postgres'
          ? target.url.replace('postgres://postgres@', 'postgres://postgres:db-secret-91@')
          : target.url;
      writeFileSync(join(dir, 'db'), `${url}\n`);
      const add = await scimd(
        [
          'connection',
          'add',
          '--id',
          'people',
          '--kind',
          'sql',
          '--database-url-file',
          join(dir, 'db'),
          '--table',
          'people',
          '--key-column',
          'id',
          '--key-attribute',
          'externalId',
          '--column',
          'login=userName',
          '--column',
          'given=name.givenName',
          '--document-column',
          'doc',
          '--json',
        ],
        env,
      );
      const view = parsed<Record<string, unknown>>(add);
      assert.equal(view.kind, 'sql');
      assert.deepEqual(view.sql, {
        databaseUrlSet: true,
        tables: [
          {
            resourceType: 'User',
            table: 'people',
            keyColumn: 'id',
            keyAttribute: 'externalId',
            columns: { login: 'userName', given: 'name.givenName' },
            documentColumn: 'doc',
          },
        ],
      });
      const shown = ok(await scimd(['connection', 'show', 'people'], env));
      assert.match(shown, /^kind +sql$/m);
      assert.match(shown, /^database url +set$/m);
      assert.match(
        shown,
        /^tables +User → people \(key id ← externalId; given ← name\.givenName, login ← userName, doc ← the resource\)$/m,
      );
      const tested = ok(await scimd(['connection', 'test', 'people'], env));
      assert.match(tested, /^access +\/Users readable \(0 resources\)$/m);
      failed(
        await scimd(['connection', 'add', '--id', 'x', '--kind', 'sql', '--table', 'people'], env),
        "required option '--database-url-file <path>' not specified (kind sql)",
      );

      for (const [userName, externalId] of [
        ['ann', 'p-1'],
        ['ben', 'p-2'],
      ]) {
        const res = await t.request('POST', '/scim/v2/Users', {
          body: { schemas: [USER], userName, externalId, name: { givenName: userName.toUpperCase() } },
        });
        assert.equal(res.status, 201);
      }
      ok(await scimd(['push', 'people', '--types', 'User'], env));
      assert.deepEqual(await target.query('SELECT id, login, given, doc FROM people ORDER BY id'), [
        {
          id: 'p-1',
          login: 'ann',
          given: 'ANN',
          doc: { schemas: [USER], externalId: 'p-1', userName: 'ann', name: { givenName: 'ANN' } },
        },
        {
          id: 'p-2',
          login: 'ben',
          given: 'BEN',
          doc: { schemas: [USER], externalId: 'p-2', userName: 'ben', name: { givenName: 'BEN' } },
        },
      ]);
      const list = ok(await scimd(['connection', 'list'], env));
      for (const out of [JSON.stringify(view), shown, tested, list])
        assert.ok(!out.includes('db-secret-91'), out);
    } finally {
      await t.close();
      await target.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
