/**
 * Environment → one frozen, validated Config. Read once at start (server and admin CLI);
 * nothing else in the code base reads process.env. Empty variables count as unset.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type DatabaseTarget =
  | { dialect: 'sqlite'; /** file path, or ':memory:' */ path: string }
  | { dialect: 'postgresql'; url: string };

export interface S3Config {
  bucket: string;
  region: string;
  /** Custom endpoint (MinIO, a local test server …); null = AWS. */
  endpoint: string | null;
  forcePathStyle: boolean;
  /** '' or a key prefix normalised to end with '/' and not start with one, e.g. 'models/'. */
  prefix: string;
  downloadMode: 'redirect' | 'proxy';
}

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Absolute path. */
  readonly dataDir: string;
  /** As given (or the default `sqlite:<absolute DATA_DIR>/model-repository.db`). */
  readonly databaseUrl: string;
  /** `databaseUrl`, parsed. */
  readonly database: Readonly<DatabaseTarget>;
  readonly storageBackend: 'fs' | 's3';
  /** Absolute path; used by the fs backend. */
  readonly storageDir: string;
  /** fs: write uploaded bytes with direct I/O where the filesystem allows it (storage/direct-io.ts). */
  readonly storageDirectIo: boolean;
  /** Present exactly when storageBackend is 's3'. */
  readonly s3: Readonly<S3Config> | null;
  /** Configured chunk size; the upload service raises it (S3 minimum, 10,000-chunk cap). */
  readonly uploadChunkSizeBytes: number;
  readonly uploadSessionTtlSeconds: number;
  readonly maxArtifactSizeBytes: number;
  /** The most bytes artifact inspection reads from one file (services/inspections.ts). */
  readonly inspectMaxHeaderBytes: number;
  /** '*' or a list of exact origins. */
  readonly corsOrigins: '*' | readonly string[];
  readonly logLevel: LogLevel;
  /** Memory for rendered space listings (see services/listing-cache.ts); 0 disables the cache. */
  readonly listingCacheBytes: number;
  /** Interval of the background sweep of expired/aborted upload sessions; 0 disables it. */
  readonly sweepIntervalSeconds: number;
  /** Delays in seconds before the 2nd, 3rd, … delivery attempt of a webhook; a delivery fails after the last. */
  readonly webhookRetrySeconds: readonly number[];
  /** Let webhooks target loopback, private, link-local and unique-local addresses (local receivers, tests). */
  readonly webhookAllowPrivateNetworks: boolean;
  /** The sweeper removes webhook deliveries older than this. */
  readonly webhookDeliveryRetentionDays: number;
  /** How often the delivery worker looks for due deliveries; 0 = no worker in this process. */
  readonly webhookPollIntervalMs: number;
  /** A delivery attempt that has no answer within this time fails. */
  readonly webhookTimeoutMs: number;
  /** Validate responses against the spec (development and tests; off in production). */
  readonly validateResponses: boolean;
  /** Time a client has to send a request's headers (http.Server headersTimeout). */
  readonly headersTimeoutSeconds: number;
  /** Time a client has to send a whole request, body included (http.Server requestTimeout); 0: none. */
  readonly requestTimeoutSeconds: number;
  /** A request body from which no byte arrives for this long is cut off (connection closed); 0: never. */
  readonly bodyIdleTimeoutSeconds: number;
  /** How long an idle keep-alive connection stays open (http.Server keepAliveTimeout). */
  readonly keepAliveTimeoutSeconds: number;
  /** How long the connection of a refused chunk discards what its client still sends before closing. */
  readonly refusedBodyLingerSeconds: number;
  /** Upload bodies (chunks, single-request files) this process reads at once; more wait their turn (0: no limit). Default: 4 per CPU core. */
  readonly uploadConcurrentBodies: number;
  readonly nodeEnv: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; problem: string }[]) {
    super(
      problems.length === 1
        ? `Invalid configuration: ${problems[0]!.variable}: ${problems[0]!.problem}`
        : `Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

const MiB = 1024 * 1024;
export const DEFAULTS = {
  port: 8080,
  host: '127.0.0.1',
  dataDir: './data',
  uploadChunkSizeBytes: 8 * MiB,
  uploadSessionTtlSeconds: 86_400,
  maxArtifactSizeBytes: 1024 * 1024 * MiB, // 1 TiB
  inspectMaxHeaderBytes: 100 * MiB,
  s3Region: 'us-east-1',
  sweepIntervalSeconds: 60,
  listingCacheBytes: 64 * MiB,
  logLevel: 'info' as LogLevel,
  headersTimeoutSeconds: 60,
  requestTimeoutSeconds: 3600,
  bodyIdleTimeoutSeconds: 60,
  keepAliveTimeoutSeconds: 65,
  refusedBodyLingerSeconds: 5,
  /** Per CPU core (os.availableParallelism): the default of UPLOAD_CONCURRENT_BODIES. */
  uploadConcurrentBodiesPerCore: 4,
  webhookRetrySeconds: [5, 30, 120, 600, 1800, 7200],
  webhookDeliveryRetentionDays: 30,
  webhookPollIntervalMs: 1000,
  webhookTimeoutMs: 10_000,
} as const;

/** 5 GiB: the largest part S3 accepts, so no chunk size beyond it makes sense. */
const MAX_CHUNK_SIZE_BYTES = 5 * 1024 * MiB;

const show = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

/** A variable: unset/empty → undefined, otherwise a trimmed string for the parsers below. */
const envVar = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s.trim() === '' ? undefined : s.trim()));

function integer(min: number, max: number) {
  return envVar.transform((s, ctx): number | undefined => {
    if (s === undefined) return undefined;
    const n = /^\d+$/.test(s) ? Number(s) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max} (got ${show(s)})` });
      return z.NEVER;
    }
    return n;
  });
}

function oneOf<const T extends readonly string[]>(values: T) {
  return envVar.transform((s, ctx): T[number] | undefined => {
    if (s === undefined) return undefined;
    const v = s.toLowerCase();
    if (!values.includes(v)) {
      ctx.addIssue({ code: 'custom', message: `must be one of ${values.join(', ')} (got ${show(s)})` });
      return z.NEVER;
    }
    return v as T[number];
  });
}

const boolean = envVar.transform((s, ctx): boolean | undefined => {
  if (s === undefined) return undefined;
  const v = s.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  ctx.addIssue({ code: 'custom', message: `must be true or false (got ${show(s)})` });
  return z.NEVER;
});

const httpUrl = envVar.transform((s, ctx): string | undefined => {
  if (s === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(s);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    ctx.addIssue({ code: 'custom', message: `must be an http:// or https:// URL (got ${show(s)})` });
    return z.NEVER;
  }
  return s;
});

/** Comma-separated whole seconds, e.g. "5,30,120"; "" (or unset) → the default, "none" → no retries. */
const secondsList = envVar.transform((s, ctx): number[] | undefined => {
  if (s === undefined) return undefined;
  if (s.toLowerCase() === 'none') return [];
  const parts = s.split(',').map((part) => part.trim());
  const values = parts.map((part) => (/^\d+$/.test(part) ? Number(part) : NaN));
  if (parts.length > 50 || values.some((n) => !Number.isSafeInteger(n) || n > 7 * 86_400)) {
    ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of at most 50 whole seconds (each at most 604800), or none (got ${show(s)})` });
    return z.NEVER;
  }
  return values;
});

const corsOrigins = envVar.transform((s, ctx): '*' | string[] | undefined => {
  if (s === undefined) return undefined;
  if (s === '*') return '*';
  const origins = s
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const o of origins) {
    let origin: string | undefined;
    try {
      origin = new URL(o).origin;
    } catch {
      origin = undefined;
    }
    if (origin !== o.replace(/\/$/, '')) {
      ctx.addIssue({
        code: 'custom',
        message: `must be * or a comma-separated list of origins such as https://app.example.com (bad entry ${show(o)})`,
      });
      return z.NEVER;
    }
  }
  if (origins.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'must be * or a comma-separated list of origins' });
    return z.NEVER;
  }
  return origins.map((o) => o.replace(/\/$/, ''));
});

const EnvSchema = z.object({
  PORT: integer(0, 65_535),
  HOST: envVar,
  DATA_DIR: envVar,
  DATABASE_URL: envVar,
  STORAGE_BACKEND: oneOf(['fs', 's3'] as const),
  STORAGE_DIR: envVar,
  STORAGE_DIRECT_IO: boolean,
  S3_BUCKET: envVar,
  S3_REGION: envVar,
  S3_ENDPOINT: httpUrl,
  S3_FORCE_PATH_STYLE: boolean,
  S3_PREFIX: envVar,
  S3_DOWNLOAD_MODE: oneOf(['redirect', 'proxy'] as const),
  UPLOAD_CHUNK_SIZE_BYTES: integer(1, MAX_CHUNK_SIZE_BYTES),
  UPLOAD_SESSION_TTL_SECONDS: integer(1, 365 * 86_400),
  MAX_ARTIFACT_SIZE_BYTES: integer(1, Number.MAX_SAFE_INTEGER),
  INSPECT_MAX_HEADER_BYTES: integer(1024, 1024 * MiB),
  CORS_ORIGINS: corsOrigins,
  LOG_LEVEL: oneOf(LOG_LEVELS),
  SWEEP_INTERVAL_SECONDS: integer(0, 7 * 86_400),
  LISTING_CACHE_BYTES: integer(0, 64 * 1024 * MiB),
  WEBHOOK_RETRY_SECONDS: secondsList,
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: boolean,
  WEBHOOK_DELIVERY_RETENTION_DAYS: integer(1, 36_500),
  WEBHOOK_POLL_INTERVAL_MS: integer(0, 3_600_000),
  WEBHOOK_TIMEOUT_MS: integer(100, 600_000),
  VALIDATE_RESPONSES: boolean,
  HEADERS_TIMEOUT_SECONDS: integer(1, 3600),
  REQUEST_TIMEOUT_SECONDS: integer(0, 7 * 86_400),
  BODY_IDLE_TIMEOUT_SECONDS: integer(0, 86_400),
  KEEP_ALIVE_TIMEOUT_SECONDS: integer(1, 3600),
  REFUSED_BODY_LINGER_SECONDS: integer(0, 600),
  UPLOAD_CONCURRENT_BODIES: integer(0, 100_000),
  NODE_ENV: envVar,
});

/**
 * `sqlite:<path>` (relative paths resolve against the working directory), `sqlite::memory:`,
 * `postgres://…` or `postgresql://…`. Throws a plain Error with the problem (no variable name).
 */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url.startsWith('sqlite:')) {
    const rest = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, ''); // tolerate sqlite:///abs/path
    if (rest === '') throw new Error('a sqlite: URL needs a file path, e.g. sqlite:./data/model-repository.db');
    if (rest === ':memory:') return { dialect: 'sqlite', path: ':memory:' };
    return { dialect: 'sqlite', path: path.resolve(rest) };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error('is not a valid postgres:// URL');
    }
    if (parsed.pathname.replace(/^\//, '') === '') {
      throw new Error('a postgres:// URL must name a database, e.g. postgres://user@host:5432/model_repository');
    }
    return { dialect: 'postgresql', url };
  }
  throw new Error('must start with sqlite:, postgres:// or postgresql://');
}

function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  return p === '' ? '' : `${p}/`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? 'environment'), problem: i.message })),
    );
  }
  const e = parsed.data;
  const problems: { variable: string; problem: string }[] = [];

  const dataDir = path.resolve(e.DATA_DIR ?? DEFAULTS.dataDir);
  const databaseUrl = e.DATABASE_URL ?? `sqlite:${path.join(dataDir, 'model-repository.db')}`;
  let database: DatabaseTarget | undefined;
  try {
    database = parseDatabaseUrl(databaseUrl);
  } catch (err) {
    problems.push({ variable: 'DATABASE_URL', problem: `${(err as Error).message} (got ${show(databaseUrl)})` });
  }

  const storageBackend = e.STORAGE_BACKEND ?? 'fs';
  let s3: S3Config | null = null;
  if (storageBackend === 's3') {
    if (!e.S3_BUCKET) {
      problems.push({ variable: 'S3_BUCKET', problem: 'is required when STORAGE_BACKEND=s3' });
    } else if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(e.S3_BUCKET)) {
      problems.push({ variable: 'S3_BUCKET', problem: `is not a valid bucket name (got ${show(e.S3_BUCKET)})` });
    }
    s3 = {
      bucket: e.S3_BUCKET ?? '',
      region: e.S3_REGION ?? DEFAULTS.s3Region,
      endpoint: e.S3_ENDPOINT ?? null,
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? false,
      prefix: normalizePrefix(e.S3_PREFIX),
      downloadMode: e.S3_DOWNLOAD_MODE ?? 'redirect',
    };
  }
  const headersTimeout = e.HEADERS_TIMEOUT_SECONDS ?? DEFAULTS.headersTimeoutSeconds;
  const requestTimeout = e.REQUEST_TIMEOUT_SECONDS ?? DEFAULTS.requestTimeoutSeconds;
  if (requestTimeout !== 0 && requestTimeout < headersTimeout) {
    problems.push({
      variable: 'REQUEST_TIMEOUT_SECONDS',
      problem: `must be 0 (none) or at least HEADERS_TIMEOUT_SECONDS (${headersTimeout}) (got ${requestTimeout})`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const nodeEnv = e.NODE_ENV ?? 'development';
  return deepFreeze({
    port: e.PORT ?? DEFAULTS.port,
    host: e.HOST ?? DEFAULTS.host,
    dataDir,
    databaseUrl,
    database: database!,
    storageBackend,
    storageDir: path.resolve(e.STORAGE_DIR ?? path.join(dataDir, 'artifacts')),
    storageDirectIo: e.STORAGE_DIRECT_IO ?? true,
    s3,
    uploadChunkSizeBytes: e.UPLOAD_CHUNK_SIZE_BYTES ?? DEFAULTS.uploadChunkSizeBytes,
    uploadSessionTtlSeconds: e.UPLOAD_SESSION_TTL_SECONDS ?? DEFAULTS.uploadSessionTtlSeconds,
    maxArtifactSizeBytes: e.MAX_ARTIFACT_SIZE_BYTES ?? DEFAULTS.maxArtifactSizeBytes,
    inspectMaxHeaderBytes: e.INSPECT_MAX_HEADER_BYTES ?? DEFAULTS.inspectMaxHeaderBytes,
    corsOrigins: e.CORS_ORIGINS ?? '*',
    logLevel: e.LOG_LEVEL ?? DEFAULTS.logLevel,
    sweepIntervalSeconds: e.SWEEP_INTERVAL_SECONDS ?? DEFAULTS.sweepIntervalSeconds,
    listingCacheBytes: e.LISTING_CACHE_BYTES ?? DEFAULTS.listingCacheBytes,
    webhookRetrySeconds: e.WEBHOOK_RETRY_SECONDS ?? [...DEFAULTS.webhookRetrySeconds],
    webhookAllowPrivateNetworks: e.WEBHOOK_ALLOW_PRIVATE_NETWORKS ?? false,
    webhookDeliveryRetentionDays: e.WEBHOOK_DELIVERY_RETENTION_DAYS ?? DEFAULTS.webhookDeliveryRetentionDays,
    webhookPollIntervalMs: e.WEBHOOK_POLL_INTERVAL_MS ?? DEFAULTS.webhookPollIntervalMs,
    webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS ?? DEFAULTS.webhookTimeoutMs,
    validateResponses: e.VALIDATE_RESPONSES ?? nodeEnv !== 'production',
    headersTimeoutSeconds: headersTimeout,
    requestTimeoutSeconds: requestTimeout,
    bodyIdleTimeoutSeconds: e.BODY_IDLE_TIMEOUT_SECONDS ?? DEFAULTS.bodyIdleTimeoutSeconds,
    keepAliveTimeoutSeconds: e.KEEP_ALIVE_TIMEOUT_SECONDS ?? DEFAULTS.keepAliveTimeoutSeconds,
    refusedBodyLingerSeconds: e.REFUSED_BODY_LINGER_SECONDS ?? DEFAULTS.refusedBodyLingerSeconds,
    uploadConcurrentBodies: e.UPLOAD_CONCURRENT_BODIES ?? DEFAULTS.uploadConcurrentBodiesPerCore * availableParallelism(),
    nodeEnv,
  } satisfies Config);
}

/**
 * For main.ts and the CLI: a ConfigError is printed to stderr and the process exits with 2;
 * anything else is rethrown.
 */
export function exitOnConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`model-repository: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

/** loadConfig, exiting with status 2 and a message on stderr when the environment is invalid. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    return exitOnConfigError(err);
  }
}
