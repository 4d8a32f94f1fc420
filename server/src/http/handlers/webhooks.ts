import type { Services } from '../../services/index.ts';
import { sendJson, type Handler, type PathParams, type QueryParams, type RequestBody } from '../types.ts';

const PREFIX = '/api/v1.0';

export function webhookHandlers(services: Services) {
  const hooks = services.webhooks;

  const listWebhooks: Handler = async (req, res, ctx) => {
    const { slug } = req.params as PathParams<'listWebhooks'>;
    sendJson(res, 'listWebhooks', 200, await hooks.list(ctx.em, ctx.user, slug));
  };

  const createWebhook: Handler = async (req, res, ctx) => {
    const { slug } = req.params as PathParams<'createWebhook'>;
    const webhook = await hooks.create(ctx.em, ctx.user, slug, req.body as RequestBody<'createWebhook'>);
    res.setHeader('Location', `${PREFIX}/catalog/spaces/${encodeURIComponent(slug)}/webhooks/${webhook.id}`);
    sendJson(res, 'createWebhook', 201, webhook);
  };

  const getWebhook: Handler = async (req, res, ctx) => {
    const { slug, webhook_id } = req.params as PathParams<'getWebhook'>;
    sendJson(res, 'getWebhook', 200, await hooks.get(ctx.em, ctx.user, slug, webhook_id));
  };

  const updateWebhook: Handler = async (req, res, ctx) => {
    const { slug, webhook_id } = req.params as PathParams<'updateWebhook'>;
    sendJson(res, 'updateWebhook', 200, await hooks.update(ctx.em, ctx.user, slug, webhook_id, req.body as RequestBody<'updateWebhook'>));
  };

  const deleteWebhook: Handler = async (req, res, ctx) => {
    const { slug, webhook_id } = req.params as PathParams<'deleteWebhook'>;
    await hooks.delete(ctx.em, ctx.user, slug, webhook_id);
    res.status(204).end();
  };

  const rotateWebhookSecret: Handler = async (req, res, ctx) => {
    const { slug, webhook_id } = req.params as PathParams<'rotateWebhookSecret'>;
    sendJson(res, 'rotateWebhookSecret', 200, await hooks.rotateSecret(ctx.em, ctx.user, slug, webhook_id));
  };

  const pingWebhook: Handler = async (req, res, ctx) => {
    const { slug, webhook_id } = req.params as PathParams<'pingWebhook'>;
    const delivery = await hooks.ping(ctx.em, ctx.user, slug, webhook_id);
    services.webhookWorker.nudge();
    sendJson(res, 'pingWebhook', 202, delivery);
  };

  const listWebhookDeliveries: Handler = async (req, res, ctx) => {
    const { slug, webhook_id } = req.params as PathParams<'listWebhookDeliveries'>;
    const page = await hooks.listDeliveries(ctx.em, ctx.user, slug, webhook_id, req.query as QueryParams<'listWebhookDeliveries'>);
    res.setHeader('X-Total-Count', String(page.total));
    res.setHeader('X-Page', String(Math.floor(page.skip / page.limit) + 1));
    res.setHeader('X-Has-More', String(page.skip + page.items.length < page.total));
    sendJson(res, 'listWebhookDeliveries', 200, page.items);
  };

  const redeliverWebhookDelivery: Handler = async (req, res, ctx) => {
    const { slug, webhook_id, delivery_id } = req.params as PathParams<'redeliverWebhookDelivery'>;
    const delivery = await hooks.redeliver(ctx.em, ctx.user, slug, webhook_id, delivery_id);
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
