/**
 * `npm run mock`: a Prism mock of the API on 127.0.0.1:4010 (PORT / HOST override), CORS on.
 *
 * Prism ignores a relative `servers` URL, so the mock is started on a copy of the bundled
 * document whose paths carry the `/api/v1.0` prefix (the health checks stay at the root), so that
 * frontends use the same URLs against the mock and the real server.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Doc {
  servers?: unknown;
  paths: Record<string, { servers?: unknown }>;
}

/** Writes the mock's copy of the document and returns its path. */
export function writeMockDocument(dir = resolve(root, '.tmp')): string {
  const doc = JSON.parse(readFileSync(resolve(root, 'server/src/generated/openapi.json'), 'utf8')) as Doc;
  const paths: Doc['paths'] = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    const atRoot = Array.isArray(item.servers);
    const { servers: _servers, ...rest } = item;
    paths[atRoot ? path : `/api/v1.0${path}`] = rest;
  }
  const mockDoc = { ...doc, servers: undefined, paths };
  mkdirSync(dir, { recursive: true });
  const file = resolve(dir, 'mock-openapi.json');
  writeFileSync(file, JSON.stringify(mockDoc));
  return file;
}

/** Command line that starts Prism on `file`. */
export function prismArgs(file: string, host: string, port: number): string[] {
  return [resolve(root, 'node_modules/@stoplight/prism-cli/dist/index.js'), 'mock', '--cors', '-h', host, '-p', String(port), file];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const host = process.env.HOST ?? '127.0.0.1';
  const port = Number(process.env.PORT ?? 4010);
  const child = spawn(process.execPath, prismArgs(writeMockDocument(), host, port), { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code) => process.exit(code ?? 0));
}
