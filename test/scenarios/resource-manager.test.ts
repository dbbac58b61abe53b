/**
 * The resource manager (RM) of the SCIM use-cases draft (figures 14-17), with three scimd processes:
 *   up    the upstream sources: per RM tenant t, tenant `${t}-hr` (an HR server the RM pulls from)
 *         and tenant `${t}-con` (a contractor system that pushes to the RM as a SCIM client);
 *   rm    the resource manager: tenants rm1 and rm2, each with its own sources and targets, plus a
 *         non-SCIM source (a CSV of badge phone numbers, loaded through SCIM by a small connector);
 *   down  the downstream applications: per RM tenant, `${t}-push` (the RM pushes to it) and
 *         `${t}-pull` (it pulls from the RM).
 * Configured through the admin API over HTTP and SCIM only, as docs/use-cases/ shows.
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
  listAll,
  ok,
  PATCH_OP,
  runFlow,
  runOk,
  sorted,
  startNode,
  startNodes,
  USER,
  type Json,
  type Node,
} from './lib.ts';

let up: Node;
let rm: Node;
let down: Node;

before(async () => {
  [up, rm, down] = await startNodes(startNode('up'), startNode('rm'), startNode('down'));
});
after(async () => {
  await Promise.all([up?.close(), rm?.close(), down?.close()]);
});

/** What HR owns at the RM; everything else (phoneNumbers from the CSV, local edits) is the RM's. */
const HR_OWNS = [
  'userName',
  'externalId',
  'name',
  'displayName',
  'title',
  'userType',
  'active',
  'emails',
  `${ENT}:employeeNumber`,
];
/** The subset of attributes the RM sends downstream (24). */
const DOWNSTREAM = ['userName', 'externalId', 'name', 'emails', 'userType', 'active', 'phoneNumbers'];

function person(userName: string, given: string, extra: Json = {}): Json {
  return {
    schemas: [USER, ENT],
    userName,
    externalId: `src-${userName}`,
    name: { givenName: given, familyName: 'Smith' },
    emails: [{ value: `${userName}@corp.example`, type: 'work', primary: true }],
    phoneNumbers: [{ value: '+1 000 0000', type: 'work' }],
    title: 'Engineer',
    userType: 'Employee',
    active: true,
    [ENT]: { employeeNumber: `E-${userName}` },
    ...extra,
  };
}

/** The non-SCIM source: CSV rows (userName, badge phone) written through SCIM by a connector. */
async function loadCsv(scim: string, token: string, csv: string): Promise<void> {
  const [header, ...rows] = csv.trim().split('\n');
  assert.equal(header, 'userName,phone');
  for (const row of rows) {
    const [userName, phone] = row.split(',');
    const phoneNumbers = [{ value: phone, type: 'work' }];
    const found = await listAll(scim, token, 'Users', `userName eq "${userName}"`);
    if (found.length === 0) {
      await ok('POST', `${scim}/Users`, token, { schemas: [USER], userName, phoneNumbers });
    } else {
      await ok('PATCH', `${scim}/Users/${found[0].id}`, token, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'replace', path: 'phoneNumbers', value: phoneNumbers }],
      });
    }
  }
}

const noGroups = (r: Json): Json => {
  const c = content(r);
  delete c.groups;
  return c;
};
const pick = (r: Json, attrs: string[]): Json => {
  const out: Json = {};
  for (const a of attrs) if (r[a] !== undefined) out[a] = r[a];
  out.schemas = [USER];
  return content(out);
};

interface Chain {
  rmToken: string;
  pushToken: string;
  pullToken: string;
}

/** Use cases 23-28 on one RM tenant `t`; returns the credentials to read each side. */
async function chain(t: string): Promise<Chain> {
  const n = (s: string) => `${t}-${s}`; // user names carry the tenant: isolation is visible
  // Upstream sources.
  await createTenant(up, n('hr'));
  const hrToken = await addClient(up, n('hr'), 'hr-admin', ['scim:read', 'scim:write']);
  await createTenant(up, n('con'));
  const conToken = await addClient(up, n('con'), 'con-admin', ['scim:read', 'scim:write']);
  const hrScim = up.scim(n('hr'));
  const conScim = up.scim(n('con'));
  for (const u of [
    person(n('emp1'), 'Erin'),
    person(n('emp2'), 'Eli'),
    person(n('intern'), 'Ivy', { userType: 'Intern' }),
  ])
    await ok('POST', `${hrScim}/Users`, hrToken, u);
  await ok('POST', `${conScim}/Users`, conToken, person(n('con1'), 'Cory', { userType: undefined }));
  await ok(
    'POST',
    `${conScim}/Users`,
    conToken,
    person(n('con2'), 'Cleo', { userType: undefined, active: false }),
  );

  // The RM tenant, its clients, and the downstream tenants.
  await createTenant(rm, t);
  const rmToken = await addClient(rm, t, 'rm-admin', ['scim:read', 'scim:write']);
  const csvToken = await addClient(rm, t, 'csv-connector', ['User:read', 'User:write']);
  const conPushToken = await addClient(rm, t, 'contractors', ['User:read', 'User:write']);
  const downReader = await addClient(rm, t, 'downstream-reader', ['User:read']);
  await createTenant(down, n('push'));
  const pushToken = await addClient(down, n('push'), 'rm', ['User:read', 'User:write']);
  await createTenant(down, n('pull'));
  const pullToken = await addClient(down, n('pull'), 'reader', ['User:read']);

  // 23: the non-SCIM source first: the connector creates the users it knows, with their badge phone.
  await loadCsv(rm.scim(t), csvToken, `userName,phone\n${n('emp1')},+1 555 0001\n${n('emp2')},+1 555 0002\n`);

  // 24/25/27: the RM pulls employees (its scope for HR) and takes only what HR owns.
  const hrRead = await addClient(up, n('hr'), 'rm-puller', ['User:read']);
  await addConnection(rm, t, 'hr', hrScim, hrRead);
  await addFlow(rm, t, {
    id: 'hr',
    connectionId: 'hr',
    direction: 'pull',
    mode: 'full',
    resourceTypes: ['User'],
    filter: 'userType eq "Employee"',
    authority: { default: 'local', remote: HR_OWNS },
  });
  // The CSV's users are matched by userName and merged: one User per person (23).
  await runOk(rm, t, 'hr', { updated: 2 });

  // 26: the contractor system pushes (as a SCIM client) its active contractors to the RM.
  await addConnection(up, n('con'), 'rm', rm.scim(t), conPushToken);
  await addFlow(up, n('con'), {
    id: 'to-rm',
    connectionId: 'rm',
    direction: 'push',
    mode: 'changes',
    resourceTypes: ['User'],
    filter: 'active eq true',
    mapping: { rules: [{ set: 'userType', value: 'Contractor' }, { drop: 'phoneNumbers' }] },
  });
  await runOk(up, n('con'), 'to-rm', { created: 1 });
  await ok('PATCH', `${up.admin(n('con'))}/flows/to-rm`, up.adminToken, { onLocalChange: true });

  // 28: a user created at the RM itself.
  await ok('POST', `${rm.scim(t)}/Users`, rmToken, {
    schemas: [USER],
    userName: n('svc-bot'),
    userType: 'Service',
    active: true,
  });

  // 24/26: the RM pushes active users, a subset of attributes, to one application ...
  await addConnection(rm, t, 'app-push', down.scim(n('push')), pushToken);
  await addFlow(rm, t, {
    id: 'to-app',
    connectionId: 'app-push',
    direction: 'push',
    mode: 'changes',
    resourceTypes: ['User'],
    filter: 'active eq true',
    mapping: { only: DOWNSTREAM, rules: [] },
  });
  await runOk(rm, t, 'to-app', { created: 4 });
  await ok('PATCH', `${rm.admin(t)}/flows/to-app`, rm.adminToken, { onLocalChange: true });
  // 25: ... and another application pulls from the RM (delta).
  await addConnection(down, n('pull'), 'rm', rm.scim(t), downReader);
  await addFlow(down, n('pull'), {
    id: 'from-rm',
    connectionId: 'rm',
    direction: 'pull',
    mode: 'delta',
    resourceTypes: ['User'],
  });
  await runOk(down, n('pull'), 'from-rm', { created: 4 });

  // Changes at the sources. HR: a new title and first name, and a phone number HR does not own.
  const emp1 = (await listAll(hrScim, hrToken, 'Users', `userName eq "${n('emp1')}"`))[0];
  await ok('PATCH', `${hrScim}/Users/${emp1.id}`, hrToken, {
    schemas: [PATCH_OP],
    Operations: [
      { op: 'replace', path: 'name.givenName', value: 'Erina' },
      { op: 'replace', path: 'title', value: 'Lead' },
      { op: 'replace', path: 'phoneNumbers', value: [{ value: '+1 999 9999', type: 'work' }] },
    ],
  });
  await runOk(rm, t, 'hr', { updated: 1 }); // the RM's next scheduled pull
  // The contractor system renames con1: it flows to the RM, then to the application (push-push).
  const con1 = (await listAll(conScim, conToken, 'Users', `userName eq "${n('con1')}"`))[0];
  await ok('PATCH', `${conScim}/Users/${con1.id}`, conToken, {
    schemas: [PATCH_OP],
    Operations: [{ op: 'replace', path: 'name.familyName', value: 'Jones' }],
  });
  // The connector's next CSV load changes emp2's badge phone.
  await loadCsv(rm.scim(t), csvToken, `userName,phone\n${n('emp2')},+1 555 0022\n`);

  // The RM: one User per subject, each attribute from the source that owns it (27).
  const rmUsers = by(await listAll(rm.scim(t), rmToken, 'Users'), 'userName');
  await convergesByTriggers(
    async () => {
      const users = by(await listAll(rm.scim(t), rmToken, 'Users'), 'userName');
      assert.equal(users.get(n('con1'))?.name?.familyName, 'Jones');
      assert.deepEqual(users.get(n('emp2'))?.phoneNumbers, [{ value: '+1 555 0022', type: 'work' }]);
    },
    async () => {
      await runFlow(up, n('con'), 'to-rm');
    },
  );
  const want = by(await listAll(rm.scim(t), rmToken, 'Users'), 'userName');
  assert.deepEqual(sorted(want.keys()), [n('con1'), n('emp1'), n('emp2'), n('svc-bot')]);
  const hrNow = by(await listAll(hrScim, hrToken, 'Users'), 'userName');
  for (const e of ['emp1', 'emp2']) {
    const src = hrNow.get(n(e))!;
    const expected = noGroups(src);
    expected.phoneNumbers = [{ value: e === 'emp1' ? '+1 555 0001' : '+1 555 0022', type: 'work' }];
    assert.deepEqual(noGroups(want.get(n(e))!), expected, `RM ${n(e)}: HR's attributes, the CSV's phone`);
  }
  assert.equal(want.get(n('emp1'))!.title, 'Lead');
  assert.equal(want.get(n('con1'))!.userType, 'Contractor');
  assert.equal(want.get(n('con1'))!.phoneNumbers, undefined);
  assert.equal(rmUsers.has(n('intern')), false, 'out of the HR flow scope');
  assert.equal(rmUsers.has(n('con2')), false, 'inactive contractors are not pushed by their source');

  // The applications: the pushed one holds the subset, the pulling one everything, both exactly.
  await convergesByTriggers(
    async () => {
      const pushed = await listAll(down.scim(n('push')), pushToken, 'Users');
      assert.deepEqual(
        pushed.map(noGroups).sort(byUserName),
        [...want.values()].map((u) => pick(u, DOWNSTREAM)).sort(byUserName),
      );
    },
    async () => {
      await runFlow(rm, t, 'to-app');
    },
  );
  await runOk(down, n('pull'), 'from-rm', { updated: 3 }); // emp1, con1, emp2
  const pulled = await listAll(down.scim(n('pull')), pullToken, 'Users');
  assert.deepEqual(pulled.map(noGroups).sort(byUserName), [...want.values()].map(noGroups).sort(byUserName));
  return { rmToken, pushToken, pullToken };
}

const byUserName = (x: Json, y: Json) => String(x.userName).localeCompare(String(y.userName));

describe('resource manager use cases (figures 14-17)', () => {
  const chains: Record<string, Chain> = {};

  test('use cases 23-28: CSV and SCIM sources merged per subject with per-source attribute precedence; pull-pull and push-push chains and local creations reach the applications', async () => {
    chains.rm1 = await chain('rm1');
  });

  test('use case 29: a second RM tenant with its own sources and targets; nothing crosses between tenants', async () => {
    chains.rm2 = await chain('rm2');
    for (const [t, other] of [
      ['rm1', 'rm2'],
      ['rm2', 'rm1'],
    ]) {
      const names = [
        ...(await listAll(rm.scim(t), chains[t].rmToken, 'Users')),
        ...(await listAll(down.scim(`${t}-push`), chains[t].pushToken, 'Users')),
        ...(await listAll(down.scim(`${t}-pull`), chains[t].pullToken, 'Users')),
      ].map((u) => u.userName as string);
      assert.equal(names.length, 12);
      assert.ok(
        names.every((u) => u.startsWith(`${t}-`) && !u.startsWith(`${other}-`)),
        names.join(),
      );
      const flows = (await ok('GET', `${rm.admin(t)}/flows`, rm.adminToken)).flows as Json[];
      assert.deepEqual(sorted(flows.map((f) => f.id)), ['hr', 'to-app']);
      const conns = (await ok('GET', `${rm.admin(t)}/connections`, rm.adminToken)).connections as Json[];
      assert.deepEqual(
        conns.map((c) => c.baseUrl).sort(),
        [down.scim(`${t}-push`), up.scim(`${t}-hr`)].sort(),
      );
    }
  });
});
