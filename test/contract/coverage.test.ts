/**
 * The contract suite's coverage rules, checked without starting anything (so they hold even where
 * PostgreSQL is unavailable and its target file is skipped):
 *
 * - the scenarios declare every operationId of the spec for every target, and every documented
 *   status (error statuses included) for each real-server target, except the exemptions;
 * - the exemption list is well-formed;
 * - the run-time coverage check (coverageOf, over the recorded calls) notices a missing operation,
 *   a missing status, a call outside the spec and an exemption that is no longer needed;
 * - the harness's header check notices an undocumented header.
 */
import { describe, expect, it } from 'vitest';
import { documentedStatuses, operationIds } from '../support/spec-check.ts';
import { coverageOf, EXEMPTIONS, exemptionsFor } from './coverage.ts';
import { TARGET_NAMES, undocumentedHeaders, type CallRecord, type TargetName } from './harness.ts';
import { scenarios, scenariosFor } from './scenarios.ts';

const SERVER_TARGETS: TargetName[] = ['sqlite', 'postgres'];

function declared(target: TargetName): Map<string, Set<number>> {
  const map = new Map<string, Set<number>>();
  for (const s of scenariosFor(target)) {
    for (const [op, statuses] of Object.entries(s.covers)) {
      const set = map.get(op) ?? new Set<number>();
      for (const status of statuses ?? []) set.add(status);
      map.set(op, set);
    }
  }
  return map;
}

/** Operations some scenario calls expecting success (2xx/3xx, or a storage-dependent status: []). */
function declaredPositive(target: TargetName): Set<string> {
  const ops = new Set<string>();
  for (const s of scenariosFor(target)) {
    for (const [op, statuses] of Object.entries(s.covers)) {
      if (!statuses || statuses.length === 0 || statuses.some((status) => status < 400)) ops.add(op);
    }
  }
  return ops;
}

/** A call log in which every documented status of every operation was produced within the spec. */
function completeLog(target: TargetName): CallRecord[] {
  const exempt = exemptionsFor(target);
  return operationIds().flatMap((operationId) =>
    documentedStatuses(operationId)
      .filter((status) => !exempt.some((e) => e.operationId === operationId && e.status === status))
      .map((status) => ({ scenario: 's', server: 'main' as const, via: 'proxy' as const, method: 'GET', path: '/', operationId, status, violations: [], headers: {} })),
  );
}

describe('contract scenarios (declarations)', () => {
  it('have unique names and declare only operations of the spec', () => {
    const names = scenarios.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    const unknown = scenarios.flatMap((s) => Object.keys(s.covers)).filter((op) => !operationIds().includes(op));
    expect(unknown).toEqual([]);
  });

  for (const target of TARGET_NAMES) {
    it(`declare every operationId of the spec on ${target}, in a scenario that expects success`, () => {
      const ops = declaredPositive(target);
      expect(operationIds().filter((id) => !ops.has(id))).toEqual([]);
    });
  }

  for (const target of SERVER_TARGETS) {
    it(`declare every documented status (errors by negative scenarios) on ${target}, except the exemptions`, () => {
      const ops = declared(target);
      const exempt = exemptionsFor(target);
      const missing = operationIds().flatMap((id) =>
        documentedStatuses(id)
          .filter((status) => !ops.get(id)?.has(status) && !exempt.some((e) => e.operationId === id && e.status === status))
          .map((status) => `${id} ${status}`),
      );
      expect(missing).toEqual([]);
    });

    it(`declare only documented statuses on ${target}, and none that is exempt there`, () => {
      const ops = declared(target);
      const wrong = [...ops].flatMap(([id, statuses]) =>
        [...statuses]
          .filter((status) => !documentedStatuses(id).includes(status) || exemptionsFor(target).some((e) => e.operationId === id && e.status === status))
          .map((status) => `${id} ${status}`),
      );
      expect(wrong).toEqual([]);
    });
  }

  it('exempt only documented statuses of real-server targets, each with a reason', () => {
    for (const e of EXEMPTIONS) {
      expect(SERVER_TARGETS).toContain(e.target);
      expect(documentedStatuses(e.operationId)).toContain(e.status);
      expect(e.reason.length).toBeGreaterThan(20);
    }
  });
});

describe('run-time coverage check (coverageOf)', () => {
  it('passes a complete call log', () => {
    for (const target of TARGET_NAMES) expect(coverageOf(target, completeLog(target))).toEqual({ missingOperations: [], missingStatuses: [], unneededExemptions: [] });
  });

  it('reports an operation that was never called, or never with success (on every target)', () => {
    for (const target of TARGET_NAMES) {
      const log = completeLog(target).filter((c) => c.operationId !== 'abortArtifactUpload');
      expect(coverageOf(target, log).missingOperations).toEqual(['abortArtifactUpload']);
      const onlyErrors = completeLog(target).filter((c) => c.operationId !== 'getModel' || c.status >= 400);
      expect(coverageOf(target, onlyErrors).missingOperations).toEqual(['getModel']);
    }
  });

  it('reports a documented error status no scenario produced (real-server targets only)', () => {
    const log = completeLog('sqlite').filter((c) => !(c.operationId === 'uploadArtifactChunk' && c.status === 410));
    expect(coverageOf('sqlite', log).missingStatuses).toEqual(['uploadArtifactChunk 410']);
    expect(coverageOf('mock', log).missingStatuses).toEqual([]);
  });

  it('does not count calls outside the spec, nor storage calls', () => {
    const log = completeLog('postgres').map((c) =>
      c.operationId === 'getReadiness' && c.status === 503 ? { ...c, violations: ['GET /readyz → 503: header X-Request-Id missing'] } : c,
    );
    expect(coverageOf('postgres', log).missingStatuses).toEqual(['getReadiness 503']);
    const storage = completeLog('postgres').map((c) => (c.operationId === 'getHealth' ? { ...c, server: 'storage' as const } : c));
    expect(coverageOf('postgres', storage).missingOperations).toEqual(['getHealth']);
  });

  it('reports an exemption that is no longer needed', () => {
    const [exemption] = exemptionsFor('sqlite');
    expect(exemption).toBeDefined();
    const log = [...completeLog('sqlite'), { ...completeLog('sqlite')[0]!, operationId: exemption!.operationId, status: exemption!.status }];
    expect(coverageOf('sqlite', log).unneededExemptions).toEqual([`${exemption!.operationId} ${exemption!.status}`]);
  });
});

describe('harness header check (undocumentedHeaders)', () => {
  const path = '/api/v1.0/catalog/products/3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10/model-repository';

  it('accepts documented and generic headers', () => {
    const headers = new Headers({ 'content-type': 'application/json', 'content-length': '2', 'x-request-id': 'r', 'access-control-allow-origin': '*', vary: 'Origin' });
    expect(undocumentedHeaders('GET', path, 200, headers)).toEqual([]);
  });

  it('reports a header the spec does not document for that response', () => {
    const headers = new Headers({ 'x-request-id': 'r', location: '/elsewhere', 'x-powered-by': 'Express' });
    expect(undocumentedHeaders('GET', path, 200, headers)).toEqual([
      `GET ${path} → 200 (getModel): header location is not documented for this response`,
      `GET ${path} → 200 (getModel): header x-powered-by is not documented for this response`,
    ]);
  });
});
