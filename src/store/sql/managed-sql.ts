/**
 * The references that make a resource visible to a managed-only client (a resource type's
 * `managedBy` attribute, e.g. Device `applications`), kept as rows of `managed_refs` by a trigger
 * on `resources`: every write path (service, import, Bulk, replicas) keeps them in its own
 * transaction, and a managed-only list without a filter counts and pages from their primary key
 * instead of visiting the heap page of every managed resource (see ResourceRepository.list).
 *
 * Filters still find managed resources through the document (`doc @> …`, the GIN index); the rows
 * hold the same values (the string `value` of each element of the attribute), so both agree.
 */
import type { ResourceTypeConfig, SchemaRegistry } from '../../scim/schema/registry.ts';
import { sqlLiteral } from './params.ts';

/** The elements of a jsonb array; anything else has none (as filter-sql's arrayElements). */
function arrayElements(expr: string): string {
  return `jsonb_array_elements(CASE WHEN jsonb_typeof(${expr}) = 'array' THEN ${expr} ELSE '[]'::jsonb END)`;
}

/** The jsonb array of a managed type's references, in the document `doc` (of the row `NEW` or a query alias). */
function refsArray(rt: ResourceTypeConfig, doc: string): string {
  const { schema, attribute } = rt.managedBy!;
  const core = schema.toLowerCase() === rt.schema.toLowerCase();
  const base = core ? doc : `(${doc} -> ${sqlLiteral(schema)})`;
  return `(${base} -> ${sqlLiteral(attribute)})`;
}

/** The statements the migrations run for the registry's managed types (none without one). */
export function managedRefStatements(registry: SchemaRegistry): string[] {
  const types = registry.resourceTypes().filter((rt) => rt.managedBy);
  if (types.length === 0) return [];
  const refsOf = (doc: string) =>
    `CASE ${doc === 'NEW.doc' ? 'NEW' : 'r'}.resource_type ${types
      .map(
        (rt) =>
          `WHEN ${sqlLiteral(rt.name)} THEN ARRAY(SELECT DISTINCT e.v ->> 'value' FROM ${arrayElements(refsArray(rt, doc))} AS e(v) WHERE jsonb_typeof(e.v -> 'value') = 'string')`,
      )
      .join(' ')} END`;
  const names = types.map((rt) => sqlLiteral(rt.name)).join(', ');
  return [
    `CREATE TABLE IF NOT EXISTS managed_refs (
       tenant_id text NOT NULL,
       resource_type text NOT NULL,
       ref text NOT NULL,
       resource_id text NOT NULL,
       PRIMARY KEY (tenant_id, resource_type, ref, resource_id),
       FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id) ON DELETE CASCADE
     )`,
    `CREATE INDEX IF NOT EXISTS managed_refs_resource ON managed_refs (tenant_id, resource_id)`,
    `CREATE OR REPLACE FUNCTION scimd_sync_managed_refs() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE refs text[];
     BEGIN
       refs := ${refsOf('NEW.doc')};
       IF TG_OP = 'UPDATE' THEN
         DELETE FROM managed_refs m WHERE m.tenant_id = NEW.tenant_id AND m.resource_id = NEW.id
           AND NOT (m.ref = ANY (coalesce(refs, '{}')));
       END IF;
       IF cardinality(refs) > 0 THEN
         INSERT INTO managed_refs (tenant_id, resource_type, ref, resource_id)
           SELECT NEW.tenant_id, NEW.resource_type, x, NEW.id FROM unnest(refs) AS x
           ON CONFLICT DO NOTHING;
       END IF;
       RETURN NULL;
     END $$`,
    // Rows stored before the trigger existed (an upgrade): once, while it does not exist yet.
    `INSERT INTO managed_refs (tenant_id, resource_type, ref, resource_id)
     SELECT r.tenant_id, r.resource_type, x, r.id FROM resources r, unnest(${refsOf('r.doc')}) AS x
     WHERE r.resource_type IN (${names})
       AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'resources_managed_refs')
     ON CONFLICT DO NOTHING`,
    // A new row without references has nothing to add: most devices (and imports) skip the call.
    `CREATE OR REPLACE TRIGGER resources_managed_refs AFTER INSERT ON resources
     FOR EACH ROW WHEN (${types.map((rt) => `(NEW.resource_type = ${sqlLiteral(rt.name)} AND ${refsArray(rt, 'NEW.doc')} IS NOT NULL)`).join(' OR ')})
     EXECUTE FUNCTION scimd_sync_managed_refs()`,
    `CREATE OR REPLACE TRIGGER resources_managed_refs_update AFTER UPDATE OF doc ON resources
     FOR EACH ROW WHEN (NEW.resource_type IN (${names})) EXECUTE FUNCTION scimd_sync_managed_refs()`,
  ];
}
