/**
 * Bench child: the client side of one measurement, in a process of its own (so the bench's own
 * process is idle and the client's memory can be measured). It receives its job as JSON in argv
 * and sends its result over IPC.
 *
 * - `upload`: the SDK's `createModelRepositoryClient(...).uploadArtifact` of a file, against this
 *   server, the ceiling server (which speaks the SDK's upload calls) or the tus server (through
 *   the adapter of tus-fetch.ts), after an unmeasured warm-up upload of a small file when given
 *   (on this server the warm-up's artifact is deleted again, so that the next client's warm-up of
 *   the same bytes is a transfer too, not an instant upload). Times the whole call and the
 *   completion request, measures this process's RSS growth, and counts the requests, their body
 *   bytes and the failed ones (any answer ≥ 400 or a request that threw, retried or not).
 *   With `hash: 'before'` the file's SHA-256 is computed before the measured part and given to
 *   `uploadArtifact` (as a caller who knows it would): the SDK then neither hashes the file first
 *   nor while sending, so the measured part is the transfer and the completion. With `hash: 'sdk'`
 *   the SDK does what it does by default: a file of INSTANT_UPLOAD_MIN_BYTES or more is hashed
 *   first, inside the measured part (`preHashSeconds`: until the first request went out).
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
      /** Who hashes the file: the client before the measured part, or the SDK inside it (see above). */
      hash: 'before' | 'sdk';
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
  /** Upload: the session came back deduplicated (instant upload: the server has these bytes). */
  deduplicated?: boolean;
  /** Upload: seconds spent hashing the file before the initiation (`hash: 'before'`: outside the measured part). */
  preHashSeconds?: number;
  /** Upload, measured part: requests made, their body bytes (Content-Length, else the body's length). */
  requests?: number;
  bodyBytesSent?: number;
  /** Upload, measured part: requests answered ≥ 400 or that threw (the SDK may have retried them), and the first. */
  failedRequests?: number;
  firstFailure?: string | null;
  /** Upload: epoch milliseconds at the start and end of the measured part (to add clients up). */
  startedAtMs?: number;
  endedAtMs?: number;
  /** Upload: why uploadArtifact failed (then the figures above are partial). */
  uploadError?: string;
}

const PIECE = 8 * 1024 * 1024;

/** Tells the bench the measured part starts and waits for its go (it reads the server's counters). */
function startOfMeasurement(): Promise<void> {
  return new Promise((resolve) => {
    process.once('message', () => resolve());
    process.send!('ready');
  });
}

/** What the measured part sent, and what failed (see ClientResult). */
interface Wire {
  requests: number;
  bodyBytes: number;
  failed: number;
  firstFailure: string | null;
  firstRequestAt: number | null;
}

const newWire = (): Wire => ({ requests: 0, bodyBytes: 0, failed: 0, firstFailure: null, firstRequestAt: null });

/** SHA-256 (hex) of a file, read in 8 MiB pieces. */
async function sha256OfFile(path: string): Promise<string> {
  const reader = await openSource(path);
  try {
    const hash = createHash('sha256');
    const buffer = new Uint8Array(PIECE);
    for (let start = 0; start < reader.size; start += PIECE) hash.update(await reader.read(start, Math.min(start + PIECE, reader.size), buffer));
    return hash.digest('hex');
  } finally {
    await reader.close();
  }
}

async function upload(job: Extract<ClientJob, { mode: 'upload' }>): Promise<ClientResult> {
  const transport = job.target === 'tus' ? tusFetch(job.baseUrl, job.chunkSize) : (request: Request) => fetch(request);
  let completionSeconds = 0;
  let wire = newWire();
  const counted = async (request: Request): Promise<Response> => {
    const w = wire;
    w.requests++;
    w.firstRequestAt ??= performance.now();
    const length = request.headers.get('Content-Length');
    // Chunk bodies are streams with a Content-Length; the JSON bodies have none and are small.
    w.bodyBytes += length !== null ? Number(length) : request.body ? (await request.clone().arrayBuffer()).byteLength : 0;
    const what = `${request.method} ${new URL(request.url).pathname}`;
    try {
      const response = await transport(request);
      if (response.status >= 400) {
        w.failed++;
        w.firstFailure ??= `${what}: HTTP ${response.status} ${(await response.clone().text()).slice(0, 500)}`;
      }
      return response;
    } catch (error) {
      w.failed++;
      w.firstFailure ??= `${what}: ${error instanceof Error ? error.message : String(error)}`;
      throw error;
    }
  };
  const client = createModelRepositoryClient({
    baseUrl: job.baseUrl,
    apiKey: job.apiKey,
    fetch: async (request) => {
      if (request.method !== 'POST' || !request.url.endsWith('/complete')) return counted(request);
      const started = performance.now();
      const response = await counted(request);
      completionSeconds = (performance.now() - started) / 1000;
      return response;
    },
  });

  const options = { concurrency: job.concurrency, file_name: 'bench-weights.bin', content_type: 'application/octet-stream' };
  if (job.warmUpFile) {
    const warm = await client.uploadArtifact(job.productId, job.warmUpFile, options);
    // Only this server stores (and deduplicates) what it was sent.
    if (job.target === 'repo') await client.deleteArtifact(job.productId, warm.id);
  }
  let preHashSeconds: number | undefined;
  let sha256: string | undefined;
  if (job.hash === 'before') {
    const hashStarted = performance.now();
    sha256 = await sha256OfFile(job.file);
    preHashSeconds = (performance.now() - hashStarted) / 1000;
  }
  let deduplicated: boolean | undefined;
  const measured = { ...options, ...(sha256 ? { sha256 } : {}), onSession: (session: { deduplicated: boolean }) => (deduplicated = session.deduplicated) };

  // The peak from here on is what the upload adds to the process (RSS is only meaningful without
  // a warm-up: the bench measures it in a process of its own).
  await startOfMeasurement();
  const peakResettable = resetPeakRss('self');
  const rssBaselineBytes = currentRss('self');
  let sampledPeak = rssBaselineBytes;
  const sampler = peakResettable ? null : setInterval(() => (sampledPeak = Math.max(sampledPeak, currentRss('self'))), 20);

  wire = newWire();
  const cpu = process.cpuUsage();
  const startedAtMs = performance.timeOrigin + performance.now();
  const started = performance.now();
  let artifact: Awaited<ReturnType<typeof client.uploadArtifact>> | undefined;
  let uploadError: string | undefined;
  try {
    artifact = await client.uploadArtifact(job.productId, job.file, measured);
  } catch (error) {
    uploadError = error instanceof Error ? (error.stack ?? error.message) : String(error);
  }
  const seconds = (performance.now() - started) / 1000;
  const endedAtMs = performance.timeOrigin + performance.now();
  const used = process.cpuUsage(cpu);
  if (sampler) clearInterval(sampler);
  if (job.hash === 'sdk' && wire.firstRequestAt !== null) preHashSeconds = (wire.firstRequestAt - started) / 1000;

  return {
    seconds,
    bytes: artifact?.size_bytes ?? 0,
    cpuSeconds: (used.user + used.system) / 1e6,
    completionSeconds,
    rssBaselineBytes,
    rssPeakBytes: peakResettable ? peakRss('self') : sampledPeak,
    sha256: artifact?.sha256,
    artifactId: artifact?.id,
    storageUri: artifact?.storage_uri,
    deduplicated,
    preHashSeconds,
    requests: wire.requests,
    bodyBytesSent: wire.bodyBytes,
    failedRequests: wire.failed,
    firstFailure: wire.firstFailure,
    startedAtMs,
    endedAtMs,
    uploadError,
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
