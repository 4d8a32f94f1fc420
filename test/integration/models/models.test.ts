/**
 * Model records end to end: create (defaults, derived slugs, Location), read, PATCH (only the
 * given fields, null clears), archive, duplicate slugs, the catalog limit, and versions
 * feeding the summary. One app per database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelArtifact, Product, ProductVersion, Space, productSearchText } from '../../../server/src/persistence/entities.ts';
import { databaseTargets, startTestApp, type TestApp, type TestUser } from '../../support/app.ts';
import {
  expectOk,
  expectProblem,
  ids,
  model,
  orgModels,
  rowCounts,
  spaceModels,
  versions,
  withoutUpdatedAt,
  type ModelCreate,
  type ModelSummary,
  type ModelVersion,
} from './helpers.ts';
import { seedModelCreate } from '../../support/fixtures.ts';

const ORG = 'crud-org';
const SPACE = 'crud';

/** The seed document's create example, plus every other create field. */
const FULL: ModelCreate = {
  ...seedModelCreate,
  long_description: 'A gradient-boosted classifier over 30-day usage aggregates.',
  ai_system_type: 'predictive',
  vendor_name: 'In-house',
  vendor_product_name: 'Churn Suite',
  vendor_model_id: 'churn-xgb-7',
  deployment_environment: 'aws-eu-west-1',
  business_use_case: 'Reduce churn in the SMB segment.',
  is_gpai: false,
};

const ARTIFACT_SUMMARY_EMPTY = {
  artifact_count: 0,
  current_artifact_id: null,
  current_artifact_file_name: null,
  current_artifact_kind: null,
  current_artifact_content_type: null,
  current_artifact_model_format: null,
  current_artifact_sha256: null,
  current_artifact_size_bytes: null,
};

const VERSION_SUMMARY_EMPTY = {
  version_count: 0,
  current_version_id: null,
  current_version_number: null,
  current_version_type: null,
  current_version_release_date: null,
};

const targets = await databaseTargets();

for (const target of targets) {
  describe.skipIf(!target.create)(`model records on ${target.dialect}`, () => {
    let app: TestApp;
    let owner: TestUser;
    let spaceId: string;

    const create = (body: unknown, space = SPACE) => app.request<ModelSummary>('POST', spaceModels(space), { key: owner.key, body });
    const patch = (id: string, body: unknown) => app.request<ModelSummary>('PATCH', model(id), { key: owner.key, body });
    const get = async (id: string) => expectOk<ModelSummary>(await app.request('GET', model(id), { key: owner.key }));

    beforeAll(async () => {
      app = await startTestApp(target);
      owner = await app.bootstrap(ORG, SPACE, 'owner@crud.test');
      spaceId = (await app.em().findOneOrFail(Space, { slug: SPACE })).id;
    });
    afterAll(() => app?.close());

    describe('create', () => {
      it('stores every field and returns the full summary with Location', async () => {
        const res = await create(FULL);
        const s = expectOk<ModelSummary>(res, 201);
        const { slug: _s, ...fields } = FULL;
        expect(s).toMatchObject({ ...fields, slug: 'churn-prediction-model', space_id: spaceId, space_slug: SPACE, space_name: SPACE });
        expect(s).toMatchObject({ is_archived: false, ...VERSION_SUMMARY_EMPTY, ...ARTIFACT_SUMMARY_EMPTY });
        expect(s.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(s.created_at).toBe(s.updated_at);
        expect(new Date(s.created_at).toISOString()).toBe(s.created_at);
        expect(res.headers.get('location')).toBe(`/api/v1.0/catalog/products/${s.id}/model-repository`);
        // The Location answers with the same record; every summary field is present.
        const again = await get(s.id);
        expect(again).toEqual(s);
        expect(Object.values(again).every((v) => v !== undefined)).toBe(true);
        const row = await app.em().findOneOrFail(Product, { id: s.id });
        expect(row.created_by?.id).toBe(owner.id);
        expect(row.search_text).toBe(productSearchText(row));
      });

      it('fills the defaults and nulls of a minimal create', async () => {
        const s = expectOk<ModelSummary>(await create({ name: 'Minimal Model' }), 201);
        expect(s).toMatchObject({
          slug: 'minimal-model',
          product_type: 'ML Model',
          environment: 'development',
          deployment_status: 'development',
          description: null,
          long_description: null,
          provider: null,
          risk_classification: null,
          lifecycle_stage: null,
          model_family: null,
          model_task_type: null,
          serving_url: null,
          input_schema: null,
          output_schema: null,
          is_gpai: null,
          is_archived: false,
          ...VERSION_SUMMARY_EMPTY,
          ...ARTIFACT_SUMMARY_EMPTY,
        });
      });

      it.each([
        ['Churn Prediction Model v2', 'churn-prediction-model-v2'],
        ['  Fraud -- Detector!!  ', 'fraud-detector'],
        ['Modèle Été Ñandú', 'modele-ete-nandu'],
        ['GPT_4o / Mini (2024)', 'gpt-4o-mini-2024'],
        ['UPPER lower 123', 'upper-lower-123'],
        ['x'.repeat(150), 'x'.repeat(100)],
      ])('derives the slug from the name: %j → %s', async (name, slug) => {
        expect(expectOk<ModelSummary>(await create({ name }), 201).slug).toBe(slug);
      });

      it('a name with nothing to derive a slug from needs an explicit slug', async () => {
        const before = await rowCounts(app);
        const p = expectProblem(await create({ name: '!!! ???' }), 422, 'validation_error');
        expect(p.errors!.map((e) => e.loc.join('.'))).toContain('body.slug');
        expect(await rowCounts(app)).toEqual(before);
        expect(expectOk<ModelSummary>(await create({ name: '!!! ???', slug: 'punctuation' }), 201).slug).toBe('punctuation');
      });

      it('accepts every product type and model family of the seed', async () => {
        const types = ['ML Model', 'AI System', 'LLM Agent', 'AI App', 'Agent', 'Prompt Collection'] as const;
        const families = ['traditional_ml', 'genai', 'foundation_model', 'embedding_model', 'agent', 'ai_app', 'prompt_collection', 'other'] as const;
        for (const [i, family] of families.entries()) {
          const product_type = types[i % types.length]!;
          const s = expectOk<ModelSummary>(await create({ name: `Family ${family}`, model_family: family, product_type }), 201);
          expect(s).toMatchObject({ model_family: family, product_type });
        }
      });
    });

    describe('duplicate slugs', () => {
      it('409 on create with an explicit or a derived slug; nothing is written', async () => {
        expectOk(await create({ name: 'Dup Model' }), 201);
        const before = await rowCounts(app);
        expectProblem(await create({ name: 'Another', slug: 'dup-model' }), 409, 'slug_conflict');
        expectProblem(await create({ name: 'DUP  model' }), 409, 'slug_conflict');
        expect(await rowCounts(app)).toEqual(before);
      });

      it('the same slug in another space is fine', async () => {
        await app.createSpace(ORG, 'crud-second');
        const s = expectOk<ModelSummary>(await create({ name: 'Dup Model' }, 'crud-second'), 201);
        expect(s).toMatchObject({ slug: 'dup-model', space_slug: 'crud-second' });
      });

      it('409 on PATCH to a slug taken in the space; the record is unchanged', async () => {
        const a = expectOk<ModelSummary>(await create({ name: 'Slug A' }), 201);
        expectOk(await create({ name: 'Slug B' }), 201);
        expectProblem(await patch(a.id, { slug: 'slug-b', description: 'must not stick' }), 409, 'slug_conflict');
        expect(await get(a.id)).toEqual(a);
        // Its own slug, or a free one, is fine.
        expect(expectOk<ModelSummary>(await patch(a.id, { slug: 'slug-a' })).slug).toBe('slug-a');
        expect(expectOk<ModelSummary>(await patch(a.id, { slug: 'slug-a-renamed' })).slug).toBe('slug-a-renamed');
        expect(expectOk<ModelSummary>(await create({ name: 'Slug A' }), 201).slug).toBe('slug-a');
      });

      it('concurrent creates of one slug: exactly one wins, the others get 409', async () => {
        const results = await Promise.all(Array.from({ length: 6 }, () => create({ name: 'Race Model' })));
        expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
        for (const r of results.filter((x) => x.status === 409)) expectProblem(r, 409, 'slug_conflict');
        expect(await app.em().count(Product, { slug: 'race-model' })).toBe(1);
      });
    });

    describe('PATCH', () => {
      let base: ModelSummary;
      beforeAll(async () => {
        base = expectOk<ModelSummary>(await create({ ...FULL, name: 'Patch Target', slug: 'patch-target' }), 201);
      });

      it('changes only the given fields and moves updated_at', async () => {
        const res = await patch(base.id, { deployment_status: 'retired', lifecycle_stage: 'retirement', limitations: 'Retired after v3.' });
        const s = expectOk<ModelSummary>(res);
        expect(withoutUpdatedAt(s)).toEqual({
          ...withoutUpdatedAt(base),
          deployment_status: 'retired',
          lifecycle_stage: 'retirement',
          limitations: 'Retired after v3.',
        });
        expect(Date.parse(s.updated_at)).toBeGreaterThanOrEqual(Date.parse(base.updated_at));
        expect(s.created_at).toBe(base.created_at);
        expect(await get(base.id)).toEqual(s);
        base = s;
      });

      it('null clears every nullable field it names, and only those', async () => {
        const cleared = {
          description: null,
          long_description: null,
          provider: null,
          risk_classification: null,
          lifecycle_stage: null,
          model_family: null,
          model_task_type: null,
          model_architecture: null,
          framework: null,
          intended_use: null,
          limitations: null,
          serving_url: null,
          input_schema: null,
          output_schema: null,
          ai_system_type: null,
          vendor_name: null,
          vendor_product_name: null,
          vendor_model_id: null,
          deployment_environment: null,
          business_use_case: null,
          is_gpai: null,
        };
        const s = expectOk<ModelSummary>(await patch(base.id, cleared));
        expect(withoutUpdatedAt(s)).toEqual({ ...withoutUpdatedAt(base), ...cleared });
        const row = await app.em().findOneOrFail(Product, { id: base.id });
        expect(row.input_schema ?? null).toBeNull();
        expect(row.search_text).toBe(productSearchText(row));
        expect(row.search_text).toBe('patch target\npatch-target');
        base = s;
      });

      it('sets the cleared fields again, JSON objects included', async () => {
        const s = expectOk<ModelSummary>(
          await patch(base.id, { input_schema: { type: 'object', properties: { a: { type: 'string' } } }, is_gpai: true, model_family: 'genai' }),
        );
        expect(s).toMatchObject({ input_schema: { type: 'object', properties: { a: { type: 'string' } } }, is_gpai: true, model_family: 'genai' });
        base = s;
      });

      it('an empty body changes nothing', async () => {
        const s = expectOk<ModelSummary>(await patch(base.id, {}));
        expect(s).toEqual(base);
      });

      it.each([['name'], ['slug'], ['product_type'], ['environment'], ['deployment_status'], ['is_archived']])(
        'null for the required field %s is 422 and changes nothing',
        async (field) => {
          const before = await get(base.id);
          const p = expectProblem(await patch(base.id, { [field]: null }), 422, 'validation_error');
          expect(p.errors!.some((e) => e.loc.join('.').startsWith(`body.${field}`))).toBe(true);
          expect(await get(base.id)).toEqual(before);
        },
      );

      it('renaming does not change the slug', async () => {
        const s = expectOk<ModelSummary>(await patch(base.id, { name: 'Patch Target Renamed' }));
        expect(s).toMatchObject({ name: 'Patch Target Renamed', slug: 'patch-target' });
        base = s;
      });
    });

    describe('archive', () => {
      it('PATCH is_archived hides the record from both listings unless include_archived=true, and restores it', async () => {
        const s = expectOk<ModelSummary>(await create({ name: 'Archive Me' }), 201);
        const listed = async (query: string) => {
          const space = expectOk<ModelSummary[]>(await app.request('GET', spaceModels(SPACE, `?limit=1000${query}`), { key: owner.key }));
          const org = expectOk<ModelSummary[]>(await app.request('GET', orgModels(ORG, `?limit=1000${query}`), { key: owner.key }));
          return [ids(space).includes(s.id), ids(org).includes(s.id)];
        };
        expect(await listed('')).toEqual([true, true]);

        const archived = expectOk<ModelSummary>(await patch(s.id, { is_archived: true }));
        expect(archived.is_archived).toBe(true);
        expect(await listed('')).toEqual([false, false]);
        expect(await listed('&include_archived=true')).toEqual([true, true]);
        expect((await get(s.id)).is_archived).toBe(true); // still readable directly

        // An archived record can still be edited (and stays archived).
        expect(expectOk<ModelSummary>(await patch(s.id, { description: 'in the attic' }))).toMatchObject({ is_archived: true, description: 'in the attic' });

        expect(expectOk<ModelSummary>(await patch(s.id, { is_archived: false })).is_archived).toBe(false);
        expect(await listed('')).toEqual([true, true]);
      });
    });

    describe('catalog limit', () => {
      it('403 catalog_limit_reached beyond product_limit; archived products still count', async () => {
        await app.createSpace(ORG, 'capped', 2);
        const first = expectOk<ModelSummary>(await create({ name: 'Capped 1' }, 'capped'), 201);
        expectOk(await create({ name: 'Capped 2' }, 'capped'), 201);
        const before = await rowCounts(app);
        const p = expectProblem(await create({ name: 'Capped 3' }, 'capped'), 403, 'catalog_limit_reached');
        expect(p.detail).toMatch(/limit/);
        expect(await rowCounts(app)).toEqual(before);

        expectOk(await patch(first.id, { is_archived: true }));
        expectProblem(await create({ name: 'Capped 3' }, 'capped'), 403, 'catalog_limit_reached');
        expect(await rowCounts(app)).toEqual(before);

        // Moving a product elsewhere is not possible, so raising the limit is the way out.
        await app.setProductLimit('capped', 3);
        expectOk(await create({ name: 'Capped 3' }, 'capped'), 201);
        expectProblem(await create({ name: 'Capped 4' }, 'capped'), 403, 'catalog_limit_reached');
        await app.setProductLimit('capped', null);
        expectOk(await create({ name: 'Capped 4' }, 'capped'), 201);
      });

      it('a limit of 0 refuses the first product', async () => {
        await app.createSpace(ORG, 'zero-cap', 0);
        expectProblem(await create({ name: 'Nope' }, 'zero-cap'), 403, 'catalog_limit_reached');
      });

      it('the limit check comes after the permission check', async () => {
        await app.createSpace(ORG, 'full-cap', 0);
        const viewer = await app.createUser('viewer@crud.test');
        await app.addSpaceMember(viewer.email, 'full-cap', 'viewer');
        expectProblem(await app.request('POST', spaceModels('full-cap'), { key: viewer.key, body: { name: 'x' } }), 403, 'forbidden');
      });

      it('holds under concurrent creates', async () => {
        await app.createSpace(ORG, 'race-cap', 3);
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => create({ name: `Racer ${i}` }, 'race-cap')));
        const statuses = results.map((r) => r.status).sort();
        expect(statuses).toEqual([201, 201, 201, 403, 403, 403, 403, 403]);
        for (const r of results.filter((x) => x.status === 403)) expectProblem(r, 403, 'catalog_limit_reached');
        const listed = await app.request('GET', spaceModels('race-cap'), { key: owner.key });
        expect(listed.headers.get('x-total-count')).toBe('3');
      });
    });

    describe('versions', () => {
      let m: ModelSummary;
      let v1: ModelVersion;
      let v2: ModelVersion;
      let v3: ModelVersion;
      const createVersion = (body: unknown, id = m.id) => app.request<ModelVersion>('POST', versions(id), { key: owner.key, body });
      const listVersions = async () => expectOk<ModelVersion[]>(await app.request('GET', versions(m.id), { key: owner.key }));

      beforeAll(async () => {
        m = expectOk<ModelSummary>(await create({ name: 'Versioned Model' }), 201);
      });

      it('a new model has no versions', async () => {
        expect(await listVersions()).toEqual([]);
        expect(await get(m.id)).toMatchObject(VERSION_SUMMARY_EMPTY);
      });

      it('the first version is number 1, minor by default, and current', async () => {
        const res = await createVersion({});
        v1 = expectOk<ModelVersion>(res, 201);
        expect(v1).toEqual({
          id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          product_id: m.id,
          version_number: 1,
          version_type: 'minor',
          release_date: null,
          notes: null,
          is_current: true,
          approval_status: 'pending',
          aliases: [],
          created_by_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          created_at: expect.any(String),
          updated_at: expect.any(String),
        });
        const s = await get(m.id);
        expect(s).toMatchObject({ version_count: 1, current_version_id: v1.id, current_version_number: 1, current_version_type: 'minor', current_version_release_date: null });
        expect(Date.parse(s.updated_at)).toBeGreaterThanOrEqual(Date.parse(m.updated_at));
      });

      it('the first version is current even when created with is_current false', async () => {
        const other = expectOk<ModelSummary>(await create({ name: 'Versioned Other' }), 201);
        const v = expectOk<ModelVersion>(await createVersion({ is_current: false, version_type: 'major' }, other.id), 201);
        expect(v).toMatchObject({ version_number: 1, is_current: true, version_type: 'major' });
      });

      it('a later version is not current unless asked', async () => {
        v2 = expectOk<ModelVersion>(await createVersion({ version_type: 'major', release_date: '2026-01-15', notes: 'Big rewrite.' }), 201);
        expect(v2).toMatchObject({ version_number: 2, version_type: 'major', release_date: '2026-01-15', notes: 'Big rewrite.', is_current: false });
        expect(await get(m.id)).toMatchObject({ version_count: 2, current_version_id: v1.id, current_version_number: 1 });
      });

      it('is_current: true moves the current version', async () => {
        v3 = expectOk<ModelVersion>(await createVersion({ version_type: 'patch', release_date: '2026-03-01', is_current: true }), 201);
        expect(v3).toMatchObject({ version_number: 3, is_current: true });
        const s = await get(m.id);
        expect(s).toMatchObject({
          version_count: 3,
          current_version_id: v3.id,
          current_version_number: 3,
          current_version_type: 'patch',
          current_version_release_date: '2026-03-01',
          ...ARTIFACT_SUMMARY_EMPTY,
        });
        const listed = await listVersions();
        expect(listed.map((v) => v.version_number)).toEqual([3, 2, 1]);
        expect(listed.filter((v) => v.is_current).map((v) => v.id)).toEqual([v3.id]);
        expect(listed.find((v) => v.id === v1.id)).toMatchObject({ is_current: false });
        // The summary in the listings carries the same version fields.
        const inList = expectOk<ModelSummary[]>(await app.request('GET', spaceModels(SPACE, '?q=versioned model'), { key: owner.key }));
        expect(inList.find((x) => x.id === m.id)).toMatchObject({ version_count: 3, current_version_id: v3.id });
      });

      it('numbers keep counting 1, 2, 3, … and stay unique under concurrent creates', async () => {
        const results = await Promise.all(Array.from({ length: 5 }, () => createVersion({ is_current: true })));
        for (const r of results) expectOk(r, 201);
        const listed = await listVersions();
        expect(listed.map((v) => v.version_number)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
        expect(listed.filter((v) => v.is_current)).toHaveLength(1);
        expect(await app.em().count(ProductVersion, { product: m.id, is_current: true })).toBe(1);
        const s = await get(m.id);
        expect(s.version_count).toBe(8);
        expect(s.current_version_id).toBe(listed.find((v) => v.is_current)!.id);
      });

      it.each([
        ['a bad version_type', { version_type: 'huge' }, 'body.version_type'],
        ['a bad release_date', { release_date: '15/01/2026' }, 'body.release_date'],
        ['an impossible release_date (Feb 30)', { release_date: '2026-02-30' }, 'body.release_date'],
        ['an impossible release_date (month 13)', { release_date: '2026-13-01' }, 'body.release_date'],
        ['release_date in year 0', { release_date: '0000-01-01' }, 'body.release_date'],
        ['release_date with a time', { release_date: '2026-01-15T10:00:00Z' }, 'body.release_date'],
        ['notes over 10000 characters', { notes: 'n'.repeat(10_001) }, 'body.notes'],
        ['an unknown field', { version_number: 99 }, 'body.version_number'],
        ['is_current not a boolean', { is_current: 'yes' }, 'body.is_current'],
      ])('%s is 422 and creates nothing', async (_title, body, loc) => {
        const before = await rowCounts(app);
        const p = expectProblem(await createVersion(body), 422, 'validation_error');
        expect(p.errors!.map((e) => e.loc.join('.'))).toContain(loc);
        expect(await rowCounts(app)).toEqual(before);
      });

      it('the artifact summary follows the current available artifact (rows written directly)', async () => {
        const em = app.em();
        const artifact = (extra: Record<string, unknown>) =>
          em.create(ModelArtifact, {
            product: m.id,
            artifact_kind: 'weights',
            file_name: 'model.safetensors',
            content_type: 'application/octet-stream',
            size_bytes: 5_000_000_000, // beyond 32 bits
            sha256: 'a'.repeat(64),
            storage_backend: 'fs',
            storage_key: `artifacts/${Math.random()}`,
            storage_uri: 'file:///tmp/x',
            status: 'available',
            is_current: false,
            metadata: null,
            uploaded_at: new Date(),
            ...extra,
          } as never);
        artifact({});
        artifact({ status: 'deleted', is_current: true, file_name: 'old.onnx' });
        const current = artifact({ is_current: true, file_name: 'model.gguf', sha256: 'b'.repeat(64), metadata: { format: 'gguf-q4' } }) as ModelArtifact;
        await em.flush();
        const want = {
          artifact_count: 2,
          current_artifact_id: current.id,
          current_artifact_file_name: 'model.gguf',
          current_artifact_kind: 'weights',
          current_artifact_content_type: 'application/octet-stream',
          current_artifact_model_format: 'gguf-q4',
          current_artifact_sha256: 'b'.repeat(64),
          current_artifact_size_bytes: 5_000_000_000,
          version_count: 8,
        };
        expect(await get(m.id)).toMatchObject(want);
        const listed = expectOk<ModelSummary[]>(await app.request('GET', spaceModels(SPACE, '?q=versioned'), { key: owner.key }));
        expect(listed.find((x) => x.id === m.id)).toMatchObject(want);
        const others = listed.filter((x) => x.id !== m.id);
        expect(others.length).toBeGreaterThan(0);
        for (const o of others) expect(o).toMatchObject(ARTIFACT_SUMMARY_EMPTY);
      });

      it('a version created for one model does not show on another', async () => {
        const other = expectOk<ModelSummary>(await create({ name: 'Versionless' }), 201);
        expect(expectOk<ModelVersion[]>(await app.request('GET', versions(other.id), { key: owner.key }))).toEqual([]);
        expect(await get(other.id)).toMatchObject(VERSION_SUMMARY_EMPTY);
      });
    });
  });
}
