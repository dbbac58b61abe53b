/**
 * `scimd tenant ...` in direct mode: each command opens the store itself. The embedded store always; a scratch
 * PostgreSQL database too when DATABASE_URL is set (the two run side by side to save time).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cleanEnv, scratchDatabase } from './run.ts';
import { tenantScenario } from './scenarios.ts';

describe('scimd tenant create/list/show/delete, direct mode', { concurrency: true }, () => {
  test('embedded store in SCIMD_DATA_DIR (DATABASE_URL unset)', { timeout: 300_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scimd-cli-'));
    try {
      await tenantScenario(cleanEnv({ SCIMD_DATA_DIR: dataDir }));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  if (process.env.DATABASE_URL) {
    test('PostgreSQL: a scratch database on the DATABASE_URL server', { timeout: 300_000 }, async () => {
      const db = (await scratchDatabase())!;
      try {
        await tenantScenario(cleanEnv({ DATABASE_URL: db.url }));
      } finally {
        await db.drop();
      }
    });
  }
});
