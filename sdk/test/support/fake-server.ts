// A small in-memory model repository behind a fetch function, for unit tests of the SDK: enough of
// the upload, artifact, download and list endpoints to exercise the helpers, plus hooks to inject
// faults. It checks what the real server checks about chunks (length, Content-Digest, completeness).
import { createHash, randomUUID } from 'node:crypto';
import type { components } from '../../src/generated/api.ts';
import { chunkRanges } from '../../src/upload.ts';

type Session = components['schemas']['ArtifactUploadSession'];
type Artifact = components['schemas']['ModelArtifact'];
type ModelSummary = components['schemas']['ModelSummary'];

export const API_ORIGIN = 'http://repo.test';
export const STORAGE_ORIGIN = 'https://storage.test';
export const API_KEY = 'test-key-123';

export interface RecordedRequest {
  method: string;
  url: URL;
  headers: Headers;
  bodyLength: number;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

/** Returns a Response (or throws) to take over a request; undefined lets the fake server answer. */
export type Interceptor = (request: Request, recorded: RecordedRequest) => Response | undefined | Promise<Response | undefined>;

interface StoredSession {
  session: Session;
  chunks: Map<number, Uint8Array>;
}

export function problem(status: number, code: string, detail: string, headers: Record<string, string> = {}): Response {
  return new Response(
    JSON.stringify({ type: 'about:blank', title: `HTTP ${status}`, status, detail, code, instance: '/x' }),
    { status, headers: { 'Content-Type': 'application/problem+json', 'X-Request-Id': `req-${status}`, ...headers } },
  );
}

/** undici's error for a connection reset: a TypeError whose cause carries the system error. */
export function connectionReset(): TypeError {
  const cause = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  return new TypeError('fetch failed', { cause });
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class FakeModelRepository {
  chunkSize: number;
  readonly requests: RecordedRequest[] = [];
  readonly sessions = new Map<string, StoredSession>();
  readonly artifacts = new Map<string, { record: Artifact; bytes: Uint8Array }>();
  models: ModelSummary[] = [];
  interceptors: Interceptor[] = [];
  /** Where downloads are served from: the API itself, or a 302 to another (or the same) origin. */
  downloadMode: 'direct' | 'redirect-cross-origin' | 'redirect-same-origin' = 'direct';
  /** Flip one byte of every download body (to test verification). */
  tamperDownloads = false;
  /** Chunk PUTs in flight right now, and the most seen at once. */
  inFlightChunks = 0;
  maxInFlightChunks = 0;
  /** Delay before answering a chunk, so concurrency can be observed. */
  chunkDelayMs = 0;
  /** What `POST …/inspect` stores on the artifact. */
  inspectionResult: Artifact['inspection'] = null;

  constructor(options: { chunkSize?: number } = {}) {
    this.chunkSize = options.chunkSize ?? 4;
  }

  readonly fetch = async (input: Request): Promise<Response> => {
    const request = input;
    const url = new URL(request.url);
    const body = request.method === 'GET' || request.method === 'HEAD' ? new Uint8Array() : new Uint8Array(await request.arrayBuffer());
    let json: unknown;
    if (request.headers.get('Content-Type')?.includes('json') && body.byteLength > 0) {
      json = JSON.parse(new TextDecoder().decode(body));
    }
    const recorded: RecordedRequest = { method: request.method, url, headers: new Headers(request.headers), bodyLength: body.byteLength, json };
    this.requests.push(recorded);
    request.signal.throwIfAborted();
    for (const intercept of this.interceptors) {
      const response = await intercept(request, recorded);
      if (response) return response;
    }
    if (url.origin === STORAGE_ORIGIN || url.pathname.startsWith('/storage/')) return this.serveStorage(request, url);
    if (url.origin !== API_ORIGIN) throw new TypeError(`fetch failed: no route to ${url.origin}`);
    if (request.headers.get('Authorization') !== `Bearer ${API_KEY}`) {
      return problem(401, 'unauthenticated', 'A valid API key is required', { 'WWW-Authenticate': 'Bearer' });
    }
    return this.route(request, url, body);
  };

  /** The requests whose path matches. */
  requestsTo(method: string, pathPattern: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && pathPattern.test(r.url.pathname));
  }

  /** Creates a session as POST …/uploads would, outside the SDK. */
  createSession(productId: string, totalBytes: number): Session {
    const session: Session = {
      id: randomUUID(),
      product_id: productId,
      file_name: 'f.bin',
      content_type: 'application/octet-stream',
      total_size_bytes: totalBytes,
      chunk_size_bytes: this.chunkSize,
      chunk_count: Math.ceil(totalBytes / this.chunkSize),
      expected_sha256: null,
      received_bytes: 0,
      received_chunks: [],
      status: 'initialized',
      artifact_id: null,
      deduplicated: false,
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      created_at: new Date().toISOString(),
      completed_at: null,
    };
    this.sessions.set(session.id, { session, chunks: new Map() });
    return session;
  }

  /** Stores a chunk directly, as if an earlier run had sent it. */
  putChunk(uploadId: string, index: number, bytes: Uint8Array): void {
    const stored = this.sessions.get(uploadId)!;
    stored.chunks.set(index, bytes.slice());
    this.refresh(stored);
  }

  addArtifact(productId: string, bytes: Uint8Array, fileName = 'model.bin'): Artifact {
    const now = new Date().toISOString();
    const record: Artifact = {
      id: randomUUID(),
      product_id: productId,
      product_version_id: null,
      training_run_id: null,
      artifact_kind: 'model_binary',
      version_label: null,
      file_name: fileName,
      content_type: 'application/octet-stream',
      size_bytes: bytes.byteLength,
      sha256: sha256Hex(bytes),
      storage_backend: 'fs',
      storage_uri: 'file:///x',
      external_uri: null,
      status: 'available',
      is_current: false,
      metadata: null,
      inspection: null,
      uploaded_by_id: null,
      uploaded_at: now,
      created_at: now,
      updated_at: now,
    };
    this.artifacts.set(record.id, { record, bytes: bytes.slice() });
    return record;
  }

  private refresh(stored: StoredSession): void {
    const indexes = [...stored.chunks.keys()].sort((a, b) => a - b);
    stored.session.received_chunks = indexes;
    stored.session.received_bytes = indexes.reduce((sum, i) => sum + stored.chunks.get(i)!.byteLength, 0);
    if (stored.session.status === 'initialized' && indexes.length > 0) stored.session.status = 'uploading';
  }

  private async route(request: Request, url: URL, body: Uint8Array): Promise<Response> {
    const path = url.pathname.replace(/^\/api\/v1\.0/, '');
    let m: RegExpExecArray | null;
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) =>
      new Response(JSON.stringify(value), {
        status,
        headers: { 'Content-Type': 'application/json', 'X-Request-Id': randomUUID(), ...headers },
      });

    if (/^\/(?:catalog\/spaces|organizations)\/[^/]+\/model-repository\/models$/.test(path) && request.method === 'GET') {
      const skip = Number(url.searchParams.get('skip') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 50);
      const page = this.models.slice(skip, skip + limit);
      return json(200, page, {
        'X-Total-Count': String(this.models.length),
        'X-Page': String(Math.floor(skip / limit) + 1),
        'X-Has-More': String(skip + page.length < this.models.length),
      });
    }
    if ((m = /^\/catalog\/products\/([^/]+)\/model-artifacts$/.exec(path)) && request.method === 'GET') {
      const productId = m[1];
      return json(200, [...this.artifacts.values()].map((a) => a.record).filter((a) => a.product_id === productId).reverse());
    }
    if ((m = /^\/catalog\/products\/([^/]+)\/model-artifacts\/uploads$/.exec(path)) && request.method === 'POST') {
      const input = JSON.parse(new TextDecoder().decode(body)) as { total_size_bytes: number; file_name: string; content_type: string; sha256?: string };
      const session = this.createSession(m[1]!, input.total_size_bytes);
      session.file_name = input.file_name;
      session.content_type = input.content_type;
      session.expected_sha256 = input.sha256 ?? null;
      // Instant upload: bytes with this digest and size are stored already.
      const same = [...this.artifacts.values()].find((a) => a.record.sha256 === input.sha256 && a.record.size_bytes === input.total_size_bytes);
      if (same && input.total_size_bytes > 0) {
        const stored = this.sessions.get(session.id)!;
        chunkRanges(input.total_size_bytes, session.chunk_size_bytes).forEach((r) => stored.chunks.set(r.index, same.bytes.subarray(r.start, r.end)));
        this.refresh(stored);
        session.deduplicated = true;
      }
      return json(201, session);
    }
    if ((m = /^\/catalog\/products\/([^/]+)\/model-artifacts\/uploads\/([^/]+)$/.exec(path))) {
      const stored = this.sessions.get(m[2]!);
      if (!stored) return problem(404, 'not_found', 'Upload session not found');
      if (request.method === 'GET') return json(200, stored.session);
      if (request.method === 'DELETE') {
        this.sessions.delete(m[2]!);
        return new Response(null, { status: 204 });
      }
    }
    if ((m = /^\/catalog\/products\/([^/]+)\/model-artifacts\/uploads\/([^/]+)\/chunks\/(\d+)$/.exec(path)) && request.method === 'PUT') {
      const stored = this.sessions.get(m[2]!);
      if (!stored) return problem(404, 'not_found', 'Upload session not found');
      this.inFlightChunks++;
      this.maxInFlightChunks = Math.max(this.maxInFlightChunks, this.inFlightChunks);
      try {
        if (this.chunkDelayMs > 0) await new Promise((r) => setTimeout(r, this.chunkDelayMs));
        const index = Number(m[3]);
        const { chunk_count, chunk_size_bytes, total_size_bytes } = stored.session;
        if (index >= chunk_count) return problem(422, 'chunk_index_out_of_range', `Chunk ${index} is out of range`);
        const expected = index === chunk_count - 1 ? total_size_bytes - index * chunk_size_bytes : chunk_size_bytes;
        if (body.byteLength !== expected) return problem(422, 'chunk_size_mismatch', `Chunk ${index} must be ${expected} bytes`);
        const digest = request.headers.get('Content-Digest');
        if (digest !== null && digest !== `sha-256=:${createHash('sha256').update(body).digest('base64')}:`) {
          return problem(422, 'chunk_digest_mismatch', 'Content-Digest does not match');
        }
        stored.chunks.set(index, body);
        this.refresh(stored);
        return json(200, stored.session);
      } finally {
        this.inFlightChunks--;
      }
    }
    if ((m = /^\/catalog\/products\/([^/]+)\/model-artifacts\/uploads\/([^/]+)\/complete$/.exec(path)) && request.method === 'POST') {
      const stored = this.sessions.get(m[2]!);
      if (!stored) return problem(404, 'not_found', 'Upload session not found');
      if (stored.session.status === 'completed') return json(200, this.artifacts.get(stored.session.artifact_id!)!.record);
      const missing = [...Array(stored.session.chunk_count).keys()].filter((i) => !stored.chunks.has(i));
      if (missing.length > 0) return problem(409, 'upload_incomplete', `Missing chunks ${missing.join(', ')}`);
      const bytes = new Uint8Array(stored.session.total_size_bytes);
      for (const [i, chunk] of stored.chunks) bytes.set(chunk, i * stored.session.chunk_size_bytes);
      const input = body.byteLength ? (JSON.parse(new TextDecoder().decode(body)) as { sha256?: string; is_current?: boolean }) : {};
      if (input.sha256 && input.sha256 !== sha256Hex(bytes)) {
        stored.session.status = 'failed';
        return problem(422, 'checksum_mismatch', 'SHA-256 does not match');
      }
      const artifact = this.addArtifact(m[1]!, bytes, stored.session.file_name);
      artifact.is_current = input.is_current ?? false;
      stored.session.status = 'completed';
      stored.session.artifact_id = artifact.id;
      return json(201, artifact);
    }
    if ((m = /^\/catalog\/products\/([^/]+)\/model-artifacts\/([^/]+)\/inspect$/.exec(path)) && request.method === 'POST') {
      const found = this.artifacts.get(m[2]!);
      if (!found) return problem(404, 'not_found', 'Artifact not found');
      found.record.inspection = this.inspectionResult;
      return json(200, found.record);
    }
    if ((m = /^\/catalog\/products\/([^/]+)\/model-artifacts\/([^/]+)$/.exec(path)) && request.method === 'GET') {
      const found = this.artifacts.get(m[2]!);
      return found ? json(200, found.record) : problem(404, 'not_found', 'Artifact not found');
    }
    if ((m = /^\/catalog\/products\/([^/]+)\/model-artifacts\/([^/]+)\/download$/.exec(path)) && request.method === 'GET') {
      const found = this.artifacts.get(m[2]!);
      if (!found) return problem(404, 'not_found', 'Artifact not found');
      if (this.downloadMode === 'redirect-cross-origin') {
        return new Response(null, { status: 302, headers: { Location: `${STORAGE_ORIGIN}/bucket/${found.record.id}?X-Amz-Signature=abc` } });
      }
      if (this.downloadMode === 'redirect-same-origin') {
        return new Response(null, { status: 302, headers: { Location: `/storage/${found.record.id}` } });
      }
      return this.serveBytes(request, found.record, found.bytes);
    }
    return problem(404, 'not_found', `No route for ${request.method} ${path}`);
  }

  private serveStorage(request: Request, url: URL): Response {
    const id = url.pathname.split('/').pop()!;
    const found = this.artifacts.get(id);
    if (!found) return new Response('NoSuchKey', { status: 404 });
    return this.serveBytes(request, found.record, found.bytes);
  }

  private serveBytes(request: Request, record: Artifact, stored: Uint8Array): Response {
    let bytes = stored;
    if (this.tamperDownloads && bytes.byteLength > 0) {
      bytes = bytes.slice();
      bytes[0] = bytes[0]! ^ 0xff;
    }
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      ETag: `"${record.sha256}"`,
      'Accept-Ranges': 'bytes',
    };
    const range = /^bytes=(\d+)-$/.exec(request.headers.get('Range') ?? '');
    if (range) {
      const start = Number(range[1]);
      if (start >= bytes.byteLength) return problem(416, 'range_not_satisfiable', 'Range not satisfiable');
      return new Response(bytes.slice(start), {
        status: 206,
        headers: { ...headers, 'Content-Range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` },
      });
    }
    return new Response(bytes.slice(), { status: 200, headers });
  }
}

/** A body that delivers `bytes` up to `cutAt`, then fails like a dropped connection. */
export function truncatedBody(bytes: Uint8Array, cutAt: number): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      // error() drops queued chunks, so the bytes go out in one pull and the failure in the next.
      if (!sent) {
        sent = true;
        controller.enqueue(bytes.slice(0, cutAt));
        return;
      }
      controller.error(new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) }));
    },
  });
}

export function randomBytes(n: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Records the waits the retry policy asks for instead of waiting. */
export function recordingSleep(): { sleep: (ms: number, signal?: AbortSignal) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      delays.push(ms);
    },
  };
}
