import { Migration } from '@mikro-orm/migrations';

/** Webhooks, their queued deliveries, and the worker lease that keeps one SQLite process delivering at a time. */

export class Migration20261203132711 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "webhooks" ("id" uuid not null, "space_id" uuid not null, "url" varchar(2048) not null, "events" jsonb not null, "description" varchar(1000) null, "active" boolean not null, "secret" varchar(64) not null, "created_by_id" uuid null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "webhooks_pkey" primary key ("id"));`);
    this.addSql(`create index "webhooks_space_id_active_index" on "webhooks" ("space_id", "active");`);

    this.addSql(`create table "webhook_deliveries" ("id" uuid not null, "webhook_id" uuid not null, "event_id" uuid not null, "event_type" varchar(64) not null, "payload" text not null, "status" text check ("status" in ('pending', 'succeeded', 'failed')) not null, "attempts" int not null, "last_status_code" int null, "last_error" varchar(1000) null, "next_attempt_at" timestamptz null, "claim_token" uuid null, "created_at" timestamptz not null, "delivered_at" timestamptz null, constraint "webhook_deliveries_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_deliveries_status_next_attempt_at_index" on "webhook_deliveries" ("status", "next_attempt_at");`);
    this.addSql(`create index "webhook_deliveries_webhook_id_created_at_index" on "webhook_deliveries" ("webhook_id", "created_at");`);
    this.addSql(`create index "webhook_deliveries_created_at_index" on "webhook_deliveries" ("created_at");`);

    this.addSql(`create table "worker_leases" ("name" varchar(64) not null, "holder" uuid not null, "expires_at" timestamptz not null, constraint "worker_leases_pkey" primary key ("name"));`);

    this.addSql(`alter table "webhooks" add constraint "webhooks_space_id_foreign" foreign key ("space_id") references "spaces" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "webhooks" add constraint "webhooks_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on update cascade on delete set null;`);

    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_webhook_id_foreign" foreign key ("webhook_id") references "webhooks" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "webhook_deliveries" drop constraint "webhook_deliveries_webhook_id_foreign";`);

    this.addSql(`drop table if exists "webhooks" cascade;`);

    this.addSql(`drop table if exists "webhook_deliveries" cascade;`);

    this.addSql(`drop table if exists "worker_leases" cascade;`);
  }

}
