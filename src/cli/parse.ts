/** Parsers of option values; each throws a CliError naming the option so the message stands alone. */
import { readFileSync } from 'node:fs';
import type { RateLimitSettings, TenantSettings } from '../tenancy/settings.ts';
import { TENANT_SETTINGS_SCHEMA } from '../tenancy/settings.ts';
import { CliError } from './output.ts';
import { validate, type JsonSchema } from './validate.ts';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `3600`, `90s`, `15m`, `12h`, `30d` → seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value.trim());
  const seconds = m ? Number(m[1]) * UNIT_SECONDS[m[2] || 's'] : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 1) {
    throw new CliError(
      `--expires-in must be a positive number of seconds or e.g. 15m, 12h, 30d; got "${value}"`,
    );
  }
  return seconds;
}

/** `<max>/<seconds>` → a rate limit, e.g. `100/60` = 100 requests a minute. */
export function parseRateLimit(value: string): RateLimitSettings {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const max = m ? Number(m[1]) : NaN;
  const windowSeconds = m ? Number(m[2]) : NaN;
  if (!(max >= 1 && windowSeconds >= 1 && Number.isSafeInteger(max) && Number.isSafeInteger(windowSeconds))) {
    throw new CliError(
      `--rate-limit must be <max>/<seconds> with positive integers, e.g. 100/60; got "${value}"`,
    );
  }
  return { max, windowSeconds };
}

export function parsePort(value: string): number {
  const port = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535))
    throw new CliError(`--port must be an integer between 0 and 65535; got "${value}"`);
  return port;
}

/** Repeatable option: each use may also hold several values separated by commas or blanks. */
export function collectList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(/[\s,]+/).filter(Boolean)];
}

/**
 * Tenant settings from --settings (JSON text) or --settings-file (a JSON file), checked against the
 * admin API's schema so the direct mode refuses what the server would refuse.
 */
export function parseSettings(opts: {
  settings?: string;
  settingsFile?: string;
}): TenantSettings | undefined {
  let text: string;
  let source: string;
  if (opts.settings !== undefined) {
    text = opts.settings;
    source = '--settings';
  } else if (opts.settingsFile !== undefined) {
    source = `--settings-file ${opts.settingsFile}`;
    try {
      text = readFileSync(opts.settingsFile, 'utf8');
    } catch (err) {
      throw new CliError(
        `cannot read ${opts.settingsFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
  } else {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  const problem = validate(value, TENANT_SETTINGS_SCHEMA as unknown as JsonSchema, 'settings');
  if (problem) throw new CliError(`${source}: ${problem}`);
  return value as TenantSettings;
}
