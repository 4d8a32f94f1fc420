/**
 * Downloads, artifact metadata, deletes and the sweeper on filesystem + SQLite and on
 * S3 + PostgreSQL: streamed downloads (fs, and S3 in proxy mode) with ranges, ETags, HEAD and
 * safe Content-Disposition; S3 redirect mode to a presigned URL; vanished bytes; deletes that free
 * the bytes and keep the summary exact; the sweeper's clean-up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelArtifact, UploadSession } from '../../../server/src/persistence/entities.ts';
import { Readable } from 'node:stream';
import {
  API,
  randomData,
  sha256,
  startArtifactApp,
  storageTargets,
  type ArtifactApp,
  type ArtifactClient,
  type StorageTarget,
} from '../../support/artifacts.ts';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`downloads and deletes on ${factory.name}`, () => {
    let target: StorageTarget;
    /** fs; or S3 in redirect mode (the default). */
    let app: ArtifactApp;
    /** The app that streams: `app` on fs, a second app in proxy mode on S3 (same database and bucket). */
    let streaming: ArtifactApp;
    let client: ArtifactClient;
    let pid: string;
    let data: Buffer;
    let artifact: { id: string; sha256: string; storage_uri: string };

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
      streaming = target.backend === 's3' ? await startArtifactApp(target, { S3_DOWNLOAD_MODE: 'proxy' }) : app;
      client = streaming.client;
      pid = await app.client.createModel('Downloads');
      data = randomData(target.chunkSize + 4321);
      ({ artifact } = await app.client.upload(pid, data, { file_name: 'résumé "final".onnx', content_type: 'application/x-onnx' }));
    });
    afterAll(async () => {
      if (streaming !== app) await streaming?.close();
      await app?.close();
      await target?.close();
    });

    const dl = (headers: Record<string, string> = {}, method = 'GET', id = artifact.id) => client.download(pid, id, headers, method);

    describe('streaming (fs, or S3 in proxy mode)', () => {
      it('sends the bytes with type, length, disposition, ETag, Accept-Ranges and nosniff', async () => {
        const res = await dl();
        expect(res.status).toBe(200);
        expect(res.bytes.equals(data)).toBe(true);
        expect(res.headers.get('content-type')).toBe('application/x-onnx');
        expect(res.headers.get('content-length')).toBe(String(data.length));
        expect(res.headers.get('content-disposition')).toBe(
          `attachment; filename="r_sum_ _final_.onnx"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.onnx`,
        );
        expect(res.headers.get('etag')).toBe(`"${sha256(data)}"`);
        expect(res.headers.get('accept-ranges')).toBe('bytes');
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      });

      it('answers a single Range with 206 and Content-Range', async () => {
        const mid = await dl({ Range: 'bytes=10-99' });
        expect(mid.status).toBe(206);
        expect(mid.bytes.equals(data.subarray(10, 100))).toBe(true);
        expect(mid.headers.get('content-range')).toBe(`bytes 10-99/${data.length}`);
        expect(mid.headers.get('content-length')).toBe('90');
        const open = await dl({ Range: `bytes=${data.length - 10}-` });
        expect(open.status).toBe(206);
        expect(open.bytes.equals(data.subarray(data.length - 10))).toBe(true);
        const clamped = await dl({ Range: `bytes=5-${data.length * 2}` });
        expect(clamped.headers.get('content-range')).toBe(`bytes 5-${data.length - 1}/${data.length}`);
        if (target.backend === 'fs') {
          // (The S3 test server answers suffix ranges wrongly: checked on fs only.)
          const suffix = await dl({ Range: 'bytes=-16' });
          expect(suffix.status).toBe(206);
          expect(suffix.bytes.equals(data.subarray(data.length - 16))).toBe(true);
        }
      });

      it('answers an unsatisfiable range with 416, and ignores ranges it does not serve', async () => {
        const past = await dl({ Range: `bytes=${data.length}-` });
        expect(past.status).toBe(416);
        expect(past.headers.get('content-range')).toBe(`bytes */${data.length}`);
        expect(past.body).toMatchObject({ code: 'range_not_satisfiable', status: 416 });
        expect((await dl({ Range: 'bytes=-0' })).status).toBe(416);
        for (const ignored of ['bytes=0-1,5-6', 'items=0-5', 'bytes=9-3', 'nonsense']) {
          const res = await dl({ Range: ignored });
          expect(res.status, ignored).toBe(200);
          expect(res.bytes.length).toBe(data.length);
        }
      });

      it('answers If-None-Match with 304, and HEAD with the headers alone', async () => {
        const etag = `"${sha256(data)}"`;
        const cached = await dl({ 'If-None-Match': etag });
        expect(cached.status).toBe(304);
        expect(cached.headers.get('etag')).toBe(etag);
        expect(cached.bytes.length).toBe(0);
        expect((await dl({ 'If-None-Match': `"other", W/${etag}` })).status).toBe(304);
        expect((await dl({ 'If-None-Match': '"other"' })).status).toBe(200);
        const head = await dl({}, 'HEAD');
        expect(head.status).toBe(200);
        expect(head.bytes.length).toBe(0);
        expect(head.headers.get('content-length')).toBe(String(data.length));
        expect(head.headers.get('etag')).toBe(etag);
        expect(head.headers.get('content-disposition')).toMatch(/^attachment; /);
        const headRange = await dl({ Range: 'bytes=0-9' }, 'HEAD');
        expect(headRange.status).toBe(206);
        expect(headRange.headers.get('content-length')).toBe('10');
      });

      it('needs view access: a viewer downloads, an outsider gets 404', async () => {
        const viewer = await streaming.userWithRole(`dl-viewer-${Date.now()}@example.com`, 'viewer');
        expect((await viewer.download(pid, artifact.id)).status).toBe(200);
        const outsider = await streaming.userWithRole(`dl-outsider-${Date.now()}@example.com`, 'viewer');
        // (A viewer of space `default` sees it; nobody else does.)
        expect((await outsider.download(pid, '00000000-0000-4000-8000-000000000000')).status).toBe(404);
        expect((await client.download(pid, 'not-a-uuid')).status).toBe(404);
      });

      it('sends artifacts larger than its read buffer (1 MiB) whole and in ranges; survives a client that leaves mid-body', async () => {
        const big = randomData(3 * 1024 * 1024 + 12345);
        const bigPid = await app.client.createModel('Downloads big');
        const { artifact: a } = await app.client.upload(bigPid, big, { file_name: 'big.bin', content_type: 'application/octet-stream' });
        const dlBig = (headers: Record<string, string> = {}) => client.download(bigPid, a.id, headers);
        const whole = await dlBig();
        expect(whole.status).toBe(200);
        expect(whole.bytes.equals(big)).toBe(true);
        const from = 1024 * 1024 - 7;
        const to = 2 * 1024 * 1024 + 3;
        const part = await dlBig({ Range: `bytes=${from}-${to}` });
        expect(part.status).toBe(206);
        expect(part.bytes.equals(big.subarray(from, to + 1))).toBe(true);

        // Read a little, then go away: the server cuts the response and keeps serving.
        const abort = new AbortController();
        const res = await fetch(`${client.origin}${API}/catalog/products/${bigPid}/model-artifacts/${a.id}/download`, {
          headers: { Authorization: `Bearer ${client.key}` },
          signal: abort.signal,
        });
        expect(res.status).toBe(200);
        const reader = res.body!.getReader();
        await reader.read();
        abort.abort();
        await reader.read().catch(() => {});
        const again = await dlBig();
        expect(again.bytes.equals(big)).toBe(true);
      });
    });

    describe.runIf(factory.name === 's3+postgresql')('S3 redirect mode', () => {
      it('redirects to a short-lived presigned URL that serves the bytes with the Content-Disposition', async () => {
        const res = await app.client.download(pid, artifact.id);
        expect(res.status).toBe(302);
        const location = res.headers.get('location')!;
        expect(location).toContain('X-Amz-Signature=');
        expect(location).toContain('X-Amz-Expires=300');
        // The strict test server mis-canonicalizes filename*=UTF-8'' in signed queries (see
        // support/s3.ts): fetch through its lenient twin over the same objects.
        const fetched = await fetch(location.replace(target.s3!.endpoint, target.s3Twin!.endpoint));
        expect(fetched.status).toBe(200);
        expect(Buffer.from(await fetched.arrayBuffer()).equals(data)).toBe(true);
        expect(fetched.headers.get('content-disposition')).toBe(
          `attachment; filename="r_sum_ _final_.onnx"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.onnx`,
        );
        expect(fetched.headers.get('content-type')).toBe('application/x-onnx');
        expect((await app.client.download(pid, artifact.id, { 'If-None-Match': `"${artifact.sha256}"` })).status).toBe(304);
      });
    });

    describe('metadata, vanished bytes, deletes', () => {
      it('reads one artifact and lists artifacts newest first', async () => {
        const one = await client.request('GET', `/catalog/products/${pid}/model-artifacts/${artifact.id}`);
        expect(one.status).toBe(200);
        expect(one.body).toMatchObject({ id: artifact.id, product_id: pid, file_name: 'résumé "final".onnx', status: 'available', size_bytes: data.length });
        expect(one.body.storage_backend).toBe(target.backend);
        const list = await client.request('GET', `/catalog/products/${pid}/model-artifacts`);
        expect(list.body.map((a: { id: string }) => a.id)).toContain(artifact.id);
      });

      it('answers 404 "Artifact file not found" when the bytes vanished from storage', async () => {
        const p = await app.client.createModel('Vanished');
        const { artifact: a } = await app.client.upload(p, randomData(1000));
        const key = `artifacts/${p}/${a.id}`;
        await app.storage.delete(key);
        for (const [who, method] of [[streaming, 'GET'], [streaming, 'HEAD'], [app, 'GET']] as const) {
          const res = await who.client.download(p, a.id, {}, method);
          expect(res.status, `${method} via ${who === app ? 'app' : 'streaming'}`).toBe(404);
          if (method === 'GET') expect(res.body).toMatchObject({ code: 'artifact_file_not_found', detail: 'Artifact file not found', status: 404 });
        }
        // The metadata is still there.
        expect((await app.client.request('GET', `/catalog/products/${p}/model-artifacts/${a.id}`)).status).toBe(200);
      });

      it('deletes: 204, bytes removed, hidden, summary updated, 404 on repeat', async () => {
        const p = await app.client.createModel('Delete');
        const keep = await app.client.upload(p, randomData(500), { file_name: 'old.onnx' });
        const current = await app.client.upload(p, randomData(700), { file_name: 'new.safetensors', is_current: true });
        let summary = (await app.client.request('GET', `/catalog/products/${p}/model-repository`)).body;
        expect(summary).toMatchObject({ artifact_count: 2, current_artifact_id: current.artifact.id });
        const key = `artifacts/${p}/${current.artifact.id}`;
        expect(await app.storage.head(key)).toEqual({ size: 700 });

        const del = await app.client.request('DELETE', `/catalog/products/${p}/model-artifacts/${current.artifact.id}`);
        expect(del.status).toBe(204);
        expect(await app.storage.head(key)).toBeNull();
        if (target.backend === 'fs') expect(fs.existsSync(path.join(app.config.storageDir, key))).toBe(false);
        const row = await app.em().findOneOrFail(ModelArtifact, { id: current.artifact.id });
        expect(row).toMatchObject({ status: 'deleted', is_current: false });
        expect(row.deleted_at).toBeInstanceOf(Date);
        expect(row.bytes_removed_at).toBeInstanceOf(Date);

        summary = (await app.client.request('GET', `/catalog/products/${p}/model-repository`)).body;
        expect(summary).toMatchObject({ artifact_count: 1, current_artifact_id: null, current_artifact_file_name: null, current_artifact_model_format: null });
        const list = (await app.client.request('GET', `/catalog/products/${p}/model-artifacts`)).body as { id: string }[];
        expect(list.map((a) => a.id)).toEqual([keep.artifact.id]);
        expect((await app.client.request('GET', `/catalog/products/${p}/model-artifacts/${current.artifact.id}`)).status).toBe(404);
        expect((await app.client.download(p, current.artifact.id)).status).toBe(404);
        expect((await app.client.request('DELETE', `/catalog/products/${p}/model-artifacts/${current.artifact.id}`)).status).toBe(404);

        const viewer = await app.userWithRole(`del-viewer-${Date.now()}@example.com`, 'viewer');
        expect((await viewer.request('DELETE', `/catalog/products/${p}/model-artifacts/${keep.artifact.id}`)).status).toBe(403);
      });
    });

    describe('sweeper', () => {
      it('expires sessions and frees their staged bytes; removes bytes a delete left behind', async () => {
        const p = await app.client.createModel('Sweep');
        const payload = randomData(target.chunkSize + 10);
        const { uploadId } = await app.client.sendAll(p, payload);
        const session = await app.em().findOneOrFail(UploadSession, { id: uploadId });
        const stagingFile = path.join(app.config.storageDir, '.staging', createHash('sha256').update(session.staging_key).digest('hex'));
        if (target.backend === 'fs') expect(fs.existsSync(stagingFile)).toBe(true);
        await app.em().nativeUpdate(UploadSession, { id: uploadId }, { expires_at: new Date(Date.now() - 1000) });

        // A deleted artifact whose bytes are still there (its storage delete had failed).
        const { artifact: gone } = await app.client.upload(p, randomData(100));
        await app.client.request('DELETE', `/catalog/products/${p}/model-artifacts/${gone.id}`);
        const goneKey = `artifacts/${p}/${gone.id}`;
        await app.storage.put(goneKey, Readable.from([Buffer.from('leftover')]), { contentType: 'application/octet-stream' });
        await app.em().nativeUpdate(ModelArtifact, { id: gone.id }, { bytes_removed_at: null });

        const report = await app.services.sweeper.runOnce();
        expect(report.expired).toBeGreaterThanOrEqual(1);
        expect(report.bytesRemoved).toBeGreaterThanOrEqual(1);
        const after = await app.em().findOneOrFail(UploadSession, { id: uploadId });
        expect(after.status).toBe('expired');
        expect(await app.storage.head(goneKey)).toBeNull();
        expect((await app.em().findOneOrFail(ModelArtifact, { id: gone.id })).bytes_removed_at).toBeInstanceOf(Date);
        if (target.backend === 'fs') {
          expect(fs.existsSync(stagingFile)).toBe(false);
          expect(after.cleaned_at).toBeInstanceOf(Date);
        } else {
          // The S3 test server refuses AbortMultipartUpload (405): the session stays uncleaned, is
          // moved to the back of the queue and retried by later sweeps — the sweep itself goes on.
          expect(after.cleaned_at).toBeNull();
          expect(report.stagedFailed).toBeGreaterThanOrEqual(1);
          expect(after.updated_at.getTime()).toBeGreaterThan(session.updated_at.getTime());
          const again = await app.services.sweeper.runOnce();
          expect(again.stagedFailed).toBeGreaterThanOrEqual(1);
        }
        expect((await app.client.session(p, uploadId)).body.status).toBe('expired');
        expect((await app.client.complete(p, uploadId)).status).toBe(410);
        const second = await app.services.sweeper.runOnce();
        expect(second.expired).toBe(0);
        expect(second.bytesRemoved).toBe(0);
      });

      it('runs on its interval when started', async () => {
        const timed = await startArtifactApp(target, { SWEEP_INTERVAL_SECONDS: '1' });
        try {
          const p = await timed.client.createModel('Timed sweep');
          const { uploadId } = await timed.client.sendAll(p, randomData(10));
          await timed.em().nativeUpdate(UploadSession, { id: uploadId }, { expires_at: new Date(Date.now() - 1000) });
          timed.services.sweeper.start();
          const until = Date.now() + 5000;
          while ((await timed.em().findOneOrFail(UploadSession, { id: uploadId })).status !== 'expired' && Date.now() < until) {
            await new Promise((r) => setTimeout(r, 100));
          }
          expect((await timed.em().findOneOrFail(UploadSession, { id: uploadId })).status).toBe('expired');
        } finally {
          await timed.close();
        }
      });
    });
  });
}
