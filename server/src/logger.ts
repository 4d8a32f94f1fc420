import os from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

export const SERVICE_NAME = 'model-repository';

export interface CreateLoggerOptions {
  /**
   * Where JSON lines go: the server logs to stdout (default); the admin CLI passes 'stderr'
   * because its stdout carries exactly one JSON result. A stream is for tests.
   */
  destination?: 'stdout' | 'stderr' | DestinationStream;
}

/** One JSON logger per process; children (`logger.child({ request_id })`) carry context. */
export function createLogger(config: Pick<Config, 'logLevel'>, options: CreateLoggerOptions = {}): Logger {
  const dest = options.destination ?? 'stdout';
  const stream =
    dest === 'stdout' ? pino.destination(1) : dest === 'stderr' ? pino.destination(2) : dest;
  return pino(
    {
      level: config.logLevel,
      base: { service: SERVICE_NAME, pid: process.pid, hostname: os.hostname() },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}
