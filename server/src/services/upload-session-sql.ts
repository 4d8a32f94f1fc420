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
 * Marks a session that still takes chunks `uploading` and returns its received-chunk map, as the
 * chunk rows have it now: received_map and received_bytes are kept by triggers on upload_chunks
 * (Migration20261203173000), in the statement that inserts or deletes a chunk row, so
 * they never disagree with the rows and nothing here recounts. A session without a map (untracked:
 * written by hand, or an instant upload) still has its bytes recounted from its rows.
 */
const RECEIVED_BYTES_OF_ROWS = '(select coalesce(sum(c.size_bytes), 0) from upload_chunks c where c.session_id = upload_sessions.id)';
const COUNT_CHUNK_SQL =
  `update upload_sessions set status = 'uploading', updated_at = ?, row_version = row_version + 1, ` +
  `received_bytes = case when received_map is null then ${RECEIVED_BYTES_OF_ROWS} else received_bytes end ` +
  `where id = ? and status in (${WRITABLE.map((status) => `'${status}'`).join(', ')}) returning received_map`;
const INDEX_RECEIVED_SQL = 'select chunk_index from upload_chunks where session_id = ? and chunk_index = ?';

/**
 * Indexes of the chunks received so far, ascending (or, with `only`, whether that one was), from
 * the chunk rows: the source of truth, read where the map is missing and at completion.
 */
export async function receivedIndexes(em: Em, sessionId: string, only?: number): Promise<number[]> {
  const rows =
    only === undefined
      ? await executeHot<{ chunk_index: number }>(em, 'chunk_indexes', RECEIVED_INDEXES_SQL, [sessionId])
      : await executeHot<{ chunk_index: number }>(em, 'chunk_index_received', INDEX_RECEIVED_SQL, [sessionId, only]);
  return rows.map((r) => Number(r.chunk_index));
}

/** The received-chunk map of a session with no chunk yet (see UploadSession.received_map). */
export function emptyReceivedMap(chunkCount: number): string {
  return '00'.repeat(Math.ceil(chunkCount / 8));
}

/** The indexes a received-chunk map has, ascending. */
export function indexesOfMap(map: string): number[] {
  const bytes = Buffer.from(map, 'hex');
  const indexes: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    let byte = bytes[i]!;
    if (byte === 0) continue;
    const base = i << 3;
    for (let bit = 0; byte !== 0; bit++, byte >>= 1) if (byte & 1) indexes.push(base + bit);
  }
  return indexes;
}

/**
 * The session's received chunks, ascending: from its map when it has one (no chunk row read), else
 * from its chunk rows.
 */
export async function receivedChunks(em: Em, session: Pick<UploadSession, 'id' | 'received_map'>): Promise<number[]> {
  return typeof session.received_map === 'string' ? indexesOfMap(session.received_map) : receivedIndexes(em, session.id);
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
 * Marks the session `uploading`, if it still takes chunks, and returns the chunks it has received
 * (ascending, this one included); null when it no longer takes chunks (completed, failed, aborted
 * or expired meanwhile).
 */
export async function countChunk(em: Em, sessionId: string, now: Date): Promise<number[] | null> {
  const [row] = await executeHot<{ received_map: string | null }>(em, 'chunk_count', COUNT_CHUNK_SQL, [dateParam(em, now), sessionId]);
  if (!row) return null;
  return receivedChunks(em, { id: sessionId, received_map: row.received_map });
}
