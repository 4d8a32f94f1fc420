/**
 * Content-addressed storage: the bytes of each SHA-256 are stored once per installation, however
 * many artifacts have them (fine-tunes sharing a base, re-registrations, promotions between
 * spaces).
 *
 * - `content_blobs` has one row per stored SHA-256: where the bytes are (the key of the upload
 *   that stored them first: nothing is copied or renamed) and how many non-deleted artifacts use
 *   them. The count changes only inside the transaction that creates or deletes those artifact
 *   rows, by single atomic statements (an upsert, a decrement), so two processes completing
 *   uploads of the same new bytes at once end with one row, two artifacts and a count of 2.
 * - Bytes that nothing references any more — a last reference released, or the duplicate copy an
 *   upload stored before its digest was known — are queued in `blob_deletions` in that same
 *   transaction and removed after it commits; the sweeper retries the queue and repairs counts
 *   that disagree with the artifact rows. A key is never removed while a blob row or a
 *   non-deleted artifact names it.
 * - Artifacts stored before content addressing have no blob row: they keep their own bytes until
 *   `npm run admin -- dedup-storage` folds them in (see admin.ts).
 */
import { BlobDeletion, ContentBlob, ModelArtifact } from '../persistence/entities.ts';
import { dialectOf, type Em } from '../persistence/orm.ts';
import { dateParam } from '../persistence/raw.ts';
import type { ServiceDeps } from './index.ts';

const BATCH = 100;

export interface RepairReport {
  /** Blob rows whose count was set to the number of artifacts using them. */
  repaired: number;
  /** Blob rows removed because no artifact uses them (their bytes queued for removal). */
  released: number;
}

export class ContentBlobs {
  constructor(readonly deps: Pick<ServiceDeps, 'storage' | 'logger'>) {}

  /**
   * In the transaction that creates an artifact with `sha256` whose bytes were just stored at
   * `ownKey`: counts the reference and returns the key the artifact must use — `ownKey` when these
   * are new bytes, else the key of the stored copy (and `ownKey` is queued for removal).
   */
  async reference(tx: Em, sha256: string, size: number, ownKey: string, now: Date): Promise<string> {
    const at = dateParam(tx, now);
    const rows = await tx.execute<{ storage_key: string }[]>(
      'insert into content_blobs (sha256, size_bytes, storage_key, ref_count, created_at, updated_at) values (?, ?, ?, 1, ?, ?) ' +
        'on conflict (sha256) do update set ref_count = content_blobs.ref_count + 1, updated_at = excluded.updated_at returning storage_key',
      [sha256, size, ownKey, at, at],
    );
    const key = rows[0]!.storage_key;
    if (key !== ownKey) await this.enqueue(tx, ownKey, now);
    return key;
  }

  /** Instant upload: a reference to bytes already stored with this digest and size, or null. */
  async referenceExisting(tx: Em, sha256: string, size: number, now: Date): Promise<string | null> {
    const rows = await tx.execute<{ storage_key: string }[]>(
      'update content_blobs set ref_count = ref_count + 1, updated_at = ? where sha256 = ? and size_bytes = ? returning storage_key',
      [dateParam(tx, now), sha256, size],
    );
    return rows[0]?.storage_key ?? null;
  }

  /** Whether bytes with this digest and size are stored (the instant-upload offer). */
  async stored(em: Em, sha256: string, size: number): Promise<boolean> {
    return (await em.count(ContentBlob, { sha256, size_bytes: size })) > 0;
  }

  /**
   * In the transaction that marks `artifact` deleted: drops its reference; when it was the last
   * one (or the artifact predates content addressing and nothing else uses its key), queues the
   * bytes for removal. Otherwise the artifact is done with storage at once (`bytes_removed_at`).
   */
  async release(tx: Em, artifact: Pick<ModelArtifact, 'id' | 'storage_key'>, now: Date): Promise<void> {
    const key = artifact.storage_key;
    const rows = await tx.execute<{ ref_count: number | string }[]>(
      'update content_blobs set ref_count = ref_count - 1, updated_at = ? where storage_key = ? returning ref_count',
      [dateParam(tx, now), key],
    );
    let last: boolean;
    if (rows.length > 0) {
      last = Number(rows[0]!.ref_count) <= 0;
      if (last) await tx.nativeDelete(ContentBlob, { storage_key: key });
    } else {
      last = (await tx.count(ModelArtifact, { storage_key: key, status: { $ne: 'deleted' }, id: { $ne: artifact.id } })) === 0;
    }
    if (last) await this.enqueue(tx, key, now);
    else await tx.nativeUpdate(ModelArtifact, { id: artifact.id }, { bytes_removed_at: now });
  }

  /** Queues bytes for removal (in the caller's transaction); `notBefore` delays it. */
  async enqueue(tx: Em, key: string, notBefore: Date): Promise<void> {
    const at = dateParam(tx, notBefore);
    await tx.execute(
      'insert into blob_deletions (storage_key, not_before, created_at) values (?, ?, ?) on conflict (storage_key) do nothing',
      [key, at, dateParam(tx, new Date())],
    );
  }

  /**
   * Removes queued bytes that are due (only `keys`, when given) and that nothing names any more,
   * marking deleted artifacts with those keys `bytes_removed_at`. Failures stay queued for the
   * next sweep. Returns the number of keys removed and the bytes they held.
   */
  async drain(em: Em, keys?: readonly string[], now = new Date()): Promise<{ removed: number; bytes: number; failed: number }> {
    const { storage, logger } = this.deps;
    const due = await em.find(
      BlobDeletion,
      { ...(keys ? { storage_key: { $in: [...keys] } } : {}), not_before: { $lte: now } },
      { orderBy: { not_before: 'asc' }, limit: BATCH },
    );
    const out = { removed: 0, bytes: 0, failed: 0 };
    for (const { storage_key: key } of due) {
      try {
        const inUse =
          (await em.count(ContentBlob, { storage_key: key })) > 0 || (await em.count(ModelArtifact, { storage_key: key, status: { $ne: 'deleted' } })) > 0;
        if (!inUse) {
          const size = (await storage.head(key))?.size ?? 0;
          await storage.delete(key);
          out.removed++;
          out.bytes += size;
        }
        // Either way, deleted artifacts with this key hold no bytes of their own any more.
        await em.nativeUpdate(ModelArtifact, { storage_key: key, status: 'deleted', bytes_removed_at: null }, { bytes_removed_at: new Date() });
        await em.nativeDelete(BlobDeletion, { storage_key: key });
      } catch (err) {
        out.failed++;
        logger.warn({ err, key }, 'could not remove unreferenced bytes; the sweeper retries');
        // To the back of the queue, so a key that keeps failing never blocks the others.
        await em.nativeUpdate(BlobDeletion, { storage_key: key }, { not_before: new Date(Date.now() + 60_000) }).catch(() => {});
      }
    }
    return out;
  }

  /**
   * Sweeper: sets every blob count that disagrees with the artifact rows right, and releases blobs
   * no artifact uses. Each row is recounted in its own transaction holding the row (PostgreSQL:
   * `for update`; SQLite writes are serial), so a reference counted concurrently is never lost.
   */
  async repair(em: Em, now = new Date()): Promise<RepairReport> {
    const report: RepairReport = { repaired: 0, released: 0 };
    const live = "(select count(*) from model_artifacts a where a.storage_key = b.storage_key and a.status <> 'deleted')";
    const wrong = await em.execute<{ storage_key: string }[]>(`select b.storage_key from content_blobs b where b.ref_count <> ${live} limit ${BATCH}`);
    const lock = dialectOf(em) === 'postgresql' ? ' for update' : '';
    for (const { storage_key: key } of wrong) {
      await em.transactional(async (tx) => {
        const locked = await tx.execute<{ ref_count: number | string }[]>(`select ref_count from content_blobs where storage_key = ?${lock}`, [key]);
        if (locked.length === 0) return;
        const actual = await tx.count(ModelArtifact, { storage_key: key, status: { $ne: 'deleted' } });
        if (actual === Number(locked[0]!.ref_count)) return;
        if (actual === 0) {
          await tx.nativeDelete(ContentBlob, { storage_key: key });
          await this.enqueue(tx, key, now);
          report.released++;
        } else {
          await tx.nativeUpdate(ContentBlob, { storage_key: key }, { ref_count: actual, updated_at: now });
          report.repaired++;
        }
      });
    }
    if (report.repaired + report.released > 0) this.deps.logger.warn({ ...report }, 'content blob counts repaired');
    return report;
  }
}
