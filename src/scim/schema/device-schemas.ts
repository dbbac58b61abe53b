/**
 * The IETF SCIM device model (draft-ietf-scim-device-model; newest text -17/-18): the Device and
 * EndpointApp resource types and the Device extensions, as schema data only. Everything the
 * draft needs beyond RFC 7643 is a generic mechanism of the schema layer (formats, patterns,
 * strictCanonical, sensitive, schema aliases, URN-named attributes); docs/schemas.md has the
 * decisions where the draft's texts disagree.
 */
import { GROUP_SCHEMA } from './core-schemas.ts';
import type { SchemaRegistry } from './registry.ts';
import type { AttributeInput, SchemaInput } from './types.ts';

export const DEVICE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Device';
export const ENDPOINT_APP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:EndpointApp';
export const BLE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:ble:2.0:Device';
export const DPP_SCHEMA = 'urn:ietf:params:scim:schemas:extension:dpp:2.0:Device';
export const ETHERNET_MAB_SCHEMA = 'urn:ietf:params:scim:schemas:extension:ethernet-mab:2.0:Device';
/** The prose and IANA spelling (canonical); the draft's JSON schema and example say `:2.0:Devices`. */
export const FDO_SCHEMA = 'urn:ietf:params:scim:schemas:extension:fido-device-onboard:2.0:Device';
export const ZIGBEE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:zigbee:2.0:Device';
export const ENDPOINT_APPS_EXT_SCHEMA = 'urn:ietf:params:scim:schemas:extension:endpointAppsExt:2.0:Device';
export const PAIRING_NULL_SCHEMA = 'urn:ietf:params:scim:schemas:extension:pairingNull:2.0:Device';
export const PAIRING_JUST_WORKS_SCHEMA = 'urn:ietf:params:scim:schemas:extension:pairingJustWorks:2.0:Device';
export const PAIRING_PASS_KEY_SCHEMA = 'urn:ietf:params:scim:schemas:extension:pairingPassKey:2.0:Device';
export const PAIRING_OOB_SCHEMA = 'urn:ietf:params:scim:schemas:extension:pairingOOB:2.0:Device';

/** Other spellings the draft uses, accepted on input (the FDO example even spells the core URN so). */
export const DEVICE_SCHEMA_ALIASES: Record<string, string> = {
  'urn:ietf:params:scim:schemas:extension:fido-device-onboard:2.0:Devices': FDO_SCHEMA,
  'urn:ietf:params:scim:schemas:core:2.0:Devices': DEVICE_SCHEMA,
};

export const PAIRING_METHOD_SCHEMAS = [
  PAIRING_NULL_SCHEMA,
  PAIRING_JUST_WORKS_SCHEMA,
  PAIRING_PASS_KEY_SCHEMA,
  PAIRING_OOB_SCHEMA,
];

/** MAC-48 as the draft's pattern writes it (our `eui48` format stores exactly this, lower-case). */
const MAC48_PATTERN = '^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$';
const EUI64_PATTERN = '^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){7}$';

const str = (name: string, description: string, more: Partial<AttributeInput> = {}): AttributeInput => ({
  name,
  type: 'string',
  description,
  ...more,
});

/** Read-only membership derived from Group.members, shaped as User.groups (RFC 7643 §4.1.2). */
const groupsAttribute: AttributeInput = {
  name: 'groups',
  type: 'complex',
  multiValued: true,
  mutability: 'readOnly',
  description: 'Groups the resource is a member of; changed through Group.members.',
  subAttributes: [
    str('value', 'The id of the Group.', { mutability: 'readOnly' }),
    {
      name: '$ref',
      type: 'reference',
      referenceTypes: ['Group'],
      mutability: 'readOnly',
      description: 'The URI of the Group.',
    },
    str('display', 'The displayName of the Group.', { mutability: 'readOnly' }),
    str('type', 'direct or indirect membership.', {
      mutability: 'readOnly',
      canonicalValues: ['direct', 'indirect'],
    }),
  ],
};

export const deviceSchema: SchemaInput = {
  id: DEVICE_SCHEMA,
  name: 'Device',
  description: 'Device',
  attributes: [
    // Found by name prefix (type-ahead, asset-tag ranges): `displayName sw` is index-served.
    str('displayName', 'A human-readable name for the device.', { indexed: 'prefix' }),
    {
      name: 'active',
      type: 'boolean',
      required: true,
      description: 'Whether the device may be admitted to the network.',
    },
    {
      name: 'mudUrl',
      type: 'reference',
      referenceTypes: ['uri'],
      caseExact: true,
      description: 'The Manufacturer Usage Description (RFC 8520) URL of the device.',
    },
    groupsAttribute,
  ],
};

export const endpointAppSchema: SchemaInput = {
  id: ENDPOINT_APP_SCHEMA,
  name: 'EndpointApp',
  description:
    'An application that controls devices or receives their telemetry through the enterprise gateway.',
  attributes: [
    // The draft says required and readOnly: a client must set it once, so immutable.
    str('applicationType', 'deviceControl or telemetry.', {
      required: true,
      mutability: 'immutable',
      canonicalValues: ['deviceControl', 'telemetry'],
      strictCanonical: true,
    }),
    str('applicationName', 'A human-readable name for the application.', { required: true }),
    {
      name: 'certificateInfo',
      type: 'complex',
      description: 'How the application authenticates to the enterprise endpoints with a certificate.',
      subAttributes: [
        str('rootCA', 'Base64 (DER) trust anchor of the application certificate.', { caseExact: true }),
        str('subjectName', 'The subject name (DNS name) of the application certificate.', {
          required: true,
          caseExact: true,
        }),
      ],
    },
    // Server-generated (up to 500 characters) when no certificateInfo is given.
    str('clientToken', 'A token the application presents to the enterprise endpoints.', {
      caseExact: true,
      mutability: 'readOnly',
      sensitive: true,
    }),
    groupsAttribute,
  ],
};

/** A BLE pairing method: a schema of its own, embedded in the BLE extension under its URN. */
export const pairingNullSchema: SchemaInput = {
  id: PAIRING_NULL_SCHEMA,
  name: 'nullPairing',
  description: 'BLE pairing without a key.',
  attributes: [],
};

export const pairingJustWorksSchema: SchemaInput = {
  id: PAIRING_JUST_WORKS_SCHEMA,
  name: 'pairingJustWorks',
  description: 'BLE "just works" pairing.',
  attributes: [
    // The draft: required, yet its value is null ("just works" has no key), and null is
    // unassigned in SCIM; so not required. The method itself is recorded in pairingMethods.
    {
      name: 'key',
      type: 'integer',
      mutability: 'immutable',
      sensitive: true,
      description: 'Always null: just-works pairing has no key.',
    },
  ],
};

export const pairingPassKeySchema: SchemaInput = {
  id: PAIRING_PASS_KEY_SCHEMA,
  name: 'pairingPassKey',
  description: 'BLE pass key pairing.',
  attributes: [
    {
      name: 'key',
      type: 'integer',
      required: true,
      // Six decimal digits; as a JSON integer a leading zero is lost (012345 arrives as 12345), so
      // the pattern allows up to six digits: 0..999999.
      pattern: '^[0-9]{1,6}$',
      sensitive: true,
      description: 'The six-digit pass key.',
    },
  ],
};

export const pairingOobSchema: SchemaInput = {
  id: PAIRING_OOB_SCHEMA,
  name: 'pairingOOB',
  description: 'BLE out-of-band pairing.',
  attributes: [
    str('key', 'The key retrieved out of band.', { required: true, caseExact: true, sensitive: true }),
    {
      name: 'randomNumber',
      type: 'integer',
      required: true,
      sensitive: true,
      description: 'The random number of the OOB exchange.',
    },
    {
      name: 'confirmationNumber',
      type: 'integer',
      sensitive: true,
      description: 'The confirmation number of the OOB exchange, when one is used.',
    },
  ],
};

const pairingSchemas = [pairingNullSchema, pairingJustWorksSchema, pairingPassKeySchema, pairingOobSchema];

/** A pairing method inside the BLE extension object: a complex attribute named by the method's URN. */
function embedded(schema: SchemaInput): AttributeInput {
  return {
    name: schema.id,
    type: 'complex',
    description: `${schema.description ?? schema.name} (schema ${schema.id}).`,
    subAttributes: schema.attributes,
  };
}

export const bleSchema: SchemaInput = {
  id: BLE_SCHEMA,
  name: 'bleExtension',
  description: 'Bluetooth Low Energy device extension.',
  attributes: [
    str('versionSupport', 'BLE versions the device supports, e.g. "4.2", "5.3".', {
      multiValued: true,
      required: true,
    }),
    str('deviceMacAddress', 'The public or random MAC address of the device.', {
      required: true,
      format: 'eui48',
      pattern: MAC48_PATTERN,
      uniqueness: 'server',
    }),
    // Required in the prose table, optional (default false) in the JSON: optional.
    { name: 'isRandom', type: 'boolean', description: 'Whether deviceMacAddress is a random address.' },
    str('separateBroadcastAddress', 'Other addresses the device broadcasts from (not with an irk).', {
      multiValued: true,
      format: 'eui48',
      pattern: MAC48_PATTERN,
    }),
    // A secret: writeOnly and never returned (the prose table), whatever the JSON says.
    str('irk', 'Identity resolving key of a device using random addresses.', {
      mutability: 'writeOnly',
      returned: 'never',
      uniqueness: 'server',
      sensitive: true,
    }),
    // The JSON writes the type "bool".
    { name: 'mobility', type: 'boolean', description: 'Whether the device moves between gateways.' },
    str('pairingMethods', 'The URNs of the pairing methods the device supports.', {
      multiValued: true,
      required: true,
      // URNs compare case-insensitively (RFC 8141, and SCIM schema URNs); stored as canonical.
      canonicalValues: PAIRING_METHOD_SCHEMAS,
      strictCanonical: true,
    }),
    ...pairingSchemas.map(embedded),
  ],
  // The draft's prose: an irk only for a device using random addresses, and no separate
  // broadcast addresses when an irk resolves them.
  rules: [
    {
      if: { present: 'irk' },
      then: { equals: 'isRandom', value: true },
      detail: 'irk (identity resolving key) is allowed only when isRandom is true',
    },
    {
      if: { present: 'irk' },
      then: { not: { present: 'separateBroadcastAddress' } },
      detail: 'separateBroadcastAddress must not be given together with an irk',
    },
  ],
};

export const dppSchema: SchemaInput = {
  id: DPP_SCHEMA,
  name: 'dppExtension',
  description: 'Wi-Fi Easy Connect (Device Provisioning Protocol) device extension.',
  attributes: [
    { name: 'dppVersion', type: 'integer', required: true, description: 'The DPP version.' },
    str('bootstrappingMethod', 'How the bootstrapping key is obtained, e.g. QR, NFC.', {
      multiValued: true,
      canonicalValues: ['QR', 'NFC'],
    }),
    str('bootstrapKey', "The device's public bootstrapping key (base64 DER).", {
      required: true,
      caseExact: true,
      sensitive: true,
    }),
    str('deviceMacAddress', 'The MAC address of the device.', {
      format: 'eui48',
      pattern: MAC48_PATTERN,
      uniqueness: 'server',
    }),
    str('classChannel', 'Global operating class / channel pairs, e.g. "81/1".', { multiValued: true }),
    str('serialNumber', 'The serial number of the device.'),
  ],
};

export const ethernetMabSchema: SchemaInput = {
  id: ETHERNET_MAB_SCHEMA,
  name: 'ethernetMabExtension',
  description: 'Ethernet MAC authentication bypass device extension.',
  attributes: [
    str('deviceMacAddress', 'The MAC address of the device.', {
      required: true,
      format: 'eui48',
      pattern: MAC48_PATTERN,
      uniqueness: 'server',
    }),
  ],
};

export const fdoSchema: SchemaInput = {
  id: FDO_SCHEMA,
  name: 'FDOExtension',
  description: 'FIDO Device Onboard device extension.',
  attributes: [
    // "Manufacturer"-unique in the draft, but not server-unique here: the store enforces uniqueness
    // with a btree index on the value, and PostgreSQL refuses index entries over 2704 bytes, which
    // real vouchers (with their certificate chains) exceed. Needs a hash-based index first.
    str('fdoVoucher', 'The FDO ownership voucher.', { required: true, sensitive: true }),
  ],
};

export const zigbeeSchema: SchemaInput = {
  id: ZIGBEE_SCHEMA,
  name: 'zigbeeExtension',
  description: 'Zigbee device extension.',
  attributes: [
    str('versionSupport', 'Zigbee versions the device supports, e.g. "3.0".', {
      multiValued: true,
      required: true,
    }),
    // The draft gives no uniqueness here; an EUI-64 is as manufacturer-unique as a MAC.
    str('deviceEui64Address', 'The 64-bit EUI of the device.', {
      required: true,
      format: 'eui64',
      pattern: EUI64_PATTERN,
      // Not unique in the draft, but the way Zigbee devices are found: keep a lookup index.
      indexed: true,
    }),
  ],
};

export const endpointAppsExtSchema: SchemaInput = {
  id: ENDPOINT_APPS_EXT_SCHEMA,
  name: 'endpointAppsExt',
  description: 'The endpoint applications that may reach a non-IP device through the enterprise gateway.',
  attributes: [
    {
      name: 'applications',
      type: 'complex',
      multiValued: true,
      required: true,
      description: 'EndpointApp resources that may reach the device.',
      subAttributes: [
        str('value', 'The id of the EndpointApp.', { required: true }),
        {
          name: '$ref',
          type: 'reference',
          referenceTypes: ['EndpointApp'],
          caseExact: true,
          mutability: 'readOnly',
          description: 'The URI of the EndpointApp.',
        },
      ],
    },
    // Server-set: where the applications connect (the enterprise gateway).
    {
      name: 'deviceControlEnterpriseEndpoint',
      type: 'reference',
      referenceTypes: ['uri'],
      required: true,
      caseExact: true,
      mutability: 'readOnly',
      // The draft says "Enterprise" uniqueness, but every device behind one gateway shares these
      // URLs: they are not unique, and /Schemas must not claim they are.
      uniqueness: 'none',
      description: 'The URL device control applications connect to.',
    },
    {
      name: 'telemetryEnterpriseEndpoint',
      type: 'reference',
      referenceTypes: ['uri'],
      caseExact: true,
      mutability: 'readOnly',
      uniqueness: 'none',
      description: 'The URL telemetry applications connect to.',
    },
  ],
};

export const DEVICE_EXTENSIONS = [
  BLE_SCHEMA,
  DPP_SCHEMA,
  ETHERNET_MAB_SCHEMA,
  FDO_SCHEMA,
  ZIGBEE_SCHEMA,
  ENDPOINT_APPS_EXT_SCHEMA,
];

/**
 * Adds the device model to a registry holding the core schemas: the schemas (pairing methods
 * included, as schemas of their own), the URN aliases, the Device (`/Devices`, a possible Group
 * member) and EndpointApp (`/EndpointApps`) resource types, and "Device" as a Group member type.
 */
export function registerDeviceModel(registry: SchemaRegistry): void {
  for (const s of [
    deviceSchema,
    endpointAppSchema,
    ...pairingSchemas,
    bleSchema,
    dppSchema,
    ethernetMabSchema,
    fdoSchema,
    zigbeeSchema,
    endpointAppsExtSchema,
  ]) {
    registry.addSchema(s);
  }
  for (const [alias, canonical] of Object.entries(DEVICE_SCHEMA_ALIASES)) {
    registry.addSchemaAlias(alias, canonical);
  }
  registry.addResourceType({
    id: 'Device',
    name: 'Device',
    endpoint: '/Devices',
    description: 'Device',
    schema: DEVICE_SCHEMA,
    schemaExtensions: DEVICE_EXTENSIONS.map((schema) => ({ schema, required: false })),
    groupsAttribute: 'groups',
  });
  registry.addResourceType({
    id: 'EndpointApp',
    name: 'EndpointApp',
    endpoint: '/EndpointApps',
    description: 'Endpoint application',
    schema: ENDPOINT_APP_SCHEMA,
    schemaExtensions: [],
    // The draft gives EndpointApp a derived `groups`: endpoint apps can be Group members too.
    groupsAttribute: 'groups',
  });
  if (registry.schema(GROUP_SCHEMA)) {
    registry.addCanonicalValues(GROUP_SCHEMA, 'members.type', ['Device', 'EndpointApp']);
    registry.addReferenceTypes(GROUP_SCHEMA, 'members.$ref', ['Device', 'EndpointApp']);
  }
}
