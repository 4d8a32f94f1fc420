/**
 * A `fetch` for `createModelRepositoryClient({ fetch })` that carries the SDK's upload calls to a
 * tus server, so (b) is driven by the same client code as (a) and (c): the SDK's chunk reader,
 * SHA-256 passes, streamed chunk bodies and concurrency are untouched; only the wire protocol
 * changes.
 *
 * - initiate → `POST /files` with `Upload-Length`;
 * - chunk i  → `PATCH /files/<id>` with `Upload-Offset: i × chunk size` and the SDK's own body
 *   stream. tus takes one PATCH at a time, in offset order, so chunk i waits here until chunk i-1
 *   has been answered: the SDK still reads and hashes up to `concurrency` chunks ahead;
 * - complete → `HEAD` (the offset must equal the length); the SDK's SHA-256 is echoed back (tus
 *   has no digest to compare).
 */
import type { ArtifactUploadCreate } from '../../sdk/src/types.ts';
import { artifactRecord, json, newSession, problem, sessionRecord, uploadCall, type StandInSession } from './stand-ins.ts';

const TUS_VERSION = '1.0.0';

interface Turn {
  promise: Promise<void>;
  resolve: () => void;
}

function turn(): Turn {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export function tusFetch(tusOrigin: string, chunkSize: number): (request: Request) => Promise<Response> {
  const uploads = new Map<string, { session: StandInSession; location: string; turns: Map<number, Turn> }>();
  const turnOf = (turns: Map<number, Turn>, index: number): Turn => {
    let t = turns.get(index);
    if (!t) turns.set(index, (t = turn()));
    return t;
  };

  return async (request) => {
    const url = new URL(request.url);
    const call = uploadCall(request.method, url.pathname);
    if (!call) return problem(404, `the tus adapter does not carry ${request.method} ${url.pathname}`);

    if (call.kind === 'initiate') {
      const create = (await request.json()) as ArtifactUploadCreate;
      const created = await fetch(new URL('/files', tusOrigin), {
        method: 'POST',
        headers: {
          'Tus-Resumable': TUS_VERSION,
          'Upload-Length': String(create.total_size_bytes),
          'Upload-Metadata': `filename ${Buffer.from(create.file_name).toString('base64')}`,
        },
        signal: request.signal,
      });
      await created.arrayBuffer();
      const location = created.headers.get('Location');
      if (created.status !== 201 || !location) return problem(created.status === 201 ? 502 : created.status, `tus POST answered ${created.status}`);
      const id = location.split('/').pop()!;
      const session = newSession(call.productId, create, chunkSize, id);
      uploads.set(id, { session, location: new URL(location, tusOrigin).href, turns: new Map() });
      turnOf(uploads.get(id)!.turns, 0).resolve();
      return json(201, sessionRecord(session, 'initialized'));
    }

    const upload = uploads.get(call.uploadId);
    if (!upload) return problem(404, `no upload ${call.uploadId}`);
    const { session, location, turns } = upload;

    if (call.kind === 'chunk') {
      await turnOf(turns, call.index).promise;
      try {
        const offset = call.index * session.chunkSize;
        const headers: Record<string, string> = {
          'Tus-Resumable': TUS_VERSION,
          'Upload-Offset': String(offset),
          'Content-Type': 'application/offset+octet-stream',
        };
        for (const name of ['Content-Length', 'Content-Digest', 'User-Agent']) {
          const value = request.headers.get(name);
          if (value !== null) headers[name] = value;
        }
        const patched = await fetch(location, {
          method: 'PATCH',
          headers,
          body: request.body,
          duplex: 'half',
          signal: request.signal,
        } as RequestInit);
        await patched.arrayBuffer();
        if (patched.status !== 204) return problem(patched.status, `tus PATCH at ${offset} answered ${patched.status}`);
        session.received.add(call.index);
        return json(200, sessionRecord(session, 'uploading'));
      } finally {
        turnOf(turns, call.index + 1).resolve();
      }
    }

    const { sha256 } = (await request.json()) as { sha256: string };
    const head = await fetch(location, { method: 'HEAD', headers: { 'Tus-Resumable': TUS_VERSION }, signal: request.signal });
    const offset = Number(head.headers.get('Upload-Offset'));
    if (offset !== session.create.total_size_bytes) return problem(409, `tus holds ${offset} of ${session.create.total_size_bytes} bytes`);
    uploads.delete(call.uploadId);
    return json(201, artifactRecord(session, sha256, location));
  };
}
