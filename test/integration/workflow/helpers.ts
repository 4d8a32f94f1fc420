/**
 * Shared pieces of the registry-workflow suites (aliases, version references, reviews, the
 * promotion gate), run on fs + SQLite and S3 + PostgreSQL through startArtifactApp.
 */
import { expect } from 'vitest';
import type { components } from '../../../server/src/generated/api.ts';
import * as admin from '../../../server/src/services/admin.ts';
import { ArtifactClient, type ApiResponse, type ArtifactApp } from '../../support/artifacts.ts';

export type Alias = components['schemas']['Alias'];
export type AliasChange = components['schemas']['AliasChange'];
export type Review = components['schemas']['Review'];
export type ModelVersion = components['schemas']['ModelVersion'];
export type ModelSummary = components['schemas']['ModelSummary'];
export type Problem = components['schemas']['Problem'];
export type ModelArtifact = components['schemas']['ModelArtifact'];

export const aliases = (pid: string) => `/catalog/products/${pid}/aliases`;
export const alias = (pid: string, name: string) => `/catalog/products/${pid}/aliases/${name}`;
export const history = (pid: string, name: string) => `/catalog/products/${pid}/aliases/${name}/history`;
export const version = (pid: string, ref: string) => `/catalog/products/${pid}/versions/${ref}`;
export const reviews = (pid: string, vid: string) => `/catalog/products/${pid}/versions/${vid}/reviews`;
export const model = (pid: string) => `/catalog/products/${pid}/model-repository`;

export function expectStatus<T = unknown>(res: ApiResponse, status: number): T {
  expect(res.status, `${status} expected, got ${res.status}: ${res.text.slice(0, 600)}`).toBe(status);
  return res.body as T;
}

/** A problem+json answer with the status and code, and a readable detail. */
export function expectProblem(res: ApiResponse, status: number, code?: string): Problem {
  const body = expectStatus<Problem>(res, status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(body.detail.length).toBeGreaterThan(10);
  if (code) expect(body.code).toBe(code);
  return body;
}

export async function createModel(c: ArtifactClient, body: Record<string, unknown> = {}, space = 'default'): Promise<ModelSummary> {
  const res = await c.request('POST', `/catalog/spaces/${space}/model-repository/models`, {
    body: { name: `Model ${Math.random().toString(36).slice(2, 10)}`, ...body },
  });
  return expectStatus<ModelSummary>(res, 201);
}

export async function createVersion(c: ArtifactClient, pid: string, body: Record<string, unknown> = {}): Promise<ModelVersion> {
  return expectStatus<ModelVersion>(await c.request('POST', `/catalog/products/${pid}/versions`, { body }), 201);
}

/** A small artifact of `kind`, attached to `versionId`, in one multipart request. */
export async function uploadArtifact(c: ArtifactClient, pid: string, kind: string, versionId?: string): Promise<ModelArtifact> {
  const form = new FormData();
  form.append('artifact_kind', kind);
  if (versionId) form.append('product_version_id', versionId);
  form.append('file', new Blob([`${kind} bytes ${Math.random()}`], { type: 'text/markdown' }), `${kind}.md`);
  return expectStatus<ModelArtifact>(await c.request('POST', `/catalog/products/${pid}/model-artifacts`, { body: form }), 201);
}

export interface WorkflowUsers {
  owner: ArtifactClient;
  ownerId: string;
  orgAdmin: ArtifactClient;
  spaceAdmin: ArtifactClient;
  spaceAdminId: string;
  editor: ArtifactClient;
  editorId: string;
  viewer: ArtifactClient;
  /** An organization member with an edit grant on products given to grant(). */
  granted: ArtifactClient;
  grantedEmail: string;
  /** The owner of another organization. */
  stranger: ArtifactClient;
}

let n = 0;

/** The callers of the permission rules, made through the admin service as the CLI would. */
export async function workflowUsers(app: ArtifactApp): Promise<WorkflowUsers> {
  const tag = `${++n}-${Math.random().toString(36).slice(2, 8)}`;
  const user = async (name: string) => {
    const email = `${name}-${tag}@workflow.test`;
    const u = await admin.createUser(app.em(), { email });
    const { api_key } = await admin.createApiKey(app.em(), { email });
    return { email, id: u.id, client: new ArtifactClient(app.origin, api_key) };
  };
  const orgAdmin = await user('org-admin');
  await admin.addOrgMember(app.em(), { email: orgAdmin.email, org: 'acme', role: 'admin' });
  const spaceAdmin = await user('space-admin');
  await admin.addSpaceMember(app.em(), { email: spaceAdmin.email, space: 'default', role: 'admin' });
  const editor = await user('editor');
  await admin.addSpaceMember(app.em(), { email: editor.email, space: 'default', role: 'editor' });
  const viewer = await user('viewer');
  await admin.addSpaceMember(app.em(), { email: viewer.email, space: 'default', role: 'viewer' });
  const granted = await user('granted');
  await admin.addOrgMember(app.em(), { email: granted.email, org: 'acme', role: 'member' });
  const other = await admin.bootstrap(app.em(), { org: `other-${tag}`, space: `other-${tag}`, email: `stranger-${tag}@workflow.test` });
  return {
    owner: app.client,
    ownerId: app.owner.id,
    orgAdmin: orgAdmin.client,
    spaceAdmin: spaceAdmin.client,
    spaceAdminId: spaceAdmin.id,
    editor: editor.client,
    editorId: editor.id,
    viewer: viewer.client,
    granted: granted.client,
    grantedEmail: granted.email,
    stranger: new ArtifactClient(app.origin, other.api_key),
  };
}
