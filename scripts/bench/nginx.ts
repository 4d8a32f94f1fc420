/**
 * nginx for (d): installed from Debian when missing, run in the foreground as a single process
 * (`master_process off`, so it never switches user and works the same as root or not) with a
 * temporary config on 127.0.0.1, serving one file.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, spawnProcess, waitForHttp, type Started } from './processes.ts';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];

function findNginx(): string | null {
  const onPath = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim();
  return onPath || (CANDIDATES.find((p) => existsSync(p)) ?? null);
}

function aptGet(args: string[], log: (line: string) => void): boolean {
  log(`  apt-get ${args.join(' ')}`);
  const result = spawnSync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (result.status !== 0) log(`  … failed: ${(result.stderr || String(result.error ?? '')).trim().split('\n').slice(-2).join(' ')}`);
  return result.status === 0;
}

/** The nginx binary, installing nginx-light (or nginx) with apt-get when there is none. */
export function ensureNginx(log: (line: string) => void): string {
  const found = findNginx();
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error('nginx is not installed and installing it needs root: run `sudo apt-get install -y nginx-light`');
  log('nginx is missing: installing it from Debian');
  const install = (pkg: string) => aptGet(['install', '-y', '--no-install-recommends', pkg], log);
  if (!install('nginx-light') && !install('nginx')) {
    aptGet(['update'], log);
    if (!install('nginx-light') && !install('nginx')) throw new Error('could not install nginx with apt-get');
  }
  const installed = findNginx();
  if (!installed) throw new Error('apt-get installed nginx, but no nginx binary was found');
  return installed;
}

export function nginxVersion(bin: string): string {
  // `nginx -v` prints to stderr: "nginx version: nginx/1.22.1"
  const out = spawnSync(bin, ['-v'], { encoding: 'utf8' }).stderr;
  return /nginx\/(\S+)/.exec(out)?.[1] ?? '?';
}

/** Starts nginx serving `file` at `/artifact` (and `/ready`); `dir` holds its config, logs and temp files. */
export async function startNginx(bin: string, file: string, dir: string): Promise<{ started: Started; url: string }> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  server {
    listen 127.0.0.1:${port};
    location = /ready { return 200 "ok"; }
    location = /artifact { alias ${file}; default_type application/octet-stream; }
  }
}
`,
  );
  execFileSync(bin, ['-t', '-q', '-p', dir, '-e', join(dir, 'error.log'), '-c', conf], { stdio: 'pipe' });
  const started = spawnProcess(bin, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf], {});
  await waitForHttp(`http://127.0.0.1:${port}/ready`, started, 'nginx');
  return { started, url: `http://127.0.0.1:${port}/artifact` };
}
