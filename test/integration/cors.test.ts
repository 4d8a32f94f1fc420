/**
 * CORS on SQLite and PostgreSQL: a browser's preflight for any request header the spec defines
 * (and any other it asks for) is allowed, and every response header the spec documents is exposed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiSpec, deref, listOperations } from '../support/spec-check.ts';
import { API, databaseTargets, startTestApp, type TestApp, type TestUser } from '../support/app.ts';

/** Header parameters and documented response headers of every operation of the spec. */
function specHeaders(): { request: Set<string>; response: Set<string> } {
  const request = new Set<string>();
  const response = new Set<string>();
  for (const op of listOperations()) {
    for (const p of op.operation.parameters ?? []) {
      const param = deref(p, op.pointer).value;
      if (param.in === 'header') request.add(param.name);
    }
    for (const r of Object.values(op.operation.responses ?? {})) {
      for (const name of Object.keys(deref(r, op.pointer).value.headers ?? {})) response.add(name);
    }
  }
  expect(apiSpec().openapi).toMatch(/^3\.1/);
  return { request, response };
}

for (const target of await databaseTargets()) {
  describe.skipIf(!target.create)(`CORS on ${target.dialect}`, () => {
    let app: TestApp;
    let owner: TestUser;
    beforeAll(async () => {
      app = await startTestApp(target, { CORS_ORIGINS: 'https://app.example' });
      owner = await app.bootstrap('cors-org', 'cors-space', 'cors@example.com');
    });
    afterAll(() => app?.close());

    it('answers a preflight with every request header the spec defines, and any other asked for', async () => {
      const { request } = specHeaders();
      expect([...request]).toEqual(expect.arrayContaining(['Content-Digest', 'Range', 'If-None-Match']));
      const asked = ['Authorization', 'Content-Type', ...request, 'Idempotency-Key', 'X-Request-Id', 'X-Client-Version'];
      const res = await fetch(`${app.origin}${API}/catalog/spaces/cors-space/model-repository/models`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': asked.join(', ').toLowerCase() },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const allowed = (res.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
      for (const h of asked) expect(allowed, h).toContain(h.toLowerCase());
      expect(res.headers.get('vary')?.toLowerCase()).toContain('access-control-request-headers');
    });

    it('exposes every response header the spec documents', async () => {
      const { response } = specHeaders();
      const res = await fetch(`${app.origin}${API}/catalog/spaces/cors-space/model-repository/models`, {
        headers: { Origin: 'https://app.example', Authorization: `Bearer ${owner.key}` },
      });
      expect(res.status).toBe(200);
      const exposed = (res.headers.get('access-control-expose-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
      for (const h of response) expect(exposed, h).toContain(h.toLowerCase());
    });

    it('refuses an origin not configured', async () => {
      const res = await fetch(`${app.origin}${API}/catalog/spaces/cors-space/model-repository/models`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' },
      });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    });
  });
}
