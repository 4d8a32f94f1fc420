/**
 * Child processes of the upload bench: start them, wait for them, read their memory and CPU from
 * /proc, and stop every one of them (and remove every temp dir) at the end, whatever happened.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const benchDir = resolve(root, 'scripts/bench');

// ─── cleanup ─────────────────────────────────────────────────────────────────────────────

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function removeLater(dir: string): string {
  tempDirs.add(dir);
  return dir;
}

export function removeNow(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Stops a child with SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(started: Started | ChildProcess, graceMs = 5000): Promise<void> {
  const child = 'child' in started ? started.child : started;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

let closing = false;

/**
 * Stops every child still running and removes every temp dir; no child can be started after it.
 * Safe to call more than once. The dirs are removed again at exit, in case a step still running
 * (e.g. a server creating its data dir) put something back meanwhile.
 */
export async function cleanUp(): Promise<void> {
  closing = true;
  await Promise.all([...children].map((child) => stopChild(child)));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}
// Last resort if the process exits without cleanUp (an uncaught error): no process is left behind.
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

// ─── starting ────────────────────────────────────────────────────────────────────────────

export interface Started {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr so far, for error messages. */
  output(): string;
}

function refuseWhenClosing(name: string): void {
  if (closing) throw new Error(`not starting ${name}: the bench is shutting down`);
}

function track(child: ChildProcess, name: string): Started {
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  return { child, pid: child.pid, output: () => output };
}

/**
 * Forks one of the bench's TypeScript files (`node --import tsx`), with an IPC channel: it sends
 * one message when it is ready (servers: `{ port }`) or done (clients: their result).
 */
export function forkScript(file: string, args: string[], env: Record<string, string> = {}): Started {
  refuseWhenClosing(file);
  const child = fork(resolve(benchDir, file), args, {
    cwd: root,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  return track(child, file);
}

export function spawnProcess(command: string, args: string[], env: Record<string, string>): Started {
  refuseWhenClosing(command);
  return track(spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }), command);
}

/**
 * The answer of a child over IPC: the first message other than `'ready'`, or the reason there will
 * be none. A client that sends `'ready'` right before its measured part waits for `'go'`, sent
 * after `onReady` has run, or once the promise it returns has resolved (so counters can be read
 * exactly at the start, and several clients can be started at once).
 */
export function answerOf<T>(started: Started, what: string, options: { timeoutMs?: number; onReady?: () => void | Promise<void> } = {}): Promise<T> {
  const { timeoutMs = 3_600_000, onReady } = options;
  return new Promise<T>((res, rej) => {
    const { child } = started;
    const done = () => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('message', onMessage);
    };
    const timer = setTimeout(() => {
      done();
      rej(new Error(`${what}: no answer within ${timeoutMs / 1000} s\n${started.output()}`));
    }, timeoutMs);
    const onExit = (code: number | null, signal: string | null) => {
      done();
      rej(new Error(`${what} exited (${signal ?? `code ${code}`}) without an answer:\n${started.output()}`));
    };
    const onMessage = (message: unknown) => {
      if (message === 'ready') {
        // onReady may wait (e.g. for other clients to be ready too) before the go.
        void new Promise<void>((ready) => ready(onReady?.())).then(
          () => child.connected && child.send('go'),
          (err: unknown) => {
            done();
            rej(err instanceof Error ? err : new Error(String(err)));
          },
        );
        return;
      }
      done();
      const error = message && typeof message === 'object' && 'error' in message ? (message as { error: unknown }).error : undefined;
      if (error) rej(new Error(`${what} failed: ${String(error)}\n${started.output()}`));
      else res(message as T);
    };
    child.once('exit', onExit);
    child.on('message', onMessage);
  });
}

/** A port that was free a moment ago (for servers that must be told their port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res, rej) => server.once('error', rej).listen(0, '127.0.0.1', () => res()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((res) => server.close(() => res()));
  return port;
}

/** Polls `url` until it answers 200 (or `started` exits, or the time is up). */
export async function waitForHttp(url: string, started: Started, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (started.child.exitCode !== null || started.child.signalCode !== null) {
      throw new Error(`${what} exited before it was ready:\n${started.output()}`);
    }
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs / 1000} s:\n${started.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
