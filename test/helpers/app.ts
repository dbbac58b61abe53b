/**
 * Test harness: a whole scimd app (HTTP layer + store) driven through fastify.inject, no sockets.
 * Storage is an in-memory PGlite, or, when DATABASE_URL is set, a scratch database created on that
 * PostgreSQL server for this test file and dropped at close().
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createApp, type App } from '../../src/app.ts';

export const TOKEN = 'test-admin-token';

export interface TestResponse {
  status: number;
  /** Response headers, lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string | undefined>;
  /** Parsed JSON body, or undefined when the body is empty. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Raw body text (sent as is, e.g. malformed JSON). */
  raw?: string;
  headers?: Record<string, string>;
  /** false = send no Authorization header; a string = that bearer token. Default: the admin token. */
  token?: string | false;
}

export interface TestApp {
  app: App;
  request(method: string, url: string, opts?: RequestOptions): Promise<TestResponse>;
  close(): Promise<void>;
}

/**
 * A scratch database on the DATABASE_URL server (undefined when it is unset), dropped by drop().
 * Shared by every helper that needs a store of its own on PostgreSQL.
 */
export async function scratchDatabase(
  prefix = 'scimd_test',
): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const base = process.env.DATABASE_URL;
  if (!base) return undefined;
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function startTestApp(
  overrides: Partial<Parameters<typeof createApp>[0]> = {},
): Promise<TestApp> {
  const scratch = await scratchDatabase();
  const app = await createApp({
    databaseUrl: scratch?.url,
    memory: !scratch,
    adminToken: TOKEN,
    baseUrl: 'http://scimd.test',
    logLevel: 'silent',
    ...overrides,
  });
  return {
    app,
    async request(method, url, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token !== false) headers.authorization ??= `Bearer ${opts.token ?? TOKEN}`;
      let payload: string | undefined;
      if (opts.raw !== undefined) payload = opts.raw;
      else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
      if (payload !== undefined) headers['content-type'] ??= 'application/scim+json';
      const res = await app.server.inject({ method: method as 'GET', url, headers, payload });
      let body: unknown;
      if (res.body.length > 0) {
        try {
          body = JSON.parse(res.body);
        } catch {
          body = undefined;
        }
      }
      const responseHeaders: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(res.headers)) {
        responseHeaders[k] = v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v);
      }
      return { status: res.statusCode, headers: responseHeaders, body, text: res.body };
    },
    async close() {
      await app.close();
      await scratch?.drop();
    },
  };
}
