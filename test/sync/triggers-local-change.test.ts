/**
 * Local-change trigger (use-case behaviour 15; the push–push chain of use case 26): SCIM writes
 * request the push flows (mode changes, onLocalChange) covering the written type within the
 * debounce; writes of the sync engine never request their own flow nor flows of the same
 * connection; other types, other tenants, disabled flows and other modes are not requested.
 * PGlite, and PostgreSQL when DATABASE_URL is set.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from '../../src/service/resources.ts';
import { LocalChangeTrigger } from '../../src/sync/triggers/local-change.ts';
import type { RunTrigger } from '../../src/sync/types.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { addConnection, addFlow, clearRequests, requestedTriggers, requests } from './triggers-fixtures.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
let t: TestApp;
let acmeToken: string;

before(async () => {
  t = await startTestApp({ backgroundWorkers: false });
  await t.app.admin.createTenant({ id: 'acme' });
  await t.app.admin.createClient('acme', { id: 'acme-writer', name: 'acme writer', scopes: ['scim:write'] });
  acmeToken = (await t.app.admin.issueToken('acme', 'acme-writer')).token;
  const db = t.app.db;
  for (const c of ['crm', 'hr']) await addConnection(db, 'default', c);
  await addConnection(db, 'acme', 'crm');
  const push = { direction: 'push', mode: 'changes', onLocalChange: true } as const;
  await addFlow(db, 'default', { ...push, id: 'users-to-crm', connection: 'crm', types: ['User', 'Group'] });
  await addFlow(db, 'default', { ...push, id: 'groups-to-crm', connection: 'crm', types: ['Group'] });
  await addFlow(db, 'default', { ...push, id: 'users-to-hr', connection: 'hr', types: ['user'] });
  await addFlow(db, 'default', {
    ...push,
    id: 'not-on-change',
    connection: 'crm',
    types: ['User'],
    onLocalChange: false,
  });
  await addFlow(db, 'default', {
    ...push,
    id: 'full-push',
    connection: 'crm',
    types: ['User'],
    mode: 'full',
  });
  await addFlow(db, 'default', {
    ...push,
    id: 'disabled',
    connection: 'crm',
    types: ['User'],
    enabled: false,
  });
  await addFlow(db, 'default', {
    id: 'pull-from-hr',
    connection: 'hr',
    direction: 'pull',
    mode: 'full',
    types: ['User'],
  });
  await addFlow(db, 'acme', { ...push, id: 'acme-users', connection: 'crm', types: ['User'] });
});
after(async () => {
  await t?.close();
});
beforeEach(async () => {
  await t.app.syncTriggers.idle();
  await clearRequests(t.app.db);
});

const ctx = (clientId: string, tenant = 'default'): RequestContext => ({
  tenant,
  baseUrl: 'http://scimd.test/scim/v2',
  clientId,
  limits: t.app.config,
});
const userType = () => t.app.registry.resourceType('User')!;

describe('behaviour 15: local-change trigger', () => {
  test('a SCIM POST requests the push flows covering Users within the debounce (200 ms)', async () => {
    const start = Date.now();
    const res = await t.request('POST', '/scim/v2/Users', { body: { schemas: [USER], userName: 'alice' } });
    assert.equal(res.status, 201, res.text);
    let found: Record<string, RunTrigger> = {};
    while (Object.keys(found).length === 0 && Date.now() - start < 5_000) {
      await new Promise((r) => setTimeout(r, 20));
      found = await requestedTriggers(t.app.db, 'default');
    }
    const elapsed = Date.now() - start;
    assert.deepEqual(found, { 'users-to-crm': 'change', 'users-to-hr': 'change' });
    assert.ok(elapsed < 1_500, `requested after ${elapsed} ms`);
    const r = await requests(t.app.db, 'default');
    assert.equal(r['users-to-crm'].at.getTime(), r['users-to-hr'].at.getTime());
    assert.deepEqual(await requestedTriggers(t.app.db, 'acme'), {});
  });

  test('PATCH and DELETE request too; a Group write requests the flows covering Groups only', async () => {
    const u = await t.request('POST', '/scim/v2/Users', { body: { schemas: [USER], userName: 'bob' } });
    await t.app.syncTriggers.idle();
    await clearRequests(t.app.db);
    const patch = await t.request('PATCH', `/scim/v2/Users/${u.body.id}`, {
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', path: 'displayName', value: 'Bob' }],
      },
    });
    assert.equal(patch.status, 200, patch.text);
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {
      'users-to-crm': 'change',
      'users-to-hr': 'change',
    });
    await clearRequests(t.app.db);
    assert.equal((await t.request('DELETE', `/scim/v2/Users/${u.body.id}`)).status, 204);
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {
      'users-to-crm': 'change',
      'users-to-hr': 'change',
    });
    await clearRequests(t.app.db);
    const g = await t.request('POST', '/scim/v2/Groups', {
      body: { schemas: [GROUP], displayName: 'sales' },
    });
    assert.equal(g.status, 201, g.text);
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {
      'groups-to-crm': 'change',
      'users-to-crm': 'change',
    });
  });

  test('another tenant: only its own flows', async () => {
    const res = await t.request('POST', '/tenants/acme/scim/v2/Users', {
      token: acmeToken,
      body: { schemas: [USER], userName: 'carol' },
    });
    assert.equal(res.status, 201, res.text);
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'acme'), { 'acme-users': 'change' });
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {});
  });

  test('writes of the sync engine: never its own flow nor a flow of the same connection (no echo)', async () => {
    // The pull from hr stores a User: pushed to crm (upstream → downstream), not back to hr.
    await t.app.service.create(ctx('sync:pull-from-hr'), userType(), { schemas: [USER], userName: 'dave' });
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), { 'users-to-crm': 'change' });
    await clearRequests(t.app.db);
    // A write of users-to-crm itself: not users-to-crm, nor groups-to-crm (same connection).
    await t.app.service.create(ctx('sync:users-to-crm'), t.app.registry.resourceType('Group')!, {
      schemas: [GROUP],
      displayName: 'ops',
    });
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {});
    await t.app.service.create(ctx('sync:users-to-crm'), userType(), { schemas: [USER], userName: 'erin' });
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), { 'users-to-hr': 'change' });
  });

  test('writes of the events applier (upstream:<id>) are left to the event trigger', async () => {
    await t.app.service.create(ctx('upstream:a'), userType(), { schemas: [USER], userName: 'frank' });
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {});
    // A JIT sign-in is a local change like any other client's.
    await t.app.service.create(ctx('jit:oidc'), userType(), { schemas: [USER], userName: 'gina' });
    await t.app.syncTriggers.idle();
    assert.deepEqual(await requestedTriggers(t.app.db, 'default'), {
      'users-to-crm': 'change',
      'users-to-hr': 'change',
    });
  });

  test('a burst of writes makes one request per tenant; what is pending at stop is still stored', async () => {
    const calls: [string, string[], RunTrigger][] = [];
    const trigger = new LocalChangeTrigger({
      db: t.app.db,
      request: async (tenant, ids, trig) => {
        calls.push([tenant, ids, trig]);
        return ids;
      },
      debounceMs: 300,
    });
    for (let i = 0; i < 100; i++) {
      trigger.notify({ tenant: 'default', resourceType: 'User', clientId: `client-${i % 3}` });
      trigger.notify({ tenant: 'acme', resourceType: 'User' });
    }
    await trigger.idle();
    assert.deepEqual(calls, [
      ['default', ['users-to-crm', 'users-to-hr'], 'change'],
      ['acme', ['acme-users'], 'change'],
    ]);
    calls.length = 0;
    trigger.notify({ tenant: 'default', resourceType: 'Group', clientId: 'sync:users-to-hr' });
    await trigger.stop();
    assert.deepEqual(calls, [['default', ['groups-to-crm', 'users-to-crm'], 'change']]);
    trigger.notify({ tenant: 'default', resourceType: 'User' });
    await trigger.idle();
    assert.equal(calls.length, 1);
  });
});
