/**
 * ListingCache: rendered pages and single summaries in one byte budget, each kind only served as
 * itself, and either kind switched off on its own.
 */
import { describe, expect, it } from 'vitest';
import { ListingCache } from '../../server/src/services/listing-cache.ts';
import type { ModelPage } from '../../server/src/services/models.ts';

const page = (bytes: number): ModelPage => ({ body: Buffer.alloc(bytes, 0x20), count: 1, total: 1, skip: 0, limit: 50 });

describe('ListingCache', () => {
  it('serves a page only as a page and a summary only as a summary', () => {
    const cache = new ListingCache(1 << 20);
    cache.set('["p"]', page(10));
    cache.setRow('r', Buffer.from('{"id":"r"}'));
    expect(cache.get('["p"]')?.body.length).toBe(10);
    expect(cache.getRow('["p"]')).toBeUndefined();
    expect(cache.get('r')).toBeUndefined();
    expect(cache.getRow('r')?.toString()).toBe('{"id":"r"}');
    expect(cache.rows).toBe(cache);
  });

  it('keeps pages and summaries within one budget, least recently used out first', () => {
    const cache = new ListingCache(10_000);
    for (let i = 0; i < 20; i++) cache.setRow(`row-${i}`, Buffer.alloc(900));
    // Each entry counts its bytes, its key (2 bytes a code unit) and 64: ~10 of 20 fit.
    expect(cache.size).toBeLessThan(11);
    expect(cache.getRow('row-19')).toBeDefined();
    expect(cache.getRow('row-0')).toBeUndefined();
    cache.set('["big"]', page(9_000));
    expect(cache.get('["big"]')).toBeDefined();
    expect(cache.getRow('row-19')).toBeUndefined(); // pushed out by the page
  });

  it('with rows: false keeps no summary, with pages: false no page; totals either way', () => {
    const noRows = new ListingCache(1 << 20, { rows: false });
    noRows.setRow('r', Buffer.from('{}'));
    expect(noRows.getRow('r')).toBeUndefined();
    expect(noRows.rows).toBeNull();
    noRows.set('["p"]', page(5));
    expect(noRows.get('["p"]')).toBeDefined();

    const noPages = new ListingCache(1 << 20, { pages: false });
    noPages.set('["p"]', page(5));
    expect(noPages.get('["p"]')).toBeUndefined();
    noPages.setRow('r', Buffer.from('{}'));
    expect(noPages.getRow('r')?.toString()).toBe('{}');
    noPages.setTotal('t', 7);
    expect(noPages.getTotal('t')).toBe(7);
  });
});
