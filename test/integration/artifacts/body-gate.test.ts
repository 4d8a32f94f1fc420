/**
 * UPLOAD_CONCURRENT_BODIES on filesystem + SQLite and on S3 + PostgreSQL, with a limit of one: a
 * body that comes while another is read waits its turn (and is read after it), a stalled body does
 * not lock the others out, waiting is not idle time, a waiting request that goes away stores
 * nothing, and single-request uploads take their turn the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadChunk } from '../../../server/src/persistence/entities.ts';
import { API, randomData, rawConnection, startArtifactApp, storageTargets, waitFor, type ArtifactApp, type StorageTarget } from '../../support/artifacts.ts';

const IDLE_SECONDS = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const until = (check: () => boolean, what: string) => waitFor(check, 20_000, 10, what);

/** Tracks whether a promise has settled. */
function watch<T>(p: Promise<T>): { promise: Promise<T>; done: () => boolean } {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  return { promise: p, done: () => done };
}

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`one upload body at a time on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target, { UPLOAD_CONCURRENT_BODIES: '1', BODY_IDLE_TIMEOUT_SECONDS: String(IDLE_SECONDS) });
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    const gate = () => app.services.bodies.stats;

    async function session(chunks: number): Promise<{ pid: string; id: string }> {
      const pid = await app.client.createModel(`Gate ${Math.random()}`);
      const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: chunks * target.chunkSize });
      expect(init.status).toBe(201);
      return { pid, id: init.body.id };
    }

    /** Chunk `index` over a raw connection: its head and first `pieces`th now, the rest by `more()`. */
    async function slowChunk(pid: string, id: string, index: number, pieces: number) {
      const bytes = randomData(target.chunkSize);
      const conn = await rawConnection(app.origin);
      conn.socket.write(
        `PUT ${API}/catalog/products/${pid}/model-artifacts/uploads/${id}/chunks/${index} HTTP/1.1\r\n` +
          `Host: x\r\nAuthorization: Bearer ${app.owner.key}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes.length}\r\n\r\n`,
      );
      const size = Math.ceil(bytes.length / pieces);
      let sent = 0;
      const more = () => {
        conn.socket.write(bytes.subarray(sent, sent + size));
        sent += size;
        return sent >= bytes.length;
      };
      more();
      /** Sends the rest a piece every `everyMs`. */
      const trickle = async (everyMs: number) => {
        while (!more()) await sleep(everyMs);
      };
      return { ...conn, bytes, more, trickle };
    }

    it('reads a chunk that comes while another is read only after it: its answer lists the first', async () => {
      const { pid, id } = await session(3);
      const first = await slowChunk(pid, id, 0, 10);
      await until(() => gate().reading === 1, 'the first chunk to be let in');
      const second = watch(app.client.putChunk(pid, id, 1, randomData(target.chunkSize)));
      await until(() => gate().waiting === 1, 'the second chunk to wait');
      await first.trickle(100); // steady: the slot stays taken
      expect(second.done()).toBe(false);
      await until(() => /^HTTP\/1\.1 200 /.test(first.received()), "the first chunk's answer");
      const res = await second.promise;
      expect(res.status).toBe(200);
      expect(res.body.received_chunks).toEqual([0, 1]);
      first.socket.end();
      expect(gate()).toEqual({ reading: 0, waiting: 0 });
    });

    it('lets the next body in when the one read stops sending: the stalled one is cut off later and stores nothing', async () => {
      const { pid, id } = await session(3);
      const stalled = await slowChunk(pid, id, 0, 2); // half, then nothing
      await until(() => gate().reading === 1, 'the stalled chunk to be let in');
      const res = await app.client.putChunk(pid, id, 1, randomData(target.chunkSize));
      expect(res.status).toBe(200);
      expect(res.body.received_chunks).toEqual([1]);
      await stalled.closed; // the idle timeout
      expect(stalled.received()).toBe('');
      const rows = await app.em().find(UploadChunk, { session: id });
      expect(rows.map((r) => r.chunk_index)).toEqual([1]);
    });

    it('does not count the time a body waits for its turn as idle: it is taken after waiting longer than the idle timeout', async () => {
      const { pid, id } = await session(3);
      const first = await slowChunk(pid, id, 0, 20);
      await until(() => gate().reading === 1, 'the first chunk to be let in');
      const second = watch(app.client.putChunk(pid, id, 2, randomData(target.chunkSize)));
      await until(() => gate().waiting === 1, 'the second chunk to wait');
      const started = Date.now();
      await first.trickle(((IDLE_SECONDS + 1) * 1000) / 20); // longer than the idle timeout in all
      expect(Date.now() - started).toBeGreaterThan(IDLE_SECONDS * 1000);
      const res = await second.promise;
      expect(res.status).toBe(200);
      expect(res.body.received_chunks).toEqual([0, 2]);
      first.socket.end();
    });

    it('stores nothing of a waiting request that goes away with its body unsent, and the queue goes on', async () => {
      const { pid, id } = await session(3);
      const first = await slowChunk(pid, id, 0, 10);
      await until(() => gate().reading === 1, 'the first chunk to be let in');
      const gone = await slowChunk(pid, id, 1, 2); // half its body, then its client is gone
      await until(() => gate().waiting === 1, 'the second chunk to wait');
      gone.socket.destroy();
      await first.trickle(50);
      await until(() => /^HTTP\/1\.1 200 /.test(first.received()), "the first chunk's answer");
      first.socket.end();
      // Its turn came (or its socket's close was seen first): either way its read failed.
      await until(() => gate().reading === 0 && gate().waiting === 0, 'the departed request to be done');
      const rows = await app.em().find(UploadChunk, { session: id });
      expect(rows.map((r) => r.chunk_index)).toEqual([0]);
      const again = await app.client.putChunk(pid, id, 1, gone.bytes);
      expect(again.status).toBe(200);
      expect(again.body.received_chunks).toEqual([0, 1]);
    });

    it('makes a single-request upload wait its turn as well', async () => {
      const { pid, id } = await session(3);
      const first = await slowChunk(pid, id, 0, 10);
      await until(() => gate().reading === 1, 'the chunk to be let in');
      const form = new FormData();
      form.append('file', new Blob([randomData(1024)], { type: 'application/octet-stream' }), 'weights.bin');
      const single = watch(app.client.request('POST', `/catalog/products/${pid}/model-artifacts`, { body: form }));
      await until(() => gate().waiting === 1, 'the single-request upload to wait');
      await first.trickle(100);
      const res = await single.promise;
      expect(res.status).toBe(201);
      expect(res.body.size_bytes).toBe(1024);
      await until(() => /^HTTP\/1\.1 200 /.test(first.received()), "the chunk's answer");
      first.socket.end();
    });
  });
}
