/**
 * BlobStore on a local directory (the single-machine default).
 *
 * Layout under `dir`:
 *   <key>                       committed blobs (e.g. artifacts/<uuid>/<uuid>)
 *   .staging/<sha256(key)>      one sparse file per staged upload; parts are written at their offsets
 *   .staging/*.replace, *.tmp   short-lived side files of part re-sends and put(); replace files a crash
 *                               left are removed when their staged upload is committed or aborted
 *   .staging/<sha>.<i>@<off>.redo  a re-sent part, complete and durable, while it is copied in; one a
 *                               crash left is copied in again by commitStaged (see putPart)
 * Keys can never start with "." (secure-path.ts), so `.staging` cannot collide with a blob.
 *
 * Durability: every method that resolves "stored" has fsynced the data, and renames are followed
 * by an fsync of the directory, so a power loss cannot undo an acknowledged write. First writes of
 * parts and put() bodies go past the page cache (direct I/O, see direct-io.ts) where the
 * filesystem allows it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  BlobNotFoundError,
  BlobRangeError,
  BlobTooLargeError,
  PartLengthError,
  StagedPartMismatchError,
  StagedUploadNotFoundError,
  assertCompletePartList,
  type BlobStore,
  type BlobStoreCapabilities,
  type PartInput,
  type StagedPart,
  type StagedUpload,
} from './blob-store.ts';
import { DIRECT_ALIGN, directIoWorks, O_DIRECT, stopDirectIo, takeAlignedBuffer, writeAligned } from './direct-io.ts';
import { resolveKeyPath } from './secure-path.ts';

export interface FsBlobStoreOptions {
  /** Root directory; created on first use. */
  dir: string;
  /**
   * Write staged parts and put() bodies with direct I/O (O_DIRECT) where the filesystem allows it
   * (default true; see direct-io.ts). False writes everything through the page cache.
   */
  directIo?: boolean;
}

const STAGING_DIR = '.staging';
/** Read-stream buffer: larger reads mean fewer syscalls and faster downloads. */
const READ_HIGH_WATER_MARK = 1024 * 1024;
const COPY_BUFFER_SIZE = 1024 * 1024;

export class FsBlobStore implements BlobStore {
  readonly backend = 'fs' as const;
  /** Absolute root directory. */
  readonly root: string;
  readonly directIo: boolean;
  readonly capabilities: BlobStoreCapabilities;
  private readonly stagingDir: string;

  constructor(options: FsBlobStoreOptions) {
    this.root = path.resolve(options.dir);
    this.stagingDir = path.join(this.root, STAGING_DIR);
    this.directIo = options.directIo ?? true;
    this.capabilities = Object.freeze({ readStagedParts: true, presign: false, localFiles: true, directIo: this.directIo });
  }

  async beginStaged(key: string, opts: { totalSize: number; contentType: string }): Promise<StagedUpload> {
    assertByteCount(opts.totalSize, 'totalSize');
    const stagingPath = this.stagingPathOf(key);
    await ensureDirDurable(this.stagingDir);
    const fh = await open(stagingPath, 'w');
    try {
      await fh.truncate(opts.totalSize); // sparse: no disk blocks until parts arrive
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncDir(this.stagingDir);
    return { key, uploadId: null };
  }

  async putPart(staged: StagedUpload, part: PartInput): Promise<{ etag: string | null }> {
    assertByteCount(part.offset, 'offset');
    assertByteCount(part.size, 'size');
    const stagingPath = this.stagingPathOf(staged.key);
    const notFound = () => new StagedUploadNotFoundError(staged.key);
    // A first write goes straight to the device where it can (see direct-io.ts); the unaligned
    // rest, if any, through a second, ordinary handle.
    const direct = this.directIo && !part.replace && part.offset % DIRECT_ALIGN === 0 && (await directIoWorks(this.stagingDir));
    const fh = await openExisting(stagingPath, direct ? fsConstants.O_RDWR | O_DIRECT! : 'r+', notFound);
    let buffered: Promise<FileHandle> | undefined;
    try {
      const { size: totalSize } = await fh.stat();
      if (part.offset + part.size > totalSize) {
        throw new RangeError(`Part ${part.index} (${part.offset}+${part.size}) extends past the upload's ${totalSize} bytes`);
      }
      if (direct) {
        const openBuffered = () => (buffered ??= openExisting(stagingPath, 'r+', notFound));
        await writeAllDirect(part.body, fh, openBuffered, part.offset, { exact: part.size }, () => stopDirectIo(this.stagingDir));
        await fh.datasync(); // flushes the file, whichever handle wrote
      } else if (!part.replace) {
        await writeAll(part.body, fh, part.offset, { exact: part.size });
        await fh.datasync();
      } else {
        // The earlier part must survive a failed re-send, and the new one must never land half:
        // receive into a side file first; once the new bytes are complete and durable, rename it
        // to the part's redo file (one name per index: a newer re-send replaces an older one) and
        // only then copy it in. A crash during the copy leaves the redo file behind, and
        // commitStaged copies it in again before anything reads the staging file.
        const sidePath = `${stagingPath}.${part.index}.${randomUUID()}.replace`;
        const redoPath = redoPathOf(stagingPath, part.index, part.offset);
        const side = await open(sidePath, 'wx+'); // read back by copyRange
        let published = false;
        try {
          await writeAll(part.body, side, 0, { exact: part.size });
          await side.datasync();
          const written = (await side.stat()).size;
          if (written !== part.size) throw new Error(`Side file holds ${written} bytes, expected ${part.size}`);
          await rename(sidePath, redoPath);
          published = true;
          await fsyncDir(this.stagingDir);
          await copyRange(side, part.size, fh, part.offset);
          await fh.datasync();
          // A crash before this unlink reaches the disk only copies the same bytes in again.
          await rm(redoPath, { force: true });
        } finally {
          await side.close();
          // A published redo file stays when the copy failed: the part's range may be torn.
          if (!published) await rm(sidePath, { force: true });
        }
      }
    } finally {
      await fh.close();
      await buffered?.then((handle) => handle.close()).catch(() => {});
    }
    return { etag: null };
  }

  async commitStaged(
    staged: StagedUpload,
    parts: StagedPart[],
    opts: { totalSize: number; contentType: string; verifyParts?: boolean },
  ): Promise<{ sha256: string | null }> {
    const sorted = assertCompletePartList(parts, opts.totalSize);
    const finalPath = resolveKeyPath(this.root, staged.key);
    const stagingPath = this.stagingPathOf(staged.key);
    const alreadyCommitted = async () => (await this.head(staged.key))?.size === opts.totalSize;

    let fh: FileHandle;
    try {
      fh = await open(stagingPath, 'r+');
    } catch (err) {
      if (isErrno(err, 'ENOENT') && (await alreadyCommitted())) return { sha256: null };
      if (isErrno(err, 'ENOENT')) throw new StagedUploadNotFoundError(staged.key, { cause: err });
      throw err;
    }
    let sha256: string | null = null;
    try {
      const { size } = await fh.stat();
      if (size !== opts.totalSize) throw new Error(`Staging file for ${staged.key} has ${size} bytes, expected ${opts.totalSize}`);
      await this.applyRedoFiles(stagingPath, fh, sorted);
      await fh.sync();
      if (opts.verifyParts) sha256 = await verifyParts(fh, sorted, staged.key);
    } finally {
      await fh.close();
    }
    const finalDir = path.dirname(finalPath);
    await ensureDirDurable(finalDir);
    try {
      await rename(stagingPath, finalPath);
    } catch (err) {
      // A concurrent commit of the same upload won the rename.
      if (isErrno(err, 'ENOENT') && (await alreadyCommitted())) return { sha256: null };
      throw err;
    }
    await fsyncDir(finalDir);
    await fsyncDir(this.stagingDir);
    await this.removeReplaceFiles(stagingPath);
    return { sha256 };
  }

  /**
   * Copies in the redo files of part re-sends whose copy a crash interrupted (see putPart), then
   * removes them (after the staging file is flushed: a crash in between copies them again). A redo
   * file that does not fit a recorded part (index, offset, size) is removed without being copied.
   */
  private async applyRedoFiles(stagingPath: string, fh: FileHandle, parts: StagedPart[]): Promise<void> {
    const prefix = `${path.basename(stagingPath)}.`;
    const names = (await readdir(this.stagingDir).catch(() => [] as string[])).filter((n) => n.startsWith(prefix) && n.endsWith('.redo'));
    if (names.length === 0) return;
    const offsets: number[] = [];
    parts.reduce((offset, p) => (offsets.push(offset), offset + p.size), 0);
    for (const name of names) {
      const match = /^(\d+)@(\d+)\.redo$/.exec(name.slice(prefix.length));
      const index = match ? Number(match[1]) : -1;
      const part = parts[index];
      if (!part || Number(match![2]) !== offsets[index]) continue;
      const redo = await open(path.join(this.stagingDir, name), 'r').catch(() => null);
      if (!redo) continue; // a concurrent commit took it
      try {
        if ((await redo.stat()).size === part.size) await copyRange(redo, part.size, fh, offsets[index]!);
      } finally {
        await redo.close();
      }
    }
    await fh.datasync();
    await Promise.all(names.map((name) => rm(path.join(this.stagingDir, name), { force: true })));
  }

  /**
   * Side files of part re-sends that a crash left behind (a live one is unlinked harmlessly: its
   * writer holds it open). Run when the staged upload ends, so a crash never leaks disk for good.
   */
  private async removeReplaceFiles(stagingPath: string): Promise<void> {
    const prefix = `${path.basename(stagingPath)}.`;
    const names = await readdir(this.stagingDir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((name) => name.startsWith(prefix) && (name.endsWith('.replace') || name.endsWith('.redo')))
        .map((name) => rm(path.join(this.stagingDir, name), { force: true })),
    );
  }

  localStagedPath(staged: StagedUpload): string {
    return this.stagingPathOf(staged.key);
  }

  async abortStaged(staged: StagedUpload): Promise<void> {
    const stagingPath = this.stagingPathOf(staged.key);
    await rm(stagingPath, { force: true });
    await this.removeReplaceFiles(stagingPath);
  }

  async put(key: string, body: Readable, opts: { contentType: string; maxBytes?: number }): Promise<{ size: number }> {
    const finalPath = resolveKeyPath(this.root, key);
    await ensureDirDurable(this.stagingDir);
    const tmpPath = path.join(this.stagingDir, `put-${randomUUID()}.tmp`);
    const direct = this.directIo && (await directIoWorks(this.stagingDir));
    const fh = await open(tmpPath, direct ? fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | O_DIRECT! : 'wx');
    let buffered: Promise<FileHandle> | undefined;
    let size: number;
    try {
      if (direct) {
        const openBuffered = () => (buffered ??= open(tmpPath, 'r+'));
        size = await writeAllDirect(body, fh, openBuffered, 0, { max: opts.maxBytes }, () => stopDirectIo(this.stagingDir));
        await (await buffered)?.close();
      } else {
        size = await writeAll(body, fh, 0, { max: opts.maxBytes });
      }
      await fh.sync();
      await fh.close();
      const finalDir = path.dirname(finalPath);
      await ensureDirDurable(finalDir);
      await rename(tmpPath, finalPath);
      await fsyncDir(finalDir);
    } catch (err) {
      await fh.close().catch(() => {}); // may already be closed
      await buffered?.then((handle) => handle.close()).catch(() => {});
      await rm(tmpPath, { force: true });
      throw err;
    }
    return { size };
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const filePath = resolveKeyPath(this.root, key);
    if (range) assertRange(range);
    const fh = await openExisting(filePath, 'r', () => new BlobNotFoundError(key));
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new BlobNotFoundError(key);
      if (range && range.start >= st.size) throw new BlobRangeError(key, range);
    } catch (err) {
      await fh.close();
      throw err;
    }
    // The stream owns the handle and closes it at end, error or destroy.
    return fh.createReadStream({
      highWaterMark: READ_HIGH_WATER_MARK,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async openLocal(key: string, range?: { start: number; end: number }): Promise<{ file: FileHandle; size: number }> {
    const filePath = resolveKeyPath(this.root, key);
    if (range) assertRange(range);
    const file = await openExisting(filePath, 'r', () => new BlobNotFoundError(key));
    try {
      const st = await file.stat();
      if (!st.isFile()) throw new BlobNotFoundError(key);
      if (range && range.start >= st.size) throw new BlobRangeError(key, range);
      return { file, size: st.size };
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  async head(key: string): Promise<{ size: number } | null> {
    const filePath = resolveKeyPath(this.root, key);
    try {
      const st = await stat(filePath);
      return st.isFile() ? { size: st.size } : null;
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const filePath = resolveKeyPath(this.root, key);
    try {
      await unlink(filePath);
    } catch (err) {
      // EISDIR: a directory of other blobs is not a blob — nothing to delete.
      if (!isErrno(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw err;
    }
    // Empty parent directories are left in place: removing them would race with a concurrent
    // put/commit into the same directory, and they cost nothing.
  }

  async downloadUrl(key: string): Promise<string | null> {
    resolveKeyPath(this.root, key); // same key checks as every other method
    return null;
  }

  /** `fs://<key>`: where the bytes are inside the store, never the host's directory layout. */
  uri(key: string): string {
    resolveKeyPath(this.root, key); // same key checks as every other method
    return fsUriOf(key);
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await access(this.root, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
  }

  async close(): Promise<void> {}

  /** Staging file of a key: a hash, so any key maps to one short, flat file name. */
  private stagingPathOf(key: string): string {
    resolveKeyPath(this.root, key); // validates the key
    return path.join(this.stagingDir, createHash('sha256').update(key).digest('hex'));
  }
}

// ---------------------------------------------------------------------------------------------

/** The redo file of a part re-send (see putPart): one per index, named with the part's offset. */
function redoPathOf(stagingPath: string, index: number, offset: number): string {
  return `${stagingPath}.${index}@${offset}.redo`;
}

/**
 * Reads a staging file once, checking each part's bytes against the SHA-256 recorded for it;
 * returns the SHA-256 of the whole file. Parts whose bytes differ → StagedPartMismatchError.
 */
async function verifyParts(fh: FileHandle, parts: StagedPart[], key: string): Promise<string> {
  const whole = createHash('sha256');
  const buffer = Buffer.allocUnsafe(COPY_BUFFER_SIZE);
  const wrong: number[] = [];
  let position = 0;
  for (const part of parts) {
    if (typeof part.sha256 !== 'string') throw new Error(`Part ${part.index} has no recorded SHA-256 to verify`);
    const hash = createHash('sha256');
    for (let left = part.size; left > 0; ) {
      const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.length, left), position);
      if (bytesRead === 0) throw new Error(`Staging file ended at ${position}, inside part ${part.index}`);
      const piece = buffer.subarray(0, bytesRead);
      hash.update(piece);
      whole.update(piece);
      position += bytesRead;
      left -= bytesRead;
    }
    if (hash.digest('hex') !== part.sha256.toLowerCase()) wrong.push(part.index);
  }
  if (wrong.length > 0) throw new StagedPartMismatchError(key, wrong);
  return whole.digest('hex');
}

/** The storage_uri of a filesystem blob: `fs://` and its key, each segment percent-encoded. */
export function fsUriOf(key: string): string {
  return `fs://${key.split('/').map(encodeURIComponent).join('/')}`;
}

function assertByteCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer, got ${n}`);
}

function assertRange(range: { start: number; end: number }): void {
  assertByteCount(range.start, 'range.start');
  assertByteCount(range.end, 'range.end');
  if (range.end < range.start) throw new RangeError(`range.end (${range.end}) is before range.start (${range.start})`);
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

async function openExisting(filePath: string, flags: string | number, notFound: () => Error): Promise<FileHandle> {
  try {
    return await open(filePath, flags);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw notFound();
    throw err;
  }
}

/** Pieces are gathered into one vectored write once they hold this many bytes (or this many pieces). */
const WRITE_SLICE_BYTES = 1024 * 1024;
const WRITE_SLICE_PIECES = 512;

/**
 * Writes a stream at `position` (positional writes: parts may land in parallel) and returns the
 * byte count. The pieces are written as they came, without copying, but gathered into one `writev`
 * per ~1 MiB: one write call per socket piece (~64 KiB) cost more main-thread time than the
 * hashing of those bytes. The stream is read directly (no counting stream in between: each stream
 * hop costs main-thread time per piece) and never destroyed: the caller owns it.
 *
 * - `exact`: the stream must deliver exactly this many bytes (PartLengthError otherwise, thrown as
 *   soon as the excess arrives). The last batch is written only once the stream has ended, so a
 *   body of the wrong length never leaves a complete part behind.
 * - `max`: BlobTooLargeError once more than this many bytes arrive.
 *
 * Nothing is written that the stream did not deliver; when it fails, the pieces not yet written
 * are dropped.
 */
async function writeAll(source: Readable, fh: FileHandle, position: number, limits: WriteLimits = {}): Promise<number> {
  const counter = new ByteCounter(limits);
  let pos = position;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    if (chunk.length === 0) continue;
    counter.add(chunk.length);
    pending.push(chunk);
    pendingBytes += chunk.length;
    if ((pendingBytes >= WRITE_SLICE_BYTES || pending.length >= WRITE_SLICE_PIECES) && !counter.complete) {
      await writevAt(fh, pending, pos);
      pos += pendingBytes;
      pending = [];
      pendingBytes = 0;
    }
  }
  counter.end();
  if (pendingBytes > 0) await writevAt(fh, pending, pos);
  return counter.count;
}

/** writeAll's limits: `exact` bytes (PartLengthError otherwise), at most `max` (BlobTooLargeError). */
type WriteLimits = { exact?: number; max?: number };

/** Counts a stream's bytes against WriteLimits: too many throw at once, too few at `end()`. */
class ByteCounter {
  count = 0;
  readonly exact: number | undefined;
  private readonly max: number;
  private readonly limit: number;

  constructor(limits: WriteLimits) {
    this.exact = limits.exact;
    this.max = limits.max ?? Number.POSITIVE_INFINITY;
    this.limit = Math.min(this.exact ?? Number.POSITIVE_INFINITY, this.max);
  }

  add(bytes: number): void {
    this.count += bytes;
    if (this.count <= this.limit) return;
    throw this.exact !== undefined && this.exact <= this.max ? new PartLengthError(this.exact, this.count) : new BlobTooLargeError(this.max);
  }

  /** Whether an exact count has been reached (the bytes that complete a part: hold them back). */
  get complete(): boolean {
    return this.count === this.exact;
  }

  end(): void {
    if (this.exact !== undefined && this.count !== this.exact) throw new PartLengthError(this.exact, this.count);
  }
}

/**
 * writeAll for direct I/O (`fh` opened with O_DIRECT, `position` aligned): the stream copied into
 * an aligned buffer of the pool and written a buffer at a time; an unaligned tail goes through
 * `buffered()`. The limits are writeAll's: with `exact`, the bytes that complete the part are
 * written only once the stream has ended. Nothing is written that the stream did not deliver.
 */
async function writeAllDirect(
  source: Readable,
  fh: FileHandle,
  buffered: () => Promise<FileHandle>,
  position: number,
  limits: WriteLimits,
  refused: () => void,
): Promise<number> {
  const counter = new ByteCounter(limits);
  const buffer = takeAlignedBuffer();
  const bytes = buffer.bytes;
  let fill = 0;
  let written = 0;
  try {
    for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      counter.add(chunk.length);
      for (let from = 0; from < chunk.length; ) {
        const copied = chunk.copy(bytes, fill, from);
        fill += copied;
        from += copied;
        if (fill < bytes.length) continue;
        // A full buffer; held back only when it completes an exact part (then no byte can follow).
        if (written + fill === counter.exact) break;
        await writeAligned(fh, buffered, bytes, fill, position + written, refused);
        written += fill;
        fill = 0;
      }
    }
    counter.end();
    if (fill > 0) await writeAligned(fh, buffered, bytes, fill, position + written, refused);
    return counter.count;
  } finally {
    buffer.release();
  }
}

/** Writes all of `buffers` at `position`; a short write continues where it stopped. */
async function writevAt(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten } = await fh.writev(rest, position);
    if (bytesWritten <= 0) throw new Error(`writev wrote nothing at ${position}`);
    position += bytesWritten;
    const left: Buffer[] = [];
    for (const b of rest) {
      if (bytesWritten >= b.length) bytesWritten -= b.length;
      else {
        left.push(bytesWritten > 0 ? b.subarray(bytesWritten) : b);
        bytesWritten = 0;
      }
    }
    rest = left;
  }
}

/** Copies `length` bytes from the start of `from` to `position` in `to`, through a bounded buffer. */
async function copyRange(from: FileHandle, length: number, to: FileHandle, position: number): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(COPY_BUFFER_SIZE, Math.max(length, 1)));
  let copied = 0;
  while (copied < length) {
    const { bytesRead } = await from.read(buffer, 0, Math.min(buffer.length, length - copied), copied);
    if (bytesRead === 0) throw new Error(`Side file ended after ${copied} of ${length} bytes`);
    let written = 0;
    while (written < bytesRead) {
      const { bytesWritten } = await to.write(buffer, written, bytesRead - written, position + copied + written);
      written += bytesWritten;
    }
    copied += bytesRead;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** mkdir -p, then fsync every directory it created and the parent of the topmost one. */
async function ensureDirDurable(dir: string): Promise<void> {
  const firstCreated = await mkdir(dir, { recursive: true });
  if (firstCreated === undefined) return;
  const stop = path.dirname(firstCreated);
  for (let d = dir; ; d = path.dirname(d)) {
    await fsyncDir(d);
    if (d === stop || d === path.dirname(d)) break;
  }
}
