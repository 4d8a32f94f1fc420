// Worker thread of Sha256Worker (resumable-sha256.ts): runs hash-wasm's SHA-256 — about a quarter
// of node:crypto's speed — off the event loop that serves requests, at the lowest CPU priority.
// Plain JavaScript so it loads the same under tsx, vitest and plain Node.
//
// Messages in:  { id, op: 'begin', state }  { id, op: 'data', bytes: Uint8Array }  { id, op: 'end' }
// Messages out: { id, state, bytes } or { id, error }
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { createSHA256 } from 'hash-wasm';

// Background work: run at the lowest CPU priority, so uploads in flight never wait for it.
// On Linux, setpriority() on a thread id changes that thread only (/proc/thread-self names it).
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) os.setPriority(tid, 19);
} catch {
  // not Linux, or not allowed: normal priority
}

const jobs = new Map();

parentPort.on('message', async (msg) => {
  try {
    if (msg.op === 'begin') {
      const job = { hasher: null, bytes: 0, ready: null, failed: null };
      job.ready = createSHA256().then((hasher) => {
        hasher.load(Buffer.from(msg.state, 'base64'));
        job.hasher = hasher;
      });
      jobs.set(msg.id, job);
      return;
    }
    const job = jobs.get(msg.id);
    if (!job) return;
    await job.ready;
    if (msg.op === 'data') {
      job.hasher.update(msg.bytes);
      job.bytes += msg.bytes.byteLength;
    } else if (msg.op === 'end') {
      jobs.delete(msg.id);
      parentPort.postMessage({ id: msg.id, state: Buffer.from(job.hasher.save()).toString('base64'), bytes: job.bytes });
    } else if (msg.op === 'cancel') {
      jobs.delete(msg.id);
    }
  } catch (err) {
    jobs.delete(msg.id);
    parentPort.postMessage({ id: msg.id, error: String(err && err.message ? err.message : err) });
  }
});
