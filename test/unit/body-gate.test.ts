/** BodyGate: how many upload bodies are read at once, in what order the rest come in, and what a stalled or departed one does. */
import { PassThrough, type Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BodyGate, BodyGateClosedError, type BodyTicket } from '../../server/src/services/body-gate.ts';

/** A request body with the socket timeout the idle-timeout middleware would have set. */
function body(timeoutMs = 0): Readable & { socket: { timeout: number; setTimeout(ms: number): void; calls: number[] } } {
  const stream = new PassThrough() as unknown as Readable & { socket: { timeout: number; setTimeout(ms: number): void; calls: number[] } };
  const socket = {
    timeout: timeoutMs,
    calls: [] as number[],
    setTimeout(ms: number) {
      socket.timeout = ms;
      socket.calls.push(ms);
    },
  };
  stream.socket = socket;
  return stream;
}

/** Whether the promise settled by now (after pending callbacks ran). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

describe('BodyGate', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const gate = (slots: number) => new BodyGate(slots, 1000, () => Date.now());

  it('lets bodies in at once up to the limit; the next waits until one leaves, and did not wait when it came in at once', async () => {
    const g = gate(2);
    const a = await g.enter(body());
    const b = await g.enter(body());
    expect([a.waited, b.waited]).toEqual([false, false]);
    const c = g.enter(body());
    expect(await settled(c)).toBe(false);
    expect(g.stats).toEqual({ reading: 2, waiting: 1 });
    a.leave();
    expect(await settled(c)).toBe(true);
    expect((await c).waited).toBe(true);
    expect(g.stats).toEqual({ reading: 2, waiting: 0 });
  });

  it('lets waiting bodies in in the order they came, one per slot freed', async () => {
    const g = gate(1);
    const first = await g.enter(body());
    const order: string[] = [];
    const waits = ['x', 'y', 'z'].map((name) => g.enter(body()).then((t) => (order.push(name), t)));
    await vi.advanceTimersByTimeAsync(0);
    first.leave();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['x']);
    (await waits[0]!).leave();
    await vi.advanceTimersByTimeAsync(0);
    (await waits[1]!).leave();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['x', 'y', 'z']);
  });

  it('counts a leave once, however often it is called', async () => {
    const g = gate(1);
    const a = await g.enter(body());
    const b = g.enter(body());
    const c = g.enter(body());
    a.leave();
    a.leave();
    await vi.advanceTimersByTimeAsync(0);
    expect(await settled(b)).toBe(true);
    expect(await settled(c)).toBe(false);
    expect(g.stats).toEqual({ reading: 1, waiting: 1 });
  });

  it('has no limit with 0 slots', async () => {
    const g = gate(0);
    const tickets: BodyTicket[] = [];
    for (let i = 0; i < 50; i++) tickets.push(await g.enter(body()));
    expect(tickets.every((t) => !t.waited)).toBe(true);
    expect(g.stats).toEqual({ reading: 50, waiting: 0 });
  });

  it('does not count a body whose bytes stopped moving for a second: the next one comes in', async () => {
    const g = gate(1);
    const stalled = await g.enter(body());
    const progress = { bytes: 0 };
    stalled.track(progress);
    const next = g.enter(body());
    progress.bytes = 100; // moving: the slot stays taken
    await vi.advanceTimersByTimeAsync(600);
    progress.bytes = 200;
    await vi.advanceTimersByTimeAsync(600);
    expect(await settled(next)).toBe(false);
    await vi.advanceTimersByTimeAsync(1100); // no byte for over a second
    expect(await settled(next)).toBe(true);
    expect(g.stats).toEqual({ reading: 2, waiting: 0 });
  });

  it('gives a body just let in a second before it can count as stalled', async () => {
    const g = gate(1);
    const a = g.enter(body());
    const b = g.enter(body());
    await a;
    await vi.advanceTimersByTimeAsync(900);
    expect(await settled(b)).toBe(false);
    await vi.advanceTimersByTimeAsync(400);
    expect(await settled(b)).toBe(true);
  });

  it('drops a waiting body whose request closes, rejecting it, and lets the next one in instead', async () => {
    const g = gate(1);
    const a = await g.enter(body());
    const goneBody = body();
    const gone = g.enter(goneBody);
    const next = g.enter(body());
    const rejected = expect(gone).rejects.toBeInstanceOf(BodyGateClosedError);
    goneBody.destroy();
    await rejected;
    expect(g.stats).toEqual({ reading: 1, waiting: 1 });
    a.leave();
    expect(await settled(next)).toBe(true);
    expect(g.stats).toEqual({ reading: 1, waiting: 0 });
  });

  it("suspends a waiting body's socket timeout and sets it again when the body is let in", async () => {
    const g = gate(1);
    const a = await g.enter(body(2000));
    const waiting = body(2000);
    const b = g.enter(waiting);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.socket.timeout).toBe(0);
    a.leave();
    await b;
    expect(waiting.socket.calls).toEqual([0, 2000]);
  });

  it("leaves the socket timeout of a body let in at once untouched", async () => {
    const g = gate(1);
    const b = body(2000);
    await g.enter(b);
    expect(b.socket.calls).toEqual([]);
  });
});
