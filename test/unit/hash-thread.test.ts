/**
 * HashThread: the worker thread that hashes byte ranges of local files for the upload prefix
 * digests (running node:crypto digests by key, and resumable hash-wasm states).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashThread, ResumableSha256 } from '../../server/src/services/resumable-sha256.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Writes `data` to a temp file for a describe's tests; afterwards stops `thread` and removes the file. */
function useDataFile(data: Buffer, thread: HashThread): { dir: string; file: string } {
  const at = { dir: '', file: '' };
  beforeAll(() => {
    at.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hash-thread-'));
    at.file = path.join(at.dir, 'data.bin');
    fs.writeFileSync(at.file, data);
  });
  afterAll(async () => {
    await thread.close();
    fs.rmSync(at.dir, { recursive: true, force: true });
  });
  return at;
}

describe('HashThread', () => {
  const data = randomBytes(3 * 1024 * 1024 + 123);
  const thread = new HashThread({ lowPriority: false });
  const at = useDataFile(data, thread);

  it('extends a running digest range by range and reports it only when it covers the asked length', async () => {
    const cut = 1024 * 1024 + 7;
    expect(await thread.fold('a', at.file, { start: 0, end: cut - 1 })).toMatchObject({ bytes: cut });
    expect(await thread.digest('a', data.length)).toBeNull();
    expect(await thread.digest('a', cut)).toBe(sha256(data.subarray(0, cut)));
    expect(await thread.fold('a', at.file, { start: cut, end: data.length - 1 })).toMatchObject({ bytes: data.length - cut });
    expect(await thread.digest('a', data.length)).toBe(sha256(data));
    // Asking for a digest does not end it: it still covers the same bytes.
    expect(await thread.digest('a', data.length)).toBe(sha256(data));
  });

  it('refuses a range that does not continue the digest, and drops the digest', async () => {
    await thread.fold('b', at.file, { start: 0, end: 99 });
    await expect(thread.fold('b', at.file, { start: 200, end: 299 })).rejects.toThrow(/does not cover 200 bytes/);
    expect(await thread.digest('b', 100)).toBeNull();
    // Starting over at 0 begins a new digest.
    await thread.fold('b', at.file, { start: 0, end: 99 });
    expect(await thread.digest('b', 100)).toBe(sha256(data.subarray(0, 100)));
  });

  it('counts only the bytes the file has, and forgets a dropped digest', async () => {
    expect(await thread.fold('c', at.file, { start: 0, end: data.length + 5000 })).toMatchObject({ bytes: data.length });
    thread.drop('c');
    expect(await thread.digest('c', data.length)).toBeNull();
    await expect(thread.fold('d', path.join(at.dir, 'missing.bin'), { start: 0, end: 10 })).rejects.toThrow(/ENOENT/);
  });

  it('extends a saved hash-wasm state with a range of the file', async () => {
    const half = 2 * 1024 * 1024; // a multiple of SHA-256's 64-byte block, like chunk boundaries
    const first = await ResumableSha256.create();
    first.update(data.subarray(0, half));
    const { state, bytes } = await thread.extendSaved(first.save(), at.file, { start: half, end: data.length - 1 });
    expect(bytes).toBe(data.length - half);
    expect((await ResumableSha256.load(state)).hex()).toBe(sha256(data));
  });

  it('starts a new thread after the old one is gone; digests it held are gone with it', async () => {
    await thread.fold('e', at.file, { start: 0, end: 999 });
    await thread.close();
    expect(await thread.digest('e', 1000)).toBeNull();
    await expect(thread.fold('e', at.file, { start: 1000, end: 1999 })).rejects.toThrow(/does not cover 1000 bytes/);
    await thread.fold('e', at.file, { start: 0, end: 1999 });
    expect(await thread.digest('e', 2000)).toBe(sha256(data.subarray(0, 2000)));
  });
});

describe('HashThread with direct reads', () => {
  const MiB = 1024 * 1024;
  // Longer than the thread's 1 MiB read buffer, ending off a 4096-byte block boundary.
  const data = randomBytes(3 * MiB + 4096 * 3 + 17);
  const thread = new HashThread({ lowPriority: false, directReads: true });
  const at = useDataFile(data, thread);

  it('hashes ranges starting on and off block boundaries, to the end of the file and short of it', async () => {
    // Block-aligned starts (chunk boundaries) read past the page cache; the odd start does not.
    const cuts = [0, MiB, 2 * MiB + 4096, 2 * MiB + 4096 + 999, data.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const { bytes } = await thread.fold('k', at.file, { start: cuts[i]!, end: cuts[i + 1]! - 1 });
      expect(bytes).toBe(cuts[i + 1]! - cuts[i]!);
      expect(await thread.digest('k', cuts[i + 1]!)).toBe(sha256(data.subarray(0, cuts[i + 1])));
    }
    // A range past the end counts only the bytes there are.
    expect(await thread.fold('l', at.file, { start: 0, end: data.length + 10_000 })).toMatchObject({ bytes: data.length });
    expect(await thread.digest('l', data.length)).toBe(sha256(data));
    const first = await ResumableSha256.create();
    first.update(data.subarray(0, MiB));
    const { state } = await thread.extendSaved(first.save(), at.file, { start: MiB, end: data.length - 1 });
    expect((await ResumableSha256.load(state)).hex()).toBe(sha256(data));
  });
});
