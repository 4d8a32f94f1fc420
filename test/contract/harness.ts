/**
 * The contract suite's targets and the one place where every request is checked.
 *
 * A target is the Prism mock, or the real server (as a child process) on SQLite + filesystem or
 * PostgreSQL + S3. Scenarios talk to it through SDK clients made by `target.client()`, whose
 * `fetch` is wrapped here so that EVERY request/response pair is routed, checked and recorded:
 *
 * - JSON operations go through `prism proxy --errors` in front of the server, which validates the
 *   server's answer (status, headers, body) and reports violations (`proxyViolations`);
 * - chunk PUTs, multipart uploads and downloads go to the server directly (Prism re-encodes
 *   binary bodies), and so do requests without an API key (Prism would answer those itself) and
 *   queries with an encoded space (Prism forwards `%20` as `+`, which the server rejects);
 * - every response from the server, proxied or direct, is also checked with `checkResponse`
 *   (documented status, documented headers present and well-formed, content type, body schema)
 *   and for headers the spec does not document for that response;
 * - a proxied answer without the server's `X-Request-Id` came from Prism itself: a harness error.
 *
 * The call log feeds the per-scenario assertions, the coverage checks and the result table.
 * Black-box: nothing from server/src is imported; users and roles come from the admin CLI.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createModelRepositoryClient, type ModelRepositoryClient, type operations } from '../../sdk/src/index.ts';
import type { TestDatabase } from '../support/postgres.ts';
import { proxyViolations, startPrism, startPrismProxy, type PrismHandle } from '../support/prism.ts';
import { startS3Server, type S3TestServer } from '../support/s3.ts';
import { startServer, type StartedServer } from '../support/server.ts';
import { apiSpec, checkResponse, deref, findOperation, listOperations } from '../support/spec-check.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

export type TargetName = 'mock' | 'sqlite' | 'postgres';
export const TARGET_NAMES: readonly TargetName[] = ['mock', 'sqlite', 'postgres'];
export type OperationId = keyof operations & string;

const KiB = 1024;
const MiB = 1024 * KiB;

/** Server settings of the real targets (small chunks keep the filesystem uploads at a few chunks). */
export const SERVER_SETTINGS = {
  /** UPLOAD_CHUNK_SIZE_BYTES of both real targets. */
  fsChunkSize: 64 * KiB,
  /** What the server makes of it on S3: the minimum part size. */
  s3ChunkSize: 5 * MiB,
  maxArtifactSize: 8 * MiB,
  /** The second server process ("twin") of a target: expiring sessions, tiny artifacts. */
  twinSessionTtlSeconds: 1,
  twinMaxArtifactSize: 4 * KiB,
} as const;

/* ------------------------------------------------------------------------------------------------
 * The call log
 * ---------------------------------------------------------------------------------------------- */

export interface CallRecord {
  scenario: string;
  /** Which process answered: the main server, its twin, the Prism mock, or a storage redirect target. */
  server: 'main' | 'twin' | 'mock' | 'storage';
  via: 'proxy' | 'direct' | 'mock' | 'storage';
  method: string;
  /** Path and query as requested. */
  path: string;
  operationId: string | null;
  status: number;
  violations: string[];
  headers: Record<string, string>;
}

export class CallLog {
  readonly calls: CallRecord[] = [];
  scenario = '(setup)';

  add(call: Omit<CallRecord, 'scenario'>): CallRecord {
    const record = { scenario: this.scenario, ...call };
    this.calls.push(record);
    return record;
  }

  /** The calls made while `scenario` ran. */
  of(scenario: string): CallRecord[] {
    return this.calls.filter((c) => c.scenario === scenario);
  }

  /** The latest call of an operation in the current scenario (optionally with a given status). */
  last(operationId: OperationId, status?: number): CallRecord | undefined {
    for (let i = this.calls.length - 1; i >= 0; i--) {
      const c = this.calls[i]!;
      if (c.scenario !== this.scenario) break;
      if (c.operationId === operationId && (status === undefined || c.status === status)) return c;
    }
    return undefined;
  }
}

/* ------------------------------------------------------------------------------------------------
 * Checks
 * ---------------------------------------------------------------------------------------------- */

/** Transport and generic headers any response may carry (the spec documents API headers only). */
const GENERIC_HEADERS = new Set([
  'content-type',
  'content-length',
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'vary',
  'cache-control',
  'x-content-type-options',
  'sl-violations', // added by Prism; its content is checked by proxyViolations
]);

/** Headers of a response that are neither generic nor documented for this operation and status. */
export function undocumentedHeaders(method: string, pathname: string, status: number, headers: Headers): string[] {
  const found = findOperation(method, pathname);
  if (!found) return [];
  const op = listOperations().find((o) => o.operationId === found.operationId)!;
  const responses = op.operation.responses ?? {};
  const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
  if (!key) return []; // checkResponse reports the status
  const { value: response } = deref(responses[key], `${op.pointer}/responses/${key}`);
  const documented = new Set(Object.keys(response.headers ?? {}).map((h) => h.toLowerCase()));
  const out: string[] = [];
  headers.forEach((_value, name) => {
    const lower = name.toLowerCase();
    if (GENERIC_HEADERS.has(lower) || lower.startsWith('access-control-') || documented.has(lower)) return;
    out.push(`${method.toUpperCase()} ${pathname} → ${status} (${found.operationId}): header ${name} is not documented for this response`);
  });
  return out;
}

const BINARY_OPERATIONS = new Set<string>(['uploadArtifactChunk', 'createModelArtifact', 'downloadModelArtifact', 'headModelArtifact']);

function needsKey(operationId: string | undefined): boolean {
  if (!operationId) return true;
  const op = listOperations().find((o) => o.operationId === operationId);
  const security = op?.operation.security ?? apiSpec().security ?? [];
  return security.length > 0;
}

function isJsonMedia(contentType: string): boolean {
  const essence = contentType.split(';')[0]!.trim().toLowerCase();
  return essence === 'application/json' || essence.endsWith('+json');
}

function headerObject(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => (out[name.toLowerCase()] = value));
  return out;
}

interface Upstream {
  server: 'main' | 'twin' | 'mock';
  /** Origin of the process itself. */
  direct: string;
  /** Origin of the Prism proxy in front of it, if any. */
  proxy: string | null;
}

/**
 * A `fetch` for the SDK (and for raw requests) that routes, checks and records. Requests to other
 * origins (storage redirect targets) are passed on (through `storageUrl`) and recorded unchecked.
 */
function checkedFetch(log: CallLog, upstream: Upstream, storageUrl: (url: URL) => URL): (request: Request) => Promise<Response> {
  return async (request: Request): Promise<Response> => {
    let url = new URL(request.url);
    const method = request.method.toUpperCase();
    const body = method === 'GET' || method === 'HEAD' || request.body === null ? undefined : await request.arrayBuffer();
    const init: RequestInit = { method, headers: request.headers, body, redirect: request.redirect, signal: request.signal };

    if (url.origin !== upstream.direct && url.origin !== upstream.proxy) {
      const response = await fetch(storageUrl(url), init);
      log.add({ server: 'storage', via: 'storage', method, path: url.pathname, operationId: null, status: response.status, violations: [], headers: headerObject(response.headers) });
      return response;
    }

    const operationId = findOperation(method, url.pathname)?.operationId;
    let via: CallRecord['via'] = upstream.server === 'mock' ? 'mock' : url.origin === upstream.proxy ? 'proxy' : 'direct';
    if (via === 'proxy') {
      const bypass =
        (operationId !== undefined && BINARY_OPERATIONS.has(operationId)) ||
        (!request.headers.has('authorization') && needsKey(operationId)) ||
        // Prism's proxy forwards an encoded space (%20) in a query as '+', and the server's
        // validator rejects '+' (a reserved character) in query values with 422: such requests
        // go direct until the server accepts form-encoded queries.
        url.search.includes('%20');
      if (bypass) {
        url = new URL(`${url.pathname}${url.search}`, upstream.direct);
        via = 'direct';
      }
    }

    const response = await fetch(url, init);
    const violations: string[] = [];
    const label = `${method} ${url.pathname} → ${response.status}`;
    let parsed: unknown;
    if (method !== 'HEAD') {
      const contentType = response.headers.get('content-type') ?? '';
      if (isJsonMedia(contentType)) {
        const text = await response.clone().text();
        if (text !== '') {
          try {
            parsed = JSON.parse(text);
          } catch {
            violations.push(`${label}: the body is not valid JSON`);
          }
        }
      } else if (contentType === '' || [204, 302, 304].includes(response.status)) {
        // Statuses documented without content: whatever body came must be reported.
        const text = await response.clone().text();
        if (text !== '') parsed = text;
      }
    }
    violations.push(...checkResponse({ method, path: url.pathname, status: response.status, headers: response.headers, body: parsed }));
    if (via !== 'mock') violations.push(...undocumentedHeaders(method, url.pathname, response.status, response.headers));
    if (via === 'proxy' || via === 'mock') {
      // Prism also lists what is wrong with the request (negative scenarios mean it): only the answer counts.
      const answer = proxyViolations(response.status, response.headers, parsed).filter((v) => !/^\w+ at request\b/.test(v));
      violations.push(...answer.map((v) => `${label}: Prism: ${v}`));
    }
    if (via !== 'mock' && !response.headers.get('x-request-id')) {
      violations.push(`${label}: no X-Request-Id — ${via === 'proxy' ? 'Prism answered itself; send this request to the server directly' : 'the server sends one on every answer'}`);
    }
    log.add({ server: upstream.server, via, method, path: `${url.pathname}${url.search}`, operationId: operationId ?? null, status: response.status, violations, headers: headerObject(response.headers) });
    return response;
  };
}

/* ------------------------------------------------------------------------------------------------
 * Targets
 * ---------------------------------------------------------------------------------------------- */

export interface ClientOptions {
  /** The API key (default: the owner's); null for none. */
  apiKey?: string | null;
  /** 'auto' (default): JSON through the proxy, binary and keyless requests direct; 'direct': everything direct. */
  route?: 'auto' | 'direct';
  /** 'twin': the target's second server process (see SERVER_SETTINGS); it has no proxy. */
  server?: 'main' | 'twin';
}

export interface RawRequest extends ClientOptions {
  headers?: Record<string, string>;
  body?: BodyInit;
}

export interface RawResult {
  status: number;
  headers: Headers;
  /** Parsed JSON body, else undefined. */
  body: unknown;
  bytes: Uint8Array;
}

export interface TargetUsers {
  /** API key of a viewer of space `default` (an organization member, so it also sees space `restricted`, without a role there). */
  viewer: string;
  /** API key of a user of another organization, who can see nothing of `default`. */
  outsider: string;
  /** A space of organization `default` the viewer has no role in. */
  restrictedSpace: string;
  /** API key of an editor of space `default` (may not review). */
  editor: string;
  /** API key of an admin of space `default` (a reviewer who created nothing). */
  reviewer: string;
  /** A space of organization `default` whose promotion policy is `risk_based` (`reviewer` is its admin too). */
  gatedSpace: string;
  /** The outsider's own space (they own its organization). */
  outsiderSpace: string;
}

export interface StorageFaults {
  /** Makes the storage unusable (readiness must fail); returns the repair. */
  breakStorage(): Promise<() => Promise<void>>;
  /** Removes an artifact's bytes behind the server's back (its `storage_uri`). */
  removeBytes(storageUri: string): Promise<void>;
  /** Whether an artifact's bytes are in storage (its `storage_uri`), looked at behind the server's back. */
  bytesExist(storageUri: string): Promise<boolean>;
}

/** The key of a filesystem storage_uri (`fs://<key>`, segments percent-encoded). */
function fsKeyOf(storageUri: string): string {
  if (!storageUri.startsWith('fs://')) throw new Error(`not a filesystem storage_uri: ${storageUri}`);
  return storageUri.slice('fs://'.length).split('/').map(decodeURIComponent).join(path.sep);
}

export interface Target {
  name: TargetName;
  kind: 'mock' | 'server';
  storage: 'none' | 'fs' | 's3';
  /** Where JSON calls go: the proxy in front of the server, or the mock. */
  baseUrl: string;
  /** The server (or mock) itself. */
  directUrl: string;
  /** The owner's key (organization `default`, space `default`). */
  apiKey: string;
  space: string;
  organization: string;
  /** Unique per target run: keeps names, slugs and searches of this run apart. */
  tag: string;
  /** The chunk size the server hands out (the mock: its example's). */
  chunkSize: number;
  /** Which server streams downloads (answers Range and HEAD with bytes): on S3 in redirect mode the twin, in proxy mode. */
  streamingServer: 'main' | 'twin';
  log: CallLog;
  client(options?: ClientOptions): ModelRepositoryClient;
  /** A request outside the SDK's typed calls (malformed bodies, wrong media types, health checks), checked and recorded like the rest. */
  raw(method: string, pathAndQuery: string, request?: RawRequest): Promise<RawResult>;
  users(): Promise<TargetUsers>;
  faults: StorageFaults | null;
  stop(): Promise<void>;
  /** Process output, for failure messages. */
  output(): string;
}

interface TargetParts {
  name: TargetName;
  kind: Target['kind'];
  storage: Target['storage'];
  main: Upstream;
  twin: Upstream | null;
  apiKey: string;
  chunkSize: number;
  streamingServer: Target['streamingServer'];
  storageUrl: (url: URL) => URL;
  users: () => Promise<TargetUsers>;
  faults: StorageFaults | null;
  stop: () => Promise<void>;
  output: () => string;
}

function assemble(parts: TargetParts): Target {
  const log = new CallLog();
  const upstreamOf = (server: ClientOptions['server']): Upstream => {
    if (server === 'twin') {
      if (!parts.twin) throw new Error(`target ${parts.name} has no twin server`);
      return parts.twin;
    }
    return parts.main;
  };
  const fetchers = new Map<Upstream, (request: Request) => Promise<Response>>();
  const fetcherOf = (upstream: Upstream) => {
    let f = fetchers.get(upstream);
    if (!f) fetchers.set(upstream, (f = checkedFetch(log, upstream, parts.storageUrl)));
    return f;
  };
  const originOf = (upstream: Upstream, route: ClientOptions['route']) => (route !== 'direct' && upstream.proxy ? upstream.proxy : upstream.direct);

  return {
    name: parts.name,
    kind: parts.kind,
    storage: parts.storage,
    baseUrl: parts.main.proxy ?? parts.main.direct,
    directUrl: parts.main.direct,
    apiKey: parts.apiKey,
    space: 'default',
    organization: 'default',
    tag: randomBytes(4).toString('hex'),
    chunkSize: parts.chunkSize,
    streamingServer: parts.streamingServer,
    log,
    client(options = {}) {
      const upstream = upstreamOf(options.server);
      const apiKey = options.apiKey === undefined ? parts.apiKey : options.apiKey;
      return createModelRepositoryClient({
        baseUrl: originOf(upstream, options.route),
        ...(apiKey === null ? {} : { apiKey }),
        fetch: fetcherOf(upstream),
        // Every answer is to be seen and checked: no retries hiding one.
        retry: { retries: 0 },
      });
    },
    async raw(method, pathAndQuery, request = {}) {
      const upstream = upstreamOf(request.server);
      const headers = new Headers(request.headers ?? {});
      const apiKey = request.apiKey === undefined ? parts.apiKey : request.apiKey;
      if (apiKey !== null && !headers.has('authorization')) headers.set('authorization', `Bearer ${apiKey}`);
      const req = new Request(`${originOf(upstream, request.route)}${pathAndQuery}`, {
        method,
        headers,
        body: request.body,
        redirect: 'manual',
        ...(request.body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit);
      const res = await fetcherOf(upstream)(req);
      const bytes = new Uint8Array(await res.arrayBuffer());
      let body: unknown;
      if (bytes.length > 0 && isJsonMedia(res.headers.get('content-type') ?? '')) {
        try {
          body = JSON.parse(new TextDecoder().decode(bytes));
        } catch {
          body = undefined;
        }
      }
      return { status: res.status, headers: res.headers, body, bytes };
    },
    users: parts.users,
    faults: parts.faults,
    stop: parts.stop,
    output: parts.output,
  };
}

/** The Prism mock: any key is accepted, answers are the spec's examples. */
export async function startMockTarget(): Promise<Target> {
  const prism = await startPrism();
  const exampleSession = apiSpec().components.examples.sessionNew?.value as { chunk_size_bytes?: number } | undefined;
  return assemble({
    name: 'mock',
    kind: 'mock',
    storage: 'none',
    main: { server: 'mock', direct: prism.baseUrl, proxy: null },
    twin: null,
    apiKey: 'mock-owner-key-0123456789abcdef0123456789abcdef',
    chunkSize: exampleSession?.chunk_size_bytes ?? 8 * MiB,
    streamingServer: 'main',
    storageUrl: (url) => url,
    users: async () => ({
      viewer: 'mock-viewer-key-0123456789abcdef0123456789abcdef',
      outsider: 'mock-outsider-key-0123456789abcdef0123456789abcde',
      restrictedSpace: 'restricted',
      editor: 'mock-editor-key-0123456789abcdef0123456789abcdef0',
      reviewer: 'mock-reviewer-key-0123456789abcdef0123456789abcd',
      gatedSpace: 'gated',
      outsiderSpace: 'outside',
    }),
    faults: null,
    stop: () => prism.stop(),
    output: () => prism.output(),
  });
}

/** Runs the admin CLI with the server's environment; returns its one JSON object. */
async function admin(env: Record<string, string>, args: string[]): Promise<Record<string, unknown>> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(root, 'server/src/cli/main.ts'), ...args], {
      cwd: root,
      env: { ...process.env, ...env, LOG_LEVEL: 'error' },
      timeout: 30_000,
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`admin ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

async function makeUsers(env: Record<string, string>, tag: string): Promise<TargetUsers> {
  const viewer = `viewer-${tag}@contract.test`;
  await admin(env, ['create-user', '--email', viewer, '--name', 'Contract viewer']);
  await admin(env, ['add-member', '--email', viewer, '--space', 'default', '--role', 'viewer']);
  const viewerKey = (await admin(env, ['create-api-key', '--email', viewer])).api_key as string;
  const restrictedSpace = `restricted-${tag}`;
  await admin(env, ['create-space', '--org', 'default', '--space', restrictedSpace]);
  const outsider = await admin(env, ['bootstrap', '--org', `outsiders-${tag}`, '--space', `outside-${tag}`, '--email', `outsider-${tag}@contract.test`]);
  const member = async (role: 'editor' | 'admin') => {
    const email = `${role}-${tag}@contract.test`;
    await admin(env, ['create-user', '--email', email]);
    await admin(env, ['add-member', '--email', email, '--space', 'default', '--role', role]);
    return (await admin(env, ['create-api-key', '--email', email])).api_key as string;
  };
  const editor = await member('editor');
  const reviewer = await member('admin');
  const gatedSpace = `gated-${tag}`;
  await admin(env, ['create-space', '--org', 'default', '--space', gatedSpace]);
  await admin(env, ['add-member', '--email', `admin-${tag}@contract.test`, '--space', gatedSpace, '--role', 'admin']);
  const policy = await admin(env, ['set-promotion-policy', '--space', gatedSpace, '--policy', 'risk_based']);
  if (policy.promotion_policy !== 'risk_based') throw new Error(`set-promotion-policy answered ${JSON.stringify(policy)}`);
  return { viewer: viewerKey, outsider: outsider.api_key as string, restrictedSpace, editor, reviewer, gatedSpace, outsiderSpace: `outside-${tag}` };
}

/**
 * The real server: SQLite + filesystem, or PostgreSQL (`database`) + S3 (a local s3rver, with a
 * lenient twin over the same directory for presigned download URLs, which s3rver itself
 * mis-verifies). A second server process over the same database and storage (the "twin") has a
 * 1-second session TTL, a 4 KiB artifact limit and, on S3, proxy download mode.
 */
export async function startServerTarget(name: 'sqlite' | 'postgres', database?: TestDatabase): Promise<Target> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  };
  try {
    const s3 = name === 'postgres' ? await startS3Server() : null;
    let lenient: S3TestServer | null = null;
    if (s3) {
      cleanups.push(() => s3.stop());
      lenient = await startS3Server({ directory: s3.directory, bucket: s3.bucket, allowMismatchedSignatures: true });
      const twinS3 = lenient;
      cleanups.push(() => twinS3.stop());
    }
    const env: Record<string, string> = {
      MAX_ARTIFACT_SIZE_BYTES: String(SERVER_SETTINGS.maxArtifactSize),
      // On S3 the server raises it to the 5 MiB minimum part size.
      UPLOAD_CHUNK_SIZE_BYTES: String(SERVER_SETTINGS.fsChunkSize),
      // The webhook scenarios' receivers listen on 127.0.0.1; quick polling keeps them short.
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      WEBHOOK_POLL_INTERVAL_MS: '200',
      WEBHOOK_RETRY_SECONDS: '1',
    };
    if (database) env.DATABASE_URL = database.url;
    if (s3) {
      Object.assign(env, {
        STORAGE_BACKEND: 's3',
        S3_BUCKET: s3.bucket,
        S3_ENDPOINT: s3.endpoint,
        S3_FORCE_PATH_STYLE: 'true',
        S3_REGION: s3.region,
        S3_DOWNLOAD_MODE: 'redirect',
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      });
    }

    const main: StartedServer = await startServer({ env });
    cleanups.push(() => main.cleanup());
    cleanups.push(() => main.stop());
    if (!main.apiKey) throw new Error(`the server printed no first-start API key:\n${main.output()}`);
    const cliEnv = { ...env, DATA_DIR: main.dataDir };
    const tag = randomBytes(3).toString('hex');

    const twinEnv = {
      ...env,
      UPLOAD_SESSION_TTL_SECONDS: String(SERVER_SETTINGS.twinSessionTtlSeconds),
      MAX_ARTIFACT_SIZE_BYTES: String(SERVER_SETTINGS.twinMaxArtifactSize),
      ...(s3 ? { S3_DOWNLOAD_MODE: 'proxy' } : {}),
    };
    const [twin, proxy, users] = await Promise.all([
      startServer({ env: twinEnv, dataDir: main.dataDir }).then((t) => (cleanups.push(() => t.stop()), t)),
      startPrismProxy(main.baseUrl).then((p: PrismHandle) => (cleanups.push(() => p.stop()), p)),
      makeUsers(cliEnv, tag),
    ]);

    const storageDir = path.join(main.dataDir, 'artifacts');
    const faults: StorageFaults = s3
      ? {
          async breakStorage() {
            const bucketDir = path.join(s3.directory, s3.bucket);
            const away = `${bucketDir}.away`;
            await rename(bucketDir, away);
            return () => rename(away, bucketDir);
          },
          async removeBytes(storageUri) {
            const key = decodeURIComponent(new URL(storageUri).pathname.replace(/^\//, ''));
            const dir = path.join(s3.directory, s3.bucket, path.dirname(key));
            const base = path.basename(key);
            for (const file of await readdir(dir)) {
              if (file.startsWith(`${base}._S3rver_`)) await rm(path.join(dir, file), { force: true });
            }
          },
          async bytesExist(storageUri) {
            const key = decodeURIComponent(new URL(storageUri).pathname.replace(/^\//, ''));
            const dir = path.join(s3.directory, s3.bucket, path.dirname(key));
            return (await readdir(dir).catch(() => [] as string[])).some((file) => file.startsWith(`${path.basename(key)}._S3rver_`));
          },
        }
      : {
          async breakStorage() {
            const away = `${storageDir}.away`;
            let moved = true;
            await rename(storageDir, away).catch((err: NodeJS.ErrnoException) => {
              if (err.code !== 'ENOENT') throw err;
              moved = false;
            });
            // A regular file where the directory was: the store can neither create nor use it.
            await writeFile(storageDir, 'not a directory');
            return async () => {
              await rm(storageDir, { force: true });
              if (moved) await rename(away, storageDir);
              else await mkdir(storageDir, { recursive: true });
            };
          },
          async removeBytes(storageUri) {
            await rm(path.join(storageDir, fsKeyOf(storageUri)));
          },
          async bytesExist(storageUri) {
            return existsSync(path.join(storageDir, fsKeyOf(storageUri)));
          },
        };

    return assemble({
      name,
      kind: 'server',
      storage: s3 ? 's3' : 'fs',
      main: { server: 'main', direct: main.baseUrl, proxy: proxy.baseUrl },
      twin: { server: 'twin', direct: twin.baseUrl, proxy: null },
      apiKey: main.apiKey,
      chunkSize: s3 ? SERVER_SETTINGS.s3ChunkSize : SERVER_SETTINGS.fsChunkSize,
      streamingServer: s3 ? 'twin' : 'main',
      storageUrl: (url) => (s3 && lenient && url.origin === s3.endpoint ? new URL(`${url.pathname}${url.search}`, lenient.endpoint) : url),
      users: async () => users,
      faults,
      stop: stopAll,
      output: () => `--- main server ---\n${main.output()}\n--- twin server ---\n${twin.output()}\n--- proxy ---\n${proxy.output().slice(-5000)}`,
    });
  } catch (err) {
    await stopAll();
    throw err;
  }
}
