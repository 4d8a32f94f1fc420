/**
 * MikroORM CLI config for generating SQLite migrations (see orm.ts for the command). It diffs
 * the entities against migrations/sqlite/.snapshot-sqlite.json; the database is a throwaway
 * in-memory one.
 */
import { ormOptions } from './orm.ts';

export default await ormOptions({ dialect: 'sqlite', path: ':memory:' }, { forCli: true });
