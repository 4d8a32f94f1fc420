/**
 * The bundled OpenAPI document (generated from openapi/ by `npm run gen`), loaded once.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as OpenApiValidator from 'express-openapi-validator';
import { stringify } from 'yaml';

/** The document type the validator takes (an OpenAPI 3.1 document object). */
export type ApiDocument = Exclude<Parameters<typeof OpenApiValidator.middleware>[0]['apiSpec'], string>;

const bundledPath = fileURLToPath(new URL('../generated/openapi.json', import.meta.url));
let cachedDoc: ApiDocument | undefined;
let cachedYaml: string | undefined;

/** A fresh deep copy each call: the validator mutates the document it is given. */
export function apiDocument(): ApiDocument {
  // The file is the bundle `npm run gen` wrote from the spec, and spec.test.ts lints it.
  cachedDoc ??= JSON.parse(readFileSync(bundledPath, 'utf8')) as ApiDocument;
  return structuredClone(cachedDoc);
}

export function openApiYaml(): string {
  cachedYaml ??= stringify(apiDocument(), { aliasDuplicateObjects: false });
  return cachedYaml;
}
