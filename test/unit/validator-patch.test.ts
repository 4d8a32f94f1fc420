/**
 * patches/express-openapi-validator+*.patch (applied by patch-package on install) changes three
 * things in the validator; each is checked here by its behaviour, so a dependency update or an
 * install without the patch fails these tests instead of silently costing every request:
 * 1. the route table (a path-to-regexp matcher per documented route) is compiled once, not on
 *    every request;
 * 2. dereferenced parameter schemas are cached per Ajv instance;
 * 3. once the spec is loaded, the validator's middlewares run without a promise hop each.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import express, { type NextFunction, type Request, type Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDocument } from '../../server/src/http/spec.ts';

// The validator's own copies of the modules (CommonJS, loaded once per process).
const validatorRequire = createRequire(createRequire(import.meta.url).resolve('express-openapi-validator'));
const pathToRegexpModule = validatorRequire('path-to-regexp') as { pathToRegexp: (...args: unknown[]) => unknown };
const parserUtil = validatorRequire('./middlewares/parsers/util.js') as { dereferenceSchema: (ajv: unknown, ref: string) => unknown };

const SYNC = Symbol('same tick as the first middleware');
type Marked = Request & { [SYNC]?: boolean };

let server: Server;
let origin = '';
let compiledMatchers = 0;
const originalPathToRegexp = pathToRegexpModule.pathToRegexp;

beforeAll(async () => {
  pathToRegexpModule.pathToRegexp = (...args: unknown[]) => {
    compiledMatchers++;
    return originalPathToRegexp(...args);
  };
  const app = express();
  // Marks the request while the middlewares after it run synchronously from this one.
  app.use((req: Marked, _res: Response, next: NextFunction) => {
    req[SYNC] = true;
    next();
    req[SYNC] = false;
  });
  app.use(
    OpenApiValidator.middleware({
      apiSpec: apiDocument(),
      validateApiSpec: false,
      validateRequests: { allowUnknownQueryParameters: false, removeAdditional: false },
      validateResponses: false,
      validateSecurity: false,
    }),
  );
  app.use((req: Marked, res: Response) => {
    res.json({ sync: req[SYNC] === true, operationId: (req as Request & { openapi?: { schema?: { operationId?: string } } }).openapi?.schema?.operationId });
  });
  app.use((err: { status?: number; message: string }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status ?? 500).json({ error: err.message });
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  pathToRegexpModule.pathToRegexp = originalPathToRegexp;
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

const PRODUCT = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';
const requests = [
  '/api/v1.0/catalog/spaces/default/model-repository/models?limit=10',
  `/api/v1.0/catalog/products/${PRODUCT}/model-repository`,
  `/api/v1.0/catalog/products/${PRODUCT}/model-artifacts`,
  '/api/v1.0/organizations/acme/model-repository/models?skip=5',
];

async function get(path: string): Promise<{ status: number; body: { sync?: boolean; operationId?: string } }> {
  const res = await fetch(`${origin}${path}`);
  return { status: res.status, body: (await res.json()) as { sync?: boolean; operationId?: string } };
}

describe('the express-openapi-validator patch', () => {
  it('compiles the route table once, on the first request, and never again', async () => {
    expect(compiledMatchers).toBe(0);
    const first = await get(requests[0]!);
    expect(first.status).toBe(200);
    expect(first.body.operationId).toBe('listSpaceModels');
    const afterFirst = compiledMatchers;
    // One matcher per documented path (and no more than that).
    const documentedPaths = Object.keys((apiDocument() as { paths: object }).paths).length;
    expect(afterFirst).toBeGreaterThanOrEqual(documentedPaths);
    expect(afterFirst).toBeLessThanOrEqual(2 * documentedPaths);
    for (const path of [...requests, ...requests]) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
    }
    expect(compiledMatchers).toBe(afterFirst);
  });

  it('runs the validator middlewares in the same tick once the spec is loaded', async () => {
    await get(requests[0]!); // loaded for sure
    for (const path of requests) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.body.sync, path).toBe(true);
    }
  });

  it('still matches, validates and refuses as before', async () => {
    expect((await get(requests[1]!)).body.operationId).toBe('getModel');
    expect((await get('/api/v1.0/catalog/spaces/default/model-repository/models?limit=0')).status).toBe(400);
    expect((await get('/api/v1.0/catalog/spaces/default/model-repository/models?colour=red')).status).toBe(400);
    expect((await get('/api/v1.0/no/such/route')).status).toBe(404);
  });

  it('resolves each $ref through Ajv once per Ajv instance', () => {
    const lookups: string[] = [];
    const fakeAjv = (schemas: Record<string, object>) => ({
      getSchema(ref: string) {
        lookups.push(ref);
        const schema = schemas[ref];
        return schema ? { schema } : undefined;
      },
    });
    const one = fakeAjv({ '#/components/schemas/Limit': { type: 'integer' } });
    expect(parserUtil.dereferenceSchema(one, '#/components/schemas/Limit')).toEqual({ type: 'integer' });
    expect(parserUtil.dereferenceSchema(one, '#/components/schemas/Limit')).toEqual({ type: 'integer' });
    expect(lookups).toEqual(['#/components/schemas/Limit']);
    const other = fakeAjv({ '#/components/schemas/Limit': { type: 'string' } });
    expect(parserUtil.dereferenceSchema(other, '#/components/schemas/Limit')).toEqual({ type: 'string' });
    expect(lookups).toHaveLength(2);
  });
});
