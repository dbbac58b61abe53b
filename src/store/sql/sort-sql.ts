/**
 * `sortBy` (RFC 7644 §3.4.2.3) as a SQL expression over `resources r`. The expression is NULL
 * when the resource has no value, so the caller's `NULLS LAST` (ascending) / `NULLS FIRST`
 * (descending) puts those resources where the RFC wants them.
 */
import { ScimError } from '../../scim/errors.ts';
import type { BoundAttr } from '../../scim/filter/ast.ts';
import type { ResourceTypeConfig } from '../../scim/schema/registry.ts';
import type { AttributeDefinition } from '../../scim/schema/types.ts';
import { sqlLiteral } from './params.ts';
import {
  arrayElements,
  booleanOf,
  commonSource,
  docBase,
  numericOf,
  relationOf,
  scalarDefinition,
  textOf,
  timestampOf,
  type Source,
} from './filter-sql.ts';

export type SortKind = 'text' | 'number' | 'timestamp' | 'boolean';

export interface SortExpression {
  expr: string;
  /** How the sort key comes back from the database, so a cursor can encode the last key. */
  kind: SortKind;
}

function invalidSort(detail: string): ScimError {
  return ScimError.badRequest('invalidValue', detail);
}

function sortValue(src: Source, def: AttributeDefinition): SortExpression {
  switch (def.type) {
    case 'string':
    case 'reference':
    case 'binary': {
      const t = textOf(src);
      // "" is no value (RFC 7643 §2.5): it sorts with the absent ones.
      const v = def.caseExact ? `NULLIF(${t}, '')` : `NULLIF(lower(${t}), '')`;
      return { expr: `(${v} COLLATE "C")`, kind: 'text' };
    }
    case 'integer':
    case 'decimal':
      return { expr: numericOf(src), kind: 'number' };
    case 'boolean':
      return { expr: booleanOf(src), kind: 'boolean' };
    case 'dateTime':
      return { expr: timestampOf(src), kind: 'timestamp' };
    default:
      throw invalidSort(`Cannot sort by complex attribute "${def.name}"`);
  }
}

export function compileSort(attr: BoundAttr, rt: ResourceTypeConfig, alias = 'r'): SortExpression {
  let def: AttributeDefinition;
  try {
    def = scalarDefinition(attr);
    if (attr.location === 'common') return sortValue(commonSource(attr, alias), def);
  } catch (e) {
    if (e instanceof ScimError) throw invalidSort(e.message);
    throw e;
  }
  if (relationOf(attr, rt)) throw invalidSort(`Cannot sort by "${attr.attribute.name}"`);
  const a = attr.attribute;
  const base = docBase(attr, alias);
  const complex = a.type === 'complex';
  if (!a.multiValued) {
    return sortValue(
      complex
        ? { kind: 'json', parent: `(${base} -> ${sqlLiteral(a.name)})`, key: def.name }
        : { kind: 'json', parent: base, key: a.name },
      def,
    );
  }
  // Multi-valued: the primary value, else the first one (RFC 7644 §3.4.2.3).
  const e = `${alias}_se`;
  const one = sortValue(
    complex ? { kind: 'json', parent: `${e}.v`, key: def.name } : { kind: 'json', parent: `${e}.v` },
    def,
  );
  return {
    expr:
      `(SELECT ${one.expr} FROM ${arrayElements(`(${base} -> ${sqlLiteral(a.name)})`)} WITH ORDINALITY AS ${e}(v, n)` +
      ` ORDER BY CASE WHEN ${e}.v -> 'primary' = 'true'::jsonb THEN 0 ELSE 1 END, ${e}.n LIMIT 1)`,
    kind: one.kind,
  };
}
