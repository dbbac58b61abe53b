/** `scimd tenant create|list|show|delete`. */
import { Command, Option } from 'commander';
import type { TenantView } from '../admin/service.ts';
import { addConnectionOptions, withAdmin, type ConnectionOptions } from './context.ts';
import { CliError, details, emit, table } from './output.ts';
import { parseSettings } from './parse.ts';

export function tenantDetails(t: TenantView): string {
  return details([
    ['id', t.id],
    ['name', t.name],
    ['created', t.created],
    ['settings', JSON.stringify(t.settings)],
  ]);
}

export function registerTenant(program: Command): void {
  const tenant = program
    .command('tenant')
    .description('Manage tenants (creating and deleting them needs the node operator)');

  addConnectionOptions(
    tenant
      .command('create <id>')
      .description('Create a tenant (id: lower-case letters, digits and dashes)')
      .option('--name <name>', 'display name (default: the id)')
      .addOption(new Option('--settings <json>', 'tenant settings as JSON text').conflicts('settingsFile'))
      .option('--settings-file <path>', 'tenant settings from a JSON file'),
  ).action(
    async (
      id: string,
      opts: ConnectionOptions & { name?: string; settings?: string; settingsFile?: string },
    ) => {
      const settings = parseSettings(opts);
      const t = await withAdmin(opts, (api) => api.createTenant({ id, name: opts.name, settings }));
      emit(opts.json, t, () => tenantDetails(t));
    },
  );

  addConnectionOptions(tenant.command('list').description('List the tenants')).action(
    async (opts: ConnectionOptions) => {
      const tenants = await withAdmin(opts, (api) => api.listTenants());
      emit(opts.json, tenants, () =>
        table(
          ['ID', 'NAME', 'CREATED'],
          tenants.map((t) => [t.id, t.name, t.created]),
        ),
      );
    },
  );

  addConnectionOptions(tenant.command('show <id>').description('Show one tenant and its settings')).action(
    async (id: string, opts: ConnectionOptions) => {
      const t = await withAdmin(opts, (api) => api.getTenant(id));
      emit(opts.json, t, () => tenantDetails(t));
    },
  );

  addConnectionOptions(
    tenant
      .command('delete <id>')
      .description('Delete a tenant with all its resources, clients and tokens; --yes is required to confirm')
      .option('--yes', 'confirm the deletion'),
  ).action(async (id: string, opts: ConnectionOptions & { yes?: boolean }) => {
    if (!opts.yes) {
      throw new CliError(
        `refusing to delete tenant ${id} without --yes (this deletes its resources, clients and tokens)`,
      );
    }
    await withAdmin(opts, (api) => api.deleteTenant(id));
    emit(opts.json, { id, deleted: true }, () => `Deleted tenant ${id}`);
  });
}
