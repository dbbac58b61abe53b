/**
 * Durability and exactly-once execution of asynchronous SCIM requests: a queued request survives a
 * restart of the process (same store) and runs once; a request left `running` by a dead process
 * runs again after its lease; a write and its completion commit together (an unexpected error
 * rolls both back, the request is retried, and gives up with a 500 completion); two workers never
 * run one request twice; a finished request left unsigned is signed later; the client's rights are
 * checked again when the request runs. Runs on PGlite (a data folder), and on PostgreSQL when
 * DATABASE_URL is set (a scratch database).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { createApp, type App } from '../../src/app.ts';
import { AsyncWorker } from '../../src/async/worker.ts';
import { TenantDirectory } from '../../src/tenancy/directory.ts';
import { scratchDatabase, startTestApp, TOKEN, type TestApp } from '../helpers/app.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ASYNCRESP = 'urn:ietf:params:scim:event:misc:asyncresp';

/** Where a store lives across two app instances: a data folder, or a scratch PostgreSQL database. */
async function durableStore(): Promise<{
  overrides: Parameters<typeof createApp>[0];
  drop: () => Promise<void>;
}> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const dir = await mkdtemp(join(tmpdir(), 'scimd-async-'));
    return {
      overrides: { dataDir: dir, memory: false },
      drop: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const scratch = (await scratchDatabase())!;
  return { overrides: { databaseUrl: scratch.url }, drop: scratch.drop };
}

async function inject(
  app: App,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await app.server.inject({
    method: method as 'GET',
    url,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
      ...headers,
    },
    payload: body === undefined ? undefined : JSON.stringify(body),
  });
  return {
    status: res.statusCode,
    headers: res.headers,
    text: res.body,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
    json: () => JSON.parse(res.body) as Record<string, any>,
  };
}

async function verifiedCompletion(app: App, txn: string, tenantPrefix = ''): Promise<JWTPayload> {
  const res = await inject(app, 'GET', `${tenantPrefix}/scim/v2/.async/${txn}`);
  assert.equal(res.status, 200, res.text);
  const jwks = await inject(app, 'GET', `${tenantPrefix}/.well-known/jwks.json`);
  const { payload } = await jwtVerify(res.text, createLocalJWKSet(JSON.parse(jwks.text) as JSONWebKeySet), {
    typ: 'secevent+jwt',
  });
  return payload;
}

function asyncresp(claims: JWTPayload): Record<string, unknown> {
  return (claims.events as Record<string, Record<string, unknown>>)[ASYNCRESP];
}

async function queueCreate(app: App, userName: string): Promise<string> {
  const res = await inject(
    app,
    'POST',
    '/scim/v2/Users',
    { schemas: [USER], userName },
    { prefer: 'respond-async' },
  );
  assert.equal(res.status, 202, res.text);
  return res.headers['set-txn'] as string;
}

async function changesOf(app: App, userName: string): Promise<number> {
  const res = await app.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM changes c JOIN resources r ON r.tenant_id = c.tenant_id AND r.id = c.resource_id
      WHERE c.tenant_id = 'default' AND r.doc->>'userName' = $1`,
    [userName],
  );
  return res.rows[0].n;
}

describe('async requests: restart durability', () => {
  test('queued and abandoned requests run after a restart, once; an unsigned completion is signed', async () => {
    const store = await durableStore();
    const opts = {
      ...store.overrides,
      adminToken: TOKEN,
      baseUrl: 'http://scimd.test',
      logLevel: 'silent',
      backgroundWorkers: false,
    };
    try {
      const first = await createApp(opts);
      // Finished before the "crash", but its signature never stored.
      const signedLater = await queueCreate(first, 'restart.signed');
      assert.equal(await first.asyncWorker.runOnce(), 1);
      await first.db.query(`UPDATE async_requests SET sets = NULL WHERE tenant_id = 'default' AND txn = $1`, [
        signedLater,
      ]);
      // Queued, never started.
      const queued = await queueCreate(first, 'restart.queued');
      // Started by a process that died: running, claimed an hour ago, nothing applied.
      const abandoned = await queueCreate(first, 'restart.abandoned');
      await first.db.query(
        `UPDATE async_requests SET state = 'running', attempts = 1, claimed_by = 'dead-node',
                claimed_at = now() - interval '1 hour' WHERE tenant_id = 'default' AND txn = $1`,
        [abandoned],
      );
      await first.close();

      const second = await createApp(opts);
      try {
        const pending = await inject(second, 'GET', `/scim/v2/.async/${queued}`);
        assert.equal(pending.status, 202);
        assert.equal(pending.json().state, 'queued');
        assert.equal(await second.asyncWorker.runOnce(), 2);
        for (const [txn, userName] of [
          [queued, 'restart.queued'],
          [abandoned, 'restart.abandoned'],
          [signedLater, 'restart.signed'],
        ]) {
          const claims = await verifiedCompletion(second, txn);
          assert.equal(claims.txn, txn);
          assert.equal(asyncresp(claims).status, '201');
          assert.equal(await changesOf(second, userName), 1, `${userName} applied exactly once`);
        }
        const rows = await second.db.query<{ txn: string; state: string; attempts: number; signed: boolean }>(
          `SELECT txn, state, attempts, sets IS NOT NULL AS signed FROM async_requests WHERE tenant_id = 'default'`,
        );
        const byTxn = new Map(rows.rows.map((r) => [r.txn, r]));
        assert.deepEqual(
          { ...byTxn.get(abandoned) },
          { txn: abandoned, state: 'done', attempts: 2, signed: true },
        );
        assert.deepEqual({ ...byTxn.get(queued) }, { txn: queued, state: 'done', attempts: 1, signed: true });
        assert.equal(byTxn.get(signedLater)?.signed, true);
      } finally {
        await second.close();
      }
    } finally {
      await store.drop();
    }
  });
});

describe('async requests: exactly once, retries, rights', () => {
  let t: TestApp;
  after(async () => {
    await t?.close();
  });

  test('a request running on a live node (lease not run out) is not taken; after the lease it is, once', async () => {
    t = await startTestApp({ backgroundWorkers: false });
    const txn = await queueCreate(t.app, 'lease.user');
    await t.app.db.query(
      `UPDATE async_requests SET state = 'running', attempts = 1, claimed_by = 'live-node', claimed_at = now()
        WHERE tenant_id = 'default' AND txn = $1`,
      [txn],
    );
    assert.equal(await t.app.asyncWorker.runOnce(), 0);
    const impatient = new AsyncWorker(
      t.app.asyncRequests,
      t.app.service,
      new TenantDirectory(t.app.db),
      t.app.config,
      {
        leaseSeconds: 0,
      },
    );
    assert.equal(await impatient.runOnce(), 1);
    assert.equal(await changesOf(t.app, 'lease.user'), 1);
    assert.equal(asyncresp(await verifiedCompletion(t.app, txn)).status, '201');
  });

  test('two workers on one store run each request exactly once', async () => {
    const txns: string[] = [];
    for (let i = 0; i < 8; i++) txns.push(await queueCreate(t.app, `pair.${i}`));
    const tenants = new TenantDirectory(t.app.db);
    const a = new AsyncWorker(t.app.asyncRequests, t.app.service, tenants, t.app.config);
    const b = new AsyncWorker(t.app.asyncRequests, t.app.service, tenants, t.app.config);
    const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
    assert.equal(ra + rb, 8);
    for (let i = 0; i < 8; i++) assert.equal(await changesOf(t.app, `pair.${i}`), 1);
    const states = await t.app.db.query<{ state: string; attempts: number }>(
      `SELECT state, attempts FROM async_requests WHERE tenant_id = 'default' AND txn = ANY($1)`,
      [txns],
    );
    assert.deepEqual(
      states.rows.map((r) => `${r.state}/${r.attempts}`),
      Array(8).fill('done/1'),
    );
  });

  test('an unexpected error rolls back the write with its completion; retried; gives up with 500 after 5 runs', async () => {
    const created = await inject(t.app, 'POST', '/scim/v2/Users', {
      schemas: [USER],
      userName: 'crash.user',
    });
    const id = created.json().id as string;
    const etag = created.headers.etag;
    const res = await inject(
      t.app,
      'PATCH',
      `/scim/v2/Users/${id}`,
      { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'Crashed' }] },
      { prefer: 'respond-async' },
    );
    const txn = res.headers['set-txn'] as string;
    const service = t.app.service;
    const real = service.patch.bind(service);
    // The write happens, then the process "fails" before the completion is stored.
    service.patch = async (...args: Parameters<typeof real>) => {
      await real(...args);
      throw new Error('simulated crash after the write');
    };
    try {
      await assert.rejects(t.app.asyncWorker.runOnce(), /simulated crash/);
      const row = await t.app.db.query<{ state: string; attempts: number; result: unknown }>(
        `SELECT state, attempts, result FROM async_requests WHERE tenant_id = 'default' AND txn = $1`,
        [txn],
      );
      assert.deepEqual({ ...row.rows[0] }, { state: 'queued', attempts: 1, result: null });
      const unchanged = await inject(t.app, 'GET', `/scim/v2/Users/${id}`);
      assert.equal(unchanged.headers.etag, etag);
      assert.equal(unchanged.json().displayName, undefined);
      assert.equal((await inject(t.app, 'GET', `/scim/v2/.async/${txn}`)).status, 202);
      for (let attempt = 2; attempt <= 5; attempt++) await assert.rejects(t.app.asyncWorker.runOnce());
      // The sixth claim exceeds the attempts: a 500 completion, nothing applied.
      assert.equal(await t.app.asyncWorker.runOnce(), 1);
    } finally {
      service.patch = real;
    }
    const claims = await verifiedCompletion(t.app, txn);
    assert.deepEqual(asyncresp(claims), {
      method: 'PATCH',
      status: '500',
      response: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '500',
        detail: 'Internal server error; the request could not be run',
      },
    });
    assert.equal((await inject(t.app, 'GET', `/scim/v2/Users/${id}`)).headers.etag, etag);
  });

  test('a transient failure, then success: applied once', async () => {
    const created = await inject(t.app, 'POST', '/scim/v2/Users', {
      schemas: [USER],
      userName: 'retry.user',
    });
    const id = created.json().id as string;
    const res = await inject(
      t.app,
      'PUT',
      `/scim/v2/Users/${id}`,
      { schemas: [USER], userName: 'retry.user', displayName: 'Retried' },
      { prefer: 'respond-async' },
    );
    const txn = res.headers['set-txn'] as string;
    const service = t.app.service;
    const real = service.replace.bind(service);
    service.replace = async (...args: Parameters<typeof real>) => {
      await real(...args);
      throw new Error('connection lost');
    };
    await assert.rejects(t.app.asyncWorker.runOnce(), /connection lost/);
    service.replace = real;
    assert.equal(await t.app.asyncWorker.runOnce(), 1);
    assert.equal(await changesOf(t.app, 'retry.user'), 2); // the create and one PUT
    const after = await inject(t.app, 'GET', `/scim/v2/Users/${id}`);
    assert.equal(after.json().displayName, 'Retried');
    assert.deepEqual(asyncresp(await verifiedCompletion(t.app, txn)), {
      method: 'PUT',
      version: after.headers.etag,
      status: '200',
    });
  });

  test('finished requests are forgotten after keepDays (7): their completion resource is then 404', async () => {
    const old = await queueCreate(t.app, 'keep.old');
    const recent = await queueCreate(t.app, 'keep.recent');
    assert.equal(await t.app.asyncWorker.runOnce(), 2);
    await t.app.db.query(
      `UPDATE async_requests SET finished = now() - interval '8 days' WHERE tenant_id = 'default' AND txn = $1`,
      [old],
    );
    await t.app.db.query(
      `UPDATE async_requests SET finished = now() - interval '6 days' WHERE tenant_id = 'default' AND txn = $1`,
      [recent],
    );
    // A worker that has not pruned in the last minute (the app's just did).
    const fresh = new AsyncWorker(
      t.app.asyncRequests,
      t.app.service,
      new TenantDirectory(t.app.db),
      t.app.config,
    );
    assert.equal(await fresh.runOnce(), 0);
    assert.equal((await inject(t.app, 'GET', `/scim/v2/.async/${old}`)).status, 404);
    assert.equal((await inject(t.app, 'GET', `/scim/v2/.async/${recent}`)).status, 200);
  });

  test('rights are checked again when the request runs: a deleted client gets 401, a narrowed client 403', async () => {
    await t.app.admin.createTenant({ id: 'rights' });
    await t.app.admin.createClient('rights', { id: 'gone', name: 'gone', scopes: ['User:write'] });
    const gone = (await t.app.admin.issueToken('rights', 'gone')).token;
    await t.app.admin.createClient('rights', {
      id: 'narrowed',
      name: 'narrowed',
      scopes: ['User:write', 'Group:write'],
    });
    const narrowed = (await t.app.admin.issueToken('rights', 'narrowed')).token;
    const post = (token: string, userName: string) =>
      inject(
        t.app,
        'POST',
        '/tenants/rights/scim/v2/Users',
        { schemas: [USER], userName },
        {
          prefer: 'respond-async',
          authorization: `Bearer ${token}`,
        },
      );
    const goneRes = await post(gone, 'rights.gone');
    const narrowedRes = await post(narrowed, 'rights.narrowed');
    assert.equal(goneRes.status, 202);
    assert.equal(narrowedRes.status, 202);
    await t.app.admin.deleteClient('rights', 'gone');
    await t.app.db.query(
      `UPDATE clients SET scopes = '{Group:write}' WHERE tenant_id = 'rights' AND id = 'narrowed'`,
    );
    assert.equal(await t.app.asyncWorker.runOnce(), 2);
    const rows = await t.app.db.query<{
      txn: string;
      state: string;
      result: { events: Record<string, Record<string, unknown>> }[];
    }>(`SELECT txn, state, result FROM async_requests WHERE tenant_id = 'rights'`);
    const byTxn = new Map(rows.rows.map((r) => [r.txn, r]));
    const g = byTxn.get(goneRes.headers['set-txn'] as string)!;
    assert.equal(g.state, 'failed');
    assert.equal(g.result[0].events[ASYNCRESP].status, '401');
    const n = byTxn.get(narrowedRes.headers['set-txn'] as string)!;
    assert.equal(n.state, 'failed');
    assert.equal(n.result[0].events[ASYNCRESP].status, '403');
    // The tenant's own completion URL, its own issuer and JWKS.
    const location = narrowedRes.headers.location as string;
    assert.equal(location, `http://scimd.test/tenants/rights/scim/v2/.async/${n.txn}`);
    const done = await inject(t.app, 'GET', new URL(location).pathname, undefined, {
      authorization: `Bearer ${narrowed}`,
    });
    assert.equal(done.status, 200, done.text);
    const jwks = await inject(t.app, 'GET', '/tenants/rights/.well-known/jwks.json');
    const { payload } = await jwtVerify(done.text, createLocalJWKSet(JSON.parse(jwks.text) as JSONWebKeySet));
    assert.equal(payload.iss, 'http://scimd.test/tenants/rights/scim/v2');
    assert.equal(payload.aud, 'narrowed');
    assert.equal(payload.txn, n.txn);
    assert.deepEqual(payload.sub_id, { format: 'scim', uri: '/Users' });
    // The default tenant's keys do not verify it.
    const other = await inject(t.app, 'GET', '/.well-known/jwks.json');
    await assert.rejects(jwtVerify(done.text, createLocalJWKSet(JSON.parse(other.text) as JSONWebKeySet)));
    const users = await t.app.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM resources WHERE tenant_id = 'rights'`,
    );
    assert.equal(users.rows[0].n, 0);
  });
});

describe('async requests: the background worker', () => {
  let t: TestApp;
  after(async () => {
    await t?.close();
  });

  test('with workers on, a queued request completes without being stepped', async () => {
    t = await startTestApp();
    const txn = await queueCreate(t.app, 'loop.user');
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await inject(t.app, 'GET', `/scim/v2/.async/${txn}`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
    assert.equal(asyncresp(await verifiedCompletion(t.app, txn)).status, '201');
  });
});
