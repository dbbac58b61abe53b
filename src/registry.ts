/**
 * The registry a scimd server runs with: the RFC 7643 types, the device model, and the server's
 * own behaviour for devices. The server, the CLI and the benchmarks use this one function so they
 * agree on schemas, indexes and hooks.
 */
import { attachDeviceBehaviour } from './devices/behaviour.ts';
import { createDefaultRegistry, type SchemaRegistry } from './scim/schema/registry.ts';

export function createServerRegistry(): SchemaRegistry {
  const registry = createDefaultRegistry();
  attachDeviceBehaviour(registry);
  return registry;
}
