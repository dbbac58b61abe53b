/**
 * PATCH for servers without it (ServiceProviderConfig `patch.supported: false`): the operations are
 * applied on the client to the resource as just read from the server, by scimd's own PATCH engine
 * (src/scim/patch, RFC 7644 §3.5.2 semantics), and the result goes back with PUT (see
 * ResourceClient.patch). The engine needs the resource type's schemas; they are built from the
 * server's /Schemas, or taken from RFC 7643 for the core User, Enterprise User and Group schemas
 * when the server does not serve them. Without a schema the operations cannot be applied: the
 * caller gets a ScimUnsupportedError before anything is sent.
 */
import { ScimError } from '../scim/errors.ts';
import { isJsonObject, type JsonObject } from '../scim/json.ts';
import { applyPatch } from '../scim/patch/patch.ts';
import { enterpriseUserSchema, groupSchema, userSchema } from '../scim/schema/core-schemas.ts';
import { SchemaRegistry, type ResourceTypeConfig } from '../scim/schema/registry.ts';
import type {
  AttributeInput,
  AttributeType,
  Mutability,
  SchemaDefinition,
  SchemaInput,
} from '../scim/schema/types.ts';
import type { AttributeInfo, Discovery, ResourceTypeInfo, SchemaInfo } from './discovery.ts';
import { ScimPatchApplyError, ScimUnsupportedError } from './errors.ts';
import type { PatchOperation } from './types.ts';

const TYPES: AttributeType[] = [
  'string',
  'boolean',
  'decimal',
  'integer',
  'dateTime',
  'reference',
  'binary',
  'complex',
];
const MUTABILITY: Mutability[] = ['readOnly', 'readWrite', 'immutable', 'writeOnly'];
const CORE: SchemaInput[] = [userSchema, enterpriseUserSchema, groupSchema];

/** One attribute of a served schema as the engine's input; types and mutability read case-insensitively. */
function attributeInput(schema: string, a: AttributeInfo): AttributeInput {
  const type = TYPES.find((t) => t.toLowerCase() === a.type.toLowerCase());
  if (!type) throw new Error(`schema ${schema}: attribute ${a.name} has unknown type "${a.type}"`);
  const out: AttributeInput = {
    name: a.name,
    type,
    multiValued: a.multiValued,
    required: a.required,
    caseExact: a.caseExact,
    mutability: MUTABILITY.find((m) => m.toLowerCase() === a.mutability.toLowerCase()) ?? 'readWrite',
  };
  if (type === 'complex') out.subAttributes = (a.subAttributes ?? []).map((s) => attributeInput(schema, s));
  return out;
}

function schemaInput(s: SchemaInfo): SchemaInput {
  return { id: s.id, name: s.id, attributes: s.attributes.map((a) => attributeInput(s.id, a)) };
}

export class LocalPatcher {
  private readonly rt: ResourceTypeConfig;

  constructor(
    private readonly registry: SchemaRegistry,
    info: ResourceTypeInfo,
  ) {
    this.rt = {
      id: info.id,
      name: info.name,
      endpoint: info.endpoint,
      description: '',
      schema: info.schema,
      schemaExtensions: info.schemaExtensions,
      // Members are an ordinary attribute here (scimd's store keeps them as rows, a remote server does not).
    };
  }

  /**
   * The resource after the operations, and whether they changed it. Throws ScimPatchApplyError
   * with the status and scimType the server would have answered (400 noTarget, mutability...).
   */
  apply(resource: JsonObject, ops: PatchOperation[]): { resource: JsonObject; changed: boolean } {
    try {
      const r = applyPatch(this.registry, this.rt, resource, ops);
      return { resource: r.resource, changed: r.changed };
    } catch (e) {
      if (e instanceof ScimError) throw new ScimPatchApplyError(e.status, e.scimType, e.message);
      throw e;
    }
  }

  /**
   * The PUT body for a patched resource: without `meta` and the attributes the schemas mark readOnly
   * (RFC 7644 §3.5.1 has the server ignore them, but some refuse them), `id` and `schemas` kept.
   */
  putBody(resource: JsonObject): JsonObject {
    const out: JsonObject = {};
    const readOnly = (schema: SchemaDefinition | undefined, name: string) =>
      schema?.attributes.some(
        (a) => a.name.toLowerCase() === name.toLowerCase() && a.mutability === 'readOnly',
      );
    const core = this.registry.schema(this.rt.schema);
    for (const [k, v] of Object.entries(resource)) {
      const lower = k.toLowerCase();
      if (lower === 'meta' || readOnly(core, k)) continue;
      const ext = this.rt.schemaExtensions.find((e) => e.schema.toLowerCase() === lower);
      if (ext && isJsonObject(v)) {
        const schema = this.registry.schema(ext.schema);
        const inner: JsonObject = {};
        for (const [ik, iv] of Object.entries(v)) if (!readOnly(schema, ik)) inner[ik] = iv;
        out[k] = inner;
      } else out[k] = v;
    }
    return out;
  }
}

const cache = new WeakMap<Discovery, Map<string, LocalPatcher>>();

/**
 * The patcher of one resource type, built once per discovery. ScimUnsupportedError when a schema
 * of the type is neither served nor a core RFC 7643 one, or is not usable (an unknown type).
 */
export function localPatcher(d: Discovery, info: ResourceTypeInfo): LocalPatcher {
  let byType = cache.get(d);
  if (!byType) cache.set(d, (byType = new Map()));
  const hit = byType.get(info.name.toLowerCase());
  if (hit) return hit;
  const registry = new SchemaRegistry();
  for (const urn of [info.schema, ...info.schemaExtensions.map((e) => e.schema)]) {
    const served = d.schemas.get(urn.toLowerCase());
    const input = served
      ? (() => {
          try {
            return schemaInput(served);
          } catch (e) {
            throw new ScimUnsupportedError(
              'patch',
              `The server does not support PATCH and its schema cannot be used to apply the operations locally: ${(e as Error).message}`,
            );
          }
        })()
      : CORE.find((s) => s.id.toLowerCase() === urn.toLowerCase());
    if (!input) {
      throw new ScimUnsupportedError(
        'patch',
        `The server does not support PATCH and serves no schema ${urn} (/Schemas) to apply the operations locally; use update() or replace()`,
      );
    }
    registry.addSchema(input);
  }
  const patcher = new LocalPatcher(registry, info);
  byType.set(info.name.toLowerCase(), patcher);
  return patcher;
}
