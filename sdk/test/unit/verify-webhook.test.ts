/**
 * verifyWebhook: deliveries signed here with node:crypto (independently of the server) are
 * accepted; anything tampered with, stale, unsigned or malformed is refused with a typed error.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ModelRepositoryError, verifyWebhook, WebhookVerificationError } from '../../src/index.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const other = `whsec_${randomBytes(32).toString('base64')}`;
const now = new Date('2026-11-02T09:15:00Z');
const ts = String(Math.floor(now.getTime() / 1000));
const body = JSON.stringify({ id: 'e1', type: 'alias.set', space_id: 's1', data: { alias: 'production', note: 'ünïcödé' } });

function sign(key: string, id: string, timestamp: string, payload: string | Buffer): string {
  const mac = createHmac('sha256', Buffer.from(key.slice('whsec_'.length), 'base64'));
  mac.update(`${id}.${timestamp}.`).update(payload);
  return `v1,${mac.digest('base64')}`;
}

const headers = (over: Record<string, string | undefined> = {}) => ({
  'webhook-id': 'msg_1',
  'webhook-timestamp': ts,
  'webhook-signature': sign(secret, 'msg_1', ts, body),
  ...over,
});

async function refusal(promise: Promise<unknown>): Promise<WebhookVerificationError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WebhookVerificationError);
  expect(error).toBeInstanceOf(ModelRepositoryError);
  return error as WebhookVerificationError;
}

describe('verifyWebhook', () => {
  it('returns the event of an authentic delivery, from a string, bytes, Node headers or fetch Headers', async () => {
    const event = await verifyWebhook(secret, headers(), body, { now });
    expect(event).toMatchObject({ id: 'e1', type: 'alias.set', data: { alias: 'production' } });
    expect(await verifyWebhook(secret, headers(), new TextEncoder().encode(body), { now })).toEqual(event);
    expect(await verifyWebhook(secret, new Headers(headers()), Buffer.from(body), { now })).toEqual(event);
    const upper = Object.fromEntries(Object.entries(headers()).map(([k, v]) => [k.toUpperCase(), v]));
    expect(await verifyWebhook(secret, upper, body, { now })).toEqual(event);
  });

  it('accepts one valid v1 signature among several (rotation), ignoring other versions', async () => {
    const many = `v1a,abc v1,${sign(other, 'msg_1', ts, body).slice(3)} ${sign(secret, 'msg_1', ts, body)}`;
    await expect(verifyWebhook(secret, headers({ 'webhook-signature': many }), body, { now })).resolves.toMatchObject({ id: 'e1' });
  });

  it('refuses a changed body, id or timestamp, and another secret', async () => {
    expect((await refusal(verifyWebhook(secret, headers(), body.replace('production', 'prod'), { now }))).code).toBe('webhook_invalid_signature');
    expect((await refusal(verifyWebhook(secret, headers({ 'webhook-id': 'msg_2' }), body, { now }))).code).toBe('webhook_invalid_signature');
    expect((await refusal(verifyWebhook(secret, headers({ 'webhook-timestamp': String(Number(ts) + 1) }), body, { now }))).code).toBe('webhook_invalid_signature');
    expect((await refusal(verifyWebhook(other, headers(), body, { now }))).code).toBe('webhook_invalid_signature');
    expect((await refusal(verifyWebhook(secret, headers({ 'webhook-signature': 'v1,not-base64!!' }), body, { now }))).code).toBe('webhook_invalid_signature');
    expect((await refusal(verifyWebhook(secret, headers({ 'webhook-signature': 'v2,' + sign(secret, 'msg_1', ts, body).slice(3) }), body, { now }))).code).toBe('webhook_invalid_signature');
  });

  it('refuses timestamps outside the tolerance (default 5 minutes, either way)', async () => {
    const at = (seconds: number) => new Date(now.getTime() + seconds * 1000);
    await expect(verifyWebhook(secret, headers(), body, { now: at(299) })).resolves.toBeTruthy();
    expect((await refusal(verifyWebhook(secret, headers(), body, { now: at(301) }))).code).toBe('webhook_timestamp_out_of_tolerance');
    expect((await refusal(verifyWebhook(secret, headers(), body, { now: at(-301) }))).code).toBe('webhook_timestamp_out_of_tolerance');
    await expect(verifyWebhook(secret, headers(), body, { now: at(3000), toleranceSeconds: 3600 })).resolves.toBeTruthy();
    expect((await refusal(verifyWebhook(secret, headers({ 'webhook-timestamp': '17e8' }), body, { now }))).code).toBe('webhook_invalid_timestamp');
  });

  it('refuses missing headers, a malformed secret and a signed body that is not JSON', async () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const error = await refusal(verifyWebhook(secret, headers({ [name]: undefined }), body, { now }));
      expect([error.code, error.detail]).toEqual(['webhook_missing_header', `The ${name} header is missing.`]);
    }
    expect((await refusal(verifyWebhook('not-a-secret', headers(), body, { now }))).code).toBe('webhook_invalid_secret');
    const text = 'plain text';
    const error = await refusal(verifyWebhook(secret, headers({ 'webhook-signature': sign(secret, 'msg_1', ts, text) }), text, { now }));
    expect([error.code, error.status]).toEqual(['webhook_invalid_payload', 0]);
  });
});
