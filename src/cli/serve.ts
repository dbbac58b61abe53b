/** `scimd serve`: the SCIM server. Flags override the environment variables named in each help line. */
import { Command, Option } from 'commander';
import { createApp } from '../app.ts';
import { startHttpRedirect, type HttpRedirect } from '../http/redirect.ts';
import { CliError } from './output.ts';
import { parsePort, parseRateLimit } from './parse.ts';
import type { RateLimitSettings } from '../tenancy/settings.ts';

interface ServeOptions {
  port?: number;
  host?: string;
  dataDir?: string;
  databaseUrl?: string;
  baseUrl?: string;
  logLevel?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  httpRedirectPort?: number;
  rateLimit?: RateLimitSettings;
  json?: boolean;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve the SCIM API (embedded store in ./data unless DATABASE_URL names a PostgreSQL server)',
    )
    .addOption(new Option('-p, --port <port>', 'TCP port (default 8080)').env('PORT').argParser(parsePort))
    .addOption(new Option('--host <host>', 'address to listen on (default 0.0.0.0)').env('HOST'))
    .addOption(
      new Option('--data-dir <dir>', 'folder of the embedded store (default ./data)').env('SCIMD_DATA_DIR'),
    )
    .addOption(new Option('--database-url <url>', 'PostgreSQL connection string').env('DATABASE_URL'))
    .addOption(new Option('--base-url <url>', 'public base URL used in meta.location').env('SCIMD_BASE_URL'))
    .addOption(
      new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)').env(
        'SCIMD_LOG_LEVEL',
      ),
    )
    .addOption(
      new Option('--tls-cert <file>', 'PEM certificate: serve HTTPS (needs --tls-key)').env('SCIMD_TLS_CERT'),
    )
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert').env('SCIMD_TLS_KEY'))
    .addOption(
      new Option('--tls-client-ca <file>', 'PEM CA bundle: request client certificates signed by it').env(
        'SCIMD_TLS_CLIENT_CA',
      ),
    )
    .addOption(
      new Option(
        '--http-redirect-port <port>',
        'with TLS: also listen for plain HTTP here and answer every request 308 to the https URL',
      )
        .env('SCIMD_HTTP_REDIRECT_PORT')
        .argParser((v: string) => {
          try {
            return parsePort(v);
          } catch {
            throw new CliError(`--http-redirect-port must be an integer between 0 and 65535; got "${v}"`);
          }
        }),
    )
    .addOption(
      new Option(
        '--rate-limit <max>/<seconds>',
        'default request rate limit per client, e.g. 100/60 (env SCIMD_RATE_LIMIT_MAX, SCIMD_RATE_LIMIT_WINDOW)',
      ).argParser(parseRateLimit),
    )
    .option('--json', 'print the listening address as JSON')
    .action(async (opts: ServeOptions) => {
      const app = await createApp({
        port: opts.port,
        host: opts.host,
        dataDir: opts.dataDir,
        databaseUrl: opts.databaseUrl,
        baseUrl: opts.baseUrl,
        logLevel: opts.logLevel,
        tlsCert: opts.tlsCert,
        tlsKey: opts.tlsKey,
        tlsClientCa: opts.tlsClientCa,
        httpRedirectPort: opts.httpRedirectPort,
        rateLimit: opts.rateLimit,
      });
      const address = await app.server.listen({ port: app.config.port, host: app.config.host });
      let redirect: HttpRedirect | undefined;
      if (app.config.httpRedirectPort !== undefined) {
        const httpsPort = (app.server.server.address() as { port: number }).port;
        try {
          redirect = await startHttpRedirect({
            port: app.config.httpRedirectPort,
            host: app.config.host,
            httpsPort,
            baseUrl: app.config.baseUrl,
          });
        } catch (err) {
          await app.close(); // the HTTPS server would keep the process alive
          throw new CliError(`the HTTP redirect port cannot be used: ${(err as Error).message}`);
        }
      }
      const info = {
        address,
        scim: `${address}/scim/v2`,
        store: app.db.kind,
        ...(redirect ? { httpRedirect: redirect.address } : {}),
      };
      if (opts.json) console.log(JSON.stringify(info));
      else app.server.log.info(info, 'scimd listening');
      if (!app.config.adminToken) {
        app.server.log.warn(
          'SCIMD_ADMIN_TOKEN is not set: only tokens issued with `scimd token issue` (or other configured credentials) are accepted',
        );
      }
      const stop = async (signal: string) => {
        app.server.log.info({ signal }, 'shutting down');
        await redirect?.close();
        await app.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
