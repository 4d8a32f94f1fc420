/**
 * Bench child (b), the peer: @tus/server with @tus/file-store, as its documentation sets it up.
 * The file store has no concatenation extension, so an upload is one resource taking PATCH
 * requests strictly in order; it neither flushes to disk nor checks a digest.
 *
 * Usage: tus-server.ts <dir>. Sends `{ port }` over IPC once listening.
 */
import http from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const [dir] = process.argv.slice(2);
if (!dir) throw new Error('usage: tus-server.ts <dir>');

const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dir }), relativeLocation: true });
const server = http.createServer((req, res) => void tus.handle(req, res));
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  process.send!({ port: (server.address() as { port: number }).port });
});
process.on('disconnect', () => process.exit(0));
