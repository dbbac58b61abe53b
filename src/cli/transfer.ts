/**
 * `scimd push <connection>` and `scimd pull <connection>`: a one-off transfer of some resource
 * types (and a filter) to or from a connection, without setting up a flow first.
 *
 * A one-off runs through a flow of its own, `oneoff-<direction>-<connection>`, created disabled on
 * first use (no schedule or trigger ever starts it) and kept afterwards. Kept for its links: the
 * engine records which local resource is which remote one, so a repeated transfer updates what the
 * previous one created instead of creating it again, even when no matching attribute would
 * recognise it (a renamed userName, a mapping that changes the matching attribute). A temporary flow
 * removed after its run would lose them, and with them the run's history. Each one-off sets the
 * flow's types, filter and on-delete to the options given (mode full: every resource in scope is
 * compared), and keeps anything else set on it (`scimd flow update oneoff-push-x --map-file ...`
 * adds a mapping to every later one-off). `scimd flow remove` forgets it.
 *
 * --on-delete defaults to ignore: a one-off never deletes or deactivates on the target unless
 * asked to. Output and exit codes as `scimd flow run` (src/cli/flow-run.ts).
 */
import { createHash } from 'node:crypto';
import { Command, Option } from 'commander';
import { DELETE_ACTIONS } from '../sync/flows.ts';
import type { DeleteAction, FlowDirection } from '../sync/types.ts';
import { tenantOption } from './client.ts';
import { addConnectionOptions, type ConnectionOptions } from './context.ts';
import { runAndReport, withRuns, type RunsApi } from './flow-run.ts';
import { CliError } from './output.ts';
import { collectList } from './parse.ts';

/** The one-off flow's id: `oneoff-push-<connection>` (shortened with a hash past 64 characters). */
export function oneOffFlowId(direction: FlowDirection, connection: string): string {
  const prefix = `oneoff-${direction}-`;
  if (prefix.length + connection.length <= 64) return `${prefix}${connection}`;
  const hash = createHash('sha256').update(connection).digest('hex').slice(0, 8);
  return `${prefix}${connection.slice(0, 64 - prefix.length - 9)}-${hash}`;
}

type TransferOptions = ConnectionOptions & {
  tenant: string;
  types?: string[];
  filter?: string;
  onDelete: DeleteAction;
  dryRun?: boolean;
};

/** The one-off flow for this transfer, created or brought to these options. */
async function oneOffFlow(
  api: RunsApi,
  direction: FlowDirection,
  connection: string,
  o: TransferOptions & { types: string[] },
): Promise<string> {
  const id = oneOffFlowId(direction, connection);
  const fields = {
    mode: 'full' as const,
    resourceTypes: [...new Set(o.types)],
    filter: o.filter ?? null,
    onDelete: o.onDelete,
    enabled: false,
  };
  const existing = (await api.listFlows(o.tenant, connection)).find((f) => f.id === id);
  if (!existing) {
    await api.createFlow(o.tenant, {
      id,
      name: `one-off ${direction} ${direction === 'push' ? 'to' : 'from'} ${connection}`,
      connectionId: connection,
      direction,
      ...fields,
    });
  } else {
    if (existing.direction !== direction)
      throw new CliError(`flow ${id} exists with direction ${existing.direction}: remove it first`);
    await api.updateFlow(o.tenant, id, fields);
  }
  return id;
}

function transferCommand(program: Command, direction: FlowDirection): void {
  const toFrom = direction === 'push' ? 'to' : 'from';
  addConnectionOptions(
    program
      .command(`${direction} <connection>`)
      .description(
        `One-off transfer ${toFrom} a connection (${direction === 'push' ? 'local → remote' : 'remote → local'}) ` +
          `through the kept flow oneoff-${direction}-<connection>: a repeated transfer updates, never duplicates. ` +
          'Exit code 0: succeeded; 2: partial; 1: failed',
      )
      .addOption(tenantOption())
      .option('--types <types>', 'resource types to transfer, e.g. User,Group (required)', collectList)
      .option(
        '--filter <filter>',
        `SCIM filter selecting the resources (on the ${direction === 'push' ? 'local' : 'remote'} side)`,
      )
      .addOption(
        new Option(
          '--on-delete <action>',
          `on the ${direction === 'push' ? 'remote' : 'local'} side, for a linked resource gone from the source`,
        )
          .choices([...DELETE_ACTIONS])
          .default('ignore'),
      )
      .option('--dry-run', 'print the plan instead (the one-off flow is set up, no resource is written)'),
  ).action(async (connection: string, opts: TransferOptions) => {
    const types = opts.types;
    if (types === undefined || types.length === 0)
      throw new CliError("required option '--types <types>' not specified");
    process.exitCode = await withRuns(opts, async (api) => {
      const flowId = await oneOffFlow(api, direction, connection, { ...opts, types });
      return runAndReport(api, opts.tenant, flowId, { dryRun: opts.dryRun, json: opts.json });
    });
  });
}

export function registerTransfer(program: Command): void {
  transferCommand(program, 'push');
  transferCommand(program, 'pull');
}
