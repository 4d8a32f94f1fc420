/**
 * The prefix digest of an upload: the SHA-256 of its contiguous run of received chunks [0, n),
 * kept up to date as chunks arrive so that completing even a large upload reads (almost) nothing
 * again. See PrefixFolder.
 */
import type { Em } from '../persistence/orm.ts';
import { UploadChunk, UploadSession } from '../persistence/entities.ts';
import type { ServiceDeps } from './index.ts';
import type { HashThread } from './resumable-sha256.ts';
import { chunkLength, stagedOf } from './upload-chunk-layout.ts';
import { WRITABLE } from './upload-session-sql.ts';

/**
 * Extends the digests of upload prefixes with the chunks stored after them, reading the chunks
 * back from the local staging file (fs only: S3 cannot read unfinished multipart uploads).
 *
 * Two digests per session, both covering chunks [0, n) exactly, both computed on worker threads
 * that read the staging file themselves, so no byte is hashed a second time on the event loop:
 * - a running node:crypto hash (SHA-NI speed) kept by this process's `running` thread, which
 *   completion in this process normally uses; lost on a restart and unknown to other processes
 *   (each process folding a session keeps its own). It follows every stored chunk at once.
 * - the hash-wasm state saved in the session row (`hash_state`, `hashed_chunks`), which survives
 *   crashes and serves any process. WebAssembly SHA-256 costs ~4× the CPU of node:crypto, so it
 *   is not kept in step while chunks stream in (that CPU would come out of the transfer): it
 *   catches up on the `saved` thread, at the lowest CPU priority, once the session is quiet here
 *   (no new chunk for a second and none streaming into this process), or once it lags a whole
 *   SAVE_LAG_BYTES behind. A busy server's uploads each get chunks more than a second apart while
 *   more are streaming: "no new chunk for a second" alone let the catching up run through their
 *   transfers, at 4× the CPU of the running digest. A completion that finds it
 *   behind resumes it when little is missing, else hashes the file once with node:crypto
 *   (UploadService.digest). The conditional update lets one process win each step when several
 *   fold the same session.
 */
export class PrefixFolder {
  private readonly memory = new Map<string, MemoryDigest>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly saving = new Map<string, Promise<void>>();
  private readonly saveAgain = new Set<string>();
  /** Sessions completed or aborted by this process (recent ones). */
  private readonly closed = new Set<string>();
  /** Chunks folded (and saved) at a time. */
  private static readonly BATCH = 4;
  /** The saved state catches up once the session had no new chunk for this long … */
  private static readonly SAVE_WHEN_IDLE_MS = 1000;
  /** … or once the running digest is this many bytes ahead of it. */
  static readonly SAVE_LAG_BYTES = 4 * 1024 ** 3;
  private readonly saveTimers = new Map<string, NodeJS.Timeout>();
  /** Sessions whose memory digest is kept (oldest dropped first: they fall back to the saved state). */
  private static readonly MAX_SESSIONS = 256;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly threads: { running: HashThread; saved: HashThread },
    private readonly enabled: boolean,
    /** Whether this process is receiving chunk `index` of the session right now (without `index`: any chunk of it). */
    private readonly receiving: (sessionId: string, index?: number) => boolean = () => false,
  ) {}

  /**
   * Schedules folding the session's newly stored chunks, after a chunk was recorded (`index`: the
   * chunk this process stored and recorded, which spares the fold a query for it).
   */
  kick(sessionId: string, index?: number): void {
    if (!this.enabled) return;
    if (index !== undefined) this.memory.get(sessionId)?.recorded.add(index);
    this.schedule(this.running, this.again, sessionId, () => this.foldMemory(sessionId), () => this.saveIfFarBehind(sessionId));
    this.saveWhenQuiet(sessionId);
  }

  /** Extends the saved state now when it lags a whole SAVE_LAG_BYTES behind the running digest. */
  private saveIfFarBehind(sessionId: string): void {
    const entry = this.memory.get(sessionId);
    if (entry && (entry.next - entry.savedKick) * entry.meta.chunk_size_bytes >= PrefixFolder.SAVE_LAG_BYTES) {
      entry.savedKick = entry.next;
      this.kickSave(sessionId);
    }
  }

  /**
   * (Re)starts the session's quiet timer: the saved state catches up once no chunk was recorded
   * for SAVE_WHEN_IDLE_MS (measured from the chunks, not from the folds, which may lag behind
   * while the hash thread is busy) and none is streaming into this process; while one is, the
   * timer starts over (its chunk kicks it again when it is recorded; one that fails does not, and
   * then the timer is what saves).
   */
  private saveWhenQuiet(sessionId: string): void {
    clearTimeout(this.saveTimers.get(sessionId));
    const timer = setTimeout(() => {
      this.saveTimers.delete(sessionId);
      if (this.receiving(sessionId)) {
        if (!this.closed.has(sessionId)) this.saveWhenQuiet(sessionId);
        return;
      }
      const entry = this.memory.get(sessionId);
      if (entry) entry.savedKick = entry.next;
      this.kickSave(sessionId);
    }, PrefixFolder.SAVE_WHEN_IDLE_MS);
    timer.unref();
    this.saveTimers.set(sessionId, timer);
  }

  private kickSave(sessionId: string): void {
    this.schedule(this.saving, this.saveAgain, sessionId, () => this.foldSaved(sessionId));
  }

  private schedule(running: Map<string, Promise<void>>, again: Set<string>, id: string, step: () => Promise<void>, then?: () => void): void {
    if (running.has(id)) {
      again.add(id);
      return;
    }
    const run = (async () => {
      do {
        again.delete(id);
        await step();
        then?.();
      } while (again.has(id));
    })()
      .catch((err: unknown) => this.deps.logger.warn({ err, upload_id: id }, 'could not extend the upload digest; completion will read the bytes'))
      .finally(() => running.delete(id));
    running.set(id, run);
  }

  /** Folds whatever was stored since, when this process keeps a memory digest of the session. */
  catchUp(sessionId: string): void {
    if (this.memory.has(sessionId)) this.kick(sessionId);
  }

  /** Waits for the memory fold of the session (the saved state may lag behind). */
  async settle(sessionId: string): Promise<void> {
    await this.running.get(sessionId);
  }

  /** Waits for every fold running in this process. */
  async idle(): Promise<void> {
    await Promise.all([...this.running.values(), ...this.saving.values()]);
  }

  /** Hex digest of the whole upload when this process's running digest covers all its chunks. */
  async digestIfComplete(sessionId: string): Promise<string | null> {
    const entry = this.memory.get(sessionId);
    if (!entry || entry.next !== entry.meta.chunk_count) return null;
    return this.threads.running.digest(sessionId, entry.meta.total_size_bytes);
  }

  /** Drops this process's running digest of a session. */
  private dropMemory(sessionId: string): void {
    this.memory.delete(sessionId);
    this.threads.running.drop(sessionId);
  }

  /** The session is completed or aborted here: drop its digests and stop saving its state. */
  forget(sessionId: string): void {
    this.dropMemory(sessionId);
    clearTimeout(this.saveTimers.get(sessionId));
    this.saveTimers.delete(sessionId);
    this.closed.add(sessionId);
    while (this.closed.size > PrefixFolder.MAX_SESSIONS) this.closed.delete(this.closed.values().next().value!);
  }

  /** End of the contiguous run of recorded chunks from `start` (at most BATCH): [start, end). */
  private async contiguousFrom(em: Em, sessionId: string, start: number): Promise<number> {
    const rows = await em
      .createQueryBuilder(UploadChunk, 'c')
      .select(['c.chunk_index'])
      .where({ session: sessionId, chunk_index: { $gte: start, $lt: start + PrefixFolder.BATCH } })
      .orderBy({ chunk_index: 'asc' })
      .execute<{ chunk_index: number }[]>('all', false);
    let end = start;
    while (end - start < rows.length && Number(rows[end - start]!.chunk_index) === end) end++;
    return end;
  }

  private byteRange(meta: FoldMeta, start: number, end: number): { start: number; end: number } {
    return { start: start * meta.chunk_size_bytes, end: (end - 1) * meta.chunk_size_bytes + chunkLength(meta, end - 1) - 1 };
  }

  private async foldMemory(sessionId: string): Promise<void> {
    const em = this.deps.orm.em.fork();
    let entry = this.memory.get(sessionId);
    if (!entry) {
      const s = await em.findOne(UploadSession, { id: sessionId });
      if (!s || !(WRITABLE as readonly string[]).includes(s.status) || s.hash_broken) return;
      const meta = foldMetaOf(s, this.deps.storage.localStagedPath(stagedOf(s)));
      if (!meta.path) return;
      entry = { next: 0, meta, recorded: new Set(), savedKick: s.hashed_chunks };
      this.memory.set(sessionId, entry);
      while (this.memory.size > PrefixFolder.MAX_SESSIONS) this.dropMemory(this.memory.keys().next().value!);
    }
    let progressed = false;
    try {
      for (;;) {
        const start = entry.next;
        if (start >= entry.meta.chunk_count) return;
        // Chunks this process recorded are known. Others (another process's) are looked up, but
        // only when nothing known moved the digest in this run, and not while this process is
        // still receiving the next one (its own kick follows): the next kick looks again.
        let end = start;
        while (end - start < PrefixFolder.BATCH && entry.recorded.has(end)) entry.recorded.delete(end++);
        if (end === start && !progressed && !this.receiving(sessionId, start)) {
          end = await this.contiguousFrom(em, sessionId, start);
          for (const i of entry.recorded) if (i < end) entry.recorded.delete(i);
        }
        if (end === start) return;
        progressed = true; // the next chunk has not arrived yet: its arrival kicks us again
        const range = this.byteRange(entry.meta, start, end);
        const { bytes } = await this.threads.running.fold(sessionId, entry.meta.path!, range);
        if (bytes !== range.end - range.start + 1) throw new Error(`the staging file ended at ${range.start + bytes}, before ${range.end + 1}`);
        entry.next = end;
      }
    } catch (err) {
      if (this.memory.get(sessionId) === entry) this.dropMemory(sessionId); // a partly updated hash is useless
      throw err;
    }
  }

  private async foldSaved(sessionId: string): Promise<void> {
    const em = this.deps.orm.em.fork();
    let s: UploadSession | null = null;
    for (;;) {
      if (this.closed.has(sessionId)) return;
      s ??= await em.fork().findOne(UploadSession, { id: sessionId });
      if (!s || !(WRITABLE as readonly string[]).includes(s.status) || s.hash_broken || !s.hash_state) return;
      const start = s.hashed_chunks;
      if (start >= s.chunk_count) return;
      const end = await this.contiguousFrom(em, sessionId, start);
      if (end === start) return;
      const meta = foldMetaOf(s, this.deps.storage.localStagedPath(stagedOf(s)));
      if (!meta.path) return;
      const range = this.byteRange(meta, start, end);
      const { state, bytes } = await this.threads.saved.extendSaved(s.hash_state, meta.path, range);
      if (bytes !== range.end - range.start + 1) return;
      const n = await em.nativeUpdate(
        UploadSession,
        { id: sessionId, hashed_chunks: start, hash_broken: false },
        { hash_state: state, hashed_chunks: end },
      );
      if (n === 1) {
        s.hash_state = state;
        s.hashed_chunks = end;
      } else {
        s = null; // someone else moved the prefix (or broke it): look again
      }
    }
  }
}

/** This process's running digest of a session's chunks [0, next) (the hash is on the running thread). */
interface MemoryDigest {
  next: number;
  meta: FoldMeta;
  /** Chunks at or after `next` this process recorded (no need to look them up). */
  recorded: Set<number>;
  /** `next` when the saved state was last asked to catch up. */
  savedKick: number;
}

/** What folding needs of a session (fixed for its lifetime). */
interface FoldMeta {
  chunk_count: number;
  chunk_size_bytes: number;
  total_size_bytes: number;
  /** The local staging file (null: the backend keeps none). */
  path: string | null;
}

function foldMetaOf(s: UploadSession, path: string | null): FoldMeta {
  return { chunk_count: s.chunk_count, chunk_size_bytes: s.chunk_size_bytes, total_size_bytes: s.total_size_bytes, path };
}
