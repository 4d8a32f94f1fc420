import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createModelRepositoryClient,
  ModelRepositoryError,
  ModelRepositoryIntegrityError,
  type DownloadProgress,
} from '../../src/index.ts';
import {
  API_KEY,
  API_ORIGIN,
  FakeModelRepository,
  randomBytes,
  recordingSleep,
  STORAGE_ORIGIN,
  truncatedBody,
} from '../support/fake-server.ts';

const productId = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sdk-download-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup() {
  const fake = new FakeModelRepository();
  const { sleep, delays } = recordingSleep();
  const client = createModelRepositoryClient({
    baseUrl: API_ORIGIN,
    apiKey: API_KEY,
    fetch: fake.fetch,
    headers: { 'X-Tenant-Secret': 'shh' },
    retry: { sleep },
  });
  return { fake, client, delays };
}

describe('downloadArtifact', () => {
  it('writes the artifact to a path after verifying it, reporting progress', async () => {
    const { fake, client } = setup();
    const bytes = randomBytes(100_000);
    const artifact = fake.addArtifact(productId, bytes);
    const to = join(dir, 'model.bin');
    const progress: DownloadProgress[] = [];
    const result = await client.downloadArtifact(productId, artifact.id, { to, onProgress: (p) => progress.push(p) });
    expect(result.id).toBe(artifact.id);
    expect(new Uint8Array(await readFile(to))).toEqual(bytes);
    expect(await readdir(dir)).toEqual(['model.bin']);
    expect(progress.at(-1)).toEqual({ downloadedBytes: 100_000, totalBytes: 100_000 });
  });

  it('writes into a WritableStream', async () => {
    const { fake, client } = setup();
    const bytes = randomBytes(5000);
    const artifact = fake.addArtifact(productId, bytes);
    const parts: Uint8Array[] = [];
    let closed = false;
    const stream = new WritableStream<Uint8Array>({
      write: (chunk) => void parts.push(chunk),
      close: () => void (closed = true),
    });
    await client.downloadArtifact(productId, artifact.id, { to: stream });
    expect(closed).toBe(true);
    expect(new Uint8Array(Buffer.concat(parts))).toEqual(bytes);
  });

  it('downloads an empty artifact', async () => {
    const { fake, client } = setup();
    const artifact = fake.addArtifact(productId, new Uint8Array(0));
    const to = join(dir, 'empty.bin');
    await client.downloadArtifact(productId, artifact.id, { to });
    expect((await readFile(to)).byteLength).toBe(0);
  });

  it('on a SHA-256 mismatch removes the partial file and throws', async () => {
    const { fake, client } = setup();
    const artifact = fake.addArtifact(productId, randomBytes(3000));
    fake.tamperDownloads = true;
    const to = join(dir, 'model.bin');
    const error = await client.downloadArtifact(productId, artifact.id, { to }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryIntegrityError);
    expect((error as ModelRepositoryIntegrityError).code).toBe('download_checksum_mismatch');
    expect((error as ModelRepositoryIntegrityError).expected).toBe(artifact.sha256);
    expect(await readdir(dir)).toEqual([]);
  });

  it('on a SHA-256 mismatch removes the partial file even with resume: true', async () => {
    const { fake, client } = setup();
    const artifact = fake.addArtifact(productId, randomBytes(3000));
    fake.tamperDownloads = true;
    await expect(client.downloadArtifact(productId, artifact.id, { to: join(dir, 'm'), resume: true })).rejects.toBeInstanceOf(
      ModelRepositoryIntegrityError,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('on a size mismatch (more bytes than recorded) removes the partial file and throws', async () => {
    const { fake, client } = setup();
    const artifact = fake.addArtifact(productId, randomBytes(3000));
    artifact.size_bytes = 2000; // the record says less than storage holds
    const error = await client.downloadArtifact(productId, artifact.id, { to: join(dir, 'm') }).catch((e: unknown) => e);
    expect((error as ModelRepositoryIntegrityError).code).toBe('download_size_mismatch');
    expect(await readdir(dir)).toEqual([]);
  });

  it('aborts a WritableStream target on mismatch', async () => {
    const { fake, client } = setup();
    const artifact = fake.addArtifact(productId, randomBytes(300));
    fake.tamperDownloads = true;
    let abortReason: unknown;
    const stream = new WritableStream<Uint8Array>({ abort: (reason) => void (abortReason = reason) });
    const error = await client.downloadArtifact(productId, artifact.id, { to: stream }).catch((e: unknown) => e);
    expect(abortReason).toBe(error);
  });

  it('continues an interrupted transfer with Range and produces identical bytes', async () => {
    const { fake, client, delays } = setup();
    const bytes = randomBytes(50_000);
    const artifact = fake.addArtifact(productId, bytes);
    let cuts = 0;
    fake.interceptors.push((request) => {
      if (!request.url.endsWith('/download') || cuts >= 2) return undefined;
      cuts++;
      const from = Number(/bytes=(\d+)-/.exec(request.headers.get('Range') ?? '')?.[1] ?? 0);
      const rest = bytes.subarray(from);
      return new Response(truncatedBody(rest, 10_000), {
        status: from ? 206 : 200,
        headers: from ? { 'Content-Range': `bytes ${from}-${bytes.byteLength - 1}/${bytes.byteLength}` } : {},
      });
    });
    const to = join(dir, 'model.bin');
    await client.downloadArtifact(productId, artifact.id, { to });
    expect(new Uint8Array(await readFile(to))).toEqual(bytes);
    const ranges = fake.requestsTo('GET', /\/download$/).map((r) => r.headers.get('Range'));
    expect(ranges).toEqual([null, 'bytes=10000-', 'bytes=20000-']);
    expect(delays).toHaveLength(2);
  });

  it('skips what it has when the server ignores Range and sends the whole file', async () => {
    const { fake, client } = setup();
    const bytes = randomBytes(20_000);
    const artifact = fake.addArtifact(productId, bytes);
    let cut = false;
    fake.interceptors.push((request) => {
      if (!request.url.endsWith('/download')) return undefined;
      if (!cut) {
        cut = true;
        return new Response(truncatedBody(bytes, 7_000), { status: 200 });
      }
      return new Response(bytes.slice(), { status: 200 }); // Range ignored
    });
    const to = join(dir, 'model.bin');
    await client.downloadArtifact(productId, artifact.id, { to });
    expect(new Uint8Array(await readFile(to))).toEqual(bytes);
  });

  it('continues from a .part file an earlier call left when resume is set', async () => {
    const { fake, client } = setup();
    const bytes = randomBytes(30_000);
    const artifact = fake.addArtifact(productId, bytes);
    const to = join(dir, 'model.bin');
    await writeFile(`${to}.part`, bytes.subarray(0, 12_345));
    await client.downloadArtifact(productId, artifact.id, { to, resume: true });
    expect(new Uint8Array(await readFile(to))).toEqual(bytes);
    expect(fake.requestsTo('GET', /\/download$/).map((r) => r.headers.get('Range'))).toEqual(['bytes=12345-']);
    expect(await readdir(dir)).toEqual(['model.bin']);
  });

  it('follows a redirect to another origin without the API key or the configured headers', async () => {
    const { fake, client } = setup();
    const bytes = randomBytes(4000);
    const artifact = fake.addArtifact(productId, bytes);
    fake.downloadMode = 'redirect-cross-origin';
    const to = join(dir, 'model.bin');
    await client.downloadArtifact(productId, artifact.id, { to });
    expect(new Uint8Array(await readFile(to))).toEqual(bytes);

    const apiRequest = fake.requestsTo('GET', /\/download$/)[0]!;
    expect(apiRequest.headers.get('Authorization')).toBe(`Bearer ${API_KEY}`);
    const storageRequests = fake.requests.filter((r) => r.url.origin === STORAGE_ORIGIN);
    expect(storageRequests).toHaveLength(1);
    expect(storageRequests[0]!.url.searchParams.get('X-Amz-Signature')).toBe('abc');
    expect(storageRequests[0]!.headers.get('Authorization')).toBeNull();
    expect(storageRequests[0]!.headers.get('X-Tenant-Secret')).toBeNull();
  });

  it('asks for the redirect manually, so the runtime does not follow it with the key', async () => {
    const fake = new FakeModelRepository();
    const modes: string[] = [];
    const client = createModelRepositoryClient({
      baseUrl: API_ORIGIN,
      apiKey: API_KEY,
      fetch: (request) => {
        if (request.url.endsWith('/download')) modes.push(request.redirect);
        return fake.fetch(request);
      },
    });
    const artifact = fake.addArtifact(productId, randomBytes(10));
    fake.downloadMode = 'redirect-cross-origin';
    await client.downloadArtifact(productId, artifact.id, { to: join(dir, 'x') });
    expect(modes).toEqual(['manual']);
  });

  it('sends the API key when the redirect stays on the API origin', async () => {
    const { fake, client } = setup();
    const bytes = randomBytes(4000);
    const artifact = fake.addArtifact(productId, bytes);
    fake.downloadMode = 'redirect-same-origin';
    await client.downloadArtifact(productId, artifact.id, { to: join(dir, 'model.bin') });
    const storageRequest = fake.requests.find((r) => r.url.pathname.startsWith('/storage/'))!;
    expect(storageRequest.url.origin).toBe(API_ORIGIN);
    expect(storageRequest.headers.get('Authorization')).toBe(`Bearer ${API_KEY}`);
    expect(storageRequest.headers.get('X-Tenant-Secret')).toBe('shh');
  });

  it('continues an interrupted redirected transfer with Range at the storage URL', async () => {
    const { fake, client } = setup();
    const bytes = randomBytes(9000);
    const artifact = fake.addArtifact(productId, bytes);
    fake.downloadMode = 'redirect-cross-origin';
    let cut = false;
    fake.interceptors.push((request) => {
      if (new URL(request.url).origin !== STORAGE_ORIGIN || cut) return undefined;
      cut = true;
      return new Response(truncatedBody(bytes, 4000), { status: 200 });
    });
    await client.downloadArtifact(productId, artifact.id, { to: join(dir, 'm') });
    expect(new Uint8Array(await readFile(join(dir, 'm')))).toEqual(bytes);
    const storage = fake.requests.filter((r) => r.url.origin === STORAGE_ORIGIN);
    expect(storage.map((r) => r.headers.get('Range'))).toEqual([null, 'bytes=4000-']);
    expect(storage.every((r) => r.headers.get('Authorization') === null)).toBe(true);
  });

  it('throws the server error for an unknown artifact and leaves no file', async () => {
    const { client } = setup();
    const error = await client
      .downloadArtifact(productId, '00000000-0000-4000-8000-000000000000', { to: join(dir, 'x') })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryError);
    expect((error as ModelRepositoryError).status).toBe(404);
    expect(await readdir(dir)).toEqual([]);
  });

  it('stops on abort and removes the partial file', async () => {
    const { fake, client } = setup();
    const bytes = randomBytes(10_000);
    const artifact = fake.addArtifact(productId, bytes);
    const controller = new AbortController();
    fake.interceptors.push((request) => {
      if (!request.url.endsWith('/download')) return undefined;
      // A body that delivers a little, then stalls until aborted.
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(bytes.slice(0, 100));
            request.signal.addEventListener('abort', () => c.error(request.signal.reason));
          },
        }),
        { status: 200 },
      );
    });
    const promise = client.downloadArtifact(productId, artifact.id, {
      to: join(dir, 'x'),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.downloadedBytes === 100) setTimeout(() => controller.abort(), 5);
      },
    });
    const error = await promise.catch((e: unknown) => e);
    expect(error).toBe(controller.signal.reason);
    expect(await readdir(dir)).toEqual([]);
  });
});
