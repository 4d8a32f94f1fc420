/**
 * Benchmark, not a test (`npm run bench`, `npm run bench -- --size 256MiB --repeat 5`): artifact
 * upload and download on one file (1 GiB by default, generated in a temp dir), in one run, printed
 * as a table. Each upload measurement runs `--repeat` times (5 by default; what a run stored is
 * removed before the next) and the table shows the run with the median throughput: on a shared
 * VM one run of the same code swings by ±15%. The runs go in rounds, one of (a), (b) and (c)
 * each, so that the machine's drift over the minute or two of a run reaches all three alike.
 *
 * (a) the ceiling: a bare node:http server (ceiling-server.ts) taking the file as 8 MiB chunks, 4 in
 *     parallel, each written at its offset into one file, fdatasync'd and hashed; and, for
 *     reference, one streamed PUT of the whole file;
 * (b) the peer: @tus/server with @tus/file-store (tus-server.ts), 8 MiB PATCH requests in order
 *     (its file store has no concatenation extension, so no parallel parts);
 * (c) this server, started like production (the build `npm start` runs, NODE_ENV=production, LOG_LEVEL=warn, SQLite and
 *     filesystem in a temp DATA_DIR, 8 MiB chunks), through the SDK's `uploadArtifact` with 4
 *     chunks in flight, completion included; and the completion request alone; and the upload of
 *     the same file once more while its bytes are stored (instant upload: the SDK hashes the file,
 *     initiates with the digest and completes, sending no chunk);
 * (d) downloading the artifact from this server and from nginx serving the same stored file (nginx
 *     is installed from Debian when missing), with the same client (fetch, body read and dropped),
 *     both from the page cache (the bench reads the file once first: uploads bypass the cache);
 * (e) this server's peak RSS during (c) and during (d), and the RSS growth of a fresh process
 *     uploading the file with the SDK.
 * (f) many-chunks.ts: one upload of 10,000 chunks of 64 KiB to this server, the median chunk latency
 *     of the last 1,000 against the first 1,000 (also alone: `--only many-chunks`).
 *
 * (a), (b) and (c) are all driven by the SDK's `uploadArtifact` (client.ts): the same chunk reader,
 * SHA-256 passes, streamed fetch bodies and concurrency, so the ratios compare servers. The SDK
 * hashes a file of 8 MiB or more before initiating (to ask for an instant upload); in (a), (b) and
 * (c) the client computes that digest before the measured part and hands it to `uploadArtifact`,
 * so the rows measure transfer and completion alone (the SDK then hashes nothing while sending),
 * and the pre-hash gets a row of its own. Every (c) run is checked to be a real transfer (its
 * session not deduplicated): each round deletes what the previous one stored, and the warm-up's
 * artifact is deleted by its client. Every
 * server and every client is a child process of its own, and each client first uploads (or
 * downloads) a little unmeasured, to warm up both ends; this process only orchestrates and reads
 * CPU time and RSS from /proc. The table goes to stdout, progress to stderr; the exit status is 1
 * when a target is missed. `--cpu-prof DIR` writes CPU profiles of this server to DIR.
 *
 * `--clients N` runs another case instead (concurrent.ts): N clients uploading at once.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createModelRepositoryClient } from '../../sdk/src/index.ts';
import { buildServer } from '../build.ts';
import type { ClientJob, ClientResult } from './client.ts';
import { concurrentUploads } from './concurrent.ts';
import { manyChunks } from './many-chunks.ts';
import { ensureNginx, nginxVersion, startNginx } from './nginx.ts';
import { cpuSeconds, currentRss, machineBusySeconds, ownTreeCpuSeconds, peakRss, resetPeakRss, threadCpuSeconds } from './proc.ts';
import {
  answerOf,
  cleanUp,
  forkScript,
  freePort,
  removeLater,
  removeNow,
  spawnProcess,
  stopChild,
  waitForHttp,
  type Started,
} from './processes.ts';
import { markdownTable } from './table.ts';

const MiB = 1024 * 1024;
const CHUNK_SIZE = 8 * MiB;
const CONCURRENCY = 4;
const BLOCK = 64 * MiB;
/**
 * The file each client uploads first, unmeasured: 16 chunks, enough for the servers' hot paths to
 * be compiled by the JIT before the measured upload starts (4 were not: first runs came out slow).
 */
const WARM_UP_SIZE = 16 * CHUNK_SIZE;

const TARGETS = {
  shareOfCeiling: 0.7,
  completionSeconds: 1,
  shareOfNginx: 0.9,
  serverPeakRssBytes: 200e6,
  sdkRssGrowthBytes: 100e6,
  /** An instant upload's requests (initiate + complete) carry JSON only. */
  instantUploadSentBytes: 64 * 1024,
};

// ─── arguments ───────────────────────────────────────────────────────────────────────────

const UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: MiB, gib: 1024 * MiB };

function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?$/i.exec(text.trim());
  const bytes = match ? Math.round(Number(match[1]) * UNITS[(match[2] ?? 'b').toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new Error(`--size: expected e.g. 1GiB, 256MiB or 100000000 (got ${JSON.stringify(text)})`);
  return bytes;
}

const USAGE = 'usage: npm run bench [-- --size 1GiB] [--repeat 5] [--cpu-prof DIR] [--clients N] [--only many-chunks]';

interface Options {
  size: number;
  /** Uploads (a), (b) and (c) are each measured this many times; the table shows the median run. */
  repeat: number;
  /** Where this server's CPU profiles go (`node --cpu-prof`), to see where its time goes. */
  cpuProfDir: string | null;
  /** `--clients N`: the concurrent-upload case alone (concurrent.ts); its --size defaults to 256 MiB, --repeat to 3. */
  clients: number | null;
  /** One case alone (`many-chunks`: (f)); all of them when null. */
  only: 'many-chunks' | null;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { size: 1024 * MiB, repeat: 5, cpuProfDir: null, clients: null, only: null };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const [arg, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? '';
    given.add(arg);
    if (arg === '--size') options.size = parseSize(value());
    else if (arg === '--repeat') {
      options.repeat = Number(value());
      if (!Number.isInteger(options.repeat) || options.repeat < 1 || options.repeat > 20) throw new Error(`--repeat: expected 1 to 20 (${USAGE})`);
    }
    else if (arg === '--cpu-prof') options.cpuProfDir = resolve(value());
    else if (arg === '--clients') {
      options.clients = Number(value());
      if (!Number.isInteger(options.clients) || options.clients < 1 || options.clients > 64) throw new Error(`--clients: expected 1 to 64 (${USAGE})`);
    }
    else if (arg === '--only') {
      if (value() !== 'many-chunks') throw new Error(`--only: expected many-chunks (${USAGE})`);
      options.only = 'many-chunks';
    }
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (${USAGE})`);
  }
  if (options.clients !== null && !given.has('--size')) options.size = 256 * MiB;
  if (options.clients !== null && !given.has('--repeat')) options.repeat = 3;
  return options;
}

// ─── helpers ─────────────────────────────────────────────────────────────────────────────

const log = (line: string) => process.stderr.write(`${line}\n`);

function formatBytes(bytes: number): string {
  if (bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)} GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB} MiB`;
  return `${bytes} bytes`;
}

function machine(): string {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return `${os.availableParallelism()} × ${model}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, Linux ${os.release()}; load average at start ${load}`;
}

/**
 * How much CPU other processes took while the bench ran: the machine's busy time minus the bench's
 * own (this process and its children). The measurements are only as good as this is small.
 */
function otherLoad(): () => string {
  const started = performance.now();
  const busy = machineBusySeconds();
  const own = ownTreeCpuSeconds();
  return () => {
    const wall = (performance.now() - started) / 1000;
    const others = Math.max(0, machineBusySeconds() - busy - (ownTreeCpuSeconds() - own));
    const available = wall * os.availableParallelism();
    return `other processes used ${others.toFixed(1)} CPU s of the ${available.toFixed(0)} available during the ${wall.toFixed(0)} s run (${((others / available) * 100).toFixed(0)}%)`;
  };
}

/** A file of `size` bytes: one random 64 MiB block, repeated with each copy's first 8 bytes numbered; flushed to disk. */
async function generateFile(path: string, size: number): Promise<void> {
  const block = randomBytes(Math.min(BLOCK, size));
  const file = await open(path, 'w');
  try {
    for (let position = 0, n = 0; position < size; position += block.length, n++) {
      if (block.length >= 8) block.writeBigUInt64BE(BigInt(n), 0);
      const length = Math.min(block.length, size - position);
      for (let written = 0; written < length; ) {
        written += (await file.write(block, written, length - written, position + written)).bytesWritten;
      }
    }
    await file.sync();
  } finally {
    await file.close();
  }
}

interface Measured {
  result: ClientResult;
  /** CPU seconds the server process used during the measured part. */
  serverCpu: number;
  /** The same by thread id (threads that ended meanwhile are only in `serverCpu`). */
  serverThreads: Map<number, number>;
}

/**
 * Runs one client job in a child process (client.ts) against the server process `serverPid`. The
 * server's CPU time is read when the client starts its measured part (after its warm-up) and when
 * it answers; `atStart` runs at that start too.
 */
async function runClient(job: ClientJob, serverPid: number, what: string, atStart: () => void = () => {}): Promise<Measured> {
  const client = forkScript('client.ts', [JSON.stringify(job)]);
  let cpuAtStart = NaN;
  let threadsAtStart = new Map<number, number>();
  try {
    const result = await answerOf<ClientResult>(client, what, {
      onReady: () => {
        atStart();
        cpuAtStart = cpuSeconds(serverPid);
        threadsAtStart = threadCpuSeconds(serverPid);
      },
    });
    if (result.uploadError) throw new Error(`${what} failed: ${result.uploadError}`);
    const serverCpu = cpuSeconds(serverPid) - cpuAtStart;
    const serverThreads = new Map([...threadCpuSeconds(serverPid)].map(([tid, seconds]) => [tid, seconds - (threadsAtStart.get(tid) ?? 0)]));
    return { result, serverCpu, serverThreads };
  } finally {
    await stopChild(client);
  }
}

/** "main / named threads / the others" CPU seconds of a measurement; `named` are thread ids. */
function threadSplit({ serverCpu, serverThreads }: Measured, pid: number, named: ReadonlySet<number> = new Set()): string {
  const main = serverThreads.get(pid) ?? 0;
  const some = [...serverThreads].reduce((sum, [tid, seconds]) => sum + (named.has(tid) ? seconds : 0), 0);
  const parts = [main, ...(named.size > 0 ? [some] : []), Math.max(0, serverCpu - main - some)];
  return parts.map((seconds) => seconds.toFixed(2)).join(' / ');
}

/** Starts a bench server (ceiling-server.ts, tus-server.ts) and waits for its port. */
async function startBenchServer(file: string, args: string[], what: string): Promise<{ started: Started; baseUrl: string }> {
  const started = forkScript(file, args);
  const { port } = await answerOf<{ port: number }>(started, what, { timeoutMs: 60_000 });
  return { started, baseUrl: `http://127.0.0.1:${port}` };
}

/**
 * What `npm start` runs the server with: package.json's start script is `[VAR=value …] node <flags>
 * <entry>`; returns the environment assignments and the Node flags.
 */
function startCommand(): { env: Record<string, string>; flags: string[] } {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) {
    const [name, value] = words.shift()!.split(/=(.*)/s, 2) as [string, string];
    env[name] = value;
  }
  if (words[0] !== 'node') throw new Error(`package.json's start script does not run node: ${pkg.scripts.start}`);
  return { env, flags: words.slice(1).filter((word) => word.startsWith('--')) };
}

/** This server as production runs it, on a free port, with SQLite and the filesystem in `dataDir`. */
async function startThisServer(dataDir: string, cpuProfDir: string | null, chunkSize = CHUNK_SIZE): Promise<{ started: Started; baseUrl: string; apiKey: string }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const profile = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  // What `npm start` runs: the production build, with the environment and Node flags of package.json's start script.
  const entry = await buildServer();
  const start = startCommand();
  const started = spawnProcess(process.execPath, [...profile, ...start.flags, entry], {
    ...start.env,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    VALIDATE_RESPONSES: 'false',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: dataDir,
    DATABASE_URL: `sqlite:${join(dataDir, 'model-repository.db')}`,
    STORAGE_BACKEND: 'fs',
    UPLOAD_CHUNK_SIZE_BYTES: String(chunkSize),
  });
  await waitForHttp(`${baseUrl}/readyz`, started, 'model repository server');
  const apiKey = /API key: (mr_\S+)/.exec(started.output())?.[1];
  if (!apiKey) throw new Error(`the server printed no API key on first start:\n${started.output()}`);
  return { started, baseUrl, apiKey };
}

interface Row {
  name: string;
  bytes: number;
  seconds: number;
  serverCpu: number | null;
  clientCpu: number | null;
  /** Request body bytes the client sent (uploads). */
  sent?: number | null;
}

/**
 * Of several runs of one upload, the run with the median throughput (the lower middle one for an
 * even count), with every run's throughput and server CPU.
 */
function medianOf(runs: Measured[]): Measured & { all: { mbps: number; serverCpu: number }[] } {
  const sorted = [...runs].sort((x, y) => mbps(x.result) - mbps(y.result));
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, all: runs.map((m) => ({ mbps: mbps(m.result), serverCpu: m.serverCpu })) };
}

const row = (name: string, { result, serverCpu }: Measured): Row => ({
  name,
  bytes: result.bytes,
  seconds: result.seconds,
  serverCpu,
  clientCpu: result.cpuSeconds,
  sent: result.bodyBytesSent ?? null,
});

/** The file behind an fs `storage_uri` (`fs://<key>`, segments percent-encoded) of the server whose DATA_DIR is `dataDir`. */
function storedPath(dataDir: string, storageUri: string): string {
  if (!storageUri.startsWith('fs://')) throw new Error(`not a filesystem storage_uri: ${storageUri}`);
  return join(dataDir, 'artifacts', ...storageUri.slice('fs://'.length).split('/').map(decodeURIComponent));
}
const mbps = (r: { bytes: number; seconds: number }) => r.bytes / 1e6 / r.seconds;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

/** Reads a file from start to end, dropping the bytes (to bring it into the page cache). */
async function readThrough(path: string): Promise<void> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    while ((await file.read(buffer, 0, buffer.length, null)).bytesRead > 0);
  } finally {
    await file.close();
  }
}

// ─── the run ─────────────────────────────────────────────────────────────────────────────

async function measure({ size, repeat, cpuProfDir }: Options): Promise<boolean> {
  const tmp = removeLater(mkdtempSync(join(os.tmpdir(), 'mr-bench-')));
  const source = join(tmp, 'source.bin');
  const warmUp = join(tmp, 'warm-up.bin');
  const rows: Row[] = [];
  const host = machine();
  const noise = otherLoad();

  log(`generating ${formatBytes(size)} in ${tmp}`);
  await generateFile(source, size);
  await generateFile(warmUp, Math.min(size, WARM_UP_SIZE));
  // The file's SHA-256 is computed by the client before each measured upload (hash: 'before'): see the top.
  const upload = { chunkSize: CHUNK_SIZE, concurrency: CONCURRENCY, file: source, warmUpFile: warmUp, hash: 'before' as const };

  // The three servers start first; their uploads then run in rounds, (a) (b) (c) (a) (b) (c) …,
  // so a drift in the machine's speed (neighbours on a shared VM, the page cache filling up)
  // reaches all three alike instead of whichever ran last.
  const ceilingDir = join(tmp, 'ceiling');
  mkdirSync(ceilingDir);
  const ceiling = await startBenchServer('ceiling-server.ts', [ceilingDir, String(CHUNK_SIZE)], 'ceiling server');
  const tusDir = join(tmp, 'tus');
  mkdirSync(tusDir);
  const tus = await startBenchServer('tus-server.ts', [tusDir], 'tus server');
  const repoDir = join(tmp, 'repo');
  const repo = await startThisServer(repoDir, cpuProfDir);
  const { baseUrl, apiKey } = repo;
  const sdk = createModelRepositoryClient({ baseUrl, apiKey });
  const model = await sdk.createModel('default', {
    name: `Upload bench ${randomUUID().slice(0, 8)}`,
    product_type: 'ML Model',
    environment: 'development',
    deployment_status: 'development',
  });
  const idleRss = currentRss(repo.started.pid);
  // Threads the server starts from here on are its uploads' (the hash thread of the prefix digest).
  const idleThreads = new Set(threadCpuSeconds(repo.started.pid).keys());
  const rssBefore = { upload: 0, download: 0 };
  let peakResettable = true;
  let last = { artifactId: '', storageUri: '' };

  const runs = { a: [] as Measured[], b: [] as Measured[], c: [] as Measured[] };
  for (let i = 0; i < repeat; i++) {
    const round = `(round ${i + 1} of ${repeat})`;
    log(`(a) ceiling: 8 MiB chunks, 4 in parallel ${round}`);
    runs.a.push(await runClient({ mode: 'upload', target: 'ceiling', baseUrl: ceiling.baseUrl, productId: randomUUID(), ...upload }, ceiling.started.pid, '(a) chunked upload'));
    removeNow(ceilingDir);
    mkdirSync(ceilingDir);

    log(`(b) @tus/server: 8 MiB PATCH requests, in order ${round}`);
    runs.b.push(await runClient({ mode: 'upload', target: 'tus', baseUrl: tus.baseUrl, productId: randomUUID(), ...upload }, tus.started.pid, '(b) tus upload'));
    removeNow(tusDir); // never flushed: removing it drops its dirty pages before they cost the next run a write-back
    mkdirSync(tusDir);

    log(`(c) this server: SDK uploadArtifact, 8 MiB chunks, 4 in parallel ${round}`);
    const m = await runClient({ mode: 'upload', target: 'repo', baseUrl, apiKey, productId: model.id, ...upload }, repo.started.pid, '(c) SDK upload', () => {
      if (i > 0) return; // the peak RSS below covers every run
      peakResettable = resetPeakRss(repo.started.pid);
      rssBefore.upload = currentRss(repo.started.pid);
    });
    // A deduplicated session would mean no transfer was measured (the bytes were stored already).
    if (m.result.deduplicated !== false) throw new Error(`(c) round ${i + 1}: the session was deduplicated: the server still had these bytes, nothing was transferred`);
    runs.c.push(m);
    // Each run stores a new artifact: it is deleted before the next round (the last one stays for (d)).
    if (i < repeat - 1) await sdk.deleteArtifact(model.id, m.result.artifactId!);
    else last = { artifactId: m.result.artifactId!, storageUri: m.result.storageUri! };
  }
  const [a, b, c] = [medianOf(runs.a), medianOf(runs.b), medianOf(runs.c)];

  // The same file again while the last round's artifact holds its bytes: an instant upload, the
  // SDK as a caller runs it (it hashes the file, initiates with the digest, completes).
  log('(c) the same file again, its bytes stored: instant upload');
  const again = await runClient({ ...upload, mode: 'upload', target: 'repo', baseUrl, apiKey, productId: model.id, hash: 'sdk' }, repo.started.pid, '(c) instant upload');
  if (again.result.artifactId) await sdk.deleteArtifact(model.id, again.result.artifactId);
  await stopChild(tus.started);
  removeNow(tusDir);

  log('(a) ceiling: one streamed PUT');
  const put = await runClient({ mode: 'stream-put', url: `${ceiling.baseUrl}/whole`, file: source, warmUpFile: warmUp }, ceiling.started.pid, '(a) streamed PUT');
  await stopChild(ceiling.started);
  removeNow(ceilingDir);

  rows.push(row('(a) ceiling: bare node:http, 8 MiB chunks × 4, fdatasync + SHA-256 per chunk', a));
  rows.push(row('(a) reference: one streamed PUT of the whole file', put));
  rows.push(row('(b) peer: @tus/server 2.4.5 + @tus/file-store, 8 MiB PATCH, sequential', b));
  rows.push(row('(c) this server: SDK uploadArtifact, 8 MiB chunks × 4, completion included', c));
  rows.push({ name: '(c) completion alone (POST …/complete)', bytes: 0, seconds: c.result.completionSeconds!, serverCpu: null, clientCpu: null });
  rows.push({ name: "(c) SDK's pre-hash of the file before initiating (any upload of ≥ 8 MiB; outside the rows above)", bytes: 0, seconds: c.result.preHashSeconds!, serverCpu: null, clientCpu: null });
  rows.push({ ...row('(c) upload of bytes already stored (instant upload): hash the file + initiate + complete', again), bytes: 0 });
  rows.push({ name: '(c) of which hashing the local file (SDK, before initiating)', bytes: 0, seconds: again.result.preHashSeconds ?? NaN, serverCpu: null, clientCpu: null });
  const serverPeakUpload = peakRss(repo.started.pid);

  // (d) downloads, with the same client. This server wrote the file past the page cache (direct
  // I/O); read it once so that both servers serve it from the cache, as they would a popular file.
  log('(d) reading the stored file once, so both servers find it in the page cache');
  const storedFile = storedPath(repoDir, last.storageUri);
  await readThrough(storedFile);
  log('(d) download from this server');
  const downloadUrl = `${baseUrl}/api/v1.0/catalog/products/${model.id}/model-artifacts/${last.artifactId}/download`;
  const d = await runClient({ mode: 'download', url: downloadUrl, apiKey }, repo.started.pid, '(d) download from this server', () => {
    if (peakResettable) resetPeakRss(repo.started.pid);
    rssBefore.download = currentRss(repo.started.pid);
  });
  rows.push(row('(d) download: this server', d));
  const serverPeakDownload = peakRss(repo.started.pid);

  const nginxBin = ensureNginx(log);
  const version = nginxVersion(nginxBin);
  const nginx = await startNginx(nginxBin, storedFile, join(tmp, 'nginx'));
  log(`(d) download from nginx ${version}`);
  const n = await runClient({ mode: 'download', url: nginx.url }, nginx.started.pid, '(d) download from nginx');
  rows.push(row(`(d) download: nginx ${version} (sendfile), the same stored file`, n));
  await stopChild(nginx.started);

  // (e) the SDK's memory: a fresh process, no warm-up, the SDK's defaults (it hashes the file
  // first). The stored copy goes first, or this would be an instant upload.
  await sdk.deleteArtifact(model.id, last.artifactId);
  log('(e) SDK process RSS: one more upload to this server, in a fresh process');
  const e = await runClient({ mode: 'upload', target: 'repo', baseUrl, apiKey, productId: model.id, chunkSize: CHUNK_SIZE, concurrency: CONCURRENCY, file: source, hash: 'sdk' }, repo.started.pid, '(e) SDK upload');
  if (e.result.deduplicated !== false) throw new Error('(e): the session was deduplicated: nothing was transferred');
  await stopChild(repo.started);

  // ─── the table ───
  const header = ['measurement', 'MB/s', 'seconds', 'server CPU s', 'client CPU s', 'bytes sent'];
  const cells = rows.map((r) => [
    r.name,
    r.bytes > 0 ? mbps(r).toFixed(0) : '',
    r.seconds.toFixed(r.seconds < 1 ? 3 : 2),
    r.serverCpu === null ? '' : r.serverCpu.toFixed(2),
    r.clientCpu === null ? '' : r.clientCpu.toFixed(2),
    r.sent === null || r.sent === undefined ? '' : String(r.sent),
  ]);
  const sdkGrowth = e.result.rssPeakBytes! - e.result.rssBaselineBytes!;
  const serverPeak = Math.max(serverPeakUpload, serverPeakDownload);
  const since = (before: number) => (peakResettable ? `RSS when it started: ${mb(before)}` : 'peak since the server started');
  const rss = [
    ['(e) this server: RSS idle after start', mb(idleRss), 'NODE_ENV=production, the build `npm start` runs'],
    ['(e) this server: peak RSS during (c)', mb(serverPeakUpload), `${since(rssBefore.upload)} (after the client's warm-up upload)`],
    ['(e) this server: peak RSS during (d)', mb(serverPeakDownload), since(rssBefore.download)],
    ['(e) SDK process: RSS growth uploading the file', mb(sdkGrowth), `RSS before: ${mb(e.result.rssBaselineBytes!)}, peak: ${mb(e.result.rssPeakBytes!)} (fresh process, SDK defaults: pre-hash + transfer, ${e.result.seconds.toFixed(2)} s)`],
  ];

  const uploadThreads = new Set([...c.serverThreads.keys()].filter((tid) => !idleThreads.has(tid)));
  const threadNotes = [
    `(a) ceiling: ${threadSplit(a, ceiling.started.pid)} (the others: libuv's pool doing the writes and fdatasyncs)`,
    `(b) tus: ${threadSplit(b, tus.started.pid)}`,
    `(c) this server: ${threadSplit(c, repo.started.pid, uploadThreads)} (the middle figure: threads started by uploads — the hash thread that keeps the running whole-file digest)`,
    `(d) this server: ${threadSplit(d, repo.started.pid)}; nginx: ${threadSplit(n, nginx.started.pid)}`,
  ];
  const rssWidths = [0, 1, 2].map((i) => Math.max(...rss.map((r) => r[i]!.length), ['memory', 'RSS', 'detail'][i]!.length));
  const rssLine = (r: string[]) => `| ${r.map((cell, i) => (i === 1 ? cell.padStart(rssWidths[i]!) : cell.padEnd(rssWidths[i]!))).join(' | ')} |`;

  const [ra, rb, rc, rd, rn] = [a, b, c, d, n].map((m) => m.result) as [ClientResult, ClientResult, ClientResult, ClientResult, ClientResult];
  const share = mbps(rc) / mbps(ra);
  const downloadShare = mbps(rd) / mbps(rn);
  const completion = rc.completionSeconds!;
  const targets: [boolean, string][] = [
    [share >= TARGETS.shareOfCeiling, `(c) ≥ ${percent(TARGETS.shareOfCeiling)} of (a): ${percent(share)} (${mbps(rc).toFixed(0)} of ${mbps(ra).toFixed(0)} MB/s)`],
    [mbps(rc) > mbps(rb), `(c) faster than (b): ${mbps(rc).toFixed(0)} vs ${mbps(rb).toFixed(0)} MB/s (${(mbps(rc) / mbps(rb)).toFixed(2)}×)`],
    [completion < TARGETS.completionSeconds, `completion of ${formatBytes(size)} < ${TARGETS.completionSeconds} s: ${completion.toFixed(3)} s`],
    [downloadShare >= TARGETS.shareOfNginx, `download ≥ ${percent(TARGETS.shareOfNginx)} of nginx: ${percent(downloadShare)} (${mbps(rd).toFixed(0)} of ${mbps(rn).toFixed(0)} MB/s)`],
    [serverPeak < TARGETS.serverPeakRssBytes, `server peak RSS < ${mb(TARGETS.serverPeakRssBytes)}: ${mb(serverPeak)}`],
    [sdkGrowth < TARGETS.sdkRssGrowthBytes, `SDK RSS growth < ${mb(TARGETS.sdkRssGrowthBytes)}: ${mb(sdkGrowth)}`],
    [
      again.result.deduplicated === true && (again.result.bodyBytesSent ?? Infinity) < TARGETS.instantUploadSentBytes,
      `upload of bytes already stored sends no chunk: ${again.result.deduplicated ? 'deduplicated' : 'NOT deduplicated'}, ${again.result.bodyBytesSent} request body bytes in ${again.result.requests} requests, ${again.result.seconds.toFixed(2)} s (of which hashing ${(again.result.preHashSeconds ?? NaN).toFixed(2)} s) vs ${(rc.seconds + rc.preHashSeconds!).toFixed(2)} s for the transfer + pre-hash`,
    ],
  ];

  console.log(
    [
      `npm run bench — ${formatBytes(size)} (${size} bytes), 8 MiB chunks, ${CONCURRENCY} in flight, uploads measured ${repeat}× each; MB = 10^6 bytes`,
      `machine: ${host}`,
      `noise: ${noise()}`,
      '',
      ...markdownTable(header, cells),
      '',
      `(a), (b) and (c): the run with the median MB/s of ${repeat} (in rounds: a b c, a b c, …); every run's MB/s (server CPU s), in order:`,
      ...([['(a)', a], ['(b)', b], ['(c)', c]] as const).map(
        ([name, m]) => `  ${name} ${m.all.map((v) => `${v.mbps.toFixed(0)} (${v.serverCpu.toFixed(2)})`).join(', ')}`,
      ),
      '',
      "(a), (b), (c): the client hashes the file before the measured part and gives the SHA-256 to uploadArtifact, so these rows are the transfer and",
      "completion alone (each (c) run checked to be a real transfer, not deduplicated); the SDK's own pre-hash, which any upload of ≥ 8 MiB pays first",
      'by default to ask for an instant upload, is the row below them. "upload of bytes already stored": the SDK with its defaults, while the',
      "file's bytes are stored (the last round's artifact): hashing the local file, the initiation (answered deduplicated) and the completion, no chunk.",
      '"bytes sent": request body bytes the client sent in the measured part (chunks and JSON; headers not counted).',
      '',
      'server CPU s by thread (main thread / … / all other threads):',
      ...threadNotes.map((t) => `  ${t}`),
      '',
      rssLine(['memory', 'RSS', 'detail']),
      `|${rssWidths.map((w, i) => (i === 1 ? '-'.repeat(w + 1) + ':' : ':' + '-'.repeat(w + 1))).join('|')}|`,
      ...rss.map(rssLine),
      '',
      'targets:',
      ...targets.map(([ok, text]) => `  ${ok ? 'PASS' : 'FAIL'}  ${text}`),
    ].join('\n'),
  );
  return targets.every(([ok]) => ok);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  try {
    if (options.clients !== null) {
      const met = await concurrentUploads(
        { clients: options.clients, size: options.size, repeat: options.repeat, cpuProfDir: options.cpuProfDir },
        {
          chunkSize: CHUNK_SIZE,
          concurrency: CONCURRENCY,
          generateFile,
          startCeiling: (dir) => startBenchServer('ceiling-server.ts', [dir, String(CHUNK_SIZE)], 'ceiling server'),
          startThisServer,
          machine,
          otherLoad,
          log,
          formatBytes,
        },
      );
      if (!met) process.exitCode = 1;
      return;
    }
    const met = options.only === 'many-chunks' || (await measure(options));
    // (f) a chunk's cost against the chunks already received: its own server and upload.
    const f = await manyChunks(removeLater(mkdtempSync(join(os.tmpdir(), 'mr-bench-'))), (dir, chunkSize) => startThisServer(dir, options.cpuProfDir, chunkSize), log);
    console.log(['', ...f.lines, '', 'targets:', ...f.targets.map(([ok, text]) => `  ${ok ? 'PASS' : 'FAIL'}  ${text}`)].join('\n'));
    if (!met || !f.targets.every(([ok]) => ok)) process.exitCode = 1;
  } finally {
    await cleanUp();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  void cleanUp().finally(() => process.exit(2));
});
