import { Migration } from '@mikro-orm/migrations';

/**
 * spaces.listing_version: a counter the database itself bumps whenever anything a space's model
 * listing shows changes (a product of the space, or a version or artifact of one of them), so a
 * cached listing can be checked with the space row every request reads anyway.
 *
 * The triggers are deferred constraint triggers: they run at commit, after every other lock the
 * transaction takes, so bumping the space row never joins a lock-order cycle (a PATCH holding a
 * product row while a completion in the same space holds the space row). A transaction bumps a
 * space once (listing_xact records which transaction did it last): readers only need the number
 * to differ between commits, and updating one row many times in a transaction grows a chain of
 * row versions each later update walks (a 1,000-row import would take quadratic time).
 */
export class Migration20261127122339 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "spaces" add column "listing_version" bigint not null default 0;`);
    this.addSql(`alter table "spaces" add column "listing_xact" bigint null;`);
    this.addSql(`
      create function "bump_space_listing_version"() returns trigger language plpgsql as $$
      declare
        xact bigint := txid_current();
        new_space uuid;
        old_space uuid;
      begin
        -- Plain equality lookups: they use the primary keys even before statistics exist.
        if TG_TABLE_NAME = 'products' then
          if TG_OP <> 'DELETE' then new_space := NEW."space_id"; end if;
          if TG_OP <> 'INSERT' then old_space := OLD."space_id"; end if;
        else
          if TG_OP <> 'DELETE' then select "space_id" into new_space from "products" where "id" = NEW."product_id"; end if;
          if TG_OP <> 'INSERT' then select "space_id" into old_space from "products" where "id" = OLD."product_id"; end if;
        end if;
        update "spaces" set "listing_version" = "listing_version" + 1, "listing_xact" = xact
          where "id" = new_space and "listing_xact" is distinct from xact;
        if old_space is distinct from new_space then
          update "spaces" set "listing_version" = "listing_version" + 1, "listing_xact" = xact
            where "id" = old_space and "listing_xact" is distinct from xact;
        end if;
        return null;
      end $$;`);
    for (const table of ['products', 'product_versions', 'model_artifacts']) {
      this.addSql(`
        create constraint trigger "${table}_bump_space_listing_version"
          after insert or update or delete on "${table}"
          deferrable initially deferred
          for each row execute function "bump_space_listing_version"();`);
    }
  }

  override async down(): Promise<void> {
    for (const table of ['products', 'product_versions', 'model_artifacts']) {
      this.addSql(`drop trigger if exists "${table}_bump_space_listing_version" on "${table}";`);
    }
    this.addSql(`drop function if exists "bump_space_listing_version"();`);
    this.addSql(`alter table "spaces" drop column "listing_xact";`);
    this.addSql(`alter table "spaces" drop column "listing_version";`);
  }

}
