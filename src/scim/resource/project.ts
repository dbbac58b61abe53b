/**
 * Response projection: the `returned` characteristic (RFC 7643 §2.4 / §7) combined with the
 * `attributes` / `excludedAttributes` parameters (RFC 7644 §3.4.2.5, §3.9). The path resolution is
 * done once per (resource type, parameters) into a plan; applying a plan to a resource is a walk
 * over the resource's own keys, because it runs for every item of every list page.
 */
import { isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../schema/registry.ts';
import type { AttributeDefinition } from '../schema/types.ts';
import { hasSensitive, sensitiveSchemasOf, stripSensitive, stripValue } from './sensitive.ts';

export interface ProjectOptions {
  attributes?: string[];
  excludedAttributes?: string[];
  /**
   * Attribute paths the client sent in a POST/PUT/PATCH: `returned: request` attributes among them
   * are returned in the write's response (RFC 7643 §2.4) without being named in `attributes`.
   */
  requestedOnWrite?: Set<string>;
}

/** What to emit for one attribute: the whole value, or only the listed sub-attributes. */
interface AttrPlan {
  /** Undefined: copy the value as it is. Otherwise the sub-attribute names to keep. */
  subs?: Set<string>;
}

interface Plan {
  /** Top-level keys (schemas, common and core attributes) to emit, by canonical name. */
  top: Map<string, AttrPlan>;
  /** Extension URN (canonical spelling) → that extension's attributes to emit. */
  ext: Map<string, Map<string, AttrPlan>>;
  /** The same plan for a client that may not see sensitive attributes (see projectVisible). */
  hidden?: HiddenPlan | null;
}

/** An attribute of a hidden plan: its value is stripped of secrets (stripValue) before the plan applies. */
interface HiddenAttrPlan extends AttrPlan {
  strip?: AttributeDefinition;
}

/**
 * A plan that also leaves out what stripSensitive would: sensitive attributes are not in it, and
 * attributes with sensitive sub-attributes carry `strip`.
 */
interface HiddenPlan {
  top: Map<string, HiddenAttrPlan>;
  ext: Map<string, Map<string, HiddenAttrPlan>>;
  /**
   * Lower-cased URN → canonical URN of the extensions with sensitive attributes. stripSensitive
   * strips the first key spelling the URN in any case; a resource with another spelling of it (never
   * stored: documents are canonical) takes the general path, so the two paths cannot differ.
   */
  sensitiveExtensions: Map<string, string>;
}

/** `attributes` / `excludedAttributes` as a list: comma-separated, trimmed; nothing → undefined. */
export function parseAttributeList(param: string | string[] | undefined): string[] | undefined {
  if (param === undefined) return undefined;
  const out: string[] = [];
  for (const p of Array.isArray(param) ? param : [param]) {
    if (typeof p !== 'string') continue;
    for (const part of p.split(',')) {
      const t = part.trim();
      if (t) out.push(t);
    }
  }
  return out.length ? out : undefined;
}

/** One path resolved against a resource type. `attr` undefined means the whole schema (bare URN). */
interface Named {
  /** Extension URN for extension attributes, undefined for common/core. */
  ext?: string;
  /** The whole extension / core schema was named. */
  wholeSchema?: boolean;
  attr?: AttributeDefinition;
  sub?: AttributeDefinition;
}

function resolve(registry: SchemaRegistry, rt: ResourceTypeConfig, raw: string): Named | undefined {
  const lower = raw.toLowerCase();
  let uri: string | undefined;
  let rest = raw;
  // URNs contain dots ("2.0"), so the schema prefix is found by longest known URN, not by splitting.
  for (const u of registry.schemaUris()) {
    const ul = u.toLowerCase();
    if (lower === ul) {
      const owner = registry.schemasOf(rt).find((s) => s.schema.id.toLowerCase() === ul);
      if (!owner) return undefined;
      return owner.extension ? { ext: owner.schema.id, wholeSchema: true } : { wholeSchema: true };
    }
    if (lower.startsWith(`${ul}:`)) {
      uri = u;
      rest = raw.slice(u.length + 1);
      break;
    }
  }
  const dot = rest.indexOf('.');
  const attr = dot < 0 ? rest : rest.slice(0, dot);
  const subAttr = dot < 0 ? undefined : rest.slice(dot + 1);
  if (!attr) return undefined;
  const found = registry.findAttribute(rt, { uri, attr, subAttr });
  if (!found) return undefined;
  if (subAttr !== undefined && found.attribute.type !== 'complex') return undefined;
  return {
    ext: found.location === 'extension' ? found.schema : undefined,
    attr: found.attribute,
    sub: found.sub,
  };
}

/** Requests gathered per attribute: the attribute named whole, and/or some of its sub-attributes. */
interface Mentions {
  whole: boolean;
  subs: Set<string>;
}

class MentionIndex {
  /** Keyed by `${ext ?? ''}\u0000${attr.name}`. */
  readonly attrs = new Map<string, Mentions>();
  readonly wholeSchemas = new Set<string>();

  add(n: Named): void {
    if (n.wholeSchema) {
      this.wholeSchemas.add(n.ext ?? '');
      return;
    }
    const key = `${n.ext ?? ''}\u0000${n.attr!.name}`;
    let m = this.attrs.get(key);
    if (!m) this.attrs.set(key, (m = { whole: false, subs: new Set() }));
    if (n.sub) m.subs.add(n.sub.name);
    else m.whole = true;
  }

  get(ext: string | undefined, attr: AttributeDefinition, common: boolean): Mentions | undefined {
    const m = this.attrs.get(`${ext ?? ''}\u0000${attr.name}`);
    // Naming the core schema URN names its attributes, not the common ones (id, externalId, meta).
    if (!common && this.wholeSchemas.has(ext ?? '')) return { whole: true, subs: m?.subs ?? new Set() };
    return m;
  }
}

function buildIndex(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  paths: Iterable<string> | undefined,
): MentionIndex {
  const idx = new MentionIndex();
  if (paths) {
    for (const p of paths) {
      const n = resolve(registry, rt, p.trim());
      if (n) idx.add(n);
    }
  }
  return idx;
}

/** Sub-attributes allowed by their own `returned` when the parent is emitted by default. */
function defaultSubs(attr: AttributeDefinition, requested: Set<string>): Set<string> {
  const out = new Set<string>();
  for (const s of attr.subAttributes ?? []) {
    if (s.returned === 'never') continue;
    if (s.returned === 'request' && !requested.has(s.name)) continue;
    out.add(s.name);
  }
  return out;
}

function finish(attr: AttributeDefinition, subs: Set<string> | undefined): AttrPlan {
  if (!subs || attr.type !== 'complex') return {};
  // Every sub-attribute kept: copy the value instead of rebuilding it.
  if ((attr.subAttributes ?? []).every((s) => subs.has(s.name))) return {};
  return { subs };
}

function planAttribute(
  attr: AttributeDefinition,
  common: boolean,
  ext: string | undefined,
  attributes: MentionIndex | undefined,
  excluded: MentionIndex | undefined,
  onWrite: MentionIndex | undefined,
): AttrPlan | undefined {
  if (attr.returned === 'never') return undefined;
  const always = attr.returned === 'always';
  const written = onWrite?.get(ext, attr, common);
  if (attributes) {
    const m = attributes.get(ext, attr, common);
    if (m?.whole) return finish(attr, defaultSubs(attr, m.subs));
    if (m && m.subs.size) {
      const subs = new Set<string>();
      for (const s of attr.subAttributes ?? []) {
        if (s.returned === 'never') continue;
        if (s.returned === 'always' || m.subs.has(s.name)) subs.add(s.name);
      }
      return finish(attr, subs);
    }
    if (always) return finish(attr, defaultSubs(attr, new Set()));
    return undefined;
  }
  if (attr.returned === 'request' && !written) return undefined;
  const x = excluded?.get(ext, attr, common);
  if (x?.whole && !always) return undefined;
  const subs = defaultSubs(attr, written?.subs ?? new Set());
  if (x && x.subs.size) {
    for (const s of attr.subAttributes ?? [])
      if (x.subs.has(s.name) && s.returned !== 'always') subs.delete(s.name);
  }
  return finish(attr, subs);
}

function buildPlan(registry: SchemaRegistry, rt: ResourceTypeConfig, opts: ProjectOptions): Plan {
  const attributes = opts.attributes ? buildIndex(registry, rt, opts.attributes) : undefined;
  const excluded = opts.excludedAttributes ? buildIndex(registry, rt, opts.excludedAttributes) : undefined;
  const onWrite = opts.requestedOnWrite ? buildIndex(registry, rt, opts.requestedOnWrite) : undefined;
  const plan: Plan = { top: new Map([['schemas', {}]]), ext: new Map() };
  for (const attr of registry.common) {
    const p = planAttribute(attr, true, undefined, attributes, excluded, onWrite);
    if (p) plan.top.set(attr.name, p);
  }
  for (const { schema, extension } of registry.schemasOf(rt)) {
    const target = extension ? new Map<string, AttrPlan>() : plan.top;
    const ext = extension ? schema.id : undefined;
    for (const attr of schema.attributes) {
      const p = planAttribute(attr, false, ext, attributes, excluded, onWrite);
      if (p) target.set(attr.name, p);
    }
    if (extension && target.size) plan.ext.set(schema.id, target);
  }
  return plan;
}

const MAX_PLANS_PER_TYPE = 64;
const planCache = new WeakMap<SchemaRegistry, WeakMap<ResourceTypeConfig, Map<string, Plan>>>();

function cacheKey(opts: ProjectOptions): string {
  const w = opts.requestedOnWrite ? [...opts.requestedOnWrite].sort().join(',') : '';
  return `${opts.attributes ? `a${opts.attributes.join(',')}` : ''}\u0000${
    opts.excludedAttributes ? `e${opts.excludedAttributes.join(',')}` : ''
  }\u0000${opts.requestedOnWrite ? `w${w}` : ''}`.toLowerCase();
}

function planFor(registry: SchemaRegistry, rt: ResourceTypeConfig, opts: ProjectOptions): Plan {
  let byType = planCache.get(registry);
  if (!byType) planCache.set(registry, (byType = new WeakMap()));
  let plans = byType.get(rt);
  if (!plans) byType.set(rt, (plans = new Map()));
  const key = cacheKey(opts);
  let plan = plans.get(key);
  if (!plan) {
    plan = buildPlan(registry, rt, opts);
    // Parameters come from clients: bound the cache, evicting the oldest plan.
    if (plans.size >= MAX_PLANS_PER_TYPE) plans.delete(plans.keys().next().value!);
    plans.set(key, plan);
  }
  return plan;
}

function pickSubs(v: JsonValue, subs: Set<string>): JsonObject | undefined {
  if (!isJsonObject(v)) return undefined;
  let out: JsonObject | undefined;
  for (const k of Object.keys(v)) {
    if (subs.has(k)) (out ??= {})[k] = v[k];
  }
  return out;
}

function applyAttr(p: AttrPlan, v: JsonValue): JsonValue | undefined {
  if (!p.subs) return v;
  if (Array.isArray(v)) {
    const out: JsonValue[] = [];
    for (const el of v) {
      const picked = pickSubs(el, p.subs);
      if (picked) out.push(picked);
    }
    return out.length ? out : undefined;
  }
  return pickSubs(v, p.subs);
}

function hideAttrs(
  plans: Map<string, AttrPlan>,
  attrs: AttributeDefinition[],
  out: Map<string, HiddenAttrPlan>,
): void {
  const byName = new Map(attrs.map((a) => [a.name.toLowerCase(), a]));
  for (const [name, p] of plans) {
    const attr = byName.get(name.toLowerCase());
    if (!attr || !hasSensitive(attr)) out.set(name, p);
    else if (!attr.sensitive) out.set(name, { ...p, strip: attr });
    // A sensitive attribute itself: never emitted.
  }
}

function buildHiddenPlan(registry: SchemaRegistry, rt: ResourceTypeConfig, plan: Plan): HiddenPlan | null {
  const schemas = sensitiveSchemasOf(registry, rt);
  if (schemas.length === 0) return null;
  const hidden: HiddenPlan = { top: plan.top, ext: new Map(plan.ext), sensitiveExtensions: new Map() };
  for (const { schema, extension } of schemas) {
    if (!extension) {
      hideAttrs(plan.top, schema.attributes, (hidden.top = new Map()));
      continue;
    }
    hidden.sensitiveExtensions.set(schema.id.toLowerCase(), schema.id);
    const ext = plan.ext.get(schema.id);
    if (!ext) continue;
    const out = new Map<string, HiddenAttrPlan>();
    hideAttrs(ext, schema.attributes, out);
    hidden.ext.set(schema.id, out);
  }
  return hidden;
}

function applyHidden(p: HiddenAttrPlan, v: JsonValue): JsonValue | undefined {
  if (!p.strip) return applyAttr(p, v);
  const stripped = stripValue(p.strip, v);
  if (stripped === undefined || stripped === null) return undefined;
  return applyAttr(p, stripped);
}

/**
 * `project(registry, rt, hideSensitive ? stripSensitive(registry, rt, resource) : resource, opts)`
 * in one walk: the plan already leaves out sensitive attributes, so no stripped copy of the
 * resource is made first. The result is the same, key order included (test/unit/project-visible).
 */
export function projectVisible(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  resource: JsonObject,
  opts: ProjectOptions,
  hideSensitive: boolean,
): JsonObject {
  if (!hideSensitive) return project(registry, rt, resource, opts);
  const plan = planFor(registry, rt, opts);
  if (plan.hidden === undefined) plan.hidden = buildHiddenPlan(registry, rt, plan);
  const hidden = plan.hidden;
  if (hidden === null) return project(registry, rt, resource, opts);
  const out: JsonObject = {};
  for (const key of Object.keys(resource)) {
    const v = resource[key];
    if (v === null || v === undefined) continue;
    const p = hidden.top.get(key);
    if (p) {
      const r = applyHidden(p, v);
      if (r !== undefined) out[key] = r;
      continue;
    }
    const ext = hidden.ext.get(key);
    if (!ext) {
      const canonical = hidden.sensitiveExtensions.get(key.toLowerCase());
      if (canonical !== undefined && canonical !== key)
        return project(registry, rt, stripSensitive(registry, rt, resource), opts);
      continue;
    }
    if (!isJsonObject(v)) continue;
    let extOut: JsonObject | undefined;
    for (const k of Object.keys(v)) {
      const ap = ext.get(k);
      const ev = v[k];
      if (!ap || ev === null || ev === undefined) continue;
      const r = applyHidden(ap, ev);
      if (r !== undefined) (extOut ??= {})[k] = r;
    }
    if (extOut) out[key] = extOut;
  }
  return out;
}

/**
 * The representation returned to a client. `resource` must be in canonical form (as stored). Keys
 * the schemas do not define are dropped. Values that need no trimming are shared with `resource`,
 * not copied: serialise or copy the result, don't mutate it.
 */
export function project(
  registry: SchemaRegistry,
  rt: ResourceTypeConfig,
  resource: JsonObject,
  opts: ProjectOptions = {},
): JsonObject {
  const plan = planFor(registry, rt, opts);
  const out: JsonObject = {};
  for (const key of Object.keys(resource)) {
    const v = resource[key];
    if (v === null || v === undefined) continue;
    const p = plan.top.get(key);
    if (p) {
      const r = applyAttr(p, v);
      if (r !== undefined) out[key] = r;
      continue;
    }
    const ext = plan.ext.get(key);
    if (!ext || !isJsonObject(v)) continue;
    let extOut: JsonObject | undefined;
    for (const k of Object.keys(v)) {
      const ap = ext.get(k);
      const ev = v[k];
      if (!ap || ev === null || ev === undefined) continue;
      const r = applyAttr(ap, ev);
      if (r !== undefined) (extOut ??= {})[k] = r;
    }
    if (extOut) out[key] = extOut;
  }
  return out;
}
