/**
 * A flow's attribute mapping (src/sync/types.ts FlowMapping), from the source's representation to
 * the target's. Pure: no I/O.
 *
 * Order of work:
 *  1. `drop` rules remove their attributes from the source (so no rule can read them);
 *  2. the output starts as the source's content (without id, meta and the derived `groups`), or
 *     with `only` set, as just those source attributes plus `schemas`;
 *  3. the other rules run in order: `from`/`to` reads `from` in the source (after drops), removes it
 *     from the output and writes the (transformed) value at `to`; `attribute`/`transform` transforms
 *     the output's value in place; `set` writes a constant;
 *  4. `drop` rules remove their attributes from the output again: a dropped attribute never reaches
 *     the target, whatever another rule wrote there.
 */
import { createHash } from 'node:crypto';
import { isJsonObject, type JsonObject, type JsonValue } from '../../scim/json.ts';
import type { FlowMapping, Transform } from '../types.ts';
import { content, getPath, pruneEmpty, removePath, setPath } from './attributes.ts';

function transformString(s: string, t: Transform): string {
  switch (t) {
    case 'lowercase':
      return s.toLowerCase();
    case 'uppercase':
      return s.toUpperCase();
    case 'trim':
      return s.trim();
    case 'sha256':
      return createHash('sha256').update(s).digest('hex');
  }
}

/** Applies a transform to a string, to each string of an array, or to the `value` of multi-valued values. */
export function applyTransform(v: JsonValue, t: Transform): JsonValue {
  if (typeof v === 'string') return transformString(v, t);
  if (Array.isArray(v)) {
    return v.map((item) => {
      if (typeof item === 'string') return transformString(item, t);
      if (isJsonObject(item) && typeof item.value === 'string') {
        return { ...item, value: transformString(item.value, t) };
      }
      return item;
    });
  }
  return v;
}

export function applyMapping(source: JsonObject, mapping: FlowMapping | undefined): JsonObject {
  const src = structuredClone(source);
  const drops = (mapping?.rules ?? []).flatMap((r) => ('drop' in r ? [r.drop] : []));
  for (const d of drops) removePath(src, d);
  let out: JsonObject;
  if (mapping?.only) {
    out = {};
    const schemas = getPath(src, 'schemas');
    if (schemas !== undefined) out.schemas = structuredClone(schemas);
    for (const p of mapping.only) {
      const v = getPath(src, p);
      if (v !== undefined) setPath(out, p, structuredClone(v));
    }
  } else {
    out = content(src);
  }
  for (const rule of mapping?.rules ?? []) {
    if ('from' in rule) {
      const v = getPath(src, rule.from);
      removePath(out, rule.from);
      if (v !== undefined && v !== null) {
        setPath(
          out,
          rule.to,
          rule.transform ? applyTransform(structuredClone(v), rule.transform) : structuredClone(v),
        );
      }
    } else if ('attribute' in rule) {
      const v = getPath(out, rule.attribute);
      if (v !== undefined && v !== null) setPath(out, rule.attribute, applyTransform(v, rule.transform));
    } else if ('set' in rule) {
      setPath(out, rule.set, structuredClone(rule.value));
    }
  }
  for (const d of drops) removePath(out, d);
  return pruneEmpty(out);
}
