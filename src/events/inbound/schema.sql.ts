/**
 * Tables of incoming events (SETs received from an upstream publisher). Appended to the base
 * schema by src/store/open.ts; idempotent like it.
 */
export const INBOUND_EVENTS_SCHEMA: string[] = [];
