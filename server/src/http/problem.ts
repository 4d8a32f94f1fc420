/**
 * The one error renderer: every error (ours, the validator's, body-parser's, unknown ones) leaves
 * the server as an RFC 9457 problem document. Unknown errors are logged with the request id and
 * rendered as 500 without internals.
 */
import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Logger } from 'pino';
import { AppError, ErrorCode, errors, type FieldError } from '../errors.ts';

interface ValidatorErrorItem {
  path?: string;
  message?: string;
  errorCode?: string;
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  message?: string;
  errors?: ValidatorErrorItem[];
  code?: string;
  headers?: Record<string, string>;
}

/** busboy's messages for a multipart body it cannot parse (and multer's for a body cut short). */
const MALFORMED_MULTIPART =
  /^(Malformed part header|Malformed content type|Unexpected end of form|Unexpected end of file|Missing Content-Type|Unsupported content type.*|Multipart: Boundary not found|Request aborted|Request closed)$/;

/** Turns the validator's `/body/name` style paths into `["body", "name"]`. */
function locOf(path: string | undefined): (string | number)[] {
  if (!path) return [];
  return path
    .replace(/^\./, '')
    .split(/[/.]/)
    .filter((p) => p.length > 0)
    .map((p) => (/^\d+$/.test(p) ? Number(p) : decodedOrAsIs(p)));
}

/** A %-encoded path piece decoded, or as it is when its escapes are malformed (never a throw here). */
function decodedOrAsIs(piece: string): string {
  try {
    return decodeURIComponent(piece);
  } catch {
    return piece;
  }
}

function fieldErrorsOf(items: ValidatorErrorItem[]): FieldError[] {
  return items.map((item) => {
    const loc = locOf(item.path);
    const type = (item.errorCode ?? 'invalid').replace(/\.openapi\.(validation|requestValidation)$/, '');
    const message = item.message ?? 'is invalid';
    if (type === 'additionalProperties') {
      const m = /must NOT have additional properties/.test(message);
      return { loc, msg: m ? 'is not a known field' : message, type };
    }
    return { loc, msg: message, type };
  });
}

function describeFieldErrors(fieldErrors: FieldError[]): string {
  const parts = fieldErrors.slice(0, 5).map((e) => `${e.loc.join('.') || 'request'} ${e.msg}`);
  const more = fieldErrors.length > 5 ? ` (and ${fieldErrors.length - 5} more)` : '';
  return `The request is invalid: ${parts.join('; ')}${more}.`;
}

/** Maps anything thrown into an AppError (unknown errors → undefined, rendered as 500). */
export function toAppError(err: unknown, req?: Request): AppError | undefined {
  if (err instanceof AppError) return err;
  if (typeof err !== 'object' || err === null) return undefined;
  // An AppError wrapped by a library that only passes its own errors on (the validator's multer step).
  if ((err as { cause?: unknown }).cause instanceof AppError) return (err as { cause: AppError }).cause;
  const e = err as HttpishError;
  const status = e.status ?? e.statusCode;
  // body-parser: malformed JSON, too large, bad charset
  if (e.type === 'entity.parse.failed') return errors.malformedJson(e.message ?? 'unparseable');
  if (e.type === 'entity.too.large') return errors.payloadTooLarge('The JSON request body is too large (limit 1 MiB).');
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported')
    return errors.unsupportedMediaType(e.message ?? 'Unsupported body encoding.');
  // multer
  if (typeof e.code === 'string' && e.code.startsWith('LIMIT_')) {
    return e.code === 'LIMIT_FILE_SIZE'
      ? errors.payloadTooLarge('The file is larger than this server accepts.')
      : errors.validation(`Multipart request rejected: ${e.message ?? e.code}.`, []);
  }
  // The disk (or a quota) is full: ENOSPC/EDQUOT from the fs store, or their message when the
  // validator's multer step passed the error on as a 500 of its own.
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || (status === 500 && /^(ENOSPC|EDQUOT)\b/.test(e.message ?? ''))) {
    return errors.insufficientStorage();
  }
  // A multipart body the parser (busboy, through multer) cannot read reaches us as the validator's
  // 500 with the parser's message: the caller's mistake, not ours.
  if (status === 500 && typeof e.message === 'string' && MALFORMED_MULTIPART.test(e.message)) {
    return errors.badRequest(`The multipart/form-data body could not be read: ${e.message}. Send one part named "file" and the fields as text parts.`);
  }
  // express-openapi-validator errors carry status + errors[]
  if (typeof status === 'number' && Array.isArray(e.errors)) {
    if (status === 400) {
      const fe = fieldErrorsOf(e.errors);
      return errors.validation(describeFieldErrors(fe), fe);
    }
    if (status === 404) return errors.notFound('No such resource.');
    if (status === 405) {
      // RFC 9110: a 405 lists the methods the resource has.
      const allow = e.headers?.Allow?.toUpperCase();
      return new AppError(405, ErrorCode.methodNotAllowed, 'Method Not Allowed', e.message ?? 'Method not allowed.', undefined, allow ? { Allow: allow } : undefined);
    }
    if (status === 415) {
      if (req && !req.get('Content-Type')) {
        return errors.unsupportedMediaType('The request has no Content-Type: send the body as application/json.');
      }
      return errors.unsupportedMediaType(
        `Unsupported Content-Type: ${e.errors[0]?.message ?? e.message ?? 'this operation does not take it'}.`,
      );
    }
    if (status === 413) return errors.payloadTooLarge(e.message ?? 'Request too large.');
  }
  return undefined;
}

export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, _next) => {
    const requestId = String(res.getHeader('X-Request-Id') ?? '');
    let appError = toAppError(err, req);
    if (!appError) {
      logger.error({ err, requestId, method: req.method, url: req.originalUrl }, 'unhandled error');
      appError = new AppError(500, ErrorCode.internal, 'Internal Server Error', `An unexpected error occurred; quote request id ${requestId} when reporting it.`);
    }
    if (res.headersSent) {
      // Streaming already started (e.g. a download): all we can do is cut the connection.
      res.destroy();
      return;
    }
    for (const [name, value] of Object.entries(appError.headers ?? {})) res.setHeader(name, value);
    const body: Record<string, unknown> = {
      type: 'about:blank',
      title: appError.title,
      status: appError.status,
      detail: appError.detail,
      code: appError.code,
      instance: req.originalUrl.split('?')[0],
    };
    if (appError.errors) body.errors = appError.errors;
    res.status(appError.status).type('application/problem+json').send(JSON.stringify(body));
  };
}
