/**
 * Where an upload's bytes go: the chunk size and count of a session, each chunk's length and
 * offset, and the storage key and staged-upload handle of its artifact. Pure functions of the
 * session's sizes, shared by the upload service and the prefix digest.
 */
import type { UploadSession } from '../persistence/entities.ts';
import type { StagedUpload } from '../storage/index.ts';

const MiB = 1024 * 1024;
/** S3 refuses parts under 5 MiB (except the last). */
export const S3_MIN_CHUNK_SIZE = 5 * MiB;
/** S3 allows at most 10,000 parts. */
export const MAX_CHUNKS = 10_000;
/** chunk_size_bytes and upload_chunks.size_bytes are 32-bit integer columns. */
const MAX_CHUNK_SIZE = 2048 * MiB - MiB;

/** The storage key of an artifact's bytes (and of its upload's staged bytes). */
export const artifactKey = (productId: string, artifactId: string) => `artifacts/${productId}/${artifactId}`;

/**
 * The chunk size for an upload: the configured size, at least 5 MiB on S3, raised (to whole MiB)
 * so that no upload needs more than 10,000 chunks.
 */
export function chooseChunkSize(configured: number, totalSize: number, backend: 'fs' | 's3'): number {
  let size = Math.min(configured, MAX_CHUNK_SIZE);
  if (backend === 's3') size = Math.max(size, S3_MIN_CHUNK_SIZE);
  const floor = Math.ceil(totalSize / MAX_CHUNKS);
  if (size < floor) size = Math.ceil(floor / MiB) * MiB;
  return size;
}

/** Byte length of chunk `index`: the chunk size, or the remainder for the last chunk. */
export function chunkLength(s: Pick<UploadSession, 'chunk_count' | 'chunk_size_bytes' | 'total_size_bytes'>, index: number): number {
  return index < s.chunk_count - 1 ? s.chunk_size_bytes : s.total_size_bytes - s.chunk_size_bytes * (s.chunk_count - 1);
}

/** The staged-upload handle a session keeps (see BlobStore.beginStaged). */
export const stagedOf = (s: UploadSession): StagedUpload => ({ key: s.staging_key, uploadId: s.storage_upload_id ?? null });
