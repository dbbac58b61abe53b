/**
 * Event-driven provisioning of the SCIM use-cases draft (behaviours 10, 11, 14), with two scimd
 * processes:
 *   idm  publishes its Users and Groups as RFC 9967 SETs: a `full` feed and a `notice` feed, each
 *        pushed (RFC 8935) to a tenant of p;
 *   p    tenant `rep` keeps a domain replica (full SETs, no callback), tenant `coord` is fed by
 *        co-ordinated provisioning (notice SETs, a SCIM GET back to idm for the data). In each,
 *        the applied events trigger a sync (behaviour 14): the tenant's push flow to an application
 *        (tenants `app-rep`, `app-coord`).
 * Configured through the admin API over HTTP and SCIM only, as docs/use-cases/ shows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  addClient,
  addConnection,
  addFlow,
  content,
  createTenant,
  eventually,
  GROUP,
  listAll,
  ok,
  PATCH_OP,
  runOk,
  runs,
  sorted,
  startNode,
  startNodes,
  USER,
  type Json,
  type Node,
} from './lib.ts';

let idm: Node;
let p: Node;

before(async () => {
  [idm, p] = await startNodes(startNode('idm'), startNode('p'));
});
after(async () => {
  await Promise.all([idm?.close(), p?.close()]);
});

const MODES = { rep: 'full', coord: 'notice' } as const;
type Copy = keyof typeof MODES;

const noGroups = (r: Json) => {
  const c = content(r);
  delete c.groups;
  return c;
};
const members = (g: Json) => sorted((g.members ?? []).map((m: Json) => m.value as string));

describe('event-driven use cases', () => {
  test('use cases 10, 11, 14: full SETs replicate without callback, notice SETs are fetched back, and both trigger the sync to an application', async () => {
    const adminIdm = idm.admin('default');
    const reader = await addClient(idm, 'default', 'p-reader', ['User:read', 'Group:read']);
    const readers: Record<string, string> = {};
    const appTokens: Record<string, string> = {};
    for (const [t, form] of Object.entries(MODES) as [Copy, string][]) {
      await ok('POST', `${adminIdm}/feeds`, idm.adminToken, {
        id: form,
        name: `${form} events`,
        resourceTypes: ['User', 'Group'],
        form,
        from: 'beginning',
      });
      await createTenant(p, t);
      const pushToken = await addClient(p, t, 'idm-events', ['events:push']);
      readers[t] = await addClient(p, t, 'reader', ['scim:read']);
      await ok('POST', `${p.admin(t)}/upstreams`, p.adminToken, {
        id: 'idm',
        name: 'IdM',
        issuer: idm.scim('default'),
        jwksUri: `${idm.origin}/.well-known/jwks.json`,
        scimBaseUrl: idm.scim('default'),
        // Only co-ordinated provisioning calls back; the replica must not need to.
        ...(form === 'notice' ? { callbackAuthorization: `Bearer ${reader}` } : {}),
      });
      if (t === 'rep') {
        // Domain replication's repair: an events flow from the IdM (a full pull, requested by the
        // first applied SET) runs while the SETs arrive, under the same ids (docs/sync-engine.md).
        await addConnection(p, t, 'idm', idm.scim('default'), reader);
        await addFlow(p, t, {
          id: 'idm-events',
          connectionId: 'idm',
          direction: 'pull',
          mode: 'events',
          upstreamId: 'idm',
          resourceTypes: ['User', 'Group'],
        });
      }
      // The sync the events feed: a push to an application, requested by each applied event.
      await createTenant(p, `app-${t}`);
      appTokens[t] = await addClient(p, `app-${t}`, 'p', ['scim:read', 'scim:write']);
      await addConnection(p, t, 'app', p.scim(`app-${t}`), appTokens[t]);
      await addFlow(p, t, {
        id: 'to-app',
        connectionId: 'app',
        direction: 'push',
        mode: 'changes',
        resourceTypes: ['User', 'Group'],
        onLocalChange: true,
      });
      await ok('POST', `${adminIdm}/receivers`, idm.adminToken, {
        id: `to-${t}`,
        name: `p ${t}`,
        feedId: form,
        delivery: 'push',
        endpointUrl: `${p.origin}/tenants/${t}/events/push/idm`,
        authorization: `Bearer ${pushToken}`,
      });
    }

    // Writes at the IdM.
    const S = idm.scim('default');
    const T = idm.adminToken;
    const ids: string[] = [];
    for (const n of ['uma', 'ulf', 'una', 'udo']) {
      const u = await ok('POST', `${S}/Users`, T, {
        schemas: [USER],
        userName: n,
        externalId: `idm-${n}`,
        name: { givenName: n, familyName: 'Events' },
        active: true,
      });
      ids.push(u.id as string);
    }
    const g = await ok('POST', `${S}/Groups`, T, {
      schemas: [GROUP],
      displayName: 'Nurses',
      members: ids.slice(0, 3).map((value) => ({ value })),
    });
    await ok('PATCH', `${S}/Users/${ids[1]}`, T, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'title', value: 'Head nurse' }],
    });
    await ok('PATCH', `${S}/Groups/${g.id}`, T, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'remove', path: `members[value eq "${ids[2]}"]` }],
    });
    await ok('DELETE', `${S}/Users/${ids[3]}`, T);

    const wantUsers = await listAll(S, T, 'Users');
    const wantGroups = await listAll(S, T, 'Groups');
    assert.equal(wantUsers.length, 3);
    for (const t of Object.keys(MODES) as Copy[]) {
      // The copy at p: the IdM's ids (replicas reuse them) and exactly its content.
      await eventually(async () => {
        const users = await listAll(p.scim(t), readers[t], 'Users');
        assert.deepEqual(
          users.map((u) => ({ id: u.id, ...noGroups(u) })),
          wantUsers.map((u) => ({ id: u.id, ...noGroups(u) })),
          `${t} users`,
        );
        const groups = await listAll(p.scim(t), readers[t], 'Groups');
        assert.deepEqual(
          groups.map((x) => ({ id: x.id, displayName: x.displayName, members: members(x) })),
          wantGroups.map((x) => ({ id: x.id, displayName: x.displayName, members: members(x) })),
        );
      }, 30_000);
      // The application behind p: the same users and group under its own ids.
      const appEqual = async () => {
        const users = await listAll(p.scim(`app-${t}`), appTokens[t], 'Users');
        assert.deepEqual(users.map(noGroups).sort(byName), wantUsers.map(noGroups).sort(byName), `app-${t}`);
        const groups = await listAll(p.scim(`app-${t}`), appTokens[t], 'Groups');
        const appIds = new Map(users.map((u) => [u.userName as string, u.id as string]));
        assert.deepEqual(
          groups.map((x) => ({ displayName: x.displayName, members: members(x) })),
          [{ displayName: 'Nurses', members: sorted(['uma', 'ulf'].map((n) => appIds.get(n)!)) }],
        );
      };
      let nudged = false;
      try {
        await eventually(appEqual, 15_000);
      } catch {
        // Known issue (docs/use-cases.md, "A run requested by a write can miss it"): the run the
        // last event requested may end before that write is inside its change-log window, and
        // nothing requests another. The flow's next run (a schedule, here by hand) pushes it.
        nudged = true;
        await runOk(p, t, 'to-app', undefined);
        await appEqual();
      }
      // The events started the push (trigger `event`); in `rep` the events flow's own writes may
      // start it too (trigger `change`: they are local writes of another connection's flow). No
      // run was manual but the nudge, and none failed.
      const pushed = await runs(p, t, 'to-app');
      const automatic = pushed.filter(
        (r) => r.trigger === 'event' || (t === 'rep' && r.trigger === 'change'),
      );
      assert.ok(
        automatic.some((r) => r.trigger === 'event') && automatic.some((r) => r.counts.created > 0),
        JSON.stringify(pushed),
      );
      assert.equal(pushed.length - automatic.length, nudged ? 1 : 0, JSON.stringify(pushed));
      for (const r of pushed) assert.equal(r.counts.failed, 0, JSON.stringify(r));
    }
    // The events flow ran (requested by the events) and failed nothing.
    const repairs = await runs(p, 'rep', 'idm-events');
    assert.ok(repairs.length > 0 && repairs.every((r) => r.trigger === 'event'), JSON.stringify(repairs));
    for (const r of repairs) assert.equal(r.counts.failed, 0, JSON.stringify(r));
    // No SET failed (a stale one is skipped by version); the replica has no callback credential:
    // it never needed one.
    for (const t of Object.keys(MODES)) {
      const events = await ok('GET', `${p.admin(t)}/upstreams/idm/events?count=100`, p.adminToken);
      const states = (events.events as Json[]).map((e) => e.state as string);
      assert.ok(states.length >= 7, JSON.stringify(events));
      assert.ok(
        states.every((s) => s === 'applied' || s === 'skipped'),
        JSON.stringify(events),
      );
    }
  });
});

const byName = (x: Json, y: Json) => String(x.userName).localeCompare(String(y.userName));
