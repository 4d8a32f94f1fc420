import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  createModelRepositoryClient,
  ModelRepositoryError,
  ModelRepositoryNetworkError,
  resolveBaseUrl,
  sdkVersion,
  type ModelSummary,
} from '../../src/index.ts';
import { API_KEY, API_ORIGIN, connectionReset, FakeModelRepository, problem, recordingSleep } from '../support/fake-server.ts';

function setup(options: { apiKey?: string; userAgent?: string } = {}) {
  const fake = new FakeModelRepository();
  const { sleep, delays } = recordingSleep();
  const client = createModelRepositoryClient({
    baseUrl: API_ORIGIN,
    apiKey: options.apiKey ?? API_KEY,
    fetch: fake.fetch,
    retry: { sleep },
    ...(options.userAgent ? { userAgent: options.userAgent } : {}),
  });
  return { fake, client, delays };
}

function models(n: number): ModelSummary[] {
  return Array.from({ length: n }, (_, i) => ({ id: `m-${i}`, name: `Model ${i}` }) as unknown as ModelSummary);
}

describe('createModelRepositoryClient', () => {
  it('resolves the API root from a server URL', () => {
    expect(resolveBaseUrl('http://h:8080')).toBe('http://h:8080/api/v1.0');
    expect(resolveBaseUrl('http://h:8080/')).toBe('http://h:8080/api/v1.0');
    expect(resolveBaseUrl('http://h:8080/api/v1.0/')).toBe('http://h:8080/api/v1.0');
    expect(resolveBaseUrl('https://h/models')).toBe('https://h/models/api/v1.0');
  });

  it('sends the API key as a bearer token and a User-Agent', async () => {
    const { fake, client } = setup();
    fake.addArtifact('p1', new Uint8Array(1));
    await client.listArtifacts('p1').catch(() => {});
    const request = fake.requests[0]!;
    expect(request.url.href).toBe(`${API_ORIGIN}/api/v1.0/catalog/products/p1/model-artifacts`);
    expect(request.headers.get('Authorization')).toBe(`Bearer ${API_KEY}`);
    expect(request.headers.get('User-Agent')).toBe(`model-repository-sdk/${sdkVersion} node/${process.versions.node}`);
  });

  it('uses a given User-Agent', async () => {
    const { fake, client } = setup({ userAgent: 'my-tool/2.0' });
    await client.getModel('x').catch(() => {});
    expect(fake.requests[0]!.headers.get('User-Agent')).toBe('my-tool/2.0');
  });

  it('keeps its version in step with package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(sdkVersion).toBe(pkg.version);
  });
});

describe('errors', () => {
  it('maps a problem document to ModelRepositoryError with every field', async () => {
    const { fake, client } = setup();
    fake.interceptors.push(
      () =>
        new Response(
          JSON.stringify({
            type: 'about:blank',
            title: 'Unprocessable Content',
            status: 422,
            detail: 'The request is invalid',
            code: 'validation_error',
            instance: '/api/v1.0/catalog/spaces/default/model-repository/models',
            errors: [{ loc: ['body', 'name'], msg: 'is required', type: 'required' }],
          }),
          { status: 422, headers: { 'Content-Type': 'application/problem+json', 'X-Request-Id': 'rid-42' } },
        ),
    );
    const error = await client.createModel('default', { name: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryError);
    const e = error as ModelRepositoryError;
    expect(e.status).toBe(422);
    expect(e.code).toBe('validation_error');
    expect(e.detail).toBe('The request is invalid');
    expect(e.title).toBe('Unprocessable Content');
    expect(e.errors).toEqual([{ loc: ['body', 'name'], msg: 'is required', type: 'required' }]);
    expect(e.requestId).toBe('rid-42');
    expect(e.problem?.instance).toBe('/api/v1.0/catalog/spaces/default/model-repository/models');
    expect(e.message).toBe('The request is invalid (HTTP 422 validation_error, request id rid-42)');
  });

  it('throws from the raw typed client too (one error style)', async () => {
    const { client } = setup({ apiKey: 'wrong' });
    const error = await client.api
      .GET('/catalog/products/{product_id}/model-repository', { params: { path: { product_id: 'p' } } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryError);
    expect((error as ModelRepositoryError).status).toBe(401);
    expect((error as ModelRepositoryError).code).toBe('unauthenticated');
  });

  it('maps a non-problem error body (a proxy page) to a generic code', async () => {
    const { fake, client } = setup();
    fake.interceptors.push(() => new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    const error = (await client.api
      .DELETE('/catalog/products/{product_id}/model-artifacts/{artifact_id}', { params: { path: { product_id: 'p', artifact_id: 'a' } } })
      .catch((e: unknown) => e)) as ModelRepositoryError;
    expect(error.status).toBe(502);
    expect(error.code).toBe('http_502');
    expect(error.detail).toBe('<html>Bad gateway</html>');
    expect(error.problem).toBeNull();
  });

  it('maps a failed connection to ModelRepositoryNetworkError', async () => {
    const { fake, client } = setup();
    fake.interceptors.push(() => {
      throw connectionReset();
    });
    const error = await client.api.GET('/catalog/products/{product_id}/model-artifacts', { params: { path: { product_id: 'p' } } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelRepositoryNetworkError);
    expect((error as ModelRepositoryNetworkError).code).toBe('network_error');
    expect((error as Error).cause).toBeInstanceOf(TypeError);
  });

  it('keeps Retry-After on the error', async () => {
    const { fake, client } = setup();
    fake.interceptors.push(() => problem(429, 'rate_limited', 'Slow down', { 'Retry-After': '12' }));
    const error = (await client.api.GET('/catalog/products/{product_id}/versions', { params: { path: { product_id: 'p' } } }).catch((e: unknown) => e)) as ModelRepositoryError;
    expect(error.retryAfterMs).toBe(12_000);
  });
});

describe('listModels', () => {
  it('walks every page while X-Has-More says true, passing the filters', async () => {
    const { fake, client } = setup();
    fake.models = models(5);
    const pages = [];
    for await (const page of client.listModels({ space: 'ml' }, { limit: 2, types: ['ML Model', 'AI System'], deployment_status: 'production', q: 'churn' })) {
      pages.push(page);
    }
    expect(pages.map((p) => p.items.map((m) => m.id))).toEqual([['m-0', 'm-1'], ['m-2', 'm-3'], ['m-4']]);
    expect(pages.map((p) => [p.page, p.hasMore, p.totalCount, p.skip])).toEqual([
      [1, true, 5, 0],
      [2, true, 5, 2],
      [3, false, 5, 4],
    ]);
    const requests = fake.requests.map((r) => r.url);
    expect(requests.map((u) => u.pathname)).toEqual(Array(3).fill('/api/v1.0/catalog/spaces/ml/model-repository/models'));
    expect(requests.map((u) => u.searchParams.get('skip'))).toEqual(['0', '2', '4']);
    expect(requests[0]!.searchParams.getAll('types')).toEqual(['ML Model', 'AI System']);
    expect(requests[0]!.searchParams.get('deployment_status')).toBe('production');
    expect(requests[0]!.searchParams.get('q')).toBe('churn');
  });

  it('stops when X-Has-More is false even if the page is full', async () => {
    const { fake, client } = setup();
    fake.models = models(4);
    const all = await client.listModels({ organization: 'acme' }, { limit: 2 }).toArray();
    expect(all).toHaveLength(4);
    expect(fake.requests.map((r) => r.url.pathname)).toEqual(Array(2).fill('/api/v1.0/organizations/acme/model-repository/models'));
  });

  it('iterates items across pages lazily', async () => {
    const { fake, client } = setup();
    fake.models = models(7);
    const seen: string[] = [];
    for await (const model of client.listModels({ space: 'ml' }, { limit: 3 }).items()) {
      seen.push(model.id);
      if (seen.length === 4) break;
    }
    expect(seen).toEqual(['m-0', 'm-1', 'm-2', 'm-3']);
    expect(fake.requests).toHaveLength(2);
  });

  it('does not loop on an empty page that claims more', async () => {
    const { fake, client } = setup();
    fake.interceptors.push(() => new Response('[]', { status: 200, headers: { 'Content-Type': 'application/json', 'X-Has-More': 'true' } }));
    expect(await client.listModels({ space: 'ml' }).toArray()).toEqual([]);
    expect(fake.requests).toHaveLength(1);
  });

  it('rejects an ambiguous scope', () => {
    const { client } = setup();
    // @ts-expect-error -- both scopes at once, which the types already refuse
    expect(() => client.listModels({ space: 'a', organization: 'b' })).toThrow(TypeError);
  });

  it('throws the server error for a page', async () => {
    const { fake, client } = setup();
    fake.interceptors.push(() => problem(404, 'not_found', 'No such space'));
    await expect(client.listModels({ space: 'nope' }).toArray()).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });
});

describe('listEvents', () => {
  /** Answers event-list requests from `events` with the server's paging headers. */
  function serveEvents(fake: FakeModelRepository, events: { id: string }[]) {
    fake.interceptors.push((_request, recorded) => {
      if (!/\/events$/.test(recorded.url.pathname)) return undefined;
      const skip = Number(recorded.url.searchParams.get('skip') ?? 0);
      const limit = Number(recorded.url.searchParams.get('limit') ?? 50);
      const page = events.slice(skip, skip + limit);
      return new Response(JSON.stringify(page), {
        status: 200,
        headers: {
          'Content-Type': 'application/json',
          'X-Total-Count': String(events.length),
          'X-Page': String(Math.floor(skip / limit) + 1),
          'X-Has-More': String(skip + page.length < events.length),
        },
      });
    });
  }
  const events = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `e-${i}`, type: 'model.updated' }));

  it("walks a model's events page by page, sending types (repeated) and since (a Date as ISO 8601)", async () => {
    const { fake, client } = setup();
    serveEvents(fake, events(5));
    const since = new Date('2026-10-01T00:00:00Z');
    const pages = [];
    for await (const page of client.listEvents({ product: 'p1' }, { limit: 2, types: ['model.updated', 'artifact.created'], since })) pages.push(page);
    expect(pages.map((p) => p.items.map((e) => e.id))).toEqual([['e-0', 'e-1'], ['e-2', 'e-3'], ['e-4']]);
    expect(pages.map((p) => [p.page, p.hasMore, p.totalCount])).toEqual([
      [1, true, 5],
      [2, true, 5],
      [3, false, 5],
    ]);
    const urls = fake.requests.map((r) => r.url);
    expect(urls.map((u) => u.pathname)).toEqual(Array(3).fill('/api/v1.0/catalog/products/p1/events'));
    expect(urls.map((u) => u.searchParams.get('skip'))).toEqual(['0', '2', '4']);
    expect(urls[0]!.searchParams.getAll('types')).toEqual(['model.updated', 'artifact.created']);
    expect(urls[0]!.searchParams.get('since')).toBe('2026-10-01T00:00:00.000Z');
  });

  it("lists a space's events; items() stops fetching when the caller stops", async () => {
    const { fake, client } = setup();
    serveEvents(fake, events(7));
    const seen: string[] = [];
    for await (const e of client.listEvents({ space: 'ml' }, { limit: 3, since: '2026-10-01T00:00:00Z' }).items()) {
      seen.push(e.id);
      if (seen.length === 4) break;
    }
    expect(seen).toEqual(['e-0', 'e-1', 'e-2', 'e-3']);
    expect(fake.requests.map((r) => r.url.pathname)).toEqual(Array(2).fill('/api/v1.0/catalog/spaces/ml/events'));
    expect(fake.requests[0]!.url.searchParams.get('since')).toBe('2026-10-01T00:00:00Z');
  });

  it('rejects an ambiguous scope and throws the server error for a page', async () => {
    const { fake, client } = setup();
    // @ts-expect-error -- both scopes at once, which the types already refuse
    expect(() => client.listEvents({ product: 'p1', space: 'ml' })).toThrow(TypeError);
    fake.interceptors.push(() => problem(403, 'forbidden', 'You need the admin role'));
    await expect(client.listEvents({ space: 'ml' }).toArray()).rejects.toMatchObject({ status: 403, code: 'forbidden' });
  });
});
