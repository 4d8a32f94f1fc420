import { Migration } from '@mikro-orm/migrations';

export class Migration20261203135737 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "blob_deletions" ("storage_key" varchar(1024) not null, "not_before" timestamptz not null, "created_at" timestamptz not null, constraint "blob_deletions_pkey" primary key ("storage_key"));`);

    this.addSql(`create table "content_blobs" ("sha256" varchar(64) not null, "size_bytes" bigint not null, "storage_key" varchar(1024) not null, "ref_count" int not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "content_blobs_pkey" primary key ("sha256"));`);
    this.addSql(`alter table "content_blobs" add constraint "content_blobs_storage_key_unique" unique ("storage_key");`);

    this.addSql(`alter table "upload_sessions" add column "deduplicated" boolean not null default false;`);

    this.addSql(`create index "model_artifacts_sha256_index" on "model_artifacts" ("sha256");`);
    this.addSql(`create index "model_artifacts_storage_key_index" on "model_artifacts" ("storage_key");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "blob_deletions" cascade;`);

    this.addSql(`drop table if exists "content_blobs" cascade;`);

    this.addSql(`alter table "upload_sessions" drop column "deduplicated";`);

    this.addSql(`drop index "model_artifacts_sha256_index";`);
    this.addSql(`drop index "model_artifacts_storage_key_index";`);
  }

}
