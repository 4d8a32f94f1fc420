/**
 * The sqlite migrations, in order. Register each generated file here by hand (see orm.ts):
 * a static list loads the same under tsx, vitest and any bundler. Names are what the
 * mikro_orm_migrations table records: never rename one that has shipped.
 */
import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261127093157 } from './Migration20261127093157.ts';
import { Migration20261127122337 } from './Migration20261127122337.ts';
import { Migration20261203132643 } from './Migration20261203132643.ts';
import { Migration20261203132707 } from './Migration20261203132707.ts';
import { Migration20261203132709 } from './Migration20261203132709.ts';
import { Migration20261203133042 } from './Migration20261203133042.ts';
import { Migration20261203135732 } from './Migration20261203135732.ts';
import { Migration20261203170000 } from './Migration20261203170000.ts';
import { Migration20261203171500 } from './Migration20261203171500.ts';
import { Migration20261203173000 } from './Migration20261203173000.ts';
import { Migration20261204190000 } from './Migration20261204190000.ts';

export const sqliteMigrations: MigrationObject[] = [
  { name: 'Migration20261127093157', class: Migration20261127093157 },
  { name: 'Migration20261127122337', class: Migration20261127122337 },
  { name: 'Migration20261203132643', class: Migration20261203132643 },
  { name: 'Migration20261203132707', class: Migration20261203132707 },
  { name: 'Migration20261203132709', class: Migration20261203132709 },
  { name: 'Migration20261203133042', class: Migration20261203133042 },
  { name: 'Migration20261203135732', class: Migration20261203135732 },
  { name: 'Migration20261203170000', class: Migration20261203170000 },
  { name: 'Migration20261203171500', class: Migration20261203171500 },
  { name: 'Migration20261203173000', class: Migration20261203173000 },
  { name: 'Migration20261204190000', class: Migration20261204190000 },
];
