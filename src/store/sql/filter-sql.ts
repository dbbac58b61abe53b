/**
 * Compiles a bound SCIM filter (RFC 7644 §3.4.2.2) to a parameterized PostgreSQL boolean
 * expression over `resources r` (src/store/schema.sql.ts). The semantics are those of the
 * in-memory evaluator (src/scim/filter/evaluate.ts); the property test holds the two together.
 *
 * NULL convention: a compiled expression is TRUE for a match and FALSE *or NULL* otherwise (NULL
 * stands for "compared with an absent value"). Only negation turns NULL into FALSE first
 * (`NOT COALESCE(x, FALSE)`): wrapping every comparison in COALESCE would hide `lower(doc ->> 'userName')
 * = lower($1)` from the planner and lose the unique index. Callers use the result in WHERE only.
 */
import { ScimError } from '../../scim/errors.ts';
import type { BoundAttr, BoundFilter, CompareOp, FilterValue } from '../../scim/filter/ast.ts';
import { parseDateTime } from '../../scim/filter/bind.ts';
import type { ResourceTypeConfig, SchemaRegistry } from '../../scim/schema/registry.ts';
import { findSubAttribute } from '../../scim/schema/registry.ts';
import type { AttributeDefinition } from '../../scim/schema/types.ts';
import { managedRefStatements } from './managed-sql.ts';
import { SqlParams, sqlIdent, sqlLiteral } from './params.ts';

export { SqlParams } from './params.ts';

/** Where one scalar value is read from. Every form yields SQL NULL when the value is absent. */
export type Source =
  /** A jsonb value: `parent -> key`, or `parent` itself when key is undefined (an array element). */
  | { kind: 'json'; parent: string; key?: string }
  /** A text expression (a column, or a derived string such as meta.version). */
  | { kind: 'text'; expr: string }
  /** A timestamptz column. */
  | { kind: 'timestamp'; expr: string };

/** A row set standing for the values of a relation attribute, iterated by EXISTS. */
type RelationElem =
  | { kind: 'members'; gm: string }
  /** `joinGroup` is set while compiling the condition when it reads the group's own document. */
  | { kind: 'groups'; gm: string; g: string; joinGroup: boolean };
/** What the sub-attributes of a value filter (`attr[...]`) are read from. */
type Elem = { kind: 'json'; expr: string } | RelationElem;

interface Ctx {
  rt: ResourceTypeConfig;
  p: SqlParams;
  alias: string;
}

const SQL_OPS: Record<'eq' | 'gt' | 'ge' | 'lt' | 'le', string> = {
  eq: '=',
  gt: '>',
  ge: '>=',
  lt: '<',
  le: '<=',
};

function invalidFilter(detail: string): ScimError {
  return ScimError.badRequest('invalidFilter', detail);
}

export function compileFilter(f: BoundFilter, rt: ResourceTypeConfig, p: SqlParams, alias = 'r'): string {
  return compileNode(f, { rt, p, alias }, undefined);
}

function compileNode(f: BoundFilter, ctx: Ctx, elem: Elem | undefined): string {
  switch (f.op) {
    case 'const':
      return f.value ? 'TRUE' : 'FALSE';
    case 'and':
      return `(${compileNode(f.left, ctx, elem)} AND ${compileNode(f.right, ctx, elem)})`;
    case 'or':
      return (
        equalsAny(f, ctx, elem) ?? `(${compileNode(f.left, ctx, elem)} OR ${compileNode(f.right, ctx, elem)})`
      );
    case 'not':
      return negate(compileNode(f.filter, ctx, elem));
    case 'pr':
      return presence(f.attr, ctx, elem);
    case 'valuePath':
      if (elem) throw invalidFilter('A value filter cannot be nested in another value filter');
      return valuePath(f.attr, f.filter, ctx);
    default:
      return compare(f.op, f.attr, f.value, ctx, elem);
  }
}

/**
 * `a eq "x" or a eq "y" or …` on one single-valued string attribute, as one `IN (…)`: an OR of
 * comparisons can be planned as a filter over every row of the tenant, while `IN` is served by the
 * attribute's index (the sync engine matches a page of 100 values at once this way). The same
 * truth values: true when the value is one of them, NULL (no match) when the attribute is absent.
 */
function equalsAny(f: BoundFilter, ctx: Ctx, elem: Elem | undefined): string | undefined {
  const leaves: BoundFilter[] = [];
  const walk = (n: BoundFilter) => {
    if (n.op === 'or') {
      walk(n.left);
      walk(n.right);
    } else leaves.push(n);
  };
  walk(f);
  const first = leaves[0];
  if (elem || first.op !== 'eq' || first.attr.attribute.multiValued || relationOf(first.attr, ctx.rt)) return;
  const def = scalarDefinition(first.attr);
  if (def.type !== 'string' && def.type !== 'reference') return;
  const values: string[] = [];
  for (const leaf of leaves) {
    if (leaf.op !== 'eq' || typeof leaf.value !== 'string' || !sameAttr(leaf.attr, first.attr)) return;
    values.push(leaf.value);
  }
  return overValues(first.attr, ctx, undefined, (src, d) => {
    const t = textOf(src);
    // An IN list of parameters (not one array parameter): bound, its items are constants the
    // planner folds into the array an index scan takes, statistics or not.
    const items = values.map((v) => (d.caseExact ? `${ctx.p.add(v)}::text` : `lower(${ctx.p.add(v)}::text)`));
    const cmp = `(${d.caseExact ? t : `lower(${t})`} IN (${items.join(', ')}))`;
    return src.kind === 'json' ? `(jsonb_typeof(${jsonValue(src)}) = 'string' AND ${cmp})` : cmp;
  });
}

function sameAttr(a: BoundAttr, b: BoundAttr): boolean {
  return a.location === b.location && a.schema === b.schema && a.attribute === b.attribute && a.sub === b.sub;
}

function negate(sql: string): string {
  return `(NOT COALESCE(${sql}, FALSE))`;
}

function compare(
  op: CompareOp,
  attr: BoundAttr,
  value: FilterValue,
  ctx: Ctx,
  elem: Elem | undefined,
): string {
  if (value === null) {
    // RFC 7644 §3.4.2.2 gives null no ordering; eq/ne null are the only meaningful forms.
    if (op === 'eq') return negate(presence(attr, ctx, elem));
    if (op === 'ne') return presence(attr, ctx, elem);
    throw invalidFilter(`Operator "${op}" cannot compare with null`);
  }
  // ne is the negation of "some value equals": true when no value equals, including when absent.
  if (op === 'ne') return negate(compare('eq', attr, value, ctx, elem));
  return overValues(attr, ctx, elem, (src, def) => comparePredicate(op, def, src, value, ctx.p));
}

/** The definition a bare complex attribute stands for in a comparison: its `value` sub-attribute. */
function valueSub(attr: AttributeDefinition): AttributeDefinition {
  const v = attr.type === 'complex' ? findSubAttribute(attr, 'value') : undefined;
  if (!v) throw invalidFilter(`Attribute "${attr.name}" is complex: name one of its sub-attributes`);
  return v;
}

/** The scalar definition a bound path compares against. */
export function scalarDefinition(attr: BoundAttr): AttributeDefinition {
  if (attr.sub) return attr.sub;
  return attr.attribute.type === 'complex' ? valueSub(attr.attribute) : attr.attribute;
}

/** Which relation (membership rows) an attribute is stored as, if any. */
export function relationOf(attr: BoundAttr, rt: ResourceTypeConfig): 'members' | 'groups' | undefined {
  if (attr.location !== 'core') return undefined;
  const n = attr.attribute.name.toLowerCase();
  if (rt.membersAttribute && n === rt.membersAttribute.toLowerCase()) return 'members';
  if (rt.groupsAttribute && n === rt.groupsAttribute.toLowerCase()) return 'groups';
  return undefined;
}

function qualify(alias: string | undefined, column: string): string {
  return alias ? `${alias}.${column}` : column;
}

/** The jsonb object holding an attribute: the document, or the extension object under its URN. */
export function docBase(attr: BoundAttr, alias: string | undefined): string {
  const doc = qualify(alias, 'doc');
  return attr.location === 'extension' ? `(${doc} -> ${sqlLiteral(attr.schema)})` : doc;
}

/** id, externalId and meta.* live in columns. */
export function commonSource(attr: BoundAttr, alias: string | undefined): Source {
  const name = attr.attribute.name.toLowerCase();
  if (name === 'id' && !attr.sub) return { kind: 'text', expr: qualify(alias, 'id') };
  if (name === 'externalid' && !attr.sub) return { kind: 'text', expr: qualify(alias, 'external_id') };
  if (name === 'meta' && attr.sub) {
    switch (attr.sub.name.toLowerCase()) {
      case 'resourcetype':
        return { kind: 'text', expr: qualify(alias, 'resource_type') };
      case 'created':
        return { kind: 'timestamp', expr: qualify(alias, 'created') };
      case 'lastmodified':
        return { kind: 'timestamp', expr: qualify(alias, 'last_modified') };
      case 'version':
        return { kind: 'text', expr: `('W/"' || ${qualify(alias, 'version')} || '"')` };
      default:
        // meta.location is built from the request's base URL, which the database does not know.
        throw invalidFilter(`meta.${attr.sub.name} cannot be used in a filter`);
    }
  }
  throw invalidFilter(
    `Attribute "${attr.attribute.name}${attr.sub ? `.${attr.sub.name}` : ''}" cannot be compared`,
  );
}

function relationSource(elem: RelationElem, sub: AttributeDefinition): Source {
  const n = sub.name.toLowerCase();
  if (elem.kind === 'members') {
    if (n === 'value') return { kind: 'text', expr: `${elem.gm}.member_id` };
    if (n === 'type') return { kind: 'text', expr: `${elem.gm}.member_type` };
    if (n === 'display') return { kind: 'text', expr: `${elem.gm}.display` };
  } else {
    if (n === 'value') return { kind: 'text', expr: `${elem.gm}.group_id` };
    if (n === 'display') {
      elem.joinGroup = true;
      return { kind: 'text', expr: `(${elem.g}.doc ->> 'displayName')` };
    }
    // Memberships are stored direct only; nested groups are not expanded into "indirect" ones.
    if (n === 'type') return { kind: 'text', expr: `'direct'` };
  }
  throw invalidFilter(`Sub-attribute "${sub.name}" of a membership cannot be used in a filter`);
}

function elemSource(elem: Elem, sub: AttributeDefinition): Source {
  return elem.kind === 'json'
    ? { kind: 'json', parent: elem.expr, key: sub.name }
    : relationSource(elem, sub);
}

function newRelationElem(rel: 'members' | 'groups', ctx: Ctx): RelationElem {
  return rel === 'members'
    ? { kind: 'members', gm: ctx.p.alias('gm') }
    : { kind: 'groups', gm: ctx.p.alias('gm'), g: ctx.p.alias('g'), joinGroup: false };
}

/** EXISTS over the membership rows of the resource, with `cond` (already compiled) over one row. */
function existsRelation(elem: RelationElem, ctx: Ctx, cond: string): string {
  const r = ctx.alias;
  const { gm } = elem;
  if (elem.kind === 'members') {
    return `EXISTS (SELECT 1 FROM group_members ${gm} WHERE ${gm}.tenant_id = ${r}.tenant_id AND ${gm}.group_id = ${r}.id AND ${cond})`;
  }
  const { g } = elem;
  const join = elem.joinGroup
    ? ` JOIN resources ${g} ON ${g}.tenant_id = ${gm}.tenant_id AND ${g}.id = ${gm}.group_id`
    : '';
  return `EXISTS (SELECT 1 FROM group_members ${gm}${join} WHERE ${gm}.tenant_id = ${r}.tenant_id AND ${gm}.member_id = ${r}.id AND ${cond})`;
}

/** The elements of a jsonb array; anything else (never written by the store) has none. */
export function arrayElements(expr: string): string {
  return `jsonb_array_elements(CASE WHEN jsonb_typeof(${expr}) = 'array' THEN ${expr} ELSE '[]'::jsonb END)`;
}

function existsElement(arrayExpr: string, e: string, cond: string): string {
  return `EXISTS (SELECT 1 FROM ${arrayElements(arrayExpr)} AS ${e}(v) WHERE ${cond})`;
}

/**
 * Applies a predicate on one scalar to every value a path names, true when any value satisfies it
 * (RFC 7644 §3.4.2.2: a multi-valued attribute matches if any of its values does).
 */
function overValues(
  attr: BoundAttr,
  ctx: Ctx,
  elem: Elem | undefined,
  pred: (src: Source, def: AttributeDefinition) => string,
): string {
  if (elem) {
    if (!attr.sub) throw invalidFilter('A value filter must name sub-attributes');
    return pred(elemSource(elem, attr.sub), attr.sub);
  }
  if (attr.location === 'common') return pred(commonSource(attr, ctx.alias), scalarDefinition(attr));
  const rel = relationOf(attr, ctx.rt);
  const def = scalarDefinition(attr);
  if (rel) {
    const re = newRelationElem(rel, ctx);
    return existsRelation(re, ctx, pred(relationSource(re, def), def));
  }
  const base = docBase(attr, ctx.alias);
  const a = attr.attribute;
  const complex = a.type === 'complex';
  if (!a.multiValued) {
    const src: Source = complex
      ? { kind: 'json', parent: `(${base} -> ${sqlLiteral(a.name)})`, key: def.name }
      : { kind: 'json', parent: base, key: a.name };
    return pred(src, def);
  }
  const e = ctx.p.alias('e');
  const src: Source = complex
    ? { kind: 'json', parent: `${e}.v`, key: def.name }
    : { kind: 'json', parent: `${e}.v` };
  return existsElement(`(${base} -> ${sqlLiteral(a.name)})`, e, pred(src, def));
}

export function jsonValue(src: Extract<Source, { kind: 'json' }>): string {
  return src.key === undefined ? src.parent : `(${src.parent} -> ${sqlLiteral(src.key)})`;
}

/** The text of a value (jsonb strings unquoted). */
export function textOf(src: Source): string {
  if (src.kind === 'json') {
    return src.key === undefined ? `(${src.parent} #>> '{}')` : `(${src.parent} ->> ${sqlLiteral(src.key)})`;
  }
  if (src.kind === 'text') return src.expr;
  return `(${src.expr})::text`;
}

/** Numeric value, NULL when not a JSON number (CASE keeps the cast from seeing other types). */
export function numericOf(src: Source): string {
  if (src.kind !== 'json') throw new Error('numeric values are stored in the document');
  const j = jsonValue(src);
  return `(CASE WHEN jsonb_typeof(${j}) = 'number' THEN (${j})::numeric END)`;
}

export function booleanOf(src: Source): string {
  if (src.kind !== 'json') throw new Error('boolean values are stored in the document');
  const j = jsonValue(src);
  return `(CASE WHEN jsonb_typeof(${j}) = 'boolean' THEN (${j})::boolean END)`;
}

/**
 * Instant of a dateTime, truncated to milliseconds: JavaScript dates (the evaluator, the
 * rendered meta.created/lastModified and the bound filter values) carry no more. A stored value
 * without a zone offset is UTC whatever the session TimeZone, as parseDateTime reads it.
 */
export function timestampOf(src: Source): string {
  if (src.kind === 'timestamp') return `date_trunc('milliseconds', ${src.expr})`;
  const t = textOf(src);
  const zoned = `(CASE WHEN ${t} ~ '(Z|[+-][0-9]{2}:[0-9]{2})$' THEN ${t} ELSE ${t} || 'Z' END)`;
  const instant = `date_trunc('milliseconds', ${zoned}::timestamptz)`;
  if (src.kind === 'text') return instant;
  return `(CASE WHEN jsonb_typeof(${jsonValue(src)}) = 'string' THEN ${instant} END)`;
}

/**
 * "Has a value" (RFC 7643 §2.5), recursively as the evaluator's isPresent: some scalar at any
 * depth that is not null and not "" (so "", [], {}, [""] and {"a": null} are all no value).
 */
const PRESENT_PATH = `'strict $.** ? (@.type() == "number" || @.type() == "boolean" || (@.type() == "string" && @ != ""))'`;

function presentSource(src: Source): string {
  if (src.kind === 'json') return `jsonb_path_exists(${jsonValue(src)}, ${PRESENT_PATH})`;
  if (src.kind === 'text') return `(${src.expr} <> '')`;
  return `(${src.expr} IS NOT NULL)`;
}

function presence(attr: BoundAttr, ctx: Ctx, elem: Elem | undefined): string {
  if (elem) {
    if (!attr.sub) throw invalidFilter('A value filter must name sub-attributes');
    return presentSource(elemSource(elem, attr.sub));
  }
  if (attr.location === 'common') {
    const name = attr.attribute.name.toLowerCase();
    if (name === 'externalid') return presentSource(commonSource(attr, ctx.alias));
    if (name === 'meta' && attr.sub) commonSource(attr, ctx.alias); // rejects meta.location
    return 'TRUE';
  }
  const rel = relationOf(attr, ctx.rt);
  if (rel) {
    const re = newRelationElem(rel, ctx);
    return existsRelation(re, ctx, attr.sub ? presentSource(relationSource(re, attr.sub)) : 'TRUE');
  }
  const a = attr.attribute;
  const attrJson = `(${docBase(attr, ctx.alias)} -> ${sqlLiteral(a.name)})`;
  // Without a sub-attribute, a multi-valued attribute is present when its array is.
  if (!attr.sub) return presentSource({ kind: 'json', parent: attrJson });
  if (!a.multiValued) return presentSource({ kind: 'json', parent: attrJson, key: attr.sub.name });
  const e = ctx.p.alias('e');
  return existsElement(attrJson, e, presentSource({ kind: 'json', parent: `${e}.v`, key: attr.sub.name }));
}

function valuePath(attr: BoundAttr, inner: BoundFilter, ctx: Ctx): string {
  const a = attr.attribute;
  if (a.type !== 'complex')
    throw invalidFilter(`Attribute "${a.name}" is not complex: it has no value filter`);
  if (attr.location === 'common') {
    // meta[...]: its sub-attributes are columns, and meta is always present.
    return compileNode(inner, ctx, undefined);
  }
  const rel = relationOf(attr, ctx.rt);
  if (rel) {
    const re = newRelationElem(rel, ctx);
    return existsRelation(re, ctx, compileNode(inner, ctx, re));
  }
  const attrJson = `(${docBase(attr, ctx.alias)} -> ${sqlLiteral(a.name)})`;
  if (!a.multiValued) {
    // A single complex value is filtered as itself; an absent one matches nothing.
    return `(jsonb_typeof(${attrJson}) = 'object' AND ${compileNode(inner, ctx, { kind: 'json', expr: attrJson })})`;
  }
  const e = ctx.p.alias('e');
  return existsElement(
    attrJson,
    e,
    `jsonb_typeof(${e}.v) = 'object' AND ${compileNode(inner, ctx, { kind: 'json', expr: `${e}.v` })}`,
  );
}

function comparePredicate(
  op: Exclude<CompareOp, 'ne'>,
  def: AttributeDefinition,
  src: Source,
  value: string | number | boolean,
  p: SqlParams,
): string {
  switch (def.type) {
    case 'string':
    case 'reference':
    case 'binary': {
      if (typeof value !== 'string') return 'FALSE';
      if (def.type === 'binary' && op !== 'eq' && op !== 'co' && op !== 'sw' && op !== 'ew') {
        throw invalidFilter(`Operator "${op}" is not supported on binary "${def.name}"`);
      }
      const t = textOf(src);
      // base64 is case-significant whatever the schema says.
      const exact = def.caseExact || def.type === 'binary';
      const l = exact ? t : `lower(${t})`;
      const operand = (v: string) => {
        const param = `${p.add(v)}::text`;
        return exact ? param : `lower(${param})`;
      };
      let cmp: string;
      switch (op) {
        case 'eq':
          cmp = `(${l} = ${operand(value)})`;
          break;
        case 'co':
          cmp = `(strpos(${l}, ${operand(value)}) > 0)`;
          break;
        case 'sw':
          // LIKE with the operand's wildcards escaped means exactly starts_with; unlike starts_with it
          // is served by a text_pattern_ops index (`indexed: 'prefix'`) on any collation, because the
          // pattern is a constant once the parameter is bound (custom plans of unnamed statements).
          cmp = `(${l} LIKE (${operand(escapeLike(value))} || '%'))`;
          break;
        case 'ew': {
          const r = operand(value);
          cmp = `(right(${l}, length(${r})) = ${r})`;
          break;
        }
        default:
          // Code point order: the same in every database, and as JavaScript's < within the BMP.
          cmp = `((${l}) COLLATE "C" ${SQL_OPS[op]} (${operand(value)}) COLLATE "C")`;
      }
      // A stored value of another JSON type never matches (->> would give its text).
      return src.kind === 'json' ? `(jsonb_typeof(${jsonValue(src)}) = 'string' AND ${cmp})` : cmp;
    }
    case 'dateTime': {
      if (op === 'co' || op === 'sw' || op === 'ew')
        throw invalidFilter(`Operator "${op}" is not supported on dateTime "${def.name}"`);
      if (typeof value !== 'string') return 'FALSE';
      const ms = parseDateTime(value);
      if (Number.isNaN(ms))
        throw invalidFilter(`"${value}" is not a dateTime (xsd:dateTime) for "${def.name}"`);
      return `(${timestampOf(src)} ${SQL_OPS[op]} ${p.add(new Date(ms).toISOString())}::timestamptz)`;
    }
    case 'integer':
    case 'decimal': {
      if (op === 'co' || op === 'sw' || op === 'ew')
        throw invalidFilter(`Operator "${op}" is not supported on number "${def.name}"`);
      if (typeof value !== 'number') return 'FALSE';
      return `(${numericOf(src)} ${SQL_OPS[op]} ${p.add(String(value))}::numeric)`;
    }
    case 'boolean': {
      if (op !== 'eq') throw invalidFilter(`Operator "${op}" is not supported on boolean "${def.name}"`);
      if (typeof value !== 'boolean') return 'FALSE';
      return `(${booleanOf(src)} = ${p.add(value)}::boolean)`;
    }
    default:
      throw invalidFilter(`Attribute "${def.name}" is complex: name one of its sub-attributes`);
  }
}

/** A LIKE pattern matching the text itself (default escape character: backslash). */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The expression `eq` compares for a single-valued string attribute, and the unique index is
 * built on: they must be the same text for the planner to use the index. Without an alias the
 * columns are unqualified (index definitions); with one, qualified (queries).
 */
export function equalityExpression(attr: BoundAttr, alias?: string): string {
  let src: Source;
  if (attr.location === 'common') src = commonSource(attr, alias);
  else {
    const a = attr.attribute;
    if (a.multiValued) throw new Error(`equalityExpression: ${a.name} is multi-valued`);
    const base = docBase(attr, alias);
    src = attr.sub
      ? { kind: 'json', parent: `(${base} -> ${sqlLiteral(a.name)})`, key: attr.sub.name }
      : { kind: 'json', parent: base, key: a.name };
  }
  const def = scalarDefinition(attr);
  if (def.type !== 'string' && def.type !== 'reference')
    throw new Error(`equalityExpression: ${def.name} is not a string`);
  const t = textOf(src);
  return def.caseExact ? t : `lower(${t})`;
}

/** A short stable hash so index names stay unique after truncation to PostgreSQL's 63 bytes. */
function hash8(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '_');
}

/**
 * An expression index the migrations keep for a single-valued string attribute, per resource type:
 * unique for uniqueness server (per tenant) or global (across tenants), a lookup index for an
 * `indexed` one. Partial on resource_type: a User and a Group may share a value.
 */
export interface UniqueIndex {
  name: string;
  /** false: a lookup index for an `indexed` attribute. */
  unique: boolean;
  /** A text_pattern_ops index, serving `sw` (LIKE 'prefix%') as well as `eq`. */
  prefix: boolean;
  /** The CREATE UNIQUE INDEX statement. */
  statement: string;
  /** The name an earlier release gave this index (dropped once this one exists). */
  replaces?: string;
  resourceType: string;
  /** The attribute it makes unique, as a client would write it (URN-qualified for extensions). */
  attribute: string;
}

/**
 * One unique expression index per single-valued string attribute whose uniqueness is server
 * (per tenant) or global (across tenants), per resource type, a plain one per `indexed: true`
 * attribute and a text_pattern_ops one per `indexed: 'prefix'` attribute. Partial on
 * resource_type: a User and a Group may share a value.
 */
export function uniqueIndexes(registry: SchemaRegistry): UniqueIndex[] {
  const out: UniqueIndex[] = [];
  for (const rt of registry.resourceTypes()) {
    for (const { schema, extension } of registry.schemasOf(rt)) {
      const location = extension ? 'extension' : 'core';
      const candidates: BoundAttr[] = [];
      for (const a of schema.attributes) {
        if (a.multiValued) continue;
        if (a.type === 'string') candidates.push({ location, schema: schema.id, attribute: a });
        if (a.type === 'complex') {
          for (const sub of a.subAttributes ?? []) {
            if (sub.type === 'string' && !sub.multiValued)
              candidates.push({ location, schema: schema.id, attribute: a, sub });
          }
        }
      }
      for (const b of candidates) {
        const leaf = b.sub ?? b.attribute;
        const uniqueness = leaf.uniqueness;
        const kinds: ('uq' | 'ix' | 'px')[] = [];
        if (uniqueness !== 'none') kinds.push('uq');
        // A prefix index serves eq too; a plain lookup index would add nothing to a unique one.
        if (leaf.indexed === 'prefix') kinds.push('px');
        else if (leaf.indexed && uniqueness === 'none') kinds.push('ix');
        const path = `${b.attribute.name}${b.sub ? `_${b.sub.name}` : ''}`;
        const dotted = `${b.attribute.name}${b.sub ? `.${b.sub.name}` : ''}`;
        // An attribute a resource may lack (an extension's, a sub-attribute, an optional one) is
        // indexed only where it has a value: a device of one kind then adds no entries to the other
        // kinds' indexes. Lookups still use the index: `expr = $1` and `expr LIKE …` imply
        // `expr IS NOT NULL`, and a unique index never compared NULLs anyway.
        const sparse = extension || b.sub !== undefined || !leaf.required;
        const equality = equalityExpression(b);
        for (const kind of kinds) {
          const unique = kind === 'uq';
          const stem = `resources_${kind}_${slug(rt.name)}_${slug(path)}`.slice(0, 50);
          const denseName = `${stem}_${hash8(`${rt.name}|${schema.id}|${path}`)}`;
          const name = sparse ? `${stem}_${hash8(`${rt.name}|${schema.id}|${path}|sparse`)}` : denseName;
          const expr = kind === 'px' ? `(${equality}) text_pattern_ops` : equality;
          const key = unique && uniqueness === 'global' ? expr : `tenant_id, ${expr}`;
          const where = `resource_type = ${sqlLiteral(rt.name)}${sparse ? ` AND ${equality} IS NOT NULL` : ''}`;
          out.push({
            name,
            unique,
            prefix: kind === 'px',
            statement: `CREATE ${unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${sqlIdent(name)} ON resources (${key}) WHERE ${where}`,
            replaces: sparse ? denseName : undefined,
            resourceType: rt.name,
            attribute: extension ? `${schema.id}:${dotted}` : dotted,
          });
        }
      }
    }
  }
  return out;
}

/** The statements the migrations run for the registry: its indexes, and the managed-refs upkeep. */
export function uniqueIndexStatements(registry: SchemaRegistry): string[] {
  return [
    ...uniqueIndexes(registry).flatMap((i) =>
      i.replaces ? [i.statement, `DROP INDEX IF EXISTS ${sqlIdent(i.replaces)}`] : [i.statement],
    ),
    ...managedRefStatements(registry),
  ];
}
