/**
 * Runs artifact inspection (server/src/inspection) on stored bytes and keeps the result on the
 * artifact row. Reads go through the BlobStore as ranged reads (S3 too), at most
 * INSPECT_MAX_HEADER_BYTES per file.
 *
 * When an artifact is stored, inspection first runs with a small budget (INLINE_INSPECT_BYTES)
 * before the upload's response: safetensors, GGUF, zip and ONNX headers of a few MiB are done
 * then. A header that needs more is inspected again in the background with the full budget, and
 * the response carries `inspection: null` until that finishes. Nothing here ever fails an upload:
 * hostile or truncated headers become `inspection.error`; storage errors are logged.
 */
import type { Logger } from '../logger.ts';
import { requireProductEdit } from '../access/index.ts';
import { errors } from '../errors.ts';
import { inspect, InspectionLimitError, limitInspection, rangedSource, SourceReadError, type Inspection } from '../inspection/index.ts';
import { ModelArtifact, type Caller } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { isUuid } from '../persistence/queries.ts';
import { BlobNotFoundError } from '../storage/index.ts';
import type { ServiceDeps } from './index.ts';
import { artifactResponse, type ModelArtifactResponse } from './summaries.ts';

/** Budget of the inspection that runs before an upload's response. */
export const INLINE_INSPECT_BYTES = 4 * 1024 * 1024;

type Stored = Pick<ModelArtifact, 'id' | 'storage_key' | 'size_bytes'> & Partial<Pick<ModelArtifact, 'inspection' | 'inspected_format' | 'parameter_count'>>;

export class InspectionService {
  private readonly background = new Set<Promise<void>>();
  private readonly logger: Logger;

  constructor(readonly deps: ServiceDeps) {
    this.logger = deps.logger;
  }

  /**
   * Called once an artifact's row is committed: inspects it with the inline budget, stores the
   * result and sets it on `artifact` (so the response shows it), or queues the full inspection
   * in the background. Never throws.
   */
  async afterStore<T extends Stored>(artifact: T): Promise<T> {
    const max = this.deps.config.inspectMaxHeaderBytes;
    try {
      let result = await this.read(artifact, Math.min(INLINE_INSPECT_BYTES, max));
      if (result === 'over-limit') {
        if (max > INLINE_INSPECT_BYTES) {
          this.inBackground(artifact);
          return artifact;
        }
        result = await this.overLimit(artifact);
      }
      await this.save(artifact, result);
      Object.assign(artifact, columns(result));
    } catch (err) {
      this.logger.warn({ err, artifact_id: artifact.id }, 'artifact inspection failed');
    }
    return artifact;
  }

  /** `POST …/inspect`: inspects again with the full budget and waits for it. */
  async reinspect(em: Em, user: Caller, productId: string, artifactId: string): Promise<ModelArtifactResponse> {
    const { product } = await requireProductEdit(em, user, productId);
    const notFound = () => errors.notFound(`Artifact '${artifactId}' was not found.`);
    if (!isUuid(artifactId)) throw notFound();
    const artifact = await em.findOne(ModelArtifact, { id: artifactId.toLowerCase(), product: product.id, status: 'available' });
    if (!artifact) throw notFound();
    let result: Inspection | null;
    try {
      result = await this.full(artifact);
    } catch (err) {
      if (err instanceof SourceReadError && err.cause instanceof BlobNotFoundError) {
        this.logger.error({ artifact_id: artifact.id, key: artifact.storage_key }, 'artifact bytes are missing from storage');
        throw errors.artifactFileNotFound();
      }
      throw err;
    }
    await this.save(artifact, result);
    Object.assign(artifact, columns(result));
    return artifactResponse(artifact);
  }

  /** Resolves when no background inspection is running (tests, graceful shutdown). */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private inBackground(artifact: Stored): void {
    const run = (async () => {
      try {
        await this.save(artifact, await this.full(artifact));
      } catch (err) {
        this.logger.warn({ err, artifact_id: artifact.id }, 'background artifact inspection failed');
      }
    })();
    this.background.add(run);
    void run.finally(() => this.background.delete(run));
  }

  /** The inspection with the configured budget; a header past it is recorded as an error. */
  private async full(artifact: Stored): Promise<Inspection | null> {
    const result = await this.read(artifact, this.deps.config.inspectMaxHeaderBytes);
    return result === 'over-limit' ? this.overLimit(artifact) : result;
  }

  /** The format, with `error` saying the header is larger than INSPECT_MAX_HEADER_BYTES. */
  private async overLimit(artifact: Stored): Promise<Inspection | null> {
    const head = await this.source(artifact, 64).read(0, 64);
    return limitInspection(head, new InspectionLimitError(this.deps.config.inspectMaxHeaderBytes));
  }

  private async read(artifact: Stored, budget: number): Promise<Inspection | null | 'over-limit'> {
    if (artifact.size_bytes === 0) return null;
    try {
      return await inspect(this.source(artifact, budget), budget);
    } catch (err) {
      if (err instanceof InspectionLimitError) return 'over-limit';
      throw err;
    }
  }

  private source(artifact: Stored, budget: number) {
    return rangedSource(artifact.size_bytes, (range) => this.deps.storage.get(artifact.storage_key, range), budget);
  }

  private async save(artifact: Stored, result: Inspection | null): Promise<void> {
    const em = this.deps.orm.em.fork();
    await em.nativeUpdate(ModelArtifact, { id: artifact.id }, columns(result));
  }
}

function columns(result: Inspection | null) {
  return {
    inspection: result as ModelArtifact['inspection'],
    // Only a header that was read completely says what the file is (bytes that merely start like
    // a format, with an error after that, leave the summary to metadata and the file name).
    inspected_format: result && result.error === null ? result.format : null,
    parameter_count: result?.parameter_count ?? null,
  };
}
