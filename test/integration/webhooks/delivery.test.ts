/**
 * Webhook delivery end to end, on SQLite and on PostgreSQL: real server processes (their delivery
 * workers), real local receivers that answer, fail, hang, reset, redirect or flood, and the
 * signature checked with plain node:crypto (not the SDK's helper). Retries are shortened through
 * WEBHOOK_RETRY_SECONDS, the attempt timeout through WEBHOOK_TIMEOUT_MS.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../support/server.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';
import { eventually, startWebhookReceiver, type WebhookReceiver } from '../../support/webhook-receiver.ts';

const API = '/api/v1.0';
const FAST = {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_RETRY_SECONDS: '1,1',
  WEBHOOK_POLL_INTERVAL_MS: '100',
  WEBHOOK_TIMEOUT_MS: '3000',
};

interface Webhook {
  id: string;
  space_id: string;
  url: string;
  secret: string | null;
}
interface Delivery {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
}

/** The Standard Webhooks signature, computed independently of the server and the SDK. */
function expectedSignature(secret: string, id: string, timestamp: string, body: Buffer): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = createHmac('sha256', key);
  mac.update(`${id}.${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

const probe = await createTestDatabase();
await probe?.drop();

for (const dialect of ['sqlite', 'postgresql'] as const) {
  describe.skipIf(dialect === 'postgresql' && !probe)(`webhook delivery on ${dialect}`, () => {
    let db: TestDatabase | null = null;
    let receiver: WebhookReceiver;
    let server: StartedServer;
    let key: string;
    let dataDir: string;
    const extra: StartedServer[] = [];
    const dbEnv = (): Record<string, string> => (db ? { DATABASE_URL: db.url } : {});

    /** Another process over the same database (and, on SQLite, the same data dir). */
    const startProcess = async (env: Record<string, string>) => {
      const s = await startServer({ env: { ...dbEnv(), ...env }, dataDir });
      extra.push(s);
      return s;
    };

    async function call<T>(base: StartedServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: T; headers: Headers }> {
      const res = await fetch(`${base.baseUrl}${API}${path}`, {
        method,
        headers: { Authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
    }

    /** By default subscribed to a type no test produces: such a webhook gets its pings and nothing else (the burst's 1,000 events go to the burst's own webhook). */
    async function createHook(path: string, on: StartedServer = server, events: string[] = ['version.reviewed']): Promise<Webhook> {
      const res = await call<Webhook>(on, 'POST', '/catalog/spaces/default/webhooks', { url: receiver.url(path), events });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body;
    }

    async function ping(hook: Webhook, on: StartedServer = server): Promise<Delivery> {
      const res = await call<Delivery>(on, 'POST', `/catalog/spaces/default/webhooks/${hook.id}/ping`);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body;
    }

    async function deliveries(hook: Webhook, on: StartedServer = server): Promise<Delivery[]> {
      const res = await call<Delivery[]>(on, 'GET', `/catalog/spaces/default/webhooks/${hook.id}/deliveries?limit=1000`);
      expect(res.status).toBe(200);
      return res.body;
    }

    /** The delivery once it is no longer pending. */
    const settled = (hook: Webhook, id: string, on: StartedServer = server, timeoutMs = 30_000) =>
      eventually(
        async () => (await deliveries(hook, on)).find((d) => d.id === id && d.status !== 'pending'),
        timeoutMs,
        `delivery ${id} settled`,
      );

    const withId = (path: string, id: string) => receiver.to(path).filter((r) => r.headers['webhook-id'] === id);

    beforeAll(async () => {
      db = dialect === 'postgresql' ? await createTestDatabase() : null;
      receiver = await startWebhookReceiver();
      server = await startServer({ env: { ...dbEnv(), ...FAST } });
      key = server.apiKey;
      dataDir = server.dataDir;
    });
    afterAll(async () => {
      for (const s of extra) await s.stop().catch(() => {});
      await server?.stop();
      server?.cleanup();
      await receiver?.close();
      await db?.drop();
    });

    it('a ping arrives once, signed per Standard Webhooks; node:crypto verifies the signature', async () => {
      const hook = await createHook('/ok');
      const queued = await ping(hook);
      expect(queued).toMatchObject({ webhook_id: hook.id, event_type: 'ping', status: 'pending', attempts: 0 });
      const done = await settled(hook, queued.id);
      expect(done).toMatchObject({ status: 'succeeded', attempts: 1, last_status_code: 204, last_error: null, next_attempt_at: null });
      expect(done.delivered_at).not.toBeNull();

      const [req, ...more] = withId('/ok', queued.id);
      expect(more).toEqual([]);
      expect(req!.headers['content-type']).toBe('application/json');
      const timestamp = req!.headers['webhook-timestamp'] as string;
      expect(timestamp).toMatch(/^\d+$/);
      expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(300);
      expect(req!.headers['webhook-signature']).toBe(expectedSignature(hook.secret!, queued.id, timestamp, req!.body));
      // A different secret does not produce it (the check above can fail).
      expect(req!.headers['webhook-signature']).not.toBe(expectedSignature(`whsec_${Buffer.alloc(32).toString('base64')}`, queued.id, timestamp, req!.body));
      const event = JSON.parse(req!.body.toString('utf8'));
      expect(event).toMatchObject({ id: queued.event_id, type: 'ping', space_id: hook.space_id, subject_id: hook.id, product_id: null });
      expect(event.data).toMatchObject({ webhook_id: hook.id, url: hook.url });
    });

    it('a receiver answering 500 is retried after each delay of WEBHOOK_RETRY_SECONDS, then the delivery fails', async () => {
      const hook = await createHook('/fail');
      const queued = await ping(hook);
      const done = await settled(hook, queued.id);
      expect(done).toMatchObject({ status: 'failed', attempts: 3, last_status_code: 500, next_attempt_at: null, delivered_at: null });
      expect(done.last_error).toBe('HTTP 500: receiver exploded');
      const attempts = withId('/fail', queued.id);
      expect(attempts).toHaveLength(3);
      // The same webhook-id every time; each retry waits at least its delay (1 s).
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(900);
      expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(900);
    });

    it('a failure followed by a 2xx succeeds on the retry', async () => {
      const hook = await createHook('/flaky-1');
      const queued = await ping(hook);
      expect(await settled(hook, queued.id)).toMatchObject({ status: 'succeeded', attempts: 2, last_status_code: 204, last_error: null });
    });

    it('hangs time out, resets and redirects are failures, and a 100 MB answer is not read', async () => {
      const [hang, reset, redirect, huge] = await Promise.all(['/hang', '/reset', '/redirect', '/huge'].map((p) => createHook(p)));
      const [h, r, d, g] = await Promise.all([hang, reset, redirect, huge].map((hook) => ping(hook!)));
      const [hangDone, resetDone, redirectDone, hugeDone] = await Promise.all([
        settled(hang!, h!.id),
        settled(reset!, r!.id),
        settled(redirect!, d!.id),
        settled(huge!, g!.id),
      ]);
      expect(hangDone).toMatchObject({ status: 'failed', attempts: 3, last_status_code: null });
      expect(hangDone.last_error).toMatch(/timed out/);
      expect(resetDone).toMatchObject({ status: 'failed', attempts: 3, last_status_code: null });
      expect(resetDone.last_error).toMatch(/ECONNRESET/);
      expect(redirectDone).toMatchObject({ status: 'failed', attempts: 3, last_status_code: 301 });
      expect(redirectDone.last_error).toMatch(/redirect to \/ok not followed/);
      expect(withId('/ok', d!.id)).toEqual([]);
      expect(hugeDone).toMatchObject({ status: 'failed', attempts: 3, last_status_code: 500 });
      // Three attempts of a 100 MB answer: the sender stopped reading after a few KB each time
      // (what the socket buffers took is all that was written).
      expect(receiver.hugeBytesWritten()).toBeLessThan(3 * 16 * 1024 * 1024);
    });

    it('redelivery starts a fresh cycle for a failed delivery, with the same webhook-id', async () => {
      const hook = await createHook('/flaky-3');
      const queued = await ping(hook);
      expect(await settled(hook, queued.id)).toMatchObject({ status: 'failed', attempts: 3 });
      const again = await call<Delivery>(server, 'POST', `/catalog/spaces/default/webhooks/${hook.id}/deliveries/${queued.id}/redeliver`);
      expect(again.status).toBe(202);
      expect(again.body).toMatchObject({ id: queued.id, status: 'pending', attempts: 0, delivered_at: null });
      expect(await settled(hook, queued.id)).toMatchObject({ status: 'succeeded', attempts: 1, last_status_code: 204 });
      expect(withId('/flaky-3', queued.id)).toHaveLength(4);
    });

    it('a burst of 1,000 model creations: every model.created event is delivered, none lost, each in its own signed body', async () => {
      const hook = await createHook('/ok', server, ['model.created']);
      const ignored = await createHook('/ok', server, ['alias.set']);
      const count = 1000;
      const okBefore = receiver.to('/ok').length;
      const ids: string[] = [];
      for (let i = 0; i < count; i += 25) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(25, count - i) }, async (_, j) => {
            const res = await call<{ id: string }>(server, 'POST', '/catalog/spaces/default/model-repository/models', { name: `Burst model ${dialect} ${i + j}` });
            expect(res.status).toBe(201);
            return res.body.id;
          }),
        );
        ids.push(...batch);
      }
      const ofHook = () => receiver.requests.filter((r) => r.path === '/ok' && JSON.parse(r.body.toString('utf8')).type === 'model.created');
      // (A cheap condition: it runs after every request the receiver gets.)
      await receiver.waitFor(() => receiver.to('/ok').length >= okBefore + count, 120_000);
      const all = await eventually(async () => {
        const list = await deliveries(hook);
        return list.length === count && list.every((d) => d.status === 'succeeded') ? list : undefined;
      }, 60_000, 'all burst deliveries succeeded').catch(async (err: Error) => {
        const list = await deliveries(hook);
        const tally = list.reduce<Record<string, number>>((t, d) => ((t[`${d.status}/${d.attempts}/${d.last_error}`] = (t[`${d.status}/${d.attempts}/${d.last_error}`] ?? 0) + 1), t), {});
        throw new Error(`${err.message}: ${list.length} deliveries, ${JSON.stringify(tally)}`);
      });
      // Nothing lost, nothing made up: one delivery per event; every attempt the receiver saw was
      // recorded (on a busy machine an attempt may time out after the receiver got it, and is then
      // retried under the same webhook-id: at-least-once).
      expect(all.every((d) => d.event_type === 'model.created' && d.attempts >= 1)).toBe(true);
      const received = ofHook();
      const perId = new Map<string, number>();
      for (const r of received) perId.set(r.headers['webhook-id'] as string, (perId.get(r.headers['webhook-id'] as string) ?? 0) + 1);
      expect(perId.size).toBe(count);
      for (const d of all) {
        expect(perId.get(d.id), `delivery ${d.id}`).toBeGreaterThanOrEqual(1);
        expect(perId.get(d.id), `delivery ${d.id}`).toBeLessThanOrEqual(d.attempts);
      }
      const bodies = received.map((r) => JSON.parse(r.body.toString('utf8')));
      expect(new Set(bodies.map((b) => b.subject_id))).toEqual(new Set(ids));
      for (const r of received.slice(0, 50)) {
        expect(r.headers['webhook-signature']).toBe(expectedSignature(hook.secret!, r.headers['webhook-id'] as string, r.headers['webhook-timestamp'] as string, r.body));
      }
      expect(bodies[0]).toMatchObject({ type: 'model.created', space_id: hook.space_id, product_id: bodies[0].subject_id });
      expect(await deliveries(ignored)).toEqual([]);
    }, 300_000);

    it('queued deliveries survive SIGKILL of the process that committed them; a deleted webhook gets none', async () => {
      await server.stop();
      // A process without a worker commits the deliveries and dies before anyone sends them.
      const quiet = await startProcess({ ...FAST, WEBHOOK_POLL_INTERVAL_MS: '0' });
      const deleted = await createHook('/ok', quiet);
      const kept = await createHook('/ok', quiet);
      const lost = await ping(deleted, quiet);
      const survivor = await ping(kept, quiet);
      expect((await call(quiet, 'DELETE', `/catalog/spaces/default/webhooks/${deleted.id}`)).status).toBe(204);
      await quiet.kill();

      server = await startServer({ env: { ...dbEnv(), ...FAST }, dataDir });
      expect(await settled(kept, survivor.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(withId('/ok', survivor.id)).toHaveLength(1);
      // Queued before the survivor, so claimed no later: it was gone with its webhook.
      expect(withId('/ok', lost.id)).toEqual([]);
      expect((await call(server, 'GET', `/catalog/spaces/default/webhooks/${deleted.id}/deliveries`)).status).toBe(404);
    });

    it('graceful shutdown (SIGTERM) lets an attempt in flight finish and records its result before the process exits', async () => {
      // A process of its own, on a database of its own: no other worker can take the delivery.
      const ownDb = dialect === 'postgresql' ? await createTestDatabase() : null;
      const ownEnv: Record<string, string> = ownDb ? { DATABASE_URL: ownDb.url } : {};
      const solo = await startServer({ env: { ...ownEnv, ...FAST } });
      let reader: StartedServer | null = null;
      try {
        const soloKey = solo.apiKey; // the reader below shares its database, so its key too
        const created = await fetch(`${solo.baseUrl}${API}/catalog/spaces/default/webhooks`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${soloKey}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ url: receiver.url('/slow'), events: ['version.reviewed'] }),
        });
        expect(created.status).toBe(201);
        const hook = (await created.json()) as Webhook;
        const sent = await fetch(`${solo.baseUrl}${API}/catalog/spaces/default/webhooks/${hook.id}/ping`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${soloKey}` },
        });
        expect(sent.status).toBe(202);
        const delivery = (await sent.json()) as Delivery;
        await receiver.waitFor((all) => all.some((r) => r.path === '/slow' && r.headers['webhook-id'] === delivery.id), 20_000);

        await solo.stop(); // the receiver answers 1.5 s after the request arrived: the attempt is in flight now
        expect(solo.process.exitCode).toBe(0);

        // Read back by a process without a worker: the attempt was recorded, not left claimed.
        reader = await startServer({ env: { ...ownEnv, ...FAST, WEBHOOK_POLL_INTERVAL_MS: '0' }, dataDir: solo.dataDir });
        const listed = await fetch(`${reader.baseUrl}${API}/catalog/spaces/default/webhooks/${hook.id}/deliveries`, {
          headers: { Authorization: `Bearer ${soloKey}` },
        });
        expect(listed.status).toBe(200);
        const [row] = ((await listed.json()) as Delivery[]).filter((d) => d.id === delivery.id);
        expect(row).toMatchObject({ status: 'succeeded', attempts: 1, last_status_code: 204 });
        expect(withId('/slow', delivery.id)).toHaveLength(1);
      } finally {
        await reader?.stop().catch(() => {});
        await solo.stop().catch(() => {});
        solo.cleanup();
        await ownDb?.drop();
      }
    });

    it('the address is checked again at delivery: a process without WEBHOOK_ALLOW_PRIVATE_NETWORKS refuses to send to 127.0.0.1', async () => {
      const hook = await createHook('/ok');
      await server.stop();
      const strict = await startProcess({ ...FAST, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' });
      try {
        const queued = await ping(hook, strict);
        const done = await settled(hook, queued.id, strict);
        expect(done).toMatchObject({ status: 'failed', attempts: 3, last_status_code: null });
        expect(done.last_error).toMatch(/^Refused: .*127\.0\.0\.1 is a loopback address/);
        expect(withId('/ok', queued.id)).toEqual([]);
      } finally {
        await strict.stop();
        server = await startServer({ env: { ...dbEnv(), ...FAST }, dataDir });
      }
    });

    it('two processes on one database make each attempt exactly once', async () => {
      const second = await startProcess(FAST);
      const hook = await createHook('/ok');
      const count = 200;
      const queued: Delivery[] = [];
      for (let i = 0; i < count; i += 20) {
        const batch = await Promise.all(Array.from({ length: Math.min(20, count - i) }, (_, j) => ping(hook, (i + j) % 2 ? second : server)));
        queued.push(...batch);
      }
      await receiver.waitFor((rs) => queued.every((q) => rs.some((r) => r.headers['webhook-id'] === q.id)), 60_000);
      const all = await eventually(async () => {
        const list = await deliveries(hook);
        return list.length === count && list.every((d) => d.status === 'succeeded') ? list : undefined;
      }, 30_000, 'all deliveries succeeded');
      expect(all.every((d) => d.attempts === 1)).toBe(true);
      for (const q of queued) expect(withId('/ok', q.id), `delivery ${q.id}`).toHaveLength(1);
      await second.stop();
    });
  });
}
