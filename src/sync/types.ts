/**
 * The sync engine's model: connections (remote SCIM endpoints with their credentials) and flows
 * (what moves between this node and a connection, how, and who owns which attribute). These
 * types are the contract between the stored configuration (src/sync/connections.ts,
 * src/sync/flows.ts, the admin API and the CLI) and the engine (src/sync/engine/).
 * docs/sync.md explains each field for users.
 */
import type { AuthConfig } from '../client/auth.ts';
import type { CompatOptions } from '../client/compat.ts';
import type { JsonValue } from '../scim/json.ts';
import type { SqlAdapterConfig } from './adapters/sql.ts';

/** TLS settings of a connection (PEM strings; the key is a secret like the credentials). */
export interface ConnectionTls {
  cert?: string;
  key?: string;
  ca?: string;
  passphrase?: string;
  servername?: string;
  /** Default true; false is for tests against self-signed servers only. */
  rejectUnauthorized?: boolean;
}

/** A remote SCIM service provider, with the secrets the engine needs to call it. */
export interface Connection {
  tenant: string;
  id: string;
  name: string;
  /** The remote SCIM base URL, e.g. https://customer.example/scim/v2 (no trailing slash). */
  baseUrl: string;
  auth: AuthConfig;
  tls?: ConnectionTls;
  compat?: CompatOptions;
  /** Per-attempt request timeout. */
  timeoutMs?: number;
  /**
   * `scim` (the default: a SCIM service provider at baseUrl) or `sql`: a last-mile adapter that
   * writes into an application's own table (src/sync/adapters, docs/adapters.md). For `sql`,
   * baseUrl only describes the database (no credentials) and `sql` holds the settings.
   */
  kind?: 'scim' | 'sql';
  sql?: SqlAdapterConfig;
  created: Date;
  updated: Date;
}

/** Which way a flow moves resources: from this node to the connection, or from it to this node. */
export type FlowDirection = 'push' | 'pull';

/**
 * How a flow finds what to move.
 * - push `changes`: local changes since the flow's change-log position (active push; runs within
 *   seconds of a local write, on a schedule, or by hand).
 * - push `full`: every local resource in scope (initial load, remediation).
 * - pull `full`: every remote resource in scope (active pull; makes the local copy match,
 *   including deletes).
 * - pull `delta`: the remote's delta token (`/.deltaToken`, `/.delta`) where it offers one, else a
 *   `meta.lastModified` watermark, with a full pull every `fullEverySeconds` to catch deletes.
 * - pull `events`: fed by an upstream of the events work (SETs received from the remote).
 */
export type FlowMode = 'changes' | 'full' | 'delta' | 'events';

/** What happens on the target when a resource leaves the source (deleted or out of scope). */
export type DeleteAction = 'delete' | 'deactivate' | 'ignore';

/**
 * One attribute mapping rule, applied from the source's representation to the target's, in order.
 * Paths are SCIM attribute paths (`userName`, `name.givenName`, `emails`, or with an extension
 * URN prefix). Attributes no rule names are copied as they are unless `FlowMapping.only` is set.
 */
export type MappingRule =
  /** Copy `from` to `to` (and not to `from`), optionally transformed. */
  | { from: string; to: string; transform?: Transform }
  /** Transform an attribute in place. */
  | { attribute: string; transform: Transform }
  /** Never send or take this attribute (personal data a target must not get). */
  | { drop: string }
  /** Set this value on the target whatever the source holds. */
  | { set: string; value: JsonValue };

export type Transform = 'lowercase' | 'uppercase' | 'trim' | 'sha256';

export interface FlowMapping {
  /** When set, only these source attributes (and what rules produce) reach the target. */
  only?: string[];
  rules: MappingRule[];
}

/**
 * The attribute authority: which side owns which attributes (use-cases draft, "attribute
 * authority"). A flow never writes an attribute the other side owns:
 * - a push flow sends only attributes this node owns, and on update leaves the others as the
 *   target has them;
 * - a pull flow takes only attributes the remote owns, merging them into the local resource.
 * `initial` attributes are sent when the target resource is created and owned by the target
 * afterwards (a manufacturer's first push, then the customer's device manager owns them).
 */
export interface FlowAuthority {
  /** Owner of the attributes not listed. Default: the source of the flow (push: local, pull: remote). */
  default?: 'local' | 'remote';
  local?: string[];
  remote?: string[];
  initial?: string[];
}

/** How a local resource and a remote one are recognised as the same subject. */
export interface FlowMatching {
  /** Tried in order after a stored identity link; default ['externalId'] plus the type's key (userName, displayName). */
  attributes: string[];
}

export interface Flow {
  tenant: string;
  id: string;
  name: string;
  connectionId: string;
  direction: FlowDirection;
  mode: FlowMode;
  /** Resource type names, e.g. ['User', 'Group'] or ['Device']. */
  resourceTypes: string[];
  /** A SCIM filter selecting the resources in scope, evaluated on the source side. */
  filter?: string;
  mapping?: FlowMapping;
  authority?: FlowAuthority;
  matching?: FlowMatching;
  onDelete: DeleteAction;
  /** push: replace whole resources with PUT instead of PATCH from the difference. */
  usePut?: boolean;
  /** pull delta: seconds between full pulls that catch deletes without a delta token. */
  fullEverySeconds?: number;
  /** pull events: the upstream (src/events/inbound) whose SETs feed this flow. */
  upstreamId?: string;
  /** A cron expression (croner) that starts the flow; none = manual and other triggers only. */
  schedule?: string;
  /** push changes: start within seconds of a local write in scope. */
  onLocalChange?: boolean;
  enabled: boolean;
  created: Date;
  updated: Date;
}

/** Where a flow got to, kept between runs (the engine owns it). */
export interface FlowState {
  /** push changes: change-log position (see src/store/changes.ts). */
  position?: string;
  /** pull delta: the remote's next delta token. */
  deltaToken?: string;
  /** pull delta without tokens: the highest remote meta.lastModified seen. */
  watermark?: string;
  /** When the last complete full pull or push finished (ISO). */
  lastFullAt?: string;
}

export type RunTrigger = 'manual' | 'schedule' | 'event' | 'change' | 'jit' | 'api';
export type RunState = 'running' | 'succeeded' | 'partial' | 'failed' | 'abandoned';
export type ItemAction = 'create' | 'update' | 'delete' | 'deactivate' | 'link' | 'skip';
