/**
 * All entities, defined with `defineEntity` (no decorators: tsx has no emitDecoratorMetadata).
 * They run unchanged on SQLite (libsql) and PostgreSQL.
 *
 * Conventions:
 * - TS property names are the snake_case column names (the API is snake_case too); a M:1
 *   property `space` is the column `space_id`. Relations are plain entity references (not Ref):
 *   `product.space.id` is always there, other fields of a relation only after `populate`.
 * - Primary keys are UUIDs generated in the app. With `processOnCreateHooksEarly` (set in
 *   orm.ts) `em.create()` fills `id`, `created_at`, `updated_at` and defaults at once, so ids
 *   are usable before the flush.
 * - Table names are plural (`users`, not the reserved `user`).
 * - "One current per product" is enforced by partial unique indexes (see below): clear the old
 *   current row with `em.nativeUpdate` BEFORE flushing the new current one, in one transaction.
 */
import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import {
  APPROVAL_STATUSES,
  ARTIFACT_STATUSES,
  LIMITS,
  ORGANIZATION_ROLES,
  PRODUCT_GRANT_ACCESS,
  PROMOTION_POLICIES,
  REVIEW_DECISIONS,
  SPACE_ROLES,
  UPLOAD_STATUSES,
  VERSION_TYPES,
  WEBHOOK_DELIVERY_STATUSES,
} from './limits.ts';

export * from './limits.ts';

export type JsonObject = Record<string, unknown>;

const id = () => p.uuid().primary().onCreate(() => randomUUID());
const createdAt = () => p.datetime().onCreate(() => new Date());
const updatedAt = () =>
  p
    .datetime()
    .onCreate(() => new Date())
    .onUpdate(() => new Date());
const shortText = () => p.string().length(LIMITS.short_text);

// ─── tenancy and users ───────────────────────────────────────────────────────────────────

export const Organization = defineEntity({
  name: 'Organization',
  tableName: 'organizations',
  properties: {
    id: id(),
    slug: p.string().length(LIMITS.slug).unique(),
    name: p.string().length(LIMITS.name),
    /**
     * Bumped by database triggers (see the organization listing migrations) whenever a product of
     * the organization (or a version or artifact of one), a membership of the organization or of
     * one of its spaces, or a grant on one of its products changes: everything an organization
     * listing's total depends on, for any caller. A total cached under it is exact while it holds.
     */
    listing_version: p.bigint('number').default(0),
    /** PostgreSQL: the transaction that last bumped listing_version (each bumps it once); unused on SQLite. */
    listing_xact: p.bigint('number').nullable(),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
});
export type Organization = InferEntity<typeof Organization>;

export const Space = defineEntity({
  name: 'Space',
  tableName: 'spaces',
  properties: {
    id: id(),
    organization: p.manyToOne(Organization),
    /** Unique across the installation: space paths carry no organization. */
    slug: p.string().length(LIMITS.slug).unique(),
    name: p.string().length(LIMITS.name),
    /** Catalog capacity; null = unlimited. Archived products count. */
    product_limit: p.integer().nullable(),
    /** What promoting a product to production requires (see services/promotion.ts). */
    promotion_policy: p
      .enum([...PROMOTION_POLICIES])
      .default('none')
      .onCreate(() => 'none'),
    /**
     * Bumped by database triggers (see the listing_version migrations) whenever a product of the
     * space, or one of their versions or artifacts, is inserted, updated or deleted. A cached
     * rendering of the space's listing is valid exactly as long as this number is unchanged.
     */
    listing_version: p.bigint('number').default(0),
    /** PostgreSQL: the transaction that last bumped listing_version (each bumps it once); unused on SQLite. */
    listing_xact: p.bigint('number').nullable(),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
});
export type Space = InferEntity<typeof Space>;

export const User = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: id(),
    /** Stored lowercased (the admin service lowercases). */
    email: p.string().length(LIMITS.email).unique(),
    name: p.string().length(LIMITS.short_text).nullable(),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
});
export type User = InferEntity<typeof User>;
/**
 * Who a request acts for. Authentication reads the user's id with the API key and nothing more
 * is needed to check access or to record who did what, so requests carry this, not an entity.
 */
export type Caller = Pick<User, 'id'>;

export const ApiKey = defineEntity({
  name: 'ApiKey',
  tableName: 'api_keys',
  properties: {
    id: id(),
    user: p.manyToOne(User),
    name: p.string().length(LIMITS.short_text).nullable(),
    /** sha256 hex of the raw key; the raw key is never stored. */
    key_hash: p.string().length(64).unique(),
    /** First 8 characters of the raw key, for display. */
    key_prefix: p.string().length(16),
    created_at: createdAt(),
    last_used_at: p.datetime().nullable(),
    revoked_at: p.datetime().nullable(),
  },
});
export type ApiKey = InferEntity<typeof ApiKey>;

export const OrganizationMembership = defineEntity({
  name: 'OrganizationMembership',
  tableName: 'organization_memberships',
  properties: {
    id: id(),
    organization: p.manyToOne(Organization).deleteRule('cascade'),
    user: p.manyToOne(User).deleteRule('cascade'),
    role: p.enum([...ORGANIZATION_ROLES]),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  uniques: [{ properties: ['organization', 'user'] }],
  indexes: [{ properties: ['user'] }],
});
export type OrganizationMembership = InferEntity<typeof OrganizationMembership>;

export const SpaceMembership = defineEntity({
  name: 'SpaceMembership',
  tableName: 'space_memberships',
  properties: {
    id: id(),
    space: p.manyToOne(Space).deleteRule('cascade'),
    user: p.manyToOne(User).deleteRule('cascade'),
    role: p.enum([...SPACE_ROLES]),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  uniques: [{ properties: ['space', 'user'] }],
  indexes: [{ properties: ['user'] }],
});
export type SpaceMembership = InferEntity<typeof SpaceMembership>;

// ─── catalog ─────────────────────────────────────────────────────────────────────────────

/** The fields `q` searches, in the order they are concatenated into `search_text`. */
export const PRODUCT_SEARCH_FIELDS = [
  'name',
  'slug',
  'description',
  'provider',
  'model_architecture',
  'framework',
  'vendor_name',
  'vendor_product_name',
  'vendor_model_id',
] as const;

/**
 * The lowercase haystack behind `q`. The Product entity keeps it current through its
 * beforeCreate/beforeUpdate hooks on every flush; code that changes a searched field with
 * `nativeUpdate` or a query builder must set `search_text: productSearchText(merged)` itself.
 * Fields are joined with "\n" so a term never matches across two fields.
 */
export function productSearchText(
  product: Partial<Record<(typeof PRODUCT_SEARCH_FIELDS)[number], string | null | undefined>>,
): string {
  return PRODUCT_SEARCH_FIELDS.map((f) => product[f])
    .filter((v): v is string => typeof v === 'string' && v !== '')
    .join('\n')
    .toLowerCase();
}

export const Product = defineEntity({
  name: 'Product',
  tableName: 'products',
  properties: {
    id: id(),
    space: p.manyToOne(Space),
    /**
     * The space's organization, copied by database triggers on insert and whenever the space
     * changes (never written by the app): the organization listing's index starts with it.
     */
    organization_id: p.uuid().nullable(),
    slug: p.string().length(LIMITS.slug),
    name: p.string().length(LIMITS.name),
    description: p.string().length(LIMITS.description).nullable(),
    long_description: p.text().nullable(),
    product_type: shortText(),
    provider: shortText().nullable(),
    environment: shortText(),
    risk_classification: shortText().nullable(),
    lifecycle_stage: shortText().nullable(),
    model_family: shortText().nullable(),
    model_task_type: shortText().nullable(),
    model_architecture: shortText().nullable(),
    framework: shortText().nullable(),
    intended_use: p.text().nullable(),
    limitations: p.text().nullable(),
    deployment_status: shortText(),
    serving_url: p.string().length(LIMITS.url).nullable(),
    input_schema: p.json<JsonObject>().nullable(),
    output_schema: p.json<JsonObject>().nullable(),
    ai_system_type: shortText().nullable(),
    vendor_name: shortText().nullable(),
    vendor_product_name: shortText().nullable(),
    vendor_model_id: shortText().nullable(),
    deployment_environment: shortText().nullable(),
    business_use_case: p.text().nullable(),
    is_gpai: p.boolean().nullable(),
    is_archived: p
      .boolean()
      .default(false)
      .onCreate(() => false),
    created_by: p.manyToOne(User).nullable().deleteRule('set null'),
    /** See productSearchText. On PostgreSQL a pg_trgm GIN index serves `LIKE '%term%'`. */
    search_text: p.text().onCreate((e: Record<string, string | null | undefined>) => productSearchText(e)),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  uniques: [{ properties: ['space', 'slug'] }],
  indexes: [
    { properties: ['space', 'is_archived', 'updated_at', 'id'] },
    // The organization listing's index (organization_id, updated_at, id, is_archived) is hand-written
    // (see Migration20261203171500): on PostgreSQL it INCLUDEs the filtered columns.
    { properties: ['updated_at', 'id'] },
    { properties: ['model_family'] },
    { properties: ['deployment_status'] },
    { properties: ['model_task_type'] },
    { properties: ['risk_classification'] },
    { properties: ['product_type'] },
    // Also "has the caller created a product of the organization outside their spaces" (index-only).
    { properties: ['created_by', 'organization_id', 'space'] },
  ],
  hooks: {
    beforeCreate: [({ entity }) => void (entity.search_text = productSearchText(entity))],
    beforeUpdate: [({ entity }) => void (entity.search_text = productSearchText(entity))],
  },
});
export type Product = InferEntity<typeof Product>;

export const ProductGrant = defineEntity({
  name: 'ProductGrant',
  tableName: 'product_grants',
  properties: {
    id: id(),
    product: p.manyToOne(Product).deleteRule('cascade'),
    user: p.manyToOne(User).deleteRule('cascade'),
    access: p.enum([...PRODUCT_GRANT_ACCESS]),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  uniques: [{ properties: ['product', 'user'] }],
  indexes: [{ properties: ['user'] }],
});
export type ProductGrant = InferEntity<typeof ProductGrant>;

export const ProductVersion = defineEntity({
  name: 'ProductVersion',
  tableName: 'product_versions',
  properties: {
    id: id(),
    product: p.manyToOne(Product).deleteRule('cascade'),
    version_number: p.integer(),
    version_type: p.enum([...VERSION_TYPES]),
    /** 'YYYY-MM-DD'. */
    release_date: p.date().nullable(),
    notes: p.text().nullable(),
    is_current: p.boolean(),
    /** Who created the version: the four-eyes rule keeps them from approving it. */
    created_by: p.manyToOne(User).nullable().deleteRule('set null'),
    /** The decision of the latest review (`pending` before any), kept with the review insert. */
    approval_status: p
      .enum([...APPROVAL_STATUSES])
      .default('pending')
      .onCreate(() => 'pending'),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  uniques: [
    { properties: ['product', 'version_number'] },
    {
      name: 'product_versions_one_current',
      expression:
        'create unique index product_versions_one_current on product_versions (product_id) where is_current = true',
    },
  ],
});
export type ProductVersion = InferEntity<typeof ProductVersion>;

/**
 * A named pointer to one version of a product. The row outlives a DELETE as a tombstone
 * (`version` null) so `row_version` keeps counting: it orders the alias's history and makes the
 * ETag, and every change is a compare-and-set on it (`where row_version = n`), which is what
 * lets two processes move one alias without losing an update, on SQLite and PostgreSQL alike.
 * The (product, name) unique key settles two concurrent creations.
 */
export const ProductAlias = defineEntity({
  name: 'ProductAlias',
  tableName: 'product_aliases',
  properties: {
    id: id(),
    product: p.manyToOne(Product).deleteRule('cascade'),
    name: p.string().length(64),
    /** null: deleted (a tombstone, invisible to the API). */
    version: p.manyToOne(ProductVersion).nullable().deleteRule('set null'),
    updated_by: p.manyToOne(User).nullable().deleteRule('set null'),
    row_version: p.integer(),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  uniques: [{ properties: ['product', 'name'] }],
  indexes: [{ properties: ['version'] }],
});
export type ProductAlias = InferEntity<typeof ProductAlias>;

/** One change of an alias: a set, a move or a deletion (`version` null). Append-only. */
export const AliasChange = defineEntity({
  name: 'AliasChange',
  tableName: 'alias_changes',
  properties: {
    id: id(),
    alias: p.manyToOne(ProductAlias).deleteRule('cascade'),
    /** The alias's row_version this change produced: the order of its history. */
    sequence: p.integer(),
    version: p.manyToOne(ProductVersion).nullable().deleteRule('set null'),
    previous_version: p.manyToOne(ProductVersion).nullable().deleteRule('set null'),
    changed_by: p.manyToOne(User).nullable().deleteRule('set null'),
    changed_at: p.datetime(),
    reason: p.string().length(LIMITS.alias_reason).nullable(),
  },
  uniques: [{ properties: ['alias', 'sequence'] }],
});
export type AliasChange = InferEntity<typeof AliasChange>;

export const VersionReview = defineEntity({
  name: 'VersionReview',
  tableName: 'version_reviews',
  properties: {
    id: id(),
    version: p.manyToOne(ProductVersion).deleteRule('cascade'),
    decision: p.enum([...REVIEW_DECISIONS]),
    comment: p.text().nullable(),
    reviewer: p.manyToOne(User).nullable().deleteRule('set null'),
    created_at: createdAt(),
  },
  indexes: [{ properties: ['version', 'created_at'] }],
});
export type VersionReview = InferEntity<typeof VersionReview>;

// ─── artifacts and uploads ───────────────────────────────────────────────────────────────

export const ModelArtifact = defineEntity({
  name: 'ModelArtifact',
  tableName: 'model_artifacts',
  properties: {
    id: id(),
    product: p.manyToOne(Product).deleteRule('cascade'),
    product_version: p.manyToOne(ProductVersion).nullable().deleteRule('set null'),
    training_run_id: p.uuid().nullable(),
    artifact_kind: shortText(),
    version_label: shortText().nullable(),
    file_name: p.string().length(LIMITS.file_name),
    content_type: p.string().length(LIMITS.content_type),
    size_bytes: p.bigint('number'),
    sha256: p.string().length(64),
    storage_backend: p.string().length(16),
    storage_key: p.string().length(LIMITS.storage_key),
    storage_uri: p.string().length(LIMITS.url),
    external_uri: p.string().length(LIMITS.url).nullable(),
    status: p.enum([...ARTIFACT_STATUSES]),
    is_current: p.boolean(),
    metadata: p.json<JsonObject>().nullable(),
    /** What the file's header says (services/inspections.ts); null: not a recognised format, or not read yet. */
    inspection: p.json<JsonObject>().nullable(),
    /** `inspection.format` and `inspection.parameter_count`, as columns for the summary query. */
    inspected_format: p.string().length(32).nullable(),
    parameter_count: p.bigint('number').nullable(),
    uploaded_by: p.manyToOne(User).nullable().deleteRule('set null'),
    uploaded_at: p.datetime(),
    deleted_at: p.datetime().nullable(),
    /** Set once the bytes are gone from storage (the record stays for audit). */
    bytes_removed_at: p.datetime().nullable(),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  indexes: [{ properties: ['product', 'status', 'created_at'] }, { properties: ['sha256'] }, { properties: ['storage_key'] }],
  uniques: [
    {
      name: 'model_artifacts_one_current',
      expression:
        "create unique index model_artifacts_one_current on model_artifacts (product_id) where is_current = true and status = 'available'",
    },
  ],
});
export type ModelArtifact = InferEntity<typeof ModelArtifact>;

export const UploadSession = defineEntity({
  name: 'UploadSession',
  tableName: 'upload_sessions',
  properties: {
    id: id(),
    product: p.manyToOne(Product).deleteRule('cascade'),
    /** The id the artifact created by completion gets (known from the start: staging keys use it). */
    artifact_id: p.uuid().unique(),
    file_name: p.string().length(LIMITS.file_name),
    content_type: p.string().length(LIMITS.content_type),
    total_size_bytes: p.bigint('number'),
    chunk_size_bytes: p.integer(),
    chunk_count: p.integer(),
    expected_sha256: p.string().length(64).nullable(),
    artifact_kind: shortText(),
    version_label: shortText().nullable(),
    product_version_id: p.uuid().nullable(),
    training_run_id: p.uuid().nullable(),
    is_current: p.boolean(),
    external_uri: p.string().length(LIMITS.url).nullable(),
    metadata: p.json<JsonObject>().nullable(),
    status: p.enum([...UPLOAD_STATUSES]),
    received_bytes: p
      .bigint('number')
      .default(0)
      .onCreate(() => 0),
    storage_backend: p.string().length(16),
    staging_key: p.string().length(LIMITS.storage_key),
    /** S3 multipart UploadId. */
    storage_upload_id: p.string().length(1024).nullable(),
    /** Serialized resumable SHA-256 state of chunks [0, hashed_chunks). */
    hash_state: p.text().nullable(),
    hashed_chunks: p
      .integer()
      .default(0)
      .onCreate(() => 0),
    /** A chunk inside the hashed prefix was replaced: completion hashes everything again. */
    hash_broken: p
      .boolean()
      .default(false)
      .onCreate(() => false),
    /**
     * The received chunks as a bitmap in hex (chunk i is bit i % 8 of byte i / 8, least significant
     * first: PostgreSQL's get_bit/set_bit numbering), maintained with `received_bytes` by triggers on
     * upload_chunks, so it never disagrees with the chunk rows (upload-session-sql.ts). Null: not
     * tracked (read the chunk rows).
     */
    received_map: p.text().nullable(),
    /** Instant upload: the bytes with `expected_sha256` were already stored; no chunk is sent. */
    deduplicated: p
      .boolean()
      .default(false)
      .onCreate(() => false),
    created_by: p.manyToOne(User),
    expires_at: p.datetime(),
    completed_at: p.datetime().nullable(),
    /** Staged bytes removed (by completion, failure, abort or the sweeper). */
    cleaned_at: p.datetime().nullable(),
    failure_reason: p.string().length(LIMITS.failure_reason).nullable(),
    /**
     * Optimistic-lock version: a flush of a changed session adds `where row_version = n` and
     * bumps it (a lost race throws OptimisticLockError). A `nativeUpdate` must do both itself:
     * `nativeUpdate({ id, row_version: n }, { …, row_version: n + 1 })` and check the count.
     */
    row_version: p.integer().version(),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  indexes: [{ properties: ['status', 'expires_at'] }, { properties: ['product'] }],
});
export type UploadSession = InferEntity<typeof UploadSession>;

export const UploadChunk = defineEntity({
  name: 'UploadChunk',
  tableName: 'upload_chunks',
  properties: {
    id: id(),
    session: p.manyToOne(UploadSession).deleteRule('cascade'),
    chunk_index: p.integer(),
    size_bytes: p.integer(),
    sha256: p.string().length(64),
    /** S3 part ETag. */
    etag: p.string().length(256).nullable(),
    received_at: p.datetime(),
  },
  uniques: [{ properties: ['session', 'chunk_index'] }],
});
export type UploadChunk = InferEntity<typeof UploadChunk>;

// ─── events (the audit trail and outbox) ─────────────────────────────────────────────────

/**
 * One change, written by services/events.ts `recordEvent` in the transaction of the change itself
 * (a rolled-back change leaves no event). Append-only: nothing updates or deletes a row.
 *
 * `seq` is the order readers and the webhook worker follow: an identity/autoincrement primary key
 * (SQLite autoincrements only an INTEGER PRIMARY KEY, so the public `id` is a unique UUID beside
 * it). Within a space, `seq` order is commit order: recordEvent takes the space's row lock on
 * PostgreSQL before drawing the number, and SQLite has one writer at a time.
 *
 * The scope columns are plain UUIDs without foreign keys: the trail outlives what it describes.
 */
export const Event = defineEntity({
  name: 'Event',
  tableName: 'events',
  properties: {
    seq: p.bigint('number').primary().autoincrement(),
    id: p.uuid().unique().onCreate(() => randomUUID()),
    type: p.string().length(LIMITS.event_type),
    occurred_at: p.datetime(),
    /** The user who made the change; null for the system (none such yet). */
    actor_id: p.uuid().nullable(),
    organization_id: p.uuid(),
    space_id: p.uuid(),
    product_id: p.uuid().nullable(),
    /** The model, version, alias history entry or artifact the event is about. */
    subject_id: p.uuid().nullable(),
    data: p.json<JsonObject>(),
  },
  indexes: [{ properties: ['space_id', 'seq'] }, { properties: ['product_id', 'seq'] }, { properties: ['occurred_at'] }],
});
export type Event = InferEntity<typeof Event>;

// ─── webhooks ────────────────────────────────────────────────────────────────────────────

export const Webhook = defineEntity({
  name: 'Webhook',
  tableName: 'webhooks',
  properties: {
    id: id(),
    space: p.manyToOne(Space).deleteRule('cascade'),
    url: p.string().length(LIMITS.url),
    /** Subscribed event types, or ['*']. */
    events: p.json<string[]>(),
    description: p.string().length(LIMITS.webhook_description).nullable(),
    active: p.boolean(),
    /** `whsec_…` (Standard Webhooks): the key deliveries are signed with; the API shows it only on create and rotate. */
    secret: p.string().length(64),
    created_by: p.manyToOne(User).nullable().deleteRule('set null'),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  indexes: [{ properties: ['space', 'active'] }],
});
export type Webhook = InferEntity<typeof Webhook>;

/**
 * One event to send to one webhook, queued in the event's own transaction. The worker claims due
 * rows by pushing `next_attempt_at` past the attempt and stamping `claim_token`; an attempt's
 * result is written only while the token is still the one it claimed with.
 */
export const WebhookDelivery = defineEntity({
  name: 'WebhookDelivery',
  tableName: 'webhook_deliveries',
  properties: {
    /** Also the `webhook-id` header: the same on every attempt. */
    id: id(),
    webhook: p.manyToOne(Webhook).deleteRule('cascade'),
    event_id: p.uuid(),
    event_type: p.string().length(64),
    /** The exact request body (the event as the events API shows it), signed as is. */
    payload: p.text(),
    status: p.enum([...WEBHOOK_DELIVERY_STATUSES]),
    attempts: p.integer(),
    last_status_code: p.integer().nullable(),
    last_error: p.string().length(LIMITS.webhook_error).nullable(),
    /** When the next attempt is due; while an attempt is in flight, when its claim lapses. Null once finished. */
    next_attempt_at: p.datetime().nullable(),
    claim_token: p.uuid().nullable(),
    created_at: createdAt(),
    delivered_at: p.datetime().nullable(),
  },
  indexes: [{ properties: ['status', 'next_attempt_at'] }, { properties: ['webhook', 'created_at'] }, { properties: ['created_at'] }],
});
export type WebhookDelivery = InferEntity<typeof WebhookDelivery>;

/**
 * Named leases between server processes. On SQLite the delivery worker of one process at a time
 * holds the lease `webhook-delivery` (PostgreSQL needs none: claims use FOR UPDATE SKIP LOCKED).
 */
export const WorkerLease = defineEntity({
  name: 'WorkerLease',
  tableName: 'worker_leases',
  properties: {
    name: p.string().length(64).primary(),
    holder: p.uuid(),
    expires_at: p.datetime(),
  },
});
export type WorkerLease = InferEntity<typeof WorkerLease>;

/**
 * Content-addressed storage (services/content-blobs.ts): the one stored copy of each SHA-256.
 * `storage_key` is where its bytes are (the key of the upload that stored them first);
 * `ref_count` is the number of non-deleted artifacts whose `storage_key` it is, changed in the
 * same transaction as those artifact rows. The row goes when its count reaches 0.
 */
export const ContentBlob = defineEntity({
  name: 'ContentBlob',
  tableName: 'content_blobs',
  properties: {
    sha256: p.string().length(64).primary(),
    size_bytes: p.bigint('number'),
    storage_key: p.string().length(LIMITS.storage_key).unique(),
    ref_count: p.integer(),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
});
export type ContentBlob = InferEntity<typeof ContentBlob>;

/**
 * Bytes to remove from storage, queued in the transaction that made them unreferenced (a released
 * last reference, the duplicate copy of an upload whose digest was already stored). Removed right
 * after the commit; the sweeper retries what is left. Never removed while a blob row or a
 * non-deleted artifact still names the key.
 */
export const BlobDeletion = defineEntity({
  name: 'BlobDeletion',
  tableName: 'blob_deletions',
  properties: {
    storage_key: p.string().length(LIMITS.storage_key).primary(),
    /** Not before this time (a grace period for downloads that already hold a URL to the key). */
    not_before: p.datetime(),
    created_at: createdAt(),
  },
});
export type BlobDeletion = InferEntity<typeof BlobDeletion>;

export const ALL_ENTITIES = [
  Organization,
  Space,
  User,
  ApiKey,
  OrganizationMembership,
  SpaceMembership,
  Product,
  ProductGrant,
  ProductVersion,
  ProductAlias,
  AliasChange,
  VersionReview,
  ModelArtifact,
  UploadSession,
  UploadChunk,
  Event,
  Webhook,
  WebhookDelivery,
  WorkerLease,
  ContentBlob,
  BlobDeletion,
];
