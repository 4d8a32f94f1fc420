/**
 * The promotion gate: what a space's policy requires before a product goes to production.
 *
 * Under `risk_based`, promoting — creating or PATCHing a product into `deployment_status:
 * production`, or setting its `production` alias — needs, by the product's risk classification
 * (as it will be after the change), of the version concerned (the aliased one, else the current):
 * - unacceptable: never;
 * - high: an approved version with available `model_card` and `eval_report` artifacts, and the
 *   product's `intended_use` and `limitations`;
 * - limited: an approved version;
 * - minimal or none: nothing.
 * Every unmet requirement is one `errors` entry of the 409, so a caller fixes them all at once.
 */
import { errors, type FieldError } from '../errors.ts';
import { ModelArtifact, ProductVersion, Space, type PromotionPolicy } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';

/** The product fields the gate reads, as they will be after the change. */
export interface PromotedProduct {
  risk_classification?: string | null;
  intended_use?: string | null;
  limitations?: string | null;
}

const HIGH_RISK_ARTIFACT_KINDS = ['model_card', 'eval_report'] as const;
const HIGH_RISK_FIELDS = ['intended_use', 'limitations'] as const;

const present = (value: string | null | undefined) => typeof value === 'string' && value.trim() !== '';

/** The unmet requirements (empty: the promotion may go ahead). */
export async function unmetRequirements(em: Em, product: PromotedProduct, version: ProductVersion | null): Promise<FieldError[]> {
  const risk = product.risk_classification ?? null;
  if (risk === 'unacceptable') {
    return [{ loc: ['product', 'risk_classification'], msg: 'a model of unacceptable risk is never promoted to production', type: 'prohibited_risk' }];
  }
  if (risk !== 'high' && risk !== 'limited') return [];
  const unmet: FieldError[] = [];
  if (!version) {
    unmet.push({ loc: ['version'], msg: `a ${risk}-risk model needs a version before production`, type: 'version_required' });
  } else if (version.approval_status !== 'approved') {
    unmet.push({
      loc: ['version', 'approval_status'],
      msg: `version ${version.version_number} is ${version.approval_status}; it needs an approved review`,
      type: 'approval_required',
    });
  }
  if (risk === 'limited') return unmet;
  const kinds = version
    ? new Set(
        (
          await em.find(
            ModelArtifact,
            { product_version: version.id, status: 'available', artifact_kind: { $in: [...HIGH_RISK_ARTIFACT_KINDS] } },
            { fields: ['artifact_kind'] },
          )
        ).map((a) => a.artifact_kind),
      )
    : new Set<string>();
  for (const kind of HIGH_RISK_ARTIFACT_KINDS) {
    if (kinds.has(kind)) continue;
    const which = version ? `version ${version.version_number}` : 'the version';
    unmet.push({ loc: ['version', 'artifacts', kind], msg: `${which} needs an available artifact of kind ${kind}`, type: 'artifact_required' });
  }
  for (const field of HIGH_RISK_FIELDS) {
    if (present(product[field])) continue;
    unmet.push({ loc: ['product', field], msg: `a high-risk model needs ${field} before production`, type: 'field_required' });
  }
  return unmet;
}

export async function promotionPolicyOf(em: Em, spaceId: string): Promise<PromotionPolicy> {
  const space = await em.findOneOrFail(Space, { id: spaceId }, { fields: ['promotion_policy', 'slug'] });
  return space.promotion_policy;
}

/**
 * Throws 409 `promotion_blocked` when the space's policy refuses the promotion. `what` says what
 * was attempted, for the detail ("setting alias 'production'").
 */
export async function checkPromotion(
  em: Em,
  space: { id: string; slug: string },
  product: PromotedProduct,
  version: ProductVersion | null,
  what: string,
): Promise<void> {
  if ((await promotionPolicyOf(em, space.id)) !== 'risk_based') return;
  const unmet = await unmetRequirements(em, product, version);
  if (unmet.length === 0) return;
  const risk = product.risk_classification;
  const detail =
    unmet[0]!.type === 'prohibited_risk'
      ? `Space '${space.slug}' gates production by risk, and a model of unacceptable risk is never promoted: ${what} is refused.`
      : `Space '${space.slug}' gates production by risk: ${what} is refused; this ${risk}-risk model is missing ` +
        `${unmet.length} requirement(s): ${unmet.map((u) => u.msg).join('; ')}.`;
  throw errors.promotionBlocked(detail, unmet);
}
