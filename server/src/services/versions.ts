/**
 * Product versions: numbered 1, 2, 3, … per product; one current version per product.
 */
import { LockMode } from '@mikro-orm/core';
import type { components } from '../generated/api.ts';
import { errors } from '../errors.ts';
import { requireProductEdit, requireProductView } from '../access/index.ts';
import { Product, ProductVersion, type Caller } from '../persistence/entities.ts';
import { dialectOf, type Em, type Orm } from '../persistence/orm.ts';
import { dateOnly } from './summaries.ts';
import { recordEvent } from './events.ts';

export type ModelVersionCreate = components['schemas']['ModelVersionCreate'];
export type ModelVersionResponse = components['schemas']['ModelVersion'];

/**
 * The validator's `format: date` only checks the shape (YYYY-MM-DD): 2026-02-30 or year 0000
 * would reach the database (PostgreSQL refuses them, SQLite stores them). Calendar dates only.
 */
function checkReleaseDate(value: string | null | undefined): void {
  if (value === undefined || value === null) return;
  const parsed = new Date(`${value}T00:00:00Z`);
  const real = !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === value && parsed.getUTCFullYear() >= 1;
  if (!real) {
    throw errors.validation(`The request is invalid: body.release_date '${value}' is not a calendar date.`, [
      { loc: ['body', 'release_date'], msg: `'${value}' is not a calendar date`, type: 'format' },
    ]);
  }
}

export function versionResponse(v: ProductVersion): ModelVersionResponse {
  return {
    id: v.id,
    product_id: v.product.id,
    version_number: v.version_number,
    version_type: v.version_type,
    release_date: v.release_date ? dateOnly(v.release_date) : null,
    notes: v.notes ?? null,
    is_current: v.is_current,
    created_at: v.created_at.toISOString(),
    updated_at: v.updated_at.toISOString(),
  };
}

export class VersionService {
  constructor(private readonly orm: Orm) {}

  async list(em: Em, user: Caller, productId: string): Promise<ModelVersionResponse[]> {
    const { product } = await requireProductView(em, user, productId);
    const versions = await em.find(ProductVersion, { product: product.id }, { orderBy: { version_number: 'desc' } });
    return versions.map(versionResponse);
  }

  async create(em: Em, user: Caller, productId: string, body: ModelVersionCreate): Promise<ModelVersionResponse> {
    const { product } = await requireProductEdit(em, user, productId);
    checkReleaseDate(body.release_date);
    const version = await em.transactional(async (tx) => {
      // Numbering and "one current" need the versions of this product to hold still.
      if (dialectOf(this.orm) === 'postgresql') {
        await tx.findOneOrFail(Product, { id: product.id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      }
      const last = await tx.findOne(ProductVersion, { product: product.id }, { orderBy: { version_number: 'desc' } });
      const isCurrent = last === null || body.is_current === true;
      if (isCurrent && last !== null) {
        await tx.nativeUpdate(ProductVersion, { product: product.id, is_current: true }, { is_current: false, updated_at: new Date() });
      }
      const created = tx.create(ProductVersion, {
        product: product.id,
        version_number: (last?.version_number ?? 0) + 1,
        version_type: body.version_type ?? 'minor',
        release_date: body.release_date ?? null,
        notes: body.notes ?? null,
        is_current: isCurrent,
      });
      await tx.nativeUpdate(Product, { id: product.id }, { updated_at: new Date() });
      const response = versionResponse(created);
      await recordEvent(tx, {
        type: 'version.created',
        actorId: user.id,
        organizationId: product.space.organization.id,
        spaceId: product.space.id,
        productId: product.id,
        subjectId: created.id,
        data: response,
        occurredAt: created.created_at,
      });
      return response;
    });
    return version;
  }
}
