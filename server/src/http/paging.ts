import type { Response } from 'express';

/** What the paging headers are made of. */
export interface PageFigures {
  /** Records on this page. */
  count: number;
  /** Records matching the filters on all pages. */
  total: number;
  skip: number;
  limit: number;
}

/** The seed's pagination headers: total, 1-based page, and whether more records follow. */
export function setPageHeaders(res: Response, page: PageFigures): void {
  res.setHeader('X-Total-Count', String(page.total));
  res.setHeader('X-Page', String(Math.floor(page.skip / page.limit) + 1));
  res.setHeader('X-Has-More', String(page.skip + page.count < page.total));
}
