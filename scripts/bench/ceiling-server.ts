/**
 * Bench child (a), the ceiling: a bare node:http server doing only the work an upload cannot
 * avoid. It speaks the SDK's three upload calls, so `uploadArtifact` drives it unchanged:
 *
 * - initiate: one staging file per session, sized to the total;
 * - chunk: the body is hashed (SHA-256, checked against `Content-Digest`) and written at the
 *   chunk's offset in 1 MiB vectored writes as it arrives, then fdatasync'd before the answer —
 *   like our server, minus database, validation and the whole-file digest;
 * - complete: fsync, rename into place, fsync the directory (the client's SHA-256 is taken as is).
 *
 * And, for reference, `PUT /whole`: the whole file in one streamed request (hashed, written in
 * order, one fdatasync at the end).
 *
 * Usage: ceiling-server.ts <dir> <chunk size>. Sends `{ port }` over IPC once listening.
 */
import { createHash, randomUUID } from 'node:crypto';
import { open, rename, type FileHandle } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { ArtifactUploadCreate } from '../../sdk/src/types.ts';
import { artifactRecord, chunkLengthOf, newSession, sessionRecord, uploadCall, type StandInSession } from './stand-ins.ts';

const [dir, chunkSizeArg] = process.argv.slice(2);
if (!dir || !chunkSizeArg) throw new Error('usage: ceiling-server.ts <dir> <chunk size>');
const chunkSize = Number(chunkSizeArg);
const SLICE = 1024 * 1024;

const sessions = new Map<string, StandInSession & { file: FileHandle; path: string }>();

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson<T>(req: IncomingMessage): Promise<T> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return JSON.parse(Buffer.concat(parts).toString('utf8') || '{}') as T;
}

/** Writes all of `buffers` at `position` (vectored; a short write continues where it stopped). */
async function writeAt(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten } = await file.writev(rest, position);
    position += bytesWritten;
    const left: Buffer[] = [];
    for (const b of rest) {
      if (bytesWritten >= b.length) bytesWritten -= b.length;
      else {
        left.push(b.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    rest = left;
  }
}

/** Streams `req` into `file` from `position`, hashing it; at most `limit` bytes. Returns the byte count and SHA-256. */
async function receive(req: IncomingMessage, file: FileHandle, position: number, limit: number): Promise<{ bytes: number; sha256: Buffer }> {
  const hash = createHash('sha256');
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  for await (const piece of req as AsyncIterable<Buffer>) {
    bytes += piece.length;
    if (bytes > limit) throw new HttpError(422, `body longer than ${limit} bytes`);
    hash.update(piece);
    pending.push(piece);
    pendingBytes += piece.length;
    if (pendingBytes >= SLICE) {
      await writeAt(file, pending, position);
      position += pendingBytes;
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) await writeAt(file, pending, position);
  return { bytes, sha256: hash.digest() };
}

function digestOf(header: string | undefined): Buffer | undefined {
  const match = header ? /sha-256=:([A-Za-z0-9+/=]+):/.exec(header) : null;
  return match ? Buffer.from(match[1]!, 'base64') : undefined;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://ceiling');
  if (req.method === 'PUT' && url.pathname === '/whole') {
    const limit = Number(req.headers['content-length'] ?? Number.MAX_SAFE_INTEGER);
    const path = join(dir!, `whole-${randomUUID()}`);
    const file = await open(path, 'w');
    try {
      const { bytes, sha256 } = await receive(req, file, 0, limit);
      await file.datasync();
      send(res, 201, { size_bytes: bytes, sha256: sha256.toString('hex') });
    } finally {
      await file.close();
    }
    return;
  }

  const call = uploadCall(req.method ?? '', url.pathname);
  if (!call) throw new HttpError(404, `no route for ${req.method} ${url.pathname}`);

  if (call.kind === 'initiate') {
    const create = await readJson<ArtifactUploadCreate>(req);
    const session = newSession(call.productId, create, chunkSize);
    const path = join(dir!, `${session.id}.staging`);
    const file = await open(path, 'w+');
    await file.truncate(create.total_size_bytes);
    sessions.set(session.id, { ...session, file, path });
    send(res, 201, sessionRecord(session, 'initialized'));
    return;
  }

  const session = sessions.get(call.uploadId);
  if (!session) throw new HttpError(404, `no upload ${call.uploadId}`);

  if (call.kind === 'chunk') {
    if (call.index >= session.chunkCount) throw new HttpError(422, `chunk ${call.index} out of range`);
    const expected = chunkLengthOf(session, call.index);
    const { bytes, sha256 } = await receive(req, session.file, call.index * session.chunkSize, expected);
    if (bytes !== expected) throw new HttpError(422, `chunk ${call.index}: ${bytes} bytes, expected ${expected}`);
    const digest = digestOf(req.headers['content-digest'] as string | undefined);
    if (digest && !digest.equals(sha256)) throw new HttpError(422, `chunk ${call.index}: Content-Digest mismatch`);
    await session.file.datasync();
    session.received.add(call.index);
    send(res, 200, sessionRecord(session, 'uploading'));
    return;
  }

  const { sha256 } = await readJson<{ sha256: string }>(req);
  if (session.received.size !== session.chunkCount) throw new HttpError(409, 'chunks missing');
  await session.file.sync();
  await session.file.close();
  const finalPath = join(dir!, session.id);
  await rename(session.path, finalPath);
  const dirHandle = await open(dir!, 'r');
  await dirHandle.sync();
  await dirHandle.close();
  sessions.delete(session.id);
  send(res, 201, artifactRecord(session, sha256, `file://${finalPath}`));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    const status = err instanceof HttpError ? err.status : 500;
    if (!res.headersSent) send(res, status, { type: 'about:blank', title: `HTTP ${status}`, status, detail: (err as Error).message });
    else res.destroy();
    // Stop reading a body that was refused.
    if (!req.complete) req.destroy();
  });
});
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  process.send!({ port: (server.address() as { port: number }).port });
});
process.on('disconnect', () => process.exit(0));
