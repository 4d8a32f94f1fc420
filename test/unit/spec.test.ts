/**
 * Checks on the OpenAPI document itself (the bundled copy, server/src/generated/openapi.json, which
 * `npm run gen:check` keeps equal to openapi/):
 * - every operation is described (operationId, summary, tags) and has examples, and every example
 *   validates against its schema;
 * - errors are uniform: every 4xx/5xx is `application/problem+json` with the `Problem` schema;
 * - the seed's contract (../shared/seed/model-repository-api.md) is present with the seed's names,
 *   types, enumerations and defaults — its values are written out below, not read at run time;
 * - everything beyond the seed's ten operations carries `x-extension: true`;
 * - bearer security everywhere except the document and the health checks.
 */
import { describe, expect, it } from 'vitest';
import { apiSpec, deref, documentedStatuses, listOperations, validateAgainst, type Json, type SpecOperation } from '../support/spec-check.ts';

const doc = apiSpec();
const ops = listOperations();
const esc = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

/* ---------------------------------------------------------------------------------------------
 * The seed's contract, transcribed from ../shared/seed/model-repository-api.md
 * ------------------------------------------------------------------------------------------- */

/** The seed's endpoint overview (paths without the `/api/v1.0` prefix). */
const SEED_OPERATIONS = [
  ['GET', '/catalog/spaces/{slug}/model-repository/models'],
  ['GET', '/organizations/{slug}/model-repository/models'],
  ['POST', '/catalog/spaces/{slug}/model-repository/models'],
  ['PATCH', '/catalog/products/{product_id}/model-repository'],
  ['GET', '/catalog/products/{product_id}/model-artifacts'],
  ['POST', '/catalog/products/{product_id}/model-artifacts/uploads'],
  ['PUT', '/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}/chunks/{chunk_index}'],
  ['POST', '/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}/complete'],
  ['GET', '/catalog/products/{product_id}/model-artifacts/{artifact_id}/download'],
  ['DELETE', '/catalog/products/{product_id}/model-artifacts/{artifact_id}'],
] as const;

/** "Model filters": the query parameters both list operations share, with the seed's types. */
const SEED_FILTERS: Record<string, string> = {
  skip: 'integer',
  limit: 'integer',
  q: 'string',
  model_family: 'string',
  types: 'array',
  deployment_status: 'string',
  model_task_type: 'string',
  risk_classification: 'string',
  include_archived: 'boolean',
};

const SEED_PAGINATION_HEADERS = ['X-Total-Count', 'X-Page', 'X-Has-More'];

/** "Create fields" (name is the only required one). */
const SEED_CREATE_FIELDS: Record<string, string> = {
  name: 'string',
  slug: 'string',
  description: 'string',
  long_description: 'string',
  product_type: 'string',
  provider: 'string',
  environment: 'string',
  risk_classification: 'string',
  lifecycle_stage: 'string',
  model_family: 'string',
  model_task_type: 'string',
  model_architecture: 'string',
  framework: 'string',
  intended_use: 'string',
  limitations: 'string',
  deployment_status: 'string',
  serving_url: 'string',
  input_schema: 'object',
  output_schema: 'object',
  ai_system_type: 'string',
  vendor_name: 'string',
  vendor_product_name: 'string',
  vendor_model_id: 'string',
  deployment_environment: 'string',
  business_use_case: 'string',
  is_gpai: 'boolean',
};

/** "Model summary response" (`ModelRepositoryModelSummary`), all field groups. */
const SEED_SUMMARY_FIELDS = [
  // Identity
  'id', 'slug', 'name', 'description', 'product_type', 'provider', 'space_id', 'space_slug', 'space_name',
  // Governance and lifecycle
  'risk_classification', 'lifecycle_stage', 'environment', 'deployment_status',
  // Model metadata
  'model_family', 'model_task_type', 'model_architecture', 'framework', 'serving_url', 'input_schema', 'output_schema',
  'ai_system_type', 'vendor_name', 'vendor_product_name', 'vendor_model_id',
  // Version summary
  'version_count', 'current_version_id', 'current_version_number', 'current_version_type', 'current_version_release_date',
  // Artifact summary
  'artifact_count', 'current_artifact_id', 'current_artifact_file_name', 'current_artifact_kind',
  'current_artifact_content_type', 'current_artifact_model_format', 'current_artifact_sha256', 'current_artifact_size_bytes',
  // Timestamps
  'created_at', 'updated_at',
];

/** "1. Initiate upload" request fields; the seed's `UUID` is a string of format uuid. */
const SEED_UPLOAD_FIELDS: Record<string, string> = {
  file_name: 'string',
  content_type: 'string',
  total_size_bytes: 'integer',
  sha256: 'string',
  artifact_kind: 'string',
  version_label: 'string',
  product_version_id: 'uuid',
  training_run_id: 'uuid',
  is_current: 'boolean',
  external_uri: 'string',
  metadata: 'object',
};
const SEED_UPLOAD_REQUIRED = ['file_name', 'content_type', 'total_size_bytes'];

/** `ModelArtifactUploadSessionResponse`. */
const SEED_SESSION_FIELDS = [
  'id', 'product_id', 'file_name', 'content_type', 'total_size_bytes', 'chunk_size_bytes', 'expected_sha256',
  'received_bytes', 'received_chunks', 'status', 'expires_at', 'created_at', 'completed_at',
];

/** "3. Complete upload" body. */
const SEED_COMPLETE_FIELDS: Record<string, string> = { sha256: 'string', is_current: 'boolean' };

/** `ModelArtifactResponse`. */
const SEED_ARTIFACT_FIELDS = [
  'id', 'product_id', 'product_version_id', 'training_run_id', 'artifact_kind', 'version_label', 'file_name',
  'content_type', 'size_bytes', 'sha256', 'storage_backend', 'storage_uri', 'external_uri', 'status', 'is_current',
  'metadata', 'uploaded_by_id', 'uploaded_at', 'created_at', 'updated_at',
];

const SEED_PRODUCT_TYPES = ['ML Model', 'AI System', 'LLM Agent', 'AI App', 'Agent', 'Prompt Collection'];
const SEED_MODEL_FAMILIES = ['traditional_ml', 'genai', 'foundation_model', 'embedding_model', 'agent', 'ai_app', 'prompt_collection', 'other'];
const SEED_ARTIFACT_KINDS = ['model_binary', 'weights', 'checkpoint', 'adapter', 'tokenizer', 'prompt_bundle', 'eval_report', 'model_card', 'other'];
const SEED_UPLOAD_STATUSES = ['initialized', 'uploading', 'completed', 'failed', 'expired'];
const SEED_ARTIFACT_STATUSES = ['available', 'deleted', 'failed'];

/** Operations that need no API key (the document and the health checks; their descriptions in the spec say so). */
const PUBLIC_OPERATIONS = ['getOpenApiDocument', 'getHealth', 'getReadiness'];

/**
 * Error responses allowed to differ from problem+json, each with its reason. The test fails when an
 * entry is no longer needed, so the list cannot go stale.
 */
const NON_PROBLEM_ERRORS: Record<string, string> = {
  // A readiness probe answers 503 with the same Health body as its 200 (which dependency is down);
  // probes look at the status only. Reported for a decision; see the contract notes.
  'getReadiness 503': 'readiness report',
};

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------- */

function op(method: string, path: string): SpecOperation {
  const found = ops.find((o) => o.method === method.toLowerCase() && o.pathTemplate === path);
  if (!found) throw new Error(`${method} ${path} is not in the spec`);
  return found;
}

function byId(id: string): SpecOperation {
  const found = ops.find((o) => o.operationId === id);
  if (!found) throw new Error(`${id} is not in the spec`);
  return found;
}

function schema(name: string): Json {
  const s = doc.components?.schemas?.[name];
  if (!s) throw new Error(`components.schemas.${name} is missing`);
  return s;
}

/** Resolves `$ref`s and merges `allOf`; for `oneOf`/`anyOf` with `null`, the non-null member. */
function resolveSchema(s: Json, pointer = '(inline)'): Json {
  let { value } = deref(s, pointer);
  if (Array.isArray(value?.oneOf) || Array.isArray(value?.anyOf)) {
    const members = (value.oneOf ?? value.anyOf).map((m: Json) => resolveSchema(m)).filter((m: Json) => m.type !== 'null');
    if (members.length === 1) value = { ...members[0], ...value, oneOf: undefined, anyOf: undefined };
  }
  if (value?.$ref) value = { ...resolveSchema({ $ref: value.$ref }), ...value, $ref: undefined };
  return value;
}

/** The JSON types a schema admits, `null` left out. */
function jsonTypes(s: Json): string[] {
  const r = resolveSchema(s);
  const types: string[] = Array.isArray(r.type) ? r.type : r.type ? [r.type] : [];
  return types.filter((t) => t !== 'null');
}

function enumOf(s: Json): unknown[] {
  return resolveSchema(s).enum ?? [];
}

/** Path-level and operation-level parameters, resolved (operation-level wins). */
function parameters(o: SpecOperation): Json[] {
  const item = doc.paths[o.pathTemplate];
  const all = [...(item.parameters ?? []), ...(o.operation.parameters ?? [])].map((p: Json) => deref(p, o.pointer).value);
  const byKey = new Map<string, Json>();
  for (const p of all) byKey.set(`${p.in}:${p.name}`, p);
  return [...byKey.values()];
}

function responses(o: SpecOperation): [string, Json, string][] {
  return Object.entries<Json>(o.operation.responses ?? {}).map(([status, r]) => {
    const { value, pointer } = deref(r, `${o.pointer}/responses/${status}`);
    return [status, value, pointer];
  });
}

function requestBody(o: SpecOperation): { value: Json; pointer: string } | undefined {
  return o.operation.requestBody ? deref(o.operation.requestBody, `${o.pointer}/requestBody`) : undefined;
}

/** Every example of a media type object: `example` and the values of `examples`. */
function examplesOf(media: Json, pointer: string): [string, unknown][] {
  const out: [string, unknown][] = [];
  if ('example' in media) out.push(['example', media.example]);
  for (const [name, e] of Object.entries<Json>(media.examples ?? {})) {
    const { value } = deref(e, `${pointer}/examples/${esc(name)}`);
    if ('value' in value) out.push([name, value.value]);
  }
  return out;
}

const isJson = (mediaType: string): boolean => mediaType === 'application/json' || mediaType.endsWith('+json');

/* ---------------------------------------------------------------------------------------------
 * Document quality
 * ------------------------------------------------------------------------------------------- */

describe('every operation', () => {
  it('has a unique operationId, a summary and known tags', () => {
    const tags = new Set((doc.tags ?? []).map((t: Json) => t.name));
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const o of ops) {
      const where = `${o.method.toUpperCase()} ${o.pathTemplate}`;
      if (typeof o.operationId !== 'string' || !/^[a-z][A-Za-z0-9]+$/.test(o.operationId)) problems.push(`${where}: operationId`);
      if (seen.has(o.operationId)) problems.push(`${where}: duplicate operationId ${o.operationId}`);
      seen.add(o.operationId);
      if (typeof o.operation.summary !== 'string' || o.operation.summary.trim() === '') problems.push(`${where}: summary`);
      if (!Array.isArray(o.operation.tags) || o.operation.tags.length === 0) problems.push(`${where}: tags`);
      for (const t of o.operation.tags ?? []) if (!tags.has(t)) problems.push(`${where}: tag ${t} is not declared in tags`);
    }
    expect(problems).toEqual([]);
  });

  it('documents only concrete three-digit statuses (no ranges, no default)', () => {
    const odd = ops.flatMap((o) => Object.keys(o.operation.responses ?? {}).filter((k) => !/^[1-5]\d\d$/.test(k)).map((k) => `${o.operationId} ${k}`));
    expect(odd).toEqual([]);
    for (const o of ops) expect(documentedStatuses(o.operationId).length, o.operationId).toBeGreaterThan(0);
  });

  it('has at least one example for each JSON request body and each 2xx JSON response', () => {
    const missing: string[] = [];
    for (const o of ops) {
      const body = requestBody(o);
      for (const [mediaType, media] of Object.entries<Json>(body?.value.content ?? {})) {
        if (isJson(mediaType) && examplesOf(media, '').length === 0) missing.push(`${o.operationId} request ${mediaType}`);
      }
      for (const [status, response, pointer] of responses(o)) {
        if (!status.startsWith('2')) continue;
        for (const [mediaType, media] of Object.entries<Json>(response.content ?? {})) {
          if (isJson(mediaType) && examplesOf(media, `${pointer}/content/${esc(mediaType)}`).length === 0) missing.push(`${o.operationId} ${status} ${mediaType}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('has examples that validate against their schemas (bodies, errors and headers)', () => {
    const invalid: string[] = [];
    const checkContent = (content: Json, pointer: string, where: string): void => {
      for (const [mediaType, media] of Object.entries<Json>(content ?? {})) {
        if (!isJson(mediaType) || !media.schema) continue;
        const mediaPointer = `${pointer}/content/${esc(mediaType)}`;
        for (const [name, value] of examplesOf(media, mediaPointer)) {
          for (const e of validateAgainst(`${mediaPointer}/schema`, value)) invalid.push(`${where} ${mediaType} example ${name}: ${e}`);
        }
      }
    };
    for (const o of ops) {
      const body = requestBody(o);
      if (body) checkContent(body.value.content, `${body.pointer}`, `${o.operationId} request`);
      for (const [status, response, pointer] of responses(o)) {
        checkContent(response.content, pointer, `${o.operationId} ${status}`);
        for (const [name, h] of Object.entries<Json>(response.headers ?? {})) {
          const { value: header, pointer: hp } = deref(h, `${pointer}/headers/${esc(name)}`);
          if ('example' in header && header.schema) {
            for (const e of validateAgainst(`${hp}/schema`, header.example)) invalid.push(`${o.operationId} ${status} header ${name}: ${e}`);
          }
        }
      }
    }
    expect(invalid).toEqual([]);
  });
});

describe('errors', () => {
  it('every 4xx/5xx response is application/problem+json with the Problem schema, and only that', () => {
    const wrong: string[] = [];
    const stillNeeded = new Set<string>();
    for (const o of ops) {
      for (const [status, response, pointer] of responses(o)) {
        if (!/^[45]/.test(status)) continue;
        const key = `${o.operationId} ${status}`;
        const mediaTypes = Object.keys(response.content ?? {});
        const schemaRef = response.content?.['application/problem+json']?.schema?.$ref;
        const ok = mediaTypes.length === 1 && mediaTypes[0] === 'application/problem+json' && schemaRef === '#/components/schemas/Problem';
        if (ok) continue;
        if (key in NON_PROBLEM_ERRORS) stillNeeded.add(key);
        else wrong.push(`${key} (${pointer}): ${mediaTypes.join(', ') || 'no content'}${schemaRef ? ` → ${schemaRef}` : ''}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(Object.keys(NON_PROBLEM_ERRORS).filter((k) => !stillNeeded.has(k)), 'exemptions no longer needed').toEqual([]);
  });

  it('the Problem schema has the RFC 9457 members plus code and field errors', () => {
    const problem = schema('Problem');
    expect(problem.required).toEqual(expect.arrayContaining(['type', 'title', 'status', 'detail', 'code']));
    for (const f of ['type', 'title', 'status', 'detail', 'code', 'instance', 'errors']) expect(problem.properties, f).toHaveProperty(f);
    expect(jsonTypes(problem.properties.status)).toEqual(['integer']);
    expect(jsonTypes(problem.properties.detail)).toEqual(['string']);
    const fieldError = resolveSchema(problem.properties.errors.items);
    expect(Object.keys(fieldError.properties).sort()).toEqual(['loc', 'msg', 'type']);
  });

  it('secured operations document 401 with WWW-Authenticate; operations with a body document 415 and 422; JSON bodies 400', () => {
    const missing: string[] = [];
    for (const o of ops) {
      const statuses = documentedStatuses(o.operationId);
      if (!PUBLIC_OPERATIONS.includes(o.operationId)) {
        if (!statuses.includes(401)) missing.push(`${o.operationId} 401`);
        else {
          const unauthorized = responses(o).find(([s]) => s === '401')![1];
          const header = Object.keys(unauthorized.headers ?? {}).find((h) => h.toLowerCase() === 'www-authenticate');
          if (!header || deref(unauthorized.headers[header], '').value.required !== true) missing.push(`${o.operationId} 401 WWW-Authenticate`);
        }
      }
      const body = requestBody(o);
      if (body) {
        for (const s of [415, 422]) if (!statuses.includes(s)) missing.push(`${o.operationId} ${s}`);
        if (Object.keys(body.value.content ?? {}).some(isJson) && !statuses.includes(400)) missing.push(`${o.operationId} 400`);
      }
      if (parameters(o).some((p) => p.in === 'query') && !statuses.includes(422)) missing.push(`${o.operationId} 422 (query parameters)`);
      if (o.pathTemplate.includes('{') && !statuses.includes(404)) missing.push(`${o.operationId} 404 (path parameters)`);
    }
    expect(missing).toEqual([]);
  });
});

/* ---------------------------------------------------------------------------------------------
 * The seed's contract
 * ------------------------------------------------------------------------------------------- */

describe("the seed's contract", () => {
  it('mounts the API under /api/v1.0', () => {
    expect(doc.servers?.[0]?.url).toBe('/api/v1.0');
  });

  it.each(SEED_OPERATIONS)('has %s %s', (method, path) => {
    const o = op(method, path);
    expect(o.operation['x-extension'], `${o.operationId} is a seed operation`).toBeUndefined();
  });

  it('marks every other operation x-extension: true', () => {
    const seed = new Set(SEED_OPERATIONS.map(([m, p]) => `${m.toLowerCase()} ${p}`));
    const unmarked = ops.filter((o) => !seed.has(`${o.method} ${o.pathTemplate}`) && o.operation['x-extension'] !== true).map((o) => o.operationId);
    expect(unmarked).toEqual([]);
    expect(ops.length).toBeGreaterThan(SEED_OPERATIONS.length);
  });

  it("names the path parameters as the seed does", () => {
    const names = (method: string, path: string): string[] =>
      parameters(op(method, path))
        .filter((p) => p.in === 'path')
        .map((p) => p.name)
        .sort();
    expect(names('GET', '/catalog/spaces/{slug}/model-repository/models')).toEqual(['slug']);
    expect(names('GET', '/organizations/{slug}/model-repository/models')).toEqual(['slug']);
    expect(names('PUT', SEED_OPERATIONS[6][1])).toEqual(['chunk_index', 'product_id', 'upload_id']);
    expect(names('DELETE', SEED_OPERATIONS[9][1])).toEqual(['artifact_id', 'product_id']);
    const chunkIndex = parameters(op('PUT', SEED_OPERATIONS[6][1])).find((p) => p.name === 'chunk_index');
    expect(jsonTypes(chunkIndex.schema)).toEqual(['integer']);
    expect(resolveSchema(chunkIndex.schema).minimum).toBe(0);
  });

  describe.each([SEED_OPERATIONS[0], SEED_OPERATIONS[1]])('%s %s', (method, path) => {
    const o = op(method, path);

    it('takes the seed filters with their types', () => {
      const query = Object.fromEntries(parameters(o).filter((p) => p.in === 'query').map((p) => [p.name, p]));
      for (const [name, type] of Object.entries(SEED_FILTERS)) {
        expect(query, name).toHaveProperty(name);
        expect(jsonTypes(query[name].schema), name).toEqual([type]);
        expect(query[name].required ?? false, `${name} is optional`).toBe(false);
      }
      // `types` is repeatable: types=ML%20Model&types=AI%20System
      expect(query.types.style ?? 'form').toBe('form');
      expect(query.types.explode ?? true).toBe(true);
      expect(enumOf(resolveSchema(query.types.schema).items)).toEqual(SEED_PRODUCT_TYPES);
    });

    it('has the seed defaults: skip 0, limit 50 (maximum 1000), include_archived false', () => {
      const query = Object.fromEntries(parameters(o).filter((p) => p.in === 'query').map((p) => [p.name, resolveSchema(p.schema)]));
      expect(query.skip.default).toBe(0);
      expect(query.skip.minimum).toBe(0);
      expect(query.limit.default).toBe(50);
      expect(query.limit.maximum).toBe(1000);
      expect(query.limit.minimum).toBe(1);
      expect(query.include_archived.default).toBe(false);
    });

    it('returns an array of model summaries with the three pagination headers (required, with examples)', () => {
      const [, ok, pointer] = responses(o).find(([s]) => s === '200')!;
      const listSchema = resolveSchema(ok.content['application/json'].schema, `${pointer}/content/application~1json/schema`);
      expect(listSchema.type).toBe('array');
      expect(listSchema.items.$ref).toBe('#/components/schemas/ModelSummary');
      for (const name of SEED_PAGINATION_HEADERS) {
        const header = deref(ok.headers?.[name], pointer).value;
        expect(header, name).toBeTruthy();
        expect(header.required, `${name} required`).toBe(true);
        expect(header.example ?? header.examples, `${name} example`).toBeDefined();
      }
      expect(jsonTypes(deref(ok.headers['X-Total-Count'], '').value.schema)).toEqual(['integer']);
      expect(jsonTypes(deref(ok.headers['X-Page'], '').value.schema)).toEqual(['integer']);
    });
  });

  it('create: every seed field is in ModelCreate with its type; only name is required; unknown fields rejected', () => {
    const create = schema('ModelCreate');
    for (const [field, type] of Object.entries(SEED_CREATE_FIELDS)) {
      expect(create.properties, field).toHaveProperty(field);
      expect(jsonTypes(create.properties[field]), field).toEqual([type]);
    }
    expect(create.required).toEqual(['name']);
    expect(create.additionalProperties).toBe(false);
    const body = requestBody(op(...SEED_OPERATIONS[2]))!.value;
    expect(body.required).toBe(true);
    expect(body.content['application/json'].schema.$ref).toBe('#/components/schemas/ModelCreate');
  });

  it("create defaults: product_type 'ML Model', environment and deployment_status 'development'", () => {
    const props = schema('ModelCreate').properties;
    expect(props.product_type.default).toBe('ML Model');
    expect(props.environment.default).toBe('development');
    expect(props.deployment_status.default).toBe('development');
  });

  it('update: the same fields as create, all optional', () => {
    const update = schema('ModelUpdate');
    for (const [field, type] of Object.entries(SEED_CREATE_FIELDS)) {
      expect(update.properties, field).toHaveProperty(field);
      expect(jsonTypes(update.properties[field]), field).toEqual([type]);
    }
    expect(update.required ?? []).toEqual([]);
    const body = requestBody(op(...SEED_OPERATIONS[3]))!.value;
    expect(body.content['application/json'].schema.$ref).toBe('#/components/schemas/ModelUpdate');
  });

  it('ModelSummary carries every seed summary field (always present) and every create field', () => {
    const summary = schema('ModelSummary');
    for (const field of [...SEED_SUMMARY_FIELDS, ...Object.keys(SEED_CREATE_FIELDS)]) {
      expect(summary.properties, field).toHaveProperty(field);
      expect(summary.required, `${field} required`).toContain(field);
    }
    for (const [o, status] of [[SEED_OPERATIONS[2], '201'], [SEED_OPERATIONS[3], '200']] as const) {
      const response = responses(op(o[0], o[1])).find(([s]) => s === status)![1];
      expect(response.content['application/json'].schema.$ref, `${o[0]} ${o[1]}`).toBe('#/components/schemas/ModelSummary');
    }
  });

  it('enumerations: product_type 6, model_family 8, artifact_kind 9, upload status 5, artifact status 3 — the seed values', () => {
    expect(enumOf(schema('ModelCreate').properties.product_type)).toEqual(SEED_PRODUCT_TYPES);
    expect(enumOf(schema('ModelCreate').properties.model_family)).toEqual(SEED_MODEL_FAMILIES);
    expect(enumOf(schema('ArtifactUploadCreate').properties.artifact_kind)).toEqual(SEED_ARTIFACT_KINDS);
    expect(enumOf(schema('ModelArtifact').properties.artifact_kind)).toEqual(SEED_ARTIFACT_KINDS);
    expect(enumOf(schema('ArtifactUploadSession').properties.status)).toEqual(SEED_UPLOAD_STATUSES);
    expect(enumOf(schema('ModelArtifact').properties.status)).toEqual(SEED_ARTIFACT_STATUSES);
    expect(enumOf(schema('ModelSummary').properties.product_type)).toEqual(SEED_PRODUCT_TYPES);
    expect(enumOf(schema('ModelSummary').properties.model_family)).toEqual(SEED_MODEL_FAMILIES);
  });

  it('initiate upload: every seed field with its type, the seed required fields and defaults', () => {
    const create = schema('ArtifactUploadCreate');
    for (const [field, type] of Object.entries(SEED_UPLOAD_FIELDS)) {
      expect(create.properties, field).toHaveProperty(field);
      if (type === 'uuid') {
        expect(jsonTypes(create.properties[field]), field).toEqual(['string']);
        expect(resolveSchema(create.properties[field]).format, field).toBe('uuid');
      } else {
        expect(jsonTypes(create.properties[field]), field).toEqual([type]);
      }
    }
    expect([...create.required].sort()).toEqual([...SEED_UPLOAD_REQUIRED].sort());
    expect(create.properties.artifact_kind.default).toBe('model_binary');
    expect(create.properties.is_current.default).toBe(false);
    const o = op(...SEED_OPERATIONS[5]);
    expect(requestBody(o)!.value.content['application/json'].schema.$ref).toBe('#/components/schemas/ArtifactUploadCreate');
    const created = responses(o).find(([s]) => s.startsWith('2'))![1];
    expect(created.content['application/json'].schema.$ref).toBe('#/components/schemas/ArtifactUploadSession');
  });

  it('upload session: every seed field of ModelArtifactUploadSessionResponse', () => {
    const session = schema('ArtifactUploadSession');
    for (const field of SEED_SESSION_FIELDS) {
      expect(session.properties, field).toHaveProperty(field);
      expect(session.required, `${field} required`).toContain(field);
    }
    expect(jsonTypes(session.properties.received_chunks)).toEqual(['array']);
    expect(jsonTypes(session.properties.total_size_bytes)).toEqual(['integer']);
    expect(jsonTypes(session.properties.chunk_size_bytes)).toEqual(['integer']);
    expect(jsonTypes(session.properties.received_bytes)).toEqual(['integer']);
  });

  it('chunk upload: PUT with an application/octet-stream body, answered with the updated session', () => {
    const o = op(...SEED_OPERATIONS[6]);
    const body = requestBody(o)!.value;
    expect(Object.keys(body.content)).toEqual(['application/octet-stream']);
    const ok = responses(o).find(([s]) => s === '200')![1];
    expect(ok.content['application/json'].schema.$ref).toBe('#/components/schemas/ArtifactUploadSession');
  });

  it('complete: sha256 and is_current in the body; the answer is a ModelArtifactResponse', () => {
    const complete = schema('ArtifactUploadComplete');
    for (const [field, type] of Object.entries(SEED_COMPLETE_FIELDS)) expect(jsonTypes(complete.properties[field]), field).toEqual([type]);
    const o = op(...SEED_OPERATIONS[7]);
    expect(requestBody(o)!.value.content['application/json'].schema.$ref).toBe('#/components/schemas/ArtifactUploadComplete');
    const ok = responses(o).filter(([s]) => s.startsWith('2'));
    expect(ok.length).toBeGreaterThan(0);
    for (const [, r] of ok) expect(r.content['application/json'].schema.$ref).toBe('#/components/schemas/ModelArtifact');
  });

  it('artifact: every seed field of ModelArtifactResponse; the artifact list returns them', () => {
    const artifact = schema('ModelArtifact');
    for (const field of SEED_ARTIFACT_FIELDS) {
      expect(artifact.properties, field).toHaveProperty(field);
      expect(artifact.required, `${field} required`).toContain(field);
    }
    expect(jsonTypes(artifact.properties.size_bytes)).toEqual(['integer']);
    expect(jsonTypes(artifact.properties.is_current)).toEqual(['boolean']);
    const list = responses(op(...SEED_OPERATIONS[4])).find(([s]) => s === '200')![1];
    const listSchema = list.content['application/json'].schema;
    expect(listSchema.type).toBe('array');
    expect(listSchema.items.$ref).toBe('#/components/schemas/ModelArtifact');
  });

  it('download: the file (200) or a redirect (302); a missing file is a 404 problem', () => {
    const statuses = documentedStatuses(op(...SEED_OPERATIONS[8]).operationId);
    expect(statuses).toEqual(expect.arrayContaining([200, 302, 404]));
  });

  it('delete: 204 No Content, no body', () => {
    const o = op(...SEED_OPERATIONS[9]);
    const successes = responses(o).filter(([s]) => s.startsWith('2'));
    expect(successes.map(([s]) => s)).toEqual(['204']);
    expect(successes[0]![1].content).toBeUndefined();
  });
});

/* ---------------------------------------------------------------------------------------------
 * Security
 * ------------------------------------------------------------------------------------------- */

describe('security', () => {
  it('defines bearerAuth as HTTP bearer and requires it globally', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
  });

  it('every operation needs the bearer key except the document and the health checks', () => {
    const wrong: string[] = [];
    for (const o of ops) {
      const effective: Json[] = o.operation.security ?? doc.security ?? [];
      const isPublic = PUBLIC_OPERATIONS.includes(o.operationId);
      if (isPublic && effective.length !== 0) wrong.push(`${o.operationId} should need no key`);
      if (!isPublic && !(effective.length > 0 && effective.every((req) => 'bearerAuth' in req))) wrong.push(`${o.operationId} should need bearerAuth`);
    }
    expect(wrong).toEqual([]);
    for (const id of PUBLIC_OPERATIONS) expect(byId(id).operation.security).toEqual([]);
  });
});
