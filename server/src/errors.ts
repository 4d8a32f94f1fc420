/**
 * One error type for the whole server. Services throw AppErrors made by the named
 * factories below; the HTTP error handler renders them (and every other error) as
 * RFC 9457 problem+json. The `code` values are part of the public contract.
 */
export const ErrorCode = {
  badRequest: 'bad_request',
  malformedJson: 'malformed_json',
  unauthenticated: 'unauthenticated',
  forbidden: 'forbidden',
  catalogLimitReached: 'catalog_limit_reached',
  reviewForbidden: 'review_forbidden',
  selfApprovalForbidden: 'self_approval_forbidden',
  notFound: 'not_found',
  artifactFileNotFound: 'artifact_file_not_found',
  methodNotAllowed: 'method_not_allowed',
  conflict: 'conflict',
  slugConflict: 'slug_conflict',
  promotionBlocked: 'promotion_blocked',
  preconditionFailed: 'precondition_failed',
  uploadIncomplete: 'upload_incomplete',
  uploadNotWritable: 'upload_not_writable',
  uploadExpired: 'upload_expired',
  payloadTooLarge: 'payload_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  validation: 'validation_error',
  webhookUrlForbidden: 'webhook_url_forbidden',
  chunkSizeMismatch: 'chunk_size_mismatch',
  chunkIndexOutOfRange: 'chunk_index_out_of_range',
  chunkDigestMismatch: 'chunk_digest_mismatch',
  checksumMismatch: 'checksum_mismatch',
  rangeNotSatisfiable: 'range_not_satisfiable',
  rateLimited: 'rate_limited',
  insufficientStorage: 'insufficient_storage',
  internal: 'internal_error',
  unavailable: 'service_unavailable',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface FieldError {
  /** Path to the offending value, e.g. ["body", "limit"]. */
  loc: (string | number)[];
  msg: string;
  type: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly title: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.name = 'AppError';
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;

export const errors = {
  badRequest: (detail: string) => new AppError(400, ErrorCode.badRequest, 'Bad Request', detail),
  malformedJson: (detail: string) =>
    new AppError(400, ErrorCode.malformedJson, 'Bad Request', `Request body is not valid JSON: ${detail}`),
  unauthenticated: (detail = 'A valid API key is required: send "Authorization: Bearer <api key>".') =>
    new AppError(401, ErrorCode.unauthenticated, 'Unauthorized', detail, undefined, {
      'WWW-Authenticate': 'Bearer realm="model-repository"',
    }),
  forbidden: (detail: string) => new AppError(403, ErrorCode.forbidden, 'Forbidden', detail),
  catalogLimitReached: (detail: string) =>
    new AppError(403, ErrorCode.catalogLimitReached, 'Forbidden', detail),
  reviewForbidden: (detail: string) => new AppError(403, ErrorCode.reviewForbidden, 'Forbidden', detail),
  selfApprovalForbidden: (detail: string) => new AppError(403, ErrorCode.selfApprovalForbidden, 'Forbidden', detail),
  promotionBlocked: (detail: string, unmet: FieldError[]) => new AppError(409, ErrorCode.promotionBlocked, 'Conflict', detail, unmet),
  preconditionFailed: (detail: string) => new AppError(412, ErrorCode.preconditionFailed, 'Precondition Failed', detail),
  notFound: (detail: string) => new AppError(404, ErrorCode.notFound, 'Not Found', detail),
  artifactFileNotFound: () =>
    new AppError(404, ErrorCode.artifactFileNotFound, 'Not Found', 'Artifact file not found'),
  conflict: (detail: string) => new AppError(409, ErrorCode.conflict, 'Conflict', detail),
  slugConflict: (detail: string) => new AppError(409, ErrorCode.slugConflict, 'Conflict', detail),
  uploadIncomplete: (missing: number[], detail = `Upload is missing ${missing.length} chunk(s): ${summarizeIndexes(missing)}`) =>
    new AppError(
      409,
      ErrorCode.uploadIncomplete,
      'Conflict',
      detail,
      missing.slice(0, 1000).map((i) => ({ loc: ['chunks', i], msg: 'chunk not received', type: 'missing' })),
    ),
  uploadNotWritable: (detail: string) => new AppError(409, ErrorCode.uploadNotWritable, 'Conflict', detail),
  uploadExpired: (detail = 'The upload session has expired; start a new upload.') =>
    new AppError(410, ErrorCode.uploadExpired, 'Gone', detail),
  payloadTooLarge: (detail: string) => new AppError(413, ErrorCode.payloadTooLarge, 'Content Too Large', detail),
  unsupportedMediaType: (detail: string) =>
    new AppError(415, ErrorCode.unsupportedMediaType, 'Unsupported Media Type', detail),
  validation: (detail: string, fieldErrors?: FieldError[]) =>
    new AppError(422, ErrorCode.validation, 'Unprocessable Content', detail, fieldErrors ?? []),
  webhookUrlForbidden: (detail: string) =>
    new AppError(422, ErrorCode.webhookUrlForbidden, 'Unprocessable Content', detail, [
      { loc: ['body', 'url'], msg: detail, type: 'webhook_url_forbidden' },
    ]),
  chunkSizeMismatch: (detail: string) =>
    new AppError(422, ErrorCode.chunkSizeMismatch, 'Unprocessable Content', detail, []),
  chunkIndexOutOfRange: (detail: string) =>
    new AppError(422, ErrorCode.chunkIndexOutOfRange, 'Unprocessable Content', detail, []),
  chunkDigestMismatch: (detail: string) =>
    new AppError(422, ErrorCode.chunkDigestMismatch, 'Unprocessable Content', detail, []),
  checksumMismatch: (detail: string) =>
    new AppError(422, ErrorCode.checksumMismatch, 'Unprocessable Content', detail, []),
  rangeNotSatisfiable: (size: number) =>
    new AppError(416, ErrorCode.rangeNotSatisfiable, 'Range Not Satisfiable', `Requested range is outside the artifact (${size} bytes).`, undefined, {
      'Content-Range': `bytes */${size}`,
    }),
  insufficientStorage: () =>
    new AppError(507, ErrorCode.insufficientStorage, 'Insufficient Storage', 'The server has no storage space left for these bytes; nothing was stored. Retry later.'),
  unavailable: (detail: string) => new AppError(503, ErrorCode.unavailable, 'Service Unavailable', detail),
};

/** "0-3, 7, 9-12" for a sorted list of indexes, capped so a detail never grows unbounded. */
export function summarizeIndexes(indexes: number[], max = 50): string {
  const parts: string[] = [];
  let i = 0;
  while (i < indexes.length && parts.length < max) {
    const start = indexes[i]!;
    let end = start;
    while (i + 1 < indexes.length && indexes[i + 1] === end + 1) end = indexes[++i]!;
    parts.push(start === end ? String(start) : `${start}-${end}`);
    i++;
  }
  return i < indexes.length ? `${parts.join(', ')}, …` : parts.join(', ');
}
