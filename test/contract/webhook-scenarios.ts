/**
 * Contract scenarios of the webhook operations (mock and real servers). The real targets run
 * with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true (see harness.ts), so a receiver started here on
 * 127.0.0.1 gets the ping; the other URL rules (scheme, credentials) still apply.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { verifyWebhook, type WebhookDelivery } from '../../sdk/src/index.ts';
import type { Target, TargetName } from './harness.ts';
import { API, expectError, unknownId } from './helpers.ts';
import type { Scenario } from './scenarios.ts';

const SERVERS: readonly TargetName[] = ['sqlite', 'postgres'];

/** A receiver that answers 204 and hands over each request with its raw body. */
async function receiver(): Promise<{ url: string; next: () => Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>; close: () => Promise<void> }> {
  const waiting: ((r: { headers: http.IncomingHttpHeaders; body: Buffer }) => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(204).end();
      waiting.shift()?.({ headers: req.headers, body: Buffer.concat(chunks) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/registry`,
    next: () => new Promise((resolve) => waiting.push(resolve)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function settled(t: Target, hookId: string, deliveryId: string): Promise<WebhookDelivery> {
  const c = t.client();
  for (;;) {
    const found = (await c.listWebhookDeliveries(t.space, hookId)).find((d) => d.id === deliveryId);
    if (found && found.status !== 'pending') return found;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const webhookScenarios: Scenario[] = [
  {
    name: 'webhooks: create (secret shown once), read, list, change, rotate, ping (delivered and signed), deliveries, redeliver, delete',
    covers: {
      createWebhook: [201],
      getWebhook: [200, 404],
      listWebhooks: [200],
      updateWebhook: [200],
      rotateWebhookSecret: [200],
      pingWebhook: [202],
      listWebhookDeliveries: [200],
      redeliverWebhookDelivery: [202],
      deleteWebhook: [204],
    },
    async run(t) {
      const c = t.client();
      if (t.kind === 'mock') {
        const created = await c.createWebhook(t.space, { url: 'https://ci.example.com/hooks/model-registry', events: ['alias.set'] });
        expect(created.secret).toMatch(/^whsec_/);
        const id = randomUUID();
        expect((await c.getWebhook(t.space, id)).secret).toBeNull();
        expect((await c.listWebhooks(t.space)).length).toBeGreaterThan(0);
        expect((await c.updateWebhook(t.space, id, { active: false })).id).toBeTypeOf('string');
        expect((await c.rotateWebhookSecret(t.space, id)).secret).toMatch(/^whsec_/);
        expect((await c.pingWebhook(t.space, id)).status).toBe('pending');
        expect((await c.listWebhookDeliveries(t.space, id)).length).toBeGreaterThan(0);
        expect((await c.redeliverWebhookDelivery(t.space, id, randomUUID())).attempts).toBe(0);
        await c.deleteWebhook(t.space, id);
        return;
      }
      const rx = await receiver();
      try {
        const created = await c.createWebhook(t.space, { url: rx.url, events: ['model.created', 'alias.set'], description: `contract ${t.tag}` });
        expect(created).toMatchObject({ url: rx.url, events: ['model.created', 'alias.set'], description: `contract ${t.tag}`, active: true });
        expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
        expect(t.log.last('createWebhook', 201)?.headers.location).toMatch(new RegExp(`${API}/catalog/spaces/${t.space}/webhooks/${created.id}$`));
        const { secret, ...rest } = created;
        expect(await c.getWebhook(t.space, created.id)).toEqual({ ...rest, secret: null });
        expect((await c.listWebhooks(t.space)).find((w) => w.id === created.id)).toEqual({ ...rest, secret: null });

        const changed = await c.updateWebhook(t.space, created.id, { events: ['*'], description: null });
        expect(changed).toMatchObject({ id: created.id, events: ['*'], description: null, secret: null, url: rx.url });
        const rotated = await c.rotateWebhookSecret(t.space, created.id);
        expect(rotated.secret).toMatch(/^whsec_/);
        expect(rotated.secret).not.toBe(secret);

        // The ping arrives signed with the new secret.
        const arriving = rx.next();
        const queued = await c.pingWebhook(t.space, created.id);
        expect(queued).toMatchObject({ webhook_id: created.id, event_type: 'ping', status: 'pending', attempts: 0, delivered_at: null });
        const request = await arriving;
        const event = await verifyWebhook(rotated.secret!, request.headers as Record<string, string>, request.body);
        expect(event).toMatchObject({ type: 'ping', space_id: created.space_id, subject_id: created.id });
        expect(request.headers['webhook-id']).toBe(queued.id);
        await expect(verifyWebhook(secret!, request.headers as Record<string, string>, request.body)).rejects.toMatchObject({ code: 'webhook_invalid_signature' });
        const done = await settled(t, created.id, queued.id);
        expect(done).toMatchObject({ status: 'succeeded', attempts: 1, last_status_code: 204, next_attempt_at: null });
        const last = t.log.last('listWebhookDeliveries', 200)!;
        expect([last.headers['x-total-count'], last.headers['x-page'], last.headers['x-has-more']]).toEqual(['1', '1', 'false']);

        const again = rx.next();
        const redelivered = await c.redeliverWebhookDelivery(t.space, created.id, queued.id);
        expect(redelivered).toMatchObject({ id: queued.id, status: 'pending', attempts: 0, delivered_at: null });
        expect((await again).headers['webhook-id']).toBe(queued.id);

        await c.deleteWebhook(t.space, created.id);
        await expectError(c.getWebhook(t.space, created.id), 404, 'not_found');
      } finally {
        await rx.close();
      }
    },
  },
  {
    name: 'webhooks: space viewers and plain organization members → 403; other organizations and unknown ids → 404',
    on: SERVERS,
    covers: {
      createWebhook: [201, 403, 404],
      listWebhooks: [403, 404],
      getWebhook: [403, 404],
      updateWebhook: [403, 404],
      deleteWebhook: [403, 404],
      rotateWebhookSecret: [403, 404],
      pingWebhook: [403, 404],
      listWebhookDeliveries: [403, 404],
      redeliverWebhookDelivery: [403, 404],
    },
    async run(t) {
      const c = t.client();
      const users = await t.users();
      const hook = await c.createWebhook(t.space, { url: 'http://127.0.0.1:9/never-called', events: ['model.created'], active: false });
      const someone = randomUUID();
      for (const [who, status] of [
        [t.client({ apiKey: users.viewer }), 403],
        [t.client({ apiKey: users.outsider }), 404],
      ] as const) {
        await expectError(who.listWebhooks(t.space), status);
        await expectError(who.createWebhook(t.space, { url: 'https://hooks.example.com/x', events: ['*'] }), status);
        await expectError(who.getWebhook(t.space, hook.id), status);
        await expectError(who.updateWebhook(t.space, hook.id, { active: true }), status);
        await expectError(who.rotateWebhookSecret(t.space, hook.id), status);
        await expectError(who.pingWebhook(t.space, hook.id), status);
        await expectError(who.listWebhookDeliveries(t.space, hook.id), status);
        await expectError(who.redeliverWebhookDelivery(t.space, hook.id, someone), status);
        await expectError(who.deleteWebhook(t.space, hook.id), status);
      }
      // The viewer is a member of the organization without a role on the restricted space: 403 there too.
      await expectError(t.client({ apiKey: users.viewer }).listWebhooks(users.restrictedSpace), 403, 'forbidden');
      const none = unknownId();
      await expectError(c.listWebhooks(`no-such-space-${t.tag}`), 404);
      await expectError(c.getWebhook(t.space, none), 404, 'not_found');
      await expectError(c.getWebhook(t.space, 'not-a-uuid'), 404, 'not_found');
      await expectError(c.updateWebhook(t.space, none, { active: false }), 404);
      await expectError(c.rotateWebhookSecret(t.space, none), 404);
      await expectError(c.pingWebhook(t.space, none), 404);
      await expectError(c.listWebhookDeliveries(t.space, none), 404);
      await expectError(c.redeliverWebhookDelivery(t.space, hook.id, none), 404);
      await expectError(c.deleteWebhook(t.space, none), 404);
      // A webhook is found only under its own space.
      await expectError(c.getWebhook(users.restrictedSpace, hook.id), 404);
      await c.deleteWebhook(t.space, hook.id);
    },
  },
  {
    name: 'webhooks: malformed JSON → 400, wrong media type → 415, invalid bodies and forbidden URLs → 422',
    covers: {
      createWebhook: [400, 415, 422],
      updateWebhook: [400, 415, 422],
      listWebhookDeliveries: [422],
    },
    async run(t) {
      const c = t.client();
      const mock = t.kind === 'mock';
      const hook = mock ? { id: randomUUID() } : await c.createWebhook(t.space, { url: 'https://hooks.example.com/contract', events: ['*'], active: false });
      const paths: [string, string][] = [
        ['POST', `${API}/catalog/spaces/${t.space}/webhooks`],
        ['PATCH', `${API}/catalog/spaces/${t.space}/webhooks/${hook.id}`],
      ];
      for (const [method, path] of paths) {
        if (!mock) {
          const malformed = await t.raw(method, path, { route: 'direct', headers: { 'content-type': 'application/json' }, body: '{"url": ' });
          expect([path, malformed.status]).toEqual([path, 400]);
        }
        const wrongType = await t.raw(method, path, { headers: { 'content-type': 'text/plain' }, body: 'url=x' });
        expect([path, wrongType.status]).toEqual([path, 415]);
      }
      const invalid = async (call: Promise<unknown>, code: string, loc?: string) => {
        const error = await expectError(call, 422);
        if (mock) return;
        expect(error.code).toBe(code);
        if (loc) expect(error.errors.map((e) => e.loc.join('.'))).toContain(loc);
      };
      await invalid(c.createWebhook(t.space, { url: 'https://hooks.example.com/x', events: [] }), 'validation_error', 'body.events');
      await invalid(c.createWebhook(t.space, { url: 'https://hooks.example.com/x', events: ['model.exploded'] } as never), 'validation_error', 'body.events.0');
      await invalid(c.updateWebhook(t.space, hook.id, { secret: 'whsec_mine' } as never), 'validation_error', 'body.secret');
      await invalid(c.listWebhookDeliveries(t.space, hook.id, { limit: 0 }), 'validation_error', 'query.limit');
      if (mock) return;
      // URL rules that hold even where private networks are allowed.
      await invalid(c.createWebhook(t.space, { url: 'ftp://hooks.example.com/x', events: ['*'] }), 'webhook_url_forbidden', 'body.url');
      await invalid(c.createWebhook(t.space, { url: 'https://user:pass@hooks.example.com/x', events: ['*'] }), 'webhook_url_forbidden', 'body.url');
      await invalid(c.updateWebhook(t.space, hook.id, { url: 'file:///etc/passwd' }), 'webhook_url_forbidden', 'body.url');
      await c.deleteWebhook(t.space, hook.id);
    },
  },
];
