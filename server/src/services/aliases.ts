/**
 * Aliases: named pointers to one version of a product, with a strong ETag, compare-and-set
 * through If-Match, and a history of every change.
 *
 * Every change is one transaction that (1) reads the alias row, (2) updates it with
 * `where row_version = n` (or inserts it; the (product, name) unique key settles two creations)
 * and (3) appends the history entry numbered n + 1. A writer that loses the race (0 rows updated,
 * a unique violation, SQLite's busy snapshot) starts over from a fresh read, so under any number
 * of processes each change sees its true predecessor and none is lost; with If-Match, losing the
 * race is a 412 instead. A deleted alias stays as a tombstone row (`version` null) so its
 * row_version, and so its history numbering and ETags, keep counting if it is set again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeadlockException,
  LockWaitTimeoutException,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import type { components } from '../generated/api.ts';
import { errors } from '../errors.ts';
import { requireProductEdit, requireProductView } from '../access/index.ts';
import {
  ALIAS_NAME_PATTERN,
  AliasChange,
  PRODUCTION_ALIAS,
  ProductAlias,
  ProductVersion,
  type Caller,
  type Product,
} from '../persistence/entities.ts';
import { dialectOf, type Em } from '../persistence/orm.ts';
import { isUuid } from '../persistence/queries.ts';
import { recordEvent } from './events.ts';
import { checkPromotion } from './promotion.ts';

export type AliasResponse = components['schemas']['Alias'];
export type AliasChangeResponse = components['schemas']['AliasChange'];
export type AliasSet = components['schemas']['AliasSet'];

export interface AliasResult {
  alias: AliasResponse;
  etag: string;
}

/** How often a change that lost a race to another writer is tried again (without If-Match). */
const MAX_ATTEMPTS = 50;

/** A write that changes nothing: the statement takes SQLite's write lock all the same. */
const TAKE_WRITE_LOCK = 'update product_aliases set id = id where 1 = 0';

/** Lost a compare-and-set: somebody changed the alias between our read and our write. */
class LostRace extends Error {}

function checkName(name: string): void {
  if (!ALIAS_NAME_PATTERN.test(name)) {
    throw errors.validation(
      `The request is invalid: path.alias '${name}' is not an alias name (a lowercase letter, then up to 62 lowercase letters, digits, '_' or '-').`,
      [{ loc: ['path', 'alias'], msg: 'must match ^[a-z][a-z0-9_-]{0,62}$', type: 'pattern' }],
    );
  }
}

/** Strong, opaque, and different after every change (and after a deletion and re-creation). */
export function aliasEtag(alias: Pick<AliasRow, 'id' | 'row_version'>): string {
  return `"${alias.id.slice(0, 8)}.${alias.row_version}"`;
}

/** RFC 9110 §13.1.1: strong comparison; `*` matches any current representation. */
function ifMatchHolds(header: string, current: ProductAlias | null): boolean {
  if (!current || current.version === null) return false;
  if (header.trim() === '*') return true;
  const etag = aliasEtag(current);
  return header.split(',').some((tag) => tag.trim() === etag);
}

/** Errors after which the whole transaction is worth running again from a fresh read. */
function isRetryable(err: unknown): boolean {
  if (err instanceof LostRace || err instanceof UniqueConstraintViolationException) return true;
  if (err instanceof LockWaitTimeoutException || err instanceof DeadlockException) return true;
  // SQLite in WAL mode: a read transaction that another writer overtook cannot start writing.
  const text = err instanceof Error ? `${err.message} ${(err as { code?: string }).code ?? ''}` : '';
  return /SQLITE_BUSY|database is locked/i.test(text);
}

function preconditionFailed(name: string, header: string, current: ProductAlias | null) {
  const now = current && current.version !== null ? `its ETag is now ${aliasEtag(current)}` : 'it does not exist';
  return errors.preconditionFailed(
    `Alias '${name}' does not match If-Match ${header.trim()} (${now}); read it again and decide anew.`,
  );
}

/** What a response is made of: a loaded alias, or the values just written. */
type AliasRow = Pick<ProductAlias, 'id' | 'name' | 'row_version' | 'created_at' | 'updated_at'> & {
  product: { id: string };
  updated_by?: { id: string } | null;
};

export function aliasResponse(alias: AliasRow, version: Pick<ProductVersion, 'id' | 'version_number'>): AliasResponse {
  return {
    name: alias.name,
    product_id: alias.product.id,
    version_id: version.id,
    version_number: version.version_number,
    updated_by_id: alias.updated_by?.id ?? null,
    created_at: alias.created_at.toISOString(),
    updated_at: alias.updated_at.toISOString(),
  };
}

function changeResponse(name: string, c: AliasChange): AliasChangeResponse {
  return {
    alias: name,
    version_id: c.version?.id ?? null,
    previous_version_id: c.previous_version?.id ?? null,
    changed_by_id: c.changed_by?.id ?? null,
    changed_at: c.changed_at.toISOString(),
    reason: c.reason ?? null,
  };
}

export class AliasService {
  async list(em: Em, user: Caller, productId: string): Promise<AliasResponse[]> {
    const { product } = await requireProductView(em, user, productId);
    const aliases = await em.find(ProductAlias, { product: product.id, version: { $ne: null } }, { orderBy: { name: 'asc' }, populate: ['version'] });
    return aliases.map((a) => aliasResponse(a, a.version!));
  }

  async get(em: Em, user: Caller, productId: string, name: string): Promise<AliasResult> {
    checkName(name);
    const { product } = await requireProductView(em, user, productId);
    const alias = await em.findOne(ProductAlias, { product: product.id, name, version: { $ne: null } }, { populate: ['version'] });
    if (!alias) throw aliasNotFound(name, product.id);
    return { alias: aliasResponse(alias, alias.version!), etag: aliasEtag(alias) };
  }

  async history(em: Em, user: Caller, productId: string, name: string): Promise<AliasChangeResponse[]> {
    checkName(name);
    const { product } = await requireProductView(em, user, productId);
    const alias = await em.findOne(ProductAlias, { product: product.id, name });
    if (!alias) throw aliasNotFound(name, product.id);
    const changes = await em.find(AliasChange, { alias: alias.id }, { orderBy: { sequence: 'desc' } });
    return changes.map((c) => changeResponse(name, c));
  }

  /** `created`: the alias did not exist (or was deleted) before. */
  async set(
    em: Em,
    user: Caller,
    productId: string,
    name: string,
    body: AliasSet,
    ifMatch: string | undefined,
  ): Promise<AliasResult & { created: boolean }> {
    checkName(name);
    const { product } = await requireProductEdit(em, user, productId);
    const versionId = body.version_id.toLowerCase();
    const unknownVersion = () =>
      errors.validation(`The request is invalid: body.version_id '${body.version_id}' is not a version of product '${product.id}'.`, [
        { loc: ['body', 'version_id'], msg: 'is not a version of this product', type: 'reference' },
      ]);
    if (!isUuid(versionId)) throw unknownVersion();
    return this.change(em, product, name, ifMatch, async (tx, current) => {
      const version = await tx.findOne(ProductVersion, { id: versionId, product: product.id });
      if (!version) throw unknownVersion();
      if (name === PRODUCTION_ALIAS) {
        await checkPromotion(tx, product.space, product, version, `setting alias '${PRODUCTION_ALIAS}' to version ${version.version_number}`);
      }
      const now = new Date();
      const created = !current || current.version === null;
      let alias: AliasRow;
      if (!current) {
        alias = tx.create(ProductAlias, { product: product.id, name, version: version.id, updated_by: user.id, row_version: 1, created_at: now, updated_at: now });
        await tx.flush();
      } else {
        const row_version = current.row_version + 1;
        const changed = await tx.nativeUpdate(
          ProductAlias,
          { id: current.id, row_version: current.row_version },
          { version: version.id, updated_by: user.id, row_version, updated_at: now, ...(created ? { created_at: now } : {}) },
        );
        if (changed !== 1) throw new LostRace();
        alias = { id: current.id, name, product: { id: product.id }, updated_by: { id: user.id }, row_version, created_at: created ? now : current.created_at, updated_at: now };
      }
      const change = tx.create(AliasChange, {
        alias: alias.id,
        sequence: alias.row_version,
        version: version.id,
        previous_version: current?.version?.id ?? null,
        changed_by: user.id,
        changed_at: now,
        reason: body.reason ?? null,
      });
      await recordAliasEvent(tx, 'alias.set', user, product, name, change);
      return { alias: aliasResponse(alias, version), etag: aliasEtag(alias), created };
    });
  }

  async remove(em: Em, user: Caller, productId: string, name: string, ifMatch: string | undefined): Promise<void> {
    checkName(name);
    const { product } = await requireProductEdit(em, user, productId);
    await this.change(em, product, name, ifMatch, async (tx, current) => {
      if (!current?.version) throw aliasNotFound(name, product.id);
      const previous = current.version.id;
      const now = new Date();
      const changed = await tx.nativeUpdate(
        ProductAlias,
        { id: current.id, row_version: current.row_version },
        { version: null, updated_by: user.id, row_version: current.row_version + 1, updated_at: now },
      );
      if (changed !== 1) throw new LostRace();
      const change = tx.create(AliasChange, {
        alias: current.id,
        sequence: current.row_version + 1,
        version: null,
        previous_version: previous,
        changed_by: user.id,
        changed_at: now,
        reason: null,
      });
      await recordAliasEvent(tx, 'alias.deleted', user, product, name, change);
    });
  }

  /**
   * Runs `apply` in a transaction with the alias row as it is now (null: never set), after the
   * If-Match check, again from a fresh read while it loses races to other writers.
   */
  private async change<T>(
    em: Em,
    product: Product,
    name: string,
    ifMatch: string | undefined,
    apply: (tx: Em, current: ProductAlias | null) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await em.fork().transactional(async (tx) => {
          // SQLite: take the write lock first, waiting for it (busy_timeout). A transaction that
          // read first cannot wait for it once another process committed meanwhile.
          if (dialectOf(tx) === 'sqlite') await tx.execute(TAKE_WRITE_LOCK);
          const current = await tx.findOne(ProductAlias, { product: product.id, name });
          if (ifMatch !== undefined && !ifMatchHolds(ifMatch, current)) throw preconditionFailed(name, ifMatch, current);
          return apply(tx, current);
        });
      } catch (err) {
        if (!isRetryable(err)) throw err;
        // With If-Match the caller asked for exactly the state it read: that is gone now.
        if (ifMatch !== undefined) {
          const current = await em.fork().findOne(ProductAlias, { product: product.id, name });
          throw preconditionFailed(name, ifMatch, current);
        }
        if (attempt >= MAX_ATTEMPTS) throw errors.conflict(`Alias '${name}' is being changed by others right now; try again.`);
        await sleep(Math.floor(Math.random() * 5 * attempt));
      }
    }
  }
}

/** The change's event, last in its transaction: subject = the history entry, data = its public fields. */
async function recordAliasEvent(tx: Em, type: 'alias.set' | 'alias.deleted', user: Caller, product: Product, name: string, change: AliasChange) {
  await recordEvent(tx, {
    type,
    actorId: user.id,
    organizationId: product.space.organization.id,
    spaceId: product.space.id,
    productId: product.id,
    subjectId: change.id,
    data: { product_id: product.id, ...changeResponse(name, change) },
    occurredAt: change.changed_at,
  });
}

function aliasNotFound(name: string, productId: string) {
  return errors.notFound(`Product '${productId}' has no alias '${name}'.`);
}
