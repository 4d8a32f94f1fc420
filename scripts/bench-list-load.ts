/**
 * bench:list's load generator for cases whose requests differ (`node --import tsx`, a child
 * process of scripts/bench-list.ts, so the load does not share the server's event loop):
 * autocannon's programmatic API, each request's path drawn by `setupRequest`. argv[2] is a JSON
 * LoadSpec; the autocannon result goes to stdout as one JSON line.
 *
 * - `skip`: the listing at `path` with `skip` drawn uniformly over [0, maxSkip] in steps of `step`.
 * - `pick`: the listing at `path` with one of `choices` (a query fragment, e.g. `q=churn` or two
 *   filters) and `skip` as for `skip`, both drawn anew per request.
 * - `filters`: the listing at `path` with a random combination of filters (q from a word list,
 *   model_family, deployment_status, one or two types, risk_classification, model_task_type),
 *   at least one of them, each request drawn anew.
 */
import { createRequire } from 'node:module';

/** What the requests are: where they go and how each one's path is drawn. */
export type LoadRequests = { origin: string; path: string; seed: number } & (
  | { kind: 'skip'; maxSkip: number; step: number }
  | { kind: 'pick'; choices: string[]; maxSkip: number; step: number }
  | { kind: 'filters'; words: string[]; families: string[]; statuses: string[]; types: string[]; risks: string[]; tasks: string[] }
);

export type LoadSpec = LoadRequests & { headers: Record<string, string>; connections: number; duration: number };

interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
}

type Autocannon = (opts: {
  url: string;
  connections: number;
  duration: number;
  headers: Record<string, string>;
  requests: { setupRequest: (req: AutocannonRequest) => AutocannonRequest }[];
}) => Promise<unknown>;

/** Deterministic pseudo-random numbers (mulberry32): every run seeds the same data and draws the same requests. */
export function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A function returning the next request's path (path and query). */
export function pathSource(spec: LoadRequests): () => string {
  const random = rng(spec.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const sep = spec.path.includes('?') ? '&' : '?';
  if (spec.kind === 'skip') {
    const steps = Math.floor(spec.maxSkip / spec.step) + 1;
    return () => `${spec.path}${sep}skip=${Math.floor(random() * steps) * spec.step}`;
  }
  if (spec.kind === 'pick') {
    const { choices } = spec;
    const steps = Math.floor(spec.maxSkip / spec.step) + 1;
    return () => `${spec.path}${sep}${pick(choices)}&skip=${Math.floor(random() * steps) * spec.step}`;
  }
  return () => {
    const query: string[] = [];
    while (query.length === 0) {
      if (random() < 0.4) query.push(`q=${encodeURIComponent(pick(spec.words))}`);
      if (random() < 0.4) query.push(`model_family=${pick(spec.families)}`);
      if (random() < 0.4) query.push(`deployment_status=${pick(spec.statuses)}`);
      if (random() < 0.3) {
        const first = pick(spec.types);
        query.push(`types=${encodeURIComponent(first)}`);
        const second = pick(spec.types);
        if (random() < 0.5 && second !== first) query.push(`types=${encodeURIComponent(second)}`);
      }
      if (random() < 0.3) query.push(`risk_classification=${pick(spec.risks)}`);
      if (random() < 0.2) query.push(`model_task_type=${pick(spec.tasks)}`);
    }
    return `${spec.path}${sep}${query.join('&')}`;
  };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]!) as LoadSpec;
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const next = pathSource(spec);
  const result = await autocannon({
    url: spec.origin,
    connections: spec.connections,
    duration: spec.duration,
    headers: spec.headers,
    requests: [{ setupRequest: (req) => ({ ...req, method: 'GET', path: next() }) }],
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[2]) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench-list-load failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
