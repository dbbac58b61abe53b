/**
 * An in-process wake-up call between the event stages of one node: the publisher signals after it
 * wrote outbox rows, push workers and long polls wait for it. Across nodes nothing is signalled:
 * every waiter also wakes on its own timeout and looks at the database again, which stays the truth.
 */
import { EventEmitter } from 'node:events';

export class OutboxSignal {
  private readonly emitter = new EventEmitter();

  constructor() {
    // One listener per waiting long poll: their number is bounded by open requests, not a leak.
    this.emitter.setMaxListeners(0);
  }

  /** New rows may be waiting for these receivers of the tenant. */
  notify(tenant: string, receiverIds: Iterable<string>): void {
    for (const id of receiverIds) this.emitter.emit(`${tenant}\u0000${id}`);
    this.emitter.emit('*');
  }

  /** Resolves on the next notify for the receiver (or for any receiver when omitted), or after timeoutMs. */
  wait(timeoutMs: number, tenant?: string, receiverId?: string, abort?: AbortSignal): Promise<void> {
    const name = tenant !== undefined && receiverId !== undefined ? `${tenant}\u0000${receiverId}` : '*';
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.emitter.off(name, done);
        abort?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.emitter.once(name, done);
      abort?.addEventListener('abort', done, { once: true });
    });
  }
}
