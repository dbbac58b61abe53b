/**
 * `scimd receiver ...` in direct mode: the embedded store, and a scratch PostgreSQL database when
 * DATABASE_URL is set. Each command opens the store itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createServerRegistry } from '../../src/registry.ts';
import { openDatabase } from '../../src/store/open.ts';
import { cleanEnv, scratchDatabase } from '../cli/run.ts';
import { scenario } from './receivers-cli-scenario.ts';

describe('scimd receiver commands, direct', { concurrency: true }, () => {
  test('direct mode, embedded store', { timeout: 300_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'scimd-recv-'));
    try {
      await scenario(cleanEnv({ SCIMD_DATA_DIR: dataDir }), [], async (fn) => {
        const db = await openDatabase({ dataDir }, createServerRegistry());
        try {
          await fn(db);
        } finally {
          await db.close();
        }
      });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  if (process.env.DATABASE_URL) {
    test('direct mode, PostgreSQL', { timeout: 300_000 }, async () => {
      const scratch = (await scratchDatabase())!;
      try {
        await scenario(cleanEnv({ DATABASE_URL: scratch.url }), [], async (fn) => {
          const db = await openDatabase({ databaseUrl: scratch.url, dataDir: '' }, createServerRegistry());
          try {
            await fn(db);
          } finally {
            await db.close();
          }
        });
      } finally {
        await scratch.drop();
      }
    });
  }
});
