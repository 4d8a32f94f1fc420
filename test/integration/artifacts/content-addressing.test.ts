/**
 * Content-addressed storage on filesystem + SQLite and on S3 + PostgreSQL: identical bytes are
 * stored once with a reference count kept with the artifact rows; deletes remove bytes only
 * with the last reference (a download of a sharing artifact meanwhile completes); the sweeper
 * repairs counts a crash left wrong; instant upload for callers who can view the bytes, an
 * ordinary session for the others; two server processes completing the same new bytes at once;
 * `admin dedup-storage` for artifacts stored before.
 */
import http from 'node:http';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../server/src/cli/program.ts';
import { BlobDeletion, ContentBlob, ModelArtifact } from '../../../server/src/persistence/entities.ts';
import * as admin from '../../../server/src/services/admin.ts';
import {
  API,
  ArtifactClient,
  apiRequest,
  randomData,
  sha256,
  startArtifactApp,
  startArtifactServer,
  storageTargets,
  storedArtifactKeys,
  tempDir,
  type ArtifactApp,
  type StorageTarget,
} from '../../support/artifacts.ts';
import type { StartedServer } from '../../support/server.ts';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`content-addressed storage on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;

    beforeAll(async () => {
      target = await factory.create!();
      // Proxy mode on S3: downloads stream through the server, so a test can hold one open.
      app = await startArtifactApp(target, { S3_DOWNLOAD_MODE: 'proxy' });
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    const blobRow = (digest: string) => app.em().findOne(ContentBlob, { sha256: digest });
    const artifactRow = (id: string) => app.em().findOneOrFail(ModelArtifact, { id });
    const multipart = async (client: ArtifactClient, pid: string, bytes: Buffer, name = 'weights.bin') => {
      const body = new FormData();
      body.append('file', new Blob([new Uint8Array(bytes)]), name);
      const res = await apiRequest(client.origin, 'POST', `/catalog/products/${pid}/model-artifacts`, { key: client.key, body });
      expect(res.status, res.text).toBe(201);
      return res.body;
    };
    const del = (client: ArtifactClient, pid: string, id: string) => client.request('DELETE', `/catalog/products/${pid}/model-artifacts/${id}`);

    it('stores identical bytes once: one blob, a count per artifact, the later copy removed', async () => {
      const p1 = await app.client.createModel('Base model');
      const p2 = await app.client.createModel('Fine-tune');
      const bytes = randomData(2 * target.chunkSize + 123);
      const { artifact: a } = await app.client.upload(p1, bytes); // chunked
      const b = await multipart(app.client, p2, bytes); // single request
      const { artifact: c } = await app.client.upload(p2, bytes, { file_name: 'again.bin' });
      expect([a.sha256, b.sha256, c.sha256]).toEqual([sha256(bytes), sha256(bytes), sha256(bytes)]);
      expect(b.storage_uri).toBe(a.storage_uri);
      expect(c.storage_uri).toBe(a.storage_uri);
      expect(await blobRow(sha256(bytes))).toMatchObject({ storage_key: `artifacts/${p1}/${a.id}`, ref_count: 3, size_bytes: bytes.length });
      // Only the first upload's bytes are in storage; the other copies were removed after commit.
      expect(storedArtifactKeys(app, p1)).toEqual([`artifacts/${p1}/${a.id}`]);
      expect(storedArtifactKeys(app, p2)).toEqual([]);
      expect(await app.em().count(BlobDeletion, {})).toBe(0);
      for (const [pid, id] of [[p1, a.id], [p2, b.id], [p2, c.id]] as const) {
        const got = await app.client.download(pid, id);
        expect(got.status).toBe(200);
        expect(got.bytes.equals(bytes)).toBe(true);
      }
    });

    it('deleting removes the bytes only with the last reference; a download of a sharing artifact meanwhile completes', async () => {
      const p1 = await app.client.createModel('Shared 1');
      const p2 = await app.client.createModel('Shared 2');
      const bytes = randomData(6 * 1024 * 1024 + 17);
      const a = await multipart(app.client, p1, bytes);
      const b = await multipart(app.client, p2, bytes);
      const key = `artifacts/${p1}/${a.id}`;

      // Start downloading b, read its first bytes, delete a (and b's bytes stay), finish reading.
      const received: Buffer[] = [];
      const done = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const req = http.get(`${app.origin}${API}/catalog/products/${p2}/model-artifacts/${b.id}/download`, { headers: { Authorization: `Bearer ${app.owner.key}` } }, (res) => {
          res.once('data', async (first: Buffer) => {
            received.push(first);
            res.pause();
            try {
              expect((await del(app.client, p1, a.id)).status).toBe(204);
            } catch (err) {
              reject(err as Error);
            }
            res.on('data', (d: Buffer) => received.push(d));
            res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(received) }));
            res.resume();
          });
          res.on('error', reject);
        });
        req.on('error', reject);
      });
      const download = await done;
      expect(download.status).toBe(200);
      expect(download.body.equals(bytes)).toBe(true);
      expect(await blobRow(sha256(bytes))).toMatchObject({ storage_key: key, ref_count: 1 });
      expect((await artifactRow(a.id)).bytes_removed_at).toBeInstanceOf(Date);
      expect(await app.storage.head(key)).toEqual({ size: bytes.length });

      expect((await del(app.client, p2, b.id)).status).toBe(204);
      expect(await blobRow(sha256(bytes))).toBeNull();
      expect(await app.storage.head(key)).toBeNull();
      expect((await artifactRow(b.id)).bytes_removed_at).toBeInstanceOf(Date);
      expect(await app.em().count(BlobDeletion, {})).toBe(0);
    });

    it('the sweeper repairs counts a crash left wrong, and removes bytes no artifact uses', async () => {
      const p = await app.client.createModel('Crash');
      const bytes = randomData(3000);
      const a = await multipart(app.client, p, bytes);
      const b = await multipart(app.client, p, bytes);
      const digest = sha256(bytes);
      // As if a process died after writing b's row but before counting it (and a count ran away).
      await app.em().nativeUpdate(ContentBlob, { sha256: digest }, { ref_count: 1, updated_at: new Date(0) });
      let report = await app.services.sweeper.runOnce();
      expect(report.blobsRepaired).toBe(1);
      expect((await blobRow(digest))!.ref_count).toBe(2);
      await app.em().nativeUpdate(ContentBlob, { sha256: digest }, { ref_count: 7 });
      await app.services.sweeper.runOnce();
      expect((await blobRow(digest))!.ref_count).toBe(2);

      // Deleted behind the service's back (both rows marked without releasing): the blob is
      // released and its bytes removed by the sweep.
      await app.em().nativeUpdate(ModelArtifact, { id: { $in: [a.id, b.id] } }, { status: 'deleted', is_current: false });
      report = await app.services.sweeper.runOnce();
      expect(report.blobsReleased).toBe(1);
      expect(report.bytesRemoved).toBeGreaterThanOrEqual(1);
      expect(await blobRow(digest)).toBeNull();
      expect(await app.storage.head(`artifacts/${p}/${a.id}`)).toBeNull();

      // Bytes queued for removal whose removal was interrupted (a crash after the commit).
      const leftover = `artifacts/${p}/leftover`;
      await app.storage.put(leftover, Readable.from([Buffer.from('orphaned copy')]), { contentType: 'application/octet-stream' });
      await app.em().insert(BlobDeletion, { storage_key: leftover, not_before: new Date(Date.now() - 1000), created_at: new Date() });
      await app.services.sweeper.runOnce();
      expect(await app.storage.head(leftover)).toBeNull();
      expect(await app.em().count(BlobDeletion, { storage_key: leftover })).toBe(0);
    });

    it('instant upload: a caller who can view the bytes completes without sending them; one who cannot gets an ordinary session', async () => {
      const p1 = await app.client.createModel('Instant source');
      const bytes = randomData(2 * target.chunkSize + 5);
      const { artifact: source } = await app.client.upload(p1, bytes);
      const init = { file_name: 'same.bin', content_type: 'application/octet-stream', total_size_bytes: bytes.length, sha256: sha256(bytes) };

      const p2 = await app.client.createModel('Instant target');
      const session = await app.client.initiate(p2, init);
      expect(session.status).toBe(201);
      const chunks = [...Array(session.body.chunk_count).keys()];
      expect(session.body).toMatchObject({ deduplicated: true, received_chunks: chunks, received_bytes: bytes.length, status: 'uploading' });
      expect((await app.client.putChunk(p2, session.body.id, 0, bytes.subarray(0, session.body.chunk_size_bytes))).status).toBe(409);
      const done = await app.client.complete(p2, session.body.id, { is_current: true });
      expect(done.status).toBe(201);
      expect(done.body).toMatchObject({ sha256: sha256(bytes), size_bytes: bytes.length, storage_uri: source.storage_uri, status: 'available', is_current: true });
      expect((await app.client.download(p2, done.body.id)).bytes.equals(bytes)).toBe(true);
      expect((await blobRow(sha256(bytes)))!.ref_count).toBe(2);
      expect((await app.client.session(p2, session.body.id)).body).toMatchObject({ status: 'completed', artifact_id: done.body.id, deduplicated: true });

      // Different bytes, or a wrong size: ordinary sessions.
      expect((await app.client.initiate(p2, { ...init, total_size_bytes: bytes.length + 1 })).body.deduplicated).toBe(false);
      expect((await app.client.initiate(p2, { ...init, sha256: sha256(randomData(10)) })).body.deduplicated).toBe(false);

      // A user with edit on their own space's model but no access to these products: no leak.
      await admin.createSpace(app.em(), { org: 'acme', space: `private-${target.backend}` });
      await admin.createUser(app.em(), { email: `outsider-${target.backend}@example.com` });
      await admin.addSpaceMember(app.em(), { email: `outsider-${target.backend}@example.com`, space: `private-${target.backend}`, role: 'editor' });
      const { api_key } = await admin.createApiKey(app.em(), { email: `outsider-${target.backend}@example.com` });
      const outsider = new ArtifactClient(app.origin, api_key);
      const own = await outsider.createModel('Outsider model', `private-${target.backend}`);
      expect((await outsider.request('GET', `/catalog/products/${p1}/model-repository`)).status).toBe(404);
      const blind = await outsider.initiate(own, init);
      expect(blind.status).toBe(201);
      expect(blind.body).toMatchObject({ deduplicated: false, received_chunks: [], received_bytes: 0, status: 'initialized' });
      // Sending the bytes works as usual, and references the same blob.
      const sent = await outsider.upload(own, bytes, init);
      expect(sent.artifact.storage_uri).toBe(source.storage_uri);

      // Given view access to the source model, the same user gets the instant upload.
      await admin.grant(app.em(), { email: `outsider-${target.backend}@example.com`, productId: p1, access: 'view' });
      expect((await outsider.initiate(own, init)).body.deduplicated).toBe(true);
    });

    it('an instant upload whose bytes were deleted before completion fails cleanly', async () => {
      const p = await app.client.createModel('Gone');
      const bytes = randomData(4000);
      const a = await multipart(app.client, p, bytes);
      const session = await app.client.initiate(p, { file_name: 'x.bin', content_type: 'application/octet-stream', total_size_bytes: bytes.length, sha256: sha256(bytes) });
      expect(session.body.deduplicated).toBe(true);
      expect((await del(app.client, p, a.id)).status).toBe(204);
      const done = await app.client.complete(p, session.body.id);
      expect(done.status).toBe(409);
      expect(done.body).toMatchObject({ code: 'upload_not_writable', detail: expect.stringContaining('deleted meanwhile') });
      expect((await app.client.session(p, session.body.id)).body.status).toBe('failed');
    });

    it('admin dedup-storage folds artifacts stored before content addressing into one copy and reports the bytes freed', async () => {
      const p = await app.client.createModel('Legacy');
      const bytes = randomData(5000);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await multipart(app.client, p, bytes, `legacy-${i}.bin`)).id);
      // Back to how an older version stored them: each artifact its own copy, no blob row.
      await app.em().nativeDelete(ContentBlob, { sha256: sha256(bytes) });
      for (const id of ids) {
        const key = `artifacts/${p}/${id}`;
        await app.storage.put(key, Readable.from([bytes]), { contentType: 'application/octet-stream' });
        await app.em().nativeUpdate(ModelArtifact, { id }, { storage_key: key, storage_uri: app.storage.uri(key) });
      }
      expect(storedArtifactKeys(app, p)).toHaveLength(3);

      const out: string[] = [];
      const err: string[] = [];
      const env: Record<string, string> = { ...target.env(app.config.dataDir), DATA_DIR: app.config.dataDir, LOG_LEVEL: 'silent' };
      // The AWS SDK reads its credentials from the process environment.
      const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
      if (env.AWS_ACCESS_KEY_ID) Object.assign(process.env, { AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY });
      const cli = async () => {
        out.length = 0;
        const code = await runCli(['dedup-storage', '--grace-seconds', '0'], { env, stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
        expect(code, err.join('')).toBe(0);
        return JSON.parse(out.join(''));
      };
      let report: Record<string, unknown>;
      let again: Record<string, unknown>;
      try {
        report = await cli();
        again = await cli();
      } finally {
        for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
      expect(report).toMatchObject({ artifacts_relinked: 2, copies_removed: 2, bytes_freed: 2 * bytes.length, copies_pending: 0 });
      expect(storedArtifactKeys(app, p)).toEqual([`artifacts/${p}/${ids[0]}`]);
      expect(await blobRow(sha256(bytes))).toMatchObject({ storage_key: `artifacts/${p}/${ids[0]}`, ref_count: 3 });
      for (const id of ids) expect((await app.client.download(p, id)).bytes.equals(bytes)).toBe(true);

      // The second run found nothing left to do.
      expect(again).toMatchObject({ artifacts_relinked: 0, copies_removed: 0, bytes_freed: 0 });
    });

    it('two server processes completing uploads of the same new bytes at once: one blob, two artifacts, count 2', async () => {
      const dir = tempDir('mr-cas-');
      const servers: StartedServer[] = [];
      try {
        // The second process shares the first one's database and storage.
        const env: Record<string, string> =
          target.backend === 'fs' ? { STORAGE_DIR: app.config.storageDir, DATABASE_URL: `sqlite:${app.config.dataDir}/model-repository.db` } : {};
        for (let i = 0; i < 2; i++) servers.push(await startArtifactServer(target, dir, env));
        const [one, two] = servers.map((s) => new ArtifactClient(s.baseUrl, app.owner.key));
        const p1 = await app.client.createModel('Race 1');
        const p2 = await app.client.createModel('Race 2');
        const bytes = randomData(target.chunkSize + 77);
        const [s1, s2] = await Promise.all([one!.sendAll(p1, bytes), two!.sendAll(p2, bytes)]);
        const [d1, d2] = await Promise.all([one!.complete(p1, s1.uploadId), two!.complete(p2, s2.uploadId)]);
        expect([d1.status, d2.status]).toEqual([201, 201]);
        expect(d1.body.storage_uri).toBe(d2.body.storage_uri);
        const blob = await blobRow(sha256(bytes));
        expect(blob!.ref_count).toBe(2);
        expect([`artifacts/${p1}/${d1.body.id}`, `artifacts/${p2}/${d2.body.id}`]).toContain(blob!.storage_key);
        expect([...storedArtifactKeys(app, p1), ...storedArtifactKeys(app, p2)]).toEqual([blob!.storage_key]);
        expect((await app.client.download(p2, d2.body.id)).bytes.equals(bytes)).toBe(true);
      } finally {
        for (const s of servers) await s.kill();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
