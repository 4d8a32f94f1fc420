import { describe, expect, it } from 'vitest';
import {
  createModelRepositoryClient,
  ModelRepositoryError,
  ModelRepositoryNetworkError,
  parseRetryAfter,
  retryDelay,
  defaultRetryOptions,
} from '../../src/index.ts';
import { API_KEY, API_ORIGIN, connectionReset, FakeModelRepository, problem, randomBytes, recordingSleep, sha256Hex } from '../support/fake-server.ts';

const productId = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';

function setup(retry: { retries?: number; baseDelayMs?: number; random?: () => number } = {}) {
  const fake = new FakeModelRepository({ chunkSize: 4 });
  const { sleep, delays } = recordingSleep();
  const client = createModelRepositoryClient({ baseUrl: API_ORIGIN, apiKey: API_KEY, fetch: fake.fetch, retry: { sleep, ...retry } });
  return { fake, client, delays };
}

/** Fails the first `times` requests matching `match` with `fail()`. */
function failFirst(fake: FakeModelRepository, match: (r: Request) => boolean, times: number, fail: () => Response) {
  let failed = 0;
  fake.interceptors.push((request) => {
    if (match(request) && failed < times) {
      failed++;
      const response = fail();
      return response;
    }
    return undefined;
  });
}

const isChunk1 = (r: Request) => r.method === 'PUT' && r.url.endsWith('/chunks/1');

describe('retries', () => {
  it('retries a chunk answered 503 and waits the Retry-After it names', async () => {
    const { fake, client, delays } = setup();
    failFirst(fake, isChunk1, 2, () => problem(503, 'unavailable', 'Try later', { 'Retry-After': '3' }));
    const bytes = randomBytes(10);
    const artifact = await client.uploadArtifact(productId, bytes, { file_name: 'x.bin' });
    expect(artifact.sha256).toBe(sha256Hex(bytes));
    expect(fake.requestsTo('PUT', /\/chunks\/1$/)).toHaveLength(3);
    expect(delays).toEqual([3000, 3000]);
  });

  it('retries 429 and honours an HTTP-date Retry-After', async () => {
    const { fake, client, delays } = setup();
    const at = new Date(Date.now() + 5_000).toUTCString();
    failFirst(fake, isChunk1, 1, () => problem(429, 'rate_limited', 'Slow down', { 'Retry-After': at }));
    await client.uploadArtifact(productId, randomBytes(10), { file_name: 'x.bin' });
    expect(fake.requestsTo('PUT', /\/chunks\/1$/)).toHaveLength(2);
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThan(3_000);
    expect(delays[0]).toBeLessThanOrEqual(5_000);
  });

  it('without Retry-After backs off exponentially with full jitter', async () => {
    const { fake, client, delays } = setup({ baseDelayMs: 100, random: () => 0.5 });
    failFirst(fake, isChunk1, 3, () => problem(502, 'bad_gateway', 'Upstream hiccup'));
    await client.uploadArtifact(productId, randomBytes(10), { file_name: 'x.bin' });
    // random() * min(max, base * 2^n) for n = 0, 1, 2
    expect(delays).toEqual([50, 100, 200]);
  });

  it('retries a reset connection (fetch rejecting with a TypeError)', async () => {
    const { fake, client, delays } = setup();
    let resets = 0;
    fake.interceptors.push((request) => {
      if (isChunk1(request) && resets < 2) {
        resets++;
        throw connectionReset();
      }
      return undefined;
    });
    const bytes = randomBytes(10);
    const artifact = await client.uploadArtifact(productId, bytes, { file_name: 'x.bin' });
    expect(artifact.sha256).toBe(sha256Hex(bytes));
    expect(resets).toBe(2);
    expect(delays).toHaveLength(2);
    for (const [n, delay] of delays.entries()) expect(delay).toBeLessThan(defaultRetryOptions.baseDelayMs * 2 ** n);
  });

  it('gives up after `retries` and throws a ModelRepositoryNetworkError naming the cause', async () => {
    const { fake, client, delays } = setup({ retries: 2 });
    fake.interceptors.push((request) => {
      if (isChunk1(request)) throw connectionReset();
      return undefined;
    });
    const error = await client.uploadArtifact(productId, randomBytes(10), { file_name: 'x.bin' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryNetworkError);
    expect(error).toBeInstanceOf(ModelRepositoryError);
    const e = error as ModelRepositoryNetworkError;
    expect(e.status).toBe(0);
    expect(e.code).toBe('network_error');
    expect(e.message).toMatch(/ECONNRESET/);
    expect(fake.requestsTo('PUT', /\/chunks\/1$/)).toHaveLength(3);
    expect(delays).toHaveLength(2);
    expect(fake.requestsTo('POST', /\/complete$/)).toHaveLength(0);
  });

  it('does not retry a 4xx: a chunk the server rejects fails the upload at once', async () => {
    const { fake, client, delays } = setup();
    failFirst(fake, isChunk1, 1, () => problem(422, 'chunk_digest_mismatch', 'Content-Digest does not match'));
    const error = await client.uploadArtifact(productId, randomBytes(10), { file_name: 'x.bin' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryError);
    expect((error as ModelRepositoryError).status).toBe(422);
    expect((error as ModelRepositoryError).code).toBe('chunk_digest_mismatch');
    expect(delays).toEqual([]);
    expect(fake.requestsTo('PUT', /\/chunks\/1$/)).toHaveLength(1);
  });

  it('does not retry 501 Not Implemented', async () => {
    const { fake, client, delays } = setup();
    failFirst(fake, (r) => r.url.endsWith('/uploads'), 1, () => problem(501, 'not_implemented', 'Not here'));
    await expect(client.uploadArtifact(productId, randomBytes(5), { file_name: 'x.bin' })).rejects.toMatchObject({ status: 501 });
    expect(delays).toEqual([]);
  });

  it('retries the completion and a list page too', async () => {
    const { fake, client, delays } = setup();
    failFirst(fake, (r) => r.url.endsWith('/complete'), 1, () => problem(500, 'internal_error', 'Oops'));
    failFirst(fake, (r) => r.url.includes('/models'), 1, () => problem(503, 'unavailable', 'Later', { 'Retry-After': '1' }));
    await client.uploadArtifact(productId, randomBytes(5), { file_name: 'x.bin' });
    const pages = await client.listModels({ space: 'default' }).toArray();
    expect(pages).toEqual([]);
    expect(delays).toHaveLength(2);
    expect(delays[1]).toBe(1000);
  });
});

describe('retry policy', () => {
  const error = (retryAfterMs: number | null) => new ModelRepositoryError({ status: 503, code: 'x', detail: 'x', retryAfterMs });
  it('caps the backoff at maxDelayMs and Retry-After at maxRetryAfterMs', () => {
    const options = { ...defaultRetryOptions, random: () => 0.999999, baseDelayMs: 1000, maxDelayMs: 4000, maxRetryAfterMs: 10_000 };
    expect(retryDelay(0, error(null), options)).toBeLessThan(1000);
    expect(retryDelay(10, error(null), options)).toBeLessThan(4000);
    expect(retryDelay(10, error(null), options)).toBeGreaterThan(3990);
    expect(retryDelay(0, error(60_000), options)).toBe(10_000);
  });
  it('parses Retry-After seconds and dates', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});
