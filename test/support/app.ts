/**
 * An in-process server for integration tests: a fresh database (temp SQLite file or a fresh
 * PostgreSQL database, from test/integration/persistence/targets.ts), filesystem storage in a
 * temp dir, createApp(deps) with response validation on, listening on 127.0.0.1:<free port>.
 * People, memberships, grants and keys are made through the admin service (what the CLI
 * uses), so the tests see the server exactly as an installation would be set up.
 *
 *   for (const target of await databaseTargets()) {
 *     describe.skipIf(!target.create)(`… on ${target.dialect}`, () => {
 *       let app: TestApp;
 *       beforeAll(async () => { app = await startTestApp(target); });
 *       afterAll(() => app?.close());
 *       it('…', async () => { const res = await app.request('GET', '/catalog/spaces/x/…', { key }); });
 *     });
 *   }
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp } from '../../server/src/app.ts';
import { loadConfig, type Config } from '../../server/src/config.ts';
import { createLogger } from '../../server/src/logger.ts';
import { openOrm, type Em, type Orm } from '../../server/src/persistence/orm.ts';
import { openBlobStore } from '../../server/src/storage/index.ts';
import { createServices, storageOptions, type Services } from '../../server/src/services/index.ts';
import * as admin from '../../server/src/services/admin.ts';
import type { DatabaseTarget } from '../integration/persistence/targets.ts';

export { databaseTargets, type DatabaseTarget } from '../integration/persistence/targets.ts';

export const API = '/api/v1.0';

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the body is JSON (application/json or application/problem+json), else undefined. */
  body: T;
  text: string;
}

export interface RequestOptions {
  /** Sent as `Authorization: Bearer <key>`; omit for an anonymous request. */
  key?: string;
  /** JSON-encoded unless it is a string (sent as is, for malformed bodies). */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface TestUser {
  id: string;
  email: string;
  /** A working API key of this user. */
  key: string;
}

export interface TestApp {
  dialect: DatabaseTarget['dialect'];
  /** http://127.0.0.1:<port> */
  origin: string;
  config: Config;
  orm: Orm;
  /** The app's services (its background workers are not started). */
  services: Services;
  /** A fresh EntityManager fork (for reading rows directly). */
  em(): Em;
  /** `path` is relative to /api/v1.0 unless it starts with it (or with /healthz etc.). */
  request<T = unknown>(method: string, path: string, opts?: RequestOptions): Promise<ApiResponse<T>>;
  /** Organization + space + owner (with a key), like `admin bootstrap`. */
  bootstrap(org: string, space: string, email: string): Promise<TestUser>;
  createSpace(org: string, space: string, productLimit?: number | null): Promise<string>;
  /** A user with one API key. */
  createUser(email: string): Promise<TestUser>;
  addOrgMember(email: string, org: string, role: 'owner' | 'admin' | 'member'): Promise<void>;
  addSpaceMember(email: string, space: string, role: 'admin' | 'editor' | 'viewer'): Promise<void>;
  grant(email: string, productId: string, access: 'view' | 'edit'): Promise<void>;
  createApiKey(email: string): Promise<{ key: string; id: string }>;
  revokeApiKey(id: string): Promise<void>;
  setProductLimit(space: string, limit: number | null): Promise<void>;
  close(): Promise<void>;
}

export async function startTestApp(target: DatabaseTarget, env: Record<string, string> = {}): Promise<TestApp> {
  if (!target.create) throw new Error(`${target.dialect} is not available`);
  const db = await target.create();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-app-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    SWEEP_INTERVAL_SECONDS: '0',
    ...env,
  });
  const logger = createLogger(config);
  let orm: Orm | undefined;
  let server: Server | undefined;
  let services: Services | undefined;
  try {
    orm = await openOrm({ databaseUrl: config.databaseUrl, logger });
    const storage = await openBlobStore(storageOptions(config));
    services = createServices({ config, orm, storage, logger });
    const app = createApp({ config, orm, storage, logger, services });
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      server!.once('listening', resolve);
      server!.once('error', reject);
    });
  } catch (err) {
    await orm?.close(true);
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const theOrm = orm;
  const theServer = server;
  const origin = `http://127.0.0.1:${(theServer.address() as AddressInfo).port}`;
  const em = () => theOrm.em.fork();

  const request = async <T>(method: string, p: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> => {
    const url = p.startsWith('/api/') || p.startsWith('/healthz') || p.startsWith('/readyz') ? p : `${API}${p}`;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key !== undefined) headers.Authorization = `Bearer ${opts.key}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(`${origin}${url}`, { method, headers, body });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    let parsed: unknown;
    if (/json/.test(type) && text !== '') parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  };

  const createApiKey = async (email: string) => {
    const created = await admin.createApiKey(em(), { email });
    return { key: created.api_key, id: created.api_key_record.id };
  };

  return {
    dialect: target.dialect,
    origin,
    config,
    orm: theOrm,
    services: services!,
    em,
    request,
    bootstrap: async (org, space, email) => {
      const r = await admin.bootstrap(em(), { org, space, email });
      return { id: r.user.id, email: r.user.email, key: r.api_key };
    },
    createSpace: async (org, space, productLimit = null) => (await admin.createSpace(em(), { org, space, productLimit })).id,
    createUser: async (email) => {
      const user = await admin.createUser(em(), { email });
      const { key } = await createApiKey(email);
      return { id: user.id, email: user.email, key };
    },
    addOrgMember: async (email, org, role) => void (await admin.addOrgMember(em(), { email, org, role })),
    addSpaceMember: async (email, space, role) => void (await admin.addSpaceMember(em(), { email, space, role })),
    grant: async (email, productId, access) => void (await admin.grant(em(), { email, productId, access })),
    createApiKey,
    revokeApiKey: async (id) => void (await admin.revokeApiKey(em(), { id })),
    setProductLimit: async (space, limit) => void (await admin.setProductLimit(em(), { space, limit })),
    close: async () => {
      theServer.closeAllConnections();
      await new Promise<void>((resolve) => theServer.close(() => resolve()));
      await theOrm.close(true);
      await db.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
