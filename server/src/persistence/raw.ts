/**
 * Reading raw rows (`em.execute`) on both dialects: what the entity hydrator would convert.
 */

/** A datetime column as the driver returns it in a raw row: Date (PostgreSQL) or epoch milliseconds (SQLite). */
export function rawDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  if (typeof value === 'number' || typeof value === 'bigint') return new Date(Number(value));
  if (typeof value === 'string') return new Date(/^-?\d+$/.test(value) ? Number(value) : value);
  throw new TypeError(`not a datetime: ${String(value)}`);
}
