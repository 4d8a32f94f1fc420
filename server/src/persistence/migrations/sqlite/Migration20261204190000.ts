import { Migration } from '@mikro-orm/migrations';

/**
 * A space's slug, name or organization changing bumps the listing_version of the organization it
 * was in and the one it is in (see the PostgreSQL twin): an organization listing's match list
 * keeps the slug and name of each match's space under that version.
 */
export class Migration20261204190000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(
      'create trigger `spaces_update_bump_organization_listing_version` after update of `slug`, `name`, `organization_id` on `spaces` ' +
        'for each row when old.slug is not new.slug or old.name is not new.name or old.organization_id is not new.organization_id ' +
        'begin update `organizations` set `listing_version` = `listing_version` + 1 where `id` in (old.organization_id, new.organization_id); end;',
    );
  }

  override async down(): Promise<void> {
    this.addSql('drop trigger if exists `spaces_update_bump_organization_listing_version`;');
  }

}
