/**
 * Shared pieces of the device model's HTTP tests: a tenant with the enterprise gateway configured,
 * clients with chosen scopes, the draft's examples as request bodies, and exact SCIM assertions.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NewClient } from '../../src/admin/service.ts';
import type { TestApp, TestResponse } from '../helpers/app.ts';

export { assertScimError, assertForbidden, assertUnauthorized, listOk } from '../auth/helpers.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
export type Json = any;

export const EXAMPLES = '/work/shared/spec/device-examples';
export const ORIGIN = 'http://scimd.test';
export const SCIM_JSON = 'application/scim+json; charset=utf-8';

export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
export const BULK_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
export const BULK_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:BulkResponse';
export const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

export const DEVICE = 'urn:ietf:params:scim:schemas:core:2.0:Device';
export const ENDPOINT_APP = 'urn:ietf:params:scim:schemas:core:2.0:EndpointApp';
export const BLE = 'urn:ietf:params:scim:schemas:extension:ble:2.0:Device';
export const DPP = 'urn:ietf:params:scim:schemas:extension:dpp:2.0:Device';
export const MAB = 'urn:ietf:params:scim:schemas:extension:ethernet-mab:2.0:Device';
export const FDO = 'urn:ietf:params:scim:schemas:extension:fido-device-onboard:2.0:Device';
export const FDO_ALIAS = 'urn:ietf:params:scim:schemas:extension:fido-device-onboard:2.0:Devices';
export const DEVICE_ALIAS = 'urn:ietf:params:scim:schemas:core:2.0:Devices';
export const ZIGBEE = 'urn:ietf:params:scim:schemas:extension:zigbee:2.0:Device';
export const APPS_EXT = 'urn:ietf:params:scim:schemas:extension:endpointAppsExt:2.0:Device';
export const PAIRING_NULL = 'urn:ietf:params:scim:schemas:extension:pairingNull:2.0:Device';
export const PAIRING_JUST_WORKS = 'urn:ietf:params:scim:schemas:extension:pairingJustWorks:2.0:Device';
export const PAIRING_PASS_KEY = 'urn:ietf:params:scim:schemas:extension:pairingPassKey:2.0:Device';
export const PAIRING_OOB = 'urn:ietf:params:scim:schemas:extension:pairingOOB:2.0:Device';

export const CONTROL_ENDPOINT = 'https://gateway.example.org/device_control/';
export const TELEMETRY_ENDPOINT = 'https://gateway.example.org/telemetry/';
export const DEVICE_SETTINGS = {
  devices: {
    deviceControlEnterpriseEndpoint: CONTROL_ENDPOINT,
    telemetryEnterpriseEndpoint: TELEMETRY_ENDPOINT,
  },
};

export function scimBase(tenant: string): string {
  return tenant === 'default' ? '/scim/v2' : `/tenants/${tenant}/scim/v2`;
}

export function baseUrl(tenant: string): string {
  return `${ORIGIN}${scimBase(tenant)}`;
}

/** A draft example as a request body: `id` and `meta` are the server's, so they are dropped. */
export function example(name: string): Json {
  const doc = JSON.parse(readFileSync(join(EXAMPLES, name), 'utf8'));
  delete doc.id;
  delete doc.meta;
  return doc;
}

/** Creates a tenant (with the enterprise gateway settings unless told otherwise) and its admin; returns the admin token. */
export async function deviceTenant(
  t: TestApp,
  tenant: string,
  settings: Record<string, unknown> = DEVICE_SETTINGS,
): Promise<string> {
  await t.app.admin.createTenant({ id: tenant, settings: settings as never });
  return clientToken(t, tenant, { id: `${tenant}-admin`, name: 'admin', scopes: ['admin'] });
}

/** Creates a client of the tenant and returns a fresh bearer token for it. */
export async function clientToken(
  t: TestApp,
  tenant: string,
  client: NewClient & { id: string },
): Promise<string> {
  await t.app.admin.createClient(tenant, client);
  return (await t.app.admin.issueToken(tenant, client.id)).token;
}

/** A SCIM client bound to one tenant and one token. */
export class Scim {
  constructor(
    readonly t: TestApp,
    readonly tenant: string,
    readonly token: string,
  ) {}

  get base(): string {
    return scimBase(this.tenant);
  }

  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<TestResponse> {
    return this.t.request(method, `${this.base}${path}`, { token: this.token, body, headers });
  }

  /** POST that must succeed; returns the 201 answer. */
  async create(endpoint: string, body: unknown): Promise<TestResponse> {
    const res = await this.request('POST', endpoint, body);
    assert.equal(res.status, 201, res.text.slice(0, 800));
    return res;
  }

  filter(endpoint: string, filter: string, extra = ''): Promise<TestResponse> {
    return this.request('GET', `${endpoint}?filter=${encodeURIComponent(filter)}${extra}`);
  }
}

/** A Device body with the BLE extension (pass key pairing) and the given MAC. */
export function bleDevice(mac: string, displayName = `BLE ${mac}`, more: Json = {}): Json {
  return {
    schemas: [DEVICE, BLE, ...(more[APPS_EXT] ? [APPS_EXT] : [])],
    displayName,
    active: true,
    [BLE]: {
      versionSupport: ['5.3'],
      deviceMacAddress: mac,
      pairingMethods: [PAIRING_PASS_KEY],
      [PAIRING_PASS_KEY]: { key: 123456 },
    },
    ...more,
  };
}

/** A Device body with the endpointAppsExt extension naming these EndpointApp ids (and a BLE MAC). */
export function managedDevice(mac: string, appIds: string[], displayName = `Managed ${mac}`): Json {
  return bleDevice(mac, displayName, {
    [APPS_EXT]: { applications: appIds.map((value) => ({ value })) },
  });
}

export function endpointApp(name: string, type = 'deviceControl', subjectName?: string): Json {
  const app: Json = { schemas: [ENDPOINT_APP], applicationType: type, applicationName: name };
  if (subjectName) app.certificateInfo = { rootCA: 'MIIBIjAN...', subjectName };
  return app;
}

/** Asserts a single-resource answer: status, SCIM media type, ETag = meta.version, Location on 201. */
export function assertResource(res: TestResponse, status: number, endpoint?: string): void {
  assert.equal(res.status, status, res.text.slice(0, 800));
  assert.equal(res.headers['content-type'], SCIM_JSON);
  assert.equal(typeof res.body.id, 'string');
  assert.equal(res.headers.etag, res.body.meta.version);
  assert.match(res.headers.etag!, /^W\/".+"$/);
  if (status === 201) {
    assert.equal(res.headers.location, res.body.meta.location);
    if (endpoint) assert.equal(res.body.meta.location.endsWith(`${endpoint}/${res.body.id}`), true);
  }
}

export function ids(res: TestResponse): string[] {
  return (res.body.Resources as Json[]).map((r) => r.id as string).sort();
}

export const sorted = (xs: string[]): string[] => [...xs].sort();
