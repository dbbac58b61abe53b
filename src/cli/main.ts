/**
 * The `scimd` command line (commander). Every command has --help, exits non-zero on failure with
 * a one-line message on stderr, and prints JSON with --json.
 */
import { Command, Option } from 'commander';
import { createApp } from '../app.ts';

const program = new Command();
program
  .name('scimd')
  .description('SCIM 2.0 provisioning server for users, groups and devices')
  .version('0.1.0');

program
  .command('serve')
  .description('Serve the SCIM API (embedded store in ./data unless DATABASE_URL names a PostgreSQL server)')
  .addOption(new Option('-p, --port <port>', 'TCP port').env('PORT').argParser((v) => parseInt(v, 10)))
  .addOption(new Option('--host <host>', 'address to listen on').env('HOST'))
  .addOption(new Option('--data-dir <dir>', 'folder of the embedded store').env('SCIMD_DATA_DIR'))
  .addOption(new Option('--database-url <url>', 'PostgreSQL connection string').env('DATABASE_URL'))
  .addOption(new Option('--base-url <url>', 'public base URL used in meta.location').env('SCIMD_BASE_URL'))
  .addOption(
    new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent').env('SCIMD_LOG_LEVEL'),
  )
  .option('--json', 'print the listening address as JSON')
  .action(
    async (opts: {
      port?: number;
      host?: string;
      dataDir?: string;
      databaseUrl?: string;
      baseUrl?: string;
      logLevel?: string;
      json?: boolean;
    }) => {
      const app = await createApp({
        port: opts.port,
        host: opts.host,
        dataDir: opts.dataDir,
        databaseUrl: opts.databaseUrl,
        baseUrl: opts.baseUrl,
        logLevel: opts.logLevel,
      });
      const address = await app.server.listen({ port: app.config.port, host: app.config.host });
      const info = { address, scim: `${address}/scim/v2`, store: app.db.kind };
      if (opts.json) console.log(JSON.stringify(info));
      else app.server.log.info(info, 'scimd listening');
      if (!app.config.adminToken) {
        app.server.log.warn('SCIMD_ADMIN_TOKEN is not set: every SCIM request will be refused with 401');
      }
      const stop = async (signal: string) => {
        app.server.log.info({ signal }, 'shutting down');
        await app.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`scimd: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
