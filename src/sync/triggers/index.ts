/**
 * The sync engine's triggers on one node (docs/sync-triggers.md): schedules, local changes,
 * received events, JIT sign-ins, and direct requests (admin API, CLI). Each one only requests a
 * run (requests.ts); the runner (src/sync/engine/runner.ts) registers with `onRequest` to be woken.
 */
import type { LimitsConfig } from '../../config.ts';
import type { SchemaRegistry } from '../../scim/schema/registry.ts';
import type { ResourceService } from '../../service/resources.ts';
import type { Database } from '../../store/db.ts';
import type { TenantDirectory } from '../../tenancy/directory.ts';
import type { RunTrigger } from '../types.ts';
import { EventTrigger } from './events.ts';
import { JitService } from './jit.ts';
import { LocalChangeTrigger } from './local-change.ts';
import { RunRequests, type RunWake } from './requests.ts';
import { ScheduleTrigger } from './schedules.ts';

export type { RunWake } from './requests.ts';
export { requestRun, requestRuns } from './requests.ts';

export interface SyncTriggersDeps {
  db: Database;
  service: ResourceService;
  registry: SchemaRegistry;
  tenants: TenantDirectory;
  limits: LimitsConfig;
  log?: { error(obj: object, msg: string): void };
  /** Milliseconds between reads of the schedules (default 30 s). */
  schedulePollMs?: number;
  /** Milliseconds a burst of local writes is gathered (default 200). */
  debounceMs?: number;
}

export class SyncTriggers {
  private readonly requests: RunRequests;
  /** Cron schedules: a BackgroundWorker (started with the others); reload() after a flow change. */
  readonly schedules: ScheduleTrigger;
  /** Fed by ResourceService.onChange. */
  readonly localChange: LocalChangeTrigger;
  /** Fed by the events applier (ApplierOptions.onProcessed). */
  readonly events: EventTrigger;
  /** OIDC just-in-time provisioning (POST /admin/v1/tenants/{t}/jit/oidc). */
  readonly jit: JitService;

  constructor(deps: SyncTriggersDeps) {
    this.requests = new RunRequests(deps.db, deps.log);
    const request = (tenant: string, ids: string[], trigger: RunTrigger) =>
      this.requests.requestRuns(tenant, ids, trigger);
    this.schedules = new ScheduleTrigger({
      db: deps.db,
      request: (tenant, id, trigger) => this.requests.requestRun(tenant, id, trigger),
      log: deps.log,
      pollMs: deps.schedulePollMs,
    });
    this.localChange = new LocalChangeTrigger({
      db: deps.db,
      request,
      log: deps.log,
      debounceMs: deps.debounceMs,
    });
    this.events = new EventTrigger({ db: deps.db, request, log: deps.log });
    this.jit = new JitService({ ...deps, request });
  }

  /** Requests a run of a flow (the admin API and CLI use 'api' / 'manual'); false if unknown or disabled. */
  requestRun(tenant: string, flowId: string, trigger: RunTrigger): Promise<boolean> {
    return this.requests.requestRun(tenant, flowId, trigger);
  }

  /** Requests runs of several flows of a tenant; returns the ids requested. */
  requestRuns(tenant: string, flowIds: string[], trigger: RunTrigger): Promise<string[]> {
    return this.requests.requestRuns(tenant, flowIds, trigger);
  }

  /**
   * The runner registers its wake-up here: called (synchronously, after the UPDATE) whenever a
   * trigger of this node stored a request. Returns a function that unregisters it.
   */
  onRequest(cb: RunWake): () => void {
    return this.requests.onRequest(cb);
  }

  /** Stores what the local-change and event triggers still hold; later local writes are ignored. */
  async close(): Promise<void> {
    await this.localChange.stop();
    await this.events.idle();
  }

  /** Resolves when the local-change and event triggers have stored what they were told (tests). */
  async idle(): Promise<void> {
    await this.localChange.idle();
    await this.events.idle();
  }
}
