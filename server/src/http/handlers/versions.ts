import type { Services } from '../../services/index.ts';
import { sendJson, type Handler, type PathParams, type RequestBody } from '../types.ts';

export function versionHandlers(services: Services) {
  const listModelVersions: Handler = async (req, res, ctx) => {
    const { product_id } = req.params as PathParams<'listModelVersions'>;
    sendJson(res, 'listModelVersions', 200, await services.versions.list(ctx.em, ctx.user, product_id));
  };

  const createModelVersion: Handler = async (req, res, ctx) => {
    const { product_id } = req.params as PathParams<'createModelVersion'>;
    const version = await services.versions.create(ctx.em, ctx.user, product_id, req.body as RequestBody<'createModelVersion'>);
    sendJson(res, 'createModelVersion', 201, version);
  };

  return { listModelVersions, createModelVersion };
}
