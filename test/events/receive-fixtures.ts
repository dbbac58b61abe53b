/**
 * Two scimd apps for the receiving tests: upstream A listens on a real loopback socket (its JWKS
 * and SCIM API serve B's signature checks and notice callbacks); receiver B is driven through
 * inject with its workers off (tests step the applier). SETs are built from A's real resources
 * with buildScimEvent and signed with A's tenant key, independent of any publisher code.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { buildScimEvent, newTxn, type ScimChange } from '../../src/events/set.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { startTestApp, TOKEN, type TestApp, type TestResponse } from '../helpers/app.ts';

export const AUD = 'https://b.example/receiver';

export interface Pair {
  a: TestApp;
  b: TestApp;
  /** http://127.0.0.1:<port> of A. */
  aBase: string;
  /** A's issuer name in its SETs. */
  issuer: string;
  close(): Promise<void>;
}

export async function startPair(): Promise<Pair> {
  const a = await startTestApp({ backgroundWorkers: false });
  await a.app.server.listen({ port: 0, host: '127.0.0.1' });
  const port = (a.app.server.server.address() as AddressInfo).port;
  // Short retries so that tests see an event retried and given up.
  const b = await startTestApp({ backgroundWorkers: false, inboundRetryBaseMs: 20, inboundMaxAttempts: 2 });
  const aBase = `http://127.0.0.1:${port}`;
  return {
    a,
    b,
    aBase,
    issuer: `${aBase}/scim/v2`,
    async close() {
      await b.close();
      await a.close();
    },
  };
}

/** Registers A as an upstream of B's tenant (admin API); returns the upstream view. */
export async function addUpstream(p: Pair, extra: JsonObject = {}, tenant = 'default'): Promise<JsonObject> {
  // null in `extra` leaves a default field out.
  const body: JsonObject = {
    name: 'A',
    issuer: p.issuer,
    jwksUri: `${p.aBase}/.well-known/jwks.json`,
    audience: AUD,
    scimBaseUrl: `${p.aBase}/scim/v2`,
    callbackAuthorization: `Bearer ${TOKEN}`,
    ...extra,
  };
  for (const [k, v] of Object.entries(body)) if (v === null) delete body[k];
  const res = await p.b.request('POST', `/admin/v1/tenants/${tenant}/upstreams`, {
    body,
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 201, res.text);
  return res.body as JsonObject;
}

/** A SET of A (signed with A's default tenant key unless unsigned). */
export async function setOf(
  p: Pair,
  change: ScimChange,
  o: { jti?: string; audience?: string; issuer?: string; unsigned?: boolean } = {},
): Promise<{ token: string; jti: string }> {
  const claims = buildScimEvent(change, {
    issuer: o.issuer ?? p.issuer,
    audience: o.audience ?? AUD,
    txn: newTxn(),
    ...(o.jti ? { jti: o.jti } : {}),
  });
  return {
    token: await p.a.app.signingKeys.sign('default', claims, { unsigned: o.unsigned }),
    jti: claims.jti,
  };
}

/** POSTs a SET to B's push endpoint (admin token unless told). */
export function push(
  p: Pair,
  upstreamId: string,
  token: string,
  o: { tenant?: string; auth?: string | false; contentType?: string } = {},
): Promise<TestResponse> {
  const url =
    o.tenant === undefined ? `/events/push/${upstreamId}` : `/tenants/${o.tenant}/events/push/${upstreamId}`;
  return p.b.request('POST', url, {
    raw: token,
    token: o.auth,
    headers: { 'content-type': o.contentType ?? 'application/secevent+jwt', accept: 'application/json' },
  });
}

/** A User created on A; returns A's representation. */
export async function userOnA(p: Pair, userName: string, extra: JsonObject = {}): Promise<JsonObject> {
  const res = await p.a.request('POST', '/scim/v2/Users', {
    body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName, ...extra },
  });
  assert.equal(res.status, 201, res.text);
  return res.body as JsonObject;
}

/** B's copy of a resource (status and body). */
export function onB(p: Pair, path: string, tenant?: string, token?: string): Promise<TestResponse> {
  return p.b.request('GET', tenant ? `/tenants/${tenant}/scim/v2${path}` : `/scim/v2${path}`, { token });
}

/** Received events of an upstream on B, oldest first: [jti, state, error]. */
export async function received(p: Pair, upstreamId: string, tenant = 'default'): Promise<JsonObject[]> {
  const res = await p.b.request('GET', `/admin/v1/tenants/${tenant}/upstreams/${upstreamId}/events`);
  assert.equal(res.status, 200, res.text);
  return (res.body.events as JsonObject[]).reverse();
}
