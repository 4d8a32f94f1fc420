import type { Services } from '../../services/index.ts';
import { setPageHeaders } from '../paging.ts';
import { sendJson, type Handler } from '../types.ts';

export function eventHandlers(services: Services) {
  const listProductEvents: Handler<'listProductEvents'> = async (req, res, ctx) => {
    const page = await services.events.listProduct(ctx.em, ctx.user, req.params.product_id, req.query);
    setPageHeaders(res, page);
    sendJson(res, 'listProductEvents', 200, page.items);
  };

  const listSpaceEvents: Handler<'listSpaceEvents'> = async (req, res, ctx) => {
    const page = await services.events.listSpace(ctx.em, ctx.user, req.params.slug, req.query);
    setPageHeaders(res, page);
    sendJson(res, 'listSpaceEvents', 200, page.items);
  };

  return { listProductEvents, listSpaceEvents };
}
