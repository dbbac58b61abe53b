/**
 * Attribute authority (src/sync/types.ts FlowAuthority): which attributes a flow may write on its
 * target. Paths name attributes as they appear on the target, i.e. after the flow's mapping (with
 * no renames, the same on both sides). Pure: no I/O.
 *
 * The owner of a path is that of the most specific listed path equal to it or above it
 * (`name` covers `name.givenName`), else `authority.default`, else the flow's source (push:
 * local, pull: remote). `initial` attributes are written when the flow creates the target
 * resource and never afterwards.
 *
 * - create: the target gets the attributes its source owns, plus `initial` ones;
 * - update: only the attributes the source owns change; every other attribute stays as the target
 *   has it (mergeOwned).
 */
import { findKey, isJsonObject, type JsonObject, type JsonValue } from '../../scim/json.ts';
import type { FlowAuthority, FlowDirection } from '../types.ts';
import { covers, ENGINE_IGNORED, extensionKeys, pathKey, pruneEmpty } from './attributes.ts';

export type Owner = 'local' | 'remote' | 'initial';

export class Authority {
  private readonly entries: { key: string; owner: Owner }[];
  readonly source: 'local' | 'remote';
  private readonly fallback: 'local' | 'remote';

  constructor(authority: FlowAuthority | undefined, direction: FlowDirection) {
    this.source = direction === 'push' ? 'local' : 'remote';
    this.fallback = authority?.default ?? this.source;
    const entries: { key: string; owner: Owner }[] = [];
    for (const p of authority?.local ?? []) entries.push({ key: pathKey(p), owner: 'local' });
    for (const p of authority?.remote ?? []) entries.push({ key: pathKey(p), owner: 'remote' });
    for (const p of authority?.initial ?? []) entries.push({ key: pathKey(p), owner: 'initial' });
    // Most specific first.
    this.entries = entries.sort((a, b) => b.key.length - a.key.length);
  }

  owner(path: string): Owner {
    const key = pathKey(path);
    for (const e of this.entries) if (covers(e.key, key)) return e.owner;
    return this.fallback;
  }

  /** Whether some listed path strictly below `path` has another owner than `path` itself. */
  private mixed(path: string): boolean {
    const key = pathKey(path);
    const own = this.owner(path);
    return this.entries.some((e) => e.key !== key && covers(key, e.key) && e.owner !== own);
  }

  /** Whether the flow may write `path` on its target, on create or on update. */
  writes(path: string, on: 'create' | 'update'): boolean {
    const o = this.owner(path);
    return o === this.source || (on === 'create' && o === 'initial');
  }

  /** The part of a mapped source document the flow writes (on create or update), plus `schemas`. */
  pick(doc: JsonObject, on: 'create' | 'update'): JsonObject {
    return pruneEmpty(this.walk(doc, undefined, on));
  }

  /**
   * The target's document with the attributes the flow writes taken from `incoming` (removed when
   * `incoming` lacks them) and every other attribute kept from `base`.
   */
  mergeOwned(base: JsonObject, incoming: JsonObject, on: 'create' | 'update'): JsonObject {
    const out = pruneEmpty(this.walk(incoming, base, on));
    const sk = findKey(out, 'schemas') ?? 'schemas';
    const schemas = new Set<string>();
    for (const s of [
      ...((base.schemas as string[] | undefined) ?? []),
      ...((incoming.schemas as string[] | undefined) ?? []),
    ])
      if (typeof s === 'string') schemas.add(s);
    out[sk] = [...schemas];
    return pruneEmpty(out);
  }

  /**
   * Builds a document attribute by attribute: a written attribute from `incoming`, another from
   * `base` (undefined base = leave it out). Complex values and extension objects whose
   * sub-attributes have several owners are walked one level down.
   */
  private walk(incoming: JsonObject, base: JsonObject | undefined, on: 'create' | 'update'): JsonObject {
    const out: JsonObject = {};
    const schemas = incoming[findKey(incoming, 'schemas') ?? 'schemas'] ?? base?.schemas;
    if (schemas !== undefined) out.schemas = structuredClone(schemas);
    const keys = new Map<string, { inc?: string; base?: string }>();
    for (const k of Object.keys(incoming)) keys.set(k.toLowerCase(), { inc: k });
    for (const k of Object.keys(base ?? {})) {
      const e = keys.get(k.toLowerCase());
      if (e) e.base = k;
      else keys.set(k.toLowerCase(), { base: k });
    }
    const exts = new Set(
      [...extensionKeys(incoming), ...extensionKeys(base ?? {})].map((k) => k.toLowerCase()),
    );
    for (const [lower, { inc, base: bk }] of keys) {
      if (ENGINE_IGNORED.has(lower)) continue;
      const name = inc ?? bk!;
      const iv = inc !== undefined ? incoming[inc] : undefined;
      const bv = bk !== undefined && base ? base[bk] : undefined;
      if (exts.has(lower)) {
        const v = this.level(name, ':', iv, bv, base !== undefined, on);
        if (v !== undefined) out[name] = v;
        continue;
      }
      const v = this.attribute(name, iv, bv, base !== undefined, on);
      if (v !== undefined) out[name] = v;
    }
    return out;
  }

  /** One attribute at `path`: taken whole, kept whole, or (mixed owners) sub-attribute by sub-attribute. */
  private attribute(
    path: string,
    iv: JsonValue | undefined,
    bv: JsonValue | undefined,
    hasBase: boolean,
    on: 'create' | 'update',
  ): JsonValue | undefined {
    if (this.mixed(path) && (isJsonObject(iv) || isJsonObject(bv))) {
      return this.level(path, '.', iv, bv, hasBase, on);
    }
    if (this.writes(path, on)) return iv === undefined ? undefined : structuredClone(iv);
    return hasBase && bv !== undefined ? structuredClone(bv) : undefined;
  }

  private level(
    prefix: string,
    sep: string,
    iv: JsonValue | undefined,
    bv: JsonValue | undefined,
    hasBase: boolean,
    on: 'create' | 'update',
  ): JsonObject | undefined {
    const io = isJsonObject(iv) ? iv : {};
    const bo = isJsonObject(bv) ? bv : {};
    const out: JsonObject = {};
    const names = new Map<string, string>();
    for (const k of [...Object.keys(io), ...Object.keys(bo)])
      if (!names.has(k.toLowerCase())) names.set(k.toLowerCase(), k);
    for (const name of names.values()) {
      const ik = findKey(io, name);
      const bk = findKey(bo, name);
      const v = this.attribute(
        `${prefix}${sep}${name}`,
        ik !== undefined ? io[ik] : undefined,
        bk !== undefined ? bo[bk] : undefined,
        hasBase,
        on,
      );
      if (v !== undefined) out[name] = v;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
}
