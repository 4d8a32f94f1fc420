import { dataOf, networkError, type ClientContext } from './context.js';
import { ModelRepositoryError, ModelRepositoryIntegrityError, ModelRepositoryNetworkError } from './errors.js';
import { createSha256, toHex, type Sha256 } from './hash.js';
import { isRetryable, resolveRetryOptions, retryDelay, withRetry, type RetryOptions } from './retry.js';
import { isNode } from './runtime.js';
import type { ModelArtifact } from './types.js';

export interface DownloadProgress {
  downloadedBytes: number;
  totalBytes: number;
}

export interface DownloadArtifactOptions {
  /**
   * Where the bytes go: a file path (Node), or a `WritableStream`. A path is written as
   * `<path>.part` and renamed to `<path>` only once size and SHA-256 are verified.
   */
  to: string | WritableStream<Uint8Array>;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /**
   * Path only: continue from a `<path>.part` an earlier interrupted call left (its bytes are hashed
   * first), and keep `<path>.part` when this call fails for a reason other than a verification
   * failure. Default false: a failed download leaves nothing behind.
   */
  resume?: boolean;
  retry?: RetryOptions;
}

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const maxRedirects = 5;

/**
 * Downloads artifact `artifactId` of product `productId`, verifying its size and SHA-256 against
 * the artifact record, and returns that record. Storage redirects are followed without the API key
 * (unless they stay on the API's origin); a transfer that breaks off continues with `Range`.
 */
export async function downloadArtifact(
  ctx: ClientContext,
  productId: string,
  artifactId: string,
  options: DownloadArtifactOptions,
): Promise<ModelArtifact> {
  const { to, signal, onProgress, resume = false } = options;
  const retry = resolveRetryOptions(ctx.retry, options.retry);
  signal?.throwIfAborted();

  const artifact = dataOf(
    await withRetry(
      () =>
        ctx.api.GET('/catalog/products/{product_id}/model-artifacts/{artifact_id}', {
          params: { path: { product_id: productId, artifact_id: artifactId } },
          signal,
        }),
      retry,
      signal,
    ),
  );
  const total = artifact.size_bytes;
  const hash = await createSha256();
  const sink = typeof to === 'string' ? await openFileSink(to, resume, total, hash) : openStreamSink(to);

  let written = sink.initialBytes;
  try {
    onProgress?.({ downloadedBytes: written, totalBytes: total });
    let failures = 0;
    for (let first = true; first || written < total; first = false) {
      signal?.throwIfAborted();
      const before = written;
      try {
        const response = await openDownload(ctx, productId, artifactId, written, signal);
        let skip = bytesToSkip(response, written);
        if (response.body) {
          const reader = response.body.getReader();
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              let chunk = value;
              if (skip > 0) {
                const n = Math.min(skip, chunk.byteLength);
                chunk = chunk.subarray(n);
                skip -= n;
                if (chunk.byteLength === 0) continue;
              }
              if (written + chunk.byteLength > total) {
                throw sizeMismatch(total, `more than ${total}`);
              }
              hash.update(chunk);
              await sink.write(chunk);
              written += chunk.byteLength;
              onProgress?.({ downloadedBytes: written, totalBytes: total });
            }
          } finally {
            await reader.cancel().catch(() => {});
          }
        }
        if (written < total) {
          throw new ModelRepositoryNetworkError(new Error(`connection closed after ${written} of ${total} bytes`), 'Download');
        }
      } catch (caught) {
        if (signal?.aborted) throw signal.reason;
        const error = networkError(caught, 'Download');
        if (error instanceof ModelRepositoryError && error.status === 416 && written > 0) {
          throw sizeMismatch(total, `fewer than ${total} (the server has no bytes after ${written})`);
        }
        if (!isRetryable(error)) throw error;
        if (written > before) failures = 0; // progress was made: the retry budget starts over
        if (failures >= retry.retries) throw error;
        const delayMs = retryDelay(failures, error, retry);
        failures++;
        retry.onRetry?.({ attempt: failures, delayMs, error });
        await retry.sleep(delayMs, signal);
      }
    }

    const sha256 = toHex(hash.digest());
    if (written !== total) throw sizeMismatch(total, String(written));
    if (sha256 !== artifact.sha256) {
      throw new ModelRepositoryIntegrityError(
        'download_checksum_mismatch',
        `The downloaded bytes have SHA-256 ${sha256}, but artifact ${artifact.id} has ${artifact.sha256}`,
        artifact.sha256,
        sha256,
      );
    }
    await sink.commit();
    return artifact;
  } catch (error) {
    await sink.discard(error, resume && !(error instanceof ModelRepositoryIntegrityError));
    throw error;
  }
}

function sizeMismatch(expected: number, actual: string): ModelRepositoryIntegrityError {
  return new ModelRepositoryIntegrityError(
    'download_size_mismatch',
    `The artifact record says ${expected} bytes, but the download delivered ${actual}`,
    String(expected),
    actual,
  );
}

/** GET the download, following storage redirects ourselves so the API key never leaves the API's origin. */
async function openDownload(
  ctx: ClientContext,
  productId: string,
  artifactId: string,
  offset: number,
  signal: AbortSignal | undefined,
): Promise<Response> {
  const range = offset > 0 ? `bytes=${offset}-` : undefined;
  const result = await ctx.api.GET('/catalog/products/{product_id}/model-artifacts/{artifact_id}/download', {
    params: {
      path: { product_id: productId, artifact_id: artifactId },
      header: range === undefined ? {} : { Range: range },
    },
    parseAs: 'stream',
    redirect: 'manual',
    signal,
  });
  let response = result.response;
  let url = new URL(
    `${ctx.baseUrl}/catalog/products/${encodeURIComponent(productId)}/model-artifacts/${encodeURIComponent(artifactId)}/download`,
  );
  const headers: Record<string, string> = range === undefined ? {} : { Range: range };
  for (let hops = 0; response.type === 'opaqueredirect' || redirectStatuses.has(response.status); hops++) {
    if (hops >= maxRedirects) {
      throw new ModelRepositoryError({ status: response.status, code: 'too_many_redirects', detail: `More than ${maxRedirects} redirects downloading ${url.href}` });
    }
    if (response.type === 'opaqueredirect') {
      // A browser hides the target of a manual redirect. Let it follow instead: the Fetch standard
      // removes the Authorization header when a redirect leaves the origin.
      return ctx.rawFetch(url, { headers, redirect: 'follow', signal });
    }
    const location = response.headers.get('Location');
    if (!location) {
      throw new ModelRepositoryError({
        status: response.status,
        code: 'redirect_without_location',
        detail: `HTTP ${response.status} without a Location header`,
        requestId: response.headers.get('X-Request-Id'),
      });
    }
    url = new URL(location, response.url || url);
    response = await ctx.rawFetch(url, { headers, redirect: 'manual', signal });
  }
  return response;
}

/** How many leading bytes of this response we already have. */
function bytesToSkip(response: Response, offset: number): number {
  if (response.status === 200) return offset; // the Range was ignored: the whole file follows
  if (response.status === 206) {
    const match = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(response.headers.get('Content-Range')?.trim() ?? '');
    const start = match ? Number(match[1]) : NaN;
    if (start <= offset) return offset - start;
    throw new ModelRepositoryError({
      status: 206,
      code: 'unexpected_content_range',
      detail: `Asked for bytes from ${offset}, got Content-Range ${response.headers.get('Content-Range') ?? '(none)'}`,
      requestId: response.headers.get('X-Request-Id'),
    });
  }
  throw new ModelRepositoryError({
    status: response.status,
    code: 'unexpected_response',
    detail: `Unexpected HTTP ${response.status} from the download`,
    requestId: response.headers.get('X-Request-Id'),
  });
}

interface DownloadSink {
  /** Bytes already in place (and hashed) before the transfer starts. */
  readonly initialBytes: number;
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  discard(reason: unknown, keepPartial: boolean): Promise<void>;
}

function openStreamSink(stream: WritableStream<Uint8Array>): DownloadSink {
  const writer = stream.getWriter();
  return {
    initialBytes: 0,
    write: async (chunk) => {
      await writer.ready;
      // Copy: the fetch body may reuse its buffers, and the stream may hold on to ours.
      await writer.write(chunk.slice());
    },
    commit: () => writer.close(),
    discard: async (reason) => {
      await writer.abort(reason).catch(() => {});
    },
  };
}

async function openFileSink(path: string, resume: boolean, total: number, hash: Sha256): Promise<DownloadSink> {
  if (!isNode) {
    throw new TypeError('downloadArtifact: a file path works in Node only; pass a WritableStream in browsers');
  }
  const fs = await import(/* webpackIgnore: true */ 'node:fs/promises');
  const partPath = `${path}.part`;
  let initialBytes = 0;
  if (resume) {
    const existing = await fs.stat(partPath).catch(() => null);
    if (existing?.isFile() && existing.size <= total) {
      initialBytes = await hashFile(fs, partPath, existing.size, hash);
    }
  }
  const handle = await fs.open(partPath, initialBytes > 0 ? 'r+' : 'w');
  let position = initialBytes;
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await handle.close();
    }
  };
  return {
    initialBytes,
    async write(chunk) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset, position);
        offset += bytesWritten;
        position += bytesWritten;
      }
    },
    async commit() {
      await handle.sync();
      await close();
      await fs.rename(partPath, path);
    },
    async discard(_reason, keepPartial) {
      await close().catch(() => {});
      if (!keepPartial) await fs.rm(partPath, { force: true });
    },
  };
}

async function hashFile(fs: typeof import('node:fs/promises'), path: string, size: number, hash: Sha256): Promise<number> {
  const handle = await fs.open(path, 'r');
  try {
    const buffer = new Uint8Array(Math.min(size, 8 * 1024 * 1024));
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.byteLength, size - done), done);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      done += bytesRead;
    }
    return done;
  } finally {
    await handle.close();
  }
}
