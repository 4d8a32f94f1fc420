/**
 * Webhooks of a space (DESIGN.md "Webhooks"): CRUD for space admins and org owners/admins, the
 * signing secret, ping, the deliveries list and redelivery, and `queueDeliveries`, which the event
 * recorder calls in the event's own transaction. The delivery worker (webhook-worker.ts) sends
 * what is queued here.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { components } from '../generated/api.ts';
import { errors } from '../errors.ts';
import { requireSpaceAdmin, type SpaceInfo } from '../access/index.ts';
import { Webhook, WebhookDelivery, type Caller } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { isUuid } from '../persistence/queries.ts';
import type { Config } from '../config.ts';
import { checkWebhookUrl, WebhookUrlError } from './webhook-url.ts';

export type WebhookCreate = components['schemas']['WebhookCreate'];
export type WebhookUpdate = components['schemas']['WebhookUpdate'];
export type WebhookResponse = components['schemas']['Webhook'];
export type WebhookDeliveryResponse = components['schemas']['WebhookDelivery'];

/**
 * What a delivery's body is: an event as the events API shows it (`type` is `ping` for pings).
 * Only `id`, `type` and `space_id` are read here; the rest goes out as it is.
 */
export interface DeliverableEvent {
  id: string;
  type: string;
  space_id: string;
}

const SECRET_PREFIX = 'whsec_';

/** A new signing secret in Standard Webhooks form: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/**
 * The `webhook-signature` value of one attempt: `v1,` + base64 HMAC-SHA256 over
 * `<id>.<timestamp>.<body>`, keyed with the base64-decoded part of the secret after `whsec_`.
 */
export function signWebhook(secret: string, deliveryId: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${deliveryId}.${timestamp}.${body}`).digest('base64')}`;
}

export function webhookResponse(webhook: Webhook, showSecret = false): WebhookResponse {
  return {
    id: webhook.id,
    space_id: webhook.space.id,
    url: webhook.url,
    events: webhook.events as WebhookResponse['events'],
    description: webhook.description ?? null,
    active: webhook.active,
    secret: showSecret ? webhook.secret : null,
    created_at: webhook.created_at.toISOString(),
    updated_at: webhook.updated_at.toISOString(),
  };
}

export function deliveryResponse(d: Omit<WebhookDelivery, 'payload'>): WebhookDeliveryResponse {
  return {
    id: d.id,
    webhook_id: d.webhook.id,
    event_id: d.event_id,
    event_type: d.event_type,
    status: d.status,
    attempts: d.attempts,
    last_status_code: d.last_status_code ?? null,
    last_error: d.last_error ?? null,
    next_attempt_at: d.next_attempt_at ? d.next_attempt_at.toISOString() : null,
    created_at: d.created_at.toISOString(),
    delivered_at: d.delivered_at ? d.delivered_at.toISOString() : null,
  };
}

/** Whether a webhook subscribed to `events` receives an event of `type`. */
export function subscribes(events: readonly string[], type: string): boolean {
  return events.includes('*') || events.includes(type);
}

function newDeliveryRow(webhookId: string, event: DeliverableEvent, body: string, now: Date) {
  return {
    id: randomUUID(),
    webhook: webhookId,
    event_id: event.id,
    event_type: event.type,
    payload: body,
    status: 'pending' as const,
    attempts: 0,
    last_status_code: null,
    last_error: null,
    next_attempt_at: now,
    claim_token: null,
    created_at: now,
    delivered_at: null,
  };
}

/**
 * Queues one delivery of `event` per active webhook of its space that subscribes to its type, with
 * `em` — the transaction that writes the event, so both commit or neither does. Returns how many.
 */
export async function queueDeliveries(em: Em, event: DeliverableEvent): Promise<number> {
  const hooks = await em.find(Webhook, { space: event.space_id, active: true }, { fields: ['id', 'events'] });
  const targets = hooks.filter((h) => subscribes(h.events, event.type));
  if (targets.length === 0) return 0;
  const body = JSON.stringify(event);
  const now = new Date();
  await em.insertMany(WebhookDelivery, targets.map((h) => newDeliveryRow(h.id, event, body, now)) as never[]);
  return targets.length;
}

export interface DeliveryPage {
  items: WebhookDeliveryResponse[];
  total: number;
  skip: number;
  limit: number;
}

export class WebhookService {
  constructor(private readonly config: Config) {}

  private async checkUrl(url: string): Promise<string> {
    try {
      return await checkWebhookUrl(url, this.config.webhookAllowPrivateNetworks);
    } catch (err) {
      if (err instanceof WebhookUrlError) throw errors.webhookUrlForbidden(err.message);
      throw err;
    }
  }

  private async load(em: Em, user: Caller, slug: string, webhookId: string): Promise<{ space: SpaceInfo; webhook: Webhook }> {
    const { space } = await requireSpaceAdmin(em, user, slug, 'manage its webhooks');
    const webhook = isUuid(webhookId) ? await em.findOne(Webhook, { id: webhookId.toLowerCase(), space: space.id }) : null;
    if (!webhook) throw errors.notFound(`Webhook '${webhookId}' was not found in space '${slug}'.`);
    return { space, webhook };
  }

  async list(em: Em, user: Caller, slug: string): Promise<WebhookResponse[]> {
    const { space } = await requireSpaceAdmin(em, user, slug, 'manage its webhooks');
    const hooks = await em.find(Webhook, { space: space.id }, { orderBy: [{ created_at: 'desc' }, { id: 'desc' }] });
    return hooks.map((h) => webhookResponse(h));
  }

  async create(em: Em, user: Caller, slug: string, body: WebhookCreate): Promise<WebhookResponse> {
    const { space } = await requireSpaceAdmin(em, user, slug, 'manage its webhooks');
    const url = await this.checkUrl(body.url);
    const webhook = em.create(Webhook, {
      space: space.id,
      url,
      events: [...body.events],
      description: body.description ?? null,
      active: body.active ?? true,
      secret: newWebhookSecret(),
      created_by: user.id,
    } as never);
    await em.flush();
    return webhookResponse(webhook, true);
  }

  async get(em: Em, user: Caller, slug: string, webhookId: string): Promise<WebhookResponse> {
    return webhookResponse((await this.load(em, user, slug, webhookId)).webhook);
  }

  async update(em: Em, user: Caller, slug: string, webhookId: string, body: WebhookUpdate): Promise<WebhookResponse> {
    const { webhook } = await this.load(em, user, slug, webhookId);
    if (body.url !== undefined) webhook.url = await this.checkUrl(body.url);
    if (body.events !== undefined) webhook.events = [...body.events];
    if (body.description !== undefined) webhook.description = body.description;
    const deactivated = body.active === false && webhook.active;
    if (body.active !== undefined) webhook.active = body.active;
    webhook.updated_at = new Date();
    await em.flush();
    if (deactivated) {
      // Queued deliveries stop: nothing is sent to an inactive webhook, now or on reactivation.
      await em.nativeUpdate(
        WebhookDelivery,
        { webhook: webhook.id, status: 'pending', event_type: { $ne: 'ping' } },
        { status: 'failed', next_attempt_at: null, claim_token: null, last_error: 'The webhook was deactivated before this delivery succeeded.' },
      );
    }
    return webhookResponse(webhook);
  }

  async delete(em: Em, user: Caller, slug: string, webhookId: string): Promise<void> {
    const { webhook } = await this.load(em, user, slug, webhookId);
    // Deliveries go with it (on delete cascade): queued ones are never sent.
    await em.nativeDelete(Webhook, { id: webhook.id });
  }

  async rotateSecret(em: Em, user: Caller, slug: string, webhookId: string): Promise<WebhookResponse> {
    const { webhook } = await this.load(em, user, slug, webhookId);
    webhook.secret = newWebhookSecret();
    webhook.updated_at = new Date();
    await em.flush();
    return webhookResponse(webhook, true);
  }

  /** Queues a `ping` event (not an event of the events API) for this webhook only. */
  async ping(em: Em, user: Caller, slug: string, webhookId: string): Promise<WebhookDeliveryResponse> {
    const { space, webhook } = await this.load(em, user, slug, webhookId);
    const now = new Date();
    const event = {
      id: randomUUID(),
      type: 'ping',
      occurred_at: now.toISOString(),
      actor_id: user.id,
      organization_id: space.organization.id,
      space_id: space.id,
      product_id: null,
      subject_id: webhook.id,
      data: { webhook_id: webhook.id, url: webhook.url, events: webhook.events },
    };
    const row = newDeliveryRow(webhook.id, event, JSON.stringify(event), now);
    await em.insert(WebhookDelivery, row as never);
    return deliveryResponse({ ...row, webhook } as unknown as WebhookDelivery);
  }

  async listDeliveries(em: Em, user: Caller, slug: string, webhookId: string, query: { skip?: number; limit?: number }): Promise<DeliveryPage> {
    const { webhook } = await this.load(em, user, slug, webhookId);
    const skip = query.skip ?? 0;
    const limit = query.limit ?? 50;
    const [rows, total] = await em.findAndCount(
      WebhookDelivery,
      { webhook: webhook.id },
      { orderBy: [{ created_at: 'desc' }, { id: 'desc' }], limit, offset: skip, exclude: ['payload'] },
    );
    return { items: rows.map(deliveryResponse), total, skip, limit };
  }

  async redeliver(em: Em, user: Caller, slug: string, webhookId: string, deliveryId: string): Promise<WebhookDeliveryResponse> {
    const { webhook } = await this.load(em, user, slug, webhookId);
    const id = isUuid(deliveryId) ? deliveryId.toLowerCase() : null;
    const now = new Date();
    const changed = id
      ? await em.nativeUpdate(
          WebhookDelivery,
          { id, webhook: webhook.id },
          { status: 'pending', attempts: 0, next_attempt_at: now, delivered_at: null, claim_token: null },
        )
      : 0;
    if (changed === 0) throw errors.notFound(`Delivery '${deliveryId}' of webhook '${webhook.id}' was not found.`);
    const row = await em.findOneOrFail(WebhookDelivery, { id: id! }, { exclude: ['payload'], disableIdentityMap: true });
    return deliveryResponse(row);
  }
}
