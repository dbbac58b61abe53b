/**
 * Attribute authority, reconciliation, masking, last mile and JIT (use-case behaviours 37-46, 48),
 * with two scimd processes:
 *   idm  the identity manager P (tenants corp, corp2, corp3);
 *   app  the applications: crm (owns e-mail, pushes it back), hrapp (P pushes and pulls it, the
 *        drift target), analytics (gets masked users), portal (a last-mile pull plus OIDC JIT).
 * Configured through the admin API over HTTP and SCIM only, as docs/use-cases/ shows.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import {
  addClient,
  addConnection,
  addFlow,
  by,
  content,
  createTenant,
  eventually,
  getFlow,
  http,
  listAll,
  ok,
  PATCH_OP,
  runItems,
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
let app: Node;

before(async () => {
  [idm, app] = await startNodes(startNode('idm'), startNode('app'));
});
after(async () => {
  await Promise.all([idm?.close(), app?.close()]);
});

const person = (userName: string, extra: Json = {}): Json => ({
  schemas: [USER],
  userName,
  externalId: `idm-${userName}`,
  name: { givenName: userName, familyName: 'Owner' },
  title: 'Engineer',
  active: true,
  ...extra,
});
const replace = (path: string, value: unknown) => ({
  schemas: [PATCH_OP],
  Operations: [{ op: 'replace', path, value }],
});
const mail = (v: string) => [{ value: v, type: 'work', primary: true }];

describe('authority, reconciliation, masking, last mile', () => {
  test('use cases 39, 40, 41: each attribute has one owner; both sides push what they own and nothing else', async () => {
    await createTenant(idm, 'corp');
    const idmAdmin = await addClient(idm, 'corp', 'admin', ['scim:read', 'scim:write']);
    await createTenant(app, 'crm');
    const crmAdmin = await addClient(app, 'crm', 'admin', ['scim:read', 'scim:write']);
    for (const u of ['ada', 'bea']) await ok('POST', `${idm.scim('corp')}/Users`, idmAdmin, person(u));

    // P pushes everything but e-mail, which the CRM owns (39: one owner per attribute).
    const intoCrm = await addClient(app, 'crm', 'idm', ['User:read', 'User:write']);
    await addConnection(idm, 'corp', 'crm', app.scim('crm'), intoCrm);
    const flow = await addFlow(idm, 'corp', {
      id: 'to-crm',
      connectionId: 'crm',
      direction: 'push',
      mode: 'changes',
      resourceTypes: ['User'],
      authority: { remote: ['emails'] },
    });
    assert.deepEqual(flow.authority, { remote: ['emails'] });
    // The CRM pushes e-mail, and only e-mail, back into P's SCIM server (41).
    const intoIdm = await addClient(idm, 'corp', 'crm', ['User:read', 'User:write']);
    await addConnection(app, 'crm', 'idm', idm.scim('corp'), intoIdm);
    await addFlow(app, 'crm', {
      id: 'emails-to-idm',
      connectionId: 'idm',
      direction: 'push',
      mode: 'changes',
      resourceTypes: ['User'],
      authority: { default: 'remote', local: ['emails'] },
    });

    await runOk(idm, 'corp', 'to-crm', { created: 2 });
    await runOk(app, 'crm', 'emails-to-idm', { updated: 0 }); // starts its position: nothing differs
    const crm = by(await listAll(app.scim('crm'), crmAdmin, 'Users'), 'userName');
    const idmUsers = by(await listAll(idm.scim('corp'), idmAdmin, 'Users'), 'userName');
    // The CRM sets e-mail (its own) and a title (P's) on ada; P sets an e-mail (the CRM's) on bea.
    await ok(
      'PATCH',
      `${app.scim('crm')}/Users/${crm.get('ada')!.id}`,
      crmAdmin,
      replace('emails', mail('ada@crm.example')),
    );
    await ok(
      'PATCH',
      `${app.scim('crm')}/Users/${crm.get('ada')!.id}`,
      crmAdmin,
      replace('title', 'CRM title'),
    );
    await ok(
      'PATCH',
      `${idm.scim('corp')}/Users/${idmUsers.get('bea')!.id}`,
      idmAdmin,
      replace('emails', mail('bea@idm.example')),
    );
    await ok(
      'PATCH',
      `${idm.scim('corp')}/Users/${idmUsers.get('bea')!.id}`,
      idmAdmin,
      replace('title', 'Lead'),
    );

    await runOk(app, 'crm', 'emails-to-idm', { updated: 1 });
    await runOk(idm, 'corp', 'to-crm', { updated: 1 });
    const atIdm = by(await listAll(idm.scim('corp'), idmAdmin, 'Users'), 'userName');
    const atCrm = by(await listAll(app.scim('crm'), crmAdmin, 'Users'), 'userName');
    // ada: the CRM's e-mail is merged into P; the CRM's title is not (P owns it).
    assert.deepEqual(atIdm.get('ada')!.emails, mail('ada@crm.example'));
    assert.equal(atIdm.get('ada')!.title, 'Engineer');
    // bea: P's title reaches the CRM; P's e-mail does not (the CRM owns it).
    assert.equal(atCrm.get('bea')!.title, 'Lead');
    assert.equal(atCrm.get('bea')!.emails, undefined);
    // Neither push reverted the other side's own values. (The CRM's title on ada is drift on an
    // attribute P owns: a changes run does not look for it, the reconciliation below does.)
    assert.equal(atCrm.get('ada')!.title, 'CRM title');
    assert.deepEqual(atIdm.get('bea')!.emails, mail('bea@idm.example'));
  });

  test('use cases 42-46: P pushes its attributes and pulls the app-owned ones; drift is planned, repaired, adopted, and every run is logged', async () => {
    await createTenant(idm, 'corp2');
    const idmAdmin = await addClient(idm, 'corp2', 'admin', ['scim:read', 'scim:write']);
    await createTenant(app, 'hrapp');
    const appAdmin = await addClient(app, 'hrapp', 'admin', ['scim:read', 'scim:write']);
    for (const u of ['cid', 'dee']) await ok('POST', `${idm.scim('corp2')}/Users`, idmAdmin, person(u));
    const token = await addClient(app, 'hrapp', 'idm', ['User:read', 'User:write']);
    await addConnection(idm, 'corp2', 'hrapp', app.scim('hrapp'), token);
    await addFlow(idm, 'corp2', {
      id: 'push',
      connectionId: 'hrapp',
      direction: 'push',
      mode: 'changes',
      resourceTypes: ['User'],
      authority: { remote: ['emails'] },
    });
    await addFlow(idm, 'corp2', {
      id: 'pull',
      connectionId: 'hrapp',
      direction: 'pull',
      mode: 'full',
      resourceTypes: ['User'],
      authority: { default: 'local', remote: ['emails'] },
    });
    await runOk(idm, 'corp2', 'push', { created: 2 });

    // At the app, behind P's back: e-mails (the app's) and a title on cid (P's: drift).
    const atApp = by(await listAll(app.scim('hrapp'), appAdmin, 'Users'), 'userName');
    for (const u of ['cid', 'dee'])
      await ok(
        'PATCH',
        `${app.scim('hrapp')}/Users/${atApp.get(u)!.id}`,
        appAdmin,
        replace('emails', mail(`${u}@app.example`)),
      );
    await ok(
      'PATCH',
      `${app.scim('hrapp')}/Users/${atApp.get('cid')!.id}`,
      appAdmin,
      replace('title', 'Drifted'),
    );

    // 42: P pulls the app-owned e-mails into its records; the drifted title is left unapplied (40).
    await runOk(idm, 'corp2', 'pull', { updated: 2 });
    let atIdm = by(await listAll(idm.scim('corp2'), idmAdmin, 'Users'), 'userName');
    assert.deepEqual(atIdm.get('cid')!.emails, mail('cid@app.example'));
    assert.equal(atIdm.get('cid')!.title, 'Engineer');

    // 43: the push plan (a dry run over a full read of the app) flags cid's title, owner P ...
    const plan = await ok('POST', `${idm.admin('corp2')}/flows/push/plan`, idm.adminToken);
    assert.deepEqual(plan.creates, []);
    assert.deepEqual(plan.deletes, []);
    assert.deepEqual(plan.links, []);
    assert.deepEqual(plan.failed, []);
    assert.deepEqual(plan.updates, [
      {
        resourceType: 'User',
        localId: atIdm.get('cid')!.id,
        remoteId: atApp.get('cid')!.id,
        attributes: [{ path: 'title', local: 'Engineer', remote: 'Drifted', owner: 'local' }],
      },
    ]);
    // ... and writes nothing.
    assert.equal(
      (await ok('GET', `${app.scim('hrapp')}/Users/${atApp.get('cid')!.id}`, appAdmin)).title,
      'Drifted',
    );

    // 44: applying it (a full comparison run) restores P's title; 45: the app's e-mails are adopted.
    const apply = await runOk(idm, 'corp2', 'push', { updated: 1 }, { full: true });
    const afterApp = by(await listAll(app.scim('hrapp'), appAdmin, 'Users'), 'userName');
    assert.equal(afterApp.get('cid')!.title, 'Engineer');
    for (const u of ['cid', 'dee']) assert.deepEqual(afterApp.get(u)!.emails, mail(`${u}@app.example`));
    const again = await ok('POST', `${idm.admin('corp2')}/flows/push/plan`, idm.adminToken);
    assert.deepEqual(
      [again.creates, again.updates, again.deletes, again.links, again.failed],
      [[], [], [], [], []],
    );
    const pullPlan = await ok('POST', `${idm.admin('corp2')}/flows/pull/plan`, idm.adminToken);
    assert.deepEqual(pullPlan.updates, []);
    atIdm = by(await listAll(idm.scim('corp2'), idmAdmin, 'Users'), 'userName');
    for (const u of ['cid', 'dee']) {
      const a = content(afterApp.get(u)!);
      const p = content(atIdm.get(u)!);
      delete a.groups;
      delete p.groups;
      assert.deepEqual(a, p, `${u} is the same on both sides`);
    }

    // 46: every run is logged with its trigger, state and per-resource outcomes.
    const history = await runs(idm, 'corp2', 'push');
    assert.deepEqual(
      history.map((r) => [r.trigger, r.mode, r.dryRun, r.state]),
      [
        ['api', 'changes', true, 'succeeded'],
        ['api', 'full', false, 'succeeded'],
        ['api', 'changes', true, 'succeeded'],
        ['api', 'changes', false, 'succeeded'],
      ],
    );
    const items = await runItems(idm, 'corp2', 'push', apply.id);
    assert.deepEqual(
      items.map((i) => [i.resourceType, i.action, i.outcome, i.localId, i.remoteId, i.attributes]),
      [['User', 'update', 'done', atIdm.get('cid')!.id, atApp.get('cid')!.id, ['title']]],
    );
    const planned = await runItems(idm, 'corp2', 'push', history[2].id);
    assert.deepEqual(
      planned.map((i) => [i.action, i.outcome]),
      [['update', 'planned']],
    );
    const pulls = await runs(idm, 'corp2', 'pull');
    const pullItems = await runItems(idm, 'corp2', 'pull', pulls[pulls.length - 1].id);
    assert.deepEqual(sorted(pullItems.map((i) => `${i.action}:${i.outcome}:${i.attributes.join()}`)), [
      'update:done:emails',
      'update:done:emails',
    ]);
  });

  test('use case 48: a target gets masked values and never the attributes dropped for it', async () => {
    await createTenant(idm, 'corp3');
    const idmAdmin = await addClient(idm, 'corp3', 'admin', ['scim:read', 'scim:write']);
    for (const u of ['eve', 'fay'])
      await ok('POST', `${idm.scim('corp3')}/Users`, idmAdmin, {
        ...person(u, { title: u === 'eve' ? 'Nurse' : 'Doctor' }),
        emails: mail(`${u}@corp.example`),
        phoneNumbers: [{ value: '+1 555 0199', type: 'mobile' }],
      });
    await createTenant(app, 'analytics');
    const token = await addClient(app, 'analytics', 'idm', ['User:read', 'User:write']);
    await addConnection(idm, 'corp3', 'analytics', app.scim('analytics'), token);
    await addFlow(idm, 'corp3', {
      id: 'masked',
      connectionId: 'analytics',
      direction: 'push',
      mode: 'full',
      resourceTypes: ['User'],
      mapping: {
        rules: [
          { attribute: 'userName', transform: 'sha256' },
          { attribute: 'externalId', transform: 'sha256' },
          { from: 'title', to: 'displayName' },
          { drop: 'name' },
          { drop: 'emails' },
          { drop: 'phoneNumbers' },
        ],
      },
    });
    await runOk(idm, 'corp3', 'masked', { created: 2 });
    const got = await listAll(app.scim('analytics'), token, 'Users');
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    assert.deepEqual(
      got.map(content).sort((a, b) => String(a.displayName).localeCompare(String(b.displayName))),
      [
        {
          schemas: [USER],
          userName: sha('fay'),
          externalId: sha('idm-fay'),
          displayName: 'Doctor',
          active: true,
        },
        {
          schemas: [USER],
          userName: sha('eve'),
          externalId: sha('idm-eve'),
          displayName: 'Nurse',
          active: true,
        },
      ],
    );
    const text = JSON.stringify(got);
    for (const secret of ['"eve"', '"fay"', 'corp.example', '+1 555 0199'])
      assert.ok(!text.includes(secret), secret);
  });

  test('use cases 37, 38: the last-mile pull of an application, and a user who signs in by OIDC before it: JIT, then the pull updates the same record', async () => {
    // The identity provider's key (the test plays the IdP); the app trusts its JWKS.
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
    const issuer = 'https://login.example.com';
    await createTenant(app, 'portal', {
      jit: { oidc: { issuer, audience: 'portal-app', jwks: { keys: [jwk] } } },
    });
    const portalReader = await addClient(app, 'portal', 'reader', ['User:read']);
    const login = await addClient(app, 'portal', 'login', ['jit']);
    // The last mile: the portal pulls P's users (nightly; here also on demand).
    const corpReader = await addClient(idm, 'corp', 'portal', ['User:read']);
    await addConnection(app, 'portal', 'idm', idm.scim('corp'), corpReader);
    await addFlow(app, 'portal', {
      id: 'from-idm',
      connectionId: 'idm',
      direction: 'pull',
      mode: 'full',
      resourceTypes: ['User'],
      schedule: '30 1 * * *',
    });
    await runOk(app, 'portal', 'from-idm', { created: 2 }); // ada, bea
    const idmCorpAdmin = await addClient(idm, 'corp', 'hr', ['scim:read', 'scim:write']);

    // A new hire at P, not pulled yet, signs in to the portal.
    await ok('POST', `${idm.scim('corp')}/Users`, idmCorpAdmin, person('gil', { title: 'Intern' }));
    const idToken = (sub: string, claims: Json) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
        .setIssuer(issuer)
        .setAudience('portal-app')
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
    const claims = { preferred_username: 'gil', given_name: 'gil', family_name: 'Owner' };
    const jit = await http('POST', `${app.admin('portal')}/jit/oidc`, login, {
      idToken: await idToken('idm-gil', claims),
    });
    assert.equal(jit.status, 201, jit.text);
    const jitId = jit.body.id as string;
    assert.equal(jit.body.userName, 'gil');
    assert.equal(jit.body.title, undefined, 'only what the assertion carries');

    // The sign-in requested the pull (trigger jit): it matches the JIT user and fills in the rest.
    await eventually(async () => {
      const gil = await listAll(app.scim('portal'), portalReader, 'Users', 'userName eq "gil"');
      assert.equal(gil.length, 1);
      assert.equal(gil[0].id, jitId);
      assert.equal(gil[0].title, 'Intern');
    });
    await eventually(async () => {
      const history = await runs(app, 'portal', 'from-idm');
      assert.ok(
        history.some((r) => r.trigger === 'jit' && r.state === 'succeeded'),
        JSON.stringify(history),
      );
    });
    // P changes gil; the next pull updates the same record. A second sign-in finds it too.
    const atIdm = by(await listAll(idm.scim('corp'), idmCorpAdmin, 'Users'), 'userName');
    await ok(
      'PATCH',
      `${idm.scim('corp')}/Users/${atIdm.get('gil')!.id}`,
      idmCorpAdmin,
      replace('title', 'Engineer'),
    );
    await runOk(app, 'portal', 'from-idm', { updated: 1 });
    const again = await http('POST', `${app.admin('portal')}/jit/oidc`, login, {
      idToken: await idToken('idm-gil', claims),
    });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.id, jitId);
    const portal = await listAll(app.scim('portal'), portalReader, 'Users');
    assert.deepEqual(sorted(portal.map((u) => u.userName)), ['ada', 'bea', 'gil']);
    const gil = portal.find((u) => u.userName === 'gil')!;
    const want = content(atIdm.get('gil')!);
    want.title = 'Engineer';
    delete want.groups;
    const have = content(gil);
    delete have.groups;
    assert.deepEqual(have, want);
    assert.equal((await getFlow(app, 'portal', 'from-idm')).schedule, '30 1 * * *');
  });
});
