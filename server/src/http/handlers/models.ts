import type { Response } from 'express';
import type { Services } from '../../services/index.ts';
import type { ModelPage } from '../../services/models.ts';
import { setPageHeaders } from '../paging.ts';
import type { Config } from '../../config.ts';
import { sendJson, type Handler, type ResponseBody } from '../types.ts';

const PREFIX = '/api/v1.0';

export function modelHandlers(services: Services, config: Config) {
  /** A rendered page goes out as it is; with response validation on, through the validator. */
  const sendPage = (res: Response, op: 'listSpaceModels' | 'listOrganizationModels', page: ModelPage) => {
    setPageHeaders(res, page);
    if (config.validateResponses) sendJson(res, op, 200, JSON.parse(page.body.toString('utf8')) as ResponseBody<typeof op, 200>);
    else res.status(200).type('application/json; charset=utf-8').send(page.body);
  };

  const listSpaceModels: Handler<'listSpaceModels'> = async (req, res, ctx) => {
    sendPage(res, 'listSpaceModels', await services.models.listSpace(ctx.em, ctx.user, req.params.slug, req.query));
  };

  const listOrganizationModels: Handler<'listOrganizationModels'> = async (req, res, ctx) => {
    sendPage(res, 'listOrganizationModels', await services.models.listOrganization(ctx.em, ctx.user, req.params.slug, req.query));
  };

  const createSpaceModel: Handler<'createSpaceModel'> = async (req, res, ctx) => {
    const model = await services.models.create(ctx.em, ctx.user, req.params.slug, req.body);
    res.setHeader('Location', `${PREFIX}/catalog/products/${model.id}/model-repository`);
    sendJson(res, 'createSpaceModel', 201, model);
  };

  const getModel: Handler<'getModel'> = async (req, res, ctx) => {
    sendJson(res, 'getModel', 200, await services.models.get(ctx.em, ctx.user, req.params.product_id));
  };

  const updateModel: Handler<'updateModel'> = async (req, res, ctx) => {
    const model = await services.models.update(ctx.em, ctx.user, req.params.product_id, req.body);
    sendJson(res, 'updateModel', 200, model);
  };

  return { listSpaceModels, listOrganizationModels, createSpaceModel, getModel, updateModel };
}
