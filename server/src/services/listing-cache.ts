/**
 * Rendered model listings of this process, bounded by size (least recently used entries go
 * first): whole pages, single summaries that pages of any listing are assembled from, and match
 * lists (a listing's first matches, in order) that say which summaries a page holds.
 * Entries never need invalidating: their keys carry the version of what they show (see
 * ModelService.listSpace and rowKey in summaries.ts), so a change makes the old entries
 * unreachable and they age out.
 */
import { LRUCache } from 'lru-cache';
import type { ModelPage } from './models.ts';
import { MatchList, type SummaryRowCache } from './summaries.ts';
import { SPACE_INDEX_ROWS, SpaceIndex } from './space-index.ts';

/** How many matches a match list keeps at most by default: pages with skip + limit beyond it are read by statements. */
export const LIST_ROWS = 10_000;

export class ListingCache implements SummaryRowCache {
  /**
   * Pages, rendered summaries, match lists and space indexes share the budget: page keys are
   * JSON arrays, summary keys start with the product id, list keys with `list` and a NUL, index
   * keys with `index` and a NUL.
   */
  private readonly entries: LRUCache<string, ModelPage | Buffer | MatchList | SpaceIndex>;
  /**
   * Exact totals (X-Total-Count) by count scope and filters (see ModelService.page): the pages of
   * one listing that differ in skip or limit share one count. The scope carries the version of
   * what is counted, so an entry, like a page, is never stale, only unreachable.
   */
  private readonly totals = new LRUCache<string, number>({ max: 10_000 });
  /** How many listings of a count scope were read by statements (see noteRead). */
  private readonly reads = new LRUCache<string, number>({ max: 10_000 });

  private readonly keepPages: boolean;
  private readonly keepRows: boolean;
  /** The most matches a list keeps (0: no lists). */
  readonly listRows: number;
  /** The most products of a space whose match columns are kept (SpaceIndex; 0: none). */
  readonly indexRows: number;

  /**
   * `maxBytes`: the budget for rendered pages and summaries and their keys (a key's UTF-16 code
   * units count 2 bytes). `pages: false` keeps no pages, `rows: false` no summaries: bench:list
   * measures the listing with neither page repeating another (`pages: false`), and with nothing
   * rendered before (both false); totals are kept either way. `listRows`: the most matches a
   * match list keeps (LIST_ROWS by default; 0 keeps no lists). `indexRows`: the largest space
   * whose match columns are kept (SPACE_INDEX_ROWS by default; 0 keeps none).
   */
  constructor(
    /** The budget of everything kept. */
    readonly maxBytes: number,
    opts: { pages?: boolean; rows?: boolean; listRows?: number; indexRows?: number } = {},
  ) {
    this.keepPages = opts.pages ?? true;
    this.keepRows = opts.rows ?? true;
    this.listRows = opts.listRows ?? LIST_ROWS;
    this.indexRows = opts.indexRows ?? SPACE_INDEX_ROWS;
    this.entries = new LRUCache<string, ModelPage | Buffer | MatchList | SpaceIndex>({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) =>
        (Buffer.isBuffer(entry) ? entry.length : entry instanceof MatchList || entry instanceof SpaceIndex ? entry.bytes : entry.body.length) +
        2 * key.length +
        64,
    });
  }

  /** The rendered summaries, or null when this cache keeps none. */
  get rows(): SummaryRowCache | null {
    return this.keepRows ? this : null;
  }

  get(key: string): ModelPage | undefined {
    if (!this.keepPages) return undefined;
    const entry = this.entries.get(key);
    return entry === undefined || Buffer.isBuffer(entry) || entry instanceof MatchList || entry instanceof SpaceIndex ? undefined : entry;
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

  /** The match list kept under a listing's count scope and filters (the key of its total). */
  getList(key: string): MatchList | undefined {
    const entry = this.entries.get(`list\u0000${key}`);
    return entry instanceof MatchList ? entry : undefined;
  }

  setList(key: string, list: MatchList): void {
    if (this.listRows > 0) this.entries.set(`list\u0000${key}`, list);
  }

  /** A space's match columns, kept under its count scope (which names its listing_version). */
  getIndex(scope: string): SpaceIndex | undefined {
    const entry = this.entries.get(`index\u0000${scope}`);
    return entry instanceof SpaceIndex ? entry : undefined;
  }

  setIndex(scope: string, index: SpaceIndex): void {
    if (this.indexRows > 0) this.entries.set(`index\u0000${scope}`, index);
  }

  /** Counts one more listing of `scope` read by statements; returns how many there were, this one included. */
  noteRead(scope: string): number {
    const n = (this.reads.get(scope) ?? 0) + 1;
    this.reads.set(scope, n);
    return n;
  }

  /** A listing (count scope and filters) whose matches a list cannot hold: its statements answer it at this version. */
  markUnlistable(key: string): void {
    this.reads.set(`list\u0000${key}`, Number.NEGATIVE_INFINITY);
  }

  isUnlistable(key: string): boolean {
    return this.reads.get(`list\u0000${key}`) === Number.NEGATIVE_INFINITY;
  }

  /** `scope`'s space cannot be indexed (too large): noteRead never asks for it again at this version. */
  noteUnindexable(scope: string): void {
    this.reads.set(scope, Number.NEGATIVE_INFINITY);
  }

  getTotal(key: string): number | undefined {
    return this.totals.get(key);
  }

  setTotal(key: string, total: number): void {
    this.totals.set(key, total);
  }

  /** How many pages, summaries and match lists are kept. */
  get size(): number {
    return this.entries.size;
  }
}
