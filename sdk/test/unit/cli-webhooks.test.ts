/**
 * The `model-repo webhooks` group, against a fetch that records the requests and answers like
 * the server would.
 */
import { describe, expect, it } from 'vitest';
import { runCli, type CliIO } from '../../src/cli/main.ts';

const ORIGIN = 'http://registry.test';
const hook = {
  id: '0d4c8a2e-7f1b-4c3d-9e6a-5b2f1c8d7e90',
  space_id: '9b2e4f60-1a3c-4d5e-8f70-2b4c6d8e0f12',
  url: 'https://ci.example.com/hooks',
  events: ['alias.set', 'model.created'],
  description: null,
  active: true,
  secret: null as string | null,
  created_at: '2026-11-02T09:14:03Z',
  updated_at: '2026-11-02T09:14:03Z',
};
const delivery = {
  id: '6e2b9f41-3c8d-4a7e-b510-9d4f2a6c1e38',
  webhook_id: hook.id,
  event_id: '2f8a4c6e-0b1d-4e3f-a5b7-c9d1e3f5a7b9',
  event_type: 'alias.set',
  status: 'failed',
  attempts: 7,
  last_status_code: 503,
  last_error: 'HTTP 503: down',
  next_attempt_at: null,
  created_at: '2026-11-02T10:00:00Z',
  delivered_at: null,
};

class Capture {
  text = '';
  isTTY = false;
  columns = 100;
  write(chunk: string) {
    this.text += chunk;
    return true;
  }
}

function setup() {
  const requests: { method: string; path: string; query: string; body: unknown }[] = [];
  const fetch = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const text = await request.text();
    requests.push({ method: request.method, path: url.pathname, query: url.search, body: text ? JSON.parse(text) : undefined });
    const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    const base = '/api/v1.0/catalog/spaces/ml/webhooks';
    if (request.method === 'POST' && url.pathname === base) return json(201, { ...hook, secret: 'whsec_new' });
    if (request.method === 'GET' && url.pathname === base) return json(200, [hook]);
    if (request.method === 'GET' && url.pathname.endsWith('/deliveries')) return json(200, [delivery]);
    if (url.pathname.endsWith('/redeliver')) return json(202, { ...delivery, status: 'pending', attempts: 0 });
    if (url.pathname.endsWith('/ping')) return json(202, { ...delivery, event_type: 'ping', status: 'pending', attempts: 0 });
    if (url.pathname.endsWith('/rotate-secret')) return json(200, { ...hook, secret: 'whsec_rotated' });
    if (request.method === 'DELETE') return new Response(null, { status: 204 });
    return json(404, { type: 'about:blank', title: 'Not Found', status: 404, detail: 'no', code: 'not_found' });
  };
  const stdout = new Capture();
  const stderr = new Capture();
  const io: CliIO = { stdout, stderr, env: { MODEL_REPO_URL: ORIGIN, MODEL_REPO_API_KEY: 'mr_test' }, fetch };
  return { requests, stdout, stderr, io };
}

describe('model-repo webhooks', () => {
  it('create sends the URL and events and prints the secret once', async () => {
    const { requests, stdout, io } = setup();
    expect(await runCli(['webhooks', 'create', '--space', 'ml', '--target', 'https://ci.example.com/hooks', '--event', 'alias.set', '--event', 'model.created'], io)).toBe(0);
    expect(requests[0]).toMatchObject({ method: 'POST', path: '/api/v1.0/catalog/spaces/ml/webhooks', body: { url: 'https://ci.example.com/hooks', events: ['alias.set', 'model.created'] } });
    expect(stdout.text).toContain('secret: whsec_new');
  });

  it('create defaults to every event; --inactive creates it paused', async () => {
    const { requests, io } = setup();
    expect(await runCli(['webhooks', 'create', '--space', 'ml', '--target', 'https://x.example.com/h', '--inactive', '--json'], io)).toBe(0);
    expect(requests[0]!.body).toEqual({ url: 'https://x.example.com/h', events: ['*'], active: false });
  });

  it('ls, deliveries, ping, redeliver, rotate and delete call their operations', async () => {
    const { requests, stdout, io } = setup();
    expect(await runCli(['webhooks', 'ls', '--space', 'ml'], io)).toBe(0);
    expect(stdout.text).toMatch(new RegExp(`${hook.id}\\s+active\\s+alias.set,model.created\\s+https://ci.example.com/hooks`));
    expect(await runCli(['webhooks', 'deliveries', hook.id, '--space', 'ml', '--limit', '5'], io)).toBe(0);
    expect(stdout.text).toContain('HTTP 503: down');
    expect(await runCli(['webhooks', 'ping', hook.id, '--space', 'ml'], io)).toBe(0);
    expect(await runCli(['webhooks', 'redeliver', hook.id, delivery.id, '--space', 'ml'], io)).toBe(0);
    expect(await runCli(['webhooks', 'rotate', hook.id, '--space', 'ml'], io)).toBe(0);
    expect(stdout.text).toContain('whsec_rotated');
    expect(await runCli(['webhooks', 'delete', hook.id, '--space', 'ml'], io)).toBe(0);
    expect(requests.map((r) => `${r.method} ${r.path}${r.query}`)).toEqual([
      'GET /api/v1.0/catalog/spaces/ml/webhooks',
      `GET /api/v1.0/catalog/spaces/ml/webhooks/${hook.id}/deliveries?limit=5`,
      `POST /api/v1.0/catalog/spaces/ml/webhooks/${hook.id}/ping`,
      `POST /api/v1.0/catalog/spaces/ml/webhooks/${hook.id}/deliveries/${delivery.id}/redeliver`,
      `POST /api/v1.0/catalog/spaces/ml/webhooks/${hook.id}/rotate-secret`,
      `DELETE /api/v1.0/catalog/spaces/ml/webhooks/${hook.id}`,
    ]);
  });

  it('usage errors exit with 2', async () => {
    const { stderr, io } = setup();
    expect(await runCli(['webhooks', 'ls'], io)).toBe(2);
    expect(stderr.text).toContain('--space <slug> is required');
    expect(await runCli(['webhooks', 'explode', '--space', 'ml'], io)).toBe(2);
    expect(await runCli(['webhooks', 'create', '--space', 'ml'], io)).toBe(2);
    expect(await runCli(['webhooks', 'redeliver', hook.id, '--space', 'ml'], io)).toBe(2);
  });
});
