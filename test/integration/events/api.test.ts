/**
 * Reading the audit trail: GET /catalog/products/{id}/events and GET /catalog/spaces/{slug}/events
 * — who may read which (the permission matrix), newest-first order, paging headers, the `types`
 * and `since` filters and their bad input. On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import spec from '../../../server/src/generated/openapi.json' with { type: 'json' };
import { EVENT_TYPES } from '../../../server/src/services/events.ts';
import { Event } from '../../../server/src/persistence/entities.ts';
import type { components } from '../../../server/src/generated/api.ts';
import { databaseTargets, startTestApp, type TestApp, type TestUser } from '../../support/app.ts';
import { expectOk, expectProblem, model, pageHeaders, spaceModels, versions } from '../models/helpers.ts';

type EventBody = components['schemas']['Event'];

const ORG = 'events-org';
const SPACE = 'events-space';
const OTHER_ORG = 'events-other';

const productEvents = (id: string, query = '') => `/catalog/products/${id}/events${query}`;
const spaceEvents = (slug: string, query = '') => `/catalog/spaces/${slug}/events${query}`;

const ROLES = ['owner', 'orgAdmin', 'orgMember', 'spaceAdmin', 'editor', 'viewer', 'productGrant', 'stranger', 'noKey'] as const;
type Role = (typeof ROLES)[number];

/** Expected status per caller: a model's events (view access) and the space's (space admin, org owner/admin). */
const MATRIX: Record<Role, { product: number; space: number }> = {
  owner: { product: 200, space: 200 },
  orgAdmin: { product: 200, space: 200 },
  orgMember: { product: 404, space: 403 },
  spaceAdmin: { product: 200, space: 200 },
  editor: { product: 200, space: 403 },
  viewer: { product: 200, space: 403 },
  productGrant: { product: 200, space: 404 },
  stranger: { product: 404, space: 404 },
  noKey: { product: 401, space: 401 },
};

it('the spec lists exactly the event types the server records', () => {
  expect((spec as { components: { schemas: { EventType: { enum: string[] } } } }).components.schemas.EventType.enum).toEqual([...EVENT_TYPES]);
});

for (const target of await databaseTargets()) {
  describe.skipIf(!target.create)(`the events API on ${target.dialect}`, () => {
    let app: TestApp;
    let owner: TestUser;
    const keys = {} as Record<Role, string | undefined>;
    /** A model with a known history: created, 2 PATCHes, 2 versions (5 events). */
    let pid: string;
    /** Another model in the space (1 event). */
    let otherPid: string;

    const get = <T = EventBody[]>(path: string, key = owner.key) => app.request<T>('GET', path, { key });

    beforeAll(async () => {
      app = await startTestApp(target);
      owner = await app.bootstrap(ORG, SPACE, 'owner@events.test');
      keys.owner = owner.key;
      const add = async (role: Role, setup: (email: string) => Promise<void>) => {
        const email = `${role.toLowerCase()}@events.test`;
        const u = await app.createUser(email);
        await setup(email);
        keys[role] = u.key;
      };
      await add('orgAdmin', (e) => app.addOrgMember(e, ORG, 'admin'));
      await add('orgMember', (e) => app.addOrgMember(e, ORG, 'member'));
      await add('spaceAdmin', (e) => app.addSpaceMember(e, SPACE, 'admin'));
      await add('editor', (e) => app.addSpaceMember(e, SPACE, 'editor'));
      await add('viewer', (e) => app.addSpaceMember(e, SPACE, 'viewer'));
      const stranger = await app.bootstrap(OTHER_ORG, 'events-elsewhere', 'stranger@events.test');
      keys.stranger = stranger.key;
      keys.noKey = undefined;

      pid = expectOk<{ id: string }>(await app.request('POST', spaceModels(SPACE), { key: owner.key, body: { name: 'Audited' } }), 201).id;
      otherPid = expectOk<{ id: string }>(await app.request('POST', spaceModels(SPACE), { key: owner.key, body: { name: 'Bystander' } }), 201).id;
      expectOk(await app.request('PATCH', model(pid), { key: owner.key, body: { description: 'first' } }));
      expectOk(await app.request('POST', versions(pid), { key: owner.key, body: {} }), 201);
      expectOk(await app.request('PATCH', model(pid), { key: owner.key, body: { description: 'second' } }));
      expectOk(await app.request('POST', versions(pid), { key: owner.key, body: { is_current: true } }), 201);
      await add('productGrant', async (e) => {
        await app.addOrgMember(e, OTHER_ORG, 'member'); // a member elsewhere: nothing in this org but the grant
        await app.grant(e, pid, 'view');
      });
    });
    afterAll(() => app?.close());

    describe('permission matrix', () => {
      for (const role of ROLES) {
        it(`${role}: model events ${MATRIX[role].product}, space events ${MATRIX[role].space}`, async () => {
          const product = await app.request('GET', productEvents(pid), { key: keys[role] });
          const space = await app.request('GET', spaceEvents(SPACE), { key: keys[role] });
          for (const [res, want] of [
            [product, MATRIX[role].product],
            [space, MATRIX[role].space],
          ] as const) {
            if (want === 200) expect(expectOk<EventBody[]>(res).length).toBeGreaterThan(0);
            else expectProblem(res, want);
          }
          if (MATRIX[role].space === 403) {
            expect(expectProblem(space, 403, 'forbidden').detail).toMatch(/admin role in space 'events-space'/);
          }
        });
      }

      it('an unknown product or space, or an id that is no UUID, is 404', async () => {
        expectProblem(await get(productEvents('7c9e6679-7425-40de-944b-e07fc1f90ae7')), 404);
        expectProblem(await get(productEvents('not-a-uuid')), 404);
        expectProblem(await get(spaceEvents('no-such-space')), 404);
      });
    });

    it("a model's events: its own only, newest first, each as stored", async () => {
      const events = expectOk<EventBody[]>(await get(productEvents(pid)));
      expect(events.map((e) => e.type)).toEqual(['version.created', 'model.updated', 'version.created', 'model.updated', 'model.created']);
      expect(events.every((e) => e.product_id === pid)).toBe(true);
      expect(events[1]!.data.changes).toEqual({ description: { from: 'first', to: 'second' } });
      expect(events[3]!.data.changes).toEqual({ description: { from: null, to: 'first' } });
      // Exactly the stored rows, in seq order descending.
      const rows = await app.em().find(Event, { product_id: pid }, { orderBy: { seq: 'desc' } });
      expect(events.map((e) => e.id)).toEqual(rows.map((r) => r.id));
      expect(events[0]).toEqual({
        id: rows[0]!.id,
        type: 'version.created',
        occurred_at: rows[0]!.occurred_at.toISOString(),
        actor_id: owner.id,
        organization_id: rows[0]!.organization_id,
        space_id: rows[0]!.space_id,
        product_id: pid,
        subject_id: rows[0]!.subject_id,
        data: rows[0]!.data,
      });
      const h = pageHeaders(await get(productEvents(pid)));
      expect(h).toEqual({ total: 5, page: 1, hasMore: false });
    });

    it("a space's events: every model's, newest first", async () => {
      const events = expectOk<EventBody[]>(await get(spaceEvents(SPACE)));
      expect(events).toHaveLength(6);
      expect(new Set(events.map((e) => e.product_id))).toEqual(new Set([pid, otherPid]));
      expect(events.at(-1)!.type).toBe('model.created');
      expect(events.at(-1)!.product_id).toBe(pid);
      const times = events.map((e) => Date.parse(e.occurred_at));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
      // Another space's events are not there.
      const elsewhere = expectOk<EventBody[]>(await get(spaceEvents('events-elsewhere'), keys.stranger));
      expect(elsewhere).toEqual([]);
    });

    it('pages with skip and limit and the paging headers', async () => {
      const all = expectOk<EventBody[]>(await get(productEvents(pid)));
      const first = await get(productEvents(pid, '?limit=2'));
      expect(expectOk<EventBody[]>(first).map((e) => e.id)).toEqual(all.slice(0, 2).map((e) => e.id));
      expect(pageHeaders(first)).toEqual({ total: 5, page: 1, hasMore: true });
      const second = await get(productEvents(pid, '?skip=2&limit=2'));
      expect(expectOk<EventBody[]>(second).map((e) => e.id)).toEqual(all.slice(2, 4).map((e) => e.id));
      expect(pageHeaders(second)).toEqual({ total: 5, page: 2, hasMore: true });
      const last = await get(productEvents(pid, '?skip=4&limit=2'));
      expect(expectOk<EventBody[]>(last).map((e) => e.id)).toEqual(all.slice(4).map((e) => e.id));
      expect(pageHeaders(last)).toEqual({ total: 5, page: 3, hasMore: false });
      const past = await get(productEvents(pid, '?skip=50&limit=10'));
      expect(expectOk<EventBody[]>(past)).toEqual([]);
      expect(pageHeaders(past)).toEqual({ total: 5, page: 6, hasMore: false });
    });

    it('types keeps only the given types (repeatable); the total follows the filter', async () => {
      const res = await get(productEvents(pid, '?types=version.created&types=model.created&types=version.created'));
      expect(expectOk<EventBody[]>(res).map((e) => e.type)).toEqual(['version.created', 'version.created', 'model.created']);
      expect(pageHeaders(res).total).toBe(3);
      const space = await get(spaceEvents(SPACE, '?types=model.created'));
      expect(expectOk<EventBody[]>(space).map((e) => e.product_id).sort()).toEqual([pid, otherPid].sort());
      const none = await get(productEvents(pid, '?types=artifact.deleted'));
      expect(expectOk<EventBody[]>(none)).toEqual([]);
      expect(pageHeaders(none)).toEqual({ total: 0, page: 1, hasMore: false });
    });

    it('since keeps events at or after the instant', async () => {
      const all = expectOk<EventBody[]>(await get(productEvents(pid)));
      const pivot = all[2]!.occurred_at; // the third newest
      const res = await get(productEvents(pid, `?since=${encodeURIComponent(pivot)}`));
      const kept = expectOk<EventBody[]>(res);
      expect(kept.map((e) => e.id)).toEqual(all.filter((e) => e.occurred_at >= pivot).map((e) => e.id));
      expect(kept.map((e) => e.id)).toContain(all[2]!.id);
      const future = await get(productEvents(pid, '?since=2999-01-01T00:00:00Z'));
      expect(expectOk<EventBody[]>(future)).toEqual([]);
      // An offset other than Z (the + encoded, as a URL needs).
      const offset = await get(productEvents(pid, `?since=${encodeURIComponent('2000-01-01T02:00:00+02:00')}`));
      expect(expectOk<EventBody[]>(offset)).toHaveLength(5);
    });

    it('bad filters are 422 with the parameter named', async () => {
      for (const q of ['?types=model.deleted', '?types=MODEL.CREATED', '?since=yesterday', '?since=2026-13-01T00:00:00Z', '?since=2026-10-01', '?limit=0', '?limit=1001', '?skip=-1']) {
        const problem = expectProblem(await get(productEvents(pid, q)), 422);
        const param = q.slice(1, q.indexOf('='));
        expect(JSON.stringify(problem.errors), q).toContain(param);
      }
      expectProblem(await get(spaceEvents(SPACE, '?since=not-a-time')), 422);
    });

    it('nothing in the API changes or removes an event', async () => {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        const res = await app.request(method, productEvents(pid), { key: owner.key, body: method === 'DELETE' ? undefined : {} });
        expect([404, 405], `${method} ${res.status}`).toContain(res.status);
      }
      expect(await app.em().count(Event, { product_id: pid })).toBe(5);
    });
  });
}
