// The SDK against the real server (a child process on SQLite + filesystem): large uploads from
// disk, an interrupted and resumed upload, a Blob upload, and byte-identical verified downloads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { open, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type StartedServer } from '../../../test/support/server.ts';
import { runCli } from '../../src/cli/main.ts';
import {
  createModelRepositoryClient,
  type ArtifactUploadSession,
  type ModelRepositoryClient,
  type UploadProgress,
} from '../../src/index.ts';

const MiB = 1024 * 1024;
const chunkSize = MiB;

let server: StartedServer;
let client: ModelRepositoryClient;
let dir: string;
let productId: string;
/** Chunk PUTs the client sent, by upload id. */
const chunkPuts = new Map<string, number[]>();

async function writeRandomFile(path: string, size: number): Promise<string> {
  const handle = await open(path, 'w');
  const hash = createHash('sha256');
  try {
    for (let done = 0; done < size; ) {
      const block = randomBytes(Math.min(4 * MiB, size - done));
      hash.update(block);
      await handle.write(block);
      done += block.byteLength;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

async function sha256OfFile(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

beforeAll(async () => {
  server = await startServer({ env: { UPLOAD_CHUNK_SIZE_BYTES: String(chunkSize) } });
  dir = await mkdtemp(join(tmpdir(), 'sdk-integration-'));
  client = createModelRepositoryClient({
    baseUrl: server.baseUrl,
    apiKey: server.apiKey,
    fetch: (request) => {
      const chunk = /\/uploads\/([^/]+)\/chunks\/(\d+)$/.exec(new URL(request.url).pathname);
      if (request.method === 'PUT' && chunk) {
        const list = chunkPuts.get(chunk[1]!) ?? [];
        list.push(Number(chunk[2]));
        chunkPuts.set(chunk[1]!, list);
      }
      return fetch(request);
    },
  });
  const model = await client.createModel('default', {
    name: `SDK integration ${randomUUID().slice(0, 8)}`,
    product_type: 'ML Model',
    environment: 'development',
    deployment_status: 'development',
  });
  productId = model.id;
}, 120_000);

afterAll(async () => {
  await server?.stop();
  server?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('SDK against the real server', () => {
  it('uploads a 50 MiB file from disk with concurrency 4 and downloads it byte-identical', async () => {
    const source = join(dir, 'weights-50m.safetensors');
    const size = 50 * MiB;
    const sha256 = await writeRandomFile(source, size);
    const progress: UploadProgress[] = [];
    let session: ArtifactUploadSession | undefined;

    const artifact = await client.uploadArtifact(productId, source, {
      concurrency: 4,
      artifact_kind: 'weights',
      version_label: 'v1',
      is_current: true,
      onSession: (s) => (session = s),
      onProgress: (p) => progress.push(p),
    });

    expect(artifact.size_bytes).toBe(size);
    expect(artifact.sha256).toBe(sha256);
    expect(artifact.file_name).toBe('weights-50m.safetensors');
    expect(artifact.is_current).toBe(true);
    expect(artifact.status).toBe('available');
    expect(session!.chunk_size_bytes).toBe(chunkSize);
    expect(session!.chunk_count).toBe(50);
    expect([...chunkPuts.get(session!.id)!].sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
    expect(progress.at(-1)).toEqual({ uploadedBytes: size, totalBytes: size });

    const target = join(dir, 'downloaded-50m.safetensors');
    const downloaded = await client.downloadArtifact(productId, artifact.id, { to: target });
    expect(downloaded.id).toBe(artifact.id);
    expect(await sha256OfFile(target)).toBe(sha256);
    expect(Buffer.compare(await readFile(target), await readFile(source))).toBe(0);

    const listed = await client.listArtifacts(productId);
    expect(listed.map((a) => a.id)).toContain(artifact.id);
  }, 120_000);

  it('resumes an upload interrupted mid-way, sending only the missing chunks', async () => {
    const source = join(dir, 'checkpoint-20m.bin');
    const size = 20 * MiB + 12_345; // 21 chunks, the last one short
    const sha256 = await writeRandomFile(source, size);
    const controller = new AbortController();
    let session: ArtifactUploadSession | undefined;

    const interrupted = await client
      .uploadArtifact(productId, source, {
        artifact_kind: 'checkpoint',
        concurrency: 2,
        signal: controller.signal,
        onSession: (s) => (session = s),
        onProgress: ({ uploadedBytes }) => {
          if (uploadedBytes >= 6 * MiB) controller.abort();
        },
      })
      .catch((error: unknown) => error);
    expect((interrupted as Error).name).toBe('AbortError');

    // A chunk whose body was fully sent before the abort may still be recorded by the server a
    // moment later: read the session once it has stopped changing.
    let state = await client.getUpload(productId, session!.id);
    for (let i = 0; i < 50; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const next = await client.getUpload(productId, session!.id);
      if (next.received_bytes === state.received_bytes) break;
      state = next;
    }
    expect(state.status).toBe('uploading');
    expect(state.chunk_count).toBe(21);
    expect(state.received_chunks.length).toBeGreaterThanOrEqual(6);
    expect(state.received_chunks.length).toBeLessThan(21);
    const received = new Set(state.received_chunks);
    const sentBefore = chunkPuts.get(session!.id)!.length;

    const progress: UploadProgress[] = [];
    const artifact = await client.uploadArtifact(productId, source, { resume: session!.id, onProgress: (p) => progress.push(p) });
    expect(artifact.sha256).toBe(sha256);
    expect(artifact.size_bytes).toBe(size);
    expect(progress[0]!.uploadedBytes).toBe(state.received_bytes);

    const resent = chunkPuts.get(session!.id)!.slice(sentBefore);
    expect(resent.filter((i) => received.has(i))).toEqual([]);
    expect(new Set([...resent, ...received]).size).toBe(21);
    expect((await client.getUpload(productId, session!.id)).status).toBe('completed');

    const target = join(dir, 'checkpoint-copy.bin');
    await client.downloadArtifact(productId, artifact.id, { to: target });
    expect(await sha256OfFile(target)).toBe(sha256);
  }, 120_000);

  it('continues a download that breaks off with Range, byte-identical', async () => {
    const bytes = randomBytes(9 * MiB + 5);
    const artifact = await client.uploadArtifact(productId, bytes, { file_name: 'adapter.bin', artifact_kind: 'adapter' });
    const ranges: (string | null)[] = [];
    let cut = false;
    const flaky = createModelRepositoryClient({
      baseUrl: server.baseUrl,
      apiKey: server.apiKey,
      retry: { sleep: async () => {} },
      fetch: async (request) => {
        const response = await fetch(request);
        if (!new URL(request.url).pathname.endsWith('/download')) return response;
        ranges.push(request.headers.get('Range'));
        if (cut) return response;
        cut = true;
        // Pass the first 4 MiB through, then fail like a dropped connection.
        let passed = 0;
        const reader = response.body!.getReader();
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (done || passed >= 4 * MiB) {
              await reader.cancel();
              controller.error(new TypeError('terminated'));
              return;
            }
            passed += value.byteLength;
            controller.enqueue(value);
          },
        });
        return new Response(body, { status: response.status, headers: response.headers });
      },
    });
    const target = join(dir, 'adapter.bin');
    await flaky.downloadArtifact(productId, artifact.id, { to: target });
    expect(Buffer.compare(await readFile(target), bytes)).toBe(0);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeNull();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(ranges[1]!)![0])).toBeGreaterThanOrEqual(4 * MiB);
  }, 60_000);

  it('uploads a Blob and reads it back through a WritableStream', async () => {
    const bytes = randomBytes(3 * MiB + 77);
    const blob = new Blob([bytes], { type: 'application/x-test' });
    const artifact = await client.uploadArtifact(productId, blob, { file_name: 'tokenizer.bin', artifact_kind: 'tokenizer' });
    expect(artifact.content_type).toBe('application/x-test');
    expect(artifact.size_bytes).toBe(bytes.byteLength);
    expect(artifact.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));

    const parts: Uint8Array[] = [];
    await client.downloadArtifact(productId, artifact.id, {
      to: new WritableStream<Uint8Array>({ write: (chunk) => void parts.push(chunk) }),
    });
    expect(Buffer.compare(Buffer.concat(parts), bytes)).toBe(0);
  }, 60_000);

  it('uploads and downloads an empty file', async () => {
    const artifact = await client.uploadArtifact(productId, new Blob([]), { file_name: 'empty.txt' });
    expect(artifact.size_bytes).toBe(0);
    expect(artifact.sha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const target = join(dir, 'empty.txt');
    await client.downloadArtifact(productId, artifact.id, { to: target });
    expect((await readFile(target)).byteLength).toBe(0);
  }, 30_000);

  it('model-repo uploads, lists and downloads, and explains a 404', async () => {
    const out = { text: '', write(t: string) { this.text += t; return true; } };
    const err = { text: '', write(t: string) { this.text += t; return true; } };
    const io = { stdout: out, stderr: err, env: { MODEL_REPO_URL: server.baseUrl, MODEL_REPO_API_KEY: server.apiKey }, cwd: dir };
    const source = join(dir, 'cli-model.gguf');
    const sha256 = await writeRandomFile(source, 3 * MiB + 1);

    expect(await runCli(['upload', productId, source, '--kind', 'weights', '--json'], io)).toBe(0);
    const artifact = JSON.parse(out.text) as { id: string; sha256: string };
    expect(artifact.sha256).toBe(sha256);

    out.text = '';
    expect(await runCli(['artifacts', 'list', productId, '--json'], io)).toBe(0);
    expect((JSON.parse(out.text) as { id: string }[]).map((a) => a.id)).toContain(artifact.id);

    out.text = '';
    expect(await runCli(['download', productId, artifact.id, '-o', join(dir, 'cli-copy.gguf')], io)).toBe(0);
    expect(await sha256OfFile(join(dir, 'cli-copy.gguf'))).toBe(sha256);

    expect(err.text).toBe('');
    expect(await runCli(['artifacts', 'list', '00000000-0000-4000-8000-000000000000'], io)).toBe(1);
    expect(err.text).toMatch(/^model-repo: error: .+ \(HTTP 404 not_found, request id [^)]+\)\n$/);
  }, 60_000);

  it('model-repo alias set | ls | history | rm and review, with versions named by number or alias', async () => {
    const out = { text: '', write(t: string) { this.text += t; return true; } };
    const err = { text: '', write(t: string) { this.text += t; return true; } };
    const io = { stdout: out, stderr: err, env: { MODEL_REPO_URL: server.baseUrl, MODEL_REPO_API_KEY: server.apiKey }, cwd: dir };
    const cli = async (...args: string[]) => {
      out.text = '';
      err.text = '';
      return runCli(args, io);
    };
    const m = await client.createModel('default', {
      name: `CLI aliases ${randomUUID().slice(0, 8)}`,
      product_type: 'ML Model',
      environment: 'development',
      deployment_status: 'development',
    });
    const v1 = await client.createVersion(m.id, {});
    const v2 = await client.createVersion(m.id, {});

    expect(await cli('alias', 'set', m.id, 'production', '1', '--reason', 'first release', '--json')).toBe(0);
    const set = JSON.parse(out.text) as { version_id: string; etag: string; created: boolean };
    expect([set.version_id, set.created]).toEqual([v1.id, true]);
    expect(await cli('alias', 'set', m.id, 'staging', v2.id)).toBe(0);
    expect(out.text).toContain('staging → version 2');
    // A stale ETag: the server refuses, the CLI says why.
    expect(await cli('alias', 'set', m.id, 'production', 'staging', '--if-match', set.etag)).toBe(0);
    expect(await cli('alias', 'set', m.id, 'production', '1', '--if-match', set.etag)).toBe(1);
    expect(err.text).toMatch(/412 precondition_failed/);

    expect(await cli('alias', 'ls', m.id)).toBe(0);
    expect(out.text.split('\n').filter((l) => /^(production|staging)\b/.test(l)).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ['production', '2'],
      ['staging', '2'],
    ]);
    expect(await cli('alias', 'rm', m.id, 'staging')).toBe(0);
    expect(await cli('alias', 'history', m.id, 'production', '--json')).toBe(0);
    const history = JSON.parse(out.text) as { version_id: string; previous_version_id: string | null; reason: string | null }[];
    expect(history.map((h) => [h.version_id, h.previous_version_id, h.reason])).toEqual([
      [v2.id, v1.id, null],
      [v1.id, null, 'first release'],
    ]);

    // The owner created the versions: rejecting is allowed, approving is not (four eyes).
    expect(await cli('review', m.id, 'production', '--reject', '--comment', 'needs an eval report', '--json')).toBe(0);
    expect(JSON.parse(out.text)).toMatchObject({ version_id: v2.id, decision: 'rejected', comment: 'needs an eval report' });
    expect(await cli('review', m.id, '2', '--approve')).toBe(1);
    expect(err.text).toMatch(/self_approval_forbidden/);
    expect(await cli('review', m.id, '2', '--approve', '--reject')).toBe(2);
    expect(await cli('alias', 'move', m.id)).toBe(2);
    expect((await client.getVersion(m.id, 2)).approval_status).toBe('rejected');
  }, 60_000);

  it('pages through the space with listModels', async () => {
    const pages = [];
    for await (const page of client.listModels({ space: 'default' }, { limit: 1, include_archived: true })) pages.push(page);
    expect(pages.length).toBeGreaterThanOrEqual(1);
    expect(pages.flatMap((p) => p.items.map((m) => m.id))).toContain(productId);
    expect(pages.at(-1)!.hasMore).toBe(false);
  }, 30_000);
});
