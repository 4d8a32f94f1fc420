import { Migration } from '@mikro-orm/migrations';

/**
 * The organization listing at scale.
 *
 * products.organization_id: the space's organization, copied by a BEFORE trigger on insert and
 * whenever a product's space changes (and when a space changes organization), so one index,
 * (organization_id, updated_at, id, is_archived), yields an organization's products newest first
 * with or without archived ones, whatever the number of spaces; products_organization_listing_cover_index
 * the same with the filtered columns included.
 *
 * organizations.listing_version: bumped like spaces.listing_version (deferred, once per
 * transaction) by every change to a product of the organization or its versions and artifacts,
 * and by every change to who sees what (organization and space memberships, product grants), so
 * an organization listing's exact total may be cached under it.
 */
const BUMP_SPACE_WITH_ORGANIZATION = `
  create or replace function "bump_space_listing_version"() returns trigger language plpgsql as $$
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
    update "organizations" set "listing_version" = "listing_version" + 1, "listing_xact" = xact
      where "id" in (select "organization_id" from "spaces" where "id" in (new_space, old_space))
        and "listing_xact" is distinct from xact;
    return null;
  end $$;`;

const BUMP_SPACE_ONLY = `
  create or replace function "bump_space_listing_version"() returns trigger language plpgsql as $$
  declare
    xact bigint := txid_current();
    new_space uuid;
    old_space uuid;
  begin
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
  end $$;`;

/** Memberships and grants: who sees what in the organization. */
const BUMP_ORGANIZATION = `
  create function "bump_organization_listing_version"() returns trigger language plpgsql as $$
  declare
    xact bigint := txid_current();
    orgs uuid[];
  begin
    if TG_TABLE_NAME = 'organization_memberships' then
      orgs := array[case when TG_OP <> 'DELETE' then NEW."organization_id" end, case when TG_OP <> 'INSERT' then OLD."organization_id" end];
    elsif TG_TABLE_NAME = 'space_memberships' then
      select array_agg("organization_id") into orgs from "spaces"
        where "id" in (case when TG_OP <> 'DELETE' then NEW."space_id" end, case when TG_OP <> 'INSERT' then OLD."space_id" end);
    else
      select array_agg("organization_id") into orgs from "products"
        where "id" in (case when TG_OP <> 'DELETE' then NEW."product_id" end, case when TG_OP <> 'INSERT' then OLD."product_id" end);
    end if;
    update "organizations" set "listing_version" = "listing_version" + 1, "listing_xact" = xact
      where "id" = any(orgs) and "listing_xact" is distinct from xact;
    return null;
  end $$;`;

const ACCESS_TABLES = ['organization_memberships', 'space_memberships', 'product_grants'];

export class Migration20261203171500 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "organizations" add column "listing_version" bigint not null default 0, add column "listing_xact" bigint null;`);

    this.addSql(`alter table "products" add column "organization_id" uuid null;`);
    this.addSql(`update "products" set "organization_id" = s."organization_id" from "spaces" s where s."id" = "products"."space_id";`);
    this.addSql(`create index "products_organization_id_updated_at_id_is_archived_index" on "products" ("organization_id", "updated_at", "id", "is_archived");`);
    // Hand-written, like products_space_listing_cover_index (INCLUDE is PostgreSQL's; the snapshot
    // does not see it): the organization index's key with the columns the visibility conditions and
    // the filters read, so an organization page with filters (and its count) is an index-only walk.
    this.addSql(
      `create index "products_organization_listing_cover_index" on "products" ("organization_id", "updated_at", "id", "is_archived") ` +
        `include ("space_id", "created_by_id", "model_family", "deployment_status", "product_type", "model_task_type", "risk_classification", "search_text");`,
    );
    this.addSql(`drop index "products_created_by_id_index";`);
    this.addSql(`create index "products_created_by_id_organization_id_space_id_index" on "products" ("created_by_id", "organization_id", "space_id");`);
    this.addSql(`
      create function "set_product_organization"() returns trigger language plpgsql as $$
      begin
        NEW."organization_id" := (select "organization_id" from "spaces" where "id" = NEW."space_id");
        return NEW;
      end $$;`);
    this.addSql(`
      create trigger "products_set_organization"
        before insert or update of "space_id", "organization_id" on "products"
        for each row execute function "set_product_organization"();`);
    this.addSql(`
      create function "move_space_products"() returns trigger language plpgsql as $$
      begin
        update "products" set "organization_id" = NEW."organization_id" where "space_id" = NEW."id";
        return null;
      end $$;`);
    this.addSql(`
      create trigger "spaces_move_products"
        after update of "organization_id" on "spaces"
        for each row when (OLD."organization_id" is distinct from NEW."organization_id")
        execute function "move_space_products"();`);

    this.addSql(BUMP_SPACE_WITH_ORGANIZATION);
    this.addSql(BUMP_ORGANIZATION);
    for (const table of ACCESS_TABLES) {
      this.addSql(`
        create constraint trigger "${table}_bump_organization_listing_version"
          after insert or update or delete on "${table}"
          deferrable initially deferred
          for each row execute function "bump_organization_listing_version"();`);
    }
  }

  override async down(): Promise<void> {
    for (const table of ACCESS_TABLES) {
      this.addSql(`drop trigger if exists "${table}_bump_organization_listing_version" on "${table}";`);
    }
    this.addSql(`drop function if exists "bump_organization_listing_version"();`);
    this.addSql(BUMP_SPACE_ONLY);
    this.addSql(`drop trigger if exists "spaces_move_products" on "spaces";`);
    this.addSql(`drop function if exists "move_space_products"();`);
    this.addSql(`drop trigger if exists "products_set_organization" on "products";`);
    this.addSql(`drop function if exists "set_product_organization"();`);

    this.addSql(`alter table "organizations" drop column "listing_version", drop column "listing_xact";`);

    this.addSql(`drop index "products_organization_listing_cover_index";`);
    this.addSql(`drop index "products_created_by_id_organization_id_space_id_index";`);
    this.addSql(`create index "products_created_by_id_index" on "products" ("created_by_id");`);
    this.addSql(`drop index "products_organization_id_updated_at_id_is_archived_index";`);
    this.addSql(`alter table "products" drop column "organization_id";`);
  }

}
