/**
 * Query fragments that must read the same on SQLite and PostgreSQL.
 */
import { raw, type FilterQuery } from '@mikro-orm/core';
import type { Product } from './entities.ts';

/** Escape LIKE wildcards (and the escape character itself) with a backslash. */
export function escapeLike(term: string): string {
  return term.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The `q` filter: a case-insensitive substring match against `products.search_text`
 * (already lowercase, see productSearchText). Lowercasing happens in JS on both sides so the
 * two dialects agree on non-ASCII text. `escape '\'` is spelled out because SQLite has no
 * default escape character; PostgreSQL folds it into a constant pattern, so the pg_trgm
 * index still serves the query. Combine with `$and`:
 *   em.find(Product, { $and: [visibility, searchTextFilter(q), { is_archived: false }] })
 */
export function searchTextFilter(q: string): FilterQuery<Product> {
  return { [raw((alias: string) => `${alias}.search_text like ? escape '\\'`, [searchTextPattern(q)])]: [] } as FilterQuery<Product>;
}

/** The LIKE pattern of the `q` filter (what searchTextFilter binds; plain-SQL listings bind it too). */
export function searchTextPattern(q: string): string {
  return `%${escapeLike(q.toLowerCase())}%`;
}

/** True for a canonical UUID string (any version): path ids that fail this are 404s. */
export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
