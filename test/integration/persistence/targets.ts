/**
 * The databases the persistence suites run on: a temp SQLite file, and a fresh PostgreSQL
 * database (null when PostgreSQL is unreachable and not required: use describe.skipIf).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { openOrm, type Em, type Orm } from '../../../server/src/persistence/orm.ts';
import { createTestDatabase } from '../../support/postgres.ts';

export interface DatabaseTarget {
  dialect: 'sqlite' | 'postgresql';
  /** null = unavailable, skip. */
  create: (() => Promise<{ url: string; drop: () => Promise<void> }>) | null;
}

export async function databaseTargets(): Promise<DatabaseTarget[]> {
  const probe = await createTestDatabase();
  await probe?.drop();
  return [
    {
      dialect: 'sqlite',
      create: async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-sqlite-'));
        return {
          url: `sqlite:${path.join(dir, 'test.db')}`,
          drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
        };
      },
    },
    {
      dialect: 'postgresql',
      create: probe
        ? async () => {
            const db = await createTestDatabase();
            if (!db) throw new Error('PostgreSQL went away during the test run');
            return db;
          }
        : null,
    },
  ];
}

/**
 * Inside a describe block: a fresh database of `target`, migrated in beforeAll (registered first,
 * so the block's own beforeAll can seed it) and dropped in afterAll.
 */
export function useMigratedDatabase(target: DatabaseTarget): { readonly orm: Orm; readonly url: string; fork(): Em } {
  let db: { url: string; drop: () => Promise<void> } | undefined;
  let orm: Orm | undefined;
  beforeAll(async () => {
    db = await target.create!();
    orm = await openOrm({ databaseUrl: db.url });
  });
  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });
  return {
    get orm() {
      return orm!;
    },
    get url() {
      return db!.url;
    },
    fork: () => orm!.em.fork(),
  };
}
