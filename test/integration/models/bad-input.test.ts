/**
 * Bad input on the model-record operations: length limits, patterns and formats, JSON-object
 * fields, unknown fields, bad enums, malformed JSON, wrong content types, bad path ids. Every
 * one is a 4xx problem document (never a 500) and leaves the database as it was. Plus the
 * response headers every response carries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, startTestApp, type TestApp, type TestUser } from '../../support/app.ts';
import {
  expectOk,
  expectProblem,
  model,
  orgModels,
  rowCounts,
  spaceModels,
  versions,
  type ModelSummary,
} from './helpers.ts';

const ORG = 'bad-org';
const SPACE = 'bad';
const KiB = 1024;

/** A JSON object whose serialization is exactly `bytes` long. */
function objectOfSize(bytes: number): Record<string, string> {
  const overhead = JSON.stringify({ pad: '' }).length;
  return { pad: 'x'.repeat(bytes - overhead) };
}

// One representative per length group of the spec, with its maximum.
const LENGTHS: [string, number][] = [
  ['name', 200],
  ['description', 2000],
  ['long_description', 20_000],
  ['provider', 200], // the short-text group: provider, model_architecture, framework, vendor_*, …
  ['vendor_model_id', 200],
  ['environment', 100], // with model_task_type
  ['model_task_type', 100],
  ['intended_use', 5000], // with limitations, business_use_case
  ['business_use_case', 5000],
];

const targets = await databaseTargets();

for (const target of targets) {
  describe.skipIf(!target.create)(`bad input on ${target.dialect}`, () => {
    let app: TestApp;
    let owner: TestUser;
    let existing: ModelSummary;

    const create = (body: unknown, headers?: Record<string, string>) =>
      app.request<ModelSummary>('POST', spaceModels(SPACE), { key: owner.key, body, headers });
    const patch = (body: unknown, headers?: Record<string, string>) =>
      app.request<ModelSummary>('PATCH', model(existing.id), { key: owner.key, body, headers });

    /** The request must fail with `status` (and `code`) and leave every row and the record as they were. */
    async function refused(send: () => ReturnType<typeof create>, status: number, code?: string) {
      const before = await rowCounts(app);
      const record = expectOk<ModelSummary>(await app.request('GET', model(existing.id), { key: owner.key }));
      const res = await send();
      const problem = expectProblem(res, status, code);
      expect(await rowCounts(app)).toEqual(before);
      expect(expectOk<ModelSummary>(await app.request('GET', model(existing.id), { key: owner.key }))).toEqual(record);
      return problem;
    }

    beforeAll(async () => {
      app = await startTestApp(target);
      owner = await app.bootstrap(ORG, SPACE, 'owner@bad.test');
      existing = expectOk<ModelSummary>(await create({ name: 'Existing Model', description: 'keep me', input_schema: { type: 'object' } }), 201);
    });
    afterAll(() => app?.close());

    describe('length limits', () => {
      for (const [field, max] of LENGTHS) {
        it(`${field}: ${max} characters pass, ${max + 1} are 422 on create and PATCH`, async () => {
          const at = expectOk<ModelSummary>(await create({ name: `len ${field}`, [field]: 'é'.repeat(max) }), 201);
          expect((at as Record<string, unknown>)[field]).toBe('é'.repeat(max)); // characters, not bytes
          const p1 = await refused(() => create({ name: `len ${field} 2`, [field]: 'a'.repeat(max + 1) }), 422, 'validation_error');
          expect(p1.errors).toContainEqual({ loc: ['body', field], msg: expect.any(String), type: 'maxLength' });
          const p2 = await refused(() => patch({ [field]: 'a'.repeat(max + 1) }), 422, 'validation_error');
          expect(p2.errors!.map((e) => e.loc.join('.'))).toContain(`body.${field}`);
        });
      }

      it('slug: 100 characters pass, 101 are 422', async () => {
        expectOk(await create({ name: 'long slug', slug: 'a'.repeat(100) }), 201);
        await refused(() => create({ name: 'long slug 2', slug: 'b'.repeat(101) }), 422, 'validation_error');
      });

      it('serving_url: 2048 characters pass, 2049 are 422', async () => {
        const url = (n: number) => `https://models.example.com/${'p'.repeat(n - 'https://models.example.com/'.length)}`;
        expectOk(await create({ name: 'long url', serving_url: url(2048) }), 201);
        await refused(() => create({ name: 'long url 2', serving_url: url(2049) }), 422, 'validation_error');
      });

      it('an empty name is 422', async () => {
        await refused(() => create({ name: '' }), 422, 'validation_error');
        await refused(() => patch({ name: '' }), 422, 'validation_error');
      });
    });

    describe('patterns and formats', () => {
      it.each(['Bad Slug', 'UPPER', 'a--b', '-a', 'a-', 'a_b', 'ümlaut', 'a/b', ''])('slug %j is 422 (create and PATCH)', async (slug) => {
        const p = await refused(() => create({ name: 'slug test', slug }), 422, 'validation_error');
        expect(p.errors!.map((e) => e.loc.join('.'))).toContain('body.slug');
        await refused(() => patch({ slug }), 422, 'validation_error');
      });

      it.each(['not a url', 'models.example.com/churn', '://missing-scheme', 'http://exa mple.com'])(
        'serving_url %j is 422',
        async (serving_url) => {
          const p = await refused(() => create({ name: 'url test', serving_url }), 422, 'validation_error');
          expect(p.errors!.map((e) => e.loc.join('.'))).toContain('body.serving_url');
          await refused(() => patch({ serving_url }), 422, 'validation_error');
        },
      );

      it('serving_url accepts absolute URIs', async () => {
        for (const serving_url of ['https://models.example.com/churn', 'http://10.0.0.5:8501/v1/models/churn:predict', 'grpc://serving.internal:9000']) {
          expect(expectOk<ModelSummary>(await create({ name: `url ${serving_url}`, serving_url }), 201).serving_url).toBe(serving_url);
        }
      });
    });

    describe('input_schema and output_schema', () => {
      it.each([
        ['an array', []],
        ['a string', '{"type":"object"}'],
        ['a number', 5],
        ['a boolean', true],
      ])('%s is 422', async (_title, value) => {
        for (const field of ['input_schema', 'output_schema']) {
          const p = await refused(() => create({ name: 'schema test', [field]: value }), 422, 'validation_error');
          expect(p.errors!.map((e) => e.loc.join('.'))).toContain(`body.${field}`);
          await refused(() => patch({ [field]: value }), 422, 'validation_error');
        }
      });

      it('64 KiB pass, one byte more is 422 (create and PATCH)', async () => {
        const ok = expectOk<ModelSummary>(await create({ name: 'schema at limit', input_schema: objectOfSize(64 * KiB) }), 201);
        expect(JSON.stringify(ok.input_schema)).toHaveLength(64 * KiB);
        const p = await refused(() => create({ name: 'schema over', output_schema: objectOfSize(64 * KiB + 1) }), 422, 'validation_error');
        expect(p.errors).toContainEqual({ loc: ['body', 'output_schema'], msg: expect.any(String), type: expect.any(String) });
        await refused(() => patch({ input_schema: objectOfSize(200 * KiB) }), 422, 'validation_error');
      });

      it('nested objects round-trip unchanged', async () => {
        const schema = { type: 'object', properties: { a: { type: 'array', items: { type: 'number' } }, 'ü é': { const: null } }, required: ['a'] };
        const s = expectOk<ModelSummary>(await create({ name: 'nested schema', input_schema: schema, output_schema: {} }), 201);
        expect(s.input_schema).toEqual(schema);
        expect(s.output_schema).toEqual({});
      });
    });

    describe('unknown fields, enums and types', () => {
      it('an unknown field is 422 with errors[{loc, msg, type}] naming it', async () => {
        const p = await refused(() => create({ name: 'unknown', colour: 'blue' }), 422, 'validation_error');
        expect(p.errors).toEqual([{ loc: ['body', 'colour'], msg: expect.any(String), type: 'additionalProperties' }]);
        const p2 = await refused(() => patch({ space_id: '00000000-0000-4000-8000-000000000000' }), 422, 'validation_error');
        expect(p2.errors!.map((e) => e.loc.join('.'))).toEqual(['body.space_id']);
        // Server-assigned summary fields are not writable either.
        await refused(() => patch({ version_count: 3 }), 422, 'validation_error');
        await refused(() => create({ name: 'x', is_archived: true }), 422, 'validation_error');
      });

      it.each([
        ['product_type', 'Robot'],
        ['product_type', 'ml model'],
        ['model_family', 'deep_learning'],
        ['risk_classification', 'extreme'],
        ['lifecycle_stage', 'sunset'],
        ['deployment_status', 'live'],
      ])('%s %j is 422 (create and PATCH)', async (field, value) => {
        const p = await refused(() => create({ name: 'enum test', [field]: value }), 422, 'validation_error');
        expect(p.errors!.some((e) => e.loc.join('.') === `body.${field}`)).toBe(true);
        await refused(() => patch({ [field]: value }), 422, 'validation_error');
      });

      it.each([
        ['name', 42],
        ['name', null],
        ['description', ['a']],
        ['is_gpai', 'yes'],
        ['provider', { name: 'x' }],
      ])('%s of the wrong type (%j) is 422', async (field, value) => {
        await refused(() => create({ name: 'type test', [field]: value }), 422, 'validation_error');
      });

      it('a missing name is 422', async () => {
        const p = await refused(() => create({ description: 'no name' }), 422, 'validation_error');
        expect(p.errors!.some((e) => e.loc.join('.').includes('name'))).toBe(true);
      });

      it.each([
        ['an array', '[]'],
        ['a string', '"model"'],
        ['null', 'null'],
        ['a number', '5'],
      ])('well-formed JSON that is %s is 422 (body must be an object), not a malformed-JSON 400', async (_title, body) => {
        const p = await refused(() => create(body), 422, 'validation_error');
        expect(p.errors).toEqual([{ loc: ['body'], msg: expect.any(String), type: 'type' }]);
        await refused(() => patch(body), 422, 'validation_error');
        await refused(() => app.request('POST', versions(existing.id), { key: owner.key, body }), 422, 'validation_error');
      });
    });

    describe('characters no database can store, and pathological shapes', () => {
      it.each([
        ['name', { name: 'bad\u0000name' }, ['body', 'name']],
        ['a nested schema string', { name: 'ok', input_schema: { a: { b: ['x\u0000'] } } }, ['body', 'input_schema', 'a', 'b', 0]],
        ['a schema key', { name: 'ok', output_schema: { 'k\u0000': 1 } }, ['body', 'output_schema', 'k\u0000']],
      ])('a NUL in %s is 422 naming where (create and PATCH)', async (_title, body, loc) => {
        const p = await refused(() => create(body), 422, 'validation_error');
        expect(p.errors).toEqual([{ loc, msg: expect.stringMatching(/NUL/), type: 'pattern' }]);
        const { name: _n, ...rest } = body as Record<string, unknown>;
        await refused(() => patch(Object.keys(rest).length > 0 ? rest : body), 422, 'validation_error');
      });

      it('a NUL in a query value is 422, in a path slug 404', async () => {
        for (const query of ['?q=%00', '?q=a%00b', '?model_task_type=x%00']) {
          const p = await refused(() => app.request('GET', spaceModels(SPACE, query), { key: owner.key }), 422, 'validation_error');
          expect(p.errors![0]!.loc[0]).toBe('query');
        }
        await refused(() => app.request('GET', spaceModels('bad%00'), { key: owner.key }), 404, 'not_found');
        await refused(() => app.request('GET', orgModels('bad-org%00'), { key: owner.key }), 404, 'not_found');
        await refused(() => app.request('POST', spaceModels('bad%00'), { key: owner.key, body: { name: 'x' } }), 404, 'not_found');
      });

      it('JSON nested deeper than 64 levels is 422, quickly; 30 levels are fine', async () => {
        const deep = (n: number) => `{"name":"deep ${n}","input_schema":{"a":${'['.repeat(n)}${']'.repeat(n)}}}`;
        const started = Date.now();
        const p = await refused(() => create(deep(100_000)), 422, 'validation_error');
        expect(p.errors![0]!.type).toBe('maxDepth');
        expect(Date.now() - started).toBeLessThan(5_000);
        await refused(() => create(deep(70)), 422, 'validation_error');
        expectOk(await create(deep(30)), 201);
      });

      it('skip beyond 2^53 is 422; the largest safe skip is an empty page with exact headers', async () => {
        const p = await refused(() => app.request('GET', spaceModels(SPACE, '?skip=99999999999999999999'), { key: owner.key }), 422);
        expect(p.errors).toEqual([{ loc: ['query', 'skip'], msg: expect.any(String), type: 'maximum' }]);
        const res = await app.request('GET', spaceModels(SPACE, `?skip=${Number.MAX_SAFE_INTEGER}&limit=1`), { key: owner.key });
        expect(expectOk(res)).toEqual([]);
        expect(res.headers.get('x-page')).toBe(String(Number.MAX_SAFE_INTEGER + 1));
        expect(res.headers.get('x-has-more')).toBe('false');
      });
    });

    describe('malformed bodies and content types', () => {
      it.each([
        ['truncated', '{"name": "x"'],
        ['trailing comma', '{"name": "x",}'],
        ['single quotes', "{'name': 'x'}"],
        ['not JSON at all', 'name=x'],
      ])('malformed JSON (%s) is 400 malformed_json', async (_title, body) => {
        await refused(() => create(body), 400, 'malformed_json');
        await refused(() => patch(body), 400, 'malformed_json');
        await refused(() => app.request('POST', versions(existing.id), { key: owner.key, body }), 400, 'malformed_json');
      });

      it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x'])(
        'Content-Type %s is 415',
        async (type) => {
          await refused(() => create(JSON.stringify({ name: 'wrong type' }), { 'Content-Type': type }), 415, 'unsupported_media_type');
          await refused(() => patch(JSON.stringify({ description: 'wrong type' }), { 'Content-Type': type }), 415, 'unsupported_media_type');
        },
      );

      it('application/json with a charset parameter is fine', async () => {
        const res = await create(JSON.stringify({ name: 'charset ok' }), { 'Content-Type': 'application/json; charset=utf-8' });
        expectOk(res, 201);
      });

      it('a JSON body over 1 MiB is 413 payload_too_large', async () => {
        await refused(() => create({ name: 'huge', long_description: 'x'.repeat(2 * 1024 * KiB) }), 413, 'payload_too_large');
      });

      it('an empty JSON body is 422 on create (a PATCH reads it as {}); no body and no Content-Type is 415 saying so', async () => {
        await refused(() => app.request('POST', spaceModels(SPACE), { key: owner.key, headers: { 'Content-Type': 'application/json' } }), 422);
        const before = expectOk<ModelSummary>(await app.request('GET', model(existing.id), { key: owner.key }));
        const empty = await app.request('PATCH', model(existing.id), { key: owner.key, headers: { 'Content-Type': 'application/json' } });
        expect(expectOk<ModelSummary>(empty)).toEqual(before);
        const p = await refused(() => app.request('POST', spaceModels(SPACE), { key: owner.key }), 415, 'unsupported_media_type');
        expect(p.detail).toMatch(/no Content-Type/);
        await refused(() => app.request('PATCH', model(existing.id), { key: owner.key }), 415, 'unsupported_media_type');
      });
    });

    describe('path ids', () => {
      it.each(['not-a-uuid', '123', 'ffffffff-ffff-ffff-ffff-fffffffffffg', `${'a'.repeat(300)}`, '%20'])(
        'product id %j is 404 on every product operation',
        async (id) => {
          for (const [method, path, body] of [
            ['GET', model(id), undefined],
            ['PATCH', model(id), { description: 'x' }],
            ['GET', versions(id), undefined],
            ['POST', versions(id), {}],
          ] as const) {
            await refused(() => app.request(method, path, { key: owner.key, body }), 404, 'not_found');
          }
        },
      );

      it('an upper-case UUID names the same product', async () => {
        const s = expectOk<ModelSummary>(await app.request('GET', model(existing.id.toUpperCase()), { key: owner.key }));
        expect(s.id).toBe(existing.id);
      });

      it('an unknown route under the prefix is 404 problem+json; a wrong method is 405 with Allow', async () => {
        expectProblem(await app.request('GET', '/catalog/nothing-here', { key: owner.key }), 404, 'not_found');
        const res = await refused(() => app.request('DELETE', model(existing.id), { key: owner.key }), 405, 'method_not_allowed');
        expect(res.status).toBe(405);
        const again = await app.request('PUT', spaceModels(SPACE), { key: owner.key, body: { name: 'x' } });
        expectProblem(again, 405, 'method_not_allowed');
        expect(again.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'POST']);
        const del = await app.request('DELETE', model(existing.id), { key: owner.key });
        expect(del.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'PATCH']);
      });
    });

    describe('response headers', () => {
      it('X-Request-Id on every response: generated, or echoed when it is sane', async () => {
        const responses = [
          await app.request('GET', spaceModels(SPACE), { key: owner.key }),
          await app.request('GET', spaceModels(SPACE)),
          await app.request('GET', spaceModels('nope'), { key: owner.key }),
          await create({ name: 'rid' }),
          await create('{bad'),
          await create({ name: 'rid', bogus: 1 }),
          await app.request('GET', '/healthz'),
        ];
        const seen = new Set<string>();
        for (const res of responses) {
          const id = res.headers.get('x-request-id');
          expect(id).toBeTruthy();
          seen.add(id!);
        }
        expect(seen.size).toBe(responses.length);
        const echoed = await app.request('GET', spaceModels(SPACE), { key: owner.key, headers: { 'X-Request-Id': 'trace-abc.123' } });
        expect(echoed.headers.get('x-request-id')).toBe('trace-abc.123');
        const failed = await app.request('GET', spaceModels(SPACE, '?limit=0'), { key: owner.key, headers: { 'X-Request-Id': 'trace-err-1' } });
        expect(failed.headers.get('x-request-id')).toBe('trace-err-1');
        // An id that could inject into logs or headers is replaced, not echoed.
        const hostile = await app.request('GET', spaceModels(SPACE), { key: owner.key, headers: { 'X-Request-Id': 'a b<script>' } });
        expect(hostile.headers.get('x-request-id')).not.toBe('a b<script>');
        expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      });

      it('problem+json on every error, with instance = the path', async () => {
        const p = expectProblem(await app.request('GET', spaceModels('nope', '?limit=5'), { key: owner.key }), 404);
        expect(p.instance).toBe(`/api/v1.0${spaceModels('nope')}`);
      });

      it('WWW-Authenticate on 401; Location on 201 only', async () => {
        const unauth = await app.request('POST', spaceModels(SPACE), { body: { name: 'x' } });
        expectProblem(unauth, 401, 'unauthenticated');
        expect(unauth.headers.get('www-authenticate')).toMatch(/^Bearer realm="[^"]+"$/);
        const created = await create({ name: 'located' });
        const s = expectOk<ModelSummary>(created, 201);
        expect(created.headers.get('location')).toBe(`/api/v1.0/catalog/products/${s.id}/model-repository`);
        const v = await app.request('POST', versions(s.id), { key: owner.key, body: {} });
        expectOk(v, 201);
        expect((await app.request('GET', model(s.id), { key: owner.key })).headers.get('location')).toBeNull();
      });

      it('CORS exposes the paging headers and the request id', async () => {
        const res = await app.request('GET', orgModels(ORG), { key: owner.key, headers: { Origin: 'https://app.example.com' } });
        expectOk(res);
        const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase();
        for (const h of ['x-total-count', 'x-page', 'x-has-more', 'x-request-id', 'location']) expect(exposed).toContain(h);
      });
    });
  });
}
