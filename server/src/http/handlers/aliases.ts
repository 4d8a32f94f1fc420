/** Aliases and version reviews. */
import type { Services } from '../../services/index.ts';
import { sendJson, type Handler } from '../types.ts';

export function aliasHandlers(services: Services) {
  const listModelAliases: Handler<'listModelAliases'> = async (req, res, ctx) => {
    const { product_id } = req.params;
    sendJson(res, 'listModelAliases', 200, await services.aliases.list(ctx.em, ctx.user, product_id));
  };

  const getModelAlias: Handler<'getModelAlias'> = async (req, res, ctx) => {
    const { product_id, alias } = req.params;
    const result = await services.aliases.get(ctx.em, ctx.user, product_id, alias);
    res.setHeader('ETag', result.etag);
    sendJson(res, 'getModelAlias', 200, result.alias);
  };

  const setModelAlias: Handler<'setModelAlias'> = async (req, res, ctx) => {
    const { product_id, alias } = req.params;
    const body = req.body;
    const result = await services.aliases.set(ctx.em, ctx.user, product_id, alias, body, req.get('If-Match'));
    res.setHeader('ETag', result.etag);
    if (result.created) sendJson(res, 'setModelAlias', 201, result.alias);
    else sendJson(res, 'setModelAlias', 200, result.alias);
  };

  const deleteModelAlias: Handler<'deleteModelAlias'> = async (req, res, ctx) => {
    const { product_id, alias } = req.params;
    await services.aliases.remove(ctx.em, ctx.user, product_id, alias, req.get('If-Match'));
    res.status(204).end();
  };

  const listModelAliasHistory: Handler<'listModelAliasHistory'> = async (req, res, ctx) => {
    const { product_id, alias } = req.params;
    sendJson(res, 'listModelAliasHistory', 200, await services.aliases.history(ctx.em, ctx.user, product_id, alias));
  };

  const listVersionReviews: Handler<'listVersionReviews'> = async (req, res, ctx) => {
    const { product_id, version_id } = req.params;
    sendJson(res, 'listVersionReviews', 200, await services.reviews.list(ctx.em, ctx.user, product_id, version_id));
  };

  const createVersionReview: Handler<'createVersionReview'> = async (req, res, ctx) => {
    const { product_id, version_id } = req.params;
    const body = req.body;
    sendJson(res, 'createVersionReview', 201, await services.reviews.create(ctx.em, ctx.user, product_id, version_id, body));
  };

  return { listModelAliases, getModelAlias, setModelAlias, deleteModelAlias, listModelAliasHistory, listVersionReviews, createVersionReview };
}
