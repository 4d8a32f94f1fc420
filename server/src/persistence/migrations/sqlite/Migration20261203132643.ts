import { Migration } from '@mikro-orm/migrations';

/**
 * The events table: the audit trail and the outbox later features read (webhooks). `seq` is the
 * order readers follow; the indexes serve the per-space and per-product listings (newest first)
 * and time-bounded reads.
 */
export class Migration20261203132643 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`events\` (\`seq\` integer not null primary key autoincrement, \`id\` text not null, \`type\` text not null, \`occurred_at\` datetime not null, \`actor_id\` text null, \`organization_id\` text not null, \`space_id\` text not null, \`product_id\` text null, \`subject_id\` text null, \`data\` json not null);`);
    this.addSql(`create unique index \`events_id_unique\` on \`events\` (\`id\`);`);
    this.addSql(`create index \`events_space_id_seq_index\` on \`events\` (\`space_id\`, \`seq\`);`);
    this.addSql(`create index \`events_product_id_seq_index\` on \`events\` (\`product_id\`, \`seq\`);`);
    this.addSql(`create index \`events_occurred_at_index\` on \`events\` (\`occurred_at\`);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists \`events\`;`);
  }

}
