/**
 * Production build of the server (`npm run build`, run by `npm start` first): server/src bundled
 * into plain ES modules under dist/ with esbuild, so the server runs on bare Node without a
 * TypeScript loader (tsx's loader thread and its transform caches cost ~25 MB of resident memory).
 * Packages stay external (resolved from node_modules at run time), and modules that are imported
 * lazily stay in chunks of their own (the S3 store and its AWS SDK load only when STORAGE_BACKEND
 * is s3). Files the server reads next to its modules are copied alongside:
 *
 *   dist/server/main.js (+ chunks)   dist/server/sha256-worker.mjs   dist/generated/openapi.json
 *
 * `--outdir DIR` builds elsewhere (tests build into a directory of their own).
 */
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Builds the server into `outdir` (default dist/) and returns the path of its entry module. */
export async function buildServer(outdir = join(root, 'dist')): Promise<string> {
  rmSync(outdir, { recursive: true, force: true });
  const serverDir = join(outdir, 'server');
  await build({
    entryPoints: { main: join(root, 'server/src/main.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir: serverDir,
    // Every module in one directory: `import.meta.url` then means the same place in all of them.
    chunkNames: '[name]-[hash]',
    logLevel: 'warning',
  });
  cpSync(join(root, 'server/src/services/sha256-worker.mjs'), join(serverDir, 'sha256-worker.mjs'));
  mkdirSync(join(outdir, 'generated'), { recursive: true });
  cpSync(join(root, 'server/src/generated/openapi.json'), join(outdir, 'generated/openapi.json'));
  return join(serverDir, 'main.js');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--outdir');
  const outdir = at >= 0 ? resolve(process.argv[at + 1] ?? '') : undefined;
  buildServer(outdir).then(
    (entry) => process.stderr.write(`built ${entry}\n`),
    (err: unknown) => {
      process.stderr.write(`build failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
