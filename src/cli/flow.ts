/**
 * `scimd flow add|list|show|update|remove`: what the sync engine moves between this node and a
 * connection (src/sync/flows.ts). A mapping comes from a JSON file (--map-file) or from simple
 * options (--rename, --transform, --drop, --set); the authority from --owned-by-local,
 * --owned-by-remote, --initial and --default-owner.
 *
 * More subcommands (the engine's run, plan, history) are registered at the marked place at the end
 * of `registerFlow`: one imported function called with the `flow` command (`withSync`,
 * `flowDetails`, `tenantOption` and `addConnectionOptions` give them the same options and modes).
 */
import { Command, Option } from 'commander';
import type { JsonValue } from '../scim/json.ts';
import {
  DELETE_ACTIONS,
  DIRECTIONS,
  MODES,
  TRANSFORMS,
  type FlowInput,
  type FlowPatch,
  type FlowView,
} from '../sync/flows.ts';
import type {
  DeleteAction,
  FlowAuthority,
  FlowDirection,
  FlowMapping,
  FlowMode,
  MappingRule,
  Transform,
} from '../sync/types.ts';
import { tenantOption } from './client.ts';
import { readFileOption } from './connection.ts';
import { addConnectionOptions, type ConnectionOptions } from './context.ts';
import { registerFlowRuns } from './flow-run.ts';
import { CliError, details, emit, table } from './output.ts';
import { collectList } from './parse.ts';
import { withSync } from './sync-api.ts';

const pair = (flag: string, value: string): [string, string] => {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new CliError(`${flag} must be a=b; got "${value}"`);
  return [value.slice(0, eq), value.slice(eq + 1)];
};

const collect =
  <T>(parse: (v: string) => T) =>
  (value: string, previous: T[] = []): T[] => [...previous, parse(value)];

const renameRule = (v: string): MappingRule => {
  const [from, to] = pair('--rename', v);
  return { from, to };
};
const transformRule = (v: string): MappingRule => {
  const [attribute, transform] = pair('--transform', v);
  if (!(TRANSFORMS as readonly string[]).includes(transform))
    throw new CliError(
      `--transform: the transform must be one of ${TRANSFORMS.join(', ')}; got "${transform}"`,
    );
  return { attribute, transform: transform as Transform };
};
const setRule = (v: string): MappingRule => {
  const [set, text] = pair('--set', v);
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    value = text;
  }
  return { set, value };
};

function readMapping(path: string): FlowMapping {
  const text = readFileOption('--map-file', path);
  try {
    return JSON.parse(text) as FlowMapping;
  } catch (err) {
    throw new CliError(`--map-file: ${path} is not JSON: ${(err as Error).message}`);
  }
}

const intOption = (flag: string, min: number) => (value: string) => {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && Number.isSafeInteger(n)))
    throw new CliError(`${flag} must be an integer ≥ ${min}; got "${value}"`);
  return n;
};

type FieldOptions = {
  name?: string;
  connection?: string;
  direction?: FlowDirection;
  mode?: FlowMode;
  types?: string[];
  filter?: string;
  mapFile?: string;
  rename?: MappingRule[];
  transform?: MappingRule[];
  drop?: string[];
  set?: MappingRule[];
  only?: string[];
  ownedByLocal?: string[];
  ownedByRemote?: string[];
  initial?: string[];
  defaultOwner?: 'local' | 'remote';
  match?: string[];
  onDelete?: DeleteAction;
  usePut?: boolean;
  schedule?: string;
  onLocalChange?: boolean;
  upstream?: string;
  fullEvery?: number;
};

function fieldOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'display name (default: the id)')
    .option('--connection <id>', 'the connection the flow moves resources to or from')
    .addOption(
      new Option('--direction <dir>', 'push: local → remote; pull: remote → local').choices([...DIRECTIONS]),
    )
    .addOption(
      new Option(
        '--mode <mode>',
        'push: changes|full; pull: full|delta|events (default changes / full)',
      ).choices([...MODES]),
    )
    .option('--types <types>', 'resource types, e.g. User,Group (repeatable)', collectList)
    .option('--filter <filter>', 'SCIM filter selecting the resources in scope (on the source side)')
    .option('--map-file <path>', 'a JSON file with the mapping: {"only"?: [...], "rules": [...]}')
    .option(
      '--rename <from=to>',
      'mapping rule: copy an attribute under another name (repeatable)',
      collect(renameRule),
    )
    .option(
      '--transform <attr=how>',
      `mapping rule: ${TRANSFORMS.join('|')} an attribute (repeatable)`,
      collect(transformRule),
    )
    .option('--drop <attr>', 'mapping rule: never send or take this attribute (repeatable)', collect(String))
    .option('--set <attr=json>', 'mapping rule: set this value on the target (repeatable)', collect(setRule))
    .option('--only <attrs>', 'only these source attributes reach the target (repeatable)', collectList)
    .option('--owned-by-local <attrs>', 'attributes this node owns (repeatable)', collectList)
    .option('--owned-by-remote <attrs>', 'attributes the remote owns (repeatable)', collectList)
    .option(
      '--initial <attrs>',
      'attributes sent on create only, owned by the target afterwards',
      collectList,
    )
    .addOption(
      new Option('--default-owner <side>', 'owner of unlisted attributes (default: the source)').choices([
        'local',
        'remote',
      ]),
    )
    .option(
      '--match <attrs>',
      'attributes that recognise the same subject, in order, e.g. externalId,userName',
      collectList,
    )
    .addOption(
      new Option('--on-delete <action>', 'on the target when a source resource goes').choices([
        ...DELETE_ACTIONS,
      ]),
    )
    .option('--use-put', 'push: replace whole resources with PUT instead of PATCH')
    .option('--schedule <cron>', 'cron expression that starts the flow, e.g. "*/15 * * * *"')
    .option('--on-local-change', 'push changes: start within seconds of a local write')
    .option('--upstream <id>', 'pull events: the upstream whose SETs feed the flow')
    .option(
      '--full-every <seconds>',
      'pull delta: seconds between full pulls (≥ 60)',
      intOption('--full-every', 60),
    );
}

function mappingOf(o: FieldOptions): FlowMapping | undefined {
  const rules = [
    ...(o.rename ?? []),
    ...(o.transform ?? []),
    ...(o.drop ?? []).map((drop) => ({ drop })),
    ...(o.set ?? []),
  ];
  if (o.mapFile !== undefined) {
    if (rules.length > 0 || o.only !== undefined)
      throw new CliError('give --map-file or --rename/--transform/--drop/--set/--only, not both');
    return readMapping(o.mapFile);
  }
  if (rules.length === 0 && o.only === undefined) return undefined;
  const mapping: FlowMapping = { rules };
  if (o.only !== undefined) mapping.only = o.only;
  return mapping;
}

function authorityOf(o: FieldOptions): FlowAuthority | undefined {
  const a: FlowAuthority = {};
  if (o.defaultOwner !== undefined) a.default = o.defaultOwner;
  if (o.ownedByLocal !== undefined) a.local = o.ownedByLocal;
  if (o.ownedByRemote !== undefined) a.remote = o.ownedByRemote;
  if (o.initial !== undefined) a.initial = o.initial;
  return Object.keys(a).length > 0 ? a : undefined;
}

function fieldsOf(o: FieldOptions): FlowPatch {
  const out: FlowPatch = {};
  if (o.name !== undefined) out.name = o.name;
  if (o.connection !== undefined) out.connectionId = o.connection;
  if (o.direction !== undefined) out.direction = o.direction;
  if (o.mode !== undefined) out.mode = o.mode;
  if (o.types !== undefined) out.resourceTypes = [...new Set(o.types)];
  if (o.filter !== undefined) out.filter = o.filter;
  const mapping = mappingOf(o);
  if (mapping) out.mapping = mapping;
  const authority = authorityOf(o);
  if (authority) out.authority = authority;
  if (o.match !== undefined) out.matching = { attributes: o.match };
  if (o.onDelete !== undefined) out.onDelete = o.onDelete;
  if (o.usePut !== undefined) out.usePut = o.usePut;
  if (o.schedule !== undefined) out.schedule = o.schedule;
  if (o.onLocalChange !== undefined) out.onLocalChange = o.onLocalChange;
  if (o.upstream !== undefined) out.upstreamId = o.upstream;
  if (o.fullEvery !== undefined) out.fullEverySeconds = o.fullEvery;
  return out;
}

function ruleText(r: MappingRule): string {
  if ('from' in r) return `${r.from} → ${r.to}${r.transform ? ` (${r.transform})` : ''}`;
  if ('attribute' in r) return `${r.transform} ${r.attribute}`;
  if ('drop' in r) return `drop ${r.drop}`;
  return `set ${r.set} = ${JSON.stringify(r.value)}`;
}

export function flowDetails(f: FlowView): string {
  const a = f.authority;
  return details([
    ['id', f.id],
    ['tenant', f.tenant],
    ['name', f.name],
    ['connection', f.connectionId],
    ['direction', f.direction],
    ['mode', f.mode],
    ['resource types', f.resourceTypes.join(', ')],
    ['filter', f.filter],
    ['only', f.mapping?.only?.join(', ')],
    ['mapping', f.mapping?.rules.map(ruleText).join('; ')],
    ['default owner', a?.default],
    ['owned by local', a?.local?.join(', ')],
    ['owned by remote', a?.remote?.join(', ')],
    ['initial', a?.initial?.join(', ')],
    ['match', f.matching?.attributes.join(', ')],
    ['on delete', f.onDelete],
    ['use put', f.usePut ? 'yes' : undefined],
    ['schedule', f.schedule],
    ['next run', f.nextRun],
    ['on local change', f.onLocalChange ? 'yes' : undefined],
    ['upstream', f.upstreamId],
    ['full every', f.fullEverySeconds !== undefined ? `${f.fullEverySeconds}s` : undefined],
    ['enabled', f.enabled ? 'yes' : 'no'],
    ['state', Object.keys(f.state).length > 0 ? JSON.stringify(f.state) : undefined],
    ['created', f.created],
    ['updated', f.updated],
  ]);
}

const CLEARABLE = [
  'filter',
  'mapping',
  'authority',
  'matching',
  'schedule',
  'upstreamId',
  'fullEverySeconds',
] as const;
type Base = ConnectionOptions & { tenant: string };

export function registerFlow(program: Command): Command {
  const flow = program
    .command('flow')
    .description(
      'Manage sync flows: what moves between this node and a connection, and who owns which attribute',
    );

  addConnectionOptions(
    fieldOptions(
      flow
        .command('add')
        .description('Add a flow')
        .addOption(tenantOption())
        .option('--id <id>', 'flow id (default: a random UUID)')
        .option('--disabled', 'create it disabled'),
    ),
  ).action(async (opts: Base & FieldOptions & { id?: string; disabled?: boolean }) => {
    for (const [flag, v] of [
      ['--connection <id>', opts.connection],
      ['--direction <dir>', opts.direction],
      ['--types <types>', opts.types],
    ] as const) {
      if (v === undefined) throw new CliError(`required option '${flag}' not specified`);
    }
    const input = { ...fieldsOf(opts) } as FlowInput;
    if (opts.id !== undefined) input.id = opts.id;
    if (opts.disabled) input.enabled = false;
    const f = await withSync(opts, (api) => api.createFlow(opts.tenant, input));
    emit(opts.json, f, () => flowDetails(f));
  });

  addConnectionOptions(
    flow
      .command('list')
      .description("List a tenant's flows")
      .addOption(tenantOption())
      .option('--connection <id>', 'only the flows of this connection'),
  ).action(async (opts: Base & { connection?: string }) => {
    const list = await withSync(opts, (api) => api.listFlows(opts.tenant, opts.connection));
    emit(opts.json, list, () =>
      table(
        ['ID', 'NAME', 'CONNECTION', 'DIRECTION', 'MODE', 'TYPES', 'ENABLED', 'NEXT RUN'],
        list.map((f) => [
          f.id,
          f.name,
          f.connectionId,
          f.direction,
          f.mode,
          f.resourceTypes.join(','),
          f.enabled ? 'yes' : 'no',
          f.nextRun,
        ]),
      ),
    );
  });

  addConnectionOptions(
    flow.command('show <id>').description('Show one flow').addOption(tenantOption()),
  ).action(async (id: string, opts: Base) => {
    const f = await withSync(opts, (api) => api.getFlow(opts.tenant, id));
    emit(opts.json, f, () => flowDetails(f));
  });

  addConnectionOptions(
    fieldOptions(
      flow
        .command('update <id>')
        .description(
          'Change some fields of a flow (any mapping option replaces the whole mapping, any owner option the whole authority)',
        )
        .addOption(tenantOption())
        .option('--enabled', 'enable the flow')
        .option('--disabled', 'disable the flow (no trigger starts it)')
        .addOption(
          new Option('--clear <field>', 'unset an optional field, repeatable')
            .choices([...CLEARABLE])
            .argParser((v: string, prev: string[] | undefined) => {
              if (!(CLEARABLE as readonly string[]).includes(v))
                throw new CliError(`--clear must be one of ${CLEARABLE.join(', ')}; got "${v}"`);
              return [...(prev ?? []), v];
            }),
        ),
      // After the positive forms: defined first, a negation would default the flag to true.
    )
      .option('--no-use-put', 'push with PATCH from the difference')
      .option('--no-on-local-change', 'do not start on local writes'),
  ).action(
    async (
      id: string,
      opts: Base &
        FieldOptions & { enabled?: boolean; disabled?: boolean; clear?: (typeof CLEARABLE)[number][] },
    ) => {
      if (opts.enabled && opts.disabled) throw new CliError('give --enabled or --disabled, not both');
      const patch = fieldsOf(opts);
      if (opts.enabled) patch.enabled = true;
      if (opts.disabled) patch.enabled = false;
      for (const f of opts.clear ?? []) {
        if (patch[f] !== undefined) throw new CliError(`--clear ${f} conflicts with a new value for it`);
        patch[f] = null;
      }
      if (Object.keys(patch).length === 0) throw new CliError('nothing to update: give at least one option');
      const f = await withSync(opts, (api) => api.updateFlow(opts.tenant, id, patch));
      emit(opts.json, f, () => flowDetails(f));
    },
  );

  addConnectionOptions(
    flow
      .command('remove <id>')
      .description('Remove a flow with its links and run history (the resources on both sides stay)')
      .addOption(tenantOption()),
  ).action(async (id: string, opts: Base) => {
    await withSync(opts, (api) => api.removeFlow(opts.tenant, id));
    emit(
      opts.json,
      { tenant: opts.tenant, id, removed: true },
      () => `Removed flow ${id} of tenant ${opts.tenant}`,
    );
  });

  // The sync engine's run, plan and history (src/cli/flow-run.ts).
  registerFlowRuns(flow);
  return flow;
}
