/**
 * The access module against real databases (SQLite and PostgreSQL): every role, grants,
 * creators, other organizations; 404 vs 403; list visibility as SQL; API key authentication.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  accessibleSpaceIdsInOrg,
  authenticate,
  generateApiKey,
  hashApiKey,
  productAccess,
  requireOrganizationAccess,
  requireProductEdit,
  requireProductEditId,
  requireProductView,
  requireSpaceView,
  requireSpaceWrite,
  spaceAccess,
  visibleProductsInOrgFilter,
  type ProductAccess,
  type SpaceAccess,
} from '../../../server/src/access/index.ts';
import { AppError } from '../../../server/src/errors.ts';
import {
  ApiKey,
  Organization,
  OrganizationMembership,
  Product,
  ProductGrant,
  Space,
  SpaceMembership,
  User,
  type OrganizationRole,
  type SpaceRole,
} from '../../../server/src/persistence/entities.ts';
import type { Em } from '../../../server/src/persistence/orm.ts';
import { makeOrg, makeProduct, makeSpace, makeUser } from './fixtures.ts';
import { databaseTargets, useMigratedDatabase } from './targets.ts';

const targets = await databaseTargets();

const USERS = [
  'owner',
  'orgAdmin',
  'member',
  'spaceAdmin',
  'editor',
  'viewer',
  'spaceOnly',
  'grantView',
  'grantEdit',
  'creator',
  'outsider',
] as const;
type Who = (typeof USERS)[number];

async function rejection(p: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return { status: (err as AppError).status, code: (err as AppError).code };
  }
  throw new Error('expected a rejection');
}

for (const target of targets) {
  describe.skipIf(!target.create)(`access on ${target.dialect}`, () => {
    const ids = {} as Record<Who, string> & { A: string; B: string; S1: string; S2: string; T: string; P1: string; P2: string; P3: string };
    const S1 = 'acc-s1';
    const S2 = 'acc-s2';
    const database = useMigratedDatabase(target);
    const fork = (): Em => database.fork();
    const user = (em: Em, who: Who) => em.findOneOrFail(User, ids[who]);

    beforeAll(async () => {
      const em = fork();
      const A = makeOrg(em, 'acc-org-a');
      const B = makeOrg(em, 'acc-org-b');
      const s1 = makeSpace(em, A, S1);
      const s2 = makeSpace(em, A, S2);
      const t = makeSpace(em, B, 'acc-t');
      const u = Object.fromEntries(USERS.map((w) => [w, makeUser(em, `${w.toLowerCase()}@acc.example`)])) as Record<Who, User>;
      const orgRole = (who: Who, org: Organization, role: OrganizationRole) =>
        em.create(OrganizationMembership, { organization: org, user: u[who], role });
      const spaceRole = (who: Who, space: Space, role: SpaceRole) => em.create(SpaceMembership, { space, user: u[who], role });
      orgRole('owner', A, 'owner');
      orgRole('orgAdmin', A, 'admin');
      for (const w of ['member', 'spaceAdmin', 'editor', 'viewer', 'grantView', 'grantEdit', 'creator'] as const) orgRole(w, A, 'member');
      orgRole('outsider', B, 'owner');
      spaceRole('spaceAdmin', s1, 'admin');
      spaceRole('editor', s1, 'editor');
      spaceRole('viewer', s1, 'viewer');
      spaceRole('spaceOnly', s1, 'viewer'); // a space role without an organization membership
      const p1 = makeProduct(em, s1, { created_by: u.owner });
      const p2 = makeProduct(em, s2, { created_by: u.creator });
      const p3 = makeProduct(em, s2);
      makeProduct(em, t, { created_by: u.outsider });
      em.create(ProductGrant, { product: p1, user: u.grantView, access: 'view' });
      em.create(ProductGrant, { product: p1, user: u.grantEdit, access: 'edit' });
      await em.flush();
      Object.assign(ids, Object.fromEntries(USERS.map((w) => [w, u[w].id])), {
        A: A.id,
        B: B.id,
        S1: s1.id,
        S2: s2.id,
        T: t.id,
        P1: p1.id,
        P2: p2.id,
        P3: p3.id,
      });
    });

    const SPACE_EXPECTED: Record<Who, [SpaceAccess, SpaceAccess]> = {
      // [S1, S2]
      owner: ['admin', 'admin'],
      orgAdmin: ['admin', 'admin'],
      member: ['see', 'see'],
      spaceAdmin: ['admin', 'see'],
      editor: ['edit', 'see'],
      viewer: ['view', 'see'],
      spaceOnly: ['view', 'none'],
      grantView: ['see', 'see'],
      grantEdit: ['see', 'see'],
      creator: ['see', 'see'],
      outsider: ['none', 'none'],
    };

    it.each(USERS)('spaceAccess for %s', async (who) => {
      const em = fork();
      const u = await user(em, who);
      const got = [await spaceAccess(em, u, await em.findOneOrFail(Space, ids.S1)), await spaceAccess(em, u, await em.findOneOrFail(Space, ids.S2))];
      expect(got).toEqual(SPACE_EXPECTED[who]);
    });

    const PRODUCT_EXPECTED: Record<Who, [ProductAccess, ProductAccess, ProductAccess]> = {
      // [P1 in S1 (created by owner; grants), P2 in S2 (created by creator), P3 in S2]
      owner: ['edit', 'edit', 'edit'],
      orgAdmin: ['edit', 'edit', 'edit'],
      member: ['none', 'none', 'none'],
      spaceAdmin: ['edit', 'none', 'none'],
      editor: ['edit', 'none', 'none'],
      viewer: ['view', 'none', 'none'],
      spaceOnly: ['view', 'none', 'none'],
      grantView: ['view', 'none', 'none'],
      grantEdit: ['edit', 'none', 'none'],
      creator: ['none', 'edit', 'none'],
      outsider: ['none', 'none', 'none'],
    };

    it.each(USERS)('productAccess for %s', async (who) => {
      const em = fork();
      const u = await user(em, who);
      const got: ProductAccess[] = [];
      // Unpopulated products: productAccess loads the space itself.
      for (const id of [ids.P1, ids.P2, ids.P3]) got.push(await productAccess(em, u, await em.findOneOrFail(Product, id)));
      expect(got).toEqual(PRODUCT_EXPECTED[who]);
    });

    it('requireSpaceView: any space role or org owner/admin; org member 403; outsider and unknown 404', async () => {
      const em = fork();
      for (const who of ['owner', 'orgAdmin', 'spaceAdmin', 'editor', 'viewer', 'spaceOnly'] as const) {
        const { space, access } = await requireSpaceView(em, await user(em, who), S1);
        // Plain data from the one statement, with the columns converted on either dialect.
        const stored = await em.fork().findOneOrFail(Space, { id: ids.S1 }, { populate: ['organization'] });
        expect(space).toEqual({
          id: ids.S1,
          slug: S1,
          name: stored.name,
          product_limit: stored.product_limit ?? null,
          listing_version: Number(stored.listing_version),
          organization: { id: stored.organization.id, slug: 'acc-org-a', name: stored.organization.name },
        });
        expect(access).toBe(SPACE_EXPECTED[who][0]);
      }
      for (const who of ['member', 'grantView', 'creator'] as const) {
        expect(await rejection(requireSpaceView(em, await user(em, who), S1))).toEqual({ status: 403, code: 'forbidden' });
      }
      expect(await rejection(requireSpaceView(em, await user(em, 'outsider'), S1))).toEqual({ status: 404, code: 'not_found' });
      expect(await rejection(requireSpaceView(em, await user(em, 'spaceOnly'), S2))).toEqual({ status: 404, code: 'not_found' });
      expect(await rejection(requireSpaceView(em, await user(em, 'owner'), 'no-such-space'))).toEqual({ status: 404, code: 'not_found' });
    });

    it('requireSpaceWrite: editor/admin or org owner/admin; viewer and member 403; outsider 404', async () => {
      const em = fork();
      for (const who of ['owner', 'orgAdmin', 'spaceAdmin', 'editor'] as const) {
        expect((await requireSpaceWrite(em, await user(em, who), S1)).space.id).toBe(ids.S1);
      }
      for (const who of ['viewer', 'spaceOnly', 'member'] as const) {
        expect((await rejection(requireSpaceWrite(em, await user(em, who), S1))).status).toBe(403);
      }
      expect((await rejection(requireSpaceWrite(em, await user(em, 'outsider'), S1))).status).toBe(404);
    });

    it('requireProductView / requireProductEdit: none → 404, view-only → 403 on edit', async () => {
      const em = fork();
      const view = async (who: Who, id: string) => requireProductView(em, await user(em, who), id);
      const edit = async (who: Who, id: string) => requireProductEdit(em, await user(em, who), id);

      const r = await view('grantView', ids.P1);
      expect(r.product.id).toBe(ids.P1);
      expect(r.product.space.slug).toBe(S1); // populated
      expect(r.access).toBe('view');
      expect((await view('viewer', ids.P1.toUpperCase())).product.id).toBe(ids.P1);

      expect((await rejection(view('member', ids.P1))).status).toBe(404);
      expect((await rejection(view('outsider', ids.P1))).status).toBe(404);
      expect((await rejection(view('owner', 'not-a-uuid'))).status).toBe(404);
      expect((await rejection(view('owner', '00000000-0000-4000-8000-000000000000'))).status).toBe(404);

      expect((await edit('grantEdit', ids.P1)).access).toBe('edit');
      expect((await edit('creator', ids.P2)).access).toBe('edit');
      expect((await edit('editor', ids.P1)).access).toBe('edit');
      expect((await rejection(edit('viewer', ids.P1))).status).toBe(403);
      expect((await rejection(edit('grantView', ids.P1))).status).toBe(403);
      expect((await rejection(edit('editor', ids.P2))).status).toBe(404);
    });

    it('requireProductEditId (one query) answers exactly like requireProductEdit, for every user and product', async () => {
      const outcome = async (run: () => Promise<{ access: ProductAccess }>) => {
        try {
          return { access: (await run()).access };
        } catch (err) {
          expect(err).toBeInstanceOf(AppError);
          return { status: (err as AppError).status, code: (err as AppError).code, message: (err as AppError).message };
        }
      };
      const products = [ids.P1, ids.P2, ids.P3, ids.P1.toUpperCase(), 'not-a-uuid', '00000000-0000-4000-8000-000000000000'];
      let allowed = 0;
      for (const who of USERS) {
        for (const id of products) {
          const em = fork();
          const u = await user(em, who);
          const expected = await outcome(() => requireProductEdit(fork(), u, id));
          expect(await outcome(() => requireProductEditId(em, u, id)), `${who} on ${id}`).toEqual(expected);
          if ('access' in expected) {
            allowed++;
            expect((await requireProductEditId(em, u, id)).productId).toBe(id.toLowerCase());
          }
        }
      }
      expect(allowed).toBeGreaterThan(3);
    });

    it('requireOrganizationAccess: org members and space-role holders; others 404', async () => {
      const em = fork();
      expect((await requireOrganizationAccess(em, await user(em, 'member'), 'acc-org-a')).role).toBe('member');
      expect((await requireOrganizationAccess(em, await user(em, 'owner'), 'acc-org-a')).role).toBe('owner');
      const spaceOnly = await requireOrganizationAccess(em, await user(em, 'spaceOnly'), 'acc-org-a');
      expect(spaceOnly).toMatchObject({ role: null, organization: { id: ids.A } });
      expect((await rejection(requireOrganizationAccess(em, await user(em, 'outsider'), 'acc-org-a'))).status).toBe(404);
      expect((await rejection(requireOrganizationAccess(em, await user(em, 'owner'), 'nope'))).status).toBe(404);
    });

    const VISIBLE: Partial<Record<Who, ('P1' | 'P2' | 'P3')[]>> = {
      owner: ['P1', 'P2', 'P3'],
      orgAdmin: ['P1', 'P2', 'P3'],
      member: [],
      spaceAdmin: ['P1'],
      viewer: ['P1'],
      spaceOnly: ['P1'],
      grantView: ['P1'],
      grantEdit: ['P1'],
      creator: ['P2'],
      outsider: [],
    };

    it.each(Object.keys(VISIBLE) as Who[])('organization listing filter (SQL) for %s', async (who) => {
      const em = fork();
      const u = await user(em, who);
      const org = await em.findOneOrFail(Organization, ids.A);
      const where = await visibleProductsInOrgFilter(em, u, org);
      const [rows, total] = await em.findAndCount(Product, { $and: [where, { is_archived: false }] }, { orderBy: { updated_at: 'desc', id: 'desc' } });
      const names = Object.fromEntries((['P1', 'P2', 'P3'] as const).map((k) => [ids[k], k]));
      expect(rows.map((p) => names[p.id]).sort()).toEqual(VISIBLE[who]);
      expect(total).toBe(VISIBLE[who]!.length);
    });

    it('accessibleSpaceIdsInOrg lists spaces with view or better', async () => {
      const em = fork();
      const org = await em.findOneOrFail(Organization, ids.A);
      expect((await accessibleSpaceIdsInOrg(em, await user(em, 'owner'), org)).sort()).toEqual([ids.S1, ids.S2].sort());
      expect(await accessibleSpaceIdsInOrg(em, await user(em, 'viewer'), org)).toEqual([ids.S1]);
      expect(await accessibleSpaceIdsInOrg(em, await user(em, 'member'), org)).toEqual([]);
      expect(await accessibleSpaceIdsInOrg(em, await user(em, 'outsider'), org)).toEqual([]);
    });

    describe('API keys', () => {
      it('generateApiKey: prefixed, ≥ 32 random bytes, hash and display prefix', () => {
        const a = generateApiKey();
        const b = generateApiKey();
        expect(a.key).toMatch(/^mr_[A-Za-z0-9_-]{43}$/);
        expect(a.key).not.toBe(b.key);
        expect(a.hash).toBe(hashApiKey(a.key));
        expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
        expect(a.prefix).toBe(a.key.slice(0, 8));
      });

      it('authenticate: valid, unknown, missing and revoked keys; last_used_at at most once a minute', async () => {
        const em = fork();
        const owner = await user(em, 'owner');
        const generated = generateApiKey();
        const key = em.create(ApiKey, { user: owner, name: 'test', key_hash: generated.hash, key_prefix: generated.prefix });
        await em.flush();

        const t0 = new Date('2030-01-01T00:00:00.000Z');
        const authEm = fork();
        const authenticated = await authenticate(authEm, generated.key, t0);
        // The caller's id only, as plain data: nothing is loaded into the EntityManager.
        expect(authenticated).toEqual({ id: ids.owner });
        expect(authEm.getUnitOfWork().getById('User', ids.owner)).toBeUndefined();
        const lastUsed = async () => (await fork().findOneOrFail(ApiKey, key.id)).last_used_at?.toISOString();
        expect(await lastUsed()).toBe(t0.toISOString());
        await authenticate(fork(), generated.key, new Date(t0.getTime() + 30_000));
        expect(await lastUsed()).toBe(t0.toISOString());
        const t2 = new Date(t0.getTime() + 61_000);
        await authenticate(fork(), generated.key, t2);
        expect(await lastUsed()).toBe(t2.toISOString());

        for (const bad of ['', undefined, null, 'mr_unknown', generated.key.slice(0, -1)]) {
          try {
            await authenticate(fork(), bad);
            expect.unreachable();
          } catch (err) {
            expect(err).toMatchObject({ status: 401, code: 'unauthenticated' });
            expect((err as AppError).headers?.['WWW-Authenticate']).toMatch(/^Bearer/);
          }
        }

        await fork().nativeUpdate(ApiKey, { id: key.id }, { revoked_at: new Date() });
        await expect(authenticate(fork(), generated.key)).rejects.toMatchObject({ status: 401, detail: expect.stringMatching(/revoked/) });
      });
    });
  });
}
