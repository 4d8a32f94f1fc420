/**
 * Direct I/O (Linux `O_DIRECT`) for writing upload parts into staging files.
 *
 * A buffered write copies every byte into the page cache, and that copy is where most of an
 * upload's kernel time goes: each page-cache page the copy lands in is memory the kernel has to
 * find and fault in first (very expensive in virtual machines whose free memory the host takes
 * back). Staged bytes are flushed to disk before a part is acknowledged anyway, so keeping them in
 * the cache buys nothing. With `O_DIRECT` the device reads the bytes straight out of a few
 * reused, page-aligned buffers of ours: the copy into those buffers is a plain memcpy into warm
 * memory, and the kernel does no per-page work.
 *
 * Direct I/O wants the buffer address, the file offset and the length aligned (to the logical
 * block size; we use 4096, which covers every common device). Node has no aligned allocation, but
 * WebAssembly memory is page-aligned, so the buffers are slices of WebAssembly.Memory objects.
 * What cannot be aligned (a part that starts off a block boundary, the last partial block of a
 * file) goes through an ordinary buffered handle: mixing the two on one file is coherent (the
 * kernel writes back and drops cached pages around direct I/O).
 *
 * Whether a directory's filesystem takes `O_DIRECT` (tmpfs before Linux 6.6 and some FUSE and
 * network filesystems refuse it) is probed once per directory by writing one aligned block to a
 * scratch file.
 */
import { randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Alignment of offsets, lengths and buffer addresses for direct I/O. */
export const DIRECT_ALIGN = 4096;
/** Size of one aligned buffer: bytes are written to the file a buffer at a time. */
export const DIRECT_BUFFER_BYTES = 1024 * 1024;
/**
 * Past this many DIRECT_BUFFER_BYTES buffers in use, writers get buffers of half the size: with
 * many chunks in flight (64 with 16 clients × 4) each fills slowly, and memory, not the write
 * count, is what grows. (A direct write costs ~80 µs of kernel time whatever its size on the
 * bench VM, so 512 KiB writes for the bytes beyond add ~0.04 CPU s per GiB; 256 KiB ones cost
 * 0.2 s more per GiB than 1 MiB ones.)
 */
const FULL_SIZE_LIMIT = 16;
const WASM_PAGE = 64 * 1024;
/** Bytes per WebAssembly.Memory (each Memory reserves address space of its own; few, larger ones). */
const BLOCK_BYTES = 8 * DIRECT_BUFFER_BYTES;
/** How long the pool must have had whole blocks free before they are dropped (see trimAlignedBuffers). */
const TRIM_AFTER_MS = 30_000;

/** `O_DIRECT` where the platform has it (Linux), else undefined. */
export const O_DIRECT: number | undefined = (fsConstants as Record<string, number | undefined>).O_DIRECT;

/** A page-aligned buffer from the shared pool (DIRECT_BUFFER_BYTES, or half that when many are in use); give it back with `release`. */
export interface AlignedBuffer {
  readonly bytes: Buffer;
  release(): void;
}

/** One WebAssembly.Memory of BLOCK_BYTES cut into buffers of `size`, and those of them not in use. */
interface Block {
  readonly id: number;
  readonly size: number;
  readonly count: number;
  readonly free: Buffer[];
  /** Since when every buffer of the block is free (Date.now()), or null. */
  idleSince: number | null;
}

/** Oldest first. A block is dropped only as a whole (its Memory is freed once nothing refers to it). */
const blocks: Block[] = [];
let nextBlockId = 0;
let inUse = 0;
let fullSizeInUse = 0;
let trimTimer: NodeJS.Timeout | null = null;

/**
 * Takes a buffer from the pool, allocating a block of them when none is free. Released buffers are
 * all kept for reuse, so the pool holds as many as were ever in use at once (one per chunk being
 * received: 16 × 1 MiB + 48 × 512 KiB with 64 chunks in flight), and reused memory is warm (fresh memory costs page
 * faults). Buffers come from the oldest block that has one free, so that with less traffic the
 * newer blocks fall entirely free and trimAlignedBuffers can drop them. (Keeping only a fixed
 * number of free buffers instead dropped single buffers of blocks still in use: with more chunks
 * in flight than that number, every dip in traffic dropped buffers and every rise allocated new
 * blocks, and the half-used blocks piled up until garbage collection: 115 MB of blocks for 64
 * chunks in flight.)
 */
export function takeAlignedBuffer(): AlignedBuffer {
  const size = fullSizeInUse < FULL_SIZE_LIMIT ? DIRECT_BUFFER_BYTES : DIRECT_BUFFER_BYTES / 2;
  let block = blocks.find((b) => b.size === size && b.free.length > 0);
  if (!block) {
    const memory = new WebAssembly.Memory({ initial: BLOCK_BYTES / WASM_PAGE });
    const whole = Buffer.from(memory.buffer);
    const count = BLOCK_BYTES / size;
    const free: Buffer[] = [];
    for (let i = count - 1; i >= 0; i--) free.push(whole.subarray(i * size, (i + 1) * size));
    block = { id: nextBlockId++, size, count, free, idleSince: null };
    blocks.push(block);
  }
  const bytes = block.free.pop()!;
  block.idleSince = null;
  const owner = block;
  inUse++;
  if (size === DIRECT_BUFFER_BYTES) fullSizeInUse++;
  let released = false;
  return {
    bytes,
    release: () => {
      if (released) return;
      released = true;
      inUse--;
      if (owner.size === DIRECT_BUFFER_BYTES) fullSizeInUse--;
      owner.free.push(bytes);
      if (owner.free.length === owner.count) {
        owner.idleSince = Date.now();
        scheduleTrim();
      }
    },
  };
}

/** While blocks beyond the first are entirely free, looks again every TRIM_AFTER_MS and drops those idle that long. */
function scheduleTrim(): void {
  if (trimTimer) return;
  trimTimer = setTimeout(() => {
    trimTimer = null;
    trimAlignedBuffers();
    if (blocks.some((b, i) => i > 0 && b.idleSince !== null)) scheduleTrim();
  }, TRIM_AFTER_MS);
  trimTimer.unref();
}

/**
 * Drops every block but the first whose buffers have all been free for `idleMs` (a burst of
 * uploads is over: its memory goes back once garbage collection frees the blocks); returns the
 * number dropped. Runs on a timer after traffic fell; exported for tests.
 */
export function trimAlignedBuffers(idleMs = TRIM_AFTER_MS, now = Date.now()): number {
  let dropped = 0;
  for (let i = blocks.length - 1; i > 0; i--) {
    const { idleSince } = blocks[i]!;
    if (idleSince !== null && now - idleSince >= idleMs) {
      blocks.splice(i, 1);
      dropped++;
    }
  }
  return dropped;
}

/** The pool's size: blocks allocated, buffers free in them and buffers in use (for tests and diagnostics). */
export function alignedBufferPool(): { blocks: number; free: number; inUse: number } {
  return { blocks: blocks.length, free: blocks.reduce((sum, b) => sum + b.free.length, 0), inUse };
}

const probes = new Map<string, Promise<boolean>>();

/**
 * Whether files in `dir` can be written with O_DIRECT (probed once per directory; false off Linux,
 * and from the moment a direct write there was refused: see writeAligned).
 */
export function directIoWorks(dir: string): Promise<boolean> {
  let probe = probes.get(dir);
  if (!probe) {
    probe = probeDirectIo(dir);
    probes.set(dir, probe);
  }
  return probe;
}

/** From now on, files in `dir` are written through the page cache. */
export function stopDirectIo(dir: string): void {
  probes.set(dir, Promise.resolve(false));
}

async function probeDirectIo(dir: string): Promise<boolean> {
  if (O_DIRECT === undefined) return false;
  const scratch = path.join(dir, `direct-io-probe-${randomUUID()}.tmp`);
  const buffer = takeAlignedBuffer();
  try {
    const fh = await open(scratch, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL | O_DIRECT, 0o600);
    try {
      const { bytesWritten } = await fh.write(buffer.bytes, 0, DIRECT_ALIGN, 0);
      return bytesWritten === DIRECT_ALIGN;
    } finally {
      await fh.close();
    }
  } catch {
    return false; // EINVAL: this filesystem does not do direct I/O
  } finally {
    buffer.release();
    await rm(scratch, { force: true }).catch(() => {});
  }
}

const aligned = (n: number) => n % DIRECT_ALIGN === 0;

/**
 * Writes `length` bytes of an aligned buffer at `position`. Whatever cannot go through the direct
 * handle (an unaligned tail, or the rest after an unaligned short write) goes through the handle
 * `buffered()` opens on the same file. A direct write the filesystem refuses (EINVAL: an alignment
 * it wants bigger than the probe's) is made through `buffered()` as well, and `refused()` is
 * called, once, so the caller can stop trying.
 */
export async function writeAligned(
  direct: FileHandle,
  buffered: () => Promise<FileHandle>,
  bytes: Buffer,
  length: number,
  position: number,
  refused: () => void = () => {},
): Promise<void> {
  let done = 0;
  let directRefused = false;
  while (done < length) {
    const rest = length - done;
    const directPart = !directRefused && aligned(done) && aligned(position + done) ? rest - (rest % DIRECT_ALIGN) : 0;
    let bytesWritten: number;
    if (directPart > 0) {
      try {
        ({ bytesWritten } = await direct.write(bytes, done, directPart, position + done));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        directRefused = true;
        refused();
        continue;
      }
    } else {
      ({ bytesWritten } = await (await buffered()).write(bytes, done, rest, position + done));
    }
    if (bytesWritten <= 0) throw new Error(`write wrote nothing at ${position + done}`);
    done += bytesWritten;
  }
}
