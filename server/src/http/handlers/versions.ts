import type { Services } from '../../services/index.ts';
import { sendJson, type Handler } from '../types.ts';

export function versionHandlers(services: Services) {
  const listModelVersions: Handler<'listModelVersions'> = async (req, res, ctx) => {
    sendJson(res, 'listModelVersions', 200, await services.versions.list(ctx.em, ctx.user, req.params.product_id));
  };

  const createModelVersion: Handler<'createModelVersion'> = async (req, res, ctx) => {
    const version = await services.versions.create(ctx.em, ctx.user, req.params.product_id, req.body);
    sendJson(res, 'createModelVersion', 201, version);
  };

  const getModelVersion: Handler<'getModelVersion'> = async (req, res, ctx) => {
    const { product_id, version_ref } = req.params;
    sendJson(res, 'getModelVersion', 200, await services.versions.get(ctx.em, ctx.user, product_id, version_ref));
  };

  return { listModelVersions, createModelVersion, getModelVersion };
}
