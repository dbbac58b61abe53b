/**
 * Delta query (draft-sehgal-scim-delta-query-02): `GET [prefix]/.deltaToken` and
 * `POST [prefix]/.delta`, answered from the change log (src/store/changes.ts).
 *
 * A token names a log position X (a snapshot boundary: every transaction below X has finished).
 * A delta from X reads the window [X, now): only finished transactions, none seen before, and a
 * transaction that committed after others with higher seq is still in exactly one window. The
 * window's end is fixed on the first page and carried by the page cursor; the final page carries
 * nextDeltaToken = the window's end. Each changed resource is reported once per window, at its
 * latest change, with its current representation built by ResourceService.list — so filters,
 * projection, managed-only visibility and secret hiding are exactly those of GET.
 *
 * Tokens are HMAC-signed (like RFC 9865 cursors, src/service/cursor.ts) and bound to the tenant
 * and to a scope (the root, or one resource type); page cursors are RFC 9865 cursors.
 */
import { randomBytes } from 'node:crypto';
import type { LimitsConfig } from '../config.ts';
import { ScimError } from '../scim/errors.ts';
import { isJsonObject, type JsonObject } from '../scim/json.ts';
import { parseAttributeList } from '../scim/resource/project.ts';
import type { ResourceTypeConfig } from '../scim/schema/registry.ts';
import {
  currentPosition,
  positionAbove,
  prunedThrough,
  pruneTenant,
  tenantSettings,
  windowBounds,
  windowCandidates,
  type DeltaCandidate,
} from '../store/changes.ts';
import { secretBoxFor } from '../security/secret-box.ts';
import type { Database } from '../store/db.ts';
import { effectiveLimits, type TenantSettings } from '../tenancy/settings.ts';
import { CursorCodec, queryHash } from './cursor.ts';
import { SignedTokenCodec } from './signed-token.ts';
import {
  LIST_RESPONSE_SCHEMA,
  type Projection,
  type RequestContext,
  type ResourceService,
} from './resources.ts';

export const DELTA_TOKEN_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:delta:token';
export const DELTA_REQUEST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:delta:request';
export const DELTA_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:delta:response';
const SEARCH_REQUEST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';

export type ChangeType = 'create' | 'update' | 'delete';

/** The draft writes change types lower-case in its prose and capitalised in its examples: both are read. */
export function parseChangeType(value: unknown): ChangeType | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.toLowerCase();
  return v === 'create' || v === 'update' || v === 'delete' ? v : undefined;
}

/** Where a delta request was made: the server root (every type the client may read) or one endpoint. */
export interface DeltaScope {
  root: boolean;
  types: ResourceTypeConfig[];
}

export interface DeltaRequest extends Projection {
  deltaToken: string;
  filter?: string;
  count?: number;
  /** Present = a later page of the same delta (RFC 9865 cursor); '' = first page. */
  cursor?: string;
}

const ROOT = '*';
const DAY = 86_400;
/** Ids per ResourceService.list call: the id filter becomes nested SQL, kept shallow. */
const FETCH_CHUNK = 50;
/** Candidate batches one page may read while filters drop items, before answering a short page. */
const MAX_BATCHES = 10;

interface TokenPayload {
  /** tenant */
  t: string;
  /** scope: '*' (root) or a resource type name */
  s: string;
  /** log position (xid8, decimal) */
  x: string;
  /** issued at, epoch seconds */
  e: number;
}

/** Delta tokens: signed (SignedTokenCodec) with their own label, bound to tenant and scope. */
class DeltaTokenCodec {
  private readonly tokens: SignedTokenCodec;

  constructor(key: string) {
    this.tokens = new SignedTokenCodec(key, 'delta-token:');
  }

  encode(payload: TokenPayload): string {
    return this.tokens.encode(payload);
  }

  decode(value: string, tenant: string, scope: DeltaScope): TokenPayload {
    const invalid = ScimError.badRequest(
      'invalidValue',
      'deltaToken is malformed, forged, or was not issued for this tenant and endpoint; ' +
        'do a full pull and get a new token from .deltaToken',
    );
    const p = this.tokens.decode(value) as TokenPayload | undefined;
    if (!p) throw invalid;
    if (p.t !== tenant || typeof p.x !== 'string' || !/^\d+$/.test(p.x)) throw invalid;
    // A root token is valid for every delta-capable endpoint (draft §4.2); a type's token only for it.
    if (scope.root ? p.s !== ROOT : p.s !== ROOT && p.s !== scope.types[0].name) throw invalid;
    return p;
  }
}

/** The SearchRequest members of a delta:request body (RFC 7644 §3.4.3) plus deltaToken. */
export function parseDeltaRequest(body: unknown): DeltaRequest {
  if (!isJsonObject(body))
    throw ScimError.badRequest('invalidSyntax', 'The request body must be a delta:request object');
  const get = (name: string) => {
    const k = Object.keys(body).find((x) => x.toLowerCase() === name.toLowerCase());
    return k === undefined ? undefined : body[k];
  };
  const schemas = get('schemas');
  // A SearchRequest body is taken too: the delta request is a SearchRequest plus deltaToken.
  const known = [DELTA_REQUEST_SCHEMA, SEARCH_REQUEST_SCHEMA].map((s) => s.toLowerCase());
  if (
    !Array.isArray(schemas) ||
    !schemas.some((s) => typeof s === 'string' && known.includes(s.toLowerCase()))
  ) {
    throw ScimError.badRequest('invalidSyntax', `schemas must contain "${DELTA_REQUEST_SCHEMA}"`);
  }
  const str = (name: string) => {
    const v = get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw ScimError.badRequest('invalidValue', `${name} must be a string`);
    return v;
  };
  const list = (name: string) => {
    const v = get(name);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
      throw ScimError.badRequest('invalidValue', `${name} must be an array of strings`);
    return parseAttributeList(v as string[]);
  };
  const deltaToken = str('deltaToken');
  if (!deltaToken) throw ScimError.badRequest('invalidValue', 'deltaToken is required (draft-sehgal §5.1)');
  const count = get('count');
  if (count !== undefined && count !== null && (typeof count !== 'number' || !Number.isInteger(count)))
    throw ScimError.badRequest('invalidValue', 'count must be an integer');
  const attributes = list('attributes');
  const excludedAttributes = list('excludedAttributes');
  if (attributes && excludedAttributes) {
    throw ScimError.badRequest(
      'invalidSyntax',
      'attributes and excludedAttributes are mutually exclusive (RFC 7644 §3.4.2.5)',
    );
  }
  return {
    deltaToken,
    filter: str('filter'),
    attributes,
    excludedAttributes,
    count: typeof count === 'number' ? count : undefined,
    cursor: str('cursor'),
  };
}

export class DeltaService {
  private codecs?: Promise<{ tokens: DeltaTokenCodec; cursors: CursorCodec }>;

  constructor(
    private readonly service: ResourceService,
    /** The node's limits (for each tenant's retention when pruning). */
    private readonly nodeLimits: LimitsConfig,
  ) {}

  private get db(): Database {
    return this.service.db;
  }

  /** Keys shared by every node on the database, created by the first that needs them. */
  private keys(): Promise<{ tokens: DeltaTokenCodec; cursors: CursorCodec }> {
    this.codecs ??= (async () => {
      // Stored sealed (src/security/secret-box.ts), like app.ts serverSecret.
      const box = secretBoxFor(this.db);
      const place = { table: 'server_secrets', tenant: '', row: 'delta', field: 'secret' };
      await this.db.query(
        'INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
        ['delta', box.seal(randomBytes(32).toString('base64url'), place)],
      );
      const res = await this.db.query<{ secret: string }>(
        'SELECT secret FROM server_secrets WHERE name = $1',
        ['delta'],
      );
      const secret = box.open(res.rows[0].secret, place);
      return { tokens: new DeltaTokenCodec(`${secret}:token`), cursors: new CursorCodec(`${secret}:cursor`) };
    })();
    this.codecs.catch(() => (this.codecs = undefined));
    return this.codecs;
  }

  /** `GET [prefix]/.deltaToken`: a token for the current log position. */
  async token(ctx: RequestContext, scope: DeltaScope): Promise<JsonObject> {
    const { tokens } = await this.keys();
    const position = await currentPosition(this.db);
    return { schemas: [DELTA_TOKEN_SCHEMA], ...this.issue(tokens, ctx, scope, position) };
  }

  private issue(
    tokens: DeltaTokenCodec,
    ctx: RequestContext,
    scope: DeltaScope,
    position: string,
  ): { value: string; expiry: string } {
    const e = Math.floor(Date.now() / 1000);
    const value = tokens.encode({
      t: ctx.tenant,
      s: scope.root ? ROOT : scope.types[0].name,
      x: position,
      e,
    });
    const expiry = new Date((e + ctx.limits.changeRetentionDays * DAY) * 1000);
    return { value, expiry: expiry.toISOString() };
  }

  /** `POST [prefix]/.delta`: the resources changed since the token, one page. */
  async delta(ctx: RequestContext, scope: DeltaScope, req: DeltaRequest): Promise<JsonObject> {
    const { tokens, cursors } = await this.keys();
    const token = tokens.decode(req.deltaToken, ctx.tenant, scope);
    // The client's filter is combined with an id filter as `(filter) and (...)`: it must stand alone.
    if (req.filter !== undefined) this.service.parseFilter(req.filter);
    await this.checkRetained(ctx, scope, token);

    const typeNames = scope.types.map((t) => t.name);
    const maxPage = Math.min(ctx.limits.maxPageSize, ctx.limits.filterMaxResults);
    let count = req.count ?? Math.min(ctx.limits.defaultPageSize, maxPage);
    count = Math.min(Math.max(0, count), maxPage);
    const qhash = queryHash([
      'delta',
      req.deltaToken,
      typeNames,
      req.filter ?? null,
      req.attributes ?? null,
      req.excludedAttributes ?? null,
    ]);

    let to: string;
    let hi: number;
    let after: number;
    if (req.cursor) {
      const pos = cursors.decode(req.cursor, ctx.tenant, qhash, count, ctx.limits.cursorTimeout);
      const [end, high] = (pos.key ?? '').split(':');
      to = end;
      hi = Number(high);
      after = Number(pos.id);
    } else {
      to = await currentPosition(this.db);
      const bounds = await windowBounds(this.db, ctx.tenant, token.x, to, typeNames);
      hi = bounds?.hi ?? 0;
      after = bounds ? bounds.lo - 1 : 0;
    }

    const items: JsonObject[] = [];
    let exhausted = false;
    let fetched = false;
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const want = count - items.length;
      const rows = await windowCandidates(this.db, ctx.tenant, token.x, to, typeNames, after, hi, want + 1);
      const take = rows.slice(0, want);
      if (take.length > 0) after = take[take.length - 1].seq;
      const built = await this.items(ctx, scope, req, take);
      fetched ||= built.fetched;
      items.push(...built.items);
      if (rows.length <= want) {
        exhausted = true;
        break;
      }
      if (items.length >= count) break;
    }
    // A bad filter is a 400 even when the window holds nothing to apply it to.
    if (!fetched && req.filter !== undefined && !req.cursor) await this.fetch(ctx, scope, req, ['']);

    const out: JsonObject = { schemas: [LIST_RESPONSE_SCHEMA], itemsPerPage: items.length, Resources: items };
    if (exhausted) {
      out.nextDeltaToken = this.issue(tokens, ctx, scope, to);
    } else {
      out.nextCursor = cursors.encode(ctx.tenant, qhash, count, {
        key: `${to}:${hi}`,
        id: String(after),
        before: false,
      });
    }
    return out;
  }

  /** Refuses a token whose window the log no longer holds whole: the client must start over. */
  private async checkRetained(ctx: RequestContext, scope: DeltaScope, token: TokenPayload): Promise<void> {
    const days = ctx.limits.changeRetentionDays;
    const expired = Date.now() / 1000 - token.e > days * DAY;
    const pruned = await prunedThrough(this.db, ctx.tenant);
    if (expired || (pruned !== undefined && !positionAbove(token.x, pruned))) {
      const where = scope.root ? '' : scope.types[0].endpoint;
      throw ScimError.badRequest(
        'invalidValue',
        `The delta token is older than the retained change log (${days} days): do a full pull ` +
          `(GET ${where || '/'} with paging) and take a new token from GET ${where}/.deltaToken first`,
      );
    }
  }

  /** Delta response items for candidates, in their order; changed resources the client cannot see (or the filter drops) are left out. */
  private async items(
    ctx: RequestContext,
    scope: DeltaScope,
    req: DeltaRequest,
    candidates: DeltaCandidate[],
  ): Promise<{ items: JsonObject[]; fetched: boolean }> {
    const live = candidates.filter((c) => c.operation !== 'delete').map((c) => c.resource_id);
    const data = live.length > 0 ? await this.fetch(ctx, scope, req, live) : new Map<string, JsonObject>();
    const items: JsonObject[] = [];
    for (const c of candidates) {
      const item: JsonObject = {
        schemas: [DELTA_RESPONSE_SCHEMA],
        changedResourceId: c.resource_id,
        resourceType: c.resource_type,
      };
      if (c.operation === 'delete') {
        if (!this.mayLearnDelete(ctx, scope, c)) continue;
        item.changeType = 'delete';
      } else {
        const resource = data.get(c.resource_id);
        // Gone since (its delete is in a later window), out of the filter, or out of the client's reach.
        if (!resource) continue;
        item.changeType = c.created_in_window ? 'create' : 'update';
        item.data = resource;
      }
      items.push(item);
    }
    return { items, fetched: live.length > 0 };
  }

  /**
   * A deleted resource can no longer be checked against managed-only visibility: such a client
   * learns the delete when it made it or created the resource (documented limitation).
   */
  private mayLearnDelete(ctx: RequestContext, scope: DeltaScope, c: DeltaCandidate): boolean {
    const rt = scope.types.find((t) => t.name === c.resource_type);
    if (!ctx.managed || !rt?.managedBy) return true;
    return c.client_id === ctx.managed.clientId || c.creator === ctx.managed.clientId;
  }

  /** Current representations of these ids through the list query (the client's filter, projection and visibility). */
  private async fetch(
    ctx: RequestContext,
    scope: DeltaScope,
    req: DeltaRequest,
    ids: string[],
  ): Promise<Map<string, JsonObject>> {
    const out = new Map<string, JsonObject>();
    for (let i = 0; i < ids.length; i += FETCH_CHUNK) {
      const chunk = ids.slice(i, i + FETCH_CHUNK);
      const byId = chunk.map((id) => `id eq ${JSON.stringify(id)}`).join(' or ');
      const filter = req.filter !== undefined ? `(${req.filter}) and (${byId})` : byId;
      const res = await this.service.list(ctx, scope.types, {
        filter,
        attributes: req.attributes,
        excludedAttributes: req.excludedAttributes,
        startIndex: 1,
        count: chunk.length,
      });
      for (const r of res.Resources ?? []) out.set(r.id as string, r);
    }
    return out;
  }

  /** Removes changes older than each tenant's retention; returns how many rows went. */
  async prune(now: Date = new Date()): Promise<number> {
    let total = 0;
    for (const t of await tenantSettings(this.db)) {
      const days = effectiveLimits(this.nodeLimits, t.settings as TenantSettings).changeRetentionDays;
      total += await pruneTenant(this.db, t.id, new Date(now.getTime() - days * DAY * 1000));
    }
    return total;
  }
}
