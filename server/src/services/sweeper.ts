/**
 * Background sweep, every SWEEP_INTERVAL_SECONDS in every server process (0 = off):
 * 1. sessions past `expires_at` become `expired`;
 * 2. staged bytes of expired, aborted and failed sessions are discarded (`cleaned_at` set);
 * 3. bytes of deleted artifacts are removed from storage (`bytes_removed_at` set);
 * 4. webhook deliveries older than WEBHOOK_DELIVERY_RETENTION_DAYS are removed.
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
}

export class Sweeper {
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<SweepReport> | null = null;

  constructor(
    readonly deps: ServiceDeps,
    private readonly uploads: UploadService,
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
    const { orm, storage, logger } = this.deps;
    const em = orm.em.fork();
    const report: SweepReport = { expired: 0, stagedCleaned: 0, stagedFailed: 0, bytesRemoved: 0, bytesFailed: 0, deliveriesRemoved: 0 };

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

    const deleted = await em.find(
      ModelArtifact,
      { status: 'deleted', bytes_removed_at: null },
      { orderBy: [{ updated_at: 'asc' }, { id: 'asc' }], limit: BATCH },
    );
    for (const artifact of deleted) {
      try {
        await storage.delete(artifact.storage_key);
        await em.nativeUpdate(ModelArtifact, { id: artifact.id, bytes_removed_at: null }, { bytes_removed_at: new Date() });
        report.bytesRemoved++;
      } catch (err) {
        report.bytesFailed++;
        logger.warn({ err, artifact_id: artifact.id }, 'sweep: could not remove the bytes of a deleted artifact');
        await em.nativeUpdate(ModelArtifact, { id: artifact.id }, { updated_at: new Date() }).catch(() => {});
      }
    }
    const retentionMs = this.deps.config.webhookDeliveryRetentionDays * 86_400_000;
    report.deliveriesRemoved = await em.nativeDelete(WebhookDelivery, { created_at: { $lt: new Date(now.getTime() - retentionMs) } });

    if (report.deliveriesRemoved + report.expired + report.stagedCleaned + report.stagedFailed + report.bytesRemoved + report.bytesFailed > 0) {
      logger.info({ ...report }, 'sweep');
    }
    return report;
  }
}
