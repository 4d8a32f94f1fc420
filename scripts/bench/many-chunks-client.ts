/**
 * Bench child of many-chunks.ts: one upload of many small chunks through the SDK's
 * `uploadArtifact`, timing every chunk request on the client side (from the request to the last
 * byte of its response, read here in full) and counting the bytes of the chunk responses. Reads
 * the server's CPU time from /proc at the chunk marks given, so the server's CPU per chunk can be
 * compared between the start and the end of the upload. Job as JSON in argv, result over IPC.
 */
import { createModelRepositoryClient } from '../../sdk/src/index.ts';
import { cpuSeconds } from './proc.ts';

export interface ManyChunksJob {
  baseUrl: string;
  apiKey: string;
  productId: string;
  file: string;
  /** Uploaded first, unmeasured (JIT, connection pool). */
  warmUpFile: string;
  concurrency: number;
  serverPid: number;
  /** Numbers of finished chunks at which the server's CPU time is read (0 = before the first). */
  marks: number[];
}

export interface ManyChunksResult {
  /** Latency (ms) of each chunk request, by chunk index (the request that succeeded, when retried). */
  latencies: number[];
  /** The same, to the answer's headers only (what the server took, without the answer's transfer). */
  headerLatencies: number[];
  /** Bytes of all chunk response bodies. */
  responseBytes: number;
  /** Server CPU seconds at each mark (same order as `marks`). */
  serverCpuAt: number[];
  /** Wall seconds of the measured upload (completion included). */
  seconds: number;
  bytes: number;
  chunks: number;
}

const CHUNK_PATH = /\/chunks\/(\d+)$/;

async function run(job: ManyChunksJob): Promise<ManyChunksResult> {
  let measuring = false;
  const latencies: number[] = [];
  const headerLatencies: number[] = [];
  let responseBytes = 0;
  let finished = 0;
  const serverCpuAt: number[] = job.marks.map(() => NaN);
  const mark = () => {
    job.marks.forEach((at, i) => {
      if (at === finished) serverCpuAt[i] = cpuSeconds(job.serverPid);
    });
  };
  const client = createModelRepositoryClient({
    baseUrl: job.baseUrl,
    apiKey: job.apiKey,
    fetch: async (request) => {
      const chunk = request.method === 'PUT' ? CHUNK_PATH.exec(new URL(request.url).pathname) : null;
      if (!chunk || !measuring) return fetch(request);
      const started = performance.now();
      const response = await fetch(request);
      const headersMs = performance.now() - started;
      // The whole answer, so that its size counts in the latency.
      const body = await response.arrayBuffer();
      const ms = performance.now() - started;
      if (response.ok) {
        latencies[Number(chunk[1])] = ms;
        headerLatencies[Number(chunk[1])] = headersMs;
        responseBytes += body.byteLength;
        finished++;
        mark();
      }
      return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
    },
  });
  const options = { concurrency: job.concurrency, file_name: 'many-chunks.bin', content_type: 'application/octet-stream' };
  await client.uploadArtifact(job.productId, job.warmUpFile, options);

  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send!('ready');
  });
  measuring = true;
  mark();
  const started = performance.now();
  const artifact = await client.uploadArtifact(job.productId, job.file, options);
  const seconds = (performance.now() - started) / 1000;
  return { latencies, headerLatencies, responseBytes, serverCpuAt, seconds, bytes: artifact.size_bytes, chunks: latencies.length };
}

process.on('disconnect', () => process.exit(1));
run(JSON.parse(process.argv[2] ?? 'null') as ManyChunksJob).then(
  (result) => process.send!(result, () => process.exit(0)),
  (error: unknown) => process.send!({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () => process.exit(1)),
);
