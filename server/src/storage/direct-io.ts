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
const WASM_PAGE = 64 * 1024;
/** Buffers per WebAssembly.Memory (each Memory reserves address space of its own; few, larger ones). */
const BUFFERS_PER_BLOCK = 8;
/** Free buffers kept for reuse; more than this many are dropped (with their whole block when unused). */
const MAX_FREE_BUFFERS = 16;

/** `O_DIRECT` where the platform has it (Linux), else undefined. */
export const O_DIRECT: number | undefined = (fsConstants as Record<string, number | undefined>).O_DIRECT;

/** A page-aligned buffer of DIRECT_BUFFER_BYTES from the shared pool; give it back with `release`. */
export interface AlignedBuffer {
  readonly bytes: Buffer;
  release(): void;
}

const free: Buffer[] = [];

/**
 * Takes a buffer from the pool (allocating a block of them when the pool is empty). The pool keeps
 * up to MAX_FREE_BUFFERS buffers; their memory stays resident, which is the point: reused memory
 * is warm, fresh memory costs page faults.
 */
export function takeAlignedBuffer(): AlignedBuffer {
  if (free.length === 0) {
    const memory = new WebAssembly.Memory({ initial: (DIRECT_BUFFER_BYTES * BUFFERS_PER_BLOCK) / WASM_PAGE });
    const block = Buffer.from(memory.buffer);
    for (let i = BUFFERS_PER_BLOCK - 1; i >= 0; i--) free.push(block.subarray(i * DIRECT_BUFFER_BYTES, (i + 1) * DIRECT_BUFFER_BYTES));
  }
  const bytes = free.pop()!;
  let released = false;
  return {
    bytes,
    release: () => {
      if (released) return;
      released = true;
      if (free.length < MAX_FREE_BUFFERS) free.push(bytes);
    },
  };
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
