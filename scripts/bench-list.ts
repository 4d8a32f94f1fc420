/**
 * Benchmark, not a test (`npm run bench:list`): the space listing at 100,000 models on PostgreSQL.
 *
 * 1. A fresh PostgreSQL database (DATABASE_URL_TEST's server, else postgres://postgres@127.0.0.1:5432),
 *    migrated, dropped at the end.
 * 2. 100,000 models over 10 spaces, seeded with multi-row INSERTs (plus a version for a third of
 *    them), `search_text` from productSearchText like the server writes it; then VACUUM ANALYZE.
 * 3. The server in this process (createApp, response validation off and LOG_LEVEL=warn, as in
 *    production); autocannon in a child process (the other core), 32 connections, ~10 s per case:
 *    the space listing with limit 50 — plain, with `q`, with two filters — and a trivial Express
 *    JSON endpoint as the ceiling; for reference (no target), the plain listing from a second app
 *    without the listing cache (LISTING_CACHE_BYTES=0), so every request renders its page.
 * 4. A table of requests/s, p50/p99 latency and this process's CPU time per request, checked
 *    against the targets: p99 < 50 ms and at least 30% of the ceiling's requests/s.
 *
 * BENCH_DURATION_SECONDS (10) and BENCH_MODELS (100000) change the run; BENCH_EXPLAIN=1 prints
 * EXPLAIN ANALYZE of every statement one listing request runs; BENCH_PROFILE=/tmp/p writes a V8
 * CPU profile of each listing case (/tmp/p.<n>.cpuprofile, open in Chrome DevTools).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import express from 'express';
import { createApp } from '../server/src/app.ts';
import { loadConfig } from '../server/src/config.ts';
import { createLogger } from '../server/src/logger.ts';
import { openOrm, type Orm } from '../server/src/persistence/orm.ts';
import { Product, ProductVersion, productSearchText } from '../server/src/persistence/entities.ts';
import { bootstrap, createSpace } from '../server/src/services/admin.ts';
import { openBlobStore } from '../server/src/storage/index.ts';
import { storageOptions } from '../server/src/services/index.ts';
import { createTestDatabase } from '../test/support/postgres.ts';

const MODELS = Number(process.env.BENCH_MODELS ?? 100_000);
const SPACES = 10;
const DURATION = Number(process.env.BENCH_DURATION_SECONDS ?? 10);
const CONNECTIONS = 32;
const BATCH = 1000;
const TARGET_P99_MS = 50;
const TARGET_SHARE = 0.3;
/** The informational case: no target applies. */
const REFERENCE = 'reference: space listing, limit 50, listing cache off';

// ─── data ────────────────────────────────────────────────────────────────────────────────

const FAMILIES = ['traditional_ml', 'genai', 'foundation_model', 'embedding_model', 'agent', 'ai_app', 'prompt_collection', 'other'];
const TYPES = ['ML Model', 'AI System', 'LLM Agent', 'AI App', 'Agent', 'Prompt Collection'];
const STATUSES = ['development', 'staging', 'production', 'retired'];
const RISKS = ['minimal', 'limited', 'high', 'unacceptable', null];
const STAGES = ['ideation', 'design', 'training', 'validation', 'deployment', 'monitoring', 'retirement', null];
const TASKS = ['llm', 'classification', 'regression', 'clustering', 'forecasting', 'embedding', 'ranking', 'anomaly_detection', 'recommendation', 'agent', 'other'];
const SUBJECTS = ['Churn', 'Fraud', 'Demand', 'Pricing', 'Support', 'Search', 'Credit Risk', 'Lead Scoring', 'Inventory', 'Sentiment',
  'Document', 'Claims', 'Routing', 'Anomaly', 'Recommendation', 'Translation', 'Summarization', 'Vision', 'Speech', 'Forecast'];
const KINDS = ['Predictor', 'Classifier', 'Scorer', 'Agent', 'Assistant', 'Embedder', 'Detector', 'Ranker', 'Model', 'Copilot'];
const ARCHS = ['XGBoost', 'LightGBM', 'Transformer', 'ResNet-50', 'BERT', 'Llama 3', 'Random Forest', 'Prophet', 'GRU', 'CatBoost'];
const FRAMEWORKS = ['scikit-learn', 'PyTorch', 'TensorFlow', 'JAX', 'Hugging Face', 'ONNX Runtime', 'Spark MLlib', 'statsmodels'];
const PROVIDERS = ['ml-platform', 'data-science', 'risk-analytics', 'search-team', 'Internal Platform', 'vendor'];
const VENDORS = [null, null, null, 'OpenAI', 'Anthropic', 'Google', 'Cohere', 'Mistral'];

/** Deterministic pseudo-random numbers (mulberry32), so every run seeds the same data. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function seed(orm: Orm, spaceIds: string[], ownerId: string): Promise<void> {
  const random = rng(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const start = Date.now();
  const epoch = Date.UTC(2025, 0, 1);
  const span = Date.UTC(2026, 10, 1) - epoch;
  let versions = 0;
  for (let offset = 0; offset < MODELS; offset += BATCH) {
    const products: Record<string, unknown>[] = [];
    const productVersions: Record<string, unknown>[] = [];
    for (let i = offset; i < Math.min(offset + BATCH, MODELS); i++) {
      const name = `${pick(SUBJECTS)} ${pick(KINDS)} ${i}`;
      const vendor = pick(VENDORS);
      const created = new Date(epoch + Math.floor(random() * span));
      const updated = new Date(created.getTime() + Math.floor(random() * 30 * 86_400_000));
      const row = {
        id: randomUUID(),
        space: spaceIds[i % SPACES]!,
        slug: name.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
        name,
        description: `${name}: ${pick(TASKS)} model maintained by ${pick(PROVIDERS)}.`,
        product_type: pick(TYPES),
        provider: pick(PROVIDERS),
        environment: pick(['development', 'staging', 'production']),
        risk_classification: pick(RISKS),
        lifecycle_stage: pick(STAGES),
        model_family: pick(FAMILIES),
        model_task_type: pick(TASKS),
        model_architecture: pick(ARCHS),
        framework: pick(FRAMEWORKS),
        deployment_status: pick(STATUSES),
        vendor_name: vendor,
        vendor_product_name: vendor ? `${vendor} Enterprise` : null,
        vendor_model_id: vendor ? `${vendor.toLowerCase()}-${i}` : null,
        is_archived: random() < 0.02,
        created_by: ownerId,
        created_at: created,
        updated_at: updated,
      };
      products.push({ ...row, search_text: productSearchText(row) });
      if (random() < 1 / 3) {
        versions++;
        productVersions.push({
          id: randomUUID(),
          product: row.id,
          version_number: 1,
          version_type: 'minor',
          release_date: null,
          notes: null,
          is_current: true,
          created_at: updated,
          updated_at: updated,
        });
      }
    }
    const em = orm.em.fork();
    await em.insertMany(Product, products as never[]);
    if (productVersions.length > 0) await em.insertMany(ProductVersion, productVersions as never[]);
    if ((offset / BATCH) % 20 === 19) process.stderr.write(`  seeded ${offset + BATCH} models\n`);
  }
  await orm.em.fork().execute('vacuum analyze');
  process.stderr.write(`seeded ${MODELS} models and ${versions} versions in ${((Date.now() - start) / 1000).toFixed(1)} s\n`);
}

// ─── load ────────────────────────────────────────────────────────────────────────────────

interface Result {
  name: string;
  requestsPerSecond: number;
  p99: number;
  p50: number;
  non2xx: number;
  errors: number;
  total: number;
}

/** autocannon in a child process, so the load generator does not share this event loop. */
function load(name: string, url: string, headers: Record<string, string> = {}): Promise<Result> {
  const bin = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
  const args = [bin, '-c', String(CONNECTIONS), '-d', String(DURATION), '-j', '-n'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited with ${code}: ${err}`));
      const r = JSON.parse(out.trim().split('\n').pop()!) as {
        requests: { average: number; total: number };
        latency: { p99: number; p50: number };
        non2xx: number;
        errors: number;
      };
      resolve({
        name,
        requestsPerSecond: r.requests.average,
        p99: r.latency.p99,
        p50: r.latency.p50,
        non2xx: r.non2xx,
        errors: r.errors,
        total: r.requests.total,
      });
    });
  });
}

/** BENCH_PROFILE=<path prefix>: a V8 CPU profile of this process per listing case (open in Chrome DevTools). */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const inspector = await import('node:inspector/promises');
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async (file) => {
    const { profile } = await session.post('Profiler.stop');
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    process.stderr.write(`wrote ${file}\n`);
  };
}

async function listen(app: express.Express): Promise<{ server: Server; origin: string }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/**
 * BENCH_EXPLAIN=1: EXPLAIN ANALYZE of the statements the server runs for each listing (captured
 * from the query log of one request each).
 */
async function explainRequests(orm: Orm, requests: [string, string, Record<string, string>][]): Promise<void> {
  const knex = orm.em.getKnex();
  for (const [name, url, headers] of requests) {
    const seen: { sql: string; bindings: unknown[] }[] = [];
    const listener = (q: { sql: string; bindings: unknown[] }) => seen.push(q);
    knex.on('query', listener);
    await (await fetch(url, { headers })).arrayBuffer();
    knex.off('query', listener);
    for (const q of seen) {
      const client = (await knex.client.acquireConnection()) as { query(sql: string, values: unknown[]): Promise<{ rows: Record<string, string>[] }> };
      try {
        const plan = await client.query(`explain analyze ${q.sql}`, q.bindings);
        process.stderr.write(`\n-- ${name}: ${q.sql.slice(0, 160)}…\n${plan.rows.map((r) => r['QUERY PLAN']).join('\n')}\n`);
      } finally {
        await knex.client.releaseConnection(client);
      }
    }
  }
}

// ─── main ────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const db = await createTestDatabase();
  if (!db) throw new Error('bench:list needs PostgreSQL (set DATABASE_URL_TEST to a server where it may create a database)');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-bench-'));
  let orm: Orm | undefined;
  try {
    const configEnv = { NODE_ENV: 'production', LOG_LEVEL: 'warn', DATA_DIR: dataDir, DATABASE_URL: db.url, SWEEP_INTERVAL_SECONDS: '0' };
    const config = loadConfig(configEnv);
    const logger = createLogger(config, { destination: 'stderr' });
    orm = await openOrm({ databaseUrl: config.databaseUrl, logger });

    const setup = await bootstrap(orm.em.fork(), { org: 'bench', space: 'bench-1', email: 'bench@localhost' });
    const spaceIds = [setup.space.id];
    for (let s = 2; s <= SPACES; s++) spaceIds.push((await createSpace(orm.em.fork(), { org: 'bench', space: `bench-${s}` })).id);
    await seed(orm, spaceIds, setup.user.id);

    const q = 'churn';

    const api = createApp({ config, orm, storage: await openBlobStore(storageOptions(config)), logger });
    const { server, origin } = await listen(api);
    const ceilingApp = express();
    ceilingApp.get('/ping', (_req, res) => {
      res.json({ status: 'ok' });
    });
    const ceiling = await listen(ceilingApp);
    // For reference: the same server without its listing cache (every request renders the page).
    const uncachedConfig = loadConfig({ ...configEnv, LISTING_CACHE_BYTES: '0' });
    const uncached = await listen(createApp({ config: uncachedConfig, orm, storage: await openBlobStore(storageOptions(uncachedConfig)), logger }));

    const list = `${origin}/api/v1.0/catalog/spaces/bench-3/model-repository/models?limit=50`;
    const auth = { Authorization: `Bearer ${setup.api_key}` };
    const cases: [string, string, Record<string, string>][] = [
      ['ceiling: trivial Express JSON', `${ceiling.origin}/ping`, {}],
      ['space listing, limit 50', list, auth],
      [`space listing, q=${q}`, `${list}&q=${q}`, auth],
      ['space listing, 2 filters', `${list}&model_family=genai&deployment_status=production`, auth],
      [REFERENCE, list.replace(origin, uncached.origin), auth],
    ];

    // Sanity: the listing answers, with the page full and the headers set.
    for (const [name, url, headers] of cases.slice(1)) {
      const res = await fetch(url, { headers });
      const body = (await res.json()) as unknown[];
      if (res.status !== 200) throw new Error(`${name}: ${res.status} ${JSON.stringify(body)}`);
      process.stderr.write(`${name}: ${body.length} items of ${res.headers.get('x-total-count')}\n`);
    }
    if (process.env.BENCH_EXPLAIN === '1') await explainRequests(orm, cases.slice(1));
    // Warm up (JIT, pools).
    await load('warm-up', cases[1]![1], auth).catch(() => undefined);

    const results: (Result & { cpuMsPerRequest: number })[] = [];
    for (const [index, [name, url, headers]] of cases.entries()) {
      process.stderr.write(`running: ${name} (${DURATION} s, ${CONNECTIONS} connections)\n`);
      const cpu = process.cpuUsage();
      const profiling = process.env.BENCH_PROFILE && index > 0 ? await startProfile() : null;
      const result = await load(name, url, headers);
      const used = process.cpuUsage(cpu);
      if (profiling) await profiling(`${process.env.BENCH_PROFILE}.${index}.cpuprofile`);
      // Both servers run in this process: its CPU time over the run, per request served.
      results.push({ ...result, cpuMsPerRequest: (used.user + used.system) / 1000 / Math.max(1, result.total) });
    }
    await close(server);
    await close(ceiling.server);
    await close(uncached.server);
    // The load generator stops mid-request: let the handlers it abandoned finish their queries
    // before the pool closes under them.
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const top = results[0]!.requestsPerSecond;
    const rows = results.map((r, i) => {
      const share = r.requestsPerSecond / top;
      const ok = i === 0 || r.name === REFERENCE ? '—' : r.p99 < TARGET_P99_MS && share >= TARGET_SHARE && r.non2xx === 0 && r.errors === 0 ? 'yes' : 'NO';
      return [
        r.name,
        r.requestsPerSecond.toFixed(0),
        `${r.p50}`,
        `${r.p99}`,
        i === 0 ? '100%' : `${(share * 100).toFixed(0)}%`,
        r.cpuMsPerRequest.toFixed(2),
        `${r.non2xx + r.errors}`,
        ok,
      ];
    });
    const header = ['case', 'req/s', 'p50 ms', 'p99 ms', 'of ceiling', 'server CPU ms/req', 'non-2xx', 'target met'];
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
    const line = (cells: string[]) => `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const pgVersion = (await orm.em.fork().execute<{ server_version: string }[]>('show server_version'))[0]!.server_version;
    console.log(
      [
        `bench:list — ${MODELS.toLocaleString('en-US')} models over ${SPACES} spaces, PostgreSQL ${pgVersion}, Node ${process.version}, ` +
          `${os.cpus().length} × ${cpu}; autocannon ${CONNECTIONS} connections × ${DURATION} s per case`,
        `target: p99 < ${TARGET_P99_MS} ms and ≥ ${TARGET_SHARE * 100}% of the ceiling's requests/s`,
        '',
        line(header),
        `|${widths.map((w, c) => (c === 0 ? ':' : '') + '-'.repeat(w + 1) + (c === 0 ? '' : ':')).join('|')}|`,
        ...rows.map(line),
      ].join('\n'),
    );
    // A benchmark, not a test: a missed target is reported, not an error exit.
    const missed = rows.slice(1).filter((r) => r[7] === 'NO').map((r) => r[0]);
    console.log(missed.length === 0 ? '\nall targets met' : `\ntarget missed: ${missed.join('; ')}`);
  } finally {
    await orm?.close(true);
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:list failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
