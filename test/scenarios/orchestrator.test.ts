/**
 * Orchestrator roles of the SCIM use-cases draft (figures 8-13), with two scimd processes:
 *   idm  the identity managers: tenants hr-a, hr-b, hr-c (three IdMs, "clients A, B and C") and its
 *        default tenant (a single-tenant IdM server);
 *   rs   the resource subscriber: tenants a, b, c receive the IdMs' pushes (RS as server); tenants
 *        pa, pb, ps pull from the IdMs (RS as client, delta with tokens).
 * Everything is configured through the admin API over HTTP and SCIM, as docs/use-cases/ shows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  addClient,
  addConnection,
  addFlow,
  by,
  content,
  createTenant,
  ENT,
  convergesByTriggers,
  getFlow,
  GROUP,
  http,
  listAll,
  ok,
  PATCH_OP,
  runFlow,
  runItems,
  runOk,
  sorted,
  startNode,
  startNodes,
  USER,
  type Json,
  type Node,
} from './lib.ts';

let idm: Node;
let rs: Node;

before(async () => {
  [idm, rs] = await startNodes(startNode('idm'), startNode('rs'));
});
after(async () => {
  await Promise.all([idm?.close(), rs?.close()]);
});

function user(userName: string, given: string, family: string, extra: Json = {}): Json {
  return {
    schemas: [USER, ENT],
    userName,
    externalId: `hr-${userName}`,
    name: { givenName: given, familyName: family },
    emails: [{ value: `${userName}@example.com`, type: 'work', primary: true }],
    phoneNumbers: [{ value: '+1 555 0100', type: 'work' }],
    title: 'Engineer',
    active: true,
    [ENT]: { employeeNumber: `E-${userName}`, department: 'R&D' },
    ...extra,
  };
}

/** The attributes of `r` a flow mapping `only` selects (plus schemas), as content() shows them. */
function only(r: Json, attrs: string[]): Json {
  const out: Json = {};
  for (const a of attrs) if (r[a] !== undefined) out[a] = r[a];
  // An extension URN stays in schemas only while the resource holds some of its attributes.
  out.schemas = (r.schemas as string[]).filter((s) => s === USER || out[s] !== undefined);
  return content(out);
}

const withoutGroups = (r: Json): Json => {
  const c = content(r);
  delete c.groups;
  return c;
};

describe('orchestrator use cases (figures 8-13)', () => {
  const hrToken: Record<string, string> = {};
  const rsToken: Record<string, string> = {};

  test('use cases 17, 19, 21: pushes from IdMs A, B and C land in isolated RS tenants, each with the attribute set its flow selects', async () => {
    for (const x of ['a', 'b', 'c']) {
      await createTenant(idm, `hr-${x}`);
      hrToken[x] = await addClient(idm, `hr-${x}`, 'hr', ['scim:read', 'scim:write']);
      await createTenant(rs, x);
      rsToken[x] = await addClient(rs, x, 'idm', ['User:read', 'User:write', 'Group:read', 'Group:write']);
      await addConnection(idm, `hr-${x}`, 'rs', rs.scim(x), rsToken[x]);
    }
    const hr = (x: string) => idm.scim(`hr-${x}`);
    const post = (x: string, type: string, body: Json) => ok('POST', `${hr(x)}/${type}`, hrToken[x], body);
    await post('a', 'Users', user('alice', 'Alice', 'Archer'));
    const ann = await post('a', 'Users', user('ann', 'Ann', 'Ames'));
    const bob = await post('b', 'Users', user('bob', 'Bob', 'Baker'));
    const bert = await post('b', 'Users', user('bert', 'Bert', 'Brown'));
    await post('b', 'Groups', {
      schemas: [GROUP],
      displayName: 'B-ops',
      members: [{ value: bob.id }, { value: bert.id }],
    });
    await post('c', 'Users', user('carol', 'Carol', 'Cole'));

    // Each target gets the attribute set configured for it (21): A sends identity and e-mail only,
    // B everything but phone numbers and the employee number, C everything.
    const onlyA = ['userName', 'externalId', 'name', 'emails', 'active'];
    const flows: Record<string, Json> = {
      a: { resourceTypes: ['User'], mapping: { only: onlyA, rules: [] } },
      b: {
        resourceTypes: ['User', 'Group'],
        mapping: { rules: [{ drop: 'phoneNumbers' }, { drop: `${ENT}:employeeNumber` }] },
      },
      c: { resourceTypes: ['User', 'Group'] },
    };
    for (const x of ['a', 'b', 'c']) {
      await addFlow(idm, `hr-${x}`, {
        id: 'to-rs',
        connectionId: 'rs',
        direction: 'push',
        mode: 'changes',
        ...flows[x],
      });
    }
    // The initial load by hand, then every later edit pushed by itself (local-change trigger).
    const first: Record<string, Json> = {};
    first.a = await runOk(idm, 'hr-a', 'to-rs', { created: 2 });
    first.b = await runOk(idm, 'hr-b', 'to-rs', { created: 3 });
    first.c = await runOk(idm, 'hr-c', 'to-rs', { created: 1 });
    for (const x of ['a', 'b', 'c'])
      await ok('PATCH', `${idm.admin(`hr-${x}`)}/flows/to-rs`, idm.adminToken, { onLocalChange: true });

    const patch = (x: string, path: string, ops: Json[]) =>
      ok('PATCH', `${hr(x)}/${path}`, hrToken[x], { schemas: [PATCH_OP], Operations: ops });
    const alice = (await listAll(hr('a'), hrToken.a, 'Users', 'userName eq "alice"'))[0];
    await patch('a', `Users/${alice.id}`, [
      { op: 'replace', path: 'name.givenName', value: 'Alicia' },
      { op: 'replace', path: 'title', value: 'CTO' },
    ]);
    await ok('DELETE', `${hr('a')}/Users/${ann.id}`, hrToken.a);
    const group = (await listAll(hr('b'), hrToken.b, 'Groups'))[0];
    await patch('b', `Groups/${group.id}`, [{ op: 'remove', path: `members[value eq "${bert.id}"]` }]);
    await post('c', 'Users', user('cid', 'Cid', 'Cruz'));

    const expectUsers = async (x: string, shape: (r: Json) => Json) => {
      const src = await listAll(hr(x), hrToken[x], 'Users');
      const dst = await listAll(rs.scim(x), rsToken[x], 'Users');
      assert.deepEqual(
        sorted(dst.map((u) => u.userName)),
        sorted(src.map((u) => u.userName)),
        `users of RS tenant ${x}`,
      );
      const d = by(dst, 'userName');
      for (const s of src)
        assert.deepEqual(withoutGroups(d.get(s.userName)!), shape(s), `${x}/${s.userName}`);
      return d;
    };
    await convergesByTriggers(
      async () => {
        await expectUsers('a', (s) => only(s, onlyA));
        const b = await expectUsers('b', (s) => {
          const c = withoutGroups(s);
          delete c.phoneNumbers;
          delete c[ENT].employeeNumber;
          return c;
        });
        await expectUsers('c', withoutGroups);
        // B's group: its members are the RS's own ids of bob (bert was removed).
        const groups = await listAll(rs.scim('b'), rsToken.b, 'Groups');
        assert.deepEqual(
          groups.map((g) => ({ displayName: g.displayName, members: g.members.map((m: Json) => m.value) })),
          [{ displayName: 'B-ops', members: [b.get('bob')!.id] }],
        );
      },
      async () => {
        for (const x of ['a', 'b', 'c']) await runFlow(idm, `hr-${x}`, 'to-rs');
      },
    );
    const rsA = by(await listAll(rs.scim('a'), rsToken.a, 'Users'), 'userName');
    assert.equal(rsA.get('alice')!.name.givenName, 'Alicia');
    assert.equal(rsA.get('alice')!.title, undefined, 'A never sends title');

    // The first run linked each IdM id to the RS id it created.
    for (const x of ['a', 'b', 'c']) {
      const items = await runItems(idm, `hr-${x}`, 'to-rs', first[x].id);
      const srcIds = new Set<string>();
      for (const t of ['Users', 'Groups'])
        for (const r of await listAll(hr(x), hrToken[x], t)) srcIds.add(r.id);
      const dstIds = new Set<string>();
      for (const t of x === 'a' ? ['Users'] : ['Users', 'Groups'])
        for (const r of await listAll(rs.scim(x), rsToken[x], t)) dstIds.add(r.id);
      for (const i of items) {
        assert.equal(i.action, 'create');
        assert.equal(i.outcome, 'done');
        if (i.localId === ann.id) continue; // deleted since, on both sides
        assert.ok(srcIds.has(i.localId) && dstIds.has(i.remoteId), JSON.stringify(i));
      }
    }

    // Isolation (19): A's credential is unknown to tenant b (401); B's resources are not found
    // through tenant a (404), and nothing of B or C is in A's lists.
    assert.equal((await http('GET', `${rs.scim('b')}/Users`, rsToken.a)).status, 401);
    const bobAtRs = (await listAll(rs.scim('b'), rsToken.b, 'Users', 'userName eq "bob"'))[0];
    assert.equal((await http('GET', `${rs.scim('a')}/Users/${bobAtRs.id}`, rsToken.a)).status, 404);
    assert.equal(
      (
        await http('PUT', `${rs.scim('a')}/Users/${bobAtRs.id}`, rsToken.a, {
          schemas: [USER],
          userName: 'x',
        })
      ).status,
      404,
    );
    assert.deepEqual(sorted(rsA.keys()), ['alice']);
    assert.deepEqual((await listAll(rs.scim('a'), rsToken.a, 'Groups')).length, 0);
    assert.deepEqual(sorted((await listAll(rs.scim('c'), rsToken.c, 'Users')).map((u) => u.userName)), [
      'carol',
      'cid',
    ]);
  });

  test('use cases 18, 20, 22: the RS pulls each tenant from its own IdM server with its own credentials and delta token', async () => {
    // The IdMs offer their Users to pulling consumers (22): a read-only client each.
    const pullToken: Record<string, string> = {};
    for (const src of ['hr-a', 'hr-b', 'default']) {
      pullToken[src] = await addClient(idm, src, 'rs-puller', ['User:read', 'Group:read']);
    }
    for (const name of ['dora', 'dan']) {
      await ok('POST', `${idm.scim('default')}/Users`, idm.adminToken, user(name, name, 'Default'));
    }
    // The RS reaches the IdMs; the IdMs have no connection to the RS (it is behind a firewall).
    const pulls: Record<string, string> = { pa: 'hr-a', pb: 'hr-b', ps: 'default' };
    const readToken: Record<string, string> = {};
    for (const [t, src] of Object.entries(pulls)) {
      await createTenant(rs, t);
      readToken[t] = await addClient(rs, t, 'reader', ['scim:read']);
      await addConnection(rs, t, 'idm', idm.scim(src), pullToken[src]);
      await addFlow(rs, t, {
        id: 'from-idm',
        connectionId: 'idm',
        direction: 'pull',
        mode: 'delta',
        resourceTypes: t === 'pb' ? ['User', 'Group'] : ['User'],
      });
    }
    await runOk(rs, 'pa', 'from-idm', { created: 1 }); // alice (ann was deleted above)
    await runOk(rs, 'pb', 'from-idm', { created: 3 }); // bob, bert, B-ops
    await runOk(rs, 'ps', 'from-idm', { created: 2 });
    const tokens1: Record<string, Json> = {};
    for (const t of Object.keys(pulls)) {
      const f = await getFlow(rs, t, 'from-idm');
      assert.equal(f.state.deltaMethod, 'token', `${t} uses the IdM's delta query`);
      tokens1[t] = f.state.deltaTokens;
      assert.equal(typeof f.state.deltaTokens.User, 'string');
    }
    assert.notEqual(tokens1.pa.User, tokens1.ps.User);

    // Changes at two of the IdMs; hr-b does not change.
    const amy = await ok('POST', `${idm.scim('hr-a')}/Users`, hrToken.a, user('amy', 'Amy', 'Adams'));
    const alice = (await listAll(idm.scim('hr-a'), hrToken.a, 'Users', 'userName eq "alice"'))[0];
    await ok('PATCH', `${idm.scim('hr-a')}/Users/${alice.id}`, hrToken.a, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'title', value: 'VP' }],
    });
    const def = by(await listAll(idm.scim('default'), idm.adminToken, 'Users'), 'userName');
    await ok('DELETE', `${idm.scim('default')}/Users/${def.get('dan')!.id}`, idm.adminToken);
    await ok('PATCH', `${idm.scim('default')}/Users/${def.get('dora')!.id}`, idm.adminToken, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'displayName', value: 'Dora D.' }],
    });

    // Each delta pull reads only what changed at its own source.
    const pa = await runOk(rs, 'pa', 'from-idm', { created: 1, updated: 1 });
    assert.equal(pa.total, 2);
    const pb = await runOk(rs, 'pb', 'from-idm', { created: 0, updated: 0, skipped: 0 });
    assert.equal(pb.total, 0);
    const ps = await runOk(rs, 'ps', 'from-idm', { updated: 1, deleted: 1 });
    assert.equal(ps.total, 2);
    for (const t of Object.keys(pulls)) {
      const f = await getFlow(rs, t, 'from-idm');
      assert.notEqual(f.state.deltaTokens.User, tokens1[t].User, `${t} keeps the fresh token`);
    }

    // Every pulled tenant equals its source exactly, with no duplicates and nothing of the others.
    for (const [t, src] of Object.entries(pulls)) {
      const want = await listAll(
        idm.scim(src),
        src === 'default' ? idm.adminToken : hrToken[src.slice(3)],
        'Users',
      );
      const got = await listAll(rs.scim(t), readToken[t], 'Users');
      assert.deepEqual(got.map(withoutGroups).sort(byName), want.map(withoutGroups).sort(byName), t);
    }
    const paUsers = by(await listAll(rs.scim('pa'), readToken.pa, 'Users'), 'userName');
    assert.deepEqual(sorted(paUsers.keys()), ['alice', 'amy']);
    assert.equal(paUsers.get('alice')!.title, 'VP');
    assert.equal(paUsers.get('amy')!.externalId, amy.externalId);
    const pbGroups = await listAll(rs.scim('pb'), readToken.pb, 'Groups');
    const pbUsers = by(await listAll(rs.scim('pb'), readToken.pb, 'Users'), 'userName');
    assert.deepEqual(
      pbGroups.map((g) => ({ displayName: g.displayName, members: g.members.map((m: Json) => m.value) })),
      [{ displayName: 'B-ops', members: [pbUsers.get('bob')!.id] }],
    );
    // Separate credentials: hr-a's pull token is refused by hr-b.
    assert.equal((await http('GET', `${idm.scim('hr-b')}/Users`, pullToken['hr-a'])).status, 401);
  });
});

const byName = (x: Json, y: Json) => String(x.userName).localeCompare(String(y.userName));
