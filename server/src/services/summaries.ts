/**
 * Builds ModelRepositoryModelSummary objects. A whole page — the products, their space, version
 * and artifact summary fields, and the total for X-Total-Count — is ONE SQL query: the page
 * query (filters, order, limit) as a derived table, joined to its spaces and current
 * version/artifact rows, with the counts as subqueries evaluated for the page's rows only.
 */
import { fsUriOf } from '../storage/index.ts';
import { QueryOrder, raw, type FilterQuery } from '@mikro-orm/core';
import type { components } from '../generated/api.ts';
import { Product, type ModelArtifact } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { modelFormat } from './model-format.ts';
import { executeHot } from '../persistence/raw.ts';
import { dialectOf } from '../persistence/orm.ts';

export type ModelSummary = components['schemas']['ModelSummary'];
export type ModelArtifactResponse = components['schemas']['ModelArtifact'];

const iso = (d: Date) => d.toISOString();

/** Product columns a summary shows (everything but created_by and search_text). */
const PRODUCT_COLUMNS = [
  'id', 'space', 'slug', 'name', 'description', 'long_description', 'product_type', 'provider', 'environment',
  'risk_classification', 'lifecycle_stage', 'model_family', 'model_task_type', 'model_architecture', 'framework',
  'intended_use', 'limitations', 'deployment_status', 'serving_url', 'input_schema', 'output_schema', 'ai_system_type',
  'vendor_name', 'vendor_product_name', 'vendor_model_id', 'deployment_environment', 'business_use_case', 'is_gpai',
  'is_archived', 'created_at', 'updated_at',
] as const;

/** The columns both page queries add to a product's: its space, current version and available artifact. */
interface JoinedColumns {
  space_slug: string;
  space_name: string;
  version_count: number | string;
  v_id: string | null;
  v_number: number | null;
  v_type: string | null;
  v_release_date: string | Date | null;
  v_approval_status: string | null;
  artifact_count: number | string;
  a_id: string | null;
  a_file_name: string | null;
  a_kind: string | null;
  a_content_type: string | null;
  a_sha256: string | null;
  a_size_bytes: number | string | null;
}

/** One row of the page query, product columns already mapped to property types. */
type PageRow = Pick<Product, Exclude<(typeof PRODUCT_COLUMNS)[number], 'space'>> & JoinedColumns & {
  space: string;
  // Raw columns: counts and bigints arrive as strings on PostgreSQL, JSON as text on SQLite.
  total_count?: number | string;
  a_metadata: Record<string, unknown> | string | null;
  a_inspected_format: string | null;
  a_parameter_count: number | string | null;
};

/** JSON columns: the row mapping leaves them as text on SQLite. */
function jsonObject(value: unknown): Record<string, unknown> | null {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, unknown>;
}

export interface SummaryPage {
  items: ModelSummary[];
  /** Matching products over all pages; null when the page is empty (nothing to carry it). */
  total: number | null;
}

/**
 * The summaries of the products matching `where`, ordered by updated_at desc, id desc, from
 * `skip`, at most `limit`; with `count`, also the number of all matching products. `where` is
 * a factory because a raw() fragment (the q filter) can serve one query only.
 * `count: 'window'` counts in the page query itself (`count(*) over ()`): right when filters
 * make the database visit every matching row for the sort anyway (q, attribute filters);
 * `'separate'` adds an uncorrelated count subquery: right when an index yields the page in
 * order and the count can be index-only (a plain space listing).
 * Works the same on SQLite and PostgreSQL: `is_current = true` matches the partial unique
 * indexes (one current version / available artifact per product).
 */
export async function summaryPage(
  em: Em,
  where: () => FilterQuery<Product>,
  opts: { skip?: number; limit?: number; count?: 'separate' | 'window' } = {},
): Promise<SummaryPage> {
  const knex = em.getKnex();
  const page = em
    .createQueryBuilder(Product, 'p0')
    .select([...PRODUCT_COLUMNS, ...(opts.count === 'window' ? [raw('count(*) over () as total_count')] : [])])
    .where(where())
    .orderBy([{ updated_at: QueryOrder.DESC }, { id: QueryOrder.DESC }]);
  if (opts.limit !== undefined) page.limit(opts.limit);
  if (opts.skip) page.offset(opts.skip);
  const query = knex
    .select(
      'p.*',
      's.slug as space_slug',
      's.name as space_name',
      knex.raw('(select count(*) from product_versions vc where vc.product_id = p.id) as version_count'),
      'v.id as v_id',
      'v.version_number as v_number',
      'v.version_type as v_type',
      'v.release_date as v_release_date',
      'v.approval_status as v_approval_status',
      knex.raw("(select count(*) from model_artifacts ac where ac.product_id = p.id and ac.status = 'available') as artifact_count"),
      'a.id as a_id',
      'a.file_name as a_file_name',
      'a.artifact_kind as a_kind',
      'a.content_type as a_content_type',
      'a.sha256 as a_sha256',
      'a.size_bytes as a_size_bytes',
      'a.metadata as a_metadata',
      'a.inspected_format as a_inspected_format',
      'a.parameter_count as a_parameter_count',
    )
    .from(page.getKnexQuery().as('p'))
    .join('spaces as s', 's.id', 'p.space_id')
    .leftJoin('product_versions as v', (on) => on.on('v.product_id', '=', 'p.id').andOn(knex.raw('v.is_current = true')))
    .leftJoin('model_artifacts as a', (on) =>
      on.on('a.product_id', '=', 'p.id').andOn(knex.raw('a.is_current = true')).andOn(knex.raw("a.status = 'available'")),
    )
    .orderBy([
      { column: 'p.updated_at', order: 'desc' },
      { column: 'p.id', order: 'desc' },
    ]);
  if (opts.count === 'separate') {
    // Uncorrelated: evaluated once per query (an index-only count when only the space filters).
    query.select(em.createQueryBuilder(Product, 'c0').count().where(where()).getKnexQuery().as('total_count'));
  }
  const result = await em.execute<Record<string, unknown>[]>(query);
  const driver = em.getDriver();
  const meta = em.getMetadata().get(Product.name);
  const rows = result.map((r) => driver.mapResult(r, meta) as unknown as PageRow);
  const total = rows.length > 0 && opts.count ? Number(rows[0]!.total_count) : null;
  return { items: rows.map(toSummary), total };
}

/** The summaries of the given products, in the given order (one query). */
export async function summarize(em: Em, productIds: readonly string[]): Promise<ModelSummary[]> {
  if (productIds.length === 0) return [];
  const { items } = await summaryPage(em, () => ({ id: { $in: [...productIds] } }) as FilterQuery<Product>);
  const byId = new Map(items.map((i) => [i.id, i]));
  return productIds.map((id) => {
    const item = byId.get(id);
    if (!item) throw new Error(`product ${id} vanished while being summarized`);
    return item;
  });
}

function toSummary(r: PageRow): ModelSummary {
  return {
    id: r.id,
    slug: r.slug,
    name: r.name,
    description: r.description ?? null,
    long_description: r.long_description ?? null,
    product_type: r.product_type as ModelSummary['product_type'],
    provider: r.provider ?? null,
    space_id: r.space,
    space_slug: r.space_slug,
    space_name: r.space_name,
    risk_classification: (r.risk_classification ?? null) as ModelSummary['risk_classification'],
    lifecycle_stage: (r.lifecycle_stage ?? null) as ModelSummary['lifecycle_stage'],
    environment: r.environment,
    deployment_status: r.deployment_status as ModelSummary['deployment_status'],
    model_family: (r.model_family ?? null) as ModelSummary['model_family'],
    model_task_type: r.model_task_type ?? null,
    model_architecture: r.model_architecture ?? null,
    framework: r.framework ?? null,
    intended_use: r.intended_use ?? null,
    limitations: r.limitations ?? null,
    serving_url: r.serving_url ?? null,
    input_schema: jsonObject(r.input_schema),
    output_schema: jsonObject(r.output_schema),
    ai_system_type: r.ai_system_type ?? null,
    vendor_name: r.vendor_name ?? null,
    vendor_product_name: r.vendor_product_name ?? null,
    vendor_model_id: r.vendor_model_id ?? null,
    deployment_environment: r.deployment_environment ?? null,
    business_use_case: r.business_use_case ?? null,
    is_gpai: r.is_gpai ?? null,
    is_archived: r.is_archived,
    version_count: Number(r.version_count),
    current_version_id: r.v_id ?? null,
    current_version_number: r.v_number ?? null,
    current_version_type: (r.v_type ?? null) as ModelSummary['current_version_type'],
    current_version_release_date: r.v_release_date ? dateOnly(r.v_release_date) : null,
    current_version_approval_status: (r.v_approval_status ?? null) as ModelSummary['current_version_approval_status'],
    artifact_count: Number(r.artifact_count),
    current_artifact_id: r.a_id ?? null,
    current_artifact_file_name: r.a_file_name ?? null,
    current_artifact_kind: (r.a_kind ?? null) as ModelSummary['current_artifact_kind'],
    current_artifact_content_type: r.a_content_type ?? null,
    current_artifact_model_format: r.a_id ? (r.a_inspected_format ?? modelFormat(r.a_file_name ?? '', jsonObject(r.a_metadata))) : null,
    current_artifact_sha256: r.a_sha256 ?? null,
    current_artifact_size_bytes: r.a_size_bytes === null || r.a_size_bytes === undefined ? null : Number(r.a_size_bytes),
    current_artifact_parameter_count: r.a_parameter_count === null || r.a_parameter_count === undefined ? null : Number(r.a_parameter_count),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

/** MikroORM maps `date` columns to 'YYYY-MM-DD' strings, but a Date may come from a driver. */
export function dateOnly(value: string | Date): string {
  return typeof value === 'string' ? value.slice(0, 10) : value.toISOString().slice(0, 10);
}

/**
 * The artifact's storage_uri as the API shows it. Filesystem rows written before storage URIs were
 * made backend-relative hold `file:///<absolute host path>`: they are shown as `fs://<key>`, like
 * new ones, so no response reveals the host's directory layout.
 */
export function publicStorageUri(a: Pick<ModelArtifact, 'storage_backend' | 'storage_key' | 'storage_uri'>): string {
  return a.storage_backend === 'fs' && a.storage_uri.startsWith('file:') ? fsUriOf(a.storage_key) : a.storage_uri;
}

export function artifactResponse(a: ModelArtifact): ModelArtifactResponse {
  return {
    id: a.id,
    product_id: a.product.id,
    product_version_id: a.product_version?.id ?? null,
    training_run_id: a.training_run_id ?? null,
    artifact_kind: a.artifact_kind as ModelArtifactResponse['artifact_kind'],
    version_label: a.version_label ?? null,
    file_name: a.file_name,
    content_type: a.content_type,
    size_bytes: a.size_bytes,
    sha256: a.sha256,
    storage_backend: a.storage_backend as ModelArtifactResponse['storage_backend'],
    storage_uri: publicStorageUri(a),
    external_uri: a.external_uri ?? null,
    status: a.status,
    is_current: a.is_current,
    metadata: a.metadata ?? null,
    inspection: (a.inspection ?? null) as ModelArtifactResponse['inspection'],
    uploaded_by_id: a.uploaded_by?.id ?? null,
    uploaded_at: iso(a.uploaded_at),
    created_at: iso(a.created_at),
    updated_at: iso(a.updated_at),
  };
}

// ─── the listing's own path: plain SQL, rows straight to JSON ─────────────────────────────

/**
 * A condition over `products p` in plain SQL with `?` placeholders (see listingPage). Its text
 * must come from a small set of shapes (values go in `params`): on PostgreSQL each distinct
 * text becomes a prepared statement on every pooled connection.
 */
export interface ListingSql {
  sql: string;
  params: readonly unknown[];
}

/** Each distinct listing statement's prepared-statement name; past the cap, statements run unprepared. */
const listingStatementNames = new Map<string, string>();
const MAX_LISTING_STATEMENTS = 256;

/** The summary's product columns, as `p.` columns (the same set as PRODUCT_COLUMNS). */
const LISTING_PRODUCT_COLUMNS =
  'p.id, p.space_id, p.slug, p.name, p.description, p.long_description, p.product_type, p.provider, p.environment, ' +
  'p.risk_classification, p.lifecycle_stage, p.model_family, p.model_task_type, p.model_architecture, p.framework, ' +
  'p.intended_use, p.limitations, p.deployment_status, p.serving_url, p.input_schema, p.output_schema, p.ai_system_type, ' +
  'p.vendor_name, p.vendor_product_name, p.vendor_model_id, p.deployment_environment, p.business_use_case, p.is_gpai, ' +
  'p.is_archived, p.created_at, p.updated_at';

/**
 * A listing row's version and artifact columns (`version_count`, `v_*`, `artifact_count`, `a_*`)
 * and the joins that make them, as summaryPage reads them: the version count and the current
 * version, the available artifacts' count and the current available artifact.
 * SQLite: count subqueries and joins on the partial unique indexes' condition.
 */
const JOINED_VERSION_ARTIFACT = {
  columns:
    '(select count(*) from product_versions vc where vc.product_id = p.id) as version_count, ' +
    'v.id as v_id, v.version_number as v_number, v.version_type as v_type, v.release_date as v_release_date, ' +
    'v.approval_status as v_approval_status, ' +
    "(select count(*) from model_artifacts ac where ac.product_id = p.id and ac.status = 'available') as artifact_count, " +
    'a.id as a_id, a.file_name as a_file_name, a.artifact_kind as a_kind, a.content_type as a_content_type, ' +
    'a.sha256 as a_sha256, a.size_bytes as a_size_bytes, a.metadata as a_metadata, ' +
    'a.inspected_format as a_inspected_format, a.parameter_count as a_parameter_count',
  joins:
    'left join product_versions v on v.product_id = p.id and v.is_current = true ' +
    "left join model_artifacts a on a.product_id = p.id and a.is_current = true and a.status = 'available' ",
};

/**
 * The same columns on PostgreSQL from one index scan per product and table instead of two: a
 * lateral subquery reads the product's versions (or available artifacts) once, counting them
 * with a window and keeping the current one first; its columns count only when it is current.
 */
const LATERAL_VERSION_ARTIFACT = {
  columns:
    'coalesce(v.n, 0) as version_count, ' +
    'case when v.is_current then v.id end as v_id, case when v.is_current then v.version_number end as v_number, ' +
    'case when v.is_current then v.version_type end as v_type, case when v.is_current then v.release_date end as v_release_date, ' +
    'case when v.is_current then v.approval_status end as v_approval_status, ' +
    'coalesce(a.n, 0) as artifact_count, ' +
    'case when a.is_current then a.id end as a_id, case when a.is_current then a.file_name end as a_file_name, ' +
    'case when a.is_current then a.artifact_kind end as a_kind, case when a.is_current then a.content_type end as a_content_type, ' +
    'case when a.is_current then a.sha256 end as a_sha256, case when a.is_current then a.size_bytes end as a_size_bytes, ' +
    'case when a.is_current then a.metadata end as a_metadata, ' +
    'case when a.is_current then a.inspected_format end as a_inspected_format, ' +
    'case when a.is_current then a.parameter_count end as a_parameter_count',
  joins:
    'left join lateral (select v.id, v.version_number, v.version_type, v.release_date, v.approval_status, v.is_current, ' +
    'count(*) over () as n from product_versions v where v.product_id = p.id order by v.is_current desc limit 1) v on true ' +
    'left join lateral (select a.id, a.file_name, a.artifact_kind, a.content_type, a.sha256, a.size_bytes, a.metadata, ' +
    'a.inspected_format, a.parameter_count, a.is_current, count(*) over () as n from model_artifacts a ' +
    "where a.product_id = p.id and a.status = 'available' order by a.is_current desc limit 1) a on true ",
};

/** A raw listing row (column names as the database returns them). */
interface ListingRow extends JoinedColumns {
  id: string;
  space_id: string;
  slug: string;
  name: string;
  description: string | null;
  long_description: string | null;
  product_type: string;
  provider: string | null;
  environment: string;
  risk_classification: string | null;
  lifecycle_stage: string | null;
  model_family: string | null;
  model_task_type: string | null;
  model_architecture: string | null;
  framework: string | null;
  intended_use: string | null;
  limitations: string | null;
  deployment_status: string;
  serving_url: string | null;
  input_schema: unknown;
  output_schema: unknown;
  ai_system_type: string | null;
  vendor_name: string | null;
  vendor_product_name: string | null;
  vendor_model_id: string | null;
  deployment_environment: string | null;
  business_use_case: string | null;
  is_gpai: boolean | number | null;
  is_archived: boolean | number;
  created_at: unknown;
  updated_at: unknown;
  a_metadata: unknown;
  a_inspected_format: string | null;
  a_parameter_count: number | string | null;
  total_count?: number | string;
}

/**
 * Rendered summaries kept across requests (ListingCache's rows): one summary's JSON bytes under a
 * key naming the product and everything its summary shows (see rowKey).
 */
export interface SummaryRowCache {
  getRow(key: string): Buffer | undefined;
  setRow(key: string, json: Buffer): void;
}

/** What a summary shows of its space; listing_version is bumped by every change to the space's products, versions and artifacts. */
export interface RowSpace {
  slug: string;
  name: string;
  listing_version: number | string;
}

/**
 * A rendered summary's key: the product, and its space's listing_version, slug and name. Every
 * column a summary shows is the product's, its versions' and artifacts' (each change bumps the
 * space's listing_version, in the change's own transaction) or the space's slug and name (in the
 * key), so an entry is never stale, only unreachable; a product moved to another space is keyed
 * under that space. The version is read before the row is (in an earlier statement), so an
 * entry never holds a row older than its key says.
 */
function rowKey(id: string, space: RowSpace): string {
  return `${id}\u0000${space.listing_version}\u0000${space.slug}\u0000${space.name}`;
}

/**
 * How a listing statement counts its matches: `inner` goes into the id subquery `k` (a window),
 * `outer` into the outer select list (k's window, or an uncorrelated subquery); `params` are the
 * statement's, in order, for `where` and the page window.
 */
function countParts(where: ListingSql, count: 'separate' | 'window' | 'none', limit: number, skip: number) {
  const inner = count === 'window' ? ', count(*) over () as total_count' : '';
  const outer =
    count === 'window' ? ', k.total_count' : count === 'separate' ? `, (select count(*) from products p where ${where.sql}) as total_count` : '';
  const params = [...(count === 'separate' ? where.params : []), ...where.params, limit, skip];
  return { inner, outer, params };
}

/** The listing's page statement: `where`'s matches in listing order, from `skip`, with all their summary columns. */
function listingRowsSql(em: Em, where: string, counted: { inner: string; outer: string }): string {
  const joined = dialectOf(em) === 'postgresql' ? LATERAL_VERSION_ARTIFACT : JOINED_VERSION_ARTIFACT;
  return (
    `select ${LISTING_PRODUCT_COLUMNS}, s.slug as space_slug, s.name as space_name, ` +
    joined.columns +
    counted.outer +
    ` from (select p.id, p.updated_at${counted.inner} from products p where ${where} ` +
    'order by p.updated_at desc, p.id desc limit ? offset ?) k ' +
    'join products p on p.id = k.id ' +
    'join spaces s on s.id = p.space_id ' +
    joined.joins +
    'order by k.updated_at desc, k.id desc'
  );
}

/** Runs a listing statement: prepared on PostgreSQL (one name per distinct text, up to the cap), plain beyond. */
export async function runListing<T>(em: Em, sql: string, params: readonly unknown[]): Promise<T[]> {
  let name = listingStatementNames.get(sql);
  if (name === undefined && listingStatementNames.size < MAX_LISTING_STATEMENTS) {
    name = `model_listing_${listingStatementNames.size + 1}`;
    listingStatementNames.set(sql, name);
  }
  return name ? executeHot<T>(em, name, sql, params) : em.execute<T[]>(sql, [...params]);
}

/** A page's ids in listing order, each with what its summary's key needs of its space (from the caller, or the join). */
interface PageIdRow {
  id: string;
  space_slug?: string;
  space_name?: string;
  space_version?: number | string;
  total_count?: number | string;
}

/**
 * The listing's page, rendered: the same bytes as JSON.stringify of summaryPage's items for the
 * same condition, order and window, from one plain statement (on PostgreSQL a prepared one) whose
 * rows are written straight into the JSON text, with no entity mapping or query building.
 *
 * The page is found first as ids alone (a deferred join: for a space listing an index-only scan
 * of (space, is_archived, updated_at, id), so a deep OFFSET skips index entries, not rows); then
 * only its rows are read with their space, current version and available artifact. `count`:
 * 'window' counts the matches in the id query (`count(*) over ()`), 'separate' as an uncorrelated
 * subquery, 'none' not at all (the caller knows the total). `total` is null when the page is
 * empty or nothing was counted.
 *
 * With `rows` (a SummaryRowCache), a summary rendered before is reused while its key still
 * holds (rowKey): the statement then reads the page's ids alone (an index-only walk, with their
 * spaces' versions when `space` — the space every match is in, as the caller's access check read
 * it — is not given), and only the summaries not kept are read and rendered, by id.
 */
export async function listingPage(
  em: Em,
  where: ListingSql,
  opts: { skip: number; limit: number; count: 'separate' | 'window' | 'none'; rows?: SummaryRowCache | null; space?: RowSpace },
): Promise<{ body: Buffer; count: number; total: number | null }> {
  if (opts.rows) return cachedRowsPage(em, where, { ...opts, rows: opts.rows });
  const counted = countParts(where, opts.count, opts.limit, opts.skip);
  const rows = await runListing<ListingRow>(em, listingRowsSql(em, where.sql, counted), counted.params);
  const platform = em.getPlatform();
  let json = '[';
  for (let i = 0; i < rows.length; i++) {
    if (i > 0) json += ',';
    json += summaryJson(rows[i]!, platform);
  }
  json += ']';
  const total = rows.length > 0 && opts.count !== 'none' ? Number(rows[0]!.total_count) : null;
  return { body: Buffer.from(json, 'utf8'), count: rows.length, total };
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

async function cachedRowsPage(
  em: Em,
  where: ListingSql,
  opts: { skip: number; limit: number; count: 'separate' | 'window' | 'none'; rows: SummaryRowCache; space?: RowSpace },
): Promise<{ body: Buffer; count: number; total: number | null }> {
  const counted = countParts(where, opts.count, opts.limit, opts.skip);
  const spaceColumns = opts.space ? '' : ', s.slug as space_slug, s.name as space_name, s.listing_version as space_version';
  const sql =
    `select k.id${spaceColumns}${counted.outer} ` +
    `from (select p.id, p.updated_at${opts.space ? '' : ', p.space_id'}${counted.inner} from products p where ${where.sql} ` +
    'order by p.updated_at desc, p.id desc limit ? offset ?) k ' +
    (opts.space ? '' : 'join spaces s on s.id = k.space_id ') +
    'order by k.updated_at desc, k.id desc';
  const ids = await runListing<PageIdRow>(em, sql, counted.params);
  const spaces = ids.map((row) => opts.space ?? { slug: row.space_slug!, name: row.space_name!, listing_version: row.space_version! });
  const body = await assemblePage(em, ids.map((row) => row.id), spaces, opts.rows);
  // Deleted since the id was read (products are archived, not deleted, but an admin may): the
  // page is read again as one statement.
  if (!body) return listingPage(em, where, { ...opts, rows: null });
  const total = ids.length > 0 && opts.count !== 'none' ? Number(ids[0]!.total_count) : null;
  return { body, count: ids.length, total };
}

/**
 * The JSON array of the given products' summaries, in the given order: each one kept in `rows`
 * under its key (rowKey, with `spaces[i]` the space its product is in) is reused, the others are
 * read and rendered by id in one statement and kept. null when a product is gone.
 */
async function assemblePage(em: Em, ids: readonly string[], spaces: readonly RowSpace[], rows: SummaryRowCache | null): Promise<Buffer | null> {
  const parts: Buffer[] = new Array<Buffer>(ids.length);
  const keys: string[] = new Array<string>(ids.length);
  const missing: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const key = rowKey(ids[i]!, spaces[i]!);
    keys[i] = key;
    const kept = rows?.getRow(key);
    if (kept) parts[i] = kept;
    else missing.push(ids[i]!);
  }
  if (missing.length > 0) {
    const byId = await renderById(em, missing);
    for (let i = 0; i < ids.length; i++) {
      if (parts[i]) continue;
      const json = byId.get(ids[i]!);
      if (!json) return null;
      parts[i] = json;
      rows?.setRow(keys[i]!, json);
    }
  }
  const chunks: Buffer[] = [OPEN];
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) chunks.push(COMMA);
    chunks.push(parts[i]!);
  }
  chunks.push(CLOSE);
  return Buffer.concat(chunks);
}

/** A UUID's length: a match list keeps its ids end to end, each this long. */
export const ID_LENGTH = 36;

/**
 * The first matches of one listing (one visibility condition and one set of filters) in listing
 * order: what a page of that listing needs besides its summaries, for any skip and limit inside
 * it. Kept by ListingCache under the listing's count scope and filters, whose version makes an
 * entry unreachable once anything that decides the matches or their order changes.
 */
export class MatchList {
  constructor(
    /** The ids, ID_LENGTH characters each, end to end (one flat string, not one object per id). */
    private readonly ids: string,
    /** How many matches are kept: the first `length` of the listing. */
    readonly length: number,
    /** Organization listings: the space of each match, as an index into `spaces`; null for a space listing. */
    private readonly spaceOf: Uint32Array | null,
    private readonly spaces: readonly RowSpace[] | null,
  ) {}

  /** What the list holds, in bytes (for the cache's budget). */
  get bytes(): number {
    return this.ids.length + (this.spaceOf?.byteLength ?? 0) + (this.spaces?.length ?? 0) * 160;
  }

  /** The ids from `skip`, at most `limit`. */
  idsOf(skip: number, limit: number): string[] {
    const end = Math.min(this.length, skip + limit);
    const out: string[] = [];
    for (let i = skip; i < end; i++) out.push(this.ids.slice(i * ID_LENGTH, (i + 1) * ID_LENGTH));
    return out;
  }

  /** The spaces of the ids from `skip`, at most `limit`: each its own, or `space` for a space listing. */
  spacesOf(skip: number, limit: number, space: RowSpace | undefined): RowSpace[] {
    const end = Math.min(this.length, skip + limit);
    const out: RowSpace[] = [];
    for (let i = skip; i < end; i++) out.push(this.spaceOf ? this.spaces![this.spaceOf[i]!]! : space!);
    return out;
  }
}

/**
 * The first `max` matches of `where` in listing order, as a MatchList: an index-only walk of the
 * listing's index. Without `space` (an organization listing), each match's space too, its slug,
 * name and listing_version read in a second statement: every listing_version is read after the
 * caller's scope, so before any summary is (see rowKey). null when an id is not a UUID's text
 * (a row written by hand on SQLite): such a listing is served by its statements.
 */
export async function readMatchList(em: Em, where: ListingSql, max: number, space: RowSpace | undefined): Promise<MatchList | null> {
  const sql =
    `select p.id${space ? '' : ', p.space_id'} from products p where ${where.sql} ` + 'order by p.updated_at desc, p.id desc limit ?';
  const rows = await runListing<{ id: string; space_id?: string }>(em, sql, [...where.params, max]);
  if (!rows.every((r) => r.id.length === ID_LENGTH)) return null;
  const ids = rows.map((r) => r.id).join('');
  if (space) return new MatchList(ids, rows.length, null, null);
  const spaceIds = [...new Set(rows.map((r) => r.space_id!))];
  const index = new Map(spaceIds.map((id, i) => [id, i]));
  const bySpace = idIn(em, 's.id', spaceIds);
  const found = await runListing<{ id: string; slug: string; name: string; listing_version: number | string }>(
    em,
    `select s.id, s.slug, s.name, s.listing_version from spaces s where ${bySpace.sql}`,
    bySpace.params,
  );
  const spaces: RowSpace[] = new Array<RowSpace>(spaceIds.length);
  for (const s of found) spaces[index.get(s.id)!] = { slug: s.slug, name: s.name, listing_version: s.listing_version };
  // A space deleted since its products were read: the listing is served by its statements.
  if (found.length !== spaceIds.length) return null;
  const spaceOf = Uint32Array.from(rows, (r) => index.get(r.space_id!)!);
  return new MatchList(ids, rows.length, spaceOf, spaces);
}

/**
 * A page of a listing from its match list: only its summaries are looked up (and the ones not
 * kept read by id). null when a product of the page is gone since the list was read.
 */
export async function matchListPage(
  em: Em,
  list: MatchList,
  opts: { skip: number; limit: number; rows: SummaryRowCache | null; space?: RowSpace },
): Promise<{ body: Buffer; count: number } | null> {
  const ids = list.idsOf(opts.skip, opts.limit);
  const body = await assemblePage(em, ids, list.spacesOf(opts.skip, opts.limit, opts.space), opts.rows);
  return body ? { body, count: ids.length } : null;
}

/** `column` is one of `ids`, as one parameter whatever their number (one statement text): an array on PostgreSQL, JSON on SQLite. */
function idIn(em: Em, column: string, ids: readonly string[]): ListingSql {
  return dialectOf(em) === 'postgresql'
    ? { sql: `${column} = any(?)`, params: [ids] }
    : { sql: `${column} in (select value from json_each(?))`, params: [JSON.stringify(ids)] };
}

/** The summaries of the given products, rendered, by id: one statement (a prepared one on PostgreSQL). */
async function renderById(em: Em, ids: readonly string[]): Promise<Map<string, Buffer>> {
  const byIds = idIn(em, 'p.id', ids);
  const counted = countParts(byIds, 'none', ids.length, 0);
  const rows = await runListing<ListingRow>(em, listingRowsSql(em, byIds.sql, counted), counted.params);
  const platform = em.getPlatform();
  return new Map(rows.map((r) => [r.id, ownBuffer(summaryJson(r, platform))]));
}

/**
 * The UTF-8 bytes of `text` in memory of their own. Buffer.from puts small buffers in shared
 * 8 KiB slabs, and a kept summary would keep its whole slab alive after the others in it were
 * evicted: the cache's byte budget would no longer bound what it holds.
 */
function ownBuffer(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text, 'utf8'));
  bytes.write(text, 'utf8');
  return bytes;
}

const str = (s: string) => JSON.stringify(s);
const strOrNull = (s: string | null | undefined) => (s === null || s === undefined ? 'null' : JSON.stringify(s));
const boolOrNull = (b: boolean | number | null | undefined) => (b === null || b === undefined ? 'null' : b ? 'true' : 'false');
const numOrNull = (n: number | string | null | undefined) => (n === null || n === undefined ? 'null' : JSON.stringify(Number(n)));
/** A JSON column as the summary shows it: PostgreSQL hands over parsed jsonb, SQLite text. */
const jsonOrNull = (v: unknown) => (v === null || v === undefined ? 'null' : JSON.stringify(typeof v === 'string' ? JSON.parse(v) : v));
/** PostgreSQL's text for a timestamptz in UTC (DateStyle ISO): '2026-03-04 05:06:07.123456+00'. */
const PG_UTC_TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.(\d{1,6}))?\+00$/;

/**
 * A datetime as the summary shows it (JSON string of toISOString()). PostgreSQL's UTC text is
 * rewritten directly (milliseconds truncated, as the ORM's parsing does); anything else is parsed
 * the way the ORM parses it.
 */
function isoOf(value: unknown, platform: { parseDate(value: string | number): Date | string }): string {
  if (typeof value === 'string') {
    const m = PG_UTC_TIMESTAMP.exec(value);
    if (m) return `"${value.slice(0, 10)}T${value.slice(11, 19)}.${m[1] ? `${m[1]}00`.slice(0, 3) : '000'}Z"`;
  }
  const date = value instanceof Date ? value : platform.parseDate(value as string | number);
  if (!(date instanceof Date)) throw new TypeError(`not a datetime: ${String(value)}`);
  return JSON.stringify(date.toISOString());
}

/** One ModelSummary as JSON: the members, their order and their values of toSummary's object. */
function summaryJson(r: ListingRow, platform: { parseDate(value: string | number): Date | string }): string {
  const formatted = r.a_id ? (r.a_inspected_format ?? modelFormat(r.a_file_name ?? '', jsonObject(r.a_metadata))) : null;
  return (
    `{"id":${str(r.id)},"slug":${str(r.slug)},"name":${str(r.name)},"description":${strOrNull(r.description)}` +
    `,"long_description":${strOrNull(r.long_description)},"product_type":${str(r.product_type)}` +
    `,"provider":${strOrNull(r.provider)},"space_id":${str(r.space_id)},"space_slug":${str(r.space_slug)}` +
    `,"space_name":${str(r.space_name)},"risk_classification":${strOrNull(r.risk_classification)}` +
    `,"lifecycle_stage":${strOrNull(r.lifecycle_stage)},"environment":${str(r.environment)}` +
    `,"deployment_status":${str(r.deployment_status)},"model_family":${strOrNull(r.model_family)}` +
    `,"model_task_type":${strOrNull(r.model_task_type)},"model_architecture":${strOrNull(r.model_architecture)}` +
    `,"framework":${strOrNull(r.framework)},"intended_use":${strOrNull(r.intended_use)}` +
    `,"limitations":${strOrNull(r.limitations)},"serving_url":${strOrNull(r.serving_url)}` +
    `,"input_schema":${jsonOrNull(r.input_schema)},"output_schema":${jsonOrNull(r.output_schema)}` +
    `,"ai_system_type":${strOrNull(r.ai_system_type)},"vendor_name":${strOrNull(r.vendor_name)}` +
    `,"vendor_product_name":${strOrNull(r.vendor_product_name)},"vendor_model_id":${strOrNull(r.vendor_model_id)}` +
    `,"deployment_environment":${strOrNull(r.deployment_environment)},"business_use_case":${strOrNull(r.business_use_case)}` +
    `,"is_gpai":${boolOrNull(r.is_gpai)},"is_archived":${r.is_archived ? 'true' : 'false'}` +
    `,"version_count":${JSON.stringify(Number(r.version_count))},"current_version_id":${strOrNull(r.v_id)}` +
    `,"current_version_number":${numOrNull(r.v_number)},"current_version_type":${strOrNull(r.v_type)}` +
    `,"current_version_release_date":${r.v_release_date ? str(dateOnly(r.v_release_date)) : 'null'}` +
    `,"current_version_approval_status":${strOrNull(r.v_approval_status)}` +
    `,"artifact_count":${JSON.stringify(Number(r.artifact_count))},"current_artifact_id":${strOrNull(r.a_id)}` +
    `,"current_artifact_file_name":${strOrNull(r.a_file_name)},"current_artifact_kind":${strOrNull(r.a_kind)}` +
    `,"current_artifact_content_type":${strOrNull(r.a_content_type)},"current_artifact_model_format":${strOrNull(formatted)}` +
    `,"current_artifact_sha256":${strOrNull(r.a_sha256)},"current_artifact_size_bytes":${numOrNull(r.a_size_bytes)}` +
    `,"current_artifact_parameter_count":${numOrNull(r.a_parameter_count)}` +
    `,"created_at":${isoOf(r.created_at, platform)},"updated_at":${isoOf(r.updated_at, platform)}}`
  );
}
