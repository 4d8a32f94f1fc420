import { Migration } from '@mikro-orm/migrations';

export class Migration20261203133044 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "model_artifacts" add column "inspection" jsonb null, add column "inspected_format" varchar(32) null, add column "parameter_count" bigint null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "model_artifacts" drop column "inspection", drop column "inspected_format", drop column "parameter_count";`);
  }

}
