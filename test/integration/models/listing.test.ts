/**
 * Listing model records: every filter, `q`, the default order and the paging headers, on the
 * space and the organization listing. One seeded app per database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Product, productSearchText } from '../../../server/src/persistence/entities.ts';
import { databaseTargets, startTestApp, type TestApp, type TestUser } from '../../support/app.ts';
import {
  expectOk,
  expectProblem,
  ids,
  model,
  orgModels,
  pageHeaders,
  sortedIds,
  spaceModels,
  type ModelCreate,
  type ModelSummary,
} from './helpers.ts';

const SPACE = 'listing';
const OTHER_SPACE = 'listing-other';
const TIES = 'listing-ties';
const ORG = 'listing-org';

/** The seed: varied enough that every filter and every searched field selects a proper subset. */
const SEED: (ModelCreate & { archive?: true })[] = [
  {
    name: 'Churn Prediction Model',
    description: 'Predicts account churn risk.',
    product_type: 'ML Model',
    provider: 'ml-platform',
    model_family: 'traditional_ml',
    model_task_type: 'classification',
    risk_classification: 'limited',
    deployment_status: 'production',
    model_architecture: 'XGBoost',
    framework: 'scikit-learn',
  },
  {
    name: 'Support Agent',
    product_type: 'LLM Agent',
    model_family: 'agent',
    model_task_type: 'agent',
    risk_classification: 'high',
    deployment_status: 'staging',
    vendor_name: 'Quokkavendor',
    vendor_product_name: 'Skylarkproduct',
    vendor_model_id: 'vmid-7781',
  },
  {
    name: 'Text Embedder',
    description: 'Sentence embeddings for semantic search.',
    product_type: 'ML Model',
    model_family: 'embedding_model',
    model_task_type: 'embedding',
    risk_classification: 'minimal',
    framework: 'PyTorch',
  },
  {
    name: 'Fraud 100% Detector',
    product_type: 'AI System',
    model_family: 'traditional_ml',
    model_task_type: 'classification',
    risk_classification: 'high',
    deployment_status: 'production',
  },
  { name: 'Demand_Forecast', model_family: 'traditional_ml', model_task_type: 'forecasting', deployment_status: 'retired' },
  { name: 'Demand Forecast Legacy', model_family: 'traditional_ml', model_task_type: 'forecasting', deployment_status: 'retired' },
  { name: 'Prompt Library', product_type: 'Prompt Collection', model_family: 'prompt_collection', archive: true },
  {
    name: 'Vision Classifier',
    product_type: 'ML Model',
    model_family: 'foundation_model',
    model_task_type: 'classification',
    risk_classification: 'limited',
    deployment_status: 'staging',
    model_architecture: 'ResNet-50',
    framework: 'TensorFlow',
  },
  {
    name: 'Sales Copilot',
    product_type: 'AI App',
    model_family: 'ai_app',
    model_task_type: 'llm',
    risk_classification: 'unacceptable',
    provider: 'Internal Platform',
    intended_use: 'zebrafinch-only-in-intended-use',
  },
  { name: 'Ranker', slug: 'xyz-special-slug', product_type: 'Agent', model_family: 'other', model_task_type: 'ranking' },
  { name: 'Ångström Modèle', product_type: 'ML Model', model_family: 'genai', model_task_type: 'llm', deployment_status: 'staging' },
  { name: 'Archived Churn Baseline', model_family: 'traditional_ml', model_task_type: 'classification', archive: true },
];

const targets = await databaseTargets();

for (const target of targets) {
  describe.skipIf(!target.create)(`listing model records on ${target.dialect}`, () => {
    let app: TestApp;
    let owner: TestUser;
    /** name → summary as created (archived ones re-read after the archive). */
    const byName = new Map<string, ModelSummary>();
    let all: ModelSummary[] = [];

    const list = async (query: string, slug = SPACE) => app.request<ModelSummary[]>('GET', spaceModels(slug, query), { key: owner.key });
    const names = (items: ModelSummary[]) => items.map((i) => i.name).sort();
    /** Names of seeded, non-archived records matching the predicate. */
    const expected = (pred: (m: ModelSummary) => boolean, includeArchived = false) =>
      all.filter((m) => (includeArchived || !m.is_archived) && pred(m)).map((m) => m.name).sort();

    beforeAll(async () => {
      app = await startTestApp(target);
      owner = await app.bootstrap(ORG, SPACE, 'owner@listing.test');
      await app.createSpace(ORG, OTHER_SPACE);
      await app.createSpace(ORG, TIES);
      for (const { archive, ...body } of SEED) {
        const created = expectOk<ModelSummary>(await app.request('POST', spaceModels(SPACE), { key: owner.key, body }), 201);
        byName.set(created.name, created);
      }
      for (const { archive, name } of SEED) {
        if (!archive) continue;
        const id = byName.get(name)!.id;
        byName.set(name, expectOk(await app.request('PATCH', model(id), { key: owner.key, body: { is_archived: true } })));
      }
      // Same names in another space: a space listing must never show them.
      for (const name of ['Churn Prediction Model', 'Support Agent']) {
        expectOk(await app.request('POST', spaceModels(OTHER_SPACE), { key: owner.key, body: { name, model_family: 'agent' } }), 201);
      }
      all = [...byName.values()];
    });
    afterAll(() => app?.close());

    describe('default order and visibility', () => {
      it('lists the space only, archived records hidden, updated_at descending', async () => {
        const res = await list('');
        const items = expectOk<ModelSummary[]>(res);
        expect(names(items)).toEqual(expected(() => true));
        expect(items.every((i) => i.space_slug === SPACE && i.is_archived === false)).toBe(true);
        // Created one after the other, the archived ones touched last: newest first.
        const stamps = items.map((i) => Date.parse(i.updated_at));
        expect(stamps).toEqual([...stamps].sort((a, b) => b - a));
        expect(items[0]!.name).toBe('Ångström Modèle');
        expect(pageHeaders(res)).toEqual({ total: SEED.length - 2, page: 1, hasMore: false });
      });

      it('breaks updated_at ties by id (descending), stable across pages', async () => {
        const made: string[] = [];
        for (let i = 0; i < 5; i++) {
          const res = await app.request<ModelSummary>('POST', spaceModels(TIES), { key: owner.key, body: { name: `Tie ${i}` } });
          made.push(expectOk<ModelSummary>(res, 201).id);
        }
        const same = new Date('2026-01-01T00:00:00.000Z');
        await app.em().nativeUpdate(Product, { id: { $in: made } }, { updated_at: same });
        const items = expectOk<ModelSummary[]>(await list('', TIES));
        expect(ids(items)).toEqual([...made].sort().reverse());
        const paged: string[] = [];
        for (let skip = 0; skip < 5; skip += 2) paged.push(...ids(expectOk<ModelSummary[]>(await list(`?limit=2&skip=${skip}`, TIES))));
        expect(paged).toEqual(ids(items));
      });

      it('include_archived=true adds the archived records; false is the default', async () => {
        const withArchived = expectOk<ModelSummary[]>(await list('?include_archived=true'));
        expect(names(withArchived)).toEqual(expected(() => true, true));
        expect(withArchived.filter((i) => i.is_archived).map((i) => i.name).sort()).toEqual(['Archived Churn Baseline', 'Prompt Library']);
        expect(names(expectOk(await list('?include_archived=false')))).toEqual(expected(() => true));
      });
    });

    describe('filters', () => {
      const cases: [string, string, (m: ModelSummary) => boolean][] = [
        ['model_family', '?model_family=traditional_ml', (m) => m.model_family === 'traditional_ml'],
        ['types (one)', '?types=AI%20System', (m) => m.product_type === 'AI System'],
        [
          'types (repeated)',
          '?types=ML%20Model&types=AI%20System&types=LLM%20Agent',
          (m) => ['ML Model', 'AI System', 'LLM Agent'].includes(m.product_type),
        ],
        ['types (same value twice)', '?types=Agent&types=Agent', (m) => m.product_type === 'Agent'],
        ['deployment_status', '?deployment_status=production', (m) => m.deployment_status === 'production'],
        ['deployment_status default (development)', '?deployment_status=development', (m) => m.deployment_status === 'development'],
        ['model_task_type', '?model_task_type=classification', (m) => m.model_task_type === 'classification'],
        ['risk_classification', '?risk_classification=high', (m) => m.risk_classification === 'high'],
        [
          'two filters together',
          '?model_family=traditional_ml&deployment_status=production',
          (m) => m.model_family === 'traditional_ml' && m.deployment_status === 'production',
        ],
        [
          'every filter together',
          '?model_family=traditional_ml&types=AI%20System&deployment_status=production&model_task_type=classification&risk_classification=high',
          (m) => m.name === 'Fraud 100% Detector',
        ],
        ['a filter with q', '?model_family=traditional_ml&q=demand', (m) => m.name.startsWith('Demand')],
        ['a filter nothing matches', '?model_family=embedding_model&deployment_status=production', () => false],
      ];
      for (const [title, query, pred] of cases) {
        it(`${title}: ${query}`, async () => {
          const res = await list(query);
          const items = expectOk<ModelSummary[]>(res);
          const want = expected(pred);
          expect(names(items)).toEqual(want);
          expect(pageHeaders(res)).toEqual({ total: want.length, page: 1, hasMore: false });
          if (want.length === 0) expect(res.text).toBe('[]');
        });
      }

      it('filters apply to archived records with include_archived=true', async () => {
        const items = expectOk<ModelSummary[]>(await list('?model_family=traditional_ml&include_archived=true'));
        expect(names(items)).toEqual(expected((m) => m.model_family === 'traditional_ml', true));
        expect(names(items)).toContain('Archived Churn Baseline');
      });

      it('model_task_type is an exact match', async () => {
        expect(expectOk<ModelSummary[]>(await list('?model_task_type=class'))).toEqual([]);
        expect(expectOk<ModelSummary[]>(await list('?model_task_type=CLASSIFICATION'))).toEqual([]);
      });

      it.each([
        ['model_family', '?model_family=bogus'],
        ['types', '?types=Robot'],
        ['types (one bad among good)', '?types=ML%20Model&types=robot'],
        ['deployment_status', '?deployment_status=live'],
        ['risk_classification', '?risk_classification=extreme'],
        ['include_archived', '?include_archived=maybe'],
        ['an unknown parameter', '?colour=blue'],
      ])('a bad %s value is 422 naming the parameter', async (_title, query) => {
        const problem = expectProblem(await list(query), 422, 'validation_error');
        expect(problem.errors!.length).toBeGreaterThan(0);
        expect(problem.errors![0]!.loc[0]).toBe('query');
      });
    });

    describe('q', () => {
      const cases: [string, string, string[]][] = [
        ['name', 'churn prediction', ['Churn Prediction Model']],
        ['name, any case', 'CHURN', ['Churn Prediction Model']],
        ['slug', 'special-slug', ['Ranker']],
        ['derived slug', 'support-agent', ['Support Agent']],
        ['description', 'SEMANTIC search', ['Text Embedder']],
        ['provider', 'internal plat', ['Sales Copilot']],
        ['model_architecture', 'resnet', ['Vision Classifier']],
        ['framework', 'tensorflow', ['Vision Classifier']],
        ['framework (another)', 'scikit', ['Churn Prediction Model']],
        ['vendor_name', 'quokka', ['Support Agent']],
        ['vendor_product_name', 'SKYLARK', ['Support Agent']],
        ['vendor_model_id', 'vmid-77', ['Support Agent']],
        ['a substring inside a word', 'bedd', ['Text Embedder']],
        ['non-ASCII, any case', 'ÅNGSTRÖM MODÈLE', ['Ångström Modèle']],
        ['a field q does not search (intended_use)', 'zebrafinch', []],
        ['% is literal', '100%', ['Fraud 100% Detector']],
        ['% is not a wildcard', 'fraud%detector', []],
        ['_ is literal', 'and_f', ['Demand_Forecast']],
        ['_ is not a wildcard', 'd_mand', []],
        ['a backslash is literal', 'demand\\', []],
        ['nothing matches', 'no-such-model-anywhere', []],
      ];
      for (const [title, q, want] of cases) {
        it(`${title}: q=${q}`, async () => {
          const res = await list(`?q=${encodeURIComponent(q)}`);
          const items = expectOk<ModelSummary[]>(res);
          expect(names(items)).toEqual([...want].sort());
          expect(pageHeaders(res).total).toBe(want.length);
        });
      }

      it('matches archived records only with include_archived=true', async () => {
        expect(names(expectOk(await list('?q=churn')))).toEqual(['Churn Prediction Model']);
        expect(names(expectOk(await list('?q=churn&include_archived=true')))).toEqual(['Archived Churn Baseline', 'Churn Prediction Model']);
      });

      it('an empty q is a validation error (the spec does not allow empty values), never a 500', async () => {
        const problem = expectProblem(await list('?q='), 422, 'validation_error');
        expect(problem.errors![0]!.loc).toEqual(['query', 'q']);
      });

      it('follows PATCHed searchable fields (search_text kept in step)', async () => {
        const ranker = byName.get('Ranker')!;
        expectOk(await app.request('PATCH', model(ranker.id), { key: owner.key, body: { framework: 'LightGBM-Zeta' } }));
        expect(names(expectOk(await list('?q=lightgbm-zeta')))).toEqual(['Ranker']);
        expectOk(await app.request('PATCH', model(ranker.id), { key: owner.key, body: { framework: null } }));
        expect(expectOk(await list('?q=lightgbm-zeta'))).toEqual([]);
        const row = await app.em().findOneOrFail(Product, { id: ranker.id });
        expect(row.search_text).toBe(productSearchText(row));
        byName.set('Ranker', expectOk(await app.request('GET', model(ranker.id), { key: owner.key })));
        all = [...byName.values()];
      });

      it('a q longer than 200 characters is 422', async () => {
        expectProblem(await list(`?q=${'a'.repeat(201)}`), 422, 'validation_error');
      });
    });

    describe('paging', () => {
      let full: string[];
      const visible = SEED.length - 2; // 10

      beforeAll(async () => {
        full = ids(expectOk<ModelSummary[]>(await list('?limit=1000')));
        expect(full).toHaveLength(visible);
      });

      it.each([
        // skip, limit, items, X-Page, X-Has-More
        [0, 4, 4, 1, true],
        [4, 4, 4, 2, true],
        [8, 4, 2, 3, false],
        [6, 4, 4, 2, false], // ends exactly at the last record
        [5, 5, 5, 2, false],
        [3, 4, 4, 1, true], // floor(3/4)+1
        [9, 1, 1, 10, false],
        [0, 1, 1, 1, true],
        [0, 10, 10, 1, false],
        [0, 1000, 10, 1, false],
        [10, 4, 0, 3, false], // skip exactly past the end
        [11, 4, 0, 3, false],
        [1000, 7, 0, 143, false], // far past the end
        [0, 9, 9, 1, true],
      ])('skip=%i limit=%i → %i items, X-Page %i, X-Has-More %s', async (skip, limit, count, page, hasMore) => {
        const res = await list(`?skip=${skip}&limit=${limit}`);
        const items = expectOk<ModelSummary[]>(res);
        expect(ids(items)).toEqual(full.slice(skip, skip + limit));
        expect(items).toHaveLength(count);
        expect(pageHeaders(res)).toEqual({ total: visible, page, hasMore });
        if (count === 0) expect(res.text).toBe('[]');
      });

      it('default limit is 50 and default skip 0', async () => {
        const res = await list('');
        expect(ids(expectOk(res))).toEqual(full);
        expect(pageHeaders(res)).toEqual({ total: visible, page: 1, hasMore: false });
      });

      it('pages walked with X-Has-More cover the list exactly once', async () => {
        const walked: string[] = [];
        let skip = 0;
        for (;;) {
          const res = await list(`?skip=${skip}&limit=3`);
          walked.push(...ids(expectOk(res)));
          if (!pageHeaders(res).hasMore) break;
          skip += 3;
        }
        expect(walked).toEqual(full);
      });

      it('headers count the filtered records, not the space — on a full, a partial and an empty page', async () => {
        const want = expected((m) => m.model_family === 'traditional_ml').length; // 4
        const full = await list('?model_family=traditional_ml&limit=2&skip=0');
        expect(expectOk<ModelSummary[]>(full)).toHaveLength(2);
        expect(pageHeaders(full)).toEqual({ total: want, page: 1, hasMore: true });
        const partial = await list('?model_family=traditional_ml&limit=3&skip=3');
        expect(expectOk<ModelSummary[]>(partial)).toHaveLength(want - 3);
        expect(pageHeaders(partial)).toEqual({ total: want, page: 2, hasMore: false });
        const empty = await list('?model_family=traditional_ml&q=demand&limit=5&skip=10');
        expect(expectOk(empty)).toEqual([]);
        expect(pageHeaders(empty)).toEqual({ total: 2, page: 3, hasMore: false });
        const none = await list('?q=nothing-like-this&skip=0');
        expect(pageHeaders(none)).toEqual({ total: 0, page: 1, hasMore: false });
      });

      it.each([
        ['limit=1001', 'limit'],
        ['limit=0', 'limit'],
        ['limit=-5', 'limit'],
        ['limit=abc', 'limit'],
        ['limit=1.5', 'limit'],
        ['skip=-1', 'skip'],
        ['skip=abc', 'skip'],
      ])('%s → 422', async (query, param) => {
        const problem = expectProblem(await list(`?${query}`), 422, 'validation_error');
        expect(problem.errors!.some((e) => e.loc.join('.') === `query.${param}`)).toBe(true);
      });

      it('the organization listing pages the same way', async () => {
        const orgAll = expectOk<ModelSummary[]>(await app.request('GET', orgModels(ORG, '?limit=1000'), { key: owner.key }));
        const total = orgAll.length;
        expect(total).toBe(visible + 2 + 5); // + the other space + the tie space
        const res = await app.request<ModelSummary[]>('GET', orgModels(ORG, `?skip=${total - 1}&limit=2`), { key: owner.key });
        expect(ids(expectOk(res))).toEqual(ids(orgAll).slice(total - 1));
        expect(pageHeaders(res)).toEqual({ total, page: Math.floor((total - 1) / 2) + 1, hasMore: false });
        const past = await app.request<ModelSummary[]>('GET', orgModels(ORG, `?skip=${total}&limit=1000`), { key: owner.key });
        expect(expectOk(past)).toEqual([]);
        expect(pageHeaders(past)).toEqual({ total, page: 1, hasMore: false });
        expectProblem(await app.request('GET', orgModels(ORG, '?limit=1001'), { key: owner.key }), 422);
        expectProblem(await app.request('GET', orgModels(ORG, '?skip=-1'), { key: owner.key }), 422);
      });
    });

    describe('organization listing filters', () => {
      it('takes the same filters and q, across spaces, with the same order', async () => {
        const res = await app.request<ModelSummary[]>('GET', orgModels(ORG, '?q=support&model_family=agent'), { key: owner.key });
        const items = expectOk<ModelSummary[]>(res);
        expect(items.map((i) => `${i.space_slug}/${i.name}`).sort()).toEqual([`${OTHER_SPACE}/Support Agent`, `${SPACE}/Support Agent`]);
        expect(pageHeaders(res)).toEqual({ total: 2, page: 1, hasMore: false });
        const orgAll = expectOk<ModelSummary[]>(await app.request('GET', orgModels(ORG, '?include_archived=true&limit=1000'), { key: owner.key }));
        const sorted = [...orgAll].sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at) || (a.id < b.id ? 1 : -1));
        expect(ids(orgAll)).toEqual(ids(sorted));
        expect(sortedIds(orgAll.filter((m) => m.is_archived))).toEqual(
          sortedIds([byName.get('Prompt Library')!, byName.get('Archived Churn Baseline')!]),
        );
        const typed = expectOk<ModelSummary[]>(
          await app.request('GET', orgModels(ORG, '?types=LLM%20Agent&types=Agent&risk_classification=high'), { key: owner.key }),
        );
        expect(names(typed)).toEqual(['Support Agent']);
      });
    });
  });
}
