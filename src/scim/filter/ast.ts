/**
 * Filter and path syntax trees (RFC 7644 §3.4.2.2 filters, §3.5.2 PATCH paths).
 *
 * Two stages:
 *  - `Filter` / `PatchPath` are what the parser produces from text: attribute names as written.
 *  - `BoundFilter` is a Filter bound to one resource type through the schema registry: every
 *    attribute reference carries its definition, so the SQL compiler and the in-memory evaluator
 *    apply the same case, type and multi-valued rules without looking anything up again.
 */
import type { AttributeDefinition } from '../schema/types.ts';

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type FilterValue = string | number | boolean | null;

/** `[uri ":"] attr ["." subAttr]` as written (uri is a schema URN, kept as written). */
export interface AttrPath {
  uri?: string;
  attr: string;
  subAttr?: string;
}

export type Filter =
  | { op: CompareOp; path: AttrPath; value: FilterValue }
  | { op: 'pr'; path: AttrPath }
  | { op: 'and' | 'or'; left: Filter; right: Filter }
  | { op: 'not'; filter: Filter }
  /** `attr[filter]`: the inner filter's paths are relative to one value of `attr` (sub-attribute names). */
  | { op: 'valuePath'; path: AttrPath; filter: Filter };

/**
 * A PATCH path: `attrPath`, `attrPath.sub`, `valuePath`, `valuePath.sub`, or a bare schema URN
 * (`path.attr` is then empty and `path.uri` names the extension: the whole extension object is the target).
 */
export interface PatchPath {
  path: AttrPath;
  valueFilter?: Filter;
  /** Sub-attribute after a value filter: `emails[type eq "work"].value` → "value". */
  subAttr?: string;
}

/** Where a bound attribute lives in a stored resource. */
export type AttrLocation =
  /** id, externalId, meta.*: kept in columns by the store, at the top level of the resource JSON. */
  | 'common'
  /** An attribute of the resource type's core schema: top level of the resource JSON. */
  | 'core'
  /** An attribute of a schema extension: under the extension URN key of the resource JSON. */
  | 'extension';

export interface BoundAttr {
  location: AttrLocation;
  /** Schema URN the attribute belongs to (for 'common', the resource type's core schema). */
  schema: string;
  attribute: AttributeDefinition;
  /** Set when the path names a sub-attribute of a complex attribute. */
  sub?: AttributeDefinition;
}

export type BoundFilter =
  | { op: CompareOp; attr: BoundAttr; value: FilterValue }
  | { op: 'pr'; attr: BoundAttr }
  | { op: 'and' | 'or'; left: BoundFilter; right: BoundFilter }
  | { op: 'not'; filter: BoundFilter }
  /** `attr` is a complex attribute; the inner filter's attrs are its sub-attributes (attr.sub set). */
  | { op: 'valuePath'; attr: BoundAttr; filter: BoundFilter }
  /** A constant: an attribute the resource type does not have (root queries) is never matched. */
  | { op: 'const'; value: boolean };
