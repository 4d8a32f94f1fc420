/**
 * The contract suite of one target: every scenario of the shared list that runs there, then the
 * coverage checks; at the end the target's results are written to the run directory and the
 * operation × target table (of all targets reported so far in this run) is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coverageOf, formatTable, readResults, summarize, writeResult } from './coverage.ts';
import type { Target, TargetName } from './harness.ts';
import { scenariosFor } from './scenarios.ts';

export interface SuiteOptions {
  /** Starts the target; null when it cannot run here (the suite is skipped, loudly). */
  start: (() => Promise<Target>) | null;
  skipReason?: string;
  /** After the target stopped (e.g. drop its database). */
  cleanup?: () => Promise<void>;
}

export function defineContractSuite(name: TargetName, options: SuiteOptions): void {
  const { start } = options;
  if (!start) {
    writeResult({ target: name, state: 'skipped', note: options.skipReason, operations: {}, scenarios: [] });
    describe.skip(`contract suite on ${name}: ${options.skipReason ?? 'skipped'}`, () => {
      it('skipped', () => {});
    });
    return;
  }

  describe(`contract suite on ${name}`, () => {
    let t: Target | undefined;
    const outcomes: { name: string; passed: boolean }[] = [];

    beforeAll(async () => {
      t = await start();
    }, 180_000);

    afterAll(async () => {
      try {
        if (t) {
          writeResult(summarize(name, t.log.calls, outcomes));
          console.log(`\n${formatTable(readResults())}\n`);
        }
      } finally {
        await t?.stop();
        await options.cleanup?.();
      }
    }, 60_000);

    for (const scenario of scenariosFor(name)) {
      it(scenario.name, async () => {
        const target = t!;
        const outcome = { name: scenario.name, passed: false };
        outcomes.push(outcome);
        target.log.scenario = scenario.name;
        let failure: unknown;
        try {
          await scenario.run(target);
        } catch (error) {
          failure = error;
        }
        const calls = target.log.of(scenario.name);
        const violations = calls.flatMap((c) => c.violations);
        if (failure !== undefined) {
          // Spec violations usually explain a failure best (e.g. the proxy replacing an answer).
          if (violations.length > 0 && failure instanceof Error) failure.message += `\nResponses outside the spec:\n  ${violations.join('\n  ')}`;
          throw failure;
        }
        // Every response of the scenario within the spec (status, headers, shape).
        expect(violations, 'responses outside the spec').toEqual([]);
        // What the scenario says it covers, it did (on the real server; the mock answers examples).
        const expected = Object.entries(scenario.covers).flatMap(([op, statuses]) =>
          target.kind === 'mock' ? [] : statuses!.length === 0 ? [`${op} called`] : statuses!.map((s) => `${op} ${s}`),
        );
        const produced = new Set(calls.flatMap((c) => [`${c.operationId} called`, `${c.operationId} ${c.status}`]));
        expect(expected.filter((e) => !produced.has(e)), 'declared in `covers` but not produced').toEqual([]);
        outcome.passed = true;
      });
    }

    describe('coverage', () => {
      it(`every operationId of the spec was exercised on ${name}, within the spec`, () => {
        expect(coverageOf(name, t!.log.calls).missingOperations).toEqual([]);
      });
      if (name !== 'mock') {
        it(`every documented status (each error status by a negative scenario) was produced on ${name}, except the exemptions`, () => {
          expect(coverageOf(name, t!.log.calls).missingStatuses).toEqual([]);
        });
        it(`every exemption of ${name} is still needed`, () => {
          expect(coverageOf(name, t!.log.calls).unneededExemptions).toEqual([]);
        });
      }
    });
  });
}
