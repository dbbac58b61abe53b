/**
 * SCIM events (RFC 9967) as Security Event Token claim sets (RFC 8417). Pure functions: given one
 * change of one resource and one audience, build the claims of one SET. Signing is keys.ts;
 * feeds and delivery decide which changes reach which audience.
 *
 * Decisions (see docs/events.md):
 * - `full` carries the resource representation after the change for create and PUT, and the
 *   PatchOp message for PATCH (RFC 9967 §2.4.2 and its examples; a group member change stays
 *   small however large the group). Receivers tell them apart by `data.schemas`.
 * - `version` (the ETag after the change) is sent with every create, PATCH and PUT event.
 * - activate/deactivate travel in the same SET as the create/PATCH/PUT that changed `active`
 *   (one transaction, one subject: RFC 9967 §2.1 allows several event URIs in one SET).
 */
import { randomBytes } from 'node:crypto';
import { isJsonObject, type JsonObject, type JsonValue } from '../scim/json.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../scim/schema/registry.ts';
import type { AttributeDefinition } from '../scim/schema/types.ts';

export const EVENT = {
  feedAdd: 'urn:ietf:params:scim:event:feed:add',
  feedRemove: 'urn:ietf:params:scim:event:feed:remove',
  createFull: 'urn:ietf:params:scim:event:prov:create:full',
  createNotice: 'urn:ietf:params:scim:event:prov:create:notice',
  patchFull: 'urn:ietf:params:scim:event:prov:patch:full',
  patchNotice: 'urn:ietf:params:scim:event:prov:patch:notice',
  putFull: 'urn:ietf:params:scim:event:prov:put:full',
  putNotice: 'urn:ietf:params:scim:event:prov:put:notice',
  delete: 'urn:ietf:params:scim:event:prov:delete',
  activate: 'urn:ietf:params:scim:event:prov:activate',
  deactivate: 'urn:ietf:params:scim:event:prov:deactivate',
  asyncResponse: 'urn:ietf:params:scim:event:misc:asyncresp',
} as const;

export type ScimEventUri = (typeof EVENT)[keyof typeof EVENT];

/** Every event URI this module can build (for ServiceProviderConfig.securityEvents.eventUris). */
export const SCIM_EVENT_URIS: readonly ScimEventUri[] = Object.values(EVENT);

export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export type EventForm = 'full' | 'notice';

/** RFC 9967 §2.1 subject identifier. */
export interface ScimSubjectId {
  format: 'scim';
  /** Path relative to the SCIM base URI, e.g. /Users/2819c223. */
  uri: string;
  externalId?: string;
}

export interface SetClaims {
  iss: string;
  iat: number;
  jti: string;
  aud: string | string[];
  txn: string;
  sub_id: ScimSubjectId;
  events: Record<string, JsonObject>;
}

/** What differs between the copies of one change sent to several receivers. */
export interface SetEnvelope {
  /** `iss`: the SCIM service provider (e.g. its base URL). */
  issuer: string;
  /** `aud`: the feed / receiver this copy is for. */
  audience: string | string[];
  /** `txn`: the same for every copy and re-transmission of one change (RFC 9967 §2.2). */
  txn: string;
  /** `iat` in seconds since the epoch; default now. */
  iat?: number;
  /** `jti`; default 128 random bits in hex, so each copy has its own. */
  jti?: string;
}

interface ResourceChange {
  /** Resource type endpoint, e.g. "/Users": sub_id.uri is `<endpoint>/<id>`. */
  endpoint: string;
  /** The representation after the change, as a client with every scope would read it (no writeOnly values). */
  resource: JsonObject;
}

interface ModifyChange extends ResourceChange {
  form: EventForm;
  /** The representation before the change: `notice` lists what differs, and `active` transitions are detected. */
  before?: JsonObject;
  /** Whether the resource was active before, when `before` is not at hand. */
  wasActive?: boolean;
  /** The changed attribute paths, when the caller knows them better than a comparison would. */
  attributes?: string[];
  /** ETag after the change; default resource.meta.version. */
  version?: string;
  /** Add prov:activate / prov:deactivate when `active` changed. Default true. */
  activation?: boolean;
  /** Attributes whose values `data` must not carry (see secretTest); default: the data as given. */
  secrets?: SecretTest;
}

export type ScimChange =
  | ({ type: 'create' } & Omit<ModifyChange, 'before' | 'wasActive'>)
  | ({ type: 'put' } & ModifyChange)
  | ({ type: 'patch'; patch: JsonObject } & ModifyChange)
  | ({ type: 'delete' | 'activate' | 'deactivate' | 'feed:add' | 'feed:remove' } & ResourceChange)
  | {
      type: 'asyncresp';
      /** sub_id.uri: the resource, or the endpoint a failed POST was sent to. */
      uri: string;
      externalId?: string;
      method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
      status: string | number;
      version?: string;
      bulkId?: string;
      /** A SCIM Error message, for a status other than 2xx. */
      response?: JsonObject;
    };

export function newJti(): string {
  return randomBytes(16).toString('hex');
}

/** A transaction id for a change or a 202 Set-Txn header. */
export function newTxn(): string {
  return randomBytes(16).toString('hex');
}

/** txn of the completion event of operation `index` (zero-based, original order) of an async Bulk. */
export function bulkTxn(setTxn: string, index: number): string {
  return `${setTxn}:${index}`;
}

/** sub_id of a resource: uri from its endpoint and id, externalId when it has one. */
export function subjectOf(endpoint: string, resource: JsonObject): ScimSubjectId {
  const id = resource.id;
  if (typeof id !== 'string' || id === '') throw new TypeError('the resource has no id');
  const base = endpoint.startsWith('/') ? endpoint : `/${endpoint}`;
  const sub: ScimSubjectId = { format: 'scim', uri: `${base.replace(/\/+$/, '')}/${id}` };
  if (typeof resource.externalId === 'string') sub.externalId = resource.externalId;
  return sub;
}

/** Builds the claims of one SET for one change and one audience. */
export function buildScimEvent(change: ScimChange, envelope: SetEnvelope): SetClaims {
  let sub: ScimSubjectId;
  if (change.type === 'asyncresp') {
    sub = { format: 'scim', uri: change.uri };
    if (change.externalId !== undefined) sub.externalId = change.externalId;
  } else {
    sub = subjectOf(change.endpoint, change.resource);
  }
  return {
    iss: envelope.issuer,
    iat: envelope.iat ?? Math.floor(Date.now() / 1000),
    jti: envelope.jti ?? newJti(),
    aud: envelope.audience,
    txn: envelope.txn,
    sub_id: sub,
    events: scimEvents(change),
  };
}

/** The `events` claim of a change: event URI → payload. */
export function scimEvents(change: ScimChange): Record<string, JsonObject> {
  switch (change.type) {
    case 'delete':
      return { [EVENT.delete]: {} };
    case 'activate':
      return { [EVENT.activate]: {} };
    case 'deactivate':
      return { [EVENT.deactivate]: {} };
    case 'feed:add':
      return { [EVENT.feedAdd]: {} };
    case 'feed:remove':
      return { [EVENT.feedRemove]: {} };
    case 'asyncresp': {
      const payload: JsonObject = { method: change.method };
      if (change.bulkId !== undefined) payload.bulkId = change.bulkId;
      if (change.version !== undefined) payload.version = change.version;
      payload.status = String(change.status);
      if (change.response !== undefined) payload.response = change.response;
      return { [EVENT.asyncResponse]: payload };
    }
    default:
      return modifyEvents(change);
  }
}

function modifyEvents(change: Extract<ScimChange, { form: EventForm }>): Record<string, JsonObject> {
  const full = change.form === 'full';
  const uri = {
    create: full ? EVENT.createFull : EVENT.createNotice,
    put: full ? EVENT.putFull : EVENT.putNotice,
    patch: full ? EVENT.patchFull : EVENT.patchNotice,
  }[change.type];
  const before = change.type === 'create' ? undefined : change.before;
  const payload: JsonObject = {};
  if (full) {
    const { secrets } = change;
    if (change.type === 'patch') payload.data = secrets ? redactPatchOp(change.patch, secrets) : change.patch;
    else payload.data = secrets ? redactObject(change.resource, '', secrets) : change.resource;
  } else {
    let attributes = change.attributes;
    if (!attributes) {
      if (change.type === 'patch' && !before) attributes = patchAttributes(change.patch);
      else attributes = changedAttributes(before, change.resource);
    }
    payload.attributes = [...new Set(attributes)];
  }
  const version = change.version ?? versionOf(change.resource);
  if (version !== undefined) payload.version = version;
  const events: Record<string, JsonObject> = { [uri]: payload };

  if (change.activation !== false) {
    const wasActive = change.type === 'create' ? false : before ? before.active === true : change.wasActive;
    const isActive = change.resource.active === true;
    // Without knowing the state before, no transition can be claimed.
    if (wasActive !== undefined && wasActive !== isActive) {
      events[isActive ? EVENT.activate : EVENT.deactivate] = {};
    }
  }
  return events;
}

function versionOf(resource: JsonObject): string | undefined {
  const meta = resource.meta;
  return isJsonObject(meta) && typeof meta.version === 'string' ? meta.version : undefined;
}

// ---- notice: which attributes changed ----

/** Never listed: they change with every write or are not attributes a receiver maps. */
const NOT_LISTED = new Set(['id', 'meta', 'schemas']);

function isUrnKey(key: string): boolean {
  return key.toLowerCase().startsWith('urn:');
}

/**
 * Paths (RFC 7644 PATCH path syntax) of the attributes that differ between two representations:
 * a sub-attribute of a complex single-valued attribute as `name.familyName`, a multi-valued
 * attribute as a whole (`emails`, `members`), an extension attribute as `<schema URN>:<name>`.
 * `before` undefined means the resource is new.
 */
export function changedAttributes(before: JsonObject | undefined, after: JsonObject): string[] {
  return diffObject(before ?? {}, after, '', true);
}

function diffObject(before: JsonObject, after: JsonObject, prefix: string, top: boolean): string[] {
  const out: string[] = [];
  const keys = [...Object.keys(after), ...Object.keys(before).filter((k) => !(k in after))];
  for (const key of keys) {
    if (top && NOT_LISTED.has(key)) continue;
    const a = before[key];
    const b = after[key];
    if (a !== undefined && b !== undefined && deepEqual(a, b)) continue;
    if (top && isUrnKey(key)) {
      const ea = isJsonObject(a) ? a : {};
      const eb = isJsonObject(b) ? b : {};
      out.push(...diffObject(ea, eb, `${key}:`, false));
    } else if (isJsonObject(a) && isJsonObject(b)) {
      // Both sides complex single-valued: name the sub-attributes that differ.
      for (const sub of diffObject(a, b, '', false)) out.push(`${prefix}${key}.${sub}`);
    } else {
      out.push(`${prefix}${key}`);
    }
  }
  return out;
}

function deepEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => deepEqual(v, b[i]));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

interface SplitPath {
  /** Schema URN of a fully qualified path, else undefined. */
  urn?: string;
  attr: string;
  /** Sub-attribute after the attribute (or after its value filter). */
  sub?: string;
  filtered: boolean;
}

/**
 * Splits a PATCH path without a full parse: the attribute name follows the last ":" before any
 * value filter (schema URNs contain dots, e.g. "2.0", so dots cannot be used to find it).
 */
function splitPath(path: string): SplitPath {
  const open = path.indexOf('[');
  let head = open >= 0 ? path.slice(0, open) : path;
  let sub: string | undefined;
  if (open >= 0) {
    const close = path.lastIndexOf(']');
    const tail = close >= 0 ? path.slice(close + 1) : '';
    if (tail.startsWith('.')) sub = tail.slice(1);
  }
  let urn: string | undefined;
  if (isUrnKey(head)) {
    const colon = head.lastIndexOf(':');
    urn = head.slice(0, colon);
    head = head.slice(colon + 1);
  }
  const dot = head.indexOf('.');
  if (dot >= 0) {
    sub = head.slice(dot + 1);
    head = head.slice(0, dot);
  }
  return { urn, attr: head, sub, filtered: open >= 0 };
}

/**
 * Attribute paths a PatchOp message touches: an operation's path without its value filter (a
 * filter selects values, it names no attribute), or, for an operation without a path, the
 * attributes in its value.
 */
export function patchAttributes(patch: JsonObject): string[] {
  const out: string[] = [];
  const ops = Array.isArray(patch.Operations) ? patch.Operations : [];
  for (const op of ops) {
    if (!isJsonObject(op)) continue;
    if (typeof op.path === 'string' && op.path !== '') {
      const p = splitPath(op.path);
      const name = p.urn ? `${p.urn}:${p.attr}` : p.attr;
      out.push(p.sub && !p.filtered ? `${name}.${p.sub}` : name);
    } else if (isJsonObject(op.value)) {
      for (const [k, v] of Object.entries(op.value)) {
        if (NOT_LISTED.has(k)) continue;
        if (isUrnKey(k) && isJsonObject(v)) out.push(...valueAttributes(v, `${k}:`));
        else out.push(...valueAttributes({ [k]: v }, ''));
      }
    }
  }
  return [...new Set(out)];
}

/**
 * Attributes set by a path-less operation's value: a complex single-valued value names its
 * sub-attributes, as replace only touches those (RFC 7644 §3.5.2.3).
 */
function valueAttributes(value: JsonObject, prefix: string): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (isJsonObject(v)) for (const s of Object.keys(v)) out.push(`${prefix}${k}.${s}`);
    else out.push(`${prefix}${k}`);
  }
  return out;
}

// ---- keeping secrets out of `data` ----

/** Tells whether an attribute path (lower-cased, `attr`, `attr.sub`, `<urn>:attr[.sub]`) holds a secret. */
export type SecretTest = (path: string) => boolean;

/**
 * The attributes a SET must not carry values of: writeOnly or never returned (passwords) and
 * `sensitive` ones (onboarding secrets), from the resource type's schemas.
 */
export function secretTest(registry: SchemaRegistry, rt: ResourceTypeConfig): SecretTest {
  const secrets = new Set<string>();
  const isSecret = (a: AttributeDefinition) =>
    a.mutability === 'writeOnly' || a.returned === 'never' || a.sensitive === true;
  const add = (urn: string, core: boolean, attrs: AttributeDefinition[]) => {
    for (const a of attrs) {
      const names = [`${urn}:${a.name}`.toLowerCase()];
      if (core) names.push(a.name.toLowerCase());
      for (const n of names) {
        if (isSecret(a)) secrets.add(n);
        for (const s of a.subAttributes ?? []) if (isSecret(s)) secrets.add(`${n}.${s.name.toLowerCase()}`);
      }
    }
  };
  const core = registry.schema(rt.schema);
  if (core) add(core.id, true, core.attributes);
  for (const ext of rt.schemaExtensions) {
    const s = registry.schema(ext.schema);
    if (s) add(s.id, false, s.attributes);
  }
  return (path) => secrets.has(path.toLowerCase());
}

/** A copy of a PatchOp message without secret values: such operations are dropped, such keys removed. */
export function redactPatchOp(patch: JsonObject, isSecret: SecretTest): JsonObject {
  const ops: JsonValue[] = [];
  for (const op of Array.isArray(patch.Operations) ? patch.Operations : []) {
    if (!isJsonObject(op)) continue;
    if (typeof op.path === 'string' && op.path !== '') {
      const p = splitPath(op.path);
      const attr = p.urn ? `${p.urn}:${p.attr}` : p.attr;
      const removing = String(op.op).toLowerCase() === 'remove';
      if (!removing && (isSecret(attr) || (p.sub !== undefined && isSecret(`${attr}.${p.sub}`)))) continue;
      if (op.value === undefined || p.sub !== undefined) ops.push(op);
      else ops.push({ ...op, value: redactValue(op.value, attr, isSecret) });
    } else if (isJsonObject(op.value)) {
      ops.push({ ...op, value: redactObject(op.value, '', isSecret) });
    } else {
      ops.push(op);
    }
  }
  return { ...patch, Operations: ops };
}

function redactObject(obj: JsonObject, prefix: string, isSecret: SecretTest): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) {
    if (prefix === '' && isUrnKey(k) && isJsonObject(v)) {
      out[k] = redactObject(v, `${k}:`, isSecret);
      continue;
    }
    const attr = `${prefix}${k}`;
    if (isSecret(attr)) continue;
    out[k] = redactValue(v, attr, isSecret);
  }
  return out;
}

/** The value of one attribute without its secret sub-attributes. */
function redactValue(value: JsonValue, attr: string, isSecret: SecretTest): JsonValue {
  const strip = (v: JsonValue): JsonValue => {
    if (!isJsonObject(v)) return v;
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) if (!isSecret(`${attr}.${k}`)) out[k] = x;
    return out;
  };
  return Array.isArray(value) ? value.map(strip) : strip(value);
}
