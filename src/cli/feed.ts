/**
 * `scimd feed add|list|show|update|remove|members|add-member|remove-member`: the event feeds of a
 * tenant. Like the other admin commands, it opens the store directly (the same FeedService the
 * admin API uses) or, with --url, calls a running
 * server's /admin/v1/tenants/{tenant}/feeds; both print the same views.
 */
import { adminHttp } from './admin-http.ts';
import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import { loadConfig } from '../config.ts';
import { SigningKeys } from '../events/keys.ts';
import {
  FeedService,
  type FeedUpdate,
  type FeedView,
  type MemberView,
  type NewFeed,
} from '../events/outbound/feeds.ts';
import { OutboxSignal } from '../events/outbound/signal.ts';
import { createServerRegistry } from '../registry.ts';
import { CursorCodec } from '../service/cursor.ts';
import { ResourceService } from '../service/resources.ts';
import { TenantDirectory } from '../tenancy/directory.ts';
import { tenantOption } from './client.ts';
import { addConnectionOptions, openStore, remoteToken, type ConnectionOptions } from './context.ts';
import { CliError, details, emit, table } from './output.ts';
import { collectList } from './parse.ts';

interface MemberPage {
  totalResults: number;
  startIndex: number;
  members: MemberView[];
}

interface FeedApi {
  list(tenant: string): Promise<FeedView[]>;
  get(tenant: string, id: string): Promise<FeedView>;
  create(tenant: string, input: NewFeed): Promise<FeedView>;
  update(tenant: string, id: string, input: FeedUpdate): Promise<FeedView>;
  remove(tenant: string, id: string): Promise<void>;
  members(tenant: string, id: string, page: { startIndex: number; count: number }): Promise<MemberPage>;
  addMember(
    tenant: string,
    id: string,
    input: { resourceId: string; resourceType?: string },
  ): Promise<MemberView>;
  removeMember(tenant: string, id: string, resourceId: string): Promise<void>;
  close(): Promise<void>;
}

async function directApi(opts: ConnectionOptions): Promise<FeedApi> {
  // The feed service alone on the store (no HTTP server): the same code the admin API calls.
  const config = loadConfig({ dataDir: opts.dataDir ?? './data', databaseUrl: opts.databaseUrl });
  const registry = createServerRegistry();
  const db = await openStore(config, registry);
  // List cursors are only used inside this process (paging the resources a new filter feed holds).
  const service = new ResourceService(db, registry, new CursorCodec(randomBytes(32).toString('base64url')));
  const feeds = new FeedService({
    config,
    service,
    tenants: new TenantDirectory(db),
    signingKeys: new SigningKeys(db),
    // Nothing in this process waits for outbox rows; a running server's delivery polls the table.
    signal: new OutboxSignal(),
  });
  const store = db;
  return {
    list: (t) => feeds.list(t),
    get: (t, id) => feeds.get(t, id),
    create: (t, input) => feeds.create(t, input),
    update: (t, id, input) => feeds.update(t, id, input),
    remove: (t, id) => feeds.delete(t, id),
    members: (t, id, page) => feeds.members(t, id, page),
    addMember: (t, id, input) => feeds.addMember(t, id, input),
    removeMember: (t, id, r) => feeds.removeMember(t, id, r),
    close: () => store.close(),
  };
}

function remoteApi(base: string, token: string): FeedApi {
  const call = adminHttp(base, token);
  const seg = encodeURIComponent;
  const feedsOf = (t: string) => `/tenants/${seg(t)}/feeds`;
  return {
    list: async (t) => (await call<{ feeds: FeedView[] }>('GET', feedsOf(t))).feeds,
    get: (t, id) => call('GET', `${feedsOf(t)}/${seg(id)}`),
    create: (t, input) => call('POST', feedsOf(t), input),
    update: (t, id, input) => call('PATCH', `${feedsOf(t)}/${seg(id)}`, input),
    remove: async (t, id) => {
      await call('DELETE', `${feedsOf(t)}/${seg(id)}`);
    },
    members: (t, id, page) =>
      call('GET', `${feedsOf(t)}/${seg(id)}/members?startIndex=${page.startIndex}&count=${page.count}`),
    addMember: (t, id, input) => call('POST', `${feedsOf(t)}/${seg(id)}/members`, input),
    removeMember: async (t, id, r) => {
      await call('DELETE', `${feedsOf(t)}/${seg(id)}/members/${seg(r)}`);
    },
    close: async () => {},
  };
}

async function withFeeds<T>(opts: ConnectionOptions, action: (api: FeedApi) => Promise<T>): Promise<T> {
  let api: FeedApi;
  if (opts.url) {
    api = remoteApi(opts.url, remoteToken(opts));
  } else {
    api = await directApi(opts);
  }
  try {
    return await action(api);
  } finally {
    await api.close();
  }
}

export function feedDetails(f: FeedView): string {
  return details([
    ['id', f.id],
    ['tenant', f.tenant],
    ['name', f.name],
    ['resource types', f.resourceTypes.join(' ')],
    ['filter', f.filter],
    ['members', f.explicitMembers ? 'explicit' : f.filter !== undefined ? 'by filter' : 'every resource'],
    ['form', f.form],
    ['uri', f.uri],
    ['position', f.position],
    [
      'publishing',
      f.publishing ? `window to ${f.publishing.windowEnd}, after seq ${f.publishing.afterSeq}` : undefined,
    ],
    ['member count', String(f.memberCount)],
    ['receivers', String(f.receiverCount)],
    ['created', f.created],
  ]);
}

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CliError(`${name} must be a non-negative integer; got "${value}"`);
  return n;
};

type TenantOpts = ConnectionOptions & { tenant: string };

export function registerFeed(program: Command): void {
  const feed = program
    .command('feed')
    .description('Manage the event feeds of a tenant (which changes become SCIM event SETs)');

  addConnectionOptions(
    feed
      .command('add')
      .description('Create a feed; receivers subscribe to it')
      .addOption(tenantOption())
      .requiredOption('--name <name>', 'display name')
      .option('--type <type>', 'resource type the feed carries, repeatable (e.g. User, Group)', collectList)
      .option('--filter <filter>', 'SCIM filter selecting the resources in the feed')
      .option('--explicit-members', 'members are added and removed by hand (add-member, remove-member)')
      .addOption(new Option('--form <form>', 'event form').choices(['full', 'notice']).default('full'))
      .addOption(
        new Option('--from <start>', 'now: changes from now on; beginning: the whole retained change log')
          .choices(['now', 'beginning'])
          .default('now'),
      )
      .option('--id <id>', 'feed id (default: a random UUID)'),
  ).action(
    async (
      opts: TenantOpts & {
        name: string;
        type?: string[];
        filter?: string;
        explicitMembers?: boolean;
        form: 'full' | 'notice';
        from: 'now' | 'beginning';
        id?: string;
      },
    ) => {
      if (!opts.type?.length) throw new CliError("required option '--type <type>' not specified");
      const input: NewFeed = {
        name: opts.name,
        resourceTypes: [...new Set(opts.type)],
        form: opts.form,
        from: opts.from,
      };
      if (opts.id !== undefined) input.id = opts.id;
      if (opts.filter !== undefined) input.filter = opts.filter;
      if (opts.explicitMembers) input.explicitMembers = true;
      const f = await withFeeds(opts, (api) => api.create(opts.tenant, input));
      emit(opts.json, f, () => feedDetails(f));
    },
  );

  addConnectionOptions(
    feed.command('list').description('List the feeds of a tenant').addOption(tenantOption()),
  ).action(async (opts: TenantOpts) => {
    const feeds = await withFeeds(opts, (api) => api.list(opts.tenant));
    emit(opts.json, feeds, () =>
      table(
        ['ID', 'NAME', 'TYPES', 'FORM', 'MEMBERS', 'FILTER', 'POSITION'],
        feeds.map((f) => [
          f.id,
          f.name,
          f.resourceTypes.join(','),
          f.form,
          f.explicitMembers ? `${f.memberCount} explicit` : String(f.memberCount),
          f.filter,
          f.position,
        ]),
      ),
    );
  });

  addConnectionOptions(
    feed
      .command('show <id>')
      .description('Show a feed, its position and member count')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: TenantOpts) => {
    const f = await withFeeds(opts, (api) => api.get(opts.tenant, id));
    emit(opts.json, f, () => feedDetails(f));
  });

  addConnectionOptions(
    feed
      .command('update <id>')
      .description('Change the name, types, filter or form of a feed')
      .addOption(tenantOption())
      .option('--name <name>', 'display name')
      .option('--type <type>', 'resource type, repeatable: replaces the list', collectList)
      .option('--filter <filter>', 'new SCIM filter')
      .option('--no-filter', 'remove the filter: every resource of the types')
      .addOption(new Option('--form <form>', 'event form').choices(['full', 'notice'])),
  ).action(
    async (
      id: string,
      opts: TenantOpts & {
        name?: string;
        type?: string[];
        filter?: string | false;
        form?: 'full' | 'notice';
      },
    ) => {
      const input: FeedUpdate = {};
      if (opts.name !== undefined) input.name = opts.name;
      if (opts.type?.length) input.resourceTypes = [...new Set(opts.type)];
      if (opts.filter === false) input.filter = null;
      else if (typeof opts.filter === 'string') input.filter = opts.filter;
      if (opts.form !== undefined) input.form = opts.form;
      if (Object.keys(input).length === 0) {
        throw new CliError('nothing to change: give --name, --type, --filter, --no-filter or --form');
      }
      const f = await withFeeds(opts, (api) => api.update(opts.tenant, id, input));
      emit(opts.json, f, () => feedDetails(f));
    },
  );

  addConnectionOptions(
    feed
      .command('remove <id>')
      .description('Delete a feed with its members, receivers and undelivered events')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: TenantOpts) => {
    await withFeeds(opts, (api) => api.remove(opts.tenant, id));
    emit(
      opts.json,
      { tenant: opts.tenant, id, deleted: true },
      () => `Deleted feed ${id} of tenant ${opts.tenant}`,
    );
  });

  addConnectionOptions(
    feed
      .command('members <id>')
      .description('List the members of a feed')
      .addOption(tenantOption())
      .addOption(
        new Option('--start-index <n>', '1-based index of the first member')
          .argParser(positiveInt('--start-index'))
          .default(1),
      )
      .addOption(
        new Option('--count <n>', 'members per page (at most 1000)')
          .argParser(positiveInt('--count'))
          .default(100),
      ),
  ).action(async (id: string, opts: TenantOpts & { startIndex: number; count: number }) => {
    if (opts.startIndex < 1) throw new CliError('--start-index must be at least 1');
    if (opts.count > 1000) throw new CliError('--count must be at most 1000');
    const page = await withFeeds(opts, (api) =>
      api.members(opts.tenant, id, { startIndex: opts.startIndex, count: opts.count }),
    );
    emit(opts.json, page, () =>
      table(
        ['RESOURCE', 'TYPE', 'EXTERNAL ID', 'ACTIVE', 'ADDED'],
        page.members.map((m) => [
          m.resourceId,
          m.resourceType,
          m.externalId,
          m.active === undefined ? undefined : String(m.active),
          m.added,
        ]),
      ),
    );
  });

  addConnectionOptions(
    feed
      .command('add-member <id> <resourceId>')
      .description('Add a resource to a feed with explicit members (emits feed:add)')
      .addOption(tenantOption())
      .option('--type <type>', "resource type of the resource (default: found among the feed's types)"),
  ).action(async (id: string, resourceId: string, opts: TenantOpts & { type?: string }) => {
    const input: { resourceId: string; resourceType?: string } = { resourceId };
    if (opts.type !== undefined) input.resourceType = opts.type;
    const m = await withFeeds(opts, (api) => api.addMember(opts.tenant, id, input));
    emit(opts.json, m, () =>
      details([
        ['resource', m.resourceId],
        ['type', m.resourceType],
        ['external id', m.externalId],
        ['active', m.active === undefined ? undefined : String(m.active)],
        ['added', m.added],
      ]),
    );
  });

  addConnectionOptions(
    feed
      .command('remove-member <id> <resourceId>')
      .description('Remove a resource from a feed with explicit members (emits feed:remove)')
      .addOption(tenantOption()),
  ).action(async (id: string, resourceId: string, opts: TenantOpts) => {
    await withFeeds(opts, (api) => api.removeMember(opts.tenant, id, resourceId));
    emit(
      opts.json,
      { tenant: opts.tenant, id, resourceId, removed: true },
      () => `Removed ${resourceId} from feed ${id} of tenant ${opts.tenant}`,
    );
  });
}
