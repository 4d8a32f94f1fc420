/**
 * The space listing's own path (ModelService.page with a ListingSql condition: one plain
 * statement, rows written straight into the JSON body, totals cached per count scope) returns
 * exactly what the general path returns (the same page() with a FilterQuery: the ORM query and
 * summaryPage/toSummary, which single reads use): the same bytes and the same paging headers, for
 * every filter, with the listing cache on (a miss, then a hit) and off, and for callers with
 * partial access. Then: a total cached per scope follows every write. On SQLite and PostgreSQL.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawQueryFragment } from '@mikro-orm/core';
import { ModelArtifact, Product, ProductVersion, Space, User } from '../../../server/src/persistence/entities.ts';
import { ModelService, type ModelFilters } from '../../../server/src/services/models.ts';
import { ListingCache } from '../../../server/src/services/listing-cache.ts';
import { authenticate } from '../../../server/src/access/api-keys.ts';
import { createApp } from '../../../server/src/app.ts';
import { loadConfig } from '../../../server/src/config.ts';
import { createLogger } from '../../../server/src/logger.ts';
import { openBlobStore } from '../../../server/src/storage/index.ts';
import { storageOptions } from '../../../server/src/services/index.ts';
import { databaseTargets, startTestApp, type ApiResponse, type TestApp, type TestUser } from '../../support/app.ts';
import { expectOk, expectProblem, model, spaceModels, versions, type ModelSummary } from './helpers.ts';

const ORG = 'paths-org';
const SPACE = 'paths-space';
const OTHER = 'paths-other';

const FAMILIES = ['traditional_ml', 'genai', 'foundation_model', 'embedding_model', 'agent', null] as const;
const TYPES = ['ML Model', 'AI System', 'LLM Agent', 'AI App', 'Agent', 'Prompt Collection'] as const;
const STATUSES = ['development', 'staging', 'production', 'retired'] as const;
const RISKS = ['minimal', 'limited', 'high', 'unacceptable', null] as const;
const TASKS = ['classification', 'llm', 'regression', null] as const;
const NAMES = ['Churn Predictor', 'Modèle de détection', 'Überprüfung 100%_rate', '日本語 モデル', 'Fraud \\ Scorer', 'Agent 🚀 "quoted"'];

/** Every filter the spec has, alone and combined, and paging at the edges. */
const FILTERS: ModelFilters[] = [
  {},
  { limit: 1 },
  { limit: 7, skip: 3 },
  { limit: 50 },
  { limit: 1000 },
  { skip: 49 },
  { skip: 50 },
  { skip: 97, limit: 10 },
  { skip: 130 },
  { skip: 10_000 },
  { skip: Number.MAX_SAFE_INTEGER },
  { include_archived: true },
  { include_archived: true, skip: 60, limit: 25 },
  { include_archived: false, limit: 20 },
  { q: 'churn' },
  { q: 'CHURN', skip: 5, limit: 5 },
  { q: 'détection' },
  { q: 'ÜBERPRÜFUNG' },
  { q: '日本' },
  { q: '100%_' },
  { q: '%' },
  { q: '_' },
  { q: '\\' },
  { q: '"quoted"' },
  { q: 'no such words anywhere' },
  { q: 'churn', skip: 500 },
  { q: '' },
  { model_family: 'genai' },
  { model_family: 'agent', include_archived: true },
  { types: ['ML Model'] },
  { types: ['ML Model', 'AI System', 'Agent'] },
  { types: ['AI App', 'AI App'] },
  { types: [...TYPES] },
  { deployment_status: 'production' },
  { deployment_status: 'retired', skip: 2, limit: 3 },
  { model_task_type: 'classification' },
  { model_task_type: 'no-such-task' },
  { risk_classification: 'high' },
  { risk_classification: 'unacceptable', include_archived: true },
  { q: 'scorer', model_family: 'genai', deployment_status: 'staging' },
  { types: ['LLM Agent', 'Agent'], risk_classification: 'limited', model_task_type: 'llm', limit: 3 },
  { q: 'model', types: ['ML Model', 'AI System'], include_archived: true, skip: 10, limit: 10 },
  { model_family: 'traditional_ml', deployment_status: 'development', risk_classification: 'minimal', skip: 1000 },
];

/** The filters as the query string a client sends (arrays repeated, as the spec's form style says). */
function queryOf(filters: ModelFilters): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(filters)) {
    for (const v of Array.isArray(value) ? value : [value]) parts.push(`${key}=${encodeURIComponent(String(v))}`);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

const targets = await databaseTargets();

for (const target of targets) {
  describe.skipIf(!target.create)(`space listing: its own path against the general path on ${target.dialect}`, () => {
    let app: TestApp;
    let owner: TestUser;
    let viewer: TestUser;
    let member: TestUser;
    let grantee: TestUser;
    let outsiderWithGrant: TestUser;
    let spaceId: string;
    /** The same server without a listing cache (LISTING_CACHE_BYTES=0), on the same database. */
    let cacheOff: { server: Server; origin: string };
    /** The general path: page() with a FilterQuery, no listing cache. */
    const reference = () => new ModelService(app.orm, null);

    const get = (origin: string, path: string, key: string) =>
      fetch(`${origin}/api/v1.0${path}`, { headers: { Authorization: `Bearer ${key}` } }).then(async (res) => ({
        status: res.status,
        headers: res.headers,
        text: await res.text(),
      }));

    /** What the general path answers for `filters`: the body's bytes and the paging headers. */
    async function expected(filters: ModelFilters) {
      const page = await reference().page(app.em(), { space: spaceId }, filters);
      return {
        text: page.body.toString('utf8'),
        total: String(page.total),
        page: String(Math.floor(page.skip / page.limit) + 1),
        hasMore: String(page.skip + page.count < page.total),
      };
    }

    function expectSame(res: { status: number; headers: Headers; text: string }, want: Awaited<ReturnType<typeof expected>>, where: string) {
      expect(res.status, `${where}: ${res.text.slice(0, 300)}`).toBe(200);
      expect(res.headers.get('content-type'), where).toBe('application/json; charset=utf-8');
      expect(res.text, where).toBe(want.text);
      expect(res.headers.get('x-total-count'), where).toBe(want.total);
      expect(res.headers.get('x-page'), where).toBe(want.page);
      expect(res.headers.get('x-has-more'), where).toBe(want.hasMore);
    }

    beforeAll(async () => {
      app = await startTestApp(target);
      owner = await app.bootstrap(ORG, SPACE, 'owner@paths.test');
      spaceId = (await app.em().findOneOrFail(Space, { slug: SPACE })).id;
      await app.createSpace(ORG, OTHER);
      viewer = await app.createUser('viewer@paths.test');
      await app.addSpaceMember(viewer.email, SPACE, 'viewer');
      member = await app.createUser('member@paths.test');
      await app.addOrgMember(member.email, ORG, 'member');
      grantee = await app.createUser('grantee@paths.test');
      await app.addOrgMember(grantee.email, ORG, 'member');
      outsiderWithGrant = await app.createUser('outsider@paths.test');

      // 150 products in the space (some archived), a few in another space; updated_at repeats
      // in groups of three, so the id decides the order within a group.
      const em = app.em();
      const base = Date.UTC(2026, 0, 1);
      const otherId = (await app.em().findOneOrFail(Space, { slug: OTHER })).id;
      const products = [];
      for (let i = 0; i < 150; i++) {
        const name = `${NAMES[i % NAMES.length]} ${i}`;
        const at = new Date(base + Math.floor(i / 3) * 60_000 + (i % 7 === 0 ? 123 : 0));
        products.push(
          em.create(Product, {
            space: i % 25 === 24 ? otherId : spaceId,
            slug: `m-${i}`,
            name,
            description: i % 4 === 0 ? null : `${name}: described, ünïcödé ${i % 3 === 0 ? 'model' : 'scorer'}`,
            long_description: i % 5 === 0 ? `Long\ntext\twith "quotes" and \\ backslashes ${i}` : null,
            product_type: TYPES[i % TYPES.length]!,
            provider: i % 3 === 0 ? null : 'ml-platform',
            environment: 'development',
            risk_classification: RISKS[i % RISKS.length] ?? null,
            lifecycle_stage: i % 2 === 0 ? 'training' : null,
            model_family: FAMILIES[i % FAMILIES.length] ?? null,
            model_task_type: TASKS[i % TASKS.length] ?? null,
            model_architecture: i % 6 === 0 ? 'XGBoost' : null,
            framework: i % 8 === 0 ? 'PyTorch' : null,
            intended_use: i % 9 === 0 ? 'Internal use only.' : null,
            limitations: null,
            deployment_status: STATUSES[i % STATUSES.length]!,
            serving_url: i % 10 === 0 ? `https://serve.example/${i}?a=1&b=<2>` : null,
            input_schema: i % 4 === 1 ? { type: 'object', properties: { ä: { type: 'string', description: 'ünï "x"' }, n: { type: 'number', maximum: 1.5e300 } } } : null,
            output_schema: i % 6 === 2 ? { type: 'array', items: { enum: [1, 'two', null, true] } } : null,
            ai_system_type: i % 11 === 0 ? 'chatbot' : null,
            vendor_name: i % 12 === 0 ? 'Vendor Ünï' : null,
            vendor_product_name: null,
            vendor_model_id: i % 12 === 0 ? `v-${i}` : null,
            deployment_environment: null,
            business_use_case: i % 13 === 0 ? 'Forecasting 📈' : null,
            is_gpai: i % 3 === 0 ? null : i % 3 === 1,
            is_archived: i % 10 === 3,
            created_by: owner.id,
            created_at: at,
            updated_at: at,
          } as never) as Product,
        );
      }
      await em.flush();
      // Versions: none, one (current), several (one current), several (none current); dates set or not.
      for (const [i, p] of products.entries()) {
        const count = i % 4;
        for (let n = 1; n <= count; n++) {
          em.create(ProductVersion, {
            product: p.id,
            version_number: n,
            version_type: n === 1 ? 'major' : 'minor',
            release_date: n % 2 === 0 ? '2026-03-0' + n : null,
            notes: null,
            is_current: n === count && i % 8 !== 7,
            approval_status: n === count && i % 5 === 0 ? 'approved' : 'pending',
            created_at: p.updated_at,
            updated_at: p.updated_at,
          } as never);
        }
      }
      // Artifacts: current available (with and without a recorded format), available not current, deleted current.
      for (const [i, p] of products.entries()) {
        if (i % 3 === 2) continue;
        const artifact = (extra: Record<string, unknown>) =>
          em.create(ModelArtifact, {
            product: p.id,
            artifact_kind: 'weights',
            file_name: 'model.safetensors',
            content_type: 'application/octet-stream',
            size_bytes: 5_000_000_000 + i,
            sha256: 'a'.repeat(64),
            storage_backend: 'fs',
            storage_key: `artifacts/${p.id}/${Math.random()}`,
            storage_uri: 'file:///tmp/x',
            status: 'available',
            is_current: false,
            metadata: null,
            uploaded_by: em.getReference(User, owner.id),
            uploaded_at: p.updated_at,
            ...extra,
          } as never);
        artifact({});
        if (i % 3 === 0) artifact({ is_current: true, file_name: `w-${i}.gguf`, metadata: { format: 'gguf-q4', ü: 'ñ' }, sha256: 'b'.repeat(64) });
        if (i % 6 === 1) artifact({ is_current: true, file_name: 'model.onnx', inspected_format: 'onnx', parameter_count: 7_000_000_000, content_type: 'application/x-onnx' });
        if (i % 5 === 1) artifact({ status: 'deleted', is_current: true, file_name: 'old.pt' });
      }
      await em.flush();
      await app.grant(grantee.email, products[0]!.id, 'view');
      await app.grant(outsiderWithGrant.email, products[1]!.id, 'edit');

      const env = { NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: app.config.dataDir, DATABASE_URL: app.config.databaseUrl, SWEEP_INTERVAL_SECONDS: '0', LISTING_CACHE_BYTES: '0' };
      const config = loadConfig(env);
      const server = createApp({ config, orm: app.orm, storage: await openBlobStore(storageOptions(config)), logger: createLogger(config) }).listen(0, '127.0.0.1');
      await new Promise<void>((resolve, reject) => {
        server.once('listening', resolve);
        server.once('error', reject);
      });
      cacheOff = { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    });
    afterAll(async () => {
      if (cacheOff) {
        cacheOff.server.closeAllConnections();
        await new Promise<void>((resolve) => cacheOff.server.close(() => resolve()));
      }
      await app?.close();
    });

    it('the seed covers what the comparison needs (archived, versions, artifacts, schemas, nulls, ties)', async () => {
      const all = expectOk<ModelSummary[]>(await app.request('GET', spaceModels(SPACE, '?include_archived=true&limit=1000'), { key: owner.key }));
      expect(all).toHaveLength(144);
      expect(all.some((m) => m.is_archived)).toBe(true);
      expect(all.some((m) => m.current_version_id !== null && m.current_version_release_date !== null)).toBe(true);
      expect(all.some((m) => m.version_count > 0 && m.current_version_id === null)).toBe(true);
      expect(all.some((m) => m.current_artifact_model_format === 'onnx' && m.current_artifact_parameter_count === 7_000_000_000)).toBe(true);
      expect(all.some((m) => m.current_artifact_model_format === 'gguf-q4')).toBe(true);
      expect(all.some((m) => m.artifact_count > 0 && m.current_artifact_id === null)).toBe(true);
      expect(all.some((m) => m.input_schema !== null) && all.some((m) => m.output_schema !== null)).toBe(true);
      expect(all.some((m) => m.is_gpai === null) && all.some((m) => m.is_gpai === true) && all.some((m) => m.is_gpai === false)).toBe(true);
      expect(new Set(all.map((m) => m.updated_at)).size).toBeLessThan(all.length);
    });

    it.each(FILTERS.map((f) => [queryOf(f) || '(no query)', f] as const))(
      'the service: %s — the same bytes and total from the plain-SQL path as from the ORM path',
      async (_title, filters) => {
        const service = reference();
        const general = await service.page(app.em(), { space: spaceId }, filters);
        const own = await service.page(app.em(), { sql: 'p.space_id = ?', params: [spaceId] }, filters);
        expect(own.body.toString('utf8')).toBe(general.body.toString('utf8'));
        expect({ count: own.count, total: own.total, skip: own.skip, limit: own.limit }).toEqual({
          count: general.count,
          total: general.total,
          skip: general.skip,
          limit: general.limit,
        });
      },
    );

    it('the plain-SQL path leaves no raw query fragment behind (a q listing registered one per request that nothing consumed)', async () => {
      const service = reference();
      const before = RawQueryFragment.checkCacheSize();
      for (let i = 0; i < 20; i++) {
        await service.page(app.em(), { sql: 'p.space_id = ?', params: [spaceId] }, { q: `model ${i}`, model_family: 'genai' });
      }
      expect(RawQueryFragment.checkCacheSize()).toBe(before);
    });

    // (An empty q is the validator's 422 over HTTP.)
    it.each(FILTERS.filter((f) => f.q !== '').map((f) => [queryOf(f) || '(no query)', f] as const))(
      'over HTTP: %s — cache miss, cache hit and cache off all answer what the general path does',
      async (_title, filters) => {
        const want = await expected(filters);
        const path = spaceModels(SPACE, queryOf(filters));
        expectSame(await get(app.origin, path, owner.key), want, 'cache on, first request');
        expectSame(await get(app.origin, path, owner.key), want, 'cache on, again');
        expectSame(await get(app.origin, path, viewer.key), want, 'cache on, a space viewer');
        expectSame(await get(cacheOff.origin, path, owner.key), want, 'cache off');
        expectSame(await get(cacheOff.origin, path, viewer.key), want, 'cache off, a space viewer');
      },
    );

    it('callers with partial access get the same errors with the cache on and off', async () => {
      for (const origin of [app.origin, cacheOff.origin]) {
        const cases: [TestUser, number, string][] = [
          [member, 403, 'forbidden'], // an organization member without a space role
          [grantee, 403, 'forbidden'], // an organization member holding a grant on one product
          [outsiderWithGrant, 404, 'not_found'], // outside the organization, with a grant on one product of the space
        ];
        for (const [user, status, code] of cases) {
          for (const query of ['', '?skip=50', '?q=churn&types=Agent']) {
            const res = await get(origin, spaceModels(SPACE, query), user.key);
            expectProblem({ status: res.status, headers: res.headers, text: res.text, body: JSON.parse(res.text) as unknown } as ApiResponse, status, code);
            expect(res.headers.get('x-total-count')).toBeNull();
          }
        }
        const forbidden = await get(origin, spaceModels(SPACE), member.key);
        expect(JSON.parse(forbidden.text).detail).toBe(`You need a role on space '${SPACE}' to list its models.`);
        const hidden = await get(origin, spaceModels(SPACE), outsiderWithGrant.key);
        expect(JSON.parse(hidden.text).detail).toBe(`Space '${SPACE}' was not found.`);
      }
    });

    describe('a total cached per count scope', () => {
      const list = async (query: string) => {
        const res = await get(app.origin, spaceModels(SPACE, query), owner.key);
        return res;
      };
      /** Each request's answer against the general path's, on pages that share one cached total. */
      const expectAllPagesExact = async () => {
        for (const filters of [{ skip: 0 }, { skip: 50 }, { skip: 100, limit: 25 }, { include_archived: true, skip: 40 }, { q: 'churn', skip: 3 }] as ModelFilters[]) {
          expectSame(await list(queryOf(filters)), await expected(filters), queryOf(filters));
        }
      };

      it('is counted once for all skips and limits: a page with another skip runs no count', async () => {
        // No match lists: the second page is read by its own statement, which must not count.
        const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { rows: false, listRows: 0 }));
        const statements: string[] = [];
        const knex = app.orm.em.getKnex();
        const record = (q: { sql: string }) => statements.push(q.sql);
        const visible = { sql: 'p.space_id = ?', params: [spaceId] };
        const first = await service.page(app.em(), visible, { skip: 0 }, { countScope: 'scope-a' });
        knex.on('query', record);
        let second;
        try {
          second = await service.page(app.em(), visible, { skip: 50, limit: 20 }, { countScope: 'scope-a' });
        } finally {
          knex.removeListener('query', record);
        }
        expect(statements).toHaveLength(1);
        expect(statements[0]).not.toMatch(/total_count/); // neither a window nor a subquery counts the matches
        expect(second.total).toBe(first.total);
        const general = await reference().page(app.em(), { space: spaceId }, { skip: 50, limit: 20 });
        expect(second.body.toString('utf8')).toBe(general.body.toString('utf8'));
        expect(second.total).toBe(general.total);
      });

      it('reuses rendered summaries across pages and filters: a page of summaries rendered before is one id statement', async () => {
        const kept: Buffer[] = [];
        const cache = new (class extends ListingCache {
          override setRow(key: string, json: Buffer): void {
            kept.push(json);
            super.setRow(key, json);
          }
        })(1024 * 1024, { pages: false });
        const service = new ModelService(app.orm, cache);
        const user = await authenticate(app.em(), owner.key);
        const statements: string[] = [];
        const knex = app.orm.em.getKnex();
        const record = (q: { sql: string }) => statements.push(q.sql);
        // Renders every summary of the space (the listing's first 1,000, archived ones included).
        const all = await service.listSpace(app.em(), user, SPACE, { include_archived: true, limit: 1000 });
        expect(all.body.toString('utf8')).toBe((await expected({ include_archived: true, limit: 1000 })).text);
        expect(kept.length).toBe(all.count);
        // Each kept summary in memory of its own, not a slice of a shared slab that it would keep alive.
        expect(kept.every((b) => b.byteOffset === 0 && b.buffer.byteLength === b.length)).toBe(true);
        for (const filters of FILTERS) {
          statements.length = 0;
          knex.on('query', record);
          let page;
          try {
            page = await service.listSpace(app.em(), user, SPACE, filters);
          } finally {
            knex.removeListener('query', record);
          }
          const want = await expected(filters);
          expect(page.body.toString('utf8'), queryOf(filters)).toBe(want.text);
          expect(String(page.total), queryOf(filters)).toBe(want.total);
          // The space check, then at most the id statement and the count: no summary is read again.
          const reads = statements.filter((sql) => /space_name|long_description/.test(sql));
          expect(reads, `${queryOf(filters)}: ${reads.join('\n')}`).toEqual([]);
        }
      });

      /** The statements `run` sends. */
      const statementsOf = async <T,>(run: () => Promise<T>): Promise<{ result: T; statements: string[] }> => {
        const statements: string[] = [];
        const knex = app.orm.em.getKnex();
        const record = (q: { sql: string }) => statements.push(q.sql);
        knex.on('query', record);
        try {
          return { result: await run(), statements };
        } finally {
          knex.removeListener('query', record);
        }
      };
      /** A statement that reads the listing's products (the access check names none as `products p`). */
      const readsProducts = (sql: string) => /from products p\b/.test(sql);

      it('serves a listing asked before from its match list: every filter exact, and no statement reads a product', async () => {
        const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false }));
        const user = await authenticate(app.em(), owner.key);
        for (const filters of FILTERS) {
          const want = await expected(filters);
          // The first request counts, the second reads the match list, the third is served from it.
          for (const round of ['counted', 'list read', 'from the list']) {
            const { result: page, statements } = await statementsOf(() => service.listSpace(app.em(), user, SPACE, filters));
            const where = `${queryOf(filters) || '(no query)'}, ${round}`;
            expect(page.body.toString('utf8'), where).toBe(want.text);
            expect(String(page.total), where).toBe(want.total);
            if (round === 'from the list') expect(statements.filter(readsProducts), where).toEqual([]);
          }
        }
      });

      it('a match list shorter than its listing serves the pages inside it; pages past its end are read, all exact', async () => {
        const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false, listRows: 20 }));
        const user = await authenticate(app.em(), owner.key);
        const cases: [ModelFilters, boolean][] = [
          [{ limit: 10 }, true],
          [{ skip: 10, limit: 10 }, true],
          [{ skip: 15, limit: 10 }, false],
          [{ skip: 100 }, false],
          [{ include_archived: true, skip: 5, limit: 15 }, true],
          [{ include_archived: true, skip: 5, limit: 16 }, false],
          // Fewer matches than the list may keep: the whole listing is in it.
          [{ q: 'churn', deployment_status: 'production', skip: 1, limit: 50 }, true],
        ];
        for (const [filters, inList] of cases) {
          const want = await expected(filters);
          if (filters.q) expect(Number(want.total)).toSatisfy((n: number) => n > 1 && n <= 20);
          for (const round of [1, 2, 3]) {
            const { result: page, statements } = await statementsOf(() => service.listSpace(app.em(), user, SPACE, filters));
            const where = `${queryOf(filters)}, request ${round}`;
            expect(page.body.toString('utf8'), where).toBe(want.text);
            expect(String(page.total), where).toBe(want.total);
            if (round === 3) expect(statements.some(readsProducts), where).toBe(!inList);
          }
        }
      });

      it('never serves a match list after the matches or their order changed (plain SQL too)', async () => {
        const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false }));
        const exact = async (filters: ModelFilters, where: string) => {
          const page = await service.listSpace(app.em(), await authenticate(app.em(), owner.key), SPACE, filters);
          expect(page.body.toString('utf8'), where).toBe((await expected(filters)).text);
          expect(String(page.total), where).toBe((await expected(filters)).total);
          return JSON.parse(page.body.toString('utf8')) as ModelSummary[];
        };
        const twice = async (filters: ModelFilters, where: string) => {
          await exact(filters, `${where}, counted`);
          return exact(filters, `${where}, from the list`);
        };
        const all = await twice({ skip: 40, limit: 20 }, 'before');
        await twice({ q: 'scorer', skip: 2 }, 'q before');
        const moved = all[10]!;
        const em = app.em();
        // Newest of all: first of the listing, out of the page at skip 40.
        expect(await em.nativeUpdate(Product, { id: moved.id }, { updated_at: new Date(Date.UTC(2030, 0, 1)) })).toBe(1);
        expect((await twice({ skip: 40, limit: 20 }, 'reordered')).map((m) => m.id)).not.toContain(moved.id);
        expect((await twice({ limit: 1 }, 'reordered, first'))[0]!.id).toBe(moved.id);
        // Renamed through the entity (its search text follows): it matches q now.
        const entities = app.em();
        const product = await entities.findOneOrFail(Product, { id: moved.id });
        const name = product.name;
        product.name = `${name} Scorer`;
        await entities.flush();
        try {
          expect((await twice({ q: 'scorer', limit: 1 }, 'renamed'))[0]!.id).toBe(moved.id);
          expect(await app.em().nativeUpdate(Product, { id: moved.id }, { is_archived: true })).toBe(1);
          expect((await twice({ q: 'scorer', limit: 1 }, 'archived'))[0]!.id).not.toBe(moved.id);
        } finally {
          const restore = app.em();
          const again = await restore.findOneOrFail(Product, { id: moved.id });
          again.name = name;
          again.is_archived = moved.is_archived;
          await restore.flush();
          await restore.nativeUpdate(Product, { id: moved.id }, { updated_at: new Date(moved.updated_at) });
        }
        await twice({ skip: 40, limit: 20 }, 'restored');
      });

      /** Two listings with totals not known (so the statements answer both): the second reads the space's match columns. */
      const indexSpace = async (service: ModelService) => {
        const user = await authenticate(app.em(), owner.key);
        await service.listSpace(app.em(), user, SPACE, { limit: 1 });
        await service.listSpace(app.em(), user, SPACE, { limit: 1, model_family: 'genai', deployment_status: 'staging' });
        return user;
      };
      /** A statement that reads products by id (a page's summaries), not by walking the space. */
      const byId = (sql: string) => /json_each|= any\(/.test(sql);

      it("matches every filter from the space's match columns: exact bodies and totals, no statement walking the space", async () => {
        const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false }));
        const user = await indexSpace(service);
        for (const filters of FILTERS) {
          const want = await expected(filters);
          const { result: page, statements } = await statementsOf(() => service.listSpace(app.em(), user, SPACE, filters));
          const where = queryOf(filters) || '(no query)';
          expect(page.body.toString('utf8'), where).toBe(want.text);
          expect(String(page.total), where).toBe(want.total);
          const walks = statements.filter((sql) => readsProducts(sql) && !byId(sql));
          // Past the end of the first LIST_ROWS matches a page is read by its statement: no filter here goes so deep with matches.
          expect(walks, `${where}: ${walks.join('\n')}`).toEqual([]);
        }
      });

      it('matches q as each database does: case-sensitive on PostgreSQL, ASCII letters either case on SQLite', async () => {
        const em = app.em();
        const [a, b] = await em.find(Product, { space: spaceId, is_archived: false }, { orderBy: { slug: 'asc' }, limit: 2 });
        // Written by hand: search texts are lowercase when the server writes them.
        await em.nativeUpdate(Product, { id: a!.id }, { search_text: 'Mixed CASE Zebra-Text' });
        await em.nativeUpdate(Product, { id: b!.id }, { search_text: 'ÜBERZEBRA ascii-only' });
        try {
          const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false }));
          const user = await indexSpace(service);
          for (const q of ['zebra', 'ZEBRA', 'case zebra', 'überzebra', 'Üb', 'mixed', 'ascii-only']) {
            const want = await expected({ q });
            const { result: page, statements } = await statementsOf(() => service.listSpace(app.em(), user, SPACE, { q }));
            expect(page.body.toString('utf8'), q).toBe(want.text);
            expect(String(page.total), q).toBe(want.total);
            expect(statements.filter((sql) => readsProducts(sql) && !byId(sql)), q).toEqual([]);
          }
          // The two databases differ here, and the index with each.
          expect((await expected({ q: 'zebra' })).total).toBe(target.dialect === 'sqlite' ? '2' : '0');
        } finally {
          for (const p of [a!, b!]) await app.em().nativeUpdate(Product, { id: p.id }, { search_text: p.search_text });
        }
      });

      it("never matches from a space's match columns after a product changed (plain SQL), and a space larger than indexRows is not kept", async () => {
        const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false }));
        const user = await indexSpace(service);
        const before = await expected({ model_family: 'agent' });
        const [first] = JSON.parse((await expected({ model_family: 'genai', limit: 1 })).text) as ModelSummary[];
        expect(await app.em().nativeUpdate(Product, { id: first!.id }, { model_family: 'agent' })).toBe(1);
        try {
          const page = await service.listSpace(app.em(), user, SPACE, { model_family: 'agent' });
          expect(String(page.total)).toBe(String(Number(before.total) + 1));
          expect(page.body.toString('utf8')).toBe((await expected({ model_family: 'agent' })).text);
        } finally {
          await app.em().nativeUpdate(Product, { id: first!.id }, { model_family: 'genai' });
        }

        // Too many products (indexRows), or more than a quarter of the cache's budget (~24 KB for this space).
        for (const cache of [new ListingCache(1024 * 1024, { pages: false, indexRows: 100 }), new ListingCache(64 * 1024, { pages: false })]) {
          const small = new ModelService(app.orm, cache);
          const asked = await indexSpace(small);
          for (const risk of ['limited', 'high'] as const) {
            const { result: page, statements } = await statementsOf(() => small.listSpace(app.em(), asked, SPACE, { risk_classification: risk }));
            expect(page.body.toString('utf8')).toBe((await expected({ risk_classification: risk })).text);
            expect(statements.some((sql) => readsProducts(sql) && !byId(sql))).toBe(true);
            // Not read again on every listing it cannot serve.
            expect(statements.some((sql) => /p\.search_text from products p/.test(sql))).toBe(false);
          }
        }
      });

      it.skipIf(target.dialect !== 'sqlite')("a product whose id is not a UUID's text (written by hand on SQLite) leaves the listing to its statements, exact", async () => {
        const conn = app.em().getConnection();
        const [product] = await conn.execute<{ id: string }[]>("select id from products where slug = 'm-5'");
        await conn.execute("update products set id = 'written-by-hand' where id = ?", [product!.id]);
        try {
          const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false }));
          const user = await indexSpace(service);
          // The space gets no index; a match list holding the product is not kept; one without it is.
          const cases: [ModelFilters, boolean][] = [
            [{}, true],
            [{ skip: 3 }, true],
            [{ include_archived: true, limit: 200 }, true],
            [{ q: 'churn' }, false], // m-5 is not a churn model
          ];
          for (const [filters, walks] of cases) {
            for (const round of [1, 2, 3]) {
              const { result: page, statements } = await statementsOf(() => service.listSpace(app.em(), user, SPACE, filters));
              const want = await expected(filters);
              expect(page.body.toString('utf8'), `${queryOf(filters)} ${round}`).toBe(want.text);
              expect(String(page.total)).toBe(want.total);
              if (round === 3) expect(statements.some((sql) => readsProducts(sql) && !byId(sql)), queryOf(filters)).toBe(walks);
              expect(statements.some((sql) => /p\.search_text from products p/.test(sql)), 'the index is not read again').toBe(false);
              // The list is tried once (the second request), not on every request after.
              if (round === 3) expect(statements.some((sql) => /^select p\.id from products p/.test(sql)), 'no list read again').toBe(false);
            }
          }
          expect((await expected({ include_archived: true, limit: 200 })).text).toContain('"written-by-hand"');
        } finally {
          await conn.execute("update products set id = ? where id = 'written-by-hand'", [product!.id]);
        }
      });

      it('a burst of listings at one version reads the space index once, and a match list once', async () => {
        const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false }));
        const user = await authenticate(app.em(), owner.key);
        await service.listSpace(app.em(), user, SPACE, { limit: 1 }); // the statements count it
        const combos: ModelFilters[] = [{ q: 'churn' }, { model_family: 'genai' }, { types: ['Agent'] }, { risk_classification: 'high' }, { q: 'model', skip: 3 }, { deployment_status: 'staging' }];
        const { result: pages, statements } = await statementsOf(() => Promise.all(combos.map((f) => service.listSpace(app.em(), user, SPACE, f))));
        for (const [i, filters] of combos.entries()) expect(pages[i]!.body.toString('utf8'), queryOf(filters)).toBe((await expected(filters)).text);
        expect(statements.filter((sql) => /p\.search_text from products p/.test(sql))).toHaveLength(1);

        // Organization-style (no space given): a known total, then concurrent pages read one list.
        const visible = { sql: 'p.space_id = ?', params: [spaceId] };
        await service.page(app.em(), visible, { include_archived: true }, { countScope: 'burst' });
        const skips = [0, 10, 20, 30, 40, 50];
        const burst = await statementsOf(() => Promise.all(skips.map((skip) => service.page(app.em(), visible, { include_archived: true, skip, limit: 10 }, { countScope: 'burst' }))));
        for (const [i, skip] of skips.entries()) expect(burst.result[i]!.body.toString('utf8')).toBe((await expected({ include_archived: true, skip, limit: 10 })).text);
        expect(burst.statements.filter((sql) => /^select p\.id, p\.space_id from products p/.test(sql))).toHaveLength(1);
      });

      it('never serves a rendered summary after what it shows changed: the product, its versions and artifacts, its space', async () => {
        const service = new ModelService(app.orm, new ListingCache(1024 * 1024, { pages: false }));
        const user = async () => authenticate(app.em(), owner.key);
        const exact = async (filters: ModelFilters, where: string) => {
          const page = await service.listSpace(app.em(), await user(), SPACE, filters);
          expect(page.body.toString('utf8'), where).toBe((await expected(filters)).text);
          return JSON.parse(page.body.toString('utf8')) as ModelSummary[];
        };
        const [first] = await exact({ limit: 5 }, 'rendered');
        const em = app.em();
        // Plain SQL, as the admin CLI or an operator might: the database's triggers still bump the version.
        expect(await em.nativeUpdate(Product, { id: first!.id }, { description: 'changed under the cache' })).toBe(1);
        expect((await exact({ limit: 5, skip: 0 }, 'product row changed')).find((m) => m.id === first!.id)?.description).toBe('changed under the cache');
        const v = em.create(ProductVersion, { product: first!.id, version_number: 99, version_type: 'major', is_current: false, created_at: new Date(), updated_at: new Date() } as never);
        await em.flush();
        const after = (await exact({ limit: 5 }, 'version added')).find((m) => m.id === first!.id)!;
        expect(after.version_count).toBe(first!.version_count + 1);
        await app.em().nativeDelete(ProductVersion, { id: (v as ProductVersion).id });
        await exact({ limit: 5 }, 'version removed');
        const space = await app.em().findOneOrFail(Space, { slug: SPACE });
        const name = space.name;
        expect(await app.em().nativeUpdate(Space, { id: space.id }, { name: 'Renamed Space' })).toBe(1);
        try {
          expect((await exact({ limit: 5 }, 'space renamed'))[0]!.space_name).toBe('Renamed Space');
        } finally {
          await app.em().nativeUpdate(Space, { id: space.id }, { name });
        }
        expect((await exact({ limit: 5 }, 'space renamed back'))[0]!.space_name).toBe(name);
      });

      it('follows creating, archiving, a new version and an artifact: bodies and X-Total-Count change with them', async () => {
        await expectAllPagesExact();
        const before = Number((await list('')).headers.get('x-total-count'));

        const created = expectOk<ModelSummary>(await app.request('POST', spaceModels(SPACE), { key: owner.key, body: { name: 'Churn Newcomer' } }), 201);
        await expectAllPagesExact();
        expect(Number((await list('?skip=50')).headers.get('x-total-count'))).toBe(before + 1);

        expectOk(await app.request('PATCH', model(created.id), { key: owner.key, body: { is_archived: true } }));
        await expectAllPagesExact();
        expect(Number((await list('?skip=50')).headers.get('x-total-count'))).toBe(before);
        expect((await list('?include_archived=true&skip=40')).headers.get('x-total-count')).toBe((await expected({ include_archived: true })).total);

        const listed = JSON.parse((await list('?limit=1')).text) as ModelSummary[];
        expectOk(await app.request('POST', versions(listed[0]!.id), { key: owner.key, body: { version_type: 'major' } }), 201);
        await expectAllPagesExact();
        const after = JSON.parse((await list('?limit=1')).text) as ModelSummary[];
        expect(after[0]!.id).toBe(listed[0]!.id);
        expect(after[0]!.version_count).toBe(listed[0]!.version_count + 1);

        const em = app.em();
        em.create(ModelArtifact, {
          product: listed[0]!.id,
          artifact_kind: 'weights',
          file_name: 'fresh.safetensors',
          content_type: 'application/octet-stream',
          size_bytes: 3,
          sha256: 'c'.repeat(64),
          storage_backend: 'fs',
          storage_key: `artifacts/fresh-${target.dialect}`,
          storage_uri: 'file:///fresh',
          status: 'available',
          is_current: false,
          uploaded_at: new Date(),
        } as never);
        await em.flush();
        await expectAllPagesExact();
        expect((JSON.parse((await list('?limit=1')).text) as ModelSummary[])[0]!.artifact_count).toBe(after[0]!.artifact_count + 1);

        // A change made with SQL behind the server: a product moves into the space.
        const outside = await app.em().findOneOrFail(Product, { slug: 'm-24' });
        await app.em().nativeUpdate(Product, { id: outside.id }, { space: spaceId, is_archived: false });
        await expectAllPagesExact();
        expect(Number((await list('?skip=100')).headers.get('x-total-count'))).toBe(before + 1);
      });
    });
  });
}
