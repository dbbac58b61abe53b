/**
 * Binds a parsed filter / PATCH path to one resource type: every attribute reference is resolved
 * through the schema registry and every comparison is type-checked, so the SQL compiler and the
 * in-memory evaluator receive a tree in which all remaining decisions are mechanical.
 *
 * Normalisations the consumers rely on (they never see the original forms):
 *  - `x eq null` becomes `not (x pr)` and `x ne null` becomes `x pr` (RFC 7643 §2.5: null is
 *    "unassigned"). No compare node carries a null value.
 *  - A complex attribute compared without a sub-attribute (`emails co "x"`) becomes its `value`
 *    sub-attribute (protocol digest §11 item 5); `emails pr` stays on the complex attribute.
 *  - dateTime values are rewritten to `Date.prototype.toISOString()` form (UTC, milliseconds);
 *    a value without a zone offset is taken as UTC.
 *  - In lenient mode an attribute the resource type does not have is bound as "no value":
 *    `pr`, `eq`, `co`, `sw`, `ew`, `gt`, `ge`, `lt`, `le` → const false; `ne` → const true (ne is
 *    `not eq`); `eq null` → true; `ne null` → false; a value path on it → const false. So
 *    `not (x eq 1)` and `x ne 1` agree.
 */
import { ScimError, type ScimType } from '../errors.ts';
import { getFormat } from '../schema/formats.ts';
import { findSubAttribute, formatAttrPath, type SchemaRegistry } from '../schema/registry.ts';
import type { AttributeDefinition, ResourceTypeDefinition } from '../schema/types.ts';
import type { AttrPath, BoundAttr, BoundFilter, CompareOp, Filter, FilterValue, PatchPath } from './ast.ts';

export interface BindOptions {
  /** Root (multi-type) queries: an attribute this type lacks has no value instead of being an error. */
  lenient?: boolean;
}

export interface BoundPatchPath {
  /** The target attribute; `sub` is set for `a.b`. For a whole extension, a synthetic complex attribute. */
  attr: BoundAttr;
  /** `a[filter]`: which values of `attr` are targeted (attrs inside have `sub` set). */
  valueFilter?: BoundFilter;
  /** `a[filter].sub`: the sub-attribute of each matching value. */
  subAttr?: AttributeDefinition;
  /** The extension URN when the path names a whole extension object. */
  wholeExtension?: string;
}

const ORDER_OPS: ReadonlySet<CompareOp> = new Set(['gt', 'ge', 'lt', 'le']);
const SUBSTRING_OPS: ReadonlySet<CompareOp> = new Set(['co', 'sw', 'ew']);
/** xsd:dateTime (date and time required; fraction and zone optional). */
const XSD_DATETIME = /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?$/;

/**
 * Milliseconds since the epoch of an xsd:dateTime, or NaN. A value without a zone is UTC (not the
 * server's local time, which is what Date.parse would assume).
 */
export function parseDateTime(s: string): number {
  if (!XSD_DATETIME.test(s)) return NaN;
  return Date.parse(/(?:Z|[+-]\d{2}:\d{2})$/.test(s) ? s : `${s}Z`);
}

function invalidFilter(detail: string): never {
  throw ScimError.badRequest('invalidFilter', detail);
}

function describeValue(v: FilterValue): string {
  return JSON.stringify(v);
}

/** The definition a comparison applies to: the sub-attribute if any, else the attribute. */
export function leafOf(attr: BoundAttr): AttributeDefinition {
  return attr.sub ?? attr.attribute;
}

/** A compare node for an attribute the type lacks (lenient mode): the attribute has no value. */
function absent(f: Filter): BoundFilter {
  switch (f.op) {
    case 'ne':
      return { op: 'const', value: f.value !== null };
    case 'eq':
      return { op: 'const', value: f.value === null };
    default:
      return { op: 'const', value: false };
  }
}

/** Type-checks one comparison and returns its bound form (null comparisons become presence tests). */
function bindCompare(op: CompareOp, named: BoundAttr, value: FilterValue, written: string): BoundFilter {
  if (value === null) {
    if (op === 'eq') return { op: 'not', filter: { op: 'pr', attr: named } };
    if (op === 'ne') return { op: 'pr', attr: named };
    invalidFilter(
      `Operator "${op}" cannot compare with null (only "eq null" and "ne null") for "${written}"`,
    );
  }
  let attr = named;
  if (leafOf(attr).type === 'complex') {
    const value = attr.sub ? undefined : findSubAttribute(attr.attribute, 'value');
    if (!value) {
      invalidFilter(`Complex attribute "${written}" needs a sub-attribute to be compared with "${op}"`);
    }
    attr = { ...attr, sub: value };
  }
  const def = leafOf(attr);
  const type = def.type;
  const fail = (why: string): never =>
    invalidFilter(`"${written} ${op} ${describeValue(value)}": ${why} (attribute type ${type})`);
  if (SUBSTRING_OPS.has(op) && type !== 'string' && type !== 'reference' && type !== 'binary') {
    fail(`operator "${op}" applies only to string attributes`);
  }
  if (ORDER_OPS.has(op) && (type === 'boolean' || type === 'binary')) {
    fail(`operator "${op}" is not defined for ${type} attributes`);
  }
  switch (type) {
    case 'boolean':
      if (typeof value !== 'boolean') fail('a boolean attribute compares only with true or false');
      break;
    case 'integer':
    case 'decimal':
      if (typeof value !== 'number') fail('a numeric attribute compares only with a number');
      break;
    case 'dateTime': {
      const ms = typeof value === 'string' ? parseDateTime(value) : NaN;
      if (Number.isNaN(ms)) fail('a dateTime attribute compares only with an xsd:dateTime string');
      return { op, attr, value: new Date(ms).toISOString() };
    }
    default:
      if (typeof value !== 'string') fail('a string attribute compares only with a "string"');
      if (def.format !== undefined)
        return { op, attr, value: formatOperand(def.format, op, value as string) };
  }
  return { op, attr, value };
}

/**
 * Stored values of an attribute with a `format` are in the format's canonical spelling, so the
 * operand is brought into it too: whole-value operators normalise (an operand the format rejects
 * is kept as written: no stored value can equal it, so eq is false and ne true), substring
 * operators use the format's fragment normalisation.
 */
function formatOperand(name: string, op: CompareOp, value: string): string {
  const format = getFormat(name);
  if (!format) return value;
  if (SUBSTRING_OPS.has(op)) return format.normalizeFragment ? format.normalizeFragment(value) : value;
  return format.normalize(value) ?? value;
}

class Binder {
  constructor(
    private readonly registry: SchemaRegistry,
    private readonly rt: ResourceTypeDefinition,
    private readonly lenient: boolean,
  ) {}

  /** `parent` is set inside a value path: names are then sub-attributes of that attribute. */
  bind(f: Filter, parent?: BoundAttr): BoundFilter {
    switch (f.op) {
      case 'and':
      case 'or':
        return { op: f.op, left: this.bind(f.left, parent), right: this.bind(f.right, parent) };
      case 'not':
        return { op: 'not', filter: this.bind(f.filter, parent) };
      case 'valuePath': {
        if (parent)
          invalidFilter(
            `Value filters cannot be nested ("${formatAttrPath(f.path)}[" inside a value filter)`,
          );
        const attr = this.resolve(f.path);
        if (!attr) return { op: 'const', value: false };
        if (attr.sub || attr.attribute.type !== 'complex') {
          invalidFilter(
            `"${formatAttrPath(f.path)}" is not a complex attribute and cannot have a value filter`,
          );
        }
        return { op: 'valuePath', attr, filter: this.bind(f.filter, attr) };
      }
      default: {
        const attr = parent ? this.resolveSub(parent, f.path) : this.resolve(f.path);
        if (!attr) return absent(f);
        if (f.op === 'pr') return { op: 'pr', attr };
        return bindCompare(f.op, attr, f.value, formatAttrPath(f.path));
      }
    }
  }

  private unknown(path: AttrPath, where = ''): undefined {
    if (this.lenient) return undefined;
    invalidFilter(`Unknown attribute "${formatAttrPath(path)}"${where} for resource type ${this.rt.name}`);
  }

  resolve(path: AttrPath): BoundAttr | undefined {
    if (path.attr === '') {
      // A bare URN is an attribute only when it names a URN-named (embedded schema) attribute.
      const embedded = this.registry.findAttribute(this.rt, path);
      if (embedded) return embedded;
      invalidFilter(`Missing attribute name after schema URN "${path.uri ?? ''}"`);
    }
    return this.registry.findAttribute(this.rt, path) ?? this.unknown(path);
  }

  resolveSub(parent: BoundAttr, path: AttrPath): BoundAttr | undefined {
    if (path.uri !== undefined || path.subAttr !== undefined) {
      invalidFilter(
        `Inside the value filter of "${parent.attribute.name}", "${formatAttrPath(path)}" must be a plain sub-attribute name`,
      );
    }
    const sub = findSubAttribute(parent.attribute, path.attr);
    if (!sub) return this.unknown(path, ` in the value filter of "${parent.attribute.name}"`);
    return { ...parent, sub };
  }
}

/** Binds a parsed filter to a resource type. Throws 400 invalidFilter. */
export function bindFilter(
  registry: SchemaRegistry,
  rt: ResourceTypeDefinition,
  filter: Filter,
  opts: BindOptions = {},
): BoundFilter {
  return new Binder(registry, rt, opts.lenient === true).bind(filter);
}

function invalidPath(detail: string, scimType: ScimType = 'invalidPath'): never {
  throw ScimError.badRequest(scimType, detail);
}

/** The resource type's extension whose URN is `urn` (case-insensitive), if any. */
function extensionOf(registry: SchemaRegistry, rt: ResourceTypeDefinition, urn: string): string | undefined {
  const lower = (registry.canonicalSchemaId(urn) ?? urn).toLowerCase();
  const ext = rt.schemaExtensions.find((e) => e.schema.toLowerCase() === lower);
  return ext ? (registry.schema(ext.schema)?.id ?? ext.schema) : undefined;
}

function wholeExtension(registry: SchemaRegistry, urn: string): BoundPatchPath {
  const schema = registry.schema(urn)!;
  const attribute: AttributeDefinition = {
    name: schema.id,
    type: 'complex',
    multiValued: false,
    description: schema.description,
    required: false,
    caseExact: false,
    mutability: 'readWrite',
    returned: 'default',
    uniqueness: 'none',
    subAttributes: schema.attributes,
  };
  return { attr: { location: 'extension', schema: schema.id, attribute }, wholeExtension: schema.id };
}

/**
 * Binds a PATCH path. Unknown attributes or sub-attributes in the path → 400 invalidPath; problems
 * inside the `[...]` filter → 400 invalidFilter. A path naming a whole extension (`attr: ''`, or a
 * URN that a parser without known URNs split at its last colon) binds to a synthetic complex
 * attribute whose sub-attributes are the extension schema's attributes, with `wholeExtension` set.
 */
export function bindPatchPath(
  registry: SchemaRegistry,
  rt: ResourceTypeDefinition,
  path: PatchPath,
): BoundPatchPath {
  const p = path.path;
  const written = formatAttrPath(p);
  const bareUrn =
    p.attr === '' ? p.uri : p.uri !== undefined && p.subAttr === undefined ? `${p.uri}:${p.attr}` : undefined;
  // With attr '' only a URN-named attribute (`extUrn:attrUrn`) is found; an extension URN is not.
  const attr = registry.findAttribute(rt, p);
  if (!attr && bareUrn !== undefined) {
    const urn = extensionOf(registry, rt, bareUrn);
    if (urn !== undefined) {
      if (path.valueFilter || path.subAttr !== undefined) {
        invalidPath(`Path "${bareUrn}" names a whole extension and cannot have a value filter`);
      }
      return wholeExtension(registry, urn);
    }
  }
  if (!attr) {
    if (p.attr === '') invalidPath(`"${p.uri ?? ''}" is not a schema extension of resource type ${rt.name}`);
    const known = registry.findAttribute(rt, { ...p, subAttr: undefined });
    if (known && p.subAttr !== undefined) {
      invalidPath(
        `Unknown sub-attribute "${p.subAttr}" of "${known.attribute.name}" for resource type ${rt.name}`,
      );
    }
    invalidPath(`Unknown attribute "${written}" for resource type ${rt.name}`);
  }
  if (!path.valueFilter) {
    if (path.subAttr !== undefined)
      invalidPath(`Sub-attribute "${path.subAttr}" without a value filter in "${written}"`);
    return { attr };
  }
  if (attr.sub || attr.attribute.type !== 'complex') {
    invalidPath(`"${written}" is not a complex attribute and cannot have a value filter`);
  }
  const binder = new Binder(registry, rt, false);
  const out: BoundPatchPath = { attr, valueFilter: binder.bind(path.valueFilter, attr) };
  if (path.subAttr !== undefined) {
    const sub = findSubAttribute(attr.attribute, path.subAttr);
    if (!sub)
      invalidPath(
        `Unknown sub-attribute "${path.subAttr}" of "${attr.attribute.name}" for resource type ${rt.name}`,
      );
    out.subAttr = sub;
  }
  return out;
}
