/**
 * Bench child: the client side of one measurement, in a process of its own (so the bench's own
 * process is idle and the client's memory can be measured). It receives its job as JSON in argv
 * and sends its result over IPC.
 *
 * - `upload`: the SDK's `createModelRepositoryClient(...).uploadArtifact` of a file, against this
 *   server, the ceiling server (which speaks the SDK's upload calls) or the tus server (through
 *   the adapter of tus-fetch.ts), after an unmeasured warm-up upload of a small file when given.
 *   Times the whole call and the completion request, and measures this process's RSS growth.
 * - `stream-put`: the whole file in one fetch PUT whose body streams the file (read with the SDK's
 *   chunk reader and hashed on the way, like `uploadArtifact` does).
 * - `download`: a fetch GET whose body is read and discarded (after a warm-up GET of a 64 MiB range).
 */
import { createHash } from 'node:crypto';
import { createModelRepositoryClient } from '../../sdk/src/index.ts';
import { openSource } from '../../sdk/src/source.ts';
import { currentRss, peakRss, resetPeakRss } from './proc.ts';
import { tusFetch } from './tus-fetch.ts';

export type ClientJob =
  | {
      mode: 'upload';
      target: 'repo' | 'ceiling' | 'tus';
      baseUrl: string;
      apiKey?: string;
      productId: string;
      file: string;
      chunkSize: number;
      concurrency: number;
      /** Uploaded first, unmeasured, to warm up both ends (JIT, connection pool). */
      warmUpFile?: string;
    }
  | { mode: 'stream-put'; url: string; file: string; warmUpFile?: string }
  | { mode: 'download'; url: string; apiKey?: string };

export interface ClientResult {
  seconds: number;
  bytes: number;
  /** CPU time of this process during the measurement (all threads). */
  cpuSeconds: number;
  /** The completion request alone (upload). */
  completionSeconds?: number;
  /** RSS just before the measurement and the peak during it (upload). */
  rssBaselineBytes?: number;
  rssPeakBytes?: number;
  sha256?: string;
  artifactId?: string;
  storageUri?: string;
}

const PIECE = 8 * 1024 * 1024;

/** Tells the bench the measured part starts and waits for its go (it reads the server's counters). */
function startOfMeasurement(): Promise<void> {
  return new Promise((resolve) => {
    process.once('message', () => resolve());
    process.send!('ready');
  });
}

async function upload(job: Extract<ClientJob, { mode: 'upload' }>): Promise<ClientResult> {
  const transport = job.target === 'tus' ? tusFetch(job.baseUrl, job.chunkSize) : (request: Request) => fetch(request);
  let completionSeconds = 0;
  const client = createModelRepositoryClient({
    baseUrl: job.baseUrl,
    apiKey: job.apiKey,
    fetch: async (request) => {
      if (request.method !== 'POST' || !request.url.endsWith('/complete')) return transport(request);
      const started = performance.now();
      const response = await transport(request);
      completionSeconds = (performance.now() - started) / 1000;
      return response;
    },
  });

  const options = { concurrency: job.concurrency, file_name: 'bench-weights.bin', content_type: 'application/octet-stream' };
  if (job.warmUpFile) await client.uploadArtifact(job.productId, job.warmUpFile, options);

  // The peak from here on is what the upload adds to the process (RSS is only meaningful without
  // a warm-up: the bench measures it in a process of its own).
  await startOfMeasurement();
  const peakResettable = resetPeakRss('self');
  const rssBaselineBytes = currentRss('self');
  let sampledPeak = rssBaselineBytes;
  const sampler = peakResettable ? null : setInterval(() => (sampledPeak = Math.max(sampledPeak, currentRss('self'))), 20);

  const cpu = process.cpuUsage();
  const started = performance.now();
  const artifact = await client.uploadArtifact(job.productId, job.file, options);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  if (sampler) clearInterval(sampler);

  return {
    seconds,
    bytes: artifact.size_bytes,
    cpuSeconds: (used.user + used.system) / 1e6,
    completionSeconds,
    rssBaselineBytes,
    rssPeakBytes: peakResettable ? peakRss('self') : sampledPeak,
    sha256: artifact.sha256,
    artifactId: artifact.id,
    storageUri: artifact.storage_uri,
  };
}

async function streamPut(job: Extract<ClientJob, { mode: 'stream-put' }>): Promise<ClientResult> {
  if (job.warmUpFile) await putWhole(job.url, job.warmUpFile);
  await startOfMeasurement();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const { bytes, sha256 } = await putWhole(job.url, job.file);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { seconds, bytes, cpuSeconds: (used.user + used.system) / 1e6, sha256 };
}

async function putWhole(url: string, file: string): Promise<{ bytes: number; sha256: string }> {
  const reader = await openSource(file);
  const hash = createHash('sha256');
  let position = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (position >= reader.size) {
        controller.close();
        return;
      }
      const end = Math.min(position + PIECE, reader.size);
      const bytes = await reader.read(position, end);
      position = end;
      hash.update(bytes);
      controller.enqueue(bytes);
    },
  });
  try {
    const response = await fetch(url, {
      method: 'PUT',
      body,
      duplex: 'half',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(reader.size) },
    } as RequestInit);
    const answer = (await response.json()) as { sha256?: string; size_bytes?: number };
    const sha256 = hash.digest('hex');
    if (response.status !== 201 || answer.sha256 !== sha256 || answer.size_bytes !== reader.size) {
      throw new Error(`streamed PUT: HTTP ${response.status}, server has ${answer.size_bytes} bytes ${answer.sha256}, sent ${reader.size} bytes ${sha256}`);
    }
    return { bytes: reader.size, sha256 };
  } finally {
    await reader.close();
  }
}

/** Reads and discards the body of a GET; returns its length. */
async function drain(url: string, headers: Record<string, string>, expectedStatus: number): Promise<number> {
  const response = await fetch(url, { headers });
  if (response.status !== expectedStatus || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const expected = Number(response.headers.get('Content-Length'));
  let bytes = 0;
  const body = response.body.getReader();
  for (let piece = await body.read(); !piece.done; piece = await body.read()) bytes += piece.value.byteLength;
  if (bytes !== expected) throw new Error(`GET ${url}: ${bytes} bytes, Content-Length ${expected}`);
  return bytes;
}

const WARM_UP_BYTES = 64 * 1024 * 1024;

async function download(job: Extract<ClientJob, { mode: 'download' }>): Promise<ClientResult> {
  const auth: Record<string, string> = job.apiKey ? { Authorization: `Bearer ${job.apiKey}` } : {};
  // Warm up both ends (JIT, connection pool) with a range of the file, then measure the whole file.
  await drain(job.url, { ...auth, Range: `bytes=0-${WARM_UP_BYTES - 1}` }, 206);
  await startOfMeasurement();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const bytes = await drain(job.url, auth, 200);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { seconds, bytes, cpuSeconds: (used.user + used.system) / 1e6 };
}

// The bench went away: nobody is left to report to.
process.on('disconnect', () => process.exit(1));

const job = JSON.parse(process.argv[2] ?? 'null') as ClientJob;
const run = job.mode === 'upload' ? upload(job) : job.mode === 'stream-put' ? streamPut(job) : download(job);
run.then(
  (result) => process.send!(result, () => process.exit(0)),
  (error: unknown) => process.send!({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () => process.exit(1)),
);
