import { availableParallelism } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, exitOnConfigError, loadConfig, parseDatabaseUrl } from '../../server/src/config.ts';

function problemOf(env: Record<string, string>): { variable: string; problem: string } {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.problems).toHaveLength(1);
    expect(e.message).toContain(e.problems[0]!.variable);
    return e.problems[0]!;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('loadConfig', () => {
  it('reads the webhook settings, and names the variable of a bad value', () => {
    const c = loadConfig({ WEBHOOK_RETRY_SECONDS: ' 1, 2 ,3', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_DELIVERY_RETENTION_DAYS: '7', WEBHOOK_POLL_INTERVAL_MS: '0', WEBHOOK_TIMEOUT_MS: '2500' });
    expect([c.webhookRetrySeconds, c.webhookAllowPrivateNetworks, c.webhookDeliveryRetentionDays, c.webhookPollIntervalMs, c.webhookTimeoutMs]).toEqual([[1, 2, 3], true, 7, 0, 2500]);
    expect(loadConfig({ WEBHOOK_RETRY_SECONDS: 'none' }).webhookRetrySeconds).toEqual([]);
    for (const bad of ['5,,30', '5;30', '-5', '1.5', 'soon', '999999999']) {
      expect(problemOf({ WEBHOOK_RETRY_SECONDS: bad }).variable).toBe('WEBHOOK_RETRY_SECONDS');
    }
    expect(problemOf({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'yes please' }).variable).toBe('WEBHOOK_ALLOW_PRIVATE_NETWORKS');
    expect(problemOf({ WEBHOOK_DELIVERY_RETENTION_DAYS: '0' }).variable).toBe('WEBHOOK_DELIVERY_RETENTION_DAYS');
    expect(problemOf({ WEBHOOK_TIMEOUT_MS: '10' }).variable).toBe('WEBHOOK_TIMEOUT_MS');
  });

  it('has the documented defaults', () => {
    const c = loadConfig({});
    const dataDir = path.resolve('./data');
    expect(c).toEqual({
      port: 8080,
      host: '127.0.0.1',
      dataDir,
      databaseUrl: `sqlite:${dataDir}/model-repository.db`,
      database: { dialect: 'sqlite', path: `${dataDir}/model-repository.db` },
      storageBackend: 'fs',
      storageDir: `${dataDir}/artifacts`,
      storageDirectIo: true,
      s3: null,
      uploadChunkSizeBytes: 8 * 1024 * 1024,
      uploadSessionTtlSeconds: 86_400,
      maxArtifactSizeBytes: 1_099_511_627_776,
      inspectMaxHeaderBytes: 104_857_600,
      corsOrigins: '*',
      logLevel: 'info',
      sweepIntervalSeconds: 60,
      listingCacheBytes: 67_108_864,
      webhookRetrySeconds: [5, 30, 120, 600, 1800, 7200],
      webhookAllowPrivateNetworks: false,
      webhookDeliveryRetentionDays: 30,
      webhookPollIntervalMs: 1000,
      webhookTimeoutMs: 10_000,
      validateResponses: true,
      headersTimeoutSeconds: 60,
      requestTimeoutSeconds: 3600,
      bodyIdleTimeoutSeconds: 60,
      keepAliveTimeoutSeconds: 65,
      refusedBodyLingerSeconds: 5,
      uploadConcurrentBodies: 4 * availableParallelism(),
      nodeEnv: 'development',
    });
  });

  it('is deeply frozen', () => {
    const c = loadConfig({ STORAGE_BACKEND: 's3', S3_BUCKET: 'models', CORS_ORIGINS: 'https://a.example' });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.s3)).toBe(true);
    expect(Object.isFrozen(c.corsOrigins)).toBe(true);
    expect(Object.isFrozen(c.database)).toBe(true);
    expect(() => {
      (c as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('reads every variable', () => {
    const c = loadConfig({
      PORT: '0',
      HOST: '0.0.0.0',
      DATA_DIR: '/srv/mr',
      DATABASE_URL: 'postgres://u:p@db:5432/mr',
      STORAGE_BACKEND: 'S3',
      STORAGE_DIR: '/srv/blobs',
      STORAGE_DIRECT_IO: 'false',
      S3_BUCKET: 'model-bucket',
      S3_REGION: 'eu-west-1',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      S3_FORCE_PATH_STYLE: 'true',
      S3_PREFIX: '/tenant-a/models/',
      S3_DOWNLOAD_MODE: 'proxy',
      UPLOAD_CHUNK_SIZE_BYTES: '1024',
      UPLOAD_SESSION_TTL_SECONDS: '60',
      MAX_ARTIFACT_SIZE_BYTES: '5000000000',
      INSPECT_MAX_HEADER_BYTES: '2097152',
      CORS_ORIGINS: 'https://a.example, http://localhost:3000/',
      LOG_LEVEL: 'debug',
      SWEEP_INTERVAL_SECONDS: '0',
      LISTING_CACHE_BYTES: '0',
      HEADERS_TIMEOUT_SECONDS: '30',
      REQUEST_TIMEOUT_SECONDS: '0',
      BODY_IDLE_TIMEOUT_SECONDS: '120',
      UPLOAD_CONCURRENT_BODIES: '0',
      KEEP_ALIVE_TIMEOUT_SECONDS: '5',
      REFUSED_BODY_LINGER_SECONDS: '0',
      NODE_ENV: 'production',
    });
    expect(c).toMatchObject({
      port: 0,
      host: '0.0.0.0',
      dataDir: '/srv/mr',
      databaseUrl: 'postgres://u:p@db:5432/mr',
      database: { dialect: 'postgresql', url: 'postgres://u:p@db:5432/mr' },
      storageBackend: 's3',
      storageDir: '/srv/blobs',
      storageDirectIo: false,
      s3: {
        bucket: 'model-bucket',
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:9000',
        forcePathStyle: true,
        prefix: 'tenant-a/models/',
        downloadMode: 'proxy',
      },
      uploadChunkSizeBytes: 1024,
      uploadSessionTtlSeconds: 60,
      maxArtifactSizeBytes: 5_000_000_000,
      inspectMaxHeaderBytes: 2_097_152,
      corsOrigins: ['https://a.example', 'http://localhost:3000'],
      logLevel: 'debug',
      sweepIntervalSeconds: 0,
      listingCacheBytes: 0,
      validateResponses: false,
      headersTimeoutSeconds: 30,
      requestTimeoutSeconds: 0,
      bodyIdleTimeoutSeconds: 120,
      keepAliveTimeoutSeconds: 5,
      refusedBodyLingerSeconds: 0,
      uploadConcurrentBodies: 0,
      nodeEnv: 'production',
    });
  });

  it('derives the database and storage paths from DATA_DIR', () => {
    const c = loadConfig({ DATA_DIR: 'rel/dir' });
    expect(c.dataDir).toBe(path.resolve('rel/dir'));
    expect(c.databaseUrl).toBe(`sqlite:${path.resolve('rel/dir')}/model-repository.db`);
    expect(c.storageDir).toBe(path.resolve('rel/dir/artifacts'));
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', S3_BUCKET: '', LOG_LEVEL: '  ' })).toMatchObject({ port: 8080, logLevel: 'info' });
  });

  it('S3 defaults and the S3_BUCKET requirement', () => {
    expect(loadConfig({ STORAGE_BACKEND: 's3', S3_BUCKET: 'b-1' }).s3).toEqual({
      bucket: 'b-1',
      region: 'us-east-1',
      endpoint: null,
      forcePathStyle: false,
      prefix: '',
      downloadMode: 'redirect',
    });
    expect(problemOf({ STORAGE_BACKEND: 's3' })).toEqual({ variable: 'S3_BUCKET', problem: 'is required when STORAGE_BACKEND=s3' });
    expect(problemOf({ STORAGE_BACKEND: 's3', S3_BUCKET: 'Bad_Bucket' }).variable).toBe('S3_BUCKET');
    // S3 variables are ignored by the fs backend.
    expect(loadConfig({ S3_ENDPOINT: 'http://x:1' }).s3).toBeNull();
  });

  it('VALIDATE_RESPONSES overrides the NODE_ENV default', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).validateResponses).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production' }).validateResponses).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', VALIDATE_RESPONSES: 'true' }).validateResponses).toBe(true);
    expect(loadConfig({ VALIDATE_RESPONSES: '0' }).validateResponses).toBe(false);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['STORAGE_BACKEND', 'gcs'],
    ['S3_DOWNLOAD_MODE', 'stream'],
    ['S3_FORCE_PATH_STYLE', 'yes please'],
    ['S3_ENDPOINT', 'localhost:9000'],
    ['S3_ENDPOINT', 'ftp://x'],
    ['UPLOAD_CHUNK_SIZE_BYTES', '0'],
    ['UPLOAD_CHUNK_SIZE_BYTES', '8MiB'],
    ['UPLOAD_CHUNK_SIZE_BYTES', '6000000000'],
    ['UPLOAD_SESSION_TTL_SECONDS', '0'],
    ['MAX_ARTIFACT_SIZE_BYTES', '0'],
    ['MAX_ARTIFACT_SIZE_BYTES', '99999999999999999999'],
    ['CORS_ORIGINS', 'not a url'],
    ['CORS_ORIGINS', 'https://a.example/path'],
    ['CORS_ORIGINS', ','],
    ['LOG_LEVEL', 'verbose'],
    ['SWEEP_INTERVAL_SECONDS', '-5'],
    ['LISTING_CACHE_BYTES', '-1'],
    ['LISTING_CACHE_BYTES', '32MiB'],
    ['VALIDATE_RESPONSES', 'maybe'],
    ['STORAGE_DIRECT_IO', 'auto'],
    ['HEADERS_TIMEOUT_SECONDS', '0'],
    ['HEADERS_TIMEOUT_SECONDS', '5s'],
    ['REQUEST_TIMEOUT_SECONDS', '-1'],
    ['REQUEST_TIMEOUT_SECONDS', '30'],
    ['BODY_IDLE_TIMEOUT_SECONDS', '1.5'],
    ['KEEP_ALIVE_TIMEOUT_SECONDS', '0'],
    ['REFUSED_BODY_LINGER_SECONDS', '601'],
    ['UPLOAD_CONCURRENT_BODIES', '-1'],
    ['UPLOAD_CONCURRENT_BODIES', 'many'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['DATABASE_URL', 'sqlite:'],
    ['DATABASE_URL', 'postgres://localhost'],
  ])('rejects %s=%s, naming the variable', (variable, value) => {
    const p = problemOf({ [variable]: value });
    expect(p.variable).toBe(variable);
    expect(p.problem.length).toBeGreaterThan(5);
  });

  it('takes a request timeout of 0 (none) or one no shorter than the headers timeout', () => {
    expect(loadConfig({ REQUEST_TIMEOUT_SECONDS: '0', HEADERS_TIMEOUT_SECONDS: '120' }).requestTimeoutSeconds).toBe(0);
    expect(loadConfig({ REQUEST_TIMEOUT_SECONDS: '120', HEADERS_TIMEOUT_SECONDS: '120' }).requestTimeoutSeconds).toBe(120);
    expect(problemOf({ REQUEST_TIMEOUT_SECONDS: '100', HEADERS_TIMEOUT_SECONDS: '120' })).toMatchObject({
      variable: 'REQUEST_TIMEOUT_SECONDS',
      problem: expect.stringContaining('HEADERS_TIMEOUT_SECONDS (120)'),
    });
  });

  it('reports every bad variable at once', () => {
    try {
      loadConfig({ PORT: 'x', LOG_LEVEL: 'loud' });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems.map((p) => p.variable).sort()).toEqual(['LOG_LEVEL', 'PORT']);
      expect((err as ConfigError).message).toMatch(/PORT: .*\n.*LOG_LEVEL|LOG_LEVEL: .*\n.*PORT/);
    }
  });
});

describe('parseDatabaseUrl', () => {
  it.each([
    ['sqlite::memory:', { dialect: 'sqlite', path: ':memory:' }],
    ['sqlite:/tmp/x.db', { dialect: 'sqlite', path: '/tmp/x.db' }],
    ['sqlite:///tmp/x.db', { dialect: 'sqlite', path: '/tmp/x.db' }],
    ['sqlite:./x.db', { dialect: 'sqlite', path: path.resolve('x.db') }],
    ['postgres://u@h/db', { dialect: 'postgresql', url: 'postgres://u@h/db' }],
    ['postgresql://u@h:5433/db?sslmode=require', { dialect: 'postgresql', url: 'postgresql://u@h:5433/db?sslmode=require' }],
  ])('%s', (url, expected) => {
    expect(parseDatabaseUrl(url)).toEqual(expected);
  });
});

describe('exitOnConfigError', () => {
  it('prints the message to stderr and exits with 2', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => {
      throw new Error('exit called');
    }) as never);
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(() => exitOnConfigError(new ConfigError([{ variable: 'PORT', problem: 'bad' }]))).toThrow('exit called');
      expect(exit).toHaveBeenCalledWith(2);
      expect(String(write.mock.calls[0]?.[0])).toContain('PORT: bad');
    } finally {
      exit.mockRestore();
      write.mockRestore();
    }
  });

  it('rethrows anything else', () => {
    const boom = new Error('boom');
    expect(() => exitOnConfigError(boom)).toThrow(boom);
  });
});
