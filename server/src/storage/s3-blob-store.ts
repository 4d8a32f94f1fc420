/**
 * BlobStore on an S3-compatible bucket (what a multi-machine deployment uses).
 *
 * Staged uploads are S3 multipart uploads created directly at the blob's final key: completing
 * one is atomic and needs no copy. The part list always comes from our database (ListParts is
 * not used: S3-compatible servers differ on it, and our records are the source of truth).
 *
 * Objects live at `<prefix>/<key>` (or `<key>` without a prefix).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import {
  BlobNotFoundError,
  BlobRangeError,
  ExactLengthStream,
  MaxLengthStream,
  StagedAbortError,
  StagedUploadNotFoundError,
  assertCompletePartList,
  contentDisposition,
  feed,
  type BlobStore,
  type BlobStoreCapabilities,
  type PartInput,
  type StagedPart,
  type StagedUpload,
} from './blob-store.ts';
import { assertValidKey } from './secure-path.ts';

export interface S3BlobStoreOptions {
  bucket: string;
  region: string;
  /** For S3-compatible servers (MinIO, the test server); omit for AWS. */
  endpoint?: string;
  /** Path-style URLs (http://host/bucket/key); most S3-compatible servers need it. */
  forcePathStyle?: boolean;
  /** Key prefix inside the bucket, without leading/trailing slashes (they are stripped). */
  prefix?: string;
  /** Static credentials; omitted → the standard AWS credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** put(): part size and parallelism of lib-storage's Upload, i.e. at most 4 × 5 MiB buffered. */
const PUT_PART_SIZE = 5 * 1024 * 1024;
const PUT_QUEUE_SIZE = 4;
/** See ping(). A leading "." keeps it outside the key language, so no blob can be named so. */
const PING_PROBE_KEY = '.readyz-probe';
/** Drops the SDK's console warning for every failed streamed upload: we report those ourselves. */
const QUIET_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export class S3BlobStore implements BlobStore {
  readonly backend = 's3' as const;
  readonly capabilities: BlobStoreCapabilities = Object.freeze({ readStagedParts: false, presign: true, localFiles: false, directIo: false });
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  /**
   * Used for UploadPart only, with retries off: its body is a one-shot stream the SDK cannot
   * replay, so an automatic retry would send an empty body. The uploading client retries the chunk.
   */
  private readonly streamingClient: S3Client;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    const config: S3ClientConfig = {
      region: options.region,
      forcePathStyle: options.forcePathStyle ?? false,
      // Default checksums would send streamed bodies aws-chunked with trailers, which
      // S3-compatible servers often mishandle; S3 itself does not require them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    };
    this.client = new S3Client(config);
    this.streamingClient = new S3Client({ ...config, maxAttempts: 1, logger: QUIET_LOGGER });
  }

  async beginStaged(key: string, opts: { totalSize: number; contentType: string }): Promise<StagedUpload> {
    const Key = this.objectKey(key);
    // S3 cannot complete a multipart upload without parts: a 0-byte blob is written at commit.
    if (opts.totalSize === 0) return { key, uploadId: null };
    const out = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ContentType: opts.contentType }),
    );
    if (!out.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
    return { key, uploadId: out.UploadId };
  }

  async putPart(staged: StagedUpload, part: PartInput): Promise<{ etag: string | null }> {
    const Key = this.objectKey(staged.key);
    if (staged.uploadId === null) throw new StagedUploadNotFoundError(staged.key); // 0-byte upload has no parts
    const counter = new ExactLengthStream(part.size);
    // Whatever makes the body fail (wrong length, client gone) must end the HTTP request at once:
    // the SDK pipes the body without watching its errors and would otherwise wait forever.
    const abort = new AbortController();
    counter.on('error', () => abort.abort());
    const detach = feed(part.body, counter);
    try {
      const out = await this.streamingClient.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key,
          UploadId: staged.uploadId,
          PartNumber: part.index + 1,
          ContentLength: part.size,
          Body: counter,
        }),
        { abortSignal: abort.signal },
      );
      if (!out.ETag) throw new Error(`UploadPart ${part.index + 1} returned no ETag`);
      return { etag: out.ETag };
    } catch (err) {
      if (counter.errored) throw counter.errored; // the body's fault, not S3's
      if (isS3Error(err, 'NoSuchUpload')) throw new StagedUploadNotFoundError(staged.key, { cause: err });
      throw err;
    } finally {
      detach();
      counter.destroy();
    }
  }

  async commitStaged(
    staged: StagedUpload,
    parts: StagedPart[],
    opts: { totalSize: number; contentType: string; verifyParts?: boolean },
  ): Promise<{ sha256: null }> {
    const sorted = assertCompletePartList(parts, opts.totalSize);
    const Key = this.objectKey(staged.key);
    if (staged.uploadId === null) {
      if (opts.totalSize !== 0) throw new Error('A staged upload without UploadId must be empty');
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key, Body: new Uint8Array(0), ContentLength: 0, ContentType: opts.contentType }),
      );
      return { sha256: null };
    }
    const Parts = sorted.map((p) => {
      if (!p.etag) throw new Error(`Part ${p.index} has no ETag; S3 needs the one UploadPart returned`);
      return { PartNumber: p.index + 1, ETag: p.etag };
    });
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: staged.uploadId, MultipartUpload: { Parts } }),
      );
    } catch (err) {
      // Retry after a crash or a lost response: the upload is gone, but its result is in place.
      // Keys are unique per upload, so an object of the expected size there is this upload's.
      const existing = await this.head(staged.key).catch(() => null);
      if (existing?.size === opts.totalSize) return { sha256: null };
      if (isS3Error(err, 'NoSuchUpload')) throw new StagedUploadNotFoundError(staged.key, { cause: err });
      throw err;
    }
    return { sha256: null };
  }

  /** Blobs live in S3: downloads read them with get() (or are redirected to downloadUrl). */
  async openLocal(key: string): Promise<null> {
    this.objectKey(key); // same key checks as every other method
    return null;
  }

  /** Staged parts live in S3, where an unfinished multipart upload cannot even be read. */
  localStagedPath(staged: StagedUpload): null {
    this.objectKey(staged.key); // same key checks as every other method
    return null;
  }

  async abortStaged(staged: StagedUpload): Promise<void> {
    const Key = this.objectKey(staged.key);
    if (staged.uploadId === null) return;
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: staged.uploadId }));
    } catch (err) {
      if (isS3Error(err, 'NoSuchUpload')) return;
      throw new StagedAbortError(staged.key, staged.uploadId, err);
    }
  }

  async put(key: string, body: Readable, opts: { contentType: string; maxBytes?: number }): Promise<{ size: number }> {
    const Key = this.objectKey(key);
    const limiter = new MaxLengthStream(opts.maxBytes);
    const detach = feed(body, limiter);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: limiter, ContentType: opts.contentType },
      partSize: PUT_PART_SIZE,
      queueSize: PUT_QUEUE_SIZE,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
      return { size: limiter.bytes };
    } catch (err) {
      // Upload may report its failed clean-up instead of the cause: the cause is what matters.
      if (limiter.errored) throw limiter.errored;
      throw err;
    } finally {
      detach();
      limiter.destroy();
    }
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const Key = this.objectKey(key);
    if (range) assertRange(range);
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      if (!(out.Body instanceof Readable)) throw new Error('GetObject returned no Node.js stream');
      return out.Body;
    } catch (err) {
      if (isS3Error(err, 'NoSuchKey', 'NotFound')) throw new BlobNotFoundError(key);
      if (range && isS3Error(err, 'InvalidRange')) throw new BlobRangeError(key, range);
      throw err;
    }
  }

  async head(key: string): Promise<{ size: number } | null> {
    const Key = this.objectKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { size: out.ContentLength ?? 0 };
    } catch (err) {
      if (isS3Error(err, 'NotFound', 'NoSuchKey')) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async downloadUrl(
    key: string,
    opts: { fileName: string; contentType: string; expiresInSeconds: number },
  ): Promise<string | null> {
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: this.objectKey(key),
      ResponseContentDisposition: contentDisposition(opts.fileName),
      ResponseContentType: opts.contentType,
    });
    return getSignedUrl(this.client, command, { expiresIn: opts.expiresInSeconds });
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  /**
   * GETs a probe key that never exists (keys cannot start with "."): NoSuchKey proves the
   * endpoint answers, the credentials are accepted and the bucket exists; NoSuchBucket,
   * AccessDenied, InvalidAccessKeyId… reject. Not HeadBucket: the SDK signs bucket-level requests
   * for `/bucket/`, which S3-compatible servers such as s3rver reject, and a HEAD has no error
   * code to tell a missing bucket from a missing key. Needs s3:ListBucket, like HeadBucket.
   */
  async ping(): Promise<void> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.rawKey(PING_PROBE_KEY) }));
      (out.Body as Readable | undefined)?.destroy(); // someone created it: still healthy
    } catch (err) {
      if (isS3Error(err, 'NoSuchKey')) return;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.streamingClient.destroy();
  }

  private objectKey(key: string): string {
    assertValidKey(key);
    return this.rawKey(key);
  }

  private rawKey(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }
}

function assertRange(range: { start: number; end: number }): void {
  const ok = Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start;
  if (!ok) throw new RangeError(`Invalid range ${range.start}-${range.end}`);
}

/** Matches an S3 error by its code (the SDK's error name; `Code` for unmodeled errors). */
function isS3Error(err: unknown, ...codes: string[]): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { Code?: string }).Code;
  return codes.includes(err.name) || (code !== undefined && codes.includes(code));
}
