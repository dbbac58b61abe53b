/** `scimd client create|list|delete`: the API clients of a tenant and their scopes. */
import { Command, Option } from 'commander';
import type { ClientView, NewClient } from '../admin/service.ts';
import type { RateLimitSettings } from '../tenancy/settings.ts';
import { addConnectionOptions, withAdmin, type ConnectionOptions } from './context.ts';
import { CliError, details, emit, table } from './output.ts';
import { collectList, parseRateLimit } from './parse.ts';

export const tenantOption = () => new Option('--tenant <tenant>', 'tenant id').default('default');

const rateLimitText = (r?: RateLimitSettings) => (r ? `${r.max}/${r.windowSeconds}s` : undefined);

export function clientDetails(c: ClientView): string {
  return details([
    ['id', c.id],
    ['tenant', c.tenant],
    ['name', c.name],
    ['scopes', c.scopes.join(' ')],
    ['user id', c.userId],
    ['jwt subject', c.jwtSubject],
    ['cert subject', c.certSubject],
    ['cert fingerprint', c.certFingerprint],
    ['rate limit', rateLimitText(c.rateLimit)],
    ['created', c.created],
  ]);
}

type CreateOptions = ConnectionOptions & {
  tenant: string;
  name: string;
  scope?: string[];
  id?: string;
  userId?: string;
  jwtSubject?: string;
  certSubject?: string;
  certFingerprint?: string;
  rateLimit?: RateLimitSettings;
};

export function registerClient(program: Command): void {
  const client = program.command('client').description('Manage the API clients of a tenant');

  addConnectionOptions(
    client
      .command('create')
      .description('Create a client; then issue it a token with `scimd token issue`')
      .addOption(tenantOption())
      .requiredOption('--name <name>', 'display name')
      .option(
        '--scope <scope>',
        'granted scope, repeatable: admin, scim:read, scim:write, <Type>:read, <Type>:write, devices:managed, devices:secrets',
        collectList,
      )
      .option('--id <id>', 'client id (default: a random UUID)')
      .option('--user-id <id>', 'the User resource this client acts as (for /Me)')
      .option('--jwt-subject <subject>', 'JWT claim value that identifies this client')
      .option('--cert-subject <dn>', 'TLS client certificate subject that identifies this client')
      .option('--cert-fingerprint <sha256>', 'TLS client certificate SHA-256 fingerprint (hex)')
      .addOption(
        new Option('--rate-limit <max>/<seconds>', "the client's own request rate limit").argParser(
          parseRateLimit,
        ),
      ),
  ).action(async (opts: CreateOptions) => {
    if (!opts.scope?.length) throw new CliError("required option '--scope <scope>' not specified");
    const input: NewClient = { name: opts.name, scopes: [...new Set(opts.scope)] };
    if (opts.id !== undefined) input.id = opts.id;
    if (opts.userId !== undefined) input.userId = opts.userId;
    if (opts.jwtSubject !== undefined) input.jwtSubject = opts.jwtSubject;
    if (opts.certSubject !== undefined) input.certSubject = opts.certSubject;
    if (opts.certFingerprint !== undefined) {
      // Same rule as the admin API's schema, so both modes accept the same fingerprints.
      if (!/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/.test(opts.certFingerprint)) {
        throw new CliError('--cert-fingerprint must be a SHA-256 fingerprint: 32 hex bytes, colons optional');
      }
      input.certFingerprint = opts.certFingerprint;
    }
    if (opts.rateLimit !== undefined) input.rateLimit = opts.rateLimit;
    const c = await withAdmin(opts, (api) => api.createClient(opts.tenant, input));
    emit(opts.json, c, () => clientDetails(c));
  });

  addConnectionOptions(
    client.command('list').description('List the clients of a tenant').addOption(tenantOption()),
  ).action(async (opts: ConnectionOptions & { tenant: string }) => {
    const clients = await withAdmin(opts, (api) => api.listClients(opts.tenant));
    emit(opts.json, clients, () =>
      table(
        ['ID', 'NAME', 'SCOPES', 'USER', 'RATE LIMIT', 'CREATED'],
        clients.map((c) => [
          c.id,
          c.name,
          c.scopes.join(' '),
          c.userId,
          rateLimitText(c.rateLimit),
          c.created,
        ]),
      ),
    );
  });

  addConnectionOptions(
    client
      .command('delete <id>')
      .description('Delete a client; its tokens stop working')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: ConnectionOptions & { tenant: string }) => {
    await withAdmin(opts, (api) => api.deleteClient(opts.tenant, id));
    emit(
      opts.json,
      { tenant: opts.tenant, id, deleted: true },
      () => `Deleted client ${id} of tenant ${opts.tenant}`,
    );
  });
}
