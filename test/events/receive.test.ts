/**
 * Receiving SCIM events (RFC 9967) pushed to the RFC 8935 endpoint: upstream A (real loopback
 * socket: JWKS and notice callbacks) and receiver B. full events replicate with the source's ids,
 * notice events call A back, a replayed SET changes nothing, a stale version never overwrites
 * newer data, every refused SET gets the RFC 8935 error body. PGlite, and PostgreSQL when
 * DATABASE_URL is set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { base64url } from 'jose';
import { DEFAULT_APPLIER_OPTIONS, EventApplier } from '../../src/events/inbound/applier.ts';
import { EVENT, buildScimEvent, newTxn } from '../../src/events/set.ts';
import { TenantDirectory } from '../../src/tenancy/directory.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { TOKEN } from '../helpers/app.ts';
import {
  AUD,
  addUpstream,
  onB,
  push,
  received,
  setOf,
  startPair,
  userOnA,
  type Pair,
} from './receive-fixtures.ts';

describe('receiving SCIM events: push endpoint and applier', () => {
  let p: Pair;
  let up: JsonObject;
  let upId: string;
  before(async () => {
    p = await startPair();
    up = await addUpstream(p, { id: 'a' });
    upId = up.id as string;
  });
  after(async () => {
    await p?.close();
  });

  const changesOnB = async (id: string) =>
    (
      await p.b.app.db.query<{ client_id: string; operation: string }>(
        `SELECT client_id, operation FROM changes WHERE tenant_id = 'default' AND resource_id = $1 ORDER BY seq`,
        [id],
      )
    ).rows.map((r) => [r.client_id, r.operation]);

  test('full create, put, patch (PatchOp and representation) and delete apply under the same id', async () => {
    const u = await userOnA(p, 'alice', { name: { givenName: 'Alice' } });
    const id = u.id as string;
    const create = await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' });
    const res = await push(p, upId, create.token);
    assert.equal(res.status, 202);
    assert.equal(res.text, '');
    // Stored before the 202, applied later by the applier.
    assert.equal((await onB(p, `/Users/${id}`)).status, 404);
    const pending = await received(p, upId);
    assert.equal(pending.length, 1);
    assert.deepEqual(
      { jti: pending[0].jti, state: pending[0].state, subject: pending[0].subject, via: pending[0].via },
      { jti: create.jti, state: 'pending', subject: `/Users/${id}`, via: 'push' },
    );
    assert.deepEqual(pending[0].eventUris, [EVENT.createFull]);
    assert.deepEqual(await p.b.app.applier.applyOnce(), {
      applied: 1,
      skipped: 0,
      failed: 0,
      retrying: 0,
      deferred: 0,
    });
    let copy = await onB(p, `/Users/${id}`);
    assert.equal(copy.status, 200);
    assert.equal(copy.body.id, id);
    assert.equal(copy.body.userName, 'alice');
    assert.deepEqual(copy.body.name, { givenName: 'Alice' });

    // PUT
    const put = await p.a.request('PUT', `/scim/v2/Users/${id}`, {
      body: { schemas: u.schemas, userName: 'alice', displayName: 'Alice A', name: { givenName: 'Alice' } },
    });
    assert.equal(put.status, 200, put.text);
    await push(
      p,
      upId,
      (await setOf(p, { type: 'put', endpoint: '/Users', resource: put.body, form: 'full' })).token,
    );
    // PATCH as a PatchOp message
    const patchOp = {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'title', value: 'Boss' }],
    };
    const patched = await p.a.request('PATCH', `/scim/v2/Users/${id}`, { body: patchOp });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.meta.version, 'W/"3"');
    await push(
      p,
      upId,
      (
        await setOf(p, {
          type: 'patch',
          endpoint: '/Users',
          resource: patched.body,
          patch: patchOp,
          form: 'full',
        })
      ).token,
    );
    assert.equal((await p.b.app.applier.applyOnce()).applied, 2);
    copy = await onB(p, `/Users/${id}`);
    assert.equal(copy.body.displayName, 'Alice A');
    assert.equal(copy.body.title, 'Boss');

    // PATCH carrying the representation (what scimd's publisher may send): upserted
    const patched2 = await p.a.request('PATCH', `/scim/v2/Users/${id}`, {
      body: { ...patchOp, Operations: [{ op: 'add', path: 'nickName', value: 'Al' }] },
    });
    const claims = buildScimEvent(
      { type: 'put', endpoint: '/Users', resource: patched2.body, form: 'full' },
      { issuer: p.issuer, audience: AUD, txn: newTxn() },
    );
    claims.events = { [EVENT.patchFull]: claims.events[EVENT.putFull] };
    assert.equal((await push(p, upId, await p.a.app.signingKeys.sign('default', claims))).status, 202);
    assert.equal((await p.b.app.applier.applyOnce()).applied, 1);
    copy = await onB(p, `/Users/${id}`);
    assert.equal(copy.body.nickName, 'Al');
    assert.equal(copy.body.title, 'Boss');

    // delete
    assert.equal((await p.a.request('DELETE', `/scim/v2/Users/${id}`)).status, 204);
    await push(p, upId, (await setOf(p, { type: 'delete', endpoint: '/Users', resource: { id } })).token);
    assert.equal((await p.b.app.applier.applyOnce()).applied, 1);
    assert.equal((await onB(p, `/Users/${id}`)).status, 404);

    // Every write is in B's change log under the upstream's client id (a replica publishes onward).
    assert.deepEqual(await changesOnB(id), [
      ['upstream:a', 'create'],
      ['upstream:a', 'replace'],
      ['upstream:a', 'patch'],
      ['upstream:a', 'replace'],
      ['upstream:a', 'delete'],
    ]);
    const states = (await received(p, upId)).map((e) => e.state);
    assert.deepEqual(states, ['applied', 'applied', 'applied', 'applied', 'applied']);
  });

  test('a replayed SET (same jti) is answered 202 again and applied once', async () => {
    const u = await userOnA(p, 'replay');
    const s = await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' });
    const before = (await received(p, upId)).length;
    for (let i = 0; i < 2; i++) {
      const r = await push(p, upId, s.token);
      assert.equal(r.status, 202);
      assert.equal(r.text, '');
    }
    assert.equal((await received(p, upId)).length, before + 1);
    assert.equal((await p.b.app.applier.applyOnce()).applied, 1);
    const r = await push(p, upId, s.token);
    assert.equal(r.status, 202);
    assert.deepEqual(await p.b.app.applier.applyOnce(), {
      applied: 0,
      skipped: 0,
      failed: 0,
      retrying: 0,
      deferred: 0,
    });
    assert.deepEqual(await changesOnB(u.id as string), [['upstream:a', 'create']]);
  });

  test('a stale or repeated version is skipped and never overwrites newer data; a deleted resource stays deleted', async () => {
    const u = await userOnA(p, 'dave');
    const id = u.id as string;
    const v2 = await p.a.request('PUT', `/scim/v2/Users/${id}`, {
      body: { schemas: u.schemas, userName: 'dave', displayName: 'two' },
    });
    const v3 = await p.a.request('PUT', `/scim/v2/Users/${id}`, {
      body: { schemas: u.schemas, userName: 'dave', displayName: 'three' },
    });
    assert.equal(v3.body.meta.version, 'W/"3"');
    const put = (resource: JsonObject) =>
      setOf(p, { type: 'put', endpoint: '/Users', resource, form: 'full' });
    await push(p, upId, (await put(v3.body)).token);
    await push(p, upId, (await put(v2.body)).token); // late
    await push(p, upId, (await put(v3.body)).token); // same version, another jti
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' })).token,
    );
    assert.deepEqual(await p.b.app.applier.applyOnce(), {
      applied: 1,
      skipped: 3,
      failed: 0,
      retrying: 0,
      deferred: 0,
    });
    assert.equal((await onB(p, `/Users/${id}`)).body.displayName, 'three');
    const last = (await received(p, upId)).slice(-4).map((e) => [e.state, e.error]);
    assert.deepEqual(last, [
      ['applied', undefined],
      ['skipped', 'version W/"2" is not newer than the applied version W/"3"'],
      ['skipped', 'version W/"3" is not newer than the applied version W/"3"'],
      ['skipped', 'version W/"1" is not newer than the applied version W/"3"'],
    ]);

    await push(p, upId, (await setOf(p, { type: 'delete', endpoint: '/Users', resource: { id } })).token);
    await push(p, upId, (await put(v3.body)).token);
    assert.deepEqual(await p.b.app.applier.applyOnce(), {
      applied: 1,
      skipped: 1,
      failed: 0,
      retrying: 0,
      deferred: 0,
    });
    assert.equal((await onB(p, `/Users/${id}`)).status, 404);
    assert.equal(
      (await received(p, upId)).at(-1)!.error,
      'the resource was deleted at the source (after version W/"3")',
    );
  });

  test('notice events call the publisher back (GET with the callback Authorization); 404 deletes', async () => {
    const u = await userOnA(p, 'carol', { title: 'Dr' });
    const id = u.id as string;
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'notice' })).token,
    );
    assert.equal((await p.b.app.applier.applyOnce()).applied, 1);
    const copy = await onB(p, `/Users/${id}`);
    assert.equal(copy.status, 200);
    assert.equal(copy.body.title, 'Dr');

    const patched = await p.a.request('PATCH', `/scim/v2/Users/${id}`, {
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', path: 'title', value: 'Prof' }],
      },
    });
    const notice = await setOf(p, {
      type: 'patch',
      endpoint: '/Users',
      resource: patched.body,
      patch: {},
      attributes: ['title'],
      form: 'notice',
    });
    await push(p, upId, notice.token);
    assert.equal((await p.b.app.applier.applyOnce()).applied, 1);
    assert.equal((await onB(p, `/Users/${id}`)).body.title, 'Prof');

    // Deleted at A before B called back: the callback's 404 deletes B's copy.
    assert.equal((await p.a.request('DELETE', `/scim/v2/Users/${id}`)).status, 204);
    const late = await setOf(p, {
      type: 'put',
      endpoint: '/Users',
      resource: { ...patched.body, meta: { version: 'W/"3"' } },
      attributes: ['title'],
      form: 'notice',
    });
    await push(p, upId, late.token);
    assert.equal((await p.b.app.applier.applyOnce()).applied, 1);
    assert.equal((await onB(p, `/Users/${id}`)).status, 404);
  });

  test('group members not present yet are left out of that apply and come with a later event', async () => {
    const m1 = await userOnA(p, 'member1');
    const m2 = await userOnA(p, 'member2');
    const g = await p.a.request('POST', '/scim/v2/Groups', {
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        displayName: 'team',
        members: [{ value: m1.id }, { value: m2.id }],
      },
    });
    assert.equal(g.status, 201, g.text);
    const gid = g.body.id as string;
    // member1 replicated first, member2 not yet
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: m1, form: 'full' })).token,
    );
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Groups', resource: g.body, form: 'full' })).token,
    );
    assert.equal((await p.b.app.applier.applyOnce()).applied, 2);
    let copy = await onB(p, `/Groups/${gid}`);
    assert.deepEqual(
      (copy.body.members as JsonObject[]).map((m) => m.value),
      [m1.id],
    );
    assert.equal((await received(p, upId)).at(-1)!.error, `members not present here were left out: ${m2.id}`);
    // member2 arrives, then the group's next change carries it again
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: m2, form: 'full' })).token,
    );
    const renamed = await p.a.request('PUT', `/scim/v2/Groups/${gid}`, {
      body: { schemas: g.body.schemas, displayName: 'team2', members: [{ value: m1.id }, { value: m2.id }] },
    });
    await push(
      p,
      upId,
      (await setOf(p, { type: 'put', endpoint: '/Groups', resource: renamed.body, form: 'full' })).token,
    );
    assert.equal((await p.b.app.applier.applyOnce()).applied, 2);
    copy = await onB(p, `/Groups/${gid}`);
    assert.equal(copy.body.displayName, 'team2');
    assert.deepEqual((copy.body.members as JsonObject[]).map((m) => m.value).sort(), [m1.id, m2.id].sort());
  });

  test('a group applied without some members is applied again at the same version once they exist', async () => {
    // What scimd's publisher sends: each change row with the resource's current representation,
    // so the group's first SET already names a member whose create SET comes after it, and the
    // group's next SET (after that create) carries the same version.
    const m1 = await userOnA(p, 'same-version-1');
    const m2 = await userOnA(p, 'same-version-2');
    const g = await p.a.request('POST', '/scim/v2/Groups', {
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        displayName: 'same version',
        members: [{ value: m1.id }, { value: m2.id }],
      },
    });
    assert.equal(g.status, 201, g.text);
    const gid = g.body.id as string;
    const groupSet = async () =>
      (await setOf(p, { type: 'create', endpoint: '/Groups', resource: g.body, form: 'full' })).token;
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: m1, form: 'full' })).token,
    );
    await push(p, upId, await groupSet());
    assert.equal((await p.b.app.applier.applyOnce()).applied, 2);
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: m2, form: 'full' })).token,
    );
    await push(p, upId, await groupSet());
    assert.deepEqual(await p.b.app.applier.applyOnce(), {
      applied: 2,
      skipped: 0,
      failed: 0,
      retrying: 0,
      deferred: 0,
    });
    const copy = await onB(p, `/Groups/${gid}`);
    assert.deepEqual((copy.body.members as JsonObject[]).map((m) => m.value).sort(), [m1.id, m2.id].sort());
    // Complete now: the same version once more is skipped.
    await push(p, upId, await groupSet());
    assert.equal((await p.b.app.applier.applyOnce()).skipped, 1);
    const last = (await received(p, upId)).at(-1)!;
    assert.equal(last.state, 'skipped');
    assert.equal(
      last.error,
      `version ${g.body.meta.version} is not newer than the applied version ${g.body.meta.version}`,
    );
  });

  test('a failed apply is retried with backoff, holds back later events of that resource only, then fails', async () => {
    // B already has a local user "erin": A's erin (another id) conflicts on userName.
    const local = await p.b.request('POST', '/scim/v2/Users', {
      body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'erin' },
    });
    assert.equal(local.status, 201);
    const erin = await userOnA(p, 'erin');
    const frank = await userOnA(p, 'frank');
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: erin, form: 'full' })).token,
    );
    const put = await p.a.request('PUT', `/scim/v2/Users/${erin.id as string}`, {
      body: { schemas: erin.schemas, userName: 'erin', title: 'x' },
    });
    await push(
      p,
      upId,
      (await setOf(p, { type: 'put', endpoint: '/Users', resource: put.body, form: 'full' })).token,
    );
    await push(
      p,
      upId,
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: frank, form: 'full' })).token,
    );
    assert.deepEqual(await p.b.app.applier.applyOnce(), {
      applied: 1,
      skipped: 0,
      failed: 0,
      retrying: 1,
      deferred: 1,
    });
    assert.equal((await onB(p, `/Users/${frank.id as string}`)).status, 200);
    const [first, second] = (await received(p, upId)).slice(-3);
    assert.equal(first.state, 'pending');
    assert.equal(first.attempts, 1);
    assert.equal(first.error, '409 uniqueness: Another User already has this userName');
    assert.equal(second.state, 'pending');
    assert.equal(second.attempts, 0);
    // After the retry delay (inboundRetryBaseMs 20 in this pair), the second attempt gives up.
    await new Promise((r) => setTimeout(r, 50));
    const pass = await p.b.app.applier.applyOnce();
    assert.equal(pass.failed, 1);
    const again = (await received(p, upId)).slice(-3);
    assert.deepEqual([again[0].state, again[0].attempts], ['failed', 2]);
  });

  test('stored before the 202: a fresh applier (as after a restart, nothing in memory) applies it', async () => {
    const u = await userOnA(p, 'durable');
    assert.equal(
      (
        await push(
          p,
          upId,
          (await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' })).token,
        )
      ).status,
      202,
    );
    const { db, service, registry, upstreams, config } = p.b.app;
    const fresh = new EventApplier(
      { db, service, registry, tenants: new TenantDirectory(db), upstreams, limits: config },
      DEFAULT_APPLIER_OPTIONS,
    );
    assert.equal((await fresh.applyOnce()).applied, 1);
    assert.equal((await onB(p, `/Users/${u.id as string}`)).body.userName, 'durable');
  });

  test('unsigned SETs only where the upstream accepts them', async () => {
    const u = await userOnA(p, 'plain');
    const s = await setOf(
      p,
      { type: 'create', endpoint: '/Users', resource: u, form: 'full' },
      { unsigned: true },
    );
    const refused = await push(p, upId, s.token);
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.body, {
      err: 'invalid_key',
      description: 'Unsigned SETs are not accepted from this issuer',
    });
    const open = await addUpstream(p, { id: 'open', jwksUri: null, acceptUnsigned: true });
    assert.equal((await push(p, open.id as string, s.token)).status, 202);
  });
});

describe('receiving SCIM events: RFC 8935 errors, authentication, tenants', () => {
  let p: Pair;
  let upId: string;
  let user: JsonObject;
  before(async () => {
    p = await startPair();
    upId = (await addUpstream(p, { id: 'a' })).id as string;
    user = await userOnA(p, 'x');
  });
  after(async () => {
    await p?.close();
  });

  async function refused(token: string, err: string, description: string, status = 400) {
    const res = await push(p, upId, token);
    assert.equal(res.status, status, res.text);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.headers['content-language'], 'en');
    assert.deepEqual(JSON.parse(res.text), { err, description });
  }
  const create = (o: Parameters<typeof setOf>[2] = {}) =>
    setOf(p, { type: 'create', endpoint: '/Users', resource: user, form: 'full' }, o);

  test('garbage, a JWE, non-JSON claims → invalid_request', async () => {
    await refused('not a jwt', 'invalid_request', 'The body is not a compact JWT');
    await refused('a.b.c.d.e', 'invalid_request', 'Encrypted (JWE) SETs are not accepted');
    await refused('e30.bm90IGpzb24.', 'invalid_request', 'The body is not a parseable JWT');
    await refused('', 'invalid_request', 'The body is not a compact JWT');
  });

  test('bad signature (tampered payload, or a key not in the JWKS) → invalid_key', async () => {
    const { token } = await create();
    const [h, , s] = token.split('.');
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(token.split('.')[1]))) as JsonObject;
    claims.txn = 'forged';
    const forged = `${h}.${base64url.encode(JSON.stringify(claims))}.${s}`;
    await refused(
      forged,
      'invalid_key',
      "The signature does not verify with the issuer's keys (ERR_JWS_SIGNATURE_VERIFICATION_FAILED)",
    );
    // Signed by B's own key: its kid is not in A's JWKS.
    const other = await p.b.app.signingKeys.sign('default', claims);
    await refused(
      other,
      'invalid_key',
      "The signature does not verify with the issuer's keys (ERR_JWKS_NO_MATCHING_KEY)",
    );
  });

  test('another issuer → invalid_issuer; another audience → invalid_audience', async () => {
    await refused(
      (await create({ issuer: 'https://evil.example' })).token,
      'invalid_issuer',
      'The SET\'s issuer "https://evil.example" is not this upstream\'s issuer',
    );
    await refused(
      (await create({ audience: 'https://someone.else' })).token,
      'invalid_audience',
      `The SET's audience does not include ${AUD}`,
    );
  });

  test('no SCIM event, no sub_id of format scim → invalid_request', async () => {
    const base = buildScimEvent(
      { type: 'delete', endpoint: '/Users', resource: { id: 'u1' } },
      { issuer: p.issuer, audience: AUD, txn: newTxn() },
    );
    const sign = (c: object) => p.a.app.signingKeys.sign('default', c);
    await refused(
      await sign({
        ...base,
        events: { 'https://schemas.openid.net/secevent/risc/event-type/account-disabled': {} },
      }),
      'invalid_request',
      'The SET carries no SCIM event (urn:ietf:params:scim:event:...)',
    );
    await refused(await sign({ ...base, events: {} }), 'invalid_request', 'The SET has no events claim');
    await refused(
      await sign({ ...base, sub_id: { format: 'email', email: 'a@b.c' } }),
      'invalid_request',
      'sub_id must be {"format": "scim", "uri": "/<Endpoint>/<id>"}',
    );
    const { jti: _jti, ...noJti } = base;
    await refused(
      await sign(noJti),
      'invalid_request',
      'The SET has no jti (or one longer than 256 characters)',
    );
  });

  test('wrong Content-Type → 415; unknown upstream → 404', async () => {
    const { token } = await create();
    const res = await push(p, upId, token, { contentType: 'application/json' });
    assert.equal(res.status, 415);
    assert.equal(res.headers['content-language'], 'en');
    assert.deepEqual(res.body, {
      err: 'invalid_request',
      description: 'Content-Type must be application/secevent+jwt',
    });
    const missing = await push(p, 'nope', token);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, {
      err: 'invalid_request',
      description: 'No upstream nope in tenant default',
    });
  });

  test('401 without valid credentials, 403 without scope events:push, 202 with it', async () => {
    const { token } = await create();
    const anon = await push(p, upId, token, { auth: false });
    assert.equal(anon.status, 401);
    assert.equal(anon.headers['www-authenticate'], 'Bearer realm="scimd"');
    assert.equal(anon.headers['content-language'], 'en');
    assert.equal(anon.body.err, 'authentication_failed');
    const bad = await push(p, upId, token, { auth: 'not-a-token' });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.err, 'authentication_failed');

    const reader = await p.b.app.admin.createClient('default', { name: 'reader', scopes: ['scim:read'] });
    const readerToken = (await p.b.app.admin.issueToken('default', reader.id)).token;
    const denied = await push(p, upId, token, { auth: readerToken });
    assert.equal(denied.status, 403);
    assert.deepEqual(denied.body, {
      err: 'access_denied',
      description: 'This credential may not push events to tenant default (needs scope events:push)',
    });
    const pusher = await p.b.app.admin.createClient('default', { name: 'pusher', scopes: ['events:push'] });
    const pusherToken = (await p.b.app.admin.issueToken('default', pusher.id)).token;
    const ok = await push(p, upId, token, { auth: pusherToken });
    assert.equal(ok.status, 202);
    assert.equal(ok.text, '');
  });

  test("tenant isolation: a tenant's upstream, client and replicated resources stay in it", async () => {
    for (const id of ['t1', 't2']) await p.b.app.admin.createTenant({ id });
    await addUpstream(p, { id: 'up' }, 't1');
    const c1 = await p.b.app.admin.createClient('t1', {
      name: 'pusher',
      scopes: ['events:push', 'scim:read'],
    });
    const c2 = await p.b.app.admin.createClient('t2', { name: 'reader', scopes: ['scim:read'] });
    const t2Token = (await p.b.app.admin.issueToken('t2', c2.id)).token;
    const t1Token = (await p.b.app.admin.issueToken('t1', c1.id)).token;
    const u = await userOnA(p, 'tenanted');
    const { token } = await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'full' });

    const wrongTenant = await push(p, 'up', token, { tenant: 't2', auth: t1Token });
    assert.equal(wrongTenant.status, 403);
    assert.equal(wrongTenant.body.err, 'access_denied');
    const noSuch = await push(p, 'up', token, { tenant: 't2' });
    assert.equal(noSuch.status, 404);
    assert.equal((await push(p, 'up', token)).status, 404); // the default tenant has no upstream "up"

    assert.equal((await push(p, 'up', token, { tenant: 't1', auth: t1Token })).status, 202);
    await p.b.app.applier.applyOnce();
    assert.equal((await onB(p, `/Users/${u.id as string}`, 't1', t1Token)).status, 200);
    assert.equal((await onB(p, `/Users/${u.id as string}`, 't2', t2Token)).status, 404);
    assert.equal((await onB(p, `/Users/${u.id as string}`)).status, 404);
    const t2Events = await p.b.request('GET', '/admin/v1/tenants/t2/upstreams/up/events');
    assert.equal(t2Events.status, 404);
  });

  test('a notice callback refused by the publisher fails the event (and keeps the Authorization out of the error)', async () => {
    const noAuth = await addUpstream(p, { id: 'noauth', callbackAuthorization: null });
    assert.equal(noAuth.callbackAuthorization, false);
    const withAuth = await p.b.request('GET', '/admin/v1/tenants/default/upstreams/a');
    assert.equal(withAuth.body.callbackAuthorization, true);
    assert.ok(!withAuth.text.includes(TOKEN));
    const u = await userOnA(p, 'callme');
    await push(
      p,
      'noauth',
      (await setOf(p, { type: 'create', endpoint: '/Users', resource: u, form: 'notice' })).token,
    );
    const pass = await p.b.app.applier.applyOnce();
    assert.equal(pass.retrying, 1);
    const [e] = await received(p, 'noauth');
    assert.equal(e.state, 'pending');
    assert.equal(e.error, `callback GET ${p.aBase}/scim/v2/Users/${u.id as string} answered 401`);
  });
});
