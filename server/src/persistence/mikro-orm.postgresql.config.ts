/**
 * MikroORM CLI config for generating PostgreSQL migrations (see orm.ts for the command). It
 * diffs the entities against migrations/postgresql/.snapshot-postgresql.json; the database
 * (MIGRATIONS_DATABASE_URL) is only read when there is no snapshot yet. Hand-written additions
 * to generated migrations (the pg_trgm index) are invisible to the snapshot on purpose.
 */
import { ormOptions } from './orm.ts';

export default await ormOptions(
  { dialect: 'postgresql', url: process.env.MIGRATIONS_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  { forCli: true },
);
