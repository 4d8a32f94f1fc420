/**
 * Connection timeouts: how long a client may take to send headers, a whole request, or the next
 * byte of a body. A body that stops arriving (a slow-loris client, a dead link) must not hold a
 * socket — or the upload writer reading it — forever, yet an 8 MiB chunk or a large single-request
 * upload on a slow link must get through: the body limit is an idle time (no byte for N seconds),
 * not a total one. The total (requestTimeout) is a generous backstop.
 */
import type { Server } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../config.ts';

type TimeoutConfig = Pick<Config, 'headersTimeoutSeconds' | 'requestTimeoutSeconds' | 'keepAliveTimeoutSeconds'>;

/** The http.Server limits (main.ts applies them to the listening server). */
export function applyServerTimeouts(server: Server, config: TimeoutConfig): void {
  server.headersTimeout = config.headersTimeoutSeconds * 1000;
  server.requestTimeout = config.requestTimeoutSeconds * 1000;
  server.keepAliveTimeout = config.keepAliveTimeoutSeconds * 1000;
}

/**
 * Middleware: while a request's body is still arriving, its socket may be idle (no byte read or
 * written) for at most `idleSeconds`; then the connection is closed, which fails whatever reads the
 * body (the chunk is not stored). Once the body is in, the server may take its time to answer
 * (a completion hashing a large file is silent on the socket): the timer is then switched off.
 */
export function bodyIdleTimeout(idleSeconds: number) {
  const ms = idleSeconds * 1000;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (ms === 0 || req.complete) return next();
    const socket = req.socket;
    // Node's socket timeout handler closes the socket unless the response listens: we decide.
    const onTimeout = () => {
      if (req.complete) socket.setTimeout(0);
      else socket.destroy(new Error(`no byte of the request body arrived for ${idleSeconds} s`));
    };
    res.on('timeout', onTimeout);
    socket.setTimeout(ms);
    // The socket's timeout is left as it is: when the response finishes, Node sets it to the
    // keep-alive timeout (before this listener runs).
    const done = () => res.off('timeout', onTimeout);
    res.once('finish', done);
    res.once('close', done);
    next();
  };
}
