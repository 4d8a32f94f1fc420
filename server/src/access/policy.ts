/**
 * The one place that answers "may user U do X". Services call these; nothing else looks at
 * memberships or grants. The rules (roles → levels) are accessLevels() in levels.ts; this module
 * reads the roles (through the ORM, or through per-request SQL) and turns levels into 404/403.
 *
 * 404 vs 403: who cannot see a thing gets 404, who sees it but lacks the level gets 403. Seeing an
 * organization or a space = being a member of the organization (or having a role on the space);
 * seeing a product = view access.
 */
import { wrap, type FilterQuery } from '@mikro-orm/core';
import { errors } from '../errors.ts';
import {
  Organization,
  OrganizationMembership,
  Product,
  ProductGrant,
  Space,
  SpaceMembership,
  ORGANIZATION_ROLES,
  PRODUCT_GRANT_ACCESS,
  SPACE_ROLES,
  type OrganizationRole,
  type Caller,
} from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { isUuid } from '../persistence/queries.ts';
import { executeHot } from '../persistence/raw.ts';
import { accessLevels, atLeastProduct, atLeastSpace, type GrantAccess, type ProductAccess, type SpaceAccess } from './levels.ts';

export { atLeastProduct, atLeastSpace, accessLevels, type ProductAccess, type SpaceAccess } from './levels.ts';

/** The user's role in the organization, or null for a non-member. */
export async function organizationRole(em: Em, user: Caller, organization: Organization | string): Promise<OrganizationRole | null> {
  const organizationId = typeof organization === 'string' ? organization : organization.id;
  const m = await em.findOne(OrganizationMembership, { organization: organizationId, user: user.id });
  return m?.role ?? null;
}

/** `space.organization` only needs its id (a Space loaded by any query has it). */
export async function spaceAccess(em: Em, user: Caller, space: Space): Promise<SpaceAccess> {
  const [orgMembership, spaceMembership] = await Promise.all([
    em.findOne(OrganizationMembership, { organization: space.organization.id, user: user.id }),
    em.findOne(SpaceMembership, { space: space.id, user: user.id }),
  ]);
  return accessLevels({ organizationRole: orgMembership?.role, spaceRole: spaceMembership?.role }).space;
}

async function loadedSpace(em: Em, space: Space): Promise<Space> {
  return wrap(space).isInitialized() ? space : em.findOneOrFail(Space, { id: space.id });
}

export async function productAccess(em: Em, user: Caller, product: Product): Promise<ProductAccess> {
  // A creator's level needs no more lookups.
  if (product.created_by?.id === user.id) return accessLevels({ creator: true }).product;
  const space = await loadedSpace(em, product.space);
  const [orgMembership, spaceMembership, grant] = await Promise.all([
    em.findOne(OrganizationMembership, { organization: space.organization.id, user: user.id }),
    em.findOne(SpaceMembership, { space: space.id, user: user.id }),
    em.findOne(ProductGrant, { product: product.id, user: user.id }),
  ]);
  return accessLevels({ organizationRole: orgMembership?.role, spaceRole: spaceMembership?.role, grant: grant?.access }).product;
}

// ─── guards for services: load by path parameter, check, throw 404/403 ──────────────────

const orgNotFound = (slug: string) => errors.notFound(`Organization '${slug}' was not found.`);
const spaceNotFound = (slug: string) => errors.notFound(`Space '${slug}' was not found.`);
const productNotFound = (id: string) => errors.notFound(`Product '${id}' was not found.`);

/**
 * "Access to the organization" (its model listing): an organization member of any role, or a
 * user holding a role on one of its spaces; anybody else (and an unknown slug) → 404.
 * `role` is null for a space-only member.
 */
export async function requireOrganizationAccess(
  em: Em,
  user: Caller,
  slug: string,
): Promise<{ organization: Organization; role: OrganizationRole | null }> {
  const organization = await em.findOne(Organization, { slug });
  if (!organization) throw orgNotFound(slug);
  const role = await organizationRole(em, user, organization);
  if (role) return { organization, role };
  const spaceRole = await em.count(SpaceMembership, { user: user.id, space: { organization: organization.id } });
  if (spaceRole === 0) throw orgNotFound(slug);
  return { organization, role: null };
}

/**
 * The columns of a space (alias `s`) and its organization (alias `o`) that SpaceInfo carries, and
 * the two roles of the user whose id is the SQL expression `userId`. Every space request needs
 * them; authentication can fetch them in its own statement (see rememberSpaceLookup).
 */
export function spaceWithRolesColumns(userId: string): string {
  return (
    's.id as s_id, s.slug as s_slug, s.name as s_name, s.product_limit as s_product_limit, ' +
    's.listing_version as s_listing_version, ' +
    'o.id as org_id, o.slug as org_slug, o.name as org_name, ' +
    `(select om.role from organization_memberships om where om.organization_id = s.organization_id and om.user_id = ${userId}) as org_role, ` +
    `(select sm.role from space_memberships sm where sm.space_id = s.id and sm.user_id = ${userId}) as space_role`
  );
}

const SPACE_WITH_ROLES_SQL =
  `select ${spaceWithRolesColumns('?')} from spaces s join organizations o on o.id = s.organization_id where s.slug = ?`;

/** A row of spaceWithRolesColumns(); s_id is null when a LEFT JOIN found no such space. */
export interface SpaceWithRolesRow {
  s_id: string | null;
  s_slug: string;
  s_name: string;
  s_product_limit: number | null;
  s_listing_version: number | string;
  org_id: string;
  org_slug: string;
  org_name: string;
  org_role: OrganizationRole | null;
  space_role: SpaceMembership['role'] | null;
}

/**
 * Lookups made while authenticating, per request: the Caller authentication returns is the
 * request's own, so it is the key. An access check takes the answer once, for the same key
 * (space slug, product id); anything else runs its own query.
 */
class PrefetchedLookups<Row> {
  private readonly byCaller = new WeakMap<Caller, { key: string; row: Row | undefined }>();

  /** Record that `user`'s request already looked up `key` (row undefined: nothing found). */
  remember(user: Caller, key: string, row: Row | undefined): void {
    this.byCaller.set(user, { key, row });
  }

  /** The answer remembered for `key` (taken once), else what `query` finds. */
  async answer(user: Caller, key: string, query: () => Promise<Row | undefined>): Promise<Row | undefined> {
    const prefetched = this.byCaller.get(user);
    if (prefetched?.key !== key) return query();
    this.byCaller.delete(user);
    return prefetched.row;
  }
}

const prefetchedSpaces = new PrefetchedLookups<SpaceWithRolesRow>();

/** Record that `user`'s request already looked up space `slug` (a row without s_id: no such space). */
export function rememberSpaceLookup(user: Caller, slug: string, row: SpaceWithRolesRow | undefined): void {
  prefetchedSpaces.remember(user, slug, row?.s_id ? row : undefined);
}

function spaceWithRoles(em: Em, user: Caller, slug: string): Promise<SpaceWithRolesRow | undefined> {
  return prefetchedSpaces.answer(user, slug, async () => {
    const [row] = await executeHot<SpaceWithRolesRow>(em, 'space_with_roles', SPACE_WITH_ROLES_SQL, [user.id, user.id, slug]);
    return row;
  });
}

/**
 * A space as its access check read it: plain data, not a managed entity. The requests that check
 * space access (listing a space's models, creating one) need no more, and mapping three managed
 * entities per request cost a sixth of a cached listing's CPU.
 */
export interface SpaceInfo {
  id: string;
  slug: string;
  name: string;
  product_limit: number | null;
  /** Bumped by the database on every change to the space's products, versions or artifacts. */
  listing_version: number;
  organization: { id: string; slug: string; name: string };
}

async function requireSpace(em: Em, user: Caller, slug: string, need: SpaceAccess, action: string): Promise<{ space: SpaceInfo; access: SpaceAccess }> {
  const row = await spaceWithRoles(em, user, slug);
  if (!row?.s_id) throw spaceNotFound(slug);
  const access = accessLevels({ organizationRole: row.org_role, spaceRole: row.space_role }).space;
  if (access === 'none') throw spaceNotFound(slug);
  if (!atLeastSpace(access, need)) {
    const role =
      need === 'view'
        ? `a role on space '${slug}'`
        : need === 'admin'
          ? `the admin role in space '${slug}' (or the owner or admin role in its organization)`
          : `the editor or admin role in space '${slug}'`;
    throw errors.forbidden(`You need ${role} to ${action}.`);
  }
  const space: SpaceInfo = {
    id: row.s_id,
    slug: row.s_slug,
    name: row.s_name,
    product_limit: row.s_product_limit === null ? null : Number(row.s_product_limit),
    listing_version: Number(row.s_listing_version),
    organization: { id: row.org_id, slug: row.org_slug, name: row.org_name },
  };
  return { space, access };
}

/**
 * "Access to the space" (listing its models): any space role, or org owner/admin.
 * An org member without a space role → 403; an outsider or unknown slug → 404.
 */
export function requireSpaceView(em: Em, user: Caller, slug: string): Promise<{ space: SpaceInfo; access: SpaceAccess }> {
  return requireSpace(em, user, slug, 'view', 'list its models');
}

/**
 * Administering a space (its audit trail, reviews): space admin or org owner/admin; an editor,
 * viewer or plain org member → 403; an outsider or unknown slug → 404. `action` completes the
 * 403's "You need … to <action>".
 */
export function requireSpaceAdmin(em: Em, user: Caller, slug: string, action: string): Promise<{ space: SpaceInfo; access: SpaceAccess }> {
  return requireSpace(em, user, slug, 'admin', action);
}

/** Creating a model: space editor/admin or org owner/admin; a viewer or plain org member → 403. */
export function requireSpaceWrite(em: Em, user: Caller, slug: string): Promise<{ space: SpaceInfo; access: SpaceAccess }> {
  return requireSpace(em, user, slug, 'edit', 'create models in it');
}

async function requireProduct(em: Em, user: Caller, productId: string, need: ProductAccess) {
  if (!isUuid(productId)) throw productNotFound(productId);
  const product = await em.findOne(Product, { id: productId.toLowerCase() }, { populate: ['space'] });
  if (!product) throw productNotFound(productId);
  const access = await productAccess(em, user, product);
  if (access === 'none') throw productNotFound(productId);
  if (!atLeastProduct(access, need)) throw errors.forbidden(`You need edit access on product '${product.id}'.`);
  return { product, access };
}

/** View access (list/download artifacts, read versions); none → 404. Space populated. */
export function requireProductView(em: Em, user: Caller, productId: string): Promise<{ product: Product; access: ProductAccess }> {
  return requireProduct(em, user, productId, 'view');
}

/** Edit access (update metadata, upload/complete/delete artifacts, create versions); view-only → 403. */
export function requireProductEdit(em: Em, user: Caller, productId: string): Promise<{ product: Product; access: ProductAccess }> {
  return requireProduct(em, user, productId, 'edit');
}

/**
 * The columns of a product access check (`products p` joined with its `spaces s`), aliased
 * `pa_*`; `userId` is the SQL for the user's id (a placeholder, or a column of the query).
 */
export function productAccessColumns(userId: string): string {
  return (
    'p.id as pa_id, p.created_by_id as pa_created_by_id, ' +
    `(select om.role from organization_memberships om where om.organization_id = s.organization_id and om.user_id = ${userId}) as pa_org_role, ` +
    `(select sm.role from space_memberships sm where sm.space_id = s.id and sm.user_id = ${userId}) as pa_space_role, ` +
    `(select g.access from product_grants g where g.product_id = p.id and g.user_id = ${userId}) as pa_grant_access`
  );
}

const PRODUCT_ACCESS_SQL = `select ${productAccessColumns('?')} from products p join spaces s on s.id = p.space_id where p.id = ?`;

/** A row of productAccessColumns(); pa_id is null when a LEFT JOIN found no such product. */
export interface ProductAccessRow {
  pa_id: string | null;
  pa_created_by_id: string | null;
  pa_org_role: OrganizationRole | null;
  pa_space_role: SpaceMembership['role'] | null;
  pa_grant_access: GrantAccess | null;
}

const prefetchedProducts = new PrefetchedLookups<ProductAccessRow>();

/** Record that `user`'s request already checked its access to product `productId` (a row without pa_id: no such product). */
export function rememberProductLookup(user: Caller, productId: string, row: ProductAccessRow | undefined): void {
  prefetchedProducts.remember(user, productId, row?.pa_id ? row : undefined);
}

function productAccessRow(em: Em, user: Caller, productId: string): Promise<ProductAccessRow | undefined> {
  return prefetchedProducts.answer(user, productId, async () => {
    const [row] = await executeHot<ProductAccessRow>(em, 'product_access', PRODUCT_ACCESS_SQL, [user.id, user.id, user.id, productId]);
    return row;
  });
}

/**
 * Edit access to a product, from one statement and without loading the product (every chunk of an
 * upload runs this); when authentication already read it for this request, from that answer. Same
 * rules and errors as requireProductEdit: none → 404, view → 403.
 */
export async function requireProductEditId(em: Em, user: Caller, productId: string): Promise<{ productId: string; access: ProductAccess }> {
  if (!isUuid(productId)) throw productNotFound(productId);
  const found = await productAccessRow(em, user, productId.toLowerCase());
  if (!found?.pa_id) throw productNotFound(productId);
  const access = accessLevels({
    organizationRole: found.pa_org_role,
    spaceRole: found.pa_space_role,
    grant: found.pa_grant_access,
    creator: found.pa_created_by_id === user.id,
  }).product;
  if (access === 'none') throw productNotFound(productId);
  if (!atLeastProduct(access, 'edit')) throw errors.forbidden(`You need edit access on product '${found.pa_id}'.`);
  return { productId: found.pa_id, access };
}

// ─── list filters: which products a listing may show, as SQL conditions ─────────────────

/**
 * Spaces of the organization on which the user has view or better: all of them for an org
 * owner/admin, else those where the user holds a space role.
 */
export async function accessibleSpaceIdsInOrg(em: Em, user: Caller, organization: Organization): Promise<string[]> {
  const role = await organizationRole(em, user, organization);
  if (accessLevels({ organizationRole: role }).space === 'admin') {
    const spaces = await em.find(Space, { organization: organization.id }, { fields: ['id'] });
    return spaces.map((s) => s.id);
  }
  const memberships = await em.find(SpaceMembership, { user: user.id, space: { organization: organization.id } });
  return memberships.map((m) => m.space.id);
}

/**
 * Products of the organization the user reaches only individually (an explicit grant, or
 * being the creator) in spaces outside `exceptSpaceIds`. Small by nature: grants are given
 * one by one.
 */
export async function individuallyReachableProductIdsInOrg(
  em: Em,
  user: Caller,
  organization: Organization,
  exceptSpaceIds: readonly string[],
): Promise<string[]> {
  const outside = exceptSpaceIds.length > 0 ? { $nin: [...exceptSpaceIds] } : undefined;
  const spaceCond = { organization: organization.id, ...(outside ? { id: outside } : {}) };
  const [grants, created] = await Promise.all([
    em.find(ProductGrant, { user: user.id, product: { space: spaceCond } }),
    em.find(Product, { created_by: user.id, space: spaceCond }, { fields: ['id'] }),
  ]);
  return [...new Set([...grants.map((g) => g.product.id), ...created.map((p) => p.id)])];
}

/**
 * The organization listing's visibility condition, to combine with the other filters in
 * one SQL query (never filter rows in JS):
 *
 *   const visible = await visibleProductsInOrgFilter(em, user, organization);
 *   const where = { $and: [visible, { is_archived: false }, searchTextFilter(q)] };
 *   const [rows, total] = await em.findAndCount(Product, where,
 *     { orderBy: { updated_at: 'desc', id: 'desc' }, limit, offset: skip, populate: ['space'] });
 *
 * = products in spaces the user may view, plus products granted to / created by the user in
 * the organization's other spaces. A user with no access at all gets a condition that
 * matches nothing (MikroORM renders `$in: []` as `1 = 0`).
 * The caller must first check access (requireOrganizationAccess).
 */
export async function visibleProductsInOrgFilter(em: Em, user: Caller, organization: Organization): Promise<FilterQuery<Product>> {
  const spaceIds = await accessibleSpaceIdsInOrg(em, user, organization);
  const productIds = await individuallyReachableProductIdsInOrg(em, user, organization, spaceIds);
  if (productIds.length === 0) return { space: { $in: spaceIds } };
  return { $or: [{ space: { $in: spaceIds } }, { id: { $in: productIds } }] };
}

// ─── the organization listing: the caller's scope in one statement, visibility as SQL ────
//
// A product is visible when the best of its levels (levels.ts takes the best of independent
// terms) reaches 'view': so it is visible exactly when the caller's organization role alone, or
// their role on its space alone, or their grant on it alone, or being its creator, gives 'view'.
// The role names below are read off accessLevels(), which stays the one place of the rules.

const viewsAlone = (roles: Parameters<typeof accessLevels>[0]) => atLeastProduct(accessLevels(roles).product, 'view');
/** Organization roles that see every product of the organization (owner, admin). */
const ORG_ROLES_SEEING_ALL = ORGANIZATION_ROLES.filter((r) => viewsAlone({ organizationRole: r }));
/** Space roles that see the space's products (all of them). */
const SPACE_ROLES_VIEWING = SPACE_ROLES.filter((r) => viewsAlone({ spaceRole: r }));
/** Grants that show their product (view, edit). */
const GRANTS_VIEWING = PRODUCT_GRANT_ACCESS.filter((a) => viewsAlone({ grant: a }));
const CREATOR_VIEWS = viewsAlone({ creator: true });

/** `column in ('a', 'b')` for constant role names; a condition that is false for none. */
function inNames(column: string, names: readonly string[]): string {
  return names.length === 0 ? '1 = 0' : `${column} in (${names.map((n) => `'${n}'`).join(', ')})`;
}

const VIEWING_MEMBERSHIP = (alias: string, space: string) =>
  `select 1 from space_memberships ${alias} where ${alias}.space_id = ${space} and ${alias}.user_id = ? and ${inNames(`${alias}.role`, SPACE_ROLES_VIEWING)}`;

/**
 * One statement: the organization, its listing_version, the caller's organization role, whether
 * they hold any space role in it (organization access), and — unless their organization role
 * shows everything — how many products they reach individually (a viewing grant, or being the
 * creator) outside the spaces they view. The last is small by nature, and stops at the first
 * created product (index (created_by_id, organization_id, space_id)).
 */
const ORGANIZATION_SCOPE_SQL =
  'select o.id as org_id, o.slug as org_slug, o.name as org_name, o.listing_version as org_listing_version, om.role as org_role, ' +
  '(select count(*) from space_memberships sm join spaces s on s.id = sm.space_id where sm.user_id = ? and s.organization_id = o.id) as space_roles, ' +
  `case when ${inNames('om.role', ORG_ROLES_SEEING_ALL)} then 0 else ` +
  '(select count(*) from product_grants g join products gp on gp.id = g.product_id ' +
  `where g.user_id = ? and gp.organization_id = o.id and ${inNames('g.access', GRANTS_VIEWING)} and not exists (${VIEWING_MEMBERSHIP('gm', 'gp.space_id')}))` +
  (CREATOR_VIEWS
    ? ' + (select count(*) from (select 1 as one from products cp where cp.created_by_id = ? and cp.organization_id = o.id ' +
      // The index's order: a generic plan would otherwise scan the table when one user created most products.
      `and not exists (${VIEWING_MEMBERSHIP('cm', 'cp.space_id')}) order by cp.created_by_id, cp.organization_id, cp.space_id limit 1) c)`
    : '') +
  ' end as individual ' +
  'from organizations o left join organization_memberships om on om.organization_id = o.id and om.user_id = ? where o.slug = ?';

interface OrganizationScopeRow {
  org_id: string;
  org_slug: string;
  org_name: string;
  org_listing_version: number | string;
  org_role: OrganizationRole | null;
  space_roles: number | string;
  individual: number | string;
}

/** An organization listing's visibility: a condition over `products p` (see ListingSql in summaries.ts). */
export interface OrganizationListingScope {
  organization: { id: string; slug: string; name: string };
  /** Bumped by the database on every change to what any listing of the organization shows or counts. */
  listing_version: number;
  /** `sql` over alias `p`, `?` placeholders, `params` in order; one of three fixed texts. */
  visible: { sql: string; params: unknown[] };
  /**
   * Everything the listing's total depends on besides the filters: the organization's
   * listing_version (memberships, grants and products all bump it), and who asks: every caller
   * whose organization role shows everything sees the same listing.
   */
  countScope: string;
}

/** Owner/admin: every product of the organization, in the order of the index (organization_id, updated_at, id, is_archived). */
const VISIBLE_ALL = 'p.organization_id = ?';
/**
 * Products of the spaces the caller views: a nested loop over their memberships, each an
 * index-only range of (space_id, is_archived, updated_at, id).
 */
const VISIBLE_SPACES =
  'p.space_id in (select sm.space_id from space_memberships sm join spaces s2 on s2.id = sm.space_id ' +
  `where sm.user_id = ? and s2.organization_id = ? and ${inNames('sm.role', SPACE_ROLES_VIEWING)})`;
/** The same, plus the products reached individually (grants, created ones) elsewhere in the organization. */
const VISIBLE_SPACES_AND_INDIVIDUAL =
  'p.organization_id = ? and (' +
  `p.space_id in (select sm.space_id from space_memberships sm where sm.user_id = ? and ${inNames('sm.role', SPACE_ROLES_VIEWING)})` +
  ` or p.id in (select g.product_id from product_grants g where g.user_id = ? and ${inNames('g.access', GRANTS_VIEWING)})` +
  (CREATOR_VIEWS ? ' or p.created_by_id = ?' : '') +
  ')';

/**
 * The organization listing's access check and visibility, from one statement: the same rules and
 * the same 404 as requireOrganizationAccess + visibleProductsInOrgFilter (the ORM reference the
 * tests compare it with), without reading the ids of the spaces or products it covers.
 */
export async function requireOrganizationListing(em: Em, user: Caller, slug: string): Promise<OrganizationListingScope> {
  const params = [user.id, user.id, user.id, ...(CREATOR_VIEWS ? [user.id, user.id] : []), user.id, slug];
  const [row] = await executeHot<OrganizationScopeRow>(em, 'organization_scope', ORGANIZATION_SCOPE_SQL, params);
  if (!row || (!row.org_role && Number(row.space_roles) === 0)) throw orgNotFound(slug);
  const organization = { id: row.org_id, slug: row.org_slug, name: row.org_name };
  const version = Number(row.org_listing_version);
  const seesAll = row.org_role !== null && ORG_ROLES_SEEING_ALL.includes(row.org_role);
  const scope = (visible: { sql: string; params: unknown[] }, who: string): OrganizationListingScope => ({
    organization,
    listing_version: version,
    visible,
    countScope: `organization:${organization.id}:${version}:${who}`,
  });
  if (seesAll) return scope({ sql: VISIBLE_ALL, params: [organization.id] }, 'all');
  if (Number(row.individual) === 0) return scope({ sql: VISIBLE_SPACES, params: [user.id, organization.id] }, `user:${user.id}`);
  return scope(
    { sql: VISIBLE_SPACES_AND_INDIVIDUAL, params: [organization.id, user.id, user.id, ...(CREATOR_VIEWS ? [user.id] : [])] },
    `user:${user.id}`,
  );
}
