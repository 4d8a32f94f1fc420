/**
 * Installation administration: the operations behind the admin CLI and the first start.
 * Inputs are validated here (the CLI passes raw strings); failures are AppErrors with field
 * details. Each operation runs in its own transaction on the EntityManager it is given.
 */
import { LockWaitTimeoutException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { generateApiKey } from '../access/api-keys.ts';
import { AppError, errors, type FieldError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import {
  ApiKey,
  LIMITS,
  ORGANIZATION_ROLES,
  Organization,
  OrganizationMembership,
  PRODUCT_GRANT_ACCESS,
  PROMOTION_POLICIES,
  type PromotionPolicy,
  Product,
  ProductGrant,
  SLUG_PATTERN,
  SPACE_ROLES,
  Space,
  SpaceMembership,
  User,
  type OrganizationRole,
  type ProductGrantAccess,
  type SpaceRole,
} from '../persistence/entities.ts';
import { dialectOf, type Em, type Orm } from '../persistence/orm.ts';
import { isUuid } from '../persistence/queries.ts';

// ─── input validation ────────────────────────────────────────────────────────────────────

const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+$/;
const MAX_PRODUCT_LIMIT = 1_000_000_000;

function invalid(field: string, msg: string, type = 'value_error'): AppError {
  const fe: FieldError = { loc: [field], msg, type };
  return errors.validation(`${field}: ${msg}`, [fe]);
}

export function validateSlug(value: unknown, field = 'slug'): string {
  if (typeof value !== 'string' || value === '') throw invalid(field, 'is required', 'missing');
  if (value.length > LIMITS.slug) throw invalid(field, `must be at most ${LIMITS.slug} characters`);
  if (!SLUG_PATTERN.test(value)) {
    throw invalid(field, `'${value}' is not a slug: use lowercase letters, digits and single hyphens (e.g. ml-platform)`);
  }
  return value;
}

/** Trimmed and lowercased. */
export function validateEmail(value: unknown, field = 'email'): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(field, 'is required', 'missing');
  const email = value.trim().toLowerCase();
  if (email.length > LIMITS.email || !EMAIL_PATTERN.test(email)) throw invalid(field, `'${value}' is not an email address`);
  return email;
}

function validateName(value: string | null | undefined, field: string, max: number = LIMITS.name): string | null {
  if (value === undefined || value === null) return null;
  const name = value.trim();
  if (name === '') throw invalid(field, 'must not be empty');
  if (name.length > max) throw invalid(field, `must be at most ${max} characters`);
  return name;
}

function validateOneOf<const T extends readonly string[]>(value: unknown, allowed: T, field: string): T[number] {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw invalid(field, `must be one of ${allowed.join(', ')} (got '${String(value)}')`, 'enum');
  }
  return value as T[number];
}

function validateProductLimit(value: number | null | undefined): number | null {
  if (value === undefined || value === null) return null;
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_PRODUCT_LIMIT) {
    throw invalid('product_limit', `must be a whole number from 0 to ${MAX_PRODUCT_LIMIT}, or none`);
  }
  return value;
}

// ─── lookups ─────────────────────────────────────────────────────────────────────────────

async function organizationBySlug(em: Em, slug: string): Promise<Organization> {
  const org = await em.findOne(Organization, { slug: validateSlug(slug, 'org') });
  if (!org) throw errors.notFound(`Organization '${slug}' was not found.`);
  return org;
}

async function spaceBySlug(em: Em, slug: string): Promise<Space> {
  const space = await em.findOne(Space, { slug: validateSlug(slug, 'space') }, { populate: ['organization'] });
  if (!space) throw errors.notFound(`Space '${slug}' was not found.`);
  return space;
}

async function userByEmail(em: Em, email: string): Promise<User> {
  const normalized = validateEmail(email);
  const user = await em.findOne(User, { email: normalized });
  if (!user) throw errors.notFound(`User '${normalized}' was not found (create it with create-user).`);
  return user;
}

/** Runs `fn` in a transaction; a unique-constraint race becomes a 409. */
async function inTransaction<T>(em: Em, what: string, fn: (em: Em) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await em.transactional(async (tx) => {
        // SQLite: take the write lock first, waiting for it (busy_timeout). A transaction that
        // read first cannot wait once another process (the server) committed meanwhile: SQLite
        // answers "database is locked" at once.
        if (dialectOf(tx) === 'sqlite') await tx.execute(TAKE_WRITE_LOCK);
        return fn(tx as Em);
      });
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) throw errors.conflict(`${what}: it already exists.`);
      // SQLite under heavy load: a server writing back to back can keep the lock past
      // busy_timeout (waiters poll). An admin write (a key revocation above all) must still go
      // through: try again a few times.
      if (!isDatabaseLocked(err) || attempt >= LOCKED_ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    }
  }
}

const LOCKED_ATTEMPTS = 6;
/** A write that changes nothing: the statement takes SQLite's write lock all the same. */
const TAKE_WRITE_LOCK = 'update organizations set id = id where 1 = 0';

/** SQLite's "database is locked" (busy_timeout ran out), as the driver reports it. */
function isDatabaseLocked(err: unknown): boolean {
  if (err instanceof LockWaitTimeoutException) return true;
  return err instanceof Error && /database is locked|SQLITE_BUSY/.test(err.message);
}

// ─── operations ──────────────────────────────────────────────────────────────────────────

export interface CreateSpaceInput {
  org: string;
  space: string;
  name?: string | null;
  productLimit?: number | null;
}

/** A new space in an existing organization; the slug must be free installation-wide (409). */
export async function createSpace(em: Em, input: CreateSpaceInput): Promise<Space> {
  const slug = validateSlug(input.space, 'space');
  const name = validateName(input.name, 'name') ?? slug;
  const productLimit = validateProductLimit(input.productLimit);
  return inTransaction(em, `Space '${slug}'`, async (tx) => {
    const organization = await organizationBySlug(tx, input.org);
    if (await tx.count(Space, { slug })) throw errors.conflict(`Space '${slug}' already exists.`);
    const space = tx.create(Space, { organization, slug, name, product_limit: productLimit });
    await tx.flush();
    return space;
  });
}

export interface CreateUserInput {
  email: string;
  name?: string | null;
}

export async function createUser(em: Em, input: CreateUserInput): Promise<User> {
  const email = validateEmail(input.email);
  const name = validateName(input.name, 'name', LIMITS.short_text);
  return inTransaction(em, `User '${email}'`, async (tx) => {
    if (await tx.count(User, { email })) throw errors.conflict(`User '${email}' already exists.`);
    const user = tx.create(User, { email, name });
    await tx.flush();
    return user;
  });
}

export interface MembershipResult<M> {
  membership: M;
  /** false when the user already was a member (the role was set to the requested one). */
  created: boolean;
}

export interface AddOrgMemberInput {
  email: string;
  org: string;
  role: string;
}

/** Adds the user to the organization, or changes their role there. */
export async function addOrgMember(em: Em, input: AddOrgMemberInput): Promise<MembershipResult<OrganizationMembership>> {
  const role = validateOneOf(input.role, ORGANIZATION_ROLES, 'role');
  return inTransaction(em, 'Organization membership', async (tx) => {
    const [user, organization] = [await userByEmail(tx, input.email), await organizationBySlug(tx, input.org)];
    const result = await upsertOrgMembership(tx, organization, user, role);
    await tx.flush();
    return result;
  });
}

async function upsertOrgMembership(
  tx: Em,
  organization: Organization,
  user: User,
  role: OrganizationRole,
): Promise<MembershipResult<OrganizationMembership>> {
  const existing = await tx.findOne(OrganizationMembership, { organization: organization.id, user: user.id });
  if (existing) {
    existing.role = role;
    return { membership: existing, created: false };
  }
  return { membership: tx.create(OrganizationMembership, { organization, user, role }), created: true };
}

export interface AddSpaceMemberInput {
  email: string;
  space: string;
  role: string;
}

/**
 * Gives the user a role on the space (or changes it). A user who is not yet a member of the
 * space's organization becomes a plain 'member' there, so organization listings work.
 */
export async function addSpaceMember(em: Em, input: AddSpaceMemberInput): Promise<MembershipResult<SpaceMembership>> {
  const role: SpaceRole = validateOneOf(input.role, SPACE_ROLES, 'role');
  return inTransaction(em, 'Space membership', async (tx) => {
    const [user, space] = [await userByEmail(tx, input.email), await spaceBySlug(tx, input.space)];
    const inOrg = await tx.count(OrganizationMembership, { organization: space.organization.id, user: user.id });
    if (!inOrg) tx.create(OrganizationMembership, { organization: space.organization, user, role: 'member' });
    const existing = await tx.findOne(SpaceMembership, { space: space.id, user: user.id });
    let result: MembershipResult<SpaceMembership>;
    if (existing) {
      existing.role = role;
      result = { membership: existing, created: false };
    } else {
      result = { membership: tx.create(SpaceMembership, { space, user, role }), created: true };
    }
    await tx.flush();
    return result;
  });
}

export interface GrantInput {
  email: string;
  productId: string;
  access: string;
}

/** An explicit product grant (view|edit); granting again sets the access level. */
export async function grant(em: Em, input: GrantInput): Promise<MembershipResult<ProductGrant>> {
  const access: ProductGrantAccess = validateOneOf(input.access, PRODUCT_GRANT_ACCESS, 'access');
  if (!isUuid(input.productId)) throw invalid('product', `'${input.productId}' is not a product id (UUID)`);
  const productId = input.productId.toLowerCase();
  return inTransaction(em, 'Product grant', async (tx) => {
    const user = await userByEmail(tx, input.email);
    const product = await tx.findOne(Product, { id: productId });
    if (!product) throw errors.notFound(`Product '${productId}' was not found.`);
    const existing = await tx.findOne(ProductGrant, { product: product.id, user: user.id });
    let result: MembershipResult<ProductGrant>;
    if (existing) {
      existing.access = access;
      result = { membership: existing, created: false };
    } else {
      result = { membership: tx.create(ProductGrant, { product, user, access }), created: true };
    }
    await tx.flush();
    return result;
  });
}

export interface CreatedApiKey {
  /** The raw key, shown once. */
  api_key: string;
  /** The stored record (hash, prefix, id). */
  api_key_record: ApiKey;
}

export interface CreateApiKeyInput {
  email: string;
  name?: string | null;
}

export async function createApiKey(em: Em, input: CreateApiKeyInput): Promise<CreatedApiKey> {
  const name = validateName(input.name, 'name', LIMITS.short_text);
  return inTransaction(em, 'API key', async (tx) => {
    const user = await userByEmail(tx, input.email);
    const created = issueApiKey(tx, user, name);
    await tx.flush();
    return created;
  });
}

function issueApiKey(tx: Em, user: User, name: string | null): CreatedApiKey {
  const generated = generateApiKey();
  const record = tx.create(ApiKey, { user, name, key_hash: generated.hash, key_prefix: generated.prefix });
  return { api_key: generated.key, api_key_record: record };
}

/** Revokes the key (idempotent: revoking again keeps the first revocation time). */
export async function revokeApiKey(em: Em, input: { id: string }): Promise<ApiKey> {
  if (!isUuid(input.id)) throw invalid('id', `'${input.id}' is not an API key id (UUID)`);
  return inTransaction(em, 'API key', async (tx) => {
    const apiKey = await tx.findOne(ApiKey, { id: input.id.toLowerCase() }, { populate: ['user'] });
    if (!apiKey) throw errors.notFound(`API key '${input.id}' was not found.`);
    apiKey.revoked_at ??= new Date();
    await tx.flush();
    return apiKey;
  });
}

/** null = unlimited. Existing products above a new lower limit stay; only creation is refused. */
export async function setProductLimit(em: Em, input: { space: string; limit: number | null }): Promise<Space> {
  const limit = validateProductLimit(input.limit);
  return inTransaction(em, 'Space', async (tx) => {
    const space = await spaceBySlug(tx, input.space);
    space.product_limit = limit;
    await tx.flush();
    return space;
  });
}

/** `none`: nothing gated (the default); `risk_based`: production is gated by risk class (services/promotion.ts). */
export async function setPromotionPolicy(em: Em, input: { space: string; policy: string }): Promise<Space> {
  if (!(PROMOTION_POLICIES as readonly string[]).includes(input.policy)) {
    throw invalid('promotion_policy', `must be one of ${PROMOTION_POLICIES.join(', ')}`);
  }
  return inTransaction(em, 'Space', async (tx) => {
    const space = await spaceBySlug(tx, input.space);
    space.promotion_policy = input.policy as PromotionPolicy;
    await tx.flush();
    return space;
  });
}

export interface BootstrapInput {
  org: string;
  space: string;
  email: string;
  orgName?: string | null;
  spaceName?: string | null;
  userName?: string | null;
  keyName?: string | null;
}

export interface BootstrapResult extends CreatedApiKey {
  organization: Organization;
  space: Space;
  user: User;
  created: { organization: boolean; space: boolean; user: boolean; membership: boolean };
}

/**
 * Creates whatever is missing of organization, space and user, makes the user an owner of
 * the organization, and issues a new API key. Safe to run again. Names of existing records
 * are left alone. A space slug taken by another organization → 409.
 */
export async function bootstrap(em: Em, input: BootstrapInput): Promise<BootstrapResult> {
  const orgSlug = validateSlug(input.org, 'org');
  const spaceSlug = validateSlug(input.space, 'space');
  const email = validateEmail(input.email);
  const orgName = validateName(input.orgName, 'org_name') ?? orgSlug;
  const spaceName = validateName(input.spaceName, 'space_name') ?? spaceSlug;
  const userName = validateName(input.userName, 'name', LIMITS.short_text);
  const keyName = validateName(input.keyName, 'key_name', LIMITS.short_text);

  return inTransaction(em, 'Bootstrap', async (tx) => {
    const created = { organization: false, space: false, user: false, membership: false };

    let organization = await tx.findOne(Organization, { slug: orgSlug });
    if (!organization) {
      organization = tx.create(Organization, { slug: orgSlug, name: orgName });
      created.organization = true;
    }

    let space = await tx.findOne(Space, { slug: spaceSlug }, { populate: ['organization'] });
    if (space && space.organization.id !== organization.id) {
      throw errors.conflict(`Space '${spaceSlug}' already exists in organization '${space.organization.slug}'.`);
    }
    if (!space) {
      space = tx.create(Space, { organization, slug: spaceSlug, name: spaceName, product_limit: null });
      created.space = true;
    }

    let user = await tx.findOne(User, { email });
    if (!user) {
      user = tx.create(User, { email, name: userName });
      created.user = true;
    }

    const membership = await tx.findOne(OrganizationMembership, { organization: organization.id, user: user.id });
    if (!membership) {
      tx.create(OrganizationMembership, { organization, user, role: 'owner' });
      created.membership = true;
    } else if (membership.role !== 'owner') {
      membership.role = 'owner';
      created.membership = true;
    }

    const key = issueApiKey(tx, user, keyName);
    await tx.flush();
    return { organization, space, user, created, ...key };
  });
}

// ─── first start ─────────────────────────────────────────────────────────────────────────

export const FIRST_START = {
  org: 'default',
  orgName: 'Default',
  space: 'default',
  spaceName: 'Default',
  email: 'admin@localhost',
  keyName: 'first-start',
} as const;

/**
 * On a database without any organization: organization `default`, space `default`, owner
 * `admin@localhost` and an API key, returned for main.ts to print once. Anything else
 * (including a database prepared with the admin CLI) → null. Several processes starting at
 * once on an empty database: one wins, the others get null.
 */
export async function ensureFirstStart(orm: Orm, logger?: Logger): Promise<BootstrapResult | null> {
  const em = orm.em.fork();
  if ((await em.count(Organization, {})) > 0) return null;
  try {
    const result = await em.transactional(async (tx) => {
      // Re-check inside the transaction: the unique slug settles any remaining race.
      if ((await tx.count(Organization, {})) > 0) return null;
      return bootstrap(tx as Em, FIRST_START);
    });
    if (result) {
      logger?.info(
        { organization: result.organization.slug, space: result.space.slug, user: result.user.email, api_key_id: result.api_key_record.id },
        'first start: created the default organization, space, owner and API key',
      );
    }
    return result;
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException || (err instanceof AppError && err.status === 409)) return null;
    throw err;
  }
}

/** The once-only stdout banner main.ts prints after ensureFirstStart. */
export function firstStartBanner(result: BootstrapResult, baseUrl?: string): string {
  const line = '='.repeat(78);
  const lines = [
    line,
    'Model repository: first start.',
    `Created organization '${result.organization.slug}', space '${result.space.slug}' and owner '${result.user.email}'.`,
    'API key (shown only this once; store it now):',
    '',
    `    ${result.api_key}`,
    '',
  ];
  if (baseUrl) {
    lines.push(
      `Try: curl -H "Authorization: Bearer <key>" ${baseUrl}/api/v1.0/catalog/spaces/${result.space.slug}/model-repository/models`,
    );
  }
  lines.push('More users and keys: npm run admin -- --help', line);
  return lines.join('\n');
}

// ─── JSON views (snake_case, like the API) for the CLI ───────────────────────────────────

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const adminJson = {
  organization: (o: Organization) => ({
    id: o.id,
    slug: o.slug,
    name: o.name,
    created_at: iso(o.created_at),
    updated_at: iso(o.updated_at),
  }),
  space: (s: Space) => ({
    id: s.id,
    organization_id: s.organization.id,
    slug: s.slug,
    name: s.name,
    product_limit: s.product_limit ?? null,
    promotion_policy: s.promotion_policy,
    created_at: iso(s.created_at),
    updated_at: iso(s.updated_at),
  }),
  user: (u: User) => ({
    id: u.id,
    email: u.email,
    name: u.name ?? null,
    created_at: iso(u.created_at),
    updated_at: iso(u.updated_at),
  }),
  organizationMembership: (m: OrganizationMembership, created: boolean) => ({
    id: m.id,
    organization_id: m.organization.id,
    user_id: m.user.id,
    role: m.role,
    created,
  }),
  spaceMembership: (m: SpaceMembership, created: boolean) => ({
    id: m.id,
    space_id: m.space.id,
    user_id: m.user.id,
    role: m.role,
    created,
  }),
  productGrant: (g: ProductGrant, created: boolean) => ({
    id: g.id,
    product_id: g.product.id,
    user_id: g.user.id,
    access: g.access,
    created,
  }),
  apiKey: (k: ApiKey) => ({
    id: k.id,
    user_id: k.user.id,
    name: k.name ?? null,
    key_prefix: k.key_prefix,
    created_at: iso(k.created_at),
    last_used_at: iso(k.last_used_at),
    revoked_at: iso(k.revoked_at),
  }),
};
