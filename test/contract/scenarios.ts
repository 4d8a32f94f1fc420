/**
 * The contract scenarios: one list, run against every target (the Prism mock, the server on
 * SQLite + filesystem, the server on PostgreSQL + S3). Written against the SDK; requests the SDK
 * cannot make (malformed bodies, wrong media types, no key) go through `t.raw`. Every request of
 * every scenario is checked against the spec by the harness (see harness.ts).
 *
 * Against the mock a scenario checks statuses and shapes (the mock keeps no state and answers
 * with the spec's examples); against the server it checks behaviour.
 *
 * `covers` declares, per operation, the statuses the scenario produces on the real server (an
 * empty list: the operation is called, its status depends on the storage). The suite asserts the
 * declaration after each run; the coverage checks count what was actually recorded.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { ArtifactUploadSession, ModelCreate, ModelRepositoryClient } from '../../sdk/src/index.ts';
import { SERVER_SETTINGS, type OperationId, type Target, type TargetName } from './harness.ts';
import {
  API,
  complete,
  contentDigest,
  download,
  expectError,
  expectSameBytes,
  initiate,
  memorySink,
  newModel,
  putChunk,
  sampleBytes,
  sha256Hex,
  unknownId,
  uploadMultipart,
  uploadSize,
} from './helpers.ts';
import { listOperations } from '../support/spec-check.ts';
import { seedModelCreate } from '../support/fixtures.ts';
import { safetensors } from '../support/weights.ts';
import { webhookScenarios } from './webhook-scenarios.ts';

export interface Scenario {
  name: string;
  /** Targets the scenario runs on (default: all). */
  on?: readonly TargetName[];
  /** Per operation, the statuses this scenario produces on the real server ([] = any). */
  covers: Partial<Record<OperationId, number[]>>;
  run(t: Target): Promise<void>;
}

const SERVERS: readonly TargetName[] = ['sqlite', 'postgres'];

const ids = (items: { id: string }[]) => items.map((i) => i.id);

/** A model with every create field set (the seed's example plus the extension fields). */
function fullModel(t: Target): ModelCreate {
  const { name: _name, ...seedFields } = seedModelCreate;
  return newModel(t, {
    ...seedFields,
    slug: `contract-${t.tag}-churn-prediction`,
    long_description: 'Gradient-boosted trees over 30-day usage aggregates.',
    ai_system_type: 'predictive',
    vendor_name: 'Acme',
    vendor_product_name: 'Churn Suite',
    vendor_model_id: 'acme-churn-7',
    deployment_environment: 'eu-west-1',
    business_use_case: 'Reduce churn in the mid-market segment.',
    is_gpai: false,
  });
}

/** The mock keeps no state: the upload steps one by one, with whatever IDs its examples carry. */
async function mockUploadSteps(t: Target, c: ModelRepositoryClient): Promise<void> {
  const model = await c.createModel(t.space, newModel(t));
  const bytes = sampleBytes(16);
  const session = await initiate(c, model.id, { total_size_bytes: bytes.length, sha256: sha256Hex(bytes), is_current: true });
  expect(session.chunk_size_bytes).toBeGreaterThan(0);
  const afterChunk = await putChunk(c, model.id, session.id, 0, bytes, { digest: contentDigest(bytes) });
  expect(Array.isArray(afterChunk.received_chunks)).toBe(true);
  const state = await c.getUpload(model.id, session.id);
  expect(state.id).toBeTypeOf('string');
  const { artifact } = await complete(c, model.id, session.id, { sha256: sha256Hex(bytes) });
  const listed = await c.listArtifacts(model.id);
  expect(listed.length).toBeGreaterThan(0);
  const one = await c.getArtifact(model.id, artifact.id);
  expect(one.id).toBeTypeOf('string');
  const got = await download(c, model.id, artifact.id);
  expect(got.status).toBe(200);
}

/** One small artifact of a fresh model, uploaded in one request (the quickest way to have one). */
async function modelWithArtifact(t: Target, c: ModelRepositoryClient, size = 3000, name = 'tiny.onnx') {
  const model = await c.createModel(t.space, newModel(t));
  const bytes = sampleBytes(size, size);
  const artifact = await uploadMultipart(c, model.id, bytes, { is_current: 'true' }, { name });
  return { model, bytes, artifact };
}

/** Every operation that needs an API key, with a request that would otherwise be fine. */
function securedRequests(): { operationId: string; method: string; path: string; headers: Record<string, string>; body?: () => BodyInit }[] {
  const out = [];
  for (const op of listOperations()) {
    const security = op.operation.security;
    if (Array.isArray(security) && security.length === 0) continue;
    const path = op.fullPathTemplate
      .replace('{slug}', 'default')
      .replace('{chunk_index}', '0')
      .replace('{alias}', 'production')
      .replace('{version_ref}', '1')
      .replace(/\{[a-z_]+_id\}/g, () => randomUUID());
    const content = Object.keys(op.operation.requestBody?.content ?? {});
    let headers: Record<string, string> = {};
    let body: (() => BodyInit) | undefined;
    if (content.includes('application/json')) {
      headers = { 'content-type': 'application/json' };
      body = () => JSON.stringify(op.operationId === 'createSpaceModel' ? { name: 'Unauthenticated' } : {});
    } else if (content.includes('application/octet-stream')) {
      headers = { 'content-type': 'application/octet-stream' };
      body = () => sampleBytes(8);
    } else if (content.includes('multipart/form-data')) {
      body = () => {
        const form = new FormData();
        form.append('file', new Blob([sampleBytes(8)]), 'x.bin');
        return form;
      };
    }
    out.push({ operationId: op.operationId, method: op.method.toUpperCase(), path, headers, ...(body ? { body } : {}) });
  }
  return out;
}

export const scenarios: Scenario[] = [
  /* ------------------------------------------------------------------------------------------
   * Behaviour
   * ---------------------------------------------------------------------------------------- */
  {
    name: 'service: health, readiness and the OpenAPI document answer without a key',
    covers: { getHealth: [200], getReadiness: [200], getOpenApiDocument: [200] },
    async run(t) {
      const health = await t.raw('GET', '/healthz', { apiKey: null });
      expect(health.status).toBe(200);
      expect(health.body).toEqual({ status: 'ok' });
      const ready = await t.raw('GET', '/readyz', { apiKey: null });
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'ok' });
      const doc = await t.client({ apiKey: null }).api.GET('/openapi.yaml', { parseAs: 'text' });
      expect(doc.response.status).toBe(200);
      if (t.kind === 'mock') return;
      expect(ready.body).toEqual({ status: 'ok', checks: { database: 'ok', storage: 'ok' } });
      expect(doc.response.headers.get('content-type')).toMatch(/^application\/yaml/);
      expect(String(doc.data)).toMatch(/^openapi: 3\.1/m);
    },
  },
  {
    name: 'models: create a model with every field and read it back; the slug is derived from the name',
    covers: { createSpaceModel: [201], getModel: [200] },
    async run(t) {
      const c = t.client();
      const input = fullModel(t);
      const created = await c.createModel(t.space, input);
      const read = await c.getModel(created.id);
      if (t.kind === 'mock') {
        expect(created.id).toBeTypeOf('string');
        expect(read.id).toBeTypeOf('string');
        return;
      }
      expect(created).toMatchObject(input);
      expect(created).toMatchObject({
        space_slug: t.space,
        is_archived: false,
        version_count: 0,
        current_version_id: null,
        artifact_count: 0,
        current_artifact_id: null,
      });
      expect(read).toEqual(created);
      expect(t.log.last('createSpaceModel', 201)?.headers.location).toMatch(new RegExp(`${API}/catalog/products/${created.id}/model-repository$`));

      const derived = await c.createModel(t.space, { name: `Contract ${t.tag} Derived Slug!` });
      expect(derived.slug).toBe(`contract-${t.tag}-derived-slug`);
      // The seed's defaults.
      expect(derived).toMatchObject({ product_type: 'ML Model', deployment_status: 'development', environment: 'development', description: null });
    },
  },
  {
    name: 'models: list, filter and page through a space and an organization',
    covers: { listSpaceModels: [200], listOrganizationModels: [200] },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        for (const scope of [{ space: t.space }, { organization: t.organization }] as const) {
          for await (const page of c.listModels(scope, { model_family: 'genai', limit: 50 })) {
            expect(page.items.length).toBeGreaterThan(0);
            expect(page.totalCount).not.toBeNull();
            expect(page.page).not.toBeNull();
            break; // the mock answers every page with the same example
          }
        }
        return;
      }
      const q = `lst${t.tag}`;
      const a = await c.createModel(t.space, newModel(t, { name: `Churn ${q} alpha`, model_family: 'traditional_ml', product_type: 'ML Model', deployment_status: 'production', risk_classification: 'limited', model_task_type: 'classification' }));
      const b = await c.createModel(t.space, newModel(t, { name: `Support ${q} beta`, model_family: 'agent', product_type: 'LLM Agent', deployment_status: 'staging' }));
      const g = await c.createModel(t.space, newModel(t, { name: `Embeddings gamma ${t.tag}`, description: `Vectors for ${q.toUpperCase()} search`, model_family: 'embedding_model', product_type: 'AI System' }));

      const space = { space: t.space };
      // q: case-insensitive substring over name, description, …; newest first.
      expect(ids(await c.listModels(space, { q }).toArray())).toEqual([g.id, b.id, a.id]);
      expect(ids(await c.listModels(space, { q, model_family: 'agent' }).toArray())).toEqual([b.id]);
      expect(ids(await c.listModels(space, { q, types: ['ML Model', 'AI System'] }).toArray())).toEqual([g.id, a.id]);
      expect(ids(await c.listModels(space, { q, deployment_status: 'production' }).toArray())).toEqual([a.id]);
      expect(ids(await c.listModels(space, { q, risk_classification: 'limited', model_task_type: 'classification' }).toArray())).toEqual([a.id]);

      const pages = [];
      for await (const page of c.listModels(space, { q, limit: 2 })) pages.push(page);
      expect(pages.map((p) => [ids(p.items), p.totalCount, p.page, p.hasMore])).toEqual([
        [[g.id, b.id], 3, 1, true],
        [[a.id], 3, 2, false],
      ]);
      const last = t.log.last('listSpaceModels', 200)!;
      expect([last.headers['x-total-count'], last.headers['x-page'], last.headers['x-has-more']]).toEqual(['3', '2', 'false']);

      const org = await c.listModels({ organization: t.organization }, { q }).toArray();
      expect(ids(org)).toEqual([g.id, b.id, a.id]);
      expect(org[0]).toEqual(await c.getModel(g.id));
    },
  },
  {
    name: 'models: PATCH changes only the given fields, null clears, archiving hides from lists until restored',
    covers: { updateModel: [200], listSpaceModels: [200], listOrganizationModels: [200], getModel: [200] },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        const patched = await c.updateModel(randomUUID(), { deployment_status: 'retired', lifecycle_stage: 'retirement' });
        expect(patched.id).toBeTypeOf('string');
        expect((await c.listModels({ organization: t.organization }, { include_archived: true, limit: 5 })[Symbol.asyncIterator]().next()).done).toBe(false);
        return;
      }
      const name = `Contract ${t.tag} archivable`;
      const created = await c.createModel(t.space, { name, description: 'to be cleared', limitations: 'kept', framework: 'pytorch' });
      const patched = await c.updateModel(created.id, { deployment_status: 'retired', lifecycle_stage: 'retirement', description: null });
      expect(patched).toEqual({ ...created, deployment_status: 'retired', lifecycle_stage: 'retirement', description: null, updated_at: patched.updated_at });
      expect(Date.parse(patched.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.updated_at));
      expect(await c.getModel(created.id)).toEqual(patched);

      const q = `Contract ${t.tag} archivable`;
      const archived = await c.updateModel(created.id, { is_archived: true });
      expect(archived.is_archived).toBe(true);
      expect(await c.listModels({ space: t.space }, { q }).toArray()).toEqual([]);
      expect(await c.listModels({ organization: t.organization }, { q }).toArray()).toEqual([]);
      expect(ids(await c.listModels({ space: t.space }, { q, include_archived: true }).toArray())).toEqual([created.id]);
      expect((await c.getModel(created.id)).is_archived).toBe(true);

      await c.updateModel(created.id, { is_archived: false });
      expect(ids(await c.listModels({ space: t.space }, { q }).toArray())).toEqual([created.id]);
    },
  },
  {
    name: 'versions: numbered per model, the first is current, a later one on request; the summary follows',
    covers: { createModelVersion: [201], listModelVersions: [200], getModel: [200] },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        const v = await c.createVersion(randomUUID(), { version_type: 'minor', release_date: '2026-10-02', notes: 'Retrained.', is_current: true });
        expect(v.version_number).toBeGreaterThan(0);
        expect((await c.listVersions(randomUUID())).length).toBeGreaterThan(0);
        return;
      }
      const model = await c.createModel(t.space, newModel(t));
      const v1 = await c.createVersion(model.id, { version_type: 'major', release_date: '2026-01-15', notes: 'First release.' });
      expect(v1).toMatchObject({ product_id: model.id, version_number: 1, version_type: 'major', release_date: '2026-01-15', notes: 'First release.', is_current: true });
      // Every field is optional: an empty body takes the defaults.
      const v2 = await c.createVersion(model.id, {});
      expect(v2).toMatchObject({ version_number: 2, version_type: 'minor', release_date: null, notes: null, is_current: false });
      const v3 = await c.createVersion(model.id, { version_type: 'patch', is_current: true });
      expect(v3).toMatchObject({ version_number: 3, is_current: true });

      const list = await c.listVersions(model.id);
      expect(list.map((v) => [v.version_number, v.is_current])).toEqual([
        [3, true],
        [2, false],
        [1, false],
      ]);
      expect(await c.getModel(model.id)).toMatchObject({
        version_count: 3,
        current_version_id: v3.id,
        current_version_number: 3,
        current_version_type: 'patch',
        current_version_release_date: null,
      });
    },
  },
  {
    name: 'aliases: set (201), move (200), read with its ETag, list by name, history newest first, delete (204); versions carry them',
    covers: {
      setModelAlias: [201, 200],
      getModelAlias: [200],
      listModelAliases: [200],
      listModelAliasHistory: [200],
      deleteModelAlias: [204],
      listModelVersions: [200],
      getModelVersion: [200],
      listModelArtifacts: [200],
    },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        const pid = randomUUID();
        const set = await c.setAlias(pid, 'production', randomUUID(), { reason: 'Q3 retrain' });
        expect(set.alias.name).toBeTypeOf('string');
        expect(set.etag).not.toBe('');
        expect((await c.getAlias(pid, 'production')).etag).not.toBe('');
        expect((await c.listAliases(pid)).length).toBeGreaterThan(0);
        expect((await c.aliasHistory(pid, 'production')).length).toBeGreaterThan(0);
        expect((await c.getVersion(pid, 'production')).aliases).toBeInstanceOf(Array);
        expect((await c.listArtifacts(pid, { version: 'production' })).length).toBeGreaterThan(0);
        await c.deleteAlias(pid, 'production');
        return;
      }
      const model = await c.createModel(t.space, newModel(t));
      const v1 = await c.createVersion(model.id, { version_type: 'major' });
      const v2 = await c.createVersion(model.id, {});
      const created = await c.setAlias(model.id, 'production', v1.id, { reason: 'first release' });
      expect(created.created).toBe(true);
      expect(created.alias).toMatchObject({ name: 'production', product_id: model.id, version_id: v1.id, version_number: 1 });
      expect(t.log.last('setModelAlias', 201)).toBeTruthy();
      const moved = await c.setAlias(model.id, 'production', v2.id, { ifMatch: created.etag, reason: 'retrained' });
      expect([moved.created, moved.alias.version_number]).toEqual([false, 2]);
      expect(moved.etag).not.toBe(created.etag);
      const read = await c.getAlias(model.id, 'production');
      expect(read).toEqual({ alias: moved.alias, etag: moved.etag });
      await c.setAlias(model.id, 'champion', v1.id);
      expect((await c.listAliases(model.id)).map((a) => a.name)).toEqual(['champion', 'production']);
      expect((await c.listVersions(model.id)).map((v) => v.aliases)).toEqual([['production'], ['champion']]);
      expect(await c.getVersion(model.id, 'production')).toMatchObject({ id: v2.id, aliases: ['production'] });
      expect((await c.getVersion(model.id, 1)).id).toBe(v1.id);
      expect((await c.getVersion(model.id, v2.id)).version_number).toBe(2);

      const artifact = await uploadMultipart(c, model.id, sampleBytes(50), { product_version_id: v2.id });
      await uploadMultipart(c, model.id, sampleBytes(60), { product_version_id: v1.id });
      expect(ids(await c.listArtifacts(model.id, { version: 'production' }))).toEqual([artifact.id]);

      await c.deleteAlias(model.id, 'production', { ifMatch: moved.etag });
      const history = await c.aliasHistory(model.id, 'production');
      expect(history.map((h) => [h.version_id, h.previous_version_id, h.reason])).toEqual([
        [null, v2.id, null],
        [v2.id, v1.id, 'retrained'],
        [v1.id, null, 'first release'],
      ]);
      expect((await c.listAliases(model.id)).map((a) => a.name)).toEqual(['champion']);
    },
  },
  {
    name: 'reviews: a reviewer approves, the latest review decides approval_status on the version and the summary',
    covers: { createVersionReview: [201], listVersionReviews: [200], getModelVersion: [200], getModel: [200] },
    async run(t) {
      const reviewer = t.client({ apiKey: (await t.users()).reviewer });
      if (t.kind === 'mock') {
        const review = await reviewer.reviewVersion(randomUUID(), randomUUID(), { decision: 'approved', comment: 'Looks good.' });
        expect(review.decision).toBeTypeOf('string');
        expect((await reviewer.listReviews(randomUUID(), randomUUID())).length).toBeGreaterThan(0);
        return;
      }
      const c = t.client();
      const model = await c.createModel(t.space, newModel(t));
      const version = await c.createVersion(model.id, {});
      expect(version.approval_status).toBe('pending');
      const rejected = await reviewer.reviewVersion(model.id, version.id, { decision: 'rejected', comment: 'The eval report is missing.' });
      expect(rejected).toMatchObject({ product_id: model.id, version_id: version.id, decision: 'rejected', comment: 'The eval report is missing.' });
      expect((await c.getModel(model.id)).current_version_approval_status).toBe('rejected');
      const approved = await reviewer.reviewVersion(model.id, version.id, { decision: 'approved' });
      expect((await c.getVersion(model.id, version.id)).approval_status).toBe('approved');
      expect((await c.getModel(model.id)).current_version_approval_status).toBe('approved');
      expect(ids(await c.listReviews(model.id, version.id))).toEqual([approved.id, rejected.id]);
    },
  },
  {
    name: 'artifacts: chunked upload with the SDK; session state, lists and the summary; byte-identical download',
    covers: {
      initiateArtifactUpload: [201],
      uploadArtifactChunk: [200],
      getArtifactUpload: [200],
      completeArtifactUpload: [201],
      listModelArtifacts: [200],
      getModelArtifact: [200],
      downloadModelArtifact: [],
      getModel: [200],
    },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') return mockUploadSteps(t, c);
      const model = await c.createModel(t.space, newModel(t));
      const version = await c.createVersion(model.id, { version_type: 'major' });
      const bytes = sampleBytes(uploadSize(t), 6);
      let session: ArtifactUploadSession | undefined;
      const progress: number[] = [];
      const artifact = await c.uploadArtifact(model.id, bytes, {
        file_name: 'churn-model.onnx',
        content_type: 'application/octet-stream',
        artifact_kind: 'model_binary',
        version_label: 'v1.0.0',
        product_version_id: version.id,
        training_run_id: '5c1e92ac-e430-4b4e-ae49-3a2222222222',
        is_current: true,
        metadata: { format: 'onnx', opset: 17 },
        sha256: sha256Hex(bytes),
        concurrency: 2,
        onSession: (s) => (session = s),
        onProgress: (p) => progress.push(p.uploadedBytes),
      });
      const expectedChunks = Math.ceil(bytes.length / t.chunkSize);
      expect(session).toMatchObject({ chunk_size_bytes: t.chunkSize, chunk_count: expectedChunks, total_size_bytes: bytes.length, status: 'initialized', expected_sha256: sha256Hex(bytes) });
      expect(expectedChunks).toBeGreaterThanOrEqual(2);
      expect(t.log.of(t.log.scenario).filter((r) => r.operationId === 'uploadArtifactChunk' && r.status === 200)).toHaveLength(expectedChunks);
      expect(progress.at(-1)).toBe(bytes.length);
      expect(artifact).toMatchObject({
        product_id: model.id,
        product_version_id: version.id,
        training_run_id: '5c1e92ac-e430-4b4e-ae49-3a2222222222',
        artifact_kind: 'model_binary',
        version_label: 'v1.0.0',
        file_name: 'churn-model.onnx',
        content_type: 'application/octet-stream',
        size_bytes: bytes.length,
        sha256: sha256Hex(bytes),
        storage_backend: t.storage,
        status: 'available',
        is_current: true,
        metadata: { format: 'onnx', opset: 17 },
      });
      expect(artifact.uploaded_by_id).not.toBeNull();
      expect(t.log.last('completeArtifactUpload', 201)?.headers.location).toMatch(new RegExp(`/model-artifacts/${artifact.id}$`));

      const state = await c.getUpload(model.id, session!.id);
      expect(state).toMatchObject({
        status: 'completed',
        artifact_id: artifact.id,
        received_bytes: bytes.length,
        received_chunks: [...Array(expectedChunks).keys()],
      });
      expect(state.completed_at).not.toBeNull();

      expect(await c.listArtifacts(model.id)).toEqual([artifact]);
      expect(await c.getArtifact(model.id, artifact.id)).toEqual(artifact);
      expect(await c.getModel(model.id)).toMatchObject({
        artifact_count: 1,
        current_artifact_id: artifact.id,
        current_artifact_file_name: 'churn-model.onnx',
        current_artifact_kind: 'model_binary',
        current_artifact_content_type: 'application/octet-stream',
        current_artifact_model_format: 'onnx',
        current_artifact_sha256: sha256Hex(bytes),
        current_artifact_size_bytes: bytes.length,
      });

      const sink = memorySink();
      const record = await c.downloadArtifact(model.id, artifact.id, { to: sink.stream });
      expect(record).toEqual(artifact);
      expectSameBytes(sink.bytes(), bytes);
    },
  },
  {
    name: 'artifacts: an interrupted upload resumes from the received chunks; completing again returns the same artifact',
    on: SERVERS,
    covers: { initiateArtifactUpload: [201], uploadArtifactChunk: [200], getArtifactUpload: [200], completeArtifactUpload: [201, 200], getModel: [200] },
    async run(t) {
      const c = t.client();
      const model = await c.createModel(t.space, newModel(t));
      const bytes = sampleBytes(uploadSize(t), 7);
      const session = await initiate(c, model.id, { file_name: 'weights.safetensors', total_size_bytes: bytes.length, is_current: true });
      await putChunk(c, model.id, session.id, 0, bytes.subarray(0, t.chunkSize));
      const paused = await c.getUpload(model.id, session.id);
      expect(paused).toMatchObject({ status: 'uploading', received_chunks: [0], received_bytes: t.chunkSize });

      const before = t.log.of(t.log.scenario).filter((r) => r.operationId === 'uploadArtifactChunk').length;
      const artifact = await c.uploadArtifact(model.id, bytes, { resume: session.id });
      const sent = t.log.of(t.log.scenario).filter((r) => r.operationId === 'uploadArtifactChunk').length - before;
      expect(sent).toBe(session.chunk_count - 1);
      expect(t.log.last('completeArtifactUpload')?.status).toBe(201);
      expect(artifact).toMatchObject({ size_bytes: bytes.length, sha256: sha256Hex(bytes), file_name: 'weights.safetensors', is_current: true });

      const again = await complete(c, model.id, session.id);
      expect(again.status).toBe(200);
      expect(again.artifact).toEqual(artifact);
      // The model format is inferred from the extension when metadata.format is absent.
      expect(await c.getModel(model.id)).toMatchObject({ current_artifact_id: artifact.id, current_artifact_model_format: 'safetensors' });
    },
  },
  {
    name: 'uploads: aborting a session discards it; the session is gone afterwards',
    covers: { abortArtifactUpload: [204], getArtifactUpload: [404], uploadArtifactChunk: [200, 404], completeArtifactUpload: [404] },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        await c.abortUpload(randomUUID(), randomUUID());
        return;
      }
      const model = await c.createModel(t.space, newModel(t));
      const bytes = sampleBytes(uploadSize(t), 8);
      const session = await initiate(c, model.id, { total_size_bytes: bytes.length });
      await putChunk(c, model.id, session.id, 0, bytes.subarray(0, t.chunkSize));
      await c.abortUpload(model.id, session.id);
      expect(t.log.last('abortArtifactUpload')?.status).toBe(204);
      await expectError(c.getUpload(model.id, session.id), 404, 'not_found');
      await expectError(putChunk(c, model.id, session.id, 1, bytes.subarray(t.chunkSize, 2 * t.chunkSize)), 404);
      await expectError(complete(c, model.id, session.id), 404);
      expect(await c.listArtifacts(model.id)).toEqual([]);
    },
  },
  {
    name: 'artifacts: single-request multipart upload; content type from the file part, metadata as JSON text',
    covers: { createModelArtifact: [201], getModel: [200], downloadModelArtifact: [] },
    async run(t) {
      const c = t.client();
      const model = await c.createModel(t.space, newModel(t));
      const bytes = sampleBytes(3000, 9);
      const artifact = await uploadMultipart(
        c,
        model.id,
        bytes,
        { artifact_kind: 'weights', is_current: 'true', metadata: JSON.stringify({ format: 'gguf', quantization: 'q4' }), sha256: sha256Hex(bytes), version_label: 'q4' },
        { name: 'tiny.gguf', type: 'application/x-gguf' },
      );
      if (t.kind === 'mock') {
        expect(artifact.id).toBeTypeOf('string');
        return;
      }
      expect(artifact).toMatchObject({
        product_id: model.id,
        artifact_kind: 'weights',
        file_name: 'tiny.gguf',
        content_type: 'application/x-gguf',
        size_bytes: bytes.length,
        sha256: sha256Hex(bytes),
        is_current: true,
        status: 'available',
        version_label: 'q4',
        metadata: { format: 'gguf', quantization: 'q4' },
      });
      expect(t.log.last('createModelArtifact', 201)?.headers.location).toMatch(new RegExp(`/model-artifacts/${artifact.id}$`));
      expect(await c.getModel(model.id)).toMatchObject({ current_artifact_id: artifact.id, current_artifact_model_format: 'gguf', current_artifact_content_type: 'application/x-gguf' });
      const sink = memorySink();
      await c.downloadArtifact(model.id, artifact.id, { to: sink.stream });
      expectSameBytes(sink.bytes(), bytes);
    },
  },
  {
    name: 'uploads: an empty artifact has no chunks and completes at once',
    on: SERVERS,
    covers: { initiateArtifactUpload: [201], completeArtifactUpload: [201], downloadModelArtifact: [] },
    async run(t) {
      const c = t.client();
      const model = await c.createModel(t.space, newModel(t));
      let session: ArtifactUploadSession | undefined;
      const artifact = await c.uploadArtifact(model.id, new Uint8Array(0), { file_name: 'empty.txt', onSession: (s) => (session = s) });
      expect(session).toMatchObject({ chunk_count: 0, total_size_bytes: 0 });
      expect(artifact).toMatchObject({ size_bytes: 0, sha256: sha256Hex(new Uint8Array(0)), content_type: 'text/plain' });
      const sink = memorySink();
      await c.downloadArtifact(model.id, artifact.id, { to: sink.stream });
      expect(sink.bytes().byteLength).toBe(0);
    },
  },
  {
    name: 'downloads: download headers, HEAD, If-None-Match and single byte ranges',
    covers: { downloadModelArtifact: [200, 206, 304], headModelArtifact: [200, 206, 304] },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        const id = randomUUID();
        expect((await download(c, id, id)).status).toBe(200);
        expect((await download(c, id, id, { method: 'HEAD' })).status).toBe(200);
        return;
      }
      const fileName = 'modèle ünïcode "v1".onnx';
      const { model, bytes, artifact } = await modelWithArtifact(t, c, 5000, fileName);
      // On S3 in redirect mode the main server answers with 302; the twin streams (proxy mode).
      const s = t.client({ server: t.streamingServer });
      const etag = `"${artifact.sha256}"`;

      const full = await download(s, model.id, artifact.id);
      expect(full.status).toBe(200);
      expectSameBytes(full.bytes, bytes);
      expect(full.headers.get('content-length')).toBe(String(bytes.length));
      expect(full.headers.get('content-type')).toBe('application/octet-stream');
      expect(full.headers.get('etag')).toBe(etag);
      expect(full.headers.get('accept-ranges')).toBe('bytes');
      expect(full.headers.get('x-content-type-options')).toBe('nosniff');
      const disposition = full.headers.get('content-disposition') ?? '';
      expect(disposition).toMatch(/^attachment;/);
      expect(disposition).toContain(`filename*=UTF-8''${encodeURIComponent(fileName).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)}`);

      const head = await download(s, model.id, artifact.id, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.bytes.byteLength).toBe(0);
      for (const name of ['content-length', 'etag', 'content-disposition', 'accept-ranges']) expect(head.headers.get(name), name).toBe(full.headers.get(name));

      const middle = await download(s, model.id, artifact.id, { range: 'bytes=10-19' });
      expect(middle.status).toBe(206);
      expect(middle.headers.get('content-range')).toBe(`bytes 10-19/${bytes.length}`);
      expectSameBytes(middle.bytes, bytes.subarray(10, 20));
      const tail = await download(s, model.id, artifact.id, { range: `bytes=${bytes.length - 100}-` });
      expect(tail.status).toBe(206);
      expectSameBytes(tail.bytes, bytes.subarray(bytes.length - 100));
      const headRange = await download(s, model.id, artifact.id, { method: 'HEAD', range: 'bytes=0-99' });
      expect([headRange.status, headRange.headers.get('content-length'), headRange.headers.get('content-range')]).toEqual([206, '100', `bytes 0-99/${bytes.length}`]);
      // A Range the server does not understand is ignored (RFC 9110): the whole artifact.
      const lenient = await download(s, model.id, artifact.id, { range: 'items=0-5' });
      expect(lenient.status).toBe(200);
      expectSameBytes(lenient.bytes, bytes);

      const unchanged = await download(s, model.id, artifact.id, { ifNoneMatch: etag });
      expect([unchanged.status, unchanged.headers.get('etag'), unchanged.bytes.byteLength]).toEqual([304, etag, 0]);
      expect((await download(s, model.id, artifact.id, { method: 'HEAD', ifNoneMatch: etag })).status).toBe(304);
      expect((await download(s, model.id, artifact.id, { ifNoneMatch: '"something-else"' })).status).toBe(200);
    },
  },
  {
    name: 'downloads: S3 storage answers with 302 to a presigned URL that needs no key',
    on: ['postgres'],
    covers: { downloadModelArtifact: [302, 304], headModelArtifact: [302], getModelArtifact: [200] },
    async run(t) {
      const c = t.client();
      const { model, bytes, artifact } = await modelWithArtifact(t, c, 4000, 'redirected.onnx');
      const redirect = await download(c, model.id, artifact.id);
      expect(redirect.status).toBe(302);
      const location = new URL(redirect.headers.get('location') ?? '');
      expect(location.protocol).toBe('http:');
      expect(location.href).not.toContain(t.apiKey);
      expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      expect((await download(c, model.id, artifact.id, { method: 'HEAD' })).status).toBe(302);
      expect((await download(c, model.id, artifact.id, { ifNoneMatch: `"${artifact.sha256}"` })).status).toBe(304);

      // The SDK follows the redirect without the key and verifies size and digest.
      const sink = memorySink();
      await c.downloadArtifact(model.id, artifact.id, { to: sink.stream });
      expectSameBytes(sink.bytes(), bytes);
      const storageCall = t.log.of(t.log.scenario).find((r) => r.server === 'storage');
      expect(storageCall?.status).toBe(200);
    },
  },
  {
    name: 'artifacts: delete marks the artifact deleted; it leaves lists, downloads and the model summary',
    covers: {
      deleteModelArtifact: [204, 404],
      getModelArtifact: [404],
      downloadModelArtifact: [404],
      headModelArtifact: [404],
      listModelArtifacts: [200],
      getModel: [200],
    },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        await c.deleteArtifact(randomUUID(), randomUUID());
        return;
      }
      const { model, artifact } = await modelWithArtifact(t, c);
      const other = await uploadMultipart(c, model.id, sampleBytes(100, 2), { artifact_kind: 'tokenizer' }, { name: 'tokenizer.json', type: 'application/json' });
      await c.deleteArtifact(model.id, artifact.id);
      expect(t.log.last('deleteModelArtifact')?.status).toBe(204);

      expect(await c.listArtifacts(model.id)).toEqual([other]);
      await expectError(c.getArtifact(model.id, artifact.id), 404);
      await expectError(download(c, model.id, artifact.id), 404);
      await expectError(download(c, model.id, artifact.id, { method: 'HEAD' }), 404);
      await expectError(c.deleteArtifact(model.id, artifact.id), 404);
      expect(await c.getModel(model.id)).toMatchObject({ artifact_count: 1, current_artifact_id: null, current_artifact_sha256: null });
      if (t.storage === 'fs') {
        expect(artifact.storage_uri).toBe(`fs://artifacts/${model.id}/${artifact.id}`);
        expect(await t.faults!.bytesExist(artifact.storage_uri)).toBe(false);
      }
    },
  },
  {
    name: 'inspection: an upload carries what its header says; POST …/inspect reads it again (edit access); the summary shows it',
    covers: { createModelArtifact: [201], inspectModelArtifact: [200, 403, 404], getModel: [200] },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        const inspected = await c.inspectArtifact(randomUUID(), randomUUID());
        expect(inspected.inspection?.format).toBeTypeOf('string');
        return;
      }
      const model = await c.createModel(t.space, newModel(t));
      const bytes = new Uint8Array(safetensors([{ name: 'classifier.weight', dtype: 'F32', shape: [2, 64] }], { format: 'pt' }));
      const artifact = await uploadMultipart(c, model.id, bytes, { is_current: 'true' }, { name: 'classifier.bin' });
      const expected = {
        format: 'safetensors',
        parameter_count: 128,
        tensor_count: 1,
        dtypes: { F32: 1 },
        architecture: null,
        quantization: null,
        metadata: { format: 'pt' },
        warnings: [],
        error: null,
      };
      expect(artifact.inspection).toEqual(expected);
      expect(await c.getModel(model.id)).toMatchObject({ current_artifact_model_format: 'safetensors', current_artifact_parameter_count: 128 });
      expect(await c.inspectArtifact(model.id, artifact.id)).toMatchObject({ id: artifact.id, inspection: expected });

      const viewer = t.client({ apiKey: (await t.users()).viewer });
      await expectError(viewer.inspectArtifact(model.id, artifact.id), 403, 'forbidden');
      await expectError(c.inspectArtifact(model.id, unknownId()), 404, 'not_found');
      await expectError(c.inspectArtifact(unknownId(), artifact.id), 404, 'not_found');
    },
  },
  {
    name: "events: a model's and a space's audit trail, newest first, with types and since; space events for space admins only",
    covers: { listProductEvents: [200, 404, 422], listSpaceEvents: [200, 403, 404, 422] },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        const trail = await c.listEvents({ product: randomUUID() }).toArray();
        expect(trail.length).toBeGreaterThan(0);
        expect(trail[0]).toMatchObject({ id: expect.any(String), type: expect.any(String), data: expect.any(Object) });
        expect((await c.listEvents({ space: t.space }).toArray()).length).toBeGreaterThan(0);
        return;
      }
      const before = new Date(Date.now() - 1000).toISOString();
      const model = await c.createModel(t.space, newModel(t));
      await c.updateModel(model.id, { description: 'Audited in the contract suite.' });
      const version = await c.createVersion(model.id, {});
      const trail = await c.listEvents({ product: model.id }).toArray();
      expect(trail.map((e) => e.type)).toEqual(['version.created', 'model.updated', 'model.created']);
      expect(trail[0]).toMatchObject({ product_id: model.id, subject_id: version.id, data: version });
      expect(trail[1]!.data.changes).toEqual({ description: { from: model.description, to: 'Audited in the contract suite.' } });
      const page = await c.listEvents({ product: model.id }, { limit: 2 })[Symbol.asyncIterator]().next();
      expect(page.value).toMatchObject({ totalCount: 3, page: 1, hasMore: true });
      expect((await c.listEvents({ product: model.id }, { types: ['model.created', 'version.created'] }).toArray()).map((e) => e.type)).toEqual([
        'version.created',
        'model.created',
      ]);
      expect(await c.listEvents({ product: model.id }, { since: '2999-01-01T00:00:00Z' }).toArray()).toEqual([]);
      const mine = (await c.listEvents({ space: t.space }, { since: before, types: ['model.created'] }).toArray()).filter((e) => e.product_id === model.id);
      expect(mine).toHaveLength(1);

      const users = await t.users();
      const viewer = t.client({ apiKey: users.viewer });
      expect((await viewer.listEvents({ product: model.id }).toArray()).length).toBe(3);
      await expectError(viewer.listEvents({ space: t.space }).toArray(), 403, 'forbidden');
      const outsider = t.client({ apiKey: users.outsider });
      await expectError(outsider.listEvents({ product: model.id }).toArray(), 404, 'not_found');
      await expectError(outsider.listEvents({ space: t.space }).toArray(), 404, 'not_found');
      const badSince = await t.raw('GET', `${API}/catalog/products/${model.id}/events?since=last-tuesday`);
      expect(badSince.status).toBe(422);
      const badType = await t.raw('GET', `${API}/catalog/spaces/${t.space}/events?types=model.deleted`);
      expect(badType.status).toBe(422);
    },
  },
  {
    name: 'instant upload: bytes the server stores are not sent again; a caller who cannot see them gets an ordinary session',
    on: SERVERS,
    covers: { initiateArtifactUpload: [201], completeArtifactUpload: [201], uploadArtifactChunk: [409], getArtifactUpload: [200] },
    async run(t) {
      const c = t.client();
      const source = await c.createModel(t.space, newModel(t));
      const bytes = sampleBytes(uploadSize(t), 1515);
      const stored = await c.uploadArtifact(source.id, bytes, { file_name: 'base.safetensors', instantUpload: false });

      const model = await c.createModel(t.space, newModel(t));
      const session = await initiate(c, model.id, { total_size_bytes: bytes.length, sha256: sha256Hex(bytes) });
      expect(session).toMatchObject({ deduplicated: true, received_bytes: bytes.length, received_chunks: [...Array(session.chunk_count).keys()] });
      await expectError(putChunk(c, model.id, session.id, 0, bytes.subarray(0, session.chunk_size_bytes)), 409, 'upload_not_writable');
      const { artifact } = await complete(c, model.id, session.id);
      expect(artifact).toMatchObject({ sha256: stored.sha256, size_bytes: bytes.length, status: 'available' });
      expect((await c.getUpload(model.id, session.id)).deduplicated).toBe(true);

      // Through the SDK: the digest is computed first and no chunk goes out.
      const before = t.log.of(t.log.scenario).filter((r) => r.operationId === 'uploadArtifactChunk').length;
      const again = await c.uploadArtifact(model.id, bytes, { file_name: 'copy.safetensors' });
      expect(again.sha256).toBe(stored.sha256);
      expect(t.log.of(t.log.scenario).filter((r) => r.operationId === 'uploadArtifactChunk')).toHaveLength(before);

      // Another organization's user, uploading into a model of their own space, is told nothing.
      const users = await t.users();
      const outsider = t.client({ apiKey: users.outsider });
      const own = await outsider.createModel(users.outsiderSpace, newModel(t));
      const blind = await initiate(outsider, own.id, { total_size_bytes: bytes.length, sha256: sha256Hex(bytes) });
      expect(blind).toMatchObject({ deduplicated: false, received_chunks: [], status: 'initialized' });
    },
  },
  {
    name: 'downloads: bytes missing from storage → 404 "Artifact file not found"',
    on: SERVERS,
    covers: { downloadModelArtifact: [404], headModelArtifact: [404] },
    async run(t) {
      const c = t.client();
      const { model, artifact } = await modelWithArtifact(t, c, 2048, 'lost.bin');
      await t.faults!.removeBytes(artifact.storage_uri);
      const s = t.client({ server: t.streamingServer });
      const error = await expectError(download(s, model.id, artifact.id), 404, 'artifact_file_not_found');
      expect(error.detail).toBe('Artifact file not found');
      await expectError(download(s, model.id, artifact.id, { method: 'HEAD' }), 404);
      // The record itself is still there.
      expect((await c.getArtifact(model.id, artifact.id)).id).toBe(artifact.id);
    },
  },

  /* ------------------------------------------------------------------------------------------
   * Errors
   * ---------------------------------------------------------------------------------------- */
  {
    name: 'auth: no key or an unknown key → 401 with WWW-Authenticate, on every operation that needs a key',
    covers: Object.fromEntries(securedRequests().map((r) => [r.operationId, [401]])),
    async run(t) {
      const keys: (string | null)[] = t.kind === 'mock' ? [null] : [null, 'mr_0000000000000000000000000000000000000000000'];
      for (const request of securedRequests()) {
        for (const apiKey of keys) {
          const res = await t.raw(request.method, request.path, { apiKey, headers: request.headers, ...(request.body ? { body: request.body() } : {}) });
          const what = `${request.operationId} ${apiKey ? 'unknown key' : 'no key'}`;
          expect(res.status, what).toBe(401);
          expect(res.headers.get('www-authenticate'), what).toMatch(/^Bearer/);
          if (request.method !== 'HEAD') expect(res.body, what).toMatchObject({ status: 401, code: 'unauthenticated' });
        }
      }
      // And through the SDK.
      if (t.kind === 'server') {
        const anonymous = t.client({ apiKey: 'mr_revoked-or-never-issued-key-000000000000000' });
        await expectError(anonymous.getModel(randomUUID()), 401, 'unauthenticated');
        await expectError(anonymous.listModels({ space: t.space }).toArray(), 401, 'unauthenticated');
      }
    },
  },
  {
    name: 'not found: unknown spaces, organizations, models, artifacts and sessions, and everything of another organization → 404',
    on: SERVERS,
    covers: {
      listSpaceModels: [404],
      createSpaceModel: [404],
      listOrganizationModels: [404],
      getModel: [404],
      updateModel: [404],
      listModelVersions: [404],
      createModelVersion: [404],
      listModelArtifacts: [404],
      createModelArtifact: [404],
      getModelArtifact: [404],
      deleteModelArtifact: [404],
      downloadModelArtifact: [404],
      headModelArtifact: [404],
      initiateArtifactUpload: [404],
      getArtifactUpload: [404],
      abortArtifactUpload: [404],
      uploadArtifactChunk: [404],
      completeArtifactUpload: [404],
    },
    async run(t) {
      const c = t.client();
      const noSpace = `no-such-space-${t.tag}`;
      await expectError(c.listModels({ space: noSpace }).toArray(), 404, 'not_found');
      await expectError(c.createModel(noSpace, newModel(t)), 404, 'not_found');
      await expectError(c.listModels({ organization: `no-such-org-${t.tag}` }).toArray(), 404, 'not_found');

      const noModel = unknownId();
      await expectError(c.getModel(noModel), 404, 'not_found');
      await expectError(c.getModel('not-a-uuid'), 404, 'not_found');
      await expectError(c.updateModel(noModel, { description: 'x' }), 404);
      await expectError(c.listVersions(noModel), 404);
      await expectError(c.createVersion(noModel, { version_type: 'minor' }), 404);
      await expectError(c.listArtifacts(noModel), 404);
      await expectError(uploadMultipart(c, noModel, sampleBytes(10)), 404);
      await expectError(initiate(c, noModel, { total_size_bytes: 10 }), 404);

      const { model, artifact } = await modelWithArtifact(t, c);
      const noArtifact = unknownId();
      await expectError(c.getArtifact(model.id, noArtifact), 404);
      await expectError(c.getArtifact(model.id, 'not-a-uuid'), 404);
      await expectError(c.deleteArtifact(model.id, noArtifact), 404);
      await expectError(download(c, model.id, noArtifact), 404);
      await expectError(download(c, model.id, noArtifact, { method: 'HEAD' }), 404);
      // An artifact of another model is not found under this one.
      const second = await c.createModel(t.space, newModel(t));
      await expectError(c.getArtifact(second.id, artifact.id), 404);

      const noUpload = unknownId();
      await expectError(c.getUpload(model.id, noUpload), 404);
      await expectError(c.abortUpload(model.id, noUpload), 404);
      await expectError(putChunk(c, model.id, noUpload, 0, sampleBytes(10)), 404);
      await expectError(complete(c, model.id, noUpload, {}), 404);

      // Another organization's user sees nothing of this one: 404, never 403.
      const outsider = t.client({ apiKey: (await t.users()).outsider });
      await expectError(outsider.getModel(model.id), 404, 'not_found');
      await expectError(outsider.listModels({ space: t.space }).toArray(), 404);
      await expectError(outsider.listModels({ organization: t.organization }).toArray(), 404);
      await expectError(outsider.listArtifacts(model.id), 404);
      await expectError(download(outsider, model.id, artifact.id), 404);
      await expectError(outsider.updateModel(model.id, { description: 'mine now' }), 404);
    },
  },
  {
    name: 'forbidden: a space viewer reads but cannot write; an organization member without a space role cannot list it → 403',
    on: SERVERS,
    covers: {
      listSpaceModels: [200, 403],
      createSpaceModel: [403],
      updateModel: [403],
      createModelVersion: [403],
      createModelArtifact: [403],
      deleteModelArtifact: [403],
      initiateArtifactUpload: [403],
      getArtifactUpload: [403],
      abortArtifactUpload: [403],
      uploadArtifactChunk: [403],
      completeArtifactUpload: [403],
      getModel: [200],
      listModelVersions: [200],
      listModelArtifacts: [200],
      getModelArtifact: [200],
      downloadModelArtifact: [],
    },
    async run(t) {
      const c = t.client();
      const users = await t.users();
      const { model, bytes, artifact } = await modelWithArtifact(t, c);
      const session = await initiate(c, model.id, { total_size_bytes: 10 });
      const viewer = t.client({ apiKey: users.viewer });

      // Reading works.
      expect((await viewer.getModel(model.id)).id).toBe(model.id);
      expect(await viewer.listVersions(model.id)).toEqual([]);
      expect(ids(await viewer.listArtifacts(model.id))).toEqual([artifact.id]);
      expect(ids(await viewer.listModels({ space: t.space }, { q: model.name }).toArray())).toEqual([model.id]);
      const sink = memorySink();
      await viewer.downloadArtifact(model.id, artifact.id, { to: sink.stream });
      expectSameBytes(sink.bytes(), bytes);

      // Writing does not.
      await expectError(viewer.createModel(t.space, newModel(t)), 403, 'forbidden');
      await expectError(viewer.updateModel(model.id, { description: 'viewer edit' }), 403, 'forbidden');
      await expectError(viewer.createVersion(model.id, { version_type: 'minor' }), 403);
      await expectError(uploadMultipart(viewer, model.id, sampleBytes(10)), 403);
      await expectError(viewer.deleteArtifact(model.id, artifact.id), 403);
      await expectError(initiate(viewer, model.id, { total_size_bytes: 10 }), 403);
      await expectError(viewer.getUpload(model.id, session.id), 403);
      await expectError(viewer.abortUpload(model.id, session.id), 403);
      await expectError(putChunk(viewer, model.id, session.id, 0, sampleBytes(10)), 403);
      await expectError(complete(viewer, model.id, session.id), 403);
      // Member of the organization, no role on this space: it exists for them, but they may not list it.
      await expectError(viewer.listModels({ space: users.restrictedSpace }).toArray(), 403, 'forbidden');

      // Nothing changed.
      expect((await c.getModel(model.id)).description).toBe(model.description);
      expect(ids(await c.listArtifacts(model.id))).toEqual([artifact.id]);
      expect((await c.getUpload(model.id, session.id)).status).toBe('initialized');
    },
  },
  {
    name: 'bad input: malformed JSON → 400, a wrong media type → 415, invalid fields and parameters → 422',
    covers: {
      createSpaceModel: [400, 415, 422],
      updateModel: [400, 415, 422],
      createModelVersion: [400, 415, 422],
      initiateArtifactUpload: [400, 415, 422],
      completeArtifactUpload: [400, 415],
      setModelAlias: [400, 415],
      createVersionReview: [400, 415],
      uploadArtifactChunk: [415, 422],
      createModelArtifact: [415, 422],
      listSpaceModels: [422],
      listOrganizationModels: [422],
    },
    async run(t) {
      const c = t.client();
      const mock = t.kind === 'mock';
      const model = mock ? { id: randomUUID() } : await c.createModel(t.space, newModel(t));
      const session = mock ? { id: randomUUID() } : await initiate(c, model.id, { total_size_bytes: 10 });
      const product = `${API}/catalog/products/${model.id}`;
      const jsonBodies: [OperationId, string, string][] = [
        ['createSpaceModel', 'POST', `${API}/catalog/spaces/${t.space}/model-repository/models`],
        ['updateModel', 'PATCH', `${product}/model-repository`],
        ['createModelVersion', 'POST', `${product}/versions`],
        ['initiateArtifactUpload', 'POST', `${product}/model-artifacts/uploads`],
        ['completeArtifactUpload', 'POST', `${product}/model-artifacts/uploads/${session.id}/complete`],
        ['setModelAlias', 'PUT', `${product}/aliases/production`],
        ['createVersionReview', 'POST', `${product}/versions/${randomUUID()}/reviews`],
      ];
      for (const [operationId, method, path] of jsonBodies) {
        if (!mock) {
          // Prism answers malformed JSON itself, so this goes to the server directly.
          const malformed = await t.raw(method, path, { route: 'direct', headers: { 'content-type': 'application/json' }, body: '{"name": "unterminated' });
          expect([operationId, malformed.status]).toEqual([operationId, 400]);
          expect(malformed.body, operationId).toMatchObject({ status: 400 });
        }
        const wrongType = await t.raw(method, path, { headers: { 'content-type': 'text/plain' }, body: 'name=plain text' });
        expect([operationId, wrongType.status]).toEqual([operationId, 415]);
        expect(wrongType.body, operationId).toMatchObject({ status: 415 });
      }
      const chunkAsText = await t.raw('PUT', `${product}/model-artifacts/uploads/${session.id}/chunks/0`, { headers: { 'content-type': 'text/plain' }, body: 'abc' });
      expect(chunkAsText.status).toBe(415);
      const multipartAsJson = await t.raw('POST', `${product}/model-artifacts`, { headers: { 'content-type': 'application/json' }, body: '{"file":"x"}' });
      expect(multipartAsJson.status).toBe(415);

      // 422 with field errors, through the SDK (bodies its types would not allow).
      const invalid = async (call: Promise<unknown>, loc?: string) => {
        const error = await expectError(call, 422);
        if (!mock) {
          expect(error.code).toBe('validation_error');
          if (loc) expect(error.errors.map((e) => e.loc.join('.'))).toContain(loc);
        }
      };
      await invalid(c.listModels({ space: t.space }, { limit: 5000 }).toArray(), 'query.limit');
      await invalid(c.listModels({ organization: t.organization }, { skip: -1 }).toArray(), 'query.skip');
      await invalid(c.createModel(t.space, { slug: 'no-name' } as never), 'body.name');
      await invalid(c.createModel(t.space, { name: 'x', colour: 'red' } as never));
      await invalid(c.updateModel(model.id, { deployment_status: 'gone' } as never), 'body.deployment_status');
      await invalid(c.createVersion(model.id, { version_type: 'huge' } as never), 'body.version_type');
      await invalid(initiate(c, model.id, { total_size_bytes: -1 }), 'body.total_size_bytes');
      await invalid(uploadMultipart(c, model.id, null, { artifact_kind: 'weights' }));
      await invalid(putChunk(c, model.id, session.id, -1 as number, sampleBytes(1)));
      if (mock) return;
      // Rules beyond the schema.
      await invalid(initiate(c, model.id, { total_size_bytes: 10, product_version_id: unknownId() }), 'body.product_version_id');
      const bytes = sampleBytes(500, 3);
      await expectError(uploadMultipart(c, model.id, bytes, { sha256: sha256Hex(sampleBytes(500, 4)) }), 422);
      expect(await c.listArtifacts(model.id)).toEqual([]);
    },
  },
  {
    name: 'aliases: If-Match compare-and-set → 412; bad names, versions of another model and references → 422/404',
    on: SERVERS,
    covers: {
      setModelAlias: [201, 200, 412, 422, 404],
      deleteModelAlias: [412, 404, 422],
      getModelAlias: [200, 404, 422],
      listModelAliasHistory: [404, 422],
      listModelAliases: [404],
      getModelVersion: [404],
      listModelArtifacts: [404, 422],
    },
    async run(t) {
      const c = t.client();
      const model = await c.createModel(t.space, newModel(t));
      const other = await c.createModel(t.space, newModel(t));
      const [v1, v2] = [await c.createVersion(model.id, {}), await c.createVersion(model.id, {})];
      const theirs = await c.createVersion(other.id, {});
      await expectError(c.setAlias(model.id, 'production', v1.id, { ifMatch: '*' }), 412, 'precondition_failed');
      const first = await c.setAlias(model.id, 'production', v1.id);
      await c.setAlias(model.id, 'production', v2.id, { ifMatch: first.etag });
      await expectError(c.setAlias(model.id, 'production', v1.id, { ifMatch: first.etag }), 412, 'precondition_failed');
      await expectError(c.deleteAlias(model.id, 'production', { ifMatch: first.etag }), 412, 'precondition_failed');
      expect((await c.getAlias(model.id, 'production')).alias.version_id).toBe(v2.id);

      const invalid = await expectError(c.setAlias(model.id, 'production', theirs.id), 422, 'validation_error');
      expect(invalid.errors.map((e) => e.loc.join('.'))).toEqual(['body.version_id']);
      await expectError(c.setAlias(model.id, 'production', unknownId()), 422);
      await expectError(c.setAlias(model.id, 'Production', v1.id), 422);
      await expectError(c.setAlias(model.id, 'a..b', v1.id), 422);
      await expectError(c.getAlias(model.id, 'has space'), 422);
      await expectError(c.deleteAlias(model.id, 'UPPER'), 422);
      await expectError(c.aliasHistory(model.id, 'x.y'), 422);
      await expectError(c.listArtifacts(model.id, { version: 'v'.repeat(101) }), 422);

      await expectError(c.setAlias(unknownId(), 'production', v1.id), 404, 'not_found');
      await expectError(c.getAlias(model.id, 'staging'), 404, 'not_found');
      await expectError(c.deleteAlias(model.id, 'staging'), 404, 'not_found');
      await expectError(c.aliasHistory(model.id, 'staging'), 404, 'not_found');
      await expectError(c.listAliases(unknownId()), 404, 'not_found');
      await expectError(c.getVersion(model.id, 3), 404, 'not_found');
      await expectError(c.getVersion(model.id, 'staging'), 404);
      await expectError(c.getVersion(model.id, theirs.id), 404);
      await expectError(c.listArtifacts(model.id, { version: 'staging' }), 404);
    },
  },
  {
    name: 'reviews: an editor or viewer → 403 review_forbidden, one\'s own version → 403 self_approval_forbidden; another model\'s version → 404',
    on: SERVERS,
    covers: { createVersionReview: [403, 404, 201, 422], listVersionReviews: [404], setModelAlias: [403], deleteModelAlias: [403] },
    async run(t) {
      const users = await t.users();
      const c = t.client();
      const editor = t.client({ apiKey: users.editor });
      const viewer = t.client({ apiKey: users.viewer });
      const model = await c.createModel(t.space, newModel(t));
      const mine = await c.createVersion(model.id, {});
      const byEditor = await editor.createVersion(model.id, {});
      await expectError(editor.reviewVersion(model.id, mine.id, { decision: 'approved' }), 403, 'review_forbidden');
      await expectError(viewer.reviewVersion(model.id, mine.id, { decision: 'rejected' }), 403, 'review_forbidden');
      // The owner is a reviewer, but created `mine`: rejecting it is allowed, approving it is not.
      await expectError(c.reviewVersion(model.id, mine.id, { decision: 'approved' }), 403, 'self_approval_forbidden');
      await c.reviewVersion(model.id, mine.id, { decision: 'rejected' });
      await c.reviewVersion(model.id, byEditor.id, { decision: 'approved' });
      expect((await c.getVersion(model.id, byEditor.id)).approval_status).toBe('approved');
      await expectError(c.reviewVersion(model.id, mine.id, { decision: 'perhaps' } as never), 422);

      const other = await c.createModel(t.space, newModel(t));
      const theirs = await c.createVersion(other.id, {});
      await expectError(c.reviewVersion(model.id, theirs.id, { decision: 'approved' }), 404, 'not_found');
      await expectError(c.listReviews(model.id, theirs.id), 404, 'not_found');
      await expectError(c.reviewVersion(unknownId(), mine.id, { decision: 'approved' }), 404);

      // Aliases need edit access.
      await c.setAlias(model.id, 'staging', mine.id);
      await expectError(viewer.setAlias(model.id, 'staging', byEditor.id), 403, 'forbidden');
      await expectError(viewer.deleteAlias(model.id, 'staging'), 403, 'forbidden');
      expect((await viewer.getAlias(model.id, 'staging')).alias.version_id).toBe(mine.id);
    },
  },
  {
    name: 'promotion: under risk_based, production needs what the risk class asks → 409 promotion_blocked listing each requirement; nothing changes',
    on: SERVERS,
    covers: { createSpaceModel: [409, 201], updateModel: [409, 200], setModelAlias: [409, 201], createVersionReview: [201] },
    async run(t) {
      const users = await t.users();
      const c = t.client();
      const reviewer = t.client({ apiKey: users.reviewer });
      const space = users.gatedSpace;
      const types = (e: { errors: { type: string }[] }) => e.errors.map((x) => x.type);
      const refused = await expectError(c.createModel(space, newModel(t, { risk_classification: 'unacceptable', deployment_status: 'production' })), 409, 'promotion_blocked');
      expect(types(refused)).toEqual(['prohibited_risk']);
      const high = await c.createModel(space, newModel(t, { risk_classification: 'high' }));
      const version = await c.createVersion(high.id, {});
      const blocked = await expectError(c.updateModel(high.id, { deployment_status: 'production', description: 'live' }), 409, 'promotion_blocked');
      expect(types(blocked)).toEqual(['approval_required', 'artifact_required', 'artifact_required', 'field_required', 'field_required']);
      expect(blocked.errors.map((e) => e.loc.join('.'))).toContain('version.artifacts.model_card');
      expect((await c.getModel(high.id)).description).toBe(high.description);
      await expectError(c.setAlias(high.id, 'production', version.id), 409, 'promotion_blocked');
      const reviewable = await c.createVersion(high.id, { is_current: true });
      expect(reviewable.created_by_id).not.toBeNull();
      await c.updateModel(high.id, { intended_use: 'Churn scores for retention offers.', limitations: 'Not for credit decisions.' });
      await uploadMultipart(c, high.id, sampleBytes(40), { artifact_kind: 'model_card', product_version_id: reviewable.id }, { name: 'card.md', type: 'text/markdown' });
      await uploadMultipart(c, high.id, sampleBytes(40), { artifact_kind: 'eval_report', product_version_id: reviewable.id }, { name: 'eval.json', type: 'application/json' });
      const stillBlocked = await expectError(c.setAlias(high.id, 'production', reviewable.id), 409, 'promotion_blocked');
      expect(types(stillBlocked)).toEqual(['approval_required']);
      await reviewer.reviewVersion(high.id, reviewable.id, { decision: 'approved' });
      const live = await c.setAlias(high.id, 'production', reviewable.id, { reason: 'all requirements met' });
      expect([live.created, live.alias.version_id]).toEqual([true, reviewable.id]);
      expect((await c.updateModel(high.id, { deployment_status: 'production' })).deployment_status).toBe('production');
      const minimal = await c.createModel(space, newModel(t, { risk_classification: 'minimal', deployment_status: 'production' }));
      expect(minimal.deployment_status).toBe('production');
      const v = await c.createVersion(minimal.id, {});
      expect((await c.setAlias(minimal.id, 'production', v.id)).created).toBe(true);
      expect((await c.updateModel(minimal.id, { description: 'still minimal' })).description).toBe('still minimal');
    },
  },
  {
    name: 'conflicts: a slug already used in the space → 409, on create and on PATCH',
    on: SERVERS,
    covers: { createSpaceModel: [201, 409], updateModel: [409] },
    async run(t) {
      const c = t.client();
      const slug = `contract-${t.tag}-taken`;
      const first = await c.createModel(t.space, newModel(t, { slug }));
      await expectError(c.createModel(t.space, newModel(t, { slug })), 409, 'slug_conflict');
      const second = await c.createModel(t.space, newModel(t));
      await expectError(c.updateModel(second.id, { slug }), 409, 'slug_conflict');
      // A slug derived from the name collides too.
      await expectError(c.createModel(t.space, { name: second.name }), 409, 'slug_conflict');
      expect(first.slug).toBe(slug);
      // Slugs are per space.
      const elsewhere = await c.createModel((await t.users()).restrictedSpace, newModel(t, { slug }));
      expect(elsewhere.slug).toBe(slug);
    },
  },
  {
    name: 'uploads: chunk rules (length, index, digest) → 422 and nothing stored; missing chunks → 409; digest mismatch fails the session; finished sessions → 409',
    on: SERVERS,
    covers: {
      uploadArtifactChunk: [200, 409, 422],
      completeArtifactUpload: [201, 409, 422],
      abortArtifactUpload: [409],
      getArtifactUpload: [200],
    },
    async run(t) {
      const c = t.client();
      const model = await c.createModel(t.space, newModel(t));
      const bytes = sampleBytes(uploadSize(t), 11);
      const size = t.chunkSize;
      const chunk = (i: number) => bytes.subarray(i * size, Math.min((i + 1) * size, bytes.length));
      const session = await initiate(c, model.id, { total_size_bytes: bytes.length, sha256: sha256Hex(bytes) });
      const count = session.chunk_count;

      await expectError(putChunk(c, model.id, session.id, 0, chunk(0).subarray(1)), 422); // too short
      await expectError(putChunk(c, model.id, session.id, 0, bytes.subarray(0, size + 1)), 422); // too long
      await expectError(putChunk(c, model.id, session.id, count, chunk(count - 1)), 422); // index out of range
      await expectError(putChunk(c, model.id, session.id, 0, chunk(0), { digest: contentDigest(chunk(1)) }), 422, 'chunk_digest_mismatch');
      expect((await c.getUpload(model.id, session.id)).received_chunks).toEqual([]);

      await putChunk(c, model.id, session.id, 0, chunk(0), { digest: contentDigest(chunk(0)) });
      // A bad retry of a stored chunk leaves the stored copy intact.
      const corrupted = chunk(0).slice();
      corrupted[0] = corrupted[0]! ^ 0xff;
      await expectError(putChunk(c, model.id, session.id, 0, corrupted, { digest: contentDigest(chunk(0)) }), 422, 'chunk_digest_mismatch');
      expect((await c.getUpload(model.id, session.id)).received_chunks).toEqual([0]);

      const incomplete = await expectError(complete(c, model.id, session.id), 409, 'upload_incomplete');
      expect(incomplete.detail).toContain(String(count - 1));

      for (let i = 1; i < count; i++) await putChunk(c, model.id, session.id, i, chunk(i));
      // Re-sending a chunk replaces it (idempotent retry).
      await putChunk(c, model.id, session.id, count - 1, chunk(count - 1));
      // The digest given here differs from the bytes (and from the initiation's): 422, the session fails.
      await expectError(complete(c, model.id, session.id, { sha256: sha256Hex(sampleBytes(10)) }), 422);
      expect((await c.getUpload(model.id, session.id)).status).toBe('failed');
      expect(await c.listArtifacts(model.id)).toEqual([]);
      await expectError(putChunk(c, model.id, session.id, 0, chunk(0)), 409);
      await expectError(complete(c, model.id, session.id), 409);

      // A completed session takes no more chunks and cannot be aborted.
      let done: ArtifactUploadSession | undefined;
      await c.uploadArtifact(model.id, bytes, { file_name: 'ok.bin', onSession: (s) => (done = s) });
      await expectError(putChunk(c, model.id, done!.id, 0, chunk(0)), 409);
      await expectError(c.abortUpload(model.id, done!.id), 409);
    },
  },
  {
    name: 'limits: an artifact above MAX_ARTIFACT_SIZE_BYTES → 413 (chunked and single-request)',
    on: SERVERS,
    covers: { initiateArtifactUpload: [413], createModelArtifact: [413, 201] },
    async run(t) {
      const c = t.client();
      const model = await c.createModel(t.space, newModel(t));
      await expectError(initiate(c, model.id, { total_size_bytes: SERVER_SETTINGS.maxArtifactSize + 1 }), 413, 'payload_too_large');
      // The twin allows 4 KiB.
      const twin = t.client({ server: 'twin' });
      await expectError(uploadMultipart(twin, model.id, sampleBytes(SERVER_SETTINGS.twinMaxArtifactSize + 1)), 413, 'payload_too_large');
      expect(await c.listArtifacts(model.id)).toEqual([]);
      const fits = await uploadMultipart(twin, model.id, sampleBytes(SERVER_SETTINGS.twinMaxArtifactSize));
      expect(fits.size_bytes).toBe(SERVER_SETTINGS.twinMaxArtifactSize);
    },
  },
  {
    name: 'uploads: an expired session → 410 for chunks and completion (opened on the twin, whose sessions live 1 s)',
    on: SERVERS,
    covers: { initiateArtifactUpload: [201], uploadArtifactChunk: [410], completeArtifactUpload: [410], getArtifactUpload: [200] },
    async run(t) {
      const c = t.client();
      const model = await c.createModel(t.space, newModel(t));
      const bytes = sampleBytes(100, 5);
      const session = await initiate(t.client({ server: 'twin' }), model.id, { total_size_bytes: bytes.length });
      expect(Date.parse(session.expires_at) - Date.parse(session.created_at)).toBeLessThanOrEqual(SERVER_SETTINGS.twinSessionTtlSeconds * 1000 + 50);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(session.expires_at) - Date.now()) + 100));
      // The main server (another process, another TTL) judges by the session's own expires_at.
      await expectError(putChunk(c, model.id, session.id, 0, bytes), 410, 'upload_expired');
      await expectError(complete(c, model.id, session.id), 410, 'upload_expired');
      expect((await c.getUpload(model.id, session.id)).status).toBe('expired');
    },
  },
  {
    name: 'downloads: a range beyond the artifact → 416',
    on: SERVERS,
    covers: { downloadModelArtifact: [416], headModelArtifact: [416] },
    async run(t) {
      const c = t.client();
      const { model, bytes, artifact } = await modelWithArtifact(t, c, 1000);
      const s = t.client({ server: t.streamingServer });
      const error = await expectError(download(s, model.id, artifact.id, { range: `bytes=${bytes.length}-` }), 416);
      expect(t.log.last('downloadModelArtifact', 416)?.headers['content-range']).toBe(`bytes */${bytes.length}`);
      expect(error.code).toBeTypeOf('string');
      await expectError(download(s, model.id, artifact.id, { method: 'HEAD', range: `bytes=${bytes.length + 10}-${bytes.length + 20}` }), 416);
    },
  },
  {
    name: 'readiness: storage down → 503 with the Health document naming it; 200 again once repaired',
    on: SERVERS,
    covers: { getReadiness: [503, 200] },
    async run(t) {
      const repair = await t.faults!.breakStorage();
      try {
        const down = await t.raw('GET', '/readyz', { apiKey: null });
        expect(down.status).toBe(503);
        expect(down.body).toEqual({ status: 'unavailable', checks: { database: 'ok', storage: 'unavailable' } });
      } finally {
        await repair();
      }
      const up = await t.raw('GET', '/readyz', { apiKey: null });
      expect([up.status, up.body]).toEqual([200, { status: 'ok', checks: { database: 'ok', storage: 'ok' } }]);
    },
  },
  ...webhookScenarios,
];

/** The scenarios that run on a target. */
export function scenariosFor(target: TargetName): Scenario[] {
  return scenarios.filter((s) => !s.on || s.on.includes(target));
}
