// Worker thread of HashThread (resumable-sha256.ts): SHA-256 work on byte ranges of local files,
// off the event loop that serves requests. The thread reads the bytes itself (synchronous reads
// are fine here: nothing else runs on this thread).
// Plain JavaScript so it loads the same under tsx, vitest, the production bundle and plain Node.
//
// workerData: { lowPriority }  (true: the thread asks the OS for the lowest CPU priority)
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
import { closeSync, openSync, readSync, readlinkSync } from 'node:fs';
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

const buffer = Buffer.allocUnsafe(1024 * 1024);
let wasm = null;
/** key → { hash, covered } */
const folds = new Map();

/** Feeds bytes [start, end] of the file at `path` to `update`; returns how many there were. */
function readRange(path, start, end, update) {
  const fd = openSync(path, 'r');
  try {
    let position = start;
    while (position <= end) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, end - position + 1), position);
      if (n === 0) break;
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
