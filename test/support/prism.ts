/**
 * Prism for tests: a mock of the spec (`startPrism`) and a contract-checking proxy in front of the
 * real server (`startPrismProxy`), each on a free port of 127.0.0.1, as a child process.
 *
 * Both run on the document `scripts/mock.ts` writes (`writeMockDocument`): the bundled spec with
 * every API path prefixed with `/api/v1.0` and the health checks at the root — the same URL layout
 * as the real server.
 *
 * No orphans: the child gets a small watchdog preloaded (`node -r watchdog.cjs prism …`) that exits
 * as soon as its stdin pipe closes, i.e. when the test process ends for whatever reason (a failed
 * hook, a crash, a vitest timeout, SIGKILL). `stop()` also kills it (SIGTERM, then SIGKILL after
 * 5 s) and waits for the exit, and a process `exit` hook kills whatever is still running.
 *
 * ## The proxy (issue 6's contract suite)
 *
 * `prism proxy --errors <mock document> <server origin>`: Prism forwards the request path
 * unchanged, joined to the upstream URL's path. The real server serves the API under `/api/v1.0`
 * and `/healthz`, `/readyz` at the root, and the mock document has exactly those paths, so the
 * upstream is the server's bare origin (`http://127.0.0.1:8080`, no path) and clients use the
 * same URLs as against the server (`${proxy.baseUrl}/api/v1.0/catalog/...`).
 * (The other combination — the bundled document, whose paths carry no prefix, with upstream
 * `http://host:port/api/v1.0` — would send the health checks to `/api/v1.0/healthz`.)
 *
 * What the proxy can and cannot do (prism-cli 5.14.2):
 * - It validates the upstream's response (status, headers, body) against the spec. With `--errors`
 *   a response outside the spec is replaced by `500` `application/problem+json` whose `type` is
 *   `https://stoplight.io/prism/errors#VIOLATIONS` and whose `validation` lists the violations:
 *   use `proxyViolations()` on every proxied response.
 * - With `--errors` it checks the request first and does NOT forward a request that breaks the
 *   spec: no/odd `Authorization` header → Prism's own `401`; an invalid body or parameter (when
 *   request validation is on) → Prism's own `422`. So negative scenarios (401, 422, 415, 400) must
 *   be sent to the server directly and checked with `checkResponse()` from `spec-check.ts`.
 *   Request validation is off by default here (`validateRequest: false`) so that requests the
 *   server should judge (a duplicate slug, a missing version id, …) still reach it.
 * - It re-encodes binary request bodies as UTF-8 (stoplightio/prism#2349) and reads non-JSON
 *   response bodies as text: send chunk PUTs, multipart uploads and downloads directly, never
 *   through the proxy, and check those responses with `checkResponse()`.
 * - A path the document does not have is answered by Prism itself (`404`, NO_PATH_MATCHED).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prismArgs, writeMockDocument } from '../../scripts/mock.ts';

export interface PrismHandle {
  /** e.g. `http://127.0.0.1:41234` — no trailing slash, no `/api/v1.0`. */
  baseUrl: string;
  /** Kills Prism and waits for it to exit; removes its temporary directory. Safe to call twice. */
  stop(): Promise<void>;
  /** Prism's log output so far (for failure messages). */
  output(): string;
}

export interface ProxyOptions {
  /** Let Prism validate requests too (and answer invalid ones itself with 422). Default false. */
  validateRequest?: boolean;
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 30_000;
const OUTPUT_LIMIT = 200_000;

/**
 * Runs in the child before Prism: when the parent's end of stdin closes, remove the temporary
 * directory (this file's) and exit.
 */
const WATCHDOG = `'use strict';
const bye = () => {
  try { require('node:fs').rmSync(__dirname, { recursive: true, force: true }); } catch {}
  process.exit(0);
};
process.stdin.on('error', bye);
process.stdin.on('end', bye);
process.stdin.on('close', bye);
process.stdin.resume();
`;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** Starts `prism mock` on the mock document. */
export async function startPrism(): Promise<PrismHandle> {
  return launch((file, port) => [...prismArgs(file, HOST, port), '--no-multiprocess']);
}

/**
 * Starts `prism proxy --errors` in front of the real server. `upstreamUrl` is the server's origin,
 * e.g. `http://127.0.0.1:8080` (any path on it is dropped: see the comment at the top).
 */
export async function startPrismProxy(upstreamUrl: string, options: ProxyOptions = {}): Promise<PrismHandle> {
  const upstream = new URL(upstreamUrl).origin;
  const validateRequest = options.validateRequest ?? false;
  return launch((file, port) => {
    const [cli] = prismArgs(file, HOST, port);
    return [
      cli!,
      'proxy',
      '--errors',
      `--validate-request=${validateRequest}`,
      '--no-multiprocess',
      '--cors',
      '-h',
      HOST,
      '-p',
      String(port),
      file,
      upstream,
    ];
  });
}

/**
 * Violations Prism reported for a proxied response: the `sl-violations` header (response errors and
 * warnings — an undocumented status is only a warning and does not turn into a 500 — and request
 * violations when request validation is on) and the `validation` list of the `--errors` 500 that
 * replaces a response outside the spec. Empty when the response is within the spec.
 */
export function proxyViolations(status: number, headers: Headers, body: unknown): string[] {
  const found = new Set<string>();
  const add = (v: { location?: unknown[]; message?: string; severity?: string }): void => {
    found.add(`${v.severity ?? 'Error'} at ${(v.location ?? []).join('.') || '(response)'}: ${v.message ?? JSON.stringify(v)}`);
  };
  const header = headers.get('sl-violations');
  if (header) {
    try {
      const list: unknown = JSON.parse(header);
      if (Array.isArray(list)) list.forEach(add);
      else found.add(`sl-violations: ${header}`);
    } catch {
      found.add(`sl-violations: ${header}`); // "Too many violations! …" (truncated)
    }
  }
  if (status === 500 && typeof body === 'object' && body !== null) {
    const problem = body as { type?: unknown; validation?: unknown };
    if (typeof problem.type === 'string' && problem.type.endsWith('#VIOLATIONS')) {
      const list = Array.isArray(problem.validation) ? problem.validation : [];
      list.forEach(add);
      if (list.length === 0) found.add(`Prism violation: ${JSON.stringify(body)}`);
    }
  }
  return [...found];
}

/**
 * Whether an answer came from Prism itself rather than the upstream: Prism's own errors (its 401
 * for a missing key, 422 for an invalid request, 404 for an unknown path, the `--errors` 500) are
 * problem documents whose `type` is under `https://stoplight.io/prism/errors#`.
 */
export function answeredByPrism(body: unknown): boolean {
  const type = typeof body === 'object' && body !== null ? (body as { type?: unknown }).type : undefined;
  return typeof type === 'string' && type.startsWith('https://stoplight.io/prism/errors#');
}

async function launch(args: (file: string, port: number) => string[]): Promise<PrismHandle> {
  let lastError: unknown;
  // The port is free when chosen but could be taken before Prism binds it: retry on a new one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'model-repository-prism-'));
    try {
      const file = writeMockDocument(dir);
      const watchdog = join(dir, 'watchdog.cjs');
      writeFileSync(watchdog, WATCHDOG);
      const port = await freePort();
      return await run(['-r', watchdog, ...args(file, port)], `http://${HOST}:${port}`, dir);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      lastError = error;
    }
  }
  throw lastError;
}

async function run(argv: string[], baseUrl: string, dir: string): Promise<PrismHandle> {
  installExitHook();
  const env = { ...process.env, NODE_ENV: 'test', FORCE_COLOR: '0' };
  const child = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'], env });
  running.add(child);
  let log = '';
  const append = (chunk: Buffer): void => {
    log += chunk.toString('utf8');
    if (log.length > OUTPUT_LIMIT) log = log.slice(-OUTPUT_LIMIT);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  child.stdin!.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running.delete(child);
      resolve();
    });
  });
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      if (!hasExited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      child.stdin!.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (hasExited) {
      await stop();
      throw new Error(`Prism exited before answering (${argv.slice(3).join(' ')}):\n${log}`);
    }
    if (await answers(baseUrl)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Prism did not answer on ${baseUrl} within ${START_TIMEOUT_MS} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { baseUrl, stop, output: () => log };
}

/** Any HTTP answer counts (a proxy's /healthz answer depends on the upstream). */
async function answers(baseUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}
