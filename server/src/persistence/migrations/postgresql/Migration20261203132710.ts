import { Migration } from '@mikro-orm/migrations';

export class Migration20261203132710 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "product_aliases" ("id" uuid not null, "product_id" uuid not null, "name" varchar(64) not null, "version_id" uuid null, "updated_by_id" uuid null, "row_version" int not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "product_aliases_pkey" primary key ("id"));`);
    this.addSql(`create index "product_aliases_version_id_index" on "product_aliases" ("version_id");`);
    this.addSql(`alter table "product_aliases" add constraint "product_aliases_product_id_name_unique" unique ("product_id", "name");`);

    this.addSql(`create table "alias_changes" ("id" uuid not null, "alias_id" uuid not null, "sequence" int not null, "version_id" uuid null, "previous_version_id" uuid null, "changed_by_id" uuid null, "changed_at" timestamptz not null, "reason" varchar(1000) null, constraint "alias_changes_pkey" primary key ("id"));`);
    this.addSql(`alter table "alias_changes" add constraint "alias_changes_alias_id_sequence_unique" unique ("alias_id", "sequence");`);

    this.addSql(`create table "version_reviews" ("id" uuid not null, "version_id" uuid not null, "decision" text check ("decision" in ('approved', 'rejected')) not null, "comment" text null, "reviewer_id" uuid null, "created_at" timestamptz not null, constraint "version_reviews_pkey" primary key ("id"));`);
    this.addSql(`create index "version_reviews_version_id_created_at_index" on "version_reviews" ("version_id", "created_at");`);

    this.addSql(`alter table "product_aliases" add constraint "product_aliases_product_id_foreign" foreign key ("product_id") references "products" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "product_aliases" add constraint "product_aliases_version_id_foreign" foreign key ("version_id") references "product_versions" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "product_aliases" add constraint "product_aliases_updated_by_id_foreign" foreign key ("updated_by_id") references "users" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "alias_changes" add constraint "alias_changes_alias_id_foreign" foreign key ("alias_id") references "product_aliases" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "alias_changes" add constraint "alias_changes_version_id_foreign" foreign key ("version_id") references "product_versions" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "alias_changes" add constraint "alias_changes_previous_version_id_foreign" foreign key ("previous_version_id") references "product_versions" ("id") on update cascade on delete set null;`);
    this.addSql(`alter table "alias_changes" add constraint "alias_changes_changed_by_id_foreign" foreign key ("changed_by_id") references "users" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "version_reviews" add constraint "version_reviews_version_id_foreign" foreign key ("version_id") references "product_versions" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "version_reviews" add constraint "version_reviews_reviewer_id_foreign" foreign key ("reviewer_id") references "users" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "spaces" add column "promotion_policy" text check ("promotion_policy" in ('none', 'risk_based')) not null default 'none';`);

    this.addSql(`alter table "product_versions" add column "created_by_id" uuid null, add column "approval_status" text check ("approval_status" in ('pending', 'approved', 'rejected')) not null default 'pending';`);
    this.addSql(`alter table "product_versions" add constraint "product_versions_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "alias_changes" drop constraint "alias_changes_alias_id_foreign";`);

    this.addSql(`drop table if exists "product_aliases" cascade;`);

    this.addSql(`drop table if exists "alias_changes" cascade;`);

    this.addSql(`drop table if exists "version_reviews" cascade;`);

    this.addSql(`alter table "product_versions" drop constraint "product_versions_created_by_id_foreign";`);

    this.addSql(`alter table "spaces" drop column "promotion_policy";`);

    this.addSql(`alter table "product_versions" drop column "created_by_id", drop column "approval_status";`);
  }

}
