/**
 * The names of the committed migrations, per dialect, in order: what the mikro_orm_migrations
 * table holds once a database is up to date. Opening a database compares the two first and loads
 * the migrator (@mikro-orm/migrations with umzug: ~4 MB of resident memory in the server) and the migration
 * classes only when something is missing. Keep in step with <dialect>/index.ts (a test checks).
 */
export const MIGRATION_NAMES = {
  sqlite: ['Migration20261127093157', 'Migration20261127122337', 'Migration20261203132643', 'Migration20261203132707', 'Migration20261203132709', 'Migration20261203133042', 'Migration20261203135732', 'Migration20261203170000', 'Migration20261203171500', 'Migration20261203173000', 'Migration20261204190000'],
  postgresql: ['Migration20261127093203', 'Migration20261127122339', 'Migration20261203132645', 'Migration20261203132710', 'Migration20261203132711', 'Migration20261203133044', 'Migration20261203135737', 'Migration20261203170000', 'Migration20261203171500', 'Migration20261203172307', 'Migration20261203173000', 'Migration20261204190000'],
} as const;
