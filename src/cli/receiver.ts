/**
 * `scimd receiver add|list|show|update|remove|events|retry`: the event receivers of a tenant (push
 * or poll), their delivery state and outbox entries. Direct mode opens the store; --url calls the
 * admin API (/admin/v1/tenants/{t}/receivers), both answering the same views.
 */
import { adminHttp, type AdminCall } from './admin-http.ts';
import { Command, Option } from 'commander';
import {
  OUTBOX_STATES,
  ReceiverService,
  type NewReceiver,
  type OutboxPage,
  type OutboxState,
  type ReceiverUpdate,
  type ReceiverView,
} from '../events/outbound/receivers.ts';
import type { Database } from '../store/db.ts';
import { tenantOption } from './client.ts';
import { addConnectionOptions, openStore, remoteToken, type ConnectionOptions } from './context.ts';
import { CliError, details, emit, table } from './output.ts';
import { collectList } from './parse.ts';
import { requireTlsFromEnv } from '../sync/tls-policy.ts';

export interface ReceiverApi {
  list(tenant: string): Promise<ReceiverView[]>;
  get(tenant: string, id: string): Promise<ReceiverView>;
  create(tenant: string, input: NewReceiver): Promise<ReceiverView>;
  update(tenant: string, id: string, input: ReceiverUpdate): Promise<ReceiverView>;
  remove(tenant: string, id: string): Promise<void>;
  events(
    tenant: string,
    id: string,
    f: { state?: OutboxState; startIndex: number; count: number; includeSet?: boolean },
  ): Promise<OutboxPage>;
  retry(tenant: string, id: string, jtis?: string[]): Promise<{ retried: number }>;
  close(): Promise<void>;
}

class DirectReceivers implements ReceiverApi {
  private readonly service: ReceiverService;
  constructor(private readonly db: Database) {
    // No signal: a running server's workers find changes at their next look at the store.
    this.service = new ReceiverService(db, undefined, requireTlsFromEnv());
  }
  list(tenant: string) {
    return this.service.list(tenant);
  }
  get(tenant: string, id: string) {
    return this.service.get(tenant, id);
  }
  create(tenant: string, input: NewReceiver) {
    return this.service.create(tenant, input);
  }
  update(tenant: string, id: string, input: ReceiverUpdate) {
    return this.service.update(tenant, id, input);
  }
  remove(tenant: string, id: string) {
    return this.service.remove(tenant, id);
  }
  events(
    tenant: string,
    id: string,
    f: { state?: OutboxState; startIndex: number; count: number; includeSet?: boolean },
  ) {
    return this.service.events(tenant, id, f);
  }
  retry(tenant: string, id: string, jtis?: string[]) {
    return this.service.retry(tenant, id, jtis);
  }
  close() {
    return this.db.close();
  }
}

class RemoteReceivers implements ReceiverApi {
  private readonly call: AdminCall;

  constructor(base: string, token: string) {
    this.call = adminHttp(base, token);
  }

  private path(tenant: string, id?: string, rest = ''): string {
    const t = `/tenants/${encodeURIComponent(tenant)}/receivers`;
    return id === undefined ? t : `${t}/${encodeURIComponent(id)}${rest}`;
  }

  async list(tenant: string) {
    return (await this.call<{ receivers: ReceiverView[] }>('GET', this.path(tenant))).receivers;
  }
  get(tenant: string, id: string) {
    return this.call<ReceiverView>('GET', this.path(tenant, id));
  }
  create(tenant: string, input: NewReceiver) {
    return this.call<ReceiverView>('POST', this.path(tenant), input);
  }
  update(tenant: string, id: string, input: ReceiverUpdate) {
    return this.call<ReceiverView>('PATCH', this.path(tenant, id), input);
  }
  async remove(tenant: string, id: string) {
    await this.call<undefined>('DELETE', this.path(tenant, id));
  }
  events(
    tenant: string,
    id: string,
    f: { state?: OutboxState; startIndex: number; count: number; includeSet?: boolean },
  ) {
    const q = new URLSearchParams({ startIndex: String(f.startIndex), count: String(f.count) });
    if (f.state) q.set('state', f.state);
    if (f.includeSet) q.set('includeSet', 'true');
    return this.call<OutboxPage>('GET', this.path(tenant, id, `/events?${q.toString()}`));
  }
  retry(tenant: string, id: string, jtis?: string[]) {
    return this.call<{ retried: number }>('POST', this.path(tenant, id, '/retry'), jtis ? { jti: jtis } : {});
  }
  async close() {}
}

async function openReceivers(opts: ConnectionOptions): Promise<ReceiverApi> {
  if (opts.url) {
    return new RemoteReceivers(opts.url, remoteToken(opts));
  }
  return new DirectReceivers(
    await openStore({ databaseUrl: opts.databaseUrl, dataDir: opts.dataDir ?? './data' }),
  );
}

async function withReceivers<T>(
  opts: ConnectionOptions,
  action: (api: ReceiverApi) => Promise<T>,
): Promise<T> {
  const api = await openReceivers(opts);
  try {
    return await action(api);
  } finally {
    await api.close();
  }
}

function positiveInt(name: string, min: number) {
  return (value: string): number => {
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(Number.isSafeInteger(n) && n >= min))
      throw new CliError(`${name} must be an integer ≥ ${min}; got "${value}"`);
    return n;
  };
}

/** --authorization, or --authorization-env NAME (keeps the secret out of the process list and history). */
function authorizationOf(opts: { authorization?: string; authorizationEnv?: string }): string | undefined {
  if (opts.authorization !== undefined && opts.authorizationEnv !== undefined)
    throw new CliError('use --authorization or --authorization-env, not both');
  if (opts.authorizationEnv === undefined) return opts.authorization;
  const value = process.env[opts.authorizationEnv];
  if (!value) throw new CliError(`environment variable ${opts.authorizationEnv} is not set`);
  return value;
}

export function receiverDetails(r: ReceiverView): string {
  const s = r.state;
  return details([
    ['id', r.id],
    ['tenant', r.tenant],
    ['name', r.name],
    ['feed', r.feedId],
    ['delivery', r.delivery],
    ['endpoint url', r.endpointUrl],
    ['authorization', r.authorization],
    ['poll client', r.pollClientId],
    ['poll path', r.pollPath],
    ['audience', r.audience],
    ['unsigned', String(r.unsigned)],
    ['max attempts', String(r.maxAttempts)],
    ['paused', String(r.paused)],
    ['created', r.created],
    ['pending', String(s.pending)],
    ['delivered', String(s.delivered)],
    ['failed', String(s.failed)],
    ['oldest pending', s.oldestPendingAgeSeconds !== undefined ? `${s.oldestPendingAgeSeconds}s` : undefined],
    ['last delivery', s.lastDeliveryAt],
    ['last error', s.lastError],
    ['last error at', s.lastErrorAt],
  ]);
}

type AddOptions = ConnectionOptions & {
  tenant: string;
  name: string;
  feed: string;
  delivery: 'push' | 'poll';
  id?: string;
  endpointUrl?: string;
  authorization?: string;
  authorizationEnv?: string;
  pollClient?: string;
  audience?: string;
  unsigned?: boolean;
  maxAttempts?: number;
  paused?: boolean;
};

type UpdateOptions = ConnectionOptions & {
  tenant: string;
  name?: string;
  feed?: string;
  endpointUrl?: string;
  authorization?: string;
  authorizationEnv?: string;
  clearAuthorization?: boolean;
  pollClient?: string;
  audience?: string;
  clearAudience?: boolean;
  unsigned?: boolean;
  signed?: boolean;
  maxAttempts?: number;
  pause?: boolean;
  resume?: boolean;
};

export function registerReceiver(program: Command): void {
  const receiver = program
    .command('receiver')
    .description('Manage the event receivers of a tenant (RFC 8935 push, RFC 8936 poll) and their delivery');

  addConnectionOptions(
    receiver
      .command('add')
      .description(
        'Subscribe a receiver to a feed, by push (scimd POSTs SETs) or poll (the receiver POSTs to scimd)',
      )
      .addOption(tenantOption())
      .requiredOption('--name <name>', 'display name')
      .requiredOption('--feed <feedId>', 'the feed whose events it receives')
      .addOption(
        new Option('--delivery <method>', 'push or poll').choices(['push', 'poll']).makeOptionMandatory(),
      )
      .option('--id <id>', 'receiver id (default: a random UUID)')
      .option('--endpoint-url <url>', 'push: the receiver endpoint scimd POSTs SETs to')
      .option('--authorization <value>', 'push: the Authorization header value scimd sends (write-only)')
      .option(
        '--authorization-env <name>',
        'push: take the Authorization value from this environment variable',
      )
      .option('--poll-client <clientId>', 'poll: the client (scope events:poll) that polls')
      .option('--audience <aud>', 'aud claim of its SETs')
      .option('--unsigned', 'unsigned SETs (alg none), for receivers that rely on TLS alone')
      .option(
        '--max-attempts <n>',
        'attempts before a SET is given up (default 10)',
        positiveInt('--max-attempts', 1),
      )
      .option('--paused', 'create it paused (SETs are kept, not delivered)'),
  ).action(async (opts: AddOptions) => {
    const input: NewReceiver = { name: opts.name, feedId: opts.feed, delivery: opts.delivery };
    if (opts.id !== undefined) input.id = opts.id;
    if (opts.endpointUrl !== undefined) input.endpointUrl = opts.endpointUrl;
    const authorization = authorizationOf(opts);
    if (authorization !== undefined) input.authorization = authorization;
    if (opts.pollClient !== undefined) input.pollClientId = opts.pollClient;
    if (opts.audience !== undefined) input.audience = opts.audience;
    if (opts.unsigned) input.unsigned = true;
    if (opts.maxAttempts !== undefined) input.maxAttempts = opts.maxAttempts;
    if (opts.paused) input.paused = true;
    const r = await withReceivers(opts, (api) => api.create(opts.tenant, input));
    emit(opts.json, r, () => receiverDetails(r));
  });

  addConnectionOptions(
    receiver
      .command('list')
      .description('List the receivers of a tenant with their delivery state')
      .addOption(tenantOption()),
  ).action(async (opts: ConnectionOptions & { tenant: string }) => {
    const list = await withReceivers(opts, (api) => api.list(opts.tenant));
    emit(opts.json, list, () =>
      table(
        [
          'ID',
          'NAME',
          'FEED',
          'DELIVERY',
          'TARGET',
          'PENDING',
          'DELIVERED',
          'FAILED',
          'PAUSED',
          'LAST ERROR',
        ],
        list.map((r) => [
          r.id,
          r.name,
          r.feedId,
          r.delivery,
          r.endpointUrl ?? r.pollClientId,
          String(r.state.pending),
          String(r.state.delivered),
          String(r.state.failed),
          r.paused ? 'yes' : 'no',
          r.state.lastError,
        ]),
      ),
    );
  });

  addConnectionOptions(
    receiver
      .command('show <id>')
      .description('Show a receiver and its delivery state')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: ConnectionOptions & { tenant: string }) => {
    const r = await withReceivers(opts, (api) => api.get(opts.tenant, id));
    emit(opts.json, r, () => receiverDetails(r));
  });

  addConnectionOptions(
    receiver
      .command('update <id>')
      .description('Change a receiver; only the options given change')
      .addOption(tenantOption())
      .option('--name <name>', 'display name')
      .option('--feed <feedId>', 'the feed whose events it receives')
      .option('--endpoint-url <url>', 'push: the receiver endpoint')
      .option('--authorization <value>', 'push: the Authorization header value')
      .option(
        '--authorization-env <name>',
        'push: take the Authorization value from this environment variable',
      )
      .option('--clear-authorization', 'push: send no Authorization header')
      .option('--poll-client <clientId>', 'poll: the client that polls')
      .option('--audience <aud>', 'aud claim of its SETs')
      .option('--clear-audience', 'no audience of its own')
      .option('--unsigned', 'unsigned SETs')
      .option('--signed', 'signed SETs')
      .option('--max-attempts <n>', 'attempts before a SET is given up', positiveInt('--max-attempts', 1))
      .option('--pause', 'stop delivering (SETs are kept)')
      .option('--resume', 'deliver again'),
  ).action(async (id: string, opts: UpdateOptions) => {
    const input: ReceiverUpdate = {};
    const both = (a?: boolean, b?: boolean, names = '') => {
      if (a && b) throw new CliError(`use one of ${names}`);
    };
    both(opts.unsigned, opts.signed, '--unsigned and --signed');
    both(opts.pause, opts.resume, '--pause and --resume');
    both(opts.clearAudience, opts.audience !== undefined, '--audience and --clear-audience');
    const authorization = authorizationOf(opts);
    both(opts.clearAuthorization, authorization !== undefined, '--authorization and --clear-authorization');
    if (opts.name !== undefined) input.name = opts.name;
    if (opts.feed !== undefined) input.feedId = opts.feed;
    if (opts.endpointUrl !== undefined) input.endpointUrl = opts.endpointUrl;
    if (authorization !== undefined) input.authorization = authorization;
    if (opts.clearAuthorization) input.authorization = null;
    if (opts.pollClient !== undefined) input.pollClientId = opts.pollClient;
    if (opts.audience !== undefined) input.audience = opts.audience;
    if (opts.clearAudience) input.audience = null;
    if (opts.unsigned) input.unsigned = true;
    if (opts.signed) input.unsigned = false;
    if (opts.maxAttempts !== undefined) input.maxAttempts = opts.maxAttempts;
    if (opts.pause) input.paused = true;
    if (opts.resume) input.paused = false;
    if (Object.keys(input).length === 0) throw new CliError('nothing to change: give at least one option');
    const r = await withReceivers(opts, (api) => api.update(opts.tenant, id, input));
    emit(opts.json, r, () => receiverDetails(r));
  });

  addConnectionOptions(
    receiver
      .command('remove <id>')
      .description('Delete a receiver with its undelivered SETs')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: ConnectionOptions & { tenant: string }) => {
    await withReceivers(opts, (api) => api.remove(opts.tenant, id));
    emit(
      opts.json,
      { tenant: opts.tenant, id, deleted: true },
      () => `Deleted receiver ${id} of tenant ${opts.tenant}`,
    );
  });

  addConnectionOptions(
    receiver
      .command('events <id>')
      .description("List a receiver's SETs in publishing order with their delivery state")
      .addOption(tenantOption())
      .addOption(new Option('--state <state>', 'only this state').choices([...OUTBOX_STATES]))
      .option('--start-index <n>', '1-based index of the first entry', positiveInt('--start-index', 1), 1)
      .option('--count <n>', 'most entries shown', positiveInt('--count', 0), 100)
      .option('--include-set', 'include each SET (compact JWT) in --json output'),
  ).action(
    async (
      id: string,
      opts: ConnectionOptions & {
        tenant: string;
        state?: OutboxState;
        startIndex: number;
        count: number;
        includeSet?: boolean;
      },
    ) => {
      if (opts.count > 1000) throw new CliError(`--count must be at most 1000; got "${opts.count}"`);
      const page = await withReceivers(opts, (api) =>
        api.events(opts.tenant, id, {
          state: opts.state,
          startIndex: opts.startIndex,
          count: opts.count,
          includeSet: opts.includeSet,
        }),
      );
      emit(opts.json, page, () =>
        [
          table(
            ['SEQ', 'JTI', 'STATE', 'ATTEMPTS', 'RESOURCE', 'EVENTS', 'NEXT ATTEMPT', 'LAST ERROR'],
            page.entries.map((e) => [
              String(e.seq),
              e.jti,
              e.state,
              String(e.attempts),
              `${e.resourceType}/${e.resourceId}`,
              e.eventUris.map((u) => u.replace('urn:ietf:params:scim:event:', '')).join(' '),
              e.nextAttempt,
              e.lastError,
            ]),
          ),
          `${page.itemsPerPage} of ${page.totalResults} from ${page.startIndex}`,
        ].join('\n'),
      );
    },
  );

  addConnectionOptions(
    receiver
      .command('retry <id>')
      .description("Put a receiver's failed SETs back to pending (all, or those given with --jti)")
      .addOption(tenantOption())
      .option('--jti <jti>', 'only this SET, repeatable', collectList),
  ).action(async (id: string, opts: ConnectionOptions & { tenant: string; jti?: string[] }) => {
    const r = await withReceivers(opts, (api) => api.retry(opts.tenant, id, opts.jti));
    emit(opts.json, r, () => `${r.retried} failed SET(s) of receiver ${id} pending again`);
  });
}
