export {
  API_PREFIX,
  createModelRepositoryClient,
  resolveBaseUrl,
  type ModelRepositoryClient,
  type ModelRepositoryClientOptions,
  type AliasChangeOptions,
  type RequestOptions,
} from './client.js';
export type { ModelRepositoryApi } from './context.js';
export {
  isAbortError,
  ModelRepositoryError,
  ModelRepositoryIntegrityError,
  ModelRepositoryNetworkError,
  parseRetryAfter,
  type ModelRepositoryErrorInit,
} from './errors.js';
export {
  EventPages,
  ModelPages,
  Pages,
  type EventListFilters,
  type EventListOptions,
  type EventPage,
  type EventScope,
  type ModelListFilters,
  type ModelListOptions,
  type ModelPage,
  type ModelScope,
  type Page,
} from './pagination.js';
export { chunkRanges, INSTANT_UPLOAD_MIN_BYTES, type ChunkRange, type UploadArtifactOptions, type UploadProgress } from './upload.js';
export type { DownloadArtifactOptions, DownloadProgress } from './download.js';
export type { UploadSource } from './source.js';
export { defaultRetryOptions, isRetryable, retryDelay, type RetryInfo, type RetryOptions } from './retry.js';
export { sdkVersion } from './version.js';
export type * from './types.js';
export type { components, operations, paths } from './generated/api.js';
export {
  verifyWebhook,
  WebhookVerificationError,
  type VerifyWebhookOptions,
  type WebhookEvent,
  type WebhookHeaders,
  type WebhookVerificationCode,
} from './webhooks.js';
