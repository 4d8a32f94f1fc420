/**
 * The postgresql migrations, in order. Register each generated file here by hand (see orm.ts):
 * a static list loads the same under tsx, vitest and any bundler. Names are what the
 * mikro_orm_migrations table records: never rename one that has shipped.
 */
import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261127093203 } from './Migration20261127093203.ts';
import { Migration20261127122339 } from './Migration20261127122339.ts';
import { Migration20261203132645 } from './Migration20261203132645.ts';
import { Migration20261203132710 } from './Migration20261203132710.ts';
import { Migration20261203132711 } from './Migration20261203132711.ts';
import { Migration20261203133044 } from './Migration20261203133044.ts';
import { Migration20261203135737 } from './Migration20261203135737.ts';
import { Migration20261203170000 } from './Migration20261203170000.ts';
import { Migration20261203171500 } from './Migration20261203171500.ts';
import { Migration20261203172307 } from './Migration20261203172307.ts';
import { Migration20261203173000 } from './Migration20261203173000.ts';
import { Migration20261204190000 } from './Migration20261204190000.ts';

export const postgresqlMigrations: MigrationObject[] = [
  { name: 'Migration20261127093203', class: Migration20261127093203 },
  { name: 'Migration20261127122339', class: Migration20261127122339 },
  { name: 'Migration20261203132645', class: Migration20261203132645 },
  { name: 'Migration20261203132710', class: Migration20261203132710 },
  { name: 'Migration20261203132711', class: Migration20261203132711 },
  { name: 'Migration20261203133044', class: Migration20261203133044 },
  { name: 'Migration20261203135737', class: Migration20261203135737 },
  { name: 'Migration20261203170000', class: Migration20261203170000 },
  { name: 'Migration20261203171500', class: Migration20261203171500 },
  { name: 'Migration20261203172307', class: Migration20261203172307 },
  { name: 'Migration20261203173000', class: Migration20261203173000 },
  { name: 'Migration20261204190000', class: Migration20261204190000 },
];
