/**
 * Storage entry point: open the configured BlobStore once (main.ts) and pass it in.
 * Takes plain options, never process.env: config.ts owns the environment.
 *
 * The S3 store (and with it @aws-sdk/client-s3, ~11 MB of resident memory) is loaded only when
 * the S3 backend is asked for: nothing here imports s3-blob-store.ts statically.
 */
import type { BlobStore } from './blob-store.ts';
import { FsBlobStore, type FsBlobStoreOptions } from './fs-blob-store.ts';
import type { S3BlobStoreOptions } from './s3-blob-store.ts';

export type BlobStoreOptions = ({ backend: 'fs' } & FsBlobStoreOptions) | ({ backend: 's3' } & S3BlobStoreOptions);

export async function openBlobStore(options: BlobStoreOptions): Promise<BlobStore> {
  switch (options.backend) {
    case 'fs':
      return new FsBlobStore({ dir: options.dir, ...(options.directIo === undefined ? {} : { directIo: options.directIo }) });
    case 's3': {
      const { S3BlobStore } = await import('./s3-blob-store.ts');
      return new S3BlobStore(options);
    }
    default: {
      const unknown: never = options;
      throw new Error(`Unknown storage backend: ${(unknown as { backend: string }).backend}`);
    }
  }
}

export * from './blob-store.ts';
export { FsBlobStore, fsUriOf } from './fs-blob-store.ts';
export type { FsBlobStoreOptions } from './fs-blob-store.ts';
// Types only (erased): import the S3BlobStore class from './s3-blob-store.ts' where it is needed.
export type { S3BlobStore, S3BlobStoreOptions } from './s3-blob-store.ts';
export { assertValidKey } from './secure-path.ts';
