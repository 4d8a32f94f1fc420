import { Migration } from '@mikro-orm/migrations';

/**
 * The covering index for filtered space listings that PostgreSQL's migration of the same name
 * adds (hand-written, invisible to the snapshot): SQLite has no INCLUDE, so the filtered columns
 * follow the key, which serves the same index-only scans.
 */
export class Migration20261203170000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      'create index `products_space_listing_cover_index` on `products` (`space_id`, `is_archived`, `updated_at`, `id`, ' +
        '`model_family`, `deployment_status`, `product_type`, `model_task_type`, `risk_classification`, `search_text`);',
    );
  }

  override async down(): Promise<void> {
    this.addSql('drop index `products_space_listing_cover_index`;');
  }
}
