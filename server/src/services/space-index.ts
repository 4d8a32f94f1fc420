/**
 * A space's match columns in memory: for each of its products, in listing order (updated_at
 * desc, id desc), what the listing's filters read — is_archived, model_family, product_type,
 * deployment_status, model_task_type, risk_classification and the search text behind `q`. Any
 * filter combination's exact matches and total are then a scan in this process instead of a
 * statement that walks the space's index (the cost of every combination not asked before).
 *
 * Read once per space and listing_version (ModelService keeps it in the listing cache under
 * the space's count scope), so it is never stale, only unreachable. Each condition is the one
 * listingWhere writes, evaluated as the database evaluates it: equality of the stored text, and
 * `q` as `search_text LIKE '%term%'`: a substring test, case-sensitive on PostgreSQL and ASCII
 * case-insensitive on SQLite (its LIKE folds ASCII letters only).
 */
import type { ModelFilters } from './models.ts';
import { ID_LENGTH, MatchList, runListing, type ListingSql } from './summaries.ts';
import type { Em } from '../persistence/orm.ts';
import { dialectOf } from '../persistence/orm.ts';

/** The largest space kept in memory by default (ListingCache's indexRows): a larger one is listed by statements. */
export const SPACE_INDEX_ROWS = 20_000;

/** Between two products' search texts: text in PostgreSQL cannot hold it, so no term crosses it. */
const SEPARATOR = '\u0000';
/** How many `q` terms' matches an index keeps (most recently used; their bytes are counted up front). */
const TERMS_KEPT = 32;

interface IndexRow {
  id: string;
  is_archived: boolean | number;
  model_family: string | null;
  product_type: string;
  deployment_status: string;
  model_task_type: string | null;
  risk_classification: string | null;
  search_text: string;
}

/** ASCII letters lowercased, everything else as is: what SQLite's LIKE compares. */
function asciiLower(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (s) => s.toLowerCase()) : text;
}

export class SpaceIndex {
  private constructor(
    /** The ids, ID_LENGTH characters each, end to end. */
    private readonly ids: string,
    readonly length: number,
    private readonly archived: Uint8Array,
    /** Column values, one array slot per product; equal values share one string. */
    private readonly columns: {
      model_family: (string | null)[];
      product_type: string[];
      deployment_status: string[];
      model_task_type: (string | null)[];
      risk_classification: (string | null)[];
    },
    /** The search texts end to end, SEPARATOR between two (ASCII-lowercased on SQLite). */
    private readonly text: string,
    /** Where each product's search text starts in `text`; one entry more, past the end. */
    private readonly starts: Uint32Array,
    /** SQLite: ASCII letters of a term match either case. */
    private readonly foldAscii: boolean,
  ) {}

  /** The products containing each of the last TERMS_KEPT terms asked (see containing). */
  private readonly terms = new Map<string, Uint32Array>();

  /**
   * The space's products' match columns, in listing order: one index-only walk of the space's
   * listing index (its cover index holds every column read). null when the space has more than
   * `max` products, when the index would take more than `maxBytes` (see bytes), or a row the
   * index cannot represent (an id that is not a UUID's
   * text, a search text holding SEPARATOR: rows written by hand on SQLite).
   */
  static async read(em: Em, spaceId: string, max: number, maxBytes: number): Promise<SpaceIndex | null> {
    const where: ListingSql = { sql: 'p.space_id = ?', params: [spaceId] };
    const rows = await runListing<IndexRow>(
      em,
      'select p.id, p.is_archived, p.model_family, p.product_type, p.deployment_status, p.model_task_type, p.risk_classification, ' +
        `p.search_text from products p where ${where.sql} order by p.updated_at desc, p.id desc limit ?`,
      [...where.params, max + 1],
    );
    if (rows.length > max) return null;
    const foldAscii = dialectOf(em) === 'sqlite';
    const n = rows.length;
    const shared = new Map<string, string>();
    const intern = <T extends string | null>(value: T): T => {
      if (value === null) return value;
      const known = shared.get(value);
      if (known !== undefined) return known as T;
      shared.set(value, value);
      return value;
    };
    const archived = new Uint8Array(n);
    const columns = {
      model_family: new Array<string | null>(n),
      product_type: new Array<string>(n),
      deployment_status: new Array<string>(n),
      model_task_type: new Array<string | null>(n),
      risk_classification: new Array<string | null>(n),
    };
    const starts = new Uint32Array(n + 1);
    const texts = new Array<string>(n);
    let offset = 0;
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      if (r.id.length !== ID_LENGTH || r.search_text.includes(SEPARATOR)) return null;
      archived[i] = r.is_archived ? 1 : 0;
      columns.model_family[i] = intern(r.model_family);
      columns.product_type[i] = intern(r.product_type);
      columns.deployment_status[i] = intern(r.deployment_status);
      columns.model_task_type[i] = intern(r.model_task_type);
      columns.risk_classification[i] = intern(r.risk_classification);
      texts[i] = foldAscii ? asciiLower(r.search_text) : r.search_text;
      starts[i] = offset;
      offset += texts[i]!.length + 1;
      if (2 * offset > maxBytes) return null;
    }
    starts[n] = offset;
    const index = new SpaceIndex(rows.map((r) => r.id).join(''), n, archived, columns, texts.join(SEPARATOR), starts, foldAscii);
    return index.bytes > maxBytes ? null : index;
  }

  /** What the index holds, in bytes (for the listing cache's budget): strings at 2 bytes a code unit, the conservative case. */
  get bytes(): number {
    // The kept terms' matches at their largest: every product, TERMS_KEPT times.
    return this.ids.length + this.archived.byteLength + this.starts.byteLength + 2 * this.text.length + this.length * (5 * 8 + 4 * TERMS_KEPT);
  }

  /**
   * The matches of `filters` (the listing's conditions besides the space), in listing order, as
   * a MatchList of at most `keep` of them, and how many there are. null when a term holds
   * SEPARATOR (the listing's statement decides those).
   */
  match(filters: ModelFilters, keep: number): { list: MatchList; total: number } | null {
    const tests: ((i: number) => boolean)[] = [];
    if (!filters.include_archived) tests.push((i) => this.archived[i] === 0);
    const equal = (column: (string | null)[], value: string | undefined) => {
      if (value) tests.push((i) => column[i] === value);
    };
    equal(this.columns.model_family, filters.model_family);
    if (filters.types && filters.types.length > 0) {
      const types = new Set<string>(filters.types);
      const column = this.columns.product_type;
      tests.push((i) => types.has(column[i]!));
    }
    equal(this.columns.deployment_status, filters.deployment_status);
    equal(this.columns.model_task_type, filters.model_task_type ?? undefined);
    equal(this.columns.risk_classification, filters.risk_classification);

    let candidates: Uint32Array | null = null;
    if (filters.q !== undefined && filters.q !== '') {
      const lowered = filters.q.toLowerCase();
      const term = this.foldAscii ? asciiLower(lowered) : lowered;
      if (term.includes(SEPARATOR)) return null;
      candidates = this.containing(term);
    }
    const count = candidates ? candidates.length : this.length;
    const out = new Uint32Array(count);
    let total = 0;
    for (let k = 0; k < count; k++) {
      const i = candidates ? candidates[k]! : k;
      let ok = true;
      for (let t = 0; t < tests.length; t++) {
        if (!tests[t]!(i)) {
          ok = false;
          break;
        }
      }
      if (ok) out[total++] = i;
    }
    const kept = Math.min(total, keep);
    const parts = new Array<string>(kept);
    for (let k = 0; k < kept; k++) parts[k] = this.ids.slice(out[k]! * ID_LENGTH, (out[k]! + 1) * ID_LENGTH);
    return { list: new MatchList(parts.join(''), kept, null, null), total };
  }

  /**
   * The products whose search text contains `term`, in listing order: one pass of indexOf over all
   * the texts, kept for the next listing with the same term (and other filters).
   */
  private containing(term: string): Uint32Array {
    const kept = this.terms.get(term);
    if (kept) {
      this.terms.delete(term);
      this.terms.set(term, kept);
      return kept;
    }
    const found: number[] = [];
    let at = this.text.indexOf(term);
    while (at !== -1) {
      // The product whose text holds offset `at`: the last start at or before it.
      let lo = 0;
      let hi = this.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (this.starts[mid]! <= at) lo = mid;
        else hi = mid - 1;
      }
      found.push(lo);
      at = this.text.indexOf(term, this.starts[lo + 1]!);
    }
    const matches = Uint32Array.from(found);
    if (this.terms.size >= TERMS_KEPT) this.terms.delete(this.terms.keys().next().value!);
    this.terms.set(term, matches);
    return matches;
  }
}
