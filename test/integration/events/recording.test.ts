/**
 * The audit trail as changes write it (services/events.ts): every change writes exactly one
 * event, in its own transaction, with the scope and the subject's public fields; a change that
 * fails or rolls back writes none; `seq` follows commit order within a space under concurrent
 * writers. On filesystem + SQLite and on S3 + PostgreSQL. The read API has its own suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Event, Product, Space } from '../../../server/src/persistence/entities.ts';
import { dialectOf } from '../../../server/src/persistence/orm.ts';
import { recordEvent, type EventInput } from '../../../server/src/services/events.ts';
import { randomData, sha256, startArtifactApp, storageTargets, type ArtifactApp, type StorageTarget } from '../../support/artifacts.ts';

const models = (space = 'default') => `/catalog/spaces/${space}/model-repository/models`;
const model = (id: string) => `/catalog/products/${id}/model-repository`;

function form(fields: Record<string, string>, file: { bytes: Buffer; name: string }): FormData {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  body.append('file', new Blob([new Uint8Array(file.bytes)], { type: 'application/octet-stream' }), file.name);
  return body;
}

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`events written by changes on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;
    let spaceId: string;
    let orgId: string;

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
      const space = await app.em().findOneOrFail(Space, { slug: 'default' });
      spaceId = space.id;
      orgId = space.organization.id;
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    /**
     * artifact.created carries the artifact as its transaction stored it; the response comes after
     * the inspection that follows the commit, which may have touched updated_at since.
     */
    const expectArtifactAsStored = (event: Event, response: Record<string, unknown>) => {
      expect(event.data).toEqual({ ...response, updated_at: event.data.updated_at });
      expect(event.data.created_at).toBe(event.occurred_at.toISOString());
      expect(event.data.created_at).toBe(response.created_at);
      expect(Date.parse(String(event.data.updated_at))).toBeLessThanOrEqual(Date.parse(String(response.updated_at)));
    };

    /** All events of a product, in seq order. */
    const eventsOf = (productId: string) => app.em().find(Event, { product_id: productId }, { orderBy: { seq: 'asc' } });
    const allEventCount = () => app.em().count(Event, {});

    const createModel = async (body: Record<string, unknown>) => {
      const res = await app.client.request('POST', models(), { body });
      expect(res.status, res.text).toBe(201);
      return res.body as Record<string, unknown> & { id: string };
    };
    const patch = (id: string, body: unknown) => app.client.request('PATCH', model(id), { body });

    it('model create: one model.created with the scope, the actor and the summary as data', async () => {
      const created = await createModel({ name: 'Churn Model', description: 'Predicts churn.', input_schema: { type: 'object' } });
      const events = await eventsOf(created.id);
      expect(events).toHaveLength(1);
      const [e] = events;
      expect(e).toMatchObject({
        type: 'model.created',
        actor_id: app.owner.id,
        organization_id: orgId,
        space_id: spaceId,
        product_id: created.id,
        subject_id: created.id,
      });
      expect(e!.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(e!.data).toEqual(created);
      expect(e!.occurred_at.toISOString()).toBe(created.created_at);
    });

    it('model PATCH: one model.updated whose changes name exactly the fields whose value changed', async () => {
      const created = await createModel({ name: 'Diff Model', description: 'old', input_schema: { type: 'object', required: ['a'] } });
      const res = await patch(created.id, {
        name: 'Diff Model', // same value: not a change
        description: 'new',
        provider: null, // null → null: not a change
        framework: 'pytorch',
        input_schema: { required: ['a'], type: 'object' }, // same content, other key order: not a change
      });
      expect(res.status, res.text).toBe(200);
      const events = await eventsOf(created.id);
      expect(events.map((e) => e.type)).toEqual(['model.created', 'model.updated']);
      const updated = events[1]!;
      expect(updated.data.changes).toEqual({ description: { from: 'old', to: 'new' }, framework: { from: null, to: 'pytorch' } });
      const { changes: _changes, ...summary } = updated.data;
      expect(summary).toEqual(res.body);
      expect(updated).toMatchObject({ actor_id: app.owner.id, subject_id: created.id, space_id: spaceId, organization_id: orgId });

      const schema = await patch(created.id, { input_schema: { type: 'object', required: ['a', 'b'] }, output_schema: null });
      expect(schema.status).toBe(200);
      const after = await eventsOf(created.id);
      expect(after).toHaveLength(3);
      expect(after[2]!.data.changes).toEqual({
        input_schema: { from: { type: 'object', required: ['a'] }, to: { type: 'object', required: ['a', 'b'] } },
      });
    });

    it('a PATCH that changes nothing writes no event', async () => {
      const created = await createModel({ name: 'Still Model', description: 'same' });
      const res = await patch(created.id, { name: 'Still Model', description: 'same' });
      expect(res.status).toBe(200);
      expect((await eventsOf(created.id)).map((e) => e.type)).toEqual(['model.created']);
    });

    it('archiving writes model.archived (restoring is a model.updated)', async () => {
      const created = await createModel({ name: 'Archive Model' });
      expect((await patch(created.id, { is_archived: true, description: 'retired' })).status).toBe(200);
      expect((await patch(created.id, { is_archived: false })).status).toBe(200);
      const events = await eventsOf(created.id);
      expect(events.map((e) => e.type)).toEqual(['model.created', 'model.archived', 'model.updated']);
      expect(events[1]!.data).toMatchObject({
        is_archived: true,
        changes: { is_archived: { from: false, to: true }, description: { from: null, to: 'retired' } },
      });
      expect(events[2]!.data.changes).toEqual({ is_archived: { from: true, to: false } });
    });

    it('a failed create or PATCH writes no event (and changes nothing)', async () => {
      const first = await createModel({ name: 'Taken', slug: 'taken' });
      const second = await createModel({ name: 'Other', slug: 'other' });
      const before = await allEventCount();
      const dup = await app.client.request('POST', models(), { body: { name: 'Taken again', slug: 'taken' } });
      expect(dup.status).toBe(409);
      const clash = await patch(second.id, { slug: 'taken', description: 'must not stick' });
      expect(clash.status).toBe(409);
      const invalid = await patch(first.id, { deployment_status: 'everywhere' });
      expect(invalid.status).toBe(422);
      expect(await allEventCount()).toBe(before);
      const row = await app.em().findOneOrFail(Product, { id: second.id });
      expect(row.description).toBeNull();
    });

    it('version create: one version.created with the version as data', async () => {
      const created = await createModel({ name: 'Versioned' });
      const res = await app.client.request('POST', `/catalog/products/${created.id}/versions`, { body: { version_type: 'major', notes: 'first' } });
      expect(res.status, res.text).toBe(201);
      const events = await eventsOf(created.id);
      expect(events.map((e) => e.type)).toEqual(['model.created', 'version.created']);
      expect(events[1]).toMatchObject({ subject_id: res.body.id, actor_id: app.owner.id, space_id: spaceId, organization_id: orgId });
      expect(events[1]!.data).toEqual(res.body);
      // A refused version (bad date) writes nothing.
      const bad = await app.client.request('POST', `/catalog/products/${created.id}/versions`, { body: { release_date: '2026-02-30' } });
      expect(bad.status).toBe(422);
      expect(await eventsOf(created.id)).toHaveLength(2);
    });

    it('chunked upload completion: one artifact.created; completing again writes no second one', async () => {
      const pid = (await createModel({ name: 'Chunked' })).id;
      const data = randomData(target.chunkSize + 100);
      const { uploadId, artifact } = await app.client.upload(pid, data, { artifact_kind: 'weights', is_current: true });
      const again = await app.client.complete(pid, uploadId);
      expect(again.status).toBe(200);
      const events = await eventsOf(pid);
      expect(events.map((e) => e.type)).toEqual(['model.created', 'artifact.created']);
      expect(events[1]).toMatchObject({ subject_id: artifact.id, actor_id: app.owner.id, product_id: pid, space_id: spaceId, organization_id: orgId });
      expectArtifactAsStored(events[1]!, artifact);
    });

    it('a completion refused for a wrong digest writes no event', async () => {
      const pid = (await createModel({ name: 'Wrong Digest' })).id;
      const data = randomData(1000);
      const { uploadId } = await app.client.sendAll(pid, data);
      const res = await app.client.complete(pid, uploadId, { sha256: sha256(Buffer.from('something else')) });
      expect(res.status).toBe(422);
      expect((await eventsOf(pid)).map((e) => e.type)).toEqual(['model.created']);
    });

    it('single-request upload: one artifact.created', async () => {
      const pid = (await createModel({ name: 'Multipart Events' })).id;
      const bytes = randomData(5000);
      const res = await app.client.request('POST', `/catalog/products/${pid}/model-artifacts`, {
        body: form({ artifact_kind: 'model_card' }, { bytes, name: 'card.md' }),
      });
      expect(res.status, res.text).toBe(201);
      const events = await eventsOf(pid);
      expect(events.map((e) => e.type)).toEqual(['model.created', 'artifact.created']);
      expect(events[1]).toMatchObject({ subject_id: res.body.id, actor_id: app.owner.id });
      expectArtifactAsStored(events[1]!, res.body);
      // Refused (digest mismatch): no event.
      const bad = await app.client.request('POST', `/catalog/products/${pid}/model-artifacts`, {
        body: form({ sha256: sha256(Buffer.from('x')) }, { bytes, name: 'x.bin' }),
      });
      expect(bad.status).toBe(422);
      expect(await eventsOf(pid)).toHaveLength(2);
    });

    it('artifact delete: one artifact.deleted with the deleted artifact; deleting again writes none', async () => {
      const pid = (await createModel({ name: 'Deleting' })).id;
      const { artifact } = await app.client.upload(pid, randomData(2000), { is_current: true });
      const del = await app.client.request('DELETE', `/catalog/products/${pid}/model-artifacts/${artifact.id}`);
      expect(del.status).toBe(204);
      const again = await app.client.request('DELETE', `/catalog/products/${pid}/model-artifacts/${artifact.id}`);
      expect(again.status).toBe(404);
      const events = await eventsOf(pid);
      expect(events.map((e) => e.type)).toEqual(['model.created', 'artifact.created', 'artifact.deleted']);
      const deleted = events[2]!;
      expect(deleted).toMatchObject({ subject_id: artifact.id, actor_id: app.owner.id, space_id: spaceId });
      expect(deleted.data).toEqual({ ...artifact, status: 'deleted', is_current: false, updated_at: deleted.occurred_at.toISOString() });
    });

    it('an editor is the actor of the changes they make', async () => {
      const editor = await app.userWithRole(`editor-${factory.name}@example.com`, 'editor');
      const res = await editor.request('POST', models(), { body: { name: 'By Editor' } });
      expect(res.status).toBe(201);
      const [e] = await eventsOf(res.body.id);
      const editorId = (await app.em().findOneOrFail(Product, { id: res.body.id })).created_by!.id;
      expect(e!.actor_id).toBe(editorId);
      expect(editorId).not.toBe(app.owner.id);
    });

    describe('recordEvent itself', () => {
      const input = (productId: string): EventInput => ({
        type: 'model.updated',
        actorId: app.owner.id,
        organizationId: orgId,
        spaceId,
        productId,
        subjectId: productId,
        data: { changes: {} },
      });

      it('refuses to write outside a transaction', async () => {
        const pid = (await createModel({ name: 'No Tx' })).id;
        await expect(recordEvent(app.em(), input(pid))).rejects.toThrow(/transaction/);
        expect(await eventsOf(pid)).toHaveLength(1);
      });

      it('a transaction that rolls back after recording leaves neither the change nor the event', async () => {
        const pid = (await createModel({ name: 'Rolled Back' })).id;
        await expect(
          app.em().transactional(async (tx) => {
            await tx.nativeUpdate(Product, { id: pid }, { description: 'never' });
            await recordEvent(tx, input(pid));
            throw new Error('the change fails after its event was written');
          }),
        ).rejects.toThrow(/fails after/);
        expect(await eventsOf(pid)).toHaveLength(1);
        expect((await app.em().findOneOrFail(Product, { id: pid })).description).toBeNull();
      });

      it('returns the event as the API shows it, with its seq', async () => {
        const pid = (await createModel({ name: 'Returned' })).id;
        const recorded = await app.em().transactional((tx) => recordEvent(tx, { ...input(pid), data: { changes: { a: { from: 1, to: 2 } } } }));
        const row = await app.em().findOneOrFail(Event, { id: recorded.event.id });
        expect(recorded.seq).toBe(row.seq);
        expect(recorded.event).toEqual({
          id: row.id,
          type: 'model.updated',
          occurred_at: row.occurred_at.toISOString(),
          actor_id: app.owner.id,
          organization_id: orgId,
          space_id: spaceId,
          product_id: pid,
          subject_id: pid,
          data: { changes: { a: { from: 1, to: 2 } } },
        });
      });
    });

    describe('seq under concurrent writers', () => {
      it('is unique and increasing, and a reader following it never misses an event', async () => {
        const pids = await Promise.all([0, 1, 2, 3].map((i) => createModel({ name: `Concurrent ${i}` }).then((m) => m.id)));
        const start = (await app.em().find(Event, {}, { orderBy: { seq: 'desc' }, limit: 1 }))[0]!.seq;
        // A reader polling "seq > last seen" in the space while the writers run.
        const seen: number[] = [];
        let writing = true;
        const reader = (async () => {
          let last = start;
          for (;;) {
            const stop = !writing; // read once more after the writers finished
            const rows = await app.em().find(Event, { space_id: spaceId, seq: { $gt: last } }, { orderBy: { seq: 'asc' } });
            for (const r of rows) seen.push(r.seq);
            if (rows.length > 0) last = rows[rows.length - 1]!.seq;
            if (stop) return;
            // SQLite queries run synchronously in this process: let the server's sockets in.
            await new Promise((resolve) => setImmediate(resolve));
          }
        })();
        const writes = pids.flatMap((pid, i) => [
          ...[0, 1, 2].map((n) => app.client.request('PATCH', model(pid), { body: { description: `take ${n} of ${i}` } })),
          ...[0, 1].map(() => app.client.request('POST', `/catalog/products/${pid}/versions`, { body: { is_current: true } })),
          app.client.request('POST', models(), { body: { name: `Concurrent new ${i}` } }),
        ]);
        const results = await Promise.all(writes);
        writing = false;
        await reader;
        for (const r of results) expect(r.status, r.text).toBeLessThan(300);

        const rows = await app.em().find(Event, { seq: { $gt: start } }, { orderBy: { seq: 'asc' } });
        expect(rows).toHaveLength(writes.length);
        const seqs = rows.map((r) => r.seq);
        expect(new Set(seqs).size).toBe(seqs.length);
        // The reader saw every event exactly once, in increasing order: none committed behind its back.
        expect(seen).toEqual(seqs);
        // Per product, the versions' events follow their numbering.
        for (const pid of pids) {
          const numbers = rows.filter((r) => r.product_id === pid && r.type === 'version.created').map((r) => r.data.version_number);
          expect(numbers).toEqual([1, 2]);
        }
      });

      it.runIf(factory.name === 's3+postgresql')('PostgreSQL: a second writer in the space waits for the first to commit and gets the next seq', async () => {
        const pid = (await createModel({ name: 'Lock Order' })).id;
        const input: EventInput = { type: 'model.updated', actorId: app.owner.id, organizationId: orgId, spaceId, productId: pid, subjectId: pid, data: {} };
        expect(dialectOf(app.orm)).toBe('postgresql');
        let releaseFirst!: () => void;
        const firstMayCommit = new Promise<void>((resolve) => (releaseFirst = resolve));
        let firstRecorded!: () => void;
        const firstHasRecorded = new Promise<void>((resolve) => (firstRecorded = resolve));
        const order: string[] = [];
        const first = app.em().transactional(async (tx) => {
          const e = await recordEvent(tx, input);
          firstRecorded();
          await firstMayCommit;
          order.push('first commits');
          return e.seq;
        });
        await firstHasRecorded;
        const second = app.em().transactional(async (tx) => {
          const e = await recordEvent(tx, input);
          order.push('second recorded');
          return e.seq;
        });
        // Wait until the second writer is blocked on a lock (seen by PostgreSQL itself), then let the first commit.
        const waiting = async () =>
          Number((await app.em().execute<{ n: string }[]>(`select count(*) as n from pg_locks where not granted`))[0]!.n) > 0;
        for (let i = 0; !(await waiting()); i++) {
          if (i > 2000) throw new Error('the second writer never waited for the first');
          await new Promise((r) => setTimeout(r, 5));
        }
        releaseFirst();
        const [a, b] = await Promise.all([first, second]);
        expect(order).toEqual(['first commits', 'second recorded']);
        expect(b).toBeGreaterThan(a);
      });
    });
  });
}
