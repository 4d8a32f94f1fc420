/**
 * The bundled OpenAPI document (generated from openapi/ by `npm run gen`), loaded once.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const bundledPath = fileURLToPath(new URL('../generated/openapi.json', import.meta.url));
let cachedDoc: Record<string, unknown> | undefined;
let cachedYaml: string | undefined;

/** A fresh deep copy each call: the validator mutates the document it is given. */
export function apiDocument(): Record<string, unknown> {
  cachedDoc ??= JSON.parse(readFileSync(bundledPath, 'utf8')) as Record<string, unknown>;
  return structuredClone(cachedDoc);
}

export function openApiYaml(): string {
  cachedYaml ??= stringify(apiDocument(), { aliasDuplicateObjects: false });
  return cachedYaml;
}
