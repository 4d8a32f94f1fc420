/**
 * storage/direct-io.ts: the aligned buffer pool, the per-directory probe and writeAligned's split
 * between the direct handle and the page cache (with stand-in handles that record their calls).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alignedBufferPool,
  DIRECT_ALIGN,
  DIRECT_BUFFER_BYTES,
  directIoWorks,
  stopDirectIo,
  takeAlignedBuffer,
  trimAlignedBuffers,
  writeAligned,
} from '../../server/src/storage/direct-io.ts';

type Call = { offset: number; length: number; position: number };

/** A handle that writes into `file` positionally and records each call, or fails with `code`. */
function standIn(file: FileHandle, calls: Call[], failWith?: string): FileHandle {
  return {
    write: async (buffer: Buffer, offset: number, length: number, position: number) => {
      calls.push({ offset, length, position });
      if (failWith) throw Object.assign(new Error(`${failWith}: refused`), { code: failWith });
      return file.write(buffer, offset, length, position);
    },
  } as unknown as FileHandle;
}

describe('direct I/O helpers', () => {
  let dir: string;
  let file: FileHandle;
  const target = () => path.join(dir, 'target.bin');

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'direct-io-'));
    file = await open(target(), 'w+');
  });
  afterAll(async () => {
    await file.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('hands out distinct 1 MiB buffers and takes them back for reuse', () => {
    const a = takeAlignedBuffer();
    const b = takeAlignedBuffer();
    expect(a.bytes.length).toBe(DIRECT_BUFFER_BYTES);
    expect(b.bytes.length).toBe(DIRECT_BUFFER_BYTES);
    expect(a.bytes.buffer === b.bytes.buffer && a.bytes.byteOffset === b.bytes.byteOffset).toBe(false);
    b.release();
    b.release(); // twice is harmless
    const c = takeAlignedBuffer();
    expect(c.bytes.buffer === b.bytes.buffer && c.bytes.byteOffset === b.bytes.byteOffset).toBe(true);
    a.release();
    c.release();
  });

  it('keeps every released buffer for reuse, however many were in use at once, halves them past 16, and drops blocks only once they are idle', () => {
    const before = alignedBufferPool();
    // More than the 16 free buffers the pool used to keep: with 40 chunks in flight, every dip
    // dropped buffers and the next rise allocated new blocks.
    const first = Array.from({ length: 40 }, () => takeAlignedBuffer());
    const grown = alignedBufferPool();
    expect(grown.inUse).toBe(before.inUse + 40);
    // Past 16 full-size buffers in use, writers get half-size ones (still aligned).
    expect(first.slice(0, 16).every((b) => b.bytes.length === DIRECT_BUFFER_BYTES)).toBe(true);
    expect(first.slice(16).every((b) => b.bytes.length === DIRECT_BUFFER_BYTES / 2 && b.bytes.byteOffset % DIRECT_ALIGN === 0)).toBe(true);
    for (const b of first) b.release();
    expect(alignedBufferPool()).toMatchObject({ blocks: grown.blocks, inUse: before.inUse });
    const again = Array.from({ length: 40 }, () => takeAlignedBuffer());
    expect(alignedBufferPool().blocks).toBe(grown.blocks); // all reused: no new block
    expect(new Set(again.map((b) => b.bytes)).size).toBe(40); // still distinct buffers

    // Half back: the buffers still in use come from the oldest blocks, so the newest fall idle.
    for (const b of again.slice(20)) b.release();
    expect(trimAlignedBuffers(60_000)).toBe(0); // not idle long enough
    const dropped = trimAlignedBuffers(0);
    expect(dropped).toBeGreaterThan(0);
    expect(alignedBufferPool().blocks).toBe(grown.blocks - dropped);
    // The ones in use are untouched and still writable; released later, they go back to their blocks.
    for (const b of again.slice(0, 20)) b.bytes.fill(1);
    for (const b of again.slice(0, 20)) b.release();
    expect(alignedBufferPool().inUse).toBe(before.inUse);
    trimAlignedBuffers(0);
    expect(alignedBufferPool().blocks).toBe(1);
  });

  it('writes the aligned part through the direct handle and the unaligned tail through the page cache', async () => {
    const data = randomBytes(3 * DIRECT_ALIGN + 100);
    const buffer = takeAlignedBuffer();
    data.copy(buffer.bytes);
    const direct: Call[] = [];
    const buffered: Call[] = [];
    let refusals = 0;
    const position = 2 * DIRECT_ALIGN;
    await writeAligned(standIn(file, direct), async () => standIn(file, buffered), buffer.bytes, data.length, position, () => refusals++);
    buffer.release();
    expect(direct).toEqual([{ offset: 0, length: 3 * DIRECT_ALIGN, position }]);
    expect(buffered).toEqual([{ offset: 3 * DIRECT_ALIGN, length: 100, position: position + 3 * DIRECT_ALIGN }]);
    expect(refusals).toBe(0);
    expect(fs.readFileSync(target()).subarray(position).equals(data)).toBe(true);
  });

  it('writes through the page cache when the filesystem refuses a direct write (EINVAL), and says so once', async () => {
    const data = randomBytes(2 * DIRECT_ALIGN);
    const buffer = takeAlignedBuffer();
    data.copy(buffer.bytes);
    const direct: Call[] = [];
    const buffered: Call[] = [];
    let refusals = 0;
    await writeAligned(standIn(file, direct, 'EINVAL'), async () => standIn(file, buffered), buffer.bytes, data.length, 0, () => refusals++);
    buffer.release();
    expect(direct).toHaveLength(1);
    expect(buffered).toEqual([{ offset: 0, length: data.length, position: 0 }]);
    expect(refusals).toBe(1);
    expect(fs.readFileSync(target()).subarray(0, data.length).equals(data)).toBe(true);
  });

  it('passes on any other write error', async () => {
    const buffer = takeAlignedBuffer();
    try {
      await expect(writeAligned(standIn(file, [], 'EIO'), async () => standIn(file, []), buffer.bytes, DIRECT_ALIGN, 0)).rejects.toMatchObject({ code: 'EIO' });
    } finally {
      buffer.release();
    }
  });

  it('stops using direct I/O in a directory once told to', async () => {
    const other = fs.mkdtempSync(path.join(dir, 'stopped-'));
    stopDirectIo(other);
    expect(await directIoWorks(other)).toBe(false);
    // Probing leaves no file behind, whatever the answer.
    await directIoWorks(dir);
    expect(fs.readdirSync(dir).filter((name) => name.startsWith('direct-io-probe'))).toEqual([]);
  });
});
