import { describe, expect, it } from 'vitest';
import { accessLevels, atLeastProduct, atLeastSpace, type Roles } from '../../server/src/access/levels.ts';

type Org = Roles['organizationRole'];
type Space = Roles['spaceRole'];

// Rows: organization role; columns: space role (none, viewer, editor, admin).
const SPACE_TABLE: [Org, [string, string, string, string]][] = [
  [null, ['none', 'view', 'edit', 'admin']],
  ['member', ['see', 'view', 'edit', 'admin']],
  ['admin', ['admin', 'admin', 'admin', 'admin']],
  ['owner', ['admin', 'admin', 'admin', 'admin']],
];
const SPACE_ROLES: Space[] = [null, 'viewer', 'editor', 'admin'];

describe('accessLevels', () => {
  for (const [organizationRole, row] of SPACE_TABLE) {
    SPACE_ROLES.forEach((spaceRole, i) => {
      it(`org ${organizationRole ?? '-'} + space ${spaceRole ?? '-'} → space ${row[i]}`, () => {
        expect(accessLevels({ organizationRole, spaceRole }).space).toBe(row[i]);
        expect(accessLevels({ organizationRole: organizationRole ?? undefined, spaceRole: spaceRole ?? undefined }).space).toBe(row[i]);
      });
    });
  }

  // Product level from the space level alone (no grant, not the creator).
  it.each([
    [{}, 'none'],
    [{ organizationRole: 'member' }, 'none'],
    [{ spaceRole: 'viewer' }, 'view'],
    [{ spaceRole: 'editor' }, 'edit'],
    [{ spaceRole: 'admin' }, 'edit'],
    [{ organizationRole: 'admin' }, 'edit'],
    [{ organizationRole: 'owner' }, 'edit'],
  ] as [Roles, string][])('%j → product %s', (roles, product) => {
    expect(accessLevels(roles).product).toBe(product);
  });

  it('a grant adds to the space-derived level, never lowers it', () => {
    expect(accessLevels({ grant: 'view' }).product).toBe('view');
    expect(accessLevels({ grant: 'edit' }).product).toBe('edit');
    expect(accessLevels({ organizationRole: 'member', grant: 'view' }).product).toBe('view');
    expect(accessLevels({ spaceRole: 'viewer', grant: 'edit' }).product).toBe('edit');
    expect(accessLevels({ spaceRole: 'editor', grant: 'view' }).product).toBe('edit');
  });

  it('a grant changes nothing about the space level', () => {
    expect(accessLevels({ grant: 'edit' }).space).toBe('none');
    expect(accessLevels({ organizationRole: 'member', grant: 'edit', creator: true }).space).toBe('see');
  });

  it("the creator always has edit, whatever else they hold", () => {
    for (const [organizationRole] of SPACE_TABLE) {
      for (const spaceRole of SPACE_ROLES) {
        for (const grant of [null, 'view', 'edit'] as const) {
          expect(accessLevels({ organizationRole, spaceRole, grant, creator: true }).product).toBe('edit');
        }
      }
    }
    expect(accessLevels({ creator: false }).product).toBe('none');
  });

  it('ranks levels for the guards', () => {
    expect(atLeastSpace('see', 'view')).toBe(false);
    expect(atLeastSpace('view', 'view')).toBe(true);
    expect(atLeastSpace('edit', 'admin')).toBe(false);
    expect(atLeastSpace('admin', 'edit')).toBe(true);
    expect(atLeastProduct('view', 'edit')).toBe(false);
    expect(atLeastProduct('edit', 'view')).toBe(true);
    expect(atLeastProduct('none', 'view')).toBe(false);
  });
});
