/**
 * The access model (docs/architecture.md, "Access model"), as a matrix: every kind of caller × every operation on model
 * records, with the 404-vs-403 rule (who cannot see a thing gets 404; who sees it but lacks
 * the level gets 403), and the rows a refused request must leave alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, Product, ProductVersion, Space } from '../../../server/src/persistence/entities.ts';
import { databaseTargets, startTestApp, type TestApp } from '../../support/app.ts';
import {
  expectOk,
  expectProblem,
  model,
  orgModels,
  pageHeaders,
  sortedIds,
  spaceModels,
  versions,
  type ModelSummary,
  type ModelVersion,
} from './helpers.ts';

const ORG = 'perm-org';
const SPACE = 'perm-a';
const SPACE_B = 'perm-b';

const ROLES = [
  'owner',
  'orgAdmin',
  'orgMember',
  'spaceAdmin',
  'editor',
  'viewer',
  'grantView',
  'grantEdit',
  'grantOnly',
  'creator',
  'outsider',
  'noKey',
  'badKey',
  'revokedKey',
] as const;
type Role = (typeof ROLES)[number];

const OPS = ['listSpace', 'listOrg', 'create', 'get', 'patch', 'archive', 'createVersion', 'listVersions'] as const;
type Op = (typeof OPS)[number];

const DESCRIBE: Record<Role, string> = {
  owner: 'organization owner',
  orgAdmin: 'organization admin',
  orgMember: 'organization member without a space role',
  spaceAdmin: 'space admin',
  editor: 'space editor',
  viewer: 'space viewer (also granted view on a product in another space)',
  grantView: 'organization member with a view grant on the product',
  grantEdit: 'organization member with an edit grant on the product',
  grantOnly: 'user outside the organization with a view grant on the product',
  creator: "the product's creator (an editor since demoted to viewer)",
  outsider: "another organization's owner",
  noKey: 'no API key',
  badKey: 'an unknown API key',
  revokedKey: 'a revoked API key',
};

// Expected status per caller and operation. The product operated on is P (made by the owner),
// except for `creator`, whose row is about the product they made.
const ALL_OK = { listSpace: 200, listOrg: 200, create: 201, get: 200, patch: 200, archive: 200, createVersion: 201, listVersions: 200 };
const ALL_401 = { listSpace: 401, listOrg: 401, create: 401, get: 401, patch: 401, archive: 401, createVersion: 401, listVersions: 401 };
const MATRIX: Record<Role, Record<Op, number>> = {
  owner: ALL_OK,
  orgAdmin: ALL_OK,
  orgMember: { listSpace: 403, listOrg: 200, create: 403, get: 404, patch: 404, archive: 404, createVersion: 404, listVersions: 404 },
  spaceAdmin: ALL_OK,
  editor: ALL_OK,
  viewer: { listSpace: 200, listOrg: 200, create: 403, get: 200, patch: 403, archive: 403, createVersion: 403, listVersions: 200 },
  grantView: { listSpace: 403, listOrg: 200, create: 403, get: 200, patch: 403, archive: 403, createVersion: 403, listVersions: 200 },
  grantEdit: { listSpace: 403, listOrg: 200, create: 403, get: 200, patch: 200, archive: 200, createVersion: 201, listVersions: 200 },
  grantOnly: { listSpace: 404, listOrg: 404, create: 404, get: 200, patch: 403, archive: 403, createVersion: 403, listVersions: 200 },
  creator: { listSpace: 200, listOrg: 200, create: 403, get: 200, patch: 200, archive: 200, createVersion: 201, listVersions: 200 },
  outsider: { listSpace: 404, listOrg: 404, create: 404, get: 404, patch: 404, archive: 404, createVersion: 404, listVersions: 404 },
  noKey: ALL_401,
  badKey: ALL_401,
  revokedKey: ALL_401,
};

const targets = await databaseTargets();

for (const target of targets) {
  describe.skipIf(!target.create)(`permissions on ${target.dialect}`, () => {
    let app: TestApp;
    const keys = {} as Record<Role, string | undefined>;
    const userIds = {} as Record<Role, string>;
    let productP: ModelSummary;
    let productC: ModelSummary; // made by `creator`
    let productQ: ModelSummary; // in the organization's other space

    const as = (role: Role) => ({ key: keys[role] });
    const subject = (role: Role) => (role === 'creator' ? productC : productP);

    /** Non-archived products of the given spaces, plus the given extra ids. */
    async function productIds(spaceSlugs: string[], extra: string[] = []): Promise<string[]> {
      const em = app.em();
      const spaces = await em.find(Space, { slug: { $in: spaceSlugs } });
      const rows = await em.find(Product, { space: { $in: spaces.map((s) => s.id) }, is_archived: false });
      return [...new Set([...rows.map((r) => r.id), ...extra])].sort();
    }

    /** What the organization listing must show each caller who may use it. */
    async function expectedOrgListing(role: Role): Promise<string[]> {
      switch (role) {
        case 'owner':
        case 'orgAdmin':
          return productIds([SPACE, SPACE_B]);
        case 'spaceAdmin':
        case 'editor':
        case 'creator':
          return productIds([SPACE]);
        case 'viewer':
          return productIds([SPACE], [productQ.id]);
        case 'grantView':
        case 'grantEdit':
          return [productP.id];
        case 'orgMember':
          return [];
        default:
          throw new Error(`no listing for ${role}`);
      }
    }

    beforeAll(async () => {
      app = await startTestApp(target);
      const owner = await app.bootstrap(ORG, SPACE, 'owner@perm.test');
      keys.owner = owner.key;
      userIds.owner = owner.id;
      await app.createSpace(ORG, SPACE_B);
      const user = async (role: Role) => {
        const u = await app.createUser(`${role.toLowerCase()}@perm.test`);
        keys[role] = u.key;
        userIds[role] = u.id;
        return u.email;
      };
      await app.addOrgMember(await user('orgAdmin'), ORG, 'admin');
      await app.addOrgMember(await user('orgMember'), ORG, 'member');
      await app.addSpaceMember(await user('spaceAdmin'), SPACE, 'admin');
      await app.addSpaceMember(await user('editor'), SPACE, 'editor');
      await app.addSpaceMember(await user('viewer'), SPACE, 'viewer');
      const creatorEmail = await user('creator');
      await app.addSpaceMember(creatorEmail, SPACE, 'editor');
      const outsider = await app.bootstrap('perm-other-org', 'perm-other-space', 'outsider@perm.test');
      keys.outsider = outsider.key;
      userIds.outsider = outsider.id;
      keys.noKey = undefined;
      keys.badKey = 'mr_thisIsNotAKeyThisServerEverIssued0000000000';
      const revoked = await app.createApiKey('owner@perm.test');
      await app.revokeApiKey(revoked.id);
      keys.revokedKey = revoked.key;

      productP = expectOk(
        await app.request('POST', spaceModels(SPACE), { ...as('owner'), body: { name: 'Model P', model_family: 'genai' } }),
        201,
      );
      productC = expectOk(await app.request('POST', spaceModels(SPACE), { ...as('creator'), body: { name: 'Model C' } }), 201);
      productQ = expectOk(await app.request('POST', spaceModels(SPACE_B), { ...as('owner'), body: { name: 'Model Q' } }), 201);
      await app.addSpaceMember(creatorEmail, SPACE, 'viewer'); // demoted: only creatorship gives edit now

      for (const [role, access] of [
        ['grantView', 'view'],
        ['grantEdit', 'edit'],
      ] as const) {
        await app.addOrgMember(await user(role), ORG, 'member');
        await app.grant(`${role.toLowerCase()}@perm.test`, productP.id, access);
      }
      await app.grant(await user('grantOnly'), productP.id, 'view');
      await app.grant('viewer@perm.test', productQ.id, 'view');
    });
    afterAll(() => app?.close());

    const run: Record<Op, (role: Role, status: number) => Promise<void>> = {
      async listSpace(role, status) {
        const res = await app.request<ModelSummary[]>('GET', spaceModels(SPACE), as(role));
        if (status !== 200) return void expectProblem(res, status, codeFor(status));
        expect(sortedIds(expectOk(res))).toEqual(await productIds([SPACE]));
        expect(pageHeaders(res).total).toBe((await productIds([SPACE])).length);
      },
      async listOrg(role, status) {
        const res = await app.request<ModelSummary[]>('GET', orgModels(ORG), as(role));
        if (status !== 200) return void expectProblem(res, status, codeFor(status));
        const want = await expectedOrgListing(role);
        expect(sortedIds(expectOk(res))).toEqual(want);
        expect(pageHeaders(res)).toEqual({ total: want.length, page: 1, hasMore: false });
      },
      async create(role, status) {
        const before = await app.em().count(Product, {});
        const res = await app.request<ModelSummary>('POST', spaceModels(SPACE), { ...as(role), body: { name: `Made by ${role}` } });
        if (status !== 201) {
          expectProblem(res, status, codeFor(status));
          expect(await app.em().count(Product, {})).toBe(before);
          return;
        }
        const created = expectOk<ModelSummary>(res, 201);
        expect(created).toMatchObject({ name: `Made by ${role}`, space_slug: SPACE });
        const row = await app.em().findOneOrFail(Product, { id: created.id });
        expect(row.created_by?.id).toBe(userIds[role]);
      },
      async get(role, status) {
        const res = await app.request<ModelSummary>('GET', model(subject(role).id), as(role));
        if (status !== 200) return void expectProblem(res, status, codeFor(status));
        expect(expectOk<ModelSummary>(res).id).toBe(subject(role).id);
      },
      async patch(role, status) {
        const id = subject(role).id;
        const before = await app.em().findOneOrFail(Product, { id });
        const res = await app.request<ModelSummary>('PATCH', model(id), { ...as(role), body: { description: `edited by ${role}` } });
        if (status !== 200) {
          expectProblem(res, status, codeFor(status));
          const after = await app.em().findOneOrFail(Product, { id });
          expect(after.description ?? null).toBe(before.description ?? null);
          expect(after.updated_at.getTime()).toBe(before.updated_at.getTime());
          return;
        }
        expect(expectOk<ModelSummary>(res).description).toBe(`edited by ${role}`);
        expect((await app.em().findOneOrFail(Product, { id })).description).toBe(`edited by ${role}`);
      },
      async archive(role, status) {
        const id = subject(role).id;
        const res = await app.request<ModelSummary>('PATCH', model(id), { ...as(role), body: { is_archived: true } });
        if (status !== 200) {
          expectProblem(res, status, codeFor(status));
          expect((await app.em().findOneOrFail(Product, { id })).is_archived).toBe(false);
          return;
        }
        expect(expectOk<ModelSummary>(res).is_archived).toBe(true);
        expect((await app.em().findOneOrFail(Product, { id })).is_archived).toBe(true);
        const restored = await app.request<ModelSummary>('PATCH', model(id), { ...as(role), body: { is_archived: false } });
        expect(expectOk<ModelSummary>(restored).is_archived).toBe(false);
      },
      async createVersion(role, status) {
        const id = subject(role).id;
        const before = await app.em().count(ProductVersion, { product: id });
        const res = await app.request<ModelVersion>('POST', versions(id), { ...as(role), body: { notes: `by ${role}` } });
        if (status !== 201) {
          expectProblem(res, status, codeFor(status));
          expect(await app.em().count(ProductVersion, { product: id })).toBe(before);
          return;
        }
        const v = expectOk<ModelVersion>(res, 201);
        expect(v).toMatchObject({ product_id: id, version_number: before + 1, notes: `by ${role}` });
      },
      async listVersions(role, status) {
        const id = subject(role).id;
        const res = await app.request<ModelVersion[]>('GET', versions(id), as(role));
        if (status !== 200) return void expectProblem(res, status, codeFor(status));
        const list = expectOk<ModelVersion[]>(res);
        expect(list.length).toBe(await app.em().count(ProductVersion, { product: id }));
        expect(list.every((v) => v.product_id === id)).toBe(true);
      },
    };

    for (const role of ROLES) {
      describe(`${role}: ${DESCRIBE[role]}`, () => {
        for (const op of OPS) {
          const status = MATRIX[role][op];
          it(`${op} → ${status}`, () => run[op](role, status));
        }
      });
    }

    describe('around the matrix', () => {
      it("the creator's edit right covers only their own product", async () => {
        expectProblem(await app.request('PATCH', model(productP.id), { ...as('creator'), body: { description: 'x' } }), 403, 'forbidden');
        expectProblem(await app.request('POST', versions(productP.id), { ...as('creator'), body: {} }), 403, 'forbidden');
      });

      it('grants reach one product only: the granted user cannot see its neighbours', async () => {
        for (const role of ['grantView', 'grantEdit', 'grantOnly'] as const) {
          expectProblem(await app.request('GET', model(productC.id), as(role)), 404, 'not_found');
          expectProblem(await app.request('GET', model(productQ.id), as(role)), 404, 'not_found');
        }
        expectOk(await app.request('GET', model(productQ.id), as('viewer')));
        expectProblem(await app.request('PATCH', model(productQ.id), { ...as('viewer'), body: { name: 'no' } }), 403, 'forbidden');
        expectProblem(await app.request('GET', spaceModels(SPACE_B), as('viewer')), 403, 'forbidden');
      });

      it('space roles do not leak into the other space of the organization', async () => {
        for (const role of ['spaceAdmin', 'editor'] as const) {
          expectProblem(await app.request('GET', spaceModels(SPACE_B), as(role)), 403, 'forbidden');
          expectProblem(await app.request('POST', spaceModels(SPACE_B), { ...as(role), body: { name: 'nope' } }), 403, 'forbidden');
          expectProblem(await app.request('GET', model(productQ.id), as(role)), 404, 'not_found');
        }
        expectOk(await app.request('GET', spaceModels(SPACE_B), as('orgAdmin')));
      });

      it('the organization listing still takes filters for a limited caller', async () => {
        const res = await app.request<ModelSummary[]>('GET', orgModels(ORG, '?model_family=genai'), as('grantView'));
        expect(sortedIds(expectOk(res))).toEqual([productP.id]);
        const none = await app.request<ModelSummary[]>('GET', orgModels(ORG, '?model_family=agent'), as('grantView'));
        expect(expectOk(none)).toEqual([]);
        expect(pageHeaders(none)).toEqual({ total: 0, page: 1, hasMore: false });
      });

      it('a 404 for a hidden thing reads like the 404 for a missing one (no existence leak)', async () => {
        const hidden = await app.request('GET', model(productP.id), as('outsider'));
        const missing = await app.request('GET', model('00000000-0000-4000-8000-000000000000'), as('outsider'));
        const h = expectProblem(hidden, 404, 'not_found');
        const m = expectProblem(missing, 404, 'not_found');
        expect(h.detail.replace(productP.id, 'ID')).toBe(m.detail.replace('00000000-0000-4000-8000-000000000000', 'ID'));
        const hiddenSpace = expectProblem(await app.request('GET', spaceModels(SPACE), as('outsider')), 404);
        const missingSpace = expectProblem(await app.request('GET', spaceModels('no-such-space'), as('outsider')), 404);
        expect(hiddenSpace.detail.replace(SPACE, 'S')).toBe(missingSpace.detail.replace('no-such-space', 'S'));
        const hiddenOrg = expectProblem(await app.request('GET', orgModels(ORG), as('outsider')), 404);
        const missingOrg = expectProblem(await app.request('GET', orgModels('no-such-org'), as('outsider')), 404);
        expect(hiddenOrg.detail.replace(ORG, 'O')).toBe(missingOrg.detail.replace('no-such-org', 'O'));
      });

      it('unknown space, organization and product are 404 even for an owner', async () => {
        expectProblem(await app.request('GET', spaceModels('no-such-space'), as('owner')), 404, 'not_found');
        expectProblem(await app.request('POST', spaceModels('no-such-space'), { ...as('owner'), body: { name: 'x' } }), 404);
        expectProblem(await app.request('GET', orgModels('no-such-org'), as('owner')), 404, 'not_found');
        const ghost = '9b2f4c4e-1111-4222-8333-444455556666';
        for (const [method, path, body] of [
          ['GET', model(ghost), undefined],
          ['PATCH', model(ghost), { name: 'x' }],
          ['GET', versions(ghost), undefined],
          ['POST', versions(ghost), {}],
        ] as const) {
          expectProblem(await app.request(method, path, { ...as('owner'), body }), 404, 'not_found');
        }
      });

      it('401s carry WWW-Authenticate: Bearer and say why', async () => {
        for (const role of ['noKey', 'badKey', 'revokedKey'] as const) {
          const p = expectProblem(await app.request('GET', spaceModels(SPACE), as(role)), 401, 'unauthenticated');
          expect(p.detail).toMatch(role === 'revokedKey' ? /revoked/ : /key/i);
        }
        for (const authorization of ['Basic b3duZXI6cHc=', 'Bearer', 'Bearer  ', `Token ${keys.owner}`, `Bearer ${keys.owner}x`]) {
          const res = await app.request('GET', spaceModels(SPACE), { headers: { Authorization: authorization } });
          expectProblem(res, 401, 'unauthenticated');
        }
        // 401 comes before any other check: a bad body or a missing thing does not leak through.
        expectProblem(await app.request('POST', spaceModels('no-such-space'), { body: '{oops' }), 401);
        expectProblem(await app.request('GET', spaceModels(SPACE, '?limit=0')), 401);
      });

      it('the Bearer scheme is case-insensitive, and a used key records last_used_at', async () => {
        const fresh = await app.createApiKey('editor@perm.test');
        expect((await app.em().findOneOrFail(ApiKey, { id: fresh.id })).last_used_at ?? null).toBeNull();
        const res = await app.request('GET', spaceModels(SPACE), { headers: { Authorization: `bearer ${fresh.key}` } });
        expectOk(res);
        expect((await app.em().findOneOrFail(ApiKey, { id: fresh.id })).last_used_at).toBeInstanceOf(Date);
        await app.revokeApiKey(fresh.id);
        expectProblem(await app.request('GET', spaceModels(SPACE), { key: fresh.key }), 401, 'unauthenticated');
      });
    });
  });
}

function codeFor(status: number): string | undefined {
  return { 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found' }[status];
}
