import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '../../src/scim/json.ts';
import { createCoreRegistry } from '../../src/scim/schema/registry.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import { parseAttributeList, project, type ProjectOptions } from '../../src/scim/resource/project.ts';

const registry = createCoreRegistry();
const USER = registry.resourceType('User')!;
const GROUP = registry.resourceType('Group')!;
const ID = '2819c223-7f76-453a-919d-413861904646';

const meta = (): JsonObject => ({
  resourceType: 'User',
  created: '2010-01-23T04:56:22Z',
  lastModified: '2011-05-13T04:42:34Z',
  version: 'W/"3694e05e9dff590"',
  location: `https://example.com/v2/Users/${ID}`,
});

const name = (): JsonObject => ({
  formatted: 'Ms. Barbara J Jensen, III',
  familyName: 'Jensen',
  givenName: 'Barbara',
  middleName: 'Jane',
  honorificPrefix: 'Ms.',
  honorificSuffix: 'III',
});

const emails = (): JsonObject[] => [
  { value: 'bjensen@example.com', type: 'work', primary: true },
  { value: 'babs@jensen.org', type: 'home' },
];

const groups = () => [
  {
    value: 'e9e30dba-f08f-4109-8486-d5c6a331660a',
    $ref: 'https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a',
    display: 'Tour Guides',
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

/** RFC 7643 §8.3 as stored (password included: it must never come out). */
const storedUser = (): JsonObject => ({
  schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
  id: ID,
  externalId: '701984',
  userName: 'bjensen@example.com',
  name: name(),
  displayName: 'Babs Jensen',
  emails: emails(),
  phoneNumbers: [{ value: '555-555-5555', type: 'work' }],
  active: true,
  password: 't1meMa$heen',
  groups: groups(),
  [ENTERPRISE_USER_SCHEMA]: enterprise(),
  meta: meta(),
});

const withoutPassword = (): JsonObject => {
  const u = storedUser();
  delete u.password;
  return u;
};

/** RFC 7643 §8.4 */
const storedGroup = (): JsonObject => ({
  schemas: [GROUP_SCHEMA],
  id: 'e9e30dba-f08f-4109-8486-d5c6a331660a',
  displayName: 'Tour Guides',
  members: [
    { value: ID, $ref: `https://example.com/v2/Users/${ID}`, display: 'Babs Jensen' },
    {
      value: '902c246b-6245-4190-8e05-00816be7344a',
      $ref: 'https://example.com/v2/Users/902c246b-6245-4190-8e05-00816be7344a',
      display: 'Mandy Pepperidge',
    },
  ],
  meta: {
    resourceType: 'Group',
    created: '2010-01-23T04:56:22Z',
    lastModified: '2011-05-13T04:42:34Z',
    version: 'W/"3694e05e9dff592"',
    location: 'https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a',
  },
});

const pu = (opts: ProjectOptions = {}, resource: JsonObject = storedUser()) =>
  project(registry, USER, resource, opts);

describe('project: defaults', () => {
  test('everything but returned:never (password)', () => {
    assert.deepStrictEqual(pu(), withoutPassword());
  });

  test('group (§8.4) is returned whole', () => {
    assert.deepStrictEqual(project(registry, GROUP, storedGroup()), storedGroup());
  });

  test('keys the schemas do not define and null values are dropped', () => {
    assert.deepStrictEqual(
      pu({}, { schemas: [USER_SCHEMA], id: 'x', userName: 'u', junk: 1, nickName: null }),
      {
        schemas: [USER_SCHEMA],
        id: 'x',
        userName: 'u',
      },
    );
  });

  test('the input is not modified', () => {
    const u = storedUser();
    pu({ attributes: ['name.givenName', 'emails.value'] }, u);
    assert.deepStrictEqual(u, storedUser());
  });
});

describe('project: attributes', () => {
  test('attributes=userName → exactly schemas, id, userName', () => {
    assert.deepStrictEqual(pu({ attributes: ['userName'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      userName: 'bjensen@example.com',
    });
  });

  test('attributes=name.givenName → name with only givenName', () => {
    assert.deepStrictEqual(pu({ attributes: ['name.givenName'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      name: { givenName: 'Barbara' },
    });
  });

  test('attributes=emails.value → every email with only value', () => {
    assert.deepStrictEqual(pu({ attributes: ['emails.value'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      emails: [{ value: 'bjensen@example.com' }, { value: 'babs@jensen.org' }],
    });
  });

  test('attributes=name → the whole name; name plus name.givenName → still whole', () => {
    const expected = { schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], id: ID, name: name() };
    assert.deepStrictEqual(pu({ attributes: ['name'] }), expected);
    assert.deepStrictEqual(pu({ attributes: ['name.givenName', 'name'] }), expected);
  });

  test('several sub-attributes of the same attribute', () => {
    assert.deepStrictEqual(pu({ attributes: ['emails.value', 'emails.primary', 'name.familyName'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      name: { familyName: 'Jensen' },
      emails: [{ value: 'bjensen@example.com', primary: true }, { value: 'babs@jensen.org' }],
    });
  });

  test('elements with none of the named sub-attributes are dropped; attribute absent if none left', () => {
    assert.deepStrictEqual(pu({ attributes: ['emails.primary'] }).emails, [{ primary: true }]);
    assert.deepStrictEqual(pu({ attributes: ['emails.display'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
    });
  });

  test('names are case-insensitive', () => {
    assert.deepStrictEqual(pu({ attributes: ['NAME.GIVENNAME', 'UserName'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      userName: 'bjensen@example.com',
      name: { givenName: 'Barbara' },
    });
  });

  test('URN-qualified extension attribute', () => {
    assert.deepStrictEqual(pu({ attributes: [`${ENTERPRISE_USER_SCHEMA}:employeeNumber`] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      [ENTERPRISE_USER_SCHEMA]: { employeeNumber: '701984' },
    });
    assert.deepStrictEqual(
      pu({ attributes: [`${ENTERPRISE_USER_SCHEMA.toUpperCase()}:MANAGER.displayname`] }),
      {
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        id: ID,
        [ENTERPRISE_USER_SCHEMA]: { manager: { displayName: 'John Smith' } },
      },
    );
  });

  test('a bare extension URN returns the whole extension', () => {
    assert.deepStrictEqual(pu({ attributes: [ENTERPRISE_USER_SCHEMA.toLowerCase()] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      [ENTERPRISE_USER_SCHEMA]: enterprise(),
    });
  });

  test('URN-qualified core attribute', () => {
    assert.deepStrictEqual(
      pu({ attributes: [`${USER_SCHEMA}:name.familyName`, `${USER_SCHEMA}:externalId`] }),
      {
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        id: ID,
        externalId: '701984',
        name: { familyName: 'Jensen' },
      },
    );
  });

  test('a bare core URN returns the core attributes (not meta/externalId)', () => {
    const { meta: _m, externalId: _e, [ENTERPRISE_USER_SCHEMA]: _x, ...core } = withoutPassword();
    assert.deepStrictEqual(pu({ attributes: [USER_SCHEMA] }), core);
  });

  test('meta is default-returned: meta.version alone, or the whole meta', () => {
    assert.deepStrictEqual(pu({ attributes: ['meta.version'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      meta: { version: 'W/"3694e05e9dff590"' },
    });
    assert.deepStrictEqual(pu({ attributes: ['meta'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      meta: meta(),
    });
  });

  test('password is never returned, even when asked for', () => {
    assert.deepStrictEqual(pu({ attributes: ['password', 'userName'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
      userName: 'bjensen@example.com',
    });
  });

  test('unknown names are ignored', () => {
    assert.deepStrictEqual(
      pu({ attributes: ['shoeSize', 'userName', 'name.nope', 'urn:x:y:z', 'userName.x'] }),
      {
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        id: ID,
        userName: 'bjensen@example.com',
      },
    );
    assert.deepStrictEqual(pu({ attributes: ['shoeSize'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
    });
  });

  test('an attribute of another resource type is unknown here', () => {
    assert.deepStrictEqual(pu({ attributes: [`${GROUP_SCHEMA}:members`, 'members'] }), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: ID,
    });
  });

  test('group: attributes=members.value', () => {
    assert.deepStrictEqual(
      project(registry, GROUP, storedGroup(), { attributes: ['members.value', 'displayName'] }),
      {
        schemas: [GROUP_SCHEMA],
        id: 'e9e30dba-f08f-4109-8486-d5c6a331660a',
        displayName: 'Tour Guides',
        members: [{ value: ID }, { value: '902c246b-6245-4190-8e05-00816be7344a' }],
      },
    );
  });
});

describe('project: excludedAttributes', () => {
  test('id and schemas (returned always) cannot be excluded', () => {
    assert.deepStrictEqual(pu({ excludedAttributes: ['id', 'schemas', 'ID'] }), withoutPassword());
  });

  test('excluding attributes and sub-attributes', () => {
    const expected = withoutPassword();
    delete expected.meta;
    delete expected.groups;
    expected.name = { ...name() };
    delete (expected.name as JsonObject).givenName;
    expected.emails = [{ value: 'bjensen@example.com', primary: true }, { value: 'babs@jensen.org' }];
    assert.deepStrictEqual(
      pu({ excludedAttributes: ['meta', 'Groups', 'name.givenName', 'emails.type'] }),
      expected,
    );
  });

  test('excluding a sub-attribute that leaves elements empty drops them', () => {
    const u: JsonObject = { schemas: [USER_SCHEMA], id: 'x', userName: 'u', emails: [{ value: 'a@b.c' }] };
    assert.deepStrictEqual(pu({ excludedAttributes: ['emails.value'] }, u), {
      schemas: [USER_SCHEMA],
      id: 'x',
      userName: 'u',
    });
  });

  test('excluding extension attributes; an emptied extension is removed but schemas is kept as stored', () => {
    const expected = withoutPassword();
    expected[ENTERPRISE_USER_SCHEMA] = { ...enterprise() };
    delete (expected[ENTERPRISE_USER_SCHEMA] as JsonObject).manager;
    assert.deepStrictEqual(pu({ excludedAttributes: [`${ENTERPRISE_USER_SCHEMA}:manager`] }), expected);

    const u: JsonObject = {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: 'x',
      userName: 'u',
      [ENTERPRISE_USER_SCHEMA]: { department: 'Ops' },
    };
    assert.deepStrictEqual(pu({ excludedAttributes: [`${ENTERPRISE_USER_SCHEMA}:department`] }, u), {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: 'x',
      userName: 'u',
    });
  });

  test('a bare extension URN excludes the whole extension', () => {
    const expected = withoutPassword();
    delete expected[ENTERPRISE_USER_SCHEMA];
    assert.deepStrictEqual(pu({ excludedAttributes: [ENTERPRISE_USER_SCHEMA] }), expected);
  });

  test('unknown names are ignored', () => {
    assert.deepStrictEqual(pu({ excludedAttributes: ['shoeSize', 'name.nope'] }), withoutPassword());
  });

  test('meta sub-attributes can be excluded', () => {
    const expected = withoutPassword();
    const m = meta();
    delete m.version;
    expected.meta = m;
    assert.deepStrictEqual(pu({ excludedAttributes: ['meta.version'] }), expected);
  });
});

// A runtime-registered type exercising returned: always / request / never on attributes and sub-attributes.
const DEVICE_SCHEMA = 'urn:example:params:scim:schemas:core:2.0:Device';
const DEVICE_EXT = 'urn:example:params:scim:schemas:extension:ble:2.0:Device';
const devRegistry = createCoreRegistry();
devRegistry.addSchema({
  id: DEVICE_SCHEMA,
  name: 'Device',
  attributes: [
    { name: 'displayName' },
    { name: 'serialNumber', returned: 'always' },
    { name: 'notes', returned: 'request' },
    { name: 'secret', returned: 'never', mutability: 'writeOnly' },
    {
      name: 'location',
      type: 'complex',
      subAttributes: [
        { name: 'site', returned: 'always' },
        { name: 'rack' },
        { name: 'coordinates', returned: 'request' },
        { name: 'pin', returned: 'never' },
      ],
    },
  ],
});
devRegistry.addSchema({
  id: DEVICE_EXT,
  name: 'Ble',
  attributes: [{ name: 'deviceMacAddress' }, { name: 'irk', returned: 'request' }],
});
devRegistry.addResourceType({
  id: 'Device',
  name: 'Device',
  endpoint: '/Devices',
  description: 'Device',
  schema: DEVICE_SCHEMA,
  schemaExtensions: [{ schema: DEVICE_EXT, required: false }],
});
const DEVICE = devRegistry.resourceType('Device')!;
const device = (): JsonObject => ({
  schemas: [DEVICE_SCHEMA, DEVICE_EXT],
  id: 'd1',
  displayName: 'Printer',
  serialNumber: 'SN1',
  notes: 'n',
  secret: 's',
  location: { site: 'HQ', rack: 'R1', coordinates: '1,2', pin: '1234' },
  [DEVICE_EXT]: { deviceMacAddress: 'aa', irk: 'k' },
  meta: { resourceType: 'Device', version: 'W/"1"' },
});
const pd = (opts: ProjectOptions = {}) => project(devRegistry, DEVICE, device(), opts);

describe('project: returned characteristic on a registered type', () => {
  test('default: request and never attributes/sub-attributes are absent', () => {
    assert.deepStrictEqual(pd(), {
      schemas: [DEVICE_SCHEMA, DEVICE_EXT],
      id: 'd1',
      displayName: 'Printer',
      serialNumber: 'SN1',
      location: { site: 'HQ', rack: 'R1' },
      [DEVICE_EXT]: { deviceMacAddress: 'aa' },
      meta: { resourceType: 'Device', version: 'W/"1"' },
    });
  });

  test('returned:always attributes survive attributes=… and excludedAttributes', () => {
    assert.deepStrictEqual(pd({ attributes: ['displayName'] }), {
      schemas: [DEVICE_SCHEMA, DEVICE_EXT],
      id: 'd1',
      displayName: 'Printer',
      serialNumber: 'SN1',
    });
    assert.deepStrictEqual(pd({ excludedAttributes: ['serialNumber', 'location.site'] }).serialNumber, 'SN1');
    assert.deepStrictEqual(pd({ excludedAttributes: ['serialNumber', 'location.site'] }).location, {
      site: 'HQ',
      rack: 'R1',
    });
  });

  test('returned:request only when named', () => {
    assert.deepStrictEqual(pd({ attributes: ['notes', `${DEVICE_EXT}:irk`] }), {
      schemas: [DEVICE_SCHEMA, DEVICE_EXT],
      id: 'd1',
      serialNumber: 'SN1',
      notes: 'n',
      [DEVICE_EXT]: { irk: 'k' },
    });
    assert.equal(pd({ excludedAttributes: ['displayName'] }).notes, undefined);
  });

  test('returned:request on writes when the client sent it', () => {
    const out = pd({ requestedOnWrite: new Set(['Notes', `${DEVICE_EXT}:irk`, 'location.coordinates']) });
    assert.deepStrictEqual(out, {
      ...pd(),
      notes: 'n',
      location: { site: 'HQ', rack: 'R1', coordinates: '1,2' },
      [DEVICE_EXT]: { deviceMacAddress: 'aa', irk: 'k' },
    });
  });

  test('sub-attributes: always kept with a named sibling, request only when named, never never', () => {
    assert.deepStrictEqual(pd({ attributes: ['location.rack'] }).location, { site: 'HQ', rack: 'R1' });
    assert.deepStrictEqual(pd({ attributes: ['location'] }).location, { site: 'HQ', rack: 'R1' });
    assert.deepStrictEqual(pd({ attributes: ['location.coordinates', 'location.pin'] }).location, {
      site: 'HQ',
      coordinates: '1,2',
    });
    assert.deepStrictEqual(pd({ attributes: ['location', 'location.coordinates'] }).location, {
      site: 'HQ',
      rack: 'R1',
      coordinates: '1,2',
    });
  });

  test('returned:never is absent whatever is asked', () => {
    for (const opts of [{}, { attributes: ['secret'] }, { requestedOnWrite: new Set(['secret']) }]) {
      assert.equal(pd(opts).secret, undefined);
    }
  });
});

describe('project: plan cache', () => {
  test('same list as attributes vs excludedAttributes gives different plans', () => {
    const a = pu({ attributes: ['userName'] });
    const e = pu({ excludedAttributes: ['userName'] });
    assert.equal(a.userName, 'bjensen@example.com');
    assert.equal(e.userName, undefined);
    assert.deepStrictEqual(pu({ attributes: ['userName'] }), a);
  });

  test('a page of resources projects consistently and plans are per resource type', () => {
    const page = Array.from({ length: 100 }, (_, i) => ({ ...storedUser(), id: `u${i}` }));
    const out = page.map((r) => project(registry, USER, r, { attributes: ['userName', 'emails.value'] }));
    assert.equal(out.length, 100);
    assert.deepStrictEqual(out[99], {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      id: 'u99',
      userName: 'bjensen@example.com',
      emails: [{ value: 'bjensen@example.com' }, { value: 'babs@jensen.org' }],
    });
    assert.deepStrictEqual(
      project(registry, GROUP, storedGroup(), { attributes: ['userName', 'emails.value'] }),
      {
        schemas: [GROUP_SCHEMA],
        id: 'e9e30dba-f08f-4109-8486-d5c6a331660a',
      },
    );
  });

  test('many distinct parameter sets stay correct (bounded cache)', () => {
    for (let i = 0; i < 200; i++) {
      assert.deepStrictEqual(pu({ attributes: [`unknown${i}`, 'displayName'] }), {
        schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        id: ID,
        displayName: 'Babs Jensen',
      });
    }
  });
});

describe('parseAttributeList', () => {
  test('comma-separated, trimmed, empty → undefined', () => {
    assert.equal(parseAttributeList(undefined), undefined);
    assert.equal(parseAttributeList(''), undefined);
    assert.equal(parseAttributeList(' , ,'), undefined);
    assert.equal(parseAttributeList([]), undefined);
    assert.deepStrictEqual(parseAttributeList('userName, name.givenName ,emails'), [
      'userName',
      'name.givenName',
      'emails',
    ]);
    assert.deepStrictEqual(parseAttributeList(['userName', ' a,b ']), ['userName', 'a', 'b']);
    assert.deepStrictEqual(parseAttributeList(`${ENTERPRISE_USER_SCHEMA}:manager.value`), [
      `${ENTERPRISE_USER_SCHEMA}:manager.value`,
    ]);
  });
});
