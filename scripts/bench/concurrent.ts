/**
 * Bench case `npm run bench -- --clients N` (main.ts hands over to it): N SDK clients upload at
 * once, each a file of its own (256 MiB by default: `--size`), 8 MiB chunks, 4 in flight each,
 * completion included; against this server (as in (c): the production build, SQLite + fs in a
 * temp DATA_DIR) and against the ceiling server (ceiling-server.ts), driven the same way, in
 * rounds (ceiling, this server, ceiling, …; `--repeat`, 3 by default; the median round is shown).
 *
 * What is measured, and what is kept out of it:
 * - every client is a process of its own (client.ts), with a file of its own random bytes: no two
 *   uploads share a SHA-256, so neither instant upload nor the dedup at completion can skip
 *   storage work (each session is checked not to be deduplicated);
 * - each client first uploads 4 chunks of other bytes of its own, unmeasured (warm-up: JIT and
 *   connections on both ends; on this server its artifact is deleted again), then hashes its file
 *   (as in (c): the SDK's pre-hash is outside the measured part, the SHA-256 is given to
 *   `uploadArtifact`) and waits: the measured part starts when every client is ready, all released
 *   at once, and ends when the last completion has been answered. Aggregate MB/s = the bytes of all
 *   clients / that wall time;
 * - failed requests: every request a client made in the measured part that was answered ≥ 400 or
 *   threw (also those the SDK then retried successfully), and clients whose upload failed;
 * - this server's peak RSS during the measured part (VmHWM, reset at its start);
 * - after each round what it stored is removed (the ceiling's directory; this server's artifacts
 *   through the API), and what is left in this server's storage is checked to be nothing.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createModelRepositoryClient } from '../../sdk/src/index.ts';
import type { ClientJob, ClientResult } from './client.ts';
import { cpuSeconds, currentRss, peakRss, resetPeakRss } from './proc.ts';
import { answerOf, forkScript, removeLater, removeNow, stopChild, type Started } from './processes.ts';
import { markdownTable } from './table.ts';

const TARGETS = { shareOfCeiling: 0.7, serverPeakRssBytes: 300e6 };
/** Chunks each client uploads first, unmeasured. */
const WARM_UP_CHUNKS = 4;

export interface ConcurrentOptions {
  clients: number;
  size: number;
  repeat: number;
  cpuProfDir: string | null;
}

/** What main.ts lends this case (its server starters and file generator). */
export interface ConcurrentDeps {
  chunkSize: number;
  concurrency: number;
  generateFile(path: string, size: number): Promise<void>;
  startCeiling(dir: string): Promise<{ started: Started; baseUrl: string }>;
  startThisServer(dataDir: string, cpuProfDir: string | null): Promise<{ started: Started; baseUrl: string; apiKey: string }>;
  machine(): string;
  otherLoad(): () => string;
  log(line: string): void;
  formatBytes(bytes: number): string;
}

interface Round {
  bytes: number;
  wallSeconds: number;
  mbps: number;
  perClientMbps: number[];
  serverCpu: number;
  /** The server's main thread's share of serverCpu (the rest: libuv's pool, the hash threads, V8's helpers). */
  serverMainCpu: number;
  clientsCpu: number;
  /** VmHWM of the server during the measured part (where it cannot be reset: since it started). */
  serverPeakRss: number;
  serverRssAtStart: number;
  requests: number;
  bodyBytesSent: number;
  failedRequests: number;
  failedClients: number;
  firstFailure: string | null;
  results: ClientResult[];
}

const mbps = (bytes: number, seconds: number) => bytes / 1e6 / seconds;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor((values.length - 1) / 2)]!;

/** Bytes of the regular files under `dir` (0 when it does not exist). */
function bytesUnder(dir: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += bytesUnder(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

/**
 * One round against one server: the clients start together (each warms up and hashes its file
 * first), `atStart` runs once all are ready, right before they are released.
 */
async function runRound(jobs: ClientJob[], serverPid: number, what: string, profiling = false): Promise<Round> {
  const children = jobs.map((job) => forkScript('client.ts', [JSON.stringify(job)]));
  let readyCount = 0;
  let release!: () => void;
  let abort!: (err: Error) => void;
  const allReady = new Promise<void>((res, rej) => {
    release = res;
    abort = rej;
  });
  allReady.catch(() => {});
  let cpuAtStart = NaN;
  let rssAtStart = NaN;
  let peakResettable = false;
  let windowStart = 0n;
  let mainAtStart = NaN;
  try {
    const answers = children.map((child, i) =>
      answerOf<ClientResult>(child, `${what}, client ${i + 1}`, {
        onReady: () => {
          if (++readyCount === jobs.length) {
            peakResettable = resetPeakRss(serverPid);
            rssAtStart = currentRss(serverPid);
            cpuAtStart = cpuSeconds(serverPid);
            mainAtStart = cpuSeconds(serverPid, serverPid);
            windowStart = process.hrtime.bigint() / 1000n;
            release();
          }
          return allReady;
        },
      }),
    );
    // A client that fails before it is ready (warm-up, hashing) would keep the others waiting.
    for (const answer of answers) answer.catch((err: unknown) => abort(err instanceof Error ? err : new Error(String(err))));
    const settled = await Promise.allSettled(answers);
    // The monotonic clock --cpu-prof stamps its samples with: to look at the measured part alone.
    if (profiling) process.stderr.write(`${what}: measured part from ${windowStart} to ${process.hrtime.bigint() / 1000n} µs (CLOCK_MONOTONIC)\n`);
    const serverCpu = cpuSeconds(serverPid) - cpuAtStart;
    const serverMainCpu = cpuSeconds(serverPid, serverPid) - mainAtStart;
    // Without a reset (not allowed here) this is the peak since the server started.
    const serverPeakRss = peakRss(serverPid);
    if (!peakResettable) process.stderr.write(`${what}: the server's peak RSS could not be reset: the peak since it started is shown\n`);

    const results: ClientResult[] = [];
    let failedClients = 0;
    let firstFailure: string | null = null;
    for (const [i, s] of settled.entries()) {
      if (s.status === 'rejected') {
        // A client that failed outside its measured part (the bench cannot count that round).
        throw s.reason instanceof Error ? s.reason : new Error(String(s.reason));
      }
      const r = s.value;
      results.push(r);
      if (r.uploadError) {
        failedClients++;
        firstFailure ??= `client ${i + 1}: ${r.uploadError.split('\n', 1)[0]}`;
      }
      if (r.firstFailure) firstFailure ??= `client ${i + 1}: ${r.firstFailure}`;
      if (!r.uploadError && r.deduplicated !== false) {
        throw new Error(`${what}, client ${i + 1}: the session was deduplicated: nothing was transferred, the round measures nothing`);
      }
    }
    const bytes = results.reduce((sum, r) => sum + (r.uploadError ? 0 : r.bytes), 0);
    const wallSeconds = (Math.max(...results.map((r) => r.endedAtMs!)) - Math.min(...results.map((r) => r.startedAtMs!))) / 1000;
    return {
      bytes,
      wallSeconds,
      mbps: mbps(bytes, wallSeconds),
      perClientMbps: results.map((r) => (r.uploadError ? 0 : mbps(r.bytes, r.seconds))),
      serverCpu,
      serverMainCpu,
      clientsCpu: results.reduce((sum, r) => sum + r.cpuSeconds, 0),
      serverPeakRss,
      serverRssAtStart: rssAtStart,
      requests: results.reduce((sum, r) => sum + (r.requests ?? 0), 0),
      bodyBytesSent: results.reduce((sum, r) => sum + (r.bodyBytesSent ?? 0), 0),
      failedRequests: results.reduce((sum, r) => sum + (r.failedRequests ?? 0), 0),
      failedClients,
      firstFailure,
      results,
    };
  } finally {
    await Promise.all(children.map((child) => stopChild(child)));
  }
}

export async function concurrentUploads(options: ConcurrentOptions, deps: ConcurrentDeps): Promise<boolean> {
  const { clients, size, repeat, cpuProfDir } = options;
  const { chunkSize, concurrency, log, formatBytes } = deps;
  const tmp = removeLater(mkdtempSync(join(os.tmpdir(), 'mr-bench-clients-')));
  const host = deps.machine();
  const noise = deps.otherLoad();

  // Distinct random bytes per file (each generateFile draws a block of its own).
  log(`generating ${clients} files of ${formatBytes(size)} and ${clients} warm-up files of ${WARM_UP_CHUNKS} chunks in ${tmp}`);
  const files: string[] = [];
  const warmUps: string[] = [];
  for (let i = 0; i < clients; i++) {
    files.push(join(tmp, `source-${i}.bin`));
    warmUps.push(join(tmp, `warm-up-${i}.bin`));
    await deps.generateFile(files[i]!, size);
    await deps.generateFile(warmUps[i]!, Math.min(size, WARM_UP_CHUNKS * chunkSize));
  }

  const ceilingDir = join(tmp, 'ceiling');
  mkdirSync(ceilingDir);
  const ceiling = await deps.startCeiling(ceilingDir);
  const repoDir = join(tmp, 'repo');
  const repo = await deps.startThisServer(repoDir, cpuProfDir);
  const sdk = createModelRepositoryClient({ baseUrl: repo.baseUrl, apiKey: repo.apiKey });
  const model = await sdk.createModel('default', {
    name: `Concurrent upload bench ${randomUUID().slice(0, 8)}`,
    product_type: 'ML Model',
    environment: 'development',
    deployment_status: 'development',
  });
  const idleRss = currentRss(repo.started.pid);

  const jobsFor = (target: 'ceiling' | 'repo'): ClientJob[] =>
    files.map((file, i) => ({
      mode: 'upload',
      target,
      baseUrl: target === 'repo' ? repo.baseUrl : ceiling.baseUrl,
      ...(target === 'repo' ? { apiKey: repo.apiKey, productId: model.id } : { productId: randomUUID() }),
      file,
      warmUpFile: warmUps[i],
      chunkSize,
      concurrency,
      hash: 'before',
    }));

  const runs = { ceiling: [] as Round[], repo: [] as Round[] };
  const leftInStorage: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const round = `(round ${i + 1} of ${repeat})`;
    log(`ceiling: ${clients} clients at once ${round}`);
    runs.ceiling.push(await runRound(jobsFor('ceiling'), ceiling.started.pid, `ceiling ${round}`));
    removeNow(ceilingDir);
    mkdirSync(ceilingDir);

    log(`this server: ${clients} clients at once ${round}`);
    const r = await runRound(jobsFor('repo'), repo.started.pid, `this server ${round}`, cpuProfDir !== null);
    runs.repo.push(r);
    for (const result of r.results) if (result.artifactId) await sdk.deleteArtifact(model.id, result.artifactId);
    leftInStorage.push(bytesUnder(join(repoDir, 'artifacts')));
  }
  await stopChild(ceiling.started);
  await stopChild(repo.started);
  const logged = repo.started.output();
  const serverErrors = logged.split('\n').filter((line) => /"level":(50|60)/.test(line));

  // ─── the table ───
  const medianRound = (rounds: Round[]) => [...rounds].sort((x, y) => x.mbps - y.mbps)[Math.floor((rounds.length - 1) / 2)]!;
  const [c, r] = [medianRound(runs.ceiling), medianRound(runs.repo)];
  const share = r.mbps / c.mbps;
  const allRepo = runs.repo;
  const failedRequests = allRepo.reduce((sum, x) => sum + x.failedRequests, 0);
  const failedClients = allRepo.reduce((sum, x) => sum + x.failedClients, 0);
  const requests = allRepo.reduce((sum, x) => sum + x.requests, 0);
  const firstFailure = allRepo.find((x) => x.firstFailure)?.firstFailure ?? null;
  const ceilingFailures = runs.ceiling.reduce((sum, x) => sum + x.failedRequests + x.failedClients, 0);
  const peak = Math.max(...allRepo.map((x) => x.serverPeakRss));

  const header = ['server', 'aggregate MB/s', 'seconds', 'per client MB/s (min / median / max)', 'server CPU s', 'clients CPU s', 'failed requests', 'server peak RSS'];
  const rowOf = (name: string, x: Round, rss: string) => [
    name,
    x.mbps.toFixed(0),
    x.wallSeconds.toFixed(2),
    `${Math.min(...x.perClientMbps).toFixed(0)} / ${median(x.perClientMbps).toFixed(0)} / ${Math.max(...x.perClientMbps).toFixed(0)}`,
    x.serverCpu.toFixed(2),
    x.clientsCpu.toFixed(2),
    `${x.failedRequests} of ${x.requests}`,
    rss,
  ];
  const cells = [
    rowOf(`ceiling: bare node:http, fdatasync + SHA-256 per chunk`, c, ''),
    rowOf(`this server: SQLite + fs, production build`, r, mb(r.serverPeakRss)),
  ];

  const targets: [boolean, string][] = [
    [share >= TARGETS.shareOfCeiling, `aggregate ≥ ${percent(TARGETS.shareOfCeiling)} of the ceiling at ${clients} clients: ${percent(share)} (${r.mbps.toFixed(0)} of ${c.mbps.toFixed(0)} MB/s)`],
    [
      failedRequests === 0 && failedClients === 0,
      `0 failed requests (this server, all ${repeat} rounds): ${failedRequests} of ${requests} requests, ${failedClients} of ${clients * repeat} uploads failed${firstFailure ? `; first: ${firstFailure}` : ''}`,
    ],
    [peak < TARGETS.serverPeakRssBytes, `server peak RSS < ${mb(TARGETS.serverPeakRssBytes)} (all rounds): ${mb(peak)}`],
  ];

  console.log(
    [
      `npm run bench -- --clients ${clients} — ${clients} SDK clients (a process each) uploading ${formatBytes(size)} each at once, ${formatBytes(chunkSize)} chunks, ${concurrency} in flight each (${clients * concurrency} in all), completion included; ${repeat} round(s) per server, the median shown; MB = 10^6 bytes`,
      `machine: ${host}`,
      `noise: ${noise()}`,
      '',
      ...markdownTable(header, cells),
      '',
      `What it measures: each client has a file of its own random bytes (no two share a SHA-256, every session checked not deduplicated), uploads ${WARM_UP_CHUNKS} chunks`,
      "of other bytes first (warm-up, unmeasured; its artifact deleted), hashes its file outside the measured part (the SDK's pre-hash, as in (c): the digest is",
      'given to uploadArtifact, which then hashes nothing while sending), and waits for the others; all start together and the aggregate is all their bytes',
      'over the time until the last completion was answered. Failed requests: answers ≥ 400 and requests that threw, counted by each client (retried or not).',
      '',
      'every round: aggregate MB/s (server CPU s), in order:',
      `  ceiling      ${runs.ceiling.map((x) => `${x.mbps.toFixed(0)} (${x.serverCpu.toFixed(2)})`).join(', ')}`,
      `  this server  ${runs.repo.map((x) => `${x.mbps.toFixed(0)} (${x.serverCpu.toFixed(2)})`).join(', ')}`,
      `server CPU s in the median round, main thread / other threads: ceiling ${c.serverMainCpu.toFixed(2)} / ${(c.serverCpu - c.serverMainCpu).toFixed(2)}, this server ${r.serverMainCpu.toFixed(2)} / ${(r.serverCpu - r.serverMainCpu).toFixed(2)}`,
      `this server's RSS: idle after start ${mb(idleRss)}; at the start of each round (after the warm-ups) ${runs.repo.map((x) => mb(x.serverRssAtStart)).join(', ')}; peak in each round ${runs.repo.map((x) => mb(x.serverPeakRss)).join(', ')}`,
      `request body bytes sent to this server per round: ${runs.repo.map((x) => x.bodyBytesSent).join(', ')} (files: ${clients * size})`,
      `left in this server's storage after each round's deletions: ${leftInStorage.map((b) => `${b} bytes`).join(', ')}`,
      `ceiling: ${ceilingFailures} failed requests or uploads; this server logged ${serverErrors.length} error line(s)${serverErrors[0] ? `, first: ${serverErrors[0].slice(0, 300)}` : ''}`,
      '',
      'targets:',
      ...targets.map(([ok, text]) => `  ${ok ? 'PASS' : 'FAIL'}  ${text}`),
    ].join('\n'),
  );
  return targets.every(([ok]) => ok);
}
