/**
 * The statements of the upload hot path, as plain SQL (executeHot): every chunk request reads its
 * session, records its chunk row and counts it, and building those queries through the ORM cost
 * several times running them. Conditions on the session's status make each write safe with any
 * number of processes serving one upload (docs/architecture.md, "Consistency rules").
 */
import { randomUUID } from 'node:crypto';
import type { EntityData } from '@mikro-orm/core';
import { UploadSession } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { dateParam, executeHot } from '../persistence/raw.ts';

/** The statuses of a session that still takes chunks and can complete. */
export const WRITABLE = ['initialized', 'uploading'] as const;

/**
 * Upload session `id` (of product `productId` when given) as the database has it now, as a managed
 * entity of a fresh fork (never from an identity map), or null. One plain statement mapped like a
 * findOne's result: every chunk request reads its session, and building the query through the
 * ORM cost several times the lookup.
 */
export async function findSession(
  em: Em,
  id: string,
  productId?: string,
  chunkIndex?: number,
): Promise<{ session: UploadSession; chunkReceived?: boolean } | null> {
  sessionSql ??= sessionStatements(em);
  type Row = EntityData<UploadSession> & { chunk_received?: number | string };
  const [row] =
    productId === undefined
      ? await executeHot<Row>(em, 'upload_session', sessionSql.byId, [id])
      : chunkIndex === undefined
        ? await executeHot<Row>(em, 'upload_session_of_product', sessionSql.ofProduct, [id, productId])
        : await executeHot<Row>(em, 'upload_session_with_chunk', sessionSql.withChunk, [chunkIndex, id, productId]);
  if (!row) return null;
  const { chunk_received: received, ...columns } = row;
  const session = em.fork().map(UploadSession, columns as EntityData<UploadSession>);
  return received === undefined ? { session } : { session, chunkReceived: Number(received) > 0 };
}

let sessionSql: { byId: string; ofProduct: string; withChunk: string } | undefined;
/**
 * The session lookups, naming the entity's columns (not `*`: a prepared statement whose result
 * columns change under it, e.g. after another process migrated the schema, fails on PostgreSQL).
 */
function sessionStatements(em: Em): { byId: string; ofProduct: string; withChunk: string } {
  const columns = em
    .getMetadata()
    .get(UploadSession.meta.className)
    .props.flatMap((prop) => (prop.persist === false ? [] : (prop.fieldNames ?? [])))
    .map((column) => `s.${column}`)
    .join(', ');
  const select = `select ${columns} from upload_sessions s where s.id = ?`;
  const received = '(select count(*) from upload_chunks c where c.session_id = s.id and c.chunk_index = ?) as chunk_received';
  return {
    byId: select,
    ofProduct: `${select} and s.product_id = ?`,
    withChunk: `select ${columns}, ${received} from upload_sessions s where s.id = ? and s.product_id = ?`,
  };
}

const RECEIVED_INDEXES_SQL = 'select chunk_index from upload_chunks where session_id = ? order by chunk_index';
const INSERT_CHUNK_SQL =
  'insert into upload_chunks (id, session_id, chunk_index, size_bytes, sha256, etag, received_at) values (?, ?, ?, ?, ?, ?, ?)';
/**
 * The session's byte count, derived from its chunk rows in the same statement (so a connection lost
 * between a chunk's row and this update cannot leave it short: the next chunk recounts), on a
 * session that still takes chunks; returns the row when it did.
 */
const RECEIVED_BYTES_OF_ROWS = '(select coalesce(sum(c.size_bytes), 0) from upload_chunks c where c.session_id = upload_sessions.id)';
const COUNT_CHUNK_SQL =
  `update upload_sessions set received_bytes = ${RECEIVED_BYTES_OF_ROWS}, status = 'uploading', updated_at = ?, row_version = row_version + 1 ` +
  `where id = ? and status in (${WRITABLE.map((status) => `'${status}'`).join(', ')}) returning id`;
/** The byte count recomputed after chunk rows were removed. */
const RECOUNT_SQL = `update upload_sessions set received_bytes = ${RECEIVED_BYTES_OF_ROWS}, updated_at = ?, row_version = row_version + 1 where id = ?`;
const INDEX_RECEIVED_SQL = 'select chunk_index from upload_chunks where session_id = ? and chunk_index = ?';

/**
 * Indexes of the chunks received so far, ascending (or, with `only`, whether that one was). Every
 * chunk answer lists them.
 */
export async function receivedIndexes(em: Em, sessionId: string, only?: number): Promise<number[]> {
  const rows =
    only === undefined
      ? await executeHot<{ chunk_index: number }>(em, 'chunk_indexes', RECEIVED_INDEXES_SQL, [sessionId])
      : await executeHot<{ chunk_index: number }>(em, 'chunk_index_received', INDEX_RECEIVED_SQL, [sessionId, only]);
  return rows.map((r) => Number(r.chunk_index));
}

/** Inserts the row of a chunk received for the first time (a twin insert fails on the unique index). */
export async function insertChunkRow(
  em: Em,
  sessionId: string,
  index: number,
  chunk: { size: number; sha256: string; etag: string | null },
  now: Date,
): Promise<void> {
  await executeHot(em, 'chunk_insert', INSERT_CHUNK_SQL, [randomUUID(), sessionId, index, chunk.size, chunk.sha256, chunk.etag, dateParam(em, now)]);
}

/**
 * Counts the session's bytes from its chunk rows and marks it `uploading`, if it still takes
 * chunks; false when it no longer does (completed, failed, aborted or expired meanwhile).
 */
export async function countChunk(em: Em, sessionId: string, now: Date): Promise<boolean> {
  return (await executeHot(em, 'chunk_count', COUNT_CHUNK_SQL, [dateParam(em, now), sessionId])).length === 1;
}

/** Recounts the session's bytes after chunk rows were removed. */
export async function recountReceivedBytes(em: Em, sessionId: string, now: Date): Promise<void> {
  await em.execute(RECOUNT_SQL, [dateParam(em, now), sessionId]);
}
