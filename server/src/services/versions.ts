/**
 * Product versions: numbered 1, 2, 3, … per product; one current version per product.
 */
import { LockMode } from '@mikro-orm/core';
import type { components } from '../generated/api.ts';
import { errors } from '../errors.ts';
import { requireProductEdit, requireProductView } from '../access/index.ts';
import { ALIAS_NAME_PATTERN, Product, ProductAlias, ProductVersion, type Caller } from '../persistence/entities.ts';
import { isUuid } from '../persistence/queries.ts';
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

/** Version id → names of the aliases pointing at it, ascending (one query). */
export async function aliasNamesByVersion(em: Em, versionIds: readonly string[]): Promise<Map<string, string[]>> {
  const byVersion = new Map<string, string[]>();
  if (versionIds.length === 0) return byVersion;
  const aliases = await em.find(ProductAlias, { version: { $in: [...versionIds] } }, { orderBy: { name: 'asc' }, fields: ['name', 'version'] });
  for (const a of aliases) {
    const list = byVersion.get(a.version!.id);
    if (list) list.push(a.name);
    else byVersion.set(a.version!.id, [a.name]);
  }
  return byVersion;
}

const versionNotFound = (ref: string, productId: string) =>
  errors.notFound(`Product '${productId}' has no version '${ref}' (a version is named by its id, its number or an alias).`);

/**
 * The version of `productId` that `ref` names: a version UUID, else a version number, else an
 * alias name; null when it names none. The caller has checked access to the product.
 */
export async function findVersionByRef(em: Em, productId: string, ref: string): Promise<ProductVersion | null> {
  if (isUuid(ref)) return em.findOne(ProductVersion, { id: ref.toLowerCase(), product: productId });
  if (/^[1-9][0-9]{0,9}$/.test(ref) && Number(ref) <= 2_147_483_647) {
    return em.findOne(ProductVersion, { version_number: Number(ref), product: productId });
  }
  if (!ALIAS_NAME_PATTERN.test(ref)) return null;
  const alias = await em.findOne(ProductAlias, { product: productId, name: ref, version: { $ne: null } }, { populate: ['version'] });
  return alias?.version ?? null;
}

/** As findVersionByRef, but an unknown reference is a 404. */
export async function requireVersionByRef(em: Em, productId: string, ref: string): Promise<ProductVersion> {
  const version = await findVersionByRef(em, productId, ref);
  if (!version) throw versionNotFound(ref, productId);
  return version;
}

export function versionResponse(v: ProductVersion, aliases: readonly string[]): ModelVersionResponse {
  return {
    id: v.id,
    product_id: v.product.id,
    version_number: v.version_number,
    version_type: v.version_type,
    release_date: v.release_date ? dateOnly(v.release_date) : null,
    notes: v.notes ?? null,
    is_current: v.is_current,
    approval_status: v.approval_status,
    aliases: [...aliases],
    created_by_id: v.created_by?.id ?? null,
    created_at: v.created_at.toISOString(),
    updated_at: v.updated_at.toISOString(),
  };
}

export class VersionService {
  constructor(private readonly orm: Orm) {}

  async list(em: Em, user: Caller, productId: string): Promise<ModelVersionResponse[]> {
    const { product } = await requireProductView(em, user, productId);
    const versions = await em.find(ProductVersion, { product: product.id }, { orderBy: { version_number: 'desc' } });
    const aliases = await aliasNamesByVersion(em, versions.map((v) => v.id));
    return versions.map((v) => versionResponse(v, aliases.get(v.id) ?? []));
  }

  async get(em: Em, user: Caller, productId: string, ref: string): Promise<ModelVersionResponse> {
    const { product } = await requireProductView(em, user, productId);
    const version = await requireVersionByRef(em, product.id, ref);
    const aliases = await aliasNamesByVersion(em, [version.id]);
    return versionResponse(version, aliases.get(version.id) ?? []);
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
        created_by: user.id,
      });
      await tx.nativeUpdate(Product, { id: product.id }, { updated_at: new Date() });
      const response = versionResponse(created, []);
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
