/**
 * Webhook management on SQLite and PostgreSQL (in-process app, no delivery worker): who may manage
 * a space's webhooks, the secret shown only on create and rotate, URL refusals with private
 * networks NOT allowed (the default), what gets queued for an event, deactivation, and the
 * retention sweep of old deliveries.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, startTestApp, type TestApp, type TestUser } from '../../support/app.ts';
import { Webhook, WebhookDelivery } from '../../../server/src/persistence/entities.ts';
import { queueDeliveries } from '../../../server/src/services/webhooks.ts';

const ORG = 'hooks-org';
const SPACE = 'hooks';
const hooksPath = (space = SPACE) => `/catalog/spaces/${space}/webhooks`;
const PUBLIC_URL = 'http://93.184.215.14/hooks/registry';

interface WebhookBody {
  id: string;
  space_id: string;
  url: string;
  events: string[];
  description: string | null;
  active: boolean;
  secret: string | null;
}
interface DeliveryBody {
  id: string;
  status: string;
  event_type: string;
  attempts: number;
  last_error: string | null;
}

for (const target of await databaseTargets()) {
  describe.skipIf(!target.create)(`webhook management on ${target.dialect}`, () => {
    let app: TestApp;
    let owner: TestUser;
    const users: Record<string, TestUser> = {};

    const create = (key: string, body: unknown, space = SPACE) => app.request<WebhookBody>('POST', hooksPath(space), { key, body });

    beforeAll(async () => {
      app = await startTestApp(target);
      owner = await app.bootstrap(ORG, SPACE, 'owner@hooks.test');
      await app.createSpace(ORG, 'other-hooks');
      for (const [name, setup] of Object.entries({
        orgAdmin: (e: string) => app.addOrgMember(e, ORG, 'admin'),
        spaceAdmin: (e: string) => app.addSpaceMember(e, SPACE, 'admin'),
        editor: (e: string) => app.addSpaceMember(e, SPACE, 'editor'),
        viewer: (e: string) => app.addSpaceMember(e, SPACE, 'viewer'),
        member: (e: string) => app.addOrgMember(e, ORG, 'member'),
        stranger: async () => {},
      })) {
        users[name] = await app.createUser(`${name}@hooks.test`);
        await setup(`${name}@hooks.test`);
      }
      await app.bootstrap('elsewhere', 'elsewhere-space', 'stranger@hooks.test');
    });
    afterAll(() => app?.close());

    it.each([
      ['owner', 'allowed'],
      ['orgAdmin', 'allowed'],
      ['spaceAdmin', 'allowed'],
      ['editor', 403],
      ['viewer', 403],
      ['member', 403],
      ['stranger', 404],
    ] as const)('%s: every webhook operation is %s', async (who, outcome) => {
      const key = who === 'owner' ? owner.key : users[who]!.key;
      const hook = (await create(owner.key, { url: PUBLIC_URL, events: ['model.created'] })).body;
      const delivery = (await app.request<DeliveryBody>('POST', `${hooksPath()}/${hook.id}/ping`, { key: owner.key })).body;
      const item = `${hooksPath()}/${hook.id}`;
      const calls: [string, string, unknown, number][] = [
        ['GET', hooksPath(), undefined, 200],
        ['POST', hooksPath(), { url: PUBLIC_URL, events: ['*'] }, 201],
        ['GET', item, undefined, 200],
        ['PATCH', item, { description: `by ${who}` }, 200],
        ['POST', `${item}/rotate-secret`, undefined, 200],
        ['POST', `${item}/ping`, undefined, 202],
        ['GET', `${item}/deliveries`, undefined, 200],
        ['POST', `${item}/deliveries/${delivery.id}/redeliver`, undefined, 202],
        ['DELETE', item, undefined, 204],
      ];
      for (const [method, path, body, ok] of calls) {
        const res = await app.request<{ code?: string; detail?: string }>(method, path, { key, body });
        const expected = outcome === 'allowed' ? ok : outcome;
        expect(`${method} ${path} → ${res.status}`).toBe(`${method} ${path} → ${expected}`);
        if (outcome === 403) expect(res.body.detail).toBe(`You need the admin role in space '${SPACE}' (or the owner or admin role in its organization) to manage its webhooks.`);
      }
      if (outcome !== 'allowed') {
        // Nothing changed.
        const row = await app.em().findOneOrFail(Webhook, { id: hook.id });
        expect([row.description, row.secret]).toEqual([null, row.secret]);
      }
    });

    it('shows the secret on create and rotate only, stores it, and rotation replaces it', async () => {
      const res = await create(owner.key, { url: PUBLIC_URL, events: ['alias.set', 'model.created'], description: 'deploys' });
      expect(res.status).toBe(201);
      expect(res.headers.get('location')).toBe(`/api/v1.0${hooksPath()}/${res.body.id}`);
      const created = res.body;
      expect(created).toMatchObject({ url: PUBLIC_URL, events: ['alias.set', 'model.created'], description: 'deploys', active: true });
      expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(created.secret!.slice(6), 'base64')).toHaveLength(32);
      expect((await app.em().findOneOrFail(Webhook, { id: created.id })).secret).toBe(created.secret);

      const item = `${hooksPath()}/${created.id}`;
      expect((await app.request<WebhookBody>('GET', item, { key: owner.key })).body.secret).toBeNull();
      expect((await app.request<WebhookBody[]>('GET', hooksPath(), { key: owner.key })).body.every((h) => h.secret === null)).toBe(true);
      expect((await app.request<WebhookBody>('PATCH', item, { key: owner.key, body: { active: true } })).body.secret).toBeNull();
      const rotated = (await app.request<WebhookBody>('POST', `${item}/rotate-secret`, { key: owner.key })).body;
      expect(rotated.secret).toMatch(/^whsec_/);
      expect(rotated.secret).not.toBe(created.secret);
      expect((await app.em().findOneOrFail(Webhook, { id: created.id })).secret).toBe(rotated.secret);
      // A webhook is reached only through its own space.
      expect((await app.request('GET', `${hooksPath('other-hooks')}/${created.id}`, { key: owner.key })).status).toBe(404);
    });

    it.each([
      'http://127.0.0.1:8080/h',
      'http://2130706433/h',
      'http://0x7f.0.0.1/h',
      'http://0177.0.0.1/h',
      'http://[::ffff:127.0.0.1]/h',
      'http://[::1]/h',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/',
      'http://10.0.0.8/h',
      'http://localhost:8080/h',
      'https://user:pass@hooks.example.com/h',
      'ftp://hooks.example.com/h',
    ])('refuses %s with 422 webhook_url_forbidden (create and PATCH), storing nothing', async (url) => {
      const before = await app.em().count(Webhook, {});
      const res = await create(owner.key, { url, events: ['*'] });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ code: 'webhook_url_forbidden', errors: [{ loc: ['body', 'url'], type: 'webhook_url_forbidden' }] });
      expect((res.body as unknown as { detail: string }).detail).not.toBe('');
      expect(await app.em().count(Webhook, {})).toBe(before);

      const hook = (await create(owner.key, { url: PUBLIC_URL, events: ['*'] })).body;
      const patched = await app.request('PATCH', `${hooksPath()}/${hook.id}`, { key: owner.key, body: { url } });
      expect([patched.status, (patched.body as { code: string }).code]).toEqual([422, 'webhook_url_forbidden']);
      expect((await app.em().findOneOrFail(Webhook, { id: hook.id })).url).toBe(PUBLIC_URL);
    });

    it('an event is queued once for each active webhook of its space that subscribes to its type', async () => {
      await app.createSpace(ORG, 'queue-hooks');
      const mk = async (events: string[], active = true, space = 'queue-hooks') => (await create(owner.key, { url: PUBLIC_URL, events, active }, space)).body;
      const all = await mk(['*']);
      const models = await mk(['model.created', 'model.updated']);
      const aliases = await mk(['alias.set']);
      const paused = await mk(['*'], false);
      const elsewhere = await mk(['*'], true, 'other-hooks');
      const event = { id: randomUUID(), type: 'model.created', space_id: all.space_id, occurred_at: new Date().toISOString(), data: { name: 'x' } };
      const em = app.em();
      const queued = await em.transactional((tx) => queueDeliveries(tx, event));
      expect(queued).toBe(2);
      const rows = await app.em().find(WebhookDelivery, { event_id: event.id });
      expect(rows.map((r) => r.webhook.id).sort()).toEqual([all.id, models.id].sort());
      expect(rows.every((r) => r.status === 'pending' && r.attempts === 0 && r.payload === JSON.stringify(event) && r.event_type === 'model.created')).toBe(true);
      for (const hook of [aliases, paused, elsewhere]) expect(await app.em().count(WebhookDelivery, { webhook: hook.id })).toBe(0);

      // Rolled back with the event's transaction: nothing queued.
      const second = { ...event, id: randomUUID() };
      await expect(
        app.em().transactional(async (tx) => {
          await queueDeliveries(tx, second);
          throw new Error('the change failed');
        }),
      ).rejects.toThrow('the change failed');
      expect(await app.em().count(WebhookDelivery, { event_id: second.id })).toBe(0);

      // Deactivating fails what is still queued (pings excepted: they are explicit tests).
      const q = hooksPath('queue-hooks');
      const ping = (await app.request<DeliveryBody>('POST', `${q}/${all.id}/ping`, { key: owner.key })).body;
      expect((await app.request('PATCH', `${q}/${all.id}`, { key: owner.key, body: { active: false } })).status).toBe(200);
      const list = (await app.request<DeliveryBody[]>('GET', `${q}/${all.id}/deliveries`, { key: owner.key })).body;
      expect(list.map((d) => [d.event_type, d.status])).toEqual([
        ['ping', 'pending'],
        ['model.created', 'failed'],
      ]);
      expect(list[1]!.last_error).toBe('The webhook was deactivated before this delivery succeeded.');
      expect(list[0]!.id).toBe(ping.id);
      // Deleting removes the webhook's deliveries with it.
      expect((await app.request('DELETE', `${q}/${models.id}`, { key: owner.key })).status).toBe(204);
      expect(await app.em().count(WebhookDelivery, { webhook: models.id })).toBe(0);
    });

    it('lists deliveries newest first with the paging headers; bad paging → 422', async () => {
      const hook = (await create(owner.key, { url: PUBLIC_URL, events: ['*'] })).body;
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await app.request<DeliveryBody>('POST', `${hooksPath()}/${hook.id}/ping`, { key: owner.key })).body.id);
      const page = await app.request<DeliveryBody[]>('GET', `${hooksPath()}/${hook.id}/deliveries?limit=2`, { key: owner.key });
      expect(page.body.map((d) => d.id)).toEqual([ids[2], ids[1]]);
      expect([page.headers.get('x-total-count'), page.headers.get('x-page'), page.headers.get('x-has-more')]).toEqual(['3', '1', 'true']);
      const rest = await app.request<DeliveryBody[]>('GET', `${hooksPath()}/${hook.id}/deliveries?limit=2&skip=2`, { key: owner.key });
      expect(rest.body.map((d) => d.id)).toEqual([ids[0]]);
      expect([rest.headers.get('x-page'), rest.headers.get('x-has-more')]).toEqual(['2', 'false']);
      expect((await app.request('GET', `${hooksPath()}/${hook.id}/deliveries?limit=0`, { key: owner.key })).status).toBe(422);
      expect((await app.request('POST', `${hooksPath()}/${hook.id}/deliveries/not-a-uuid/redeliver`, { key: owner.key })).status).toBe(404);
    });

    it('the sweeper removes deliveries older than WEBHOOK_DELIVERY_RETENTION_DAYS', async () => {
      const hook = (await create(owner.key, { url: PUBLIC_URL, events: ['*'] })).body;
      const fresh = (await app.request<DeliveryBody>('POST', `${hooksPath()}/${hook.id}/ping`, { key: owner.key })).body;
      const old = (await app.request<DeliveryBody>('POST', `${hooksPath()}/${hook.id}/ping`, { key: owner.key })).body;
      await app.em().nativeUpdate(WebhookDelivery, { id: old.id }, { created_at: new Date(Date.now() - 31 * 86_400_000) });
      const report = await app.services.sweeper.runOnce();
      expect(report.deliveriesRemoved).toBeGreaterThanOrEqual(1);
      const left = await app.em().find(WebhookDelivery, { webhook: hook.id });
      expect(left.map((d) => d.id)).toEqual([fresh.id]);
    });
  });
}
