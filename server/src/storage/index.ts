/**
 * Storage entry point: build the configured BlobStore once (main.ts) and pass it in.
 * Takes plain options, never process.env: config.ts owns the environment.
 */
import type { BlobStore } from './blob-store.ts';
import { FsBlobStore, type FsBlobStoreOptions } from './fs-blob-store.ts';
import { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.ts';

export type BlobStoreOptions = ({ backend: 'fs' } & FsBlobStoreOptions) | ({ backend: 's3' } & S3BlobStoreOptions);

export function createBlobStore(options: BlobStoreOptions): BlobStore {
  switch (options.backend) {
    case 'fs':
      return new FsBlobStore({ dir: options.dir });
    case 's3':
      return new S3BlobStore(options);
    default: {
      const unknown: never = options;
      throw new Error(`Unknown storage backend: ${(unknown as { backend: string }).backend}`);
    }
  }
}

export * from './blob-store.ts';
export { FsBlobStore } from './fs-blob-store.ts';
export type { FsBlobStoreOptions } from './fs-blob-store.ts';
export { S3BlobStore } from './s3-blob-store.ts';
export type { S3BlobStoreOptions } from './s3-blob-store.ts';
export { assertValidKey } from './secure-path.ts';
