/**
 * Roles → access levels, as one pure function. Every access check reads roles somewhere (the ORM
 * paths load membership entities, the per-request SQL reads role columns) and hands them here, so
 * the rules live in exactly one place (docs/architecture.md, "Access model"):
 * - space: an org owner/admin is 'admin' of every space of the org; space admin → 'admin',
 *   editor → 'edit', viewer → 'view'; an org member without a space role → 'see' (knows the space
 *   exists: 403, not 404); anybody else → 'none'. A space role counts without an org membership.
 * - product: the best of the space-derived level (admin/edit → 'edit', view → 'view'), an explicit
 *   grant, and 'edit' for the product's creator.
 */
import type { ORGANIZATION_ROLES, PRODUCT_GRANT_ACCESS, SPACE_ROLES } from '../persistence/limits.ts';

export type OrganizationRoleName = (typeof ORGANIZATION_ROLES)[number];
export type SpaceRoleName = (typeof SPACE_ROLES)[number];
export type GrantAccess = (typeof PRODUCT_GRANT_ACCESS)[number];

export type SpaceAccess = 'none' | 'see' | 'view' | 'edit' | 'admin';
export type ProductAccess = 'none' | 'view' | 'edit';

const SPACE_RANK: Record<SpaceAccess, number> = { none: 0, see: 1, view: 2, edit: 3, admin: 4 };
const PRODUCT_RANK: Record<ProductAccess, number> = { none: 0, view: 1, edit: 2 };

export const atLeastSpace = (have: SpaceAccess, need: SpaceAccess): boolean => SPACE_RANK[have] >= SPACE_RANK[need];
export const atLeastProduct = (have: ProductAccess, need: ProductAccess): boolean => PRODUCT_RANK[have] >= PRODUCT_RANK[need];

/** What a caller holds on one space (and, for product checks, on one product of it). Absent = none. */
export interface Roles {
  organizationRole?: OrganizationRoleName | null;
  spaceRole?: SpaceRoleName | null;
  /** An explicit grant on the product. */
  grant?: GrantAccess | null;
  /** The caller created the product. */
  creator?: boolean;
}

export interface AccessLevels {
  space: SpaceAccess;
  product: ProductAccess;
}

const FROM_ORGANIZATION_ROLE: Record<OrganizationRoleName, SpaceAccess> = { owner: 'admin', admin: 'admin', member: 'see' };
const FROM_SPACE_ROLE: Record<SpaceRoleName, SpaceAccess> = { admin: 'admin', editor: 'edit', viewer: 'view' };
const SPACE_TO_PRODUCT: Record<SpaceAccess, ProductAccess> = { none: 'none', see: 'none', view: 'view', edit: 'edit', admin: 'edit' };

function best<L extends string>(rank: Record<L, number>, levels: L[]): L {
  return levels.reduce((a, b) => (rank[b] > rank[a] ? b : a));
}

/** The caller's level on the space, and on the product when `grant`/`creator` describe one. */
export function accessLevels(roles: Roles): AccessLevels {
  const space = best(SPACE_RANK, [
    roles.organizationRole ? FROM_ORGANIZATION_ROLE[roles.organizationRole] : 'none',
    roles.spaceRole ? FROM_SPACE_ROLE[roles.spaceRole] : 'none',
  ]);
  const product = best(PRODUCT_RANK, [SPACE_TO_PRODUCT[space], roles.grant ?? 'none', roles.creator ? 'edit' : 'none']);
  return { space, product };
}
