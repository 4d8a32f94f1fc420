import { Migration } from '@mikro-orm/migrations';

export class Migration20261203135732 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`blob_deletions\` (\`storage_key\` text not null, \`not_before\` datetime not null, \`created_at\` datetime not null, primary key (\`storage_key\`));`);

    this.addSql(`create table \`content_blobs\` (\`sha256\` text not null, \`size_bytes\` bigint not null, \`storage_key\` text not null, \`ref_count\` integer not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, primary key (\`sha256\`));`);
    this.addSql(`create unique index \`content_blobs_storage_key_unique\` on \`content_blobs\` (\`storage_key\`);`);

    this.addSql(`alter table \`upload_sessions\` add column \`deduplicated\` integer not null default false;`);

    this.addSql(`create index \`model_artifacts_sha256_index\` on \`model_artifacts\` (\`sha256\`);`);
    this.addSql(`create index \`model_artifacts_storage_key_index\` on \`model_artifacts\` (\`storage_key\`);`);
  }

}
