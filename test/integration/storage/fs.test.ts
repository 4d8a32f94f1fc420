import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBlobStore, FsBlobStore, InvalidBlobKeyError, PartLengthError, StagedPartMismatchError } from '../../../server/src/storage/index.ts';
import { HashThread } from '../../../server/src/services/resumable-sha256.ts';
import { DIRECT_ALIGN, directIoWorks, O_DIRECT } from '../../../server/src/storage/direct-io.ts';
import { describeBlobStoreConformance } from './conformance.ts';

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'blob-fs-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

let conformanceRoot = '';
describeBlobStoreConformance({
  name: 'fs',
  async createStore() {
    conformanceRoot = path.join(await tempDir(), 'artifacts'); // not created yet: the store creates it
    return openBlobStore({ backend: 'fs', dir: conformanceRoot });
  },
  async createBrokenStore() {
    const file = path.join(await tempDir(), 'not-a-directory');
    await writeFile(file, 'x');
    return openBlobStore({ backend: 'fs', dir: file });
  },
  partSize: 256 * 1024,
  expectedUri: (key) => `fs://${key}`,
  capabilities: { readStagedParts: true, presign: false, localFiles: true, directIo: true },
  fetchDownloadUrl: null,
});

// The same suite with every part written through the page cache (STORAGE_DIRECT_IO=false).
let bufferedRoot = '';
describeBlobStoreConformance({
  name: 'fs, without direct I/O',
  async createStore() {
    bufferedRoot = path.join(await tempDir(), 'artifacts');
    return openBlobStore({ backend: 'fs', dir: bufferedRoot, directIo: false });
  },
  async createBrokenStore() {
    const file = path.join(await tempDir(), 'not-a-directory');
    await writeFile(file, 'x');
    return openBlobStore({ backend: 'fs', dir: file, directIo: false });
  },
  partSize: 256 * 1024,
  expectedUri: (key) => `fs://${key}`,
  capabilities: { readStagedParts: true, presign: false, localFiles: true, directIo: false },
  fetchDownloadUrl: null,
});

describe('FsBlobStore on disk', () => {
  let root: string;
  let store: FsBlobStore;
  const body = (bytes: Buffer) => Readable.from([bytes], { objectMode: false });
  const stagingFile = (key: string) => path.join(root, '.staging', createHash('sha256').update(key).digest('hex'));
  const meta = (totalSize: number) => ({ totalSize, contentType: 'application/octet-stream' });

  beforeAll(async () => {
    root = await tempDir();
    store = new FsBlobStore({ dir: root });
  });

  it('keeps one sparse staging file per upload, writes parts at their offsets, and renames it into place', async () => {
    const key = `artifacts/${randomUUID()}/${randomUUID()}`;
    const totalSize = 8 * 1024 * 1024 + 10;
    const staged = await store.beginStaged(key, meta(totalSize));
    expect(staged).toEqual({ key, uploadId: null });
    const before = await stat(stagingFile(key));
    expect(before.size).toBe(totalSize);
    expect(before.blocks * 512).toBeLessThan(1024 * 1024); // sparse: no blocks for unwritten parts

    const tail = randomBytes(10);
    await store.putPart(staged, { index: 2, offset: 8 * 1024 * 1024, size: 10, body: body(tail), replace: false });
    const onDisk = await readFile(stagingFile(key));
    expect(onDisk.subarray(8 * 1024 * 1024).equals(tail)).toBe(true);

    const p0 = randomBytes(4 * 1024 * 1024);
    const p1 = randomBytes(4 * 1024 * 1024);
    await store.putPart(staged, { index: 1, offset: 4 * 1024 * 1024, size: p1.length, body: body(p1), replace: false });
    await store.putPart(staged, { index: 0, offset: 0, size: p0.length, body: body(p0), replace: false });
    const parts = [0, 1, 2].map((index) => ({ index, size: index === 2 ? 10 : 4 * 1024 * 1024, etag: null }));
    await store.commitStaged(staged, parts, meta(totalSize));

    await expect(stat(stagingFile(key))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readFile(path.join(root, ...key.split('/')))).equals(Buffer.concat([p0, p1, tail]))).toBe(true);
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
  });

  it('writes bodies of many small and of uneven pieces whole (gathered into vectored writes)', async () => {
    const key = `artifacts/${randomUUID()}/${randomUUID()}`;
    // 3000 pieces of 1–700 bytes (more pieces than one write gathers), then pieces around 1 MiB.
    const pieces: Buffer[] = [];
    for (let i = 0; i < 3000; i++) pieces.push(randomBytes(1 + ((i * 7919) % 700)));
    pieces.push(randomBytes(1024 * 1024 - 1), randomBytes(1), randomBytes(1024 * 1024 + 1), Buffer.alloc(0), randomBytes(12345));
    const data = Buffer.concat(pieces);
    const staged = await store.beginStaged(key, meta(data.length + 5));
    const head = randomBytes(5);
    await store.putPart(staged, { index: 0, offset: 0, size: 5, body: body(head), replace: false });
    await store.putPart(staged, { index: 1, offset: 5, size: data.length, body: Readable.from(pieces, { objectMode: false }), replace: false });
    expect((await readFile(stagingFile(key))).equals(Buffer.concat([head, data]))).toBe(true);
    // A replacement goes through the side file the same way.
    const again = pieces.map((p) => randomBytes(p.length));
    await store.putPart(staged, { index: 1, offset: 5, size: data.length, body: Readable.from(again, { objectMode: false }), replace: true });
    expect((await readFile(stagingFile(key))).equals(Buffer.concat([head, ...again]))).toBe(true);
    const put = await store.put(`${key}-whole`, Readable.from(pieces, { objectMode: false }), { contentType: 'application/octet-stream' });
    expect(put.size).toBe(data.length);
    expect((await readFile(path.join(root, ...`${key}-whole`.split('/')))).equals(data)).toBe(true);
    await store.abortStaged(staged);
  });

  it('leaves no side file behind after failed replacements, and abort removes the staging file', async () => {
    const key = `artifacts/${randomUUID()}/${randomUUID()}`;
    const staged = await store.beginStaged(key, meta(100));
    const good = randomBytes(100);
    await store.putPart(staged, { index: 0, offset: 0, size: 100, body: body(good), replace: false });
    await expect(store.putPart(staged, { index: 0, offset: 0, size: 100, body: body(randomBytes(50)), replace: true })).rejects.toBeInstanceOf(
      PartLengthError,
    );
    expect((await readFile(stagingFile(key))).equals(good)).toBe(true);
    expect(await readdir(path.join(root, '.staging'))).toEqual([path.basename(stagingFile(key))]);
    await store.abortStaged(staged);
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
  });

  it('removes side files a crash left behind when the staged upload is committed or aborted, and only its own', async () => {
    const committedKey = `artifacts/${randomUUID()}/${randomUUID()}`;
    const abortedKey = `artifacts/${randomUUID()}/${randomUUID()}`;
    const committed = await store.beginStaged(committedKey, meta(10));
    const aborted = await store.beginStaged(abortedKey, meta(10));
    // What a process killed in the middle of a part re-send leaves: `<staging file>.<index>.<uuid>.replace`.
    const leftover = (key: string) => `${stagingFile(key)}.0.${randomUUID()}.replace`;
    const committedSide = leftover(committedKey);
    const abortedSide = leftover(abortedKey);
    await writeFile(committedSide, randomBytes(10));
    await writeFile(abortedSide, randomBytes(10));

    const data = randomBytes(10);
    await store.putPart(committed, { index: 0, offset: 0, size: 10, body: body(data), replace: false });
    await store.commitStaged(committed, [{ index: 0, size: 10, etag: null }], meta(10));
    expect((await readFile(path.join(root, ...committedKey.split('/')))).equals(data)).toBe(true);
    const staging = await readdir(path.join(root, '.staging'));
    expect(staging).not.toContain(path.basename(committedSide));
    expect(staging).toContain(path.basename(abortedSide));

    await store.abortStaged(aborted);
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
  });

  describe('a part re-send killed in the middle of its copy', () => {
    const MiB = 1024 * 1024;
    const partSize = 4 * MiB;
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const script = fileURLToPath(new URL('./fixtures/resend-killed-mid-copy.ts', import.meta.url));

    /** Three parts stored, then a re-send of part 1 killed (SIGKILL) halfway through copying it in. */
    async function killedResend(): Promise<{ key: string; parts: Buffer[]; resent: Buffer }> {
      const key = `artifacts/${randomUUID()}/${randomUUID()}`;
      const parts = [randomBytes(partSize), randomBytes(partSize), randomBytes(123)];
      const staged = await store.beginStaged(key, meta(2 * partSize + 123));
      for (const [index, bytes] of parts.entries()) {
        await store.putPart(staged, { index, offset: index * partSize, size: bytes.length, body: body(bytes), replace: false });
      }
      const resent = randomBytes(partSize);
      const bytesFile = path.join(await tempDir(), 'resent.bin');
      await writeFile(bytesFile, resent);
      const child = spawnSync(process.execPath, ['--import', 'tsx', script, root, key, '1', String(partSize), bytesFile], { encoding: 'utf8' });
      expect(child.signal, child.stderr + child.stdout).toBe('SIGKILL');
      // The kill did tear the range: half new, half old bytes (what the copy in place leaves).
      const torn = (await readFile(stagingFile(key))).subarray(partSize, 2 * partSize);
      expect(torn.subarray(0, MiB).equals(resent.subarray(0, MiB))).toBe(true);
      expect(torn.subarray(partSize - MiB).equals(parts[1]!.subarray(partSize - MiB))).toBe(true);
      return { key, parts, resent };
    }
    const partList = (parts: Buffer[], recorded: Buffer[]) => parts.map((p, index) => ({ index, size: p.length, etag: null, sha256: sha(recorded[index]!) }));

    it('the next commit copies the re-sent part in whole, and refuses it when its recorded digest is the old one', async () => {
      const { key, parts, resent } = await killedResend();
      const fresh = new FsBlobStore({ dir: root }); // the restarted process
      const staged = { key, uploadId: null };
      const total = meta(2 * partSize + 123);
      // The database still records the old part 1 (the re-send was never acknowledged).
      const err = await fresh.commitStaged(staged, partList(parts, parts), { ...total, verifyParts: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StagedPartMismatchError);
      expect((err as StagedPartMismatchError).indexes).toEqual([1]);
      // Nothing moved, and the range holds the new bytes in full: never a mix.
      const staging = await readFile(stagingFile(key));
      expect(staging.equals(Buffer.concat([parts[0]!, resent, parts[2]!]))).toBe(true);
      expect(await fresh.head(key)).toBeNull();
      expect((await readdir(path.join(root, '.staging'))).filter((n) => n.endsWith('.redo'))).toEqual([]);
      await fresh.abortStaged(staged);
    });

    it('commits the re-sent bytes when they are what the database recorded, with the digest of the whole', async () => {
      const { key, parts, resent } = await killedResend();
      const fresh = new FsBlobStore({ dir: root });
      const expected = Buffer.concat([parts[0]!, resent, parts[2]!]);
      const { sha256 } = await fresh.commitStaged(
        { key, uploadId: null },
        partList(parts, [parts[0]!, resent, parts[2]!]),
        { ...meta(expected.length), verifyParts: true },
      );
      expect(sha256).toBe(sha(expected));
      expect((await readFile(path.join(root, ...key.split('/')))).equals(expected)).toBe(true);
      expect(await readdir(path.join(root, '.staging'))).not.toContain(expect.stringContaining(path.basename(stagingFile(key))));
    });

    it('verifyParts refuses staged bytes that differ from their recorded digest, without a redo file too', async () => {
      const key = `artifacts/${randomUUID()}/${randomUUID()}`;
      const data = randomBytes(3000);
      const staged = await store.beginStaged(key, meta(3000));
      await store.putPart(staged, { index: 0, offset: 0, size: 2000, body: body(data.subarray(0, 2000)), replace: false });
      await store.putPart(staged, { index: 1, offset: 2000, size: 1000, body: body(data.subarray(2000)), replace: false });
      const parts = [
        { index: 0, size: 2000, etag: null, sha256: sha(data.subarray(0, 2000)) },
        { index: 1, size: 1000, etag: null, sha256: sha(randomBytes(1000)) },
      ];
      await expect(store.commitStaged(staged, parts, { ...meta(3000), verifyParts: true })).rejects.toMatchObject({ indexes: [1] });
      parts[1]!.sha256 = sha(data.subarray(2000));
      expect(await store.commitStaged(staged, parts, { ...meta(3000), verifyParts: true })).toEqual({ sha256: sha(data) });
      // Without verifyParts nothing is read back: no digest.
      const other = `artifacts/${randomUUID()}/${randomUUID()}`;
      const staged2 = await store.beginStaged(other, meta(10));
      await store.putPart(staged2, { index: 0, offset: 0, size: 10, body: body(randomBytes(10)), replace: false });
      expect(await store.commitStaged(staged2, [{ index: 0, size: 10, etag: null }], meta(10))).toEqual({ sha256: null });
    });
  });

  it('leaves no temp file behind when put exceeds maxBytes', async () => {
    await expect(store.put('a/too-big', body(randomBytes(5000)), { contentType: 'text/plain', maxBytes: 4000 })).rejects.toThrow(/limit/);
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
    await expect(stat(path.join(root, 'a', 'too-big'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stores blobs at <dir>/<key>, named by an fs: URI of the key that never shows the host path', async () => {
    const data = randomBytes(1000);
    await store.put('models/x/weights', body(data), { contentType: 'application/octet-stream' });
    expect(store.uri('models/x/weights')).toBe('fs://models/x/weights');
    expect(store.uri('models/x y/w%')).toBe('fs://models/x%20y/w%25');
    expect(store.uri('models/x/weights')).not.toContain(root);
    expect((await readFile(path.join(root, 'models', 'x', 'weights'))).equals(data)).toBe(true);
    expect(() => store.uri('../escape')).toThrow(InvalidBlobKeyError);
  });

  it('streams downloads with a 1 MiB buffer', async () => {
    await store.put('big/blob', body(randomBytes(3 * 1024 * 1024)), { contentType: 'application/octet-stream' });
    const stream = await store.get('big/blob');
    expect(stream.readableHighWaterMark).toBe(1024 * 1024);
    expect((await buffer(stream)).length).toBe(3 * 1024 * 1024);
  });

  it('never writes outside its directory', async () => {
    const outside = path.join(path.dirname(root), `escaped-${randomUUID()}`);
    const key = `../${path.basename(outside)}`;
    await expect(store.put(key, body(Buffer.from('x')), { contentType: 'text/plain' })).rejects.toBeInstanceOf(InvalidBlobKeyError);
    await expect(store.beginStaged(key, meta(1))).rejects.toBeInstanceOf(InvalidBlobKeyError);
    await expect(stat(outside)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('treats a directory as a missing blob', async () => {
    await store.put('dir/inner', body(Buffer.from('x')), { contentType: 'text/plain' });
    expect(await store.head('dir')).toBeNull();
    await expect(store.get('dir')).rejects.toThrow(/not found/);
    await store.delete('dir'); // idempotent, and must not remove the directory
    expect(await store.head('dir/inner')).toEqual({ size: 1 });
  });

  it('creates its directory on ping', async () => {
    const dir = path.join(await tempDir(), 'nested', 'store');
    await new FsBlobStore({ dir }).ping();
    expect((await stat(dir)).isDirectory()).toBe(true);
  });
});

/** Bytes of `file` in the page cache, from util-linux's fincore, or null without it. */
function cachedBytes(file: string): number | null {
  try {
    return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
const hasFincore = cachedBytes('/proc/self/exe') !== null;

describe('FsBlobStore direct I/O', () => {
  const MiB = 1024 * 1024;
  const meta = (totalSize: number) => ({ totalSize, contentType: 'application/octet-stream' });
  /** A body of uneven pieces, like a socket delivers. */
  const pieces = (bytes: Buffer) => {
    const out: Buffer[] = [];
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const n = Math.min(bytes.length - at, 1 + ((i * 104_729) % 70_000));
      out.push(bytes.subarray(at, at + n));
      at += n;
    }
    return Readable.from(out, { objectMode: false });
  };
  const stagingFile = (root: string, key: string) => path.join(root, '.staging', createHash('sha256').update(key).digest('hex'));

  it('assembles parts written in parallel: aligned ones past the cache, the unaligned rest through it', async () => {
    const root = await tempDir();
    const store = new FsBlobStore({ dir: root });
    expect(store.directIo).toBe(true);
    // Three parts spanning several 1 MiB buffers, the last one ending off a 4096-byte boundary.
    const partSize = 2 * MiB + 4096;
    const data = randomBytes(2 * partSize + 777);
    const key = `artifacts/${randomUUID()}/${randomUUID()}`;
    const staged = await store.beginStaged(key, meta(data.length));
    const sizes = [partSize, partSize, 777];
    await Promise.all(
      sizes.map((size, index) =>
        store.putPart(staged, { index, offset: index * partSize, size, body: pieces(data.subarray(index * partSize, index * partSize + size)), replace: false }),
      ),
    );
    expect((await readFile(stagingFile(root, key))).equals(data)).toBe(true);
    await store.commitStaged(staged, sizes.map((size, index) => ({ index, size, etag: null })), meta(data.length));
    expect((await readFile(path.join(root, ...key.split('/')))).equals(data)).toBe(true);
  });

  it('writes parts whose offsets are not block-aligned (an odd chunk size) through the page cache, correctly', async () => {
    const root = await tempDir();
    const store = new FsBlobStore({ dir: root });
    const partSize = 1_000_003;
    const data = randomBytes(3 * partSize);
    const key = `artifacts/${randomUUID()}/${randomUUID()}`;
    const staged = await store.beginStaged(key, meta(data.length));
    for (const index of [2, 0, 1]) {
      await store.putPart(staged, { index, offset: index * partSize, size: partSize, body: pieces(data.subarray(index * partSize, (index + 1) * partSize)), replace: false });
    }
    expect((await readFile(stagingFile(root, key))).equals(data)).toBe(true);
  });

  it('never writes the bytes that would complete a part before its body ended, so a too-long body leaves it incomplete', async () => {
    const root = await tempDir();
    const store = new FsBlobStore({ dir: root });
    const key = `artifacts/${randomUUID()}/${randomUUID()}`;
    const staged = await store.beginStaged(key, meta(2 * MiB));
    const sent = randomBytes(2 * MiB + 1);
    await expect(store.putPart(staged, { index: 0, offset: 0, size: 2 * MiB, body: pieces(sent), replace: false })).rejects.toBeInstanceOf(PartLengthError);
    const onDisk = await readFile(stagingFile(root, key));
    // The first buffer may be written; the one that completes the part is not.
    expect(onDisk.subarray(MiB).equals(Buffer.alloc(MiB))).toBe(true);
    const short = randomBytes(MiB + 5);
    await expect(store.putPart(staged, { index: 0, offset: 0, size: 2 * MiB, body: pieces(short), replace: false })).rejects.toBeInstanceOf(PartLengthError);
    expect((await readFile(stagingFile(root, key))).subarray(MiB + 5).equals(Buffer.alloc(MiB - 5))).toBe(true);
  });

  it.runIf(hasFincore && O_DIRECT !== undefined)('leaves written parts and put blobs out of the page cache (and in it with directIo: false)', async () => {
    const root = await tempDir();
    if (!(await (async () => {
      await new FsBlobStore({ dir: root }).beginStaged('probe/x', meta(0));
      return directIoWorks(path.join(root, '.staging'));
    })())) {
      throw new Error(`${root} is on a filesystem without O_DIRECT; run the tests with TMPDIR on a disk filesystem`);
    }
    for (const directIo of [true, false]) {
      const store = new FsBlobStore({ dir: root, directIo });
      const key = `artifacts/${randomUUID()}/${randomUUID()}`;
      const staged = await store.beginStaged(key, meta(4 * MiB));
      await store.putPart(staged, { index: 0, offset: 0, size: 4 * MiB, body: pieces(randomBytes(4 * MiB)), replace: false });
      const cached = cachedBytes(stagingFile(root, key))!;
      if (directIo) expect(cached).toBe(0);
      else expect(cached).toBe(4 * MiB);
      // A single-request upload (put) takes the same path: 3 MiB and an unaligned tail.
      const data = randomBytes(3 * MiB + 1000);
      const putKey = `blobs/${randomUUID()}`;
      expect(await store.put(putKey, pieces(data), { contentType: 'application/octet-stream', maxBytes: data.length })).toEqual({ size: data.length });
      const stored = path.join(root, ...putKey.split('/'));
      // Only the tail's page (written through the cache) may be cached when writing past it.
      if (directIo) expect(cachedBytes(stored)!).toBeLessThanOrEqual(DIRECT_ALIGN);
      else expect(cachedBytes(stored)).toBeGreaterThanOrEqual(3 * MiB);
      expect((await readFile(stored)).equals(data)).toBe(true);
    }
  });

  it.runIf(hasFincore && O_DIRECT !== undefined)('the hash thread reads staged parts back past the page cache too (directReads)', async () => {
    const root = await tempDir();
    const store = new FsBlobStore({ dir: root });
    const key = `artifacts/${randomUUID()}/${randomUUID()}`;
    const data = randomBytes(4 * MiB);
    const staged = await store.beginStaged(key, meta(data.length));
    await store.putPart(staged, { index: 0, offset: 0, size: data.length, body: pieces(data), replace: false });
    const file = stagingFile(root, key);
    expect(cachedBytes(file)).toBe(0);
    const direct = new HashThread({ lowPriority: false, directReads: true });
    const buffered = new HashThread({ lowPriority: false, directReads: false });
    try {
      await direct.fold('d', file, { start: 0, end: data.length - 1 });
      expect(await direct.digest('d', data.length)).toBe(createHash('sha256').update(data).digest('hex'));
      expect(cachedBytes(file)).toBe(0);
      await buffered.fold('b', file, { start: 0, end: data.length - 1 });
      expect(await buffered.digest('b', data.length)).toBe(createHash('sha256').update(data).digest('hex'));
      expect(cachedBytes(file)).toBe(data.length); // the same read through the cache fills it
    } finally {
      await Promise.all([direct.close(), buffered.close()]);
    }
  });
});
