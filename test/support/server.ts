/**
 * Starts the real server as a child process (`node --import tsx server/src/main.ts`, as `npm run
 * dev` does; or a production build's entry, as `npm start` does), on a free port with a temporary DATA_DIR (SQLite + filesystem unless `env`
 * says otherwise). Black-box tests talk to it over HTTP only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface StartedServer {
  baseUrl: string;
  /** The API key printed on first start (owner of organization `default`, space `default`). Empty when the database was not empty. */
  apiKey: string;
  dataDir: string;
  port: number;
  /** Everything the process wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** SIGTERM and wait for exit (graceful shutdown). */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit (crash). The data dir is kept. */
  kill(): Promise<void>;
  /** Removes the data dir (after stop/kill). */
  cleanup(): void;
  process: ChildProcess;
}

export interface StartServerOptions {
  env?: Record<string, string>;
  /** Reuse a data dir (e.g. restart after kill()); a new temp dir by default. */
  dataDir?: string;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  timeoutMs?: number;
  /** The module to run without tsx (a production build's dist/server/main.js); server/src/main.ts under tsx by default. */
  entry?: string;
}

export async function startServer(opts: StartServerOptions = {}): Promise<StartedServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mr-server-'));
  const args = opts.entry ? [opts.entry] : ['--import', 'tsx', join(root, 'server/src/main.ts')];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: String(opts.port ?? 0),
      DATA_DIR: dataDir,
      SWEEP_INTERVAL_SECONDS: '0',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));

  const ready = new Promise<{ port: number; apiKey: string }>((res, rej) => {
    let apiKey = '';
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      output += line + '\n';
      const key = /API key: (mr_\S+)/.exec(line);
      if (key) apiKey = key[1]!;
      if (line.startsWith('{')) {
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number };
          if (entry.msg === 'listening' && entry.port) res({ port: entry.port, apiKey });
        } catch {
          /* not a log line */
        }
      }
    });
    child.once('exit', (code) => rej(new Error(`server exited with code ${code} before listening:\n${output}`)));
    setTimeout(() => rej(new Error(`server did not start within ${opts.timeoutMs ?? 30000} ms:\n${output}`)), opts.timeoutMs ?? 30_000).unref();
  });
  let started: { port: number; apiKey: string };
  try {
    started = await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return {
    baseUrl: `http://127.0.0.1:${started.port}`,
    apiKey: started.apiKey,
    dataDir,
    port: started.port,
    output: () => output,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
    process: child,
  };
}
