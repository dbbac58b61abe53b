/**
 * The schema registry: every schema and resource type the server knows. Discovery endpoints,
 * validation, filters, PATCH and the store's indexes are all driven from here, so a new resource
 * type (Devices, EndpointApps, custom schemas) plugs in by registering data, not by changing code.
 */
import { ScimError } from '../errors.ts';
import type { ManagedBy, ResourceHooks } from './hooks.ts';
import type { AttrPath, BoundAttr } from '../filter/ast.ts';
import {
  commonAttributes,
  ENTERPRISE_USER_SCHEMA,
  enterpriseUserSchema,
  GROUP_SCHEMA,
  groupSchema,
  USER_SCHEMA,
  userSchema,
} from './core-schemas.ts';
import { registerDeviceModel } from './device-schemas.ts';
import { getFormat } from './formats.ts';
import {
  normalizeAttribute,
  normalizeSchema,
  type AttributeDefinition,
  type ResourceTypeDefinition,
  type RuleCondition,
  type SchemaDefinition,
  type SchemaInput,
  type SchemaRule,
} from './types.ts';

/**
 * Storage hints for attributes that are relations between resources rather than document fields.
 * `members` of a Group is kept as rows (so one member add is one row in a group of any size) and
 * `groups` of a member type is derived from those rows.
 */
export interface ResourceTypeConfig extends ResourceTypeDefinition {
  /** Name of the multi-valued attribute whose values are stored as membership rows (Group: "members"). */
  membersAttribute?: string;
  /** Name of the read-only attribute derived from membership rows (User: "groups"). */
  groupsAttribute?: string;
  /** Server-owned behaviour (see hooks.ts). */
  hooks?: ResourceHooks;
  /** How a managed-only client's resources are found (see hooks.ts). */
  managedBy?: ManagedBy;
}

export class SchemaRegistry {
  private readonly schemasById = new Map<string, SchemaDefinition>();
  private readonly typesByName = new Map<string, ResourceTypeConfig>();
  /** Lower-cased alias URN → canonical schema id (see addSchemaAlias). */
  private readonly aliases = new Map<string, string>();
  /** Lower-cased alias URN → the alias as registered. */
  private readonly aliasSpellings = new Map<string, string>();
  readonly common: AttributeDefinition[] = commonAttributes.map(normalizeAttribute);

  addSchema(input: SchemaInput): SchemaDefinition {
    const schema = normalizeSchema(input);
    for (const a of schema.attributes) checkAttribute(schema.id, a);
    for (const rule of schema.rules ?? []) checkRule(schema, rule);
    if (this.aliases.has(schema.id.toLowerCase())) {
      throw new Error(`schema ${schema.id} is already registered as an alias`);
    }
    this.schemasById.set(schema.id.toLowerCase(), schema);
    return schema;
  }

  /**
   * Accept `alias` wherever a schema URN is read (the `schemas` list, extension keys of a body,
   * filter / PATCH / sortBy paths) as another spelling of the registered schema `canonical`.
   * Output always uses the canonical URN. For specifications whose texts spell a URN two ways.
   */
  addSchemaAlias(alias: string, canonical: string): void {
    const target = this.schemasById.get(canonical.toLowerCase());
    if (!target) throw new Error(`schema alias ${alias}: unknown schema ${canonical}`);
    if (this.schemasById.has(alias.toLowerCase())) {
      throw new Error(`schema alias ${alias}: a schema with this id is registered`);
    }
    this.aliases.set(alias.toLowerCase(), target.id);
    this.aliasSpellings.set(alias.toLowerCase(), alias);
  }

  /** The registered id (canonical spelling) for a schema URN or one of its aliases. */
  canonicalSchemaId(uri: string): string | undefined {
    const lower = uri.toLowerCase();
    return this.schemasById.get(lower)?.id ?? this.aliases.get(lower);
  }

  /** Alias URN → canonical id, for every alias. */
  schemaAliases(): Map<string, string> {
    return new Map(this.aliases);
  }

  /**
   * Adds values to the canonicalValues of a registered attribute (`path` is `attr` or
   * `attr.sub`), e.g. a new member type for Group.members.type when a resource type can be a
   * member. The definition is updated in place, so register before serving.
   */
  addCanonicalValues(schemaId: string, path: string, values: string[]): void {
    const target = this.definitionAt(schemaId, path);
    target.canonicalValues = union(target.canonicalValues, values);
  }

  /** Adds referenceTypes to a registered reference attribute (see addCanonicalValues). */
  addReferenceTypes(schemaId: string, path: string, types: string[]): void {
    const target = this.definitionAt(schemaId, path);
    target.referenceTypes = union(target.referenceTypes, types);
  }

  private definitionAt(schemaId: string, path: string): AttributeDefinition {
    const schema = this.schema(schemaId);
    if (!schema) throw new Error(`unknown schema ${schemaId}`);
    const [name, subName] = path.split('.');
    const attr = schema.attributes.find((a) => a.name.toLowerCase() === name.toLowerCase());
    const target = attr && subName !== undefined ? findSubAttribute(attr, subName) : attr;
    if (!target) throw new Error(`schema ${schemaId} has no attribute ${path}`);
    return target;
  }

  addResourceType(config: ResourceTypeConfig): void {
    for (const ref of [config.schema, ...config.schemaExtensions.map((e) => e.schema)]) {
      if (!this.schemasById.has(ref.toLowerCase())) {
        throw new Error(`resource type ${config.name}: unknown schema ${ref}`);
      }
    }
    this.typesByName.set(config.name.toLowerCase(), config);
  }

  /** A schema by its id or an alias of it. */
  schema(id: string): SchemaDefinition | undefined {
    const lower = id.toLowerCase();
    const s = this.schemasById.get(lower);
    if (s) return s;
    const canonical = this.aliases.get(lower);
    return canonical === undefined ? undefined : this.schemasById.get(canonical.toLowerCase());
  }

  schemas(): SchemaDefinition[] {
    return [...this.schemasById.values()];
  }

  resourceType(name: string): ResourceTypeConfig | undefined {
    return this.typesByName.get(name.toLowerCase());
  }

  resourceTypes(): ResourceTypeConfig[] {
    return [...this.typesByName.values()];
  }

  /** The resource type served at `/{endpoint}` (endpoint given with or without the leading slash). */
  resourceTypeByEndpoint(endpoint: string): ResourceTypeConfig | undefined {
    const e = (endpoint.startsWith('/') ? endpoint : `/${endpoint}`).toLowerCase();
    return this.resourceTypes().find((rt) => rt.endpoint.toLowerCase() === e);
  }

  /**
   * Every URN a path may start with, longest first (so prefix matching finds the most specific
   * one): schema ids, their aliases, and `schemaId:attrName` for URN-named attributes (an
   * extension nested in an extension, e.g. a BLE pairing method), so that a parser splitting at
   * the longest known URN yields `{ uri: "schemaId:attrName", attr: sub }` for them.
   */
  schemaUris(): string[] {
    const out = this.schemas().map((s) => s.id);
    out.push(...this.aliasSpellings.values());
    for (const s of this.schemas()) {
      for (const a of s.attributes) if (isUrnNamed(a)) out.push(`${s.id}:${a.name}`);
    }
    return out.sort((a, b) => b.length - a.length);
  }

  /** The schemas a resource type may carry: core first, then its extensions. */
  schemasOf(
    rt: ResourceTypeDefinition,
  ): { schema: SchemaDefinition; extension: boolean; required: boolean }[] {
    const out = [{ schema: this.schema(rt.schema)!, extension: false, required: true }];
    for (const ext of rt.schemaExtensions) {
      out.push({ schema: this.schema(ext.schema)!, extension: true, required: ext.required });
    }
    return out;
  }

  /**
   * Resolves a path as written (any case, with or without a schema URN, schema aliases accepted)
   * to its definition on a resource type. Returns undefined when the resource type has no such
   * attribute; throws invalidPath-free: callers decide which error an unknown attribute is in
   * their context.
   *
   * URN-named attributes (a schema embedded in another, like a BLE pairing method inside the BLE
   * extension) are reached as `{ uri: "extUrn:attrUrn", attr: sub }`, `{ uri: "extUrn:attrUrn",
   * attr: "" }` (the attribute itself) or `{ uri: "attrUrn", attr: sub }`.
   */
  findAttribute(rt: ResourceTypeDefinition, path: AttrPath): BoundAttr | undefined {
    const name = path.attr.toLowerCase();
    let found: Omit<BoundAttr, 'sub'> | undefined;
    if (path.uri) {
      const uri = this.canonicalSchemaId(path.uri)?.toLowerCase();
      const owner = uri && this.schemasOf(rt).find((s) => s.schema.id.toLowerCase() === uri);
      if (!owner) return this.findEmbedded(rt, path);
      if (!owner.extension) {
        const common = this.common.find((a) => a.name.toLowerCase() === name);
        if (common) found = { location: 'common', schema: owner.schema.id, attribute: common };
      }
      const attr = owner.schema.attributes.find((a) => a.name.toLowerCase() === name);
      if (attr)
        found = {
          location: owner.extension ? 'extension' : 'core',
          schema: owner.schema.id,
          attribute: attr,
        };
    } else {
      const common = this.common.find((a) => a.name.toLowerCase() === name);
      if (common) found = { location: 'common', schema: rt.schema, attribute: common };
      else {
        for (const owner of this.schemasOf(rt)) {
          const attr = owner.schema.attributes.find((a) => a.name.toLowerCase() === name);
          if (attr) {
            found = {
              location: owner.extension ? 'extension' : 'core',
              schema: owner.schema.id,
              attribute: attr,
            };
            break;
          }
        }
      }
    }
    if (!found) return undefined;
    if (path.subAttr === undefined) return found;
    const sub = findSubAttribute(found.attribute, path.subAttr);
    return sub ? { ...found, sub } : undefined;
  }

  /** findAttribute for a `uri` naming a URN-named attribute (with or without its schema's URN). */
  private findEmbedded(rt: ResourceTypeDefinition, path: AttrPath): BoundAttr | undefined {
    if (!path.uri || path.subAttr !== undefined) return undefined;
    const uri = path.uri.toLowerCase();
    for (const owner of this.schemasOf(rt)) {
      const prefixes = [owner.schema.id.toLowerCase()];
      for (const [alias, canonical] of this.aliases) if (canonical === owner.schema.id) prefixes.push(alias);
      for (const attr of owner.schema.attributes) {
        if (!isUrnNamed(attr)) continue;
        const an = attr.name.toLowerCase();
        if (uri !== an && !prefixes.some((p) => uri === `${p}:${an}`)) continue;
        const found: BoundAttr = {
          location: owner.extension ? 'extension' : 'core',
          schema: owner.schema.id,
          attribute: attr,
        };
        if (path.attr === '') return found;
        const sub = findSubAttribute(attr, path.attr);
        return sub ? { ...found, sub } : undefined;
      }
    }
    return undefined;
  }

  /** Like findAttribute, but an unknown attribute is a SCIM error of the given type. */
  requireAttribute(
    rt: ResourceTypeDefinition,
    path: AttrPath,
    scimType: 'invalidFilter' | 'invalidPath' | 'invalidValue',
  ): BoundAttr {
    const found = this.findAttribute(rt, path);
    if (!found) {
      throw ScimError.badRequest(
        scimType,
        `Unknown attribute "${formatAttrPath(path)}" for resource type ${rt.name}`,
      );
    }
    return found;
  }
}

function union(current: string[] | undefined, added: string[]): string[] {
  const out = [...(current ?? [])];
  for (const v of added) if (!out.some((c) => c.toLowerCase() === v.toLowerCase())) out.push(v);
  return out;
}

/** A complex attribute named by a URN: an embedded schema (see findAttribute). */
export function isUrnNamed(attr: AttributeDefinition): boolean {
  return attr.type === 'complex' && attr.name.includes(':');
}

/** Rejects schema data the validators could not apply, when it is registered rather than on use. */
function checkAttribute(schemaId: string, attr: AttributeDefinition, parent?: string): void {
  const where = `schema ${schemaId}: attribute ${parent ? `${parent}.` : ''}${attr.name}`;
  if (attr.format !== undefined) {
    if (attr.type !== 'string') throw new Error(`${where}: format applies only to string attributes`);
    if (!getFormat(attr.format)) throw new Error(`${where}: unknown format ${attr.format}`);
  }
  if (attr.pattern !== undefined) {
    if (!['string', 'integer', 'decimal', 'reference'].includes(attr.type)) {
      throw new Error(`${where}: pattern does not apply to ${attr.type} attributes`);
    }
    try {
      new RegExp(attr.pattern, 'u');
    } catch (err) {
      throw new Error(`${where}: invalid pattern: ${(err as Error).message}`, { cause: err });
    }
  }
  if (attr.strictCanonical && !attr.canonicalValues?.length) {
    throw new Error(`${where}: strictCanonical without canonicalValues`);
  }
  // The store indexes single-valued strings only (an expression over the value's text).
  if (attr.indexed && (attr.type !== 'string' || attr.multiValued)) {
    throw new Error(`${where}: indexed applies only to single-valued string attributes`);
  }
  for (const sub of attr.subAttributes ?? []) checkAttribute(schemaId, sub, attr.name);
}

/** A rule must name attributes of its schema (a typo would make it silently never apply). */
function checkRule(schema: SchemaDefinition, rule: SchemaRule): void {
  const names = new Set(schema.attributes.map((a) => a.name.toLowerCase()));
  const visit = (c: RuleCondition): void => {
    if ('present' in c || 'equals' in c) {
      const name = 'present' in c ? c.present : c.equals;
      if (!names.has(name.toLowerCase()))
        throw new Error(`schema ${schema.id}: rule "${rule.detail}" names unknown attribute ${name}`);
    } else if ('not' in c) visit(c.not);
    else for (const sub of 'all' in c ? c.all : c.any) visit(sub);
  };
  visit(rule.if);
  visit(rule.then);
}

export function findSubAttribute(attr: AttributeDefinition, name: string): AttributeDefinition | undefined {
  const lower = name.toLowerCase();
  return attr.subAttributes?.find((s) => s.name.toLowerCase() === lower);
}

export function formatAttrPath(path: AttrPath): string {
  return `${path.uri ? `${path.uri}:` : ''}${path.attr}${path.subAttr ? `.${path.subAttr}` : ''}`;
}

/**
 * The registry with the RFC 7643 resource types and the IETF device model (Device, EndpointApp):
 * what the server serves by default.
 */
export function createDefaultRegistry(): SchemaRegistry {
  const registry = createCoreRegistry();
  registerDeviceModel(registry);
  return registry;
}

/** The registry with the RFC 7643 resource types: User (with the Enterprise extension) and Group. */
export function createCoreRegistry(): SchemaRegistry {
  const registry = new SchemaRegistry();
  registry.addSchema(userSchema);
  registry.addSchema(enterpriseUserSchema);
  registry.addSchema(groupSchema);
  registry.addResourceType({
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    description: 'User Account',
    schema: USER_SCHEMA,
    schemaExtensions: [{ schema: ENTERPRISE_USER_SCHEMA, required: false }],
    groupsAttribute: 'groups',
  });
  registry.addResourceType({
    id: 'Group',
    name: 'Group',
    endpoint: '/Groups',
    description: 'Group',
    schema: GROUP_SCHEMA,
    schemaExtensions: [],
    membersAttribute: 'members',
    groupsAttribute: undefined,
  });
  return registry;
}
