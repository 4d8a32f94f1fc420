/**
 * Chunked upload sessions: initiate, take chunks (any order, in parallel, from any process),
 * complete into an artifact, abort.
 *
 * Where the truth lives (docs/architecture.md): the session and its chunk list are rows; the bytes
 * are in the BlobStore's staged upload (one sparse file on fs, a multipart upload on S3). Session
 * rows are only changed with conditional `nativeUpdate`s, so several processes can serve one upload:
 * - status / received_bytes: one atomic update per chunk (the byte count recomputed from the chunk
 *   rows) conditioned on the status, bumping `row_version`; nothing to retry;
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
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { raw, UniqueConstraintViolationException, type EntityData } from '@mikro-orm/core';
import type { components } from '../generated/api.ts';
import { errors, summarizeIndexes } from '../errors.ts';
import { requireProductEdit, requireProductEditId } from '../access/index.ts';
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
import { dateParam, executeHot } from '../persistence/raw.ts';
import {
  BlobNotFoundError,
  PartLengthError,
  StagedAbortError,
  StagedPartMismatchError,
  StagedUploadNotFoundError,
  feed,
  type StagedPart,
  type StagedUpload,
} from '../storage/index.ts';
import type { ServiceDeps } from './index.ts';
import type { InspectionService } from './inspections.ts';
import { checkJsonSize } from './models.ts';
import { artifactResponse, type ModelArtifactResponse } from './summaries.ts';
import { productScope, recordEvent } from './events.ts';
import { ChunkBody, ChunkDigestError, parseContentDigest } from './chunk-body.ts';
import { HashThread, ResumableSha256, sha256OfStream } from './resumable-sha256.ts';

export type ArtifactUploadCreate = components['schemas']['ArtifactUploadCreate'];
export type ArtifactUploadComplete = components['schemas']['ArtifactUploadComplete'];
export type ArtifactUploadSessionResponse = components['schemas']['ArtifactUploadSession'];

const MiB = 1024 * 1024;
/** S3 refuses parts under 5 MiB (except the last). */
export const S3_MIN_CHUNK_SIZE = 5 * MiB;
/** S3 allows at most 10,000 parts. */
export const MAX_CHUNKS = 10_000;
/** chunk_size_bytes and upload_chunks.size_bytes are 32-bit integer columns. */
const MAX_CHUNK_SIZE = 2048 * MiB - MiB;

const WRITABLE = ['initialized', 'uploading'] as const;

export const artifactKey = (productId: string, artifactId: string) => `artifacts/${productId}/${artifactId}`;
export const artifactPath = (productId: string, artifactId: string) => `/api/v1.0/catalog/products/${productId}/model-artifacts/${artifactId}`;
export const uploadPath = (productId: string, uploadId: string) => `/api/v1.0/catalog/products/${productId}/model-artifacts/uploads/${uploadId}`;

/**
 * The chunk size for an upload: the configured size, at least 5 MiB on S3, raised (to whole MiB)
 * so that no upload needs more than 10,000 chunks.
 */
export function chooseChunkSize(configured: number, totalSize: number, backend: 'fs' | 's3'): number {
  let size = Math.min(configured, MAX_CHUNK_SIZE);
  if (backend === 's3') size = Math.max(size, S3_MIN_CHUNK_SIZE);
  const floor = Math.ceil(totalSize / MAX_CHUNKS);
  if (size < floor) size = Math.ceil(floor / MiB) * MiB;
  return size;
}

/** Byte length of chunk `index`: the chunk size, or the remainder for the last chunk. */
export function chunkLength(s: Pick<UploadSession, 'chunk_count' | 'chunk_size_bytes' | 'total_size_bytes'>, index: number): number {
  return index < s.chunk_count - 1 ? s.chunk_size_bytes : s.total_size_bytes - s.chunk_size_bytes * (s.chunk_count - 1);
}

const stagedOf = (s: UploadSession): StagedUpload => ({ key: s.staging_key, uploadId: s.storage_upload_id ?? null });
const isExpired = (s: UploadSession, now = new Date()) => s.expires_at.getTime() <= now.getTime();
const sessionNotFound = (id: string) => errors.notFound(`Upload session '${id}' was not found.`);

/** One chunk being received by this process (see UploadService.putChunk). */
interface ChunkWrite {
  stop(reason: Error): void;
  settled: Promise<void>;
}

// Statements every chunk request runs: plain SQL (executeHot), no query building.
/**
 * Upload session `id` (of product `productId` when given) as the database has it now, as a managed
 * entity of a fresh fork (never from an identity map), or null. One plain statement mapped like a
 * findOne's result: every chunk request reads its session, and building the query through the
 * ORM cost several times the lookup.
 */
export async function findSession(
  em: Em,
  id: string,
  productId?: string,
  chunkIndex?: number,
): Promise<{ session: UploadSession; chunkReceived?: boolean } | null> {
  sessionSql ??= sessionStatements(em);
  type Row = EntityData<UploadSession> & { chunk_received?: number | string };
  const [row] =
    productId === undefined
      ? await executeHot<Row>(em, 'upload_session', sessionSql.byId, [id])
      : chunkIndex === undefined
        ? await executeHot<Row>(em, 'upload_session_of_product', sessionSql.ofProduct, [id, productId])
        : await executeHot<Row>(em, 'upload_session_with_chunk', sessionSql.withChunk, [chunkIndex, id, productId]);
  if (!row) return null;
  const { chunk_received: received, ...columns } = row;
  const session = em.fork().map(UploadSession, columns as EntityData<UploadSession>);
  return received === undefined ? { session } : { session, chunkReceived: Number(received) > 0 };
}

let sessionSql: { byId: string; ofProduct: string; withChunk: string } | undefined;
/**
 * The session lookups, naming the entity's columns (not `*`: a prepared statement whose result
 * columns change under it, e.g. after another process migrated the schema, fails on PostgreSQL).
 */
function sessionStatements(em: Em): { byId: string; ofProduct: string; withChunk: string } {
  const columns = em
    .getMetadata()
    .get(UploadSession.meta.className)
    .props.flatMap((prop) => (prop.persist === false ? [] : (prop.fieldNames ?? [])))
    .map((column) => `s.${column}`)
    .join(', ');
  const select = `select ${columns} from upload_sessions s where s.id = ?`;
  const received = '(select count(*) from upload_chunks c where c.session_id = s.id and c.chunk_index = ?) as chunk_received';
  return {
    byId: select,
    ofProduct: `${select} and s.product_id = ?`,
    withChunk: `select ${columns}, ${received} from upload_sessions s where s.id = ? and s.product_id = ?`,
  };
}
const RECEIVED_INDEXES_SQL = 'select chunk_index from upload_chunks where session_id = ? order by chunk_index';
const INSERT_CHUNK_SQL =
  'insert into upload_chunks (id, session_id, chunk_index, size_bytes, sha256, etag, received_at) values (?, ?, ?, ?, ?, ?, ?)';
/**
 * The session's byte count, derived from its chunk rows in the same statement (so a connection lost
 * between a chunk's row and this update cannot leave it short: the next chunk recounts), on a
 * session that still takes chunks; returns the row when it did.
 */
const RECEIVED_BYTES_OF_ROWS = '(select coalesce(sum(c.size_bytes), 0) from upload_chunks c where c.session_id = upload_sessions.id)';
const COUNT_CHUNK_SQL =
  `update upload_sessions set received_bytes = ${RECEIVED_BYTES_OF_ROWS}, status = 'uploading', updated_at = ?, row_version = row_version + 1 ` +
  `where id = ? and status in (${WRITABLE.map((status) => `'${status}'`).join(', ')}) returning id`;
/** The byte count recomputed after chunk rows were removed. */
const RECOUNT_SQL = `update upload_sessions set received_bytes = ${RECEIVED_BYTES_OF_ROWS}, updated_at = ?, row_version = row_version + 1 where id = ?`;
const INDEX_RECEIVED_SQL = 'select chunk_index from upload_chunks where session_id = ? and chunk_index = ?';

/** Thrown inside a completion transaction that lost the race for the session. */
class LostRace extends Error {}

export class UploadService {
  /** Chunks being received by this process, per session and index. */
  private readonly writes = new Map<string, Map<number, ChunkWrite>>();
  /** Sessions this process is completing or aborting: new chunks for them are refused. */
  private readonly closing = new Set<string>();
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
  ) {
    // Staged bytes written past the page cache are read back the same way.
    const directReads = deps.storage.capabilities.directIo;
    this.hashThreads = { running: new HashThread({ lowPriority: false, directReads }), saved: new HashThread({ lowPriority: true, directReads }) };
    this.foldsStaged = deps.storage.capabilities.readStagedParts;
    this.folder = new PrefixFolder(deps, this.hashThreads, this.foldsStaged, (sessionId, index) => this.writes.get(sessionId)?.has(index) ?? false);
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

  /**
   * Indexes of the chunks received so far, ascending (or whether `only` was received). Every chunk
   * answer lists them: plain SQL, no query building.
   */
  private async receivedIndexes(em: Em, sessionId: string, only?: number): Promise<number[]> {
    const rows =
      only === undefined
        ? await executeHot<{ chunk_index: number }>(em, 'chunk_indexes', RECEIVED_INDEXES_SQL, [sessionId])
        : await executeHot<{ chunk_index: number }>(em, 'chunk_index_received', INDEX_RECEIVED_SQL, [sessionId, only]);
    return rows.map((r) => Number(r.chunk_index));
  }

  private async response(em: Em, s: UploadSession, received?: number[]): Promise<ArtifactUploadSessionResponse> {
    const chunks = received ?? (await this.receivedIndexes(em, s.id));
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
      // Every chunk's size follows from its index, so the chunk rows give the byte count (the
      // column can lag behind for a session whose last chunk lost its connection midway).
      received_bytes: chunks.reduce((sum, i) => sum + chunkLength(s, i), 0),
      received_chunks: chunks,
      status: status as ArtifactUploadSessionResponse['status'],
      artifact_id: s.status === 'completed' ? s.artifact_id : null,
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
    if (body.product_version_id) await requireVersionOf(em, product.id, body.product_version_id);

    const total = body.total_size_bytes;
    const chunkSize = chooseChunkSize(config.uploadChunkSizeBytes, total, storage.backend);
    const chunkCount = Math.ceil(total / chunkSize);
    const artifactId = randomUUID();
    const key = artifactKey(product.id, artifactId);
    const now = new Date();
    const [staged, initialState] = await Promise.all([
      storage.beginStaged(key, { totalSize: total, contentType: body.content_type }),
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
        expected_sha256: body.sha256 ?? null,
        artifact_kind: body.artifact_kind ?? 'model_binary',
        version_label: body.version_label ?? null,
        product_version_id: body.product_version_id?.toLowerCase() ?? null,
        training_run_id: body.training_run_id?.toLowerCase() ?? null,
        is_current: body.is_current ?? false,
        external_uri: body.external_uri ?? null,
        metadata: body.metadata ?? null,
        status: 'initialized',
        received_bytes: 0,
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
      await storage.abortStaged(staged).catch(() => {});
      throw err;
    }
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
    const { session, chunkReceived } = await this.load(em, user, productId, uploadId, index);
    await this.assertWritable(em, session);
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
    if (this.closing.has(session.id)) {
      throw errors.uploadNotWritable(`Upload session ${session.id} is being completed or aborted and takes no more chunks.`);
    }

    // One writer per chunk in this process: a re-send stops an older request still streaming the
    // same chunk (its client has given up on it) before writing, so the two never overlap.
    const writes = this.writes.get(session.id) ?? new Map<number, ChunkWrite>();
    this.writes.set(session.id, writes);
    const older = writes.get(index);
    let release!: () => void;
    const settled = new Promise<void>((resolve) => (release = resolve));
    const stopper = { reason: null as Error | null, stream: null as ChunkBody | null };
    const mine: ChunkWrite = {
      stop: (reason) => {
        stopper.reason = reason;
        stopper.stream?.destroy(reason);
      },
      settled,
    };
    writes.set(index, mine);
    try {
      if (older) {
        older.stop(errors.conflict(`Chunk ${index} was sent again while this request was still streaming it.`));
        await older.settled;
      }
      // Whether the chunk was stored before came with the session, unless an older request for it
      // was still running here (it may have recorded the chunk since).
      const replace = older || chunkReceived === undefined ? (await this.receivedIndexes(em, session.id, index)).length > 0 : chunkReceived;
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
      // Its errors reach us through putPart; this listener only keeps one raised before putPart
      // is listening (a short body can be rejected before storage opened its file) from being fatal.
      chunk.on('error', () => {});
      stopper.stream = chunk;
      if (stopper.reason) throw stopper.reason;
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
        throw await this.chunkFailure(em, session, index, err, stopper.reason, body);
      } finally {
        detach();
      }
      return await this.recordChunk(em, session, index, { size: expected, sha256: chunk.sha256, etag }, replace, prefix);
    } finally {
      if (writes.get(index) === mine) writes.delete(index);
      if (writes.size === 0 && this.writes.get(session.id) === writes) this.writes.delete(session.id);
      release();
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
   * Bytes are durable: record the chunk, extend the prefix digest, count the bytes. The counter is
   * one atomic conditional update that sums the chunk rows, so parallel chunks from any number of
   * processes never lose an update or retry, and a count a lost connection skipped is caught up.
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
        await executeHot(em, 'chunk_insert', INSERT_CHUNK_SQL, [
          randomUUID(),
          session.id,
          index,
          chunk.size,
          chunk.sha256,
          chunk.etag,
          dateParam(em, now),
        ]);
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
    const counted = (await executeHot(em, 'chunk_count', COUNT_CHUNK_SQL, [dateParam(em, now), session.id])).length;
    if (counted !== 1) {
      // Completed, failed, aborted or expired while this chunk streamed: its bytes will not be used.
      const current = await this.reload(em, session.id);
      if (!current || current.status === 'aborted') throw sessionNotFound(session.id);
      await this.assertWritable(em, current);
      throw errors.uploadNotWritable(`Upload session ${session.id} no longer takes chunks.`);
    }
    this.folder.kick(session.id, replace ? undefined : index);
    const received = await this.receivedIndexes(em, session.id);
    session.status = 'uploading';
    return this.response(em, session, received);
  }

  /** Stops this process's writers of a session and keeps new ones out until `done` is called. */
  private async quiesce(sessionId: string, why: string): Promise<() => void> {
    this.closing.add(sessionId);
    const writes = [...(this.writes.get(sessionId)?.values() ?? [])];
    for (const w of writes) w.stop(errors.uploadNotWritable(`Upload session ${sessionId} is being ${why}; the chunk was not stored.`));
    await Promise.all(writes.map((w) => w.settled));
    return () => this.closing.delete(sessionId);
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
    const received = new Set(await this.receivedIndexes(em, s.id));
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
      throw errors.uploadNotWritable(`Upload session ${session.id} failed: ${reason}; start a new upload.`);
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

    // 3. The rows, in one transaction; exactly one completion wins.
    const isCurrent = body.is_current ?? session.is_current;
    const now = new Date();
    try {
      const artifact = await em.transactional(async (tx) => {
        const won = await tx.nativeUpdate(
          UploadSession,
          { id: session.id, status: { $in: [...WRITABLE] } },
          { status: 'completed', completed_at: now, cleaned_at: now, updated_at: now, row_version: raw('row_version + 1') },
        );
        if (won !== 1) throw new LostRace();
        if (isCurrent) {
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
          sha256,
          storage_backend: storage.backend,
          storage_key: key,
          storage_uri: storage.uri(key),
          external_uri: session.external_uri ?? null,
          status: 'available',
          is_current: isCurrent,
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
          occurredAt: now,
        });
        return created;
      });
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
   * Chunks whose staged bytes differ from the SHA-256 recorded for them (a re-send a crash tore):
   * their rows go, so they count as missing (409) and the client sends them again.
   */
  private async dropTornChunks(em: Em, session: UploadSession, indexes: number[]): Promise<Error> {
    await em.transactional(async (tx) => {
      await tx.nativeDelete(UploadChunk, { session: session.id, chunk_index: { $in: indexes } });
      await tx.execute(RECOUNT_SQL, [dateParam(tx, new Date()), session.id]);
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

/**
 * 422 when a text field (or any string or key inside a JSON value) holds NUL (U+0000): no database
 * text or JSON column can store it.
 */
export function rejectNulCharacters(fields: Record<string, unknown>): void {
  const hasNul = (v: unknown): boolean =>
    typeof v === 'string'
      ? v.includes('\u0000')
      : Array.isArray(v)
        ? v.some(hasNul)
        : typeof v === 'object' && v !== null && Object.entries(v).some(([k, x]) => k.includes('\u0000') || hasNul(x));
  const bad = Object.keys(fields).filter((k) => hasNul(fields[k]));
  if (bad.length > 0) {
    throw errors.validation(`The request is invalid: ${bad.map((k) => `body.${k}`).join(', ')} must not contain NUL characters.`, bad.map((k) => ({
      loc: ['body', k],
      msg: 'must not contain NUL (U+0000) characters',
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
 *   catches up on the `saved` thread, at the lowest CPU priority, once the session has had no new
 *   chunk for a second, or once it lags a whole SAVE_LAG_BYTES behind. A completion that finds it
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
    /** Whether this process is receiving chunk `index` of the session right now. */
    private readonly receiving: (sessionId: string, index: number) => boolean = () => false,
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
   * while the hash thread is busy).
   */
  private saveWhenQuiet(sessionId: string): void {
    clearTimeout(this.saveTimers.get(sessionId));
    const timer = setTimeout(() => {
      this.saveTimers.delete(sessionId);
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
