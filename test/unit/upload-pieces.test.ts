/** The pure pieces of the upload service: chunk layout and the in-process chunk writers. */
import { describe, expect, it } from 'vitest';
import { artifactKey, chooseChunkSize, chunkLength, MAX_CHUNKS, S3_MIN_CHUNK_SIZE, stagedOf } from '../../server/src/services/upload-chunk-layout.ts';
import { InFlightWriters } from '../../server/src/services/upload-writers.ts';
import type { UploadSession } from '../../server/src/persistence/entities.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('chunk layout', () => {
  it('offers the configured chunk size, at least 5 MiB on S3', () => {
    expect(chooseChunkSize(8 * MiB, 100 * MiB, 'fs')).toBe(8 * MiB);
    expect(chooseChunkSize(1 * MiB, 100 * MiB, 'fs')).toBe(1 * MiB);
    expect(chooseChunkSize(1 * MiB, 100 * MiB, 's3')).toBe(S3_MIN_CHUNK_SIZE);
    expect(chooseChunkSize(8 * MiB, 0, 's3')).toBe(8 * MiB);
  });

  it('raises the size to whole MiB so that no upload needs more than 10,000 chunks', () => {
    const total = 200 * GiB;
    const size = chooseChunkSize(8 * MiB, total, 'fs');
    expect(size % MiB).toBe(0);
    expect(Math.ceil(total / size)).toBeLessThanOrEqual(MAX_CHUNKS);
    expect(Math.ceil(total / (size - MiB))).toBeGreaterThan(MAX_CHUNKS);
  });

  it('never goes past what a 32-bit size column holds', () => {
    expect(chooseChunkSize(4 * GiB, 10 * GiB, 'fs')).toBe(2047 * MiB);
  });

  it('gives every chunk the chunk size but the last, which holds the rest', () => {
    const s = { chunk_count: 3, chunk_size_bytes: 10, total_size_bytes: 25 };
    expect([0, 1, 2].map((i) => chunkLength(s, i))).toEqual([10, 10, 5]);
    expect(chunkLength({ chunk_count: 2, chunk_size_bytes: 10, total_size_bytes: 20 }, 1)).toBe(10);
  });

  it("keys an artifact's bytes by product and artifact, and names a session's staged upload", () => {
    expect(artifactKey('p', 'a')).toBe('artifacts/p/a');
    const session = { staging_key: 'artifacts/p/a', storage_upload_id: undefined } as unknown as UploadSession;
    expect(stagedOf(session)).toEqual({ key: 'artifacts/p/a', uploadId: null });
  });
});

const destroyable = () => {
  const destroyed: (Error | undefined)[] = [];
  return { destroyed, stream: { destroy: (e?: Error) => destroyed.push(e) } };
};

describe('InFlightWriters', () => {
  it('tracks the chunks being received, per session and index, until each writer ends', () => {
    const writers = new InFlightWriters();
    const a = writers.begin('s1', 0);
    const b = writers.begin('s1', 3);
    expect([writers.receiving('s1', 0), writers.receiving('s1', 3), writers.receiving('s1', 1), writers.receiving('s2', 0)]).toEqual([true, true, false, false]);
    a.end();
    expect(writers.receiving('s1', 0)).toBe(false);
    expect(writers.receiving('s1', 3)).toBe(true);
    b.end();
    expect(writers.receiving('s1', 3)).toBe(false);
  });

  it('counts a chunk waiting for its turn to be read as received, until every request for it stops waiting', () => {
    const writers = new InFlightWriters();
    const first = writers.queue('s1', 2);
    const twin = writers.queue('s1', 2);
    expect([writers.receiving('s1'), writers.receiving('s1', 2), writers.receiving('s1', 0), writers.receiving('s2')]).toEqual([true, true, false, false]);
    first();
    first(); // once only
    expect(writers.receiving('s1', 2)).toBe(true);
    twin();
    expect([writers.receiving('s1'), writers.receiving('s1', 2)]).toEqual([false, false]);
  });

  it('a re-send stops the older writer of the same chunk and waits until it has settled', async () => {
    const writers = new InFlightWriters();
    const older = writers.begin('s', 2);
    const { destroyed, stream } = destroyable();
    older.attach(stream);
    const newer = writers.begin('s', 2);
    const reason = new Error('sent again');
    let tookOver = false;
    const taking = newer.takeOver(reason).then((had) => (tookOver = had));
    await Promise.resolve();
    expect(older.stopReason).toBe(reason);
    expect(destroyed).toEqual([reason]);
    expect(tookOver).toBe(false); // still waiting for the older request
    older.end();
    await taking;
    expect(tookOver).toBe(true);
    // The older writer's end did not unregister the newer one.
    expect(writers.receiving('s', 2)).toBe(true);
    newer.end();
    expect(writers.receiving('s', 2)).toBe(false);
  });

  it('a first writer has nothing to take over', async () => {
    const writer = new InFlightWriters().begin('s', 0);
    expect(await writer.takeOver(new Error('x'))).toBe(false);
    expect(writer.stopReason).toBeNull();
  });

  it('refuses a stream attached after the writer was stopped', () => {
    const writer = new InFlightWriters().begin('s', 0);
    const reason = new Error('completing');
    writer.stop(reason);
    expect(() => writer.attach(destroyable().stream)).toThrow(reason);
  });

  it("quiesce stops the session's writers, waits for them, and keeps the session closed until released", async () => {
    const writers = new InFlightWriters();
    const one = writers.begin('s', 0);
    const two = writers.begin('s', 1);
    const other = writers.begin('t', 0);
    let n = 0;
    const quiescing = writers.quiesce('s', () => new Error(`stopped ${n++}`));
    expect(writers.isClosing('s')).toBe(true);
    expect(writers.isClosing('t')).toBe(false);
    expect([one.stopReason?.message, two.stopReason?.message, other.stopReason]).toEqual(['stopped 0', 'stopped 1', null]);
    let released: (() => void) | undefined;
    void quiescing.then((r) => (released = r));
    one.end();
    await Promise.resolve();
    expect(released).toBeUndefined();
    two.end();
    await quiescing;
    expect(writers.isClosing('s')).toBe(true);
    released!();
    expect(writers.isClosing('s')).toBe(false);
    other.end();
  });
});
