import { describe, expect, it } from 'vitest';
import {
  createModelRepositoryClient,
  ModelRepositoryError,
  ModelRepositoryIntegrityError,
  type ArtifactUploadSession,
  type UploadProgress,
} from '../../src/index.ts';
import { API_KEY, API_ORIGIN, FakeModelRepository, randomBytes, recordingSleep, sha256Hex } from '../support/fake-server.ts';

const productId = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';

function setup(chunkSize = 4) {
  const fake = new FakeModelRepository({ chunkSize });
  const { sleep } = recordingSleep();
  const client = createModelRepositoryClient({ baseUrl: API_ORIGIN, apiKey: API_KEY, fetch: fake.fetch, retry: { sleep } });
  return { fake, client };
}

const sentChunks = (fake: FakeModelRepository) =>
  fake.requestsTo('PUT', /\/chunks\/\d+$/).map((r) => Number(r.url.pathname.split('/').pop())).sort((a, b) => a - b);

describe('resume', () => {
  it('reads the session back, sends only the missing chunks, and completes with the whole file digest', async () => {
    const { fake, client } = setup(4);
    const bytes = randomBytes(22); // chunks 0..5, the last 2 bytes
    const session = fake.createSession(productId, bytes.byteLength);
    fake.putChunk(session.id, 0, bytes.subarray(0, 4));
    fake.putChunk(session.id, 2, bytes.subarray(8, 12));
    fake.putChunk(session.id, 5, bytes.subarray(20, 22));
    const progress: UploadProgress[] = [];

    const artifact = await client.uploadArtifact(productId, bytes, { resume: session.id, onProgress: (p) => progress.push(p) });

    expect(fake.requestsTo('GET', new RegExp(`/uploads/${session.id}$`))).toHaveLength(1);
    expect(fake.requestsTo('POST', /\/uploads$/)).toHaveLength(0);
    expect(sentChunks(fake)).toEqual([1, 3, 4]);
    expect(artifact.sha256).toBe(sha256Hex(bytes));
    expect(fake.requestsTo('POST', /\/complete$/)[0]!.json).toEqual({ sha256: sha256Hex(bytes) });
    expect(progress[0]).toEqual({ uploadedBytes: 10, totalBytes: 22 });
    expect(progress.at(-1)).toEqual({ uploadedBytes: 22, totalBytes: 22 });
  });

  it('of a session that already completed just completes again (safe retry) and returns the artifact', async () => {
    const { fake, client } = setup(4);
    const bytes = randomBytes(8);
    const first = await client.uploadArtifact(productId, bytes, { file_name: 'a.bin' });
    const uploadId = [...fake.sessions.keys()][0]!;
    fake.requests.length = 0;
    const again = await client.uploadArtifact(productId, bytes, { resume: uploadId });
    expect(again.id).toBe(first.id);
    expect(sentChunks(fake)).toEqual([]);
  });

  it('refuses a source of another size than the session', async () => {
    const { fake, client } = setup(4);
    const session = fake.createSession(productId, 20);
    const error = await client.uploadArtifact(productId, randomBytes(19), { resume: session.id }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryIntegrityError);
    expect((error as ModelRepositoryIntegrityError).code).toBe('resume_mismatch');
    expect(sentChunks(fake)).toEqual([]);
  });

  it('refuses a failed session', async () => {
    const { fake, client } = setup(4);
    const session = fake.createSession(productId, 8);
    fake.sessions.get(session.id)!.session.status = 'failed';
    await expect(client.uploadArtifact(productId, randomBytes(8), { resume: session.id })).rejects.toMatchObject({
      code: 'upload_not_resumable',
    });
  });

  it('reports an unknown session as the server does (404)', async () => {
    const { client } = setup(4);
    const error = await client
      .uploadArtifact(productId, randomBytes(8), { resume: '00000000-0000-4000-8000-000000000000' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryError);
    expect((error as ModelRepositoryError).status).toBe(404);
  });
});

describe('abort', () => {
  it('stops on the signal: rejects with its reason, sends nothing more, does not complete; resume then finishes', async () => {
    const { fake, client } = setup(4);
    fake.chunkDelayMs = 5;
    const bytes = randomBytes(40); // 10 chunks
    const controller = new AbortController();
    let session: ArtifactUploadSession | undefined;
    let done = 0;
    const error = await client
      .uploadArtifact(productId, bytes, {
        file_name: 'big.bin',
        concurrency: 2,
        signal: controller.signal,
        onSession: (s) => (session = s),
        onProgress: ({ uploadedBytes }) => {
          done = uploadedBytes;
          if (uploadedBytes >= 12) controller.abort();
        },
      })
      .catch((e: unknown) => e);

    expect(error).toBe(controller.signal.reason);
    expect((error as Error).name).toBe('AbortError');
    expect(done).toBeGreaterThanOrEqual(12);
    expect(fake.requestsTo('POST', /\/complete$/)).toHaveLength(0);
    const sentBeforeAbort = sentChunks(fake).length;
    expect(sentBeforeAbort).toBeLessThan(10);
    await new Promise((r) => setTimeout(r, 30));
    expect(sentChunks(fake).length).toBe(sentBeforeAbort); // nothing started after the abort

    const received = fake.sessions.get(session!.id)!.session.received_chunks;
    expect(received.length).toBeGreaterThanOrEqual(3);
    fake.requests.length = 0;
    const artifact = await client.uploadArtifact(productId, bytes, { resume: session!.id });
    expect(artifact.sha256).toBe(sha256Hex(bytes));
    const resent = sentChunks(fake);
    expect(resent.filter((i) => received.includes(i))).toEqual([]);
    expect(new Set([...resent, ...received]).size).toBe(10);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const { fake, client } = setup();
    const controller = new AbortController();
    controller.abort(new Error('user cancelled'));
    await expect(client.uploadArtifact(productId, randomBytes(8), { file_name: 'x', signal: controller.signal })).rejects.toThrow(
      'user cancelled',
    );
    expect(fake.requests).toHaveLength(0);
  });

  it('aborts a retry wait', async () => {
    const fake = new FakeModelRepository({ chunkSize: 4 });
    const client = createModelRepositoryClient({ baseUrl: API_ORIGIN, apiKey: API_KEY, fetch: fake.fetch });
    fake.interceptors.push(() => new Response('{}', { status: 503, headers: { 'Retry-After': '3600' } }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const started = Date.now();
    const error = await client
      .uploadArtifact(productId, randomBytes(8), { file_name: 'x', signal: controller.signal })
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('AbortError');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
