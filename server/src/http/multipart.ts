/**
 * The multer storage engine of the single-request artifact upload (createModelArtifact): the glue
 * between the multipart parser and the artifact service. multer hands over the `file` part while
 * the body is still streaming; the service (ArtifactService.storeFilePart) checks access with the
 * request's EntityManager before a byte is stored, then streams the part into the BlobStore. The
 * handler (handlers/artifacts.ts) has the service create the artifact from the other fields.
 * Whatever goes wrong after the bytes were stored (a field error, a checksum mismatch, a multer
 * limit, a validator error), the stored bytes are discarded when the response ends unless the
 * handler claimed them.
 */
import type { Request } from 'express';
import type { StorageEngine } from 'multer';
import * as OpenApiValidator from 'express-openapi-validator';
import { AppError, errors } from '../errors.ts';
import type { Services } from '../services/index.ts';
import type { StoredFile } from '../services/artifacts.ts';

/** What the engine adds to multer's file object. */
export interface MultipartFile {
  stored: StoredFile;
  /** The artifact row now owns the bytes: do not discard them when the response ends. */
  claim(): void;
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

/** The product id of the path the validator matched (the engine runs before the dispatcher sets req.params). */
function productIdOf(req: Request): string {
  const matched = (req as Request & { openapi?: { pathParams?: Record<string, string> } }).openapi;
  return matched?.pathParams?.product_id ?? '';
}

export function multipartStorage(services: Services): StorageEngine {
  const artifacts = services.artifacts;

  async function store(req: Request, file: Express.Multer.File): Promise<MultipartFile> {
    const res = req.res;
    const user = res?.locals.user;
    if (!res || !user) throw errors.unauthenticated();
    const stored = await artifacts.storeFilePart(res.locals.em, user, productIdOf(req), {
      fieldName: file.fieldname,
      stream: file.stream,
      request: req,
      originalName: file.originalname,
      mimeType: file.mimetype,
    });
    let claimed = false;
    res.once('close', () => {
      if (!claimed) void artifacts.discardStoredFile(stored).catch(() => {});
    });
    return {
      stored,
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
      artifacts.discardStoredFile(stored).then(
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
