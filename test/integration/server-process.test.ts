import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildServer } from '../../scripts/build.ts';
import { startServer, type StartedServer } from '../support/server.ts';
import { ArtifactClient, MiB, randomData, sha256 } from '../support/artifacts.ts';

describe('server process', () => {
  let server: StartedServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
    server?.cleanup();
  });

  it('prints a first-start API key that authenticates', async () => {
    expect(server.apiKey).toMatch(/^mr_[A-Za-z0-9_-]{40,}$/);
    const res = await fetch(`${server.baseUrl}/api/v1.0/catalog/spaces/default/model-repository/models`, {
      headers: { Authorization: `Bearer ${server.apiKey}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-total-count')).toBe('0');
    expect(existsSync(join(server.dataDir, 'model-repository.db'))).toBe(true);
  });

  it('answers health and readiness, and serves its OpenAPI document without a key', async () => {
    expect(await (await fetch(`${server.baseUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', checks: { database: 'ok', storage: 'ok' } });
    const doc = await fetch(`${server.baseUrl}/api/v1.0/openapi.yaml`);
    expect(doc.status).toBe(200);
    expect(await doc.text()).toContain('openapi: 3.1.0');
  });

  it('echoes a request id and logs it', async () => {
    const res = await fetch(`${server.baseUrl}/api/v1.0/catalog/spaces/default/model-repository/models`, {
      headers: { Authorization: 'Bearer wrong', 'X-Request-Id': 'trace-abc-123' },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await new Promise((r) => setTimeout(r, 100));
    expect(server.output()).toMatch(/"request_id":"trace-abc-123".*"status":401/);
  });

  it('a client still sending a refused chunk gets the answer, not a reset (the close lingers)', async () => {
    // In a process of its own, the server can answer from the headers while the client is still
    // writing the body; the connection then closes, but only after the rest has drained.
    const client = new ArtifactClient(server.baseUrl, server.apiKey);
    const pid = await client.createModel('Lingering close');
    const init = await client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: 3 * MiB });
    expect(init.status).toBe(201);
    const chunkSize = init.body.chunk_size_bytes as number;
    const id = init.body.id as string;
    const refused: [number, number][] = [];
    for (let i = 0; i < 5; i++) refused.push([0, 3 * MiB - 1], [0, 3 * MiB + 1], [99, 3 * MiB], [0, chunkSize + 4 * MiB]);
    for (const [index, length] of refused) {
      const res = await client.putChunk(pid, id, index, randomData(length));
      expect(res.status, `chunk ${index} of ${length} bytes: ${res.text}`).toBe(422);
      expect(res.headers.get('connection')).toBe('close');
    }
    expect((await client.session(pid, id)).body).toMatchObject({ received_chunks: [], received_bytes: 0 });
  });

  it('answers requests the HTTP parser refuses (oversized headers, a malformed request line) with problem+json', async () => {
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(server.port, '127.0.0.1', () => socket.end(request));
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
    const problemOf = (response: string) => {
      const [head, body] = response.split('\r\n\r\n', 2) as [string, string];
      return { statusLine: head.split('\r\n')[0], head, body: JSON.parse(body) as Record<string, unknown> };
    };

    const big = problemOf(await raw(`GET /api/v1.0/openapi.yaml HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(big.statusLine).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(big.head).toMatch(/content-type: application\/problem\+json/i);
    expect(big.body).toMatchObject({ type: 'about:blank', status: 431, code: 'bad_request' });
    expect(big.body.detail).toMatch(/16 KiB/);

    const garbled = problemOf(await raw('GET /healthz HTTP/1.1 extra\r\n\r\n'));
    expect(garbled.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(garbled.body).toMatchObject({ status: 400, code: 'bad_request' });
    expect(garbled.body.detail).toEqual(expect.any(String));
  });

  it('does not print a key again on the next start, and stops gracefully on SIGTERM', async () => {
    await server.stop();
    expect(server.process.exitCode).toBe(0);
    const again = await startServer({ dataDir: server.dataDir });
    try {
      expect(again.apiKey).toBe('');
      const res = await fetch(`${again.baseUrl}/api/v1.0/catalog/spaces/default/model-repository/models`, {
        headers: { Authorization: `Bearer ${server.apiKey}` },
      });
      expect(res.status).toBe(200);
    } finally {
      await again.stop();
    }
  });
});

describe('production build (what `npm start` runs)', () => {
  // Inside the repository, so the bundle resolves its packages from node_modules like dist/ does.
  const outdir = join(process.cwd(), '.tmp', `build-${randomUUID()}`);
  let server: StartedServer;
  beforeAll(async () => {
    const entry = await buildServer(outdir);
    server = await startServer({ entry, env: { UPLOAD_CHUNK_SIZE_BYTES: String(5 * MiB) } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    server?.cleanup();
    rmSync(outdir, { recursive: true, force: true });
  });

  it('starts from dist/ without tsx and serves its OpenAPI document', async () => {
    expect(server.apiKey).toMatch(/^mr_/);
    expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${server.baseUrl}/api/v1.0/openapi.yaml`)).text()).toContain('openapi: 3.1.0');
  });

  it('takes a chunked upload with its prefix digest computed on the hash thread', async () => {
    const client = new ArtifactClient(server.baseUrl, server.apiKey);
    const pid = await client.createModel('Built server');
    const data = randomData(3 * 5 * MiB + 321);
    const { artifact } = await client.upload(pid, data, {}, { parallel: 2 });
    expect(artifact).toMatchObject({ sha256: sha256(data), size_bytes: data.length, status: 'available' });
    const download = await client.download(pid, artifact.id);
    expect(download.status).toBe(200);
    // The worker module was found next to the bundle: no fold failed and fell back to reading.
    expect(server.output()).not.toContain('could not extend the upload digest');
  });

  it('keeps the S3 store (and the AWS SDK) in a chunk of its own that loads on its own', async () => {
    const chunk = readdirSync(join(outdir, 'server')).find((f) => f.startsWith('s3-blob-store-'));
    expect(chunk).toBeDefined();
    const mod = (await import(pathToFileURL(join(outdir, 'server', chunk!)).href)) as Record<string, unknown>;
    expect(Object.values(mod).some((v) => typeof v === 'function' && (v as { name?: string }).name === 'S3BlobStore')).toBe(true);
  });
});
