/**
 * projectVisible (one walk with a plan that already leaves out secrets) must answer exactly what
 * the general path answers: project(stripSensitive(resource)) for a client without
 * devices:secrets, project(resource) otherwise. Compared as JSON text, so key order counts too.
 * Inputs: the draft's device examples and an EndpointApp with its clientToken, the RFC 7643 User
 * and a Group, as stored and then randomly altered (keys dropped, nulls, other spellings of keys
 * and of extension URNs, values of the wrong shape, secret-only values), under random
 * attributes / excludedAttributes / requested-on-write lists.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isJsonObject, type JsonObject } from '../../src/scim/json.ts';
import { project, projectVisible, type ProjectOptions } from '../../src/scim/resource/project.ts';
import { stripSensitive } from '../../src/scim/resource/sensitive.ts';
import { prepareWrite } from '../../src/scim/resource/validate.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import {
  BLE_SCHEMA,
  ENDPOINT_APP_SCHEMA,
  PAIRING_OOB_SCHEMA,
  PAIRING_PASS_KEY_SCHEMA,
} from '../../src/scim/schema/device-schemas.ts';
import type { ResourceTypeConfig } from '../../src/scim/schema/registry.ts';
import { createServerRegistry } from '../../src/registry.ts';

const EXAMPLES = '/work/shared/spec/device-examples';
const registry = createServerRegistry();
const ID = 'e9e30dba-f08f-4109-8486-d5c6a3316111';

function withMeta(rt: ResourceTypeConfig, doc: JsonObject, extra: JsonObject = {}): JsonObject {
  return {
    schemas: doc.schemas,
    id: ID,
    ...Object.fromEntries(Object.entries(doc).filter(([k]) => k !== 'schemas')),
    ...extra,
    meta: {
      resourceType: rt.name,
      created: '2022-01-23T04:56:22.000Z',
      lastModified: '2022-05-13T04:42:34.000Z',
      location: `https://example.com/v2${rt.endpoint}/${ID}`,
      version: 'W/"3"',
    },
  };
}

const groupsValue = [
  { value: 'g1', $ref: 'https://example.com/v2/Groups/g1', display: 'Tour Guides', type: 'direct' },
];

/** Full representations (what ResourceService builds before projection), with their types. */
function samples(): { rt: ResourceTypeConfig; resource: JsonObject }[] {
  const out: { rt: ResourceTypeConfig; resource: JsonObject }[] = [];
  for (const file of readdirSync(EXAMPLES)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const body = JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as JsonObject;
    const rt = registry.resourceType(String((body.meta as JsonObject).resourceType))!;
    const doc = prepareWrite(registry, rt, body, { mode: 'create' });
    delete doc.id;
    delete doc.meta;
    out.push({ rt, resource: withMeta(rt, doc, { groups: groupsValue }) });
  }
  const app = registry.resourceType('EndpointApp')!;
  out.push({
    rt: app,
    resource: withMeta(app, {
      schemas: [ENDPOINT_APP_SCHEMA],
      applicationType: 'deviceControl',
      applicationName: 'Lighting',
      clientToken: 'secret-token',
    }),
  });
  const device = registry.resourceType('Device')!;
  // A BLE device with pass-key pairing (the key is a secret: the embedded value goes whole).
  out.push({
    rt: device,
    resource: withMeta(device, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Device', BLE_SCHEMA],
      displayName: 'BLE Tag 000001',
      active: true,
      [BLE_SCHEMA]: {
        versionSupport: ['5.3'],
        deviceMacAddress: '02:00:00:00:00:01',
        isRandom: false,
        pairingMethods: [PAIRING_PASS_KEY_SCHEMA],
        [PAIRING_PASS_KEY_SCHEMA]: { key: 123456 },
      },
    }),
  });
  const user = registry.resourceType('User')!;
  out.push({
    rt: user,
    resource: withMeta(user, {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      externalId: '701984',
      userName: 'bjensen@example.com',
      name: { formatted: 'Ms. Barbara J Jensen, III', familyName: 'Jensen', givenName: 'Barbara' },
      displayName: 'Babs Jensen',
      emails: [
        { value: 'bjensen@example.com', type: 'work', primary: true },
        { value: 'babs@jensen.org', type: 'home' },
      ],
      password: 't1meMa$heen',
      active: true,
      groups: groupsValue,
      [ENTERPRISE_USER_SCHEMA]: {
        employeeNumber: '701984',
        department: 'Tour Operations',
        manager: { value: '26118915', $ref: '../Users/26118915', displayName: 'John Smith' },
      },
    }),
  });
  const group = registry.resourceType('Group')!;
  out.push({
    rt: group,
    resource: withMeta(group, {
      schemas: [GROUP_SCHEMA],
      displayName: 'Tour Guides',
      members: [{ value: ID, $ref: `https://example.com/v2/Users/${ID}`, type: 'User', display: 'Babs' }],
    }),
  });
  return out;
}

/** Attribute paths of a type as clients write them: plain, URN-qualified, sub-attributes, whole URNs. */
function pathsOf(rt: ResourceTypeConfig): string[] {
  const out = ['id', 'externalId', 'schemas', 'meta', 'meta.created', 'meta.location', 'nosuch', 'x.y'];
  for (const { schema, extension } of registry.schemasOf(rt)) {
    out.push(schema.id);
    for (const attr of schema.attributes) {
      const names = [`${schema.id}:${attr.name}`];
      if (!extension) names.push(attr.name);
      for (const n of names) {
        out.push(n);
        for (const sub of attr.subAttributes ?? []) out.push(`${n}.${sub.name}`);
      }
    }
  }
  return out;
}

const changeCase = (s: string) =>
  s.replace(/[a-z]/, (c) => c.toUpperCase()) === s
    ? s.toLowerCase()
    : s.replace(/[a-z]/, (c) => c.toUpperCase());

type Alteration =
  | { kind: 'drop' | 'null' | 'respell' | 'scalar' | 'empty'; key: number }
  | { kind: 'respellInside' | 'nullInside' | 'dropInside'; key: number; inner: number }
  | { kind: 'secretOnlyArray' };

/** Applies an alteration to a copy of the resource (keys picked by index, modulo their number). */
function alter(resource: JsonObject, a: Alteration): JsonObject {
  const keys = Object.keys(resource);
  const out: JsonObject = {};
  if (a.kind === 'secretOnlyArray') {
    // A complex attribute with secret sub-attributes given as an array of secret-only values.
    for (const k of keys) out[k] = resource[k];
    const ble = out[BLE_SCHEMA];
    if (isJsonObject(ble))
      out[BLE_SCHEMA] = { ...ble, [PAIRING_OOB_SCHEMA]: [{ key: 'k' }, { randomNumber: 1 }] };
    return out;
  }
  const target = keys[a.key % keys.length];
  for (const k of keys) {
    const v = resource[k];
    if (k !== target) {
      out[k] = v;
      continue;
    }
    switch (a.kind) {
      case 'drop':
        break;
      case 'null':
        out[k] = null;
        break;
      case 'respell':
        out[changeCase(k)] = v;
        break;
      case 'scalar':
        out[k] = 'scalar';
        break;
      case 'empty':
        out[k] = Array.isArray(v) ? [] : {};
        break;
      default: {
        if (!isJsonObject(v)) {
          out[k] = v;
          break;
        }
        const inner = Object.keys(v);
        const ik = inner[a.inner % Math.max(1, inner.length)];
        const copy: JsonObject = {};
        for (const [x, y] of Object.entries(v)) {
          if (x !== ik) copy[x] = y;
          else if (a.kind === 'respellInside') copy[changeCase(x)] = y;
          else if (a.kind === 'nullInside') copy[x] = null;
        }
        out[k] = copy;
      }
    }
  }
  return out;
}

const alteration: fc.Arbitrary<Alteration> = fc.oneof(
  fc.record({
    kind: fc.constantFrom(
      'drop' as const,
      'null' as const,
      'respell' as const,
      'scalar' as const,
      'empty' as const,
    ),
    key: fc.nat(),
  }),
  fc.record({
    kind: fc.constantFrom('respellInside' as const, 'nullInside' as const, 'dropInside' as const),
    key: fc.nat(),
    inner: fc.nat(),
  }),
  fc.constant({ kind: 'secretOnlyArray' as const }),
);

function general(rt: ResourceTypeConfig, r: JsonObject, opts: ProjectOptions, hide: boolean): JsonObject {
  return project(registry, rt, hide ? stripSensitive(registry, rt, r) : r, opts);
}

function same(rt: ResourceTypeConfig, r: JsonObject, opts: ProjectOptions, hide: boolean): void {
  const before = JSON.stringify(r);
  const fast = JSON.stringify(projectVisible(registry, rt, r, opts, hide));
  assert.equal(
    fast,
    JSON.stringify(general(rt, r, opts, hide)),
    `${rt.name} ${JSON.stringify(opts)} hide=${hide}`,
  );
  assert.equal(JSON.stringify(r), before, 'the input is not changed');
}

describe('projectVisible = project ∘ stripSensitive', () => {
  const all = samples();

  test('the samples, without parameters, as a client with and without devices:secrets', () => {
    for (const { rt, resource } of all) for (const hide of [true, false]) same(rt, resource, {}, hide);
  });

  test('secrets are left out (BLE OOB key and random number, the EndpointApp clientToken)', () => {
    const ble = all.find(
      (s) =>
        isJsonObject(s.resource[BLE_SCHEMA]) && (s.resource[BLE_SCHEMA] as JsonObject)[PAIRING_OOB_SCHEMA],
    )!;
    const shown = projectVisible(registry, ble.rt, ble.resource, {}, true);
    assert.equal((shown[BLE_SCHEMA] as JsonObject)[PAIRING_OOB_SCHEMA], undefined);
    assert.deepEqual(
      (
        (projectVisible(registry, ble.rt, ble.resource, {}, false)[BLE_SCHEMA] as JsonObject)[
          PAIRING_OOB_SCHEMA
        ] as JsonObject
      ).key,
      'TheKeyvalueRetrievedFromOOB',
    );
    const app = all.find((s) => s.rt.name === 'EndpointApp' && s.resource.clientToken)!;
    assert.equal(projectVisible(registry, app.rt, app.resource, {}, true).clientToken, undefined);
    assert.equal(projectVisible(registry, app.rt, app.resource, {}, false).clientToken, 'secret-token');
  });

  test('an extension URN spelled in another case before the stored one takes the general path', () => {
    const ble = all.find((s) => isJsonObject(s.resource[BLE_SCHEMA]))!;
    const { schemas, ...rest } = ble.resource;
    const resource: JsonObject = { schemas, [BLE_SCHEMA.toUpperCase()]: { deviceMacAddress: 'x' }, ...rest };
    same(ble.rt, resource, {}, true);
    same(ble.rt, resource, { attributes: [BLE_SCHEMA] }, true);
  });

  test('random resources and parameters', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: all.length - 1 }),
        fc.array(alteration, { maxLength: 4 }),
        fc.constantFrom('attributes', 'excludedAttributes', 'none'),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        fc.boolean(),
        fc.boolean(),
        (which, alterations, mode, picks, written, respellPaths, hide) => {
          const { rt, resource } = all[which];
          const r = alterations.reduce(alter, resource);
          const paths = pathsOf(rt);
          const pick = (i: number) => {
            const p = paths[i % paths.length];
            return respellPaths ? p.toUpperCase() : p;
          };
          const opts: ProjectOptions = {};
          if (mode === 'attributes') opts.attributes = picks.map(pick);
          if (mode === 'excludedAttributes') opts.excludedAttributes = picks.map(pick);
          if (written.length) opts.requestedOnWrite = new Set(written.map(pick));
          same(rt, r, opts, hide);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
