/**
 * Opening the database: driver from the URL (SQLite through @mikro-orm/libsql, or PostgreSQL),
 * committed migrations applied on open, no global EntityManager (fork one per request/job).
 *
 * Generating a migration after changing entities (run once per dialect; the PostgreSQL one
 * connects to MIGRATIONS_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres,
 * but diffs against the committed snapshot, not that database):
 *
 *   MIKRO_ORM_CLI_ALWAYS_ALLOW_TS=1 node --import tsx node_modules/@mikro-orm/cli/esm.js \
 *     migration:create --config server/src/persistence/mikro-orm.sqlite.config.ts
 *   MIKRO_ORM_CLI_ALWAYS_ALLOW_TS=1 node --import tsx node_modules/@mikro-orm/cli/esm.js \
 *     migration:create --config server/src/persistence/mikro-orm.postgresql.config.ts
 *
 * then add each new class to migrations/<dialect>/index.ts (migrations are registered
 * statically, so they load the same under tsx, vitest and a bundler) and its name to
 * migrations/names.ts (read on every open, so an up-to-date database never loads the migrator).
 * Use the CLI only to create migrations: the app applies them; `migration:up` through the CLI
 * would overwrite the snapshot with the live schema.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MikroORM, type Options } from '@mikro-orm/core';
import type { AbstractSqlDriver, SqlEntityManager } from '@mikro-orm/postgresql';
import { parseDatabaseUrl, type DatabaseTarget } from '../config.ts';
import type { Logger } from '../logger.ts';
import { ALL_ENTITIES } from './entities.ts';
import { MIGRATION_NAMES } from './migrations/names.ts';

/** The ORM as the rest of the server sees it: an SQL driver, whichever dialect. */
export type Orm = MikroORM<AbstractSqlDriver, SqlEntityManager>;
/** A forked, request- or job-scoped EntityManager (has createQueryBuilder, execute, …). */
export type Em = SqlEntityManager;
export type Dialect = DatabaseTarget['dialect'];

export interface OpenOrmOptions {
  /** `sqlite:<path>`, `sqlite::memory:`, `postgres://…`, `postgresql://…` */
  databaseUrl: string;
  /** Log every SQL statement (at debug level through `logger`, else to stderr). */
  debug?: boolean;
  /** Receives MikroORM's own messages; without one they go to stderr (never stdout). */
  logger?: Logger;
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const MIGRATIONS_DIR = {
  sqlite: path.join(here, 'migrations', 'sqlite'),
  postgresql: path.join(here, 'migrations', 'postgresql'),
} as const satisfies Record<Dialect, string>;

/** Arbitrary constant: PostgreSQL advisory lock that serializes migrations across processes. */
const MIGRATION_LOCK_KEY = 724_311_809;

/**
 * MikroORM options for a database. `forCli` builds the variant the MikroORM CLI uses to
 * generate migrations (file-based, with a snapshot); the app uses the static migration list.
 * Only the driver the URL names is loaded (@mikro-orm/libsql or @mikro-orm/postgresql, several
 * MB of resident memory each): nothing imports a driver package statically.
 */
export async function ormOptions(target: DatabaseTarget, opts: Omit<OpenOrmOptions, 'databaseUrl'> & { forCli?: boolean } = {}) {
  const log = opts.logger;
  const common = {
    entities: ALL_ENTITIES,
    discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
    metadataCache: { enabled: false },
    allowGlobalContext: false,
    // em.create() runs onCreate at once: ids and timestamps exist before the flush.
    processOnCreateHooksEarly: true,
    forceUtcTimezone: true,
    debug: opts.debug ?? false,
    colors: false,
    logger: (message: string) => {
      if (log) log.debug({ component: 'mikro-orm' }, message);
      else process.stderr.write(`${message}\n`);
    },
    // The app registers the migrator only when a migration is pending (see migrate()).
    extensions: opts.forCli ? [(await import('@mikro-orm/migrations')).Migrator] : [],
    migrations: opts.forCli
      ? {
          path: MIGRATIONS_DIR[target.dialect],
          glob: 'Migration*.ts',
          emit: 'ts' as const,
          snapshot: true,
          snapshotName: `.snapshot-${target.dialect}`,
          silent: false,
        }
      : {
          snapshot: false,
          silent: true,
          transactional: true,
          allOrNothing: true,
        },
  } satisfies Partial<Options>;

  if (target.dialect === 'sqlite') {
    const isFile = target.path !== ':memory:';
    const { LibSqlDriver } = await import('@mikro-orm/libsql');
    return {
      ...common,
      driver: LibSqlDriver,
      dbName: target.path,
      pool: {
        // MikroORM's libsql dialect recycles file connections every 10 s, and these pragmas are
        // per connection: set them on each new one.
        afterCreate: (conn: { exec(sql: string): unknown }, done: (err: unknown, conn: unknown) => void) => {
          try {
            conn.exec('PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;');
            if (isFile) conn.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
            done(null, conn);
          } catch (err) {
            done(err, conn);
          }
        },
      },
    } satisfies Options;
  }
  const { PostgreSqlDriver } = await import('@mikro-orm/postgresql');
  return {
    ...common,
    driver: PostgreSqlDriver,
    clientUrl: target.url,
  } satisfies Options;
}

/** The dialect of an ORM or of one of its EntityManagers. */
export function dialectOf(owner: Pick<Orm, 'config'> | Pick<Em, 'config'>): Dialect {
  // By platform, not by driver class: comparing with PostgreSqlDriver would load that package.
  return owner.config.getPlatform().constructor.name === 'PostgreSqlPlatform' ? 'postgresql' : 'sqlite';
}

/** Open the database named by the URL (or a Config) and apply pending migrations. */
export async function openOrm(opts: OpenOrmOptions): Promise<Orm> {
  const target = parseDatabaseUrl(opts.databaseUrl);
  if (target.dialect === 'sqlite' && target.path !== ':memory:') {
    fs.mkdirSync(path.dirname(target.path), { recursive: true });
  }
  const orm = (await MikroORM.init((await ormOptions(target, opts)) as Options)) as unknown as Orm;
  if (opts.migrate ?? true) {
    try {
      const applied = await migrate(orm);
      if (applied.length > 0) opts.logger?.info({ migrations: applied }, 'applied database migrations');
    } catch (err) {
      await orm.close(true);
      throw err;
    }
  }
  return orm;
}

/**
 * The ORM's migrator, with the committed migrations. Loaded on first use: @mikro-orm/migrations
 * and the migration classes are not imported until a database needs them.
 */
export async function migratorOf(orm: Orm): Promise<ReturnType<Orm['getMigrator']>> {
  if (!orm.config.getExtension('@mikro-orm/migrator')) {
    const dialect = dialectOf(orm);
    const [{ Migrator }, migrationsList] = await Promise.all([
      import('@mikro-orm/migrations'),
      dialect === 'sqlite'
        ? import('./migrations/sqlite/index.ts').then((m) => m.sqliteMigrations)
        : import('./migrations/postgresql/index.ts').then((m) => m.postgresqlMigrations),
    ]);
    orm.config.set('migrations', { ...orm.config.get('migrations'), migrationsList });
    Migrator.register(orm as unknown as Parameters<typeof Migrator.register>[0]);
  }
  return orm.getMigrator();
}

/** Whether the database has recorded every committed migration (one query; no migrator). */
async function upToDate(orm: Orm): Promise<boolean> {
  let rows: { name: string }[];
  try {
    rows = await orm.em.fork().execute<{ name: string }[]>('select name from mikro_orm_migrations');
  } catch {
    return false; // no table yet: a new database
  }
  const recorded = new Set(rows.map((row) => row.name));
  return MIGRATION_NAMES[dialectOf(orm)].every((name) => recorded.has(name));
}

/**
 * Apply pending migrations; returns the names applied. On PostgreSQL an advisory lock makes
 * concurrent starts of several processes take turns instead of racing on CREATE TABLE.
 */
export async function migrate(orm: Orm): Promise<string[]> {
  if (await upToDate(orm)) return [];
  const migrator = await migratorOf(orm);
  if (dialectOf(orm) === 'postgresql') {
    // The lock lives in its own transaction (one pooled connection) while the migrator
    // runs on others; it is released when that transaction ends.
    return orm.em.fork().transactional(async (em) => {
      await em.execute('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
      const applied = await migrator.up();
      return applied.map((m) => m.name);
    });
  }
  const applied = await migrator.up();
  return applied.map((m) => m.name);
}
