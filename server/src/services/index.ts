/**
 * The services of one server process, built once from the shared dependencies.
 */
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Orm } from '../persistence/orm.ts';
import type { BlobStore, BlobStoreOptions } from '../storage/index.ts';
import { ModelService } from './models.ts';
import { ListingCache } from './listing-cache.ts';
import { VersionService } from './versions.ts';
import { AliasService } from './aliases.ts';
import { ReviewService } from './reviews.ts';
import { UploadService } from './uploads.ts';
import { ArtifactService } from './artifacts.ts';
import { InspectionService } from './inspections.ts';
import { ContentBlobs } from './content-blobs.ts';
import { Sweeper } from './sweeper.ts';
import { SystemService } from './system.ts';
import { EventService } from './events.ts';
import { WebhookService } from './webhooks.ts';
import { WebhookWorker } from './webhook-worker.ts';
import { BodyGate } from './body-gate.ts';

export interface ServiceDeps {
  config: Config;
  orm: Orm;
  storage: BlobStore;
  logger: Logger;
}

export interface Services {
  models: ModelService;
  versions: VersionService;
  aliases: AliasService;
  reviews: ReviewService;
  uploads: UploadService;
  artifacts: ArtifactService;
  inspections: InspectionService;
  blobs: ContentBlobs;
  sweeper: Sweeper;
  system: SystemService;
  events: EventService;
  webhooks: WebhookService;
  /** Sends queued webhook deliveries; main.ts starts and stops it. */
  webhookWorker: WebhookWorker;
  /** How many upload bodies are read at once (shared by chunk and single-request uploads). */
  bodies: BodyGate;
}

export function createServices(deps: ServiceDeps): Services {
  const inspections = new InspectionService(deps);
  const blobs = new ContentBlobs(deps);
  const bodies = new BodyGate(deps.config.uploadConcurrentBodies);
  const uploads = new UploadService(deps, inspections, blobs, bodies);
  return {
    models: new ModelService(deps.orm, deps.config.listingCacheBytes > 0 ? new ListingCache(deps.config.listingCacheBytes) : null),
    versions: new VersionService(deps.orm),
    aliases: new AliasService(),
    reviews: new ReviewService(),
    uploads,
    artifacts: new ArtifactService(deps, inspections, blobs, bodies),
    inspections,
    blobs,
    sweeper: new Sweeper(deps, uploads, blobs),
    system: new SystemService(deps),
    events: new EventService(),
    webhooks: new WebhookService(deps.config),
    webhookWorker: new WebhookWorker(deps),
    bodies,
  };
}

/** The BlobStore options a Config describes (credentials come from the standard AWS chain). */
export function storageOptions(config: Config): BlobStoreOptions {
  if (config.storageBackend === 's3' && config.s3) {
    const { bucket, region, endpoint, forcePathStyle, prefix } = config.s3;
    return { backend: 's3', bucket, region, forcePathStyle, prefix, ...(endpoint ? { endpoint } : {}) };
  }
  return { backend: 'fs', dir: config.storageDir, directIo: config.storageDirectIo };
}
