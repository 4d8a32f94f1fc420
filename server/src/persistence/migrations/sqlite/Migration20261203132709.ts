import { Migration } from '@mikro-orm/migrations';

/** Webhooks, their queued deliveries, and the worker lease that keeps one SQLite process delivering at a time. */

export class Migration20261203132709 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`webhooks\` (\`id\` text not null, \`space_id\` text not null, \`url\` text not null, \`events\` json not null, \`description\` text null, \`active\` integer not null, \`secret\` text not null, \`created_by_id\` text null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`webhooks_space_id_foreign\` foreign key(\`space_id\`) references \`spaces\`(\`id\`) on delete cascade on update cascade, constraint \`webhooks_created_by_id_foreign\` foreign key(\`created_by_id\`) references \`users\`(\`id\`) on delete set null on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`webhooks_space_id_index\` on \`webhooks\` (\`space_id\`);`);
    this.addSql(`create index \`webhooks_created_by_id_index\` on \`webhooks\` (\`created_by_id\`);`);
    this.addSql(`create index \`webhooks_space_id_active_index\` on \`webhooks\` (\`space_id\`, \`active\`);`);

    this.addSql(`create table \`webhook_deliveries\` (\`id\` text not null, \`webhook_id\` text not null, \`event_id\` text not null, \`event_type\` text not null, \`payload\` text not null, \`status\` text check (\`status\` in ('pending', 'succeeded', 'failed')) not null, \`attempts\` integer not null, \`last_status_code\` integer null, \`last_error\` text null, \`next_attempt_at\` datetime null, \`claim_token\` text null, \`created_at\` datetime not null, \`delivered_at\` datetime null, constraint \`webhook_deliveries_webhook_id_foreign\` foreign key(\`webhook_id\`) references \`webhooks\`(\`id\`) on delete cascade on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`webhook_deliveries_webhook_id_index\` on \`webhook_deliveries\` (\`webhook_id\`);`);
    this.addSql(`create index \`webhook_deliveries_status_next_attempt_at_index\` on \`webhook_deliveries\` (\`status\`, \`next_attempt_at\`);`);
    this.addSql(`create index \`webhook_deliveries_webhook_id_created_at_index\` on \`webhook_deliveries\` (\`webhook_id\`, \`created_at\`);`);
    this.addSql(`create index \`webhook_deliveries_created_at_index\` on \`webhook_deliveries\` (\`created_at\`);`);

    this.addSql(`create table \`worker_leases\` (\`name\` text not null, \`holder\` text not null, \`expires_at\` datetime not null, primary key (\`name\`));`);
  }

}
