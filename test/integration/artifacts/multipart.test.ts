/**
 * The single-request upload (multipart/form-data through multer, streamed into storage) and the
 * server limits (MAX_ARTIFACT_SIZE_BYTES, session expiry) on filesystem + SQLite and on
 * S3 + PostgreSQL.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelArtifact, UploadSession } from '../../../server/src/persistence/entities.ts';
import {
  MiB,
  apiRequest,
  randomData,
  sha256,
  startArtifactApp,
  storageTargets,
  storedArtifactKeys,
  type ArtifactApp,
  type StorageTarget,
} from '../../support/artifacts.ts';

function form(fields: Record<string, string>, file?: { bytes: Buffer; name: string; type?: string; field?: string }): FormData {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  if (file) body.append(file.field ?? 'file', new Blob([new Uint8Array(file.bytes)], { type: file.type ?? 'application/octet-stream' }), file.name);
  return body;
}

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`single-request upload and limits on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;
    /** MAX_ARTIFACT_SIZE_BYTES = 1 MiB, UPLOAD_SESSION_TTL_SECONDS = 1. */
    let limited: ArtifactApp;

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
      limited = await startArtifactApp(target, { MAX_ARTIFACT_SIZE_BYTES: String(MiB), UPLOAD_SESSION_TTL_SECONDS: '1' });
    });
    afterAll(async () => {
      await limited?.close();
      await app?.close();
      await target?.close();
    });

    const post = (who: ArtifactApp, pid: string, body: FormData, key = who.owner.key) =>
      apiRequest(who.origin, 'POST', `/catalog/products/${pid}/model-artifacts`, { key, body });

    it('stores the file part, checks the fields and answers 201 with the artifact', async () => {
      const pid = await app.client.createModel('Multipart');
      const version = await app.client.request('POST', `/catalog/products/${pid}/versions`, { body: {} });
      const bytes = randomData(300_000);
      const res = await post(
        app,
        pid,
        form(
          {
            sha256: sha256(bytes),
            metadata: JSON.stringify({ format: 'ONNX', opset: 17 }),
            is_current: 'true',
            artifact_kind: 'weights',
            version_label: 'v1',
            product_version_id: version.body.id,
          },
          { bytes, name: 'modèle final.onnx', type: 'application/x-onnx' },
        ),
      );
      expect(res.status).toBe(201);
      expect(res.headers.get('location')).toBe(`/api/v1.0/catalog/products/${pid}/model-artifacts/${res.body.id}`);
      expect(res.body).toMatchObject({
        product_id: pid,
        file_name: 'modèle final.onnx',
        content_type: 'application/x-onnx',
        size_bytes: bytes.length,
        sha256: sha256(bytes),
        status: 'available',
        is_current: true,
        artifact_kind: 'weights',
        version_label: 'v1',
        product_version_id: version.body.id,
        metadata: { format: 'ONNX', opset: 17 },
        uploaded_by_id: app.owner.id,
      });
      expect(storedArtifactKeys(app, pid)).toEqual([`artifacts/${pid}/${res.body.id}`]);
      const summary = (await app.client.request('GET', `/catalog/products/${pid}/model-repository`)).body;
      expect(summary).toMatchObject({ artifact_count: 1, current_artifact_id: res.body.id, current_artifact_model_format: 'onnx' });
      const dl = await app.client.download(pid, res.body.id);
      const got =
        dl.status === 302 ? Buffer.from(await (await fetch(dl.headers.get('location')!.replace(target.s3!.endpoint, target.s3Twin!.endpoint))).arrayBuffer()) : dl.bytes;
      expect(got.equals(bytes)).toBe(true);

      // file_name and content_type fields win over the part's own.
      const named = await post(app, pid, form({ file_name: 'other.bin', content_type: 'application/octet-stream' }, { bytes: Buffer.from('x'), name: 'ignored.txt', type: 'text/plain' }));
      expect(named.body).toMatchObject({ file_name: 'other.bin', content_type: 'application/octet-stream', is_current: false });
    });

    it('rejects bad fields with 422 and leaves nothing stored', async () => {
      const pid = await app.client.createModel('Multipart errors');
      const other = await app.client.createModel('Multipart other');
      const foreign = await app.client.request('POST', `/catalog/products/${other}/versions`, { body: {} });
      const file = { bytes: randomData(1000), name: 'a.bin' };
      const cases: [Record<string, string>, string, string][] = [
        [{ sha256: 'd'.repeat(64) }, 'checksum_mismatch', ''],
        [{ metadata: '{not json' }, 'validation_error', 'metadata'],
        [{ metadata: '[1, 2]' }, 'validation_error', 'metadata'],
        [{ product_version_id: foreign.body.id }, 'validation_error', 'product_version_id'],
        [{ content_type: 'not a type' }, 'validation_error', 'content_type'],
        [{ is_current: 'yes' }, 'validation_error', 'is_current'],
        [{ colour: 'red' }, 'validation_error', 'colour'],
      ];
      for (const [fields, code, field] of cases) {
        const res = await post(app, pid, form(fields, file));
        expect(res.status, JSON.stringify(fields)).toBe(422);
        expect(res.body.code).toBe(code);
        if (field) expect(res.body.errors.map((e: { loc: unknown[] }) => e.loc)).toContainEqual(['body', field]);
      }
      const noFile = await post(app, pid, form({ file_name: 'a.bin' }));
      expect(noFile.status).toBe(422);
      const wrongField = await post(app, pid, form({}, { ...file, field: 'weights' }));
      expect(wrongField.status).toBe(422);
      await new Promise((r) => setTimeout(r, 100)); // deletes run when the responses end
      expect(storedArtifactKeys(app, pid)).toEqual([]);
      expect(await app.em().count(ModelArtifact, { product: pid })).toBe(0);
      if (target.backend === 'fs') {
        expect(fs.readdirSync(path.join(app.config.storageDir, '.staging')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      }
    });

    it('checks access before storing anything', async () => {
      const pid = await app.client.createModel('Multipart access');
      const viewer = await app.userWithRole(`mp-viewer-${Date.now()}@example.com`, 'viewer');
      const res = await post(app, pid, form({}, { bytes: randomData(1000), name: 'a.bin' }), viewer.key);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect((await post(app, '00000000-0000-4000-8000-000000000000', form({}, { bytes: Buffer.from('x'), name: 'a' }))).status).toBe(404);
      expect((await post(app, pid, form({}, { bytes: Buffer.from('x'), name: 'a' }), 'mr_invalid')).status).toBe(401);
      expect(storedArtifactKeys(app, pid)).toEqual([]);
    });

    it('refuses more than MAX_ARTIFACT_SIZE_BYTES: 413 at initiation and for a multipart file', async () => {
      const pid = await limited.client.createModel('Too big');
      const init = await limited.client.initiate(pid, { file_name: 'big.bin', content_type: 'application/octet-stream', total_size_bytes: MiB + 1 });
      expect(init.status).toBe(413);
      expect(init.body).toMatchObject({
        code: 'payload_too_large',
        detail: `total_size_bytes ${MiB + 1} exceeds this server's maximum artifact size of ${MiB} bytes.`,
      });
      expect((await limited.client.initiate(pid, { file_name: 'ok.bin', content_type: 'application/octet-stream', total_size_bytes: MiB })).status).toBe(201);

      const res = await post(limited, pid, form({}, { bytes: randomData(MiB + 100), name: 'big.bin' }));
      expect(res.status).toBe(413);
      expect(res.body.code).toBe('payload_too_large');
      await new Promise((r) => setTimeout(r, 200));
      expect(storedArtifactKeys(limited, pid)).toEqual([]);
      const exact = await post(limited, pid, form({}, { bytes: randomData(MiB), name: 'exact.bin' }));
      expect(exact.status).toBe(201);
    });

    it('expires a session: chunks and completion get 410, the sweeper frees the staged bytes', async () => {
      const pid = await limited.client.createModel('Expiry');
      const data = randomData(1000);
      const init = await limited.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: data.length });
      const id = init.body.id;
      expect((await limited.client.putChunk(pid, id, 0, data)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1100));
      const chunk = await limited.client.putChunk(pid, id, 0, data);
      expect(chunk.status).toBe(410);
      expect(chunk.body).toMatchObject({ code: 'upload_expired', detail: 'The upload session has expired; start a new upload.' });
      expect((await limited.client.complete(pid, id)).status).toBe(410);
      expect((await limited.client.session(pid, id)).body.status).toBe('expired');
      const row = await limited.em().findOneOrFail(UploadSession, { id });
      expect(row.status).toBe('expired');
      const staging = path.join(limited.config.storageDir, '.staging', createHash('sha256').update(row.staging_key).digest('hex'));
      if (target.backend === 'fs') expect(fs.existsSync(staging)).toBe(true);
      await limited.services.sweeper.runOnce();
      if (target.backend === 'fs') {
        expect(fs.existsSync(staging)).toBe(false);
        expect((await limited.em().findOneOrFail(UploadSession, { id })).cleaned_at).toBeInstanceOf(Date);
      }
      expect(await limited.em().count(ModelArtifact, { product: pid })).toBe(0);
    });
  });
}
