import { Migration } from '@mikro-orm/migrations';

/**
 * The events table: the audit trail and the outbox later features read (webhooks). `seq` is the
 * order readers follow; the indexes serve the per-space and per-product listings (newest first)
 * and time-bounded reads.
 */
export class Migration20261203132645 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "events" ("seq" bigserial primary key, "id" uuid not null, "type" varchar(64) not null, "occurred_at" timestamptz not null, "actor_id" uuid null, "organization_id" uuid not null, "space_id" uuid not null, "product_id" uuid null, "subject_id" uuid null, "data" jsonb not null);`);
    this.addSql(`alter table "events" add constraint "events_id_unique" unique ("id");`);
    this.addSql(`create index "events_space_id_seq_index" on "events" ("space_id", "seq");`);
    this.addSql(`create index "events_product_id_seq_index" on "events" ("product_id", "seq");`);
    this.addSql(`create index "events_occurred_at_index" on "events" ("occurred_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "events" cascade;`);
  }

}
