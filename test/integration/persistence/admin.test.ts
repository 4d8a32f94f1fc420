/**
 * Admin services and the first-start setup on SQLite and PostgreSQL.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { authenticate } from '../../../server/src/access/index.ts';
import { AppError } from '../../../server/src/errors.ts';
import {
  ApiKey,
  Organization,
  OrganizationMembership,
  ProductGrant,
  Space,
  SpaceMembership,
  User,
} from '../../../server/src/persistence/entities.ts';
import { openOrm, type Em } from '../../../server/src/persistence/orm.ts';
import {
  addOrgMember,
  addSpaceMember,
  bootstrap,
  createApiKey,
  createSpace,
  createUser,
  ensureFirstStart,
  firstStartBanner,
  grant,
  revokeApiKey,
  setProductLimit,
} from '../../../server/src/services/admin.ts';
import { makeProduct } from './fixtures.ts';
import { databaseTargets, useMigratedDatabase } from './targets.ts';

const targets = await databaseTargets();
const BUSY_WRITER = fileURLToPath(new URL('./fixtures/busy-writer.ts', import.meta.url));

async function appError(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected an AppError');
}

for (const target of targets) {
  describe.skipIf(!target.create)(`admin services on ${target.dialect}`, () => {
    const database = useMigratedDatabase(target);
    const fork = (): Em => database.fork();

    it('first start creates the defaults once, on an empty database only', async () => {
      const results = await Promise.all([ensureFirstStart(database.orm), ensureFirstStart(database.orm)]);
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      const r = winners[0]!;
      expect(r.organization.slug).toBe('default');
      expect(r.space.slug).toBe('default');
      expect(r.user.email).toBe('admin@localhost');
      expect(r.api_key).toMatch(/^mr_/);
      expect(await authenticate(fork(), r.api_key)).toEqual({ id: r.user.id });
      const m = await fork().findOneOrFail(OrganizationMembership, { user: r.user.id });
      expect(m.role).toBe('owner');
      expect(firstStartBanner(r, 'http://127.0.0.1:8080')).toContain(r.api_key);

      expect(await ensureFirstStart(database.orm)).toBeNull();
      expect(await fork().count(Organization, {})).toBe(1);
      expect(await fork().count(ApiKey, {})).toBe(1);
    });

    it('bootstrap creates what is missing, makes the user owner and issues a new key each time', async () => {
      const first = await bootstrap(fork(), { org: 'acme', space: 'ml-platform', email: 'Alice@Example.COM', orgName: 'Acme Inc.' });
      expect(first.created).toEqual({ organization: true, space: true, user: true, membership: true });
      expect(first.organization.name).toBe('Acme Inc.');
      expect(first.space.name).toBe('ml-platform');
      expect(first.user.email).toBe('alice@example.com');

      const second = await bootstrap(fork(), { org: 'acme', space: 'ml-platform', email: 'alice@example.com', orgName: 'Ignored' });
      expect(second.created).toEqual({ organization: false, space: false, user: false, membership: false });
      expect(second.organization.id).toBe(first.organization.id);
      expect(second.organization.name).toBe('Acme Inc.');
      expect(second.api_key).not.toBe(first.api_key);
      expect(await fork().count(ApiKey, { user: first.user.id })).toBe(2);

      // A second space in the same org, an existing user becoming owner.
      await createUser(fork(), { email: 'bob@example.com' });
      await addOrgMember(fork(), { email: 'bob@example.com', org: 'acme', role: 'member' });
      const third = await bootstrap(fork(), { org: 'acme', space: 'research', email: 'bob@example.com' });
      expect(third.created).toEqual({ organization: false, space: true, user: false, membership: true });
      expect((await fork().findOneOrFail(OrganizationMembership, { user: third.user.id })).role).toBe('owner');

      // The space slug belongs to another organization.
      const e = await appError(bootstrap(fork(), { org: 'other-org', space: 'ml-platform', email: 'carol@example.com' }));
      expect(e.status).toBe(409);
      expect(await fork().count(Organization, { slug: 'other-org' })).toBe(0); // rolled back
    });

    it('validates slugs, emails, roles and limits with field details', async () => {
      const bad = [
        bootstrap(fork(), { org: 'Bad Slug', space: 's', email: 'a@b' }),
        bootstrap(fork(), { org: 'ok', space: '-bad', email: 'a@b' }),
        bootstrap(fork(), { org: 'ok', space: 'ok', email: 'not-an-email' }),
        createSpace(fork(), { org: 'acme', space: 'x'.repeat(101) }),
        createSpace(fork(), { org: 'acme', space: 'fine', productLimit: -1 }),
        addOrgMember(fork(), { email: 'alice@example.com', org: 'acme', role: 'editor' }),
        addSpaceMember(fork(), { email: 'alice@example.com', space: 'ml-platform', role: 'owner' }),
        grant(fork(), { email: 'alice@example.com', productId: 'nope', access: 'view' }),
        grant(fork(), { email: 'alice@example.com', productId: '00000000-0000-4000-8000-000000000000', access: 'admin' }),
        revokeApiKey(fork(), { id: 'nope' }),
        createUser(fork(), { email: 'x@y', name: '' }),
      ];
      for (const p of bad) {
        const e = await appError(p);
        expect(e.status).toBe(422);
        expect(e.errors?.length).toBe(1);
        expect(e.errors![0]!.msg.length).toBeGreaterThan(3);
      }
    });

    it('createSpace / createUser: unknown organization 404, duplicates 409', async () => {
      const space = await createSpace(fork(), { org: 'acme', space: 'vision', name: 'Vision', productLimit: 3 });
      expect(space).toMatchObject({ slug: 'vision', name: 'Vision', product_limit: 3 });
      expect((await appError(createSpace(fork(), { org: 'acme', space: 'vision' }))).status).toBe(409);
      expect((await appError(createSpace(fork(), { org: 'no-such-org', space: 'x1' }))).status).toBe(404);

      const u = await createUser(fork(), { email: ' Dave@Example.com ', name: 'Dave' });
      expect(u).toMatchObject({ email: 'dave@example.com', name: 'Dave' });
      expect((await appError(createUser(fork(), { email: 'DAVE@example.com' }))).status).toBe(409);
    });

    it('addOrgMember / addSpaceMember: add, then change the role; space members join the organization', async () => {
      await createUser(fork(), { email: 'erin@example.com' });
      const a = await addOrgMember(fork(), { email: 'erin@example.com', org: 'acme', role: 'admin' });
      expect(a.created).toBe(true);
      const b = await addOrgMember(fork(), { email: 'erin@example.com', org: 'acme', role: 'member' });
      expect(b).toMatchObject({ created: false, membership: { id: a.membership.id, role: 'member' } });

      await createUser(fork(), { email: 'frank@example.com' });
      const s = await addSpaceMember(fork(), { email: 'frank@example.com', space: 'vision', role: 'viewer' });
      expect(s.created).toBe(true);
      const s2 = await addSpaceMember(fork(), { email: 'frank@example.com', space: 'vision', role: 'editor' });
      expect(s2.membership.role).toBe('editor');
      expect(await fork().count(SpaceMembership, { user: s.membership.user.id })).toBe(1);
      const orgM = await fork().findOneOrFail(OrganizationMembership, { user: s.membership.user.id });
      expect(orgM.role).toBe('member');

      expect((await appError(addOrgMember(fork(), { email: 'nobody@example.com', org: 'acme', role: 'member' }))).status).toBe(404);
      expect((await appError(addSpaceMember(fork(), { email: 'erin@example.com', space: 'no-space', role: 'viewer' }))).status).toBe(404);
    });

    it('grant, createApiKey, revokeApiKey, setProductLimit', async () => {
      const em = fork();
      const product = makeProduct(em, await em.findOneOrFail(Space, { slug: 'vision' }));
      await em.flush();

      const g = await grant(fork(), { email: 'erin@example.com', productId: product.id.toUpperCase(), access: 'view' });
      expect(g).toMatchObject({ created: true, membership: { access: 'view' } });
      const g2 = await grant(fork(), { email: 'erin@example.com', productId: product.id, access: 'edit' });
      expect(g2).toMatchObject({ created: false, membership: { id: g.membership.id, access: 'edit' } });
      expect(await fork().count(ProductGrant, { product: product.id })).toBe(1);
      expect((await appError(grant(fork(), { email: 'erin@example.com', productId: '00000000-0000-4000-8000-000000000000', access: 'view' }))).status).toBe(404);

      const k = await createApiKey(fork(), { email: 'ERIN@example.com', name: 'ci' });
      expect(k.api_key).toMatch(/^mr_/);
      expect(k.api_key_record).toMatchObject({ name: 'ci', key_prefix: k.api_key.slice(0, 8) });
      expect((await authenticate(fork(), k.api_key)).id).toBe((await fork().findOneOrFail(User, { email: 'erin@example.com' })).id);
      const stored = await fork().findOneOrFail(ApiKey, k.api_key_record.id);
      expect(stored.key_hash).not.toContain(k.api_key);

      const revoked = await revokeApiKey(fork(), { id: k.api_key_record.id });
      expect(revoked.revoked_at).toBeInstanceOf(Date);
      const again = await revokeApiKey(fork(), { id: k.api_key_record.id });
      expect(again.revoked_at!.getTime()).toBe(revoked.revoked_at!.getTime());
      await expect(authenticate(fork(), k.api_key)).rejects.toMatchObject({ status: 401 });
      expect((await appError(revokeApiKey(fork(), { id: '00000000-0000-4000-8000-000000000000' }))).status).toBe(404);

      expect((await setProductLimit(fork(), { space: 'vision', limit: 10 })).product_limit).toBe(10);
      expect((await setProductLimit(fork(), { space: 'vision', limit: null })).product_limit).toBeNull();
      expect((await fork().findOneOrFail(Space, { slug: 'vision' })).product_limit).toBeNull();
      expect((await appError(setProductLimit(fork(), { space: 'nope', limit: 1 }))).status).toBe(404);
    });

    it('a database prepared by the admin services gets no first-start setup', async () => {
      const db2 = await target.create!();
      const orm2 = await openOrm({ databaseUrl: db2.url });
      try {
        await bootstrap(orm2.em.fork(), { org: 'prepared', space: 'prepared', email: 'ops@example.com' });
        expect(await ensureFirstStart(orm2)).toBeNull();
        expect(await orm2.em.fork().count(User, { email: 'admin@localhost' })).toBe(0);
      } finally {
        await orm2.close(true);
        await db2.drop();
      }
    });
    it('admin writes succeed while another process keeps writing (SQLite: no "database is locked")', async () => {
      const boot = await bootstrap(fork(), { org: 'busy-org', space: 'busy-space', email: 'busy@example.com' });
      const keys = await Promise.all(Array.from({ length: 10 }, () => createApiKey(fork(), { email: 'busy@example.com' })));
      // The server: another process, writing all the time (its transactions hold the write lock).
      const writer = spawn(process.execPath, ['--import', 'tsx', BUSY_WRITER, database.url, boot.user.id], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      writer.stdout.on('data', (d: Buffer) => (output += d.toString()));
      writer.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<void>((resolve) => writer.once('exit', () => resolve()));
      try {
        while (!output.includes('ready')) {
          if (writer.exitCode !== null) throw new Error(`the writer stopped: ${output}`);
          await new Promise((r) => setTimeout(r, 20));
        }
        // The CLI: revocations and another write, each reading before it writes, while the
        // writer commits in between.
        for (const [i, key] of keys.entries()) {
          const revoked = await revokeApiKey(fork(), { id: key.api_key_record.id });
          expect(revoked.revoked_at).toBeInstanceOf(Date);
          await setProductLimit(fork(), { space: 'busy-space', limit: i + 1 });
        }
        expect(writer.exitCode, output).toBeNull(); // it kept writing all along
      } finally {
        writer.kill();
        await exited;
      }
      for (const key of keys) await expect(authenticate(fork(), key.api_key)).rejects.toMatchObject({ status: 401 });
      expect((await fork().findOneOrFail(Space, { slug: 'busy-space' })).product_limit).toBe(keys.length);
    });
  });
}
