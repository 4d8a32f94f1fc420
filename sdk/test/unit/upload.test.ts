import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { chunkRanges, createModelRepositoryClient, INSTANT_UPLOAD_MIN_BYTES, type UploadProgress } from '../../src/index.ts';
import { API_KEY, API_ORIGIN, FakeModelRepository, randomBytes, recordingSleep, sha256Hex } from '../support/fake-server.ts';

const productId = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';

function setup(chunkSize = 4) {
  const fake = new FakeModelRepository({ chunkSize });
  const { sleep, delays } = recordingSleep();
  const client = createModelRepositoryClient({ baseUrl: API_ORIGIN, apiKey: API_KEY, fetch: fake.fetch, retry: { sleep } });
  return { fake, client, delays };
}

const chunkPuts = (fake: FakeModelRepository) => fake.requestsTo('PUT', /\/chunks\/\d+$/);
const chunkIndexOf = (path: string) => Number(path.split('/').pop());

describe('chunkRanges', () => {
  it('cuts nothing from an empty file', () => {
    expect(chunkRanges(0, 8)).toEqual([]);
  });
  it('cuts an exact multiple into full chunks', () => {
    expect(chunkRanges(24, 8)).toEqual([
      { index: 0, start: 0, end: 8 },
      { index: 1, start: 8, end: 16 },
      { index: 2, start: 16, end: 24 },
    ]);
  });
  it('puts the remainder in a short last chunk', () => {
    expect(chunkRanges(19, 8)).toEqual([
      { index: 0, start: 0, end: 8 },
      { index: 1, start: 8, end: 16 },
      { index: 2, start: 16, end: 19 },
    ]);
    expect(chunkRanges(1, 8)).toEqual([{ index: 0, start: 0, end: 1 }]);
  });
  it('rejects nonsense sizes', () => {
    expect(() => chunkRanges(-1, 8)).toThrow(RangeError);
    expect(() => chunkRanges(10, 0)).toThrow(RangeError);
  });
});

describe('uploadArtifact', () => {
  it('completes a 0-byte file at once, with the SHA-256 of nothing', async () => {
    const { fake, client } = setup();
    const artifact = await client.uploadArtifact(productId, new Uint8Array(0), { file_name: 'empty.bin' });
    expect(chunkPuts(fake)).toHaveLength(0);
    expect(artifact.size_bytes).toBe(0);
    expect(artifact.sha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const init = fake.requestsTo('POST', /\/uploads$/);
    expect(init).toHaveLength(1);
  });

  it('sends an exact multiple as full chunks, each with its Content-Digest, and completes with the file digest', async () => {
    const { fake, client } = setup(4);
    const bytes = randomBytes(12);
    const artifact = await client.uploadArtifact(productId, bytes, { file_name: 'm.onnx', artifact_kind: 'weights' });
    const puts = chunkPuts(fake);
    expect(puts.map((r) => chunkIndexOf(r.url.pathname)).sort()).toEqual([0, 1, 2]);
    expect(puts.every((r) => r.bodyLength === 4)).toBe(true);
    for (const put of puts) {
      const i = chunkIndexOf(put.url.pathname);
      const expected = createHash('sha256').update(bytes.subarray(i * 4, i * 4 + 4)).digest('base64');
      expect(put.headers.get('Content-Digest')).toBe(`sha-256=:${expected}:`);
      expect(put.headers.get('Content-Type')).toBe('application/octet-stream');
    }
    expect(artifact.sha256).toBe(sha256Hex(bytes));
    expect(artifact.size_bytes).toBe(12);
  });

  it('reads each chunk answer to its end without parsing it (it lists every chunk received so far)', async () => {
    const fake = new FakeModelRepository({ chunkSize: 4 });
    const drained: boolean[] = [];
    const client = createModelRepositoryClient({
      baseUrl: API_ORIGIN,
      apiKey: API_KEY,
      fetch: async (request: Request) => {
        const response = await fake.fetch(request);
        if (request.method !== 'PUT' || !/\/chunks\/\d+$/.test(request.url)) return response;
        // A 200 whose body is no JSON at all: parsing it would throw.
        let sent = false;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent) {
              drained.push(true);
              controller.close();
              return;
            }
            sent = true;
            controller.enqueue(new TextEncoder().encode('{"received_chunks": [0, 1, 2, '));
          },
        });
        return new Response(body, { status: 200, headers: { 'Content-Type': 'application/json' } });
      },
    });
    const bytes = randomBytes(10);
    const artifact = await client.uploadArtifact(productId, bytes, { file_name: 'm.bin' });
    expect(artifact.sha256).toBe(sha256Hex(bytes));
    expect(chunkPuts(fake)).toHaveLength(3);
    expect(drained).toEqual([true, true, true]);
  });

  it('sends the remainder as a short last chunk', async () => {
    const { fake, client } = setup(4);
    const bytes = randomBytes(10);
    const artifact = await client.uploadArtifact(productId, bytes, { file_name: 'm.bin' });
    const sizes = Object.fromEntries(chunkPuts(fake).map((r) => [chunkIndexOf(r.url.pathname), r.bodyLength]));
    expect(sizes).toEqual({ 0: 4, 1: 4, 2: 2 });
    expect(artifact.sha256).toBe(sha256Hex(bytes));
  });

  it('sends the initiation fields and the computed digest at completion', async () => {
    const { fake, client } = setup(4);
    const bytes = randomBytes(9);
    await client.uploadArtifact(productId, bytes, {
      file_name: 'tok.json',
      version_label: 'v2',
      is_current: true,
      metadata: { format: 'json' },
    });
    const [init] = fake.requestsTo('POST', /\/uploads$/);
    expect(init!.json).toEqual({
      file_name: 'tok.json',
      content_type: 'application/json',
      total_size_bytes: 9,
      sha256: sha256Hex(bytes), // bytes in memory are hashed first: the server may have them
      version_label: 'v2',
      is_current: true,
      metadata: { format: 'json' },
    });
    const [complete] = fake.requestsTo('POST', /\/complete$/);
    expect(complete!.json).toEqual({ sha256: sha256Hex(bytes), is_current: true });
    const session = [...fake.sessions.values()][0]!.session;
    expect(session.file_name).toBe('tok.json');
    expect(session.content_type).toBe('application/json');
    expect(session.total_size_bytes).toBe(9);
    const artifact = [...fake.artifacts.values()][0]!.record;
    expect(artifact.is_current).toBe(true);
    expect(artifact.sha256).toBe(sha256Hex(bytes));
  });

  it('instant upload: when the server has the bytes it sends no chunk, and completes with their digest', async () => {
    const { fake, client } = setup(4);
    const bytes = randomBytes(10);
    const stored = fake.addArtifact(productId, bytes, 'base.bin');
    const progress: number[] = [];
    const artifact = await client.uploadArtifact(productId, bytes, { file_name: 'copy.bin', onProgress: (p) => progress.push(p.uploadedBytes) });
    expect(fake.requestsTo('PUT', /\/chunks\//)).toHaveLength(0);
    expect(fake.requestsTo('POST', /\/uploads$/)[0]!.json).toMatchObject({ sha256: sha256Hex(bytes), total_size_bytes: 10 });
    expect(fake.requestsTo('POST', /\/complete$/)[0]!.json).toEqual({ sha256: sha256Hex(bytes) });
    expect(artifact).toMatchObject({ sha256: stored.sha256, size_bytes: 10, file_name: 'copy.bin' });
    expect(progress.at(-1)).toBe(10);
  });

  it('a SHA-256 known at initiation is what the completion carries: the chunks are not hashed into a second whole-file digest', async () => {
    const { fake, client } = setup(4);
    const bytes = randomBytes(10);
    const claimed = sha256Hex(randomBytes(10, 99)); // not these bytes: the server's check must catch it
    await expect(client.uploadArtifact(productId, bytes, { file_name: 'w.bin', sha256: claimed })).rejects.toMatchObject({
      status: 422,
      code: 'checksum_mismatch',
    });
    expect(fake.requestsTo('PUT', /\/chunks\//)).toHaveLength(3);
    expect(fake.requestsTo('POST', /\/complete$/)[0]!.json).toEqual({ sha256: claimed });

    const artifact = await client.uploadArtifact(productId, bytes, { file_name: 'w.bin', sha256: sha256Hex(bytes) });
    expect(artifact.sha256).toBe(sha256Hex(bytes));
  });

  it('instant upload: a large file path is hashed first; instantUpload: false sends it regardless', async () => {
    const { fake, client } = setup(4 * 1024 * 1024);
    const bytes = randomBytes(INSTANT_UPLOAD_MIN_BYTES + 3);
    fake.addArtifact(productId, bytes, 'big.bin');
    const dir = await mkdtemp(join(tmpdir(), 'sdk-instant-'));
    try {
      const file = join(dir, 'big.bin');
      await writeFile(file, bytes);
      await client.uploadArtifact(productId, file);
      expect(fake.requestsTo('PUT', /\/chunks\//)).toHaveLength(0);
      const sent = await client.uploadArtifact(productId, file, { instantUpload: false });
      expect(fake.requestsTo('PUT', /\/chunks\//)).toHaveLength(3);
      expect(sent.sha256).toBe(sha256Hex(bytes));
      expect(fake.requestsTo('POST', /\/uploads$/)[1]!.json).not.toHaveProperty('sha256');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads a file path chunk by chunk and takes its name from the path', async () => {
    const { fake, client } = setup(1000);
    const dir = await mkdtemp(join(tmpdir(), 'sdk-upload-'));
    try {
      const bytes = randomBytes(4500, 7);
      const file = join(dir, 'weights.safetensors');
      await writeFile(file, bytes);
      const progress: UploadProgress[] = [];
      const artifact = await client.uploadArtifact(productId, file, { onProgress: (p) => progress.push(p) });
      expect(artifact.file_name).toBe('weights.safetensors');
      expect(artifact.sha256).toBe(sha256Hex(bytes));
      expect(chunkPuts(fake)).toHaveLength(5);
      expect(progress[0]).toEqual({ uploadedBytes: 0, totalBytes: 4500 });
      expect(progress.at(-1)).toEqual({ uploadedBytes: 4500, totalBytes: 4500 });
      const uploaded = progress.map((p) => p.uploadedBytes);
      expect(uploaded).toEqual([...uploaded].sort((a, b) => a - b));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('uploads a Blob/File and uses its name and type', async () => {
    const { client } = setup(3);
    const bytes = randomBytes(8, 3);
    const file = new File([bytes], 'card.md', { type: 'text/markdown' });
    const artifact = await client.uploadArtifact(productId, file, { artifact_kind: 'model_card' });
    expect(artifact.file_name).toBe('card.md');
    expect(artifact.sha256).toBe(sha256Hex(bytes));
  });

  it('requires a file name for nameless sources', async () => {
    const { client } = setup();
    await expect(client.uploadArtifact(productId, new Uint8Array(3))).rejects.toThrow(/file_name/);
  });

  it('keeps at most `concurrency` chunks in flight, and uses that many', async () => {
    const { fake, client } = setup(2);
    fake.chunkDelayMs = 15;
    await client.uploadArtifact(productId, randomBytes(40), { file_name: 'x.bin', concurrency: 3 });
    expect(chunkPuts(fake)).toHaveLength(20);
    expect(fake.maxInFlightChunks).toBe(3);
  });

  it('never holds more than `concurrency` chunks: a chunk is read only when a slot is free', async () => {
    const fake = new FakeModelRepository({ chunkSize: 5 });
    fake.chunkDelayMs = 5;
    let reads = 0;
    let finished = 0;
    let maxHeld = 0;
    const client = createModelRepositoryClient({
      baseUrl: API_ORIGIN,
      apiKey: API_KEY,
      fetch: async (request) => {
        const response = await fake.fetch(request);
        if (request.method === 'PUT') finished++;
        return response;
      },
    });
    const blob = new Blob([randomBytes(60)]);
    const slice = blob.slice.bind(blob);
    blob.slice = ((start?: number, end?: number) => {
      reads++;
      // Chunks read whose request has not finished yet are the ones in memory.
      maxHeld = Math.max(maxHeld, reads - finished);
      return slice(start, end);
    }) as Blob['slice'];
    await client.uploadArtifact(productId, blob, { file_name: 'x.bin', concurrency: 2 });
    expect(reads).toBe(12);
    expect(maxHeld).toBe(2);
  });
});
