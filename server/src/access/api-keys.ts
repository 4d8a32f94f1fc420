/**
 * API keys: random, shown once, stored as a SHA-256 hash, revocable, last use recorded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { errors } from '../errors.ts';
import { ApiKey, type Caller } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { executeHot, rawDate } from '../persistence/raw.ts';
import {
  productAccessColumns,
  rememberProductLookup,
  rememberSpaceLookup,
  spaceWithRolesColumns,
  type ProductAccessRow,
  type SpaceWithRolesRow,
} from './policy.ts';

/** Recognizable in logs, secret scanners and support tickets. */
export const API_KEY_PREFIX = 'mr_';
/** 32 random bytes → 43 base64url characters. */
const API_KEY_RANDOM_BYTES = 32;
/** How many leading characters are kept for display (`key_prefix`). */
export const API_KEY_DISPLAY_LENGTH = 8;
/** last_used_at is written at most this often per key (it is a hint, not an audit log). */
export const LAST_USED_RESOLUTION_MS = 60_000;

export interface GeneratedApiKey {
  /** The raw key: give it to the user once, never store it. */
  key: string;
  /** sha256 hex of `key`, what `api_keys.key_hash` holds. */
  hash: string;
  /** The first characters, what `api_keys.key_prefix` holds. */
  prefix: string;
}

export function hashApiKey(rawKey: string): string {
  return createHash('sha256').update(rawKey, 'utf8').digest('hex');
}

export function generateApiKey(): GeneratedApiKey {
  const key = API_KEY_PREFIX + randomBytes(API_KEY_RANDOM_BYTES).toString('base64url');
  return { key, hash: hashApiKey(key), prefix: key.slice(0, API_KEY_DISPLAY_LENGTH) };
}

/** One row: the key's state and its user's id (every request runs this, so it is one plain query). */
const KEY_COLUMNS = 'k.id as key_id, k.revoked_at as key_revoked_at, k.last_used_at as key_last_used_at, u.id';
const AUTHENTICATE_SQL = `select ${KEY_COLUMNS} from api_keys k join users u on u.id = k.user_id where k.key_hash = ?`;
/** The same row plus the space a request names and the user's roles in it (null columns: no such space). */
const AUTHENTICATE_WITH_SPACE_SQL =
  `select ${KEY_COLUMNS}, ${spaceWithRolesColumns('u.id')} from api_keys k join users u on u.id = k.user_id ` +
  'left join spaces s on s.slug = ? left join organizations o on o.id = s.organization_id where k.key_hash = ?';
/** The same row plus the user's access to the product a request names (null columns: no such product). */
const AUTHENTICATE_WITH_PRODUCT_SQL =
  `select ${KEY_COLUMNS}, ${productAccessColumns('u.id')} from api_keys k join users u on u.id = k.user_id ` +
  'left join products p on p.id = ? left join spaces s on s.id = p.space_id where k.key_hash = ?';

interface AuthenticateRow extends Partial<SpaceWithRolesRow>, Partial<ProductAccessRow> {
  key_id: string;
  key_revoked_at: unknown;
  key_last_used_at: unknown;
  id: string;
}

/**
 * The caller (user id) a raw API key (the Bearer token) belongs to, or a 401 AppError (with
 * `WWW-Authenticate`) when it is missing, unknown or revoked. Updates `last_used_at` at most
 * once a minute, with a conditional native update (never flushes the caller's EntityManager).
 *
 * `spaceSlug`: the request concerns that space (its model listing or creation); the same
 * statement then also reads the space and the user's roles in it, which the access checks of
 * the request use instead of a query of their own (one round trip for the hottest request).
 * `productId` (a lowercase UUID): likewise for the user's access to that product (the requests of
 * an upload session: every chunk).
 */
export async function authenticate(
  em: Em,
  rawKey: string | null | undefined,
  now: Date = new Date(),
  opts: { spaceSlug?: string; productId?: string } = {},
): Promise<Caller> {
  if (!rawKey || rawKey.length > 512) throw errors.unauthenticated();
  const hash = hashApiKey(rawKey);
  const { spaceSlug, productId } = opts;
  const [row] =
    spaceSlug !== undefined
      ? await executeHot<AuthenticateRow>(em, 'authenticate_with_space', AUTHENTICATE_WITH_SPACE_SQL, [spaceSlug, hash])
      : productId !== undefined
        ? await executeHot<AuthenticateRow>(em, 'authenticate_with_product', AUTHENTICATE_WITH_PRODUCT_SQL, [productId, hash])
        : await executeHot<AuthenticateRow>(em, 'authenticate', AUTHENTICATE_SQL, [hash]);
  if (!row) throw errors.unauthenticated('The API key is not valid.');
  if (rawDate(row.key_revoked_at)) throw errors.unauthenticated('The API key has been revoked.');

  const stale = new Date(now.getTime() - LAST_USED_RESOLUTION_MS);
  const lastUsed = rawDate(row.key_last_used_at);
  if (!lastUsed || lastUsed < stale) {
    await em.nativeUpdate(
      ApiKey,
      { id: row.key_id, $or: [{ last_used_at: null }, { last_used_at: { $lt: stale } }] },
      { last_used_at: now },
    );
  }
  // A plain object, not a managed entity: nothing a request does needs more than the id.
  const caller: Caller = { id: row.id };
  if (spaceSlug !== undefined) rememberSpaceLookup(caller, spaceSlug, row as SpaceWithRolesRow);
  else if (productId !== undefined) rememberProductLookup(caller, productId, row as ProductAccessRow);
  return caller;
}
