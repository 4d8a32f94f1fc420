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
import type { Em, Orm } from './persistence/orm.ts';
import type { BlobStore } from './storage/blob-store.ts';
import { errors } from './errors.ts';
import { authenticate } from './access/api-keys.ts';
import { problemHandler } from './http/problem.ts';
import { bodyIdleTimeout } from './http/timeouts.ts';
import { screenRequest } from './http/request-screen.ts';
import { apiDocument, openApiYaml } from './http/spec.ts';
import { createHandlerTable } from './http/handlers/index.ts';
import { multipartStorage } from './http/multipart.ts';
import { createServices, type Services } from './services/index.ts';
import { checkedHandlers, type RequestContext as Ctx } from './http/types.ts';
import type { Caller } from './persistence/entities.ts';

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
    /** The request's own EntityManager fork. */
    em: Em;
    user?: Caller;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
/**
 * Requests about one space (list or create its models): authentication reads the space too. Only
 * plain slugs (nothing to decode, nothing a database could refuse); anything else takes the
 * ordinary path, where the screen and the validator answer it.
 */
const SPACE_MODELS_PATH = /^\/catalog\/spaces\/([A-Za-z0-9_-]{1,100})\/model-repository\/models\/?$/;

function spaceSlugOf(path: string): string | undefined {
  return SPACE_MODELS_PATH.exec(path)?.[1];
}

/** Requests of an upload session (its chunks, status, completion, abort): authentication checks the product access too. */
const UPLOAD_SESSION_PATH = /^\/catalog\/products\/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\/model-artifacts\/uploads\/[^/]+/;

function uploadProductOf(path: string): string | undefined {
  return UPLOAD_SESSION_PATH.exec(path)?.[1]?.toLowerCase();
}

const PUBLIC_API_PATHS = new Set(['/openapi.yaml']);

/** Every response header the spec documents, readable by browser clients (CORS). */
export const EXPOSED_HEADERS = [
  'X-Total-Count', 'X-Page', 'X-Has-More', 'X-Request-Id', 'ETag', 'Content-Disposition', 'Content-Range', 'Content-Length',
  'Accept-Ranges', 'Location', 'WWW-Authenticate', 'Retry-After',
];

export function createApp(deps: AppDeps): express.Express {
  const { config, orm, storage, logger } = deps;
  const services = deps.services ?? createServices({ config, orm, storage, logger });
  const handlers = createHandlerTable(services, config);
  const dispatch = checkedHandlers(handlers);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'extended');
  app.use(bodyIdleTimeout(config.bodyIdleTimeoutSeconds));

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
      exposedHeaders: EXPOSED_HEADERS,
      // No list: a preflight is answered with the headers it asks for (Content-Digest, If-Match,
      // Range, whatever a client or a proxy in front adds). API keys are not cookies, so allowing
      // a header grants nothing by itself.
      allowedHeaders: undefined,
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

  // One EntityManager fork per request (never the global one), on res.locals for whatever runs
  // before the dispatcher (authentication, the multipart parser).
  app.use((_req, res, next) =>
    RequestContext.create(orm.em, () => {
      res.locals.em = orm.em.getContext() as Em;
      next();
    }),
  );

  // Authentication for everything under the prefix; the document above is the one public path.
  app.use(API_PREFIX, async (req: Request, res: Response, next: NextFunction) => {
    if (PUBLIC_API_PATHS.has(req.path)) return next();
    try {
      const header = req.get('Authorization') ?? '';
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      res.locals.user = await authenticate(res.locals.em, match?.[1], new Date(), {
        spaceSlug: spaceSlugOf(req.path),
        productId: uploadProductOf(req.path),
      });
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
      apiSpec: apiDocument(),
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
    const operationId = openapi?.schema?.operationId;
    const handler = operationId === undefined ? undefined : dispatch.get(operationId);
    if (!handler) return next();
    const user = res.locals.user;
    if (!user && !PUBLIC_API_PATHS.has(req.path)) return next(errors.unauthenticated());
    // This middleware is mounted without a route pattern: take the path parameters the validator matched.
    req.params = { ...(openapi?.pathParams ?? {}) };
    const ctx: Ctx = {
      em: res.locals.em,
      user: user as Caller,
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
