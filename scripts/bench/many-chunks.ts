/**
 * Bench case (`npm run bench`, alone: `npm run bench -- --only many-chunks`): whether a chunk's cost
 * grows with the chunks already received. This server (started like the other cases: production
 * build, SQLite + fs in a temp DATA_DIR) with UPLOAD_CHUNK_SIZE_BYTES=65536 takes one upload of
 * 10,000 chunks (655,360,000 bytes) through the SDK's `uploadArtifact`, 4 chunks in flight, in a
 * client process of its own (many-chunks-client.ts) that times every chunk request from its start
 * to the last byte of its answer. Printed: the median latency of the first and of the last 1,000
 * chunks and their ratio against the target, the server's CPU per chunk over the same two stretches,
 * and the total bytes of the chunk responses (each lists every chunk received so far, as the API
 * requires).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { createModelRepositoryClient } from '../../sdk/src/index.ts';
import type { ManyChunksJob, ManyChunksResult } from './many-chunks-client.ts';
import { answerOf, forkScript, stopChild, type Started } from './processes.ts';

export const MANY_CHUNKS = {
  chunkSize: 65_536,
  chunks: 10_000,
  /** Chunks at the start and at the end that are compared. */
  window: 1_000,
  concurrency: 4,
  warmUpChunks: 500,
  /** The last window's median latency at most this many times the first window's. */
  targetRatio: 1.2,
};

export interface ManyChunksOutcome {
  lines: string[];
  targets: [boolean, string][];
}

/** Writes `size` bytes of one random 1 MiB block, repeated with each copy's first 8 bytes numbered. */
async function writeFile(path: string, size: number): Promise<void> {
  const block = randomBytes(1024 * 1024);
  const file = await open(path, 'w');
  try {
    for (let position = 0, n = 0; position < size; position += block.length, n++) {
      block.writeBigUInt64BE(BigInt(n), 0);
      const length = Math.min(block.length, size - position);
      await file.write(block, 0, length, position);
    }
  } finally {
    await file.close();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * Runs the case. `startServer(dataDir, chunkSize)` starts this server the way the bench's other
 * cases do (main.ts), `tmp` is the bench's temp dir.
 */
export async function manyChunks(
  tmp: string,
  startServer: (dataDir: string, chunkSize: number) => Promise<{ started: Started; baseUrl: string; apiKey: string }>,
  log: (line: string) => void,
): Promise<ManyChunksOutcome> {
  const { chunkSize, chunks, window, concurrency, warmUpChunks, targetRatio } = MANY_CHUNKS;
  const size = chunkSize * chunks;
  const file = join(tmp, 'many-chunks.bin');
  const warmUpFile = join(tmp, 'many-chunks-warm-up.bin');
  log(`(f) many chunks: generating ${size} bytes`);
  await writeFile(file, size);
  await writeFile(warmUpFile, chunkSize * warmUpChunks);

  const server = await startServer(join(tmp, 'many-chunks-repo'), chunkSize);
  try {
    const sdk = createModelRepositoryClient({ baseUrl: server.baseUrl, apiKey: server.apiKey });
    const model = await sdk.createModel('default', {
      name: `Many chunks bench ${randomUUID().slice(0, 8)}`,
      product_type: 'ML Model',
      environment: 'development',
      deployment_status: 'development',
    });
    log(`(f) many chunks: SDK uploadArtifact, ${chunks} chunks of ${chunkSize} bytes, ${concurrency} in flight`);
    const marks = [0, window, chunks - window, chunks];
    const job: ManyChunksJob = {
      baseUrl: server.baseUrl,
      apiKey: server.apiKey,
      productId: model.id,
      file,
      warmUpFile,
      concurrency,
      serverPid: server.started.pid,
      marks,
    };
    const client = forkScript('many-chunks-client.ts', [JSON.stringify(job)]);
    let result: ManyChunksResult;
    try {
      result = await answerOf<ManyChunksResult>(client, '(f) many-chunks upload');
    } finally {
      await stopChild(client);
    }
    if (result.chunks !== chunks || result.latencies.some((ms) => typeof ms !== 'number')) {
      throw new Error(`(f) many chunks: ${result.chunks} chunk latencies recorded, expected ${chunks}`);
    }
    const first = median(result.latencies.slice(0, window));
    const last = median(result.latencies.slice(chunks - window));
    const ratio = last / first;
    const headersFirst = median(result.headerLatencies.slice(0, window));
    const headersLast = median(result.headerLatencies.slice(chunks - window));
    const [c0, c1, c2, c3] = result.serverCpuAt as [number, number, number, number];
    const cpuMs = (from: number, to: number) => (((to - from) * 1000) / window).toFixed(2);
    const lines = [
      `(f) many chunks: one upload of ${chunks} chunks × ${chunkSize} bytes (${size} bytes), SDK uploadArtifact, ${concurrency} in flight, SQLite + fs, latency per chunk request measured by the client (request to the last byte of the answer)`,
      `  median latency, first ${window} chunks: ${first.toFixed(2)} ms; last ${window}: ${last.toFixed(2)} ms; ratio ${ratio.toFixed(2)}×`,
      `  to the answer's headers only: first ${window}: ${headersFirst.toFixed(2)} ms; last ${window}: ${headersLast.toFixed(2)} ms; ratio ${(headersLast / headersFirst).toFixed(2)}×`,
      `  server CPU per chunk, first ${window}: ${cpuMs(c0, c1)} ms; last ${window}: ${cpuMs(c2, c3)} ms (from /proc, 10 ms ticks)`,
      `  chunk responses: ${(result.responseBytes / 1e6).toFixed(1)} MB in all for ${(size / 1e6).toFixed(0)} MB of data; upload ${result.seconds.toFixed(1)} s (${(size / 1e6 / result.seconds).toFixed(0)} MB/s, completion included)`,
    ];
    const targets: [boolean, string][] = [
      [ratio <= targetRatio, `(f) last-${window} median chunk latency ≤ ${targetRatio}× the first-${window}: ${ratio.toFixed(2)}× (${last.toFixed(2)} vs ${first.toFixed(2)} ms)`],
    ];
    return { lines, targets };
  } finally {
    await stopChild(server.started);
  }
}
