/**
 * Shared pieces of the credential tests: exact SCIM error assertions, tenants with an admin
 * token of their own, and users created through the SCIM API.
 */
import assert from 'node:assert/strict';
import type { TestApp, TestResponse } from '../helpers/app.ts';

export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ORIGIN = 'http://scimd.test';

export const DETAIL_INVALID_TOKEN = 'Invalid or expired bearer token';
export const DETAIL_NO_CREDENTIALS = 'Authentication required: send Authorization: Bearer <token>';

/** Minimal response shape shared by fastify.inject answers and real HTTP(S) answers. */
export interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
  body: any;
  text: string;
}

/** A SCIM error body, exactly: schemas, status as a string, optional scimType, and detail. */
export function assertScimError(
  res: Answer,
  status: number,
  detail: string | RegExp,
  scimType?: string,
): void {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  assert.equal(res.headers['content-type'], 'application/scim+json; charset=utf-8');
  const keys = ['detail', 'schemas', 'status', ...(scimType ? ['scimType'] : [])];
  assert.deepEqual(Object.keys(res.body).sort(), keys.sort());
  assert.deepEqual(res.body.schemas, [ERROR]);
  assert.equal(res.body.status, String(status));
  if (scimType) assert.equal(res.body.scimType, scimType);
  if (typeof detail === 'string') assert.equal(res.body.detail, detail);
  else assert.match(res.body.detail, detail);
}

/** 401 with the Bearer challenge (RFC 6750 §3). */
export function assertUnauthorized(res: Answer, detail: string | RegExp = DETAIL_INVALID_TOKEN): void {
  assertScimError(res, 401, detail);
  assert.equal(res.headers['www-authenticate'], 'Bearer realm="scimd"');
}

export function assertForbidden(res: Answer, detail: string | RegExp): void {
  assertScimError(res, 403, detail);
  assert.equal(res.headers['www-authenticate'], undefined);
}

/** Creates a tenant (unless it is 'default') and an admin client with a token for it. */
export async function tenantWithAdmin(
  t: TestApp,
  tenant: string,
  settings: Parameters<TestApp['app']['admin']['createTenant']>[0]['settings'] = {},
): Promise<string> {
  if (tenant !== 'default') await t.app.admin.createTenant({ id: tenant, settings });
  await t.app.admin.createClient(tenant, { id: `${tenant}-admin`, name: 'admin', scopes: ['admin'] });
  return (await t.app.admin.issueToken(tenant, `${tenant}-admin`)).token;
}

export function scimBase(tenant: string): string {
  return tenant === 'default' ? '/scim/v2' : `/tenants/${tenant}/scim/v2`;
}

/** Creates a User through the SCIM API of the tenant; returns its full representation. */
export async function createUser(
  t: TestApp,
  tenant: string,
  token: string,
  userName: string,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
): Promise<any> {
  const res = await t.request('POST', `${scimBase(tenant)}/Users`, {
    token,
    body: { schemas: [USER], userName },
  });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

export function listOk(res: TestResponse): void {
  assert.equal(res.status, 200, res.text.slice(0, 500));
  assert.equal(res.headers['content-type'], 'application/scim+json; charset=utf-8');
  assert.deepEqual(res.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
}
