/**
 * A SHA-256 whose internal state can be saved as text and resumed later, by any process.
 * The upload service keeps the digest of an upload's contiguous prefix of chunks in
 * `upload_sessions.hash_state`, so completion does not read the artifact again when chunks
 * arrived in order. hash-wasm is the only SHA-256 here with save()/load(); node:crypto is several
 * times faster but cannot serialize its state, so it is used wherever no state must survive
 * (per-chunk digests, a completion that must hash everything anyway).
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { createSHA256, type IHasher } from 'hash-wasm';

/** Updates larger than this are split, yielding to the event loop between pieces. */
const MAX_SLICE = 1024 * 1024;

export class ResumableSha256 {
  private constructor(private readonly hasher: IHasher) {}

  /** A fresh hash (of nothing). */
  static async create(): Promise<ResumableSha256> {
    const hasher = await createSHA256();
    hasher.init();
    return new ResumableSha256(hasher);
  }

  /** Resumes a state produced by `save()`. */
  static async load(state: string): Promise<ResumableSha256> {
    const hasher = await createSHA256();
    hasher.load(Buffer.from(state, 'base64'));
    return new ResumableSha256(hasher);
  }

  /** The saved state of a fresh hash: what a new upload session starts from. */
  static async initialState(): Promise<string> {
    return (await ResumableSha256.create()).save();
  }

  update(data: Uint8Array): void {
    this.hasher.update(data);
  }

  /** Hashes a whole stream, in slices that leave the event loop room to breathe. */
  async updateFrom(stream: Readable): Promise<number> {
    let bytes = 0;
    for await (const piece of stream as AsyncIterable<Buffer>) {
      for (let i = 0; i < piece.length; i += MAX_SLICE) {
        this.hasher.update(piece.subarray(i, i + MAX_SLICE));
        if (piece.length > MAX_SLICE) await new Promise<void>((resolve) => setImmediate(resolve));
      }
      bytes += piece.length;
    }
    return bytes;
  }

  /** Base64 of the internal state (~160 characters). */
  save(): string {
    return Buffer.from(this.hasher.save()).toString('base64');
  }

  /** Ends the hash: lowercase hex. */
  hex(): string {
    return this.hasher.digest('hex');
  }
}

/** SHA-256 (hex) of a whole stream with node:crypto. */
export async function sha256OfStream(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const piece of stream as AsyncIterable<Buffer>) {
    hash.update(piece);
    bytes += piece.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

type Job = { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void };

/**
 * A worker thread (sha256-worker.mjs) doing SHA-256 work on byte ranges of local files, off the
 * event loop that serves requests: it reads the bytes itself. Two kinds of work:
 * - resumable states (hash-wasm, about a quarter of node:crypto's speed): `extendSaved`;
 * - running node:crypto digests it keeps by key (`fold`, `digest`, `drop`): the fast digest of an
 *   upload's prefix, without hashing on the event loop.
 * Started on first use and unref'd (it never keeps the process alive); jobs run in order. With
 * `lowPriority` the thread runs at the lowest CPU priority and so only takes idle CPU; with
 * `directReads` it reads past the page cache (O_DIRECT) where the filesystem allows it.
 */
export class HashThread {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Job>();

  constructor(private readonly options: { lowPriority: boolean; directReads?: boolean }) {}

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./sha256-worker.mjs', import.meta.url), {
      workerData: { lowPriority: this.options.lowPriority, directReads: this.options.directReads ?? false },
    });
    worker.unref();
    worker.on('message', (msg: { id: number; error?: string }) => {
      const job = this.pending.get(msg.id);
      if (!job) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) job.reject(new Error(`sha256 worker: ${msg.error}`));
      else job.resolve(msg);
    });
    const fail = (err: Error) => {
      for (const job of this.pending.values()) job.reject(err);
      this.pending.clear();
      if (this.worker === worker) this.worker = null;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`sha256 worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private call<T>(message: Record<string, unknown>): Promise<T> {
    const worker = this.thread();
    const id = this.nextId++;
    const result = new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as Job['resolve'], reject }));
    worker.postMessage({ id, ...message });
    return result;
  }

  /**
   * Loads `state` and hashes bytes [start, end] of the local file `path` into it; resolves with the
   * new state and the number of bytes hashed (fewer when the file is short).
   */
  extendSaved(state: string, path: string, range: { start: number; end: number }): Promise<{ state: string; bytes: number }> {
    return this.call({ op: 'saved', state, path, start: range.start, end: range.end });
  }

  /**
   * Extends the running digest kept under `key` with bytes [start, end] of `path`. The digest must
   * cover exactly `start` bytes (start 0 begins a new one), else the call fails and the digest is
   * dropped. Resolves with the bytes hashed.
   */
  fold(key: string, path: string, range: { start: number; end: number }): Promise<{ bytes: number }> {
    return this.call({ op: 'fold', key, path, start: range.start, end: range.end });
  }

  /** Hex SHA-256 of the running digest under `key` when it covers exactly `covered` bytes, else null. */
  async digest(key: string, covered: number): Promise<string | null> {
    if (!this.worker) return null; // never started, or lost: it holds nothing
    return (await this.call<{ sha256: string | null }>({ op: 'digest', key, covered })).sha256;
  }

  /** Forgets the running digest under `key`. */
  drop(key: string): void {
    this.worker?.postMessage({ op: 'drop', key });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }
}
