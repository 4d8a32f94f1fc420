import createClient, { type Middleware } from 'openapi-fetch';
import { dataOf, networkError, sameOrigin, throwForStatus, type ClientContext, type ModelRepositoryApi } from './context.js';
import { downloadArtifact, type DownloadArtifactOptions } from './download.js';
import type { paths } from './generated/api.js';
import {
  EventPages,
  ModelPages,
  type EventListFilters,
  type EventListOptions,
  type EventScope,
  type ModelListFilters,
  type ModelListOptions,
  type ModelScope,
} from './pagination.js';
import { resolveRetryOptions, withRetry, type RetryOptions } from './retry.js';
import { isNode } from './runtime.js';
import type { UploadSource } from './source.js';
import type {
  Alias,
  AliasChange,
  AliasWithEtag,
  ArtifactUploadSession,
  ModelArtifact,
  ModelCreate,
  ModelSummary,
  ModelUpdate,
  ModelVersion,
  ModelVersionCreate,
  Review,
  ReviewCreate,
  Webhook,
  WebhookCreate,
  WebhookDelivery,
  WebhookUpdate,
} from './types.js';
import { uploadArtifact, type UploadArtifactOptions } from './upload.js';
import { sdkVersion } from './version.js';

/** The path every operation of the spec lives under. */
export const API_PREFIX = '/api/v1.0';

export interface ModelRepositoryClientOptions {
  /**
   * The server's URL, e.g. `https://models.example.com`; `/api/v1.0` is appended unless the URL
   * already ends with it. Relative URLs work in browsers (resolved against the page).
   */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`, and only to `baseUrl`'s origin. */
  apiKey?: string;
  /** A fetch implementation (default: the global `fetch`), e.g. for tests or proxies. */
  fetch?: (input: Request) => Promise<Response>;
  /** Extra headers for every API request (not sent to storage redirect targets on other origins). */
  headers?: Record<string, string>;
  /** `User-Agent` (default in Node: `model-repository-sdk/<version> node/<version>`; browsers set their own). */
  userAgent?: string;
  /** Retry policy of the helpers (uploads, downloads, list pages and other idempotent calls). */
  retry?: RetryOptions;
}

export interface ModelRepositoryClient {
  /**
   * The openapi-fetch client over the generated `paths`: typed access to every operation.
   * A status ≥ 400 rejects with `ModelRepositoryError`, a failed connection with
   * `ModelRepositoryNetworkError` (these raw calls are not retried).
   */
  readonly api: ModelRepositoryApi;
  /** The resolved API root (ends with `/api/v1.0`). */
  readonly baseUrl: string;

  /** Pages of a model list, fetched as you iterate; `for await (const page of client.listModels({ space: 'ml' }))`. */
  listModels(scope: ModelScope, filters?: ModelListFilters, options?: ModelListOptions): ModelPages;
  getModel(productId: string, options?: RequestOptions): Promise<ModelSummary>;
  createModel(space: string, model: ModelCreate, options?: RequestOptions): Promise<ModelSummary>;
  updateModel(productId: string, changes: ModelUpdate, options?: RequestOptions): Promise<ModelSummary>;
  listVersions(productId: string, options?: RequestOptions): Promise<ModelVersion[]>;
  createVersion(productId: string, version: ModelVersionCreate, options?: RequestOptions): Promise<ModelVersion>;
  /** One version, named by its id, its number or an alias (`'production'`). */
  getVersion(productId: string, versionRef: string | number, options?: RequestOptions): Promise<ModelVersion>;
  /** The artifacts of a model; with `version` (id, number or alias) only that version's. */
  listArtifacts(productId: string, options?: RequestOptions & { version?: string | number }): Promise<ModelArtifact[]>;

  /**
   * Points an alias at a version; `created` tells a new alias from a moved one. With `ifMatch`
   * (an ETag from getAlias/setAlias) it is a compare-and-set: a changed alias rejects with 412.
   */
  setAlias(productId: string, alias: string, versionId: string, options?: AliasChangeOptions & { reason?: string }): Promise<AliasWithEtag & { created: boolean }>;
  getAlias(productId: string, alias: string, options?: RequestOptions): Promise<AliasWithEtag>;
  listAliases(productId: string, options?: RequestOptions): Promise<Alias[]>;
  deleteAlias(productId: string, alias: string, options?: AliasChangeOptions): Promise<void>;
  /** Every change of an alias, newest first (a deletion has `version_id: null`). */
  aliasHistory(productId: string, alias: string, options?: RequestOptions): Promise<AliasChange[]>;
  /** Approves or rejects a version (space admins, organization owners/admins; not one's own approval). */
  reviewVersion(productId: string, versionId: string, review: ReviewCreate, options?: RequestOptions): Promise<Review>;
  /** A version's reviews, newest first. */
  listReviews(productId: string, versionId: string, options?: RequestOptions): Promise<Review[]>;
  getArtifact(productId: string, artifactId: string, options?: RequestOptions): Promise<ModelArtifact>;
  deleteArtifact(productId: string, artifactId: string, options?: RequestOptions): Promise<void>;
  /**
   * Has the server read the stored file's header again (edit access) and returns the artifact
   * with its new `inspection`: tensors, parameters, dtypes, or the imports of a pickle.
   */
  inspectArtifact(productId: string, artifactId: string, options?: RequestOptions): Promise<ModelArtifact>;
  /**
   * Pages of the audit trail, newest first, fetched as you iterate:
   * `for await (const e of client.listEvents({ product: id }, { types: ['model.updated'] }).items())`.
   * `{ space }` lists a whole space (space admins, organization owners and admins).
   */
  listEvents(scope: EventScope, filters?: EventListFilters, options?: EventListOptions): EventPages;

  /** Chunked, resumable, verified upload of a file path (Node), `Blob`/`File` or bytes; returns the artifact. */
  uploadArtifact(productId: string, source: UploadSource, options?: UploadArtifactOptions): Promise<ModelArtifact>;
  /** State of an upload session (`received_chunks` tells what a resume will skip). */
  getUpload(productId: string, uploadId: string, options?: RequestOptions): Promise<ArtifactUploadSession>;
  /** Discards an unfinished upload session and its staged bytes. */
  abortUpload(productId: string, uploadId: string, options?: RequestOptions): Promise<void>;
  /** Verified download to a file path (Node) or a `WritableStream`; returns the artifact record. */
  downloadArtifact(productId: string, artifactId: string, options: DownloadArtifactOptions): Promise<ModelArtifact>;

  /** The space's webhooks (space admins, organization owners/admins); `secret` is null. */
  listWebhooks(space: string, options?: RequestOptions): Promise<Webhook[]>;
  /** Creates a webhook; the response's `secret` is shown this once. */
  createWebhook(space: string, webhook: WebhookCreate, options?: RequestOptions): Promise<Webhook>;
  getWebhook(space: string, webhookId: string, options?: RequestOptions): Promise<Webhook>;
  updateWebhook(space: string, webhookId: string, changes: WebhookUpdate, options?: RequestOptions): Promise<Webhook>;
  deleteWebhook(space: string, webhookId: string, options?: RequestOptions): Promise<void>;
  /** A new signing secret, returned this once. */
  rotateWebhookSecret(space: string, webhookId: string, options?: RequestOptions): Promise<Webhook>;
  /** Queues a `ping` delivery to the webhook; returns the queued delivery. */
  pingWebhook(space: string, webhookId: string, options?: RequestOptions): Promise<WebhookDelivery>;
  /** One page of the webhook's deliveries, newest first. */
  listWebhookDeliveries(space: string, webhookId: string, page?: { skip?: number; limit?: number }, options?: RequestOptions): Promise<WebhookDelivery[]>;
  /** Starts a fresh attempt cycle for a delivery. */
  redeliverWebhookDelivery(space: string, webhookId: string, deliveryId: string, options?: RequestOptions): Promise<WebhookDelivery>;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface AliasChangeOptions extends RequestOptions {
  /** Change only while the alias still has this ETag (`'*'`: while it exists). */
  ifMatch?: string;
}

/** Resolves a user-given server URL to the absolute API root. */
export function resolveBaseUrl(baseUrl: string): string {
  const location = (globalThis as { location?: { href?: string } }).location?.href;
  const url = new URL(baseUrl, location);
  url.search = '';
  url.hash = '';
  let path = url.pathname.replace(/\/+$/, '');
  if (!path.endsWith(API_PREFIX)) path += API_PREFIX;
  url.pathname = path;
  return url.href;
}

function defaultUserAgent(): string | undefined {
  if (!isNode) return undefined;
  return `model-repository-sdk/${sdkVersion} node/${process.versions.node}`;
}

/**
 * Creates a client. Requests go through openapi-fetch with two middlewares: authentication (the
 * API key, only for the API's origin) and errors (status ≥ 400 → `ModelRepositoryError`).
 */
export function createModelRepositoryClient(options: ModelRepositoryClientOptions): ModelRepositoryClient {
  const baseUrl = resolveBaseUrl(options.baseUrl);
  const fetchImpl = (request: Request): Promise<Response> => (options.fetch ?? globalThis.fetch)(request);
  const userAgent = options.userAgent ?? defaultUserAgent();
  const retry = resolveRetryOptions(options.retry);

  const addCredentials = (request: Request): void => {
    if (!sameOrigin(request.url, baseUrl)) return;
    if (options.apiKey) request.headers.set('Authorization', `Bearer ${options.apiKey}`);
  };

  const auth: Middleware = {
    onRequest({ request }) {
      addCredentials(request);
      if (userAgent) request.headers.set('User-Agent', userAgent);
      return request;
    },
  };
  const errors: Middleware = {
    async onResponse({ response }) {
      return throwForStatus(response);
    },
    onError({ error, request }) {
      const mapped = networkError(error, `${request.method} ${new URL(request.url).pathname}`);
      return mapped instanceof Error ? mapped : undefined;
    },
  };

  const api: ModelRepositoryApi = createClient<paths>({ baseUrl, fetch: fetchImpl, headers: options.headers });
  api.use(auth, errors);

  const ctx: ClientContext = {
    api,
    baseUrl,
    retry,
    async rawFetch(url, init) {
      const request = new Request(url, init);
      if (sameOrigin(url, baseUrl)) {
        for (const [name, value] of Object.entries(options.headers ?? {})) {
          if (!request.headers.has(name)) request.headers.set(name, value);
        }
        addCredentials(request);
      }
      if (userAgent) request.headers.set('User-Agent', userAgent);
      let response: Response;
      try {
        response = await fetchImpl(request);
      } catch (error) {
        throw networkError(error, `${request.method} ${url.origin}${url.pathname}`);
      }
      return throwForStatus(response);
    },
  };

  const retried = <T>(call: () => Promise<{ data?: T; response: Response }>, signal?: AbortSignal) =>
    withRetry(call, retry, signal).then(dataOf);

  return {
    api,
    baseUrl,
    listModels: (scope, filters, listOptions) => new ModelPages(ctx, scope, filters, listOptions),
    listEvents: (scope, filters, listOptions) => new EventPages(ctx, scope, filters, listOptions),
    getModel: (productId, { signal } = {}) =>
      retried(() => api.GET('/catalog/products/{product_id}/model-repository', { params: { path: { product_id: productId } }, signal }), signal),
    createModel: async (space, model, { signal } = {}) =>
      dataOf(await api.POST('/catalog/spaces/{slug}/model-repository/models', { params: { path: { slug: space } }, body: model, signal })),
    updateModel: async (productId, changes, { signal } = {}) =>
      dataOf(await api.PATCH('/catalog/products/{product_id}/model-repository', { params: { path: { product_id: productId } }, body: changes, signal })),
    listVersions: (productId, { signal } = {}) =>
      retried(() => api.GET('/catalog/products/{product_id}/versions', { params: { path: { product_id: productId } }, signal }), signal),
    createVersion: async (productId, version, { signal } = {}) =>
      dataOf(await api.POST('/catalog/products/{product_id}/versions', { params: { path: { product_id: productId } }, body: version, signal })),
    getVersion: (productId, versionRef, { signal } = {}) =>
      retried(
        () => api.GET('/catalog/products/{product_id}/versions/{version_ref}', { params: { path: { product_id: productId, version_ref: String(versionRef) } }, signal }),
        signal,
      ),
    listArtifacts: (productId, { signal, version } = {}) =>
      retried(
        () =>
          api.GET('/catalog/products/{product_id}/model-artifacts', {
            params: { path: { product_id: productId }, query: version === undefined ? {} : { version: String(version) } },
            signal,
          }),
        signal,
      ),
    setAlias: async (productId, alias, versionId, { signal, ifMatch, reason } = {}) => {
      const result = await api.PUT('/catalog/products/{product_id}/aliases/{alias}', {
        params: { path: { product_id: productId, alias }, header: ifMatch === undefined ? {} : { 'If-Match': ifMatch } },
        body: { version_id: versionId, ...(reason === undefined ? {} : { reason }) },
        signal,
      });
      return { alias: dataOf(result), etag: result.response.headers.get('etag') ?? '', created: result.response.status === 201 };
    },
    getAlias: async (productId, alias, { signal } = {}) => {
      const result = await withRetry(() => api.GET('/catalog/products/{product_id}/aliases/{alias}', { params: { path: { product_id: productId, alias } }, signal }), retry, signal);
      return { alias: dataOf(result), etag: result.response.headers.get('etag') ?? '' };
    },
    listAliases: (productId, { signal } = {}) =>
      retried(() => api.GET('/catalog/products/{product_id}/aliases', { params: { path: { product_id: productId } }, signal }), signal),
    deleteAlias: async (productId, alias, { signal, ifMatch } = {}) => {
      await api.DELETE('/catalog/products/{product_id}/aliases/{alias}', {
        params: { path: { product_id: productId, alias }, header: ifMatch === undefined ? {} : { 'If-Match': ifMatch } },
        signal,
      });
    },
    aliasHistory: (productId, alias, { signal } = {}) =>
      retried(() => api.GET('/catalog/products/{product_id}/aliases/{alias}/history', { params: { path: { product_id: productId, alias } }, signal }), signal),
    reviewVersion: async (productId, versionId, review, { signal } = {}) =>
      dataOf(
        await api.POST('/catalog/products/{product_id}/versions/{version_id}/reviews', {
          params: { path: { product_id: productId, version_id: versionId } },
          body: review,
          signal,
        }),
      ),
    listReviews: (productId, versionId, { signal } = {}) =>
      retried(
        () => api.GET('/catalog/products/{product_id}/versions/{version_id}/reviews', { params: { path: { product_id: productId, version_id: versionId } }, signal }),
        signal,
      ),
    getArtifact: (productId, artifactId, { signal } = {}) =>
      retried(
        () =>
          api.GET('/catalog/products/{product_id}/model-artifacts/{artifact_id}', {
            params: { path: { product_id: productId, artifact_id: artifactId } },
            signal,
          }),
        signal,
      ),
    deleteArtifact: async (productId, artifactId, { signal } = {}) => {
      await api.DELETE('/catalog/products/{product_id}/model-artifacts/{artifact_id}', {
        params: { path: { product_id: productId, artifact_id: artifactId } },
        signal,
      });
    },
    inspectArtifact: (productId, artifactId, { signal } = {}) =>
      // Safe to repeat: it only reads the stored bytes and replaces the stored result.
      retried(
        () =>
          api.POST('/catalog/products/{product_id}/model-artifacts/{artifact_id}/inspect', {
            params: { path: { product_id: productId, artifact_id: artifactId } },
            signal,
          }),
        signal,
      ),
    uploadArtifact: (productId, source, uploadOptions) => uploadArtifact(ctx, productId, source, uploadOptions),
    getUpload: (productId, uploadId, { signal } = {}) =>
      retried(
        () =>
          api.GET('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}', {
            params: { path: { product_id: productId, upload_id: uploadId } },
            signal,
          }),
        signal,
      ),
    abortUpload: async (productId, uploadId, { signal } = {}) => {
      await withRetry(
        () =>
          api.DELETE('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}', {
            params: { path: { product_id: productId, upload_id: uploadId } },
            signal,
          }),
        retry,
        signal,
      );
    },
    downloadArtifact: (productId, artifactId, downloadOptions) => downloadArtifact(ctx, productId, artifactId, downloadOptions),
    listWebhooks: (space, { signal } = {}) =>
      retried(() => api.GET('/catalog/spaces/{slug}/webhooks', { params: { path: { slug: space } }, signal }), signal),
    createWebhook: async (space, webhook, { signal } = {}) =>
      dataOf(await api.POST('/catalog/spaces/{slug}/webhooks', { params: { path: { slug: space } }, body: webhook, signal })),
    getWebhook: (space, webhookId, { signal } = {}) =>
      retried(() => api.GET('/catalog/spaces/{slug}/webhooks/{webhook_id}', { params: { path: { slug: space, webhook_id: webhookId } }, signal }), signal),
    updateWebhook: async (space, webhookId, changes, { signal } = {}) =>
      dataOf(
        await api.PATCH('/catalog/spaces/{slug}/webhooks/{webhook_id}', { params: { path: { slug: space, webhook_id: webhookId } }, body: changes, signal }),
      ),
    deleteWebhook: async (space, webhookId, { signal } = {}) => {
      await api.DELETE('/catalog/spaces/{slug}/webhooks/{webhook_id}', { params: { path: { slug: space, webhook_id: webhookId } }, signal });
    },
    rotateWebhookSecret: async (space, webhookId, { signal } = {}) =>
      dataOf(await api.POST('/catalog/spaces/{slug}/webhooks/{webhook_id}/rotate-secret', { params: { path: { slug: space, webhook_id: webhookId } }, signal })),
    pingWebhook: async (space, webhookId, { signal } = {}) =>
      dataOf(await api.POST('/catalog/spaces/{slug}/webhooks/{webhook_id}/ping', { params: { path: { slug: space, webhook_id: webhookId } }, signal })),
    listWebhookDeliveries: (space, webhookId, page = {}, { signal } = {}) =>
      retried(
        () =>
          api.GET('/catalog/spaces/{slug}/webhooks/{webhook_id}/deliveries', {
            params: { path: { slug: space, webhook_id: webhookId }, query: page },
            signal,
          }),
        signal,
      ),
    redeliverWebhookDelivery: async (space, webhookId, deliveryId, { signal } = {}) =>
      dataOf(
        await api.POST('/catalog/spaces/{slug}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver', {
          params: { path: { slug: space, webhook_id: webhookId, delivery_id: deliveryId } },
          signal,
        }),
      ),
  };
}
