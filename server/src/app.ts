/**
 * createApp(deps): the Express application, fully wired but never listening.
 * Order: request id + log → CORS → health/spec → ORM request context → auth → body parsers →
 * OpenAPI validator → operationId dispatch → 404 → problem renderer.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import cors from 'cors';
import * as OpenApiValidator from 'express-openapi-validator';
import { RequestContext } from '@mikro-orm/core';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import type { Orm } from './persistence/orm.ts';
import type { BlobStore } from './storage/blob-store.ts';
import { errors } from './errors.ts';
import { authenticate } from './access/api-keys.ts';
import { problemHandler } from './http/problem.ts';
import { apiDocument, openApiYaml } from './http/spec.ts';
import { createHandlerTable } from './http/handlers/index.ts';
import { multipartStorage } from './http/multipart.ts';
import { createServices, type Services } from './services/index.ts';
import type { OperationId, RequestContext as Ctx } from './http/types.ts';
import type { User } from './persistence/entities.ts';

export const API_PREFIX = '/api/v1.0';

export interface AppDeps {
  config: Config;
  orm: Orm;
  storage: BlobStore;
  logger: Logger;
  /** Built from the other deps when omitted. */
  services?: Services;
}

declare module 'express-serve-static-core' {
  interface Locals {
    requestId: string;
    log: Logger;
    user?: User;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const PUBLIC_API_PATHS = new Set(['/openapi.yaml']);

/** JSON bodies nest at most this deep (a deeper one is refused before anything recurses into it). */
const MAX_JSON_DEPTH = 64;

/**
 * No database text column (nor PostgreSQL jsonb) can hold U+0000: a NUL anywhere in the
 * request — a path segment, a query value, a JSON string or key — is refused here, before it
 * can reach a query and fail there as a 500. In the path it names nothing (404); elsewhere it
 * is invalid input (422). JSON nested deeper than MAX_JSON_DEPTH is refused too (422): later
 * steps (validation, size checks, the driver) recurse and would overflow the stack.
 */
function screenRequest(req: Request, _res: Response, next: NextFunction): void {
  const [path, query = ''] = req.originalUrl.split(/\?(.*)/s, 2) as [string, string?];
  if (/%00/i.test(path)) return next(errors.notFound('No such resource.'));
  if (/%00/i.test(query)) {
    const names = [...new URLSearchParams(query)].filter(([k, v]) => k.includes('\0') || v.includes('\0')).map(([k]) => k);
    const fieldErrors = [...new Set(names)].map((name) => ({ loc: ['query', name], msg: 'must not contain the NUL character', type: 'pattern' }));
    return next(errors.validation('The request is invalid: a query parameter contains the NUL character.', fieldErrors));
  }
  const problem = jsonProblem(req.body);
  if (problem) {
    const loc = ['body', ...problem.loc];
    return next(errors.validation(`The request is invalid: ${loc.join('.')} ${problem.msg}.`, [{ loc, msg: problem.msg, type: problem.type }]));
  }
  next();
}

interface PathNode {
  key: string | number;
  parent: PathNode | null;
}

/** The first NUL (in a string or key) or too-deep spot in a parsed JSON value; iterative, linear. */
function jsonProblem(value: unknown): { loc: (string | number)[]; msg: string; type: string } | null {
  const locOf = (node: PathNode | null) => {
    const loc: (string | number)[] = [];
    for (let n = node; n; n = n.parent) loc.unshift(n.key);
    return loc;
  };
  const stack: [unknown, number, PathNode | null][] = [[value, 0, null]];
  while (stack.length > 0) {
    const [v, depth, at] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\0')) return { loc: locOf(at), msg: 'must not contain the NUL character', type: 'pattern' };
    } else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_JSON_DEPTH) return { loc: locOf(at), msg: `nests deeper than ${MAX_JSON_DEPTH} levels`, type: 'maxDepth' };
      if (Array.isArray(v)) {
        v.forEach((item, i) => stack.push([item, depth + 1, { key: i, parent: at }]));
      } else {
        for (const [k, item] of Object.entries(v)) {
          if (k.includes('\0')) return { loc: locOf({ key: k, parent: at }), msg: 'must not contain the NUL character', type: 'pattern' };
          stack.push([item, depth + 1, { key: k, parent: at }]);
        }
      }
    }
  }
  return null;
}

export function createApp(deps: AppDeps): express.Express {
  const { config, orm, storage, logger } = deps;
  const services = deps.services ?? createServices({ config, orm, storage, logger });
  const handlers = createHandlerTable(services, config);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'extended');

  // Request id and access log.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get('X-Request-Id');
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    res.locals.requestId = requestId;
    res.locals.log = logger.child({ request_id: requestId });
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      res.locals.log.info(
        {
          method: req.method,
          path: req.originalUrl.split('?')[0],
          status: res.statusCode,
          duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
          user_id: res.locals.user?.id,
        },
        'request',
      );
    });
    next();
  });

  app.use(
    cors({
      origin: config.corsOrigins === '*' ? '*' : [...config.corsOrigins],
      exposedHeaders: ['X-Total-Count', 'X-Page', 'X-Has-More', 'X-Request-Id', 'ETag', 'Content-Disposition', 'Content-Range', 'Location'],
      allowedHeaders: ['Authorization', 'Content-Type', 'Content-Digest', 'Range', 'If-None-Match', 'X-Request-Id'],
      maxAge: 600,
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await services.system.readiness();
    const ok = Object.values(checks).every((c) => c === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  });
  app.get(`${API_PREFIX}/openapi.yaml`, (_req, res) => {
    res.type('application/yaml').send(openApiYaml());
  });

  // One EntityManager fork per request (never the global one).
  app.use((_req, _res, next) => RequestContext.create(orm.em, next));

  // Authentication for everything under the prefix; the document above is the one public path.
  app.use(API_PREFIX, async (req: Request, res: Response, next: NextFunction) => {
    if (PUBLIC_API_PATHS.has(req.path)) return next();
    try {
      const header = req.get('Authorization') ?? '';
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      res.locals.user = await authenticate(orm.em.fork(), match?.[1]);
      next();
    } catch (err) {
      next(err);
    }
  });

  // strict: false: a well-formed JSON scalar (`"x"`, `5`, `null`) is valid JSON of the wrong type,
  // which the validator answers with 422 (body must be object), not a "malformed JSON" 400.
  app.use(express.json({ limit: '1mb', type: ['application/json', 'application/*+json'], strict: false }));
  app.use(screenRequest);

  app.use(
    OpenApiValidator.middleware({
      apiSpec: apiDocument() as never,
      validateApiSpec: false,
      validateRequests: { allowUnknownQueryParameters: false, removeAdditional: false },
      validateResponses: config.validateResponses ? { removeAdditional: false } : false,
      validateSecurity: false,
      ignoreUndocumented: false,
      fileUploader: {
        storage: multipartStorage(services),
        // File names arrive as raw UTF-8 in multipart headers (what browsers send); busboy's default is latin1.
        defParamCharset: 'utf8',
        limits: { files: 1, fields: 20, fieldSize: 65_536, parts: 24, fileSize: config.maxArtifactSizeBytes },
      },
    }),
  );

  // Dispatch by operationId: the validator has matched the path and checked the request.
  app.use(API_PREFIX, async (req: Request, res: Response, next: NextFunction) => {
    const openapi = (req as Request & { openapi?: { schema?: { operationId?: string }; pathParams?: Record<string, string> } })
      .openapi;
    const operationId = openapi?.schema?.operationId as OperationId | undefined;
    const handler = operationId ? handlers[operationId] : undefined;
    if (!handler) return next();
    const user = res.locals.user;
    if (!user && !PUBLIC_API_PATHS.has(req.path)) return next(errors.unauthenticated());
    // This middleware is mounted without a route pattern: take the path parameters the validator matched.
    req.params = { ...(openapi?.pathParams ?? {}) };
    const ctx: Ctx = {
      em: orm.em.getContext() as Ctx['em'],
      user: user as User,
      log: res.locals.log,
      requestId: res.locals.requestId,
    };
    try {
      await handler(req, res, ctx);
    } catch (err) {
      next(err);
    }
  });

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(errors.notFound(`No route for ${req.method} ${req.path}.`));
  });
  app.use(problemHandler(logger));
  return app;
}
