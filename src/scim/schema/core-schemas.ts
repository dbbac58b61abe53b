/**
 * RFC 7643 §4 and §8.7.1 schemas: User, Enterprise User, Group. Written with the §2.2 defaults
 * left out (normalizeAttribute fills them in), so each line shows only what differs.
 */
import type { AttributeInput, SchemaInput } from './types.ts';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';

const str = (name: string, description: string, more: Partial<AttributeInput> = {}): AttributeInput => ({
  name,
  type: 'string',
  description,
  ...more,
});

/** The usual multi-valued sub-attributes (RFC 7643 §2.4) with a set of canonical types. */
function multiValued(
  name: string,
  description: string,
  types: string[],
  value: Partial<AttributeInput> = {},
): AttributeInput {
  return {
    name,
    type: 'complex',
    multiValued: true,
    description,
    subAttributes: [
      str('value', `The value of ${name}.`, value),
      str('display', 'A human-readable name, primarily used for display purposes.'),
      str('type', `A label indicating the ${name}' function.`, { canonicalValues: types }),
      { name: 'primary', type: 'boolean', description: 'Whether this is the primary value.' },
    ],
  };
}

export const userSchema: SchemaInput = {
  id: USER_SCHEMA,
  name: 'User',
  description: 'User Account',
  attributes: [
    str('userName', 'Unique identifier for the User, used to authenticate.', {
      required: true,
      uniqueness: 'server',
    }),
    {
      name: 'name',
      type: 'complex',
      description: "The components of the user's real name.",
      subAttributes: [
        str('formatted', 'The full name, formatted for display.'),
        str('familyName', 'The family name of the User.'),
        str('givenName', 'The given name of the User.'),
        str('middleName', 'The middle name(s) of the User.'),
        str('honorificPrefix', 'The honorific prefix(es) of the User.'),
        str('honorificSuffix', 'The honorific suffix(es) of the User.'),
      ],
    },
    str('displayName', 'The name of the User, suitable for display to end-users.'),
    str('nickName', 'The casual way to address the user.'),
    {
      name: 'profileUrl',
      type: 'reference',
      referenceTypes: ['external'],
      description: "A fully qualified URL pointing to a page representing the User's online profile.",
    },
    str('title', "The user's title, such as 'Vice President'."),
    str('userType', 'Used to identify the relationship between the organization and the user.'),
    str('preferredLanguage', "The User's preferred written or spoken language (RFC 7231 §5.3.5)."),
    str('locale', "The User's default location (language tag)."),
    str('timezone', "The User's time zone in IANA Time Zone database format."),
    { name: 'active', type: 'boolean', description: "The User's administrative status." },
    str('password', "The User's cleartext password; never returned.", {
      mutability: 'writeOnly',
      returned: 'never',
    }),
    multiValued('emails', 'Email addresses for the user.', ['work', 'home', 'other']),
    multiValued('phoneNumbers', 'Phone numbers for the User.', [
      'work',
      'home',
      'mobile',
      'fax',
      'pager',
      'other',
    ]),
    multiValued('ims', 'Instant messaging addresses for the User.', [
      'aim',
      'gtalk',
      'icq',
      'xmpp',
      'msn',
      'skype',
      'qq',
      'yahoo',
    ]),
    multiValued('photos', 'URLs of photos of the User.', ['photo', 'thumbnail'], {
      type: 'reference',
      referenceTypes: ['external'],
    }),
    {
      name: 'addresses',
      type: 'complex',
      multiValued: true,
      description: 'A physical mailing address for this User.',
      subAttributes: [
        str('formatted', 'The full mailing address, formatted for display.'),
        str('streetAddress', 'The full street address component.'),
        str('locality', 'The city or locality component.'),
        str('region', 'The state or region component.'),
        str('postalCode', 'The zip code or postal code component.'),
        str('country', 'The country name component (ISO 3166-1 alpha-2).'),
        str('type', "A label indicating the address' function.", {
          canonicalValues: ['work', 'home', 'other'],
        }),
        { name: 'primary', type: 'boolean', description: 'Whether this is the primary address.' },
      ],
    },
    {
      name: 'groups',
      type: 'complex',
      multiValued: true,
      mutability: 'readOnly',
      description: 'A list of groups to which the user belongs; changed through Group.members.',
      subAttributes: [
        str('value', 'The identifier of the Group.', { mutability: 'readOnly' }),
        {
          name: '$ref',
          type: 'reference',
          referenceTypes: ['Group'],
          mutability: 'readOnly',
          description: 'The URI of the Group.',
        },
        str('display', 'A human-readable name, primarily used for display purposes.', {
          mutability: 'readOnly',
        }),
        str('type', "A label indicating the membership's function: direct or indirect.", {
          mutability: 'readOnly',
          canonicalValues: ['direct', 'indirect'],
        }),
      ],
    },
    multiValued('entitlements', 'A list of entitlements for the User.', []),
    multiValued('roles', 'A list of roles for the User.', []),
    {
      name: 'x509Certificates',
      type: 'complex',
      multiValued: true,
      description: 'A list of certificates issued to the User.',
      subAttributes: [
        { name: 'value', type: 'binary', description: 'The value of an X.509 certificate (DER, base64).' },
        str('display', 'A human-readable name, primarily used for display purposes.'),
        str('type', "A label indicating the attribute's function."),
        { name: 'primary', type: 'boolean', description: 'Whether this is the primary certificate.' },
      ],
    },
  ],
};
// entitlements and roles have no canonical types in RFC 7643; drop the empty list.
for (const a of userSchema.attributes) {
  const t = a.subAttributes?.find((s) => s.name === 'type');
  if (t && t.canonicalValues?.length === 0) delete t.canonicalValues;
}

export const enterpriseUserSchema: SchemaInput = {
  id: ENTERPRISE_USER_SCHEMA,
  name: 'EnterpriseUser',
  description: 'Enterprise User',
  attributes: [
    str('employeeNumber', 'Numeric or alphanumeric identifier assigned to a person by the organization.'),
    str('costCenter', 'Identifies the name of a cost center.'),
    str('organization', 'Identifies the name of an organization.'),
    str('division', 'Identifies the name of a division.'),
    str('department', 'Identifies the name of a department.'),
    {
      name: 'manager',
      type: 'complex',
      description: "The User's manager.",
      subAttributes: [
        str('value', 'The id of the SCIM resource representing the manager.'),
        {
          name: '$ref',
          type: 'reference',
          referenceTypes: ['User'],
          description: 'The URI of the SCIM resource representing the manager.',
        },
        str('displayName', 'The displayName of the manager.', { mutability: 'readOnly' }),
      ],
    },
  ],
};

export const groupSchema: SchemaInput = {
  id: GROUP_SCHEMA,
  name: 'Group',
  description: 'Group',
  attributes: [
    // RFC 7643 §4.2 prose says REQUIRED; the §8.7.1 listing says false. We follow the prose.
    str('displayName', 'A human-readable name for the Group.', { required: true }),
    {
      name: 'members',
      type: 'complex',
      multiValued: true,
      description: 'A list of members of the Group.',
      subAttributes: [
        str('value', 'Identifier of the member of this Group.', { mutability: 'immutable' }),
        {
          name: '$ref',
          type: 'reference',
          referenceTypes: ['User', 'Group'],
          mutability: 'immutable',
          description: 'The URI of the member resource.',
        },
        str('type', 'The type of the member resource.', {
          mutability: 'immutable',
          canonicalValues: ['User', 'Group'],
        }),
        str('display', 'A human-readable name for the member.', { mutability: 'immutable' }),
      ],
    },
  ],
};

/** Common attributes (RFC 7643 §3.1): present on every resource, not part of any schema listing. */
export const commonAttributes: AttributeInput[] = [
  str('id', 'Unique identifier for the SCIM resource, issued by the service provider.', {
    caseExact: true,
    mutability: 'readOnly',
    returned: 'always',
    uniqueness: 'server',
  }),
  str('externalId', 'An identifier for the resource as defined by the provisioning client.', {
    caseExact: true,
  }),
  {
    name: 'meta',
    type: 'complex',
    mutability: 'readOnly',
    description: 'Resource metadata.',
    subAttributes: [
      str('resourceType', 'The name of the resource type of the resource.', {
        caseExact: true,
        mutability: 'readOnly',
      }),
      {
        name: 'created',
        type: 'dateTime',
        mutability: 'readOnly',
        description: 'When the resource was added.',
      },
      {
        name: 'lastModified',
        type: 'dateTime',
        mutability: 'readOnly',
        description: 'When the resource was last updated.',
      },
      {
        name: 'location',
        type: 'reference',
        referenceTypes: ['uri'],
        caseExact: true,
        mutability: 'readOnly',
        description: 'The URI of the resource.',
      },
      str('version', 'The version (ETag) of the resource.', { caseExact: true, mutability: 'readOnly' }),
    ],
  },
];
