/**
 * Connections of refused chunks and stalled bodies, on filesystem + SQLite and on S3 + PostgreSQL:
 * a refused chunk's connection closes as soon as its client has finished sending (the linger never
 * keeps it open for its whole time), and bodies that stop arriving are cut off by the idle timeout.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../server/src/config.ts';
import { applyServerTimeouts } from '../../../server/src/http/timeouts.ts';
import { UploadChunk } from '../../../server/src/persistence/entities.ts';
import { API, MiB, randomData, rawConnection, startArtifactApp, storageTargets, waitFor, type ArtifactApp, type StorageTarget } from '../../support/artifacts.ts';

/** No bound of its own: the test's timeout is the limit. */
const until = (check: () => boolean) => waitFor(check, Number.POSITIVE_INFINITY);

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`connections on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;

    beforeAll(async () => {
      target = await factory.create!();
      // A linger far longer than any test: a connection that closes did so because its client ended.
      app = await startArtifactApp(target, { REFUSED_BODY_LINGER_SECONDS: '600', BODY_IDLE_TIMEOUT_SECONDS: '2' });
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    async function session(total: number): Promise<{ pid: string; id: string }> {
      const pid = await app.client.createModel(`Connections ${Math.random()}`);
      const init = await app.client.initiate(pid, { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: total });
      expect(init.status).toBe(201);
      return { pid, id: init.body.id };
    }

    const head = (pid: string, id: string, index: number, extra: string) =>
      `PUT ${API}/catalog/products/${pid}/model-artifacts/uploads/${id}/chunks/${index} HTTP/1.1\r\n` +
      `Host: x\r\nAuthorization: Bearer ${app.owner.key}\r\nContent-Type: application/octet-stream\r\n${extra}\r\n`;

    it('closes a refused chunk (read partly, then cut off) as soon as the client ends its side', async () => {
      const { pid, id } = await session(3 * target.chunkSize);
      const conn = await rawConnection(app.origin);
      // Chunked body: the server streams it into storage until it is longer than the chunk.
      conn.socket.write(head(pid, id, 0, 'Transfer-Encoding: chunked\r\n'));
      const piece = randomData(256 * 1024);
      const frame = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
      for (let sent = 0; !conn.received().includes('\r\n\r\n'); sent += piece.length) {
        await new Promise<void>((r) => conn.socket.write(frame, () => r()));
        if (sent > target.chunkSize + 8 * MiB) break;
      }
      await until(() => conn.received().includes('\r\n\r\n'));
      expect(conn.received()).toMatch(/^HTTP\/1\.1 422 /);
      expect(conn.received()).toMatch(/connection: close/i);
      conn.socket.write(frame); // still sending when the answer came: discarded, not reset
      conn.socket.end();
      await conn.closed; // the 600 s linger would time the test out
      expect(await app.em().count(UploadChunk, { session: id })).toBe(0);
    });

    it('closes a chunk refused before its body was read as soon as the client ends its side', async () => {
      const { pid, id } = await session(3 * target.chunkSize);
      const conn = await rawConnection(app.origin);
      conn.socket.write(head(pid, id, 99, `Content-Length: ${target.chunkSize}\r\n`));
      conn.socket.write(randomData(64 * 1024));
      await until(() => conn.received().includes('\r\n\r\n'));
      expect(conn.received()).toMatch(/^HTTP\/1\.1 422 /);
      conn.socket.write(randomData(64 * 1024));
      conn.socket.end();
      await conn.closed;
    });

    it('cuts off a body from which nothing arrives for the idle timeout, storing nothing; the chunk can be sent again', async () => {
      const { pid, id } = await session(3 * target.chunkSize);
      const chunk = randomData(target.chunkSize);
      const conn = await rawConnection(app.origin);
      conn.socket.write(head(pid, id, 0, `Content-Length: ${chunk.length}\r\n`));
      conn.socket.write(chunk.subarray(0, chunk.length / 2));
      await conn.closed; // by the server: the client never ends nor sends more
      expect(conn.received()).toBe('');
      expect(await app.em().count(UploadChunk, { session: id })).toBe(0);
      const again = await app.client.putChunk(pid, id, 0, chunk);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ received_chunks: [0], received_bytes: chunk.length });
    });

    it('takes a body that arrives slowly but steadily, for longer in all than the idle timeout', async () => {
      const { pid, id } = await session(3 * target.chunkSize);
      const chunk = randomData(target.chunkSize);
      const conn = await rawConnection(app.origin);
      conn.socket.write(head(pid, id, 1, `Content-Length: ${chunk.length}\r\n`));
      const pieces = 8;
      for (let i = 0; i < pieces; i++) {
        conn.socket.write(chunk.subarray((i * chunk.length) / pieces, ((i + 1) * chunk.length) / pieces));
        await new Promise((r) => setTimeout(r, 400)); // 8 × 0.4 s: longer than the 2 s idle time in all
      }
      await until(() => /\r\n\r\n[\s\S]*\}$/.test(conn.received()));
      expect(conn.received()).toMatch(/^HTTP\/1\.1 200 /);
      conn.socket.end();
      expect(await app.em().count(UploadChunk, { session: id })).toBe(1);
    });
  });
}

describe('server timeouts', () => {
  it('applies the configured headers, request and keep-alive timeouts to the server', () => {
    const server = http.createServer();
    applyServerTimeouts(server, loadConfig({ HEADERS_TIMEOUT_SECONDS: '20', REQUEST_TIMEOUT_SECONDS: '900', KEEP_ALIVE_TIMEOUT_SECONDS: '7' }));
    expect([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout]).toEqual([20_000, 900_000, 7_000]);
    applyServerTimeouts(server, loadConfig({}));
    expect([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout]).toEqual([60_000, 3_600_000, 65_000]);
  });
});
