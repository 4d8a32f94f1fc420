/**
 * Receiving webhooks: `verifyWebhook` checks a delivery's Standard Webhooks signature and
 * timestamp and returns the event. WebCrypto only (Node ≥ 20, browsers, edge runtimes); the
 * signature comparison is WebCrypto's own `verify` (constant time), never a string compare.
 */
import { ModelRepositoryError } from './errors.js';

export type WebhookVerificationCode =
  | 'webhook_invalid_secret'
  | 'webhook_missing_header'
  | 'webhook_invalid_timestamp'
  | 'webhook_timestamp_out_of_tolerance'
  | 'webhook_invalid_signature'
  | 'webhook_invalid_payload';

/** A delivery that is not authentic, too old (or from the future), or not an event. `status` is 0. */
export class WebhookVerificationError extends ModelRepositoryError {
  override name = 'WebhookVerificationError';
  declare readonly code: WebhookVerificationCode;

  constructor(code: WebhookVerificationCode, detail: string) {
    super({ status: 0, code, detail });
  }
}

/** Request headers as Node (`IncomingHttpHeaders`), fetch (`Headers`) or a plain object give them. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export interface VerifyWebhookOptions {
  /** How far the `webhook-timestamp` may be from now, either way (default 300 s). */
  toleranceSeconds?: number;
  /** "Now", for tests (default: the clock). */
  now?: Date;
}

/** An event as delivered (the events API's shape; `type` is `ping` for pings). */
export interface WebhookEvent {
  id: string;
  type: string;
  occurred_at: string;
  actor_id: string | null;
  organization_id: string;
  space_id: string;
  product_id: string | null;
  subject_id: string | null;
  data: Record<string, unknown>;
}

const SECRET_PREFIX = 'whsec_';

function header(headers: WebhookHeaders, name: string): string | null {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value.join(' ') : (value ?? null);
}

function base64ToBytes(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function toBytes(body: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof body === 'string') return new TextEncoder().encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

/**
 * Verifies one delivery and returns its event. `rawBody` must be the bytes as received (parse
 * JSON only afterwards: re-serialising changes them). The `webhook-signature` header may carry
 * several space-separated signatures (during a secret rotation on the sender's side); one valid
 * `v1` signature is enough. Throws `WebhookVerificationError` otherwise.
 *
 *   const event = await verifyWebhook(process.env.WEBHOOK_SECRET!, req.headers, rawBody);
 */
export async function verifyWebhook(
  secret: string,
  headers: WebhookHeaders,
  rawBody: string | Uint8Array | ArrayBuffer,
  options: VerifyWebhookOptions = {},
): Promise<WebhookEvent> {
  const keyBytes = secret.startsWith(SECRET_PREFIX) ? base64ToBytes(secret.slice(SECRET_PREFIX.length)) : null;
  if (!keyBytes || keyBytes.length === 0) {
    throw new WebhookVerificationError('webhook_invalid_secret', 'The secret is not of the form whsec_<base64>.');
  }
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  for (const [name, value] of [['webhook-id', id], ['webhook-timestamp', timestamp], ['webhook-signature', signatures]] as const) {
    if (!value) throw new WebhookVerificationError('webhook_missing_header', `The ${name} header is missing.`);
  }
  if (!/^\d{1,15}$/.test(timestamp!)) {
    throw new WebhookVerificationError('webhook_invalid_timestamp', `webhook-timestamp '${timestamp}' is not a Unix time in seconds.`);
  }
  const tolerance = options.toleranceSeconds ?? 300;
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - Number(timestamp)) > tolerance) {
    throw new WebhookVerificationError(
      'webhook_timestamp_out_of_tolerance',
      `webhook-timestamp ${timestamp} is more than ${tolerance} s away from now (${now}): a replay, or a clock off.`,
    );
  }

  const body = toBytes(rawBody);
  const prefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix, 0);
  signed.set(body, prefix.length);
  const key = await globalThis.crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  let valid = false;
  for (const candidate of signatures!.split(' ')) {
    const [version, value] = candidate.split(',', 2);
    const mac = version === 'v1' && value ? base64ToBytes(value) : null;
    if (mac && (await globalThis.crypto.subtle.verify('HMAC', key, mac, signed))) valid = true;
  }
  if (!valid) throw new WebhookVerificationError('webhook_invalid_signature', 'No webhook-signature matches the body with this secret.');

  try {
    return JSON.parse(new TextDecoder().decode(body)) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError('webhook_invalid_payload', 'The body is signed but is not JSON.');
  }
}
