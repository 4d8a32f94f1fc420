// Worker thread of Sha256Worker (resumable-sha256.ts): runs hash-wasm's SHA-256 — about a quarter
// of node:crypto's speed — off the event loop that serves requests, at the lowest CPU priority,
// reading the bytes itself: none of its work competes with requests in flight.
// Plain JavaScript so it loads the same under tsx, vitest and plain Node.
//
// Message in:  { id, state, path, start, end }  (hash bytes [start, end] of the file at `path`)
// Message out: { id, state, bytes } or { id, error }
import { closeSync, openSync, readSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { createSHA256 } from 'hash-wasm';

// On Linux, setpriority() on a thread id changes that thread only (/proc/thread-self names it).
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) os.setPriority(tid, 19);
} catch {
  // not Linux, or not allowed: normal priority
}

const buffer = Buffer.allocUnsafe(1024 * 1024);
const hasher = createSHA256();

parentPort.on('message', async (msg) => {
  let fd = null;
  try {
    const hash = await hasher;
    hash.load(Buffer.from(msg.state, 'base64'));
    fd = openSync(msg.path, 'r');
    let position = msg.start;
    while (position <= msg.end) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, msg.end - position + 1), position);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      position += n;
    }
    parentPort.postMessage({ id: msg.id, state: Buffer.from(hash.save()).toString('base64'), bytes: position - msg.start });
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: String(err && err.message ? err.message : err) });
  } finally {
    if (fd !== null) closeSync(fd);
  }
});
