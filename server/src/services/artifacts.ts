/**
 * Stored artifacts: list, read, download, delete, and the single-request (multipart) upload.
 * The chunked upload that creates most artifacts lives in uploads.ts.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { components } from '../generated/api.ts';
import { errors } from '../errors.ts';
import { requireProductEdit, requireProductView } from '../access/index.ts';
import { LIMITS, ModelArtifact, Product, type Caller } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { isUuid } from '../persistence/queries.ts';
import { BlobNotFoundError, BlobTooLargeError, feed } from '../storage/index.ts';
import type { ServiceDeps } from './index.ts';
import type { ContentBlobs } from './content-blobs.ts';
import type { InspectionService } from './inspections.ts';
import { checkJsonSize } from './models.ts';
import { artifactResponse, type ModelArtifactResponse } from './summaries.ts';
import { artifactKey, rejectNulCharacters, requireVersionOf } from './uploads.ts';
import { productScope, recordEvent } from './events.ts';
import { requireMediaType } from './input-rules.ts';
import { requireVersionByRef } from './versions.ts';
import { BodyGateClosedError, type BodyGate } from './body-gate.ts';

export type ArtifactMultipartFields = Omit<components['schemas']['ArtifactMultipartUpload'], 'file'>;

/** Presigned download URLs live this long. */
export const DOWNLOAD_URL_TTL_SECONDS = 300;


const artifactNotFound = (id: string) => errors.notFound(`Artifact '${id}' was not found.`);

/** The `file` part of a multipart request, as the parser hands it over while the body streams. */
export interface FilePart {
  /** The part's form field name: only `file` is an artifact. */
  fieldName: string;
  stream: Readable;
  /** The request the part arrives in: while the part waits its turn (BodyGate), its socket tells whether the client went away. */
  request?: Readable;
  /** The part's own file name and type, the defaults of `file_name` and `content_type`. */
  originalName: string;
  mimeType: string;
}

/** A file part already streamed into storage by storeFilePart. */
export interface StoredFile {
  key: string;
  artifactId: string;
  productId: string;
  size: number;
  sha256: string;
  /** The part's own file name and type, the defaults of `file_name` and `content_type`. */
  originalName: string;
  mimeType: string;
}

export class ArtifactService {
  constructor(
    readonly deps: ServiceDeps,
    private readonly inspections: InspectionService,
    private readonly blobs: ContentBlobs,
    private readonly bodies: BodyGate,
  ) {}

  /** `versionRef`: only the artifacts of that version (its id, number or an alias; unknown → 404). */
  async list(em: Em, user: Caller, productId: string, versionRef?: string): Promise<ModelArtifactResponse[]> {
    const { product } = await requireProductView(em, user, productId);
    const version = versionRef === undefined ? null : await requireVersionByRef(em, product.id, versionRef);
    const rows = await em.find(
      ModelArtifact,
      { product: product.id, status: { $ne: 'deleted' }, ...(version ? { product_version: version.id } : {}) },
      { orderBy: [{ created_at: 'desc' }, { id: 'desc' }] },
    );
    return rows.map(artifactResponse);
  }

  async get(em: Em, user: Caller, productId: string, artifactId: string): Promise<ModelArtifactResponse> {
    return artifactResponse(await this.find(em, user, productId, artifactId, 'view'));
  }

  /** A non-deleted artifact of a product the user may view (or edit); 404 otherwise. */
  async find(em: Em, user: Caller, productId: string, artifactId: string, need: 'view' | 'edit'): Promise<ModelArtifact> {
    const { product } = need === 'edit' ? await requireProductEdit(em, user, productId) : await requireProductView(em, user, productId);
    if (!isUuid(artifactId)) throw artifactNotFound(artifactId);
    const artifact = await em.findOne(ModelArtifact, { id: artifactId.toLowerCase(), product: product.id, status: { $ne: 'deleted' } });
    if (!artifact) throw artifactNotFound(artifactId);
    return artifact;
  }

  /** For downloads: only `available` artifacts have bytes to serve. */
  async findDownloadable(em: Em, user: Caller, productId: string, artifactId: string): Promise<ModelArtifact> {
    const artifact = await this.find(em, user, productId, artifactId, 'view');
    if (artifact.status !== 'available') throw artifactNotFound(artifactId);
    return artifact;
  }

  /** Streams the bytes (or the inclusive range); 404 `Artifact file not found` when they are gone. */
  async open(artifact: ModelArtifact, range?: { start: number; end: number }): Promise<Readable> {
    try {
      return await this.deps.storage.get(artifact.storage_key, range);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw this.missingBytes(artifact);
      throw err;
    }
  }

  /**
   * The artifact's local file when the backend keeps one (fs), else null (read it with open()).
   * The caller closes the file. Missing bytes → 404 `Artifact file not found`.
   */
  async openLocal(artifact: ModelArtifact, range?: { start: number; end: number }): Promise<{ file: FileHandle; size: number } | null> {
    const { storage } = this.deps;
    if (!storage.capabilities.localFiles) return null;
    try {
      return await storage.openLocal(artifact.storage_key, range);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw this.missingBytes(artifact);
      throw err;
    }
  }

  /** 404 `Artifact file not found` unless the bytes are in storage. */
  async assertBytesPresent(artifact: ModelArtifact): Promise<void> {
    if ((await this.deps.storage.head(artifact.storage_key)) === null) throw this.missingBytes(artifact);
  }

  /** A short-lived URL to redirect to, or null when the backend serves no URLs (fs). */
  async downloadUrl(artifact: ModelArtifact): Promise<string | null> {
    const { storage } = this.deps;
    if (!storage.capabilities.presign) return null;
    const url = await storage.downloadUrl(artifact.storage_key, {
      fileName: artifact.file_name,
      contentType: artifact.content_type,
      expiresInSeconds: DOWNLOAD_URL_TTL_SECONDS,
    });
    if (url !== null) await this.assertBytesPresent(artifact);
    return url;
  }

  private missingBytes(artifact: ModelArtifact) {
    this.deps.logger.error({ artifact_id: artifact.id, key: artifact.storage_key }, 'artifact bytes are missing from storage');
    return errors.artifactFileNotFound();
  }

  /**
   * Marks the artifact deleted (kept for audit, no longer current) and removes its bytes. When the
   * storage delete fails the sweeper retries it (`bytes_removed_at` stays null).
   */
  async remove(em: Em, user: Caller, productId: string, artifactId: string): Promise<void> {
    const artifact = await this.find(em, user, productId, artifactId, 'edit');
    const now = new Date();
    const marked = await em.transactional(async (tx) => {
      const n = await tx.nativeUpdate(
        ModelArtifact,
        { id: artifact.id, status: { $ne: 'deleted' } },
        { status: 'deleted', is_current: false, deleted_at: now, updated_at: now },
      );
      if (n === 1) {
        await tx.nativeUpdate(Product, { id: artifact.product.id }, { updated_at: now });
        await recordEvent(tx, {
          type: 'artifact.deleted',
          actorId: user.id,
          ...(await productScope(tx, artifact.product.id)),
          subjectId: artifact.id,
          data: { ...artifactResponse(artifact), status: 'deleted', is_current: false, updated_at: now.toISOString() },
          occurredAt: now,
        });
        // Shared bytes stay for the other artifacts; the last reference queues them for removal.
        await this.blobs.release(tx, artifact, now);
      }
      return n;
    });
    if (marked !== 1) throw artifactNotFound(artifactId); // deleted concurrently
    await this.blobs.drain(em, [artifact.storage_key]); // failures stay queued for the sweeper
  }

  // ─── single-request upload ─────────────────────────────────────────────────────────────
  //
  // Two steps, because the bytes stream in while the request is still being parsed: storeFilePart
  // checks access and streams the file part into storage, hashing it (never held in memory); once
  // the whole form is read, createFromMultipart checks the other fields and creates the artifact.
  // Bytes stored for a request that creates no artifact are removed with discardStoredFile.

  /**
   * Streams the file part into storage under a new artifact id, after checking (with the request's
   * EntityManager) that the caller may edit the product: nothing is stored for a caller who may not.
   */
  async storeFilePart(em: Em, user: Caller, productId: string, part: FilePart): Promise<StoredFile> {
    if (part.fieldName !== 'file') {
      throw errors.validation(`Unexpected file part '${part.fieldName}': send the artifact as the part named 'file'.`, [
        { loc: ['body', part.fieldName], msg: 'is not a file field', type: 'additionalProperties' },
      ]);
    }
    const { product } = await requireProductEdit(em, user, productId);
    const artifactId = randomUUID();
    const key = artifactKey(product.id, artifactId);
    const { storage, config } = this.deps;
    const ticket = await this.bodies.enter(part.request ?? part.stream).catch((err: unknown) => {
      throw err instanceof BodyGateClosedError ? errors.badRequest('The request closed before its file was read; nothing was stored.') : err;
    });
    const hashing = new HashingStream();
    ticket.track(hashing);
    hashing.on('error', () => {}); // surfaced by storage.put, which may start listening late
    const detach = feed(part.stream, hashing);
    let size: number;
    try {
      ({ size } = await storage.put(key, hashing, {
        contentType: part.mimeType || 'application/octet-stream',
        maxBytes: config.maxArtifactSizeBytes,
      }));
    } catch (err) {
      if (err instanceof BlobTooLargeError) {
        throw errors.payloadTooLarge(`The file is larger than this server's maximum artifact size of ${config.maxArtifactSizeBytes} bytes.`);
      }
      throw err;
    } finally {
      detach();
      ticket.leave();
    }
    return { key, artifactId, productId: product.id, size, sha256: hashing.hex(), originalName: part.originalName, mimeType: part.mimeType };
  }

  /** Removes the bytes of a stored file part no artifact took. */
  async discardStoredFile(file: StoredFile): Promise<void> {
    await this.deps.storage.delete(file.key);
  }

  /**
   * Creates the artifact for a file storeFilePart stored, after checking the other form fields.
   * The caller discards the stored bytes when this throws.
   */
  async createFromMultipart(em: Em, user: Caller, productId: string, file: StoredFile, fields: ArtifactMultipartFields): Promise<ModelArtifactResponse> {
    const { product } = await requireProductEdit(em, user, productId);
    if (product.id !== file.productId) throw new Error('stored file belongs to another product');
    const fileName = fields.file_name ?? file.originalName;
    if (fileName.length < 1 || fileName.length > LIMITS.file_name) {
      throw errors.validation(`file_name must be 1 to ${LIMITS.file_name} characters (the file part's name is used when the field is absent).`, [
        { loc: ['body', 'file_name'], msg: `must be 1 to ${LIMITS.file_name} characters`, type: 'length' },
      ]);
    }
    const contentType = fields.content_type ?? (file.mimeType || 'application/octet-stream');
    requireMediaType(contentType, LIMITS.content_type);
    let metadata: Record<string, unknown> | null = null;
    if (fields.metadata !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(fields.metadata);
      } catch {
        parsed = undefined;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw errors.validation('metadata must be a JSON object, sent as text.', [{ loc: ['body', 'metadata'], msg: 'must be a JSON object', type: 'json' }]);
      }
      metadata = parsed as Record<string, unknown>;
      checkJsonSize({ metadata }, ['metadata']);
    }
    rejectNulCharacters({ file_name: fileName, version_label: fields.version_label, external_uri: fields.external_uri, metadata });
    if (fields.product_version_id) await requireVersionOf(em, product.id, fields.product_version_id);
    if (fields.sha256 && fields.sha256.toLowerCase() !== file.sha256) {
      throw errors.checksumMismatch(
        `SHA-256 of the uploaded bytes is ${file.sha256}, expected ${fields.sha256.toLowerCase()}; the upload failed and its bytes were discarded.`,
      );
    }
    const isCurrent = fields.is_current === 'true';
    const { storage } = this.deps;
    const now = new Date();
    let key = file.key;
    const artifact = await em.transactional(async (tx) => {
      if (isCurrent) await tx.nativeUpdate(ModelArtifact, { product: product.id, is_current: true }, { is_current: false, updated_at: now });
      key = await this.blobs.reference(tx, file.sha256, file.size, file.key, now);
      const created = tx.create(ModelArtifact, {
        id: file.artifactId,
        product: product.id,
        product_version: fields.product_version_id?.toLowerCase() ?? null,
        training_run_id: fields.training_run_id?.toLowerCase() ?? null,
        artifact_kind: fields.artifact_kind ?? 'model_binary',
        version_label: fields.version_label ?? null,
        file_name: fileName,
        content_type: contentType,
        size_bytes: file.size,
        sha256: file.sha256,
        storage_backend: storage.backend,
        storage_key: key,
        storage_uri: storage.uri(key),
        external_uri: fields.external_uri ?? null,
        status: 'available',
        is_current: isCurrent,
        metadata,
        uploaded_by: user.id,
        uploaded_at: now,
      });
      await tx.nativeUpdate(Product, { id: product.id }, { updated_at: now });
      await recordEvent(tx, {
        type: 'artifact.created',
        actorId: user.id,
        organizationId: product.space.organization.id,
        spaceId: product.space.id,
        productId: product.id,
        subjectId: created.id,
        data: artifactResponse(created),
        occurredAt: created.created_at,
      });
      return created;
    });
    if (key !== file.key) await this.blobs.drain(em, [file.key]); // these bytes were stored already
    return artifactResponse(await this.inspections.afterStore(artifact));
  }
}

/** Passes bytes through, hashing them with SHA-256 on the way. */
class HashingStream extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}
