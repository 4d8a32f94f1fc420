import { Migration } from '@mikro-orm/migrations';

/**
 * A covering index for filtered space listings (hand-written, like the pg_trgm index: INCLUDE is
 * PostgreSQL's, and the snapshot does not see it). It has the key of
 * products_space_id_is_archived_updated_at_id_index and carries every column a listing filters
 * on, so a page and its count with filters (`q` included) are an index-only scan over the space's
 * entries, in order, instead of a heap visit per product or bitmaps over the whole table.
 */
export class Migration20261203170000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "products_space_listing_cover_index" on "products" ("space_id", "is_archived", "updated_at", "id") ` +
        `include ("model_family", "deployment_status", "product_type", "model_task_type", "risk_classification", "search_text");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "products_space_listing_cover_index";`);
  }
}
