/**
 * Helpers of the artifact integration suites (test/integration/artifacts):
 *
 * - `storageTargets()`: the two installations the suites run on — filesystem + SQLite, and S3 (a
 *   local S3 server started here) + PostgreSQL (a fresh database; null when PostgreSQL is
 *   unreachable and REQUIRE_POSTGRES is not set, so the suite can skip).
 * - `startArtifactApp(target)`: createApp in this process on a free port, with its services
 *   exposed (the sweeper's runOnce, the BlobStore, the ORM for reading rows).
 * - `startArtifactServer(target)`: the real server as a child process on the same database and
 *   storage (for SIGKILL and two-process tests).
 * - raw HTTP helpers for chunk requests whose body, length or connection the test controls.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import net, { type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp } from '../../server/src/app.ts';
import { loadConfig, type Config } from '../../server/src/config.ts';
import { createLogger } from '../../server/src/logger.ts';
import { openOrm, type Em, type Orm } from '../../server/src/persistence/orm.ts';
import { openBlobStore, type BlobStore } from '../../server/src/storage/index.ts';
import { createServices, type Services } from '../../server/src/services/index.ts';
import * as admin from '../../server/src/services/admin.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { startS3Server, type S3TestServer } from './s3.ts';
import { startServer, type StartedServer } from './server.ts';

export const API = '/api/v1.0';
export const KiB = 1024;
export const MiB = 1024 * 1024;

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
export const contentDigest = (data: Buffer) => `sha-256=:${createHash('sha256').update(data).digest('base64')}:`;

/** One installation: where the rows and the bytes live. */
export interface StorageTarget {
  name: 'fs+sqlite' | 's3+postgresql';
  backend: 'fs' | 's3';
  /** Chunk size the suites configure (S3 needs ≥ 5 MiB parts). */
  chunkSize: number;
  /** Environment of a server on this target (DATABASE_URL, STORAGE_*, S3_*, AWS credentials). */
  env(dataDir: string): Record<string, string>;
  s3?: S3TestServer;
  /** A lenient twin of the S3 server over the same directory (see support/s3.ts). */
  s3Twin?: S3TestServer;
  close(): Promise<void>;
}

export interface TargetFactory {
  name: StorageTarget['name'];
  /** null: unavailable (PostgreSQL unreachable and not required). */
  create: (() => Promise<StorageTarget>) | null;
}

/** The two installations. PostgreSQL is probed once; S3 servers are started per target. */
export async function storageTargets(): Promise<TargetFactory[]> {
  const probe = await createTestDatabase();
  await probe?.drop();
  return [
    {
      name: 'fs+sqlite',
      create: async () => ({
        name: 'fs+sqlite',
        backend: 'fs',
        chunkSize: 64 * KiB,
        env: (dataDir) => ({ DATABASE_URL: `sqlite:${path.join(dataDir, 'model-repository.db')}`, STORAGE_BACKEND: 'fs' }),
        close: async () => {},
      }),
    },
    {
      name: 's3+postgresql',
      create: probe
        ? async () => {
            const db: TestDatabase | null = await createTestDatabase();
            if (!db) throw new Error('PostgreSQL went away during the test run');
            const s3 = await startS3Server();
            const s3Twin = await startS3Server({ directory: s3.directory, allowMismatchedSignatures: true });
            return {
              name: 's3+postgresql',
              backend: 's3',
              chunkSize: 5 * MiB,
              s3,
              s3Twin,
              env: () => ({
                DATABASE_URL: db.url,
                STORAGE_BACKEND: 's3',
                S3_BUCKET: s3.bucket,
                S3_REGION: s3.region,
                S3_ENDPOINT: s3.endpoint,
                S3_FORCE_PATH_STYLE: 'true',
                S3_PREFIX: 'repo',
                AWS_ACCESS_KEY_ID: s3.accessKeyId,
                AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
              }),
              close: async () => {
                await s3Twin.stop();
                await s3.stop();
                await db.drop();
              },
            };
          }
        : null,
    },
  ];
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
  bytes: Buffer;
}

export interface RequestOptions {
  key?: string;
  /** JSON-encoded unless a Buffer/string (sent as is). */
  body?: unknown;
  headers?: Record<string, string>;
  redirect?: RequestRedirect;
}

/** fetch against a base URL; `p` is relative to /api/v1.0 unless absolute. */
export async function apiRequest<T = any>(origin: string, method: string, p: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
  const url = /^https?:/.test(p) ? p : `${origin}${p.startsWith('/api/') ? p : `${API}${p}`}`;
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key !== undefined) headers.Authorization = `Bearer ${opts.key}`;
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    if (Buffer.isBuffer(opts.body)) {
      body = new Uint8Array(opts.body);
      headers['Content-Type'] ??= 'application/octet-stream';
    } else if (typeof opts.body === 'string' || opts.body instanceof FormData) {
      body = opts.body;
    } else {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] ??= 'application/json';
    }
  }
  const res = await fetch(url, { method, headers, body, redirect: opts.redirect ?? 'manual' });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  let parsed: unknown;
  if (/json/.test(res.headers.get('content-type') ?? '') && text !== '') parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed as T, text, bytes };
}

/** An API client bound to a server and a key, with the upload steps the suites repeat. */
export class ArtifactClient {
  constructor(
    readonly origin: string,
    readonly key: string,
  ) {}

  request<T = any>(method: string, p: string, opts: RequestOptions = {}) {
    return apiRequest<T>(this.origin, method, p, { key: this.key, ...opts });
  }

  async createModel(name: string, space = 'default'): Promise<string> {
    const res = await this.request('POST', `/catalog/spaces/${space}/model-repository/models`, { body: { name } });
    if (res.status !== 201) throw new Error(`create model: ${res.status} ${res.text}`);
    return res.body.id as string;
  }

  initiate(productId: string, body: Record<string, unknown>) {
    return this.request('POST', `/catalog/products/${productId}/model-artifacts/uploads`, { body });
  }

  putChunk(productId: string, uploadId: string, index: number, bytes: Buffer, headers: Record<string, string> = {}) {
    return this.request('PUT', `/catalog/products/${productId}/model-artifacts/uploads/${uploadId}/chunks/${index}`, { body: bytes, headers });
  }

  complete(productId: string, uploadId: string, body?: Record<string, unknown>) {
    return this.request('POST', `/catalog/products/${productId}/model-artifacts/uploads/${uploadId}/complete`, body === undefined ? {} : { body });
  }

  session(productId: string, uploadId: string) {
    return this.request('GET', `/catalog/products/${productId}/model-artifacts/uploads/${uploadId}`);
  }

  download(productId: string, artifactId: string, headers: Record<string, string> = {}, method = 'GET') {
    return this.request(method, `/catalog/products/${productId}/model-artifacts/${artifactId}/download`, { headers });
  }

  /** Initiates, sends every chunk (in the given order, `parallel` at a time) and returns the session. */
  async sendAll(
    productId: string,
    data: Buffer,
    init: Record<string, unknown> = {},
    opts: { order?: number[]; parallel?: number; digests?: boolean } = {},
  ): Promise<{ uploadId: string; chunkSize: number; chunkCount: number }> {
    const started = await this.initiate(productId, {
      file_name: 'model.onnx',
      content_type: 'application/octet-stream',
      total_size_bytes: data.length,
      ...init,
    });
    if (started.status !== 201) throw new Error(`initiate: ${started.status} ${started.text}`);
    const { id: uploadId, chunk_size_bytes: chunkSize, chunk_count: chunkCount } = started.body;
    const order = opts.order ?? [...Array(chunkCount).keys()];
    const queue = [...order];
    const worker = async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const bytes = chunkOf(data, chunkSize, i);
        const res = await this.putChunk(productId, uploadId, i, bytes, opts.digests ? { 'Content-Digest': contentDigest(bytes) } : {});
        if (res.status !== 200) throw new Error(`chunk ${i}: ${res.status} ${res.text}`);
      }
    };
    await Promise.all(Array.from({ length: opts.parallel ?? 1 }, worker));
    return { uploadId, chunkSize, chunkCount };
  }

  /** sendAll + complete; returns the artifact. */
  async upload(productId: string, data: Buffer, init: Record<string, unknown> = {}, opts: { order?: number[]; parallel?: number } = {}) {
    const { uploadId } = await this.sendAll(productId, data, init, opts);
    const done = await this.complete(productId, uploadId);
    if (done.status !== 201) throw new Error(`complete: ${done.status} ${done.text}`);
    return { uploadId, artifact: done.body };
  }
}

export const chunkOf = (data: Buffer, chunkSize: number, index: number) => data.subarray(index * chunkSize, (index + 1) * chunkSize);

export interface ArtifactApp {
  target: StorageTarget;
  origin: string;
  config: Config;
  orm: Orm;
  storage: BlobStore;
  services: Services;
  /** Owner of organization `acme` / space `default`. */
  owner: { id: string; key: string };
  client: ArtifactClient;
  em(): Em;
  /** A user with the given role in the space, and a client for them. */
  userWithRole(email: string, role: 'admin' | 'editor' | 'viewer'): Promise<ArtifactClient>;
  close(): Promise<void>;
}

/** createApp in this process, on `target`, listening on 127.0.0.1:<free port>. */
export async function startArtifactApp(target: StorageTarget, env: Record<string, string> = {}): Promise<ArtifactApp> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-artifacts-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    SWEEP_INTERVAL_SECONDS: '0',
    UPLOAD_CHUNK_SIZE_BYTES: String(target.chunkSize),
    ...target.env(dataDir),
    ...env,
  });
  const logger = createLogger(config);
  const orm = await openOrm({ databaseUrl: config.databaseUrl, logger });
  const storage =
    target.backend === 's3'
      ? await openBlobStore({
          backend: 's3',
          bucket: config.s3!.bucket,
          region: config.s3!.region,
          endpoint: config.s3!.endpoint!,
          forcePathStyle: true,
          prefix: config.s3!.prefix,
          credentials: { accessKeyId: target.s3!.accessKeyId, secretAccessKey: target.s3!.secretAccessKey },
        })
      : await openBlobStore({ backend: 'fs', dir: config.storageDir });
  const services = createServices({ config, orm, storage, logger });
  const app = createApp({ config, orm, storage, logger, services });
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.requestTimeout = 0;
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const em = () => orm.em.fork();
  const boot = await admin.bootstrap(em(), { org: 'acme', space: 'default', email: 'owner@example.com' });
  const owner = { id: boot.user.id, key: boot.api_key };
  return {
    target,
    origin,
    config,
    orm,
    storage,
    services,
    owner,
    client: new ArtifactClient(origin, owner.key),
    em,
    userWithRole: async (email, role) => {
      await admin.createUser(em(), { email });
      await admin.addSpaceMember(em(), { email, space: 'default', role });
      const { api_key } = await admin.createApiKey(em(), { email });
      return new ArtifactClient(origin, api_key);
    },
    close: async () => {
      services.sweeper.stop();
      await services.uploads.close();
      await services.inspections.idle();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await storage.close();
      await orm.close(true);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The real server (child process) on `target`; `dataDir` shared between restarts and twins. */
export async function startArtifactServer(target: StorageTarget, dataDir: string, env: Record<string, string> = {}): Promise<StartedServer> {
  return startServer({
    dataDir,
    env: { UPLOAD_CHUNK_SIZE_BYTES: String(target.chunkSize), ...target.env(dataDir), ...env },
  });
}

export function tempDir(prefix = 'mr-artifacts-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const randomData = (size: number) => randomBytes(size);

// ─── raw HTTP: bodies, lengths and connections under the test's control ─────────────────────

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  text: string;
}

export interface RawRequest {
  /** Resolves with the response (or rejects when the connection fails before one arrived). */
  response: Promise<RawResponse>;
  req: http.ClientRequest;
  /** Bytes written into the request so far. */
  written(): number;
}

/**
 * A PUT whose body the test writes: `write(n)` pushes n more bytes, `end()` finishes it,
 * `destroy()` drops the connection. With `contentLength` undefined the body is chunked.
 */
export function rawPut(
  origin: string,
  p: string,
  opts: { key: string; contentLength?: number; contentType?: string; headers?: Record<string, string> },
) {
  const url = new URL(`${origin}${API}${p}`);
  const headers: Record<string, string | number> = {
    Authorization: `Bearer ${opts.key}`,
    'Content-Type': opts.contentType ?? 'application/octet-stream',
    ...opts.headers,
  };
  if (opts.contentLength !== undefined) headers['Content-Length'] = opts.contentLength;
  const req = http.request({ method: 'PUT', hostname: url.hostname, port: url.port, path: url.pathname, headers, agent: false });
  let written = 0;
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.once('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.once('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
      res.once('error', reject);
    });
    req.once('error', reject);
  });
  response.catch(() => {});
  return {
    response,
    req,
    written: () => written,
    /** Writes `bytes`; resolves once they are handed to the socket (or the request is gone). */
    write(bytes: Buffer): Promise<void> {
      written += bytes.length;
      return new Promise((resolve) => {
        if (req.destroyed) return resolve();
        req.write(bytes, () => resolve());
      });
    },
    end(bytes?: Buffer) {
      if (bytes) written += bytes.length;
      req.end(bytes);
    },
    destroy() {
      req.destroy();
    },
  };
}

/** A raw connection: the test decides when the request's bytes come, and sees the answer and when the server closes. */
export function rawConnection(origin: string): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => {}); // a reset after the answer is a close too
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

/** Polls `fn` until it returns truthy (or throws after `timeoutMs`, naming `what` it waited for). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 10, what = 'a condition'): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Keys of the blobs stored under `artifacts/<productId>/` (read from the disk behind either backend). */
export function storedArtifactKeys(app: ArtifactApp, productId: string): string[] {
  if (app.target.backend === 'fs') {
    const dir = path.join(app.config.storageDir, 'artifacts', productId);
    return fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => `artifacts/${productId}/${f}`) : [];
  }
  const prefix = app.config.s3!.prefix.replace(/\/$/, '');
  const dir = path.join(app.target.s3!.directory, app.target.s3!.bucket, prefix, 'artifacts', productId);
  const suffix = '._S3rver_object';
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(suffix))
        .map((f) => `artifacts/${productId}/${f.slice(0, -suffix.length)}`)
    : [];
}
