import { Migration } from '@mikro-orm/migrations';

export class Migration20261203132707 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`product_aliases\` (\`id\` text not null, \`product_id\` text not null, \`name\` text not null, \`version_id\` text null, \`updated_by_id\` text null, \`row_version\` integer not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`product_aliases_product_id_foreign\` foreign key(\`product_id\`) references \`products\`(\`id\`) on delete cascade on update cascade, constraint \`product_aliases_version_id_foreign\` foreign key(\`version_id\`) references \`product_versions\`(\`id\`) on delete set null on update cascade, constraint \`product_aliases_updated_by_id_foreign\` foreign key(\`updated_by_id\`) references \`users\`(\`id\`) on delete set null on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`product_aliases_product_id_index\` on \`product_aliases\` (\`product_id\`);`);
    this.addSql(`create index \`product_aliases_updated_by_id_index\` on \`product_aliases\` (\`updated_by_id\`);`);
    this.addSql(`create index \`product_aliases_version_id_index\` on \`product_aliases\` (\`version_id\`);`);
    this.addSql(`create unique index \`product_aliases_product_id_name_unique\` on \`product_aliases\` (\`product_id\`, \`name\`);`);

    this.addSql(`create table \`alias_changes\` (\`id\` text not null, \`alias_id\` text not null, \`sequence\` integer not null, \`version_id\` text null, \`previous_version_id\` text null, \`changed_by_id\` text null, \`changed_at\` datetime not null, \`reason\` text null, constraint \`alias_changes_alias_id_foreign\` foreign key(\`alias_id\`) references \`product_aliases\`(\`id\`) on delete cascade on update cascade, constraint \`alias_changes_version_id_foreign\` foreign key(\`version_id\`) references \`product_versions\`(\`id\`) on delete set null on update cascade, constraint \`alias_changes_previous_version_id_foreign\` foreign key(\`previous_version_id\`) references \`product_versions\`(\`id\`) on delete set null on update cascade, constraint \`alias_changes_changed_by_id_foreign\` foreign key(\`changed_by_id\`) references \`users\`(\`id\`) on delete set null on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`alias_changes_alias_id_index\` on \`alias_changes\` (\`alias_id\`);`);
    this.addSql(`create index \`alias_changes_version_id_index\` on \`alias_changes\` (\`version_id\`);`);
    this.addSql(`create index \`alias_changes_previous_version_id_index\` on \`alias_changes\` (\`previous_version_id\`);`);
    this.addSql(`create index \`alias_changes_changed_by_id_index\` on \`alias_changes\` (\`changed_by_id\`);`);
    this.addSql(`create unique index \`alias_changes_alias_id_sequence_unique\` on \`alias_changes\` (\`alias_id\`, \`sequence\`);`);

    this.addSql(`create table \`version_reviews\` (\`id\` text not null, \`version_id\` text not null, \`decision\` text check (\`decision\` in ('approved', 'rejected')) not null, \`comment\` text null, \`reviewer_id\` text null, \`created_at\` datetime not null, constraint \`version_reviews_version_id_foreign\` foreign key(\`version_id\`) references \`product_versions\`(\`id\`) on delete cascade on update cascade, constraint \`version_reviews_reviewer_id_foreign\` foreign key(\`reviewer_id\`) references \`users\`(\`id\`) on delete set null on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`version_reviews_version_id_index\` on \`version_reviews\` (\`version_id\`);`);
    this.addSql(`create index \`version_reviews_reviewer_id_index\` on \`version_reviews\` (\`reviewer_id\`);`);
    this.addSql(`create index \`version_reviews_version_id_created_at_index\` on \`version_reviews\` (\`version_id\`, \`created_at\`);`);

    this.addSql(`alter table \`spaces\` add column \`promotion_policy\` text check (\`promotion_policy\` in ('none', 'risk_based')) not null default 'none';`);

    this.addSql(`alter table \`product_versions\` add column \`created_by_id\` text null constraint \`product_versions_created_by_id_foreign\` references \`users\` (\`id\`) on update cascade on delete set null;`);
    this.addSql(`alter table \`product_versions\` add column \`approval_status\` text check (\`approval_status\` in ('pending', 'approved', 'rejected')) not null default 'pending';`);
    this.addSql(`create index \`product_versions_created_by_id_index\` on \`product_versions\` (\`created_by_id\`);`);
  }

}
