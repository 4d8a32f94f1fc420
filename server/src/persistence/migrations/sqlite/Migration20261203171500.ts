import { Migration } from '@mikro-orm/migrations';

/**
 * The organization listing at scale (see the PostgreSQL twin): products.organization_id, copied
 * from the space by triggers, with the index (organization_id, updated_at, id, is_archived); and
 * organizations.listing_version, bumped by every change to a product of the organization (or its
 * versions and artifacts) and to memberships and grants. SQLite has one writer at a time and
 * cannot assign NEW in a BEFORE trigger, so these are plain AFTER triggers.
 */
const BUMP = 'update `organizations` set `listing_version` = `listing_version` + 1 where `id` in';
const VIA_SPACES = (spaces: string) => `${BUMP} (select organization_id from spaces where id in (${spaces}))`;
const VIA_PRODUCTS = (products: string) => `${BUMP} (select organization_id from products where id in (${products}))`;

const TRIGGERS: Record<string, { insert: string; update: string; delete: string }> = {
  products: {
    insert: VIA_SPACES('new.space_id'),
    update: VIA_SPACES('old.space_id, new.space_id'),
    delete: VIA_SPACES('old.space_id'),
  },
  ...Object.fromEntries(
    ['product_versions', 'model_artifacts'].map((table) => [
      table,
      {
        insert: VIA_SPACES('select space_id from products where id = new.product_id'),
        update: VIA_SPACES('select space_id from products where id in (old.product_id, new.product_id)'),
        delete: VIA_SPACES('select space_id from products where id = old.product_id'),
      },
    ]),
  ),
  organization_memberships: {
    insert: `${BUMP} (new.organization_id)`,
    update: `${BUMP} (old.organization_id, new.organization_id)`,
    delete: `${BUMP} (old.organization_id)`,
  },
  space_memberships: {
    insert: VIA_SPACES('new.space_id'),
    update: VIA_SPACES('old.space_id, new.space_id'),
    delete: VIA_SPACES('old.space_id'),
  },
  product_grants: {
    insert: VIA_PRODUCTS('new.product_id'),
    update: VIA_PRODUCTS('old.product_id, new.product_id'),
    delete: VIA_PRODUCTS('old.product_id'),
  },
};

const SET_ORGANIZATION = 'update `products` set `organization_id` = (select `organization_id` from `spaces` where `id` = new.space_id) where `id` = new.id';

export class Migration20261203171500 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table \`organizations\` add column \`listing_version\` bigint not null default 0;`);
    // Used by the PostgreSQL triggers only (SQLite updates rows in place): kept for one schema.
    this.addSql(`alter table \`organizations\` add column \`listing_xact\` bigint null;`);

    this.addSql(`alter table \`products\` add column \`organization_id\` text null;`);
    this.addSql('update `products` set `organization_id` = (select `organization_id` from `spaces` where `spaces`.`id` = `products`.`space_id`);');
    this.addSql(`create index \`products_organization_id_updated_at_id_is_archived_index\` on \`products\` (\`organization_id\`, \`updated_at\`, \`id\`, \`is_archived\`);`);
    this.addSql('create index `products_created_by_id_organization_id_space_id_index` on `products` (`created_by_id`, `organization_id`, `space_id`);');
    this.addSql(`create trigger \`products_insert_set_organization\` after insert on \`products\` for each row begin ${SET_ORGANIZATION}; end;`);
    this.addSql(`create trigger \`products_update_set_organization\` after update of \`space_id\`, \`organization_id\` on \`products\` for each row begin ${SET_ORGANIZATION}; end;`);
    this.addSql('create trigger `spaces_update_move_products` after update of `organization_id` on `spaces` for each row when old.organization_id is not new.organization_id begin update `products` set `organization_id` = new.organization_id where `space_id` = new.id; end;');
    for (const [table, events] of Object.entries(TRIGGERS)) {
      for (const [event, statement] of Object.entries(events)) {
        this.addSql(`create trigger \`${table}_${event}_bump_organization_listing_version\` after ${event} on \`${table}\` for each row begin ${statement}; end;`);
      }
    }
  }

  override async down(): Promise<void> {
    for (const [table, events] of Object.entries(TRIGGERS)) {
      for (const event of Object.keys(events)) {
        this.addSql(`drop trigger if exists \`${table}_${event}_bump_organization_listing_version\`;`);
      }
    }
    this.addSql('drop trigger if exists `spaces_update_move_products`;');
    this.addSql('drop trigger if exists `products_update_set_organization`;');
    this.addSql('drop trigger if exists `products_insert_set_organization`;');
    this.addSql('drop index if exists `products_created_by_id_organization_id_space_id_index`;');
    this.addSql('drop index if exists `products_organization_id_updated_at_id_is_archived_index`;');
    this.addSql('alter table `products` drop column `organization_id`;');
    this.addSql('alter table `organizations` drop column `listing_xact`;');
    this.addSql('alter table `organizations` drop column `listing_version`;');
  }

}
