/**
 * Who may use the workflow operations, on fs + SQLite and S3 + PostgreSQL: the owner, an org
 * admin, a space admin, an editor, a viewer, a user with an edit grant on the product, and a
 * stranger (another organization). Who cannot see the product gets 404, who sees it but lacks
 * the level 403; a refused change writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasChange, VersionReview } from '../../../server/src/persistence/entities.ts';
import * as admin from '../../../server/src/services/admin.ts';
import { startArtifactApp, storageTargets, type ArtifactApp, type ArtifactClient, type StorageTarget } from '../../support/artifacts.ts';
import {
  alias,
  aliases,
  createModel,
  createVersion,
  expectProblem,
  expectStatus,
  history,
  reviews,
  version,
  workflowUsers,
  type ModelVersion,
  type WorkflowUsers,
} from './helpers.ts';

const ROLES = ['owner', 'orgAdmin', 'spaceAdmin', 'editor', 'viewer', 'granted', 'stranger'] as const;
type Role = (typeof ROLES)[number];
const OPS = ['listAliases', 'getAlias', 'history', 'setAlias', 'deleteAlias', 'getVersion', 'artifactsByVersion', 'listReviews', 'review'] as const;
type Op = (typeof OPS)[number];

const READ_OK = { listAliases: 200, getAlias: 200, history: 200, getVersion: 200, artifactsByVersion: 200, listReviews: 200 };
const MATRIX: Record<Role, Record<Op, number>> = {
  owner: { ...READ_OK, setAlias: 200, deleteAlias: 204, review: 201 },
  orgAdmin: { ...READ_OK, setAlias: 200, deleteAlias: 204, review: 201 },
  spaceAdmin: { ...READ_OK, setAlias: 200, deleteAlias: 204, review: 201 },
  editor: { ...READ_OK, setAlias: 200, deleteAlias: 204, review: 403 },
  viewer: { ...READ_OK, setAlias: 403, deleteAlias: 403, review: 403 },
  granted: { ...READ_OK, setAlias: 200, deleteAlias: 204, review: 403 },
  stranger: { listAliases: 404, getAlias: 404, history: 404, getVersion: 404, artifactsByVersion: 404, listReviews: 404, setAlias: 404, deleteAlias: 404, review: 404 },
};

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`workflow permissions on ${factory.name}`, () => {
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

    const client = (role: Role): ArtifactClient => u[role];

    /** A fresh product with two versions made by the editor (so every reviewer may approve), `staging` on v1, granted to `granted`. */
    async function subject() {
      const m = await createModel(u.owner);
      await admin.grant(app.em(), { email: u.grantedEmail, productId: m.id, access: 'edit' });
      const v1 = await createVersion(u.editor, m.id);
      const v2 = await createVersion(u.editor, m.id);
      expectStatus(await u.owner.request('PUT', alias(m.id, 'staging'), { body: { version_id: v1.id } }), 201);
      return { pid: m.id, v1, v2 };
    }

    const run: Record<Op, (role: Role, status: number) => Promise<void>> = {
      async listAliases(role, status) {
        const { pid } = await subject();
        const res = await client(role).request('GET', aliases(pid));
        if (status !== 200) return void expectProblem(res, status);
        expect(expectStatus<{ name: string }[]>(res, 200).map((a) => a.name)).toEqual(['staging']);
      },
      async getAlias(role, status) {
        const { pid, v1 } = await subject();
        const res = await client(role).request('GET', alias(pid, 'staging'));
        if (status !== 200) return void expectProblem(res, status);
        expect(expectStatus<{ version_id: string }>(res, 200).version_id).toBe(v1.id);
        expect(res.headers.get('etag')).toMatch(/^"/);
      },
      async history(role, status) {
        const { pid } = await subject();
        const res = await client(role).request('GET', history(pid, 'staging'));
        if (status !== 200) return void expectProblem(res, status);
        expect(expectStatus<unknown[]>(res, 200)).toHaveLength(1);
      },
      async setAlias(role, status) {
        const { pid, v2 } = await subject();
        const before = await app.em().count(AliasChange, {});
        const res = await client(role).request('PUT', alias(pid, 'staging'), { body: { version_id: v2.id } });
        if (status !== 200) {
          expectProblem(res, status, status === 403 ? 'forbidden' : 'not_found');
          expect(await app.em().count(AliasChange, {})).toBe(before);
          return;
        }
        expect(expectStatus<{ version_id: string; updated_by_id: string }>(res, 200).version_id).toBe(v2.id);
      },
      async deleteAlias(role, status) {
        const { pid } = await subject();
        const res = await client(role).request('DELETE', alias(pid, 'staging'));
        if (status !== 204) {
          expectProblem(res, status);
          expectStatus(await u.owner.request('GET', alias(pid, 'staging')), 200);
          return;
        }
        expectStatus(res, 204);
        expectProblem(await u.owner.request('GET', alias(pid, 'staging')), 404);
      },
      async getVersion(role, status) {
        const { pid, v1 } = await subject();
        const res = await client(role).request('GET', version(pid, 'staging'));
        if (status !== 200) return void expectProblem(res, status);
        expect(expectStatus<ModelVersion>(res, 200).id).toBe(v1.id);
      },
      async artifactsByVersion(role, status) {
        const { pid } = await subject();
        const res = await client(role).request('GET', `/catalog/products/${pid}/model-artifacts?version=staging`);
        if (status !== 200) return void expectProblem(res, status);
        expect(expectStatus<unknown[]>(res, 200)).toEqual([]);
      },
      async listReviews(role, status) {
        const { pid, v1 } = await subject();
        expectStatus(await u.owner.request('POST', reviews(pid, v1.id), { body: { decision: 'approved' } }), 201);
        const res = await client(role).request('GET', reviews(pid, v1.id));
        if (status !== 200) return void expectProblem(res, status);
        expect(expectStatus<{ decision: string }[]>(res, 200).map((r) => r.decision)).toEqual(['approved']);
      },
      async review(role, status) {
        const { pid, v1 } = await subject();
        const before = await app.em().count(VersionReview, {});
        const res = await client(role).request('POST', reviews(pid, v1.id), { body: { decision: 'approved' } });
        if (status !== 201) {
          expectProblem(res, status, status === 403 ? 'review_forbidden' : 'not_found');
          expect(await app.em().count(VersionReview, {})).toBe(before);
          expect(expectStatus<ModelVersion>(await u.owner.request('GET', version(pid, v1.id)), 200).approval_status).toBe('pending');
          return;
        }
        expectStatus(res, 201);
        expect(expectStatus<ModelVersion>(await u.owner.request('GET', version(pid, v1.id)), 200).approval_status).toBe('approved');
      },
    };

    for (const role of ROLES) {
      it(`${role}: ${OPS.map((op) => `${op} ${MATRIX[role][op]}`).join(', ')}`, async () => {
        for (const op of OPS) await run[op](role, MATRIX[role][op]);
      });
    }
  });
}
