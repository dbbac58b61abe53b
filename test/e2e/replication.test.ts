/**
 * Two scimd processes on loopback (issue 5, "must be shown"): node A publishes its Users and Groups;
 * node B keeps three copies of them, one per tenant, each fed another way:
 *   tenant push    full events pushed by A (RFC 8935)
 *   tenant poll    full events B polls from A (RFC 8936)
 *   tenant notice  notice events pushed by A; B calls A back with a SCIM GET for the data
 * Writes on A must appear on B through each path; B is killed (SIGKILL) in the middle of a stream
 * of writes and restarted, and every copy must end exactly equal to A, with nothing applied twice;
 * a replayed SET changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { freePort, nodeStore, startScimd, type NodeStore, type ScimdProcess } from '../helpers/process.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON

const A_ADMIN = 'a-admin-token';
const B_ADMIN = 'b-admin-token';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const COPIES = ['push', 'poll', 'notice'] as const;
// Fast retries: B is down for a while in the kill test, and A's push backs off meanwhile.
const ENV = {
  SCIMD_EVENT_PUBLISH_INTERVAL_MS: '50',
  SCIMD_EVENT_PUSH_BACKOFF_BASE_MS: '100',
  SCIMD_EVENT_PUSH_BACKOFF_CAP_MS: '1000',
  SCIMD_EVENT_POLL_TIMEOUT_SECONDS: '2',
  SCIMD_INBOUND_APPLY_INTERVAL_MS: '100',
  SCIMD_INBOUND_RETRY_BASE_MS: '100',
  SCIMD_INBOUND_POLL_REFRESH_SECONDS: '1',
};

let storeA: NodeStore;
let storeB: NodeStore;
let portB: number;
let a: ScimdProcess;
let b: ScimdProcess;

async function http(
  method: string,
  url: string,
  token: string,
  body?: unknown,
  contentType = 'application/scim+json',
): Promise<{ status: number; body: Json; text: string }> {
  const res = await fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': contentType }),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Json = {};
  try {
    parsed = text ? (JSON.parse(text) as Json) : {};
  } catch {
    // not JSON (e.g. a SET)
  }
  return { status: res.status, body: parsed, text };
}

async function ok(
  method: string,
  url: string,
  token: string,
  body?: unknown,
  expect: number[] = [200, 201, 204],
): Promise<Json> {
  const res = await http(method, url, token, body);
  assert.ok(expect.includes(res.status), `${method} ${url} → ${res.status}: ${res.text.slice(0, 500)}`);
  return res.body;
}

/** A tenant's Users and Groups as comparable values: no meta, no $ref (they name each node's own URLs). */
async function state(origin: string, scimPath: string, token: string): Promise<Json> {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      const out: Json = {};
      for (const [k, x] of Object.entries(v as Json)) if (k !== 'meta' && k !== '$ref') out[k] = strip(x);
      return out;
    }
    return v;
  };
  const byValue = (x: Json, y: Json) => String(x.value).localeCompare(String(y.value));
  const out: Json = {};
  for (const type of ['Users', 'Groups']) {
    const list = await ok('GET', `${origin}${scimPath}/${type}?count=1000&sortBy=id`, token);
    out[type] = (list.Resources ?? []).map((r: Json) => {
      const s = strip(r) as Json;
      if (Array.isArray(s.members)) s.members.sort(byValue);
      if (Array.isArray(s.groups)) s.groups.sort(byValue);
      return s;
    });
  }
  return out;
}

const stateA = () => state(a.origin, '/scim/v2', A_ADMIN);
/** Each of B's tenants is read with a token of its own admin client (the bootstrap token is the default tenant's). */
const readersB: Record<string, string> = {};
const stateB = (tenant: string) => state(b.origin, `/tenants/${tenant}/scim/v2`, readersB[tenant]);

/** Waits until every copy on B equals A (A must be quiet meanwhile). */
async function converged(timeoutMs = 90_000): Promise<Json> {
  const want = await stateA();
  const deadline = Date.now() + timeoutMs;
  const last: Json = {};
  for (;;) {
    let all = true;
    for (const t of COPIES) {
      last[t] = await stateB(t);
      if (!isDeepStrictEqual(last[t], want)) all = false;
    }
    if (all) return want;
    if (Date.now() > deadline) {
      for (const t of COPIES) assert.deepEqual(last[t], want, `copy "${t}" on B differs from A`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  storeA = await nodeStore();
  storeB = await nodeStore();
  const portA = await freePort();
  portB = await freePort();
  a = await startScimd(storeA, portA, { ...ENV, SCIMD_ADMIN_TOKEN: A_ADMIN });
  b = await startScimd(storeB, portB, { ...ENV, SCIMD_ADMIN_TOKEN: B_ADMIN });

  // A: a client B calls back with (read), a client B polls as, two feeds, three receivers.
  const adminA = `${a.origin}/admin/v1/tenants/default`;
  await ok('POST', `${adminA}/clients`, A_ADMIN, { id: 'b-reader', name: 'B reads', scopes: ['scim:read'] });
  const readToken = (await ok('POST', `${adminA}/clients/b-reader/tokens`, A_ADMIN, {})).token as string;
  await ok('POST', `${adminA}/clients`, A_ADMIN, {
    id: 'b-poller',
    name: 'B polls',
    scopes: ['events:poll'],
  });
  const pollToken = (await ok('POST', `${adminA}/clients/b-poller/tokens`, A_ADMIN, {})).token as string;
  for (const form of ['full', 'notice']) {
    await ok('POST', `${adminA}/feeds`, A_ADMIN, {
      id: form,
      name: `${form} copy`,
      resourceTypes: ['User', 'Group'],
      form,
      from: 'beginning',
    });
  }

  // B: three tenants, each with the upstream A and a client A pushes as.
  const upstreamBase = {
    id: 'a',
    name: 'A',
    issuer: `${a.origin}/scim/v2`,
    jwksUri: `${a.origin}/.well-known/jwks.json`,
    scimBaseUrl: `${a.origin}/scim/v2`,
    callbackAuthorization: `Bearer ${readToken}`,
  };
  const pushTokens: Record<string, string> = {};
  for (const t of COPIES) {
    await ok('POST', `${b.origin}/admin/v1/tenants`, B_ADMIN, { id: t });
    const adminB = `${b.origin}/admin/v1/tenants/${t}`;
    await ok('POST', `${adminB}/clients`, B_ADMIN, {
      id: 'a-pusher',
      name: 'A pushes',
      scopes: ['events:push'],
    });
    pushTokens[t] = (await ok('POST', `${adminB}/clients/a-pusher/tokens`, B_ADMIN, {})).token as string;
    await ok('POST', `${adminB}/clients`, B_ADMIN, {
      id: 'reader',
      name: 'test reads',
      scopes: ['scim:read'],
    });
    readersB[t] = (await ok('POST', `${adminB}/clients/reader/tokens`, B_ADMIN, {})).token as string;
    await ok('POST', `${adminB}/upstreams`, B_ADMIN, {
      ...upstreamBase,
      ...(t === 'poll'
        ? {
            poll: {
              url: `${a.origin}/events/poll/to-poll`,
              authorization: `Bearer ${pollToken}`,
              intervalSeconds: 0,
            },
          }
        : {}),
    });
  }
  for (const t of ['push', 'notice'] as const) {
    await ok('POST', `${adminA}/receivers`, A_ADMIN, {
      id: `to-${t}`,
      name: `B ${t}`,
      feedId: t === 'push' ? 'full' : 'notice',
      delivery: 'push',
      endpointUrl: `${b.origin}/tenants/${t}/events/push/a`,
      authorization: `Bearer ${pushTokens[t]}`,
    });
  }
  await ok('POST', `${adminA}/receivers`, A_ADMIN, {
    id: 'to-poll',
    name: 'B poll',
    feedId: 'full',
    delivery: 'poll',
    pollClientId: 'b-poller',
  });
});

after(async () => {
  await b?.stop();
  await a?.stop();
  await storeA?.drop();
  await storeB?.drop();
});

const scimA = () => `${a.origin}/scim/v2`;

async function createUser(name: string): Promise<string> {
  const u = await ok('POST', `${scimA()}/Users`, A_ADMIN, {
    schemas: [USER],
    userName: name,
    externalId: `ext-${name}`,
    name: { givenName: name, familyName: 'Replica' },
    emails: [{ value: `${name}@example.com`, type: 'work', primary: true }],
    active: true,
  });
  return u.id as string;
}

test('writes on A reach B through push, poll, and notice + callback', { timeout: 180_000 }, async () => {
  const users: string[] = [];
  for (let i = 0; i < 12; i++) users.push(await createUser(`first${i}`));
  const g1 = await ok('POST', `${scimA()}/Groups`, A_ADMIN, {
    schemas: [GROUP],
    displayName: 'Engineering',
    members: users.slice(0, 6).map((value) => ({ value })),
  });
  const g2 = await ok('POST', `${scimA()}/Groups`, A_ADMIN, {
    schemas: [GROUP],
    displayName: 'Sales',
    members: users.slice(6, 9).map((value) => ({ value })),
  });
  await ok('PATCH', `${scimA()}/Users/${users[1]}`, A_ADMIN, {
    schemas: [PATCH_OP],
    Operations: [
      { op: 'replace', path: 'active', value: false },
      { op: 'replace', path: 'name.familyName', value: 'Changed' },
    ],
  });
  await ok('PATCH', `${scimA()}/Groups/${g1.id}`, A_ADMIN, {
    schemas: [PATCH_OP],
    Operations: [
      { op: 'remove', path: `members[value eq "${users[0]}"]` },
      { op: 'add', path: 'members', value: [{ value: users[10] }] },
    ],
  });
  await ok('PUT', `${scimA()}/Groups/${g2.id}`, A_ADMIN, {
    schemas: [GROUP],
    displayName: 'Sales and Marketing',
    members: [{ value: users[7] }, { value: users[11] }],
  });
  await ok('DELETE', `${scimA()}/Users/${users[2]}`, A_ADMIN);
  await ok('DELETE', `${scimA()}/Users/${users[9]}`, A_ADMIN);

  const want = await converged();
  assert.equal(want.Users.length, 10);
  assert.equal(want.Groups.length, 2);
  const sales = want.Groups.find((g: Json) => g.id === g2.id);
  assert.equal(sales.displayName, 'Sales and Marketing');
  assert.deepEqual(
    sales.members.map((m: Json) => m.value),
    [users[7], users[11]].sort(),
  );
});

test(
  'B killed mid-stream and restarted ends with exactly A’s state, nothing applied twice',
  { timeout: 300_000 },
  async () => {
    const ids: string[] = [];
    const groups = (await ok('GET', `${scimA()}/Groups`, A_ADMIN)).Resources as Json[];
    let killed = false;
    for (let i = 0; i < 90; i++) {
      if (i === 30) {
        await b.kill();
        killed = true;
      }
      if (i === 60) {
        b = await startScimd(storeB, portB, { ...ENV, SCIMD_ADMIN_TOKEN: B_ADMIN });
      }
      const step = i % 3;
      if (step === 0 || ids.length === 0) ids.push(await createUser(`stream${i}`));
      else if (step === 1) {
        const id = ids[ids.length - 1];
        await ok('PATCH', `${scimA()}/Users/${id}`, A_ADMIN, {
          schemas: [PATCH_OP],
          Operations: [{ op: 'replace', path: 'title', value: `title ${i}` }],
        });
        await ok('PATCH', `${scimA()}/Groups/${groups[i % groups.length].id}`, A_ADMIN, {
          schemas: [PATCH_OP],
          Operations: [{ op: 'add', path: 'members', value: [{ value: id }] }],
        });
      } else if (i % 9 === 8) {
        await ok('DELETE', `${scimA()}/Users/${ids.shift()}`, A_ADMIN);
      }
    }
    assert.ok(killed);
    await converged(150_000);

    // Nothing applied twice: per resource, B's copies record no more writes than A made.
    const writesByResource = async (origin: string, tenant: string, token: string, client?: string) => {
      const counts = new Map<string, number>();
      for (let start = 1; ; start += 1000) {
        const page = await ok(
          'GET',
          `${origin}/admin/v1/tenants/${tenant}/audit?count=1000&startIndex=${start}${client ? `&client=${encodeURIComponent(client)}` : ''}`,
          token,
        );
        const rows = page.entries as Json[];
        for (const r of rows) counts.set(r.resourceId, (counts.get(r.resourceId) ?? 0) + 1);
        if (rows.length < 1000) return counts;
      }
    };
    const onA = await writesByResource(a.origin, 'default', A_ADMIN);
    assert.ok(onA.size > 0, 'A’s audit trail lists its writes');
    for (const t of COPIES) {
      const onB = await writesByResource(b.origin, t, B_ADMIN, 'upstream:a');
      assert.ok(onB.size > 0, `B/${t} applied writes`);
      for (const [id, n] of onB) {
        assert.ok(n <= (onA.get(id) ?? 0), `B/${t} wrote ${id} ${n} times, A only ${onA.get(id) ?? 0}`);
      }
    }
  },
);

test('a replayed SET changes nothing', { timeout: 120_000 }, async () => {
  const before = await converged();
  const delivered = await ok(
    'GET',
    `${a.origin}/admin/v1/tenants/default/receivers/to-push/events?state=delivered&count=5&includeSet=true`,
    A_ADMIN,
  );
  const events = delivered.entries as Json[];
  assert.ok(events.length > 0, 'A lists the SETs it delivered to B');
  const push = await ok('POST', `${b.origin}/admin/v1/tenants/push/clients/a-pusher/tokens`, B_ADMIN, {});
  for (const e of events) {
    const res = await http(
      'POST',
      `${b.origin}/tenants/push/events/push/a`,
      push.token as string,
      e.set,
      'application/secevent+jwt',
    );
    assert.equal(res.status, 202, res.text);
    assert.equal(res.text, '');
  }
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await stateB('push'), before);
});
