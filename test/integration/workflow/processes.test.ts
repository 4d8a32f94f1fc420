/**
 * Two server processes on one database (fs + SQLite in one data dir; S3 + PostgreSQL) moving the
 * same alias at once: every move lands in the history, in order, each with its true predecessor
 * (no lost update); with the same If-Match exactly one of the two processes wins.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactClient, startArtifactServer, storageTargets, tempDir, type StorageTarget } from '../../support/artifacts.ts';
import type { StartedServer } from '../../support/server.ts';
import { alias, createModel, createVersion, expectStatus, history, type Alias, type AliasChange } from './helpers.ts';

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`two processes moving one alias on ${factory.name}`, () => {
    let target: StorageTarget;
    const servers: StartedServer[] = [];
    let dir: string;
    let a: ArtifactClient;
    let b: ArtifactClient;

    beforeAll(async () => {
      target = await factory.create!();
      dir = tempDir('mr-alias-proc-');
      const first = await startArtifactServer(target, dir);
      servers.push(first);
      const second = await startArtifactServer(target, dir);
      servers.push(second);
      a = new ArtifactClient(first.baseUrl, first.apiKey);
      b = new ArtifactClient(second.baseUrl, first.apiKey);
    });
    afterAll(async () => {
      for (const s of servers) await s.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      await target?.close();
    });

    it('concurrent moves through both processes: all recorded, in order, chained; the alias ends where the newest entry says', async () => {
      const m = await createModel(a);
      const vs = [await createVersion(a, m.id), await createVersion(b, m.id), await createVersion(a, m.id)];
      const moves = 16;
      const results = await Promise.all(
        Array.from({ length: moves }, (_, i) => (i % 2 === 0 ? a : b).request('PUT', alias(m.id, 'production'), { body: { version_id: vs[i % 3]!.id, reason: `move ${i}` } })),
      );
      expect(results.map((r) => r.status).sort()).toEqual([...Array(moves - 1).fill(200), 201].sort());
      const changes = expectStatus<AliasChange[]>(await b.request('GET', history(m.id, 'production')), 200);
      expect(changes).toHaveLength(moves);
      expect(new Set(changes.map((c) => c.reason))).toEqual(new Set(Array.from({ length: moves }, (_, i) => `move ${i}`)));
      for (let i = 0; i < changes.length - 1; i++) expect(changes[i]!.previous_version_id).toBe(changes[i + 1]!.version_id);
      expect(changes.at(-1)!.previous_version_id).toBeNull();
      const now = expectStatus<Alias>(await a.request('GET', alias(m.id, 'production')), 200);
      expect(now.version_id).toBe(changes[0]!.version_id);
    });

    it('the same If-Match sent to both processes at once: exactly one wins, the other gets 412', async () => {
      const m = await createModel(a);
      const [v1, v2, v3] = [await createVersion(a, m.id), await createVersion(a, m.id), await createVersion(a, m.id)];
      await a.request('PUT', alias(m.id, 'production'), { body: { version_id: v1.id } });
      for (let round = 0; round < 4; round++) {
        const etag = (await a.request('GET', alias(m.id, 'production'))).headers.get('etag')!;
        const [ra, rb] = await Promise.all([
          a.request('PUT', alias(m.id, 'production'), { body: { version_id: v2.id }, headers: { 'If-Match': etag } }),
          b.request('PUT', alias(m.id, 'production'), { body: { version_id: v3.id }, headers: { 'If-Match': etag } }),
        ]);
        expect([ra.status, rb.status].sort()).toEqual([200, 412]);
      }
      expect(expectStatus<AliasChange[]>(await b.request('GET', history(m.id, 'production')), 200)).toHaveLength(5);
    });
  });
}
