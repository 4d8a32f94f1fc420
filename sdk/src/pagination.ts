import { dataOf, type ClientContext } from './context.js';
import { withRetry } from './retry.js';
import type { Event, EventListQuery, ModelListQuery, ModelSummary } from './types.js';

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

/** One page of a list and what the server said about the whole list. */
export interface Page<T> {
  items: T[];
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

/** One page of a model list. */
export type ModelPage = Page<ModelSummary>;

const defaultPageSize = 100;

type PageResult<T> = { data?: T[]; response: Response };

/**
 * The pages of a list, fetched lazily one at a time while you iterate; the next page is requested
 * only while `X-Has-More` says `true`. `items()` walks the records themselves.
 */
export class Pages<T> implements AsyncIterable<Page<T>> {
  readonly #ctx: ClientContext;
  readonly #fetch: (skip: number, limit: number, signal?: AbortSignal) => Promise<PageResult<T>>;
  readonly #start: { skip?: number; limit?: number };
  readonly #signal: AbortSignal | undefined;

  /** `fetch` makes one page's request (without retries: they are added here). */
  protected constructor(
    ctx: ClientContext,
    fetch: (skip: number, limit: number, signal?: AbortSignal) => Promise<PageResult<T>>,
    start: { skip?: number; limit?: number },
    signal: AbortSignal | undefined,
  ) {
    this.#ctx = ctx;
    this.#fetch = fetch;
    this.#start = start;
    this.#signal = signal;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Page<T>, void, undefined> {
    const limit = this.#start.limit ?? defaultPageSize;
    let skip = this.#start.skip ?? 0;
    for (;;) {
      const page = await this.#fetchPage(skip, limit);
      yield page;
      // An empty page that claims more would loop forever: stop instead.
      if (!page.hasMore || page.items.length === 0) return;
      skip += page.items.length;
    }
  }

  /** Every record of every page, in order. */
  async *items(): AsyncGenerator<T, void, undefined> {
    for await (const page of this) yield* page.items;
  }

  /** Collects every record into an array. */
  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const page of this) all.push(...page.items);
    return all;
  }

  async #fetchPage(skip: number, limit: number): Promise<Page<T>> {
    const signal = this.#signal;
    const result = await withRetry(() => this.#fetch(skip, limit, signal), this.#ctx.retry, signal);
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

/** The pages of a model list (`client.listModels`). */
export class ModelPages extends Pages<ModelSummary> {
  constructor(ctx: ClientContext, scope: ModelScope, filters: ModelListFilters = {}, options: ModelListOptions = {}) {
    if (!scope || (typeof scope.space === 'string') === (typeof scope.organization === 'string')) {
      throw new TypeError('listModels: give exactly one of { space } or { organization }');
    }
    super(
      ctx,
      (skip, limit, signal) => {
        const query = { ...filters, skip, limit };
        return scope.space !== undefined
          ? ctx.api.GET('/catalog/spaces/{slug}/model-repository/models', { params: { path: { slug: scope.space }, query }, signal })
          : ctx.api.GET('/organizations/{slug}/model-repository/models', { params: { path: { slug: scope.organization! }, query }, signal });
      },
      filters,
      options.signal,
    );
  }
}

/** Whose events to list: one model record, or a whole space (space admins, organization owners and admins). */
export type EventScope = { product: string; space?: never } | { space: string; product?: never };

/**
 * Filters of the event lists: `types` (any of the event types), `since` (an ISO 8601 instant, or a
 * `Date`), and `skip`/`limit` as in the model lists.
 */
export type EventListFilters = Omit<EventListQuery, 'since'> & { since?: string | Date };

export interface EventListOptions {
  signal?: AbortSignal;
}

/** One page of an event list, newest first. */
export type EventPage = Page<Event>;

/** The pages of an event list (`client.listEvents`), newest first. */
export class EventPages extends Pages<Event> {
  constructor(ctx: ClientContext, scope: EventScope, filters: EventListFilters = {}, options: EventListOptions = {}) {
    if (!scope || (typeof scope.product === 'string') === (typeof scope.space === 'string')) {
      throw new TypeError('listEvents: give exactly one of { product } or { space }');
    }
    const { since, ...rest } = filters;
    const base = { ...rest, ...(since === undefined ? {} : { since: since instanceof Date ? since.toISOString() : since }) };
    super(
      ctx,
      (skip, limit, signal) => {
        const query = { ...base, skip, limit };
        return scope.product !== undefined
          ? ctx.api.GET('/catalog/products/{product_id}/events', { params: { path: { product_id: scope.product }, query }, signal })
          : ctx.api.GET('/catalog/spaces/{slug}/events', { params: { path: { slug: scope.space! }, query }, signal });
      },
      filters,
      options.signal,
    );
  }
}

function intHeader(value: string | null): number | null {
  if (value === null || !/^\s*\d+\s*$/.test(value)) return null;
  return Number(value);
}
