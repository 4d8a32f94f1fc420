import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setImmediate as tick } from 'node:timers/promises';
import {
  contentDisposition,
  ExactLengthStream,
  openBlobStore,
  PartLengthError,
  type BlobStore,
} from '../../../server/src/storage/index.ts';
import { S3BlobStore, type S3BlobStoreOptions } from '../../../server/src/storage/s3-blob-store.ts';
import { startS3Server, type S3TestServer } from '../../support/s3.ts';
import { describeBlobStoreConformance } from './conformance.ts';

const PREFIX = 'tenant-a/blobs';
let s3: S3TestServer;
/** Same data, but accepts the presigned URLs s3rver itself would mis-verify (see test/support/s3.ts). */
let lenientTwin: S3TestServer;

beforeAll(async () => {
  s3 = await startS3Server();
  lenientTwin = await startS3Server({ directory: s3.directory, allowMismatchedSignatures: true });
});
afterAll(async () => {
  await lenientTwin?.stop();
  await s3?.stop();
});

const optionsFor = (server: S3TestServer, overrides: { bucket?: string; prefix?: string; secretAccessKey?: string } = {}): S3BlobStoreOptions => ({
  bucket: overrides.bucket ?? server.bucket,
  region: server.region,
  endpoint: server.endpoint,
  forcePathStyle: true,
  ...('prefix' in overrides ? { prefix: overrides.prefix } : { prefix: `/${PREFIX}/` }), // slashes are trimmed
  credentials: { accessKeyId: server.accessKeyId, secretAccessKey: overrides.secretAccessKey ?? server.secretAccessKey },
});
const storeOn = (server: S3TestServer, overrides: { bucket?: string; prefix?: string; secretAccessKey?: string } = {}): BlobStore =>
  new S3BlobStore(optionsFor(server, overrides));

describeBlobStoreConformance({
  name: 's3 (s3rver)',
  createStore: async () => storeOn(s3),
  createBrokenStore: async () => storeOn(s3, { bucket: 'no-such-bucket' }),
  partSize: 5 * 1024 * 1024, // S3's minimum for every part but the last (s3rver does not check it)
  expectedUri: (key) => `s3://${s3.bucket}/${PREFIX}/${key}`,
  capabilities: { readStagedParts: false, presign: true, localFiles: false, directIo: false },
  fetchDownloadUrl: (url) => {
    expect(url.startsWith(`${s3.endpoint}/${s3.bucket}/${PREFIX}/`)).toBe(true);
    return fetch(url.replace(s3.endpoint, lenientTwin.endpoint));
  },
  testServerQuirks: { abortUnsupported: true, unknownUploadIdAccepted: true, failedPartUploadDamagesPart: true },
});

describe('S3BlobStore specifics', () => {
  it('openBlobStore loads the S3 store on demand', async () => {
    const store = await openBlobStore({ backend: 's3', ...optionsFor(s3) });
    expect(store).toBeInstanceOf(S3BlobStore);
  });

  const body = (bytes: Buffer) => Readable.from([bytes], { objectMode: false });

  it('keeps objects under the prefix', async () => {
    const prefixed = storeOn(s3);
    const bare = storeOn(s3, { prefix: undefined });
    try {
      const data = randomBytes(100);
      const key = `artifacts/${randomUUID()}`;
      await prefixed.put(key, body(data), { contentType: 'application/octet-stream' });
      expect(await bare.head(key)).toBeNull();
      expect((await buffer(await bare.get(`${PREFIX}/${key}`))).equals(data)).toBe(true);
      expect(bare.uri(key)).toBe(`s3://${s3.bucket}/${key}`);
    } finally {
      await prefixed.close();
      await bare.close();
    }
  });

  it('signs presigned URLs that expire and cannot be altered', async () => {
    const store = storeOn(s3);
    try {
      const key = `artifacts/${randomUUID()}`;
      await store.put(key, body(randomBytes(10)), { contentType: 'application/octet-stream' });
      const url = new URL((await store.downloadUrl(key, { fileName: 'a.bin', contentType: 'application/octet-stream', expiresInSeconds: 60 }))!);
      expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
      url.searchParams.set('response-content-type', 'text/html'); // tampering → rejected by the strict server
      expect((await fetch(url)).status).toBe(403);
    } finally {
      await store.close();
    }
  });

  it('fails the ping with wrong credentials', async () => {
    const store = storeOn(s3, { secretAccessKey: 'wrong' });
    try {
      await expect(store.ping()).rejects.toThrow(/signature/i);
    } finally {
      await store.close();
    }
  });
});

// UploadPart sends the part body with Content-Length = size. If the bytes completing that length
// went out before the store knew no more would follow, S3 could accept a part whose body was
// actually too long. The end-to-end test cannot catch this reliably (it is a race), so check here.
describe('ExactLengthStream (the UploadPart body)', () => {
  function observe(stream: ExactLengthStream) {
    const seen = { bytes: 0, ended: false, error: null as unknown };
    stream.on('data', (c: Buffer) => (seen.bytes += c.length));
    stream.on('end', () => (seen.ended = true));
    stream.on('error', (e) => (seen.error = e));
    return seen;
  }

  it('holds back the chunk that completes the length until the body ends', async () => {
    const stream = new ExactLengthStream(10);
    const seen = observe(stream);
    stream.write(Buffer.alloc(6));
    stream.write(Buffer.alloc(4));
    await tick();
    expect(seen.bytes).toBe(6);
    stream.end();
    await tick();
    expect(seen).toMatchObject({ bytes: 10, ended: true, error: null });
  });

  it('fails on excess without ever passing on the full length', async () => {
    const stream = new ExactLengthStream(10);
    const seen = observe(stream);
    stream.write(Buffer.alloc(10));
    stream.write(Buffer.alloc(1));
    await tick();
    expect(seen.error).toBeInstanceOf(PartLengthError);
    expect(seen.bytes).toBeLessThan(10);
  });

  it('fails at end when too short', async () => {
    const stream = new ExactLengthStream(10);
    const seen = observe(stream);
    stream.end(Buffer.alloc(9));
    await tick();
    expect(seen.error).toMatchObject({ expected: 10, received: 9 });
    expect(seen.ended).toBe(false);
  });
});

describe('contentDisposition', () => {
  it('gives an ASCII fallback and the UTF-8 name', () => {
    expect(contentDisposition('model.onnx')).toBe(`attachment; filename="model.onnx"; filename*=UTF-8''model.onnx`);
    expect(contentDisposition('Größe (final)*.gguf')).toBe(
      `attachment; filename="Gr__e (final)*.gguf"; filename*=UTF-8''Gr%C3%B6%C3%9Fe%20%28final%29%2A.gguf`,
    );
  });

  it('neutralises quotes, backslashes, percent signs, path separators and control characters', () => {
    expect(contentDisposition('a"b\\c%d/e\r\nf\u0000.bin')).toBe(
      `attachment; filename="a_b_c_d_e__f_.bin"; filename*=UTF-8''a%22b_c%25d_e__f_.bin`,
    );
    expect(contentDisposition('../../etc/passwd')).toMatch(/^attachment; filename="\.\._\.\._etc_passwd"; /);
    expect(contentDisposition('evil\u202Excod.onnx')).toBe(`attachment; filename="evil_xcod.onnx"; filename*=UTF-8''evil_xcod.onnx`);
  });

  it('falls back to a name when none is usable', () => {
    expect(contentDisposition('')).toBe(`attachment; filename="download"; filename*=UTF-8''download`);
    expect(contentDisposition('..')).toBe(`attachment; filename="download"; filename*=UTF-8''download`);
  });

  it('shortens long names, keeping the extension and whole characters', () => {
    const header = contentDisposition(`${'😀'.repeat(400)}.safetensors`);
    const utf8 = decodeURIComponent(header.split("filename*=UTF-8''")[1]!);
    expect(Array.from(utf8)).toHaveLength(150);
    expect(utf8.endsWith('😀.safetensors')).toBe(true);
    expect(header.length).toBeLessThan(2000);
  });
});
