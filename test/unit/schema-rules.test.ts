/**
 * Schema rules (SchemaDefinition.rules): registration refuses rules naming unknown attributes, and
 * checkRules applies present / equals / not / all / any to the core object and to extension
 * objects, on any resource type.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScimError } from '../../src/scim/errors.ts';
import type { JsonObject } from '../../src/scim/json.ts';
import { checkRules } from '../../src/scim/resource/rules.ts';
import { prepareWrite } from '../../src/scim/resource/validate.ts';
import { SchemaRegistry } from '../../src/scim/schema/registry.ts';

const CORE = 'urn:example:schemas:core:2.0:Thing';
const EXT = 'urn:example:schemas:extension:lock:2.0:Thing';

function registry(): SchemaRegistry {
  const r = new SchemaRegistry();
  r.addSchema({
    id: CORE,
    name: 'Thing',
    attributes: [
      { name: 'kind', type: 'string', caseExact: true },
      { name: 'label', type: 'string' },
      { name: 'serial', type: 'string' },
      { name: 'count', type: 'integer' },
    ],
    rules: [
      {
        if: { equals: 'kind', value: 'Serialised' },
        then: { present: 'serial' },
        detail: 'a Serialised thing needs a serial',
      },
      {
        if: { all: [{ present: 'count' }, { not: { equals: 'count', value: 1 } }] },
        then: {
          any: [
            { equals: 'label', value: 'many' },
            { equals: 'label', value: 'several' },
          ],
        },
        detail: 'a count other than 1 needs the label many or several',
      },
    ],
  });
  r.addSchema({
    id: EXT,
    name: 'Lock',
    attributes: [
      { name: 'locked', type: 'boolean' },
      { name: 'code', type: 'string' },
    ],
    rules: [
      { if: { present: 'code' }, then: { equals: 'locked', value: true }, detail: 'a code needs locked' },
    ],
  });
  r.addResourceType({
    id: 'Thing',
    name: 'Thing',
    endpoint: '/Things',
    description: 'Thing',
    schema: CORE,
    schemaExtensions: [{ schema: EXT, required: false }],
  });
  return r;
}

const reg = registry();
const rt = reg.resourceType('Thing')!;

function refusal(resource: JsonObject): string | undefined {
  try {
    checkRules(reg, rt, resource);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof ScimError);
    assert.equal(err.status, 400);
    assert.equal(err.scimType, 'invalidValue');
    return err.detail;
  }
}

describe('schema rules', () => {
  test('present, equals (caseExact or not), not, all, any', () => {
    assert.equal(refusal({ kind: 'Serialised' }), 'a Serialised thing needs a serial');
    assert.equal(refusal({ kind: 'Serialised', serial: '' }), 'a Serialised thing needs a serial');
    assert.equal(refusal({ kind: 'Serialised', serial: 'S1' }), undefined);
    // kind is caseExact: "serialised" is another value, so the rule does not apply.
    assert.equal(refusal({ kind: 'serialised' }), undefined);
    assert.equal(refusal({ count: 1 }), undefined);
    assert.equal(refusal({ count: 2 }), 'a count other than 1 needs the label many or several');
    // label is not caseExact.
    assert.equal(refusal({ count: 2, label: 'Several' }), undefined);
    assert.equal(refusal({ count: 2, label: 'few' }), 'a count other than 1 needs the label many or several');
  });

  test('extension rules apply to the extension object, when the resource has it', () => {
    assert.equal(refusal({ [EXT]: { code: '1234' } }), `Extension "${EXT}": a code needs locked`);
    assert.equal(
      refusal({ [EXT]: { code: '1234', locked: false } }),
      `Extension "${EXT}": a code needs locked`,
    );
    assert.equal(refusal({ [EXT]: { code: '1234', locked: true } }), undefined);
    assert.equal(refusal({ code: '1234' }), undefined);
  });

  test('prepareWrite checks them on the canonical resource', () => {
    assert.throws(
      () =>
        prepareWrite(
          reg,
          rt,
          { schemas: [CORE, EXT], [EXT.toUpperCase()]: { CODE: 'x', locked: 'false' } },
          {
            mode: 'create',
            lenientBooleans: true,
          },
        ),
      (err: unknown) => err instanceof ScimError && err.detail === `Extension "${EXT}": a code needs locked`,
    );
    assert.deepEqual(
      prepareWrite(reg, rt, { schemas: [CORE], kind: 'Serialised', serial: 'S' }, { mode: 'create' }),
      {
        schemas: [CORE],
        kind: 'Serialised',
        serial: 'S',
      },
    );
  });

  test('a rule naming an attribute its schema does not have is refused at registration', () => {
    const r = new SchemaRegistry();
    assert.throws(
      () =>
        r.addSchema({
          id: 'urn:x:r',
          name: 'r',
          attributes: [{ name: 'a' }],
          rules: [{ if: { present: 'a' }, then: { not: { present: 'b' } }, detail: 'no b with a' }],
        }),
      /rule "no b with a" names unknown attribute b/,
    );
  });
});
