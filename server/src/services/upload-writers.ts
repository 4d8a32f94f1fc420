/**
 * The chunks this process is receiving right now, per session and index. Two rules hold with them:
 * - one writer per chunk: a re-send stops an older request still streaming the same chunk (its
 *   client has given up on it) and waits for it to settle before writing, so the two never overlap;
 * - a completion or abort first stops the session's writers and keeps new ones out (quiesce), so
 *   no byte lands in the staged upload while it is being committed or discarded.
 * Other processes' writers are not covered: see the note at the top of uploads.ts.
 */

/** The stream a writer feeds; stopping the writer destroys it. */
interface Destroyable {
  destroy(error?: Error): unknown;
}

/** One request writing one chunk (see UploadService.putChunk). */
export class ChunkWriter {
  private reason: Error | null = null;
  private stream: Destroyable | null = null;
  private release!: () => void;
  /** Resolves once the request is done with the chunk, whatever the outcome. */
  readonly settled = new Promise<void>((resolve) => (this.release = resolve));

  constructor(
    private readonly older: ChunkWriter | undefined,
    private readonly onEnd: (writer: ChunkWriter) => void,
  ) {}

  /** Why the writer was stopped (a re-send, a completion or an abort), or null. */
  get stopReason(): Error | null {
    return this.reason;
  }

  /** Stops the write: its stream fails with `reason`. */
  stop(reason: Error): void {
    this.reason = reason;
    this.stream?.destroy(reason);
  }

  /** Stops an older writer of the same chunk, if any, and waits for it; true when there was one. */
  async takeOver(reason: Error): Promise<boolean> {
    if (!this.older) return false;
    this.older.stop(reason);
    await this.older.settled;
    return true;
  }

  /** The stream the bytes now flow through; throws when the writer was stopped already. */
  attach(stream: Destroyable): void {
    this.stream = stream;
    if (this.reason) throw this.reason;
  }

  /** The request is done with the chunk (call it exactly once, in a `finally`). */
  end(): void {
    this.onEnd(this);
    this.release();
  }
}

export class InFlightWriters {
  private readonly writes = new Map<string, Map<number, ChunkWriter>>();
  /** Sessions this process is completing or aborting: new chunks for them are refused. */
  private readonly closing = new Set<string>();
  /** Chunks waiting for their turn to be read (see BodyGate), per session and index: how many requests. */
  private readonly queued = new Map<string, Map<number, number>>();

  /**
   * Whether this process is receiving chunk `index` of the session right now (without `index`: any
   * chunk of it). A chunk waiting for its turn to be read counts: its bytes are on their way.
   */
  receiving(sessionId: string, index?: number): boolean {
    for (const m of [this.writes.get(sessionId), this.queued.get(sessionId)]) {
      if (m && (index === undefined ? m.size > 0 : m.has(index))) return true;
    }
    return false;
  }

  /** Notes that a request for chunk `index` waits for its turn to be read; call the returned function (once) when it stops waiting. */
  queue(sessionId: string, index: number): () => void {
    const queued = this.queued.get(sessionId) ?? new Map<number, number>();
    this.queued.set(sessionId, queued);
    queued.set(index, (queued.get(index) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = queued.get(index)! - 1;
      if (n > 0) queued.set(index, n);
      else queued.delete(index);
      if (queued.size === 0 && this.queued.get(sessionId) === queued) this.queued.delete(sessionId);
    };
  }

  /** Whether a completion or abort in this process keeps new chunks of the session out. */
  isClosing(sessionId: string): boolean {
    return this.closing.has(sessionId);
  }

  /** Registers the calling request as the writer of chunk `index` (an older one is taken over with ChunkWriter.takeOver). */
  begin(sessionId: string, index: number): ChunkWriter {
    const writes = this.writes.get(sessionId) ?? new Map<number, ChunkWriter>();
    this.writes.set(sessionId, writes);
    const writer = new ChunkWriter(writes.get(index), (mine) => {
      if (writes.get(index) === mine) writes.delete(index);
      if (writes.size === 0 && this.writes.get(sessionId) === writes) this.writes.delete(sessionId);
    });
    writes.set(index, writer);
    return writer;
  }

  /** Stops this process's writers of a session and keeps new ones out until the returned function is called. */
  async quiesce(sessionId: string, reason: () => Error): Promise<() => void> {
    this.closing.add(sessionId);
    const writers = [...(this.writes.get(sessionId)?.values() ?? [])];
    for (const w of writers) w.stop(reason());
    await Promise.all(writers.map((w) => w.settled));
    return () => this.closing.delete(sessionId);
  }
}
