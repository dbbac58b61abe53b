/**
 * `scimd upstream add|list|show|update|remove|events`: the publishers a tenant receives SCIM
 * events from (src/events/inbound). Like the other admin commands: the store directly, or with
 * --url a running server's admin API (/admin/v1/tenants/{tenant}/upstreams).
 */
import { adminHttp, type AdminCall } from './admin-http.ts';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import {
  RECEIVED_STATES,
  UpstreamService,
  viewOf,
  type ReceivedEventView,
  type ReceivedState,
  type UpstreamInput,
  type UpstreamPatch,
  type UpstreamView,
} from '../events/inbound/upstreams.ts';
import { createServerRegistry } from '../registry.ts';
import type { JsonObject } from '../scim/json.ts';
import type { Database } from '../store/db.ts';
import { addConnectionOptions, openStore, remoteToken, type ConnectionOptions } from './context.ts';
import { tenantOption } from './client.ts';
import { CliError, details, emit, table } from './output.ts';
import { collectList } from './parse.ts';
import { requireTlsFromEnv } from '../sync/tls-policy.ts';

type Events = { totalResults: number; events: ReceivedEventView[] };

interface UpstreamApi {
  list(tenant: string): Promise<UpstreamView[]>;
  get(tenant: string, id: string): Promise<UpstreamView>;
  create(tenant: string, input: UpstreamInput): Promise<UpstreamView>;
  update(tenant: string, id: string, patch: UpstreamPatch): Promise<UpstreamView>;
  remove(tenant: string, id: string): Promise<void>;
  events(tenant: string, id: string, q: { state?: ReceivedState; count?: number }): Promise<Events>;
  close(): Promise<void>;
}

class DirectUpstreams implements UpstreamApi {
  private readonly svc: UpstreamService;
  constructor(private readonly db: Database) {
    this.svc = new UpstreamService(db, createServerRegistry(), requireTlsFromEnv());
  }
  async list(tenant: string) {
    return (await this.svc.list(tenant)).map(viewOf);
  }
  async get(tenant: string, id: string) {
    return viewOf(await this.svc.get(tenant, id));
  }
  async create(tenant: string, input: UpstreamInput) {
    return viewOf(await this.svc.create(tenant, input));
  }
  async update(tenant: string, id: string, patch: UpstreamPatch) {
    return viewOf(await this.svc.update(tenant, id, patch));
  }
  remove(tenant: string, id: string) {
    return this.svc.remove(tenant, id);
  }
  events(tenant: string, id: string, q: { state?: ReceivedState; count?: number }) {
    return this.svc.events(tenant, id, q);
  }
  close() {
    return this.db.close();
  }
}

class RemoteUpstreams implements UpstreamApi {
  private readonly http: AdminCall;

  constructor(base: string, token: string) {
    this.http = adminHttp(base, token);
  }

  /** Paths here start below /admin/v1/tenants. */
  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.http<T>(method, `/tenants${path}`, body);
  }

  private static path(tenant: string, id?: string): string {
    const t = `/${encodeURIComponent(tenant)}/upstreams`;
    return id === undefined ? t : `${t}/${encodeURIComponent(id)}`;
  }

  async list(tenant: string) {
    return (await this.call<{ upstreams: UpstreamView[] }>('GET', RemoteUpstreams.path(tenant))).upstreams;
  }
  get(tenant: string, id: string) {
    return this.call<UpstreamView>('GET', RemoteUpstreams.path(tenant, id));
  }
  create(tenant: string, input: UpstreamInput) {
    return this.call<UpstreamView>('POST', RemoteUpstreams.path(tenant), input);
  }
  update(tenant: string, id: string, patch: UpstreamPatch) {
    return this.call<UpstreamView>('PATCH', RemoteUpstreams.path(tenant, id), patch);
  }
  async remove(tenant: string, id: string) {
    await this.call<undefined>('DELETE', RemoteUpstreams.path(tenant, id));
  }
  events(tenant: string, id: string, q: { state?: ReceivedState; count?: number }) {
    const query = new URLSearchParams();
    if (q.state) query.set('state', q.state);
    if (q.count !== undefined) query.set('count', String(q.count));
    const qs = query.size ? `?${query.toString()}` : '';
    return this.call<Events>('GET', `${RemoteUpstreams.path(tenant, id)}/events${qs}`);
  }
  async close() {}
}

async function withUpstreams<T>(
  opts: ConnectionOptions,
  action: (api: UpstreamApi) => Promise<T>,
): Promise<T> {
  let api: UpstreamApi;
  if (opts.url) {
    api = new RemoteUpstreams(opts.url, remoteToken(opts));
  } else {
    api = new DirectUpstreams(
      await openStore({ databaseUrl: opts.databaseUrl, dataDir: opts.dataDir ?? './data' }),
    );
  }
  try {
    return await action(api);
  } finally {
    await api.close();
  }
}

export function upstreamDetails(u: UpstreamView): string {
  return details([
    ['id', u.id],
    ['tenant', u.tenant],
    ['name', u.name],
    ['issuer', u.issuer],
    ['jwks uri', u.jwksUri],
    ['jwks', u.jwks ? `${u.jwks.keys.length} key(s) inline` : undefined],
    ['accept unsigned', u.acceptUnsigned ? 'yes' : undefined],
    ['audience', u.audience],
    ['scim base url', u.scimBaseUrl],
    ['callback auth', u.callbackAuthorization ? 'set' : undefined],
    ['push path', u.pushPath],
    ['poll url', u.poll?.url],
    ['poll auth', u.poll?.authorization ? 'set' : undefined],
    ['poll max events', u.poll?.maxEvents?.toString()],
    ['poll interval', u.poll?.intervalSeconds !== undefined ? `${u.poll.intervalSeconds}s` : undefined],
    ['resource types', u.resourceTypes?.join(' ')],
    ['on feed remove', u.onFeedRemove],
    ['created', u.created],
    ['updated', u.updated],
  ]);
}

const intOption = (name: string, min: number, max: number) => (value: string) => {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max))
    throw new CliError(`${name} must be an integer from ${min} to ${max}; got "${value}"`);
  return n;
};

function readJwks(path: string): { keys: JsonObject[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`--jwks-file: cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as { keys: JsonObject[] };
  } catch {
    throw new CliError(`--jwks-file: ${path} is not JSON`);
  }
}

type FieldOptions = {
  name?: string;
  issuer?: string;
  jwksUri?: string;
  jwksFile?: string;
  acceptUnsigned?: boolean;
  audience?: string;
  scimBaseUrl?: string;
  callbackAuthorization?: string;
  pollUrl?: string;
  pollAuthorization?: string;
  pollMaxEvents?: number;
  pollInterval?: number;
  resourceType?: string[];
  onFeedRemove?: 'delete' | 'keep';
};

function fieldOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'display name')
    .option('--issuer <iss>', 'the iss its SETs carry')
    .option('--jwks-uri <url>', "URL of the publisher's JWKS (e.g. https://a.example/.well-known/jwks.json)")
    .option('--jwks-file <path>', 'a JWKS file to keep inline instead of a URL')
    .option('--accept-unsigned', 'also accept unsigned (alg none) SETs')
    .option('--audience <aud>', 'the aud its SETs must name')
    .option('--scim-base-url <url>', "the publisher's SCIM base URL, for notice callbacks")
    .addOption(
      new Option(
        '--callback-authorization <value>',
        'Authorization header value of callback GETs (write-only)',
      ).env('SCIMD_UPSTREAM_CALLBACK_AUTHORIZATION'),
    )
    .option('--poll-url <url>', "the publisher's RFC 8936 poll endpoint (scimd polls it)")
    .addOption(
      new Option(
        '--poll-authorization <value>',
        'Authorization header value of poll requests (write-only)',
      ).env('SCIMD_UPSTREAM_POLL_AUTHORIZATION'),
    )
    .option('--poll-max-events <n>', 'maxEvents per poll (1-1000)', intOption('--poll-max-events', 1, 1000))
    .option(
      '--poll-interval <seconds>',
      'pause after an empty poll (0-3600)',
      intOption('--poll-interval', 0, 3600),
    )
    .option('--resource-type <type>', 'accept events of this resource type only, repeatable', collectList)
    .addOption(
      new Option('--on-feed-remove <what>', 'what feed:remove does here').choices(['delete', 'keep']),
    );
}

function pollOf(o: FieldOptions): UpstreamInput['poll'] | undefined {
  if (o.pollUrl === undefined) {
    if (o.pollAuthorization !== undefined || o.pollMaxEvents !== undefined || o.pollInterval !== undefined)
      throw new CliError('--poll-authorization, --poll-max-events and --poll-interval need --poll-url');
    return undefined;
  }
  const poll: NonNullable<UpstreamInput['poll']> = { url: o.pollUrl };
  if (o.pollAuthorization !== undefined) poll.authorization = o.pollAuthorization;
  if (o.pollMaxEvents !== undefined) poll.maxEvents = o.pollMaxEvents;
  if (o.pollInterval !== undefined) poll.intervalSeconds = o.pollInterval;
  return poll;
}

function fieldsOf(o: FieldOptions): UpstreamPatch {
  if (o.jwksUri !== undefined && o.jwksFile !== undefined)
    throw new CliError('give --jwks-uri or --jwks-file, not both');
  const out: UpstreamPatch = {};
  if (o.name !== undefined) out.name = o.name;
  if (o.issuer !== undefined) out.issuer = o.issuer;
  if (o.jwksUri !== undefined) out.jwksUri = o.jwksUri;
  if (o.jwksFile !== undefined) out.jwks = readJwks(o.jwksFile);
  if (o.acceptUnsigned !== undefined) out.acceptUnsigned = o.acceptUnsigned;
  if (o.audience !== undefined) out.audience = o.audience;
  if (o.scimBaseUrl !== undefined) out.scimBaseUrl = o.scimBaseUrl;
  if (o.callbackAuthorization !== undefined) out.callbackAuthorization = o.callbackAuthorization;
  const poll = pollOf(o);
  if (poll) out.poll = poll;
  if (o.resourceType !== undefined) out.resourceTypes = [...new Set(o.resourceType)];
  if (o.onFeedRemove !== undefined) out.onFeedRemove = o.onFeedRemove;
  return out;
}

const CLEARABLE = ['jwksUri', 'jwks', 'audience', 'callbackAuthorization', 'poll', 'resourceTypes'] as const;

type Base = ConnectionOptions & { tenant: string };

export function registerUpstream(program: Command): void {
  const upstream = program
    .command('upstream')
    .description('Manage the publishers a tenant receives SCIM events from (push endpoint, poll client)');

  addConnectionOptions(
    fieldOptions(
      upstream
        .command('add')
        .description('Add an upstream; its publisher pushes to the printed push path, or scimd polls it')
        .addOption(tenantOption())
        .option('--id <id>', 'upstream id (default: a random UUID)'),
    ),
  ).action(async (opts: Base & FieldOptions & { id?: string }) => {
    for (const [flag, v] of [
      ['--name', opts.name],
      ['--issuer', opts.issuer],
      ['--scim-base-url', opts.scimBaseUrl],
    ] as const) {
      if (v === undefined) throw new CliError(`required option '${flag}' not specified`);
    }
    const input = { ...fieldsOf(opts), ...(opts.id !== undefined ? { id: opts.id } : {}) } as UpstreamInput;
    const u = await withUpstreams(opts, (api) => api.create(opts.tenant, input));
    emit(opts.json, u, () => upstreamDetails(u));
  });

  addConnectionOptions(
    upstream.command('list').description("List a tenant's upstreams").addOption(tenantOption()),
  ).action(async (opts: Base) => {
    const list = await withUpstreams(opts, (api) => api.list(opts.tenant));
    emit(opts.json, list, () =>
      table(
        ['ID', 'NAME', 'ISSUER', 'DELIVERY', 'CREATED'],
        list.map((u) => [u.id, u.name, u.issuer, u.poll ? 'poll' : 'push', u.created]),
      ),
    );
  });

  addConnectionOptions(
    upstream.command('show <id>').description('Show one upstream').addOption(tenantOption()),
  ).action(async (id: string, opts: Base) => {
    const u = await withUpstreams(opts, (api) => api.get(opts.tenant, id));
    emit(opts.json, u, () => upstreamDetails(u));
  });

  addConnectionOptions(
    fieldOptions(
      upstream
        .command('update <id>')
        .description('Change some fields of an upstream')
        .addOption(tenantOption())
        .addOption(
          new Option('--clear <field>', 'unset an optional field, repeatable')
            .choices([...CLEARABLE])
            .argParser((v: string, prev: string[] | undefined) => {
              if (!(CLEARABLE as readonly string[]).includes(v))
                throw new CliError(`--clear must be one of ${CLEARABLE.join(', ')}; got "${v}"`);
              return [...(prev ?? []), v];
            }),
        ),
      // After --accept-unsigned: defined first, the negation would default the flag to true.
    ).option('--no-accept-unsigned', 'accept signed SETs only'),
  ).action(async (id: string, opts: Base & FieldOptions & { clear?: (typeof CLEARABLE)[number][] }) => {
    const patch: UpstreamPatch = fieldsOf(opts);
    for (const f of opts.clear ?? []) {
      if (patch[f] !== undefined) throw new CliError(`--clear ${f} conflicts with a new value for it`);
      patch[f] = null;
    }
    if (Object.keys(patch).length === 0) throw new CliError('nothing to update: give at least one option');
    const u = await withUpstreams(opts, (api) => api.update(opts.tenant, id, patch));
    emit(opts.json, u, () => upstreamDetails(u));
  });

  addConnectionOptions(
    upstream
      .command('remove <id>')
      .description('Remove an upstream with its received events (replicated resources stay)')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: Base) => {
    await withUpstreams(opts, (api) => api.remove(opts.tenant, id));
    emit(
      opts.json,
      { tenant: opts.tenant, id, removed: true },
      () => `Removed upstream ${id} of tenant ${opts.tenant}`,
    );
  });

  addConnectionOptions(
    upstream
      .command('events <id>')
      .description('Received SETs of an upstream, newest first')
      .addOption(tenantOption())
      .addOption(new Option('--state <state>', 'only events in this state').choices([...RECEIVED_STATES]))
      .option('--count <n>', 'at most this many (default 100)', intOption('--count', 0, 1000)),
  ).action(async (id: string, opts: Base & { state?: ReceivedState; count?: number }) => {
    const res = await withUpstreams(opts, (api) =>
      api.events(opts.tenant, id, { state: opts.state, count: opts.count }),
    );
    emit(opts.json, res, () =>
      table(
        ['SEQ', 'STATE', 'JTI', 'SUBJECT', 'EVENTS', 'RECEIVED', 'ERROR'],
        res.events.map((e) => [
          String(e.seq),
          e.state,
          e.jti,
          e.subject,
          e.eventUris.map((u) => u.replace(/^urn:ietf:params:scim:event:/, '')).join(','),
          e.received,
          e.error,
        ]),
      ),
    );
  });
}
