/**
 * Field limits and the fixed value sets the database stores. The ONE place the spec author,
 * the validators and the column definitions take them from. Lengths are in characters.
 */
export const LIMITS = {
  slug: 100,
  name: 200,
  description: 2000,
  long_description: 20_000,
  /** provider, environment, lifecycle_stage, model_family, model_task_type, model_architecture,
   * framework, risk_classification, deployment_status, product_type, ai_system_type,
   * vendor_name, vendor_product_name, vendor_model_id, deployment_environment,
   * version_label, artifact_kind, api key name, user name. */
  short_text: 200,
  /** intended_use, limitations, business_use_case. */
  medium_text: 5000,
  /** serving_url, external_uri, storage_uri. */
  url: 2048,
  file_name: 1024,
  content_type: 255,
  email: 254,
  /** Product version notes. */
  notes: 10_000,
  /** Serialized size of a JSON value (input_schema, output_schema, artifact metadata). */
  json_bytes: 65_536,
  /** Object keys in storage. */
  storage_key: 1024,
  failure_reason: 2000,
  /** Event type names ("artifact.created"). */
  event_type: 64,
  /** Reason given when an alias is set or moved. */
  alias_reason: 1000,
  /** A review's comment. */
  review_comment: 5000,
  /** A webhook's description. */
  webhook_description: 1000,
  /** What a delivery keeps of a failed attempt (error text, start of the response body). */
  webhook_error: 1000,
} as const;

/** Lowercase words joined by single hyphens: "churn-model-v2". */
export const SLUG_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
/** The same pattern as a string, for the OpenAPI document. */
export const SLUG_PATTERN_SOURCE = '^[a-z0-9]+(?:-[a-z0-9]+)*$';

export const ORGANIZATION_ROLES = ['owner', 'admin', 'member'] as const;
export type OrganizationRole = (typeof ORGANIZATION_ROLES)[number];

export const SPACE_ROLES = ['admin', 'editor', 'viewer'] as const;
export type SpaceRole = (typeof SPACE_ROLES)[number];

export const PRODUCT_GRANT_ACCESS = ['view', 'edit'] as const;
export type ProductGrantAccess = (typeof PRODUCT_GRANT_ACCESS)[number];

export const VERSION_TYPES = ['major', 'minor', 'patch'] as const;
export type VersionType = (typeof VERSION_TYPES)[number];

/** 'aborted' is internal: an aborted session answers 404 and only waits for the sweeper. */
export const UPLOAD_STATUSES = ['initialized', 'uploading', 'completed', 'failed', 'expired', 'aborted'] as const;
export type UploadStatus = (typeof UPLOAD_STATUSES)[number];

export const ARTIFACT_STATUSES = ['available', 'deleted', 'failed'] as const;
export type ArtifactStatus = (typeof ARTIFACT_STATUSES)[number];

/** Every kind of change the audit trail records (docs/architecture.md, "Events"). */
export const EVENT_TYPES = [
  'model.created',
  'model.updated',
  'model.archived',
  'version.created',
  'version.reviewed',
  'alias.set',
  'alias.deleted',
  'artifact.created',
  'artifact.deleted',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Space promotion policies: `none` gates nothing; `risk_based` gates production by risk class. */
export const PROMOTION_POLICIES = ['none', 'risk_based'] as const;
export type PromotionPolicy = (typeof PROMOTION_POLICIES)[number];

/** A version's approval status: `pending` until reviewed, then the latest review's decision. */
export const APPROVAL_STATUSES = ['pending', 'approved', 'rejected'] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

export const REVIEW_DECISIONS = ['approved', 'rejected'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

/** Alias names: a lowercase letter, then up to 62 lowercase letters, digits, `_` or `-`. */
export const ALIAS_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/;
export const ALIAS_NAME_PATTERN_SOURCE = '^[a-z][a-z0-9_-]{0,62}$';

/** The alias whose moves the promotion policy gates. */
export const PRODUCTION_ALIAS = 'production';

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'succeeded', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];
