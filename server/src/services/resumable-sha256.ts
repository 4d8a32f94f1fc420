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

/**
 * Resumes saved states and extends them with bytes of a local file on a worker thread
 * (sha256-worker.mjs) that reads the file itself and runs at the lowest CPU priority: the slow
 * WebAssembly hashing uses idle CPU only and never blocks the event loop serving requests. One
 * thread, started on first use and unref'd (it never keeps the process alive). Jobs run in order.
 */
export class Sha256Worker {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: { state: string; bytes: number }) => void; reject: (e: Error) => void }>();

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./sha256-worker.mjs', import.meta.url));
    worker.unref();
    worker.on('message', (msg: { id: number; state?: string; bytes?: number; error?: string }) => {
      const job = this.pending.get(msg.id);
      if (!job) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) job.reject(new Error(`sha256 worker: ${msg.error}`));
      else job.resolve({ state: msg.state!, bytes: msg.bytes! });
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

  /**
   * Loads `state` and hashes bytes [start, end] of the local file `path` into it, all on the worker
   * thread; resolves with the new state and the number of bytes hashed (fewer when the file is short).
   */
  async extendFromFile(state: string, path: string, range: { start: number; end: number }): Promise<{ state: string; bytes: number }> {
    const worker = this.thread();
    const id = this.nextId++;
    const result = new Promise<{ state: string; bytes: number }>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    worker.postMessage({ id, state, path, start: range.start, end: range.end });
    return result;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }
}
