import type { Client } from 'openapi-fetch';
import { isAbortError, ModelRepositoryError, ModelRepositoryNetworkError } from './errors.js';
import type { paths } from './generated/api.js';
import type { ResolvedRetryOptions } from './retry.js';

/** The openapi-fetch client over the generated `paths`: typed access to every operation. */
export type ModelRepositoryApi = Client<paths>;

/** What the helpers share with the client that made them (internal). */
export interface ClientContext {
  readonly api: ModelRepositoryApi;
  /** Absolute, ends with the API prefix, no trailing slash. */
  readonly baseUrl: string;
  readonly retry: ResolvedRetryOptions;
  /**
   * A plain fetch for URLs outside the typed API (storage redirect targets). The API key and the
   * configured headers go only to the API's own origin. Throws `ModelRepositoryError` for
   * status ≥ 400 and `ModelRepositoryNetworkError` when there is no answer.
   */
  rawFetch(url: URL, init: RequestInit): Promise<Response>;
}

export function sameOrigin(a: string | URL, b: string | URL): boolean {
  return new URL(a).origin === new URL(b).origin;
}

/** Throws the SDK's error for a failed response; passes the others through. */
export async function throwForStatus(response: Response): Promise<Response> {
  if (response.status >= 400) throw await ModelRepositoryError.fromResponse(response);
  return response;
}

export function networkError(error: unknown, what: string): unknown {
  return isAbortError(error) || error instanceof ModelRepositoryError ? error : new ModelRepositoryNetworkError(error, what);
}

/** The success body of an openapi-fetch result (errors have been thrown by the client's middleware). */
export function dataOf<T>(result: { data?: T; response: Response }): T {
  if (result.data === undefined) {
    throw new ModelRepositoryError({
      status: result.response.status,
      code: 'unexpected_response',
      detail: `Expected a response body, got HTTP ${result.response.status} without one`,
      requestId: result.response.headers.get('X-Request-Id'),
    });
  }
  return result.data;
}
