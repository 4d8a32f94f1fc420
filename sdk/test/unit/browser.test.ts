// The browser code paths, in Node: `isNode` is mocked to false, so hashing goes through hash-wasm
// and WebCrypto, chunk bodies are plain bytes, and Node-only sources are refused.
import { describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { createModelRepositoryClient } from '../../src/index.ts';
import { createSha256, createWasmSha256, sha256Of, toHex } from '../../src/hash.ts';
import { API_KEY, API_ORIGIN, FakeModelRepository, randomBytes, sha256Hex } from '../support/fake-server.ts';

vi.mock('../../src/runtime.ts', () => ({ isNode: false }));

const productId = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';

describe('in a browser', () => {
  it('hashes incrementally with hash-wasm, matching node:crypto', async () => {
    const bytes = randomBytes(3_000_001, 9);
    const hash = await createSha256();
    for (let i = 0; i < bytes.byteLength; i += 65_536) hash.update(bytes.subarray(i, i + 65_536));
    expect(toHex(hash.digest())).toBe(sha256Hex(bytes));
    const wasm = await createWasmSha256();
    wasm.update(new Uint8Array(0));
    expect(toHex(wasm.digest())).toBe(createHash('sha256').digest('hex'));
    expect(toHex(await sha256Of(bytes))).toBe(sha256Hex(bytes));
  });

  it('uploads a File with plain byte bodies and no Content-Length or User-Agent of its own', async () => {
    const fake = new FakeModelRepository({ chunkSize: 1000 });
    const seen: { body: string; contentLength: string | null; userAgent: string | null }[] = [];
    const client = createModelRepositoryClient({
      baseUrl: API_ORIGIN,
      apiKey: API_KEY,
      fetch: (request) => {
        if (request.method === 'PUT') {
          seen.push({ body: request.body ? 'present' : 'none', contentLength: request.headers.get('Content-Length'), userAgent: request.headers.get('User-Agent') });
        }
        return fake.fetch(request);
      },
    });
    const bytes = randomBytes(2500, 4);
    const artifact = await client.uploadArtifact(productId, new File([bytes], 'w.bin'), { concurrency: 2 });
    expect(artifact.sha256).toBe(sha256Hex(bytes));
    expect(seen).toHaveLength(3);
    expect(seen.every((s) => s.contentLength === null && s.userAgent === null)).toBe(true);
    const digests = fake.requestsTo('PUT', /chunks/).map((r) => r.headers.get('Content-Digest'));
    expect(digests.every((d) => /^sha-256=:[A-Za-z0-9+/]{43}=:$/.test(d ?? ''))).toBe(true);
  });

  it('refuses file paths', async () => {
    const fake = new FakeModelRepository();
    const client = createModelRepositoryClient({ baseUrl: API_ORIGIN, apiKey: API_KEY, fetch: fake.fetch });
    await expect(client.uploadArtifact(productId, '/etc/hosts')).rejects.toThrow(/Node only/);
    await expect(client.downloadArtifact(productId, fake.addArtifact(productId, new Uint8Array(1)).id, { to: '/tmp/x' })).rejects.toThrow(/Node only/);
  });
});
