/**
 * The workflow's events on fs + SQLite and S3 + PostgreSQL: alias.set (set and moved),
 * alias.deleted and version.reviewed, one per change, in the change's transaction, with the
 * history entry or version as subject; refused changes (412, 409, 403, 422) write none, and a
 * promotion blocked half-way through a PATCH writes no model.updated either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasChange, Event, ProductAlias, Space } from '../../../server/src/persistence/entities.ts';
import * as admin from '../../../server/src/services/admin.ts';
import { startArtifactApp, storageTargets, type ArtifactApp, type StorageTarget } from '../../support/artifacts.ts';
import {
  alias,
  createModel,
  createVersion,
  expectProblem,
  expectStatus,
  model,
  reviews,
  workflowUsers,
  type AliasChange as AliasChangeResponse,
  type Review,
  type WorkflowUsers,
} from './helpers.ts';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`workflow events on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;
    let u: WorkflowUsers;
    let scope: { organization_id: string; space_id: string };

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
      u = await workflowUsers(app);
      const space = await app.em().findOneOrFail(Space, { slug: 'default' });
      scope = { organization_id: space.organization.id, space_id: space.id };
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    const eventsOf = (productId: string, types: string[]) =>
      app.em().find(Event, { product_id: productId, type: { $in: types } }, { orderBy: { seq: 'asc' } });

    it('alias.set for a set and a move, alias.deleted for a deletion: subject = the history entry, data = its fields', async () => {
      const m = await createModel(u.owner);
      const [v1, v2] = [await createVersion(u.owner, m.id), await createVersion(u.owner, m.id)];
      expectStatus(await u.editor.request('PUT', alias(m.id, 'production'), { body: { version_id: v1.id, reason: 'first' } }), 201);
      expectStatus(await u.editor.request('PUT', alias(m.id, 'production'), { body: { version_id: v2.id } }), 200);
      expectStatus(await u.owner.request('DELETE', alias(m.id, 'production')), 204);
      const history = expectStatus<AliasChangeResponse[]>(await u.owner.request('GET', `/catalog/products/${m.id}/aliases/production/history`), 200);
      const row = await app.em().findOneOrFail(ProductAlias, { product: m.id, name: 'production' });
      const entries = await app.em().find(AliasChange, { alias: row.id }, { orderBy: { sequence: 'asc' } });

      const events = await eventsOf(m.id, ['alias.set', 'alias.deleted']);
      expect(events.map((e) => [e.type, e.actor_id, e.subject_id])).toEqual([
        ['alias.set', u.editorId, entries[0]!.id],
        ['alias.set', u.editorId, entries[1]!.id],
        ['alias.deleted', u.ownerId, entries[2]!.id],
      ]);
      for (const e of events) expect(e).toMatchObject({ ...scope, product_id: m.id });
      expect(events.map((e) => e.data)).toEqual([...history].reverse().map((h) => ({ product_id: m.id, ...h })));
      expect(events.map((e) => e.occurred_at.toISOString())).toEqual([...history].reverse().map((h) => h.changed_at));
    });

    it('version.reviewed: subject = the version, data = the version as reviewed with the review', async () => {
      const m = await createModel(u.owner);
      const v = await createVersion(u.editor, m.id);
      expectStatus(await u.owner.request('PUT', alias(m.id, 'staging'), { body: { version_id: v.id } }), 201);
      const review = expectStatus<Review>(await u.spaceAdmin.request('POST', reviews(m.id, v.id), { body: { decision: 'approved', comment: 'ok' } }), 201);
      const [e, ...rest] = await eventsOf(m.id, ['version.reviewed']);
      expect(rest).toEqual([]);
      expect(e).toMatchObject({ ...scope, type: 'version.reviewed', actor_id: u.spaceAdminId, product_id: m.id, subject_id: v.id });
      const version = expectStatus(await u.owner.request('GET', `/catalog/products/${m.id}/versions/${v.id}`), 200);
      expect(e!.data).toEqual({ ...(version as object), review });
    });

    it('refused changes write no event: a stale If-Match, a bad version, a forbidden reviewer, a blocked promotion (also half-way through a PATCH)', async () => {
      const m = await createModel(u.owner, { risk_classification: 'limited', description: 'before' });
      const v = await createVersion(u.owner, m.id);
      const first = await u.owner.request('PUT', alias(m.id, 'staging'), { body: { version_id: v.id } });
      await u.owner.request('PUT', alias(m.id, 'staging'), { body: { version_id: v.id } });
      const count = async () => app.em().count(Event, { product_id: m.id });
      const before = await count();
      expectProblem(await u.owner.request('PUT', alias(m.id, 'staging'), { body: { version_id: v.id }, headers: { 'If-Match': first.headers.get('etag')! } }), 412);
      expectProblem(await u.owner.request('DELETE', alias(m.id, 'staging'), { headers: { 'If-Match': first.headers.get('etag')! } }), 412);
      expectProblem(await u.owner.request('PUT', alias(m.id, 'staging'), { body: { version_id: '00000000-0000-4000-8000-000000000000' } }), 422);
      expectProblem(await u.editor.request('POST', reviews(m.id, v.id), { body: { decision: 'approved' } }), 403, 'review_forbidden');
      expectProblem(await u.owner.request('POST', reviews(m.id, v.id), { body: { decision: 'approved' } }), 403, 'self_approval_forbidden');
      await admin.setPromotionPolicy(app.em(), { space: 'default', policy: 'risk_based' });
      try {
        expectProblem(await u.owner.request('PUT', alias(m.id, 'production'), { body: { version_id: v.id } }), 409, 'promotion_blocked');
        expectProblem(await u.owner.request('PATCH', model(m.id), { body: { deployment_status: 'production', description: 'after' } }), 409, 'promotion_blocked');
      } finally {
        await admin.setPromotionPolicy(app.em(), { space: 'default', policy: 'none' });
      }
      expect(await count()).toBe(before);
      expect(expectStatus<{ description: string }>(await u.owner.request('GET', model(m.id)), 200).description).toBe('before');
    });
  });
}
