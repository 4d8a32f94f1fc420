/**
 * The storage contract for artifact bytes. Two implementations (fs-blob-store.ts, s3-blob-store.ts)
 * pass the same conformance suite (test/integration/storage/conformance.ts); services depend only on
 * this interface. Storage only stores: it never touches the database and never decides
 * HTTP status codes — it throws the typed errors below and the caller maps them.
 *
 * Keys are produced by the server (e.g. `artifacts/<uuid>/<uuid>`). Both stores accept the same key
 * language (see secure-path.ts): `/`-separated non-empty segments, no `.`/`..`, no segment starting
 * with `.`, no backslash, NUL or control characters; anything else → InvalidBlobKeyError.
 */
import type { FileHandle } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';

export type StorageBackend = 'fs' | 's3';

/**
 * Handle of a staged (chunked) upload. Persist both fields with the upload session: any process
 * can continue the upload from them (docs/architecture.md, "Upload pipeline").
 */
export interface StagedUpload {
  /** The blob's FINAL key: after commitStaged the bytes are readable under it. */
  key: string;
  /** S3 multipart UploadId; null for fs, and for a 0-byte upload on S3 (no parts exist). */
  uploadId: string | null;
}

/** One received part as recorded in OUR database (the source of truth for the part list). */
export interface StagedPart {
  /** 0-based chunk index. */
  index: number;
  size: number;
  /** What putPart returned: the S3 part ETag (required on S3), null on fs. */
  etag: string | null;
  /** SHA-256 (hex) of the bytes recorded for this part; needed with commitStaged's `verifyParts`. */
  sha256?: string;
}

export interface PartInput {
  /** 0-based chunk index (S3 PartNumber = index + 1). */
  index: number;
  /** Byte offset of this part in the final blob: index * chunkSize. */
  offset: number;
  /** Exact number of bytes `body` must deliver. */
  size: number;
  /** Not destroyed by the store on failure: the caller still owns it (e.g. to answer 422). */
  body: Readable;
  /** True when a part with this index was stored before and must survive a failed re-send. */
  replace: boolean;
}

/**
 * What a store can do beyond the common contract. Every member of BlobStore exists on every store;
 * where a capability is false the member answers null instead (callers check the capability, or
 * the null). The conformance suite holds each store to what it declares.
 */
export interface BlobStoreCapabilities {
  /**
   * localStagedPath names a local file holding a staged upload's stored parts at their offsets
   * (fs); false: staged parts cannot be read before the commit (s3), localStagedPath answers null.
   */
  readonly readStagedParts: boolean;
  /** downloadUrl answers short-lived presigned URLs (s3); false: it answers null (fs). */
  readonly presign: boolean;
  /** openLocal opens the blob's local file (fs); false: it answers null (s3), read with get(). */
  readonly localFiles: boolean;
  /**
   * Staged parts are written with direct I/O (past the page cache) where the filesystem allows
   * it, so readers of localStagedPath files should read the same way: the bytes are not cached.
   */
  readonly directIo: boolean;
}

export interface BlobStore {
  readonly backend: StorageBackend;
  readonly capabilities: BlobStoreCapabilities;

  /**
   * Starts a staged (chunked) upload of `totalSize` bytes whose result will live at `key`.
   * Nothing is visible under `key` until commitStaged. The key is the final one because on S3 a
   * multipart upload completes in place: moving it afterwards would mean copying gigabytes.
   * fs: creates one sparse staging file of `totalSize` bytes under `<dir>/.staging/`.
   * s3: CreateMultipartUpload (skipped for totalSize 0: uploadId is then null).
   * Calling it again for the same key starts over (fs truncates; s3 gets a new UploadId).
   */
  beginStaged(key: string, opts: { totalSize: number; contentType: string }): Promise<StagedUpload>;

  /**
   * Stores one part. Resolves only when the part is durable (fs: fsynced; s3: UploadPart answered).
   * The body must deliver exactly `part.size` bytes: a shorter body, or a longer one (cut off as soon
   * as the excess arrives, never read to its end), rejects with PartLengthError and the part is not
   * stored. With `replace: true` a failed write leaves the earlier stored part intact
   * (fs: written to a side file, verified, then copied in — a copy a crash interrupts is redone by
   * commitStaged; s3: S3 replaces a part only on success).
   * Without `replace` a failed write may leave garbage in that part's byte range — harmless, since
   * the caller records only parts whose putPart resolved. When unsure, pass `replace: true`: it is
   * always safe, it only costs one extra copy on fs.
   * Rejects with StagedUploadNotFoundError when the staged upload is gone (aborted/committed).
   */
  putPart(staged: StagedUpload, part: PartInput): Promise<{ etag: string | null }>;

  /**
   * Makes the staged bytes the blob at `staged.key`, atomically. `parts` come from OUR database
   * (never ListParts) and must be exactly indexes 0..n-1 whose sizes sum to `totalSize`.
   * fs: completes part re-sends a crash interrupted (their redo files), fsync, rename into place,
   * fsync the directory. s3: CompleteMultipartUpload (S3 replaces a part atomically: no redo).
   * `verifyParts` (fs; S3 cannot read parts back): before anything moves, read every part and
   * check it against its recorded `sha256`; parts whose bytes differ (a re-send a crash tore)
   * reject with StagedPartMismatchError, leaving the staged upload as it was. The result's
   * `sha256` is then the digest of the whole blob (null when nothing was read).
   * Idempotent: if the staged data is gone but the blob exists with `totalSize` bytes, resolves
   * (a crash between this and the DB commit must be retryable). If neither exists →
   * StagedUploadNotFoundError.
   */
  commitStaged(
    staged: StagedUpload,
    parts: StagedPart[],
    opts: { totalSize: number; contentType: string; verifyParts?: boolean },
  ): Promise<{ sha256: string | null }>;

  /**
   * With `capabilities.readStagedParts`: the local file that holds a staged upload's bytes (fs: the
   * staging file; parts sit at their offsets); without: null (s3: the parts of an unfinished
   * multipart upload cannot be read at all). For readers of stored parts outside this store, e.g.
   * the upload service's digest of the chunks received so far, computed on another thread. Read
   * only ranges of parts recorded as stored; never write to it. The file disappears on commit/abort.
   */
  localStagedPath(staged: StagedUpload): string | null;

  /**
   * Discards staged bytes. Idempotent (an unknown/finished upload resolves). On S3 a failed
   * AbortMultipartUpload rejects with StagedAbortError so the caller's sweeper can retry later;
   * parts of an unaborted upload are billed until a bucket lifecycle rule removes them.
   */
  abortStaged(staged: StagedUpload): Promise<void>;

  /**
   * One streaming write of a body whose length is known only at its end (the single-request
   * multipart upload). Never buffers the whole body (s3: at most ~4 × 5 MiB in flight).
   * Replaces an existing blob atomically. `maxBytes`: exceeding it rejects with BlobTooLargeError
   * and leaves nothing behind. Resolves with the number of bytes stored.
   */
  put(key: string, body: Readable, opts: { contentType: string; maxBytes?: number }): Promise<{ size: number }>;

  /**
   * Streams a blob, or the inclusive byte range [start, end] of it. `end` past the last byte is
   * clamped (as in HTTP); `start` at or past the end → BlobRangeError (callers normally check the
   * range against the size they know first). Missing → BlobNotFoundError.
   */
  get(key: string, range?: { start: number; end: number }): Promise<Readable>;

  /**
   * With `capabilities.localFiles`: the blob's open file, with the checks of get() (missing →
   * BlobNotFoundError, `range.start` at or past the end → BlobRangeError). The caller reads it and
   * must close it. Lets a download reuse its read buffers instead of one new buffer per read.
   * Without: null (after the same key checks), read with get().
   */
  openLocal(key: string, range?: { start: number; end: number }): Promise<{ file: FileHandle; size: number } | null>;

  /** Size of a blob, or null when it does not exist. */
  head(key: string): Promise<{ size: number } | null>;

  /** Idempotent delete: a missing blob is not an error. */
  delete(key: string): Promise<void>;

  /**
   * With `capabilities.presign`: a short-lived URL a client can be redirected to; without: null (fs).
   * s3: presigned GET that answers with `Content-Disposition: attachment` (see contentDisposition)
   * and the given Content-Type.
   */
  downloadUrl(key: string, opts: { fileName: string; contentType: string; expiresInSeconds: number }): Promise<string | null>;

  /**
   * Public URI of a key for the artifact's storage_uri, relative to the backend: `fs://<key>`
   * (never the host's absolute path) or `s3://bucket/prefix/key`.
   */
  uri(key: string): string;

  /** Cheap health check for /readyz: rejects when the storage cannot be used. */
  ping(): Promise<void>;

  /** Releases sockets/handles (graceful shutdown, tests). The store is unusable afterwards. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors. All extend BlobStoreError so a caller can tell storage failures from programming errors.

export class BlobStoreError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The blob does not exist (HTTP: 404 "Artifact file not found"). */
export class BlobNotFoundError extends BlobStoreError {
  constructor(readonly key: string) {
    super(`Blob not found: ${key}`);
  }
}

/** The requested range starts at or after the end of the blob (HTTP: 416). */
export class BlobRangeError extends BlobStoreError {
  constructor(
    readonly key: string,
    readonly range: { start: number; end: number },
  ) {
    super(`Range ${range.start}-${range.end} is not satisfiable for blob ${key}`);
  }
}

/** A part body delivered fewer or more bytes than announced (HTTP: 422 chunk_size_mismatch). */
export class PartLengthError extends BlobStoreError {
  constructor(
    readonly expected: number,
    /** Bytes received; for a too-long body, the count at the moment it was cut off. */
    readonly received: number,
  ) {
    super(
      received < expected
        ? `Part body ended after ${received} bytes; expected exactly ${expected}`
        : `Part body exceeded the expected ${expected} bytes; cut off after ${received}`,
    );
  }

  get tooLong(): boolean {
    return this.received > this.expected;
  }
}

/** put() body exceeded `maxBytes` (HTTP: 413). */
export class BlobTooLargeError extends BlobStoreError {
  constructor(readonly maxBytes: number) {
    super(`Body exceeds the limit of ${maxBytes} bytes`);
  }
}

/** The staged upload no longer exists (aborted, expired and swept, or never begun). */
export class StagedUploadNotFoundError extends BlobStoreError {
  constructor(
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(`No staged upload for ${key} (aborted, already committed with other contents, or never begun)`, options);
  }
}

/** Staged parts whose bytes differ from the SHA-256 recorded for them (commitStaged `verifyParts`). */
export class StagedPartMismatchError extends BlobStoreError {
  constructor(
    readonly key: string,
    /** Indexes of the parts that differ, ascending. */
    readonly indexes: number[],
  ) {
    super(`Staged parts ${indexes.join(', ')} of ${key} do not hold the bytes recorded for them`);
  }
}

/** abortStaged could not discard staged bytes; they remain and the abort should be retried later. */
export class StagedAbortError extends BlobStoreError {
  constructor(
    readonly key: string,
    readonly uploadId: string | null,
    cause: unknown,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `Could not abort staged upload ${uploadId ?? '-'} for ${key}: ${why}. The staged parts remain; retry the abort later.`,
      { cause },
    );
  }
}

/** A key outside the key language (e.g. `..`, absolute, backslash): a bug in the caller. */
export class InvalidBlobKeyError extends BlobStoreError {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`Invalid blob key ${JSON.stringify(key)}: ${reason}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Streams

/**
 * Passes through exactly `expected` bytes. Errors with PartLengthError as soon as more arrive
 * (the excess is never forwarded) or, at end, if fewer arrived. It always holds back the latest
 * chunk until it knows the total is right, so a downstream consumer that counts on a
 * Content-Length (S3 UploadPart) never receives a complete body for a wrong-length part: an error
 * leaves the request short, and S3 refuses it.
 */
export class ExactLengthStream extends Transform {
  bytes = 0;
  private held: Buffer | null = null;

  constructor(readonly expected: number) {
    super();
  }

  /** Sees every accepted piece, in order, before it is passed on (e.g. to hash it). */
  protected onPiece(_piece: Buffer): void {}

  /** Runs at the end once the length is right; an error keeps the held piece back. */
  protected verify(): Error | null {
    return null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected) {
      done(new PartLengthError(this.expected, this.bytes));
      return;
    }
    this.onPiece(chunk);
    if (this.held) this.push(this.held);
    this.held = chunk;
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.bytes !== this.expected) {
      done(new PartLengthError(this.expected, this.bytes));
      return;
    }
    const error = this.verify();
    if (error) {
      done(error);
      return;
    }
    if (this.held) this.push(this.held);
    this.held = null;
    done();
  }
}

/** Counts bytes passing through; errors with BlobTooLargeError once more than `maxBytes` arrive. */
export class MaxLengthStream extends Transform {
  bytes = 0;

  constructor(readonly maxBytes = Number.POSITIVE_INFINITY) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) done(new BlobTooLargeError(this.maxBytes));
    else done(null, chunk);
  }
}

/**
 * Pipes `source` into `sink` and forwards a source error to the sink. Unlike stream.pipeline it
 * never destroys `source`: when the sink fails (wrong length, storage error) the caller still owns
 * the request stream and can answer on the same connection. Returns a function that detaches the
 * two; call it when done.
 */
export function feed(source: Readable, sink: Writable): () => void {
  if (source.destroyed) {
    const cause = source.errored ?? new Error('body stream was already destroyed');
    process.nextTick(() => sink.destroy(cause));
    return () => {};
  }
  const onError = (err: Error) => sink.destroy(err);
  // 'close' without 'end' (client went away without an error) must fail the sink, not hang it.
  const onClose = () => {
    if (!source.readableEnded) sink.destroy(source.errored ?? new Error('body stream closed before its end'));
  };
  source.once('error', onError);
  source.once('close', onClose);
  source.pipe(sink);
  return () => {
    source.off('error', onError);
    source.off('close', onClose);
    source.unpipe(sink);
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the implementations

/**
 * Checks a part list from the database before committing: indexes 0..n-1 each exactly once,
 * sizes summing to totalSize. A violation is a bug upstream, so it throws a plain Error.
 */
export function assertCompletePartList(parts: StagedPart[], totalSize: number): StagedPart[] {
  const sorted = [...parts].sort((a, b) => a.index - b.index);
  let sum = 0;
  sorted.forEach((p, i) => {
    if (p.index !== i) throw new Error(`Part list is not contiguous: expected index ${i}, got ${p.index}`);
    sum += p.size;
  });
  if (sum !== totalSize) throw new Error(`Part sizes sum to ${sum} bytes, expected ${totalSize}`);
  return sorted;
}

/** Longest file name (in characters) kept in Content-Disposition; longer names are shortened. */
const MAX_DISPOSITION_NAME = 150;

/**
 * `attachment; filename="<ascii fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266, RFC 8187).
 * The fallback replaces everything a legacy client could misread — non-ASCII, control characters,
 * quotes, backslashes, `/`, `%` — with `_`. Path separators, control characters and bidi overrides
 * are replaced in the UTF-8 form too. Long names are shortened keeping the extension.
 */
export function contentDisposition(fileName: string): string {
  // Control characters, path separators and bidi overrides (which can disguise an extension).
  // eslint-disable-next-line no-control-regex
  let name = fileName.replace(/[\u0000-\u001f\u007f-\u009f/\\\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '_').trim();
  if (name === '' || name === '.' || name === '..') name = 'download';
  name = shortenKeepingExtension(name, MAX_DISPOSITION_NAME);
  const ascii = name.replace(/[^\x20-\x7e]|["%\\]/g, '_');
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

function shortenKeepingExtension(name: string, max: number): string {
  const chars = Array.from(name); // code points: never split a surrogate pair
  if (chars.length <= max) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? Array.from(name.slice(dot)) : [];
  if (ext.length > 0 && ext.length <= 16) {
    return chars.slice(0, max - ext.length).join('') + ext.join('');
  }
  return chars.slice(0, max).join('');
}
