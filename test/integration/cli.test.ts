/**
 * The admin CLI as a child process (`node --import tsx server/src/cli/main.ts`), on SQLite
 * (a fresh DATA_DIR and the default DATABASE_URL) and on PostgreSQL (DATABASE_URL): one JSON
 * object on stdout, rows in the database, error exits with a message on stderr.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiKey,
  Organization,
  OrganizationMembership,
  ProductGrant,
  Space,
  SpaceMembership,
  User,
} from '../../server/src/persistence/entities.ts';
import { openOrm } from '../../server/src/persistence/orm.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { makeProduct } from './persistence/fixtures.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'server/src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runAdmin(env: Record<string, string | undefined>, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, LOG_LEVEL: 'warn', ...env })) if (v !== undefined) childEnv[k] = v;
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Exactly one JSON object on stdout, and success. */
function json(r: Run): Record<string, any> {
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  const value = JSON.parse(lines[0]!);
  expect(value).toBeTypeOf('object');
  expect(Array.isArray(value)).toBe(false);
  return value;
}

function failed(r: Run, code: number, stderr: RegExp) {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(stderr);
}

const pg = await createTestDatabase();
const sqliteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-cli-'));

const targets: { dialect: string; env: Record<string, string | undefined>; db: TestDatabase | null; url: string | null }[] = [
  {
    dialect: 'sqlite',
    // The default DATABASE_URL under DATA_DIR: the CLI must create the directory and migrate.
    env: { DATA_DIR: path.join(sqliteDir, 'fresh-data'), DATABASE_URL: undefined },
    db: null,
    url: `sqlite:${path.join(sqliteDir, 'fresh-data', 'model-repository.db')}`,
  },
  { dialect: 'postgresql', env: { DATA_DIR: sqliteDir, DATABASE_URL: pg?.url }, db: pg, url: pg?.url ?? null },
];

afterAll(async () => {
  await pg?.drop();
  fs.rmSync(sqliteDir, { recursive: true, force: true });
});

/**
 * Everything the CLI is asked to do on one database, in order. Both databases' scripts run
 * at the same time (in beforeAll) to keep the suite fast; the tests then check the results
 * and the rows.
 */
async function script(t: (typeof targets)[number]) {
  const run = (...args: string[]) => runAdmin(t.env, args);
  const r: Record<string, Run> = {};
  // bootstrap first, on an empty database the CLI creates and migrates itself.
  r.bootstrap = await run('bootstrap', '--org', 'acme', '--space', 'ml', '--email', 'Owner@Example.com', '--org-name', 'Acme Inc.');
  // Idempotency and input validation are the same on both dialects (the service tests cover
  // both); through the CLI they are checked once, on SQLite, to keep the suite fast.
  if (t.dialect === 'sqlite') r.bootstrapAgain = await run('bootstrap', '--org', 'acme', '--space', 'ml', '--email', 'owner@example.com');
  r.createSpace = await run('create-space', '--org', 'acme', '--space', 'vision', '--name', 'Vision', '--product-limit', '5');
  r.createUser = await run('create-user', '--email', 'Viewer@Example.com', '--name', 'Vera');
  r.addOrgMember = await run('add-member', '--email', 'viewer@example.com', '--org', 'acme', '--role', 'admin');
  r.addSpaceMember = await run('add-member', '--email', 'viewer@example.com', '--space', 'vision', '--role', 'viewer');

  const orm = await openOrm({ databaseUrl: t.url! });
  const em = orm.em.fork();
  const product = makeProduct(em, await em.findOneOrFail(Space, { slug: 'vision' }));
  await em.flush();
  const productId = product.id;

  r.grant = await run('grant', '--email', 'viewer@example.com', '--product', productId, '--access', 'edit');
  r.createApiKey = await run('create-api-key', '--email', 'viewer@example.com', '--name', 'laptop');
  const keyId = r.createApiKey.code === 0 ? (JSON.parse(r.createApiKey.stdout) as { id: string }).id : 'missing';
  r.revokeApiKey = await run('revoke-api-key', '--id', keyId);
  r.setLimit = await run('set-product-limit', '--space', 'vision', '--limit', '7');
  const limitAfterSet = (await orm.em.fork().findOneOrFail(Space, { slug: 'vision' })).product_limit;
  r.unsetLimit = await run('set-product-limit', '--space', 'vision', '--limit', 'none');
  r.gate = await run('set-promotion-policy', '--space', 'vision', '--policy', 'risk_based');
  const policyAfterGate = (await orm.em.fork().findOneOrFail(Space, { slug: 'vision' })).promotion_policy;
  r.ungate = await run('set-promotion-policy', '--space', 'vision', '--policy', 'none');

  // Errors that depend on the database run on each dialect; validation, usage and
  // configuration errors only once.
  const errorArgs: Record<string, string[]> = {
    unknownOrg: ['create-space', '--org', 'no-such-org', '--space', 'x'],
    hostileOrg: ['create-space', '--org', 'evil\u001b]0;owned\u0007\u009b2J\u202e', '--space', 'x'],
    duplicate: ['create-space', '--org', 'acme', '--space', 'ml'],
    ...(t.dialect === 'sqlite'
      ? {
          badRole: ['add-member', '--email', 'viewer@example.com', '--space', 'vision', '--role', 'boss'],
          badSlug: ['create-space', '--org', 'acme', '--space', 'Bad_Slug'],
          badEmail: ['create-user', '--email', 'nope'],
          noTarget: ['add-member', '--email', 'viewer@example.com', '--role', 'admin'],
          missingFlag: ['create-space', '--org', 'acme'],
          unknownCommand: ['make-coffee'],
          badLimit: ['set-product-limit', '--space', 'vision', '--limit', 'lots'],
          badPolicy: ['set-promotion-policy', '--space', 'vision', '--policy', 'strict'],
          policyUnknownSpace: ['set-promotion-policy', '--space', 'nowhere', '--policy', 'none'],
        }
      : {}),
  };
  const errorRuns = await Promise.all(Object.values(errorArgs).map((args) => run(...args)));
  Object.keys(errorArgs).forEach((k, i) => (r[k] = errorRuns[i]!));
  if (t.dialect === 'sqlite') r.badConfig = await runAdmin({ ...t.env, STORAGE_BACKEND: 'tape' }, ['create-user', '--email', 'a@b']);

  return { r, orm, productId, limitAfterSet, policyAfterGate };
}

const results = new Map<string, Awaited<ReturnType<typeof script>>>();

// A few dozen CLI processes per dialect: on a loaded machine that takes longer than the default hook timeout.
beforeAll(async () => {
  const active = targets.filter((t) => t.url);
  const done = await Promise.all(active.map((t) => script(t)));
  active.forEach((t, i) => results.set(t.dialect, done[i]!));
}, 300_000);

afterAll(async () => {
  for (const { orm } of results.values()) await orm.close(true);
});

for (const t of targets) {
  describe.skipIf(!t.url)(`admin CLI on ${t.dialect}`, () => {
    const res = () => results.get(t.dialect)!;
    const em = () => res().orm.em.fork();

    it('bootstrap: organization, space, owner and a working key', async () => {
      const b = json(res().r.bootstrap!);
      expect(Object.keys(b).sort()).toEqual(['api_key', 'api_key_id', 'created', 'organization', 'space', 'user']);
      expect(b.organization).toMatchObject({ slug: 'acme', name: 'Acme Inc.' });
      expect(b.space).toMatchObject({ slug: 'ml', name: 'ml', product_limit: null, organization_id: b.organization.id });
      expect(b.user).toMatchObject({ email: 'owner@example.com', name: null });
      expect(b.api_key).toMatch(/^mr_[A-Za-z0-9_-]{43}$/);

      const key = await em().findOneOrFail(ApiKey, b.api_key_id);
      expect(key.key_hash).toBe(createHash('sha256').update(b.api_key).digest('hex'));
      expect(key.user.id).toBe(b.user.id);
      const m = await em().findOneOrFail(OrganizationMembership, { user: b.user.id, organization: b.organization.id });
      expect(m.role).toBe('owner');

      if (t.dialect === 'sqlite') {
        const again = json(res().r.bootstrapAgain!);
        expect(again.created).toEqual({ organization: false, space: false, user: false, membership: false });
        expect(again.organization.id).toBe(b.organization.id);
        expect(again.api_key).not.toBe(b.api_key);
      }
    });

    it('create-space', async () => {
      const s = json(res().r.createSpace!);
      const orgId = json(res().r.bootstrap!).organization.id;
      expect(s).toMatchObject({ slug: 'vision', name: 'Vision', product_limit: 5, organization_id: orgId });
      expect(await em().findOneOrFail(Space, s.id)).toMatchObject({ slug: 'vision', name: 'Vision' });
    });

    it('create-user', async () => {
      const u = json(res().r.createUser!);
      expect(Object.keys(u).sort()).toEqual(['created_at', 'email', 'id', 'name', 'updated_at']);
      expect(u).toMatchObject({ email: 'viewer@example.com', name: 'Vera' });
      expect((await em().findOneOrFail(User, u.id)).email).toBe('viewer@example.com');
    });

    it('add-member --org and --space', async () => {
      const userId = json(res().r.createUser!).id;
      const o = json(res().r.addOrgMember!);
      expect(o).toMatchObject({ organization_id: json(res().r.bootstrap!).organization.id, user_id: userId, role: 'admin', created: true });
      const s = json(res().r.addSpaceMember!);
      expect(s).toMatchObject({ space_id: json(res().r.createSpace!).id, user_id: userId, role: 'viewer', created: true });
      expect((await em().findOneOrFail(OrganizationMembership, o.id)).role).toBe('admin');
      expect((await em().findOneOrFail(SpaceMembership, s.id)).role).toBe('viewer');
    });

    it('grant', async () => {
      const g = json(res().r.grant!);
      expect(g).toMatchObject({ product_id: res().productId, user_id: json(res().r.createUser!).id, access: 'edit', created: true });
      expect((await em().findOneOrFail(ProductGrant, g.id)).access).toBe('edit');
    });

    it('create-api-key and revoke-api-key', async () => {
      const k = json(res().r.createApiKey!);
      expect(Object.keys(k).sort()).toEqual(['api_key', 'id']);
      expect(k.api_key).toMatch(/^mr_/);
      const r = json(res().r.revokeApiKey!);
      expect(r).toMatchObject({ id: k.id, name: 'laptop', user_id: json(res().r.createUser!).id, key_prefix: k.api_key.slice(0, 8) });
      expect(r.revoked_at).toMatch(/^\d{4}-\d\d-\d\dT/);
      const row = await em().findOneOrFail(ApiKey, k.id);
      expect(row.revoked_at).toBeInstanceOf(Date);
      expect(row.key_hash).toBe(createHash('sha256').update(k.api_key).digest('hex'));
    });

    it('set-product-limit N and none', async () => {
      expect(json(res().r.setLimit!).product_limit).toBe(7);
      expect(res().limitAfterSet).toBe(7);
      expect(json(res().r.unsetLimit!).product_limit).toBeNull();
      expect((await em().findOneOrFail(Space, { slug: 'vision' })).product_limit).toBeNull();
    });

    it('set-promotion-policy risk_based and none: one JSON object with the space', async () => {
      expect(json(res().r.gate!)).toMatchObject({ slug: 'vision', promotion_policy: 'risk_based' });
      expect(res().policyAfterGate).toBe('risk_based');
      expect(json(res().r.ungate!).promotion_policy).toBe('none');
      expect((await em().findOneOrFail(Space, { slug: 'vision' })).promotion_policy).toBe('none');
    });

    it('errors: non-zero exit, message on stderr, nothing on stdout', async () => {
      const r = res().r;
      failed(r.unknownOrg!, 1, /Organization 'no-such-org' was not found/);
      // Data echoed from the input or the database never reaches the terminal as control characters.
      failed(r.hostileOrg!, 1, /'evil\\u001b\]0;owned\\u0007\\u009b2J\\u202e' is not a slug/);
      // eslint-disable-next-line no-control-regex
      expect(r.hostileOrg!.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
      failed(r.duplicate!, 1, /Space 'ml' already exists/);
      expect(await em().count(Organization, {})).toBe(1);
      expect(await em().count(Space, {})).toBe(2);
    });

    it.runIf(t.dialect === 'sqlite')('validation errors exit 1; usage and configuration errors exit 2', () => {
      const r = res().r;
      failed(r.badRole!, 1, /role: must be one of admin, editor, viewer/);
      failed(r.badSlug!, 1, /'Bad_Slug' is not a slug/);
      failed(r.badEmail!, 1, /'nope' is not an email address/);
      failed(r.noTarget!, 2, /exactly one of --org .* or --space/);
      failed(r.missingFlag!, 2, /required option '--space <slug>' not specified/);
      failed(r.unknownCommand!, 2, /unknown command 'make-coffee'/);
      failed(r.badLimit!, 2, /--limit/);
      failed(r.badPolicy!, 1, /promotion_policy: must be one of none, risk_based/);
      failed(r.policyUnknownSpace!, 1, /Space 'nowhere' was not found/);
      failed(r.badConfig!, 2, /STORAGE_BACKEND: must be one of fs, s3/);
    });
  });
}
