/** Chunked upload sessions: initiate, status, chunks, completion, abort. */
import type { Request, Response } from 'express';
import type { Config } from '../../config.ts';
import type { Services } from '../../services/index.ts';
import { artifactPath, uploadPath } from '../../services/uploads.ts';
import { sendJson, type Handler } from '../types.ts';

/** For how many bytes a refused chunk's connection keeps discarding its body (the time is configured). */
const LINGER_BYTES = 64 * 1024 * 1024;

/**
 * When an answer goes out before the request body was read to its end (a rejected chunk), nothing
 * more of the body is stored and the connection is closed after the answer (`Connection: close`)
 * instead of reading — possibly gigabytes — of a body nobody wants. The close lingers, as web
 * servers do: a client still sending when the answer arrives would otherwise have its next write
 * reset and see a network error instead of the answer. So the socket first half-closes, then
 * discards what keeps arriving for at most `lingerMs` or LINGER_BYTES, then closes — at once when
 * the client ends its side.
 */
export function closeUnlessBodyRead(req: Request, res: Response, lingerMs: number): void {
  if (req.complete || res.headersSent) return;
  res.setHeader('Connection', 'close');
  req.unpipe();
  req.pause();
  const socket = req.socket;
  // Node ends a `Connection: close` exchange with destroySoon(): linger instead.
  socket.destroySoon = () => {
    socket.end();
    let discarded = 0;
    const close = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(close, lingerMs);
    timer.unref();
    socket.on('data', (piece: Buffer) => {
      discarded += piece.length;
      if (discarded > LINGER_BYTES) close();
    });
    socket.once('end', close);
    req.resume(); // the parser hands the rest of the body to the request: let it flow away
    // Reading may have stopped while the body was being stored (back-pressure from storage): then
    // the socket would neither drain nor see the client's end, and only the timer would close it.
    // Resuming the stream is not enough: the HTTP parser consumes the socket's handle directly,
    // and that handle's reads have to be restarted by hand (Node 20).
    socket.resume();
    const handle = (socket as unknown as { _handle?: { reading?: boolean; readStart?: () => number } })._handle;
    if (handle?.reading === false && typeof handle.readStart === 'function') {
      handle.reading = true;
      handle.readStart();
    }
  };
}

function contentLengthOf(req: Request): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined || req.headers['transfer-encoding'] !== undefined) return undefined;
  return /^\d+$/.test(header) ? Number(header) : undefined;
}

export function uploadHandlers(services: Services, config: Pick<Config, 'refusedBodyLingerSeconds'>) {
  const lingerMs = config.refusedBodyLingerSeconds * 1000;
  const initiateArtifactUpload: Handler<'initiateArtifactUpload'> = async (req, res, ctx) => {
    const session = await services.uploads.initiate(ctx.em, ctx.user, req.params.product_id, req.body);
    res.setHeader('Location', uploadPath(session.product_id, session.id));
    sendJson(res, 'initiateArtifactUpload', 201, session);
  };

  const getArtifactUpload: Handler<'getArtifactUpload'> = async (req, res, ctx) => {
    const { product_id, upload_id } = req.params;
    sendJson(res, 'getArtifactUpload', 200, await services.uploads.get(ctx.em, ctx.user, product_id, upload_id));
  };

  const abortArtifactUpload: Handler<'abortArtifactUpload'> = async (req, res, ctx) => {
    const { product_id, upload_id } = req.params;
    await services.uploads.abort(ctx.em, ctx.user, product_id, upload_id);
    res.status(204).end();
  };

  const uploadArtifactChunk: Handler<'uploadArtifactChunk'> = async (req, res, ctx) => {
    const { product_id, upload_id, chunk_index } = req.params;
    try {
      const session = await services.uploads.putChunk(ctx.em, ctx.user, product_id, upload_id, Number(chunk_index), req, {
        contentLength: contentLengthOf(req),
        contentDigest: req.get('Content-Digest'),
      });
      sendJson(res, 'uploadArtifactChunk', 200, session);
    } catch (err) {
      closeUnlessBodyRead(req, res, lingerMs);
      throw err;
    }
  };

  const completeArtifactUpload: Handler<'completeArtifactUpload'> = async (req, res, ctx) => {
    const { product_id, upload_id } = req.params;
    const body = req.body;
    const { artifact, created } = await services.uploads.complete(
      ctx.em,
      ctx.user,
      product_id,
      upload_id,
      body && typeof body === 'object' ? body : undefined,
    );
    if (created) {
      res.setHeader('Location', artifactPath(artifact.product_id, artifact.id));
      sendJson(res, 'completeArtifactUpload', 201, artifact);
    } else {
      sendJson(res, 'completeArtifactUpload', 200, artifact);
    }
  };

  return { initiateArtifactUpload, getArtifactUpload, abortArtifactUpload, uploadArtifactChunk, completeArtifactUpload };
}
