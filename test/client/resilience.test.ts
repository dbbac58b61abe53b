/**
 * The client's transport behaviour against small fake servers: retries with backoff and
 * Retry-After on 429/503, network failures (idempotent vs POST), timeouts, OAuth 2.0 client
 * credentials (caching, expiry, one refresh on 401) and mutual TLS.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import {
  ScimAuthError,
  ScimClient,
  ScimClientError,
  ScimNetworkError,
  type ScimClientOptions,
} from '../../src/client/index.ts';
import { calls, fakeServer, type FakeHandler, type FakeServer } from './helpers.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const servers: FakeServer[] = [];
const clients: ScimClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

async function setup(handler: FakeHandler, opts: Partial<ScimClientOptions> = {}) {
  const server = await fakeServer(handler);
  servers.push(server);
  const delays: number[] = [];
  const client = new ScimClient({
    baseUrl: server.url,
    auth: { type: 'bearer', token: 't0k' },
    ...opts,
    retry: {
      sleep: async (ms) => void delays.push(ms),
      random: () => 0.5,
      ...opts.retry,
    },
  });
  clients.push(client);
  return { server, client, delays };
}

const user = { schemas: [USER], id: 'u1', userName: 'a' };

describe('retries', () => {
  test('503 then 200: retried with exponential backoff and jitter', async () => {
    let n = 0;
    const { server, client, delays } = await setup(
      (r) =>
        r.url === '/scim/Users/u1' ? (++n < 3 ? { status: 503 } : { status: 200, body: user }) : undefined,
      { retry: { baseDelayMs: 100 } },
    );
    assert.deepEqual(await client.resources('User').get('u1'), user);
    assert.equal(calls(server).length, 3);
    // attempt 1: step 100 → 50 + 0.5·50; attempt 2: step 200 → 100 + 0.5·100
    assert.deepEqual(delays, [75, 150]);
  });

  test('Retry-After in seconds and as an HTTP date is honoured', async () => {
    let n = 0;
    const now = Date.parse('2026-01-01T00:00:00Z');
    const { client, delays } = await setup(
      (r) => {
        if (r.url !== '/scim/Users/u1') return undefined;
        n++;
        if (n === 1) return { status: 429, headers: { 'retry-after': '2' } };
        if (n === 2) return { status: 503, headers: { 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' } };
        return { status: 200, body: user };
      },
      { now: () => now },
    );
    await client.resources('User').get('u1');
    assert.deepEqual(delays, [2000, 5000]);
  });

  test('attempts are bounded: the last 429 is surfaced with its headers', async () => {
    const { server, client, delays } = await setup(
      (r) =>
        r.url === '/scim/Users/u1'
          ? {
              status: 429,
              headers: { 'retry-after': '1' },
              body: {
                schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
                status: '429',
                detail: 'slow down',
              },
            }
          : undefined,
      { retry: { maxAttempts: 3 } },
    );
    await assert.rejects(client.resources('User').get('u1'), (e) => {
      assert.ok(e instanceof ScimClientError);
      assert.equal(e.status, 429);
      assert.equal(e.detail, 'slow down');
      assert.equal(e.headers['retry-after'], '1');
      return true;
    });
    assert.equal(calls(server).length, 3);
    assert.deepEqual(delays, [1000, 1000]);
  });

  test('a Retry-After longer than the client will wait is not waited for', async () => {
    const { server, client, delays } = await setup(
      (r) => (r.url === '/scim/Users/u1' ? { status: 503, headers: { 'retry-after': '3600' } } : undefined),
      { retry: { maxDelayMs: 10_000 } },
    );
    await assert.rejects(
      client.resources('User').get('u1'),
      (e) => e instanceof ScimClientError && e.status === 503,
    );
    assert.equal(calls(server).length, 1);
    assert.deepEqual(delays, []);
  });

  test('network failure after sending: GET is retried, POST is not (unless opted in)', async () => {
    let gets = 0;
    let posts = 0;
    const handler: FakeHandler = (r) => {
      if (r.method === 'GET' && r.url === '/scim/Users/u1')
        return ++gets === 1 ? { status: 0, drop: true } : { status: 200, body: user };
      if (r.method === 'POST' && r.url === '/scim/Users')
        return ++posts === 1 ? { status: 0, drop: true } : { status: 201, body: user };
      return undefined;
    };
    const { client, delays } = await setup(handler);
    await client.discover();
    assert.deepEqual(await client.resources('User').get('u1'), user);
    assert.equal(gets, 2);
    await assert.rejects(client.resources('User').create({ schemas: [USER], userName: 'a' }), (e) => {
      assert.ok(e instanceof ScimNetworkError);
      assert.equal(e.sent, true);
      assert.equal(e.method, 'POST');
      return true;
    });
    assert.equal(posts, 1);
    assert.equal(delays.length, 1);

    posts = 0;
    const optIn = await setup(handler, { retry: { retryNonIdempotent: true } });
    assert.deepEqual(await optIn.client.resources('User').create({ schemas: [USER], userName: 'a' }), user);
    assert.equal(posts, 2);
  });

  test('connection refused: nothing was sent, so even a POST is retried, then the error surfaces', async () => {
    const dead = await fakeServer(() => undefined);
    const url = dead.url;
    await dead.close();
    const delays: number[] = [];
    const client = new ScimClient({
      baseUrl: url,
      retry: { maxAttempts: 3, sleep: async (ms) => void delays.push(ms), random: () => 0 },
    });
    clients.push(client);
    await assert.rejects(client.request('POST', '/Users', { body: {}, idempotent: false }), (e) => {
      assert.ok(e instanceof ScimNetworkError);
      assert.equal(e.sent, false);
      assert.equal(e.code, 'ECONNREFUSED');
      return true;
    });
    assert.deepEqual(delays, [100, 200]);
  });

  test('timeout per request: the attempt is abandoned and (GET) retried', async () => {
    let n = 0;
    const { client } = await setup(
      (r) =>
        r.url === '/scim/Users/u1'
          ? ++n === 1
            ? { status: 200, body: user, delayMs: 400 }
            : { status: 200, body: user }
          : undefined,
      { timeoutMs: 100 },
    );
    await client.discover();
    const started = Date.now();
    assert.deepEqual(await client.resources('User').get('u1'), user);
    assert.equal(n, 2);
    assert.ok(Date.now() - started < 400, 'the slow answer was not awaited');

    const slow = await setup(
      (r) => (r.url === '/scim/Users/u1' ? { status: 200, body: user, delayMs: 400 } : undefined),
      { retry: { maxAttempts: 1 } },
    );
    await slow.client.discover();
    await assert.rejects(slow.client.resources('User').get('u1', { timeoutMs: 50 }), (e) => {
      assert.ok(e instanceof ScimNetworkError);
      assert.equal(e.timedOut, true);
      assert.equal(e.code, 'ETIMEDOUT');
      return true;
    });
  });
});

describe('OAuth 2.0 client credentials', () => {
  test('token fetched once, cached, refreshed on expiry and once on 401', async () => {
    let tokens = 0;
    let clock = 1_000_000;
    const revoked = new Set<string>();
    const { server } = await setup(
      (r) => {
        if (r.url === '/token') {
          tokens++;
          return {
            status: 200,
            body: { access_token: `tok-${tokens}`, token_type: 'Bearer', expires_in: 3600 },
          };
        }
        const auth = r.headers.authorization ?? '';
        if (!/^Bearer tok-\d+$/.test(auth) || revoked.has(auth))
          return { status: 401, body: { detail: 'bad token' } };
        return r.url === '/scim/Users/u1' ? { status: 200, body: user } : undefined;
      },
      { now: () => clock },
    );
    // setup() gave a bearer token; this client uses OAuth against the same server.
    const oauth = new ScimClient({
      baseUrl: server.url,
      auth: {
        type: 'oauth2',
        tokenUrl: server.url.replace('/scim', '/token'),
        clientId: 'my client',
        clientSecret: 's3cr:et',
        scope: 'scim.read scim.write',
      },
      now: () => clock,
    });
    clients.push(oauth);
    await oauth.resources('User').get('u1');
    await oauth.resources('User').get('u1');
    const tokenReqs = server.requests.filter((r) => r.url === '/token');
    assert.equal(tokenReqs.length, 1);
    assert.equal(tokenReqs[0].method, 'POST');
    assert.equal(tokenReqs[0].headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(
      tokenReqs[0].headers.authorization,
      `Basic ${Buffer.from('my+client:s3cr%3Aet').toString('base64')}`,
    );
    assert.equal(tokenReqs[0].body, 'grant_type=client_credentials&scope=scim.read+scim.write');
    assert.equal(server.requests.at(-1)!.headers.authorization, 'Bearer tok-1');

    // 30 s before expiry the token is renewed.
    clock += 3571_000;
    await oauth.resources('User').get('u1');
    assert.equal(tokens, 2);
    assert.equal(server.requests.at(-1)!.headers.authorization, 'Bearer tok-2');

    // Revoked early: one 401, a new token, the request repeated.
    revoked.add('Bearer tok-2');
    await oauth.resources('User').get('u1');
    assert.equal(tokens, 3);
    assert.deepEqual(
      server.requests.slice(-3).map((r) => `${r.method} ${r.url} ${r.headers.authorization ?? ''}`),
      [
        'GET /scim/Users/u1 Bearer tok-2',
        `POST /token Basic ${Buffer.from('my+client:s3cr%3Aet').toString('base64')}`,
        'GET /scim/Users/u1 Bearer tok-3',
      ],
    );

    // Refused again after the refresh: the 401 is surfaced, no loop.
    revoked.add('Bearer tok-3');
    revoked.add('Bearer tok-4');
    await assert.rejects(
      oauth.resources('User').get('u1'),
      (e) => e instanceof ScimClientError && e.status === 401,
    );
    assert.equal(tokens, 4);
  });

  test('client_secret_post, extra parameters, and token endpoint errors', async () => {
    const { server } = await setup((r) =>
      r.url === '/token'
        ? { status: 400, body: { error: 'invalid_client', error_description: 'unknown client' } }
        : undefined,
    );
    const oauth = new ScimClient({
      baseUrl: server.url,
      auth: {
        type: 'oauth2',
        tokenUrl: server.url.replace('/scim', '/token'),
        clientId: 'c',
        clientSecret: 's',
        clientAuth: 'body',
        params: { audience: 'https://scim.example' },
      },
    });
    clients.push(oauth);
    await assert.rejects(oauth.discover(), (e) => {
      assert.ok(e instanceof ScimAuthError);
      assert.equal(e.status, 400);
      assert.equal(e.error, 'invalid_client');
      assert.match(e.message, /unknown client/);
      return true;
    });
    const req = server.requests.find((r) => r.url === '/token')!;
    assert.equal(req.headers.authorization, undefined);
    assert.equal(
      req.body,
      'grant_type=client_credentials&audience=https%3A%2F%2Fscim.example&client_id=c&client_secret=s',
    );
  });
});

describe('OAuth token request: retries, timeouts, errors', () => {
  async function oauthSetup(handler: FakeHandler, opts: Partial<ScimClientOptions> = {}) {
    const server = await fakeServer((r) =>
      r.url === '/token' ? handler(r) : r.url === '/scim/Users/u1' ? { status: 200, body: user } : undefined,
    );
    servers.push(server);
    const delays: number[] = [];
    const client = new ScimClient({
      baseUrl: server.url,
      auth: {
        type: 'oauth2',
        tokenUrl: server.url.replace('/scim', '/token'),
        clientId: 'c',
        clientSecret: 's',
      },
      ...opts,
      retry: { sleep: async (ms) => void delays.push(ms), random: () => 0.5, ...opts.retry },
    });
    clients.push(client);
    return { server, client, delays };
  }
  const token = { status: 200, body: { access_token: 'tok', token_type: 'Bearer', expires_in: 3600 } };

  test('503 with Retry-After, a dropped connection, then a token: the SCIM request goes out once', async () => {
    let n = 0;
    const { server, client, delays } = await oauthSetup(() => {
      n++;
      if (n === 1) return { status: 503, headers: { 'retry-after': '3' } };
      if (n === 2) return { status: 0, drop: true };
      if (n === 3) return { status: 429 };
      return token;
    });
    const res = await client.request('GET', '/Users/u1', { idempotent: true });
    assert.equal(res.status, 200);
    // Retry-After 3 s; then backoff for attempts 2 and 3 (step 400 → 300, step 800 → 600).
    assert.deepEqual(delays, [3000, 300, 600]);
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.url} ${r.headers.authorization?.split(' ')[0] ?? '-'}`),
      [
        'POST /token Basic',
        'POST /token Basic',
        'POST /token Basic',
        'POST /token Basic',
        'GET /scim/Users/u1 Bearer',
      ],
    );
    assert.equal(server.requests.at(-1)!.headers.authorization, 'Bearer tok');
  });

  test('4xx from the token endpoint: ScimAuthError at once with error and error_description', async () => {
    const { server, client, delays } = await oauthSetup(() => ({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
    }));
    await assert.rejects(client.request('GET', '/Users/u1', { idempotent: true }), (e) => {
      assert.ok(e instanceof ScimAuthError);
      assert.equal(e.status, 401);
      assert.equal(e.error, 'invalid_client');
      assert.equal(
        e.message,
        `OAuth token endpoint ${server.url.replace('/scim', '/token')} answered 401 invalid_client: client authentication failed`,
      );
      return true;
    });
    assert.deepEqual(
      server.requests.map((r) => r.url),
      ['/token'],
    );
    assert.deepEqual(delays, []);

    const plain = await oauthSetup(() => ({
      status: 403,
      body: 'forbidden by policy',
      headers: { 'content-type': 'text/plain' },
    }));
    await assert.rejects(plain.client.request('GET', '/Users/u1', { idempotent: true }), (e) => {
      assert.ok(e instanceof ScimAuthError);
      assert.equal(e.status, 403);
      assert.equal(e.error, undefined);
      assert.match(e.message, /answered 403: forbidden by policy$/);
      return true;
    });
    assert.equal(plain.server.requests.length, 1);
  });

  test('retries are bounded; a Retry-After longer than maxDelayMs is not waited for', async () => {
    const busy = await oauthSetup(() => ({ status: 503, body: { error: 'temporarily_unavailable' } }), {
      retry: { maxAttempts: 3 },
    });
    await assert.rejects(
      busy.client.request('GET', '/Users/u1', { idempotent: true }),
      (e) => e instanceof ScimAuthError && e.status === 503 && e.error === 'temporarily_unavailable',
    );
    assert.equal(busy.server.requests.length, 3);
    assert.deepEqual(busy.delays, [150, 300]);

    const later = await oauthSetup(() => ({ status: 429, headers: { 'retry-after': '600' } }), {
      retry: { maxDelayMs: 5000 },
    });
    await assert.rejects(
      later.client.request('GET', '/Users/u1', { idempotent: true }),
      (e) => e instanceof ScimAuthError && e.status === 429,
    );
    assert.equal(later.server.requests.length, 1);
    assert.deepEqual(later.delays, []);
  });

  test("a hanging token endpoint: each attempt ends at the call's timeout", async () => {
    const { server, client } = await oauthSetup(() => ({ ...token, delayMs: 2000 }), {
      retry: { maxAttempts: 2 },
    });
    const started = Date.now();
    await assert.rejects(client.request('GET', '/Users/u1', { idempotent: true, timeoutMs: 100 }), (e) => {
      assert.ok(e instanceof ScimNetworkError);
      assert.equal(e.timedOut, true);
      assert.equal(e.method, 'POST');
      return true;
    });
    assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
    assert.deepEqual(
      server.requests.map((r) => r.url),
      ['/token', '/token'],
    );
  });
});

describe('POST after it may have reached the server', () => {
  test('a timed-out create is not retried; a timed-out GET is, each attempt within the timeout', async () => {
    const { server, client, delays } = await setup((r) =>
      r.method === 'POST' && r.url === '/scim/Users'
        ? { status: 201, body: user, delayMs: 2000 }
        : r.url === '/scim/Users/u1'
          ? { status: 200, body: user, delayMs: 2000 }
          : undefined,
    );
    await client.discover();
    const started = Date.now();
    await assert.rejects(
      client.resources('User').create({ schemas: [USER], userName: 'a' }, { timeoutMs: 80 }),
      (e) => e instanceof ScimNetworkError && e.timedOut && e.sent,
    );
    assert.deepEqual(
      calls(server).map((r) => `${r.method} ${r.url}`),
      ['POST /scim/Users'],
    );
    assert.deepEqual(delays, []);
    await assert.rejects(
      client.resources('User').get('u1', { timeoutMs: 80 }),
      (e) => e instanceof ScimNetworkError && e.timedOut,
    );
    assert.deepEqual(
      calls(server).map((r) => `${r.method} ${r.url}`),
      [
        'POST /scim/Users',
        'GET /scim/Users/u1',
        'GET /scim/Users/u1',
        'GET /scim/Users/u1',
        'GET /scim/Users/u1',
      ],
    );
    assert.ok(Date.now() - started < 1500, `${Date.now() - started} ms`);
  });
});

describe('mutual TLS', () => {
  test('client certificate from the tls options; without one the handshake fails', async () => {
    const fx = (f: string) => readFileSync(new URL(`../fixtures/tls/${f}`, import.meta.url));
    const server = https.createServer(
      {
        cert: fx('server.crt'),
        key: fx('server.key'),
        ca: fx('ca.crt'),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
        res.writeHead(200, { 'content-type': 'application/scim+json' });
        res.end(JSON.stringify({ ...user, displayName: peer.subject.CN }));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const base = `https://127.0.0.1:${port}/scim`;
      const transport = { baseUrl: base, retry: { maxAttempts: 1 } };
      const mtls = new ScimClient({
        ...transport,
        tls: { cert: fx('client-a.crt'), key: fx('client-a.key'), ca: fx('ca.crt') },
      });
      clients.push(mtls);
      const res = await mtls.request('GET', '/Users/u1', { idempotent: true });
      assert.equal(res.status, 200);
      assert.equal((res.body as { displayName: string }).displayName, 'client-a');

      const noCert = new ScimClient({ ...transport, tls: { ca: fx('ca.crt') } });
      clients.push(noCert);
      await assert.rejects(
        noCert.request('GET', '/Users/u1', { idempotent: true }),
        (e) => e instanceof ScimNetworkError,
      );

      // The server's certificate is checked against the given CA (the system store does not know it).
      const noCa = new ScimClient({
        ...transport,
        tls: { cert: fx('client-a.crt'), key: fx('client-a.key') },
      });
      clients.push(noCa);
      await assert.rejects(noCa.request('GET', '/Users/u1', { idempotent: true }), (e) => {
        assert.ok(e instanceof ScimNetworkError);
        assert.equal(e.code, 'SELF_SIGNED_CERT_IN_CHAIN');
        return true;
      });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
