/**
 * RFC 8936 poll client: for each upstream with a `poll` endpoint, POST
 * `{"maxEvents": n, "returnImmediately": false, "ack": [...]}` (long poll) with the configured
 * Authorization, verify and store each returned SET exactly like the push endpoint (intake.ts),
 * and acknowledge it in the NEXT request, only once it is stored (RFC 9967 §5: persist before
 * acknowledging). A SET that is refused is reported in `setErrs` (with Content-Language); one that
 * cannot be checked now (the issuer's keys unreachable) is neither acked nor reported, so the
 * transmitter delivers it again. Errors back off exponentially (up to 5 minutes).
 *
 * Acks waiting to be sent live in memory: after a restart they are lost, the transmitter delivers
 * those SETs again, and the intake stores each jti once, so nothing is applied twice.
 */
import { isJsonObject } from '../../scim/json.ts';
import { SetError, type SetIntake } from './intake.ts';
import type { Upstream, UpstreamService } from './upstreams.ts';

export interface PollClientOptions {
  /** How often the list of polled upstreams is re-read (added, changed, removed). */
  refreshMs: number;
  /** Longest a poll request may take (the transmitter's long-poll timeout should be shorter). */
  requestTimeoutMs: number;
  defaultMaxEvents: number;
  /** Pause after a poll that returned nothing, in seconds (an upstream may set its own). */
  defaultIntervalSeconds: number;
}

export const DEFAULT_POLL_CLIENT_OPTIONS: PollClientOptions = {
  refreshMs: 30_000,
  requestTimeoutMs: 120_000,
  defaultMaxEvents: 100,
  defaultIntervalSeconds: 1,
};

export interface PollResult {
  /** SETs in the response. */
  received: number;
  /** Newly stored (the others were duplicates or refused). */
  stored: number;
  /** jtis acknowledged by this request (stored in the previous one). */
  acked: string[];
  /** jtis reported in setErrs by this request. */
  reported: string[];
  moreAvailable: boolean;
}

interface Pending {
  ack: string[];
  setErrs: Record<string, { err: string; description: string }>;
}

export class PollClient {
  readonly name = 'event-poll-client';
  private readonly pending = new Map<string, Pending>();
  private readonly loops = new Map<
    string,
    { signature: string; abort: AbortController; done: Promise<void> }
  >();
  private refresher: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly deps: {
      upstreams: UpstreamService;
      intake: SetIntake;
      log?: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
    },
    private readonly opts: PollClientOptions = DEFAULT_POLL_CLIENT_OPTIONS,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const refresh = () => {
      this.refresh().catch((err: unknown) => this.deps.log?.error({ err }, 'poll client refresh failed'));
    };
    refresh();
    this.refresher = setInterval(refresh, this.opts.refreshMs);
    this.refresher.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.refresher);
    const loops = [...this.loops.values()];
    this.loops.clear();
    for (const l of loops) l.abort.abort();
    await Promise.all(loops.map((l) => l.done));
  }

  /** Starts a loop per polled upstream, restarts changed ones, stops removed ones. */
  async refresh(): Promise<void> {
    const list = await this.deps.upstreams.pollers();
    if (!this.running) return;
    const seen = new Set<string>();
    for (const u of list) {
      const key = keyOf(u);
      seen.add(key);
      const signature = u.updated.toISOString();
      const loop = this.loops.get(key);
      if (loop && loop.signature === signature) continue;
      if (loop) {
        loop.abort.abort();
        await loop.done;
      }
      const abort = new AbortController();
      this.loops.set(key, { signature, abort, done: this.run(u, abort.signal) });
    }
    for (const [key, loop] of this.loops) {
      if (seen.has(key)) continue;
      this.loops.delete(key);
      loop.abort.abort();
      await loop.done;
      this.pending.delete(key);
    }
  }

  private async run(upstream: Upstream, signal: AbortSignal): Promise<void> {
    let failures = 0;
    const interval = upstream.poll?.intervalSeconds ?? this.opts.defaultIntervalSeconds;
    while (!signal.aborted) {
      let pause = interval * 1000;
      try {
        const r = await this.pollOnce(upstream, { signal });
        failures = 0;
        if (r.received > 0 || r.moreAvailable) pause = 0;
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        pause = Math.min(Math.max(interval, 1) * 1000 * 2 ** failures, 300_000);
        this.deps.log?.warn(
          { upstream: upstream.id, tenant: upstream.tenant, error: String(err) },
          'poll failed',
        );
      }
      if (pause > 0) await sleep(pause, signal);
    }
    // Stopping: hand over the acks of what is stored, without waiting for new SETs.
    await this.pollOnce(upstream, { ackOnly: true }).catch(() => undefined);
  }

  /**
   * One poll request: sends the pending acks and setErrs, stores the SETs returned. Throws when
   * the request fails (the acks stay pending for the next one).
   */
  async pollOnce(
    upstream: Upstream,
    o: { signal?: AbortSignal; ackOnly?: boolean } = {},
  ): Promise<PollResult> {
    const poll = upstream.poll;
    if (!poll) throw new Error(`upstream ${upstream.id} has no poll endpoint`);
    // SCIMD_SYNC_REQUIRE_TLS: a plain-http poll URL stored before the switch is never called.
    const refused = this.deps.upstreams.tlsViolation(poll.url, 'poll.url');
    if (refused) throw new Error(`poll ${poll.url} not sent: ${refused}`);
    const key = keyOf(upstream);
    const pending = this.pending.get(key) ?? { ack: [], setErrs: {} };
    this.pending.set(key, pending);
    const ack = [...pending.ack];
    const setErrs = { ...pending.setErrs };
    if (o.ackOnly && ack.length === 0 && Object.keys(setErrs).length === 0) {
      return { received: 0, stored: 0, acked: [], reported: [], moreAvailable: false };
    }
    const body: Record<string, unknown> = o.ackOnly
      ? { ack, maxEvents: 0, returnImmediately: true }
      : { maxEvents: poll.maxEvents ?? this.opts.defaultMaxEvents, returnImmediately: false, ack };
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (Object.keys(setErrs).length > 0) {
      body.setErrs = setErrs;
      headers['content-language'] = 'en';
    }
    if (poll.authorization) headers.authorization = poll.authorization;
    const timeout = AbortSignal.timeout(this.opts.requestTimeoutMs);
    const res = await fetch(poll.url, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout,
    });
    if (res.status !== 200) {
      // RFC 8936 §2.4: an error response's body is undefined; only the status says something.
      await res.body?.cancel();
      throw new Error(`poll ${poll.url} answered ${res.status}`);
    }
    const answer: unknown = await res.json().catch(() => undefined);
    // The request went through: what it acknowledged and reported is delivered.
    pending.ack = pending.ack.filter((j) => !ack.includes(j));
    for (const j of Object.keys(setErrs)) delete pending.setErrs[j];
    if (!isJsonObject(answer) || (answer.sets !== undefined && !isJsonObject(answer.sets))) {
      throw new Error(`poll ${poll.url} did not answer {"sets": {...}}`);
    }
    const sets = isJsonObject(answer.sets) ? answer.sets : {};
    let stored = 0;
    for (const [jti, token] of Object.entries(sets)) {
      if (typeof token !== 'string') {
        pending.setErrs[jti] = { err: 'invalid_request', description: 'The SET is not a compact JWT string' };
        continue;
      }
      try {
        const r = await this.deps.intake.receive(upstream, token, 'poll');
        if (r.claims.jti !== jti) {
          // Stored under its own jti; the transmitter's key is acked too, as it names this delivery.
          this.deps.log?.warn(
            { upstream: upstream.id, key: jti, jti: r.claims.jti },
            'poll key differs from jti',
          );
        }
        if (!r.duplicate) stored++;
        if (!pending.ack.includes(jti)) pending.ack.push(jti);
      } catch (err) {
        if (err instanceof SetError) {
          if (!err.temporary) pending.setErrs[jti] = { err: err.err, description: err.description };
          continue;
        }
        throw err;
      }
    }
    return {
      received: Object.keys(sets).length,
      stored,
      acked: ack,
      reported: Object.keys(setErrs),
      moreAvailable: answer.moreAvailable === true,
    };
  }
}

function keyOf(u: Upstream): string {
  return `${u.tenant}\0${u.id}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
