/** The SCIM 2.0 client library: see docs/client.md. */
export { ScimClient, ResourceClient, PATCH_FALLBACK_ATTEMPTS } from './client.ts';
export type {
  ScimClientOptions,
  CallOptions,
  WriteOptions,
  ReadOptions,
  IterateOptions,
  UpdateResult,
  RawResponse,
  RequestOptions,
} from './client.ts';
export type { AuthConfig } from './auth.ts';
export type { CompatOptions, Feature } from './compat.ts';
export { diffResources, type DiffOptions } from './diff.ts';
export type { Capabilities, Discovery, ResourceTypeInfo, SchemaInfo, AttributeInfo } from './discovery.ts';
export { mutabilityMap } from './discovery.ts';
export {
  ScimClientError,
  ScimNetworkError,
  ScimUnsupportedError,
  ScimAuthError,
  ScimPatchApplyError,
} from './errors.ts';
export type { RetryOptions } from './retry.ts';
export type { TlsOptions, Transport, HttpRequest, HttpResponse } from './transport.ts';
export * from './types.ts';
