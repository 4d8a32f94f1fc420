/**
 * The received-chunk map (upload_sessions.received_map, kept with received_bytes by triggers on
 * upload_chunks): after every kind of chunk traffic it lists exactly the chunk rows, received_bytes
 * is their sum, and the chunk answers and GET session answers list what the chunk rows say — on
 * fs + SQLite and S3 + PostgreSQL. Also: a session without a map (a row written without it) is
 * served from its chunk rows; the migration backfills sessions that existed before it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadChunk, UploadSession } from '../../../server/src/persistence/entities.ts';
import { migrate, openOrm } from '../../../server/src/persistence/orm.ts';
import { makeOrg, makeProduct, makeSpace, makeUploadSession, makeUser } from '../persistence/fixtures.ts';
import { MIGRATION_NAMES } from '../../../server/src/persistence/migrations/names.ts';
import { indexesOfMap } from '../../../server/src/services/upload-session-sql.ts';
import { databaseTargets } from '../persistence/targets.ts';
import { chunkOf, randomData, sha256, startArtifactApp, storageTargets, type ArtifactApp, type StorageTarget } from '../../support/artifacts.ts';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`received-chunk map on ${factory.name}`, () => {
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

    const session = (id: string) => app.em().findOneOrFail(UploadSession, { id });
    const rowsOf = async (id: string) => app.em().find(UploadChunk, { session: id }, { orderBy: { chunk_index: 'asc' } });

    /** The map, the column and the GET answer all say what the chunk rows say; returns the row indexes. */
    async function consistent(pid: string, id: string): Promise<number[]> {
      const rows = await rowsOf(id);
      const indexes = rows.map((r) => r.chunk_index);
      const bytes = rows.reduce((sum, r) => sum + r.size_bytes, 0);
      const s = await session(id);
      expect(s.received_map).not.toBeNull();
      expect(indexesOfMap(s.received_map!)).toEqual(indexes);
      expect(s.received_map).toHaveLength(2 * Math.ceil(s.chunk_count / 8));
      expect(s.received_bytes).toBe(bytes);
      const got = await app.client.session(pid, id);
      expect(got.status).toBe(200);
      expect(got.body.received_chunks).toEqual(indexes);
      expect(got.body.received_bytes).toBe(bytes);
      return indexes;
    }

    /** A session of `chunks` chunks, the last one `tail` bytes short of full. */
    async function open(name: string, chunks: number, tail = 100) {
      const pid = await app.client.createModel(name);
      const data = randomData(chunks * target.chunkSize - tail);
      const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: data.length });
      expect(init.status).toBe(201);
      expect(init.body.chunk_count).toBe(chunks);
      const put = (i: number, bytes = chunkOf(data, target.chunkSize, i)) => app.client.putChunk(pid, init.body.id, i, bytes);
      return { pid, id: init.body.id as string, data, put };
    }

    it('out-of-order chunks: each answer lists the rows recorded so far, ascending, and their bytes', async () => {
      const { pid, id, data, put } = await open('Out of order', 3);
      expect(await consistent(pid, id)).toEqual([]);
      const seen: number[] = [];
      for (const i of [2, 0, 1]) {
        const res = await put(i);
        expect(res.status).toBe(200);
        seen.push(i);
        const sorted = [...seen].sort((x, y) => x - y);
        expect(res.body.received_chunks).toEqual(sorted);
        expect(res.body.received_bytes).toBe(sorted.reduce((sum, j) => sum + (j === 2 ? target.chunkSize - 100 : target.chunkSize), 0));
        expect(await consistent(pid, id)).toEqual(sorted);
      }
      expect((await app.client.complete(pid, id, { sha256: sha256(data) })).status).toBe(201);
      // After completion the session still answers with every chunk.
      expect(await consistent(pid, id)).toEqual([0, 1, 2]);
    });

    it('concurrent chunks (all in flight at once): no bit or byte lost', async () => {
      const { pid, id, data, put } = await open('Concurrent', 6, 1);
      const results = await Promise.all([5, 3, 1, 0, 2, 4].map((i) => put(i)));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      for (const [n, i] of [5, 3, 1, 0, 2, 4].entries()) {
        const listed = results[n]!.body.received_chunks as number[];
        expect(listed).toContain(i);
        expect(listed).toEqual([...listed].sort((x, y) => x - y));
      }
      // The answer of whichever chunk was counted last lists all six.
      expect(results.some((r) => r.body.received_chunks.length === 6 && r.body.received_bytes === data.length)).toBe(true);
      expect(await consistent(pid, id)).toEqual([0, 1, 2, 3, 4, 5]);
      expect((await app.client.complete(pid, id, { sha256: sha256(data) })).status).toBe(201);
    });

    it('re-sent chunks (same bytes, other bytes, twins at once) are not counted twice', async () => {
      const { pid, id, data, put } = await open('Re-sent', 3);
      expect((await put(0)).status).toBe(200);
      expect((await put(1, randomData(target.chunkSize))).status).toBe(200);
      const same = await put(0);
      expect(same.body).toMatchObject({ received_chunks: [0, 1], received_bytes: 2 * target.chunkSize });
      const other = await put(1); // the right bytes over the wrong ones
      expect(other.body).toMatchObject({ received_chunks: [0, 1], received_bytes: 2 * target.chunkSize });
      expect(await consistent(pid, id)).toEqual([0, 1]);
      // Two requests for the same new chunk at once: one row, counted once (the other is a re-send,
      // or 409 when it arrived while the first still streamed).
      const twins = await Promise.all([put(2), put(2)]);
      expect(twins.some((r) => r.status === 200)).toBe(true);
      for (const r of twins) expect([200, 409]).toContain(r.status);
      expect((await rowsOf(id)).length).toBe(3);
      expect(await consistent(pid, id)).toEqual([0, 1, 2]);
      expect((await session(id)).received_bytes).toBe(data.length);
      const done = await app.client.complete(pid, id, { sha256: sha256(data) });
      expect(done.status).toBe(201);
    });

    it('removed chunk rows leave the map and the count (the torn-chunk path deletes rows)', async () => {
      const { pid, id, put } = await open('Removed rows', 3);
      for (const i of [0, 1, 2]) expect((await put(i)).status).toBe(200);
      await app.em().nativeDelete(UploadChunk, { session: id, chunk_index: { $in: [0, 2] } });
      expect(await consistent(pid, id)).toEqual([1]);
      expect((await put(2)).body).toMatchObject({ received_chunks: [1, 2], received_bytes: 2 * target.chunkSize - 100 });
      expect(await consistent(pid, id)).toEqual([1, 2]);
    });

    it('expired sessions (by a request or by the sweeper) keep answering with their rows', async () => {
      const a = await open('Expired by request', 3);
      expect((await a.put(1)).status).toBe(200);
      await app.em().nativeUpdate(UploadSession, { id: a.id }, { expires_at: new Date(Date.now() - 1000) });
      expect((await a.put(0)).status).toBe(410);
      expect((await session(a.id)).status).toBe('expired');
      expect(await consistent(a.pid, a.id)).toEqual([1]);

      const b = await open('Expired by the sweeper', 3);
      expect((await b.put(2)).status).toBe(200);
      expect((await b.put(0)).status).toBe(200);
      await app.services.sweeper.runOnce(new Date(Date.now() + 30 * 86_400_000));
      expect((await session(b.id)).status).toBe('expired');
      const got = await app.client.session(b.pid, b.id);
      expect(got.body).toMatchObject({ status: 'expired', received_chunks: [0, 2], received_bytes: 2 * target.chunkSize - 100 });
      expect(await consistent(b.pid, b.id)).toEqual([0, 2]);
    });

    it('a session row without a map (written before the map existed) is served from its chunk rows', async () => {
      const { pid, id, data, put } = await open('No map', 4);
      for (const i of [3, 1]) expect((await put(i)).status).toBe(200);
      await app.em().nativeUpdate(UploadSession, { id }, { received_map: null });
      expect((await app.client.session(pid, id)).body).toMatchObject({ received_chunks: [1, 3], received_bytes: 2 * target.chunkSize - 100 });
      const res = await put(0);
      expect(res.body).toMatchObject({ received_chunks: [0, 1, 3], received_bytes: 3 * target.chunkSize - 100 });
      expect((await session(id)).received_map).toBeNull(); // stays untracked
      expect((await session(id)).received_bytes).toBe(3 * target.chunkSize - 100);
      expect((await put(2)).body.received_chunks).toEqual([0, 1, 2, 3]);
      expect((await app.client.complete(pid, id, { sha256: sha256(data) })).status).toBe(201);
    });
  });
}

for (const target of await databaseTargets()) {
  describe.skipIf(!target.create)(`received-chunk map migration on ${target.dialect}`, () => {
    it('backfills the sessions that exist before it from their chunk rows; the triggers keep it after', async () => {
      const db = await target.create!();
      const orm = await openOrm({ databaseUrl: db.url });
      try {
        const em = orm.em.fork();
        const user = makeUser(em);
        const product = makeProduct(em, makeSpace(em, makeOrg(em)));
        // 20 chunks of 5 bytes, the last 3 bytes; and one with no chunk yet.
        const sessions = [
          makeUploadSession(em, product, user, { total_size_bytes: 98, chunk_size_bytes: 5, chunk_count: 20, status: 'uploading' }),
          makeUploadSession(em, product, user, { total_size_bytes: 98, chunk_size_bytes: 5, chunk_count: 20 }),
        ];
        await em.flush();
        const [withChunks, empty] = sessions as [UploadSession, UploadSession];
        const indexes = [19, 0, 7, 8, 9, 15];
        for (const i of indexes) {
          await em.insert(UploadChunk, { id: randomUUID(), session: withChunks.id, chunk_index: i, size_bytes: i === 19 ? 3 : 5, sha256: 'a'.repeat(64), received_at: new Date() } as never);
        }

        // The schema before the migration: no map column, no triggers, and a byte count a lost
        // connection left short; the migration not recorded.
        const q = (sql: string) => (target.dialect === 'sqlite' ? sql.replaceAll('"', '`') : sql);
        const last = 'Migration20261203173000'; // the received-chunk map's, on both dialects
        expect(MIGRATION_NAMES[target.dialect]).toContain(last);
        if (target.dialect === 'sqlite') {
          await em.execute('drop trigger `upload_chunks_received_insert`');
          await em.execute('drop trigger `upload_chunks_received_delete`');
        } else {
          await em.execute('drop trigger "upload_chunks_received" on "upload_chunks"');
          await em.execute('drop function "upload_chunks_received"()');
        }
        await em.execute(q('alter table "upload_sessions" drop column "received_map"'));
        await em.execute(q('update "upload_sessions" set "received_bytes" = 5'));
        await em.execute(q('delete from "mikro_orm_migrations" where "name" = ?'), [last]);

        expect(await migrate(orm)).toEqual([last]); // the later ones stay recorded: only this one runs again
        const reread = async (id: string) => orm.em.fork().findOneOrFail(UploadSession, { id });
        const backfilled = await reread(withChunks.id);
        expect(indexesOfMap(backfilled.received_map!)).toEqual([0, 7, 8, 9, 15, 19]);
        expect(backfilled.received_map).toBe('818308'); // bytes 0x81 (0, 7), 0x83 (8, 9, 15), 0x08 (19)
        expect(backfilled.received_bytes).toBe(5 * 5 + 3);
        expect((await reread(empty.id)).received_map).toBe('000000');
        expect((await reread(empty.id)).received_bytes).toBe(0);

        // The triggers work on the backfilled map: a new row sets its bit, a removed one clears it.
        await em.insert(UploadChunk, { id: randomUUID(), session: withChunks.id, chunk_index: 1, size_bytes: 5, sha256: 'b'.repeat(64), received_at: new Date() } as never);
        await em.nativeDelete(UploadChunk, { session: withChunks.id, chunk_index: 19 });
        const after = await reread(withChunks.id);
        expect(indexesOfMap(after.received_map!)).toEqual([0, 1, 7, 8, 9, 15]);
        expect(after.received_bytes).toBe(6 * 5);
        // A twin insert (the unique index refuses it) changes nothing.
        await expect(em.insert(UploadChunk, { id: randomUUID(), session: withChunks.id, chunk_index: 1, size_bytes: 5, sha256: 'c'.repeat(64), received_at: new Date() } as never)).rejects.toThrow();
        expect((await reread(withChunks.id)).received_bytes).toBe(6 * 5);
      } finally {
        await orm.close(true);
        await db.drop();
      }
    });
  });
}
