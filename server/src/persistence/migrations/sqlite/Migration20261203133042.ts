import { Migration } from '@mikro-orm/migrations';

export class Migration20261203133042 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table \`model_artifacts\` add column \`inspection\` json null;`);
    this.addSql(`alter table \`model_artifacts\` add column \`inspected_format\` text null;`);
    this.addSql(`alter table \`model_artifacts\` add column \`parameter_count\` bigint null;`);
  }

}
