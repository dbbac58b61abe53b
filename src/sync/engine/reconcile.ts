/**
 * Reconciliation: the plan of a flow. A plan is a dry run (FlowRunner.plan): every resource in the
 * flow's scope is compared with its counterpart (push: each local resource with the remote record
 * it is linked or matched to; pull: each remote record with the local resource), exactly as a run
 * would, and nothing is written but the run (`dry_run`) and its items (outcome `planned`).
 *
 * The plan lists creates (with the attributes that would be sent), updates per attribute (path,
 * local value, remote value, owner — only attributes the flow may write: a difference in an
 * attribute the target owns is adopted, not reverted), deletes per onDelete (delete or deactivate),
 * and links (resources matched without a difference). Applying it is a run with `full: true`
 * (compare everything whatever the mode): idempotent, and resumable, since every step is decided
 * afresh from both sides and the stored links.
 */
import type { FlowDirection } from '../types.ts';
import type { ItemRecord, PlanAttribute } from './job.ts';
import type { RunView } from './runner.ts';

export interface PlanCreate {
  resourceType: string;
  /** push: the local resource to create remotely; pull: the remote record to create locally. */
  localId?: string;
  remoteId?: string;
  attributes: PlanAttribute[];
}

export interface PlanUpdate {
  resourceType: string;
  localId: string;
  remoteId: string;
  attributes: PlanAttribute[];
}

export interface PlanDelete {
  resourceType: string;
  localId: string;
  remoteId: string;
  action: 'delete' | 'deactivate';
}

export interface PlanLink {
  resourceType: string;
  localId: string;
  remoteId: string;
}

export interface Plan {
  flowId: string;
  direction: FlowDirection;
  /** The dry run that made the plan (its items are stored with outcome `planned`). */
  run: RunView;
  creates: PlanCreate[];
  updates: PlanUpdate[];
  deletes: PlanDelete[];
  links: PlanLink[];
  /** Resources that could not be compared (e.g. ambiguous matches). */
  failed: { resourceType: string; localId?: string; remoteId?: string; error: string }[];
}

/** Whether applying the plan would change nothing. */
export function planIsEmpty(p: Plan): boolean {
  return p.creates.length + p.updates.length + p.deletes.length + p.links.length + p.failed.length === 0;
}

export function toPlan(direction: FlowDirection, run: RunView, items: ItemRecord[]): Plan {
  const plan: Plan = {
    flowId: run.flowId,
    direction,
    run,
    creates: [],
    updates: [],
    deletes: [],
    links: [],
    failed: [],
  };
  for (const i of items) {
    if (i.outcome === 'failed') {
      const f: Plan['failed'][number] = { resourceType: i.resourceType, error: i.error ?? '' };
      if (i.localId) f.localId = i.localId;
      if (i.remoteId) f.remoteId = i.remoteId;
      plan.failed.push(f);
    } else if (i.action === 'create') {
      const c: PlanCreate = { resourceType: i.resourceType, attributes: i.attributes ?? [] };
      if (i.localId) c.localId = i.localId;
      if (i.remoteId) c.remoteId = i.remoteId;
      plan.creates.push(c);
    } else if (i.action === 'update') {
      plan.updates.push({
        resourceType: i.resourceType,
        localId: i.localId!,
        remoteId: i.remoteId!,
        attributes: i.attributes ?? [],
      });
    } else if (i.action === 'delete' || i.action === 'deactivate') {
      plan.deletes.push({
        resourceType: i.resourceType,
        localId: i.localId!,
        remoteId: i.remoteId!,
        action: i.action,
      });
    } else if (i.action === 'link') {
      plan.links.push({ resourceType: i.resourceType, localId: i.localId!, remoteId: i.remoteId! });
    }
  }
  return plan;
}
