/**
 * Rendered model listings of this process, bounded by size (least recently used entries go
 * first): whole pages, and single summaries that pages of any listing are assembled from.
 * Entries never need invalidating: their keys carry the version of what they show (see
 * ModelService.listSpace and rowKey in summaries.ts), so a change makes the old entries
 * unreachable and they age out.
 */
import { LRUCache } from 'lru-cache';
import type { ModelPage } from './models.ts';
import type { SummaryRowCache } from './summaries.ts';

export class ListingCache implements SummaryRowCache {
  /** Pages and rendered summaries share the budget: page keys are JSON arrays, summary keys start with the product id. */
  private readonly entries: LRUCache<string, ModelPage | Buffer>;
  /**
   * Exact totals (X-Total-Count) by count scope and filters (see ModelService.page): the pages of
   * one listing that differ in skip or limit share one count. The scope carries the version of
   * what is counted, so an entry, like a page, is never stale, only unreachable.
   */
  private readonly totals = new LRUCache<string, number>({ max: 10_000 });

  private readonly keepPages: boolean;
  private readonly keepRows: boolean;

  /**
   * `maxBytes`: the budget for rendered pages and summaries and their keys (a key's UTF-16 code
   * units count 2 bytes). `pages: false` keeps no pages, `rows: false` no summaries: bench:list
   * measures the listing with neither page repeating another (`pages: false`), and with nothing
   * rendered before (both false); totals are kept either way.
   */
  constructor(maxBytes: number, opts: { pages?: boolean; rows?: boolean } = {}) {
    this.keepPages = opts.pages ?? true;
    this.keepRows = opts.rows ?? true;
    this.entries = new LRUCache<string, ModelPage | Buffer>({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) => (Buffer.isBuffer(entry) ? entry.length : entry.body.length) + 2 * key.length + 64,
    });
  }

  /** The rendered summaries, or null when this cache keeps none. */
  get rows(): SummaryRowCache | null {
    return this.keepRows ? this : null;
  }

  get(key: string): ModelPage | undefined {
    if (!this.keepPages) return undefined;
    const entry = this.entries.get(key);
    return entry === undefined || Buffer.isBuffer(entry) ? undefined : entry;
  }

  /** A page larger than the whole budget is not kept. */
  set(key: string, page: ModelPage): void {
    if (this.keepPages) this.entries.set(key, page);
  }

  getRow(key: string): Buffer | undefined {
    const entry = this.entries.get(key);
    return Buffer.isBuffer(entry) ? entry : undefined;
  }

  setRow(key: string, json: Buffer): void {
    if (this.keepRows) this.entries.set(key, json);
  }

  getTotal(key: string): number | undefined {
    return this.totals.get(key);
  }

  setTotal(key: string, total: number): void {
    this.totals.set(key, total);
  }

  /** How many pages and summaries are kept. */
  get size(): number {
    return this.entries.size;
  }
}
