// The published package works on its own: `npm pack` the SDK, install the tarball into a fresh
// TypeScript project (no @types/node, as in a browser app), type-check code that uses it, import it
// at run time, and run its `model-repo` bin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const sdkDir = resolve(fileURLToPath(new URL('..', import.meta.url)));
let work: string;
let tarball: string;
let files: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sdk-pack-'));
  // prepack builds dist/ first.
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: sdkDir, maxBuffer: 16 * 1024 * 1024 });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info!.filename);
  files = info!.files.map((f) => f.path);

  const project = join(work, 'consumer');
  await run('mkdir', ['-p', project]);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await writeFile(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'DOM', 'DOM.Iterable'],
        types: [],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
      },
      include: ['app.ts'],
    }),
  );
  await writeFile(
    join(project, 'app.ts'),
    `import {
  createModelRepositoryClient,
  ModelRepositoryError,
  type ModelArtifact,
  type ModelSummary,
} from '@model-repository/sdk';

const client = createModelRepositoryClient({ baseUrl: 'https://models.example.com', apiKey: 'mr_key' });

export async function demo(file: File): Promise<ModelArtifact> {
  const names: string[] = [];
  for await (const page of client.listModels({ space: 'default' }, { deployment_status: 'production' })) {
    for (const model of page.items) names.push((model satisfies ModelSummary).name);
  }
  const { data } = await client.api.GET('/catalog/products/{product_id}/model-artifacts', {
    params: { path: { product_id: 'p' } },
  });
  const count: number | undefined = data?.length;
  void count;
  try {
    return await client.uploadArtifact('p', file, {
      artifact_kind: 'weights',
      concurrency: 2,
      onProgress: ({ uploadedBytes, totalBytes }) => console.log(uploadedBytes / totalBytes),
    });
  } catch (error) {
    if (error instanceof ModelRepositoryError) console.error(error.status, error.code, error.requestId);
    throw error;
  }
}

export async function save(stream: WritableStream<Uint8Array>): Promise<string> {
  const artifact = await client.downloadArtifact('p', 'a', { to: stream });
  return artifact.sha256;
}

// @ts-expect-error not an ArtifactKind
void client.uploadArtifact('p', new Uint8Array(1), { file_name: 'x', artifact_kind: 'nope' });
`,
  );
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, 'typescript@5.9.3'], {
    cwd: project,
    maxBuffer: 16 * 1024 * 1024,
  });
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the built ESM, its declarations, the bin and the README, and nothing else', () => {
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/generated/api.d.ts']));
    expect(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md'].includes(f))).toEqual([]);
    expect(files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toBe(false);
  });

  it('type-checks a fresh TypeScript project that uses the installed tarball', async () => {
    const project = join(work, 'consumer');
    const result = await run(join(project, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: project }).catch(
      (error: { stdout?: string; stderr?: string }) => error,
    );
    expect(`${result.stdout ?? ''}${result.stderr ?? ''}`).toBe('');
  });

  it('imports at run time and runs the model-repo bin', async () => {
    const project = join(work, 'consumer');
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', "import * as sdk from '@model-repository/sdk'; console.log(typeof sdk.createModelRepositoryClient, typeof sdk.ModelRepositoryError)"],
      { cwd: project },
    );
    expect(stdout.trim()).toBe('function function');
    const version = await run(join(project, 'node_modules/.bin/model-repo'), ['--version'], { cwd: project });
    expect(version.stdout.trim()).toBe('0.1.0');
  });
});
