/**
 * Shared assertions and shapes for the model-record suites (run on SQLite and PostgreSQL).
 */
import { expect } from 'vitest';
import type { components } from '../../../server/src/generated/api.ts';
import { Product, ProductVersion } from '../../../server/src/persistence/entities.ts';
import type { ApiResponse, TestApp } from '../../support/app.ts';

export type ModelSummary = components['schemas']['ModelSummary'];
/** A create body as a client sends it (the generated type marks fields with defaults as required). */
export type ModelCreate = Partial<components['schemas']['ModelCreate']> & { name: string };
export type ModelVersion = components['schemas']['ModelVersion'];
export type Problem = components['schemas']['Problem'];

export const spaceModels = (slug: string, query = '') => `/catalog/spaces/${slug}/model-repository/models${query}`;
export const orgModels = (slug: string, query = '') => `/organizations/${slug}/model-repository/models${query}`;
export const model = (id: string) => `/catalog/products/${id}/model-repository`;
export const versions = (id: string) => `/catalog/products/${id}/versions`;

/** Every error: the status, problem+json, the RFC 9457 members, the code, a request id. */
export function expectProblem(res: ApiResponse, status: number, code?: string): Problem {
  const where = `${status} expected, got ${res.status}: ${res.text.slice(0, 500)}`;
  expect(res.status, where).toBe(status);
  expect(res.headers.get('content-type'), where).toMatch(/^application\/problem\+json/);
  expect(res.headers.get('x-request-id')).toBeTruthy();
  const body = res.body as Problem;
  expect(body).toMatchObject({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) });
  expect(body.code).toMatch(/^[a-z][a-z0-9_]*$/);
  expect(body.detail.length).toBeGreaterThan(0);
  expect(res.text).not.toMatch(/\bat .+\.(ts|js):\d+/); // never a stack trace
  if (code) expect(body.code, where).toBe(code);
  if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
  if (status === 422) {
    expect(Array.isArray(body.errors)).toBe(true);
    for (const e of body.errors ?? []) {
      expect(e).toEqual({ loc: expect.any(Array), msg: expect.any(String), type: expect.any(String) });
    }
  }
  return body;
}

export function expectOk<T>(res: ApiResponse<unknown>, status = 200): T {
  expect(res.status, `${status} expected, got ${res.status}: ${res.text.slice(0, 500)}`).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.get('x-request-id')).toBeTruthy();
  return res.body as T;
}

export interface PageHeaders {
  total: number;
  page: number;
  hasMore: boolean;
}

/** The three paging headers, parsed (each must be present and well-formed). */
export function pageHeaders(res: ApiResponse): PageHeaders {
  const total = res.headers.get('x-total-count');
  const page = res.headers.get('x-page');
  const hasMore = res.headers.get('x-has-more');
  expect(total).toMatch(/^\d+$/);
  expect(page).toMatch(/^[1-9]\d*$/);
  expect(hasMore).toMatch(/^(true|false)$/);
  return { total: Number(total), page: Number(page), hasMore: hasMore === 'true' };
}

export const ids = (items: { id: string }[]) => items.map((i) => i.id);
export const sortedIds = (items: { id: string }[]) => ids(items).sort();

/** Rows that a failed request must leave alone. */
export async function rowCounts(app: TestApp): Promise<{ products: number; versions: number }> {
  const em = app.em();
  return { products: await em.count(Product, {}), versions: await em.count(ProductVersion, {}) };
}

/** The summary with `updated_at` removed, to compare everything else. */
export function withoutUpdatedAt(s: ModelSummary): Omit<ModelSummary, 'updated_at'> {
  const { updated_at: _ignored, ...rest } = s;
  return rest;
}
