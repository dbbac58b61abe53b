/**
 * The device data set, written straight into the store like the users (data.ts): each document goes
 * through prepareWrite and then the Device type's own beforeStore hook (the server-set enterprise
 * endpoints and application $refs), so the rows are what ResourceService.create would write.
 * Everything about device i is a function of i, so the lookups can pick random existing devices and
 * know the answer without keeping a million ids.
 */
import { randomUUID } from 'node:crypto';
import type { JsonObject } from '../../src/scim/json.ts';
import {
  BLE_SCHEMA,
  DEVICE_SCHEMA,
  DPP_SCHEMA,
  ENDPOINT_APPS_EXT_SCHEMA,
  ETHERNET_MAB_SCHEMA,
  FDO_SCHEMA,
  PAIRING_JUST_WORKS_SCHEMA,
  PAIRING_PASS_KEY_SCHEMA,
  ZIGBEE_SCHEMA,
} from '../../src/scim/schema/device-schemas.ts';
import type { SchemaRegistry } from '../../src/scim/schema/registry.ts';
import type { Database } from '../../src/store/db.ts';
import { BASE_SCHEMA } from '../../src/store/schema.sql.ts';
import { insertResources, storedDoc } from './data.ts';

export type DeviceKind = 'BLE' | 'Zigbee' | 'MAB' | 'DPP' | 'FDO';
export const DEVICE_KINDS: DeviceKind[] = ['BLE', 'Zigbee', 'MAB', 'DPP', 'FDO'];

/** i mod 10: 0-3 BLE (40%), 4-5 Zigbee (20%), 6-7 MAB (20%), 8 DPP (10%), 9 FDO (10%). */
export function kindOf(i: number): DeviceKind {
  const d = i % 10;
  return d < 4 ? 'BLE' : d < 6 ? 'Zigbee' : d < 8 ? 'MAB' : d === 8 ? 'DPP' : 'FDO';
}

const LABEL: Record<DeviceKind, string> = {
  BLE: 'BLE Tag',
  Zigbee: 'Zigbee Bulb',
  MAB: 'Printer',
  DPP: 'Camera',
  FDO: 'Gateway',
};

/** `BLE Tag 012345`: a prefix of the label and the first three digits matches up to 1,000 devices. */
export function displayNameOf(i: number): string {
  return `${LABEL[kindOf(i)]} ${String(i).padStart(6, '0')}`;
}

/** The `displayName sw` operand for a kind and a three-digit block (devices block*1000 … block*1000+999). */
export function namePrefix(kind: DeviceKind, block: number): string {
  return `${LABEL[kind]} ${String(block).padStart(3, '0')}`;
}

/** How many of n devices start with namePrefix(kind, block). */
export function prefixCount(n: number, kind: DeviceKind, block: number): number {
  let c = 0;
  for (let i = block * 1000; i < Math.min(n, block * 1000 + 1000); i++) if (kindOf(i) === kind) c++;
  return c;
}

/** Devices naming the managed EndpointApp: the BLE devices with i mod 1000 = 0 (1,000 of 1,000,000). */
export const managesA = (i: number) => i % 1000 === 0;
/** The "other" devices with the extension, naming a second app: Zigbee with i mod 1000 = 4. */
export const managesB = (i: number) => i % 1000 === 4;

export function managedCount(n: number): number {
  return Math.ceil(n / 1000);
}

// Odd multipliers are bijections modulo a power of two: unique addresses that do not look sequential.
const hex = (v: number, octets: number) =>
  v
    .toString(16)
    .padStart(octets * 2, '0')
    .match(/../g)!
    .join(':');
const spread40 = (i: number) => (i * 0x9e3779b1) % 2 ** 40;
const spread32 = (i: number) => (i * 0x85ebca6b) % 2 ** 32;

const OUI: Partial<Record<DeviceKind, number>> = { BLE: 0x02, MAB: 0x0a, DPP: 0x06 };

/** The stored (canonical) MAC of a BLE, MAB or DPP device: lower-case, colon-separated. */
export function macOf(i: number): string {
  return `${hex(OUI[kindOf(i)]!, 1)}:${hex(spread40(i), 5)}`;
}

/** The stored (canonical) EUI-64 of a Zigbee device. */
export function eui64Of(i: number): string {
  return `00:12:4b:00:${hex(spread32(i), 4)}`;
}

/** The same MAC as a switch prints it: upper case, hyphens (the format normalises it). */
export function otherMacSpelling(mac: string): string {
  return mac.toUpperCase().replace(/:/g, '-');
}

/** The same EUI-64 in Cisco dotted quads, upper case. */
export function otherEui64Spelling(eui: string): string {
  return eui.replace(/:/g, '').toUpperCase().match(/.{4}/g)!.join('.');
}

/** Device i as a manufacturer's onboarding service would POST it. */
export function deviceBody(i: number, apps: { a: string; b: string }): JsonObject {
  const kind = kindOf(i);
  const body: JsonObject = {
    schemas: [DEVICE_SCHEMA],
    externalId: `dev-${i}`,
    displayName: displayNameOf(i),
    active: i % 50 !== 7,
  };
  const schemas = body.schemas as string[];
  switch (kind) {
    case 'BLE': {
      const passKey = i % 4 === 1;
      schemas.push(BLE_SCHEMA);
      body[BLE_SCHEMA] = {
        versionSupport: i % 3 === 0 ? ['4.2', '5.0'] : ['5.3'],
        deviceMacAddress: macOf(i),
        isRandom: false,
        mobility: i % 7 === 0,
        pairingMethods: [passKey ? PAIRING_PASS_KEY_SCHEMA : PAIRING_JUST_WORKS_SCHEMA],
        ...(passKey ? { [PAIRING_PASS_KEY_SCHEMA]: { key: (i * 7919) % 1_000_000 } } : {}),
      };
      break;
    }
    case 'Zigbee':
      schemas.push(ZIGBEE_SCHEMA);
      body[ZIGBEE_SCHEMA] = { versionSupport: ['3.0'], deviceEui64Address: eui64Of(i) };
      break;
    case 'MAB':
      schemas.push(ETHERNET_MAB_SCHEMA);
      body[ETHERNET_MAB_SCHEMA] = { deviceMacAddress: macOf(i) };
      break;
    case 'DPP':
      schemas.push(DPP_SCHEMA);
      body[DPP_SCHEMA] = {
        dppVersion: 2,
        bootstrappingMethod: ['QR'],
        bootstrapKey: `MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAC${Buffer.from(`dpp-key-${i}`).toString('base64')}`,
        deviceMacAddress: macOf(i),
        classChannel: ['81/1', '115/36'],
        serialNumber: `SN${String(i).padStart(8, '0')}`,
      };
      break;
    case 'FDO':
      schemas.push(FDO_SCHEMA);
      // Real vouchers carry certificate chains (kilobytes); a few hundred bytes keeps rows inline.
      body[FDO_SCHEMA] = { fdoVoucher: Buffer.from(`fdo-voucher-${i}-`.repeat(12)).toString('base64') };
      break;
  }
  const app = managesA(i) ? apps.a : managesB(i) ? apps.b : undefined;
  if (app) {
    schemas.push(ENDPOINT_APPS_EXT_SCHEMA);
    body[ENDPOINT_APPS_EXT_SCHEMA] = { applications: [{ value: app }] };
  }
  return body;
}

export interface DeviceLoad {
  devices: number;
  byKind: Record<DeviceKind, number>;
  /** Devices with the endpointAppsExt extension. */
  withApps: number;
  /** Seconds: rows in (without the GIN index), GIN index built, VACUUM ANALYZE + CHECKPOINT. */
  rowsSeconds: number;
  ginSeconds: number;
  analyzeSeconds: number;
  batch: number;
}

const GIN_STATEMENT = BASE_SCHEMA.find((s) => s.includes('resources_doc_gin'))!;

/**
 * Loads n devices into a tenant. The GIN index on doc is dropped for the load and rebuilt after it
 * with the migration's own statement (a bulk build is far cheaper than a million incremental
 * inserts into it), so the store ends with exactly the indexes the migrations leave.
 */
export async function loadDevices(
  db: Database,
  registry: SchemaRegistry,
  tenant: string,
  settings: Record<string, unknown>,
  baseUrl: string,
  n: number,
  apps: { a: string; b: string },
  log: (msg: string) => void,
  opts: { batch: number; buildMemory: string },
): Promise<DeviceLoad> {
  const { batch } = opts;
  const rt = registry.resourceType('Device')!;
  const byKind = Object.fromEntries(DEVICE_KINDS.map((k) => [k, 0])) as Record<DeviceKind, number>;
  let withApps = 0;
  if (!GIN_STATEMENT) throw new Error('the migrations no longer create resources_doc_gin');
  await db.query('DROP INDEX IF EXISTS resources_doc_gin');
  const t0 = performance.now();
  for (let from = 0; from < n; from += batch) {
    const rows = [];
    for (let i = from; i < Math.min(n, from + batch); i++) {
      const doc = storedDoc(registry, rt, deviceBody(i, apps));
      // What ResourceService.create does next: the type's hook sets the server-owned values.
      rt.hooks?.beforeStore?.(doc, { mode: 'create', settings, baseUrl });
      if (doc[ENDPOINT_APPS_EXT_SCHEMA]) withApps++;
      byKind[kindOf(i)]++;
      rows.push({ id: randomUUID(), externalId: doc.externalId as string, doc });
    }
    await insertResources(db, 'Device', rows, tenant, 'bench-loader');
    if ((from / batch) % 10 === 0) log(`  devices ${from + rows.length}/${n}`);
  }
  const t1 = performance.now();
  log('  GIN index (the migration statement)');
  await db.transaction(async (tx) => {
    // Only the build's memory: the index is the one the migration defines.
    await tx.query(`SET LOCAL maintenance_work_mem = '${opts.buildMemory}'`);
    await tx.query(GIN_STATEMENT);
  });
  const t2 = performance.now();
  log('  VACUUM ANALYZE, CHECKPOINT');
  await db.query('VACUUM ANALYZE');
  await db.query('CHECKPOINT').catch((err: unknown) => log(`  CHECKPOINT failed: ${String(err)}`));
  const t3 = performance.now();
  return {
    devices: n,
    byKind,
    withApps,
    rowsSeconds: (t1 - t0) / 1000,
    ginSeconds: (t2 - t1) / 1000,
    analyzeSeconds: (t3 - t2) / 1000,
    batch,
  };
}
