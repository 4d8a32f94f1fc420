/**
 * Throwaway PostgreSQL databases for tests.
 *
 * Server: DATABASE_URL_TEST, else postgres://postgres@127.0.0.1:5432/postgres. Each call
 * creates a fresh database `mr_test_<random>` and returns its URL; `drop()` removes it.
 * PostgreSQL unreachable: with REQUIRE_POSTGRES=1 (CI) that is an error; otherwise a loud
 * warning goes to stderr and you get null, so the suite can skip.
 *
 * Pattern (top-level await in the test file):
 *
 *   const pg = await createTestDatabase();
 *   describe.skipIf(!pg)('on PostgreSQL', () => {
 *     afterAll(() => pg?.drop());
 *     it('…', async () => { const orm = await openOrm({ databaseUrl: pg!.url }); … });
 *   });
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

/** The little of `pg` used here (it comes with @mikro-orm/postgresql; @types/pg is not installed). */
interface PgClient {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}
const pg = createRequire(import.meta.url)('pg') as {
  Client: new (options: { connectionString: string; connectionTimeoutMillis?: number }) => PgClient;
};

export interface TestDatabase {
  /** postgres://…/mr_test_<random> */
  url: string;
  /** Drops the database (closing any connections still open to it). Safe to call twice. */
  drop(): Promise<void>;
}

export const DEFAULT_TEST_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export function testServerUrl(): string {
  return process.env.DATABASE_URL_TEST || DEFAULT_TEST_SERVER_URL;
}

let warned = false;

function warnSkipped(reason: string): void {
  if (warned) return;
  warned = true;
  const line = '!'.repeat(78);
  process.stderr.write(
    `\n${line}\n!! PostgreSQL is NOT reachable at ${redact(testServerUrl())}: ${reason}\n` +
      `!! PostgreSQL tests are SKIPPED. Set DATABASE_URL_TEST, or REQUIRE_POSTGRES=1 to make this a failure.\n${line}\n\n`,
  );
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

async function withAdminClient<T>(fn: (client: PgClient) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testServerUrl(), connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database, or null (after a loud warning) when PostgreSQL is unreachable. */
export async function createTestDatabase(): Promise<TestDatabase | null> {
  const name = `mr_test_${randomBytes(6).toString('hex')}`;
  try {
    await withAdminClient((c) => c.query(`create database "${name}"`));
  } catch (err) {
    const reason = err instanceof Error ? err.message || err.name : String(err);
    if (process.env.REQUIRE_POSTGRES === '1') {
      throw new Error(`PostgreSQL is required (REQUIRE_POSTGRES=1) but unreachable at ${redact(testServerUrl())}: ${reason}`);
    }
    warnSkipped(reason);
    return null;
  }
  const url = new URL(testServerUrl());
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`));
    },
  };
}
