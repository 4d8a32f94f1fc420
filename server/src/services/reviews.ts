/**
 * Reviews of versions. The latest review of a version decides its approval_status, which the
 * version row keeps (written in the review's transaction), so versions, the model summary and
 * the promotion gate read it without looking at the reviews.
 */
import type { components } from '../generated/api.ts';
import { errors } from '../errors.ts';
import { requireProductView, spaceAccess } from '../access/index.ts';
import { ProductVersion, VersionReview, type Caller } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { isUuid } from '../persistence/queries.ts';
import { recordEvent } from './events.ts';
import { aliasNamesByVersion, versionResponse } from './versions.ts';

export type ReviewCreate = components['schemas']['ReviewCreate'];
export type ReviewResponse = components['schemas']['Review'];

function reviewResponse(productId: string, r: VersionReview): ReviewResponse {
  return {
    id: r.id,
    product_id: productId,
    version_id: r.version.id,
    decision: r.decision,
    comment: r.comment ?? null,
    reviewer_id: r.reviewer?.id ?? null,
    created_at: r.created_at.toISOString(),
  };
}

async function versionOf(em: Em, productId: string, versionId: string): Promise<ProductVersion> {
  const version = isUuid(versionId) ? await em.findOne(ProductVersion, { id: versionId.toLowerCase(), product: productId }) : null;
  if (!version) throw errors.notFound(`Product '${productId}' has no version '${versionId}'.`);
  return version;
}

export class ReviewService {
  async list(em: Em, user: Caller, productId: string, versionId: string): Promise<ReviewResponse[]> {
    const { product } = await requireProductView(em, user, productId);
    const version = await versionOf(em, product.id, versionId);
    const reviews = await em.find(VersionReview, { version: version.id }, { orderBy: [{ created_at: 'desc' }, { id: 'desc' }] });
    return reviews.map((r) => reviewResponse(product.id, r));
  }

  /**
   * Reviewers: space admins and organization owners/admins (they administer the space). Anyone
   * else who can see the version gets 403 review_forbidden; nobody approves their own version.
   */
  async create(em: Em, user: Caller, productId: string, versionId: string, body: ReviewCreate): Promise<ReviewResponse> {
    const { product, access } = await requireProductView(em, user, productId);
    const version = await versionOf(em, product.id, versionId);
    if ((await spaceAccess(em, user, product.space)) !== 'admin') {
      throw errors.reviewForbidden(
        `Reviewing versions needs the admin role in space '${product.space.slug}' (or organization owner or admin); you have ${access} access to this model.`,
      );
    }
    if (body.decision === 'approved' && version.created_by?.id === user.id) {
      throw errors.selfApprovalForbidden(`You created version ${version.version_number}, so someone else has to approve it (you may still reject it).`);
    }
    const review = await em.transactional(async (tx) => {
      const created = tx.create(VersionReview, {
        version: version.id,
        decision: body.decision,
        comment: body.comment ?? null,
        reviewer: user.id,
      });
      // The latest review decides: the one committed last writes the status last.
      const now = new Date();
      await tx.nativeUpdate(ProductVersion, { id: version.id }, { approval_status: body.decision, updated_at: now });
      await tx.flush();
      const response = reviewResponse(product.id, created);
      const aliases = await aliasNamesByVersion(tx, [version.id]);
      const reviewed = { ...versionResponse(version, aliases.get(version.id) ?? []), approval_status: body.decision, updated_at: now.toISOString() };
      await recordEvent(tx, {
        type: 'version.reviewed',
        actorId: user.id,
        organizationId: product.space.organization.id,
        spaceId: product.space.id,
        productId: product.id,
        subjectId: version.id,
        data: { ...reviewed, review: response },
        occurredAt: created.created_at,
      });
      return response;
    });
    return review;
  }
}
