import type { FieldError, Problem } from './types.js';

export interface ModelRepositoryErrorInit {
  status: number;
  code: string;
  detail: string;
  title?: string;
  errors?: FieldError[];
  requestId?: string | null;
  problem?: Problem | null;
  retryAfterMs?: number | null;
  cause?: unknown;
}

/**
 * The one error type of the SDK. Every non-2xx answer becomes one (with the server's RFC 9457
 * problem document in `problem`), and so does every failure that has no HTTP status
 * (`status` is then 0 and `code` says what happened: see the subclasses).
 *
 * Cancellation is not an error of this kind: an aborted `signal` rejects with the signal's
 * `reason` (a `DOMException` named `AbortError` unless you gave another reason).
 */
export class ModelRepositoryError extends Error {
  override name = 'ModelRepositoryError';
  /** HTTP status, or 0 when no HTTP answer is behind the error. */
  readonly status: number;
  /** Stable snake_case code: the server's `code`, or one of the SDK's own (`network_error`, …). */
  readonly code: string;
  /** Human-readable explanation. */
  readonly detail: string;
  readonly title: string;
  /** Field-level validation errors (422). Empty when there are none. */
  readonly errors: FieldError[];
  /** The `X-Request-Id` of the failed request: quote it when reporting a problem. */
  readonly requestId: string | null;
  /** The problem document as the server sent it, when it sent one. */
  readonly problem: Problem | null;
  /** The server's `Retry-After`, in milliseconds, when it sent one. */
  readonly retryAfterMs: number | null;

  constructor(init: ModelRepositoryErrorInit) {
    super(formatMessage(init), init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail;
    this.title = init.title ?? init.problem?.title ?? '';
    this.errors = init.errors ?? init.problem?.errors ?? [];
    this.requestId = init.requestId ?? null;
    this.problem = init.problem ?? null;
    this.retryAfterMs = init.retryAfterMs ?? null;
  }

  /** Builds the error for a non-2xx response, reading (and so consuming) its body. */
  static async fromResponse(response: Response): Promise<ModelRepositoryError> {
    const requestId = response.headers.get('X-Request-Id');
    const retryAfterMs = parseRetryAfter(response.headers.get('Retry-After'));
    let text = '';
    try {
      text = await response.text();
    } catch {
      // The body could not be read (connection dropped): the status still says enough.
    }
    const problem = parseProblem(text);
    if (problem) {
      return new ModelRepositoryError({
        status: response.status,
        code: problem.code,
        detail: problem.detail,
        problem,
        requestId,
        retryAfterMs,
      });
    }
    const statusText = response.statusText || `HTTP ${response.status}`;
    return new ModelRepositoryError({
      status: response.status,
      code: `http_${response.status}`,
      title: statusText,
      detail: text.trim().slice(0, 500) || statusText,
      requestId,
      retryAfterMs,
    });
  }
}

/** The request never got an HTTP answer (connection refused or reset, DNS failure, …), also after retries. */
export class ModelRepositoryNetworkError extends ModelRepositoryError {
  override name = 'ModelRepositoryNetworkError';
  constructor(cause: unknown, what: string) {
    const reason = describeCause(cause);
    super({ status: 0, code: 'network_error', detail: `${what} failed: ${reason}`, cause });
  }
}

/**
 * Bytes did not match what the server recorded: a download whose size or SHA-256 differs from the
 * artifact record (`code` `download_size_mismatch` / `download_checksum_mismatch`), or an upload
 * session that does not fit the file being resumed (`resume_mismatch`).
 */
export class ModelRepositoryIntegrityError extends ModelRepositoryError {
  override name = 'ModelRepositoryIntegrityError';
  readonly expected: string;
  readonly actual: string;
  constructor(code: string, detail: string, expected: string, actual: string) {
    super({ status: 0, code, detail });
    this.expected = expected;
    this.actual = actual;
  }
}

function formatMessage(init: ModelRepositoryErrorInit): string {
  const where = init.status > 0 ? `HTTP ${init.status} ${init.code}` : init.code;
  const rid = init.requestId ? `, request id ${init.requestId}` : '';
  return `${init.detail} (${where}${rid})`;
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    // undici reports "fetch failed" / "terminated" and keeps the system error (ECONNRESET, …) in `cause`.
    const inner = (cause as { cause?: unknown }).cause;
    if (inner instanceof Error) {
      const code = (inner as { code?: unknown }).code;
      return `${cause.message} (${typeof code === 'string' ? code + ': ' : ''}${inner.message})`;
    }
    return cause.message;
  }
  return String(cause);
}

function parseProblem(text: string): Problem | null {
  if (!text) return null;
  try {
    const value: unknown = JSON.parse(text);
    if (
      value !== null &&
      typeof value === 'object' &&
      typeof (value as Problem).code === 'string' &&
      typeof (value as Problem).detail === 'string'
    ) {
      return value as Problem;
    }
  } catch {
    // Not JSON (a proxy's HTML error page, …): handled by the caller.
  }
  return null;
}

/** `Retry-After` as delay-seconds or an HTTP date, in milliseconds from now; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/** True for the error an aborted signal produces (whatever reason it carries). */
export function isAbortError(error: unknown, signal?: AbortSignal | null): boolean {
  if (signal?.aborted && error === signal.reason) return true;
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}
