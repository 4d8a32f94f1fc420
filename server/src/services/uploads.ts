/**
 * Chunked upload sessions: initiate, take chunks (any order, in parallel, from any process),
 * complete into an artifact, abort.
 *
 * Where the truth lives (docs/architecture.md): the session and its chunk list are rows; the bytes
 * are in the BlobStore's staged upload (one sparse file on fs, a multipart upload on S3). Session
 * rows are only changed with conditional `nativeUpdate`s, so several processes can serve one upload:
 * - received_bytes / received_map (the received chunks as a bitmap): kept by triggers on
 *   upload_chunks in the statement that inserts or deletes a chunk row, so they always agree with
 *   the rows; a chunk request reads the list back from the session row, never from every chunk row;
 * - status: one atomic update per chunk conditioned on the status, bumping `row_version` (and
 *   returning the map); nothing to retry;
 * - the resumable prefix digest (hash_state, hashed_chunks): guarded by `hashed_chunks` and
 *   `hash_broken` (only the holder of the state for exactly `hashed_chunks` may extend it);
 * - completion: `status in (initialized, uploading)` → `completed` in the transaction that inserts
 *   the artifact, so exactly one completion wins.
 *
 * Durability order: a chunk row is written only after putPart resolved (the bytes are durable);
 * the artifact row only after the bytes are in their final place and their digest checked.
 * A crash anywhere leaves a session that can be resumed or completed, never an artifact without
 * (or with other) bytes.
 *
 * The prefix digest (resumable SHA-256, see PrefixFolder): where staged parts can be read back
 * (fs), every stored chunk is folded into the digest of the contiguous prefix right away — into a
 * node:crypto hash kept by this process, and (in the background, on a low-priority worker thread)
 * into the hash-wasm state saved in the session row that any process can resume. Where they cannot
 * (s3), a chunk whose index equals `hashed_chunks` when it arrives is hashed into the saved state
 * while it streams. Completion uses whichever digest covers every chunk (no read at all), else
 * hashes only what is missing. Replacing a chunk that was already received sets `hash_broken`
 * first: completion then hashes everything.
 *
 * Writers of one chunk never overlap within a process (a re-send stops the older request first),
 * and a completion or abort stops this process's writers of the session before it starts. Not
 * covered: on fs shared by several processes, a re-send of an already stored chunk still streaming
 * in one process while another completes the session could write into the committed file after its
 * digest was taken; well-behaved clients (the SDK) complete only after every chunk was answered.
 *
 * The pieces: upload-chunk-layout.ts (chunk sizes, offsets, keys), upload-session-sql.ts (the hot
 * path's statements), upload-writers.ts (the chunks this process is receiving),
 * upload-prefix-digest.ts (PrefixFolder); this file is the service that ties them together.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { raw, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { components } from '../generated/api.ts';
import { errors, summarizeIndexes } from '../errors.ts';
import { atLeastProduct, productAccess, requireProductEdit, requireProductEditId } from '../access/index.ts';
import {
  ModelArtifact,
  Product,
  ProductVersion,
  UploadChunk,
  UploadSession,
  type Caller,
} from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { isUuid } from '../persistence/queries.ts';
import { LIMITS } from '../persistence/limits.ts';
import {
  BlobNotFoundError,
  PartLengthError,
  StagedAbortError,
  StagedPartMismatchError,
  StagedUploadNotFoundError,
  feed,
  type StagedPart,
} from '../storage/index.ts';
import type { ServiceDeps } from './index.ts';
import type { InspectionService } from './inspections.ts';
import type { ContentBlobs } from './content-blobs.ts';
import { checkJsonSize } from './models.ts';
import { artifactResponse, type ModelArtifactResponse } from './summaries.ts';
import { productScope, recordEvent } from './events.ts';
import { ChunkBody, ChunkDigestError, parseContentDigest } from './chunk-body.ts';
import { hasLoneSurrogate, requireMediaType } from './input-rules.ts';
import { HashThread, ResumableSha256, sha256OfStream } from './resumable-sha256.ts';
import { artifactKey, chooseChunkSize, chunkLength, stagedOf } from './upload-chunk-layout.ts';
import { BodyGateClosedError, type BodyGate } from './body-gate.ts';
import { PrefixFolder } from './upload-prefix-digest.ts';
import { countChunk, emptyReceivedMap, findSession, insertChunkRow, receivedChunks, receivedIndexes, WRITABLE } from './upload-session-sql.ts';
import { InFlightWriters } from './upload-writers.ts';

export { artifactKey, chooseChunkSize, chunkLength, MAX_CHUNKS, S3_MIN_CHUNK_SIZE } from './upload-chunk-layout.ts';
export { PrefixFolder } from './upload-prefix-digest.ts';
export { findSession } from './upload-session-sql.ts';

export type ArtifactUploadCreate = components['schemas']['ArtifactUploadCreate'];
export type ArtifactUploadComplete = components['schemas']['ArtifactUploadComplete'];
export type ArtifactUploadSessionResponse = components['schemas']['ArtifactUploadSession'];

export const artifactPath = (productId: string, artifactId: string) => `/api/v1.0/catalog/products/${productId}/model-artifacts/${artifactId}`;
export const uploadPath = (productId: string, uploadId: string) => `/api/v1.0/catalog/products/${productId}/model-artifacts/uploads/${uploadId}`;

const isExpired = (s: UploadSession, now = new Date()) => s.expires_at.getTime() <= now.getTime();
const sessionNotFound = (id: string) => errors.notFound(`Upload session '${id}' was not found.`);

/** Thrown inside a completion transaction that lost the race for the session. */
class LostRace extends Error {}
/** An instant upload's bytes were deleted between its initiation and its completion. */
class BytesGone extends Error {}

export class UploadService {
  /** The chunks this process is receiving, and the sessions it is completing or aborting. */
  private readonly writers = new InFlightWriters();
  readonly folder: PrefixFolder;
  /** The hash threads of the prefix digests (see PrefixFolder). */
  private readonly hashThreads: { running: HashThread; saved: HashThread };
  /**
   * Whether staged parts can be read back (fs): then PrefixFolder folds every stored chunk into the
   * prefix digests; otherwise (s3) a chunk extends the saved prefix while it streams, when it is
   * the next one.
   */
  private readonly foldsStaged: boolean;

  constructor(
    readonly deps: ServiceDeps,
    private readonly inspections: InspectionService,
    private readonly blobs: ContentBlobs,
    private readonly bodies: BodyGate,
  ) {
    // Staged bytes written past the page cache are read back the same way.
    const directReads = deps.storage.capabilities.directIo;
    this.hashThreads = { running: new HashThread({ lowPriority: false, directReads }), saved: new HashThread({ lowPriority: true, directReads }) };
    this.foldsStaged = deps.storage.capabilities.readStagedParts;
    this.folder = new PrefixFolder(deps, this.hashThreads, this.foldsStaged, (sessionId, index) => this.writers.receiving(sessionId, index));
  }

  /** Stops the hash worker thread (graceful shutdown, tests). */
  async close(): Promise<void> {
    await this.folder.idle();
    await Promise.all([this.hashThreads.running.close(), this.hashThreads.saved.close()]);
  }

  // ─── reading ───────────────────────────────────────────────────────────────────────────

  async get(em: Em, user: Caller, productId: string, uploadId: string): Promise<ArtifactUploadSessionResponse> {
    const { session } = await this.load(em, user, productId, uploadId);
    return this.response(em, session);
  }

  /**
   * Edit access (one query, no Product entity: every chunk runs this) and the session; with
   * `chunkIndex`, also whether that chunk was received (in the session's statement).
   */
  private async load(
    em: Em,
    user: Caller,
    productId: string,
    uploadId: string,
    chunkIndex?: number,
  ): Promise<{ session: UploadSession; chunkReceived?: boolean }> {
    const { productId: id } = await requireProductEditId(em, user, productId);
    if (!isUuid(uploadId)) throw sessionNotFound(uploadId);
    const found = await findSession(em, uploadId.toLowerCase(), id, Number.isSafeInteger(chunkIndex) ? chunkIndex : undefined);
    if (!found || found.session.status === 'aborted') throw sessionNotFound(uploadId);
    return found;
  }

  /** The session as the database has it now (never from an identity map). */
  private async reload(em: Em, id: string, productId?: string): Promise<UploadSession | null> {
    return (await findSession(em, id, productId))?.session ?? null;
  }

  private async response(em: Em, s: UploadSession, received?: number[]): Promise<ArtifactUploadSessionResponse> {
    // An instant upload has every chunk without a chunk row: the bytes are stored already.
    const chunks = s.deduplicated ? [...Array(s.chunk_count).keys()] : (received ?? (await receivedChunks(em, s)));
    const status = (WRITABLE as readonly string[]).includes(s.status) && isExpired(s) ? 'expired' : s.status;
    return {
      id: s.id,
      product_id: s.product.id,
      file_name: s.file_name,
      content_type: s.content_type,
      total_size_bytes: s.total_size_bytes,
      chunk_size_bytes: s.chunk_size_bytes,
      chunk_count: s.chunk_count,
      expected_sha256: s.expected_sha256 ?? null,
      // Every chunk's size follows from its index: all are full but the last.
      received_bytes: receivedBytesOf(s, chunks),
      received_chunks: chunks,
      status: status as ArtifactUploadSessionResponse['status'],
      artifact_id: s.status === 'completed' ? s.artifact_id : null,
      deduplicated: s.deduplicated,
      expires_at: s.expires_at.toISOString(),
      created_at: s.created_at.toISOString(),
      completed_at: s.completed_at ? s.completed_at.toISOString() : null,
    };
  }

  /** 409 for a completed or failed session, 410 (and status `expired`) past expires_at. */
  private async assertWritable(em: Em, s: UploadSession, now = new Date()): Promise<void> {
    if (s.status === 'completed') throw errors.uploadNotWritable(`Upload session ${s.id} is completed and takes no more chunks.`);
    if (s.status === 'failed') {
      throw errors.uploadNotWritable(`Upload session ${s.id} failed${s.failure_reason ? ` (${s.failure_reason})` : ''}; start a new upload.`);
    }
    if (s.status === 'aborted') throw sessionNotFound(s.id);
    if (s.status === 'expired' || isExpired(s, now)) {
      await em.nativeUpdate(
        UploadSession,
        { id: s.id, status: { $in: [...WRITABLE] } },
        { status: 'expired', updated_at: now, row_version: raw('row_version + 1') },
      );
      throw errors.uploadExpired();
    }
  }

  // ─── initiate ──────────────────────────────────────────────────────────────────────────

  async initiate(em: Em, user: Caller, productId: string, body: ArtifactUploadCreate): Promise<ArtifactUploadSessionResponse> {
    const { product } = await requireProductEdit(em, user, productId);
    const { config, storage } = this.deps;
    if (body.total_size_bytes > config.maxArtifactSizeBytes) {
      throw errors.payloadTooLarge(
        `total_size_bytes ${body.total_size_bytes} exceeds this server's maximum artifact size of ${config.maxArtifactSizeBytes} bytes.`,
      );
    }
    checkJsonSize(body as Record<string, unknown>, ['metadata']);
    rejectNulCharacters({ file_name: body.file_name, version_label: body.version_label, external_uri: body.external_uri, metadata: body.metadata });
    requireMediaType(body.content_type, LIMITS.content_type);
    if (body.product_version_id) await requireVersionOf(em, product.id, body.product_version_id);

    const total = body.total_size_bytes;
    const chunkSize = chooseChunkSize(config.uploadChunkSizeBytes, total, storage.backend);
    const chunkCount = Math.ceil(total / chunkSize);
    const artifactId = randomUUID();
    const key = artifactKey(product.id, artifactId);
    const now = new Date();
    // Instant upload: these bytes are stored already and the caller may see them, so nothing
    // needs sending (no staged upload either). A caller who may not see them gets an ordinary
    // session: the answer must not tell whether such bytes exist.
    const deduplicated = total > 0 && body.sha256 !== undefined && (await this.instantUploadAvailable(em, user, body.sha256.toLowerCase(), total));
    const [staged, initialState] = await Promise.all([
      deduplicated ? { key, uploadId: null } : storage.beginStaged(key, { totalSize: total, contentType: body.content_type }),
      ResumableSha256.initialState(),
    ]);
    try {
      const session = em.create(UploadSession, {
        product: product.id,
        artifact_id: artifactId,
        file_name: body.file_name,
        content_type: body.content_type,
        total_size_bytes: total,
        chunk_size_bytes: chunkSize,
        chunk_count: chunkCount,
        expected_sha256: body.sha256?.toLowerCase() ?? null,
        artifact_kind: body.artifact_kind ?? 'model_binary',
        version_label: body.version_label ?? null,
        product_version_id: body.product_version_id?.toLowerCase() ?? null,
        training_run_id: body.training_run_id?.toLowerCase() ?? null,
        is_current: body.is_current ?? false,
        external_uri: body.external_uri ?? null,
        metadata: body.metadata ?? null,
        status: deduplicated ? 'uploading' : 'initialized',
        received_bytes: deduplicated ? total : 0,
        received_map: deduplicated ? null : emptyReceivedMap(chunkCount),
        deduplicated,
        storage_backend: storage.backend,
        staging_key: key,
        storage_upload_id: staged.uploadId,
        hash_state: initialState,
        hashed_chunks: 0,
        hash_broken: false,
        created_by: user.id,
        expires_at: new Date(now.getTime() + config.uploadSessionTtlSeconds * 1000),
      });
      await em.flush();
      return await this.response(em, session, []);
    } catch (err) {
      if (!deduplicated) await storage.abortStaged(staged).catch(() => {});
      throw err;
    }
  }

  /** Whether bytes with this digest and size are stored and the caller can view an available artifact that has them. */
  private async instantUploadAvailable(em: Em, user: Caller, sha256: string, size: number): Promise<boolean> {
    if (!(await this.blobs.stored(em, sha256, size))) return false;
    const copies = await em.find(ModelArtifact, { sha256, size_bytes: size, status: 'available' }, { populate: ['product'], limit: 100 });
    const seen = new Set<string>();
    for (const copy of copies) {
      if (seen.has(copy.product.id)) continue;
      seen.add(copy.product.id);
      if (atLeastProduct(await productAccess(em, user, copy.product), 'view')) return true;
    }
    return false;
  }

  // ─── chunks ────────────────────────────────────────────────────────────────────────────

  /**
   * Streams one chunk into the staged upload. `body` is the request: on a length or digest error
   * it is left partly unread (the caller closes the connection). Nothing is recorded unless the
   * bytes are durable and verified.
   */
  async putChunk(
    em: Em,
    user: Caller,
    productId: string,
    uploadId: string,
    index: number,
    body: Readable,
    headers: { contentLength?: number; contentDigest?: string },
  ): Promise<ArtifactUploadSessionResponse> {
    const loaded = await this.load(em, user, productId, uploadId, index);
    const { session } = loaded;
    await this.assertWritable(em, session);
    if (session.deduplicated) {
      throw errors.uploadNotWritable(`Upload session ${session.id} already has all its bytes (the server stores them): complete it, no chunk is needed.`);
    }
    if (!Number.isSafeInteger(index) || index < 0 || index >= session.chunk_count) {
      throw errors.chunkIndexOutOfRange(
        session.chunk_count === 0
          ? `Upload session ${session.id} is for an empty file and takes no chunks; complete it.`
          : `Chunk index ${index} is out of range: this upload has ${session.chunk_count} chunk(s), 0 to ${session.chunk_count - 1}.`,
      );
    }
    const expected = chunkLength(session, index);
    if (headers.contentLength !== undefined && headers.contentLength !== expected) {
      throw errors.chunkSizeMismatch(`Chunk ${index} must be exactly ${expected} bytes; received ${headers.contentLength}.`);
    }
    const digest = parseContentDigest(headers.contentDigest);
    // Its turn among the bodies this process reads at once (see BodyGate): the checks above answer
    // at once, the bytes wait. After a wait, whether the chunk was stored is read again (a twin
    // request may have stored it meanwhile); a completion that began is seen below, and one that
    // ended fails the write (its staged file is gone).
    // (Meanwhile the session is not quiet: its saved digest does not catch up alongside transfers.)
    const unqueue = this.writers.queue(session.id, index);
    const ticket = await this.bodies
      .enter(body)
      .catch((err: unknown) => {
        throw err instanceof BodyGateClosedError ? errors.badRequest(`The request for chunk ${index} closed before its body was read; nothing was stored.`) : err;
      })
      .finally(unqueue);
    const chunkReceived = ticket.waited ? undefined : loaded.chunkReceived;
    if (this.writers.isClosing(session.id)) {
      ticket.leave();
      throw errors.uploadNotWritable(`Upload session ${session.id} is being completed or aborted and takes no more chunks.`);
    }

    // One writer per chunk in this process: a re-send stops an older request still streaming the
    // same chunk (its client has given up on it) before writing, so the two never overlap.
    const writer = this.writers.begin(session.id, index);
    try {
      const older = await writer.takeOver(errors.conflict(`Chunk ${index} was sent again while this request was still streaming it.`));
      // Whether the chunk was stored before came with the session, unless an older request for it
      // was still running here (it may have recorded the chunk since).
      const replace = older || chunkReceived === undefined ? (await receivedIndexes(em, session.id, index)).length > 0 : chunkReceived;
      if (replace) {
        // The bytes in staging are about to change under the prefix digest: from now on
        // completion hashes everything (a torn or different chunk can never slip through).
        await em.nativeUpdate(UploadSession, { id: session.id }, { hash_broken: true });
      }
      const prefix =
        !this.foldsStaged && !replace && !session.hash_broken && session.hashed_chunks === index && session.hash_state
          ? await ResumableSha256.load(session.hash_state)
          : null;

      const chunk = new ChunkBody(expected, digest, prefix);
      ticket.track(chunk);
      // Its errors reach us through putPart; this listener only keeps one raised before putPart
      // is listening (a short body can be rejected before storage opened its file) from being fatal.
      chunk.on('error', () => {});
      writer.attach(chunk);
      const detach = feed(body, chunk);
      let etag: string | null;
      try {
        ({ etag } = await this.deps.storage.putPart(stagedOf(session), {
          index,
          offset: index * session.chunk_size_bytes,
          size: expected,
          body: chunk,
          replace,
        }));
      } catch (err) {
        throw await this.chunkFailure(em, session, index, err, writer.stopReason, body);
      } finally {
        detach();
        ticket.leave(); // the body is read (or failed): the next one may come in while this one is recorded
      }
      return await this.recordChunk(em, session, index, { size: expected, sha256: chunk.sha256, etag }, replace, prefix);
    } finally {
      ticket.leave();
      writer.end();
    }
  }

  /** What a failed putPart means for the client. */
  private async chunkFailure(em: Em, session: UploadSession, index: number, err: unknown, stopped: Error | null, body: Readable): Promise<unknown> {
    if (stopped) return stopped;
    if (err instanceof PartLengthError) {
      return errors.chunkSizeMismatch(
        `Chunk ${index} must be exactly ${err.expected} bytes; received ${err.tooLong ? `more (cut off after ${err.received})` : err.received}.`,
      );
    }
    if (err instanceof ChunkDigestError) return errors.chunkDigestMismatch(`Chunk ${index} does not match its Content-Digest; it was not stored.`);
    if (err instanceof StagedUploadNotFoundError) {
      // Completed, aborted or swept while this chunk streamed.
      const now = await this.reload(em, session.id);
      if (!now || now.status === 'aborted') return sessionNotFound(session.id);
      try {
        await this.assertWritable(em, now);
      } catch (e) {
        return e;
      }
      return errors.uploadNotWritable(`The staged bytes of upload session ${session.id} are gone; complete the upload or start a new one.`);
    }
    if (body.destroyed || (body as Readable & { aborted?: boolean }).aborted) {
      return errors.badRequest(`The body of chunk ${index} ended before its ${chunkLength(session, index)} bytes arrived; nothing was stored.`);
    }
    return err;
  }

  /**
   * Bytes are durable: record the chunk, extend the prefix digest, mark the session `uploading`.
   * The chunk row's insert counts it (triggers keep received_bytes and received_map with the rows),
   * so parallel chunks from any number of processes never lose an update or retry; the status
   * update returns the map the answer lists.
   */
  private async recordChunk(
    em: Em,
    session: UploadSession,
    index: number,
    chunk: { size: number; sha256: string; etag: string | null },
    replace: boolean,
    prefix: ResumableSha256 | null,
  ): Promise<ArtifactUploadSessionResponse> {
    const now = new Date();
    const row = { size_bytes: chunk.size, sha256: chunk.sha256, etag: chunk.etag, received_at: now };
    if (!replace) {
      try {
        await insertChunkRow(em, session.id, index, chunk, now);
      } catch (err) {
        if (!(err instanceof UniqueConstraintViolationException)) throw err;
        replace = true; // a twin request recorded this index first
      }
    }
    if (replace) await em.nativeUpdate(UploadChunk, { session: session.id, chunk_index: index }, row);
    if (prefix) {
      await em.nativeUpdate(
        UploadSession,
        { id: session.id, hashed_chunks: index, hash_broken: false },
        { hash_state: prefix.save(), hashed_chunks: index + 1 },
      );
    }
    const received = await countChunk(em, session.id, now);
    if (!received) {
      // Completed, failed, aborted or expired while this chunk streamed: its bytes will not be used.
      const current = await this.reload(em, session.id);
      if (!current || current.status === 'aborted') throw sessionNotFound(session.id);
      await this.assertWritable(em, current);
      throw errors.uploadNotWritable(`Upload session ${session.id} no longer takes chunks.`);
    }
    this.folder.kick(session.id, replace ? undefined : index);
    session.status = 'uploading';
    return this.response(em, session, received);
  }

  /** Stops this process's writers of a session and keeps new ones out until `done` is called. */
  private quiesce(sessionId: string, why: string): Promise<() => void> {
    return this.writers.quiesce(sessionId, () => errors.uploadNotWritable(`Upload session ${sessionId} is being ${why}; the chunk was not stored.`));
  }

  // ─── complete ──────────────────────────────────────────────────────────────────────────

  async complete(
    em: Em,
    user: Caller,
    productId: string,
    uploadId: string,
    body: ArtifactUploadComplete | undefined,
  ): Promise<{ artifact: ModelArtifactResponse; created: boolean }> {
    const loaded = await this.load(em, user, productId, uploadId);
    const existing = await this.completedArtifact(em, loaded.session);
    if (existing) return { artifact: existing, created: false };
    await this.assertWritable(em, loaded.session);
    if (loaded.session.deduplicated) return this.commitDeduplicated(em, user, loaded.session, body ?? {});
    const missing = await this.missingChunks(em, loaded.session);
    if (missing.length > 0) throw errors.uploadIncomplete(missing);

    const done = await this.quiesce(loaded.session.id, 'completed');
    try {
      this.folder.catchUp(loaded.session.id); // chunks other processes stored since its last fold
      await this.folder.settle(loaded.session.id);
      const session = (await this.reload(em, loaded.session.id))!;
      const again = await this.completedArtifact(em, session);
      if (again) return { artifact: again, created: false };
      await this.assertWritable(em, session);
      return await this.commit(em, user, session, body ?? {});
    } finally {
      this.folder.forget(loaded.session.id);
      done();
    }
  }

  private async completedArtifact(em: Em, s: UploadSession): Promise<ModelArtifactResponse | null> {
    if (s.status !== 'completed') return null;
    const artifact = await em.fork().findOne(ModelArtifact, { id: s.artifact_id });
    if (!artifact) throw new Error(`Upload session ${s.id} is completed but artifact ${s.artifact_id} does not exist`);
    return artifactResponse(artifact);
  }

  private async missingChunks(em: Em, s: UploadSession): Promise<number[]> {
    const received = new Set(await receivedIndexes(em, s.id));
    const missing: number[] = [];
    for (let i = 0; i < s.chunk_count; i++) if (!received.has(i)) missing.push(i);
    return missing;
  }

  private async commit(
    em: Em,
    user: Caller,
    session: UploadSession,
    body: ArtifactUploadComplete,
  ): Promise<{ artifact: ModelArtifactResponse; created: boolean }> {
    const { storage, logger } = this.deps;
    const chunks = await em.fork().find(UploadChunk, { session: session.id }, { orderBy: { chunk_index: 'asc' } });
    if (chunks.length !== session.chunk_count) throw errors.uploadIncomplete(await this.missingChunks(em, session));
    const parts: StagedPart[] = chunks.map((c) => ({ index: c.chunk_index, size: c.size_bytes, etag: c.etag ?? null, sha256: c.sha256 }));
    const key = session.staging_key;
    // A chunk was re-sent over stored bytes (hash_broken): where the store can read its parts
    // back, each is checked against the SHA-256 recorded for it before anything moves, so a
    // re-send a crash tore never becomes part of an artifact. Without re-sends every part was
    // written once, in full, before its row existed.
    const meta = { totalSize: session.total_size_bytes, contentType: session.content_type, verifyParts: session.hash_broken };

    // 1. Bytes to their final place (idempotent: a retry after a crash finds them there).
    let committed: { sha256: string | null };
    try {
      committed = await storage.commitStaged(stagedOf(session), parts, meta);
    } catch (err) {
      if (err instanceof StagedPartMismatchError) throw await this.dropTornChunks(em, session, err.indexes);
      if (!(err instanceof StagedUploadNotFoundError)) throw err;
      await this.fail(em, session, 'the staged bytes were gone at completion');
      throw errors.uploadNotWritable(`The staged bytes of upload session ${session.id} are gone; start a new upload.`);
    }
    const stored = await storage.head(key);
    if (stored?.size !== session.total_size_bytes) {
      await storage.delete(key).catch((err: unknown) => logger.warn({ err, key }, 'could not delete the bytes of a failed upload'));
      const reason = `the assembled bytes are ${stored ? `${stored.size} bytes` : 'missing'}, expected ${session.total_size_bytes}`;
      await this.fail(em, session, reason, true);
      // Like a digest mismatch: the stored bytes are not what was sent (a store that damaged a part).
      throw errors.checksumMismatch(`The assembled bytes are ${stored ? `${stored.size} bytes` : 'missing'}, expected ${session.total_size_bytes}; the upload failed and its bytes were discarded.`);
    }

    // 2. The digest: from the part check, this process's running digest or the saved prefix
    //    state when one covers everything, else read what is missing.
    let sha256: string;
    try {
      sha256 = committed.sha256 ?? ((!session.hash_broken && (await this.folder.digestIfComplete(session.id))) || (await this.digest(session)));
    } catch (err) {
      if (err instanceof BlobNotFoundError) {
        await this.fail(em, session, 'the committed bytes vanished before they were verified');
        throw errors.uploadNotWritable(`The bytes of upload session ${session.id} are gone; start a new upload.`);
      }
      throw err;
    }
    const expected = [session.expected_sha256, body.sha256].filter((d): d is string => typeof d === 'string');
    const wrong = expected.find((d) => d.toLowerCase() !== sha256);
    if (wrong !== undefined) {
      await storage.delete(key).catch((err: unknown) => logger.warn({ err, key }, 'could not delete the bytes of a failed upload'));
      await this.fail(em, session, `checksum mismatch: got ${sha256}, expected ${wrong}`, true);
      throw errors.checksumMismatch(
        `SHA-256 of the uploaded bytes is ${sha256}, expected ${wrong.toLowerCase()}; the upload failed and its bytes were discarded.`,
      );
    }

    // 3. The rows, in one transaction; exactly one completion wins. Bytes stored already under
    //    another key (same SHA-256) are used instead, and this upload's copy is queued for removal.
    const isCurrent = body.is_current ?? session.is_current;
    const now = new Date();
    let blobKey = key;
    try {
      const artifact = await em.transactional(async (tx) => {
        await this.claim(tx, session, now);
        blobKey = await this.blobs.reference(tx, sha256, session.total_size_bytes, key, now);
        return this.insertArtifact(tx, user, session, { sha256, key: blobKey, isCurrent, now });
      });
      if (blobKey !== key) await this.blobs.drain(em, [key]);
      return { artifact: artifactResponse(await this.inspections.afterStore(artifact)), created: true };
    } catch (err) {
      if (!(err instanceof LostRace)) throw err;
      const after = (await this.reload(em, session.id))!;
      const theirs = await this.completedArtifact(em, after);
      if (theirs) return { artifact: theirs, created: false };
      // Aborted or expired meanwhile: the committed bytes belong to nobody.
      await storage.delete(key).catch(() => {});
      if (after.status === 'aborted') throw sessionNotFound(session.id);
      await this.assertWritable(em, after);
      throw errors.uploadNotWritable(`Upload session ${session.id} changed during completion; retry.`);
    }
  }

  /**
   * Completes an instant upload: the artifact references the bytes already stored with the
   * session's digest. They may have been deleted since the initiation: then the session fails
   * and the client starts an ordinary upload.
   */
  private async commitDeduplicated(
    em: Em,
    user: Caller,
    session: UploadSession,
    body: ArtifactUploadComplete,
  ): Promise<{ artifact: ModelArtifactResponse; created: boolean }> {
    const sha256 = session.expected_sha256!;
    if (body.sha256 !== undefined && body.sha256.toLowerCase() !== sha256) {
      await this.fail(em, session, `checksum mismatch: the session is for ${sha256}, completion expected ${body.sha256.toLowerCase()}`, true);
      throw errors.checksumMismatch(`This upload session is for bytes with SHA-256 ${sha256}, not ${body.sha256.toLowerCase()}; the upload failed.`);
    }
    const isCurrent = body.is_current ?? session.is_current;
    const now = new Date();
    try {
      const artifact = await em.transactional(async (tx) => {
        await this.claim(tx, session, now);
        const key = await this.blobs.referenceExisting(tx, sha256, session.total_size_bytes, now);
        if (key === null) throw new BytesGone();
        return this.insertArtifact(tx, user, session, { sha256, key, isCurrent, now });
      });
      return { artifact: artifactResponse(await this.inspections.afterStore(artifact)), created: true };
    } catch (err) {
      if (err instanceof BytesGone) {
        await this.fail(em, session, 'the stored bytes it referred to were deleted before completion', true);
        throw errors.uploadNotWritable(`The stored bytes upload session ${session.id} referred to were deleted meanwhile; start a new upload and send them.`);
      }
      if (!(err instanceof LostRace)) throw err;
      const after = (await this.reload(em, session.id))!;
      const theirs = await this.completedArtifact(em, after);
      if (theirs) return { artifact: theirs, created: false };
      if (after.status === 'aborted') throw sessionNotFound(session.id);
      await this.assertWritable(em, after);
      throw errors.uploadNotWritable(`Upload session ${session.id} changed during completion; retry.`);
    }
  }

  /** In the completing transaction: the session becomes `completed`, unless another completion won. */
  private async claim(tx: Em, session: UploadSession, now: Date): Promise<void> {
    const won = await tx.nativeUpdate(
      UploadSession,
      { id: session.id, status: { $in: [...WRITABLE] } },
      { status: 'completed', completed_at: now, cleaned_at: now, updated_at: now, row_version: raw('row_version + 1') },
    );
    if (won !== 1) throw new LostRace();
  }

  /** In the completing transaction: the artifact row, the current flag, the product's timestamp and the event. */
  private async insertArtifact(
    tx: Em,
    user: Caller,
    session: UploadSession,
    a: { sha256: string; key: string; isCurrent: boolean; now: Date },
  ): Promise<ModelArtifact> {
    const { storage } = this.deps;
    const { now } = a;
    if (a.isCurrent) {
      await tx.nativeUpdate(ModelArtifact, { product: session.product.id, is_current: true }, { is_current: false, updated_at: now });
    }
    const created = tx.create(ModelArtifact, {
      id: session.artifact_id,
      product: session.product.id,
      product_version: session.product_version_id ?? null,
      training_run_id: session.training_run_id ?? null,
      artifact_kind: session.artifact_kind,
      version_label: session.version_label ?? null,
      file_name: session.file_name,
      content_type: session.content_type,
      size_bytes: session.total_size_bytes,
      sha256: a.sha256,
      storage_backend: storage.backend,
      storage_key: a.key,
      storage_uri: storage.uri(a.key),
      external_uri: session.external_uri ?? null,
      status: 'available',
      is_current: a.isCurrent,
      metadata: session.metadata ?? null,
      uploaded_by: user.id,
      uploaded_at: now,
    });
    await tx.nativeUpdate(Product, { id: session.product.id }, { updated_at: now });
    await recordEvent(tx, {
      type: 'artifact.created',
      actorId: user.id,
      ...(await productScope(tx, session.product.id)),
      subjectId: created.id,
      data: artifactResponse(created),
      occurredAt: created.created_at,
    });
    return created;
  }

  /**
   * Chunks whose staged bytes differ from the SHA-256 recorded for them (a re-send a crash tore):
   * their rows go, so they count as missing (409) and the client sends them again.
   */
  private async dropTornChunks(em: Em, session: UploadSession, indexes: number[]): Promise<Error> {
    await em.transactional(async (tx) => {
      // The delete trigger takes them out of received_bytes and received_map.
      await tx.nativeDelete(UploadChunk, { session: session.id, chunk_index: { $in: indexes } });
      await tx.nativeUpdate(UploadSession, { id: session.id }, { updated_at: new Date(), row_version: raw('row_version + 1') });
    });
    this.deps.logger.warn({ upload_id: session.id, chunks: indexes }, 'staged chunks did not match their recorded digests; they must be sent again');
    return errors.uploadIncomplete(
      indexes,
      `The stored bytes of chunk(s) ${summarizeIndexes(indexes)} do not match what was received for them (a re-send was interrupted); send them again, then complete.`,
    );
  }

  /** SHA-256 (hex) of the committed bytes, reading as little as the saved prefix state allows. */
  private async digest(s: UploadSession): Promise<string> {
    const { storage } = this.deps;
    const total = s.total_size_bytes;
    const usable = !s.hash_broken && s.hash_state;
    if (usable && s.hashed_chunks >= s.chunk_count) return (await ResumableSha256.load(s.hash_state!)).hex();
    const offset = usable ? s.hashed_chunks * s.chunk_size_bytes : 0;
    // hash-wasm runs at roughly a quarter of node:crypto's speed: resuming pays off only when
    // little is missing; otherwise one node:crypto pass over everything is faster.
    if (usable && (total - offset) * 4 <= total) {
      const hash = await ResumableSha256.load(s.hash_state!);
      await hash.updateFrom(await storage.get(s.staging_key, { start: offset, end: total - 1 }));
      return hash.hex();
    }
    return (await sha256OfStream(await storage.get(s.staging_key))).sha256;
  }

  /** status → failed (from a writable status), with the reason kept for the client and the log. */
  private async fail(em: Em, s: UploadSession, reason: string, bytesRemoved = false): Promise<void> {
    const now = new Date();
    await em.nativeUpdate(
      UploadSession,
      { id: s.id, status: { $in: [...WRITABLE] } },
      {
        status: 'failed',
        failure_reason: reason.slice(0, 2000),
        updated_at: now,
        row_version: raw('row_version + 1'),
        ...(bytesRemoved ? { cleaned_at: now } : {}),
      },
    );
    this.deps.logger.warn({ upload_id: s.id, reason }, 'upload failed');
  }

  // ─── abort ─────────────────────────────────────────────────────────────────────────────

  async abort(em: Em, user: Caller, productId: string, uploadId: string): Promise<void> {
    const { session } = await this.load(em, user, productId, uploadId);
    if (session.status === 'completed') {
      throw errors.uploadNotWritable(`Upload session ${session.id} is completed; delete the artifact instead.`);
    }
    const done = await this.quiesce(session.id, 'aborted');
    try {
      const n = await em.nativeUpdate(
        UploadSession,
        { id: session.id, status: { $nin: ['completed', 'aborted'] } },
        { status: 'aborted', updated_at: new Date(), row_version: raw('row_version + 1') },
      );
      if (n !== 1) {
        const now = await this.reload(em, session.id);
        if (now?.status === 'completed') throw errors.uploadNotWritable(`Upload session ${session.id} is completed; delete the artifact instead.`);
        throw sessionNotFound(uploadId);
      }
      await this.freeStaged(em, session);
    } finally {
      this.folder.forget(session.id);
      done();
    }
  }

  /**
   * Discards the staged bytes of a session that can no longer complete and records it. A failed
   * abort (S3 answering an error) is left for the sweeper to retry; it returns false.
   */
  async freeStaged(em: Em, s: UploadSession): Promise<boolean> {
    try {
      await this.deps.storage.abortStaged(stagedOf(s));
    } catch (err) {
      if (!(err instanceof StagedAbortError)) throw err;
      this.deps.logger.warn({ upload_id: s.id, err: err.message }, 'could not discard staged bytes; the sweeper retries');
      await em.nativeUpdate(UploadSession, { id: s.id }, { updated_at: new Date() }); // to the back of the sweeper's queue
      return false;
    }
    await em.nativeUpdate(UploadSession, { id: s.id, cleaned_at: null }, { cleaned_at: new Date() });
    return true;
  }
}

/** The bytes of the chunks `received` (ascending indexes) of session `s`: all full but the last. */
function receivedBytesOf(s: Pick<UploadSession, 'chunk_count' | 'chunk_size_bytes' | 'total_size_bytes'>, received: readonly number[]): number {
  if (received.length === 0) return 0;
  const last = received[received.length - 1] === s.chunk_count - 1;
  return (received.length - (last ? 1 : 0)) * s.chunk_size_bytes + (last ? chunkLength(s, s.chunk_count - 1) : 0);
}

/**
 * 422 when a text field (or any string or key inside a JSON value) holds NUL (U+0000) or a lone
 * UTF-16 surrogate: no database text or JSON column can store either.
 */
export function rejectNulCharacters(fields: Record<string, unknown>): void {
  const bad = (s: string) => s.includes('\u0000') || hasLoneSurrogate(s);
  const hasBad = (v: unknown): boolean =>
    typeof v === 'string'
      ? bad(v)
      : Array.isArray(v)
        ? v.some(hasBad)
        : typeof v === 'object' && v !== null && Object.entries(v).some(([k, x]) => bad(k) || hasBad(x));
  const found = Object.keys(fields).filter((k) => hasBad(fields[k]));
  if (found.length > 0) {
    throw errors.validation(`The request is invalid: ${found.map((k) => `body.${k}`).join(', ')} must not contain NUL characters or lone surrogates.`, found.map((k) => ({
      loc: ['body', k],
      msg: 'must not contain NUL (U+0000) characters or lone UTF-16 surrogates',
      type: 'pattern',
    })));
  }
}

/** 422 unless `versionId` names a version of the product. */
export async function requireVersionOf(em: Em, productId: string, versionId: string, loc: (string | number)[] = ['body', 'product_version_id']): Promise<void> {
  const found = await em.count(ProductVersion, { id: versionId.toLowerCase(), product: productId });
  if (found === 0) {
    throw errors.validation(`product_version_id ${versionId} is not a version of this model.`, [
      { loc, msg: 'is not a version of this model', type: 'reference' },
    ]);
  }
}
