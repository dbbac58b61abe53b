/**
 * "Connections over TLS only" (SCIMD_SYNC_REQUIRE_TLS, use-case behaviour 47 on the client side):
 * when the node requires it, a sync connection's base URL and its OAuth token URL must be https,
 * except to a loopback host (localhost, 127.0.0.0/8, ::1: the traffic never leaves the machine).
 *
 * - Creating or changing a connection with such a URL is refused (400 invalidValue naming the field).
 * - A connection stored before the switch was turned on is not called: the engine's client for it
 *   refuses every request before anything is sent (no credentials, no OAuth token request), so its
 *   runs fail with the reason, and `test` answers ok: false.
 *
 * The check wraps ConnectionService (PolicyConnectionService) and the engine's clientFor; the
 * connection model itself is unchanged.
 */
import { ScimClient, type ScimClientOptions } from '../client/client.ts';
import { bad, isObject } from './config-check.ts';
import {
  clientFor,
  ConnectionService,
  type ConnectionInput,
  type ConnectionPatch,
  type ConnectionTestResult,
  type ConnectionView,
} from './connections.ts';
import type { Database } from '../store/db.ts';
import type { Connection } from './types.ts';

/** Whether a URL's host is a loopback address or name. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Why a URL is refused under the policy, or undefined when it is allowed. */
export function plainHttpReason(url: string, what: string): string | undefined {
  if (!/^http:/i.test(url) || isLoopbackUrl(url)) return undefined;
  return `${what} must be an https URL: this node requires TLS for sync connections (SCIMD_SYNC_REQUIRE_TLS); plain http is allowed to loopback hosts only`;
}

/** The URLs of a connection (or of a connection input) the policy checks, with their field names. */
function urlsOf(c: { baseUrl?: unknown; auth?: unknown }): [string, string][] {
  const out: [string, string][] = [];
  if (typeof c.baseUrl === 'string') out.push([c.baseUrl, 'baseUrl']);
  if (isObject(c.auth) && c.auth.type === 'oauth2' && typeof c.auth.tokenUrl === 'string')
    out.push([c.auth.tokenUrl, 'auth.tokenUrl']);
  return out;
}

/** The first policy violation of a connection, or undefined. */
export function connectionTlsViolation(c: { baseUrl?: unknown; auth?: unknown }): string | undefined {
  for (const [url, what] of urlsOf(c)) {
    const reason = plainHttpReason(url, what);
    if (reason) return reason;
  }
  return undefined;
}

/** SCIMD_SYNC_REQUIRE_TLS of the environment (for the CLI's direct mode, which loads no server config). */
export function requireTlsFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(true|1|yes)$/i.test(env.SCIMD_SYNC_REQUIRE_TLS ?? '');
}

/** ConnectionService that refuses plain-http URLs when the node requires TLS. */
export class PolicyConnectionService extends ConnectionService {
  constructor(
    db: Database,
    private readonly requireTls: boolean,
  ) {
    super(db);
  }

  override async create(tenant: string, input: ConnectionInput): Promise<ConnectionView> {
    this.check(input);
    return super.create(tenant, input);
  }

  override async patch(tenant: string, id: string, patch: ConnectionPatch): Promise<ConnectionView> {
    this.check(patch);
    return super.patch(tenant, id, patch);
  }

  override async test(tenant: string, id: string): Promise<ConnectionTestResult> {
    if (this.requireTls) {
      const reason = connectionTlsViolation(await this.get(tenant, id));
      if (reason) return { ok: false, elapsedMs: 0, error: reason };
    }
    return super.test(tenant, id);
  }

  private check(c: unknown): void {
    if (!this.requireTls || !isObject(c)) return;
    const reason = connectionTlsViolation(c);
    if (reason) throw bad(reason);
  }
}

/**
 * The engine's clientFor under the policy: a connection that breaks it gets a client that refuses
 * every request before sending anything (no Authorization header is even built).
 */
export function policyClientFor(
  requireTls: boolean,
  base: (c: Connection, o?: Partial<ScimClientOptions>) => ScimClient = clientFor,
): (c: Connection) => ScimClient {
  return (c) => {
    const reason = requireTls ? connectionTlsViolation(c) : undefined;
    if (!reason) return base(c);
    return new ScimClient({
      baseUrl: c.baseUrl,
      auth: { type: 'none' },
      retry: { maxAttempts: 1 },
      transport: () => Promise.reject(new Error(`Connection ${c.id}: ${reason}`)),
    });
  };
}
