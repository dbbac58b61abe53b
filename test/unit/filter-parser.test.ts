import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ScimError } from '../../src/scim/errors.ts';
import type { AttrPath, CompareOp, Filter, FilterValue } from '../../src/scim/filter/ast.ts';
import {
  formatFilter,
  MAX_FILTER_DEPTH,
  MAX_FILTER_TERMS,
  parseFilter,
  parsePath,
} from '../../src/scim/filter/parser.ts';
import { createCoreRegistry } from '../../src/scim/schema/registry.ts';
import { ENTERPRISE_USER_SCHEMA, USER_SCHEMA } from '../../src/scim/schema/core-schemas.ts';

const schemaUris = createCoreRegistry().schemaUris();

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

const cmp = (op: CompareOp, attr: string, value: FilterValue, more: Partial<AttrPath> = {}): Filter => ({
  op,
  path: { ...more, attr },
  value,
});

describe('parseFilter: comparisons', () => {
  test('every operator, lower-cased in the tree whatever the input case', () => {
    for (const op of ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le'] as const) {
      assert.deepEqual(parseFilter(`userName ${op} "x"`), cmp(op, 'userName', 'x'));
      assert.deepEqual(parseFilter(`userName ${op.toUpperCase()} "x"`), cmp(op, 'userName', 'x'));
    }
    assert.deepEqual(parseFilter('userName Eq "BJensen"'), cmp('eq', 'userName', 'BJensen'));
    assert.deepEqual(parseFilter('title pr'), { op: 'pr', path: { attr: 'title' } });
    assert.deepEqual(parseFilter('title PR'), { op: 'pr', path: { attr: 'title' } });
  });

  test('attribute names are kept as written', () => {
    assert.deepEqual(parseFilter('UserName eq "a"'), cmp('eq', 'UserName', 'a'));
  });

  test('sub-attributes and $ref', () => {
    assert.deepEqual(
      parseFilter('name.givenName sw "Bar"'),
      cmp('sw', 'name', 'Bar', { subAttr: 'givenName' }),
    );
    assert.deepEqual(
      parseFilter('members.$ref co "/Users/"'),
      cmp('co', 'members', '/Users/', { subAttr: '$ref' }),
    );
    assert.deepEqual(parseFilter('a-b_c$1 eq 1'), cmp('eq', 'a-b_c$1', 1));
  });

  test('values: strings with every JSON escape', () => {
    assert.deepEqual(
      parseFilter(String.raw`displayName eq "q\" b\\ s\/ \b\f\n\r\t \u00e9\u20AC \ud83d\ude00"`),
      cmp('eq', 'displayName', 'q" b\\ s/ \b\f\n\r\t é€ 😀'),
    );
    assert.deepEqual(parseFilter('displayName eq ""'), cmp('eq', 'displayName', ''));
    assert.deepEqual(
      parseFilter('displayName eq "a and b or (c)"'),
      cmp('eq', 'displayName', 'a and b or (c)'),
    );
  });

  test('values: JSON numbers', () => {
    const cases: [string, number][] = [
      ['0', 0],
      ['42', 42],
      ['-7', -7],
      ['3.25', 3.25],
      ['-0.5', -0.5],
      ['1e3', 1000],
      ['2.5E-2', 0.025],
      ['1e+2', 100],
    ];
    for (const [text, n] of cases) assert.deepEqual(parseFilter(`age gt ${text}`), cmp('gt', 'age', n), text);
  });

  test('values: true, false and null, case-insensitive', () => {
    assert.deepEqual(parseFilter('active eq true'), cmp('eq', 'active', true));
    assert.deepEqual(parseFilter('active eq FALSE'), cmp('eq', 'active', false));
    assert.deepEqual(parseFilter('active eq True'), cmp('eq', 'active', true));
    assert.deepEqual(parseFilter('nickName eq Null'), cmp('eq', 'nickName', null));
  });

  test('whitespace: extra spaces and tabs between tokens', () => {
    assert.deepEqual(parseFilter('  userName \t eq\t"a"  '), cmp('eq', 'userName', 'a'));
    assert.deepEqual(parseFilter('( userName eq "a" )'), cmp('eq', 'userName', 'a'));
  });
});

describe('parseFilter: logic', () => {
  const a = cmp('eq', 'a', 1);
  const b = cmp('eq', 'b', 2);
  const c = cmp('eq', 'c', 3);

  test('and binds tighter than or: a or b and c = a or (b and c)', () => {
    const expected: Filter = { op: 'or', left: a, right: { op: 'and', left: b, right: c } };
    assert.deepEqual(parseFilter('a eq 1 or b eq 2 and c eq 3'), expected);
    assert.deepEqual(parseFilter('a eq 1 or (b eq 2 and c eq 3)'), expected);
    assert.deepEqual(parseFilter('a eq 1 and b eq 2 or c eq 3'), {
      op: 'or',
      left: { op: 'and', left: a, right: b },
      right: c,
    });
  });

  test('parentheses override precedence', () => {
    assert.deepEqual(parseFilter('(a eq 1 or b eq 2) and c eq 3'), {
      op: 'and',
      left: { op: 'or', left: a, right: b },
      right: c,
    });
  });

  test('and/or chains are left-associative', () => {
    assert.deepEqual(parseFilter('a eq 1 and b eq 2 and c eq 3'), {
      op: 'and',
      left: { op: 'and', left: a, right: b },
      right: c,
    });
    assert.deepEqual(parseFilter('a eq 1 or b eq 2 or c eq 3'), {
      op: 'or',
      left: { op: 'or', left: a, right: b },
      right: c,
    });
  });

  test('not takes a parenthesised filter and binds tighter than and', () => {
    assert.deepEqual(parseFilter('not (a eq 1)'), { op: 'not', filter: a });
    assert.deepEqual(parseFilter('NOT(a eq 1 or b eq 2) And c eq 3'), {
      op: 'and',
      left: { op: 'not', filter: { op: 'or', left: a, right: b } },
      right: c,
    });
    assert.deepEqual(parseFilter('not (not (a eq 1))'), { op: 'not', filter: { op: 'not', filter: a } });
  });

  test('keywords are case-insensitive', () => {
    assert.deepEqual(parseFilter('a eq 1 OR b eq 2 AnD c eq 3'), parseFilter('a eq 1 or b eq 2 and c eq 3'));
  });

  test('digest examples parse', () => {
    assert.deepEqual(parseFilter('userType ne "Employee" and not (emails co "x")'), {
      op: 'and',
      left: cmp('ne', 'userType', 'Employee'),
      right: { op: 'not', filter: cmp('co', 'emails', 'x') },
    });
    assert.deepEqual(parseFilter('meta.lastModified gt "2011-05-13T04:42:34Z"'), {
      op: 'gt',
      path: { attr: 'meta', subAttr: 'lastModified' },
      value: '2011-05-13T04:42:34Z',
    });
  });
});

describe('parseFilter: value paths', () => {
  test('emails[type eq "work" and value co "@example.com"]', () => {
    assert.deepEqual(parseFilter('emails[type eq "work" and value co "@example.com"]'), {
      op: 'valuePath',
      path: { attr: 'emails' },
      filter: { op: 'and', left: cmp('eq', 'type', 'work'), right: cmp('co', 'value', '@example.com') },
    });
  });

  test('value path combined with other terms and inside not', () => {
    assert.deepEqual(parseFilter('userType eq "E" and not (emails[primary eq true]) or title pr'), {
      op: 'or',
      left: {
        op: 'and',
        left: cmp('eq', 'userType', 'E'),
        right: {
          op: 'not',
          filter: { op: 'valuePath', path: { attr: 'emails' }, filter: cmp('eq', 'primary', true) },
        },
      },
      right: { op: 'pr', path: { attr: 'title' } },
    });
  });

  test('logic inside a value path, with parentheses and not', () => {
    assert.deepEqual(parseFilter('addresses[not (type eq "work") and (region eq "x" or postalCode pr)]'), {
      op: 'valuePath',
      path: { attr: 'addresses' },
      filter: {
        op: 'and',
        left: { op: 'not', filter: cmp('eq', 'type', 'work') },
        right: {
          op: 'or',
          left: cmp('eq', 'region', 'x'),
          right: { op: 'pr', path: { attr: 'postalCode' } },
        },
      },
    });
  });

  test('URN-qualified value path', () => {
    assert.deepEqual(parseFilter(`${USER_SCHEMA}:emails[type eq "work"]`, { schemaUris }), {
      op: 'valuePath',
      path: { uri: USER_SCHEMA, attr: 'emails' },
      filter: cmp('eq', 'type', 'work'),
    });
  });

  test('a value path nested in a value path is an error', () => {
    rejects(
      () => parseFilter('emails[type[value pr]]'),
      'invalidFilter',
      'Nested value filter "type[" at position 11 in filter: emails[type[value pr]]',
    );
    rejects(
      () => parseFilter('emails[not (x[y pr])]'),
      'invalidFilter',
      /^Nested value filter "x\[" at position 13/,
    );
  });
});

describe('parseFilter: schema URNs', () => {
  const manager = `${ENTERPRISE_USER_SCHEMA}:manager.value`;

  test('the enterprise manager path with dots in the URN', () => {
    const expected = cmp('eq', 'manager', 'x', { uri: ENTERPRISE_USER_SCHEMA, subAttr: 'value' });
    assert.deepEqual(parseFilter(`${manager} eq "x"`, { schemaUris }), expected);
    // Without known URNs the split is at the last colon, which gives the same answer.
    assert.deepEqual(parseFilter(`${manager} eq "x"`), expected);
  });

  test('core-schema qualified attribute', () => {
    assert.deepEqual(
      parseFilter(`${USER_SCHEMA}:userName sw "J"`, { schemaUris }),
      cmp('sw', 'userName', 'J', { uri: USER_SCHEMA }),
    );
    assert.deepEqual(parseFilter(`${USER_SCHEMA}:name.familyName pr`, { schemaUris }), {
      op: 'pr',
      path: { uri: USER_SCHEMA, attr: 'name', subAttr: 'familyName' },
    });
  });

  test('known URNs match case-insensitively, keep the case as written and prefer the longest', () => {
    const upper = ENTERPRISE_USER_SCHEMA.toUpperCase();
    assert.deepEqual(
      parseFilter(`${upper}:employeeNumber eq "1"`, { schemaUris }),
      cmp('eq', 'employeeNumber', '1', { uri: upper }),
    );
    const uris = ['urn:ex:a', 'urn:ex:a:b'];
    assert.deepEqual(
      parseFilter('urn:ex:a:b:c eq 1', { schemaUris: uris }),
      cmp('eq', 'c', 1, { uri: 'urn:ex:a:b' }),
    );
    // The longest known prefix wins even when the remainder would not be an attribute of it.
    rejects(
      () => parseFilter('urn:ex:a:b:c:d eq 1', { schemaUris: uris }),
      'invalidFilter',
      'Invalid attribute path "urn:ex:a:b:c:d" at position 0 in filter: urn:ex:a:b:c:d eq 1',
    );
  });

  test('an unknown URN falls back to the last colon', () => {
    assert.deepEqual(
      parseFilter('urn:other:2.0:X:attr eq 1', { schemaUris }),
      cmp('eq', 'attr', 1, { uri: 'urn:other:2.0:X' }),
    );
  });

  test('a bare schema URN is not a filter attribute', () => {
    rejects(
      () => parseFilter(`${ENTERPRISE_USER_SCHEMA} pr`, { schemaUris }),
      'invalidFilter',
      `Expected an attribute name after schema URN "${ENTERPRISE_USER_SCHEMA}" at position 0 in filter: ${ENTERPRISE_USER_SCHEMA} pr`,
    );
  });
});

describe('parseFilter: errors', () => {
  test('unknown operator names the operator and its position', () => {
    rejects(
      () => parseFilter('userName regex "x"'),
      'invalidFilter',
      'Unknown operator "regex" at position 9 in filter: userName regex "x"',
    );
  });

  test('missing or unquoted value', () => {
    rejects(
      () => parseFilter('userName eq bjensen'),
      'invalidFilter',
      'Expected a value after "eq" at position 12, found "bjensen" (values are "quoted strings", numbers, true, false or null) in filter: userName eq bjensen',
    );
    rejects(
      () => parseFilter('userName eq'),
      'invalidFilter',
      /^Expected a value after "eq" at position 11, found end of input/,
    );
    rejects(
      () => parseFilter('userName eq )'),
      'invalidFilter',
      /^Expected a value after "eq" at position 12, found "\)"/,
    );
  });

  test('missing operator', () => {
    rejects(
      () => parseFilter('userName'),
      'invalidFilter',
      'Expected an operator after "userName" at position 8, found end of input in filter: userName',
    );
    rejects(
      () => parseFilter('userName "x"'),
      'invalidFilter',
      /^Expected an operator after "userName" at position 9, found "x"/,
    );
  });

  test('unterminated strings and bad escapes', () => {
    rejects(
      () => parseFilter('userName eq "abc'),
      'invalidFilter',
      'Unterminated string starting at position 12 in filter: userName eq "abc',
    );
    rejects(
      () => parseFilter('userName eq "abc\\'),
      'invalidFilter',
      /^Unterminated string starting at position 12/,
    );
    rejects(
      () => parseFilter('userName eq "a\\qb"'),
      'invalidFilter',
      /^Invalid escape "\\q" at position 14/,
    );
    rejects(
      () => parseFilter('userName eq "\\u12G4"'),
      'invalidFilter',
      /^Invalid \\u escape "\\u12G4" at position 13/,
    );
    rejects(
      () => parseFilter("userName eq 'x'"),
      'invalidFilter',
      /^Unexpected character "'" at position 12/,
    );
  });

  test('bad numbers', () => {
    for (const [text, bad, pos] of [
      ['age eq 01', '01', 7],
      ['age eq 1.', '1.', 7],
      ['age eq -', '-', 7],
      ['age eq 1e', '1e', 7],
      ['age eq 12abc', '12abc', 7],
    ] as const) {
      rejects(
        () => parseFilter(text),
        'invalidFilter',
        `Invalid number "${bad}" at position ${pos} in filter: ${text}`,
      );
    }
    rejects(
      () => parseFilter('age eq .5'),
      'invalidFilter',
      /^Expected a value after "eq" at position 7, found "\.5"/,
    );
  });

  test('unbalanced parentheses and brackets', () => {
    rejects(
      () => parseFilter('(userName eq "a"'),
      'invalidFilter',
      'Missing ")" for "(" at position 0: found end of input at position 16 in filter: (userName eq "a"',
    );
    rejects(() => parseFilter('not (a pr'), 'invalidFilter', /^Missing "\)" for "\(" at position 4/);
    rejects(
      () => parseFilter('emails[type eq "work"'),
      'invalidFilter',
      /^Missing "\]" for "\[" at position 6: found end of input at position 21/,
    );
    rejects(
      () => parseFilter('emails[type eq "work")'),
      'invalidFilter',
      /^Missing "\]" for "\[" at position 6: found "\)" at position 21/,
    );
    rejects(
      () => parseFilter('userName eq "a")'),
      'invalidFilter',
      'Unexpected ")" at position 15 after end of filter: userName eq "a")',
    );
    rejects(
      () => parseFilter('()'),
      'invalidFilter',
      /^Expected an attribute path or "\(" at position 1, found "\)"/,
    );
  });

  test('not without parentheses', () => {
    rejects(
      () => parseFilter('not userName eq "a"'),
      'invalidFilter',
      /^Expected "\(" after "not" at position 4, found "userName"/,
    );
  });

  test('dangling logic and trailing tokens', () => {
    rejects(
      () => parseFilter('a pr and'),
      'invalidFilter',
      /^Expected an attribute path or "\(" at position 8, found end of input/,
    );
    rejects(
      () => parseFilter('a pr or or b pr'),
      'invalidFilter',
      'Unknown operator "b" at position 11 in filter: a pr or or b pr',
    );
    rejects(
      () => parseFilter('a pr b pr'),
      'invalidFilter',
      'Unexpected "b" at position 5 after end of filter: a pr b pr',
    );
    rejects(
      () => parseFilter('a eq "x" "y"'),
      'invalidFilter',
      /^Unexpected "y" at position 9 after end of filter/,
    );
  });

  test('empty filter', () => {
    rejects(() => parseFilter(''), 'invalidFilter', 'Empty filter in filter: ');
    rejects(() => parseFilter('   '), 'invalidFilter', /^Empty filter/);
  });

  test('invalid attribute paths', () => {
    rejects(
      () => parseFilter('name.givenName.x eq "a"'),
      'invalidFilter',
      /^Invalid attribute path "name\.givenName\.x" at position 0/,
    );
    rejects(
      () => parseFilter('name. eq "a"'),
      'invalidFilter',
      /^Invalid attribute path "name\." at position 0/,
    );
    rejects(() => parseFilter(':x eq "a"'), 'invalidFilter', /^Invalid attribute path ":x" at position 0/);
    rejects(() => parseFilter('_x eq "a"'), 'invalidFilter', /^Invalid attribute path "_x" at position 0/);
    rejects(() => parseFilter('x eq "a" and 3y pr'), 'invalidFilter', /^Invalid number "3y" at position 13/);
    rejects(() => parseFilter('émail pr'), 'invalidFilter', /^Unexpected character "é" at position 0/);
    rejects(
      () => parseFilter('emails[type eq "w"].value eq "x"'),
      'invalidFilter',
      /^Unexpected "\.value" at position 19 after end of filter/,
    );
  });

  test(`nesting deeper than ${MAX_FILTER_DEPTH} levels is rejected, not a stack overflow`, () => {
    const nest = (n: number) => `${'('.repeat(n)}a pr${')'.repeat(n)}`;
    assert.deepEqual(parseFilter(nest(MAX_FILTER_DEPTH)), { op: 'pr', path: { attr: 'a' } });
    rejects(
      () => parseFilter(nest(MAX_FILTER_DEPTH + 1)),
      'invalidFilter',
      /^Filter nested deeper than 50 levels at position 50/,
    );
    rejects(() => parseFilter('('.repeat(200_000)), 'invalidFilter', /^Filter nested deeper than 50 levels/);
    rejects(
      () => parseFilter('not ('.repeat(100_000)),
      'invalidFilter',
      /^Filter nested deeper than 50 levels/,
    );
  });

  test(`more than ${MAX_FILTER_TERMS} terms is rejected`, () => {
    const chain = (n: number) => Array.from({ length: n }, (_, i) => `id eq "${i}"`).join(' or ');
    const ok = parseFilter(chain(MAX_FILTER_TERMS));
    assert.equal(ok.op, 'or');
    rejects(
      () => parseFilter(chain(MAX_FILTER_TERMS + 1)),
      'invalidFilter',
      /^Filter has more than 1000 terms at position/,
    );
  });

  test('details quote at most 300 characters of a long input', () => {
    const text = `userName eq "${'x'.repeat(400)}" bogus`;
    rejects(
      () => parseFilter(text),
      'invalidFilter',
      `Unexpected "bogus" at position 415 after end of filter: ${text.slice(0, 300)}… (${text.length} characters)`,
    );
  });

  test('long inputs parse in linear time', () => {
    const big = 'x'.repeat(2_000_000);
    const started = Date.now();
    assert.deepEqual(parseFilter(`displayName eq "${big}"`), cmp('eq', 'displayName', big));
    rejects(
      () => parseFilter(`displayName eq "${big}`),
      'invalidFilter',
      /^Unterminated string starting at position 15/,
    );
    assert.ok(Date.now() - started < 5000);
  });
});

describe('parsePath', () => {
  test('attribute, sub-attribute, URN-qualified', () => {
    assert.deepEqual(parsePath('members'), { path: { attr: 'members' } });
    assert.deepEqual(parsePath('name.familyName'), { path: { attr: 'name', subAttr: 'familyName' } });
    assert.deepEqual(parsePath(`${ENTERPRISE_USER_SCHEMA}:employeeNumber`, { schemaUris }), {
      path: { uri: ENTERPRISE_USER_SCHEMA, attr: 'employeeNumber' },
    });
    assert.deepEqual(parsePath(`${ENTERPRISE_USER_SCHEMA}:manager`, { schemaUris }), {
      path: { uri: ENTERPRISE_USER_SCHEMA, attr: 'manager' },
    });
    assert.deepEqual(parsePath(`${ENTERPRISE_USER_SCHEMA}:manager.value`), {
      path: { uri: ENTERPRISE_USER_SCHEMA, attr: 'manager', subAttr: 'value' },
    });
  });

  test('a bare known schema URN names the whole extension', () => {
    assert.deepEqual(parsePath(ENTERPRISE_USER_SCHEMA, { schemaUris }), {
      path: { uri: ENTERPRISE_USER_SCHEMA, attr: '' },
    });
    // Without the known URNs it is split at the last colon (the binder recognises it).
    assert.deepEqual(parsePath(ENTERPRISE_USER_SCHEMA), {
      path: { uri: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0', attr: 'User' },
    });
  });

  test('value paths with and without a trailing sub-attribute', () => {
    assert.deepEqual(parsePath('addresses[type eq "work"]'), {
      path: { attr: 'addresses' },
      valueFilter: cmp('eq', 'type', 'work'),
    });
    assert.deepEqual(parsePath('members[value eq "2819c223-7f76-453a-919d-413861904646"].displayName'), {
      path: { attr: 'members' },
      valueFilter: cmp('eq', 'value', '2819c223-7f76-453a-919d-413861904646'),
      subAttr: 'displayName',
    });
    assert.deepEqual(
      parsePath(`${USER_SCHEMA}:emails[type eq "work" and primary eq TRUE].value`, { schemaUris }),
      {
        path: { uri: USER_SCHEMA, attr: 'emails' },
        valueFilter: { op: 'and', left: cmp('eq', 'type', 'work'), right: cmp('eq', 'primary', true) },
        subAttr: 'value',
      },
    );
  });

  test('path syntax errors are invalidPath', () => {
    rejects(() => parsePath(''), 'invalidPath', 'Empty path in path: ');
    rejects(
      () => parsePath('name..x'),
      'invalidPath',
      'Invalid attribute path "name..x" at position 0 in path: name..x',
    );
    rejects(() => parsePath('a.b.c'), 'invalidPath', /^Invalid attribute path "a\.b\.c" at position 0/);
    rejects(
      () => parsePath('[type eq "x"]'),
      'invalidPath',
      /^Expected an attribute path at position 0, found "\["/,
    );
    rejects(
      () => parsePath('members[value eq "x"'),
      'invalidPath',
      'Missing "]" for "[" at position 7: found end of input at position 20 in path: members[value eq "x"',
    );
    rejects(
      () => parsePath('emails[type eq "w"] x'),
      'invalidPath',
      'Unexpected "x" at position 20 after end of path: emails[type eq "w"] x',
    );
    rejects(
      () => parsePath('emails[type eq "w"].'),
      'invalidPath',
      /^Invalid sub-attribute "" after "\]" at position 20/,
    );
    rejects(
      () => parsePath('emails[type eq "w"].a.b'),
      'invalidPath',
      /^Invalid sub-attribute "a\.b" after "\]" at position 20/,
    );
    rejects(
      () => parsePath('emails eq "x"'),
      'invalidPath',
      /^Unexpected "e" at position 7 after end of path/,
    );
    rejects(
      () => parsePath(`${ENTERPRISE_USER_SCHEMA}[x pr]`, { schemaUris }),
      'invalidPath',
      /^A value filter cannot follow a schema URN/,
    );
  });

  test('errors inside the value filter are invalidFilter', () => {
    rejects(
      () => parsePath('emails[type eq'),
      'invalidFilter',
      /^Expected a value after "eq" at position 14, found end of input/,
    );
    rejects(
      () => parsePath('emails[type regex "x"]'),
      'invalidFilter',
      /^Unknown operator "regex" at position 12 in path: /,
    );
    rejects(
      () => parsePath('emails[type[value pr]]'),
      'invalidFilter',
      /^Nested value filter "type\[" at position 11/,
    );
    rejects(
      () => parsePath('emails[]'),
      'invalidFilter',
      /^Expected an attribute path or "\(" at position 7, found "\]"/,
    );
  });
});

describe('formatFilter', () => {
  test('canonical text', () => {
    assert.equal(
      formatFilter(parseFilter('UserName EQ "a\\"b" OR (x pr AND NOT (y Gt 1.5e1)) and emails[Type eq "w"]')),
      'UserName eq "a\\"b" or x pr and not (y gt 15) and emails[Type eq "w"]',
    );
    assert.equal(formatFilter(parseFilter('(a pr or b pr) and c pr')), '(a pr or b pr) and c pr');
    assert.equal(formatFilter(parseFilter('a pr and (b pr and c pr)')), 'a pr and (b pr and c pr)');
    assert.equal(formatFilter(parseFilter('a pr or (b pr or c pr)')), 'a pr or (b pr or c pr)');
    assert.equal(formatFilter(cmp('eq', 'x', -0)), 'x eq -0');
    assert.equal(
      formatFilter(parseFilter(`${ENTERPRISE_USER_SCHEMA}:manager.value eq null`)),
      `${ENTERPRISE_USER_SCHEMA}:manager.value eq null`,
    );
  });

  const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_$-]{0,6}$/).filter((s) => s.toLowerCase() !== 'not');
  const attrName = fc.oneof(name, fc.constant('$ref'));
  const uri = fc.oneof(
    fc.constantFrom(USER_SCHEMA, ENTERPRISE_USER_SCHEMA),
    fc.stringMatching(/^urn(:[A-Za-z0-9.-]{1,5}){1,4}$/),
  );
  const path: fc.Arbitrary<AttrPath> = fc
    .record({ uri, attr: attrName, subAttr: attrName }, { requiredKeys: ['attr'], noNullPrototype: true })
    .map((p) => p);
  const value: fc.Arbitrary<FilterValue> = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.string(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
  );
  const ops = fc.constantFrom<CompareOp>('eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le');
  const leaf: fc.Arbitrary<Filter> = fc.oneof(
    fc.record({ op: ops, path, value }, { noNullPrototype: true }),
    fc.record({ op: fc.constant('pr' as const), path }, { noNullPrototype: true }),
  );
  const tree = (allowValuePath: boolean): fc.Arbitrary<Filter> =>
    fc.letrec<{ f: Filter }>((tie): { f: fc.Arbitrary<Filter> } => ({
      f: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.record(
          { op: fc.constantFrom('and' as const, 'or' as const), left: tie('f'), right: tie('f') },
          { noNullPrototype: true },
        ),
        fc.record({ op: fc.constant('not' as const), filter: tie('f') }, { noNullPrototype: true }),
        ...(allowValuePath
          ? [
              fc.record(
                { op: fc.constant('valuePath' as const), path, filter: tree(false) },
                { noNullPrototype: true },
              ),
            ]
          : []),
      ),
    })).f;

  test('property: parseFilter(formatFilter(f)) deep-equals f', () => {
    fc.assert(
      fc.property(tree(true), (f) => {
        assert.deepEqual(parseFilter(formatFilter(f)), f);
      }),
      { numRuns: 500 },
    );
  });

  test('property: formatting is a fixed point of parsing', () => {
    fc.assert(
      fc.property(tree(true), (f) => {
        const text = formatFilter(f);
        assert.equal(
          formatFilter(parseFilter(text, { schemaUris: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA] })),
          text,
        );
      }),
      { numRuns: 300 },
    );
  });
});
