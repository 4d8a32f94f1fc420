/**
 * Background sweep, every SWEEP_INTERVAL_SECONDS in every server process (0 = off):
 * 1. sessions past `expires_at` become `expired`;
 * 2. staged bytes of expired, aborted and failed sessions are discarded (`cleaned_at` set);
 * 3. bytes of deleted artifacts are removed from storage (`bytes_removed_at` set) unless other
 *    artifacts still use them (content-addressed storage, content-blobs.ts), and so are the other
 *    bytes queued for removal that nothing references;
 * 4. content blob reference counts that disagree with the artifact rows (after a crash) are set
 *    right; a blob no artifact uses is released;
 * 5. webhook deliveries older than WEBHOOK_DELIVERY_RETENTION_DAYS are removed.
 *
 * Safe with several processes: every state change is a conditional update, and the storage calls
 * are idempotent, so two sweepers on one row cost a duplicate call, never a wrong result.
 * A staged upload whose abort fails (S3 answering an error — the local test server answers
 * AbortMultipartUpload with 405) stays uncleaned and is retried on later sweeps; a failed row is
 * moved to the back of the queue (its `updated_at` is touched), so it never blocks the others.
 * On real S3, a bucket lifecycle rule for incomplete multipart uploads is the backstop.
 */
import type { ServiceDeps } from './index.ts';
import { ModelArtifact, UploadSession, WebhookDelivery } from '../persistence/entities.ts';
import type { UploadService } from './uploads.ts';
import type { ContentBlobs } from './content-blobs.ts';
import { raw } from '@mikro-orm/core';

/** Rows handled per category and sweep. */
const BATCH = 100;

export interface SweepReport {
  expired: number;
  stagedCleaned: number;
  stagedFailed: number;
  bytesRemoved: number;
  bytesFailed: number;
  deliveriesRemoved: number;
  blobsRepaired: number;
  blobsReleased: number;
}

export class Sweeper {
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<SweepReport> | null = null;

  constructor(
    readonly deps: ServiceDeps,
    private readonly uploads: UploadService,
    private readonly blobs: ContentBlobs,
  ) {}

  start(): void {
    const seconds = this.deps.config.sweepIntervalSeconds;
    if (seconds <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (!this.current) void this.runOnce().catch((err: unknown) => this.deps.logger.warn({ err }, 'sweep failed'));
    }, seconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One sweep (a sweep already running in this process is joined, not doubled). */
  runOnce(now: Date = new Date()): Promise<SweepReport> {
    this.current ??= this.sweep(now).finally(() => (this.current = null));
    return this.current;
  }

  private async sweep(now: Date): Promise<SweepReport> {
    const { orm, logger } = this.deps;
    const em = orm.em.fork();
    const report: SweepReport = { expired: 0, stagedCleaned: 0, stagedFailed: 0, bytesRemoved: 0, bytesFailed: 0, blobsRepaired: 0, blobsReleased: 0, deliveriesRemoved: 0 };

    report.expired = await em.nativeUpdate(
      UploadSession,
      { status: { $in: ['initialized', 'uploading'] }, expires_at: { $lte: now } },
      { status: 'expired', updated_at: now, row_version: raw('row_version + 1') },
    );

    const stale = await em.find(
      UploadSession,
      { status: { $in: ['expired', 'aborted', 'failed'] }, cleaned_at: null },
      { orderBy: [{ updated_at: 'asc' }, { id: 'asc' }], limit: BATCH },
    );
    for (const session of stale) {
      try {
        if (await this.uploads.freeStaged(em, session)) report.stagedCleaned++;
        else report.stagedFailed++;
      } catch (err) {
        report.stagedFailed++;
        logger.warn({ err, upload_id: session.id }, 'sweep: could not discard staged bytes');
        await em.nativeUpdate(UploadSession, { id: session.id }, { updated_at: new Date() }).catch(() => {});
      }
    }

    // Deleted artifacts whose bytes were never confirmed gone: queued like any unreferenced key
    // (drain removes a key only when no blob row and no live artifact names it).
    const deleted = await em.find(
      ModelArtifact,
      { status: 'deleted', bytes_removed_at: null },
      { orderBy: [{ updated_at: 'asc' }, { id: 'asc' }], limit: BATCH },
    );
    for (const artifact of deleted) await this.blobs.enqueue(em, artifact.storage_key, now);
    const repaired = await this.blobs.repair(em, now);
    report.blobsRepaired = repaired.repaired;
    report.blobsReleased = repaired.released;
    const drained = await this.blobs.drain(em, undefined, now);
    report.bytesRemoved = drained.removed;
    report.bytesFailed = drained.failed;
    const retentionMs = this.deps.config.webhookDeliveryRetentionDays * 86_400_000;
    report.deliveriesRemoved = await em.nativeDelete(WebhookDelivery, { created_at: { $lt: new Date(now.getTime() - retentionMs) } });

    if (Object.values(report).some((n) => n > 0)) {
      logger.info({ ...report }, 'sweep');
    }
    return report;
  }
}
