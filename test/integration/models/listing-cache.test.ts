/**
 * The space listing's cache of rendered pages (services/listing-cache.ts): a page is reused only
 * while the space's listing_version is unchanged, whoever changes the data (this server, another
 * process, an admin with SQL), and a cache hit costs one SQL statement (authentication, which
 * reads the space, its roles and its listing_version). On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelArtifact, Product, ProductVersion, User } from '../../../server/src/persistence/entities.ts';
import { ModelService } from '../../../server/src/services/models.ts';
import { ListingCache } from '../../../server/src/services/listing-cache.ts';
import { authenticate } from '../../../server/src/access/api-keys.ts';
import { databaseTargets, startTestApp, type TestApp, type TestUser } from '../../support/app.ts';
import { expectOk, model, pageHeaders, spaceModels, versions, type ModelSummary } from './helpers.ts';

const ORG = 'cache-org';
const SPACE = 'cache-space';
const OTHER = 'cache-other';

const targets = await databaseTargets();

for (const target of targets) {
  describe.skipIf(!target.create)(`space listing cache on ${target.dialect}`, () => {
    let app: TestApp;
    let owner: TestUser;
    let viewer: TestUser;
    const list = async (query = '', key = owner.key) => app.request<ModelSummary[]>('GET', spaceModels(SPACE, query), { key });
    const create = async (name: string, space = SPACE) =>
      expectOk<ModelSummary>(await app.request('POST', spaceModels(space), { key: owner.key, body: { name } }), 201);

    beforeAll(async () => {
      app = await startTestApp(target);
      owner = await app.bootstrap(ORG, SPACE, 'owner@cache.test');
      await app.createSpace(ORG, OTHER);
      viewer = await app.createUser('viewer@cache.test');
      await app.addSpaceMember(viewer.email, SPACE, 'viewer');
      for (const name of ['Alpha', 'Beta', 'Gamma']) await create(name);
    });
    afterAll(() => app?.close());

    describe('through the API', () => {
      it('a change made behind the server (another process, SQL) shows in the next listing', async () => {
        const first = expectOk<ModelSummary[]>(await list());
        expect(expectOk<ModelSummary[]>(await list())).toEqual(first); // served again, unchanged
        const target = first.find((m) => m.name === 'Beta')!;
        await app.em().nativeUpdate(Product, { id: target.id }, { description: 'changed behind the server' });
        const after = expectOk<ModelSummary[]>(await list());
        expect(after.find((m) => m.id === target.id)!.description).toBe('changed behind the server');
      });

      it('creating, patching, archiving and adding a version through the API each show at once', async () => {
        expectOk(await list());
        const delta = await create('Delta');
        expect(expectOk<ModelSummary[]>(await list()).map((m) => m.id)).toContain(delta.id);

        expectOk(await app.request('PATCH', model(delta.id), { key: owner.key, body: { framework: 'JAX' } }));
        expect(expectOk<ModelSummary[]>(await list()).find((m) => m.id === delta.id)!.framework).toBe('JAX');

        expectOk(await app.request('POST', versions(delta.id), { key: owner.key, body: { version_type: 'major' } }), 201);
        const withVersion = expectOk<ModelSummary[]>(await list()).find((m) => m.id === delta.id)!;
        expect(withVersion.version_count).toBe(1);
        expect(withVersion.current_version_type).toBe('major');

        expectOk(await app.request('PATCH', model(delta.id), { key: owner.key, body: { is_archived: true } }));
        expect(expectOk<ModelSummary[]>(await list()).map((m) => m.id)).not.toContain(delta.id);
        expect(expectOk<ModelSummary[]>(await list('?include_archived=true')).map((m) => m.id)).toContain(delta.id);
      });

      it('an artifact becoming available, or deleted, behind the server shows at once', async () => {
        const epsilon = await create('Epsilon');
        expect(expectOk<ModelSummary[]>(await list()).find((m) => m.id === epsilon.id)!.artifact_count).toBe(0);
        const em = app.em();
        const artifact = em.create(ModelArtifact, {
          product: em.getReference(Product, epsilon.id),
          artifact_kind: 'weights',
          file_name: 'model.safetensors',
          content_type: 'application/octet-stream',
          size_bytes: 3,
          sha256: 'a'.repeat(64),
          storage_backend: 'fs',
          storage_key: 'artifacts/cache-test',
          storage_uri: 'file:///cache-test',
          status: 'available',
          is_current: true,
          uploaded_by: em.getReference(User, owner.id),
          uploaded_at: new Date(),
        });
        await em.flush();
        const listed = expectOk<ModelSummary[]>(await list()).find((m) => m.id === epsilon.id)!;
        expect(listed).toMatchObject({ artifact_count: 1, current_artifact_id: artifact.id, current_artifact_model_format: 'safetensors' });
        await app.em().nativeUpdate(ModelArtifact, { id: artifact.id }, { status: 'deleted', is_current: false });
        expect(expectOk<ModelSummary[]>(await list()).find((m) => m.id === epsilon.id)).toMatchObject({
          artifact_count: 0,
          current_artifact_id: null,
        });
      });

      it('a change in another space leaves the listing as it was, and viewers see the same pages', async () => {
        const before = expectOk<ModelSummary[]>(await list());
        await create('Elsewhere', OTHER);
        expect(expectOk<ModelSummary[]>(await list())).toEqual(before);
        expect(expectOk<ModelSummary[]>(await list('', viewer.key))).toEqual(before);
      });

      it('access is checked on every request: a revoked key or a removed role ends access to a cached page', async () => {
        const key = await app.createApiKey(viewer.email);
        expectOk(await list('', key.key));
        await app.revokeApiKey(key.id);
        expect((await list('', key.key)).status).toBe(401);
        const outsider = await app.createUser('outsider@cache.test');
        expect((await list('', outsider.key)).status).toBe(404);
      });

      it('paging headers come with the cached page', async () => {
        const all = expectOk<ModelSummary[]>(await list());
        const first = await list('?limit=1&skip=1');
        const again = await list('?limit=1&skip=1');
        expect(again.text).toBe(first.text);
        expect(pageHeaders(again)).toEqual({ total: all.length, page: 2, hasMore: all.length > 2 });
        expect(pageHeaders(again)).toEqual(pageHeaders(first));
      });

      it('a cached listing costs one SQL statement: authentication reads the space with the key', async () => {
        expectOk(await list('?limit=2'));
        const statements: string[] = [];
        const knex = app.orm.em.getKnex();
        const record = (q: { sql: string }) => statements.push(q.sql);
        knex.on('query', record);
        try {
          expectOk(await list('?limit=2'));
        } finally {
          knex.removeListener('query', record);
        }
        expect(statements, statements.join("\n")).toHaveLength(1);
        expect(statements[0]).toMatch(/from api_keys k join users u .* left join spaces s on s\.slug = (\?|'cache-space')/);
      });
    });

    describe('the service', () => {
      it('reuses a page only for the same space, version and filters (equivalent `types` share one)', async () => {
        // Pages alone: no summaries or match lists beside them in the count.
        const cache = new ListingCache(1024 * 1024, { rows: false, listRows: 0 });
        const service = new ModelService(app.orm, cache);
        const user = async () => authenticate(app.em(), owner.key);
        const filters = { types: ['ML Model', 'AI System', 'ML Model'] as ('ML Model' | 'AI System')[] };
        const alpha = expectOk<ModelSummary[]>(await list('?q=alpha'))[0]!;
        const version = expectOk<{ id: string }>(
          await app.request('POST', versions(alpha.id), { key: owner.key, body: { version_type: 'minor' } }),
          201,
        );

        const a = await service.listSpace(app.em(), await user(), SPACE, filters);
        const b = await service.listSpace(app.em(), await user(), SPACE, { types: ['AI System', 'ML Model'] });
        expect(b).toBe(a); // the same rendered object: from the cache
        expect(cache.size).toBe(1);

        const c = await service.listSpace(app.em(), await user(), SPACE, { ...filters, limit: 1 });
        expect(c).not.toBe(a);
        expect(cache.size).toBe(2);

        expect(await app.em().nativeUpdate(ProductVersion, { id: version.id }, { notes: 'touched' })).toBe(1);
        const d = await service.listSpace(app.em(), await user(), SPACE, filters);
        expect(d).not.toBe(a);
        expect(d.body.equals(a.body)).toBe(true); // version notes are not shown: same content, new version
      });

      it('keeps within its byte budget', async () => {
        const cache = new ListingCache(4096, { rows: false });
        const service = new ModelService(app.orm, cache);
        const user = await authenticate(app.em(), owner.key);
        for (let limit = 1; limit <= 20; limit++) await service.listSpace(app.em(), user, SPACE, { limit, include_archived: true });
        expect(cache.size).toBeGreaterThan(0);
        expect(cache.size).toBeLessThan(20);
      });

      it('without a cache, every call renders afresh', async () => {
        const service = new ModelService(app.orm, null);
        const user = await authenticate(app.em(), owner.key);
        const a = await service.listSpace(app.em(), user, SPACE, {});
        const b = await service.listSpace(app.em(), user, SPACE, {});
        expect(b).not.toBe(a);
        expect(b).toEqual(a);
      });
    });
  });
}
