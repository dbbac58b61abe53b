/**
 * Authentication overhead: the same GET /Users/{id} load with each kind of credential, next to the
 * cheapest one scimd has (the bootstrap SCIMD_ADMIN_TOKEN: a digest compared in memory, no store
 * access) and to a fastify hello-world, on plain HTTP and on HTTPS. The server cannot run without
 * authentication, and the benchmark does not change it to: the bootstrap token is the no-auth floor.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { AdminService } from '../../src/admin/service.ts';
import { createServerRegistry } from '../../src/registry.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { openDatabase } from '../../src/store/open.ts';
import { TenantDirectory } from '../../src/tenancy/directory.ts';
import type { TlsFiles } from '../server-process.ts';
import { startServer, type ServerChild } from './children.ts';
import { loadUsers } from './data.ts';
import { Client } from './http.ts';
import { loadTest, type LoadResult } from './load-test.ts';
import type { StoreKind, StoreTarget } from './suite.ts';

export interface AuthSettings {
  connections: number;
  warmupSeconds: number;
  seconds: number;
  /** Unmeasured load on each freshly started scimd before its first measured run. */
  serverWarmupSeconds: number;
  /** Measured runs of each credential, in alternating order. */
  rounds: number;
  /** Users loaded into each of the two tenants (the load cycles through the first 1,000). */
  authUsers: number;
}

export type AuthRunId =
  'hello' | 'bootstrap' | 'token' | 'tokenThrottled' | 'jwt' | 'helloTls' | 'bootstrapTls' | 'mtls';

/** Means over the rounds (p50/p99 too: the mean of each round's percentile). */
export interface AuthRun extends LoadResult {
  id: AuthRunId;
  transport: 'http' | 'https';
  /** req/s of each round, to show the spread. */
  roundsRps: number[];
}

export interface AuthResult {
  kind: StoreKind;
  tenant: string;
  users: number;
  runs: AuthRun[];
  /** 1-minute load average when the measurements started and ended. */
  loadAverage: [number, number];
  /** The rate limit of the throttled client. */
  rateLimit: { max: number; windowSeconds: number };
}

const TLS_DIR = fileURLToPath(new URL('../../test/fixtures/tls/', import.meta.url));
export const TLS_FIXTURES: TlsFiles = {
  cert: path.join(TLS_DIR, 'server.crt'),
  key: path.join(TLS_DIR, 'server.key'),
  clientCa: path.join(TLS_DIR, 'ca.crt'),
};
const CLIENT_CERT = path.join(TLS_DIR, 'client-a.crt');
const CLIENT_KEY = path.join(TLS_DIR, 'client-a.key');

const TENANT = 'bench-auth';
const ISSUER = 'https://issuer.bench.invalid';
const AUDIENCE = 'scimd-bench';
const RATE_LIMIT = { max: 10_000_000, windowSeconds: 60 };

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

export async function runAuth(
  target: StoreTarget,
  s: AuthSettings,
  log: (msg: string) => void,
): Promise<AuthResult> {
  const registry = createServerRegistry();
  const storeOpts = { databaseUrl: target.databaseUrl, dataDir: target.dataDir };
  const tag = `[${target.kind} auth]`;

  // An ES256 key of the tenant's (imaginary) authorization server, configured inline as a JWKS.
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'ES256', use: 'sig' };

  // ---- data: the tenant and the same Users in it and in the default tenant ----
  // In-process, before any server starts (the embedded store takes one process at a time).
  log(`${tag} loading ${s.authUsers} users into each of "default" and "${TENANT}"`);
  const db = await openDatabase(storeOpts, registry);
  let defaultIds: string[];
  let tenantIds: string[];
  try {
    await new AdminService(db, registry, new TenantDirectory(db)).createTenant({
      id: TENANT,
      settings: {
        jwt: { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [jwk] }, algorithms: ['ES256'] },
      },
    });
    defaultIds = await loadUsers(db, registry, 'default', s.authUsers);
    tenantIds = await loadUsers(db, registry, TENANT, s.authUsers);
    await db.query('VACUUM ANALYZE');
  } finally {
    await db.close();
  }
  const defaultPaths = defaultIds.slice(0, 1000).map((id) => `/scim/v2/Users/${id}`);
  const tenantPaths = tenantIds.slice(0, 1000).map((id) => `/tenants/${TENANT}/scim/v2/Users/${id}`);
  const measure = { connections: s.connections, warmupSeconds: s.warmupSeconds, seconds: s.seconds };
  const runs: AuthRun[] = [];
  const loadBefore = os.loadavg()[0];

  const hello = async (id: 'hello' | 'helloTls') => {
    const tls = id === 'helloTls' ? { cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key } : undefined;
    log(`${tag} ${id}`);
    const h = await startServer({ kind: 'hello', tls });
    try {
      const r = await loadTest({
        label: tls ? 'fastify hello-world, HTTPS' : 'fastify hello-world',
        port: h.port,
        pid: h.pid,
        paths: ['/'],
        ...(tls ? { tls: { ca: readFileSync(path.join(TLS_DIR, 'ca.crt')) } } : {}),
        ...measure,
      });
      runs.push({ ...r, id, transport: tls ? 'https' : 'http', roundsRps: [r.rps] });
    } finally {
      await h.stop();
    }
  };
  // A freshly started server is cold (JIT, pool connections): the first credential measured would pay for it.
  const warmUp = async (
    server: ServerChild,
    paths: string[],
    credential: { token?: string; tls?: { ca: Buffer } },
  ) => {
    log(`${tag} server warm-up, ${s.serverWarmupSeconds} s`);
    await loadTest({
      label: 'warm-up',
      port: server.port,
      pid: server.pid,
      paths,
      token: credential.token,
      tls: credential.tls,
      connections: s.connections,
      warmupSeconds: 0,
      seconds: s.serverWarmupSeconds,
    });
  };
  interface Credential {
    id: AuthRunId;
    label: string;
    paths: string[];
    token?: string;
    tls?: { cert?: Buffer; key?: Buffer; ca: Buffer };
  }
  /**
   * The credentials of one server, in rounds: forward, then backward, and so on (A B C D D C B A), so
   * that drift over the run (a shared machine, the store warming up) weighs on each alike.
   */
  const measured = async (server: ServerChild, credentials: Credential[]) => {
    // A refused credential must not pass for a fast one: one checked request first, and no non-2xx under load.
    for (const c of credentials) {
      const probe = new Client(server.port, c.token, c.tls);
      try {
        const res = await probe.expect('GET', c.paths[0], 200);
        check(
          (JSON.parse(res.body) as JsonObject).id === c.paths[0].split('/').pop(),
          `${c.label}: the user`,
        );
      } finally {
        probe.close();
      }
    }
    const by = new Map<AuthRunId, LoadResult[]>(credentials.map((c) => [c.id, []]));
    for (let round = 0; round < s.rounds; round++) {
      for (const c of round % 2 === 0 ? credentials : [...credentials].reverse()) {
        log(`${tag} ${c.label} (round ${round + 1}/${s.rounds})`);
        const r = await loadTest({
          label: c.label,
          port: server.port,
          pid: server.pid,
          paths: c.paths,
          token: c.token,
          tls: c.tls,
          ...measure,
        });
        check(
          r.non2xx === 0 && r.errors === 0,
          `${c.label}: ${r.non2xx} non-2xx answers, ${r.errors} errors`,
        );
        by.get(c.id)!.push(r);
      }
    }
    for (const c of credentials) {
      const rs = by.get(c.id)!;
      const mean = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
      const sum = (f: (r: LoadResult) => number) => rs.reduce((a, r) => a + f(r), 0);
      runs.push({
        id: c.id,
        transport: c.tls ? 'https' : 'http',
        label: c.label,
        rps: mean((r) => r.rps),
        p50: mean((r) => r.p50),
        p99: mean((r) => r.p99),
        total: sum((r) => r.total),
        non2xx: sum((r) => r.non2xx),
        errors: sum((r) => r.errors),
        timeouts: sum((r) => r.timeouts),
        cpu: {
          server: mean((r) => r.cpu.server),
          postgres: mean((r) => r.cpu.postgres),
          loadGenerator: mean((r) => r.cpu.loadGenerator),
        },
        roundsRps: rs.map((r) => r.rps),
      });
    }
  };

  // ---- plain HTTP ----
  await hello('hello');
  const adminToken = randomBytes(24).toString('base64url');
  let server = await startServer({ kind: 'scimd', adminToken, ...storeOpts });
  const caPem = readFileSync(path.join(TLS_DIR, 'ca.crt'));
  const fingerprint = new X509Certificate(readFileSync(CLIENT_CERT)).fingerprint256;
  let tokens: { plain: string; throttled: string };
  try {
    // Clients and tokens through the admin API, as an operator would issue them.
    const admin = new Client(server.port, adminToken);
    const client = async (body: JsonObject) =>
      admin.expect('POST', `/admin/v1/tenants/${TENANT}/clients`, 201, body);
    const token = async (id: string) =>
      (
        JSON.parse(
          (await admin.expect('POST', `/admin/v1/tenants/${TENANT}/clients/${id}/tokens`, 201, {})).body,
        ) as { token: string }
      ).token;
    try {
      await client({ id: 'bench-token', name: 'opaque token', scopes: ['User:read'] });
      await client({
        id: 'bench-throttled',
        name: 'opaque token, rate limited',
        scopes: ['User:read'],
        rateLimit: RATE_LIMIT,
      });
      await client({ id: 'bench-jwt', name: 'JWT', scopes: ['User:read'], jwtSubject: 'bench-jwt' });
      await client({ id: 'bench-mtls', name: 'mTLS', scopes: ['User:read'], certFingerprint: fingerprint });
      tokens = { plain: await token('bench-token'), throttled: await token('bench-throttled') };
    } finally {
      admin.close();
    }
    const jwt = await new SignJWT({ client_id: 'bench-jwt', scope: 'User:read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench-1', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('10y')
      .sign(privateKey);

    await warmUp(server, defaultPaths, { token: adminToken });
    await measured(server, [
      {
        id: 'bootstrap',
        label: 'bootstrap token (SCIMD_ADMIN_TOKEN)',
        paths: defaultPaths,
        token: adminToken,
      },
      { id: 'token', label: 'opaque token (admin API)', paths: tenantPaths, token: tokens.plain },
      {
        id: 'tokenThrottled',
        label: `opaque token, rate limit ${RATE_LIMIT.max.toLocaleString('en-US')}/${RATE_LIMIT.windowSeconds} s`,
        paths: tenantPaths,
        token: tokens.throttled,
      },
      { id: 'jwt', label: 'JWT (ES256, inline JWKS)', paths: tenantPaths, token: jwt },
    ]);
  } finally {
    await server.stop();
  }

  // ---- HTTPS, client certificates requested ----
  await hello('helloTls');
  server = await startServer({ kind: 'scimd', adminToken, ...storeOpts, tls: TLS_FIXTURES });
  try {
    await warmUp(server, defaultPaths, { token: adminToken, tls: { ca: caPem } });
    await measured(server, [
      {
        id: 'bootstrapTls',
        label: 'bootstrap token over HTTPS',
        paths: defaultPaths,
        token: adminToken,
        tls: { ca: caPem },
      },
      {
        id: 'mtls',
        label: 'mTLS client certificate',
        paths: tenantPaths,
        tls: { cert: readFileSync(CLIENT_CERT), key: readFileSync(CLIENT_KEY), ca: caPem },
      },
    ]);
  } finally {
    await server.stop();
  }

  return {
    kind: target.kind,
    tenant: TENANT,
    users: s.authUsers,
    runs,
    loadAverage: [loadBefore, os.loadavg()[0]],
    rateLimit: RATE_LIMIT,
  };
}
