import { dataOf, type ClientContext } from './context.js';
import { withRetry } from './retry.js';
import type { ModelListQuery, ModelSummary } from './types.js';

/** Whose models to list: one space, or everything the caller can see in an organization. */
export type ModelScope = { space: string; organization?: never } | { organization: string; space?: never };

/**
 * Filters of the model lists. `skip` is where the first page starts (default 0) and `limit` the
 * page size (default 100, at most 1000).
 */
export type ModelListFilters = ModelListQuery;

export interface ModelListOptions {
  signal?: AbortSignal;
}

/** One page of a model list and what the server said about the whole list. */
export interface ModelPage {
  items: ModelSummary[];
  /** `X-Total-Count`: matching records in the whole list. */
  totalCount: number | null;
  /** `X-Page`: 1-based page number. */
  page: number | null;
  /** `X-Has-More`. */
  hasMore: boolean;
  skip: number;
  limit: number;
  requestId: string | null;
}

const defaultPageSize = 100;

/**
 * The pages of a model list, fetched lazily one at a time while you iterate; the next page is
 * requested only while `X-Has-More` says `true`. `items()` walks the models themselves.
 */
export class ModelPages implements AsyncIterable<ModelPage> {
  readonly #ctx: ClientContext;
  readonly #scope: ModelScope;
  readonly #filters: ModelListFilters;
  readonly #options: ModelListOptions;

  constructor(ctx: ClientContext, scope: ModelScope, filters: ModelListFilters = {}, options: ModelListOptions = {}) {
    if (!scope || (typeof scope.space === 'string') === (typeof scope.organization === 'string')) {
      throw new TypeError('listModels: give exactly one of { space } or { organization }');
    }
    this.#ctx = ctx;
    this.#scope = scope;
    this.#filters = filters;
    this.#options = options;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ModelPage, void, undefined> {
    const limit = this.#filters.limit ?? defaultPageSize;
    let skip = this.#filters.skip ?? 0;
    for (;;) {
      const page = await this.#fetchPage(skip, limit);
      yield page;
      // An empty page that claims more would loop forever: stop instead.
      if (!page.hasMore || page.items.length === 0) return;
      skip += page.items.length;
    }
  }

  /** Every model of every page, in order. */
  async *items(): AsyncGenerator<ModelSummary, void, undefined> {
    for await (const page of this) yield* page.items;
  }

  /** Collects every model into an array. */
  async toArray(): Promise<ModelSummary[]> {
    const all: ModelSummary[] = [];
    for await (const page of this) all.push(...page.items);
    return all;
  }

  async #fetchPage(skip: number, limit: number): Promise<ModelPage> {
    const { signal } = this.#options;
    const query = { ...this.#filters, skip, limit };
    const result = await withRetry(
      () =>
        this.#scope.space !== undefined
          ? this.#ctx.api.GET('/catalog/spaces/{slug}/model-repository/models', {
              params: { path: { slug: this.#scope.space }, query },
              signal,
            })
          : this.#ctx.api.GET('/organizations/{slug}/model-repository/models', {
              params: { path: { slug: this.#scope.organization! }, query },
              signal,
            }),
      this.#ctx.retry,
      signal,
    );
    const items = dataOf(result);
    const headers = result.response.headers;
    const hasMoreHeader = headers.get('X-Has-More');
    return {
      items,
      totalCount: intHeader(headers.get('X-Total-Count')),
      page: intHeader(headers.get('X-Page')),
      // Without the header (a proxy dropped it), a full page is the best hint that more follow.
      hasMore: hasMoreHeader === null ? items.length >= limit : hasMoreHeader.trim().toLowerCase() === 'true',
      skip,
      limit,
      requestId: headers.get('X-Request-Id'),
    };
  }
}

function intHeader(value: string | null): number | null {
  if (value === null || !/^\s*\d+\s*$/.test(value)) return null;
  return Number(value);
}
