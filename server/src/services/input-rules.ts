/**
 * Rules for input the spec states as patterns, checked again where the value is used: the
 * validator does not see every path a value takes (multipart defaults, rows written before a rule
 * existed), and a value that passes here can never fail later as a 500.
 */
import { errors } from '../errors.ts';

/**
 * A media type as an HTTP header can carry it: `type/subtype`, optionally `;` and parameters in
 * printable ASCII (the spec's `content_type` pattern). No control characters, line breaks or
 * characters above U+007E: Node refuses to send such a header.
 */
export const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*([\t ]*;[\t\x20-\x7e]*)?$/;

/** Schemes a model's serving_url may have (the spec's pattern). */
export const SERVING_URL = /^(?:https?|grpcs?):\/\//i;

/** The Content-Type to send for a stored media type: itself, or application/octet-stream for a value stored before MEDIA_TYPE held. */
export function sendableMediaType(value: string): string {
  return MEDIA_TYPE.test(value) ? value : 'application/octet-stream';
}

/** 422 unless `value` is a media type (see MEDIA_TYPE) of at most `maxLength` characters. */
export function requireMediaType(value: string, maxLength: number, loc: (string | number)[] = ['body', 'content_type']): void {
  if (MEDIA_TYPE.test(value) && value.length <= maxLength) return;
  throw errors.validation(
    `${loc.at(-1)} ${JSON.stringify(value.slice(0, 100))} is not a media type such as application/octet-stream (parameters after ";" must be printable ASCII).`,
    [{ loc, msg: 'must be a media type such as application/octet-stream, parameters in printable ASCII', type: 'pattern' }],
  );
}

/** 422 unless a serving_url that is set is an http, https, grpc or grpcs URL. */
export function requireServingUrlScheme(value: string | null | undefined): void {
  if (value === null || value === undefined || SERVING_URL.test(value)) return;
  throw errors.validation('serving_url must be an http://, https://, grpc:// or grpcs:// URL.', [
    { loc: ['body', 'serving_url'], msg: 'must be an http, https, grpc or grpcs URL', type: 'pattern' },
  ]);
}

/** Whether a string holds a lone UTF-16 surrogate: no UTF-8 text (nor PostgreSQL) can store one. */
export const hasLoneSurrogate = (s: string): boolean => LONE_SURROGATE.test(s);
// Without the u flag the pattern sees UTF-16 code units: a high one not followed by a low one, or a low one without a high one before it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
