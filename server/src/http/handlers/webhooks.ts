import type { Services } from '../../services/index.ts';
import { sendJson, type Handler } from '../types.ts';

const PREFIX = '/api/v1.0';

export function webhookHandlers(services: Services) {
  const hooks = services.webhooks;

  const listWebhooks: Handler<'listWebhooks'> = async (req, res, ctx) => {
    sendJson(res, 'listWebhooks', 200, await hooks.list(ctx.em, ctx.user, req.params.slug));
  };

  const createWebhook: Handler<'createWebhook'> = async (req, res, ctx) => {
    const webhook = await hooks.create(ctx.em, ctx.user, req.params.slug, req.body);
    res.setHeader('Location', `${PREFIX}/catalog/spaces/${encodeURIComponent(req.params.slug)}/webhooks/${webhook.id}`);
    sendJson(res, 'createWebhook', 201, webhook);
  };

  const getWebhook: Handler<'getWebhook'> = async (req, res, ctx) => {
    sendJson(res, 'getWebhook', 200, await hooks.get(ctx.em, ctx.user, req.params.slug, req.params.webhook_id));
  };

  const updateWebhook: Handler<'updateWebhook'> = async (req, res, ctx) => {
    sendJson(res, 'updateWebhook', 200, await hooks.update(ctx.em, ctx.user, req.params.slug, req.params.webhook_id, req.body));
  };

  const deleteWebhook: Handler<'deleteWebhook'> = async (req, res, ctx) => {
    await hooks.delete(ctx.em, ctx.user, req.params.slug, req.params.webhook_id);
    res.status(204).end();
  };

  const rotateWebhookSecret: Handler<'rotateWebhookSecret'> = async (req, res, ctx) => {
    sendJson(res, 'rotateWebhookSecret', 200, await hooks.rotateSecret(ctx.em, ctx.user, req.params.slug, req.params.webhook_id));
  };

  const pingWebhook: Handler<'pingWebhook'> = async (req, res, ctx) => {
    const delivery = await hooks.ping(ctx.em, ctx.user, req.params.slug, req.params.webhook_id);
    services.webhookWorker.nudge();
    sendJson(res, 'pingWebhook', 202, delivery);
  };

  const listWebhookDeliveries: Handler<'listWebhookDeliveries'> = async (req, res, ctx) => {
    const page = await hooks.listDeliveries(ctx.em, ctx.user, req.params.slug, req.params.webhook_id, req.query);
    res.setHeader('X-Total-Count', String(page.total));
    res.setHeader('X-Page', String(Math.floor(page.skip / page.limit) + 1));
    res.setHeader('X-Has-More', String(page.skip + page.items.length < page.total));
    sendJson(res, 'listWebhookDeliveries', 200, page.items);
  };

  const redeliverWebhookDelivery: Handler<'redeliverWebhookDelivery'> = async (req, res, ctx) => {
    const delivery = await hooks.redeliver(ctx.em, ctx.user, req.params.slug, req.params.webhook_id, req.params.delivery_id);
    services.webhookWorker.nudge();
    sendJson(res, 'redeliverWebhookDelivery', 202, delivery);
  };

  return {
    listWebhooks,
    createWebhook,
    getWebhook,
    updateWebhook,
    deleteWebhook,
    rotateWebhookSecret,
    pingWebhook,
    listWebhookDeliveries,
    redeliverWebhookDelivery,
  };
}
