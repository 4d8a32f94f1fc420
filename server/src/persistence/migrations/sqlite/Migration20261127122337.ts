import { Migration } from '@mikro-orm/migrations';

/**
 * spaces.listing_version: a counter the database itself bumps whenever anything a space's model
 * listing shows changes (a product of the space, or a version or artifact of one of them), so a
 * cached listing can be checked with the space row every request reads anyway. SQLite has one
 * writer at a time, so plain AFTER triggers are enough.
 */
const BUMP = 'update `spaces` set `listing_version` = `listing_version` + 1 where `id` in';

const TRIGGERS: Record<string, { insert: string; update: string; delete: string }> = {
  products: {
    insert: `${BUMP} (new.space_id)`,
    update: `${BUMP} (old.space_id, new.space_id)`,
    delete: `${BUMP} (old.space_id)`,
  },
  ...Object.fromEntries(
    ['product_versions', 'model_artifacts'].map((table) => [
      table,
      {
        insert: `${BUMP} (select space_id from products where id = new.product_id)`,
        update: `${BUMP} (select space_id from products where id in (old.product_id, new.product_id))`,
        delete: `${BUMP} (select space_id from products where id = old.product_id)`,
      },
    ]),
  ),
};

export class Migration20261127122337 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table \`spaces\` add column \`listing_version\` bigint not null default 0;`);
    // Used by the PostgreSQL triggers only (SQLite updates rows in place): kept for one schema.
    this.addSql(`alter table \`spaces\` add column \`listing_xact\` bigint null;`);
    for (const [table, events] of Object.entries(TRIGGERS)) {
      for (const [event, statement] of Object.entries(events)) {
        this.addSql(`create trigger \`${table}_${event}_bump_space_listing_version\` after ${event} on \`${table}\` for each row begin ${statement}; end;`);
      }
    }
  }

  override async down(): Promise<void> {
    for (const [table, events] of Object.entries(TRIGGERS)) {
      for (const event of Object.keys(events)) {
        this.addSql(`drop trigger if exists \`${table}_${event}_bump_space_listing_version\`;`);
      }
    }
    this.addSql(`alter table \`spaces\` drop column \`listing_xact\`;`);
    this.addSql(`alter table \`spaces\` drop column \`listing_version\`;`);
  }

}
