import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ScimError, type ScimType } from '../../src/scim/errors.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import {
  createCoreRegistry,
  findSubAttribute,
  SchemaRegistry,
  type ResourceTypeConfig,
} from '../../src/scim/schema/registry.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import {
  canonicalizeElement,
  canonicalizeValue,
  checkCanonical,
  normalizePrimary,
  prepareWrite,
} from '../../src/scim/resource/validate.ts';
import { isBase64, isDateTime, valuesEqual } from '../../src/scim/resource/values.ts';

const registry = createCoreRegistry();
const USER = registry.resourceType('User')!;
const GROUP = registry.resourceType('Group')!;
const userAttr = (name: string) => registry.schema(USER_SCHEMA)!.attributes.find((a) => a.name === name)!;

const CERT = 'MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw';

/** RFC 7643 §8.1 */
const minimalUser = (): JsonObject => ({
  schemas: [USER_SCHEMA],
  id: '2819c223-7f76-453a-919d-413861904646',
  userName: 'bjensen@example.com',
  meta: {
    resourceType: 'User',
    created: '2010-01-23T04:56:22Z',
    lastModified: '2011-05-13T04:42:34Z',
    version: 'W/"3694e05e9dff590"',
    location: 'https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646',
  },
});

/** RFC 7643 §8.2 (certificate shortened), without the parts the server owns. */
const fullUserCore = (): JsonObject => ({
  externalId: '701984',
  userName: 'bjensen@example.com',
  name: {
    formatted: 'Ms. Barbara J Jensen, III',
    familyName: 'Jensen',
    givenName: 'Barbara',
    middleName: 'Jane',
    honorificPrefix: 'Ms.',
    honorificSuffix: 'III',
  },
  displayName: 'Babs Jensen',
  nickName: 'Babs',
  profileUrl: 'https://login.example.com/bjensen',
  emails: [
    { value: 'bjensen@example.com', type: 'work', primary: true },
    { value: 'babs@jensen.org', type: 'home' },
  ],
  addresses: [
    {
      type: 'work',
      streetAddress: '100 Universal City Plaza',
      locality: 'Hollywood',
      region: 'CA',
      postalCode: '91608',
      country: 'USA',
      formatted: '100 Universal City Plaza\nHollywood, CA 91608 USA',
      primary: true,
    },
    {
      type: 'home',
      streetAddress: '456 Hollywood Blvd',
      locality: 'Hollywood',
      region: 'CA',
      postalCode: '91608',
      country: 'USA',
      formatted: '456 Hollywood Blvd\nHollywood, CA 91608 USA',
    },
  ],
  phoneNumbers: [
    { value: '555-555-5555', type: 'work' },
    { value: '555-555-4444', type: 'mobile' },
  ],
  ims: [{ value: 'someaimhandle', type: 'aim' }],
  photos: [
    { value: 'https://photos.example.com/profilephoto/72930000000Ccne/F', type: 'photo' },
    { value: 'https://photos.example.com/profilephoto/72930000000Ccne/T', type: 'thumbnail' },
  ],
  userType: 'Employee',
  title: 'Tour Guide',
  preferredLanguage: 'en-US',
  locale: 'en-US',
  timezone: 'America/Los_Angeles',
  active: true,
  password: 't1meMa$heen',
  x509Certificates: [{ value: CERT }],
});

const rfcGroups = [
  {
    value: 'e9e30dba-f08f-4109-8486-d5c6a331660a',
    $ref: 'https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a',
    display: 'Tour Guides',
  },
  {
    value: 'fc348aa8-3835-40eb-a20b-c726e15c55b5',
    $ref: 'https://example.com/v2/Groups/fc348aa8-3835-40eb-a20b-c726e15c55b5',
    display: 'Employees',
  },
];

const enterprise = (): JsonObject => ({
  employeeNumber: '701984',
  costCenter: '4130',
  organization: 'Universal Studios',
  division: 'Theme Park',
  department: 'Tour Operations',
  manager: {
    value: '26118915-6090-4610-87e4-49d8ca9f808d',
    $ref: '../Users/26118915-6090-4610-87e4-49d8ca9f808d',
    displayName: 'John Smith',
  },
});

/** RFC 7643 §8.3 as a client would POST it (id, meta and groups included to be ignored). */
const enterpriseUserBody = (): JsonObject => ({
  schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
  id: '2819c223-7f76-453a-919d-413861904646',
  ...fullUserCore(),
  groups: rfcGroups,
  [ENTERPRISE_USER_SCHEMA]: enterprise(),
  meta: { resourceType: 'User', created: '2010-01-23T04:56:22Z' },
});

/** RFC 7643 §8.4 */
const groupBody = (): JsonObject => ({
  schemas: [GROUP_SCHEMA],
  id: 'e9e30dba-f08f-4109-8486-d5c6a331660a',
  displayName: 'Tour Guides',
  members: [
    {
      value: '2819c223-7f76-453a-919d-413861904646',
      $ref: 'https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646',
      display: 'Babs Jensen',
    },
    {
      value: '902c246b-6245-4190-8e05-00816be7344a',
      $ref: 'https://example.com/v2/Users/902c246b-6245-4190-8e05-00816be7344a',
      display: 'Mandy Pepperidge',
    },
  ],
  meta: { resourceType: 'Group' },
});

function rejects(fn: () => unknown, status: number, scimType: ScimType, detail?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ScimError, `expected ScimError, got ${String(e)}`);
    assert.equal(e.status, status);
    assert.equal(e.scimType, scimType, e.detail);
    if (detail) assert.match(e.detail, detail);
    return true;
  });
}

const create = (body: unknown, rt: ResourceTypeConfig = USER, lenientBooleans?: boolean) =>
  prepareWrite(registry, rt, body, { mode: 'create', lenientBooleans });
const user = (more: JsonObject): JsonObject => ({ schemas: [USER_SCHEMA], userName: 'bjensen', ...more });

describe('prepareWrite: RFC 7643 §8 examples', () => {
  test('minimal user (§8.1): id and meta dropped', () => {
    assert.deepStrictEqual(create(minimalUser()), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen@example.com',
    });
  });

  test('full enterprise user (§8.3): readOnly groups and manager.displayName dropped, rest kept', () => {
    const { displayName: _dn, ...manager } = enterprise().manager as JsonObject;
    assert.deepStrictEqual(create(enterpriseUserBody()), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      ...fullUserCore(),
      [ENTERPRISE_USER_SCHEMA]: { ...enterprise(), manager },
    });
  });

  test('group (§8.4)', () => {
    const { id: _id, meta: _meta, ...expected } = groupBody();
    assert.deepStrictEqual(create(groupBody(), GROUP), expected);
  });

  test('output uses schema order for sub-attributes and keeps externalId case', () => {
    const out = create(user({ externalId: 'AbC', name: { givenName: 'B', familyName: 'J' } }));
    assert.deepStrictEqual(Object.keys(out.name as JsonObject), ['familyName', 'givenName']);
    assert.equal(out.externalId, 'AbC');
  });
});

describe('prepareWrite: body and schemas', () => {
  test('non-object bodies → 400 invalidSyntax', () => {
    for (const body of [null, [], 'x', 3, true, undefined]) rejects(() => create(body), 400, 'invalidSyntax');
  });

  test('schemas missing, not an array, or with non-strings → 400 invalidSyntax', () => {
    rejects(() => create({ userName: 'a' }), 400, 'invalidSyntax', /schemas/);
    rejects(() => create({ schemas: USER_SCHEMA, userName: 'a' }), 400, 'invalidSyntax');
    rejects(() => create({ schemas: [USER_SCHEMA, 3], userName: 'a' }), 400, 'invalidSyntax');
    rejects(() => create({ schemas: null, userName: 'a' }), 400, 'invalidSyntax');
  });

  test('schemas without the core schema → 400 invalidSyntax', () => {
    rejects(
      () => create({ schemas: [ENTERPRISE_USER_SCHEMA], userName: 'a' }),
      400,
      'invalidSyntax',
      /must include/,
    );
  });

  test('unknown schema URN, or one of another resource type → 400 invalidSyntax', () => {
    rejects(
      () => create(user({ schemas: [USER_SCHEMA, 'urn:example:nope'] })),
      400,
      'invalidSyntax',
      /Unknown schema "urn:example:nope"/,
    );
    rejects(
      () => create(user({ schemas: [USER_SCHEMA, GROUP_SCHEMA] })),
      400,
      'invalidSyntax',
      /not allowed/,
    );
    rejects(
      () => create({ schemas: [GROUP_SCHEMA, USER_SCHEMA], displayName: 'g' }, GROUP),
      400,
      'invalidSyntax',
    );
  });

  test('schema URNs match case-insensitively; output uses canonical spelling', () => {
    const out = create({
      schemas: [USER_SCHEMA.toUpperCase(), ENTERPRISE_USER_SCHEMA.toLowerCase()],
      userName: 'a',
      [ENTERPRISE_USER_SCHEMA.toUpperCase()]: { EMPLOYEENUMBER: '1' },
    });
    assert.deepStrictEqual(out, {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      userName: 'a',
      [ENTERPRISE_USER_SCHEMA]: { employeeNumber: '1' },
    });
  });

  test('extension data adds its URN even when schemas forgot it', () => {
    assert.deepStrictEqual(create(user({ [ENTERPRISE_USER_SCHEMA]: { department: 'Ops' } })), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      userName: 'bjensen',
      [ENTERPRISE_USER_SCHEMA]: { department: 'Ops' },
    });
  });

  test('an extension listed without data is not in the output schemas', () => {
    assert.deepStrictEqual(create(user({ schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA] })), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen',
    });
    assert.deepStrictEqual(
      create(user({ [ENTERPRISE_USER_SCHEMA]: { department: null, manager: { displayName: 'x' } } })),
      { schemas: [USER_SCHEMA], userName: 'bjensen' },
    );
    assert.deepStrictEqual(create(user({ [ENTERPRISE_USER_SCHEMA]: null })), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen',
    });
  });

  test('extension value that is not an object → 400 invalidValue', () => {
    rejects(() => create(user({ [ENTERPRISE_USER_SCHEMA]: 'x' })), 400, 'invalidValue', /enterprise/);
  });

  test('attribute of another resource type under an extension key → 400 invalidSyntax', () => {
    rejects(
      () => create(user({ [ENTERPRISE_USER_SCHEMA]: { userName: 'x' } })),
      400,
      'invalidSyntax',
      /Unknown attribute "urn:ietf:params:scim:schemas:extension:enterprise:2\.0:User:userName"/,
    );
  });

  test('schema URN of another type used as an attribute key → 400 invalidSyntax', () => {
    rejects(
      () => create(user({ [GROUP_SCHEMA]: { displayName: 'x' } })),
      400,
      'invalidSyntax',
      /not allowed/,
    );
  });
});

describe('prepareWrite: attribute names', () => {
  test('names are case-insensitive and canonicalised, sub-attributes too', () => {
    assert.deepStrictEqual(
      create({
        SCHEMAS: [USER_SCHEMA],
        USERNAME: 'bjensen',
        Name: { GIVENNAME: 'Barbara' },
        Emails: [{ VALUE: 'a@b.c', Primary: true }],
        EXTERNALID: 'x',
      }),
      {
        schemas: [USER_SCHEMA],
        externalId: 'x',
        userName: 'bjensen',
        name: { givenName: 'Barbara' },
        emails: [{ value: 'a@b.c', primary: true }],
      },
    );
  });

  test('unknown attribute → 400 invalidSyntax naming it', () => {
    rejects(() => create(user({ shoeSize: 42 })), 400, 'invalidSyntax', /"shoeSize"/);
    rejects(() => create(user({ name: { nickname: 'x' } })), 400, 'invalidSyntax', /"name\.nickname"/);
    rejects(
      () => create(user({ emails: [{ value: 'a@b.c', label: 'x' }] })),
      400,
      'invalidSyntax',
      /"emails\.label"/,
    );
  });

  test('keys differing only in case → 400 invalidSyntax', () => {
    rejects(() => create(user({ UserName: 'x' })), 400, 'invalidSyntax', /more than once/);
    rejects(() => create(user({ name: { givenName: 'a', givenname: 'b' } })), 400, 'invalidSyntax');
    rejects(
      () => create(user({ [ENTERPRISE_USER_SCHEMA]: { department: 'a', Department: 'b' } })),
      400,
      'invalidSyntax',
    );
    rejects(
      () =>
        create(
          user({ [ENTERPRISE_USER_SCHEMA]: { department: 'a' }, [ENTERPRISE_USER_SCHEMA.toUpperCase()]: {} }),
        ),
      400,
      'invalidSyntax',
    );
  });
});

describe('prepareWrite: common and readOnly attributes', () => {
  test('id and meta are ignored whatever their shape', () => {
    assert.deepStrictEqual(create(user({ id: 12, meta: 'x' })), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen',
    });
  });

  test('externalId must be a string', () => {
    rejects(() => create(user({ externalId: 5 })), 400, 'invalidValue', /"externalId": expected string/);
  });

  test('readOnly attributes are dropped without validation (groups)', () => {
    assert.deepStrictEqual(create(user({ groups: 'garbage' })), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen',
    });
    assert.deepStrictEqual(create(user({ groups: rfcGroups })), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen',
    });
  });

  test('readOnly sub-attributes are dropped (manager.displayName)', () => {
    assert.deepStrictEqual(
      create(user({ [ENTERPRISE_USER_SCHEMA]: { manager: { value: 'm', displayName: 5 } } })),
      {
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        userName: 'bjensen',
        [ENTERPRISE_USER_SCHEMA]: { manager: { value: 'm' } },
      },
    );
  });

  test('writeOnly password is accepted and kept', () => {
    assert.deepStrictEqual(create(user({ password: 's3cret' })), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen',
      password: 's3cret',
    });
  });
});

describe('prepareWrite: types', () => {
  test('string attributes reject other JSON types with the path and expected type', () => {
    rejects(
      () => create(user({ displayName: 5 })),
      400,
      'invalidValue',
      /^Attribute "displayName": expected string, got number 5$/,
    );
    rejects(
      () => create(user({ name: { givenName: true } })),
      400,
      'invalidValue',
      /"name\.givenName": expected string/,
    );
    rejects(
      () => create(user({ userName: {} })),
      400,
      'invalidValue',
      /"userName": expected string, got object/,
    );
  });

  test('empty string is a value', () => {
    assert.deepStrictEqual(create(user({ nickName: '' })), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen',
      nickName: '',
    });
  });

  test('boolean must be a JSON boolean unless lenientBooleans', () => {
    rejects(
      () => create(user({ active: 'true' })),
      400,
      'invalidValue',
      /"active": expected boolean, got string "true"/,
    );
    rejects(() => create(user({ active: 1 })), 400, 'invalidValue');
    assert.equal(create(user({ active: 'True' }), USER, true).active, true);
    assert.equal(create(user({ active: 'FALSE' }), USER, true).active, false);
    assert.deepStrictEqual(
      create(user({ emails: [{ value: 'a@b.c', primary: 'True' }] }), USER, true).emails,
      [{ value: 'a@b.c', primary: true }],
    );
    rejects(() => create(user({ active: 'yes' }), USER, true), 400, 'invalidValue', /expected boolean/);
  });

  test('reference must be a non-empty string', () => {
    rejects(() => create(user({ profileUrl: '' })), 400, 'invalidValue', /"profileUrl": expected reference/);
    rejects(() => create(user({ profileUrl: 3 })), 400, 'invalidValue');
    assert.equal(create(user({ profileUrl: 'https://x' })).profileUrl, 'https://x');
  });

  test('binary must be base64', () => {
    rejects(
      () => create(user({ x509Certificates: [{ value: 'not base64!' }] })),
      400,
      'invalidValue',
      /"x509Certificates\.value": expected binary/,
    );
    rejects(() => create(user({ x509Certificates: [{ value: 'abc' }] })), 400, 'invalidValue');
  });

  test('complex must be an object', () => {
    rejects(() => create(user({ name: 'Barbara' })), 400, 'invalidValue', /"name": expected complex/);
    rejects(() => create(user({ emails: ['a@b.c'] })), 400, 'invalidValue', /"emails": expected complex/);
  });

  test('nesting deeper than the schema → 400 invalidValue', () => {
    rejects(
      () => create(user({ name: { givenName: { x: 'y' } } })),
      400,
      'invalidValue',
      /"name\.givenName"/,
    );
    rejects(() => create(user({ emails: [{ value: ['a'] }] })), 400, 'invalidValue', /"emails\.value"/);
  });

  test('single value for multi-valued, array for single-valued → 400 invalidValue', () => {
    rejects(
      () => create(user({ emails: { value: 'a@b.c' } })),
      400,
      'invalidValue',
      /"emails" is multi-valued/,
    );
    rejects(
      () => create(user({ displayName: ['a'] })),
      400,
      'invalidValue',
      /"displayName" is single-valued/,
    );
    rejects(
      () => create(user({ name: [{ givenName: 'a' }] })),
      400,
      'invalidValue',
      /"name" is single-valued/,
    );
    rejects(() => create(user({ emails: [[{ value: 'a' }]] })), 400, 'invalidValue', /nested arrays/);
  });
});

describe('prepareWrite: unassigned values', () => {
  test('null, [] and {} remove the attribute; "" stays', () => {
    assert.deepStrictEqual(
      create(
        user({ nickName: null, emails: [], name: {}, title: '', addresses: null, x509Certificates: [{}] }),
      ),
      { schemas: [USER_SCHEMA], userName: 'bjensen', title: '' },
    );
  });

  test('null sub-attributes and empty elements are dropped inside multi-valued values', () => {
    assert.deepStrictEqual(
      create(
        user({
          emails: [{ value: 'a@b.c', type: null }, { type: null }, null, {}],
          name: { givenName: null },
        }),
      ),
      { schemas: [USER_SCHEMA], userName: 'bjensen', emails: [{ value: 'a@b.c' }] },
    );
  });

  test('elements left with only readOnly data are dropped', () => {
    assert.deepStrictEqual(create(user({ [ENTERPRISE_USER_SCHEMA]: { manager: { displayName: 'x' } } })), {
      schemas: [USER_SCHEMA],
      userName: 'bjensen',
    });
  });
});

describe('prepareWrite: required', () => {
  test('missing userName → 400 invalidValue naming it', () => {
    rejects(
      () => create({ schemas: [USER_SCHEMA] }),
      400,
      'invalidValue',
      /^Attribute "userName" is required$/,
    );
    rejects(
      () => create({ schemas: [USER_SCHEMA], userName: null }),
      400,
      'invalidValue',
      /"userName" is required/,
    );
    rejects(
      () => create({ schemas: [GROUP_SCHEMA] }, GROUP),
      400,
      'invalidValue',
      /"displayName" is required/,
    );
  });

  test('required is checked on replace too', () => {
    rejects(
      () =>
        prepareWrite(
          registry,
          USER,
          { schemas: [USER_SCHEMA] },
          { mode: 'replace', existing: minimalUser() },
        ),
      400,
      'invalidValue',
      /"userName" is required/,
    );
  });
});

describe('prepareWrite: primary and duplicates', () => {
  test('two primary values → 400 invalidValue', () => {
    rejects(
      () =>
        create(
          user({
            emails: [
              { value: 'a@b.c', primary: true },
              { value: 'd@e.f', primary: true },
            ],
          }),
        ),
      400,
      'invalidValue',
      /"emails": at most one value may have "primary": true/,
    );
  });

  test('one primary with explicit false on others is fine', () => {
    const emails = [
      { value: 'a@b.c', primary: true },
      { value: 'd@e.f', primary: false },
    ];
    assert.deepStrictEqual(create(user({ emails })).emails, emails);
  });

  test('exact duplicates are dropped, comparing caseExact=false values case-insensitively', () => {
    assert.deepStrictEqual(
      create(
        user({
          emails: [
            { value: 'bjensen@example.com', type: 'work' },
            { type: 'WORK', VALUE: 'BJensen@Example.com' },
            { value: 'bjensen@example.com', type: 'home' },
          ],
        }),
      ).emails,
      [
        { value: 'bjensen@example.com', type: 'work' },
        { value: 'bjensen@example.com', type: 'home' },
      ],
    );
  });

  test('duplicates that differ in a caseExact sub-attribute are kept (binary)', () => {
    const certs = [{ value: 'QUJD' }, { value: 'qujd' }, { value: 'QUJD' }];
    assert.deepStrictEqual(create(user({ x509Certificates: certs })).x509Certificates, [
      { value: 'QUJD' },
      { value: 'qujd' },
    ]);
  });

  test('duplicate identical primaries collapse to one and pass', () => {
    assert.deepStrictEqual(
      create(
        user({
          emails: [
            { value: 'a@b.c', primary: true },
            { value: 'a@b.c', primary: true },
          ],
        }),
      ).emails,
      [{ value: 'a@b.c', primary: true }],
    );
  });

  test('normalizePrimary removes primary from all but the winner without mutating', () => {
    const values: JsonObject[] = [
      { value: 'a', primary: true },
      { value: 'b', primary: false },
      { value: 'c', primary: true },
      { value: 'd' },
    ];
    const before = structuredClone(values);
    assert.deepStrictEqual(normalizePrimary(values, 2), [
      { value: 'a' },
      { value: 'b' },
      { value: 'c', primary: true },
      { value: 'd' },
    ]);
    assert.deepStrictEqual(values, before);
  });
});

describe('prepareWrite: canonicalValues are not enforced', () => {
  test('custom type values pass', () => {
    assert.deepStrictEqual(create(user({ emails: [{ value: 'a@b.c', type: 'Corporate' }] })).emails, [
      { value: 'a@b.c', type: 'Corporate' },
    ]);
  });

  test('checkCanonical enforces them on request', () => {
    const type = findSubAttribute(userAttr('emails'), 'type')!;
    checkCanonical(type, 'work');
    checkCanonical(type, 'WORK');
    checkCanonical(type, undefined);
    checkCanonical(userAttr('displayName'), 'anything');
    rejects(
      () => checkCanonical(type, 'Corporate', 'emails.type'),
      400,
      'invalidValue',
      /^Attribute "emails\.type": "Corporate" is not one of the canonical values "work", "home", "other"$/,
    );
    const memberType = findSubAttribute(
      registry.schema(GROUP_SCHEMA)!.attributes.find((a) => a.name === 'members')!,
      'type',
    )!;
    checkCanonical(memberType, ['User', 'group']);
    rejects(() => checkCanonical(memberType, ['User', 'Device']), 400, 'invalidValue', /"Device"/);
  });
});

describe('prepareWrite: immutable on replace', () => {
  const existingGroup = (): JsonObject => ({
    schemas: [GROUP_SCHEMA],
    id: 'g1',
    displayName: 'Tour Guides',
    members: [{ value: 'u1', type: 'User' }],
  });

  test('multi-valued members with immutable sub-attributes may be replaced as a whole', () => {
    const out = prepareWrite(
      registry,
      GROUP,
      { schemas: [GROUP_SCHEMA], displayName: 'TG', members: [{ value: 'u2', type: 'User' }] },
      { mode: 'replace', existing: existingGroup() },
    );
    assert.deepStrictEqual(out, {
      schemas: [GROUP_SCHEMA],
      displayName: 'TG',
      members: [{ value: 'u2', type: 'User' }],
    });
  });

  test('create ignores existing', () => {
    assert.deepStrictEqual(
      prepareWrite(registry, USER, user({}), { mode: 'create', existing: { userName: 'x', nickName: 'n' } }),
      { schemas: [USER_SCHEMA], userName: 'bjensen' },
    );
  });
});

describe('canonicalizeValue / canonicalizeElement', () => {
  test('canonicalizes one attribute value, undefined when unassigned', () => {
    assert.deepStrictEqual(
      canonicalizeValue(userAttr('emails'), [{ Value: 'a@b.c', TYPE: 'work' }], 'emails'),
      [{ value: 'a@b.c', type: 'work' }],
    );
    assert.equal(canonicalizeValue(userAttr('emails'), [], 'emails'), undefined);
    assert.equal(canonicalizeValue(userAttr('nickName'), null, 'nickName'), undefined);
    assert.equal(canonicalizeValue(userAttr('active'), 'true', 'active', { lenientBooleans: true }), true);
    rejects(() => canonicalizeValue(userAttr('active'), 'true', 'active'), 400, 'invalidValue');
    const family = findSubAttribute(userAttr('name'), 'familyName')!;
    assert.equal(canonicalizeValue(family, 'Jensen', 'name.familyName'), 'Jensen');
  });

  test('readOnly sub-attributes dropped unless keepReadOnly', () => {
    const manager = registry.schema(ENTERPRISE_USER_SCHEMA)!.attributes.find((a) => a.name === 'manager')!;
    assert.deepStrictEqual(canonicalizeValue(manager, { value: 'm', displayName: 'M' }, 'manager'), {
      value: 'm',
    });
    assert.deepStrictEqual(
      canonicalizeValue(manager, { value: 'm', displayName: 'M' }, 'manager', { keepReadOnly: true }),
      {
        value: 'm',
        displayName: 'M',
      },
    );
  });

  test('canonicalizeElement validates one element of a multi-valued attribute', () => {
    assert.deepStrictEqual(canonicalizeElement(userAttr('emails'), { VALUE: 'x@y.z' }, 'emails'), {
      value: 'x@y.z',
    });
    assert.equal(canonicalizeElement(userAttr('emails'), {}, 'emails'), undefined);
    rejects(() => canonicalizeElement(userAttr('emails'), [{ value: 'x' }], 'emails'), 400, 'invalidValue');
  });
});

describe('values helpers', () => {
  test('isDateTime', () => {
    for (const ok of [
      '2024-01-02T03:04:05Z',
      '2011-05-13T04:42:34Z',
      '2024-01-02T03:04:05+02:00',
      '2024-01-02T03:04:05.123Z',
      '2024-01-02T03:04:05.5-07:30',
      '2024-01-02T03:04:05',
      '2024-02-29T00:00:00Z',
      '2024-01-02T24:00:00Z',
    ]) {
      assert.equal(isDateTime(ok), true, ok);
    }
    for (const bad of [
      '2024-01-02',
      '03:04:05',
      '2024-01-02 03:04:05Z',
      '2023-02-29T00:00:00Z',
      '2024-13-01T00:00:00Z',
      '2024-01-32T00:00:00Z',
      '2024-01-02T25:00:00Z',
      '2024-01-02T24:00:01Z',
      '2024-01-02T03:60:00Z',
      '2024-01-02T03:04:05+15:00',
      '2024-01-02T03:04Z',
      'yesterday',
    ]) {
      assert.equal(isDateTime(bad), false, bad);
    }
  });

  test('isBase64', () => {
    assert.equal(isBase64(CERT), true);
    assert.equal(isBase64('QUI='), true);
    assert.equal(isBase64(''), true);
    assert.equal(isBase64('QUI'), false);
    assert.equal(isBase64('QU=I'), false);
    assert.equal(isBase64('QU I'), false);
  });

  test('valuesEqual honours caseExact and ignores multi-valued order', () => {
    assert.equal(valuesEqual(userAttr('userName'), 'BJensen', 'bjensen'), true);
    const externalId = registry.common.find((a) => a.name === 'externalId')!;
    assert.equal(valuesEqual(externalId, 'ABC', 'abc'), false);
    assert.equal(
      valuesEqual(
        userAttr('emails'),
        [{ value: 'a' }, { value: 'b', type: 'work' }],
        [{ value: 'B', type: 'Work' }, { value: 'A' }],
      ),
      true,
    );
    assert.equal(valuesEqual(userAttr('emails'), [{ value: 'a' }], [{ value: 'a' }, { value: 'b' }]), false);
    assert.equal(valuesEqual(userAttr('nickName'), null, undefined), true);
    assert.equal(valuesEqual(userAttr('nickName'), 'x', undefined), false);
  });
});

// A resource type registered at runtime, as Devices will be: the same code must validate it.
const DEVICE_SCHEMA = 'urn:example:params:scim:schemas:core:2.0:Device';
const DEVICE_EXT = 'urn:example:params:scim:schemas:extension:ble:2.0:Device';
function deviceRegistry(extensionRequired: boolean) {
  const reg = createCoreRegistry();
  reg.addSchema({
    id: DEVICE_SCHEMA,
    name: 'Device',
    attributes: [
      { name: 'displayName', required: true },
      { name: 'serialNumber', mutability: 'immutable', caseExact: true },
      { name: 'ports', type: 'integer' },
      { name: 'weight', type: 'decimal' },
      { name: 'installedAt', type: 'dateTime' },
      { name: 'tags', multiValued: true },
      { name: 'firmware', type: 'binary' },
      { name: 'secret', mutability: 'writeOnly', returned: 'never' },
      { name: 'status', mutability: 'readOnly', required: true },
      {
        name: 'location',
        type: 'complex',
        subAttributes: [
          { name: 'site', required: true },
          { name: 'rack', mutability: 'immutable' },
          { name: 'slot', type: 'integer' },
        ],
      },
      {
        name: 'owners',
        type: 'complex',
        multiValued: true,
        subAttributes: [
          { name: 'value', required: true },
          { name: 'display' },
          { name: 'primary', type: 'boolean' },
        ],
      },
      {
        name: 'nested',
        type: 'complex',
        subAttributes: [{ name: 'inner', type: 'complex', subAttributes: [{ name: 'x' }] }],
      },
    ],
  });
  reg.addSchema({
    id: DEVICE_EXT,
    name: 'BleDevice',
    attributes: [
      { name: 'deviceMacAddress', required: true },
      { name: 'versionSupport', multiValued: true },
      { name: 'pairingKey', mutability: 'immutable' },
    ],
  });
  reg.addResourceType({
    id: 'Device',
    name: 'Device',
    endpoint: '/Devices',
    description: 'Device',
    schema: DEVICE_SCHEMA,
    schemaExtensions: [{ schema: DEVICE_EXT, required: extensionRequired }],
  });
  return { reg: reg as SchemaRegistry, rt: reg.resourceType('Device')! };
}

describe('prepareWrite: a resource type registered later (Device)', () => {
  const { reg, rt } = deviceRegistry(false);
  const dev = (more: JsonObject): JsonObject => ({ schemas: [DEVICE_SCHEMA], displayName: 'd', ...more });
  const make = (body: JsonObject) => prepareWrite(reg, rt, body, { mode: 'create' });

  test('all types accepted and canonicalised', () => {
    assert.deepStrictEqual(
      make(
        dev({
          PORTS: 4,
          weight: 1.5,
          installedAt: '2024-01-02T03:04:05.250+01:00',
          tags: ['a', 'A', 'b', null],
          firmware: 'AAEC',
          secret: 's',
          status: 'ignored',
          location: { SITE: 'HQ', slot: 3 },
          owners: [{ value: 'u1', primary: true }, { value: 'u2' }],
          [DEVICE_EXT]: { deviceMacAddress: '00:11', versionSupport: ['5.0'] },
        }),
      ),
      {
        schemas: [DEVICE_SCHEMA, DEVICE_EXT],
        displayName: 'd',
        ports: 4,
        weight: 1.5,
        installedAt: '2024-01-02T03:04:05.250+01:00',
        tags: ['a', 'b'],
        firmware: 'AAEC',
        secret: 's',
        location: { site: 'HQ', slot: 3 },
        owners: [{ value: 'u1', primary: true }, { value: 'u2' }],
        [DEVICE_EXT]: { deviceMacAddress: '00:11', versionSupport: ['5.0'] },
      },
    );
  });

  test('integer rejects fractions, overflow and strings', () => {
    rejects(() => make(dev({ ports: 1.5 })), 400, 'invalidValue', /^Attribute "ports": expected integer/);
    rejects(() => make(dev({ ports: JSON.parse('1e400') as number })), 400, 'invalidValue', /"ports"/);
    rejects(() => make(dev({ ports: 2 ** 60 })), 400, 'invalidValue', /"ports"/);
    rejects(() => make(dev({ ports: '4' })), 400, 'invalidValue', /"ports"/);
    rejects(
      () => make(dev({ location: { site: 'x', slot: 0.5 } })),
      400,
      'invalidValue',
      /"location\.slot": expected integer/,
    );
  });

  test('decimal rejects non-numbers and infinity', () => {
    rejects(() => make(dev({ weight: '1.5' })), 400, 'invalidValue', /"weight": expected decimal/);
    rejects(() => make(dev({ weight: JSON.parse('-1e400') as number })), 400, 'invalidValue');
    assert.equal(make(dev({ weight: 3 })).weight, 3);
  });

  test('dateTime needs date and time', () => {
    rejects(
      () => make(dev({ installedAt: '2024-01-02' })),
      400,
      'invalidValue',
      /"installedAt": expected dateTime/,
    );
    rejects(() => make(dev({ installedAt: 1704164645 })), 400, 'invalidValue');
    rejects(() => make(dev({ installedAt: '2024-01-02T03:04:05 UTC' })), 400, 'invalidValue');
  });

  test('multi-valued simple values: single value rejected, case-insensitive duplicates dropped', () => {
    rejects(() => make(dev({ tags: 'a' })), 400, 'invalidValue', /"tags" is multi-valued/);
    rejects(() => make(dev({ tags: [1] })), 400, 'invalidValue', /"tags": expected string/);
  });

  test('required sub-attribute inside a present complex value', () => {
    rejects(
      () => make(dev({ location: { slot: 1 } })),
      400,
      'invalidValue',
      /^Attribute "location\.site" is required$/,
    );
    rejects(
      () => make(dev({ owners: [{ display: 'x' }] })),
      400,
      'invalidValue',
      /"owners\.value" is required/,
    );
    assert.deepStrictEqual(make(dev({ location: { site: null, slot: null } })), {
      schemas: [DEVICE_SCHEMA],
      displayName: 'd',
    });
  });

  test('required readOnly attributes are not demanded from clients', () => {
    assert.deepStrictEqual(make(dev({})), { schemas: [DEVICE_SCHEMA], displayName: 'd' });
  });

  test('required attribute of an optional extension is checked only when the extension is used', () => {
    rejects(
      () => make(dev({ [DEVICE_EXT]: { versionSupport: ['5.0'] } })),
      400,
      'invalidValue',
      /^Attribute "urn:example:params:scim:schemas:extension:ble:2\.0:Device:deviceMacAddress" is required$/,
    );
  });

  test('complex sub-attribute definitions cannot be used (nesting too deep)', () => {
    rejects(() => make(dev({ nested: { inner: { x: 'y' } } })), 400, 'invalidValue', /"nested\.inner"/);
  });

  test('required extension missing → 400 invalidValue', () => {
    const required = deviceRegistry(true);
    rejects(
      () => prepareWrite(required.reg, required.rt, dev({}), { mode: 'create' }),
      400,
      'invalidValue',
      /Extension "urn:example:params:scim:schemas:extension:ble:2\.0:Device" is required/,
    );
    rejects(
      () =>
        prepareWrite(
          required.reg,
          required.rt,
          dev({ schemas: [DEVICE_SCHEMA, DEVICE_EXT], [DEVICE_EXT]: {} }),
          { mode: 'create' },
        ),
      400,
      'invalidValue',
      /is required/,
    );
    assert.deepStrictEqual(
      prepareWrite(required.reg, required.rt, dev({ [DEVICE_EXT]: { deviceMacAddress: 'm' } }), {
        mode: 'create',
      }),
      { schemas: [DEVICE_SCHEMA, DEVICE_EXT], displayName: 'd', [DEVICE_EXT]: { deviceMacAddress: 'm' } },
    );
  });

  describe('immutable on replace', () => {
    const existing: JsonObject = {
      schemas: [DEVICE_SCHEMA],
      id: 'd1',
      displayName: 'd',
      serialNumber: 'SN-1',
      location: { site: 'HQ', rack: 'R1' },
      meta: { resourceType: 'Device' },
    };
    const replace = (body: JsonObject, ex: JsonObject | undefined = existing) =>
      prepareWrite(reg, rt, body, { mode: 'replace', existing: ex });

    test('same value (resent) is fine', () => {
      assert.deepStrictEqual(replace(dev({ serialNumber: 'SN-1', location: { site: 'HQ2', rack: 'R1' } })), {
        schemas: [DEVICE_SCHEMA],
        displayName: 'd',
        serialNumber: 'SN-1',
        location: { site: 'HQ2', rack: 'R1' },
      });
    });

    test('absent → kept from existing', () => {
      assert.deepStrictEqual(replace(dev({ location: { site: 'HQ2' } })), {
        schemas: [DEVICE_SCHEMA],
        displayName: 'd',
        serialNumber: 'SN-1',
        location: { site: 'HQ2', rack: 'R1' },
      });
      assert.deepStrictEqual(replace(dev({ serialNumber: null })), {
        schemas: [DEVICE_SCHEMA],
        displayName: 'd',
        serialNumber: 'SN-1',
        location: { rack: 'R1' },
      });
    });

    test('changed value → 400 mutability', () => {
      rejects(
        () => replace(dev({ serialNumber: 'SN-2' })),
        400,
        'mutability',
        /^Attribute "serialNumber" is immutable/,
      );
      rejects(() => replace(dev({ serialNumber: 'sn-1' })), 400, 'mutability');
      rejects(
        () => replace(dev({ location: { site: 'HQ', rack: 'R2' } })),
        400,
        'mutability',
        /"location\.rack"/,
      );
    });

    test('no existing value → may be set', () => {
      const noSerial: JsonObject = {
        schemas: [DEVICE_SCHEMA],
        id: 'd1',
        displayName: 'd',
        location: { site: 'HQ' },
      };
      assert.deepStrictEqual(
        replace(dev({ serialNumber: 'SN-9', location: { site: 'HQ', rack: 'R9' } }), noSerial),
        {
          schemas: [DEVICE_SCHEMA],
          displayName: 'd',
          serialNumber: 'SN-9',
          location: { site: 'HQ', rack: 'R9' },
        },
      );
    });

    test('immutable extension attributes: kept when absent, rejected when changed', () => {
      const ex: JsonObject = { ...existing, [DEVICE_EXT]: { deviceMacAddress: 'm', pairingKey: 'PK' } };
      assert.deepStrictEqual(replace(dev({ [DEVICE_EXT.toUpperCase()]: { deviceMacAddress: 'm2' } }), ex), {
        schemas: [DEVICE_SCHEMA, DEVICE_EXT],
        displayName: 'd',
        serialNumber: 'SN-1',
        location: { rack: 'R1' },
        [DEVICE_EXT]: { deviceMacAddress: 'm2', pairingKey: 'PK' },
      });
      // caseExact is false: a re-cased value is the same value, not a change.
      assert.deepStrictEqual(
        replace(dev({ [DEVICE_EXT]: { deviceMacAddress: 'm', pairingKey: 'pk' } }), ex)[DEVICE_EXT],
        {
          deviceMacAddress: 'm',
          pairingKey: 'pk',
        },
      );
      // The kept immutable value means the extension is in use, so its required attributes apply.
      rejects(() => replace(dev({}), ex), 400, 'invalidValue', /deviceMacAddress" is required/);
      rejects(
        () => replace(dev({ [DEVICE_EXT]: { deviceMacAddress: 'm', pairingKey: 'PK2' } }), ex),
        400,
        'mutability',
        /^Attribute "urn:example:params:scim:schemas:extension:ble:2\.0:Device:pairingKey" is immutable/,
      );
    });

    test('create does not check immutables', () => {
      assert.equal(
        prepareWrite(reg, rt, dev({ serialNumber: 'X' }), { mode: 'create', existing }).serialNumber,
        'X',
      );
    });
  });
});
