/**
 * TLS client certificates on a real HTTPS server: a certificate verified against the configured
 * client CA authenticates the client mapped to it by SHA-256 fingerprint or by subject; anything
 * else (unmapped, not from the CA, absent) is a 401, and bearer tokens keep working over TLS.
 * Fixtures: test/fixtures/tls (test-only, see its README).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertForbidden, assertUnauthorized, DETAIL_NO_CREDENTIALS, USER, type Answer } from './helpers.ts';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'tls');
const file = (name: string) => join(DIR, name);
const pem = (name: string) => readFileSync(file(name));

// From `openssl x509 -in <file> -noout -fingerprint -sha256` (generate.sh prints them).
const FINGERPRINT_A =
  '3D:51:A5:65:F6:86:75:CB:FE:60:18:45:6C:A7:BA:D6:88:84:D8:09:32:71:F8:40:FB:90:76:6E:50:B6:29:D1';
const FINGERPRINT_B =
  '78:BC:5B:09:49:86:18:45:A5:C2:F9:81:32:B7:83:C4:28:34:1D:18:94:DD:AC:8C:D7:E5:A1:CE:6D:76:E2:64';
const SUBJECT_B = 'O=scimd test,CN=client-b';
const NOT_MAPPED = 'The client certificate is not mapped to a client of this tenant';

let t: TestApp;
let port: number;
let tokenA: string;

before(async () => {
  t = await startTestApp({
    tlsCert: file('server.crt'),
    tlsKey: file('server.key'),
    tlsClientCa: file('ca.crt'),
    host: '127.0.0.1',
    port: 0,
    baseUrl: undefined,
  });
  await t.app.server.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.server.address() as AddressInfo).port;
  const admin = t.app.admin;
  await admin.createTenant({ id: 'acme' });
  await admin.createTenant({ id: 'globex' });
  await admin.createClient('acme', {
    id: 'by-fingerprint',
    name: 'Mapped by fingerprint',
    scopes: ['scim:read'],
    certFingerprint: FINGERPRINT_A,
  });
  await admin.createClient('acme', {
    id: 'by-subject',
    name: 'Mapped by subject',
    scopes: ['scim:read', 'scim:write'],
    certSubject: SUBJECT_B,
  });
  await admin.createClient('acme', { id: 'token-client', name: 'Token', scopes: ['scim:read'] });
  tokenA = (await admin.issueToken('acme', 'token-client')).token;
});
after(async () => {
  await t?.close();
});

interface Call {
  method?: string;
  path?: string;
  cert?: string;
  token?: string;
  body?: unknown;
}

/** One HTTPS request on a fresh connection (no TLS session reuse between cases). */
function call(c: Call = {}): Promise<Answer> {
  const payload = c.body === undefined ? undefined : JSON.stringify(c.body);
  const headers: Record<string, string> = {};
  if (c.token) headers.authorization = `Bearer ${c.token}`;
  if (payload) headers['content-type'] = 'application/scim+json';
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: c.method ?? 'GET',
        path: c.path ?? '/tenants/acme/scim/v2/Users',
        headers,
        ca: pem('ca.crt'),
        agent: false,
        ...(c.cert ? { cert: pem(`${c.cert}.crt`), key: pem(`${c.cert}.key`) } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          const h: Record<string, string | undefined> = {};
          for (const [k, v] of Object.entries(res.headers)) h[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({
            status: res.statusCode ?? 0,
            headers: h,
            body: text ? JSON.parse(text) : undefined,
            text,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function assertList(res: Answer): void {
  assert.equal(res.status, 200, res.text.slice(0, 500));
  assert.equal(res.headers['content-type'], 'application/scim+json; charset=utf-8');
  assert.deepEqual(res.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
}

describe('TLS client certificates', () => {
  test('the fixture fingerprints are the certificates’ SHA-256 fingerprints', () => {
    assert.equal(new X509Certificate(pem('client-a.crt')).fingerprint256, FINGERPRINT_A);
    assert.equal(new X509Certificate(pem('client-b.crt')).fingerprint256, FINGERPRINT_B);
    const ca = new X509Certificate(pem('ca.crt'));
    for (const name of ['server', 'client-a', 'client-b', 'client-unmapped', 'client-spoof'])
      assert.ok(new X509Certificate(pem(`${name}.crt`)).verify(ca.publicKey), `${name} is signed by the CA`);
    assert.equal(new X509Certificate(pem('self-signed.crt')).verify(ca.publicKey), false);
  });

  test('a client mapped by certFingerprint → 200, with its own scopes', async () => {
    assertList(await call({ cert: 'client-a' }));
    assertForbidden(
      await call({ cert: 'client-a', method: 'POST', body: { schemas: [USER], userName: 'by-a' } }),
      'This client may not write User resources (needs scope User:write or scim:write)',
    );
  });

  test('a client mapped by certSubject → 200', async () => {
    assertList(await call({ cert: 'client-b' }));
    const created = await call({
      cert: 'client-b',
      method: 'POST',
      body: { schemas: [USER], userName: 'by-b' },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(
      created.headers.location,
      `https://127.0.0.1:${port}/tenants/acme/scim/v2/Users/${created.body.id}`,
    );
  });

  test('the mapping belongs to one tenant: the same certificate elsewhere → 401', async () => {
    assertUnauthorized(await call({ cert: 'client-a', path: '/tenants/globex/scim/v2/Users' }), NOT_MAPPED);
    assertUnauthorized(await call({ cert: 'client-b', path: '/scim/v2/Users' }), NOT_MAPPED);
  });

  test('a certificate from the CA that is mapped to no client → 401', async () => {
    assertUnauthorized(await call({ cert: 'client-unmapped' }), NOT_MAPPED);
  });

  test("a CA certificate whose one O value spells client-b's subject → 401", async () => {
    assertUnauthorized(await call({ cert: 'client-spoof' }), NOT_MAPPED);
    // Its subject, as matched, escapes the "," (RFC 4514 §2.4); mapped that way it is a client of its own.
    await t.app.admin.createClient('globex', {
      id: 'escaped',
      name: 'Escaped subject',
      scopes: ['scim:read'],
      certSubject: 'O=scimd test\\,CN=client-b',
    });
    assertList(await call({ cert: 'client-spoof', path: '/tenants/globex/scim/v2/Users' }));
    assertUnauthorized(await call({ cert: 'client-b', path: '/tenants/globex/scim/v2/Users' }), NOT_MAPPED);
  });

  test("a self-signed certificate (not from the CA), even with a mapped client's subject → 401", async () => {
    assertUnauthorized(await call({ cert: 'self-signed' }), DETAIL_NO_CREDENTIALS);
  });

  test('no certificate and no token → 401', async () => {
    assertUnauthorized(await call(), DETAIL_NO_CREDENTIALS);
  });

  test('a bearer token works over TLS, with or without a certificate', async () => {
    assertList(await call({ token: tokenA }));
    assertList(await call({ token: tokenA, cert: 'client-unmapped' }));
    // An explicit bearer token is what is checked: a bad one is not rescued by a good certificate.
    assertUnauthorized(await call({ token: 'scimd_wrong', cert: 'client-b' }));
    assertUnauthorized(await call({ token: tokenA, path: '/tenants/globex/scim/v2/Users' }));
  });
});
