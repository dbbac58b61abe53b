/**
 * The schema registry: every schema and resource type the server knows. Discovery endpoints,
 * validation, filters, PATCH and the store's indexes are all driven from here, so a new resource
 * type (Devices, EndpointApps, custom schemas) plugs in by registering data, not by changing code.
 */
import { ScimError } from '../errors.ts';
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
import {
  normalizeAttribute,
  normalizeSchema,
  type AttributeDefinition,
  type ResourceTypeDefinition,
  type SchemaDefinition,
  type SchemaInput,
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
}

export class SchemaRegistry {
  private readonly schemasById = new Map<string, SchemaDefinition>();
  private readonly typesByName = new Map<string, ResourceTypeConfig>();
  readonly common: AttributeDefinition[] = commonAttributes.map(normalizeAttribute);

  addSchema(input: SchemaInput): SchemaDefinition {
    const schema = normalizeSchema(input);
    this.schemasById.set(schema.id.toLowerCase(), schema);
    return schema;
  }

  addResourceType(config: ResourceTypeConfig): void {
    for (const ref of [config.schema, ...config.schemaExtensions.map((e) => e.schema)]) {
      if (!this.schema(ref)) throw new Error(`resource type ${config.name}: unknown schema ${ref}`);
    }
    this.typesByName.set(config.name.toLowerCase(), config);
  }

  schema(id: string): SchemaDefinition | undefined {
    return this.schemasById.get(id.toLowerCase());
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

  /** Every schema URN known, longest first (so prefix matching finds the most specific one). */
  schemaUris(): string[] {
    return this.schemas()
      .map((s) => s.id)
      .sort((a, b) => b.length - a.length);
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
   * Resolves a path as written (any case, with or without a schema URN) to its definition on a
   * resource type. Returns undefined when the resource type has no such attribute; throws
   * invalidPath-free: callers decide which error an unknown attribute is in their context.
   */
  findAttribute(rt: ResourceTypeDefinition, path: AttrPath): BoundAttr | undefined {
    const name = path.attr.toLowerCase();
    let found: Omit<BoundAttr, 'sub'> | undefined;
    if (path.uri) {
      const owner = this.schemasOf(rt).find((s) => s.schema.id.toLowerCase() === path.uri!.toLowerCase());
      if (!owner) return undefined;
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

export function findSubAttribute(attr: AttributeDefinition, name: string): AttributeDefinition | undefined {
  const lower = name.toLowerCase();
  return attr.subAttributes?.find((s) => s.name.toLowerCase() === lower);
}

export function formatAttrPath(path: AttrPath): string {
  return `${path.uri ? `${path.uri}:` : ''}${path.attr}${path.subAttr ? `.${path.subAttr}` : ''}`;
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
