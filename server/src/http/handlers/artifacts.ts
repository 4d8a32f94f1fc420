/** Stored artifacts: list, metadata, download (GET/HEAD), delete, single-request upload. */
import type { Request, Response } from 'express';
import { sendableMediaType } from '../../services/input-rules.ts';
import type { FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { errors } from '../../errors.ts';
import type { ModelArtifact } from '../../persistence/entities.ts';
import type { Services } from '../../services/index.ts';
import { artifactPath } from '../../services/uploads.ts';
import { contentDisposition } from '../../storage/index.ts';
import { ifNoneMatchMatches, parseRange } from '../conditional.ts';
import { storedFileOf } from '../multipart.ts';
import { sendJson, type Handler, type RequestContext } from '../types.ts';

export function artifactHandlers(services: Services) {
  const { config } = services.artifacts.deps;
  const listModelArtifacts: Handler<'listModelArtifacts'> = async (req, res, ctx) => {
    sendJson(res, 'listModelArtifacts', 200, await services.artifacts.list(ctx.em, ctx.user, req.params.product_id, req.query.version));
  };

  const getModelArtifact: Handler<'getModelArtifact'> = async (req, res, ctx) => {
    const { product_id, artifact_id } = req.params;
    sendJson(res, 'getModelArtifact', 200, await services.artifacts.get(ctx.em, ctx.user, product_id, artifact_id));
  };

  const deleteModelArtifact: Handler<'deleteModelArtifact'> = async (req, res, ctx) => {
    const { product_id, artifact_id } = req.params;
    await services.artifacts.remove(ctx.em, ctx.user, product_id, artifact_id);
    res.status(204).end();
  };

  const createModelArtifact: Handler<'createModelArtifact'> = async (req, res, ctx) => {
    const { product_id } = req.params;
    const file = storedFileOf(req);
    if (!file) {
      throw errors.validation('The multipart request needs a `file` part.', [{ loc: ['body', 'file'], msg: 'is required', type: 'required' }]);
    }
    const { file: _placeholder, ...fields } = req.body;
    const artifact = await services.artifacts.createFromMultipart(ctx.em, ctx.user, product_id, file.stored, fields);
    file.claim();
    res.setHeader('Location', artifactPath(artifact.product_id, artifact.id));
    sendJson(res, 'createModelArtifact', 201, artifact);
  };

  const inspectModelArtifact: Handler<'inspectModelArtifact'> = async (req, res, ctx) => {
    const { product_id, artifact_id } = req.params;
    sendJson(res, 'inspectModelArtifact', 200, await services.inspections.reinspect(ctx.em, ctx.user, product_id, artifact_id));
  };

  const redirectMode = config.storageBackend === 's3' && config.s3?.downloadMode === 'redirect';

  /** GET and HEAD of a download take the same parameters: one handler serves both operations. */
  const download = (method: 'GET' | 'HEAD'): Handler<'downloadModelArtifact'> & Handler<'headModelArtifact'> =>
    async function (req, res, ctx) {
      const { product_id, artifact_id } = req.params;
      const artifact = await services.artifacts.findDownloadable(ctx.em, ctx.user, product_id, artifact_id);
      const etag = `"${artifact.sha256}"`;
      if (ifNoneMatchMatches(req.get('If-None-Match'), etag)) {
        res.status(304).setHeader('ETag', etag);
        res.end();
        return;
      }
      if (redirectMode) {
        const url = await services.artifacts.downloadUrl(artifact);
        if (url !== null) {
          res.setHeader('Cache-Control', 'no-store');
          res.status(302).setHeader('Location', url);
          res.end();
          return;
        }
      }
      await stream(method, req, res, ctx, artifact, etag);
    };

  async function stream(method: 'GET' | 'HEAD', req: Request, res: Response, ctx: RequestContext, artifact: ModelArtifact, etag: string) {
    const size = artifact.size_bytes;
    const range = parseRange(req.get('Range'), size);
    if (range.kind === 'unsatisfiable') throw errors.rangeNotSatisfiable(size);
    const slice = range.kind === 'range' ? { start: range.start, end: range.end } : undefined;
    // Open (or look up) the bytes before any header goes out: missing bytes are a clean 404.
    const local = method === 'GET' ? await services.artifacts.openLocal(artifact, slice) : null;
    const body = method === 'GET' && !local ? await services.artifacts.open(artifact, slice) : null;
    if (method === 'HEAD') await services.artifacts.assertBytesPresent(artifact);
    const length = slice ? slice.end - slice.start + 1 : size;
    // From here on the opened file (or stream) is closed whatever happens: an error while the
    // headers are set, a client that goes away, storage failing midway.
    try {
      res.status(slice ? 206 : 200);
      res.setHeader('Content-Type', sendableMediaType(artifact.content_type));
      res.setHeader('Content-Length', String(length));
      res.setHeader('Content-Disposition', contentDisposition(artifact.file_name));
      res.setHeader('ETag', etag);
      res.setHeader('Accept-Ranges', 'bytes');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Cache-Control', 'private, no-cache');
      if (slice) res.setHeader('Content-Range', `bytes ${slice.start}-${slice.end}/${size}`);
      if (local) {
        try {
          await sendFileRange(res, local.file, slice?.start ?? 0, (slice?.start ?? 0) + length - 1);
        } catch (err) {
          ctx.log.info({ err: (err as Error).message, artifact_id: artifact.id }, 'download ended early');
          res.destroy();
        }
        return;
      }
      if (!body) {
        res.end();
        return;
      }
      try {
        await pipeline(body, res);
      } catch (err) {
        // The client went away, or storage failed midway: the status is sent, so the connection is cut.
        ctx.log.info({ err: (err as Error).message, artifact_id: artifact.id }, 'download ended early');
        res.destroy();
      }
    } finally {
      await local?.file.close().catch(() => {});
      if (body && !body.destroyed) body.destroy();
    }
  }

  return {
    listModelArtifacts,
    getModelArtifact,
    createModelArtifact,
    downloadModelArtifact: download('GET'),
    headModelArtifact: download('HEAD'),
    deleteModelArtifact,
    inspectModelArtifact,
  };
}

/** Read size of a local download (Node's 64 KiB stream default reaches only ~40% of nginx). */
const SEND_BUFFER_SIZE = 1024 * 1024;

/**
 * Sends bytes [start, end] of `file` as the response body through two reused buffers: one is
 * read while the other is being written, and a buffer is read into again only once its write
 * has completed. A read stream would allocate a new buffer per read, garbage that piles up as
 * resident memory until V8 collects it. Rejects when the client goes away or the file is short.
 */
async function sendFileRange(res: Response, file: FileHandle, start: number, end: number): Promise<void> {
  const total = end - start + 1;
  if (total <= 0) {
    await new Promise<void>((resolve) => res.end(resolve));
    return;
  }
  const gone = new Promise<never>((_resolve, reject) => {
    res.once('close', () => reject(new Error('the client went away')));
  });
  gone.catch(() => {}); // raced below; never an unhandled rejection
  const size = Math.min(SEND_BUFFER_SIZE, total);
  const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  const writes: (Promise<void> | null)[] = [null, null];
  let position = start;
  for (let i = 0; position <= end; i ^= 1) {
    if (writes[i]) await Promise.race([writes[i], gone]); // buffer i is free again
    const buffer = buffers[i]!;
    const { bytesRead } = await file.read(buffer, 0, Math.min(size, end - position + 1), position);
    if (bytesRead === 0) throw new Error(`the file ended at byte ${position}, before ${end + 1}`);
    const write = new Promise<void>((resolve, reject) => {
      res.write(buffer.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve()));
    });
    write.catch(() => {}); // awaited (raced) later
    writes[i] = write;
    position += bytesRead;
  }
  await Promise.race([Promise.all(writes), gone]);
  await Promise.race([new Promise<void>((resolve) => res.end(resolve)), gone]);
}
