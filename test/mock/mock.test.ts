/**
 * The Prism mock (`npm run mock`) against the spec: for every operation a valid request gets the
 * documented 2xx with a body and headers that pass the spec check, and every operation that takes
 * input rejects an invalid request (422 bad body/parameter, 415 wrong content type, 401 no key).
 * The case table must name every operationId of the document, so a new operation fails this suite
 * until it has cases.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answeredByPrism, proxyViolations, startPrism, startPrismProxy, type PrismHandle } from '../support/prism.ts';
import { apiSpec, documentedStatuses, listOperations, readAndCheck } from '../support/spec-check.ts';
import { seedModelCreate } from '../support/fixtures.ts';

const API = '/api/v1.0';
const PRODUCT = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';
const ARTIFACT = '8a1f0c52-6d3e-4b7a-9e21-0f4c7d9b3a66';
const UPLOAD = '660e8400-e29b-41d4-a716-446655440000';
const SHA = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const AUTH = { authorization: 'Bearer mock-api-key-0123456789abcdef0123456789abcdef' };
const JSON_HEADERS = { ...AUTH, 'content-type': 'application/json' };

const spaceModels = `${API}/catalog/spaces/ml-platform/model-repository/models`;
const orgModels = `${API}/organizations/acme/model-repository/models`;
const model = `${API}/catalog/products/${PRODUCT}/model-repository`;
const versions = `${API}/catalog/products/${PRODUCT}/versions`;
const artifacts = `${API}/catalog/products/${PRODUCT}/model-artifacts`;
const artifact = `${artifacts}/${ARTIFACT}`;
const download = `${artifact}/download`;
const uploads = `${artifacts}/uploads`;
const upload = `${uploads}/${UPLOAD}`;
const chunk = (index: string | number): string => `${upload}/chunks/${index}`;
const complete = `${upload}/complete`;
const VERSION = '4c1e92ac-e430-4b4e-ae49-3a1111111111';
const aliasList = `${API}/catalog/products/${PRODUCT}/aliases`;
const production = `${aliasList}/production`;
const versionByRef = (ref: string) => `${versions}/${ref}`;
const versionReviews = `${versions}/${VERSION}/reviews`;
const productEvents = `${API}/catalog/products/${PRODUCT}/events`;
const spaceEvents = `${API}/catalog/spaces/ml-platform/events`;
const webhooks = `${API}/catalog/spaces/ml-platform/webhooks`;
const webhook = `${webhooks}/0d4c8a2e-7f1b-4c3d-9e6a-5b2f1c8d7e90`;
const redeliver = `${webhook}/deliveries/6e2b9f41-3c8d-4a7e-b510-9d4f2a6c1e38/redeliver`;

interface Request {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: () => BodyInit;
}

interface Result {
  status: number;
  headers: Headers;
  body: unknown;
  bytes: Uint8Array;
  violations: string[];
}

interface Case {
  title: string;
  request: Request;
  status: number;
  check?: (result: Result) => void;
}

interface OperationCases {
  valid: Case[];
  invalid: Case[];
}

const json = (value: unknown) => (): BodyInit => JSON.stringify(value);

const seedCreate = seedModelCreate;

const seedInitiate = {
  file_name: 'churn-model-v2.onnx',
  content_type: 'application/octet-stream',
  total_size_bytes: 73400320,
  sha256: SHA,
  artifact_kind: 'model_binary',
  version_label: 'v2.0.0',
  product_version_id: '4c1e92ac-e430-4b4e-ae49-3a1111111111',
  training_run_id: '5c1e92ac-e430-4b4e-ae49-3a2222222222',
  is_current: true,
  metadata: { format: 'onnx', python: '3.11' },
};

function multipart(fields: Record<string, string>, file?: Uint8Array<ArrayBuffer>): () => BodyInit {
  return () => {
    const form = new FormData();
    if (file) form.append('file', new Blob([file], { type: 'application/octet-stream' }), 'churn-model-v2.onnx');
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    return form;
  };
}

function expectPagination(result: Result): void {
  for (const name of ['x-total-count', 'x-page', 'x-has-more']) expect(result.headers.get(name), name).not.toBeNull();
  expect(Number(result.headers.get('x-total-count'))).toBeGreaterThanOrEqual(0);
  expect(Number(result.headers.get('x-page'))).toBeGreaterThanOrEqual(1);
  expect(['true', 'false']).toContain(result.headers.get('x-has-more'));
}

function expectNonEmptyArray(result: Result): void {
  expect(Array.isArray(result.body)).toBe(true);
  expect((result.body as unknown[]).length).toBeGreaterThan(0);
}

function expectProblem(code?: string) {
  return (result: Result): void => {
    expect(result.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = result.body as { status?: number; code?: string };
    expect(problem.status).toBe(result.status);
    if (code) expect(problem.code).toBe(code);
  };
}

const noKey = (request: Omit<Request, 'headers'> & { headers?: Record<string, string> }): Case => ({
  title: 'without an API key → 401',
  request: { ...request, headers: Object.fromEntries(Object.entries(request.headers ?? {}).filter(([k]) => k !== 'authorization')) },
  status: 401,
  check: (r) => {
    expectProblem('unauthenticated')(r);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
  },
});

const CASES: Record<string, OperationCases> = {
  listSpaceModels: {
    valid: [
      {
        title: 'example models with the pagination headers',
        request: { method: 'GET', path: `${spaceModels}?model_family=genai&limit=50`, headers: AUTH },
        status: 200,
        check: (r) => {
          expectNonEmptyArray(r);
          expectPagination(r);
        },
      },
    ],
    invalid: [
      { title: 'limit above 1000 → 422', request: { method: 'GET', path: `${spaceModels}?limit=5000`, headers: AUTH }, status: 422 },
      { title: 'unknown product type → 422', request: { method: 'GET', path: `${spaceModels}?types=Robot`, headers: AUTH }, status: 422 },
      { title: 'include_archived not a boolean → 422', request: { method: 'GET', path: `${spaceModels}?include_archived=maybe`, headers: AUTH }, status: 422 },
      noKey({ method: 'GET', path: spaceModels }),
    ],
  },
  listOrganizationModels: {
    valid: [
      {
        title: 'example models with the pagination headers',
        request: { method: 'GET', path: `${orgModels}?types=ML%20Model&types=AI%20System&include_archived=false`, headers: AUTH },
        status: 200,
        check: (r) => {
          expectNonEmptyArray(r);
          expectPagination(r);
        },
      },
    ],
    invalid: [
      { title: 'negative skip → 422', request: { method: 'GET', path: `${orgModels}?skip=-1`, headers: AUTH }, status: 422 },
      { title: 'limit 0 → 422', request: { method: 'GET', path: `${orgModels}?limit=0`, headers: AUTH }, status: 422 },
      noKey({ method: 'GET', path: orgModels }),
    ],
  },
  createSpaceModel: {
    valid: [
      {
        title: "the seed's create body",
        request: { method: 'POST', path: spaceModels, headers: JSON_HEADERS, body: json(seedCreate) },
        status: 201,
        check: (r) => expect((r.body as { name: string }).name).toBeTypeOf('string'),
      },
      { title: 'only a name', request: { method: 'POST', path: spaceModels, headers: JSON_HEADERS, body: json({ name: 'Minimal' }) }, status: 201 },
    ],
    invalid: [
      { title: 'no name → 422', request: { method: 'POST', path: spaceModels, headers: JSON_HEADERS, body: json({ slug: 'x' }) }, status: 422, check: expectProblem() },
      { title: 'unknown field → 422', request: { method: 'POST', path: spaceModels, headers: JSON_HEADERS, body: json({ name: 'A', colour: 'red' }) }, status: 422 },
      { title: 'bad enum → 422', request: { method: 'POST', path: spaceModels, headers: JSON_HEADERS, body: json({ name: 'A', product_type: 'Robot' }) }, status: 422 },
      { title: 'is_gpai not a boolean → 422', request: { method: 'POST', path: spaceModels, headers: JSON_HEADERS, body: json({ name: 'A', is_gpai: 'yes' }) }, status: 422 },
      {
        title: 'text/plain body → 415',
        request: { method: 'POST', path: spaceModels, headers: { ...AUTH, 'content-type': 'text/plain' }, body: () => 'name=A' },
        status: 415,
        check: expectProblem(),
      },
      noKey({ method: 'POST', path: spaceModels, headers: { 'content-type': 'application/json' }, body: json({ name: 'A' }) }),
    ],
  },
  getModel: {
    valid: [{ title: 'one model', request: { method: 'GET', path: model, headers: AUTH }, status: 200 }],
    invalid: [noKey({ method: 'GET', path: model })],
  },
  updateModel: {
    valid: [
      {
        title: "the seed's patch body",
        request: {
          method: 'PATCH',
          path: model,
          headers: JSON_HEADERS,
          body: json({ deployment_status: 'retired', lifecycle_stage: 'retirement', limitations: 'Retired after the v3 model replaced this workflow.' }),
        },
        status: 200,
      },
      { title: 'archive', request: { method: 'PATCH', path: model, headers: JSON_HEADERS, body: json({ is_archived: true }) }, status: 200 },
    ],
    invalid: [
      { title: 'bad enum → 422', request: { method: 'PATCH', path: model, headers: JSON_HEADERS, body: json({ deployment_status: 'gone' }) }, status: 422 },
      { title: 'unknown field → 422', request: { method: 'PATCH', path: model, headers: JSON_HEADERS, body: json({ colour: 'red' }) }, status: 422 },
      { title: 'text/plain body → 415', request: { method: 'PATCH', path: model, headers: { ...AUTH, 'content-type': 'text/plain' }, body: () => 'x' }, status: 415 },
      noKey({ method: 'PATCH', path: model, headers: { 'content-type': 'application/json' }, body: json({ name: 'A' }) }),
    ],
  },
  listModelVersions: {
    valid: [{ title: 'the versions', request: { method: 'GET', path: versions, headers: AUTH }, status: 200, check: expectNonEmptyArray }],
    invalid: [noKey({ method: 'GET', path: versions })],
  },
  createModelVersion: {
    valid: [
      {
        title: 'a current minor version',
        request: { method: 'POST', path: versions, headers: JSON_HEADERS, body: json({ version_type: 'minor', release_date: '2026-10-02', notes: 'Retrained.', is_current: true }) },
        status: 201,
      },
      { title: 'an empty body (all defaults)', request: { method: 'POST', path: versions, headers: JSON_HEADERS, body: json({}) }, status: 201 },
    ],
    invalid: [
      { title: 'bad version_type → 422', request: { method: 'POST', path: versions, headers: JSON_HEADERS, body: json({ version_type: 'huge' }) }, status: 422 },
      { title: 'bad release_date → 422', request: { method: 'POST', path: versions, headers: JSON_HEADERS, body: json({ release_date: 'soon' }) }, status: 422 },
      { title: 'text/plain body → 415', request: { method: 'POST', path: versions, headers: { ...AUTH, 'content-type': 'text/plain' }, body: () => 'x' }, status: 415 },
    ],
  },
  getModelVersion: {
    valid: [
      { title: 'by alias', request: { method: 'GET', path: versionByRef('production'), headers: AUTH }, status: 200 },
      { title: 'by number', request: { method: 'GET', path: versionByRef('2'), headers: AUTH }, status: 200 },
    ],
    invalid: [noKey({ method: 'GET', path: versionByRef('2') })],
  },
  listVersionReviews: {
    valid: [{ title: 'the reviews', request: { method: 'GET', path: versionReviews, headers: AUTH }, status: 200, check: expectNonEmptyArray }],
    invalid: [noKey({ method: 'GET', path: versionReviews })],
  },
  createVersionReview: {
    valid: [
      { title: 'an approval', request: { method: 'POST', path: versionReviews, headers: JSON_HEADERS, body: json({ decision: 'approved', comment: 'Fine.' }) }, status: 201 },
    ],
    invalid: [
      { title: 'bad decision → 422', request: { method: 'POST', path: versionReviews, headers: JSON_HEADERS, body: json({ decision: 'maybe' }) }, status: 422 },
      { title: 'text/plain body → 415', request: { method: 'POST', path: versionReviews, headers: { ...AUTH, 'content-type': 'text/plain' }, body: () => 'x' }, status: 415 },
      noKey({ method: 'POST', path: versionReviews, headers: { 'content-type': 'application/json' }, body: json({ decision: 'approved' }) }),
    ],
  },
  listModelAliases: {
    valid: [{ title: 'the aliases', request: { method: 'GET', path: aliasList, headers: AUTH }, status: 200, check: expectNonEmptyArray }],
    invalid: [noKey({ method: 'GET', path: aliasList })],
  },
  getModelAlias: {
    valid: [
      {
        title: 'the alias with its ETag',
        request: { method: 'GET', path: production, headers: AUTH },
        status: 200,
        check: (r) => expect(r.headers.get('etag')).toMatch(/^"/),
      },
    ],
    invalid: [
      { title: 'an uppercase name → 422', request: { method: 'GET', path: `${aliasList}/Production`, headers: AUTH }, status: 422 },
      noKey({ method: 'GET', path: production }),
    ],
  },
  setModelAlias: {
    valid: [
      {
        title: 'point production at a version, conditionally',
        request: { method: 'PUT', path: production, headers: { ...JSON_HEADERS, 'if-match': '"3f6d2a8e.4"' }, body: json({ version_id: VERSION, reason: 'Q3 retrain.' }) },
        status: 200,
      },
    ],
    invalid: [
      { title: 'no version_id → 422', request: { method: 'PUT', path: production, headers: JSON_HEADERS, body: json({ reason: 'x' }) }, status: 422 },
      { title: 'a name with a space → 422', request: { method: 'PUT', path: `${aliasList}/a%20b`, headers: JSON_HEADERS, body: json({ version_id: VERSION }) }, status: 422 },
      { title: 'text/plain body → 415', request: { method: 'PUT', path: production, headers: { ...AUTH, 'content-type': 'text/plain' }, body: () => 'x' }, status: 415 },
      noKey({ method: 'PUT', path: production, headers: { 'content-type': 'application/json' }, body: json({ version_id: VERSION }) }),
    ],
  },
  deleteModelAlias: {
    valid: [{ title: 'delete → 204', request: { method: 'DELETE', path: production, headers: AUTH }, status: 204 }],
    invalid: [noKey({ method: 'DELETE', path: production })],
  },
  listProductEvents: {
    valid: [
      { title: "a model's events with the paging headers", request: { method: 'GET', path: productEvents, headers: AUTH }, status: 200, check: expectNonEmptyArray },
      {
        title: 'filtered by types and since',
        request: { method: 'GET', path: `${productEvents}?types=model.updated&types=artifact.created&since=2026-10-01T00:00:00Z&limit=20`, headers: AUTH },
        status: 200,
      },
    ],
    invalid: [
      { title: 'unknown event type → 422', request: { method: 'GET', path: `${productEvents}?types=model.deleted`, headers: AUTH }, status: 422 },
      { title: 'since not a date-time → 422', request: { method: 'GET', path: `${productEvents}?since=yesterday`, headers: AUTH }, status: 422 },
      noKey({ method: 'GET', path: productEvents }),
    ],
  },
  listSpaceEvents: {
    valid: [{ title: "a space's events", request: { method: 'GET', path: spaceEvents, headers: AUTH }, status: 200, check: expectNonEmptyArray }],
    invalid: [
      { title: 'limit above 1000 → 422', request: { method: 'GET', path: `${spaceEvents}?limit=1001`, headers: AUTH }, status: 422 },
      noKey({ method: 'GET', path: spaceEvents }),
    ],
  },
  inspectModelArtifact: {
    valid: [{ title: 'inspect again → 200', request: { method: 'POST', path: `${artifact}/inspect`, headers: AUTH }, status: 200 }],
    invalid: [noKey({ method: 'POST', path: `${artifact}/inspect` })],
  },
  listModelAliasHistory: {
    valid: [{ title: 'the history', request: { method: 'GET', path: `${production}/history`, headers: AUTH }, status: 200, check: expectNonEmptyArray }],
    invalid: [noKey({ method: 'GET', path: `${production}/history` })],
  },
  listModelArtifacts: {
    valid: [
      { title: 'the artifacts', request: { method: 'GET', path: artifacts, headers: AUTH }, status: 200, check: expectNonEmptyArray },
      { title: "one version's artifacts", request: { method: 'GET', path: `${artifacts}?version=production`, headers: AUTH }, status: 200 },
    ],
    invalid: [
      { title: 'a version reference too long → 422', request: { method: 'GET', path: `${artifacts}?version=${'v'.repeat(101)}`, headers: AUTH }, status: 422 },
      noKey({ method: 'GET', path: artifacts }),
    ],
  },
  createModelArtifact: {
    valid: [
      {
        title: 'multipart upload of a whole file',
        request: { method: 'POST', path: artifacts, headers: AUTH, body: multipart({ artifact_kind: 'weights', is_current: 'true', metadata: '{"format":"onnx"}' }, new Uint8Array([0, 1, 2, 255])) },
        status: 201,
      },
    ],
    invalid: [
      { title: 'no file part → 422', request: { method: 'POST', path: artifacts, headers: AUTH, body: multipart({ artifact_kind: 'weights' }) }, status: 422 },
      {
        title: 'bad artifact_kind → 422',
        request: { method: 'POST', path: artifacts, headers: AUTH, body: multipart({ artifact_kind: 'nope' }, new Uint8Array([1])) },
        status: 422,
      },
      { title: 'a JSON body → 415', request: { method: 'POST', path: artifacts, headers: JSON_HEADERS, body: json({ file: 'x' }) }, status: 415 },
      noKey({ method: 'POST', path: artifacts, body: multipart({}, new Uint8Array([1])) }),
    ],
  },
  getModelArtifact: {
    valid: [{ title: 'one artifact', request: { method: 'GET', path: artifact, headers: AUTH }, status: 200 }],
    invalid: [noKey({ method: 'GET', path: artifact })],
  },
  deleteModelArtifact: {
    valid: [{ title: 'delete → 204', request: { method: 'DELETE', path: artifact, headers: AUTH }, status: 204, check: (r) => expect(r.bytes.length).toBe(0) }],
    invalid: [noKey({ method: 'DELETE', path: artifact })],
  },
  downloadModelArtifact: {
    valid: [
      {
        title: 'the bytes with download headers',
        request: { method: 'GET', path: download, headers: AUTH },
        status: 200,
        check: (r) => {
          expect(r.headers.get('content-disposition')).toMatch(/^attachment/);
          expect(r.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
        },
      },
    ],
    invalid: [noKey({ method: 'GET', path: download })],
  },
  headModelArtifact: {
    valid: [{ title: 'headers only', request: { method: 'HEAD', path: download, headers: AUTH }, status: 200, check: (r) => expect(r.bytes.length).toBe(0) }],
    invalid: [
      {
        title: 'without an API key → 401',
        request: { method: 'HEAD', path: download },
        status: 401,
        check: (r) => expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/),
      },
    ],
  },
  initiateArtifactUpload: {
    valid: [
      {
        title: "the seed's initiation body",
        request: { method: 'POST', path: uploads, headers: JSON_HEADERS, body: json(seedInitiate) },
        status: 201,
        check: (r) => expect((r.body as { chunk_size_bytes: number }).chunk_size_bytes).toBeGreaterThan(0),
      },
    ],
    invalid: [
      {
        title: 'no total_size_bytes → 422',
        request: { method: 'POST', path: uploads, headers: JSON_HEADERS, body: json({ file_name: 'a.onnx', content_type: 'application/octet-stream' }) },
        status: 422,
      },
      {
        title: 'negative size → 422',
        request: { method: 'POST', path: uploads, headers: JSON_HEADERS, body: json({ file_name: 'a.onnx', content_type: 'application/octet-stream', total_size_bytes: -1 }) },
        status: 422,
      },
      {
        title: 'malformed sha256 → 422',
        request: { method: 'POST', path: uploads, headers: JSON_HEADERS, body: json({ ...seedInitiate, sha256: 'not-a-digest' }) },
        status: 422,
      },
      { title: 'text/plain body → 415', request: { method: 'POST', path: uploads, headers: { ...AUTH, 'content-type': 'text/plain' }, body: () => 'x' }, status: 415 },
      noKey({ method: 'POST', path: uploads, headers: { 'content-type': 'application/json' }, body: json(seedInitiate) }),
    ],
  },
  getArtifactUpload: {
    valid: [
      { title: 'the session', request: { method: 'GET', path: upload, headers: AUTH }, status: 200 },
      {
        title: 'named example via Prefer: example=completed',
        request: { method: 'GET', path: upload, headers: { ...AUTH, prefer: 'example=completed' } },
        status: 200,
        check: (r) => {
          const session = r.body as { status: string; artifact_id: string | null; completed_at: string | null };
          expect(session.status).toBe('completed');
          expect(session.artifact_id).not.toBeNull();
          expect(session.completed_at).not.toBeNull();
        },
      },
      {
        title: 'named example via Prefer: example=inProgress',
        request: { method: 'GET', path: upload, headers: { ...AUTH, prefer: 'example=inProgress' } },
        status: 200,
        check: (r) => expect((r.body as { status: string }).status).toBe('uploading'),
      },
    ],
    invalid: [noKey({ method: 'GET', path: upload })],
  },
  abortArtifactUpload: {
    valid: [{ title: 'abort → 204', request: { method: 'DELETE', path: upload, headers: AUTH }, status: 204 }],
    invalid: [noKey({ method: 'DELETE', path: upload })],
  },
  uploadArtifactChunk: {
    valid: [
      {
        title: 'octet-stream chunk',
        request: {
          method: 'PUT',
          path: chunk(0),
          headers: { ...AUTH, 'content-type': 'application/octet-stream' },
          body: () => new Uint8Array([0, 255, 128, 10, 13, 0xc3, 0x28]),
        },
        status: 200,
        check: (r) => expect(Array.isArray((r.body as { received_chunks: unknown }).received_chunks)).toBe(true),
      },
    ],
    invalid: [
      {
        title: 'negative chunk index → 422',
        request: { method: 'PUT', path: chunk(-1), headers: { ...AUTH, 'content-type': 'application/octet-stream' }, body: () => new Uint8Array([1]) },
        status: 422,
      },
      {
        title: 'non-numeric chunk index → 422',
        request: { method: 'PUT', path: chunk('first'), headers: { ...AUTH, 'content-type': 'application/octet-stream' }, body: () => new Uint8Array([1]) },
        status: 422,
      },
      {
        title: 'text/plain body → 415',
        request: { method: 'PUT', path: chunk(0), headers: { ...AUTH, 'content-type': 'text/plain' }, body: () => 'abc' },
        status: 415,
        check: expectProblem(),
      },
      noKey({ method: 'PUT', path: chunk(0), headers: { 'content-type': 'application/octet-stream' }, body: () => new Uint8Array([1]) }),
    ],
  },
  completeArtifactUpload: {
    valid: [
      { title: 'with a digest', request: { method: 'POST', path: complete, headers: JSON_HEADERS, body: json({ sha256: SHA, is_current: true }) }, status: 200 },
      {
        title: 'the artifact was created by this call (Prefer: code=201)',
        request: { method: 'POST', path: complete, headers: { ...JSON_HEADERS, prefer: 'code=201' }, body: json({}) },
        status: 201,
      },
      { title: 'without a body', request: { method: 'POST', path: complete, headers: AUTH }, status: 200 },
    ],
    invalid: [
      { title: 'malformed sha256 → 422', request: { method: 'POST', path: complete, headers: JSON_HEADERS, body: json({ sha256: 'XYZ' }) }, status: 422 },
      { title: 'unknown field → 422', request: { method: 'POST', path: complete, headers: JSON_HEADERS, body: json({ checksum: SHA }) }, status: 422 },
      noKey({ method: 'POST', path: complete, headers: { 'content-type': 'application/json' }, body: json({}) }),
    ],
  },
  getOpenApiDocument: {
    valid: [{ title: 'no key needed', request: { method: 'GET', path: `${API}/openapi.yaml` }, status: 200 }],
    invalid: [],
  },
  getHealth: {
    valid: [{ title: 'no key needed', request: { method: 'GET', path: '/healthz' }, status: 200, check: (r) => expect(r.body).toMatchObject({ status: 'ok' }) }],
    invalid: [],
  },
  getReadiness: {
    valid: [{ title: 'no key needed', request: { method: 'GET', path: '/readyz' }, status: 200, check: (r) => expect(r.body).toMatchObject({ status: 'ok' }) }],
    invalid: [],
  },
  listWebhooks: {
    valid: [{ title: 'the webhooks', request: { method: 'GET', path: webhooks, headers: AUTH }, status: 200, check: expectNonEmptyArray }],
    invalid: [noKey({ method: 'GET', path: webhooks })],
  },
  createWebhook: {
    valid: [
      {
        title: 'a webhook with its secret',
        request: { method: 'POST', path: webhooks, headers: JSON_HEADERS, body: json({ url: 'https://ci.example.com/hooks', events: ['alias.set'] }) },
        status: 201,
        check: (r) => expect((r.body as { secret: string }).secret).toMatch(/^whsec_/),
      },
    ],
    invalid: [
      { title: 'no events → 422', request: { method: 'POST', path: webhooks, headers: JSON_HEADERS, body: json({ url: 'https://ci.example.com/hooks', events: [] }) }, status: 422 },
      { title: 'unknown event type → 422', request: { method: 'POST', path: webhooks, headers: JSON_HEADERS, body: json({ url: 'https://ci.example.com/hooks', events: ['model.exploded'] }) }, status: 422 },
      { title: 'text/plain body → 415', request: { method: 'POST', path: webhooks, headers: { ...AUTH, 'content-type': 'text/plain' }, body: () => 'x' }, status: 415 },
      noKey({ method: 'POST', path: webhooks, headers: { 'content-type': 'application/json' }, body: json({ url: 'https://ci.example.com/hooks', events: ['*'] }) }),
    ],
  },
  getWebhook: {
    valid: [{ title: 'the webhook, no secret', request: { method: 'GET', path: webhook, headers: AUTH }, status: 200, check: (r) => expect((r.body as { secret: null }).secret).toBeNull() }],
    invalid: [noKey({ method: 'GET', path: webhook })],
  },
  updateWebhook: {
    valid: [{ title: 'pause', request: { method: 'PATCH', path: webhook, headers: JSON_HEADERS, body: json({ active: false }) }, status: 200 }],
    invalid: [
      { title: 'empty body → 422', request: { method: 'PATCH', path: webhook, headers: JSON_HEADERS, body: json({}) }, status: 422 },
      { title: 'the secret is not writable → 422', request: { method: 'PATCH', path: webhook, headers: JSON_HEADERS, body: json({ secret: 'whsec_x' }) }, status: 422 },
    ],
  },
  deleteWebhook: {
    valid: [{ title: 'deleted', request: { method: 'DELETE', path: webhook, headers: AUTH }, status: 204 }],
    invalid: [noKey({ method: 'DELETE', path: webhook })],
  },
  rotateWebhookSecret: {
    valid: [{ title: 'a new secret', request: { method: 'POST', path: `${webhook}/rotate-secret`, headers: AUTH }, status: 200 }],
    invalid: [noKey({ method: 'POST', path: `${webhook}/rotate-secret` })],
  },
  pingWebhook: {
    valid: [{ title: 'a queued ping', request: { method: 'POST', path: `${webhook}/ping`, headers: AUTH }, status: 202 }],
    invalid: [noKey({ method: 'POST', path: `${webhook}/ping` })],
  },
  listWebhookDeliveries: {
    valid: [{ title: 'the deliveries', request: { method: 'GET', path: `${webhook}/deliveries`, headers: AUTH }, status: 200, check: expectNonEmptyArray }],
    invalid: [
      { title: 'limit 0 → 422', request: { method: 'GET', path: `${webhook}/deliveries?limit=0`, headers: AUTH }, status: 422 },
      noKey({ method: 'GET', path: `${webhook}/deliveries` }),
    ],
  },
  redeliverWebhookDelivery: {
    valid: [{ title: 'queued again', request: { method: 'POST', path: redeliver, headers: AUTH }, status: 202 }],
    invalid: [noKey({ method: 'POST', path: redeliver })],
  },
};

let prism: PrismHandle;

beforeAll(async () => {
  prism = await startPrism();
});

afterAll(async () => {
  await prism?.stop();
});

async function send(request: Request): Promise<Result> {
  const res = await fetch(`${prism.baseUrl}${request.path}`, {
    method: request.method,
    headers: request.headers ?? {},
    body: request.body?.(),
  });
  return readAndCheck(request.method, request.path, res);
}

/** An operation takes input when it has parameters, a request body or security. */
function takesInput(op: ReturnType<typeof listOperations>[number]): boolean {
  const doc = op.operation;
  const security = doc.security ?? [{ bearerAuth: [] }];
  return Boolean(doc.requestBody) || (doc.parameters?.length ?? 0) > 0 || op.fullPathTemplate.includes('{') || security.length > 0;
}

describe('case table', () => {
  it('has a valid case for every operation of the spec, and nothing else', () => {
    const ids = listOperations().map((op) => op.operationId);
    expect(ids.filter((id) => !CASES[id]?.valid.length)).toEqual([]);
    expect(Object.keys(CASES).filter((id) => !ids.includes(id))).toEqual([]);
  });

  it('has an invalid case for every operation that takes input', () => {
    const missing = listOperations()
      .filter(takesInput)
      .map((op) => op.operationId)
      .filter((id) => !CASES[id]?.invalid.length);
    expect(missing).toEqual([]);
  });

  it('expects only documented statuses, 2xx for valid cases and 4xx for invalid ones', () => {
    for (const [id, cases] of Object.entries(CASES)) {
      const documented = documentedStatuses(id);
      for (const c of cases.valid) {
        expect(documented, `${id}: ${c.title}`).toContain(c.status);
        expect(c.status, `${id}: ${c.title}`).toBeGreaterThanOrEqual(200);
        expect(c.status, `${id}: ${c.title}`).toBeLessThan(300);
      }
      for (const c of cases.invalid) {
        expect(documented, `${id}: ${c.title}`).toContain(c.status);
        expect(c.status, `${id}: ${c.title}`).toBeGreaterThanOrEqual(400);
      }
    }
  });
});

for (const op of listOperations()) {
  const cases = CASES[op.operationId];
  if (!cases) continue;
  describe(`${op.operationId} (${op.method.toUpperCase()} ${op.fullPathTemplate})`, () => {
    for (const c of cases.valid) {
      it(`valid: ${c.title} → ${c.status}`, async () => {
        const result = await send(c.request);
        expect(result.status, JSON.stringify(result.body)).toBe(c.status);
        expect(result.violations).toEqual([]);
        // Prism also checks its own answer against the spec.
        expect(result.headers.get('sl-violations')).toBeNull();
        c.check?.(result);
      });
    }
    for (const c of cases.invalid) {
      it(`invalid: ${c.title}`, async () => {
        const result = await send(c.request);
        expect(result.status, JSON.stringify(result.body)).toBe(c.status);
        expect(result.violations).toEqual([]);
        if (c.request.method !== 'HEAD') expectProblem()(result);
        c.check?.(result);
      });
    }
  });
}

describe('mock behaviour frontends rely on', () => {
  it('Prefer: code=404 returns a problem document', async () => {
    const result = await send({ method: 'GET', path: model, headers: { ...AUTH, prefer: 'code=404' } });
    expect(result.status).toBe(404);
    expect(result.violations).toEqual([]);
    expectProblem('not_found')(result);
    expect((result.body as { detail: unknown }).detail).toBeTypeOf('string');
  });

  it('Prefer: code=403 on create returns the catalog-limit example when asked by name', async () => {
    const result = await send({
      method: 'POST',
      path: spaceModels,
      headers: { ...JSON_HEADERS, prefer: 'code=403, example=catalogLimitReached' },
      body: json({ name: 'One too many' }),
    });
    expect(result.status).toBe(403);
    expect(result.violations).toEqual([]);
    expectProblem('catalog_limit_reached')(result);
  });

  it('CORS: a preflight is allowed and list responses expose the pagination headers', async () => {
    const preflight = await fetch(`${prism.baseUrl}${spaceModels}`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    await preflight.arrayBuffer();
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get('access-control-allow-origin')).toBeTruthy();

    const res = await fetch(`${prism.baseUrl}${spaceModels}`, { headers: { ...AUTH, origin: 'http://localhost:5173' } });
    await res.arrayBuffer();
    expect(res.headers.get('access-control-allow-origin')).toBeTruthy();
    const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    expect(exposed === '*' || ['x-total-count', 'x-page', 'x-has-more'].every((h) => exposed.includes(h))).toBe(true);
  });
});

/**
 * The proxy harness issue 6's contract suite uses, against a stand-in upstream: it forwards the
 * real server's URL layout unchanged and reports responses outside the spec.
 */
describe('startPrismProxy (contract-suite harness)', () => {
  let upstream: Server;
  let proxy: PrismHandle;
  const seen: string[] = [];
  const models = apiSpec().components.examples.modelList.value as unknown[];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const url = req.url ?? '';
      if (url === '/healthz') {
        res.setHeader('content-type', 'application/json');
        res.end('{"status":"ok"}');
      } else if (url.startsWith(`${API}/catalog/spaces/good/`)) {
        res.setHeader('content-type', 'application/json');
        res.setHeader('x-total-count', String(models.length));
        res.setHeader('x-page', '1');
        res.setHeader('x-has-more', 'false');
        res.end(JSON.stringify(models));
      } else if (url.startsWith(`${API}/catalog/spaces/no-headers/`)) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(models));
      } else {
        res.statusCode = 418;
        res.setHeader('content-type', 'application/problem+json');
        res.end(JSON.stringify({ type: 'about:blank', title: 'Teapot', status: 418, detail: 'No.', code: 'teapot' }));
      }
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    proxy = await startPrismProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
  });

  afterAll(async () => {
    await proxy?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  async function viaProxy(path: string, headers: Record<string, string> = AUTH) {
    const res = await fetch(`${proxy.baseUrl}${path}`, { headers });
    const body: unknown = await res.json();
    return { status: res.status, body, violations: proxyViolations(res.status, res.headers, body) };
  }

  it('forwards /api/v1.0 paths and the root health checks unchanged; a response within the spec passes', async () => {
    const health = await viaProxy('/healthz', {});
    expect([health.status, health.violations]).toEqual([200, []]);
    const list = await viaProxy(`${API}/catalog/spaces/good/model-repository/models?limit=5`);
    expect([list.status, list.violations]).toEqual([200, []]);
    expect(seen).toContain('GET /healthz');
    expect(seen).toContain(`GET ${API}/catalog/spaces/good/model-repository/models?limit=5`);
  });

  it('reports a response outside the spec (missing pagination headers → 500 with violations)', async () => {
    const r = await viaProxy(`${API}/catalog/spaces/no-headers/model-repository/models`);
    expect(r.status).toBe(500);
    expect(answeredByPrism(r.body)).toBe(true);
    expect(r.violations.join('\n')).toMatch(/x-total-count/i);
  });

  it('reports an undocumented status (a warning, the status passes through)', async () => {
    const r = await viaProxy(`${API}/catalog/spaces/other/model-repository/models`);
    expect(r.status).toBe(418);
    expect(r.violations.join('\n')).toMatch(/status code/i);
  });

  it('answers a request without a key itself (so 401 scenarios must go to the server directly)', async () => {
    const before = seen.length;
    const r = await viaProxy(`${API}/catalog/spaces/good/model-repository/models`, {});
    expect(r.status).toBe(401);
    expect(answeredByPrism(r.body)).toBe(true);
    expect(seen.length).toBe(before);
  });
});
