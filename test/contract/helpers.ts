/** Small building blocks of the contract scenarios: bytes, digests, SDK calls the SDK has no helper for. */
import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import {
  ModelRepositoryError,
  type ArtifactUploadCreate,
  type ArtifactUploadSession,
  type ModelArtifact,
  type ModelCreate,
  type ModelRepositoryClient,
} from '../../sdk/src/index.ts';
import type { Target } from './harness.ts';

export const API = '/api/v1.0';

/** The success body of a raw openapi-fetch call (errors were thrown by the SDK's middleware). */
export function must<T>(result: { data?: T; response: Response }): T {
  if (result.data === undefined) throw new Error(`HTTP ${result.response.status} without a body`);
  return result.data;
}

/** Awaits a call that must fail with `status` (and `code`), and returns the SDK error. */
export async function expectError(call: Promise<unknown>, status: number, code?: string): Promise<ModelRepositoryError> {
  let caught: unknown;
  try {
    await call;
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof ModelRepositoryError)) {
    throw new Error(`expected HTTP ${status}${code ? ` ${code}` : ''}, got ${caught === undefined ? 'success' : String(caught)}`);
  }
  expect(caught.status, caught.message).toBe(status);
  if (code !== undefined) expect(caught.code, caught.message).toBe(code);
  // (A HEAD answer has no body; a missing or malformed problem body is a spec violation the harness reports.)
  if (caught.problem) expect(caught.problem.status, 'problem document status').toBe(status);
  return caught;
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function sampleBytes(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** RFC 9530 `Content-Digest` of bytes. */
export function contentDigest(bytes: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`;
}

/** A `WritableStream` that keeps what it gets. */
export function memorySink(): { stream: WritableStream<Uint8Array>; bytes(): Uint8Array } {
  const parts: Uint8Array[] = [];
  return {
    stream: new WritableStream<Uint8Array>({
      write(chunk) {
        parts.push(chunk.slice());
      },
    }),
    bytes: () => new Uint8Array(Buffer.concat(parts)),
  };
}

export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(sha256Hex(actual)).toBe(sha256Hex(expected));
}

/** Size of a test file: three chunks on the filesystem, two on S3 (5 MiB parts). */
export function uploadSize(t: Target): number {
  return t.storage === 's3' ? t.chunkSize + 1234 : 2 * t.chunkSize + 1234;
}

let modelCounter = 0;

/** A model create body with a name (and so a slug) unique to this run. */
export function newModel(t: Target, fields: Partial<ModelCreate> = {}): ModelCreate {
  modelCounter += 1;
  return { name: `Contract ${t.tag} model ${modelCounter}`, ...fields };
}

export function unknownId(): string {
  return randomUUID();
}

/** Initiates an upload session (the SDK's helper does this inside `uploadArtifact`). */
export async function initiate(
  c: ModelRepositoryClient,
  productId: string,
  fields: Partial<ArtifactUploadCreate> & Pick<ArtifactUploadCreate, 'total_size_bytes'>,
): Promise<ArtifactUploadSession> {
  const body = { file_name: 'model.onnx', content_type: 'application/octet-stream', ...fields } as ArtifactUploadCreate;
  return must(await c.api.POST('/catalog/products/{product_id}/model-artifacts/uploads', { params: { path: { product_id: productId } }, body }));
}

/** PUTs one chunk's raw bytes. */
export async function putChunk(
  c: ModelRepositoryClient,
  productId: string,
  uploadId: string,
  index: number,
  bytes: Uint8Array,
  options: { digest?: string; contentType?: string } = {},
): Promise<ArtifactUploadSession> {
  return must(
    await c.api.PUT('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}/chunks/{chunk_index}', {
      params: {
        path: { product_id: productId, upload_id: uploadId, chunk_index: index },
        header: options.digest === undefined ? {} : { 'Content-Digest': options.digest },
      },
      body: bytes as unknown as string,
      bodySerializer: (body: unknown) => body as BodyInit,
      headers: { 'Content-Type': options.contentType ?? 'application/octet-stream' },
    }),
  );
}

/** Completes a session (body optional); returns the artifact and the HTTP status (201 new, 200 again). */
export async function complete(
  c: ModelRepositoryClient,
  productId: string,
  uploadId: string,
  body?: { sha256?: string; is_current?: boolean },
): Promise<{ artifact: ModelArtifact; status: number }> {
  const result = await c.api.POST('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}/complete', {
    params: { path: { product_id: productId, upload_id: uploadId } },
    ...(body === undefined ? {} : { body }),
  });
  return { artifact: must(result), status: result.response.status };
}

/** The single-request upload: a multipart form with a `file` part and optional fields. */
export async function uploadMultipart(
  c: ModelRepositoryClient,
  productId: string,
  bytes: Uint8Array<ArrayBuffer> | null,
  fields: Record<string, string> = {},
  file: { name?: string; type?: string } = {},
): Promise<ModelArtifact> {
  const form = new FormData();
  if (bytes) form.append('file', new Blob([bytes], { type: file.type ?? 'application/octet-stream' }), file.name ?? 'model.bin');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return must(
    await c.api.POST('/catalog/products/{product_id}/model-artifacts', {
      params: { path: { product_id: productId } },
      body: form as never,
      bodySerializer: (body: unknown) => body as FormData,
    }),
  );
}

/** GET (or HEAD) of a download with optional Range / If-None-Match; redirects are not followed. */
export async function download(
  c: ModelRepositoryClient,
  productId: string,
  artifactId: string,
  options: { method?: 'GET' | 'HEAD'; range?: string; ifNoneMatch?: string } = {},
): Promise<{ status: number; headers: Headers; bytes: Uint8Array }> {
  const header: Record<string, string> = {};
  if (options.range !== undefined) header.Range = options.range;
  if (options.ifNoneMatch !== undefined) header['If-None-Match'] = options.ifNoneMatch;
  const init = { params: { path: { product_id: productId, artifact_id: artifactId }, header }, parseAs: 'arrayBuffer' as const, redirect: 'manual' as const };
  const result =
    options.method === 'HEAD'
      ? await c.api.HEAD('/catalog/products/{product_id}/model-artifacts/{artifact_id}/download', init)
      : await c.api.GET('/catalog/products/{product_id}/model-artifacts/{artifact_id}/download', init);
  const data = (result as { data?: unknown }).data;
  return { status: result.response.status, headers: result.response.headers, bytes: data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(0) };
}
