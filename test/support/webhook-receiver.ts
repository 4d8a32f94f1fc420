/**
 * A real local webhook receiver for the delivery tests: an HTTP server on 127.0.0.1:<free port>
 * that records every request (headers and raw body bytes) and answers according to the path:
 *
 *   /ok          204
 *   /fail        500 with a short body
 *   /hang        never answers (the sender's timeout must cut it)
 *   /reset       destroys the connection once the request arrived
 *   /redirect    301 to /ok (which must never be hit through it)
 *   /huge        500 with a 100 MB body, written as long as the client reads
 *   /flaky-N     500 for the first N requests to that path, then 204
 *   /slow        204 after 1.5 s (an attempt still in flight a while after the request arrived)
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export interface WebhookReceiver {
  origin: string;
  url(path: string): string;
  requests: ReceivedRequest[];
  /** Requests to `path`. */
  to(path: string): ReceivedRequest[];
  /** Bytes of the /huge body the server managed to hand to the socket before the client went away. */
  hugeBytesWritten(): number;
  /** Resolves once `predicate` holds for the recorded requests (checked after each request), or rejects after `timeoutMs`. */
  waitFor(predicate: (requests: ReceivedRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const HUGE_BYTES = 100 * 1024 * 1024;

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  const waiters: { predicate: (r: ReceivedRequest[]) => boolean; resolve: () => void }[] = [];
  const flakyCounts = new Map<string, number>();
  let hugeWritten = 0;

  const notify = () => {
    for (const w of [...waiters]) {
      if (w.predicate(requests)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      requests.push({ path, headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
      notify();
      const flaky = /^\/flaky-(\d+)$/.exec(path);
      if (path === '/ok') {
        res.writeHead(204).end();
      } else if (path === '/fail') {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('receiver exploded');
      } else if (path === '/slow') {
        setTimeout(() => res.writeHead(204).end(), 1500);
      } else if (path === '/hang') {
        // Never answer.
      } else if (path === '/reset') {
        req.socket.destroy();
      } else if (path === '/redirect') {
        res.writeHead(301, { Location: '/ok' }).end();
      } else if (path === '/huge') {
        res.writeHead(500, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(HUGE_BYTES) });
        const block = Buffer.alloc(64 * 1024, 0x61);
        const pump = () => {
          while (hugeWritten < HUGE_BYTES) {
            hugeWritten += block.length;
            if (!res.write(block)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('close', () => res.removeAllListeners('drain'));
        pump();
      } else if (flaky) {
        const seen = (flakyCounts.get(path) ?? 0) + 1;
        flakyCounts.set(path, seen);
        if (seen <= Number(flaky[1])) res.writeHead(500).end('not yet');
        else res.writeHead(204).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    url: (path) => `${origin}${path}`,
    requests,
    to: (path) => requests.filter((r) => r.path === path),
    hugeBytesWritten: () => hugeWritten,
    waitFor(predicate, timeoutMs = 30_000) {
      if (predicate(requests)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const entry = { predicate, resolve: () => (clearTimeout(timer), resolve()) };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(entry), 1);
          reject(new Error(`receiver: condition not met within ${timeoutMs} ms (${requests.length} requests: ${requests.map((r) => r.path).join(', ')})`));
        }, timeoutMs);
        waiters.push(entry);
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Waits until `check` returns a value (not undefined), polling every 100 ms; rejects with the last
 * seen state after `timeoutMs`. For waiting on database state the worker changes asynchronously.
 */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
