/**
 * Server-owned behaviour a resource type can declare (generic; the device model uses it). The
 * core stays free of per-type special cases: a feature module attaches these to a resource type in
 * the registry, and the resource service calls them inside the write's transaction.
 */
import type { JsonObject } from '../json.ts';

export interface StoreHookContext {
  mode: 'create' | 'replace' | 'patch';
  /** The tenant's settings (the hook reads its own feature's part). */
  settings: Record<string, unknown>;
  /** Base URL of the tenant's SCIM endpoint, for `$ref` values. */
  baseUrl: string;
}

export interface StoreHookResult {
  /**
   * Secrets generated for this write, shown once in its response and stored only as digests
   * (e.g. an EndpointApp's clientToken): attribute name → value.
   */
  oneTimeSecrets?: Record<string, string>;
  /** Resources this one refers to, which must exist in the tenant (else 400 invalidValue). */
  references?: { resourceType: string; ids: string[]; attribute: string }[];
}

export interface ResourceHooks {
  /**
   * Called with the canonical resource (without id/meta) before it is stored. May set readOnly,
   * server-owned values on it; throws a ScimError to refuse the write.
   */
  beforeStore?(resource: JsonObject, ctx: StoreHookContext): StoreHookResult | void;
}

/**
 * For clients restricted to what they manage (scope `devices:managed`): a resource is theirs when
 * they created it or when this multi-valued reference attribute (values `{value}`) names one of
 * the applications they act for.
 */
export interface ManagedBy {
  /** Schema URN of the attribute (an extension URN, or the core schema). */
  schema: string;
  attribute: string;
}
