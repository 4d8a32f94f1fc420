/**
 * The same persistence suite on SQLite and PostgreSQL: migrations, round trips, constraints,
 * and the query recipes other services rely on (search, visibility lists, upserts, locking).
 */
import { randomUUID } from 'node:crypto';
import { MikroORM, OptimisticLockError, UniqueConstraintViolationException, wrap, type Options } from '@mikro-orm/core';
import { parseDatabaseUrl } from '../../../server/src/config.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ApiKey,
  ModelArtifact,
  OrganizationMembership,
  Product,
  ProductGrant,
  ProductVersion,
  Space,
  SpaceMembership,
  UploadChunk,
  UploadSession,
  User,
  productSearchText,
} from '../../../server/src/persistence/entities.ts';
import { dialectOf, migrate, migratorOf, openOrm, ormOptions, type Em, type Orm } from '../../../server/src/persistence/orm.ts';
import { MIGRATION_NAMES } from '../../../server/src/persistence/migrations/names.ts';
import { postgresqlMigrations } from '../../../server/src/persistence/migrations/postgresql/index.ts';
import { sqliteMigrations } from '../../../server/src/persistence/migrations/sqlite/index.ts';
import { escapeLike, searchTextFilter } from '../../../server/src/persistence/queries.ts';
import { dateParam, executeHot } from '../../../server/src/persistence/raw.ts';
import { findSession } from '../../../server/src/services/uploads.ts';
import { makeOrg, makeProduct, makeSpace, makeUploadSession, makeUser, unique } from './fixtures.ts';
import { databaseTargets, useMigratedDatabase } from './targets.ts';

const targets = await databaseTargets();

for (const target of targets) {
  describe.skipIf(!target.create)(`persistence on ${target.dialect}`, () => {
    const database = useMigratedDatabase(target);
    const fork = (): Em => database.fork();

    describe('migrations', () => {
      it('apply cleanly from empty and are recorded', async () => {
        expect(dialectOf(database.orm)).toBe(target.dialect);
        const expected = (target.dialect === 'sqlite' ? sqliteMigrations : postgresqlMigrations).map((m) => m.name);
        const executed = await (await migratorOf(database.orm)).getExecutedMigrations();
        expect(executed.map((m) => m.name)).toEqual(expected);
        // The names an open compares with, to skip loading the migrator, are the same list.
        expect([...MIGRATION_NAMES[target.dialect]]).toEqual(expected);
        expect(await migrate(database.orm)).toEqual([]);
      });

      it('reopening an up-to-date database applies nothing, without loading the migrator', async () => {
        const again = await openOrm({ databaseUrl: database.url });
        try {
          expect(again.config.getExtension('@mikro-orm/migrator')).toBeUndefined();
          expect(await migrate(again)).toEqual([]);
          expect(again.config.getExtension('@mikro-orm/migrator')).toBeUndefined();
        } finally {
          await again.close(true);
        }
      });

      it('are up to date with the entities (snapshot diff, what migration:create would see)', async () => {
        const target2 = parseDatabaseUrl(target.dialect === 'sqlite' ? 'sqlite::memory:' : database.url);
        const cliOrm = (await MikroORM.init((await ormOptions(target2, { forCli: true })) as Options)) as unknown as Orm;
        try {
          expect(await cliOrm.getMigrator().checkMigrationNeeded()).toBe(false);
        } finally {
          await cliOrm.close(true);
        }
      });

      // MikroORM's SQLite introspection misreads enum check constraints (it would rebuild those
      // tables forever), so the live-schema comparison runs on PostgreSQL only.
      it.runIf(target.dialect === 'postgresql')('produce exactly the schema the entities describe', async () => {
        const diff = await database.orm.schema.getUpdateSchemaSQL({ wrap: false, safe: false, dropTables: false });
        const statements = diff
          .split(/;\n?/)
          .map((s) => s.trim())
          .filter((s) => s !== '')
          // The hand-written pg_trgm and covering (INCLUDE) indexes are not in the entity metadata on purpose.
          .filter(
            (s) =>
              !s.includes('products_search_text_trgm_index') &&
              !s.includes('products_space_listing_cover_index') &&
              !s.includes('products_organization_listing_cover_index'),
          );
        expect(statements).toEqual([]);
      });

      it.runIf(target.dialect === 'postgresql')('create the pg_trgm GIN index on search_text', async () => {
        const rows = await fork().execute<{ indexdef: string }[]>(
          `select indexdef from pg_indexes where indexname = 'products_search_text_trgm_index'`,
        );
        expect(rows[0]?.indexdef).toMatch(/USING gin \(search_text gin_trgm_ops\)/);
      });
    });

    describe('round trips', () => {
      it('ids and timestamps exist right after em.create', async () => {
        const em = fork();
        const org = makeOrg(em);
        expect(org.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(org.created_at).toBeInstanceOf(Date);
        expect(org.updated_at).toBeInstanceOf(Date);
        await em.flush();
      });

      it('json, bigint beyond 2^32, booleans, dates and date strings', async () => {
        const em = fork();
        const org = makeOrg(em);
        const space = makeSpace(em, org);
        const user = makeUser(em);
        const product = makeProduct(em, space, {
          input_schema: { type: 'object', required: ['a'], nested: { list: [1, 'two', null, true], n: 1.5 } },
          output_schema: null,
          is_gpai: true,
          created_by: user,
        });
        const version = em.create(ProductVersion, {
          product,
          version_number: 1,
          version_type: 'major',
          release_date: '2024-02-29',
          notes: 'first',
          is_current: true,
        });
        const big = 2 ** 40 + 7;
        const session = makeUploadSession(em, product, user, {
          total_size_bytes: big,
          received_bytes: 2 ** 33,
          metadata: { format: 'onnx', python: '3.11' },
          expected_sha256: 'a'.repeat(64),
        });
        const uploadedAt = new Date('2024-05-06T07:08:09.123Z');
        const artifact = em.create(ModelArtifact, {
          product,
          product_version: version,
          training_run_id: randomUUID(),
          artifact_kind: 'weights',
          file_name: 'w.safetensors',
          content_type: 'application/octet-stream',
          size_bytes: 5_000_000_000_123,
          sha256: 'b'.repeat(64),
          storage_backend: 'fs',
          storage_key: 'artifacts/x',
          storage_uri: 'file:///x',
          status: 'available',
          is_current: true,
          metadata: { format: 'safetensors' },
          uploaded_by: user,
          uploaded_at: uploadedAt,
        });
        await em.flush();

        const em2 = fork();
        const p = await em2.findOneOrFail(Product, product.id);
        expect(p.input_schema).toEqual(product.input_schema);
        expect(p.output_schema).toBeNull();
        expect(p.is_gpai).toBe(true);
        expect(p.is_archived).toBe(false);
        expect(p.description).toBeNull();
        expect(p.created_by?.id).toBe(user.id);
        expect(p.created_at).toBeInstanceOf(Date);
        expect(p.created_at.getTime()).toBe(product.created_at.getTime());

        const v = await em2.findOneOrFail(ProductVersion, version.id);
        expect(v.release_date).toBe('2024-02-29');
        expect(v.is_current).toBe(true);
        expect(v.version_type).toBe('major');

        const s = await em2.findOneOrFail(UploadSession, session.id);
        expect(s.total_size_bytes).toBe(big);
        expect(typeof s.total_size_bytes).toBe('number');
        expect(s.received_bytes).toBe(2 ** 33);
        expect(s.metadata).toEqual({ format: 'onnx', python: '3.11' });
        expect(s.hashed_chunks).toBe(0);
        expect(s.hash_broken).toBe(false);
        expect(s.row_version).toBe(1);
        expect(s.expires_at.getTime()).toBe(session.expires_at.getTime());

        const a = await em2.findOneOrFail(ModelArtifact, artifact.id);
        expect(a.size_bytes).toBe(5_000_000_000_123);
        expect(a.uploaded_at.toISOString()).toBe('2024-05-06T07:08:09.123Z');
        expect(a.product_version?.id).toBe(version.id);
        expect(a.deleted_at).toBeNull();
      });

      it('updated_at moves on update, created_at does not', async () => {
        const em = fork();
        const org = makeOrg(em);
        await em.flush();
        const before = { created: org.created_at.getTime(), updated: org.updated_at.getTime() };
        await new Promise((r) => setTimeout(r, 5));
        org.name = 'renamed';
        await em.flush();
        const o = await fork().findOneOrFail('Organization', org.id);
        expect((o as typeof org).created_at.getTime()).toBe(before.created);
        expect((o as typeof org).updated_at.getTime()).toBeGreaterThan(before.updated);
      });

      it('search_text follows the searched fields on create and on update', async () => {
        const em = fork();
        const space = makeSpace(em, makeOrg(em));
        const product = makeProduct(em, space, { name: 'Churn Model', vendor_name: 'ACME', slug: unique('churn') });
        expect(product.search_text).toBe(productSearchText(product));
        await em.flush();
        product.framework = 'PyTorch';
        product.description = null;
        await em.flush();
        const p = await fork().findOneOrFail(Product, product.id);
        expect(p.search_text).toContain('pytorch');
        expect(p.search_text).toContain('acme');
        expect(p.search_text).toBe(p.search_text.toLowerCase());
      });
    });

    describe('constraints', () => {
      async function expectUniqueViolation(build: (em: Em) => void | Promise<void>) {
        const em = fork();
        await build(em);
        await expect(em.flush()).rejects.toBeInstanceOf(UniqueConstraintViolationException);
      }

      it('organization and space slugs are unique installation-wide', async () => {
        const em = fork();
        const org = makeOrg(em);
        const space = makeSpace(em, org);
        await em.flush();
        await expectUniqueViolation((e) => void makeOrg(e, org.slug));
        await expectUniqueViolation((e) => void makeSpace(e, makeOrg(e), space.slug));
      });

      it('user emails and API key hashes are unique', async () => {
        const em = fork();
        const user = makeUser(em);
        const key = em.create(ApiKey, { user, key_hash: 'c'.repeat(64), key_prefix: 'mr_abcde' });
        await em.flush();
        await expectUniqueViolation((e) => void makeUser(e, user.email));
        await expectUniqueViolation(async (e) => {
          const u = await e.findOneOrFail(User, user.id);
          e.create(ApiKey, { user: u, key_hash: key.key_hash, key_prefix: 'mr_x' });
        });
      });

      it('product slugs are unique per space only', async () => {
        const em = fork();
        const org = makeOrg(em);
        const s1 = makeSpace(em, org);
        const s2 = makeSpace(em, org);
        makeProduct(em, s1, { slug: 'same' });
        makeProduct(em, s2, { slug: 'same' });
        await em.flush();
        await expectUniqueViolation(async (e) => {
          makeProduct(e, await e.findOneOrFail(Space, s1.id), { slug: 'same' });
        });
      });

      it('memberships, grants, version numbers and chunk indexes are unique per pair', async () => {
        const em = fork();
        const org = makeOrg(em);
        const space = makeSpace(em, org);
        const user = makeUser(em);
        const product = makeProduct(em, space);
        em.create(OrganizationMembership, { organization: org, user, role: 'member' });
        em.create(SpaceMembership, { space, user, role: 'viewer' });
        em.create(ProductGrant, { product, user, access: 'view' });
        em.create(ProductVersion, { product, version_number: 1, version_type: 'minor', is_current: false });
        const session = makeUploadSession(em, product, user);
        em.create(UploadChunk, { session, chunk_index: 0, size_bytes: 5, sha256: 'd'.repeat(64), received_at: new Date() });
        await em.flush();

        const load = async (e: Em) => ({
          org: await e.findOneOrFail('Organization', org.id),
          space: await e.findOneOrFail(Space, space.id),
          user: await e.findOneOrFail(User, user.id),
          product: await e.findOneOrFail(Product, product.id),
          session: await e.findOneOrFail(UploadSession, session.id),
        });
        await expectUniqueViolation(async (e) => {
          const r = await load(e);
          e.create(OrganizationMembership, { organization: r.org as typeof org, user: r.user, role: 'admin' });
        });
        await expectUniqueViolation(async (e) => {
          const r = await load(e);
          e.create(SpaceMembership, { space: r.space, user: r.user, role: 'editor' });
        });
        await expectUniqueViolation(async (e) => {
          const r = await load(e);
          e.create(ProductGrant, { product: r.product, user: r.user, access: 'edit' });
        });
        await expectUniqueViolation(async (e) => {
          const r = await load(e);
          e.create(ProductVersion, { product: r.product, version_number: 1, version_type: 'patch', is_current: false });
        });
        await expectUniqueViolation(async (e) => {
          const r = await load(e);
          e.create(UploadChunk, { session: r.session, chunk_index: 0, size_bytes: 5, sha256: 'e'.repeat(64), received_at: new Date() });
        });
      });

      it('one current version and one current available artifact per product', async () => {
        const em = fork();
        const user = makeUser(em);
        const product = makeProduct(em, makeSpace(em, makeOrg(em)));
        em.create(ProductVersion, { product, version_number: 1, version_type: 'minor', is_current: true });
        const artifact = (is_current: boolean, status: 'available' | 'deleted') =>
          ({
            product,
            artifact_kind: 'model_binary',
            file_name: 'm.onnx',
            content_type: 'application/octet-stream',
            size_bytes: 1,
            sha256: 'f'.repeat(64),
            storage_backend: 'fs',
            storage_key: `k/${randomUUID()}`,
            storage_uri: 'file:///k',
            status,
            is_current,
            uploaded_by: user,
            uploaded_at: new Date(),
          }) as const;
        em.create(ModelArtifact, artifact(true, 'available'));
        em.create(ModelArtifact, artifact(true, 'deleted')); // deleted ones do not count
        em.create(ModelArtifact, artifact(false, 'available'));
        await em.flush();

        await expectUniqueViolation(async (e) => {
          const p = await e.findOneOrFail(Product, product.id);
          e.create(ProductVersion, { product: p, version_number: 2, version_type: 'minor', is_current: true });
        });
        await expectUniqueViolation(async (e) => {
          const p = await e.findOneOrFail(Product, product.id);
          e.create(ModelArtifact, { ...artifact(true, 'available'), product: p, uploaded_by: await e.findOneOrFail(User, user.id) });
        });

        // The documented recipe: clear the old current row natively first, then flush the new one.
        const e = fork();
        await e.transactional(async (tx) => {
          await tx.nativeUpdate(ProductVersion, { product: product.id, is_current: true }, { is_current: false });
          const p = await tx.findOneOrFail(Product, product.id);
          tx.create(ProductVersion, { product: p, version_number: 2, version_type: 'minor', is_current: true });
        });
        const current = await fork().find(ProductVersion, { product: product.id, is_current: true });
        expect(current.map((v) => v.version_number)).toEqual([2]);
      });

      it('enum columns reject values outside their set', async () => {
        const em = fork();
        const org = makeOrg(em);
        const user = makeUser(em);
        await em.flush();
        await expect(
          fork().execute(
            `insert into organization_memberships (id, organization_id, user_id, role, created_at, updated_at) values (?, ?, ?, 'boss', ?, ?)`,
            [randomUUID(), org.id, user.id, new Date(), new Date()],
          ),
        ).rejects.toThrow();
      });
    });

    describe('listing_version (bumped by the database on every change a space listing shows)', () => {
      const listingVersion = async (spaceId: string): Promise<number> => {
        const [row] = await fork().execute<{ listing_version: number | string }[]>(
          'select listing_version from spaces where id = ?',
          [spaceId],
        );
        return Number(row!.listing_version);
      };
      const artifactRow = (product: Product, user: User) => ({
        product,
        artifact_kind: 'weights' as const,
        file_name: 'w.safetensors',
        content_type: 'application/octet-stream',
        size_bytes: 10,
        sha256: 'c'.repeat(64),
        storage_backend: 'fs' as const,
        storage_key: `artifacts/${randomUUID()}`,
        storage_uri: 'file:///x',
        status: 'available' as const,
        is_current: false,
        uploaded_by: user,
        uploaded_at: new Date(),
      });

      it('moves on every insert, update and delete of products, versions and artifacts, in their space only', async () => {
        const em = fork();
        const org = makeOrg(em);
        const space = makeSpace(em, org);
        const other = makeSpace(em, org);
        const user = makeUser(em);
        await em.flush();
        expect(await listingVersion(space.id)).toBe(0);

        const steps: [string, () => Promise<unknown>][] = [
          ['insert product', async () => {
            makeProduct(em, space);
            await em.flush();
          }],
          ['update product', async () => {
            const p = await fork().findOneOrFail(Product, { space: space.id });
            await fork().nativeUpdate(Product, { id: p.id }, { description: 'changed' });
          }],
          ['insert version', async () => {
            const p = await fork().findOneOrFail(Product, { space: space.id });
            const e = fork();
            e.create(ProductVersion, { product: p.id, version_number: 1, version_type: 'minor', is_current: true });
            await e.flush();
          }],
          ['update version', async () => fork().nativeUpdate(ProductVersion, { product: { space: space.id } }, { is_current: false })],
          ['insert artifact', async () => {
            const p = await fork().findOneOrFail(Product, { space: space.id });
            const e = fork();
            e.create(ModelArtifact, artifactRow(e.getReference(Product, p.id), e.getReference(User, user.id)));
            await e.flush();
          }],
          ['update artifact', async () => fork().nativeUpdate(ModelArtifact, { product: { space: space.id } }, { status: 'deleted' })],
          ['delete artifact', async () => fork().nativeDelete(ModelArtifact, { product: { space: space.id } })],
          ['delete version', async () => fork().nativeDelete(ProductVersion, { product: { space: space.id } })],
          ['delete product', async () => fork().nativeDelete(Product, { space: space.id })],
        ];
        let before = await listingVersion(space.id);
        for (const [step, run] of steps) {
          await run();
          const after = await listingVersion(space.id);
          expect(after, step).toBeGreaterThan(before);
          before = after;
        }
        expect(await listingVersion(other.id)).toBe(0);
      });

      it('a transaction writing many rows of a space moves it, and changing nothing leaves it', async () => {
        const em = fork();
        const space = makeSpace(em, makeOrg(em));
        await em.flush();
        await fork().transactional(async (tx) => {
          for (let i = 0; i < 50; i++) makeProduct(tx, tx.getReference(Space, space.id));
        });
        const afterInsert = await listingVersion(space.id);
        expect(afterInsert).toBeGreaterThan(0);
        expect(await fork().count(Product, { space: space.id })).toBe(50);
        // An update matching no row, and writes to other tables, are no change to the listing.
        await fork().nativeUpdate(Product, { space: space.id, slug: 'no-such-model' }, { description: 'x' });
        const e = fork();
        makeUser(e);
        await e.flush();
        expect(await listingVersion(space.id)).toBe(afterInsert);
      });

      it('a rolled-back change does not move it', async () => {
        const em = fork();
        const space = makeSpace(em, makeOrg(em));
        await em.flush();
        await expect(
          fork().transactional(async (tx) => {
            makeProduct(tx, tx.getReference(Space, space.id));
            await tx.flush();
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        expect(await listingVersion(space.id)).toBe(0);
        expect(await fork().count(Product, { space: space.id })).toBe(0);
      });
    });

    describe('query recipes', () => {
      let space: Space;
      const names = ['50% Off Model', '50 percent model', 'a_b model', 'axb model', 'Back\\Slash', 'Modèle Élan'];

      beforeAll(async () => {
        const em = fork();
        space = makeSpace(em, makeOrg(em));
        for (const name of names) makeProduct(em, space, { name });
        makeProduct(em, space, { name: 'vendor one', vendor_model_id: 'GPT-X' });
        await em.flush();
      });

      const search = async (q: string) =>
        (await fork().find(Product, { $and: [{ space: space.id }, searchTextFilter(q)] }, { orderBy: { name: 'asc' } })).map(
          (p) => p.name,
        );

      it('q is a case-insensitive substring search with LIKE wildcards taken literally', async () => {
        expect(await search('50%')).toEqual(['50% Off Model']);
        expect(await search('a_b')).toEqual(['a_b model']);
        expect(await search('back\\s')).toEqual(['Back\\Slash']);
        expect(await search('MODÈLE')).toEqual(['Modèle Élan']);
        expect(await search('gpt-x')).toEqual(['vendor one']);
        expect(await search('%')).toEqual(['50% Off Model']);
        expect(await search('nothing-like-this')).toEqual([]);
        expect(escapeLike('a%b_c\\')).toBe('a\\%b\\_c\\\\');
      });

      it('an empty $in matches nothing (visibility lists may be empty)', async () => {
        expect(await fork().count(Product, { $or: [{ space: { $in: [] } }, { id: { $in: [] } }] })).toBe(0);
      });

      it('findAndCount with updated_at desc, id desc pages stably', async () => {
        const em = fork();
        const where = { space: space.id, is_archived: false };
        const [all, total] = await em.findAndCount(Product, where, { orderBy: { updated_at: 'desc', id: 'desc' } });
        expect(total).toBe(names.length + 1);
        const page2 = await fork().find(Product, where, { orderBy: { updated_at: 'desc', id: 'desc' }, limit: 3, offset: 3 });
        expect(page2.map((p) => p.id)).toEqual(all.slice(3, 6).map((p) => p.id));
      });

      it('re-sent chunks upsert on (session, chunk_index)', async () => {
        const em = fork();
        const user = makeUser(em);
        const product = makeProduct(em, space);
        const session = makeUploadSession(em, product, user);
        await em.flush();
        const put = (sha: string, size: number) =>
          fork().upsert(
            UploadChunk,
            { id: randomUUID(), session: session.id, chunk_index: 1, size_bytes: size, sha256: sha, etag: null, received_at: new Date() },
            { onConflictFields: ['session', 'chunk_index'], onConflictExcludeFields: ['id'] },
          );
        await put('1'.repeat(64), 5);
        await put('2'.repeat(64), 4);
        const chunks = await fork().find(UploadChunk, { session: session.id });
        expect(chunks).toHaveLength(1);
        expect(chunks[0]).toMatchObject({ chunk_index: 1, size_bytes: 4, sha256: '2'.repeat(64) });
      });

      it('hot statements (executeHot): dates as dateParam makes them read back like the ORM, driver errors as MikroORM exceptions', async () => {
        const em = fork();
        const session = makeUploadSession(em, makeProduct(em, space), makeUser(em));
        await em.flush();
        const at = new Date('2031-02-03T04:05:06.789Z');
        const insert = (hot: Em) =>
          executeHot(hot, 'test_chunk_insert', 'insert into upload_chunks (id, session_id, chunk_index, size_bytes, sha256, etag, received_at) values (?, ?, ?, ?, ?, ?, ?)', [
            randomUUID(),
            session.id,
            7,
            5,
            '4'.repeat(64),
            null,
            dateParam(hot, at),
          ]);
        await insert(fork());
        expect(await fork().findOneOrFail(UploadChunk, { session: session.id, chunk_index: 7 })).toMatchObject({ size_bytes: 5, received_at: at });
        await expect(insert(fork())).rejects.toBeInstanceOf(UniqueConstraintViolationException);
        // An update with RETURNING answers with the rows it changed, on both dialects.
        const bump = (hot: Em) => executeHot(hot, 'test_session_bump', 'update upload_sessions set row_version = row_version + 1 where id = ? and status = ? returning id', [session.id, session.status]);
        expect(await bump(fork())).toEqual([{ id: session.id }]);
        expect(await executeHot(fork(), 'test_session_bump', 'update upload_sessions set row_version = row_version + 1 where id = ? and status = ? returning id', [session.id, 'no-such-status'])).toEqual([]);
      });

      it('findSession (one plain statement) maps an upload session exactly like findOne, and tells whether a chunk was received', async () => {
        const em = fork();
        const product = makeProduct(em, space);
        const session = makeUploadSession(em, product, makeUser(em), {
          total_size_bytes: 5 * 2 ** 32 + 3,
          is_current: true,
          hash_broken: true,
          metadata: { format: 'GGUF', nested: { layers: [1, 2] } },
          expected_sha256: 'a'.repeat(64),
          completed_at: new Date('2032-01-02T03:04:05.678Z'),
        });
        await em.flush();
        const viaOrm = await fork().findOneOrFail(UploadSession, session.id);
        const found = await findSession(fork(), session.id);
        expect(found).not.toBeNull();
        const raw = found!.session;
        expect(found!.chunkReceived).toBeUndefined();
        expect(wrap(raw).toObject()).toEqual(wrap(viaOrm).toObject());
        expect(raw.expires_at).toBeInstanceOf(Date);
        expect(raw.is_current).toBe(true);
        expect(raw.metadata).toEqual({ format: 'GGUF', nested: { layers: [1, 2] } });
        expect(raw.product.id).toBe(product.id);
        expect((await findSession(fork(), session.id, product.id))?.session.id).toBe(session.id);
        expect(await findSession(fork(), session.id, randomUUID())).toBeNull();
        expect(await findSession(fork(), randomUUID())).toBeNull();

        // With a chunk index: whether that chunk was received, from the same statement.
        const chunkEm = fork();
        chunkEm.create(UploadChunk, { session: session.id, chunk_index: 1, size_bytes: 5, sha256: '5'.repeat(64), received_at: new Date() } as never);
        await chunkEm.flush();
        const withChunk = await findSession(fork(), session.id, product.id, 1);
        expect(withChunk?.chunkReceived).toBe(true);
        // The chunk row's trigger counted it (received_bytes, received_map): compare with the row now.
        expect(wrap(withChunk!.session).toObject()).toEqual(wrap(await fork().findOneOrFail(UploadSession, session.id)).toObject());
        expect((await findSession(fork(), session.id, product.id, 0))?.chunkReceived).toBe(false);
      });

      it('row_version guards upload sessions against lost updates', async () => {
        const em = fork();
        const user = makeUser(em);
        const session = makeUploadSession(em, makeProduct(em, space), user);
        await em.flush();

        const a = fork();
        const b = fork();
        const sa = await a.findOneOrFail(UploadSession, session.id);
        const sb = await b.findOneOrFail(UploadSession, session.id);
        sa.status = 'uploading';
        await a.flush();
        expect(sa.row_version).toBe(2);
        sb.status = 'aborted';
        await expect(b.flush()).rejects.toBeInstanceOf(OptimisticLockError);

        // The native form: condition on the version read, bump it, check the count.
        const stale = await fork().nativeUpdate(UploadSession, { id: session.id, row_version: 1 }, { status: 'failed', row_version: 2 });
        expect(stale).toBe(0);
        const fresh = await fork().nativeUpdate(UploadSession, { id: session.id, row_version: 2 }, { status: 'completed', row_version: 3 });
        expect(fresh).toBe(1);
      });

      it('deleting a session deletes its chunks', async () => {
        const em = fork();
        const user = makeUser(em);
        const session = makeUploadSession(em, makeProduct(em, space), user);
        em.create(UploadChunk, { session, chunk_index: 0, size_bytes: 5, sha256: '3'.repeat(64), received_at: new Date() });
        await em.flush();
        await fork().nativeDelete(UploadSession, { id: session.id });
        expect(await fork().count(UploadChunk, { session: session.id })).toBe(0);
      });
    });
  });
}
