/**
 * The order in which the client sends Bulk operations (RFC 7644 §3.7) when it splits them over
 * several requests: a `bulkId:` reference can only be resolved by the server that created the
 * resource in the same request, or by the client (the real id) when an earlier request created it.
 * So every POST that declares a bulkId goes before the operations referring to it; otherwise the
 * given order is kept (the lexicographically smallest topological order, which is the given one when
 * no operation refers forward). Operations in or behind a reference cycle cannot be ordered: they
 * come last, as one group the client keeps in one request when the limits allow.
 */
import { isJsonObject, type JsonValue } from '../scim/json.ts';
import type { BulkOperation } from './types.ts';

const PREFIX = 'bulkId:';

/** The bulkIds an operation refers to, in its path segments or as `bulkId:x` strings in its data. */
export function bulkRefs(op: BulkOperation): Set<string> {
  const out = new Set<string>();
  for (const seg of op.path.split('/')) if (seg.startsWith(PREFIX)) out.add(seg.slice(PREFIX.length));
  const walk = (v: JsonValue | undefined): void => {
    if (typeof v === 'string') {
      if (v.startsWith(PREFIX)) out.add(v.slice(PREFIX.length));
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (isJsonObject(v)) Object.values(v).forEach(walk);
  };
  if (op.data) walk(op.data);
  return out;
}

export interface BulkPlan {
  /** Operation indexes in sending order; each group is kept in one request when it fits. */
  groups: number[][];
  refs: Array<Set<string>>;
  /** bulkId → index of the POST declaring it (the first one). */
  creators: Map<string, number>;
}

/** A small binary min-heap of indexes. */
class MinHeap {
  private readonly a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p] <= a[i]) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): number {
    const a = this.a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l] < a[m]) m = l;
        if (r < a.length && a[r] < a[m]) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

export function planBulk(ops: BulkOperation[]): BulkPlan {
  const refs = ops.map(bulkRefs);
  const creators = new Map<string, number>();
  ops.forEach((op, i) => {
    if (op.method === 'POST' && op.bulkId !== undefined && !creators.has(op.bulkId))
      creators.set(op.bulkId, i);
  });
  // Kahn's algorithm, always taking the smallest ready index.
  const indegree = new Array<number>(ops.length).fill(0);
  const dependents: number[][] = ops.map(() => []);
  refs.forEach((set, i) => {
    for (const r of set) {
      const c = creators.get(r);
      if (c === undefined || c === i) continue;
      indegree[i]++;
      dependents[c].push(i);
    }
  });
  const ready = new MinHeap();
  indegree.forEach((d, i) => d === 0 && ready.push(i));
  const groups: number[][] = [];
  const placed = new Array<boolean>(ops.length).fill(false);
  while (ready.size > 0) {
    const i = ready.pop();
    placed[i] = true;
    groups.push([i]);
    for (const j of dependents[i]) if (--indegree[j] === 0) ready.push(j);
  }
  const rest = ops.map((_, i) => i).filter((i) => !placed[i]);
  if (rest.length > 0) groups.push(rest);
  return { groups, refs, creators };
}
