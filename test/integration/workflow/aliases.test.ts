/**
 * Aliases and version references on fs + SQLite and S3 + PostgreSQL: set (201) and move (200),
 * ETags and If-Match compare-and-set, history (newest first, deletions with version_id null),
 * deletion, the bad inputs, concurrent writers, versions carrying their aliases, and a version
 * named by id, number or alias (one version and the artifact list filter).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasChange as AliasChangeRow, ProductAlias } from '../../../server/src/persistence/entities.ts';
import { startArtifactApp, storageTargets, type ArtifactApp, type StorageTarget } from '../../support/artifacts.ts';
import {
  alias,
  aliases,
  createModel,
  createVersion,
  expectProblem,
  expectStatus,
  history,
  uploadArtifact,
  version,
  type Alias,
  type AliasChange,
  type ModelArtifact,
  type ModelVersion,
} from './helpers.ts';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`aliases and version references on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    async function modelWithVersions(count = 2) {
      const m = await createModel(app.client);
      const vs: ModelVersion[] = [];
      for (let i = 0; i < count; i++) vs.push(await createVersion(app.client, m.id));
      return { pid: m.id, vs };
    }

    it('PUT creates (201) then moves (200) an alias; GET, the list, ETags and the versions follow', async () => {
      const c = app.client;
      const { pid, vs } = await modelWithVersions(2);
      const created = await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[0]!.id, reason: 'first release' } });
      const a1 = expectStatus<Alias>(created, 201);
      expect(a1).toEqual({
        name: 'production',
        product_id: pid,
        version_id: vs[0]!.id,
        version_number: 1,
        updated_by_id: app.owner.id,
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
      const etag1 = created.headers.get('etag')!;
      expect(etag1).toMatch(/^"[^"]+"$/);

      const read = await c.request('GET', alias(pid, 'production'));
      expect(expectStatus<Alias>(read, 200)).toEqual(a1);
      expect(read.headers.get('etag')).toBe(etag1);

      const moved = await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[1]!.id } });
      const a2 = expectStatus<Alias>(moved, 200);
      expect(a2).toMatchObject({ version_id: vs[1]!.id, version_number: 2, created_at: a1.created_at });
      expect(Date.parse(a2.updated_at)).toBeGreaterThanOrEqual(Date.parse(a1.updated_at));
      const etag2 = moved.headers.get('etag')!;
      expect(etag2).not.toBe(etag1);

      expectStatus(await c.request('PUT', alias(pid, 'champion'), { body: { version_id: vs[1]!.id } }), 201);
      expectStatus(await c.request('PUT', alias(pid, 'a-shadow_1'), { body: { version_id: vs[0]!.id } }), 201);
      const list = expectStatus<Alias[]>(await c.request('GET', aliases(pid)), 200);
      expect(list.map((a) => [a.name, a.version_number])).toEqual([
        ['a-shadow_1', 1],
        ['champion', 2],
        ['production', 2],
      ]);

      // Versions carry their aliases, ascending.
      const listed = expectStatus<ModelVersion[]>(await c.request('GET', `/catalog/products/${pid}/versions`), 200);
      expect(listed.map((v) => [v.version_number, v.aliases])).toEqual([
        [2, ['champion', 'production']],
        [1, ['a-shadow_1']],
      ]);
      expect(expectStatus<ModelVersion>(await c.request('GET', version(pid, 'production')), 200).aliases).toEqual(['champion', 'production']);
    });

    it('DELETE removes an alias (204; unknown → 404); the history keeps every change, newest first, a deletion with version_id null', async () => {
      const c = app.client;
      const { pid, vs } = await modelWithVersions(2);
      expectStatus(await c.request('PUT', alias(pid, 'staging'), { body: { version_id: vs[0]!.id, reason: 'candidate' } }), 201);
      expectStatus(await c.request('PUT', alias(pid, 'staging'), { body: { version_id: vs[1]!.id, reason: 'retrained' } }), 200);
      expectStatus(await c.request('DELETE', alias(pid, 'staging')), 204);
      expectProblem(await c.request('GET', alias(pid, 'staging')), 404, 'not_found');
      expectProblem(await c.request('DELETE', alias(pid, 'staging')), 404, 'not_found');
      expectProblem(await c.request('DELETE', alias(pid, 'never-set')), 404, 'not_found');
      expect(expectStatus<Alias[]>(await c.request('GET', aliases(pid)), 200)).toEqual([]);
      expect(expectStatus<ModelVersion>(await c.request('GET', version(pid, '2')), 200).aliases).toEqual([]);
      expectProblem(await c.request('GET', version(pid, 'staging')), 404);

      // Set again after the deletion: new (201), with a fresh created_at.
      const again = expectStatus<Alias>(await c.request('PUT', alias(pid, 'staging'), { body: { version_id: vs[0]!.id } }), 201);
      const changes = expectStatus<AliasChange[]>(await c.request('GET', history(pid, 'staging')), 200);
      expect(changes.map((h) => [h.version_id, h.previous_version_id, h.reason])).toEqual([
        [vs[0]!.id, null, null],
        [null, vs[1]!.id, null],
        [vs[1]!.id, vs[0]!.id, 'retrained'],
        [vs[0]!.id, null, 'candidate'],
      ]);
      for (const h of changes) expect(h).toMatchObject({ alias: 'staging', changed_by_id: app.owner.id });
      const times = changes.map((h) => Date.parse(h.changed_at));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
      expect(again.created_at).toBe(changes[0]!.changed_at);
      expectProblem(await c.request('GET', history(pid, 'never-set')), 404, 'not_found');
    });

    it('If-Match makes PUT and DELETE a compare-and-set: a stale or unknown ETag → 412 precondition_failed, nothing changes', async () => {
      const c = app.client;
      const { pid, vs } = await modelWithVersions(3);
      // If-Match on an alias that does not exist yet.
      expectProblem(await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[0]!.id }, headers: { 'If-Match': '*' } }), 412, 'precondition_failed');
      const first = await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[0]!.id } });
      const etag1 = first.headers.get('etag')!;
      const second = await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[1]!.id }, headers: { 'If-Match': etag1 } });
      expectStatus(second, 200);
      const etag2 = second.headers.get('etag')!;

      const stale = await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[2]!.id }, headers: { 'If-Match': etag1 } });
      expect(expectProblem(stale, 412, 'precondition_failed').detail).toContain(etag2);
      expectProblem(await c.request('DELETE', alias(pid, 'production'), { headers: { 'If-Match': etag1 } }), 412, 'precondition_failed');
      // A weak tag never matches strongly.
      expectProblem(await c.request('DELETE', alias(pid, 'production'), { headers: { 'If-Match': `W/${etag2}` } }), 412);
      expect(expectStatus<Alias>(await c.request('GET', alias(pid, 'production')), 200).version_id).toBe(vs[1]!.id);
      expect(expectStatus<AliasChange[]>(await c.request('GET', history(pid, 'production')), 200)).toHaveLength(2);

      // One of a list of tags, or `*`, matches.
      expectStatus(await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[2]!.id }, headers: { 'If-Match': `"nope", ${etag2}` } }), 200);
      expectStatus(await c.request('DELETE', alias(pid, 'production'), { headers: { 'If-Match': '*' } }), 204);
    });

    it('two PUTs with the same If-Match at once: exactly one wins, the other gets 412', async () => {
      const c = app.client;
      const { pid, vs } = await modelWithVersions(3);
      const etag = (await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[0]!.id } })).headers.get('etag')!;
      for (let round = 0; round < 3; round++) {
        const current = (await c.request('GET', alias(pid, 'production'))).headers.get('etag')!;
        const results = await Promise.all(
          [vs[1]!, vs[2]!].map((v) => c.request('PUT', alias(pid, 'production'), { body: { version_id: v.id }, headers: { 'If-Match': current } })),
        );
        expect(results.map((r) => r.status).sort()).toEqual([200, 412]);
        const winner = results.find((r) => r.status === 200)!;
        const now = await c.request('GET', alias(pid, 'production'));
        expect((now.body as Alias).version_id).toBe((winner.body as Alias).version_id);
        expect(now.headers.get('etag')).toBe(winner.headers.get('etag'));
      }
      expect(etag).toBeTruthy();
      expect(expectStatus<AliasChange[]>(await c.request('GET', history(pid, 'production')), 200)).toHaveLength(4);
    });

    it('concurrent moves without If-Match all land: the history has each, in order, each with its true predecessor', async () => {
      const c = app.client;
      const { pid, vs } = await modelWithVersions(3);
      const writers = 12;
      const results = await Promise.all(
        Array.from({ length: writers }, (_, i) => c.request('PUT', alias(pid, 'champion'), { body: { version_id: vs[i % 3]!.id, reason: `move ${i}` } })),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      expect(results.filter((r) => r.status === 200)).toHaveLength(writers - 1);
      const changes = expectStatus<AliasChange[]>(await c.request('GET', history(pid, 'champion')), 200);
      expect(changes).toHaveLength(writers);
      expect(new Set(changes.map((h) => h.reason)).size).toBe(writers);
      // A chain: each change starts where the one before it (older, next in the list) ended.
      for (let i = 0; i < changes.length - 1; i++) expect(changes[i]!.previous_version_id).toBe(changes[i + 1]!.version_id);
      expect(changes.at(-1)!.previous_version_id).toBeNull();
      const now = expectStatus<Alias>(await c.request('GET', alias(pid, 'champion')), 200);
      expect(now.version_id).toBe(changes[0]!.version_id);
      const row = await app.em().findOneOrFail(ProductAlias, { product: pid, name: 'champion' });
      expect(row.row_version).toBe(writers);
      expect((await app.em().find(AliasChangeRow, { alias: row.id })).map((h) => h.sequence).sort((a, b) => a - b)).toEqual(
        Array.from({ length: writers }, (_, i) => i + 1),
      );
    });

    it('bad input: a version of another product, an unknown or malformed version id, a bad name, a long reason → 422; nothing is written', async () => {
      const c = app.client;
      const { pid, vs } = await modelWithVersions(1);
      const other = await modelWithVersions(1);
      const put = (name: string, body: unknown) => c.request('PUT', alias(pid, name), { body });
      const e1 = expectProblem(await put('production', { version_id: other.vs[0]!.id }), 422, 'validation_error');
      expect(e1.errors!.map((e) => e.loc.join('.'))).toEqual(['body.version_id']);
      expectProblem(await put('production', { version_id: randomUUID() }), 422, 'validation_error');
      expectProblem(await put('production', { version_id: 'not-a-uuid' }), 422);
      expectProblem(await put('production', {}), 422);
      expectProblem(await put('production', { version_id: vs[0]!.id, colour: 'red' }), 422);
      expectProblem(await put('production', { version_id: vs[0]!.id, reason: 'x'.repeat(1001) }), 422);
      for (const bad of ['Production', 'prod%20uction', 'a..b', '..x', 'x..', '1st', '_x', 'x'.repeat(64), 'caf%C3%A9', 'a.b']) {
        const res = await put(bad, { version_id: vs[0]!.id });
        expectProblem(res, 422, 'validation_error');
        expectProblem(await c.request('GET', alias(pid, bad)), 422);
        expectProblem(await c.request('DELETE', alias(pid, bad)), 422);
        expectProblem(await c.request('GET', history(pid, bad)), 422);
      }
      expectStatus(await put('x'.repeat(63), { version_id: vs[0]!.id }), 201);
      expect((await app.em().find(ProductAlias, { product: pid })).map((a) => a.name)).toEqual(['x'.repeat(63)]);
      // Malformed JSON and a wrong media type.
      expectProblem(await c.request('PUT', alias(pid, 'production'), { body: '{"version_id": ', headers: { 'Content-Type': 'application/json' } }), 400);
      expectProblem(await c.request('PUT', alias(pid, 'production'), { body: 'version_id=x', headers: { 'Content-Type': 'text/plain' } }), 415);
      // An unknown product.
      expectProblem(await c.request('PUT', alias(randomUUID(), 'production'), { body: { version_id: vs[0]!.id } }), 404);
      expectProblem(await c.request('GET', aliases('not-a-uuid')), 404);
    });

    it('a version is named by its UUID, its number or an alias; anything else → 404', async () => {
      const c = app.client;
      const { pid, vs } = await modelWithVersions(2);
      const other = await modelWithVersions(1);
      expectStatus(await c.request('PUT', alias(pid, 'production'), { body: { version_id: vs[0]!.id } }), 201);
      const byId = expectStatus<ModelVersion>(await c.request('GET', version(pid, vs[1]!.id)), 200);
      expect(byId).toMatchObject({ id: vs[1]!.id, version_number: 2, approval_status: 'pending', aliases: [], created_by_id: app.owner.id });
      expect(expectStatus<ModelVersion>(await c.request('GET', version(pid, vs[1]!.id.toUpperCase())), 200).id).toBe(vs[1]!.id);
      expect(expectStatus<ModelVersion>(await c.request('GET', version(pid, '1')), 200).id).toBe(vs[0]!.id);
      expect(expectStatus<ModelVersion>(await c.request('GET', version(pid, 'production')), 200)).toMatchObject({ id: vs[0]!.id, aliases: ['production'] });
      for (const unknown of ['3', '0', '01', '-1', '99999999999', 'staging', randomUUID(), other.vs[0]!.id, 'Not%20A%20Ref']) {
        expectProblem(await c.request('GET', version(pid, unknown)), 404, 'not_found');
      }
      // The artifact list, filtered by a version reference.
      const a1 = await uploadArtifact(c, pid, 'model_binary', vs[0]!.id);
      const a2 = await uploadArtifact(c, pid, 'model_card', vs[1]!.id);
      const a3 = await uploadArtifact(c, pid, 'tokenizer');
      const list = async (ref?: string) =>
        expectStatus<ModelArtifact[]>(await c.request('GET', `/catalog/products/${pid}/model-artifacts${ref === undefined ? '' : `?version=${encodeURIComponent(ref)}`}`), 200).map((a) => a.id);
      expect(await list()).toEqual([a3.id, a2.id, a1.id]);
      expect(await list('production')).toEqual([a1.id]);
      expect(await list('2')).toEqual([a2.id]);
      expect(await list(vs[1]!.id)).toEqual([a2.id]);
      expectProblem(await c.request('GET', `/catalog/products/${pid}/model-artifacts?version=staging`), 404, 'not_found');
      expectProblem(await c.request('GET', `/catalog/products/${pid}/model-artifacts?version=7`), 404);
    });
  });
}
