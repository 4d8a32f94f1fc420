/**
 * A full disk (ENOSPC) or quota (EDQUOT) while bytes are being stored answers 507 problem+json
 * `insufficient_storage` — never a 500 — on filesystem + SQLite and S3 + PostgreSQL (the storage's
 * answer is simulated: the test machine's disk cannot be filled), and nothing is recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadChunk } from '../../server/src/persistence/entities.ts';
import type { BlobStore } from '../../server/src/storage/index.ts';
import { API, chunkOf, randomData, sha256, startArtifactApp, storageTargets, type ArtifactApp, type StorageTarget } from '../support/artifacts.ts';

const full = (code = 'ENOSPC') =>
  Object.assign(new Error(`${code}: ${code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded'}, write`), { code, errno: -28, syscall: 'write' });

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`a full disk on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    /** Runs `fn` while `method` of the storage fails as a full disk would. */
    async function whileFull<T>(method: keyof BlobStore, fn: () => Promise<T>, code?: string): Promise<T> {
      const store = app.storage as unknown as Record<string, unknown>;
      store[method] = async () => {
        throw full(code);
      };
      try {
        return await fn();
      } finally {
        delete store[method]; // the prototype's method again
      }
    }

    const expect507 = (res: { status: number; headers: Headers; body: any }) => {
      expect(res.status).toBe(507);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 507, code: 'insufficient_storage', title: 'Insufficient Storage' });
      expect(res.body.detail).toMatch(/no storage space left/);
    };

    it('a chunk: 507, nothing recorded, the chunk stored before stays; once there is space it is taken', async () => {
      const pid = await app.client.createModel('Full disk chunk');
      const data = randomData(2 * target.chunkSize);
      const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: data.length });
      const id = init.body.id;
      expect((await app.client.putChunk(pid, id, 0, chunkOf(data, target.chunkSize, 0))).status).toBe(200);
      expect507(await whileFull('putPart', () => app.client.putChunk(pid, id, 1, chunkOf(data, target.chunkSize, 1))));
      expect507(await whileFull('putPart', () => app.client.putChunk(pid, id, 0, randomData(target.chunkSize)), 'EDQUOT'));
      expect((await app.client.session(pid, id)).body).toMatchObject({ received_chunks: [0], received_bytes: target.chunkSize });
      expect(await app.em().count(UploadChunk, { session: id })).toBe(1);
      expect((await app.client.putChunk(pid, id, 1, chunkOf(data, target.chunkSize, 1))).status).toBe(200);
      const done = await app.client.complete(pid, id, {});
      expect(done.status).toBe(201);
      expect(done.body.sha256).toBe(sha256(data));
    });

    it('an initiation and a completion: 507; the completion succeeds when retried', async () => {
      const pid = await app.client.createModel('Full disk complete');
      const init = () => app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: 10 });
      expect507(await whileFull('beginStaged', init));
      const started = await init();
      expect(started.status).toBe(201);
      const bytes = randomData(10);
      expect((await app.client.putChunk(pid, started.body.id, 0, bytes)).status).toBe(200);
      expect507(await whileFull('commitStaged', () => app.client.complete(pid, started.body.id, {})));
      expect((await app.client.session(pid, started.body.id)).body.status).toBe('uploading');
      const done = await app.client.complete(pid, started.body.id, {});
      expect(done.status).toBe(201);
      expect(done.body.sha256).toBe(sha256(bytes));
    });

    it('a single-request (multipart) upload: 507, no artifact', async () => {
      const pid = await app.client.createModel('Full disk multipart');
      const form = new FormData();
      form.set('file', new Blob([randomData(1000)], { type: 'application/octet-stream' }), 'a.bin');
      const res = await whileFull('put', async () => {
        const r = await fetch(`${app.origin}${API}/catalog/products/${pid}/model-artifacts`, { method: 'POST', headers: { Authorization: `Bearer ${app.owner.key}` }, body: form });
        return { status: r.status, headers: r.headers, body: await r.json() };
      });
      expect507(res);
      expect((await app.client.request('GET', `/catalog/products/${pid}/model-artifacts`)).body).toEqual([]);
    });
  });
}
