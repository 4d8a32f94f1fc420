/**
 * What the contract suite must have exercised, computed from the recorded calls (not from the
 * scenarios' declarations), and the operation × target table.
 *
 * - Every operationId of the spec: at least one successful (2xx/3xx) call within the spec, on
 *   every target.
 * - On the real server targets: every documented status of every operation — each error status
 *   (4xx/5xx) by a negative scenario, and the success and redirect statuses too — except the
 *   exemptions below. An exemption that is no longer needed (the status was produced after all)
 *   is itself a failure, so the list stays true.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { documentedStatuses, operationIds } from '../support/spec-check.ts';
import { TARGET_NAMES, type CallRecord, type OperationId, type TargetName } from './harness.ts';

export interface Exemption {
  target: TargetName;
  operationId: OperationId;
  status: number;
  reason: string;
}

/** Documented statuses a target cannot produce, and why. Keep it small and true. */
export const EXEMPTIONS: readonly Exemption[] = [
  {
    target: 'sqlite',
    operationId: 'downloadModelArtifact',
    status: 302,
    reason: 'filesystem storage streams the bytes itself; only S3 in redirect mode answers with a presigned-URL redirect',
  },
  {
    target: 'sqlite',
    operationId: 'headModelArtifact',
    status: 302,
    reason: 'filesystem storage streams the bytes itself; only S3 in redirect mode answers with a presigned-URL redirect',
  },
  ...(['sqlite', 'postgres'] as const).flatMap((target) =>
    (['initiateArtifactUpload', 'uploadArtifactChunk', 'completeArtifactUpload', 'createModelArtifact'] as const).map((operationId) => ({
      target,
      operationId,
      status: 507,
      reason: 'needs a full disk; the answer to ENOSPC is tested in test/integration/storage-full.test.ts',
    })),
  ),
];

export function exemptionsFor(target: TargetName): Exemption[] {
  return EXEMPTIONS.filter((e) => e.target === target);
}

export interface CoverageReport {
  /** Operations without a single successful (2xx/3xx) call within the spec. */
  missingOperations: string[];
  /** `operationId status` pairs documented but never produced within the spec (real servers only; exemptions excluded). */
  missingStatuses: string[];
  /** Exemptions whose status was produced after all. */
  unneededExemptions: string[];
}

/** Calls that count: answered by the mock or the server (not storage) and within the spec. */
function counted(calls: readonly CallRecord[]): CallRecord[] {
  return calls.filter((c) => c.operationId !== null && c.server !== 'storage' && c.violations.length === 0);
}

export function coverageOf(target: TargetName, calls: readonly CallRecord[]): CoverageReport {
  const ok = counted(calls);
  const seen = new Map<string, Set<number>>();
  for (const c of ok) {
    let statuses = seen.get(c.operationId!);
    if (!statuses) seen.set(c.operationId!, (statuses = new Set()));
    statuses.add(c.status);
  }
  // An error answer alone does not count: the auth scenario reaches every operation from the spec
  // by itself, and a new operation must not pass on that.
  const missingOperations = operationIds().filter((id) => ![...(seen.get(id) ?? [])].some((status) => status < 400));
  const missingStatuses: string[] = [];
  const unneededExemptions: string[] = [];
  if (target !== 'mock') {
    const exempt = exemptionsFor(target);
    for (const id of operationIds()) {
      for (const status of documentedStatuses(id)) {
        const produced = seen.get(id)?.has(status) ?? false;
        const exemption = exempt.find((e) => e.operationId === id && e.status === status);
        if (exemption && produced) unneededExemptions.push(`${id} ${status}`);
        if (!exemption && !produced) missingStatuses.push(`${id} ${status}`);
      }
    }
    for (const e of exempt) {
      if (!operationIds().includes(e.operationId) || !documentedStatuses(e.operationId).includes(e.status)) {
        unneededExemptions.push(`${e.operationId} ${e.status} (not documented any more)`);
      }
    }
  }
  return { missingOperations, missingStatuses, unneededExemptions };
}

/* ------------------------------------------------------------------------------------------------
 * Results of a run, shared between the target files through a directory
 * ---------------------------------------------------------------------------------------------- */

export interface OperationResult {
  statuses: number[];
  calls: number;
  /** Calls outside the spec. */
  violations: number;
  /** Scenarios that called the operation and failed. */
  failedScenarios: string[];
}

export interface TargetResult {
  target: TargetName;
  state: 'ran' | 'skipped';
  note?: string;
  operations: Record<string, OperationResult>;
  scenarios: { name: string; passed: boolean }[];
  coverage?: CoverageReport;
}

/**
 * One directory per run: `CONTRACT_RUN_DIR` (set by scripts/test-contract.ts), else one per vitest
 * process (the target files are its children, so they share the parent's pid).
 */
export function runDirectory(): string {
  const parent = path.join(tmpdir(), 'model-repository-contract');
  const dir = process.env.CONTRACT_RUN_DIR || path.join(parent, `vitest-${process.ppid}`);
  mkdirSync(dir, { recursive: true });
  // Runs of earlier days are gone for good.
  for (const entry of readdirSync(parent)) {
    const old = path.join(parent, entry);
    if (old !== dir && Date.now() - statSync(old).mtimeMs > 86_400_000) rmSync(old, { recursive: true, force: true });
  }
  return dir;
}

/** Results older than this belong to an earlier run whose vitest process had the same pid. */
const STALE_AFTER_MS = 30 * 60_000;

export function summarize(target: TargetName, calls: readonly CallRecord[], scenarios: { name: string; passed: boolean }[]): TargetResult {
  const failed = new Set(scenarios.filter((s) => !s.passed).map((s) => s.name));
  const operations: Record<string, OperationResult> = {};
  for (const c of calls) {
    if (c.operationId === null || c.server === 'storage') continue;
    const op = (operations[c.operationId] ??= { statuses: [], calls: 0, violations: 0, failedScenarios: [] });
    op.calls += 1;
    if (!op.statuses.includes(c.status)) op.statuses.push(c.status);
    if (c.violations.length > 0) op.violations += 1;
    if (failed.has(c.scenario) && !op.failedScenarios.includes(c.scenario)) op.failedScenarios.push(c.scenario);
  }
  for (const op of Object.values(operations)) op.statuses.sort((a, b) => a - b);
  return { target, state: 'ran', operations, scenarios, coverage: coverageOf(target, calls) };
}

export function writeResult(result: TargetResult, dir = runDirectory()): void {
  writeFileSync(path.join(dir, `${result.target}.json`), JSON.stringify(result, null, 2));
}

export function readResults(dir = runDirectory()): TargetResult[] {
  const results: TargetResult[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.json')) continue;
    try {
      if (Date.now() - statSync(path.join(dir, file)).mtimeMs > STALE_AFTER_MS) continue;
      results.push(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as TargetResult);
    } catch {
      // Being written right now: the next table will have it.
    }
  }
  return results.sort((a, b) => TARGET_NAMES.indexOf(a.target) - TARGET_NAMES.indexOf(b.target));
}

function cell(result: TargetResult | undefined, operationId: string): { text: string; pass: boolean | null } {
  if (!result) return { text: 'not run', pass: null };
  if (result.state === 'skipped') return { text: 'skipped', pass: null };
  const op = result.operations[operationId];
  if (!op) return { text: 'FAIL: never called', pass: false };
  const missing = (result.coverage?.missingStatuses ?? []).filter((m) => m.startsWith(`${operationId} `)).map((m) => m.split(' ')[1]);
  const problems: string[] = [];
  if (result.coverage?.missingOperations.includes(operationId)) problems.push('no successful call');
  if (op.violations > 0) problems.push(`${op.violations} outside spec`);
  if (op.failedScenarios.length > 0) problems.push(`${op.failedScenarios.length} scenario(s) failed`);
  if (missing.length > 0) problems.push(`missing ${missing.join(',')}`);
  const statuses = op.statuses.join(' ');
  return problems.length === 0 ? { text: `pass ${statuses}`, pass: true } : { text: `FAIL ${statuses}; ${problems.join('; ')}`, pass: false };
}

/** The operation × target pass/fail table (statuses seen in each cell). */
export function formatTable(results: readonly TargetResult[]): string {
  const byTarget = new Map(results.map((r) => [r.target, r]));
  const header = ['operation', ...TARGET_NAMES];
  const rows = operationIds().map((id) => [id, ...TARGET_NAMES.map((t) => cell(byTarget.get(t), id).text)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' │ ');
  const out = [line(header), widths.map((w) => '─'.repeat(w)).join('─┼─'), ...rows.map(line)];
  const notes: string[] = [];
  for (const target of TARGET_NAMES) {
    const r = byTarget.get(target);
    if (!r) continue;
    if (r.state === 'skipped') {
      notes.push(`${target}: skipped${r.note ? ` (${r.note})` : ''}`);
      continue;
    }
    const passed = r.scenarios.filter((s) => s.passed).length;
    notes.push(`${target}: ${passed}/${r.scenarios.length} scenarios passed`);
    for (const s of r.scenarios.filter((x) => !x.passed)) notes.push(`  failed: ${s.name}`);
    const cov = r.coverage;
    if (cov?.missingOperations.length) notes.push(`  operations never exercised: ${cov.missingOperations.join(', ')}`);
    if (cov?.missingStatuses.length) notes.push(`  documented statuses never produced: ${cov.missingStatuses.join(', ')}`);
    if (cov?.unneededExemptions.length) notes.push(`  exemptions no longer needed: ${cov.unneededExemptions.join(', ')}`);
    for (const e of exemptionsFor(target)) notes.push(`  exempt: ${e.operationId} ${e.status} — ${e.reason}`);
  }
  const finished = results.length;
  return [
    `Contract suite: operation × target (statuses seen; ${finished} of ${TARGET_NAMES.length} targets reported)`,
    ...out,
    ...notes,
  ].join('\n');
}
