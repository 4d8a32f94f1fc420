/**
 * Builds ModelRepositoryModelSummary objects. The version and artifact summary fields are read
 * in two batched queries per page (never per row), so a page of 1000 costs three queries.
 */
import { raw } from '@mikro-orm/core';
import type { components } from '../generated/api.ts';
import { ModelArtifact, ProductVersion, type Product, type Space } from '../persistence/entities.ts';
import type { Em } from '../persistence/orm.ts';
import { modelFormat } from './model-format.ts';

export type ModelSummary = components['schemas']['ModelSummary'];
export type ModelArtifactResponse = components['schemas']['ModelArtifact'];

const iso = (d: Date) => d.toISOString();

export async function summarize(em: Em, products: Product[], spaces?: Map<string, Space>): Promise<ModelSummary[]> {
  if (products.length === 0) return [];
  const ids = products.map((p) => p.id);
  const [versionCounts, currentVersions, artifactCounts, currentArtifacts] = await Promise.all([
    em
      .createQueryBuilder(ProductVersion, 'v')
      .select(['v.product_id', raw('count(*) as n')])
      .where({ product: { $in: ids } })
      .groupBy('v.product_id')
      .execute<{ product_id: string; n: number | string }[]>('all', false),
    em.find(ProductVersion, { product: { $in: ids }, is_current: true }),
    em
      .createQueryBuilder(ModelArtifact, 'a')
      .select(['a.product_id', raw('count(*) as n')])
      .where({ product: { $in: ids }, status: 'available' })
      .groupBy('a.product_id')
      .execute<{ product_id: string; n: number | string }[]>('all', false),
    em.find(ModelArtifact, { product: { $in: ids }, is_current: true, status: 'available' }),
  ]);
  const vCount = new Map(versionCounts.map((r) => [r.product_id, Number(r.n)]));
  const aCount = new Map(artifactCounts.map((r) => [r.product_id, Number(r.n)]));
  const vCurrent = new Map(currentVersions.map((v) => [v.product.id, v]));
  const aCurrent = new Map(currentArtifacts.map((a) => [a.product.id, a]));

  return products.map((p) => {
    const space = spaces?.get(p.space.id) ?? p.space;
    const v = vCurrent.get(p.id);
    const a = aCurrent.get(p.id);
    return {
      id: p.id,
      slug: p.slug,
      name: p.name,
      description: p.description ?? null,
      long_description: p.long_description ?? null,
      product_type: p.product_type as ModelSummary['product_type'],
      provider: p.provider ?? null,
      space_id: space.id,
      space_slug: space.slug,
      space_name: space.name,
      risk_classification: (p.risk_classification ?? null) as ModelSummary['risk_classification'],
      lifecycle_stage: (p.lifecycle_stage ?? null) as ModelSummary['lifecycle_stage'],
      environment: p.environment,
      deployment_status: p.deployment_status as ModelSummary['deployment_status'],
      model_family: (p.model_family ?? null) as ModelSummary['model_family'],
      model_task_type: p.model_task_type ?? null,
      model_architecture: p.model_architecture ?? null,
      framework: p.framework ?? null,
      intended_use: p.intended_use ?? null,
      limitations: p.limitations ?? null,
      serving_url: p.serving_url ?? null,
      input_schema: p.input_schema ?? null,
      output_schema: p.output_schema ?? null,
      ai_system_type: p.ai_system_type ?? null,
      vendor_name: p.vendor_name ?? null,
      vendor_product_name: p.vendor_product_name ?? null,
      vendor_model_id: p.vendor_model_id ?? null,
      deployment_environment: p.deployment_environment ?? null,
      business_use_case: p.business_use_case ?? null,
      is_gpai: p.is_gpai ?? null,
      is_archived: p.is_archived,
      version_count: vCount.get(p.id) ?? 0,
      current_version_id: v?.id ?? null,
      current_version_number: v?.version_number ?? null,
      current_version_type: v?.version_type ?? null,
      current_version_release_date: v?.release_date ? dateOnly(v.release_date) : null,
      artifact_count: aCount.get(p.id) ?? 0,
      current_artifact_id: a?.id ?? null,
      current_artifact_file_name: a?.file_name ?? null,
      current_artifact_kind: (a?.artifact_kind ?? null) as ModelSummary['current_artifact_kind'],
      current_artifact_content_type: a?.content_type ?? null,
      current_artifact_model_format: a ? modelFormat(a.file_name, a.metadata) : null,
      current_artifact_sha256: a?.sha256 ?? null,
      current_artifact_size_bytes: a?.size_bytes ?? null,
      created_at: iso(p.created_at),
      updated_at: iso(p.updated_at),
    };
  });
}

/** MikroORM maps `date` columns to 'YYYY-MM-DD' strings, but a Date may come from a driver. */
export function dateOnly(value: string | Date): string {
  return typeof value === 'string' ? value.slice(0, 10) : value.toISOString().slice(0, 10);
}

export function artifactResponse(a: ModelArtifact): ModelArtifactResponse {
  return {
    id: a.id,
    product_id: a.product.id,
    product_version_id: a.product_version?.id ?? null,
    training_run_id: a.training_run_id ?? null,
    artifact_kind: a.artifact_kind as ModelArtifactResponse['artifact_kind'],
    version_label: a.version_label ?? null,
    file_name: a.file_name,
    content_type: a.content_type,
    size_bytes: a.size_bytes,
    sha256: a.sha256,
    storage_backend: a.storage_backend as ModelArtifactResponse['storage_backend'],
    storage_uri: a.storage_uri,
    external_uri: a.external_uri ?? null,
    status: a.status,
    is_current: a.is_current,
    metadata: a.metadata ?? null,
    uploaded_by_id: a.uploaded_by?.id ?? null,
    uploaded_at: iso(a.uploaded_at),
    created_at: iso(a.created_at),
    updated_at: iso(a.updated_at),
  };
}
