/**
 * Artifact inspection through the API on filesystem + SQLite and on S3 + PostgreSQL: the chunked
 * and the single-request upload inspect what they stored (inline for small headers, in the
 * background for large ones), reading only header ranges through the BlobStore; the summary
 * shows the inspected format and parameter count; hostile files are stored and get `error`;
 * `POST …/inspect` reads the header again.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ModelArtifact } from '../../../server/src/persistence/entities.ts';
import { MiB, apiRequest, sha256, startArtifactApp, storageTargets, type ArtifactApp, type StorageTarget } from '../../support/artifacts.ts';
import { GgufWriter, gguf, maliciousPickle, onnxMlp, safetensors, torchZip } from '../../support/weights.ts';

function form(bytes: Buffer, name: string, fields: Record<string, string> = {}): FormData {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  body.append('file', new Blob([new Uint8Array(bytes)], { type: 'application/octet-stream' }), name);
  return body;
}

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`artifact inspection on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;
    /** INSPECT_MAX_HEADER_BYTES = 1 MiB. */
    let limited: ArtifactApp;

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
      limited = await startArtifactApp(target, { INSPECT_MAX_HEADER_BYTES: String(MiB) });
    });
    afterAll(async () => {
      await limited?.close();
      await app?.close();
      await target?.close();
    });

    const multipart = async (who: ArtifactApp, pid: string, bytes: Buffer, name: string, fields: Record<string, string> = {}) => {
      const res = await apiRequest(who.origin, 'POST', `/catalog/products/${pid}/model-artifacts`, { key: who.owner.key, body: form(bytes, name, fields) });
      expect(res.status, res.text).toBe(201);
      return res.body;
    };
    const artifactOf = async (who: ArtifactApp, pid: string, id: string) => (await who.client.request('GET', `/catalog/products/${pid}/model-artifacts/${id}`)).body;

    it('a chunked upload of safetensors answers with its inspection, read from header ranges only', async () => {
      const pid = await app.client.createModel('Safetensors chunked');
      // Several chunks on either target; the header is a few hundred bytes at the start.
      const rows = Math.ceil((2.5 * target.chunkSize) / (2 * 1024));
      const bytes = safetensors(
        [
          { name: 'embed.weight', dtype: 'BF16', shape: [rows, 1024] },
          { name: 'head.bias', dtype: 'F32', shape: [16] },
        ],
        { format: 'pt' },
      );
      const get = vi.spyOn(app.storage, 'get');
      try {
        // The name says ONNX: the bytes decide.
        const { artifact } = await app.client.upload(pid, bytes, { file_name: 'weights.onnx', is_current: true });
        expect(artifact.inspection).toEqual({
          format: 'safetensors',
          parameter_count: rows * 1024 + 16,
          tensor_count: 2,
          dtypes: { BF16: 1, F32: 1 },
          architecture: null,
          quantization: null,
          metadata: { format: 'pt' },
          warnings: [],
          error: null,
        });
        const reads = get.mock.calls.filter(([key]) => key === `artifacts/${pid}/${artifact.id}`);
        expect(reads.length).toBeGreaterThan(0);
        for (const [, range] of reads) {
          expect(range).toBeDefined();
          expect(range!.end - range!.start + 1).toBeLessThanOrEqual(256 * 1024);
        }
        expect(await artifactOf(app, pid, artifact.id)).toEqual(artifact);
        const summary = (await app.client.request('GET', `/catalog/products/${pid}/model-repository`)).body;
        expect(summary).toMatchObject({
          current_artifact_id: artifact.id,
          current_artifact_model_format: 'safetensors',
          current_artifact_parameter_count: rows * 1024 + 16,
        });
      } finally {
        get.mockRestore();
      }
    });

    it('a single-request upload of a pickle that runs a command is stored, flagged, and shown in the summary', async () => {
      const pid = await app.client.createModel('Pickle');
      const bytes = maliciousPickle();
      const artifact = await multipart(app, pid, bytes, 'model.joblib', { is_current: 'true' });
      expect(artifact.inspection).toMatchObject({
        format: 'pickle',
        metadata: { globals: ['posix.system'] },
        warnings: ['pickle_code_execution', 'pickle_dangerous_global'],
        error: null,
      });
      const download = await app.client.download(pid, artifact.id, {}, 'GET');
      if (target.backend === 'fs') expect(download.bytes.equals(bytes)).toBe(true);
      const summary = (await app.client.request('GET', `/catalog/products/${pid}/model-repository`)).body;
      expect(summary).toMatchObject({ current_artifact_model_format: 'pickle', current_artifact_parameter_count: null });
    });

    it('GGUF, ONNX and PyTorch zips uploaded in one request are inspected', async () => {
      const pid = await app.client.createModel('Formats');
      const ggufBytes = gguf({
        kv: [
          ['general.architecture', { type: 'string', value: 'qwen2' }],
          ['general.file_type', { type: 'u32', value: 7 }],
        ],
        tensors: [{ name: 'token_embd.weight', dims: [896n, 1000n], type: 8 }],
      });
      expect((await multipart(app, pid, ggufBytes, 'model.bin')).inspection).toMatchObject({
        format: 'gguf',
        parameter_count: 896_000,
        tensor_count: 1,
        dtypes: { Q8_0: 1 },
        architecture: 'qwen2',
        quantization: 'Q8_0',
        error: null,
      });
      expect((await multipart(app, pid, onnxMlp(), 'churn.onnx')).inspection).toMatchObject({
        format: 'onnx',
        parameter_count: 8323,
        metadata: { producer_name: 'pytorch', inputs: [{ name: 'features', element_type: 'FLOAT', shape: ['batch', 128] }] },
      });
      expect((await multipart(app, pid, await torchZip(), 'model.pt')).inspection).toMatchObject({
        format: 'pytorch',
        warnings: ['pickle_code_execution'],
        metadata: { globals: ['collections.OrderedDict', 'torch.FloatStorage', 'torch._utils._rebuild_tensor_v2'] },
      });
      // Not a weight format: null.
      expect((await multipart(app, pid, Buffer.from('# Model card\n'), 'MODEL_CARD.md')).inspection).toBeNull();
    });

    it('hostile headers are stored with inspection.error, never a 5xx', async () => {
      const pid = await app.client.createModel('Hostile');
      const tensors = new GgufWriter().raw(Buffer.from('GGUF')).u32(3).u64(2n ** 60n).u64(0n).raw(Buffer.alloc(4096)).bytes();
      const a = await multipart(app, pid, tensors, 'evil.gguf');
      expect(a.inspection).toMatchObject({ format: 'gguf', parameter_count: null, error: expect.stringContaining('tensors, more than the file can hold') });
      const huge = new GgufWriter().raw(Buffer.from('GGUF')).u32(3).u64(0n).u64(1n).u64(3n * 2n ** 30n).raw(Buffer.alloc(4096)).bytes();
      const b = await app.client.upload(pid, huge, { file_name: 'evil2.gguf' });
      expect(b.artifact.inspection).toMatchObject({ format: 'gguf', error: expect.stringContaining('claims 3221225472 bytes') });
      expect(b.artifact).toMatchObject({ status: 'available', sha256: sha256(huge), size_bytes: huge.length });
    });

    it('a header past the inline budget is inspected in the background; past INSPECT_MAX_HEADER_BYTES it gets an error', async () => {
      const pid = await app.client.createModel('Large header');
      const big = safetensors([{ name: 'w', dtype: 'F32', shape: [8] }], { notes: 'n'.repeat(5 * MiB) });
      const res = await multipart(app, pid, big, 'big.safetensors');
      expect(res.inspection).toBeNull();
      await app.services.inspections.idle();
      expect((await artifactOf(app, pid, res.id)).inspection).toMatchObject({ format: 'safetensors', parameter_count: 8, tensor_count: 1, error: null });

      const lpid = await limited.client.createModel('Over the limit');
      const over = safetensors([{ name: 'w', dtype: 'F32', shape: [8] }], { notes: 'n'.repeat(2 * MiB) });
      const stored = await multipart(limited, lpid, over, 'over.safetensors');
      await limited.services.inspections.idle();
      expect((await artifactOf(limited, lpid, stored.id)).inspection).toMatchObject({
        format: 'safetensors',
        parameter_count: null,
        error: expect.stringContaining(`inspection limit of ${MiB} bytes`),
      });
    });

    it('POST …/inspect reads the header again (edit access), and answers 404 for what it cannot read', async () => {
      const pid = await app.client.createModel('Reinspect');
      const bytes = safetensors([{ name: 'w', dtype: 'F16', shape: [4, 4] }]);
      const artifact = await multipart(app, pid, bytes, 'w.safetensors');
      // As if stored before inspection existed.
      await app.em().nativeUpdate(ModelArtifact, { id: artifact.id }, { inspection: null, inspected_format: null, parameter_count: null });
      expect((await app.client.request('GET', `/catalog/products/${pid}/model-repository`)).body.current_artifact_parameter_count).toBeNull();

      const inspectPath = `/catalog/products/${pid}/model-artifacts/${artifact.id}/inspect`;
      const viewer = await app.userWithRole(`viewer-${target.name}@example.com`, 'viewer');
      expect((await viewer.request('POST', inspectPath)).status).toBe(403);

      const again = await app.client.request('POST', inspectPath);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ id: artifact.id, inspection: { format: 'safetensors', parameter_count: 16, dtypes: { F16: 1 } } });
      expect(await artifactOf(app, pid, artifact.id)).toEqual(again.body);

      expect((await app.client.request('POST', `/catalog/products/${pid}/model-artifacts/00000000-0000-4000-8000-000000000000/inspect`)).status).toBe(404);
      await app.storage.delete(`artifacts/${pid}/${artifact.id}`);
      const gone = await app.client.request('POST', inspectPath);
      expect(gone.status).toBe(404);
      expect(gone.body).toMatchObject({ code: 'artifact_file_not_found', detail: 'Artifact file not found' });
      expect((await app.client.request('DELETE', `/catalog/products/${pid}/model-artifacts/${artifact.id}`)).status).toBe(204);
      expect((await app.client.request('POST', inspectPath)).status).toBe(404);
    });
  });
}
