/**
 * The webhook delivery worker, one per server process (started by main.ts).
 *
 * Claiming: one statement moves a batch of due `pending` deliveries of active webhooks out of
 * reach — `next_attempt_at` is pushed past the attempt's deadline (the claim lapses then, so a
 * process that dies mid-attempt only delays the delivery) and a fresh `claim_token` is stamped.
 * On PostgreSQL the candidate rows are locked with `FOR UPDATE SKIP LOCKED`, so several processes
 * claim disjoint batches; on SQLite one process at a time delivers, the holder of the
 * `webhook-delivery` row of `worker_leases`. An attempt's result is written only under the token
 * it was claimed with (a redelivery or a deleted webhook in the meantime wins).
 *
 * Sending: POST with the Standard Webhooks headers, a deadline of WEBHOOK_TIMEOUT_MS (10 s) for
 * the whole exchange, no redirects (3xx is a failure), at most 4 KiB of the answer read, the
 * connection made to the addresses the SSRF check passed (webhook-url.ts). A failed attempt is
 * retried after the next delay of WEBHOOK_RETRY_SECONDS; after the last one the delivery is
 * `failed`.
 *
 * Memory stays flat under bursts: at most BATCH deliveries (with their bodies) are held at once.
 * stop() claims nothing more, lets running attempts finish (each is bounded by the timeout) and
 * hands back claimed deliveries it had not started.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { ServiceDeps } from './index.ts';
import { Webhook, WebhookDelivery } from '../persistence/entities.ts';
import { dialectOf, type Em } from '../persistence/orm.ts';
import { dateParam } from '../persistence/raw.ts';
import { LIMITS } from '../persistence/limits.ts';
import { signWebhook } from './webhooks.ts';
import { bareHost, checkedAddresses, checkedLookup, parseWebhookUrl, systemResolver, type Resolver } from './webhook-url.ts';

/** Deliveries claimed per round. */
const BATCH = 16;
/** How much of a receiver's answer is read (for `last_error`), at most. */
export const MAX_RESPONSE_BYTES = 4096;
const LEASE_NAME = 'webhook-delivery';
const LEASE_MS = 15_000;
const USER_AGENT = 'model-repository-webhooks/1.0';
/** Deliveries (`d`, of webhook `w`) an attempt is due for; parameters: now, true. */
const DUE = "d.status = 'pending' and d.next_attempt_at <= ? and (w.active = ? or d.event_type = 'ping')";

export interface AttemptResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
}

interface ClaimedRow {
  id: string;
  webhook_id: string;
  payload: string;
  attempts: number | string;
}

const clip = (text: string, max = LIMITS.webhook_error) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNRESET') return 'The connection was reset by the receiver (ECONNRESET).';
  if (e?.code === 'ECONNREFUSED') return 'The receiver refused the connection (ECONNREFUSED).';
  if (e?.name === 'WebhookUrlError') return `Refused: ${e.message}`;
  return e?.code ? `${e.message} (${e.code})` : String(e?.message ?? err);
}

/**
 * One POST of `body` to `url`: resolves with the outcome, never rejects. The deadline covers
 * connecting, sending and the answer's headers; a 2xx is a success as soon as its status line arrives.
 */
export async function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  opts: { timeoutMs: number; allowPrivate: boolean; resolver?: Resolver },
): Promise<AttemptResult> {
  const resolver = opts.resolver ?? systemResolver;
  let target: URL;
  try {
    target = parseWebhookUrl(url);
    // Literals never reach `lookup`: check them here. Names are checked in the socket's lookup.
    if (isIP(bareHost(target)) !== 0) await checkedAddresses(bareHost(target), opts.allowPrivate, resolver);
  } catch (err) {
    return { ok: false, statusCode: null, error: clip(describeError(err)) };
  }
  const transport = target.protocol === 'https:' ? https : http;
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      request.destroy();
      resolve({ ...result, error: result.error === null ? null : clip(result.error) });
    };
    const request = transport.request(
      target,
      {
        method: 'POST',
        agent: false,
        lookup: checkedLookup(opts.allowPrivate, resolver),
        headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) return finish({ ok: true, statusCode: status, error: null });
        const chunks: Buffer[] = [];
        let received = 0;
        const done = () => {
          const text = Buffer.concat(chunks).toString('utf8').slice(0, 200).replace(/\s+/g, ' ').trim();
          const redirect = status >= 300 && status < 400;
          const where = redirect && response.headers.location ? ` to ${response.headers.location}` : '';
          const what = redirect ? `HTTP ${status}: redirect${where} not followed` : `HTTP ${status}`;
          finish({ ok: false, statusCode: status, error: text ? `${what}: ${text}` : what });
        };
        response.on('data', (chunk: Buffer) => {
          if (received >= MAX_RESPONSE_BYTES) return;
          chunks.push(chunk.subarray(0, MAX_RESPONSE_BYTES - received));
          received += chunk.length;
          if (received >= MAX_RESPONSE_BYTES) done();
        });
        response.on('end', done);
        response.on('error', done);
        response.on('close', done);
      },
    );
    const deadline = setTimeout(
      () => finish({ ok: false, statusCode: null, error: `No answer within ${opts.timeoutMs / 1000} s (timed out).` }),
      opts.timeoutMs,
    );
    request.on('error', (err) => finish({ ok: false, statusCode: null, error: describeError(err) }));
    request.end(body);
  });
}

export class WebhookWorker {
  /** This process, as a lease holder. */
  private readonly holder = randomUUID();
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private sleepTimer: NodeJS.Timeout | null = null;
  /** Claimed, not yet started (handed back on stop). */
  private readonly queued = new Map<string, string>();

  constructor(private readonly deps: ServiceDeps) {}

  private em(): Em {
    return this.deps.orm.em.fork();
  }

  start(): void {
    if (this.deps.config.webhookPollIntervalMs <= 0 || this.loop) return;
    this.stopping = false;
    this.loop = this.run().catch((err: unknown) => this.deps.logger.error({ err }, 'webhook worker stopped unexpectedly'));
  }

  /** Claims nothing more, waits for attempts in flight, hands back the rest, gives up the lease. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    this.loop = null;
    if (dialectOf(this.deps.orm) === 'sqlite') {
      await this.em()
        .execute('delete from worker_leases where name = ? and holder = ?', [LEASE_NAME, this.holder])
        .catch(() => {});
    }
  }

  /** Wakes the worker now instead of at its next poll (after this process queued something). */
  nudge(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let handled = 0;
      try {
        handled = await this.runOnce();
      } catch (err) {
        this.deps.logger.warn({ err }, 'webhook worker: round failed');
      }
      if (handled === 0 && !this.stopping) await this.sleep(this.deps.config.webhookPollIntervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        if (this.sleepTimer) clearTimeout(this.sleepTimer);
        this.wake = null;
        resolve();
      };
      this.sleepTimer = setTimeout(() => this.wake?.(), ms);
    });
  }

  /** One round: claim a batch and attempt each of it. Returns how many were claimed. */
  async runOnce(): Promise<number> {
    const em = this.em();
    // Idle rounds only read: on SQLite every write of ours could make another process's
    // read-then-write transaction fail at once (SQLITE_BUSY on upgrading a WAL snapshot).
    if (!(await this.anythingDue(em))) return 0;
    if (dialectOf(this.deps.orm) === 'sqlite' && !(await this.holdLease(em))) return 0;
    const rows = await this.claim(em);
    if (rows.length === 0) return 0;
    const hooks = new Map(
      (await em.find(Webhook, { id: { $in: [...new Set(rows.map((r) => r.webhook_id))] } }, { fields: ['id', 'url', 'secret'] })).map((h) => [h.id, h]),
    );
    for (const row of rows) this.queued.set(row.id, row.token);
    await Promise.all(
      rows.map(async (row) => {
        const hook = hooks.get(row.webhook_id);
        if (this.stopping || !hook) return;
        this.queued.delete(row.id);
        const result = await this.attempt(hook, row.id, row.payload);
        await this.record(em, row.id, row.token, Number(row.attempts) + 1, result);
      }),
    );
    await this.release(em);
    return rows.length;
  }

  private async attempt(hook: Pick<Webhook, 'url' | 'secret'>, deliveryId: string, body: string): Promise<AttemptResult> {
    const timestamp = Math.floor(Date.now() / 1000);
    return postWebhook(
      hook.url,
      {
        'Content-Type': 'application/json',
        'User-Agent': USER_AGENT,
        'webhook-id': deliveryId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(hook.secret, deliveryId, timestamp, body),
      },
      body,
      { timeoutMs: this.deps.config.webhookTimeoutMs, allowPrivate: this.deps.config.webhookAllowPrivateNetworks },
    );
  }

  /** SQLite: take or renew the lease; false while another live process holds it. */
  private async holdLease(em: Em): Promise<boolean> {
    const now = new Date();
    await em.execute(
      'insert into worker_leases (name, holder, expires_at) values (?, ?, ?) ' +
        'on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at ' +
        'where worker_leases.holder = excluded.holder or worker_leases.expires_at < ?',
      [LEASE_NAME, this.holder, dateParam(em, new Date(now.getTime() + LEASE_MS)), dateParam(em, now)],
    );
    const [lease] = await em.execute<{ holder: string }[]>('select holder from worker_leases where name = ?', [LEASE_NAME]);
    return lease?.holder === this.holder;
  }

  private async anythingDue(em: Em): Promise<boolean> {
    const rows = await em.execute<unknown[]>(
      `select d.id from webhook_deliveries d join webhooks w on w.id = d.webhook_id where ${DUE} limit 1`,
      [dateParam(em, new Date()), true],
    );
    return rows.length > 0;
  }

  private async claim(em: Em): Promise<(ClaimedRow & { token: string })[]> {
    const now = new Date();
    const token = randomUUID();
    // The claim lapses after the attempt's deadline (and some slack for recording it).
    const lapse = new Date(now.getTime() + this.deps.config.webhookTimeoutMs + 5000);
    const postgres = dialectOf(em) === 'postgresql';
    const rows = await em.execute<ClaimedRow[]>(
      'update webhook_deliveries set next_attempt_at = ?, claim_token = ? where id in (' +
        `select d.id from webhook_deliveries d join webhooks w on w.id = d.webhook_id where ${DUE} ` +
        `order by d.next_attempt_at, d.id limit ${BATCH}${postgres ? ' for update of d skip locked' : ''}) ` +
        'returning id, webhook_id, payload, attempts',
      [dateParam(em, lapse), token, dateParam(em, now), true],
    );
    return rows.map((r) => ({ ...r, token }));
  }

  private async record(em: Em, id: string, token: string, attempts: number, result: AttemptResult): Promise<void> {
    const now = new Date();
    const retries = this.deps.config.webhookRetrySeconds;
    const common = { attempts, last_status_code: result.statusCode, claim_token: null };
    const changes = result.ok
      ? { ...common, status: 'succeeded' as const, last_error: null, next_attempt_at: null, delivered_at: now }
      : attempts <= retries.length
        ? { ...common, status: 'pending' as const, last_error: result.error, next_attempt_at: new Date(now.getTime() + retries[attempts - 1]! * 1000) }
        : { ...common, status: 'failed' as const, last_error: result.error, next_attempt_at: null };
    await em.nativeUpdate(WebhookDelivery, { id, claim_token: token }, changes);
  }

  /** Claimed deliveries this process will not attempt (stopping): due again at once, for anyone. */
  private async release(em: Em): Promise<void> {
    if (this.queued.size === 0) return;
    const entries = [...this.queued.entries()];
    this.queued.clear();
    for (const [id, token] of entries) {
      await em.nativeUpdate(WebhookDelivery, { id, claim_token: token }, { next_attempt_at: new Date(), claim_token: null }).catch(() => {});
    }
  }
}
