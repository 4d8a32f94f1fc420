/**
 * How many upload bodies this process reads at once (`UPLOAD_CONCURRENT_BODIES`).
 *
 * Every body being read holds memory: an aligned write buffer (1 MiB), the socket pieces queued
 * between the parser and storage, and the pieces already copied out and waiting for garbage
 * collection. The two cores of a small machine are saturated by far fewer bodies than clients may
 * send at once (16 clients × 4 chunks in flight = 64), so reading all of them at once buys no
 * throughput and costs memory in proportion to the number of clients. Past the limit, a body waits
 * before it is read: beyond what arrived with its headers, its bytes stay in the kernel's socket
 * buffers, and TCP holds its client back. Bodies are let in in arrival order.
 *
 * A slow or stalled client must not be able to lock others out by holding slots: a body that
 * delivered no byte for `stallMs` does not count against the limit (it still holds its own buffer;
 * the body idle timeout ends it eventually). Time spent waiting here is the server's, not the
 * client's: the socket's idle timeout is suspended while the body waits and re-armed when it is
 * let in. A waiting request whose socket closes leaves the queue; a paused socket may only see its
 * client go when its turn comes, and then reading the body fails (nothing is stored) unless all of
 * it had arrived.
 */
import type { Readable } from 'node:stream';

/** A body let in: `track` the stream its bytes pass through, `leave` (idempotent) once it is read or has failed. */
export interface BodyTicket {
  /** Whether the body had to wait for its turn. */
  readonly waited: boolean;
  track(progress: Progress): void;
  leave(): void;
}

/** The request went away while it waited for a slot. */
export class BodyGateClosedError extends Error {
  constructor() {
    super('the request closed while it waited for an upload slot');
    this.name = 'BodyGateClosedError';
  }
}

/** What the gate reads of a body it let in: how many bytes have passed so far. */
export interface Progress {
  readonly bytes: number;
}

interface Holder {
  progress: Progress | null;
  lastBytes: number;
  /** When `bytes` last changed (or when the body was let in). */
  movedAt: number;
}

interface Waiter {
  admit(holder: Holder): void;
}

/** The default for `stallMs`: a body this long without a byte does not count against the limit. */
export const BODY_STALL_MS = 1000;

export class BodyGate {
  private readonly holders = new Set<Holder>();
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;

  /**
   * `slots`: bodies read at once (0: no limit). `now` is a clock in milliseconds (for tests).
   */
  constructor(
    readonly slots: number,
    private readonly stallMs = BODY_STALL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Bodies let in and not left, and bodies waiting (for tests and diagnostics). */
  get stats(): { reading: number; waiting: number } {
    return { reading: this.holders.size, waiting: this.waiters.length };
  }

  /**
   * Waits for a slot for `body` (a request). Rejects with BodyGateClosedError when the request
   * closes first.
   */
  async enter(body: Readable): Promise<BodyTicket> {
    const waited = !(this.slots === 0 || (this.waiters.length === 0 && this.counted() < this.slots));
    const holder = waited ? await this.wait(body) : this.hold();
    let left = false;
    return {
      waited,
      track: (progress) => {
        holder.progress = progress;
        holder.lastBytes = progress.bytes;
      },
      leave: () => {
        if (left) return;
        left = true;
        this.holders.delete(holder);
        this.admitWhileRoom();
      },
    };
  }

  private hold(): Holder {
    const holder: Holder = { progress: null, lastBytes: 0, movedAt: this.now() };
    this.holders.add(holder);
    return holder;
  }

  private wait(body: Readable): Promise<Holder> {
    const socket = (body as Readable & { socket?: { timeout?: number; setTimeout(ms: number): unknown; once?: unknown } }).socket;
    const idleMs = socket?.timeout ?? 0;
    if (idleMs > 0) socket!.setTimeout(0);
    return new Promise<Holder>((resolve, reject) => {
      // The socket, not the request, says the client went away: a request closes once its body has
      // been read (a small form is read whole before its file part gets here), and one whose body
      // fully arrived may not close at all.
      const closer = typeof socket?.once === 'function' ? (socket as unknown as Readable) : body;
      const onClose = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new BodyGateClosedError());
      };
      const waiter: Waiter = {
        admit: (holder) => {
          closer.off('close', onClose);
          if (idleMs > 0) socket!.setTimeout(idleMs);
          resolve(holder);
        },
      };
      closer.once('close', onClose);
      this.waiters.push(waiter);
      this.watch();
    });
  }

  /** Holders that count against the limit: those whose bytes moved within `stallMs`. */
  private counted(): number {
    const now = this.now();
    let n = 0;
    for (const h of this.holders) {
      const bytes = h.progress?.bytes ?? h.lastBytes;
      if (bytes !== h.lastBytes) {
        h.lastBytes = bytes;
        h.movedAt = now;
      }
      if (now - h.movedAt < this.stallMs) n++;
    }
    return n;
  }

  private admitWhileRoom(): void {
    if (this.waiters.length === 0) return;
    let room = this.slots - this.counted();
    while (room > 0 && this.waiters.length > 0) {
      this.waiters.shift()!.admit(this.hold());
      room--;
    }
    if (this.waiters.length === 0) this.unwatch();
  }

  /** While bodies wait, looks for stalled holders a few times per `stallMs`. */
  private watch(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.admitWhileRoom(), Math.max(10, this.stallMs / 4));
    this.timer.unref();
  }

  private unwatch(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
  }
}
