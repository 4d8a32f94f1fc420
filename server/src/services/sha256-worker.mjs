// Worker thread of HashThread (resumable-sha256.ts): SHA-256 work on byte ranges of local files,
// off the event loop that serves requests. The thread reads the bytes itself (synchronous reads
// are fine here: nothing else runs on this thread).
// Plain JavaScript so it loads the same under tsx, vitest, the production bundle and plain Node.
//
// workerData: { lowPriority, directReads }
// - lowPriority: the thread asks the OS for the lowest CPU priority
// - directReads: read with O_DIRECT where the filesystem allows it (the files were written that way)
//
// Messages in, each answered with { id, ...result } or { id, error }:
// - { id, op: 'saved', state, path, start, end }: loads a hash-wasm state, hashes bytes
//   [start, end] of the file into it → { state, bytes }
// - { id, op: 'fold', key, path, start, end }: extends the node:crypto hash kept here under `key`
//   (which must cover exactly `start` bytes; start 0 begins a new one) with bytes [start, end] of
//   the file → { bytes, covered }
// - { id, op: 'digest', key, covered }: hex digest of the hash under `key` when it covers exactly
//   `covered` bytes, else null → { sha256 }
// - { op: 'drop', key }: forgets the hash under `key` (no answer)
import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, openSync, readSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { createSHA256 } from 'hash-wasm';

if (workerData?.lowPriority) {
  // On Linux, setpriority() on a thread id changes that thread only (/proc/thread-self names it).
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) os.setPriority(tid, 19);
  } catch {
    // not Linux, or not allowed: normal priority
  }
}

// Page-aligned (WebAssembly memory is), so the reads can bypass the page cache (O_DIRECT): staged
// parts are written that way (storage/direct-io.ts), so they are not in the cache, and reading
// them through it would cost a page-cache page per 4 KiB for bytes read once.
const buffer = Buffer.from(new WebAssembly.Memory({ initial: 16 }).buffer); // 1 MiB
const ALIGN = 4096;
const O_DIRECT = fsConstants.O_DIRECT;
/** Cleared for good once the filesystem refuses direct reads. */
let directReads = O_DIRECT !== undefined && workerData?.directReads === true;
let wasm = null;
/** key → { hash, covered } */
const folds = new Map();

function openForReading(path, start) {
  if (directReads && start % ALIGN === 0) {
    try {
      return { fd: openSync(path, fsConstants.O_RDONLY | O_DIRECT), direct: true };
    } catch (err) {
      if (err?.code !== 'EINVAL') throw err;
      directReads = false;
    }
  }
  return { fd: openSync(path, 'r'), direct: false };
}

/** Feeds bytes [start, end] of the file at `path` to `update`; returns how many there were. */
function readRange(path, start, end, update) {
  let { fd, direct } = openForReading(path, start);
  try {
    let position = start;
    while (position <= end) {
      const want = Math.min(buffer.length, end - position + 1);
      if (direct && position % ALIGN !== 0) {
        // Only after a short read: go on through the page cache (never re-read what was hashed).
        closeSync(fd);
        ({ fd, direct } = { fd: openSync(path, 'r'), direct: false });
      }
      let n;
      try {
        // Direct reads take whole blocks; a read past the end of the file just comes back short.
        n = readSync(fd, buffer, 0, direct ? Math.ceil(want / ALIGN) * ALIGN : want, position);
      } catch (err) {
        if (!direct || err?.code !== 'EINVAL') throw err;
        directReads = false;
        closeSync(fd);
        ({ fd, direct } = { fd: openSync(path, 'r'), direct: false });
        continue;
      }
      if (n === 0) break;
      n = Math.min(n, want);
      update(buffer.subarray(0, n));
      position += n;
    }
    return position - start;
  } finally {
    closeSync(fd);
  }
}

async function run(msg) {
  switch (msg.op) {
    case 'saved': {
      wasm ??= createSHA256();
      const hash = await wasm;
      hash.load(Buffer.from(msg.state, 'base64'));
      const bytes = readRange(msg.path, msg.start, msg.end, (piece) => hash.update(piece));
      return { state: Buffer.from(hash.save()).toString('base64'), bytes };
    }
    case 'fold': {
      let entry = folds.get(msg.key);
      if (msg.start === 0) {
        entry = { hash: createHash('sha256'), covered: 0 };
        folds.set(msg.key, entry);
      }
      if (!entry || entry.covered !== msg.start) {
        folds.delete(msg.key);
        throw new Error(`the running digest of ${msg.key} does not cover ${msg.start} bytes`);
      }
      try {
        const bytes = readRange(msg.path, msg.start, msg.end, (piece) => entry.hash.update(piece));
        entry.covered += bytes;
        return { bytes, covered: entry.covered };
      } catch (err) {
        folds.delete(msg.key); // partly updated: useless
        throw err;
      }
    }
    case 'digest': {
      const entry = folds.get(msg.key);
      return { sha256: entry && entry.covered === msg.covered ? entry.hash.copy().digest('hex') : null };
    }
    default:
      throw new Error(`unknown operation ${msg.op}`);
  }
}

parentPort.on('message', async (msg) => {
  if (msg.op === 'drop') {
    folds.delete(msg.key);
    return;
  }
  try {
    parentPort.postMessage({ id: msg.id, ...(await run(msg)) });
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: String(err && err.message ? err.message : err) });
  }
});
