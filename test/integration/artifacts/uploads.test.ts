/**
 * Chunked uploads on filesystem + SQLite and on S3 + PostgreSQL, through the HTTP API of an
 * in-process server: sessions, chunk rules, resumable digests, completion, abort, expiry, and the
 * bad input of issue #4 (lengths, indexes, content types, too-long bodies, disconnects, names).
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelArtifact, UploadChunk, UploadSession, User } from '../../../server/src/persistence/entities.ts';
import { createServices } from '../../../server/src/services/index.ts';
import { createLogger } from '../../../server/src/logger.ts';
import {
  KiB,
  MiB,
  chunkOf,
  contentDigest,
  randomData,
  rawPut,
  sha256,
  startArtifactApp,
  storageTargets,
  waitFor,
  type ArtifactApp,
  type StorageTarget,
} from '../../support/artifacts.ts';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`chunked uploads on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;
    /** Bytes of a typical upload: two full chunks and a short last one. */
    let size: number;

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target, { MAX_ARTIFACT_SIZE_BYTES: String(64 * 1024 * MiB) });
      size = 2 * target.chunkSize + 12_345;
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    const session = (id: string) => app.em().findOneOrFail(UploadSession, { id });
    const chunkRows = (id: string) => app.em().find(UploadChunk, { session: id }, { orderBy: { chunk_index: 'asc' } });
    const stagingFile = (key: string) => path.join(app.config.storageDir, '.staging', createHash('sha256').update(key).digest('hex'));
    const blobExists = async (key: string) => (await app.storage.head(key)) !== null;
    const base = (pid: string, uploadId: string) => `/catalog/products/${pid}/model-artifacts/uploads/${uploadId}`;

    async function downloadBytes(pid: string, artifactId: string): Promise<Buffer> {
      const res = await app.client.download(pid, artifactId);
      if (res.status === 302) {
        const url = res.headers.get('location')!.replace(target.s3!.endpoint, target.s3Twin!.endpoint);
        return Buffer.from(await (await fetch(url)).arrayBuffer());
      }
      expect(res.status).toBe(200);
      return res.bytes;
    }

    describe('initiation', () => {
      it('opens a session: server-chosen chunk size, chunk count, expiry, Location', async () => {
        const pid = await app.client.createModel('Init');
        const res = await app.client.initiate(pid, {
          file_name: 'churn.onnx',
          content_type: 'application/octet-stream',
          total_size_bytes: size,
          sha256: 'a'.repeat(64),
          metadata: { format: 'onnx' },
        });
        expect(res.status).toBe(201);
        expect(res.headers.get('location')).toBe(`/api/v1.0${base(pid, res.body.id)}`);
        expect(res.body).toMatchObject({
          product_id: pid,
          file_name: 'churn.onnx',
          total_size_bytes: size,
          chunk_size_bytes: target.chunkSize,
          chunk_count: 3,
          expected_sha256: 'a'.repeat(64),
          received_bytes: 0,
          received_chunks: [],
          status: 'initialized',
          artifact_id: null,
          completed_at: null,
        });
        const ttl = Date.parse(res.body.expires_at) - Date.now();
        expect(ttl).toBeGreaterThan(86_000_000);
        expect((await app.client.session(pid, res.body.id)).body).toEqual(res.body);
        const row = await session(res.body.id);
        expect(row.staging_key).toBe(`artifacts/${pid}/${row.artifact_id}`);
        if (target.backend === 'fs') expect(fs.statSync(stagingFile(row.staging_key)).size).toBe(size);
        else expect(row.storage_upload_id).toBeTruthy();
      });

      it('raises the chunk size so that no upload needs more than 10,000 chunks', async () => {
        const pid = await app.client.createModel('Huge');
        const total = 10_000 * target.chunkSize + 1;
        const res = await app.client.initiate(pid, { file_name: 'big.bin', content_type: 'application/octet-stream', total_size_bytes: total });
        expect(res.status).toBe(201);
        expect(res.body.chunk_count).toBeLessThanOrEqual(10_000);
        expect(res.body.chunk_size_bytes).toBeGreaterThan(target.chunkSize);
        expect(res.body.chunk_size_bytes % MiB).toBe(0);
        expect(res.body.chunk_count).toBe(Math.ceil(total / res.body.chunk_size_bytes));
        expect((await app.client.request('DELETE', base(pid, res.body.id))).status).toBe(204);
      });

      it('uses at least 5 MiB chunks on S3 even when configured smaller', async () => {
        if (target.backend !== 's3') return;
        const small = await startArtifactApp(target, { UPLOAD_CHUNK_SIZE_BYTES: String(64 * KiB) });
        try {
          const pid = await small.client.createModel('Small chunks');
          const res = await small.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: 6 * MiB });
          expect(res.body).toMatchObject({ chunk_size_bytes: 5 * MiB, chunk_count: 2 });
        } finally {
          await small.close();
        }
      });

      it('checks product_version_id, metadata size, unknown fields and access', async () => {
        const pid = await app.client.createModel('Checks');
        const other = await app.client.createModel('Other');
        const version = await app.client.request('POST', `/catalog/products/${other}/versions`, { body: {} });
        expect(version.status).toBe(201);
        const init = (body: Record<string, unknown>, client = app.client) =>
          client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: 10, ...body });

        const wrongVersion = await init({ product_version_id: version.body.id });
        expect(wrongVersion.status).toBe(422);
        expect(wrongVersion.body.errors[0].loc).toEqual(['body', 'product_version_id']);
        const own = await app.client.request('POST', `/catalog/products/${pid}/versions`, { body: {} });
        expect((await init({ product_version_id: own.body.id })).status).toBe(201);

        const big = await init({ metadata: { blob: 'x'.repeat(70 * KiB) } });
        expect(big.status).toBe(422);
        expect(big.body.errors[0].loc).toEqual(['body', 'metadata']);
        expect((await init({ colour: 'red' })).status).toBe(422);
        expect((await init({ total_size_bytes: -1 })).status).toBe(422);

        const viewer = await app.userWithRole(`viewer-${Date.now()}@example.com`, 'viewer');
        expect((await init({}, viewer)).status).toBe(403);
        // The session endpoints check edit access too (one query: creator, roles, grant).
        const session = await init({});
        expect(session.status).toBe(201);
        const at = `/catalog/products/${pid}/model-artifacts/uploads/${session.body.id}`;
        expect((await viewer.request('GET', at)).status).toBe(403);
        expect((await viewer.putChunk(pid, session.body.id, 0, Buffer.alloc(10))).status).toBe(403);
        const editor = await app.userWithRole(`editor-${Date.now()}@example.com`, 'editor');
        expect((await editor.request('GET', at)).status).toBe(200);
        expect((await app.client.request('GET', `/catalog/products/00000000-0000-4000-8000-000000000000/model-artifacts/uploads/${session.body.id}`)).status).toBe(404);
        expect((await app.client.request('GET', `/catalog/products/${other}/model-artifacts/uploads/${session.body.id}`)).status).toBe(404);
        expect((await viewer.request('GET', `/catalog/products/${pid}/model-artifacts`)).status).toBe(200);
        expect((await app.client.request('POST', `/catalog/products/${pid}/model-artifacts/uploads`, { key: 'mr_nope', body: {} })).status).toBe(401);
        expect((await app.client.initiate('not-a-uuid', { file_name: 'a', content_type: 'a/b', total_size_bytes: 1 })).status).toBe(404);
      });
    });

    describe('chunks and completion', () => {
      /**
       * Proof that a completion does not read the bytes: scramble the staged file's content (not
       * its size) first. A completion that hashed the bytes would report another digest. (fs
       * only: S3 parts cannot be scrambled from outside.)
       */
      async function completeScrambled(stagingKey: string, complete: () => Promise<{ sha256: string; id: string }>) {
        const file = stagingFile(stagingKey);
        const original = fs.readFileSync(file);
        fs.writeFileSync(file, Buffer.alloc(original.length, 7));
        const artifact = await complete();
        fs.writeFileSync(path.join(app.config.storageDir, stagingKey), original); // the real bytes back in place
        return artifact;
      }

      it('completes an in-order upload from the running digest, without reading the bytes again', async () => {
        const pid = await app.client.createModel('In order');
        const data = randomData(size);
        const { uploadId } = await app.client.sendAll(pid, data, { is_current: true, metadata: { format: 'ONNX' } }, { digests: true, parallel: 2 });
        const before = await session(uploadId);
        expect(before).toMatchObject({ hash_broken: false, status: 'uploading', received_bytes: size });
        // (The digest reads each chunk back right after it is stored: let it finish before the
        // bytes are scrambled below.)
        await app.services.uploads.folder.settle(uploadId);
        const complete = async () => {
          const done = await app.client.complete(pid, uploadId);
          expect(done.status).toBe(201);
          return done.body as { sha256: string; id: string };
        };
        const artifact = target.backend === 'fs' ? await completeScrambled(before.staging_key, complete) : await complete();
        expect(artifact.sha256).toBe(sha256(data));
        const after = await session(uploadId);
        expect(after.status).toBe('completed');
        expect(after.completed_at).toBeInstanceOf(Date);
        expect(await app.em().findOneOrFail(ModelArtifact, { id: after.artifact_id })).toMatchObject({
          status: 'available',
          sha256: sha256(data),
          size_bytes: size,
          is_current: true,
        });
        expect((await downloadBytes(pid, artifact.id)).equals(data)).toBe(true);
        const got = await app.client.session(pid, uploadId);
        expect(got.body).toMatchObject({ status: 'completed', artifact_id: artifact.id, received_chunks: [0, 1, 2], received_bytes: size });
      });

      it('saves the prefix digest in the session row, so another process completes without reading', async () => {
        const pid = await app.client.createModel('Saved digest');
        const data = randomData(size);
        const { uploadId, chunkCount } = await app.client.sendAll(pid, data);
        // fs: saved from the worker thread shortly after each chunk; s3: while each chunk streams.
        await waitFor(async () => (await session(uploadId)).hashed_chunks === chunkCount);
        const before = await session(uploadId);
        expect(before.hash_broken).toBe(false);
        // Another process: services of their own on the same database and storage.
        const other = createServices({ config: app.config, orm: app.orm, storage: app.storage, logger: createLogger(app.config) });
        const owner = await app.em().findOneOrFail(User, { id: app.owner.id });
        const complete = async () => {
          const { artifact, created } = await other.uploads.complete(app.em(), owner, pid, uploadId, undefined);
          expect(created).toBe(true);
          return artifact;
        };
        try {
          const artifact = target.backend === 'fs' ? await completeScrambled(before.staging_key, complete) : await complete();
          expect(artifact.sha256).toBe(sha256(data));
          expect((await downloadBytes(pid, artifact.id)).equals(data)).toBe(true);
        } finally {
          await other.uploads.close();
        }
      });

      it('takes chunks out of order and in parallel; the digest is then completed by reading', async () => {
        const pid = await app.client.createModel('Out of order');
        const data = randomData(4 * target.chunkSize + 77);
        const { uploadId } = await app.client.sendAll(pid, data, { sha256: sha256(data) }, { order: [4, 2, 3, 1, 0], parallel: 3 });
        const row = await session(uploadId);
        if (target.backend === 's3') expect(row.hashed_chunks).toBeLessThan(row.chunk_count); // S3 cannot read parts back
        const done = await app.client.complete(pid, uploadId);
        expect(done.status).toBe(201);
        expect(done.body).toMatchObject({ sha256: sha256(data), size_bytes: data.length, status: 'available' });
        expect((await downloadBytes(pid, done.body.id)).equals(data)).toBe(true);
      });

      it('answers each chunk with the updated session', async () => {
        const pid = await app.client.createModel('Progress');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        const r2 = await app.client.putChunk(pid, id, 2, chunkOf(data, target.chunkSize, 2));
        expect(r2.status).toBe(200);
        expect(r2.body).toMatchObject({ status: 'uploading', received_chunks: [2], received_bytes: 12_345 });
        const r0 = await app.client.putChunk(pid, id, 0, chunkOf(data, target.chunkSize, 0));
        expect(r0.body).toMatchObject({ received_chunks: [0, 2], received_bytes: target.chunkSize + 12_345 });
        const incomplete = await app.client.complete(pid, id);
        expect(incomplete.status).toBe(409);
        expect(incomplete.body).toMatchObject({ code: 'upload_incomplete', detail: 'Upload is missing 1 chunk(s): 1' });
        expect(incomplete.body.errors).toEqual([{ loc: ['chunks', 1], msg: 'chunk not received', type: 'missing' }]);
        expect((await app.client.putChunk(pid, id, 1, chunkOf(data, target.chunkSize, 1))).body.received_bytes).toBe(size);
        expect((await app.client.complete(pid, id, {})).status).toBe(201);
      });

      it('a chunk request checks the key and the edit access in one statement, and runs four in all', async () => {
        const pid = await app.client.createModel('Chunk statements');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const statements: string[] = [];
        const knex = app.orm.em.getKnex();
        const record = (q: { sql: string }) => statements.push(q.sql);
        knex.on('query', record);
        try {
          expect((await app.client.putChunk(pid, init.body.id, 1, chunkOf(data, target.chunkSize, 1))).status).toBe(200);
        } finally {
          knex.removeListener('query', record);
        }
        // The key with the user's access to the product; the session with whether the chunk is a
        // re-send; the chunk row (its trigger counts it); the status update, which returns the
        // received list (no chunk rows read). (The prefix fold, started by
        // the chunk, runs its own lookups of the session and of chunk 0 meanwhile; not the request's.)
        const fold = /^select (c\.chunk_index|u0\.\* from upload_sessions)/;
        const request = statements.filter((sql) => !fold.test(sql.replace(/[`"]/g, '')));
        expect(request, request.join('\n')).toHaveLength(4);
        // No statement reads every chunk row of the session (a recount of received_bytes, or the
        // list of indexes): the status update returns the map the chunk rows' trigger keeps.
        expect(request.filter((sql) => /received_bytes = \(select|order by chunk_index/.test(sql.replace(/[`"]/g, '')))).toEqual([]);
        expect(request[0]).toMatch(/from api_keys k join users u .* left join products p on p\.id = /);
        expect(request.some((sql) => /from products p join spaces s/.test(sql))).toBe(false);
      });

      it('replaces a re-sent chunk and falls back to hashing everything', async () => {
        const pid = await app.client.createModel('Replace');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        const wrong = randomData(target.chunkSize);
        for (const i of [0, 1, 2]) await app.client.putChunk(pid, id, i, i === 1 ? wrong : chunkOf(data, target.chunkSize, i));
        const again = await app.client.putChunk(pid, id, 1, chunkOf(data, target.chunkSize, 1));
        expect(again.status).toBe(200);
        expect(again.body.received_bytes).toBe(size); // a replacement is not counted twice
        expect((await session(id)).hash_broken).toBe(true);
        expect((await chunkRows(id))[1]!.sha256).toBe(sha256(chunkOf(data, target.chunkSize, 1)));
        const done = await app.client.complete(pid, id, { sha256: sha256(data) });
        expect(done.status).toBe(201);
        expect((await downloadBytes(pid, done.body.id)).equals(data)).toBe(true);
      });

      // fs only: S3 replaces a part atomically, and its parts cannot be torn from outside.
      it.skipIf(factory.name !== 'fs+sqlite')('never assembles a re-sent chunk a crash tore: completion drops it (409) and takes it once re-sent', async () => {
        const pid = await app.client.createModel('Torn re-send');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        for (const i of [0, 1, 2, 1]) expect((await app.client.putChunk(pid, id, i, chunkOf(data, target.chunkSize, i))).status).toBe(200);
        // What a kill in the middle of copying the re-send in left (before redo files): half of the
        // chunk's range holds other bytes.
        const file = stagingFile((await session(id)).staging_key);
        const fd = fs.openSync(file, 'r+');
        fs.writeSync(fd, randomData(target.chunkSize / 2), 0, target.chunkSize / 2, target.chunkSize);
        fs.closeSync(fd);

        const refused = await app.client.complete(pid, id, {});
        expect(refused.status).toBe(409);
        expect(refused.body).toMatchObject({ code: 'upload_incomplete', errors: [{ loc: ['chunks', 1], type: 'missing' }] });
        expect(refused.body.detail).toMatch(/chunk\(s\) 1 do not match/);
        expect((await app.client.session(pid, id)).body).toMatchObject({
          status: 'uploading',
          received_chunks: [0, 2],
          received_bytes: size - target.chunkSize,
        });
        expect((await session(id)).received_bytes).toBe(size - target.chunkSize);
        expect(await app.em().count(ModelArtifact, { id: (await session(id)).artifact_id })).toBe(0);

        expect((await app.client.putChunk(pid, id, 1, chunkOf(data, target.chunkSize, 1))).status).toBe(200);
        const done = await app.client.complete(pid, id, {});
        expect(done.status).toBe(201);
        expect(done.body.sha256).toBe(sha256(data));
        expect((await downloadBytes(pid, done.body.id)).equals(data)).toBe(true);
      });

      it('counts a chunk in the statement that records its row: a connection lost right after it loses no count', async () => {
        const pid = await app.client.createModel('Lost count');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        expect((await app.client.putChunk(pid, id, 0, chunkOf(data, target.chunkSize, 0))).status).toBe(200);
        // What a connection lost right after chunk 1's row leaves: the row, and nothing else run.
        await app.em().insert(UploadChunk, {
          id: randomUUID(),
          session: id,
          chunk_index: 1,
          size_bytes: target.chunkSize,
          sha256: sha256(chunkOf(data, target.chunkSize, 1)),
          received_at: new Date(),
        } as never);
        expect((await session(id)).received_bytes).toBe(2 * target.chunkSize);
        expect((await app.client.session(pid, id)).body).toMatchObject({ received_chunks: [0, 1], received_bytes: 2 * target.chunkSize });
        // The client's retry of chunk 1 is a re-send: not counted twice.
        expect((await app.client.putChunk(pid, id, 1, chunkOf(data, target.chunkSize, 1))).body).toMatchObject({ received_chunks: [0, 1], received_bytes: 2 * target.chunkSize });
        expect((await session(id)).received_bytes).toBe(2 * target.chunkSize);
        expect((await app.client.putChunk(pid, id, 2, chunkOf(data, target.chunkSize, 2))).body.received_bytes).toBe(size);
        expect((await session(id)).received_bytes).toBe(size);
        expect((await app.client.complete(pid, id, { sha256: sha256(data) })).status).toBe(201);
      });

      it('verifies Content-Digest: a mismatch stores nothing and keeps the earlier chunk intact', async () => {
        const pid = await app.client.createModel('Digest');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        const c0 = chunkOf(data, target.chunkSize, 0);
        const c2 = chunkOf(data, target.chunkSize, 2);

        const first = await app.client.putChunk(pid, id, 2, c2, { 'Content-Digest': contentDigest(Buffer.from('other bytes')) });
        expect(first.status).toBe(422);
        expect(first.body).toMatchObject({ code: 'chunk_digest_mismatch', detail: 'Chunk 2 does not match its Content-Digest; it was not stored.' });
        expect((await app.client.session(pid, id)).body.received_chunks).toEqual([]);

        expect((await app.client.putChunk(pid, id, 0, c0, { 'Content-Digest': contentDigest(c0) })).status).toBe(200);
        const corrupt = Buffer.from(c0);
        corrupt[100] = corrupt[100]! ^ 0xff;
        const bad = await app.client.putChunk(pid, id, 0, corrupt, { 'Content-Digest': contentDigest(c0) });
        expect(bad.status).toBe(422);
        expect(bad.body.code).toBe('chunk_digest_mismatch');
        expect((await chunkRows(id))[0]!.sha256).toBe(sha256(c0));

        // Other algorithms are ignored; a malformed sha-256 is a validation error.
        expect((await app.client.putChunk(pid, id, 2, c2, { 'Content-Digest': 'sha-512=:AAAA:, unixsum=:1:' })).status).toBe(200);
        const malformed = await app.client.putChunk(pid, id, 1, chunkOf(data, target.chunkSize, 1), { 'Content-Digest': 'sha-256=:abc:' });
        expect(malformed.status).toBe(422);
        expect(malformed.body.errors[0].loc).toEqual(['header', 'Content-Digest']);
        const c1 = chunkOf(data, target.chunkSize, 1);
        expect((await app.client.putChunk(pid, id, 1, c1, { 'Content-Digest': `sha-512=:x:, ${contentDigest(c1)}` })).status).toBe(200);

        const done = await app.client.complete(pid, id, { sha256: sha256(data) });
        // The S3 test server (unlike S3) lets a failed part upload damage the stored part; real S3
        // keeps it. There the damage shows at completion as a digest mismatch or as assembled
        // bytes of the wrong size — never as an artifact with other bytes than the client sent.
        if (target.backend === 's3' && done.status !== 201) {
          expect(done.status).toBe(422);
          expect(done.body.code).toBe('checksum_mismatch');
          expect(done.body.detail).toMatch(/^(SHA-256 of the uploaded bytes is|The assembled bytes are \d+ bytes, expected)/);
          expect(await app.em().count(ModelArtifact, { id: (await session(id)).artifact_id })).toBe(0);
          return;
        }
        expect(done.status).toBe(201);
        expect(done.body.sha256).toBe(sha256(data));
        expect((await downloadBytes(pid, done.body.id)).equals(data)).toBe(true);
      });

      it('rejects a chunk of the wrong length (422) and an index out of range (422), storing nothing', async () => {
        const pid = await app.client.createModel('Lengths');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        const short = await app.client.putChunk(pid, id, 0, chunkOf(data, target.chunkSize, 0).subarray(1));
        expect(short.status).toBe(422);
        expect(short.body).toMatchObject({ code: 'chunk_size_mismatch', detail: `Chunk 0 must be exactly ${target.chunkSize} bytes; received ${target.chunkSize - 1}.` });
        const lastTooLong = await app.client.putChunk(pid, id, 2, chunkOf(data, target.chunkSize, 1));
        expect(lastTooLong.status).toBe(422);
        expect(lastTooLong.body.code).toBe('chunk_size_mismatch');
        const empty = await app.client.putChunk(pid, id, 1, Buffer.alloc(0));
        expect(empty.status).toBe(422);
        const out = await app.client.putChunk(pid, id, 3, Buffer.alloc(10));
        expect(out.status).toBe(422);
        expect(out.body.code).toBe('chunk_index_out_of_range');
        expect((await app.client.request('PUT', `${base(pid, id)}/chunks/-1`, { body: Buffer.alloc(1) })).status).toBe(422);
        expect((await app.client.request('PUT', `${base(pid, id)}/chunks/abc`, { body: Buffer.alloc(1) })).status).toBe(422);
        expect((await chunkRows(id)).length).toBe(0);
        expect((await app.client.session(pid, id)).body).toMatchObject({ status: 'initialized', received_bytes: 0 });
      });

      it('answers a chunk with the wrong content type with 415', async () => {
        const pid = await app.client.createModel('Types');
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: 10 });
        const res = await app.client.request('PUT', `${base(pid, init.body.id)}/chunks/0`, { body: JSON.stringify({ a: 1 }), headers: { 'Content-Type': 'application/json' } });
        expect(res.status).toBe(415);
        expect(res.body.code).toBe('unsupported_media_type');
        const text = await app.client.request('PUT', `${base(pid, init.body.id)}/chunks/0`, { body: '0123456789', headers: { 'Content-Type': 'text/plain' } });
        expect(text.status).toBe(415);
      });

      it('cuts off a body longer than its chunk at once: with a Content-Length (never read) and without one', async () => {
        const pid = await app.client.createModel('Too long');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        const url = `${base(pid, id)}/chunks/0`;

        // Declared too long: answered before a byte of the body is sent.
        const declared = rawPut(app.origin, url, { key: app.owner.key, contentLength: 64 * MiB });
        declared.req.flushHeaders();
        const early = await declared.response;
        expect(early.status).toBe(422);
        expect(early.body).toMatchObject({ code: 'chunk_size_mismatch', detail: `Chunk 0 must be exactly ${target.chunkSize} bytes; received ${64 * MiB}.` });
        expect(early.headers.connection).toBe('close');
        expect(declared.written()).toBe(0);
        declared.destroy();

        // Chunked, endless: the server stops reading once the chunk size is passed.
        const endless = rawPut(app.origin, url, { key: app.owner.key });
        let answered = false;
        const answer = endless.response.finally(() => (answered = true));
        const piece = randomData(64 * KiB);
        while (!answered && endless.written() < 256 * MiB && !endless.req.destroyed) await endless.write(piece);
        const res = await answer;
        expect(res.status).toBe(422);
        expect(res.body.code).toBe('chunk_size_mismatch');
        expect(res.headers.connection).toBe('close');
        // Socket buffers hold a few MiB at most: far less than the 256 MiB the client would send.
        expect(endless.written()).toBeLessThan(target.chunkSize + 32 * MiB);
        endless.destroy();

        expect((await chunkRows(id)).length).toBe(0);
        // The connection is gone, the server is fine: the right chunk goes in.
        expect((await app.client.putChunk(pid, id, 0, chunkOf(data, target.chunkSize, 0))).status).toBe(200);
      });

      it('does not count a chunk whose client disconnects midway; a re-send then works', async () => {
        const pid = await app.client.createModel('Disconnect');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        const c1 = chunkOf(data, target.chunkSize, 1);
        const put = rawPut(app.origin, `${base(pid, id)}/chunks/1`, { key: app.owner.key, contentLength: c1.length });
        await put.write(c1.subarray(0, c1.length / 2));
        await new Promise((r) => setTimeout(r, 100));
        put.destroy();
        await expect(put.response).rejects.toThrow();
        await new Promise((r) => setTimeout(r, 100));
        expect((await app.client.session(pid, id)).body).toMatchObject({ received_chunks: [], received_bytes: 0 });
        for (const i of [0, 1, 2]) expect((await app.client.putChunk(pid, id, i, chunkOf(data, target.chunkSize, i))).status).toBe(200);
        const done = await app.client.complete(pid, id, { sha256: sha256(data) });
        expect(done.status).toBe(201);
        expect((await downloadBytes(pid, done.body.id)).equals(data)).toBe(true);
      });

      it('after completion: chunks and abort are 409, completing again returns the same artifact with 200', async () => {
        const pid = await app.client.createModel('Retry');
        const data = randomData(size);
        const { uploadId, artifact } = await app.client.upload(pid, data);
        const chunk = await app.client.putChunk(pid, uploadId, 0, chunkOf(data, target.chunkSize, 0));
        expect(chunk.status).toBe(409);
        expect(chunk.body).toMatchObject({ code: 'upload_not_writable', detail: `Upload session ${uploadId} is completed and takes no more chunks.` });
        const again = await app.client.complete(pid, uploadId, { is_current: true });
        expect(again.status).toBe(200);
        expect(again.body).toEqual(artifact);
        expect(again.headers.get('location')).toBeNull();
        expect((await app.client.request('DELETE', base(pid, uploadId))).status).toBe(409);
        expect(await app.em().count(ModelArtifact, { product: pid })).toBe(1);
      });

      it('fails a completion whose digest differs: 422, session failed, bytes gone, no artifact', async () => {
        const pid = await app.client.createModel('Mismatch');
        const data = randomData(size);
        const { uploadId } = await app.client.sendAll(pid, data, { sha256: 'b'.repeat(64) });
        const row = await session(uploadId);
        const done = await app.client.complete(pid, uploadId);
        expect(done.status).toBe(422);
        expect(done.body.code).toBe('checksum_mismatch');
        expect(done.body.detail).toBe(
          `SHA-256 of the uploaded bytes is ${sha256(data)}, expected ${'b'.repeat(64)}; the upload failed and its bytes were discarded.`,
        );
        const after = await session(uploadId);
        expect(after.status).toBe('failed');
        expect(after.cleaned_at).toBeInstanceOf(Date);
        expect(await app.em().count(ModelArtifact, { product: pid })).toBe(0);
        expect(await blobExists(row.staging_key)).toBe(false);
        if (target.backend === 'fs') expect(fs.existsSync(stagingFile(row.staging_key))).toBe(false);
        expect((await app.client.session(pid, uploadId)).body.status).toBe('failed');
        expect((await app.client.putChunk(pid, uploadId, 0, chunkOf(data, target.chunkSize, 0))).status).toBe(409);
        expect((await app.client.complete(pid, uploadId)).status).toBe(409);

        // The digest given at completion is checked too.
        const second = await app.client.sendAll(pid, data, { sha256: sha256(data) });
        const wrongAtEnd = await app.client.complete(pid, second.uploadId, { sha256: 'c'.repeat(64) });
        expect(wrongAtEnd.status).toBe(422);
        expect((await session(second.uploadId)).status).toBe('failed');
      });

      it('uploads a 0-byte artifact without chunks', async () => {
        const pid = await app.client.createModel('Empty');
        const init = await app.client.initiate(pid, { file_name: 'empty.txt', content_type: 'text/plain', total_size_bytes: 0, sha256: EMPTY_SHA256 });
        expect(init.body).toMatchObject({ chunk_count: 0, received_chunks: [] });
        expect((await app.client.putChunk(pid, init.body.id, 0, Buffer.alloc(0))).body.code).toBe('chunk_index_out_of_range');
        const done = await app.client.complete(pid, init.body.id);
        expect(done.status).toBe(201);
        expect(done.body).toMatchObject({ size_bytes: 0, sha256: EMPTY_SHA256 });
        expect((await downloadBytes(pid, done.body.id)).length).toBe(0);
      });

      it('keeps exactly one current artifact and the summary fields exact', async () => {
        const pid = await app.client.createModel('Current');
        const first = await app.client.upload(pid, randomData(100), { file_name: 'weights.safetensors', is_current: true, artifact_kind: 'weights' });
        const second = await app.client.upload(pid, randomData(200), { file_name: 'model.bin', metadata: { format: 'GGUF' } });
        let summary = (await app.client.request('GET', `/catalog/products/${pid}/model-repository`)).body;
        expect(summary).toMatchObject({
          artifact_count: 2,
          current_artifact_id: first.artifact.id,
          current_artifact_file_name: 'weights.safetensors',
          current_artifact_kind: 'weights',
          current_artifact_model_format: 'safetensors',
          current_artifact_size_bytes: 100,
          current_artifact_sha256: first.artifact.sha256,
        });
        // Completing with is_current: true overrides the initiation and moves the flag.
        const { uploadId } = await app.client.sendAll(pid, randomData(300), { file_name: 'model.gguf', metadata: { format: 'GGUF' } });
        const third = await app.client.complete(pid, uploadId, { is_current: true });
        summary = (await app.client.request('GET', `/catalog/products/${pid}/model-repository`)).body;
        expect(summary).toMatchObject({ artifact_count: 3, current_artifact_id: third.body.id, current_artifact_model_format: 'gguf' });
        const list = (await app.client.request('GET', `/catalog/products/${pid}/model-artifacts`)).body as { id: string; is_current: boolean }[];
        expect(list.map((a) => a.id)).toEqual([third.body.id, second.artifact.id, first.artifact.id]);
        expect(list.filter((a) => a.is_current).map((a) => a.id)).toEqual([third.body.id]);
      });

      it('shows storage_uri relative to the backend, also for filesystem rows stored with the host path', async () => {
        const pid = await app.client.createModel('Storage URI');
        const { artifact } = await app.client.upload(pid, randomData(10));
        if (target.backend !== 'fs') {
          expect(artifact.storage_uri).toMatch(/^s3:\/\/[^/]+\/repo\/artifacts\//);
          return;
        }
        expect(artifact.storage_uri).toBe(`fs://artifacts/${pid}/${artifact.id}`);
        expect(JSON.stringify(artifact)).not.toContain(app.config.storageDir);
        // A row written before: file:///<absolute path>. The API maps it.
        await app.em().nativeUpdate(ModelArtifact, { id: artifact.id }, { storage_uri: `file://${app.config.storageDir}/artifacts/${pid}/${artifact.id}` });
        const read = await app.client.request('GET', `/catalog/products/${pid}/model-artifacts/${artifact.id}`);
        expect(read.body.storage_uri).toBe(`fs://artifacts/${pid}/${artifact.id}`);
        const listed = await app.client.request('GET', `/catalog/products/${pid}/model-artifacts`);
        expect(listed.text).not.toContain(app.config.storageDir);
      });

      it('keeps any file name as given and never uses it as a storage path', async () => {
        const pid = await app.client.createModel('Names');
        const names = ['../../etc/passwd', 'dir/sub\\file.onnx', '..', 'a\u0001b\r\nc\u001b[31m\u007f.bin', '\u202Egnp.exe', 'modèle "v2" 🚀.onnx', 'x'.repeat(1024)];
        for (const name of names) {
          const { artifact } = await app.client.upload(pid, randomData(10), { file_name: name });
          expect(artifact.file_name).toBe(name);
          expect(artifact.storage_uri).toBe(target.backend === 'fs' ? `fs://artifacts/${pid}/${artifact.id}` : `s3://${target.s3!.bucket}/repo/artifacts/${pid}/${artifact.id}`);
          const dl = await app.client.download(pid, artifact.id, {}, 'HEAD');
          const disposition = target.backend === 'fs' ? dl.headers.get('content-disposition')! : null;
          if (disposition) {
            expect(disposition).toMatch(/^attachment; filename="[\x20-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9%._~!$&+,;=:@-]*$/);
            const fallback = /filename="([^"]*)"/.exec(disposition)![1]!;
            expect(fallback).not.toMatch(/[/\\]/);
            expect(fallback.length).toBeLessThanOrEqual(150);
          }
        }
        if (target.backend === 'fs') {
          // Nothing outside artifacts/<product>/<uuid>.
          const files = fs.readdirSync(path.join(app.config.storageDir, 'artifacts', pid));
          expect(files.every((f) => /^[0-9a-f-]{36}$/.test(f))).toBe(true);
        }
        const tooLong = await app.client.initiate(pid, { file_name: 'y'.repeat(4096), content_type: 'text/plain', total_size_bytes: 1 });
        expect(tooLong.status).toBe(422);
        expect(tooLong.body.errors[0].loc).toEqual(['body', 'file_name']);
        // NUL is the one character no database can keep.
        const nul = await app.client.initiate(pid, { file_name: 'a\u0000b', content_type: 'text/plain', total_size_bytes: 1 });
        expect(nul.status).toBe(422);
        expect(nul.body.errors[0].loc).toEqual(['body', 'file_name']);
        const nulMeta = await app.client.initiate(pid, { file_name: 'a', content_type: 'text/plain', total_size_bytes: 1, metadata: { k: 'x\u0000' } });
        expect(nulMeta.status).toBe(422);
        expect(nulMeta.body.errors[0].loc.slice(0, 2)).toEqual(['body', 'metadata']);
      });
    });

    describe('abort', () => {
      it('aborts: 204, staged bytes freed, the session is gone', async () => {
        const pid = await app.client.createModel('Abort');
        const data = randomData(size);
        const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: size });
        const id = init.body.id;
        await app.client.putChunk(pid, id, 0, chunkOf(data, target.chunkSize, 0));
        const row = await session(id);
        expect((await app.client.request('DELETE', base(pid, id))).status).toBe(204);
        expect((await session(id)).status).toBe('aborted');
        if (target.backend === 'fs') {
          expect(fs.existsSync(stagingFile(row.staging_key))).toBe(false);
          expect((await session(id)).cleaned_at).toBeInstanceOf(Date);
        }
        // (The S3 test server answers AbortMultipartUpload with 405: the sweeper retries it.)
        expect((await app.client.session(pid, id)).status).toBe(404);
        expect((await app.client.putChunk(pid, id, 1, chunkOf(data, target.chunkSize, 1))).status).toBe(404);
        expect((await app.client.complete(pid, id)).status).toBe(404);
        expect((await app.client.request('DELETE', base(pid, id))).status).toBe(404);
      });
    });
  });
}
