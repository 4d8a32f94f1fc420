/**
 * A spec-driven response checker for any test: finds the operation a request hit in the bundled
 * OpenAPI document (server/src/generated/openapi.json) and lists every way the response breaks it —
 * undocumented status, missing required or malformed documented headers, an undocumented
 * Content-Type, a JSON body outside the schema (Ajv, JSON Schema 2020-12, with formats).
 *
 *   const violations = checkResponse({ method: 'GET', path: '/api/v1.0/catalog/...', status,
 *                                      headers: res.headers, body });
 *   expect(violations).toEqual([]);
 *
 * or, straight from a fetch `Response`: `const { body, violations } = await readAndCheck('GET', url, res)`.
 *
 * Request paths are concrete and carry the server prefix (`/api/v1.0`, from the document's
 * `servers`; path items with their own `servers`, like `/healthz`, live at the root).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsPlugin from 'ajv-formats';

/* ------------------------------------------------------------------------------------------------
 * The document
 * ---------------------------------------------------------------------------------------------- */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

const bundledPath = fileURLToPath(new URL('../../server/src/generated/openapi.json', import.meta.url));
const DOC_ID = 'urn:model-repository:openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

let cachedDoc: Json | undefined;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** The bundled document, parsed once and deeply frozen (`structuredClone` it to change it). */
export function apiSpec(): Json {
  cachedDoc ??= deepFreeze(JSON.parse(readFileSync(bundledPath, 'utf8')));
  return cachedDoc;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function getPointer(pointer: string): Json {
  let node: Json = apiSpec();
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

/** Follows local `$ref`s (`#/components/...`); returns the object and its JSON pointer. */
export function deref(value: Json, pointer: string): { value: Json; pointer: string } {
  const seen = new Set<string>();
  while (value && typeof value === 'object' && typeof value.$ref === 'string') {
    const ref: string = value.$ref;
    if (!ref.startsWith('#/')) throw new Error(`Only local $refs are supported, got ${ref} at ${pointer}`);
    if (seen.has(ref)) throw new Error(`$ref cycle at ${ref}`);
    seen.add(ref);
    pointer = ref.slice(1);
    value = getPointer(pointer);
    if (value === undefined) throw new Error(`Unresolvable $ref ${ref}`);
  }
  return { value, pointer };
}

/* ------------------------------------------------------------------------------------------------
 * Operations and path matching
 * ---------------------------------------------------------------------------------------------- */

export interface SpecOperation {
  operationId: string;
  /** Lower-case HTTP method. */
  method: string;
  /** The path key in the document, e.g. `/catalog/products/{product_id}/model-repository`. */
  pathTemplate: string;
  /** The path a client requests, server prefix included, e.g. `/api/v1.0/catalog/products/{product_id}/model-repository`. */
  fullPathTemplate: string;
  /** JSON pointer to the operation object in the bundled document. */
  pointer: string;
  /** The operation object (read-only). */
  operation: Json;
}

interface Matcher {
  op: SpecOperation;
  regex: RegExp;
  params: string[];
  /** 1 per literal segment, 0 per templated one: literal segments win (OpenAPI's matching rule). */
  specificity: number[];
}

let cachedOps: { list: SpecOperation[]; matchers: Matcher[] } | undefined;

function serverPrefix(url: string | undefined): string {
  if (!url) return '';
  const path = /^[a-z]+:\/\//i.test(url) ? new URL(url).pathname : url;
  return path.replace(/\/+$/, '');
}

function loadOperations(): { list: SpecOperation[]; matchers: Matcher[] } {
  if (cachedOps) return cachedOps;
  const doc = apiSpec();
  const rootPrefix = serverPrefix(doc.servers?.[0]?.url);
  const list: SpecOperation[] = [];
  const matchers: Matcher[] = [];
  for (const [pathTemplate, rawItem] of Object.entries<Json>(doc.paths ?? {})) {
    const { value: item } = deref(rawItem, `/paths/${escapePointer(pathTemplate)}`);
    const prefix = Array.isArray(item.servers) ? serverPrefix(item.servers[0]?.url) : rootPrefix;
    const fullPathTemplate = `${prefix}${pathTemplate}`;
    const params: string[] = [];
    const specificity: number[] = [];
    const source = fullPathTemplate
      .split('/')
      .map((segment) => {
        specificity.push(segment.includes('{') ? 0 : 1);
        return segment
          .split(/(\{[^}]+\})/)
          .map((part) => {
            const m = /^\{([^}]+)\}$/.exec(part);
            if (m) {
              params.push(m[1]!);
              return '([^/]+)';
            }
            return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          })
          .join('');
      })
      .join('/');
    const regex = new RegExp(`^${source}/?$`);
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const op: SpecOperation = {
        operationId: operation.operationId,
        method,
        pathTemplate,
        fullPathTemplate,
        pointer: `/paths/${escapePointer(pathTemplate)}/${method}`,
        operation,
      };
      list.push(op);
      matchers.push({ op, regex, params, specificity });
    }
  }
  cachedOps = { list, matchers };
  return cachedOps;
}

/** Every operation of the document, in document order. */
export function listOperations(): SpecOperation[] {
  return [...loadOperations().list];
}

/** Every operationId of the document. */
export function operationIds(): string[] {
  return loadOperations().list.map((op) => op.operationId);
}

function operationById(operationId: string): SpecOperation {
  const op = loadOperations().list.find((o) => o.operationId === operationId);
  if (!op) throw new Error(`No operation ${operationId} in the spec`);
  return op;
}

/** The numeric statuses documented for an operation, ascending (range keys and `default` are skipped). */
export function documentedStatuses(operationId: string): number[] {
  return Object.keys(operationById(operationId).operation.responses ?? {})
    .filter((k) => /^\d{3}$/.test(k))
    .map(Number)
    .sort((a, b) => a - b);
}

function requestPath(path: string): string {
  const pathname = /^[a-z]+:\/\//i.test(path) ? new URL(path).pathname : path;
  return pathname.split(/[?#]/)[0]!;
}

function compareSpecificity(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The operation a request hits: `path` is the concrete request path with the server prefix (a full
 * URL or a query string are tolerated). Literal segments win over templated ones, as in OpenAPI
 * (`…/model-artifacts/uploads` is not `…/model-artifacts/{artifact_id}`).
 */
export function findOperation(
  method: string,
  path: string,
): { operationId: string; pathTemplate: string; fullPathTemplate: string; params: Record<string, string> } | undefined {
  const m = method.toLowerCase();
  const p = requestPath(path);
  let best: { matcher: Matcher; match: RegExpExecArray } | undefined;
  for (const matcher of loadOperations().matchers) {
    if (matcher.op.method !== m) continue;
    const match = matcher.regex.exec(p);
    if (!match) continue;
    if (!best || compareSpecificity(matcher.specificity, best.matcher.specificity) > 0) best = { matcher, match };
  }
  if (!best) return undefined;
  const params: Record<string, string> = {};
  best.matcher.params.forEach((name, i) => {
    const raw = best.match[i + 1]!;
    try {
      params[name] = decodeURIComponent(raw);
    } catch {
      params[name] = raw;
    }
  });
  const { operationId, pathTemplate, fullPathTemplate } = best.matcher.op;
  return { operationId, pathTemplate, fullPathTemplate, params };
}

/* ------------------------------------------------------------------------------------------------
 * Schema validation
 * ---------------------------------------------------------------------------------------------- */

let ajv: Ajv2020 | undefined;
const validators = new Map<string, ValidateFunction>();

function validatorAt(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (validate) return validate;
  if (!ajv) {
    ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false, logger: false });
    const addFormats = (formatsPlugin as unknown as { default?: typeof formatsPlugin }).default ?? formatsPlugin;
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    ajv.addFormat('binary', true);
    // The whole document is one schema resource, so `#/components/...` refs resolve against it.
    ajv.addSchema(structuredClone(apiSpec()), DOC_ID);
  }
  const fragment = pointer
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
  validate = ajv.compile({ $ref: `${DOC_ID}#${fragment}` });
  validators.set(pointer, validate);
  return validate;
}

function formatErrors(errors: ErrorObject[] | null | undefined, limit = 12): string[] {
  const out = (errors ?? []).map((e) => {
    const where = e.instancePath || '(root)';
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})`
        : e.keyword === 'enum'
          ? ` (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)})`
          : '';
    return `${where} ${e.message ?? e.keyword}${extra}`;
  });
  return out.length > limit ? [...out.slice(0, limit), `… ${out.length - limit} more`] : out;
}

/** Validates a value against the schema at a JSON pointer of the bundled document; returns error messages. */
export function validateAgainst(pointer: string, value: unknown): string[] {
  const validate = validatorAt(pointer);
  return validate(value) ? [] : formatErrors(validate.errors);
}

/* ------------------------------------------------------------------------------------------------
 * Response checks
 * ---------------------------------------------------------------------------------------------- */

export interface ResponseToCheck {
  method: string;
  /** Concrete request path incl. the server prefix, e.g. `/api/v1.0/catalog/products/<uuid>/model-artifacts`. */
  path: string;
  status: number;
  headers: Headers | Record<string, string | string[] | number | undefined>;
  /** Parsed JSON body; `undefined` for binary or empty bodies. */
  body: unknown;
}

function headerMap(headers: ResponseToCheck['headers']): Map<string, string> {
  const map = new Map<string, string>();
  if (typeof (headers as Headers).forEach === 'function' && typeof (headers as Headers).get === 'function') {
    (headers as Headers).forEach((value, key) => map.set(key.toLowerCase(), value));
  } else {
    for (const [key, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      map.set(key.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value));
    }
  }
  return map;
}

function schemaTypes(schemaPointer: string): string[] {
  const { value: schema } = deref(getPointer(schemaPointer), schemaPointer);
  if (!schema || typeof schema !== 'object') return [];
  if (Array.isArray(schema.type)) return schema.type;
  if (typeof schema.type === 'string') return [schema.type];
  if (Array.isArray(schema.enum)) return [...new Set(schema.enum.map((v: unknown) => typeof v))] as string[];
  return [];
}

/** A header's string value as the JSON value its schema describes (simple style). */
function coerceHeader(value: string, types: string[]): unknown {
  const v = value.trim();
  if ((types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v)) return Number(v);
  if (types.includes('boolean') && (v === 'true' || v === 'false')) return v === 'true';
  if (types.includes('array')) return v === '' ? [] : v.split(',').map((s) => s.trim());
  return types.length === 0 || types.includes('string') ? value : v;
}

function mediaEssence(contentType: string): string {
  return contentType.split(';')[0]!.trim().toLowerCase();
}

function mediaMatches(documented: string, actual: string): boolean {
  const d = mediaEssence(documented);
  if (d === '*/*' || d === actual) return true;
  if (d.endsWith('/*')) return actual.startsWith(d.slice(0, -1));
  return false;
}

function isJsonMedia(media: string): boolean {
  const m = mediaEssence(media);
  return m === 'application/json' || m.endsWith('+json');
}

function isBinarySchema(schema: Json): boolean {
  return (
    !!schema &&
    schema.type === 'string' &&
    (schema.format === 'binary' || typeof schema.contentMediaType === 'string' || typeof schema.contentEncoding === 'string')
  );
}

/**
 * Every way a response breaks the spec; empty when it is within it.
 *
 * - the operation must exist for the method and path, and the status be documented for it;
 * - documented response headers with `required: true` must be present, and every documented header
 *   that is present must match its schema (integers parse, enums match, …); `Content-Type` is
 *   checked against the media types instead (OpenAPI ignores it as a header);
 * - the Content-Type must be one of the status's media types — except for a binary download
 *   (200/206 whose media types are all `format: binary` strings), where it is the artifact's own
 *   MIME type and anything goes; a status without content must have no body;
 * - a JSON body must validate against the media type's schema; a problem document's `status` must
 *   equal the HTTP status;
 * - for `HEAD`, bodies and content types are not checked (there is no body).
 */
export function checkResponse(response: ResponseToCheck): string[] {
  const { method, path, status, body } = response;
  const label = `${method.toUpperCase()} ${requestPath(path)} → ${status}`;
  const found = findOperation(method, path);
  if (!found) return [`${label}: no operation in the spec for this method and path`];
  const op = operationById(found.operationId);
  const responses: Json = op.operation.responses ?? {};
  const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
  if (!key) {
    return [`${label}: status ${status} is not documented for ${op.operationId} (documented: ${Object.keys(responses).join(', ')})`];
  }
  const violations: string[] = [];
  const add = (message: string): void => {
    violations.push(`${label} (${op.operationId}): ${message}`);
  };
  const { value: res, pointer: resPointer } = deref(responses[key], `${op.pointer}/responses/${key}`);
  const headers = headerMap(response.headers);

  // Headers.
  for (const [name, rawHeader] of Object.entries<Json>(res.headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower === 'content-type') continue;
    const { value: header, pointer: headerPointer } = deref(rawHeader, `${resPointer}/headers/${escapePointer(name)}`);
    const value = headers.get(lower);
    if (value === undefined) {
      if (header.required === true) add(`missing required header ${name}`);
      continue;
    }
    if (!header.schema) continue;
    const schemaPointer = `${headerPointer}/schema`;
    const errors = validateAgainst(schemaPointer, coerceHeader(value, schemaTypes(schemaPointer)));
    for (const e of errors) add(`header ${name}: ${JSON.stringify(value)} ${e.replace(/^\(root\) /, '')}`);
  }

  if (method.toLowerCase() === 'head') return violations;

  // Content type and body.
  const content: Json = res.content ?? {};
  const mediaTypes = Object.keys(content);
  const hasBody = body !== undefined && body !== null && body !== '';
  if (mediaTypes.length === 0) {
    if (hasBody) add(`a body was sent, but the response documents no content`);
    return violations;
  }
  const contentType = headers.get('content-type');
  const binaryDownload =
    (status === 200 || status === 206) &&
    mediaTypes.every((m) => isBinarySchema(deref(content[m].schema, `${resPointer}/content/${escapePointer(m)}/schema`).value));
  if (!contentType) {
    add(`no Content-Type (documented: ${mediaTypes.join(', ')})`);
    return violations;
  }
  const actual = mediaEssence(contentType);
  const media = mediaTypes.find((m) => mediaMatches(m, actual));
  if (!media) {
    if (!binaryDownload) add(`Content-Type ${contentType} is not documented (documented: ${mediaTypes.join(', ')})`);
    return violations;
  }
  if (!isJsonMedia(media)) return violations;
  if (body === undefined) {
    add(`no JSON body for ${media}`);
    return violations;
  }
  for (const e of validateAgainst(`${resPointer}/content/${escapePointer(media)}/schema`, body)) add(`body ${e}`);
  if (mediaEssence(media) === 'application/problem+json' && body && typeof body === 'object') {
    const problemStatus = (body as { status?: unknown }).status;
    if (typeof problemStatus === 'number' && problemStatus !== status) {
      add(`problem document says status ${problemStatus}`);
    }
  }
  return violations;
}

/**
 * Reads a fetch `Response` (JSON bodies parsed, others read as bytes) and checks it.
 * `url` may be a full URL or a path; only its path is used.
 */
export async function readAndCheck(
  method: string,
  url: string,
  res: Response,
): Promise<{ status: number; headers: Headers; body: unknown; bytes: Uint8Array; violations: string[] }> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  const contentType = res.headers.get('content-type') ?? '';
  let body: unknown;
  const violations: string[] = [];
  if (bytes.length > 0 && isJsonMedia(contentType)) {
    try {
      body = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      violations.push(`${method.toUpperCase()} ${requestPath(url)} → ${res.status}: body is not valid JSON`);
    }
  }
  violations.push(...checkResponse({ method, path: url, status: res.status, headers: res.headers, body }));
  return { status: res.status, headers: res.headers, body, bytes, violations };
}
