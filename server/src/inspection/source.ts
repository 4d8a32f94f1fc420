/**
 * What a format inspector reads from: random access to a file's bytes, with a byte budget.
 * Inspectors never see the storage backend; the service hands them a ByteSource over ranged
 * BlobStore reads (blobSource) and tests hand them one over a Buffer (bufferSource).
 */
import type { Readable } from 'node:stream';

export interface ByteSource {
  /** Size of the whole file in bytes. */
  readonly size: number;
  /**
   * The bytes [offset, offset + length), fewer only where the file ends. Every byte returned
   * counts against the budget; a read that would exceed it rejects with InspectionLimitError.
   */
  read(offset: number, length: number): Promise<Buffer>;
}

/** The content is recognised but its header is truncated, inconsistent or hostile. */
export class MalformedHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedHeaderError';
  }
}

/** Inspecting would need to read more than the byte budget allows. */
export class InspectionLimitError extends Error {
  constructor(
    /** The budget that was hit, in bytes. */
    readonly limit: number,
    what = 'the header',
  ) {
    super(`reading ${what} needs more than the inspection limit of ${limit} bytes`);
    this.name = 'InspectionLimitError';
  }
}

/** The storage under a ByteSource failed (the cause says how); not a verdict on the content. */
export class SourceReadError extends Error {
  constructor(cause: unknown) {
    super(`reading the file failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'SourceReadError';
  }
}

/** A ByteSource over bytes in memory (tests, and a decompressed zip entry). */
export function bufferSource(bytes: Buffer, budget = Number.MAX_SAFE_INTEGER): ByteSource {
  let spent = 0;
  return {
    size: bytes.length,
    async read(offset, length) {
      const out = bytes.subarray(Math.min(offset, bytes.length), Math.min(offset + length, bytes.length));
      spent += out.length;
      if (spent > budget) throw new InspectionLimitError(budget);
      return out;
    },
  };
}

const BLOCK = 256 * 1024;
const CACHED_BLOCKS = 8;

/**
 * A ByteSource over ranged reads (`get(start, endInclusive)`, e.g. BlobStore.get with a range):
 * small reads are served from a few cached 256 KiB blocks, so a zip's central directory, read
 * 46 bytes at a time by the zip reader, costs a handful of requests on S3, not one per entry.
 * Memory: the budget plus the cache (8 blocks, 2 MiB).
 */
export function rangedSource(
  size: number,
  get: (range: { start: number; end: number }) => Promise<Readable>,
  budget: number,
): ByteSource {
  let spent = 0;
  const blocks = new Map<number, Promise<Buffer>>();
  const fetch = async (start: number, length: number): Promise<Buffer> => {
    const end = Math.min(start + length, size);
    if (end <= start) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    try {
      for await (const chunk of await get({ start, end: end - 1 })) parts.push(chunk as Buffer);
    } catch (err) {
      throw new SourceReadError(err);
    }
    const out = Buffer.concat(parts);
    if (out.length !== end - start) throw new SourceReadError(new Error(`storage returned ${out.length} bytes for a ${end - start}-byte range`));
    return out;
  };
  const block = (n: number): Promise<Buffer> => {
    let b = blocks.get(n);
    if (b) {
      blocks.delete(n); // re-insert: most recently used last
      blocks.set(n, b);
      return b;
    }
    b = fetch(n * BLOCK, BLOCK);
    b.catch(() => blocks.delete(n));
    blocks.set(n, b);
    if (blocks.size > CACHED_BLOCKS) blocks.delete(blocks.keys().next().value!);
    return b;
  };
  return {
    size,
    async read(offset, length) {
      if (offset >= size || length <= 0) return Buffer.alloc(0);
      const end = Math.min(offset + length, size);
      // The budget counts what the inspector asks for; the block cache adds at most its own size.
      spent += end - offset;
      if (spent > budget) throw new InspectionLimitError(budget);
      if (end - offset > BLOCK) return fetch(offset, end - offset);
      const first = Math.floor(offset / BLOCK);
      const last = Math.floor((end - 1) / BLOCK);
      const parts: Buffer[] = [];
      for (let n = first; n <= last; n++) parts.push(await block(n));
      const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      return joined.subarray(offset - first * BLOCK, end - first * BLOCK);
    },
  };
}

const WINDOW = 64 * 1024;

/**
 * Sequential little-endian reads over a ByteSource, buffered in 64 KiB windows. `has(n)` says
 * whether n bytes are buffered (so hot loops stay synchronous); `fill(n)` buffers them, and fails
 * with MalformedHeaderError when the file ends first. `skip(n)` moves on without reading.
 */
export class Cursor {
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  private at: number;

  constructor(
    private readonly src: ByteSource,
    offset = 0,
  ) {
    this.at = offset;
  }

  get position(): number {
    return this.at;
  }

  get remaining(): number {
    return this.src.size - this.at;
  }

  has(n: number): boolean {
    return this.at >= this.bufStart && this.at + n <= this.bufStart + this.buf.length;
  }

  async fill(n: number, what = 'the header'): Promise<void> {
    if (this.has(n)) return;
    if (n > this.remaining) throw new MalformedHeaderError(`the file ends inside ${what} (needs ${n} more bytes at offset ${this.at}, ${this.remaining} left)`);
    const keep = this.at >= this.bufStart && this.at < this.bufStart + this.buf.length ? this.buf.subarray(this.at - this.bufStart) : Buffer.alloc(0);
    const more = await this.src.read(this.at + keep.length, Math.max(n - keep.length, WINDOW));
    this.buf = keep.length > 0 ? Buffer.concat([keep, more]) : more;
    this.bufStart = this.at;
    if (this.buf.length < n) throw new MalformedHeaderError(`the file ends inside ${what}`);
  }

  /** Up to n bytes (fewer at the end of the file), buffered. */
  async fillUpTo(n: number): Promise<number> {
    const want = Math.min(n, this.remaining);
    await this.fill(want);
    return want;
  }

  skip(n: number, what = 'the header'): void {
    if (n > this.remaining) throw new MalformedHeaderError(`${what} claims ${n} bytes at offset ${this.at}, but only ${this.remaining} are left in the file`);
    this.at += n;
  }

  /** Buffered bytes only: call has()/fill() first. */
  peek(n: number): Buffer {
    return this.buf.subarray(this.at - this.bufStart, this.at - this.bufStart + n);
  }

  take(n: number): Buffer {
    const out = this.peek(n);
    this.at += n;
    return out;
  }

  u8(): number {
    return this.buf[this.at++ - this.bufStart]!;
  }
  u16(): number {
    const v = this.buf.readUInt16LE(this.at - this.bufStart);
    this.at += 2;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.at - this.bufStart);
    this.at += 4;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32LE(this.at - this.bufStart);
    this.at += 4;
    return v;
  }
  u64(): bigint {
    const v = this.buf.readBigUInt64LE(this.at - this.bufStart);
    this.at += 8;
    return v;
  }
  i64(): bigint {
    const v = this.buf.readBigInt64LE(this.at - this.bufStart);
    this.at += 8;
    return v;
  }
  f32(): number {
    const v = this.buf.readFloatLE(this.at - this.bufStart);
    this.at += 4;
    return v;
  }
  f64(): number {
    const v = this.buf.readDoubleLE(this.at - this.bufStart);
    this.at += 8;
    return v;
  }
}

/** A u64 as a JSON-safe value: a number when exact, else its decimal string. */
export function jsonInteger(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** A parameter count as a number; beyond 2^53 the header cannot be describing real bytes. */
export function safeCount(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedHeaderError(`${what} of ${v} is beyond any real file`);
  return Number(v);
}
