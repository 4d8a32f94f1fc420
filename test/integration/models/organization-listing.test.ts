/**
 * The organization listing's own path (requireOrganizationListing: one statement for the caller's
 * scope, visibility as SQL, the total cached per organization listing_version and caller) against
 * the general path it replaced, kept as the reference: requireOrganizationAccess +
 * visibleProductsInOrgFilter (the ORM reads every accessible space id and individually reachable
 * product id) rendered by ModelService.page through summaryPage. Same bytes, same X-Total-Count,
 * X-Page and X-Has-More, for every filter and for callers with partial access; and changes to
 * products, memberships and grants show at once. On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrganizationMembership, Product, ProductGrant, SpaceMembership } from '../../../server/src/persistence/entities.ts';
import { ModelService, type ModelFilters } from '../../../server/src/services/models.ts';
import { requireOrganizationAccess, visibleProductsInOrgFilter } from '../../../server/src/access/policy.ts';
import { authenticate } from '../../../server/src/access/api-keys.ts';
import { ListingCache } from '../../../server/src/services/listing-cache.ts';
import { databaseTargets, startTestApp, type TestApp, type TestUser } from '../../support/app.ts';
import { expectOk, expectProblem, model, orgModels, pageHeaders, spaceModels, versions, type ModelSummary } from './helpers.ts';

const ORG = 'ol-org';
const OTHER_ORG = 'ol-other';
const SPACES = ['ol-s1', 'ol-s2', 'ol-s3', 'ol-s4'];

const FAMILIES = ['traditional_ml', 'genai', 'embedding_model', null] as const;
const TYPES = ['ML Model', 'AI System', 'AI App'] as const;
const STATUSES = ['development', 'staging', 'production', 'retired'] as const;
const TASKS = ['classification', 'regression', 'llm'] as const;
const RISKS = ['minimal', 'limited', 'high', null] as const;

/** Query string → the filters the route hands the service for it. */
const QUERIES: [string, ModelFilters][] = [
  ['', {}],
  ['?q=alpha', { q: 'alpha' }],
  ['?q=ZZZ-nothing', { q: 'ZZZ-nothing' }],
  ['?q=%25', { q: '%' }],
  ['?model_family=genai', { model_family: 'genai' }],
  ['?types=ML%20Model&types=AI%20App', { types: ['ML Model', 'AI App'] }],
  ['?deployment_status=production', { deployment_status: 'production' }],
  ['?model_task_type=classification', { model_task_type: 'classification' }],
  ['?risk_classification=high', { risk_classification: 'high' }],
  ['?include_archived=true', { include_archived: true }],
  ['?include_archived=true&model_family=traditional_ml&deployment_status=staging', { include_archived: true, model_family: 'traditional_ml', deployment_status: 'staging' }],
  ['?model_family=genai&deployment_status=production', { model_family: 'genai', deployment_status: 'production' }],
  ['?q=model&types=AI%20System', { q: 'model', types: ['AI System'] }],
  ['?skip=3&limit=4', { skip: 3, limit: 4 }],
  ['?skip=5&limit=5&include_archived=true', { skip: 5, limit: 5, include_archived: true }],
  ['?skip=2&limit=2&q=beta', { skip: 2, limit: 2, q: 'beta' }],
  ['?skip=1000', { skip: 1000 }],
  ['?skip=1000&model_family=genai', { skip: 1000, model_family: 'genai' }],
  ['?limit=1', { limit: 1 }],
];

const targets = await databaseTargets();

for (const target of targets) {
  describe.skipIf(!target.create)(`organization listing on ${target.dialect}`, () => {
    let app: TestApp;
    const users: Record<string, TestUser> = {};
    /** The general path, with no cache of any kind. */
    let reference: ModelService;

    const create = async (key: string, space: string, body: Record<string, unknown>) =>
      expectOk<ModelSummary>(
        await app.request('POST', spaceModels(space), { key, body: Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null)) }),
        201,
      );

    /** The reference page for `user`, rendered like the route would answer it (or its 404 status). */
    async function referencePage(user: TestUser, filters: ModelFilters): Promise<{ status: 200; text: string; headers: Record<string, string> } | { status: 404 }> {
      const em = app.em();
      let organization;
      try {
        ({ organization } = await requireOrganizationAccess(em, user, ORG));
      } catch (err) {
        expect((err as { status?: number }).status).toBe(404);
        return { status: 404 };
      }
      const visible = await visibleProductsInOrgFilter(em, user, organization);
      const page = await reference.page(em, visible, filters);
      return {
        status: 200,
        text: page.body.toString('utf8'),
        headers: {
          'x-total-count': String(page.total),
          'x-page': String(Math.floor(page.skip / page.limit) + 1),
          'x-has-more': String(page.skip + page.count < page.total),
        },
      };
    }

    /** The API's answer equals the reference's: bytes and paging headers (or both 404). Returns the parsed page. */
    async function expectSame(user: TestUser, query: string, filters: ModelFilters): Promise<{ items: ModelSummary[]; total: number }> {
      const res = await app.request<ModelSummary[]>('GET', orgModels(ORG, query), { key: user.key });
      const ref = await referencePage(user, filters);
      const where = `${user.email} ${query || '(plain)'}`;
      if (ref.status === 404) {
        expectProblem(res, 404, 'not_found');
        return { items: [], total: 0 };
      }
      expect(res.status, `${where}: ${res.text.slice(0, 300)}`).toBe(200);
      expect(res.text, where).toBe(ref.text);
      for (const [name, value] of Object.entries(ref.headers)) expect(res.headers.get(name), `${where} ${name}`).toBe(value);
      return { items: res.body, total: pageHeaders(res).total };
    }

    beforeAll(async () => {
      app = await startTestApp(target);
      reference = new ModelService(app.orm, null);
      users.owner = await app.bootstrap(ORG, SPACES[0]!, 'owner@ol.test');
      for (const s of SPACES.slice(1)) await app.createSpace(ORG, s);
      users.otherOwner = await app.bootstrap(OTHER_ORG, 'ol-other-space', 'other-owner@ol.test');

      users.admin = await app.createUser('admin@ol.test');
      await app.addOrgMember(users.admin!.email, ORG, 'admin');
      // Plain member: viewer in s1, editor in s2.
      users.member = await app.createUser('member@ol.test');
      await app.addSpaceMember(users.member!.email, 'ol-s1', 'viewer');
      await app.addSpaceMember(users.member!.email, 'ol-s2', 'editor');
      // A space role in s3 and no organization membership at all.
      users.spaceOnly = await app.createUser('space-only@ol.test');
      await app.addSpaceMember(users.spaceOnly!.email, 'ol-s3', 'viewer');
      await app.em().nativeDelete(OrganizationMembership, { user: users.spaceOnly!.id });
      // Organization member with no space role, one grant in s4 (and one in the other organization).
      users.granted = await app.createUser('granted@ol.test');
      await app.addOrgMember(users.granted!.email, ORG, 'member');
      // A grant, no organization membership and no space role: no access to the organization.
      users.grantOnly = await app.createUser('grant-only@ol.test');
      // Created a model in s3 as an editor, then lost the role; keeps viewer in s1.
      users.creator = await app.createUser('creator@ol.test');
      await app.addSpaceMember(users.creator!.email, 'ol-s3', 'editor');
      await app.addSpaceMember(users.creator!.email, 'ol-s1', 'viewer');
      // Member of the organization, nothing else.
      users.bare = await app.createUser('bare@ol.test');
      await app.addOrgMember(users.bare!.email, ORG, 'member');
      users.outsider = await app.createUser('outsider@ol.test');

      // 40 models over the four spaces (and 3 in the other organization) with every attribute varied.
      const made: ModelSummary[] = [];
      for (let i = 0; i < 40; i++) {
        made.push(
          await create(users.owner!.key, SPACES[i % 4]!, {
            name: `${['Alpha', 'Beta', 'Gamma', 'Delta', 'Epsilon'][i % 5]} model ${i}`,
            model_family: FAMILIES[i % 4],
            product_type: TYPES[i % 3],
            deployment_status: STATUSES[Math.floor(i / 4) % 4],
            model_task_type: TASKS[i % 3],
            risk_classification: RISKS[Math.floor(i / 3) % 4],
          }),
        );
      }
      for (let i = 0; i < 3; i++) await create(users.otherOwner!.key, 'ol-other-space', { name: `Alpha outside ${i}`, model_family: 'genai' });
      // Archived ones, a version on some, and ties on updated_at (the order falls back to the id).
      for (const m of made.filter((_, i) => i % 7 === 3)) expectOk(await app.request('PATCH', model(m.id), { key: users.owner!.key, body: { is_archived: true } }));
      for (const m of made.filter((_, i) => i % 5 === 1)) expectOk(await app.request('POST', versions(m.id), { key: users.owner!.key, body: { version_type: 'major' } }), 201);
      const tie = new Date('2026-01-02T03:04:05.000Z');
      await app.em().nativeUpdate(Product, { id: { $in: made.slice(10, 16).map((m) => m.id) } }, { updated_at: tie });

      const byCreator = await create(users.creator!.key, 'ol-s3', { name: 'Alpha by the creator', model_family: 'genai' });
      await app.em().nativeDelete(SpaceMembership, { user: users.creator!.id, space: { slug: 'ol-s3' } });
      await create(users.member!.key, 'ol-s2', { name: 'Beta by the member', deployment_status: 'production' });
      const otherOrgModel = expectOk<ModelSummary[]>(await app.request('GET', orgModels(OTHER_ORG), { key: users.otherOwner!.key }))[0]!;
      await app.grant(users.granted!.email, made[3]!.id, 'view'); // s4, archived
      await app.grant(users.granted!.email, made[7]!.id, 'edit'); // s4
      await app.grant(users.granted!.email, otherOrgModel.id, 'view');
      await app.grant(users.grantOnly!.email, made[7]!.id, 'view');
      await app.grant(users.member!.email, made[1]!.id, 'view'); // s2: already visible through the space
      expect(byCreator.space_slug).toBe('ol-s3');
    });
    afterAll(() => app?.close());

    const callers = ['owner', 'admin', 'member', 'spaceOnly', 'granted', 'grantOnly', 'creator', 'bare', 'outsider', 'otherOwner'];

    for (const caller of callers) {
      it(`${caller}: every filter, skip and limit give the reference's bytes and headers (three times: counted, the match list read, from the list)`, async () => {
        for (const [query, filters] of QUERIES) {
          await expectSame(users[caller]!, query, filters);
          await expectSame(users[caller]!, query, filters);
          await expectSame(users[caller]!, query, filters);
        }
      });
    }

    it('a listing asked before is served from its match list, with no statement reading a product; a space renamed behind the server shows at once', async () => {
      const service = new ModelService(app.orm, new ListingCache(1024 * 1024));
      const knex = app.orm.em.getKnex();
      const listed = async (caller: string, filters: ModelFilters, where: string) => {
        const statements: string[] = [];
        const record = (q: { sql: string }) => statements.push(q.sql);
        knex.on('query', record);
        let page;
        try {
          page = await service.listOrganization(app.em(), await authenticate(app.em(), users[caller]!.key), ORG, filters);
        } finally {
          knex.removeListener('query', record);
        }
        const ref = await referencePage(users[caller]!, filters);
        expect(ref.status, where).toBe(200);
        if (ref.status !== 200) throw new Error('unreachable');
        expect(page.body.toString('utf8'), where).toBe(ref.text);
        expect(String(page.total), where).toBe(ref.headers['x-total-count']);
        return { items: JSON.parse(page.body.toString('utf8')) as ModelSummary[], readsProducts: statements.some((sql) => /from products p\b/.test(sql)) };
      };
      for (const caller of ['owner', 'member', 'granted', 'creator']) {
        for (const [query, filters] of QUERIES) {
          const where = `${caller} ${query || '(plain)'}`;
          await listed(caller, filters, `${where}, counted`);
          await listed(caller, filters, `${where}, list read`);
          const third = await listed(caller, filters, `${where}, from the list`);
          // Past the end of the known total nothing is read either way.
          expect(third.readsProducts, where).toBe(false);
        }
      }
      const shown = (await listed('owner', { limit: 1000 }, 'before the rename')).items;
      expect((await listed('owner', { limit: 1000 }, 'before the rename, from the list')).readsProducts).toBe(false);
      const renamed = shown.find((m) => m.space_slug === 'ol-s2')!;
      await app.em().getConnection().execute("update spaces set name = 'Renamed S2' where slug = 'ol-s2'");
      try {
        const after = (await listed('owner', { limit: 1000 }, 'renamed')).items;
        expect(after.find((m) => m.id === renamed.id)!.space_name).toBe('Renamed S2');
      } finally {
        await app.em().getConnection().execute('update spaces set name = ? where slug = ?', [renamed.space_name, 'ol-s2']);
      }
      expect((await listed('owner', { limit: 1000 }, 'renamed back')).items.find((m) => m.id === renamed.id)!.space_name).toBe(renamed.space_name);
    });

    it('what each caller sees, as the access rules say', async () => {
      const all = async (caller: string) => (await expectSame(users[caller]!, '?limit=1000&include_archived=true', { limit: 1000, include_archived: true })).items;
      const spacesOf = (items: ModelSummary[]) => [...new Set(items.map((m) => m.space_slug))].sort();
      expect((await all('owner')).length).toBe(42);
      expect(spacesOf(await all('owner'))).toEqual(SPACES);
      expect((await all('admin')).length).toBe(42);
      expect(spacesOf(await all('member'))).toEqual(['ol-s1', 'ol-s2']);
      expect(spacesOf(await all('spaceOnly'))).toEqual(['ol-s3']);
      expect((await all('granted')).map((m) => m.name).sort()).toEqual(['Delta model 3', 'Gamma model 7']);
      expect((await all('creator')).filter((m) => m.space_slug !== 'ol-s1').map((m) => m.name)).toEqual(['Alpha by the creator']);
      expect(await all('bare')).toEqual([]);
      for (const caller of ['grantOnly', 'outsider', 'otherOwner']) {
        expectProblem(await app.request('GET', orgModels(ORG), { key: users[caller]!.key }), 404, 'not_found');
      }
      expectProblem(await app.request('GET', orgModels('ol-no-such-org'), { key: users.owner!.key }), 404, 'not_found');
    });

    it("a space's slug, name or organization changing (plain SQL) bumps its organizations' listing_version; other space columns do not", async () => {
      const conn = app.em().getConnection();
      const version = async (slug: string) =>
        Number((await conn.execute<{ listing_version: number | string }[]>('select listing_version from organizations where slug = ?', [slug]))[0]!.listing_version);
      const idOf = async (slug: string) => (await conn.execute<{ id: string }[]>('select id from organizations where slug = ?', [slug]))[0]!.id;
      const [mine, other] = [await idOf(ORG), await idOf(OTHER_ORG)];
      let before = [await version(ORG), await version(OTHER_ORG)];
      const expectBumped = async (ours: boolean, theirs: boolean, what: string) => {
        const now = [await version(ORG), await version(OTHER_ORG)];
        expect(now[0]! > before[0]!, `${what}: ${ORG}`).toBe(ours);
        expect(now[1]! > before[1]!, `${what}: ${OTHER_ORG}`).toBe(theirs);
        before = now;
      };
      const name = (await conn.execute<{ name: string }[]>("select name from spaces where slug = 'ol-s4'"))[0]!.name;
      await conn.execute("update spaces set product_limit = 1000 where slug = 'ol-s4'");
      await expectBumped(false, false, 'product_limit');
      await conn.execute("update spaces set product_limit = null where slug = 'ol-s4'");
      await conn.execute("update spaces set slug = 'ol-s4-moved' where slug = 'ol-s4'");
      await expectBumped(true, false, 'slug');
      await conn.execute("update spaces set name = 'Space Four' where slug = 'ol-s4-moved'");
      await expectBumped(true, false, 'name');
      await conn.execute("update spaces set organization_id = ? where slug = 'ol-s4-moved'", [other]);
      await expectBumped(true, true, 'moved to the other organization');
      await conn.execute("update spaces set organization_id = ?, slug = 'ol-s4', name = ? where slug = 'ol-s4-moved'", [mine, name]);
      await expectBumped(true, true, 'moved back');
      await expectSame(users.owner!, '?limit=1000', { limit: 1000 });
    });

    it('writes, memberships and grants show at once: no stale page or total', async () => {
      const plain = async (caller: string, query = '?limit=1000', filters: ModelFilters = { limit: 1000 }) => expectSame(users[caller]!, query, filters);
      const before = await plain('owner');
      const beforeGenai = await plain('owner', '?model_family=genai', { model_family: 'genai' });

      // A new model, through the API.
      const fresh = await create(users.owner!.key, 'ol-s4', { name: 'Zeta fresh', model_family: 'genai' });
      const afterCreate = await plain('owner');
      expect(afterCreate.total).toBe(before.total + 1);
      expect(afterCreate.items[0]!.id).toBe(fresh.id);
      expect((await plain('owner', '?model_family=genai', { model_family: 'genai' })).total).toBe(beforeGenai.total + 1);

      // A change behind the server (SQL): the filtered total follows.
      await app.em().nativeUpdate(Product, { id: fresh.id }, { model_family: 'agent' });
      expect((await plain('owner', '?model_family=genai', { model_family: 'genai' })).total).toBe(beforeGenai.total);

      // Archived through the API: gone from the default listing.
      expectOk(await app.request('PATCH', model(fresh.id), { key: users.owner!.key, body: { is_archived: true } }));
      expect((await plain('owner')).total).toBe(before.total);

      // The bare member gains a space role, then loses it.
      expect((await plain('bare')).total).toBe(0);
      await app.addSpaceMember(users.bare!.email, 'ol-s4', 'viewer');
      const withRole = await plain('bare');
      expect(withRole.total).toBeGreaterThan(0);
      expect(new Set(withRole.items.map((m) => m.space_slug))).toEqual(new Set(['ol-s4']));
      await app.em().nativeDelete(SpaceMembership, { user: users.bare!.id });
      expect((await plain('bare')).total).toBe(0);

      // A grant, then its removal.
      const target = before.items.find((m) => m.space_slug === 'ol-s3')!;
      await app.grant(users.bare!.email, target.id, 'view');
      expect((await plain('bare')).items.map((m) => m.id)).toEqual([target.id]);
      await app.em().nativeDelete(ProductGrant, { user: users.bare!.id });
      expect((await plain('bare')).total).toBe(0);

      // Promoted to admin: everything; back to member: nothing.
      await app.addOrgMember(users.bare!.email, ORG, 'admin');
      expect((await plain('bare')).total).toBe(before.total);
      await app.addOrgMember(users.bare!.email, ORG, 'member');
      expect((await plain('bare')).total).toBe(0);

      // Leaving the organization: 404.
      await app.em().nativeDelete(OrganizationMembership, { user: users.bare!.id });
      expectProblem(await app.request('GET', orgModels(ORG), { key: users.bare!.key }), 404, 'not_found');
      await plain('bare');

      // A product moved to another space behind the server carries its new organization.
      await app.em().nativeUpdate(Product, { id: target.id }, { space: (await app.em().findOneOrFail(Product, { name: 'Alpha outside 0' }, { populate: ['space'] })).space.id });
      const moved = await app.em().getConnection().execute<{ organization_id: string }[]>('select organization_id from products where id = ?', [target.id]);
      const otherOrgId = (await app.em().getConnection().execute<{ id: string }[]>('select id from organizations where slug = ?', [OTHER_ORG]))[0]!.id;
      expect(moved[0]!.organization_id).toBe(otherOrgId);
      expect((await plain('owner')).items.map((m) => m.id)).not.toContain(target.id);
      expect((await plain('owner')).total).toBe(before.total - 1);
    });
  });
}
