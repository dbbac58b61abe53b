/**
 * What the server itself does for the device model (draft-ietf-scim-device-model), attached to the
 * Device and EndpointApp resource types through the registry's generic hooks:
 *  - a Device with the endpointAppsExt extension gets the tenant's enterprise endpoints (readOnly,
 *    server-set), and its `applications` must name EndpointApps of the tenant ($ref filled in);
 *  - an EndpointApp created without certificateInfo gets a server-generated clientToken, shown once
 *    and kept only as a digest (the gateway verifies it through the admin API);
 *  - clients limited to managed devices see the devices whose `applications` name their app.
 */
import { randomBytes } from 'node:crypto';
import { ScimError } from '../scim/errors.ts';
import { isJsonObject, type JsonObject } from '../scim/json.ts';
import { DEVICE_SCHEMA, ENDPOINT_APPS_EXT_SCHEMA } from '../scim/schema/device-schemas.ts';
import type { StoreHookContext, StoreHookResult } from '../scim/schema/hooks.ts';
import type { SchemaRegistry } from '../scim/schema/registry.ts';

/** Tenant settings of the device feature (`settings.devices`). */
export interface DeviceSettings {
  deviceControlEnterpriseEndpoint?: string;
  telemetryEnterpriseEndpoint?: string;
}

export const DEVICE_SETTINGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    deviceControlEnterpriseEndpoint: { type: 'string', pattern: '^https?://' },
    telemetryEnterpriseEndpoint: { type: 'string', pattern: '^https?://' },
  },
} as const;

/** The name of the one-time secret of an EndpointApp. */
export const CLIENT_TOKEN = 'clientToken';

function deviceSettings(ctx: StoreHookContext): DeviceSettings {
  const d = ctx.settings.devices;
  return isJsonObject(d) ? (d as DeviceSettings) : {};
}

function deviceBeforeStore(resource: JsonObject, ctx: StoreHookContext): StoreHookResult | void {
  const ext = resource[ENDPOINT_APPS_EXT_SCHEMA];
  if (!isJsonObject(ext)) return;
  const settings = deviceSettings(ctx);
  if (!settings.deviceControlEnterpriseEndpoint) {
    throw ScimError.badRequest(
      'invalidValue',
      `This tenant has no enterprise gateway configured (settings.devices.deviceControlEnterpriseEndpoint), ` +
        `so devices with the ${ENDPOINT_APPS_EXT_SCHEMA} extension cannot be stored`,
    );
  }
  ext.deviceControlEnterpriseEndpoint = settings.deviceControlEnterpriseEndpoint;
  if (settings.telemetryEnterpriseEndpoint)
    ext.telemetryEnterpriseEndpoint = settings.telemetryEnterpriseEndpoint;
  else delete ext.telemetryEnterpriseEndpoint;
  const apps = Array.isArray(ext.applications) ? ext.applications.filter(isJsonObject) : [];
  const ids: string[] = [];
  for (const app of apps) {
    if (typeof app.value !== 'string') continue;
    ids.push(app.value);
    app.$ref = `${ctx.baseUrl}/EndpointApps/${encodeURIComponent(app.value)}`;
  }
  return ids.length
    ? { references: [{ resourceType: 'EndpointApp', ids, attribute: 'applications' }] }
    : undefined;
}

function endpointAppBeforeStore(resource: JsonObject, ctx: StoreHookContext): StoreHookResult | void {
  // The draft: with no certificate information, the server generates the token the app presents
  // to the enterprise endpoints (at most 500 characters; ours are 43).
  if (ctx.mode === 'create' && !isJsonObject(resource.certificateInfo)) {
    return { oneTimeSecrets: { [CLIENT_TOKEN]: randomBytes(32).toString('base64url') } };
  }
}

export function attachDeviceBehaviour(registry: SchemaRegistry): void {
  const device = registry.resourceType('Device');
  const app = registry.resourceType('EndpointApp');
  if (!device || !app || device.schema !== DEVICE_SCHEMA)
    throw new Error('the device model is not registered');
  device.hooks = { beforeStore: deviceBeforeStore };
  device.managedBy = { schema: ENDPOINT_APPS_EXT_SCHEMA, attribute: 'applications' };
  app.hooks = { beforeStore: endpointAppBeforeStore };
}
