/**
 * Downloads that fail — the client going away mid-stream, in the middle of a range, before the
 * first byte — leave no file handle (fs) or socket (S3, streamed through) open, on filesystem +
 * SQLite and S3 + PostgreSQL: the process's open descriptors (/proc/self/fd) come back to where
 * they were.
 */
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, MiB, randomData, startArtifactApp, storageTargets, waitFor, type ArtifactApp, type StorageTarget } from '../../support/artifacts.ts';

const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;

/** GETs `path`, reads until `after` bytes arrived (or the headers, when 0), then drops the connection. */
function abortedDownload(origin: string, path: string, key: string, after: number, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${origin}${API}${path}`, { headers: { Authorization: `Bearer ${key}`, ...headers }, agent: false }, (res) => {
      let received = 0;
      if (after === 0) {
        req.destroy();
        return resolve(res.statusCode ?? 0);
      }
      res.on('data', (d: Buffer) => {
        received += d.length;
        if (received >= after) {
          req.destroy();
          resolve(res.statusCode ?? 0);
        }
      });
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
  });
}

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`download handles on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;
    let path: string;

    beforeAll(async () => {
      target = await factory.create!();
      // S3 streamed through the server (proxy), so the server holds a connection per download.
      app = await startArtifactApp(target, { S3_DOWNLOAD_MODE: 'proxy' });
      const pid = await app.client.createModel('Handles');
      const { artifact } = await app.client.upload(pid, randomData(12 * MiB));
      path = `/catalog/products/${pid}/model-artifacts/${artifact.id}/download`;
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    it('closes what a download opened when its client goes away, however far it got', async () => {
      // Warm up: connection pools, lazily opened files.
      expect((await app.client.download(path.split('/')[3]!, path.split('/')[5]!)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
      const before = openDescriptors();
      for (let i = 0; i < 15; i++) {
        expect(await abortedDownload(app.origin, path, app.owner.key, 1 * MiB)).toBe(200);
        expect(await abortedDownload(app.origin, path, app.owner.key, 64 * 1024, { Range: 'bytes=2000000-9000000' })).toBe(206);
        expect(await abortedDownload(app.origin, path, app.owner.key, 0)).toBe(200);
      }
      // Every failed download's descriptors are closed (the clients' sockets too, once the server saw them go).
      const settled = await waitFor(() => (openDescriptors() <= before + 2 ? openDescriptors() : null), 15_000, 50);
      expect(settled).toBeLessThanOrEqual(before + 2);
    });

    it('closes them when sending fails before the first byte or the bytes end early', async () => {
      const pid = await app.client.createModel('Handles, failing');
      const data = randomData(3 * MiB);
      const { artifact } = await app.client.upload(pid, data);
      const failing = `/catalog/products/${pid}/model-artifacts/${artifact.id}/download`;
      // A content type stored before the rule (no header can carry it): once made sending fail
      // after the file was opened.
      await app.em().getConnection().execute('update model_artifacts set content_type = ? where id = ?', ['text/plain; x=\u2603', artifact.id]);
      expect((await app.client.download(pid, artifact.id)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
      const before = openDescriptors();
      for (let i = 0; i < 10; i++) {
        const res = await app.client.download(pid, artifact.id);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('application/octet-stream');
      }
      if (target.backend === 'fs') {
        // Bytes that end before the recorded size: the download breaks off midway.
        const file = `${app.config.storageDir}/artifacts/${pid}/${artifact.id}`;
        fs.truncateSync(file, MiB);
        for (let i = 0; i < 10; i++) await expect(app.client.download(pid, artifact.id)).rejects.toThrow();
      }
      const settled = await waitFor(() => (openDescriptors() <= before + 2 ? openDescriptors() : null), 15_000, 50);
      expect(settled).toBeLessThanOrEqual(before + 2);
    });
  });
}
