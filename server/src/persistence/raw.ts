/**
 * Raw rows on both dialects: running hot statements, and converting columns the way the entity
 * hydrator would.
 */
import { dialectOf, type Em } from './orm.ts';

/** A datetime column as the driver returns it in a raw row: Date (PostgreSQL) or epoch milliseconds (SQLite). */
export function rawDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value;
  if (typeof value === 'number' || typeof value === 'bigint') return new Date(Number(value));
  if (typeof value === 'string') return new Date(/^-?\d+$/.test(value) ? Number(value) : value);
  throw new TypeError(`not a datetime: ${String(value)}`);
}

/**
 * A statement every request runs (authentication, access checks), as a raw row list like
 * `em.execute`. On PostgreSQL it runs as a named prepared statement: the server parses and plans
 * it once per connection instead of on every call (planning reads each table's and index's size
 * from the file system, which costs more than the lookups themselves). Inside a transaction,
 * or on SQLite, it is a plain `em.execute`. `sql` uses `?` placeholders; `name` must be unique
 * per distinct `sql`. Listeners of the knex 'query' event see it like any other statement, and
 * errors are MikroORM's driver exceptions either way. Dates go in as `dateParam` makes them.
 */
export async function executeHot<T>(em: Em, name: string, sql: string, params: readonly unknown[]): Promise<T[]> {
  if (dialectOf(em) !== 'postgresql' || em.isInTransaction()) {
    return em.execute<T[]>(sql, [...params]);
  }
  let text = pgText.get(sql);
  if (text === undefined) {
    let n = 0;
    text = sql.replace(/\?/g, () => `$${++n}`);
    pgText.set(sql, text);
  }
  const client = em.getKnex().client as KnexClient;
  const connection = await client.acquireConnection();
  try {
    client.emit('query', { sql, bindings: params, method: 'raw', __knexUid: connection.__knexUid });
    const result = await connection.query({ name, text, values: params });
    return result.rows as T[];
  } catch (err) {
    // The same exception classes em.execute throws (UniqueConstraintViolationException, …).
    throw em.getDriver().convertException(err as Error);
  } finally {
    await client.releaseConnection(connection);
  }
}

/** `?` placeholders rewritten as `$1, $2, …` (hot statements are constants with no `?` in literals). */
const pgText = new Map<string, string>();

interface KnexClient {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(connection: PgConnection): Promise<void>;
  emit(event: 'query', data: Record<string, unknown>): void;
}

interface PgConnection {
  __knexUid?: string;
  query(config: { name: string; text: string; values: readonly unknown[] }): Promise<{ rows: unknown[] }>;
}

/** A Date as a raw statement's parameter: what MikroORM itself stores (epoch milliseconds on SQLite). */
export function dateParam(em: Em, date: Date): unknown {
  return em.getPlatform().processDateProperty(date);
}
