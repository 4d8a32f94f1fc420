import { isAbortError, ModelRepositoryError, ModelRepositoryNetworkError } from './errors.js';

/** How the helpers retry a request that failed for a reason that may pass. */
export interface RetryOptions {
  /** Retries after the first attempt (default 5). 0 disables retrying. */
  retries?: number;
  /** Backoff base: attempt n waits a random time in [0, min(maxDelayMs, baseDelayMs * 2^n)) ("full jitter"). Default 500. */
  baseDelayMs?: number;
  /** Upper bound of one backoff delay (default 30 000). */
  maxDelayMs?: number;
  /** Upper bound for a server's `Retry-After` (default 120 000): a longer one is waited for this long. */
  maxRetryAfterMs?: number;
  /** Replaceable for tests. Must reject with `signal.reason` when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Replaceable for tests; returns a number in [0, 1). */
  random?: () => number;
  /** Called before each wait. */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
  error: ModelRepositoryError;
}

export type ResolvedRetryOptions = Required<Omit<RetryOptions, 'onRetry'>> & Pick<RetryOptions, 'onRetry'>;

export const defaultRetryOptions: ResolvedRetryOptions = {
  retries: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
  sleep: abortableSleep,
  random: Math.random,
};

export function resolveRetryOptions(...layers: (RetryOptions | undefined)[]): ResolvedRetryOptions {
  const resolved: ResolvedRetryOptions = { ...defaultRetryOptions };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return resolved;
}

/** Network failures, 408, 429 and 5xx may succeed when tried again (except 501/505, which say "never"). */
export function isRetryable(error: unknown): error is ModelRepositoryError {
  if (error instanceof ModelRepositoryNetworkError) return true;
  if (!(error instanceof ModelRepositoryError)) return false;
  if (error.status === 501 || error.status === 505) return false;
  return error.status === 408 || error.status === 429 || error.status >= 500;
}

/** The wait before retry number `attempt + 1`: the server's `Retry-After` when given, else full-jitter exponential backoff. */
export function retryDelay(attempt: number, error: ModelRepositoryError, options: ResolvedRetryOptions): number {
  if (error.retryAfterMs !== null) return Math.min(error.retryAfterMs, options.maxRetryAfterMs);
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
  return Math.floor(options.random() * ceiling);
}

/**
 * Runs `operation` until it succeeds, fails for good, or `signal` aborts. `operation` must throw
 * `ModelRepositoryError`s (as every call through the client does) for retrying to apply.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  options: ResolvedRetryOptions,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await operation(attempt);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (isAbortError(error) || !isRetryable(error) || attempt >= options.retries) throw error;
      const delayMs = retryDelay(attempt, error, options);
      options.onRetry?.({ attempt: attempt + 1, delayMs, error });
      await options.sleep(delayMs, signal);
    }
  }
}

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
