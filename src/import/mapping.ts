/**
 * A manufacturer's device list → SCIM Device bodies. The columns (docs/import.md) name Device
 * attributes with a short prefix per extension (`ble.`, `dpp.`, ...); a row becomes the body a
 * client would POST to /Devices, and the server's own validation (ResourceService) judges it. This
 * module only converts text: a cell that cannot be the column's type is the row's 400.
 */
import { ScimError } from '../scim/errors.ts';
import { isJsonObject, type JsonObject, type JsonValue } from '../scim/json.ts';
import {
  BLE_SCHEMA,
  DEVICE_EXTENSIONS,
  DEVICE_SCHEMA,
  DPP_SCHEMA,
  ENDPOINT_APPS_EXT_SCHEMA,
  ETHERNET_MAB_SCHEMA,
  FDO_SCHEMA,
  PAIRING_JUST_WORKS_SCHEMA,
  PAIRING_NULL_SCHEMA,
  PAIRING_OOB_SCHEMA,
  PAIRING_PASS_KEY_SCHEMA,
  ZIGBEE_SCHEMA,
} from '../scim/schema/device-schemas.ts';

type Kind = 'string' | 'boolean' | 'integer' | 'list' | 'pairingMethods' | 'passKey' | 'applications';

interface Column {
  name: string;
  kind: Kind;
  /** Extension URN, or undefined for a core (top-level) attribute. */
  schema?: string;
  /** Attribute name in its schema. */
  attribute: string;
}

const col = (name: string, kind: Kind, schema?: string, attribute?: string): Column => ({
  name,
  kind,
  schema,
  attribute: attribute ?? name.slice(name.indexOf('.') + 1),
});

/** The documented columns, in the order docs/import.md lists them. */
export const COLUMNS: readonly Column[] = [
  col('displayName', 'string'),
  col('active', 'boolean'),
  col('mudUrl', 'string'),
  col('externalId', 'string'),
  col('ble.deviceMacAddress', 'string', BLE_SCHEMA),
  col('ble.isRandom', 'boolean', BLE_SCHEMA),
  col('ble.versionSupport', 'list', BLE_SCHEMA),
  col('ble.pairingMethods', 'pairingMethods', BLE_SCHEMA),
  col('ble.passKey', 'passKey', BLE_SCHEMA, PAIRING_PASS_KEY_SCHEMA),
  col('dpp.bootstrapKey', 'string', DPP_SCHEMA),
  col('dpp.deviceMacAddress', 'string', DPP_SCHEMA),
  col('dpp.serialNumber', 'string', DPP_SCHEMA),
  col('dpp.bootstrappingMethod', 'list', DPP_SCHEMA),
  col('dpp.dppVersion', 'integer', DPP_SCHEMA),
  col('mab.deviceMacAddress', 'string', ETHERNET_MAB_SCHEMA),
  col('fdo.fdoVoucher', 'string', FDO_SCHEMA),
  col('zigbee.deviceEui64Address', 'string', ZIGBEE_SCHEMA),
  col('zigbee.versionSupport', 'list', ZIGBEE_SCHEMA),
  col('applications', 'applications', ENDPOINT_APPS_EXT_SCHEMA),
];

const BY_NAME = new Map(COLUMNS.map((c) => [c.name.toLowerCase(), c]));

/** Short names of the BLE pairing methods (case-insensitive); URNs are passed on as they are. */
export const PAIRING_METHOD_NAMES: Record<string, string> = {
  passkey: PAIRING_PASS_KEY_SCHEMA,
  oob: PAIRING_OOB_SCHEMA,
  justworks: PAIRING_JUST_WORKS_SCHEMA,
  null: PAIRING_NULL_SCHEMA,
};

/** A fatal problem with the input as a whole (header, mapping file): nothing is imported. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/**
 * The `--map` file: `{ "<manufacturer header>": "<column>" | null }`; null drops that column.
 * Targets must be documented columns.
 */
export type HeaderMap = Record<string, string | null>;

export function parseHeaderMap(value: unknown, source: string): HeaderMap {
  if (!isJsonObject(value)) throw new InputError(`${source}: a JSON object of header → column name expected`);
  const out: HeaderMap = {};
  for (const [from, to] of Object.entries(value)) {
    if (to === null) {
      out[from.trim()] = null;
      continue;
    }
    if (typeof to !== 'string')
      throw new InputError(`${source}: "${from}" must map to a column name (a string) or null`);
    const column = BY_NAME.get(to.trim().toLowerCase());
    if (!column) throw new InputError(`${source}: "${from}" maps to "${to}", which is not a column`);
    out[from.trim()] = column.name;
  }
  return out;
}

/** How the keys of an input (a CSV header, a flat JSON object) resolve to columns. */
export class ColumnResolver {
  constructor(
    private readonly map: HeaderMap = {},
    private readonly ignoreUnknown = false,
  ) {}

  /** A column, null for a key to skip (mapped to null, or unknown and ignored), undefined for unknown. */
  resolve(key: string): Column | null | undefined {
    const k = key.trim();
    if (Object.hasOwn(this.map, k)) {
      const to = this.map[k];
      return to === null ? null : BY_NAME.get(to.toLowerCase())!;
    }
    const column = BY_NAME.get(k.toLowerCase());
    if (column) return column;
    return this.ignoreUnknown ? null : undefined;
  }

  /**
   * A CSV header → the column of each position (null = skipped). Unknown and repeated columns
   * are fatal: a misread header would put values in the wrong attributes of every device.
   */
  header(fields: string[]): (Column | null)[] {
    const unknown: string[] = [];
    const seen = new Map<string, string>();
    const out = fields.map((f, i) => {
      const key = i === 0 ? f.replace(/^\uFEFF/, '') : f;
      const c = this.resolve(key);
      if (c === undefined) unknown.push(key.trim());
      if (c) {
        const before = seen.get(c.name);
        if (before !== undefined)
          throw new InputError(`columns "${before}" and "${key.trim()}" both name ${c.name}`);
        seen.set(c.name, key.trim());
      }
      return c ?? null;
    });
    if (unknown.length) {
      throw new InputError(
        `unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} ` +
          `(see docs/import.md for the columns; --map renames headers, --ignore-unknown-columns skips them)`,
      );
    }
    if (!seen.size) throw new InputError('the header names no column');
    return out;
  }
}

function invalid(column: Column, detail: string): ScimError {
  return ScimError.badRequest('invalidValue', `${column.name}: ${detail}`);
}

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no']);

function splitList(text: string): string[] {
  return text
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * One cell (text from CSV, or any JSON value from a flat JSON line) → the attribute value, or
 * undefined when absent (empty cell, null).
 */
function convert(column: Column, raw: JsonValue): JsonValue | undefined {
  if (raw === null) return undefined;
  if (typeof raw === 'string') {
    raw = raw.trim();
    if (raw === '') return undefined;
  }
  switch (column.kind) {
    case 'string':
      return raw;
    case 'boolean':
      if (raw === 1 || raw === 0) return raw === 1;
      if (typeof raw !== 'string') return raw;
      if (TRUE.has(raw.toLowerCase())) return true;
      if (FALSE.has(raw.toLowerCase())) return false;
      throw invalid(column, `"${raw}" is not a boolean (true/false, 1/0, yes/no)`);
    case 'integer':
    case 'passKey': {
      if (typeof raw !== 'string') return raw;
      if (!/^[+-]?\d+$/.test(raw)) throw invalid(column, `"${raw}" is not an integer`);
      return Number(raw);
    }
    case 'list':
      return typeof raw === 'string' ? splitList(raw) : raw;
    case 'pairingMethods': {
      const items = typeof raw === 'string' ? splitList(raw) : raw;
      if (!Array.isArray(items)) return items;
      return items.map((m) => (typeof m === 'string' ? (PAIRING_METHOD_NAMES[m.toLowerCase()] ?? m) : m));
    }
    case 'applications': {
      const items = typeof raw === 'string' ? splitList(raw) : raw;
      if (!Array.isArray(items)) return items;
      return items.map((v) => (typeof v === 'string' ? { value: v } : v));
    }
  }
}

/** Values by column (from a CSV row or a flat JSON object) → a SCIM Device body. */
export function deviceBody(values: [Column, JsonValue][]): JsonObject {
  const body: JsonObject = { schemas: [DEVICE_SCHEMA] };
  const extensions = new Map<string, JsonObject>();
  for (const [column, raw] of values) {
    const value = convert(column, raw);
    if (value === undefined) continue;
    if (!column.schema) {
      body[column.attribute] = value;
      continue;
    }
    let ext = extensions.get(column.schema);
    if (!ext) extensions.set(column.schema, (ext = {}));
    ext[column.attribute] = column.kind === 'passKey' ? { key: value } : value;
  }
  for (const urn of DEVICE_EXTENSIONS) {
    const ext = extensions.get(urn);
    if (!ext) continue;
    (body.schemas as string[]).push(urn);
    body[urn] = ext;
  }
  return body;
}

/** A CSV record under its header → a Device body; a record of the wrong width is the row's 400. */
export function csvRowBody(header: (Column | null)[], fields: string[]): JsonObject {
  if (fields.length !== header.length) {
    throw ScimError.badRequest(
      'invalidSyntax',
      `the row has ${fields.length} field${fields.length === 1 ? '' : 's'}, the header ${header.length}`,
    );
  }
  const values: [Column, JsonValue][] = [];
  header.forEach((c, i) => {
    if (c) values.push([c, fields[i]]);
  });
  return deviceBody(values);
}

/**
 * One JSON line → a Device body: an object with `schemas` is a SCIM Device resource, taken as it
 * is; any other object is flat, keyed by column names (through the header map). Unknown keys of a
 * flat object are that row's 400 (a JSON lines file has no header to refuse up front).
 */
export function jsonLineBody(value: unknown, resolver: ColumnResolver): unknown {
  if (!isJsonObject(value)) throw ScimError.badRequest('invalidSyntax', 'each line must be a JSON object');
  if (Object.hasOwn(value, 'schemas')) return value;
  const values: [Column, JsonValue][] = [];
  const unknown: string[] = [];
  const seen = new Set<string>();
  for (const [key, v] of Object.entries(value)) {
    const c = resolver.resolve(key);
    if (c === undefined) unknown.push(key);
    else if (c) {
      if (seen.has(c.name)) throw ScimError.badRequest('invalidSyntax', `two keys name ${c.name}`);
      seen.add(c.name);
      values.push([c, v]);
    }
  }
  if (unknown.length) {
    throw ScimError.badRequest(
      'invalidSyntax',
      `unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}`,
    );
  }
  return deviceBody(values);
}

/** Whether a CSV record is blank (an empty line, or only separators and blanks): skipped. */
export function isBlankRecord(fields: string[]): boolean {
  return fields.every((f) => f.trim() === '');
}
