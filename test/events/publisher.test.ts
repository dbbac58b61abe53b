/**
 * The publisher: change log → signed SETs in the outbox, one row per receiver and change. Apps run
 * without background workers; each test writes through the SCIM API, calls publishOnce() and
 * reads event_outbox, decoding every SET and comparing its claims exactly. Receivers are inserted
 * with SQL (their API belongs to delivery). Runs on PGlite, and on PostgreSQL with DATABASE_URL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { changeTxn } from '../../src/events/outbound/emit.ts';
import { Publisher } from '../../src/events/outbound/publisher.ts';
import { EVENT } from '../../src/events/set.ts';
import { TenantDirectory } from '../../src/tenancy/directory.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishSettled, settleChangeLog } from '../helpers/events.ts';

const ISS = 'http://scimd.test/scim/v2';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

interface OutRow {
  seq: number;
  receiver_id: string;
  jti: string;
  txn: string;
  resource_type: string;
  resource_id: string;
  event_uris: string[];
  set_jwt: string;
  state: string;
}

let t: TestApp;
let n = 0;
/** Bearer tokens of each tenant's admin client (the bootstrap token is the default tenant's). */
const tokens: Record<string, string | undefined> = {};

before(async () => {
  t = await startTestApp({ backgroundWorkers: false });
  for (const tenant of ['acme', 'beta']) {
    await t.app.admin.createTenant({ id: tenant });
    await t.app.admin.createClient(tenant, { id: `${tenant}-admin`, name: 'admin', scopes: ['admin'] });
    tokens[tenant] = (await t.app.admin.issueToken(tenant, `${tenant}-admin`, {})).token;
  }
});
after(async () => {
  await t?.close();
});

function publish() {
  return publishSettled(t.app);
}

function uniq(prefix: string): string {
  n += 1;
  return `${prefix}${n}-${Date.now().toString(36)}`;
}

async function feed(tenant: string, body: Record<string, unknown>): Promise<string> {
  const res = await t.request('POST', `/admin/v1/tenants/${tenant}/feeds`, {
    body,
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 201, res.text);
  return res.body.id as string;
}

async function receiver(
  tenant: string,
  feedId: string,
  opts: { audience?: string; unsigned?: boolean; paused?: boolean } = {},
): Promise<string> {
  const id = uniq('rcv-');
  await t.app.db.query(
    `INSERT INTO event_receivers (tenant_id, id, feed_id, name, delivery, poll_client_id, audience, unsigned, paused)
     VALUES ($1, $2, $3, $2, 'poll', 'c', $4, $5, $6)`,
    [tenant, id, feedId, opts.audience ?? null, opts.unsigned ?? false, opts.paused ?? false],
  );
  return id;
}

async function outbox(tenant: string, receiverId: string): Promise<OutRow[]> {
  const res = await t.app.db.query<OutRow>(
    'SELECT * FROM event_outbox WHERE tenant_id = $1 AND receiver_id = $2 ORDER BY seq',
    [tenant, receiverId],
  );
  return res.rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** Claims of the SETs of a receiver, in outbox order. */
async function sets(tenant: string, receiverId: string): Promise<Record<string, unknown>[]> {
  return (await outbox(tenant, receiverId)).map((r) => decodeJwt(r.set_jwt) as Record<string, unknown>);
}

async function seqsOf(tenant: string, resourceId: string): Promise<number[]> {
  const res = await t.app.db.query<{ seq: string }>(
    'SELECT seq FROM changes WHERE tenant_id = $1 AND resource_id = $2 ORDER BY seq',
    [tenant, resourceId],
  );
  return res.rows.map((r) => Number(r.seq));
}

function base(tenant: string): string {
  return tenant === 'default' ? '/scim/v2' : `/tenants/${tenant}/scim/v2`;
}

async function createUser(tenant: string, body: Record<string, unknown>) {
  const res = await t.request('POST', `${base(tenant)}/Users`, {
    body: { schemas: [USER], ...body },
    token: tokens[tenant],
  });
  assert.equal(res.status, 201, res.text);
  return res.body as Record<string, unknown> & { id: string };
}

async function patchUser(tenant: string, id: string, ops: unknown[]) {
  const res = await t.request('PATCH', `${base(tenant)}/Users/${id}`, {
    body: { schemas: [PATCH], Operations: ops },
  });
  assert.equal(res.status, 200, res.text);
  return res.body as Record<string, unknown>;
}

async function getUser(tenant: string, id: string) {
  const res = await t.request('GET', `${base(tenant)}/Users/${id}`);
  assert.equal(res.status, 200, res.text);
  return res.body as Record<string, unknown> & { meta: { version: string } };
}

async function deleteUser(tenant: string, id: string) {
  const res = await t.request('DELETE', `${base(tenant)}/Users/${id}`);
  assert.equal(res.status, 204, res.text);
}

function assertEnvelope(
  c: Record<string, unknown>,
  tenant: string,
  aud: string,
  txn: string,
  uri: string,
  externalId?: string,
) {
  assert.deepEqual(Object.keys(c).sort(), ['aud', 'events', 'iat', 'iss', 'jti', 'sub_id', 'txn']);
  assert.equal(c.iss, `http://scimd.test${base(tenant)}`);
  assert.equal(c.aud, aud);
  assert.equal(c.txn, txn);
  assert.match(c.jti as string, /^[0-9a-f]{32}$/);
  assert.equal(typeof c.iat, 'number');
  assert.ok(Math.abs((c.iat as number) - Date.now() / 1000) < 120);
  assert.deepEqual(c.sub_id, { format: 'scim', uri, ...(externalId ? { externalId } : {}) });
}

describe('publisher: full feed of Users', () => {
  let feedId: string;
  let rcv: string;
  let aud: string;

  before(async () => {
    feedId = await feed('default', { name: 'all users', resourceTypes: ['User'], form: 'full' });
    aud = `${ISS}/Feeds/${feedId}`;
    rcv = await receiver('default', feedId);
    await publish();
  });

  test('create → prov:create:full with the representation (no password) and version, plus prov:activate; signed ES256', async () => {
    const userName = uniq('alice-');
    const u = await createUser('default', {
      userName,
      externalId: `ext-${userName}`,
      password: 'S3cret!pass',
      active: true,
    });
    const result = await publish();
    assert.equal(result.rows, 1);
    const rows = await outbox('default', rcv);
    assert.equal(rows.length, 1);
    const [seq] = await seqsOf('default', u.id);
    const row = rows[0];
    assert.equal(row.state, 'pending');
    assert.equal(row.resource_type, 'User');
    assert.equal(row.resource_id, u.id);
    assert.deepEqual(row.event_uris, [EVENT.createFull, EVENT.activate]);
    assert.equal(row.txn, changeTxn('default', seq));
    const current = await getUser('default', u.id);
    const c = decodeJwt(row.set_jwt) as Record<string, unknown>;
    assertEnvelope(c, 'default', aud, changeTxn('default', seq), `/Users/${u.id}`, `ext-${userName}`);
    assert.equal(row.jti, c.jti);
    assert.deepEqual(c.events, {
      [EVENT.createFull]: { data: current, version: current.meta.version },
      [EVENT.activate]: {},
    });
    assert.equal(JSON.stringify(c).includes('S3cret'), false);
    assert.equal('password' in (current as object), false);
    // Signed with the tenant's key, verifiable with the served JWKS.
    const header = decodeProtectedHeader(row.set_jwt);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.typ, 'secevent+jwt');
    const jwks = JSON.parse(
      (await t.request('GET', '/.well-known/jwks.json', { token: false })).text,
    ) as JSONWebKeySet;
    const verified = await jwtVerify(row.set_jwt, createLocalJWKSet(jwks), { typ: 'secevent+jwt' });
    assert.deepEqual(verified.payload, c);
  });

  test('patch deactivating → prov:patch:full with the representation + prov:deactivate; put → prov:put:full; reactivate → prov:activate; delete → prov:delete', async () => {
    const userName = uniq('bob-');
    const u = await createUser('default', { userName, active: true });
    await publish();
    const before = (await outbox('default', rcv)).length;

    await patchUser('default', u.id, [{ op: 'replace', path: 'active', value: false }]);
    await publish();
    let c = (await sets('default', rcv)).slice(before);
    let cur = await getUser('default', u.id);
    assert.equal(c.length, 1);
    assert.deepEqual(c[0].events, {
      [EVENT.patchFull]: { data: cur, version: cur.meta.version },
      [EVENT.deactivate]: {},
    });

    const put = await t.request('PUT', `/scim/v2/Users/${u.id}`, {
      body: { schemas: [USER], userName, displayName: 'Bob', active: false },
    });
    assert.equal(put.status, 200, put.text);
    await publish();
    c = (await sets('default', rcv)).slice(before);
    cur = await getUser('default', u.id);
    assert.equal(c.length, 2);
    assert.deepEqual(c[1].events, { [EVENT.putFull]: { data: cur, version: cur.meta.version } });

    await patchUser('default', u.id, [{ op: 'replace', path: 'active', value: true }]);
    await publish();
    c = (await sets('default', rcv)).slice(before);
    cur = await getUser('default', u.id);
    assert.deepEqual(c[2].events, {
      [EVENT.patchFull]: { data: cur, version: cur.meta.version },
      [EVENT.activate]: {},
    });

    await deleteUser('default', u.id);
    await publish();
    c = (await sets('default', rcv)).slice(before);
    assert.equal(c.length, 4);
    const seqs = await seqsOf('default', u.id);
    assertEnvelope(c[3], 'default', aud, changeTxn('default', seqs[4]), `/Users/${u.id}`);
    assert.deepEqual(c[3].events, { [EVENT.delete]: {} });
    // Every change row is its own SET, with its own txn.
    assert.deepEqual(
      c.map((x) => x.txn),
      seqs.slice(1).map((s) => changeTxn('default', s)),
    );
  });

  test('no coalescing: a create and patches in one window are each published, all with the current representation', async () => {
    const u = await createUser('default', { userName: uniq('carol-') });
    await patchUser('default', u.id, [{ op: 'replace', path: 'displayName', value: 'C1' }]);
    await patchUser('default', u.id, [{ op: 'replace', path: 'displayName', value: 'C2' }]);
    const before = (await outbox('default', rcv)).length;
    await publish();
    const c = (await sets('default', rcv)).slice(before);
    const cur = await getUser('default', u.id);
    assert.deepEqual(
      c.map((x) => Object.keys(x.events as object)),
      [[EVENT.createFull], [EVENT.patchFull], [EVENT.patchFull]],
    );
    for (const x of c) {
      const payload = Object.values(x.events as Record<string, { data: unknown; version: string }>)[0];
      assert.deepEqual(payload, { data: cur, version: cur.meta.version });
    }
  });

  test('a resource created and deleted before publishing: only prov:delete', async () => {
    const u = await createUser('default', { userName: uniq('gone-') });
    await deleteUser('default', u.id);
    const before = (await outbox('default', rcv)).length;
    await publish();
    const c = (await sets('default', rcv)).slice(before);
    assert.deepEqual(
      c.map((x) => x.events),
      [{ [EVENT.delete]: {} }],
    );
  });

  test('a rolled-back write emits nothing; a second round with nothing new writes nothing', async () => {
    const before = (await outbox('default', rcv)).length;
    const rt = t.app.registry.resourceType('User')!;
    const ctx = { tenant: 'default', baseUrl: ISS, limits: t.app.config };
    await assert.rejects(
      t.app.service.inTransaction(async (transaction) => {
        await t.app.service.create({ ...ctx, transaction }, rt, {
          schemas: [USER],
          userName: uniq('rolled-'),
        });
        throw new Error('abort');
      }),
      /abort/,
    );
    const r1 = await publish();
    const r2 = await publish();
    assert.equal(r1.rows + r2.rows, 0);
    // Nothing of the feed's types in the window: no transaction at all (the position waits).
    assert.equal(r2.steps, 0);
    assert.equal((await outbox('default', rcv)).length, before);
  });

  test('Groups are not in a Users feed', async () => {
    const before = (await outbox('default', rcv)).length;
    const g = await t.request('POST', '/scim/v2/Groups', {
      body: { schemas: [GROUP], displayName: uniq('g-') },
    });
    assert.equal(g.status, 201);
    await publish();
    assert.equal((await outbox('default', rcv)).length, before);
  });
});

describe('publisher: receivers, forms, copies', () => {
  test('notice form: attributes (every attribute the resource has) and version, no data', async () => {
    const f = await feed('default', { name: 'notice', resourceTypes: ['User'], form: 'notice' });
    const r = await receiver('default', f);
    const u = await createUser('default', {
      userName: uniq('dave-'),
      name: { givenName: 'Dave' },
      password: 'Pw12345678!',
    });
    await patchUser('default', u.id, [{ op: 'add', path: 'title', value: 'Eng' }]);
    await publish();
    const c = await sets('default', r);
    const cur = await getUser('default', u.id);
    assert.deepEqual(c[0].events, {
      [EVENT.createNotice]: { attributes: ['userName', 'name', 'title'], version: cur.meta.version },
    });
    assert.deepEqual(c[1].events, {
      [EVENT.patchNotice]: { attributes: ['userName', 'name', 'title'], version: cur.meta.version },
    });
  });

  test('two feeds and two receivers: copies of one change share txn and differ in jti; audience override; unsigned; a paused receiver’s copy is queued', async () => {
    const f1 = await feed('default', { name: 'one', resourceTypes: ['User'], form: 'full' });
    const f2 = await feed('default', { name: 'two', resourceTypes: ['User'], form: 'notice' });
    const a = await receiver('default', f1);
    const b = await receiver('default', f1, { audience: 'https://rp.example/aud', unsigned: true });
    const c = await receiver('default', f2);
    const paused = await receiver('default', f2, { paused: true });
    const u = await createUser('default', { userName: uniq('erin-') });
    await publish();
    const [ra] = await outbox('default', a);
    const [rb] = await outbox('default', b);
    const [rc] = await outbox('default', c);
    const [rp] = await outbox('default', paused);
    assert.equal(rp.state, 'pending');
    const [seq] = await seqsOf('default', u.id);
    for (const r of [ra, rb, rc, rp]) assert.equal(r.txn, changeTxn('default', seq));
    assert.equal(new Set([ra.jti, rb.jti, rc.jti, rp.jti]).size, 4);
    assert.equal(decodeJwt(ra.set_jwt).aud, `${ISS}/Feeds/${f1}`);
    assert.equal(decodeJwt(rb.set_jwt).aud, 'https://rp.example/aud');
    assert.equal(decodeJwt(rc.set_jwt).aud, `${ISS}/Feeds/${f2}`);
    assert.deepEqual(decodeProtectedHeader(rb.set_jwt), { alg: 'none', typ: 'secevent+jwt' });
    assert.equal(rb.set_jwt.endsWith('.'), true);
    assert.equal(decodeProtectedHeader(ra.set_jwt).alg, 'ES256');
    assert.deepEqual(Object.keys(decodeJwt(rc.set_jwt).events as object), [EVENT.createNotice]);
  });

  test('a Group is published after the Users it references (seq order across types)', async () => {
    const f = await feed('default', { name: 'both', resourceTypes: ['User', 'Group'], form: 'full' });
    const r = await receiver('default', f);
    const u = await createUser('default', { userName: uniq('m-') });
    const g = await t.request('POST', '/scim/v2/Groups', {
      body: { schemas: [GROUP], displayName: uniq('team-'), members: [{ value: u.id }] },
    });
    assert.equal(g.status, 201, g.text);
    await publish();
    const rows = await outbox('default', r);
    assert.deepEqual(
      rows.map((x) => [x.resource_type, x.resource_id]),
      [
        ['User', u.id],
        ['Group', g.body.id],
      ],
    );
    const data = (
      decodeJwt(rows[1].set_jwt).events as Record<string, { data: { members: { value: string }[] } }>
    )[EVENT.createFull].data;
    assert.deepEqual(
      data.members.map((m) => m.value),
      [u.id],
    );
  });
});

describe('publisher: filter feed scope', () => {
  test('enter → feed:add + prov:patch; leave → feed:remove (not prov:delete); delete of a member → prov:delete; non-members → nothing', async () => {
    const f = await feed('default', {
      name: 'engineers',
      resourceTypes: ['User'],
      filter: 'title eq "Engineer"',
      form: 'full',
    });
    const r = await receiver('default', f);
    const eng = await createUser('default', { userName: uniq('eng-'), title: 'Engineer', active: true });
    const other = await createUser('default', { userName: uniq('oth-'), title: 'Sales' });
    await publish();
    let c = await sets('default', r);
    assert.equal(c.length, 1);
    assert.equal((c[0].sub_id as { uri: string }).uri, `/Users/${eng.id}`);
    assert.deepEqual(Object.keys(c[0].events as object), [EVENT.createFull, EVENT.activate]);

    // eng leaves, other enters.
    await patchUser('default', eng.id, [{ op: 'replace', path: 'title', value: 'Manager' }]);
    await patchUser('default', other.id, [{ op: 'replace', path: 'title', value: 'Engineer' }]);
    await publish();
    c = await sets('default', r);
    assert.equal(c.length, 3);
    assert.deepEqual(c[1].sub_id, { format: 'scim', uri: `/Users/${eng.id}` });
    assert.deepEqual(c[1].events, { [EVENT.feedRemove]: {} });
    const cur = await getUser('default', other.id);
    assert.deepEqual(c[2].events, {
      [EVENT.feedAdd]: {},
      [EVENT.patchFull]: { data: cur, version: cur.meta.version },
    });
    const members = await t.request('GET', `/admin/v1/tenants/default/feeds/${f}/members`);
    assert.deepEqual(
      members.body.members.map((m: { resourceId: string }) => m.resourceId),
      [other.id],
    );

    // A change of a non-member that still does not match: nothing. Its delete: nothing.
    await patchUser('default', eng.id, [{ op: 'replace', path: 'displayName', value: 'x' }]);
    await deleteUser('default', eng.id);
    // Delete of a member: prov:delete only.
    await deleteUser('default', other.id);
    await publish();
    c = await sets('default', r);
    assert.equal(c.length, 4);
    assert.deepEqual(c[3].sub_id, { format: 'scim', uri: `/Users/${other.id}` });
    assert.deepEqual(c[3].events, { [EVENT.delete]: {} });
    const after = await t.request('GET', `/admin/v1/tenants/default/feeds/${f}`);
    assert.equal(after.body.memberCount, 0);
  });

  test('a filter feed starting now knows the resources that match already: their delete is published', async () => {
    const u = await createUser('default', { userName: uniq('pre-'), title: 'Pilot', externalId: uniq('x-') });
    const f = await feed('default', {
      name: 'pilots',
      resourceTypes: ['User'],
      filter: 'title eq "Pilot"',
      form: 'notice',
    });
    const r = await receiver('default', f);
    const view = await t.request('GET', `/admin/v1/tenants/default/feeds/${f}`);
    assert.equal(view.body.memberCount, 1);
    await deleteUser('default', u.id);
    await publish();
    const c = await sets('default', r);
    assert.equal(c.length, 1);
    assert.deepEqual(c[0].sub_id, { format: 'scim', uri: `/Users/${u.id}`, externalId: u.externalId });
    assert.deepEqual(c[0].events, { [EVENT.delete]: {} });
  });
});

describe('publisher: explicit members', () => {
  test('feed:add (with the data in full form), member changes published, others not, feed:remove', async () => {
    const f = await feed('default', {
      name: 'picked',
      resourceTypes: ['User'],
      explicitMembers: true,
      form: 'full',
    });
    const r = await receiver('default', f);
    const picked = await createUser('default', { userName: uniq('pick-'), active: true });
    const other = await createUser('default', { userName: uniq('nopick-') });
    await publish();
    assert.equal((await outbox('default', r)).length, 0);

    const add = await t.request('POST', `/admin/v1/tenants/default/feeds/${f}/members`, {
      body: { resourceId: picked.id },
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(add.status, 201, add.text);
    assert.deepEqual(
      { ...add.body, added: undefined },
      { resourceId: picked.id, resourceType: 'User', active: true, added: undefined },
    );
    let c = await sets('default', r);
    const cur = await getUser('default', picked.id);
    assert.equal(c.length, 1);
    assertEnvelope(c[0], 'default', `${ISS}/Feeds/${f}`, c[0].txn as string, `/Users/${picked.id}`);
    assert.match(c[0].txn as string, /^[0-9a-f]{32}$/);
    assert.deepEqual(c[0].events, {
      [EVENT.feedAdd]: {},
      [EVENT.putFull]: { data: cur, version: cur.meta.version },
    });

    await patchUser('default', picked.id, [{ op: 'replace', path: 'active', value: false }]);
    await patchUser('default', other.id, [{ op: 'replace', path: 'active', value: false }]);
    await publish();
    c = await sets('default', r);
    assert.equal(c.length, 2);
    assert.deepEqual(Object.keys(c[1].events as object), [EVENT.patchFull, EVENT.deactivate]);

    const del = await t.request('DELETE', `/admin/v1/tenants/default/feeds/${f}/members/${picked.id}`);
    assert.equal(del.status, 204, del.text);
    c = await sets('default', r);
    assert.equal(c.length, 3);
    assert.deepEqual(c[2].sub_id, { format: 'scim', uri: `/Users/${picked.id}` });
    assert.deepEqual(c[2].events, { [EVENT.feedRemove]: {} });
    // No longer a member: its changes are not published.
    await patchUser('default', picked.id, [{ op: 'replace', path: 'active', value: true }]);
    await publish();
    assert.equal((await sets('default', r)).length, 3);
  });

  test('notice form: feed:add alone', async () => {
    const f = await feed('default', {
      name: 'picked-n',
      resourceTypes: ['User'],
      explicitMembers: true,
      form: 'notice',
    });
    const r = await receiver('default', f);
    const u = await createUser('default', { userName: uniq('pn-') });
    const add = await t.request('POST', `/admin/v1/tenants/default/feeds/${f}/members`, {
      body: { resourceId: u.id, resourceType: 'User' },
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(add.status, 201, add.text);
    const c = await sets('default', r);
    assert.deepEqual(
      c.map((x) => x.events),
      [{ [EVENT.feedAdd]: {} }],
    );
  });
});

describe('publisher: tenants, starting point, crashes, batches', () => {
  test("a feed never sees another tenant's changes; iss and aud name its tenant", async () => {
    const f = await feed('acme', { name: 'acme users', resourceTypes: ['User'], form: 'full' });
    const r = await receiver('acme', f);
    await createUser('default', { userName: uniq('dflt-') });
    await createUser('beta', { userName: uniq('beta-') });
    const mine = await createUser('acme', { userName: uniq('acme-') });
    await publish();
    const rows = await outbox('acme', r);
    assert.deepEqual(
      rows.map((x) => x.resource_id),
      [mine.id],
    );
    const c = decodeJwt(rows[0].set_jwt);
    const [seq] = await seqsOf('acme', mine.id);
    assertEnvelope(
      c as Record<string, unknown>,
      'acme',
      `http://scimd.test/tenants/acme/scim/v2/Feeds/${f}`,
      changeTxn('acme', seq),
      `/Users/${mine.id}`,
    );
    // Signed with acme's key: verifies with acme's JWKS.
    const jwks = JSON.parse(
      (await t.request('GET', '/tenants/acme/.well-known/jwks.json', { token: false })).text,
    );
    await jwtVerify(rows[0].set_jwt, createLocalJWKSet(jwks as JSONWebKeySet), { typ: 'secevent+jwt' });
  });

  test('from: beginning replays the existing resources of the retained log; from: now does not', async () => {
    const u1 = await createUser('beta', { userName: uniq('b1-') });
    const u2 = await createUser('beta', { userName: uniq('b2-') });
    const fb = await feed('beta', {
      name: 'replay',
      resourceTypes: ['User'],
      form: 'notice',
      from: 'beginning',
    });
    const fn = await feed('beta', { name: 'now', resourceTypes: ['User'], form: 'notice', from: 'now' });
    const rb = await receiver('beta', fb);
    const rn = await receiver('beta', fn);
    await publish();
    const replayed = (await outbox('beta', rb)).map((x) => x.resource_id);
    assert.ok(replayed.includes(u1.id) && replayed.includes(u2.id));
    assert.equal(replayed.indexOf(u1.id) < replayed.indexOf(u2.id), true);
    assert.equal((await outbox('beta', rn)).length, 0);
  });

  test('a publish step that fails writes nothing and moves nothing; the next round writes the same events (same txn)', async () => {
    const f = await feed('acme', { name: 'crash', resourceTypes: ['User'], form: 'notice' });
    const r = await receiver('acme', f);
    const u = await createUser('acme', { userName: uniq('crash-') });
    const before = (await t.request('GET', `/admin/v1/tenants/acme/feeds/${f}`)).body.position;
    // Every outbox insert fails from now on, as a crash in the middle of the transaction would.
    await t.app.db.query('ALTER TABLE event_outbox ADD CONSTRAINT test_crash CHECK (false) NOT VALID');
    try {
      await settleChangeLog(t.app);
      await assert.rejects(t.app.publisher.publishOnce());
    } finally {
      await t.app.db.query('ALTER TABLE event_outbox DROP CONSTRAINT test_crash');
    }
    assert.equal((await outbox('acme', r)).length, 0);
    assert.equal((await t.request('GET', `/admin/v1/tenants/acme/feeds/${f}`)).body.position, before);
    await publish();
    const rows = await outbox('acme', r);
    const [seq] = await seqsOf('acme', u.id);
    assert.deepEqual(
      rows.map((x) => [x.resource_id, x.txn, x.event_uris]),
      [[u.id, changeTxn('acme', seq), [EVENT.createNotice]]],
    );
    assert.notEqual((await t.request('GET', `/admin/v1/tenants/acme/feeds/${f}`)).body.position, before);
  });

  test('a large window is published in several transactions, in seq order, each row once', async () => {
    const f = await feed('beta', { name: 'batched', resourceTypes: ['User'], form: 'notice' });
    const r = await receiver('beta', f);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createUser('beta', { userName: uniq('batch-') })).id);
    const small = new Publisher({
      config: t.app.config,
      service: t.app.service,
      tenants: new TenantDirectory(t.app.db),
      signingKeys: t.app.signingKeys,
      signal: t.app.outboxSignal,
      batchSize: 2,
    });
    await settleChangeLog(t.app);
    const first = await small.step('beta', f);
    assert.deepEqual(first, { done: false, committed: true, sets: 2, rows: 2 });
    const mid = (await t.request('GET', `/admin/v1/tenants/beta/feeds/${f}`)).body;
    assert.equal(typeof mid.publishing.windowEnd, 'string');
    assert.equal(mid.publishing.afterSeq, (await seqsOf('beta', ids[1]))[0]);
    assert.deepEqual(await small.step('beta', f), { done: false, committed: true, sets: 2, rows: 2 });
    assert.deepEqual(await small.step('beta', f), { done: true, committed: true, sets: 1, rows: 1 });
    const done = (await t.request('GET', `/admin/v1/tenants/beta/feeds/${f}`)).body;
    assert.equal(done.publishing, undefined);
    assert.deepEqual(
      (await outbox('beta', r)).map((x) => x.resource_id),
      ids,
    );
  });

  test('publishing signals the receivers it wrote rows for', async () => {
    const f = await feed('beta', { name: 'signal', resourceTypes: ['User'], form: 'notice' });
    const r = await receiver('beta', f);
    await publish();
    let woke = false;
    const waiting = t.app.outboxSignal.wait(5_000, 'beta', r).then(() => (woke = true));
    await createUser('beta', { userName: uniq('sig-') });
    const started = Date.now();
    await publish();
    await waiting;
    assert.equal(woke, true);
    assert.ok(Date.now() - started < 4_000);
  });
});

describe('publisher: several nodes, background worker', () => {
  test('two publishers racing (two nodes) publish every change exactly once, in seq order', async () => {
    const f = await feed('beta', { name: 'race', resourceTypes: ['User'], form: 'notice' });
    const r = await receiver('beta', f);
    const nodes = [1, 2].map(
      () =>
        new Publisher({
          config: t.app.config,
          service: t.app.service,
          tenants: new TenantDirectory(t.app.db),
          signingKeys: t.app.signingKeys,
          signal: t.app.outboxSignal,
          batchSize: 3,
        }),
    );
    const ids: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) ids.push((await createUser('beta', { userName: uniq('race-') })).id);
      await settleChangeLog(t.app);
      await Promise.all(nodes.map((p) => p.publishOnce()));
    }
    await settleChangeLog(t.app);
    await Promise.all(nodes.map((p) => p.publishOnce()));
    const rows = await outbox('beta', r);
    assert.deepEqual(
      rows.map((x) => x.resource_id),
      ids,
    );
    assert.equal(new Set(rows.map((x) => x.txn)).size, ids.length);
  });

  test('a write wakes the publisher: published long before its next round', async () => {
    // A round every 10 minutes: only the wake-up of the write can publish within the wait below.
    const live = await startTestApp({ eventPublishIntervalMs: 600_000 });
    try {
      const created = await live.request('POST', '/admin/v1/tenants/default/feeds', {
        body: { id: 'woken', name: 'woken', resourceTypes: ['User'], form: 'notice' },
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(created.status, 201, created.text);
      await live.app.db.query(
        `INSERT INTO event_receivers (tenant_id, id, feed_id, name, delivery, poll_client_id, paused)
         VALUES ('default', 'woken-r', 'woken', 'r', 'poll', 'c', false)`,
      );
      const u = await live.request('POST', '/scim/v2/Users', {
        body: { schemas: [USER], userName: 'woken-user' },
      });
      assert.equal(u.status, 201, u.text);
      let rows: { resource_id: string }[] = [];
      for (let i = 0; i < 100 && rows.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        rows = (
          await live.app.db.query<{ resource_id: string }>(
            `SELECT resource_id FROM event_outbox WHERE tenant_id = 'default' AND receiver_id = 'woken-r'`,
          )
        ).rows;
      }
      assert.deepEqual(rows, [{ resource_id: u.body.id }]);
    } finally {
      await live.close();
    }
  });

  test('with background workers on, the publisher worker publishes by itself', async () => {
    const live = await startTestApp({ eventPublishIntervalMs: 20 });
    try {
      const created = await live.request('POST', '/admin/v1/tenants/default/feeds', {
        body: { id: 'live', name: 'live', resourceTypes: ['User'], form: 'full' },
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(created.status, 201, created.text);
      await live.app.db.query(
        `INSERT INTO event_receivers (tenant_id, id, feed_id, name, delivery, poll_client_id, paused)
         VALUES ('default', 'live-r', 'live', 'r', 'poll', 'c', false)`,
      );
      const u = await live.request('POST', '/scim/v2/Users', {
        body: { schemas: [USER], userName: 'live-user' },
      });
      assert.equal(u.status, 201, u.text);
      let rows: { resource_id: string; event_uris: string[] }[] = [];
      for (let i = 0; i < 600 && rows.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        rows = (
          await live.app.db.query<{ resource_id: string; event_uris: string[] }>(
            `SELECT resource_id, event_uris FROM event_outbox WHERE tenant_id = 'default' AND receiver_id = 'live-r'`,
          )
        ).rows;
      }
      assert.deepEqual(rows, [{ resource_id: u.body.id, event_uris: [EVENT.createFull] }]);
    } finally {
      await live.close();
    }
  });
});
