import { Migration } from '@mikro-orm/migrations';

export class Migration20261127093203 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "organizations" ("id" uuid not null, "slug" varchar(100) not null, "name" varchar(200) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "organizations_pkey" primary key ("id"));`);
    this.addSql(`alter table "organizations" add constraint "organizations_slug_unique" unique ("slug");`);

    this.addSql(`create table "spaces" ("id" uuid not null, "organization_id" uuid not null, "slug" varchar(100) not null, "name" varchar(200) not null, "product_limit" int null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "spaces_pkey" primary key ("id"));`);
    this.addSql(`alter table "spaces" add constraint "spaces_slug_unique" unique ("slug");`);

    this.addSql(`create table "users" ("id" uuid not null, "email" varchar(254) not null, "name" varchar(200) null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "users_pkey" primary key ("id"));`);
    this.addSql(`alter table "users" add constraint "users_email_unique" unique ("email");`);

    this.addSql(`create table "space_memberships" ("id" uuid not null, "space_id" uuid not null, "user_id" uuid not null, "role" text check ("role" in ('admin', 'editor', 'viewer')) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "space_memberships_pkey" primary key ("id"));`);
    this.addSql(`create index "space_memberships_user_id_index" on "space_memberships" ("user_id");`);
    this.addSql(`alter table "space_memberships" add constraint "space_memberships_space_id_user_id_unique" unique ("space_id", "user_id");`);

    this.addSql(`create table "products" ("id" uuid not null, "space_id" uuid not null, "slug" varchar(100) not null, "name" varchar(200) not null, "description" varchar(2000) null, "long_description" text null, "product_type" varchar(200) not null, "provider" varchar(200) null, "environment" varchar(200) not null, "risk_classification" varchar(200) null, "lifecycle_stage" varchar(200) null, "model_family" varchar(200) null, "model_task_type" varchar(200) null, "model_architecture" varchar(200) null, "framework" varchar(200) null, "intended_use" text null, "limitations" text null, "deployment_status" varchar(200) not null, "serving_url" varchar(2048) null, "input_schema" jsonb null, "output_schema" jsonb null, "ai_system_type" varchar(200) null, "vendor_name" varchar(200) null, "vendor_product_name" varchar(200) null, "vendor_model_id" varchar(200) null, "deployment_environment" varchar(200) null, "business_use_case" text null, "is_gpai" boolean null, "is_archived" boolean not null default false, "created_by_id" uuid null, "search_text" text not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "products_pkey" primary key ("id"));`);
    this.addSql(`create index "products_space_id_is_archived_updated_at_id_index" on "products" ("space_id", "is_archived", "updated_at", "id");`);
    this.addSql(`create index "products_updated_at_id_index" on "products" ("updated_at", "id");`);
    this.addSql(`create index "products_model_family_index" on "products" ("model_family");`);
    this.addSql(`create index "products_deployment_status_index" on "products" ("deployment_status");`);
    this.addSql(`create index "products_model_task_type_index" on "products" ("model_task_type");`);
    this.addSql(`create index "products_risk_classification_index" on "products" ("risk_classification");`);
    this.addSql(`create index "products_product_type_index" on "products" ("product_type");`);
    this.addSql(`create index "products_created_by_id_index" on "products" ("created_by_id");`);
    this.addSql(`alter table "products" add constraint "products_space_id_slug_unique" unique ("space_id", "slug");`);

    this.addSql(`create table "upload_sessions" ("id" uuid not null, "product_id" uuid not null, "artifact_id" uuid not null, "file_name" varchar(1024) not null, "content_type" varchar(255) not null, "total_size_bytes" bigint not null, "chunk_size_bytes" int not null, "chunk_count" int not null, "expected_sha256" varchar(64) null, "artifact_kind" varchar(200) not null, "version_label" varchar(200) null, "product_version_id" uuid null, "training_run_id" uuid null, "is_current" boolean not null, "external_uri" varchar(2048) null, "metadata" jsonb null, "status" text check ("status" in ('initialized', 'uploading', 'completed', 'failed', 'expired', 'aborted')) not null, "received_bytes" bigint not null default 0, "storage_backend" varchar(16) not null, "staging_key" varchar(1024) not null, "storage_upload_id" varchar(1024) null, "hash_state" text null, "hashed_chunks" int not null default 0, "hash_broken" boolean not null default false, "created_by_id" uuid not null, "expires_at" timestamptz not null, "completed_at" timestamptz null, "cleaned_at" timestamptz null, "failure_reason" varchar(2000) null, "row_version" int not null default 1, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "upload_sessions_pkey" primary key ("id"));`);
    this.addSql(`alter table "upload_sessions" add constraint "upload_sessions_artifact_id_unique" unique ("artifact_id");`);
    this.addSql(`create index "upload_sessions_status_expires_at_index" on "upload_sessions" ("status", "expires_at");`);
    this.addSql(`create index "upload_sessions_product_id_index" on "upload_sessions" ("product_id");`);

    this.addSql(`create table "upload_chunks" ("id" uuid not null, "session_id" uuid not null, "chunk_index" int not null, "size_bytes" int not null, "sha256" varchar(64) not null, "etag" varchar(256) null, "received_at" timestamptz not null, constraint "upload_chunks_pkey" primary key ("id"));`);
    this.addSql(`alter table "upload_chunks" add constraint "upload_chunks_session_id_chunk_index_unique" unique ("session_id", "chunk_index");`);

    this.addSql(`create table "product_versions" ("id" uuid not null, "product_id" uuid not null, "version_number" int not null, "version_type" text check ("version_type" in ('major', 'minor', 'patch')) not null, "release_date" date null, "notes" text null, "is_current" boolean not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "product_versions_pkey" primary key ("id"));`);
    this.addSql(`alter table "product_versions" add constraint "product_versions_product_id_version_number_unique" unique ("product_id", "version_number");`);
    this.addSql(`create unique index product_versions_one_current on product_versions (product_id) where is_current = true;`);

    this.addSql(`create table "product_grants" ("id" uuid not null, "product_id" uuid not null, "user_id" uuid not null, "access" text check ("access" in ('view', 'edit')) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "product_grants_pkey" primary key ("id"));`);
    this.addSql(`create index "product_grants_user_id_index" on "product_grants" ("user_id");`);
    this.addSql(`alter table "product_grants" add constraint "product_grants_product_id_user_id_unique" unique ("product_id", "user_id");`);

    this.addSql(`create table "organization_memberships" ("id" uuid not null, "organization_id" uuid not null, "user_id" uuid not null, "role" text check ("role" in ('owner', 'admin', 'member')) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "organization_memberships_pkey" primary key ("id"));`);
    this.addSql(`create index "organization_memberships_user_id_index" on "organization_memberships" ("user_id");`);
    this.addSql(`alter table "organization_memberships" add constraint "organization_memberships_organization_id_user_id_unique" unique ("organization_id", "user_id");`);

    this.addSql(`create table "model_artifacts" ("id" uuid not null, "product_id" uuid not null, "product_version_id" uuid null, "training_run_id" uuid null, "artifact_kind" varchar(200) not null, "version_label" varchar(200) null, "file_name" varchar(1024) not null, "content_type" varchar(255) not null, "size_bytes" bigint not null, "sha256" varchar(64) not null, "storage_backend" varchar(16) not null, "storage_key" varchar(1024) not null, "storage_uri" varchar(2048) not null, "external_uri" varchar(2048) null, "status" text check ("status" in ('available', 'deleted', 'failed')) not null, "is_current" boolean not null, "metadata" jsonb null, "uploaded_by_id" uuid null, "uploaded_at" timestamptz not null, "deleted_at" timestamptz null, "bytes_removed_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "model_artifacts_pkey" primary key ("id"));`);
    this.addSql(`create index "model_artifacts_product_id_status_created_at_index" on "model_artifacts" ("product_id", "status", "created_at");`);
    this.addSql(`create unique index model_artifacts_one_current on model_artifacts (product_id) where is_current = true and status = 'available';`);

    this.addSql(`create table "api_keys" ("id" uuid not null, "user_id" uuid not null, "name" varchar(200) null, "key_hash" varchar(64) not null, "key_prefix" varchar(16) not null, "created_at" timestamptz not null, "last_used_at" timestamptz null, "revoked_at" timestamptz null, constraint "api_keys_pkey" primary key ("id"));`);
    this.addSql(`alter table "api_keys" add constraint "api_keys_key_hash_unique" unique ("key_hash");`);

    this.addSql(`alter table "spaces" add constraint "spaces_organization_id_foreign" foreign key ("organization_id") references "organizations" ("id") on update cascade;`);

    this.addSql(`alter table "space_memberships" add constraint "space_memberships_space_id_foreign" foreign key ("space_id") references "spaces" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "space_memberships" add constraint "space_memberships_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "products" add constraint "products_space_id_foreign" foreign key ("space_id") references "spaces" ("id") on update cascade;`);
    this.addSql(`alter table "products" add constraint "products_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "upload_sessions" add constraint "upload_sessions_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "upload_sessions" add constraint "upload_sessions_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade;`);

    this.addSql(`alter table "upload_chunks" add constraint "upload_chunks_session_id_foreign" foreign key ("session_id") references "upload_sessions" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "product_versions" add constraint "product_versions_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "product_grants" add constraint "product_grants_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "product_grants" add constraint "product_grants_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "organization_memberships" add constraint "organization_memberships_organization_id_foreign" foreign key ("organization_id") references "organizations" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "organization_memberships" add constraint "organization_memberships_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "model_artifacts" add constraint "model_artifacts_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "model_artifacts" add constraint "model_artifacts_product_version_id_foreign" foreign key ("product_version_id") references "product_versions" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "model_artifacts" add constraint "model_artifacts_uploaded_by_id_foreign" foreign key ("uploaded_by_id") references "users" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "api_keys" add constraint "api_keys_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade;`);

    // Hand-written (invisible to the snapshot): `q` is `search_text LIKE '%term%'`, which only a
    // trigram index can serve. pg_trgm is a trusted extension (PostgreSQL ≥ 13): the database
    // owner may create it.
    this.addSql(`create extension if not exists pg_trgm;`);
    this.addSql(`create index "products_search_text_trgm_index" on "products" using gin ("search_text" gin_trgm_ops);`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "spaces" drop constraint "spaces_organization_id_foreign";`);

    this.addSql(`alter table "organization_memberships" drop constraint "organization_memberships_organization_id_foreign";`);

    this.addSql(`alter table "space_memberships" drop constraint "space_memberships_space_id_foreign";`);

    this.addSql(`alter table "products" drop constraint "products_space_id_foreign";`);

    this.addSql(`alter table "space_memberships" drop constraint "space_memberships_user_id_foreign";`);

    this.addSql(`alter table "products" drop constraint "products_created_by_id_foreign";`);

    this.addSql(`alter table "upload_sessions" drop constraint "upload_sessions_created_by_id_foreign";`);

    this.addSql(`alter table "product_grants" drop constraint "product_grants_user_id_foreign";`);

    this.addSql(`alter table "organization_memberships" drop constraint "organization_memberships_user_id_foreign";`);

    this.addSql(`alter table "model_artifacts" drop constraint "model_artifacts_uploaded_by_id_foreign";`);

    this.addSql(`alter table "api_keys" drop constraint "api_keys_user_id_foreign";`);

    this.addSql(`alter table "upload_sessions" drop constraint "upload_sessions_product_id_foreign";`);

    this.addSql(`alter table "product_versions" drop constraint "product_versions_product_id_foreign";`);

    this.addSql(`alter table "product_grants" drop constraint "product_grants_product_id_foreign";`);

    this.addSql(`alter table "model_artifacts" drop constraint "model_artifacts_product_id_foreign";`);

    this.addSql(`alter table "upload_chunks" drop constraint "upload_chunks_session_id_foreign";`);

    this.addSql(`alter table "model_artifacts" drop constraint "model_artifacts_product_version_id_foreign";`);

    this.addSql(`drop table if exists "organizations" cascade;`);

    this.addSql(`drop table if exists "spaces" cascade;`);

    this.addSql(`drop table if exists "users" cascade;`);

    this.addSql(`drop table if exists "space_memberships" cascade;`);

    this.addSql(`drop table if exists "products" cascade;`);

    this.addSql(`drop table if exists "upload_sessions" cascade;`);

    this.addSql(`drop table if exists "upload_chunks" cascade;`);

    this.addSql(`drop table if exists "product_versions" cascade;`);

    this.addSql(`drop table if exists "product_grants" cascade;`);

    this.addSql(`drop table if exists "organization_memberships" cascade;`);

    this.addSql(`drop table if exists "model_artifacts" cascade;`);

    this.addSql(`drop table if exists "api_keys" cascade;`);
  }

}
