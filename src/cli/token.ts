/** `scimd token issue|list|revoke`: opaque bearer tokens of a tenant's clients. */
import { Command, Option } from 'commander';
import type { TokenView } from '../admin/service.ts';
import { tenantOption } from './client.ts';
import { addConnectionOptions, withAdmin, type ConnectionOptions } from './context.ts';
import { emit, table } from './output.ts';
import { parseDuration } from './parse.ts';

export function registerToken(program: Command): void {
  const token = program.command('token').description('Issue, list and revoke bearer tokens of clients');

  addConnectionOptions(
    token
      .command('issue')
      .description(
        'Issue a token to a client. The secret is printed once (alone on stdout) and cannot be shown again',
      )
      .addOption(tenantOption())
      .requiredOption('--client <id>', 'client id')
      .addOption(
        new Option(
          '--expires-in <duration>',
          "lifetime: seconds, or with a unit: 15m, 12h, 30d (default: the tenant's policy, else no expiry)",
        ).argParser(parseDuration),
      )
      .option('--description <text>', 'what the token is for'),
  ).action(
    async (
      opts: ConnectionOptions & { tenant: string; client: string; expiresIn?: number; description?: string },
    ) => {
      const input: { expiresInSeconds?: number; description?: string } = {};
      if (opts.expiresIn !== undefined) input.expiresInSeconds = opts.expiresIn;
      if (opts.description !== undefined) input.description = opts.description;
      const t = await withAdmin(opts, (api) => api.issueToken(opts.tenant, opts.client, input));
      if (opts.json) {
        emit(true, t, () => '');
        return;
      }
      process.stdout.write(`${t.token}\n`);
      process.stderr.write(
        `Token ${t.id} for client ${t.client} of tenant ${t.tenant}, ` +
          `${t.expiresAt ? `expires ${t.expiresAt}` : 'does not expire'}. ` +
          'Store it now: it will not be shown again.\n',
      );
    },
  );

  addConnectionOptions(
    token
      .command('list')
      .description('List the tokens of a tenant or of one client (never their secrets)')
      .addOption(tenantOption())
      .option('--client <id>', 'only the tokens of this client'),
  ).action(async (opts: ConnectionOptions & { tenant: string; client?: string }) => {
    const tokens = await withAdmin(opts, (api) => api.listTokens(opts.tenant, opts.client));
    emit(opts.json, tokens, () =>
      table(
        ['ID', 'CLIENT', 'DESCRIPTION', 'CREATED', 'EXPIRES', 'REVOKED', 'LAST USED'],
        tokens.map((t: TokenView) => [
          t.id,
          t.client,
          t.description,
          t.created,
          t.expiresAt,
          t.revokedAt,
          t.lastUsed,
        ]),
      ),
    );
  });

  addConnectionOptions(
    token
      .command('revoke <token-id>')
      .description('Revoke a token (by its id, not its secret)')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: ConnectionOptions & { tenant: string }) => {
    const t = await withAdmin(opts, (api) => api.revokeToken(opts.tenant, id));
    emit(
      opts.json,
      t,
      () => `Revoked token ${t.id} of client ${t.client} (tenant ${t.tenant}) at ${t.revokedAt ?? ''}`,
    );
  });
}
