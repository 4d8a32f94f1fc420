/**
 * Rendered model listings of this process, bounded by size (least recently used pages go first).
 * Entries never need invalidating: their keys carry the version of what they show (see
 * ModelService.listSpace), so a change makes the old entries unreachable and they age out.
 */
import { LRUCache } from 'lru-cache';
import type { ModelPage } from './models.ts';

export class ListingCache {
  private readonly pages: LRUCache<string, ModelPage>;
  /**
   * Exact totals (X-Total-Count) by count scope and filters (see ModelService.page): the pages of
   * one listing that differ in skip or limit share one count. The scope carries the version of
   * what is counted, so an entry, like a page, is never stale, only unreachable.
   */
  private readonly totals = new LRUCache<string, number>({ max: 10_000 });

  private readonly keepPages: boolean;

  /**
   * `maxBytes`: the budget for rendered pages and their keys (a key's UTF-16 code units count 2
   * bytes). `pages: false` keeps totals only: every page is rendered, as when no request repeats
   * another (bench:list measures the uncached path so).
   */
  constructor(maxBytes: number, opts: { pages?: boolean } = {}) {
    this.keepPages = opts.pages ?? true;
    this.pages = new LRUCache<string, ModelPage>({
      maxSize: maxBytes,
      sizeCalculation: (page, key) => page.body.length + 2 * key.length + 64,
    });
  }

  get(key: string): ModelPage | undefined {
    return this.keepPages ? this.pages.get(key) : undefined;
  }

  /** A page larger than the whole budget is not kept. */
  set(key: string, page: ModelPage): void {
    if (this.keepPages) this.pages.set(key, page);
  }

  getTotal(key: string): number | undefined {
    return this.totals.get(key);
  }

  setTotal(key: string, total: number): void {
    this.totals.set(key, total);
  }

  get size(): number {
    return this.pages.size;
  }
}
