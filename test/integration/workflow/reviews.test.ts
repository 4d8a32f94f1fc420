/**
 * Reviews and the promotion gate on fs + SQLite and S3 + PostgreSQL: approval_status (the latest
 * review decides) on versions and the summary, reviewer roles, the four-eyes rule, and the
 * `risk_based` policy on create, PATCH and the production alias, refusing with every unmet
 * requirement and changing nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Product, ProductAlias, VersionReview } from '../../../server/src/persistence/entities.ts';
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
  uploadArtifact,
  version,
  workflowUsers,
  type Alias,
  type ModelSummary,
  type ModelVersion,
  type Review,
  type WorkflowUsers,
} from './helpers.ts';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`reviews and promotion on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;
    let u: WorkflowUsers;

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
      u = await workflowUsers(app);
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    const setPolicy = async (policy: 'none' | 'risk_based', space = 'default') =>
      void (await admin.setPromotionPolicy(app.em(), { space, policy }));

    it('the latest review decides approval_status, on the version and on the summary; reviews list newest first', async () => {
      const m = await createModel(u.editor);
      expect(m.current_version_approval_status).toBeNull();
      const v = await createVersion(u.editor, m.id);
      expect(v).toMatchObject({ approval_status: 'pending', created_by_id: u.editorId });
      expect(expectStatus<ModelSummary>(await u.owner.request('GET', model(m.id)), 200).current_version_approval_status).toBe('pending');

      const r1 = expectStatus<Review>(await u.spaceAdmin.request('POST', reviews(m.id, v.id), { body: { decision: 'rejected', comment: 'No eval report yet.' } }), 201);
      expect(r1).toEqual({
        id: expect.any(String),
        product_id: m.id,
        version_id: v.id,
        decision: 'rejected',
        comment: 'No eval report yet.',
        reviewer_id: u.spaceAdminId,
        created_at: expect.any(String),
      });
      expect(expectStatus<ModelVersion>(await u.owner.request('GET', version(m.id, v.id)), 200).approval_status).toBe('rejected');
      expect(expectStatus<ModelSummary>(await u.owner.request('GET', model(m.id)), 200).current_version_approval_status).toBe('rejected');
      // The space listing shows it too (its cache follows the version row).
      const listed = expectStatus<ModelSummary[]>(await u.owner.request('GET', `/catalog/spaces/default/model-repository/models?q=${encodeURIComponent(m.name)}`), 200);
      expect(listed.map((s) => s.current_version_approval_status)).toEqual(['rejected']);

      const r2 = expectStatus<Review>(await u.owner.request('POST', reviews(m.id, v.id), { body: { decision: 'approved' } }), 201);
      expect(r2.comment).toBeNull();
      expect(expectStatus<ModelVersion>(await u.owner.request('GET', version(m.id, '1')), 200).approval_status).toBe('approved');
      const listed2 = expectStatus<ModelSummary[]>(await u.owner.request('GET', `/catalog/spaces/default/model-repository/models?q=${encodeURIComponent(m.name)}`), 200);
      expect(listed2.map((s) => s.current_version_approval_status)).toEqual(['approved']);
      const list = expectStatus<Review[]>(await u.viewer.request('GET', reviews(m.id, v.id)), 200);
      expect(list.map((r) => r.id)).toEqual([r2.id, r1.id]);

      // A later version starts pending; the summary follows the current one.
      const v2 = await createVersion(u.editor, m.id, { is_current: true });
      expect(v2.approval_status).toBe('pending');
      expect(expectStatus<ModelSummary>(await u.owner.request('GET', model(m.id)), 200).current_version_approval_status).toBe('pending');
    });

    it('reviewers are space admins and organization owners/admins; an editor or viewer → 403 review_forbidden; nobody approves their own version', async () => {
      const m = await createModel(u.owner);
      const v = await createVersion(u.editor, m.id);
      const before = await app.em().count(VersionReview, {});
      for (const who of [u.editor, u.viewer]) {
        expectProblem(await who.request('POST', reviews(m.id, v.id), { body: { decision: 'approved' } }), 403, 'review_forbidden');
        expectProblem(await who.request('POST', reviews(m.id, v.id), { body: { decision: 'rejected' } }), 403, 'review_forbidden');
      }
      await admin.grant(app.em(), { email: u.grantedEmail, productId: m.id, access: 'edit' });
      expectProblem(await u.granted.request('POST', reviews(m.id, v.id), { body: { decision: 'approved' } }), 403, 'review_forbidden');
      expectProblem(await u.stranger.request('POST', reviews(m.id, v.id), { body: { decision: 'approved' } }), 404, 'not_found');
      expect(await app.em().count(VersionReview, {})).toBe(before);

      // The editor's own version: an admin approves. The owner's own version: the owner may reject but not approve.
      expectStatus(await u.orgAdmin.request('POST', reviews(m.id, v.id), { body: { decision: 'approved' } }), 201);
      const own = await createVersion(u.spaceAdmin, m.id);
      const selfApproval = expectProblem(await u.spaceAdmin.request('POST', reviews(m.id, own.id), { body: { decision: 'approved' } }), 403, 'self_approval_forbidden');
      expect(selfApproval.detail).toContain('version 2');
      expectStatus(await u.spaceAdmin.request('POST', reviews(m.id, own.id), { body: { decision: 'rejected', comment: 'Withdrawn.' } }), 201);
      expectStatus(await u.owner.request('POST', reviews(m.id, own.id), { body: { decision: 'approved' } }), 201);
      expect(expectStatus<ModelVersion>(await u.owner.request('GET', version(m.id, own.id)), 200).approval_status).toBe('approved');
    });

    it('bad input: a version of another product or unknown → 404; a bad decision or a long comment → 422', async () => {
      const m = await createModel(u.owner);
      const other = await createModel(u.owner);
      const theirs = await createVersion(u.owner, other.id);
      const mine = await createVersion(u.owner, m.id);
      for (const vid of [theirs.id, randomUUID(), 'not-a-uuid', '1']) {
        expectProblem(await u.spaceAdmin.request('POST', reviews(m.id, vid), { body: { decision: 'approved' } }), 404, 'not_found');
        expectProblem(await u.spaceAdmin.request('GET', reviews(m.id, vid)), 404, 'not_found');
      }
      expectProblem(await u.spaceAdmin.request('POST', reviews(randomUUID(), mine.id), { body: { decision: 'approved' } }), 404);
      expectProblem(await u.spaceAdmin.request('POST', reviews(m.id, mine.id), { body: { decision: 'maybe' } }), 422, 'validation_error');
      expectProblem(await u.spaceAdmin.request('POST', reviews(m.id, mine.id), { body: {} }), 422);
      expectProblem(await u.spaceAdmin.request('POST', reviews(m.id, mine.id), { body: { decision: 'approved', comment: 'x'.repeat(5001) } }), 422);
      expectProblem(await u.spaceAdmin.request('POST', reviews(m.id, mine.id), { body: { decision: 'approved', extra: 1 } }), 422);
      expectStatus(await u.spaceAdmin.request('POST', reviews(m.id, mine.id), { body: { decision: 'approved', comment: 'x'.repeat(5000) } }), 201);
      expect(expectStatus<ModelVersion>(await u.owner.request('GET', version(other.id, theirs.id)), 200).approval_status).toBe('pending');
    });

    it('policy none (the default): nothing is gated, whatever the risk', async () => {
      await setPolicy('none');
      const m = await createModel(u.owner, { risk_classification: 'unacceptable', deployment_status: 'production' });
      const v = await createVersion(u.owner, m.id);
      expectStatus(await u.owner.request('PUT', alias(m.id, 'production'), { body: { version_id: v.id } }), 201);
    });

    describe('policy risk_based', () => {
      beforeAll(() => setPolicy('risk_based'));
      afterAll(() => setPolicy('none'));

      const types = (p: { errors?: { type: string; loc: (string | number)[] }[] }) => p.errors!.map((e) => `${e.type}:${e.loc.join('.')}`);

      it('create: unacceptable is refused always, high and limited need an approved version (a new model has none), minimal passes', async () => {
        const count = await app.em().count(Product, {});
        const blocked = async (body: Record<string, unknown>) =>
          expectProblem(await u.owner.request('POST', '/catalog/spaces/default/model-repository/models', { body: { name: `Gated ${randomUUID()}`, deployment_status: 'production', ...body } }), 409, 'promotion_blocked');
        expect(types(await blocked({ risk_classification: 'unacceptable' }))).toEqual(['prohibited_risk:product.risk_classification']);
        expect(types(await blocked({ risk_classification: 'limited' }))).toEqual(['version_required:version']);
        expect(types(await blocked({ risk_classification: 'high' }))).toEqual([
          'version_required:version',
          'artifact_required:version.artifacts.model_card',
          'artifact_required:version.artifacts.eval_report',
          'field_required:product.intended_use',
          'field_required:product.limitations',
        ]);
        expect(types(await blocked({ risk_classification: 'high', intended_use: 'Churn scores.', limitations: 'EU only.' }))).toEqual([
          'version_required:version',
          'artifact_required:version.artifacts.model_card',
          'artifact_required:version.artifacts.eval_report',
        ]);
        expect(await app.em().count(Product, {})).toBe(count);
        await createModel(u.owner, { risk_classification: 'minimal', deployment_status: 'production' });
        await createModel(u.owner, { deployment_status: 'production' });
        await createModel(u.owner, { risk_classification: 'high', deployment_status: 'staging' });
        // Another space keeps its own policy (none).
        await admin.createSpace(app.em(), { org: 'acme', space: 'ungated' });
        await createModel(u.owner, { risk_classification: 'unacceptable', deployment_status: 'production' }, 'ungated');
      });

      it('PATCH: judged after the patch is applied; a blocked PATCH that also changes other fields changes nothing', async () => {
        const m = await createModel(u.owner, { risk_classification: 'limited', description: 'before' });
        const v = await createVersion(u.editor, m.id);
        const stored = async () => app.em().findOneOrFail(Product, { id: m.id });
        const before = await stored();
        const refused = expectProblem(
          await u.owner.request('PATCH', model(m.id), { body: { deployment_status: 'production', description: 'after', framework: 'xgboost' } }),
          409,
          'promotion_blocked',
        );
        expect(types(refused)).toEqual(['approval_required:version.approval_status']);
        expect(refused.detail).toContain('version 1');
        const after = await stored();
        expect([after.description, after.framework, after.deployment_status, after.updated_at.toISOString()]).toEqual([
          'before',
          null,
          'development',
          before.updated_at.toISOString(),
        ]);
        // Lowering the risk in the same PATCH is judged as applied: minimal needs nothing.
        expectStatus(await u.owner.request('PATCH', model(m.id), { body: { deployment_status: 'production', risk_classification: 'minimal' } }), 200);
        // Raising the risk of a model in production is a promotion too.
        expect(types(expectProblem(await u.owner.request('PATCH', model(m.id), { body: { risk_classification: 'unacceptable' } }), 409, 'promotion_blocked'))).toEqual([
          'prohibited_risk:product.risk_classification',
        ]);
        // Fields the gate does not read change freely.
        expectStatus(await u.owner.request('PATCH', model(m.id), { body: { description: 'fine' } }), 200);
        await u.spaceAdmin.request('POST', reviews(m.id, v.id), { body: { decision: 'approved' } });
        expectStatus(await u.owner.request('PATCH', model(m.id), { body: { risk_classification: 'limited' } }), 200);
        expect((await stored()).risk_classification).toBe('limited');
      });

      it('the production alias of a high-risk model needs every requirement of the aliased version; other aliases are not gated', async () => {
        const m = await createModel(u.owner, { risk_classification: 'high' });
        const v1 = await createVersion(u.editor, m.id);
        const v2 = await createVersion(u.editor, m.id);
        const setProduction = (vid: string) => u.owner.request('PUT', alias(m.id, 'production'), { body: { version_id: vid, reason: 'go live' } });
        const first = expectProblem(await setProduction(v2.id), 409, 'promotion_blocked');
        expect(types(first)).toEqual([
          'approval_required:version.approval_status',
          'artifact_required:version.artifacts.model_card',
          'artifact_required:version.artifacts.eval_report',
          'field_required:product.intended_use',
          'field_required:product.limitations',
        ]);
        expect(await app.em().count(ProductAlias, { product: m.id })).toBe(0);
        expectStatus(await u.owner.request('PUT', alias(m.id, 'staging'), { body: { version_id: v2.id } }), 201);

        await uploadArtifact(u.editor, m.id, 'model_card', v2.id);
        await uploadArtifact(u.editor, m.id, 'eval_report', v1.id); // the wrong version
        await u.spaceAdmin.request('POST', reviews(m.id, v2.id), { body: { decision: 'approved' } });
        await u.owner.request('PATCH', model(m.id), { body: { intended_use: 'Retention offers.', limitations: '   ' } });
        expect(types(expectProblem(await setProduction(v2.id), 409, 'promotion_blocked'))).toEqual([
          'artifact_required:version.artifacts.eval_report',
          'field_required:product.limitations',
        ]);
        const report = await uploadArtifact(u.editor, m.id, 'eval_report', v2.id);
        await u.owner.request('PATCH', model(m.id), { body: { limitations: 'Not for credit decisions.' } });
        expectStatus<Alias>(await setProduction(v2.id), 201);

        // A deleted artifact no longer counts; a rejection after approval blocks moving it back.
        expectStatus(await u.owner.request('DELETE', `/catalog/products/${m.id}/model-artifacts/${report.id}`), 204);
        expect(types(expectProblem(await setProduction(v2.id), 409))).toEqual(['artifact_required:version.artifacts.eval_report']);
        expect(types(expectProblem(await setProduction(v1.id), 409))).toContain('approval_required:version.approval_status');
        const still = expectStatus<Alias>(await u.owner.request('GET', alias(m.id, 'production')), 200);
        expect(still.version_id).toBe(v2.id);

        // PATCH into production checks the current version (v1, the first) the same way.
        expect(types(expectProblem(await u.owner.request('PATCH', model(m.id), { body: { deployment_status: 'production' } }), 409))).toEqual([
          'approval_required:version.approval_status',
          'artifact_required:version.artifacts.model_card',
        ]);
      });
    });
  });
}
