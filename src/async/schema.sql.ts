/**
 * Tables of asynchronous SCIM requests (Prefer: respond-async, RFC 9967 §2.5). Appended to the
 * base schema by src/store/open.ts; idempotent like it.
 */
export const ASYNC_REQUESTS_SCHEMA: string[] = [];
