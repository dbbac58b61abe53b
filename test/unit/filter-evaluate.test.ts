import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BoundFilter } from '../../src/scim/filter/ast.ts';
import { bindFilter } from '../../src/scim/filter/bind.ts';
import { isPresent, matches } from '../../src/scim/filter/evaluate.ts';
import { parseFilter } from '../../src/scim/filter/parser.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import { createCoreRegistry } from '../../src/scim/schema/registry.ts';

const DEVICE_SCHEMA = 'urn:example:scim:schemas:2.0:Device';
const registry = createCoreRegistry();
registry.addSchema({
  id: DEVICE_SCHEMA,
  name: 'Device',
  attributes: [
    { name: 'deviceName' },
    { name: 'cores', type: 'integer' },
    { name: 'weight', type: 'decimal' },
    { name: 'firmware', type: 'binary' },
    { name: 'enrolled', type: 'dateTime' },
    { name: 'tags', multiValued: true },
    { name: 'serial', caseExact: true },
    {
      name: 'ports',
      type: 'complex',
      multiValued: true,
      subAttributes: [{ name: 'number', type: 'integer' }, { name: 'label' }],
    },
  ],
});
registry.addResourceType({
  id: 'Device',
  name: 'Device',
  endpoint: '/Devices',
  description: 'Device',
  schema: DEVICE_SCHEMA,
  schemaExtensions: [],
});
const schemaUris = registry.schemaUris();
const types = {
  User: registry.resourceType('User')!,
  Group: registry.resourceType('Group')!,
  Device: registry.resourceType('Device')!,
};

function bound(text: string, type: keyof typeof types, lenient = false): BoundFilter {
  return bindFilter(registry, types[type], parseFilter(text, { schemaUris }), { lenient });
}

const bjensen: JsonObject = {
  schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
  id: '2819c223-7f76-453a-919d-413861904646',
  externalId: 'BJensen-Ext',
  meta: {
    resourceType: 'User',
    created: '2010-01-23T04:56:22Z',
    lastModified: '2011-05-13T04:42:34Z',
    location: 'https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646',
    version: 'W/"3694e05e9dff590"',
  },
  userName: 'bjensen',
  name: { formatted: 'Ms. Barbara J Jensen III', familyName: 'Jensen', givenName: 'Barbara' },
  displayName: 'Babs Jensen',
  title: '',
  profileUrl: 'https://login.example.com/bjensen',
  active: true,
  emails: [
    { value: 'bjensen@example.com', type: 'work', primary: true },
    { value: 'babs@jensen.org', type: 'home' },
  ],
  phoneNumbers: [{ value: '555-555-8377', type: 'work' }],
  x509Certificates: [{ value: 'MIIDQzCCAqygAwIBAgICEAAwDQYJ' }],
  [ENTERPRISE_USER_SCHEMA]: {
    employeeNumber: '701984',
    manager: { value: '26118915-6090-4610-87e4-49d8ca9f808d', displayName: 'John Smith' },
  },
};

const group: JsonObject = {
  schemas: [GROUP_SCHEMA],
  id: 'e9e30dba-f08f-4109-8486-d5c6a331660a',
  meta: { resourceType: 'Group', created: '2010-01-23T04:56:22Z', lastModified: '2011-05-13T04:42:34Z' },
  displayName: 'Tour Guides',
  members: [
    { value: '2819c223-7f76-453a-919d-413861904646', type: 'User', display: 'Babs Jensen' },
    { value: '902c246b-6245-4190-8e05-00816be7344a', type: 'Group', display: 'Mandy Pepperidge' },
  ],
};

const device: JsonObject = {
  schemas: [DEVICE_SCHEMA],
  id: 'd1',
  meta: { resourceType: 'Device', created: '2020-01-01T00:00:00Z', lastModified: '2020-01-01T00:00:00Z' },
  deviceName: 'Laptop-42',
  cores: 8,
  weight: 1.25,
  firmware: 'QUJDZA==',
  enrolled: '2020-06-01T12:00:00+02:00',
  tags: ['Finance', 'laptop'],
  serial: 'SN-ab',
  ports: [
    { number: 80, label: 'HTTP' },
    { number: 443, label: 'https' },
  ],
};

const resources = { User: bjensen, Group: group, Device: device };

/** Evaluates `text` on the sample of `type`. */
function m(text: string, type: keyof typeof types = 'User', resource: JsonObject = resources[type]): boolean {
  return matches(resource, bound(text, type));
}

function check(type: keyof typeof types, cases: [string, boolean][]): void {
  for (const [text, expected] of cases) assert.equal(m(text, type), expected, text);
}

describe('strings', () => {
  test('eq/ne honour caseExact', () => {
    check('User', [
      ['userName eq "bjensen"', true],
      ['userName Eq "BJensen"', true],
      ['userName eq "bjense"', false],
      ['userName ne "BJENSEN"', false],
      ['userName ne "other"', true],
      ['id eq "2819c223-7f76-453a-919d-413861904646"', true],
      ['id eq "2819C223-7F76-453A-919D-413861904646"', false],
      ['externalId eq "BJensen-Ext"', true],
      ['externalId eq "bjensen-ext"', false],
      ['externalId ne "bjensen-ext"', true],
    ]);
    check('Device', [
      ['serial eq "SN-ab"', true],
      ['serial eq "sn-ab"', false],
      ['deviceName eq "LAPTOP-42"', true],
    ]);
  });

  test('co / sw / ew', () => {
    check('User', [
      ['userName co "ENS"', true],
      ['userName co "xyz"', false],
      ['userName sw "BJ"', true],
      ['userName sw "jensen"', false],
      ['userName ew "SEN"', true],
      ['userName ew "bj"', false],
      ['userName co ""', true],
      ['externalId co "ext"', false],
      ['externalId co "Ext"', true],
      ['externalId sw "BJ"', true],
      ['externalId ew "EXT"', false],
    ]);
  });

  test('gt / ge / lt / le: lexicographic, lower-cased unless caseExact', () => {
    check('User', [
      ['userName gt "a"', true],
      ['userName gt "BJENSEN"', false],
      ['userName ge "BJENSEN"', true],
      ['userName lt "C"', true],
      ['userName le "bjensen"', true],
      ['userName lt "bjensen"', false],
      ['displayName gt "babs"', true],
    ]);
    // caseExact: UTF-16 code unit order, so "S" (0x53) < "s" (0x73).
    check('Device', [
      ['serial gt "SN-AB"', true],
      ['serial lt "sn"', true],
      ['serial ge "SN-ab"', true],
      ['serial le "SN-aa"', false],
    ]);
  });

  test('reference compares as a string with caseExact rules; binary is always case-exact', () => {
    check('User', [
      ['profileUrl eq "HTTPS://LOGIN.EXAMPLE.COM/BJENSEN"', true],
      ['profileUrl sw "https://login"', true],
      ['meta.location ew "/Users/2819c223-7f76-453a-919d-413861904646"', true],
      ['meta.location ew "/USERS/2819C223-7F76-453A-919D-413861904646"', false],
      ['x509Certificates.value eq "MIIDQzCCAqygAwIBAgICEAAwDQYJ"', true],
      ['x509Certificates.value eq "miidqzccaqygawibagiceaawdqyj"', false],
      ['x509Certificates.value sw "MIID"', true],
      ['x509Certificates.value sw "miid"', false],
    ]);
    check('Device', [
      ['firmware eq "QUJDZA=="', true],
      ['firmware eq "qujdza=="', false],
    ]);
  });
});

describe('other types', () => {
  test('boolean: eq and ne', () => {
    check('User', [
      ['active eq true', true],
      ['active eq false', false],
      ['active ne true', false],
      ['active ne false', true],
      ['emails[primary eq true]', true],
      ['phoneNumbers[primary eq true]', false],
      ['phoneNumbers[primary ne true]', true],
    ]);
  });

  test('integer and decimal: numeric', () => {
    check('Device', [
      ['cores eq 8', true],
      ['cores eq 8.0', true],
      ['cores ne 8', false],
      ['cores gt 7.5', true],
      ['cores gt 8', false],
      ['cores ge 8', true],
      ['cores lt 10', true],
      ['cores le 7', false],
      ['weight eq 1.25', true],
      ['weight eq 125e-2', true],
      ['weight gt 1.2', true],
      ['weight lt 1.2', false],
      ['ports.number gt 100', true],
      ['ports.number gt 500', false],
      ['ports[number ge 443 and label eq "HTTPS"]', true],
      ['ports[number eq 80 and label eq "https"]', false],
    ]);
  });

  test('dateTime: chronological and timezone-aware', () => {
    check('User', [
      ['meta.lastModified gt "2011-05-13T04:42:33Z"', true],
      ['meta.lastModified gt "2011-05-13T04:42:34Z"', false],
      ['meta.lastModified ge "2011-05-13T04:42:34Z"', true],
      ['meta.lastModified eq "2011-05-13T04:42:34.000Z"', true],
      ['meta.lastModified eq "2011-05-13T06:42:34+02:00"', true],
      ['meta.lastModified ne "2011-05-13T06:42:34+02:00"', false],
      // Lexicographically "2011-05-13T05..." > "2011-05-13T04...", chronologically it is earlier.
      ['meta.lastModified gt "2011-05-13T05:00:00+01:00"', true],
      ['meta.lastModified lt "2011-05-13T00:00:00-05:00"', true],
      ['meta.lastModified le "2011-05-13T04:42:34"', true],
      ['meta.created lt "2011-01-01T00:00:00Z"', true],
    ]);
    check('Device', [
      ['enrolled eq "2020-06-01T10:00:00Z"', true],
      ['enrolled gt "2020-06-01T11:00:00Z"', false],
      ['enrolled lt "2020-06-01T11:00:00+00:30"', true],
    ]);
  });
});

describe('presence', () => {
  test('pr: absent, null, "", [] and {} are not present', () => {
    check('User', [
      ['userName pr', true],
      ['title pr', false],
      ['nickName pr', false],
      ['emails pr', true],
      ['name pr', true],
      ['name.middleName pr', false],
      ['name.givenName pr', true],
      ['emails.display pr', false],
      ['addresses pr', false],
      ['meta.created pr', true],
      ['employeeNumber pr', true],
      [`${ENTERPRISE_USER_SCHEMA}:costCenter pr`, false],
      ['manager pr', true],
    ]);
    const sparse: JsonObject = {
      id: 'x',
      userName: 'sparse',
      nickName: null,
      title: '',
      emails: [],
      name: {},
      ims: [{}],
      phoneNumbers: [{ value: '' }, { value: '1' }],
      photos: [{ type: null }],
    };
    for (const [text, expected] of [
      ['nickName pr', false],
      ['title pr', false],
      ['emails pr', false],
      ['name pr', false],
      ['ims pr', false],
      ['photos pr', false],
      ['phoneNumbers pr', true],
      ['phoneNumbers.value pr', true],
      ['phoneNumbers[value pr]', true],
      ['nickName eq null', true],
      ['title eq null', true],
      ['emails eq null', true],
      ['userName ne null', true],
      ['userName eq null', false],
      ['not (title pr)', true],
    ] as const) {
      assert.equal(m(text, 'User', sparse), expected, text);
    }
  });

  test('isPresent', () => {
    assert.equal(isPresent(undefined), false);
    assert.equal(isPresent(null), false);
    assert.equal(isPresent(''), false);
    assert.equal(isPresent([]), false);
    assert.equal(isPresent({}), false);
    assert.equal(isPresent([null, '']), false);
    assert.equal(isPresent({ a: null, b: [] }), false);
    assert.equal(isPresent(false), true);
    assert.equal(isPresent(0), true);
    assert.equal(isPresent(' '), true);
    assert.equal(isPresent([{ a: 1 }]), true);
  });
});

describe('multi-valued attributes', () => {
  test('any value matches', () => {
    check('User', [
      ['emails.value co "example.com"', true],
      ['emails.value co "jensen.org"', true],
      ['emails co "JENSEN.ORG"', true],
      ['emails.type eq "home"', true],
      ['emails.type eq "other"', false],
      ['emails.value ew ".net"', false],
    ]);
    check('Device', [
      ['tags eq "finance"', true],
      ['tags eq "LAPTOP"', true],
      ['tags sw "fin"', true],
      ['tags eq "desktop"', false],
    ]);
  });

  test('ne is "not eq": false when any value equals, true when absent', () => {
    check('User', [
      ['emails.value ne "bjensen@example.com"', false],
      ['emails ne "babs@jensen.org"', false],
      ['emails ne "nobody@example.com"', true],
      ['emails.type ne "work"', false],
      ['nickName ne "x"', true],
      ['addresses.type ne "work"', true],
      ['name.middleName ne "x"', true],
      [`${ENTERPRISE_USER_SCHEMA}:costCenter ne "x"`, true],
    ]);
    check('Device', [['tags ne "finance"', false]]);
  });

  test('comparison with an absent value is false', () => {
    check('User', [
      ['nickName eq "x"', false],
      ['nickName co ""', false],
      ['nickName gt "a"', false],
      ['addresses.type eq "work"', false],
      ['addresses[type eq "work"]', false],
      ['name.middleName lt "z"', false],
    ]);
  });
});

describe('value paths', () => {
  test('all inner conditions must hold on the same element', () => {
    check('User', [
      ['emails[type eq "work" and value co "@example.com"]', true],
      ['emails[type eq "home" and value co "@example.com"]', false],
      // Without a value path the two conditions may hold on different elements.
      ['emails.type eq "home" and emails.value co "@example.com"', true],
      ['emails[type eq "home" or value co "@example.com"]', true],
      ['emails[not (type eq "work")]', true],
      ['emails[not (type eq "work") and primary eq true]', false],
      ['EMAILS[TYPE EQ "WORK"]', true],
      ['not (emails[type eq "other"])', true],
      [`${USER_SCHEMA}:emails[type eq "work"]`, true],
    ]);
  });

  test('single-valued complex and extension attributes', () => {
    check('User', [
      ['name[givenName eq "barbara" and familyName sw "J"]', true],
      ['name[givenName eq "Babs"]', false],
      [`${ENTERPRISE_USER_SCHEMA}:manager[displayName sw "John"]`, true],
      [`${ENTERPRISE_USER_SCHEMA}:manager[displayName sw "Mary"]`, false],
    ]);
  });

  test('Group members', () => {
    check('Group', [
      ['members[type eq "User" and value eq "2819c223-7f76-453a-919d-413861904646"]', true],
      ['members[type eq "Group" and value eq "2819c223-7f76-453a-919d-413861904646"]', false],
      ['members.value eq "902c246b-6245-4190-8e05-00816be7344a"', true],
      ['members eq "902c246b-6245-4190-8e05-00816be7344a"', true],
      ['members pr', true],
      ['displayName eq "tour guides"', true],
    ]);
    assert.equal(m('members pr', 'Group', { ...group, members: [] }), false);
    assert.equal(m('members[type eq "User"]', 'Group', { id: 'g' }), false);
  });
});

describe('logic', () => {
  test('and / or / not and precedence: a or b and c = a or (b and c)', () => {
    const a = 'userName eq "bjensen"'; // true
    const b = 'active eq false'; // false
    const c = 'title pr'; // false
    check('User', [
      [`${a} or ${b} and ${c}`, true],
      [`${a} or (${b} and ${c})`, true],
      [`(${a} or ${b}) and ${c}`, false],
      [`${b} and ${c} or ${a}`, true],
      [`${b} and (${c} or ${a})`, false],
      [`not (${a})`, false],
      [`not (${b})`, true],
      [`not (${a}) or not (${b}) and ${a}`, true],
      [`not (${a} or ${b})`, false],
      [`not (not (${a}))`, true],
      [`${a} and not (${b}) and not (${c})`, true],
      ['userType ne "Employee" and not (emails co "x")', false],
      ['userType ne "Employee" and not (emails co "xyz")', true],
    ]);
  });
});

describe('schema URNs, extensions and case-insensitive keys', () => {
  test('fully qualified and extension attributes', () => {
    check('User', [
      [`${USER_SCHEMA}:userName sw "J"`, false],
      [`${USER_SCHEMA}:userName sw "b"`, true],
      [`${ENTERPRISE_USER_SCHEMA}:employeeNumber eq "701984"`, true],
      ['employeeNumber eq "701985"', false],
      [`${ENTERPRISE_USER_SCHEMA}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true],
      [`${ENTERPRISE_USER_SCHEMA}:manager eq "26118915-6090-4610-87E4-49D8CA9F808D"`, true],
      [`${ENTERPRISE_USER_SCHEMA}:manager.displayName co "smith"`, true],
    ]);
  });

  test('resource keys are looked up case-insensitively', () => {
    const oddlyCased: JsonObject = {
      id: 'x',
      USERNAME: 'Alice',
      Name: { GivenName: 'Al' },
      Emails: [{ Value: 'a@x.org', TYPE: 'work' }],
      [ENTERPRISE_USER_SCHEMA.toUpperCase()]: { EmployeeNumber: '7' },
      META: { LastModified: '2020-01-01T00:00:00Z' },
    };
    for (const text of [
      'userName eq "alice"',
      'name.givenName eq "al"',
      'emails[type eq "work" and value ew ".org"]',
      'employeeNumber eq "7"',
      'meta.lastModified lt "2021-01-01T00:00:00Z"',
    ]) {
      assert.equal(m(text, 'User', oddlyCased), true, text);
    }
  });

  test('stored values of the wrong JSON type never match', () => {
    const odd: JsonObject = { id: 'x', userName: 5, active: 'true', name: 'Barbara', emails: ['a@x'] };
    for (const [text, expected] of [
      ['userName eq "5"', false],
      ['userName ne "5"', true],
      ['active eq true', false],
      ['name.givenName eq "Barbara"', false],
      ['emails.value eq "a@x"', false],
    ] as const) {
      assert.equal(m(text, 'User', odd), expected, text);
    }
  });
});

describe('root (lenient) queries', () => {
  function root(text: string, resource: JsonObject): boolean {
    const type = String((resource.meta as JsonObject).resourceType) as keyof typeof types;
    return matches(resource, bound(text, type, true));
  }

  test('meta.resourceType narrows; attributes a type lacks have no value', () => {
    const all = [bjensen, group, device];
    const ids = (text: string) => all.filter((r) => root(text, r)).map((r) => r.id);
    assert.deepEqual(ids('meta.resourceType eq "Group"'), [group.id]);
    assert.deepEqual(ids('meta.resourceType eq "group"'), []); // resourceType is caseExact
    assert.deepEqual(ids('userName eq "bjensen"'), [bjensen.id]);
    assert.deepEqual(ids('userName pr'), [bjensen.id]);
    assert.deepEqual(ids('not (userName pr)'), [group.id, device.id]);
    assert.deepEqual(ids('userName ne "bjensen"'), [group.id, device.id]);
    assert.deepEqual(ids('not (userName eq "bjensen")'), [group.id, device.id]);
    assert.deepEqual(ids('userName eq null'), [group.id, device.id]);
    assert.deepEqual(ids('displayName sw "T" or userName sw "b"'), [bjensen.id, group.id]);
    assert.deepEqual(ids('members[type eq "User"] or emails[type eq "work"]'), [bjensen.id, group.id]);
    assert.deepEqual(ids('cores gt 4 or employeeNumber eq "701984"'), [bjensen.id, device.id]);
    assert.deepEqual(ids('id pr'), [bjensen.id, group.id, device.id]);
  });
});

describe('size limits', () => {
  test('the largest filter the parser accepts binds and evaluates', () => {
    const text = Array.from(
      { length: 333 },
      (_, i) => `(id eq "${i}" and not (emails[value eq "x${i}@example.com"]))`,
    ).join(' or ');
    const f = bound(text, 'User');
    assert.equal(matches({ id: '332', emails: [{ value: 'y@example.com' }] }, f), true);
    assert.equal(matches({ id: '332', emails: [{ value: 'x332@example.com' }] }, f), false);
    assert.equal(matches({ id: '333' }, f), false);
  });
});

describe('const', () => {
  test('const nodes evaluate to their value', () => {
    assert.equal(matches(bjensen, { op: 'const', value: true }), true);
    assert.equal(matches(bjensen, { op: 'const', value: false }), false);
  });
});
