/**
 * The real server as child processes on filesystem + SQLite and on S3 + PostgreSQL:
 * SIGKILL mid-chunk and mid-completion (a restart on the same data resumes and completes; no
 * artifact is ever available with wrong bytes), and two processes on one database and one storage
 * sharing the chunks and the completion of one upload.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArtifactClient,
  chunkOf,
  randomData,
  rawPut,
  sha256,
  startArtifactServer,
  storageTargets,
  tempDir,
  type StorageTarget,
} from '../../support/artifacts.ts';
import type { StartedServer } from '../../support/server.ts';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`server processes on ${factory.name}`, () => {
    let target: StorageTarget;
    /** The first start on a database prints the owner's key; later starts on it do not. */
    let key = '';
    const servers: StartedServer[] = [];
    const dirs: string[] = [];

    beforeAll(async () => {
      target = await factory.create!();
    });
    afterAll(async () => {
      for (const s of servers) await s.kill();
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
      await target?.close();
    });

    /** A data dir: fresh per scenario on fs+SQLite (its database lives there), shared otherwise. */
    function dataDir(): string {
      const dir = tempDir('mr-proc-');
      dirs.push(dir);
      return dir;
    }

    async function start(dir: string, env: Record<string, string> = {}): Promise<{ server: StartedServer; client: ArtifactClient }> {
      const server = await startArtifactServer(target, dir, env);
      servers.push(server);
      if (server.apiKey) key = server.apiKey;
      if (target.backend === 'fs' && !key) throw new Error('no API key printed');
      return { server, client: new ArtifactClient(server.baseUrl, key) };
    }

    async function bytesOf(client: ArtifactClient, pid: string, artifactId: string): Promise<Buffer> {
      const res = await client.download(pid, artifactId);
      if (res.status === 302) {
        const url = res.headers.get('location')!.replace(target.s3!.endpoint, target.s3Twin!.endpoint);
        return Buffer.from(await (await fetch(url)).arrayBuffer());
      }
      expect(res.status).toBe(200);
      return res.bytes;
    }

    /** Every available artifact of the product has the bytes its record claims. */
    async function assertNoWrongBytes(client: ArtifactClient, pid: string) {
      const list = (await client.request('GET', `/catalog/products/${pid}/model-artifacts`)).body as { id: string; sha256: string; size_bytes: number; status: string }[];
      for (const a of list.filter((x) => x.status === 'available')) {
        const bytes = await bytesOf(client, pid, a.id);
        expect(bytes.length).toBe(a.size_bytes);
        expect(sha256(bytes)).toBe(a.sha256);
      }
    }

    it('SIGKILL mid-chunk: after a restart the chunk is missing, the upload resumes and completes', async () => {
      const dir = dataDir();
      let { server, client } = await start(dir);
      const pid = await client.createModel('Killed mid-chunk');
      const data = randomData(2 * target.chunkSize + 999);
      const init = await client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: data.length, sha256: sha256(data) });
      const id = init.body.id;
      expect((await client.putChunk(pid, id, 0, chunkOf(data, target.chunkSize, 0))).status).toBe(200);
      const c1 = chunkOf(data, target.chunkSize, 1);
      const put = rawPut(server.baseUrl, `/catalog/products/${pid}/model-artifacts/uploads/${id}/chunks/1`, { key, contentLength: c1.length });
      await put.write(c1.subarray(0, Math.floor(c1.length * 0.6)));
      await new Promise((r) => setTimeout(r, 300));
      await server.kill();
      await expect(put.response).rejects.toThrow();

      ({ server, client } = await start(dir));
      const status = await client.session(pid, id);
      expect(status.body).toMatchObject({ status: 'uploading', received_chunks: [0] });
      for (const i of [1, 2]) expect((await client.putChunk(pid, id, i, chunkOf(data, target.chunkSize, i))).status).toBe(200);
      const done = await client.complete(pid, id);
      expect(done.status).toBe(201);
      expect(done.body.sha256).toBe(sha256(data));
      expect((await bytesOf(client, pid, done.body.id)).equals(data)).toBe(true);
      await server.stop();
    });

    it('SIGKILL mid-completion: after a restart the completion is retried; never wrong bytes', async () => {
      const dir = dataDir();
      let { server, client } = await start(dir, target.backend === 'fs' ? { UPLOAD_CHUNK_SIZE_BYTES: String(4 * 1024 * 1024) } : {});
      const pid = await client.createModel('Killed mid-completion');
      // Large enough that completion has to hash for a while (a replaced chunk forces a full read).
      const data = target.backend === 'fs' ? randomData(48 * 1024 * 1024 + 5) : randomData(3 * target.chunkSize + 5);
      const init = await client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: data.length, sha256: sha256(data) });
      const { id, chunk_size_bytes: chunkSize, chunk_count: count } = init.body;
      const order = [...Array(count).keys()];
      await Promise.all([0, 1, 2, 3].map(async (w) => {
        for (let i = w; i < count; i += 4) {
          const res = await client.putChunk(pid, id, order[i]!, chunkOf(data, chunkSize, order[i]!));
          if (res.status !== 200) throw new Error(res.text);
        }
      }));
      expect((await client.putChunk(pid, id, 0, chunkOf(data, chunkSize, 0))).status).toBe(200); // a re-send: full read at completion

      // Kill the server the moment the finished bytes appear in their final place, before (most
      // likely) the database rows are written.
      const finalFile = await (async () => {
        if (target.backend === 'fs') {
          const productDir = path.join(dir, 'artifacts', 'artifacts', pid);
          return () => fs.existsSync(productDir) && fs.readdirSync(productDir).length > 0;
        }
        const productDir = path.join(target.s3!.directory, target.s3!.bucket, 'repo', 'artifacts', pid);
        return () => fs.existsSync(productDir) && fs.readdirSync(productDir).some((f) => f.endsWith('._S3rver_object'));
      })();
      const completion = client.complete(pid, id).catch(() => null);
      const until = Date.now() + 20_000;
      while (!finalFile() && Date.now() < until) await new Promise((r) => setImmediate(r));
      await server.kill();
      const first = await completion;

      ({ server, client } = await start(dir));
      await assertNoWrongBytes(client, pid);
      // (Usually the kill lands between the bytes and the rows: the session is still `uploading`.)
      expect(['uploading', 'completed']).toContain((await client.session(pid, id)).body.status);
      const retry = await client.complete(pid, id);
      expect([200, 201]).toContain(retry.status);
      if (first && first.status === 201) expect(retry.status).toBe(200);
      expect(retry.body.sha256).toBe(sha256(data));
      expect((await bytesOf(client, pid, retry.body.id)).equals(data)).toBe(true);
      expect((await client.complete(pid, id)).status).toBe(200);
      await assertNoWrongBytes(client, pid);
      await server.stop();
    });

    it('two processes on one database and one storage share the chunks and the completion of an upload', async () => {
      const dir = dataDir();
      const a = await start(dir);
      const b = await start(dir);
      const pid = await a.client.createModel('Two processes');
      const data = randomData(5 * target.chunkSize + 321);
      const init = await a.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: data.length });
      const id = init.body.id;
      // Chunks alternate between the processes, all in flight at once.
      const results = await Promise.all(
        [...Array(init.body.chunk_count).keys()].map((i) => (i % 2 === 0 ? a : b).client.putChunk(pid, id, i, chunkOf(data, target.chunkSize, i))),
      );
      expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
      // Each answer lists what both processes had recorded by then: its own chunk among them, ascending.
      for (const [i, r] of results.entries()) {
        expect(r.body.received_chunks).toContain(i);
        expect(r.body.received_chunks).toEqual([...r.body.received_chunks].sort((x: number, y: number) => x - y));
        expect(r.body.received_bytes).toBe(r.body.received_chunks.length * target.chunkSize - (r.body.received_chunks.includes(5) ? target.chunkSize - 321 : 0));
      }
      expect((await b.client.session(pid, id)).body).toMatchObject({ received_chunks: [0, 1, 2, 3, 4, 5], received_bytes: data.length });
      const done = await b.client.complete(pid, id, { sha256: sha256(data) });
      expect(done.status).toBe(201);
      expect((await bytesOf(a.client, pid, done.body.id)).equals(data)).toBe(true);

      // Both complete the same upload at once: one creates the artifact, the other returns it.
      const second = randomData(2 * target.chunkSize + 7);
      const init2 = await a.client.initiate(pid, { file_name: 'b.bin', content_type: 'application/octet-stream', total_size_bytes: second.length });
      for (let i = 0; i < init2.body.chunk_count; i++) await (i % 2 ? b : a).client.putChunk(pid, init2.body.id, i, chunkOf(second, target.chunkSize, i));
      const [ra, rb] = await Promise.all([a.client.complete(pid, init2.body.id), b.client.complete(pid, init2.body.id)]);
      expect([ra.status, rb.status].sort()).toEqual([200, 201]);
      expect(ra.body.id).toBe(rb.body.id);
      expect(ra.body.sha256).toBe(sha256(second));
      const list = (await a.client.request('GET', `/catalog/products/${pid}/model-artifacts`)).body as unknown[];
      expect(list.length).toBe(2);
      await a.server.stop();
      await b.server.stop();
    });
  });
}
