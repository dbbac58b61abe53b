import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ScimError } from '../../src/scim/errors.ts';
import type { AttrPath, BoundAttr, BoundFilter, Filter } from '../../src/scim/filter/ast.ts';
import { bindFilter, bindPatchPath, parseDateTime } from '../../src/scim/filter/bind.ts';
import { parseFilter, parsePath } from '../../src/scim/filter/parser.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';
import { createCoreRegistry, findSubAttribute } from '../../src/scim/schema/registry.ts';

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
    { name: 'trusted', type: 'boolean' },
    { name: 'site', type: 'reference', referenceTypes: ['external'] },
    { name: 'tags', multiValued: true },
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
const User = registry.resourceType('User')!;
const Group = registry.resourceType('Group')!;
const Device = registry.resourceType('Device')!;
const schemaUris = registry.schemaUris();

function bind(text: string, rt = User, lenient = false): BoundFilter {
  return bindFilter(registry, rt, parseFilter(text, { schemaUris }), { lenient });
}

function at(rt: typeof User, path: AttrPath): BoundAttr {
  const found = registry.findAttribute(rt, path);
  assert.ok(found, `test setup: ${path.attr}`);
  return found;
}

function rejects(fn: () => unknown, scimType: string, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ScimError, `expected a ScimError, got ${String(e)}`);
    assert.equal(e.status, 400);
    assert.equal(e.scimType, scimType);
    if (typeof message === 'string') assert.equal(e.detail, message);
    else assert.match(e.detail, message);
    return true;
  });
}

describe('bindFilter: attribute resolution', () => {
  test('core attribute, names case-insensitive, canonical definition attached', () => {
    const f = bind('USERNAME eq "bjensen"');
    assert.deepEqual(f, { op: 'eq', attr: at(User, { attr: 'userName' }), value: 'bjensen' });
    assert.equal(f.op === 'eq' && f.attr.attribute.name, 'userName');
    assert.equal(f.op === 'eq' && f.attr.location, 'core');
    assert.equal(f.op === 'eq' && f.attr.schema, USER_SCHEMA);
  });

  test('sub-attribute', () => {
    const f = bind('name.GIVENNAME sw "Bar"');
    assert.ok(f.op === 'sw');
    assert.equal(f.attr.attribute.name, 'name');
    assert.equal(f.attr.sub?.name, 'givenName');
  });

  test('URN-qualified core attribute', () => {
    assert.deepEqual(bind(`${USER_SCHEMA}:userName sw "J"`), bind('userName sw "J"'));
  });

  test('enterprise extension: qualified, unqualified, manager.value with dots in the URN', () => {
    const employee = bind(`${ENTERPRISE_USER_SCHEMA}:employeeNumber eq "701984"`);
    assert.deepEqual(employee, bind('employeeNumber eq "701984"'));
    assert.ok(employee.op === 'eq');
    assert.equal(employee.attr.location, 'extension');
    assert.equal(employee.attr.schema, ENTERPRISE_USER_SCHEMA);
    const manager = bind(`${ENTERPRISE_USER_SCHEMA}:manager.value eq "26118915"`);
    assert.ok(manager.op === 'eq');
    assert.equal(manager.attr.location, 'extension');
    assert.equal(manager.attr.attribute.name, 'manager');
    assert.equal(manager.attr.sub?.name, 'value');
    // Also when parsed without the known URNs (split at the last colon).
    assert.deepEqual(
      bindFilter(
        registry,
        User,
        parseFilter(`${ENTERPRISE_USER_SCHEMA.toLowerCase()}:Manager.Value eq "26118915"`),
      ),
      manager,
    );
  });

  test('common attributes: id, externalId, meta.*', () => {
    for (const [text, name, sub] of [
      ['id eq "1"', 'id', undefined],
      ['externalId eq "1"', 'externalId', undefined],
      ['meta.resourceType eq "User"', 'meta', 'resourceType'],
      ['META.LASTMODIFIED gt "2011-05-13T04:42:34Z"', 'meta', 'lastModified'],
      [`${USER_SCHEMA}:meta.created lt "2011-05-13T04:42:34Z"`, 'meta', 'created'],
      ['meta.location co "/Users/"', 'meta', 'location'],
    ] as const) {
      const f = bind(text);
      assert.ok('attr' in f && f.op !== 'valuePath');
      assert.equal(f.attr.location, 'common', text);
      assert.equal(f.attr.attribute.name, name, text);
      assert.equal(f.attr.sub?.name, sub, text);
    }
    assert.equal((bind('id pr', Group) as { attr: BoundAttr }).attr.schema, GROUP_SCHEMA);
  });

  test('logic is preserved', () => {
    const a = bind('userName eq "a"');
    const b = bind('title pr');
    const c = bind('active eq true');
    assert.deepEqual(bind('userName eq "a" or title pr and not (active eq true)'), {
      op: 'or',
      left: a,
      right: { op: 'and', left: b, right: { op: 'not', filter: c } },
    });
  });

  test('unknown attribute → invalidFilter naming it', () => {
    rejects(() => bind('foo eq "x"'), 'invalidFilter', 'Unknown attribute "foo" for resource type User');
    rejects(
      () => bind('name.foo eq "x"'),
      'invalidFilter',
      'Unknown attribute "name.foo" for resource type User',
    );
    rejects(
      () => bind('userName.x pr'),
      'invalidFilter',
      'Unknown attribute "userName.x" for resource type User',
    );
    rejects(() => bind('members pr'), 'invalidFilter', 'Unknown attribute "members" for resource type User');
    rejects(
      () => bind('userName pr', Group),
      'invalidFilter',
      'Unknown attribute "userName" for resource type Group',
    );
    rejects(
      () => bind(`${ENTERPRISE_USER_SCHEMA}:employeeNumber eq "1"`, Group),
      'invalidFilter',
      `Unknown attribute "${ENTERPRISE_USER_SCHEMA}:employeeNumber" for resource type Group`,
    );
    rejects(
      () => bind(`${GROUP_SCHEMA}:userName eq "1"`),
      'invalidFilter',
      `Unknown attribute "${GROUP_SCHEMA}:userName" for resource type User`,
    );
    rejects(
      () => bind('title pr or x eq 1'),
      'invalidFilter',
      'Unknown attribute "x" for resource type User',
    );
  });
});

describe('bindFilter: complex attributes without a sub-attribute', () => {
  test('comparison on a multi-valued complex attribute means its value sub-attribute', () => {
    const emails = at(User, { attr: 'emails' });
    assert.deepEqual(bind('emails co "example.org"'), {
      op: 'co',
      attr: { ...emails, sub: findSubAttribute(emails.attribute, 'value') },
      value: 'example.org',
    });
    assert.deepEqual(bind('emails co "example.org"'), bind('emails.value co "example.org"'));
    assert.deepEqual(bind(`${ENTERPRISE_USER_SCHEMA}:manager eq "x"`), bind('manager.value eq "x"'));
  });

  test('pr stays on the complex attribute', () => {
    assert.deepEqual(bind('emails pr'), { op: 'pr', attr: at(User, { attr: 'emails' }) });
    assert.deepEqual(bind('name pr'), { op: 'pr', attr: at(User, { attr: 'name' }) });
  });

  test('a complex attribute without a value sub-attribute needs one', () => {
    rejects(
      () => bind('name eq "x"'),
      'invalidFilter',
      'Complex attribute "name" needs a sub-attribute to be compared with "eq"',
    );
    rejects(() => bind('meta gt "x"'), 'invalidFilter', /^Complex attribute "meta" needs a sub-attribute/);
    rejects(
      () => bind('addresses co "x"'),
      'invalidFilter',
      /^Complex attribute "addresses" needs a sub-attribute/,
    );
  });
});

describe('bindFilter: type checks', () => {
  test('boolean: eq/ne with true/false only', () => {
    assert.deepEqual(bind('active eq true'), { op: 'eq', attr: at(User, { attr: 'active' }), value: true });
    assert.deepEqual(bind('active ne FALSE'), { op: 'ne', attr: at(User, { attr: 'active' }), value: false });
    for (const op of ['gt', 'ge', 'lt', 'le']) {
      rejects(
        () => bind(`active ${op} true`),
        'invalidFilter',
        `"active ${op} true": operator "${op}" is not defined for boolean attributes (attribute type boolean)`,
      );
    }
    for (const op of ['co', 'sw', 'ew']) {
      rejects(
        () => bind(`active ${op} "t"`),
        'invalidFilter',
        /operator "(co|sw|ew)" applies only to string attributes/,
      );
    }
    rejects(
      () => bind('active eq "true"'),
      'invalidFilter',
      '"active eq "true"": a boolean attribute compares only with true or false (attribute type boolean)',
    );
    rejects(
      () => bind('active eq 1'),
      'invalidFilter',
      /a boolean attribute compares only with true or false/,
    );
    rejects(() => bind('emails[primary eq "True"]'), 'invalidFilter', /a boolean attribute compares only/);
  });

  test('binary: no ordering, strings only', () => {
    assert.equal(bind('x509Certificates.value eq "MIIB"').op, 'eq');
    assert.equal(bind('firmware co "AAAA"', Device).op, 'co');
    rejects(
      () => bind('x509Certificates.value gt "a"'),
      'invalidFilter',
      /operator "gt" is not defined for binary attributes/,
    );
    rejects(
      () => bind('firmware le "a"', Device),
      'invalidFilter',
      /operator "le" is not defined for binary attributes/,
    );
    rejects(
      () => bind('firmware eq 1', Device),
      'invalidFilter',
      /a string attribute compares only with a "string"/,
    );
  });

  test('integer and decimal: numbers only, no substring operators', () => {
    for (const op of ['eq', 'ne', 'gt', 'ge', 'lt', 'le']) {
      assert.equal(bind(`cores ${op} 4`, Device).op, op);
      assert.equal(bind(`weight ${op} 1.5`, Device).op, op);
    }
    rejects(
      () => bind('cores eq "4"', Device),
      'invalidFilter',
      '"cores eq "4"": a numeric attribute compares only with a number (attribute type integer)',
    );
    rejects(
      () => bind('weight eq true', Device),
      'invalidFilter',
      /a numeric attribute compares only with a number \(attribute type decimal\)/,
    );
    rejects(
      () => bind('cores co 4', Device),
      'invalidFilter',
      /operator "co" applies only to string attributes \(attribute type integer\)/,
    );
    rejects(
      () => bind('ports[number sw 8]', Device),
      'invalidFilter',
      /operator "sw" applies only to string attributes/,
    );
  });

  test('dateTime: xsd:dateTime strings only; value normalised to UTC ISO form', () => {
    const f = bind('meta.lastModified gt "2011-05-13T04:42:34+02:00"');
    assert.ok(f.op === 'gt');
    assert.equal(f.value, '2011-05-13T02:42:34.000Z');
    const noZone = bind('enrolled ge "2020-01-02T03:04:05.5"', Device);
    assert.ok(noZone.op === 'ge');
    assert.equal(noZone.value, '2020-01-02T03:04:05.500Z');
    for (const bad of ['2011-05-13', 'yesterday', '2011-05-13 04:42:34Z', '2011-13-45T99:00:00Z']) {
      rejects(
        () => bind(`meta.created gt "${bad}"`),
        'invalidFilter',
        `"meta.created gt "${bad}"": a dateTime attribute compares only with an xsd:dateTime string (attribute type dateTime)`,
      );
    }
    rejects(
      () => bind('meta.created eq 1300000000'),
      'invalidFilter',
      /a dateTime attribute compares only with an xsd:dateTime string/,
    );
    rejects(
      () => bind('meta.created co "2011"'),
      'invalidFilter',
      /operator "co" applies only to string attributes \(attribute type dateTime\)/,
    );
  });

  test('parseDateTime: zone-aware, zone-less is UTC', () => {
    assert.equal(parseDateTime('2011-05-13T04:42:34Z'), Date.UTC(2011, 4, 13, 4, 42, 34));
    assert.equal(parseDateTime('2011-05-13T04:42:34'), Date.UTC(2011, 4, 13, 4, 42, 34));
    assert.equal(parseDateTime('2011-05-13T06:42:34.250+02:00'), Date.UTC(2011, 4, 13, 4, 42, 34, 250));
    assert.ok(Number.isNaN(parseDateTime('2011-05-13')));
    assert.ok(Number.isNaN(parseDateTime('Fri, 13 May 2011 04:42:34 GMT')));
  });

  test('string and reference: strings only', () => {
    for (const op of ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']) {
      assert.equal(bind(`userName ${op} "x"`).op, op);
      assert.equal(bind(`profileUrl ${op} "x"`).op, op);
    }
    rejects(
      () => bind('userName eq 1'),
      'invalidFilter',
      '"userName eq 1": a string attribute compares only with a "string" (attribute type string)',
    );
    rejects(
      () => bind('userName eq true'),
      'invalidFilter',
      /a string attribute compares only with a "string"/,
    );
    rejects(
      () => bind('profileUrl eq false'),
      'invalidFilter',
      /a string attribute compares only with a "string" \(attribute type reference\)/,
    );
    rejects(() => bind('groups.$ref eq 5'), 'invalidFilter', /attribute type reference/);
  });

  test('null: eq null is "not present", ne null is "present", anything else is an error', () => {
    const nick = at(User, { attr: 'nickName' });
    assert.deepEqual(bind('nickName eq null'), { op: 'not', filter: { op: 'pr', attr: nick } });
    assert.deepEqual(bind('nickName ne null'), { op: 'pr', attr: nick });
    assert.deepEqual(bind('name eq null'), {
      op: 'not',
      filter: { op: 'pr', attr: at(User, { attr: 'name' }) },
    });
    assert.deepEqual(bind('emails ne null'), { op: 'pr', attr: at(User, { attr: 'emails' }) });
    for (const op of ['co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']) {
      rejects(
        () => bind(`nickName ${op} null`),
        'invalidFilter',
        `Operator "${op}" cannot compare with null (only "eq null" and "ne null") for "nickName"`,
      );
    }
  });
});

describe('bindFilter: value paths', () => {
  test('inner paths are sub-attributes of the value-path attribute', () => {
    const emails = at(User, { attr: 'emails' });
    const sub = (name: string): BoundAttr => ({ ...emails, sub: findSubAttribute(emails.attribute, name) });
    assert.deepEqual(bind('EMAILS[Type eq "work" and value co "@example.com"]'), {
      op: 'valuePath',
      attr: emails,
      filter: {
        op: 'and',
        left: { op: 'eq', attr: sub('type'), value: 'work' },
        right: { op: 'co', attr: sub('value'), value: '@example.com' },
      },
    });
    assert.deepEqual(bind('emails[not (primary eq true) or display pr]'), {
      op: 'valuePath',
      attr: emails,
      filter: {
        op: 'or',
        left: { op: 'not', filter: { op: 'eq', attr: sub('primary'), value: true } },
        right: { op: 'pr', attr: sub('display') },
      },
    });
  });

  test('single-valued complex, extension and Group members', () => {
    assert.equal(bind('name[givenName eq "Barbara"]').op, 'valuePath');
    const manager = bind(`${ENTERPRISE_USER_SCHEMA}:manager[displayName sw "J"]`);
    assert.ok(manager.op === 'valuePath');
    assert.equal(manager.attr.location, 'extension');
    const members = bind('members[type eq "User" and value eq "u1"]', Group);
    assert.ok(members.op === 'valuePath' && members.filter.op === 'and' && members.filter.left.op === 'eq');
    assert.equal(members.filter.left.attr.attribute.name, 'members');
    assert.equal(members.filter.left.attr.sub?.name, 'type');
  });

  test('errors inside value paths are invalidFilter', () => {
    rejects(
      () => bind('emails[foo eq "x"]'),
      'invalidFilter',
      'Unknown attribute "foo" in the value filter of "emails" for resource type User',
    );
    rejects(
      () => bind('userName[value eq "x"]'),
      'invalidFilter',
      '"userName" is not a complex attribute and cannot have a value filter',
    );
    rejects(
      () => bind('name.givenName[value eq "x"]'),
      'invalidFilter',
      /^"name\.givenName" is not a complex attribute/,
    );
    rejects(
      () => bind('nope[value eq "x"]'),
      'invalidFilter',
      'Unknown attribute "nope" for resource type User',
    );
    rejects(
      () => bind('emails[value.x eq "x"]'),
      'invalidFilter',
      'Inside the value filter of "emails", "value.x" must be a plain sub-attribute name',
    );
    rejects(
      () => bind(`emails[${USER_SCHEMA}:type eq "x"]`),
      'invalidFilter',
      /must be a plain sub-attribute name/,
    );
    rejects(
      () => bind('emails[primary gt true]'),
      'invalidFilter',
      /operator "gt" is not defined for boolean attributes/,
    );
    const nested: Filter = {
      op: 'valuePath',
      path: { attr: 'emails' },
      filter: { op: 'valuePath', path: { attr: 'type' }, filter: { op: 'pr', path: { attr: 'value' } } },
    };
    rejects(() => bindFilter(registry, User, nested), 'invalidFilter', /^Value filters cannot be nested/);
  });
});

describe('bindFilter: lenient (root) mode', () => {
  test('an attribute the type lacks has no value', () => {
    assert.deepEqual(bind('userName eq "x"', Group, true), { op: 'const', value: false });
    assert.deepEqual(bind('userName pr', Group, true), { op: 'const', value: false });
    assert.deepEqual(bind('userName co "x"', Group, true), { op: 'const', value: false });
    assert.deepEqual(bind('userName gt "x"', Group, true), { op: 'const', value: false });
    // ne is "not eq": true for a missing value, like not (userName eq "x").
    assert.deepEqual(bind('userName ne "x"', Group, true), { op: 'const', value: true });
    assert.deepEqual(bind('not (userName eq "x")', Group, true), {
      op: 'not',
      filter: { op: 'const', value: false },
    });
    assert.deepEqual(bind('userName eq null', Group, true), { op: 'const', value: true });
    assert.deepEqual(bind('userName ne null', Group, true), { op: 'const', value: false });
    assert.deepEqual(bind('emails[type eq "work"]', Group, true), { op: 'const', value: false });
    assert.deepEqual(bind('members[foo eq "x"]', Group, true), {
      op: 'valuePath',
      attr: at(Group, { attr: 'members' }),
      filter: { op: 'const', value: false },
    });
    assert.deepEqual(bind(`${ENTERPRISE_USER_SCHEMA}:employeeNumber eq "1"`, Group, true), {
      op: 'const',
      value: false,
    });
  });

  test('attributes the type has bind normally, and type errors are still errors', () => {
    assert.deepEqual(
      bind('meta.resourceType eq "Group"', Group, true),
      bind('meta.resourceType eq "Group"', Group),
    );
    assert.deepEqual(bind('displayName eq "x" or userName eq "x"', Group, true), {
      op: 'or',
      left: bind('displayName eq "x"', Group),
      right: { op: 'const', value: false },
    });
    rejects(
      () => bind('meta.created gt true', Group, true),
      'invalidFilter',
      /a dateTime attribute compares only/,
    );
  });
});

describe('bindPatchPath', () => {
  const path = (text: string, rt = User) => bindPatchPath(registry, rt, parsePath(text, { schemaUris }));

  test('attribute and sub-attribute', () => {
    assert.deepEqual(path('nickName'), { attr: at(User, { attr: 'nickName' }) });
    assert.deepEqual(path('NAME.familyName'), { attr: at(User, { attr: 'name', subAttr: 'familyName' }) });
    assert.deepEqual(path('members', Group), { attr: at(Group, { attr: 'members' }) });
    assert.deepEqual(path('meta.created').attr.location, 'common');
  });

  test('URN-qualified, including manager with dots in the URN', () => {
    const manager = path(`${ENTERPRISE_USER_SCHEMA}:manager`);
    assert.equal(manager.attr.location, 'extension');
    assert.equal(manager.attr.attribute.name, 'manager');
    assert.equal(manager.attr.sub, undefined);
    assert.deepEqual(path(`${ENTERPRISE_USER_SCHEMA}:manager.value`).attr.sub?.name, 'value');
    assert.deepEqual(path(`${ENTERPRISE_USER_SCHEMA}:employeeNumber`), {
      attr: at(User, { attr: 'employeeNumber' }),
    });
  });

  test('value filter and trailing sub-attribute', () => {
    const emails = at(User, { attr: 'emails' });
    const bound = path('emails[type eq "work"].value');
    assert.deepEqual(bound, {
      attr: emails,
      valueFilter: {
        op: 'eq',
        attr: { ...emails, sub: findSubAttribute(emails.attribute, 'type') },
        value: 'work',
      },
      subAttr: findSubAttribute(emails.attribute, 'value'),
    });
    const members = path('members[value eq "2819c223"]', Group);
    assert.equal(members.attr.attribute.name, 'members');
    assert.equal(members.subAttr, undefined);
    assert.equal(members.valueFilter?.op, 'eq');
  });

  test('a bare extension URN names the whole extension', () => {
    const whole = path(ENTERPRISE_USER_SCHEMA);
    assert.equal(whole.wholeExtension, ENTERPRISE_USER_SCHEMA);
    assert.equal(whole.attr.location, 'extension');
    assert.equal(whole.attr.schema, ENTERPRISE_USER_SCHEMA);
    assert.equal(whole.attr.attribute.type, 'complex');
    assert.equal(whole.attr.attribute.multiValued, false);
    assert.deepEqual(
      whole.attr.attribute.subAttributes?.map((a) => a.name),
      ['employeeNumber', 'costCenter', 'organization', 'division', 'department', 'manager'],
    );
    // Parsed without the known URNs (split at the last colon) and in another case.
    assert.deepEqual(bindPatchPath(registry, User, parsePath(ENTERPRISE_USER_SCHEMA.toUpperCase())), whole);
  });

  test('unknown attributes are invalidPath; problems inside the filter invalidFilter', () => {
    rejects(() => path('nope'), 'invalidPath', 'Unknown attribute "nope" for resource type User');
    rejects(
      () => path('name.nope'),
      'invalidPath',
      'Unknown sub-attribute "nope" of "name" for resource type User',
    );
    rejects(
      () => path('userName', Group),
      'invalidPath',
      'Unknown attribute "userName" for resource type Group',
    );
    rejects(
      () => path('emails[type eq "work"].nope'),
      'invalidPath',
      'Unknown sub-attribute "nope" of "emails" for resource type User',
    );
    rejects(
      () => path('userName[value eq "x"]'),
      'invalidPath',
      '"userName" is not a complex attribute and cannot have a value filter',
    );
    rejects(
      () => path(USER_SCHEMA),
      'invalidPath',
      `"${USER_SCHEMA}" is not a schema extension of resource type User`,
    );
    rejects(
      () => path(ENTERPRISE_USER_SCHEMA, Group),
      'invalidPath',
      /is not a schema extension of resource type Group/,
    );
    rejects(
      () => path('emails[nope eq "x"]'),
      'invalidFilter',
      'Unknown attribute "nope" in the value filter of "emails" for resource type User',
    );
    rejects(
      () => path('emails[primary eq "yes"]'),
      'invalidFilter',
      /a boolean attribute compares only with true or false/,
    );
  });
});
