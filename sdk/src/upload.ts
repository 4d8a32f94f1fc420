import { dataOf, type ClientContext } from './context.js';
import { ModelRepositoryError, ModelRepositoryIntegrityError } from './errors.js';
import { contentDigest, createSha256, toHex } from './hash.js';
import { resolveRetryOptions, withRetry, type RetryOptions } from './retry.js';
import { isNode } from './runtime.js';
import { guessContentType, openSource, type ChunkReader, type UploadSource } from './source.js';
import type { ArtifactUploadCreate, ArtifactUploadSession, ModelArtifact } from './types.js';

export interface UploadProgress {
  /** Bytes the server has confirmed (chunks received earlier count when resuming). */
  uploadedBytes: number;
  totalBytes: number;
}

/**
 * Options of `uploadArtifact`: the initiation fields of the spec's `ArtifactUploadCreate`
 * (`total_size_bytes` is the source's size; `file_name` and `content_type` default to what the
 * source carries, else `application/octet-stream`) plus how to transfer.
 */
export type UploadArtifactOptions = Partial<Omit<ArtifactUploadCreate, 'total_size_bytes'>> & {
  /** Chunks in flight at once (default 4); also the most chunks held in memory. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: UploadProgress) => void;
  /**
   * Continue an interrupted upload: the session is read back and only the chunks it lacks are
   * sent. The whole source is still read, to compute the file's SHA-256.
   */
  resume?: string;
  /** Called once the session is known (created or resumed); keep `session.id` to resume later. */
  onSession?: (session: ArtifactUploadSession) => void;
  /** Send each chunk's `Content-Digest` so the server rejects corrupted chunks (default true). */
  chunkDigests?: boolean;
  /**
   * Instant upload (default true): when the server already stores these bytes and the caller can
   * view them, it says so at initiation and nothing is sent. Needs the SHA-256 up front: give
   * `sha256`, or the SDK computes it first for a file path or bytes of at least
   * `INSTANT_UPLOAD_MIN_BYTES` (one extra read of the file, which then replaces the digest the SDK
   * would otherwise compute while sending; a `Blob` is not read twice).
   */
  instantUpload?: boolean;
  retry?: RetryOptions;
};

export interface ChunkRange {
  index: number;
  start: number;
  /** Exclusive. */
  end: number;
}

/** How a file of `totalBytes` is cut: `ceil(total / chunkSize)` chunks, all full but the last. */
export function chunkRanges(totalBytes: number, chunkSize: number): ChunkRange[] {
  if (!Number.isSafeInteger(totalBytes) || totalBytes < 0) throw new RangeError(`invalid size ${totalBytes}`);
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new RangeError(`invalid chunk size ${chunkSize}`);
  const ranges: ChunkRange[] = [];
  for (let index = 0, start = 0; start < totalBytes; index++, start += chunkSize) {
    ranges.push({ index, start, end: Math.min(start + chunkSize, totalBytes) });
  }
  return ranges;
}

const resumableStatuses = new Set<ArtifactUploadSession['status']>(['initialized', 'uploading', 'completed']);

/**
 * Uploads `source` as a new artifact of product `productId` through a chunked upload session and
 * returns the stored artifact. See `UploadArtifactOptions`.
 */
export async function uploadArtifact(
  ctx: ClientContext,
  productId: string,
  source: UploadSource,
  options: UploadArtifactOptions = {},
): Promise<ModelArtifact> {
  const {
    concurrency = 4,
    signal,
    onProgress,
    resume,
    onSession,
    chunkDigests = true,
    instantUpload = true,
    retry: retryOverrides,
    ...fields
  } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('uploadArtifact: concurrency must be a positive integer');
  const retry = resolveRetryOptions(ctx.retry, retryOverrides);
  signal?.throwIfAborted();

  const reader = await openSource(source);
  try {
    // Hash first, so the server can be asked whether it has these bytes already.
    const hashable = typeof source === 'string' ? reader.size >= INSTANT_UPLOAD_MIN_BYTES : source instanceof Uint8Array && reader.size > 0;
    if (!resume && instantUpload && fields.sha256 === undefined && hashable) fields.sha256 = await hashSource(reader, signal);
    const session = resume
      ? await resumeSession(ctx, productId, resume, reader.size, retry, signal)
      : await initiateSession(ctx, productId, reader, fields, retry, signal);
    onSession?.(session);

    const ranges = chunkRanges(reader.size, session.chunk_size_bytes);
    if (ranges.length !== session.chunk_count) {
      throw new ModelRepositoryError({
        status: 0,
        code: 'chunk_count_mismatch',
        detail: `The server expects ${session.chunk_count} chunks, but ${reader.size} bytes in chunks of ${session.chunk_size_bytes} make ${ranges.length}`,
      });
    }
    const received = new Set(session.status === 'completed' ? ranges.map((r) => r.index) : session.received_chunks);

    // The server has these bytes: no chunk to send, and the digest is the one it matched.
    const sha256 =
      session.deduplicated && session.expected_sha256 !== null
        ? (onProgress?.({ uploadedBytes: reader.size, totalBytes: reader.size }), session.expected_sha256)
        : await sendChunks(ctx, productId, session.id, reader, ranges, received, {
            concurrency,
            chunkDigests,
            retry,
            signal,
            onProgress,
            knownSha256: resume ? undefined : fields.sha256,
          });

    const completion = { sha256, ...(fields.is_current === undefined ? {} : { is_current: fields.is_current }) };
    const artifact = dataOf(
      await withRetry(
        () =>
          ctx.api.POST('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}/complete', {
            params: { path: { product_id: productId, upload_id: session.id } },
            body: completion,
            signal,
          }),
        retry,
        signal,
      ),
    );
    if (artifact.sha256 !== sha256 || artifact.size_bytes !== reader.size) {
      throw new ModelRepositoryIntegrityError(
        'upload_checksum_mismatch',
        `The server stored ${artifact.size_bytes} bytes with SHA-256 ${artifact.sha256}, but ${reader.size} bytes with SHA-256 ${sha256} were sent`,
        sha256,
        artifact.sha256,
      );
    }
    return artifact;
  } finally {
    await reader.close();
  }
}

/** Files this large are hashed before the upload starts, to ask for an instant upload. */
export const INSTANT_UPLOAD_MIN_BYTES = 8 * 1024 * 1024;

/** SHA-256 (hex) of the whole source, read in 8 MiB pieces into one reused buffer. */
async function hashSource(reader: ChunkReader, signal: AbortSignal | undefined): Promise<string> {
  const hash = await createSha256();
  const piece = 8 * 1024 * 1024;
  const buffer = reader.readsInPlace ? new Uint8Array(Math.min(piece, Math.max(reader.size, 1))) : undefined;
  for (let start = 0; start < reader.size; start += piece) {
    signal?.throwIfAborted();
    hash.update(await reader.read(start, Math.min(start + piece, reader.size), buffer));
  }
  return toHex(hash.digest());
}

async function initiateSession(
  ctx: ClientContext,
  productId: string,
  reader: ChunkReader,
  fields: Partial<Omit<ArtifactUploadCreate, 'total_size_bytes'>>,
  retry: ReturnType<typeof resolveRetryOptions>,
  signal: AbortSignal | undefined,
): Promise<ArtifactUploadSession> {
  const fileName = fields.file_name ?? reader.fileName;
  if (!fileName) {
    throw new TypeError('uploadArtifact: give options.file_name when the source is a Blob or bytes without a name');
  }
  // Fields left out take the server's defaults (artifact_kind, is_current). The cast is needed while
  // the generated types mark request fields that have a default as required (openapi-typescript defaultNonNullable).
  const body = {
    ...fields,
    file_name: fileName,
    content_type: fields.content_type ?? reader.contentType ?? guessContentType(fileName),
    total_size_bytes: reader.size,
  } as ArtifactUploadCreate;
  return dataOf(
    await withRetry(
      () =>
        ctx.api.POST('/catalog/products/{product_id}/model-artifacts/uploads', {
          params: { path: { product_id: productId } },
          body,
          signal,
        }),
      retry,
      signal,
    ),
  );
}

async function resumeSession(
  ctx: ClientContext,
  productId: string,
  uploadId: string,
  size: number,
  retry: ReturnType<typeof resolveRetryOptions>,
  signal: AbortSignal | undefined,
): Promise<ArtifactUploadSession> {
  const session = dataOf(
    await withRetry(
      () =>
        ctx.api.GET('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}', {
          params: { path: { product_id: productId, upload_id: uploadId } },
          signal,
        }),
      retry,
      signal,
    ),
  );
  if (!resumableStatuses.has(session.status)) {
    throw new ModelRepositoryError({
      status: 0,
      code: 'upload_not_resumable',
      detail: `Upload session ${uploadId} is ${session.status}; start a new upload`,
    });
  }
  if (session.total_size_bytes !== size) {
    throw new ModelRepositoryIntegrityError(
      'resume_mismatch',
      `Upload session ${uploadId} is for ${session.total_size_bytes} bytes, but the source has ${size}`,
      String(session.total_size_bytes),
      String(size),
    );
  }
  return session;
}

interface SendOptions {
  concurrency: number;
  chunkDigests: boolean;
  retry: ReturnType<typeof resolveRetryOptions>;
  signal: AbortSignal | undefined;
  onProgress: ((progress: UploadProgress) => void) | undefined;
  /**
   * The file's SHA-256 when the session was initiated with it (given by the caller or hashed
   * first for instant upload): the server checks the assembled bytes against it at completion, so
   * the chunks are not hashed into a whole-file digest a second time, and chunks the server already
   * has are not read.
   */
  knownSha256?: string | undefined;
}

/**
 * The request body of a chunk. Node's fetch copies a byte-array body before sending it (as the
 * Fetch standard says), which would double the memory of every chunk in flight; a one-piece stream
 * with an explicit Content-Length is sent straight from our buffer. Browsers get the bytes (most
 * cannot stream request bodies over HTTP/1.1).
 */
function chunkBody(bytes: Uint8Array): Uint8Array | ReadableStream<Uint8Array> {
  if (!isNode) return bytes;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/**
 * Reads the source front to back (hashing every byte, in order), sending the chunks the session
 * lacks with at most `concurrency` in flight; a chunk is read only when a slot is free, so no more
 * than `concurrency` chunks are ever held. Returns the whole file's SHA-256 (hex).
 */
async function sendChunks(
  ctx: ClientContext,
  productId: string,
  uploadId: string,
  reader: ChunkReader,
  ranges: ChunkRange[],
  received: ReadonlySet<number>,
  options: SendOptions,
): Promise<string> {
  const { concurrency, chunkDigests, retry, signal, onProgress, knownSha256 } = options;
  const fileHash = knownSha256 === undefined ? await createSha256() : null;
  let uploadedBytes = ranges.reduce((sum, r) => sum + (received.has(r.index) ? r.end - r.start : 0), 0);
  onProgress?.({ uploadedBytes, totalBytes: reader.size });

  // One failed chunk stops the others: they share this controller, which follows the caller's signal.
  const stop = new AbortController();
  const onCallerAbort = () => stop.abort(signal!.reason);
  signal?.addEventListener('abort', onCallerAbort, { once: true });
  let failure: { error: unknown } | null = null;
  const inFlight = new Set<Promise<void>>();

  // Buffers of finished chunks, reused for the next reads (file sources read in place), so the
  // upload holds `concurrency` buffers however large the file is.
  const freeBuffers: Uint8Array[] = [];
  const chunkSize = ranges[0] ? ranges[0].end - ranges[0].start : 0;
  const takeBuffer = () => (reader.readsInPlace ? (freeBuffers.pop() ?? new Uint8Array(chunkSize)) : undefined);

  const send = async (range: ChunkRange, bytes: Uint8Array): Promise<void> => {
    const digest = chunkDigests ? await contentDigest(bytes) : undefined;
    await withRetry(
      () =>
        ctx.api.PUT('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}/chunks/{chunk_index}', {
          params: {
            path: { product_id: productId, upload_id: uploadId, chunk_index: range.index },
            header: digest === undefined ? {} : { 'Content-Digest': digest },
          },
          // The spec types binary bodies as string; openapi-fetch passes the body through untouched.
          body: chunkBody(bytes) as unknown as string,
          bodySerializer: (body: unknown) => body,
          headers: { 'Content-Type': 'application/octet-stream', ...(isNode ? { 'Content-Length': String(bytes.byteLength) } : {}) },
          ...(isNode ? { duplex: 'half' } : {}),
          // The answer (the session, listing every chunk received so far: ~50 KB at 10,000 chunks)
          // is read to its end but not parsed: nothing here uses it, and parsing it for every chunk
          // would make a large upload's client work grow with the square of its chunk count.
          parseAs: 'arrayBuffer',
          signal: stop.signal,
        }),
      retry,
      stop.signal,
    );
    uploadedBytes += range.end - range.start;
    onProgress?.({ uploadedBytes, totalBytes: reader.size });
  };

  try {
    for (const range of ranges) {
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      if (failure || stop.signal.aborted) break;
      if (!fileHash && received.has(range.index)) continue;
      const buffer = takeBuffer();
      const bytes = await reader.read(range.start, range.end, buffer);
      fileHash?.update(bytes);
      if (received.has(range.index)) {
        if (buffer) freeBuffers.push(buffer);
        continue;
      }
      const task: Promise<void> = send(range, bytes).then(
        () => {
          inFlight.delete(task);
          if (buffer) freeBuffers.push(buffer);
        },
        (error: unknown) => {
          inFlight.delete(task);
          failure ??= { error };
          stop.abort(error);
        },
      );
      inFlight.add(task);
    }
  } catch (error) {
    // Reading the source failed: stop the chunks in flight before reporting it.
    failure ??= { error };
    stop.abort(error);
  } finally {
    await Promise.all(inFlight);
    signal?.removeEventListener('abort', onCallerAbort);
  }
  if (signal?.aborted) throw signal.reason;
  if (failure) throw (failure as { error: unknown }).error;
  return fileHash ? toHex(fileHash.digest()) : knownSha256!;
}
