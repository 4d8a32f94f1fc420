/**
 * One behaviour suite for every BlobStore implementation (fs.test.ts, s3.test.ts run it).
 * Every test reads bytes back through the store; implementation-specific checks (files on disk,
 * objects under a prefix) live in the per-backend test files.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobNotFoundError,
  BlobRangeError,
  BlobTooLargeError,
  InvalidBlobKeyError,
  PartLengthError,
  StagedAbortError,
  StagedUploadNotFoundError,
  type BlobStore,
  type BlobStoreCapabilities,
  type StagedPart,
  type StagedUpload,
} from '../../../server/src/storage/index.ts';

export interface ConformanceOptions {
  name: string;
  /** A store on an empty location; closed after the suite. */
  createStore(): Promise<BlobStore>;
  /** A store whose ping must fail (missing bucket, unusable directory). */
  createBrokenStore(): Promise<BlobStore>;
  /** Size of every staged part but the last. S3 needs ≥ 5 MiB, so the S3 suite uses that. */
  partSize: number;
  /** What uri(key) must return. */
  expectedUri(key: string): string;
  /** What the store must declare; the suite then holds it to that. */
  capabilities: BlobStoreCapabilities;
  /** How to fetch a URL downloadUrl returns (needed with `capabilities.presign`). */
  fetchDownloadUrl: ((url: string) => Promise<Response>) | null;
  /** Behaviour of the local S3 test server that real S3 does not share; each one skips a check. */
  testServerQuirks?: {
    /** AbortMultipartUpload answers 405: abortStaged must then reject with StagedAbortError. */
    abortUnsupported?: boolean;
    /** Unknown UploadIds are accepted by UploadPart and answered 500 by Complete. */
    unknownUploadIdAccepted?: boolean;
    /** A part upload that fails midway overwrites the stored part (s3rver writes parts in place; S3 does not). */
    failedPartUploadDamagesPart?: boolean;
  };
}

const CHUNK = 64 * 1024;

/** A body delivered in CHUNK-sized pieces, as a network request would. */
function bodyOf(bytes: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += CHUNK) yield bytes.subarray(i, i + CHUNK);
    })(),
    { objectMode: false },
  );
}

/** A body that never ends; `produced` tells how much of it was ever pulled. */
function endlessBody(): { body: Readable; produced: () => number } {
  let produced = 0;
  const chunk = randomBytes(CHUNK);
  const body = new Readable({
    read() {
      produced += chunk.length;
      this.push(chunk);
    },
  });
  return { body, produced: () => produced };
}

/** A body that delivers `bytes` and then fails like a dropped client connection. */
function failingBody(bytes: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield* bodyOf(bytes);
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('client connection reset');
    })(),
    { objectMode: false },
  );
}

const readAll = async (stream: Readable) => buffer(stream);

export function describeBlobStoreConformance(options: ConformanceOptions): void {
  const { partSize } = options;
  const quirks = options.testServerQuirks ?? {};

  describe(`BlobStore conformance: ${options.name}`, () => {
    let store: BlobStore;
    beforeAll(async () => {
      store = await options.createStore();
    });
    afterAll(async () => {
      await store?.close();
    });

    const newKey = () => `artifacts/${randomUUID()}/${randomUUID()}`;
    const meta = (totalSize: number) => ({ totalSize, contentType: 'application/octet-stream' });

    /** Splits `data` into parts of partSize (last one shorter). */
    function partsOf(data: Buffer) {
      const parts: { index: number; offset: number; size: number; bytes: Buffer }[] = [];
      for (let offset = 0, index = 0; offset < data.length; offset += partSize, index++) {
        const bytes = data.subarray(offset, offset + partSize);
        parts.push({ index, offset, size: bytes.length, bytes });
      }
      return parts;
    }

    async function sendPart(staged: StagedUpload, part: { index: number; offset: number; size: number; bytes: Buffer }, replace = false) {
      const { etag } = await store.putPart(staged, { index: part.index, offset: part.offset, size: part.size, body: bodyOf(part.bytes), replace });
      return { index: part.index, size: part.size, etag } satisfies StagedPart;
    }

    /** Two full parts and a short last one: the smallest upload that looks like a real one. */
    const stagedData = () => randomBytes(2 * partSize + 12_345);

    describe('put / get / head / delete', () => {
      it('stores a streamed body and reads the same bytes back', async () => {
        const key = newKey();
        const data = randomBytes(300 * 1024 + 7);
        expect(await store.put(key, bodyOf(data), { contentType: 'application/octet-stream' })).toEqual({ size: data.length });
        expect(await store.head(key)).toEqual({ size: data.length });
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('stores a body larger than two S3 parts', async () => {
        const key = newKey();
        const data = randomBytes(2 * 5 * 1024 * 1024 + 99);
        expect(await store.put(key, bodyOf(data), { contentType: 'application/octet-stream' })).toEqual({ size: data.length });
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('stores an empty body as a 0-byte blob', async () => {
        const key = newKey();
        expect(await store.put(key, bodyOf(Buffer.alloc(0)), { contentType: 'text/plain' })).toEqual({ size: 0 });
        expect(await store.head(key)).toEqual({ size: 0 });
        expect((await readAll(await store.get(key))).length).toBe(0);
      });

      it('replaces an existing blob', async () => {
        const key = newKey();
        await store.put(key, bodyOf(randomBytes(5000)), { contentType: 'text/plain' });
        const second = randomBytes(1234);
        await store.put(key, bodyOf(second), { contentType: 'text/plain' });
        expect(await store.head(key)).toEqual({ size: 1234 });
        expect((await readAll(await store.get(key))).equals(second)).toBe(true);
      });

      it('reads inclusive byte ranges, clamping an end past the blob', async () => {
        const key = newKey();
        const data = randomBytes(10_000);
        await store.put(key, bodyOf(data), { contentType: 'application/octet-stream' });
        expect((await readAll(await store.get(key, { start: 100, end: 4099 }))).equals(data.subarray(100, 4100))).toBe(true);
        expect((await readAll(await store.get(key, { start: 9000, end: 9999 }))).equals(data.subarray(9000))).toBe(true);
        expect((await readAll(await store.get(key, { start: 9990, end: 20_000 }))).equals(data.subarray(9990))).toBe(true);
        expect((await readAll(await store.get(key, { start: 5, end: 5 }))).equals(data.subarray(5, 6))).toBe(true);
      });

      it('rejects a range starting past the end with BlobRangeError', async () => {
        const key = newKey();
        await store.put(key, bodyOf(randomBytes(100)), { contentType: 'application/octet-stream' });
        await expect(store.get(key, { start: 100, end: 200 })).rejects.toBeInstanceOf(BlobRangeError);
      });

      it('reports a missing blob: get → BlobNotFoundError, head → null, delete resolves', async () => {
        const key = newKey();
        await expect(store.get(key)).rejects.toBeInstanceOf(BlobNotFoundError);
        await expect(store.get(key, { start: 0, end: 10 })).rejects.toBeInstanceOf(BlobNotFoundError);
        expect(await store.head(key)).toBeNull();
        await expect(store.delete(key)).resolves.toBeUndefined();
      });

      it('deletes, idempotently', async () => {
        const key = newKey();
        await store.put(key, bodyOf(randomBytes(10)), { contentType: 'text/plain' });
        await store.delete(key);
        expect(await store.head(key)).toBeNull();
        await expect(store.get(key)).rejects.toBeInstanceOf(BlobNotFoundError);
        await store.delete(key);
      });

      it('accepts a body of exactly maxBytes', async () => {
        const key = newKey();
        const data = randomBytes(4096);
        expect(await store.put(key, bodyOf(data), { contentType: 'text/plain', maxBytes: 4096 })).toEqual({ size: 4096 });
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('rejects a body over maxBytes, leaves nothing behind and an earlier blob intact', async () => {
        const fresh = newKey();
        await expect(store.put(fresh, bodyOf(randomBytes(300_000)), { contentType: 'text/plain', maxBytes: 100_000 })).rejects.toBeInstanceOf(
          BlobTooLargeError,
        );
        expect(await store.head(fresh)).toBeNull();

        const existing = newKey();
        const original = randomBytes(777);
        await store.put(existing, bodyOf(original), { contentType: 'text/plain' });
        await expect(store.put(existing, bodyOf(randomBytes(2000)), { contentType: 'text/plain', maxBytes: 1000 })).rejects.toBeInstanceOf(
          BlobTooLargeError,
        );
        expect((await readAll(await store.get(existing))).equals(original)).toBe(true);
      });

      it('stops reading a body over maxBytes as soon as the limit is passed', async () => {
        const { body, produced } = endlessBody();
        await expect(store.put(newKey(), body, { contentType: 'text/plain', maxBytes: 200_000 })).rejects.toBeInstanceOf(BlobTooLargeError);
        expect(produced()).toBeLessThan(200_000 + 1024 * 1024);
        expect(body.destroyed).toBe(false); // the caller still owns it (to answer 413 on the same connection)
        body.destroy();
      });

      it('rejects with the body error when the body fails, leaving nothing', async () => {
        const key = newKey();
        await expect(store.put(key, failingBody(randomBytes(100_000)), { contentType: 'text/plain' })).rejects.toThrow('client connection reset');
        expect(await store.head(key)).toBeNull();
      });
    });

    describe('staged uploads', () => {
      it('assembles parts sent in order', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        expect(staged.key).toBe(key);
        const parts: StagedPart[] = [];
        for (const part of partsOf(data)) parts.push(await sendPart(staged, part));
        expect(await store.head(key)).toBeNull(); // invisible until committed
        await store.commitStaged(staged, parts, meta(data.length));
        expect(await store.head(key)).toEqual({ size: data.length });
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('assembles parts sent out of order and in parallel', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const parts = await Promise.all(partsOf(data).reverse().map((part) => sendPart(staged, part)));
        await store.commitStaged(staged, parts, meta(data.length));
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('lets a re-sent part replace the earlier one', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const [p0, p1, p2] = partsOf(data);
        await sendPart(staged, { ...p1!, bytes: randomBytes(p1!.size) }); // wrong content, right length
        const parts = [await sendPart(staged, p0!), await sendPart(staged, p1!, true), await sendPart(staged, p2!)];
        await store.commitStaged(staged, parts, meta(data.length));
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('rejects a too-short part with PartLengthError; a correct re-send then succeeds', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const [p0, p1, p2] = partsOf(data);
        const error = await store
          .putPart(staged, { index: 1, offset: p1!.offset, size: p1!.size, body: bodyOf(p1!.bytes.subarray(0, p1!.size - 1000)), replace: false })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PartLengthError);
        expect(error).toMatchObject({ expected: p1!.size, received: p1!.size - 1000, tooLong: false });
        const parts = await Promise.all([sendPart(staged, p0!), sendPart(staged, p1!), sendPart(staged, p2!)]);
        await store.commitStaged(staged, parts, meta(data.length));
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('rejects a too-long part as soon as the excess arrives, without reading it to its end', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const [p0, p1, p2] = partsOf(data);
        const { body, produced } = endlessBody();
        const error = await store.putPart(staged, { index: 0, offset: 0, size: p0!.size, body, replace: false }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PartLengthError);
        expect(error).toMatchObject({ expected: p0!.size, tooLong: true });
        expect(produced()).toBeLessThan(p0!.size + 1024 * 1024);
        expect(body.destroyed).toBe(false); // the caller still owns it (to answer 422)
        body.destroy();
        // Exactly the right bytes, then one more in a separate chunk: the store must not have
        // passed on a complete part before the excess showed up.
        const exactThenOneMore = Readable.from([p2!.bytes, Buffer.from([1])], { objectMode: false });
        await expect(
          store.putPart(staged, { index: 2, offset: p2!.offset, size: p2!.size, body: exactThenOneMore, replace: false }),
        ).rejects.toBeInstanceOf(PartLengthError);
        const parts = await Promise.all([sendPart(staged, p0!), sendPart(staged, p1!), sendPart(staged, p2!)]);
        await store.commitStaged(staged, parts, meta(data.length));
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('rejects with the body error when a part body fails midway', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const [p0] = partsOf(data);
        await expect(
          store.putPart(staged, { index: 0, offset: 0, size: p0!.size, body: failingBody(p0!.bytes.subarray(0, 100_000)), replace: false }),
        ).rejects.toThrow('client connection reset');
      });

      it.skipIf(quirks.failedPartUploadDamagesPart)('keeps an earlier part intact when its replacement fails (short, long or broken body)', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const [p0, p1, p2] = partsOf(data);
        const parts = [await sendPart(staged, p0!), await sendPart(staged, p1!), await sendPart(staged, p2!)];
        const junk = randomBytes(p1!.size + CHUNK);
        const attempt = (body: Readable) => store.putPart(staged, { index: 1, offset: p1!.offset, size: p1!.size, body, replace: true });
        await expect(attempt(bodyOf(junk.subarray(0, p1!.size - 1)))).rejects.toBeInstanceOf(PartLengthError);
        await expect(attempt(bodyOf(junk))).rejects.toBeInstanceOf(PartLengthError);
        await expect(attempt(failingBody(junk.subarray(0, p1!.size - CHUNK)))).rejects.toThrow('client connection reset');
        await store.commitStaged(staged, parts, meta(data.length));
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('commits idempotently: a second commitStaged resolves and the bytes stay', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const parts = await Promise.all(partsOf(data).map((p) => sendPart(staged, p)));
        await store.commitStaged(staged, parts, meta(data.length));
        await store.commitStaged(staged, parts, meta(data.length));
        expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      });

      it('refuses to commit a part list that does not cover the upload', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const parts = await Promise.all(partsOf(data).map((p) => sendPart(staged, p)));
        await expect(store.commitStaged(staged, parts.slice(0, 2), meta(data.length))).rejects.toThrow(/sum to/);
        await expect(store.commitStaged(staged, [parts[0]!, parts[2]!], meta(data.length))).rejects.toThrow(/contiguous/);
        expect(await store.head(key)).toBeNull();
        await store.commitStaged(staged, parts, meta(data.length));
        expect(await store.head(key)).toEqual({ size: data.length });
      });

      it('handles a 0-byte staged upload (no parts)', async () => {
        const key = newKey();
        const staged = await store.beginStaged(key, meta(0));
        await store.commitStaged(staged, [], meta(0));
        await store.commitStaged(staged, [], meta(0));
        expect(await store.head(key)).toEqual({ size: 0 });
        expect((await readAll(await store.get(key))).length).toBe(0);
        await store.abortStaged(staged); // nothing staged any more: still fine
      });

      it.skipIf(quirks.abortUnsupported)('aborts: staged data is gone, abort is idempotent, later calls fail', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const parts = await Promise.all(partsOf(data).map((p) => sendPart(staged, p)));
        await store.abortStaged(staged);
        await store.abortStaged(staged);
        await expect(store.commitStaged(staged, parts, meta(data.length))).rejects.toBeInstanceOf(StagedUploadNotFoundError);
        await expect(sendPart(staged, partsOf(data)[0]!)).rejects.toBeInstanceOf(StagedUploadNotFoundError);
        expect(await store.head(key)).toBeNull();
      });

      it.runIf(quirks.abortUnsupported)('reports a failed abort as StagedAbortError that says to retry', async () => {
        const staged = await store.beginStaged(newKey(), meta(10));
        const error = await store.abortStaged(staged).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StagedAbortError);
        expect((error as Error).message).toMatch(/retry/);
      });

      it.skipIf(quirks.unknownUploadIdAccepted)('rejects parts and commits of an upload that was never begun', async () => {
        const key = newKey();
        const staged: StagedUpload = { key, uploadId: store.backend === 's3' ? 'no-such-upload' : null };
        await expect(store.putPart(staged, { index: 0, offset: 0, size: 3, body: bodyOf(Buffer.from('abc')), replace: false })).rejects.toBeInstanceOf(
          StagedUploadNotFoundError,
        );
        await expect(store.commitStaged(staged, [{ index: 0, size: 3, etag: '"x"' }], meta(3))).rejects.toBeInstanceOf(StagedUploadNotFoundError);
      });
    });

    describe('declared capabilities', () => {
      const caps = options.capabilities;

      it('declares what the backend can do', () => {
        expect(store.capabilities).toEqual(caps);
        expect(Object.isFrozen(store.capabilities)).toBe(true);
        // Direct I/O only matters to readers of staged parts.
        if (!caps.readStagedParts) expect(caps.directIo).toBe(false);
      });

      it(caps.readStagedParts ? 'names the local file of a staged upload, its parts at their offsets' : 'names no local file for a staged upload', async () => {
        const key = newKey();
        const data = stagedData();
        const staged = await store.beginStaged(key, meta(data.length));
        const parts = partsOf(data);
        await sendPart(staged, parts[1]!);
        const file = store.localStagedPath(staged);
        if (!caps.readStagedParts) {
          expect(file).toBeNull();
        } else {
          const onDisk = await readFile(file!);
          expect(onDisk.length).toBe(data.length);
          expect(onDisk.subarray(parts[1]!.offset, parts[1]!.offset + parts[1]!.size).equals(parts[1]!.bytes)).toBe(true);
        }
        await store.abortStaged(staged).catch(() => {});
      });

      it(caps.localFiles ? "opens a blob's local file, with get()'s checks" : 'opens no local file (after the key checks)', async () => {
        const key = newKey();
        const data = randomBytes(4096 + 17);
        await store.put(key, bodyOf(data), { contentType: 'application/octet-stream' });
        if (!caps.localFiles) {
          expect(await store.openLocal(key)).toBeNull();
          await expect(store.openLocal('../escape')).rejects.toBeInstanceOf(InvalidBlobKeyError);
          return;
        }
        const whole = (await store.openLocal(key))!;
        try {
          expect(whole.size).toBe(data.length);
          expect((await whole.file.readFile()).equals(data)).toBe(true);
        } finally {
          await whole.file.close();
        }
        const ranged = (await store.openLocal(key, { start: 100, end: 199 }))!;
        await ranged.file.close();
        expect(ranged.size).toBe(data.length);
        await expect(store.openLocal(key, { start: data.length, end: data.length + 5 })).rejects.toBeInstanceOf(BlobRangeError);
        await expect(store.openLocal(newKey())).rejects.toBeInstanceOf(BlobNotFoundError);
        await expect(store.openLocal('../escape')).rejects.toBeInstanceOf(InvalidBlobKeyError);
      });

      it(caps.presign ? 'gives a download URL serving the bytes as an attachment' : 'has no download URL', async () => {
        const key = newKey();
        const data = randomBytes(2048);
        await store.put(key, bodyOf(data), { contentType: 'application/octet-stream' });
        const url = await store.downloadUrl(key, { fileName: 'modèle "v2".onnx', contentType: 'application/x-onnx', expiresInSeconds: 60 });
        if (!caps.presign) {
          expect(url).toBeNull();
          return;
        }
        expect(url).toEqual(expect.any(String));
        expect(options.fetchDownloadUrl, 'a presigning store needs fetchDownloadUrl').not.toBeNull();
        const res = await options.fetchDownloadUrl!(url!);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('application/x-onnx');
        expect(res.headers.get('content-disposition')).toBe(
          `attachment; filename="mod_le _v2_.onnx"; filename*=UTF-8''mod%C3%A8le%20%22v2%22.onnx`,
        );
        expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
      });
    });

    describe('URLs, URIs, health', () => {
      it('builds the storage URI of a key', () => {
        const key = newKey();
        expect(store.uri(key)).toBe(options.expectedUri(key));
      });

      it('pings a healthy store', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('fails the ping of an unusable store', async () => {
        const broken = await options.createBrokenStore();
        try {
          await expect(broken.ping()).rejects.toThrow();
        } finally {
          await broken.close();
        }
      });
    });

    describe('key safety', () => {
      const badKeys = ['', '../escape', '/etc/passwd', 'a/../../escape', 'a/./b', 'a//b', 'a/', 'a\\..\\b', 'a\0b', 'a\nb', '.staging/x', 'a/.hidden'];

      it.each(badKeys.map((k) => [JSON.stringify(k), k]))('refuses key %s in every method', async (_label, key) => {
        const staged: StagedUpload = { key, uploadId: null };
        const calls: (() => Promise<unknown>)[] = [
          () => store.put(key, bodyOf(Buffer.from('x')), { contentType: 'text/plain' }),
          () => store.get(key),
          () => store.head(key),
          () => store.delete(key),
          () => store.beginStaged(key, meta(1)),
          () => store.putPart(staged, { index: 0, offset: 0, size: 1, body: bodyOf(Buffer.from('x')), replace: false }),
          () => store.commitStaged(staged, [{ index: 0, size: 1, etag: null }], meta(1)),
          () => store.abortStaged(staged),
          () => store.downloadUrl(key, { fileName: 'x', contentType: 'text/plain', expiresInSeconds: 60 }),
          () => store.openLocal(key),
          async () => store.uri(key),
        ];
        for (const call of calls) await expect(call()).rejects.toBeInstanceOf(InvalidBlobKeyError);
      });
    });
  });
}
