/**
 * multer storage engine for the single-request artifact upload (createModelArtifact). It checks
 * that the caller may edit the product BEFORE a byte is stored, then streams the `file` part
 * straight into the BlobStore while hashing it — the file is never held in memory. The handler
 * (handlers/artifacts.ts) checks the other fields and creates the artifact; whatever goes wrong
 * after the bytes were stored (a field error, a checksum mismatch, a multer limit, a validator
 * error), the stored object is deleted when the response ends unless the handler claimed it.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Request } from 'express';
import type { StorageEngine } from 'multer';
import * as OpenApiValidator from 'express-openapi-validator';
import { AppError, errors } from '../errors.ts';
import type { Services } from '../services/index.ts';
import type { StoredFile } from '../services/artifacts.ts';
import { feed } from '../storage/index.ts';

/** What the engine adds to multer's file object. */
export interface MultipartFile {
  stored: StoredFile;
  /** The artifact row now owns the bytes: do not delete them when the response ends. */
  claim(): void;
}

class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    done(null, chunk);
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}

/**
 * The validator wraps anything but its own HttpError into a 500; an AppError travels as the
 * `cause` of one (problem.ts unwraps it).
 */
function forValidator(err: unknown): Error {
  if (!(err instanceof AppError)) return err instanceof Error ? err : new Error(String(err));
  const wrapped = new OpenApiValidator.error.InternalServerError({ path: 'file', message: err.detail });
  (wrapped as Error).cause = err;
  return wrapped;
}

export function multipartStorage(services: Services): StorageEngine {
  const { orm, storage } = services.artifacts.deps;

  async function store(req: Request, file: Express.Multer.File): Promise<MultipartFile> {
    if (file.fieldname !== 'file') {
      throw errors.validation(`Unexpected file part '${file.fieldname}': send the artifact as the part named 'file'.`, [
        { loc: ['body', file.fieldname], msg: 'is not a file field', type: 'additionalProperties' },
      ]);
    }
    const res = req.res;
    const user = res?.locals.user;
    if (!res || !user) throw errors.unauthenticated();
    const productId = (req as Request & { openapi?: { pathParams?: Record<string, string> } }).openapi?.pathParams?.product_id ?? '';
    const target = await services.artifacts.prepareMultipart(orm.em.fork(), user, productId);

    const hashing = new HashingStream();
    hashing.on('error', () => {}); // surfaced by storage.put, which may start listening late
    const detach = feed(file.stream, hashing);
    let size: number;
    try {
      ({ size } = await storage.put(target.key, hashing, {
        contentType: file.mimetype || 'application/octet-stream',
        maxBytes: target.maxBytes,
      }));
    } catch (err) {
      throw services.artifacts.tooLarge(err);
    } finally {
      detach();
    }
    let claimed = false;
    res.once('close', () => {
      if (!claimed) void storage.delete(target.key).catch(() => {});
    });
    return {
      stored: {
        key: target.key,
        artifactId: target.artifactId,
        productId: target.productId,
        size,
        sha256: hashing.hex(),
        originalName: file.originalname,
        mimeType: file.mimetype,
      },
      claim: () => {
        claimed = true;
      },
    };
  }

  return {
    _handleFile(req, file, cb) {
      store(req as Request, file).then(
        (info) => cb(null, info as Partial<Express.Multer.File>),
        (err: unknown) => {
          file.stream.resume();
          if (err instanceof AppError && err.status === 413) req.res?.setHeader('Connection', 'close');
          cb(forValidator(err));
        },
      );
    },
    _removeFile(_req, file, cb) {
      const stored = (file as Express.Multer.File & Partial<MultipartFile>).stored;
      if (!stored) return cb(null);
      storage.delete(stored.key).then(
        () => cb(null),
        (err: unknown) => cb(err as Error),
      );
    },
  };
}

/** The `file` part the engine stored for this request, if any. */
export function storedFileOf(req: Request): MultipartFile | undefined {
  const files = (req.files ?? []) as (Express.Multer.File & Partial<MultipartFile>)[];
  const file = Array.isArray(files) ? files.find((f) => f.fieldname === 'file' && f.stored) : undefined;
  return file?.stored && file.claim ? { stored: file.stored, claim: file.claim } : undefined;
}
