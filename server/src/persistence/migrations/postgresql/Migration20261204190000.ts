import { Migration } from '@mikro-orm/migrations';

/**
 * A space's slug, name or organization changing bumps the listing_version of the organization it
 * was in and the one it is in (deferred, once per transaction, like the other bumps). An
 * organization listing's match list keeps the slug and name of each match's space under that
 * version (see MatchList in services/summaries.ts); and moving a space between organizations
 * changes both organizations' listings, of which the products' own bump reaches only the new one.
 */
export class Migration20261204190000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`
      create function "bump_organization_listing_version_for_space"() returns trigger language plpgsql as $$
      declare
        xact bigint := txid_current();
      begin
        update "organizations" set "listing_version" = "listing_version" + 1, "listing_xact" = xact
          where "id" in (OLD."organization_id", NEW."organization_id") and "listing_xact" is distinct from xact;
        return null;
      end $$;`);
    this.addSql(`
      create constraint trigger "spaces_bump_organization_listing_version"
        after update of "slug", "name", "organization_id" on "spaces"
        deferrable initially deferred
        for each row
        when (OLD."slug" is distinct from NEW."slug" or OLD."name" is distinct from NEW."name" or OLD."organization_id" is distinct from NEW."organization_id")
        execute function "bump_organization_listing_version_for_space"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "spaces_bump_organization_listing_version" on "spaces";`);
    this.addSql(`drop function if exists "bump_organization_listing_version_for_space"();`);
  }

}
