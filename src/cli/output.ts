/**
 * Output of the admin commands: aligned tables and key/value blocks for people, JSON for scripts.
 * Both modes (direct store, remote admin API) hand the same view objects to these functions, so
 * the output does not depend on the mode.
 */
import { ScimError } from '../scim/errors.ts';

/** A failure the user caused or can fix; printed as `scimd: <message>` without a stack. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof ScimError || err instanceof CliError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Columns padded to their widest cell; the last column is not padded (no trailing blanks). */
export function table(headers: string[], rows: (string | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => c ?? '-'))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One object as `key  value` lines; unset values are left out. */
export function details(pairs: [string, string | undefined][]): string {
  const present = pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== '');
  const width = Math.max(...present.map(([k]) => k.length));
  return present.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function emit(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}
