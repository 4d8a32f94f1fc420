import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliIO } from '../../src/cli/main.ts';
import { ProgressBar, formatBytes } from '../../src/cli/progress.ts';
import type { ModelSummary } from '../../src/index.ts';
import { API_KEY, API_ORIGIN, connectionReset, FakeModelRepository, problem, randomBytes, sha256Hex } from '../support/fake-server.ts';

const productId = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';

class Capture {
  text = '';
  isTTY = false;
  columns = 100;
  write(chunk: string) {
    this.text += chunk;
    return true;
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sdk-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function io(fake: FakeModelRepository, env: Record<string, string> = { MODEL_REPO_URL: API_ORIGIN, MODEL_REPO_API_KEY: API_KEY }) {
  const stdout = new Capture();
  const stderr = new Capture();
  const cliIo: CliIO = { stdout, stderr, env, fetch: fake.fetch, cwd: dir };
  return { stdout, stderr, cliIo };
}

describe('model-repo CLI', () => {
  it('uploads a file with the given fields and prints the artifact as JSON', async () => {
    const fake = new FakeModelRepository({ chunkSize: 1000 });
    const { stdout, stderr, cliIo } = io(fake);
    const bytes = randomBytes(2500);
    const file = join(dir, 'model.onnx');
    await writeFile(file, bytes);
    const code = await runCli(
      ['upload', productId, file, '--kind', 'weights', '--version-label', 'v3', '--current', '--metadata', '{"format":"onnx"}', '--concurrency', '2', '--json'],
      cliIo,
    );
    expect(stderr.text).toBe('');
    expect(code).toBe(0);
    const artifact = JSON.parse(stdout.text) as { sha256: string; file_name: string; is_current: boolean };
    expect(artifact.sha256).toBe(sha256Hex(bytes));
    expect(artifact.file_name).toBe('model.onnx');
    expect(artifact.is_current).toBe(true);
    expect(fake.requestsTo('POST', /\/uploads$/)[0]!.json).toMatchObject({
      artifact_kind: 'weights',
      version_label: 'v3',
      is_current: true,
      metadata: { format: 'onnx' },
      total_size_bytes: 2500,
    });
  });

  it('on interruption exits 130 and prints how to resume the upload', async () => {
    const fake = new FakeModelRepository({ chunkSize: 10 });
    const controller = new AbortController();
    fake.interceptors.push((request) => {
      if (request.url.endsWith('/chunks/1')) controller.abort();
      return undefined;
    });
    const { stderr, cliIo } = io(fake);
    cliIo.signal = controller.signal;
    const file = join(dir, 'w.bin');
    await writeFile(file, randomBytes(30));
    expect(await runCli(['upload', productId, file, '--concurrency', '1'], cliIo)).toBe(130);
    const uploadId = [...fake.sessions.keys()][0]!;
    expect(stderr.text).toContain(`model-repo upload ${productId} ${file} --resume ${uploadId}`);
    expect(stderr.text).toContain('interrupted');
    expect(fake.requestsTo('POST', /\/complete$/)).toHaveLength(0);

    const resumed = io(fake);
    expect(await runCli(['upload', productId, file, '--resume', uploadId, '--json'], resumed.cliIo)).toBe(0);
    expect(JSON.parse(resumed.stdout.text)).toMatchObject({ size_bytes: 30 });
  });

  it('on a network failure exits 1 and prints how to resume the upload', async () => {
    const fake = new FakeModelRepository({ chunkSize: 10 });
    fake.interceptors.push((request) => {
      if (request.url.endsWith('/chunks/2')) throw connectionReset();
      return undefined;
    });
    const { stderr, cliIo } = io(fake);
    cliIo.retry = { retries: 1, sleep: async () => {} };
    const file = join(dir, 'w.bin');
    await writeFile(file, randomBytes(30));
    expect(await runCli(['upload', productId, file], cliIo)).toBe(1);
    expect(stderr.text).toMatch(/--resume [0-9a-f-]{36}/);
    expect(stderr.text).toMatch(/cannot reach the server: .*ECONNRESET/);
  });

  it('downloads an artifact to its file name, refuses to overwrite without --force', async () => {
    const fake = new FakeModelRepository();
    const bytes = randomBytes(4000);
    const artifact = fake.addArtifact(productId, bytes, 'weights.safetensors');
    const first = io(fake);
    expect(await runCli(['download', productId, artifact.id], first.cliIo)).toBe(0);
    expect(new Uint8Array(await readFile(join(dir, 'weights.safetensors')))).toEqual(bytes);
    expect(first.stdout.text).toContain('verified');

    const second = io(fake);
    expect(await runCli(['download', productId, artifact.id], second.cliIo)).toBe(2);
    expect(second.stderr.text).toMatch(/exists; pass --force/);

    const third = io(fake);
    expect(await runCli(['download', productId, artifact.id, '--force', '-o', 'copy.bin', '--json'], third.cliIo)).toBe(0);
    expect(JSON.parse(third.stdout.text)).toMatchObject({ path: join(dir, 'copy.bin'), artifact: { id: artifact.id } });
  });

  it('does not let a server file name escape the output directory', async () => {
    const fake = new FakeModelRepository();
    const artifact = fake.addArtifact(productId, randomBytes(10), '../../etc/evil');
    const { cliIo } = io(fake);
    expect(await runCli(['download', productId, artifact.id], cliIo)).toBe(0);
    expect((await readFile(join(dir, 'evil'))).byteLength).toBe(10);
  });

  it('lists models as a table, or all pages as JSON, honouring --limit', async () => {
    const fake = new FakeModelRepository();
    fake.models = Array.from(
      { length: 5 },
      (_, i) =>
        ({
          id: `id-${i}`,
          slug: `m-${i}`,
          name: `Model ${i}`,
          product_type: 'ML Model',
          deployment_status: 'production',
          updated_at: '2025-01-01T00:00:00Z',
        }) as unknown as ModelSummary,
    );
    const text = io(fake);
    expect(await runCli(['models', 'list', '--space', 'default', '--page-size', '2'], text.cliIo)).toBe(0);
    const lines = text.stdout.text.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+SLUG\s+TYPE\s+DEPLOYMENT\s+UPDATED\s+NAME$/);
    expect(lines).toHaveLength(6);
    expect(fake.requests).toHaveLength(3);

    const json = io(fake);
    expect(await runCli(['models', 'list', '--org', 'acme', '--limit', '3', '--json', '--type', 'ML Model', '--type', 'Agent'], json.cliIo)).toBe(0);
    expect((JSON.parse(json.stdout.text) as ModelSummary[]).map((m) => m.id)).toEqual(['id-0', 'id-1', 'id-2']);
    expect(fake.requests.at(-1)!.url.searchParams.getAll('types')).toEqual(['ML Model', 'Agent']);
  });

  it('lists artifacts', async () => {
    const fake = new FakeModelRepository();
    fake.addArtifact(productId, randomBytes(2048), 'a.onnx');
    const { stdout, cliIo } = io(fake);
    expect(await runCli(['artifacts', 'list', productId], cliIo)).toBe(0);
    expect(stdout.text).toMatch(/a\.onnx/);
    expect(stdout.text).toMatch(/2\.0 KiB/);
  });

  it('events prints the trail newest first (the changed fields of updates), or JSON; filters and scope go to the server', async () => {
    const fake = new FakeModelRepository();
    const trail = [
      { id: 'e-2', type: 'model.updated', occurred_at: '2026-11-27T10:15:03Z', actor_id: 'u-1', subject_id: productId, data: { changes: { description: {}, framework: {} } } },
      { id: 'e-1', type: 'artifact.created', occurred_at: '2026-11-27T09:02:41Z', actor_id: 'u-1', subject_id: 'a-1', data: { id: 'a-1' } },
      { id: 'e-0', type: 'model.created', occurred_at: '2026-11-26T08:00:00Z', actor_id: null, subject_id: productId, data: {} },
    ];
    fake.interceptors.push((_request, recorded) => {
      if (!/\/events$/.test(recorded.url.pathname)) return undefined;
      const skip = Number(recorded.url.searchParams.get('skip'));
      const limit = Number(recorded.url.searchParams.get('limit'));
      const page = trail.slice(skip, skip + limit);
      const headers = { 'Content-Type': 'application/json', 'X-Total-Count': '3', 'X-Has-More': String(skip + page.length < 3) };
      return new Response(JSON.stringify(page), { status: 200, headers });
    });
    const text = io(fake);
    expect(await runCli(['events', '--product', productId, '--page-size', '2'], text.cliIo)).toBe(0);
    const lines = text.stdout.text.trim().split('\n');
    expect(lines[0]).toMatch(/^OCCURRED\s+TYPE\s+ACTOR\s+SUBJECT\s+CHANGES$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/).slice(0, 2))).toEqual([
      ['2026-11-27T10:15:03Z', 'model.updated'],
      ['2026-11-27T09:02:41Z', 'artifact.created'],
      ['2026-11-26T08:00:00Z', 'model.created'],
    ]);
    expect(lines[1]).toMatch(/description, framework$/);
    expect(lines[3]).toMatch(/model\.created\s+-\s+/);
    expect(fake.requests.map((r) => r.url.pathname)).toEqual(Array(2).fill(`/api/v1.0/catalog/products/${productId}/events`));

    const json = io(fake);
    const args = ['events', '--space', 'ml', '--type', 'model.updated', '--type', 'artifact.created', '--since', '2026-11-01T00:00:00Z', '--limit', '1', '--json'];
    expect(await runCli(args, json.cliIo)).toBe(0);
    expect((JSON.parse(json.stdout.text) as { id: string }[]).map((e) => e.id)).toEqual(['e-2']);
    const last = fake.requests.at(-1)!.url;
    expect(last.pathname).toBe('/api/v1.0/catalog/spaces/ml/events');
    expect(last.searchParams.getAll('types')).toEqual(['model.updated', 'artifact.created']);
    expect(last.searchParams.get('since')).toBe('2026-11-01T00:00:00Z');
    expect(last.searchParams.get('limit')).toBe('1');

    const neither = io(fake);
    expect(await runCli(['events'], neither.cliIo)).toBe(2);
    expect(neither.stderr.text).toContain('give exactly one of --product <id> or --space <slug>');
  });

  it('inspect shows the stored inspection; --refresh has the server read the header again', async () => {
    const fake = new FakeModelRepository();
    const artifact = fake.addArtifact(productId, randomBytes(64), 'tiny.gguf');
    const { stdout, cliIo } = io(fake);
    expect(await runCli(['inspect', productId, artifact.id], cliIo)).toBe(0);
    expect(stdout.text).toBe('tiny.gguf: not a recognised weight format (or not inspected yet)\n');
    expect(fake.requestsTo('POST', /\/inspect$/)).toHaveLength(0);

    fake.inspectionResult = {
      format: 'gguf',
      parameter_count: 8030261248,
      tensor_count: 291,
      dtypes: { F32: 66, Q4_K: 225 },
      architecture: 'llama',
      quantization: 'Q4_K_M',
      metadata: { 'general.name': 'Tiny' },
      warnings: [],
      error: null,
    };
    const refreshed = io(fake);
    expect(await runCli(['inspect', productId, artifact.id, '--refresh'], refreshed.cliIo)).toBe(0);
    expect(fake.requestsTo('POST', /\/inspect$/)).toHaveLength(1);
    expect(refreshed.stdout.text).toBe(
      [
        'tiny.gguf: gguf',
        '  parameters    8,030,261,248',
        '  tensors       291 (F32 66, Q4_K 225)',
        '  architecture  llama',
        '  quantization  Q4_K_M',
        '',
      ].join('\n'),
    );
  });

  it('inspect prints the warnings of a pickle, and JSON with --json', async () => {
    const fake = new FakeModelRepository();
    const artifact = fake.addArtifact(productId, randomBytes(64), 'model.pkl');
    artifact.inspection = {
      format: 'pickle',
      parameter_count: null,
      tensor_count: null,
      dtypes: null,
      architecture: null,
      quantization: null,
      metadata: { globals: ['posix.system'], pickle_protocol: 4 },
      warnings: ['pickle_code_execution', 'pickle_dangerous_global'],
      error: null,
    };
    const text = io(fake);
    expect(await runCli(['inspect', productId, artifact.id], text.cliIo)).toBe(0);
    expect(text.stdout.text).toBe(
      [
        'model.pkl: pickle',
        '  imports  posix.system',
        '  warning  loading this file runs a pickle, which can execute code',
        '  warning  the pickle imports a known code-execution entry point',
        '',
      ].join('\n'),
    );
    const json = io(fake);
    expect(await runCli(['inspect', productId, artifact.id, '--json'], json.cliIo)).toBe(0);
    expect(JSON.parse(json.stdout.text)).toEqual({ artifact_id: artifact.id, file_name: 'model.pkl', inspection: artifact.inspection });
  });

  it('explains a server error with its code and request id and exits 1', async () => {
    const fake = new FakeModelRepository();
    fake.interceptors.push(() => problem(404, 'not_found', 'Model not found'));
    const { stderr, cliIo } = io(fake);
    expect(await runCli(['artifacts', 'list', productId], cliIo)).toBe(1);
    expect(stderr.text).toBe('model-repo: error: Model not found (HTTP 404 not_found, request id req-404)\n');
  });

  it('never writes terminal control characters from server data: names, file names and error details are shown escaped', async () => {
    const hostile = 'weights\u001b]0;owned\u0007\u001b[2J\r\u009b31m\u202eexe.onnx';
    const fake = new FakeModelRepository();
    fake.addArtifact(productId, randomBytes(100), hostile);
    const text = io(fake);
    expect(await runCli(['artifacts', 'list', productId], text.cliIo)).toBe(0);
    // eslint-disable-next-line no-control-regex
    const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;
    expect(text.stdout.text).not.toMatch(raw);
    expect(text.stdout.text).toContain('weights\\u001b]0;owned\\u0007\\u001b[2J\\u000d\\u009b31m\\u202eexe.onnx');

    // JSON output: the same value, nothing raw (C1 and bidi characters escaped as JSON escapes).
    const json = io(fake);
    expect(await runCli(['artifacts', 'list', productId, '--json'], json.cliIo)).toBe(0);
    expect(json.stdout.text).not.toMatch(raw);
    expect((JSON.parse(json.stdout.text) as { file_name: string }[])[0]!.file_name).toBe(hostile);

    const failing = new FakeModelRepository();
    failing.interceptors.push(() => problem(404, 'not_found', 'No model \u001b[31mred\u001b[0m here'));
    const error = io(failing);
    expect(await runCli(['artifacts', 'list', productId], error.cliIo)).toBe(1);
    expect(error.stderr.text).not.toMatch(raw);
    expect(error.stderr.text).toContain('No model \\u001b[31mred\\u001b[0m here');
  });

  it('lists field errors of a 422', async () => {
    const fake = new FakeModelRepository();
    fake.interceptors.push(
      () =>
        new Response(
          JSON.stringify({
            type: 'about:blank',
            title: 'x',
            status: 422,
            detail: 'Invalid query',
            code: 'validation_error',
            errors: [{ loc: ['query', 'deployment_status'], msg: 'must be one of development, staging, production, retired', type: 'enum' }],
          }),
          { status: 422, headers: { 'Content-Type': 'application/problem+json' } },
        ),
    );
    const { stderr, cliIo } = io(fake);
    expect(await runCli(['models', 'list', '--space', 's', '--deployment-status', 'prod'], cliIo)).toBe(1);
    expect(stderr.text).toContain('query.deployment_status: must be one of');
  });

  it('reports an unreachable server clearly', async () => {
    const fake = new FakeModelRepository();
    const { stderr, cliIo } = io(fake, { MODEL_REPO_URL: 'http://unreachable.test', MODEL_REPO_API_KEY: 'k' });
    const retry = { retries: 2, sleep: async () => {} };
    expect(await runCli(['artifacts', 'list', productId], { ...cliIo, retry, fetch: () => Promise.reject(connectionReset()) })).toBe(1);
    expect(stderr.text).toMatch(/^model-repo: cannot reach the server: .*ECONNRESET/);
  });

  it('takes --url and --api-key over the environment', async () => {
    const fake = new FakeModelRepository();
    const { cliIo } = io(fake, { MODEL_REPO_URL: 'http://wrong.test', MODEL_REPO_API_KEY: 'wrong' });
    expect(await runCli(['artifacts', 'list', productId, '--url', API_ORIGIN, '--api-key', API_KEY], cliIo)).toBe(0);
    expect(fake.requests[0]!.headers.get('Authorization')).toBe(`Bearer ${API_KEY}`);
  });

  it('exits 2 with a message on usage errors', async () => {
    const fake = new FakeModelRepository();
    for (const argv of [['frobnicate'], ['models'], ['upload', productId], ['models', 'list'], ['download', 'a', 'b', '--bogus'], []]) {
      const { stderr, cliIo } = io(fake);
      expect(await runCli(argv, cliIo), argv.join(' ')).toBe(2);
      expect(stderr.text).toMatch(/^model-repo: |^Usage:/);
    }
    const missing = io(fake, {});
    expect(await runCli(['artifacts', 'list', productId], missing.cliIo)).toBe(2);
    expect(missing.stderr.text).toMatch(/MODEL_REPO_URL/);
    expect(fake.requests).toHaveLength(0);
  });

  it('prints help and the version', async () => {
    const fake = new FakeModelRepository();
    const help = io(fake);
    expect(await runCli(['upload', '--help'], help.cliIo)).toBe(0);
    expect(help.stdout.text).toMatch(/--resume <upload-id>/);
    const version = io(fake);
    expect(await runCli(['--version'], version.cliIo)).toBe(0);
    expect(version.stdout.text).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe('progress bar', () => {
  it('draws nothing when stderr is not a terminal', () => {
    const out = new Capture();
    const bar = new ProgressBar(out, 'f', 100);
    bar.update(50);
    bar.finish();
    expect(out.text).toBe('');
  });

  it('redraws one line in place on a terminal, throttled, and ends it', () => {
    const out = new Capture();
    out.isTTY = true;
    let now = 0;
    const bar = new ProgressBar(out, 'model.bin', 1024 * 1024, { now: () => now });
    bar.update(0);
    now = 50;
    bar.update(1000); // within the interval: not drawn
    now = 1000;
    bar.update(512 * 1024);
    bar.finish();
    const frames = out.text.split('\r\x1b[2K').filter(Boolean);
    expect(frames).toHaveLength(3);
    expect(frames[1]).toMatch(/^model\.bin \[#+\.+\]  50% 512\.0 KiB\/1\.0 MiB 512\.0 KiB\/s ETA 0:01$/);
    expect(out.text.endsWith('\n')).toBe(true);
  });

  it('formats sizes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(50 * 1024 * 1024)).toBe('50.0 MiB');
  });
});
