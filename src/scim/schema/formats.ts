/**
 * Named value formats for string attributes (`format` on an AttributeDefinition). A format turns
 * every accepted spelling of a value into one canonical spelling, so storage, uniqueness indexes and
 * `eq` comparisons see a single form: `2C-54-91-88-C9-E2` and `2c:54:91:88:c9:e2` are one MAC.
 *
 * Formats are server-side behaviour, not schema data a client can read: RFC 7643 has no place for
 * them in /Schemas (see docs/schemas.md). New formats are added with `registerFormat`; schemas
 * referring to an unknown format are rejected when they are registered.
 */

export interface ValueFormat {
  name: string;
  /** For error messages: what a valid value looks like. */
  description: string;
  /** The canonical spelling of `value`, or undefined when `value` is not valid in this format. */
  normalize(value: string): string | undefined;
  /**
   * The canonical spelling of a fragment (the operand of `co`/`sw`/`ew`), which need not be a whole
   * value. Without it, fragments are compared as written.
   */
  normalizeFragment?(fragment: string): string;
}

const formats = new Map<string, ValueFormat>();

export function registerFormat(format: ValueFormat): void {
  formats.set(format.name.toLowerCase(), format);
}

export function getFormat(name: string): ValueFormat | undefined {
  return formats.get(name.toLowerCase());
}

export function formatNames(): string[] {
  return [...formats.values()].map((f) => f.name);
}

/**
 * An IEEE EUI of `octets` bytes in the spellings network equipment uses: colon or hyphen pairs
 * (`AA:BB:..`, `aa-bb-..`), Cisco dotted quads (`aabb.ccdd.eeff`) or bare hex. Canonical form:
 * lower-case, colon-separated pairs (what the draft's pattern describes, in one case).
 */
function euiFormat(name: string, octets: number): ValueFormat {
  const hex = octets * 2;
  const pairs = new RegExp(`^[0-9a-f]{2}(?:([:-])[0-9a-f]{2})(?:\\1[0-9a-f]{2}){${octets - 2}}$`, 'i');
  const quads = new RegExp(`^[0-9a-f]{4}(?:\\.[0-9a-f]{4}){${octets / 2 - 1}}$`, 'i');
  const bare = new RegExp(`^[0-9a-f]{${hex}}$`, 'i');
  return {
    name,
    description: `${octets}-octet EUI (e.g. ${Array.from({ length: octets }, (_, i) => (0xa0 + i).toString(16).toUpperCase()).join(':')})`,
    normalize(value: string): string | undefined {
      if (!pairs.test(value) && !quads.test(value) && !bare.test(value)) return undefined;
      const digits = value.replace(/[:.-]/g, '').toLowerCase();
      if (digits.length !== hex) return undefined;
      return digits.match(/../g)!.join(':');
    },
    normalizeFragment(fragment: string): string {
      return fragment.toLowerCase().replace(/-/g, ':');
    },
  };
}

/** MAC address (EUI-48): BLE, Wi-Fi (DPP) and Ethernet MAB device addresses. */
export const EUI48 = euiFormat('eui48', 6);
/** EUI-64: Zigbee (IEEE 802.15.4) device addresses. */
export const EUI64 = euiFormat('eui64', 8);

registerFormat(EUI48);
registerFormat(EUI64);
