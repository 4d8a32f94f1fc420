/**
 * ListingCache: rendered pages, single summaries and match lists in one byte budget, each kind
 * only served as itself, and each switched off on its own. MatchList: its slices.
 */
import { describe, expect, it } from 'vitest';
import { ListingCache } from '../../server/src/services/listing-cache.ts';
import type { ModelPage } from '../../server/src/services/models.ts';
import { MatchList } from '../../server/src/services/summaries.ts';

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

  const id = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const space = (n: number) => ({ slug: `s${n}`, name: `S${n}`, listing_version: n });

  it('a match list gives the ids and spaces of any window inside it', () => {
    const ids = Array.from({ length: 7 }, (_, i) => id(i));
    const list = new MatchList(ids.join(''), 7, Uint32Array.from([0, 1, 0, 2, 2, 1, 0]), [space(0), space(1), space(2)]);
    expect(list.idsOf(0, 3)).toEqual(ids.slice(0, 3));
    expect(list.idsOf(5, 50)).toEqual(ids.slice(5));
    expect(list.idsOf(7, 10)).toEqual([]);
    expect(list.spacesOf(2, 3, undefined).map((s) => s.slug)).toEqual(['s0', 's2', 's2']);
    const inSpace = new MatchList(ids.join(''), 7, null, null);
    expect(inSpace.spacesOf(1, 2, space(9))).toEqual([space(9), space(9)]);
    expect(list.bytes).toBeGreaterThan(7 * 36);
  });

  it('keeps match lists under their own keys, within the one budget, and none with listRows: 0', () => {
    const cache = new ListingCache(20_000);
    const big = new MatchList(Array.from({ length: 400 }, (_, i) => id(i)).join(''), 400, null, null); // 14,400 bytes
    cache.setList('scope\u0000filters', big);
    expect(cache.getList('scope\u0000filters')).toBe(big);
    expect(cache.get('scope\u0000filters')).toBeUndefined();
    expect(cache.getRow('list\u0000scope\u0000filters')).toBeUndefined();
    cache.setList('other', new MatchList(Array.from({ length: 200 }, (_, i) => id(i)).join(''), 200, null, null));
    expect(cache.getList('scope\u0000filters')).toBeUndefined(); // pushed out: the two do not fit
    expect(cache.getList('other')).toBeDefined();

    const none = new ListingCache(1 << 20, { listRows: 0 });
    none.setList('k', big);
    expect(none.getList('k')).toBeUndefined();
    expect(none.listRows).toBe(0);
  });
});
