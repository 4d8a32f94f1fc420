/**
 * `npm run admin -- dedup-storage`: brings artifacts stored before content addressing into it,
 * while the server keeps running. For every SHA-256 of available artifacts: one copy becomes the
 * blob (the one a blob row already names, else the oldest whose bytes are in storage), every
 * artifact with that digest is pointed at it and counted, and the other copies are queued for
 * removal — after `graceSeconds`, so downloads that already hold a presigned URL to an old key
 * (S3 redirect mode) finish first. Each digest is one short transaction holding its blob row, so
 * uploads and deletes of the same bytes meanwhile are counted correctly. Running it again is a
 * no-op.
 */
import { ContentBlob, ModelArtifact } from '../persistence/entities.ts';
import { dialectOf, type Em } from '../persistence/orm.ts';
import { dateParam } from '../persistence/raw.ts';
import type { BlobStore } from '../storage/index.ts';
import type { Logger } from '../logger.ts';
import { ContentBlobs } from './content-blobs.ts';

export interface DedupReport {
  /** Digests looked at (one per distinct content of available artifacts). */
  digests: number;
  /** Artifacts now pointing at another copy of their bytes. */
  artifacts_relinked: number;
  /** Duplicate copies removed from storage, and their bytes. */
  copies_removed: number;
  bytes_freed: number;
  /** Duplicate copies still queued (their removal failed; the sweeper retries). */
  copies_pending: number;
}

export async function dedupStorage(
  em: Em,
  deps: { storage: BlobStore; logger: Logger },
  opts: { graceSeconds: number; wait?: (ms: number) => Promise<void> },
): Promise<DedupReport> {
  const blobs = new ContentBlobs(deps);
  const report: DedupReport = { digests: 0, artifacts_relinked: 0, copies_removed: 0, bytes_freed: 0, copies_pending: 0 };
  const groups = await em.execute<{ sha256: string; size_bytes: number | string }[]>(
    "select sha256, size_bytes from model_artifacts where status = 'available' group by sha256, size_bytes order by sha256",
  );
  const lock = dialectOf(em) === 'postgresql' ? ' for update' : '';
  const retired: string[] = [];
  for (const group of groups) {
    report.digests++;
    const size = Number(group.size_bytes);
    const copies = await em.find(
      ModelArtifact,
      { sha256: group.sha256, size_bytes: size, status: 'available' },
      { orderBy: [{ created_at: 'asc' }, { id: 'asc' }], fields: ['id', 'storage_key', 'created_at'] },
    );
    const named = await em.findOne(ContentBlob, { sha256: group.sha256 });
    let canonical = named?.storage_key ?? null;
    if (canonical === null) {
      for (const c of copies) {
        if ((await deps.storage.head(c.storage_key))?.size === size) {
          canonical = c.storage_key;
          break;
        }
      }
    }
    if (canonical === null) {
      deps.logger.warn({ sha256: group.sha256 }, 'dedup-storage: no stored copy of these bytes; left as they are');
      continue;
    }
    const key = canonical;
    const notBefore = new Date(Date.now() + opts.graceSeconds * 1000);
    await em.transactional(async (tx) => {
      const now = new Date();
      const at = dateParam(tx, now);
      await tx.execute(
        'insert into content_blobs (sha256, size_bytes, storage_key, ref_count, created_at, updated_at) values (?, ?, ?, 0, ?, ?) on conflict (sha256) do nothing',
        [group.sha256, size, key, at, at],
      );
      const held = await tx.execute<{ storage_key: string }[]>(`select storage_key from content_blobs where sha256 = ?${lock}`, [group.sha256]);
      const blobKey = held[0]!.storage_key;
      const moving = await tx.find(ModelArtifact, { sha256: group.sha256, size_bytes: size, status: 'available', storage_key: { $ne: blobKey } }, { fields: ['id', 'storage_key'] });
      for (const artifact of moving) {
        await tx.nativeUpdate(ModelArtifact, { id: artifact.id }, { storage_key: blobKey, storage_uri: deps.storage.uri(blobKey) });
        await blobs.enqueue(tx, artifact.storage_key, notBefore);
        retired.push(artifact.storage_key);
      }
      report.artifacts_relinked += moving.length;
      const count = await tx.count(ModelArtifact, { storage_key: blobKey, status: { $ne: 'deleted' } });
      await tx.nativeUpdate(ContentBlob, { sha256: group.sha256 }, { ref_count: count, updated_at: now });
    });
  }
  if (retired.length > 0) {
    if (opts.graceSeconds > 0) await (opts.wait ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(opts.graceSeconds * 1000);
    for (let i = 0; i < retired.length; i += 100) {
      const drained = await blobs.drain(em, retired.slice(i, i + 100));
      report.copies_removed += drained.removed;
      report.bytes_freed += drained.bytes;
      report.copies_pending += drained.failed;
    }
  }
  return report;
}
