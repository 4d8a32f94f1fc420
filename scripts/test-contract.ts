/**
 * `npm run test:contract [-- --target mock|sqlite|postgres ...]`: the contract suite (test/contract)
 * against one or more targets (repeat --target or separate with commas; default: all three), then
 * the operation × target table of this run. Other arguments go to vitest.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable, readResults } from '../test/contract/coverage.ts';
import { TARGET_NAMES, type TargetName } from '../test/contract/harness.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const usage = `usage: npm run test:contract -- [--target ${TARGET_NAMES.join('|')}]... [vitest options]`;

const targets: TargetName[] = [];
const passThrough: string[] = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const arg = args[i]!;
  let value: string | undefined;
  if (arg === '--target') value = args[++i];
  else if (arg.startsWith('--target=')) value = arg.slice('--target='.length);
  else if (arg === '--help' || arg === '-h') {
    console.log(usage);
    process.exit(0);
  } else {
    passThrough.push(arg);
    continue;
  }
  for (const name of (value ?? '').split(',')) {
    if (!(TARGET_NAMES as readonly string[]).includes(name)) {
      console.error(`test:contract: unknown target ${JSON.stringify(name)}\n${usage}`);
      process.exit(2);
    }
    if (!targets.includes(name as TargetName)) targets.push(name as TargetName);
  }
}
const selected = targets.length > 0 ? targets : [...TARGET_NAMES];

const parent = path.join(tmpdir(), 'model-repository-contract');
mkdirSync(parent, { recursive: true });
const runDir = mkdtempSync(path.join(parent, 'script-'));
const files = ['test/contract/coverage.test.ts', ...selected.map((t) => `test/contract/${t}.contract.test.ts`)];
const child = spawn(process.execPath, [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...files, ...passThrough], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, CONTRACT_RUN_DIR: runDir },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  const results = readResults(runDir).filter((r) => selected.includes(r.target));
  if (results.length > 0) console.log(`\n${formatTable(results)}\n`);
  rmSync(runDir, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
