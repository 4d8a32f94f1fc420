import type { Response } from 'express';
import type { Services } from '../../services/index.ts';
import type { ModelPage } from '../../services/models.ts';
import type { Config } from '../../config.ts';
import { sendJson, type Handler, type ResponseBody, type PathParams, type QueryParams, type RequestBody } from '../types.ts';

const PREFIX = '/api/v1.0';

/** The seed's pagination headers: total, 1-based page, and whether more records follow. */
function setPageHeaders(res: Response, page: ModelPage): void {
  res.setHeader('X-Total-Count', String(page.total));
  res.setHeader('X-Page', String(Math.floor(page.skip / page.limit) + 1));
  res.setHeader('X-Has-More', String(page.skip + page.count < page.total));
}

export function modelHandlers(services: Services, config: Config) {
  /** A rendered page goes out as it is; with response validation on, through the validator. */
  const sendPage = (res: Response, op: 'listSpaceModels' | 'listOrganizationModels', page: ModelPage) => {
    setPageHeaders(res, page);
    if (config.validateResponses) sendJson(res, op, 200, JSON.parse(page.body.toString('utf8')) as ResponseBody<typeof op, 200>);
    else res.status(200).type('application/json; charset=utf-8').send(page.body);
  };

  const listSpaceModels: Handler = async (req, res, ctx) => {
    const { slug } = req.params as PathParams<'listSpaceModels'>;
    sendPage(res, 'listSpaceModels', await services.models.listSpace(ctx.em, ctx.user, slug, req.query as QueryParams<'listSpaceModels'>));
  };

  const listOrganizationModels: Handler = async (req, res, ctx) => {
    const { slug } = req.params as PathParams<'listOrganizationModels'>;
    sendPage(
      res,
      'listOrganizationModels',
      await services.models.listOrganization(ctx.em, ctx.user, slug, req.query as QueryParams<'listOrganizationModels'>),
    );
  };

  const createSpaceModel: Handler = async (req, res, ctx) => {
    const { slug } = req.params as PathParams<'createSpaceModel'>;
    const model = await services.models.create(ctx.em, ctx.user, slug, req.body as RequestBody<'createSpaceModel'>);
    res.setHeader('Location', `${PREFIX}/catalog/products/${model.id}/model-repository`);
    sendJson(res, 'createSpaceModel', 201, model);
  };

  const getModel: Handler = async (req, res, ctx) => {
    const { product_id } = req.params as PathParams<'getModel'>;
    sendJson(res, 'getModel', 200, await services.models.get(ctx.em, ctx.user, product_id));
  };

  const updateModel: Handler = async (req, res, ctx) => {
    const { product_id } = req.params as PathParams<'updateModel'>;
    const model = await services.models.update(ctx.em, ctx.user, product_id, req.body as RequestBody<'updateModel'>);
    sendJson(res, 'updateModel', 200, model);
  };

  return { listSpaceModels, listOrganizationModels, createSpaceModel, getModel, updateModel };
}
