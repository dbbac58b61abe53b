/**
 * The `scimd` command line (commander): serve, and the admin commands for tenants, clients and
 * tokens. Every command has --help; failures exit non-zero with one line `scimd: <message>` on
 * stderr; the admin commands print JSON with --json.
 */
import { Command } from 'commander';
import { registerClient } from './client.ts';
import { registerConnection } from './connection.ts';
import { registerFeed } from './feed.ts';
import { registerFlow } from './flow.ts';
import { registerImport } from './import.ts';
import { registerJit } from './jit.ts';
import { registerReceiver } from './receiver.ts';
import { registerSecrets } from './secrets.ts';
import { errorMessage } from './output.ts';
import { registerServe } from './serve.ts';
import { registerTenant } from './tenant.ts';
import { registerToken } from './token.ts';
import { registerTransfer } from './transfer.ts';
import { registerUpstream } from './upstream.ts';

function buildProgram(): Command {
  const program = new Command();
  program
    .name('scimd')
    .description('SCIM 2.0 provisioning server for users, groups and devices')
    .version('0.1.0')
    // Set before the subcommands are added: commander copies these settings to each of them.
    .configureOutput({
      outputError: (str, write) =>
        write(
          `scimd: ${str
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')}\n`,
        ),
    })
    .addHelpText(
      'after',
      `
Admin commands open the store directly (DATABASE_URL, or the embedded store in --data-dir, default
./data), or, with --url (SCIMD_URL) and --token (SCIMD_TOKEN, SCIMD_ADMIN_TOKEN), call a running
server's admin API. The embedded store can be opened by one process at a time: while the server
runs, use --url.`,
    );
  registerServe(program);
  registerTenant(program);
  registerClient(program);
  registerToken(program);
  registerImport(program);
  registerUpstream(program);
  registerFeed(program);
  registerReceiver(program);
  registerJit(program);
  registerConnection(program);
  registerFlow(program);
  registerTransfer(program);
  registerSecrets(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`scimd: ${errorMessage(err).replace(/\s*\n\s*/g, ' ')}\n`);
    // exitCode rather than exit(): let stdout and stderr drain when they are pipes.
    process.exitCode = 1;
  });
