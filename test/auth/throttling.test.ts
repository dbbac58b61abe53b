/**
 * Throttling per client: the client's own rateLimit, else its tenant's settings.rateLimit, else
 * the node-wide rateLimit; none of them = no limit. A throttled request is a SCIM 429 with an
 * integer Retry-After.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, type TestResponse } from '../helpers/app.ts';
import { assertScimError, listOk } from './helpers.ts';

function assertThrottled(res: TestResponse, max: number, windowSeconds: number): void {
  assertScimError(res, 429, `Too many requests: at most ${max} per 1 minute; retry later`);
  const retryAfter = res.headers['retry-after'];
  assert.match(retryAfter ?? '', /^\d+$/, `Retry-After: ${retryAfter}`);
  assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= windowSeconds, `Retry-After: ${retryAfter}`);
  assert.equal(res.headers['x-ratelimit-limit'], String(max));
  assert.equal(res.headers['x-ratelimit-remaining'], '0');
  assert.equal(res.headers['www-authenticate'], undefined);
}

async function client(
  t: TestApp,
  tenant: string,
  id: string,
  rateLimit?: { max: number; windowSeconds: number },
): Promise<string> {
  await t.app.admin.createClient(tenant, {
    id,
    name: id,
    scopes: ['scim:read'],
    ...(rateLimit ? { rateLimit } : {}),
  });
  return (await t.app.admin.issueToken(tenant, id)).token;
}

describe('without a node-wide limit', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    await t.app.admin.createTenant({ id: 'acme' });
    await t.app.admin.createTenant({ id: 'capped', settings: { rateLimit: { max: 5, windowSeconds: 60 } } });
  });
  after(async () => {
    await t.close();
  });
  const list = (tenant: string, token: string) =>
    t.request('GET', `/tenants/${tenant}/scim/v2/Users`, { token });

  test("a client's own limit: the 4th request is 429; another client of the tenant is not affected", async () => {
    const limited = await client(t, 'acme', 'limited', { max: 3, windowSeconds: 60 });
    const other = await client(t, 'acme', 'other');
    for (let i = 0; i < 3; i++) {
      const res = await list('acme', limited);
      listOk(res);
      assert.equal(res.headers['x-ratelimit-remaining'], String(2 - i));
    }
    assertThrottled(await list('acme', limited), 3, 60);
    // Every endpoint counts against the same client budget.
    assertThrottled(await t.request('GET', '/tenants/acme/scim/v2/Groups', { token: limited }), 3, 60);
    for (let i = 0; i < 10; i++) listOk(await list('acme', other));
  });

  test('the budget is per client, not per token', async () => {
    const first = await client(t, 'acme', 'two-tokens', { max: 3, windowSeconds: 60 });
    const second = (await t.app.admin.issueToken('acme', 'two-tokens')).token;
    listOk(await list('acme', first));
    listOk(await list('acme', second));
    listOk(await list('acme', first));
    assertThrottled(await list('acme', second), 3, 60);
  });

  test("the tenant's default applies to clients without their own", async () => {
    const plain = await client(t, 'capped', 'plain');
    const own = await client(t, 'capped', 'own', { max: 2, windowSeconds: 30 });
    const generous = await client(t, 'capped', 'generous', { max: 8, windowSeconds: 60 });
    for (let i = 0; i < 5; i++) listOk(await list('capped', plain));
    assertThrottled(await list('capped', plain), 5, 60);
    // A client's own limit beats the tenant's, lower or higher.
    for (let i = 0; i < 2; i++) listOk(await list('capped', own));
    const res = await list('capped', own);
    assertScimError(res, 429, 'Too many requests: at most 2 per 30 seconds; retry later');
    assert.ok(Number(res.headers['retry-after']) <= 30);
    for (let i = 0; i < 8; i++) listOk(await list('capped', generous));
    assertThrottled(await list('capped', generous), 8, 60);
  });

  test('no limit configured: 50 quick requests are all 200', async () => {
    const free = await client(t, 'acme', 'free');
    const answers = await Promise.all(Array.from({ length: 50 }, () => list('acme', free)));
    assert.deepEqual(
      answers.map((r) => r.status),
      Array.from({ length: 50 }, () => 200),
    );
    assert.equal(answers[49].headers['x-ratelimit-limit'], undefined);
    assert.equal(answers[49].headers['retry-after'], undefined);
  });
});

describe('with a node-wide limit', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ rateLimit: { max: 4, windowSeconds: 60 } });
    await t.app.admin.createTenant({ id: 'acme' });
    await t.app.admin.createTenant({ id: 'capped', settings: { rateLimit: { max: 2, windowSeconds: 60 } } });
  });
  after(async () => {
    await t.close();
  });
  const list = (tenant: string, token: string) =>
    t.request('GET', `/tenants/${tenant}/scim/v2/Users`, { token });

  test('applies to clients with no limit of their own or of their tenant', async () => {
    const a = await client(t, 'acme', 'a');
    const b = await client(t, 'acme', 'b');
    for (let i = 0; i < 4; i++) listOk(await list('acme', a));
    assertThrottled(await list('acme', a), 4, 60);
    // Per client: b has its own budget.
    for (let i = 0; i < 4; i++) listOk(await list('acme', b));
    assertThrottled(await list('acme', b), 4, 60);
  });

  test("the tenant's and the client's own limits take precedence", async () => {
    const tenantDefault = await client(t, 'capped', 'td');
    for (let i = 0; i < 2; i++) listOk(await list('capped', tenantDefault));
    assertThrottled(await list('capped', tenantDefault), 2, 60);
    const own = await client(t, 'acme', 'own', { max: 6, windowSeconds: 60 });
    for (let i = 0; i < 6; i++) listOk(await list('acme', own));
    assertThrottled(await list('acme', own), 6, 60);
  });
});
