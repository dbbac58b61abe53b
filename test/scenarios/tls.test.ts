/**
 * TLS only (use-case behaviour 47), with real scimd processes on loopback:
 *   - a node started with SCIMD_TLS_CERT/SCIMD_TLS_KEY serves HTTPS only: a plain-HTTP request to
 *     its port is answered with nothing (the TLS layer closes the connection) and writes nothing;
 *   - with SCIMD_HTTP_REDIRECT_PORT it also listens for plain HTTP on another port and answers
 *     every request 308 to the https URL, with no data;
 *   - as a sync client, SCIMD_SYNC_REQUIRE_TLS refuses plain-http connection URLs (loopback
 *     excepted), and a connection stored before the switch is never called.
 * Fixtures: test/fixtures/tls (server certificate for 127.0.0.1, test-only).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { redirectTarget } from '../../src/http/redirect.ts';
import { freePort, nodeStore, startScimd, type NodeStore, type ScimdProcess } from '../helpers/process.ts';
import { http, ok, USER, type Json } from './lib.ts';

const TLS = join(import.meta.dirname, '..', 'fixtures', 'tls');
const CA = readFileSync(join(TLS, 'ca.crt'));
const TOKEN = 'tls-operator-token';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Json;
  text: string;
}

/** One HTTPS request trusting the fixture CA. */
function httpsCall(url: string, method = 'GET', body?: unknown): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method,
        ca: CA,
        agent: false,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(payload ? { 'content-type': 'application/scim+json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? (JSON.parse(text) as Json) : {},
            text,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Sends raw bytes on a fresh TCP connection and returns everything received until it closes. */
function raw(port: number, bytes: string): Promise<{ received: string; error?: string }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(bytes));
    let received = '';
    let error: string | undefined;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (received += d));
    sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    sock.setTimeout(10_000, () => sock.destroy(new Error('no close within 10 s')));
    sock.on('close', () => resolve(error ? { received, error } : { received }));
  });
}

const user = (userName: string) => ({
  schemas: [USER],
  userName,
  name: { givenName: 'Secret', familyName: 'Person' },
});

let store: NodeStore;
let node: ScimdProcess;
let port: number;
let redirectPort: number;
let https: string;

before(async () => {
  store = await nodeStore();
  [port, redirectPort] = [await freePort(), await freePort()];
  https = `https://127.0.0.1:${port}`;
  node = await startScimd(store, port, {
    SCIMD_ADMIN_TOKEN: TOKEN,
    SCIMD_TLS_CERT: join(TLS, 'server.crt'),
    SCIMD_TLS_KEY: join(TLS, 'server.key'),
    SCIMD_BASE_URL: https,
    SCIMD_HTTP_REDIRECT_PORT: String(redirectPort),
  });
});
after(async () => {
  await node?.stop();
  await store?.drop();
});

describe('use case 47: all endpoints over TLS only', () => {
  test('the TLS port answers HTTPS; a plain-HTTP request to it gets no byte back, the connection is closed, and nothing is written', async () => {
    const created = await httpsCall(`${https}/scim/v2/Users`, 'POST', user('over-tls'));
    assert.equal(created.status, 201, created.text);
    assert.equal(created.headers.location, `${https}/scim/v2/Users/${created.body.id}`);

    // A plain-HTTP GET with the admin token: the TLS layer reads it as a bad handshake and closes.
    const get = await raw(
      port,
      `GET /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`,
    );
    assert.equal(get.received, '');
    // A plain-HTTP POST that would create a user: same, and the user does not exist afterwards.
    const body = JSON.stringify(user('over-plain-http'));
    const post = await raw(
      port,
      `POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Content-Type: application/scim+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    assert.equal(post.received, '');
    // What an HTTP client sees: the request fails, there is no response.
    await assert.rejects(
      fetch(`http://127.0.0.1:${port}/scim/v2/Users`, { headers: { authorization: `Bearer ${TOKEN}` } }),
      (err: Error & { cause?: { code?: string } }) => {
        assert.equal(err.message, 'fetch failed');
        assert.equal(err.cause?.code, 'UND_ERR_SOCKET');
        return true;
      },
    );

    const list = await httpsCall(`${https}/scim/v2/Users`);
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(
      (list.body.Resources as Json[]).map((u) => u.userName),
      ['over-tls'],
    );
  });

  test('the redirect port answers every plain-HTTP request 308 to the same path over https, with no data, and writes nothing', async () => {
    const plain = `http://127.0.0.1:${redirectPort}`;
    const path = `/scim/v2/Users?filter=${encodeURIComponent('userName eq "over-tls"')}`;
    const get = await fetch(`${plain}${path}`, {
      redirect: 'manual',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(get.status, 308);
    assert.equal(get.headers.get('location'), `${https}${path}`);
    assert.equal(get.headers.get('content-type'), null);
    assert.equal(get.headers.get('cache-control'), 'no-store');
    assert.equal(await get.text(), '');

    const post = await fetch(`${plain}/scim/v2/Users`, {
      method: 'POST',
      redirect: 'manual',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify(user('redirected')),
    });
    assert.equal(post.status, 308);
    assert.equal(post.headers.get('location'), `${https}/scim/v2/Users`);
    assert.equal(await post.text(), '');
    const admin = await fetch(`${plain}/admin/v1/tenants`, {
      redirect: 'manual',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(admin.status, 308);
    assert.equal(admin.headers.get('location'), `${https}/admin/v1/tenants`);
    assert.equal(await admin.text(), '');

    // Following the redirect by hand: the https URL answers.
    const followed = await httpsCall(get.headers.get('location')!);
    assert.equal(followed.status, 200);
    assert.equal(followed.body.totalResults, 1);
    const all = await httpsCall(`${https}/scim/v2/Users`);
    assert.deepEqual(
      (all.body.Resources as Json[]).map((u) => u.userName),
      ['over-tls'],
    );

    // No Host header (HTTP/1.0) and no https base URL to fall back on: 400, no redirect.
    assert.equal(redirectTarget({ url: '/scim/v2/Users', headers: {} }, { httpsPort: 8443 }), undefined);
    // Without SCIMD_BASE_URL the Host header's name is used with the HTTPS port.
    assert.equal(
      redirectTarget(
        { url: '/scim/v2/Users?x=1', headers: { host: 'scim.example:8080' } },
        { httpsPort: 8443 },
      ),
      'https://scim.example:8443/scim/v2/Users?x=1',
    );
    assert.equal(
      redirectTarget({ url: '/a', headers: { host: 'scim.example' } }, { httpsPort: 443 }),
      'https://scim.example/a',
    );
    assert.equal(
      redirectTarget({ url: '/a', headers: { host: 'bad host/x' } }, { httpsPort: 443 }),
      undefined,
    );
    // An absolute-form request line keeps only its path: the redirect never leaves this server.
    assert.equal(
      redirectTarget(
        { url: 'http://evil.example/steal?q', headers: { host: 'scim.example' } },
        {
          httpsPort: 443,
          baseUrl: 'https://scim.example',
        },
      ),
      'https://scim.example/steal?q',
    );
  });

  test('a redirect port without TLS is a configuration error: the node does not start', async () => {
    const s = await nodeStore();
    try {
      await assert.rejects(
        startScimd(s, await freePort(), {
          SCIMD_ADMIN_TOKEN: TOKEN,
          SCIMD_HTTP_REDIRECT_PORT: String(await freePort()),
        }),
        /SCIMD_HTTP_REDIRECT_PORT needs TLS \(SCIMD_TLS_CERT and SCIMD_TLS_KEY\)/,
      );
    } finally {
      await s.drop();
    }
  });
});

describe('use case 47, client side: SCIMD_SYNC_REQUIRE_TLS', () => {
  test('plain-http connection URLs are refused (loopback excepted); a connection stored before the switch is never called', async () => {
    const s = await nodeStore();
    const p = await freePort();
    const origin = `http://127.0.0.1:${p}`;
    const admin = `${origin}/admin/v1/tenants/acme`;
    let proc = await startScimd(s, p, { SCIMD_ADMIN_TOKEN: TOKEN });
    try {
      await ok('POST', `${origin}/admin/v1/tenants`, TOKEN, { id: 'acme' });
      // Before the switch: a plain-http connection to a remote host is accepted.
      await ok('POST', `${admin}/connections`, TOKEN, {
        id: 'legacy',
        baseUrl: 'http://hr.example.invalid/scim/v2',
        auth: { type: 'bearer', token: 'legacy-secret' },
      });
      await ok('POST', `${admin}/flows`, TOKEN, {
        id: 'to-legacy',
        connectionId: 'legacy',
        direction: 'push',
        mode: 'full',
        resourceTypes: ['User'],
      });
      await ok('POST', `${admin}/clients`, TOKEN, { id: 'hr', name: 'hr', scopes: ['scim:write'] });
      const writer = (await ok('POST', `${admin}/clients/hr/tokens`, TOKEN, {})).token as string;
      await ok('POST', `${origin}/tenants/acme/scim/v2/Users`, writer, user('ada'));
      await proc.stop();
      proc = await startScimd(s, p, { SCIMD_ADMIN_TOKEN: TOKEN, SCIMD_SYNC_REQUIRE_TLS: 'true' });

      const refused = (field: string) =>
        `${field} must be an https URL: this node requires TLS for sync connections (SCIMD_SYNC_REQUIRE_TLS); plain http is allowed to loopback hosts only`;
      const create = await http('POST', `${admin}/connections`, TOKEN, {
        id: 'hr',
        baseUrl: 'http://hr.example.com/scim/v2',
        auth: { type: 'bearer', token: 't' },
      });
      assert.equal(create.status, 400, create.text);
      assert.equal(create.body.scimType, 'invalidValue');
      assert.equal(create.body.detail, refused('baseUrl'));
      const oauth = await http('POST', `${admin}/connections`, TOKEN, {
        id: 'idp',
        baseUrl: 'https://idp.example.com/scim/v2',
        auth: { type: 'oauth2', tokenUrl: 'http://idp.example.com/token', clientId: 'c', clientSecret: 's' },
      });
      assert.equal(oauth.status, 400, oauth.text);
      assert.equal(oauth.body.detail, refused('auth.tokenUrl'));
      const patch = await http('PATCH', `${admin}/connections/legacy`, TOKEN, {
        baseUrl: 'http://other.example.com/scim/v2',
      });
      assert.equal(patch.status, 400, patch.text);
      assert.equal(patch.body.detail, refused('baseUrl'));
      const ids = async () =>
        ((await ok('GET', `${admin}/connections`, TOKEN)).connections as Json[]).map((c) => c.id);
      assert.deepEqual(await ids(), ['legacy']);

      // https anywhere, and plain http to loopback, are accepted.
      for (const [id, baseUrl] of [
        ['hr', 'https://hr.example.com/scim/v2'],
        ['local', 'http://127.0.0.1:9/scim/v2'],
        ['local-name', 'http://localhost:9/scim/v2'],
        ['local-v6', 'http://[::1]:9/scim/v2'],
      ]) {
        const res = await http('POST', `${admin}/connections`, TOKEN, { id, baseUrl });
        assert.equal(res.status, 201, `${baseUrl}: ${res.text}`);
      }

      // The connection stored before: its test and its runs fail with the reason; nothing is sent.
      const tested = await ok('POST', `${admin}/connections/legacy/test`, TOKEN);
      assert.deepEqual(tested, { ok: false, elapsedMs: 0, error: refused('baseUrl') });
      const run = await ok('POST', `${admin}/flows/to-legacy/runs`, TOKEN, { wait: true });
      assert.equal(run.state, 'failed', JSON.stringify(run));
      assert.equal(run.error, `Connection legacy: ${refused('baseUrl')}`);
    } finally {
      await proc.stop();
      await s.drop();
    }
  });
});
