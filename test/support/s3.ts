/**
 * A local S3-compatible server for tests (@20minutes/s3rver, which checks request signatures).
 * Known gaps of the test server (see /work/shared/STACK.md and the storage conformance suite):
 * AbortMultipartUpload and ListParts answer 405; suffix ranges (`bytes=-N`) and `bytes=0-0` are
 * answered wrongly; part sizes are not checked (real S3 wants ≥ 5 MiB for all but the last part);
 * a failed part upload can leave a damaged part behind (real S3 keeps the earlier part); and it
 * canonicalizes query strings with encodeURIComponent instead of RFC 3986, so a presigned URL whose
 * parameters contain ' ( ) * or ! — every download URL with `filename*=UTF-8''…` — fails its
 * signature check. For those, start a lenient twin over the same directory:
 *   const s3 = await startS3Server();
 *   const twin = await startS3Server({ directory: s3.directory, allowMismatchedSignatures: true });
 *   fetch(url.replace(s3.endpoint, twin.endpoint))
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface S3TestServer {
  /** e.g. http://127.0.0.1:41234 — use with forcePathStyle: true. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Where the server keeps buckets and objects (removed by stop() unless it was passed in). */
  directory: string;
  stop(): Promise<void>;
}

export interface S3TestServerOptions {
  bucket?: string;
  /** Serve an existing directory (e.g. a twin of another server); it is then not removed on stop(). */
  directory?: string;
  /** Accept requests whose signature does not match (only for what the test server signs wrongly). */
  allowMismatchedSignatures?: boolean;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
  allowMismatchedSignatures: boolean;
}) => S3rverInstance;

// The package is CommonJS without type declarations.
const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverConstructor;

export async function startS3Server(options: S3TestServerOptions = {}): Promise<S3TestServer> {
  const ownsDirectory = options.directory === undefined;
  const directory = options.directory ?? (await mkdtemp(path.join(tmpdir(), 's3rver-')));
  const removeDirectory = () => (ownsDirectory ? rm(directory, { recursive: true, force: true }) : Promise.resolve());
  const bucket = options.bucket ?? 'model-repository-test';
  // Buckets through configureBuckets: s3rver rejects the SDK's CreateBucket signature.
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
    allowMismatchedSignatures: options.allowMismatchedSignatures ?? false,
  });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (err) {
    await removeDirectory();
    throw err;
  }
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    directory,
    async stop() {
      if (stopped) return;
      stopped = true;
      server.httpServer?.closeAllConnections(); // keep-alive sockets would delay close()
      await server.close();
      await removeDirectory();
    },
  };
}
