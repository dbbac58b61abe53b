/**
 * `scimd receiver ...` in remote mode (--url, --token) against a running app's admin API.
 */
import { describe, test } from 'node:test';
import { TOKEN, startTestApp } from '../helpers/app.ts';
import { cleanEnv, failed, scimd } from '../cli/run.ts';
import { scenario } from './receivers-cli-scenario.ts';

describe('scimd receiver commands, remote', () => {
  test('remote mode (--url) against a running server', { timeout: 300_000 }, async () => {
    const t = await startTestApp({ backgroundWorkers: false });
    try {
      const address = await t.app.server.listen({ port: 0, host: '127.0.0.1' });
      await scenario(cleanEnv(), ['--url', address, '--token', TOKEN], (fn) => fn(t.app.db));
      // The admin API's refusal reaches the user as one line.
      const wrongToken = await scimd(['receiver', 'list', '--url', address, '--token', 'nope'], cleanEnv());
      failed(wrongToken, 'Invalid or expired bearer token');
    } finally {
      await t.close();
    }
  });
});
