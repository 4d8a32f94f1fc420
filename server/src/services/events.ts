/**
 * The audit trail: every change writes one event in its own transaction (docs/architecture.md,
 * "Events"). `recordEvent` is the single way an event is written — later features that act on
 * events (webhook deliveries) hook in here so they join the same transaction.
 */
import { isDeepStrictEqual } from 'node:util';
import type { FilterQuery } from '@mikro-orm/core';
import type { components, operations } from '../generated/api.ts';
import { errors } from '../errors.ts';
import { requireProductView, requireSpaceAdmin } from '../access/index.ts';
import { Event, EVENT_TYPES, type Caller, type EventType, type JsonObject } from '../persistence/entities.ts';
import { dialectOf, type Em } from '../persistence/orm.ts';
import { queueDeliveries } from './webhooks.ts';

export { EVENT_TYPES, type EventType };

/** What a change reports; the ids are UUIDs as the API shows them (lowercase). */
export interface EventInput {
  type: EventType;
  /** The user who made the change (null: the system itself). */
  actorId: string | null;
  organizationId: string;
  spaceId: string;
  productId: string | null;
  /** The model, version, alias history entry or artifact the event is about. */
  subjectId: string | null;
  /** The subject's public fields as the API shows them (plus `changes` for model.updated). */
  data: JsonObject;
  /** Defaults to now; pass the change's own timestamp to make the two agree. */
  occurredAt?: Date;
}

/** An event as the events API shows it. */
export type EventResponse = components['schemas']['Event'];

/** A written event: its public form and its place in the order (`seq`). */
export interface RecordedEvent {
  seq: number;
  event: EventResponse;
}

/**
 * Writes one event in the caller's transaction: `em` must be the transaction's EntityManager
 * (outside a transaction this throws — an event written apart from its change could survive the
 * change's rollback, or be lost after its commit).
 *
 * Call it as the LAST statement of the transaction that makes the change. On PostgreSQL it takes
 * the space row's lock (`for no key update`, the lock the listing_version triggers take at commit
 * anyway) before the sequence number is drawn, so within a space `seq` order is commit order: a
 * reader that has seen seq n never later finds a committed n-1 of the same space. Taken last, the
 * lock is the last one the transaction waits for, so it joins no lock-order cycle (model create
 * locks the space row first and then only inserts).
 *
 * It also queues the event's webhook deliveries (services/webhooks.ts `queueDeliveries`): they
 * commit with the event or not at all.
 */
export async function recordEvent(em: Em, input: EventInput): Promise<RecordedEvent> {
  if (!em.isInTransaction()) throw new Error(`recordEvent(${input.type}) needs the change's transaction`);
  if (!(EVENT_TYPES as readonly string[]).includes(input.type)) throw new Error(`unknown event type ${input.type}`);
  await em.flush(); // the change's own pending writes go first (their locks before the space's)
  if (dialectOf(em) === 'postgresql') {
    await em.execute('select 1 from "spaces" where "id" = ? for no key update', [input.spaceId]);
  }
  const row = em.create(Event, {
    type: input.type,
    occurred_at: input.occurredAt ?? new Date(),
    actor_id: input.actorId,
    organization_id: input.organizationId,
    space_id: input.spaceId,
    product_id: input.productId,
    subject_id: input.subjectId,
    // A JSON round trip: the stored document is exactly what a reader will get back.
    data: JSON.parse(JSON.stringify(input.data)) as JsonObject,
  });
  await em.flush();
  const event = eventResponse(row);
  // One delivery per subscribed webhook of the space, in this same transaction (docs/architecture.md, "Webhook delivery").
  await queueDeliveries(em, event);
  return { seq: row.seq, event };
}

export function eventResponse(e: Event): EventResponse {
  return {
    id: e.id,
    type: e.type as EventType,
    occurred_at: e.occurred_at.toISOString(),
    actor_id: e.actor_id ?? null,
    organization_id: e.organization_id,
    space_id: e.space_id,
    product_id: e.product_id ?? null,
    subject_id: e.subject_id ?? null,
    data: e.data,
  };
}

/** The organization and space of a product, for callers that hold only its id. */
export async function productScope(em: Em, productId: string): Promise<{ organizationId: string; spaceId: string; productId: string }> {
  const [row] = await em.execute<{ space_id: string; organization_id: string }[]>(
    'select p.space_id, s.organization_id from products p join spaces s on s.id = p.space_id where p.id = ?',
    [productId],
  );
  if (!row) throw errors.notFound(`Product '${productId}' was not found.`);
  return { organizationId: row.organization_id, spaceId: row.space_id, productId };
}

/**
 * `{field: {from, to}}` for the fields of `after` whose value differs from `before` (deep
 * comparison: JSON objects with the same content are equal). Only fields `after` names count.
 */
export function fieldChanges(before: Record<string, unknown>, after: Record<string, unknown>, fields: Iterable<string>): Record<string, { from: unknown; to: unknown }> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const field of fields) {
    const from = before[field] ?? null;
    const to = after[field] ?? null;
    if (!isDeepStrictEqual(from, to)) changes[field] = { from, to };
  }
  return changes;
}

// ─── reading ─────────────────────────────────────────────────────────────────────────────

export type EventFilters = NonNullable<operations['listProductEvents']['parameters']['query']>;

/** One page of an event list and its headers' figures. */
export interface EventPage {
  items: EventResponse[];
  count: number;
  total: number;
  skip: number;
  limit: number;
}

const DEFAULT_LIMIT = 50;

/** The validator checks the shape; a date-time it lets through that is no instant is refused here too. */
function sinceDate(since: string | undefined): Date | null {
  if (since === undefined) return null;
  const date = new Date(since);
  if (Number.isNaN(date.getTime())) {
    throw errors.validation(`The request is invalid: query.since '${since}' is not a date-time such as 2026-10-01T00:00:00Z.`, [
      { loc: ['query', 'since'], msg: 'must be a date-time such as 2026-10-01T00:00:00Z', type: 'format' },
    ]);
  }
  return date;
}

async function eventPage(em: Em, scope: FilterQuery<Event>, filters: EventFilters): Promise<EventPage> {
  const skip = filters.skip ?? 0;
  const limit = filters.limit ?? DEFAULT_LIMIT;
  const since = sinceDate(filters.since);
  const where: FilterQuery<Event>[] = [scope];
  if (filters.types && filters.types.length > 0) where.push({ type: { $in: [...new Set(filters.types)] } });
  if (since) where.push({ occurred_at: { $gte: since } });
  // Newest first is seq descending: the order the events committed in (see recordEvent).
  const [rows, total] = await em.findAndCount(Event, { $and: where }, { orderBy: { seq: 'desc' }, offset: skip, limit });
  return { items: rows.map(eventResponse), count: rows.length, total, skip, limit };
}

export class EventService {
  /** A model's events: view access to it (none → 404). */
  async listProduct(em: Em, user: Caller, productId: string, filters: EventFilters): Promise<EventPage> {
    const { product } = await requireProductView(em, user, productId);
    return eventPage(em, { product_id: product.id }, filters);
  }

  /** A space's events: space admin or org owner/admin; others who see the space → 403, the rest → 404. */
  async listSpace(em: Em, user: Caller, slug: string, filters: EventFilters): Promise<EventPage> {
    const { space } = await requireSpaceAdmin(em, user, slug, 'read its events');
    return eventPage(em, { space_id: space.id }, filters);
  }
}
