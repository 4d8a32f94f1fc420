import { Migration } from '@mikro-orm/migrations';

export class Migration20261127093157 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`organizations\` (\`id\` text not null, \`slug\` text not null, \`name\` text not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, primary key (\`id\`));`);
    this.addSql(`create unique index \`organizations_slug_unique\` on \`organizations\` (\`slug\`);`);

    this.addSql(`create table \`spaces\` (\`id\` text not null, \`organization_id\` text not null, \`slug\` text not null, \`name\` text not null, \`product_limit\` integer null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`spaces_organization_id_foreign\` foreign key(\`organization_id\`) references \`organizations\`(\`id\`) on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`spaces_organization_id_index\` on \`spaces\` (\`organization_id\`);`);
    this.addSql(`create unique index \`spaces_slug_unique\` on \`spaces\` (\`slug\`);`);

    this.addSql(`create table \`users\` (\`id\` text not null, \`email\` text not null, \`name\` text null, \`created_at\` datetime not null, \`updated_at\` datetime not null, primary key (\`id\`));`);
    this.addSql(`create unique index \`users_email_unique\` on \`users\` (\`email\`);`);

    this.addSql(`create table \`space_memberships\` (\`id\` text not null, \`space_id\` text not null, \`user_id\` text not null, \`role\` text check (\`role\` in ('admin', 'editor', 'viewer')) not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`space_memberships_space_id_foreign\` foreign key(\`space_id\`) references \`spaces\`(\`id\`) on delete cascade on update cascade, constraint \`space_memberships_user_id_foreign\` foreign key(\`user_id\`) references \`users\`(\`id\`) on delete cascade on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`space_memberships_space_id_index\` on \`space_memberships\` (\`space_id\`);`);
    this.addSql(`create index \`space_memberships_user_id_index\` on \`space_memberships\` (\`user_id\`);`);
    this.addSql(`create unique index \`space_memberships_space_id_user_id_unique\` on \`space_memberships\` (\`space_id\`, \`user_id\`);`);

    this.addSql(`create table \`products\` (\`id\` text not null, \`space_id\` text not null, \`slug\` text not null, \`name\` text not null, \`description\` text null, \`long_description\` text null, \`product_type\` text not null, \`provider\` text null, \`environment\` text not null, \`risk_classification\` text null, \`lifecycle_stage\` text null, \`model_family\` text null, \`model_task_type\` text null, \`model_architecture\` text null, \`framework\` text null, \`intended_use\` text null, \`limitations\` text null, \`deployment_status\` text not null, \`serving_url\` text null, \`input_schema\` json null, \`output_schema\` json null, \`ai_system_type\` text null, \`vendor_name\` text null, \`vendor_product_name\` text null, \`vendor_model_id\` text null, \`deployment_environment\` text null, \`business_use_case\` text null, \`is_gpai\` integer null, \`is_archived\` integer not null default false, \`created_by_id\` text null, \`search_text\` text not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`products_space_id_foreign\` foreign key(\`space_id\`) references \`spaces\`(\`id\`) on update cascade, constraint \`products_created_by_id_foreign\` foreign key(\`created_by_id\`) references \`users\`(\`id\`) on delete set null on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`products_space_id_index\` on \`products\` (\`space_id\`);`);
    this.addSql(`create index \`products_space_id_is_archived_updated_at_id_index\` on \`products\` (\`space_id\`, \`is_archived\`, \`updated_at\`, \`id\`);`);
    this.addSql(`create index \`products_updated_at_id_index\` on \`products\` (\`updated_at\`, \`id\`);`);
    this.addSql(`create index \`products_model_family_index\` on \`products\` (\`model_family\`);`);
    this.addSql(`create index \`products_deployment_status_index\` on \`products\` (\`deployment_status\`);`);
    this.addSql(`create index \`products_model_task_type_index\` on \`products\` (\`model_task_type\`);`);
    this.addSql(`create index \`products_risk_classification_index\` on \`products\` (\`risk_classification\`);`);
    this.addSql(`create index \`products_product_type_index\` on \`products\` (\`product_type\`);`);
    this.addSql(`create index \`products_created_by_id_index\` on \`products\` (\`created_by_id\`);`);
    this.addSql(`create unique index \`products_space_id_slug_unique\` on \`products\` (\`space_id\`, \`slug\`);`);

    this.addSql(`create table \`upload_sessions\` (\`id\` text not null, \`product_id\` text not null, \`artifact_id\` text not null, \`file_name\` text not null, \`content_type\` text not null, \`total_size_bytes\` bigint not null, \`chunk_size_bytes\` integer not null, \`chunk_count\` integer not null, \`expected_sha256\` text null, \`artifact_kind\` text not null, \`version_label\` text null, \`product_version_id\` text null, \`training_run_id\` text null, \`is_current\` integer not null, \`external_uri\` text null, \`metadata\` json null, \`status\` text check (\`status\` in ('initialized', 'uploading', 'completed', 'failed', 'expired', 'aborted')) not null, \`received_bytes\` bigint not null default 0, \`storage_backend\` text not null, \`staging_key\` text not null, \`storage_upload_id\` text null, \`hash_state\` text null, \`hashed_chunks\` integer not null default 0, \`hash_broken\` integer not null default false, \`created_by_id\` text not null, \`expires_at\` datetime not null, \`completed_at\` datetime null, \`cleaned_at\` datetime null, \`failure_reason\` text null, \`row_version\` integer not null default 1, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`upload_sessions_product_id_foreign\` foreign key(\`product_id\`) references \`products\`(\`id\`) on delete cascade on update cascade, constraint \`upload_sessions_created_by_id_foreign\` foreign key(\`created_by_id\`) references \`users\`(\`id\`) on update cascade, primary key (\`id\`));`);
    this.addSql(`create unique index \`upload_sessions_artifact_id_unique\` on \`upload_sessions\` (\`artifact_id\`);`);
    this.addSql(`create index \`upload_sessions_created_by_id_index\` on \`upload_sessions\` (\`created_by_id\`);`);
    this.addSql(`create index \`upload_sessions_status_expires_at_index\` on \`upload_sessions\` (\`status\`, \`expires_at\`);`);
    this.addSql(`create index \`upload_sessions_product_id_index\` on \`upload_sessions\` (\`product_id\`);`);

    this.addSql(`create table \`upload_chunks\` (\`id\` text not null, \`session_id\` text not null, \`chunk_index\` integer not null, \`size_bytes\` integer not null, \`sha256\` text not null, \`etag\` text null, \`received_at\` datetime not null, constraint \`upload_chunks_session_id_foreign\` foreign key(\`session_id\`) references \`upload_sessions\`(\`id\`) on delete cascade on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`upload_chunks_session_id_index\` on \`upload_chunks\` (\`session_id\`);`);
    this.addSql(`create unique index \`upload_chunks_session_id_chunk_index_unique\` on \`upload_chunks\` (\`session_id\`, \`chunk_index\`);`);

    this.addSql(`create table \`product_versions\` (\`id\` text not null, \`product_id\` text not null, \`version_number\` integer not null, \`version_type\` text check (\`version_type\` in ('major', 'minor', 'patch')) not null, \`release_date\` date null, \`notes\` text null, \`is_current\` integer not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`product_versions_product_id_foreign\` foreign key(\`product_id\`) references \`products\`(\`id\`) on delete cascade on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`product_versions_product_id_index\` on \`product_versions\` (\`product_id\`);`);
    this.addSql(`create unique index \`product_versions_product_id_version_number_unique\` on \`product_versions\` (\`product_id\`, \`version_number\`);`);
    this.addSql(`create unique index product_versions_one_current on product_versions (product_id) where is_current = true;`);

    this.addSql(`create table \`product_grants\` (\`id\` text not null, \`product_id\` text not null, \`user_id\` text not null, \`access\` text check (\`access\` in ('view', 'edit')) not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`product_grants_product_id_foreign\` foreign key(\`product_id\`) references \`products\`(\`id\`) on delete cascade on update cascade, constraint \`product_grants_user_id_foreign\` foreign key(\`user_id\`) references \`users\`(\`id\`) on delete cascade on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`product_grants_product_id_index\` on \`product_grants\` (\`product_id\`);`);
    this.addSql(`create index \`product_grants_user_id_index\` on \`product_grants\` (\`user_id\`);`);
    this.addSql(`create unique index \`product_grants_product_id_user_id_unique\` on \`product_grants\` (\`product_id\`, \`user_id\`);`);

    this.addSql(`create table \`organization_memberships\` (\`id\` text not null, \`organization_id\` text not null, \`user_id\` text not null, \`role\` text check (\`role\` in ('owner', 'admin', 'member')) not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`organization_memberships_organization_id_foreign\` foreign key(\`organization_id\`) references \`organizations\`(\`id\`) on delete cascade on update cascade, constraint \`organization_memberships_user_id_foreign\` foreign key(\`user_id\`) references \`users\`(\`id\`) on delete cascade on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`organization_memberships_organization_id_index\` on \`organization_memberships\` (\`organization_id\`);`);
    this.addSql(`create index \`organization_memberships_user_id_index\` on \`organization_memberships\` (\`user_id\`);`);
    this.addSql(`create unique index \`organization_memberships_organization_id_user_id_unique\` on \`organization_memberships\` (\`organization_id\`, \`user_id\`);`);

    this.addSql(`create table \`model_artifacts\` (\`id\` text not null, \`product_id\` text not null, \`product_version_id\` text null, \`training_run_id\` text null, \`artifact_kind\` text not null, \`version_label\` text null, \`file_name\` text not null, \`content_type\` text not null, \`size_bytes\` bigint not null, \`sha256\` text not null, \`storage_backend\` text not null, \`storage_key\` text not null, \`storage_uri\` text not null, \`external_uri\` text null, \`status\` text check (\`status\` in ('available', 'deleted', 'failed')) not null, \`is_current\` integer not null, \`metadata\` json null, \`uploaded_by_id\` text null, \`uploaded_at\` datetime not null, \`deleted_at\` datetime null, \`bytes_removed_at\` datetime null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`model_artifacts_product_id_foreign\` foreign key(\`product_id\`) references \`products\`(\`id\`) on delete cascade on update cascade, constraint \`model_artifacts_product_version_id_foreign\` foreign key(\`product_version_id\`) references \`product_versions\`(\`id\`) on delete set null on update cascade, constraint \`model_artifacts_uploaded_by_id_foreign\` foreign key(\`uploaded_by_id\`) references \`users\`(\`id\`) on delete set null on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`model_artifacts_product_id_index\` on \`model_artifacts\` (\`product_id\`);`);
    this.addSql(`create index \`model_artifacts_product_version_id_index\` on \`model_artifacts\` (\`product_version_id\`);`);
    this.addSql(`create index \`model_artifacts_uploaded_by_id_index\` on \`model_artifacts\` (\`uploaded_by_id\`);`);
    this.addSql(`create index \`model_artifacts_product_id_status_created_at_index\` on \`model_artifacts\` (\`product_id\`, \`status\`, \`created_at\`);`);
    this.addSql(`create unique index model_artifacts_one_current on model_artifacts (product_id) where is_current = true and status = 'available';`);

    this.addSql(`create table \`api_keys\` (\`id\` text not null, \`user_id\` text not null, \`name\` text null, \`key_hash\` text not null, \`key_prefix\` text not null, \`created_at\` datetime not null, \`last_used_at\` datetime null, \`revoked_at\` datetime null, constraint \`api_keys_user_id_foreign\` foreign key(\`user_id\`) references \`users\`(\`id\`) on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`api_keys_user_id_index\` on \`api_keys\` (\`user_id\`);`);
    this.addSql(`create unique index \`api_keys_key_hash_unique\` on \`api_keys\` (\`key_hash\`);`);
  }

}
