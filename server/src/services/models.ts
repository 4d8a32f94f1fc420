/**
 * Model records (catalog products of a model type): list, create, read, update, archive.
 */
import { LockMode, UniqueConstraintViolationException, type FilterQuery } from '@mikro-orm/core';
import { requireServingUrlScheme } from './input-rules.ts';
import type { components, operations } from '../generated/api.ts';
import { errors, type FieldError } from '../errors.ts';
import {
  requireOrganizationListing,
  requireProductEdit,
  requireProductView,
  requireSpaceView,
  requireSpaceWrite,
  type SpaceInfo,
} from '../access/index.ts';
import { LIMITS, Product, ProductVersion, Space, type Caller } from '../persistence/entities.ts';
import { dialectOf, type Em, type Orm } from '../persistence/orm.ts';
import { searchTextFilter, searchTextPattern } from '../persistence/queries.ts';
import {
  listingPage,
  matchListPage,
  readMatchList,
  summarize,
  summaryPage,
  type ListingSql,
  type MatchList,
  type ModelSummary,
  type RowSpace,
} from './summaries.ts';

export type { ListingSql } from './summaries.ts';
import type { ListingCache } from './listing-cache.ts';
import { SpaceIndex } from './space-index.ts';
import { fieldChanges, recordEvent } from './events.ts';
import { checkPromotion, type PromotedProduct } from './promotion.ts';

export type ModelCreate = components['schemas']['ModelCreate'];
export type ModelUpdate = components['schemas']['ModelUpdate'];
export type ModelFilters = NonNullable<operations['listSpaceModels']['parameters']['query']>;

/** One page of a model listing, already rendered: the JSON array as sent, and its headers' figures. */
export interface ModelPage {
  /** The page's ModelSummary objects as a JSON array, UTF-8 (what goes on the wire, as is). */
  body: Buffer;
  /** How many summaries `body` holds. */
  count: number;
  total: number;
  skip: number;
  limit: number;
}

const DEFAULT_LIMIT = 50;

/** Lowercase words joined by single hyphens, at most 100 characters; '' when nothing is left. */
export function slugify(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, LIMITS.slug)
    .replace(/-+$/g, '');
}

/** input_schema / output_schema are capped at 64 KiB serialized (a JSON Schema cannot say so). */
export function checkJsonSize(body: Record<string, unknown>, fields: readonly string[]): void {
  const problems: FieldError[] = [];
  for (const field of fields) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
    if (bytes > LIMITS.json_bytes) {
      problems.push({ loc: ['body', field], msg: `must be at most ${LIMITS.json_bytes} bytes as JSON (got ${bytes})`, type: 'maxSize' });
    }
  }
  if (problems.length > 0) {
    throw errors.validation(`The request is invalid: ${problems.map((p) => `${p.loc.join('.')} ${p.msg}`).join('; ')}.`, problems);
  }
}

function filterConditions(filters: ModelFilters): FilterQuery<Product>[] {
  const where: FilterQuery<Product>[] = [];
  if (!filters.include_archived) where.push({ is_archived: false });
  if (filters.q !== undefined && filters.q !== '') where.push(searchTextFilter(filters.q));
  if (filters.model_family) where.push({ model_family: filters.model_family });
  if (filters.types && filters.types.length > 0) where.push({ product_type: { $in: [...new Set(filters.types)] } });
  if (filters.deployment_status) where.push({ deployment_status: filters.deployment_status });
  if (filters.model_task_type) where.push({ model_task_type: filters.model_task_type });
  if (filters.risk_classification) where.push({ risk_classification: filters.risk_classification });
  return where;
}

/**
 * filterConditions as plain SQL over `products p`, and'ed to `visible`: the same conditions,
 * values as parameters (the q pattern is searchTextPattern's, as in searchTextFilter).
 */
function listingWhere(visible: ListingSql, filters: ModelFilters): ListingSql {
  let sql = `(${visible.sql})`;
  const params: unknown[] = [...visible.params];
  if (!filters.include_archived) sql += ' and p.is_archived = false';
  if (filters.q !== undefined && filters.q !== '') {
    sql += " and p.search_text like ? escape '\\'";
    params.push(searchTextPattern(filters.q));
  }
  const equal = (column: string, value: string | undefined) => {
    if (!value) return;
    sql += ` and p.${column} = ?`;
    params.push(value);
  };
  equal('model_family', filters.model_family);
  if (filters.types && filters.types.length > 0) {
    const types = [...new Set(filters.types)];
    sql += ` and p.product_type in (${types.map(() => '?').join(', ')})`;
    params.push(...types);
  }
  equal('deployment_status', filters.deployment_status);
  equal('model_task_type', filters.model_task_type);
  equal('risk_classification', filters.risk_classification);
  return { sql, params };
}

/**
 * Whether a filter beyond "not archived" is set (filterConditions' other conditions), read off the
 * values: building the ORM conditions just to count them would register a raw() fragment for `q`
 * that no query consumes, and MikroORM keeps such fragments in a process-wide map for good.
 */
function narrowsMatches(filters: ModelFilters): boolean {
  return Boolean(
    (filters.q !== undefined && filters.q !== '') ||
      filters.model_family ||
      (filters.types && filters.types.length > 0) ||
      filters.deployment_status ||
      filters.model_task_type ||
      filters.risk_classification,
  );
}

function isListingSql(visible: FilterQuery<Product> | ListingSql): visible is ListingSql {
  return typeof (visible as ListingSql).sql === 'string' && Array.isArray((visible as ListingSql).params);
}

/** The filters that decide which products match (not skip or limit), arrays deduplicated and sorted. */
function filterKey(filters: ModelFilters): string {
  return JSON.stringify([
    filters.include_archived ?? false,
    filters.q ?? null,
    filters.model_family ?? null,
    filters.types ? [...new Set(filters.types)].sort() : null,
    filters.deployment_status ?? null,
    filters.model_task_type ?? null,
    filters.risk_classification ?? null,
  ]);
}

/** Options of ModelService.page. */
export interface PageOptions {
  /**
   * Names everything the listing's total depends on besides the filters, and changes whenever
   * any of it does (a space: `space:<id>:<listing_version>`). The exact total is cached under
   * it and the filters, shared by all skips and limits. null/undefined: counted with every page.
   */
  countScope?: string | null;
  /**
   * The space every match is in, as the caller's access check read it (its listing_version, slug
   * and name): rendered summaries are then looked up without reading the space again. With its
   * id (and a countScope naming its listing_version), its match columns may be kept (SpaceIndex).
   */
  space?: RowSpace & { id?: string };
}

const JSON_FIELDS = ['input_schema', 'output_schema'] as const;

/**
 * What a space listing shows is determined by the space (its id, and the slug and name every
 * summary repeats), its listing_version (bumped by the database on every change to its products,
 * their versions or artifacts) and the filters. Arrays are deduplicated and sorted, so equivalent
 * requests share an entry.
 */
function spaceListingKey(space: SpaceInfo, filters: ModelFilters): string {
  return JSON.stringify([space.id, space.listing_version, space.slug, space.name, filters.skip ?? 0, filters.limit ?? DEFAULT_LIMIT, filterKey(filters)]);
}

export class ModelService {
  constructor(
    private readonly orm: Orm,
    /** Rendered space listings (see spaceListingKey); null: no caching. */
    private readonly listingCache: ListingCache | null = null,
  ) {}

  /** Reads of match lists and space indexes under way, by key (see readOnce). */
  private readonly reading = new Map<string, Promise<unknown>>();

  /**
   * One page of a listing with its exact total. `visible` is what the caller may see: a
   * ListingSql condition (over `products p`) takes the listing's own path (listingPage: one plain
   * statement, rows written straight to JSON); a FilterQuery takes the general ORM path
   * (summaryPage), which the tests hold the other to. The same filters, order, bodies and totals
   * either way.
   *
   * `countScope` names everything the total depends on besides the filters (for a space: its id
   * and listing_version), changing whenever any of it changes: with it, the total is counted once
   * per scope and filters and reused by every skip and limit (never an estimate). Without it
   * (null/undefined), the total is counted with every page.
   */
  async page(em: Em, visible: FilterQuery<Product> | ListingSql, filters: ModelFilters, opts: PageOptions = {}): Promise<ModelPage> {
    const skip = filters.skip ?? 0;
    const limit = filters.limit ?? DEFAULT_LIMIT;
    // The spec sets no maximum for skip; beyond 2^53 JSON numbers are not exact and the
    // databases' 64-bit OFFSET overflows.
    if (!Number.isSafeInteger(skip)) {
      throw errors.validation(`The request is invalid: query.skip must be at most ${Number.MAX_SAFE_INTEGER}.`, [
        { loc: ['query', 'skip'], msg: `must be at most ${Number.MAX_SAFE_INTEGER}`, type: 'maximum' },
      ]);
    }
    const totalKey = opts.countScope != null && this.listingCache ? `${opts.countScope}\u0000${filterKey(filters)}` : null;
    let known = totalKey === null ? undefined : this.listingCache!.getTotal(totalKey);
    let list = known === undefined ? undefined : this.listingCache!.getList(totalKey!);
    if (totalKey !== null && list === undefined && opts.space?.id !== undefined && isListingSql(visible)) {
      // A space's filters with no total or no match list at this version: matched in memory when
      // its match columns are kept (read now when the statements answered it once before).
      const matched = await this.fromSpaceIndex(em, opts.countScope!, opts.space.id, filters, known === undefined);
      if (matched) {
        known = matched.total;
        list = matched.list;
        this.listingCache!.setTotal(totalKey, known);
        this.listingCache!.setList(totalKey, list);
      }
    }
    // Beyond "not archived", a filter means the database reads every match to sort them: count those in passing.
    const filtered = narrowsMatches(filters);
    // Past the end of a known total the page is empty: asking the database would make it walk
    // every match to skip them (a deep skip on an organization of 100,000: a full scan and sort).
    if (known !== undefined && skip >= known) return { body: Buffer.from('[]'), count: 0, total: known, skip, limit };
    const count = known !== undefined ? 'none' : filtered ? 'window' : 'separate';
    let page: { body: Buffer; count: number; total: number | null };
    let countAll: () => Promise<number>;
    if (isListingSql(visible)) {
      const where = listingWhere(visible, filters);
      if (known !== undefined) {
        const listed = await this.fromMatchList(em, totalKey!, known, list, where, skip, limit, opts.space);
        if (listed) return { body: listed.body, count: listed.count, total: known, skip, limit };
      }
      page = await listingPage(em, where, { skip, limit, count, rows: this.listingCache?.rows, space: opts.space });
      countAll = async () => {
        const [row] = await em.execute<{ n: number | string }[]>(`select count(*) as n from products p where ${where.sql}`, [...where.params]);
        return Number(row!.n);
      };
    } else {
      const where = () => ({ $and: [visible, ...filterConditions(filters)] }) as FilterQuery<Product>;
      const summaries = await summaryPage(em, where, { skip, limit, count: count === 'none' ? undefined : count });
      page = { body: Buffer.from(JSON.stringify(summaries.items)), count: summaries.items.length, total: summaries.total };
      countAll = () => em.createQueryBuilder(Product, 'p').where(where()).getCount();
    }
    // Past the end (or nothing matches) no row carries the total.
    const total = known ?? page.total ?? (skip === 0 && page.count === 0 ? 0 : await countAll());
    if (totalKey !== null && known === undefined) this.listingCache!.setTotal(totalKey, total);
    return { body: page.body, count: page.count, total, skip, limit };
  }

  /**
   * A page from the listing's match list (see MatchList), when the list covers it: no statement
   * but the reads of summaries not rendered before. The list is read on the second request of a
   * listing at one version and filters (its total was counted by the first), so a listing asked
   * once after each change costs no more than before, and paging through one costs one walk.
   * null: the page is read by statements (no lists kept, the page is past the list's end, or the
   * matches changed since they were counted).
   */
  private async fromMatchList(
    em: Em,
    key: string,
    total: number,
    /** The list kept under `key`, if any (the caller has looked it up). */
    kept: MatchList | undefined,
    where: ListingSql,
    skip: number,
    limit: number,
    space: RowSpace | undefined,
  ) {
    const cache = this.listingCache!;
    const length = Math.min(total, cache.listRows);
    if (length === 0 || (skip + limit > length && length < total) || cache.isUnlistable(key)) return null;
    const list =
      kept ??
      (await this.readOnce(`list\u0000${key}`, async () => {
        const read = await readMatchList(em, where, length, space);
        // An id a list cannot hold (a row written by hand on SQLite): not read again at this version.
        if (!read) cache.markUnlistable(key);
        // Fewer or more matches than counted: what they show changed since (the version the scope
        // names is already old); the statements serve this request, and the next scope its list.
        if (!read || read.length !== length) return null;
        cache.setList(key, read);
        return read;
      }));
    return list ? matchListPage(em, list, { skip, limit, rows: cache.rows, space }) : null;
  }

  /**
   * The matches of a space listing's filters from the space's match columns (SpaceIndex), kept
   * under its count scope: read (`mayRead`: the total is not known) on the second listing of the
   * space at one version that the statements had to count, so a space listed once after each
   * change costs no more than before. null: the statements answer (no index kept, not yet asked
   * twice, or a space too large: more than indexRows products or a quarter of the cache's budget).
   */
  private async fromSpaceIndex(em: Em, scope: string, spaceId: string, filters: ModelFilters, mayRead: boolean) {
    const cache = this.listingCache!;
    if (cache.indexRows === 0) return null;
    let index = cache.getIndex(scope);
    if (!index) {
      if (!mayRead || cache.noteRead(scope) < 2) return null;
      const read = await this.readOnce(`index\u0000${scope}`, async () => {
        // At most a quarter of the cache: the index must leave room for the summaries it serves.
        const found = await SpaceIndex.read(em, spaceId, cache.indexRows, cache.maxBytes / 4);
        if (found) cache.setIndex(scope, found);
        else cache.noteUnindexable(scope);
        return found;
      });
      if (!read) return null;
      index = read;
    }
    return index.match(filters, cache.listRows);
  }

  /**
   * `read()` once for all concurrent callers with the same `key` (a burst of listings right after
   * a change would otherwise each read the same list or index). A caller that joins a read under
   * way gets null when it fails (its statements answer); the caller that started it, the error.
   */
  private readOnce<T>(key: string, read: () => Promise<T | null>): Promise<T | null> {
    const running = this.reading.get(key) as Promise<T | null> | undefined;
    if (running) return running.catch(() => null);
    const started = read().finally(() => this.reading.delete(key));
    this.reading.set(key, started);
    return started;
  }

  /**
   * A space's models. Every viewer of a space sees the same listing, so a rendered page is
   * cached under the space's listing_version, which the access check has just read: a page
   * is only ever served while nothing it shows has changed, in any process.
   */
  async listSpace(em: Em, user: Caller, slug: string, filters: ModelFilters): Promise<ModelPage> {
    const { space } = await requireSpaceView(em, user, slug);
    const visible: ListingSql = { sql: 'p.space_id = ?', params: [space.id] };
    const countScope = `space:${space.id}:${space.listing_version}`;
    if (!this.listingCache) return this.page(em, visible, filters, { countScope });
    const key = spaceListingKey(space, filters);
    const cached = this.listingCache.get(key);
    if (cached) return cached;
    const page = await this.page(em, visible, filters, { countScope, space });
    this.listingCache.set(key, page);
    return page;
  }

  /**
   * An organization's models the caller may see: the access check and the visibility condition
   * from one statement (requireOrganizationListing), the page from the listing's own path, the
   * exact total cached under the organization's listing_version and the caller's scope. The ORM
   * reference (requireOrganizationAccess + visibleProductsInOrgFilter through page()) gives the
   * same bodies and totals; the tests hold the two together.
   */
  async listOrganization(em: Em, user: Caller, slug: string, filters: ModelFilters): Promise<ModelPage> {
    const { visible, countScope } = await requireOrganizationListing(em, user, slug);
    return this.page(em, visible, filters, { countScope });
  }

  async get(em: Em, user: Caller, productId: string): Promise<ModelSummary> {
    const { product } = await requireProductView(em, user, productId);
    return (await summarize(em, [product.id]))[0]!;
  }

  async create(em: Em, user: Caller, spaceSlug: string, body: ModelCreate): Promise<ModelSummary> {
    const { space } = await requireSpaceWrite(em, user, spaceSlug);
    checkJsonSize(body, JSON_FIELDS);
    requireServingUrlScheme(body.serving_url);
    const slug = body.slug ?? slugify(body.name);
    if (slug === '') {
      throw errors.validation('The name has no letters or digits to derive a slug from; send a `slug`.', [
        { loc: ['body', 'slug'], msg: 'is required when the name has no letters or digits', type: 'required' },
      ]);
    }
    const created = await em.transactional(async (tx) => {
      // Serialize creates per space so the catalog limit holds under concurrency.
      const locked =
        dialectOf(this.orm) === 'postgresql'
          ? await tx.findOneOrFail(Space, { id: space.id }, { lockMode: LockMode.PESSIMISTIC_WRITE })
          : space;
      if (locked.product_limit !== null && locked.product_limit !== undefined) {
        const count = await tx.count(Product, { space: space.id });
        if (count >= locked.product_limit) {
          throw errors.catalogLimitReached(
            `Space '${space.slug}' has reached its limit of ${locked.product_limit} catalog products (archived products count).`,
          );
        }
      }
      if ((await tx.count(Product, { space: space.id, slug })) > 0) throw slugTaken(slug, space.slug);
      // A new product has no version yet: under risk_based only a minimal-risk one may start in production.
      if (body.deployment_status === 'production') {
        await checkPromotion(tx, space, body, null, "creating a model with deployment_status 'production'");
      }
      const { slug: _ignored, ...fields } = body;
      const product = tx.create(Product, {
        ...fields,
        slug,
        space: space.id,
        product_type: body.product_type ?? 'ML Model',
        environment: body.environment ?? 'development',
        deployment_status: body.deployment_status ?? 'development',
        is_archived: false,
        created_by: user.id,
      });
      try {
        await tx.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw slugTaken(slug, space.slug);
        throw err;
      }
      const summary = (await summarize(tx, [product.id]))[0]!;
      await recordEvent(tx, {
        type: 'model.created',
        actorId: user.id,
        organizationId: space.organization.id,
        spaceId: space.id,
        productId: product.id,
        subjectId: product.id,
        data: summary,
        occurredAt: product.created_at,
      });
      return summary;
    });
    return created;
  }

  /**
   * A PATCH that leaves the product in production and sets deployment_status or changes a field
   * the gate reads is a promotion, judged on the product as the PATCH would leave it and its
   * current version. Runs before anything is assigned: a refused PATCH changes nothing.
   */
  private async checkPatchPromotion(em: Em, product: Product, changes: Record<string, unknown>): Promise<void> {
    const after = <K extends 'deployment_status' | (typeof PROMOTION_FIELDS)[number]>(field: K) =>
      (field in changes ? changes[field] : product[field]) as Product[K];
    if (after('deployment_status') !== 'production') return;
    if (!('deployment_status' in changes) && !PROMOTION_FIELDS.some((f) => f in changes)) return;
    const current = await em.findOne(ProductVersion, { product: product.id, is_current: true });
    const promoted: PromotedProduct = {
      risk_classification: after('risk_classification'),
      intended_use: after('intended_use'),
      limitations: after('limitations'),
    };
    await checkPromotion(em, product.space, promoted, current, "setting deployment_status 'production'");
  }

  async update(em: Em, user: Caller, productId: string, body: ModelUpdate): Promise<ModelSummary> {
    const { product } = await requireProductEdit(em, user, productId);
    checkJsonSize(body, JSON_FIELDS);
    requireServingUrlScheme(body.serving_url);
    const changes = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    if (Object.keys(changes).length > 0) {
      if (changes.slug !== undefined && changes.slug !== product.slug) {
        if ((await em.count(Product, { space: product.space.id, slug: changes.slug as string })) > 0) {
          throw slugTaken(changes.slug as string, product.space.slug);
        }
      }
      // Copies: assign may merge into a JSON object in place.
      const before = Object.fromEntries(Object.keys(changes).map((f) => [f, structuredClone((product as Record<string, unknown>)[f])]));
      await this.checkPatchPromotion(em, product, changes);
      return em.transactional(async (tx) => {
        // The fork shares `product` (a transaction's fork registers the parent's entities).
        em.assign(product, changes);
        // A PATCH that sets values equal to the current ones still counts as an update.
        product.updated_at = new Date();
        try {
          await tx.flush();
        } catch (err) {
          if (err instanceof UniqueConstraintViolationException) throw slugTaken(String(changes.slug), product.space.slug);
          throw err;
        }
        const summary = (await summarize(tx, [product.id]))[0]!;
        const changed = fieldChanges(before, summary, Object.keys(changes));
        // Nothing differs: no event (the trail records changes, and this was none).
        if (Object.keys(changed).length > 0) {
          await recordEvent(tx, {
            type: changed.is_archived?.to === true ? 'model.archived' : 'model.updated',
            actorId: user.id,
            organizationId: product.space.organization.id,
            spaceId: product.space.id,
            productId: product.id,
            subjectId: product.id,
            data: { ...summary, changes: changed },
            occurredAt: product.updated_at,
          });
        }
        return summary;
      });
    }
    return (await summarize(em, [product.id]))[0]!;
  }
}

/** The fields the promotion gate reads besides deployment_status. */
const PROMOTION_FIELDS = ['risk_classification', 'intended_use', 'limitations'] as const;

function slugTaken(slug: string, spaceSlug: string) {
  return errors.slugConflict(`A model with slug '${slug}' already exists in space '${spaceSlug}'.`);
}
