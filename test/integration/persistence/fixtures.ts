import { randomUUID } from 'node:crypto';
import {
  Organization,
  Product,
  Space,
  UploadSession,
  User,
  type Product as ProductT,
} from '../../../server/src/persistence/entities.ts';
import type { Em } from '../../../server/src/persistence/orm.ts';

let n = 0;
export const unique = (prefix: string) => `${prefix}-${++n}-${randomUUID().slice(0, 6)}`;

export function makeOrg(em: Em, slug = unique('org')) {
  return em.create(Organization, { slug, name: slug });
}

export function makeSpace(em: Em, organization: Organization, slug = unique('space')) {
  return em.create(Space, { organization, slug, name: slug, product_limit: null });
}

export function makeUser(em: Em, email = `${unique('user')}@example.com`) {
  return em.create(User, { email, name: null });
}

export function makeProduct(em: Em, space: Space, extra: Partial<ProductT> = {}) {
  const slug = extra.slug ?? unique('model');
  return em.create(Product, {
    space,
    slug,
    name: extra.name ?? slug,
    product_type: 'ML Model',
    environment: 'development',
    deployment_status: 'development',
    ...extra,
  });
}

export function makeUploadSession(em: Em, product: Product, user: User, extra: Partial<UploadSession> = {}) {
  return em.create(UploadSession, {
    product,
    artifact_id: randomUUID(),
    file_name: 'model.onnx',
    content_type: 'application/octet-stream',
    total_size_bytes: 10,
    chunk_size_bytes: 5,
    chunk_count: 2,
    artifact_kind: 'model_binary',
    is_current: false,
    status: 'initialized',
    storage_backend: 'fs',
    staging_key: `staging/${randomUUID()}`,
    created_by: user,
    expires_at: new Date(Date.now() + 86_400_000),
    ...extra,
  });
}
